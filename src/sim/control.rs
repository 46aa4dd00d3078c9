//! Test-only control of a running simulator: in process through `SimControl`, or over HTTP under
//! `/__sim/` (the same operations; see the module docs of `sim` for the routes). Not part of X.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::faults::Faults;
use super::generator::{generate_live, generate_mention};
use super::http::json_response;
use super::state::{PostDraft, Shared};
use super::{CreatedPost, RequestLogEntry, SentDm, SimError, SimUser};

/// In-process control of a simulator. Cheap to clone; every clone controls the same simulator.
#[derive(Clone)]
pub struct SimControl {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for SimControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimControl")
            .field("base_url", &self.shared.base_url)
            .finish()
    }
}

impl SimControl {
    /// The configured accounts, in configuration order, with their X user ids.
    pub fn users(&self) -> Vec<SimUser> {
        let world = self.shared.world();
        world
            .sim_user_ids
            .iter()
            .filter_map(|id| world.users.get(id))
            .map(|u| SimUser {
                id: u.id.to_string(),
                username: u.username.clone(),
                name: u.name.clone(),
                accepts_dms: u.accepts_dms,
            })
            .collect()
    }

    /// One configured account by username (with or without `@`) or id.
    pub fn user(&self, name_or_id: &str) -> Result<SimUser, SimError> {
        let users = self.users();
        let key = name_or_id.trim_start_matches('@');
        users
            .into_iter()
            .find(|u| u.id == key || u.username.eq_ignore_ascii_case(key))
            .ok_or_else(|| self.unknown_user(name_or_id))
    }

    /// Posts created through `POST /2/tweets`, oldest first.
    pub fn posts(&self) -> Vec<CreatedPost> {
        self.shared.world().created_posts.clone()
    }

    /// DMs sent through the DM endpoint, oldest first.
    pub fn dms(&self) -> Vec<SentDm> {
        self.shared.world().dms.clone()
    }

    /// The request log (resource and OAuth endpoints; control routes are not logged), oldest first.
    pub fn request_log(&self) -> Vec<RequestLogEntry> {
        self.shared.world().request_log.iter().cloned().collect()
    }

    /// What the app has been billed so far (COSTS.md prices), per user and kind.
    pub fn bill(&self) -> super::SimBill {
        let world = self.shared.world();
        world.billing.bill(|id| world.username(id))
    }

    /// Sets the app's credit balance (`None`: unlimited); a balance of 0 makes every resource
    /// request 402 CreditsDepleted.
    pub fn set_credits(&self, usd: Option<f64>) {
        self.shared.world().billing.set_credits(usd);
    }

    /// How many mentions of a user exist (reachable or not).
    pub fn mention_count(&self, user: &str) -> Result<usize, SimError> {
        let world = self.shared.world();
        let id = self.sim_user_id(&world, user)?;
        Ok(world.mentions.get(&id).map_or(0, |m| m.len()))
    }

    /// Creates a mention of `to` now, written by `from` (a fictional author's or account's
    /// username; `None` picks the first author), with exactly `text` (a leading `@to ` is added
    /// when the text does not mention `to`). Returns the new post's id.
    pub fn inject_mention(
        &self,
        to: &str,
        from: Option<&str>,
        text: &str,
    ) -> Result<String, SimError> {
        let now = self.shared.clock.now();
        let mut world = self.shared.world();
        let to_id = self.sim_user_id(&world, to)?;
        let author = match from {
            Some(name) => world
                .find_user(name)
                .ok_or_else(|| self.unknown_user(name))?,
            None => *world
                .author_ids
                .first()
                .ok_or_else(|| SimError::UnknownUser("(no authors)".into()))?,
        };
        let to_name = world.username(to_id);
        let text = if text
            .to_lowercase()
            .contains(&format!("@{}", to_name.to_lowercase()))
        {
            text.to_string()
        } else {
            format!("@{to_name} {text}")
        };
        let id = world.insert_post(PostDraft {
            author_id: author,
            text,
            at: now,
            reply_to: None,
            quote_of: None,
            links: Vec::new(),
            like_count: 0,
            impression_count: 1,
        });
        Ok(id.to_string())
    }

    /// Creates an implicit mention of `to` now: a reply, deeper in a thread, whose only `@to` is
    /// among the leading reply handles. The mentions timeline has it; the Activity API sends no
    /// event for it (ACTIVITY.md §7). Returns the reply's id.
    pub fn inject_implicit_mention(&self, to: &str) -> Result<String, SimError> {
        let now = self.shared.clock.now();
        let mut world = self.shared.world();
        let to_id = self.sim_user_id(&world, to)?;
        let (starter, replier) = match world.author_ids.as_slice() {
            [a, b, ..] => (*a, *b),
            _ => return Err(SimError::UnknownUser("(fewer than two authors)".into())),
        };
        let (to_name, starter_name) = (world.username(to_id), world.username(starter));
        let parent = world.insert_post(PostDraft {
            author_id: starter,
            text: "thinking out loud about note apps today".into(),
            at: now,
            reply_to: None,
            quote_of: None,
            links: Vec::new(),
            like_count: 0,
            impression_count: 1,
        });
        let id = world.insert_post(PostDraft {
            author_id: replier,
            text: format!("@{starter_name} @{to_name} agreed, the sync is what sold me"),
            at: now,
            reply_to: Some(parent),
            quote_of: None,
            links: Vec::new(),
            like_count: 0,
            impression_count: 1,
        });
        Ok(id.to_string())
    }

