//! The REST API's bodies: the original system's shapes. Accounts and stats are the domain types
//! as they are (`perch accounts ... --json` prints the same). A mention differs in one place
//! from the stored record: `sender.username` and `sent_to.username` carry the `@` (`"@user"`),
//! as in the original system; [`MentionOut`] is that shape, for the API and for `--json` alike.
//! Ids are strings and enum values snake_case everywhere.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::domain::{
    Account, AccountId, Mention, MentionStatus, ReferencedPost, Response, SyncStatus,
};
use crate::outbox::{OutboxEntry, OutboxState, ReplyKind};

/// Every error: what went wrong and, where it can, what to do instead.
#[derive(Serialize, Deserialize, Debug, Clone, ToSchema)]
pub struct ErrorBody {
    pub detail: String,
}

/// `GET /api/v1/accounts/`.
#[derive(Serialize, Deserialize, Debug, Clone, ToSchema)]
pub struct AccountList {
    pub accounts: Vec<Account>,
    /// Every tracked account, listed or not (= `active_count + paused_count`).
    pub total: usize,
    pub active_count: usize,
    pub paused_count: usize,
}

/// `PATCH /api/v1/accounts/{account_id}`: pause (`is_active: false` or `sync_status: "paused"`)
/// or resume (`true` / `"active"`). The other statuses are set by perch, not by a client.
#[derive(Serialize, Deserialize, Debug, Clone, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountPatch {
    pub is_active: Option<bool>,
    pub sync_status: Option<SyncStatus>,
}

/// `DELETE /api/v1/accounts/{account_id}`.
#[derive(Serialize, Deserialize, Debug, Clone, ToSchema)]
pub struct RemovedAccount {
    #[schema(value_type = String, format = Uuid)]
    pub account_id: AccountId,
    /// `@handle`.
    pub username: String,
    /// `false` while a poll of the account is still running: it is removed when that poll ends
    /// (HTTP 202).
    pub removed: bool,
    /// Stored mentions deleted with it (`delete_messages=true`), or kept.
    pub mentions_deleted: u64,
    pub mentions_kept: u64,
}

/// `GET /api/v1/auth/login`, `POST /api/v1/accounts/{account_id}/reauthorize`.
#[derive(Serialize, Deserialize, Debug, Clone, ToSchema)]
pub struct AuthorizationUrl {
    /// Open it in a browser; X redirects to the configured `redirect_uri`, where the service
    /// finishes the login.
    pub authorization_url: String,
}

/// Who wrote a mention. `username` carries the `@`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, ToSchema)]
pub struct SenderOut {
    pub twitter_id: Option<String>,
    /// `"@user"`; `null` when X did not say who wrote the post.
    pub username: Option<String>,
    pub display_name: Option<String>,
    pub profile_image_url: Option<String>,
}

/// The tracked account a mention was sent to (replies go out from it). `username` carries the
/// `@`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, ToSchema)]
pub struct SentToOut {
    #[schema(value_type = String, format = Uuid)]
    pub account_id: AccountId,
    pub twitter_id: String,
    /// `"@tracked_account"`.
    pub username: String,
    pub display_name: String,
}

