//! The perch service end to end, with the real binary against a simulator started here:
//! `perch serve` and `perch service status|stop|token`, a second service refused, a stale socket
//! replaced, every CLI command printing the same with and without a service (the commands run in
//! the service for their client), the dashboard quitting while the service keeps polling, and
//! `kill -9` of the service in the middle of a send. Every service a test starts, it stops.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use perch::sim::{self, SimConfig, SimHandle};
use serde_json::Value;
use tokio::process::{Child, Command};

#[path = "support/cli.rs"]
mod cli;
#[path = "support/pg.rs"]
mod pg;

use cli::GENEROUS;

struct Env {
    sim: SimHandle,
    dir: tempfile::TempDir,
}

impl Env {
    async fn start() -> Env {
        let sim = sim::start(SimConfig::for_tests(21), 0)
            .await
            .expect("simulator starts");
        Env {
            sim,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn runtime_dir(&self) -> PathBuf {
        self.dir.path().join("run")
    }

    fn state_dir(&self) -> PathBuf {
        self.dir.path().join("xdg-state").join("perch")
    }

    /// `perch ARGS` with the environment pointing at the simulator and temporary directories.
    fn command(&self, args: &[&str]) -> Command {
        let root = self.dir.path();
        let _ = std::fs::create_dir_all(self.runtime_dir());
        use std::os::unix::fs::PermissionsExt as _;
        let _ =
            std::fs::set_permissions(self.runtime_dir(), std::fs::Permissions::from_mode(0o700));
        let mut cmd = cli::perch_command(root, &self.data_dir(), &self.sim, args);
        cmd.env("XDG_RUNTIME_DIR", self.runtime_dir())
            .env("PERCH_POLL_INTERVAL", "2");
        cmd
    }

    async fn run(&self, args: &[&str]) -> Output {
        cli::run(self.command(args), args).await
    }

    async fn ok(&self, args: &[&str]) -> String {
        cli::expect_ok(&self.run(args).await, args)
    }

    async fn json(&self, args: &[&str]) -> Value {
        cli::parse_json(&self.ok(args).await, args)
    }

    /// `perch login --headless`, approved as `user` over HTTP, the redirect pasted back.
    async fn login(&self, user: &str) {
        let (ok, said) = cli::headless_login(
            self.command(&["login", "--headless"]),
            &self.sim.authorize_url(),
            Some(user),
        )
        .await;
        assert!(ok, "login of {user} failed: {said}");
    }

    /// Starts `perch serve` and waits until `perch service status` answers.
    async fn serve(&self) -> Child {
        let child = self
            .command(&["serve"])
            .stderr(Stdio::null())
            .spawn()
            .expect("perch serve starts");
        self.wait_until("the service to answer", || async {
            self.run(&["service", "status", "--json"])
                .await
                .status
                .success()
        })
        .await;
        child
    }

    /// Stops the running service and waits for `child` to end.
    async fn stop(&self, mut child: Child) {
        self.ok(&["service", "stop"]).await;
        let status = tokio::time::timeout(GENEROUS, child.wait())
            .await
            .expect("the service ends after stop")
            .unwrap();
        assert!(status.success(), "perch serve ended with {status}");
    }

    async fn wait_until<F, Fut>(&self, what: &str, check: F)
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let start = Instant::now();
        while !check().await {
            assert!(start.elapsed() < GENEROUS, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// A test that fails half-way must not leave its service behind: end any service still holding
/// this data directory's lock.
impl Drop for Env {
    fn drop(&mut self) {
        let lock = self.data_dir().join("service.lock");
        if lock.exists()
            && let Some(pid) = perch::service::lock::ServiceLock::holder(&lock)
            && pid > 0
        {
            // SAFETY: sending SIGTERM to a pid read from our own lock file.
            unsafe {
                libc::kill(pid as i32, libc::SIGTERM);
            }
        }
    }
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_lifecycle_status_stop_second_refused_stale_socket_replaced() {
    let env = Env::start().await;

    // No service: status says so with exit code 3 (and so does stop).
    let out = env.run(&["service", "status"]).await;
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("no perch service is running"));
    assert_eq!(env.run(&["service", "stop"]).await.status.code(), Some(3));

    let service = env.serve().await;
    let status = env.json(&["service", "status", "--json"]).await;
    for key in [
        "pid",
        "uptime_secs",
        "socket",
        "api_listen",
        "accounts",
        "last_poll_at",
        "role",
        "leader",
        "store",
    ] {
        assert!(status.get(key).is_some(), "status lacks {key}: {status}");
    }
    // On sled the service is its store's only process, so it leads (issue 16).
    assert_eq!(status["role"], "leader", "{status}");
    assert_eq!(status["store"], "sled", "{status}");
    assert_eq!(status["leader"]["pid"], status["pid"], "{status}");
    assert!(
        !status["leader"]["host"]
            .as_str()
            .unwrap_or_default()
            .is_empty(),
        "{status}"
    );
    let socket = PathBuf::from(status["socket"].as_str().unwrap());
    assert!(
        socket.starts_with(env.runtime_dir().join("perch")),
        "{socket:?}"
    );
    assert!(socket.as_os_str().len() <= 107);
    assert_eq!(mode(&socket), 0o600, "the socket is owner-only");
    assert_eq!(
        mode(socket.parent().unwrap()),
        0o700,
        "in an owner-only directory"
    );
    let token = env.ok(&["service", "token"]).await;
    assert!(
        token.trim().len() >= 40 && !token.trim().contains(' '),
        "{token}"
    );
    assert_eq!(mode(&env.data_dir().join("service-token")), 0o600);
    assert_eq!(mode(&env.data_dir().join("service.lock")), 0o600);
    let log = std::fs::read_dir(env.state_dir())
        .unwrap()
        .filter_map(Result::ok)
        .find(|e| e.file_name().to_string_lossy().starts_with("service-"))
        .expect("the service logs to the state directory");
    assert_eq!(mode(&log.path()), 0o600);
    assert!(
        !std::fs::read_to_string(log.path())
            .unwrap()
            .contains(token.trim())
    );

    // A second service on the same data directory refuses, naming the store.
    let second = env.run(&["serve"]).await;
    assert_eq!(second.status.code(), Some(1));
    let said = String::from_utf8_lossy(&second.stderr);
    assert!(said.contains("already running"), "{said}");
    assert!(said.contains(&*env.data_dir().to_string_lossy()), "{said}");

    env.stop(service).await;
    assert_eq!(env.run(&["service", "status"]).await.status.code(), Some(3));
    assert!(!socket.exists(), "a stopped service removes its socket");

    // A crash (kill -9) leaves the socket file: it is detected as stale and replaced.
    let mut crashed = env.serve().await;
    crashed.start_kill().unwrap();
    let _ = crashed.wait().await;
    assert!(socket.exists(), "kill -9 leaves the socket behind");
    assert_eq!(env.run(&["service", "status"]).await.status.code(), Some(3));
    // Commands run on their own meanwhile (nobody listens on the socket).
    env.ok(&["accounts", "list"]).await;
    let again = env.serve().await;
    env.stop(again).await;

    // A socket directory open to other users is refused, by name.
    let runtime = env.runtime_dir().join("perch");
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o755)).unwrap();
    let refused = env.run(&["serve"]).await;
    assert_eq!(refused.status.code(), Some(1));
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains(&*runtime.to_string_lossy()), "{said}");
    std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o700)).unwrap();

