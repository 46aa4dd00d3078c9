//! End to end: `[theme] base = "auto"` (here `PERCH_THEME=auto`) in a pseudo-terminal that
//! answers the background query (OSC 11) as a white terminal would. The dashboard comes up in the
//! light theme, and the answer never reaches the dashboard as keys (its `r`, `g`, `b`, `1`, ...
//! would open the composer, move the selection, and so on).

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[path = "support/pty.rs"]
mod pty;

use portable_pty::{PtySize, native_pty_system};

const ROWS: u16 = 30;
const COLS: u16 = 100;

#[test]
fn auto_theme_asks_the_terminal_and_the_answer_never_becomes_keys() {
    let home = tempfile::tempdir().unwrap();
    let pty = native_pty_system()
        .openpty(PtySize {
            rows: ROWS,
            cols: COLS,
            pixel_width: 0,
            pixel_height: 0,
        })
        .expect("open a pseudo-terminal");
    let mut cmd = pty::perch_command(home.path(), &["--demo"], &home.path().join("none.toml"));
    cmd.env("PERCH_THEME", "auto");
    cmd.env_remove("NO_COLOR");
    let mut child = pty.slave.spawn_command(cmd).expect("start perch --demo");
    drop(pty.slave);

    let writer = Arc::new(Mutex::new(pty.master.take_writer().unwrap()));
    let parser = Arc::new(Mutex::new(vt100::Parser::new(ROWS, COLS, 0)));
    let asked = Arc::new(Mutex::new(0usize));
    let mut reader = pty.master.try_clone_reader().unwrap();
    {
        let (parser, writer, asked) = (parser.clone(), writer.clone(), asked.clone());
        std::thread::spawn(move || {
            // Everything perch wrote, to find the query even when it is split across reads.
            let mut seen: Vec<u8> = Vec::new();
            let mut buf = [0u8; 8192];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                seen.extend_from_slice(&buf[..n]);
                let queries = seen.windows(7).filter(|w| w == b"\x1b]11;?\x07").count();
                let mut answered = asked.lock().unwrap();
                if queries > *answered {
                    *answered = queries;
                    // A white terminal's answer, then its answer to DA1, as xterm sends them.
                    let mut w = writer.lock().unwrap();
                    let _ = w.write_all(b"\x1b]11;rgb:ffff/ffff/ffff\x07\x1b[?64;1;2;6;22c");
                    let _ = w.flush();
                }
                parser.lock().unwrap().process(&buf[..n]);
            }
        });
    }

    let wait_for = |what: &str, check: &dyn Fn(&vt100::Screen) -> bool| {
        let start = Instant::now();
        loop {
            {
                let parser = parser.lock().unwrap();
                if check(parser.screen()) {
                    return parser.screen().contents();
                }
                if start.elapsed() > Duration::from_secs(120) {
                    panic!(
                        "timed out waiting for {what}; the screen was:\n{}",
                        parser.screen().contents()
                    );
                }
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    let text = wait_for("the demo's mentions", &|s| {
        let text = s.contents();
        text.contains("All accounts") && text.contains("pending")
    });
    assert_eq!(*asked.lock().unwrap(), 1, "asked once");

    // Nothing of the answer was taken as keys: no composer (`r`), no search prompt (`/`), no
    // help (`?`).
    for not_there in ["replying as", "DM as", "▏", "Keys · any key"] {
        assert!(
            !text.contains(not_there),
            "{not_there:?} on screen:\n{text}"
        );
    }

    // The light theme's colours: its frames (242, or 25 for the focused pane) and its selected
    // row (254), none of the dark theme's (palette 8 frames, 235 selection).
    let screen_colours = |screen: &vt100::Screen| {
        let mut fg = std::collections::BTreeSet::new();
        let mut bg = std::collections::BTreeSet::new();
        for row in 0..ROWS {
            for col in 0..COLS {
                if let Some(cell) = screen.cell(row, col) {
                    fg.insert(format!("{:?}", cell.fgcolor()));
                    bg.insert(format!("{:?}", cell.bgcolor()));
                }
            }
        }
        (fg, bg)
    };
    let (fg, bg) = screen_colours(parser.lock().unwrap().screen());
    assert!(fg.contains("Idx(242)"), "light frames: {fg:?}\n{text}");
    assert!(
        bg.contains("Idx(254)"),
        "the light selection: {bg:?}\n{text}"
    );
    assert!(
        !fg.contains("Idx(8)") && !bg.contains("Idx(235)"),
        "{fg:?} {bg:?}"
    );

    writer.lock().unwrap().write_all(b"q").unwrap();
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "perch exited with {status:?}");
            break;
        }
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("perch did not quit on q");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
