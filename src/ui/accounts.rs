//! The accounts pane: "All accounts", then each account with its handle (in its colour), sync
//! status (in the status's colour), pending count and when it last synced.

use chrono::{DateTime, Utc};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::app::accounts::{is_polled, next_poll_label};
use crate::app::time::relative_time;
use crate::app::{AccountRow, AppState, Pane};
use crate::domain::{MentionStatus, SyncStatus};
use crate::text;
use crate::ui::{Theme, pane_block, spinner};

pub fn draw(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme, now: DateTime<Utc>) {
    let block =
        pane_block(state, Pane::Accounts, theme).title(Span::styled(" Accounts ", theme.title));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let Some(rows) = pane_rows(state, usize::from(inner.width), theme, now) else {
        return;
    };
    let start = first_line(&rows, state.account_selected, usize::from(inner.height));
    let mut lines = Vec::new();
    for (row_lines, selected) in rows {
        for (i, mut line) in row_lines.into_iter().enumerate() {
            if i == 0 {
                let marker = if selected { "›" } else { " " };
                line.spans.insert(0, Span::styled(marker, theme.key));
            }
            lines.push(if selected {
                line.style(theme.selected)
            } else {
                line
            });
        }
    }
    let visible: Vec<Line> = lines
        .into_iter()
        .skip(start)
        .take(usize::from(inner.height))
        .collect();
    frame.render_widget(Paragraph::new(visible), inner);
}

/// The pane row under line `line` of the pane's inside (0 = "All accounts"), as drawn for a
/// pane `inner` cells wide and high: what a click there selects.
pub fn row_at(
    state: &AppState,
    inner: Rect,
    line: u16,
    theme: &Theme,
    now: DateTime<Utc>,
) -> Option<usize> {
    let rows = pane_rows(state, usize::from(inner.width), theme, now)?;
    let mut at =
        first_line(&rows, state.account_selected, usize::from(inner.height)) + usize::from(line);
    for (i, (row_lines, _)) in rows.iter().enumerate() {
        if at < row_lines.len() {
            return Some(i);
        }
        at -= row_lines.len();
    }
    None
}

/// The first line shown: scrolled so the selected row is on screen (accounts are few; this
/// rarely matters).
fn first_line(rows: &[(Vec<Line>, bool)], selected: usize, height: usize) -> usize {
    let selected = selected.min(rows.len().saturating_sub(1));
    let lines_before: usize = rows[..selected].iter().map(|(l, _)| l.len()).sum();
    let selected_lines = rows.get(selected).map_or(1, |(l, _)| l.len());
    (lines_before + selected_lines).saturating_sub(height)
}

/// Each pane row's lines (without the selection marker) and whether it is selected, for a pane
/// `width` cells wide inside its border (`None`: too narrow to draw).
fn pane_rows(
    state: &AppState,
    width: usize,
    theme: &Theme,
    now: DateTime<Utc>,
) -> Option<Vec<(Vec<Line<'static>>, bool)>> {
    // One column is the selection marker, so the selection shows without colour (NO_COLOR).
    if width < 2 {
        return None;
    }
    // The first line of a row is one column narrower (the marker); the lines under it start
    // with spaces and keep the whole width.
    let full = width;
    let width = width - 1;

    // The pending counts, in the pending status's colour.
    let pending_style = theme.mention_status(MentionStatus::Pending);
    let mut rows: Vec<(Vec<Line>, bool)> = Vec::new();
    let all = count_line(
        "All accounts",
        state.pending_total,
        width,
        theme.title,
        "",
        pending_style,
    );
    rows.push((vec![all], state.account_selected == 0));
    for (i, row) in state.accounts.iter().enumerate() {
        let a = &row.account;
        let icon = if row.syncing { spinner(now) } else { "●" };
        let handle = format!("@{}", text::for_screen(&a.twitter_username, true));
        // An account that needs a new login stands out in its status's colour, not its own.
        let handle_style = if a.sync_status == SyncStatus::TokenExpired {
            theme
                .sync_status(a.sync_status)
                .add_modifier(Modifier::BOLD)
        } else {
            theme.account(state.account_colour_index(a.id))
        };
        let first = count_line(
            &handle,
            row.pending,
            width,
            handle_style,
            icon,
            pending_style,
        );
        let synced = match a.last_synced_at {
            Some(t) => relative_time(t, now),
            None => "never synced".to_string(),
        };
        let status = a.sync_status.as_str().replace('_', " ");
        let rest = format!(" · {synced}");
        let status_w = text::width(&status).min(full.saturating_sub(2));
        let second = Line::from(vec![
            Span::raw("  "),
            Span::styled(
                text::truncate_to_width(&status, status_w),
                theme.sync_status(a.sync_status),
            ),
            Span::styled(
                text::truncate_to_width(&rest, full.saturating_sub(2 + status_w)),
                theme.dim,
            ),
        ]);
        let mut row_lines = vec![first, second];
        if let Some(third) = schedule_line(state, row, full, theme, now) {
            row_lines.push(third);
        }
        if let Some(cost) = crate::ui::costs::account_line(state, a.id, width, theme) {
            row_lines.push(cost);
        }
        rows.push((row_lines, state.account_selected == i + 1));
    }

    Some(rows)
}

