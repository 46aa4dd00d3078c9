//! The real `perch` binary in a pseudo-terminal, for the end-to-end tests (included with
//! `#[path]`): a private home (so the user's files are never touched), the screen as a terminal
//! would show it (fed by a reader thread into a vt100 parser), keys to type, and a clean quit.
//! A `Perch` that is dropped while its process still runs kills it.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portable_pty::{Child, CommandBuilder, ExitStatus, PtySize, native_pty_system};

pub const ROWS: u16 = 40;
pub const COLS: u16 = 120;

/// The screen as the terminal would show it.
pub struct Screen {
    parser: Arc<Mutex<vt100::Parser>>,
}

impl Screen {
    pub fn contents(&self) -> String {
        self.parser
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .screen()
            .contents()
    }

    pub fn alternate(&self) -> bool {
        self.parser
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .screen()
            .alternate_screen()
    }

    /// The terminal reports mouse events (the program enabled mouse capture).
    pub fn mouse_captured(&self) -> bool {
        self.parser
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .screen()
            .mouse_protocol_mode()
            != vt100::MouseProtocolMode::None
    }

    pub fn bracketed_paste(&self) -> bool {
        self.parser
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .screen()
            .bracketed_paste()
    }

    /// Waits (generously: CI machines are slow and busy) until `check` holds; returns the screen.
    pub fn wait_for(&self, what: &str, timeout: Duration, check: impl Fn(&str) -> bool) -> String {
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

/// A running `perch` in a pseudo-terminal.
pub struct Perch {
    pub screen: Screen,
    writer: Box<dyn Write + Send>,
    child: Box<dyn Child + Send + Sync>,
    pub home: tempfile::TempDir,
}

/// `perch ARGS` kept away from the real user's files: home, config, data and state under `home`,
/// the config file `config` (it need not exist), and no inherited `PERCH_DATA_DIR`. The tests that
/// read the terminal their own way (answering queries, recording titles) start perch with this too.
pub fn perch_command(
    home: &std::path::Path,
    args: &[&str],
    config: &std::path::Path,
) -> CommandBuilder {
    let mut cmd = CommandBuilder::new(env!("CARGO_BIN_EXE_perch"));
    cmd.args(args);
    cmd.env("HOME", home);
    cmd.env("XDG_CONFIG_HOME", home.join("config"));
    cmd.env("XDG_DATA_HOME", home.join("data"));
    cmd.env("XDG_STATE_HOME", home.join("state"));
    cmd.env("PERCH_CONFIG", config);
    cmd.env("TERM", "xterm-256color");
    cmd.env_remove("PERCH_DATA_DIR");
    cmd
}

impl Perch {
    /// Starts `perch ARGS` with a private home. `config` is written to the config file
    /// `PERCH_CONFIG` names (none: that file does not exist, so the defaults apply).
    pub fn start(args: &[&str], config: Option<&str>) -> Perch {
        Perch::start_with_env(args, config, &[])
    }

    /// [`Perch::start`] with `env` added to perch's environment.
    pub fn start_with_env(args: &[&str], config: Option<&str>, env: &[(&str, &str)]) -> Perch {
        let home = tempfile::tempdir().expect("a temporary home");
        let config_path: PathBuf = home.path().join("config.toml");
        if let Some(text) = config {
            std::fs::write(&config_path, text).expect("write the config file");
        }
        let pty = native_pty_system()
            .openpty(PtySize {
                rows: ROWS,
                cols: COLS,
                pixel_width: 0,
                pixel_height: 0,
            })
            .expect("open a pseudo-terminal");
        let mut cmd = perch_command(home.path(), args, &config_path);
        for (name, value) in env {
            cmd.env(name, value);
        }
        let child = pty.slave.spawn_command(cmd).expect("start perch");
        drop(pty.slave);

        let parser = Arc::new(Mutex::new(vt100::Parser::new(ROWS, COLS, 0)));
        let mut reader = pty
            .master
            .try_clone_reader()
            .expect("a reader for the terminal");
        {
            let parser = parser.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 8192];
                while let Ok(n) = reader.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    parser
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .process(&buf[..n]);
                }
            });
        }
        let writer = pty.master.take_writer().expect("a writer for the terminal");
        Perch {
            screen: Screen { parser },
            writer,
            child,
            home,
        }
    }

    /// Types `bytes` (keys, or a bracketed paste).
    pub fn send(&mut self, bytes: &[u8]) {
        self.writer
            .write_all(bytes)
            .expect("type into the terminal");
        self.writer.flush().expect("flush the terminal");
    }

    /// Waits for the process to end by itself (after `q`), at most `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("poll perch") {
                return status;
            }
            if start.elapsed() > timeout {
                let _ = self.child.kill();
                panic!("perch did not exit; screen:\n{}", self.screen.contents());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `q`, then the exit status (perch must leave within 30 s).
    pub fn quit(&mut self) -> ExitStatus {
        self.send(b"q");
        self.wait_exit(Duration::from_secs(30))
    }
}

impl Drop for Perch {
    fn drop(&mut self) {
        // A test that failed half-way must not leave perch (and its service) running.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
