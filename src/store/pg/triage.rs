//! What a team's dashboards share on PostgreSQL (schema version 8): triage with its undo log,
//! assignments, drafts and the per-day counts of the stats view. The rules are sled's
//! (`store/undo.rs`, `store/team.rs`); what PostgreSQL adds is that they hold between services:
//!
//! - A triage chunk is one transaction that locks its mentions' rows (`FOR UPDATE`, in key
//!   order, so two people's bulk actions over the same rows wait for each other rather than
//!   deadlock), changes them, and writes the chunk's previous states to the undo log.
//! - The undo log is per person: `u` undoes the caller's own newest action, and each person
//!   keeps [`UNDO_DEPTH`] actions (on sled the depth is the store's, one owner).
//! - An assignment commits with its audit entry, and every change notifies the change feed, so
//!   every service's dashboards hear who took what.

use chrono::{DateTime, NaiveDate, Utc};
use postgres::Transaction;

use super::changes::{Change, notify};
use super::{PgStore, column, tweet_column};
use crate::domain::team::OWNER_NAME;
use crate::domain::{AccountId, AuditAction, AuditEntry, Mention, MentionKey, MentionStatus};
use crate::store::team::{AssignRefusal, Assignment};
use crate::store::undo::Before;
use crate::store::{Draft, Result, StoreError, UNDO_DEPTH, UndoAction, UndoStep, codec};

/// An action id as its column holds it.
fn action_column(id: u64) -> Result<i64> {
    i64::try_from(id).map_err(|_| StoreError::Invalid(format!("undo action id {id} is too large")))
}

/// X's epoch for snowflake ids, in milliseconds since 1970.
const SNOWFLAKE_EPOCH_MS: i64 = 1_288_834_974_657;

impl PgStore {
    /// The mention `key`, locked for this transaction.
    fn lock_mention(&self, tx: &mut Transaction<'_>, key: MentionKey) -> Result<Option<Mention>> {
        let Some(tweet) = tweet_column(key.tweet_id) else {
            return Ok(None);
        };
        let row = tx
            .query_opt(
                "SELECT record FROM mentions WHERE account_id = $1 AND tweet_id = $2 FOR UPDATE",
                &[&key.account_id, &tweet],
            )
            .map_err(|e| self.err(e))?;
        row.map(|row| self.decode_mention(&row, key)).transpose()
    }

    /// Writes a changed mention (its row locked) and tells the change feed.
    fn write_mention(&self, tx: &mut Transaction<'_>, m: &Mention) -> Result<()> {
        let key = m.key();
        let tweet = tweet_column(key.tweet_id)
            .ok_or_else(|| StoreError::NotFound(format!("mention {}", key.tweet_id)))?;
        tx.execute(
            "UPDATE mentions SET status = $3, record = $4 WHERE account_id = $1 AND tweet_id = $2",
            &[
                &key.account_id,
                &tweet,
                &(m.status.code() as i16),
                &codec::encode(m, "mention")?,
            ],
        )
        .map_err(|e| self.err(e))?;
        let change = Change::Mention {
            account: key.account_id,
            tweet: key.tweet_id,
        };
        notify(tx, &change, &self.target)
    }

    fn undo_header(
        &self,
        tx: &mut Transaction<'_>,
        person: &str,
        action: u64,
    ) -> Result<Option<UndoAction>> {
        let row = tx
            .query_opt(
                "SELECT record FROM undo_actions WHERE person = $1 AND id = $2 FOR UPDATE",
                &[&person, &action_column(action)?],
            )
            .map_err(|e| self.err(e))?;
        row.map(|row| {
            let bytes: Vec<u8> = column(&row, "record", &self.target)?;
            codec::decode(&bytes, || {
                format!("undo record {action} in {}", self.target)
            })
        })
        .transpose()
    }

