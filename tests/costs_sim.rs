//! The cost meter against the simulator's own bill, over real loopback HTTP: every read, reply
//! and DM perch records agrees exactly with what the simulator billed; owned reads; the monthly
//! budget stops reads before they are sent; 402 CreditsDepleted stops every account.

#[path = "support/sync.rs"]
mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use perch::costs::{self, Budgets, Pricing};
use perch::domain::SyncStatus;
use perch::outbox::{self, OutboxCommand, OutboxEvent, ReplyKind, SendRequest};
use perch::sync::{Command, SyncSettings};
use support::*;

fn owner_pricing(owner: &str) -> Pricing {
    Pricing {
        app_owner: Some(owner.to_string()),
        ..Pricing::default()
    }
}

/// perch's counters per account handle and kind, this month.
fn perch_bill(h: &Harness) -> BTreeMap<String, BTreeMap<String, (u64, u64)>> {
    let today = costs::billing_day(chrono::Utc::now());
    let month = costs::Month::of(today);
    let mut out = BTreeMap::new();
    for a in &h.accounts {
        let by = h
            .store
            .cost_by_kind(month.first_day(), month.last_day(), Some(a.id))
            .unwrap();
        let kinds: BTreeMap<String, (u64, u64)> = by
            .into_iter()
            .filter(|(_, u)| u.count > 0)
            .map(|(k, u)| (k.as_str().to_string(), (u.count, u.micros)))
            .collect();
        if !kinds.is_empty() {
            out.insert(a.twitter_username.clone(), kinds);
        }
    }
    out
}

fn sim_bill(h: &Harness) -> BTreeMap<String, BTreeMap<String, (u64, u64)>> {
    h.control
        .bill()
        .by_user
        .into_iter()
        .map(|(user, kinds)| {
            let kinds = kinds
                .into_iter()
                .map(|(k, c)| (k, (c.count, c.micros)))
                .collect();
            (user, kinds)
        })
        .collect()
}

async fn fetch_one(h: &Harness, engine: &Engine, i: usize) {
    let id = h.account(i).id;
    let before = engine.finished(id);
    engine.send(Command::FetchNow(Some(id))).await;
    h.wait_until("the fetch finishes", |_| engine.finished(id) > before)
        .await;
}

