//! The Activity stream in the sync engine, against the simulator over loopback HTTP (issue 12):
//! subscriptions kept in step with the accounts, events routed and committed through the page
//! commit, polling as reconciliation (the gap after a reconnect, implicit mentions), the cursor
//! invariant, and the stream's failures (401, stall, disconnect message, 429, malformed lines).
//! No test asserts on a duration; each waits for a condition with generous patience.

#[path = "support/sync.rs"]
mod support;

use std::collections::HashSet;
use std::time::Duration;

use perch::domain::{AccountId, Arrival, Secret};
use perch::sim::{self, Faults};
use perch::sync::stream::{StreamSettings, StreamStatus};
use perch::sync::subscriptions::{EVENT_TYPES, tag_for};
use perch::sync::{Command, SyncCounters, SyncEvent, SyncSettings};
use support::{Engine, Harness, fast_settings, sim_config};

/// Streaming settings: a poll interval so long that only the start, the reconnect poll and
/// fetch-now poll; the simulator's app Bearer.
fn stream_settings() -> SyncSettings {
    SyncSettings {
        poll_interval: Duration::from_secs(3600),
        app_bearer_token: Some(Secret::new(sim::DEMO_APP_BEARER_TOKEN)),
        stream: StreamSettings {
            enabled: true,
            stall_after: Duration::from_secs(3),
            ..StreamSettings::default()
        },
        ..fast_settings()
    }
}

async fn start(users: usize) -> Harness {
    Harness::start(sim_config(users, 5), Duration::from_secs(10)).await
}

fn statuses(engine: &Engine) -> Vec<StreamStatus> {
    engine
        .events
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            SyncEvent::StreamStatus(s) => Some(s.clone()),
            _ => None,
        })
        .collect()
}

fn last_status(engine: &Engine) -> Option<StreamStatus> {
    statuses(engine).pop()
}

fn is_live(engine: &Engine) -> bool {
    last_status(engine) == Some(StreamStatus::Live)
}

/// Waits until the stream is live and every account's first polls are done.
async fn until_live_and_caught_up(h: &Harness, engine: &Engine) {
    h.wait_until("the stream to be live", |_| is_live(engine))
        .await;
    h.wait_until("every account to be caught up", |h| {
        (0..h.accounts.len()).all(|i| h.caught_up(i))
    })
    .await;
    // And the subscriptions are in place (the reconcile runs after the connect).
    h.wait_until("every account's subscriptions", |h| {
        h.accounts.iter().all(|a| {
            h.control
                .subscriptions()
                .iter()
                .any(|s| s.user_id == a.twitter_id && s.event_type == EVENT_TYPES[0])
        })
    })
    .await;
}

fn perch_subscriptions(h: &Harness, account: AccountId) -> HashSet<String> {
    h.control
        .subscriptions()
        .into_iter()
        .filter(|s| {
            s.tag
                .as_deref()
                .is_some_and(|t| t.starts_with(&format!("perch:{account}:")))
        })
        .map(|s| s.event_type)
        .collect()
}

