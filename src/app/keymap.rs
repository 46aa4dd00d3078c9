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
    CopyLink,
    CycleStatusFilter,
    Ignore,
    Reopen,
    MarkReplied,
    Undo,
    MarkSent,
    CancelSend,
    Search,
    NextMatch,
    PrevMatch,
    Mark,
    MarkAll,
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

impl Intent {
    /// Keys that do something to, or with, the selected mention (so they must act on the one the
    /// user saw: see `update::aim_at_seen`).
    pub fn acts_on_selected_mention(self) -> bool {
        matches!(
            self,
            Intent::Open
                | Intent::ReplyPublic
                | Intent::ReplyDm
                | Intent::OpenInBrowser
                | Intent::CopyLink
                | Intent::Ignore
                | Intent::Reopen
                | Intent::MarkReplied
                | Intent::MarkSent
                | Intent::CancelSend
                | Intent::Mark
                | Intent::TogglePause
        )
    }
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
    /// The keys as the help shows them (empty: listed on the line of the binding before).
    pub keys: &'static str,
    /// What they do (empty: listed on the line of the binding before).
    pub help: &'static str,
}

impl Binding {
    /// Whether the help shows this binding on the line of the one before it (a pair such as
    /// `n N  next / previous match`, so the whole help fits an 80x24 screen).
    pub fn shares_previous_line(&self) -> bool {
        self.help.is_empty()
    }
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

/// A binding the help lists on the line of the binding before it, whose keys and text name both.
const fn with_previous(intent: Intent, presses: &'static [KeyPress]) -> Binding {
    bind(intent, presses, "", "")
}

/// The normal mode's keys, in the order the help lists them, by section.
pub const NORMAL: &[Binding] = &[
    bind(
        Intent::Down,
        &[ch('j'), key(KeyCode::Down)],
        "j k ↓ ↑",
        "next / previous row",
    ),
    with_previous(Intent::Up, &[ch('k'), key(KeyCode::Up)]),
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
        "PgDn PgUp",
        "one screen down / up",
    ),
    with_previous(Intent::PageUp, &[key(KeyCode::PageUp)]),
    bind(
        Intent::NextPane,
        &[key(KeyCode::Tab)],
        "Tab S-Tab",
        "next / previous pane",
    ),
    with_previous(Intent::PrevPane, &[key(KeyCode::BackTab)]),
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
        Intent::CopyLink,
        &[ch('y')],
        "y",
        "copy the post's link (OSC 52)",
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
        Intent::Undo,
        &[ch('u')],
        "u",
        "undo the last i/p/x (repeats)",
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
    bind(Intent::Search, &[ch('/')], "/", "search: filters the feed"),
    bind(
        Intent::NextMatch,
        &[ch('n')],
        "n N",
        "next / previous match (/@x: handles)",
    ),
    with_previous(Intent::PrevMatch, &[ch('N')]),
    bind(
        Intent::Mark,
        &[key(KeyCode::Char(' '))],
        "Space",
        "mark / unmark, then next",
    ),
    bind(
        Intent::MarkAll,
        &[ch('V')],
        "V",
        "mark all matching; i p x ask",
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
    ("Mentions", 9),
    ("Outbox", 2),
    ("Search and marks", 5),
    ("Accounts", 8),
    ("General", 2),
];

/// The composer's keys, for the help overlay (the editor handles the rest itself).
pub const COMPOSER_HELP: &[(&str, &str)] = &[
    ("C-s", "send (C-Enter also works)"),
    ("Esc", "close, keep the draft"),
    ("C-e C-t", "$EDITOR / saved replies"),
    ("C-u C-r", "undo / redo (C-w: word)"),
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
    ExternalEditor,
    Templates,
    Edit,
}

pub fn composer_key(event: &KeyEvent) -> ComposerKey {
    let ctrl = event.modifiers.contains(KeyModifiers::CONTROL);
    match event.code {
        KeyCode::Char('s') | KeyCode::Char('S') if ctrl => ComposerKey::Send,
        KeyCode::Enter if ctrl => ComposerKey::Send,
        KeyCode::Char('e') | KeyCode::Char('E') if ctrl => ComposerKey::ExternalEditor,
        KeyCode::Char('t') | KeyCode::Char('T') if ctrl => ComposerKey::Templates,
        KeyCode::Esc => ComposerKey::Cancel,
        _ => ComposerKey::Edit,
    }
}

/// The answer to a y/n question: `Some(true)` yes, `Some(false)` no, `None` not an answer.
pub fn confirm_key(event: &KeyEvent) -> Option<bool> {
    match event.code {
        KeyCode::Char('y') | KeyCode::Char('Y') | KeyCode::Enter => Some(true),
        KeyCode::Char('n') | KeyCode::Char('N') | KeyCode::Esc => Some(false),
        KeyCode::Char('q') => Some(false),
        _ => None,
    }
}

/// Keys in a small picker (accounts, saved replies).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PickerKey {
    Move(isize),
    /// Enter (the highlighted item) or a digit 1-9 (that item).
    Choose(Option<usize>),
    Cancel,
    Other,
}

