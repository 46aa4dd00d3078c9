//! Which key does what, one table per layer (normal, search, composer, confirm, picker). A
//! binding is a key sequence and an action; what the action does, its help line, its help
//! section and its status-bar hint belong to the action. The help, the hints and every message
//! that names a key are made from the tables, so a key the user remapped shows its new label
//! everywhere. The tables start from a preset (`vim`, today's keys, or `emacs`) and the user's
//! `[keys.<layer>]` config replaces the preset's binding on each key it names (see
//! `keymap_config`).

use std::fmt;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use serde::{Deserialize, Serialize};
use strum::{EnumIter, IntoEnumIterator, IntoStaticStr};

/// What the user asked for in the normal (browsing) mode. The snake_case names are the action
/// names of `[keys.normal]` and `perch keys --json`; they are stable.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    EnumIter,
    IntoStaticStr,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
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
    #[serde(rename = "ignore_and_next")]
    #[strum(serialize = "ignore_and_next")]
    Ignore,
    #[serde(rename = "reopen_and_next")]
    #[strum(serialize = "reopen_and_next")]
    Reopen,
    #[serde(rename = "mark_replied_and_next")]
    #[strum(serialize = "mark_replied_and_next")]
    MarkReplied,
    Undo,
    /// Take the mention (assign it to this dashboard's person), or give it back when it is theirs.
    Take,
    MarkSent,
    CancelSend,
    Search,
    NextMatch,
    PrevMatch,
    #[serde(rename = "mark_and_next")]
    #[strum(serialize = "mark_and_next")]
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

/// The help overlay's sections over the normal layer, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter)]
pub enum Section {
    Moving,
    Mentions,
    Outbox,
    SearchAndMarks,
    Accounts,
    General,
}

impl Section {
    pub fn title(self) -> &'static str {
        match self {
            Section::Moving => "Moving",
            Section::Mentions => "Mentions",
            Section::Outbox => "Outbox",
            Section::SearchAndMarks => "Search and marks",
            Section::Accounts => "Accounts",
            Section::General => "General",
        }
    }
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
                | Intent::Take
                | Intent::Mark
                | Intent::TogglePause
        )
    }

    /// The action's stable name (`ignore_and_next`).
    pub fn name(self) -> &'static str {
        self.into()
    }

    /// What the help says it does. A pair (`Up` after `Down`) shares the line of the first, whose
    /// text names both.
    pub fn help(self) -> &'static str {
        match self {
            Intent::Down | Intent::Up => "next / previous row",
            Intent::Top => "first row (newest)",
            Intent::Bottom => "last row (oldest)",
            Intent::PageDown | Intent::PageUp => "one screen down / up",
            Intent::NextPane | Intent::PrevPane => "next / previous pane",
            Intent::Open => "detail; draft; send again",
            Intent::Back => "back to the feed",
            Intent::ReplyPublic => "reply publicly",
            Intent::ReplyDm => "reply by DM",
            Intent::OpenInBrowser => "open the post in the browser",
            Intent::CopyLink => "copy the post's link (OSC 52)",
            Intent::CycleStatusFilter => "status filter (cycles)",
            Intent::Ignore => "ignore, then next",
            Intent::Reopen => "back to pending, then next",
            Intent::MarkReplied => "replied elsewhere, then next",
            Intent::Undo => "undo last triage (repeats)",
            Intent::Take => "take it / give it back (team)",
            Intent::MarkSent => "it is on X: mark it sent",
            Intent::CancelSend => "cancel waiting / unconfirmed",
            Intent::Search => "search: filters the feed",
            Intent::NextMatch | Intent::PrevMatch => "next / previous match (/@x: handles)",
            Intent::Mark => "mark / unmark, then next",
            Intent::MarkAll => "mark all matching",
            Intent::TogglePause => "pause / resume the account",
            Intent::FetchAccount | Intent::FetchAll => "fetch now: this account / all",
            Intent::AddAccount => "add an account (log in)",
            Intent::Reauthorize => "reauthorize the account",
            Intent::ToggleShowPaused => "show / hide paused accounts",
            Intent::Stats => "the account's stats",
            Intent::RemoveAccount => "remove the account (asks)",
            Intent::Help => "this help",
            Intent::Quit => "quit (drafts are kept)",
        }
    }

    /// Whether the help lists this action on the line of the one before it (`j k ↓ ↑  next /
    /// previous row`), so the whole help fits an 80x24 screen.
    pub fn shares_previous_line(self) -> bool {
        matches!(
            self,
            Intent::Up | Intent::PageUp | Intent::PrevPane | Intent::PrevMatch | Intent::FetchAll
        )
    }

    pub fn section(self) -> Section {
        match self {
            Intent::Down
            | Intent::Up
            | Intent::Top
            | Intent::Bottom
            | Intent::PageDown
            | Intent::PageUp
            | Intent::NextPane
            | Intent::PrevPane
            | Intent::Open
            | Intent::Back => Section::Moving,
            Intent::ReplyPublic
            | Intent::ReplyDm
            | Intent::OpenInBrowser
            | Intent::CopyLink
            | Intent::CycleStatusFilter
            | Intent::Ignore
            | Intent::Reopen
            | Intent::MarkReplied
            | Intent::Undo
            | Intent::Take => Section::Mentions,
            Intent::MarkSent | Intent::CancelSend => Section::Outbox,
            Intent::Search
            | Intent::NextMatch
            | Intent::PrevMatch
            | Intent::Mark
            | Intent::MarkAll => Section::SearchAndMarks,
            Intent::TogglePause
            | Intent::FetchAccount
            | Intent::FetchAll
            | Intent::AddAccount
            | Intent::Reauthorize
            | Intent::ToggleShowPaused
            | Intent::Stats
            | Intent::RemoveAccount => Section::Accounts,
            Intent::Help | Intent::Quit => Section::General,
        }
    }
}

