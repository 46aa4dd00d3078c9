//! The outbox and drafts on PostgreSQL ([`OutboxBackend`]): the same states and rules as sled's
//! (`store/outbox.rs`), kept between processes.
//!
//! - Every transition is one transaction that locks the entry's row and the mention's row
//!   (`FOR UPDATE`), writes the entry, the mention and the draft, and commits: the same atomic
//!   step as sled's one batch.
//! - A claim ([`OutboxBackend::outbox_claim_next`]) selects the oldest ready entry `FOR UPDATE
//!   SKIP LOCKED` and commits it `sending` before returning, so two workers (a leader and one
//!   that has not yet noticed it lost, or two by mistake) never get the same entry, and neither
//!   waits on the other.
//! - One current entry per mention is a unique index (`outbox_one_current`, schema version 4):
//!   two services enqueueing a reply to one mention at the same moment cannot both succeed, and
//!   the one that loses is told who asked and when.
//!
//! - A send reaching `sent` charges the cost meter in the same transaction (as sled's
//!   `stage_send_charge`), so a team's spend counts every reply once, whichever leader sent it.

use chrono::{DateTime, Utc};
use postgres::{Row, Transaction};

use super::changes::{Change, notify};
use super::{PgStore, column, tweet_column, unsigned};
use crate::domain::{Mention, MentionKey, MentionStatus, ReplyKind, Response};
use crate::store::backend::OutboxBackend;
use crate::store::outbox::{
    DraftChange, already_answered, entry_what, list_states, mark_sent, plain_name, set_answered,
    set_error, set_processing,
};
use crate::store::{Draft, OutboxEntry, OutboxState, Result, StoreError, codec};

fn state_from(text: &str) -> Option<OutboxState> {
    [
        OutboxState::Queued,
        OutboxState::Waiting,
        OutboxState::Sending,
        OutboxState::Sent,
        OutboxState::Failed,
        OutboxState::Unconfirmed,
        OutboxState::Cancelled,
    ]
    .into_iter()
    .find(|s| s.as_str() == text)
}

fn outbox_change(entry: &OutboxEntry) -> Change {
    Change::Outbox {
        account: entry.key.account_id,
        tweet: entry.key.tweet_id,
        seq: entry.seq,
    }
}

/// An entry's seq as its column holds it.
fn row_seq(entry: &OutboxEntry) -> Result<i64> {
    i64::try_from(entry.seq).map_err(|_| StoreError::NotFound(entry_what(entry.key, entry.seq)))
}

impl PgStore {
    /// The mention's tweet id as the column holds it, or a refusal for one no mention can have.
    fn outbox_tweet(&self, key: MentionKey) -> Result<i64> {
        tweet_column(key.tweet_id).ok_or_else(|| {
            StoreError::NotFound(format!("mention {} (not a tweet id X uses)", key.tweet_id))
        })
    }

    fn decode_entry(&self, row: &Row) -> Result<OutboxEntry> {
        let seq: i64 = column(row, "seq", &self.target)?;
        let seq = unsigned(seq, "outbox seq", &self.target)?;
        let bytes: Vec<u8> = column(row, "record", &self.target)?;
        let entry: OutboxEntry =
            codec::decode(&bytes, || format!("outbox entry {seq} in {}", self.target))?;
        // The state column is what claims select on; the record must agree with it.
        let state: String = column(row, "state", &self.target)?;
        if state_from(&state) != Some(entry.state) || entry.seq != seq {
            return Err(StoreError::Decode {
                what: format!("outbox entry {seq} in {}", self.target),
                detail: format!("its state column says {state}, its record {}", entry.state),
            });
        }
        Ok(entry)
    }

    /// The mention's current entry, locked for this transaction.
    fn lock_current(
        &self,
        tx: &mut Transaction<'_>,
        key: MentionKey,
    ) -> Result<Option<OutboxEntry>> {
        let tweet = self.outbox_tweet(key)?;
        let row = tx
            .query_opt(
                "SELECT seq, state, record FROM outbox
                 WHERE account_id = $1 AND tweet_id = $2 AND is_current FOR UPDATE",
                &[&key.account_id, &tweet],
            )
            .map_err(|e| self.err(e))?;
        row.map(|row| self.decode_entry(&row)).transpose()
    }

