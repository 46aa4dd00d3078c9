//! `/api/v1/accounts/...`: list, show, pause/resume, remove, stats, reauthorize.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::Utc;
use serde::Deserialize;
use tokio::sync::broadcast;
use utoipa::IntoParams;

use super::extract::{Body, Params};
use super::shapes::{AccountList, AccountPatch, AuthorizationUrl, ErrorBody, RemovedAccount};
use super::{ApiError, ApiResult, audit, blocking_shared};
use crate::api::auth::Caller;
use crate::domain::{Account, AccountStats, AuditAction, AuditEntry, SyncStatus};
use crate::service::{Hub, ServiceEvent};
use crate::store::FeedFilter;
use crate::store::lookup::find_account;
use crate::sync::{self, SyncEvent};

/// How long a pause or resume waits for the engine to record it (it does so between two
/// steps of its loop: at once, unless the store is stuck).
const ENGINE_ANSWER: Duration = Duration::from_secs(10);
/// How long a removal waits for a running poll of the account to end.
const REMOVAL_WAIT: Duration = Duration::from_secs(30);

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Also list paused accounts (default `false`: active ones only). `total`,
    /// `active_count` and `paused_count` always count every account.
    include_inactive: Option<bool>,
}

/// The tracked accounts.
#[utoipa::path(
    get,
    path = "/api/v1/accounts/",
    tag = "accounts",
    params(ListParams),
    responses(
        (status = 200, body = AccountList),
        (status = 422, description = "A bad parameter", body = ErrorBody),
    )
)]
pub async fn list(
    State(hub): State<Arc<Hub>>,
    caller: Caller,
    Params(params): Params<ListParams>,
) -> ApiResult<Json<AccountList>> {
    // A member lists (and counts) only the accounts granted to them.
    let all: Vec<Account> = blocking_shared(&hub, |s| Ok(s.accounts()?))
        .await?
        .into_iter()
        .filter(|a| caller.0.may_read(a.id))
        .collect();
    let active_count = all.iter().filter(|a| a.is_active).count();
    let include_inactive = params.include_inactive.unwrap_or(false);
    Ok(Json(AccountList {
        total: all.len(),
        active_count,
        paused_count: all.len() - active_count,
        accounts: all
            .into_iter()
            .filter(|a| include_inactive || a.is_active)
            .collect(),
    }))
}

/// One account, by perch's id (also accepted: `@handle` or the X user id).
#[utoipa::path(
    get,
    path = "/api/v1/accounts/{account_id}",
    tag = "accounts",
    params(("account_id" = String, Path, description = "perch's id of the account (or `@handle`, or the X user id)")),
    responses(
        (status = 200, body = Account),
        (status = 404, body = ErrorBody),
    )
)]
pub async fn get(
    State(hub): State<Arc<Hub>>,
    caller: Caller,
    Path(account_id): Path<String>,
) -> ApiResult<Json<Account>> {
    Ok(Json(account(&hub, &caller, account_id).await?))
}

/// The account `name` finds, if the caller may see it (403 otherwise).
async fn account(hub: &Hub, caller: &Caller, name: String) -> ApiResult<Account> {
    let a = blocking_shared(hub, move |s| Ok(find_account(s, &name)?)).await?;
    caller.must_read(a.id, &a.handle())?;
    Ok(a)
}

