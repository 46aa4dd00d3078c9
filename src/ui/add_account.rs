//! The add-account / reauthorize dialog: "Connecting to X…" with the authorization URL (the
//! browser may be on another machine) and a paste field for the redirect address or the bare
//! code; then "Checking the code…"; or why the login failed and how to fix it.
//!
//! The dialog spans the screen's width with no side borders, so the URL's lines hold nothing but
//! the URL and can be copied from the terminal.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};

use crate::app::accounts::{LoginDialog, LoginPhase};
use crate::app::keymap::{Keymap, LoginAction};
use crate::text;
use crate::ui::Theme;
use crate::ui::widgets::{key_hints, wrap};

pub fn draw(frame: &mut Frame, screen: Rect, dialog: &LoginDialog, k: &Keymap, theme: &Theme) {
    let width = screen.width;
    // One column of margin each side.
    let inner_width = usize::from(width.saturating_sub(2)).max(1);
    let mut lines: Vec<Line> = Vec::new();
    let label = |a: LoginAction| k.login.label(a);
    let mut keys: Vec<(String, &str)> = vec![(label(LoginAction::Cancel), "cancel")];
    match &dialog.phase {
        LoginPhase::Starting => {
            lines.push(Line::styled("Starting the login…", theme.info));
            lines.push(Line::default());
            paste_field(&mut lines, dialog, inner_width, theme);
        }
        LoginPhase::Waiting { url } => {
            lines.push(Line::styled("Connecting to X…", theme.info));
            for l in wrap(
                "Approve perch in the browser. If no browser opened (or it is on another machine), open this address:",
                inner_width,
            ) {
                lines.push(Line::raw(l));
            }
            // Character-wrapped: a URL has no spaces to break at.
            for chunk in chunks(url, inner_width) {
                lines.push(Line::styled(chunk, theme.key));
            }
            lines.push(Line::default());
            for l in wrap(
                &format!(
                    "Then paste the address the browser ends up on (or just the code) and press {}:",
                    label(LoginAction::Submit)
                ),
                inner_width,
            ) {
                lines.push(Line::raw(l));
            }
            if dialog.copied {
                lines.push(Line::styled("(link copied to the clipboard)", theme.info));
            }
            paste_field(&mut lines, dialog, inner_width, theme);
            keys = vec![
                (label(LoginAction::CopyLink), "copy link"),
                (label(LoginAction::Submit), "use the pasted address"),
                (label(LoginAction::ClearInput), "clear"),
                (label(LoginAction::Cancel), "cancel"),
            ];
        }
        LoginPhase::Exchanging => {
            for l in wrap(
                "Checking the authorization with X and reading the account…",
                inner_width,
            ) {
                lines.push(Line::styled(l, theme.info));
            }
        }
        LoginPhase::Failed(failure) => {
            lines.push(Line::styled(failure.kind.heading(), theme.error));
            for l in wrap(&text::for_screen(&failure.message, true), inner_width) {
                lines.push(Line::raw(l));
            }
            keys = vec![
                (label(LoginAction::Submit), "try again"),
                (label(LoginAction::Cancel), "close"),
            ];
        }
    }

    let block = Block::default()
        .borders(Borders::TOP | Borders::BOTTOM)
        .border_style(theme.border_focused)
        .title(Span::styled(format!(" {} ", dialog.title()), theme.title))
        .title_bottom(key_hints(keys, theme));
    let needed = u16::try_from(lines.len() + 2).unwrap_or(u16::MAX);
    let height = needed.min(screen.height);
    let body = Paragraph::new(lines);
    let area = Rect::new(
        screen.x,
        screen.y + screen.height.saturating_sub(height) / 2,
        width,
        height,
    );
    frame.render_widget(Clear, area);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let inner = Rect::new(
        inner.x + 1,
        inner.y,
        inner.width.saturating_sub(2),
        inner.height,
    );
    frame.render_widget(body, inner);
}

fn paste_field<'a>(
    lines: &mut Vec<Line<'a>>,
    dialog: &LoginDialog,
    width: usize,
    theme: &'a Theme,
) {
    // The end of what was pasted, so the cursor stays in view.
    let room = width.saturating_sub(4).max(1);
    let shown = tail(&dialog.paste, room);
    lines.push(Line::from(vec![
        Span::styled("› ", theme.key),
        Span::raw(shown),
        Span::styled("█", theme.dim),
    ]));
    if let Some(e) = &dialog.paste_error {
        for l in wrap(&text::for_screen(e, true), width) {
            lines.push(Line::styled(l, theme.error));
        }
    }
}

/// Splits `s` into pieces of at most `width` cells.
fn chunks(s: &str, width: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for c in text::for_screen(s, true).chars() {
        if text::width(&current) + text::width(&c.to_string()) > width {
            out.push(std::mem::take(&mut current));
        }
        current.push(c);
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// The last `width` cells of `s`.
fn tail(s: &str, width: usize) -> String {
    let mut out: Vec<char> = Vec::new();
    let mut used = 0;
    for c in s.chars().rev() {
        let w = text::width(&c.to_string());
        if used + w > width {
            break;
        }
        used += w;
        out.push(c);
    }
    out.into_iter().rev().collect()
}
