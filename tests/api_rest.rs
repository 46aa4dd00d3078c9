//! The REST API over real HTTP: every endpoint on a running service (TCP with the bearer token,
//! and the Unix socket without one) against the simulator, each body checked against the
//! service's generated OpenAPI document with a JSON Schema validator; the error bodies
//! (`{"detail"}` with 400/401/404/409/413/415/422); SSE delivering a new mention; a reply sent,
//! and a reply whose request went away abandoned, never sent later.

#[path = "support/sim_env.rs"]
mod sim_env;
#[path = "support/api.rs"]
mod support;

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use support::{ApiWorld, BRAND, FOUNDER, Options, SUPPORT};

/// Polls `check` until it returns `Some`, for up to a minute (a condition, not a timing).
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    for _ in 0..600 {
        if let Some(v) = check().await {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

fn detail(body: &Value) -> &str {
    body["detail"]
        .as_str()
        .unwrap_or_else(|| panic!("no detail in {body}"))
}

#[test]
fn the_openapi_document_is_3_1_with_every_route_and_enums_as_enums() {
    let doc = serde_json::to_value(perch::api::rest::openapi()).unwrap();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    let paths = doc["paths"].as_object().unwrap();
    for (path, methods) in [
        ("/api/v1/accounts/", &["get"][..]),
        ("/api/v1/accounts/{account_id}", &["get", "patch", "delete"]),
        ("/api/v1/accounts/{account_id}/stats", &["get"]),
        ("/api/v1/accounts/{account_id}/reauthorize", &["post"]),
        ("/api/v1/auth/login", &["get"]),
        ("/api/v1/auth/callback", &["get"]),
        ("/api/v1/mentions/", &["get"]),
        ("/api/v1/mentions/{id}", &["get", "patch"]),
        ("/api/v1/mentions/fetch-new", &["post"]),
        ("/api/v1/mentions/{id}/reply", &["post"]),
        ("/api/v1/mentions/{id}/dm", &["post"]),
        ("/api/v1/events", &["get"]),
        ("/api/v1/mentions/{id}/assign", &["post"]),
        ("/api/v1/audit", &["get"]),
    ] {
        for m in methods {
            assert!(paths[path][*m].is_object(), "{m} {path} is not documented");
        }
    }
    let schemas = &doc["components"]["schemas"];
    assert_eq!(
        schemas["MentionStatus"]["enum"],
        json!(["pending", "processing", "replied", "ignored", "error"])
    );
    assert_eq!(
        schemas["SyncStatus"]["enum"],
        json!(["active", "paused", "error", "token_expired", "rate_limited"])
    );
    assert!(
        schemas["OutboxState"]["enum"]
            .as_array()
            .unwrap()
            .contains(&json!("unconfirmed"))
    );
    // Request bodies refuse unknown fields.
    assert_eq!(
        schemas["MentionPatch"]["additionalProperties"],
        json!(false)
    );
    assert_eq!(schemas["SendBody"]["additionalProperties"], json!(false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_endpoints_match_the_document_on_tcp_and_the_socket() {
    let world = ApiWorld::start(1101).await;

    // 401 without the token (or with another) on TCP, in the FastAPI shape.
    let (status, body) = world
        .call(world.anonymous.get(world.url("/api/v1/accounts/")))
        .await;
    assert_eq!(status, 401);
    assert!(detail(&body).contains("Bearer"), "{body}");
    let (status, _) = world
        .call(
            world
                .anonymous
                .get(world.url("/api/v1/accounts/"))
                .bearer_auth("not-the-token"),
        )
        .await;
    assert_eq!(status, 401);

    let (status, list) = world
        .checked(Method::GET, "/api/v1/accounts/", "/api/v1/accounts/", None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(list["total"], 3);
    assert_eq!(list["active_count"], 3);
    assert_eq!(list["paused_count"], 0);
    assert_eq!(list["accounts"].as_array().unwrap().len(), 3);

    // The socket needs no token and gives the same shape.
    let (status, over_socket) = world
        .call(world.unix.get(world.unix_url("/api/v1/accounts/")))
        .await;
    assert_eq!(status, 200);
    world.validate("/api/v1/accounts/", "get", 200, &over_socket);
    assert_eq!(over_socket["total"], 3);
    // So is the document, generated from the code.
    let (status, served) = world
        .call(world.unix.get(world.unix_url("/api/v1/openapi.json")))
        .await;
    assert_eq!(status, 200);
    assert_eq!(served, world.doc);

    // Paths and methods that are not there answer in the same shape.
    let (status, body) = world
        .call(world.http.get(world.url("/api/v1/nothing")))
        .await;
    assert_eq!((status, detail(&body)), (404, "Not Found"));
    let (status, body) = world
        .call(world.http.put(world.url("/api/v1/accounts/")))
        .await;
    assert_eq!((status, detail(&body)), (405, "Method Not Allowed"));

    let brand = world.account_id(BRAND).await;
    let one = "/api/v1/accounts/{account_id}";
    let (status, account) = world
        .checked(Method::GET, one, &format!("/api/v1/accounts/{brand}"), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(account["twitter_username"], BRAND);
    // `@handle` finds it too.
    let (status, same) = world
        .checked(
            Method::GET,
            one,
            &format!("/api/v1/accounts/@{BRAND}"),
            None,
        )
        .await;
    assert_eq!((status, &same["id"]), (200, &account["id"]));
    let (status, missing) = world
        .checked(Method::GET, one, "/api/v1/accounts/@nobody_here", None)
        .await;
    assert_eq!(status, 404);
    assert!(detail(&missing).contains("no account"), "{missing}");

    let (status, stats) = world
        .checked(
            Method::GET,
            "/api/v1/accounts/{account_id}/stats",
            &format!("/api/v1/accounts/{brand}/stats"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    for key in [
        "account_id",
        "username",
        "total_mentions",
        "pending_mentions",
        "replied_mentions",
        "days_tracked",
        "avg_mentions_per_day",
        "last_synced",
        "sync_status",
        "is_active",
    ] {
        assert!(stats.get(key).is_some(), "stats without {key}: {stats}");
    }

    // Pause: recorded by the engine at once, and the list leaves the account out by default.
    let (status, paused) = world
        .checked(
            Method::PATCH,
            one,
            &format!("/api/v1/accounts/{brand}"),
            Some(json!({"is_active": false})),
        )
        .await;
    assert_eq!(status, 200, "{paused}");
    assert_eq!(paused["is_active"], false);
    assert_eq!(paused["sync_status"], "paused");
    let (_, list) = world
        .checked(Method::GET, "/api/v1/accounts/", "/api/v1/accounts/", None)
        .await;
    assert_eq!(
        (list["total"].clone(), list["paused_count"].clone()),
        (json!(3), json!(1))
    );
    assert_eq!(list["accounts"].as_array().unwrap().len(), 2);
    let (_, all) = world
        .checked(
            Method::GET,
            "/api/v1/accounts/",
            "/api/v1/accounts/?include_inactive=true",
            None,
        )
        .await;
    assert_eq!(all["accounts"].as_array().unwrap().len(), 3);
    let (status, resumed) = world
        .checked(
            Method::PATCH,
            one,
            &format!("/api/v1/accounts/{brand}"),
            Some(json!({"sync_status": "active"})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(resumed["is_active"], true);

    // Bad bodies: 422 with a reason naming what is allowed.
    let patch_url = world.url(&format!("/api/v1/accounts/{brand}"));
    for (body, says) in [
        (json!({"sync_status": "sleeping"}), "active"),
        (json!({"sync_status": "error"}), "set by perch"),
        (json!({"is_active": "no"}), "is_active"),
        (json!({"is_active": false, "colour": "red"}), "colour"),
        (json!({}), "nothing to change"),
        (
            json!({"is_active": false, "sync_status": "active"}),
            "disagree",
        ),
    ] {
        let (status, error) = world.call(world.http.patch(&patch_url).json(&body)).await;
        assert_eq!(status, 422, "{body} → {error}");
        assert!(detail(&error).contains(says), "{body} → {error}");
        world.validate(one, "patch", 422, &error);
    }
    let (status, error) = world
        .call(
            world
                .http
                .get(world.url("/api/v1/accounts/?include_inactive=maybe")),
        )
        .await;
    assert_eq!(status, 422, "{error}");

    let (status, url) = world
        .checked(
            Method::POST,
            "/api/v1/accounts/{account_id}/reauthorize",
            &format!("/api/v1/accounts/{brand}/reauthorize"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{url}");
    let authorization_url = url["authorization_url"].as_str().unwrap();
    assert!(
        authorization_url.starts_with(&world.sim.authorize_url()),
        "{url}"
    );
    assert!(
        authorization_url.contains(&format!("login_hint={BRAND}")),
        "{url}"
    );

    // Remove, with its mentions; the account's grant is revoked at X as it goes.
    let brand_id: perch::domain::AccountId = brand.parse().expect("an account id");
    let tokens = world
        .hub()
        .store
        .tokens(brand_id)
        .unwrap()
        .expect("the brand's stored tokens");
    assert_eq!(
        sim_env::users_me(&world.sim, &tokens).await,
        200,
        "a live grant first"
    );
    let (status, removed) = world
        .checked(
            Method::DELETE,
            one,
            &format!("/api/v1/accounts/{brand}?delete_messages=true"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{removed}");
    assert_eq!(removed["removed"], true);
    let (status, _) = world
        .checked(Method::GET, one, &format!("/api/v1/accounts/{brand}"), None)
        .await;
    assert_eq!(status, 404);
    assert_eq!(
        sim_env::users_me(&world.sim, &tokens).await,
        401,
        "the removed account's access token still works at X: its grant was not revoked"
    );

    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mentions_are_listed_paged_found_and_triaged() {
    let world = ApiWorld::start_with(
        1102,
        Options {
            backlog: 4,
            ..Options::default()
        },
    )
    .await;
    let report = world.fetch_all().await;
    assert_eq!(report["failed"], 0);
    // The service polled the accounts as it started; with this fetch every backlog is in.
    let (_, counted) = world
        .checked(
            Method::GET,
            "/api/v1/mentions/",
            "/api/v1/mentions/?limit=1",
            None,
        )
        .await;
    let stored = counted["total_matching"].as_u64().unwrap();
    assert!(stored >= 12, "{counted}");

    let list = "/api/v1/mentions/";
    let (status, first) = world
        .checked(Method::GET, list, "/api/v1/mentions/?limit=5", None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(first["count"], 5);
    assert_eq!(first["total_matching"], stored);
    let m0 = &first["mentions"][0];
    assert!(
        m0["sent_to"]["username"].as_str().unwrap().starts_with('@'),
        "{m0}"
    );
    assert!(
        m0["sender"]["username"].as_str().unwrap().starts_with('@'),
        "{m0}"
    );
    // Newest first, and the cursor goes on without overlap to the end.
    let mut seen: Vec<String> = Vec::new();
    let mut cursor = None::<String>;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/mentions/?limit=5&cursor={c}"),
            None => "/api/v1/mentions/?limit=5".to_string(),
        };
        let (status, page) = world.checked(Method::GET, list, &path, None).await;
        assert_eq!(status, 200);
        for m in page["mentions"].as_array().unwrap() {
            seen.push(m["id"].as_str().unwrap().to_string());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(seen.len() as u64, stored);
    let unique: std::collections::HashSet<_> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "a page repeated a mention");

    // Filters: account and status; a bad status lists the allowed ones.
    let support = world.account_id(SUPPORT).await;
    let (_, theirs) = world
        .checked(
            Method::GET,
            list,
            &format!("/api/v1/mentions/?account_id={support}&status=pending&limit=500"),
            None,
        )
        .await;
    assert!(theirs["count"].as_u64().unwrap() >= 4);
    assert!(
        theirs["mentions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["sent_to"]["username"] == format!("@{SUPPORT}") && m["status"] == "pending")
    );
    let (status, error) = world
        .checked(Method::GET, list, "/api/v1/mentions/?status=done", None)
        .await;
    assert_eq!(status, 422);
    assert!(detail(&error).contains("pending"), "{error}");
    for bad in ["limit=0", "limit=501", "limit=ten", "cursor=%21%21"] {
        let (status, error) = world
            .checked(Method::GET, list, &format!("/api/v1/mentions/?{bad}"), None)
            .await;
        assert_eq!(status, 422, "{bad}: {error}");
    }
    let (status, _) = world
        .checked(
            Method::GET,
            list,
            "/api/v1/mentions/?account_id=@nobody_here",
            None,
        )
        .await;
    assert_eq!(status, 404);

    // Search: a known post, with an exact total (the store is small).
    let text = "the sync icon spins forever on REST";
    let post = world
        .sim
        .control()
        .inject_mention(SUPPORT, Some(FOUNDER), text)
        .unwrap();
    world.fetch_all().await;
    let (status, found) = world
        .checked(
            Method::GET,
            list,
            "/api/v1/mentions/?search=SPINS%20FOREVER%20on%20rest",
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(found["count"], 1, "{found}");
    assert_eq!(found["total_matching"], 1);
    let mention = found["mentions"][0].clone();
    assert_eq!(mention["tweet_id"], post);

    // One mention by perch's id, the post id, or @handle:postid.
    let one = "/api/v1/mentions/{id}";
    let uuid = mention["id"].as_str().unwrap();
    for id in [uuid.to_string(), post.clone(), format!("@{SUPPORT}:{post}")] {
        let (status, got) = world
            .checked(Method::GET, one, &format!("/api/v1/mentions/{id}"), None)
            .await;
        assert_eq!(status, 200, "{id}: {got}");
        assert_eq!(got["id"], uuid);
        assert_eq!(got["sender"]["username"], format!("@{FOUNDER}"));
    }
    let (status, error) = world
        .checked(Method::GET, one, "/api/v1/mentions/12345", None)
        .await;
    assert_eq!(status, 404, "{error}");
    let (status, error) = world
        .checked(Method::GET, one, "/api/v1/mentions/not-an-id", None)
        .await;
    assert_eq!(status, 422, "{error}");

    // Triage with the dashboard's rules.
    let at = format!("/api/v1/mentions/{post}");
    let (status, ignored) = world
        .checked(Method::PATCH, one, &at, Some(json!({"status": "ignored"})))
        .await;
    assert_eq!(status, 200, "{ignored}");
    assert_eq!(ignored["status"], "ignored");
    let (status, error) = world
        .checked(
            Method::PATCH,
            one,
            &at,
            Some(json!({"status": "processing"})),
        )
        .await;
    assert_eq!(status, 422);
    assert!(detail(&error).contains("set by perch"), "{error}");
    let (status, error) = world
        .checked(Method::PATCH, one, &at, Some(json!({"status": "later"})))
        .await;
    assert_eq!(status, 422);
    assert!(detail(&error).contains("ignored"), "{error}");

    // Malformed, unknown, mistyped, undeclared and oversized bodies: 4xx with a reason.
    let url = world.url(&at);
    let raw = |body: &'static str| {
        world
            .http
            .patch(&url)
            .header("content-type", "application/json")
            .body(body)
    };
    let (status, error) = world.call(raw("{\"status\": ")).await;
    assert_eq!(status, 400, "{error}");
    assert!(detail(&error).contains("not valid JSON"), "{error}");
    let (status, error) = world
        .call(raw("{\"status\": \"pending\", \"why\": 1}"))
        .await;
    assert_eq!(status, 422, "{error}");
    assert!(detail(&error).contains("why"), "{error}");
    // (serde_json reads a number where an enum's string belongs as a syntax error: 400.)
    let (status, error) = world.call(raw("{\"status\": 3}")).await;
    assert!(status == 400 || status == 422, "{status} {error}");
    assert!(detail(&error).contains("column"), "{error}");
    let (status, error) = world
        .call(
            world
                .http
                .post(world.url(&format!("{at}/reply")))
                .json(&json!({"text": 5})),
        )
        .await;
    assert_eq!(status, 422, "{error}");
    assert!(detail(&error).contains("invalid type"), "{error}");
    let (status, error) = world
        .call(world.http.patch(&url).body("{\"status\": \"pending\"}"))
        .await;
    assert_eq!(status, 415, "{error}");
    let huge = format!(
        "{{\"status\": \"pending\", \"pad\": \"{}\"}}",
        "x".repeat(2 << 20)
    );
    let (status, error) = world
        .call(
            world
                .http
                .patch(&url)
                .header("content-type", "application/json")
                .body(huge),
        )
        .await;
    assert_eq!(status, 413, "{error}");
    assert!(detail(&error).contains("larger"), "{error}");
    // The mention was not touched by any of them.
    let (_, still) = world.checked(Method::GET, one, &at, None).await;
    assert_eq!(still["status"], "ignored");

    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_new_says_per_account_what_happened_never_a_false_zero() {
    let world = ApiWorld::start(1103).await;
    let fetch = "/api/v1/mentions/fetch-new";
    let report = world.fetch_all().await;
    assert_eq!(report["accounts"].as_array().unwrap().len(), 3);

    // A paused account is not fetched, and says why.
    let brand = world.account_id(BRAND).await;
    let (status, _) = world
        .checked(
            Method::PATCH,
            "/api/v1/accounts/{account_id}",
            &format!("/api/v1/accounts/{brand}"),
            Some(json!({"is_active": false})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, report) = world
        .checked(
            Method::POST,
            fetch,
            &format!("{fetch}?account_id={brand}"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(report["ok"], false);
    assert_eq!(
        report["accounts"][0]["stopped"]["reason"], "paused",
        "{report}"
    );
    // Without a parameter: the active accounts only.
    let report = world.fetch_all().await;
    assert_eq!(report["accounts"].as_array().unwrap().len(), 2);

    // X failing: reported as failed, not as "0 new".
    world.sim.control().set_faults(perch::sim::Faults {
        server_error_probability: 1.0,
        ..Default::default()
    });
    let support = world.account_id(SUPPORT).await;
    let (status, report) = world
        .checked(
            Method::POST,
            fetch,
            &format!("{fetch}?account_id={support}"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(report["ok"], false, "{report}");
    assert_eq!(report["failed"], 1);
    assert_eq!(report["accounts"][0]["ok"], false);
    assert_eq!(
        report["accounts"][0]["stopped"]["reason"], "failed",
        "{report}"
    );

    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_and_a_dm_over_rest_go_out_from_the_mentioned_account() {
    let world = ApiWorld::start(1104).await;
    world.fetch_all().await;
    let control = world.sim.control();
    let post = control
        .inject_mention(SUPPORT, Some(FOUNDER), "export to PDF is broken")
        .unwrap();
    let to_dm = control
        .inject_mention(BRAND, Some(SUPPORT), "can we talk about the launch?")
        .unwrap();
    world.fetch_all().await;

    let reply = "/api/v1/mentions/{id}/reply";
    let (status, sent) = world
        .checked(
            Method::POST,
            reply,
            &format!("/api/v1/mentions/{post}/reply"),
            Some(json!({"text": "fixed in 2.4.1, thanks!"})),
        )
        .await;
    assert_eq!(status, 200, "{sent}");
    assert_eq!(sent["state"], "sent");
    assert_eq!(sent["mention"]["status"], "replied");
    let posts = control.posts();
    assert_eq!(posts.len(), 1);
    assert_eq!(
        posts[0].author_username, SUPPORT,
        "from the mentioned account"
    );
    assert_eq!(
        posts[0].in_reply_to_tweet_id.as_deref(),
        Some(post.as_str())
    );
    assert_eq!(sent["response"]["id"], posts[0].id);
    assert_eq!(sent["mention"]["public_response"]["id"], posts[0].id);

    // A second reply is refused: 409, nothing posted.
    let (status, error) = world
        .checked(
            Method::POST,
            reply,
            &format!("/api/v1/mentions/{post}/reply"),
            Some(json!({"text": "and again"})),
        )
        .await;
    assert_eq!(status, 409, "{error}");
    assert!(detail(&error).contains("already"), "{error}");
    // Too long, or empty: 422.
    let (status, error) = world
        .checked(
            Method::POST,
            reply,
            &format!("/api/v1/mentions/{to_dm}/reply"),
            Some(json!({"text": "a".repeat(281)})),
        )
        .await;
    assert_eq!(status, 422, "{error}");
    let (status, _) = world
        .checked(
            Method::POST,
            reply,
            &format!("/api/v1/mentions/{to_dm}/reply"),
            Some(json!({"text": "  "})),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(control.posts().len(), 1);

    // A DM that outlives its request: 202 at once, then sent by the service.
    let (status, queued) = world
        .checked(
            Method::POST,
            "/api/v1/mentions/{id}/dm",
            &format!("/api/v1/mentions/{to_dm}/dm?wait=false"),
            Some(json!({"text": "sure, DMing you the details"})),
        )
        .await;
    assert!(status == 202 || status == 200, "{status} {queued}");
    let dm = eventually("the DM to be sent", || async {
        let dms = control.dms();
        (!dms.is_empty()).then(|| dms[0].clone())
    })
    .await;
    assert_eq!(dm.sender_username, BRAND);
    assert_eq!(dm.recipient_username, SUPPORT);
    let (_, mention) = world
        .checked(
            Method::GET,
            "/api/v1/mentions/{id}",
            &format!("/api/v1/mentions/{to_dm}"),
            None,
        )
        .await;
    eventually("the DM recorded", || async {
        let (_, m) = world
            .call(
                world
                    .http
                    .get(world.url(&format!("/api/v1/mentions/{to_dm}"))),
            )
            .await;
        m["dm_response"].is_object().then_some(())
    })
    .await;
    assert_eq!(mention["sent_to"]["username"], format!("@{BRAND}"));

    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_whose_request_goes_away_is_abandoned_and_never_sent_later() {
    let world = ApiWorld::start(1105).await;
    world.fetch_all().await;
    let control = world.sim.control();
    let first = control
        .inject_mention(SUPPORT, Some(FOUNDER), "first: the app crashes on start")
        .unwrap();
    let second = control
        .inject_mention(SUPPORT, Some(BRAND), "second: where is the changelog?")
        .unwrap();
    world.fetch_all().await;
    // X now takes a long while to answer a post: the first send is in flight while the second
    // waits its turn in the outbox (one request at a time).
    control.set_faults(perch::sim::Faults {
        slow_response: Some(Duration::from_secs(8)),
        slow_probability: 1.0,
        ..Default::default()
    });
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let send = |id: String, text: &'static str| {
        let request = impatient
            .post(world.url(&format!("/api/v1/mentions/{id}/reply")))
            .bearer_auth(&world.token)
            .json(&json!({ "text": text }));
        async move { request.send().await }
    };
    let mention = |id: String| {
        let request = world.http.get(world.url(&format!("/api/v1/mentions/{id}")));
        async move {
            let v: Value = request.send().await.unwrap().json().await.unwrap();
            v
        }
    };
    let a = tokio::spawn(send(first.clone(), "we are on it"));
    eventually("the first reply to be on its way", || async {
        let m = mention(first.clone()).await;
        (m["outbox"]["state"] == "sending").then_some(())
    })
    .await;
    let b = send(second.clone(), "here: https://example.com/changelog").await;
    assert!(b.is_err(), "the client gave up on the second reply");
    assert!(
        a.await.unwrap().is_err(),
        "the client gave up on the first reply"
    );

    // The queued one was cancelled (its text kept as the draft), the one in flight became
    // unconfirmed at once and was settled when X's answer came.
    let m2 = eventually("the second reply cancelled", || async {
        let m = mention(second.clone()).await;
        (m["outbox"].is_null() || m["outbox"]["state"] == "cancelled").then_some(m)
    })
    .await;
    assert_eq!(m2["status"], "pending", "{m2}");
    let key = perch::domain::MentionKey {
        account_id: m2["sent_to"]["account_id"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap(),
        tweet_id: second.parse().unwrap(),
    };
    let draft = world
        .hub()
        .store
        .draft(key)
        .unwrap()
        .expect("the draft is kept");
    assert_eq!(draft.text, "here: https://example.com/changelog");
    let m1 = eventually("the first reply settled by X's late answer", || async {
        let m = mention(first.clone()).await;
        (m["status"] == "replied").then_some(m)
    })
    .await;
    assert!(m1["public_response"].is_object(), "{m1}");
    // Give the outbox every chance to (wrongly) send the second one after the first.
    control.set_faults(perch::sim::Faults::default());
    let (status, _) = world
        .checked(
            Method::POST,
            "/api/v1/mentions/{id}/reply",
            &format!("/api/v1/mentions/{first}/reply"),
            Some(json!({"text": "a probe through the same outbox"})),
        )
        .await;
    assert_eq!(status, 409, "the first has its reply");
    let posts = control.posts();
    assert_eq!(posts.len(), 1, "only the first reply is on X: {posts:?}");
    assert_eq!(
        posts[0].in_reply_to_tweet_id.as_deref(),
        Some(first.as_str())
    );

    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_deliver_a_new_mention_with_its_id_over_the_socket() {
    let world = ApiWorld::start(1106).await;
    world.fetch_all().await;
    let mut stream = world
        .unix
        .get(world.unix_url("/api/v1/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    assert!(
        stream.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let post = world
        .sim
        .control()
        .inject_mention(BRAND, Some(FOUNDER), "live: does the API stream this?")
        .unwrap();
    let fetcher = {
        let request = world
            .http
            .post(world.url(&format!("/api/v1/mentions/fetch-new?account_id=@{BRAND}")));
        tokio::spawn(async move { request.send().await.map(|r| r.status().as_u16()) })
    };
    let schema_doc = world.doc.clone();
    let mut buffer = String::new();
    let event = tokio::time::timeout(Duration::from_secs(120), async {
        loop {
            let chunk = stream
                .chunk()
                .await
                .unwrap()
                .expect("the stream stays open");
            buffer.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buffer.find("\n\n") {
                let frame = buffer[..end].to_string();
                buffer.drain(..end + 2);
                let name = frame.lines().find_map(|l| l.strip_prefix("event: "));
                let data = frame.lines().find_map(|l| l.strip_prefix("data: "));
                if let (Some("mentions_stored"), Some(data)) = (name, data) {
                    let value: Value = serde_json::from_str(data).unwrap();
                    if value["mentions"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|m| m["tweet_id"] == post)
                    {
                        return value;
                    }
                }
            }
        }
    })
    .await
    .expect("a mentions_stored event with the new post");
    assert_eq!(event["type"], "mentions_stored");
    assert!(event["inserted"].as_u64().unwrap() >= 1);
    let m = event["mentions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["tweet_id"] == post)
        .unwrap();
    assert!(m["id"].as_str().unwrap().parse::<uuid::Uuid>().is_ok());
    assert_eq!(m["sender"]["username"], format!("@{FOUNDER}"));
    // The event is an `ApiEvent` of the document.
    let root =
        json!({"components": schema_doc["components"], "$ref": "#/components/schemas/ApiEvent"});
    let validator = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .build(&root)
        .unwrap();
    assert!(validator.is_valid(&event), "{event}");
    assert_eq!(fetcher.await.unwrap().unwrap(), 200);
    drop(stream);

    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_is_added_through_the_api_callback() {
    let world = ApiWorld::start_with(
        1107,
        Options {
            accounts: false,
            redirect_to_api: true,
            ..Options::default()
        },
    )
    .await;
    // The "browser": the simulator's authorize page redirects to the API's callback.
    let (_, location) = world.approve_login(FOUNDER).await;
    assert!(
        location.starts_with(&world.url(support::API_CALLBACK)),
        "{location}"
    );
    // A browser has no token: the callback needs none (its one-time state protects it).
    let (status, account) = world.call(world.anonymous.get(&location)).await;
    assert_eq!(status, 200, "{account}");
    world.validate("/api/v1/auth/callback", "get", 200, &account);
    assert_eq!(account["twitter_username"], FOUNDER);
    // Used once: the same redirect again is refused.
    let (status, error) = world.call(world.anonymous.get(&location)).await;
    assert_eq!(status, 400, "{error}");
    world.validate("/api/v1/auth/callback", "get", 400, &error);
    let (status, error) = world
        .call(
            world
                .anonymous
                .get(world.url("/api/v1/auth/callback?error=access_denied&state=x")),
        )
        .await;
    assert_eq!(status, 403, "{error}");
    let (status, _) = world
        .call(
            world
                .anonymous
                .get(world.url("/api/v1/auth/callback?state=x")),
        )
        .await;
    assert_eq!(status, 422);
    // The service polls the new account.
    let (_, list) = world
        .checked(Method::GET, "/api/v1/accounts/", "/api/v1/accounts/", None)
        .await;
    assert_eq!(list["total"], 1);
    // The service polls the new account at once.
    world.fetch_all().await;
    let (_, mentions) = world
        .checked(Method::GET, "/api/v1/mentions/", "/api/v1/mentions/", None)
        .await;
    assert!(mentions["count"].as_u64().unwrap() >= 1, "{mentions}");

    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_started_over_the_api_is_caught_on_the_loopback_listener() {
    let world = ApiWorld::start_with(
        1108,
        Options {
            accounts: false,
            ..Options::default()
        },
    )
    .await;
    let (browser, location) = world.approve_login(SUPPORT).await;
    assert!(location.starts_with("http://127.0.0.1:"), "{location}");
    assert!(!location.contains("/api/v1/"), "{location}");
    let page = browser.get(&location).send().await.unwrap();
    assert!(page.status().is_success(), "{}", page.status());
    let account = eventually("the account added", || async {
        let (_, list) = world
            .call(world.http.get(world.url("/api/v1/accounts/")))
            .await;
        (list["total"] == 1).then(|| list["accounts"][0].clone())
    })
    .await;
    assert_eq!(account["twitter_username"], SUPPORT);

    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_events_client_that_reads_nothing_is_told_it_lagged_and_closed() {
    let world = ApiWorld::start_with(
        1109,
        Options {
            accounts: false,
            ..Options::default()
        },
    )
    .await;
    let mut stream = world
        .http
        .get(world.url("/api/v1/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    // Far more than the backlog and the socket buffers hold, while the client reads nothing:
    // the service neither blocks nor keeps them.
    let message = "x".repeat(1000);
    for _ in 0..40_000 {
        world.hub().publish(perch::service::ServiceEvent::Sync(
            perch::sync::SyncEvent::Notice {
                account_id: None,
                message: message.clone(),
            },
        ));
    }
    let mut tail = String::new();
    let ended = tokio::time::timeout(Duration::from_secs(120), async {
        while let Some(chunk) = stream.chunk().await.unwrap() {
            tail.push_str(&String::from_utf8_lossy(&chunk));
            if tail.len() > 4096 {
                tail.drain(..tail.len() - 4096);
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the stream of a lagging client ends");
    assert!(tail.contains("event: lagged"), "{tail}");
    // The service still answers.
    let (status, _) = world
        .call(world.http.get(world.url("/api/v1/accounts/")))
        .await;
    assert_eq!(status, 200);

    world.stop().await;
}

/// A request refused before its body was read (too large; no token) is answered with
/// `Connection: close`, so a pooling client never sends its next request on the connection the
/// server is about to close: the next request on the same client works. (Without the header the
/// next request could fail with `IncompleteMessage`, as `mentions_are_listed_paged_found_and_triaged`
/// did now and then on a busy machine.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_body_closes_its_connection_and_the_client_goes_on() {
    let world = ApiWorld::start(1120).await;
    let huge = format!("{{\"text\": \"{}\"}}", "x".repeat(2 << 20));
    let first = world.fetch_all().await;
    assert!(first["ok"].as_bool().unwrap_or(false), "{first}");
    let listed: Value = world
        .http
        .get(world.url("/api/v1/mentions/?limit=1"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = listed["mentions"][0]["id"].as_str().unwrap().to_string();
    for _ in 0..3 {
        let response = world
            .http
            .post(world.url(&format!("/api/v1/mentions/{id}/reply")))
            .header("content-type", "application/json")
            .body(huge.clone())
            .send()
            .await
            .expect("the service answers");
        assert_eq!(response.status().as_u16(), 413);
        assert_eq!(
            response
                .headers()
                .get("connection")
                .and_then(|v| v.to_str().ok()),
            Some("close")
        );
        // The next request on the same client goes through.
        let next = world
            .http
            .get(world.url(&format!("/api/v1/mentions/{id}")))
            .send()
            .await
            .expect("the next request is answered");
        assert_eq!(next.status().as_u16(), 200);
    }
    // No token, with a body: refused unread, the connection closed too.
    let anonymous = reqwest::Client::new();
    let response = anonymous
        .post(world.url(&format!("/api/v1/mentions/{id}/reply")))
        .header("content-type", "application/json")
        .body("{\"text\": \"hi\"}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
    assert_eq!(
        response
            .headers()
            .get("connection")
            .and_then(|v| v.to_str().ok()),
        Some("close")
    );
    world.stop().await;
}
