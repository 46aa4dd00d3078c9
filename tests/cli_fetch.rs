//! `perch mentions fetch` from a script: one line (or one JSON entry) per account saying what was
//! stored and, when it stopped early, why; exit 1 when any account could not be fetched in full;
//! one attempt per account, so it ends within the request timeout; nothing to do ends at once.

#[path = "support/outbox.rs"]
mod support;

use perch::sim::SimConfig;
use support::{World, perch_args, run, text};

async fn logged_in(config: SimConfig) -> World {
    let world = World::start_with(config).await;
    let app = world.app().await;
    world.login_all(&app).await;
    app.store.flush().unwrap();
    world
}

fn quiet(seed: u64, backlog: usize) -> SimConfig {
    let mut config = SimConfig::for_tests(seed);
    config.backlog_per_user = backlog;
    config
}

/// Repro of issue 9 item 2: X cannot be reached, and fetch said "fetched 0 new mentions", exit 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_says_per_account_that_x_cannot_be_reached_and_exits_1() {
    let world = logged_in(quiet(91, 2)).await;
    // Nothing listens on port 9 (discard): every connection is refused.
    let dead = "http://127.0.0.1:9";
    let out = run(perch_args(&world, dead, &["mentions", "fetch"]), None).await;
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    assert!(!stdout.contains("0 new"), "never a false success: {stdout}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "one line per account: {stdout}");
    for line in lines {
        assert!(line.contains(": failed: cannot reach X ("), "{line}");
    }
    assert!(
        text(&out.stderr).contains("3 of 3 accounts"),
        "{}",
        text(&out.stderr)
    );

    let out = run(
        perch_args(
            &world,
            dead,
            &["mentions", "fetch", "--account", "@nimbusnotes", "--json"],
        ),
        None,
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!(report["ok"], false);
    assert_eq!(report["failed"], 1);
    let a = &report["accounts"][0];
    assert_eq!(a["account"], "@nimbusnotes");
    assert_eq!(a["ok"], false);
    assert_eq!(a["new_mentions"], 0);
    assert_eq!(a["stopped"]["reason"], "unreachable");
    // (The test environment's PERCH_CONFIG names no file: perch says so, and only that.)
    assert!(
        !text(&out.stderr).contains("could not be done"),
        "--json says it all: {}",
        text(&out.stderr)
    );
}

/// Repro of issue 9 item 3: fetching a paused account waited five minutes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetching_a_paused_account_returns_at_once_with_the_reason() {
    let world = logged_in(quiet(92, 2)).await;
    let api = world.sim.api_base();
    let out = run(
        perch_args(&world, &api, &["accounts", "pause", "@mara_quill"]),
        None,
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let requests_before = world.sim.control().request_log().len();
    // A timeout far below the old five minutes: the command must not wait for anything.
    let out = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        run(
            perch_args(
                &world,
                &api,
                &["mentions", "fetch", "--account", "@mara_quill"],
            ),
            None,
        ),
    )
    .await
    .expect("fetch of a paused account returns without waiting");
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with("@mara_quill: not fetched: @mara_quill is paused"),
        "{stdout}"
    );
    assert!(
        stdout.contains("perch accounts resume @mara_quill"),
        "{stdout}"
    );
    assert_eq!(
        world.sim.control().request_log().len(),
        requests_before,
        "X was not asked"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_good_fetch_reports_what_each_account_stored() {
    let world = logged_in(quiet(93, 3)).await;
    let api = world.sim.api_base();
    let out = run(
        perch_args(&world, &api, &["mentions", "fetch", "--json"]),
        None,
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ok"], true);
    let accounts = report["accounts"].as_array().unwrap();
    assert_eq!(accounts.len(), 3);
    for a in accounts {
        assert_eq!(a["ok"], true, "{a}");
        assert!(a["stopped"].is_null());
    }
    let stored: u64 = accounts
        .iter()
        .map(|a| a["new_mentions"].as_u64().unwrap())
        .sum();
    assert_eq!(report["new_mentions"].as_u64(), Some(stored));
    assert_eq!(stored, 9, "the three accounts' backlog");

    // Again: nothing new, and that is a success that says so.
    let out = run(perch_args(&world, &api, &["mentions", "fetch"]), None).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    for line in text(&out.stdout).lines() {
        assert!(line.ends_with(": 0 new"), "{line}");
    }
}

/// Issue 10 item 11: the last page leaves X's `remaining` at 0. The fetch got everything, so it
/// is a success that says what was stored, and that the next fetch must wait; the fetch after it
/// is refused by X and says why. A fetch cut short by the limit reports what it stored, then why
/// it stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetch_that_spends_the_rate_limit_reports_what_was_stored_then_why_it_stopped() {
    let mut config = quiet(94, 3);
    config.rate_limits.mentions.per_window = 1;
    let world = logged_in(config).await;
    let api = world.sim.api_base();
    let args = ["mentions", "fetch", "--account", "@nimbusnotes"];
    let out = run(perch_args(&world, &api, &args), None).await;
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.starts_with("@nimbusnotes: 3 new (X's rate limit for it is now spent"),
        "{stdout}"
    );

    let out = run(perch_args(&world, &api, &args), None).await;
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.starts_with("@nimbusnotes: failed: rate limited until "),
        "{stdout}"
    );

    // 150 posts waiting (two pages of 100) and one request allowed: the first page is stored.
    let mut config = quiet(95, 150);
    config.rate_limits.mentions.per_window = 1;
    let world = logged_in(config).await;
    let api = world.sim.api_base();
    let out = run(
        perch_args(
            &world,
            &api,
            &[args[0], args[1], args[2], args[3], "--json"],
        ),
        None,
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let a = &report["accounts"][0];
    assert_eq!(a["ok"], false);
    assert_eq!(a["new_mentions"], 100, "{a}");
    assert_eq!(a["stopped"]["reason"], "rate_limited");
    assert!(a["stopped"]["until"].is_string(), "{a}");
    let out = run(perch_args(&world, &api, &args), None).await;
    assert_eq!(out.status.code(), Some(1));
}

