//! The `[theme]` section: which shipped theme to start from (`base`) and per-style overrides.
//!
//! ```toml
//! [theme]
//! base = "light"                       # "dark" (default), "light" or "auto"
//! secondary = "244"                    # a colour alone sets the foreground
//! selection = { bg = "#dadada", bold = true }
//! account_colors = ["blue", 90, "#875f00"]
//! status.pending = { fg = "130", bold = true }
//! ```
//!
//! This module only reads and checks the section; `ui::theme` builds the styles from it. The
//! TOML is walked with its spans (`toml::de::DeTable`), so every mistake is reported with its
//! line and the closest valid name.

use std::borrow::Cow;
use std::ops::Range;

use ratatui::style::Color;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// Which shipped theme the overrides apply to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ThemeBase {
    /// For dark terminal backgrounds: perch's original look.
    #[default]
    Dark,
    /// For light terminal backgrounds.
    Light,
    /// Ask the terminal for its background colour at start (OSC 11); dark when it does not say.
    Auto,
}

impl ThemeBase {
    pub const NAMES: [&'static str; 3] = ["dark", "light", "auto"];

    pub fn parse(s: &str) -> Option<ThemeBase> {
        match s.trim().to_ascii_lowercase().as_str() {
            "dark" => Some(ThemeBase::Dark),
            "light" => Some(ThemeBase::Light),
            "auto" => Some(ThemeBase::Auto),
            _ => None,
        }
    }
}

/// A style the theme names, as written in `[theme]`. `ui::theme::Theme` has one field (or one
/// status entry) for each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StyleName {
    /// The selected row (`Theme::selected`).
    Selection,
    /// Secondary text: times, names, hints (`Theme::dim`).
    Secondary,
    Title,
    Border,
    BorderFocused,
    Error,
    Info,
    Key,
    Marker,
    Hit,
    StatusPending,
    StatusProcessing,
    StatusReplied,
    StatusIgnored,
    StatusError,
    SyncActive,
    SyncPaused,
    SyncError,
    SyncTokenExpired,
    SyncRateLimited,
}

impl StyleName {
    pub const ALL: [StyleName; 20] = [
        StyleName::Selection,
        StyleName::Secondary,
        StyleName::Title,
        StyleName::Border,
        StyleName::BorderFocused,
        StyleName::Error,
        StyleName::Info,
        StyleName::Key,
        StyleName::Marker,
        StyleName::Hit,
        StyleName::StatusPending,
        StyleName::StatusProcessing,
        StyleName::StatusReplied,
        StyleName::StatusIgnored,
        StyleName::StatusError,
        StyleName::SyncActive,
        StyleName::SyncPaused,
        StyleName::SyncError,
        StyleName::SyncTokenExpired,
        StyleName::SyncRateLimited,
    ];

    /// The name in `[theme]` (dotted for the `status` and `sync` tables).
    pub fn name(self) -> &'static str {
        match self {
            StyleName::Selection => "selection",
            StyleName::Secondary => "secondary",
            StyleName::Title => "title",
            StyleName::Border => "border",
            StyleName::BorderFocused => "border_focused",
            StyleName::Error => "error",
            StyleName::Info => "info",
            StyleName::Key => "key",
            StyleName::Marker => "marker",
            StyleName::Hit => "hit",
            StyleName::StatusPending => "status.pending",
            StyleName::StatusProcessing => "status.processing",
            StyleName::StatusReplied => "status.replied",
            StyleName::StatusIgnored => "status.ignored",
            StyleName::StatusError => "status.error",
            StyleName::SyncActive => "sync.active",
            StyleName::SyncPaused => "sync.paused",
            StyleName::SyncError => "sync.error",
            StyleName::SyncTokenExpired => "sync.token_expired",
            StyleName::SyncRateLimited => "sync.rate_limited",
        }
    }

    fn from_name(name: &str) -> Option<StyleName> {
        StyleName::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// What an override changes in a style: only the parts it names.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StylePatch {
    pub fg: Option<Color>,
    pub bg: Option<Color>,
    pub bold: Option<bool>,
    pub italic: Option<bool>,
    pub underline: Option<bool>,
    pub reversed: Option<bool>,
}

