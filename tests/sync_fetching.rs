//! The sync engine fetching mentions from the simulator over loopback: pages, the cursor, the
//! first-sync backfill, restarts, and pages that are only partly good. Assertions are on the
//! store and on the simulator's request log.

#[path = "support/sync.rs"]
mod support;

use std::collections::HashSet;
use std::time::Duration;

use perch::domain::SyncStatus;
use perch::sim::{EndpointLimit, Faults, RateLimitProfile};
use perch::sync::{Command, SyncSettings};
use support::{Harness, fast_settings, query_param, sim_config};

const TIMEOUT: Duration = Duration::from_secs(10);

fn once() -> SyncSettings {
    // Only the first poll (and what fetch-now asks for) during the test.
    SyncSettings {
        poll_interval: Duration::from_secs(3600),
        ..fast_settings()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_are_followed_and_the_cursor_moves_once_with_the_last_page() {
    // 250 mentions = 3 pages of 100; the budget allows 2 requests per 4-second window, so the
    // first sync stops after page 2 and must continue (not restart) after the reset.
    let mut config = sim_config(1, 250);
    config.rate_limits = RateLimitProfile {
        window: Duration::from_secs(4),
        mentions: EndpointLimit::per_window(2),
        ..RateLimitProfile::pay_per_use()
    };
    let h = Harness::start(config, TIMEOUT).await;
    let engine = h.engine(once());

    h.wait_for_status(0, SyncStatus::RateLimited).await;
    assert_eq!(h.stored(0), 200, "two pages are committed as they arrive");
    assert_eq!(
        h.cursor(0),
        None,
        "the cursor does not move before the last page"
    );
    assert!(
        h.account(0)
            .error_message
            .unwrap()
            .starts_with("rate limited until ")
    );

    h.wait_until("the third page after the reset", |h| {
        h.stored(0) == 250 && h.cursor(0).is_some()
    })
    .await;
    h.wait_for_status(0, SyncStatus::Active).await;
    let newest = h
        .mentions(0)
        .iter()
        .map(|m| m.tweet_id.parse::<u64>().unwrap())
        .max();
    assert_eq!(
        h.cursor(0),
        newest,
        "the cursor is the newest id of the first page"
    );

    let log = h.mention_requests(0);
    assert_eq!(log.len(), 3, "{log:#?}");
    assert!(
        log.iter().all(|r| r.status == 200),
        "no request was refused"
    );
    assert!(log.iter().all(|r| query_param(r, "since_id").is_none()));
    assert!(query_param(&log[0], "pagination_token").is_none());
    assert!(query_param(&log[1], "pagination_token").is_some());
    assert!(
        query_param(&log[2], "pagination_token").is_some(),
        "the third page continues with next_token instead of starting over"
    );

    // The next poll asks only for what is newer than the cursor.
    h.control.generate_mentions_for("user00", 3).unwrap();
    engine.send(Command::FetchNow(Some(h.accounts[0].id))).await;
    h.wait_until("the three new mentions", |h| h.stored(0) == 253)
        .await;
    let log = h.mention_requests(0);
    assert_eq!(log.len(), 4);
    assert_eq!(
        query_param(&log[3], "since_id").and_then(|s| s.parse::<u64>().ok()),
        newest
    );
    engine.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_sync_backfills_the_800_most_recent_and_stops() {
    let h = Harness::start(sim_config(1, 900), TIMEOUT).await;
    let engine = h.engine(once());
    h.wait_until("800 mentions and a cursor", |h| {
        h.stored(0) == 800 && h.cursor(0).is_some()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let log = h.mention_requests(0);
    assert_eq!(log.len(), 8, "eight pages of 100, then no more");
    assert_eq!(h.stored(0), 800);
    engine.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backfill_cap_is_configurable_and_keeps_the_newest() {
    let h = Harness::start(sim_config(1, 400), TIMEOUT).await;
    let engine = h.engine(SyncSettings {
        backfill_cap: 250,
        ..once()
    });
    h.wait_until("250 mentions and a cursor", |h| {
        h.stored(0) == 250 && h.cursor(0).is_some()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(h.stored(0), 250, "no more than the cap");
    assert_eq!(h.mention_requests(0).len(), 3, "three pages, then it stops");
    engine.stop().await;
    // The newest first: the stored ones are exactly the 250 newest of the simulator's 400.
    let stored: HashSet<u64> = h
        .mentions(0)
        .iter()
        .map(|m| m.tweet_id.parse().unwrap())
        .collect();
    assert_eq!(h.cursor(0), stored.iter().copied().max());
    let token = h.tokens.access_token(h.accounts[0].id).await.unwrap();
    let mut all: Vec<u64> = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let page = h
            .client
            .mentions_page(&token, &h.accounts[0].twitter_id, None, next.as_deref())
            .await
            .unwrap()
            .data;
        all.extend(page.posts.iter().map(|p| p.tweet_id));
        match page.next_token {
            Some(t) => next = Some(t),
            None => break,
        }
    }
    all.sort_unstable_by(|a, b| b.cmp(a));
    let newest: HashSet<u64> = all.into_iter().take(250).collect();
    assert_eq!(stored, newest);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_resumes_from_the_committed_cursor_with_no_duplicates() {
    let h = Harness::start(sim_config(1, 30), TIMEOUT).await;
    let engine = h.engine(once());
    h.wait_until("the backlog", |h| {
        h.stored(0) == 30 && h.cursor(0).is_some()
    })
    .await;
    h.wait_for_status(0, SyncStatus::Active).await;
    engine.stop().await;
    let cursor = h.cursor(0);

    // New mentions arrive while perch is not running.
    h.control.generate_mentions_for("user00", 5).unwrap();
    let engine = h.engine(once());
    h.wait_until("the five new mentions", |h| h.stored(0) == 35)
        .await;
    let log = h.mention_requests(0);
    assert_eq!(log.len(), 2);
    assert_eq!(
        query_param(&log[1], "since_id").and_then(|s| s.parse::<u64>().ok()),
        cursor,
        "the restarted engine asks from the committed cursor"
    );
    let ids: Vec<String> = h.mentions(0).into_iter().map(|m| m.tweet_id).collect();
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "no mention is stored twice");
    assert_eq!(ids.len(), 35);
    h.wait_until("the account's total", |h| {
        h.account(0).total_mentions_tracked == 35
    })
    .await;
    engine.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_posts_retweets_and_partial_errors_do_not_lose_the_rest_of_a_page() {
    let h = Harness::start(sim_config(1, 30), TIMEOUT).await;
    h.set_faults(Faults {
        partial_errors: true,
        missing_authors: true,
        bad_posts: true,
        retweets: true,
        ..Faults::default()
    });
    let engine = h.engine(once());
    h.wait_until("a cursor", |h| h.cursor(0).is_some()).await;
    h.wait_for_status(0, SyncStatus::Active).await;
    // 30 posts in one page: post 1 has no text (skipped), every third (2, 5, ... 29) is a
    // retweet (10, filtered); the other 19 are stored.
    assert_eq!(h.stored(0), 19);
    let mentions = h.mentions(0);
    assert!(
        mentions.iter().any(|m| m.sender.username.is_none()),
        "a post whose author is missing is stored with an unknown sender"
    );
    assert!(mentions.iter().any(|m| m.sender.username.is_some()));
    assert_eq!(h.account(0).error_message, None);
    engine.stop().await;
}

/// A stopped engine stops its polls too (issue 16: a service on PostgreSQL that stops leading
/// stops its engine, and a poll still running would go on fetching and committing beside the
/// new leader's). With every answer from X slow, the engine is stopped while its first polls
/// wait: nothing is stored afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polls_under_way_end_with_the_engine_and_commit_nothing_after_it_stopped() {
    let h = Harness::start(sim_config(2, 30), TIMEOUT).await;
    h.set_faults(Faults {
        slow_response: Some(Duration::from_secs(2)),
        slow_probability: 1.0,
        ..Faults::default()
    });
    let engine = h.engine(once());
    // The first polls start at once and wait for X's slow answers.
    let started = std::time::Instant::now();
    while !engine
        .events
        .lock()
        .unwrap()
        .iter()
        .any(|e| matches!(e, perch::sync::SyncEvent::Started { .. }))
    {
        assert!(started.elapsed() < TIMEOUT, "the first polls did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!((h.stored(0), h.stored(1)), (0, 0), "still waiting for X");
    engine.stop().await;
    // Well past the slow answers: had the polls gone on, their pages would be in the store.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        (h.stored(0), h.stored(1)),
        (0, 0),
        "no poll commits after the engine stopped"
    );
}
