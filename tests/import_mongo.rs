//! `perch import mongo` and `perch export mongo|mentions` (issue 13), against fixtures made for
//! perch in `tests/fixtures/mongo/` (made-up accounts and posts):
//! - `lines_relaxed/`: 3 accounts and 30 messages, one relaxed Extended JSON document per line
//!   (every status, every response shape: null, absent, string, object with and without id);
//! - `array_canonical/`: the same data as a pretty-printed `--jsonArray` in canonical Extended JSON;
//! - `legacy/`: the old `users` collection (a one-line relaxed array) and messages tied only by
//!   `user` (canonical lines), one of them by the account id;
//! - `broken/messages.json`: broken lines in the middle of good ones.
//!
//! The CLI tests run the real binary (exit codes, report text, `--json`); the rest call the
//! library function the CLI calls.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::{DateTime, TimeZone, Utc};
use perch::domain::{Account, Mention, MentionStatus, SyncStatus};
use perch::interop::{self, ImportOptions, ImportReport, MongoSources, Quiet};
use perch::store::{FeedFilter, Store};
use serde_json::Value;

fn fixture(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/mongo")
        .join(path)
}

fn main_sources() -> MongoSources {
    MongoSources {
        accounts: Some(fixture("lines_relaxed/accounts.json")),
        users: None,
        messages: fixture("lines_relaxed/messages.json"),
    }
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 12, 1, 0, 0, 0).unwrap()
}

fn import(store: &Store, sources: &MongoSources, dry_run: bool) -> ImportReport {
    let options = ImportOptions {
        dry_run,
        // Small batches, so the fixtures cross batch boundaries.
        batch: 7,
    };
    interop::import_mongo(store, sources, options, now(), &mut Quiet).expect("import runs")
}

/// Everything a user sees of a store: accounts, every mention, counters and daily stats,
/// cursors and tokens.
#[derive(Debug, PartialEq)]
struct Snapshot {
    accounts: Vec<Account>,
    mentions: Vec<Mention>,
    counts: BTreeMap<String, u64>,
    daily: BTreeMap<String, Vec<(chrono::NaiveDate, u64)>>,
    cursors: BTreeMap<String, Option<u64>>,
    tokens: BTreeMap<String, Option<String>>,
}

fn snapshot(store: &Store) -> Snapshot {
    let accounts = store.accounts().unwrap();
    let mentions = store
        .page_after(&FeedFilter::default(), None, 10_000)
        .unwrap();
    let mut counts = BTreeMap::new();
    let mut daily = BTreeMap::new();
    let mut cursors = BTreeMap::new();
    let mut tokens = BTreeMap::new();
    for a in &accounts {
        for s in MentionStatus::ALL {
            let f = FeedFilter {
                account: Some(a.id),
                status: Some(s),
            };
            counts.insert(format!("{} {s}", a.handle()), store.count(&f).unwrap());
        }
        let today = chrono::NaiveDate::from_ymd_opt(2025, 11, 30).unwrap();
        daily.insert(a.handle(), store.daily_counts(a.id, today, 60).unwrap());
        cursors.insert(a.handle(), store.cursor(a.id).unwrap());
        tokens.insert(
            a.handle(),
            store
                .tokens(a.id)
                .unwrap()
                .map(|t| format!("{} {}", t.access_token.expose(), t.expires_at)),
        );
    }
    counts.insert("all".into(), store.count(&FeedFilter::default()).unwrap());
    Snapshot {
        accounts,
        mentions,
        counts,
        daily,
        cursors,
        tokens,
    }
}

fn by_text<'a>(s: &'a Snapshot, needle: &str) -> &'a Mention {
    s.mentions
        .iter()
        .find(|m| m.text.contains(needle))
        .unwrap_or_else(|| panic!("no mention with {needle:?}"))
}