    // A service whose data directory disappears ends by itself.
    let mut orphan = env.serve().await;
    std::fs::remove_dir_all(env.data_dir()).unwrap();
    let ended = tokio::time::timeout(GENEROUS, orphan.wait())
        .await
        .expect("the service ends when its data directory is gone")
        .unwrap();
    assert!(ended.code().is_some(), "it exits rather than being killed");
}

/// The output of every command is the same whether it ran here or in the service.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_prints_the_same_with_and_without_a_service() {
    let env = Env::start().await;
    env.login("mara_quill").await;
    env.login("nimbus_help").await;
    env.ok(&["mentions", "fetch"]).await;
    let list = env
        .json(&["mentions", "list", "--json", "--limit", "3"])
        .await;
    let first = list["mentions"][0]["tweet_id"]
        .as_str()
        .unwrap()
        .to_string();
    let second = list["mentions"][1]["tweet_id"]
        .as_str()
        .unwrap()
        .to_string();

    let read_only: Vec<Vec<String>> = [
        vec!["accounts", "list"],
        vec!["accounts", "list", "--json", "--include-inactive"],
        vec!["accounts", "show", "@mara_quill"],
        vec!["accounts", "show", "@mara_quill", "--json"],
        vec!["accounts", "show", "@nobody"],
        vec!["accounts", "stats", "@nimbus_help", "--json"],
        vec!["mentions", "list"],
        vec!["mentions", "list", "--json", "--account", "@mara_quill"],
        vec!["mentions", "list", "--status", "nonsense"],
        vec!["mentions", "list", "--search", "battery"],
        vec!["export", "mentions", "--format", "csv"],
        vec![
            "export",
            "mentions",
            "--format",
            "jsonl",
            "--account",
            "@nimbus_help",
        ],
        vec!["costs", "--prices"],
        vec!["reply", "999", "no such mention"],
        vec!["mentions", "set-status", "999", "ignored"],
    ]
    .iter()
    .map(|c| c.iter().map(|s| s.to_string()).collect())
    .collect();
    async fn run_all(
        env: &Env,
        commands: &[Vec<String>],
    ) -> Vec<(String, Option<i32>, String, String)> {
        let mut outs = Vec::new();
        for command in commands {
            let args: Vec<&str> = command.iter().map(String::as_str).collect();
            let out = env.run(&args).await;
            outs.push((
                command.join(" "),
                out.status.code(),
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            ));
        }
        outs
    }
    // Mutating commands, each on its own mention or account in the two runs, with the same
    // output but for the id.
    let direct = run_all(&env, &read_only).await;
    let set_direct = env
        .run(&["mentions", "set-status", &first, "ignored"])
        .await;
    let pause_direct = env.run(&["accounts", "pause", "@mara_quill"]).await;
    let resume_direct = env.run(&["accounts", "resume", "@mara_quill"]).await;

    let service = env.serve().await;
    // The service polls at once; wait for that first round so nothing moves under the reads.
    env.wait_until("the service's first poll", || async {
        let s = env.json(&["service", "status", "--json"]).await;
        !s["last_poll_at"].is_null()
    })
    .await;
    // Undo the direct run's change so the two runs read the same store.
    env.ok(&["mentions", "set-status", &first, "pending"]).await;
    let served = run_all(&env, &read_only).await;
    let set_served = env
        .run(&["mentions", "set-status", &second, "ignored"])
        .await;
    let pause_served = env.run(&["accounts", "pause", "@mara_quill"]).await;
    let resume_served = env.run(&["accounts", "resume", "@mara_quill"]).await;
    env.stop(service).await;

    // The service polls while it runs, so sync times move; everything else must be equal.
    let times =
        regex::Regex::new(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)").unwrap();
    let calm = |t: &str| times.replace_all(t, "TIME").into_owned();
    for (d, s) in direct.iter().zip(&served) {
        assert_eq!(
            d.1, s.1,
            "`perch {}`: exit code differs with a service",
            d.0
        );
        assert_eq!(
            calm(&d.2),
            calm(&s.2),
            "`perch {}`: stdout differs with a service",
            d.0
        );
        assert_eq!(d.3, s.3, "`perch {}`: stderr differs with a service", d.0);
    }
    let same = |a: &Output, b: &Output, what: &str| {
        assert_eq!(a.status.code(), b.status.code(), "{what}");
        let strip = |o: &Output| {
            String::from_utf8_lossy(&o.stdout)
                .replace(&first, "ID")
                .replace(&second, "ID")
        };
        assert_eq!(strip(a), strip(b), "{what}");
        assert_eq!(a.stderr, b.stderr, "{what}");
    };
    same(&set_direct, &set_served, "set-status");
    same(&pause_direct, &pause_served, "pause");
    same(&resume_direct, &resume_served, "resume");
    assert!(set_served.status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_minus_9_of_the_service_mid_send_leaves_the_reply_unconfirmed() {
    let env = Env::start().await;
    env.login("nimbus_help").await;
    env.ok(&["mentions", "fetch"]).await;
    let list = env
        .json(&["mentions", "list", "--json", "--limit", "1"])
        .await;
    let id = list["mentions"][0]["tweet_id"]
        .as_str()
        .unwrap()
        .to_string();
    let total_before = env
        .json(&["mentions", "list", "--json", "--limit", "500"])
        .await["mentions"]
        .as_array()
        .unwrap()
        .len();

    let mut service = env.serve().await;
    // Every answer from X now takes a minute: the reply is out when the service dies.
    let control = env.sim.control();
    control.set_faults(sim::Faults {
        slow_response: Some(Duration::from_secs(60)),
        slow_probability: 1.0,
        ..sim::Faults::default()
    });
    let reply = env
        .command(&["reply", &id, "on it, thanks for the report"])
        .spawn()
        .unwrap();
    // On its way means `sending`, which the outbox writes to disk before the request leaves.
    // The mention shows `processing` from the moment the reply is queued, before that write: a
    // kill then loses the queued reply, which is right (it never left) but not this test.
    env.wait_until("the reply to be on its way", || async {
        let v = env
            .json(&["mentions", "list", "--json", "--limit", "1"])
            .await;
        v["mentions"][0]["outbox"]["state"] == "sending"
    })
    .await;
    service.start_kill().unwrap();
    let _ = service.wait().await;
    let reply = tokio::time::timeout(GENEROUS, reply.wait_with_output())
        .await
        .expect("the client ends when its service dies")
        .unwrap();
    assert_ne!(
        reply.status.code(),
        Some(0),
        "a reply cut off is not reported sent"
    );
    control.set_faults(sim::Faults::default());

    // A new service finds the send interrupted: unconfirmed, never sent again by itself.
    let service = env.serve().await;
    let v = env
        .json(&["mentions", "list", "--json", "--limit", "500"])
        .await;
    let m = &v["mentions"][0];
    assert_eq!(m["tweet_id"], id.as_str());
    assert_eq!(m["status"], "error", "{m}");
    assert_eq!(m["outbox"]["state"], "unconfirmed", "{m}");
    assert!(
        v["mentions"].as_array().unwrap().len() >= total_before,
        "nothing lost"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        control.posts().len() <= 1,
        "the interrupted reply is never sent again by itself"
    );
    env.stop(service).await;
}

/// The dashboard, in a pseudo-terminal, starts a service; a command in "another pane" works while
/// it runs; after `q` the service keeps polling and new mentions keep arriving in the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_quits_and_the_service_keeps_polling() {
    use portable_pty::{CommandBuilder, PtySize, native_pty_system};
    use std::io::{Read as _, Write as _};
    use std::sync::{Arc, Mutex};

    let env = Env::start().await;
    env.login("mara_quill").await;

    let pty = native_pty_system()
        .openpty(PtySize {
            rows: 40,
            cols: 120,
            pixel_width: 0,
            pixel_height: 0,
        })
        .unwrap();
    // The same environment as `Env::command`.
    let template = env.command(&[]);
    let mut cmd = CommandBuilder::new(env!("CARGO_BIN_EXE_perch"));
    cmd.env_clear();
    for (k, v) in template.as_std().get_envs() {
        if let Some(v) = v {
            cmd.env(k, v);
        }
    }
    cmd.env("TERM", "xterm-256color");
    cmd.cwd(env.dir.path());
    let mut child = pty.slave.spawn_command(cmd).unwrap();
    drop(pty.slave);
    let parser = Arc::new(Mutex::new(vt100::Parser::new(40, 120, 0)));
    let raw = Arc::new(Mutex::new(Vec::<u8>::new()));
    {
        let (parser, raw) = (parser.clone(), raw.clone());
        let mut reader = pty.master.try_clone_reader().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                parser.lock().unwrap().process(&buf[..n]);
                raw.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
    }
    let mut writer = pty.master.take_writer().unwrap();
    let screen = || parser.lock().unwrap().screen().contents();
    env.wait_until("the dashboard with the account's mentions", || async {
        let s = screen();
        s.contains("@mara_quill") && s.contains("pending")
    })
    .await;

    // Another pane: a command runs beside the dashboard (through the service it started).
    let listed = env
        .json(&["mentions", "list", "--json", "--limit", "2"])
        .await;
    assert_eq!(listed["mentions"].as_array().unwrap().len(), 2);

    writer.write_all(b"q").unwrap();
    writer.flush().unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(start.elapsed() < GENEROUS, "q did not end the dashboard");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(status.success(), "q exits 0");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let printed = String::from_utf8_lossy(&raw.lock().unwrap()).into_owned();
    assert!(
        printed.contains("perch keeps watching in the background"),
        "the first quit says the service keeps watching"
    );

    // The service is still there, and still polling: a new mention on X reaches the store.
    let status = env.json(&["service", "status", "--json"]).await;
    assert_eq!(status["accounts"].as_array().unwrap().len(), 1);
    env.sim
        .control()
        .inject_mention("mara_quill", None, "arrived with the dashboard closed")
        .unwrap();
    env.wait_until("the new mention in the store", || async {
        let v = env
            .json(&["mentions", "list", "--json", "--limit", "5"])
            .await;
        v.to_string().contains("arrived with the dashboard closed")
    })
    .await;
    env.ok(&["service", "stop"]).await;
    assert_eq!(env.run(&["service", "status"]).await.status.code(), Some(3));
}

