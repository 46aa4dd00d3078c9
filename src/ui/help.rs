//! The `?` overlay: every key, straight from the key map tables (so nothing can be missing).
//! Sections flow into as many columns as the screen's height needs (two on 80x24).

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Clear, Paragraph};

use crate::app::keymap::Keymap;
use crate::text;
use crate::ui::{Theme, centered};

const KEY_COLUMN: usize = 10;

/// A help section: its title and its (keys, what they do) lines.
pub type Section = (&'static str, Vec<(String, &'static str)>);

/// Every help section, in order, made from the key tables (so a remapped key shows its label).
pub fn sections(keymap: &Keymap) -> Vec<Section> {
    let mut sections = keymap.help_sections();
    sections.push(("Composer", keymap.composer_help()));
    sections
}

pub fn draw(frame: &mut Frame, screen: Rect, keymap: &Keymap, theme: &Theme) {
    let sections = sections(keymap);
    let room = usize::from(screen.height.saturating_sub(2)).max(1);
    // Fill columns in order, a section never split; then a blank line between the sections of a
    // column where there is room for all of them.
    let columns = arrange(&sections, room);
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
                    // Keys wider than the column (a pair such as "PgDn PgUp") push their text
                    // right a little rather than being cut: a key must never be hidden.
                    let keys = if text::width(keys) <= KEY_COLUMN - 2 {
                        text::fit_width(keys, KEY_COLUMN - 2)
                    } else {
                        keys.clone()
                    };
                    lines.push(Line::from(vec![
                        Span::styled(format!(" {keys} "), theme.key),
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

/// Puts the sections into as few columns of at most `room` lines as possible, never splitting a
/// section. Sections keep their order within a column; earlier sections go to earlier columns
/// where that still fits (the first fitting assignment in that order is taken). There are only a
/// handful of sections, so trying the assignments is cheap.
fn arrange(sections: &[Section], room: usize) -> Vec<Vec<&Section>> {
    let sizes: Vec<usize> = sections.iter().map(|(_, e)| e.len() + 1).collect();
    let total: usize = sizes.iter().sum();
    let n = sections.len();
    let fewest = total.div_ceil(room.max(1)).max(1);
    for columns in fewest..=n.clamp(1, 4) {
        let mut assignment = vec![0usize; n];
        loop {
            let mut load = vec![0usize; columns];
            for (i, &c) in assignment.iter().enumerate() {
                load[c] += sizes[i];
            }
            if load.iter().all(|&l| l > 0 && l <= room) {
                return (0..columns)
                    .map(|c| {
                        sections
                            .iter()
                            .zip(&assignment)
                            .filter(|(_, a)| **a == c)
                            .map(|(s, _)| s)
                            .collect()
                    })
                    .collect();
            }
            // The next assignment, the first section being the most significant digit.
            let Some(i) = (0..n).rev().find(|&i| assignment[i] + 1 < columns) else {
                break;
            };
            assignment[i] += 1;
            for later in &mut assignment[i + 1..] {
                *later = 0;
            }
        }
    }
    // Too tall for the screen even so: one section per column, in order (clipped at the bottom).
    sections.iter().map(|s| vec![s]).collect()
}
