//! The store's team records (issue 16): people and their hashed tokens, grants that go with a
//! removed account, assignments, the append-only audit log (order, filters, paging), and feed
//! reads limited to a member's accounts agreeing with the per-account reads.

#[path = "store_fixtures/mod.rs"]
mod store_fixtures;

use std::collections::BTreeMap;

use chrono::Utc;
use perch::domain::{Access, AuditAction, AuditEntry, Person, Role};
use perch::store::{AuditQuery, FeedFilter, Store, StoreError};
use store_fixtures::*;

fn person(name: &str, role: Role, token: &str) -> Person {
    Person {
        name: name.to_string(),
        role,
        token_hash: perch::service::token::hash(token),
        grants: BTreeMap::new(),
        created_at: t0(),
    }
}

#[test]
fn people_are_unique_by_name_found_by_token_hash_and_gone_when_removed() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store
        .add_person(&person("ana", Role::Member, "tok-a"))
        .unwrap();
    store
        .add_person(&person("bo", Role::Admin, "tok-b"))
        .unwrap();
    let again = store.add_person(&person("ana", Role::Admin, "tok-c"));
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    assert_eq!(store.person("ana").unwrap().unwrap().role, Role::Member);
    let names: Vec<String> = store
        .people()
        .unwrap()
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(names, ["ana", "bo"]);
    let hash = perch::service::token::hash("tok-b");
    assert_eq!(
        store.person_by_token_hash(&hash).unwrap().unwrap().name,
        "bo"
    );
    assert!(
        store
            .person_by_token_hash(&perch::service::token::hash("tok-x"))
            .unwrap()
            .is_none()
    );
    assert_eq!(store.remove_person("bo").unwrap(), Some(vec![]));
    assert_eq!(store.remove_person("bo").unwrap(), None);
    assert!(store.person_by_token_hash(&hash).unwrap().is_none());
    // Kept across a reopen; the token itself is nowhere in the store's files.
    drop(store);
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.people().unwrap().len(), 1);
    drop(store);
    for entry in walk(dir.path()) {
        let bytes = std::fs::read(&entry).unwrap();
        assert!(
            !bytes.windows(5).any(|w| w == b"tok-a"),
            "{} holds a token in the clear",
            entry.display()
        );
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn removing_an_account_takes_its_grants_and_its_mentions_assignments() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let (a, b) = (account(1, "brand"), account(2, "support"));
    store.put_account(&a).unwrap();
    store.put_account(&b).unwrap();
    let ma = mention(&a, tweet(1), "hello");
    store
        .commit_page(a.id, std::slice::from_ref(&ma), None)
        .unwrap();
    let mut ana = person("ana", Role::Member, "t");
    ana.grants.insert(a.id, Access::Reply);
    ana.grants.insert(b.id, Access::Read);
    store.add_person(&ana).unwrap();
    assert_eq!(store.assign(ma.key(), Some("ana"), t0()).unwrap(), None);
    assert_eq!(store.assignment(ma.key()).unwrap().unwrap().person, "ana");
    let before = store.assign(ma.key(), Some("bo"), t0()).unwrap().unwrap();
    assert_eq!(before.person, "ana");
    store.remove_account(a.id, true).unwrap();
    let ana = store.person("ana").unwrap().unwrap();
    assert_eq!(ana.grants.keys().copied().collect::<Vec<_>>(), [b.id]);
    assert!(store.assignment(ma.key()).unwrap().is_none());
}

