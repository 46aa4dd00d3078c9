//! Colours and styles in one place, so panes agree: two shipped themes (dark, light), the
//! `[theme]` overrides on top (see `config::theme`), and NO_COLOR.
//!
//! Each field below is named in `[theme]` by the name in its comment. Both shipped themes pass a
//! WCAG contrast test (ratio >= 4.5 for every text style against the terminal background and
//! against the selected row's background), computed with xterm's default palette
//! (`ui::palette`) on the terminals assumed by [`DARK_TERMINAL`] and [`LIGHT_TERMINAL`].

use ratatui::style::{Color, Modifier, Style};

use crate::config::theme::{StyleName, StylePatch, ThemeBase, ThemeSettings};
use crate::domain::{MentionStatus, SyncStatus};
use crate::ui::palette::{self, Rgb};

/// The terminal the dark theme is designed for: (default foreground, background).
pub const DARK_TERMINAL: (Rgb, Rgb) = ((0xe5, 0xe5, 0xe5), (0x00, 0x00, 0x00));
/// The terminal the light theme is designed for: (default foreground, background).
pub const LIGHT_TERMINAL: (Rgb, Rgb) = ((0x00, 0x00, 0x00), (0xff, 0xff, 0xff));

#[derive(Clone, Debug, PartialEq)]
pub struct Theme {
    /// `account_colors`: account colours, picked by the account's place in the list.
    pub accounts: Vec<Color>,
    /// `border`
    pub border: Style,
    /// `border_focused`: the frame of the pane with the focus.
    pub border_focused: Style,
    /// `title`: pane titles and headings.
    pub title: Style,
    /// `selection`: the selected row.
    pub selected: Style,
    /// `secondary`: times, names, hints.
    pub dim: Style,
    /// `error`
    pub error: Style,
    /// `info`: notices that something worked.
    pub info: Style,
    /// `key`: key names in hints and help, and the `›` marker of the selected row.
    pub key: Style,
    /// `marker`: marked rows.
    pub marker: Style,
    /// `hit`: search matches in the feed and the detail.
    pub hit: Style,
    /// `status.pending`, `status.processing`, ...: a mention's status.
    pub status: StatusStyles,
    /// `sync.active`, `sync.paused`, ...: an account's sync status.
    pub sync: SyncStyles,
}

#[derive(Clone, Debug, PartialEq)]
pub struct StatusStyles {
    pub pending: Style,
    pub processing: Style,
    pub replied: Style,
    pub ignored: Style,
    pub error: Style,
}

#[derive(Clone, Debug, PartialEq)]
pub struct SyncStyles {
    pub active: Style,
    pub paused: Style,
    pub error: Style,
    pub token_expired: Style,
    pub rate_limited: Style,
}

fn fg(colour: Color) -> Style {
    Style::new().fg(colour)
}

impl Default for Theme {
    fn default() -> Theme {
        Theme::dark()
    }
}

impl Theme {
    /// For dark backgrounds: perch's original look, with the colours that failed the contrast
    /// test on xterm's palette replaced by close 256-colour ones (red 1 -> 203, light blue 12 ->
    /// 75, magenta 5 -> light magenta 13, dark gray 8 text -> 246), and the selection on 235
    /// instead of palette 8, which left ordinary text at 3.2:1.
    pub fn dark() -> Theme {
        let red = Color::Indexed(203);
        let blue = Color::Indexed(75);
        Theme {
            accounts: vec![
                Color::Cyan,
                Color::LightMagenta,
                Color::Yellow,
                blue,
                Color::LightGreen,
                red,
            ],
            border: fg(Color::DarkGray),
            border_focused: fg(Color::Cyan),
            title: Style::new().add_modifier(Modifier::BOLD),
            selected: Style::new()
                .bg(Color::Indexed(235))
                .add_modifier(Modifier::BOLD),
            dim: fg(Color::Gray),
            error: fg(red).add_modifier(Modifier::BOLD),
            info: fg(Color::Green),
            key: fg(Color::Cyan).add_modifier(Modifier::BOLD),
            marker: Style::new().fg(Color::Black).bg(Color::Yellow),
            hit: Style::new()
                .fg(Color::Black)
                .bg(Color::Yellow)
                .add_modifier(Modifier::UNDERLINED),
            status: StatusStyles {
                pending: fg(Color::Yellow),
                processing: fg(blue),
                replied: fg(Color::Green),
                ignored: fg(Color::Indexed(246)),
                error: fg(red),
            },
            sync: SyncStyles {
                active: fg(Color::Green),
                paused: fg(Color::Gray),
                error: fg(red),
                token_expired: fg(Color::LightMagenta),
                rate_limited: fg(Color::Yellow),
            },
        }
    }