#[test]
fn the_three_account_export_imports_with_tokens_statuses_and_cursors() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let report = import(&store, &main_sources(), false);
    assert_eq!(report.accounts.added, 3);
    assert_eq!(report.messages.added, 30);
    assert_eq!(report.processing_imported_as_error, 2);
    assert_eq!(report.skipped, 0);
    assert!(
        report.summary().ends_with(
            "imported 3 accounts, 30 messages (14 pending, 8 replied, 5 ignored, 3 error)"
        ),
        "{}",
        report.summary()
    );

    let s = snapshot(&store);
    let handles: Vec<String> = s.accounts.iter().map(Account::handle).collect();
    assert_eq!(handles, ["@lantern_ops", "@mara_quill", "@nimbus_help"]);
    let mara = &s.accounts[1];
    assert!(!mara.is_active);
    assert_eq!(mara.sync_status, SyncStatus::Paused, "paused stays paused");
    let lantern = &s.accounts[0];
    assert_eq!(lantern.sync_status, SyncStatus::Error);
    assert_eq!(
        lantern.id.to_string(),
        "4f6c2a1e-8d3b-4c5a-9e7f-1a2b3c4d5e03"
    );
    // Tokens are perch's token records; an expired one stays expired, for the first poll's
    // refresh to replace.
    let t = store.tokens(mara.id).unwrap().unwrap();
    assert_eq!(t.access_token.expose(), "AT-mara-fixture");
    assert_eq!(t.refresh_token.unwrap().expose(), "RT-mara-fixture");
    assert!(t.expires_at < now());
    assert!(
        store
            .tokens(lantern.id)
            .unwrap()
            .unwrap()
            .refresh_token
            .is_none()
    );

    assert_eq!(s.counts["all"], 30);
    assert_eq!(
        s.counts["@nimbus_help pending"]
            + s.counts["@mara_quill pending"]
            + s.counts["@lantern_ops pending"],
        14
    );
    for a in &s.accounts {
        let theirs: Vec<&Mention> = s
            .mentions
            .iter()
            .filter(|m| m.sent_to.account_id == a.id)
            .collect();
        let newest = theirs.iter().map(|m| m.tweet_id_u64()).max();
        assert_eq!(s.cursors[&a.handle()], newest, "cursor of {}", a.handle());
        let daily: u64 = s.daily[&a.handle()].iter().map(|d| d.1).sum();
        assert_eq!(daily, theirs.len() as u64);
        assert!(a.total_mentions_tracked >= theirs.len() as u64);
    }
    // `processing` → error, with the reason.
    let errors: Vec<&Mention> = s
        .mentions
        .iter()
        .filter(|m| m.status == MentionStatus::Error)
        .collect();
    assert_eq!(errors.len(), 3);
    let check_on_x = errors
        .iter()
        .filter(|m| m.error_message.as_deref() == Some("imported while sending: check on X"))
        .count();
    assert_eq!(check_on_x, 2);
    // Handles lose the old system's '@'; the message's own id is kept.
    let m0 = by_text(&s, "fixture message 0:");
    assert_eq!(m0.sender.username.as_deref(), Some("river_otter"));
    assert_eq!(m0.sent_to.username, "nimbus_help");
    assert_eq!(m0.id.to_string(), "009e0000-0000-0040-0080-000000000000");
}

#[test]
fn every_response_shape_is_read() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    import(&store, &main_sources(), false);
    let s = snapshot(&store);
    let replied: Vec<&Mention> = s
        .mentions
        .iter()
        .filter(|m| m.status == MentionStatus::Replied)
        .collect();
    assert_eq!(replied.len(), 8);
    // A plain string: the text, no id, sent at the message's updated_at.
    let plain = replied
        .iter()
        .find(|m| m.public_response.as_ref().is_some_and(|r| r.id.is_empty()))
        .expect("a string response");
    let r = plain.public_response.as_ref().unwrap();
    assert_eq!(r.text, "Thanks, we are on it!");
    assert_eq!(r.sent_at, plain.updated_at);
    // An object with an id and a time.
    let full = replied
        .iter()
        .find(|m| m.public_response.as_ref().is_some_and(|r| !r.id.is_empty()))
        .expect("an object response");
    let r = full.public_response.as_ref().unwrap();
    assert_eq!(r.text, "Fixed in 4.2.1, please update.");
    assert!(r.sent_at > full.timestamp);
    // An object with the text only, as a DM.
    let dm = replied
        .iter()
        .find(|m| m.dm_response.is_some())
        .expect("a DM response");
    assert_eq!(
        dm.dm_response.as_ref().unwrap().text,
        "Sent you a DM with the details."
    );
    assert!(dm.public_response.is_none());
    // null and absent are no response.
    let pending = by_text(&s, "fixture message 5:");
    assert!(pending.public_response.is_none() && pending.dm_response.is_none());
}

