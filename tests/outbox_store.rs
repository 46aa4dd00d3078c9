//! The outbox's records in the store: each transition keeps the entry, the mention (status,
//! response, error), the status counters and the draft consistent, survives reopening the store,
//! and start-up repair never leaves anything to be sent by itself.

use chrono::{TimeZone, Utc};
use perch::domain::{Account, Mention, MentionKey, MentionStatus, Sender, SentTo, SyncStatus};
use perch::outbox::{self, OutboxState, ReplyKind};
use perch::store::{FeedFilter, Store};

fn now() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 11, 26, 12, 0, 0).unwrap()
}

fn setup(dir: &std::path::Path) -> (Store, Account, Vec<Mention>) {
    let store = Store::open(dir).unwrap();
    let mut account = Account::new("100".into(), "acme".into(), "Acme".into(), None, now());
    account.sync_status = SyncStatus::Active;
    store.put_account(&account).unwrap();
    let mentions: Vec<Mention> = (0..4u64)
        .map(|i| Mention {
            id: uuid::Uuid::from_u128(i as u128 + 1),
            tweet_id: (1_990_000_000_000_000_000u64 + i).to_string(),
            timestamp: now(),
            text: format!("@acme question {i}"),
            sender: Sender {
                twitter_id: Some(format!("{}", 500 + i)),
                username: Some(format!("user{i}")),
                ..Sender::default()
            },
            sent_to: SentTo {
                account_id: account.id,
                twitter_id: "100".into(),
                username: "acme".into(),
                display_name: "Acme".into(),
            },
            status: MentionStatus::Pending,
            public_response: None,
            dm_response: None,
            conversation_id: None,
            referenced_posts: vec![],
            error_message: None,
            created_at: now(),
            updated_at: now(),
        })
        .collect();
    store.commit_page(account.id, &mentions, None).unwrap();
    (store, account, mentions)
}

fn count(store: &Store, status: MentionStatus) -> u64 {
    store
        .count(&FeedFilter {
            account: None,
            status: Some(status),
        })
        .unwrap()
}

fn status(store: &Store, key: MentionKey) -> MentionStatus {
    store.mention(key).unwrap().unwrap().status
}

#[test]
fn start_up_repair_turns_sending_into_unconfirmed_and_unsent_into_failed() {
    let dir = tempfile::tempdir().unwrap();
    let keys: Vec<MentionKey>;
    {
        let (store, _, mentions) = setup(dir.path());
        keys = mentions.iter().map(Mention::key).collect();
        // 0: cut off while sending; 1: queued, never left; 2: rate-limited, waiting; 3: a mention
        // an older perch left `processing` with no outbox entry.
        let e0 = store
            .outbox_enqueue(keys[0], ReplyKind::Public, "zero", now())
            .unwrap();
        store.outbox_begin_send(keys[0], e0.seq, now()).unwrap();
        store
            .outbox_enqueue(keys[1], ReplyKind::Dm, "one", now())
            .unwrap();
        let e2 = store
            .outbox_enqueue(keys[2], ReplyKind::Public, "two", now())
            .unwrap();
        store.outbox_begin_send(keys[2], e2.seq, now()).unwrap();
        store
            .outbox_waiting(keys[2], e2.seq, now(), "rate limited", now())
            .unwrap();
        store
            .set_status(keys[3], MentionStatus::Processing, now())
            .unwrap();
        assert_eq!(count(&store, MentionStatus::Processing), 4);
        store.flush().unwrap();
        // Dropped without any clean shutdown.
    }
    let store = Store::open(dir.path()).unwrap();
    let repaired = outbox::recover(&store).unwrap();
    assert_eq!(repaired.len(), 3);

    let e0 = store.outbox_current(keys[0]).unwrap().unwrap();
    assert_eq!(e0.state, OutboxState::Unconfirmed);
    assert!(e0.may_have_been_sent);
    assert_eq!(status(&store, keys[0]), MentionStatus::Error);
    for k in &keys[1..3] {
        let e = store.outbox_current(*k).unwrap().unwrap();
        assert_eq!(e.state, OutboxState::Failed, "never left: not unconfirmed");
        assert!(!e.may_have_been_sent);
        assert_eq!(status(&store, *k), MentionStatus::Error);
    }
    let orphan = store.mention(keys[3]).unwrap().unwrap();
    assert_eq!(orphan.status, MentionStatus::Error);
    assert!(orphan.error_message.unwrap().starts_with("unconfirmed"));
    // Counters moved with the statuses; drafts are kept for every one.
    assert_eq!(count(&store, MentionStatus::Processing), 0);
    assert_eq!(count(&store, MentionStatus::Error), 4);
    for (k, text) in keys[..3].iter().zip(["zero", "one", "two"]) {
        assert_eq!(store.draft(*k).unwrap().map(|d| d.text), Some(text.into()));
    }
    // Running it again changes nothing.
    assert!(outbox::recover(&store).unwrap().is_empty());
}

