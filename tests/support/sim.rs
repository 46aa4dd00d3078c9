//! Helpers for the simulator's tests (included by the `sim_*` test files with `#[path]`): a plain
//! HTTP client that speaks to the simulator the way an X client would, with no perch client code
//! in between, so these tests check the simulator and nothing else.
#![allow(dead_code)]

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use perch::sim::{self, SimConfig, SimHandle};
use reqwest::header::HeaderMap;
use serde_json::Value;
use sha2::{Digest, Sha256};

pub const REDIRECT_URI: &str = "http://127.0.0.1:8765/callback";
pub const SCOPES: &str = "tweet.read users.read tweet.write dm.read dm.write offline.access";

pub async fn start(config: SimConfig) -> SimHandle {
    sim::start(config, 0).await.expect("simulator starts")
}

/// A client that does not follow redirects (the authorize redirect is what we inspect) and
/// waits generously: a busy machine must not fail these tests.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client builds")
}

/// A PKCE pair (verifier, S256 challenge).
pub fn pkce(seed: &str) -> (String, String) {
    let verifier = format!("verifier-{seed}-0123456789abcdefghijklmnopqrstuvwxyz");
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

/// The authorize URL as perch would build it, with extra (simulator-only) parameters.
pub fn authorize_url(
    sim: &SimHandle,
    challenge: &str,
    state: &str,
    extra: &[(&str, &str)],
) -> String {
    let mut url = url::Url::parse(&sim.authorize_url()).unwrap();
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("response_type", "code")
            .append_pair("client_id", sim::DEMO_CLIENT_ID)
            .append_pair("redirect_uri", REDIRECT_URI)
            .append_pair("scope", SCOPES)
            .append_pair("state", state)
            .append_pair("code_challenge", challenge)
            .append_pair("code_challenge_method", "S256");
        for (k, v) in extra {
            q.append_pair(k, v);
        }
    }
    url.to_string()
}

/// Follows the authorize step and returns the callback's query parameters.
pub async fn authorize(http: &reqwest::Client, url: &str) -> HashMap<String, String> {
    let response = http.get(url).send().await.expect("authorize answers");
    assert_eq!(response.status(), 302, "authorize should redirect");
    let location = response.headers()["location"].to_str().unwrap().to_string();
    assert!(location.starts_with(REDIRECT_URI), "{location}");
    url::Url::parse(&location)
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

pub async fn token_request(
    http: &reqwest::Client,
    sim: &SimHandle,
    form: &[(&str, &str)],
) -> (u16, Value) {
    let response = http
        .post(sim.token_url())
        .form(form)
        .send()
        .await
        .expect("token endpoint answers");
    let status = response.status().as_u16();
    (
        status,
        response.json().await.expect("token endpoint sends JSON"),
    )
}

#[derive(Clone, Debug)]
pub struct Tokens {
    pub access: String,
    pub refresh: String,
}

/// The whole login as a public client, approved by `user`.
pub async fn login(http: &reqwest::Client, sim: &SimHandle, user: &str) -> Tokens {
    let (verifier, challenge) = pkce(user);
    let params = authorize(
        http,
        &authorize_url(sim, &challenge, "st", &[("sim_user", user)]),
    )
    .await;
    let (status, body) = token_request(
        http,
        sim,
        &[
            ("grant_type", "authorization_code"),
            ("code", &params["code"]),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", &verifier),
            ("client_id", sim::DEMO_CLIENT_ID),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    Tokens {
        access: body["access_token"].as_str().unwrap().to_string(),
        refresh: body["refresh_token"].as_str().unwrap().to_string(),
    }
}

pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Answer {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("header {name} missing: {:?}", self.headers))
    }
}

async fn answer(response: reqwest::Response) -> Answer {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.expect("body arrives");
    let body = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    Answer {
        status,
        headers,
        body,
    }
}

pub async fn get(
    http: &reqwest::Client,
    sim: &SimHandle,
    path_and_query: &str,
    token: &str,
) -> Answer {
    let response = http
        .get(format!("{}{}", sim.api_base(), path_and_query))
        .bearer_auth(token)
        .send()
        .await
        .expect("simulator answers");
    answer(response).await
}

pub async fn post(
    http: &reqwest::Client,
    sim: &SimHandle,
    path: &str,
    token: &str,
    body: &Value,
) -> Answer {
    let response = http
        .post(format!("{}{}", sim.api_base(), path))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .expect("simulator answers");
    answer(response).await
}

/// The X user id of a configured account.
pub fn user_id(sim: &SimHandle, username: &str) -> String {
    sim.control().user(username).expect("configured user").id
}

/// Ids of a mentions page's `data`, in order.
pub fn ids(body: &Value) -> Vec<u64> {
    body["data"]
        .as_array()
        .map(|data| {
            data.iter()
                .map(|t| t["id"].as_str().unwrap().parse().unwrap())
                .collect()
        })
        .unwrap_or_default()
}
