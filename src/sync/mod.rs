//! The sync engine: a tokio task that polls every active account, commits each page to the store,
//! and reports what happened as `SyncEvent`s. It takes `Command`s from the UI and the CLI.

use chrono::{DateTime, Utc};

use crate::domain::{Account, AccountId};

/// What the engine tells the UI. The UI re-reads the store on these; it never gets mention data
/// through the channel (the store is the source of truth).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SyncEvent {
    /// A poll of this account started (the UI shows a spinner).
    Started { account_id: AccountId },
    /// A page was committed: `inserted` new mentions are in the store.
    PageCommitted {
        account_id: AccountId,
        inserted: usize,
    },
    /// A poll finished; `next_poll_at` is when the engine plans the next one.
    Finished {
        account_id: AccountId,
        inserted: usize,
        /// Stored mentions whose unknown sender the poll filled in (the rows on screen change).
        senders_filled: usize,
        next_poll_at: Option<DateTime<Utc>>,
    },
    /// The account record changed (status, error, last sync, ...): here is the new version.
    AccountUpdated(Account),
    /// The remaining budget of the mentions endpoint, from the last response.
    Budget {
        account_id: AccountId,
        remaining: u32,
        limit: u32,
        reset: DateTime<Utc>,
    },
    /// Something the user should read in the status bar ("fetch deferred until 14:05: rate
    /// limit"), about one account or the whole engine.
    Notice {
        account_id: Option<AccountId>,
        message: String,
    },
    /// An account was removed from the store (and from the schedule).
    AccountRemoved { account_id: AccountId },
    /// The Activity stream's state changed (`● live`, `reconnecting in 8s`, `off: <reason>`).
    StreamStatus(stream::StreamStatus),
    /// An account's Activity subscriptions, as the last reconcile left them (none: it is
    /// polled only).
    Subscriptions {
        account_id: AccountId,
        subscriptions: subscriptions::AccountSubscriptions,
    },
}

/// What the UI and the CLI ask of the engine.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Command {
    /// Poll now (one account, or all active ones), within the budget.
    FetchNow(Option<AccountId>),
    Pause(AccountId),
    Resume(AccountId),
    /// An account was added or reauthorized: (re)load it and poll it now.
    AccountAdded(AccountId),
    /// Remove an account once any poll of it has finished (never half-deleted).
    Remove {
        account_id: AccountId,
        delete_mentions: bool,
    },
    Shutdown,
}

pub mod budget;
mod engine;
mod once;
pub mod page;
mod poll;
pub mod schedule;
pub mod spend;
pub mod stream;
pub mod subscriptions;

pub use engine::{SyncHandle, SyncHandleParts, SyncSettings, rate_limited_message, spawn};
pub use once::{FetchResult, FetchStop, fetch_once};

/// Running totals of what the engine did since it started, for the soak run and diagnostics.
/// Updated with relaxed atomics: each number is exact, their snapshot is not one instant.
#[derive(Debug, Default)]
pub struct SyncCounters {
    /// Mentions pages asked for (a 401 retry counts once).
    pub page_requests: std::sync::atomic::AtomicU64,
    /// Pages read and committed.
    pub pages_committed: std::sync::atomic::AtomicU64,
    /// Mentions newly stored.
    pub inserted: std::sync::atomic::AtomicU64,
    /// Posts X returned that the store already had (dropped, never stored twice). Zero when the
    /// cursor is used right and no poll was interrupted, and nothing came by stream first (a
    /// streamed mention is found again by the reconciliation poll).
    pub refetched: std::sync::atomic::AtomicU64,
    /// Polls that ended in an error of any kind.
    pub failed_polls: std::sync::atomic::AtomicU64,
    /// Polls the budget gate held back until a reset.
    pub held_back: std::sync::atomic::AtomicU64,
    /// Activity stream events received (every kind).
    pub stream_events: std::sync::atomic::AtomicU64,
    /// Mentions newly stored from the stream (also counted in `inserted`).
    pub streamed: std::sync::atomic::AtomicU64,
    /// Stream lines or events perch could not use (logged, never fatal).
    pub stream_trouble: std::sync::atomic::AtomicU64,
}

impl SyncCounters {
    pub(crate) fn add(counter: &std::sync::atomic::AtomicU64, n: u64) {
        counter.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    }

    /// The current value of one counter.
    pub fn get(counter: &std::sync::atomic::AtomicU64) -> u64 {
        counter.load(std::sync::atomic::Ordering::Relaxed)
    }
}
