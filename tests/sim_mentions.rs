//! `GET /2/users/{id}/mentions` and `/2/users/me` on the simulator, over loopback HTTP, against
//! CONTRACT.md §2-3 and §9.

#[path = "support/sim.rs"]
mod support;

use std::collections::HashSet;

use perch::sim::{SimConfig, SimHandle};
use serde_json::json;
use support::*;

const FULL: &str = "expansions=author_id,in_reply_to_user_id,referenced_tweets.id\
    &tweet.fields=created_at,conversation_id,author_id,in_reply_to_user_id,referenced_tweets,entities\
    &user.fields=name,username,profile_image_url";

/// One account's view of a fresh simulator, logged in: what nearly every test here starts with.
struct Timeline {
    sim: SimHandle,
    http: reqwest::Client,
    tokens: Tokens,
    /// The account's X user id.
    id: String,
}

impl Timeline {
    async fn open(config: SimConfig, user: &str) -> Timeline {
        let sim = start(config).await;
        let http = http();
        let tokens = login(&http, &sim, user).await;
        let id = user_id(&sim, user);
        Timeline {
            sim,
            http,
            tokens,
            id,
        }
    }

    /// `GET path_and_query` with the account's own token.
    async fn get(&self, path_and_query: &str) -> Answer {
        get(&self.http, &self.sim, path_and_query, &self.tokens.access).await
    }
}

#[tokio::test]
async fn pages_cover_every_mention_once_newest_first() {
    let t = Timeline::open(SimConfig::for_tests(10), "nimbusnotes").await;
    let id = &t.id;
    let total = t.sim.control().mention_count("nimbusnotes").unwrap();
    assert!(total >= 12, "backlog present: {total}");

    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = Vec::new();
    loop {
        let mut path = format!("/2/users/{id}/mentions?max_results=5");
        if let Some(next) = &token {
            path.push_str(&format!("&pagination_token={next}"));
        }
        let page = t.get(&path).await;
        assert_eq!(page.status, 200, "{}", page.body);
        let page_ids = ids(&page.body);
        assert_eq!(page.body["meta"]["result_count"], page_ids.len());
        assert_eq!(page.body["meta"]["newest_id"], page_ids[0].to_string());
        seen.extend(page_ids);
        pages.push(page.body.clone());
        match page.body["meta"]["next_token"].as_str() {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
    }
    assert_eq!(seen.len(), total);
    assert!(
        seen.windows(2).all(|w| w[0] > w[1]),
        "strictly newest first: {seen:?}"
    );

    // previous_token on the second page leads back to exactly the first page.
    let back = pages[1]["meta"]["previous_token"]
        .as_str()
        .expect("previous_token on page 2");
    let first_again = t
        .get(&format!(
            "/2/users/{id}/mentions?max_results=5&pagination_token={back}"
        ))
        .await;
    assert_eq!(ids(&first_again.body), ids(&pages[0]));
    t.sim.shutdown().await;
}

#[tokio::test]
async fn since_id_is_exclusive_and_compared_as_a_number() {
    let t = Timeline::open(SimConfig::for_tests(11), "nimbusnotes").await;
    let id = &t.id;
    let all = ids(&t
        .get(&format!("/2/users/{id}/mentions?max_results=100"))
        .await
        .body);
    let pivot = all[3];
    let newer = t
        .get(&format!(
            "/2/users/{id}/mentions?max_results=100&since_id={pivot}"
        ))
        .await;
    assert_eq!(ids(&newer.body), all[..3].to_vec());

    // A shorter id is numerically smaller even though "9" > "1..." as a string.
    let everything = t
        .get(&format!(
            "/2/users/{id}/mentions?max_results=100&since_id=9"
        ))
        .await;
    assert_eq!(ids(&everything.body).len(), all.len());

    let until = t
        .get(&format!(
            "/2/users/{id}/mentions?max_results=100&until_id={pivot}"
        ))
        .await;
    assert_eq!(ids(&until.body), all[4..].to_vec());
    t.sim.shutdown().await;
}

#[tokio::test]
async fn nothing_new_is_exactly_the_empty_meta() {
    let t = Timeline::open(SimConfig::for_tests(12), "nimbusnotes").await;
    let id = &t.id;
    let newest = ids(&t.get(&format!("/2/users/{id}/mentions")).await.body)[0];
    let empty = t
        .get(&format!("/2/users/{id}/mentions?since_id={newest}&{FULL}"))
        .await;
    assert_eq!(empty.status, 200);
    assert_eq!(empty.body, json!({"meta": {"result_count": 0}}));
    t.sim.shutdown().await;
}

#[tokio::test]
async fn only_the_800_most_recent_mentions_are_reachable() {
    let t = Timeline::open(SimConfig::for_tests(13), "nimbus_help").await;
    let id = &t.id;
    t.sim
        .control()
        .generate_mentions_for("nimbus_help", 850)
        .unwrap();
    let total = t.sim.control().mention_count("nimbus_help").unwrap();
    assert!(total > 850);

    let mut seen = Vec::new();
    let mut path = format!("/2/users/{id}/mentions?max_results=100");
    loop {
        let page = t.get(&path).await;
        assert_eq!(page.status, 200);
        seen.extend(ids(&page.body));
        match page.body["meta"]["next_token"].as_str() {
            Some(t) => {
                path = format!("/2/users/{id}/mentions?max_results=100&pagination_token={t}")
            }
            None => break,
        }
    }
    assert_eq!(seen.len(), 800);
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 800);

    // Asking for what lies beyond the cap finds nothing.
    let oldest = *seen.last().unwrap();
    let beyond = t
        .get(&format!("/2/users/{id}/mentions?until_id={oldest}"))
        .await;
    assert_eq!(beyond.body, json!({"meta": {"result_count": 0}}));
    t.sim.shutdown().await;
}

