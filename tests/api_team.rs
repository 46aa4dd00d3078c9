//! Team mode over real HTTP (issue 16): people with personal tokens on a running service's TCP
//! API against the simulator. A member sees and acts only on the accounts granted to them (403
//! with the reason otherwise, from the API, not the UI), replies only as accounts granted
//! `reply`, cannot reach the dashboard session or manage accounts; a removed person's token
//! stops working; assignments; and every action lands in the audit log under its person.

#[path = "support/sim_env.rs"]
mod sim_env;
#[path = "support/api.rs"]
mod support;

use std::collections::{BTreeMap, BTreeSet};

use perch::domain::{Access, Person, Role};
use reqwest::Method;
use serde_json::{Value, json};
use support::{ApiWorld, BRAND, FOUNDER, SUPPORT};

fn detail(body: &Value) -> &str {
    body["detail"]
        .as_str()
        .unwrap_or_else(|| panic!("no detail in {body}"))
}

/// Adds a person to the service's store (as `perch team add` does) and returns a client that
/// sends their token.
fn add_person(
    world: &ApiWorld,
    name: &str,
    role: Role,
    grants: &[(&str, Access)],
) -> reqwest::Client {
    let store = &world.hub().store;
    let accounts = store.accounts().unwrap();
    let grants: BTreeMap<_, _> = grants
        .iter()
        .map(|(handle, access)| {
            let a = accounts
                .iter()
                .find(|a| a.twitter_username == *handle)
                .unwrap();
            (a.id, *access)
        })
        .collect();
    let token = perch::service::token::new_person_token();
    store
        .add_person(&Person {
            name: name.to_string(),
            role,
            token_hash: perch::service::token::hash(token.expose()),
            grants,
            created_at: chrono::Utc::now(),
        })
        .unwrap();
    bearer_client(token.expose())
}

fn bearer_client(token: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {token}").parse().unwrap(),
    );
    reqwest::Client::builder()
        .default_headers(headers)
        .timeout(std::time::Duration::from_secs(120))
        .build()
        .unwrap()
}

