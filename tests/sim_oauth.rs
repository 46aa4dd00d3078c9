//! The simulator's OAuth 2.0 endpoints behave as CONTRACT.md §1 says X's do, over real loopback HTTP.

#[path = "support/sim.rs"]
mod support;

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use perch::sim::{self, SimConfig};
use serde_json::json;
use support::*;

const INVALID_CODE: &str = "Value passed for the authorization code was invalid.";

fn code_form<'a>(code: &'a str, verifier: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT_URI),
        ("code_verifier", verifier),
        ("client_id", sim::DEMO_CLIENT_ID),
    ]
}

#[tokio::test]
async fn authorize_redirects_with_state_and_code() {
    let sim = start(SimConfig::for_tests(1)).await;
    let http = http();
    let (_, challenge) = pkce("a");
    let params = authorize(&http, &authorize_url(&sim, &challenge, "xyz-state", &[])).await;
    assert_eq!(params["state"], "xyz-state");
    // The code has X's documented token shape, kind `ac`.
    let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(&params["code"]).unwrap()).unwrap();
    assert!(raw.ends_with(":ac:1"), "{raw}");
    sim.shutdown().await;
}

#[tokio::test]
async fn authorize_refuses_unregistered_redirects_and_reports_denial() {
    let sim = start(SimConfig::for_tests(1)).await;
    let http = http();
    let (_, challenge) = pkce("a");
    let bad = authorize_url(&sim, &challenge, "s", &[]).replace("callback", "elsewhere");
    let response = http.get(&bad).send().await.unwrap();
    assert_eq!(response.status(), 400, "no redirect to an unregistered URI");

    // Another loopback port is fine (the demo config allows it), as perch binds free ports.
    let other_port = authorize_url(&sim, &challenge, "s", &[]).replace("8765", "49152");
    let response = http.get(&other_port).send().await.unwrap();
    assert_eq!(response.status(), 302);

    let denied = authorize(
        &http,
        &authorize_url(&sim, &challenge, "s2", &[("sim_deny", "1")]),
    )
    .await;
    assert_eq!(denied["error"], "access_denied");
    assert_eq!(denied["state"], "s2");
    assert!(!denied.contains_key("code"));
    sim.shutdown().await;
}

#[tokio::test]
async fn code_exchange_checks_the_pkce_verifier() {
    let sim = start(SimConfig::for_tests(2)).await;
    let http = http();
    let (verifier, challenge) = pkce("b");

    let params = authorize(&http, &authorize_url(&sim, &challenge, "s", &[])).await;
    let (status, body) =
        token_request(&http, &sim, &code_form(&params["code"], "wrong-verifier")).await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({"error": "invalid_request", "error_description": INVALID_CODE})
    );

    let params = authorize(&http, &authorize_url(&sim, &challenge, "s", &[])).await;
    let (status, body) = token_request(&http, &sim, &code_form(&params["code"], &verifier)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 7200);
    assert_eq!(body["scope"], SCOPES);
    let access = body["access_token"].as_str().unwrap();
    let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(access).unwrap()).unwrap();
    assert!(raw.ends_with(":at:1"), "{raw}");
    assert!(
        body["refresh_token"].is_string(),
        "offline.access gives a refresh token"
    );

    // The token belongs to the default approver, the first configured account.
    let me = get(&http, &sim, "/2/users/me", access).await;
    assert_eq!(me.status, 200);
    assert_eq!(me.body["data"]["username"], "nimbusnotes");
    sim.shutdown().await;
}

#[tokio::test]
async fn sim_user_chooses_who_approves() {
    let sim = start(SimConfig::for_tests(2)).await;
    let http = http();
    let tokens = login(&http, &sim, "nimbus_help").await;
    let me = get(&http, &sim, "/2/users/me", &tokens.access).await;
    assert_eq!(me.body["data"]["username"], "nimbus_help");
    assert_eq!(me.body["data"]["id"], user_id(&sim, "nimbus_help"));
    sim.shutdown().await;
}

#[tokio::test]
async fn codes_work_once_and_expire_after_30_seconds() {
    let sim = start(SimConfig::for_tests(3)).await;
    let http = http();
    let (verifier, challenge) = pkce("c");

    let params = authorize(&http, &authorize_url(&sim, &challenge, "s", &[])).await;
    let form = code_form(&params["code"], &verifier);
    assert_eq!(token_request(&http, &sim, &form).await.0, 200);
    let (status, body) = token_request(&http, &sim, &form).await;
    assert_eq!(
        (status, body["error_description"].as_str()),
        (400, Some(INVALID_CODE))
    );

    let params = authorize(&http, &authorize_url(&sim, &challenge, "s", &[])).await;
    sim.control().advance_clock(Duration::from_secs(31));
    let (status, body) = token_request(&http, &sim, &code_form(&params["code"], &verifier)).await;
    assert_eq!(
        (status, body["error_description"].as_str()),
        (400, Some(INVALID_CODE))
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn refresh_rotates_and_a_spent_token_gets_xs_body() {
    let sim = start(SimConfig::for_tests(4)).await;
    let http = http();
    let first = login(&http, &sim, "nimbusnotes").await;
    let refresh = |token: String| {
        let http = http.clone();
        let sim = &sim;
        async move {
            token_request(
                &http,
                sim,
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", &token),
                    ("client_id", sim::DEMO_CLIENT_ID),
                ],
            )
            .await
        }
    };
    let (status, second) = refresh(first.refresh.clone()).await;
    assert_eq!(status, 200, "{second}");
    assert_ne!(
        second["refresh_token"].as_str(),
        Some(first.refresh.as_str())
    );
    assert_ne!(second["access_token"].as_str(), Some(first.access.as_str()));

    let (status, body) = refresh(first.refresh.clone()).await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({"error": "invalid_request", "error_description": "Value passed for the token was invalid."})
    );
    // The rotated one works, once.
    let (status, _) = refresh(second["refresh_token"].as_str().unwrap().to_string()).await;
    assert_eq!(status, 200);

    // The request log says which grant each token request used and for whom.
    let log = sim.control().request_log();
    let refreshes: Vec<_> = log
        .iter()
        .filter(|r| r.note.as_deref() == Some("grant_type=refresh_token"))
        .collect();
    assert_eq!(refreshes.len(), 3);
    assert_eq!(refreshes[0].username.as_deref(), Some("nimbusnotes"));
    sim.shutdown().await;
}

