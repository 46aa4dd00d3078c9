//! The X Activity API (XAA) as the simulator speaks it, following `../shared/x-api/ACTIVITY.md`
//! (§3 subscriptions, §4 the stream, §9 the checklist) and validated against
//! `openapi-latest.json` (spec 2.167) by `tests/sim_openapi.rs`.
//!
//! | route | behaviour |
//! |---|---|
//! | `POST /oauth2/token` | `grant_type=client_credentials` with HTTP Basic `api_key:api_secret` → `{"token_type":"bearer","access_token":…}` (the app Bearer; the same token every time, as X does until it is invalidated) |
//! | `POST /2/activity/subscriptions` | private events (`post.*.create`, `dm.*`) only with the **user token of `filter.user_id`** holding `tweet.read` (`dm.read` for `dm.*`); the app Bearer gets 403 for them. Body checked like the spec (`additionalProperties: false`, the event enum, tag 1–200). A second identical subscription (event type + user) is refused with 409 `DuplicateSubscription` (ACTIVITY.md §3.2 leaves this open; this reading makes a client that does not list first fail loudly). 1 500 per app, then 403 naming the limit. 200 `{"data":{"subscription":{…}},"meta":{"total_subscriptions":N}}`. |
//! | `GET /2/activity/subscriptions` | app Bearer only (a user token gets 403, as observed twice, §3.1); `max_results` 1–1000 (default 100), `pagination_token`; `meta.result_count`, `meta.next_token` |
//! | `DELETE /2/activity/subscriptions/{id}` | app Bearer only; `{"data":{"deleted":true},"meta":{"total_subscriptions":N}}` |
//! | `DELETE /2/activity/subscriptions?ids=a,b` | app Bearer only; 1–100 ids; per-id results and errors |
//! | `GET /2/activity/stream` | app Bearer only; `backfill_minutes`/`start_time`/`end_time` → 400 (self-serve, §4.1); at most 2 connections (a third gets 429 `TooManyConnections`); NDJSON events, a blank `\r\n` heartbeat every 10 s (or `Faults::stream_heartbeat`) |
//!
//! Subscription calls are limited per app to 500 per 15 minutes each (POST, GET, DELETE), the
//! stream to 450 connects per 15 minutes (§3.6); a refused call gets 429 with the usual headers.
//!
//! Which posts fire which event (§2, §7): an explicit @mention of U (outside the leading reply
//! handles) → `post.mention.create` for U; a direct reply to a post by U → `post.reply.create`;
//! a quote of a post by U → `post.quote.create`; never for U's own posts. Implicit mentions (the
//! leading @handles of a reply deeper in a thread) fire nothing, so only polling finds them.
//! Events go to the connections open at that moment: nothing is kept for a stream that is down.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tokio::sync::{broadcast, mpsc};

use super::http::{about_blank, invalid_request, json_response, param_error, problem};
use super::state::{PostRecord, Shared, World, x_timestamp};

/// The consumer API key of the simulated app (client_credentials).
pub const SIM_API_KEY: &str = "sim-api-key";
/// Its API secret (made up: it opens nothing but the simulator).
pub const SIM_API_SECRET: &str = "sim-api-secret";

/// Subscriptions per app on a self-serve plan (ACTIVITY.md §3.6).
pub const MAX_SUBSCRIPTIONS: usize = 1500;
/// Concurrent stream connections per app (§4.2).
pub const MAX_CONNECTIONS: usize = 2;
/// The heartbeat interval unless a fault says otherwise (X: at least every 20 s).
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(10);
/// Subscription calls per app per 15 minutes, each method (§3.6).
const SUBSCRIPTION_CALLS_PER_WINDOW: u32 = 500;
/// Stream connects per app per 15 minutes.
const STREAM_CONNECTS_PER_WINDOW: u32 = 450;
const WINDOW_SECS: i64 = 15 * 60;

