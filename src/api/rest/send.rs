//! `POST /api/v1/mentions/{id}/reply` and `/dm`: through the service's outbox, with its checks,
//! always from the account the mention was sent to (there is no way to name another).
//!
//! A send belongs to the request that asked for it. The request is held open until the outbox
//! reports an outcome; if the client goes away first (the connection dropped, a timeout on its
//! side), axum drops the handler and [`AbandonOnDrop`] tells the outbox, which does what perch
//! does when its own process ends: a send that has not left is cancelled (the draft kept, never
//! sent later); one on its way is recorded `unconfirmed` at once and settled if X still answers.
//!
//! A client that wants the send to outlive it says so: `?wait=false` (or the header
//! `Prefer: respond-async`) answers 202 with the queued state at once, and the send goes on
//! without it (rate-limited: at X's reset).

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;
use utoipa::IntoParams;

use super::extract::{Body, Params};
use super::mentions::{handle_of, mention_out_after, visible_mention};
use super::shapes::{ErrorBody, SendBody, SendOutcome};
use super::{ApiError, ApiResult, blocking_shared};
use crate::api::auth::Caller;
use crate::domain::AuditAction;
use crate::domain::{MentionKey, Response as Posted};
use crate::outbox::{OutboxCommand, OutboxEvent, OutboxState, ReplyKind, SendRequest};
use crate::service::{Hub, ServiceEvent};

/// How long a request waits for X's answer to a send it holds: the X client's own timeouts
/// bound each attempt well within it. Past it the send is abandoned (see the module doc).
const SEND_WAIT: Duration = Duration::from_secs(120);
/// How long a `wait=false` request waits for the outbox to take the send (or refuse it).
const ACCEPT_WAIT: Duration = Duration::from_secs(5);

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SendParams {
    /// `false`: answer 202 as soon as the outbox has the send, which then goes on without this
    /// request (the same as `Prefer: respond-async`). Default `true`: wait for X's answer, and
    /// abandon the send if this request goes away first.
    wait: Option<bool>,
}

/// Replies publicly to a mention, from the account it was sent to.
#[utoipa::path(
    post,
    path = "/api/v1/mentions/{id}/reply",
    tag = "mentions",
    params(("id" = String, Path, description = "perch's id (uuid), the post id, or `@handle:postid`"), SendParams),
    request_body = SendBody,
    responses(
        (status = 200, description = "Sent: on X", body = SendOutcome),
        (status = 202, description = "`wait=false`: queued (or waiting out X's rate limit); it goes on without this request", body = SendOutcome),
        (status = 404, body = ErrorBody),
        (status = 409, description = "Refused by the outbox (already replied, a send unconfirmed or on its way), or cancelled meanwhile", body = ErrorBody),
        (status = 422, description = "Empty or too long, or a bad body", body = ErrorBody),
        (status = 429, description = "X's rate limit for the account is spent: not sent (cancelled, the draft kept); `Retry-After` says when", body = SendOutcome),
        (status = 502, description = "X refused it: nothing was posted", body = SendOutcome),
        (status = 503, description = "The outbox has stopped (the service is ending) or did not take the send", body = ErrorBody),
        (status = 504, description = "Unconfirmed: the request left and no answer came; it may be on X", body = SendOutcome),
    )
)]
pub async fn reply(
    State(hub): State<Arc<Hub>>,
    caller: Caller,
    Path(id): Path<String>,
    Params(params): Params<SendParams>,
    headers: HeaderMap,
    Body(body): Body<SendBody>,
) -> ApiResult<Response> {
    send(hub, caller, id, params, &headers, body, ReplyKind::Public).await
}