/// The status bar's hints in the normal mode, in the order shown: the action and its word.
const NORMAL_HINTS: &[(Intent, &str)] = &[
    (Intent::Down, "move"),
    (Intent::NextPane, "pane"),
    (Intent::ReplyPublic, "reply"),
    (Intent::ReplyDm, "DM"),
    (Intent::Ignore, "ignore"),
    (Intent::CycleStatusFilter, "filter"),
    (Intent::Help, "help"),
    (Intent::Quit, "quit"),
];

/// The composer layer's actions (every other key goes to the editor).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, EnumIter, IntoStaticStr,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum ComposerAction {
    Send,
    /// Close the composer, keeping the draft.
    Close,
    ExternalEditor,
    SavedReplies,
}

/// What a key does in the composer, before the editor sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ComposerKey {
    Send,
    Cancel,
    ExternalEditor,
    Templates,
    /// The editor's own key.
    Edit,
}

/// The answer to a y/n question.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, EnumIter, IntoStaticStr,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum ConfirmKey {
    Yes,
    No,
}

/// Keys while typing a search (every other key edits the query).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, EnumIter, IntoStaticStr,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum SearchKey {
    /// Keep the search and go back to the feed.
    Keep,
    /// Clear the search and go back to the feed.
    Clear,
    /// Empty the query.
    ClearQuery,
}

/// Keys in a small picker (accounts, saved replies). Digits 1-9 always choose that item.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, EnumIter, IntoStaticStr,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum PickerAction {
    Down,
    Up,
    Choose,
    Cancel,
}

/// Keys in the account detail and stats views (the normal layer's account keys work there too,
/// on that view's account).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, EnumIter, IntoStaticStr,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum ViewAction {
    Close,
    ScrollDown,
    ScrollUp,
    PageDown,
    PageUp,
    ScrollTop,
}

/// Keys in the "remove this account?" dialog.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, EnumIter, IntoStaticStr,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum RemoveAction {
    KeepMentions,
    DeleteMentions,
    Cancel,
    /// The highlighted choice.
    Confirm,
    PreviousChoice,
    NextChoice,
}

/// Keys in the login dialog (every other key types into its paste field).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, EnumIter, IntoStaticStr,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum LoginAction {
    /// Cancel the login (or close the dialog after a failure).
    Cancel,
    /// Use the pasted address; after a failure, try again.
    Submit,
    /// Copy the authorization link (OSC 52). A plain key does so only while nothing is pasted,
    /// since a code may contain that letter.
    CopyLink,
    ClearInput,
}

/// A picker key as `update` uses it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PickerKey {
    Move(isize),
    /// Enter (the highlighted item) or a digit 1-9 (that item).
    Choose(Option<usize>),
    Cancel,
    Other,
}

/// One key press: a key code and the modifiers that count (Ctrl and Alt; Shift is already part
/// of what a character says, `G`, and of BackTab).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyPress {
    pub code: KeyCodeOrd,
    pub ctrl: bool,
    pub alt: bool,
}

/// `KeyCode` with an order (for sorted, deterministic tables and output).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyCodeOrd {
    Char(char),
    F(u8),
    Named(Named),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, EnumIter)]
pub enum Named {
    Enter,
    Esc,
    Tab,
    BackTab,
    Backspace,
    Delete,
    Insert,
    Up,
    Down,
    Left,
    Right,
    Home,
    End,
    PageUp,
    PageDown,
}

impl Named {
    /// The config spelling (and its other accepted spellings).
    fn names(self) -> &'static [&'static str] {
        match self {
            Named::Enter => &["enter", "return", "ret", "cr"],
            Named::Esc => &["esc", "escape"],
            Named::Tab => &["tab"],
            Named::BackTab => &["backtab", "shift-tab", "s-tab"],
            Named::Backspace => &["backspace", "bs"],
            Named::Delete => &["delete", "del"],
            Named::Insert => &["insert", "ins"],
            Named::Up => &["up"],
            Named::Down => &["down"],
            Named::Left => &["left"],
            Named::Right => &["right"],
            Named::Home => &["home"],
            Named::End => &["end"],
            Named::PageUp => &["pageup", "pgup"],
            Named::PageDown => &["pagedown", "pgdn"],
        }
    }

    /// How the help writes it.
    fn label(self) -> &'static str {
        match self {
            Named::Enter => "Enter",
            Named::Esc => "Esc",
            Named::Tab => "Tab",
            Named::BackTab => "S-Tab",
            Named::Backspace => "Bksp",
            Named::Delete => "Del",
            Named::Insert => "Ins",
            Named::Up => "↑",
            Named::Down => "↓",
            Named::Left => "←",
            Named::Right => "→",
            Named::Home => "Home",
            Named::End => "End",
            Named::PageUp => "PgUp",
            Named::PageDown => "PgDn",
        }
    }
}

