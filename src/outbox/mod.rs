//! Sending replies and DMs: always from the account the mention was sent to, recorded in the store
//! before and after the request so that a send is never lost and never doubled.
//!
//! Every send is an entry in the store's outbox (`store::OutboxEntry`): `queued`, then `sending`
//! (committed and flushed before the request leaves), then `sent`, `failed`, `waiting` (429: sent
//! again at the reset) or `unconfirmed` (the request left and no answer came back). A process
//! that dies while an entry is `sending` leaves it `sending`; the next worker to start turns it
//! `unconfirmed`, and only the user resolves it: [`OutboxCommand::MarkSent`] (it is on X),
//! [`OutboxCommand::Retry`] (send it again: a duplicate-content refusal then means the first one
//! went out, and is recorded as sent) or [`OutboxCommand::Cancel`] (it is not on X).
//!
//! The account a reply goes out from is not something a caller can choose: requests carry only
//! the mention's key, and the worker uses the tokens of the mention's `sent_to` account.
//!
//! - `worker.rs`: the task that owns sending on sled (one request at a time, waits, commands).
//! - `attempt.rs`: one request to X and what its outcome means.
//! - `team.rs` and `claims.rs`: the same on a team's PostgreSQL database (issue 16), where any
//!   service records its clients' commands and the sync leader's worker sends.

mod attempt;
pub mod claims;
pub mod team;
mod worker;

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;

use crate::auth::TokenManager;
use crate::domain::{MentionKey, Response};
use crate::store::{Store, StoreError};
use crate::x::XClient;

pub use crate::domain::ReplyKind;
pub use crate::store::{OutboxEntry, OutboxState};
pub use attempt::rate_limited_message;

/// A request to send `text` in answer to the mention `key`. There is no account field on
/// purpose: the outbox always uses the tokens of `key.account_id` (the account mentioned).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SendRequest {
    pub key: MentionKey,
    pub kind: ReplyKind,
    pub text: String,
    /// Send even though the mention already has an answer of this kind (someone replied
    /// first, and the sender was told who and when): a second post on purpose. Never
    /// overrides a send still unresolved.
    #[serde(default)]
    pub send_anyway: bool,
}

/// What the outbox worker is asked to do. Every command names a mention, never an account.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", content = "request", rename_all = "snake_case")]
pub enum OutboxCommand {
    /// Record and send a new reply or DM.
    Send(SendRequest),
    /// Send the mention's unconfirmed or failed entry again.
    Retry(MentionKey),
    /// The mention's unconfirmed (or failed) entry is on X: record it as sent, X's id unknown.
    MarkSent(MentionKey),
    /// Cancel the mention's queued or waiting entry, or say its unconfirmed one is not on X: the
    /// mention goes back to `pending`, the text stays as its draft.
    Cancel(MentionKey),
    /// The client that asked for this send has gone (a dashboard quit, a CLI command killed, an
    /// HTTP request dropped): the service does what perch did when its own process ended. A send
    /// that has not left (queued, or waiting out a 429) is cancelled, the draft kept, never sent
    /// later; one that has left is recorded `unconfirmed` at once, and X's answer, if it still
    /// comes, settles it. Nothing happens to a send already finished.
    Abandon(MentionKey),
}

impl From<SendRequest> for OutboxCommand {
    fn from(request: SendRequest) -> OutboxCommand {
        OutboxCommand::Send(request)
    }
}

impl OutboxCommand {
    pub fn key(&self) -> MentionKey {
        match self {
            OutboxCommand::Send(r) => r.key,
            OutboxCommand::Retry(k)
            | OutboxCommand::MarkSent(k)
            | OutboxCommand::Cancel(k)
            | OutboxCommand::Abandon(k) => *k,
        }
    }
}

/// What the outbox reports back (to the UI, or the CLI waiting on it). Every state change of an
/// entry is in the store before its event is sent.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OutboxEvent {
    /// The mention is `processing`: the request is on its way.
    Sending { key: MentionKey },
    /// Sent; the mention is `replied` with this response recorded. An empty `response.id` means X
    /// has it but its id is unknown (see [`response_id_label`]).
    Sent {
        key: MentionKey,
        kind: ReplyKind,
        response: Response,
    },
    /// Not sent; the mention is `error` with `message`, and the draft is kept.
    Failed {
        key: MentionKey,
        kind: ReplyKind,
        message: String,
    },
    /// The request left and no answer came back (or perch stopped while it was out): it may be on
    /// X. Never sent again without the user's say.
    Unconfirmed {
        key: MentionKey,
        kind: ReplyKind,
        message: String,
    },
    /// X rate-limited the account; the entry goes again at `until` unless cancelled.
    Waiting {
        key: MentionKey,
        kind: ReplyKind,
        until: DateTime<Utc>,
    },
    /// The user cancelled it (or said it is not on X): the mention is `pending`, the draft kept.
    Cancelled { key: MentionKey, kind: ReplyKind },
    /// A command could not be carried out; nothing changed.
    Refused { key: MentionKey, message: String },
}

