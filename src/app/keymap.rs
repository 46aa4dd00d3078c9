//! Which key does what. One table per mode is both the key map and the `?` help, so a key cannot
//! work without being listed (a test checks every intent has a line).

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// What the user asked for in the normal (browsing) mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Intent {
    Down,
    Up,
    Top,
    Bottom,
    PageDown,
    PageUp,
    NextPane,
    PrevPane,
    Open,
    Back,
    ReplyPublic,
    ReplyDm,
    OpenInBrowser,
    CycleStatusFilter,
    Ignore,
    Reopen,
    MarkReplied,
    MarkSent,
    CancelSend,
    TogglePause,
    FetchAccount,
    FetchAll,
    AddAccount,
    Reauthorize,
    ToggleShowPaused,
    Stats,
    RemoveAccount,
    Help,
    Quit,
}

/// One key press pattern: a key code and the modifiers that must be held (Shift is ignored for
/// characters, since `G` already says it).
#[derive(Clone, Copy, Debug)]
pub struct KeyPress {
    pub code: KeyCode,
    pub modifiers: KeyModifiers,
}

const fn key(code: KeyCode) -> KeyPress {
    KeyPress {
        code,
        modifiers: KeyModifiers::NONE,
    }
}

const fn ctrl(code: KeyCode) -> KeyPress {
    KeyPress {
        code,
        modifiers: KeyModifiers::CONTROL,
    }
}

const fn ch(c: char) -> KeyPress {
    key(KeyCode::Char(c))
}

/// A line of the key map and of the help overlay.
#[derive(Clone, Copy, Debug)]
pub struct Binding {
    pub intent: Intent,
    pub presses: &'static [KeyPress],
    /// The keys as the help shows them.
    pub keys: &'static str,
    pub help: &'static str,
}

const fn bind(
    intent: Intent,
    presses: &'static [KeyPress],
    keys: &'static str,
    help: &'static str,
) -> Binding {
    Binding {
        intent,
        presses,
        keys,
        help,
    }
}

/// The normal mode's keys, in the order the help lists them, by section.
pub const NORMAL: &[Binding] = &[
    bind(
        Intent::Down,
        &[ch('j'), key(KeyCode::Down)],
        "j ↓",
        "next row",
    ),
    bind(
        Intent::Up,
        &[ch('k'), key(KeyCode::Up)],
        "k ↑",
        "previous row",
    ),
    bind(
        Intent::Top,
        &[ch('g'), key(KeyCode::Home)],
        "g Home",
        "first row (newest)",
    ),
    bind(
        Intent::Bottom,
        &[ch('G'), key(KeyCode::End)],
        "G End",
        "last row (oldest)",
    ),
    bind(
        Intent::PageDown,
        &[key(KeyCode::PageDown)],
        "PgDn",
        "one screen down",
    ),
    bind(
        Intent::PageUp,
        &[key(KeyCode::PageUp)],
        "PgUp",
        "one screen up",
    ),
    bind(Intent::NextPane, &[key(KeyCode::Tab)], "Tab", "next pane"),
    bind(
        Intent::PrevPane,
        &[key(KeyCode::BackTab)],
        "S-Tab",
        "previous pane",
    ),
    bind(
        Intent::Open,
        &[key(KeyCode::Enter)],
        "Enter",
        "detail; draft; send again",
    ),
    bind(
        Intent::Back,
        &[key(KeyCode::Esc)],
        "Esc",
        "back to the feed",
    ),
    bind(Intent::ReplyPublic, &[ch('r')], "r", "reply publicly"),
    bind(Intent::ReplyDm, &[ch('d')], "d", "reply by DM"),
    bind(
        Intent::OpenInBrowser,
        &[ch('o')],
        "o",
        "open the post in the browser",
    ),
    bind(
        Intent::CycleStatusFilter,
        &[ch('f')],
        "f",
        "status filter (cycles)",
    ),
    bind(Intent::Ignore, &[ch('i')], "i", "ignore, then next"),
    bind(
        Intent::Reopen,
        &[ch('p')],
        "p",
        "back to pending, then next",
    ),
    bind(
        Intent::MarkReplied,
        &[ch('x')],
        "x",
        "replied elsewhere, then next",
    ),
    bind(
        Intent::MarkSent,
        &[ch('M')],
        "M",
        "it is on X: mark it sent",
    ),
    bind(
        Intent::CancelSend,
        &[ch('c')],
        "c",
        "cancel waiting / unconfirmed",
    ),
    bind(
        Intent::TogglePause,
        &[ch('P')],
        "P",
        "pause / resume the account",
    ),
    bind(
        Intent::FetchAccount,
        &[ch('F')],
        "F",
        "fetch now (selected account)",
    ),
    bind(
        Intent::FetchAll,
        &[ctrl(KeyCode::Char('f'))],
        "C-f",
        "fetch all accounts now",
    ),
    bind(
        Intent::AddAccount,
        &[ch('a')],
        "a",
        "add an account (log in)",
    ),
    bind(
        Intent::Reauthorize,
        &[ch('R')],
        "R",
        "reauthorize the account",
    ),
    bind(
        Intent::ToggleShowPaused,
        &[ch('H')],
        "H",
        "show / hide paused accounts",
    ),
    bind(Intent::Stats, &[ch('s')], "s", "the account's stats"),
    bind(
        Intent::RemoveAccount,
        &[ch('D')],
        "D",
        "remove the account (asks)",
    ),
    bind(Intent::Help, &[ch('?')], "?", "this help"),
    bind(
        Intent::Quit,
        &[ch('q'), ctrl(KeyCode::Char('c'))],
        "q C-c",
        "quit (drafts are kept)",
    ),
];

