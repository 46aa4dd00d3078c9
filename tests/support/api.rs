//! Helpers for the REST API tests (included with `#[path]`): a simulator, a perch service on a
//! temporary data directory with the simulator's accounts logged in, HTTP clients for its TCP
//! listener (with and without the bearer token) and its Unix socket, and a check of a response
//! body against the service's own OpenAPI document.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use perch::cli::App;
use perch::config::Config;
use perch::service::RunningService;
use perch::sim::{self, SimConfig, SimHandle};
use serde_json::Value;

/// The demo's simulated accounts (SimConfig::demo).
pub const BRAND: &str = "nimbusnotes";
pub const FOUNDER: &str = "mara_quill";
pub const SUPPORT: &str = "nimbus_help";

/// The redirect path X sends the browser back to when the API is the OAuth client.
pub const API_CALLBACK: &str = "/api/v1/auth/callback";

pub struct ApiWorld {
    pub sim: SimHandle,
    pub dir: tempfile::TempDir,
    pub service: Option<RunningService>,
    /// The TCP address the API listens on.
    pub tcp: SocketAddr,
    pub token: String,
    /// TCP, with the bearer token.
    pub http: reqwest::Client,
    /// TCP, without a token.
    pub anonymous: reqwest::Client,
    /// The Unix socket (no token).
    pub unix: reqwest::Client,
    pub socket: PathBuf,
    pub doc: Value,
}

pub struct Options {
    /// Log the simulator's users in before the service starts.
    pub accounts: bool,
    /// Mentions per account on the simulator at start.
    pub backlog: usize,
    /// `redirect_uri` is the API's own callback route (else the loopback listener's, port 0).
    pub redirect_to_api: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            accounts: true,
            backlog: 3,
            redirect_to_api: false,
        }
    }
}