pub fn picker_key(event: &KeyEvent) -> PickerKey {
    match event.code {
        KeyCode::Down | KeyCode::Char('j') | KeyCode::Tab => PickerKey::Move(1),
        KeyCode::Up | KeyCode::Char('k') | KeyCode::BackTab => PickerKey::Move(-1),
        KeyCode::Enter => PickerKey::Choose(None),
        KeyCode::Char(c @ '1'..='9') => PickerKey::Choose(Some(c as usize - '1' as usize)),
        KeyCode::Esc | KeyCode::Char('q') => PickerKey::Cancel,
        _ => PickerKey::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVERY_INTENT: [Intent; 36] = [
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
        Intent::CopyLink,
        Intent::CycleStatusFilter,
        Intent::Ignore,
        Intent::Reopen,
        Intent::MarkReplied,
        Intent::Undo,
        Intent::MarkSent,
        Intent::CancelSend,
        Intent::Search,
        Intent::NextMatch,
        Intent::PrevMatch,
        Intent::Mark,
        Intent::MarkAll,
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

    /// How the help writes a key press.
    fn label(press: &KeyPress) -> String {
        let key = match press.code {
            KeyCode::Char(' ') => "Space".to_string(),
            KeyCode::Char(c) => c.to_string(),
            KeyCode::Down => "↓".into(),
            KeyCode::Up => "↑".into(),
            KeyCode::Home => "Home".into(),
            KeyCode::End => "End".into(),
            KeyCode::PageDown => "PgDn".into(),
            KeyCode::PageUp => "PgUp".into(),
            KeyCode::Tab => "Tab".into(),
            KeyCode::BackTab => "S-Tab".into(),
            KeyCode::Enter => "Enter".into(),
            KeyCode::Esc => "Esc".into(),
            other => format!("{other:?}"),
        };
        if press.modifiers.contains(KeyModifiers::CONTROL) {
            format!("C-{key}")
        } else {
            key
        }
    }

    #[test]
    fn every_intent_has_a_help_line_and_a_key() {
        for intent in EVERY_INTENT {
            let b = NORMAL.iter().find(|b| b.intent == intent);
            let b = b.unwrap_or_else(|| panic!("{intent:?} is not in the key map"));
            assert!(!b.presses.is_empty(), "{intent:?}");
        }
        // Every key appears on its help line (its own, or the line it shares with the binding
        // before it), and that line says what it does.
        for (i, b) in NORMAL.iter().enumerate() {
            let line = NORMAL[..=i]
                .iter()
                .rev()
                .find(|l| !l.shares_previous_line())
                .unwrap_or_else(|| panic!("{:?} shares a line with nothing", b.intent));
            assert!(!line.help.is_empty(), "{:?}", b.intent);
            let shown: Vec<&str> = line.keys.split_whitespace().collect();
            for press in b.presses {
                let l = label(press);
                assert!(
                    shown.contains(&l.as_str()),
                    "{:?}: {l} is not on its help line {:?}",
                    b.intent,
                    line.keys
                );
            }
        }
        // A shared line never crosses a help section.
        let mut start = 0;
        for (title, n) in NORMAL_SECTIONS {
            assert!(
                !NORMAL[start].shares_previous_line(),
                "section {title} starts on another's line"
            );
            start += n;
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
    fn no_key_press_is_bound_to_two_intents() {
        let presses: Vec<(KeyPress, Intent)> = NORMAL
            .iter()
            .flat_map(|b| b.presses.iter().map(move |p| (*p, b.intent)))
            .collect();
        for (i, (a, first)) in presses.iter().enumerate() {
            for (b, second) in &presses[i + 1..] {
                assert!(
                    a.code != b.code || a.modifiers != b.modifiers,
                    "{:?} is bound to both {first:?} and {second:?}",
                    a.code
                );
            }
        }
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
