//! Helpers for the outbox and CLI tests (included with `#[path]`): a simulator with the demo's
//! accounts logged in through the real OAuth exchange, mentions fetched into a store in a
//! temporary directory, the `perch` binary pointed at it all, and a proxy that can hold X's answer
//! to a post back (so a test can stop perch after X has the post and before perch hears of it).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use perch::cli::App;
use perch::config::Config;
use perch::domain::{Account, Mention};
use perch::sim::{self, SimConfig, SimHandle};
use perch::x::XClient;

/// The demo's simulated accounts (SimConfig::demo): `nimbusnotes` and `nimbus_help` accept DMs,
/// `mara_quill` does not.
pub const BRAND: &str = "nimbusnotes";
pub const FOUNDER: &str = "mara_quill";
pub const SUPPORT: &str = "nimbus_help";

pub struct World {
    pub sim: SimHandle,
    pub dir: tempfile::TempDir,
}

impl World {
    /// A quiet simulator (a tiny backlog, no live stream).
    pub async fn start(seed: u64) -> World {
        let mut config = SimConfig::for_tests(seed);
        config.backlog_per_user = 2;
        World::start_with(config).await
    }

    pub async fn start_with(config: SimConfig) -> World {
        let sim = sim::start(config, 0).await.expect("simulator starts");
        let dir = tempfile::tempdir().expect("temp dir");
        World { sim, dir }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    /// The environment that points perch at this world, with X's API at `api_base` (the
    /// simulator, or a proxy in front of it). Everything perch writes stays in the temp dir.
    pub fn env(&self, api_base: &str) -> BTreeMap<String, String> {
        let home = self.dir.path();
        let mut env = BTreeMap::new();
        let mut set = |k: &str, v: String| {
            env.insert(k.to_string(), v);
        };
        set(
            "PERCH_CONFIG",
            home.join("no-config.toml").display().to_string(),
        );
        set("PERCH_DATA_DIR", self.data_dir().display().to_string());
        set("PERCH_API_BASE", api_base.to_string());
        set("PERCH_AUTHORIZE_URL", self.sim.authorize_url());
        set("PERCH_TOKEN_URL", self.sim.token_url());
        set("PERCH_CLIENT_ID", sim::DEMO_CLIENT_ID.to_string());
        set("PERCH_REDIRECT_URI", sim::DEMO_REDIRECT_URI.to_string());
        set("PERCH_LOG", "perch=debug".to_string());
        set("XDG_STATE_HOME", home.join("state").display().to_string());
        set("XDG_CONFIG_HOME", home.join("config").display().to_string());
        set("XDG_DATA_HOME", home.join("data").display().to_string());
        env
    }

    pub fn config(&self, api_base: &str) -> Config {
        let env: BTreeMap<String, String> = self
            .env(api_base)
            .into_iter()
            .filter(|(k, _)| k.starts_with("PERCH_"))
            .collect();
        Config::load_from(&env).expect("test config")
    }

    /// perch's pieces in this process, talking to the simulator directly.
    pub async fn app(&self) -> App {
        match App::open(&self.config(&self.sim.api_base())).await {
            Ok(app) => app,
            Err(f) => panic!("cannot open perch: {}", f.message),
        }
    }

    /// Adds every simulated user as an account: authorize → the simulator's redirect → code →
    /// token → users/me, as `perch login` does.
    pub async fn login_all(&self, app: &App) -> Vec<Account> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let mut accounts = Vec::new();
        for user in self.sim.control().users() {
            let login = perch::auth::start_login(&app.oauth).unwrap();
            let url = format!("{}&sim_user={}", login.url, user.username);
            let response = http.get(&url).send().await.unwrap();
            let location = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .expect("the simulator redirects the login")
                .to_string();
            let code = perch::auth::parse_callback(&location, login.state()).unwrap();
            let tokens = perch::auth::exchange_code(&app.oauth, &login, &code)
                .await
                .unwrap();
            let (account, _) = perch::auth::complete_login(
                &app.store.shared(),
                &app.client,
                tokens,
                chrono::Utc::now(),
            )
            .await
            .unwrap();
            accounts.push(account);
        }
        accounts
    }

    /// Has `from` post `text` mentioning `to` on the simulator, fetches `to`'s mentions into the
    /// store, and returns the stored mention of that post for `to`'s account.
    pub async fn mention(&self, app: &App, to: &str, from: &str, text: &str) -> Mention {
        let id = self
            .sim
            .control()
            .inject_mention(to, Some(from), text)
            .expect("mention injected");
        self.stored(app, to, &id).await
    }

    /// Fetches `to`'s mentions into the store and returns its mention of post `id`.
    pub async fn stored(&self, app: &App, to: &str, id: &str) -> Mention {
        let accounts = app.store.accounts().unwrap();
        let account = accounts
            .iter()
            .find(|a| a.twitter_username == to)
            .expect("account logged in");
        fetch(app, account).await;
        app.store
            .page_after(&Default::default(), None, 1000)
            .unwrap()
            .into_iter()
            .find(|m| m.tweet_id == id && m.sent_to.account_id == account.id)
            .expect("the mention was fetched")
    }
}

