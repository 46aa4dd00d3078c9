//! `/api/v1/mentions/...`: the feed (filtered, searched, paged by cursor), one mention, its
//! triage status, and fetch-now.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;
use utoipa::IntoParams;

use super::accounts::{send_to_engine, wait_for};
use super::extract::{Body, Params};
use super::shapes::{
    ErrorBody, FetchOutcome, FetchReport, FetchStopReason, FetchStopped, MentionList, MentionOut,
    MentionPatch,
};
use super::{ApiError, ApiResult, audit, blocking_shared};
use crate::api::auth::Caller;
use crate::domain::{
    Account, AccountId, AuditAction, AuditEntry, Mention, MentionStatus, StatusRefusal, SyncStatus,
};
use crate::outbox::{OutboxCommand, OutboxEvent, OutboxState};
use crate::service::{Hub, ServiceEvent};
use crate::store::lookup::{LookupError, find_account, find_mention, find_mention_among};
use crate::store::{AssignedFilter, FeedFilter, FeedPos, SearchPage, StoreError};
use crate::sync::{self, SyncEvent};

/// The page size when `limit` is not given, and the largest allowed.
const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 500;
/// With `search`: the most feed rows one request examines for its page (then it returns what
/// it found and a cursor to go on from), and for `total_matching`.
const SEARCH_SCAN: usize = 200_000;
/// The rows one scan step examines.
const SCAN_STEP: usize = 10_000;
const COUNT_SCAN: usize = 100_000;
/// How long fetch-new waits for the polls it asked for.
const FETCH_WAIT: Duration = Duration::from_secs(90);
/// How long the outbox has to answer a cancel or mark-sent that a status change needs.
const OUTBOX_ANSWER: Duration = Duration::from_secs(10);

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only this account's mentions (perch's id, or `@handle`).
    account_id: Option<String>,
    /// Only mentions with this status.
    status: Option<MentionStatus>,
    /// Mentions whose text, sender username or display name contains this (any case).
    search: Option<String>,
    /// Page size, 1 to 500 (default 50).
    limit: Option<usize>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Only the mentions assigned to this person (a name from `perch team list`, or `me`), or
    /// to nobody (`none`).
    assigned: Option<String>,
}

/// The mentions, newest first, a page at a time.
#[utoipa::path(
    get,
    path = "/api/v1/mentions/",
    tag = "mentions",
    params(ListParams),
    responses(
        (status = 200, body = MentionList),
        (status = 404, description = "No such account", body = ErrorBody),
        (status = 422, description = "A bad parameter (the allowed values are named)", body = ErrorBody),
    )
)]
pub async fn list(
    State(hub): State<Arc<Hub>>,
    caller: Caller,
    Params(params): Params<ListParams>,
) -> ApiResult<Json<MentionList>> {
    let limit = params.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::unprocessable(format!(
            "limit must be from 1 to {MAX_LIMIT} (got {limit})"
        )));
    }
    let after = params.cursor.as_deref().map(decode_cursor).transpose()?;
    let search = params.search.filter(|q| !q.trim().is_empty());
    let assigned = params
        .assigned
        .as_deref()
        .map(|a| match a.trim().trim_start_matches('@') {
            "none" => AssignedFilter::Nobody,
            "me" => AssignedFilter::To(caller.name().to_string()),
            name => AssignedFilter::To(name.to_string()),
        });
    // On sled or PostgreSQL (where search and the assignment filter answer 501 for now).
    let list = blocking_shared(&hub, move |store| {
        let filter = FeedFilter {
            account: match &params.account_id {
                Some(name) => {
                    let a = find_account(store, name)?;
                    caller.must_read(a.id, &a.handle())?;
                    Some(a.id)
                }
                None => None,
            },
            status: params.status,
        };
        // A member's "all accounts" is the accounts granted to them (issue 16).
        let among: Option<Vec<AccountId>> =
            (!caller.0.sees_everything()).then(|| caller.0.grants.keys().copied().collect());
        let among = among.as_deref();
        let mut total_matching = None;
        let (mentions, next) = match (&assigned, &search) {
            (Some(assigned), _) => {
                let query = search.as_deref().unwrap_or("");
                let mut first = true;
                gather(after, limit, |from, want| {
                    // The count is read once, with the first page.
                    let count_scan = if first { COUNT_SCAN } else { 0 };
                    let (page, total) = store.assigned_page(
                        &filter, among, assigned, query, from, want, SCAN_STEP, count_scan,
                    )?;
                    if first {
                        total_matching = total;
                        first = false;
                    }
                    Ok(page)
                })?
            }
            (None, None) => {
                let mut page = match among {
                    None => store.page_after(&filter, after, limit + 1)?,
                    Some(only) => store.page_after_among(&filter, only, after, limit + 1)?,
                };
                let more = page.len() > limit;
                page.truncate(limit);
                let next = more.then(|| page.last().map(FeedPos::from)).flatten();
                (page, next)
            }
            (None, Some(query)) => gather(after, limit, |from, want| {
                store.search_page_among(&filter, among, query, from, want, SCAN_STEP)
            })?,
        };
        let total_matching = match (&assigned, &search) {
            (Some(_), _) => total_matching,
            (None, None) => Some(match among {
                None => store.count(&filter)?,
                Some(only) => store.count_among(&filter, only)?,
            }),
            (None, Some(query)) => {
                let all =
                    store.search_page_among(&filter, among, query, None, usize::MAX, COUNT_SCAN)?;
                all.exhausted.then_some(all.hits.len() as u64)
            }
        };
        let mut out = Vec::with_capacity(mentions.len());
        for m in mentions {
            let (m, entry) = store.mention_with_outbox(m)?;
            let assignment = store.assignment(m.key())?;
            out.push(MentionOut::new(&m, entry.as_ref()).assigned(assignment));
        }
        Ok(MentionList {
            count: out.len(),
            mentions: out,
            total_matching,
            next_cursor: next.map(encode_cursor),
        })
    })
    .await?;
    let list = MentionList {
        mentions: list
            .mentions
            .into_iter()
            .map(|m| with_presence(&hub, m))
            .collect(),
        ..list
    };
    Ok(Json(list))
}

