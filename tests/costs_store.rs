//! The cost meter's records in the store: a resource read again the same UTC day is not charged
//! again, across midnight it is (the clock is the charge's own time, so the test controls it);
//! charges commit with their page; a reply is charged once, at its transition to `sent`, at the
//! price its text and its mention say.

mod store_fixtures;

use chrono::{Duration, TimeZone, Utc};
use perch::costs::{CostKind, Month, Pricing, ResourceClass, billing_day};
use perch::outbox::ReplyKind;
use perch::store::{ReadCharge, Store};
use store_fixtures::*;

fn charge(at: chrono::DateTime<Utc>, ids: &[u64]) -> ReadCharge {
    ReadCharge {
        at,
        class: ResourceClass::Post,
        kind: CostKind::PostRead,
        ids: ids.to_vec(),
    }
}

#[test]
fn a_post_read_again_the_same_utc_day_is_free_and_charged_again_after_midnight() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let a = account(1, "acme");
    let b = account(2, "acme_help");
    store.put_account(&a).unwrap();
    store.put_account(&b).unwrap();
    let before_midnight = Utc.with_ymd_and_hms(2026, 11, 30, 23, 59, 58).unwrap();
    let ms = [tweet(1), tweet(2), tweet(3)];
    let page = |acc: &perch::domain::Account, ids: &[u64]| -> Vec<_> {
        ids.iter().map(|t| mention(acc, *t, "hi")).collect()
    };

    let first = store
        .commit_page_charged(
            a.id,
            &page(&a, &ms[..2]),
            None,
            Some(&charge(before_midnight, &ms[..2])),
        )
        .unwrap();
    assert_eq!((first.cost.count, first.cost.micros), (2, 10_000));
    // The same day: post 2 again (through another account too), and one new post.
    let again = store
        .commit_page_charged(
            b.id,
            &page(&b, &ms[1..]),
            None,
            Some(&charge(before_midnight + Duration::seconds(1), &ms[1..])),
        )
        .unwrap();
    assert_eq!(again.cost.count, 1, "only post 3 is new today");
    // After midnight UTC everything is charged again.
    let after_midnight = before_midnight + Duration::seconds(3);
    assert_ne!(billing_day(after_midnight), billing_day(before_midnight));
    let next_day = store
        .commit_page_charged(a.id, &[], None, Some(&charge(after_midnight, &ms)))
        .unwrap();
    assert_eq!(next_day.cost.count, 3);
    // And the same day after that, free again.
    let later = store
        .commit_page_charged(
            a.id,
            &[],
            None,
            Some(&charge(after_midnight + Duration::hours(5), &ms)),
        )
        .unwrap();
    assert_eq!(later.cost.count, 0);

    let rows = store
        .cost_rows(billing_day(before_midnight), billing_day(after_midnight))
        .unwrap();
    let on = |day, acc| -> u64 {
        rows.iter()
            .filter(|r| r.day == day && r.account == acc)
            .map(|r| r.used.count)
            .sum()
    };
    assert_eq!(on(billing_day(before_midnight), a.id), 2);
    assert_eq!(on(billing_day(before_midnight), b.id), 1);
    assert_eq!(on(billing_day(after_midnight), a.id), 3);
    // November's spend and December's are separate months for the budget.
    let (nov, _) = store
        .month_spend(Month::of(billing_day(before_midnight)))
        .unwrap();
    let (dec, per) = store
        .month_spend(Month::of(billing_day(after_midnight)))
        .unwrap();
    assert_eq!((nov, dec), (15_000, 15_000));
    assert_eq!(per.get(&a.id), Some(&15_000));
}

#[test]
fn charges_survive_a_reopen_and_the_seen_set_with_them() {
    let tmp = tempfile::tempdir().unwrap();
    let at = Utc::now();
    let a = account(1, "acme");
    {
        let store = Store::open(tmp.path()).unwrap();
        store.put_account(&a).unwrap();
        store
            .commit_page_charged(
                a.id,
                &[mention(&a, tweet(9), "x")],
                Some(tweet(9)),
                Some(&charge(at, &[tweet(9)])),
            )
            .unwrap();
        store.flush().unwrap();
    }
    let store = Store::open(tmp.path()).unwrap();
    let again = store
        .commit_page_charged(a.id, &[], None, Some(&charge(at, &[tweet(9)])))
        .unwrap();
    assert_eq!(
        again.cost.count, 0,
        "a restart does not forget what was charged today"
    );
    let by = store
        .cost_by_kind(billing_day(at), billing_day(at), Some(a.id))
        .unwrap();
    assert_eq!(by[&CostKind::PostRead].count, 1);
}

#[test]
fn a_reply_is_charged_once_when_sent_at_the_price_of_its_text() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    store.set_pricing(Pricing::default());
    let a = account(1, "acme");
    store.put_account(&a).unwrap();
    let summoned = mention(&a, tweet(1), "@acme help please");
    let unsummoned = mention(&a, tweet(2), "a reply in a thread, no handle");
    store
        .commit_page(a.id, &[summoned.clone(), unsummoned.clone()], None)
        .unwrap();
    let now = Utc::now();
    // Read once first, so the sends below must keep the cached total up to date.
    assert_eq!(store.month_spend(Month::of(billing_day(now))).unwrap().0, 0);
    let send = |key, text: &str, kind| {
        let e = store.outbox_enqueue(key, kind, text, now).unwrap();
        store.outbox_begin_send(key, e.seq, now).unwrap();
        store
            .outbox_sent(key, e.seq, Some("1".into()), now)
            .unwrap();
    };
    send(
        summoned.key(),
        "on it, see acme.io/status",
        ReplyKind::Public,
    );
    send(unsummoned.key(), "thanks", ReplyKind::Public);
    // A failed send costs nothing.
    let failed = store
        .outbox_enqueue(summoned.key(), ReplyKind::Dm, "a DM", now)
        .unwrap();
    store
        .outbox_begin_send(summoned.key(), failed.seq, now)
        .unwrap();
    store
        .outbox_failed(summoned.key(), failed.seq, "X refused", now)
        .unwrap();
    // Marked sent by the user after it failed: X has it, so it is charged, once.
    store.outbox_mark_sent(summoned.key(), now).unwrap();
    assert!(store.outbox_mark_sent(summoned.key(), now).is_err());

    let by = store
        .cost_by_kind(billing_day(now), billing_day(now), Some(a.id))
        .unwrap();
    let count = |k| by.get(&k).map_or(0, |u| u.count);
    assert_eq!(count(CostKind::ReplyWithUrl), 1);
    assert_eq!(count(CostKind::ReplyUnsummoned), 1);
    assert_eq!(count(CostKind::DmSent), 1);
    assert_eq!(count(CostKind::Reply), 0);
    assert_eq!(perch::costs::total(&by), 200_000 + 15_000 + 15_000);
    // The budget's running month total (a cache kept by every charge) agrees with the counters,
    // and with a fresh scan after a reopen.
    let month = Month::of(billing_day(now));
    assert_eq!(store.month_spend(month).unwrap().0, 230_000);
    drop(store);
    let reopened = Store::open(tmp.path()).unwrap();
    assert_eq!(reopened.month_spend(month).unwrap().0, 230_000);
}
