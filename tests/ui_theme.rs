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

/// The screen as an SVG image: each cell's background, its text in its colour (xterm's
/// palette, as the contrast check assumes), bold and underline; on the terminal `terminal`
/// describes (default foreground, background).
fn render_svg(theme: &Theme, (term_fg, term_bg): (Rgb, Rgb), width: u16, height: u16) -> String {
    const CELL_W: u32 = 9;
    const CELL_H: u32 = 18;
    let fx = Fixture::new(40);
    let mut state = fx.state(width, height);
    fx.press(&mut state, KeyCode::Char('j'), 2);
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("test terminal");
    terminal
        .draw(|frame| draw(frame, &state, theme, now()))
        .expect("draw");
    let buffer = terminal.backend().buffer();
    let escape = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" \
         font-family=\"DejaVu Sans Mono, Menlo, Consolas, monospace\" font-size=\"15\">\n\
         <rect width=\"{w}\" height=\"{h}\" fill=\"{bg}\"/>\n",
        w = u32::from(width) * CELL_W,
        h = u32::from(height) * CELL_H,
        bg = hex(term_bg)
    );
    // Per row: runs of cells with one background as one rectangle, runs of one-cell
    // characters in one style as one text stretched to their cells (so the grid holds whatever
    // the font), and every other character on its own.
    for y in 0..height {
        let py = u32::from(y) * CELL_H;
        // Backgrounds first, then the text over them.
        let (mut rects, mut texts) = (String::new(), String::new());
        let mut bg_run: Option<(u32, u32, Rgb)> = None;
        let mut text_run: Option<(u32, String, (Rgb, bool, bool))> = None;
        let flush_bg = |run: Option<(u32, u32, Rgb)>, svg: &mut String| {
            if let Some((from, cells, bg)) = run
                && bg != term_bg
            {
                svg.push_str(&format!(
                    "<rect x=\"{}\" y=\"{py}\" width=\"{}\" height=\"{CELL_H}\" fill=\"{}\"/>\n",
                    from * CELL_W,
                    cells * CELL_W,
                    hex(bg)
                ));
            }
        };
        let flush_text = |run: Option<(u32, String, (Rgb, bool, bool))>, svg: &mut String| {
            let Some((from, text, (fg, bold, underline))) = run else {
                return;
            };
            if text.trim().is_empty() {
                return;
            }
            let cells = text.chars().count() as u32;
            svg.push_str(&format!(
                "<text x=\"{}\" y=\"{}\" fill=\"{}\"{}{} textLength=\"{}\" \
                 lengthAdjust=\"spacingAndGlyphs\" xml:space=\"preserve\">{}</text>\n",
                from * CELL_W,
                py + CELL_H - 5,
                hex(fg),
                if bold { " font-weight=\"bold\"" } else { "" },
                if underline {
                    " text-decoration=\"underline\""
                } else {
                    ""
                },
                cells * CELL_W,
                escape(&text)
            ));
        };
        for x in 0..width {
            let cell = &buffer[(x, y)];
            let modifier = cell.modifier;
            let (mut fg, mut bg) = (rgb_of(cell.fg, term_fg), rgb_of(cell.bg, term_bg));
            if modifier.contains(ratatui::style::Modifier::REVERSED) {
                std::mem::swap(&mut fg, &mut bg);
            }
            let x = u32::from(x);
            bg_run = match bg_run {
                Some((from, cells, b)) if b == bg => Some((from, cells + 1, b)),
                other => {
                    flush_bg(other, &mut rects);
                    Some((x, 1, bg))
                }
            };
            let style = (
                fg,
                modifier.contains(ratatui::style::Modifier::BOLD),
                modifier.contains(ratatui::style::Modifier::UNDERLINED),
            );
            let symbol = cell.symbol();
            let narrow =
                symbol.chars().count() == 1 && unicode_width::UnicodeWidthStr::width(symbol) == 1;
            if !narrow {
                flush_text(text_run.take(), &mut texts);
                if !symbol.is_empty() {
                    flush_text(Some((x, symbol.to_string(), style)), &mut texts);
                }
                continue;
            }
            text_run = match text_run {
                Some((from, mut text, s)) if s == style => {
                    text.push_str(symbol);
                    Some((from, text, s))
                }
                other => {
                    flush_text(other, &mut texts);
                    Some((x, symbol.to_string(), style))
                }
            };
        }
        flush_bg(bg_run, &mut rects);
        flush_text(text_run, &mut texts);
        svg.push_str(&rects);
        svg.push_str(&texts);
    }
    svg.push_str("</svg>\n");
    svg
}

/// The "done when" of issue 15 ("the light theme is readable on a light terminal"), as images
/// anyone can open: `docs/screenshots/{light,dark}-theme.svg`, checked to be up to date (write
/// them again with `PERCH_WRITE_SCREENSHOTS=1 cargo test --test ui_theme`).
#[test]
fn the_screenshots_in_docs_are_up_to_date() {
    for (name, theme, terminal) in [
        ("light", Theme::light(), LIGHT_TERMINAL),
        ("dark", Theme::dark(), DARK_TERMINAL),
    ] {
        let svg = render_svg(&theme, terminal, 100, 30);
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("docs/screenshots")
            .join(format!("{name}-theme.svg"));
        if std::env::var_os("PERCH_WRITE_SCREENSHOTS").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &svg).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == svg,
            "{} is out of date: run PERCH_WRITE_SCREENSHOTS=1 cargo test --test ui_theme",
            path.display()
        );
    }
}