#[test]
fn the_audit_log_is_in_order_filtered_and_paged_and_a_scan_is_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let (a, b) = (account(1, "brand"), account(2, "support"));
    let ma = mention(&a, tweet(1), "x");
    for i in 0..30u64 {
        let who = if i % 3 == 0 { "ana" } else { "bo" };
        let entry = AuditEntry::new(who, AuditAction::Status, Utc::now(), format!("#{i}"));
        let entry = if i % 2 == 0 {
            entry.mention(ma.key(), "@brand")
        } else {
            entry.account(b.id, "@support")
        };
        let stored = store.append_audit(entry).unwrap();
        assert_eq!(stored.seq, i + 1, "increasing with no gaps");
    }
    let all = store
        .audit(&AuditQuery {
            limit: 100,
            ..AuditQuery::default()
        })
        .unwrap();
    assert_eq!(all.entries.len(), 30);
    assert_eq!(all.next_before, None, "read to the start");
    assert_eq!(all.entries[0].detail, "#29", "newest first");
    let anas = store
        .audit(&AuditQuery {
            person: Some("ana".into()),
            limit: 100,
            ..AuditQuery::default()
        })
        .unwrap();
    assert_eq!(anas.entries.len(), 10);
    let on_mention = store
        .audit(&AuditQuery {
            mention: Some(tweet(1)),
            limit: 100,
            ..AuditQuery::default()
        })
        .unwrap();
    assert_eq!(on_mention.entries.len(), 15);
    let members_view = store
        .audit(&AuditQuery {
            among: Some(vec![b.id]),
            limit: 100,
            ..AuditQuery::default()
        })
        .unwrap();
    assert!(
        members_view
            .entries
            .iter()
            .all(|e| e.account_id == Some(b.id))
    );
    assert_eq!(members_view.entries.len(), 15);
    // Paging by `before` walks every entry once.
    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let page = store
            .audit(&AuditQuery {
                before,
                limit: 7,
                ..AuditQuery::default()
            })
            .unwrap();
        seen.extend(page.entries.iter().map(|e| e.seq));
        match page.next_before {
            Some(b) => before = Some(b),
            None => break,
        }
    }
    assert_eq!(seen, (1..=30).rev().collect::<Vec<u64>>());
    // After a reopen, numbering goes on.
    drop(store);
    let store = Store::open(dir.path()).unwrap();
    let next = store
        .append_audit(AuditEntry::new("ana", AuditAction::Undo, Utc::now(), "u"))
        .unwrap();
    assert_eq!(next.seq, 31);
}

#[test]
fn a_members_feed_is_exactly_their_accounts_merged_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let accounts = [account(1, "a"), account(2, "b"), account(3, "c")];
    for (n, a) in accounts.iter().enumerate() {
        store.put_account(a).unwrap();
        let page: Vec<_> = (0..40u64)
            .map(|i| {
                mention(
                    a,
                    tweet(i * 3 + n as u64),
                    &format!("{} post {i}", a.twitter_username),
                )
            })
            .collect();
        store.commit_page(a.id, &page, None).unwrap();
    }
    let among = [accounts[0].id, accounts[2].id];
    let filter = FeedFilter::default();
    let all = store.page_after(&filter, None, 1000).unwrap();
    let expected: Vec<_> = all
        .iter()
        .filter(|m| among.contains(&m.key().account_id))
        .map(|m| m.key())
        .collect();
    let got: Vec<_> = store
        .page_after_among(&filter, &among, None, 1000)
        .unwrap()
        .iter()
        .map(|m| m.key())
        .collect();
    assert_eq!(got, expected);
    assert_eq!(store.count_among(&filter, &among).unwrap(), 80);
    // An account outside `among` gives nothing even when asked by name.
    let outside = FeedFilter {
        account: Some(accounts[1].id),
        status: None,
    };
    assert!(
        store
            .page_after_among(&outside, &among, None, 10)
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.count_among(&outside, &among).unwrap(), 0);
    let found = store
        .search_page_among(&filter, Some(&among), "b post", None, 100, 10_000)
        .unwrap();
    assert!(found.hits.is_empty() && found.exhausted);
    let found = store
        .search_page_among(&filter, Some(&among), "c post 1", None, 100, 10_000)
        .unwrap();
    assert_eq!(found.hits.len(), 11, "c post 1, 10..19");
}