#[tokio::test]
async fn only_requested_fields_and_deduplicated_includes() {
    let t = Timeline::open(SimConfig::for_tests(14), "nimbusnotes").await;
    let id = &t.id;

    let bare = t
        .get(&format!("/2/users/{id}/mentions?max_results=20"))
        .await;
    for post in bare.body["data"].as_array().unwrap() {
        let keys: HashSet<&str> = post
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            HashSet::from(["id", "text", "edit_history_tweet_ids"]),
            "{post}"
        );
    }
    assert!(bare.body.get("includes").is_none());

    let full = t
        .get(&format!("/2/users/{id}/mentions?max_results=100&{FULL}"))
        .await;
    let data = full.body["data"].as_array().unwrap();
    let users = full.body["includes"]["users"].as_array().unwrap();
    let user_ids: Vec<&str> = users.iter().map(|u| u["id"].as_str().unwrap()).collect();
    assert_eq!(
        user_ids.len(),
        user_ids.iter().collect::<HashSet<_>>().len(),
        "users de-duplicated"
    );
    for user in users {
        let keys: HashSet<&str> = user
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            HashSet::from(["id", "name", "username", "profile_image_url"])
        );
    }
    for post in data {
        assert!(
            user_ids.contains(&post["author_id"].as_str().unwrap()),
            "author included"
        );
        assert!(post["created_at"].as_str().unwrap().ends_with(".000Z"));
        assert!(post.get("public_metrics").is_none(), "not requested");
        // The snowflake's time is the post's created_at (CONTRACT.md §9).
        let sf: u64 = post["id"].as_str().unwrap().parse().unwrap();
        let ms = (sf >> 22) as i64 + 1_288_834_974_657;
        let created =
            chrono::DateTime::parse_from_rfc3339(post["created_at"].as_str().unwrap()).unwrap();
        assert_eq!(created.timestamp(), ms.div_euclid(1000));
    }
    // Replies and quotes point at posts that are included.
    let referenced: Vec<&str> = data
        .iter()
        .filter_map(|p| p["referenced_tweets"].as_array())
        .flatten()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert!(!referenced.is_empty(), "the backlog has replies or quotes");
    let included: Vec<&str> = full.body["includes"]["tweets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    for r in referenced {
        assert!(included.contains(&r), "{r} in includes.tweets");
    }
    t.sim.shutdown().await;
}