    /// The entry `seq` of `key`, locked, which must be in one of `states`.
    fn lock_entry_in(
        &self,
        tx: &mut Transaction<'_>,
        key: MentionKey,
        seq: u64,
        states: &[OutboxState],
    ) -> Result<OutboxEntry> {
        let tweet = self.outbox_tweet(key)?;
        let seq_col = i64::try_from(seq).map_err(|_| StoreError::NotFound(entry_what(key, seq)))?;
        let row = tx
            .query_opt(
                "SELECT seq, state, record FROM outbox
                 WHERE seq = $1 AND account_id = $2 AND tweet_id = $3 FOR UPDATE",
                &[&seq_col, &key.account_id, &tweet],
            )
            .map_err(|e| self.err(e))?
            .ok_or_else(|| StoreError::NotFound(entry_what(key, seq)))?;
        let entry = self.decode_entry(&row)?;
        if states.contains(&entry.state) {
            Ok(entry)
        } else {
            Err(StoreError::Invalid(format!(
                "{} is {}, not {}",
                entry_what(key, seq),
                entry.state,
                list_states(states)
            )))
        }
    }

    /// The mention's current entry, locked, which must be in one of `states`.
    fn lock_current_in(
        &self,
        tx: &mut Transaction<'_>,
        key: MentionKey,
        states: &[OutboxState],
    ) -> Result<OutboxEntry> {
        match self.lock_current(tx, key)? {
            Some(entry) if states.contains(&entry.state) => Ok(entry),
            Some(entry) => Err(StoreError::Invalid(format!(
                "the reply to mention {} is {}, not {}",
                key.tweet_id,
                entry.state,
                list_states(states)
            ))),
            None => Err(StoreError::NotFound(format!(
                "a reply in the outbox for mention {}",
                key.tweet_id
            ))),
        }
    }

    /// Writes `entry` (its row already exists), the mention as `edit` changes it, and the draft,
    /// inside `tx`. A mention no longer stored (its account was removed) is left alone.
    fn write_transition(
        &self,
        tx: &mut Transaction<'_>,
        entry: &OutboxEntry,
        edit: impl FnOnce(&mut Mention),
        draft: DraftChange,
    ) -> Result<()> {
        let key = entry.key;
        let tweet = self.outbox_tweet(key)?;
        let seq = i64::try_from(entry.seq)
            .map_err(|_| StoreError::NotFound(entry_what(key, entry.seq)))?;
        tx.execute(
            "UPDATE outbox SET state = $2, is_current = $3, not_before = $4, record = $5
             WHERE seq = $1",
            &[
                &seq,
                &entry.state.as_str(),
                &!entry.state.is_finished(),
                &entry.not_before,
                &codec::encode(entry, "outbox entry")?,
            ],
        )
        .map_err(|e| self.err(e))?;
        self.edit_mention(tx, key, tweet, edit)?;
        self.change_draft(tx, entry, tweet, draft)?;
        notify(tx, &outbox_change(entry), &self.target)
    }

