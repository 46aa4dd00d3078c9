//! `GET /api/v1/events`: what the sync engine and the outbox report, as Server-Sent Events.
//!
//! Each event's `event:` field is its `type` and its `data:` the JSON of [`ApiEvent`]. New
//! mentions come with their ids and content (`mentions_stored`): the engine says how many a page
//! stored, and this stream reads those mentions from the store right after the page is
//! committed: the ones stored since this stream last looked, newest first, searched at the top
//! of the account's feed (where live polls store) and at its bottom (where a first backfill
//! stores). A comment line every 15 s keeps proxies from closing an idle stream. A client that
//! falls more than `service::EVENT_BACKLOG` events behind gets an `event: lagged` and the stream
//! ends (a slow reader cannot hold the service's memory).

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use chrono::{DateTime, Utc};
use futures::Stream;
use tokio::sync::broadcast::error::RecvError;

use super::shapes::{ApiEvent, MentionOut, SendEventState};
use crate::domain::{AccountId, Mention, TeamEvent};
use crate::outbox::OutboxEvent;
use crate::service::{Hub, ServiceEvent};
use crate::store::{FeedFilter, FeedPos};
use crate::sync::SyncEvent;

/// How many rows at each end of an account's feed are searched, at most, for a page's new
/// mentions.
const NEW_MENTION_SCAN: usize = 1_000;

/// The live event stream.
#[utoipa::path(
    get,
    path = "/api/v1/events",
    tag = "events",
    responses(
        (status = 200, description = "`text/event-stream`: one SSE event per `ApiEvent`, `event:` being its `type`", body = ApiEvent, content_type = "text/event-stream"),
    )
)]
pub async fn events(
    State(hub): State<Arc<Hub>>,
    mut caller: crate::api::auth::Caller,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let mut rx = hub.subscribe();
    let connected_at = Utc::now();
    let stream = async_stream(move |tx| async move {
        // Per account: the newest `created_at` (store time) already reported.
        let mut seen: HashMap<AccountId, DateTime<Utc>> = HashMap::new();
        loop {
            let event = match rx.recv().await {
                Ok(e) => e,
                Err(RecvError::Lagged(missed)) => {
                    let _ = tx.send(sse(&ApiEvent::Lagged { missed })).await;
                    return;
                }
                Err(RecvError::Closed) => return,
            };
            // A member hears only about the accounts they may see now (issue 16); a person
            // removed meanwhile hears nothing more, and the stream ends.
            let Some(now) = caller.current(&hub) else {
                return;
            };
            caller = now;
            if about_account(&event).is_some_and(|a| !caller.0.may_read(a)) {
                continue;
            }
            let out = match event {
                ServiceEvent::Sync(SyncEvent::PageCommitted {
                    account_id,
                    inserted,
                }) => {
                    let since = *seen.get(&account_id).unwrap_or(&connected_at);
                    let store = hub.store.clone();
                    let found = tokio::task::spawn_blocking(move || {
                        new_mentions(store.as_ref(), account_id, since, inserted)
                    })
                    .await
                    .ok()
                    .and_then(Result::ok)
                    .unwrap_or_default();
                    if let Some(newest) = found.iter().map(|m| m.created_at).max() {
                        seen.insert(account_id, newest);
                    }
                    Some(ApiEvent::MentionsStored {
                        account_id,
                        inserted,
                        mentions: found.iter().map(|m| MentionOut::new(m, None)).collect(),
                    })
                }
                ServiceEvent::Sync(e) => sync_event(e),
                ServiceEvent::Outbox(e) => Some(outbox_event(e)),
                ServiceEvent::Team(e) => Some(team_event(e)),
            };
            if let Some(out) = out
                && tx.send(sse(&out)).await.is_err()
            {
                return;
            }
        }
    });
    Sse::new(stream).keep_alive(
        KeepAlive::new()
            .interval(Duration::from_secs(15))
            .text("keep-alive"),
    )
}

/// The account an event is about, if it is about one.
fn about_account(event: &ServiceEvent) -> Option<AccountId> {
    match event {
        ServiceEvent::Sync(e) => match e {
            SyncEvent::Started { account_id }
            | SyncEvent::PageCommitted { account_id, .. }
            | SyncEvent::Finished { account_id, .. }
            | SyncEvent::Budget { account_id, .. }
            | SyncEvent::AccountRemoved { account_id }
            | SyncEvent::Subscriptions { account_id, .. } => Some(*account_id),
            SyncEvent::AccountUpdated(account) => Some(account.id),
            SyncEvent::Notice { account_id, .. } => *account_id,
            SyncEvent::StreamStatus(_) => None,
        },
        ServiceEvent::Outbox(e) => Some(e.key().account_id),
        ServiceEvent::Team(e) => Some(e.account_id()),
    }
}

fn team_event(event: TeamEvent) -> ApiEvent {
    match event {
        TeamEvent::Assigned {
            key,
            mention_id,
            assigned_to,
            by,
            at,
            ..
        } => ApiEvent::MentionAssigned {
            account_id: key.account_id,
            mention_id,
            tweet_id: key.tweet_id.to_string(),
            assigned_to,
            by,
            at,
        },
        TeamEvent::Replying {
            key,
            person,
            replying,
            at,
            ..
        } => ApiEvent::Replying {
            account_id: key.account_id,
            tweet_id: key.tweet_id.to_string(),
            person,
            replying,
            at,
        },
    }
}