/// Issue 9 item 3, the audit: `perch reply` waited for X's rate limit to reset (for a DM, up to a
/// day) with nothing but Ctrl-C to end it. It returns at once, saying until when, draft kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limited_reply_returns_at_once_with_the_reset_time() {
    use perch::sim::EndpointLimit;
    let mut config = quiet(96, 0);
    config.rate_limits.create_post = EndpointLimit::per_window(1);
    let world = World::start_with(config).await;
    let app = world.app().await;
    world.login_all(&app).await;
    let a = world
        .mention(&app, "nimbus_help", "mara_quill", "question one")
        .await;
    let b = world
        .mention(&app, "nimbus_help", "nimbusnotes", "question two")
        .await;
    app.store.flush().unwrap();
    drop(app);
    let api = world.sim.api_base();
    let out = run(
        perch_args(&world, &api, &["reply", &a.tweet_id, "answer one"]),
        None,
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = tokio::time::timeout(
        std::time::Duration::from_secs(120),
        run(
            perch_args(&world, &api, &["reply", &b.tweet_id, "answer two"]),
            None,
        ),
    )
    .await
    .expect("returns without waiting for the 15-minute reset");
    assert_eq!(out.status.code(), Some(1));
    let said = text(&out.stderr);
    assert!(
        said.contains("not sent: X's rate limit for @nimbus_help is spent until "),
        "{said}"
    );
    assert!(said.contains("kept as the draft"), "{said}");
    assert_eq!(world.sim.control().posts().len(), 1);
    let store = perch::store::Store::open(&world.data_dir()).unwrap();
    assert_eq!(
        store.draft(b.key()).unwrap().map(|d| d.text),
        Some("answer two".into())
    );
}
