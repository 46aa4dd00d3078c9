//! `[keys]` as the user wrote it: the preset and each layer's `"key" = "action"` lines, with the
//! line each came from, so a bad binding is reported at its line. What the names mean is the
//! key map's business (`app::keymap_config`); this module only reads the file.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

type Table = BTreeMap<Spanned<String>, Spanned<String>>;

/// `[keys]` and `[keys.<layer>]` as deserialised.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct KeysFile {
    preset: Option<Spanned<String>>,
    normal: Option<Table>,
    search: Option<Table>,
    composer: Option<Table>,
    confirm: Option<Table>,
    picker: Option<Table>,
    view: Option<Table>,
    remove: Option<Table>,
    login: Option<Table>,
}

/// One `"key" = "action"` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyEntry {
    pub key: String,
    pub action: String,
    pub line: usize,
}

/// The `[keys]` configuration, in file order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeysConfig {
    /// `preset = "..."` and its line.
    pub preset: Option<(String, usize)>,
    /// (layer name, its lines in file order), for the layers the file has.
    pub layers: Vec<(&'static str, Vec<KeyEntry>)>,
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

impl KeysFile {
    /// Resolves byte spans to line numbers in `text` (the file the spans point into).
    pub(crate) fn resolve(&self, text: &str) -> KeysConfig {
        let layer = |name: &'static str, table: &Option<Table>| {
            table.as_ref().map(|t| {
                let mut entries: Vec<KeyEntry> = t
                    .iter()
                    .map(|(k, v)| KeyEntry {
                        key: k.get_ref().clone(),
                        action: v.get_ref().clone(),
                        line: line_of(text, k.span().start),
                    })
                    .collect();
                entries.sort_by_key(|e| e.line);
                (name, entries)
            })
        };
        KeysConfig {
            preset: self
                .preset
                .as_ref()
                .map(|p| (p.get_ref().clone(), line_of(text, p.span().start))),
            layers: [
                layer("normal", &self.normal),
                layer("search", &self.search),
                layer("composer", &self.composer),
                layer("confirm", &self.confirm),
                layer("picker", &self.picker),
                layer("view", &self.view),
                layer("remove", &self.remove),
                layer("login", &self.login),
            ]
            .into_iter()
            .flatten()
            .collect(),
        }
    }
}