async fn send_and_wait(
    commands: &tokio::sync::mpsc::Sender<OutboxCommand>,
    events: &mut tokio::sync::mpsc::Receiver<OutboxEvent>,
    request: SendRequest,
) -> OutboxEvent {
    let key = request.key;
    commands.send(OutboxCommand::Send(request)).await.unwrap();
    loop {
        let event = tokio::time::timeout(PATIENCE, events.recv())
            .await
            .expect("the outbox answers")
            .expect("the outbox runs");
        if event.key() == key && event.is_final() {
            return event;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_read_reply_and_dm_agrees_with_the_simulators_bill() {
    let mut config = sim_config(3, 30);
    config.app_owner = Some("user00".into());
    config.credits_usd = None;
    let h = Harness::start(config, Duration::from_secs(10)).await;
    h.store.set_pricing(owner_pricing("@user00"));
    let engine = h.engine(SyncSettings {
        poll_interval: Duration::from_secs(3600),
        poll_on_start: false,
        ..fast_settings()
    });
    for i in 0..3 {
        fetch_one(&h, &engine, i).await;
    }
    h.wait_until("all caught up", |h| (0..3).all(|i| h.caught_up(i)))
        .await;
    // A post that mentions two accounts is read through both, and billed once.
    h.control
        .inject_mention("user01", None, "@user01 @user02 same post, two accounts")
        .unwrap();
    fetch_one(&h, &engine, 1).await;
    fetch_one(&h, &engine, 2).await;
    // Polling again the same day: nothing new, nothing billed.
    fetch_one(&h, &engine, 0).await;

    let (commands, mut events) = outbox::spawn(h.store.clone(), h.client.clone(), h.tokens.clone());
    let mentions = h.mentions(1);
    let reply = send_and_wait(
        &commands,
        &mut events,
        SendRequest {
            key: mentions[0].key(),
            kind: ReplyKind::Public,
            text: "thanks, looking into it".into(),
            send_anyway: false,
        },
    )
    .await;
    assert!(matches!(reply, OutboxEvent::Sent { .. }), "{reply:?}");
    let link = send_and_wait(
        &commands,
        &mut events,
        SendRequest {
            key: mentions[1].key(),
            kind: ReplyKind::Public,
            text: "see https://nimbus.io/help".into(),
            send_anyway: false,
        },
    )
    .await;
    assert!(matches!(link, OutboxEvent::Sent { .. }), "{link:?}");
    let dm_target = h
        .mentions(2)
        .into_iter()
        .find(|m| m.sender.twitter_id.is_some())
        .expect("a mention with an author");
    let dm = send_and_wait(
        &commands,
        &mut events,
        SendRequest {
            key: dm_target.key(),
            kind: ReplyKind::Dm,
            text: "DMing you the details".into(),
            send_anyway: false,
        },
    )
    .await;
    assert!(matches!(dm, OutboxEvent::Sent { .. }), "{dm:?}");
    engine.stop().await;

    let perch = perch_bill(&h);
    let sim = sim_bill(&h);
    assert_eq!(perch, sim, "perch's meter and the simulator's bill differ");
    // What the test covered: owned reads for the owner, post reads for the others, and each kind
    // of send.
    assert!(perch["user00"].contains_key("owned_read"), "{perch:?}");
    assert!(!perch["user00"].contains_key("post_read"), "{perch:?}");
    assert_eq!(perch["user01"]["reply"].0, 1);
    assert_eq!(perch["user01"]["reply_with_url"], (1, 200_000));
    assert_eq!(perch["user02"]["dm_sent"], (1, 15_000));
    assert_eq!(perch["user00"]["user_read"], (1, 10_000));
    // Every post is charged once however many accounts read it (the backlog has posts that
    // mention several accounts, and the injected one mentions two).
    let mut unique = std::collections::HashSet::new();
    for i in 0..3 {
        for m in h.mentions(i) {
            unique.insert(m.tweet_id);
        }
    }
    let reads: u64 = perch
        .values()
        .flat_map(|k| ["post_read", "owned_read"].map(|n| k.get(n).map_or(0, |c| c.0)))
        .sum();
    assert_eq!(reads, unique.len() as u64);
    let report = perch::cost_report::report(
        &h.store,
        &h.accounts,
        None,
        costs::Month::of(costs::billing_day(chrono::Utc::now())),
        chrono::Utc::now(),
    )
    .unwrap();
    let spent = h.control.bill().spent_micros;
    assert_eq!(costs::usd_to_micros(report.month_usd), Some(spent));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reaching_the_budget_pauses_every_account_before_another_read_is_sent() {
    let mut config = sim_config(3, 40);
    config.credits_usd = None;
    config.app_owner = None;
    let h = Harness::start(config, Duration::from_secs(10)).await;
    // Logins cost 3 user reads ($0.03); $0.10 leaves $0.07: 14 posts at $0.005.
    let budget = 100_000;
    let engine = h.engine(SyncSettings {
        budgets: Budgets {
            monthly_micros: Some(budget),
            ..Budgets::default()
        },
        budget_check_interval: Duration::from_millis(100),
        ..fast_settings()
    });
    h.wait_until("every account is paused by the budget", |h| {
        (0..3).all(|i| {
            let a = h.account(i);
            a.sync_status == SyncStatus::Paused && a.is_active
        })
    })
    .await;
    let reads_at_pause = h
        .control
        .request_log()
        .iter()
        .filter(|e| e.path.ends_with("/mentions"))
        .count();
    // Several poll intervals and budget checks later, nothing more was asked of X.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let log = h.control.request_log();
    let reads: Vec<_> = log
        .iter()
        .filter(|e| e.path.ends_with("/mentions"))
        .collect();
    assert_eq!(
        reads.len(),
        reads_at_pause,
        "a read was sent after the budget was reached"
    );
    assert!(
        !reads.is_empty(),
        "some reads happened before the budget was reached"
    );
    // Never overrun: pages were sized to what was left.
    let bill = h.control.bill();

    assert!(
        bill.spent_micros <= budget,
        "the simulator billed {} of a {budget} budget",
        bill.spent_micros
    );
    // The 80% warning came once, as a notice for the status bar.
    let warnings: Vec<String> = engine
        .events
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            perch::sync::SyncEvent::Notice {
                account_id: None,
                message,
            } if message.contains("monthly budget used") => Some(message.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    for i in 0..3 {
        let a = h.account(i);
        let message = a.error_message.clone().unwrap_or_default();
        assert!(
            message.starts_with("budget reached ($")
                && message.contains("of $0.10): raise monthly_budget_usd or wait until 1 "),
            "{message}"
        );
    }
    engine.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credits_depleted_stops_every_account_until_fetch_now() {
    let mut config = sim_config(2, 20);
    // After the two logins ($0.02) a little is left: the first page spends it.
    config.credits_usd = Some(0.021);
    let h = Harness::start(config, Duration::from_secs(10)).await;
    let engine = h.engine(SyncSettings {
        poll_interval: Duration::from_millis(200),
        ..fast_settings()
    });
    h.wait_until("both accounts show the 402", |h| {
        (0..2)
            .all(|i| h.account(i).error_message.as_deref() == Some(costs::CREDITS_DEPLETED_MESSAGE))
    })
    .await;
    let count_402 = |h: &Harness| {
        h.control
            .request_log()
            .iter()
            .filter(|e| e.status == 402)
            .count()
    };
    let before = h.control.request_log().len();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        h.control.request_log().len(),
        before,
        "perch kept asking X after a 402"
    );
    // F: the user topped up.
    h.control.set_credits(Some(10.0));
    let seen = count_402(&h);
    engine.send(Command::FetchNow(Some(h.account(0).id))).await;
    h.wait_for_status(0, SyncStatus::Active).await;
    assert_eq!(count_402(&h), seen);
    engine.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xs_own_usage_count_is_read_with_the_app_bearer_and_agrees_with_the_meter() {
    let mut config = sim_config(2, 30);
    config.credits_usd = None;
    let h = Harness::start(config, Duration::from_secs(10)).await;
    let engine = h.engine(SyncSettings {
        app_bearer_token: Some(perch::domain::Secret::new(
            perch::sim::DEMO_APP_BEARER_TOKEN,
        )),
        usage_interval: Duration::from_millis(300),
        poll_interval: Duration::from_secs(3600),
        ..fast_settings()
    });
    h.wait_until("all caught up", |h| (0..2).all(|i| h.caught_up(i)))
        .await;
    let settled = chrono::Utc::now();
    h.wait_until("X's count read after the backfill", |h| {
        h.store
            .x_usage()
            .unwrap()
            .is_some_and(|u| u.fetched_at > settled)
    })
    .await;
    let r = perch::cost_report::reconciliation(&h.store, chrono::Utc::now())
        .unwrap()
        .expect("a reconciliation");
    assert_eq!(r.x_posts, 60, "{}", r.line());
    assert_eq!(r.difference(), 0, "{}", r.line());
    let usage_requests: Vec<_> = h
        .control
        .request_log()
        .into_iter()
        .filter(|e| e.path == "/2/usage/tweets")
        .collect();
    assert!(usage_requests.iter().all(|e| e.status == 200));
    engine.stop().await;
}

/// What the test's "config file" says the budget is (a `fn` cannot capture).
static RAISED_BUDGET: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(60_000);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raised_budget_resumes_the_paused_accounts_by_itself() {
    let mut config = sim_config(2, 20);
    config.credits_usd = None;
    let h = Harness::start(config, Duration::from_secs(10)).await;
    let budgets = || Budgets {
        monthly_micros: Some(RAISED_BUDGET.load(std::sync::atomic::Ordering::SeqCst)),
        ..Budgets::default()
    };
    let engine = h.engine(SyncSettings {
        budgets: budgets(),
        reload_budgets: Some(|| {
            Ok(Budgets {
                monthly_micros: Some(RAISED_BUDGET.load(std::sync::atomic::Ordering::SeqCst)),
                ..Budgets::default()
            })
        }),
        budget_check_interval: Duration::from_millis(100),
        ..fast_settings()
    });
    h.wait_until("both accounts paused by the budget", |h| {
        (0..2).all(|i| h.account(i).sync_status == SyncStatus::Paused)
    })
    .await;
    assert!(!(0..2).all(|i| h.caught_up(i)));
    // The user raises the budget in the config file: no restart, no key.
    RAISED_BUDGET.store(10_000_000, std::sync::atomic::Ordering::SeqCst);
    h.wait_until("both accounts resumed and caught up", |h| {
        (0..2).all(|i| h.caught_up(i) && h.account(i).sync_status == SyncStatus::Active)
    })
    .await;
    assert!((0..2).all(|i| h.account(i).is_active));
    engine.stop().await;
}
