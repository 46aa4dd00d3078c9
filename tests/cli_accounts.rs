//! The account commands end to end: the real `perch` binary against a simulator started here.
//! `perch login --headless` (the URL read from its own line, approved over HTTP, the redirect
//! written to the child's stdin), then `accounts list/show/pause/resume/stats/remove`, the JSON
//! shapes the issue fixes, naming by @handle/handle/id, exit codes 0/1/2, and the message a
//! command gets while another perch holds the store.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Output;

use perch::sim::{self, SimConfig, SimHandle};
use serde_json::Value;
use tokio::process::Command;

#[path = "support/cli.rs"]
mod cli;
#[path = "support/sim_env.rs"]
mod sim_env;

struct Env {
    sim: SimHandle,
    dir: tempfile::TempDir,
}

impl Env {
    async fn start() -> Env {
        let sim = sim::start(SimConfig::for_tests(5), 0)
            .await
            .expect("simulator starts");
        Env {
            sim,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn data_dir(&self) -> std::path::PathBuf {
        self.dir.path().join("data")
    }

    /// `perch ARGS` with the environment pointing at the simulator and temporary directories.
    fn command(&self, args: &[&str]) -> Command {
        cli::perch_command(self.dir.path(), &self.data_dir(), &self.sim, args)
    }

    async fn run(&self, args: &[&str]) -> Output {
        cli::run(self.command(args), args).await
    }

    /// Runs and expects exit code 0; returns stdout.
    async fn ok(&self, args: &[&str]) -> String {
        cli::expect_ok(&self.run(args).await, args)
    }

    async fn json(&self, args: &[&str]) -> Value {
        cli::parse_json(&self.ok(args).await, args)
    }

    /// `perch login --headless` as a script would do it: read the URL from its own line, approve
    /// as `user` over HTTP (without following the redirect), paste the redirect address.
    async fn login(&self, user: &str) -> String {
        let (ok, said) = self.headless(&["login", "--headless"], Some(user)).await;
        assert!(ok, "login failed: {said}");
        said
    }

    /// Runs a headless login command (`args`), opens its URL as the "browser" logged in to X as
    /// `user` (`None`: the URL exactly as printed), pastes the redirect back. Returns whether it
    /// succeeded, and everything it printed after the URL (stdout, then stderr).
    async fn headless(&self, args: &[&str], user: Option<&str>) -> (bool, String) {
        cli::headless_login(self.command(args), &self.sim.authorize_url(), user).await
    }
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .cloned()
        .collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

fn handles(list: &Value) -> Vec<String> {
    list["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["twitter_username"].as_str().unwrap().to_string())
        .collect()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_commands_end_to_end() {
    let env = Env::start().await;

    // An empty store lists nothing, in the documented shape.
    let list = env.json(&["accounts", "list", "--json"]).await;
    assert_eq!(
        keys(&list),
        set(&["accounts", "total", "active_count", "paused_count"])
    );
    assert_eq!(list["total"], 0);

    // Log in two accounts the way a script would.
    let said = env.login("nimbusnotes").await;
    assert!(said.contains("added @nimbusnotes"), "{said}");
    let said = env.login("mara_quill").await;
    assert!(said.contains("added @mara_quill"), "{said}");
    // Logging in again as a tracked user is a reauthorization, not a second account.
    let said = env.login("mara_quill").await;
    assert!(said.contains("reauthorized @mara_quill"), "{said}");

    let list = env.json(&["accounts", "list", "--json"]).await;
    assert_eq!(list["total"], 2);
    assert_eq!(list["active_count"], 2);
    assert_eq!(list["paused_count"], 0);
    assert_eq!(handles(&list), ["mara_quill", "nimbusnotes"]);
    let account = &list["accounts"][0];
    assert_eq!(
        keys(account),
        set(&[
            "id",
            "twitter_id",
            "twitter_username",
            "display_name",
            "profile_image_url",
            "is_active",
            "sync_status",
            "error_message",
            "added_at",
            "last_synced_at",
            "total_mentions_tracked",
            "created_at",
            "updated_at",
        ]),
        "the data model's names, and never a token"
    );
    assert_eq!(account["sync_status"], "active");
    let mara_id = account["id"].as_str().unwrap().to_string();

    // Accounts are named by @handle, handle or id.
    for name in ["@mara_quill", "mara_quill", "MARA_QUILL", mara_id.as_str()] {
        let shown = env.json(&["accounts", "show", name, "--json"]).await;
        assert_eq!(shown["id"], mara_id.as_str(), "{name}");
    }
    let text = env.ok(&["accounts", "show", "@mara_quill"]).await;
    assert!(
        text.contains("@mara_quill") && text.contains("active"),
        "{text}"
    );

    // Fetch, so the stats have something to count. Only the named account is polled.
    env.ok(&["mentions", "fetch", "--account", "@nimbusnotes"])
        .await;
    let polled: std::collections::BTreeSet<String> = env
        .sim
        .control()
        .request_log()
        .into_iter()
        .filter(|r| r.path.ends_with("/mentions"))
        .filter_map(|r| r.username)
        .collect();
    assert_eq!(
        polled.into_iter().collect::<Vec<_>>(),
        vec!["nimbusnotes".to_string()],
        "fetch --account polls that account only"
    );
    let stats = env
        .json(&["accounts", "stats", "@nimbusnotes", "--json"])
        .await;
    assert_eq!(
        keys(&stats),
        set(&[
            "account_id",
            "username",
            "total_mentions",
            "pending_mentions",
            "replied_mentions",
            "tracked_since",
            "days_tracked",
            "mentions_while_tracked",
            "avg_mentions_per_day",
            "last_synced",
            "sync_status",
            "is_active",
        ])
    );
    assert_eq!(stats["username"], "nimbusnotes");
    let fetched = env.sim.control().mention_count("nimbusnotes").unwrap() as u64;
    assert!(fetched > 0);
    assert_eq!(stats["total_mentions"].as_u64(), Some(fetched));
    assert_eq!(stats["pending_mentions"].as_u64(), Some(fetched));
    assert_eq!(stats["replied_mentions"], 0);
    assert_eq!(stats["days_tracked"], 1);
    // The average is over the mentions posted since the account was added, not the backlog.
    let while_tracked = stats["mentions_while_tracked"].as_u64().unwrap();
    assert!(while_tracked <= fetched);
    assert_eq!(
        stats["avg_mentions_per_day"].as_f64(),
        Some(while_tracked as f64)
    );
    assert!(stats["last_synced"].is_string());
    assert_eq!(stats["is_active"], true);
    let text = env.ok(&["accounts", "stats", "nimbusnotes"]).await;
    assert!(
        text.contains(&format!("total mentions     {fetched}")),
        "{text}"
    );

    // Pause: out of the default list, counted as paused; resume brings it back.
    let said = env.ok(&["accounts", "pause", "@mara_quill"]).await;
    assert!(said.contains("paused @mara_quill"), "{said}");
    let list = env.json(&["accounts", "list", "--json"]).await;
    assert_eq!(handles(&list), ["nimbusnotes"]);
    assert_eq!(
        (&list["total"], &list["active_count"], &list["paused_count"]),
        (&Value::from(2), &Value::from(1), &Value::from(1))
    );
    let list = env
        .json(&["accounts", "list", "--include-inactive", "--json"])
        .await;
    assert_eq!(handles(&list), ["mara_quill", "nimbusnotes"]);
    let paused = &list["accounts"][0];
    assert_eq!(
        (&paused["is_active"], &paused["sync_status"]),
        (&Value::from(false), &Value::from("paused"))
    );
    let text = env.ok(&["accounts", "list"]).await;
    assert!(
        text.contains("1 paused") && text.contains("--include-inactive"),
        "{text}"
    );
    env.ok(&["accounts", "resume", "mara_quill"]).await;
    let shown = env
        .json(&["accounts", "show", "@mara_quill", "--json"])
        .await;
    assert_eq!(
        (&shown["is_active"], &shown["sync_status"]),
        (&Value::from(true), &Value::from("active"))
    );

    // Unknown accounts fail (1) and list the known handles.
    let out = env.run(&["accounts", "show", "@nobody"]).await;
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("@nobody") && err.contains("@mara_quill") && err.contains("@nimbusnotes"),
        "{err}"
    );
    let out = env.run(&["accounts", "pause", "ghost"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));

    // Bad usage is 2.
    for args in [
        &["accounts", "frobnicate"][..],
        &["accounts", "show"][..],
        &["accounts", "list", "--no-such-flag"][..],
    ] {
        let out = env.run(args).await;
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
    }

    // Removing without a terminal to confirm on needs --yes.
    let out = env.run(&["accounts", "remove", "@mara_quill"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("--yes"), "{}", stderr(&out));

    // Remove keeping mentions, then remove deleting them. The removed account's grant is
    // revoked at X: its access token no longer works there.
    let mara_tokens = {
        let store = perch::store::Store::open(&env.data_dir()).expect("read the store");
        let mara = store
            .accounts()
            .unwrap()
            .into_iter()
            .find(|a| a.twitter_username == "mara_quill")
            .expect("mara_quill is stored");
        store.tokens(mara.id).unwrap().expect("mara_quill's tokens")
    };
    assert_eq!(
        sim_env::users_me(&env.sim, &mara_tokens).await,
        200,
        "a live grant first"
    );
    env.ok(&["accounts", "remove", "@mara_quill", "--yes"])
        .await;
    assert_eq!(
        sim_env::users_me(&env.sim, &mara_tokens).await,
        401,
        "the removed account's grant was not revoked at X"
    );
    let said = env
        .ok(&[
            "accounts",
            "remove",
            "@nimbusnotes",
            "--delete-mentions",
            "--yes",
        ])
        .await;
    assert!(said.contains(&format!("its {fetched} mentions")), "{said}");
    let list = env
        .json(&["accounts", "list", "--include-inactive", "--json"])
        .await;
    assert_eq!(list["total"], 0);
    // nimbusnotes' mentions went with it; whatever mara_quill had is kept.
    let mentions = env
        .json(&["mentions", "list", "--limit", "1000", "--json"])
        .await;
    let to: Vec<&str> = mentions["mentions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["sent_to"]["username"].as_str().unwrap())
        .collect();
    assert!(to.iter().all(|u| *u == "@mara_quill"), "{to:?}");

    // While another perch holds the store, a command says so and what to do.
    let held = perch::store::Store::open(&env.data_dir()).expect("hold the store");
    let out = env.run(&["accounts", "list", "--json"]).await;
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("in use by another perch process") && err.contains("quit that perch"),
        "{err}"
    );
    assert!(out.stdout.is_empty(), "no half output on stdout");
    drop(held);
    assert!(Path::new(&env.data_dir()).is_dir());
    env.sim.shutdown().await;
}

/// Repro of issue 9 item 8: `perch accounts reauthorize @h --headless` against the simulator
/// logged in as another account, updated that one, and exited 1. Now the authorize page is asked
/// for @h, and a login that comes back as anyone else changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reauthorize_logs_in_as_that_account_or_changes_nothing() {
    let env = Env::start().await;
    env.login("nimbusnotes").await;
    env.login("mara_quill").await;
    let before = env
        .json(&["accounts", "show", "@nimbusnotes", "--json"])
        .await;

    // The URL opened as printed: the page is asked for @mara_quill (the simulator's first user
    // is someone else).
    let (ok, said) = env
        .headless(
            &["accounts", "reauthorize", "@mara_quill", "--headless"],
            None,
        )
        .await;
    assert!(ok, "{said}");
    assert!(said.contains("reauthorized @mara_quill"), "{said}");

    // The browser is logged in to X as @nimbusnotes whatever perch asked for.
    let (ok, said) = env
        .headless(
            &["accounts", "reauthorize", "@mara_quill", "--headless"],
            Some("nimbusnotes"),
        )
        .await;
    assert!(!ok, "{said}");
    assert!(
        said.contains("the login was for @nimbusnotes, not @mara_quill: nothing was changed"),
        "{said}"
    );
    let after = env
        .json(&["accounts", "show", "@nimbusnotes", "--json"])
        .await;
    assert_eq!(before, after, "the other account is untouched");
    let list = env.json(&["accounts", "list", "--json"]).await;
    assert_eq!(list["total"], 2);
}

/// Issue 9: `accounts list --demo` printed a Rust debug string in its usage error; a
/// `PERCH_CONFIG` naming a missing file was ignored without a word.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_errors_are_sentences_and_a_missing_config_is_told_once() {
    let env = Env::start().await;
    for args in [
        &["accounts", "list", "--demo"][..],
        &["--demo", "accounts", "list"],
    ] {
        let out = env.run(args).await;
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let said = stderr(&out);
        assert!(
            !said.contains("Accounts(") && !said.contains("List {"),
            "{said}"
        );
    }
    let help = env.run(&["accounts", "list", "--help"]).await;
    assert!(
        !String::from_utf8_lossy(&help.stdout).contains("--demo "),
        "--demo is the dashboard's"
    );
    // The environment points PERCH_CONFIG at a file that does not exist.
    let out = env.run(&["accounts", "list"]).await;
    assert_eq!(out.status.code(), Some(0));
    let said = stderr(&out);
    assert_eq!(said.matches("PERCH_CONFIG names").count(), 1, "{said}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("PERCH_CONFIG"));
}
