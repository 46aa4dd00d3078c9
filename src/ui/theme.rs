//! Colours and styles in one place, so panes agree and a light theme is one struct away.

use ratatui::style::{Color, Modifier, Style};

use crate::domain::{MentionStatus, SyncStatus};

#[derive(Clone, Debug)]
pub struct Theme {
    /// Account colours, picked by the account's place in the list.
    pub accounts: Vec<Color>,
    pub border: Style,
    pub border_focused: Style,
    pub title: Style,
    pub selected: Style,
    pub dim: Style,
    pub error: Style,
    pub info: Style,
    pub key: Style,
    pub marker: Style,
    /// Search matches in the feed and the detail.
    pub hit: Style,
}

impl Default for Theme {
    fn default() -> Theme {
        Theme {
            accounts: vec![
                Color::Cyan,
                Color::Magenta,
                Color::Yellow,
                Color::LightBlue,
                Color::LightGreen,
                Color::LightRed,
            ],
            border: Style::new().fg(Color::DarkGray),
            border_focused: Style::new().fg(Color::Cyan),
            title: Style::new().add_modifier(Modifier::BOLD),
            selected: Style::new()
                .bg(Color::DarkGray)
                .add_modifier(Modifier::BOLD),
            dim: Style::new().fg(Color::Gray),
            error: Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
            info: Style::new().fg(Color::Green),
            key: Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD),
            marker: Style::new().fg(Color::Black).bg(Color::Yellow),
            hit: Style::new()
                .fg(Color::Black)
                .bg(Color::Yellow)
                .add_modifier(Modifier::UNDERLINED),
        }
    }
}

impl Theme {
    /// The default theme, or, when `NO_COLOR` is set (https://no-color.org), one that shows the
    /// selection and search matches with reverse video and underlines instead of colour (the
    /// terminal library drops colours then, so a background alone would show nothing).
    pub fn from_env() -> Theme {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        if no_color {
            Theme::monochrome()
        } else {
            Theme::default()
        }
    }

    pub fn monochrome() -> Theme {
        Theme {
            selected: Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD),
            marker: Style::new().add_modifier(Modifier::REVERSED),
            hit: Style::new().add_modifier(Modifier::UNDERLINED | Modifier::BOLD),
            ..Theme::default()
        }
    }

    pub fn account(&self, index: usize) -> Style {
        let colour = self.accounts[index % self.accounts.len().max(1)];
        Style::new().fg(colour).add_modifier(Modifier::BOLD)
    }

    pub fn sync_status(&self, status: SyncStatus) -> Style {
        let colour = match status {
            SyncStatus::Active => Color::Green,
            SyncStatus::Paused => Color::Gray,
            SyncStatus::Error => Color::Red,
            SyncStatus::TokenExpired => Color::LightMagenta,
            SyncStatus::RateLimited => Color::Yellow,
        };
        Style::new().fg(colour)
    }

    pub fn mention_status(&self, status: MentionStatus) -> Style {
        let colour = match status {
            MentionStatus::Pending => Color::Yellow,
            MentionStatus::Processing => Color::LightBlue,
            MentionStatus::Replied => Color::Green,
            MentionStatus::Ignored => Color::DarkGray,
            MentionStatus::Error => Color::Red,
        };
        Style::new().fg(colour)
    }
}
