//! The `[notify]` section and the per-account `notify = ...` key of config.toml, and the
//! effective settings they make.
//!
//! ```toml
//! [notify]
//! bell = true                       # ring the terminal bell (the dashboard)
//! title = true                      # "perch · 12 pending" as the terminal title (the dashboard)
//! desktop = true                    # a desktop notification (the service, over D-Bus)
//! on_new_mentions = "~/bin/hook"    # a command run with `sh -c` (the service)
//! hook_timeout_secs = 10            # the hook is killed after this long
//! quiet = "22:00-08:00"             # local time: no bell, desktop notification or hook
//!
//! [accounts.mara_quill]
//! notify = false                    # nothing for this account
//! # or, channel by channel (what is left out follows [notify]):
//! # notify = { bell = false, desktop = true, hook = false, on_new_mentions = "other-cmd" }
//! ```
//!
//! Everything is off by default: each channel is opt-in.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use chrono::NaiveTime;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

/// How long a hook may run when `hook_timeout_secs` is not set.
pub const DEFAULT_HOOK_TIMEOUT_SECS: u64 = 10;
/// The longest `hook_timeout_secs` accepted (a hook is a quick reaction, not a job).
pub const MAX_HOOK_TIMEOUT_SECS: u64 = 600;

/// `[notify]` as written in the file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyFile {
    pub bell: Option<bool>,
    pub title: Option<bool>,
    pub desktop: Option<bool>,
    pub on_new_mentions: Option<String>,
    pub hook_timeout_secs: Option<u64>,
    pub quiet: Option<QuietHours>,
}

/// `[accounts.<handle>] notify = ...`: `false` (nothing for this account), `true` (the global
/// settings, the same as leaving it out), or a table overriding single channels.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccountNotify {
    pub bell: Option<bool>,
    pub desktop: Option<bool>,
    /// `false`: no hook for this account; `true`: the global one.
    pub hook: Option<bool>,
    /// This account's own hook command, instead of `[notify] on_new_mentions`.
    pub on_new_mentions: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountNotifyTable {
    bell: Option<bool>,
    desktop: Option<bool>,
    hook: Option<bool>,
    on_new_mentions: Option<String>,
}

impl<'de> Deserialize<'de> for AccountNotify {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = AccountNotify;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(
                    "true, false, or a table like { bell = false, desktop = true, hook = false }",
                )
            }
            fn visit_bool<E: de::Error>(self, on: bool) -> Result<AccountNotify, E> {
                Ok(if on {
                    AccountNotify::default()
                } else {
                    AccountNotify {
                        bell: Some(false),
                        desktop: Some(false),
                        hook: Some(false),
                        on_new_mentions: None,
                    }
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<AccountNotify, A::Error> {
                let t =
                    AccountNotifyTable::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(AccountNotify {
                    bell: t.bell,
                    desktop: t.desktop,
                    hook: t.hook,
                    on_new_mentions: t.on_new_mentions,
                })
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// `quiet = "22:00-08:00"`: local wall-clock times, the end excluded. A range whose end is
/// before its start runs over midnight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuietHours {
    pub start: NaiveTime,
    pub end: NaiveTime,
}

impl QuietHours {
    pub fn parse(text: &str) -> Result<QuietHours, String> {
        let bad = || {
            format!(
                "quiet = {text:?} is not a range of local times like \"22:00-08:00\" (HH:MM-HH:MM)"
            )
        };
        let (start, end) = text.trim().split_once('-').ok_or_else(bad)?;
        let time = |s: &str| NaiveTime::parse_from_str(s.trim(), "%H:%M").map_err(|_| bad());
        let (start, end) = (time(start)?, time(end)?);
        if start == end {
            return Err(format!(
                "quiet = {text:?} starts and ends at the same time; to silence everything, set bell, desktop and on_new_mentions off instead"
            ));
        }
        Ok(QuietHours { start, end })
    }

    /// Is `local` (a local wall-clock time) inside the quiet hours?
    pub fn contains(&self, local: NaiveTime) -> bool {
        if self.start < self.end {
            self.start <= local && local < self.end
        } else {
            local >= self.start || local < self.end
        }
    }
}

impl fmt::Display for QuietHours {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "{}-{}",
            self.start.format("%H:%M"),
            self.end.format("%H:%M")
        )
    }
}

impl<'de> Deserialize<'de> for QuietHours {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        QuietHours::parse(&text).map_err(de::Error::custom)
    }
}