/// Reads a scan's pages (a search, an assignment filter) from `after` until `limit` hits, its
/// end, or [`SEARCH_SCAN`] rows examined. Returns the hits and where the next page starts
/// (`None`: the scan reached its end).
fn gather(
    after: Option<FeedPos>,
    limit: usize,
    mut step: impl FnMut(Option<FeedPos>, usize) -> Result<SearchPage, StoreError>,
) -> Result<(Vec<Mention>, Option<FeedPos>), StoreError> {
    let mut hits = Vec::new();
    let mut from = after;
    let mut scanned_pages = 0usize;
    let next = loop {
        let page = step(from, limit - hits.len())?;
        hits.extend(page.hits);
        scanned_pages += 1;
        if page.exhausted {
            break None;
        }
        from = page.resume_after;
        if hits.len() >= limit || scanned_pages * SCAN_STEP >= SEARCH_SCAN {
            break from;
        }
    };
    Ok((hits, next))
}

/// An opaque cursor: the feed position of the last row of a page.
fn encode_cursor(pos: FeedPos) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(format!("{}:{}", pos.tweet_id, pos.account_id))
}

fn decode_cursor(cursor: &str) -> ApiResult<FeedPos> {
    let bad = || {
        ApiError::unprocessable(
            "cursor is not one this API gave out: pass next_cursor of the previous page as it is",
        )
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor.trim())
        .map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let (tweet, account) = text.split_once(':').ok_or_else(bad)?;
    Ok(FeedPos {
        tweet_id: tweet.parse().map_err(|_| bad())?,
        account_id: account.parse().map_err(|_| bad())?,
    })
}

