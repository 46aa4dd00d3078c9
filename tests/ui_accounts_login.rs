//! The dashboard's login task (`a` and `R`) against the X API simulator over real loopback HTTP:
//! the listener path (a "browser" follows the authorize redirect to perch's listener), the paste
//! path (the redirect address typed into the dialog), and the outcomes the dialog tells apart:
//! denial, state mismatch, a busy port, no client id; and a reauthorization that restores
//! `active` without losing the account's mentions.

#[path = "support/sim_env.rs"]
mod sim_env;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use perch::app::Action;
use perch::app::accounts::{LoginEvent, LoginFailureKind, LoginPurpose, LoginSuccess};
use perch::config::Config;
use perch::dashboard::login::{LoginTask, Opener};
use perch::domain::SyncStatus;
use perch::sim::{self, SimConfig, SimHandle};
use perch::store::{FeedFilter, Store};
use tokio::sync::mpsc;

/// Everything here talks over sockets on a possibly busy machine: wait generously.
const GENEROUS: Duration = Duration::from_secs(60);

struct Setup {
    sim: SimHandle,
    _dir: tempfile::TempDir,
    store: Store,
    config: Config,
}

impl Setup {
    /// Logins stored straight into the test's store (no service here).
    fn logins(&self) -> Arc<dyn perch::dashboard::login::LoginSink> {
        Arc::new(perch::dashboard::login::StoreLogins {
            store: self.store.clone(),
            client: perch::x::XClient::new(&self.config.api_base),
        })
    }
}

async fn setup(redirect_uri: &str) -> Setup {
    let sim = sim::start(SimConfig::for_tests(11), 0)
        .await
        .expect("simulator starts");
    let dir = tempfile::tempdir().unwrap();
    let config = sim_env::config(&sim, dir.path(), &[("PERCH_REDIRECT_URI", redirect_uri)]);
    let store = Store::open(&config.data_dir).expect("store");
    Setup {
        sim,
        _dir: dir,
        store,
        config,
    }
}

/// Collects the task's reports until it finishes.
async fn reports_until_finished(rx: &mut mpsc::Receiver<Action>) -> Vec<LoginEvent> {
    let mut events = Vec::new();
    loop {
        let action = tokio::time::timeout(GENEROUS, rx.recv())
            .await
            .expect("the login reports in time")
            .expect("the login task reports");
        let Action::Login(event) = action else {
            panic!("unexpected action {action:?}");
        };
        let done = matches!(event, LoginEvent::Finished { .. });
        events.push(event);
        if done {
            return events;
        }
    }
}

fn finished(events: &[LoginEvent]) -> &Result<LoginSuccess, perch::app::accounts::LoginFailure> {
    match events.last() {
        Some(LoginEvent::Finished { outcome, .. }) => outcome,
        other => panic!("not finished: {other:?}"),
    }
}

/// A "browser": follows the authorize redirect to perch's listener, as a real one would, with
/// the simulator-only parameters given. Stores the page perch answered with.
fn browser(extra: &'static str, page: Arc<Mutex<Option<String>>>) -> Opener {
    Box::new(move |url: &str| {
        let url = format!("{url}{extra}");
        tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .timeout(GENEROUS)
                .build()
                .unwrap();
            let text = match client.get(&url).send().await {
                Ok(r) => r.text().await.unwrap_or_default(),
                Err(e) => format!("browser failed: {e}"),
            };
            *page.lock().unwrap() = Some(text);
        });
    })
}

/// No browser at all (SSH): the URL is only shown.
fn no_browser() -> Opener {
    Box::new(|_url: &str| {})
}

/// What the simulator redirects to after approval, fetched without following it.
async fn approve(url: &str, extra: &str) -> String {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(GENEROUS)
        .build()
        .unwrap();
    let response = client.get(format!("{url}{extra}")).send().await.unwrap();
    assert_eq!(response.status(), 302);
    response.headers()["location"].to_str().unwrap().to_string()
}

fn listening_url(events: &[LoginEvent]) -> String {
    match events.first() {
        Some(LoginEvent::Listening { url, .. }) => url.clone(),
        other => panic!("the first report is the URL: {other:?}"),
    }
}

