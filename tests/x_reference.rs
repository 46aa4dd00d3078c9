//! The X client (and the OAuth token calls) against every file of the X API reference material:
//! `recorded/` (real exchanges) and `examples/` (real, spec-shaped and observed cases). Each case's
//! status, headers and body are served from a local replay server on 127.0.0.1, so the client
//! reads exactly those bytes over real HTTP; the test asserts what the client makes of them and
//! what it sent. Facts checked here come from the file named in each assertion.

mod common;

use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::{Duration, Utc};
use perch::auth::{self, AuthError, OAuthSettings};
use perch::domain::{ReferenceKind, Secret, Sender};
use perch::x::{MentionsPage, XClient, XError, XResponse};
use serde_json::Value;

// ---- the replay server ---------------------------------------------------------------------

#[derive(Debug)]
struct Seen {
    method: String,
    path: String,
    query: String,
    headers: HeaderMap,
    body: Vec<u8>,
}

#[derive(Clone)]
struct Replay {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

async fn replay_handler(State(replay): State<Replay>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20)
        .await
        .map(|b| b.to_vec())
        .unwrap_or_default();
    replay.seen.lock().unwrap().push(Seen {
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().unwrap_or_default().to_string(),
        headers: parts.headers,
        body,
    });
    let mut response = Response::builder().status(StatusCode::from_u16(replay.status).unwrap());
    for (name, value) in &replay.headers {
        response = response.header(name, value);
    }
    response.body(Body::from(replay.body.clone())).unwrap()
}

/// Serves one recorded response to every request; returns the base URL and what was received.
async fn serve(
    status: u16,
    headers: &Value,
    body: Option<&Value>,
) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let mut header_list: Vec<(String, String)> = headers
        .as_object()
        .map(|h| {
            h.iter()
                .filter(|(k, _)| !k.eq_ignore_ascii_case("content-length"))
                .map(|(k, v)| {
                    // Some example headers carry a note: "application/json (unverified)".
                    let v = v.as_str().unwrap_or_default();
                    let v = v.split(" (").next().unwrap_or(v).trim();
                    (k.to_ascii_lowercase(), v.to_string())
                })
                .collect()
        })
        .unwrap_or_default();
    if !header_list.iter().any(|(k, _)| k == "content-type") {
        header_list.push(("content-type".into(), "application/json".into()));
    }
    let body = body
        .map(|b| serde_json::to_vec(b).unwrap())
        .unwrap_or_default();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let replay = Replay {
        status,
        headers: header_list,
        body,
        seen: seen.clone(),
    };
    let app = Router::new().fallback(replay_handler).with_state(replay);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}"), seen)
}

// ---- driving the client ----------------------------------------------------------------------

const TOKEN: &str = "test-access-token";

#[derive(Clone, Debug, PartialEq)]
enum Call {
    Me,
    Mentions { user_id: String },
    Reply { to: String },
    Dm { participant: String },
}

#[derive(Debug)]
enum Outcome {
    Me(perch::x::Me),
    Page(MentionsPage),
    Posted(perch::x::PostedTweet),
    Dm(perch::x::SentDm),
}

/// Which client call a request of the reference material is, from its method and path.
fn call_for(method: &str, path: &str, json: Option<&Value>) -> Option<Call> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (method, segments.as_slice()) {
        ("GET", ["2", "users", "me"]) => Some(Call::Me),
        ("GET", ["2", "users", id, "mentions"]) => Some(Call::Mentions {
            user_id: id.to_string(),
        }),
        ("POST", ["2", "tweets"]) => Some(Call::Reply {
            to: json
                .and_then(|j| j.pointer("/reply/in_reply_to_tweet_id"))
                .and_then(Value::as_str)
                .unwrap_or("1456012973835788292")
                .to_string(),
        }),
        ("POST", ["2", "dm_conversations", "with", id, "messages"]) => Some(Call::Dm {
            participant: id.to_string(),
        }),
        _ => None,
    }
}

async fn run(call: &Call, base: &str, rate_limit_check: &Value) -> Result<Outcome, XError> {
    let client = XClient::new(base);
    let token = Secret::new(TOKEN);
    let check = |rl: &perch::x::RateLimit| {
        if let Some(remaining) = rate_limit_check
            .get("x-rate-limit-remaining")
            .and_then(Value::as_str)
        {
            let window = rl.window.expect("x-rate-limit-* headers were served");
            assert_eq!(window.remaining.to_string(), remaining);
        }
    };
    fn rl<T>(r: &XResponse<T>) -> &perch::x::RateLimit {
        &r.rate_limit
    }
    match call {
        Call::Me => client.users_me(&token).await.map(|r| {
            check(rl(&r));
            Outcome::Me(r.data)
        }),
        Call::Mentions { user_id } => {
            client
                .mentions_page(&token, user_id, None, None)
                .await
                .map(|r| {
                    check(rl(&r));
                    Outcome::Page(r.data)
                })
        }
        Call::Reply { to } => client
            .post_reply(&token, "a reply with & and <3", to)
            .await
            .map(|r| {
                check(rl(&r));
                Outcome::Posted(r.data)
            }),
        Call::Dm { participant } => client.send_dm(&token, participant, "a DM").await.map(|r| {
            check(rl(&r));
            Outcome::Dm(r.data)
        }),
    }
}

