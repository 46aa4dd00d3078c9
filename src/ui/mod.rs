//! Drawing. `draw` reads `AppState` and never changes it; each pane or overlay has its own file.
//! Everything that came from X goes through `text::for_screen` before it reaches a cell: made
//! terminal-safe, and laid out by grapheme cluster with the width the terminal will use.

mod account_detail;
mod account_overlay;
mod accounts;
mod add_account;
mod badges;
mod composer;
mod confirm;
mod confirm_remove;
mod costs;
mod detail;
mod feed;
mod help;
mod outbox;
pub mod palette;
mod picker;
mod stats;
mod status_bar;
pub mod theme;
mod widgets;
mod wrap;

use chrono::{DateTime, Utc};
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::widgets::{Block, BorderType};

use crate::app::{AppState, Mode, Pane};
pub use theme::Theme;

/// Braille spinner frames; the frame comes from the clock so drawing stays a pure read.
const SPINNER: [&str; 8] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧"];

pub(crate) fn spinner(now: DateTime<Utc>) -> &'static str {
    SPINNER[(now.timestamp().rem_euclid(SPINNER.len() as i64)) as usize]
}

/// Draws the whole screen for `state` as of `now`.
pub fn draw(frame: &mut Frame, state: &AppState, theme: &Theme, now: DateTime<Utc>) {
    let layout = crate::app::screen_layout(frame.area());
    if let Some(area) = layout.accounts {
        accounts::draw(frame, area, state, theme, now);
    }
    feed::draw(frame, layout.feed, state, theme, now);
    if let Some(area) = layout.detail {
        detail::draw(frame, area, state, theme, now);
    }
    status_bar::draw(frame, layout.status, state, theme, now);
    match &state.mode {
        Mode::Normal | Mode::Search => {}
        Mode::Help => help::draw(frame, frame.area(), &state.keymap, theme),
        Mode::Compose(c) => {
            composer::draw(frame, frame.area(), state, c, theme);
            if let Some(picker) = &c.templates {
                picker::draw_templates(frame, frame.area(), picker, &state.keymap, theme);
            }
        }
        Mode::Confirm(c) => confirm::draw(frame, frame.area(), c, &state.keymap, theme),
        Mode::ConfirmUndo(a) => confirm::draw_undo(frame, frame.area(), a, &state.keymap, theme),
        Mode::PickAccount(p) => picker::draw_accounts(frame, frame.area(), state, p, theme),
        Mode::Account(overlay) => account_overlay::draw(frame, state, overlay, theme, now),
    }
}

/// What a click or a wheel turn at (`column`, `row`) of a `width`x`height` screen means, given
/// what `draw` puts there for `state`: the pane under the pointer and, where there is one, the
/// row. `None` over the status bar, and while an overlay, the composer or the search line is
/// open (they take the screen's attention; their keys do the work).
pub fn hit_test(
    state: &AppState,
    theme: &Theme,
    now: DateTime<Utc>,
    size: (u16, u16),
    column: u16,
    row: u16,
) -> Option<crate::app::message::PointerTarget> {
    use crate::app::message::PointerTarget;
    if !matches!(state.mode, Mode::Normal) {
        return None;
    }
    let layout = crate::app::screen_layout(Rect::new(0, 0, size.0, size.1));
    let inside = |area: Rect| {
        column >= area.x && column < area.right() && row >= area.y && row < area.bottom()
    };
    // The panes' insides, within their one-cell borders.
    let inner = |area: Rect| {
        Rect::new(
            area.x + 1,
            area.y + 1,
            area.width.saturating_sub(2),
            area.height.saturating_sub(2),
        )
    };
    if let Some(area) = layout.accounts
        && inside(area)
    {
        let body = inner(area);
        let line = inside(body).then(|| row - body.y);
        return Some(PointerTarget::Accounts(
            line.and_then(|l| accounts::row_at(state, body, l, theme, now)),
        ));
    }
    if inside(layout.feed) {
        let body = inner(layout.feed);
        let index = inside(body)
            .then(|| state.feed.scroll + usize::from(row - body.y))
            .filter(|i| *i < state.feed.rows.len());
        return Some(PointerTarget::Feed(index));
    }
    if let Some(area) = layout.detail
        && inside(area)
    {
        return Some(PointerTarget::Detail);
    }
    None
}

