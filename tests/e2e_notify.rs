//! End to end: `perch --demo` in a pseudo-terminal with a config that turns on the bell, the
//! title and a hook. New demo mentions ring the bell, set the title to `perch · N pending` and
//! run the hook (from the in-process demo service); `q` puts the title back. (That each burst
//! makes one hook run is `notify_hook.rs`'s; this checks the pieces meet in the real binary.)

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[path = "support/pty.rs"]
mod pty;

use portable_pty::{PtySize, native_pty_system};

/// What the terminal was asked to do besides drawing.
#[derive(Default)]
struct Seen {
    bells: usize,
    titles: Vec<String>,
}

struct Recorder(Arc<Mutex<Seen>>);

impl vt100::Callbacks for Recorder {
    fn audible_bell(&mut self, _: &mut vt100::Screen) {
        self.0.lock().unwrap().bells += 1;
    }
    fn set_window_title(&mut self, _: &mut vt100::Screen, title: &[u8]) {
        self.0
            .lock()
            .unwrap()
            .titles
            .push(String::from_utf8_lossy(title).into_owned());
    }
}

/// Waits (generously: the machine may be slow and busy) until `check` holds.
fn wait_for(what: &str, check: impl Fn() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(
            start.elapsed() < Duration::from_secs(180),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn demo_mentions_ring_set_the_title_and_run_the_hook_and_quitting_restores_the_title() {
    let home = tempfile::tempdir().unwrap();
    let hook_log = home.path().join("hook.log");
    let config = home.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[notify]\nbell = true\ntitle = true\ndesktop = true\n\
             on_new_mentions = \"echo \\\"$PERCH_ACCOUNT $PERCH_COUNT\\\" >> '{}'\"\n",
            hook_log.display()
        ),
    )
    .unwrap();
    let pty = native_pty_system()
        .openpty(PtySize {
            rows: 40,
            cols: 120,
            pixel_width: 0,
            pixel_height: 0,
        })
        .expect("open a pseudo-terminal");
    let mut cmd = pty::perch_command(home.path(), &["--demo"], &config);
    // No D-Bus session here (desktop = true must stay quiet and harmless without one).
    cmd.env_remove("DBUS_SESSION_BUS_ADDRESS");
    let mut child = pty.slave.spawn_command(cmd).expect("start perch --demo");
    drop(pty.slave);

    let seen = Arc::new(Mutex::new(Seen::default()));
    let parser = Arc::new(Mutex::new(vt100::Parser::new_with_callbacks(
        40,
        120,
        0,
        Recorder(seen.clone()),
    )));
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

    let pending_title = |t: &String| {
        t.strip_prefix("perch · ")
            .and_then(|r| r.strip_suffix(" pending"))
            .and_then(|n| n.parse::<u64>().ok())
            .is_some_and(|n| n > 0)
    };
    wait_for("a 'perch · N pending' title", || {
        seen.lock().unwrap().titles.iter().any(pending_title)
    });
    wait_for("the bell for a new mention", || {
        seen.lock().unwrap().bells > 0
    });
    wait_for("the hook's run", || {
        std::fs::read_to_string(&hook_log).is_ok_and(|t| t.lines().any(|l| l.starts_with('@')))
    });
    let runs = std::fs::read_to_string(&hook_log).unwrap();
    for line in runs.lines() {
        let (account, count) = line.split_once(' ').expect("account and count");
        assert!(account.starts_with('@'), "{line}");
        assert!(count.parse::<usize>().is_ok_and(|n| n >= 1), "{line}");
    }

    writer.write_all(b"q").unwrap();
    writer.flush().unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("perch did not exit after q");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "perch exited with {status:?}");
    std::thread::sleep(Duration::from_millis(200));
    let last = seen.lock().unwrap().titles.last().cloned();
    assert_eq!(
        last.as_deref(),
        Some(""),
        "quitting clears perch's title (and pops the saved one)"
    );
}
