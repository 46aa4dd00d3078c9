//! The X client against the simulator over real loopback HTTP: pages newer than `since_id`,
//! following `next_token`, a 401 for a bad or expired token, a 429 with its reset time, and
//! replying / sending a DM. The simulator shares no parsing code with the client.

use std::collections::HashSet;

use perch::auth::{self, OAuthSettings};
use perch::domain::Secret;
use perch::sim::{self, EndpointLimit, SimConfig, SimHandle};
use perch::x::{XClient, XError};

fn settings(sim: &SimHandle) -> OAuthSettings {
    OAuthSettings {
        client_id: sim::DEMO_CLIENT_ID.to_string(),
        client_secret: None,
        authorize_url: sim.authorize_url(),
        token_url: sim.token_url(),
        redirect_uri: sim::DEMO_REDIRECT_URI.to_string(),
    }
}

/// A user access token for `username`, through the real authorization-code + PKCE exchange.
async fn token_for(sim: &SimHandle, username: &str) -> Secret {
    let settings = settings(sim);
    let login = auth::start_login(&settings).unwrap();
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let answer = browser
        .get(format!("{}&sim_user={username}", login.url))
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_redirection(), "{:?}", answer.status());
    let location = answer.headers()["location"].to_str().unwrap().to_string();
    let code = auth::parse_callback(&location, login.state()).unwrap();
    auth::exchange_code(&settings, &login, &code)
        .await
        .unwrap()
        .access_token
}

#[tokio::test]
async fn pages_follow_next_token_and_since_id_returns_only_newer_posts() {
    let sim = sim::start(SimConfig::for_tests(7), 0).await.unwrap();
    let control = sim.control();
    control.generate_mentions_for("nimbusnotes", 150).unwrap();
    let token = token_for(&sim, "nimbusnotes").await;
    let client = XClient::new(&sim.api_base());
    let me = client.users_me(&token).await.unwrap().data;
    assert_eq!(me.username, "nimbusnotes");

    // Walk every page.
    let mut ids = Vec::new();
    let mut next: Option<String> = None;
    let mut first_newest = None;
    let mut pages = 0;
    loop {
        let page = client
            .mentions_page(&token, &me.id, None, next.as_deref())
            .await
            .unwrap();
        assert!(
            page.rate_limit.window.is_some(),
            "rate-limit headers are read"
        );
        let page = page.data;
        pages += 1;
        if first_newest.is_none() {
            first_newest = page.newest_id;
        }
        assert!(page.skipped_items.is_empty(), "{:?}", page.skipped_items);
        ids.extend(page.posts.iter().map(|p| p.tweet_id));
        match page.next_token {
            Some(t) => next = Some(t),
            None => break,
        }
        assert!(pages < 20, "pagination does not end");
    }
    assert!(pages >= 2, "150+ mentions need more than one page of 100");
    assert!(
        ids.windows(2).all(|w| w[0] > w[1]),
        "newest first, across pages"
    );
    assert_eq!(
        ids.iter().collect::<HashSet<_>>().len(),
        ids.len(),
        "no post twice"
    );
    assert_eq!(ids.len(), control.mention_count("nimbusnotes").unwrap());
    assert_eq!(first_newest, ids.first().copied());

    // Three new mentions, one with characters X escapes.
    let cursor = first_newest.unwrap();
    control
        .inject_mention("nimbusnotes", None, "@nimbusnotes Q&A <3 & more > less")
        .unwrap();
    control.generate_mentions_for("nimbusnotes", 2).unwrap();
    let newer = client
        .mentions_page(&token, &me.id, Some(cursor), None)
        .await
        .unwrap()
        .data;
    assert_eq!(newer.posts.len(), 3);
    assert!(newer.posts.iter().all(|p| p.tweet_id > cursor));
    assert!(
        newer
            .posts
            .iter()
            .any(|p| p.text == "@nimbusnotes Q&A <3 & more > less"),
        "text is unescaped exactly once"
    );
    assert!(
        newer.posts.iter().all(|p| p.author.username.is_some()),
        "authors joined"
    );

    // Nothing newer than the newest: an empty page, not an error.
    let empty = client
        .mentions_page(&token, &me.id, newer.newest_id, None)
        .await
        .unwrap()
        .data;
    assert!(empty.posts.is_empty() && empty.next_token.is_none());
    sim.shutdown().await;
}