/// A mention's current send, if any (a reply or DM queued, waiting, on its way, unconfirmed or
/// failed).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, ToSchema)]
pub struct OutboxOut {
    pub seq: String,
    pub kind: ReplyKind,
    pub state: OutboxState,
    pub text: String,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub response_id: Option<String>,
    /// `waiting`: when X's rate limit resets and the send goes again.
    pub not_before: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

impl From<&OutboxEntry> for OutboxOut {
    fn from(e: &OutboxEntry) -> OutboxOut {
        OutboxOut {
            seq: e.seq.to_string(),
            kind: e.kind,
            state: e.state,
            text: e.text.clone(),
            attempts: e.attempts,
            last_error: e.last_error.clone(),
            response_id: e.response_id.clone(),
            not_before: e.not_before,
            updated_at: e.updated_at,
        }
    }
}

/// One mention, in the original system's shape.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, ToSchema)]
pub struct MentionOut {
    /// perch's id for the mention.
    pub id: Uuid,
    pub tweet_id: String,
    /// When the post was created on X.
    pub timestamp: DateTime<Utc>,
    pub text: String,
    pub sender: SenderOut,
    pub sent_to: SentToOut,
    pub status: MentionStatus,
    pub public_response: Option<Response>,
    pub dm_response: Option<Response>,
    pub conversation_id: Option<String>,
    pub referenced_posts: Vec<ReferencedPost>,
    pub error_message: Option<String>,
    /// When perch stored it.
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The mention's unfinished or last failed send; `null` when there is none.
    pub outbox: Option<OutboxOut>,
    /// Who on the team has the mention, and since when; `null`: nobody.
    #[serde(default)]
    pub assigned_to: Option<AssignedOut>,
    /// Who has its composer open right now (`PUT .../presence`), in name order.
    #[serde(default)]
    pub replying: Vec<ReplyingOut>,
}

/// Someone with a mention's composer open.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, ToSchema)]
pub struct ReplyingOut {
    pub person: String,
    /// When they opened it.
    pub since: DateTime<Utc>,
    /// When they stop showing unless their client touches it again.
    pub expires_at: DateTime<Utc>,
}

impl From<crate::service::presence::Replying> for ReplyingOut {
    fn from(r: crate::service::presence::Replying) -> ReplyingOut {
        ReplyingOut {
            person: r.person,
            since: r.since,
            expires_at: r.expires_at,
        }
    }
}

/// Who a mention is assigned to.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, ToSchema)]
pub struct AssignedOut {
    pub person: String,
    pub at: DateTime<Utc>,
}

impl From<crate::store::Assignment> for AssignedOut {
    fn from(a: crate::store::Assignment) -> AssignedOut {
        AssignedOut {
            person: a.person,
            at: a.at,
        }
    }
}

/// `name` with one leading `@` (a stored handle has none; never two).
pub fn at(name: &str) -> String {
    format!("@{}", name.trim_start_matches('@'))
}

impl MentionOut {
    pub fn new(m: &Mention, outbox: Option<&OutboxEntry>) -> MentionOut {
        MentionOut {
            id: m.id,
            tweet_id: m.tweet_id.clone(),
            timestamp: m.timestamp,
            text: m.text.clone(),
            sender: SenderOut {
                twitter_id: m.sender.twitter_id.clone(),
                username: m.sender.username.as_deref().map(at),
                display_name: m.sender.display_name.clone(),
                profile_image_url: m.sender.profile_image_url.clone(),
            },
            sent_to: SentToOut {
                account_id: m.sent_to.account_id,
                twitter_id: m.sent_to.twitter_id.clone(),
                username: at(&m.sent_to.username),
                display_name: m.sent_to.display_name.clone(),
            },
            status: m.status,
            public_response: m.public_response.clone(),
            dm_response: m.dm_response.clone(),
            conversation_id: m.conversation_id.clone(),
            referenced_posts: m.referenced_posts.clone(),
            error_message: m.error_message.clone(),
            created_at: m.created_at,
            updated_at: m.updated_at,
            outbox: outbox.map(OutboxOut::from),
            assigned_to: None,
            replying: Vec::new(),
        }
    }

    /// With who is replying to it now.
    pub fn replying(mut self, who: Vec<crate::service::presence::Replying>) -> MentionOut {
        self.replying = who.into_iter().map(ReplyingOut::from).collect();
        self
    }

    /// With who the mention is assigned to.
    pub fn assigned(mut self, assignment: Option<crate::store::Assignment>) -> MentionOut {
        self.assigned_to = assignment.map(AssignedOut::from);
        self
    }
}

/// `GET /api/v1/mentions/`.
#[derive(Serialize, Deserialize, Debug, Clone, ToSchema)]
pub struct MentionList {
    /// Newest first.
    pub mentions: Vec<MentionOut>,
    /// How many are in this page.
    pub count: usize,
    /// How many mentions match the filter in all. Without `search` it is exact (from counters);
    /// with `search` it is counted by scanning, and `null` when the filter holds more mentions
    /// than one request scans (see the README).
    pub total_matching: Option<u64>,
    /// Pass as `cursor` for the next (older) page; `null` at the end.
    pub next_cursor: Option<String>,
}

/// `PATCH /api/v1/mentions/{id}`: `pending`, `replied` or `ignored` (`processing` and `error` are
/// perch's own; a mention with a sent reply stays `replied`).
#[derive(Serialize, Deserialize, Debug, Clone, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MentionPatch {
    pub status: MentionStatus,
}

/// `POST /api/v1/mentions/{id}/reply` and `/dm`.
#[derive(Serialize, Deserialize, Debug, Clone, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendBody {
    pub text: String,
    /// Send even though someone else has the mention's composer open (`replying`); without
    /// it such a send gets 409 naming them.
    #[serde(default)]
    pub force: bool,
    /// Post a second answer of this kind on purpose: the mention was already answered (the
    /// 409 without it said who replied and when). It never overrides a send still on its way
    /// or unconfirmed.
    #[serde(default)]
    pub send_anyway: bool,
}