#[tokio::test]
async fn text_is_html_escaped_and_posts_mentioning_two_accounts_reach_both() {
    let t = Timeline::open(SimConfig::for_tests(15), "mara_quill").await;
    let id = &t.id;
    let injected = t
        .sim
        .control()
        .inject_mention(
            "mara_quill",
            Some("priya_ships"),
            "@mara_quill @nimbusnotes Q&A <3 > \u{1b}[31mred",
        )
        .unwrap();
    let page = t.get(&format!("/2/users/{id}/mentions?{FULL}")).await;
    let post = &page.body["data"][0];
    assert_eq!(post["id"], injected);
    assert_eq!(
        post["text"],
        "@mara_quill @nimbusnotes Q&amp;A &lt;3 &gt; \u{1b}[31mred"
    );
    assert_eq!(post["entities"]["mentions"].as_array().unwrap().len(), 2);

    let brand = login(&t.http, &t.sim, "nimbusnotes").await;
    let brand_id = user_id(&t.sim, "nimbusnotes");
    let brand_page = get(
        &t.http,
        &t.sim,
        &format!("/2/users/{brand_id}/mentions"),
        &brand.access,
    )
    .await;
    assert_eq!(brand_page.body["data"][0]["id"], injected);
    t.sim.shutdown().await;
}

#[tokio::test]
async fn bad_parameters_get_xs_invalid_request_bodies() {
    let t = Timeline::open(SimConfig::for_tests(16), "nimbusnotes").await;
    let id = &t.id;

    let too_many = t
        .get(&format!("/2/users/{id}/mentions?max_results=200"))
        .await;
    assert_eq!(too_many.status, 400);
    assert_eq!(
        too_many.body,
        json!({"errors": [{"parameters": {"max_results": ["200"]}, "message": "The `max_results` query parameter value [200] is not between 5 and 100"}],
               "title": "Invalid Request", "detail": "One or more parameters to your request was invalid.",
               "type": "https://api.twitter.com/2/problems/invalid-request"})
    );
    let bad_since = t.get(&format!("/2/users/{id}/mentions?since_id=abc")).await;
    assert_eq!(bad_since.status, 400);
    assert_eq!(
        bad_since.body["errors"][0]["message"],
        "The `since_id` query parameter value [abc] is not valid"
    );

    let bad_field = t
        .get(&format!("/2/users/{id}/mentions?tweet.fields=colour"))
        .await;
    assert_eq!(bad_field.status, 400);
    assert!(
        bad_field.body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .starts_with("The `tweet.fields` query parameter value [colour] is not one of [")
    );

    let bad_token = t
        .get(&format!("/2/users/{id}/mentions?pagination_token=zzzz"))
        .await;
    assert_eq!(bad_token.status, 400);

    let unknown_param = t.get(&format!("/2/users/{id}/mentions?colour=red")).await;
    assert_eq!(unknown_param.status, 400);
    t.sim.shutdown().await;
}

#[tokio::test]
async fn users_me_honours_user_fields() {
    let sim = start(SimConfig::for_tests(17)).await;
    let http = http();
    let tokens = login(&http, &sim, "mara_quill").await;
    let plain = get(&http, &sim, "/2/users/me", &tokens.access).await;
    let keys: HashSet<&str> = plain.body["data"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, HashSet::from(["id", "name", "username"]));
    let rich = get(
        &http,
        &sim,
        "/2/users/me?user.fields=profile_image_url,receives_your_dm",
        &tokens.access,
    )
    .await;
    assert!(
        rich.body["data"]["profile_image_url"]
            .as_str()
            .unwrap()
            .ends_with("_normal.jpg")
    );
    assert_eq!(
        rich.body["data"]["receives_your_dm"], false,
        "mara_quill does not accept DMs"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn the_live_stream_adds_mentions() {
    let config = SimConfig {
        mentions_per_second: 40.0,
        ..SimConfig::for_tests(18)
    };
    let sim = start(config).await;
    let control = sim.control();
    let before: usize = ["nimbusnotes", "mara_quill", "nimbus_help"]
        .iter()
        .map(|u| control.mention_count(u).unwrap())
        .sum();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let now: usize = ["nimbusnotes", "mara_quill", "nimbus_help"]
            .iter()
            .map(|u| control.mention_count(u).unwrap())
            .sum();
        if now >= before + 10 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no live mentions after 30 s"
        );
    }
    sim.shutdown().await;
}
