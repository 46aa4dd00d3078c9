//! The dashboard reads through the service what it would read from the store itself (issue 11):
//! every read, and the combined reads that make one key one round trip (a page and its count, a
//! row's arrivals, the stats view's figures), give the same answer over the session's socket as
//! from the store, through the session protocol's binary replies. A real service, a real socket.

#[path = "support/sim_env.rs"]
mod sim_env;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use perch::app::FeedSource;
use perch::cli::{App, add_sim_accounts};
use perch::client::Link;
use perch::domain::{AccountId, MentionStatus};
use perch::sim::{self, SimConfig};
use perch::store::{FeedFilter, Store};

const PATIENCE: Duration = Duration::from_secs(60);

/// Reads `read` from the store and through the link until the store holds still across the
/// link's read (the service may store a page meanwhile), and asserts both say the same.
fn agree<T: serde::Serialize>(
    what: &str,
    store: &Store,
    link: &Link,
    read: impl Fn(&dyn FeedSource) -> Result<T, perch::store::StoreError>,
) {
    let json = |v: &T| serde_json::to_value(v).expect("serialisable");
    for _ in 0..50 {
        let before = json(&read(store).expect("the store's read"));
        let via = json(&read(link).unwrap_or_else(|e| panic!("{what} through the service: {e}")));
        let after = json(&read(store).expect("the store's read"));
        if before != after {
            std::thread::sleep(Duration::from_millis(50));
            continue;
        }
        // Not assert_eq: the values are whole pages, too long to read in a failure.
        assert!(via == before, "{what}: the service and the store disagree");
        return;
    }
    panic!("{what}: the store never held still");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_read_through_the_service_matches_the_store() {
    let sim = sim::start(SimConfig::for_tests(57), 0).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = sim_env::config(&sim, dir.path(), &[("PERCH_POLL_INTERVAL", "3600")]);
    let app = App::open(&config).await.unwrap();
    add_sim_accounts(&app, &["nimbus_help".to_string()])
        .await
        .unwrap();
    let store = app.store.clone();
    let service = perch::service::start(config.clone(), Some(store.clone()))
        .await
        .unwrap();
    let (socket, pricing) = (service.paths.socket.clone(), config.pricing.clone());
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

    // The service's first poll stores the account's mentions.
    let start = Instant::now();
    while store.count(&FeedFilter::default()).unwrap() < 5 {
        assert!(start.elapsed() < PATIENCE, "the first poll stored nothing");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let l: Arc<Link> = link.clone();
    let s = store.clone();
    tokio::task::spawn_blocking(move || compare_reads(&s, &l))
        .await
        .unwrap();

    link.close();
    service.shutdown().await;
    sim.shutdown().await;
}

fn compare_reads(store: &Store, link: &Link) {
    let account = store.accounts().unwrap().remove(0);
    let id = account.id;
    let now = Utc::now();
    let filters = [
        FeedFilter::default(),
        FeedFilter {
            account: Some(id),
            status: None,
        },
        FeedFilter {
            account: Some(id),
            status: Some(MentionStatus::Pending),
        },
        FeedFilter {
            account: None,
            status: Some(MentionStatus::Replied),
        },
    ];
    for filter in &filters {
        for newest in [true, false] {
            agree(
                &format!("end_page {filter:?} newest={newest}"),
                store,
                link,
                |s| s.end_page(filter, newest, 7),
            );
        }
        agree(&format!("count {filter:?}"), store, link, |s| {
            s.count(filter)
        });
        let page = store.page_after(filter, None, 6).unwrap();
        if let Some(middle) = page.get(2) {
            let pos = perch::store::FeedPos::from(middle.key());
            agree("page_after a position", store, link, |s| {
                s.page_after(filter, Some(pos), 3)
            });
            agree("page_before a position", store, link, |s| {
                s.page_before(filter, Some(pos), 3)
            });
        }
    }
    let keys: Vec<_> = store
        .page_after(&FeedFilter::default(), None, 4)
        .unwrap()
        .iter()
        .map(|m| m.key())
        .collect();
    assert!(!keys.is_empty());
    agree("arrivals of a row", store, link, |s| s.arrivals(&keys));
    agree("one mention", store, link, |s| s.mention(keys[0]));
    agree("the stats view's figures", store, link, |s| {
        s.account_figures(id, now, 30, 20)
    });
    agree(
        "the figures of an account not in the store",
        store,
        link,
        |s| s.account_figures(AccountId::new_v4(), now, 30, 20),
    );
    agree("accounts", store, link, |s| s.accounts());
    agree("the cost bar", store, link, |s| s.cost_today_and_month(now));
    agree("the open outbox", store, link, |s| s.outbox_open());
}

/// A service that upgrades both connections and then never answers: a call waits for it, and
/// closing the link (the dashboard quitting) ends that wait at once, not after the 30 s reply
/// limit, with an error rather than an answer.
#[test]
fn closing_the_link_ends_a_call_the_service_never_answers() {
    use std::io::{Read as _, Write as _};
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("mute.sock");
    let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let mute = std::thread::spawn(move || {
        let mut held = Vec::new();
        for _ in 0..2 {
            let (mut stream, _) = listener.accept().unwrap();
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                assert_eq!(
                    stream.read(&mut byte).unwrap(),
                    1,
                    "a whole upgrade request"
                );
                head.push(byte[0]);
            }
            let head = String::from_utf8(head).unwrap();
            let token = head
                .lines()
                .find_map(|l| l.strip_prefix("Upgrade: "))
                .unwrap()
                .to_string();
            write!(
                stream,
                "HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: {token}\r\n\r\n"
            )
            .unwrap();
            held.push(stream);
        }
        // Read (and ignore) whatever comes, answering nothing, until the client hangs up.
        let mut buf = [0u8; 1024];
        while held[0].read(&mut buf).is_ok_and(|n| n > 0) {}
    });
    let (link, _incoming) = Link::connect(
        perch::client::Endpoint::Socket(socket.to_path_buf()),
        perch::costs::Pricing::default(),
        None,
    )
    .unwrap();
    let caller = {
        let link = link.clone();
        std::thread::spawn(move || {
            let start = Instant::now();
            let result = link.count(&FeedFilter::default());
            (result, start.elapsed())
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    link.close();
    let (result, waited) = caller.join().unwrap();
    assert!(
        result.is_err(),
        "no answer came, yet the call said {result:?}"
    );
    assert!(
        waited < Duration::from_secs(10),
        "the call waited {waited:?} after the link was closed"
    );
    mute.join().unwrap();
}
