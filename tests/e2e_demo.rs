//! End to end: the real `perch` binary in `--demo` mode inside a pseudo-terminal. Protects the
//! newcomer's first command: the dashboard opens, three demo accounts appear, mentions arrive
//! from the simulator, and `q` leaves the terminal as it was.

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portable_pty::{CommandBuilder, PtySize, native_pty_system};

const ROWS: u16 = 40;
const COLS: u16 = 120;

/// The screen as the terminal would show it, fed by a reader thread.
struct Screen {
    parser: Arc<Mutex<vt100::Parser>>,
}

impl Screen {
    fn contents(&self) -> String {
        self.parser.lock().unwrap().screen().contents()
    }
    fn alternate(&self) -> bool {
        self.parser.lock().unwrap().screen().alternate_screen()
    }
    /// Waits (generously: CI machines are slow and busy) until `check` holds.
    fn wait_for(&self, what: &str, timeout: Duration, check: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let text = self.contents();
            if check(&text) {
                return text;
            }
            if start.elapsed() > timeout {
                panic!("timed out waiting for {what}; the screen was:\n{text}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

#[test]
fn demo_shows_three_accounts_and_live_mentions_then_quits_cleanly() {
    run_demo(&["--demo"]);
}

/// `--demo --faults` must start too: its faults hit the stream, never the demo's own logins.
#[test]
fn demo_with_faults_starts_streams_and_quits_cleanly() {
    run_demo(&["--demo", "--faults"]);
}

fn run_demo(args: &[&str]) {
    let home = tempfile::tempdir().unwrap();
    let pty = native_pty_system()
        .openpty(PtySize {
            rows: ROWS,
            cols: COLS,
            pixel_width: 0,
            pixel_height: 0,
        })
        .expect("open a pseudo-terminal");
    let mut cmd = CommandBuilder::new(env!("CARGO_BIN_EXE_perch"));
    cmd.args(args);
    // Keep the test away from the real user's files.
    cmd.env("HOME", home.path());
    cmd.env("XDG_CONFIG_HOME", home.path().join("config"));
    cmd.env("XDG_DATA_HOME", home.path().join("data"));
    cmd.env("XDG_STATE_HOME", home.path().join("state"));
    cmd.env("PERCH_CONFIG", home.path().join("none.toml"));
    cmd.env("TERM", "xterm-256color");
    cmd.env_remove("PERCH_DATA_DIR");
    let mut child = pty.slave.spawn_command(cmd).expect("start perch --demo");
    drop(pty.slave);

    let parser = Arc::new(Mutex::new(vt100::Parser::new(ROWS, COLS, 0)));
    let mut reader = pty.master.try_clone_reader().unwrap();
    {
        let parser = parser.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                parser.lock().unwrap().process(&buf[..n]);
            }
        });
    }
    let mut writer = pty.master.take_writer().unwrap();
    let screen = Screen { parser };

    let shown = screen.wait_for("the three demo accounts", Duration::from_secs(90), |s| {
        s.contains("All accounts") && s.matches('@').count() >= 3
    });
    assert!(
        screen.alternate(),
        "the dashboard draws on the alternate screen"
    );
    let accounts = perch::sim::SimConfig::demo().users;
    assert_eq!(accounts.len(), 3);
    let text = screen.wait_for(
        "mentions of the demo accounts",
        Duration::from_secs(90),
        |s| accounts.iter().all(|u| s.contains(&u.username)) && s.contains("pending"),
    );
    assert!(text.len() >= shown.len() / 2);

    // The cost meter: an estimate in the status bar that moves as mentions arrive (issue 14).
    let total = |s: &str| -> Option<String> {
        let at = s.find("est. $")?;
        let rest = &s[at + "est. ".len()..];
        let end = rest.find(" today")?;
        Some(rest[..end].to_string())
    };
    let first = screen.wait_for("the cost estimate", Duration::from_secs(90), |s| {
        total(s).is_some() && s.contains("this month")
    });
    let first = total(&first).unwrap_or_default();
    screen.wait_for("the meter to move", Duration::from_secs(120), |s| {
        total(s).is_some_and(|now| now != first)
    });

    // The Activity stream (issue 12): the status bar says it is live, and the newest mention,
    // selected while no key was pressed, came by stream (the detail pane says so).
    screen.wait_for("the stream to be live", Duration::from_secs(90), |s| {
        s.contains("● live")
    });
    screen.wait_for(
        "a mention pushed by the stream on the screen",
        Duration::from_secs(120),
        |s| s.contains("arrived by stream"),
    );

    // Move around a little, then quit.
    writer.write_all(b"jjk").unwrap();
    writer.flush().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    writer.write_all(b"q").unwrap();
    writer.flush().unwrap();

    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("perch did not exit after q; screen:\n{}", screen.contents());
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "perch exited with {status:?}");
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        !screen.alternate(),
        "the terminal is back on the main screen after quitting"
    );
}
