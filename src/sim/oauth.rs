//! OAuth 2.0 Authorization Code + PKCE as X runs it (CONTRACT.md §1): the authorize page (approves
//! at once), the token endpoint (code exchange with PKCE, refresh with rotation) and revocation.
//! Error bodies are RFC 6749 style with X's exact descriptions (§1.6), not Problems.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use rand::Rng;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::http::LogNote;
use super::state::{Shared, World};

/// Authorization codes live 30 s and work once (CONTRACT.md §1.1).
pub(crate) const CODE_LIFETIME_SECS: i64 = 30;
/// The scopes X knows for the endpoints in scope (§1.8), plus the ones a client may ask besides.
const KNOWN_SCOPES: &[&str] = &[
    "tweet.read",
    "tweet.write",
    "tweet.moderate.write",
    "users.read",
    "users.email",
    "follows.read",
    "follows.write",
    "offline.access",
    "space.read",
    "mute.read",
    "mute.write",
    "like.read",
    "like.write",
    "list.read",
    "list.write",
    "block.read",
    "block.write",
    "bookmark.read",
    "bookmark.write",
    "dm.read",
    "dm.write",
    "media.write",
];

const INVALID_CODE: &str = "Value passed for the authorization code was invalid.";
const INVALID_TOKEN: &str = "Value passed for the token was invalid.";

pub(crate) struct CodeGrant {
    user_id: u64,
    redirect_uri: String,
    challenge: String,
    method: String,
    scope: String,
    issued_at: DateTime<Utc>,
    used: bool,
}

pub(crate) struct AccessGrant {
    pub user_id: u64,
    pub scope: String,
    pub expires_at: DateTime<Utc>,
    grant: u64,
    revoked: bool,
}

struct RefreshGrant {
    user_id: u64,
    scope: String,
    grant: u64,
    spent: bool,
}

#[derive(Default)]
pub(crate) struct OAuthState {
    codes: HashMap<String, CodeGrant>,
    access: HashMap<String, AccessGrant>,
    refresh: HashMap<String, RefreshGrant>,
    next_grant: u64,
}

impl OAuthState {
    /// The live grant behind a bearer token, or `None` when it is unknown, revoked or expired.
    pub fn check_access(&self, token: &str, now: DateTime<Utc>) -> Option<&AccessGrant> {
        self.access
            .get(token)
            .filter(|g| !g.revoked && now < g.expires_at)
    }

    /// Revokes every grant of a user: access and refresh tokens alike stop working.
    pub fn revoke_user(&mut self, user_id: u64) {
        for g in self.access.values_mut().filter(|g| g.user_id == user_id) {
            g.revoked = true;
        }
        for g in self.refresh.values_mut().filter(|g| g.user_id == user_id) {
            g.spent = true;
        }
    }

    /// Makes a user's access tokens expire now; their refresh tokens keep working.
    pub fn expire_user(&mut self, user_id: u64, now: DateTime<Utc>) {
        for g in self.access.values_mut().filter(|g| g.user_id == user_id) {
            g.expires_at = g.expires_at.min(now);
        }
    }

    fn revoke_grant(&mut self, grant: u64) {
        for g in self.access.values_mut().filter(|g| g.grant == grant) {
            g.revoked = true;
        }
        for g in self.refresh.values_mut().filter(|g| g.grant == grant) {
            g.spent = true;
        }
    }
}

/// A token in X's documented shape: unpadded base64url of
/// `<45 chars [A-Za-z0-9_-]>:<epoch ms>:1:<0|1>:<at|rt|ac>:1` (CONTRACT.md §1.3).
fn mint(world: &mut World, kind: &str, at: DateTime<Utc>, confidential: bool) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
    let random: String = (0..45)
        .map(|_| ALPHABET[world.rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    let raw = format!(
        "{random}:{}:1:{}:{kind}:1",
        at.timestamp_millis(),
        u8::from(confidential)
    );
    URL_SAFE_NO_PAD.encode(raw)
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json;charset=UTF-8")],
        json!({"error": error, "error_description": description}).to_string(),
    )
        .into_response()
}

/// Whether `candidate` is an acceptable redirect URI: exactly a registered one, or, when the
/// config allows it, a registered loopback URI with another port.
fn redirect_allowed(shared: &Shared, candidate: &str) -> bool {
    let config = &shared.config;
    if config.redirect_uris.iter().any(|r| r == candidate) {
        return true;
    }
    if !config.allow_any_loopback_port {
        return false;
    }
    let Ok(cand) = url::Url::parse(candidate) else {
        return false;
    };
    let loopback = matches!(
        cand.host_str(),
        Some("127.0.0.1") | Some("localhost") | Some("[::1]")
    );
    loopback
        && cand.scheme() == "http"
        && config.redirect_uris.iter().any(|r| {
            url::Url::parse(r).is_ok_and(|reg| {
                reg.scheme() == cand.scheme()
                    && reg.host_str() == cand.host_str()
                    && reg.path() == cand.path()
                    && reg.query() == cand.query()
            })
        })
}