const PATCH_KEYS: [&str; 6] = ["fg", "bg", "bold", "italic", "underline", "reversed"];

/// The checked `[theme]` section.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ThemeSettings {
    pub base: ThemeBase,
    /// The account colours, in order, replacing the base theme's list.
    pub account_colors: Option<Vec<Color>>,
    /// One entry per style named (TOML allows each key once), in name order.
    pub overrides: Vec<(StyleName, StylePatch)>,
}

/// The colour names accepted (besides `"0"`-`"255"` and `"#rrggbb"`), as the xterm palette's
/// 16 entries and the terminal's own default.
const COLOUR_NAMES: [(&str, Color); 17] = [
    ("default", Color::Reset),
    ("black", Color::Black),
    ("red", Color::Red),
    ("green", Color::Green),
    ("yellow", Color::Yellow),
    ("blue", Color::Blue),
    ("magenta", Color::Magenta),
    ("cyan", Color::Cyan),
    ("gray", Color::Gray),
    ("darkgray", Color::DarkGray),
    ("lightred", Color::LightRed),
    ("lightgreen", Color::LightGreen),
    ("lightyellow", Color::LightYellow),
    ("lightblue", Color::LightBlue),
    ("lightmagenta", Color::LightMagenta),
    ("lightcyan", Color::LightCyan),
    ("white", Color::White),
];

/// A mistake in the section: where it is (a byte range of the file) and what it is.
#[derive(Debug, PartialEq)]
pub struct ThemeError {
    pub span: Range<usize>,
    pub message: String,
}

impl ThemeError {
    fn at<T>(item: &Spanned<T>, message: String) -> ThemeError {
        ThemeError {
            span: item.span(),
            message,
        }
    }
}

/// Reads the `[theme]` section of a config file's text. A file without one gives the defaults.
/// The file is already known to be valid TOML (the caller parsed it first), but a parse error
/// here is reported all the same.
pub fn parse_theme_section(text: &str) -> Result<ThemeSettings, ThemeError> {
    let document = DeTable::parse(text).map_err(|e| ThemeError {
        span: e.span().unwrap_or(0..0),
        message: e.message().to_string(),
    })?;
    let Some((_, section)) = document
        .get_ref()
        .iter()
        .find(|(k, _)| k.get_ref() == "theme")
    else {
        return Ok(ThemeSettings::default());
    };
    let DeValue::Table(table) = section.get_ref() else {
        return Err(ThemeError::at(
            section,
            "theme must be a table ([theme])".into(),
        ));
    };
    let mut settings = ThemeSettings::default();
    for (key, value) in table.iter() {
        match key.get_ref().as_ref() {
            "base" => {
                let name = value.get_ref().as_str().unwrap_or_default();
                settings.base = ThemeBase::parse(name).ok_or_else(|| {
                    ThemeError::at(
                        value,
                        format!(
                            "[theme] base = {}: expected one of \"dark\", \"light\", \"auto\"{}",
                            shown(value.get_ref()),
                            did_you_mean(name, ThemeBase::NAMES)
                        ),
                    )
                })?;
            }
            "account_colors" => {
                let DeValue::Array(items) = value.get_ref() else {
                    return Err(ThemeError::at(
                        value,
                        "[theme] account_colors must be a list of colours, like [\"cyan\", \"magenta\", 214]".into(),
                    ));
                };
                let colours = items
                    .iter()
                    .map(|item| colour(item, "account_colors"))
                    .collect::<Result<Vec<_>, _>>()?;
                if colours.is_empty() {
                    return Err(ThemeError::at(
                        value,
                        "[theme] account_colors is empty: give at least one colour".into(),
                    ));
                }
                settings.account_colors = Some(colours);
            }
            group @ ("status" | "sync") if matches!(value.get_ref(), DeValue::Table(_)) => {
                let DeValue::Table(inner) = value.get_ref() else {
                    unreachable!("matched as a table just above")
                };
                for (name, style) in inner.iter() {
                    let full = format!("{group}.{}", name.get_ref());
                    let style_name =
                        StyleName::from_name(&full).ok_or_else(|| unknown_style(name, &full))?;
                    settings.overrides.push((style_name, patch(style, &full)?));
                }
            }
            other => {
                let style_name =
                    StyleName::from_name(other).ok_or_else(|| unknown_style(key, other))?;
                settings.overrides.push((style_name, patch(value, other)?));
            }
        }
    }
    Ok(settings)
}