/// `perch __complete-accounts -- WORDS` (what the completion scripts call) prints the handles
/// of the store where an account goes, and nothing elsewhere: read from the store when no
/// service runs, and through the service when one holds the store. The bash script, sourced in
/// a real bash, completes them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_handles_complete_from_the_store_and_through_the_service() {
    let env = Env::start().await;
    env.login("mara_quill").await;
    env.login("nimbus_help").await;
    let complete = |words: &'static [&'static str]| {
        let env = &env;
        async move {
            let mut args = vec!["__complete-accounts", "--"];
            args.extend_from_slice(words);
            let out = env.run(&args).await;
            assert!(out.status.success(), "{words:?}: {out:?}");
            assert!(out.stderr.is_empty(), "{words:?}: {out:?}");
            String::from_utf8_lossy(&out.stdout).into_owned()
        }
    };
    let both = "mara_quill\nnimbus_help\n";
    assert_eq!(complete(&["accounts", "show"]).await, both);
    assert_eq!(complete(&["mentions", "list", "--account"]).await, both);
    assert_eq!(complete(&["accounts", "list"]).await, "");
    assert_eq!(complete(&["accounts", "show", "mara_quill"]).await, "");
    // Another data directory on the line: that store (there is none: nothing, none created).
    let elsewhere = env.dir.path().join("elsewhere");
    let out = env
        .run(&[
            "__complete-accounts",
            "--",
            "--data-dir",
            elsewhere.to_str().unwrap(),
            "accounts",
            "show",
        ])
        .await;
    assert!(out.status.success() && out.stdout.is_empty(), "{out:?}");
    assert!(!elsewhere.exists());

    // The real bash script, sourced, asked as bash asks at a Tab: COMP_LINE and COMP_POINT,
    // and COMP_WORDS split at COMP_WORDBREAKS (bash's default here, with its `@`).
    let bash_complete = |line: &'static str, wordbreaks: &'static str| {
        let env = &env;
        async move {
            let script = env.ok(&["completions", "bash"]).await;
            let perch = env.command(&[]);
            let mut bash = tokio::process::Command::new("bash");
            for (key, value) in perch.as_std().get_envs() {
                if let Some(value) = value {
                    bash.env(key, value);
                }
            }
            let bin_dir = Path::new(env!("CARGO_BIN_EXE_perch")).parent().unwrap();
            bash.env("PATH", format!("{}:/usr/bin:/bin", bin_dir.display()));
            let mut words: Vec<String> = line.split(' ').map(String::from).collect();
            if wordbreaks.contains('@')
                && let Some(last) = words.pop()
            {
                match last.strip_prefix('@') {
                    Some(rest) => words.extend(["@".to_string(), rest.to_string()]),
                    None => words.push(last),
                }
            }
            let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
            bash.arg("-c").arg(format!(
                "{script}\nCOMP_WORDBREAKS='{wordbreaks}'; COMP_WORDS=({}); \
                 COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1)); COMP_LINE='{line}'; \
                 COMP_POINT=${{#COMP_LINE}}; _perch_with_accounts perch \
                 \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"; \
                 printf '%s\\n' \"${{COMPREPLY[@]}}\"",
                quoted.join(" ")
            ));
            bash.kill_on_drop(true);
            let out = tokio::time::timeout(GENEROUS, bash.output())
                .await
                .expect("bash in time")
                .expect("bash runs");
            String::from_utf8_lossy(&out.stdout).into_owned()
        }
    };
    if std::process::Command::new("bash")
        .arg("-c")
        .arg("true")
        .status()
        .is_ok()
    {
        // bash's default, but for the quotes (the script quotes it in '').
        let breaks = "@><=;|&(:";
        assert_eq!(
            bash_complete("perch accounts pause m", breaks).await,
            "mara_quill\n"
        );
        assert_eq!(bash_complete("perch accounts show ", breaks).await, both);
        // `@n`: bash replaces what follows the @ (with @ in COMP_WORDBREAKS), else the word.
        assert_eq!(
            bash_complete("perch mentions list --account @n", breaks).await,
            "nimbus_help\n"
        );
        assert_eq!(
            bash_complete("perch mentions list --account @n", "><=;|&(:").await,
            "@nimbus_help\n"
        );
        let commands = bash_complete("perch acc", breaks).await;
        assert_eq!(
            commands, "accounts\n",
            "clap's completion still completes commands"
        );
    }

    // zsh and fish, where installed: fish's own completion engine (`complete -C`), and zsh's
    // wrapper with `compadd` standing in for the completion system (which needs a terminal).
    let shell_env = |program: &str| {
        let perch = env.command(&[]);
        let mut shell = tokio::process::Command::new(program);
        for (key, value) in perch.as_std().get_envs() {
            if let Some(value) = value {
                shell.env(key, value);
            }
        }
        let bin_dir = Path::new(env!("CARGO_BIN_EXE_perch")).parent().unwrap();
        shell.env("PATH", format!("{}:/usr/bin:/bin", bin_dir.display()));
        shell.kill_on_drop(true);
        shell
    };
    let has = |program: &str| {
        std::process::Command::new(program)
            .arg("-c")
            .arg("true")
            .status()
            .is_ok_and(|s| s.success())
    };
    if has("fish") {
        let script = env.dir.path().join("perch.fish");
        std::fs::write(&script, env.ok(&["completions", "fish"]).await).unwrap();
        let mut fish = shell_env("fish");
        fish.arg("--no-config").arg("-c").arg(format!(
            "source {}; complete -C 'perch accounts show '; echo ==; complete -C 'perch mentions list --account @'",
            script.display()
        ));
        let out = tokio::time::timeout(GENEROUS, fish.output())
            .await
            .unwrap()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let (show, at) = text.split_once("==\n").unwrap_or_else(|| panic!("{text}"));
        let lines = |s: &str| -> Vec<String> {
            s.lines()
                .map(|l| l.split('\t').next().unwrap_or("").to_string())
                .collect()
        };
        assert_eq!(lines(show), ["mara_quill", "nimbus_help"], "{text}");
        assert_eq!(lines(at), ["@mara_quill", "@nimbus_help"], "{text}");
    }
    if has("zsh") {
        let script = env.dir.path().join("_perch");
        std::fs::write(&script, env.ok(&["completions", "zsh"]).await).unwrap();
        let mut zsh = shell_env("zsh");
        zsh.arg("-f").arg("-c").arg(format!(
            "compdef() {{ : }}; source {}; compadd() {{ print -l -- \"${{(@P)${{@[-1]}}}}\" }}; \
             words=(perch accounts resume ''); CURRENT=4; _perch; print -- --; \
             words=(perch --data-dir {} costs --account @m); CURRENT=6; _perch",
            script.display(),
            env.data_dir().display()
        ));
        let out = tokio::time::timeout(GENEROUS, zsh.output())
            .await
            .unwrap()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            text,
            "mara_quill\nnimbus_help\n--\n@mara_quill\n@nimbus_help\n",
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // zsh's real completion system, the script autoloaded from $fpath as the README says to
    // install it, in a pseudo-terminal: Tab after `m` puts the handle on the line.
    if has("zsh") {
        let fpath = env.dir.path().join("zfunc");
        std::fs::create_dir_all(&fpath).unwrap();
        std::fs::write(fpath.join("_perch"), env.ok(&["completions", "zsh"]).await).unwrap();
        let zsh_path = std::process::Command::new("sh")
            .args(["-c", "command -v zsh"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default();
        let mut cmd = portable_pty::CommandBuilder::new(zsh_path);
        cmd.args(["-f", "-i"]);
        for (key, value) in env.command(&[]).as_std().get_envs() {
            if let Some(value) = value {
                cmd.env(key, value);
            }
        }
        let bin_dir = Path::new(env!("CARGO_BIN_EXE_perch")).parent().unwrap();
        cmd.env("PATH", format!("{}:/usr/bin:/bin", bin_dir.display()));
        cmd.env("TERM", "xterm");
        // portable-pty starts in $HOME, which the test's environment only names.
        cmd.cwd(env.dir.path());
        let line = tokio::task::spawn_blocking(move || {
            use std::io::{Read as _, Write as _};
            let pty = portable_pty::native_pty_system()
                .openpty(portable_pty::PtySize {
                    rows: 10,
                    cols: 100,
                    pixel_width: 0,
                    pixel_height: 0,
                })
                .expect("a pseudo-terminal");
            let mut child = pty.slave.spawn_command(cmd).expect("zsh starts");
            drop(pty.slave);
            let parser = std::sync::Arc::new(std::sync::Mutex::new(vt100::Parser::new(10, 100, 0)));
            let mut reader = pty.master.try_clone_reader().unwrap();
            let feed = parser.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = reader.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    feed.lock().unwrap().process(&buf[..n]);
                }
            });
            let mut writer = pty.master.take_writer().unwrap();
            let screen = || parser.lock().unwrap().screen().contents();
            let wait = |what: &str, check: &dyn Fn(&str) -> bool| {
                let start = Instant::now();
                while !check(&screen()) {
                    assert!(start.elapsed() < GENEROUS, "zsh: no {what}:\n{}", screen());
                    std::thread::sleep(Duration::from_millis(100));
                }
            };
            writer
                .write_all(
                    format!(
                        "PS1='ready> '; fpath=({} $fpath); autoload -U compinit; compinit -u -D\r",
                        fpath.display()
                    )
                    .as_bytes(),
                )
                .unwrap();
            wait("prompt", &|s| s.contains("ready> "));
            writer.write_all(b"perch accounts show m\t").unwrap();
            wait("completion", &|s| s.contains("show mara_quill"));
            let line = screen();
            let _ = writer.write_all(b"\x03exit\r");
            let _ = child.kill();
            let _ = child.wait();
            line
        })
        .await
        .unwrap();
        assert!(line.contains("perch accounts show mara_quill"), "{line}");
    }

    // With a service holding the store (which a second process cannot open), the handles come
    // through it.
    let service = env.serve().await;
    assert_eq!(complete(&["accounts", "remove", "--yes"]).await, both);
    assert_eq!(complete(&["costs", "--account"]).await, both);
    let out = env
        .ok(&[
            "__complete-accounts",
            "--current=@m",
            "--",
            "accounts",
            "show",
        ])
        .await;
    assert_eq!(
        out, "@mara_quill\n@nimbus_help\n",
        "the shell filters by what is typed"
    );
    assert_eq!(complete(&["accounts"]).await, "");
    env.stop(service).await;
}

