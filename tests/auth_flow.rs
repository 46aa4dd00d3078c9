//! The whole OAuth life of an account against the simulator over loopback HTTP: login through the
//! listener and through the paste flow, refusals (state mismatch, denial), refresh before expiry
//! with rotation, the 401 that one refresh fixes, concurrent callers sharing one refresh, and a
//! revoked grant that ends in `token_expired` until a reauthorization restores the account.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use perch::auth::{self, AuthError, CallError, OAuthSettings, TokenManager};
use perch::domain::{Account, SyncStatus};
use perch::sim::{self, SimConfig, SimHandle};
use perch::store::{FeedFilter, Store};
use perch::x::XClient;

const GENEROUS: Duration = Duration::from_secs(120);

fn settings(sim: &SimHandle) -> OAuthSettings {
    OAuthSettings {
        client_id: sim::DEMO_CLIENT_ID.to_string(),
        client_secret: None,
        authorize_url: sim.authorize_url(),
        token_url: sim.token_url(),
        // Port 0: the listener picks a free port; the simulator accepts any loopback port.
        redirect_uri: "http://127.0.0.1:0/callback".to_string(),
    }
}

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// What the user's browser does on the authorize page: the simulator answers at once with a
/// redirect; returns its Location.
async fn approve(authorize_url: &str, extra: &str) -> String {
    let answer = browser()
        .get(format!("{authorize_url}&{extra}"))
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_redirection(), "{:?}", answer.status());
    answer.headers()["location"].to_str().unwrap().to_string()
}

/// A "browser" for `login_with_listener_using`: approves as `extra` says, optionally rewrites the
/// redirect, follows it to the listener and keeps the page it gets.
fn browser_that(
    extra: &'static str,
    rewrite: fn(String) -> String,
    page: Arc<Mutex<Option<String>>>,
) -> impl FnOnce(&str) {
    move |url: &str| {
        let url = url.to_string();
        tokio::spawn(async move {
            let location = rewrite(approve(&url, extra).await);
            let answer = browser().get(location).send().await.unwrap();
            *page.lock().unwrap() = Some(answer.text().await.unwrap());
        });
    }
}

async fn login_as(
    sim: &SimHandle,
    store: &Store,
    username: &'static str,
) -> Result<(Account, bool), AuthError> {
    let extra: &'static str = Box::leak(format!("sim_user={username}").into_boxed_str());
    let page = Arc::new(Mutex::new(None));
    let client = XClient::new(&sim.api_base());
    auth::login_with_listener_using(
        &settings(sim),
        &store.shared(),
        &client,
        browser_that(extra, |l| l, page.clone()),
        |_| {},
        GENEROUS,
    )
    .await
}

fn token_requests(sim: &SimHandle, grant: &str) -> usize {
    sim.control()
        .request_log()
        .iter()
        .filter(|r| r.path == "/2/oauth2/token")
        .filter(|r| r.note.as_deref().is_some_and(|n| n.contains(grant)))
        .count()
}

