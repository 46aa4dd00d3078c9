//! An X API v2 simulator: a real HTTP server (axum) on 127.0.0.1 that behaves like X as
//! `../shared/x-api/CONTRACT.md` describes, for everything perch uses. `perch --demo`, the tests
//! and `perch sim` all run it; the client cannot tell it from X except by its base URL.
//!
//! It deliberately shares no parsing code with `crate::x`: it builds X's JSON by hand from its own
//! model, so a client that misreads X's shapes fails against it too.
//!
//! # X's routes
//!
//! | route | behaviour |
//! |---|---|
//! | `GET /i/oauth2/authorize` | validates `client_id`, `redirect_uri` (exact, or any loopback port when allowed), `response_type=code`, `code_challenge` (S256/plain), `state`, `scope`; approves at once: 302 to `redirect_uri?state=..&code=..`. Simulator-only query parameters: `sim_user=<username>` picks who approves (default: the first account), `sim_deny=1` makes them refuse (`error=access_denied`). |
//! | `POST /2/oauth2/token` | `authorization_code` (PKCE checked; codes live 30 s, work once) and `refresh_token` (rotating; a spent one gets 400 `invalid_request` "Value passed for the token was invalid."). Public clients send `client_id` in the body; a confidential client (`client_secret` set) must use HTTP Basic or gets 401 `unauthorized_client`. |
//! | `POST /2/oauth2/revoke` | revokes an access token, or a refresh token and its whole grant. |
//! | `GET /2/users/me` | the token's user; `user.fields` honoured. |
//! | `GET /2/users/{id}/mentions` | newest first, exclusive `since_id`/`until_id` (u64), `start_time`/`end_time`, `max_results` 5-100 (default 10), opaque base36 `next_token`/`previous_token`, the 800-most-recent cap, only the requested `tweet.fields`/`expansions`/`user.fields`, de-duplicated `includes`, HTML-escaped text, `{"meta":{"result_count":0}}` when empty, 400 invalid-request in X's wording. |
//! | `POST /2/tweets` | `TweetCreateRequest` checked (no unknown keys), twitter-text length, duplicate content 403, summoned-replies 403, missing parent 403; 201 with `location`. The post then exists: in its author's posts and in the mentions of every user it @mentions. |
//! | `GET /2/usage/tweets` | app-only Bearer (`app_bearer_token`): posts consumed this month and per day (`days`, `usage.fields`), typed as openapi.json 2.159 |
//! | `POST /oauth2/token`, `/2/activity/subscriptions[/{id}]`, `GET /2/activity/stream` | the X Activity API: see `activity.rs` |
//! | `POST /2/dm_conversations/with/{participant_id}/messages` | 201 `{dm_conversation_id: "low-high", dm_event_id}`; 403 when the recipient does not accept DMs. |
//!
//! Billing (`billing.rs`): every successful resource call is billed at COSTS.md's prices against
//! the app's credit balance; once it is spent, resource calls get 402 CreditsDepleted.
//!
//! Every response carries `content-type`, `date` (`... UTC`), `x-transaction-id`, `api-version`,
//! `x-response-time`; resource responses also `x-rate-limit-limit/remaining/reset` (per access
//! token and endpoint, 15-minute windows from the first request; the DM endpoint also
//! `x-user-limit-24hour-*`) and `x-access-level`. Missing, unknown, expired or revoked tokens get
//! 401 with X's about:blank Problem (and no rate-limit headers: there is no budget to report).
//!
//! # Control routes (test-only, not X)
//!
//! Not logged in the request log. Bodies are JSON.
//!
//! | route | does |
//! |---|---|
//! | `GET /__sim/users` | `{"users":[{id, username, name, accepts_dms}]}` |
//! | `GET /__sim/posts` | `{"posts":[CreatedPost]}`: posts created through `POST /2/tweets` |
//! | `GET /__sim/dms` | `{"dms":[SentDm]}` |
//! | `GET /__sim/requests` | `{"requests":[RequestLogEntry]}`: method, path, query, status, user, note, time |
//! | `POST /__sim/mentions` `{to, from?, text}` | injects a mention now; `{"id": ".."}` |
//! | `POST /__sim/generate` `{count, to?}` | generates mentions now; `{"ids": [..]}` |
//! | `POST /__sim/revoke` `{user}` | revokes all of a user's grants (access and refresh tokens) |
//! | `POST /__sim/expire` `{user}` | expires a user's access tokens now |
//! | `GET`/`PUT /__sim/faults` | reads / replaces the active [`Faults`] (delays in ms) |
//! | `POST /__sim/clock` `{advance_ms}` | moves the simulator's clock forward |
//! | `GET /__sim/bill` | the app's bill (`SimBill`): balance, spent, per user and kind, posts per day |
//! | `PUT /__sim/credits` `{usd}` | sets the credit balance (`null`: unlimited) |
//! | `GET /__sim/subscriptions` | `{"subscriptions":[SimSubscription], "connections": N, "delivered": N}` |
//! | `POST /__sim/stream/drop` | closes every open Activity stream connection now |
//!
//! Errors from control routes are 400 `{"error": "..."}`.