#[test]
fn canonical_arrays_import_the_same_as_relaxed_lines() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let relaxed = Store::open(a.path()).unwrap();
    let canonical = Store::open(b.path()).unwrap();
    let r1 = import(&relaxed, &main_sources(), false);
    let r2 = import(
        &canonical,
        &MongoSources {
            accounts: Some(fixture("array_canonical/accounts.json")),
            users: None,
            messages: fixture("array_canonical/messages.json"),
        },
        false,
    );
    assert_eq!(r1, r2);
    assert_eq!(snapshot(&relaxed), snapshot(&canonical));
}

#[test]
fn legacy_users_and_user_only_messages_are_tied_to_their_accounts() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let report = import(
        &store,
        &MongoSources {
            accounts: None,
            users: Some(fixture("legacy/users.json")),
            messages: fixture("legacy/messages.json"),
        },
        false,
    );
    assert_eq!(report.skipped, 0, "{:?}", report.skipped_lines);
    assert_eq!(report.accounts.added, 2);
    assert_eq!(report.messages.added, 6);
    assert_eq!(report.processing_imported_as_error, 1);
    let s = snapshot(&store);
    let harbor = s
        .accounts
        .iter()
        .find(|a| a.twitter_username == "old_harbor")
        .unwrap();
    // A users document has no account-management fields: active, synced never.
    assert!(harbor.is_active);
    assert_eq!(harbor.sync_status, SyncStatus::Active);
    assert_eq!(harbor.last_synced_at, None);
    // Message 2 names its account by the account id, the others by the X user id.
    let by_id = by_text(&s, "legacy message 2");
    assert_eq!(by_id.sent_to.account_id, harbor.id);
    assert_eq!(by_id.status, MentionStatus::Ignored);
    let fern_msgs = s
        .mentions
        .iter()
        .filter(|m| m.sent_to.username == "fern_and_moss")
        .count();
    assert_eq!(fern_msgs, 3);
    let plain = by_text(&s, "legacy message 1");
    assert_eq!(
        plain.public_response.as_ref().unwrap().text,
        "Old reply text, stored as a plain string"
    );
    let dm = by_text(&s, "legacy message 4");
    assert_eq!(
        dm.dm_response.as_ref().unwrap().text,
        "DM in an object with only a message key"
    );
    // The account without an `id` gets a stable one: a second import finds it again.
    let again = import(
        &store,
        &MongoSources {
            accounts: None,
            users: Some(fixture("legacy/users.json")),
            messages: fixture("legacy/messages.json"),
        },
        false,
    );
    assert!(!again.changed, "{}", again.summary());
}

#[test]
fn broken_lines_are_reported_with_file_and_line_and_the_rest_imported() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let report = import(
        &store,
        &MongoSources {
            accounts: Some(fixture("lines_relaxed/accounts.json")),
            users: None,
            messages: fixture("broken/messages.json"),
        },
        false,
    );
    let skipped: Vec<(u64, &str)> = report
        .skipped_lines
        .iter()
        .map(|s| {
            assert_eq!(s.file, "messages.json");
            (s.line, s.reason.as_str())
        })
        .collect();
    let lines: Vec<u64> = skipped.iter().map(|s| s.0).collect();
    assert_eq!(lines, vec![3, 5, 7, 9, 11], "{skipped:?}");
    assert!(skipped[0].1.starts_with("not JSON"), "{skipped:?}");
    assert_eq!(skipped[1].1, "no tweet_id");
    assert!(
        skipped[2].1.contains("unknown status \"archived\""),
        "{skipped:?}"
    );
    assert!(
        skipped[3].1.contains("neither in the files nor in perch"),
        "{skipped:?}"
    );
    assert!(skipped[4].1.starts_with("not JSON"), "{skipped:?}");
    assert_eq!(report.messages.added, 6);
    assert_eq!(store.count(&FeedFilter::default()).unwrap(), 6);
    assert!(
        report
            .summary()
            .contains("; skipped 5 (messages.json line 3: not JSON"),
        "{}",
        report.summary()
    );
}

