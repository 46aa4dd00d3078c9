//! The `?` overlay: every key, straight from the key map tables (so nothing can be missing).
//! Two columns, so the whole list fits an 80x24 terminal.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Clear, Paragraph};

use crate::app::keymap::{COMPOSER_HELP, NORMAL, NORMAL_SECTIONS};
use crate::text;
use crate::ui::{Theme, centered};

const KEY_COLUMN: usize = 10;

pub fn draw(frame: &mut Frame, screen: Rect, theme: &Theme) {
    // Sections as (title, [(keys, help)]), then split between the columns.
    let mut sections: Vec<(&str, Vec<(&str, &str)>)> = Vec::new();
    let mut rest = NORMAL;
    for (title, n) in NORMAL_SECTIONS {
        let (these, after) = rest.split_at((*n).min(rest.len()));
        sections.push((title, these.iter().map(|b| (b.keys, b.help)).collect()));
        rest = after;
    }
    sections.push(("Composer", COMPOSER_HELP.to_vec()));

    let left: Vec<Line> = section_lines(&sections[..2], theme);
    let right: Vec<Line> = section_lines(&sections[2..], theme);
    let height = left.len().max(right.len()) as u16 + 2;
    let area = centered(screen, 80, height);
    let block = Block::bordered()
        .border_type(BorderType::Rounded)
        .border_style(theme.border_focused)
        .title(Span::styled(" Keys · any key closes this ", theme.title));
    let inner = block.inner(area);
    frame.render_widget(Clear, area);
    frame.render_widget(block, area);
    let [l, r] = Layout::horizontal([Constraint::Fill(1), Constraint::Fill(1)]).areas(inner);
    frame.render_widget(Paragraph::new(left), l);
    frame.render_widget(Paragraph::new(right), r);
}

fn section_lines<'a>(
    sections: &[(&'a str, Vec<(&'a str, &'a str)>)],
    theme: &Theme,
) -> Vec<Line<'a>> {
    let mut lines = Vec::new();
    for (i, (title, entries)) in sections.iter().enumerate() {
        if i > 0 {
            lines.push(Line::default());
        }
        lines.push(Line::styled(format!(" {title}"), theme.title));
        for (keys, help) in entries {
            lines.push(Line::from(vec![
                Span::styled(
                    format!(" {}", text::fit_width(keys, KEY_COLUMN - 1)),
                    theme.key,
                ),
                Span::raw(*help),
            ]));
        }
    }
    lines
}