/// Event types `CreateActivitySubscriptionRequest` accepts (spec 2.167 plus the docs' post.*).
const EVENT_TYPES: &[&str] = &[
    "post.mention.create",
    "post.reply.create",
    "post.quote.create",
    "post.repost.create",
    "post.create",
    "post.delete",
    "dm.received",
    "dm.sent",
    "dm.read",
    "dm.indicate_typing",
    "like.create",
    "follow.follow",
    "follow.unfollow",
    "profile.update.bio",
];

/// Private events: only the filtered user's own token may subscribe to them.
fn is_private(event_type: &str) -> bool {
    event_type.starts_with("post.")
        && event_type.ends_with(".create")
        && event_type != "post.create"
        || event_type.starts_with("dm.")
        || event_type.starts_with("like.")
}

/// One subscription as the simulator keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimSubscription {
    pub subscription_id: String,
    pub event_type: String,
    pub user_id: String,
    pub tag: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// What goes to every open stream connection.
#[derive(Clone, Debug)]
pub(crate) enum StreamItem {
    /// One NDJSON line (without its newline), and who is billed for it: (user, post).
    Line(Arc<str>, u64, u64),
    /// Close every connection now (the control route's drop).
    Kick,
    /// Every open connection goes silent now (no events, no heartbeats), as in a stall.
    Stall,
}

/// The app's subscriptions, the open connections and the per-app call windows.
pub(crate) struct ActivityState {
    pub subscriptions: BTreeMap<u64, SimSubscription>,
    next_id: u64,
    pub feed: broadcast::Sender<StreamItem>,
    pub connections: usize,
    /// Events written to a connection, over the simulator's life.
    pub delivered: u64,
    /// Stream connections accepted.
    pub connects: u64,
    windows: HashMap<&'static str, (i64, u32)>,
}

impl Default for ActivityState {
    fn default() -> ActivityState {
        // Room for bursts: a connection that lags this far behind is dropped (X's SlowReader).
        let (feed, _) = broadcast::channel(4096);
        ActivityState {
            subscriptions: BTreeMap::new(),
            next_id: 1_900_000_000_000_000_000,
            feed,
            connections: 0,
            delivered: 0,
            connects: 0,
            windows: HashMap::new(),
        }
    }
}

impl ActivityState {
    /// A fresh subscription id.
    pub fn allocate_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Counts one call against the per-app window of `what`; false when the window is spent.
    fn take(&mut self, what: &'static str, limit: u32, now: DateTime<Utc>) -> bool {
        let window = self.windows.entry(what).or_insert((now.timestamp(), 0));
        if now.timestamp() - window.0 >= WINDOW_SECS {
            *window = (now.timestamp(), 0);
        }
        if window.1 >= limit {
            return false;
        }
        window.1 += 1;
        true
    }
}

