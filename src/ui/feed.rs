//! The feed pane: one line per mention, newest first, drawn from the visible part of the feed
//! window only. Columns: age, account badge (in the account's colour), sender, text, status.

use chrono::{DateTime, Utc};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::app::time::compact_age;
use crate::app::{AppState, FeedRow, Pane};
use crate::domain::{AccountId, MentionStatus};
use crate::text;
use crate::ui::{Theme, pane_block};
use std::collections::HashMap;

/// Widths of the feed's columns for one pane width.
struct Columns {
    age: usize,
    badge: usize,
    sender: usize,
    with_name: bool,
    text: usize,
    status: usize,
}

impl Columns {
    fn for_width(width: usize, longest_handle: usize) -> Columns {
        // Selection marker, up to 4 cells of age, a space.
        let age = 6;
        let status = 10;
        let narrow = width < 60;
        let badge = if narrow {
            longest_handle.clamp(4, 8)
        } else {
            longest_handle.clamp(6, 14)
        };
        let sender = if narrow {
            12
        } else {
            (width / 4).clamp(14, 30)
        };
        // Four single spaces between five columns.
        let text = width.saturating_sub(age + badge + sender + status + 4);
        Columns {
            age,
            badge,
            sender,
            with_name: !narrow,
            text,
            status,
        }
    }
}

pub fn draw(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme, now: DateTime<Utc>) {
    let feed = &state.feed;
    let account_label = match state.selected_account() {
        Some(a) => format!("@{}", text::for_screen(&a.account.twitter_username, true)),
        None => "All accounts".to_string(),
    };
    let search = feed
        .search
        .as_ref()
        .map(|s| format!(" · /{}", crate::app::search::label(&s.query)))
        .unwrap_or_default();
    let plus = if feed.searching() { "+" } else { "" };
    let title = format!(
        " Mentions · {account_label} · {}{search} · {}{plus} ",
        state.status_filter.label(),
        feed.total
    );
    let mut block = pane_block(state, Pane::Feed, theme).title(Span::styled(title, theme.title));
    if feed.new_above > 0 {
        let more = if feed.new_above >= crate::app::feed::NEW_ABOVE_CAP {
            "+"
        } else {
            ""
        };
        block = block.title_top(
            Line::from(Span::styled(
                format!(
                    " ▲ {}{more} new ({}) ",
                    feed.new_above,
                    state.keymap.key(crate::app::Intent::Top)
                ),
                theme.marker,
            ))
            .right_aligned(),
        );
    }
    let inner = block.inner(area);
    frame.render_widget(block, area);

    if feed.rows.is_empty() {
        let keys = &state.keymap;
        let hint = if feed.searching() {
            "Searching…".to_string()
        } else if feed.search.is_some() {
            format!(
                "Nothing matches this search ({} clears it).",
                keys.key(crate::app::Intent::Back)
            )
        } else if state.status_filter.status().is_some() || state.selected_account().is_some() {
            format!(
                "No mentions match these filters ({} changes the status filter).",
                keys.key(crate::app::Intent::CycleStatusFilter)
            )
        } else {
            "No mentions yet: they appear here as soon as a sync stores them.".to_string()
        };
        frame.render_widget(
            Paragraph::new(Span::styled(hint, theme.dim))
                .wrap(ratatui::widgets::Wrap { trim: true }),
            inner,
        );
        return;
    }

    let longest_handle = state
        .accounts
        .iter()
        .map(|a| text::width(&a.account.twitter_username) + 1)
        .max()
        .unwrap_or(8);
    let cols = Columns::for_width(usize::from(inner.width), longest_handle);
    let handles: Vec<String> = state
        .accounts
        .iter()
        .map(|a| text::for_screen(&a.account.twitter_username, true))
        .collect();
    let badges: HashMap<AccountId, String> = state
        .accounts
        .iter()
        .map(|a| a.account.id)
        .zip(crate::ui::badges::badges(&handles, cols.badge))
        .collect();
    let selected_line = feed.selected_line();
    let lines: Vec<Line> = feed
        .visible()
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let selected = i == selected_line;
            let line = row(r, selected, &cols, &badges, state, theme, now);
            if selected {
                line.style(theme.selected)
            } else {
                line
            }
        })
        .collect();
    frame.render_widget(Paragraph::new(lines), inner);
}