/// Pauses or resumes an account, in the sync engine at once: a paused account is not polled
/// (a poll already running finishes); a resumed one is polled now.
#[utoipa::path(
    patch,
    path = "/api/v1/accounts/{account_id}",
    tag = "accounts",
    params(("account_id" = String, Path, description = "perch's id of the account (or `@handle`)")),
    request_body = AccountPatch,
    responses(
        (status = 200, description = "The account as the engine recorded it", body = Account),
        (status = 404, body = ErrorBody),
        (status = 409, description = "The account needs a new login before it can be resumed", body = ErrorBody),
        (status = 422, description = "A bad body (unknown field, a status only perch sets, is_active and sync_status disagreeing)", body = ErrorBody),
    )
)]
pub async fn patch(
    State(hub): State<Arc<Hub>>,
    caller: Caller,
    Path(account_id): Path<String>,
    Body(change): Body<AccountPatch>,
) -> ApiResult<Json<Account>> {
    caller.must_manage("pause or resume an account")?;
    let from_status = match change.sync_status {
        None => None,
        Some(SyncStatus::Active) => Some(true),
        Some(SyncStatus::Paused) => Some(false),
        Some(other) => {
            return Err(ApiError::unprocessable(format!(
                "sync_status {other} is set by perch; a client sets active or paused"
            )));
        }
    };
    let active = match (change.is_active, from_status) {
        (Some(a), Some(b)) if a != b => {
            return Err(ApiError::unprocessable(
                "is_active and sync_status disagree: send one, or the same thing twice",
            ));
        }
        (Some(a), _) | (None, Some(a)) => a,
        (None, None) => {
            return Err(ApiError::unprocessable(
                "nothing to change: send is_active (true or false) or sync_status (active or paused)",
            ));
        }
    };
    let a = account(&hub, &caller, account_id).await?;
    if active && a.sync_status == SyncStatus::TokenExpired {
        return Err(ApiError::conflict(format!(
            "{} needs a new login before it can sync: POST /api/v1/accounts/{}/reauthorize",
            a.handle(),
            a.id
        )));
    }
    let events = hub.subscribe();
    let command = if active {
        sync::Command::Resume(a.id)
    } else {
        sync::Command::Pause(a.id)
    };
    send_to_engine(&hub, command).await?;
    let id = a.id;
    let confirmed = wait_for(events, ENGINE_ANSWER, |e| {
        matches!(e, ServiceEvent::Sync(SyncEvent::AccountUpdated(u)) if u.id == id && u.is_active == active)
    })
    .await;
    let now = blocking_shared(&hub, move |s| {
        s.account(id)?
            .ok_or_else(|| ApiError::not_found(format!("account {id} was removed meanwhile")))
    })
    .await?;
    if !confirmed && now.is_active != active {
        return Err(ApiError::unavailable(
            "the sync engine did not record the change in time; try again",
        ));
    }
    audit(
        &hub,
        AuditEntry::new(
            caller.name(),
            AuditAction::AccountChange,
            Utc::now(),
            if active { "resumed" } else { "paused" },
        )
        .account(now.id, now.handle()),
    )
    .await;
    Ok(Json(now))
}

pub(super) async fn send_to_engine(hub: &Hub, command: sync::Command) -> ApiResult<()> {
    // On PostgreSQL the engine is the leader's, maybe on another machine: a follower refuses
    // before anything is asked (saying where it runs), rather than drop the command.
    if let Some(why) = hub.engine_refusal() {
        return Err(ApiError::new(StatusCode::CONFLICT, why));
    }
    hub.sync
        .send(command)
        .await
        .map_err(|_| ApiError::unavailable("the sync engine has stopped (the service is ending)"))
}

