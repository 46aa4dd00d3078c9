//! A hostile or broken X (issue 10, items 1, 4 and 5) against the simulator over loopback: pages
//! that lie about their newest post, pages of unreadable posts, pagination that never ends, and
//! rate-limit resets in the past or in year 5138. In every case nothing is lost (the cursor never
//! passes a post that was not stored), the poll ends, the account says what happened, and the
//! account recovers by itself once X behaves.

#[path = "support/sync.rs"]
mod support;

use std::time::Duration;

use chrono::Utc;
use perch::domain::SyncStatus;
use perch::sim::Faults;
use perch::sync::{Command, SyncEvent, SyncSettings};
use support::{Engine, Harness, fast_settings, sim_config};

const TIMEOUT: Duration = Duration::from_secs(10);

/// The newest tweet id stored for account `i`.
fn newest_stored(h: &Harness, i: usize) -> Option<u64> {
    h.mentions(i)
        .iter()
        .filter_map(|m| m.tweet_id.parse::<u64>().ok())
        .max()
}

fn message(h: &Harness, i: usize) -> String {
    h.account(i).error_message.unwrap_or_default()
}

/// The cursor never names a post beyond what is stored.
fn cursor_within_store(h: &Harness, i: usize) -> bool {
    match h.cursor(i) {
        None => true,
        Some(c) => newest_stored(h, i).is_some_and(|n| c <= n),
    }
}

