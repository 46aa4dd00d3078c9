//! Configurable keys (issue 15): `[keys]` config fixtures, valid and invalid, each with its exact
//! message; and a remapped key working in the dashboard's `update` with the help, the hints and
//! the notices naming the new key.

mod ui_fixture;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crossterm::event::KeyCode;
use perch::app::keymap::Keymap;
use perch::app::keymap_config;
use perch::app::{Effect, Mode};
use perch::config::Config;
use perch::domain::MentionStatus;
use ui_fixture::Fixture;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/keys")
        .join(name)
}

/// The key map a config file gives, or its error message (as the dashboard and `perch keys`
/// print it).
fn keymap_of(name: &str) -> Result<Keymap, String> {
    let path = fixture(name);
    let env = BTreeMap::from([(
        "PERCH_CONFIG".to_string(),
        path.to_string_lossy().into_owned(),
    )]);
    let config = Config::load_from(&env).map_err(|e| e.to_string())?;
    keymap_config::build(&config.keys, &config.config_path)
}

fn error_of(name: &str) -> String {
    let message = keymap_of(name).expect_err("the fixture is invalid");
    let path = fixture(name).display().to_string();
    message.replace(&path, "FILE")
}

#[test]
fn invalid_key_configs_name_the_file_the_line_and_the_closest_valid_name() {
    let cases = [
        (
            "unknown_action.toml",
            "FILE: line 2: [keys.normal] \"e\" = \"ignore_next\": unknown action (did you mean ignore_and_next?) (see `perch keys --layer normal`; \"none\" unbinds the key)",
        ),
        (
            "unknown_key.toml",
            "FILE: line 3: [keys.normal] \"ctrl-shift-hyper-x\" is not a key: write keys like \"j\", \"J\", \"ctrl-s\", \"alt-x\", \"enter\", \"space\", \"pgdn\", \"f5\", or a sequence like \"g g\"",
        ),
        (
            "conflict.toml",
            "FILE: line 4: [keys.normal] \"ctrl-s\" conflicts with \"C-s\" on line 2 (both are C-s): keep one",
        ),
        (
            "prefix_conflict.toml",
            "FILE: line 3: [keys.normal] \"g g\" conflicts with \"g\" on line 2 (g would run before g g could be typed): keep one",
        ),
        (
            "unknown_preset.toml",
            "FILE: line 2: [keys] preset = \"emac\" is not a preset: use \"vim\" or \"emacs\" (did you mean emacs?)",
        ),
        (
            "sequence_in_confirm.toml",
            "FILE: line 2: [keys.confirm] \"y y\": key sequences work in the normal and composer layers only",
        ),
    ];
    for (name, want) in cases {
        assert_eq!(error_of(name), want, "{name}");
    }
    // An unknown layer is caught by the file's schema, at its line.
    let layer = error_of("unknown_layer.toml");
    assert!(
        layer.starts_with("FILE: line 1: unknown field `nromal`"),
        "{layer}"
    );
}

#[test]
fn valid_key_configs_give_the_expected_tables() {
    let remap = keymap_of("remap_ignore.toml").unwrap();
    let json = remap.to_json();
    assert_eq!(json["normal"]["e"], "ignore_and_next");
    assert!(json["normal"].get("i").is_none(), "i is unbound");
    assert_eq!(json["normal"]["j"], "down", "the rest of the preset stays");

    let emacs = keymap_of("emacs.toml").unwrap();
    let json = emacs.to_json();
    assert_eq!(json["normal"]["ctrl-n"], "down");
    assert_eq!(json["normal"]["ctrl-x ctrl-c"], "quit");
    assert_eq!(json["normal"]["ctrl-x ctrl-s"], "fetch_all");
    assert_eq!(json["normal"]["j"], "down", "letters stay in emacs");

    let seq = keymap_of("sequence.toml").unwrap();
    let json = seq.to_json();
    assert_eq!(json["normal"]["g g"], "top");
    assert!(json["normal"].get("g").is_none());
    assert_eq!(json["composer"]["alt-enter"], "send");
    assert_eq!(json["composer"]["ctrl-s"], "send");
}

