//! Changes reach every service on one database (issue 16, `store/pg/changes.rs`), on a real
//! PostgreSQL server: what one service commits, another service's listener hears, in commit
//! order; what was refused or changed nothing is not heard; a payload perch cannot read is
//! skipped; a listener whose connection is gone says so instead of reporting "nothing came".

#[path = "support/pg.rs"]
mod pg;
#[path = "store_fixtures/mod.rs"]
mod store_fixtures;

use std::time::Duration;

use chrono::Utc;
use perch::domain::{MentionStatus, ReplyKind, TokenKey};
use perch::store::pg::changes::{Change, ChangeListener};
use perch::store::{Backend, OutboxBackend, PgStore};
use store_fixtures::*;

/// Generous: the loopback server answers in a millisecond; a busy 2-core machine may not.
const HEARD_WITHIN: Duration = Duration::from_secs(10);
/// How long to listen for a change that must not come.
const QUIET: Duration = Duration::from_millis(500);

fn heard(listener: &mut ChangeListener) -> Change {
    listener
        .next(HEARD_WITHIN)
        .unwrap()
        .unwrap_or_else(|| panic!("no change heard within {HEARD_WITHIN:?}"))
}

#[test]
fn what_one_service_commits_another_services_listener_hears_in_commit_order() {
    let url = pg::fresh_database();
    let writer = PgStore::connect(&url, Some(TokenKey::generate())).unwrap();
    let mut other = ChangeListener::connect(&url).unwrap();

    let a = account(1, "acme");
    writer.put_account(&a).unwrap();
    assert_eq!(heard(&mut other), Change::Account { account: a.id });

    let page: Vec<_> = (0..3u64)
        .map(|i| mention(&a, 1_600_000_000_000_000_000 + i, "hi"))
        .collect();
    writer
        .commit_page(a.id, &page, Some(1_600_000_000_000_000_002))
        .unwrap();
    assert_eq!(
        heard(&mut other),
        Change::Mentions {
            account: a.id,
            inserted: 3
        }
    );

    let m = &page[0];
    writer
        .set_status(m.key(), MentionStatus::Ignored, Utc::now())
        .unwrap();
    assert_eq!(
        heard(&mut other),
        Change::Mention {
            account: a.id,
            tweet: m.key().tweet_id
        }
    );

    let key = page[1].key();
    let entry = writer
        .outbox_enqueue_by(
            key,
            ReplyKind::Public,
            "on it",
            Some("ana"),
            false,
            Utc::now(),
        )
        .unwrap();
    let claimed = writer.outbox_claim_next(Utc::now()).unwrap().unwrap();
    for _ in 0..2 {
        assert_eq!(
            heard(&mut other),
            Change::Outbox {
                account: a.id,
                tweet: key.tweet_id,
                seq: entry.seq
            }
        );
    }
    assert_eq!(claimed.seq, entry.seq);
    assert_eq!(other.next(QUIET).unwrap(), None, "nothing else happened");
}

#[test]
fn what_was_refused_or_changed_nothing_is_not_heard() {
    let url = pg::fresh_database();
    let writer = PgStore::connect(&url, Some(TokenKey::generate())).unwrap();
    let a = account(1, "acme");
    writer.put_account(&a).unwrap();
    let m = mention(&a, 1_600_000_000_000_000_001, "hi");
    writer
        .commit_page(a.id, std::slice::from_ref(&m), None)
        .unwrap();
    writer
        .outbox_enqueue_by(
            m.key(),
            ReplyKind::Public,
            "first",
            Some("ana"),
            false,
            Utc::now(),
        )
        .unwrap();

    let mut other = ChangeListener::connect(&url).unwrap();
    // A page of posts already stored: nothing new.
    writer
        .commit_page(a.id, std::slice::from_ref(&m), None)
        .unwrap();
    // A second send for the mention: refused, nothing written.
    assert!(
        writer
            .outbox_enqueue_by(
                m.key(),
                ReplyKind::Public,
                "second",
                Some("ben"),
                false,
                Utc::now()
            )
            .is_err()
    );
    assert_eq!(other.next(QUIET).unwrap(), None);
}

#[test]
fn a_notification_perch_cannot_read_is_skipped_and_the_next_change_still_heard() {
    let url = pg::fresh_database();
    let writer = PgStore::connect(&url, Some(TokenKey::generate())).unwrap();
    let mut other = ChangeListener::connect(&url).unwrap();
    let mut stranger = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    stranger
        .batch_execute("NOTIFY perch_changes, 'not json at all'; NOTIFY perch_changes, '{\"kind\":\"from_a_newer_perch\"}'")
        .unwrap();
    let a = account(1, "acme");
    writer.put_account(&a).unwrap();
    assert_eq!(heard(&mut other), Change::Account { account: a.id });
}

#[test]
fn a_listener_whose_connection_the_server_ended_reports_it_rather_than_silence() {
    let url = pg::fresh_database();
    PgStore::connect(&url, Some(TokenKey::generate())).unwrap();
    let mut listener = ChangeListener::connect(&url).unwrap();
    let mut admin = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let ended = admin
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE pid <> pg_backend_pid() AND datname = current_database()
               AND query LIKE 'LISTEN%'",
            &[],
        )
        .unwrap();
    assert_eq!(ended.len(), 1, "one listening session to end");
    // Within a few waits it must be an error, never an endless run of "nothing came".
    let started = std::time::Instant::now();
    loop {
        match listener.next(Duration::from_millis(200)) {
            Err(e) => {
                assert!(
                    e.to_string().contains("closed") || e.to_string().contains("waiting"),
                    "{e}"
                );
                break;
            }
            Ok(None) => assert!(
                started.elapsed() < Duration::from_secs(10),
                "a dead listener kept saying nothing came"
            ),
            Ok(Some(change)) => panic!("no change was made: {change:?}"),
        }
    }
}
