//! The simulator's responses validate against X's own OpenAPI schemas (openapi.json, v2.159):
//! users/me, a mentions page with expansions, a reply and a DM. Validation is done by the
//! jsonschema crate with every `$ref` resolved inside the OpenAPI document, not by hand.

mod common;
#[path = "support/sim.rs"]
mod support;

use jsonschema::{Draft, Validator};
use perch::sim::SimConfig;
use serde_json::{Value, json};
use support::*;

const OPENAPI_URI: &str = "urn:x-api:openapi";

/// A validator for `#/components/schemas/<name>` of the OpenAPI document. OpenAPI 3.0 schemas are
/// a dialect of JSON Schema draft 4 (siblings of `$ref` ignored, `discriminator`/`example` are
/// annotations), so the document is registered as a draft-4 resource and formats are checked.
fn validator(openapi: &Value, schema_name: &str) -> Validator {
    let text = openapi.to_string();
    assert!(
        !text.contains("\"nullable\""),
        "openapi.json uses `nullable`: teach this test to translate it"
    );
    let schema = json!({"$ref": format!("{OPENAPI_URI}#/components/schemas/{schema_name}")});
    jsonschema::options()
        .with_draft(Draft::Draft4)
        .should_validate_formats(true)
        .with_resource(OPENAPI_URI, Draft::Draft4.create_resource(openapi.clone()))
        .build(&schema)
        .unwrap_or_else(|e| panic!("cannot build a validator for {schema_name}: {e}"))
}

/// The 2xx schema name of an operation, read from the document rather than assumed.
fn response_schema(openapi: &Value, operation_id: &str, status: &str) -> String {
    for methods in openapi["paths"].as_object().unwrap().values() {
        for op in methods.as_object().unwrap().values() {
            if op["operationId"] == operation_id {
                let reference =
                    op["responses"][status]["content"]["application/json"]["schema"]["$ref"]
                        .as_str()
                        .unwrap_or_else(|| panic!("{operation_id} has no {status} JSON schema"));
                return reference.rsplit('/').next().unwrap().to_string();
            }
        }
    }
    panic!("operation {operation_id} not in openapi.json");
}

fn assert_valid(openapi: &Value, operation_id: &str, status: &str, body: &Value) {
    let name = response_schema(openapi, operation_id, status);
    let v = validator(openapi, &name);
    let errors: Vec<String> = v
        .iter_errors(body)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    assert!(
        errors.is_empty(),
        "{operation_id} response is not a valid {name}:\n{}\n{body:#}",
        errors.join("\n")
    );
}

