//! The outbox on a team's database (issue 16): any service takes its clients' commands, and
//! the sync leader's worker (`claims.rs`) sends.
//!
//! On sled one worker task owns the outbox: it takes every command and reports every change.
//! A team's services cannot share a task, so the work is split along the database:
//!
//! - [`carry_out`]: the service a client is attached to records the command in the database
//!   itself (a new send queued under the person who asked, a retry, a cancel, a mark-sent, an
//!   abandoned send), with the same checks as sled's worker. Only a refusal is answered here;
//!   it concerns that client alone.
//! - Every change an entry goes through notifies the database's change feed
//!   (`store/pg/changes.rs`), and each service turns it into the event its clients hear
//!   ([`event_of`]): the leader's claims and X's answers reach the service whose client asked,
//!   wherever it runs, in the order the database committed them.
//!
//! What sled's worker decides from memory is read from the database instead: "being sent right
//! now" is an entry in `sending` (claimed by the leader's worker, a row lock while it is
//! claimed), and a send abandoned while it is out is marked so in its row, for the leader's
//! worker to read when X answers with a rate limit (`attempt::cancel_if_abandoned`).

use chrono::Utc;

use super::worker::{request_problem, unconfirmed_first};
use super::{OutboxCommand, OutboxEvent, blocking_shared};
use crate::domain::{Mention, MentionKey, ReplyKind, Response};
use crate::store::{OutboxEntry, OutboxState, SharedStore, StoreError};

/// How often an abandon reads the entry again when it moved between its read and its write
/// (the leader's worker recorded X's answer meanwhile).
const ABANDON_TRIES: usize = 3;

/// Records `command` in the team's database for `person` (the name of whoever asked; `None`:
/// the owner). Returns the refusal when nothing changed; the changes themselves are reported
/// through the change feed, to every service.
pub async fn carry_out(
    store: &SharedStore,
    command: OutboxCommand,
    person: Option<String>,
) -> Option<OutboxEvent> {
    let key = command.key();
    let refused = |message: String| Some(OutboxEvent::Refused { key, message });
    let now = Utc::now();
    match command {
        OutboxCommand::Send(request) => {
            let read = blocking_shared(store, move |s| {
                Ok((s.mention(key)?, s.outbox_current(key)?))
            })
            .await;
            let (mention, current) = match read {
                Ok(read) => read,
                Err(e) => return refused(format!("not sent: could not read the outbox: {e}")),
            };
            let Some(mention) = mention else {
                return refused("not sent: that mention is no longer in the store".into());
            };
            // What is wrong whatever the database says; whether another send is open or the
            // mention was answered is the database's to decide (in the enqueue's transaction,
            // so two services asking at once cannot both pass), and its refusal says who
            // asked or replied, and when.
            if let Some(reason) =
                request_problem(&mention, &request).or_else(|| unconfirmed_first(current.as_ref()))
            {
                return refused(reason);
            }
            let send_anyway = request.send_anyway;
            let queued = blocking_shared(store, move |s| {
                s.outbox_enqueue_by(
                    key,
                    request.kind,
                    &request.text,
                    person.as_deref(),
                    send_anyway,
                    now,
                )
            })
            .await;
            match queued {
                // The leader hears of it through the change feed and claims it.
                Ok(_) => None,
                // Another service's send for this mention committed first, or it was answered
                // meanwhile: the database says who and when.
                Err(e) => refused(format!("not sent: {e}")),
            }
        }
        OutboxCommand::Retry(key) => {
            match blocking_shared(store, move |s| s.outbox_retry(key, now)).await {
                Ok(_) => None,
                Err(e) => refused(format!("nothing to send again: {e}")),
            }
        }
        OutboxCommand::MarkSent(key) => {
            match blocking_shared(store, move |s| s.outbox_mark_sent(key, now)).await {
                Ok(_) => None,
                Err(e) => refused(format!("nothing to mark as sent: {e}")),
            }
        }
        OutboxCommand::Cancel(key) => {
            let current = blocking_shared(store, move |s| s.outbox_current(key)).await;
            if let Ok(Some(entry)) = &current
                && entry.state == OutboxState::Sending
            {
                return refused("it is being sent right now; it cannot be called back".into());
            }
            match blocking_shared(store, move |s| s.outbox_cancel(key, now)).await {
                Ok(_) => None,
                Err(e) => refused(format!("nothing to cancel: {e}")),
            }
        }
        OutboxCommand::Abandon(key) => {
            abandon(store, key).await;
            None
        }
    }
}