fn unknown_style(key: &Spanned<Cow<'_, str>>, name: &str) -> ThemeError {
    let names = ["base", "account_colors"]
        .into_iter()
        .chain(StyleName::ALL.iter().map(|s| s.name()));
    ThemeError::at(
        key,
        format!("[theme] has no style {name:?}{}", did_you_mean(name, names)),
    )
}

/// One style's override: a colour alone (the foreground), or a table of `fg`, `bg`, `bold`,
/// `italic`, `underline`, `reversed`.
fn patch(value: &Spanned<DeValue<'_>>, name: &str) -> Result<StylePatch, ThemeError> {
    let DeValue::Table(table) = value.get_ref() else {
        return Ok(StylePatch {
            fg: Some(colour(value, name)?),
            ..StylePatch::default()
        });
    };
    let mut patch = StylePatch::default();
    for (key, item) in table.iter() {
        let flag = |item: &Spanned<DeValue<'_>>| {
            item.get_ref().as_bool().ok_or_else(|| {
                ThemeError::at(
                    item,
                    format!(
                        "[theme] {name}.{}: expected true or false, got {}",
                        key.get_ref(),
                        shown(item.get_ref())
                    ),
                )
            })
        };
        match key.get_ref().as_ref() {
            "fg" => patch.fg = Some(colour(item, &format!("{name}.fg"))?),
            "bg" => patch.bg = Some(colour(item, &format!("{name}.bg"))?),
            "bold" => patch.bold = Some(flag(item)?),
            "italic" => patch.italic = Some(flag(item)?),
            "underline" => patch.underline = Some(flag(item)?),
            "reversed" => patch.reversed = Some(flag(item)?),
            other => {
                return Err(ThemeError::at(
                    key,
                    format!(
                        "[theme] {name} has no setting {other:?}{} (a style takes fg, bg, bold, italic, underline, reversed)",
                        did_you_mean(other, PATCH_KEYS)
                    ),
                ));
            }
        }
    }
    Ok(patch)
}

/// A colour: a name (`"red"`, `"darkgray"`, `"default"`), a palette index (`"244"` or `244`) or
/// `"#rrggbb"`.
fn colour(value: &Spanned<DeValue<'_>>, name: &str) -> Result<Color, ThemeError> {
    let bad = |why: String| ThemeError::at(value, format!("[theme] {name}: {why}"));
    match value.get_ref() {
        DeValue::Integer(i) => {
            let index = i64::from_str_radix(i.as_str(), i.radix())
                .ok()
                .and_then(|n| u8::try_from(n).ok());
            index.map(Color::Indexed).ok_or_else(|| {
                bad(format!(
                    "{} is not a palette index (0-255)",
                    shown(value.get_ref())
                ))
            })
        }
        DeValue::String(s) => parse_colour(s).ok_or_else(|| {
            let names = COLOUR_NAMES.iter().map(|(n, _)| *n);
            bad(format!(
                "{s:?} is not a colour (a name, a palette index 0-255 or \"#rrggbb\"){}",
                did_you_mean(&normalise(s), names)
            ))
        }),
        other => Err(bad(format!(
            "expected a colour (a name, a palette index 0-255 or \"#rrggbb\"), got {}",
            shown(other)
        ))),
    }
}

/// Case, spaces, `-` and `_` do not matter in colour names, and grey is gray.
fn normalise(s: &str) -> String {
    s.trim()
        .to_ascii_lowercase()
        .replace([' ', '-', '_'], "")
        .replace("grey", "gray")
}

