//! A store written by perch before issue 13 (store format 1, records in bincode's serde encoding)
//! still opens, reads as it was, and is written forward in the new record format.

mod store_fixtures;

use chrono::{DateTime, NaiveDate, Utc};
use perch::domain::{MentionKey, MentionStatus, Secret, Tokens};
use perch::store::{FeedFilter, RECORD_FORMAT, STORE_FORMAT, Store, keys};
use store_fixtures::*;

/// Format-1 bytes exactly as the old codec wrote them: the version byte 1, then bincode 2 through
/// serde with the standard configuration.
fn format1<T: serde::Serialize>(value: &T) -> Vec<u8> {
    let mut out = vec![1u8];
    out.extend(bincode::serde::encode_to_vec(value, bincode::config::standard()).unwrap());
    out
}

#[test]
fn a_format_1_store_opens_reads_and_is_written_forward() {
    let tmp = tempfile::tempdir().unwrap();
    let a = account(1, "oldtimer");
    let m1 = full_mention(&a, tweet(1));
    let mut m2 = mention(&a, tweet(2), "second");
    m2.status = MentionStatus::Ignored;
    let tokens = Tokens {
        access_token: Secret::new("AT-old"),
        refresh_token: Some(Secret::new("RT-old")),
        expires_at: t0(),
        scope: "tweet.read offline.access".into(),
    };
    {
        // The old perch's layout, written key by key.
        let db = sled::open(tmp.path()).unwrap();
        db.insert(keys::FORMAT_KEY, &[1u8]).unwrap();
        db.insert(keys::account_key(keys::ACCOUNT, a.id), format1(&a))
            .unwrap();
        db.insert(keys::twitter_id_key(&a.twitter_id), a.id.as_bytes())
            .unwrap();
        db.insert(keys::account_key(keys::TOKENS, a.id), format1(&tokens))
            .unwrap();
        db.insert(keys::account_key(keys::FIRST_SEEN, a.id), format1(&t0()))
            .unwrap();
        db.insert(
            keys::account_key(keys::CURSOR, a.id),
            &tweet(2).to_be_bytes(),
        )
        .unwrap();
        for m in [&m1, &m2] {
            let t = m.tweet_id_u64();
            db.insert(keys::mention_key(a.id, t), format1(m)).unwrap();
            db.insert(keys::status_index_key(a.id, m.status, t), &[])
                .unwrap();
            db.insert(keys::status_count_key(a.id, m.status), &1u64.to_be_bytes())
                .unwrap();
            db.insert(keys::global_count_key(m.status), &1u64.to_be_bytes())
                .unwrap();
        }
        let day: NaiveDate = keys::day_of(m1.timestamp);
        db.insert(keys::day_count_key(a.id, day), &2u64.to_be_bytes())
            .unwrap();
        db.flush().unwrap();
    }

    let store = Store::open(tmp.path()).expect("a format-1 store opens");
    assert_eq!(store.accounts().unwrap(), vec![a.clone()]);
    assert_eq!(store.tokens(a.id).unwrap(), Some(tokens));
    assert_eq!(store.first_seen(a.id).unwrap(), Some(t0()));
    assert_eq!(store.cursor(a.id).unwrap(), Some(tweet(2)));
    assert_eq!(store.mention(m1.key()).unwrap(), Some(m1.clone()));
    let feed = store.page_after(&FeedFilter::default(), None, 10).unwrap();
    assert_eq!(feed, vec![m2.clone(), m1.clone()]);
    assert_eq!(store.count(&FeedFilter::default()).unwrap(), 2);

    // A change writes the record in the new format; untouched records stay readable.
    let now: DateTime<Utc> = t0() + chrono::Duration::hours(1);
    let key = MentionKey {
        account_id: a.id,
        tweet_id: tweet(2),
    };
    store
        .set_status(key, MentionStatus::Pending, now)
        .unwrap()
        .unwrap();
    drop(store);
    {
        let db = sled::open(tmp.path()).unwrap();
        assert_eq!(
            db.get(keys::FORMAT_KEY).unwrap().unwrap().as_ref(),
            &[STORE_FORMAT]
        );
        let raw = db.get(keys::mention_key(a.id, tweet(2))).unwrap().unwrap();
        assert_eq!(raw[0], RECORD_FORMAT);
        let raw = db.get(keys::mention_key(a.id, tweet(1))).unwrap().unwrap();
        assert_eq!(raw[0], 1, "untouched records are not rewritten");
    }
    let store = Store::open(tmp.path()).unwrap();
    assert_eq!(
        store.mention(key).unwrap().unwrap().status,
        MentionStatus::Pending
    );
    assert_eq!(store.mention(m1.key()).unwrap(), Some(m1));
    assert_eq!(
        store
            .count(&FeedFilter {
                account: Some(a.id),
                status: Some(MentionStatus::Pending)
            })
            .unwrap(),
        1
    );
}
