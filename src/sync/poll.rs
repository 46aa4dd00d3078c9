//! One poll of one account: fetch every new page since the cursor and commit each atomically.

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;

use crate::auth::TokenManager;
use crate::domain::{Account, AccountId, Mention};
use crate::store::Store;
use crate::x::{self, Budget, XClient};

use super::SyncEvent;
use super::engine::exhausted_until;

/// How a poll ended.
#[derive(Debug)]
pub struct PollOutcome {
    pub account_id: AccountId,
    /// Mentions newly stored by this poll (also on failure: earlier pages stay committed).
    pub inserted: usize,
    /// The mentions endpoint's budget after the last response.
    pub budget: Option<Budget>,
    pub result: Result<(), PollError>,
}

/// Why a poll stopped early, sorted by what the scheduler does about it.
#[derive(Debug)]
pub enum PollError {
    /// 429, or the budget ran out mid-poll: resume at `reset`.
    RateLimited { reset: Option<DateTime<Utc>> },
    /// X no longer accepts the account's tokens: the user must reauthorize.
    TokenExpired(String),
    /// Timeouts, resets, 5xx: back off and retry.
    Transient(String),
    /// Only the user can fix it (credits, enrolment, a request X calls invalid): retry slowly.
    Blocked(String),
    /// A response perch cannot read: the page is rejected, the cursor stays.
    Rejected(String),
}

/// Fetches `since_id = cursor` forward, following `next_token` until the pages run out (or the
/// backfill cap on a first sync). Every page is committed as it arrives, so the feed fills from
/// the top while older pages load; only the last commit moves the cursor, to the newest id of the
/// first page, so a crash mid-way re-fetches rather than skips.
pub async fn poll_account(
    store: &Store,
    client: &XClient,
    tokens: &TokenManager,
    account: &Account,
    mut budget: Option<Budget>,
    backfill_cap: usize,
    events: &mpsc::Sender<SyncEvent>,
) -> PollOutcome {
    let mut outcome = PollOutcome {
        account_id: account.id,
        inserted: 0,
        budget,
        result: Ok(()),
    };
    let since_id = {
        let store = store.clone();
        let id = account.id;
        match tokio::task::spawn_blocking(move || store.cursor(id)).await {
            Ok(Ok(cursor)) => cursor,
            Ok(Err(e)) => {
                outcome.result = Err(PollError::Transient(format!("cannot read cursor: {e}")));
                return outcome;
            }
            Err(e) => {
                outcome.result = Err(PollError::Transient(format!("cursor task failed: {e}")));
                return outcome;
            }
        }
    };
    let mut page_token: Option<String> = None;
    let mut newest_of_first_page: Option<u64> = None;
    let mut fetched = 0usize;
    loop {
        // Never send a request the budget says X will refuse.
        if let Some(reset) = exhausted_until(budget, Utc::now()) {
            outcome.result = Err(PollError::RateLimited { reset: Some(reset) });
            return outcome;
        }
        let token_for_call = page_token.clone();
        let response = tokens
            .with_token(account.id, |access| {
                let client = client.clone();
                let user_id = account.twitter_id.clone();
                let page = token_for_call.clone();
                async move {
                    client
                        .mentions_page(&access, &user_id, since_id, page.as_deref())
                        .await
                }
            })
            .await;
        let response = match response {
            Ok(r) => r,
            Err(e) => {
                // A 429's headers carry the budget too.
                if let crate::auth::CallError::X(x::XError::RateLimited { rate_limit, .. }) = &e
                    && let Some(window) = rate_limit.window
                {
                    outcome.budget = Some(window);
                }
                outcome.result = Err(PollError::from(e));
                return outcome;
            }
        };
        if let Some(window) = response.rate_limit.window {
            budget = Some(window);
            outcome.budget = Some(window);
            let _ = events
                .send(SyncEvent::Budget {
                    account_id: account.id,
                    remaining: window.remaining,
                    limit: window.limit,
                    reset: window.reset,
                })
                .await;
        }
        let page = response.data;
        for skipped in &page.skipped_items {
            tracing::warn!(account = %account.handle(), request = ?response.transaction_id, "skipped an unreadable post: {skipped}");
        }
        for partial in &page.partial_errors {
            tracing::info!(account = %account.handle(), "partial error from X: {partial}");
        }
        if page_token.is_none() {
            newest_of_first_page = page
                .newest_id
                .or_else(|| page.posts.iter().map(|p| p.tweet_id).max());
        }
        fetched += page.posts.len();
        let now = Utc::now();
        let mentions: Vec<Mention> = page
            .posts
            .iter()
            .filter(|p| !p.is_retweet)
            .map(|p| x::to_mention(p, account, now))
            .collect();
        let first_sync = since_id.is_none();
        let last_page = page.next_token.is_none() || (first_sync && fetched >= backfill_cap);
        // The cursor only moves with the last page, and never backwards.
        let new_cursor = if last_page {
            match (newest_of_first_page, since_id) {
                (Some(n), Some(s)) => Some(n.max(s)),
                (n, s) => n.or(s),
            }
        } else {
            None
        };
        let commit = {
            let store = store.clone();
            let id = account.id;
            tokio::task::spawn_blocking(move || store.commit_page(id, &mentions, new_cursor)).await
        };
        match commit {
            Ok(Ok(done)) => {
                outcome.inserted += done.inserted;
                if done.inserted > 0 {
                    let _ = events
                        .send(SyncEvent::PageCommitted {
                            account_id: account.id,
                            inserted: done.inserted,
                        })
                        .await;
                }
            }
            Ok(Err(e)) => {
                outcome.result = Err(PollError::Transient(format!("cannot store the page: {e}")));
                return outcome;
            }
            Err(e) => {
                outcome.result = Err(PollError::Transient(format!("store task failed: {e}")));
                return outcome;
            }
        }
        if last_page {
            return outcome;
        }
        page_token = page.next_token;
    }
}
