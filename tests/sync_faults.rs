//! Every row of the fault table (issue 5) against the simulator over loopback: each fault is
//! recovered from by itself (except an expired grant) and leaves the other accounts alone.
//! Assertions are on the store and on the simulator's request log.

#[path = "support/sync.rs"]
mod support;

use std::time::Duration;

use chrono::{DateTime, Utc};
use perch::domain::SyncStatus;
use perch::sim::{EndpointLimit, Faults, RateLimitProfile};
use perch::sync::{Command, SyncEvent, SyncSettings};
use support::{Harness, fast_settings, sim_config};

const TIMEOUT: Duration = Duration::from_secs(10);

fn only(user: &str, faults: Faults) -> Faults {
    Faults {
        only_users: vec![user.to_string()],
        ..faults
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_back_off_growing_and_capped_then_recover() {
    let h = Harness::start(sim_config(2, 10), TIMEOUT).await;
    h.set_faults(only(
        "user00",
        Faults {
            server_error_probability: 1.0,
            ..Faults::default()
        },
    ));
    let base = Duration::from_millis(200);
    let cap = Duration::from_millis(1600);
    let engine = h.engine(SyncSettings {
        backoff_base: base,
        backoff_cap: cap,
        ..fast_settings()
    });
    h.wait_for_status(0, SyncStatus::Error).await;
    let message = h.account(0).error_message.unwrap();
    assert!(message.contains("503"), "{message}");
    assert!(message.contains("3 failures in a row"), "{message}");
    // The other account is untouched.
    h.wait_until("user01's backlog", |h| h.caught_up(1)).await;
    assert_eq!(h.account(1).sync_status, SyncStatus::Active);

    h.wait_until("eight failed requests", |h| {
        h.mention_requests(0).len() >= 8
    })
    .await;
    let times: Vec<DateTime<Utc>> = h.mention_requests(0).iter().map(|r| r.at).collect();
    let gaps: Vec<Duration> = times
        .windows(2)
        .map(|w| (w[1] - w[0]).to_std().unwrap_or_default())
        .collect();
    // Retry n waits at least half of base·2^(n-1) (capped): 100, 200, 400, 800, 800... ms.
    for (n, gap) in gaps.iter().enumerate().take(7) {
        let ceiling = base.saturating_mul(1 << n).min(cap);
        assert!(*gap >= ceiling / 2, "retry {} came after {gap:?}", n + 1);
    }
    assert!(gaps[3] > gaps[0], "the delays grow: {gaps:?}");
    // Uncapped, the 7th delay would be at least 6.4 s; capped, it is at most 1.6 s (plus a
    // busy machine's slack).
    assert!(
        gaps.iter().take(7).all(|g| *g < Duration::from_secs(5)),
        "the delays are capped: {gaps:?}"
    );
    assert_eq!(h.stored(0), 0, "nothing stored while failing");

    h.set_faults(Faults::default());
    h.wait_for_status(0, SyncStatus::Active).await;
    h.wait_until("user00's backlog", |h| h.caught_up(0)).await;
    assert_eq!(h.account(0).error_message, None);
    engine.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_resets_are_retried_and_recover() {
    let h = Harness::start(sim_config(2, 10), TIMEOUT).await;
    h.set_faults(only(
        "user00",
        Faults {
            connection_reset_probability: 1.0,
            ..Faults::default()
        },
    ));
    let engine = h.engine(fast_settings());
    h.wait_for_status(0, SyncStatus::Error).await;
    let message = h.account(0).error_message.unwrap();
    assert!(message.contains("network error"), "{message}");
    h.wait_until("user01's backlog", |h| h.caught_up(1)).await;
    h.set_faults(Faults::default());
    h.wait_until("user00 back to active with its backlog", |h| {
        h.caught_up(0) && h.account(0).sync_status == SyncStatus::Active
    })
    .await;
    engine.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_are_retried_and_recover() {
    // The client gives up after 1 s; the simulator answers user00 after 3 s.
    let h = Harness::start(sim_config(2, 10), Duration::from_secs(1)).await;
    h.set_faults(only(
        "user00",
        Faults {
            slow_response: Some(Duration::from_secs(3)),
            slow_probability: 1.0,
            ..Faults::default()
        },
    ));
    let engine = h.engine(fast_settings());
    h.wait_for_status(0, SyncStatus::Error).await;
    let message = h.account(0).error_message.unwrap();
    assert!(message.contains("timed out"), "{message}");
    h.wait_until("user01's backlog", |h| h.caught_up(1)).await;
    h.set_faults(Faults::default());
    h.wait_until("user00 back to active with its backlog", |h| {
        h.caught_up(0) && h.account(0).sync_status == SyncStatus::Active
    })
    .await;
    engine.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_401_refreshes_the_token_once_and_retries() {
    let h = Harness::start(sim_config(1, 5), TIMEOUT).await;
    let engine = h.engine(SyncSettings {
        poll_interval: Duration::from_secs(3600),
        ..fast_settings()
    });
    h.wait_until("the backlog", |h| h.caught_up(0)).await;
    assert_eq!(h.refresh_attempts(), 0);

    h.control.expire_access_tokens("user00").unwrap();
    h.control.generate_mentions_for("user00", 2).unwrap();
    engine.send(Command::FetchNow(Some(h.accounts[0].id))).await;
    h.wait_until("the new mentions", |h| h.caught_up(0)).await;
    assert_eq!(h.refreshes(0), 1, "exactly one refresh");
    let statuses: Vec<u16> = h.mention_requests(0).iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![200, 401, 200], "one retry after the refresh");
    assert_eq!(h.account(0).sync_status, SyncStatus::Active);
    engine.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_refresh_marks_the_token_expired_and_stops_polling_that_account() {
    let h = Harness::start(sim_config(2, 5), TIMEOUT).await;
    let engine = h.engine(fast_settings());
    h.wait_until("both backlogs", |h| h.caught_up(0) && h.caught_up(1))
        .await;

    h.control.revoke_grant("user00").unwrap();
    h.wait_for_status(0, SyncStatus::TokenExpired).await;
    let message = h.account(0).error_message.unwrap();
    assert!(message.contains("press R"), "{message}");
    assert_eq!(h.refresh_attempts(), 1, "one refresh, refused");
    let requests = h.mention_requests(0).len();
    let others = h.mention_requests(1).len();
    // The budget paces the other account to a poll every 3.3 s (300 per 15 minutes).
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        h.mention_requests(0).len(),
        requests,
        "no more polls of a token-expired account"
    );
    assert!(
        h.mention_requests(1).len() > others,
        "the other account keeps polling"
    );
    assert_eq!(h.account(1).sync_status, SyncStatus::Active);

    // Fetch-now says why it cannot.
    engine.send(Command::FetchNow(Some(h.accounts[0].id))).await;
    h.wait_until("a notice", |_| !engine.notices(h.accounts[0].id).is_empty())
        .await;
    assert!(engine.notices(h.accounts[0].id)[0].contains("press R"));
    engine.stop().await;
}

/// The reset of the spent window the engine reported for `account` (from its Budget events).
fn reported_reset(
    engine: &support::Engine,
    account: perch::domain::AccountId,
) -> Option<DateTime<Utc>> {
    engine
        .events
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            SyncEvent::Budget {
                account_id,
                remaining: 0,
                reset,
                ..
            } if *account_id == account => Some(*reset),
            _ => None,
        })
        .next_back()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_waits_for_the_reset_then_comes_back_by_itself() {
    let mut config = sim_config(2, 5);
    config.rate_limits = RateLimitProfile {
        window: Duration::from_secs(4),
        ..RateLimitProfile::pay_per_use()
    };
    let h = Harness::start(config, TIMEOUT).await;
    let engine = h.engine(fast_settings());
    h.wait_until("both backlogs", |h| h.caught_up(0) && h.caught_up(1))
        .await;

    h.set_faults(Faults {
        rate_limit_storm: vec!["user00".into()],
        ..Faults::default()
    });
    h.wait_for_status(0, SyncStatus::RateLimited).await;
    h.set_faults(Faults::default());
    let message = h.account(0).error_message.unwrap();
    assert!(message.starts_with("rate limited until "), "{message}");
    let reset = reported_reset(&engine, h.accounts[0].id).expect("the 429's budget was reported");

    h.control.generate_mentions_for("user00", 1).unwrap();
    h.wait_until("user00 active again with the new mention", |h| {
        h.caught_up(0) && h.account(0).sync_status == SyncStatus::Active
    })
    .await;
    let log = h.mention_requests(0);
    let refused = log.iter().position(|r| r.status == 429).unwrap();
    assert_eq!(
        log.iter().filter(|r| r.status == 429).count(),
        1,
        "{log:#?}"
    );
    assert!(
        log[refused + 1..].iter().all(|r| r.at >= reset),
        "no request before the reset at {reset}: {log:#?}"
    );
    assert_eq!(h.account(1).sync_status, SyncStatus::Active);
    engine.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_request_goes_to_an_exhausted_endpoint_before_its_reset() {
    // Three requests per 3-second window, and an engine that would like to poll every 100 ms.
    let mut config = sim_config(1, 5);
    config.rate_limits = RateLimitProfile {
        window: Duration::from_secs(3),
        mentions: EndpointLimit::per_window(3),
        ..RateLimitProfile::pay_per_use()
    };
    let h = Harness::start(config, TIMEOUT).await;
    let engine = h.engine(SyncSettings {
        poll_interval: Duration::from_millis(100),
        ..fast_settings()
    });
    let id = h.accounts[0].id;
    // The schedule alone paces itself within the budget; fetch-now pressed every 50 ms tries
    // harder, and must still be held back once the window is spent.
    let deadline = tokio::time::Instant::now() + support::PATIENCE;
    while h.mention_requests(0).len() < 7 {
        assert!(tokio::time::Instant::now() < deadline, "too few requests");
        engine.send(Command::FetchNow(Some(id))).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let log = h.mention_requests(0);
    assert!(
        log.iter().all(|r| r.status == 200),
        "nothing was refused: {log:#?}"
    );
    assert!(
        reported_reset(&engine, id).is_some(),
        "the window was used up"
    );
    let notices = engine.notices(id);
    assert!(
        notices.iter().any(|n| n.contains("perch fetches at")),
        "fetch-now says when it can run: {notices:?}"
    );
    engine.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spent_24_hour_cap_holds_polls_until_its_reset() {
    let mut config = sim_config(1, 5);
    config.rate_limits = RateLimitProfile {
        mentions: EndpointLimit {
            per_window: 300,
            per_day: Some(2),
        },
        ..RateLimitProfile::pay_per_use()
    };
    let h = Harness::start(config, TIMEOUT).await;
    let engine = h.engine(SyncSettings {
        poll_interval: Duration::from_millis(100),
        ..fast_settings()
    });
    let id = h.accounts[0].id;
    // The schedule would wait a day between the two requests the cap allows; fetch-now does not.
    let deadline = tokio::time::Instant::now() + support::PATIENCE;
    while h.account(0).sync_status != SyncStatus::RateLimited {
        assert!(tokio::time::Instant::now() < deadline, "never rate limited");
        engine.send(Command::FetchNow(Some(id))).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for _ in 0..5 {
        engine.send(Command::FetchNow(Some(id))).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let log = h.mention_requests(0);
    assert_eq!(log.len(), 2, "two requests, then the day's cap: {log:#?}");
    assert!(log.iter().all(|r| r.status == 200));
    let message = h.account(0).error_message.unwrap();
    assert!(message.starts_with("rate limited until "), "{message}");
    engine.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credits_depleted_stops_requests_and_not_enrolled_shows_xs_detail_and_the_remedy() {
    let h = Harness::start(sim_config(2, 5), TIMEOUT).await;
    h.set_faults(only(
        "user00",
        Faults {
            credits_depleted: true,
            ..Faults::default()
        },
    ));
    let engine = h.engine(SyncSettings {
        blocked_interval: Duration::from_secs(3600),
        ..fast_settings()
    });
    h.wait_for_status(0, SyncStatus::Error).await;
    let message = h.account(0).error_message.unwrap();
    // Credits belong to the app, not to one account: the 402 stops every account (issue 14).
    assert_eq!(message, perch::costs::CREDITS_DEPLETED_MESSAGE);
    let requests = h.control.request_log().len();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        h.control.request_log().len(),
        requests,
        "nothing is sent after a 402 until F or the next hour"
    );

    h.set_faults(only(
        "user00",
        Faults {
            client_not_enrolled: true,
            ..Faults::default()
        },
    ));
    engine.send(Command::FetchNow(Some(h.accounts[0].id))).await;
    h.wait_until("the enrolment message", |h| {
        h.account(0)
            .error_message
            .is_some_and(|m| m.contains("enrolled in the requested endpoint"))
    })
    .await;
    assert!(
        h.account(0)
            .error_message
            .unwrap()
            .contains("developer portal")
    );

    h.set_faults(Faults::default());
    engine.send(Command::FetchNow(Some(h.accounts[0].id))).await;
    h.wait_until("user00 active with its backlog", |h| {
        h.caught_up(0) && h.account(0).sync_status == SyncStatus::Active
    })
    .await;
    engine.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_page_is_rejected_without_moving_the_cursor() {
    let h = Harness::start(sim_config(1, 20), TIMEOUT).await;
    let engine = h.engine(SyncSettings {
        poll_interval: Duration::from_secs(3600),
        ..fast_settings()
    });
    h.wait_until("the backlog", |h| h.caught_up(0) && h.cursor(0).is_some())
        .await;
    let cursor = h.cursor(0);
    let before = h.stored(0);

    h.set_faults(Faults {
        malformed_json_probability: 1.0,
        ..Faults::default()
    });
    h.control.generate_mentions_for("user00", 3).unwrap();
    engine.send(Command::FetchNow(Some(h.accounts[0].id))).await;
    h.wait_for_status(0, SyncStatus::Error).await;
    let message = h.account(0).error_message.unwrap();
    assert!(message.contains("cannot read"), "{message}");
    let request_id = h.mention_requests(0).last().unwrap().transaction_id.clone();
    assert!(
        message.contains(request_id.as_str()),
        "{message} names the request id"
    );
    assert_eq!(h.cursor(0), cursor, "the cursor did not move");
    assert_eq!(h.stored(0), before, "nothing of the page was stored");

    h.set_faults(Faults::default());
    h.wait_until("recovery with the new mentions", |h| {
        h.stored(0) == before + 3 && h.account(0).sync_status == SyncStatus::Active
    })
    .await;
    assert!(h.cursor(0) > cursor);
    engine.stop().await;
}