    fn edit_mention(
        &self,
        tx: &mut Transaction<'_>,
        key: MentionKey,
        tweet: i64,
        edit: impl FnOnce(&mut Mention),
    ) -> Result<()> {
        let Some(row) = tx
            .query_opt(
                "SELECT record FROM mentions WHERE account_id = $1 AND tweet_id = $2 FOR UPDATE",
                &[&key.account_id, &tweet],
            )
            .map_err(|e| self.err(e))?
        else {
            return Ok(());
        };
        let old = self.decode_mention(&row, key)?;
        let mut m = old.clone();
        edit(&mut m);
        if m != old {
            tx.execute(
                "UPDATE mentions SET status = $3, record = $4 WHERE account_id = $1 AND tweet_id = $2",
                &[
                    &key.account_id,
                    &tweet,
                    &(m.status.code() as i16),
                    &codec::encode(&m, "mention")?,
                ],
            )
            .map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    fn change_draft(
        &self,
        tx: &mut Transaction<'_>,
        entry: &OutboxEntry,
        tweet: i64,
        draft: DraftChange,
    ) -> Result<()> {
        let account = entry.key.account_id;
        match draft {
            DraftChange::Keep => {}
            DraftChange::Save => {
                let draft = Draft {
                    kind: entry.kind,
                    text: entry.text.clone(),
                    updated_at: entry.updated_at,
                };
                tx.execute(
                    "INSERT INTO drafts (account_id, tweet_id, record) VALUES ($1, $2, $3)
                     ON CONFLICT (account_id, tweet_id) DO UPDATE SET record = EXCLUDED.record",
                    &[&account, &tweet, &codec::encode(&draft, "draft")?],
                )
                .map_err(|e| self.err(e))?;
            }
            DraftChange::Delete => {
                tx.execute(
                    "DELETE FROM drafts WHERE account_id = $1 AND tweet_id = $2",
                    &[&account, &tweet],
                )
                .map_err(|e| self.err(e))?;
            }
        }
        Ok(())
    }

    /// One transition: locks the entry `seq` (in one of `states`), lets `change` edit it, and
    /// commits it with the mention and draft changes.
    fn transition(
        &self,
        key: MentionKey,
        seq: u64,
        states: &[OutboxState],
        change: impl FnOnce(&mut OutboxEntry),
        edit: impl FnOnce(&mut Mention),
        draft: DraftChange,
    ) -> Result<OutboxEntry> {
        let mut client = self.lock();
        let mut tx = client.transaction().map_err(|e| self.err(e))?;
        let mut entry = self.lock_entry_in(&mut tx, key, seq, states)?;
        change(&mut entry);
        self.write_transition(&mut tx, &entry, edit, draft)?;
        tx.commit().map_err(|e| self.err(e))?;
        Ok(entry)
    }

    /// [`PgStore::transition`] on the mention's current entry.
    fn transition_current(
        &self,
        key: MentionKey,
        states: &[OutboxState],
        change: impl FnOnce(&mut OutboxEntry),
        edit: impl FnOnce(&mut Mention),
        draft: DraftChange,
    ) -> Result<OutboxEntry> {
        let mut client = self.lock();
        let mut tx = client.transaction().map_err(|e| self.err(e))?;
        let mut entry = self.lock_current_in(&mut tx, key, states)?;
        change(&mut entry);
        self.write_transition(&mut tx, &entry, edit, draft)?;
        tx.commit().map_err(|e| self.err(e))?;
        Ok(entry)
    }

    /// Why `key` may not get a new send now: its current entry is unresolved, or (unless
    /// `send_anyway`) it already has a sent answer of `kind`. Read inside `tx`.
    fn refusal(
        &self,
        tx: &mut Transaction<'_>,
        key: MentionKey,
        kind: ReplyKind,
        send_anyway: bool,
    ) -> Result<Option<String>> {
        let tweet = self.outbox_tweet(key)?;
        let current = tx
            .query_opt(
                "SELECT seq, state, record, person FROM outbox
                 WHERE account_id = $1 AND tweet_id = $2 AND is_current",
                &[&key.account_id, &tweet],
            )
            .map_err(|e| self.err(e))?;
        if let Some(row) = current {
            let entry = self.decode_entry(&row)?;
            if entry.state.blocks_new_send() {
                let person: Option<String> = column(&row, "person", &self.target)?;
                let who = person
                    .map(|p| plain_name(&p))
                    .unwrap_or_else(|| "the owner".to_string());
                return Ok(Some(format!(
                    "{who} asked for a reply to mention {} at {} and it is {}; resolve that one first",
                    key.tweet_id,
                    entry.created_at.format("%Y-%m-%d %H:%M:%S UTC"),
                    entry.state
                )));
            }
        }
        if send_anyway {
            return Ok(None);
        }
        let Some(row) = tx
            .query_opt(
                "SELECT record FROM mentions WHERE account_id = $1 AND tweet_id = $2",
                &[&key.account_id, &tweet],
            )
            .map_err(|e| self.err(e))?
        else {
            return Ok(None);
        };
        let m = self.decode_mention(&row, key)?;
        let state = OutboxState::Sent.as_str();
        let sender = tx
            .query_opt(
                "SELECT person FROM outbox WHERE account_id = $1 AND tweet_id = $2 AND state = $3
                 ORDER BY seq DESC LIMIT 1",
                &[&key.account_id, &tweet, &state],
            )
            .map_err(|e| self.err(e))?;
        let person: Option<String> = match sender {
            Some(row) => column(&row, "person", &self.target)?,
            None => None,
        };
        Ok(already_answered(&m, kind, person.as_deref()))
    }

    fn record_sent(
        &self,
        tx: &mut Transaction<'_>,
        mut entry: OutboxEntry,
        response_id: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<(OutboxEntry, Response)> {
        let response = mark_sent(&mut entry, response_id, now);
        self.charge_send(tx, &entry)?;
        let (kind, recorded) = (entry.kind, response.clone());
        self.write_transition(
            tx,
            &entry,
            move |m| set_answered(m, kind, recorded, now),
            DraftChange::Delete,
        )?;
        Ok((entry, response))
    }
}

impl PgStore {
    /// The cost meter's hook, as sled's `stage_send_charge`: the transition of an entry to
    /// `sent` charges its reply or DM inside the same transaction (X bills the request that
    /// created it; a failed one costs nothing). The entry's row is locked and not yet `sent`
    /// (every caller locks it in a state that is not), so it is charged once.
    fn charge_send(&self, tx: &mut Transaction<'_>, entry: &OutboxEntry) -> Result<()> {
        let key = entry.key;
        let tweet = self.outbox_tweet(key)?;
        let mention = tx
            .query_opt(
                "SELECT record FROM mentions WHERE account_id = $1 AND tweet_id = $2",
                &[&key.account_id, &tweet],
            )
            .map_err(|e| self.err(e))?
            .map(|row| self.decode_mention(&row, key))
            .transpose()?;
        let kind = crate::store::costs::sent_entry_kind(entry, mention.as_ref());
        let price = self.pricing().prices.of(kind);
        self.add_use(
            tx,
            crate::costs::billing_day(entry.updated_at),
            key.account_id,
            kind,
            crate::costs::Use {
                count: 1,
                micros: price,
            },
        )
    }
}

impl OutboxBackend for PgStore {
    fn outbox_enqueue_by(
        &self,
        key: MentionKey,
        kind: ReplyKind,
        text: &str,
        person: Option<&str>,
        send_anyway: bool,
        now: DateTime<Utc>,
    ) -> Result<OutboxEntry> {
        let tweet = self.outbox_tweet(key)?;
        let mut client = self.lock();
        let mut tx = client.transaction().map_err(|e| self.err(e))?;
        // Locked in the transitions' order (the current entry, then the mention) before deciding:
        // a retry, a mark-sent or another enqueue for this mention committing meanwhile waits,
        // or is waited for, and `refusal` then reads what it did.
        self.lock_current(&mut tx, key)?;
        tx.execute(
            "SELECT 1 FROM mentions WHERE account_id = $1 AND tweet_id = $2 FOR UPDATE",
            &[&key.account_id, &tweet],
        )
        .map_err(|e| self.err(e))?;
        if let Some(why) = self.refusal(&mut tx, key, kind, send_anyway)? {
            return Err(StoreError::Conflict(why));
        }
        let row = tx
            .query_one("SELECT nextval('outbox_seq')", &[])
            .map_err(|e| self.err(e))?;
        let seq: i64 = column(&row, 0, &self.target)?;
        let entry = OutboxEntry {
            seq: unsigned(seq, "outbox seq", &self.target)?,
            key,
            kind,
            text: text.to_string(),
            state: OutboxState::Queued,
            attempts: 0,
            may_have_been_sent: false,
            not_before: None,
            last_error: None,
            response_id: None,
            last_attempt_at: None,
            created_at: now,
            updated_at: now,
        };
        // A failed entry stops being current: the new one replaces it. Only a failed one: an
        // unresolved one another service committed since `refusal` read (READ COMMITTED: this
        // statement sees it) must stay current, so that this insert fails on the index.
        tx.execute(
            "UPDATE outbox SET is_current = false
             WHERE account_id = $1 AND tweet_id = $2 AND is_current AND state = 'failed'",
            &[&key.account_id, &tweet],
        )
        .map_err(|e| self.err(e))?;
        let inserted = tx.execute(
            "INSERT INTO outbox (seq, account_id, tweet_id, state, is_current, not_before, person, record)
             VALUES ($1, $2, $3, $4, true, NULL, $5, $6)",
            &[
                &seq,
                &key.account_id,
                &tweet,
                &entry.state.as_str(),
                &person,
                &codec::encode(&entry, "outbox entry")?,
            ],
        );
        if let Err(e) = inserted {
            let lost_the_race = e.code() == Some(&postgres::error::SqlState::UNIQUE_VIOLATION);
            drop(tx);
            if lost_the_race {
                // Another service enqueued for this mention at the same moment and committed
                // first: say who, from what it committed.
                let mut tx = client.transaction().map_err(|e| self.err(e))?;
                let why = self.refusal(&mut tx, key, kind, false)?.unwrap_or_else(|| {
                    format!(
                        "someone else asked for a reply to mention {} at the same moment",
                        key.tweet_id
                    )
                });
                return Err(StoreError::Conflict(why));
            }
            return Err(self.err(e));
        }
        self.edit_mention(&mut tx, key, tweet, |m| set_processing(m, now))?;
        self.change_draft(&mut tx, &entry, tweet, DraftChange::Save)?;
        notify(&mut tx, &outbox_change(&entry), &self.target)?;
        tx.commit().map_err(|e| self.err(e))?;
        Ok(entry)
    }

    fn outbox_claim_next(&self, now: DateTime<Utc>) -> Result<Option<OutboxEntry>> {
        let mut client = self.lock();
        let mut tx = client.transaction().map_err(|e| self.err(e))?;
        let row = tx
            .query_opt(
                "SELECT seq, state, record FROM outbox
                 WHERE state = 'queued' OR (state = 'waiting' AND (not_before IS NULL OR not_before <= $1))
                 ORDER BY seq LIMIT 1
                 FOR UPDATE SKIP LOCKED",
                &[&now],
            )
            .map_err(|e| self.err(e))?;
        let Some(row) = row else {
            return Ok(None);
        };
        let mut entry = self.decode_entry(&row)?;
        entry.state = OutboxState::Sending;
        entry.attempts = entry.attempts.saturating_add(1);
        entry.not_before = None;
        entry.last_attempt_at = Some(now);
        entry.updated_at = now;
        self.write_transition(
            &mut tx,
            &entry,
            |m| set_processing(m, now),
            DraftChange::Keep,
        )?;
        tx.execute(
            "UPDATE outbox SET claimed_by = pg_backend_pid(), abandoned = false WHERE seq = $1",
            &[&row_seq(&entry)?],
        )
        .map_err(|e| self.err(e))?;
        // Committed (and so durable, with the server's synchronous_commit) before the request
        // may leave: a worker that dies from here on leaves it `sending`, never sent again.
        tx.commit().map_err(|e| self.err(e))?;
        Ok(Some(entry))
    }

    fn outbox_sent(
        &self,
        key: MentionKey,
        seq: u64,
        response_id: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<Response> {
        let mut client = self.lock();
        let mut tx = client.transaction().map_err(|e| self.err(e))?;
        let entry = self.lock_entry_in(
            &mut tx,
            key,
            seq,
            &[
                OutboxState::Sending,
                OutboxState::Unconfirmed,
                OutboxState::Failed,
            ],
        )?;
        let (_, response) = self.record_sent(&mut tx, entry, response_id, now)?;
        tx.commit().map_err(|e| self.err(e))?;
        Ok(response)
    }

    fn outbox_failed(
        &self,
        key: MentionKey,
        seq: u64,
        message: &str,
        now: DateTime<Utc>,
    ) -> Result<OutboxEntry> {
        self.transition(
            key,
            seq,
            &[
                OutboxState::Sending,
                OutboxState::Queued,
                OutboxState::Unconfirmed,
            ],
            |e| {
                e.state = OutboxState::Failed;
                e.last_error = Some(message.to_string());
                e.updated_at = now;
            },
            |m| set_error(m, message, now),
            DraftChange::Keep,
        )
    }

    fn outbox_unconfirmed(
        &self,
        key: MentionKey,
        seq: u64,
        message: &str,
        now: DateTime<Utc>,
    ) -> Result<OutboxEntry> {
        self.transition(
            key,
            seq,
            &[OutboxState::Sending, OutboxState::Unconfirmed],
            |e| {
                e.state = OutboxState::Unconfirmed;
                e.may_have_been_sent = true;
                e.last_error = Some(message.to_string());
                e.updated_at = now;
            },
            |m| set_error(m, message, now),
            DraftChange::Keep,
        )
    }

    fn outbox_waiting(
        &self,
        key: MentionKey,
        seq: u64,
        until: DateTime<Utc>,
        message: &str,
        now: DateTime<Utc>,
    ) -> Result<OutboxEntry> {
        self.transition(
            key,
            seq,
            &[OutboxState::Sending, OutboxState::Unconfirmed],
            |e| {
                e.state = OutboxState::Waiting;
                e.not_before = Some(until);
                e.last_error = Some(message.to_string());
                e.updated_at = now;
            },
            |m| set_processing(m, now),
            DraftChange::Keep,
        )
    }

    fn outbox_retry(&self, key: MentionKey, now: DateTime<Utc>) -> Result<OutboxEntry> {
        self.transition_current(
            key,
            &[OutboxState::Unconfirmed, OutboxState::Failed],
            |e| {
                e.state = OutboxState::Queued;
                e.not_before = None;
                e.updated_at = now;
            },
            |m| set_processing(m, now),
            DraftChange::Save,
        )
    }

    fn outbox_cancel(&self, key: MentionKey, now: DateTime<Utc>) -> Result<OutboxEntry> {
        self.transition_current(
            key,
            &[
                OutboxState::Queued,
                OutboxState::Waiting,
                OutboxState::Unconfirmed,
                OutboxState::Failed,
            ],
            |e| {
                e.state = OutboxState::Cancelled;
                e.not_before = None;
                e.updated_at = now;
            },
            |m| {
                if matches!(m.status, MentionStatus::Processing | MentionStatus::Error) {
                    m.status = MentionStatus::Pending;
                    m.error_message = None;
                    m.updated_at = now;
                }
            },
            DraftChange::Save,
        )
    }

    fn outbox_mark_sent(
        &self,
        key: MentionKey,
        now: DateTime<Utc>,
    ) -> Result<(OutboxEntry, Response)> {
        let mut client = self.lock();
        let mut tx = client.transaction().map_err(|e| self.err(e))?;
        let entry = self.lock_current_in(
            &mut tx,
            key,
            &[OutboxState::Unconfirmed, OutboxState::Failed],
        )?;
        let sent = self.record_sent(&mut tx, entry, None, now)?;
        tx.commit().map_err(|e| self.err(e))?;
        Ok(sent)
    }

    fn outbox_current(&self, key: MentionKey) -> Result<Option<OutboxEntry>> {
        let tweet = self.outbox_tweet(key)?;
        let row = self
            .lock()
            .query_opt(
                "SELECT seq, state, record FROM outbox
                 WHERE account_id = $1 AND tweet_id = $2 AND is_current",
                &[&key.account_id, &tweet],
            )
            .map_err(|e| self.err(e))?;
        row.map(|row| self.decode_entry(&row)).transpose()
    }

    fn outbox_entry(&self, key: MentionKey, seq: u64) -> Result<Option<OutboxEntry>> {
        let tweet = self.outbox_tweet(key)?;
        let Ok(seq) = i64::try_from(seq) else {
            return Ok(None);
        };
        let row = self
            .lock()
            .query_opt(
                "SELECT seq, state, record FROM outbox
                 WHERE seq = $1 AND account_id = $2 AND tweet_id = $3",
                &[&seq, &key.account_id, &tweet],
            )
            .map_err(|e| self.err(e))?;
        row.map(|row| self.decode_entry(&row)).transpose()
    }

    fn outbox_abandon_sending(&self, key: MentionKey, seq: u64) -> Result<bool> {
        let tweet = self.outbox_tweet(key)?;
        let seq = i64::try_from(seq).map_err(|_| StoreError::NotFound(entry_what(key, 0)))?;
        let marked = self
            .lock()
            .execute(
                "UPDATE outbox SET abandoned = true
                 WHERE seq = $1 AND account_id = $2 AND tweet_id = $3 AND state = 'sending'",
                &[&seq, &key.account_id, &tweet],
            )
            .map_err(|e| self.err(e))?;
        Ok(marked == 1)
    }

    fn outbox_was_abandoned(&self, key: MentionKey, seq: u64) -> Result<bool> {
        let tweet = self.outbox_tweet(key)?;
        let Ok(seq) = i64::try_from(seq) else {
            return Ok(false);
        };
        let row = self
            .lock()
            .query_opt(
                "SELECT abandoned FROM outbox WHERE seq = $1 AND account_id = $2 AND tweet_id = $3",
                &[&seq, &key.account_id, &tweet],
            )
            .map_err(|e| self.err(e))?;
        match row {
            Some(row) => column(&row, "abandoned", &self.target),
            None => Ok(false),
        }
    }

    fn outbox_history(&self, key: MentionKey) -> Result<Vec<OutboxEntry>> {
        let tweet = self.outbox_tweet(key)?;
        let rows = self
            .lock()
            .query(
                "SELECT seq, state, record FROM outbox
                 WHERE account_id = $1 AND tweet_id = $2 ORDER BY seq",
                &[&key.account_id, &tweet],
            )
            .map_err(|e| self.err(e))?;
        rows.iter().map(|row| self.decode_entry(row)).collect()
    }

    fn outbox_open(&self) -> Result<Vec<OutboxEntry>> {
        let rows = self
            .lock()
            .query(
                "SELECT seq, state, record FROM outbox WHERE is_current ORDER BY seq",
                &[],
            )
            .map_err(|e| self.err(e))?;
        rows.iter().map(|row| self.decode_entry(row)).collect()
    }

    fn outbox_recover(
        &self,
        now: DateTime<Utc>,
        unconfirmed_message: &str,
        _not_sent_message: &str,
    ) -> Result<Vec<OutboxEntry>> {
        // Only sends whose claiming session is gone: a worker still connected may yet hear X's
        // answer (a leader that lost the lock but not its store connection). Queued and waiting
        // entries are left for the new leader to send: on a shared database the person who
        // asked is on a service that is still running, unlike a sled process that ended.
        let rows = self
            .lock()
            .query(
                "SELECT seq, state, record FROM outbox o
                 WHERE is_current AND state = 'sending'
                   AND (claimed_by IS NULL OR NOT EXISTS
                        (SELECT 1 FROM pg_stat_activity a WHERE a.pid = o.claimed_by))
                 ORDER BY seq",
                &[],
            )
            .map_err(|e| self.err(e))?;
        let orphans = rows
            .iter()
            .map(|row| self.decode_entry(row))
            .collect::<Result<Vec<_>>>()?;
        // Bounded by what was read: each entry is changed once (it leaves `sending`).
        let mut changed = Vec::new();
        for entry in orphans {
            let updated = self.outbox_unconfirmed(entry.key, entry.seq, unconfirmed_message, now);
            match updated {
                Ok(e) => changed.push(e),
                // Another worker moved it in between (it was read before being locked): what
                // it did stands.
                Err(StoreError::Invalid(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(changed)
    }

    fn draft(&self, key: MentionKey) -> Result<Option<Draft>> {
        let tweet = self.outbox_tweet(key)?;
        let row = self
            .lock()
            .query_opt(
                "SELECT record FROM drafts WHERE account_id = $1 AND tweet_id = $2",
                &[&key.account_id, &tweet],
            )
            .map_err(|e| self.err(e))?;
        row.map(|row| {
            let bytes: Vec<u8> = column(&row, "record", &self.target)?;
            codec::decode(&bytes, || {
                format!("draft for mention {} in {}", key.tweet_id, self.target)
            })
        })
        .transpose()
    }
}
