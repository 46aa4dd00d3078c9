//! After an import, perch starts working at once (issue 13): the imported tokens are used (an
//! expired access token is refreshed on the first poll, with no new login), and the first poll
//! asks X only for what is newer than the newest imported mention.

#[path = "support/sync.rs"]
mod support;

use std::time::Duration;

use chrono::Utc;
use perch::domain::SyncStatus;
use perch::interop::{self, ImportOptions, MongoSources, Quiet};
use perch::sync::SyncSettings;
use serde_json::Value;
use support::{Harness, fast_settings, query_param, sim_config};

const TIMEOUT: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_imported_account_polls_from_its_newest_mention_with_its_refreshed_token() {
    let h = Harness::start(sim_config(1, 30), TIMEOUT).await;
    let once = SyncSettings {
        poll_interval: Duration::from_secs(3600),
        ..fast_settings()
    };
    // History made by a first perch: 30 mentions, then exported with the tokens.
    let engine = h.engine(once.clone());
    h.wait_until("the backlog", |h| {
        h.stored(0) == 30 && h.cursor(0).is_some()
    })
    .await;
    h.wait_for_status(0, SyncStatus::Active).await;
    engine.stop().await;
    let newest = h.cursor(0).unwrap();
    let out = h.dir.path().join("export");
    interop::export_mongo(&h.store, &out, true).unwrap();

    // The old system's access token has expired by the time of the move.
    let accounts = out.join("accounts.json");
    let mut doc: Value =
        serde_json::from_str(std::fs::read_to_string(&accounts).unwrap().trim()).unwrap();
    doc["token_expires_at"] = serde_json::json!({ "$date": "2025-01-01T00:00:00Z" });
    std::fs::write(&accounts, format!("{doc}\n")).unwrap();

    // A perch with nothing in it imports the export.
    let id = h.accounts[0].id;
    h.store.remove_account(id, true).unwrap();
    assert_eq!(h.stored(0), 0);
    let report = interop::import_mongo(
        &h.store,
        &MongoSources {
            accounts: Some(accounts),
            users: None,
            messages: out.join("messages.json"),
        },
        ImportOptions::default(),
        Utc::now(),
        &mut Quiet,
    )
    .unwrap();
    assert_eq!((report.accounts.added, report.messages.added), (1, 30));
    assert_eq!(h.cursor(0), Some(newest));
    assert!(h.store.tokens(id).unwrap().unwrap().expires_at < Utc::now());

    h.control.generate_mentions_for("user00", 5).unwrap();
    let refreshes_before = h.refreshes(0);
    let requests_before = h.mention_requests(0).len();
    let engine = h.engine(once);
    h.wait_until("the five new mentions", |h| h.stored(0) == 35)
        .await;
    h.wait_for_status(0, SyncStatus::Active).await;
    let log = h.mention_requests(0);
    let first = &log[requests_before];
    assert_eq!(
        query_param(first, "since_id").and_then(|s| s.parse::<u64>().ok()),
        Some(newest),
        "the first poll after the import asks only for newer mentions"
    );
    assert!(
        h.refreshes(0) > refreshes_before,
        "the expired imported token was refreshed"
    );
    engine.stop().await;
}
