//! Who said what as the account (issue 16): the audit log's reply and DM entries.
//!
//! The outbox does not know people; the service does. When a client asks for a send (REST, a
//! dashboard session, a CLI command run in the service), the service notes who asked and the
//! text ([`AskedSends::note`]) before the command reaches the outbox. The hub watches the
//! outbox's reports and records the note when the send's outcome says it is on X (`Sent`) or may
//! be (`Unconfirmed`, recorded as such), matching the outcome's text to the note's, so:
//!
//! - a send the outbox refused, cancelled, or that failed (X refused it: nothing was posted) is
//!   never recorded;
//! - a refused second send while another client's is in flight is not mistaken for it: the
//!   outcome carries the text that went out, and only the note with that text is recorded;
//! - a send that outlives its request (`wait=false`, a client gone) is still recorded, since the
//!   hub, not the request, watches for its outcome.
//!
//! Notes live in memory: a service that restarts while a send is out loses its note, and that
//! send is not in the log (the outbox still settles it).

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};

use crate::domain::MentionKey;
use crate::outbox::{OutboxEvent, ReplyKind};

/// Notes older than this are dropped: a send waits out X's rate limit for a day at most.
const NOTE_KEPT: Duration = Duration::hours(48);
/// At most this many notes per mention (a client repeating a refused send) and mentions noted:
/// past either, the oldest note goes (and its send, if it ever leaves, is not recorded).
const NOTES_PER_MENTION: usize = 8;
const MENTIONS_NOTED: usize = 10_000;

/// A reply or DM someone asked for, not settled yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AskedSend {
    pub person: String,
    pub kind: ReplyKind,
    pub text: String,
    pub asked_at: DateTime<Utc>,
}

/// What to record: the send, and whether it is only unconfirmed (it may be on X).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settled {
    pub key: MentionKey,
    pub asked: AskedSend,
    pub unconfirmed: bool,
}

#[derive(Debug, Default)]
pub struct AskedSends {
    by_mention: HashMap<MentionKey, Vec<AskedSend>>,
}

impl AskedSends {
    /// Someone asked for a send of `key` (called before the command goes to the outbox, so its
    /// outcome cannot come first).
    pub fn note(&mut self, key: MentionKey, asked: AskedSend) {
        let now = asked.asked_at;
        self.by_mention.retain(|_, notes| {
            notes.retain(|n| now - n.asked_at < NOTE_KEPT);
            !notes.is_empty()
        });
        if self.by_mention.len() >= MENTIONS_NOTED && !self.by_mention.contains_key(&key) {
            let oldest = self
                .by_mention
                .iter()
                .min_by_key(|(_, notes)| notes.first().map(|n| n.asked_at))
                .map(|(k, _)| *k);
            if let Some(k) = oldest {
                self.by_mention.remove(&k);
            }
        }
        let notes = self.by_mention.entry(key).or_default();
        if notes.len() >= NOTES_PER_MENTION {
            notes.remove(0);
        }
        notes.push(asked);
    }

    /// Who asked for the send of `key` with this `kind` and `text` (the newest such note).
    pub fn asked_by(&self, key: MentionKey, kind: ReplyKind, text: &str) -> Option<&str> {
        self.by_mention
            .get(&key)?
            .iter()
            .rev()
            .find(|n| n.kind == kind && n.text == text)
            .map(|n| n.person.as_str())
    }

