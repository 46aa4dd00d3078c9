//! Working as a team (issue 16): assigning a mention (`POST /api/v1/mentions/{id}/assign`) and
//! reading the audit log (`GET /api/v1/audit`).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::extract::{Body, Params};
use super::mentions::{handle_of, visible_mention};
use super::shapes::{ErrorBody, ReplyingOut};
use super::{ApiError, ApiResult, blocking_shared};
use crate::api::auth::Caller;
use crate::domain::{AccountId, AuditEntry, TeamEvent};
use crate::service::Hub;
use crate::store::AuditQuery;
use crate::store::lookup::find_account;

/// Whom to assign the mention to.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignBody {
    /// A person's name (`perch team list`), `me`, or `null` to unassign. Members may assign
    /// only to themselves or to nobody.
    pub person: Option<String>,
}

/// Who a mention is assigned to now.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, ToSchema)]
pub struct AssignmentOut {
    /// perch's id for the mention.
    pub mention_id: uuid::Uuid,
    pub tweet_id: String,
    /// `null`: nobody.
    pub assigned_to: Option<String>,
    /// Who it was assigned to before this change.
    pub previously: Option<String>,
    pub at: DateTime<Utc>,
}

/// Assigns a mention to a person (or takes it: `"me"`), or unassigns it.
#[utoipa::path(
    post,
    path = "/api/v1/mentions/{id}/assign",
    tag = "team",
    params(("id" = String, Path, description = "perch's id (uuid), the post id, or `@handle:postid`")),
    request_body = AssignBody,
    responses(
        (status = 200, body = AssignmentOut),
        (status = 403, description = "The caller may not see the mention, or (a member) assign others", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 422, description = "No such person", body = ErrorBody),
    )
)]
pub async fn assign(
    State(hub): State<Arc<Hub>>,
    caller: Caller,
    Path(id): Path<String>,
    Body(body): Body<AssignBody>,
) -> ApiResult<Json<AssignmentOut>> {
    let mention = visible_mention(&hub, &caller, id).await?;
    let person = body
        .person
        .map(|p| p.trim().trim_start_matches('@').to_string())
        .map(|p| {
            if p == "me" {
                caller.name().to_string()
            } else {
                p
            }
        });
    if let Some(name) = &person
        && name != caller.name()
        && !caller.0.manages()
    {
        return Err(ApiError::new(
            axum::http::StatusCode::FORBIDDEN,
            format!(
                "{} is a member: members take mentions (\"me\") or unassign them; only owners and admins assign others",
                caller.name()
            ),
        ));
    }
    let key = mention.key();
    let now = Utc::now();
    let handle = handle_of(&mention);
    let by = caller.name().to_string();
    let (previously, person) = {
        let (handle, by) = (handle.clone(), by.clone());
        blocking_shared(&hub, move |s| {
            match s.assign_as(&by, key, &handle, person.as_deref(), now)? {
                Ok(before) => Ok((before.map(|a| a.person), person)),
                Err(refusal) => Err(ApiError::unprocessable(refusal.to_string())),
            }
        })
        .await?
    };
    hub.publish_assigned(TeamEvent::Assigned {
        key,
        mention_id: mention.id,
        handle,
        assigned_to: person.clone(),
        by,
        at: now,
    });
    Ok(Json(AssignmentOut {
        mention_id: mention.id,
        tweet_id: mention.tweet_id.clone(),
        assigned_to: person,
        previously,
        at: now,
    }))
}

/// Who has a mention's composer open, after a touch or a leave.
#[derive(Serialize, Deserialize, Debug, Clone, ToSchema)]
pub struct PresenceOut {
    /// Everyone replying now, the caller included, in name order.
    pub replying: Vec<ReplyingOut>,
    /// Touch again within this many seconds to keep showing (every 10 s is right).
    pub ttl_secs: i64,
}

