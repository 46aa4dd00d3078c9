//! One fetch of one account, for commands that run once (`perch mentions fetch`): exactly one
//! poll, no schedule, no back-off retries. A poll follows the pages of one fetch and refreshes
//! the token once on a 401 (`TokenManager::with_token`); every request is bounded by the X
//! client's request timeout, so this returns within a few timeouts however X behaves.
//!
//! What the poll found is written to the account as the engine would (last sync, status, the
//! message), except a single transient failure, which the engine would retry quietly and which
//! the caller reports instead.

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;

use crate::auth::{TokenManager, token_expired_message};
use crate::domain::{Account, SyncStatus};
use crate::store::SharedStore;
use crate::x::XClient;

use super::budget::EndpointBudget;
use super::poll::{PollError, PollJob, poll_account};
use super::{SyncCounters, rate_limited_message};

/// Why a fetch did not get everything X had.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FetchStop {
    /// X could not be reached or answered with a server error or a timeout.
    Unreachable(String),
    /// X's rate limit is spent until `until` (unknown: X did not say).
    RateLimited { until: Option<DateTime<Utc>> },
    /// X no longer accepts the account's token, even after a refresh.
    TokenExpired(String),
    /// Only the user can fix it (credits, enrolment, permissions).
    Blocked(String),
    /// X sent a page perch cannot read; it was not stored.
    Malformed(String),
    /// A monthly budget is reached: no request was sent (the account is paused by the budget).
    Budget(String),
    /// X's pages did not end (a repeated or empty-page token): what was read is stored.
    MalformedPagination(String),
    /// Too little room on the disk under the store: nothing was fetched.
    DiskFull(String),
}

/// What one fetch of one account did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchResult {
    /// Mentions newly stored (also when the fetch stopped early: earlier pages stay stored).
    pub stored: usize,
    /// Why it stopped before the pages ran out; `None` when it got everything.
    pub stopped: Option<FetchStop>,
    /// The fetch got everything, but it used the last request X allows before this time.
    pub spent_until: Option<DateTime<Utc>>,
}

/// Polls `account` once and records the outcome on it.
pub async fn fetch_once(
    store: &SharedStore,
    client: &XClient,
    tokens: &TokenManager,
    account: Account,
    backfill_cap: usize,
    spend: &super::spend::SpendGate,
) -> FetchResult {
    // The poll reports pages as it goes; a one-shot fetch reads only its outcome.
    let (events, mut drain) = mpsc::channel(64);
    let drainer = tokio::spawn(async move { while drain.recv().await.is_some() {} });
    let id = account.id;
    let username = account.twitter_username.clone();
    let job = PollJob {
        account,
        budget: EndpointBudget::default(),
        backfill_cap,
        resume: None,
        spend: spend.clone(),
    };
    let outcome = poll_account(
        store,
        client,
        tokens,
        job,
        &events,
        &SyncCounters::default(),
    )
    .await;
    drop(events);
    let _ = drainer.await;

    let now = Utc::now();
    let spent_until = outcome.budget.spent_until(now);
    let (stopped, change) = match outcome.result {
        Ok(()) => (
            None,
            Some(match spent_until {
                Some(reset) => (SyncStatus::RateLimited, Some(rate_limited_message(reset))),
                None => (SyncStatus::Active, None),
            }),
        ),
        Err(PollError::RateLimited { reset, .. }) => {
            let until = reset.or(spent_until);
            let message = until.map_or_else(
                || "X's rate limit is spent (X did not say until when)".to_string(),
                rate_limited_message,
            );
            (
                Some(FetchStop::RateLimited { until }),
                Some((SyncStatus::RateLimited, Some(message))),
            )
        }
        Err(PollError::TokenExpired(reason)) => {
            tracing::warn!(account = %username, "token expired: {reason}");
            let message = token_expired_message(&username);
            (
                Some(FetchStop::TokenExpired(message.clone())),
                Some((SyncStatus::TokenExpired, Some(message))),
            )
        }
        Err(PollError::Blocked { detail, remedy }) => {
            let message = format!("{detail}. {remedy}");
            (
                Some(FetchStop::Blocked(message.clone())),
                Some((SyncStatus::Error, Some(message))),
            )
        }
        Err(PollError::BudgetReached(reached)) => {
            // Paused by the budget, not the user: it stays active and resumes by itself.
            let message = reached.message();
            (
                Some(FetchStop::Budget(message.clone())),
                Some((SyncStatus::Paused, Some(message))),
            )
        }
        Err(PollError::CreditsDepleted(detail)) => {
            tracing::warn!(account = %username, "X: credits depleted: {detail}");
            let message = crate::costs::CREDITS_DEPLETED_MESSAGE.to_string();
            (
                Some(FetchStop::Blocked(message.clone())),
                Some((SyncStatus::Error, Some(message))),
            )
        }
        // One failure: the engine would retry it quietly, so the account keeps its status.
        Err(PollError::Transient(reason)) => (Some(FetchStop::Unreachable(reason)), None),
        Err(PollError::Rejected(reason)) => (Some(FetchStop::Malformed(reason)), None),
        // One malformed page: the engine says so on the account only after several in a row.
        Err(PollError::MalformedPage(reason)) => (Some(FetchStop::Malformed(reason)), None),
        Err(PollError::MalformedPagination(reason)) => {
            let message = format!("malformed pagination: {reason}");
            (
                Some(FetchStop::MalformedPagination(reason)),
                Some((SyncStatus::Error, Some(message))),
            )
        }
        Err(PollError::DiskFull(message)) => (
            Some(FetchStop::DiskFull(message.clone())),
            Some((SyncStatus::Error, Some(message))),
        ),
    };
    let synced = stopped.is_none();
    let inserted = outcome.inserted;
    let store = store.clone();
    let write = tokio::task::spawn_blocking(move || -> crate::store::Result<()> {
        let Some(mut a) = store.account(id)? else {
            return Ok(());
        };
        if let Some((status, message)) = change {
            // A pause wins; so does an expired token (only a new login clears it).
            let expired =
                a.sync_status == SyncStatus::TokenExpired && status != SyncStatus::TokenExpired;
            if a.is_active && !expired {
                a.sync_status = status;
                a.error_message = message;
            }
        }
        if synced {
            a.last_synced_at = Some(now);
        }
        a.total_mentions_tracked += inserted as u64;
        a.updated_at = now;
        store.put_account(&a)
    })
    .await;
    match write {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!("cannot save the account's sync state: {e}"),
        Err(e) => tracing::error!("account update task failed: {e}"),
    }
    FetchResult {
        stored: inserted,
        stopped,
        spent_until: if synced { spent_until } else { None },
    }
}