/// A page for the cases X cannot redirect (bad client or redirect URI): it shows an error itself.
fn authorize_page_error(what: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        format!(
            "<!doctype html><title>X</title><p>Something went wrong. You weren't able to give \
             access to the App. ({})</p>",
            html_escape::encode_text(what)
        ),
    )
        .into_response()
}

fn redirect_to(redirect_uri: &str, params: &[(&str, &str)]) -> Response {
    let mut url = match url::Url::parse(redirect_uri) {
        Ok(u) => u,
        Err(_) => return authorize_page_error("the redirect_uri is not a URL"),
    };
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in params {
            q.append_pair(k, v);
        }
    }
    (
        StatusCode::FOUND,
        [(header::LOCATION, url.to_string())],
        String::new(),
    )
        .into_response()
}

/// `GET /i/oauth2/authorize`. Approves at once and redirects with `state` and `code`.
/// Simulator-only parameters: `sim_user=<username>` picks who approves (default: the first
/// configured user); `sim_deny=1` makes the user refuse (`error=access_denied`).
pub(crate) async fn authorize(
    State(shared): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let get = |k: &str| q.get(k).map(String::as_str).unwrap_or("");
    if get("client_id") != shared.config.client_id {
        return authorize_page_error("unknown client_id");
    }
    let redirect_uri = get("redirect_uri");
    if redirect_uri.is_empty() || !redirect_allowed(&shared, redirect_uri) {
        return authorize_page_error("redirect_uri does not match a registered callback URL");
    }
    let state = get("state");
    let deny = |error: &str, description: &str| {
        let mut params = vec![("error", error), ("error_description", description)];
        if !state.is_empty() {
            params.push(("state", state));
        }
        redirect_to(redirect_uri, &params)
    };
    if get("response_type") != "code" {
        return deny(
            "unsupported_response_type",
            "response_type must be \"code\"",
        );
    }
    if state.is_empty() || state.len() > 500 {
        return deny("invalid_request", "state is required (at most 500 chars)");
    }
    let challenge = get("code_challenge");
    let method = match get("code_challenge_method") {
        "" | "plain" => "plain",
        "S256" => "S256",
        _ => {
            return deny(
                "invalid_request",
                "code_challenge_method must be S256 or plain",
            );
        }
    };
    if challenge.is_empty() {
        return deny("invalid_request", "code_challenge is required");
    }
    let scope = get("scope");
    let scopes: Vec<&str> = scope.split_whitespace().collect();
    if scopes.is_empty() || scopes.iter().any(|s| !KNOWN_SCOPES.contains(s)) {
        return deny(
            "invalid_scope",
            "scope is missing or names an unknown scope",
        );
    }
    if get("sim_deny") == "1" {
        return deny("access_denied", "The user denied the request");
    }
    let now = shared.clock.now();
    let code = {
        let mut world = shared.world();
        // Which simulated account "is logged in to x.com" in the browser: `sim_user`, or the
        // standard `login_hint` a client may send when it reauthorizes a known account.
        let user_id = match q.get("sim_user").or_else(|| q.get("login_hint")) {
            Some(name) => match world.find_user(name) {
                Some(id) if world.sim_user_ids.contains(&id) => id,
                _ => return authorize_page_error("sim_user names no simulated account"),
            },
            None => match world.sim_user_ids.first() {
                Some(id) => *id,
                None => return authorize_page_error("the simulator has no accounts"),
            },
        };
        let code = mint(&mut world, "ac", now, shared.config.client_secret.is_some());
        world.oauth.codes.retain(|_, c| {
            !c.used && now - c.issued_at < chrono::Duration::seconds(CODE_LIFETIME_SECS * 4)
        });
        world.oauth.codes.insert(
            code.clone(),
            CodeGrant {
                user_id,
                redirect_uri: redirect_uri.to_string(),
                challenge: challenge.to_string(),
                method: method.to_string(),
                scope: scopes.join(" "),
                issued_at: now,
                used: false,
            },
        );
        code
    };
    redirect_to(redirect_uri, &[("state", state), ("code", &code)])
}

/// Checks the client's authentication: HTTP Basic for a confidential client (X answers 401
/// `unauthorized_client` without it), `client_id` in the body for a public one.
// The refusal is the ready-made response, returned as is: boxing it would buy nothing.
#[allow(clippy::result_large_err)]
fn authenticate_client(
    shared: &Shared,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<(), Response> {
    let config = &shared.config;
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| STANDARD.decode(b.trim()).ok())
        .and_then(|b| String::from_utf8(b).ok());
    match &config.client_secret {
        Some(secret) => {
            let expected = format!("{}:{}", config.client_id, secret);
            if basic.as_deref() == Some(expected.as_str()) {
                Ok(())
            } else {
                Err(oauth_error(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized_client",
                    "Missing valid authorization header",
                ))
            }
        }
        None => {
            let body_id = form.get("client_id").map(String::as_str);
            let basic_id = basic.as_deref().and_then(|b| b.split(':').next());
            if body_id == Some(config.client_id.as_str())
                || basic_id == Some(config.client_id.as_str())
            {
                Ok(())
            } else {
                Err(oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "Missing required parameter [client_id].",
                ))
            }
        }
    }
}

