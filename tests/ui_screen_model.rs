//! The screen the terminal shows is exactly what ratatui's buffer says. The dashboard is drawn
//! through the real crossterm backend into a vt100 screen model, frame after frame (overlays open
//! and close over the feed, so only changed cells are sent), over mentions full of hard text:
//! flags, ZWJ families, skin tones, Devanagari, Thai, Arabic with marks, CJK, combining accents,
//! variation selectors. After every frame each cell of the model must hold what the buffer holds,
//! in the same column: a cluster the two measured differently would shift the rest of its line
//! and leave stray glyphs behind (issue 9 item 4).

mod ui_fixture;

use std::io::Write;
use std::sync::{Arc, Mutex};

use chrono::Duration;
use crossterm::event::KeyCode;
use perch::app::AppState;
use perch::domain::Mention;
use perch::ui::{Theme, draw};
use ratatui::backend::CrosstermBackend;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::{Terminal, TerminalOptions, Viewport};
use ui_fixture::{Fixture, mention, now};
use unicode_width::UnicodeWidthStr;

/// Text that terminals and width tables disagree on, one kind per post.
const HARD: &[(&str, &str)] = &[
    ("Ana 🇧🇷", "release 4.3🇷beta broke sync 🇯🇵🇺🇦🇧🇷 and 🏴󠁧󠁢󠁳󠁣󠁴󠁿 flags"),
    ("Kai 👨‍💻", "family 👨‍👩‍👧‍👦 rainbow 🏳️‍🌈 dev 👩🏾‍💻 ok"),
    ("Zoë 👍🏽", "skin tones 👍🏻👍🏿 ✋🏽 🙋🏽‍♀️ done"),
    ("राज सिंह", "press R in सिंक होते समय लिंक टूट जाता है, क्षमा करें"),
    ("สมชาย", "ไม่สามารถเข้าสู่ระบบได้ ที่นี่ กำลังโหลด น้ำ"),
    ("سارة", "مَرْحَبًا، هَلْ يُمْكِنُنِي الدَّفْعُ؟ ﷽ می‌خواهم"),
    (
        "田中 優",
        "注文した商品がまだ届きません 한국어 텍스트 ｆｕｌｌ",
    ),
    ("Crème", "Crème brûlée, e\u{301}, Z̤͔ͧ̑̓ä͖̭̈̇lͮ̒ͫǧ̗͚̚o̙̔ͮ̇͐̇ text"),
    ("✔︎ Check", "☺︎ ☺️ ❤️ ✔︎ 1️⃣ #️⃣ ©️ ™ selectors"),
    ("கொடு", "தமிழ் கொடு বাংলা ভাষা ಕನ್ನಡ mixed"),
];

/// A fixture whose newest posts are the hard corpus.
fn hard_fixture() -> (Fixture, Vec<Mention>) {
    let fx = Fixture::new(12);
    let mut made = Vec::new();
    for (i, (name, text)) in HARD.iter().enumerate() {
        let account = &fx.accounts[i % 2];
        let id = 1_994_000_000_000_000_000 + (HARD.len() - i) as u64 * 1_000_000_000;
        let mut m = mention(account, i, id, now() - Duration::seconds(i as i64));
        m.text = format!("@{} {text}", account.twitter_username);
        m.sender.display_name = Some((*name).to_string());
        fx.store
            .commit_page(account.id, std::slice::from_ref(&m), None)
            .unwrap();
        made.push(m);
    }
    (fx, made)
}

/// The bytes the backend writes, kept for the screen model.
#[derive(Clone, Default)]
struct Wire(Arc<Mutex<Vec<u8>>>);

impl Write for Wire {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

struct Screen {
    terminal: Terminal<CrosstermBackend<Wire>>,
    wire: Wire,
    model: vt100::Parser,
    size: (u16, u16),
}

impl Screen {
    fn new(width: u16, height: u16) -> Screen {
        let wire = Wire::default();
        let terminal = Terminal::with_options(
            CrosstermBackend::new(wire.clone()),
            TerminalOptions {
                viewport: Viewport::Fixed(Rect::new(0, 0, width, height)),
            },
        )
        .expect("terminal");
        Screen {
            terminal,
            wire,
            model: vt100::Parser::new(height, width, 0),
            size: (width, height),
        }
    }