    /// Generates `count` mentions now, spread over the accounts. Returns their ids.
    pub fn generate_mentions(&self, count: usize) -> Vec<String> {
        let now = self.shared.clock.now();
        let corpus = &self.shared.corpus;
        let mut world = self.shared.world();
        (0..count)
            .filter_map(|_| generate_live(&mut world, corpus, now))
            .map(|id| id.to_string())
            .collect()
    }

    /// Generates `count` mentions of one account now. Returns their ids, oldest first.
    pub fn generate_mentions_for(&self, user: &str, count: usize) -> Result<Vec<String>, SimError> {
        let now = self.shared.clock.now();
        let corpus = &self.shared.corpus;
        let mut world = self.shared.world();
        let to = self.sim_user_id(&world, user)?;
        Ok((0..count)
            .map(|_| generate_mention(&mut world, corpus, to, now).to_string())
            .collect())
    }

    /// Revokes every grant of a user: its access tokens get 401 and its refresh tokens
    /// `400 invalid_request`, as after the user removed the app at x.com/settings/connected_apps.
    pub fn revoke_grant(&self, user: &str) -> Result<(), SimError> {
        let mut world = self.shared.world();
        let id = self.sim_user_id(&world, user)?;
        world.oauth.revoke_user(id);
        Ok(())
    }

    /// Makes a user's access tokens expire now (refresh tokens keep working).
    pub fn expire_access_tokens(&self, user: &str) -> Result<(), SimError> {
        let now = self.shared.clock.now();
        let mut world = self.shared.world();
        let id = self.sim_user_id(&world, user)?;
        world.oauth.expire_user(id, now);
        Ok(())
    }

    /// Replaces the active faults.
    pub fn set_faults(&self, faults: Faults) {
        self.shared.world().faults = faults;
    }

    pub fn faults(&self) -> Faults {
        self.shared.world().faults.clone()
    }

    /// Moves the simulator's clock forward (codes, tokens and rate-limit windows all follow it).
    pub fn advance_clock(&self, by: Duration) {
        self.shared.clock.advance(by);
    }

    /// The simulator's current time.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.shared.clock.now()
    }

    fn sim_user_id(&self, world: &super::state::World, name: &str) -> Result<u64, SimError> {
        world
            .find_user(name)
            .filter(|id| world.sim_user_ids.contains(id))
            .ok_or_else(|| self.unknown_user(name))
    }

    fn unknown_user(&self, name: &str) -> SimError {
        let known: Vec<String> = self
            .shared
            .config
            .users
            .iter()
            .map(|u| format!("@{}", u.username))
            .collect();
        SimError::UnknownUser(format!("{name} (simulated accounts: {})", known.join(", ")))
    }
}

/// The Activity API side (`activity.rs`).
impl SimControl {
    /// The app's activity subscriptions, oldest first.
    pub fn subscriptions(&self) -> Vec<super::SimSubscription> {
        self.shared
            .world()
            .activity
            .subscriptions
            .values()
            .cloned()
            .collect()
    }

    /// Creates a subscription as if some client had (an earlier run, another tool): no auth
    /// rules, no limits. For tests of orphans.
    pub fn add_subscription(&self, event_type: &str, user_id: &str, tag: Option<&str>) -> String {
        let now = self.shared.clock.now();
        let mut world = self.shared.world();
        let id = world.activity.allocate_id();
        world.activity.subscriptions.insert(
            id,
            super::SimSubscription {
                subscription_id: id.to_string(),
                event_type: event_type.to_string(),
                user_id: user_id.to_string(),
                tag: tag.map(str::to_string),
                created_at: now,
            },
        );
        id.to_string()
    }

    /// Open Activity stream connections.
    pub fn stream_connections(&self) -> usize {
        self.shared.world().activity.connections
    }

    /// Stream connections accepted since the start.
    pub fn stream_connects(&self) -> u64 {
        self.shared.world().activity.connects
    }

    /// Events written to stream connections since the start.
    pub fn stream_events_delivered(&self) -> u64 {
        self.shared.world().activity.delivered
    }

    /// Makes every open stream connection go silent now (open, no bytes): a stall.
    pub fn stall_streams(&self) {
        let world = self.shared.world();
        let _ = world.activity.feed.send(super::activity::StreamItem::Stall);
    }

    /// Closes every open stream connection now, without a message.
    pub fn drop_streams(&self) {
        let world = self.shared.world();
        let _ = world.activity.feed.send(super::activity::StreamItem::Kick);
    }
}