/// "I am replying to this": the caller has the mention's composer open. Touch it every 10 s
/// while it is open; 30 s after the last touch the caller stops showing (a vanished client
/// expires by itself). Everyone who may see the account hears `replying` events.
#[utoipa::path(
    put,
    path = "/api/v1/mentions/{id}/presence",
    tag = "team",
    params(("id" = String, Path, description = "perch's id (uuid), the post id, or `@handle:postid`")),
    responses(
        (status = 200, body = PresenceOut),
        (status = 403, description = "The caller may not reply as the mention's account", body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
pub async fn touch_presence(
    State(hub): State<Arc<Hub>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<PresenceOut>> {
    let mention = visible_mention(&hub, &caller, id).await?;
    caller.must_reply(mention.key().account_id, &handle_of(&mention))?;
    let who = hub.touch_presence(mention.key(), caller.name());
    Ok(Json(presence_out(&hub, who)))
}

/// The caller closed the mention's composer: they no longer show as replying.
#[utoipa::path(
    delete,
    path = "/api/v1/mentions/{id}/presence",
    tag = "team",
    params(("id" = String, Path, description = "perch's id (uuid), the post id, or `@handle:postid`")),
    responses(
        (status = 200, body = PresenceOut),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
pub async fn leave_presence(
    State(hub): State<Arc<Hub>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<PresenceOut>> {
    let mention = visible_mention(&hub, &caller, id).await?;
    hub.leave_presence(mention.key(), caller.name());
    Ok(Json(presence_out(&hub, hub.replying(mention.key()))))
}

fn presence_out(hub: &Hub, who: Vec<crate::service::presence::Replying>) -> PresenceOut {
    PresenceOut {
        replying: who.into_iter().map(ReplyingOut::from).collect(),
        ttl_secs: hub.presence_ttl().num_seconds(),
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// Only this person's actions.
    person: Option<String>,
    /// Only actions on this post (its X id).
    mention: Option<String>,
    /// Only actions on or as this account (perch's id, or `@handle`).
    account_id: Option<String>,
    /// Page size, 1 to 500 (default 100).
    limit: Option<usize>,
    /// `next_before` of the previous page.
    before: Option<u64>,
}

/// A page of the audit log.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, ToSchema)]
pub struct AuditList {
    /// Newest first.
    pub entries: Vec<AuditEntry>,
    /// Pass as `before` for the next page; `null` when the log has been read to its start.
    pub next_before: Option<u64>,
}

/// Who did what, newest first. Members see the entries about their accounts only.
#[utoipa::path(
    get,
    path = "/api/v1/audit",
    tag = "team",
    params(AuditParams),
    responses(
        (status = 200, body = AuditList),
        (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody),
    )
)]
pub async fn audit_log(
    State(hub): State<Arc<Hub>>,
    caller: Caller,
    Params(params): Params<AuditParams>,
) -> ApiResult<Json<AuditList>> {
    let limit = params.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::unprocessable(format!(
            "limit must be from 1 to 500 (got {limit})"
        )));
    }
    let mention = params
        .mention
        .as_deref()
        .map(|m| {
            m.trim().parse::<u64>().map_err(|_| {
                ApiError::unprocessable(format!("mention must be a post id (digits), got {m:?}"))
            })
        })
        .transpose()?;
    let page = blocking_shared(&hub, move |s| {
        let account: Option<AccountId> = match &params.account_id {
            Some(name) => {
                let a = find_account(s, name)?;
                caller.must_read(a.id, &a.handle())?;
                Some(a.id)
            }
            None => None,
        };
        Ok(s.audit(&AuditQuery {
            person: params.person.clone(),
            mention,
            account,
            among: (!caller.0.sees_everything()).then(|| caller.0.grants.keys().copied().collect()),
            before: params.before,
            limit,
        })?)
    })
    .await?;
    Ok(Json(AuditList {
        entries: page.entries,
        next_before: page.next_before,
    }))
}
