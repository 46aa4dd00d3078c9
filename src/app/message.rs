//! The dashboard's messages: what the state reacts to ([`Action`]), the work `update` asks the
//! event loop for ([`Effect`], [`Job`]), and the login task's reports. A module of its own that
//! imports nothing else from `app`, so the loop, the executor and the login task can speak to
//! `update` without depending on how the state is built.

use chrono::{DateTime, Utc};
use crossterm::event::KeyEvent;

use crate::domain::{AccountId, MentionKey, MentionStatus};
use crate::outbox::{OutboxCommand, OutboxEvent, SendRequest};
use crate::store::{Draft, UndoStep};
use crate::sync::SyncEvent;
use crate::text;

/// Everything the state reacts to.
#[derive(Clone, Debug)]
pub enum Action {
    /// A key press (releases and repeats are filtered out by the terminal reader), with the
    /// mention the user could see selected when they pressed it: the selected feed row as last
    /// drawn, as moved since by the user's own earlier keys (`None`: no row was selected). Keys
    /// that act on a mention act on that one, never on one that arrived, or slid into the
    /// selection, after the screen the user read was drawn. The event loop fills it in.
    Key {
        key: KeyEvent,
        seen: Option<MentionKey>,
    },
    /// Text pasted into the terminal.
    Paste(String),
    /// A mouse event as the terminal reported it (with `mouse = true`); the event loop turns it
    /// into a [`Action::Pointer`] by looking at what is drawn where (`ui::hit_test`).
    Mouse(crossterm::event::MouseEvent),
    /// A click or a wheel turn on something on screen.
    Pointer {
        target: PointerTarget,
        what: PointerKind,
    },
    Resize {
        width: u16,
        height: u16,
    },
    /// The once-a-second clock (relative times, spinner).
    Tick(DateTime<Utc>),
    Sync(SyncEvent),
    Outbox(OutboxEvent),
    /// Someone on the team assigned a mention or opened or closed a composer (issue 16).
    Team(crate::domain::TeamEvent),
    /// The store changed under us (an effect the loop ran wrote to it): re-read what is shown.
    StoreChanged,
    /// Something the loop wants the user to know (an effect failed, a channel closed).
    Notify {
        text: String,
        is_error: bool,
    },
    /// The loop is idle: take the next step of a background job.
    Continue(Job),
    /// The store applied a chunk of triage action `action`, changing `changed` mentions.
    Triaged {
        action: u64,
        changed: usize,
    },
    /// The store undid a chunk of a triage action (`None`: there was nothing to undo), or could
    /// not (the message says why).
    Undone(Result<Option<UndoStep>, String>),
    /// `$EDITOR` returned: the new draft for the mention, or why it could not be used.
    EditorDone {
        key: MentionKey,
        result: Result<String, String>,
    },
    /// A report from the add-account / reauthorize login task.
    Login(LoginEvent),
    /// `o` could not open a browser.
    OpenFailed {
        url: String,
        why: String,
    },
    /// The length of the draft of `key` at edit `generation`, measured off the key path.
    DraftMeasured {
        key: MentionKey,
        generation: u64,
        length: text::PostLength,
    },
}

/// What is under the mouse pointer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PointerTarget {
    /// The accounts pane: a row of it (0 = "All accounts"), or its empty part.
    Accounts(Option<usize>),
    /// The mention feed: a row of the loaded window (an index into `FeedWindow::rows`), or its
    /// border or empty part.
    Feed(Option<usize>),
    Detail,
}

/// What the mouse did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PointerKind {
    Click,
    WheelUp,
    WheelDown,
}

/// Work done in steps while nothing else is waiting, so big jobs never freeze the screen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Job {
    /// Find and count more hits of the current search.
    Search,
    /// Apply the next chunk of the bulk triage.
    Bulk,
    /// Undo the next chunk of the running undo.
    Undo,
}