// ---------------------------------------------------------------------------------------------
// The HTTP face of the same operations.

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/__sim/users", get(http_users))
        .route("/__sim/posts", get(http_posts))
        .route("/__sim/dms", get(http_dms))
        .route("/__sim/requests", get(http_requests))
        .route("/__sim/mentions", post(http_inject))
        .route("/__sim/generate", post(http_generate))
        .route("/__sim/revoke", post(http_revoke))
        .route("/__sim/expire", post(http_expire))
        .route("/__sim/faults", get(http_get_faults).put(http_set_faults))
        .route("/__sim/clock", post(http_clock))
        .route("/__sim/bill", get(http_bill))
        .route("/__sim/credits", axum::routing::put(http_credits))
        .route("/__sim/subscriptions", get(http_subscriptions))
        .route("/__sim/stream/drop", post(http_drop_streams))
}

async fn http_subscriptions(State(shared): State<Arc<Shared>>) -> Response {
    let c = control(shared);
    ok(json!({
        "subscriptions": c.subscriptions(),
        "connections": c.stream_connections(),
        "delivered": c.stream_events_delivered(),
    }))
}

async fn http_drop_streams(State(shared): State<Arc<Shared>>) -> Response {
    control(shared).drop_streams();
    ok(json!({"dropped": true}))
}

fn control(shared: Arc<Shared>) -> SimControl {
    SimControl { shared }
}

fn ok(value: serde_json::Value) -> Response {
    json_response(StatusCode::OK, &value)
}

fn failed(e: SimError) -> Response {
    json_response(StatusCode::BAD_REQUEST, &json!({"error": e.to_string()}))
}

async fn http_bill(State(shared): State<Arc<Shared>>) -> Response {
    ok(json!(control(shared).bill()))
}

#[derive(Deserialize)]
struct CreditsBody {
    usd: Option<f64>,
}

async fn http_credits(
    State(shared): State<Arc<Shared>>,
    Json(body): Json<CreditsBody>,
) -> Response {
    control(shared.clone()).set_credits(body.usd);
    ok(json!(control(shared).bill()))
}

async fn http_users(State(shared): State<Arc<Shared>>) -> Response {
    ok(json!({"users": control(shared).users()}))
}

async fn http_posts(State(shared): State<Arc<Shared>>) -> Response {
    ok(json!({"posts": control(shared).posts()}))
}

async fn http_dms(State(shared): State<Arc<Shared>>) -> Response {
    ok(json!({"dms": control(shared).dms()}))
}

async fn http_requests(State(shared): State<Arc<Shared>>) -> Response {
    ok(json!({"requests": control(shared).request_log()}))
}

#[derive(Deserialize)]
struct InjectBody {
    to: String,
    from: Option<String>,
    text: String,
}

async fn http_inject(State(shared): State<Arc<Shared>>, Json(body): Json<InjectBody>) -> Response {
    match control(shared).inject_mention(&body.to, body.from.as_deref(), &body.text) {
        Ok(id) => ok(json!({"id": id})),
        Err(e) => failed(e),
    }
}

#[derive(Deserialize)]
struct GenerateBody {
    count: usize,
    to: Option<String>,
}

async fn http_generate(
    State(shared): State<Arc<Shared>>,
    Json(body): Json<GenerateBody>,
) -> Response {
    let control = control(shared);
    let result = match &body.to {
        Some(to) => control.generate_mentions_for(to, body.count),
        None => Ok(control.generate_mentions(body.count)),
    };
    match result {
        Ok(ids) => ok(json!({"ids": ids})),
        Err(e) => failed(e),
    }
}

#[derive(Deserialize)]
struct UserBody {
    user: String,
}

async fn http_revoke(State(shared): State<Arc<Shared>>, Json(body): Json<UserBody>) -> Response {
    match control(shared).revoke_grant(&body.user) {
        Ok(()) => ok(json!({"revoked": true})),
        Err(e) => failed(e),
    }
}

async fn http_expire(State(shared): State<Arc<Shared>>, Json(body): Json<UserBody>) -> Response {
    match control(shared).expire_access_tokens(&body.user) {
        Ok(()) => ok(json!({"expired": true})),
        Err(e) => failed(e),
    }
}

async fn http_get_faults(State(shared): State<Arc<Shared>>) -> Response {
    ok(json!(control(shared).faults()))
}

async fn http_set_faults(
    State(shared): State<Arc<Shared>>,
    Json(faults): Json<Faults>,
) -> Response {
    let control = control(shared);
    control.set_faults(faults);
    ok(json!(control.faults()))
}

#[derive(Deserialize)]
struct ClockBody {
    advance_ms: u64,
}

async fn http_clock(State(shared): State<Arc<Shared>>, Json(body): Json<ClockBody>) -> Response {
    let control = control(shared);
    control.advance_clock(Duration::from_millis(body.advance_ms));
    ok(json!({"now": control.now()}))
}
