//! The dashboard's session, server side: two upgraded connections speaking `protocol`.
//!
//! - The **calls** connection (`/internal/v1/session`): requests, each answered in order (a
//!   triage and the read after it see each other), the reply written by the connection's own task
//!   the moment it is ready. When it ends, however it ends, the sends this session asked for and X
//!   has not answered are abandoned (`OutboxCommand::Abandon`): a dashboard that quits or is
//!   killed leaves nothing to go out later unasked.
//! - The **events** connection (`/internal/v1/session/events`): the service's events, pushed.
//!
//! Why two: on one connection, a client needs a reader thread that hands each reply to its
//! caller, and that hand-off is a thread wake-up on every read of the key path (tens of
//! microseconds each, hundreds at the tail on a busy machine; issue 11). On its own connection a
//! reply is read by the caller that waits for it.

use std::collections::HashSet;
use std::future::Future;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse as _, Response};
use axum::routing::get;
use chrono::Utc;
use hyper_util::rt::TokioIo;
use tokio::io::AsyncReadExt as _;
use tokio::sync::{broadcast, mpsc};

use crate::domain::{AuditAction, AuditEntry, MentionKey, Person};
use crate::outbox::{OutboxCommand, OutboxEvent};
use crate::protocol::{
    self, CALLS_PATH, CALLS_UPGRADE, EVENTS_PATH, EVENTS_UPGRADE, Request as Op, RequestFrame,
    ServerFrame,
};
use crate::service::{Hub, ServiceEvent};
use crate::store::ServiceBackend;

pub fn routes() -> Router<Arc<Hub>> {
    Router::new()
        .route(CALLS_PATH, get(upgrade_calls))
        .route(EVENTS_PATH, get(upgrade_events))
}

/// Frames queued for one client before it counts as not reading: then the session is closed (the
/// client reconnects and re-reads), so a stuck client costs bounded memory.
const OUTGOING_BACKLOG: usize = 1024;

/// The longest one frame may take to go out before the client counts as not reading (it is
/// then disconnected; a dashboard reconnects and re-reads).
const WRITE_LIMIT: std::time::Duration = std::time::Duration::from_secs(30);

type Upgraded = TokioIo<hyper::upgrade::Upgraded>;

async fn upgrade_calls(
    State(hub): State<Arc<Hub>>,
    caller: super::auth::Caller,
    request: Request,
) -> Response {
    upgrade(
        request,
        CALLS_UPGRADE,
        "the dashboard's session",
        move |io| serve_calls(hub, caller, io),
    )
}

async fn upgrade_events(
    State(hub): State<Arc<Hub>>,
    caller: super::auth::Caller,
    request: Request,
) -> Response {
    upgrade(
        request,
        EVENTS_UPGRADE,
        "the dashboard's events",
        move |io| serve_events(hub, caller, io),
    )
}

/// Answers an upgrade to `token` with 101 and hands the upgraded connection to `serve`.
fn upgrade<F, Fut>(mut request: Request, token: &str, what: &str, serve: F) -> Response
where
    F: FnOnce(Upgraded) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let wants = request
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case(token));
    if !wants {
        return super::error(
            StatusCode::UPGRADE_REQUIRED,
            format!(
                "this endpoint is {what}: send `Connection: Upgrade` and `Upgrade: {token}` (a perch of another version sends another token)"
            ),
        );
    }
    let on_upgrade = hyper::upgrade::on(&mut request);
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => serve(TokioIo::new(upgraded)).await,
            Err(e) => tracing::warn!("a session upgrade failed: {e}"),
        }
    });
    (
        StatusCode::SWITCHING_PROTOCOLS,
        [
            (header::CONNECTION, "upgrade".to_string()),
            (header::UPGRADE, token.to_string()),
        ],
    )
        .into_response()
}