/// The classification every status must get, whatever the body (CONTRACT.md §7).
fn assert_status_maps(status: u16, result: &Result<Outcome, XError>, what: &str) {
    let ok = match (status, result) {
        (200..=299, Ok(_)) => true,
        (401, Err(XError::Unauthorized { .. })) => true,
        (402, Err(XError::CreditsDepleted { .. })) => true,
        (403, Err(XError::Forbidden { .. })) => true,
        (429, Err(XError::RateLimited { .. })) => true,
        (500..=599, Err(XError::Server { .. })) => true,
        (400 | 404, Err(XError::InvalidRequest { status: s, .. })) => *s == status,
        _ => false,
    };
    assert!(ok, "{what}: status {status} became {result:?}");
}

/// What the client sent for `call`: the path, the bearer token, the user agent, the parameters.
fn assert_request(call: &Call, seen: &Seen) {
    assert_eq!(
        seen.headers
            .get("authorization")
            .and_then(|v| v.to_str().ok()),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    let agent = seen.headers.get("user-agent").and_then(|v| v.to_str().ok());
    assert!(agent.is_some_and(|a| a.starts_with("perch/")), "{agent:?}");
    let query: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(seen.query.as_bytes())
            .into_owned()
            .collect();
    let json: Value = serde_json::from_slice(&seen.body).unwrap_or(Value::Null);
    match call {
        Call::Me => {
            assert_eq!(
                (seen.method.as_str(), seen.path.as_str()),
                ("GET", "/2/users/me")
            );
            assert_eq!(query["user.fields"], "name,username,profile_image_url");
        }
        Call::Mentions { user_id } => {
            assert_eq!(seen.method, "GET");
            assert_eq!(seen.path, format!("/2/users/{user_id}/mentions"));
            assert_eq!(query["max_results"], "100");
            assert_eq!(
                query["expansions"],
                "author_id,in_reply_to_user_id,referenced_tweets.id"
            );
            assert_eq!(
                query["tweet.fields"],
                "created_at,conversation_id,author_id,in_reply_to_user_id,referenced_tweets,entities"
            );
            assert_eq!(query["user.fields"], "name,username,profile_image_url");
            assert!(!query.contains_key("since_id") && !query.contains_key("pagination_token"));
        }
        Call::Reply { to } => {
            assert_eq!(
                (seen.method.as_str(), seen.path.as_str()),
                ("POST", "/2/tweets")
            );
            assert_eq!(
                json,
                serde_json::json!({"text": "a reply with & and <3", "reply": {"in_reply_to_tweet_id": to}})
            );
        }
        Call::Dm { participant } => {
            assert_eq!(seen.method, "POST");
            assert_eq!(
                seen.path,
                format!("/2/dm_conversations/with/{participant}/messages")
            );
            assert_eq!(json, serde_json::json!({"text": "a DM"}));
        }
    }
}

fn url_path(url: &str) -> String {
    url::Url::parse(url)
        .map(|u| u.path().to_string())
        .unwrap_or_default()
}

// ---- recorded/ -------------------------------------------------------------------------------

#[tokio::test]
async fn every_recorded_exchange_is_read_as_x_sent_it() {
    let Some(dir) = common::x_api_dir() else {
        return;
    };
    let mut files: Vec<_> = std::fs::read_dir(dir.join("recorded"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "recorded/ holds no exchanges");
    let mut driven = 0;
    for file in files {
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        let exchanges = common::read_json(&dir, &format!("recorded/{name}"));
        for (i, exchange) in exchanges
            .as_array()
            .expect("an array of exchanges")
            .iter()
            .enumerate()
        {
            let what = format!("recorded/{name}[{i}]");
            let request = &exchange["request"];
            let response = &exchange["response"];
            let status = response["status"].as_u64().unwrap() as u16;
            let method = request["method"].as_str().unwrap();
            let path = request["path"].as_str().unwrap();
            let Some(call) = call_for(method, path, request.get("json")) else {
                // Not an endpoint perch calls (DELETE, group DMs, DM lookups): its rate-limit
                // headers must still read, since the client reads them on every response.
                let mut headers = reqwest::header::HeaderMap::new();
                for (k, v) in response["headers"].as_object().unwrap() {
                    headers.insert(
                        reqwest::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                        v.as_str().unwrap().parse().unwrap(),
                    );
                }
                let rl = perch::x::parse_rate_limit(&headers);
                assert!(rl.window.is_some(), "{what}: rate-limit headers unread");
                continue;
            };
            let (base, seen) = serve(status, &response["headers"], response.get("body")).await;
            let result = run(&call, &base, &response["headers"]).await;
            assert_status_maps(status, &result, &what);
            assert_request(&call, &seen.lock().unwrap()[0]);
            driven += 1;
            match (name.as_str(), result.unwrap()) {
                ("users_me.json", Outcome::Me(me)) => {
                    assert_eq!(me.id, "1072250532645998596");
                    assert_eq!(me.username, "TweepyDev");
                    assert_eq!(me.name, "Tweepy Testing");
                    assert_eq!(me.profile_image_url, None);
                }
                ("users_mentions.json", Outcome::Page(page)) => {
                    // The recorded page was fetched without expansions: every post is kept, with
                    // the sender unknown (README.md "Notes that bite").
                    assert_eq!(page.posts.len(), 10);
                    assert!(page.posts.iter().all(|p| p.author == Sender::default()));
                    assert_eq!(
                        page.next_token.as_deref(),
                        Some("7140dibdnow9c7btw423i3sy3u5zupmkcpofxcsmxj48j")
                    );
                    assert_eq!(page.newest_id, Some(1578516295611748353));
                    assert_eq!(page.oldest_id, Some(1578516107798884353));
                    assert_eq!(page.result_count, 10);
                    assert!(page.skipped_items.is_empty() && page.partial_errors.is_empty());
                    // Newest first, as X orders them.
                    assert!(page.posts.windows(2).all(|w| w[0].tweet_id > w[1].tweet_id));
                    assert!(page.posts[5].text.contains('🤨'));
                }
                ("create_tweet.json", Outcome::Posted(p)) => {
                    assert_eq!(
                        (p.id.as_str(), p.text.as_str()),
                        ("1456012973835788293", "Test Tweet")
                    );
                }
                ("dm_send.json", Outcome::Dm(dm)) => {
                    assert_eq!(dm.dm_event_id, "1585800613253812228");
                    assert_eq!(
                        dm.dm_conversation_id,
                        "750362064426721281-1072250532645998596"
                    );
                }
                (other, outcome) => panic!("{other}: no assertion for {outcome:?}"),
            }
        }
    }
    assert!(
        driven >= 4,
        "only {driven} recorded exchanges were perch calls"
    );
}

// ---- examples/ -------------------------------------------------------------------------------

/// Every file in examples/ must be covered by a test below, so that a new one is not missed.
#[test]
fn every_example_file_is_covered() {
    let Some(dir) = common::x_api_dir() else {
        return;
    };
    let covered = [
        "activity-events.json",
        "dm-send.json",
        "errors.json",
        "mentions.json",
        "oauth2.json",
        "post-tweet-reply.json",
        "users-me.json",
    ];
    for entry in std::fs::read_dir(dir.join("examples")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().to_string();
        assert!(
            covered.contains(&name.as_str()),
            "examples/{name} is not tested"
        );
    }
}

/// Serves one example case to `call` and checks the status mapping; returns the outcome.
async fn drive_case(
    dir: &Path,
    file: &str,
    case: &Value,
    default_call: &Call,
) -> (String, Result<Outcome, XError>) {
    let _ = dir;
    let name = case["name"].as_str().unwrap_or("?").to_string();
    let response = case.get("response").unwrap_or(case);
    let status = response["status"].as_u64().unwrap() as u16;
    let body = response
        .get("body")
        .or_else(|| response.get("body_fragment"));
    let call = case
        .get("request")
        .and_then(|r| {
            call_for(
                r["method"].as_str()?,
                &url_path(r["url"].as_str()?),
                r.get("body"),
            )
        })
        .unwrap_or_else(|| default_call.clone());
    let headers = response.get("headers").cloned().unwrap_or(Value::Null);
    let (base, seen) = serve(status, &headers, body).await;
    let result = run(&call, &base, &headers).await;
    let what = format!("examples/{file} case {name:?}");
    assert_status_maps(status, &result, &what);
    assert_request(&call, &seen.lock().unwrap()[0]);
    (name, result)
}

fn cases(dir: &Path, file: &str) -> Vec<Value> {
    common::read_json(dir, &format!("examples/{file}"))["cases"]
        .as_array()
        .unwrap()
        .clone()
}

fn forbidden_detail(result: &Result<Outcome, XError>) -> String {
    match result {
        Err(XError::Forbidden { detail, .. }) => detail.clone(),
        other => panic!("expected a 403, got {other:?}"),
    }
}

#[tokio::test]
async fn users_me_examples() {
    let Some(dir) = common::x_api_dir() else {
        return;
    };
    for case in cases(&dir, "users-me.json") {
        let (name, result) = drive_case(&dir, "users-me.json", &case, &Call::Me).await;
        match result {
            Ok(Outcome::Me(me)) => {
                assert_eq!(me.id, "1072250532645998596", "{name}");
                assert_eq!(me.username, "TweepyDev", "{name}");
                if name.contains("with-user-fields") {
                    assert!(me.profile_image_url.unwrap().ends_with("_normal.jpg"));
                }
            }
            Err(XError::Unauthorized { .. }) => assert!(name.contains("expired"), "{name}"),
            other => panic!("{name}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn mentions_examples() {
    let Some(dir) = common::x_api_dir() else {
        return;
    };
    let default = Call::Mentions {
        user_id: "1072250532645998596".into(),
    };
    let mut seen_names = Vec::new();
    for case in cases(&dir, "mentions.json") {
        let (name, result) = drive_case(&dir, "mentions.json", &case, &default).await;
        seen_names.push(name.clone());
        if name.contains("REAL") {
            let Ok(Outcome::Page(page)) = result else {
                panic!("{name}: {result:?}")
            };
            assert_eq!(page.posts.len(), 10);
            assert!(page.posts.iter().all(|p| p.author.handle() == "@unknown"));
            assert_eq!(
                page.next_token.as_deref(),
                Some("7140dibdnow9c7btw423i3sy3u5zupmkcpofxcsmxj48j")
            );
        } else if name.contains("expansions") {
            let Ok(Outcome::Page(page)) = result else {
                panic!("{name}: {result:?}")
            };
            // Authors joined from includes.users, posts kept beside the partial error.
            assert_eq!(page.posts.len(), 3);
            assert_eq!(page.partial_errors.len(), 1);
            assert!(
                page.partial_errors[0].contains("2125499242357743616"),
                "{:?}",
                page.partial_errors
            );
            let first = &page.posts[0];
            assert_eq!(first.tweet_id, 2125525178881044481);
            assert_eq!(first.author.username.as_deref(), Some("carol_codes"));
            assert_eq!(first.author.display_name.as_deref(), Some("Carol"));
            assert!(
                first
                    .author
                    .profile_image_url
                    .as_deref()
                    .unwrap()
                    .ends_with("_normal.jpg")
            );
            assert_eq!(
                first.created_at.unwrap().to_rfc3339(),
                "2026-11-25T09:41:07+00:00"
            );
            assert_eq!(first.referenced_posts.len(), 1);
            let quoted = &first.referenced_posts[0];
            assert_eq!(quoted.kind, ReferenceKind::Quoted);
            assert_eq!(
                quoted.text.as_deref(),
                Some("Timelines endpoints now return edit history by default.")
            );
            // The quoted post's author (2244994945) is not in includes.users.
            assert_eq!(quoted.author_username, None);
            let second = &page.posts[1];
            assert_eq!(second.author.username.as_deref(), Some("bob_builds"));
            assert_eq!(
                second.in_reply_to_user_id.as_deref(),
                Some("1072250532645998596")
            );
            assert_eq!(second.referenced_posts[0].kind, ReferenceKind::RepliedTo);
            assert_eq!(
                second.referenced_posts[0].author_username.as_deref(),
                Some("TweepyDev")
            );
            assert!(second.text.ends_with('🎉'));
            // The third replies to a post X could not find: kept, reference without text.
            let third = &page.posts[2];
            assert_eq!(
                third.text,
                "@bob_builds @TweepyDev the parent post is gone, so the Q&A continues here"
            );
            assert_eq!(third.referenced_posts[0].tweet_id, "2125499242357743616");
            assert_eq!(third.referenced_posts[0].text, None);
            assert!(!page.posts.iter().any(|p| p.is_retweet));
            assert_eq!(page.newest_id, Some(2125525178881044481));
            assert_eq!(
                page.next_token.as_deref(),
                Some("7140dibdnow9c7btw4b0pk9u1b6jvf6lfvhz1hrrqc3j1")
            );
            // What to_mention makes of a joined post.
            let account = perch::domain::Account::new(
                "1072250532645998596".into(),
                "TweepyDev".into(),
                "Tweepy Testing".into(),
                None,
                Utc::now(),
            );
            let m = perch::x::to_mention(first, &account, Utc::now());
            assert_eq!(m.sender.handle(), "@carol_codes");
            assert_eq!(m.sent_to.account_id, account.id);
            assert_eq!(m.timestamp, first.created_at.unwrap());
            assert_eq!(m.referenced_posts, first.referenced_posts);
        } else if name.contains("since_id") {
            let Ok(Outcome::Page(page)) = result else {
                panic!("{name}: {result:?}")
            };
            assert_eq!(page, MentionsPage::default());
        } else if name.contains("max_results") {
            let Err(XError::InvalidRequest {
                status: 400,
                detail,
            }) = result
            else {
                panic!("{name}: {result:?}")
            };
            assert!(detail.contains("is not between 5 and 100"), "{detail}");
        } else {
            panic!("mentions.json has a new case {name:?}: teach this test what it means");
        }
    }
    assert_eq!(seen_names.len(), 4, "{seen_names:?}");
}

#[tokio::test]
async fn post_reply_examples() {
    let Some(dir) = common::x_api_dir() else {
        return;
    };
    let default = Call::Reply {
        to: "2125525178881044481".into(),
    };
    for case in cases(&dir, "post-tweet-reply.json") {
        let (name, result) = drive_case(&dir, "post-tweet-reply.json", &case, &default).await;
        let expected_detail = case
            .pointer("/response/body/detail")
            .and_then(Value::as_str);
        match result {
            Ok(Outcome::Posted(p)) => {
                let expected = case
                    .pointer("/response/body/data/id")
                    .and_then(Value::as_str)
                    .unwrap();
                assert_eq!(p.id, expected, "{name}");
            }
            Err(XError::Forbidden {
                ref detail,
                ref problem_type,
                ..
            }) => {
                assert_eq!(Some(detail.as_str()), expected_detail, "{name}");
                assert_eq!(*problem_type, None, "{name}: about:blank has no type");
            }
            Err(XError::InvalidRequest {
                status: 400,
                ref detail,
            }) => {
                assert!(
                    detail.contains("Your Tweet text is too long"),
                    "{name}: {detail}"
                );
            }
            other => panic!("{name}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn dm_examples() {
    let Some(dir) = common::x_api_dir() else {
        return;
    };
    let default = Call::Dm {
        participant: "750362064426721281".into(),
    };
    for case in cases(&dir, "dm-send.json") {
        let (name, result) = drive_case(&dir, "dm-send.json", &case, &default).await;
        match result {
            Ok(Outcome::Dm(dm)) => {
                assert_eq!(dm.dm_event_id, "1585800613253812228");
                assert_eq!(
                    dm.dm_conversation_id,
                    "750362064426721281-1072250532645998596"
                );
            }
            Err(_) => {
                let detail = forbidden_detail(&result);
                let expected = case
                    .pointer("/response/body/detail")
                    .and_then(Value::as_str);
                assert_eq!(Some(detail.as_str()), expected, "{name}");
            }
            other => panic!("{name}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn error_examples_map_to_the_right_variant() {
    let Some(dir) = common::x_api_dir() else {
        return;
    };
    let default = Call::Mentions {
        user_id: "1072250532645998596".into(),
    };
    for case in cases(&dir, "errors.json") {
        let (name, result) = drive_case(&dir, "errors.json", &case, &default).await;
        let status = case["status"].as_u64().unwrap();
        match (status, &result) {
            (400, Err(XError::InvalidRequest { detail, .. })) => {
                assert!(
                    detail.contains("The `since_id` query parameter value [abc] is not valid"),
                    "{detail}"
                );
            }
            (401, Err(XError::Unauthorized { .. })) => {}
            (402, Err(XError::CreditsDepleted { detail })) => {
                assert!(detail.contains("does not have any credits"), "{detail}");
            }
            (
                403,
                Err(XError::Forbidden {
                    detail,
                    problem_type,
                    reason,
                    ..
                }),
            ) => {
                if name.contains("not enrolled") {
                    assert_eq!(problem_type.as_deref(), Some("client-forbidden"));
                    assert_eq!(reason.as_deref(), Some("client-not-enrolled"));
                    assert!(detail.contains("approved developer account"), "{detail}");
                } else if name.contains("app-only") {
                    assert_eq!(problem_type.as_deref(), Some("unsupported-authentication"));
                    assert!(detail.contains("Application-Only is forbidden"), "{detail}");
                } else {
                    assert_eq!(
                        (detail.as_str(), problem_type.as_deref()),
                        ("Forbidden", None)
                    );
                }
            }
            (
                404,
                Err(XError::InvalidRequest {
                    status: 404,
                    detail,
                }),
            ) => {
                assert!(detail.contains("Could not find tweet"), "{detail}");
            }
            (429, Err(XError::RateLimited { reset, detail, .. })) => {
                let reset = reset.map(|r| r.timestamp());
                if name.contains("24h") {
                    // The spent budget is the 24-hour one, although the window has room.
                    assert_eq!(reset, Some(1795771200), "{name}");
                } else if name.contains("window") {
                    assert_eq!(reset, Some(1795695300), "{name}");
                } else if name.contains("usage cap") {
                    assert_eq!(reset, None);
                    assert!(detail.contains("Monthly product cap"), "{detail}");
                } else if name.contains("legacy") {
                    assert_eq!(reset, None);
                    assert!(
                        detail.contains("Rate limit exceeded") && detail.contains("88"),
                        "{detail}"
                    );
                } else {
                    panic!("errors.json has a new 429 case {name:?}");
                }
            }
            (
                503,
                Err(XError::Server {
                    status: 503,
                    detail,
                }),
            ) => {
                assert_eq!(detail, "Service Unavailable");
            }
            (200, Ok(Outcome::Page(page))) => {
                // Only a partial error: nothing retrievable, the error kept as a line.
                assert!(page.posts.is_empty());
                assert_eq!(page.partial_errors.len(), 1);
                assert!(
                    page.partial_errors[0].contains("not authorized to see the user"),
                    "{:?}",
                    page.partial_errors
                );
            }
            _ => panic!("errors.json case {name:?} (status {status}) became {result:?}"),
        }
    }
}

#[tokio::test]
async fn a_2xx_body_that_is_not_json_is_malformed_with_the_transaction_id() {
    let headers = serde_json::json!({"content-type": "text/html", "x-transaction-id": "abc123"});
    let (base, _) = serve(
        200,
        &headers,
        Some(&Value::String("<html>oops</html>".into())),
    )
    .await;
    let client = XClient::new(&base);
    match client
        .mentions_page(&Secret::new(TOKEN), "1", None, None)
        .await
    {
        Err(XError::Malformed { transaction_id, .. }) => {
            assert_eq!(transaction_id.as_deref(), Some("abc123"));
        }
        other => panic!("{other:?}"),
    }
}

// ---- examples/activity-events.json --------------------------------------------------------

/// Each stream case's body is one line of the stream (ACTIVITY.md §4.3); it goes through the
/// stream parser as the bytes of that line, and the subscription case through its body parser.
#[test]
fn activity_events_examples() {
    use perch::x::activity::{
        ActivityKind, StreamLine, parse_stream_line, parse_subscription_created,
    };
    let Some(dir) = common::x_api_dir() else {
        return;
    };
    let all = cases(&dir, "activity-events.json");
    let mut seen_kinds = Vec::new();
    for case in &all {
        let name = case["name"].as_str().unwrap();
        let request = &case["request"];
        let body = &case["response"]["body"];
        let line = serde_json::to_vec(body).unwrap();
        let url = request["url"].as_str().unwrap();
        if url.ends_with("/2/activity/subscriptions") {
            // Subscriptions are created with the watched account's user token (ACTIVITY.md §3.1).
            assert_eq!(request["method"], "POST", "{name}");
            let sub = parse_subscription_created(&line).unwrap_or_else(|e| panic!("{name}: {e}"));
            let expected = &body["data"]["subscription"];
            assert_eq!(
                sub.subscription_id,
                expected["subscription_id"].as_str().unwrap()
            );
            assert_eq!(sub.event_type, expected["event_type"].as_str().unwrap());
            assert_eq!(
                sub.user_id.as_deref(),
                expected["filter"]["user_id"].as_str()
            );
            assert_eq!(sub.tag.as_deref(), expected["tag"].as_str());
            seen_kinds.push("subscription".to_string());
            continue;
        }
        assert!(url.ends_with("/2/activity/stream"), "{name}: {url}");
        // The same line with the stream's CRLF framing reads the same.
        let mut framed = line.clone();
        framed.extend_from_slice(b"\r\n");
        assert_eq!(
            parse_stream_line(&framed),
            parse_stream_line(&line),
            "{name}"
        );
        match parse_stream_line(&line) {
            StreamLine::Event(event) => {
                let data = &body["data"];
                assert_eq!(
                    event.event_uuid,
                    data["event_uuid"].as_str().unwrap(),
                    "{name}"
                );
                assert_eq!(event.kind.name(), data["event_type"].as_str().unwrap());
                assert_eq!(event.user_id.as_deref(), data["filter"]["user_id"].as_str());
                assert_eq!(event.tag.as_deref(), data["tag"].as_str());
                assert!(event.unreadable.is_none(), "{name}: {:?}", event.unreadable);
                let payload = &data["payload"];
                match event.kind {
                    ActivityKind::MentionCreate
                    | ActivityKind::ReplyCreate
                    | ActivityKind::QuoteCreate => {
                        let post = event.post.as_ref().expect("a post event has its post");
                        assert_eq!(post.tweet_id.to_string(), payload["id"].as_str().unwrap());
                        assert_eq!(post.text, payload["text"].as_str().unwrap(), "{name}");
                        assert_eq!(
                            post.author.twitter_id.as_deref(),
                            payload["author_id"].as_str()
                        );
                        assert!(post.created_at.is_some(), "{name}");
                        // The author's profile comes from includes.users when X sent it.
                        let included_author = data["includes"]["users"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .find(|u| u["id"] == payload["author_id"]);
                        assert_eq!(
                            post.author.username.as_deref(),
                            included_author.and_then(|u| u["username"].as_str()),
                            "{name}"
                        );
                        let references =
                            payload["referenced_tweets"].as_array().map_or(0, Vec::len);
                        assert_eq!(post.referenced_posts.len(), references, "{name}");
                    }
                    ActivityKind::DmReceived => {
                        let dm = event.dm.as_ref().expect("a dm.received has its DM");
                        let wire = &payload["direct_message_events"][0];
                        assert_eq!(dm.event_id, wire["id"].as_str().unwrap());
                        assert_eq!(
                            dm.text,
                            wire["message_create"]["message_data"]["text"]
                                .as_str()
                                .unwrap()
                        );
                        assert_eq!(
                            dm.sender_id,
                            wire["message_create"]["sender_id"].as_str().unwrap()
                        );
                        assert_eq!(dm.sender_username.as_deref(), Some("OtherUser"));
                        // created_timestamp is epoch milliseconds as a string (§5.3).
                        assert_eq!(
                            dm.created_at_ms.map(|ms| ms.to_string()).as_deref(),
                            wire["created_timestamp"].as_str()
                        );
                    }
                    ActivityKind::Other(ref other) => panic!("{name}: unexpected kind {other}"),
                }
                seen_kinds.push(event.kind.name().to_string());
            }
            StreamLine::Disconnect { kind, detail } => {
                let problem = &body["errors"][0];
                assert_eq!(kind, problem["disconnect_type"].as_str().unwrap(), "{name}");
                assert_eq!(detail, problem["detail"].as_str().unwrap());
                seen_kinds.push("disconnect".to_string());
            }
            other => panic!("{name}: read as {other:?}"),
        }
    }
    for kind in [
        "post.mention.create",
        "post.reply.create",
        "post.quote.create",
        "dm.received",
        "disconnect",
        "subscription",
    ] {
        assert!(
            seen_kinds.iter().any(|k| k == kind),
            "activity-events.json has no {kind} case any more: {seen_kinds:?}"
        );
    }
}

// ---- examples/oauth2.json ------------------------------------------------------------------

fn oauth_settings(token_url: &str, secret: Option<&str>) -> OAuthSettings {
    OAuthSettings {
        client_id: "rG9n6402A3dbUJKzXTNX4oWHJ".into(),
        client_secret: secret.map(Secret::new),
        authorize_url: "https://x.com/i/oauth2/authorize".into(),
        token_url: format!("{token_url}/2/oauth2/token"),
        redirect_uri: "http://127.0.0.1:8080/callback".into(),
    }
}

fn form_of(seen: &Seen) -> std::collections::HashMap<String, String> {
    url::form_urlencoded::parse(&seen.body)
        .into_owned()
        .collect()
}

#[tokio::test]
async fn oauth2_examples() {
    let Some(dir) = common::x_api_dir() else {
        return;
    };
    let all = cases(&dir, "oauth2.json");
    let find = |part: &str| {
        all.iter()
            .find(|c| c["name"].as_str().unwrap().contains(part))
            .unwrap_or_else(|| panic!("oauth2.json has no case about {part:?}"))
            .clone()
    };
    let names: Vec<String> = all
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect();
    let known = [
        "authorize redirect",
        "authorization_code grant",
        "refresh_token grant",
        "confidential client: same forms",
        "bad/expired/reused authorization code",
        "spent/revoked/unknown refresh token",
        "confidential client without Basic header",
        "revoke",
    ];
    for name in &names {
        assert!(
            known.iter().any(|k| name.contains(k)),
            "oauth2.json has a new case {name:?}"
        );
    }

    // The browser redirect: the code comes out of the Location, with the state checked.
    let redirect = find("authorize redirect");
    let location = redirect
        .pointer("/response/headers/location")
        .and_then(Value::as_str)
        .unwrap();
    assert_eq!(
        auth::parse_callback(location, "Yq1b2xQ0").unwrap(),
        "VGNibzFWSWREZm01bjN1N3dicWlNUG1oa2xRRVNNdmVHelJGY2hPWGxNd2dxOjE2MjIxNjA4MjU4MjU6MToxOmFjOjE"
    );
    assert!(matches!(
        auth::parse_callback(location, "another"),
        Err(AuthError::StateMismatch)
    ));

    // Code exchange, public client: client_id in the form, no Authorization header.
    let grant = find("authorization_code grant");
    let (base, seen) = serve(
        200,
        &grant["response"]["headers"],
        grant["response"].get("body"),
    )
    .await;
    let settings = oauth_settings(&base, None);
    let login = auth::start_login(&settings).unwrap();
    let before = Utc::now();
    let tokens = auth::exchange_code(&settings, &login, "the-code")
        .await
        .unwrap();
    let body = &grant["response"]["body"];
    assert_eq!(
        tokens.access_token.expose(),
        body["access_token"].as_str().unwrap()
    );
    assert_eq!(
        tokens.refresh_token.as_ref().unwrap().expose(),
        body["refresh_token"].as_str().unwrap()
    );
    assert!(tokens.expires_at >= before + Duration::seconds(7200));
    assert!(tokens.expires_at <= Utc::now() + Duration::seconds(7200));
    assert_eq!(tokens.scope, auth::SCOPES);
    {
        let seen = seen.lock().unwrap();
        assert_eq!(
            (seen[0].method.as_str(), seen[0].path.as_str()),
            ("POST", "/2/oauth2/token")
        );
        assert!(seen[0].headers.get("authorization").is_none());
        let form = form_of(&seen[0]);
        let expected_form = grant["request"]["form"].as_object().unwrap();
        for key in expected_form.keys() {
            assert!(
                form.contains_key(key),
                "the code exchange lacks {key}: {form:?}"
            );
        }
        assert_eq!(form["grant_type"], "authorization_code");
        assert_eq!(form["code"], "the-code");
        assert_eq!(form["client_id"], "rG9n6402A3dbUJKzXTNX4oWHJ");
        assert_eq!(form["redirect_uri"], "http://127.0.0.1:8080/callback");
        assert!(form["code_verifier"].len() >= 43);
    }

    // Refresh, public client: a new refresh token replaces the old one.
    let refresh = find("refresh_token grant");
    let (base, seen) = serve(200, &Value::Null, refresh["response"].get("body")).await;
    let old = Secret::new(
        refresh["request"]["form"]["refresh_token"]
            .as_str()
            .unwrap(),
    );
    let tokens = auth::refresh_tokens(&oauth_settings(&base, None), &old)
        .await
        .unwrap();
    assert_eq!(
        tokens.refresh_token.as_ref().unwrap().expose(),
        refresh["response"]["body"]["refresh_token"]
            .as_str()
            .unwrap()
    );
    assert_ne!(tokens.refresh_token.as_ref(), Some(&old));
    {
        let seen = seen.lock().unwrap();
        let form = form_of(&seen[0]);
        assert_eq!(form["grant_type"], "refresh_token");
        assert_eq!(form["refresh_token"], old.expose());
        assert_eq!(form["client_id"], "rG9n6402A3dbUJKzXTNX4oWHJ");
    }

    // Confidential client: HTTP Basic, the secret never in the form.
    let _confidential = find("confidential client: same forms");
    let (base, seen) = serve(200, &Value::Null, refresh["response"].get("body")).await;
    auth::refresh_tokens(&oauth_settings(&base, Some("s3cr3t")), &old)
        .await
        .unwrap();
    {
        let seen = seen.lock().unwrap();
        use base64::Engine;
        let expected = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("rG9n6402A3dbUJKzXTNX4oWHJ:s3cr3t")
        );
        assert_eq!(
            seen[0]
                .headers
                .get("authorization")
                .unwrap()
                .to_str()
                .unwrap(),
            expected
        );
        let form = form_of(&seen[0]);
        assert!(!form.contains_key("client_secret"), "{form:?}");
    }

    // A bad code, a spent refresh token, a confidential client without Basic.
    let bad_code = find("bad/expired/reused authorization code");
    let (base, _) = serve(400, &Value::Null, bad_code["response"].get("body")).await;
    let settings = oauth_settings(&base, None);
    let login = auth::start_login(&settings).unwrap();
    match auth::exchange_code(&settings, &login, "stale").await {
        Err(AuthError::CodeRejected { detail }) => {
            assert!(
                detail.contains("authorization code was invalid"),
                "{detail}"
            );
        }
        other => panic!("{other:?}"),
    }
    let spent = find("spent/revoked/unknown refresh token");
    let (base, _) = serve(400, &Value::Null, spent["response"].get("body")).await;
    match auth::refresh_tokens(&oauth_settings(&base, None), &old).await {
        Err(e @ AuthError::RefreshRejected { .. }) => {
            assert!(e.needs_reauthorization());
            assert!(
                e.to_string()
                    .contains("Value passed for the token was invalid"),
                "{e}"
            );
        }
        other => panic!("{other:?}"),
    }
    let no_basic = find("confidential client without Basic header");
    let (base, _) = serve(401, &Value::Null, no_basic["response"].get("body")).await;
    match auth::refresh_tokens(&oauth_settings(&base, None), &old).await {
        Err(e @ AuthError::ClientRejected { .. }) => {
            assert!(e.to_string().contains("PERCH_CLIENT_SECRET"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    // "revoke": perch does not revoke tokens (removing an account forgets them locally).
    let _revoke = find("revoke");
}

#[test]
fn no_client_id_says_where_to_set_it_and_how_to_register() {
    let env: std::collections::BTreeMap<String, String> = [(
        "PERCH_CONFIG".to_string(),
        "/nonexistent/perch/config.toml".to_string(),
    )]
    .into();
    let cfg = perch::config::Config::load_from(&env).unwrap();
    let err = OAuthSettings::from_config(&cfg).unwrap_err().to_string();
    assert!(err.contains("PERCH_CLIENT_ID"), "{err}");
    assert!(err.contains("/nonexistent/perch/config.toml"), "{err}");
    assert!(
        err.contains("Native App") && err.contains("http://127.0.0.1:8765/callback"),
        "{err}"
    );
}
