//! The `?` overlay: every key, straight from the key map tables (so nothing can be missing).
//! Sections flow into as many columns as the screen's height needs (two on 80x24).

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Clear, Paragraph};

use crate::app::keymap::{COMPOSER_HELP, NORMAL, NORMAL_SECTIONS};
use crate::text;
use crate::ui::{Theme, centered};

const KEY_COLUMN: usize = 10;

/// A help section: its title and its (keys, what they do) lines.
pub type Section = (&'static str, Vec<(&'static str, &'static str)>);

/// Every help section, in order.
pub fn sections() -> Vec<Section> {
    let mut sections: Vec<(&str, Vec<(&str, &str)>)> = Vec::new();
    let mut rest = NORMAL;
    for (title, n) in NORMAL_SECTIONS {
        let (these, after) = rest.split_at((*n).min(rest.len()));
        sections.push((title, these.iter().map(|b| (b.keys, b.help)).collect()));
        rest = after;
    }
    sections.push(("Composer", COMPOSER_HELP.to_vec()));
    sections
}

pub fn draw(frame: &mut Frame, screen: Rect, theme: &Theme) {
    let sections = sections();
    let room = usize::from(screen.height.saturating_sub(2)).max(1);
    // Fill columns in order, a section never split; then a blank line between the sections of a
    // column where there is room for all of them.
    // Balance the columns: as few as the height needs, about equally long.
    let total: usize = sections.iter().map(|(_, e)| e.len() + 1).sum();
    let wanted = total.div_ceil(room).max(1);
    let mut columns = fill_columns(&sections, total.div_ceil(wanted).max(1));
    if columns.len() > wanted {
        columns = fill_columns(&sections, room);
    }
    let columns: Vec<Vec<Line>> = columns
        .into_iter()
        .map(|column| {
            let rows: usize = column.iter().map(|(_, e)| e.len() + 1).sum();
            let spaced = rows + column.len().saturating_sub(1) <= room;
            let mut lines = Vec::new();
            for (title, entries) in column {
                if spaced && !lines.is_empty() {
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
        })
        .collect();
    let height = columns.iter().map(Vec::len).max().unwrap_or(0) as u16 + 2;
    let width = (40 * columns.len() as u16).max(80);
    let area = centered(screen, width, height);
    let block = Block::bordered()
        .border_type(BorderType::Rounded)
        .border_style(theme.border_focused)
        .title(Span::styled(" Keys · any key closes this ", theme.title));
    let inner = block.inner(area);
    frame.render_widget(Clear, area);
    frame.render_widget(block, area);
    let areas = Layout::horizontal(vec![Constraint::Fill(1); columns.len()]).split(inner);
    for (lines, area) in columns.into_iter().zip(areas.iter()) {
        frame.render_widget(Paragraph::new(lines), *area);
    }
}

/// Sections in order into columns of at most `limit` lines (a section is never split).
fn fill_columns(sections: &[Section], limit: usize) -> Vec<Vec<&Section>> {
    let mut columns: Vec<Vec<&Section>> = vec![Vec::new()];
    let mut used = 0;
    for section in sections {
        let needed = section.1.len() + 1;
        if used > 0 && used + needed > limit {
            columns.push(Vec::new());
            used = 0;
        }
        if let Some(column) = columns.last_mut() {
            column.push(section);
        }
        used += needed;
    }
    columns
}