    /// For light backgrounds. Only 256-colour indices, not the 16 palette colours: light
    /// terminal schemes often make those pale (yellow, cyan, and palette 7 are unreadable on
    /// white), while 16-255 are the same almost everywhere.
    pub fn light() -> Theme {
        let blue = Color::Indexed(25);
        let green = Color::Indexed(22);
        let red = Color::Indexed(124);
        let purple = Color::Indexed(90);
        let amber = Color::Indexed(94);
        let grey = Color::Indexed(240);
        Theme {
            accounts: vec![
                blue,
                purple,
                green,
                red,
                Color::Indexed(23),
                Color::Indexed(58),
            ],
            border: fg(Color::Indexed(242)),
            border_focused: fg(blue),
            title: Style::new().add_modifier(Modifier::BOLD),
            selected: Style::new()
                .bg(Color::Indexed(254))
                .add_modifier(Modifier::BOLD),
            dim: fg(grey),
            error: fg(red).add_modifier(Modifier::BOLD),
            info: fg(green),
            key: fg(blue).add_modifier(Modifier::BOLD),
            marker: Style::new().fg(Color::Indexed(16)).bg(Color::Indexed(229)),
            hit: Style::new()
                .fg(Color::Indexed(16))
                .bg(Color::Indexed(220))
                .add_modifier(Modifier::UNDERLINED),
            status: StatusStyles {
                pending: fg(amber),
                processing: fg(Color::Indexed(19)),
                replied: fg(green),
                ignored: fg(Color::Indexed(241)),
                error: fg(red),
            },
            sync: SyncStyles {
                active: fg(green),
                paused: fg(grey),
                error: fg(red),
                token_expired: fg(purple),
                rate_limited: fg(amber),
            },
        }
    }

    /// The theme the configuration asks for. `terminal_background` is the colour the terminal
    /// said it has (asked only for `base = "auto"`; `None` when it did not answer: dark).
    /// With `no_color`, colours give way to reverse video and underlines (see [`Theme::without_colour`]).
    /// Whatever the overrides say, the selection stays visible.
    pub fn from_settings(
        settings: &ThemeSettings,
        terminal_background: Option<Rgb>,
        no_color: bool,
    ) -> Theme {
        let mut theme = match settings.base {
            ThemeBase::Dark => Theme::dark(),
            ThemeBase::Light => Theme::light(),
            ThemeBase::Auto => match terminal_background {
                Some(bg) if palette::is_light_background(bg) => Theme::light(),
                _ => Theme::dark(),
            },
        };
        if let Some(colours) = &settings.account_colors
            && !colours.is_empty()
        {
            theme.accounts = colours.clone();
        }
        for (name, patch) in &settings.overrides {
            let style = theme.style_mut(*name);
            *style = apply(*style, patch);
        }
        if no_color {
            return theme.without_colour();
        }
        // A selection without a background of its own (`selection = "red"`, `bg = "default"`)
        // would look like any other row: reverse video keeps it visible.
        let has_bg = theme.selected.bg.is_some_and(|c| c != Color::Reset);
        if !has_bg {
            theme.selected = theme.selected.add_modifier(Modifier::REVERSED);
        }
        theme
    }

    /// Whether `NO_COLOR` is set (https://no-color.org).
    pub fn no_color_from_env() -> bool {
        std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
    }

    /// The dark theme as NO_COLOR shows it.
    pub fn monochrome() -> Theme {
        Theme::dark().without_colour()
    }

    /// This theme for a terminal without colours (NO_COLOR): the selection and marks in reverse
    /// video and search matches underlined, since the terminal library drops every colour then
    /// and a background alone would show nothing.
    pub fn without_colour(self) -> Theme {
        Theme {
            selected: Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD),
            marker: Style::new().add_modifier(Modifier::REVERSED),
            hit: Style::new().add_modifier(Modifier::UNDERLINED | Modifier::BOLD),
            ..self
        }
    }

    /// The style `[theme]` calls `name`.
    pub fn style_mut(&mut self, name: StyleName) -> &mut Style {
        match name {
            StyleName::Selection => &mut self.selected,
            StyleName::Secondary => &mut self.dim,
            StyleName::Title => &mut self.title,
            StyleName::Border => &mut self.border,
            StyleName::BorderFocused => &mut self.border_focused,
            StyleName::Error => &mut self.error,
            StyleName::Info => &mut self.info,
            StyleName::Key => &mut self.key,
            StyleName::Marker => &mut self.marker,
            StyleName::Hit => &mut self.hit,
            StyleName::StatusPending => &mut self.status.pending,
            StyleName::StatusProcessing => &mut self.status.processing,
            StyleName::StatusReplied => &mut self.status.replied,
            StyleName::StatusIgnored => &mut self.status.ignored,
            StyleName::StatusError => &mut self.status.error,
            StyleName::SyncActive => &mut self.sync.active,
            StyleName::SyncPaused => &mut self.sync.paused,
            StyleName::SyncError => &mut self.sync.error,
            StyleName::SyncTokenExpired => &mut self.sync.token_expired,
            StyleName::SyncRateLimited => &mut self.sync.rate_limited,
        }
    }

    /// The style `[theme]` calls `name`.
    pub fn style(&self, name: StyleName) -> Style {
        *self.clone().style_mut(name)
    }

    pub fn account(&self, index: usize) -> Style {
        let colour = self
            .accounts
            .get(index % self.accounts.len().max(1))
            .copied()
            .unwrap_or(Color::Reset);
        Style::new().fg(colour).add_modifier(Modifier::BOLD)
    }

    pub fn sync_status(&self, status: SyncStatus) -> Style {
        match status {
            SyncStatus::Active => self.sync.active,
            SyncStatus::Paused => self.sync.paused,
            SyncStatus::Error => self.sync.error,
            SyncStatus::TokenExpired => self.sync.token_expired,
            SyncStatus::RateLimited => self.sync.rate_limited,
        }
    }

    pub fn mention_status(&self, status: MentionStatus) -> Style {
        match status {
            MentionStatus::Pending => self.status.pending,
            MentionStatus::Processing => self.status.processing,
            MentionStatus::Replied => self.status.replied,
            MentionStatus::Ignored => self.status.ignored,
            MentionStatus::Error => self.status.error,
        }
    }
}