/// The events a new post fires, as (event type, user it is for).
pub(crate) fn events_for(world: &World, post: &PostRecord) -> Vec<(&'static str, u64)> {
    let mut out: Vec<(&'static str, u64)> = Vec::new();
    for m in &post.mentions {
        // Leading reply handles are implicit mentions: no event (ACTIVITY.md §2, §7).
        if m.start >= post.display_start
            && m.id != post.author_id
            && !out.contains(&("post.mention.create", m.id))
        {
            out.push(("post.mention.create", m.id));
        }
    }
    for (kind, id) in &post.referenced {
        let Some(target) = world.posts.get(id) else {
            continue;
        };
        if target.author_id == post.author_id {
            continue;
        }
        match kind {
            super::state::RefKind::RepliedTo => out.push(("post.reply.create", target.author_id)),
            super::state::RefKind::Quoted => out.push(("post.quote.create", target.author_id)),
        }
    }
    out
}

/// Sends the events of a post just inserted to every open connection. Called with the world
/// locked (broadcast sends never wait).
pub(crate) fn publish(world: &World, post_id: u64) {
    if world.activity.feed.receiver_count() == 0 {
        return;
    }
    let Some(post) = world.posts.get(&post_id) else {
        return;
    };
    for (event_type, user) in events_for(world, post) {
        for sub in world.activity.subscriptions.values() {
            if sub.event_type == event_type && sub.user_id == user.to_string() {
                let line = event_line(world, post, event_type, sub);
                let _ = world
                    .activity
                    .feed
                    .send(StreamItem::Line(line.into(), user, post.id));
            }
        }
    }
}

/// Every field a post event carries (the delivered payloads hold them all, §5.2).
fn all_tweet_fields() -> HashSet<String> {
    [
        "author_id",
        "created_at",
        "conversation_id",
        "in_reply_to_user_id",
        "referenced_tweets",
        "entities",
        "public_metrics",
        "possibly_sensitive",
        "reply_settings",
    ]
    .into_iter()
    .map(str::to_string)
    .collect()
}

fn event_line(world: &World, post: &PostRecord, event_type: &str, sub: &SimSubscription) -> String {
    let mut payload = super::api::tweet_json(post, &all_tweet_fields(), false);
    if let Value::Object(o) = &mut payload {
        let length = post.text.chars().count();
        o.insert(
            "display_text_range".into(),
            json!([post.display_start.min(length), length]),
        );
        o.insert("lang".into(), json!("en"));
        // Real deliveries say `retweet_count` (the v2 Tweet name); spec 2.167's Post requires
        // `repost_count`. Both are sent, so a client must cope with either (ACTIVITY.md §5.2).
        if let Some(Value::Object(metrics)) = o.get_mut("public_metrics") {
            let reposts = metrics.get("retweet_count").cloned().unwrap_or(json!(0));
            metrics.insert("repost_count".into(), reposts);
        }
        o.insert("paid_partnership".into(), json!(false));
        // Real payloads carry `in_reply_to_tweet_id` beside `referenced_tweets` (§5.2).
        if let Some((_, parent)) = post
            .referenced
            .iter()
            .find(|(k, _)| *k == super::state::RefKind::RepliedTo)
        {
            o.insert("in_reply_to_tweet_id".into(), json!(parent.to_string()));
        }
    }
    // The mention example carries the author and the mentioned user; reply and quote examples
    // come with empty includes (§5.2), so perch must cope without the author's profile.
    let includes = if event_type == "post.mention.create" {
        let fields: HashSet<String> = ["profile_image_url".to_string()].into_iter().collect();
        let users: Vec<Value> = [post.author_id, sub.user_id.parse().unwrap_or(0)]
            .iter()
            .filter_map(|id| world.users.get(id))
            .map(|u| super::api::user_json(world, u, &fields))
            .collect();
        json!({"users": users, "tweets": [payload.clone()]})
    } else {
        json!({})
    };
    let mut data = Map::new();
    data.insert("event_uuid".into(), json!(post.id.to_string()));
    data.insert("filter".into(), json!({"user_id": sub.user_id}));
    data.insert("event_type".into(), json!(event_type));
    if let Some(tag) = &sub.tag {
        data.insert("tag".into(), json!(tag));
    }
    data.insert("payload".into(), payload);
    data.insert("includes".into(), includes);
    json!({ "data": data }).to_string()
}

// ---------------------------------------------------------------------------------------------
// Authentication.

/// Who is calling an Activity endpoint.
enum Auth {
    App,
    User { user_id: u64, scope: String },
}

fn authenticate(shared: &Shared, headers: &HeaderMap) -> Option<Auth> {
    let token = headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")?
        .trim();
    if token == shared.config.app_bearer_token {
        return Some(Auth::App);
    }
    let world = shared.world();
    let grant = world.oauth.check_access(token, shared.clock.now())?;
    Some(Auth::User {
        user_id: grant.user_id,
        scope: grant.scope.clone(),
    })
}

fn unauthorized() -> Response {
    about_blank(StatusCode::UNAUTHORIZED, "Unauthorized", "Unauthorized")
}

fn forbidden(detail: &str) -> Response {
    problem(
        StatusCode::FORBIDDEN,
        json!({"title": "Forbidden", "detail": detail, "type": "about:blank"}),
    )
}

fn too_many() -> Response {
    about_blank(
        StatusCode::TOO_MANY_REQUESTS,
        "Too Many Requests",
        "Too Many Requests",
    )
}

/// `POST /oauth2/token` with `grant_type=client_credentials`: the app Bearer (§3.1).
pub(crate) async fn app_token(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| STANDARD.decode(b.trim()).ok())
        .and_then(|b| String::from_utf8(b).ok());
    if basic.as_deref() != Some(&format!("{SIM_API_KEY}:{SIM_API_SECRET}")) {
        return json_response(
            StatusCode::FORBIDDEN,
            &json!({"errors":[{"code":99,"label":"authenticity_token_error","message":"Unable to verify your credentials"}]}),
        );
    }
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return json_response(
            StatusCode::FORBIDDEN,
            &json!({"errors":[{"code":170,"label":"forbidden_missing_parameter","message":"Missing required parameter: grant_type"}]}),
        );
    }
    json_response(
        StatusCode::OK,
        &json!({"token_type": "bearer", "access_token": shared.config.app_bearer_token}),
    )
}