    fn write_undo_header(&self, tx: &mut Transaction<'_>, header: &UndoAction) -> Result<()> {
        tx.execute(
            "INSERT INTO undo_actions (person, id, record) VALUES ($1, $2, $3)
             ON CONFLICT (person, id) DO UPDATE SET record = EXCLUDED.record",
            &[
                &header.person(),
                &action_column(header.id)?,
                &codec::encode(header, "undo action")?,
            ],
        )
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// [`Store::triage_as`](crate::store::Store::triage_as) on the team's database.
    pub fn triage_as(
        &self,
        person: &str,
        action: u64,
        keys: &[MentionKey],
        status: MentionStatus,
        now: DateTime<Utc>,
    ) -> Result<Vec<Mention>> {
        let mut ordered = keys.to_vec();
        ordered.sort_by_key(|k| (k.account_id, k.tweet_id));
        ordered.dedup();
        let mut client = self.lock();
        let mut tx = client.transaction().map_err(|e| self.err(e))?;
        let mut before = Vec::new();
        let mut changed = Vec::new();
        for key in ordered {
            let Some(old) = self.lock_mention(&mut tx, key)? else {
                continue;
            };
            // The domain's transitions (a sent reply stays replied); a reply on its way is the
            // outbox's to finish.
            if old.status == status
                || old.status == MentionStatus::Processing
                || old.status_change_refused(status).is_some()
            {
                continue;
            }
            let mut new = old.clone();
            new.status = status;
            if status != MentionStatus::Error {
                new.error_message = None;
            }
            new.updated_at = now;
            self.write_mention(&mut tx, &new)?;
            before.push(Before {
                key,
                status: old.status,
                error_message: old.error_message,
            });
            changed.push(new);
        }
        if changed.is_empty() {
            return Ok(changed);
        }
        let mut header = match self.undo_header(&mut tx, person, action)? {
            Some(h) => h,
            None => UndoAction {
                id: action,
                status,
                at: now,
                changed: 0,
                chunks: 0,
                next_chunk: 0,
                person: Some(person.to_string()),
            },
        };
        let chunk = i32::try_from(header.next_chunk)
            .map_err(|_| StoreError::Invalid("an undo action with too many chunks".into()))?;
        header.changed += changed.len() as u64;
        header.chunks += 1;
        header.next_chunk += 1;
        self.write_undo_header(&mut tx, &header)?;
        tx.execute(
            "INSERT INTO undo_chunks (person, action, chunk, record) VALUES ($1, $2, $3, $4)",
            &[
                &person,
                &action_column(action)?,
                &chunk,
                &codec::encode(&before, "undo chunk")?,
            ],
        )
        .map_err(|e| self.err(e))?;
        // Each person keeps their newest UNDO_DEPTH actions (their chunks go with them).
        tx.execute(
            "DELETE FROM undo_actions WHERE person = $1 AND id NOT IN
               (SELECT id FROM undo_actions WHERE person = $1 ORDER BY id DESC LIMIT $2)",
            &[&person, &(UNDO_DEPTH as i64)],
        )
        .map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))?;
        Ok(changed)
    }

    /// `person`'s newest triage action that can still be undone.
    pub fn last_undo_action_of(&self, person: &str) -> Result<Option<UndoAction>> {
        let row = self
            .lock()
            .query_opt(
                "SELECT record FROM undo_actions WHERE person = $1 ORDER BY id DESC LIMIT 1",
                &[&person],
            )
            .map_err(|e| self.err(e))?;
        row.map(|row| {
            let bytes: Vec<u8> = column(&row, "record", &self.target)?;
            codec::decode(&bytes, || format!("an undo record in {}", self.target))
        })
        .transpose()
    }

    /// [`Store::undo_step_as`](crate::store::Store::undo_step_as) on the team's database: the
    /// last chunk of `person`'s action (their newest when `None`) put back, in one transaction
    /// that also forgets the chunk. A named action of someone else's is refused.
    pub fn undo_step_as(
        &self,
        person: &str,
        action: Option<u64>,
        now: DateTime<Utc>,
    ) -> Result<Option<UndoStep>> {
        let mut client = self.lock();
        let mut tx = client.transaction().map_err(|e| self.err(e))?;
        let id = match action {
            Some(id) => {
                let owner = tx
                    .query_opt(
                        "SELECT person FROM undo_actions WHERE id = $1
                         ORDER BY (person = $2) DESC LIMIT 1",
                        &[&action_column(id)?, &person],
                    )
                    .map_err(|e| self.err(e))?;
                match owner {
                    None => return Ok(None),
                    Some(row) => {
                        let owner: String = column(&row, 0, &self.target)?;
                        if owner != person {
                            let status = self
                                .undo_header(&mut tx, &owner, id)?
                                .map_or_else(|| "triage".to_string(), |h| h.status.to_string());
                            return Err(StoreError::Conflict(format!(
                                "that action ({status}) is {owner}'s; only they can undo it"
                            )));
                        }
                        id
                    }
                }
            }
            None => {
                let newest = tx
                    .query_opt(
                        "SELECT id FROM undo_actions WHERE person = $1 ORDER BY id DESC LIMIT 1",
                        &[&person],
                    )
                    .map_err(|e| self.err(e))?;
                match newest {
                    None => return Ok(None),
                    Some(row) => {
                        let id: i64 = column(&row, 0, &self.target)?;
                        u64::try_from(id).unwrap_or(0)
                    }
                }
            }
        };
        let Some(mut header) = self.undo_header(&mut tx, person, id)? else {
            return Ok(None);
        };
        let mut step = UndoStep {
            action: header.clone(),
            restored: 0,
            kept_replied: 0,
            done: false,
        };
        let last = tx
            .query_opt(
                "SELECT chunk, record FROM undo_chunks WHERE person = $1 AND action = $2
                 ORDER BY chunk DESC LIMIT 1",
                &[&person, &action_column(id)?],
            )
            .map_err(|e| self.err(e))?;
        if let Some(row) = last {
            let chunk: i32 = column(&row, "chunk", &self.target)?;
            let bytes: Vec<u8> = column(&row, "record", &self.target)?;
            let mut before: Vec<Before> =
                codec::decode(&bytes, || format!("undo chunk of {id} in {}", self.target))?;
            before.sort_by_key(|b| (b.key.account_id, b.key.tweet_id));
            for b in before {
                let Some(current) = self.lock_mention(&mut tx, b.key)? else {
                    continue;
                };
                let replied = current.public_response.is_some() || current.dm_response.is_some();
                if replied || current.status == MentionStatus::Processing {
                    step.kept_replied += 1;
                    continue;
                }
                let mut restored = current.clone();
                restored.status = b.status;
                restored.error_message = b.error_message;
                restored.updated_at = now;
                if restored != current {
                    self.write_mention(&mut tx, &restored)?;
                }
                step.restored += 1;
            }
            tx.execute(
                "DELETE FROM undo_chunks WHERE person = $1 AND action = $2 AND chunk = $3",
                &[&person, &action_column(id)?, &chunk],
            )
            .map_err(|e| self.err(e))?;
            header.chunks = header.chunks.saturating_sub(1);
        } else {
            // A header whose chunks are all gone: nothing left to do but forget it.
            header.chunks = 0;
        }
        if header.chunks == 0 {
            tx.execute(
                "DELETE FROM undo_actions WHERE person = $1 AND id = $2",
                &[&person, &action_column(id)?],
            )
            .map_err(|e| self.err(e))?;
            step.done = true;
        } else {
            self.write_undo_header(&mut tx, &header)?;
        }
        tx.commit().map_err(|e| self.err(e))?;
        Ok(Some(step))
    }

    /// [`Store::assign_as`](crate::store::Store::assign_as) on the team's database: `key`
    /// assigned to `person` (or to nobody) by `by`, with its audit entry, in one transaction.
    pub fn assign_as(
        &self,
        by: &str,
        key: MentionKey,
        handle: &str,
        person: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<std::result::Result<Option<Assignment>, AssignRefusal>> {
        if let Some(name) = person
            && name != OWNER_NAME
        {
            let Some(p) = self.person(name)? else {
                return Ok(Err(AssignRefusal::NoSuchPerson(name.to_string())));
            };
            if !p.may_read(key.account_id) {
                return Ok(Err(AssignRefusal::MayNotSee {
                    person: name.to_string(),
                    handle: handle.to_string(),
                }));
            }
        }
        let tweet = tweet_column(key.tweet_id)
            .ok_or_else(|| StoreError::NotFound(format!("mention {}", key.tweet_id)))?;
        let mut client = self.lock();
        let mut tx = client.transaction().map_err(|e| self.err(e))?;
        let before = tx
            .query_opt(
                "SELECT record FROM assignments WHERE account_id = $1 AND tweet_id = $2 FOR UPDATE",
                &[&key.account_id, &tweet],
            )
            .map_err(|e| self.err(e))?
            .map(|row| self.decode_assignment(&row, key))
            .transpose()?;
        match person {
            Some(name) => {
                let assignment = Assignment {
                    person: name.to_string(),
                    at: now,
                };
                tx.execute(
                    "INSERT INTO assignments (account_id, tweet_id, person, record)
                     VALUES ($1, $2, $3, $4)
                     ON CONFLICT (account_id, tweet_id)
                     DO UPDATE SET person = EXCLUDED.person, record = EXCLUDED.record",
                    &[
                        &key.account_id,
                        &tweet,
                        &name,
                        &codec::encode(&assignment, "assignment")?,
                    ],
                )
                .map_err(|e| self.err(e))?;
            }
            None => {
                tx.execute(
                    "DELETE FROM assignments WHERE account_id = $1 AND tweet_id = $2",
                    &[&key.account_id, &tweet],
                )
                .map_err(|e| self.err(e))?;
            }
        }
        self.append_audit_in(
            &mut tx,
            AuditEntry::new(by, AuditAction::Assign, now, person.unwrap_or("nobody"))
                .mention(key, handle),
        )?;
        let change = Change::Assigned {
            account: key.account_id,
            tweet: key.tweet_id,
            handle: handle.to_string(),
            person: person.map(str::to_string),
            by: by.to_string(),
            at: now,
        };
        notify(&mut tx, &change, &self.target)?;
        tx.commit().map_err(|e| self.err(e))?;
        Ok(Ok(before))
    }

    fn decode_assignment(&self, row: &postgres::Row, key: MentionKey) -> Result<Assignment> {
        let bytes: Vec<u8> = column(row, "record", &self.target)?;
        codec::decode(&bytes, || {
            format!("assignment of post {} in {}", key.tweet_id, self.target)
        })
    }

    /// Who `key` is assigned to.
    pub fn assignment(&self, key: MentionKey) -> Result<Option<Assignment>> {
        let Some(tweet) = tweet_column(key.tweet_id) else {
            return Ok(None);
        };
        let row = self
            .lock()
            .query_opt(
                "SELECT record FROM assignments WHERE account_id = $1 AND tweet_id = $2",
                &[&key.account_id, &tweet],
            )
            .map_err(|e| self.err(e))?;
        row.map(|row| self.decode_assignment(&row, key)).transpose()
    }

    /// The assignments in key order, at most `limit`, and whether that was all of them.
    pub fn assignments_upto(&self, limit: usize) -> Result<(Vec<(MentionKey, Assignment)>, bool)> {
        let rows = self
            .lock()
            .query(
                "SELECT account_id, tweet_id, record FROM assignments
                 ORDER BY account_id, tweet_id LIMIT $1",
                &[&(limit.saturating_add(1).min(i64::MAX as usize) as i64)],
            )
            .map_err(|e| self.err(e))?;
        let complete = rows.len() <= limit;
        let mut out = Vec::with_capacity(rows.len().min(limit));
        for row in rows.iter().take(limit) {
            let account_id: AccountId = column(row, "account_id", &self.target)?;
            let tweet: i64 = column(row, "tweet_id", &self.target)?;
            let key = MentionKey {
                account_id,
                tweet_id: u64::try_from(tweet).unwrap_or(0),
            };
            out.push((key, self.decode_assignment(row, key)?));
        }
        Ok((out, complete))
    }

    /// Saves the composer's text for `key`.
    pub fn put_draft(&self, key: MentionKey, draft: &Draft) -> Result<()> {
        let tweet = tweet_column(key.tweet_id)
            .ok_or_else(|| StoreError::NotFound(format!("mention {}", key.tweet_id)))?;
        self.lock()
            .execute(
                "INSERT INTO drafts (account_id, tweet_id, record) VALUES ($1, $2, $3)
                 ON CONFLICT (account_id, tweet_id) DO UPDATE SET record = EXCLUDED.record",
                &[&key.account_id, &tweet, &codec::encode(draft, "draft")?],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    pub fn delete_draft(&self, key: MentionKey) -> Result<()> {
        let Some(tweet) = tweet_column(key.tweet_id) else {
            return Ok(());
        };
        self.lock()
            .execute(
                "DELETE FROM drafts WHERE account_id = $1 AND tweet_id = $2",
                &[&key.account_id, &tweet],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Mentions of `account` per UTC day, the `days` days ending `today`, oldest first.
    ///
    /// Reading chosen: a mention's day is that of its post id (X's ids are snowflakes whose
    /// top bits are the creation time in ms, which X's `created_at` equals), so the count runs
    /// in the database on the primary key, without decoding records. sled counts the day of the
    /// stored `timestamp`, the same instant for every post X serves.
    pub fn daily_counts(
        &self,
        account: AccountId,
        today: NaiveDate,
        days: u32,
    ) -> Result<Vec<(NaiveDate, u64)>> {
        if days == 0 {
            return Ok(Vec::new());
        }
        let first = today
            .checked_sub_days(chrono::Days::new(u64::from(days - 1)))
            .unwrap_or(NaiveDate::MIN);
        let start_ms = first
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc().timestamp_millis())
            .unwrap_or(0);
        let lowest_id = (start_ms - SNOWFLAKE_EPOCH_MS).max(0) << 22;
        let rows = self
            .lock()
            .query(
                "SELECT (to_timestamp(((tweet_id >> 22) + $3) / 1000.0) AT TIME ZONE 'UTC')::date AS day,
                        count(*) AS n
                 FROM mentions WHERE account_id = $1 AND tweet_id >= $2
                 GROUP BY 1",
                &[&account, &lowest_id, &SNOWFLAKE_EPOCH_MS],
            )
            .map_err(|e| self.err(e))?;
        let mut found = std::collections::BTreeMap::new();
        for row in rows {
            let day: NaiveDate = column(&row, "day", &self.target)?;
            let n: i64 = column(&row, "n", &self.target)?;
            found.insert(day, u64::try_from(n).unwrap_or(0));
        }
        Ok(first
            .iter_days()
            .take_while(|d| *d <= today)
            .map(|d| (d, found.get(&d).copied().unwrap_or(0)))
            .collect())
    }
}
