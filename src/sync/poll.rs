//! One poll of one account: fetch every page newer than the committed cursor and commit each page
//! atomically as it arrives.
//!
//! The cursor protocol (CONTRACT.md §3.2): ask `since_id = cursor`; follow `next_token` (pages go
//! older) until it is absent; then set the cursor to the newest id of the first page. Pages are
//! committed as they arrive (the feed fills from the top while older pages load), but only the
//! commit of the last page moves the cursor, in the same sled batch as that page's mentions, so a
//! crash or an error mid-way re-fetches (the store drops what it already has) and never skips.
//! A poll cut short (budget, error) hands back a [`Resume`] so the next poll continues from the
//! page it stopped at instead of starting over; a restart of perch forgets it and safely starts
//! again from the committed cursor.

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;

use crate::auth::{AuthError, CallError, TokenManager};
use crate::costs::ResourceClass;
use crate::domain::{Account, AccountId, Mention};
use crate::store::{ReadCharge, Store};
use crate::x::{self, MentionsPage, XClient, XError, XResponse};

use super::budget::EndpointBudget;
use super::spend::SpendGate;
use super::{SyncCounters, SyncEvent};

/// Where an unfinished poll stopped: enough to fetch its next page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resume {
    /// The `since_id` the poll started from (the committed cursor then).
    pub since_id: Option<u64>,
    /// The `next_token` of the last page read.
    pub next_token: String,
    /// The newest id of the poll's first page: the cursor once the pages run out.
    pub newest: Option<u64>,
    /// Posts fetched so far (for the backfill cap).
    pub fetched: usize,
}

/// What one poll is asked to do.
#[derive(Clone, Debug)]
pub struct PollJob {
    pub account: Account,
    /// The mentions endpoint's budget as the engine knows it.
    pub budget: EndpointBudget,
    /// At most this many mentions on an account's first sync.
    pub backfill_cap: usize,
    pub resume: Option<Resume>,
    /// The monthly budgets, checked before every request.
    pub spend: SpendGate,
}

/// How a poll ended.
#[derive(Debug)]
pub struct PollOutcome {
    pub account_id: AccountId,
    /// Mentions newly stored by this poll (also on failure: earlier pages stay committed).
    pub inserted: usize,
    /// Pages read (responses that were stored).
    pub pages: usize,
    /// The budget after the last response.
    pub budget: EndpointBudget,
    /// Set when the poll stopped before the pages ran out.
    pub resume: Option<Resume>,
    pub result: Result<(), PollError>,
}

/// Why a poll stopped early, sorted by what the scheduler does about it.
#[derive(Debug)]
pub enum PollError {
    /// The budget is spent: X answered 429 (`refused`), or the tracked budget said it would and
    /// no request was sent. Resume at `reset` (unknown: back off).
    RateLimited {
        reset: Option<DateTime<Utc>>,
        refused: bool,
    },
    /// X no longer accepts the account's tokens and refreshing failed: the user must reauthorize.
    TokenExpired(String),
    /// Timeouts, resets, 5xx, a store hiccup: back off and retry.
    Transient(String),
    /// Only the user can fix it (402 credits, 403 enrolment or scopes, a request X calls invalid):
    /// X's own words, and what to do.
    Blocked { detail: String, remedy: String },
    /// A response perch cannot read: the page is rejected, the cursor stays.
    Rejected(String),
    /// A monthly budget is reached: no request was sent.
    BudgetReached(crate::costs::BudgetReached),
    /// 402 CreditsDepleted: X refuses every request of the app until credits are added.
    CreditsDepleted(String),
}

