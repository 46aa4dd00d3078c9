//! The accounts pane: "All accounts", then each account with its handle (in its colour), sync
//! status (in the status's colour), pending count and when it last synced.

use chrono::{DateTime, Utc};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::app::time::relative_time;
use crate::app::{AppState, Pane};
use crate::text;
use crate::ui::{Theme, pane_block, spinner};

pub fn draw(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme, now: DateTime<Utc>) {
    let block =
        pane_block(state, Pane::Accounts, theme).title(Span::styled(" Accounts ", theme.title));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let width = usize::from(inner.width);
    if width == 0 {
        return;
    }

    // (lines, is_selected) per pane row.
    let mut rows: Vec<(Vec<Line>, bool)> = Vec::new();
    let all = count_line("All accounts", state.pending_total, width, theme.title, "");
    rows.push((vec![all], state.account_selected == 0));
    for (i, row) in state.accounts.iter().enumerate() {
        let a = &row.account;
        let icon = if row.syncing { spinner(now) } else { "●" };
        let handle = format!("@{}", text::sanitize(&a.twitter_username, true));
        let first = count_line(
            &handle,
            row.pending,
            width,
            theme.account(state.account_colour_index(a.id)),
            icon,
        );
        let synced = match a.last_synced_at {
            Some(t) => relative_time(t, now),
            None => "never synced".to_string(),
        };
        let status = a.sync_status.as_str().replace('_', " ");
        let rest = format!(" · {synced}");
        let status_w = text::width(&status).min(width.saturating_sub(2));
        let second = Line::from(vec![
            Span::raw("  "),
            Span::styled(
                text::truncate_to_width(&status, status_w),
                theme.sync_status(a.sync_status),
            ),
            Span::styled(
                text::truncate_to_width(&rest, width.saturating_sub(2 + status_w)),
                theme.dim,
            ),
        ]);
        rows.push((vec![first, second], state.account_selected == i + 1));
    }

    // Scroll so the selected row is on screen (accounts are few; this rarely matters).
    let height = usize::from(inner.height);
    let mut start = 0;
    let lines_before: usize = rows[..state.account_selected.min(rows.len())]
        .iter()
        .map(|(l, _)| l.len())
        .sum();
    if lines_before + 2 > height {
        start = lines_before + 2 - height;
    }
    let mut lines = Vec::new();
    for (row_lines, selected) in rows {
        for line in row_lines {
            lines.push(if selected {
                line.style(theme.selected)
            } else {
                line
            });
        }
    }
    let visible: Vec<Line> = lines.into_iter().skip(start).take(height).collect();
    frame.render_widget(Paragraph::new(visible), inner);
}

/// `icon label ........ count`, fitted to `width` cells.
fn count_line(
    label: &str,
    count: u64,
    width: usize,
    label_style: ratatui::style::Style,
    icon: &str,
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
        Span::styled(
            count_text,
            ratatui::style::Style::new().fg(ratatui::style::Color::Yellow),
        ),
    ])
}