/// Parses a colour as written in `[theme]` (see [`colour`]).
pub fn parse_colour(s: &str) -> Option<Color> {
    let s = s.trim();
    if let Some(hex) = s.strip_prefix('#') {
        if hex.len() != 6 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).ok();
        return Some(Color::Rgb(byte(0)?, byte(2)?, byte(4)?));
    }
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse::<u8>().ok().map(Color::Indexed);
    }
    let wanted = normalise(s);
    COLOUR_NAMES
        .iter()
        .find(|(n, _)| *n == wanted)
        .map(|(_, c)| *c)
}

/// A value as the user wrote it, for messages (strings quoted, tables and lists by kind).
fn shown(value: &DeValue<'_>) -> String {
    match value {
        DeValue::String(s) => format!("{s:?}"),
        DeValue::Integer(i) => i.as_str().to_string(),
        DeValue::Float(f) => f.as_str().to_string(),
        DeValue::Boolean(b) => b.to_string(),
        DeValue::Datetime(d) => d.to_string(),
        DeValue::Array(_) => "a list".into(),
        DeValue::Table(_) => "a table".into(),
    }
}

/// `" (did you mean X?)"` with the valid name closest to `wrong`, or nothing when none is close.
pub fn did_you_mean<'a>(wrong: &str, valid: impl IntoIterator<Item = &'a str>) -> String {
    let best = valid
        .into_iter()
        .map(|name| (strsim::normalized_damerau_levenshtein(wrong, name), name))
        .max_by(|a, b| a.0.total_cmp(&b.0));
    // At least half the letters right: "rde" is red (a swap), "xyz" is nothing.
    match best {
        Some((score, name)) if score >= 0.5 => format!(" (did you mean {name}?)"),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        parse_theme_section(text).unwrap_err().message
    }

    #[test]
    fn no_section_is_the_dark_theme_unchanged() {
        assert_eq!(
            parse_theme_section("poll_interval_secs = 5\n").unwrap(),
            ThemeSettings::default()
        );
    }

    #[test]
    fn every_colour_form_and_style_shape_is_read() {
        let settings = parse_theme_section(
            "[theme]\nbase = \"light\"\nsecondary = \"244\"\nborder = 8\n\
             selection = { bg = \"#DaDaDa\", bold = true, reversed = false }\n\
             account_colors = [\"blue\", 90, \"Dark-Grey\"]\n\
             status.pending = { fg = \"light_red\", underline = true }\n\
             [theme.sync]\nrate_limited = \"default\"\n",
        )
        .unwrap();
        assert_eq!(settings.base, ThemeBase::Light);
        assert_eq!(
            settings.account_colors,
            Some(vec![Color::Blue, Color::Indexed(90), Color::DarkGray])
        );
        let fg = |c| StylePatch {
            fg: Some(c),
            ..StylePatch::default()
        };
        assert_eq!(
            settings.overrides,
            vec![
                (StyleName::Border, fg(Color::Indexed(8))),
                (StyleName::Secondary, fg(Color::Indexed(244))),
                (
                    StyleName::Selection,
                    StylePatch {
                        bg: Some(Color::Rgb(0xda, 0xda, 0xda)),
                        bold: Some(true),
                        reversed: Some(false),
                        ..StylePatch::default()
                    }
                ),
                (
                    StyleName::StatusPending,
                    StylePatch {
                        fg: Some(Color::LightRed),
                        underline: Some(true),
                        ..StylePatch::default()
                    }
                ),
                (StyleName::SyncRateLimited, fg(Color::Reset)),
            ]
        );
    }

    #[test]
    fn mistakes_name_the_closest_valid_name() {
        assert_eq!(
            err("[theme]\nselction = \"red\"\n"),
            "[theme] has no style \"selction\" (did you mean selection?)"
        );
        assert_eq!(
            err("[theme]\nstatus.pendng = \"red\"\n"),
            "[theme] has no style \"status.pendng\" (did you mean status.pending?)"
        );
        assert_eq!(
            err("[theme]\nerror = \"rde\"\n"),
            "[theme] error: \"rde\" is not a colour (a name, a palette index 0-255 or \"#rrggbb\") (did you mean red?)"
        );
        assert_eq!(
            err("[theme]\nhit = { fg = \"black\", bodl = true }\n"),
            "[theme] hit has no setting \"bodl\" (did you mean bold?) (a style takes fg, bg, bold, italic, underline, reversed)"
        );
        assert_eq!(
            err("[theme]\nbase = \"ligth\"\n"),
            "[theme] base = \"ligth\": expected one of \"dark\", \"light\", \"auto\" (did you mean light?)"
        );
        assert_eq!(
            err("[theme]\nkey = 256\n"),
            "[theme] key: 256 is not a palette index (0-255)"
        );
        assert_eq!(
            err("[theme]\nkey = \"#12345\"\n"),
            "[theme] key: \"#12345\" is not a colour (a name, a palette index 0-255 or \"#rrggbb\")"
        );
        assert_eq!(
            err("[theme]\nmarker = { bold = \"yes\" }\n"),
            "[theme] marker.bold: expected true or false, got \"yes\""
        );
        assert_eq!(
            err("[theme]\naccount_colors = []\n"),
            "[theme] account_colors is empty: give at least one colour"
        );
    }

    #[test]
    fn a_bad_theme_in_the_config_file_names_the_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(
            &path,
            "poll_interval_secs = 30\n\n[theme]\nbase = \"light\"\nstatus.replid = \"green\"\n",
        )
        .unwrap();
        let env = [("PERCH_CONFIG".to_string(), path.display().to_string())].into();
        let err = crate::config::Config::load_from(&env)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            format!(
                "{}: line 5: [theme] has no style \"status.replid\" (did you mean status.replied?)",
                path.display()
            )
        );
        std::fs::write(&path, "[theme]\nbase = \"light\"\nkey = \"#0057ae\"\n").unwrap();
        let cfg = crate::config::Config::load_from(&env).unwrap();
        assert_eq!(cfg.theme.base, ThemeBase::Light);
        assert_eq!(
            cfg.theme.overrides,
            vec![(
                StyleName::Key,
                StylePatch {
                    fg: Some(Color::Rgb(0, 0x57, 0xae)),
                    ..StylePatch::default()
                }
            )]
        );
        let env_auto: std::collections::BTreeMap<String, String> = [
            ("PERCH_CONFIG".to_string(), path.display().to_string()),
            ("PERCH_THEME".to_string(), "auto".to_string()),
        ]
        .into();
        let cfg = crate::config::Config::load_from(&env_auto).unwrap();
        assert_eq!(cfg.theme.base, ThemeBase::Auto);
    }

    #[test]
    fn the_readme_theme_examples_are_valid() {
        let readme = include_str!("../../README.md");
        let blocks: Vec<&str> = readme
            .split("```toml\n")
            .skip(1)
            .filter_map(|rest| rest.split("```").next())
            .filter(|block| block.contains("[theme]"))
            .collect();
        assert!(blocks.len() >= 2, "the README's [theme] examples");
        for block in blocks {
            let settings =
                parse_theme_section(block).unwrap_or_else(|e| panic!("{block}: {}", e.message));
            assert_ne!(settings, ThemeSettings::default(), "{block}");
        }
    }

    #[test]
    fn the_span_points_at_the_mistake() {
        let text = "[theme]\nbase = \"dark\"\n\nsecondary = \"nope\"\n";
        let e = parse_theme_section(text).unwrap_err();
        assert_eq!(&text[e.span], "\"nope\"");
    }

    #[test]
    fn hostile_colour_strings_are_refused_without_panicking() {
        for s in [
            "",
            "#",
            "#ééé",
            "#zzzzzz",
            "#1234567",
            "999",
            "-1",
            "\u{1b}[31m",
            "#ab\u{e9}cd",
        ] {
            assert_eq!(parse_colour(s), None, "{s:?}");
        }
        assert_eq!(parse_colour("#00aAfF"), Some(Color::Rgb(0, 0xaa, 0xff)));
        assert_eq!(parse_colour(" Light Blue "), Some(Color::LightBlue));
    }
}
