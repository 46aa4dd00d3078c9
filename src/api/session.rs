//! The dashboard's session, server side: an upgraded connection speaking `protocol`. Requests are
//! answered in order (a triage and the read after it see each other); the service's events are
//! pushed on the same connection. When the connection ends, however it ends, the sends this
//! session asked for and X has not answered are abandoned (`OutboxCommand::Abandon`): a dashboard
//! that quits or is killed leaves nothing to go out later unasked.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse as _, Response};
use axum::routing::get;
use chrono::Utc;
use hyper_util::rt::TokioIo;
use tokio::sync::{broadcast, mpsc};

use crate::domain::MentionKey;
use crate::outbox::{OutboxCommand, OutboxEvent};
use crate::protocol::{self, Request as Op, RequestFrame, ServerFrame, UPGRADE};
use crate::service::{Hub, ServiceEvent};

pub fn routes() -> Router<Arc<Hub>> {
    Router::new().route("/internal/v1/session", get(upgrade))
}

/// Frames queued for one client before it counts as not reading: then the session is closed (the
/// client reconnects and re-reads), so a stuck client costs bounded memory.
const OUTGOING_BACKLOG: usize = 1024;

async fn upgrade(State(hub): State<Arc<Hub>>, mut request: Request) -> Response {
    let wants = request
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case(UPGRADE));
    if !wants {
        return super::error(
            StatusCode::UPGRADE_REQUIRED,
            format!(
                "this endpoint is the dashboard's session: send `Connection: Upgrade` and `Upgrade: {UPGRADE}`"
            ),
        );
    }
    let on_upgrade = hyper::upgrade::on(&mut request);
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => run(hub, TokioIo::new(upgraded)).await,
            Err(e) => tracing::warn!("a session upgrade failed: {e}"),
        }
    });
    (
        StatusCode::SWITCHING_PROTOCOLS,
        [(header::CONNECTION, "upgrade"), (header::UPGRADE, UPGRADE)],
    )
        .into_response()
}

