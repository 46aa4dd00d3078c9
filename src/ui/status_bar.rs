//! The status bar: sync state, active filters and counts on the first line; the last message (or
//! the most useful keys) on the second.

use chrono::{DateTime, Utc};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::app::keymap::SearchKey;
use crate::app::{AppState, Intent, Mode, NoticeKind};
use crate::domain::SyncStatus;
use crate::text;
use crate::ui::{Theme, spinner};

pub fn draw(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme, now: DateTime<Utc>) {
    let width = usize::from(area.width);
    let account = match state.selected_account() {
        Some(a) => format!("@{}", text::for_screen(&a.account.twitter_username, true)),
        None => "all accounts".to_string(),
    };
    // Filters and counts first: they are short and always true; the sync state may be long.
    let feed = &state.feed;
    let (search, count) = match &feed.search {
        Some(s) => {
            let plus = if feed.searching() { "+" } else { "" };
            (
                format!(" · /{}", crate::app::search::label(&s.query)),
                if plus.is_empty() {
                    text::count(feed.total, "match", "matches")
                } else {
                    format!("{}+ matches", feed.total)
                },
            )
        }
        None => (String::new(), format!("{} matching", feed.total)),
    };
    let marked = if state.marks.is_empty() {
        String::new()
    } else {
        format!(" · {} marked", state.marks.count_label())
    };
    let mut first: Vec<Span> = vec![Span::styled(
        format!(
            " {account} · {}{search} · {count}{marked} · {} pending{} │ ",
            state.status_filter.label(),
            state.pending_total,
            crate::ui::costs::status_totals(state)
        ),
        theme.dim,
    )];
    first.extend(stream_state(state, theme, now));
    first.extend(sync_state(state, theme, now));
    let used: usize = first.iter().map(|s| s.width()).sum();
    if let Some(banner) = &state.banner {
        let room = width.saturating_sub(used + 3);
        if room > 10 {
            let banner = text::truncate_to_width(&text::for_screen(banner, true), room);
            let pad = width.saturating_sub(used + text::width(&banner) + 1);
            first.push(Span::raw(" ".repeat(pad)));
            first.push(Span::styled(banner, theme.info));
        }
    }

    let second = if matches!(state.mode, Mode::Search) {
        let query = feed.search.as_ref().map_or("", |s| s.query.as_str());
        let query = text::for_screen(query, true);
        Line::from(vec![
            Span::styled(" /", theme.key),
            Span::raw(text::truncate_to_width(&query, width.saturating_sub(40))),
            Span::styled("▏", theme.key),
            Span::styled(
                format!(
                    "  {} keeps the search · {} clears it",
                    state.keymap.search.label(SearchKey::Keep),
                    state.keymap.search.label(SearchKey::Clear)
                ),
                theme.dim,
            ),
        ])
    } else {
        match &state.notice {
            Some(n) => {
                let style = match n.kind {
                    NoticeKind::Info => theme.info,
                    NoticeKind::Error => theme.error,
                };
                Line::from(Span::styled(
                    text::truncate_to_width(&format!(" {}", n.text), width),
                    style,
                ))
            }
            None if matches!(state.mode, Mode::Normal) && token_expired(state).is_some() => {
                // The first line may be too narrow for the remedy; this line always has room.
                let row = token_expired(state).map(|r| &r.account);
                let handle = row
                    .map(|a| text::for_screen(&a.twitter_username, true))
                    .unwrap_or_default();
                Line::from(Span::styled(
                    text::truncate_to_width(
                        &format!(
                            " @{handle}: token expired — press {} to reauthorize",
                            state.keymap.key(Intent::Reauthorize)
                        ),
                        width,
                    ),
                    theme.sync_status(SyncStatus::TokenExpired),
                ))
            }
            None => {
                let hints = match state.mode {
                    Mode::Compose(_) => state.keymap.composer_hints(),
                    _ => state.keymap.normal_hints(),
                };
                hint_line(hints, theme)
            }
        }
    };
    frame.render_widget(Paragraph::new(vec![Line::from(first), second]), area);
}