/// Runs one poll. Never panics on what X sends; every way out is a [`PollOutcome`].
pub async fn poll_account(
    store: &Store,
    client: &XClient,
    tokens: &TokenManager,
    job: PollJob,
    events: &mpsc::Sender<SyncEvent>,
    counters: &SyncCounters,
) -> PollOutcome {
    let account = job.account;
    let mut outcome = PollOutcome {
        account_id: account.id,
        inserted: 0,
        pages: 0,
        budget: job.budget,
        resume: None,
        result: Ok(()),
    };
    let (since_id, mut page_token, mut newest, mut fetched) = match job.resume {
        Some(r) => (r.since_id, Some(r.next_token), r.newest, r.fetched),
        None => match read_cursor(store, account.id).await {
            Ok(cursor) => (cursor, None, None, 0),
            Err(message) => {
                outcome.result = Err(PollError::Transient(message));
                return outcome;
            }
        },
    };
    let resumed = page_token.is_some();
    let first_sync = since_id.is_none();
    loop {
        // Never send a request the budget says X will refuse.
        if let Some(reset) = outcome.budget.spent_until(Utc::now()) {
            outcome.resume = page_token.map(|next_token| Resume {
                since_id,
                next_token,
                newest,
                fetched,
            });
            outcome.result = Err(PollError::RateLimited {
                reset: Some(reset),
                refused: false,
            });
            return outcome;
        }
        // Never send a request the monthly budget does not cover (the page is sized to it).
        let reservation = match job.spend.before_read(&account, Utc::now()) {
            Ok(reservation) => reservation,
            Err(reached) => {
                outcome.resume = page_token.map(|next_token| Resume {
                    since_id,
                    next_token,
                    newest,
                    fetched,
                });
                outcome.result = Err(PollError::BudgetReached(reached));
                return outcome;
            }
        };
        SyncCounters::add(&counters.page_requests, 1);
        let response = fetch_page(
            client,
            tokens,
            &account,
            since_id,
            page_token.as_deref(),
            reservation.max_results,
        )
        .await;
        let response = match response {
            Ok(response) => response,
            Err(e) => {
                if let CallError::X(x) = &e
                    && let Some(headers) = x.rate_limit()
                {
                    outcome.budget.observe(headers);
                    send_budget(events, account.id, &outcome.budget).await;
                }
                let invalid_token = matches!(e, CallError::X(XError::InvalidRequest { .. }))
                    && page_token.is_some();
                if invalid_token && resumed && outcome.pages == 0 {
                    // The saved next_token has expired: start over from the cursor next time.
                    outcome.result = Err(PollError::Transient(
                        "X no longer accepts the saved page token; starting over from the cursor"
                            .into(),
                    ));
                    return outcome;
                }
                outcome.resume = page_token.map(|next_token| Resume {
                    since_id,
                    next_token,
                    newest,
                    fetched,
                });
                outcome.result = Err(classify(e));
                return outcome;
            }
        };
        outcome.budget.observe(&response.rate_limit);
        send_budget(events, account.id, &outcome.budget).await;
        let XResponse {
            data: page,
            transaction_id,
            ..
        } = response;
        log_page_trouble(&account, &page, transaction_id.as_deref());
        if page_token.is_none() {
            newest = page
                .newest_id
                .or_else(|| page.posts.iter().map(|p| p.tweet_id).max());
        }
        let room = if first_sync {
            job.backfill_cap.saturating_sub(fetched)
        } else {
            usize::MAX
        };
        let now = Utc::now();
        let mentions: Vec<Mention> = page
            .posts
            .iter()
            .take(room)
            .filter(|p| !p.is_retweet)
            .map(|p| x::to_mention(p, &account, now))
            .collect();
        let taken = page.posts.len().min(room);
        fetched += taken;
        let last_page = page.next_token.is_none() || (first_sync && fetched >= job.backfill_cap);
        // The cursor moves with the last page only, and never backwards.
        let new_cursor = if last_page {
            match (newest, since_id) {
                (Some(n), Some(s)) => Some(n.max(s)),
                (n, s) => n.or(s),
            }
        } else {
            None
        };
        // X bills every post in `data`, kept or not (retweets, past the backfill cap).
        let charge = ReadCharge {
            at: Utc::now(),
            class: ResourceClass::Post,
            kind: store
                .pricing()
                .mentions_read_kind(&account.twitter_username),
            ids: page.posts.iter().map(|p| p.tweet_id).collect(),
        };
        let committed = commit(store, account.id, mentions, new_cursor, charge).await;
        drop(reservation);
        match committed {
            Ok((inserted, refetched)) => {
                SyncCounters::add(&counters.pages_committed, 1);
                SyncCounters::add(&counters.inserted, inserted as u64);
                SyncCounters::add(&counters.refetched, refetched as u64);
                outcome.pages += 1;
                outcome.inserted += inserted;
                if inserted > 0 {
                    let _ = events
                        .send(SyncEvent::PageCommitted {
                            account_id: account.id,
                            inserted,
                        })
                        .await;
                }
            }
            Err(message) => {
                // Nothing of this page was stored: retry it, not the ones before.
                outcome.resume = page_token.map(|next_token| Resume {
                    since_id,
                    next_token,
                    newest,
                    fetched: fetched - taken,
                });
                outcome.result = Err(PollError::Transient(message));
                return outcome;
            }
        }
        if last_page {
            return outcome;
        }
        page_token = page.next_token;
    }
}

async fn fetch_page(
    client: &XClient,
    tokens: &TokenManager,
    account: &Account,
    since_id: Option<u64>,
    page_token: Option<&str>,
    max_results: u32,
) -> Result<XResponse<MentionsPage>, CallError> {
    tokens
        .with_token(account.id, |access| {
            let client = client.clone();
            let user_id = account.twitter_id.clone();
            let page_token = page_token.map(str::to_string);
            async move {
                client
                    .mentions_page_sized(
                        &access,
                        &user_id,
                        since_id,
                        page_token.as_deref(),
                        max_results,
                    )
                    .await
            }
        })
        .await
}

async fn read_cursor(store: &Store, account: AccountId) -> Result<Option<u64>, String> {
    let store = store.clone();
    match tokio::task::spawn_blocking(move || store.cursor(account)).await {
        Ok(Ok(cursor)) => Ok(cursor),
        Ok(Err(e)) => Err(format!("cannot read the sync cursor: {e}")),
        Err(e) => Err(format!("the cursor read failed: {e}")),
    }
}