async fn run<S>(hub: Arc<Hub>, stream: S)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut reader, mut writer) = tokio::io::split(stream);
    let (out_tx, mut out_rx) = mpsc::channel::<Vec<u8>>(OUTGOING_BACKLOG);
    let writer_task = tokio::spawn(async move {
        while let Some(body) = out_rx.recv().await {
            if protocol::tokio_io::write_frame(&mut writer, &body)
                .await
                .is_err()
            {
                break;
            }
        }
    });
    // Sends this session asked for that X has not settled yet.
    let owned: Arc<Mutex<HashSet<MentionKey>>> = Arc::default();
    let subscribed = hub.subscribe();
    // The live stream's state first: this client missed the events that set it (issue 12).
    for event in hub.live_events() {
        if let Ok(body) = serde_json::to_vec(&ServerFrame::Event { event }) {
            let _ = out_tx.try_send(body);
        }
    }
    let events = tokio::spawn(forward_events(subscribed, out_tx.clone(), owned.clone()));

    loop {
        // An upgraded connection is no longer the HTTP server's: it ends here when the service
        // stops, so the dashboard hears of it at once (and reconnects to the next one).
        let frame = tokio::select! {
            frame = protocol::tokio_io::read_frame(&mut reader) => frame,
            _ = hub.stopped() => break,
        };
        let body = match frame {
            Ok(Some(body)) => body,
            Ok(None) => break,
            Err(e) => {
                tracing::debug!("a session ended: {e}");
                break;
            }
        };
        let frame: RequestFrame = match serde_json::from_slice(&body) {
            Ok(frame) => frame,
            Err(e) => {
                // Without an id there is no one to answer: end the session, saying why.
                tracing::warn!("a session sent an unreadable request: {e}");
                break;
            }
        };
        if let Op::Outbox {
            command: OutboxCommand::Send(request),
        } = &frame.request
        {
            lock(&owned).insert(request.key);
        }
        let result = execute(&hub, frame.request).await;
        let reply = ServerFrame::Reply {
            id: frame.id,
            result,
        };
        let Ok(body) = serde_json::to_vec(&reply) else {
            break;
        };
        if out_tx.send(body).await.is_err() {
            break;
        }
    }
    events.abort();
    drop(out_tx);
    let _ = writer_task.await;
    let abandoned: Vec<MentionKey> = lock(&owned).drain().collect();
    for key in abandoned {
        tracing::info!(
            tweet_id = key.tweet_id,
            "the client of a send went away: abandoning it"
        );
        if hub.outbox.send(OutboxCommand::Abandon(key)).await.is_err() {
            tracing::warn!(
                "the outbox has stopped; an abandoned send is settled at the next start"
            );
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

async fn forward_events(
    mut events: broadcast::Receiver<ServiceEvent>,
    out: mpsc::Sender<Vec<u8>>,
    owned: Arc<Mutex<HashSet<MentionKey>>>,
) {
    loop {
        let event = match events.recv().await {
            Ok(event) => event,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!("a session missed {n} events; closing it so it re-reads");
                if let Ok(body) = serde_json::to_vec(&ServerFrame::Lagged) {
                    let _ = out.try_send(body);
                }
                return;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        if let ServiceEvent::Outbox(e) = &event
            && settles(e)
        {
            lock(&owned).remove(&e.key());
        }
        let Ok(body) = serde_json::to_vec(&ServerFrame::Event { event }) else {
            continue;
        };
        if out.try_send(body).is_err() {
            tracing::warn!("a session is not reading its events; closing it");
            return;
        }
    }
}

/// Whether the send is settled as far as its client is concerned: nothing of it can leave later.
fn settles(event: &OutboxEvent) -> bool {
    matches!(
        event,
        OutboxEvent::Sent { .. }
            | OutboxEvent::Failed { .. }
            | OutboxEvent::Cancelled { .. }
            | OutboxEvent::Unconfirmed { .. }
            | OutboxEvent::Refused { .. }
    )
}

/// Carries out one request against the service's store, engine or outbox.
async fn execute(hub: &Arc<Hub>, request: Op) -> Result<serde_json::Value, String> {
    match request {
        Op::Outbox { command } => match hub.outbox.try_send(command) {
            Ok(()) => Ok(serde_json::Value::Null),
            Err(mpsc::error::TrySendError::Full(_)) => {
                Err("the outbox is busy; try again in a moment".into())
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                Err("the outbox has stopped; restart the perch service".into())
            }
        },
        Op::Sync { command } => match hub.sync.try_send(command) {
            Ok(()) => Ok(serde_json::Value::Null),
            Err(mpsc::error::TrySendError::Full(_)) => {
                Err("the sync engine is busy; try again in a moment".into())
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                Err("the sync engine has stopped; restart the perch service".into())
            }
        },
        Op::CompleteLogin { tokens, expected } => {
            let expected = match expected {
                Some(id) => read(hub, move |s| s.account(id)).await?,
                None => None,
            };
            let (account, reauthorized) = crate::auth::complete_login_as(
                &hub.store,
                &hub.client,
                tokens,
                expected.as_ref(),
                Utc::now(),
            )
            .await
            .map_err(|e| e.to_string())?;
            let store = hub.store.clone();
            let _ = tokio::task::spawn_blocking(move || store.flush()).await;
            to_value(&(account, reauthorized))
        }
        other => {
            let hub = hub.clone();
            tokio::task::spawn_blocking(move || store_request(&hub, other))
                .await
                .map_err(|e| format!("the store task failed: {e}"))?
        }
    }
}

async fn read<T: Send + 'static>(
    hub: &Arc<Hub>,
    f: impl FnOnce(&crate::store::Store) -> Result<T, crate::store::StoreError> + Send + 'static,
) -> Result<T, String> {
    let store = hub.store.clone();
    tokio::task::spawn_blocking(move || f(&store).map_err(|e| e.to_string()))
        .await
        .map_err(|e| format!("the store task failed: {e}"))?
}

fn to_value(value: &impl serde::Serialize) -> Result<serde_json::Value, String> {
    serde_json::to_value(value).map_err(|e| format!("cannot encode the answer: {e}"))
}

/// The requests that are one store call (blocking; run on the blocking pool).
fn store_request(hub: &Hub, request: Op) -> Result<serde_json::Value, String> {
    use crate::app::{FeedSource as _, StoreWrites};
    let store = &hub.store;
    let e = |e: crate::store::StoreError| e.to_string();
    match request {
        Op::Mention { key } => to_value(&store.mention(key).map_err(e)?),
        Op::Count { filter } => to_value(&store.count(&filter).map_err(e)?),
        Op::Account { id } => to_value(&store.account(id).map_err(e)?),
        Op::Accounts => to_value(&store.accounts().map_err(e)?),
        Op::PageBefore {
            filter,
            before,
            limit,
        } => to_value(&store.page_before(&filter, before, limit).map_err(e)?),
        Op::PageAfter {
            filter,
            after,
            limit,
        } => to_value(&store.page_after(&filter, after, limit).map_err(e)?),
        Op::SearchPage {
            filter,
            query,
            after,
            limit,
            max_scan,
        } => to_value(
            &store
                .search_page(&filter, &query, after, limit, max_scan)
                .map_err(e)?,
        ),
        Op::DailyCounts {
            account,
            today,
            days,
        } => to_value(&store.daily_counts(account, today, days).map_err(e)?),
        Op::Draft { key } => to_value(&store.draft(key).map_err(e)?),
        Op::LastUndoAction => to_value(&store.last_undo_action().map_err(e)?),
        Op::AccountStats { account, now } => {
            to_value(&store.account_stats(&account, now).map_err(e)?)
        }
        Op::AccountCostStats { account, now } => {
            to_value(&store.account_cost_stats(account, now).map_err(e)?)
        }
        Op::OutboxOpen => to_value(&store.outbox_open().map_err(e)?),
        Op::OutboxCurrent { key } => to_value(&store.outbox_current(key).map_err(e)?),
        Op::Arrival { key } => to_value(&store.arrival(key).map_err(e)?),
        Op::CostTodayAndMonth { now } => {
            let (totals, per_account) = store.cost_today_and_month(now).map_err(e)?;
            to_value(&(totals, per_account))
        }
        Op::Triage {
            action,
            keys,
            status,
        } => to_value(&StoreWrites::triage(store, action, &keys, status).map_err(e)?),
        Op::UndoStep { action } => to_value(&StoreWrites::undo_step(store, action).map_err(e)?),
        Op::PutDraft { key, draft } => to_value(&store.put_draft(key, &draft).map_err(e)?),
        Op::DeleteDraft { key } => to_value(&store.delete_draft(key).map_err(e)?),
        Op::Outbox { .. } | Op::Sync { .. } | Op::CompleteLogin { .. } => {
            Err("internal: an async request reached the store path".into())
        }
    }
}
