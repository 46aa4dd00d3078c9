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
//!
//! What X says is checked, not believed (issue 10): the cursor moves to the newest id that was
//! actually stored (`page.rs`), never to `meta.newest_id`; a malformed page stops the poll with
//! the cursor where it was; the page loop ends on a repeated `next_token`, on an empty page that
//! still carries one, and after [`MAX_PAGES_PER_POLL`] pages, without moving the cursor (what
//! lies beyond was never seen), and the next poll starts again; and nothing is fetched while the
//! disk under the store is too full to keep it.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;

use crate::auth::{AuthError, CallError, TokenManager};
use crate::costs::ResourceClass;
use crate::domain::{Account, AccountId, Mention};
use crate::store::{ReadCharge, SharedStore, StoreError};
use crate::x::{self, MentionsPage, XClient, XError, XResponse};

use super::budget::EndpointBudget;
use super::page::{next_cursor, read_page};
use super::spend::SpendGate;
use super::{SyncCounters, SyncEvent};

/// The most pages one poll follows. X serves the newest 800 mentions at most, 100 a page: a poll
/// that needs more than twice that many pages is being led in a circle.
pub const MAX_PAGES_PER_POLL: usize = 16;

/// Where an unfinished poll stopped: enough to fetch its next page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resume {
    /// The `since_id` the poll started from (the committed cursor then).
    pub since_id: Option<u64>,
    /// The `next_token` of the last page read.
    pub next_token: String,
    /// The newest id the poll has stored so far: the cursor once the pages run out.
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
    /// Unreadable posts skipped (and recorded) by this poll.
    pub unreadable: usize,
    /// Stored mentions whose unknown sender this poll's copies named (`PageCommit`).
    pub senders_filled: usize,
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
    /// A page that cannot be X's word (no readable post, a `meta.newest_id` that disagrees with
    /// it): its readable posts are stored, the cursor stays, the next poll asks again.
    MalformedPage(String),
    /// The pages do not end (a repeated `next_token`, empty pages that carry one, more than
    /// [`MAX_PAGES_PER_POLL`]): what was read is stored, the cursor stays.
    MalformedPagination(String),
    /// Too little room on the disk under the store: nothing was fetched or stored.
    DiskFull(String),
    /// A monthly budget is reached: no request was sent.
    BudgetReached(crate::costs::BudgetReached),
    /// 402 CreditsDepleted: X refuses every request of the app until credits are added.
    CreditsDepleted(String),
}

/// Runs one poll. Never panics on what X sends; every way out is a [`PollOutcome`].
pub async fn poll_account(
    store: &SharedStore,
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
        unreadable: 0,
        senders_filled: 0,
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
    // The tokens this poll has followed, to notice X sending one of them again.
    let mut tokens_seen: HashSet<String> = page_token.iter().cloned().collect();
    loop {
        // Fetch nothing that could not be kept: a full disk is checked before every request.
        if let Err(e) = check_room(store).await {
            outcome.resume = page_token.map(|next_token| Resume {
                since_id,
                next_token,
                newest,
                fetched,
            });
            outcome.result = Err(PollError::DiskFull(e));
            return outcome;
        }
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
                    outcome.budget.observe(headers, Utc::now());
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
        outcome.budget.observe(&response.rate_limit, Utc::now());
        send_budget(events, account.id, &outcome.budget).await;
        let XResponse {
            data: page,
            transaction_id,
            ..
        } = response;
        log_page_trouble(&account, &page, transaction_id.as_deref());
        let room = if first_sync {
            job.backfill_cap.saturating_sub(fetched)
        } else {
            usize::MAX
        };
        let reading = read_page(&page, room);
        let now = Utc::now();
        let mentions: Vec<Mention> = reading
            .to_store
            .iter()
            .map(|p| x::to_mention(p, &account, now))
            .collect();
        fetched += reading.taken;
        newest = newest.max(reading.newest_stored);
        let backfill_done = first_sync && fetched >= job.backfill_cap;
        let stop = page_stop(
            &page,
            &reading,
            &tokens_seen,
            outcome.pages + 1,
            backfill_done,
        );
        let last_page = stop.is_none() && (page.next_token.is_none() || backfill_done);
        // The cursor moves with the last page only, to the newest id stored, never backwards.
        let new_cursor = if last_page {
            next_cursor(newest, since_id)
        } else {
            None
        };
        // X bills every post in `data`, kept or not (retweets, unreadable ones, past the
        // backfill cap), in the same batch as the page.
        let charge = ReadCharge {
            at: Utc::now(),
            class: ResourceClass::Post,
            kind: store
                .pricing()
                .mentions_read_kind(&account.twitter_username),
            ids: page
                .posts
                .iter()
                .map(|p| p.tweet_id)
                .chain(reading.skipped_ids.iter().copied())
                .collect(),
        };
        let committed = commit(
            store,
            account.id,
            mentions,
            reading.skipped_ids,
            new_cursor,
            charge,
        )
        .await;
        drop(reservation);
        match committed {
            Ok(done) => {
                SyncCounters::add(&counters.pages_committed, 1);
                SyncCounters::add(&counters.inserted, done.inserted as u64);
                SyncCounters::add(&counters.refetched, done.duplicates as u64);
                outcome.pages += 1;
                outcome.inserted += done.inserted;
                outcome.unreadable += done.unreadable;
                outcome.senders_filled += done.senders_filled;
                if done.inserted > 0 {
                    let _ = events
                        .send(SyncEvent::PageCommitted {
                            account_id: account.id,
                            inserted: done.inserted,
                        })
                        .await;
                }
            }
            Err(error) => {
                // Nothing of this page was stored: retry it, not the ones before.
                outcome.resume = page_token.map(|next_token| Resume {
                    since_id,
                    next_token,
                    newest,
                    fetched: fetched - reading.taken,
                });
                outcome.result = Err(match error {
                    StoreError::DiskFull { .. } => PollError::DiskFull(error.to_string()),
                    other => PollError::Transient(format!("cannot store the page: {other}")),
                });
                return outcome;
            }
        }
        match stop {
            Some(PageStop::Malformed(why)) => {
                tracing::warn!(account = %account.handle(), request = transaction_id.as_deref().unwrap_or("-"), "{why}");
                // The same page is asked for again next time.
                outcome.resume = page_token.map(|next_token| Resume {
                    since_id,
                    next_token,
                    newest,
                    fetched: fetched - reading.taken,
                });
                outcome.result = Err(PollError::MalformedPage(why));
                return outcome;
            }
            Some(PageStop::Pagination(why)) => {
                tracing::warn!(account = %account.handle(), request = transaction_id.as_deref().unwrap_or("-"), "{why}");
                // No resume: the next poll starts over from the cursor, which has not moved.
                outcome.result = Err(PollError::MalformedPagination(why));
                return outcome;
            }
            None => {}
        }
        if last_page {
            return outcome;
        }
        page_token = page.next_token;
        tokens_seen.extend(page_token.clone());
    }
}