/// `style` with the parts `patch` names replaced.
fn apply(mut style: Style, patch: &StylePatch) -> Style {
    if let Some(c) = patch.fg {
        style = style.fg(c);
    }
    if let Some(c) = patch.bg {
        style = style.bg(c);
    }
    for (flag, modifier) in [
        (patch.bold, Modifier::BOLD),
        (patch.italic, Modifier::ITALIC),
        (patch.underline, Modifier::UNDERLINED),
        (patch.reversed, Modifier::REVERSED),
    ] {
        style = match flag {
            Some(true) => style.add_modifier(modifier),
            Some(false) => style.remove_modifier(modifier),
            None => style,
        };
    }
    style
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::theme::parse_theme_section;

    fn settings(text: &str) -> ThemeSettings {
        parse_theme_section(text).unwrap()
    }

    #[test]
    fn overrides_change_only_what_they_name() {
        let theme = Theme::from_settings(
            &settings(
                "[theme]\nbase = \"light\"\nsecondary = \"#123456\"\n\
                 status.pending = { bold = true }\naccount_colors = [1, 2]\n",
            ),
            None,
            false,
        );
        let light = Theme::light();
        assert_eq!(theme.dim, Style::new().fg(Color::Rgb(0x12, 0x34, 0x56)));
        assert_eq!(
            theme.status.pending,
            light.status.pending.add_modifier(Modifier::BOLD)
        );
        assert_eq!(theme.accounts, vec![Color::Indexed(1), Color::Indexed(2)]);
        assert_eq!(theme.account(3).fg, Some(Color::Indexed(2)));
        assert_eq!(theme.selected, light.selected);
        assert_eq!(theme.border, light.border);
    }

    #[test]
    fn auto_follows_the_terminal_background_and_falls_back_to_dark() {
        let auto = settings("[theme]\nbase = \"auto\"\n");
        assert_eq!(
            Theme::from_settings(&auto, Some((0xff, 0xff, 0xf0)), false),
            Theme::light()
        );
        assert_eq!(
            Theme::from_settings(&auto, Some((0x1e, 0x1e, 0x2e)), false),
            Theme::dark()
        );
        assert_eq!(Theme::from_settings(&auto, None, false), Theme::dark());
        // The default (no [theme]) is dark, whatever the terminal said.
        assert_eq!(
            Theme::from_settings(&ThemeSettings::default(), Some((255, 255, 255)), false),
            Theme::dark()
        );
    }

    #[test]
    fn the_selection_stays_visible_whatever_the_config_says() {
        for text in [
            "[theme]\nselection = { bg = \"default\", bold = false }\n",
            "[theme]\nselection = { fg = \"red\", bg = \"default\" }\n",
        ] {
            let theme = Theme::from_settings(&settings(text), None, false);
            assert!(
                theme.selected.add_modifier.contains(Modifier::REVERSED),
                "{text}: {:?}",
                theme.selected
            );
        }
        // Under NO_COLOR, reverse video even when the config sets a colour and turns it off.
        let theme = Theme::from_settings(
            &settings("[theme]\nselection = { bg = \"blue\", reversed = false }\n"),
            None,
            true,
        );
        assert!(theme.selected.add_modifier.contains(Modifier::REVERSED));
        assert_eq!(theme.selected.bg, None);
        assert!(theme.hit.add_modifier.contains(Modifier::UNDERLINED));
    }
}