mod activity;
mod api;
mod billing;
mod control;
mod faults;
mod generator;
mod http;
mod oauth;
mod ratelimit;
mod state;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use activity::{MAX_SUBSCRIPTIONS, SIM_API_KEY, SIM_API_SECRET, SimSubscription};
pub use billing::{Charged, SimBill};
pub use control::SimControl;
pub use faults::Faults;
pub use ratelimit::{EndpointLimit, RateLimitProfile};

use http::{ConnHandle, ResettableListener};
use state::{Clock, Shared, World};

/// One simulated X account that perch can log in as.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimUserSpec {
    pub username: String,
    pub name: String,
    /// Whether others can DM this account (`receives_your_dm`).
    pub accepts_dms: bool,
}

impl SimUserSpec {
    pub fn new(username: &str, name: &str, accepts_dms: bool) -> SimUserSpec {
        SimUserSpec {
            username: username.to_string(),
            name: name.to_string(),
            accepts_dms,
        }
    }
}

/// Everything a simulator starts from.
#[derive(Clone, PartialEq)]
pub struct SimConfig {
    /// Seeds the generator (and token strings): the same seed gives the same world.
    pub seed: u64,
    pub users: Vec<SimUserSpec>,
    pub client_id: String,
    /// `Some` makes the registered app a confidential client (HTTP Basic at the token endpoint).
    pub client_secret: Option<String>,
    /// Registered callback URLs; `redirect_uri` must match one exactly...
    pub redirect_uris: Vec<String>,
    /// ...or, when this is set, match one except for the port, for http loopback hosts
    /// (127.0.0.1, localhost, [::1]). Tests and the demo use listeners on free ports.
    pub allow_any_loopback_port: bool,
    pub access_token_lifetime: Duration,
    /// Mentions per account created at start, spread over the past 30 days.
    pub backlog_per_user: usize,
    /// Live mentions per second across all accounts (0 = no live stream).
    pub mentions_per_second: f64,
    pub rate_limits: RateLimitProfile,
    pub faults: Faults,
    /// The app's prepaid credit balance in dollars (`None`: unlimited). Spent by billable use
    /// (COSTS.md); when it is gone every resource request gets 402 CreditsDepleted.
    pub credits_usd: Option<f64>,
    /// The username of the account that owns the developer app: its own mentions are owned
    /// reads ($0.001 a post).
    pub app_owner: Option<String>,
    /// The app-only Bearer token `GET /2/usage/tweets` accepts.
    pub app_bearer_token: String,
}

impl std::fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimConfig")
            .field("seed", &self.seed)
            .field("users", &self.users)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("redirect_uris", &self.redirect_uris)
            .field("allow_any_loopback_port", &self.allow_any_loopback_port)
            .field("access_token_lifetime", &self.access_token_lifetime)
            .field("backlog_per_user", &self.backlog_per_user)
            .field("mentions_per_second", &self.mentions_per_second)
            .field("rate_limits", &self.rate_limits)
            .field("faults", &self.faults)
            .field("credits_usd", &self.credits_usd)
            .field("app_owner", &self.app_owner)
            .finish_non_exhaustive()
    }
}

/// The demo's public client id.
pub const DEMO_CLIENT_ID: &str = "perch-demo";
/// The simulator's app-only Bearer token (a made-up one: it opens nothing but the simulator).
pub const DEMO_APP_BEARER_TOKEN: &str = "sim-app-bearer-token";

/// The demo's registered callback (perch's default `PERCH_REDIRECT_URI`).
pub const DEMO_REDIRECT_URI: &str = "http://127.0.0.1:8765/callback";

impl SimConfig {
    /// Three fictional accounts (a brand, its founder, its support handle), ~40 mentions of
    /// backlog each, ~0.5 live mentions per second, public client `perch-demo`, callback
    /// `http://127.0.0.1:8765/callback` with any loopback port accepted.
    pub fn demo() -> SimConfig {
        SimConfig {
            seed: 2026,
            users: vec![
                SimUserSpec::new("nimbusnotes", "Nimbus Notes", true),
                SimUserSpec::new("mara_quill", "Mara Quill", false),
                SimUserSpec::new("nimbus_help", "Nimbus Support", true),
            ],
            client_id: DEMO_CLIENT_ID.to_string(),
            client_secret: None,
            redirect_uris: vec![DEMO_REDIRECT_URI.to_string()],
            allow_any_loopback_port: true,
            access_token_lifetime: Duration::from_secs(7200),
            backlog_per_user: 40,
            mentions_per_second: 0.5,
            rate_limits: RateLimitProfile::pay_per_use(),
            faults: Faults::default(),
            // Plenty for a demo session; tests set a small balance to drain it.
            credits_usd: Some(25.0),
            app_owner: Some("nimbusnotes".to_string()),
            app_bearer_token: DEMO_APP_BEARER_TOKEN.to_string(),
        }
    }

