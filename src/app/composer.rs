//! The reply composer: a multi-line editor bound to one mention and one kind of reply. The account
//! it replies from is not a field anyone can set: it is always the mention's `sent_to` account.

use ratatui_textarea::{TextArea, WrapMode};

use crate::app::overlay::TemplatePicker;
use crate::domain::{Mention, MentionKey};
use crate::outbox::ReplyKind;
use crate::text;

#[derive(Clone, Debug)]
pub struct Composer {
    /// The mention being answered; `key.account_id` is the account that sends.
    pub key: MentionKey,
    pub kind: ReplyKind,
    /// `@handle` of the account that sends (the mention's `sent_to`), sanitised.
    pub account_handle: String,
    /// `@handle` of the person being answered, sanitised.
    pub sender_handle: String,
    /// One line of the mention, to remind the user what they answer.
    pub context: String,
    pub editor: TextArea<'static>,
    /// The draft's length as X counts it (weighted for posts, characters for DMs).
    pub length: usize,
    /// Why the last send was refused, until the draft changes.
    pub refusal: Option<String>,
    /// The draft changed since it was last saved to the store (saved on the next tick).
    pub unsaved: bool,
    /// The saved-reply picker (`Ctrl-T`), while it is open.
    pub templates: Option<TemplatePicker>,
    /// The draft as first opened (`@sender ` for a public reply): a saved reply replaces it
    /// rather than being added after it.
    pub initial: String,
}

impl Composer {
    /// Opens a composer for `mention`, starting from `draft` when one was kept, else from
    /// `@sender ` for a public reply (so it threads under the right person) or empty for a DM.
    pub fn open(mention: &Mention, kind: ReplyKind, draft: Option<&str>) -> Composer {
        let sender_handle = text::for_screen(&mention.sender.handle(), true);
        let initial = match (draft, kind) {
            (Some(d), _) => d.to_string(),
            (None, ReplyKind::Public) if mention.sender.username.is_some() => {
                format!("{sender_handle} ")
            }
            (None, _) => String::new(),
        };
        let prefill = match kind {
            ReplyKind::Public if mention.sender.username.is_some() => format!("{sender_handle} "),
            _ => String::new(),
        };
        let mut composer = Composer {
            key: mention.key(),
            kind,
            account_handle: format!("@{}", text::for_screen(&mention.sent_to.username, true)),
            sender_handle,
            context: text::for_screen(&mention.text, true),
            editor: TextArea::default(),
            length: 0,
            refusal: None,
            unsaved: false,
            templates: None,
            initial: prefill,
        };
        composer.replace_text(&initial);
        composer.unsaved = false;
        composer
    }

    /// Replaces the whole draft (from `$EDITOR` or a saved reply), cursor at the end.
    pub fn replace_text(&mut self, draft: &str) {
        let lines: Vec<String> = draft.split('\n').map(str::to_string).collect();
        let mut editor = TextArea::new(lines);
        editor.set_wrap_mode(WrapMode::WordOrGlyph);
        editor.move_cursor(ratatui_textarea::CursorMove::Bottom);
        editor.move_cursor(ratatui_textarea::CursorMove::End);
        self.editor = editor;
        self.refusal = None;
        self.unsaved = true;
        self.recount();
    }

    /// Puts a saved reply in: it replaces an untouched draft, else goes in at the cursor.
    pub fn insert_template(&mut self, filled: &str) {
        let current = self.text();
        if current.trim().is_empty() || current == self.initial {
            self.replace_text(filled);
        } else {
            // Keep words apart: a space first when the cursor sits right after a word.
            let ratatui_textarea::DataCursor(row, col) = self.editor.cursor();
            let before = self
                .editor
                .lines()
                .get(row)
                .and_then(|l| l.chars().nth(col.checked_sub(1)?));
            if before.is_some_and(|c| !c.is_whitespace()) {
                self.editor.insert_char(' ');
            }
            self.editor.insert_str(filled);
            self.refusal = None;
            self.unsaved = true;
            self.recount();
        }
    }

    /// The draft as it would be sent.
    pub fn text(&self) -> String {
        self.editor.lines().join("\n")
    }

    /// "replying as @account to @sender" or "DM as @account to @sender".
    pub fn header(&self) -> String {
        match self.kind {
            ReplyKind::Public => format!(
                "replying as {} to {}",
                self.account_handle, self.sender_handle
            ),
            ReplyKind::Dm => format!("DM as {} to {}", self.account_handle, self.sender_handle),
        }
    }

    /// The most this kind of reply may hold.
    pub fn limit(&self) -> usize {
        match self.kind {
            ReplyKind::Public => text::MAX_POST_LENGTH,
            ReplyKind::Dm => text::MAX_DM_LENGTH,
        }
    }

    /// Why the draft cannot be sent as it is, if it cannot.
    pub fn check(&self) -> Option<String> {
        let draft = self.text();
        match self.kind {
            ReplyKind::Public => text::check_post(&draft),
            ReplyKind::Dm => text::check_dm(&draft),
        }
    }

    /// Re-measures the draft after an edit (posts as X weighs them, DMs in characters, matching
    /// `text::check_post` and `text::check_dm`).
    pub fn recount(&mut self) {
        let draft = self.text();
        self.length = match self.kind {
            ReplyKind::Public => text::weighted_length(&draft),
            ReplyKind::Dm => draft.chars().count(),
        };
    }
}