/// Sends a direct message to the mention's author, from the account the mention was sent to.
#[utoipa::path(
    post,
    path = "/api/v1/mentions/{id}/dm",
    tag = "mentions",
    params(("id" = String, Path, description = "perch's id (uuid), the post id, or `@handle:postid`"), SendParams),
    request_body = SendBody,
    responses(
        (status = 200, description = "Sent", body = SendOutcome),
        (status = 202, description = "`wait=false`: queued; it goes on without this request", body = SendOutcome),
        (status = 404, body = ErrorBody),
        (status = 409, description = "Refused by the outbox, or cancelled meanwhile", body = ErrorBody),
        (status = 422, description = "Empty or too long, or a bad body", body = ErrorBody),
        (status = 429, description = "X's rate limit is spent: not sent (the draft kept)", body = SendOutcome),
        (status = 502, description = "X refused it: nothing was sent", body = SendOutcome),
        (status = 503, description = "The outbox has stopped (the service is ending) or did not take the send", body = ErrorBody),
        (status = 504, description = "Unconfirmed: it may have been delivered", body = SendOutcome),
    )
)]
pub async fn dm(
    State(hub): State<Arc<Hub>>,
    caller: Caller,
    Path(id): Path<String>,
    Params(params): Params<SendParams>,
    headers: HeaderMap,
    Body(body): Body<SendBody>,
) -> ApiResult<Response> {
    send(hub, caller, id, params, &headers, body, ReplyKind::Dm).await
}

/// Who sent the mention's reply (or DM) already, and when, from the audit log: for the 409 of
/// a second send ("ana replied at ..."). `None` when the log does not say.
async fn who_replied(hub: &Hub, key: MentionKey, kind: ReplyKind) -> Option<String> {
    let action = match kind {
        ReplyKind::Public => AuditAction::Reply,
        ReplyKind::Dm => AuditAction::Dm,
    };
    let page = blocking_shared(hub, move |s| {
        Ok(s.audit(&crate::store::AuditQuery {
            mention: Some(key.tweet_id),
            account: Some(key.account_id),
            limit: 50,
            ..Default::default()
        })?)
    })
    .await
    .ok()?;
    let entry = page.entries.into_iter().find(|e| e.action == action)?;
    Some(format!(
        "{} {} at {}",
        entry.person,
        match kind {
            ReplyKind::Public => "replied",
            ReplyKind::Dm => "sent the DM",
        },
        entry.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    ))
}

/// Tells the outbox that the client of a send has gone, unless disarmed (the send reached an
/// outcome, or the client asked for it to outlive the request).
struct AbandonOnDrop {
    key: MentionKey,
    outbox: mpsc::Sender<OutboxCommand>,
    armed: bool,
}

