//! The `on_new_mentions` hook end to end: a perch service polling the simulator, a new mention
//! injected there, and a script that writes down what it was given (its environment and the JSON
//! on its stdin). And a failing hook: shown once, with its exit code, until it works again.
//! No timed assertions: every wait is on a condition, with a generous limit.

#[path = "support/api.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use perch::cli::App;
use perch::service::{RunningService, ServiceEvent};
use perch::sim::{self, SimConfig, SimHandle};
use perch::sync::SyncEvent;
use serde_json::Value;

const GENEROUS: Duration = Duration::from_secs(120);
/// The simulator's first configured user (`SimControl::users()[0]`).
const SIM_FIRST_USER: &str = support::BRAND;

struct World {
    sim: SimHandle,
    _dir: tempfile::TempDir,
    service: Option<RunningService>,
    users: Vec<String>,
}

/// A simulator, its users logged in, and a service whose hook is `hook`, polling every second;
/// returns once every account's first sync (which notifies nothing) is done.
/// `only`: the hook is that account's own (`[accounts.<only>] notify = { on_new_mentions }`),
/// and the others have none; `None`: the global `[notify] on_new_mentions`.
async fn start(seed: u64, hook: String, only: Option<&str>) -> World {
    let mut sim_config = SimConfig::for_tests(seed);
    sim_config.backlog_per_user = 3;
    let sim = sim::start(sim_config, 0).await.expect("simulator starts");
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = support::config(&dir, &sim);
    config.poll_interval_secs = 1;
    match only {
        None => config.notify.on_new_mentions = Some(hook),
        Some(handle) => {
            config.notify.accounts.insert(
                handle.to_string(),
                perch::notify::AccountNotify {
                    on_new_mentions: Some(hook),
                    ..Default::default()
                },
            );
        }
    }
    config.notify.hook_timeout = Duration::from_secs(60);
    let app = match App::open(&config).await {
        Ok(app) => app,
        Err(f) => panic!("cannot open perch: {}", f.message),
    };
    let users: Vec<String> = sim
        .control()
        .users()
        .into_iter()
        .map(|u| u.username)
        .collect();
    if let Err(f) = perch::cli::add_sim_accounts(&app, &users).await {
        panic!("cannot add the accounts: {}", f.message);
    }
    let service = match perch::service::start(config, Some(app.store)).await {
        Ok(s) => s,
        Err(e) => panic!("the service does not start: {e}"),
    };
    let store = service.hub.sled_store().unwrap();
    wait_for("every account's first sync", || {
        store
            .accounts()
            .map(|all| !all.is_empty() && all.iter().all(|a| a.last_synced_at.is_some()))
            .unwrap_or(false)
    })
    .await;
    World {
        sim,
        _dir: dir,
        service: Some(service),
        users,
    }
}

impl World {
    async fn stop(mut self) {
        if let Some(service) = self.service.take() {
            service.shutdown().await;
        }
        self.sim.shutdown().await;
    }
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + GENEROUS;
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "gave up waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The hook's finished runs: (environment lines, stdin JSON), in no particular order.
fn runs(dir: &Path) -> Vec<(Vec<String>, Value)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some("env") {
            continue;
        }
        let env = std::fs::read_to_string(&path).unwrap();
        let json = std::fs::read_to_string(path.with_extension("json")).unwrap();
        out.push((
            env.lines().map(str::to_string).collect(),
            serde_json::from_str(&json)
                .unwrap_or_else(|e| panic!("stdin is not JSON ({e}): {json}")),
        ));
    }
    out
}