/// Where a reply or DM is once the request returns.
#[derive(Serialize, Deserialize, Debug, Clone, ToSchema)]
pub struct SendOutcome {
    /// `sent` (200), `queued`/`sending`/`waiting` (202, `wait=false`), `unconfirmed` (504: it may
    /// be on X; check before sending again), `failed` (502: X refused it, nothing was posted),
    /// `cancelled` (409 or 429: not sent, the text is kept as the draft).
    pub state: OutboxState,
    pub kind: ReplyKind,
    /// What happened, in words (why it failed, is unconfirmed, or waits).
    pub message: Option<String>,
    /// `waiting`, or cancelled by a rate limit: when X's limit resets.
    pub until: Option<DateTime<Utc>>,
    /// `sent`: X's id for the post or DM event (empty when X has it but its id is unknown).
    pub response: Option<Response>,
    /// The mention as it is now.
    pub mention: MentionOut,
}

/// Why an account's part of a fetch stopped or did not start.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FetchStopReason {
    /// The account is paused (by the user or a budget): nothing was asked of X.
    Paused,
    TokenExpired,
    RateLimited,
    /// The poll failed (X unreachable, an error answer, a page perch cannot read); perch retries
    /// on its schedule. `message` says what is known.
    Failed,
    /// The poll had not finished when the request stopped waiting; its mentions keep arriving
    /// (`GET /api/v1/events`).
    StillRunning,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, ToSchema)]
pub struct FetchStopped {
    pub reason: FetchStopReason,
    pub message: String,
    /// When it can go again, if known.
    pub until: Option<DateTime<Utc>>,
}

/// One account's part of `POST /api/v1/mentions/fetch-new` (the keys of `perch mentions fetch
/// --json`).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, ToSchema)]
pub struct FetchOutcome {
    /// `@handle`.
    pub account: String,
    pub account_id: String,
    /// The poll ran and finished.
    pub ok: bool,
    /// Mentions newly stored (also when it stopped early).
    pub new_mentions: usize,
    pub stopped: Option<FetchStopped>,
    pub note: Option<String>,
}

/// `POST /api/v1/mentions/fetch-new`.
#[derive(Serialize, Deserialize, Debug, Clone, ToSchema)]
pub struct FetchReport {
    /// Every account's poll ran and finished.
    pub ok: bool,
    pub new_mentions: usize,
    pub failed: usize,
    pub accounts: Vec<FetchOutcome>,
}

/// One event of `GET /api/v1/events`. The SSE `event:` field is the `type`.
#[derive(Serialize, Deserialize, Debug, Clone, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ApiEvent {
    /// New mentions were stored for an account. `mentions` are the new ones, newest first (see
    /// the README for the one case where it can hold fewer than `inserted`).
    MentionsStored {
        #[schema(value_type = String, format = Uuid)]
        account_id: AccountId,
        inserted: usize,
        mentions: Vec<MentionOut>,
    },
    /// A poll of the account started.
    PollStarted {
        #[schema(value_type = String, format = Uuid)]
        account_id: AccountId,
    },
    /// A poll finished; `next_poll_at` is when the next one is planned.
    PollFinished {
        #[schema(value_type = String, format = Uuid)]
        account_id: AccountId,
        inserted: usize,
        next_poll_at: Option<DateTime<Utc>>,
    },
    /// The account changed (status, error, last sync): its new version.
    AccountUpdated { account: Account },
    AccountRemoved {
        #[schema(value_type = String, format = Uuid)]
        account_id: AccountId,
    },
    /// Something for a person to read, about an account or the whole engine.
    Notice {
        #[schema(value_type = Option<String>, format = Uuid)]
        account_id: Option<AccountId>,
        message: String,
    },
    /// A reply or DM changed state. `state` is `refused` when a command could not be carried out.
    Send {
        #[schema(value_type = String, format = Uuid)]
        account_id: AccountId,
        tweet_id: String,
        state: SendEventState,
        kind: Option<ReplyKind>,
        message: Option<String>,
        until: Option<DateTime<Utc>>,
        response: Option<Response>,
    },
    /// A mention was assigned to a person (`assigned_to`), or unassigned (`null`), by `by`.
    MentionAssigned {
        #[schema(value_type = String, format = Uuid)]
        account_id: AccountId,
        mention_id: Uuid,
        tweet_id: String,
        assigned_to: Option<String>,
        by: String,
        at: DateTime<Utc>,
    },
    /// `person` opened the mention's composer (`replying: true`), or closed it, sent, or
    /// vanished (`false`: their presence expired).
    Replying {
        #[schema(value_type = String, format = Uuid)]
        account_id: AccountId,
        tweet_id: String,
        person: String,
        replying: bool,
        at: DateTime<Utc>,
    },
    /// This client fell behind and missed `missed` events; the stream ends here. Reconnect and
    /// read the current state with the other endpoints.
    Lagged { missed: u64 },
}

/// The state a `send` event reports.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SendEventState {
    Sending,
    Sent,
    Failed,
    Unconfirmed,
    Waiting,
    Cancelled,
    Refused,
}