/// `perch team` and `perch audit` end to end (issue 16): a person added without a service gets a
/// token printed once that the service's TCP API then accepts, showing only the account granted;
/// `team list`, `grant` and `audit` answer the same through the service; `mentions assign`
/// there reaches the person's live event stream and the `--assigned` filter; a removed person's
/// token is refused at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn team_add_grant_remove_and_audit_through_the_cli_and_the_service() {
    let env = Env::start().await;
    env.login("mara_quill").await;
    env.login("nimbus_help").await;
    // Without a service: the store itself.
    let added = env.json(&["team", "add", "ana", "--json"]).await;
    let token = added["token"].as_str().unwrap().to_string();
    assert!(token.starts_with("perch_p_"), "{added}");
    assert_eq!(added["role"], "member");
    let refused = env.run(&["team", "add", "ana"]).await;
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("already a person called ana"),
        "{refused:?}"
    );
    let bad = env.run(&["team", "add", "Bad Name"]).await;
    assert_eq!(bad.status.code(), Some(2), "a usage error");
    env.ok(&["team", "grant", "ana", "@nimbus_help", "reply"])
        .await;

    // With a service on TCP: her token works there, for her account only.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = {
        let mut cmd = env.command(&["serve"]);
        cmd.env("PERCH_API_LISTEN", format!("127.0.0.1:{port}"))
            .stderr(Stdio::null());
        let child = cmd.spawn().expect("perch serve starts");
        env.wait_until("the service to answer", || async {
            env.run(&["service", "status", "--json"])
                .await
                .status
                .success()
        })
        .await;
        child
    };
    let http = reqwest::Client::new();
    let accounts = format!("http://127.0.0.1:{port}/api/v1/accounts/");
    let response = http
        .get(&accounts)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let list: Value = response.json().await.unwrap();
    assert_eq!(list["total"], 1, "{list}");
    assert_eq!(list["accounts"][0]["twitter_username"], "nimbus_help");

    // Through the service: list, another grant, the audit log.
    let team = env.json(&["team", "list", "--json"]).await;
    assert_eq!(team[0]["name"], "ana");
    assert_eq!(team[0]["grants"]["@nimbus_help"], "reply", "{team}");
    env.ok(&["team", "grant", "ana", "@mara_quill", "read"])
        .await;
    let list: Value = http
        .get(&accounts)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["total"], 2, "the grant counts at once: {list}");
    let audit = env.json(&["audit", "--json"]).await;
    let actions: Vec<(&str, &str)> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["action"].as_str().unwrap(), e["detail"].as_str().unwrap()))
        .collect();
    assert_eq!(
        actions,
        [
            ("grant", "ana: read"),
            ("grant", "ana: reply"),
            ("person_add", "ana as member"),
            // The two `perch login`s this test began with (every account change is audited).
            ("account_add", "added"),
            ("account_add", "added"),
        ],
        "{audit}"
    );
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["person"] == "owner")
    );
    let text = env.ok(&["audit", "--person", "owner"]).await;
    assert!(text.contains("person_add"), "{text}");

    // Assigning through the service: a client of its API hears it at once; the list filters.
    env.ok(&["mentions", "fetch", "--account", "@nimbus_help"])
        .await;
    let hers = env
        .json(&[
            "mentions",
            "list",
            "--json",
            "--account",
            "@nimbus_help",
            "--limit",
            "1",
        ])
        .await;
    let post = hers["mentions"][0]["tweet_id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut events = http
        .get(format!("http://127.0.0.1:{port}/api/v1/events"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(events.status(), 200);
    let said = env.ok(&["mentions", "assign", &post, "ana"]).await;
    assert!(said.contains("assigned to ana"), "{said}");
    let heard = tokio::time::timeout(std::time::Duration::from_secs(60), async {
        let mut buffer = String::new();
        loop {
            let chunk = events
                .chunk()
                .await
                .unwrap()
                .expect("the stream stays open");
            buffer.push_str(&String::from_utf8_lossy(&chunk));
            // Whole frames only: a chunk can end inside one.
            while let Some(end) = buffer.find("\n\n") {
                let frame: String = buffer.drain(..end + 2).collect();
                if frame.contains("event: mention_assigned")
                    && let Some(data) = frame.lines().find_map(|l| l.strip_prefix("data: "))
                {
                    return serde_json::from_str::<Value>(data).unwrap();
                }
            }
        }
    })
    .await
    .expect("ana's client hears the assignment");
    assert_eq!(heard["tweet_id"], post.as_str());
    assert_eq!(heard["assigned_to"], "ana");
    assert_eq!(heard["by"], "owner");
    let mine = env
        .json(&["mentions", "list", "--json", "--assigned", "ana"])
        .await;
    assert_eq!(mine["total_matching"], 1, "{mine}");
    assert_eq!(mine["mentions"][0]["tweet_id"], post.as_str());
    assert_eq!(mine["mentions"][0]["assigned_to"]["person"], "ana");
    let text = env.ok(&["mentions", "list", "--assigned", "ana"]).await;
    assert!(text.contains("→ana"), "{text}");
    let refused = env.run(&["mentions", "assign", &post, "zed"]).await;
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("no person called \"zed\""),
        "{refused:?}"
    );
    let audit = env.json(&["audit", "--json", "--mention", &post]).await;
    assert_eq!(audit[0]["action"], "assign", "{audit}");
    assert_eq!(audit[0]["detail"], "ana");

    env.ok(&["team", "remove", "ana"]).await;
    let response = http
        .get(&accounts)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    env.stop(child).await;
}

/// `database_url` (issue 16): a service asked to run on PostgreSQL without a token_key refuses
/// and says how to make one. With one, a command that would open the store itself looks at the
/// database (without migrating it: other services may be using it) and refuses, because the
/// store command does not run on PostgreSQL yet, rather than opening a sled store beside the
/// team's database. No password shows. (`tests/service_pg.rs` runs services on PostgreSQL.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_url_without_a_key_or_for_a_store_command_is_refused_with_what_to_do() {
    let env = Env::start().await;
    // The synchronous client makes its own runtime: off this test's.
    let url = tokio::task::spawn_blocking(pg::fresh_database)
        .await
        .unwrap()
        .replacen("postgres@", "postgres:hunter2@", 1);
    assert!(
        url.contains(":hunter2@"),
        "the test's URL carries a password: {url}"
    );
    let mut no_key = env.command(&["serve"]);
    no_key.env("PERCH_DATABASE_URL", &url);
    let out = cli::run(no_key, &["serve"]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("perch team keygen"), "{stderr}");
    assert!(
        !stderr.contains("hunter2"),
        "no password in messages: {stderr}"
    );

    let key = env.ok(&["team", "keygen"]).await;
    // A command that would open the store itself refuses the same way (no sled store beside
    // the team's database).
    let mut list = env.command(&["mentions", "list"]);
    list.env("PERCH_DATABASE_URL", &url)
        .env("PERCH_TOKEN_KEY", key.trim());
    let out = cli::run(list, &["mentions", "list"]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("does not run on PostgreSQL yet")
            && stderr.contains("schema is at version 0"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("hunter2"),
        "no password in messages: {stderr}"
    );
}