#[tokio::test]
async fn unknown_and_expired_tokens_are_unauthorized() {
    let sim = sim::start(SimConfig::for_tests(8), 0).await.unwrap();
    let client = XClient::new(&sim.api_base());
    let err = client
        .users_me(&Secret::new("not-a-token"))
        .await
        .unwrap_err();
    assert!(matches!(err, XError::Unauthorized { .. }), "{err:?}");

    let token = token_for(&sim, "mara_quill").await;
    let me = client.users_me(&token).await.unwrap().data;
    sim.control().expire_access_tokens("mara_quill").unwrap();
    let err = client
        .mentions_page(&token, &me.id, None, None)
        .await
        .unwrap_err();
    assert!(matches!(err, XError::Unauthorized { .. }), "{err:?}");
    sim.shutdown().await;
}

#[tokio::test]
async fn a_spent_window_is_a_429_with_the_reset_time() {
    let mut config = SimConfig::for_tests(9);
    config.rate_limits.mentions = EndpointLimit::per_window(2);
    let sim = sim::start(config, 0).await.unwrap();
    let token = token_for(&sim, "nimbusnotes").await;
    let client = XClient::new(&sim.api_base());
    let me = client.users_me(&token).await.unwrap().data;
    let first = client
        .mentions_page(&token, &me.id, None, None)
        .await
        .unwrap();
    let window = first.rate_limit.window.unwrap();
    assert_eq!((window.limit, window.remaining), (2, 1));
    client
        .mentions_page(&token, &me.id, None, None)
        .await
        .unwrap();
    match client.mentions_page(&token, &me.id, None, None).await {
        Err(XError::RateLimited {
            reset, rate_limit, ..
        }) => {
            let window = rate_limit.window.unwrap();
            assert_eq!(window.remaining, 0);
            assert_eq!(reset, Some(window.reset));
            assert!(window.reset > sim.control().now());
        }
        other => panic!("{other:?}"),
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn replies_and_dms_reach_the_simulator() {
    let sim = sim::start(SimConfig::for_tests(10), 0).await.unwrap();
    let control = sim.control();
    let token = token_for(&sim, "nimbusnotes").await;
    let client = XClient::new(&sim.api_base());
    let me = client.users_me(&token).await.unwrap().data;
    let page = client
        .mentions_page(&token, &me.id, None, None)
        .await
        .unwrap()
        .data;
    let mention = page.posts.first().expect("the backlog has mentions");
    let author = mention.author.username.clone().unwrap();
    let text = format!("@{author} thanks & see you <soon>");
    let posted = client
        .post_reply(&token, &text, &mention.tweet_id.to_string())
        .await
        .unwrap()
        .data;
    assert_eq!(posted.text, text);
    let created = control.posts();
    let stored = created
        .iter()
        .find(|p| p.id == posted.id)
        .expect("post exists");
    assert_eq!(
        stored.in_reply_to_tweet_id,
        Some(mention.tweet_id.to_string())
    );
    assert_eq!(stored.text, text);

    // The same text again is duplicate content.
    let err = client
        .post_reply(&token, &text, &mention.tweet_id.to_string())
        .await
        .unwrap_err();
    assert!(matches!(err, XError::Forbidden { .. }), "{err:?}");

    let support = control.user("nimbus_help").unwrap();
    let dm = client
        .send_dm(&token, &support.id, "hello there")
        .await
        .unwrap()
        .data;
    assert!(dm.dm_conversation_id.contains(&support.id));
    assert!(
        control
            .dms()
            .iter()
            .any(|d| d.dm_event_id == dm.dm_event_id)
    );

    let closed = control.user("mara_quill").unwrap();
    let err = client.send_dm(&token, &closed.id, "hi").await.unwrap_err();
    assert!(matches!(err, XError::Forbidden { .. }), "{err:?}");
    sim.shutdown().await;
}
