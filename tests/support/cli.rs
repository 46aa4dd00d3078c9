//! Running the real `perch` binary as a script would (included with `#[path]`): a command with
//! the environment cleared and pointed at a simulator and private directories (never the user's
//! files), run to completion with a generous limit, and its output checked.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use perch::sim::{self, SimHandle};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

/// Generous: the machine may be busy.
pub const GENEROUS: Duration = Duration::from_secs(120);

/// `perch ARGS` with nothing from the caller's environment but `PATH`: homes and XDG
/// directories under `root`, the store in `data_dir`, X at the simulator, the demo's client id.
pub fn perch_command(root: &Path, data_dir: &Path, sim: &SimHandle, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_perch"));
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", root.join("home"))
        .env("XDG_CONFIG_HOME", root.join("xdg-config"))
        .env("XDG_DATA_HOME", root.join("xdg-data"))
        .env("XDG_STATE_HOME", root.join("xdg-state"))
        .env("XDG_CACHE_HOME", root.join("xdg-cache"))
        .env("PERCH_CONFIG", root.join("nonexistent.toml"))
        .env("PERCH_DATA_DIR", data_dir)
        .env("PERCH_API_BASE", sim.api_base())
        .env("PERCH_AUTHORIZE_URL", sim.authorize_url())
        .env("PERCH_TOKEN_URL", sim.token_url())
        .env("PERCH_CLIENT_ID", sim::DEMO_CLIENT_ID)
        .env("PERCH_REDIRECT_URI", "http://127.0.0.1:8765/callback")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// Runs `cmd` to the end (at most [`GENEROUS`]).
pub async fn run(mut cmd: Command, args: &[&str]) -> Output {
    let child = cmd.spawn().expect("perch starts");
    tokio::time::timeout(GENEROUS, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("perch {args:?} did not finish"))
        .expect("perch runs")
}

/// The stdout of a run that must have exited 0 (else the test fails, showing both streams).
pub fn expect_ok(out: &Output, args: &[&str]) -> String {
    assert!(
        out.status.success(),
        "perch {args:?} failed ({:?}): {}{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `text` as JSON (else the test fails, showing it).
pub fn parse_json(text: &str, args: &[&str]) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {text}"))
}

/// A headless login command (`cmd`, e.g. `perch login --headless`) as a script would run it:
/// reads the URL from its own line, opens it as the "browser" logged in to X as `user` (`None`:
/// the URL exactly as printed) without following the redirect, pastes the redirect back.
/// Returns whether it succeeded, and everything it printed after the URL (stdout, then stderr).
pub async fn headless_login(
    cmd: Command,
    authorize_url: &str,
    user: Option<&str>,
) -> (bool, String) {
    let mut cmd = cmd;
    let mut child = cmd
        .stdin(Stdio::piped())
        .spawn()
        .expect("perch login starts");
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let url = tokio::time::timeout(GENEROUS, async {
        while let Some(line) = lines.next_line().await.expect("read stdout") {
            if line.starts_with("http://") || line.starts_with("https://") {
                return line;
            }
        }
        panic!("perch login printed no URL");
    })
    .await
    .expect("the URL in time");
    assert!(url.starts_with(authorize_url), "{url}");
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(GENEROUS)
        .build()
        .unwrap();
    let opened = match user {
        Some(user) => format!("{url}&sim_user={user}"),
        None => url.clone(),
    };
    let response = browser.get(opened).send().await.unwrap();
    assert_eq!(response.status(), 302);
    let location = response.headers()["location"].to_str().unwrap().to_string();
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(format!("{location}\n").as_bytes())
        .await
        .unwrap();
    drop(stdin);
    let mut rest = String::new();
    while let Some(line) = tokio::time::timeout(GENEROUS, lines.next_line())
        .await
        .expect("output in time")
        .expect("read stdout")
    {
        rest.push_str(&line);
        rest.push('\n');
    }
    let status = tokio::time::timeout(GENEROUS, child.wait())
        .await
        .expect("login ends")
        .unwrap();
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut stderr).await;
    }
    (status.success(), format!("{rest}{stderr}"))
}