/// One account with `mentions` stored at the simulator, X behaving as `faults` says, and an
/// engine that polls once at start (then hourly, so each test sees one poll's outcome).
async fn hostile(mentions: usize, faults: Faults) -> (Harness, Engine) {
    let h = Harness::start(sim_config(1, mentions), TIMEOUT).await;
    h.set_faults(faults);
    let engine = h.engine(SyncSettings {
        poll_interval: Duration::from_secs(3600),
        ..fast_settings()
    });
    (h, engine)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newest_id_beyond_the_page_never_becomes_the_cursor() {
    let h = Harness::start(sim_config(1, 30), TIMEOUT).await;
    h.set_faults(Faults {
        newest_id_beyond: true,
        ..Faults::default()
    });
    let engine = h.engine(fast_settings());
    h.wait_until("a malformed-page error after 3 polls", |h| {
        h.account(0).sync_status == SyncStatus::Error && message(h, 0).contains("malformed page")
    })
    .await;
    let said = message(&h, 0);
    assert!(said.contains("9223372036854775807"), "{said}");
    assert!(said.contains("3 polls in a row"), "{said}");
    // The readable posts were stored all the same; the cursor did not move past them.
    assert_eq!(h.stored(0), 30);
    assert!(cursor_within_store(&h, 0), "cursor {:?}", h.cursor(0));
    assert_ne!(h.cursor(0), Some(i64::MAX as u64));

    // X behaves again: the account recovers, and new mentions are still fetched.
    h.set_faults(Faults::default());
    h.wait_for_status(0, SyncStatus::Active).await;
    h.control.generate_mentions_for("user00", 3).unwrap();
    h.wait_until("the new mentions", |h| h.caught_up(0)).await;
    assert_eq!(h.cursor(0), newest_stored(&h, 0));
    engine.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_of_unreadable_posts_is_asked_for_again_and_reported() {
    let h = Harness::start(sim_config(1, 12), TIMEOUT).await;
    h.set_faults(Faults {
        unreadable_pages: true,
        ..Faults::default()
    });
    let engine = h.engine(fast_settings());
    h.wait_until("a malformed-page error", |h| {
        h.account(0).sync_status == SyncStatus::Error && message(h, 0).contains("malformed page")
    })
    .await;
    assert!(
        message(&h, 0).contains("could not be read"),
        "{}",
        message(&h, 0)
    );
    assert_eq!(h.stored(0), 0);
    assert_eq!(
        h.cursor(0),
        None,
        "the cursor must not pass posts never stored"
    );
    // Each poll asked for the same page again (no since_id: nothing was ever stored).
    let asked = h.mention_requests(0);
    assert!(asked.len() >= 3, "{}", asked.len());
    assert!(
        asked
            .iter()
            .all(|r| support::query_param(r, "since_id").is_none())
    );

    h.set_faults(Faults::default());
    h.wait_until("every post once X sends them readable", |h| h.caught_up(0))
        .await;
    h.wait_for_status(0, SyncStatus::Active).await;
    engine.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_unreadable_post_is_skipped_recorded_by_id_and_counted() {
    let (h, engine) = hostile(
        12,
        Faults {
            bad_posts: true,
            ..Faults::default()
        },
    )
    .await;
    h.wait_until("the readable posts", |h| h.stored(0) == 11)
        .await;
    h.wait_for_status(0, SyncStatus::Active).await;
    let skipped = h.store.unreadable_posts(h.accounts[0].id).unwrap();
    assert_eq!(skipped.count, 1, "{skipped:?}");
    assert_eq!(skipped.newest_ids.len(), 1);
    let id = skipped.newest_ids[0].to_string();
    assert!(h.mentions(0).iter().all(|m| m.tweet_id != id));
    engine.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_next_token_ends_the_poll_and_is_reported() {
    let (h, engine) = hostile(
        30,
        Faults {
            repeat_next_token: true,
            ..Faults::default()
        },
    )
    .await;
    h.wait_until("a malformed-pagination error", |h| {
        message(h, 0).contains("malformed pagination")
    })
    .await;
    assert_eq!(h.account(0).sync_status, SyncStatus::Error);
    assert!(
        message(&h, 0).contains("already sent"),
        "{}",
        message(&h, 0)
    );
    // One poll: the first page and the repeat of its token, then it stopped.
    h.wait_until("the poll to finish", |h| {
        engine.finished(h.accounts[0].id) >= 1
    })
    .await;
    assert_eq!(h.mention_requests(0).len(), 2);
    assert_eq!(h.stored(0), 30, "what was read is kept");
    assert_eq!(
        h.cursor(0),
        None,
        "the cursor does not move past pages never read"
    );

    // The next poll starts again, and once X's pages end, the account is well.
    h.set_faults(Faults::default());
    engine.send(Command::FetchNow(Some(h.accounts[0].id))).await;
    h.wait_for_status(0, SyncStatus::Active).await;
    assert_eq!(h.cursor(0), newest_stored(&h, 0));
    engine.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_pages_that_carry_a_token_end_the_poll() {
    // 150 mentions: two pages, the second of which comes back empty with a token.
    let (h, engine) = hostile(
        150,
        Faults {
            empty_token_pages: true,
            ..Faults::default()
        },
    )
    .await;
    h.wait_until("a malformed-pagination error", |h| {
        message(h, 0).contains("malformed pagination")
    })
    .await;
    assert!(message(&h, 0).contains("empty page"), "{}", message(&h, 0));
    assert_eq!(h.mention_requests(0).len(), 2);
    assert_eq!(h.stored(0), 100);
    assert_eq!(h.cursor(0), None);
    engine.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_that_never_end_stop_at_the_page_limit_each_poll() {
    let (h, engine) = hostile(
        20,
        Faults {
            endless_pages: true,
            ..Faults::default()
        },
    )
    .await;
    h.wait_until("a malformed-pagination error", |h| {
        message(h, 0).contains("malformed pagination")
    })
    .await;
    h.wait_until("the poll to finish", |h| {
        engine.finished(h.accounts[0].id) >= 1
    })
    .await;
    assert!(message(&h, 0).contains("after 16"), "{}", message(&h, 0));
    assert_eq!(h.mention_requests(0).len(), 16);
    engine.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_whose_reset_has_passed_backs_off_instead_of_hammering() {
    let h = Harness::start(sim_config(1, 5), TIMEOUT).await;
    h.set_faults(Faults {
        rate_limit_storm: vec!["user00".into()],
        reset_offset_secs: Some(-120),
        ..Faults::default()
    });
    let engine = h.engine(SyncSettings {
        backoff_cap: Duration::from_secs(120),
        ..fast_settings()
    });
    h.wait_for_status(0, SyncStatus::RateLimited).await;
    let first = h.mention_requests(0).len();
    // The old code retried at the passed reset plus the 300 ms margin: about ten times in 3 s.
    // With back-off (a minute at least) no second request comes that soon, whatever the load.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        h.mention_requests(0).len(),
        first,
        "retried at a passed reset"
    );
    // The time shown is in the future, not the passed reset.
    let events = engine.events.lock().unwrap().clone();
    let next = events.iter().rev().find_map(|e| match e {
        SyncEvent::Finished { next_poll_at, .. } => *next_poll_at,
        _ => None,
    });
    assert!(next.is_some_and(|t| t > Utc::now()), "{next:?}");
    engine.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_in_year_5138_is_a_fault_not_a_wait() {
    let h = Harness::start(sim_config(1, 5), TIMEOUT).await;
    let offset = 100_000_000_000 - Utc::now().timestamp();
    h.set_faults(Faults {
        rate_limit_storm: vec!["user00".into()],
        reset_offset_secs: Some(offset),
        ..Faults::default()
    });
    let engine = h.engine(fast_settings());
    h.wait_until("the implausible reset shown as a fault", |h| {
        h.account(0).sync_status == SyncStatus::Error && message(h, 0).contains("cannot be right")
    })
    .await;
    assert!(message(&h, 0).contains("5138"), "{}", message(&h, 0));
    // F is held back for a sane interval (the 15-minute window), not until year 5138.
    engine.send(Command::FetchNow(Some(h.accounts[0].id))).await;
    h.wait_until("an answer to fetch-now", |h| {
        !engine.notices(h.accounts[0].id).is_empty()
    })
    .await;
    let notice = engine.notices(h.accounts[0].id).join("\n");
    assert!(
        !notice.contains("Wed") || !notice.contains("5138"),
        "{notice}"
    );
    let budget_reset = engine
        .events
        .lock()
        .unwrap()
        .iter()
        .rev()
        .find_map(|e| match e {
            SyncEvent::Budget { reset, .. } => Some(*reset),
            _ => None,
        });
    assert!(
        budget_reset.is_some_and(|r| r < Utc::now() + chrono::Duration::minutes(16)),
        "{budget_reset:?}"
    );
    engine.stop().await;
}

/// A tmpfs mounted for one test, unmounted on drop (`None`, with a message, where mounting is
/// not allowed).
struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().ok()?;
        let ok = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir.path())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("SKIPPED: cannot mount a tmpfs here (not root, or no mount permission)");
            return None;
        }
        Some(Tmpfs(dir))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.0.path())
            .status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_shows_on_every_account_and_syncing_resumes_when_space_returns() {
    let Some(fs) = Tmpfs::mount("8m") else { return };
    let h = Harness::start_at(sim_config(2, 10), TIMEOUT, Some(&fs.0.path().join("store"))).await;
    let engine = h.engine(SyncSettings {
        poll_interval: Duration::from_secs(3600),
        ..fast_settings()
    });
    h.wait_until("both backlogs", |h| h.caught_up(0) && h.caught_up(1))
        .await;

    // Leave less than the margin free.
    let filler = fs.0.path().join("filler");
    let free = perch::store::space::free_bytes(fs.0.path()).unwrap();
    std::fs::write(&filler, vec![0u8; free.saturating_sub(256 * 1024) as usize]).unwrap();
    h.control.generate_mentions_for("user00", 5).unwrap();
    let requests_before = h.mention_requests(0).len();
    engine.send(Command::FetchNow(Some(h.accounts[0].id))).await;
    h.wait_until("disk full on every account", |h| {
        (0..2).all(|i| {
            h.account(i).sync_status == SyncStatus::Error
                && message(h, i).starts_with("disk full: ")
        })
    })
    .await;
    let said = message(&h, 1);
    assert!(said.contains(" MB free at "), "{said}");
    // Nothing was fetched that could not be kept.
    assert_eq!(h.mention_requests(0).len(), requests_before);

    std::fs::remove_file(&filler).unwrap();
    h.wait_until("syncing to resume by itself", |h| {
        h.caught_up(0) && (0..2).all(|i| h.account(i).sync_status == SyncStatus::Active)
    })
    .await;
    engine.stop().await;
    drop(h);
}
