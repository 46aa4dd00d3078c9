//! Small pickers: which account replies to a post sent to several, and the saved replies.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Clear, Paragraph};

use crate::app::AppState;
use crate::app::keymap::{Keymap, PickerAction};
use crate::app::overlay::{AccountPicker, TemplatePicker};
use crate::text;
use crate::ui::{Theme, centered};

/// "Reply as which account?" with each account in its colour; the first is the default.
pub fn draw_accounts(
    frame: &mut Frame,
    screen: Rect,
    state: &AppState,
    picker: &AccountPicker,
    theme: &Theme,
) {
    let items: Vec<(String, Style)> = picker
        .choices
        .iter()
        .map(|(key, handle)| {
            let style = theme.account(state.account_colour_index(key.account_id));
            (handle.clone(), style)
        })
        .collect();
    draw_list(
        frame,
        screen,
        picker.title(),
        &items,
        picker.selected,
        &state.keymap,
        theme,
    );
}

/// The saved replies of the replying account, filled in.
pub fn draw_templates(
    frame: &mut Frame,
    screen: Rect,
    picker: &TemplatePicker,
    keys: &Keymap,
    theme: &Theme,
) {
    let items: Vec<(String, Style)> = picker
        .items
        .iter()
        .map(|t| (text::for_screen(t, true), Style::default()))
        .collect();
    draw_list(
        frame,
        screen,
        "Saved replies",
        &items,
        picker.selected,
        keys,
        theme,
    );
}

fn draw_list(
    frame: &mut Frame,
    screen: Rect,
    title: &str,
    items: &[(String, Style)],
    selected: usize,
    keys: &Keymap,
    theme: &Theme,
) {
    let width = screen.width.saturating_sub(4).min(72);
    let height = u16::try_from(items.len())
        .unwrap_or(u16::MAX)
        .saturating_add(3)
        .min(screen.height);
    let area = centered(screen, width, height);
    let block = Block::bordered()
        .border_type(BorderType::Rounded)
        .border_style(theme.border_focused)
        .title(Span::styled(format!(" {title} "), theme.title))
        .title_bottom(Line::from(vec![
            Span::styled(
                format!(" {}", keys.picker.label(PickerAction::Choose)),
                theme.key,
            ),
            Span::styled(" choose  ", theme.dim),
            Span::styled("1-9", theme.key),
            Span::styled(" pick  ", theme.dim),
            Span::styled(keys.picker.label(PickerAction::Cancel), theme.key),
            Span::styled(" cancel ", theme.dim),
        ]));
    let inner = block.inner(area);
    frame.render_widget(Clear, area);
    frame.render_widget(block, area);
    let room = usize::from(inner.width).saturating_sub(4);
    let lines: Vec<Line> = items
        .iter()
        .enumerate()
        .map(|(i, (item, style))| {
            let number = if i < 9 {
                format!("{} ", i + 1)
            } else {
                "  ".to_string()
            };
            let line = Line::from(vec![
                Span::styled(if i == selected { "›" } else { " " }, theme.key),
                Span::styled(number, theme.dim),
                Span::styled(text::truncate_to_width(item, room), *style),
            ]);
            if i == selected {
                line.style(theme.selected)
            } else {
                line
            }
        })
        .collect();
    frame.render_widget(Paragraph::new(lines), inner);
}
