//! The store suite on both backends (issue 16): each test below runs once on sled and once on a
//! real PostgreSQL database (`support/pg.rs`), through the one `Backend` interface. Plus what
//! only PostgreSQL has: schema migrations from an empty database and from the previous version,
//! tokens that are sealed in a dump of the database, and refusing to run without a token_key.

#[path = "support/pg.rs"]
mod pg;
#[path = "store_fixtures/mod.rs"]
mod store_fixtures;

use chrono::Utc;
use perch::domain::ReplyKind;
use perch::domain::{MentionStatus, Secret, TokenKey, Tokens};
use perch::store::{
    Backend, FeedFilter, FeedPos, OutboxBackend, OutboxState, PgStore, ServiceBackend, StoreError,
};
use store_fixtures::*;

/// Runs each test on both backends: `name::sled` and `name::postgres`.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn sled() {
                let dir = tempfile::tempdir().unwrap();
                let store = perch::store::Store::open_with_token_key(
                    dir.path(),
                    Some(perch::domain::TokenKey::generate()),
                )
                .unwrap();
                super::$name(&store);
            }

            #[test]
            fn postgres() {
                let url = super::pg::fresh_database();
                let store =
                    perch::store::PgStore::connect(&url, Some(perch::domain::TokenKey::generate()))
                        .unwrap();
                super::$name(&store);
            }
        }
    )*};
}

on_both_backends!(
    accounts_round_trip_in_handle_order_and_are_unique_by_x_user_id,
    tokens_round_trip_and_are_replaced,
    a_page_commits_with_its_cursor_and_the_cursor_never_moves_back,
    duplicates_keep_their_triage_and_an_unknown_sender_is_filled_in,
    a_page_with_a_mention_of_another_account_writes_nothing,
    pages_are_newest_first_by_account_and_status_and_counts_agree,
    status_changes_move_a_mention_between_pages,
    outbox_a_send_is_claimed_once_then_sent_with_the_mention_replied_and_the_draft_gone,
    outbox_a_second_send_is_refused_while_one_is_unresolved_and_after_one_was_sent_unless_on_purpose,
    outbox_an_unconfirmed_send_is_resolved_only_by_the_user,
    outbox_a_rate_limited_send_waits_for_its_reset,
    service_a_read_is_charged_with_its_page_once_per_utc_day,
    service_a_sent_reply_or_dm_is_charged_once_and_a_failed_one_never,
    service_a_streamed_post_is_remembered_as_streamed_and_never_moves_the_cursor,
    service_page_before_gives_the_rows_just_above_a_position_newest_first,
    service_pages_and_counts_among_some_accounts_leave_the_others_out,
    service_removing_an_account_takes_its_tokens_and_cursor_and_its_mentions_only_when_asked,
    service_budget_warnings_are_given_once_a_month_and_the_usage_report_round_trips,
    service_people_round_trip_and_a_token_hash_finds_its_person,
    service_the_audit_log_only_grows_and_filters_by_person_mention_and_account,
    service_triage_is_undone_by_its_person_only_and_never_unsends_a_reply,
    service_assignments_commit_with_their_audit_entry_and_go_with_their_person,
    service_drafts_round_trip_and_search_finds_text_and_team_words,
    service_daily_counts_are_per_utc_day_of_the_post,
);

fn accounts_round_trip_in_handle_order_and_are_unique_by_x_user_id(store: &dyn Backend) {
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
    let mut a = account(1, "zeta");
    a.error_message = Some("token expired".into());
    a.last_synced_at = Some(t0());
    store.put_account(&a).unwrap();
    assert_eq!(store.account(a.id).unwrap(), Some(a.clone()));
    assert_eq!(
        store.account_by_twitter_id(&a.twitter_id).unwrap(),
        Some(a.clone())
    );
    assert_eq!(store.account_by_twitter_id("nobody").unwrap(), None);
    let mut twin = account(9, "zeta_again");
    twin.twitter_id = a.twitter_id.clone();
    let err = store.put_account(&twin).unwrap_err();
    assert!(
        matches!(err, StoreError::DuplicateAccount { existing, .. } if existing == a.id),
        "{err:?}"
    );
    assert_eq!(store.account(twin.id).unwrap(), None);
}

fn tokens(access: &str) -> Tokens {
    Tokens {
        access_token: Secret::new(access),
        refresh_token: Some(Secret::new(format!("{access}-refresh"))),
        expires_at: t0(),
        scope: "tweet.read users.read offline.access".into(),
    }
}

fn tokens_round_trip_and_are_replaced(store: &dyn Backend) {
    let a = account(1, "acme");
    store.put_account(&a).unwrap();
    assert_eq!(store.tokens(a.id).unwrap(), None);
    store.put_tokens(a.id, &tokens("first")).unwrap();
    assert_eq!(store.tokens(a.id).unwrap(), Some(tokens("first")));
    store.put_tokens(a.id, &tokens("rotated")).unwrap();
    assert_eq!(store.tokens(a.id).unwrap(), Some(tokens("rotated")));
    assert_eq!(store.tokens(account(2, "other").id).unwrap(), None);
}

fn a_page_commits_with_its_cursor_and_the_cursor_never_moves_back(store: &dyn Backend) {
    let a = account(1, "acme");
    store.put_account(&a).unwrap();
    assert_eq!(store.cursor(a.id).unwrap(), None);
    let page: Vec<_> = (0..5u64)
        .map(|i| mention(&a, 1_600_000_000_000_000_000 + i, "hi"))
        .collect();
    let commit = store
        .commit_page(a.id, &page, Some(1_600_000_000_000_000_004))
        .unwrap();
    assert_eq!((commit.inserted, commit.duplicates), (5, 0));
    assert_eq!(store.cursor(a.id).unwrap(), Some(1_600_000_000_000_000_004));
    // An older page (a backfill) adds its mentions and leaves the cursor where it is.
    let older = [mention(&a, 1_500_000_000_000_000_000, "old")];
    store
        .commit_page(a.id, &older, Some(1_500_000_000_000_000_000))
        .unwrap();
    assert_eq!(store.cursor(a.id).unwrap(), Some(1_600_000_000_000_000_004));
    assert_eq!(store.count(&FeedFilter::default()).unwrap(), 6);
    // A page without a cursor (a streamed post) moves nothing.
    store
        .commit_page(a.id, &[mention(&a, 1_700_000_000_000_000_000, "new")], None)
        .unwrap();
    assert_eq!(store.cursor(a.id).unwrap(), Some(1_600_000_000_000_000_004));
}

fn duplicates_keep_their_triage_and_an_unknown_sender_is_filled_in(store: &dyn Backend) {
    let a = account(1, "acme");
    store.put_account(&a).unwrap();
    let mut anonymous = mention(&a, 1_600_000_000_000_000_001, "who am I");
    anonymous.sender = Default::default();
    let named = mention(&a, 1_600_000_000_000_000_002, "triaged");
    store
        .commit_page(a.id, &[anonymous.clone(), named.clone()], None)
        .unwrap();
    store
        .set_status(named.key(), MentionStatus::Ignored, Utc::now())
        .unwrap();
    // The same posts again, the first now with its author, the second with other text, and a
    // copy twice in one page.
    let mut again_named = named.clone();
    again_named.text = "changed by a later copy".into();
    let again_anonymous = mention(&a, 1_600_000_000_000_000_001, "who am I");
    let commit = store
        .commit_page(
            a.id,
            &[again_anonymous.clone(), again_named.clone(), again_named],
            None,
        )
        .unwrap();
    assert_eq!((commit.inserted, commit.duplicates), (0, 3));
    assert_eq!(commit.senders_filled, 1);
    let stored = store.mention(named.key()).unwrap().unwrap();
    assert_eq!(stored.status, MentionStatus::Ignored, "triage is kept");
    assert_eq!(stored.text, "triaged", "a later copy does not overwrite");
    let filled = store.mention(anonymous.key()).unwrap().unwrap();
    assert_eq!(filled.sender, again_anonymous.sender);
    assert_eq!(store.count(&FeedFilter::default()).unwrap(), 2);
}

fn a_page_with_a_mention_of_another_account_writes_nothing(store: &dyn Backend) {
    let (a, b) = (account(1, "acme"), account(2, "acme_help"));
    store.put_account(&a).unwrap();
    store.put_account(&b).unwrap();
    let page = [
        mention(&a, 1_600_000_000_000_000_001, "mine"),
        mention(&b, 1_600_000_000_000_000_002, "not mine"),
    ];
    let err = store
        .commit_page(a.id, &page, Some(1_600_000_000_000_000_002))
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    assert_eq!(store.count(&FeedFilter::default()).unwrap(), 0);
    assert_eq!(store.cursor(a.id).unwrap(), None);
}