impl Drop for AbandonOnDrop {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        tracing::info!(
            tweet = self.key.tweet_id,
            "the client of a send went away: abandoning it"
        );
        let command = OutboxCommand::Abandon(self.key);
        if let Err(mpsc::error::TrySendError::Full(command)) = self.outbox.try_send(command) {
            let outbox = self.outbox.clone();
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move {
                    let _ = outbox.send(command).await;
                });
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn send(
    hub: Arc<Hub>,
    caller: Caller,
    id: String,
    params: SendParams,
    headers: &HeaderMap,
    body: SendBody,
    kind: ReplyKind,
) -> ApiResult<Response> {
    let SendBody {
        text,
        force,
        send_anyway,
    } = body;
    let problem = match kind {
        ReplyKind::Public => crate::text::check_post(&text),
        ReplyKind::Dm => crate::text::check_dm(&text),
    };
    if let Some(problem) = problem {
        return Err(ApiError::unprocessable(format!("not sent: {problem}")));
    }
    let asynchronous = params.wait == Some(false)
        || headers
            .get_all("prefer")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| {
                v.split(',')
                    .any(|p| p.trim().eq_ignore_ascii_case("respond-async"))
            });
    let mention = visible_mention(&hub, &caller, id).await?;
    caller.must_reply(mention.key().account_id, &handle_of(&mention))?;
    let key = mention.key();
    // Someone else has its composer open: ask first (the caller sends again with `force`).
    let others: Vec<_> = hub
        .replying(key)
        .into_iter()
        .filter(|r| r.person != caller.name())
        .collect();
    if !others.is_empty() && !force {
        let names: Vec<&str> = others.iter().map(|r| r.person.as_str()).collect();
        let since = others
            .iter()
            .map(|r| r.since)
            .min()
            .unwrap_or_else(chrono::Utc::now);
        return Err(ApiError::conflict(format!(
            "not sent: {} {} replying to this mention (its composer open since {}); send with \"force\": true to send anyway",
            names.join(" and "),
            if names.len() == 1 { "is" } else { "are" },
            since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        )));
    }
    let current = blocking_shared(&hub, move |s| Ok(s.outbox_current(key)?)).await?;
    // The same text again after an unconfirmed send is a retry of that entry: if X answers that
    // it is a duplicate, the first attempt went out, and it is recorded as sent.
    let command = match current {
        Some(e) if e.state == OutboxState::Unconfirmed && e.kind == kind && e.text == text => {
            OutboxCommand::Retry(key)
        }
        _ => OutboxCommand::Send(SendRequest {
            key,
            kind,
            text: text.clone(),
            send_anyway,
        }),
    };
    let id = format!("@{}:{}", mention.sent_to.username, mention.tweet_id);
    // Subscribed before the command goes, so no outcome can slip past.
    let mut events = hub.subscribe();
    let asked_at = chrono::Utc::now();
    // Who said what as the account: the hub records it when the outcome says it is on X (or may
    // be), never for a send refused, cancelled or failed (`service::send_audit`).
    hub.note_send(key, caller.name(), kind, &text);
    hub.outbox
        .send(command)
        .await
        .map_err(|_| ApiError::unavailable("the outbox has stopped (the service is ending)"))?;
    let mut guard = AbandonOnDrop {
        key,
        outbox: hub.outbox.clone(),
        armed: !asynchronous,
    };
    let limit = if asynchronous { ACCEPT_WAIT } else { SEND_WAIT };
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let event = match tokio::time::timeout_at(deadline, events.recv()).await {
            Err(_) => break,
            Ok(Err(RecvError::Closed)) => break,
            // Missed events: the store has the truth; read it below.
            Ok(Err(RecvError::Lagged(_))) => break,
            Ok(Ok(ServiceEvent::Outbox(e))) if e.key() == key => e,
            Ok(Ok(_)) => continue,
        };
        if matches!(
            event,
            OutboxEvent::Sent { .. } | OutboxEvent::Failed { .. } | OutboxEvent::Unconfirmed { .. }
        ) {
            // Done with the composer, whatever X said.
            hub.leave_presence(key, caller.name());
        }
        match event {
            OutboxEvent::Refused { message, .. } => {
                guard.armed = false;
                let by = who_replied(&hub, key, kind).await;
                return Err(ApiError::conflict(match by {
                    Some(by) => format!("{message} ({by})"),
                    None => message,
                }));
            }
            OutboxEvent::Sending { .. } if asynchronous => break,
            OutboxEvent::Sending { .. } => {}
            OutboxEvent::Waiting { until, .. } if asynchronous => {
                let outcome = outcome(
                    &hub,
                    &id,
                    OutboxState::Waiting,
                    kind,
                    None,
                    Some(until),
                    None,
                )
                .await?;
                return Ok((StatusCode::ACCEPTED, Json(outcome)).into_response());
            }
            OutboxEvent::Waiting { until, .. } => {
                // A held request waits for nothing it cannot end (a DM limit may last a day):
                // the send is called back and the client told when to try again.
                guard.armed = false;
                let _ = hub.outbox.send(OutboxCommand::Cancel(key)).await;
                let message = format!(
                    "not sent: X's rate limit for @{} is spent until {}; the text is kept as the draft (or send with wait=false to have it go at the reset)",
                    mention.sent_to.username,
                    until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                );
                await_cancelled(&mut events, key).await;
                let outcome = outcome(
                    &hub,
                    &id,
                    OutboxState::Cancelled,
                    kind,
                    Some(message),
                    Some(until),
                    None,
                )
                .await?;
                let mut response = (StatusCode::TOO_MANY_REQUESTS, Json(outcome)).into_response();
                let secs = (until - chrono::Utc::now()).num_seconds().max(1);
                if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                    response.headers_mut().insert("retry-after", v);
                }
                return Ok(response);
            }
            OutboxEvent::Sent { response, .. } => {
                guard.armed = false;
                let outcome = outcome(
                    &hub,
                    &id,
                    OutboxState::Sent,
                    kind,
                    None,
                    None,
                    Some(response),
                )
                .await?;
                return Ok((StatusCode::OK, Json(outcome)).into_response());
            }
            OutboxEvent::Failed { message, .. } => {
                guard.armed = false;
                let outcome = outcome(
                    &hub,
                    &id,
                    OutboxState::Failed,
                    kind,
                    Some(message),
                    None,
                    None,
                )
                .await?;
                return Ok((StatusCode::BAD_GATEWAY, Json(outcome)).into_response());
            }
            OutboxEvent::Unconfirmed { message, .. } => {
                guard.armed = false;
                let outcome = outcome(
                    &hub,
                    &id,
                    OutboxState::Unconfirmed,
                    kind,
                    Some(message),
                    None,
                    None,
                )
                .await?;
                return Ok((StatusCode::GATEWAY_TIMEOUT, Json(outcome)).into_response());
            }
            OutboxEvent::Cancelled { .. } => {
                guard.armed = false;
                return Err(ApiError::conflict(format!(
                    "the {} was cancelled before it was sent (by another client); the text is kept as the draft",
                    kind.noun()
                )));
            }
        }
    }
    // No outcome within the wait (or events missed): the store says where the send is. The
    // newest entry of the mention is this send's (a new send is refused while one is open).
    let started = asked_at;
    let entry = blocking_shared(&hub, move |s| {
        Ok(s.outbox_history(key)?
            .into_iter()
            .rev()
            .find(|e| e.kind == kind && e.updated_at >= started))
    })
    .await?;
    if asynchronous {
        let Some(entry) = entry else {
            return Err(ApiError::unavailable(
                "the outbox did not take the send in time; nothing was sent, try again",
            ));
        };
        let outcome = outcome(
            &hub,
            &id,
            entry.state,
            kind,
            entry.last_error.clone(),
            entry.not_before,
            None,
        )
        .await?;
        let status = match entry.state {
            OutboxState::Sent => StatusCode::OK,
            _ => StatusCode::ACCEPTED,
        };
        return Ok((status, Json(outcome)).into_response());
    }
    // Held past the limit: give it up as a client that went away would.
    drop(guard);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let entry = blocking_shared(&hub, move |s| Ok(s.outbox_history(key)?.pop())).await?;
    let state = entry.as_ref().map_or(OutboxState::Cancelled, |e| e.state);
    let message = format!(
        "no answer from X within {} s: the {} was abandoned ({state}); check on X before sending again",
        SEND_WAIT.as_secs(),
        kind.noun()
    );
    let outcome = outcome(&hub, &id, state, kind, Some(message), None, None).await?;
    Ok((StatusCode::GATEWAY_TIMEOUT, Json(outcome)).into_response())
}

async fn await_cancelled(
    events: &mut tokio::sync::broadcast::Receiver<ServiceEvent>,
    key: MentionKey,
) {
    let wait = async {
        loop {
            match events.recv().await {
                Ok(ServiceEvent::Outbox(
                    OutboxEvent::Cancelled { key: k, .. } | OutboxEvent::Refused { key: k, .. },
                )) if k == key => return,
                Ok(_) | Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => return,
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(10), wait).await;
}

async fn outcome(
    hub: &Hub,
    id: &str,
    state: OutboxState,
    kind: ReplyKind,
    message: Option<String>,
    until: Option<chrono::DateTime<chrono::Utc>>,
    response: Option<Posted>,
) -> ApiResult<SendOutcome> {
    Ok(SendOutcome {
        state,
        kind,
        message,
        until,
        response,
        mention: mention_out_after(hub, id.to_string()).await?,
    })
}