fn usernames(list: &Value, field: &str) -> BTreeSet<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|v| {
            v.pointer(field)
                .and_then(Value::as_str)
                .unwrap_or_else(|| panic!("no {field} in {v}"))
                .trim_start_matches('@')
                .to_string()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_sees_and_replies_only_where_granted_and_the_api_refuses_the_rest() {
    let world = ApiWorld::start(1601).await;
    let control = world.sim.control();
    let to_brand = control
        .inject_mention(BRAND, Some(FOUNDER), "is the brand account staffed?")
        .unwrap();
    let to_support = control
        .inject_mention(SUPPORT, Some(BRAND), "sync is stuck")
        .unwrap();
    let to_founder = control
        .inject_mention(FOUNDER, Some(SUPPORT), "interview request")
        .unwrap();
    world.fetch_all().await;
    let ana = add_person(
        &world,
        "ana",
        Role::Member,
        &[(BRAND, Access::Read), (SUPPORT, Access::Reply)],
    );
    let bo = add_person(&world, "bo", Role::Admin, &[]);

    // Accounts: only the granted ones, counted as such.
    let (status, list) = world.call(ana.get(world.url("/api/v1/accounts/"))).await;
    assert_eq!(status, 200, "{list}");
    world.validate("/api/v1/accounts/", "get", 200, &list);
    assert_eq!(list["total"], 2, "{list}");
    assert_eq!(
        usernames(&list["accounts"], "/twitter_username"),
        BTreeSet::from([BRAND.to_string(), SUPPORT.to_string()])
    );
    let founder_id = world.account_id(FOUNDER).await;
    let (status, body) = world
        .call(ana.get(world.url(&format!("/api/v1/accounts/{founder_id}"))))
        .await;
    assert_eq!(status, 403, "{body}");
    assert!(detail(&body).contains("may not see"), "{body}");
    let (status, _) = world
        .call(ana.get(world.url(&format!("/api/v1/accounts/{founder_id}/stats"))))
        .await;
    assert_eq!(status, 403);

    // Mentions: the member's "all accounts" is their accounts, with the right total.
    let (status, mine) = world
        .call(ana.get(world.url("/api/v1/mentions/?limit=500")))
        .await;
    assert_eq!(status, 200, "{mine}");
    world.validate("/api/v1/mentions/", "get", 200, &mine);
    let seen = usernames(&mine["mentions"], "/sent_to/username");
    assert_eq!(
        seen,
        BTreeSet::from([BRAND.to_string(), SUPPORT.to_string()]),
        "{mine}"
    );
    let mut expected = 0;
    for handle in [BRAND, SUPPORT] {
        let (_, page) = world
            .call(
                world
                    .http
                    .get(world.url(&format!("/api/v1/mentions/?account_id=@{handle}&limit=500"))),
            )
            .await;
        expected += page["total_matching"].as_u64().unwrap();
    }
    assert_eq!(mine["total_matching"].as_u64(), Some(expected), "{mine}");
    assert_eq!(mine["count"].as_u64(), Some(expected));
    let (status, everything) = world
        .call(world.http.get(world.url("/api/v1/mentions/?limit=500")))
        .await;
    assert_eq!(status, 200);
    assert!(everything["total_matching"].as_u64().unwrap() > expected);
    // Searching "all" stays within them too.
    let (status, found) = world
        .call(ana.get(world.url("/api/v1/mentions/?search=interview")))
        .await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(
        found["count"], 0,
        "the founder's mention is not hers: {found}"
    );
    for path in [
        format!("/api/v1/mentions/?account_id=@{FOUNDER}"),
        format!("/api/v1/mentions/{to_founder}"),
    ] {
        let (status, body) = world.call(ana.get(world.url(&path))).await;
        assert_eq!(status, 403, "{path}: {body}");
        assert!(detail(&body).contains(FOUNDER), "{body}");
    }

    // Replies: only as an account granted `reply`; nothing reaches X otherwise.
    let (status, body) = world
        .call(
            ana.post(world.url(&format!("/api/v1/mentions/{to_brand}/reply")))
                .json(&json!({"text": "yes, we are here"})),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    assert!(detail(&body).contains("may not reply as"), "{body}");
    let (status, body) = world
        .call(
            ana.post(world.url(&format!("/api/v1/mentions/{to_brand}/dm")))
                .json(&json!({"text": "psst"})),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    assert!(control.posts().is_empty(), "nothing was posted");
    let (status, sent) = world
        .call(
            ana.post(world.url(&format!("/api/v1/mentions/{to_support}/reply")))
                .json(&json!({"text": "looking into it now"})),
        )
        .await;
    assert_eq!(status, 200, "{sent}");
    assert_eq!(sent["state"], "sent", "{sent}");
    assert_eq!(control.posts().len(), 1);
    assert_eq!(control.posts()[0].author_username, SUPPORT);

    // Triage on a readable account is allowed.
    let (status, body) = world
        .call(
            ana.patch(world.url(&format!("/api/v1/mentions/{to_brand}")))
                .json(&json!({"status": "ignored"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    // Account changes, logins, the dashboard session and service control are not a member's.
    let brand_id = world.account_id(BRAND).await;
    for (method, path, body) in [
        (
            Method::PATCH,
            format!("/api/v1/accounts/{brand_id}"),
            Some(json!({"is_active": false})),
        ),
        (Method::DELETE, format!("/api/v1/accounts/{brand_id}"), None),
        (
            Method::POST,
            format!("/api/v1/accounts/{brand_id}/reauthorize"),
            None,
        ),
        (Method::GET, "/api/v1/auth/login".to_string(), None),
        (Method::GET, "/internal/v1/status".to_string(), None),
        (Method::POST, "/internal/v1/stop".to_string(), None),
    ] {
        let mut request = ana.request(method.clone(), world.url(&path));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let (status, body) = world.call(request).await;
        assert_eq!(status, 403, "{method} {path}: {body}");
        assert!(detail(&body).contains("member"), "{body}");
    }
    let brand = world
        .hub()
        .store
        .account(brand_id.parse().unwrap())
        .unwrap()
        .unwrap();
    assert!(brand.is_active, "the refused pause changed nothing");

    // An admin sees everything.
    let (status, list) = world.call(bo.get(world.url("/api/v1/accounts/"))).await;
    assert_eq!(status, 200);
    assert_eq!(list["total"], 3);
    let (status, _) = world.call(bo.get(world.url("/internal/v1/status"))).await;
    assert_eq!(status, 200);

    // A removed person's token stops working at once.
    assert!(world.hub().store.remove_person("ana").unwrap().is_some());
    let (status, body) = world.call(ana.get(world.url("/api/v1/accounts/"))).await;
    assert_eq!(status, 401, "{body}");
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assignments_and_every_action_are_in_the_audit_log_under_their_person() {
    let world = ApiWorld::start(1602).await;
    let control = world.sim.control();
    let to_support = control
        .inject_mention(SUPPORT, Some(BRAND), "how do I export?")
        .unwrap();
    let to_founder = control
        .inject_mention(FOUNDER, Some(SUPPORT), "podcast?")
        .unwrap();
    world.fetch_all().await;
    let ana = add_person(&world, "ana", Role::Member, &[(SUPPORT, Access::Reply)]);
    let bo = add_person(&world, "bo", Role::Admin, &[]);

    // Take it, as a member; a member cannot hand it to someone else.
    let assign = format!("/api/v1/mentions/{to_support}/assign");
    let (status, taken) = world
        .call(ana.post(world.url(&assign)).json(&json!({"person": "me"})))
        .await;
    assert_eq!(status, 200, "{taken}");
    world.validate("/api/v1/mentions/{id}/assign", "post", 200, &taken);
    assert_eq!(taken["assigned_to"], "ana");
    assert_eq!(taken["previously"], Value::Null);
    let (status, body) = world
        .call(ana.post(world.url(&assign)).json(&json!({"person": "bo"})))
        .await;
    assert_eq!(status, 403, "{body}");
    // An admin reassigns; to a person who cannot see the account is refused.
    let (status, moved) = world
        .call(bo.post(world.url(&assign)).json(&json!({"person": "bo"})))
        .await;
    assert_eq!(status, 200, "{moved}");
    assert_eq!(moved["previously"], "ana");
    let (status, body) = world
        .call(
            bo.post(world.url(&format!("/api/v1/mentions/{to_founder}/assign")))
                .json(&json!({"person": "ana"})),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(detail(&body).contains("may not see"), "{body}");
    let (status, body) = world
        .call(
            bo.post(world.url(&assign))
                .json(&json!({"person": "nobody-here"})),
        )
        .await;
    assert_eq!(status, 422, "{body}");

    // Actions by three people: ana replies, bo ignores, the owner (service token) pauses.
    let (status, sent) = world
        .call(
            ana.post(world.url(&format!("/api/v1/mentions/{to_support}/reply")))
                .json(&json!({"text": "Settings → Export, then PDF"})),
        )
        .await;
    assert_eq!(status, 200, "{sent}");
    let (status, _) = world
        .call(
            bo.patch(world.url(&format!("/api/v1/mentions/{to_founder}")))
                .json(&json!({"status": "ignored"})),
        )
        .await;
    assert_eq!(status, 200);
    let founder_id = world.account_id(FOUNDER).await;
    let (status, _) = world
        .call(
            world
                .http
                .patch(world.url(&format!("/api/v1/accounts/{founder_id}")))
                .json(&json!({"is_active": false})),
        )
        .await;
    assert_eq!(status, 200);

    let (status, log) = world
        .checked(Method::GET, "/api/v1/audit", "/api/v1/audit", None)
        .await;
    assert_eq!(status, 200, "{log}");
    let entries: Vec<(String, String, Option<String>, String)> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["person"].as_str().unwrap().to_string(),
                e["action"].as_str().unwrap().to_string(),
                e["mention"].as_str().map(str::to_string),
                e["detail"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expected = [
        ("owner", "account_change", None, "paused"),
        ("bo", "status", Some(&to_founder), "ignored"),
        (
            "ana",
            "reply",
            Some(&to_support),
            "Settings → Export, then PDF",
        ),
        ("bo", "assign", Some(&to_support), "bo"),
        ("ana", "assign", Some(&to_support), "ana"),
    ];
    let got: Vec<_> = entries
        .iter()
        .map(|(p, a, m, d)| (p.as_str(), a.as_str(), m.as_ref(), d.as_str()))
        .collect();
    assert_eq!(got, expected, "newest first: {log}");
    let seqs: Vec<u64> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] > w[1]), "{seqs:?}");

    // Filters; a member reads only the entries about her accounts.
    let (_, by_ana) = world
        .call(world.http.get(world.url("/api/v1/audit?person=ana")))
        .await;
    assert_eq!(by_ana["entries"].as_array().unwrap().len(), 2, "{by_ana}");
    let (_, on_post) = world
        .call(
            world
                .http
                .get(world.url(&format!("/api/v1/audit?mention={to_founder}"))),
        )
        .await;
    assert_eq!(on_post["entries"].as_array().unwrap().len(), 1, "{on_post}");
    let (status, hers) = world.call(ana.get(world.url("/api/v1/audit"))).await;
    assert_eq!(status, 200);
    assert!(
        hers["entries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["account"] == format!("@{SUPPORT}")),
        "{hers}"
    );
    assert_eq!(hers["entries"].as_array().unwrap().len(), 3, "{hers}");
    // Paging: one at a time walks the same entries.
    let (_, first) = world
        .call(world.http.get(world.url("/api/v1/audit?limit=1")))
        .await;
    let before = first["next_before"].as_u64().expect("more to read");
    let (_, second) = world
        .call(
            world
                .http
                .get(world.url(&format!("/api/v1/audit?limit=1&before={before}"))),
        )
        .await;
    assert_eq!(second["entries"][0]["seq"].as_u64(), Some(seqs[1]));
    world.stop().await;
}

/// Reads Server-Sent Events until one named `name` arrives; its data.
async fn next_event(stream: &mut reqwest::Response, buffer: &mut String, name: &str) -> Value {
    tokio::time::timeout(std::time::Duration::from_secs(60), async {
        loop {
            while let Some(end) = buffer.find("\n\n") {
                let frame: String = buffer.drain(..end + 2).collect();
                if frame.lines().any(|l| l == format!("event: {name}"))
                    && let Some(data) = frame.lines().find_map(|l| l.strip_prefix("data: "))
                {
                    return serde_json::from_str(data).unwrap();
                }
            }
            let chunk = stream
                .chunk()
                .await
                .unwrap()
                .expect("the stream stays open");
            buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {name} event within 60 s"))
}

fn tweet_ids(list: &Value) -> Vec<String> {
    list["mentions"]
        .as_array()
        .unwrap_or_else(|| panic!("no mentions in {list}"))
        .iter()
        .map(|m| m["tweet_id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_assignment_shows_on_the_mention_filters_the_list_and_reaches_live_clients_of_its_account()
 {
    let world = ApiWorld::start(1603).await;
    let control = world.sim.control();
    let first = control
        .inject_mention(SUPPORT, Some(BRAND), "first question")
        .unwrap();
    let second = control
        .inject_mention(SUPPORT, Some(BRAND), "second question")
        .unwrap();
    let to_founder = control
        .inject_mention(FOUNDER, Some(SUPPORT), "third question")
        .unwrap();
    world.fetch_all().await;
    let ana = add_person(&world, "ana", Role::Member, &[(SUPPORT, Access::Reply)]);
    let carl = add_person(&world, "carl", Role::Member, &[(FOUNDER, Access::Read)]);
    let mut owner_stream = world
        .http
        .get(world.url("/api/v1/events"))
        .send()
        .await
        .unwrap();
    let mut carl_stream = carl.get(world.url("/api/v1/events")).send().await.unwrap();
    assert_eq!(
        (
            owner_stream.status().as_u16(),
            carl_stream.status().as_u16()
        ),
        (200, 200)
    );
    let (mut owner_buf, mut carl_buf) = (String::new(), String::new());

    // Ana takes the first: the owner's stream hears it, and the mention says so.
    let (status, body) = world
        .call(
            ana.post(world.url(&format!("/api/v1/mentions/{first}/assign")))
                .json(&json!({"person": "me"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let heard = next_event(&mut owner_stream, &mut owner_buf, "mention_assigned").await;
    assert_eq!(heard["tweet_id"], first.as_str(), "{heard}");
    assert_eq!(
        (&heard["assigned_to"], &heard["by"]),
        (&json!("ana"), &json!("ana"))
    );
    let (status, one) = world
        .checked(
            Method::GET,
            "/api/v1/mentions/{id}",
            &format!("/api/v1/mentions/{first}"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(one["assigned_to"]["person"], "ana", "{one}");
    let (_, other) = world
        .call(
            world
                .http
                .get(world.url(&format!("/api/v1/mentions/{second}"))),
        )
        .await;
    assert_eq!(other["assigned_to"], Value::Null, "{other}");

    // The filters: hers, nobody's (within what each caller may see), a person's, with search.
    let (status, mine) = world
        .call(ana.get(world.url("/api/v1/mentions/?assigned=me")))
        .await;
    assert_eq!(status, 200, "{mine}");
    world.validate("/api/v1/mentions/", "get", 200, &mine);
    assert_eq!(tweet_ids(&mine), [first.as_str()]);
    assert_eq!(mine["total_matching"], 1);
    // Nobody's: what the caller could list, less the assigned one (the simulator's accounts
    // come with mentions of their own).
    let (_, everything) = world
        .call(ana.get(world.url("/api/v1/mentions/?limit=500")))
        .await;
    let (_, free) = world
        .call(ana.get(world.url("/api/v1/mentions/?assigned=none&limit=500")))
        .await;
    let expected: Vec<String> = tweet_ids(&everything)
        .into_iter()
        .filter(|t| *t != first)
        .collect();
    assert!(expected.contains(&second));
    assert_eq!(
        tweet_ids(&free),
        expected,
        "only her account's, newest first"
    );
    assert_eq!(free["total_matching"], expected.len(), "{free}");
    // Paged, with a search: the two unassigned questions, one a page.
    let (_, free) = world
        .call(
            world
                .http
                .get(world.url("/api/v1/mentions/?assigned=none&search=question&limit=1")),
        )
        .await;
    assert_eq!(free["total_matching"], 2, "{free}");
    let cursor = free["next_cursor"]
        .as_str()
        .expect("a second page")
        .to_string();
    let (_, rest) = world
        .call(world.http.get(world.url(&format!(
            "/api/v1/mentions/?assigned=none&search=question&limit=1&cursor={cursor}"
        ))))
        .await;
    let mut both = [tweet_ids(&free), tweet_ids(&rest)].concat();
    both.sort();
    let mut expected = vec![second.clone(), to_founder.clone()];
    expected.sort();
    assert_eq!(both, expected, "the two pages hold the unassigned two");
    let (_, anas) = world
        .call(
            world
                .http
                .get(world.url("/api/v1/mentions/?assigned=ana&status=pending")),
        )
        .await;
    assert_eq!(tweet_ids(&anas), [first.as_str()]);
    let (_, searched) = world
        .call(
            world
                .http
                .get(world.url("/api/v1/mentions/?assigned=none&search=third%20question")),
        )
        .await;
    assert_eq!(tweet_ids(&searched), [to_founder.as_str()]);
    assert_eq!(searched["total_matching"], 1);

    // Carl reads only the founder account: the first assignment never reached him, this one does.
    let (status, body) = world
        .call(
            world
                .http
                .post(world.url(&format!("/api/v1/mentions/{to_founder}/assign")))
                .json(&json!({"person": "carl"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let heard = next_event(&mut carl_stream, &mut carl_buf, "mention_assigned").await;
    assert_eq!(heard["tweet_id"], to_founder.as_str(), "{heard}");
    assert_eq!(
        (&heard["assigned_to"], &heard["by"]),
        (&json!("carl"), &json!("owner"))
    );

    // Unassigned again: gone from her list.
    let (status, body) = world
        .call(
            ana.post(world.url(&format!("/api/v1/mentions/{first}/assign")))
                .json(&json!({"person": null})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["previously"], "ana");
    let (_, mine) = world
        .call(ana.get(world.url("/api/v1/mentions/?assigned=me")))
        .await;
    assert_eq!(mine["total_matching"], 0, "{mine}");
    let (_, one) = world
        .call(
            world
                .http
                .get(world.url(&format!("/api/v1/mentions/{first}"))),
        )
        .await;
    assert_eq!(one["assigned_to"], Value::Null);
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replying_shows_to_the_team_asks_before_sending_over_it_and_expires_when_its_client_vanishes()
 {
    let world = ApiWorld::start(1604).await;
    // Short, so the test sees one run out; the rule is the same at the service's 30 s.
    world.hub().set_presence_ttl(chrono::Duration::seconds(3));
    let post = world
        .sim
        .control()
        .inject_mention(SUPPORT, Some(BRAND), "is the export broken?")
        .unwrap();
    world.fetch_all().await;
    let ana = add_person(&world, "ana", Role::Member, &[(SUPPORT, Access::Reply)]);
    let bo = add_person(&world, "bo", Role::Member, &[(SUPPORT, Access::Reply)]);
    let reader = add_person(&world, "cy", Role::Member, &[(SUPPORT, Access::Read)]);
    let mut stream = world
        .http
        .get(world.url("/api/v1/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status().as_u16(), 200);
    let mut buffer = String::new();
    let presence = format!("/api/v1/mentions/{post}/presence");

    // Only someone who may reply can be replying.
    let (status, body) = world.call(reader.put(world.url(&presence))).await;
    assert_eq!(status, 403, "{body}");

    // Ana opens the composer: everyone hears it, and the mention shows it.
    let (status, body) = world.call(ana.put(world.url(&presence))).await;
    assert_eq!(status, 200, "{body}");
    world.validate("/api/v1/mentions/{id}/presence", "put", 200, &body);
    assert_eq!(body["replying"][0]["person"], "ana");
    assert_eq!(body["ttl_secs"], 3);
    let heard = next_event(&mut stream, &mut buffer, "replying").await;
    assert_eq!(
        (&heard["person"], &heard["replying"], &heard["tweet_id"]),
        (&json!("ana"), &json!(true), &json!(post))
    );
    let (_, seen) = world
        .call(bo.get(world.url(&format!("/api/v1/mentions/{post}"))))
        .await;
    assert_eq!(seen["replying"][0]["person"], "ana", "{seen}");

    // Bo sending over her open draft is asked first; on purpose, it goes.
    let reply = format!("/api/v1/mentions/{post}/reply");
    let (status, body) = world
        .call(
            bo.post(world.url(&reply))
                .json(&json!({"text": "Looking into it now"})),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert!(detail(&body).contains("ana is replying"), "{body}");
    assert!(detail(&body).contains("force"), "{body}");
    let (_, still) = world
        .call(
            world
                .http
                .get(world.url(&format!("/api/v1/mentions/{post}"))),
        )
        .await;
    assert_eq!(still["status"], "pending", "nothing was sent: {still}");
    let (status, body) = world
        .call(
            bo.post(world.url(&reply))
                .json(&json!({"text": "Looking into it now", "force": true})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "sent");

    // Ana sends too: one post only, and she is told who replied and when.
    let (status, body) = world
        .call(
            ana.post(world.url(&reply))
                .json(&json!({"text": "It is fixed in 2.4", "force": true})),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert!(detail(&body).contains("bo replied at "), "{body}");
    let (_, log) = world
        .call(
            world
                .http
                .get(world.url(&format!("/api/v1/audit?mention={post}"))),
        )
        .await;
    let replies: Vec<&str> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "reply")
        .map(|e| e["person"].as_str().unwrap())
        .collect();
    assert_eq!(replies, ["bo"], "a refused send is not in the log: {log}");

    // Ana's client vanishes (no more touches): she stops showing, and everyone hears it.
    let gone = tokio::time::timeout(std::time::Duration::from_secs(60), async {
        loop {
            let e = next_event(&mut stream, &mut buffer, "replying").await;
            if e["person"] == "ana" && e["replying"] == false {
                return e;
            }
        }
    })
    .await
    .expect("her presence expires");
    assert_eq!(gone["tweet_id"], post.as_str());
    let (_, seen) = world
        .call(bo.get(world.url(&format!("/api/v1/mentions/{post}"))))
        .await;
    assert_eq!(seen["replying"], json!([]), "{seen}");

    // Closing the composer ends it at once.
    world.call(bo.put(world.url(&presence))).await;
    let (status, body) = world.call(bo.delete(world.url(&presence))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["replying"], json!([]));
    loop {
        let e = next_event(&mut stream, &mut buffer, "replying").await;
        if e["person"] == "bo" && e["replying"] == false {
            break;
        }
    }
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_cannot_settle_or_call_back_a_reply_and_a_removed_persons_stream_ends() {
    let world = ApiWorld::start(1605).await;
    let post = world
        .sim
        .control()
        .inject_mention(SUPPORT, Some(BRAND), "did my reply go out?")
        .unwrap();
    world.fetch_all().await;
    let reader = add_person(&world, "cy", Role::Member, &[(SUPPORT, Access::Read)]);
    // A reply that left and got no answer: unconfirmed, in the outbox.
    let store = &world.hub().sled_store().unwrap();
    let key = store
        .accounts()
        .unwrap()
        .into_iter()
        .find(|a| a.twitter_username == SUPPORT)
        .map(|a| perch::domain::MentionKey {
            account_id: a.id,
            tweet_id: post.parse().unwrap(),
        })
        .unwrap();
    let now = chrono::Utc::now();
    let entry = store
        .outbox_enqueue(key, perch::outbox::ReplyKind::Public, "@x on it", now)
        .unwrap();
    store.outbox_begin_send(key, entry.seq, now).unwrap();
    store
        .outbox_unconfirmed(key, entry.seq, "no answer", now)
        .unwrap();

    // Saying it is on X (or calling it back) is for those who may reply as the account.
    for status in ["replied", "pending"] {
        let (code, body) = world
            .call(
                reader
                    .patch(world.url(&format!("/api/v1/mentions/{post}")))
                    .json(&json!({ "status": status })),
            )
            .await;
        assert_eq!(code, 403, "{status}: {body}");
        assert!(detail(&body).contains("may not reply as"), "{body}");
    }
    assert_eq!(
        store.outbox_current(key).unwrap().unwrap().state,
        perch::outbox::OutboxState::Unconfirmed,
        "unchanged"
    );
    // Triage is still theirs where nothing is in the outbox.
    let other = world
        .sim
        .control()
        .inject_mention(SUPPORT, Some(BRAND), "another one")
        .unwrap();
    world.fetch_all().await;
    let (code, body) = world
        .call(
            reader
                .patch(world.url(&format!("/api/v1/mentions/{other}")))
                .json(&json!({"status": "ignored"})),
        )
        .await;
    assert_eq!(code, 200, "{body}");

    // Removed while their event stream is open: it ends, and tells them nothing more.
    let mut stream = reader
        .get(world.url("/api/v1/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status().as_u16(), 200);
    assert!(store.remove_person("cy").unwrap().is_some());
    world.hub().publish(perch::service::ServiceEvent::Sync(
        perch::sync::SyncEvent::Notice {
            account_id: Some(key.account_id),
            message: "for readers of the account only".into(),
        },
    ));
    let ended = tokio::time::timeout(std::time::Duration::from_secs(60), async {
        let mut seen = String::new();
        while let Ok(Some(chunk)) = stream.chunk().await {
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
        seen
    })
    .await
    .expect("the stream of a removed person ends");
    assert!(!ended.contains("for readers"), "{ended}");
    world.stop().await;
}