/// The "done when": a config remapping `i` to `e` makes `e` ignore, and the help, the
/// hints and the notices say `e`, with no code change.
#[test]
fn a_remapped_ignore_key_works_and_every_label_says_it() {
    let fx = Fixture::new(12);
    let mut state = fx.state(120, 40);
    state.keymap = Arc::new(keymap_of("remap_ignore.toml").unwrap());
    state.dirty = true;

    let hints = ui_fixture::render(&state, 120, 40);
    let last = hints.lines().nth(39).unwrap_or_default().to_string();
    assert!(last.contains("e ignore"), "hint line: {last}");
    assert!(!last.contains("i ignore"), "hint line: {last}");

    // `i` does nothing now; `e` ignores the selected mention.
    let first = state.feed.selected_mention().unwrap().clone();
    fx.key(&mut state, KeyCode::Char('i'));
    assert_eq!(fx.status_of(&first), first.status);
    let effects = fx.key(&mut state, KeyCode::Char('e'));
    assert!(
        effects.iter().any(|e| matches!(e, Effect::Triage { .. })),
        "{effects:?}"
    );
    assert_eq!(fx.status_of(&first), MentionStatus::Ignored);

    // The help lists `e`, never `i`, for ignoring.
    fx.key(&mut state, KeyCode::Char('?'));
    assert!(matches!(state.mode, Mode::Help));
    let help = ui_fixture::render(&state, 120, 40);
    assert!(help.contains("e        ignore, then next"), "{help}");
    assert!(!help.contains("i        ignore"), "{help}");
    fx.key(&mut state, KeyCode::Esc);

    // A notice that names the triage keys names `e`.
    fx.key(&mut state, KeyCode::Char(' '));
    let notice = state
        .notice
        .as_ref()
        .map(|n| n.text.clone())
        .unwrap_or_default();
    assert!(notice.contains("e, p or x"), "{notice}");
}

#[test]
fn a_sequence_binding_runs_on_its_last_press_only() {
    let fx = Fixture::new(60);
    let mut state = fx.state(80, 24);
    state.keymap = Arc::new(keymap_of("sequence.toml").unwrap());
    fx.press(&mut state, KeyCode::Char('j'), 5);
    assert_eq!(state.feed.selected, 5);
    fx.key(&mut state, KeyCode::Char('g'));
    assert_eq!(state.feed.selected, 5, "the first g waits");
    fx.key(&mut state, KeyCode::Char('g'));
    assert_eq!(state.feed.selected, 0, "g g went to the top");
    // `g` then something else: the something else does its own thing.
    fx.press(&mut state, KeyCode::Char('j'), 2);
    fx.key(&mut state, KeyCode::Char('g'));
    fx.key(&mut state, KeyCode::Char('j'));
    assert_eq!(state.feed.selected, 3);
}

/// Every action of every layer has a key in both presets (an action nobody can press is a bug),
/// and every layer `perch keys` lists is one `[keys.<layer>]` accepts.
#[test]
fn every_action_of_every_layer_has_a_key_in_both_presets() {
    use perch::app::keymap::{LAYERS, Preset};
    for preset in [Preset::Vim, Preset::Emacs] {
        let json = Keymap::preset(preset).to_json();
        for (layer, actions) in keymap_config::action_names() {
            assert!(LAYERS.contains(&layer), "{layer}");
            let bound: Vec<&str> = json[layer]
                .as_object()
                .unwrap_or_else(|| panic!("{layer} is in the JSON"))
                .values()
                .filter_map(|v| v.as_str())
                .collect();
            for action in actions {
                assert!(
                    bound.contains(&action),
                    "{preset:?}: {layer}.{action} has no key"
                );
            }
        }
    }
}