#[test]
fn resolving_an_unconfirmed_reply_records_it_or_reopens_the_mention() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _, mentions) = setup(dir.path());
    let (a, b) = (mentions[0].key(), mentions[1].key());
    for (k, text) in [(a, "on X"), (b, "not on X")] {
        let e = store
            .outbox_enqueue(k, ReplyKind::Public, text, now())
            .unwrap();
        store.outbox_begin_send(k, e.seq, now()).unwrap();
        store
            .outbox_unconfirmed(k, e.seq, "unconfirmed: check on X", now())
            .unwrap();
    }
    assert_eq!(store.outbox_open().unwrap().len(), 2);
    // While unconfirmed, no new send for the mention can even be recorded.
    assert!(
        store
            .outbox_enqueue(a, ReplyKind::Public, "again", now())
            .is_err()
    );

    let (entry, response) = store.outbox_mark_sent(a, now()).unwrap();
    assert_eq!(entry.state, OutboxState::Sent);
    assert_eq!(response.id, "");
    let m = store.mention(a).unwrap().unwrap();
    assert_eq!(m.status, MentionStatus::Replied);
    assert_eq!(m.public_response, Some(response));
    assert_eq!(store.draft(a).unwrap(), None);

    let cancelled = store.outbox_cancel(b, now()).unwrap();
    assert_eq!(cancelled.state, OutboxState::Cancelled);
    assert_eq!(status(&store, b), MentionStatus::Pending);
    assert_eq!(
        store.draft(b).unwrap().map(|d| d.text),
        Some("not on X".into())
    );
    assert!(store.outbox_open().unwrap().is_empty());
    // A cancelled reply no longer blocks a new one.
    store
        .outbox_enqueue(b, ReplyKind::Dm, "by DM then", now())
        .unwrap();
    assert_eq!(store.outbox_history(b).unwrap().len(), 2);
    // Counters agree with the records.
    assert_eq!(count(&store, MentionStatus::Replied), 1);
    assert_eq!(count(&store, MentionStatus::Processing), 1);
    assert_eq!(count(&store, MentionStatus::Pending), 2);
    assert_eq!(count(&store, MentionStatus::Error), 0);
}

#[test]
fn a_retry_keeps_the_entry_and_what_its_first_attempt_may_have_done() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _, mentions) = setup(dir.path());
    let k = mentions[2].key();
    let e = store
        .outbox_enqueue(k, ReplyKind::Public, "hello", now())
        .unwrap();
    store.outbox_begin_send(k, e.seq, now()).unwrap();
    store.outbox_unconfirmed(k, e.seq, "lost", now()).unwrap();
    let retried = store.outbox_retry(k, now()).unwrap();
    assert_eq!(retried.seq, e.seq);
    assert_eq!(retried.state, OutboxState::Queued);
    assert!(retried.may_have_been_sent);
    assert_eq!(status(&store, k), MentionStatus::Processing);
    let sending = store.outbox_begin_send(k, e.seq, now()).unwrap();
    assert_eq!(sending.attempts, 2);
    // Only unconfirmed or failed entries can be retried or marked sent.
    assert!(store.outbox_retry(k, now()).is_err());
    assert!(store.outbox_mark_sent(k, now()).is_err());
}