/// Commits one page; returns how many mentions were new and how many were already stored.
async fn commit(
    store: &Store,
    account: AccountId,
    mentions: Vec<Mention>,
    new_cursor: Option<u64>,
    charge: ReadCharge,
) -> Result<(usize, usize), String> {
    let store = store.clone();
    match tokio::task::spawn_blocking(move || {
        store.commit_page_charged(account, &mentions, new_cursor, Some(&charge))
    })
    .await
    {
        Ok(Ok(done)) => Ok((done.inserted, done.duplicates)),
        Ok(Err(e)) => Err(format!("cannot store the page: {e}")),
        Err(e) => Err(format!("the store task failed: {e}")),
    }
}

async fn send_budget(events: &mpsc::Sender<SyncEvent>, account_id: AccountId, b: &EndpointBudget) {
    if let Some(window) = b.window() {
        let _ = events
            .send(SyncEvent::Budget {
                account_id,
                remaining: window.remaining,
                limit: window.limit,
                reset: window.reset,
            })
            .await;
    }
}

/// Unreadable posts and partial errors do not stop a page; they are logged with the request id.
fn log_page_trouble(account: &Account, page: &MentionsPage, transaction_id: Option<&str>) {
    let request = transaction_id.unwrap_or("-");
    for skipped in &page.skipped_items {
        tracing::warn!(account = %account.handle(), request, "skipped an unreadable post: {skipped}");
    }
    for partial in &page.partial_errors {
        tracing::info!(account = %account.handle(), request, "partial error from X: {partial}");
    }
}

/// Sorts a failed call by what the scheduler does next.
fn classify(e: CallError) -> PollError {
    match e {
        CallError::Auth(auth) if auth.needs_reauthorization() => {
            PollError::TokenExpired(auth.to_string())
        }
        CallError::Auth(AuthError::UnknownAccount { account }) => {
            PollError::Transient(format!("account {account} was removed while it was polled"))
        }
        CallError::Auth(other) => PollError::Transient(other.to_string()),
        CallError::X(x) => classify_x(x),
    }
}

fn classify_x(e: XError) -> PollError {
    match e {
        XError::RateLimited { reset, .. } => PollError::RateLimited {
            reset,
            refused: true,
        },
        // with_token already refreshed once and retried: X refuses the new token too.
        XError::Unauthorized { .. } => PollError::TokenExpired(
            "X refuses the account's token even after a refresh: press R to reauthorize, or run `perch accounts reauthorize @handle`".into(),
        ),
        XError::Server { .. } | XError::Network(_) => PollError::Transient(e.to_string()),
        XError::CreditsDepleted { detail } => PollError::CreditsDepleted(detail),
        XError::Forbidden { detail, reason, problem_type, .. } => {
            let remedy = if reason.as_deref() == Some("client-not-enrolled")
                || problem_type.as_deref() == Some("client-forbidden")
            {
                "In the X developer portal, attach the app to a project with v2 access (a Pay-per-use or enrolled package)"
            } else {
                "The app may lack the tweet.read/users.read permission: press R to reauthorize the account"
            };
            PollError::Blocked {
                detail: format!("X refused (403): {detail}"),
                remedy: remedy.into(),
            }
        }
        XError::Malformed { .. } => PollError::Rejected(e.to_string()),
        XError::InvalidRequest { .. } => PollError::Blocked {
            detail: e.to_string(),
            remedy: "This is a bug in perch: please report it with the log file".into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn x_errors_are_sorted_by_what_the_scheduler_does() {
        assert!(matches!(
            classify_x(XError::Server {
                status: 503,
                detail: "Service Unavailable".into()
            }),
            PollError::Transient(_)
        ));
        assert!(matches!(
            classify_x(XError::Network("mentions timed out".into())),
            PollError::Transient(_)
        ));
        assert!(matches!(
            classify_x(XError::RateLimited {
                reset: None,
                detail: "Too Many Requests".into(),
                rate_limit: Default::default()
            }),
            PollError::RateLimited { refused: true, .. }
        ));
        let PollError::Blocked { detail, remedy } = classify_x(XError::Forbidden {
            detail: "This request must be made using an approved developer account".into(),
            problem_type: Some("client-forbidden".into()),
            reason: Some("client-not-enrolled".into()),
            rate_limit: Default::default(),
        }) else {
            panic!("403 not-enrolled is for the user to fix")
        };
        assert!(detail.contains("approved developer account"), "{detail}");
        assert!(remedy.contains("developer portal"), "{remedy}");
        let PollError::CreditsDepleted(detail) = classify_x(XError::CreditsDepleted {
            detail: "Your enrolled account [1] does not have any credits".into(),
        }) else {
            panic!("402 stops every account")
        };
        assert!(detail.contains("does not have any credits"), "{detail}");
        assert!(matches!(
            classify_x(XError::Malformed {
                detail: "users/mentions: expected value".into(),
                transaction_id: Some("abc".into())
            }),
            PollError::Rejected(m) if m.contains("abc")
        ));
    }

    #[test]
    fn a_refused_refresh_means_token_expired() {
        let e = CallError::Auth(AuthError::RefreshRejected {
            detail: "Value passed for the token was invalid.".into(),
        });
        assert!(matches!(classify(e), PollError::TokenExpired(_)));
    }
}
