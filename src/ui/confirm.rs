//! The bulk confirm: "Ignore 37 mentions? y/n", small and centred, before anything is written.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Clear, Paragraph};

use crate::app::overlay::BulkConfirm;
use crate::ui::{Theme, centered};

pub fn draw(frame: &mut Frame, screen: Rect, confirm: &BulkConfirm, theme: &Theme) {
    let question = confirm.question();
    let width = (question.chars().count() as u16 + 6).max(40);
    let area = centered(screen, width, 5);
    let block = Block::bordered()
        .border_type(BorderType::Rounded)
        .border_style(theme.border_focused)
        .title(Span::styled(" Bulk action ", theme.title));
    let inner = block.inner(area);
    frame.render_widget(Clear, area);
    frame.render_widget(block, area);
    let lines = vec![
        Line::from(Span::styled(question, theme.title)).centered(),
        Line::from(vec![
            Span::styled("y", theme.key),
            Span::styled(" yes   ", theme.dim),
            Span::styled("n Esc", theme.key),
            Span::styled(" no   ", theme.dim),
            Span::styled("u", theme.key),
            Span::styled(" undoes it later", theme.dim),
        ])
        .centered(),
    ];
    frame.render_widget(Paragraph::new(lines), inner);
}

/// "Undo an earlier action?" before `u` undoes something the user did not just do.
pub fn draw_undo(
    frame: &mut Frame,
    screen: Rect,
    action: &crate::store::UndoAction,
    theme: &Theme,
) {
    let question = format!(
        "Undo the last triage action: {}?",
        crate::app::triage::describe_action(action)
    );
    let note = "It is not on screen: a reply went out since, or it is from before.";
    let width = (crate::text::width(&question).max(crate::text::width(note)) as u16 + 6).max(40);
    let area = centered(screen, width, 6);
    let block = Block::bordered()
        .border_type(BorderType::Rounded)
        .border_style(theme.border_focused)
        .title(Span::styled(" Undo ", theme.title));
    let inner = block.inner(area);
    frame.render_widget(Clear, area);
    frame.render_widget(block, area);
    let lines = vec![
        Line::from(Span::styled(question, theme.title)).centered(),
        Line::from(Span::styled(note, theme.dim)).centered(),
        Line::from(vec![
            Span::styled("y", theme.key),
            Span::styled(" undo it   ", theme.dim),
            Span::styled("n Esc", theme.key),
            Span::styled(" keep it", theme.dim),
        ])
        .centered(),
    ];
    frame.render_widget(Paragraph::new(lines), inner);
}