/// Work for the event loop. `update` never does I/O beyond reading the store.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    /// Hand a reply to the outbox (it sends from `key.account_id`, the mentioned account).
    Send(SendRequest),
    /// Resolve or call back an outbox entry (retry, mark sent, cancel).
    Outbox(OutboxCommand),
    FetchNow(Option<AccountId>),
    Pause(AccountId),
    Resume(AccountId),
    /// Write a triage decision (one chunk of undo action `action`) to the store, then report
    /// `Action::Triaged`.
    Triage {
        action: u64,
        keys: Vec<MentionKey>,
        status: MentionStatus,
    },
    /// Undo one chunk of `action` (the newest when `None`), then report `Action::Undone`.
    Undo {
        action: Option<u64>,
    },
    /// Feed `Action::Continue(job)` back when no other event is waiting.
    Background(Job),
    /// Put text on the clipboard with OSC 52 (works over SSH).
    CopyToClipboard(String),
    /// Suspend the screen, edit the draft in `$EDITOR`, then report `Action::EditorDone`.
    EditExternally {
        key: MentionKey,
        text: String,
    },
    /// Keep a draft reply in the store (it survives a failed send, a quit or a crash).
    SaveDraft {
        key: MentionKey,
        draft: Draft,
    },
    /// The reply went out: its draft is no longer needed.
    DeleteDraft {
        key: MentionKey,
    },
    OpenUrl(String),
    /// Measure the draft of `key` (edit `generation`) off the key path, then report
    /// `Action::DraftMeasured`. Only the newest request per draft matters.
    MeasureDraft {
        key: MentionKey,
        generation: u64,
        text: String,
    },
    /// Logins, adding and removing accounts (see `app::accounts`).
    Account(AccountEffect),
    /// Ring the terminal bell: new mentions opened a burst (`app::notify`).
    Bell,
    /// Set the terminal title (`perch · 12 pending`); the terminal restores the old one on exit.
    SetTitle(String),
    /// Assign the mention to `person` (or nobody) as `by`, this dashboard's person; then report
    /// the change as `Action::Team` (or the refusal).
    Assign {
        key: MentionKey,
        mention_id: uuid::Uuid,
        /// The mentioned account's `@handle`.
        handle: String,
        person: Option<String>,
        by: String,
    },
    /// Tell the team this dashboard's person has the mention's composer open (`open`, sent
    /// again every `PRESENCE_TOUCH_EVERY` while it is) or closed it.
    Presence {
        key: MentionKey,
        open: bool,
    },
    Quit,
}

// ---- the login task and account changes ---------------------------------------------------

/// Why a login runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoginPurpose {
    /// `a`: add whichever account the user approves (an account already tracked is reauthorized).
    Add,
    /// `R`: log in again for this account; approving as someone else is reported.
    Reauthorize {
        account_id: AccountId,
        twitter_id: String,
        handle: String,
    },
}

/// The kinds of failure the dialog tells apart (each has its own heading and advice).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoginFailureKind {
    Denied,
    StateMismatch,
    CodeRejected,
    PortBusy,
    NoClientId,
    Timeout,
    /// A reauthorization approved by another X user than the account's.
    WrongAccount,
    /// Anything else (network, token endpoint, the store); the message says what.
    Other,
}

impl LoginFailureKind {
    pub fn heading(self) -> &'static str {
        match self {
            LoginFailureKind::Denied => "Authorization declined",
            LoginFailureKind::StateMismatch => "Refused: the response does not match this login",
            LoginFailureKind::CodeRejected => "X rejected the authorization code",
            LoginFailureKind::PortBusy => "The callback port is busy",
            LoginFailureKind::NoClientId => "No X client id configured",
            LoginFailureKind::Timeout => "No answer from the browser",
            LoginFailureKind::WrongAccount => "Logged in as another account",
            LoginFailureKind::Other => "The login did not complete",
        }
    }
}

/// How a login failed: the kind, and the full message (what happened, what to do next).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoginFailure {
    pub kind: LoginFailureKind,
    pub message: String,
}

/// A login that stored an account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoginSuccess {
    pub account_id: AccountId,
    pub handle: String,
    /// The X user was already tracked: tokens and profile were updated, mentions kept.
    pub reauthorized: bool,
}

/// What the login task reports (through `Action::Login`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoginEvent {
    /// The listener is up and this is the address to approve perch at.
    Listening { login_id: u64, url: String },
    /// The pasted text is not an authorization response; the login keeps waiting.
    PasteRejected { login_id: u64, message: String },
    /// A code arrived; it is being exchanged.
    Exchanging { login_id: u64 },
    Finished {
        login_id: u64,
        outcome: Result<LoginSuccess, LoginFailure>,
    },
}

impl LoginEvent {
    pub(crate) fn login_id(&self) -> u64 {
        match self {
            LoginEvent::Listening { login_id, .. }
            | LoginEvent::PasteRejected { login_id, .. }
            | LoginEvent::Exchanging { login_id }
            | LoginEvent::Finished { login_id, .. } => *login_id,
        }
    }
}

/// Work for the event loop (wrapped in `Effect::Account`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AccountEffect {
    /// Bind the loopback listener, open the browser, wait for the callback or a paste.
    StartLogin {
        login_id: u64,
        purpose: LoginPurpose,
    },
    /// Hand the paste field's text to the running login.
    PasteLogin { login_id: u64, input: String },
    /// Stop the login (the listener's port is freed).
    CancelLogin { login_id: u64 },
    /// Tell the sync engine an account was added or reauthorized (it polls it at once).
    Added(AccountId),
    /// Ask the sync engine to remove the account (after any poll in flight).
    Remove {
        account_id: AccountId,
        delete_mentions: bool,
    },
}