fn pages_are_newest_first_by_account_and_status_and_counts_agree(store: &dyn Backend) {
    let (a, b) = (account(1, "acme"), account(2, "acme_help"));
    store.put_account(&a).unwrap();
    store.put_account(&b).unwrap();
    let base = 1_600_000_000_000_000_000u64;
    let mut all = Vec::new();
    for (who, offset) in [(&a, 0u64), (&b, 1)] {
        let page: Vec<_> = (0..40u64)
            .map(|i| {
                let mut m = mention(who, base + i * 2 + offset, "hi");
                if i % 3 == 0 {
                    m.status = MentionStatus::Replied;
                }
                m
            })
            .collect();
        store.commit_page(who.id, &page, None).unwrap();
        all.extend(page);
    }
    // One post id shared by both accounts (a post that mentions both): two rows, ordered by
    // account within the same tweet id.
    let shared = base + 1_000;
    store
        .commit_page(a.id, &[mention(&a, shared, "both")], None)
        .unwrap();
    store
        .commit_page(b.id, &[mention(&b, shared, "both")], None)
        .unwrap();
    all.push(mention(&a, shared, "both"));
    all.push(mention(&b, shared, "both"));
    all.sort_by_key(|m| std::cmp::Reverse(FeedPos::from(m)));

    let filters = [
        FeedFilter::default(),
        FeedFilter {
            account: Some(b.id),
            status: None,
        },
        FeedFilter {
            account: None,
            status: Some(MentionStatus::Replied),
        },
        FeedFilter {
            account: Some(a.id),
            status: Some(MentionStatus::Pending),
        },
    ];
    for filter in filters {
        let expected: Vec<FeedPos> = all
            .iter()
            .filter(|m| filter.account.is_none_or(|id| m.sent_to.account_id == id))
            .filter(|m| filter.status.is_none_or(|s| m.status == s))
            .map(FeedPos::from)
            .collect();
        // Read in pages of 7, each strictly after the last row of the one before.
        let mut got = Vec::new();
        let mut after = None;
        loop {
            let page = store.page_after(&filter, after, 7).unwrap();
            if page.is_empty() {
                break;
            }
            assert!(page.len() <= 7);
            after = page.last().map(FeedPos::from);
            got.extend(page.iter().map(FeedPos::from));
            assert!(got.len() <= expected.len(), "no row twice");
        }
        assert_eq!(got, expected, "{filter:?}");
        assert_eq!(
            store.count(&filter).unwrap(),
            expected.len() as u64,
            "{filter:?}"
        );
    }
}

fn status_changes_move_a_mention_between_pages(store: &dyn Backend) {
    let a = account(1, "acme");
    store.put_account(&a).unwrap();
    let m = mention(&a, 1_600_000_000_000_000_001, "hi");
    store
        .commit_page(a.id, std::slice::from_ref(&m), None)
        .unwrap();
    let pending = FeedFilter {
        account: None,
        status: Some(MentionStatus::Pending),
    };
    let ignored = FeedFilter {
        account: Some(a.id),
        status: Some(MentionStatus::Ignored),
    };
    assert_eq!(
        (
            store.count(&pending).unwrap(),
            store.count(&ignored).unwrap()
        ),
        (1, 0)
    );
    let now = t0() + chrono::Duration::hours(1);
    let changed = store
        .set_status(m.key(), MentionStatus::Ignored, now)
        .unwrap()
        .unwrap();
    assert_eq!(
        (changed.status, changed.updated_at),
        (MentionStatus::Ignored, now)
    );
    assert_eq!(store.mention(m.key()).unwrap(), Some(changed));
    assert_eq!(
        (
            store.count(&pending).unwrap(),
            store.count(&ignored).unwrap()
        ),
        (0, 1)
    );
    assert_eq!(store.page_after(&ignored, None, 10).unwrap().len(), 1);
    let missing = mention(&a, 1_600_000_000_000_000_009, "never stored");
    assert_eq!(
        store
            .set_status(missing.key(), MentionStatus::Ignored, now)
            .unwrap(),
        None
    );
}

// ---- PostgreSQL only ----------------------------------------------------------------------

#[test]
fn postgres_refuses_to_run_without_a_token_key_and_says_how_to_make_one() {
    let url = pg::fresh_database();
    let err = PgStore::connect(&url, None).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, StoreError::TokenKey(_)), "{err:?}");
    assert!(
        text.contains("perch team keygen") && text.contains("PERCH_TOKEN_KEY"),
        "{text}"
    );
}

#[test]
fn postgres_migrates_an_empty_database_to_the_newest_schema_with_the_feed_indexes() {
    let url = pg::fresh_database();
    let key = TokenKey::generate();
    let store = PgStore::connect(&url, Some(key.clone())).unwrap();
    assert_eq!(
        store.schema_version().unwrap(),
        PgStore::latest_schema_version()
    );
    assert!(PgStore::latest_schema_version() >= 2);
    let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let indexes: Vec<String> = client
        .query(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'mentions' ORDER BY indexname",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    for wanted in [
        "mentions_by_account_status",
        "mentions_by_status",
        "mentions_newest",
        "mentions_pkey",
    ] {
        assert!(
            indexes.iter().any(|i| i == wanted),
            "{wanted} in {indexes:?}"
        );
    }
    // Connecting again (another service starting) changes nothing.
    drop(store);
    let again = PgStore::connect(&url, Some(key)).unwrap();
    assert_eq!(
        again.schema_version().unwrap(),
        PgStore::latest_schema_version()
    );
}

#[test]
fn postgres_migrates_a_database_from_the_previous_schema_version_keeping_its_data() {
    let url = pg::fresh_database();
    let previous = PgStore::latest_schema_version() - 1;
    // Data as a perch on the previous schema wrote it: the record format is the same, so the
    // row is written here by hand, as that perch would have.
    let a = account(1, "acme");
    let m = mention(&a, 1_600_000_000_000_000_001, "written before the upgrade");
    // The team's key, the same before and after the upgrade (from schema version 7 on, the
    // database refuses another).
    let key = TokenKey::generate();
    {
        let old = PgStore::connect_at_schema(&url, Some(key.clone()), Some(previous)).unwrap();
        old.put_account(&a).unwrap();
        old.commit_page(
            a.id,
            std::slice::from_ref(&m),
            Some(1_600_000_000_000_000_001),
        )
        .unwrap();
        assert_eq!(old.schema_version().unwrap(), previous);
    }
    let store = PgStore::connect(&url, Some(key)).unwrap();
    assert_eq!(
        store.schema_version().unwrap(),
        PgStore::latest_schema_version()
    );
    assert_eq!(store.accounts().unwrap(), vec![a.clone()]);
    assert_eq!(store.mention(m.key()).unwrap(), Some(m.clone()));
    assert_eq!(store.cursor(a.id).unwrap(), Some(1_600_000_000_000_000_001));
    let pending = FeedFilter {
        account: Some(a.id),
        status: Some(MentionStatus::Pending),
    };
    assert_eq!(store.count(&pending).unwrap(), 1);
}

#[test]
fn postgres_holds_no_token_in_the_clear_in_a_dump_of_the_database() {
    let url = pg::fresh_database();
    let key = TokenKey::generate();
    let store = PgStore::connect(&url, Some(key.clone())).unwrap();
    let a = account(1, "acme");
    store.put_account(&a).unwrap();
    let secret = "AAAAaccess-token-that-must-not-leak-0123456789";
    store.put_tokens(a.id, &tokens(secret)).unwrap();
    // Every row of every table, as text and as hex of the bytea columns.
    let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let tables: Vec<String> = client
        .query(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(tables.iter().any(|t| t == "account_tokens"), "{tables:?}");
    let mut dump = String::new();
    for table in &tables {
        for row in client
            .query(&format!("SELECT {table}::text FROM {table}"), &[])
            .unwrap()
        {
            dump.push_str(&row.get::<_, String>(0));
            dump.push('\n');
        }
    }
    let hex = |s: &str| s.bytes().map(|b| format!("{b:02x}")).collect::<String>();
    assert!(
        dump.contains(&hex("acme")),
        "the dump reads the records: {dump}"
    );
    for leaked in [secret, &format!("{secret}-refresh"), &key.to_base64()] {
        assert!(
            !dump.contains(leaked) && !dump.contains(&hex(leaked)),
            "{leaked} in the dump"
        );
    }
    assert_eq!(store.tokens(a.id).unwrap(), Some(tokens(secret)));
    // A service with another key is refused at once, and told what to do (its logins would
    // seal tokens nobody else can open).
    let err = PgStore::connect(&url, Some(TokenKey::generate()))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("not the one the team's database") && err.contains("PERCH_TOKEN_KEY"),
        "{err}"
    );
    // Tokens a wrong key sealed anyway (a database from before the check) say what to do.
    let mut admin = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    admin.execute("DELETE FROM token_key_check", &[]).unwrap();
    let other_key = TokenKey::generate();
    let err = PgStore::connect(&url, Some(other_key.clone()))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("not the one the team's database"),
        "an old database takes only the key its tokens open with: {err}"
    );
    admin.execute("DELETE FROM token_key_check", &[]).unwrap();
    let again = PgStore::connect(&url, Some(key.clone())).unwrap();
    assert_eq!(again.tokens(a.id).unwrap(), Some(tokens(secret)));
    drop(again);
    assert!(PgStore::connect(&url, Some(other_key)).is_err());
}