/// Why a poll stops after storing the page in hand.
enum PageStop {
    Malformed(String),
    Pagination(String),
}

/// Whether the page just read ends the poll: a malformed page, or pages that do not end.
/// `pages` counts the page just read; `backfill_done`: the poll needs no further page anyway.
fn page_stop(
    page: &MentionsPage,
    reading: &super::page::PageReading<'_>,
    tokens_seen: &HashSet<String>,
    pages: usize,
    backfill_done: bool,
) -> Option<PageStop> {
    if let Some(fault) = &reading.fault {
        return Some(PageStop::Malformed(format!(
            "{}; the cursor stays where it was",
            fault.describe()
        )));
    }
    let next = page.next_token.as_deref().filter(|_| !backfill_done)?;
    let why = if tokens_seen.contains(next) {
        "X sent a page token it had already sent (the pages would never end)".to_string()
    } else if page.item_count == 0 {
        "X sent an empty page that still points to a next page".to_string()
    } else if pages >= MAX_PAGES_PER_POLL {
        format!("X still had more pages after {MAX_PAGES_PER_POLL} in one poll")
    } else {
        return None;
    };
    Some(PageStop::Pagination(format!(
        "{why}; perch stopped reading pages, kept what it had, and starts over at the next poll"
    )))
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

async fn read_cursor(store: &SharedStore, account: AccountId) -> Result<Option<u64>, String> {
    let store = store.clone();
    match tokio::task::spawn_blocking(move || store.cursor(account)).await {
        Ok(Ok(cursor)) => Ok(cursor),
        Ok(Err(e)) => Err(format!("cannot read the sync cursor: {e}")),
        Err(e) => Err(format!("the cursor read failed: {e}")),
    }
}

/// Commits one page: its mentions, the ids of its unreadable posts, and the cursor when given.
async fn commit(
    store: &SharedStore,
    account: AccountId,
    mentions: Vec<Mention>,
    unreadable: Vec<u64>,
    new_cursor: Option<u64>,
    charge: ReadCharge,
) -> Result<crate::store::PageCommit, StoreError> {
    let store = store.clone();
    tokio::task::spawn_blocking(move || {
        store.commit_fetched_page_charged(
            account,
            &mentions,
            &unreadable,
            new_cursor,
            Some(&charge),
        )
    })
    .await
    .unwrap_or_else(|e| Err(StoreError::Invalid(format!("the store task failed: {e}"))))
}

/// Whether the disk under the store has room for a page (see `store::space`).
async fn check_room(store: &SharedStore) -> Result<(), String> {
    let store = store.clone();
    match tokio::task::spawn_blocking(move || store.ensure_room()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        // The check itself failed: let the commit decide.
        Err(_) => Ok(()),
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
