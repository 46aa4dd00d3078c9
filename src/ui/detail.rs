//! The detail pane: the selected mention in full (wrapped), who sent it, which account it was sent
//! to, its status, the thread it belongs to, and any reply perch sent or error it met.

use chrono::{DateTime, Utc};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::app::time::relative_time;
use crate::app::{AppState, Pane};
use crate::domain::{Mention, ReferenceKind, Response};
use crate::text;
use crate::ui::{Theme, pane_block};

/// The most of a post's text the pane shows (X's longest posts are 25 000 characters).
const MAX_SHOWN_POST_CHARS: usize = 25_000;

pub fn draw(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme, now: DateTime<Utc>) {
    let block = pane_block(state, Pane::Detail, theme).title(Span::styled(" Detail ", theme.title));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let Some(row) = state.feed.selected_row() else {
        return;
    };
    let lines = crate::ui::wrap::wrap(&lines(row.mentions(), state, theme, now), inner.width);
    // Clamp the scroll to the text so End (scroll = max) shows the last screenful.
    let total = u16::try_from(lines.len()).unwrap_or(u16::MAX);
    let scroll = state.detail_scroll.min(total.saturating_sub(inner.height));
    let paragraph = Paragraph::new(lines);
    frame.render_widget(paragraph.scroll((scroll, 0)), inner);
}

