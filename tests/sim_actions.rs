//! Replies, DMs, rate limits, headers, the control routes and fault injection on the simulator,
//! over loopback HTTP (CONTRACT.md §4-7).

#[path = "support/sim.rs"]
mod support;

use std::time::Duration;

use perch::sim::{EndpointLimit, Faults, RateLimitProfile, SimConfig};
use serde_json::json;
use support::*;

/// The newest mention of `username`, as (id, author username).
async fn newest_mention(
    http: &reqwest::Client,
    sim: &perch::sim::SimHandle,
    username: &str,
    token: &str,
) -> String {
    let id = user_id(sim, username);
    let page = get(http, sim, &format!("/2/users/{id}/mentions"), token).await;
    page.body["data"][0]["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_reply_is_created_inspectable_and_mentions_who_it_names() {
    let sim = start(SimConfig::for_tests(20)).await;
    let http = http();
    let brand = login(&http, &sim, "nimbusnotes").await;
    let mention = sim
        .control()
        .inject_mention("nimbusnotes", Some("tomas_h"), "does export keep tables?")
        .unwrap();
    let text = "@tomas_h yes, and @nimbus_help can help with big files & <tables>";
    let created = post(
        &http,
        &sim,
        "/2/tweets",
        &brand.access,
        &json!({"text": text, "reply": {"in_reply_to_tweet_id": mention}}),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let new_id = created.body["data"]["id"].as_str().unwrap().to_string();
    assert_eq!(
        created.body["data"]["edit_history_tweet_ids"],
        json!([new_id])
    );
    assert_eq!(
        created.header("location"),
        format!("https://api.x.com/2/tweets/{new_id}")
    );

    let posts = sim.control().posts();
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].id, new_id);
    assert_eq!(posts[0].author_username, "nimbusnotes");
    assert_eq!(posts[0].author_id, user_id(&sim, "nimbusnotes"));
    assert_eq!(posts[0].text, text);
    assert_eq!(
        posts[0].in_reply_to_tweet_id.as_deref(),
        Some(mention.as_str())
    );

    // The reply mentions @nimbus_help, so it is now one of its mentions, threaded under the original.
    let support_tokens = login(&http, &sim, "nimbus_help").await;
    let help_id = user_id(&sim, "nimbus_help");
    let page = get(
        &http,
        &sim,
        &format!("/2/users/{help_id}/mentions?tweet.fields=conversation_id,in_reply_to_user_id,referenced_tweets,author_id"),
        &support_tokens.access,
    )
    .await;
    let top = &page.body["data"][0];
    assert_eq!(top["id"], new_id);
    assert_eq!(top["author_id"], user_id(&sim, "nimbusnotes"));
    assert_eq!(top["conversation_id"], mention);
    assert_eq!(
        top["referenced_tweets"],
        json!([{"type": "replied_to", "id": mention}])
    );
    assert_eq!(
        top["text"],
        "@tomas_h yes, and @nimbus_help can help with big files &amp; &lt;tables&gt;"
    );

    // The same text again is duplicate content.
    let again = post(
        &http,
        &sim,
        "/2/tweets",
        &brand.access,
        &json!({"text": text, "reply": {"in_reply_to_tweet_id": mention}}),
    )
    .await;
    assert_eq!(again.status, 403);
    assert_eq!(
        again.body,
        json!({"detail": "You are not allowed to create a Tweet with duplicate content.", "type": "about:blank", "title": "Forbidden", "status": 403})
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn replies_follow_xs_rules() {
    let sim = start(SimConfig::for_tests(21)).await;
    let http = http();
    let founder = login(&http, &sim, "mara_quill").await;
    // A post that mentions only the brand: the founder was not summoned.
    let other = sim
        .control()
        .inject_mention("nimbusnotes", Some("priya_ships"), "hello brand")
        .unwrap();
    let refused = post(
        &http,
        &sim,
        "/2/tweets",
        &founder.access,
        &json!({"text": "hi!", "reply": {"in_reply_to_tweet_id": other}}),
    )
    .await;
    assert_eq!(refused.status, 403);
    assert!(
        refused.body["detail"]
            .as_str()
            .unwrap()
            .starts_with("Reply to this conversation is not allowed")
    );

    let missing = post(
        &http,
        &sim,
        "/2/tweets",
        &founder.access,
        &json!({"text": "hi!", "reply": {"in_reply_to_tweet_id": "12345"}}),
    )
    .await;
    assert_eq!(missing.status, 403);
    assert_eq!(
        missing.body["detail"],
        "You attempted to reply to a Tweet that is deleted or not visible to you."
    );

    let extra_key = post(
        &http,
        &sim,
        "/2/tweets",
        &founder.access,
        &json!({"text": "hi", "colour": "red"}),
    )
    .await;
    assert_eq!(extra_key.status, 400);
    assert_eq!(
        extra_key.body["type"],
        "https://api.twitter.com/2/problems/invalid-request"
    );

    let too_long = post(
        &http,
        &sim,
        "/2/tweets",
        &founder.access,
        &json!({"text": "あ".repeat(141)}),
    )
    .await;
    assert_eq!(too_long.status, 400);
    assert!(
        too_long.body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .starts_with("Your Tweet text is too long.")
    );

    let exactly_280 = post(
        &http,
        &sim,
        "/2/tweets",
        &founder.access,
        &json!({"text": "a".repeat(280)}),
    )
    .await;
    assert_eq!(exactly_280.status, 201);
    sim.shutdown().await;
}

#[tokio::test]
async fn dms_are_sent_and_refused_when_the_recipient_does_not_accept_them() {
    let sim = start(SimConfig::for_tests(22)).await;
    let http = http();
    let brand = login(&http, &sim, "nimbusnotes").await;
    let brand_id: u64 = user_id(&sim, "nimbusnotes").parse().unwrap();
    let mention = newest_mention(&http, &sim, "nimbusnotes", &brand.access).await;
    let page = get(
        &http,
        &sim,
        &format!("/2/users/{brand_id}/mentions?tweet.fields=author_id"),
        &brand.access,
    )
    .await;
    assert_eq!(page.body["data"][0]["id"], mention);

    // The support account accepts DMs.
    let help_id: u64 = user_id(&sim, "nimbus_help").parse().unwrap();
    let sent = post(
        &http,
        &sim,
        &format!("/2/dm_conversations/with/{help_id}/messages"),
        &brand.access,
        &json!({"text": "can you take this one?"}),
    )
    .await;
    assert_eq!(sent.status, 201, "{}", sent.body);
    let event_id = sent.body["data"]["dm_event_id"].as_str().unwrap();
    assert_eq!(
        sent.body["data"]["dm_conversation_id"],
        format!("{}-{}", brand_id.min(help_id), brand_id.max(help_id))
    );
    assert_eq!(
        sent.header("location"),
        format!("https://api.x.com/2/dm_events/\"{event_id}\"")
    );
    let dms = sim.control().dms();
    assert_eq!(dms.len(), 1);
    assert_eq!(
        (
            dms[0].sender_username.as_str(),
            dms[0].recipient_username.as_str()
        ),
        ("nimbusnotes", "nimbus_help")
    );
    assert_eq!(dms[0].text, "can you take this one?");
    assert!(
        sent.headers.contains_key("x-user-limit-24hour-remaining"),
        "DMs report the 24 h cap"
    );
    assert_eq!(sent.header("x-access-level"), "read-write-directmessages");

    // The founder does not.
    let founder_id = user_id(&sim, "mara_quill");
    let refused = post(
        &http,
        &sim,
        &format!("/2/dm_conversations/with/{founder_id}/messages"),
        &brand.access,
        &json!({"text": "hi"}),
    )
    .await;
    assert_eq!(refused.status, 403);
    assert_eq!(
        refused.body["detail"],
        "You cannot send messages to this user."
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn rate_limit_headers_count_down_then_429() {
    let config = SimConfig {
        rate_limits: RateLimitProfile {
            users_me: EndpointLimit::per_window(3),
            ..RateLimitProfile::pay_per_use()
        },
        ..SimConfig::for_tests(23)
    };
    let sim = start(config).await;
    let http = http();
    let tokens = login(&http, &sim, "nimbusnotes").await;
    let mut resets = Vec::new();
    for expected_remaining in [2, 1, 0] {
        let a = get(&http, &sim, "/2/users/me", &tokens.access).await;
        assert_eq!(a.status, 200);
        assert_eq!(a.header("x-rate-limit-limit"), "3");
        assert_eq!(
            a.header("x-rate-limit-remaining"),
            expected_remaining.to_string()
        );
        resets.push(a.header("x-rate-limit-reset").to_string());
        // X's other headers.
        assert!(a.header("date").ends_with(" UTC"), "{}", a.header("date"));
        assert_eq!(a.header("x-transaction-id").len(), 16);
        assert!(!a.header("api-version").is_empty());
        assert_eq!(a.header("content-type"), "application/json; charset=utf-8");
    }
    assert!(
        resets.windows(2).all(|w| w[0] == w[1]),
        "one window: {resets:?}"
    );
    let limited = get(&http, &sim, "/2/users/me", &tokens.access).await;
    assert_eq!(limited.status, 429);
    assert_eq!(limited.header("x-rate-limit-remaining"), "0");
    assert_eq!(
        limited.body,
        json!({"title": "Too Many Requests", "detail": "Too Many Requests", "type": "about:blank", "status": 429})
    );
    // Another endpoint has its own budget; the window resets 15 minutes after it started.
    let id = user_id(&sim, "nimbusnotes");
    assert_eq!(
        get(
            &http,
            &sim,
            &format!("/2/users/{id}/mentions"),
            &tokens.access
        )
        .await
        .status,
        200
    );
    sim.control().advance_clock(Duration::from_secs(901));
    assert_eq!(
        get(&http, &sim, "/2/users/me", &tokens.access).await.status,
        200
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn account_level_faults_hit_only_their_users() {
    let sim = start(SimConfig::for_tests(24)).await;
    let http = http();
    let brand = login(&http, &sim, "nimbusnotes").await;
    let help = login(&http, &sim, "nimbus_help").await;
    let control = sim.control();

    control.set_faults(Faults {
        rate_limit_storm: vec!["@nimbusnotes".into()],
        ..Faults::default()
    });
    assert_eq!(
        get(&http, &sim, "/2/users/me", &brand.access).await.status,
        429
    );
    assert_eq!(
        get(&http, &sim, "/2/users/me", &help.access).await.status,
        200
    );

    control.set_faults(Faults {
        credits_depleted: true,
        only_users: vec!["nimbusnotes".into()],
        ..Faults::default()
    });
    let broke = get(&http, &sim, "/2/users/me", &brand.access).await;
    assert_eq!(broke.status, 402);
    assert_eq!(
        broke.body["type"],
        "https://api.twitter.com/2/problems/credits"
    );
    assert_eq!(
        get(&http, &sim, "/2/users/me", &help.access).await.status,
        200
    );

    control.set_faults(Faults {
        client_not_enrolled: true,
        ..Faults::default()
    });
    let forbidden = get(&http, &sim, "/2/users/me", &help.access).await;
    assert_eq!(forbidden.status, 403);
    assert_eq!(forbidden.body["reason"], "client-not-enrolled");

    control.set_faults(Faults {
        server_error_probability: 1.0,
        ..Faults::default()
    });
    let down = get(&http, &sim, "/2/users/me", &help.access).await;
    assert_eq!(down.status, 503);
    assert_eq!(down.body["type"], "about:blank");

    control.set_faults(Faults::default());
    assert_eq!(
        get(&http, &sim, "/2/users/me", &brand.access).await.status,
        200
    );

    // The request log saw all of it, with the user of each token.
    let log = control.request_log();
    let statuses: Vec<u16> = log
        .iter()
        .filter(|r| r.path == "/2/users/me" && r.username.as_deref() == Some("nimbusnotes"))
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, vec![429, 402, 200]);
    sim.shutdown().await;
}

#[tokio::test]
async fn transport_faults_reset_stall_and_garble() {
    let sim = start(SimConfig::for_tests(25)).await;
    let http = http();
    let tokens = login(&http, &sim, "nimbusnotes").await;
    let control = sim.control();
    let me = format!("{}/2/users/me", sim.api_base());

    control.set_faults(Faults {
        connection_reset_probability: 1.0,
        ..Faults::default()
    });
    let reset = http.get(&me).bearer_auth(&tokens.access).send().await;
    assert!(
        reset.is_err(),
        "the connection is dropped without an answer: {reset:?}"
    );

    control.set_faults(Faults {
        malformed_json_probability: 1.0,
        ..Faults::default()
    });
    let garbled = http
        .get(&me)
        .bearer_auth(&tokens.access)
        .send()
        .await
        .unwrap();
    assert_eq!(garbled.status(), 200);
    let text = garbled.text().await.unwrap();
    assert!(
        serde_json::from_str::<serde_json::Value>(&text).is_err(),
        "{text}"
    );

    control.set_faults(Faults {
        slow_response: Some(Duration::from_secs(20)),
        slow_probability: 1.0,
        ..Faults::default()
    });
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let slow = impatient.get(&me).bearer_auth(&tokens.access).send().await;
    assert!(slow.unwrap_err().is_timeout());
    control.set_faults(Faults::default());
    assert_eq!(
        get(&http, &sim, "/2/users/me", &tokens.access).await.status,
        200
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn page_faults_drop_authors_and_add_partial_errors() {
    let sim = start(SimConfig::for_tests(26)).await;
    let http = http();
    let tokens = login(&http, &sim, "nimbusnotes").await;
    let id = user_id(&sim, "nimbusnotes");
    sim.control().set_faults(Faults {
        partial_errors: true,
        missing_authors: true,
        ..Faults::default()
    });
    let path = format!(
        "/2/users/{id}/mentions?max_results=100&expansions=author_id,in_reply_to_user_id,referenced_tweets.id&tweet.fields=author_id,referenced_tweets,in_reply_to_user_id"
    );
    let page = get(&http, &sim, &path, &tokens.access).await;
    assert_eq!(page.status, 200);
    let data = page.body["data"].as_array().unwrap();
    assert!(
        data[0].get("author_id").is_none(),
        "first post comes without its author"
    );
    assert!(data[1].get("author_id").is_some());
    let errors = page.body["errors"]
        .as_array()
        .expect("partial errors beside data");
    assert!(errors.iter().any(|e| e["type"]
        == "https://api.twitter.com/2/problems/resource-not-found"
        && e["parameter"] == "referenced_tweets.id"));
    sim.shutdown().await;
}

#[tokio::test]
async fn control_routes_over_http() {
    let sim = start(SimConfig::for_tests(27)).await;
    let http = http();
    let base = sim.base_url();
    let users: serde_json::Value = http
        .get(format!("{base}/__sim/users"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(users["users"].as_array().unwrap().len(), 3);

    let injected: serde_json::Value = http
        .post(format!("{base}/__sim/mentions"))
        .json(&json!({"to": "nimbus_help", "from": "hanako_yamada", "text": "こんにちは"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = injected["id"].as_str().unwrap();
    let tokens = login(&http, &sim, "nimbus_help").await;
    assert_eq!(
        newest_mention(&http, &sim, "nimbus_help", &tokens.access).await,
        id
    );

    let generated: serde_json::Value = http
        .post(format!("{base}/__sim/generate"))
        .json(&json!({"count": 5}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(generated["ids"].as_array().unwrap().len(), 5);

    let faults: serde_json::Value = http
        .put(format!("{base}/__sim/faults"))
        .json(&json!({"server_error_probability": 1.0}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(faults["server_error_probability"], 1.0);
    assert_eq!(
        get(&http, &sim, "/2/users/me", &tokens.access).await.status,
        503
    );

    let revoke = http
        .post(format!("{base}/__sim/revoke"))
        .json(&json!({"user": "@nimbus_help"}))
        .send()
        .await
        .unwrap();
    assert_eq!(revoke.status(), 200);
    http.put(format!("{base}/__sim/faults"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        get(&http, &sim, "/2/users/me", &tokens.access).await.status,
        401
    );

    let unknown = http
        .post(format!("{base}/__sim/expire"))
        .json(&json!({"user": "nobody"}))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 400);

    let log: serde_json::Value = http
        .get(format!("{base}/__sim/requests"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let paths: Vec<&str> = log["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["path"].as_str().unwrap())
        .collect();
    assert!(paths.contains(&"/2/users/me"));
    assert!(
        !paths.iter().any(|p| p.starts_with("/__sim")),
        "control routes are not logged"
    );
    sim.shutdown().await;
}