/// One mention, by perch's id, the post id, or `@handle:postid`.
#[utoipa::path(
    get,
    path = "/api/v1/mentions/{id}",
    tag = "mentions",
    params(("id" = String, Path, description = "perch's id (uuid), the post id, or `@handle:postid` (when a post mentions several tracked accounts)")),
    responses(
        (status = 200, body = MentionOut),
        (status = 404, body = ErrorBody),
        (status = 409, description = "The post id mentions several tracked accounts: name one", body = ErrorBody),
        (status = 422, description = "Not a mention id", body = ErrorBody),
    )
)]
pub async fn get(
    State(hub): State<Arc<Hub>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<MentionOut>> {
    Ok(Json(mention_out(&hub, &caller, id).await?))
}

pub(super) async fn mention_out(hub: &Hub, caller: &Caller, id: String) -> ApiResult<MentionOut> {
    let caller = caller.clone();
    blocking_shared(hub, move |s| {
        let m = find_visible(s, &caller, &id)?;
        must_see(&caller, &m)?;
        let (m, entry) = s.mention_with_outbox(m)?;
        let assignment = s.assignment(m.key())?;
        Ok(MentionOut::new(&m, entry.as_ref()).assigned(assignment))
    })
    .await
    .map(|out| with_presence(hub, out))
}

/// A mention the caller was already allowed to act on, read again after the action.
pub(super) async fn mention_out_after(hub: &Hub, id: String) -> ApiResult<MentionOut> {
    blocking_shared(hub, move |s| {
        let (m, entry) = s.mention_with_outbox(find_mention(s, &id)?)?;
        let assignment = s.assignment(m.key())?;
        Ok(MentionOut::new(&m, entry.as_ref()).assigned(assignment))
    })
    .await
    .map(|out| with_presence(hub, out))
}

/// `out` with who is replying to it now (presence lives in the service's memory, not the store).
pub(super) fn with_presence(hub: &Hub, out: MentionOut) -> MentionOut {
    let Ok(tweet_id) = out.tweet_id.parse() else {
        return out;
    };
    let key = crate::domain::MentionKey {
        account_id: out.sent_to.account_id,
        tweet_id,
    };
    let who = hub.replying(key);
    out.replying(who)
}

/// Refuses a caller who may not see `m`'s account (403 with the reason).
pub(super) fn must_see(caller: &Caller, m: &Mention) -> Result<(), ApiError> {
    Ok(caller.must_read(m.key().account_id, &handle_of(m))?)
}

/// The handle of the account a mention was sent to, `@name`.
pub(super) fn handle_of(m: &Mention) -> String {
    super::shapes::at(&m.sent_to.username)
}

/// Finds the mention `id` names among the accounts `caller` may see: a post that also mentions
/// accounts they may not see is theirs, with no ambiguity naming the others. One found only
/// among the others is returned for `must_see` to refuse with its reason; several there are
/// refused without naming them.
fn find_visible(
    s: &dyn crate::store::ServiceBackend,
    caller: &Caller,
    id: &str,
) -> ApiResult<Mention> {
    match find_mention_among(s, id, |a| caller.0.may_read(a)) {
        Err(LookupError::NotFound(_)) if !caller.0.sees_everything() => match find_mention(s, id) {
            Err(LookupError::Ambiguous(_)) => Err(ApiError::new(
                axum::http::StatusCode::FORBIDDEN,
                format!(
                    "{} may not see the accounts this post mentions: ask an owner or admin for a grant",
                    caller.name()
                ),
            )),
            other => Ok(other?),
        },
        other => Ok(other?),
    }
}

/// The post a person asked about, found and checked in one step.
pub(super) async fn visible_mention(hub: &Hub, caller: &Caller, id: String) -> ApiResult<Mention> {
    let caller = caller.clone();
    blocking_shared(hub, move |s| {
        let m = find_visible(s, &caller, &id)?;
        must_see(&caller, &m)?;
        Ok(m)
    })
    .await
}

/// Sets a mention's triage status, with the dashboard's rules: `pending`, `replied` or
/// `ignored`; a mention with a sent reply stays `replied`. A reply still in the outbox is
/// resolved by the new status: `replied` records an unconfirmed one as sent (X's id unknown);
/// any other status cancels a queued, waiting or unconfirmed one (its text kept as the draft).
#[utoipa::path(
    patch,
    path = "/api/v1/mentions/{id}",
    tag = "mentions",
    params(("id" = String, Path, description = "perch's id (uuid), the post id, or `@handle:postid`")),
    request_body = MentionPatch,
    responses(
        (status = 200, description = "The mention as it is now", body = MentionOut),
        (status = 404, body = ErrorBody),
        (status = 409, description = "Not allowed now (a reply was sent, or one is on its way)", body = ErrorBody),
        (status = 422, description = "A bad body, or a status only perch sets", body = ErrorBody),
    )
)]
pub async fn patch(
    State(hub): State<Arc<Hub>>,
    caller: Caller,
    Path(id): Path<String>,
    Body(change): Body<MentionPatch>,
) -> ApiResult<Json<MentionOut>> {
    let status = change.status;
    let mention = visible_mention(&hub, &caller, id).await?;
    let entry = {
        let key = mention.key();
        blocking_shared(&hub, move |s| Ok(s.outbox_current(key)?)).await?
    };
    match mention.status_change_refused(status) {
        Some(why @ StatusRefusal::SetByPerch(_)) => {
            return Err(ApiError::unprocessable(why.to_string()));
        }
        Some(why) => {
            return Err(ApiError::conflict(format!(
                "{} not changed: {why}",
                mention.tweet_id
            )));
        }
        None => {}
    }
    let key = mention.key();
    if let Some(entry) = entry.filter(|e| !e.state.is_finished()) {
        // Recording a reply as posted, or calling one back, acts on what the account says:
        // for those who may reply as it (a reader only triages).
        caller.must_reply(key.account_id, &handle_of(&mention))?;
        if entry.state == OutboxState::Sending {
            return Err(ApiError::conflict(format!(
                "the {} to {} is on its way to X right now; its outcome sets the status",
                entry.kind.noun(),
                mention.tweet_id
            )));
        }
        let command = if status == MentionStatus::Replied && entry.state == OutboxState::Unconfirmed
        {
            OutboxCommand::MarkSent(key)
        } else {
            OutboxCommand::Cancel(key)
        };
        let marks_sent = matches!(command, OutboxCommand::MarkSent(_));
        let events = hub.subscribe();
        hub.outbox
            .send(command)
            .await
            .map_err(|_| ApiError::unavailable("the outbox has stopped (the service is ending)"))?;
        let mut refused = None;
        wait_for(events, OUTBOX_ANSWER, |e| match e {
            ServiceEvent::Outbox(OutboxEvent::Refused { key: k, message }) if *k == key => {
                refused = Some(message.clone());
                true
            }
            ServiceEvent::Outbox(
                OutboxEvent::Sent { key: k, .. } | OutboxEvent::Cancelled { key: k, .. },
            ) => *k == key,
            _ => false,
        })
        .await;
        if let Some(message) = refused
            && entry.state != OutboxState::Failed
        {
            return Err(ApiError::conflict(message));
        }
        if marks_sent {
            record_status(
                &hub,
                &caller,
                &mention,
                "replied (the unconfirmed reply recorded as sent)",
            )
            .await;
            return Ok(Json(mention_out(&hub, &caller, key_id(&mention)).await?));
        }
    }
    let out = blocking_shared(&hub, move |s| {
        let m = s
            .set_status(key, status, Utc::now())?
            .ok_or_else(|| ApiError::not_found("the mention was removed meanwhile"))?;
        let (m, entry) = s.mention_with_outbox(m)?;
        let assignment = s.assignment(m.key())?;
        Ok(MentionOut::new(&m, entry.as_ref()).assigned(assignment))
    })
    .await
    .map(|out| with_presence(&hub, out))?;
    record_status(&hub, &caller, &mention, &status.to_string()).await;
    Ok(Json(out))
}

