//! The remove dialog: which account, how many mentions it has, and the three choices (keep the
//! mentions, delete them, cancel). It opens on Cancel, so Enter alone never removes anything.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Clear, Paragraph};

use crate::app::accounts::{RemoveChoice, RemoveDialog};
use crate::app::keymap::{Keymap, RemoveAction};
use crate::text;
use crate::ui::widgets::{key_hints, wrap};
use crate::ui::{Theme, centered};

pub fn draw(frame: &mut Frame, screen: Rect, dialog: &RemoveDialog, keys: &Keymap, theme: &Theme) {
    let width = 64.min(screen.width);
    let inner_width = usize::from(width.saturating_sub(4));
    let handle = text::for_screen(&dialog.handle, true);
    let question = format!(
        "perch stops tracking {handle} and forgets its tokens. It has {} stored mention{}: keep {} in the feed, or delete {} too?",
        dialog.mentions,
        if dialog.mentions == 1 { "" } else { "s" },
        if dialog.mentions == 1 { "it" } else { "them" },
        if dialog.mentions == 1 { "it" } else { "them" },
    );
    let mut lines: Vec<Line> = wrap(&question, inner_width)
        .into_iter()
        .map(Line::raw)
        .collect();
    lines.push(Line::default());
    let mut buttons = vec![Span::raw(" ")];
    for choice in RemoveChoice::ALL {
        let (key, label) = match choice {
            RemoveChoice::KeepMentions => (
                keys.remove.label(RemoveAction::KeepMentions),
                "keep mentions",
            ),
            RemoveChoice::DeleteMentions => (
                keys.remove.label(RemoveAction::DeleteMentions),
                "delete mentions",
            ),
            RemoveChoice::Cancel => (keys.remove.label(RemoveAction::Cancel), "cancel"),
        };
        let style = if choice == dialog.choice {
            theme.selected
        } else {
            theme.dim
        };
        buttons.push(Span::styled(format!("[{key}] {label}"), style));
        buttons.push(Span::raw("  "));
    }
    lines.push(Line::from(buttons));

    let height = u16::try_from(lines.len() + 2).unwrap_or(u16::MAX);
    let area = centered(screen, width, height);
    let block = Block::bordered()
        .border_type(BorderType::Rounded)
        .border_style(theme.error)
        .title(Span::styled(format!(" Remove {handle}? "), theme.title))
        .title_bottom(key_hints(
            vec![
                (
                    format!(
                        "{}/{}",
                        keys.remove.label(RemoveAction::PreviousChoice),
                        keys.remove.label(RemoveAction::NextChoice)
                    ),
                    "choose",
                ),
                (keys.remove.label(RemoveAction::Confirm), "confirm"),
            ],
            theme,
        ));
    let inner = block.inner(area);
    frame.render_widget(Clear, area);
    frame.render_widget(block, area);
    let inner = Rect::new(
        inner.x + 1,
        inner.y,
        inner.width.saturating_sub(1),
        inner.height,
    );
    frame.render_widget(Paragraph::new(lines), inner);
}