fn all_events() -> HashSet<String> {
    EVENT_TYPES.iter().map(|s| s.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_follow_the_accounts_and_orphans_are_deleted() {
    let h = start(3).await;
    // Left by an earlier run: a perch subscription of an account that no longer exists, and
    // one of another tool, which perch must leave alone.
    let gone = uuid::Uuid::new_v4();
    h.control
        .add_subscription(EVENT_TYPES[0], "999", Some(&tag_for(gone, EVENT_TYPES[0])));
    h.control
        .add_subscription("post.create", "998", Some("another-tool"));
    // Account 2 is logged in again later ("add account").
    h.store.remove_account(h.accounts[2].id, true).unwrap();
    let engine = h.engine(stream_settings());
    h.wait_until("the first two accounts subscribed, the orphan gone", |h| {
        perch_subscriptions(h, h.accounts[0].id) == all_events()
            && perch_subscriptions(h, h.accounts[1].id) == all_events()
            && !h.control.subscriptions().iter().any(|s| s.user_id == "999")
    })
    .await;
    assert!(
        h.control
            .subscriptions()
            .iter()
            .any(|s| s.tag.as_deref() == Some("another-tool")),
        "another tool's subscription is not perch's to delete"
    );

    // Pause: its subscriptions go (a paused account costs nothing); resume: they come back.
    engine.send(Command::Pause(h.accounts[0].id)).await;
    h.wait_until("the paused account's subscriptions deleted", |h| {
        perch_subscriptions(h, h.accounts[0].id).is_empty()
    })
    .await;
    engine.send(Command::Resume(h.accounts[0].id)).await;
    h.wait_until("the resumed account subscribed again", |h| {
        perch_subscriptions(h, h.accounts[0].id) == all_events()
    })
    .await;

    // Add: log account 2 in again; the engine hears of it and subscribes it.
    let app = perch::cli::App {
        store: h.store.clone(),
        client: h.client.clone(),
        tokens: h.tokens.clone(),
        oauth: perch::auth::OAuthSettings {
            client_id: sim::DEMO_CLIENT_ID.to_string(),
            client_secret: None,
            authorize_url: h.sim.authorize_url(),
            token_url: h.sim.token_url(),
            redirect_uri: sim::DEMO_REDIRECT_URI.to_string(),
        },
    };
    perch::cli::add_sim_accounts(&app, &["user02".to_string()])
        .await
        .unwrap_or_else(|f| panic!("login: {}", f.message));
    let added = h
        .store
        .accounts()
        .unwrap()
        .into_iter()
        .find(|a| a.twitter_username == "user02")
        .unwrap();
    engine.send(Command::AccountAdded(added.id)).await;
    h.wait_until("the added account subscribed", |h| {
        perch_subscriptions(h, added.id) == all_events()
    })
    .await;

    // Remove: its subscriptions go with it.
    engine
        .send(Command::Remove {
            account_id: h.accounts[1].id,
            delete_mentions: true,
        })
        .await;
    h.wait_until("the removed account's subscriptions deleted", |h| {
        perch_subscriptions(h, h.accounts[1].id).is_empty()
    })
    .await;
    // Never two of one kind for one account.
    let subs = h.control.subscriptions();
    let keys: HashSet<(String, String)> = subs
        .iter()
        .map(|s| (s.event_type.clone(), s.user_id.clone()))
        .collect();
    assert_eq!(keys.len(), subs.len(), "duplicate subscriptions: {subs:#?}");
    engine.stop().await;
    h.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_for_several_accounts_are_routed_to_each_and_stored_once_by_stream_then_poll() {
    let h = start(3).await;
    let engine = h.engine(stream_settings());
    until_live_and_caught_up(&h, &engine).await;
    let before: Vec<u64> = (0..3).map(|i| h.stored(i)).collect();
    let cursors: Vec<Option<u64>> = (0..3).map(|i| h.cursor(i)).collect();
    let mut ids = Vec::new();
    for (i, a) in h.accounts.iter().enumerate() {
        ids.push(
            h.control
                .inject_mention(&a.twitter_username, None, &format!("streamed hello {i}"))
                .unwrap(),
        );
    }
    // One post for two accounts: stored under each.
    let pair = h
        .control
        .inject_mention("user00", None, "@user00 and @user01 both of you")
        .unwrap();
    h.wait_until("every streamed mention stored", |h| {
        h.stored(0) == before[0] + 2 && h.stored(1) == before[1] + 2 && h.stored(2) == before[2] + 1
    })
    .await;
    for (i, id) in ids.iter().enumerate() {
        assert!(
            h.mentions(i).iter().any(|m| &m.tweet_id == id),
            "account {i} has its own mention"
        );
    }
    assert!(h.mentions(0).iter().any(|m| m.tweet_id == pair));
    assert!(h.mentions(1).iter().any(|m| m.tweet_id == pair));
    assert_eq!(SyncCounters::get(&engine.counters.streamed), 5);
    // The stream never moves the poll cursor.
    assert_eq!(
        (0..3).map(|i| h.cursor(i)).collect::<Vec<_>>(),
        cursors,
        "a streamed post moved the cursor"
    );

    // The reconciliation poll finds them again: stored once, and now the cursor moves.
    engine.send(Command::FetchNow(None)).await;
    h.wait_until("the cursors to move past the streamed posts", |h| {
        (0..3).all(|i| h.cursor(i) >= ids[i].parse().ok())
    })
    .await;
    assert_eq!(h.stored(0), before[0] + 2);
    assert_eq!(h.stored(1), before[1] + 2);
    assert_eq!(h.stored(2), before[2] + 1);
    for (i, id) in ids.iter().enumerate() {
        let stored = h.mentions(i);
        let unique: HashSet<&str> = stored.iter().map(|m| m.tweet_id.as_str()).collect();
        assert_eq!(
            unique.len(),
            stored.len(),
            "account {i} stored a post twice"
        );
        // How each arrived is recorded: the streamed one by stream (the poll that found it
        // again does not change that), the backlog by poll.
        for m in &stored {
            let expected = if *id == m.tweet_id || m.tweet_id == pair {
                Arrival::Stream
            } else {
                Arrival::Poll
            };
            assert_eq!(
                h.store.arrival(m.key()).unwrap(),
                expected,
                "{}",
                m.tweet_id
            );
        }
    }
    engine.stop().await;
    h.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_implicit_mention_is_found_only_by_the_poll_and_the_cursor_does_not_skip_it() {
    let h = start(1).await;
    let engine = h.engine(stream_settings());
    until_live_and_caught_up(&h, &engine).await;
    let cursor = h.cursor(0);
    // First an implicit mention (no event), then an explicit one (an event), newer.
    let implicit = h.control.inject_implicit_mention("user00").unwrap();
    // Snowflakes order by millisecond only (the worker bits are random within one).
    tokio::time::sleep(Duration::from_millis(20)).await;
    let explicit = h
        .control
        .inject_mention("user00", None, "explicit and newer")
        .unwrap();
    assert!(explicit.parse::<u64>().unwrap() > implicit.parse::<u64>().unwrap());
    h.wait_until("the explicit mention streamed", |h| {
        h.mentions(0).iter().any(|m| m.tweet_id == explicit)
    })
    .await;
    assert!(
        !h.mentions(0).iter().any(|m| m.tweet_id == implicit),
        "XAA does not deliver implicit mentions"
    );
    // The invariant: the streamed post, newer than one no poll has seen, left the cursor alone.
    assert_eq!(h.cursor(0), cursor);
    // So the next poll asks from the old cursor and finds the implicit one.
    engine.send(Command::FetchNow(Some(h.accounts[0].id))).await;
    h.wait_until("the poll to find the implicit mention", |h| {
        h.mentions(0).iter().any(|m| m.tweet_id == implicit)
    })
    .await;
    h.wait_until("the cursor to reach the explicit one", |h| {
        h.cursor(0) == explicit.parse().ok()
    })
    .await;
    assert!(h.caught_up(0));
    engine.stop().await;
    h.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gap_while_disconnected_is_closed_by_the_reconnect_poll() {
    let h = start(2).await;
    let engine = h.engine(stream_settings());
    until_live_and_caught_up(&h, &engine).await;
    // The stream goes down and cannot come back for now.
    h.set_faults(Faults {
        stream_connect_503: true,
        ..Faults::default()
    });
    h.control.drop_streams();
    h.wait_until("the stream to be down", |_| {
        matches!(
            last_status(&engine),
            Some(StreamStatus::Reconnecting { .. })
        ) && statuses(&engine).iter().rev().take(3).any(
            |s| matches!(s, StreamStatus::Reconnecting { reason, .. } if reason.contains("503")),
        )
    })
    .await;
    // Mentions made while no stream is connected: X keeps nothing for later.
    let missed: Vec<String> = h
        .accounts
        .iter()
        .map(|a| {
            h.control
                .inject_mention(&a.twitter_username, None, "while you were away")
                .unwrap()
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !h.mentions(0).iter().any(|m| m.tweet_id == missed[0]),
        "nothing delivers while the stream is down and the poll interval is an hour"
    );
    h.set_faults(Faults::default());
    // Back: the reconnect polls every account at once.
    h.wait_until("the reconnect poll to close the gap", |h| {
        (0..2).all(|i| h.mentions(i).iter().any(|m| m.tweet_id == missed[i]))
    })
    .await;
    assert!(is_live(&engine));
    assert_eq!(
        SyncCounters::get(&engine.counters.streamed),
        0,
        "the missed mentions came by poll"
    );
    engine.stop().await;
    h.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_401_on_the_stream_stops_it_with_a_reason_and_polling_goes_on() {
    let h = start(1).await;
    let settings = SyncSettings {
        app_bearer_token: Some(Secret::new("not-the-app-bearer")),
        ..stream_settings()
    };
    let engine = h.engine(settings);
    h.wait_until("the stream to stop on 401", |_| {
        matches!(last_status(&engine), Some(StreamStatus::Off { reason }) if reason.contains("401"))
    })
    .await;
    h.wait_until("polling to catch up anyway", |h| h.caught_up(0))
        .await;
    let connects = h
        .control
        .request_log()
        .iter()
        .filter(|r| r.path == "/2/activity/stream")
        .count();
    assert_eq!(connects, 1, "a 401 is not retried");
    engine.stop().await;
    h.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_bearer_is_minted_with_client_credentials() {
    let h = start(1).await;
    let settings = SyncSettings {
        app_bearer_token: None,
        stream: StreamSettings {
            api_key: Some(Secret::new(sim::SIM_API_KEY)),
            api_secret: Some(Secret::new(sim::SIM_API_SECRET)),
            ..stream_settings().stream
        },
        ..stream_settings()
    };
    let engine = h.engine(settings);
    until_live_and_caught_up(&h, &engine).await;
    assert!(
        h.control
            .request_log()
            .iter()
            .any(|r| r.path == "/oauth2/token" && r.status == 200)
    );
    engine.stop().await;
    h.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_app_token_perch_polls_and_says_so_once() {
    let h = start(1).await;
    let settings = SyncSettings {
        app_bearer_token: None,
        ..stream_settings()
    };
    let engine = h.engine(settings);
    h.wait_until("the stream to be off", |_| {
        matches!(last_status(&engine), Some(StreamStatus::Off { .. }))
    })
    .await;
    h.wait_until("polling to catch up", |h| h.caught_up(0))
        .await;
    let notices: Vec<String> = engine
        .events
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            SyncEvent::Notice { message, .. } if message.contains("no app token") => {
                Some(message.clone())
            }
            _ => None,
        })
        .collect();
    assert_eq!(notices, ["live stream off (no app token): see README"]);
    assert!(
        h.control
            .request_log()
            .iter()
            .all(|r| !r.path.starts_with("/2/activity"))
    );
    engine.stop().await;
    h.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_stream_is_noticed_and_replaced() {
    let h = start(1).await;
    h.set_faults(Faults {
        stream_stall_after: Some(Duration::from_millis(500)),
        stream_heartbeat: Some(Duration::from_millis(200)),
        ..Faults::default()
    });
    let engine = h.engine(stream_settings());
    h.wait_until("a stall to be noticed", |_| {
        statuses(&engine)
            .iter()
            .any(|s| matches!(s, StreamStatus::Reconnecting { reason, .. } if reason.contains("stalled")))
    })
    .await;
    h.set_faults(Faults::default());
    h.wait_until("a new connection after the stall", |h| {
        h.control.stream_connects() >= 2 && is_live(&engine)
    })
    .await;
    engine.stop().await;
    h.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_disconnect_message_429_and_malformed_lines_are_understood() {
    let h = start(1).await;
    h.set_faults(Faults {
        stream_disconnect_after: Some(Duration::from_millis(300)),
        ..Faults::default()
    });
    let engine = h.engine(stream_settings());
    h.wait_until("the disconnect message to be understood", |_| {
        statuses(&engine).iter().any(|s| {
            matches!(s, StreamStatus::Reconnecting { reason, .. } if reason.contains("UpstreamOperationalDisconnect"))
        })
    })
    .await;
    // 429 on connect: the rate-limit schedule (a minute or more), with X's words.
    h.set_faults(Faults {
        stream_connect_429: true,
        ..Faults::default()
    });
    h.control.drop_streams();
    h.wait_until("a 429 to set the long back-off", |_| {
        statuses(&engine).iter().any(|s| match s {
            StreamStatus::Reconnecting { reason, at } => {
                reason.contains("429") && *at > chrono::Utc::now() + chrono::Duration::seconds(30)
            }
            _ => false,
        })
    })
    .await;
    engine.stop().await;

    // Malformed lines between events: the events still arrive.
    h.set_faults(Faults {
        stream_malformed_lines: true,
        ..Faults::default()
    });
    let engine = h.engine(stream_settings());
    until_live_and_caught_up(&h, &engine).await;
    let id = h
        .control
        .inject_mention("user00", None, "past the garbage")
        .unwrap();
    h.wait_until("the event after a malformed line", |h| {
        h.mentions(0).iter().any(|m| m.tweet_id == id)
    })
    .await;
    assert!(SyncCounters::get(&engine.counters.stream_trouble) >= 1);
    assert!(is_live(&engine), "a bad line does not end the stream");
    engine.stop().await;
    h.sim.shutdown().await;
}

fn finished_events(engine: &Engine) -> Vec<Option<chrono::DateTime<chrono::Utc>>> {
    engine
        .events
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            SyncEvent::Finished { next_poll_at, .. } => Some(*next_poll_at),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_live_polling_slows_down_and_returns_to_normal_when_the_stream_drops() {
    let h = start(1).await;
    // A base of 2 s (at most 8 s when quiet); live, 200 times that: far beyond the patience.
    let settings = SyncSettings {
        poll_interval: Duration::from_secs(2),
        stream: StreamSettings {
            reconcile_factor: 200,
            ..stream_settings().stream
        },
        ..stream_settings()
    };
    let engine = h.engine(settings);
    until_live_and_caught_up(&h, &engine).await;
    h.wait_until("the engine to know the subscriptions", |_| {
        engine
            .events
            .lock()
            .unwrap()
            .iter()
            .any(|e| matches!(e, SyncEvent::Subscriptions { subscriptions, .. } if subscriptions.streamed()))
    })
    .await;
    let before = finished_events(&engine).len();
    engine.send(Command::FetchNow(Some(h.accounts[0].id))).await;
    h.wait_until("the fetch-now poll", |_| {
        finished_events(&engine).len() > before
    })
    .await;
    let next = finished_events(&engine)
        .pop()
        .flatten()
        .expect("a next poll time");
    assert!(
        next > chrono::Utc::now() + chrono::Duration::seconds(90),
        "a live account is polled as reconciliation, not every few seconds (next at {next})"
    );
    // The stream drops and cannot come back: the normal cadence at once.
    h.set_faults(Faults {
        stream_connect_503: true,
        ..Faults::default()
    });
    h.control.drop_streams();
    let before = finished_events(&engine).len();
    h.wait_until("a poll on the normal cadence", |_| {
        finished_events(&engine).len() > before
    })
    .await;
    engine.stop().await;
    h.sim.shutdown().await;
}