impl KeyPress {
    pub const fn plain(code: KeyCodeOrd) -> KeyPress {
        KeyPress {
            code,
            ctrl: false,
            alt: false,
        }
    }

    /// The press a terminal key event is, if it is one a table can bind.
    pub fn from_event(event: &KeyEvent) -> Option<KeyPress> {
        let ctrl = event.modifiers.contains(KeyModifiers::CONTROL);
        let alt = event.modifiers.contains(KeyModifiers::ALT);
        let code = match event.code {
            // Ctrl letters arrive as either case depending on the terminal; they are one key.
            KeyCode::Char(c) if ctrl => KeyCodeOrd::Char(c.to_ascii_lowercase()),
            KeyCode::Char(c) => KeyCodeOrd::Char(c),
            KeyCode::F(n) => KeyCodeOrd::F(n),
            KeyCode::Enter => KeyCodeOrd::Named(Named::Enter),
            KeyCode::Esc => KeyCodeOrd::Named(Named::Esc),
            KeyCode::Tab => KeyCodeOrd::Named(Named::Tab),
            KeyCode::BackTab => KeyCodeOrd::Named(Named::BackTab),
            KeyCode::Backspace => KeyCodeOrd::Named(Named::Backspace),
            KeyCode::Delete => KeyCodeOrd::Named(Named::Delete),
            KeyCode::Insert => KeyCodeOrd::Named(Named::Insert),
            KeyCode::Up => KeyCodeOrd::Named(Named::Up),
            KeyCode::Down => KeyCodeOrd::Named(Named::Down),
            KeyCode::Left => KeyCodeOrd::Named(Named::Left),
            KeyCode::Right => KeyCodeOrd::Named(Named::Right),
            KeyCode::Home => KeyCodeOrd::Named(Named::Home),
            KeyCode::End => KeyCodeOrd::Named(Named::End),
            KeyCode::PageUp => KeyCodeOrd::Named(Named::PageUp),
            KeyCode::PageDown => KeyCodeOrd::Named(Named::PageDown),
            _ => return None,
        };
        Some(KeyPress { code, ctrl, alt })
    }

    /// Reads one press as the config writes it: `j`, `J`, `?`, `space`, `ctrl-s`, `C-s`,
    /// `alt-x`, `M-x`, `enter`, `pgdn`, `f5`, `shift-tab`.
    pub fn parse(text: &str) -> Option<KeyPress> {
        let mut rest = text;
        let mut ctrl = false;
        let mut alt = false;
        loop {
            let lower = rest.to_ascii_lowercase();
            // A modifier prefix only when something follows it ("c" alone is the letter c).
            if let Some(p) = ["ctrl-", "c-"].iter().find(|p| lower.starts_with(**p))
                && rest.len() > p.len()
            {
                ctrl = true;
                rest = &rest[p.len()..];
                continue;
            }
            if let Some(p) = ["alt-", "meta-", "m-", "a-"]
                .iter()
                .find(|p| lower.starts_with(**p))
                && rest.len() > p.len()
            {
                alt = true;
                rest = &rest[p.len()..];
                continue;
            }
            break;
        }
        let mut chars = rest.chars();
        let code = match (chars.next(), chars.next()) {
            (Some(c), None) if !c.is_control() => {
                KeyCodeOrd::Char(if ctrl { c.to_ascii_lowercase() } else { c })
            }
            _ => {
                let lower = rest.to_ascii_lowercase();
                if lower == "space" || lower == "spc" {
                    KeyCodeOrd::Char(' ')
                } else if let Some(n) = lower
                    .strip_prefix('f')
                    .and_then(|n| n.parse::<u8>().ok())
                    .filter(|n| (1..=24).contains(n))
                {
                    KeyCodeOrd::F(n)
                } else {
                    let named = Named::iter().find(|n| n.names().contains(&lower.as_str()))?;
                    KeyCodeOrd::Named(named)
                }
            }
        };
        Some(KeyPress { code, ctrl, alt })
    }
}

impl fmt::Display for KeyPress {
    /// How the help writes a press: `j`, `C-f`, `M-x`, `Space`, `↓`, `S-Tab`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.ctrl {
            f.write_str("C-")?;
        }
        if self.alt {
            f.write_str("M-")?;
        }
        match self.code {
            KeyCodeOrd::Char(' ') => f.write_str("Space"),
            KeyCodeOrd::Char(c) => write!(f, "{c}"),
            KeyCodeOrd::F(n) => write!(f, "F{n}"),
            KeyCodeOrd::Named(n) => f.write_str(n.label()),
        }
    }
}

/// A key sequence: one press, or several typed one after the other (`g g`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeySeq(pub Vec<KeyPress>);

/// The longest sequence a binding may have.
pub const MAX_SEQUENCE: usize = 3;

impl KeySeq {
    pub fn one(press: KeyPress) -> KeySeq {
        KeySeq(vec![press])
    }

    /// Reads a sequence as the config writes it: presses separated by spaces (`"g g"`,
    /// `"ctrl-x ctrl-c"`); a lone space is `space`.
    pub fn parse(text: &str) -> Option<KeySeq> {
        if text == " " {
            return Some(KeySeq::one(KeyPress::plain(KeyCodeOrd::Char(' '))));
        }
        let presses: Option<Vec<KeyPress>> = text.split_whitespace().map(KeyPress::parse).collect();
        let presses = presses?;
        if presses.is_empty() || presses.len() > MAX_SEQUENCE {
            return None;
        }
        Some(KeySeq(presses))
    }