fn pkce_matches(method: &str, challenge: &str, verifier: &str) -> bool {
    match method {
        "S256" => URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) == challenge,
        _ => verifier == challenge,
    }
}

/// `POST /2/oauth2/token`: `authorization_code` (with PKCE) and `refresh_token` (rotating).
pub(crate) async fn token(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let grant_type = form.get("grant_type").cloned().unwrap_or_default();
    let mut response = token_inner(&shared, &headers, &form, &grant_type);
    let note = LogNote {
        user_id: response.extensions().get::<u64>().copied(),
        note: Some(format!("grant_type={grant_type}")),
    };
    response.extensions_mut().insert(note);
    response
}

fn token_inner(
    shared: &Shared,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
    grant_type: &str,
) -> Response {
    if let Err(refusal) = authenticate_client(shared, headers, form) {
        return refusal;
    }
    let now = shared.clock.now();
    let get = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
    let mut world = shared.world();
    let (user_id, scope, grant) = match grant_type {
        "authorization_code" => {
            let Some(code) = world.oauth.codes.get_mut(get("code")) else {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", INVALID_CODE);
            };
            // A code is spent by its first exchange attempt, right or wrong.
            let fresh =
                !code.used && now - code.issued_at <= chrono::Duration::seconds(CODE_LIFETIME_SECS);
            code.used = true;
            if !fresh
                || code.redirect_uri != get("redirect_uri")
                || !pkce_matches(&code.method, &code.challenge, get("code_verifier"))
            {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", INVALID_CODE);
            }
            let (user_id, scope) = (code.user_id, code.scope.clone());
            world.oauth.next_grant += 1;
            (user_id, scope, world.oauth.next_grant)
        }
        "refresh_token" => {
            let Some(old) = world.oauth.refresh.get_mut(get("refresh_token")) else {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", INVALID_TOKEN);
            };
            if old.spent {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", INVALID_TOKEN);
            }
            old.spent = true;
            (old.user_id, old.scope.clone(), old.grant)
        }
        "" => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "Missing required parameter [grant_type].",
            );
        }
        _ => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "Value passed for the grant type was invalid.",
            );
        }
    };
    let confidential = shared.config.client_secret.is_some();
    let lifetime = shared.config.access_token_lifetime;
    let access_token = mint(&mut world, "at", now, confidential);
    let expires_at =
        now + chrono::Duration::from_std(lifetime).unwrap_or(chrono::Duration::hours(2));
    world.oauth.access.insert(
        access_token.clone(),
        AccessGrant {
            user_id,
            scope: scope.clone(),
            expires_at,
            grant,
            revoked: false,
        },
    );
    let mut body = json!({
        "token_type": "bearer",
        "expires_in": lifetime.as_secs(),
        "access_token": access_token,
        "scope": scope,
    });
    if scope.split_whitespace().any(|s| s == "offline.access") {
        let refresh_token = mint(&mut world, "rt", now, confidential);
        world.oauth.refresh.insert(
            refresh_token.clone(),
            RefreshGrant {
                user_id,
                scope: scope.clone(),
                grant,
                spent: false,
            },
        );
        body["refresh_token"] = json!(refresh_token);
    }
    drop(world);
    let mut response = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json;charset=UTF-8")],
        body.to_string(),
    )
        .into_response();
    response.extensions_mut().insert(user_id);
    response
}

/// `POST /2/oauth2/revoke`: `token` (access or refresh). Revoking a refresh token ends its whole
/// grant (RFC 7009 §2.1). Answers `{"revoked":true}` whether or not the token was known.
pub(crate) async fn revoke(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if let Err(refusal) = authenticate_client(&shared, &headers, &form) {
        return refusal;
    }
    let token = form.get("token").map(String::as_str).unwrap_or("");
    let mut world = shared.world();
    let refresh_grant = world.oauth.refresh.get(token).map(|g| g.grant);
    if let Some(grant) = refresh_grant {
        world.oauth.revoke_grant(grant);
    } else if let Some(g) = world.oauth.access.get_mut(token) {
        g.revoked = true;
    }
    drop(world);
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json;charset=UTF-8")],
        json!({"revoked": true}).to_string(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7636 appendix B's example pair.
    #[test]
    fn s256_pkce_matches_the_rfc_example() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(pkce_matches("S256", challenge, verifier));
        assert!(!pkce_matches("S256", challenge, "something-else"));
        assert!(pkce_matches("plain", "abc", "abc"));
    }

    #[test]
    fn minted_tokens_have_xs_documented_shape() {
        let mut world = World::new(&super::super::SimConfig::for_tests(3));
        let token = mint(&mut world, "at", Utc::now(), false);
        let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(&token).unwrap()).unwrap();
        let parts: Vec<&str> = raw.split(':').collect();
        assert_eq!(parts.len(), 6, "{raw}");
        assert_eq!(parts[0].len(), 45);
        assert_eq!(&parts[2..], ["1", "0", "at", "1"]);
    }
}