/// Waits, up to `limit`, for an event `wanted` accepts. `false` when it did not come (or the
/// client missed events: the caller then reads the store).
pub(super) async fn wait_for(
    mut events: broadcast::Receiver<ServiceEvent>,
    limit: Duration,
    mut wanted: impl FnMut(&ServiceEvent) -> bool,
) -> bool {
    let wait = async {
        loop {
            match events.recv().await {
                Ok(e) if wanted(&e) => return true,
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return false,
            }
        }
    };
    tokio::time::timeout(limit, wait).await.unwrap_or(false)
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeleteParams {
    /// Also delete the account's stored mentions (default `false`: they are kept).
    delete_messages: Option<bool>,
}

/// Removes an account (after any poll of it finishes: never half-deleted).
#[utoipa::path(
    delete,
    path = "/api/v1/accounts/{account_id}",
    tag = "accounts",
    params(("account_id" = String, Path, description = "perch's id of the account (or `@handle`)"), DeleteParams),
    responses(
        (status = 200, description = "Removed", body = RemovedAccount),
        (status = 202, description = "A poll of it is running: removed when it ends", body = RemovedAccount),
        (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody),
    )
)]
pub async fn delete(
    State(hub): State<Arc<Hub>>,
    caller: Caller,
    Path(account_id): Path<String>,
    Params(params): Params<DeleteParams>,
) -> ApiResult<(StatusCode, Json<RemovedAccount>)> {
    caller.must_manage("remove an account")?;
    let a = account(&hub, &caller, account_id).await?;
    let delete_mentions = params.delete_messages.unwrap_or(false);
    let id = a.id;
    let mentions = blocking_shared(&hub, move |s| {
        Ok(s.count(&FeedFilter {
            account: Some(id),
            status: None,
        })?)
    })
    .await?;
    let events = hub.subscribe();
    send_to_engine(
        &hub,
        sync::Command::Remove {
            account_id: id,
            delete_mentions,
        },
    )
    .await?;
    let removed = wait_for(events, REMOVAL_WAIT, |e| {
        matches!(e, ServiceEvent::Sync(SyncEvent::AccountRemoved { account_id }) if *account_id == id)
    })
    .await;
    let removed = removed || blocking_shared(&hub, move |s| Ok(s.account(id)?.is_none())).await?;
    let body = RemovedAccount {
        account_id: id,
        username: a.handle(),
        removed,
        mentions_deleted: if delete_mentions { mentions } else { 0 },
        mentions_kept: if delete_mentions { 0 } else { mentions },
    };
    let status = if removed {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    audit(
        &hub,
        AuditEntry::new(
            caller.name(),
            AuditAction::AccountRemove,
            Utc::now(),
            match (removed, delete_mentions) {
                (true, true) => format!("removed with its {mentions} mentions"),
                (true, false) => format!("removed, its {mentions} mentions kept"),
                (false, _) => "removal asked (after the running poll)".to_string(),
            },
        )
        .account(id, a.handle()),
    )
    .await;
    Ok((status, Json(body)))
}

/// The account's figures (the keys of `perch accounts stats --json`).
#[utoipa::path(
    get,
    path = "/api/v1/accounts/{account_id}/stats",
    tag = "accounts",
    params(("account_id" = String, Path, description = "perch's id of the account (or `@handle`)")),
    responses(
        (status = 200, body = AccountStats),
        (status = 404, body = ErrorBody),
    )
)]
pub async fn stats(
    State(hub): State<Arc<Hub>>,
    caller: Caller,
    Path(account_id): Path<String>,
) -> ApiResult<Json<AccountStats>> {
    let stats = blocking_shared(&hub, move |s| {
        let a = find_account(s, &account_id)?;
        caller.must_read(a.id, &a.handle())?;
        Ok(crate::stats::account_stats(s, &a, Utc::now())?)
    })
    .await?;
    Ok(Json(stats))
}

/// A new authorization URL for the account (its token expired or was revoked). The login must
/// come back as the same X account; another one is refused and changes nothing.
#[utoipa::path(
    post,
    path = "/api/v1/accounts/{account_id}/reauthorize",
    tag = "accounts",
    params(("account_id" = String, Path, description = "perch's id of the account (or `@handle`)")),
    responses(
        (status = 200, body = AuthorizationUrl),
        (status = 404, body = ErrorBody),
        (status = 409, description = "Another login is waiting on the loopback redirect", body = ErrorBody),
        (status = 503, description = "No X app is configured (client_id)", body = ErrorBody),
    )
)]
pub async fn reauthorize(
    State(hub): State<Arc<Hub>>,
    caller: Caller,
    Path(account_id): Path<String>,
) -> ApiResult<Json<AuthorizationUrl>> {
    caller.must_manage("reauthorize an account")?;
    let a = account(&hub, &caller, account_id).await?;
    let url = super::login::begin(&hub, Some(a), caller.name()).await?;
    Ok(Json(AuthorizationUrl {
        authorization_url: url,
    }))
}
