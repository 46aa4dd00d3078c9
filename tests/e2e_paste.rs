//! End to end (issue 10, item 6): a paste into the composer of the real `perch` binary in a
//! pseudo-terminal. The dashboard turns bracketed paste on (and off again on quit), so a paste of
//! a 2 000-character word arrives as one event; its length is measured off the key path (exactly:
//! it is under ten times the limit) while typed keys keep being answered; and a 100 000-character
//! word is shown as `>2800/280` at once, without a parse.

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portable_pty::{CommandBuilder, PtySize, native_pty_system};

const ROWS: u16 = 40;
const COLS: u16 = 120;
const PATIENCE: Duration = Duration::from_secs(120);

struct Screen {
    parser: Arc<Mutex<vt100::Parser>>,
}

impl Screen {
    fn contents(&self) -> String {
        self.parser.lock().unwrap().screen().contents()
    }
    fn bracketed_paste(&self) -> bool {
        self.parser.lock().unwrap().screen().bracketed_paste()
    }
    fn wait_for(&self, what: &str, check: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let text = self.contents();
            if check(&text) {
                return text;
            }
            if start.elapsed() > PATIENCE {
                panic!("timed out waiting for {what}; the screen was:\n{text}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// The composer's exact counter ("231/280"), if the screen shows one.
fn counter(screen: &str) -> Option<usize> {
    let end = screen.find("/280 ")?;
    let digits: String = screen[..end]
        .chars()
        .rev()
        .take_while(char::is_ascii_digit)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let before = screen[..end].chars().rev().nth(digits.len())?;
    (before == ' ').then(|| digits.parse().ok())?
}

fn paste(writer: &mut dyn Write, text: &str) {
    writer.write_all(b"\x1b[200~").unwrap();
    writer.write_all(text.as_bytes()).unwrap();
    writer.write_all(b"\x1b[201~").unwrap();
    writer.flush().unwrap();
}

#[test]
fn a_long_paste_is_one_event_measured_off_the_key_path_and_far_over_reads_over() {
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
    cmd.arg("--demo");
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
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        screen.wait_for("mentions", |s| s.contains("pending"));
        assert!(
            screen.bracketed_paste(),
            "the dashboard turns bracketed paste on"
        );

        writer.write_all(b"r").unwrap();
        writer.flush().unwrap();
        let opened = screen.wait_for("the composer", |s| {
            s.contains("replying as") && counter(s).is_some()
        });
        // The `@sender ` prefill is counted too.
        let prefill = counter(&opened).unwrap();

        // 2 000 characters without a space: twitter-text's quadratic case, exact under 2 800.
        paste(&mut *writer, &"a.".repeat(1000));
        // Typed keys are answered while it is being measured.
        writer.write_all(b" ok").unwrap();
        writer.flush().unwrap();
        screen.wait_for("the exact length of the paste and the typed keys", |s| {
            counter(s) == Some(prefill + 2003)
        });

        // Far over the limit: over at once, without a parse.
        paste(&mut *writer, &"b.".repeat(50_000));
        screen.wait_for("the bounded count", |s| s.contains(">2800/280"));

        writer.write_all(b"\x1b").unwrap(); // Esc: close, keep the draft
        writer.flush().unwrap();
        std::thread::sleep(Duration::from_millis(500));
        writer.write_all(b"q").unwrap();
        writer.flush().unwrap();
        let start = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if start.elapsed() > Duration::from_secs(30) {
                panic!("perch did not exit after q; screen:\n{}", screen.contents());
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        assert!(status.success(), "perch exited with {status:?}");
        std::thread::sleep(Duration::from_millis(200));
        assert!(
            !screen.bracketed_paste(),
            "bracketed paste is off again after quitting"
        );
    }));
    if result.is_err() {
        let _ = child.kill();
        let _ = child.wait();
    }
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}
