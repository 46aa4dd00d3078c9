//! The shipped themes are readable: every text style has a WCAG contrast ratio of at least 4.5
//! against the background it is drawn on (the terminal's, and the selected row's), computed with
//! xterm's default palette (`perch::ui::palette`) on the terminal each theme assumes (dark:
//! #e5e5e5 on #000000, light: #000000 on #ffffff). The figures are kept in a snapshot
//! (`snapshots/ui_theme__contrast_*.snap`). And the light theme as drawn, styles included.

mod ui_fixture;

use crossterm::event::KeyCode;
use perch::config::theme::StyleName;
use perch::ui::palette::{Rgb, contrast_ratio, rgb_of};
use perch::ui::theme::{DARK_TERMINAL, LIGHT_TERMINAL};
use perch::ui::{Theme, draw};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::style::{Color, Style};
use ui_fixture::{Fixture, now};

const MINIMUM: f64 = 4.5;

fn hex((r, g, b): Rgb) -> String {
    format!("#{r:02x}{g:02x}{b:02x}")
}

/// One line per style: its colours and contrast ratios. Panics (listing every failure) when
/// one is under [`MINIMUM`].
fn contrast_table(theme: &Theme, (term_fg, term_bg): (Rgb, Rgb)) -> String {
    let selection_bg = rgb_of(theme.selected.bg.unwrap_or(Color::Reset), term_bg);
    let mut styles: Vec<(String, Style)> = StyleName::ALL
        .iter()
        .map(|name| (name.name().to_string(), theme.style(*name)))
        .collect();
    for i in 0..theme.accounts.len() {
        styles.push((format!("account_colors[{i}]"), theme.account(i)));
    }
    let mut out = format!(
        "terminal: {} on {}; selected row: {}\n{:<20} {:>8} {:>8} {:>6} {:>13}\n",
        hex(term_fg),
        hex(term_bg),
        hex(selection_bg),
        "style",
        "fg",
        "bg",
        "ratio",
        "on selection"
    );
    let mut failures = Vec::new();
    for (name, style) in styles {
        let fg = rgb_of(style.fg.unwrap_or(Color::Reset), term_fg);
        let bg = rgb_of(style.bg.unwrap_or(Color::Reset), term_bg);
        let ratio = contrast_ratio(fg, bg);
        if ratio < MINIMUM {
            failures.push(format!("{name}: {} on {}: {ratio:.2}", hex(fg), hex(bg)));
        }
        // A style without a background of its own is also drawn on the selected row (a status,
        // an account, a time); borders never are, and the selection is its own background.
        let own_bg = style.bg.is_some_and(|c| c != Color::Reset);
        let on_selection = if own_bg || name.starts_with("border") {
            "-".to_string()
        } else {
            let ratio = contrast_ratio(fg, selection_bg);
            if ratio < MINIMUM {
                failures.push(format!(
                    "{name} on the selection: {} on {}: {ratio:.2}",
                    hex(fg),
                    hex(selection_bg)
                ));
            }
            format!("{ratio:.2}")
        };
        out.push_str(&format!(
            "{name:<20} {:>8} {:>8} {ratio:>6.2} {on_selection:>13}\n",
            hex(fg),
            hex(bg)
        ));
    }
    assert!(
        failures.is_empty(),
        "styles under {MINIMUM}:1\n{}\n\n{out}",
        failures.join("\n")
    );
    out
}

#[test]
fn every_text_style_of_the_dark_theme_has_contrast() {
    insta::assert_snapshot!(
        "contrast_dark",
        contrast_table(&Theme::dark(), DARK_TERMINAL)
    );
}

#[test]
fn every_text_style_of_the_light_theme_has_contrast() {
    insta::assert_snapshot!(
        "contrast_light",
        contrast_table(&Theme::light(), LIGHT_TERMINAL)
    );
}

/// Issue 15: secondary text was palette 7 (#e5e5e5), 1.3:1 on a white terminal, and the
/// selection palette 8 (#7f7f7f), under which ordinary text was 3.2:1 on a dark one.
#[test]
fn the_old_colours_fail_the_check_the_themes_pass() {
    let (fg, bg) = DARK_TERMINAL;
    assert!(contrast_ratio(fg, rgb_of(Color::DarkGray, bg)) < MINIMUM);
    let (_, white) = LIGHT_TERMINAL;
    assert!(contrast_ratio(rgb_of(Color::Gray, white), white) < 1.5);
}

/// The screen as a grid of characters, then every run of cells that share a style, so a
/// snapshot shows the colours too.
fn render_with_styles(theme: &Theme, width: u16, height: u16) -> String {
    let fx = Fixture::new(40);
    let mut state = fx.state(width, height);
    fx.press(&mut state, KeyCode::Char('j'), 2);
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("test terminal");
    terminal
        .draw(|frame| draw(frame, &state, theme, now()))
        .expect("draw");
    let buffer = terminal.backend().buffer();
    let mut out = terminal.backend().to_string();
    out.push_str("\nstyles (row, first..last column: fg / bg / modifiers):\n");
    for y in 0..height {
        let mut run: Option<(u16, u16, Style)> = None;
        let flush = |run: Option<(u16, u16, Style)>, out: &mut String| {
            if let Some((from, to, style)) = run
                && style != Style::default()
            {
                out.push_str(&format!(
                    "{y:>2} {from:>3}..{to:<3} {:?} / {:?} / {:?}\n",
                    style.fg.unwrap_or(Color::Reset),
                    style.bg.unwrap_or(Color::Reset),
                    style.add_modifier
                ));
            }
        };
        for x in 0..width {
            let cell = &buffer[(x, y)];
            let style = Style::new()
                .fg(cell.fg)
                .bg(cell.bg)
                .add_modifier(cell.modifier);
            let style = if style == Style::new().fg(Color::Reset).bg(Color::Reset) {
                Style::default()
            } else {
                style
            };
            run = match run {
                Some((from, _, s)) if s == style => Some((from, x, s)),
                other => {
                    flush(other, &mut out);
                    Some((x, x, style))
                }
            };
        }
        flush(run, &mut out);
    }
    out
}

#[test]
fn the_light_theme_as_drawn() {
    insta::assert_snapshot!("light_100x30", render_with_styles(&Theme::light(), 100, 30));
}