#[test]
fn postgres_refuses_a_database_a_newer_perch_migrated() {
    let url = pg::fresh_database();
    drop(PgStore::connect(&url, Some(TokenKey::generate())).unwrap());
    let newer = PgStore::latest_schema_version() as i32 + 1;
    let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    client
        .execute(
            "INSERT INTO refinery_schema_history (version, name, applied_on, checksum)
             VALUES ($1, 'from_a_newer_perch', '2027-01-01T00:00:00Z', '0')",
            &[&newer],
        )
        .unwrap();
    let err = PgStore::connect(&url, Some(TokenKey::generate()))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("newer perch") && err.contains("upgrade perch"),
        "{err}"
    );
}

// ---- the outbox, on both backends ---------------------------------------------------------------

const UNCONFIRMED: &str = "unconfirmed: perch stopped while sending";
const NOT_SENT: &str = "not sent: perch stopped before it left";

/// An account with one pending mention, stored.
fn one_mention(store: &dyn OutboxBackend, tweet: u64) -> perch::domain::Mention {
    let a = account(1, "acme");
    if store.account(a.id).unwrap().is_none() {
        store.put_account(&a).unwrap();
    }
    let m = mention(&a, tweet, "@acme help?");
    store
        .commit_page(a.id, std::slice::from_ref(&m), None)
        .unwrap();
    m
}

fn status_of(store: &dyn OutboxBackend, m: &perch::domain::Mention) -> MentionStatus {
    store.mention(m.key()).unwrap().unwrap().status
}

fn outbox_a_send_is_claimed_once_then_sent_with_the_mention_replied_and_the_draft_gone(
    store: &dyn OutboxBackend,
) {
    let m = one_mention(store, 1_600_000_000_000_000_001);
    let now = Utc::now();
    assert_eq!(
        store.outbox_claim_next(now).unwrap(),
        None,
        "nothing to send"
    );
    let queued = store
        .outbox_enqueue_by(m.key(), ReplyKind::Public, "on it", Some("ana"), false, now)
        .unwrap();
    assert_eq!(queued.state, OutboxState::Queued);
    assert_eq!(status_of(store, &m), MentionStatus::Processing);
    assert_eq!(store.draft(m.key()).unwrap().unwrap().text, "on it");
    assert_eq!(store.outbox_open().unwrap(), vec![queued.clone()]);

    let claimed = store.outbox_claim_next(now).unwrap().unwrap();
    assert_eq!(
        (claimed.seq, claimed.state, claimed.attempts),
        (queued.seq, OutboxState::Sending, 1)
    );
    assert_eq!(
        store.outbox_claim_next(now).unwrap(),
        None,
        "claimed once only"
    );

    let response = store
        .outbox_sent(m.key(), claimed.seq, Some("1700".into()), now)
        .unwrap();
    assert_eq!(
        (response.id.as_str(), response.text.as_str()),
        ("1700", "on it")
    );
    let stored = store.mention(m.key()).unwrap().unwrap();
    assert_eq!(stored.status, MentionStatus::Replied);
    assert_eq!(stored.public_response, Some(response));
    assert_eq!(
        store.draft(m.key()).unwrap(),
        None,
        "the draft is gone once sent"
    );
    assert_eq!(store.outbox_current(m.key()).unwrap(), None);
    assert_eq!(store.outbox_open().unwrap(), vec![]);
    // A finished entry cannot be moved again.
    assert!(
        store
            .outbox_failed(m.key(), claimed.seq, "late", now)
            .is_err()
    );
}

fn outbox_a_second_send_is_refused_while_one_is_unresolved_and_after_one_was_sent_unless_on_purpose(
    store: &dyn OutboxBackend,
) {
    let m = one_mention(store, 1_600_000_000_000_000_002);
    let now = Utc::now();
    let first = store
        .outbox_enqueue_by(m.key(), ReplyKind::Public, "first", Some("ana"), false, now)
        .unwrap();
    // Even "send anyway" cannot make two unresolved sends for one mention.
    for anyway in [false, true] {
        match store.outbox_enqueue_by(
            m.key(),
            ReplyKind::Public,
            "second",
            Some("ben"),
            anyway,
            now,
        ) {
            Err(StoreError::Conflict(_)) | Err(StoreError::Invalid(_)) => {}
            other => panic!("a second unresolved send must be refused, not {other:?}"),
        }
    }
    let claimed = store.outbox_claim_next(now).unwrap().unwrap();
    store
        .outbox_sent(m.key(), claimed.seq, Some("1".into()), now)
        .unwrap();
    assert_eq!(claimed.seq, first.seq);

    // Sent: a second reply is refused and says when the first went out...
    match store.outbox_enqueue_by(
        m.key(),
        ReplyKind::Public,
        "second",
        Some("ben"),
        false,
        now,
    ) {
        Err(StoreError::Conflict(message)) => {
            assert!(message.contains("already replied"), "{message}");
            assert!(
                message.contains(&now.format("%Y-%m-%d %H:%M:%S").to_string()),
                "{message}"
            );
        }
        other => panic!("refused while the mention has a reply, not {other:?}"),
    }
    // ...a DM is another kind of answer, and is not...
    let dm = store
        .outbox_enqueue_by(m.key(), ReplyKind::Dm, "dm", Some("ben"), false, now)
        .unwrap();
    store.outbox_cancel(m.key(), now).unwrap();
    assert_eq!(dm.kind, ReplyKind::Dm);
    // ...and sending anyway, on purpose, is allowed.
    let again = store
        .outbox_enqueue_by(m.key(), ReplyKind::Public, "second", Some("ben"), true, now)
        .unwrap();
    assert_eq!(again.state, OutboxState::Queued);
}

/// sled's crash rule: the process that ended held the only worker and the only asker.
#[test]
fn sled_the_crash_rule_makes_sending_unconfirmed_and_queued_failed_and_neither_goes_again() {
    let dir = tempfile::tempdir().unwrap();
    let store =
        perch::store::Store::open_with_token_key(dir.path(), Some(TokenKey::generate())).unwrap();
    let store: &dyn OutboxBackend = &store;
    let out = one_mention(store, 1_600_000_000_000_000_003);
    let waiting = one_mention(store, 1_600_000_000_000_000_004);
    let now = Utc::now();
    store
        .outbox_enqueue_by(out.key(), ReplyKind::Public, "was out", None, false, now)
        .unwrap();
    let sending = store.outbox_claim_next(now).unwrap().unwrap();
    assert_eq!(sending.key, out.key());
    store
        .outbox_enqueue_by(waiting.key(), ReplyKind::Dm, "never left", None, false, now)
        .unwrap();

    // The worker died here. The next one (a restart, a new leader) repairs:
    let repaired = store.outbox_recover(now, UNCONFIRMED, NOT_SENT).unwrap();
    assert_eq!(repaired.len(), 2, "{repaired:?}");
    let was_out = store.outbox_current(out.key()).unwrap().unwrap();
    assert_eq!(was_out.state, OutboxState::Unconfirmed);
    assert!(was_out.may_have_been_sent);
    assert_eq!(was_out.last_error.as_deref(), Some(UNCONFIRMED));
    let never_left = store.outbox_current(waiting.key()).unwrap().unwrap();
    assert_eq!(never_left.state, OutboxState::Failed);
    assert_eq!(never_left.last_error.as_deref(), Some(NOT_SENT));
    assert_eq!(status_of(store, &out), MentionStatus::Error);
    assert_eq!(
        store.draft(waiting.key()).unwrap().unwrap().text,
        "never left",
        "the draft is kept"
    );
    // Neither is sent again by itself, and a second repair finds nothing.
    assert_eq!(store.outbox_claim_next(now).unwrap(), None);
    assert_eq!(
        store.outbox_recover(now, UNCONFIRMED, NOT_SENT).unwrap(),
        vec![]
    );
}