/// Help sections over `NORMAL`: (title, number of bindings).
pub const NORMAL_SECTIONS: &[(&str, usize)] = &[
    ("Moving", 10),
    ("Mentions", 7),
    ("Outbox", 2),
    ("Accounts", 8),
    ("General", 2),
];

/// The composer's keys, for the help overlay (the editor handles the rest itself).
pub const COMPOSER_HELP: &[(&str, &str)] = &[
    ("C-s", "send (C-Enter also works)"),
    ("Esc", "close, keep the draft"),
    ("Enter", "new line"),
    ("arrows", "move the cursor"),
    ("C-u C-r", "undo / redo"),
    ("C-w Bksp", "delete word / char"),
];

fn press_matches(press: &KeyPress, event: &KeyEvent) -> bool {
    if press.code != event.code {
        return false;
    }
    // Shift is already part of what the key says ('G', '?', BackTab), so only Ctrl and Alt count.
    let held = event.modifiers & (KeyModifiers::CONTROL | KeyModifiers::ALT);
    held == press.modifiers
}

/// The normal-mode intent of a key press, if it has one.
pub fn normal_intent(event: &KeyEvent) -> Option<Intent> {
    NORMAL
        .iter()
        .find(|b| b.presses.iter().any(|p| press_matches(p, event)))
        .map(|b| b.intent)
}

/// What a key does in the composer, before the editor sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ComposerKey {
    Send,
    Cancel,
    Edit,
}

pub fn composer_key(event: &KeyEvent) -> ComposerKey {
    let ctrl = event.modifiers.contains(KeyModifiers::CONTROL);
    match event.code {
        KeyCode::Char('s') | KeyCode::Char('S') if ctrl => ComposerKey::Send,
        KeyCode::Enter if ctrl => ComposerKey::Send,
        KeyCode::Esc => ComposerKey::Cancel,
        _ => ComposerKey::Edit,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVERY_INTENT: [Intent; 29] = [
        Intent::Down,
        Intent::Up,
        Intent::Top,
        Intent::Bottom,
        Intent::PageDown,
        Intent::PageUp,
        Intent::NextPane,
        Intent::PrevPane,
        Intent::Open,
        Intent::Back,
        Intent::ReplyPublic,
        Intent::ReplyDm,
        Intent::OpenInBrowser,
        Intent::CycleStatusFilter,
        Intent::Ignore,
        Intent::Reopen,
        Intent::MarkReplied,
        Intent::MarkSent,
        Intent::CancelSend,
        Intent::TogglePause,
        Intent::FetchAccount,
        Intent::FetchAll,
        Intent::AddAccount,
        Intent::Reauthorize,
        Intent::ToggleShowPaused,
        Intent::Stats,
        Intent::RemoveAccount,
        Intent::Help,
        Intent::Quit,
    ];

    #[test]
    fn every_intent_has_a_help_line_and_a_key() {
        for intent in EVERY_INTENT {
            let b = NORMAL.iter().find(|b| b.intent == intent);
            let b = b.unwrap_or_else(|| panic!("{intent:?} is not in the key map"));
            assert!(!b.presses.is_empty() && !b.help.is_empty(), "{intent:?}");
        }
        assert_eq!(NORMAL.len(), EVERY_INTENT.len());
        let sectioned: usize = NORMAL_SECTIONS.iter().map(|(_, n)| n).sum();
        assert_eq!(
            sectioned,
            NORMAL.len(),
            "every binding belongs to a help section"
        );
    }

    #[test]
    fn shifted_letters_and_control_keys_are_told_apart() {
        let shift_g = KeyEvent::new(KeyCode::Char('G'), KeyModifiers::SHIFT);
        assert_eq!(normal_intent(&shift_g), Some(Intent::Bottom));
        let ctrl_f = KeyEvent::new(KeyCode::Char('f'), KeyModifiers::CONTROL);
        assert_eq!(normal_intent(&ctrl_f), Some(Intent::FetchAll));
        let f = KeyEvent::new(KeyCode::Char('f'), KeyModifiers::NONE);
        assert_eq!(normal_intent(&f), Some(Intent::CycleStatusFilter));
        let back_tab = KeyEvent::new(KeyCode::BackTab, KeyModifiers::SHIFT);
        assert_eq!(normal_intent(&back_tab), Some(Intent::PrevPane));
    }

    #[test]
    fn composer_sends_on_ctrl_s_and_ctrl_enter_only() {
        let ctrl_s = KeyEvent::new(KeyCode::Char('s'), KeyModifiers::CONTROL);
        assert_eq!(composer_key(&ctrl_s), ComposerKey::Send);
        let ctrl_enter = KeyEvent::new(KeyCode::Enter, KeyModifiers::CONTROL);
        assert_eq!(composer_key(&ctrl_enter), ComposerKey::Send);
        let enter = KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE);
        assert_eq!(composer_key(&enter), ComposerKey::Edit);
        let s = KeyEvent::new(KeyCode::Char('s'), KeyModifiers::NONE);
        assert_eq!(composer_key(&s), ComposerKey::Edit);
    }
}