#[test]
fn a_second_import_changes_nothing_and_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    import(&store, &main_sources(), false);
    let before = snapshot(&store);
    let again = import(&store, &main_sources(), false);
    assert!(!again.changed);
    assert_eq!(again.accounts.unchanged, 3);
    assert_eq!(again.messages.unchanged, 30);
    assert_eq!(again.messages.imported, 0);
    assert_eq!(
        again.summary(),
        "nothing to change: 3 accounts and 30 messages are already in perch"
    );
    assert_eq!(snapshot(&store), before);
}

#[test]
fn a_newer_local_status_is_kept_and_counted() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    import(&store, &main_sources(), false);
    let s = snapshot(&store);
    let pending = s
        .mentions
        .iter()
        .find(|m| m.status == MentionStatus::Pending)
        .unwrap();
    // Triaged in perch after the export was taken.
    store
        .set_status(pending.key(), MentionStatus::Ignored, now())
        .unwrap()
        .unwrap();
    // And an older version in perch that the file should replace.
    let replied = s
        .mentions
        .iter()
        .find(|m| m.status == MentionStatus::Replied)
        .unwrap();
    let mut stale = replied.clone();
    stale.status = MentionStatus::Pending;
    stale.public_response = None;
    stale.dm_response = None;
    stale.updated_at = replied.updated_at - chrono::Duration::days(1);
    store.update_mention(&stale).unwrap().unwrap();

    let report = import(&store, &main_sources(), false);
    assert_eq!(report.messages.kept_newer, 1);
    assert_eq!(report.messages.updated, 1);
    assert_eq!(report.messages.unchanged, 28);
    assert!(
        report
            .summary()
            .contains("kept perch's newer version of 0 accounts and 1 message"),
        "{}",
        report.summary()
    );
    let kept = store.mention(pending.key()).unwrap().unwrap();
    assert_eq!(kept.status, MentionStatus::Ignored);
    assert_eq!(store.mention(replied.key()).unwrap().unwrap(), *replied);
    // Counters moved with the statuses.
    let after = snapshot(&store);
    let ignored: u64 = after
        .counts
        .iter()
        .filter(|(k, _)| k.ends_with(" ignored"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(ignored, 6);
}

#[test]
fn a_dry_run_writes_nothing_and_reports_the_same() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let empty = snapshot(&store);
    let dry = import(&store, &main_sources(), true);
    assert_eq!(snapshot(&store), empty, "a dry run writes nothing");
    let real = import(&store, &main_sources(), false);
    assert_eq!(
        ImportReport {
            dry_run: false,
            ..dry.clone()
        },
        real
    );
    assert!(
        dry.summary().contains(
            "dry run, nothing written: would import 3 accounts, 30 messages (14 pending, 8 replied, 5 ignored, 3 error)"
        ),
        "{}",
        dry.summary()
    );
    let dry_again = import(&store, &main_sources(), true);
    assert!(!dry_again.changed);
}