/// A free loopback port (bound and released: the service binds it right after).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl ApiWorld {
    pub async fn start(seed: u64) -> ApiWorld {
        ApiWorld::start_with(seed, Options::default()).await
    }

    pub async fn start_with(seed: u64, options: Options) -> ApiWorld {
        let port = free_port();
        let mut sim_config = SimConfig::for_tests(seed);
        sim_config.backlog_per_user = options.backlog;
        sim_config
            .redirect_uris
            .push(format!("http://127.0.0.1:{port}{API_CALLBACK}"));
        let sim = sim::start(sim_config, 0).await.expect("simulator starts");
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = config(&dir, &sim);
        config.api_listen = Some(SocketAddr::from(([127, 0, 0, 1], port)));
        config.redirect_uri = if options.redirect_to_api {
            format!("http://127.0.0.1:{port}{API_CALLBACK}")
        } else {
            "http://127.0.0.1:0/callback".to_string()
        };
        let store = if options.accounts {
            let app = match App::open(&config).await {
                Ok(app) => app,
                Err(f) => panic!("cannot open perch: {}", f.message),
            };
            let users: Vec<String> = sim
                .control()
                .users()
                .into_iter()
                .map(|u| u.username)
                .collect();
            if let Err(f) = perch::cli::add_sim_accounts(&app, &users).await {
                panic!("cannot add the accounts: {}", f.message);
            }
            Some(app.store)
        } else {
            None
        };
        let service = match perch::service::start(config, store).await {
            Ok(s) => s,
            Err(e) => panic!("the service does not start: {e}"),
        };
        let tcp = service.hub.info.api_listen.expect("listening on TCP");
        let token = service.hub.api_token.expose().to_string();
        let socket = service.paths.socket.clone();
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::AUTHORIZATION,
            format!("Bearer {token}").parse().unwrap(),
        );
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .timeout(Duration::from_secs(180))
            .build()
            .unwrap();
        let anonymous = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let unix = reqwest::Client::builder()
            .unix_socket(socket.clone())
            .timeout(Duration::from_secs(180))
            .build()
            .unwrap();
        let doc: Value = serde_json::to_value(perch::api::rest::openapi()).unwrap();
        ApiWorld {
            sim,
            dir,
            service: Some(service),
            tcp,
            token,
            http,
            anonymous,
            unix,
            socket,
            doc,
        }
    }

    /// `http://127.0.0.1:PORT` + path.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.tcp)
    }

    /// The Unix socket's URL for `path` (the host is ignored).
    pub fn unix_url(&self, path: &str) -> String {
        format!("http://perch{path}")
    }

    pub fn hub(&self) -> &perch::service::Hub {
        &self.service.as_ref().expect("running").hub
    }

    /// Starts a login over the API (`GET /api/v1/auth/login`) and approves it at the
    /// simulator's authorize page as `user`, as a browser would, without following the
    /// redirect: returns that browser and where X sends it back (the callback address).
    pub async fn approve_login(&self, user: &str) -> (reqwest::Client, String) {
        let (status, login) = self
            .checked(
                reqwest::Method::GET,
                "/api/v1/auth/login",
                "/api/v1/auth/login",
                None,
            )
            .await;
        assert_eq!(status, 200, "{login}");
        let url = login["authorization_url"]
            .as_str()
            .expect("an authorization_url");
        let browser = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("a browser client");
        let redirect = browser
            .get(format!("{url}&sim_user={user}"))
            .send()
            .await
            .expect("the authorize page answers");
        let location = redirect.headers()["location"]
            .to_str()
            .expect("a redirect")
            .to_string();
        (browser, location)
    }

    /// Sends a request and returns (status, JSON body).
    pub async fn call(&self, request: reqwest::RequestBuilder) -> (u16, Value) {
        let response = request.send().await.expect("the API answers");
        let status = response.status().as_u16();
        let text = response.text().await.expect("a body");
        let body = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {status} {text:?}"));
        (status, body)
    }

    /// Sends a request over TCP with the token, checks the body against the OpenAPI document's
    /// schema for (`template`, `method`, status), and returns (status, body).
    pub async fn checked(
        &self,
        method: reqwest::Method,
        template: &str,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self.http.request(method.clone(), self.url(path));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let (status, value) = self.call(request).await;
        self.validate(template, method.as_str(), status, &value);
        (status, value)
    }

    /// Checks `body` against the response schema the document gives for it.
    pub fn validate(&self, template: &str, method: &str, status: u16, body: &Value) {
        validate(&self.doc, template, method, status, body)
    }

    /// All of an account's stored mentions' ids (post ids) via the API, newest first.
    pub async fn account_id(&self, username: &str) -> String {
        let (_, list) = self
            .call(
                self.http
                    .get(self.url("/api/v1/accounts/?include_inactive=true")),
            )
            .await;
        list["accounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["twitter_username"] == username)
            .unwrap_or_else(|| panic!("no account {username}: {list}"))["id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Fetches now through the API and asserts every account's poll went through.
    pub async fn fetch_all(&self) -> Value {
        let (status, report) = self
            .checked(
                reqwest::Method::POST,
                "/api/v1/mentions/fetch-new",
                "/api/v1/mentions/fetch-new",
                None,
            )
            .await;
        assert_eq!(status, 200, "{report}");
        assert_eq!(report["ok"], true, "{report}");
        report
    }

    pub async fn stop(mut self) {
        if let Some(service) = self.service.take() {
            service.shutdown().await;
        }
        self.sim.shutdown().await;
    }
}

/// perch's config pointing at `sim`, with every file in `dir`.
pub fn config(dir: &tempfile::TempDir, sim: &SimHandle) -> Config {
    let home = dir.path();
    let mut env = BTreeMap::new();
    let mut set = |k: &str, v: String| {
        env.insert(k.to_string(), v);
    };
    set(
        "PERCH_CONFIG",
        home.join("no-config.toml").display().to_string(),
    );
    set("PERCH_DATA_DIR", home.join("store").display().to_string());
    set("PERCH_API_BASE", sim.api_base());
    set("PERCH_AUTHORIZE_URL", sim.authorize_url());
    set("PERCH_TOKEN_URL", sim.token_url());
    set("PERCH_CLIENT_ID", sim::DEMO_CLIENT_ID.to_string());
    set("PERCH_REDIRECT_URI", sim::DEMO_REDIRECT_URI.to_string());
    let mut config = Config::load_from(&env).expect("test config");
    config.state_dir = home.join("state");
    config
}

/// Checks `body` against the schema of the response (`template`, `method`, `status`) in the
/// OpenAPI document `doc`, with every `$ref` resolved inside the document.
pub fn validate(doc: &Value, template: &str, method: &str, status: u16, body: &Value) {
    let operation = &doc["paths"][template][method.to_lowercase()];
    assert!(
        operation.is_object(),
        "the document has no {method} {template}"
    );
    let response = &operation["responses"][status.to_string()];
    assert!(
        response.is_object(),
        "the document does not list status {status} for {method} {template}; the body was {body}"
    );
    let schema = &response["content"]["application/json"]["schema"];
    assert!(
        schema.is_object(),
        "no JSON schema for {status} of {method} {template}"
    );
    let root = serde_json::json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "components": doc["components"],
        "allOf": [schema],
    });
    let validator = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .build(&root)
        .unwrap_or_else(|e| panic!("the document's schema does not compile: {e}"));
    let errors: Vec<String> = validator
        .iter_errors(body)
        .map(|e| format!("{e} at {}", e.instance_path))
        .collect();
    assert!(
        errors.is_empty(),
        "{method} {template} {status}: the body does not match the document: {errors:#?}\n{body:#}"
    );
}