// ---------------------------------------------------------------------------------------------
// Subscriptions.

fn subscription_json(sub: &SimSubscription) -> Value {
    let mut o = Map::new();
    o.insert("subscription_id".into(), json!(sub.subscription_id));
    o.insert("event_type".into(), json!(sub.event_type));
    o.insert("filter".into(), json!({"user_id": sub.user_id}));
    if let Some(tag) = &sub.tag {
        o.insert("tag".into(), json!(tag));
    }
    o.insert("created_at".into(), json!(x_timestamp(sub.created_at)));
    o.insert("updated_at".into(), json!(x_timestamp(sub.created_at)));
    Value::Object(o)
}

fn body_error(message: String) -> Response {
    invalid_request(vec![json!({"message": message})])
}

/// `POST /2/activity/subscriptions`.
pub(crate) async fn create_subscription(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(auth) = authenticate(&shared, &headers) else {
        return unauthorized();
    };
    let request: Map<String, Value> = match serde_json::from_slice(&body) {
        Ok(Value::Object(o)) => o,
        _ => return body_error("The request body is not a JSON object".into()),
    };
    if let Some(key) = request
        .keys()
        .find(|k| !["event_type", "filter", "tag", "webhook_id"].contains(&k.as_str()))
    {
        return body_error(format!("[{key}] is not a valid field"));
    }
    let Some(event_type) = request.get("event_type").and_then(Value::as_str) else {
        return body_error("$.event_type: is missing but it is required".into());
    };
    if !EVENT_TYPES.contains(&event_type) {
        return body_error(format!(
            "$.event_type: does not have a value in the enumeration: {event_type}"
        ));
    }
    let Some(filter) = request.get("filter").and_then(Value::as_object) else {
        return body_error("$.filter: is missing but it is required".into());
    };
    if let Some(key) = filter
        .keys()
        .find(|k| !["user_id", "keyword", "direction"].contains(&k.as_str()))
    {
        return body_error(format!("$.filter.{key} is not a valid field"));
    }
    let Some(user_id) = filter.get("user_id").and_then(Value::as_str) else {
        return body_error("$.filter.user_id: is missing (the simulator needs it)".into());
    };
    let tag = match request.get("tag") {
        None => None,
        Some(Value::String(t)) if (1..=200).contains(&t.chars().count()) => Some(t.clone()),
        Some(_) => return body_error("$.tag: must be a string of 1 to 200 characters".into()),
    };
    let now = shared.clock.now();
    // Private events: only the filtered user's own token, with the scope the event needs.
    if is_private(event_type) {
        match &auth {
            Auth::App => {
                return forbidden(
                    "You are not permitted to create a subscription for a private event with app-only authentication. Use the user's OAuth 2.0 token.",
                );
            }
            Auth::User {
                user_id: who,
                scope,
            } => {
                if who.to_string() != user_id {
                    return forbidden(
                        "You can only create subscriptions for private events of the authenticated user.",
                    );
                }
                let needed = if event_type.starts_with("dm.") {
                    "dm.read"
                } else {
                    "tweet.read"
                };
                if !scope.split_whitespace().any(|s| s == needed) {
                    return forbidden(&format!(
                        "The user token lacks the {needed} scope this event requires."
                    ));
                }
            }
        }
    }
    let mut world = shared.world();
    if !world
        .activity
        .take("POST subscriptions", SUBSCRIPTION_CALLS_PER_WINDOW, now)
    {
        return too_many();
    }
    if world
        .activity
        .subscriptions
        .values()
        .any(|s| s.event_type == event_type && s.user_id == user_id)
    {
        return problem(
            StatusCode::CONFLICT,
            json!({"title": "DuplicateSubscription", "detail": format!("A subscription for {event_type} with this filter already exists."), "type": "about:blank"}),
        );
    }
    if world.activity.subscriptions.len() >= MAX_SUBSCRIPTIONS {
        return forbidden(&format!(
            "The app has reached its limit of {MAX_SUBSCRIPTIONS} subscriptions."
        ));
    }
    let id = world.activity.allocate_id();
    let sub = SimSubscription {
        subscription_id: id.to_string(),
        event_type: event_type.to_string(),
        user_id: user_id.to_string(),
        tag,
        created_at: now,
    };
    world.activity.subscriptions.insert(id, sub.clone());
    let total = world.activity.subscriptions.len();
    json_response(
        StatusCode::OK,
        &json!({"data": {"subscription": subscription_json(&sub)}, "meta": {"total_subscriptions": total}}),
    )
}