/// One page of an account's mentions, committed to the store as the sync engine would.
pub async fn fetch(app: &App, account: &Account) {
    let token = app.tokens.access_token(account.id).await.unwrap();
    let page = app
        .client
        .mentions_page(&token, &account.twitter_id, None, None)
        .await
        .unwrap()
        .data;
    let now = chrono::Utc::now();
    let mentions: Vec<Mention> = page
        .posts
        .iter()
        .filter(|p| !p.is_retweet)
        .map(|p| perch::x::to_mention(p, account, now))
        .collect();
    app.store.commit_page(account.id, &mentions, None).unwrap();
}

/// An X client with a short request timeout (for tests where X's answer never comes).
pub fn impatient_client(api_base: &str) -> XClient {
    XClient::with_timeouts(api_base, Duration::from_secs(10), Duration::from_secs(3))
}

/// Waits (generously) until `check` holds.
pub async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while !check() {
        assert!(
            std::time::Instant::now() < deadline,
            "gave up waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A pass-through HTTP proxy in front of the simulator that can hold back X's answer to posts
/// and DMs: the request reaches X (the post is created) and the answer never comes back, which is
/// what a crash or a dead connection looks like from perch's side.
pub struct Proxy {
    pub base: String,
    hold_sends: Arc<AtomicBool>,
    held: Arc<AtomicUsize>,
}

#[derive(Clone)]
struct ProxyState {
    target: String,
    http: reqwest::Client,
    hold_sends: Arc<AtomicBool>,
    held: Arc<AtomicUsize>,
}

impl Proxy {
    pub async fn start(target: &str) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let hold_sends = Arc::new(AtomicBool::new(false));
        let held = Arc::new(AtomicUsize::new(0));
        let state = ProxyState {
            target: target.trim_end_matches('/').to_string(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            hold_sends: hold_sends.clone(),
            held: held.clone(),
        };
        let app = axum::Router::new().fallback(forward).with_state(state);
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Proxy {
            base,
            hold_sends,
            held,
        }
    }

    /// From now on, answers to posts and DMs are held back forever (after X handled them).
    pub fn hold_sends(&self, hold: bool) {
        self.hold_sends.store(hold, Ordering::SeqCst);
    }

    /// How many answers have been held back.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::SeqCst)
    }
}

async fn forward(State(state): State<ProxyState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    let path = parts.uri.path().to_string();
    let url = format!(
        "{}{}",
        state.target,
        parts.uri.path_and_query().map_or("/", |p| p.as_str())
    );
    let mut outgoing = state.http.request(parts.method.clone(), url).body(bytes);
    for (name, value) in &parts.headers {
        if name != "host" && name != "content-length" {
            outgoing = outgoing.header(name, value);
        }
    }
    let answer = match outgoing.send().await {
        Ok(a) => a,
        Err(e) => {
            return Response::builder()
                .status(502)
                .body(Body::from(format!("proxy: {e}")))
                .unwrap();
        }
    };
    let is_send = parts.method == axum::http::Method::POST
        && (path == "/2/tweets" || path.starts_with("/2/dm_conversations/"));
    if is_send && state.hold_sends.load(Ordering::SeqCst) {
        state.held.fetch_add(1, Ordering::SeqCst);
        std::future::pending::<()>().await;
    }
    let mut response = Response::builder().status(answer.status());
    for (name, value) in answer.headers() {
        if name != "content-length" && name != "transfer-encoding" && name != "connection" {
            response = response.header(name, value);
        }
    }
    let body = answer.bytes().await.unwrap_or_default();
    response.body(Body::from(body)).unwrap()
}

/// The `perch` binary with this world's environment (and nothing from the user's).
pub fn perch(world: &World, api_base: &str) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_perch"));
    for (k, _) in std::env::vars() {
        if k.starts_with("PERCH_") {
            command.env_remove(k);
        }
    }
    command.envs(world.env(api_base));
    command
}

/// `perch ARGS...` with this world's environment.
pub fn perch_args(world: &World, api_base: &str, args: &[&str]) -> std::process::Command {
    let mut command = perch(world, api_base);
    command.args(args);
    command
}

/// Runs the binary to completion (off the async threads, so the simulator keeps serving).
pub async fn run(mut command: std::process::Command, stdin: Option<&str>) -> std::process::Output {
    use std::io::Write;
    use std::process::Stdio;
    let stdin = stdin.map(str::to_string);
    tokio::task::spawn_blocking(move || {
        command
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("perch binary starts");
        if let Some(text) = stdin
            && let Some(mut pipe) = child.stdin.take()
        {
            pipe.write_all(text.as_bytes()).unwrap();
        }
        child.wait_with_output().expect("perch binary finishes")
    })
    .await
    .unwrap()
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