fn write_script(dir: &Path) -> PathBuf {
    let script = dir.join("hook.sh");
    // stdin first, then the environment; each file appears whole (rename), the .env last.
    std::fs::write(
        &script,
        "#!/bin/sh\nout=\"$1/run-$$\"\ncat > \"$out.json.part\"\n\
         printf '%s\\n%s\\n%s\\n%s\\n' \"$PERCH_ACCOUNT\" \"$PERCH_COUNT\" \"$PERCH_MENTION_IDS\" \"${PERCH_LEAK_PROBE:-unset}\" > \"$out.env.part\"\n\
         mv \"$out.json.part\" \"$out.json\"\nmv \"$out.env.part\" \"$out.env\"\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o700)).unwrap();
    script
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_new_mentions_runs_the_hook_once_with_the_mentions() {
    let out = tempfile::tempdir().unwrap();
    let script = write_script(out.path());
    // A setting of perch's in the service's environment (as a secret like
    // PERCH_CLIENT_SECRET would be): the hook must not see it.
    // SAFETY: set before the service (and its threads that spawn hooks) starts; nothing in
    // this test binary reads this variable otherwise.
    unsafe { std::env::set_var("PERCH_LEAK_PROBE", "leaked") };
    let world = start(
        71,
        format!("{} {}", script.display(), out.path().display()),
        None,
    )
    .await;
    assert!(
        runs(out.path()).is_empty(),
        "the first sync notifies nothing"
    );

    let to = world.users[0].clone();
    let control = world.sim.control();
    let first = control
        .inject_mention(&to, None, "is the \u{1b}[2Jexport fixed?")
        .unwrap();
    let second = control.inject_mention(&to, None, "same question").unwrap();
    wait_for("the hook's run", || !runs(out.path()).is_empty()).await;

    // Another account's mention: its own burst, its own run. Once that has run, the first
    // burst has long closed, so its one run is all it made.
    let other = world.users[1].clone();
    let third = control.inject_mention(&other, None, "hello").unwrap();
    let has = |env: &Vec<String>, id: &str| env[2].split(',').any(|i| i == id);
    wait_for("the second account's run", || {
        runs(out.path()).iter().any(|(env, _)| has(env, &third))
    })
    .await;
    // Runs for anything else the simulator stored meanwhile are not this test's business; of
    // the injected mentions, each is in exactly one run, and the first account's two in the same.
    let all = runs(out.path());
    for id in [&first, &second, &third] {
        let with = all.iter().filter(|(env, _)| has(env, id)).count();
        assert_eq!(with, 1, "one run per burst: {all:?}");
    }

    let (env, doc) = all
        .iter()
        .find(|(env, _)| has(env, &first))
        .unwrap_or_else(|| panic!("no run for @{to}: {all:?}"));
    assert_eq!(env[0], format!("@{to}"));
    assert_eq!(env[1], "2", "PERCH_COUNT: {env:?}");
    assert_eq!(
        env[3], "unset",
        "perch's own PERCH_ settings are not passed to hooks"
    );
    // Newest first: by post id, which orders by time (two posts of the same instant may come
    // either way round).
    let mut ids = [first.clone(), second.clone()];
    ids.sort_by_key(|id| std::cmp::Reverse(id.parse::<u64>().unwrap()));
    assert_eq!(env[2], ids.join(","), "PERCH_MENTION_IDS");
    assert_eq!(doc["account"], format!("@{to}"));
    assert_eq!(doc["count"], 2);
    let mentions = doc["mentions"].as_array().unwrap();
    assert_eq!(mentions.len(), 2, "{doc}");
    assert_eq!(mentions[0]["tweet_id"], ids[0]);
    assert_eq!(mentions[1]["tweet_id"], ids[1]);
    let text_of_first = mentions
        .iter()
        .find(|m| m["tweet_id"] == first)
        .and_then(|m| m["text"].as_str())
        .unwrap();
    // The JSON carries the text as stored (a hook may want it verbatim); the desktop
    // notification is what sanitises.
    assert!(text_of_first.contains("export fixed?"), "{doc}");
    assert_eq!(mentions[0]["sent_to"]["username"], format!("@{to}"));

    let (env, doc) = all
        .iter()
        .find(|(env, _)| has(env, &third))
        .expect("a run for the second account");
    assert_eq!(env[0], format!("@{other}"));
    assert_eq!(env[1], "1");
    assert_eq!(env[2], third);
    assert_eq!(doc["mentions"][0]["tweet_id"], third);
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_hook_is_shown_once_with_its_exit_code_until_it_works_again() {
    let out = tempfile::tempdir().unwrap();
    let log = out.path().join("runs");
    // Fails (exit 7) on its first two runs, then succeeds.
    let hook = format!(
        "n=$(cat {log} 2>/dev/null | wc -l); echo \"$PERCH_ACCOUNT $PERCH_COUNT $PERCH_MENTION_IDS\" >> {log}; [ \"$n\" -ge 2 ] && exit 0; exit 7",
        log = log.display()
    );
    // Only the account the test writes to has the hook: a mention of another account that the
    // simulator makes visible late (its backlog) cannot run it.
    let world = start(72, hook, Some(SIM_FIRST_USER)).await;
    let hub = &world.service.as_ref().unwrap().hub;
    let mut events = hub.subscribe();
    let to = world.users[0].clone();
    assert_eq!(to, SIM_FIRST_USER);
    let control = world.sim.control();
    let run_count = || {
        std::fs::read_to_string(&log)
            .map(|t| t.lines().count())
            .unwrap_or(0)
    };
    // A dashboard that attaches while the hook is failing is told as it attaches.
    let standing = || {
        hub.live_events().iter().any(|e| {
            matches!(e, ServiceEvent::Sync(SyncEvent::Notice { message, .. })
                if message.contains("exit code 7"))
        })
    };
    for burst in 1..=3 {
        control
            .inject_mention(&to, None, &format!("burst {burst}"))
            .unwrap();
        wait_for("the hook's run", || run_count() >= burst).await;
        if burst == 2 {
            wait_for("the failure to stand for new clients", standing).await;
        }
    }
    // Every notice about the hook, up to the one saying it works again (published after the
    // third run, so the first two runs' notices, if any, came before it).
    let mut notices = Vec::new();
    let collected = tokio::time::timeout(GENEROUS, async {
        loop {
            match events.recv().await {
                Ok(ServiceEvent::Sync(SyncEvent::Notice { message, .. }))
                    if message.contains("on_new_mentions") =>
                {
                    let done = message == "the on_new_mentions hook works again";
                    notices.push(message);
                    if done {
                        break;
                    }
                }
                Ok(_) => {}
                Err(e) => panic!("events ended: {e}"),
            }
        }
    })
    .await;
    assert!(collected.is_ok(), "no 'works again' notice: {notices:?}");
    assert_eq!(notices.len(), 2, "{notices:?}");
    assert!(
        notices[0].contains("exit code 7") && notices[0].contains(&format!("@{to}")),
        "to @{to}: {notices:?}; runs: {:?}",
        std::fs::read_to_string(&log)
    );
    assert_eq!(run_count(), 3);
    assert!(
        !standing(),
        "once it works, new clients are not told of the old failure"
    );
    world.stop().await;
}

/// Is `pid` a live process (not gone, not a zombie waiting to be reaped)?
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            // "pid (comm) S ...": the state follows the last ')'.
            let after = &stat[stat.rfind(')')? + 1..];
            after.split_whitespace().next().map(|s| s != "Z")
        })
        .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hook_that_hangs_holds_up_nothing_and_dies_with_the_service() {
    let out = tempfile::tempdir().unwrap();
    let pid_file = out.path().join("pid");
    // Writes its pid, then becomes a sleep that outlives the test unless perch kills it.
    let hook = format!("echo $$ > {}; exec sleep 600", pid_file.display());
    let world = start(73, hook, Some(SIM_FIRST_USER)).await;
    let to = world.users[0].clone();
    let control = world.sim.control();
    control.inject_mention(&to, None, "first").unwrap();
    wait_for("the hook to start", || {
        std::fs::read_to_string(&pid_file).is_ok_and(|t| !t.trim().is_empty())
    })
    .await;
    let pid: u32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(alive(pid));

    // While it hangs (its timeout is a minute away), the engine keeps storing mentions.
    let second = control.inject_mention(&to, None, "second").unwrap();
    let store = world.service.as_ref().unwrap().hub.sled_store().unwrap();
    wait_for("the next mention stored while the hook hangs", || {
        store.accounts().unwrap_or_default().iter().any(|a| {
            store
                .mention(perch::domain::MentionKey {
                    account_id: a.id,
                    tweet_id: second.parse().unwrap(),
                })
                .ok()
                .flatten()
                .is_some()
        })
    })
    .await;
    assert!(
        alive(pid),
        "the hook is still running: nothing waited for it"
    );

    // Stopping the service ends the hook with it.
    world.stop().await;
    wait_for("the hook to be killed with the service", || !alive(pid)).await;
}
