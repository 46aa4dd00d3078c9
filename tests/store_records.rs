//! Every record type survives a write and a read unchanged; accounts are unique by X user id.

mod store_fixtures;

use chrono::Utc;
use perch::domain::{MentionStatus, Secret, Tokens};
use perch::outbox::ReplyKind;
use perch::store::{Draft, Store, StoreError};
use store_fixtures::*;

#[test]
fn account_round_trips_and_is_found_by_x_user_id() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let mut a = account(1, "Acme");
    a.error_message = Some("token expired".into());
    a.last_synced_at = Some(t0());
    store.put_account(&a).unwrap();
    assert_eq!(store.account(a.id).unwrap(), Some(a.clone()));
    assert_eq!(
        store.account_by_twitter_id(&a.twitter_id).unwrap(),
        Some(a.clone())
    );
    assert_eq!(store.account_by_twitter_id("nobody").unwrap(), None);
}

#[test]
fn accounts_are_unique_by_x_user_id() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let a = account(1, "acme");
    store.put_account(&a).unwrap();
    let mut twin = account(2, "acme_again");
    twin.twitter_id = a.twitter_id.clone();
    let err = store.put_account(&twin).unwrap_err();
    assert!(matches!(err, StoreError::DuplicateAccount { existing, .. } if existing == a.id));
    // Replacing the same account (same id) is fine.
    let mut renamed = a.clone();
    renamed.display_name = "Acme Inc".into();
    store.put_account(&renamed).unwrap();
    assert_eq!(store.accounts().unwrap(), vec![renamed]);
}

#[test]
fn accounts_are_listed_by_handle_ignoring_case() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    for (n, name) in [(1, "zeta"), (2, "Alpha"), (3, "beta")] {
        store.put_account(&account(n, name)).unwrap();
    }
    let names: Vec<String> = store
        .accounts()
        .unwrap()
        .into_iter()
        .map(|a| a.twitter_username)
        .collect();
    assert_eq!(names, ["Alpha", "beta", "zeta"]);
}

#[test]
fn tokens_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let a = account(1, "acme");
    let tokens = Tokens {
        access_token: Secret::new("AT"),
        refresh_token: Some(Secret::new("RT")),
        expires_at: t0(),
        scope: "tweet.read users.read".into(),
    };
    assert_eq!(store.tokens(a.id).unwrap(), None);
    store.put_tokens(a.id, &tokens).unwrap();
    assert_eq!(store.tokens(a.id).unwrap(), Some(tokens));
}

#[test]
fn mention_with_every_field_round_trips() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let a = account(1, "acme");
    let m = full_mention(&a, tweet(1));
    store
        .commit_page(a.id, std::slice::from_ref(&m), None)
        .unwrap();
    assert_eq!(store.mention(m.key()).unwrap(), Some(m));
}

#[test]
fn draft_round_trips_and_is_deleted() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let a = account(1, "acme");
    let key = mention(&a, tweet(1), "hi").key();
    let draft = Draft {
        kind: ReplyKind::Dm,
        text: "on it 👍".into(),
        updated_at: Utc::now(),
    };
    assert_eq!(store.draft(key).unwrap(), None);
    store.put_draft(key, &draft).unwrap();
    assert_eq!(store.draft(key).unwrap(), Some(draft));
    store.delete_draft(key).unwrap();
    assert_eq!(store.draft(key).unwrap(), None);
}

#[test]
fn cursor_and_first_seen_come_from_committed_pages() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let a = account(1, "acme");
    assert_eq!(store.cursor(a.id).unwrap(), None);
    assert_eq!(store.first_seen(a.id).unwrap(), None);
    store
        .commit_page(a.id, &[mention(&a, tweet(5), "x")], Some(tweet(5)))
        .unwrap();
    assert_eq!(store.cursor(a.id).unwrap(), Some(tweet(5)));
    assert_eq!(store.first_seen(a.id).unwrap(), Some(t0()));
    // An older page (a backfill) never moves the cursor backwards.
    store
        .commit_page(a.id, &[mention(&a, tweet(2), "y")], Some(tweet(2)))
        .unwrap();
    assert_eq!(store.cursor(a.id).unwrap(), Some(tweet(5)));
}

#[test]
fn set_status_updates_the_record() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let a = account(1, "acme");
    let m = mention(&a, tweet(1), "x");
    store
        .commit_page(a.id, std::slice::from_ref(&m), None)
        .unwrap();
    let later = t0() + chrono::Duration::hours(1);
    let updated = store
        .set_status(m.key(), MentionStatus::Ignored, later)
        .unwrap()
        .unwrap();
    assert_eq!(updated.status, MentionStatus::Ignored);
    assert_eq!(updated.updated_at, later);
    assert_eq!(store.mention(m.key()).unwrap(), Some(updated));
    let missing = mention(&a, tweet(99), "x").key();
    assert_eq!(
        store
            .set_status(missing, MentionStatus::Ignored, later)
            .unwrap(),
        None
    );
}
