//! Builds the effective key map from `[keys]`: the preset, then each of the user's bindings on
//! top of it. A user binding replaces the preset's binding on that key (and on any sequence that
//! starts with it), so only two bindings in the user's own file can conflict. Every error names
//! the file, the line and what is wrong, with the closest valid name when there is one.

use std::path::Path;

use strum::IntoEnumIterator;

use crate::app::keymap::{
    ComposerAction, ConfirmKey, Intent, KeySeq, Keymap, Layer, LayerAction, LoginAction,
    PickerAction, Preset, RemoveAction, SearchKey, ViewAction,
};
use crate::config::{KeyEntry, KeysConfig};

/// The action name that unbinds a key.
pub const UNBIND: &str = "none";

/// The closest of `candidates` to `wrong`, if one is close enough to be a likely typo.
fn closest<'a>(wrong: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .map(|c| (strsim::jaro_winkler(wrong, c), c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

fn did_you_mean(found: Option<&str>) -> String {
    found.map_or_else(String::new, |c| format!(" (did you mean {c}?)"))
}

/// The key map `keys` describes, or the first problem in it as `FILE: line N: ...`.
pub fn build(keys: &KeysConfig, file: &Path) -> Result<Keymap, String> {
    let at = |line: usize, what: String| format!("{}: line {line}: {what}", file.display());
    let preset = match &keys.preset {
        None => Preset::Vim,
        Some((name, line)) => Preset::iter()
            .find(|p| <&str>::from(*p) == name.as_str())
            .ok_or_else(|| {
                let names = Preset::iter().map(<&str>::from);
                at(
                    *line,
                    format!(
                        "[keys] preset = {name:?} is not a preset: use \"vim\" or \"emacs\"{}",
                        did_you_mean(closest(name, names))
                    ),
                )
            })?,
    };
    let mut map = Keymap::preset(preset);
    for (layer, entries) in &keys.layers {
        match *layer {
            "normal" => apply(&mut map.normal, layer, entries, true, &at)?,
            "search" => apply(&mut map.search, layer, entries, false, &at)?,
            "composer" => apply(&mut map.composer, layer, entries, true, &at)?,
            "confirm" => apply(&mut map.confirm, layer, entries, false, &at)?,
            "picker" => apply(&mut map.picker, layer, entries, false, &at)?,
            "view" => apply(&mut map.view, layer, entries, false, &at)?,
            "remove" => apply(&mut map.remove, layer, entries, false, &at)?,
            "login" => apply(&mut map.login, layer, entries, false, &at)?,
            other => return Err(format!("{}: unknown key layer {other}", file.display())),
        }
    }
    Ok(map)
}

fn apply<A: LayerAction>(
    layer: &mut Layer<A>,
    name: &str,
    entries: &[KeyEntry],
    sequences: bool,
    at: &dyn Fn(usize, String) -> String,
) -> Result<(), String> {
    let mut mine: Vec<(KeySeq, &KeyEntry)> = Vec::new();
    for entry in entries {
        let key = KeySeq::parse(&entry.key).ok_or_else(|| {
            at(
                entry.line,
                format!(
                    "[keys.{name}] {:?} is not a key: write keys like \"j\", \"J\", \"ctrl-s\", \"alt-x\", \"enter\", \"space\", \"pgdn\", \"f5\", or a sequence like \"g g\"",
                    entry.key
                ),
            )
        })?;
        if key.0.len() > 1 && !sequences {
            return Err(at(
                entry.line,
                format!(
                    "[keys.{name}] {:?}: key sequences work in the normal and composer layers only",
                    entry.key
                ),
            ));
        }
        let action = if entry.action == UNBIND {
            None
        } else {
            Some(A::from_name(&entry.action).ok_or_else(|| {
                let names = A::iter().map(LayerAction::action_name);
                at(
                    entry.line,
                    format!(
                        "[keys.{name}] {:?} = {:?}: unknown action{} (see `perch keys --layer {name}`; \"none\" unbinds the key)",
                        entry.key,
                        entry.action,
                        did_you_mean(closest(&entry.action, names))
                    ),
                )
            })?)
        };
        // Two of the user's own bindings on one key (`"C-s"` and `"ctrl-s"`), or a key and a
        // sequence it starts (`"g"` and `"g g"`): one would shadow the other.
        if let Some((other, first)) = mine.iter().find(|(k, _)| clash(k, &key)) {
            let why = if *other == key {
                format!("both are {key}")
            } else if other.0.len() < key.0.len() {
                format!("{other} would run before {key} could be typed")
            } else {
                format!("{key} would run before {other} could be typed")
            };
            return Err(at(
                entry.line,
                format!(
                    "[keys.{name}] {:?} conflicts with {:?} on line {} ({why}): keep one",
                    entry.key, first.key, first.line
                ),
            ));
        }
        mine.push((key.clone(), entry));
        layer.set(key, action);
    }
    Ok(())
}

fn clash(a: &KeySeq, b: &KeySeq) -> bool {
    let n = a.0.len().min(b.0.len());
    a.0[..n] == b.0[..n]
}

/// Every action name of every layer (for `perch keys --actions` and the docs).
pub fn action_names() -> Vec<(&'static str, Vec<&'static str>)> {
    fn names<A: LayerAction>() -> Vec<&'static str> {
        A::iter().map(LayerAction::action_name).collect()
    }
    vec![
        ("normal", names::<Intent>()),
        ("search", names::<SearchKey>()),
        ("composer", names::<ComposerAction>()),
        ("confirm", names::<ConfirmKey>()),
        ("picker", names::<PickerAction>()),
        ("view", names::<ViewAction>()),
        ("remove", names::<RemoveAction>()),
        ("login", names::<LoginAction>()),
    ]
}