#[tokio::test]
async fn confidential_client_must_use_basic_auth() {
    let config = SimConfig {
        client_secret: Some("sim-secret".into()),
        ..SimConfig::for_tests(5)
    };
    let sim = start(config).await;
    let http = http();
    let (verifier, challenge) = pkce("d");
    let params = authorize(&http, &authorize_url(&sim, &challenge, "s", &[])).await;
    let form = code_form(&params["code"], &verifier);
    let (status, body) = token_request(&http, &sim, &form).await;
    assert_eq!(status, 401);
    assert_eq!(
        body,
        json!({"error": "unauthorized_client", "error_description": "Missing valid authorization header"})
    );

    let params = authorize(&http, &authorize_url(&sim, &challenge, "s", &[])).await;
    let basic = STANDARD.encode(format!("{}:sim-secret", sim::DEMO_CLIENT_ID));
    let response = http
        .post(sim.token_url())
        .header("authorization", format!("Basic {basic}"))
        .form(&code_form(&params["code"], &verifier))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    sim.shutdown().await;
}

#[tokio::test]
async fn access_tokens_expire_and_unknown_tokens_get_the_401_problem() {
    let sim = start(SimConfig::for_tests(6)).await;
    let http = http();
    let tokens = login(&http, &sim, "nimbusnotes").await;
    assert_eq!(
        get(&http, &sim, "/2/users/me", &tokens.access).await.status,
        200
    );

    let unknown = get(&http, &sim, "/2/users/me", "not-a-token").await;
    assert_eq!(unknown.status, 401);
    assert_eq!(
        unknown.body,
        json!({"title": "Unauthorized", "type": "about:blank", "status": 401, "detail": "Unauthorized"})
    );

    sim.control().advance_clock(Duration::from_secs(7201));
    let expired = get(&http, &sim, "/2/users/me", &tokens.access).await;
    assert_eq!(expired.status, 401);
    assert_eq!(
        expired.body, unknown.body,
        "X answers expired and unknown tokens alike"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn control_can_expire_tokens_and_revoke_a_grant() {
    let sim = start(SimConfig::for_tests(7)).await;
    let http = http();
    let tokens = login(&http, &sim, "mara_quill").await;
    let control = sim.control();

    control.expire_access_tokens("@mara_quill").unwrap();
    assert_eq!(
        get(&http, &sim, "/2/users/me", &tokens.access).await.status,
        401
    );
    let refresh_form = |t: &str| {
        vec![
            ("grant_type".to_string(), "refresh_token".to_string()),
            ("refresh_token".to_string(), t.to_string()),
            ("client_id".to_string(), sim::DEMO_CLIENT_ID.to_string()),
        ]
    };
    let response = http
        .post(sim.token_url())
        .form(&refresh_form(&tokens.refresh))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        200,
        "expiry leaves the refresh token working"
    );
    let renewed: serde_json::Value = response.json().await.unwrap();
    let access = renewed["access_token"].as_str().unwrap();
    assert_eq!(get(&http, &sim, "/2/users/me", access).await.status, 200);

    control.revoke_grant("mara_quill").unwrap();
    assert_eq!(get(&http, &sim, "/2/users/me", access).await.status, 401);
    let response = http
        .post(sim.token_url())
        .form(&refresh_form(renewed["refresh_token"].as_str().unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        400,
        "a revoked grant cannot be refreshed"
    );

    assert!(control.revoke_grant("nobody").is_err());
    sim.shutdown().await;
}

#[tokio::test]
async fn revoke_endpoint_ends_the_grant() {
    let sim = start(SimConfig::for_tests(8)).await;
    let http = http();
    let tokens = login(&http, &sim, "nimbusnotes").await;
    let response = http
        .post(sim.revoke_url())
        .form(&[
            ("token", tokens.refresh.as_str()),
            ("client_id", sim::DEMO_CLIENT_ID),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<serde_json::Value>().await.unwrap(),
        json!({"revoked": true})
    );
    assert_eq!(
        get(&http, &sim, "/2/users/me", &tokens.access).await.status,
        401
    );
    sim.shutdown().await;
}
