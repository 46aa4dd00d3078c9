//! Pages, counts and search: newest-first order for every filter, continuity across page
//! boundaries, counters that follow status changes, atomic page commits.

mod store_fixtures;

use chrono::NaiveDate;
use perch::domain::{Account, Mention, MentionStatus};
use perch::store::{FeedFilter, FeedPos, Store};
use store_fixtures::*;

/// Two accounts with interleaved tweets, one post mentioning both, and a mix of statuses.
/// Returns every stored mention, newest first by (tweet, account).
fn populated(store: &Store) -> (Account, Account, Vec<Mention>) {
    let a = account(1, "acme");
    let b = account(2, "bolt");
    store.put_account(&a).unwrap();
    store.put_account(&b).unwrap();
    let mut all = Vec::new();
    let mut page_a = Vec::new();
    let mut page_b = Vec::new();
    for i in 0..60u64 {
        let owner = if i % 3 == 0 { &b } else { &a };
        let mut m = mention(owner, tweet(i), &format!("post number {i}"));
        if i % 5 == 0 {
            m.status = MentionStatus::Replied;
        }
        if owner.id == a.id {
            page_a.push(m.clone())
        } else {
            page_b.push(m.clone())
        }
        all.push(m);
    }
    // One post that mentions both accounts: two mentions with the same tweet id.
    let shared_a = mention(&a, tweet(30) + 1, "to both");
    let shared_b = mention(&b, tweet(30) + 1, "to both");
    page_a.push(shared_a.clone());
    page_b.push(shared_b.clone());
    all.push(shared_a);
    all.push(shared_b);
    assert_eq!(
        store.commit_page(a.id, &page_a, None).unwrap().inserted,
        page_a.len()
    );
    assert_eq!(
        store.commit_page(b.id, &page_b, None).unwrap().inserted,
        page_b.len()
    );
    all.sort_by_key(|m| std::cmp::Reverse(FeedPos::from(m.key())));
    (a, b, all)
}

fn keys(ms: &[Mention]) -> Vec<FeedPos> {
    ms.iter().map(|m| FeedPos::from(m.key())).collect()
}

fn filters(a: &Account, b: &Account) -> Vec<FeedFilter> {
    let mut out = vec![FeedFilter::default()];
    for acc in [None, Some(a.id), Some(b.id)] {
        for st in [
            None,
            Some(MentionStatus::Pending),
            Some(MentionStatus::Replied),
        ] {
            out.push(FeedFilter {
                account: acc,
                status: st,
            });
        }
    }
    out
}

fn expected(all: &[Mention], f: &FeedFilter) -> Vec<FeedPos> {
    keys(
        &all.iter()
            .filter(|m| f.account.is_none_or(|a| m.sent_to.account_id == a))
            .filter(|m| f.status.is_none_or(|s| m.status == s))
            .cloned()
            .collect::<Vec<_>>(),
    )
}

#[test]
fn every_filter_pages_newest_first_without_gaps_or_repeats() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let (a, b, all) = populated(&store);
    for f in filters(&a, &b) {
        let want = expected(&all, &f);
        // Walk down with page_after in pages of 7 (boundaries fall everywhere, including between
        // the two mentions of the shared post).
        let mut got = Vec::new();
        let mut after = None;
        loop {
            let page = store.page_after(&f, after, 7).unwrap();
            if page.is_empty() {
                break;
            }
            after = Some(FeedPos::from(page.last().unwrap().key()));
            got.extend(keys(&page));
        }
        assert_eq!(got, want, "page_after for {f:?}");
        assert_eq!(
            store.count(&f).unwrap(),
            want.len() as u64,
            "count for {f:?}"
        );

        // Walk up from the end with page_before: each page is newest first and sits just above.
        let mut up = Vec::new();
        let mut before = None;
        loop {
            let page = store.page_before(&f, before, 7).unwrap();
            if page.is_empty() {
                break;
            }
            before = Some(FeedPos::from(page.first().unwrap().key()));
            let mut k = keys(&page);
            k.extend(up);
            up = k;
        }
        assert_eq!(up, want, "page_before for {f:?}");
    }
}

#[test]
fn page_before_none_is_the_oldest_rows_newest_first() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let (_, _, all) = populated(&store);
    let end = store.page_before(&FeedFilter::default(), None, 5).unwrap();
    assert_eq!(keys(&end), keys(&all[all.len() - 5..]));
    // And page_after from the middle continues exactly where page_before left off.
    let mid = FeedPos::from(all[10].key());
    let above = store
        .page_before(&FeedFilter::default(), Some(mid), 3)
        .unwrap();
    let below = store
        .page_after(&FeedFilter::default(), Some(mid), 3)
        .unwrap();
    assert_eq!(keys(&above), keys(&all[7..10]));
    assert_eq!(keys(&below), keys(&all[11..14]));
}

