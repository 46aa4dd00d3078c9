//! Sends belong to their client until X answers (issue 11, item 5). A dashboard session asks the
//! service for a reply and goes away: one that had left is unconfirmed at once and settled when
//! X's answer arrives; one still waiting out a 429 is cancelled, its text kept as the draft, and
//! never sent later.

#[path = "support/sim_env.rs"]
mod sim_env;

use std::time::{Duration, Instant};

use perch::cli::{App, add_sim_accounts};
use perch::client::{Connection, Link};
use perch::config::Config;
use perch::domain::MentionStatus;
use perch::outbox::{OutboxCommand, ReplyKind, SendRequest};
use perch::sim::{self, Faults, SimConfig, SimHandle};
use perch::store::{FeedFilter, OutboxState};

const PATIENCE: Duration = Duration::from_secs(60);

struct Setup {
    sim: SimHandle,
    _dir: tempfile::TempDir,
    config: Config,
    app: App,
}

async fn setup() -> Setup {
    let sim = sim::start(SimConfig::for_tests(41), 0).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = sim_env::config(&sim, dir.path(), &[("PERCH_POLL_INTERVAL", "3600")]);
    let app = App::open(&config).await.unwrap();
    add_sim_accounts(&app, &["nimbus_help".to_string()])
        .await
        .unwrap();
    Setup {
        sim,
        _dir: dir,
        config,
        app,
    }
}