/// The spinner while a poll runs; otherwise the first account that needs attention; otherwise
/// a quiet "synced".
fn sync_state<'a>(state: &AppState, theme: &Theme, now: DateTime<Utc>) -> Vec<Span<'a>> {
    // An account that needs a new login comes first: nothing else fixes it.
    if let Some(row) = token_expired(state) {
        let a = &row.account;
        return vec![Span::styled(
            format!(
                "@{}: token expired",
                text::for_screen(&a.twitter_username, true)
            ),
            theme.sync_status(a.sync_status),
        )];
    }
    let syncing = state.syncing_handles();
    if !syncing.is_empty() {
        let who = text::for_screen(&syncing.join(" "), true);
        return vec![Span::styled(
            format!("{} syncing {who}", spinner(now)),
            theme.info,
        )];
    }
    let troubled = state.accounts.iter().find(|a| {
        matches!(
            a.account.sync_status,
            SyncStatus::Error | SyncStatus::TokenExpired | SyncStatus::RateLimited
        )
    });
    if let Some(row) = troubled {
        let a = &row.account;
        let what = match a.sync_status {
            SyncStatus::TokenExpired => format!(
                "token expired — press {} to reauthorize",
                state.keymap.key(Intent::Reauthorize)
            ),
            // The engine writes "rate limited until 14:05" (local time) into the account.
            SyncStatus::RateLimited => a
                .error_message
                .as_deref()
                .map(|e| text::for_screen(e, true))
                .unwrap_or_else(|| "rate limited: polling resumes after the reset".to_string()),
            _ => a
                .error_message
                .as_deref()
                .map(|e| text::for_screen(e, true))
                .unwrap_or_else(|| "sync error".to_string()),
        };
        return vec![Span::styled(
            format!("@{}: {what}", text::for_screen(&a.twitter_username, true)),
            theme.sync_status(a.sync_status),
        )];
    }
    if state.accounts.is_empty() {
        return vec![Span::styled(
            format!(
                "no accounts yet: press {} to add one",
                state.keymap.key(Intent::AddAccount)
            ),
            theme.dim,
        )];
    }
    vec![Span::styled(
        format!(
            "✓ {}",
            text::count(state.accounts.len() as u64, "account", "accounts")
        ),
        theme.info,
    )]
}

/// The Activity stream, when perch runs one: `● live ·`, `reconnecting in 8s ·`, `off: reason ·`.
/// Without an app token nothing is shown here (the engine said so once, as a notice).
fn stream_state<'a>(state: &AppState, theme: &Theme, now: DateTime<Utc>) -> Vec<Span<'a>> {
    use crate::sync::stream::{NO_APP_TOKEN, StreamStatus};
    let (label, style) = match &state.accounts_ui.stream {
        None => return Vec::new(),
        Some(StreamStatus::Off { reason }) if reason == NO_APP_TOKEN => return Vec::new(),
        Some(StreamStatus::Live) => ("● live".to_string(), theme.info),
        Some(StreamStatus::Connecting) => ("○ connecting".to_string(), theme.dim),
        Some(StreamStatus::Reconnecting { at, .. }) => {
            let secs = (*at - now).num_seconds();
            let when = if secs <= 0 {
                "reconnecting".to_string()
            } else {
                format!("reconnecting in {secs}s")
            };
            (when, theme.sync_status(SyncStatus::RateLimited))
        }
        Some(StreamStatus::Off { reason }) => (
            format!("off: {}", text::for_screen(reason, true)),
            theme.error,
        ),
    };
    vec![
        Span::styled(label, style),
        Span::styled(" · ".to_string(), theme.dim),
    ]
}

fn hint_line<'a>(hints: Vec<(String, &'a str)>, theme: &Theme) -> Line<'a> {
    let mut spans = vec![Span::raw(" ")];
    for (key, what) in hints {
        spans.push(Span::styled(key, theme.key));
        spans.push(Span::styled(format!(" {what}  "), theme.dim));
    }
    Line::from(spans)
}

fn token_expired(state: &AppState) -> Option<&crate::app::AccountRow> {
    state
        .accounts
        .iter()
        .find(|a| a.account.sync_status == SyncStatus::TokenExpired)
}