#[test]
fn export_then_import_into_an_empty_store_gives_the_same_store() {
    let (a, b, out, out2) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let first = Store::open(a.path()).unwrap();
    import(&first, &main_sources(), false);
    import(
        &first,
        &MongoSources {
            accounts: None,
            users: Some(fixture("legacy/users.json")),
            messages: fixture("legacy/messages.json"),
        },
        false,
    );
    let written = interop::export_mongo(&first, out.path(), true).unwrap();
    assert_eq!((written.accounts, written.messages), (5, 36));

    let second = Store::open(b.path()).unwrap();
    let report = import(
        &second,
        &MongoSources {
            accounts: Some(out.path().join("accounts.json")),
            users: None,
            messages: out.path().join("messages.json"),
        },
        false,
    );
    assert_eq!(report.skipped, 0, "{:?}", report.skipped_lines);
    assert_eq!(report.processing_imported_as_error, 0);
    assert_eq!(snapshot(&second), snapshot(&first));
    for acc in first.accounts().unwrap() {
        let s1 = perch::stats::account_stats(&first, &acc, now()).unwrap();
        let s2 = perch::stats::account_stats(&second, &acc, now()).unwrap();
        assert_eq!(s1, s2);
        assert_eq!(
            first.first_seen(acc.id).unwrap(),
            second.first_seen(acc.id).unwrap()
        );
    }
    // And the second store exports byte for byte what the first did.
    interop::export_mongo(&second, out2.path(), true).unwrap();
    for f in ["accounts.json", "messages.json"] {
        assert_eq!(
            std::fs::read_to_string(out.path().join(f)).unwrap(),
            std::fs::read_to_string(out2.path().join(f)).unwrap(),
            "{f}"
        );
    }
}

#[test]
fn perch_native_mentions_round_trip_to_the_millisecond() {
    let (a, b, out) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let first = Store::open(a.path()).unwrap();
    let t = Utc.with_ymd_and_hms(2026, 2, 1, 10, 0, 0).unwrap()
        + chrono::Duration::nanoseconds(123_456_789);
    let mut acc = Account::new("42".into(), "native".into(), "Native".into(), None, t);
    acc.id = uuid::Uuid::from_u128(42);
    first.put_account(&acc).unwrap();
    let mut mentions = Vec::new();
    for i in 0..5u64 {
        let tweet = 1_890_000_000_000_000_000 + (i << 22);
        mentions.push(Mention {
            id: uuid::Uuid::from_u128(1000 + i as u128),
            tweet_id: tweet.to_string(),
            timestamp: perch::domain::snowflake_time(tweet).unwrap(),
            text: format!("@native post {i} with a \"quote\", a comma and é"),
            sender: perch::domain::Sender {
                twitter_id: Some("7".into()),
                username: Some("someone".into()),
                display_name: None,
                profile_image_url: None,
            },
            sent_to: perch::domain::SentTo::account(&acc),
            status: MentionStatus::ALL[i as usize % 5],
            public_response: None,
            dm_response: None,
            conversation_id: Some(tweet.to_string()),
            referenced_posts: vec![perch::domain::ReferencedPost {
                kind: perch::domain::ReferenceKind::RepliedTo,
                tweet_id: "5".into(),
                text: Some("the parent".into()),
                author_username: Some("parent".into()),
            }],
            error_message: None,
            created_at: t,
            updated_at: t,
        });
    }
    first.commit_page(acc.id, &mentions, None).unwrap();
    interop::export_mongo(&first, out.path(), false).unwrap();
    let second = Store::open(b.path()).unwrap();
    let report = import(
        &second,
        &MongoSources {
            accounts: Some(out.path().join("accounts.json")),
            users: None,
            messages: out.path().join("messages.json"),
        },
        false,
    );
    // perch's own `processing` mention cannot be resumed elsewhere either.
    assert_eq!(report.processing_imported_as_error, 1);
    let ms = |d: DateTime<Utc>| DateTime::from_timestamp_millis(d.timestamp_millis()).unwrap();
    let got = second.page_after(&FeedFilter::default(), None, 10).unwrap();
    let mut want = first.page_after(&FeedFilter::default(), None, 10).unwrap();
    for m in &mut want {
        m.created_at = ms(m.created_at);
        m.updated_at = ms(m.updated_at);
        if m.status == MentionStatus::Processing {
            m.status = MentionStatus::Error;
            m.error_message = Some("imported while sending: check on X".into());
        }
    }
    assert_eq!(got, want);
    let got_acc = second.account(acc.id).unwrap().unwrap();
    assert_eq!(got_acc.added_at, ms(acc.added_at));
    assert_eq!(got_acc.twitter_username, "native");
    assert!(
        second.tokens(acc.id).unwrap().is_none(),
        "no tokens without --include-tokens"
    );
}

