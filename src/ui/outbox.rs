//! How the outbox shows on a mention: the feed's status column and the detail pane's lines for a
//! reply that is unconfirmed ("unconfirmed: check on X", with the keys that resolve it) or waiting
//! for X's rate limit ("rate limited: sending at 14:05"). A pure read of `AppState.outbox`.

use ratatui::style::Style;
use ratatui::text::{Line, Span};

use crate::app::{AppState, Intent};
use crate::domain::{Mention, MentionStatus};
use crate::outbox::{OutboxState, ReplyKind, UNCONFIRMED_LABEL};
use crate::ui::Theme;

/// The feed's status cell for `m` (10 cells wide) when the outbox has something to say: "check on
/// X" for an unconfirmed reply, "waiting" for a rate-limited one. `None` otherwise: the row shows
/// its triage status.
pub fn feed_status(state: &AppState, m: &Mention, theme: &Theme) -> Option<(&'static str, Style)> {
    match state.outbox.get(m.key()).map(|e| e.state) {
        Some(OutboxState::Unconfirmed) => Some(("check on X", theme.error)),
        Some(OutboxState::Waiting) => {
            Some(("waiting", theme.mention_status(MentionStatus::Processing)))
        }
        _ => None,
    }
}

/// Lines for the detail pane about `m`'s reply in the outbox, when it needs the user.
pub fn detail_lines<'a>(state: &AppState, m: &Mention, theme: &Theme) -> Vec<Line<'a>> {
    let Some(entry) = state.outbox.get(m.key()) else {
        return Vec::new();
    };
    let noun = entry.kind.noun();
    let from = format!("@{}", crate::text::for_screen(&m.sent_to.username, true));
    let mut out = vec![Line::default()];
    match entry.state {
        OutboxState::Unconfirmed => {
            out.push(Line::styled(UNCONFIRMED_LABEL, theme.error));
            out.push(Line::raw(format!(
                "perch cannot tell whether this {noun} from {from} reached X:"
            )));
            for line in crate::text::for_screen(&entry.text, false).split('\n') {
                out.push(Line::styled(format!("  {line}"), theme.dim));
            }
            if entry.kind == ReplyKind::Dm {
                out.push(Line::styled(
                    "X cannot tell a repeated DM from a new one: look at the conversation first.",
                    theme.dim,
                ));
            }
            let k = &state.keymap;
            out.push(keys_line(
                &[
                    (k.key(Intent::OpenInBrowser), "open the post"),
                    (k.key(Intent::MarkSent), "it is there"),
                    (k.key(Intent::Open), "send again"),
                    (k.key(Intent::CancelSend), "it is not there"),
                ],
                theme,
            ));
        }
        OutboxState::Waiting => {
            let when = entry
                .not_before
                .map(crate::outbox::rate_limited_message)
                .unwrap_or_else(|| "rate limited: sending later".into());
            out.push(Line::styled(format!("{noun} {when}"), theme.info));
            out.push(keys_line(
                &[(
                    state.keymap.key(Intent::CancelSend),
                    "cancel (the draft is kept)",
                )],
                theme,
            ));
        }
        _ => return Vec::new(),
    }
    out
}

fn keys_line<'a>(keys: &[(String, &str)], theme: &Theme) -> Line<'a> {
    let mut spans = Vec::new();
    for (i, (key, what)) in keys.iter().enumerate() {
        if i > 0 {
            spans.push(Span::styled(" · ", theme.dim));
        }
        spans.push(Span::styled(key.clone(), theme.key));
        spans.push(Span::raw(format!(" {what}")));
    }
    Line::from(spans)
}
