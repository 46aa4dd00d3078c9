//! The UI's copy of the outbox entries that still need something (queued, waiting, sending,
//! unconfirmed, failed), by mention. Only a handful exist at any time, so the UI keeps them all:
//! drawing can show "unconfirmed: check on X" on a row without reading the store.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use crate::app::FeedSource;
use crate::app::keymap::{Intent, Keymap};
use crate::domain::{MentionKey, ReplyKind};
use crate::outbox::OutboxCommand;
use crate::store::{OutboxEntry, OutboxState, StoreError};

/// How the user resolves a mention's outbox entry from the keyboard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resolve {
    /// Enter on an unconfirmed reply: send it again.
    Retry,
    /// `M`: it is on X.
    MarkSent,
    /// `c`: call back a waiting reply, or say an unconfirmed one is not on X.
    Cancel,
}

/// Said when the user tries to write a new reply to a mention whose last one is unconfirmed.
pub fn resolve_first(keys: &Keymap) -> String {
    format!(
        "the last reply to this mention is unconfirmed: check on X ({}), then {} if it is there, {} to send it again, or {} if it is not",
        keys.key(Intent::OpenInBrowser),
        keys.key(Intent::MarkSent),
        keys.key(Intent::Open),
        keys.key(Intent::CancelSend)
    )
}

/// The status-bar notice for an entry that became unconfirmed.
pub fn unconfirmed_notice(keys: &Keymap, kind: ReplyKind, message: &str) -> String {
    let detail = crate::text::sanitize(message, true);
    format!(
        "{} unconfirmed: check on X ({} opens the post). {detail}",
        kind.noun(),
        keys.key(Intent::OpenInBrowser)
    )
}

/// The status-bar notice for a rate-limited entry.
pub fn waiting_notice(keys: &Keymap, until: DateTime<Utc>) -> String {
    format!(
        "{} ({} cancels; the draft is kept)",
        crate::outbox::rate_limited_message(until),
        keys.key(Intent::CancelSend)
    )
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct OutboxBoard {
    entries: HashMap<MentionKey, OutboxEntry>,
}

impl OutboxBoard {
    /// Re-reads every unfinished entry.
    pub fn reload(&mut self, store: &dyn FeedSource) -> Result<(), StoreError> {
        self.entries = store
            .outbox_open()?
            .into_iter()
            .map(|e| (e.key, e))
            .collect();
        Ok(())
    }

    /// Re-reads one mention's entry (after an outbox event about it).
    pub fn refresh(&mut self, store: &dyn FeedSource, key: MentionKey) -> Result<(), StoreError> {
        match store.outbox_current(key)? {
            Some(entry) => {
                self.entries.insert(key, entry);
            }
            None => {
                self.entries.remove(&key);
            }
        }
        Ok(())
    }

    /// The mention's unfinished entry, if it has one.
    pub fn get(&self, key: MentionKey) -> Option<&OutboxEntry> {
        self.entries.get(&key)
    }

    /// The mention's entry when it waits for the user to say whether it is on X.
    pub fn unconfirmed(&self, key: MentionKey) -> Option<&OutboxEntry> {
        self.get(key)
            .filter(|e| e.state == OutboxState::Unconfirmed)
    }

    /// The mention's entry when the user can still call it back (queued or waiting).
    pub fn cancellable(&self, key: MentionKey) -> Option<&OutboxEntry> {
        self.get(key)
            .filter(|e| matches!(e.state, OutboxState::Queued | OutboxState::Waiting))
    }

    /// How many entries are unconfirmed (for a status-bar count).
    pub fn unconfirmed_count(&self) -> usize {
        self.entries
            .values()
            .filter(|e| e.state == OutboxState::Unconfirmed)
            .count()
    }

    /// The command that resolves `key`'s entry the way the user asked, with what to tell them;
    /// or why there is nothing to do.
    pub fn resolution(
        &self,
        key: MentionKey,
        how: Resolve,
    ) -> Result<(OutboxCommand, String), String> {
        let Some(entry) = self.get(key) else {
            return Err(match how {
                Resolve::Cancel => {
                    "nothing to cancel: this mention has no reply waiting to be sent".into()
                }
                _ => "this mention has no unconfirmed reply to resolve".into(),
            });
        };
        let noun = entry.kind.noun();
        match (how, entry.state) {
            (Resolve::Retry, OutboxState::Unconfirmed) => Ok((
                OutboxCommand::Retry(key),
                format!(
                    "sending the {noun} again (if X says it is a duplicate, it was already there)"
                ),
            )),
            (Resolve::MarkSent, OutboxState::Unconfirmed | OutboxState::Failed) => Ok((
                OutboxCommand::MarkSent(key),
                format!("marking the {noun} as sent (X's id for it is unknown)"),
            )),
            (
                Resolve::Cancel,
                OutboxState::Queued | OutboxState::Waiting | OutboxState::Unconfirmed,
            ) => Ok((
                OutboxCommand::Cancel(key),
                format!("cancelling the {noun}; the draft is kept"),
            )),
            (_, OutboxState::Sending) => Err(format!(
                "the {noun} is being sent right now; it cannot be called back"
            )),
            (_, state) => Err(format!(
                "the {noun} to this mention is {state}: nothing to do"
            )),
        }
    }
}