    /// The outbox reported `event`. Returns the send to record when the event settles one that
    /// was noted. `entry_text` gives the text of the mention's outbox entry (read only for an
    /// unconfirmed send, whose event does not carry it).
    pub fn observe(
        &mut self,
        event: &OutboxEvent,
        entry_text: impl FnOnce() -> Option<String>,
    ) -> Option<Settled> {
        let (key, kind, text, unconfirmed) = match event {
            OutboxEvent::Sent {
                key,
                kind,
                response,
            } => (*key, *kind, Some(response.text.clone()), false),
            OutboxEvent::Unconfirmed { key, kind, .. } => (*key, *kind, entry_text(), true),
            // Nothing was posted: forget the notes (a new send starts over with its own).
            OutboxEvent::Failed { key, .. } | OutboxEvent::Cancelled { key, .. } => {
                self.by_mention.remove(key);
                return None;
            }
            // Not settled yet; and a refusal may be of another command than the noted send.
            OutboxEvent::Sending { .. }
            | OutboxEvent::Waiting { .. }
            | OutboxEvent::Refused { .. } => return None,
        };
        let notes = self.by_mention.remove(&key)?;
        let text = text?;
        // The newest note with that text is the send that went (one send per mention is open at
        // a time; the others were refused).
        let asked = notes
            .into_iter()
            .rev()
            .find(|n| n.kind == kind && n.text == text)?;
        Some(Settled {
            key,
            asked,
            unconfirmed,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{AccountId, Response};

    fn key(t: u64) -> MentionKey {
        MentionKey {
            account_id: AccountId::from(uuid::Uuid::from_u128(3)),
            tweet_id: t,
        }
    }

    fn t(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap()
    }

    fn ask(person: &str, text: &str) -> AskedSend {
        AskedSend {
            person: person.into(),
            kind: ReplyKind::Public,
            text: text.into(),
            asked_at: t(0),
        }
    }

    fn sent(k: MentionKey, text: &str) -> OutboxEvent {
        OutboxEvent::Sent {
            key: k,
            kind: ReplyKind::Public,
            response: Response {
                id: "1".into(),
                text: text.into(),
                sent_at: t(1),
            },
        }
    }

    #[test]
    fn a_send_is_recorded_under_who_asked_only_when_it_is_on_x() {
        let mut asked = AskedSends::default();
        asked.note(key(1), ask("ana", "hi"));
        for e in [
            OutboxEvent::Sending { key: key(1) },
            OutboxEvent::Waiting {
                key: key(1),
                kind: ReplyKind::Public,
                until: t(5),
            },
        ] {
            assert_eq!(asked.observe(&e, || None), None, "not settled: {e:?}");
        }
        let got = asked.observe(&sent(key(1), "hi"), || None).unwrap();
        assert_eq!((got.asked.person.as_str(), got.unconfirmed), ("ana", false));
        assert_eq!(asked.observe(&sent(key(1), "hi"), || None), None, "once");

        // Failed or cancelled: nothing was posted, nothing recorded.
        asked.note(key(2), ask("ana", "x"));
        asked.observe(
            &OutboxEvent::Failed {
                key: key(2),
                kind: ReplyKind::Public,
                message: "403".into(),
            },
            || None,
        );
        assert_eq!(asked.observe(&sent(key(2), "x"), || None), None);

        // Unconfirmed: recorded as such, by the entry's text.
        asked.note(key(3), ask("bo", "maybe"));
        let got = asked
            .observe(
                &OutboxEvent::Unconfirmed {
                    key: key(3),
                    kind: ReplyKind::Public,
                    message: "timeout".into(),
                },
                || Some("maybe".into()),
            )
            .unwrap();
        assert!(got.unconfirmed);
        assert_eq!(got.asked.person, "bo");
    }

    #[test]
    fn a_refused_second_send_is_not_taken_for_the_one_that_went() {
        let mut asked = AskedSends::default();
        asked.note(key(1), ask("ana", "Fixed in 2.4"));
        asked.note(key(1), ask("bo", "Looking into it"));
        // Bo's was refused (Ana's was in flight); the refusal changes nothing.
        asked.observe(
            &OutboxEvent::Refused {
                key: key(1),
                message: "on its way".into(),
            },
            || None,
        );
        let got = asked
            .observe(&sent(key(1), "Fixed in 2.4"), || None)
            .unwrap();
        assert_eq!(got.asked.person, "ana");
        // A note whose text never went out is never recorded.
        asked.note(key(4), ask("cy", "one"));
        assert_eq!(asked.observe(&sent(key(4), "two"), || None), None);
    }

    #[test]
    fn notes_are_bounded_and_old_ones_dropped() {
        let mut asked = AskedSends::default();
        for i in 0..(NOTES_PER_MENTION + 3) {
            asked.note(key(1), ask("ana", &format!("#{i}")));
        }
        assert_eq!(asked.by_mention[&key(1)].len(), NOTES_PER_MENTION);
        let mut late = ask("bo", "late");
        late.asked_at = t(0) + NOTE_KEPT + Duration::seconds(1);
        asked.note(key(2), late);
        assert!(!asked.by_mention.contains_key(&key(1)), "older than 48 h");
    }
}