#[tokio::test]
async fn the_browser_path_adds_the_account_through_the_loopback_listener() {
    let s = setup("http://127.0.0.1:0/callback").await;
    let (tx, mut rx) = mpsc::channel(16);
    let page = Arc::new(Mutex::new(None));
    let _task = LoginTask::spawn(
        1,
        LoginPurpose::Add,
        s.logins(),
        s.config.clone(),
        browser("&sim_user=mara_quill", page.clone()),
        tx,
    );
    let events = reports_until_finished(&mut rx).await;
    let url = listening_url(&events);
    assert!(url.starts_with(&s.sim.authorize_url()), "{url}");
    assert!(
        events.contains(&LoginEvent::Exchanging { login_id: 1 }),
        "{events:?}"
    );
    let success = finished(&events).as_ref().expect("login succeeds").clone();
    assert_eq!(success.handle, "@mara_quill");
    assert!(!success.reauthorized);

    let account = s
        .store
        .account(success.account_id)
        .unwrap()
        .expect("stored");
    assert_eq!(account.sync_status, SyncStatus::Active);
    assert!(account.is_active);
    assert!(s.store.tokens(account.id).unwrap().is_some());
    // The browser was told which account was added.
    let deadline = tokio::time::Instant::now() + GENEROUS;
    loop {
        if let Some(text) = page.lock().unwrap().clone() {
            assert!(text.contains("@mara_quill added"), "{text}");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the browser got no page"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    s.sim.shutdown().await;
}

#[tokio::test]
async fn the_paste_path_waits_through_a_bad_paste_and_takes_the_redirect_address() {
    let s = setup("http://127.0.0.1:0/callback").await;
    let (tx, mut rx) = mpsc::channel(16);
    let task = LoginTask::spawn(
        7,
        LoginPurpose::Add,
        s.logins(),
        s.config.clone(),
        no_browser(),
        tx,
    );
    let first = tokio::time::timeout(GENEROUS, rx.recv())
        .await
        .unwrap()
        .unwrap();
    let Action::Login(LoginEvent::Listening { url, login_id: 7 }) = first else {
        panic!("{first:?}");
    };
    assert!(task.paste("this is not it".into()));
    let rejected = tokio::time::timeout(GENEROUS, rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(&rejected, Action::Login(LoginEvent::PasteRejected { message, .. }) if message.contains("code=")),
        "{rejected:?}"
    );

    let location = approve(&url, "&sim_user=nimbus_help").await;
    assert!(task.paste(location));
    let events = reports_until_finished(&mut rx).await;
    let success = finished(&events).as_ref().expect("login succeeds");
    assert_eq!(success.handle, "@nimbus_help");
    assert!(s.store.account(success.account_id).unwrap().is_some());
    s.sim.shutdown().await;
}

#[tokio::test]
async fn a_denial_and_a_foreign_state_are_reported_as_such() {
    let s = setup("http://127.0.0.1:0/callback").await;
    let (tx, mut rx) = mpsc::channel(16);
    let page = Arc::new(Mutex::new(None));
    let _task = LoginTask::spawn(
        1,
        LoginPurpose::Add,
        s.logins(),
        s.config.clone(),
        browser("&sim_deny=1", page),
        tx,
    );
    let events = reports_until_finished(&mut rx).await;
    let failure = finished(&events).as_ref().expect_err("denied");
    assert_eq!(failure.kind, LoginFailureKind::Denied);
    assert!(failure.message.contains("declined"), "{}", failure.message);

    let (tx, mut rx) = mpsc::channel(16);
    let task = LoginTask::spawn(
        2,
        LoginPurpose::Add,
        s.logins(),
        s.config.clone(),
        no_browser(),
        tx,
    );
    let first = tokio::time::timeout(GENEROUS, rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(first, Action::Login(LoginEvent::Listening { .. })));
    assert!(task.paste("http://127.0.0.1:8765/callback?state=forged&code=stolen".into()));
    let events = reports_until_finished(&mut rx).await;
    let failure = finished(&events).as_ref().expect_err("refused");
    assert_eq!(failure.kind, LoginFailureKind::StateMismatch);
    assert!(s.store.accounts().unwrap().is_empty(), "nothing was added");
    s.sim.shutdown().await;
}

#[tokio::test]
async fn a_busy_port_and_a_missing_client_id_say_what_to_change() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let s = setup(&format!("http://127.0.0.1:{port}/callback")).await;
    let (tx, mut rx) = mpsc::channel(16);
    let _task = LoginTask::spawn(
        1,
        LoginPurpose::Add,
        s.logins(),
        s.config.clone(),
        no_browser(),
        tx,
    );
    let events = reports_until_finished(&mut rx).await;
    assert_eq!(
        events.len(),
        1,
        "no URL is shown when nobody listens: {events:?}"
    );
    let failure = finished(&events).as_ref().expect_err("port busy");
    assert_eq!(failure.kind, LoginFailureKind::PortBusy);
    assert!(
        failure.message.contains(&port.to_string())
            && failure.message.contains("PERCH_REDIRECT_URI"),
        "{}",
        failure.message
    );

    let mut config = s.config.clone();
    config.client_id = None;
    let (tx, mut rx) = mpsc::channel(16);
    let _task = LoginTask::spawn(1, LoginPurpose::Add, s.logins(), config, no_browser(), tx);
    let events = reports_until_finished(&mut rx).await;
    let failure = finished(&events).as_ref().expect_err("no client id");
    assert_eq!(failure.kind, LoginFailureKind::NoClientId);
    assert!(
        failure.message.contains("PERCH_CLIENT_ID"),
        "{}",
        failure.message
    );
    s.sim.shutdown().await;
}

#[tokio::test]
async fn reauthorizing_a_token_expired_account_restores_it_and_keeps_its_mentions() {
    let s = setup("http://127.0.0.1:0/callback").await;
    // First login, then some mentions, then the grant dies.
    let (tx, mut rx) = mpsc::channel(16);
    let _task = LoginTask::spawn(
        1,
        LoginPurpose::Add,
        s.logins(),
        s.config.clone(),
        browser("&sim_user=nimbusnotes", Arc::new(Mutex::new(None))),
        tx,
    );
    let events = reports_until_finished(&mut rx).await;
    let added = finished(&events).as_ref().expect("added").clone();
    let mut account = s.store.account(added.account_id).unwrap().unwrap();
    let mentions: Vec<_> = (0..3u64)
        .map(|i| {
            let id = 1_990_000_000_000_000_000 + i;
            perch::domain::Mention {
                id: uuid::Uuid::new_v4(),
                tweet_id: id.to_string(),
                timestamp: chrono::Utc::now(),
                text: format!("@nimbusnotes hello {i}"),
                sender: Default::default(),
                sent_to: perch::domain::SentTo::account(&account),
                status: perch::domain::MentionStatus::Pending,
                public_response: None,
                dm_response: None,
                conversation_id: None,
                referenced_posts: Vec::new(),
                error_message: None,
                created_at: chrono::Utc::now(),
                updated_at: chrono::Utc::now(),
            }
        })
        .collect();
    s.store
        .commit_page(account.id, &mentions, Some(1_990_000_000_000_000_002))
        .unwrap();
    s.sim.control().revoke_grant("nimbusnotes").unwrap();
    account.sync_status = SyncStatus::TokenExpired;
    account.error_message = Some(perch::auth::token_expired_message("nimbusnotes"));
    s.store.put_account(&account).unwrap();

    let (tx, mut rx) = mpsc::channel(16);
    let _task = LoginTask::spawn(
        2,
        LoginPurpose::Reauthorize {
            account_id: account.id,
            twitter_id: account.twitter_id.clone(),
            handle: account.handle(),
        },
        s.logins(),
        s.config.clone(),
        browser("&sim_user=nimbusnotes", Arc::new(Mutex::new(None))),
        tx,
    );
    let events = reports_until_finished(&mut rx).await;
    let again = finished(&events).as_ref().expect("reauthorized");
    assert!(again.reauthorized);
    assert_eq!(
        again.account_id, account.id,
        "the same account, not a new one"
    );
    let restored = s.store.account(account.id).unwrap().unwrap();
    assert_eq!(restored.sync_status, SyncStatus::Active);
    assert_eq!(restored.error_message, None);
    let kept = s
        .store
        .count(&FeedFilter {
            account: Some(account.id),
            status: None,
        })
        .unwrap();
    assert_eq!(kept, 3, "its mentions are kept");
    assert_eq!(
        s.store.cursor(account.id).unwrap(),
        Some(1_990_000_000_000_000_002)
    );
    assert_eq!(s.store.accounts().unwrap().len(), 1);
    s.sim.shutdown().await;
}