#[test]
fn assign_as_checks_the_person_audits_in_the_same_write_and_the_assigned_filter_pages() {
    use perch::store::{AssignRefusal, AssignedFilter, FeedPos};
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let (a, b) = (account(1, "brand"), account(2, "support"));
    store.put_account(&a).unwrap();
    store.put_account(&b).unwrap();
    let ma: Vec<_> = (1..=5)
        .map(|i| mention(&a, tweet(i), &format!("brand {i}")))
        .collect();
    let mb: Vec<_> = (6..=8)
        .map(|i| mention(&b, tweet(i), &format!("support {i}")))
        .collect();
    store.commit_page(a.id, &ma, None).unwrap();
    store.commit_page(b.id, &mb, None).unwrap();
    let mut ana = person("ana", Role::Member, "t");
    ana.grants.insert(a.id, Access::Reply);
    store.add_person(&ana).unwrap();

    // Refused, changing nothing: nobody by that name; a person who cannot see the account.
    let refused = store
        .assign_as("owner", mb[0].key(), "@support", Some("zed"), t0())
        .unwrap();
    assert_eq!(refused, Err(AssignRefusal::NoSuchPerson("zed".into())));
    let refused = store
        .assign_as("owner", mb[0].key(), "@support", Some("ana"), t0())
        .unwrap();
    assert!(
        matches!(refused, Err(AssignRefusal::MayNotSee { .. })),
        "{refused:?}"
    );
    assert!(store.assignment(mb[0].key()).unwrap().is_none());
    let log = |store: &Store| {
        store
            .audit(&AuditQuery {
                limit: 100,
                ..AuditQuery::default()
            })
            .unwrap()
            .entries
    };
    assert!(log(&store).is_empty(), "a refusal is not an action");

    // Ana has brand 2 and 4, the owner support 7; each assignment is one audit entry.
    for (m, who) in [(&ma[1], "ana"), (&ma[3], "ana"), (&mb[1], "owner")] {
        let handle = format!("@{}", m.sent_to.username);
        assert_eq!(
            store
                .assign_as("owner", m.key(), &handle, Some(who), t0())
                .unwrap(),
            Ok(None)
        );
    }
    let entries = log(&store);
    assert_eq!(entries.len(), 3);
    assert_eq!(entries[0].action, AuditAction::Assign);
    assert_eq!(entries[0].mention, Some(mb[1].tweet_id.parse().unwrap()));
    assert_eq!(entries[0].detail, "owner");

    let page = |assigned: &AssignedFilter, filter: &FeedFilter, among, after, limit| {
        store
            .assigned_page(filter, among, assigned, "", after, limit, 1_000, 1_000)
            .unwrap()
    };
    let texts =
        |hits: &[perch::domain::Mention]| hits.iter().map(|m| m.text.clone()).collect::<Vec<_>>();
    let all = FeedFilter::default();
    let anas = AssignedFilter::To("ana".into());
    let (first, total) = page(&anas, &all, None, None, 1);
    assert_eq!(total, Some(2));
    assert_eq!(texts(&first.hits), ["brand 4"], "newest first");
    assert!(!first.exhausted);
    let (next, _) = page(&anas, &all, None, first.resume_after, 1);
    assert_eq!(texts(&next.hits), ["brand 2"]);
    let (end, _) = page(&anas, &all, None, next.resume_after, 1);
    assert!(end.hits.is_empty() && end.exhausted);

    // Nobody's: everything else, counted from the counters less the assigned.
    let (free, total) = page(&AssignedFilter::Nobody, &all, None, None, 100);
    assert_eq!(total, Some(5));
    assert_eq!(
        texts(&free.hits),
        ["support 8", "support 6", "brand 5", "brand 3", "brand 1"]
    );
    let brand_only = FeedFilter {
        account: Some(a.id),
        status: None,
    };
    let (free, total) = page(&AssignedFilter::Nobody, &brand_only, None, None, 100);
    assert_eq!(total, Some(3));
    assert_eq!(texts(&free.hits), ["brand 5", "brand 3", "brand 1"]);
    let among = [b.id];
    let (free, total) = page(&AssignedFilter::Nobody, &all, Some(&among[..]), None, 100);
    assert_eq!(
        (texts(&free.hits), total),
        (
            vec!["support 8".to_string(), "support 6".to_string()],
            Some(2)
        )
    );
    // With a query, counted by scanning.
    let (hits, total) = store
        .assigned_page(
            &all,
            None,
            &AssignedFilter::Nobody,
            "brand",
            None,
            2,
            1_000,
            1_000,
        )
        .unwrap();
    assert_eq!(
        (texts(&hits.hits), total),
        (vec!["brand 5".to_string(), "brand 3".to_string()], Some(3))
    );
    assert_eq!(hits.resume_after, Some(FeedPos::from(ma[2].key())));
}