    fn starts_with(&self, prefix: &[KeyPress]) -> bool {
        self.0.len() >= prefix.len() && self.0[..prefix.len()] == *prefix
    }
}

impl fmt::Display for KeySeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

/// An action a layer can bind: its stable name comes from strum, its list from the enum.
pub trait LayerAction: Copy + Eq + fmt::Debug + IntoEnumIterator + Into<&'static str> {
    fn action_name(self) -> &'static str {
        self.into()
    }
    fn from_name(name: &str) -> Option<Self> {
        Self::iter().find(|a| a.action_name() == name)
    }
}
impl LayerAction for Intent {}
impl LayerAction for ComposerAction {}
impl LayerAction for ConfirmKey {}
impl LayerAction for SearchKey {}
impl LayerAction for PickerAction {}
impl LayerAction for ViewAction {}
impl LayerAction for RemoveAction {}
impl LayerAction for LoginAction {}

/// One layer's table: key sequences and their actions, in the order the help lists them.
#[derive(Clone, Debug, PartialEq)]
pub struct Layer<A> {
    pub bindings: Vec<(KeySeq, A)>,
}

/// What a press means given the presses typed before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step<A> {
    Action(A),
    /// The start of a longer sequence: wait for the next press.
    Pending,
    None,
}

impl<A: LayerAction> Layer<A> {
    fn new(bindings: &[(&str, A)]) -> Layer<A> {
        Layer {
            bindings: bindings
                .iter()
                .map(|(k, a)| (KeySeq::parse(k).expect("a preset key parses"), *a))
                .collect(),
        }
    }

    /// The action of a single press (layers without sequences; overlays that take the normal
    /// layer's account keys).
    pub fn single(&self, press: KeyPress) -> Option<A> {
        self.bindings
            .iter()
            .find(|(k, _)| k.0.len() == 1 && k.0[0] == press)
            .map(|(_, a)| *a)
    }

    /// The action of a terminal key event (single presses).
    pub fn of_event(&self, event: &KeyEvent) -> Option<A> {
        self.single(KeyPress::from_event(event)?)
    }

    /// Feeds one press into a pending sequence (`typed`, cleared when it ends).
    pub fn step(&self, typed: &mut Vec<KeyPress>, press: KeyPress) -> Step<A> {
        typed.push(press);
        if let Some((_, a)) = self.bindings.iter().find(|(k, _)| k.0 == *typed) {
            typed.clear();
            return Step::Action(*a);
        }
        if typed.len() < MAX_SEQUENCE && self.bindings.iter().any(|(k, _)| k.starts_with(typed)) {
            return Step::Pending;
        }
        // Not a sequence after all: the last press may start (or be) one of its own.
        let retry = typed.len() > 1;
        typed.clear();
        if retry {
            return self.step(typed, press);
        }
        Step::None
    }

    /// Every sequence bound to `action`, in table order.
    pub fn keys_of(&self, action: A) -> impl Iterator<Item = &KeySeq> {
        self.bindings
            .iter()
            .filter(move |(_, a)| *a == action)
            .map(|(k, _)| k)
    }

    /// The label messages use for `action`: its first key, or `(unbound: name)`.
    pub fn label(&self, action: A) -> String {
        self.keys_of(action).next().map_or_else(
            || format!("(unbound: {})", action.action_name()),
            |k| k.to_string(),
        )
    }

    /// All keys of `action`, as the help shows them (`j ↓`).
    pub fn labels(&self, action: A) -> String {
        self.keys_of(action)
            .map(|k| k.to_string())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Binds `key` to `action` (None: unbinds it), replacing whatever the table had on that key
    /// and on any sequence that starts with it or that it starts with (they would shadow it).
    pub fn set(&mut self, key: KeySeq, action: Option<A>) {
        let clashes = |k: &KeySeq| k.starts_with(&key.0) || key.starts_with(&k.0);
        match self.bindings.iter().position(|(k, _)| clashes(k)) {
            Some(at) => {
                self.bindings.retain(|(k, _)| !clashes(k));
                if let Some(action) = action {
                    let at = at.min(self.bindings.len());
                    self.bindings.insert(at, (key, action));
                }
            }
            None => {
                if let Some(action) = action {
                    self.bindings.push((key, action));
                }
            }
        }
    }
}

/// The name of each layer, as `[keys.<layer>]` and `perch keys --layer` write it.
pub const LAYERS: &[&str] = &[
    "normal", "search", "composer", "confirm", "picker", "view", "remove", "login",
];

/// Every layer's table: what the dashboard dispatches on.
#[derive(Clone, Debug, PartialEq)]
pub struct Keymap {
    pub normal: Layer<Intent>,
    pub search: Layer<SearchKey>,
    pub composer: Layer<ComposerAction>,
    pub confirm: Layer<ConfirmKey>,
    pub picker: Layer<PickerAction>,
    /// The account detail and stats views.
    pub view: Layer<ViewAction>,
    /// The "remove this account?" dialog.
    pub remove: Layer<RemoveAction>,
    pub login: Layer<LoginAction>,
}

/// The key presets `[keys] preset` chooses from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter, IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum Preset {
    Vim,
    Emacs,
}

