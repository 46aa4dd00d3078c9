//! The cost counters survive `kill -9` mid-page: the real `perch` binary is killed while it pages
//! through a backfill; what the store then holds is charged exactly once per stored post (the
//! charge commits with the page, or neither does). A second run finishes the backfill and `perch
//! costs --json` agrees with the simulator's own bill, in exactly the JSON shape.

#[path = "support/outbox.rs"]
mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use perch::costs::{CostKind, Month, billing_day};
use perch::sim::{Faults, SimConfig, SimUserSpec};
use perch::store::{FeedFilter, Store};
use support::{BRAND, World, eventually, perch, perch_args, run, text};

fn keys(v: &serde_json::Value) -> BTreeSet<String> {
    v.as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_page_the_counters_match_what_was_stored_and_the_bill_after_restart() {
    let mut config = SimConfig::for_tests(71);
    config.users = vec![SimUserSpec::new(BRAND, "Nimbus Notes", true)];
    config.backlog_per_user = 600;
    config.credits_usd = None;
    config.app_owner = None;
    let world = World::start_with(config).await;
    {
        let app = world.app().await;
        world.login_all(&app).await;
        app.store.flush().unwrap();
    }
    let control = world.sim.control();
    // Every page takes a while, so the kill lands in the middle of the backfill.
    control.set_faults(Faults {
        slow_response: Some(Duration::from_millis(400)),
        slow_probability: 1.0,
        ..Faults::default()
    });
    let mut child = perch(&world, &world.sim.api_base())
        .args(["mentions", "fetch"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("perch binary starts");
    let mentions_requests = || {
        control
            .request_log()
            .iter()
            .filter(|e| e.path.ends_with("/mentions"))
            .count()
    };
    eventually("three pages were asked for", || mentions_requests() >= 3).await;
    child.kill().expect("kill -9 perch");
    let _ = child.wait();

    {
        let store = Store::open(&world.data_dir()).expect("store opens after the kill");
        let account = store.accounts().unwrap().remove(0);
        let stored = store
            .count(&FeedFilter {
                account: Some(account.id),
                status: None,
            })
            .unwrap();
        assert!(
            stored > 0 && stored < 600,
            "the kill was mid-backfill ({stored})"
        );
        let month = Month::of(billing_day(chrono::Utc::now()));
        let by = store
            .cost_by_kind(month.first_day(), month.last_day(), Some(account.id))
            .unwrap();
        assert_eq!(
            by.get(&CostKind::PostRead).map(|u| u.count),
            Some(stored),
            "every stored post is charged once, and nothing else"
        );
        assert_eq!(by.get(&CostKind::UserRead).map(|u| u.count), Some(1));
    }

    // Restart and finish: re-read pages are free the same day, for X and for perch.
    control.set_faults(Faults::default());
    let done = run(
        perch_args(&world, &world.sim.api_base(), &["mentions", "fetch"]),
        None,
    )
    .await;
    assert!(done.status.success(), "{}", text(&done.stderr));
    let costs = run(
        perch_args(&world, &world.sim.api_base(), &["costs", "--json"]),
        None,
    )
    .await;
    assert!(costs.status.success(), "{}", text(&costs.stderr));
    let json: serde_json::Value = serde_json::from_slice(&costs.stdout).unwrap();

    // Exactly the shape.
    let top: BTreeSet<String> = [
        "estimate",
        "currency",
        "prices_date",
        "today_usd",
        "month_usd",
        "accounts",
    ]
    .map(String::from)
    .into();
    assert_eq!(keys(&json), top, "{json:#}");
    assert_eq!(json["estimate"], true);
    assert_eq!(json["currency"], "USD");
    assert_eq!(json["prices_date"], "2026-08-13");
    let account = &json["accounts"][0];
    let account_keys: BTreeSet<String> = ["account", "today_usd", "month_usd", "by_kind"]
        .map(String::from)
        .into();
    assert_eq!(keys(account), account_keys, "{account:#}");
    assert_eq!(account["account"], format!("@{BRAND}"));
    for (kind, used) in account["by_kind"].as_object().unwrap() {
        assert!(
            CostKind::ALL.iter().any(|k| k.as_str() == kind),
            "unknown kind {kind}"
        );
        let used_keys: BTreeSet<String> = ["count", "usd"].map(String::from).into();
        assert_eq!(keys(used), used_keys, "{used}");
    }

    // And it agrees with the simulator's bill.
    let bill = control.bill();
    let sim_posts = &bill.by_user[BRAND]["post_read"];
    assert_eq!(account["by_kind"]["post_read"]["count"], sim_posts.count);
    assert_eq!(sim_posts.count, 600);
    let month_usd = json["month_usd"].as_f64().unwrap();
    assert_eq!(
        (month_usd * 1e6).round() as u64,
        bill.spent_micros,
        "perch costs --json and the simulator's bill"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mentions_fetch_stops_at_the_budget_and_resumes_once_it_is_raised() {
    let mut config = SimConfig::for_tests(72);
    config.users = vec![SimUserSpec::new(BRAND, "Nimbus Notes", true)];
    config.backlog_per_user = 40;
    config.credits_usd = None;
    config.app_owner = None;
    let world = World::start_with(config).await;
    {
        let app = world.app().await;
        world.login_all(&app).await;
        app.store.flush().unwrap();
    }
    let control = world.sim.control();
    // The login's users/me cost $0.01; $0.05 leaves 8 posts' worth.
    let mut tight = perch_args(&world, &world.sim.api_base(), &["mentions", "fetch"]);
    tight.env("PERCH_MONTHLY_BUDGET_USD", "0.05");
    let stopped = run(tight, None).await;
    assert!(!stopped.status.success());
    let said = format!("{}{}", text(&stopped.stdout), text(&stopped.stderr));
    assert!(
        said.contains("budget reached ($0.05 of $0.05): raise monthly_budget_usd"),
        "{said}"
    );
    assert!(
        control.bill().spent_micros <= 50_000,
        "{:?}",
        control.bill()
    );
    let reads = || {
        control
            .request_log()
            .iter()
            .filter(|e| e.path.ends_with("/mentions"))
            .count()
    };
    let after_first = reads();
    // Still over: nothing is asked of X.
    let mut again = perch_args(&world, &world.sim.api_base(), &["mentions", "fetch"]);
    again.env("PERCH_MONTHLY_BUDGET_USD", "0.05");
    let refused = run(again, None).await;
    assert!(!refused.status.success());
    assert_eq!(reads(), after_first, "a read was sent over the budget");
    // Raised: the pause lifts by itself.
    let mut raised = perch_args(&world, &world.sim.api_base(), &["mentions", "fetch"]);
    raised.env("PERCH_MONTHLY_BUDGET_USD", "5");
    let done = run(raised, None).await;
    assert!(done.status.success(), "{}", text(&done.stderr));
    let store = Store::open(&world.data_dir()).unwrap();
    let account = store.accounts().unwrap().remove(0);
    assert_eq!(account.sync_status, perch::domain::SyncStatus::Active);
    let stored = store
        .count(&FeedFilter {
            account: Some(account.id),
            status: None,
        })
        .unwrap();
    assert_eq!(stored, 40);
}
