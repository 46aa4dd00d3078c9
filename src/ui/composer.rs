//! The composer overlay: who is replying to whom (in the sending account's colour), the post being
//! answered, the editor, and the live length against X's limit.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Clear, Paragraph};

use crate::app::keymap::ComposerAction;
use crate::app::{AppState, Composer};
use crate::text;
use crate::ui::{Theme, centered};

pub fn draw(frame: &mut Frame, screen: Rect, state: &AppState, c: &Composer, theme: &Theme) {
    let area = centered(screen, 76.min(screen.width.saturating_sub(2)), 14);
    let account_style = theme.account(state.account_colour_index(c.key.account_id));
    let over = c.is_over();
    let counter_style = if over { theme.error } else { theme.dim };
    let block = Block::bordered()
        .border_type(BorderType::Rounded)
        .border_style(account_style)
        .title(Span::styled(format!(" {} ", c.header()), account_style))
        .title_bottom(
            Line::from(Span::styled(format!(" {} ", c.counter()), counter_style)).right_aligned(),
        )
        .title_bottom(Line::from(vec![
            Span::styled(
                format!(" {}", state.keymap.composer.label(ComposerAction::Send)),
                theme.key,
            ),
            Span::styled(" send  ", theme.dim),
            Span::styled(
                state.keymap.composer.label(ComposerAction::Close),
                theme.key,
            ),
            Span::styled(" close, keep draft ", theme.dim),
        ]));
    let inner = block.inner(area);
    frame.render_widget(Clear, area);
    frame.render_widget(block, area);

    let [context, editor, refusal] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Min(1),
        Constraint::Length(1),
    ])
    .areas(inner);
    let width = usize::from(context.width);
    let quoted = text::truncate_to_width(
        &format!("{}: {}", c.sender_handle, c.context),
        width.saturating_sub(2),
    );
    // Someone else composing for this mention too (issue 16): said before anything is sent.
    let others = state.team.others_replying(c.key);
    let team_line = if others.is_empty() {
        Line::default()
    } else {
        let names: Vec<String> = others.iter().map(|p| text::for_screen(p, true)).collect();
        let verb = if names.len() == 1 { "is" } else { "are" };
        Line::styled(
            text::truncate_to_width(
                &format!("✎ {} {verb} replying to this too", names.join(" and ")),
                width,
            ),
            theme.error,
        )
    };
    frame.render_widget(
        Paragraph::new(vec![
            Line::styled(
                format!("› {quoted}"),
                theme.dim.add_modifier(Modifier::ITALIC),
            ),
            team_line,
        ]),
        context,
    );
    frame.render_widget(&c.editor, editor);
    if c.refusal.is_none()
        && let Some(note) = &c.cost_note
    {
        frame.render_widget(
            Paragraph::new(Span::styled(
                text::truncate_to_width(note, width),
                theme.error,
            )),
            refusal,
        );
    }
    if let Some(reason) = &c.refusal {
        frame.render_widget(
            Paragraph::new(Span::styled(
                text::truncate_to_width(&format!("not sent: {reason}"), width),
                theme.error,
            )),
            refusal,
        );
    }
}