#[tokio::test]
async fn login_through_the_listener_stores_the_account_and_its_tokens() {
    let sim = sim::start(SimConfig::for_tests(21), 0).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let client = XClient::new(&sim.api_base());
    let page = Arc::new(Mutex::new(None));
    let printed = Arc::new(Mutex::new(String::new()));
    let printed_in = printed.clone();
    let (account, reauthorized) = auth::login_with_listener_using(
        &settings(&sim),
        &store.shared(),
        &client,
        browser_that("sim_user=mara_quill", |l| l, page.clone()),
        move |url| *printed_in.lock().unwrap() = url.to_string(),
        GENEROUS,
    )
    .await
    .unwrap();
    assert!(!reauthorized);
    assert_eq!(account.twitter_username, "mara_quill");
    assert_eq!(account.sync_status, SyncStatus::Active);
    assert!(account.is_active);
    assert!(printed.lock().unwrap().starts_with(&sim.authorize_url()));
    assert_eq!(store.account(account.id).unwrap().unwrap(), account);
    let tokens = store.tokens(account.id).unwrap().unwrap();
    assert!(
        tokens.refresh_token.is_some(),
        "offline.access gives a refresh token"
    );
    assert!(tokens.expires_at > Utc::now());
    // The tokens work.
    let me = client.users_me(&tokens.access_token).await.unwrap().data;
    assert_eq!(me.id, account.twitter_id);
    // The browser was told (the page is written before the login returns).
    for _ in 0..100 {
        if page.lock().unwrap().is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let page = page.lock().unwrap().clone().unwrap();
    assert!(
        page.contains("perch: @mara_quill added, you can close this tab"),
        "{page}"
    );

    // Logging in again as the same X user is a reauthorization of the same account.
    let (again, reauthorized) = login_as(&sim, &store, "mara_quill").await.unwrap();
    assert!(reauthorized);
    assert_eq!(again.id, account.id);
    assert_eq!(store.accounts().unwrap().len(), 1);
    assert_eq!(
        token_requests(&sim, "authorization_code"),
        2,
        "one code exchange per login"
    );
    sim.shutdown().await;
}

/// A writer the test can read while the login is still waiting for input.
#[derive(Clone, Default)]
struct SharedOut(Arc<Mutex<Vec<u8>>>);
impl std::io::Write for SharedOut {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

async fn headless_login(
    sim: &SimHandle,
    store: &Store,
    paste: fn(String) -> String,
) -> Result<(Account, bool), AuthError> {
    let mut settings = settings(sim);
    settings.redirect_uri = sim::DEMO_REDIRECT_URI.to_string();
    let client = XClient::new(&sim.api_base());
    let out = SharedOut::default();
    let (reader, mut writer) = tokio::io::duplex(4096);
    let watcher = out.clone();
    let authorize = sim.authorize_url();
    let paster = tokio::spawn(async move {
        // Wait for the URL line, approve as the user would, paste what the browser ended on.
        let url = loop {
            let text = String::from_utf8(watcher.0.lock().unwrap().clone()).unwrap();
            if let Some(line) = text.lines().find(|l| l.starts_with(&authorize)) {
                break line.to_string();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let location = approve(&url, "sim_user=nimbus_help").await;
        use tokio::io::AsyncWriteExt;
        writer
            .write_all(format!("\n{}\n", paste(location)).as_bytes())
            .await
            .unwrap();
    });
    let mut out_writer = out.clone();
    let result = tokio::time::timeout(
        GENEROUS,
        auth::login_headless(
            &settings,
            &store.shared(),
            &client,
            &mut out_writer,
            tokio::io::BufReader::new(reader),
        ),
    )
    .await
    .expect("the headless login finishes");
    paster.await.unwrap();
    let printed = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
    assert!(
        printed.lines().any(|l| l.starts_with(&sim.authorize_url())),
        "URL on a line of its own: {printed}"
    );
    result
}

#[tokio::test]
async fn login_by_pasting_the_redirect_or_the_bare_code() {
    let sim = sim::start(SimConfig::for_tests(22), 0).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let (account, reauthorized) = headless_login(&sim, &store, |l| l).await.unwrap();
    assert!(!reauthorized);
    assert_eq!(account.twitter_username, "nimbus_help");
    assert!(store.tokens(account.id).unwrap().is_some());

    fn bare_code(location: String) -> String {
        url::Url::parse(&location)
            .unwrap()
            .query_pairs()
            .find(|(k, _)| k == "code")
            .unwrap()
            .1
            .into_owned()
    }
    let (again, reauthorized) = headless_login(&sim, &store, bare_code).await.unwrap();
    assert!(reauthorized);
    assert_eq!(again.id, account.id);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_foreign_state_or_a_denial_adds_nothing() {
    let sim = sim::start(SimConfig::for_tests(23), 0).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let client = XClient::new(&sim.api_base());

    fn forge_state(location: String) -> String {
        let mut url = url::Url::parse(&location).unwrap();
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let v = if k == "state" {
                    "forged".to_string()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
        url.to_string()
    }
    let page = Arc::new(Mutex::new(None));
    let err = auth::login_with_listener_using(
        &settings(&sim),
        &store.shared(),
        &client,
        browser_that("sim_user=nimbusnotes", forge_state, page.clone()),
        |_| {},
        GENEROUS,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, AuthError::StateMismatch), "{err:?}");

    let err = auth::login_with_listener_using(
        &settings(&sim),
        &store.shared(),
        &client,
        browser_that("sim_user=nimbusnotes&sim_deny=1", |l| l, page.clone()),
        |_| {},
        GENEROUS,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, AuthError::Denied), "{err:?}");
    assert!(store.accounts().unwrap().is_empty());
    assert_eq!(
        token_requests(&sim, "authorization_code"),
        0,
        "no code was exchanged"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn tokens_are_refreshed_before_expiry_and_the_old_refresh_token_is_spent() {
    let mut config = SimConfig::for_tests(24);
    // Inside the 30 s margin from the start: every use wants a refresh.
    config.access_token_lifetime = Duration::from_secs(20);
    let sim = sim::start(config, 0).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let (account, _) = login_as(&sim, &store, "nimbusnotes").await.unwrap();
    let before = store.tokens(account.id).unwrap().unwrap();

    let manager = TokenManager::new(store.shared(), settings(&sim));
    let access = manager.access_token(account.id).await.unwrap();
    assert_ne!(access, before.access_token);
    let after = store.tokens(account.id).unwrap().unwrap();
    assert_eq!(
        after.access_token, access,
        "the new token is stored before it is handed out"
    );
    assert_ne!(
        after.refresh_token, before.refresh_token,
        "refresh tokens rotate"
    );
    assert_eq!(token_requests(&sim, "refresh_token"), 1);
    let client = XClient::new(&sim.api_base());
    client.users_me(&access).await.unwrap();

    // The spent refresh token no longer works at the simulator.
    let spent = before.refresh_token.unwrap();
    let err = auth::refresh_tokens(&settings(&sim), &spent)
        .await
        .unwrap_err();
    assert!(matches!(err, AuthError::RefreshRejected { .. }), "{err:?}");
    sim.shutdown().await;
}

#[tokio::test]
async fn concurrent_callers_share_one_refresh() {
    let sim = sim::start(SimConfig::for_tests(25), 0).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let (account, _) = login_as(&sim, &store, "nimbusnotes").await.unwrap();
    // perch believes the access token has just expired; the refreshed one lives the usual two
    // hours, so a caller that arrives after the refresh (a busy machine) simply uses it.
    let mut stored = store.tokens(account.id).unwrap().unwrap();
    stored.expires_at = chrono::Utc::now() - chrono::Duration::seconds(1);
    store.put_tokens(account.id, &stored).unwrap();
    let manager = TokenManager::new(store.shared(), settings(&sim));
    let calls = (0..8).map(|_| {
        let manager = manager.clone();
        tokio::spawn(async move { manager.access_token(account.id).await.unwrap() })
    });
    let tokens: Vec<_> = futures::future::join_all(calls)
        .await
        .into_iter()
        .map(|t| t.unwrap())
        .collect();
    assert!(
        tokens.windows(2).all(|w| w[0] == w[1]),
        "everyone got the one new token"
    );
    assert_eq!(token_requests(&sim, "refresh_token"), 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_401_is_fixed_by_one_refresh_and_one_retry() {
    let sim = sim::start(SimConfig::for_tests(26), 0).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let (account, _) = login_as(&sim, &store, "nimbusnotes").await.unwrap();
    sim.control().expire_access_tokens("nimbusnotes").unwrap();
    let manager = TokenManager::new(store.shared(), settings(&sim));
    let client = XClient::new(&sim.api_base());
    let me = manager
        .with_token(account.id, |token| {
            let client = client.clone();
            async move { client.users_me(&token).await }
        })
        .await
        .unwrap();
    assert_eq!(me.data.username, "nimbusnotes");
    assert_eq!(token_requests(&sim, "refresh_token"), 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_revoked_grant_ends_in_token_expired_until_reauthorized() {
    let sim = sim::start(SimConfig::for_tests(27), 0).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let (account, _) = login_as(&sim, &store, "nimbusnotes").await.unwrap();
    let client = XClient::new(&sim.api_base());

    // Some mentions are stored before the grant is revoked.
    let token = store.tokens(account.id).unwrap().unwrap().access_token;
    let page = client
        .mentions_page(&token, &account.twitter_id, None, None)
        .await
        .unwrap()
        .data;
    let mentions: Vec<_> = page
        .posts
        .iter()
        .map(|p| perch::x::to_mention(p, &account, Utc::now()))
        .collect();
    store
        .commit_page(account.id, &mentions, page.newest_id)
        .unwrap();
    let stored = store
        .count(&FeedFilter {
            account: Some(account.id),
            status: None,
        })
        .unwrap();
    assert!(stored > 0);

    sim.control().revoke_grant("nimbusnotes").unwrap();
    let manager = TokenManager::new(store.shared(), settings(&sim));
    let result = manager
        .with_token(account.id, |token| {
            let client = client.clone();
            async move { client.users_me(&token).await }
        })
        .await;
    match result {
        Err(CallError::Auth(e @ AuthError::RefreshRejected { .. })) => {
            assert!(e.needs_reauthorization())
        }
        other => panic!("{other:?}"),
    }
    let expired = store.account(account.id).unwrap().unwrap();
    assert_eq!(expired.sync_status, SyncStatus::TokenExpired);
    let message = expired.error_message.unwrap();
    assert!(
        message.contains("@nimbusnotes") && message.contains("reauthorize"),
        "{message}"
    );

    // Reauthorizing restores the account, its mentions and its cursor.
    let (again, reauthorized) = login_as(&sim, &store, "nimbusnotes").await.unwrap();
    assert!(reauthorized);
    assert_eq!(again.id, account.id);
    assert_eq!(again.sync_status, SyncStatus::Active);
    assert_eq!(again.error_message, None);
    assert_eq!(
        store
            .count(&FeedFilter {
                account: Some(account.id),
                status: None
            })
            .unwrap(),
        stored
    );
    assert_eq!(store.cursor(account.id).unwrap(), page.newest_id);
    manager.access_token(account.id).await.unwrap();
    sim.shutdown().await;
}