// The refusal is the ready-made response, returned as is (as in `oauth.rs`).
#[allow(clippy::result_large_err)]
fn app_only(shared: &Shared, headers: &HeaderMap) -> Result<(), Response> {
    match authenticate(shared, headers) {
        None => Err(unauthorized()),
        Some(Auth::User { .. }) => Err(forbidden(
            "This endpoint requires app-only authentication (the app's Bearer token).",
        )),
        Some(Auth::App) => Ok(()),
    }
}

/// `GET /2/activity/subscriptions`.
pub(crate) async fn list_subscriptions(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    if let Err(refusal) = app_only(&shared, &headers) {
        return refusal;
    }
    let params: HashMap<String, String> =
        url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let mut errors = Vec::new();
    let max = match params.get("max_results") {
        None => 100,
        Some(raw) => match raw.parse::<usize>() {
            Ok(n) if (1..=1000).contains(&n) => n,
            _ => {
                errors.push(param_error(
                    "max_results",
                    raw,
                    "must be a number between 1 and 1000",
                ));
                100
            }
        },
    };
    // Page tokens are the id to start after, in base32hex-ish digits (opaque to clients).
    let after = match params.get("pagination_token") {
        None => None,
        Some(raw) => match raw.strip_prefix("sub").and_then(|d| d.parse::<u64>().ok()) {
            Some(id) => Some(id),
            None => {
                errors.push(param_error("pagination_token", raw, "is not a valid token"));
                None
            }
        },
    };
    if let Some(key) = params
        .keys()
        .find(|k| !["max_results", "pagination_token"].contains(&k.as_str()))
    {
        errors.push(param_error(
            key,
            "",
            "is not one of [max_results,pagination_token]",
        ));
    }
    if !errors.is_empty() {
        return invalid_request(errors);
    }
    let now = shared.clock.now();
    let mut world = shared.world();
    if !world
        .activity
        .take("GET subscriptions", SUBSCRIPTION_CALLS_PER_WINDOW, now)
    {
        return too_many();
    }
    let mut page: Vec<&SimSubscription> = world
        .activity
        .subscriptions
        .range(after.map_or(0, |a| a + 1)..)
        .map(|(_, s)| s)
        .take(max + 1)
        .collect();
    let more = page.len() > max;
    page.truncate(max);
    let mut meta = json!({"result_count": page.len()});
    if more && let Some(last) = page.last() {
        meta["next_token"] = json!(format!("sub{:0>19}", last.subscription_id));
    }
    let data: Vec<Value> = page.iter().map(|s| subscription_json(s)).collect();
    json_response(StatusCode::OK, &json!({"data": data, "meta": meta}))
}