/// The audit entry of a status change `caller` made to `mention`.
async fn record_status(hub: &Hub, caller: &Caller, mention: &Mention, detail: &str) {
    let entry = AuditEntry::new(caller.name(), AuditAction::Status, Utc::now(), detail)
        .mention(mention.key(), handle_of(mention));
    audit(hub, entry).await;
}

/// The id that finds exactly this mention again.
fn key_id(m: &crate::domain::Mention) -> String {
    format!("@{}:{}", m.sent_to.username, m.tweet_id)
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FetchParams {
    /// Only this account (perch's id, or `@handle`); without it, every active account.
    account_id: Option<String>,
}

/// Polls now (through the service's sync engine, within the budget and X's rate limits) and
/// says, account by account, what happened: new mentions stored, or why not. An account that
/// could not be polled is never reported as "0 new".
#[utoipa::path(
    post,
    path = "/api/v1/mentions/fetch-new",
    tag = "mentions",
    params(FetchParams),
    responses(
        (status = 200, description = "What each account's poll did (`ok` false when any failed)", body = FetchReport),
        (status = 404, body = ErrorBody),
        (status = 409, description = "No account to fetch (none tracked, or all paused)", body = ErrorBody),
    )
)]
pub async fn fetch_new(
    State(hub): State<Arc<Hub>>,
    caller: Caller,
    Params(params): Params<FetchParams>,
) -> ApiResult<Json<FetchReport>> {
    let (targets, any) = blocking_shared(&hub, move |s| {
        let all: Vec<Account> = s
            .accounts()?
            .into_iter()
            .filter(|a| caller.0.may_read(a.id))
            .collect();
        let any = !all.is_empty();
        Ok(match params.account_id {
            Some(name) => {
                let a = find_account(s, &name)?;
                caller.must_read(a.id, &a.handle())?;
                (vec![a], any)
            }
            None => (all.into_iter().filter(|a| a.is_active).collect(), any),
        })
    })
    .await?;
    if targets.is_empty() {
        return Err(ApiError::conflict(if any {
            "no active accounts to fetch: every account is paused (PATCH /api/v1/accounts/{id} with {\"is_active\": true})"
        } else {
            "no accounts to fetch: perch tracks no accounts yet (add one: GET /api/v1/auth/login)"
        }));
    }
    let mut outcomes: Vec<Option<FetchOutcome>> = vec![None; targets.len()];
    let mut waiting: HashMap<AccountId, usize> = HashMap::new();
    for (i, a) in targets.iter().enumerate() {
        if !a.is_active || a.sync_status == SyncStatus::Paused {
            let message = a
                .error_message
                .clone()
                .unwrap_or_else(|| format!("{} is paused: resume it to poll it", a.handle()));
            outcomes[i] = Some(not_fetched(a, FetchStopReason::Paused, message));
        } else if a.sync_status == SyncStatus::TokenExpired {
            let message = crate::auth::token_expired_message(&a.twitter_username);
            outcomes[i] = Some(not_fetched(a, FetchStopReason::TokenExpired, message));
        } else {
            waiting.insert(a.id, i);
        }
    }
    let mut events = hub.subscribe();
    let asked_at = Utc::now();
    for id in waiting.keys() {
        send_to_engine(&hub, sync::Command::FetchNow(Some(*id))).await?;
    }
    let mut started: HashMap<AccountId, bool> = HashMap::new();
    let mut latest: HashMap<AccountId, Account> = HashMap::new();
    // A notice about an account before its poll started: the engine's answer that it cannot
    // poll now (X's rate limit) unless a poll still starts soon after.
    let mut notices: HashMap<AccountId, (String, tokio::time::Instant)> = HashMap::new();
    let deadline = tokio::time::Instant::now() + FETCH_WAIT;
    const NOTICE_GRACE: Duration = Duration::from_secs(3);
    while !waiting.is_empty() {
        let next_notice_due = notices.values().map(|(_, at)| *at + NOTICE_GRACE).min();
        let until = next_notice_due.map_or(deadline, |t| t.min(deadline));
        let event = tokio::time::timeout_at(until, events.recv()).await;
        let now = tokio::time::Instant::now();
        // Notices whose grace has passed with no poll started answer for their account.
        let due: Vec<AccountId> = notices
            .iter()
            .filter(|(id, (_, at))| now >= *at + NOTICE_GRACE && !started.contains_key(id))
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            let (message, _) = notices.remove(&id).expect("listed above");
            if let Some(i) = waiting.remove(&id) {
                let reason = if message.contains("rate limit") {
                    FetchStopReason::RateLimited
                } else {
                    FetchStopReason::Failed
                };
                outcomes[i] = Some(not_fetched(&targets[i], reason, message));
            }
        }
        match event {
            Err(_) if now >= deadline => break,
            Err(_) => continue,
            Ok(Err(RecvError::Closed)) => break,
            Ok(Err(RecvError::Lagged(_))) => continue,
            Ok(Ok(ServiceEvent::Sync(e))) => match e {
                SyncEvent::Started { account_id } if waiting.contains_key(&account_id) => {
                    started.insert(account_id, true);
                    notices.remove(&account_id);
                }
                SyncEvent::Notice {
                    account_id: Some(id),
                    message,
                } if waiting.contains_key(&id) && !started.contains_key(&id) => {
                    notices.insert(id, (message, now));
                }
                SyncEvent::AccountUpdated(a) if waiting.contains_key(&a.id) => {
                    latest.insert(a.id, a);
                }
                SyncEvent::AccountRemoved { account_id } => {
                    if let Some(i) = waiting.remove(&account_id) {
                        let message = format!("{} was removed", targets[i].handle());
                        outcomes[i] =
                            Some(not_fetched(&targets[i], FetchStopReason::Failed, message));
                    }
                }
                SyncEvent::Finished {
                    account_id,
                    inserted,
                    ..
                } if started.contains_key(&account_id) => {
                    if let Some(i) = waiting.remove(&account_id) {
                        let account = match latest.remove(&account_id) {
                            Some(a) => a,
                            None => blocking_shared(&hub, move |s| Ok(s.account(account_id)?))
                                .await?
                                .unwrap_or_else(|| targets[i].clone()),
                        };
                        outcomes[i] = Some(finished(&account, inserted, asked_at));
                    }
                }
                _ => {}
            },
            Ok(Ok(ServiceEvent::Outbox(_) | ServiceEvent::Team(_))) => {}
        }
    }
    for (_, i) in waiting {
        let a = &targets[i];
        let message = if started.contains_key(&a.id) {
            format!(
                "the poll of {} is still running; its mentions are stored as they come (GET /api/v1/events follows them)",
                a.handle()
            )
        } else {
            format!(
                "the poll of {} has not started yet (others run first); it runs as soon as it can",
                a.handle()
            )
        };
        outcomes[i] = Some(not_fetched(a, FetchStopReason::StillRunning, message));
    }
    let accounts: Vec<FetchOutcome> = outcomes.into_iter().flatten().collect();
    let failed = accounts.iter().filter(|a| !a.ok).count();
    Ok(Json(FetchReport {
        ok: failed == 0,
        new_mentions: accounts.iter().map(|a| a.new_mentions).sum(),
        failed,
        accounts,
    }))
}