fn outbox_an_unconfirmed_send_is_resolved_only_by_the_user(store: &dyn OutboxBackend) {
    let m = one_mention(store, 1_600_000_000_000_000_005);
    let now = Utc::now();
    store
        .outbox_enqueue_by(m.key(), ReplyKind::Public, "maybe out", None, false, now)
        .unwrap();
    let claimed = store.outbox_claim_next(now).unwrap().unwrap();
    store
        .outbox_unconfirmed(m.key(), claimed.seq, UNCONFIRMED, now)
        .unwrap();
    assert_eq!(
        store.outbox_claim_next(now).unwrap(),
        None,
        "never re-sent by itself"
    );
    // Retry: queued again, may_have_been_sent kept, claimed as a second attempt.
    let retried = store.outbox_retry(m.key(), now).unwrap();
    assert!(retried.may_have_been_sent);
    let second = store.outbox_claim_next(now).unwrap().unwrap();
    assert_eq!((second.seq, second.attempts), (claimed.seq, 2));
    store
        .outbox_unconfirmed(m.key(), second.seq, UNCONFIRMED, now)
        .unwrap();
    // Cancel: it is not on X; the mention is pending again, the text its draft.
    let cancelled = store.outbox_cancel(m.key(), now).unwrap();
    assert_eq!(cancelled.state, OutboxState::Cancelled);
    assert_eq!(status_of(store, &m), MentionStatus::Pending);
    assert_eq!(store.draft(m.key()).unwrap().unwrap().text, "maybe out");
    // Mark sent: a new one, left unconfirmed, which the user says is on X.
    store
        .outbox_enqueue_by(m.key(), ReplyKind::Public, "third", None, false, now)
        .unwrap();
    let third = store.outbox_claim_next(now).unwrap().unwrap();
    store
        .outbox_unconfirmed(m.key(), third.seq, UNCONFIRMED, now)
        .unwrap();
    let (entry, response) = store.outbox_mark_sent(m.key(), now).unwrap();
    assert_eq!(entry.state, OutboxState::Sent);
    assert_eq!(response.id, "", "X's id is unknown");
    assert_eq!(status_of(store, &m), MentionStatus::Replied);
}

fn outbox_a_rate_limited_send_waits_for_its_reset(store: &dyn OutboxBackend) {
    let m = one_mention(store, 1_600_000_000_000_000_006);
    let now = Utc::now();
    store
        .outbox_enqueue_by(m.key(), ReplyKind::Public, "soon", None, false, now)
        .unwrap();
    let claimed = store.outbox_claim_next(now).unwrap().unwrap();
    let reset = now + chrono::Duration::seconds(60);
    store
        .outbox_waiting(m.key(), claimed.seq, reset, "rate limited", now)
        .unwrap();
    assert_eq!(
        store.outbox_claim_next(now).unwrap(),
        None,
        "not before the reset"
    );
    let after = store.outbox_claim_next(reset).unwrap().unwrap();
    assert_eq!((after.seq, after.attempts), (claimed.seq, 2));
}

// ---- the outbox between services (PostgreSQL only) ----------------------------------------------

#[test]
fn postgres_two_services_replying_to_one_mention_at_the_same_moment_make_one_send_and_the_second_is_told_who()
 {
    let url = pg::fresh_database();
    let key = TokenKey::generate();
    let one = PgStore::connect(&url, Some(key.clone())).unwrap();
    let two = PgStore::connect(&url, Some(key)).unwrap();
    let rounds = 20u64;
    let mentions: Vec<_> = (0..rounds)
        .map(|i| one_mention(&one, 1_600_000_000_000_001_000 + i))
        .collect();
    let barrier = std::sync::Barrier::new(2);
    let now = Utc::now();
    let (ana, ben) = std::thread::scope(|s| {
        let ana = s.spawn(|| {
            mentions
                .iter()
                .map(|m| {
                    barrier.wait();
                    one.outbox_enqueue_by(
                        m.key(),
                        ReplyKind::Public,
                        "from ana",
                        Some("ana"),
                        false,
                        now,
                    )
                })
                .collect::<Vec<_>>()
        });
        let ben = s.spawn(|| {
            mentions
                .iter()
                .map(|m| {
                    barrier.wait();
                    two.outbox_enqueue_by(
                        m.key(),
                        ReplyKind::Public,
                        "from ben",
                        Some("ben"),
                        false,
                        now,
                    )
                })
                .collect::<Vec<_>>()
        });
        (ana.join().unwrap(), ben.join().unwrap())
    });
    for (i, (a, b)) in ana.iter().zip(&ben).enumerate() {
        match (a, b) {
            (Ok(_), Err(StoreError::Conflict(why))) => {
                assert!(why.contains("ana"), "round {i}: {why}")
            }
            (Err(StoreError::Conflict(why)), Ok(_)) => {
                assert!(why.contains("ben"), "round {i}: {why}")
            }
            other => panic!("round {i}: exactly one send, and the other told who: {other:?}"),
        }
    }
    // One post per mention: the leader's worker finds exactly one entry for each.
    let mut claimed = 0;
    while one.outbox_claim_next(now).unwrap().is_some() {
        claimed += 1;
        assert!(claimed <= rounds, "more sends than mentions");
    }
    assert_eq!(claimed, rounds);
}