/// The calls connection: reads a request, carries it out, writes its reply; until the client
/// goes or the service stops.
async fn serve_calls(hub: Arc<Hub>, caller: super::auth::Caller, stream: Upgraded) {
    // Everything this session changes is recorded under its person (the owner on the socket).
    let who: Arc<str> = caller.name().into();
    let (mut reader, mut writer) = tokio::io::split(stream);
    // A session sees every account: it ends when its person is removed or may no longer.
    let revoked = caller.revoked(&hub, Person::sees_everything);
    tokio::pin!(revoked);
    // Sends this session asked for that X has not settled yet.
    let owned: Arc<Mutex<HashSet<MentionKey>>> = Arc::default();
    let settling = tokio::spawn(forget_settled(hub.subscribe(), owned.clone()));
    loop {
        // An upgraded connection is no longer the HTTP server's: it ends here when the service
        // stops, so the dashboard hears of it at once (and reconnects to the next one).
        let frame = tokio::select! {
            frame = protocol::tokio_io::read_frame(&mut reader) => frame,
            _ = hub.stopped() => break,
            _ = &mut revoked => break,
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
            // Who said what as the account: recorded by the hub when the outcome says it is on
            // X (`service::send_audit`); noted before the outbox has it.
            hub.note_send(request.key, &who, request.kind, &request.text);
        }
        let result = execute(&hub, &who, frame.request).await;
        let reply = ServerFrame::Reply {
            id: frame.id,
            result,
        };
        let Ok(body) = reply.encode() else {
            break;
        };
        if let Err(e) = write_bounded(&mut writer, &body).await {
            tracing::debug!("a session ended: {e}");
            break;
        }
    }
    settling.abort();
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

/// Writes one frame, giving up after [`WRITE_LIMIT`].
async fn write_bounded<W: tokio::io::AsyncWrite + Unpin>(
    writer: &mut W,
    body: &[u8],
) -> std::io::Result<()> {
    match tokio::time::timeout(WRITE_LIMIT, protocol::tokio_io::write_frame(writer, body)).await {
        Ok(written) => written,
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "the client has not read a frame in 30 s",
        )),
    }
}