/// The post (the same for every mention of a row) with, per account it was sent to, its status
/// and any reply.
fn lines<'a>(
    mentions: &[Mention],
    state: &AppState,
    theme: &Theme,
    now: DateTime<Utc>,
) -> Vec<Line<'a>> {
    let clean = |s: &str| text::for_screen(s, true);
    let mut out = Vec::new();
    let Some(m) = mentions.first() else {
        return out;
    };

    // Fields from X are bounded where they are shown: a 10 000-character username must not
    // fill the pane.
    let field = text::shown_field;
    let hits = crate::ui::Hits::of(state);
    let mut from = crate::ui::highlighted(
        field(&m.sender.handle()),
        hits.handles,
        theme.title,
        theme.hit,
    );
    if let Some(name) = &m.sender.display_name {
        from.extend(crate::ui::highlighted(
            format!("  {}", field(name)),
            hits.text,
            ratatui::style::Style::new(),
            theme.hit,
        ));
    }
    out.push(Line::from(from));

    let mut to = vec![Span::styled("to ", theme.dim)];
    for (i, each) in mentions.iter().enumerate() {
        if i > 0 {
            to.push(Span::styled(", ", theme.dim));
        }
        let style = theme.account(state.account_colour_index(each.sent_to.account_id));
        to.push(Span::styled(
            format!("@{}", clean(&each.sent_to.username)),
            style,
        ));
    }
    to.push(Span::styled(
        format!(
            " · {} · {}",
            relative_time(m.timestamp, now),
            m.timestamp.format("%Y-%m-%d %H:%M UTC")
        ),
        theme.dim,
    ));
    out.push(Line::from(to));

    let mut status_line = vec![Span::styled("status ", theme.dim)];
    for (i, each) in mentions.iter().enumerate() {
        let status = state.shown_status(each.key(), each.status);
        if mentions.len() > 1 {
            let sep = if i > 0 { " · " } else { "" };
            status_line.push(Span::styled(
                format!("{sep}@{} ", clean(&each.sent_to.username)),
                theme.dim,
            ));
        }
        status_line.push(Span::styled(status.as_str(), theme.mention_status(status)));
        // Pushed by the Activity stream (polled mentions, the usual case, say nothing).
        let streamed = state
            .selected_arrivals
            .iter()
            .any(|(k, a)| *k == each.key() && *a == crate::domain::Arrival::Stream);
        if streamed {
            status_line.push(Span::styled(" (arrived by stream)", theme.dim));
        }
    }
    out.push(Line::from(status_line));
    // Who on the team has it, and who is replying to it now (issue 16).
    for each in mentions {
        let key = each.key();
        let mut team = Vec::new();
        if let Some(person) = state.team.assigned(key) {
            let who = if state.team.is_mine(key) {
                "you".to_string()
            } else {
                clean(person)
            };
            team.push(format!("assigned to {who}"));
        }
        let others = state.team.others_replying(key);
        if !others.is_empty() {
            let names: Vec<String> = others.iter().map(|p| clean(p)).collect();
            let verb = if names.len() == 1 { "is" } else { "are" };
            team.push(format!("{} {verb} replying", names.join(" and ")));
        }
        if !team.is_empty() {
            let on = if mentions.len() > 1 {
                format!("@{}: ", clean(&each.sent_to.username))
            } else {
                String::new()
            };
            out.push(Line::styled(
                format!("{on}{}", team.join(" · ")),
                theme.info,
            ));
        }
    }
    out.push(Line::default());

    // The post itself, keeping its line breaks (sanitised: no control sequences).
    let hits = crate::ui::Hits::of(state);
    for line in text::for_screen(&text::bounded(&m.text, MAX_SHOWN_POST_CHARS), false).split('\n') {
        out.push(Line::from(crate::ui::highlighted(
            line.to_string(),
            hits.text,
            ratatui::style::Style::new(),
            theme.hit,
        )));
    }

    // The thread: what it replies to or quotes, the conversation, and the post's own link.
    out.push(Line::default());
    for r in &m.referenced_posts {
        let how = match r.kind {
            ReferenceKind::RepliedTo => "↳ in reply to",
            ReferenceKind::Quoted => "❝ quoting",
        };
        let who = r
            .author_username
            .as_deref()
            .map(|u| format!(" @{}", field(u)))
            .unwrap_or_default();
        let what = match &r.text {
            Some(t) => format!(": {}", clean(&text::bounded(t, MAX_SHOWN_POST_CHARS))),
            None => format!(" post {} (not returned by X)", field(&r.tweet_id)),
        };
        out.push(Line::from(vec![
            Span::styled(format!("{how}{who}"), theme.dim),
            Span::raw(what),
        ]));
    }
    if let Some(c) = &m.conversation_id {
        out.push(Line::styled(
            format!("conversation {}", field(c)),
            theme.dim,
        ));
    }
    out.push(Line::from(vec![
        Span::styled(clean(&m.url()), theme.dim),
        Span::styled(
            format!("  {}", state.keymap.key(crate::app::Intent::OpenInBrowser)),
            theme.key,
        ),
        Span::styled(" opens · ", theme.dim),
        Span::styled(state.keymap.key(crate::app::Intent::CopyLink), theme.key),
        Span::styled(" copies", theme.dim),
    ]));

    for each in mentions {
        // With several accounts, say which one each reply or error belongs to.
        let from = if mentions.len() > 1 {
            format!(" from @{}", clean(&each.sent_to.username))
        } else {
            String::new()
        };
        for (label, response) in [
            ("replied publicly", &each.public_response),
            ("DM sent", &each.dm_response),
        ] {
            if let Some(r) = response {
                out.push(Line::default());
                out.extend(response_lines(&format!("{label}{from}"), r, theme, now));
            }
        }
        // An unconfirmed or waiting reply says more than its error does (and which keys resolve
        // it), so the outbox's lines replace the error line.
        let outbox = crate::ui::outbox::detail_lines(state, each, theme);
        if let Some(e) = each.error_message.as_ref().filter(|_| outbox.is_empty()) {
            out.push(Line::default());
            out.push(Line::from(vec![
                Span::styled(format!("error{from} "), theme.error),
                Span::raw(clean(e)),
            ]));
        }
        out.extend(outbox);
    }
    out
}

fn response_lines<'a>(
    label: &str,
    r: &Response,
    theme: &Theme,
    now: DateTime<Utc>,
) -> Vec<Line<'a>> {
    let mut out = vec![Line::styled(
        format!(
            "{label} {} ({})",
            relative_time(r.sent_at, now),
            text::for_screen(&crate::outbox::response_id_label(r), true)
        ),
        theme.info,
    )];
    for line in text::for_screen(&r.text, false).split('\n') {
        out.push(Line::raw(format!("  {line}")));
    }
    out
}
