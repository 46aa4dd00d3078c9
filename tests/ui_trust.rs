//! Issue 9's screen defects, each as the user met it: `/@handle` found nothing, matches were not
//! highlighted, the selected account was invisible without colour, and two accounts shared a
//! badge at 80x24.

mod ui_fixture;

use crossterm::event::KeyCode;
use perch::app::AppState;
use perch::ui::{Theme, draw};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::style::Modifier;
use ui_fixture::{Fixture, now};

fn buffer(state: &AppState, theme: &Theme) -> Buffer {
    let (w, h) = state.size;
    let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
    terminal
        .draw(|frame| draw(frame, state, theme, now()))
        .unwrap();
    terminal.backend().buffer().clone()
}

fn row_text(buf: &Buffer, y: u16) -> String {
    (0..buf.area.width).map(|x| buf[(x, y)].symbol()).collect()
}

/// Repro of issue 9 item 7: `/chenwei` matched @chenwei_dev but `/@chenwei` found nothing.
#[test]
fn a_leading_at_searches_handles_and_matches_are_highlighted() {
    let fx = Fixture::new(30);
    let mut state = fx.state(120, 40);
    fx.key(&mut state, KeyCode::Char('/'));
    fx.chars(&mut state, "@tanaka");
    fx.key(&mut state, KeyCode::Enter);
    assert!(state.feed.total > 0, "handles are searched");
    assert_eq!(state.feed.total, 6, "the fixture's posts by @tanaka_yu");
    for row in &state.feed.rows {
        assert_eq!(row.primary().sender.username.as_deref(), Some("tanaka_yu"));
    }
    // The same with the account a post was sent to.
    fx.key(&mut state, KeyCode::Char('/'));
    for _ in 0..7 {
        fx.key(&mut state, KeyCode::Backspace);
    }
    fx.chars(&mut state, "@nightowl");
    fx.key(&mut state, KeyCode::Enter);
    assert_eq!(state.feed.total, 10);

    // A text search highlights its matches in the feed and the detail.
    fx.key(&mut state, KeyCode::Char('/'));
    for _ in 0..9 {
        fx.key(&mut state, KeyCode::Backspace);
    }
    fx.chars(&mut state, "norway");
    fx.key(&mut state, KeyCode::Enter);
    assert!(state.feed.total > 0);
    let buf = buffer(&state, &Theme::default());
    let hit = Theme::default().hit;
    let mut highlighted_rows = Vec::new();
    // Row 0 is the title (it names the search); below it, every "norway" is highlighted.
    for y in 1..buf.area.height {
        for x in 0..buf.area.width.saturating_sub(6) {
            let word: String = (x..x + 6).map(|x| buf[(x, y)].symbol()).collect();
            // The title and the status bar quote the query: that is not a match.
            let quoted = x > 0 && buf[(x - 1, y)].symbol() == "\"";
            if word.eq_ignore_ascii_case("norway") && !quoted {
                let cell = &buf[(x, y)];
                assert!(
                    cell.modifier.contains(Modifier::UNDERLINED) && cell.bg == hit.bg.unwrap(),
                    "row {y}: {}",
                    row_text(&buf, y)
                );
                highlighted_rows.push(y);
            }
        }
    }
    assert!(
        highlighted_rows.len() >= 2,
        "in the feed and in the detail: {highlighted_rows:?}"
    );
}

/// Repro of issue 9 item 10: with NO_COLOR the selected account could not be told apart.
#[test]
fn the_selected_account_shows_without_colour() {
    let fx = Fixture::new(10);
    let mut state = fx.state(80, 24);
    fx.key(&mut state, KeyCode::BackTab);
    fx.key(&mut state, KeyCode::Char('j'));
    fx.key(&mut state, KeyCode::Char('j'));
    let buf = buffer(&state, &Theme::monochrome());
    let marked: Vec<String> = (0..buf.area.height)
        .map(|y| row_text(&buf, y))
        .filter(|l| l.starts_with("│›"))
        .collect();
    assert_eq!(marked.len(), 1, "{marked:?}");
    assert!(marked[0].contains("@bluebird_dev"), "{}", marked[0]);
    // And it is in reverse video, which needs no colour either.
    let y = (0..buf.area.height)
        .find(|y| row_text(&buf, *y).starts_with("│›"))
        .unwrap();
    assert!(buf[(3, y)].modifier.contains(Modifier::REVERSED));
}

/// Repro of issue 9 item 9: at 80x24 @nimbusnotes and @nimbus_help both read `@nimbus…`.
#[test]
fn badges_stay_distinct_at_80x24() {
    let fx = Fixture::new(0);
    let mut accounts = Vec::new();
    for (n, name) in [(11u128, "nimbusnotes"), (12, "nimbus_help")] {
        let mut a = perch::domain::Account::new(
            format!("{}", 2000 + n),
            name.into(),
            name.into(),
            None,
            now(),
        );
        a.id = uuid::Uuid::from_u128(n);
        fx.store.put_account(&a).unwrap();
        accounts.push(a);
    }
    for (i, a) in accounts.iter().enumerate() {
        let m = ui_fixture::mention(
            a,
            i,
            1_995_000_000_000_000_000 + i as u64,
            now() - chrono::Duration::seconds(10 + i as i64),
        );
        fx.store.commit_page(a.id, &[m], None).unwrap();
    }
    let state = fx.state(80, 24);
    let buf = buffer(&state, &Theme::default());
    let rows: Vec<String> = (1..4).map(|y| row_text(&buf, y)).collect();
    let badge = |row: &str| {
        row.split_whitespace()
            .find(|w| w.starts_with("@nimbus") || w.starts_with("@nim"))
            .map(str::to_string)
    };
    let badges: Vec<String> = rows
        .iter()
        .filter_map(|r| badge(&r[r.find("││").unwrap()..]))
        .collect();
    assert_eq!(badges.len(), 2, "{rows:#?}");
    assert_ne!(badges[0], badges[1], "{rows:#?}");
}