/// The events connection: the live stream's state, then every event as it happens; until the
/// client goes, falls behind, or the service stops.
async fn serve_events(hub: Arc<Hub>, caller: super::auth::Caller, stream: Upgraded) {
    let (mut reader, mut writer) = tokio::io::split(stream);
    let (out_tx, mut out_rx) = mpsc::channel::<Vec<u8>>(OUTGOING_BACKLOG);
    let subscribed = hub.subscribe();
    // The live stream's state first: this client missed the events that set it (issue 12).
    for event in hub.live_events() {
        if let Ok(body) = (ServerFrame::Event { event }).encode() {
            let _ = out_tx.try_send(body);
        }
    }
    let forwarding = tokio::spawn(forward_events(subscribed, out_tx));
    let writing = async {
        while let Some(body) = out_rx.recv().await {
            if write_bounded(&mut writer, &body).await.is_err() {
                break;
            }
        }
    };
    // The client sends nothing here: a read ends when it closes the connection (or sends what it
    // should not), and the connection's task with it.
    let mut byte = [0u8; 1];
    tokio::select! {
        _ = writing => {}
        _ = reader.read(&mut byte) => {}
        _ = hub.stopped() => {}
        _ = caller.revoked(&hub, Person::sees_everything) => {}
    }
    forwarding.abort();
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Forgets the sends of `owned` as X settles them (nothing of them can leave later).
async fn forget_settled(
    mut events: broadcast::Receiver<ServiceEvent>,
    owned: Arc<Mutex<HashSet<MentionKey>>>,
) {
    loop {
        match events.recv().await {
            Ok(ServiceEvent::Outbox(e)) if settles(&e) => {
                lock(&owned).remove(&e.key());
            }
            Ok(_) => {}
            // Missed events may have settled some: the outbox ignores an abandon of a settled
            // send, so keeping them is harmless.
            Err(broadcast::error::RecvError::Lagged(_)) => {}
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

async fn forward_events(mut events: broadcast::Receiver<ServiceEvent>, out: mpsc::Sender<Vec<u8>>) {
    loop {
        let event = match events.recv().await {
            Ok(event) => event,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!("a session missed {n} events; closing it so it re-reads");
                if let Ok(body) = ServerFrame::Lagged.encode() {
                    let _ = out.try_send(body);
                }
                return;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let Ok(body) = (ServerFrame::Event { event }).encode() else {
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
/// The answer is in the reply codec (`protocol::encode_answer`).
async fn execute(hub: &Arc<Hub>, who: &Arc<str>, request: Op) -> Result<Vec<u8>, String> {
    match request {
        Op::Outbox { command } => match hub.outbox.try_send(command.clone()) {
            // A send is recorded in the audit log when it leaves (`forget_settled`).
            Ok(()) => answer(&()),
            Err(mpsc::error::TrySendError::Full(_)) => {
                Err("the outbox is busy; try again in a moment".into())
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                Err("the outbox has stopped; restart the perch service".into())
            }
        },
        // On PostgreSQL a follower has no engine: refused, saying where it runs, never answered
        // "ok" and dropped.
        Op::Sync { .. } if hub.engine_refusal().is_some() => {
            Err(hub.engine_refusal().unwrap_or_default())
        }
        Op::Sync { command } => match hub.sync.try_send(command) {
            Ok(()) => answer(&()),
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
            let entry = AuditEntry::login(who, &account, reauthorized);
            let _ = tokio::task::spawn_blocking(move || {
                if let Err(e) = store.append_audit(entry) {
                    tracing::warn!("could not record a login in the audit log: {e}");
                }
                store.flush()
            })
            .await;
            answer(&(account, reauthorized))
        }
        // A read that takes tens of microseconds is done here: handing it to the blocking pool
        // and back costs two thread wake-ups, more than the read (issue 11's key path).
        // On PostgreSQL every read is a round trip to the database, which may be slow or
        // reconnecting: never on a runtime thread's own time.
        quick if hub.store.sled().is_some() && is_quick(&quick) => store_request(hub, who, quick),
        other => run_blocking(hub, who, other).await,
    }
}

/// Runs a longer store request (a bounded scan, a write) off the runtime's hands. On a
/// multi-threaded runtime that is `block_in_place`: this thread becomes a blocking one while
/// another takes over its tasks, and the reply goes out from here, with no hand-off to a pool
/// thread and back (two wake-ups). A current-thread runtime (some tests) cannot do that, so there
/// it goes to the blocking pool.
async fn run_blocking(hub: &Arc<Hub>, who: &Arc<str>, request: Op) -> Result<Vec<u8>, String> {
    use tokio::runtime::{Handle, RuntimeFlavor};
    if Handle::current().runtime_flavor() == RuntimeFlavor::MultiThread {
        return tokio::task::block_in_place(|| store_request(hub, who, request));
    }
    let (hub, who) = (hub.clone(), who.clone());
    tokio::task::spawn_blocking(move || store_request(&hub, &who, request))
        .await
        .map_err(|e| format!("the store task failed: {e}"))?
}

/// The largest page read done on the session's own task (the dashboard asks for a screen or a
/// chunk of rows: well under this).
const QUICK_PAGE: usize = 256;

/// Whether a request is a bounded read of a few records, quick enough to run on the session's
/// task. Scans (search, the open outbox, cost totals) and writes (which may flush) go to the
/// blocking pool, so they never hold up a runtime thread.
fn is_quick(request: &Op) -> bool {
    match request {
        Op::Mention { .. }
        | Op::Count { .. }
        | Op::Account { .. }
        | Op::Accounts
        | Op::Draft { .. }
        | Op::LastUndoAction
        | Op::OutboxCurrent { .. }
        | Op::Presence { .. }
        | Op::Arrival { .. } => true,
        Op::PageBefore { limit, .. } | Op::PageAfter { limit, .. } | Op::EndPage { limit, .. } => {
            *limit <= QUICK_PAGE
        }
        Op::Arrivals { keys } => keys.len() <= QUICK_PAGE,
        _ => false,
    }
}

async fn read<T: Send + 'static>(
    hub: &Arc<Hub>,
    f: impl FnOnce(&dyn ServiceBackend) -> Result<T, crate::store::StoreError> + Send + 'static,
) -> Result<T, String> {
    let store = hub.store.clone();
    tokio::task::spawn_blocking(move || f(store.as_ref()).map_err(|e| e.to_string()))
        .await
        .map_err(|e| format!("the store task failed: {e}"))?
}

fn answer(value: &impl serde::Serialize) -> Result<Vec<u8>, String> {
    protocol::encode_answer(value)
}

/// The requests that are one store call (blocking; run on the blocking pool).
fn store_request(hub: &Hub, who: &str, request: Op) -> Result<Vec<u8>, String> {
    use crate::app::FeedSource as _;
    let e = |e: crate::store::StoreError| e.to_string();
    // sled, or the team's PostgreSQL database: the same requests on either.
    let store: &dyn ServiceBackend = hub.store.as_ref();
    match request {
        Op::Mention { key } => answer(&store.mention(key).map_err(e)?),
        Op::Count { filter } => answer(&store.count(&filter).map_err(e)?),
        Op::Account { id } => answer(&store.account(id).map_err(e)?),
        Op::Accounts => answer(&store.accounts().map_err(e)?),
        Op::PageBefore {
            filter,
            before,
            limit,
        } => answer(&store.page_before(&filter, before, limit).map_err(e)?),
        Op::PageAfter {
            filter,
            after,
            limit,
        } => answer(&store.page_after(&filter, after, limit).map_err(e)?),
        Op::SearchPage {
            filter,
            query,
            after,
            limit,
            max_scan,
        } => answer(
            &crate::store::search_page_as(store, who, &filter, &query, after, limit, max_scan)
                .map_err(e)?,
        ),
        Op::DailyCounts {
            account,
            today,
            days,
        } => answer(&store.daily_counts(account, today, days).map_err(e)?),
        Op::Draft { key } => answer(&store.draft(key).map_err(e)?),
        // The caller's own actions: `u` never undoes someone else's triage.
        Op::LastUndoAction => answer(&store.last_undo_action_of(who).map_err(e)?),
        Op::AccountStats { account, now } => {
            answer(&store.account_stats(&account, now).map_err(e)?)
        }
        Op::AccountCostStats { account, now } => {
            answer(&store.account_cost_stats(account, now).map_err(e)?)
        }
        Op::OutboxOpen => answer(&store.outbox_open().map_err(e)?),
        Op::OutboxCurrent { key } => answer(&store.outbox_current(key).map_err(e)?),
        Op::Arrival { key } => answer(&store.arrival(key).map_err(e)?),
        Op::EndPage {
            filter,
            newest,
            limit,
        } => answer(&store.end_page(&filter, newest, limit).map_err(e)?),
        Op::Arrivals { keys } => answer(&store.arrivals(&keys).map_err(e)?),
        Op::AccountFigures {
            id,
            now,
            days,
            recent,
        } => answer(&store.account_figures(id, now, days, recent).map_err(e)?),
        Op::CostTodayAndMonth { now } => {
            let (totals, per_account) = store.cost_today_and_month(now).map_err(e)?;
            answer(&(totals, per_account))
        }
        Op::Triage {
            action,
            keys,
            status,
        } => {
            let changed =
                crate::app::source::triage_as(store, who, action, &keys, status).map_err(e)?;
            audit_triage(store, who, status, &keys, changed);
            answer(&changed)
        }
        Op::UndoStep { action } => {
            let step = store.undo_step_as(who, action, Utc::now()).map_err(e)?;
            if let Some(step) = &step
                && step.restored > 0
            {
                let entry = AuditEntry::new(
                    who,
                    AuditAction::Undo,
                    Utc::now(),
                    format!(
                        "undid \"{}\" on {} mentions",
                        step.action.status, step.restored
                    ),
                );
                record(store, entry);
            }
            answer(&step)
        }
        Op::Team => {
            let (assigned, _) = store.assignments().map_err(e)?;
            answer(&crate::app::team::TeamSnapshot {
                me: who.to_string(),
                assigned: assigned.into_iter().map(|(k, a)| (k, a.person)).collect(),
                replying: hub.everyone_replying(),
            })
        }
        Op::Assign {
            key,
            handle,
            person,
        } => {
            let now = Utc::now();
            let done = store
                .assign_as(who, key, &handle, person.as_deref(), now)
                .map_err(e)?;
            let answer_of = match done {
                Ok(_) => {
                    let mention_id = store
                        .mention(key)
                        .map_err(e)?
                        .map_or_else(uuid::Uuid::nil, |m| m.id);
                    hub.publish_assigned(crate::domain::TeamEvent::Assigned {
                        key,
                        mention_id,
                        handle,
                        assigned_to: person,
                        by: who.to_string(),
                        at: now,
                    });
                    Ok(())
                }
                Err(refusal) => Err(refusal.to_string()),
            };
            answer(&answer_of)
        }
        Op::Presence { key, open } => {
            if open {
                hub.touch_presence(key, who);
            } else {
                hub.leave_presence(key, who);
            }
            answer(&())
        }
        Op::PutDraft { key, draft } => answer(&store.put_draft(key, &draft).map_err(e)?),
        Op::DeleteDraft { key } => answer(&store.delete_draft(key).map_err(e)?),
        Op::Outbox { .. } | Op::Sync { .. } | Op::CompleteLogin { .. } => {
            Err("internal: an async request reached the store path".into())
        }
    }
}

/// Records a triage decision: an entry naming the mention for a single one, one entry per
/// chunk for a bulk action (saying how many changed).
fn audit_triage(
    store: &dyn ServiceBackend,
    who: &str,
    status: crate::domain::MentionStatus,
    keys: &[MentionKey],
    changed: usize,
) {
    match (keys, changed) {
        (_, 0) => {}
        ([one], _) => {
            let entry = AuditEntry::new(who, AuditAction::Status, Utc::now(), status.to_string());
            audit_mention(store, entry, *one);
        }
        (_, many) => {
            let entry = AuditEntry::new(
                who,
                AuditAction::Status,
                Utc::now(),
                format!("{status} on {many} mentions (bulk)"),
            );
            record(store, entry);
        }
    }
}

/// Records an entry about one mention, naming the account it was sent to.
fn audit_mention(store: &dyn ServiceBackend, entry: AuditEntry, key: MentionKey) {
    let handle = match store.account(key.account_id) {
        Ok(Some(a)) => a.handle(),
        _ => key.account_id.to_string(),
    };
    record(store, entry.mention(key, handle));
}

fn record(store: &dyn ServiceBackend, entry: AuditEntry) {
    if let Err(e) = store.append_audit(entry) {
        tracing::warn!("could not record a dashboard action in the audit log: {e}");
    }
}