/// `DELETE /2/activity/subscriptions/{id}`.
pub(crate) async fn delete_subscription(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(refusal) = app_only(&shared, &headers) {
        return refusal;
    }
    let now = shared.clock.now();
    let mut world = shared.world();
    if !world
        .activity
        .take("DELETE subscriptions", SUBSCRIPTION_CALLS_PER_WINDOW, now)
    {
        return too_many();
    }
    let removed = id
        .parse::<u64>()
        .ok()
        .and_then(|key| world.activity.subscriptions.remove(&key));
    if removed.is_none() {
        return problem(
            StatusCode::NOT_FOUND,
            json!({"title": "Not Found Error", "detail": format!("Could not find subscription with id: [{id}]."), "type": "https://api.x.com/2/problems/resource-not-found", "resource_type": "subscription", "parameter": "subscription_id", "value": id}),
        );
    }
    let total = world.activity.subscriptions.len();
    json_response(
        StatusCode::OK,
        &json!({"data": {"deleted": true}, "meta": {"total_subscriptions": total}}),
    )
}

/// `DELETE /2/activity/subscriptions?ids=a,b,…`.
pub(crate) async fn delete_subscriptions(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    if let Err(refusal) = app_only(&shared, &headers) {
        return refusal;
    }
    let params: HashMap<String, String> =
        url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let ids: Vec<String> = params
        .get("ids")
        .map(|raw| raw.split(',').map(str::trim).map(str::to_string).collect())
        .unwrap_or_default();
    if ids.is_empty() || ids.len() > 100 || ids.iter().any(|i| i.is_empty()) {
        return invalid_request(vec![param_error(
            "ids",
            params.get("ids").map_or("", String::as_str),
            "must hold 1 to 100 comma-separated ids",
        )]);
    }
    let now = shared.clock.now();
    let mut world = shared.world();
    if !world
        .activity
        .take("DELETE subscriptions", SUBSCRIPTION_CALLS_PER_WINDOW, now)
    {
        return too_many();
    }
    let mut data = Vec::new();
    let mut errors = Vec::new();
    for id in ids {
        let removed = id
            .parse::<u64>()
            .ok()
            .and_then(|key| world.activity.subscriptions.remove(&key));
        match removed {
            Some(_) => data.push(json!({"subscription_id": id, "deleted": true})),
            None => errors.push(json!({"subscription_id": id, "reason": "not_found", "message": "Subscription not found"})),
        }
    }
    let total = world.activity.subscriptions.len();
    let mut body = json!({"data": data, "meta": {"total_subscriptions": total}});
    if !errors.is_empty() {
        body["errors"] = json!(errors);
    }
    json_response(StatusCode::OK, &body)
}

// ---------------------------------------------------------------------------------------------
// The stream.

/// Decrements the connection count when a connection ends, however it ends.
struct ConnectionGuard(Arc<Shared>);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        let mut world = self.0.world();
        world.activity.connections = world.activity.connections.saturating_sub(1);
    }
}

/// `GET /2/activity/stream`.
pub(crate) async fn stream(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    if let Err(refusal) = app_only(&shared, &headers) {
        return refusal;
    }
    let params: HashMap<String, String> =
        url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    // Self-serve apps get 400 for the Enterprise recovery parameters (ACTIVITY.md §4.1).
    for name in ["backfill_minutes", "start_time", "end_time"] {
        if let Some(value) = params.get(name) {
            return invalid_request(vec![param_error(
                name,
                value,
                "is not authorized for your client application's product tier",
            )]);
        }
    }
    let now = shared.clock.now();
    let (receiver, faults) = {
        let mut world = shared.world();
        let faults = world.faults.clone();
        if faults.stream_connect_429
            || !world
                .activity
                .take("stream", STREAM_CONNECTS_PER_WINDOW, now)
        {
            return too_many();
        }
        if faults.stream_connect_503 {
            return about_blank(
                StatusCode::SERVICE_UNAVAILABLE,
                "Service Unavailable",
                "Service Unavailable",
            );
        }
        if world.activity.connections >= MAX_CONNECTIONS {
            return problem(
                StatusCode::TOO_MANY_REQUESTS,
                json!({"title": "ConnectionException", "detail": "This stream is currently at the maximum allowed connection limit.", "connection_issue": "TooManyConnections", "type": "https://api.x.com/2/problems/streaming-connection"}),
            );
        }
        world.activity.connections += 1;
        world.activity.connects += 1;
        (world.activity.feed.subscribe(), faults)
    };
    let guard = ConnectionGuard(shared.clone());
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    tokio::spawn(serve_connection(shared, receiver, tx, faults, guard));
    let body = Body::from_stream(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<Bytes, Infallible>(b), rx))
    }));
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        body,
    )
        .into_response()
}

