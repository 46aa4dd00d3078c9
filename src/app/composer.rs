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
    /// What a reply costs is shown before it is sent: the mention answered and the prices
    /// (set by `update` when it opens the composer; `None` in tests that never price).
    pub pricing: Option<(Box<Mention>, crate::costs::Prices)>,
    /// "this reply costs $0.20: it contains a link", while the draft contains a URL.
    pub cost_note: Option<String>,
    /// The user already answered "over budget: send anyway?" for this draft.
    pub over_budget_confirmed: bool,
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
            pricing: None,
            cost_note: None,
            over_budget_confirmed: false,
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
        self.cost_note = self.pricing.as_ref().and_then(|(mention, prices)| {
            let kind = crate::store::send_kind(self.kind, &draft, mention);
            (kind == crate::costs::CostKind::ReplyWithUrl).then(|| {
                format!(
                    "this reply costs {}: it contains a link",
                    crate::costs::format_usd_cents(prices.of(kind))
                )
            })
        });
    }

    /// Prices the draft as it is edited (the composer then warns before a $0.20 reply).
    pub fn set_pricing(&mut self, mention: &Mention, prices: crate::costs::Prices) {
        self.pricing = Some((Box::new(mention.clone()), prices));
        self.recount();
    }
}