#[test]
fn duplicate_page_inserts_nothing_and_keeps_triage_state() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let a = account(1, "acme");
    let page: Vec<Mention> = (0..10).map(|i| mention(&a, tweet(i), "hello")).collect();
    let first = store.commit_page(a.id, &page, Some(tweet(9))).unwrap();
    assert_eq!((first.inserted, first.duplicates), (10, 0));
    store
        .set_status(page[3].key(), MentionStatus::Replied, t0())
        .unwrap();
    let counts_before: Vec<u64> = MentionStatus::ALL
        .iter()
        .map(|s| {
            store
                .count(&FeedFilter {
                    account: Some(a.id),
                    status: Some(*s),
                })
                .unwrap()
        })
        .collect();
    let again = store.commit_page(a.id, &page, Some(tweet(9))).unwrap();
    assert_eq!((again.inserted, again.duplicates), (0, 10));
    let counts_after: Vec<u64> = MentionStatus::ALL
        .iter()
        .map(|s| {
            store
                .count(&FeedFilter {
                    account: Some(a.id),
                    status: Some(*s),
                })
                .unwrap()
        })
        .collect();
    assert_eq!(counts_before, counts_after);
    assert_eq!(
        store.mention(page[3].key()).unwrap().unwrap().status,
        MentionStatus::Replied,
        "a re-fetched mention must not overwrite its triage state"
    );
    // The same mention twice within one page is stored once.
    let twice = vec![mention(&a, tweet(20), "x"), mention(&a, tweet(20), "x")];
    let c = store.commit_page(a.id, &twice, None).unwrap();
    assert_eq!((c.inserted, c.duplicates), (1, 1));
    assert_eq!(store.count(&FeedFilter::default()).unwrap(), 11);
}

/// A post that arrived as a stream's reply or quote event has no author (ACTIVITY.md §5.2); when
/// a poll returns it again with its author, the stored mention takes the sender and keeps its
/// triage state. A copy without an author never erases a known sender.
#[test]
fn a_later_copy_names_the_unknown_sender_of_a_stored_mention_and_keeps_its_status() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let a = account(1, "acme");
    let polled = mention(&a, tweet(1), "hello");
    // The stream's event names the author's id only.
    let mut streamed = polled.clone();
    streamed.sender = perch::domain::Sender {
        twitter_id: polled.sender.twitter_id.clone(),
        ..Default::default()
    };
    store.commit_streamed_post(a.id, &streamed, None).unwrap();
    store
        .set_status(streamed.key(), MentionStatus::Ignored, t0())
        .unwrap();

    let done = store
        .commit_page(a.id, std::slice::from_ref(&polled), Some(tweet(1)))
        .unwrap();
    assert_eq!(
        (done.inserted, done.duplicates, done.senders_filled),
        (0, 1, 1)
    );
    let stored = store.mention(polled.key()).unwrap().unwrap();
    assert_eq!(stored.sender, polled.sender);
    assert_eq!(
        stored.status,
        MentionStatus::Ignored,
        "the triage state stays"
    );
    assert_eq!(
        store
            .count(&FeedFilter {
                account: Some(a.id),
                status: Some(MentionStatus::Ignored),
            })
            .unwrap(),
        1
    );

    // A copy without an author again (the stream's, later) leaves the named sender alone.
    let again = store.commit_streamed_post(a.id, &streamed, None).unwrap();
    assert_eq!((again.duplicates, again.senders_filled), (1, 0));
    assert_eq!(
        store
            .mention(polled.key())
            .unwrap()
            .unwrap()
            .sender
            .username,
        polled.sender.username
    );
}

#[test]
fn page_commit_is_all_or_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let a = account(1, "acme");
    let b = account(2, "bolt");
    // A page that cannot be committed (a mention of another account in it) leaves no trace:
    // no records, no counters, no cursor.
    let bad = vec![mention(&a, tweet(1), "x"), mention(&b, tweet(2), "y")];
    assert!(store.commit_page(a.id, &bad, Some(tweet(2))).is_err());
    assert_eq!(store.cursor(a.id).unwrap(), None);
    assert_eq!(store.count(&FeedFilter::default()).unwrap(), 0);
    assert!(store.mention(bad[0].key()).unwrap().is_none());
    // A good page lands with its cursor, visible together after a reopen.
    let good: Vec<Mention> = (0..5).map(|i| mention(&a, tweet(i), "x")).collect();
    store.commit_page(a.id, &good, Some(tweet(4))).unwrap();
    store.flush().unwrap();
    drop(store);
    let store = Store::open(tmp.path()).unwrap();
    assert_eq!(store.cursor(a.id).unwrap(), Some(tweet(4)));
    assert_eq!(
        store
            .page_after(&FeedFilter::default(), None, 100)
            .unwrap()
            .len(),
        5
    );
    assert_eq!(store.count(&FeedFilter::default()).unwrap(), 5);
}

