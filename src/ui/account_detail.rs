//! `Enter` on an account: who it is, how it syncs (status, error, last and next poll, the
//! remaining rate-limit budget) and its recent sync events, newest first.

use chrono::{DateTime, Utc};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Clear, Paragraph};

use crate::app::AppState;
use crate::app::accounts::{DetailView, is_polled, next_poll_label};
use crate::app::keymap::{Intent, ViewAction};
use crate::app::time::{compact_age, relative_time};
use crate::text;
use crate::ui::widgets::{field, key_hints, wrap};
use crate::ui::{Theme, centered};

pub fn draw(
    frame: &mut Frame,
    screen: Rect,
    state: &AppState,
    view: &DetailView,
    theme: &Theme,
    now: DateTime<Utc>,
) {
    let Some(row) = state.account(view.account_id) else {
        return;
    };
    let a = &row.account;
    let live = state.accounts_ui.live(a.id);
    let width = 78.min(screen.width);
    let height = screen.height.saturating_sub(2).max(3);
    let area = centered(screen, width, height);
    let value_width = usize::from(width.saturating_sub(17));
    let handle = format!("@{}", text::for_screen(&a.twitter_username, true));
    let account_style = theme.account(state.account_colour_index(a.id));

    let mut lines = vec![
        field(
            "name",
            vec![Span::raw(text::for_screen(&a.display_name, true))],
            theme,
        ),
        field("X user id", vec![Span::raw(a.twitter_id.clone())], theme),
        field("perch id", vec![Span::raw(a.id.to_string())], theme),
    ];
    let polled = is_polled(a.sync_status, a.is_active);
    lines.push(field(
        "status",
        vec![
            Span::styled(
                a.sync_status.as_str().replace('_', " "),
                theme.sync_status(a.sync_status),
            ),
            Span::styled(if polled { "" } else { " (not polled)" }, theme.dim),
        ],
        theme,
    ));
    if let Some(e) = &a.error_message {
        for (i, l) in wrap(&text::for_screen(e, true), value_width)
            .into_iter()
            .enumerate()
        {
            let label = if i == 0 { "error" } else { "" };
            lines.push(field(label, vec![Span::styled(l, theme.error)], theme));
        }
    }
    lines.push(field(
        "added",
        vec![Span::raw(relative_time(a.added_at, now))],
        theme,
    ));
    let synced = match a.last_synced_at {
        Some(t) => relative_time(t, now),
        None => "never".to_string(),
    };
    lines.push(field("last synced", vec![Span::raw(synced)], theme));
    let next = match live.and_then(|l| l.next_poll_at) {
        Some(at) if polled => next_poll_label(at, now),
        _ if !polled => "— (not polled)".to_string(),
        _ => "after the first poll".to_string(),
    };
    lines.push(field("next poll", vec![Span::raw(next)], theme));
    let budget = match live.and_then(|l| l.budget) {
        Some(b) => {
            let reset = if b.reset > now {
                format!(" (resets {})", next_poll_label(b.reset, now))
            } else {
                " (renewed since)".to_string()
            };
            format!("{}/{} requests{reset}", b.remaining, b.limit)
        }
        None => "unknown until the first poll".to_string(),
    };
    lines.push(field("budget", vec![Span::raw(budget)], theme));
    if state.accounts_ui.stream.is_some() {
        let subs = state.accounts_ui.subscriptions.get(&a.id);
        let how = match (state.accounts_ui.streamed(a.id), subs) {
            (Some(true), Some(s)) => {
                let kinds: Vec<&str> = s
                    .subscriptions
                    .iter()
                    .map(|s| s.event_type.as_str())
                    .collect();
                format!("streamed ({})", kinds.join(", "))
            }
            (_, Some(s)) if s.streamed() => "subscribed; the stream is down: polled".to_string(),
            _ => "polled only (no Activity subscription)".to_string(),
        };
        lines.push(field("arrival", vec![Span::raw(how)], theme));
        if let Some(error) = subs.and_then(|s| s.error.as_deref()) {
            for (i, l) in wrap(&text::for_screen(error, true), value_width)
                .into_iter()
                .enumerate()
            {
                let label = if i == 0 { "subscribe" } else { "" };
                lines.push(field(label, vec![Span::styled(l, theme.error)], theme));
            }
        }
    }
    lines.push(field(
        "mentions",
        vec![Span::raw(format!(
            "{} pending · {} tracked",
            row.pending, a.total_mentions_tracked
        ))],
        theme,
    ));
    lines.push(Line::default());
    lines.push(Line::styled(" Sync log (newest first)", theme.title));

    let log_room = usize::from(height.saturating_sub(2)).saturating_sub(lines.len());
    let entries: Vec<Line> = match live {
        Some(l) if !l.log.is_empty() => l
            .log
            .iter()
            .rev()
            .skip(usize::from(view.scroll))
            .take(log_room)
            .map(|e| {
                let style = if e.is_error { theme.error } else { theme.dim };
                Line::from(vec![
                    Span::styled(format!(" {:>4}  ", compact_age(e.at, now)), theme.dim),
                    Span::styled(text::truncate_to_width(&e.text, value_width + 8), style),
                ])
            })
            .collect(),
        _ => vec![Line::styled(" nothing yet this session", theme.dim)],
    };
    lines.extend(entries);

    let block = Block::bordered()
        .border_type(BorderType::Rounded)
        .border_style(account_style)
        .title(Span::styled(format!(" {handle} "), account_style))
        .title_bottom(key_hints(
            {
                let k = &state.keymap;
                vec![
                    (k.view.label(ViewAction::Close), "close"),
                    (
                        format!(
                            "{}/{}",
                            k.view.label(ViewAction::ScrollDown),
                            k.view.label(ViewAction::ScrollUp)
                        ),
                        "log",
                    ),
                    (k.key(Intent::TogglePause), "pause/resume"),
                    (k.key(Intent::FetchAccount), "fetch"),
                    (k.key(Intent::Reauthorize), "reauth"),
                    (k.key(Intent::Stats), "stats"),
                    (k.key(Intent::RemoveAccount), "remove"),
                ]
            },
            theme,
        ));
    let inner = block.inner(area);
    frame.render_widget(Clear, area);
    frame.render_widget(block, area);
    frame.render_widget(Paragraph::new(lines), inner);
}