#[test]
fn export_mentions_as_csv_and_json_lines_with_filters() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    import(&store, &main_sources(), false);
    let all = snapshot(&store);
    let nimbus = all
        .accounts
        .iter()
        .find(|a| a.twitter_username == "nimbus_help")
        .unwrap();

    let mut out = Vec::new();
    let n = interop::export_mentions(
        &store,
        &interop::MentionSelection {
            account: Some(nimbus.id),
            status: Some(MentionStatus::Pending),
            since: None,
        },
        interop::MentionFormat::Jsonl,
        &mut out,
    )
    .unwrap();
    let lines: Vec<Mention> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(n as usize, lines.len());
    let want: Vec<&Mention> = all
        .mentions
        .iter()
        .filter(|m| m.sent_to.account_id == nimbus.id && m.status == MentionStatus::Pending)
        .collect();
    assert_eq!(lines.iter().collect::<Vec<_>>(), want);

    let since = Utc.with_ymd_and_hms(2025, 11, 10, 0, 0, 0).unwrap();
    let mut out = Vec::new();
    let n = interop::export_mentions(
        &store,
        &interop::MentionSelection {
            since: Some(since),
            ..Default::default()
        },
        interop::MentionFormat::Csv,
        &mut out,
    )
    .unwrap();
    let mut reader = csv::Reader::from_reader(out.as_slice());
    let headers = reader.headers().unwrap().clone();
    assert_eq!(&headers[0], "id");
    assert!(headers.iter().any(|h| h == "text"));
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len() as u64, n);
    assert_eq!(
        n as usize,
        all.mentions.iter().filter(|m| m.timestamp >= since).count()
    );
    let text_col = headers.iter().position(|h| h == "text").unwrap();
    assert!(rows.iter().all(|r| r[text_col].contains("fixture message")));
}

// ---- the binary -------------------------------------------------------------------------------

struct Cli {
    dir: tempfile::TempDir,
}