#[test]
fn status_change_moves_index_entry_and_counters() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let a = account(1, "acme");
    let page: Vec<Mention> = (0..6).map(|i| mention(&a, tweet(i), "x")).collect();
    store.commit_page(a.id, &page, None).unwrap();
    let pending = FeedFilter {
        account: Some(a.id),
        status: Some(MentionStatus::Pending),
    };
    let replied = FeedFilter {
        account: Some(a.id),
        status: Some(MentionStatus::Replied),
    };
    let all_replied = FeedFilter {
        account: None,
        status: Some(MentionStatus::Replied),
    };
    let mut m = page[2].clone();
    m.status = MentionStatus::Replied;
    m.text = "edited".into();
    let prev = store.update_mention(&m).unwrap().unwrap();
    assert_eq!(prev.status, MentionStatus::Pending);
    assert_eq!(store.count(&pending).unwrap(), 5);
    assert_eq!(store.count(&replied).unwrap(), 1);
    assert_eq!(store.count(&all_replied).unwrap(), 1);
    assert_eq!(store.count(&FeedFilter::default()).unwrap(), 6);
    assert_eq!(
        keys(&store.page_after(&replied, None, 10).unwrap()),
        keys(&[m.clone()])
    );
    assert!(
        !keys(&store.page_after(&pending, None, 10).unwrap()).contains(&FeedPos::from(m.key()))
    );
    // Same status again: counters stay put.
    store.update_mention(&m).unwrap();
    assert_eq!(store.count(&replied).unwrap(), 1);
    // Updating a mention that is not stored writes nothing.
    let ghost = mention(&a, tweet(50), "ghost");
    assert_eq!(store.update_mention(&ghost).unwrap(), None);
    assert_eq!(store.mention(ghost.key()).unwrap(), None);
}

#[test]
fn daily_counts_follow_the_post_dates() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let a = account(1, "acme");
    let day = |d: u32| NaiveDate::from_ymd_opt(2026, 3, d).unwrap();
    let at = |d: u32, h: u32| day(d).and_hms_opt(h, 0, 0).unwrap().and_utc();
    let mut page = Vec::new();
    for (i, (d, h)) in [(1, 1), (1, 23), (3, 12), (4, 0), (4, 5), (4, 6)]
        .iter()
        .enumerate()
    {
        let mut m = mention(&a, tweet(i as u64), "x");
        m.timestamp = at(*d, *h);
        page.push(m);
    }
    store.commit_page(a.id, &page, None).unwrap();
    assert_eq!(
        store.daily_counts(a.id, day(4), 5).unwrap(),
        vec![
            (NaiveDate::from_ymd_opt(2026, 2, 28).unwrap(), 0),
            (day(1), 2),
            (day(2), 0),
            (day(3), 1),
            (day(4), 3)
        ]
    );
    assert!(store.daily_counts(a.id, day(4), 0).unwrap().is_empty());
    assert_eq!(
        store.daily_counts(account(2, "x").id, day(4), 2).unwrap(),
        vec![(day(3), 0), (day(4), 0)]
    );
}