    /// Like the demo but quick and quiet: a small backlog (12 per account), no live stream.
    pub fn for_tests(seed: u64) -> SimConfig {
        SimConfig {
            seed,
            backlog_per_user: 12,
            mentions_per_second: 0.0,
            ..SimConfig::demo()
        }
    }
}

/// A configured account as the running simulator knows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimUser {
    /// The X user id (decimal string).
    pub id: String,
    pub username: String,
    pub name: String,
    pub accepts_dms: bool,
}

/// A post created through `POST /2/tweets`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedPost {
    pub id: String,
    /// The author: the user the access token belonged to.
    pub author_id: String,
    pub author_username: String,
    /// The text as sent (not escaped).
    pub text: String,
    pub in_reply_to_tweet_id: Option<String>,
    pub quote_tweet_id: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// A DM sent through the DM endpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentDm {
    pub dm_event_id: String,
    pub dm_conversation_id: String,
    pub sender_id: String,
    pub sender_username: String,
    pub recipient_id: String,
    pub recipient_username: String,
    pub text: String,
    pub created_at: DateTime<Utc>,
}

/// One request the simulator answered (control routes excluded).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestLogEntry {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub status: u16,
    /// The user the bearer token (or, at the token endpoint, the issued token) belonged to.
    pub user_id: Option<String>,
    pub username: Option<String>,
    /// Extra detail, e.g. `grant_type=refresh_token` at the token endpoint.
    pub note: Option<String>,
    pub transaction_id: String,
    /// Simulator time.
    pub at: DateTime<Utc>,
}

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("no such simulated user: {0}")]
    UnknownUser(String),
}

/// A running simulator. Dropping it leaves the server running until the runtime ends; call
/// [`SimHandle::shutdown`] to stop it.
pub struct SimHandle {
    addr: SocketAddr,
    control: SimControl,
    stop: Mutex<Option<oneshot::Sender<()>>>,
    server: JoinHandle<()>,
    stream: JoinHandle<()>,
}

impl std::fmt::Debug for SimHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimHandle")
            .field("addr", &self.addr)
            .finish()
    }
}

impl SimHandle {
    /// `http://127.0.0.1:PORT`
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// What `PERCH_API_BASE` points at (the same as `base_url`).
    pub fn api_base(&self) -> String {
        self.base_url()
    }

    /// `{base}/i/oauth2/authorize`
    pub fn authorize_url(&self) -> String {
        format!("{}/i/oauth2/authorize", self.base_url())
    }

    /// `{base}/2/oauth2/token`
    pub fn token_url(&self) -> String {
        format!("{}/2/oauth2/token", self.base_url())
    }

    /// `{base}/2/oauth2/revoke`
    pub fn revoke_url(&self) -> String {
        format!("{}/2/oauth2/revoke", self.base_url())
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn control(&self) -> SimControl {
        self.control.clone()
    }

    /// Stops the live stream and the server (in-flight requests get up to 2 s to finish).
    pub async fn shutdown(self) {
        self.stream.abort();
        let stop = self
            .stop
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some(stop) = stop {
            let _ = stop.send(());
        }
        let abort = self.server.abort_handle();
        if tokio::time::timeout(Duration::from_secs(2), self.server)
            .await
            .is_err()
        {
            abort.abort();
        }
    }
}

/// Starts a simulator on 127.0.0.1:`port` (0 = any free port) and returns once it accepts
/// connections.
pub async fn start(config: SimConfig, port: u16) -> std::io::Result<SimHandle> {
    let corpus = generator::Corpus::load().map_err(std::io::Error::other)?;
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await?;
    let addr = listener.local_addr()?;
    let clock = Clock::default();
    let mut world = World::new(&config);
    generator::populate(
        &mut world,
        &corpus,
        &config.users,
        config.backlog_per_user,
        clock.now(),
    );
    let shared = Arc::new(Shared {
        world: Mutex::new(world),
        clock,
        config,
        corpus,
        base_url: format!("http://{addr}"),
    });

    let router = Router::new()
        .route("/i/oauth2/authorize", get(oauth::authorize))
        .route("/2/oauth2/token", post(oauth::token))
        .route("/2/oauth2/revoke", post(oauth::revoke))
        .route("/2/users/me", get(api::users_me))
        .route("/2/users/{id}/mentions", get(api::mentions))
        .route("/2/tweets", post(api::create_post))
        .route(
            "/2/dm_conversations/with/{participant_id}/messages",
            post(api::send_dm),
        )
        .route("/2/usage/tweets", get(api::usage_tweets))
        .route("/oauth2/token", post(activity::app_token))
        .route(
            "/2/activity/subscriptions",
            post(activity::create_subscription)
                .get(activity::list_subscriptions)
                .delete(activity::delete_subscriptions),
        )
        .route(
            "/2/activity/subscriptions/{subscription_id}",
            axum::routing::delete(activity::delete_subscription),
        )
        .route("/2/activity/stream", get(activity::stream))
        .merge(control::routes())
        .fallback(http::not_found)
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            http::gate,
        ))
        .with_state(shared.clone());

    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let service = router.into_make_service_with_connect_info::<ConnHandle>();
        let result = axum::serve(ResettableListener { inner: listener }, service)
            .with_graceful_shutdown(async {
                let _ = stop_rx.await;
            })
            .await;
        if let Err(e) = result {
            tracing::error!("simulator server stopped: {e}");
        }
    });
    let stream = tokio::spawn(live_stream(shared.clone()));
    tracing::info!("X API simulator listening on http://{addr}");
    Ok(SimHandle {
        addr,
        control: SimControl { shared },
        stop: Mutex::new(Some(stop_tx)),
        server,
        stream,
    })
}