/// A pane's frame, highlighted when it has the focus.
pub(crate) fn pane_block<'a>(state: &AppState, pane: Pane, theme: &Theme) -> Block<'a> {
    let focused = state.focus == pane && matches!(state.mode, Mode::Normal | Mode::Search);
    Block::bordered()
        .border_type(BorderType::Rounded)
        .border_style(if focused {
            theme.border_focused
        } else {
            theme.border
        })
}

/// A rectangle of at most `width` x `height` centred in `area`.
pub(crate) fn centered(area: Rect, width: u16, height: u16) -> Rect {
    area.centered(
        Constraint::Length(width.min(area.width)),
        Constraint::Length(height.min(area.height)),
    )
}

/// The frame drawn while perch gets ready (opening the store, starting the demo): the app's name
/// and what it is doing, centred. Drawn before anything slow happens.
pub fn draw_loading(frame: &mut Frame, theme: &Theme, message: &str) {
    use ratatui::text::{Line, Span};
    use ratatui::widgets::Paragraph;
    let area = frame.area();
    if area.width == 0 || area.height == 0 {
        return;
    }
    let lines = vec![
        Line::from(Span::styled("perch", theme.key)),
        Line::from(Span::styled(
            crate::text::truncate_to_width(message, area.width as usize),
            theme.dim,
        )),
    ];
    let top = area.height.saturating_sub(2) / 2;
    let rect = Rect::new(
        area.x,
        area.y + top,
        area.width,
        area.height.saturating_sub(top).min(2),
    );
    frame.render_widget(
        Paragraph::new(lines).alignment(ratatui::layout::Alignment::Center),
        rect,
    );
}

/// What the search highlights: in post text and names (`None` for a `@handle` search, which
/// looks at handles only), and in handles.
pub(crate) struct Hits<'q> {
    pub text: Option<&'q str>,
    pub handles: Option<&'q str>,
}

impl<'q> Hits<'q> {
    pub(crate) fn of(state: &'q AppState) -> Hits<'q> {
        // The team words (`is:mine`) filter; the rest of the query is the text highlighted.
        let query = state
            .feed
            .search
            .as_ref()
            .map(|s| crate::store::team_words(&s.query, &state.team.me).1.trim())
            .filter(|q| !q.is_empty());
        match query {
            Some(q) => match q.strip_prefix('@') {
                Some(handle) => Hits {
                    text: None,
                    handles: Some(handle).filter(|h| !h.is_empty()),
                },
                None => Hits {
                    text: Some(q),
                    handles: Some(q),
                },
            },
            None => Hits {
                text: None,
                handles: None,
            },
        }
    }
}

/// `text` as spans in `base` style, each case-insensitive occurrence of `needle` in `hit` style
/// (the search rule of `store::search_matches`).
pub(crate) fn highlighted(
    text: String,
    needle: Option<&str>,
    base: ratatui::style::Style,
    hit: ratatui::style::Style,
) -> Vec<ratatui::text::Span<'static>> {
    use ratatui::text::Span;
    let Some(needle) = needle.filter(|n| !n.is_empty()) else {
        return vec![Span::styled(text, base)];
    };
    // Lowercasing must keep byte offsets (always true for ASCII) for positions to carry over.
    let lower = text.to_lowercase();
    let needle = needle.to_lowercase();
    if lower.len() != text.len() {
        return vec![Span::styled(text, base)];
    }
    let mut spans = Vec::new();
    let mut at = 0;
    while let Some(found) = lower[at..].find(&needle) {
        let start = at + found;
        let end = start + needle.len();
        if !text.is_char_boundary(start) || !text.is_char_boundary(end) {
            break;
        }
        if start > at {
            spans.push(Span::styled(text[at..start].to_string(), base));
        }
        spans.push(Span::styled(text[start..end].to_string(), base.patch(hit)));
        at = end;
    }
    if at < text.len() {
        spans.push(Span::styled(text[at..].to_string(), base));
    }
    spans
}