async fn wait_for<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(start.elapsed() < PATIENCE, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn connect(socket: &std::path::Path, config: &Config) -> std::sync::Arc<Link> {
    let (socket, pricing) = (socket.to_path_buf(), config.pricing.clone());
    let (link, mut incoming) = tokio::task::spawn_blocking(move || {
        Link::connect(
            perch::client::Endpoint::Socket(socket.to_path_buf()),
            pricing,
            None,
        )
    })
    .await
    .unwrap()
    .unwrap();
    tokio::spawn(async move { while incoming.recv().await.is_some() {} });
    link
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_out_when_its_client_leaves_is_unconfirmed_then_settled_by_xs_answer() {
    let s = setup().await;
    let service = perch::service::start(s.config.clone(), Some(s.app.store.clone()))
        .await
        .unwrap();
    let store = service.hub.sled_store().unwrap();
    // The engine polls once at start: wait for the mentions.
    let mention = wait_for("mentions", || {
        store
            .page_after(&FeedFilter::default(), None, 1)
            .ok()?
            .into_iter()
            .next()
    })
    .await;
    let key = mention.key();
    // X takes 3 s to answer: the request is out when the client goes.
    s.sim.control().set_faults(Faults {
        slow_response: Some(Duration::from_secs(3)),
        slow_probability: 1.0,
        ..Faults::default()
    });
    let link = connect(&service.paths.socket, &s.config).await;
    let request = SendRequest {
        key,
        kind: ReplyKind::Public,
        text: "looking into it now".into(),
        send_anyway: false,
    };
    let l = link.clone();
    tokio::task::spawn_blocking(move || l.outbox(OutboxCommand::Send(request)))
        .await
        .unwrap()
        .unwrap();
    wait_for("the send to be out", || {
        let e = store.outbox_current(key).ok()??;
        (e.state == OutboxState::Sending).then_some(())
    })
    .await;
    link.close();
    let entry = wait_for("unconfirmed at once", || {
        let e = store.outbox_current(key).ok()??;
        (e.state == OutboxState::Unconfirmed).then_some(e)
    })
    .await;
    assert!(entry.may_have_been_sent);

    // X's answer arrives after all and settles it: sent, once.
    // A finished entry is no longer the mention's current one: read the newest of its history.
    wait_for("settled as sent", || {
        let e = store.outbox_history(key).ok()?.pop()?;
        (e.state == OutboxState::Sent).then_some(())
    })
    .await;
    let m = store.mention(key).unwrap().unwrap();
    assert_eq!(m.status, MentionStatus::Replied);
    assert_eq!(s.sim.control().posts().len(), 1, "one post, never two");
    service.shutdown().await;
    s.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_waiting_out_a_429_when_its_client_leaves_is_cancelled_and_never_sent() {
    let s = setup().await;
    let service = perch::service::start(s.config.clone(), Some(s.app.store.clone()))
        .await
        .unwrap();
    let store = service.hub.sled_store().unwrap();
    let mention = wait_for("mentions", || {
        store
            .page_after(&FeedFilter::default(), None, 1)
            .ok()?
            .into_iter()
            .next()
    })
    .await;
    let key = mention.key();
    s.sim.control().set_faults(Faults {
        rate_limit_storm: vec!["nimbus_help".into()],
        ..Faults::default()
    });
    let link = connect(&service.paths.socket, &s.config).await;
    let request = SendRequest {
        key,
        kind: ReplyKind::Public,
        text: "keep this draft".into(),
        send_anyway: false,
    };
    let l = link.clone();
    tokio::task::spawn_blocking(move || l.outbox(OutboxCommand::Send(request)))
        .await
        .unwrap()
        .unwrap();
    wait_for("the send to wait out the 429", || {
        let e = store.outbox_current(key).ok()??;
        (e.state == OutboxState::Waiting).then_some(())
    })
    .await;
    link.close();
    wait_for("cancelled", || {
        let e = store.outbox_history(key).ok()?.pop()?;
        (e.state == OutboxState::Cancelled).then_some(())
    })
    .await;
    let m = store.mention(key).unwrap().unwrap();
    assert_eq!(m.status, MentionStatus::Pending);
    assert_eq!(store.draft(key).unwrap().unwrap().text, "keep this draft");
    // The limit lifts: nothing goes out by itself.
    s.sim.control().set_faults(Faults::default());
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(s.sim.control().posts().is_empty());
    service.shutdown().await;
    s.sim.shutdown().await;
}

/// A client that connects and sends nothing is closed once the first-request-head limit (10 s)
/// has passed (it cannot hold the service's resources forever), while an upgraded dashboard
/// session, and a keep-alive HTTP client, may stay quiet as long as they like: after the
/// silent one is closed, both still answer on the connections they opened before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_connection_is_closed_but_a_quiet_session_stays() {
    use tokio::io::AsyncReadExt as _;
    let s = setup().await;
    let service = perch::service::start(s.config.clone(), Some(s.app.store.clone()))
        .await
        .unwrap();
    let link = connect(&service.paths.socket, &s.config).await;
    // A keep-alive HTTP client of the socket, with one request made before the wait.
    let http = reqwest::Client::builder()
        .unix_socket(service.paths.socket.clone())
        .pool_idle_timeout(None)
        .build()
        .unwrap();
    let token = std::fs::read_to_string(&service.paths.token).unwrap();
    let status_of = |http: reqwest::Client, token: String| async move {
        http.get("http://perch/api/v1/accounts/")
            .bearer_auth(token.trim())
            .send()
            .await
            .map(|r| r.status())
    };
    let first = status_of(http.clone(), token.clone()).await;
    assert!(first.as_ref().is_ok_and(|s| s.is_success()), "{first:?}");
    let mut silent = tokio::net::UnixStream::connect(&service.paths.socket)
        .await
        .unwrap();
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(PATIENCE, silent.read(&mut buf))
        .await
        .expect("the service closes a connection that sends nothing");
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "closed, not answered: {read:?}"
    );
    // The session said nothing all that time and still answers.
    let l = link.clone();
    let count = tokio::task::spawn_blocking(move || {
        perch::app::FeedSource::count(&*l, &FeedFilter::default())
    })
    .await
    .unwrap();
    assert!(count.is_ok(), "{count:?}");
    // The keep-alive connection was quiet as long, and is still good.
    let again = status_of(http, token).await;
    assert!(again.as_ref().is_ok_and(|s| s.is_success()), "{again:?}");
    link.close();
    service.shutdown().await;
    s.sim.shutdown().await;
}
