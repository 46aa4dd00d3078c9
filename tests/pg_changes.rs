//! Changes reach every service on one database (issue 16, `store/pg/changes.rs`), on a real
//! PostgreSQL server: what one service commits, another service's listener hears, in commit
//! order; what was refused or changed nothing is not heard; a payload perch cannot read is
//! skipped.

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
    // A second send for the mention: refused, rolled back.
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
