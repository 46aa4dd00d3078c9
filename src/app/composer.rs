//! The reply composer: a multi-line editor bound to one mention and one kind of reply. The account
//! it replies from is not a field anyone can set: it is always the mention's `sent_to` account.

use ratatui_textarea::{TextArea, WrapMode};

use crate::app::overlay::TemplatePicker;
use crate::domain::ReplyKind;
use crate::domain::{Mention, MentionKey};
use crate::text;

/// How far the draft's length is known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Measure {
    /// `length` is exact for the current draft.
    Exact,
    /// The draft is longer than `text::MAX_EXACT_POST_LENGTH`: over, not counted further.
    Over,
    /// Being measured off the key path (a long run without spaces); `length` is an older count.
    Measuring,
}

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
    /// The draft's length as X counts it (weighted for posts, characters for DMs), as last
    /// measured; see `measure`.
    pub length: usize,
    /// Whether `length` is the current draft's, only known to be over, or being measured.
    pub measure: Measure,
    /// Counts edits, so a measurement that comes back late is recognised as stale.
    pub generation: u64,
    /// The draft needs measuring off the key path (see `take_measure_request`).
    measure_wanted: bool,
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
    /// The user already answered "ana is replying too: send anyway?" for this draft.
    pub over_others_confirmed: bool,
}

impl Composer {
    /// Opens a composer for `mention`, starting from `draft` when one was kept, else from
    /// `@sender ` for a public reply (so it threads under the right person) or empty for a DM.
    pub fn open(mention: &Mention, kind: ReplyKind, draft: Option<&str>) -> Composer {
        let sender_handle = text::shown_field(&mention.sender.handle());
        // Only a username X could have sent goes into the draft; anything else would be posted
        // as a mangled mention.
        let valid_sender = mention
            .sender
            .username
            .as_deref()
            .is_some_and(crate::domain::is_x_username);
        let initial = match (draft, kind) {
            (Some(d), _) => d.to_string(),
            (None, ReplyKind::Public) if valid_sender => format!("{sender_handle} "),
            (None, _) => String::new(),
        };
        let prefill = match kind {
            ReplyKind::Public if valid_sender => format!("{sender_handle} "),
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
            measure: Measure::Exact,
            generation: 0,
            measure_wanted: false,
            refusal: None,
            unsaved: false,
            templates: None,
            initial: prefill,
            pricing: None,
            cost_note: None,
            over_budget_confirmed: false,
            over_others_confirmed: false,
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

    /// Why the draft cannot be sent as it is, if it cannot. Uses the measured length: nothing
    /// here parses the draft (this runs on a key press).
    pub fn check(&self) -> Option<String> {
        let draft = self.text();
        match self.kind {
            ReplyKind::Public if draft.trim().is_empty() => Some("the reply is empty".to_string()),
            ReplyKind::Public => match self.measure {
                Measure::Measuring => Some(
                    "perch is still measuring the reply's length; send again in a moment".into(),
                ),
                Measure::Over => text::post_length_refusal(text::PostLength::Over),
                Measure::Exact => text::post_length_refusal(text::PostLength::Exact(self.length)),
            },
            ReplyKind::Dm => text::check_dm(&draft),
        }
    }

    /// The counter under the editor: "231/280", ">2800/280", or "…/280" while measuring.
    pub fn counter(&self) -> String {
        match self.measure {
            Measure::Exact => format!("{}/{}", self.length, self.limit()),
            Measure::Over => text::PostLength::Over.shown(self.limit()),
            Measure::Measuring => format!("…/{}", self.limit()),
        }
    }

    /// Whether the draft is known to be over the limit.
    pub fn is_over(&self) -> bool {
        match self.measure {
            Measure::Exact => self.length > self.limit(),
            Measure::Over => true,
            Measure::Measuring => false,
        }
    }

    /// The text to measure and its generation, once per edit that needs it (the caller hands
    /// it to a measurer off the key path and reports back with `measured`).
    pub fn take_measure_request(&mut self) -> Option<(u64, String)> {
        std::mem::take(&mut self.measure_wanted).then(|| (self.generation, self.text()))
    }

    /// A measurement came back; ignored when the draft has changed since.
    pub fn measured(&mut self, generation: u64, length: text::PostLength) -> bool {
        if generation != self.generation || self.measure != Measure::Measuring {
            return false;
        }
        match length {
            text::PostLength::Exact(n) => {
                self.length = n;
                self.measure = Measure::Exact;
            }
            text::PostLength::Over => self.measure = Measure::Over,
        }
        true
    }

    /// Re-measures the draft after an edit (posts as X weighs them, DMs in characters, matching
    /// `text::check_post` and `text::check_dm`).
    ///
    /// Bounded on the key path: a draft beyond the exact cap is over without a parse, a draft
    /// twitter-text weighs quickly is counted here, and anything else (a long run without
    /// spaces, whose cost grows with its square) is left to a measurer off the key path.
    pub fn recount(&mut self) {
        self.generation += 1;
        let draft = self.text();
        match self.kind {
            ReplyKind::Dm => {
                self.length = draft.chars().count();
                self.measure = Measure::Exact;
            }
            ReplyKind::Public if text::quick_to_measure(&draft) => {
                match text::post_length(&draft) {
                    text::PostLength::Exact(n) => {
                        self.length = n;
                        self.measure = Measure::Exact;
                    }
                    text::PostLength::Over => self.measure = Measure::Over,
                }
                self.measure_wanted = false;
            }
            ReplyKind::Public => {
                self.measure = Measure::Measuring;
                self.measure_wanted = true;
            }
        }
        // What the reply costs, by the same URL parse: only where the length parse is quick
        // too (a draft left to the background measurer keeps its last note until it is).
        if self.kind == ReplyKind::Dm || text::quick_to_measure(&draft) {
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
    }

    /// Prices the draft as it is edited (the composer then warns before a $0.20 reply).
    pub fn set_pricing(&mut self, mention: &Mention, prices: crate::costs::Prices) {
        self.pricing = Some((Box::new(mention.clone()), prices));
        self.recount();
    }
}