fn row<'a>(
    r: &FeedRow,
    selected: bool,
    cols: &Columns,
    badges: &HashMap<AccountId, String>,
    state: &AppState,
    theme: &Theme,
    now: DateTime<Utc>,
) -> Line<'a> {
    let m = r.primary();
    // A post sent to several tracked accounts: the first account, and how many more.
    // Listed accounts have badges that tell them apart; a removed one shows its handle, cut.
    let own = badges
        .get(&m.sent_to.account_id)
        .cloned()
        .unwrap_or_else(|| format!("@{}", text::for_screen(&m.sent_to.username, true)));
    let badge = match r.mentions().len() {
        1 => own,
        n => {
            let more = format!("+{}", n - 1);
            let room = cols.badge.saturating_sub(more.len());
            let first = text::truncate_to_width(&own, room);
            let pad = cols.badge.saturating_sub(text::width(&first) + more.len());
            format!("{first}{}{more}", " ".repeat(pad))
        }
    };
    let marked = r.mentions().iter().any(|m| state.marks.contains(m));
    let handle = text::for_screen(&m.sender.handle(), true);
    let name = m
        .sender
        .display_name
        .as_deref()
        .map(|n| text::for_screen(n, true))
        .unwrap_or_default();
    let handle_w = text::width(&handle).min(cols.sender);
    let name_w = if cols.with_name {
        cols.sender.saturating_sub(handle_w + 1)
    } else {
        0
    };
    let name_text = if name_w > 0 && !name.is_empty() {
        format!(" {}", text::fit_width(&name, name_w))
    } else {
        " ".repeat(cols.sender - handle_w)
    };
    // The outbox speaks first: an unconfirmed or rate-limited reply to any of the row's
    // mentions needs the user more than its triage status does. Otherwise one status for the
    // row: the shared one, or "mixed" when the accounts differ.
    let outbox_status = r
        .mentions()
        .iter()
        .find_map(|m| crate::ui::outbox::feed_status(state, m, theme));
    // Then the team: someone else composing for it ("✎ana"), or, while it is pending, who has
    // it ("→ana"; "→me" for this dashboard's person).
    let team_status = || {
        r.mentions().iter().find_map(|m| {
            let key = m.key();
            if let Some(first) = state.team.others_replying(key).first() {
                return Some((format!("✎{}", text::for_screen(first, true)), theme.error));
            }
            let person = state.team.assigned(key)?;
            if state.shown_status(key, m.status) != MentionStatus::Pending {
                return None;
            }
            let who = if state.team.is_mine(key) {
                "me".to_string()
            } else {
                text::for_screen(person, true)
            };
            Some((format!("→{who}"), theme.info))
        })
    };
    let team_status = if outbox_status.is_none() {
        team_status()
    } else {
        None
    };
    let (status_text, status_style) = outbox_status.unwrap_or_else(|| {
        let mut statuses = r
            .mentions()
            .iter()
            .map(|m| state.shown_status(m.key(), m.status));
        let status = statuses.next().unwrap_or(MentionStatus::Pending);
        if statuses.any(|s| s != status) {
            ("mixed", theme.dim)
        } else {
            (status.as_str(), theme.mention_status(status))
        }
    });
    let marker = if marked {
        Span::styled("*", theme.marker)
    } else {
        Span::styled(if selected { "›" } else { " " }, theme.key)
    };
    let hits = crate::ui::Hits::of(state);
    let highlighted = crate::ui::highlighted;
    let plain = ratatui::style::Style::new();
    let mut spans = vec![
        marker,
        Span::styled(
            format!("{:>w$} ", compact_age(m.timestamp, now), w = cols.age - 2),
            theme.dim,
        ),
    ];
    spans.extend(highlighted(
        text::fit_width(&badge, cols.badge),
        hits.handles.filter(|_| hits.text.is_none()),
        theme.account(state.account_colour_index(m.sent_to.account_id)),
        theme.hit,
    ));
    spans.push(Span::raw(" "));
    spans.extend(highlighted(
        text::truncate_to_width(&handle, handle_w),
        hits.handles,
        plain,
        theme.hit,
    ));
    spans.extend(highlighted(name_text, hits.text, theme.dim, theme.hit));
    spans.push(Span::raw(" "));
    spans.extend(highlighted(
        text::fit_width(
            &text::for_screen(without_own_handle(&m.text, &m.sent_to.username), true),
            cols.text,
        ),
        hits.text,
        plain,
        theme.hit,
    ));
    spans.push(Span::raw(" "));
    let (status_text, status_style) = match &team_status {
        Some((text, style)) => (text.as_str(), *style),
        None => (status_text, status_style),
    };
    spans.push(Span::styled(
        text::fit_width(status_text, cols.status),
        status_style,
    ));
    Line::from(spans)
}

/// The post text without the leading "@account" that every mention of that account starts with:
/// the badge already says it, and the one-line view needs the room. The detail pane shows all.
fn without_own_handle<'t>(text: &'t str, username: &str) -> &'t str {
    let trimmed = text.trim_start();
    let Some(rest) = trimmed.strip_prefix('@') else {
        return text;
    };
    let handle_len = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(rest.len());
    if rest[..handle_len].eq_ignore_ascii_case(username) && handle_len > 0 {
        rest[handle_len..].trim_start()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::without_own_handle;

    #[test]
    fn leading_own_handle_is_dropped_only_when_it_is_the_account() {
        assert_eq!(without_own_handle("@Acme hi there", "acme"), "hi there");
        assert_eq!(without_own_handle("@acmecorp hi", "acme"), "@acmecorp hi");
        assert_eq!(without_own_handle("hi @acme", "acme"), "hi @acme");
        assert_eq!(without_own_handle("@acme", "acme"), "");
    }
}