impl OutboxEvent {
    pub fn key(&self) -> MentionKey {
        match self {
            OutboxEvent::Sending { key }
            | OutboxEvent::Sent { key, .. }
            | OutboxEvent::Failed { key, .. }
            | OutboxEvent::Unconfirmed { key, .. }
            | OutboxEvent::Waiting { key, .. }
            | OutboxEvent::Cancelled { key, .. }
            | OutboxEvent::Refused { key, .. } => *key,
        }
    }

    /// Nothing more will come for this key unless someone asks (sent, failed, unconfirmed,
    /// cancelled, refused). `Sending` and `Waiting` are on the way to one of these.
    pub fn is_final(&self) -> bool {
        !matches!(
            self,
            OutboxEvent::Sending { .. } | OutboxEvent::Waiting { .. }
        )
    }
}

/// What an unconfirmed entry is called wherever it is shown.
pub const UNCONFIRMED_LABEL: &str = "unconfirmed: check on X";

/// The message an entry gets when perch stopped while it was `sending`. Stored on the mention
/// and shown by the UI and the CLI, so it names no keys or commands: each adds its own.
/// An abandoned send that had left (see [`OutboxCommand::Abandon`]).
pub const CLIENT_LEFT_WHILE_SENDING: &str = "unconfirmed: check on X. The program that asked for this went away before X answered, so it may or may not have been posted.";

pub const STOPPED_WHILE_SENDING: &str = "unconfirmed: check on X. perch stopped while sending this, before X answered, so it may or may not have been posted.";

/// The message an entry gets when perch stopped before it left.
pub const STOPPED_BEFORE_SENDING: &str =
    "not sent: perch was closed before this went out (nothing reached X). The draft is kept.";

/// X's id of a recorded response, or what to say when it is unknown.
pub fn response_id_label(response: &Response) -> String {
    if response.id.is_empty() {
        "id unknown: X's answer was lost".to_string()
    } else {
        format!("id {}", response.id)
    }
}

/// Starts the outbox worker: commands in, events out. First it repairs what a previous process
/// left (entries still `sending` become `unconfirmed`, see [`recover`]) and reports each repair;
/// then it sends one request at a time, in order, so two quick presses can never race each other
/// into a double send.
pub fn spawn(
    store: Store,
    client: XClient,
    tokens: TokenManager,
) -> (mpsc::Sender<OutboxCommand>, mpsc::Receiver<OutboxEvent>) {
    let (command_tx, command_rx) = mpsc::channel::<OutboxCommand>(32);
    let (event_tx, event_rx) = mpsc::channel::<OutboxEvent>(64);
    let worker = worker::Worker::new(store, client, tokens, event_tx);
    tokio::spawn(worker.run(command_rx));
    (command_tx, event_rx)
}

/// Start-up repair (blocking; the worker runs it when it starts, and CLI commands that read the
/// outbox run it after opening the store). Safe only in the process holding the store's lock,
/// which guarantees no other perch is mid-send. Returns the entries it changed.
pub fn recover(store: &Store) -> Result<Vec<OutboxEntry>, StoreError> {
    store.outbox_recover(Utc::now(), STOPPED_WHILE_SENDING, STOPPED_BEFORE_SENDING)
}

/// [`blocking`] on any backend (a team's PostgreSQL database, or sled behind the trait).
async fn blocking_shared<T: Send + 'static>(
    store: &crate::store::SharedStore,
    f: impl FnOnce(&dyn crate::store::ServiceBackend) -> crate::store::Result<T> + Send + 'static,
) -> Result<T, String> {
    let store = store.clone();
    match tokio::task::spawn_blocking(move || f(store.as_ref())).await {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(e) => Err(format!("store task failed: {e}")),
    }
}

/// Runs a blocking store call off the async threads.
async fn blocking<T: Send + 'static>(
    store: &Store,
    f: impl FnOnce(&Store) -> crate::store::Result<T> + Send + 'static,
) -> Result<T, String> {
    let store = store.clone();
    match tokio::task::spawn_blocking(move || f(&store)).await {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(e) => Err(format!("store task failed: {e}")),
    }
}