#[tokio::test]
async fn simulator_responses_match_the_openapi_schemas() {
    let Some(dir) = common::x_api_dir() else {
        return;
    };
    let openapi = common::read_json(&dir, "openapi.json");

    // The validator is not a rubber stamp: an id that breaks the TweetId pattern fails.
    let broken = json!({"data": {"id": "not-a-number", "text": "x"}});
    assert!(!validator(&openapi, "TweetCreateResponse").is_valid(&broken));

    let sim = start(SimConfig::for_tests(30)).await;
    let http = http();
    let brand = login(&http, &sim, "nimbusnotes").await;
    let id = user_id(&sim, "nimbusnotes");
    // Make sure the page holds every kind of post: escaped text, two accounts, CJK and emoji.
    sim.control()
        .inject_mention(
            "nimbusnotes",
            Some("hanako_yamada"),
            "@nimbusnotes @mara_quill 同期 & <sync> 👨‍👩‍👧‍👦 https://t.co/AbCdEfGhIj",
        )
        .unwrap();

    let me = get(&http, &sim, "/2/users/me?user.fields=created_at,description,profile_image_url,protected,public_metrics,receives_your_dm,verified,verified_type", &brand.access).await;
    assert_eq!(me.status, 200);
    assert_valid(&openapi, "getUsersMe", "200", &me.body);

    let mentions = get(
        &http,
        &sim,
        &format!(
            "/2/users/{id}/mentions?max_results=100\
             &expansions=author_id,in_reply_to_user_id,referenced_tweets.id,referenced_tweets.id.author_id,entities.mentions.username\
             &tweet.fields=created_at,conversation_id,author_id,in_reply_to_user_id,referenced_tweets,public_metrics,entities,edit_history_tweet_ids,possibly_sensitive,reply_settings\
             &user.fields=id,name,username,profile_image_url,created_at,public_metrics"
        ),
        &brand.access,
    )
    .await;
    assert_eq!(mentions.status, 200);
    assert!(
        mentions.body["includes"]["tweets"].is_array(),
        "expansions exercised"
    );
    assert_valid(&openapi, "getUsersMentions", "200", &mentions.body);
    // Nested `$ref`s are really followed: breaking a Tweet's date or an included User fails.
    let page_schema = validator(&openapi, "Get2UsersIdMentionsResponse");
    let mut bad_date = mentions.body.clone();
    bad_date["data"][0]["created_at"] = json!("yesterday");
    assert!(!page_schema.is_valid(&bad_date));
    let mut bad_user = mentions.body.clone();
    bad_user["includes"]["users"][0]
        .as_object_mut()
        .unwrap()
        .remove("username");
    assert!(!page_schema.is_valid(&bad_user));

    // With partial errors beside data, the page is still a valid response.
    sim.control().set_faults(perch::sim::Faults {
        partial_errors: true,
        ..Default::default()
    });
    let partial = get(
        &http,
        &sim,
        &format!("/2/users/{id}/mentions?max_results=100&expansions=author_id,in_reply_to_user_id,referenced_tweets.id&tweet.fields=referenced_tweets,in_reply_to_user_id"),
        &brand.access,
    )
    .await;
    assert!(partial.body["errors"].is_array());
    assert_valid(&openapi, "getUsersMentions", "200", &partial.body);
    sim.control().set_faults(perch::sim::Faults::default());

    let empty = get(
        &http,
        &sim,
        &format!("/2/users/{id}/mentions?since_id={}", ids(&mentions.body)[0]),
        &brand.access,
    )
    .await;
    assert_valid(&openapi, "getUsersMentions", "200", &empty.body);

    let target = mentions.body["data"][0]["id"].as_str().unwrap();
    let reply = post(
        &http,
        &sim,
        "/2/tweets",
        &brand.access,
        &json!({"text": "@hanako_yamada 確認します、少々お待ちください 🙏", "reply": {"in_reply_to_tweet_id": target}}),
    )
    .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_valid(&openapi, "createPosts", "201", &reply.body);

    let author = mentions.body["data"][0]["author_id"].as_str().unwrap();
    let dm = post(
        &http,
        &sim,
        &format!("/2/dm_conversations/with/{author}/messages"),
        &brand.access,
        &json!({"text": "Hi! Could you send us your account email?"}),
    )
    .await;
    assert_eq!(dm.status, 201, "{}", dm.body);
    assert_valid(
        &openapi,
        "createDirectMessagesByParticipantId",
        "201",
        &dm.body,
    );

    // The usage report (app-only Bearer), with and without the daily breakdown, after the reads
    // above were billed.
    let usage = get(
        &http,
        &sim,
        "/2/usage/tweets?days=7&usage.fields=daily_project_usage,project_usage",
        perch::sim::DEMO_APP_BEARER_TOKEN,
    )
    .await;
    assert_eq!(usage.status, 200, "{}", usage.body);
    assert_valid(&openapi, "getUsage", "200", &usage.body);
    assert!(usage.body["data"]["project_usage"].as_u64().unwrap() > 0);
    assert_eq!(
        usage.body["data"]["daily_project_usage"]["usage"]
            .as_array()
            .map(Vec::len),
        Some(7)
    );
    let plain = get(
        &http,
        &sim,
        "/2/usage/tweets",
        perch::sim::DEMO_APP_BEARER_TOKEN,
    )
    .await;
    assert_valid(&openapi, "getUsage", "200", &plain.body);
    // A user's token is not the app's Bearer token.
    let refused = get(&http, &sim, "/2/usage/tweets", &brand.access).await;
    assert_eq!(refused.status, 401);

    // Error bodies match the spec's Problem schema.
    let unauthorized = get(&http, &sim, "/2/users/me", "nope").await;
    let problem = validator(&openapi, "Problem");
    assert!(
        problem.is_valid(&unauthorized.body),
        "{}",
        unauthorized.body
    );
    let invalid = get(
        &http,
        &sim,
        &format!("/2/users/{id}/mentions?max_results=1"),
        &brand.access,
    )
    .await;
    assert!(
        validator(&openapi, "InvalidRequestProblem").is_valid(&invalid.body),
        "{}",
        invalid.body
    );
    sim.shutdown().await;
}

/// OpenAPI 3.0's `nullable: true` as JSON Schema draft 4 says it: `type: [T, "null"]` (a
/// `nullable` without a `type` only loses its `null`, which is stricter, never looser).
fn without_nullable(mut value: Value) -> Value {
    fn walk(v: &mut Value) {
        match v {
            Value::Object(o) => {
                if o.remove("nullable") == Some(Value::Bool(true))
                    && let Some(Value::String(t)) = o.get("type").cloned()
                {
                    o.insert("type".into(), json!([t, "null"]));
                }
                o.values_mut().for_each(walk);
            }
            Value::Array(a) => a.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut value);
    value
}

/// Reads the simulator's Activity stream until the first event line (bounded).
async fn first_stream_event(http: &reqwest::Client, sim: &perch::sim::SimHandle) -> Value {
    let mut response = http
        .get(format!("{}/2/activity/stream", sim.api_base()))
        .bearer_auth(perch::sim::DEMO_APP_BEARER_TOKEN)
        .send()
        .await
        .expect("the stream opens");
    assert_eq!(response.status(), 200);
    let mut buf = Vec::new();
    let mut injected = false;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no event on the stream"
        );
        if !injected && sim.control().stream_connections() > 0 {
            sim.control()
                .inject_mention("nimbusnotes", Some("hanako_yamada"), "streamed & <checked>")
                .unwrap();
            injected = true;
        }
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(1), response.chunk()).await;
        if let Ok(chunk) = chunk {
            buf.extend_from_slice(&chunk.expect("stream reads").expect("stream stays open"));
        }
        while let Some(end) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=end).collect();
            let text = String::from_utf8_lossy(&line).trim().to_string();
            if !text.is_empty() {
                return serde_json::from_str(&text).expect("an event line is JSON");
            }
        }
    }
}