#[test]
fn a_post_id_is_looked_up_among_the_accounts_a_member_sees_without_naming_the_others() {
    use perch::store::lookup::{LookupError, find_mention, find_mention_among};
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let (a, b) = (account(1, "brand"), account(2, "secret_side"));
    store.put_account(&a).unwrap();
    store.put_account(&b).unwrap();
    // One post that mentions both accounts.
    let ma = mention(&a, tweet(7), "hi both");
    let mb = mention(&b, tweet(7), "hi both");
    store
        .commit_page(a.id, std::slice::from_ref(&ma), None)
        .unwrap();
    store
        .commit_page(b.id, std::slice::from_ref(&mb), None)
        .unwrap();
    let id = ma.tweet_id.clone();
    match find_mention(&store, &id) {
        Err(LookupError::Ambiguous(m)) => assert!(m.contains("secret_side"), "{m}"),
        other => panic!("the owner is asked to name one: {other:?}"),
    }
    let found = find_mention_among(&store, &id, |acc| acc == a.id).unwrap();
    assert_eq!(
        found.sent_to.account_id, a.id,
        "a member of @brand gets hers"
    );
    match find_mention_among(&store, &id, |_| false) {
        Err(LookupError::NotFound(m)) => assert!(!m.contains("secret_side"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_searchs_leading_team_words_filter_by_assignment_and_the_rest_is_text() {
    use perch::store::{AssignedFilter, team_words};
    assert_eq!(
        team_words("is:mine invoice", "ana"),
        (Some(AssignedFilter::To("ana".into())), "invoice")
    );
    assert_eq!(
        team_words("  is:unassigned", "ana"),
        (Some(AssignedFilter::Nobody), "")
    );
    assert_eq!(
        team_words("assigned:@bo refund", "ana"),
        (Some(AssignedFilter::To("bo".into())), "refund")
    );
    assert_eq!(
        team_words("assigned:me", "ana").0,
        Some(AssignedFilter::To("ana".into()))
    );
    assert_eq!(
        team_words("invoice is:mine", "ana"),
        (None, "invoice is:mine"),
        "leading only"
    );
    assert_eq!(team_words("assigned:", "ana"), (None, "assigned:"));

    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let a = account(1, "brand");
    store.put_account(&a).unwrap();
    let ms: Vec<_> = (1..=4)
        .map(|i| mention(&a, tweet(i), &format!("invoice {i}")))
        .collect();
    store.commit_page(a.id, &ms, None).unwrap();
    store.assign(ms[0].key(), Some("owner"), t0()).unwrap();
    store.assign(ms[2].key(), Some("bo"), t0()).unwrap();
    let texts = |q: &str| {
        store
            .search_page_as("owner", &FeedFilter::default(), q, None, 100, 1_000)
            .unwrap()
            .hits
            .into_iter()
            .map(|m| m.text)
            .collect::<Vec<_>>()
    };
    assert_eq!(texts("is:mine"), ["invoice 1"]);
    assert_eq!(texts("is:unassigned"), ["invoice 4", "invoice 2"]);
    assert_eq!(texts("assigned:bo invoice 3"), ["invoice 3"]);
    assert_eq!(texts("assigned:bo invoice 4"), Vec::<String>::new());
    assert_eq!(
        texts("invoice 2"),
        ["invoice 2"],
        "no team word: a plain search"
    );
}

#[test]
fn removing_a_person_unassigns_their_mentions_so_a_new_one_of_that_name_has_none() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let a = account(1, "brand");
    store.put_account(&a).unwrap();
    let ms: Vec<_> = (1..=3).map(|i| mention(&a, tweet(i), "x")).collect();
    store.commit_page(a.id, &ms, None).unwrap();
    store.add_person(&person("ana", Role::Admin, "t1")).unwrap();
    store.assign(ms[0].key(), Some("ana"), t0()).unwrap();
    store.assign(ms[1].key(), Some("bo"), t0()).unwrap();
    store.assign(ms[2].key(), Some("ana"), t0()).unwrap();
    let mut gone = store
        .remove_person("ana")
        .unwrap()
        .expect("there was an ana");
    gone.sort();
    let mut expected = vec![ms[0].key(), ms[2].key()];
    expected.sort();
    assert_eq!(gone, expected);
    assert_eq!(store.assignment(ms[0].key()).unwrap(), None);
    assert_eq!(store.assignment(ms[1].key()).unwrap().unwrap().person, "bo");
    store
        .add_person(&person("ana", Role::Member, "t2"))
        .unwrap();
    let (left, _) = store.assignments().unwrap();
    assert!(left.iter().all(|(_, a)| a.person != "ana"), "{left:?}");
}