#[test]
fn postgres_workers_claiming_at_once_each_get_different_entries_and_every_entry_once() {
    let url = pg::fresh_database();
    let key = TokenKey::generate();
    let workers: Vec<PgStore> = (0..4)
        .map(|_| PgStore::connect(&url, Some(key.clone())).unwrap())
        .collect();
    let entries = 60u64;
    let now = Utc::now();
    for i in 0..entries {
        let m = one_mention(&workers[0], 1_600_000_000_000_002_000 + i);
        workers[0]
            .outbox_enqueue_by(m.key(), ReplyKind::Public, "hello", None, false, now)
            .unwrap();
    }
    let claims: Vec<Vec<u64>> = std::thread::scope(|s| {
        let handles: Vec<_> = workers
            .iter()
            .map(|w| {
                s.spawn(move || {
                    let mut mine = Vec::new();
                    // Bounded: there are `entries` to take.
                    for _ in 0..=entries {
                        match w.outbox_claim_next(now).unwrap() {
                            Some(e) => mine.push(e.seq),
                            None => break,
                        }
                    }
                    mine
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut all: Vec<u64> = claims.iter().flatten().copied().collect();
    let total = all.len();
    all.sort_unstable();
    all.dedup();
    assert_eq!(
        (total, all.len()),
        (entries as usize, entries as usize),
        "{claims:?}"
    );
}

#[test]
fn postgres_a_new_leader_finds_the_send_a_dead_leader_had_out_unconfirmed_and_never_resends_it() {
    use perch::store::pg::leader::{Candidate, Election};
    let url = pg::fresh_database();
    let key = TokenKey::generate();
    // A worker still connected (a leader that lost the lock but not its store): its send is its
    // own to settle, not repaired.
    let alive = PgStore::connect(&url, Some(key.clone())).unwrap();
    let busy = one_mention(&alive, 1_600_000_000_000_003_100);
    alive
        .outbox_enqueue_by(
            busy.key(),
            ReplyKind::Public,
            "still out",
            None,
            false,
            Utc::now(),
        )
        .unwrap();
    assert_eq!(
        alive.outbox_claim_next(Utc::now()).unwrap().unwrap().key,
        busy.key()
    );
    let (m, queued);
    {
        let old_store = PgStore::connect(&url, Some(key.clone())).unwrap();
        let mut old = Election::new(
            &url,
            Candidate {
                host: "old".into(),
                pid: 1,
            },
        );
        assert!(old.tick().is_leader());
        m = one_mention(&old_store, 1_600_000_000_000_003_000);
        old_store
            .outbox_enqueue_by(
                m.key(),
                ReplyKind::Public,
                "was out",
                Some("ana"),
                false,
                Utc::now(),
            )
            .unwrap();
        let out = old_store.outbox_claim_next(Utc::now()).unwrap().unwrap();
        assert_eq!((out.key, out.state), (m.key(), OutboxState::Sending));
        // Asked for on another service, not sent yet when the leader died.
        queued = one_mention(&old_store, 1_600_000_000_000_003_001);
        old_store
            .outbox_enqueue_by(
                queued.key(),
                ReplyKind::Dm,
                "not yet out",
                Some("ben"),
                false,
                Utc::now(),
            )
            .unwrap();
        // The old leader's connections end here, as they do when its process dies.
    }
    let store = PgStore::connect(&url, Some(key)).unwrap();
    let mut new = Election::new(
        &url,
        Candidate {
            host: "new".into(),
            pid: 2,
        },
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while !new.tick().is_leader() {
        assert!(std::time::Instant::now() < deadline, "no takeover");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // The server ends a closed session a moment after its socket closes; until then it still
    // counts as connected. Bounded.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let repaired = loop {
        let repaired = store
            .outbox_recover(Utc::now(), UNCONFIRMED, NOT_SENT)
            .unwrap();
        if !repaired.is_empty() || std::time::Instant::now() > deadline {
            break repaired;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert_eq!(repaired.len(), 1, "{repaired:?}");
    assert_eq!(
        (repaired[0].key, repaired[0].state),
        (m.key(), OutboxState::Unconfirmed)
    );
    assert_eq!(
        store.mention(m.key()).unwrap().unwrap().status,
        MentionStatus::Error
    );
    // The live worker's send is untouched.
    assert_eq!(
        store.outbox_current(busy.key()).unwrap().unwrap().state,
        OutboxState::Sending
    );
    // The queued one is the new leader's to send; the unconfirmed one is never re-sent.
    let next = store.outbox_claim_next(Utc::now()).unwrap().unwrap();
    assert_eq!(next.key, queued.key());
    assert_eq!(
        store.outbox_claim_next(Utc::now()).unwrap(),
        None,
        "never re-sent by itself"
    );
    drop(alive);
}

#[test]
fn postgres_two_services_adding_one_x_user_at_the_same_moment_keep_one_account_and_name_it() {
    let url = pg::fresh_database();
    let key = TokenKey::generate();
    let one = PgStore::connect(&url, Some(key.clone())).unwrap();
    let two = PgStore::connect(&url, Some(key)).unwrap();
    let barrier = std::sync::Barrier::new(2);
    for round in 0..20u128 {
        let mut a = account(1000 + 2 * round, "acme");
        let mut b = account(1001 + 2 * round, "acme");
        a.twitter_id = format!("x{round}");
        b.twitter_id = format!("x{round}");
        let (ra, rb) = std::thread::scope(|s| {
            let ra = s.spawn(|| {
                barrier.wait();
                one.put_account(&a)
            });
            let rb = s.spawn(|| {
                barrier.wait();
                two.put_account(&b)
            });
            (ra.join().unwrap(), rb.join().unwrap())
        });
        match (&ra, &rb) {
            (Ok(()), Err(StoreError::DuplicateAccount { existing, .. })) => {
                assert_eq!(*existing, a.id)
            }
            (Err(StoreError::DuplicateAccount { existing, .. }), Ok(())) => {
                assert_eq!(*existing, b.id)
            }
            other => panic!("round {round}: one account, the other refused naming it: {other:?}"),
        }
    }
}

// ---- what a service needs beyond the feed and the outbox (`ServiceBackend`) ---------------

fn post_read(at: chrono::DateTime<Utc>, ids: &[u64]) -> perch::store::ReadCharge {
    perch::store::ReadCharge {
        at,
        class: perch::costs::ResourceClass::Post,
        kind: perch::costs::CostKind::PostRead,
        ids: ids.to_vec(),
    }
}

fn service_a_read_is_charged_with_its_page_once_per_utc_day(store: &dyn ServiceBackend) {
    use perch::costs::{CostKind, Month};
    let a = account(1, "acme");
    let b = account(2, "beta");
    store.put_account(&a).unwrap();
    store.put_account(&b).unwrap();
    let price = store.pricing().prices.of(CostKind::PostRead);
    assert!(price > 0, "COSTS.md prices a post read");
    let day = t0();
    let page = |n: u64| mention(&a, 1_600_000_000_000_000_000 + n, "hi");
    let first = [page(1), page(2), page(3)];
    let commit = store
        .commit_fetched_page_charged(
            a.id,
            &first,
            &[],
            Some(1_600_000_000_000_000_003),
            Some(&post_read(day, &[1, 2, 3, 3])),
        )
        .unwrap();
    assert_eq!(
        (commit.cost.count, commit.cost.micros),
        (3, 3 * price),
        "the page says what it was charged (3 once each)"
    );
    // 2 and 3 were charged today already (to any account: X bills the app once per post and
    // UTC day); only 4 is new.
    store
        .commit_fetched_page_charged(b.id, &[], &[], None, Some(&post_read(day, &[2, 3, 4])))
        .unwrap();
    let by = store
        .cost_by_kind(day.date_naive(), day.date_naive(), None)
        .unwrap();
    let used = by.get(&CostKind::PostRead).copied().unwrap_or_default();
    assert_eq!((used.count, used.micros), (4, 4 * price));
    let of_a = store
        .cost_by_kind(day.date_naive(), day.date_naive(), Some(a.id))
        .unwrap();
    assert_eq!(of_a.get(&CostKind::PostRead).map(|u| u.count), Some(3));
    let (total, per_account) = store.month_spend(Month::of(day.date_naive())).unwrap();
    assert_eq!(total, 4 * price);
    assert_eq!(per_account.get(&a.id), Some(&(3 * price)));
    assert_eq!(per_account.get(&b.id), Some(&price));
    // The page and its charge went together.
    assert_eq!(store.cursor(a.id).unwrap(), Some(1_600_000_000_000_000_003));
    // The next UTC day bills the same post again; a read that stores nothing is charged too.
    let next = day + chrono::Duration::days(1);
    let used = store.record_read(a.id, &post_read(next, &[1])).unwrap();
    assert_eq!((used.count, used.micros), (1, price));
    let again = store.record_read(a.id, &post_read(next, &[1])).unwrap();
    assert_eq!(again.count, 0, "once per UTC day");
    // "All time", as the stats view asks for it.
    let all_time = store
        .cost_by_kind(chrono::NaiveDate::MIN, next.date_naive(), Some(a.id))
        .unwrap();
    assert_eq!(all_time.get(&CostKind::PostRead).map(|u| u.count), Some(4));
    // Posts X sent that could not be read are counted once each, ever.
    let skipped = store
        .commit_fetched_page_charged(a.id, &[], &[7, 8, 8], None, None)
        .unwrap();
    assert_eq!(skipped.unreadable, 2);
    let again = store
        .commit_fetched_page_charged(a.id, &[], &[8, 9], None, None)
        .unwrap();
    assert_eq!(again.unreadable, 1);
}

fn service_a_sent_reply_or_dm_is_charged_once_and_a_failed_one_never(store: &dyn ServiceBackend) {
    use perch::costs::CostKind;
    let a = account(1, "acme");
    store.put_account(&a).unwrap();
    // Summoned: the post mentions @acme in its text, so the reply is billed as one.
    let (one, two) = (
        mention(&a, 1_600_000_000_000_000_001, "@acme hi"),
        mention(&a, 1_600_000_000_000_000_002, "@acme hello"),
    );
    store
        .commit_page(a.id, &[one.clone(), two.clone()], None)
        .unwrap();
    let now = Utc::now();
    let today = perch::costs::billing_day(now);
    let used = |kind: CostKind| {
        store
            .cost_by_kind(today, today, Some(a.id))
            .unwrap()
            .get(&kind)
            .copied()
            .unwrap_or_default()
    };
    let reply_kind = perch::costs::reply_kind("thanks", true);
    let dm_price = store.pricing().prices.of(CostKind::DmSent);
    let reply_price = store.pricing().prices.of(reply_kind);
    assert!(dm_price > 0 && reply_price > 0, "COSTS.md prices both");

    // A reply that fails costs nothing.
    let e = store
        .outbox_enqueue_by(one.key(), ReplyKind::Public, "thanks", None, false, now)
        .unwrap();
    let claimed = store.outbox_claim_next(now).unwrap().unwrap();
    assert_eq!(claimed.seq, e.seq);
    store
        .outbox_failed(one.key(), e.seq, "not sent: X refused", now)
        .unwrap();
    assert_eq!(used(reply_kind).count, 0, "a failed send is not billed");

    // Sent: charged once, in the transition's own write.
    let e = store
        .outbox_enqueue_by(one.key(), ReplyKind::Public, "thanks", None, false, now)
        .unwrap();
    store.outbox_claim_next(now).unwrap().unwrap();
    store
        .outbox_sent(one.key(), e.seq, Some("1700".into()), now)
        .unwrap();
    let u = used(reply_kind);
    assert_eq!((u.count, u.micros), (1, reply_price));
    assert!(
        store
            .outbox_sent(one.key(), e.seq, Some("1700".into()), now)
            .is_err(),
        "a sent entry is not sent again"
    );
    assert_eq!(used(reply_kind).count, 1, "so it is never charged twice");

    // A DM that went out unconfirmed, then marked sent by the user, is billed then.
    let e = store
        .outbox_enqueue_by(two.key(), ReplyKind::Dm, "see DMs", None, false, now)
        .unwrap();
    store.outbox_claim_next(now).unwrap().unwrap();
    store
        .outbox_unconfirmed(two.key(), e.seq, "unconfirmed: check on X", now)
        .unwrap();
    assert_eq!(used(CostKind::DmSent).count, 0);
    store.outbox_mark_sent(two.key(), now).unwrap();
    let u = used(CostKind::DmSent);
    assert_eq!((u.count, u.micros), (1, dm_price));
    let (total, _) = store.month_spend(perch::costs::Month::of(today)).unwrap();
    assert_eq!(total, reply_price + dm_price);
}

fn service_a_streamed_post_is_remembered_as_streamed_and_never_moves_the_cursor(
    store: &dyn ServiceBackend,
) {
    use perch::domain::Arrival;
    let a = account(1, "acme");
    store.put_account(&a).unwrap();
    let polled = mention(&a, 1_600_000_000_000_000_010, "polled");
    store
        .commit_fetched_page_charged(
            a.id,
            std::slice::from_ref(&polled),
            &[],
            Some(1_600_000_000_000_000_010),
            None,
        )
        .unwrap();
    let streamed = mention(&a, 1_600_000_000_000_000_020, "streamed");
    let commit = store.commit_streamed_post(a.id, &streamed, None).unwrap();
    assert_eq!(commit.inserted, 1);
    assert_eq!(store.arrival(streamed.key()).unwrap(), Arrival::Stream);
    assert_eq!(store.arrival(polled.key()).unwrap(), Arrival::Poll);
    assert_eq!(
        store.cursor(a.id).unwrap(),
        Some(1_600_000_000_000_000_010),
        "only the poll moves the cursor"
    );
    // Delivered again (the stream repeats itself): still one mention.
    let again = store.commit_streamed_post(a.id, &streamed, None).unwrap();
    assert_eq!((again.inserted, again.duplicates), (0, 1));
    assert_eq!(store.count(&FeedFilter::default()).unwrap(), 2);
}

fn service_page_before_gives_the_rows_just_above_a_position_newest_first(
    store: &dyn ServiceBackend,
) {
    let a = account(1, "acme");
    store.put_account(&a).unwrap();
    let ms: Vec<_> = (1..=6)
        .map(|n| mention(&a, 1_600_000_000_000_000_000 + n, "m"))
        .collect();
    store.commit_page(a.id, &ms, None).unwrap();
    let tweets = |page: Vec<perch::domain::Mention>| -> Vec<u64> {
        page.iter()
            .map(|m| m.tweet_id.parse::<u64>().unwrap() % 100)
            .collect()
    };
    let all = FeedFilter::default();
    assert_eq!(
        tweets(store.page_before(&all, None, 2).unwrap()),
        [2, 1],
        "the oldest, newest first"
    );
    let third = FeedPos::from(&ms[2]);
    assert_eq!(
        tweets(store.page_before(&all, Some(third), 2).unwrap()),
        [5, 4]
    );
    assert_eq!(
        tweets(store.page_before(&all, Some(third), 10).unwrap()),
        [6, 5, 4]
    );
    let newest = FeedPos::from(&ms[5]);
    assert!(
        store
            .page_before(&all, Some(newest), 10)
            .unwrap()
            .is_empty()
    );
}

fn service_removing_an_account_takes_its_tokens_and_cursor_and_its_mentions_only_when_asked(
    store: &dyn ServiceBackend,
) {
    let a = account(1, "acme");
    let b = account(2, "beta");
    for (acc, n) in [(&a, 1), (&b, 2)] {
        store.put_account(acc).unwrap();
        store.put_tokens(acc.id, &tokens("access")).unwrap();
        store
            .commit_page(
                acc.id,
                &[mention(acc, 1_600_000_000_000_000_000 + n, "m")],
                Some(1_600_000_000_000_000_000 + n),
            )
            .unwrap();
    }
    let mut ana = person("ana", perch::domain::Role::Member, &"a".repeat(64));
    ana.grants.insert(a.id, perch::domain::Access::Reply);
    ana.grants.insert(b.id, perch::domain::Access::Read);
    store.add_person(&ana).unwrap();
    store.remove_account(a.id, false).unwrap();
    let grants = store.person("ana").unwrap().unwrap().grants;
    assert_eq!(
        grants.keys().copied().collect::<Vec<_>>(),
        [b.id],
        "no grant to a removed account stays"
    );
    assert_eq!(store.account(a.id).unwrap(), None);
    assert_eq!(store.tokens(a.id).unwrap(), None);
    assert_eq!(store.cursor(a.id).unwrap(), None);
    let of = |id| FeedFilter {
        account: Some(id),
        status: None,
    };
    assert_eq!(
        store.count(&of(a.id)).unwrap(),
        1,
        "its mentions stay unless asked"
    );
    store.put_account(&a).unwrap();
    store.remove_account(a.id, true).unwrap();
    assert_eq!(store.count(&of(a.id)).unwrap(), 0);
    // The other account is untouched.
    assert!(store.account(b.id).unwrap().is_some());
    assert!(store.tokens(b.id).unwrap().is_some());
    assert_eq!(store.count(&of(b.id)).unwrap(), 1);
}

fn service_budget_warnings_are_given_once_a_month_and_the_usage_report_round_trips(
    store: &dyn ServiceBackend,
) {
    use perch::costs::Month;
    let month = Month::of(t0().date_naive());
    assert!(store.note_budget_warning("all", month).unwrap());
    assert!(
        !store.note_budget_warning("all", month).unwrap(),
        "once a month"
    );
    assert!(
        store.note_budget_warning("@acme", month).unwrap(),
        "per scope"
    );
    let next = Month::of((t0() + chrono::Duration::days(40)).date_naive());
    assert!(
        store.note_budget_warning("all", next).unwrap(),
        "again next month"
    );
    assert_eq!(store.x_usage().unwrap(), None);
    let usage = perch::costs::XUsage {
        fetched_at: t0(),
        project_usage: 1234,
        project_cap: Some(10_000),
        daily: [(t0().date_naive(), 34)].into_iter().collect(),
        perch_posts: Some(1200),
    };
    store.put_x_usage(&usage).unwrap();
    assert_eq!(store.x_usage().unwrap(), Some(usage));
}

fn person(name: &str, role: perch::domain::Role, hash: &str) -> perch::domain::Person {
    perch::domain::Person {
        name: name.to_string(),
        role,
        token_hash: hash.to_string(),
        grants: Default::default(),
        created_at: t0(),
    }
}

fn service_people_round_trip_and_a_token_hash_finds_its_person(store: &dyn ServiceBackend) {
    use perch::domain::{Access, Role};
    let ana = person("ana", Role::Member, &"a".repeat(64));
    let bo = person("bo", Role::Admin, &"b".repeat(64));
    store.add_person(&bo).unwrap();
    store.add_person(&ana).unwrap();
    assert!(matches!(
        store.add_person(&ana),
        Err(StoreError::Conflict(_))
    ));
    let names: Vec<String> = store
        .people()
        .unwrap()
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(names, ["ana", "bo"]);
    assert_eq!(
        store.person_by_token_hash(&"b".repeat(64)).unwrap(),
        Some(bo.clone())
    );
    assert_eq!(store.person_by_token_hash(&"c".repeat(64)).unwrap(), None);
    let mut granted = ana.clone();
    granted
        .grants
        .insert(perch::domain::AccountId::from_u128(1), Access::Reply);
    store.update_person(&granted).unwrap();
    assert_eq!(store.person("ana").unwrap(), Some(granted));
    assert!(matches!(
        store.update_person(&person("cy", Role::Member, "c")),
        Err(StoreError::Conflict(_))
    ));
    assert!(store.remove_person("ana").unwrap().is_some());
    assert_eq!(store.remove_person("ana").unwrap(), None);
    assert_eq!(
        store.person_by_token_hash(&"a".repeat(64)).unwrap(),
        None,
        "its token stops at once"
    );
}

fn service_the_audit_log_only_grows_and_filters_by_person_mention_and_account(
    store: &dyn ServiceBackend,
) {
    use perch::domain::{AuditAction, AuditEntry, MentionKey};
    use perch::store::AuditQuery;
    let a = perch::domain::AccountId::from_u128(1);
    let b = perch::domain::AccountId::from_u128(2);
    let key = MentionKey {
        account_id: a,
        tweet_id: 77,
    };
    let entries = [
        AuditEntry::new("ana", AuditAction::Status, t0(), "done").mention(key, "@acme"),
        AuditEntry::new("bo", AuditAction::Assign, t0(), "to ana").mention(key, "@acme"),
        AuditEntry::new("ana", AuditAction::AccountAdd, t0(), "added").account(b, "@beta"),
        AuditEntry::new("owner", AuditAction::Status, t0(), "ignored"),
    ];
    let seqs: Vec<u64> = entries
        .iter()
        .map(|e| store.append_audit(e.clone()).unwrap().seq)
        .collect();
    assert_eq!(seqs, [1, 2, 3, 4], "one past the newest, no gaps");
    let query = |f: &dyn Fn(&mut AuditQuery)| {
        let mut q = AuditQuery {
            person: None,
            mention: None,
            account: None,
            among: None,
            before: None,
            limit: 10,
        };
        f(&mut q);
        store.audit(&q).unwrap()
    };
    let seq_of = |p: perch::store::AuditPage| p.entries.iter().map(|e| e.seq).collect::<Vec<_>>();
    assert_eq!(seq_of(query(&|_| {})), [4, 3, 2, 1], "newest first");
    assert_eq!(seq_of(query(&|q| q.person = Some("ana".into()))), [3, 1]);
    assert_eq!(seq_of(query(&|q| q.mention = Some(77))), [2, 1]);
    assert_eq!(seq_of(query(&|q| q.account = Some(b))), [3]);
    assert_eq!(seq_of(query(&|q| q.among = Some(vec![a]))), [2, 1]);
    // Paged: two at a time, the page says where to go on.
    let first = query(&|q| q.limit = 2);
    assert_eq!(seq_of(first.clone()), [4, 3]);
    let before = first.next_before.expect("more to read");
    let rest = query(&|q| {
        q.limit = 2;
        q.before = Some(before);
    });
    assert_eq!(seq_of(rest), [2, 1]);
    let stored = query(&|q| q.person = Some("bo".into()));
    assert_eq!(stored.entries[0].detail, "to ana");
    assert_eq!(stored.entries[0].mention, Some(77));
}

fn service_pages_and_counts_among_some_accounts_leave_the_others_out(store: &dyn ServiceBackend) {
    let accounts = [account(1, "acme"), account(2, "beta"), account(3, "gamma")];
    for (i, a) in accounts.iter().enumerate() {
        store.put_account(a).unwrap();
        let ms: Vec<_> = (0..3)
            .map(|n| mention(a, 1_600_000_000_000_000_000 + (n * 10 + i as u64), "m"))
            .collect();
        store.commit_page(a.id, &ms, None).unwrap();
    }
    let only = [accounts[0].id, accounts[2].id];
    let all = FeedFilter::default();
    let page = store.page_after_among(&all, &only, None, 10).unwrap();
    assert_eq!(page.len(), 6);
    assert!(page.iter().all(|m| only.contains(&m.sent_to.account_id)));
    let tweets: Vec<u64> = page.iter().map(|m| m.tweet_id.parse().unwrap()).collect();
    let mut sorted = tweets.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(tweets, sorted, "newest first");
    let after = FeedPos::from(&page[1]);
    let rest = store
        .page_after_among(&all, &only, Some(after), 10)
        .unwrap();
    assert_eq!(rest.len(), 4);
    assert_eq!(store.count_among(&all, &only).unwrap(), 6);
    let pending_of_beta = FeedFilter {
        account: Some(accounts[1].id),
        status: Some(MentionStatus::Pending),
    };
    assert_eq!(store.count_among(&pending_of_beta, &only).unwrap(), 0);
    assert_eq!(store.count_among(&all, &[]).unwrap(), 0);
    assert!(
        store
            .page_after_among(&all, &[], None, 10)
            .unwrap()
            .is_empty()
    );
}

/// A lost connection (the server ended the session: a restart, a cut) is opened again at the
/// next call, so a service's store recovers by itself instead of failing every call until it
/// is restarted. At most the call that finds the connection gone fails.
#[test]
fn postgres_a_store_whose_connection_was_lost_connects_again() {
    let url = pg::fresh_database();
    let store = PgStore::connect(&url, Some(TokenKey::generate())).unwrap();
    store.put_account(&account(1, "acme")).unwrap();
    let mut admin = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let ended: i64 = admin
        .query_one(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE datname = current_database() AND pid <> pg_backend_pid()) AS t",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(ended, 1, "the store's session was ended");
    // pg_terminate_backend only signals: wait until the session is gone.
    let gone_by = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while admin
        .query_one(
            "SELECT count(*) FROM pg_stat_activity
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
            &[],
        )
        .unwrap()
        .get::<_, i64>(0)
        > 0
    {
        assert!(
            std::time::Instant::now() < gone_by,
            "the session did not end"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // The first call may be the one that finds the connection closed.
    let _ = store.accounts();
    let names: Vec<String> = store
        .accounts()
        .expect("connected again")
        .into_iter()
        .map(|a| a.twitter_username)
        .collect();
    assert_eq!(names, ["acme"]);
}

/// A post id whose snowflake time is `at` (plus `n` to tell posts apart).
fn id_at(at: chrono::DateTime<Utc>, n: u64) -> u64 {
    (((at.timestamp_millis() - 1_288_834_974_657) as u64) << 22) + n
}

fn service_triage_is_undone_by_its_person_only_and_never_unsends_a_reply(
    store: &dyn ServiceBackend,
) {
    let a = account(1, "acme");
    store.put_account(&a).unwrap();
    let ms: Vec<_> = (1..=4)
        .map(|n| mention(&a, 1_600_000_000_000_000_000 + n, "@acme hi"))
        .collect();
    store.commit_page(a.id, &ms, None).unwrap();
    let keys: Vec<_> = ms.iter().map(|m| m.key()).collect();
    let now = Utc::now();
    // ana ignores three, in two chunks of one action; bo marks the fourth replied.
    let changed = store
        .triage_as("ana", 10, &keys[..2], MentionStatus::Ignored, now)
        .unwrap();
    assert_eq!(changed.len(), 2);
    store
        .triage_as("ana", 10, &keys[2..3], MentionStatus::Ignored, now)
        .unwrap();
    assert!(
        store
            .triage_as("ana", 10, &keys[..1], MentionStatus::Ignored, now)
            .unwrap()
            .is_empty(),
        "already ignored: nothing to record"
    );
    store
        .triage_as("bo", 11, &keys[3..], MentionStatus::Replied, now)
        .unwrap();
    let newest = store.last_undo_action_of("ana").unwrap().unwrap();
    assert_eq!((newest.id, newest.changed, newest.chunks), (10, 3, 2));
    assert_eq!(newest.person(), "ana");
    // bo's action is not ana's to undo.
    assert!(matches!(
        store.undo_step_as("ana", Some(11), now),
        Err(StoreError::Conflict(_))
    ));
    // Meanwhile a reply to the first one was sent: undo keeps it replied.
    let e = store
        .outbox_enqueue_by(keys[0], ReplyKind::Public, "thanks", None, true, now)
        .unwrap();
    store.outbox_claim_next(now).unwrap().unwrap();
    store
        .outbox_sent(keys[0], e.seq, Some("1".into()), now)
        .unwrap();
    // ana's undo goes back chunk by chunk: the last chunk first.
    let step = store.undo_step_as("ana", None, now).unwrap().unwrap();
    assert_eq!((step.restored, step.kept_replied, step.done), (1, 0, false));
    assert_eq!(status_of(store, &ms[2]), MentionStatus::Pending);
    let step = store.undo_step_as("ana", None, now).unwrap().unwrap();
    assert_eq!((step.restored, step.kept_replied, step.done), (1, 1, true));
    assert_eq!(status_of(store, &ms[0]), MentionStatus::Replied);
    assert_eq!(status_of(store, &ms[1]), MentionStatus::Pending);
    assert_eq!(
        status_of(store, &ms[3]),
        MentionStatus::Replied,
        "bo's stays"
    );
    assert_eq!(store.undo_step_as("ana", None, now).unwrap(), None);
    assert_eq!(
        store.last_undo_action_of("bo").unwrap().map(|a| a.id),
        Some(11)
    );
}

fn service_assignments_commit_with_their_audit_entry_and_go_with_their_person(
    store: &dyn ServiceBackend,
) {
    use perch::domain::{Access, Role};
    use perch::store::AssignRefusal;
    let a = account(1, "acme");
    let b = account(2, "beta");
    store.put_account(&a).unwrap();
    store.put_account(&b).unwrap();
    let m = mention(&a, 1_600_000_000_000_000_001, "@acme hi");
    let other = mention(&b, 1_600_000_000_000_000_002, "@beta hi");
    store
        .commit_page(a.id, std::slice::from_ref(&m), None)
        .unwrap();
    store
        .commit_page(b.id, std::slice::from_ref(&other), None)
        .unwrap();
    let mut ana = person("ana", Role::Member, &"a".repeat(64));
    ana.grants.insert(a.id, Access::Reply);
    store.add_person(&ana).unwrap();
    let now = Utc::now();
    assert!(matches!(
        store
            .assign_as("owner", m.key(), "@acme", Some("nobody-here"), now)
            .unwrap(),
        Err(AssignRefusal::NoSuchPerson(_))
    ));
    assert!(matches!(
        store
            .assign_as("owner", other.key(), "@beta", Some("ana"), now)
            .unwrap(),
        Err(AssignRefusal::MayNotSee { .. })
    ));
    assert_eq!(
        store
            .assign_as("owner", m.key(), "@acme", Some("ana"), now)
            .unwrap(),
        Ok(None)
    );
    assert_eq!(
        store.assignment(m.key()).unwrap().map(|x| x.person),
        Some("ana".into())
    );
    let (all, complete) = store.assignments().unwrap();
    assert!(complete);
    assert_eq!(
        all.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
        vec![m.key()]
    );
    let logged = store
        .audit(&perch::store::AuditQuery {
            mention: Some(m.key().tweet_id),
            limit: 10,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(logged.entries.len(), 1, "one entry, with the assignment");
    assert_eq!(logged.entries[0].action, perch::domain::AuditAction::Assign);
    assert_eq!(logged.entries[0].detail, "ana");
    // Removing ana makes her mentions nobody's.
    assert_eq!(store.remove_person("ana").unwrap(), Some(vec![m.key()]));
    assert_eq!(store.assignment(m.key()).unwrap(), None);
}

fn service_drafts_round_trip_and_search_finds_text_and_team_words(store: &dyn ServiceBackend) {
    let a = account(1, "acme");
    store.put_account(&a).unwrap();
    let ms: Vec<_> = (1..=30)
        .map(|n| {
            let text = if n % 10 == 0 {
                "@acme my invoice is wrong"
            } else {
                "@acme hello"
            };
            mention(&a, 1_600_000_000_000_000_000 + n, text)
        })
        .collect();
    store.commit_page(a.id, &ms, None).unwrap();
    let key = ms[0].key();
    let draft = perch::store::Draft {
        kind: ReplyKind::Dm,
        text: "half a thought".into(),
        updated_at: t0(),
    };
    store.put_draft(key, &draft).unwrap();
    assert_eq!(store.draft(key).unwrap(), Some(draft));
    store.delete_draft(key).unwrap();
    assert_eq!(store.draft(key).unwrap(), None);

    let all = FeedFilter::default();
    // Newest first, resumable: 3 hits, found 2 then 1.
    let first =
        perch::store::search_page_as(store, "ana", &all, "invoice", None, 2, 1_000).unwrap();
    let ids: Vec<_> = first.hits.iter().map(|m| m.tweet_id.clone()).collect();
    assert_eq!(ids, [ms[29].tweet_id.clone(), ms[19].tweet_id.clone()]);
    assert!(!first.exhausted);
    let rest =
        perch::store::search_page_as(store, "ana", &all, "invoice", first.resume_after, 2, 1_000)
            .unwrap();
    assert_eq!(rest.hits.len(), 1);
    assert!(rest.exhausted);
    // A search examines at most max_scan rows per call, and says where to go on.
    // From just below the newest hit, the next 5 rows hold none: an empty page that is not
    // the end, resuming below the fifth.
    let bounded = perch::store::search_page_as(
        store,
        "ana",
        &all,
        "invoice",
        Some(FeedPos::from(ms[29].key())),
        10,
        5,
    )
    .unwrap();
    assert!(bounded.hits.is_empty() && !bounded.exhausted, "{bounded:?}");
    assert_eq!(bounded.resume_after, Some(FeedPos::from(ms[24].key())));
    // Team words: mine, unassigned.
    let mut ana = person("ana", perch::domain::Role::Admin, &"a".repeat(64));
    ana.grants.insert(a.id, perch::domain::Access::Reply);
    store.add_person(&ana).unwrap();
    store
        .assign_as("owner", ms[9].key(), "@acme", Some("ana"), Utc::now())
        .unwrap()
        .unwrap();
    let mine = perch::store::search_page_as(store, "ana", &all, "is:mine invoice", None, 10, 1_000)
        .unwrap();
    assert_eq!(
        mine.hits.iter().map(|m| m.key()).collect::<Vec<_>>(),
        vec![ms[9].key()]
    );
    let unassigned =
        perch::store::search_page_as(store, "ana", &all, "is:unassigned invoice", None, 10, 1_000)
            .unwrap();
    assert_eq!(unassigned.hits.len(), 2);
}

fn service_daily_counts_are_per_utc_day_of_the_post(store: &dyn ServiceBackend) {
    let a = account(1, "acme");
    store.put_account(&a).unwrap();
    let today = t0();
    let yesterday = today - chrono::Duration::days(1);
    let long_ago = today - chrono::Duration::days(40);
    let ms: Vec<_> = [(today, 1), (today, 2), (yesterday, 3), (long_ago, 4)]
        .into_iter()
        .map(|(at, n)| mention(&a, id_at(at, n), "@acme hi"))
        .collect();
    store.commit_page(a.id, &ms, None).unwrap();
    let counts = store.daily_counts(a.id, today.date_naive(), 3).unwrap();
    assert_eq!(
        counts,
        vec![
            (today.date_naive() - chrono::Days::new(2), 0),
            (yesterday.date_naive(), 1),
            (today.date_naive(), 2),
        ]
    );
    assert_eq!(
        store.daily_counts(a.id, today.date_naive(), 0).unwrap(),
        vec![]
    );
}

/// A send whose client went away while its request was out stays `sending` on PostgreSQL
/// (review of issue 16: recording it unconfirmed at once let a retry queue a second request
/// while X could still answer the first); nobody may retry, cancel or mark it meanwhile, X's
/// answer still settles it, and a new claim starts unmarked.
#[test]
fn postgres_a_send_abandoned_while_out_stays_sending_until_x_answers() {
    let url = pg::fresh_database();
    let store = PgStore::connect(&url, Some(TokenKey::generate())).unwrap();
    let now = Utc::now();
    let m = one_mention(&store, 1_600_000_000_000_000_001);
    let key = m.key();
    let e = store
        .outbox_enqueue_by(key, ReplyKind::Public, "on it", Some("ana"), false, now)
        .unwrap();
    assert!(
        !store.outbox_abandon_sending(key, e.seq).unwrap(),
        "a queued send is not out: nothing to mark (it is cancelled instead)"
    );
    store.outbox_claim_next(now).unwrap().unwrap();
    assert!(store.outbox_abandon_sending(key, e.seq).unwrap());
    assert!(store.outbox_was_abandoned(key, e.seq).unwrap());
    assert_eq!(
        store.outbox_current(key).unwrap().map(|e| e.state),
        Some(OutboxState::Sending)
    );
    assert!(store.outbox_retry(key, now).is_err(), "no second request");
    assert!(store.outbox_cancel(key, now).is_err(), "it may be on X");
    assert!(
        store.outbox_mark_sent(key, now).is_err(),
        "X has not answered"
    );
    // X answers with a rate limit: waiting, still marked for the worker to cancel.
    store
        .outbox_waiting(key, e.seq, now, "rate limited", now)
        .unwrap();
    assert!(store.outbox_was_abandoned(key, e.seq).unwrap());
    store.outbox_cancel(key, now).unwrap();
    // A new send of the mention is claimed unmarked.
    let again = store
        .outbox_enqueue_by(key, ReplyKind::Public, "on it", Some("ana"), false, now)
        .unwrap();
    store.outbox_claim_next(now).unwrap().unwrap();
    assert!(!store.outbox_was_abandoned(key, again.seq).unwrap());
    store
        .outbox_sent(key, again.seq, Some("1700".into()), now)
        .unwrap();
}

/// The feed's counts come from count deltas kept by triggers (schema version 9), not from
/// counting rows: after pages, duplicates, status changes, triage, undo, a send, a fold and an
/// account's removal, every count (all, per account, per status, both) is the rows' own.
#[test]
fn postgres_counts_from_the_delta_table_agree_with_the_rows_after_every_kind_of_write() {
    let url = pg::fresh_database();
    let store = PgStore::connect(&url, Some(TokenKey::generate())).unwrap();
    let mut sql = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let (a, b) = (account(1, "acme"), account(2, "beta"));
    store.put_account(&a).unwrap();
    store.put_account(&b).unwrap();
    let check = |store: &PgStore, sql: &mut postgres::Client, when: &str| {
        for account in [None, Some(a.id), Some(b.id)] {
            for status in MentionStatus::ALL.map(Some).into_iter().chain([None]) {
                let filter = FeedFilter { account, status };
                let rows: i64 = sql
                    .query_one(
                        "SELECT count(*) FROM mentions
                         WHERE ($1::uuid IS NULL OR account_id = $1)
                           AND ($2::smallint IS NULL OR status = $2)",
                        &[&account, &status.map(|s| s.code() as i16)],
                    )
                    .unwrap()
                    .get(0);
                assert_eq!(
                    store.count(&filter).unwrap(),
                    rows as u64,
                    "{when}: {filter:?}"
                );
            }
        }
    };
    let page = |acc: &perch::domain::Account, from: u64| -> Vec<_> {
        (from..from + 20)
            .map(|n| mention(acc, 1_600_000_000_000_000_000 + n, "@x hi"))
            .collect()
    };
    let first = page(&a, 0);
    store.commit_page(a.id, &first, None).unwrap();
    store.commit_page(b.id, &page(&b, 100), None).unwrap();
    store.commit_page(a.id, &page(&a, 10), None).unwrap();
    check(&store, &mut sql, "pages with duplicates");
    let now = Utc::now();
    let keys: Vec<_> = first.iter().take(8).map(|m| m.key()).collect();
    store
        .triage_as("ana", 1, &keys, MentionStatus::Ignored, now)
        .unwrap();
    store
        .set_status(first[9].key(), MentionStatus::Replied, now)
        .unwrap();
    check(&store, &mut sql, "triage and a status change");
    store.fold_counts().unwrap();
    check(&store, &mut sql, "folded");
    store.undo_step_as("ana", None, now).unwrap().unwrap();
    let e = store
        .outbox_enqueue_by(first[12].key(), ReplyKind::Public, "ok", None, false, now)
        .unwrap();
    store.outbox_claim_next(now).unwrap().unwrap();
    check(&store, &mut sql, "a send on its way");
    store
        .outbox_sent(first[12].key(), e.seq, Some("9".into()), now)
        .unwrap();
    check(&store, &mut sql, "undone, and a reply sent");
    store.remove_account(b.id, true).unwrap();
    check(&store, &mut sql, "an account removed with its mentions");
    store.fold_counts().unwrap();
    check(&store, &mut sql, "folded again");
    let rows: i64 = sql
        .query_one("SELECT count(*) FROM mention_counts", &[])
        .unwrap()
        .get(0);
    assert!(
        rows <= 6,
        "one row per account and status after a fold: {rows}"
    );
}