    /// Draws a frame and checks the model against the buffer, cell by cell.
    fn draw_and_compare(&mut self, state: &AppState, what: &str) {
        let frame = self
            .terminal
            .draw(|frame| draw(frame, state, &Theme::default(), now()))
            .expect("draw");
        let expected = buffer_rows(frame.buffer);
        let bytes = std::mem::take(&mut *self.wire.0.lock().unwrap());
        self.model.process(&bytes);
        let seen = model_rows(self.model.screen(), self.size);
        for (row, (want, got)) in expected.iter().zip(&seen).enumerate() {
            let first = want.iter().zip(got).position(|(a, b)| a != b);
            assert_eq!(
                first.map(|x| (x, &want[x], &got[x])),
                None,
                "{what} at {}x{}: row {row}, first differing column\n buffer: {}\n screen: {}",
                self.size.0,
                self.size.1,
                want.concat(),
                got.concat()
            );
            assert_eq!(
                want,
                got,
                "{what} at {}x{}: row {row} differs\n buffer: {}\n screen: {}",
                self.size.0,
                self.size.1,
                want.concat(),
                got.concat()
            );
        }
    }
}

/// Each row as one string per column: the cell's symbol, "" for the columns a wide symbol
/// covers.
fn buffer_rows(buffer: &Buffer) -> Vec<Vec<String>> {
    let area = buffer.area;
    (0..area.height)
        .map(|y| {
            let mut row = Vec::with_capacity(area.width as usize);
            let mut x = 0;
            while x < area.width {
                let symbol = buffer[(x, y)].symbol();
                let symbol = if symbol.is_empty() { " " } else { symbol };
                row.push(symbol.to_string());
                for _ in 1..symbol.width().max(1) {
                    row.push(String::new());
                }
                x += symbol.width().max(1) as u16;
            }
            row.truncate(area.width as usize);
            row
        })
        .collect()
}

fn model_rows(screen: &vt100::Screen, (width, height): (u16, u16)) -> Vec<Vec<String>> {
    (0..height)
        .map(|y| {
            (0..width)
                .map(|x| match screen.cell(y, x) {
                    Some(c) if c.is_wide_continuation() => String::new(),
                    Some(c) if c.has_contents() => c.contents().to_string(),
                    _ => " ".to_string(),
                })
                .collect()
        })
        .collect()
}

/// Every screen a user goes through while reading these posts: the feed and its detail on each
/// one, the stats overlay, an account's detail, the help, the composer, and back.
fn walk(width: u16, height: u16) {
    let (fx, hard) = hard_fixture();
    let mut state = fx.state(width, height);
    let mut screen = Screen::new(width, height);
    screen.draw_and_compare(&state, "first frame");
    for i in 0..hard.len() {
        fx.key(&mut state, KeyCode::Char('j'));
        screen.draw_and_compare(&state, &format!("feed, row {}", i + 1));
    }
    fx.key(&mut state, KeyCode::Char('g'));
    screen.draw_and_compare(&state, "back to the top");
    for (key, what) in [
        (KeyCode::Char('s'), "stats overlay"),
        (KeyCode::Esc, "stats closed"),
        (KeyCode::Char('?'), "help"),
        (KeyCode::Esc, "help closed"),
        (KeyCode::Char('j'), "next row"),
        (KeyCode::Char('r'), "composer"),
        (KeyCode::Esc, "composer closed"),
        (KeyCode::Tab, "detail focused"),
        (KeyCode::Char('j'), "detail scrolled"),
        (KeyCode::BackTab, "feed again"),
        (KeyCode::BackTab, "accounts pane"),
        (KeyCode::Char('j'), "first account"),
        (KeyCode::Enter, "account detail"),
        (KeyCode::Esc, "account detail closed"),
    ] {
        fx.key(&mut state, key);
        screen.draw_and_compare(&state, what);
    }
    // A search whose hits are the hard posts.
    fx.key(&mut state, KeyCode::Char('/'));
    fx.chars(&mut state, "a");
    fx.key(&mut state, KeyCode::Enter);
    screen.draw_and_compare(&state, "search");
}

#[test]
fn the_terminal_shows_what_the_buffer_says_at_80x24() {
    walk(80, 24);
}

#[test]
fn the_terminal_shows_what_the_buffer_says_at_120x40() {
    walk(120, 40);
}