/// What to do for one account's new mentions.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Channels {
    pub bell: bool,
    pub desktop: bool,
    /// The hook command to run, if any.
    pub hook: Option<String>,
}

impl Channels {
    /// Does anything at all happen for this account's new mentions (besides the title)?
    pub fn any(&self) -> bool {
        self.bell || self.desktop || self.hook.is_some()
    }
}

/// The effective notification settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotifySettings {
    pub bell: bool,
    pub title: bool,
    pub desktop: bool,
    pub on_new_mentions: Option<String>,
    pub hook_timeout: Duration,
    pub quiet: Option<QuietHours>,
    /// Lowercased handle (without `@`) → its override.
    pub accounts: BTreeMap<String, AccountNotify>,
}

impl Default for NotifySettings {
    fn default() -> Self {
        NotifySettings {
            bell: false,
            title: false,
            desktop: false,
            on_new_mentions: None,
            hook_timeout: Duration::from_secs(DEFAULT_HOOK_TIMEOUT_SECS),
            quiet: None,
            accounts: BTreeMap::new(),
        }
    }
}

impl NotifySettings {
    /// The settings from `[notify]` and each account's `notify`; an error names the key.
    pub fn from_file<'a>(
        file: &NotifyFile,
        accounts: impl IntoIterator<Item = (&'a String, Option<&'a AccountNotify>)>,
    ) -> Result<NotifySettings, String> {
        let hook_timeout_secs = file.hook_timeout_secs.unwrap_or(DEFAULT_HOOK_TIMEOUT_SECS);
        if hook_timeout_secs == 0 || hook_timeout_secs > MAX_HOOK_TIMEOUT_SECS {
            return Err(format!(
                "[notify] hook_timeout_secs = {hook_timeout_secs}: give a number of seconds from 1 to {MAX_HOOK_TIMEOUT_SECS}"
            ));
        }
        let command = |c: &Option<String>| c.as_ref().filter(|c| !c.trim().is_empty()).cloned();
        let mut by_account = BTreeMap::new();
        for (handle, notify) in accounts {
            if let Some(n) = notify {
                let mut n = n.clone();
                n.on_new_mentions = command(&n.on_new_mentions);
                by_account.insert(handle.trim_start_matches('@').to_lowercase(), n);
            }
        }
        Ok(NotifySettings {
            bell: file.bell.unwrap_or(false),
            title: file.title.unwrap_or(false),
            desktop: file.desktop.unwrap_or(false),
            on_new_mentions: command(&file.on_new_mentions),
            hook_timeout: Duration::from_secs(hook_timeout_secs),
            quiet: file.quiet,
            accounts: by_account,
        })
    }

    /// What happens for the new mentions of the account `username` (without `@`, any case).
    pub fn for_account(&self, username: &str) -> Channels {
        let own = self
            .accounts
            .get(&username.trim_start_matches('@').to_lowercase());
        let Some(own) = own else {
            return Channels {
                bell: self.bell,
                desktop: self.desktop,
                hook: self.on_new_mentions.clone(),
            };
        };
        let hook = match own.hook {
            Some(false) => None,
            _ => own
                .on_new_mentions
                .clone()
                .or_else(|| self.on_new_mentions.clone()),
        };
        Channels {
            bell: own.bell.unwrap_or(self.bell),
            desktop: own.desktop.unwrap_or(self.desktop),
            hook,
        }
    }

    /// Is it quiet hours at the local wall-clock time `local`?
    pub fn is_quiet(&self, local: NaiveTime) -> bool {
        self.quiet.is_some_and(|q| q.contains(local))
    }

    /// Is it quiet hours now (the system's local time)?
    pub fn is_quiet_now(&self) -> bool {
        self.is_quiet(chrono::Local::now().time())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Doc {
        #[serde(default)]
        notify: NotifyFile,
        #[serde(default)]
        accounts: BTreeMap<String, Acc>,
    }
    #[derive(Deserialize)]
    struct Acc {
        notify: Option<AccountNotify>,
    }

    fn settings(text: &str) -> Result<NotifySettings, String> {
        let doc: Doc = toml::from_str(text).map_err(|e| e.to_string())?;
        NotifySettings::from_file(
            &doc.notify,
            doc.accounts.iter().map(|(h, a)| (h, a.notify.as_ref())),
        )
    }

    fn t(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).unwrap()
    }

    #[test]
    fn everything_is_off_by_default() {
        let s = settings("").unwrap();
        assert_eq!(s, NotifySettings::default());
        assert!(!s.for_account("anyone").any());
        assert!(!s.is_quiet(t(3, 0)));
    }

    #[test]
    fn an_account_overrides_the_global_default_channel_by_channel() {
        let s = settings(
            "[notify]\nbell = true\ndesktop = true\non_new_mentions = \"global-hook\"\n\
             [accounts.Mara_Quill]\nnotify = false\n\
             [accounts.\"@ops\"]\nnotify = { desktop = false, on_new_mentions = \"ops-hook\" }\n\
             [accounts.nohook]\nnotify = { hook = false }\n\
             [accounts.same]\nnotify = true\n",
        )
        .unwrap();
        let all = Channels {
            bell: true,
            desktop: true,
            hook: Some("global-hook".into()),
        };
        assert_eq!(s.for_account("someone_else"), all);
        assert_eq!(s.for_account("same"), all);
        assert_eq!(s.for_account("mara_quill"), Channels::default());
        assert_eq!(
            s.for_account("OPS"),
            Channels {
                bell: true,
                desktop: false,
                hook: Some("ops-hook".into())
            }
        );
        assert_eq!(s.for_account("nohook").hook, None);
        assert!(s.for_account("nohook").bell);
    }

    #[test]
    fn quiet_hours_run_over_midnight_and_exclude_their_end() {
        let night = QuietHours::parse("22:00-08:00").unwrap();
        assert!(night.contains(t(22, 0)));
        assert!(night.contains(t(23, 59)));
        assert!(night.contains(t(0, 0)));
        assert!(night.contains(t(7, 59)));
        assert!(!night.contains(t(8, 0)));
        assert!(!night.contains(t(21, 59)));
        assert!(!night.contains(t(12, 0)));
        let lunch = QuietHours::parse(" 12:30 - 13:30 ").unwrap();
        assert!(lunch.contains(t(12, 30)) && lunch.contains(t(13, 29)));
        assert!(!lunch.contains(t(13, 30)) && !lunch.contains(t(12, 29)));
        assert_eq!(lunch.to_string(), "12:30-13:30");
    }

    #[test]
    fn bad_values_say_what_is_expected() {
        for (text, expected) in [
            ("[notify]\nquiet = \"10pm-8am\"\n", "HH:MM-HH:MM"),
            ("[notify]\nquiet = \"22:00\"\n", "HH:MM-HH:MM"),
            ("[notify]\nquiet = \"25:00-08:00\"\n", "HH:MM-HH:MM"),
            ("[notify]\nquiet = \"08:00-08:00\"\n", "same time"),
            ("[notify]\nhook_timeout_secs = 0\n", "from 1 to 600"),
            ("[notify]\nbel = true\n", "bel"),
            (
                "[accounts.a]\nnotify = { title = true }\n",
                "unknown field `title`",
            ),
            (
                "[accounts.a]\nnotify = \"off\"\n",
                "true, false, or a table",
            ),
        ] {
            let err = settings(text).unwrap_err();
            assert!(err.contains(expected), "{text}: {err}");
        }
    }

    /// Through the real config loader: `[notify]` and an account's `notify` beside its other
    /// keys, and a bad value named with the file and its line.
    #[test]
    fn the_config_file_carries_the_settings_and_names_bad_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(
            &path,
            "[notify]\nbell = true\nquiet = \"22:00-08:00\"\n\
             [accounts.acme]\ntemplates = [\"hi\"]\nnotify = false\n",
        )
        .unwrap();
        let env = BTreeMap::from([("PERCH_CONFIG".to_string(), path.display().to_string())]);
        let cfg = crate::config::Config::load_from(&env).unwrap();
        assert!(cfg.notify.bell);
        assert!(cfg.notify.is_quiet(t(23, 0)));
        assert!(!cfg.notify.for_account("ACME").bell);
        assert!(cfg.notify.for_account("other").bell);
        std::fs::write(
            &path,
            "poll_interval_secs = 30\n[notify]\nquiet = \"late\"\n",
        )
        .unwrap();
        let err = crate::config::Config::load_from(&env)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("config.toml") && err.contains("line 3") && err.contains("HH:MM-HH:MM"),
            "{err}"
        );
    }

    #[test]
    fn an_empty_command_is_no_hook() {
        let s = settings("[notify]\non_new_mentions = \"  \"\n").unwrap();
        assert_eq!(s.on_new_mentions, None);
    }
}
