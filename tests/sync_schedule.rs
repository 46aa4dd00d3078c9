//! The sync engine's schedule against the simulator over loopback: many accounts at once with one
//! failing, bounded concurrency, fetch-now coalescing, pause and resume.

#[path = "support/sync.rs"]
mod support;

use std::time::Duration;

use perch::domain::SyncStatus;
use perch::sim::Faults;
use perch::sync::{Command, SyncSettings};
use support::{Harness, fast_settings, sim_config};

const TIMEOUT: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_accounts_sync_while_one_fails_and_the_others_are_unaffected() {
    let h = Harness::start(sim_config(50, 5), TIMEOUT).await;
    h.set_faults(Faults {
        only_users: vec!["user07".into()],
        server_error_probability: 1.0,
        ..Faults::default()
    });
    let engine = h.engine(fast_settings());
    h.wait_until("49 accounts caught up and user07 in error", |h| {
        (0..50).all(|i| {
            if i == 7 {
                h.account(i).sync_status == SyncStatus::Error
            } else {
                h.caught_up(i) && h.account(i).sync_status == SyncStatus::Active
            }
        })
    })
    .await;
    assert_eq!(h.stored(7), 0);
    assert_eq!(h.cursor(7), None);
    let failing = h.mention_requests(7);
    assert!(failing.iter().all(|r| r.status == 503));
    engine.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_more_requests_are_in_flight_than_allowed() {
    // Every answer takes 400 ms; twelve accounts, three slots.
    let h = Harness::start(sim_config(12, 3), TIMEOUT).await;
    h.set_faults(Faults {
        slow_response: Some(Duration::from_millis(400)),
        slow_probability: 1.0,
        ..Faults::default()
    });
    let engine = h.engine(SyncSettings {
        max_in_flight: 3,
        ..fast_settings()
    });
    h.wait_until("every account caught up", |h| {
        (0..12).all(|i| h.caught_up(i))
    })
    .await;
    engine.stop().await;
    // A request logged at `at` was being answered during (at - 400 ms, at]. Shrunk to
    // [at - 300 ms, at - 100 ms], two requests that ran one after the other in the same slot
    // cannot overlap, so more than three overlapping means more than three in flight.
    let spans: Vec<(i64, i64)> = h
        .control
        .request_log()
        .iter()
        .filter(|r| r.path.ends_with("/mentions"))
        .map(|r| {
            let end = r.at.timestamp_millis();
            (end - 300, end - 100)
        })
        .collect();
    assert!(spans.len() >= 12);
    let most = spans
        .iter()
        .map(|(start, _)| {
            spans
                .iter()
                .filter(|(s, e)| s <= start && start <= e)
                .count()
        })
        .max()
        .unwrap();
    assert!(most <= 3, "{most} requests overlapped");
    assert!(most >= 2, "the slots were used in parallel ({most})");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_now_jumps_the_queue_and_coalesces_repeated_presses() {
    let h = Harness::start(sim_config(1, 5), TIMEOUT).await;
    let engine = h.engine(SyncSettings {
        poll_interval: Duration::from_secs(3600),
        ..fast_settings()
    });
    let id = h.accounts[0].id;
    h.wait_until("the first sync", |h| {
        h.caught_up(0) && h.cursor(0).is_some()
    })
    .await;
    h.wait_until("the first poll finished", |_| engine.finished(id) == 1)
        .await;
    assert_eq!(h.mention_requests(0).len(), 1);

    // Each answer now takes a second: eleven presses in a row give one poll now and one more
    // right after it, not eleven.
    h.set_faults(Faults {
        slow_response: Some(Duration::from_secs(1)),
        slow_probability: 1.0,
        ..Faults::default()
    });
    for _ in 0..11 {
        engine.send(Command::FetchNow(Some(id))).await;
    }
    h.wait_until("two more polls", |_| engine.finished(id) == 3)
        .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(engine.finished(id), 3);
    assert_eq!(h.mention_requests(0).len(), 3, "the presses were coalesced");
    engine.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_stops_an_account_within_one_cycle_and_resume_starts_it_again() {
    let mut config = sim_config(2, 3);
    // A short rate-limit window, so the budget does not slow the polls down.
    config.rate_limits.window = Duration::from_secs(10);
    let h = Harness::start(config, TIMEOUT).await;
    let engine = h.engine(SyncSettings {
        poll_interval: Duration::from_millis(200),
        ..fast_settings()
    });
    let id = h.accounts[0].id;
    h.wait_until("a few polls of user00", |h| {
        h.mention_requests(0).len() >= 3
    })
    .await;
    engine.send(Command::Pause(id)).await;
    h.wait_for_status(0, SyncStatus::Paused).await;
    let at_pause = h.mention_requests(0).len();
    let others = h.mention_requests(1).len();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        h.mention_requests(0).len() <= at_pause + 1,
        "at most the poll already in flight"
    );
    assert!(h.mention_requests(1).len() > others, "user01 keeps polling");
    assert!(!h.account(0).is_active);

    h.control.generate_mentions_for("user00", 2).unwrap();
    engine.send(Command::Resume(id)).await;
    h.wait_until("user00 active and caught up", |h| {
        h.account(0).sync_status == SyncStatus::Active && h.caught_up(0)
    })
    .await;
    engine.stop().await;
}