impl Default for Keymap {
    fn default() -> Keymap {
        Keymap::preset(Preset::Vim)
    }
}

impl Keymap {
    pub fn preset(preset: Preset) -> Keymap {
        let mut map = Keymap {
            normal: Layer::new(VIM_NORMAL),
            search: Layer::new(&[
                ("enter", SearchKey::Keep),
                ("esc", SearchKey::Clear),
                ("ctrl-u", SearchKey::ClearQuery),
            ]),
            composer: Layer::new(&[
                ("ctrl-s", ComposerAction::Send),
                ("ctrl-enter", ComposerAction::Send),
                ("esc", ComposerAction::Close),
                ("ctrl-e", ComposerAction::ExternalEditor),
                ("ctrl-t", ComposerAction::SavedReplies),
            ]),
            confirm: Layer::new(&[
                ("y", ConfirmKey::Yes),
                ("Y", ConfirmKey::Yes),
                ("enter", ConfirmKey::Yes),
                ("n", ConfirmKey::No),
                ("N", ConfirmKey::No),
                ("esc", ConfirmKey::No),
                ("q", ConfirmKey::No),
            ]),
            picker: Layer::new(&[
                ("j", PickerAction::Down),
                ("down", PickerAction::Down),
                ("tab", PickerAction::Down),
                ("k", PickerAction::Up),
                ("up", PickerAction::Up),
                ("backtab", PickerAction::Up),
                ("enter", PickerAction::Choose),
                ("esc", PickerAction::Cancel),
                ("q", PickerAction::Cancel),
            ]),
            view: Layer::new(&[
                ("esc", ViewAction::Close),
                ("q", ViewAction::Close),
                ("j", ViewAction::ScrollDown),
                ("down", ViewAction::ScrollDown),
                ("k", ViewAction::ScrollUp),
                ("up", ViewAction::ScrollUp),
                ("pgdn", ViewAction::PageDown),
                ("pgup", ViewAction::PageUp),
                ("g", ViewAction::ScrollTop),
                ("home", ViewAction::ScrollTop),
            ]),
            remove: Layer::new(&[
                ("left", RemoveAction::PreviousChoice),
                ("h", RemoveAction::PreviousChoice),
                ("backtab", RemoveAction::PreviousChoice),
                ("right", RemoveAction::NextChoice),
                ("l", RemoveAction::NextChoice),
                ("tab", RemoveAction::NextChoice),
                ("enter", RemoveAction::Confirm),
                ("k", RemoveAction::KeepMentions),
                ("d", RemoveAction::DeleteMentions),
                ("esc", RemoveAction::Cancel),
                ("c", RemoveAction::Cancel),
                ("n", RemoveAction::Cancel),
            ]),
            login: Layer::new(&[
                ("enter", LoginAction::Submit),
                ("esc", LoginAction::Cancel),
                ("y", LoginAction::CopyLink),
                ("ctrl-y", LoginAction::CopyLink),
                ("ctrl-u", LoginAction::ClearInput),
            ]),
        };
        if preset == Preset::Emacs {
            for (key, intent) in EMACS_NORMAL {
                let key = KeySeq::parse(key).expect("a preset key parses");
                map.normal.set(key, Some(*intent));
            }
            for (key, action) in [
                ("ctrl-n", PickerAction::Down),
                ("ctrl-p", PickerAction::Up),
                ("ctrl-g", PickerAction::Cancel),
            ] {
                map.picker
                    .set(KeySeq::parse(key).expect("parses"), Some(action));
            }
            map.search.set(
                KeySeq::parse("ctrl-g").expect("parses"),
                Some(SearchKey::Clear),
            );
            map.composer.set(
                KeySeq::parse("ctrl-g").expect("parses"),
                Some(ComposerAction::Close),
            );
            map.composer.set(
                KeySeq::parse("ctrl-c ctrl-c").expect("parses"),
                Some(ComposerAction::Send),
            );
            map.confirm.set(
                KeySeq::parse("ctrl-g").expect("parses"),
                Some(ConfirmKey::No),
            );
            for (key, action) in [
                ("ctrl-g", ViewAction::Close),
                ("ctrl-n", ViewAction::ScrollDown),
                ("ctrl-p", ViewAction::ScrollUp),
                ("ctrl-v", ViewAction::PageDown),
                ("alt-v", ViewAction::PageUp),
                ("alt-<", ViewAction::ScrollTop),
            ] {
                map.view
                    .set(KeySeq::parse(key).expect("parses"), Some(action));
            }
            map.remove.set(
                KeySeq::parse("ctrl-g").expect("parses"),
                Some(RemoveAction::Cancel),
            );
            map.login.set(
                KeySeq::parse("ctrl-g").expect("parses"),
                Some(LoginAction::Cancel),
            );
        }
        map
    }