/// `icon label ........ count`, fitted to `width` cells.
fn count_line(
    label: &str,
    count: u64,
    width: usize,
    label_style: ratatui::style::Style,
    icon: &str,
    count_style: ratatui::style::Style,
) -> Line<'static> {
    let count_text = if count > 0 {
        count.to_string()
    } else {
        String::new()
    };
    let prefix = if icon.is_empty() {
        String::new()
    } else {
        format!("{icon} ")
    };
    let label_w = width.saturating_sub(text::width(&prefix) + text::width(&count_text) + 1);
    Line::from(vec![
        Span::styled(prefix, label_style),
        Span::styled(text::fit_width(label, label_w), label_style),
        Span::raw(" "),
        Span::styled(count_text, count_style),
    ])
}

/// The third line of an account row: when it is polled next and its remaining budget, once the
/// engine has said; for an account that needs a new login, the key that fixes it.
fn schedule_line(
    state: &AppState,
    row: &AccountRow,
    width: usize,
    theme: &Theme,
    now: DateTime<Utc>,
) -> Option<Line<'static>> {
    let a = &row.account;
    if a.sync_status == SyncStatus::TokenExpired {
        return Some(Line::styled(
            text::truncate_to_width(
                &format!(
                    "  {} reauthorizes",
                    state.keymap.key(crate::app::Intent::Reauthorize)
                ),
                width,
            ),
            theme.sync_status(a.sync_status),
        ));
    }
    if !is_polled(a.sync_status, a.is_active) {
        return None;
    }
    let live = state.accounts_ui.live(a.id)?;
    let next = live.next_poll_at.map(|at| next_poll_label(at, now));
    let budget = live.budget.map(|b| format!("{}/{}", b.remaining, b.limit));
    // The longest wording that fits the pane.
    let mut candidates: Vec<String> = match (&next, &budget) {
        (Some(n), Some(b)) => vec![
            format!("next poll {n} · {b} left"),
            format!("next {n} · {b}"),
            format!("{n} · {b}"),
        ],
        (Some(n), None) => vec![format!("next poll {n}"), format!("next {n}")],
        (None, Some(b)) => vec![format!("budget {b} left"), format!("budget {b}")],
        (None, None) => Vec::new(),
    };
    // With a stream running, say first how this account's mentions arrive.
    let how = match state.accounts_ui.streamed(a.id) {
        Some(true) => Some("streamed"),
        Some(false) => Some("polled only"),
        None => None,
    };
    if let Some(how) = how {
        candidates = candidates
            .into_iter()
            .map(|c| format!("{how} · {c}"))
            .chain([how.to_string()])
            .collect();
    }
    if candidates.is_empty() {
        return None;
    }
    let candidates: Vec<String> = candidates.into_iter().map(|c| format!("  {c}")).collect();
    let text_line = candidates
        .iter()
        .find(|c| text::width(c) <= width)
        .cloned()
        .unwrap_or_else(|| text::truncate_to_width(&candidates[candidates.len() - 1], width));
    Some(Line::styled(text_line, theme.dim))
}