/// [`OutboxCommand::Abandon`] on the database: a send that has not left is cancelled (the draft
/// kept); one that is out stays `sending`, marked, and the leader's worker settles it when X
/// answers (or cancels it, if X rate-limited it; if the leader dies first, the next one records
/// it unconfirmed). Anything finished stays as it is.
async fn abandon(store: &SharedStore, key: MentionKey) {
    let abandoned = blocking_shared(store, move |s| {
        for _ in 0..ABANDON_TRIES {
            let now = Utc::now();
            let Some(current) = s.outbox_current(key)? else {
                return Ok(());
            };
            let done = match current.state {
                OutboxState::Queued | OutboxState::Waiting => {
                    s.outbox_cancel(key, now).map(|_| true)
                }
                // Left `sending`, marked: the leader's worker settles it when X answers (a
                // rate limit cancels it). Recording it unconfirmed now, as sled does, would let
                // a retry queue it again while the first request may still be answered.
                OutboxState::Sending => s.outbox_abandon_sending(key, current.seq),
                // Settled, or already the user's to resolve.
                _ => return Ok(()),
            };
            match done {
                Ok(true) => return Ok(()),
                // It left `sending` before the mark: read it again.
                Ok(false) => continue,
                // Moved between the read and the write (the leader recorded X's answer): read
                // it again.
                Err(StoreError::Invalid(_)) => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    })
    .await;
    if let Err(e) = abandoned {
        tracing::warn!("could not abandon a send: {e}");
    }
}

/// The event a client would have heard from sled's worker for `entry` as it is now (`mention`:
/// its mention as stored, for the answer recorded on it). `None` for a state no event reports
/// (queued: the send is on its way to the worker).
pub fn event_of(entry: &OutboxEntry, mention: Option<&Mention>) -> Option<OutboxEvent> {
    let (key, kind) = (entry.key, entry.kind);
    let message = || entry.last_error.clone().unwrap_or_default();
    Some(match entry.state {
        OutboxState::Queued => return None,
        OutboxState::Sending => OutboxEvent::Sending { key },
        OutboxState::Waiting => OutboxEvent::Waiting {
            key,
            kind,
            until: entry.not_before.unwrap_or(entry.updated_at),
        },
        OutboxState::Sent => OutboxEvent::Sent {
            key,
            kind,
            response: answer_of(entry, mention),
        },
        OutboxState::Failed => OutboxEvent::Failed {
            key,
            kind,
            message: message(),
        },
        OutboxState::Unconfirmed => OutboxEvent::Unconfirmed {
            key,
            kind,
            message: message(),
        },
        OutboxState::Cancelled => OutboxEvent::Cancelled { key, kind },
    })
}

/// The answer a sent entry recorded on its mention; from the entry when the mention is gone
/// (its account removed) or holds a later answer.
fn answer_of(entry: &OutboxEntry, mention: Option<&Mention>) -> Response {
    let recorded = mention.and_then(|m| match entry.kind {
        ReplyKind::Public => m.public_response.clone(),
        ReplyKind::Dm => m.dm_response.clone(),
    });
    match recorded {
        Some(r) if r.text == entry.text => r,
        _ => Response {
            id: entry.response_id.clone().unwrap_or_default(),
            text: entry.text.clone(),
            sent_at: entry.last_attempt_at.unwrap_or(entry.updated_at),
        },
    }
}

/// What a change of an entry was: its state, attempts and time (two notifications read after
/// the same commit see the same).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seen {
    pub state: OutboxState,
    pub attempts: u32,
    pub updated_at: chrono::DateTime<Utc>,
}

/// Reads the entry a change notification named, and its event (see [`event_of`]), with what
/// was seen of it, so that a caller can tell repeats apart.
pub async fn read_event(
    store: &SharedStore,
    key: MentionKey,
    seq: u64,
) -> Result<Option<(Seen, OutboxEvent)>, String> {
    let read = blocking_shared(store, move |s| {
        let entry = s.outbox_entry(key, seq)?;
        let mention = match &entry {
            Some(e) if e.state == OutboxState::Sent => s.mention(key)?,
            _ => None,
        };
        Ok::<_, StoreError>((entry, mention))
    })
    .await?;
    Ok(match read {
        (Some(entry), mention) => event_of(&entry, mention.as_ref()).map(|event| {
            let seen = Seen {
                state: entry.state,
                attempts: entry.attempts,
                updated_at: entry.updated_at,
            };
            (seen, event)
        }),
        (None, _) => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(state: OutboxState) -> OutboxEntry {
        let at = chrono::DateTime::<Utc>::from_timestamp(1_700_000_000, 0).unwrap();
        OutboxEntry {
            seq: 7,
            key: MentionKey {
                account_id: uuid::Uuid::from_u128(1),
                tweet_id: 1900,
            },
            kind: ReplyKind::Public,
            text: "on it".into(),
            state,
            attempts: 1,
            may_have_been_sent: false,
            not_before: None,
            last_error: Some("why".into()),
            response_id: Some("1700".into()),
            last_attempt_at: Some(at),
            created_at: at,
            updated_at: at,
        }
    }

    #[test]
    fn every_state_but_queued_is_the_event_sleds_worker_reports() {
        assert_eq!(event_of(&entry(OutboxState::Queued), None), None);
        let key = entry(OutboxState::Queued).key;
        assert_eq!(
            event_of(&entry(OutboxState::Sending), None),
            Some(OutboxEvent::Sending { key })
        );
        match event_of(&entry(OutboxState::Failed), None) {
            Some(OutboxEvent::Failed { message, .. }) => assert_eq!(message, "why"),
            other => panic!("{other:?}"),
        }
        match event_of(&entry(OutboxState::Unconfirmed), None) {
            Some(OutboxEvent::Unconfirmed { message, .. }) => assert_eq!(message, "why"),
            other => panic!("{other:?}"),
        }
        let mut waiting = entry(OutboxState::Waiting);
        let until = waiting.updated_at + chrono::Duration::minutes(5);
        waiting.not_before = Some(until);
        assert_eq!(
            event_of(&waiting, None),
            Some(OutboxEvent::Waiting {
                key,
                kind: ReplyKind::Public,
                until
            })
        );
        assert_eq!(
            event_of(&entry(OutboxState::Cancelled), None),
            Some(OutboxEvent::Cancelled {
                key,
                kind: ReplyKind::Public
            })
        );
    }

    #[test]
    fn a_sent_event_carries_the_answer_recorded_on_the_mention_or_the_entrys_own() {
        let sent = entry(OutboxState::Sent);
        // No mention (its account removed): the entry's id and text.
        match event_of(&sent, None) {
            Some(OutboxEvent::Sent { response, .. }) => {
                assert_eq!(
                    (response.id.as_str(), response.text.as_str()),
                    ("1700", "on it")
                )
            }
            other => panic!("{other:?}"),
        }
    }
}