#[test]
fn search_stops_early_and_resumes_where_it_stopped() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let a = account(1, "acme");
    let b = account(2, "bolt");
    let mut pa = Vec::new();
    let mut pb = Vec::new();
    for i in 0..100u64 {
        let owner = if i % 2 == 0 { &a } else { &b };
        let text = if i % 10 == 0 {
            format!("a Needle here {i}")
        } else {
            format!("hay {i}")
        };
        let m = mention(owner, tweet(i), &text);
        if i % 2 == 0 { pa.push(m) } else { pb.push(m) }
    }
    let mut by_name = mention(&b, tweet(55) + 1, "nothing in the text");
    by_name.sender.display_name = Some("The NEEDLE Co".into());
    pb.push(by_name.clone());
    store.commit_page(a.id, &pa, None).unwrap();
    store.commit_page(b.id, &pb, None).unwrap();
    let f = FeedFilter::default();
    // Matches newest first: 90, 80, 70, 60, by_name (55+), 50, ..., 0.
    let first = store.search_page(&f, "needle", None, 3, 1000).unwrap();
    let tweets: Vec<u64> = first.hits.iter().map(|m| m.tweet_id_u64()).collect();
    assert_eq!(tweets, [tweet(90), tweet(80), tweet(70)]);
    assert!(!first.exhausted);
    assert_eq!(first.resume_after.map(|p| p.tweet_id), Some(tweet(70)));
    // A scan budget stops the search even without hits (rows 69..65 hold none), and says where.
    let budget = store
        .search_page(&f, "needle", first.resume_after, 10, 5)
        .unwrap();
    assert!(budget.hits.is_empty());
    assert!(!budget.exhausted);
    assert_eq!(budget.resume_after.map(|p| p.tweet_id), Some(tweet(65)));
    // Continue to the end: every remaining match, in order, then exhausted.
    let mut found = Vec::new();
    let mut after = budget.resume_after;
    loop {
        let p = store.search_page(&f, "NEEDLE", after, 2, 1000).unwrap();
        found.extend(p.hits.iter().map(|m| m.tweet_id_u64()));
        after = p.resume_after;
        if p.exhausted {
            break;
        }
    }
    let mut want = vec![tweet(60), tweet(55) + 1];
    want.extend([50, 40, 30, 20, 10, 0].map(tweet));
    assert_eq!(found, want);
    // Search within a filter only sees that filter.
    let only_b = store
        .search_page(
            &FeedFilter {
                account: Some(b.id),
                status: None,
            },
            "needle",
            None,
            50,
            1000,
        )
        .unwrap();
    assert_eq!(only_b.hits, vec![by_name]);
    assert!(only_b.exhausted);
}

/// Search skips decoding records whose bytes cannot hold the query; a record that holds it only
/// in a field search does not look at (an image URL) must still not be a hit, and queries that
/// are not ASCII, or match only the username, must still be found.
#[test]
fn search_matches_fields_not_record_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let a = account(1, "acme");
    store.put_account(&a).unwrap();
    let mut in_url = mention(&a, tweet(1), "plain words");
    in_url.sender.profile_image_url = Some("https://img.example/zeppelin.jpg".into());
    let mut in_username = mention(&a, tweet(2), "other words");
    in_username.sender.username = Some("ZepPelin_fan".into());
    let unicode = mention(&a, tweet(3), "Grüße aus KÖLN");
    store
        .commit_page(a.id, &[in_url, in_username.clone(), unicode.clone()], None)
        .unwrap();
    let f = FeedFilter::default();
    let hits = store.search_page(&f, "zeppelin", None, 10, 100).unwrap();
    assert_eq!(hits.hits, vec![in_username]);
    let hits = store.search_page(&f, "köln", None, 10, 100).unwrap();
    assert_eq!(hits.hits, vec![unicode]);
}

#[test]
fn removing_an_account_keeps_or_deletes_its_mentions_consistently() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let (a, b, all) = populated(&store);
    let n_a = all.iter().filter(|m| m.sent_to.account_id == a.id).count() as u64;
    let n_b = all.len() as u64 - n_a;
    store
        .put_draft(
            all[0].key(),
            &perch::store::Draft {
                kind: perch::outbox::ReplyKind::Public,
                text: "d".into(),
                updated_at: t0(),
            },
        )
        .unwrap();

    // Keep the mentions: they stay under "All accounts" and in the counts.
    store.remove_account(b.id, false).unwrap();
    assert_eq!(store.account(b.id).unwrap(), None);
    assert_eq!(store.account_by_twitter_id(&b.twitter_id).unwrap(), None);
    assert_eq!(store.count(&FeedFilter::default()).unwrap(), n_a + n_b);
    assert_eq!(
        store
            .page_after(&FeedFilter::default(), None, 1000)
            .unwrap()
            .len() as u64,
        n_a + n_b
    );

    // Delete the mentions: records, index entries and counters go together.
    store.remove_account(a.id, true).unwrap();
    assert_eq!(store.count(&FeedFilter::default()).unwrap(), n_b);
    assert_eq!(
        store
            .count(&FeedFilter {
                account: Some(a.id),
                status: None
            })
            .unwrap(),
        0
    );
    for f in filters(&a, &b) {
        let left = store.page_after(&f, None, 1000).unwrap();
        assert!(left.iter().all(|m| m.sent_to.account_id == b.id), "{f:?}");
        assert_eq!(store.count(&f).unwrap(), left.len() as u64, "{f:?}");
    }
    assert_eq!(store.cursor(a.id).unwrap(), None);
    assert_eq!(store.first_seen(a.id).unwrap(), None);
    assert_eq!(store.draft(all[0].key()).unwrap(), None);
    assert!(
        store
            .daily_counts(a.id, t0().date_naive(), 3)
            .unwrap()
            .iter()
            .all(|(_, n)| *n == 0)
    );
}