/// The live stream: new mentions at the configured rate (or the fault's high rate), spread over
/// the accounts. The rate is re-read every tick, so faults can change it at runtime.
async fn live_stream(shared: Arc<Shared>) {
    loop {
        let rate = {
            let world = shared.world();
            world
                .faults
                .high_mention_rate
                .unwrap_or(shared.config.mentions_per_second)
        };
        if !(rate > 0.0 && rate.is_finite()) {
            tokio::time::sleep(Duration::from_millis(250)).await;
            continue;
        }
        // Above 20/s, create several per tick instead of sleeping less than 50 ms.
        let per_tick = (rate / 20.0).ceil().max(1.0);
        tokio::time::sleep(Duration::from_secs_f64(per_tick / rate)).await;
        let now = shared.clock.now();
        let mut world = shared.world();
        for _ in 0..per_tick as usize {
            generator::generate_live(&mut world, &shared.corpus, now);
        }
    }
}

/// `perch sim`: starts a simulator, prints the environment lines that point perch at it, and
/// serves until Ctrl-C.
pub async fn run_standalone(config: SimConfig, port: u16) -> anyhow::Result<()> {
    let handle = start_standalone(config, port).await?;
    tokio::signal::ctrl_c().await?;
    handle.shutdown().await;
    Ok(())
}

/// The first half of [`run_standalone`]: starts the simulator and prints the environment lines
/// (so a caller can add timed faults before waiting for Ctrl-C).
pub async fn start_standalone(config: SimConfig, port: u16) -> anyhow::Result<SimHandle> {
    let redirect_uri = config
        .redirect_uris
        .first()
        .cloned()
        .unwrap_or_else(|| DEMO_REDIRECT_URI.to_string());
    let client_id = config.client_id.clone();
    let client_secret = config.client_secret.clone();
    let app_owner = config.app_owner.clone();
    let app_bearer = config.app_bearer_token.clone();
    let handle = start(config, port).await.map_err(|e| {
        anyhow::anyhow!(
            "cannot start the X API simulator on 127.0.0.1:{port}: {e} (try another --port, or 0 for any free port)"
        )
    })?;
    println!("# perch X API simulator on {}", handle.base_url());
    println!("export PERCH_API_BASE={}", handle.api_base());
    println!("export PERCH_AUTHORIZE_URL={}", handle.authorize_url());
    println!("export PERCH_TOKEN_URL={}", handle.token_url());
    println!("export PERCH_CLIENT_ID={client_id}");
    if let Some(secret) = client_secret {
        // A simulator's made-up secret, printed because perch needs it to log in here.
        println!("export PERCH_CLIENT_SECRET={secret}");
    }
    println!("export PERCH_REDIRECT_URI={redirect_uri}");
    if let Some(owner) = &app_owner {
        println!("export PERCH_APP_OWNER=@{owner}");
    }
    // The simulator's made-up app Bearer token (usage reconciliation).
    println!("export PERCH_APP_BEARER_TOKEN={app_bearer}");
    // ...or let perch mint it with client_credentials from these (made-up) consumer keys.
    println!("# or: export PERCH_API_KEY={SIM_API_KEY} PERCH_API_SECRET={SIM_API_SECRET}");
    let users: Vec<String> = handle
        .control()
        .users()
        .iter()
        .map(|u| format!("@{} ({})", u.username, u.id))
        .collect();
    println!("# accounts: {}", users.join(", "));
    println!("# press Ctrl-C to stop");
    Ok(handle)
}
