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
