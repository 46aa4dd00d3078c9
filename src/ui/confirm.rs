//! The bulk confirm: "Ignore 37 mentions? y/n", small and centred, before anything is written.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Clear, Paragraph};

use crate::app::Intent;
use crate::app::keymap::{ConfirmKey, Keymap};
use crate::app::overlay::BulkConfirm;
use crate::ui::{Theme, centered};

/// The first key that answers yes (`y`).
fn yes_keys(keys: &Keymap) -> String {
    keys.confirm.label(ConfirmKey::Yes)
}

/// The keys that answer no, as the dialog shows them: the first one, and Esc when it is bound
/// too (`n Esc`).
fn no_keys(keys: &Keymap) -> String {
    let no: Vec<String> = keys
        .confirm
        .keys_of(ConfirmKey::No)
        .map(|k| k.to_string())
        .collect();
    let first = no.first().cloned().unwrap_or_default();
    if first != "Esc" && no.iter().any(|k| k == "Esc") {
        format!("{first} Esc")
    } else {
        first
    }
}

pub fn draw(frame: &mut Frame, screen: Rect, confirm: &BulkConfirm, keys: &Keymap, theme: &Theme) {
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
            Span::styled(yes_keys(keys), theme.key),
            Span::styled(" yes   ", theme.dim),
            Span::styled(no_keys(keys), theme.key),
            Span::styled(" no   ", theme.dim),
            Span::styled(keys.key(Intent::Undo), theme.key),
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
    keys: &Keymap,
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
            Span::styled(yes_keys(keys), theme.key),
            Span::styled(" undo it   ", theme.dim),
            Span::styled(no_keys(keys), theme.key),
            Span::styled(" keep it", theme.dim),
        ])
        .centered(),
    ];
    frame.render_widget(Paragraph::new(lines), inner);
}