    /// The normal layer's help, section by section: (title, [(keys, what they do)]). Actions
    /// with no key are left out; a pair shares the line of its first action.
    pub fn help_sections(&self) -> Vec<(&'static str, Vec<(String, &'static str)>)> {
        Section::iter()
            .map(|section| {
                let mut lines: Vec<(String, &'static str)> = Vec::new();
                for intent in Intent::iter().filter(|i| i.section() == section) {
                    let keys = self.normal.labels(intent);
                    if keys.is_empty() {
                        continue;
                    }
                    match lines.last_mut() {
                        Some((shown, help))
                            if intent.shares_previous_line() && *help == intent.help() =>
                        {
                            shown.push(' ');
                            shown.push_str(&keys);
                        }
                        _ => lines.push((keys, intent.help())),
                    }
                }
                (section.title(), lines)
            })
            .collect()
    }

    /// The composer's help lines.
    pub fn composer_help(&self) -> Vec<(String, &'static str)> {
        let c = &self.composer;
        vec![
            (c.labels(ComposerAction::Send), "send"),
            (c.labels(ComposerAction::Close), "close, keep the draft"),
            (c.labels(ComposerAction::ExternalEditor), "$EDITOR"),
            (c.labels(ComposerAction::SavedReplies), "saved replies"),
            ("C-u C-r".to_string(), "undo / redo (C-w: word)"),
        ]
        .into_iter()
        .filter(|(k, _)| !k.is_empty())
        .collect()
    }

    /// The status bar's hints in the normal mode: (key label, word). `j/k` for the pair.
    pub fn normal_hints(&self) -> Vec<(String, &'static str)> {
        NORMAL_HINTS
            .iter()
            .filter_map(|&(intent, word)| {
                let first = self.normal.keys_of(intent).next()?.to_string();
                let label = match intent {
                    Intent::Down => match self.normal.keys_of(Intent::Up).next() {
                        Some(up) => format!("{first}/{up}"),
                        None => first,
                    },
                    _ => first,
                };
                Some((label, word))
            })
            .collect()
    }

    /// The composer's hints.
    pub fn composer_hints(&self) -> Vec<(String, &'static str)> {
        [
            (ComposerAction::Send, "send"),
            (ComposerAction::ExternalEditor, "$EDITOR"),
            (ComposerAction::SavedReplies, "saved replies"),
            (ComposerAction::Close, "close, keep draft"),
        ]
        .into_iter()
        .filter_map(|(a, word)| Some((self.composer.keys_of(a).next()?.to_string(), word)))
        .collect()
    }

    /// The triage keys as a message names them: `i, p or x`.
    pub fn triage_keys(&self) -> String {
        format!(
            "{}, {} or {}",
            self.key(Intent::Ignore),
            self.key(Intent::Reopen),
            self.key(Intent::MarkReplied)
        )
    }

    /// The label of a normal-mode action for a message ("press R to reauthorize").
    pub fn key(&self, intent: Intent) -> String {
        self.normal.label(intent)
    }

    /// The effective map as `perch keys --json` prints it: layer → key → action.
    pub fn to_json(&self) -> serde_json::Value {
        fn layer<A: LayerAction>(l: &Layer<A>) -> serde_json::Value {
            let map: serde_json::Map<String, serde_json::Value> = l
                .bindings
                .iter()
                .map(|(k, a)| (k.config_string(), a.action_name().into()))
                .collect();
            serde_json::Value::Object(map)
        }
        serde_json::json!({
            "normal": layer(&self.normal),
            "search": layer(&self.search),
            "composer": layer(&self.composer),
            "confirm": layer(&self.confirm),
            "picker": layer(&self.picker),
            "view": layer(&self.view),
            "remove": layer(&self.remove),
            "login": layer(&self.login),
        })
    }

    /// One layer as lines of `key  action` (`perch keys`).
    pub fn layer_lines(&self, name: &str) -> Option<Vec<(String, &'static str)>> {
        fn lines<A: LayerAction>(l: &Layer<A>) -> Vec<(String, &'static str)> {
            l.bindings
                .iter()
                .map(|(k, a)| (k.config_string(), a.action_name()))
                .collect()
        }
        Some(match name {
            "normal" => lines(&self.normal),
            "search" => lines(&self.search),
            "composer" => lines(&self.composer),
            "confirm" => lines(&self.confirm),
            "picker" => lines(&self.picker),
            "view" => lines(&self.view),
            "remove" => lines(&self.remove),
            "login" => lines(&self.login),
            _ => return None,
        })
    }
}

impl KeyPress {
    /// How the config writes it (`ctrl-s`, `J`, `space`, `pgdn`): what `perch keys` prints, so
    /// its output can be pasted into the config.
    pub fn config_string(&self) -> String {
        let mut out = String::new();
        if self.ctrl {
            out.push_str("ctrl-");
        }
        if self.alt {
            out.push_str("alt-");
        }
        match self.code {
            KeyCodeOrd::Char(' ') => out.push_str("space"),
            KeyCodeOrd::Char(c) => out.push(c),
            KeyCodeOrd::F(n) => out.push_str(&format!("f{n}")),
            KeyCodeOrd::Named(n) => out.push_str(n.names()[0]),
        }
        out
    }
}