#[tokio::test]
async fn simulator_activity_api_matches_the_openapi_schemas() {
    let Some(dir) = common::x_api_dir() else {
        return;
    };
    // Spec 2.167 (the one that has the Activity API), its OpenAPI 3.0 `nullable` turned into
    // JSON Schema.
    let openapi = without_nullable(common::read_json(&dir, "openapi-latest.json"));
    let sim = start(SimConfig::for_tests(31)).await;
    let http = http();
    let brand = login(&http, &sim, "nimbusnotes").await;
    let id = user_id(&sim, "nimbusnotes");

    // The request perch sends is a valid CreateActivitySubscriptionRequest.
    let request = json!({"event_type": "post.mention.create", "filter": {"user_id": id}, "tag": "perch:test:post.mention.create"});
    assert!(validator(&openapi, "CreateActivitySubscriptionRequest").is_valid(&request));
    let created = post(
        &http,
        &sim,
        "/2/activity/subscriptions",
        &brand.access,
        &request,
    )
    .await;
    assert_eq!(created.status, 200, "{}", created.body);
    assert_valid(&openapi, "createActivitySubscription", "200", &created.body);
    // The auth rules: the app Bearer may not create a private event's subscription; a user
    // token may not list.
    let by_app = post(
        &http,
        &sim,
        "/2/activity/subscriptions",
        perch::sim::DEMO_APP_BEARER_TOKEN,
        &json!({"event_type": "post.mention.create", "filter": {"user_id": id}}),
    )
    .await;
    assert_eq!(by_app.status, 403);
    let by_user = get(&http, &sim, "/2/activity/subscriptions", &brand.access).await;
    assert_eq!(by_user.status, 403);
    // An unknown field is refused, as `additionalProperties: false` says.
    let odd = post(
        &http,
        &sim,
        "/2/activity/subscriptions",
        &brand.access,
        &json!({"event_type": "post.mention.create", "filter": {"user_id": id}, "backfill": 1}),
    )
    .await;
    assert_eq!(odd.status, 400);

    let listed = get(
        &http,
        &sim,
        "/2/activity/subscriptions",
        perch::sim::DEMO_APP_BEARER_TOKEN,
    )
    .await;
    assert_eq!(listed.status, 200);
    assert_valid(&openapi, "getActivitySubscriptions", "200", &listed.body);

    // One event line, in the shape of ActivityStreamResponse, its payload a Post.
    let line = first_stream_event(&http, &sim).await;
    let errors: Vec<String> = validator(&openapi, "ActivityStreamResponse")
        .iter_errors(&line)
        .map(|e| format!("{e} at {}", e.instance_path))
        .collect();
    let payload_errors: Vec<String> = validator(&openapi, "Post")
        .iter_errors(&line["data"]["payload"])
        .map(|e| format!("{e} at {}", e.instance_path))
        .collect();
    assert!(
        errors.is_empty()
            || payload_errors.is_empty() && errors.iter().all(|e| e.contains("/data/payload")),
        "the stream line is not a valid ActivityStreamResponse:\n{}\n{line:#}",
        errors.join("\n")
    );
    assert!(
        payload_errors.is_empty(),
        "the payload is not a valid Post:\n{}\n{line:#}",
        payload_errors.join("\n")
    );
    assert_eq!(line["data"]["event_type"], "post.mention.create");
    // Self-serve apps get 400 for the recovery parameters.
    let backfill = get(
        &http,
        &sim,
        "/2/activity/stream?backfill_minutes=2",
        perch::sim::DEMO_APP_BEARER_TOKEN,
    )
    .await;
    assert_eq!(backfill.status, 400);

    let sub_id = created.body["data"]["subscription"]["subscription_id"]
        .as_str()
        .unwrap()
        .to_string();
    let response = http
        .delete(format!(
            "{}/2/activity/subscriptions/{sub_id}",
            sim.api_base()
        ))
        .bearer_auth(perch::sim::DEMO_APP_BEARER_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let deleted: Value = response.json().await.unwrap();
    assert_valid(&openapi, "deleteActivitySubscription", "200", &deleted);
    sim.shutdown().await;
}