impl Cli {
    fn new() -> Cli {
        Cli {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn run(&self, args: &[&str]) -> (i32, String, String) {
        let root = self.dir.path();
        let out = Command::new(env!("CARGO_BIN_EXE_perch"))
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", root.join("home"))
            .env("XDG_CONFIG_HOME", root.join("xdg-config"))
            .env("XDG_DATA_HOME", root.join("xdg-data"))
            .env("XDG_STATE_HOME", root.join("xdg-state"))
            .env("XDG_CACHE_HOME", root.join("xdg-cache"))
            // No PERCH_CONFIG: the (empty) XDG config directory gives the defaults silently.
            .env("PERCH_DATA_DIR", root.join("data"))
            .stdin(std::process::Stdio::null())
            .output()
            .expect("perch runs");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn cli_import_reports_exits_and_shows_in_accounts_stats() {
    let cli = Cli::new();
    let accounts = fixture("lines_relaxed/accounts.json");
    let messages = fixture("lines_relaxed/messages.json");
    let args = [
        "import",
        "mongo",
        "--accounts",
        path(&accounts),
        "--messages",
        path(&messages),
    ];
    let mut dry = args.to_vec();
    dry.push("--dry-run");
    let (code, out, err) = cli.run(&dry);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("dry run, nothing written: would import 3 accounts, 30 messages"),
        "{out}"
    );
    assert!(
        err.is_empty(),
        "no progress bar when stderr is not a terminal: {err}"
    );

    let (code, out, err) = cli.run(&args);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "2 messages were `processing` in the old system (a reply was being sent): imported as error with \"imported while sending: check on X\"\n\
         imported 3 accounts, 30 messages (14 pending, 8 replied, 5 ignored, 3 error)\n"
    );

    let (code, out, _) = cli.run(&["accounts", "list", "--include-inactive", "--json"]);
    assert_eq!(code, 0);
    let list: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(list["total"], 3);
    assert_eq!(list["paused_count"], 1);
    let (code, out, _) = cli.run(&["accounts", "stats", "@nimbus_help", "--json"]);
    assert_eq!(code, 0);
    let stats: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(stats["total_mentions"], 12);

    let mut json = args.to_vec();
    json.push("--json");
    let (code, out, err) = cli.run(&json);
    assert_eq!(code, 0, "a re-run that changes nothing succeeds: {err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["changed"], false);
    assert_eq!(report["messages"]["unchanged"], 30);
    assert_eq!(report["skipped"], 0);
}

#[test]
fn cli_import_exits_1_on_skipped_lines_and_2_on_usage_errors() {
    let cli = Cli::new();
    let accounts = fixture("lines_relaxed/accounts.json");
    let broken = fixture("broken/messages.json");
    let (code, out, err) = cli.run(&[
        "import",
        "mongo",
        "--accounts",
        path(&accounts),
        "--messages",
        path(&broken),
        "--json",
    ]);
    assert_eq!(code, 1, "{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["skipped"], 5);
    assert_eq!(report["skipped_lines"][0]["file"], "messages.json");
    assert_eq!(report["skipped_lines"][0]["line"], 3);
    assert_eq!(report["messages"]["added"], 6);
    assert!(err.contains("5 lines were skipped"), "{err}");

    let (code, _, err) = cli.run(&["import", "mongo", "--accounts", path(&accounts)]);
    assert_eq!(code, 2, "--messages is required: {err}");
    let (code, _, err) = cli.run(&[
        "import",
        "mongo",
        "--messages",
        "/nonexistent/messages.json",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("cannot open /nonexistent/messages.json"),
        "{err}"
    );
}

#[cfg(unix)]
#[test]
fn cli_export_with_tokens_writes_0600_files_and_warns() {
    use std::os::unix::fs::PermissionsExt;
    let cli = Cli::new();
    let accounts = fixture("lines_relaxed/accounts.json");
    let messages = fixture("lines_relaxed/messages.json");
    let (code, _, err) = cli.run(&[
        "import",
        "mongo",
        "--accounts",
        path(&accounts),
        "--messages",
        path(&messages),
    ]);
    assert_eq!(code, 0, "{err}");

    let plain = cli.dir.path().join("plain");
    let (code, out, err) = cli.run(&["export", "mongo", "--out", path(&plain)]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("exported 3 accounts and 30 messages"), "{out}");
    let text = std::fs::read_to_string(plain.join("accounts.json")).unwrap();
    assert!(!text.contains("AT-nimbus-fixture") && !text.contains("access_token"));
    assert!(err.is_empty(), "{err}");

    let secret = cli.dir.path().join("secret");
    let (code, _, err) = cli.run(&[
        "export",
        "mongo",
        "--out",
        path(&secret),
        "--include-tokens",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("warning") && err.contains("tokens"), "{err}");
    for f in ["accounts.json", "messages.json"] {
        let mode = std::fs::metadata(secret.join(f))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "{f}");
    }
    let text = std::fs::read_to_string(secret.join("accounts.json")).unwrap();
    assert!(text.contains("AT-nimbus-fixture"));
    // One relaxed Extended JSON document per line.
    for line in text.lines() {
        let doc: Value = serde_json::from_str(line).unwrap();
        assert!(doc["created_at"]["$date"].is_string(), "{line}");
        assert!(doc["_id"]["$oid"].is_string(), "{line}");
    }

    let (code, out, err) = cli.run(&[
        "export", "mentions", "--format", "csv", "--status", "ignored",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 1 + 5, "{out}");
    let (code, _, err) = cli.run(&[
        "export",
        "mentions",
        "--format",
        "jsonl",
        "--since",
        "yesterday",
    ]);
    assert_eq!(code, 2, "{err}");
}

/// A file far longer than what the reading thread hands over at a time (chunks of 256
/// documents, a few in flight): broken lines at chunk edges and in the middle are listed in
/// file order with their line numbers, every other message is imported once, and the counts,
/// cursor and report are the same whatever the batch size (and in a dry run).
#[test]
fn a_long_file_read_ahead_in_chunks_imports_in_file_order() {
    use std::io::Write;
    const MESSAGES: u64 = 3_000;
    let broken = [1u64, 256, 257, 1_000, 1_537, 2_999, MESSAGES];
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("messages.json");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&file).unwrap());
    let first_tweet: u64 = 1_984_545_978_446_774_272;
    for line in 1..=MESSAGES {
        if broken.contains(&line) {
            writeln!(out, "{{\"tweet_id\": \"{line}\", \"status\": ").unwrap();
            continue;
        }
        let doc = serde_json::json!({
            "_id": {"$oid": format!("65a1b2c3d4e5f6{line:010x}")},
            "tweet_id": (first_tweet + line).to_string(),
            "timestamp": {"$date": "2025-11-01T09:00:07.000Z"},
            // An escaped quote and a non-ASCII escape: not borrowed from the line.
            "text": format!("@nimbus_help long file \"message\" {line} caf\u{e9}"),
            "sender": {"twitter_id": "1810000000000000011", "username": "@river_otter"},
            "sent_to": {"twitter_id": "1720000000000000001", "username": "@nimbus_help"},
            "status": if line % 3 == 0 { "replied" } else { "pending" },
            "public_response": if line % 3 == 0 { Value::from("thanks") } else { Value::Null },
        });
        writeln!(out, "{doc}").unwrap();
    }
    out.flush().unwrap();
    drop(out);
    let sources = MongoSources {
        accounts: Some(fixture("lines_relaxed/accounts.json")),
        users: None,
        messages: file,
    };
    let good = MESSAGES - broken.len() as u64;
    let mut reports = Vec::new();
    for (batch, dry_run) in [
        (7, true),
        (7, false),
        (interop::import::IMPORT_BATCH, false),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let options = ImportOptions { dry_run, batch };
        let report = interop::import_mongo(&store, &sources, options, now(), &mut Quiet)
            .expect("import runs");
        let lines: Vec<u64> = report.skipped_lines.iter().map(|s| s.line).collect();
        assert_eq!(lines, broken, "{:?}", report.skipped_lines);
        assert!(
            report
                .skipped_lines
                .iter()
                .all(|s| s.reason.starts_with("not JSON")),
            "{:?}",
            report.skipped_lines
        );
        assert_eq!(report.messages.added, good);
        let stored = store.count(&FeedFilter::default()).unwrap();
        if dry_run {
            assert_eq!(stored, 0, "a dry run writes nothing");
        } else {
            assert_eq!(stored, good);
            let nimbus = store
                .accounts()
                .unwrap()
                .into_iter()
                .find(|a| a.twitter_id == "1720000000000000001")
                .unwrap();
            assert_eq!(
                store.cursor(nimbus.id).unwrap(),
                Some(first_tweet + MESSAGES - 2),
                "the cursor is the newest imported tweet (the last two lines are broken)"
            );
            let m = store
                .mention(perch::domain::MentionKey {
                    account_id: nimbus.id,
                    tweet_id: first_tweet + 2,
                })
                .unwrap()
                .unwrap();
            assert_eq!(m.text, "@nimbus_help long file \"message\" 2 caf\u{e9}");
        }
        reports.push(report);
    }
    let replied = (1..=MESSAGES)
        .filter(|l| l % 3 == 0 && !broken.contains(l))
        .count() as u64;
    for r in &reports {
        assert_eq!(r.messages.by_status.replied, replied);
        assert_eq!(r.messages.by_status.pending, good - replied);
        assert_eq!(r.skipped, broken.len() as u64);
    }
    assert_eq!(
        reports[1], reports[2],
        "the batch size changes nothing reported"
    );
}