impl KeySeq {
    pub fn config_string(&self) -> String {
        self.0
            .iter()
            .map(KeyPress::config_string)
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Today's keys: the `vim` preset's normal layer, in the order the help lists them.
const VIM_NORMAL: &[(&str, Intent)] = &[
    ("j", Intent::Down),
    ("down", Intent::Down),
    ("k", Intent::Up),
    ("up", Intent::Up),
    ("g", Intent::Top),
    ("home", Intent::Top),
    ("G", Intent::Bottom),
    ("end", Intent::Bottom),
    ("pgdn", Intent::PageDown),
    ("pgup", Intent::PageUp),
    ("tab", Intent::NextPane),
    ("backtab", Intent::PrevPane),
    ("enter", Intent::Open),
    ("esc", Intent::Back),
    ("r", Intent::ReplyPublic),
    ("d", Intent::ReplyDm),
    ("o", Intent::OpenInBrowser),
    ("y", Intent::CopyLink),
    ("f", Intent::CycleStatusFilter),
    ("i", Intent::Ignore),
    ("p", Intent::Reopen),
    ("x", Intent::MarkReplied),
    ("u", Intent::Undo),
    ("A", Intent::Take),
    ("M", Intent::MarkSent),
    ("c", Intent::CancelSend),
    ("/", Intent::Search),
    ("n", Intent::NextMatch),
    ("N", Intent::PrevMatch),
    ("space", Intent::Mark),
    ("V", Intent::MarkAll),
    ("P", Intent::TogglePause),
    ("F", Intent::FetchAccount),
    ("ctrl-f", Intent::FetchAll),
    ("a", Intent::AddAccount),
    ("R", Intent::Reauthorize),
    ("H", Intent::ToggleShowPaused),
    ("s", Intent::Stats),
    ("D", Intent::RemoveAccount),
    ("?", Intent::Help),
    ("q", Intent::Quit),
    ("ctrl-c", Intent::Quit),
];

/// The `emacs` preset: the `vim` table with emacs motions on top (C-n/C-p, M-</M->, C-v/M-v,
/// C-g, C-s for search, C-x C-c to quit). The letters stay: triage keys have no emacs meaning.
const EMACS_NORMAL: &[(&str, Intent)] = &[
    ("ctrl-n", Intent::Down),
    ("ctrl-p", Intent::Up),
    ("alt-<", Intent::Top),
    ("alt->", Intent::Bottom),
    ("ctrl-v", Intent::PageDown),
    ("alt-v", Intent::PageUp),
    ("ctrl-g", Intent::Back),
    ("ctrl-s", Intent::Search),
    ("ctrl-r", Intent::PrevMatch),
    ("ctrl-x ctrl-c", Intent::Quit),
];

/// The picker key of a terminal event under `map`.
pub fn picker_key(map: &Keymap, event: &KeyEvent) -> PickerKey {
    if let KeyCode::Char(c @ '1'..='9') = event.code
        && !event.modifiers.contains(KeyModifiers::CONTROL)
    {
        return PickerKey::Choose(Some(c as usize - '1' as usize));
    }
    match map.picker.of_event(event) {
        Some(PickerAction::Down) => PickerKey::Move(1),
        Some(PickerAction::Up) => PickerKey::Move(-1),
        Some(PickerAction::Choose) => PickerKey::Choose(None),
        Some(PickerAction::Cancel) => PickerKey::Cancel,
        None => PickerKey::Other,
    }
}

/// The composer key of a terminal event under `map` (`Edit`: the editor's).
pub fn composer_key(map: &Keymap, event: &KeyEvent) -> ComposerKey {
    match map.composer.of_event(event) {
        Some(ComposerAction::Send) => ComposerKey::Send,
        Some(ComposerAction::Close) => ComposerKey::Cancel,
        Some(ComposerAction::ExternalEditor) => ComposerKey::ExternalEditor,
        Some(ComposerAction::SavedReplies) => ComposerKey::Templates,
        None => ComposerKey::Edit,
    }
}

/// The answer to a y/n question: `Some(true)` yes, `Some(false)` no, `None` not an answer.
pub fn confirm_key(map: &Keymap, event: &KeyEvent) -> Option<bool> {
    map.confirm.of_event(event).map(|k| k == ConfirmKey::Yes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn press(code: KeyCode, modifiers: KeyModifiers) -> KeyPress {
        KeyPress::from_event(&KeyEvent::new(code, modifiers)).unwrap()
    }

    #[test]
    fn every_action_has_a_key_and_a_help_line_in_both_presets() {
        for preset in Preset::iter() {
            let map = Keymap::preset(preset);
            let help = map.help_sections();
            for intent in Intent::iter() {
                let keys = map.normal.labels(intent);
                assert!(!keys.is_empty(), "{preset:?}: {intent:?} has no key");
                let (_, lines) = help
                    .iter()
                    .find(|(title, _)| *title == intent.section().title())
                    .unwrap();
                let line = lines
                    .iter()
                    .find(|(_, text)| *text == intent.help())
                    .unwrap_or_else(|| panic!("{intent:?} has no help line"));
                for key in keys.split(' ') {
                    assert!(
                        line.0.split(' ').any(|k| k == key),
                        "{preset:?}: {intent:?}: {key} is not on its help line {:?}",
                        line.0
                    );
                }
            }
        }
    }

    #[test]
    fn action_names_are_snake_case_the_same_through_serde_and_unique() {
        let mut seen = std::collections::HashSet::new();
        for intent in Intent::iter() {
            let name = intent.name();
            assert!(name.chars().all(|c| c.is_ascii_lowercase() || c == '_'));
            assert!(seen.insert(name), "{name} twice");
            let through_serde = serde_json::to_value(intent).unwrap();
            assert_eq!(through_serde, serde_json::Value::from(name));
            assert_eq!(Intent::from_name(name), Some(intent));
        }
        assert_eq!(Intent::Ignore.name(), "ignore_and_next");
        assert_eq!(Intent::ReplyPublic.name(), "reply_public");
    }

    #[test]
    fn no_key_is_bound_twice_in_a_layer_of_either_preset() {
        for preset in Preset::iter() {
            let map = Keymap::preset(preset);
            let keys: Vec<&KeySeq> = map.normal.bindings.iter().map(|(k, _)| k).collect();
            for (i, a) in keys.iter().enumerate() {
                for b in &keys[i + 1..] {
                    assert!(
                        !(a.starts_with(&b.0) || b.starts_with(&a.0)),
                        "{preset:?}: {a} and {b} clash"
                    );
                }
            }
        }
    }

    #[test]
    fn shifted_letters_and_control_keys_are_told_apart() {
        let map = Keymap::default();
        let n = &map.normal;
        assert_eq!(
            n.single(press(KeyCode::Char('G'), KeyModifiers::SHIFT)),
            Some(Intent::Bottom)
        );
        assert_eq!(
            n.single(press(KeyCode::Char('f'), KeyModifiers::CONTROL)),
            Some(Intent::FetchAll)
        );
        // Some terminals report Ctrl-F with the capital letter.
        assert_eq!(
            n.single(press(
                KeyCode::Char('F'),
                KeyModifiers::CONTROL | KeyModifiers::SHIFT
            )),
            Some(Intent::FetchAll)
        );
        assert_eq!(
            n.single(press(KeyCode::Char('f'), KeyModifiers::NONE)),
            Some(Intent::CycleStatusFilter)
        );
        assert_eq!(
            n.single(press(KeyCode::BackTab, KeyModifiers::SHIFT)),
            Some(Intent::PrevPane)
        );
    }

    #[test]
    fn composer_sends_on_ctrl_s_and_ctrl_enter_only() {
        let map = Keymap::default();
        let key = |code, m| composer_key(&map, &KeyEvent::new(code, m));
        assert_eq!(
            key(KeyCode::Char('s'), KeyModifiers::CONTROL),
            ComposerKey::Send
        );
        assert_eq!(
            key(KeyCode::Enter, KeyModifiers::CONTROL),
            ComposerKey::Send
        );
        assert_eq!(key(KeyCode::Enter, KeyModifiers::NONE), ComposerKey::Edit);
        assert_eq!(
            key(KeyCode::Char('s'), KeyModifiers::NONE),
            ComposerKey::Edit
        );
    }

    #[test]
    fn key_strings_parse_and_print_back() {
        for (text, label, config) in [
            ("j", "j", "j"),
            ("J", "J", "J"),
            ("ctrl-s", "C-s", "ctrl-s"),
            ("C-S", "C-s", "ctrl-s"),
            ("alt-x", "M-x", "alt-x"),
            ("space", "Space", "space"),
            ("pgdn", "PgDn", "pagedown"),
            ("shift-tab", "S-Tab", "backtab"),
            ("f5", "F5", "f5"),
            ("c", "c", "c"),
            ("-", "-", "-"),
            ("ctrl--", "C--", "ctrl--"),
        ] {
            let p = KeyPress::parse(text).unwrap_or_else(|| panic!("{text} parses"));
            assert_eq!(p.to_string(), label, "{text}");
            assert_eq!(p.config_string(), config, "{text}");
            assert_eq!(KeyPress::parse(&p.config_string()), Some(p), "{text}");
        }
        for bad in ["", "ctrl-", "jj", "f99", "hyper-x", "\u{1b}"] {
            assert_eq!(KeyPress::parse(bad), None, "{bad:?}");
        }
        assert_eq!(KeySeq::parse("g g").unwrap().to_string(), "g g");
        assert_eq!(KeySeq::parse("a b c d"), None, "too long");
    }

    #[test]
    fn sequences_wait_for_their_next_press_and_fall_back_to_single_keys() {
        let mut map = Keymap::default();
        map.normal
            .set(KeySeq::parse("g g").unwrap(), Some(Intent::Top));
        let g = KeyPress::parse("g").unwrap();
        let j = KeyPress::parse("j").unwrap();
        let mut typed = Vec::new();
        assert_eq!(map.normal.step(&mut typed, g), Step::Pending);
        assert_eq!(map.normal.step(&mut typed, g), Step::Action(Intent::Top));
        assert!(typed.is_empty());
        // `g j`: not a sequence; `j` still moves.
        assert_eq!(map.normal.step(&mut typed, g), Step::Pending);
        assert_eq!(map.normal.step(&mut typed, j), Step::Action(Intent::Down));
        // The preset's single `g` gave way to the sequence.
        assert_eq!(map.normal.single(g), None);
    }

    #[test]
    fn hints_and_labels_follow_a_remapped_key() {
        let mut map = Keymap::default();
        map.normal.set(KeySeq::parse("i").unwrap(), None);
        map.normal
            .set(KeySeq::parse("e").unwrap(), Some(Intent::Ignore));
        assert_eq!(map.key(Intent::Ignore), "e");
        assert!(map.normal_hints().contains(&("e".to_string(), "ignore")));
        let mentions = &map.help_sections()[1].1;
        assert!(mentions.contains(&("e".to_string(), "ignore, then next")));
        map.normal.set(KeySeq::parse("R").unwrap(), None);
        assert_eq!(map.key(Intent::Reauthorize), "(unbound: reauthorize)");
    }
}