/// Writes one connection's lines until the client leaves or a fault ends it. The faults are
/// those in force when it connected, plus the drop control (which reaches every connection).
async fn serve_connection(
    shared: Arc<Shared>,
    mut feed: broadcast::Receiver<StreamItem>,
    tx: mpsc::Sender<Bytes>,
    faults: super::faults::Faults,
    _guard: ConnectionGuard,
) {
    let started = tokio::time::Instant::now();
    let heartbeat = faults.stream_heartbeat.unwrap_or(DEFAULT_HEARTBEAT);
    let far = started + Duration::from_secs(365 * 24 * 3600);
    let stall_at = faults.stream_stall_after.map_or(far, |d| started + d);
    let drop_at = faults.stream_drop_after.map_or(far, |d| started + d);
    let disconnect_at = faults.stream_disconnect_after.map_or(far, |d| started + d);
    // Headers go out with the first bytes: a heartbeat right away.
    if tx.send(Bytes::from_static(b"\r\n")).await.is_err() {
        return;
    }
    let mut next_beat = started + heartbeat;
    loop {
        tokio::select! {
            _ = tx.closed() => return,
            _ = tokio::time::sleep_until(drop_at) => return,
            _ = tokio::time::sleep_until(disconnect_at) => {
                let line = json!({"errors": [{
                    "title": "operational-disconnect",
                    "disconnect_type": "UpstreamOperationalDisconnect",
                    "detail": "This stream has been disconnected upstream for operational reasons.",
                    "type": "https://api.x.com/2/problems/operational-disconnect",
                }]});
                let _ = tx.send(Bytes::from(format!("{line}\r\n"))).await;
                return;
            }
            _ = tokio::time::sleep_until(stall_at) => {
                // Open, silent: no events, no heartbeats, until the client gives up. Bounded,
                // so a client that never notices does not hold the slot forever.
                tokio::select! {
                    _ = tx.closed() => {}
                    _ = tokio::time::sleep(Duration::from_secs(300)) => {}
                }
                return;
            }
            _ = tokio::time::sleep_until(next_beat) => {
                next_beat += heartbeat;
                if tx.send(Bytes::from_static(b"\r\n")).await.is_err() {
                    return;
                }
            }
            item = feed.recv() => match item {
                Ok(StreamItem::Line(line, user, post)) => {
                    if faults.stream_malformed_lines
                        && tx.send(Bytes::from_static(b"{\"data\":{\"event_type\":7,\r\n")).await.is_err()
                    {
                        return;
                    }
                    if tx.send(Bytes::from(format!("{line}\r\n"))).await.is_err() {
                        return;
                    }
                    let day = shared.clock.now().date_naive();
                    let mut world = shared.world();
                    world.activity.delivered += 1;
                    world.billing.stream_event(user, day, post);
                }
                Ok(StreamItem::Kick) => return,
                Ok(StreamItem::Stall) => {
                    tokio::select! {
                        _ = tx.closed() => {}
                        _ = tokio::time::sleep(Duration::from_secs(300)) => {}
                    }
                    return;
                }
                // A reader this far behind is dropped, as X drops a SlowReader, without a word.
                Err(broadcast::error::RecvError::Lagged(_)) => return,
                Err(broadcast::error::RecvError::Closed) => return,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_events_are_the_post_dm_and_like_kinds() {
        assert!(is_private("post.mention.create"));
        assert!(is_private("post.reply.create"));
        assert!(is_private("dm.received"));
        assert!(!is_private("post.create"));
        assert!(!is_private("follow.follow"));
    }
}