/// The mentions of `account` stored after `since`, newest first, at most `inserted`: looked
/// for a few rows at a time from the newest end of the account's feed (where a live poll
/// stores), then from the oldest end (where a first backfill stores), each up to
/// [`NEW_MENTION_SCAN`] rows.
pub(crate) fn new_mentions(
    store: &dyn crate::store::ServiceBackend,
    account: AccountId,
    since: DateTime<Utc>,
    inserted: usize,
) -> crate::store::Result<Vec<Mention>> {
    const STEP: usize = 50;
    let filter = FeedFilter {
        account: Some(account),
        status: None,
    };
    let is_new = |m: &Mention| m.created_at > since;
    let mut found: Vec<Mention> = Vec::new();
    let mut after = None;
    let mut scanned = 0;
    while found.len() < inserted && scanned < NEW_MENTION_SCAN {
        let page = store.page_after(&filter, after, STEP)?;
        let Some(last) = page.last() else { break };
        after = Some(FeedPos::from(last));
        scanned += page.len();
        found.extend(page.into_iter().filter(is_new));
    }
    let mut before = None;
    let mut scanned = 0;
    while found.len() < inserted && scanned < NEW_MENTION_SCAN {
        // The rows just above `before`, newest first (the oldest ones when `None`).
        let page = store.page_before(&filter, before, STEP)?;
        let Some(top) = page.first() else { break };
        before = Some(FeedPos::from(top));
        scanned += page.len();
        let known: std::collections::HashSet<_> = found.iter().map(|m| m.key()).collect();
        found.extend(
            page.into_iter()
                .filter(|m| is_new(m) && !known.contains(&m.key())),
        );
    }
    found.sort_by_key(|m| std::cmp::Reverse(m.tweet_id_u64()));
    found.truncate(inserted);
    Ok(found)
}

fn sync_event(e: SyncEvent) -> Option<ApiEvent> {
    Some(match e {
        SyncEvent::Started { account_id } => ApiEvent::PollStarted { account_id },
        SyncEvent::Finished {
            account_id,
            inserted,
            next_poll_at,
            ..
        } => ApiEvent::PollFinished {
            account_id,
            inserted,
            next_poll_at,
        },
        SyncEvent::AccountUpdated(account) => ApiEvent::AccountUpdated { account },
        SyncEvent::AccountRemoved { account_id } => ApiEvent::AccountRemoved { account_id },
        SyncEvent::Notice {
            account_id,
            message,
        } => ApiEvent::Notice {
            account_id,
            message,
        },
        // Handled by the caller (it reads the new mentions).
        SyncEvent::PageCommitted { .. } => return None,
        // The engine's view of X's rate budget, and the Activity stream's connection and
        // subscriptions: not part of the API (yet). Mentions that arrive by stream are
        // committed as pages and reported as `mentions_stored` like polled ones.
        SyncEvent::Budget { .. } | SyncEvent::StreamStatus(_) | SyncEvent::Subscriptions { .. } => {
            return None;
        }
    })
}

fn outbox_event(e: OutboxEvent) -> ApiEvent {
    let key = e.key();
    let (state, kind, message, until, response) = match e {
        OutboxEvent::Sending { .. } => (SendEventState::Sending, None, None, None, None),
        OutboxEvent::Sent { kind, response, .. } => {
            (SendEventState::Sent, Some(kind), None, None, Some(response))
        }
        OutboxEvent::Failed { kind, message, .. } => (
            SendEventState::Failed,
            Some(kind),
            Some(message),
            None,
            None,
        ),
        OutboxEvent::Unconfirmed { kind, message, .. } => (
            SendEventState::Unconfirmed,
            Some(kind),
            Some(message),
            None,
            None,
        ),
        OutboxEvent::Waiting { kind, until, .. } => {
            (SendEventState::Waiting, Some(kind), None, Some(until), None)
        }
        OutboxEvent::Cancelled { kind, .. } => {
            (SendEventState::Cancelled, Some(kind), None, None, None)
        }
        OutboxEvent::Refused { message, .. } => {
            (SendEventState::Refused, None, Some(message), None, None)
        }
    };
    ApiEvent::Send {
        account_id: key.account_id,
        tweet_id: key.tweet_id.to_string(),
        state,
        kind,
        message,
        until,
        response,
    }
}

fn sse(event: &ApiEvent) -> Result<Event, Infallible> {
    let name = serde_json::to_value(event)
        .ok()
        .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(str::to_string))
        .unwrap_or_else(|| "event".to_string());
    Ok(Event::default()
        .event(name)
        .json_data(event)
        .unwrap_or_else(|_| Event::default().comment("an event could not be encoded")))
}

/// A stream fed by a task through a small bounded channel: a client that reads nothing holds at
/// most this many encoded events here (the broadcast behind it is what lags).
fn async_stream<F, Fut>(producer: F) -> impl Stream<Item = Result<Event, Infallible>>
where
    F: FnOnce(tokio::sync::mpsc::Sender<Result<Event, Infallible>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    let task = tokio::spawn(producer(tx));
    futures::stream::unfold((rx, AbortOnDrop(task)), |(mut rx, task)| async move {
        rx.recv().await.map(|item| (item, (rx, task)))
    })
}

/// Ends the producer task when the client's stream is dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