fn not_fetched(a: &Account, reason: FetchStopReason, message: String) -> FetchOutcome {
    FetchOutcome {
        account: a.handle(),
        account_id: a.id.to_string(),
        ok: false,
        new_mentions: 0,
        stopped: Some(FetchStopped {
            reason,
            message,
            until: None,
        }),
        note: None,
    }
}

/// What a finished poll did, read from the account as the engine left it: a poll that went
/// through sets `last_synced_at`; one that failed does not (and may set an error).
fn finished(a: &Account, inserted: usize, asked_at: DateTime<Utc>) -> FetchOutcome {
    let synced = a.last_synced_at.is_some_and(|t| t >= asked_at);
    let stopped = |reason, message: String| {
        Some(FetchStopped {
            reason,
            message,
            until: None,
        })
    };
    let message = a.error_message.clone();
    let (ok, stopped, note) = match a.sync_status {
        SyncStatus::Active if synced => (true, None, None),
        SyncStatus::RateLimited if synced => (true, None, message),
        SyncStatus::RateLimited => (
            false,
            stopped(
                FetchStopReason::RateLimited,
                message.unwrap_or_else(|| "X's rate limit is spent".into()),
            ),
            None,
        ),
        SyncStatus::TokenExpired => (
            false,
            stopped(
                FetchStopReason::TokenExpired,
                message.unwrap_or_else(|| crate::auth::token_expired_message(&a.twitter_username)),
            ),
            None,
        ),
        SyncStatus::Paused => (
            false,
            stopped(
                FetchStopReason::Paused,
                message.unwrap_or_else(|| format!("{} was paused", a.handle())),
            ),
            None,
        ),
        _ => (
            false,
            stopped(
                FetchStopReason::Failed,
                message.unwrap_or_else(|| {
                    "the poll did not go through (X could not be reached or answered with an error); perch retries on its schedule".into()
                }),
            ),
            None,
        ),
    };
    FetchOutcome {
        account: a.handle(),
        account_id: a.id.to_string(),
        ok,
        new_mentions: inserted,
        stopped,
        note,
    }
}
