//! The team on PostgreSQL (schema version 6): people, whose personal tokens open every service
//! on the database, and the audit log every service appends to. The records are the same bytes
//! as sled's (`store/team.rs`); the columns beside them are what lookups and filters use.

use super::{PgStore, column, tweet_column};
use crate::domain::{AuditEntry, Person};
use crate::store::team::with_token_hash;
use crate::store::{AUDIT_SCAN, AuditPage, AuditQuery, Result, StoreError, codec};

/// Serialises appends to the audit log across services (a transaction-scoped advisory lock),
/// so each entry's seq is one past the newest committed one.
const AUDIT_LOCK: i64 = 0x7065_7263_6803;

impl PgStore {
    /// Adds a person; refused if one of that name exists (`StoreError::Conflict`).
    pub fn add_person(&self, person: &Person) -> Result<()> {
        let record = codec::encode(person, "person")?;
        let added = self
            .lock()
            .execute(
                "INSERT INTO people (name, token_hash, record) VALUES ($1, $2, $3)
                 ON CONFLICT (name) DO NOTHING",
                &[&person.name, &person.token_hash, &record],
            )
            .map_err(|e| self.err(e))?;
        if added == 0 {
            return Err(StoreError::Conflict(format!(
                "there is already a person called {}; `perch team remove {}` first to make a new token",
                person.name, person.name
            )));
        }
        Ok(())
    }

    /// Replaces a person's record (role, grants); refused if there is none by that name.
    pub fn update_person(&self, person: &Person) -> Result<()> {
        let record = codec::encode(person, "person")?;
        let updated = self
            .lock()
            .execute(
                "UPDATE people SET token_hash = $2, record = $3 WHERE name = $1",
                &[&person.name, &person.token_hash, &record],
            )
            .map_err(|e| self.err(e))?;
        if updated == 0 {
            return Err(StoreError::Conflict(format!(
                "there is no person called {} (`perch team list` shows the team)",
                person.name
            )));
        }
        Ok(())
    }

    pub fn person(&self, name: &str) -> Result<Option<Person>> {
        let row = self
            .lock()
            .query_opt("SELECT record FROM people WHERE name = $1", &[&name])
            .map_err(|e| self.err(e))?;
        row.map(|row| {
            let bytes: Vec<u8> = column(&row, 0, &self.target)?;
            codec::decode(&bytes, || format!("person {name} in {}", self.target))
        })
        .transpose()
    }

    /// Everyone, by name (bytewise, as sled orders them).
    pub fn people(&self) -> Result<Vec<Person>> {
        let rows = self
            .lock()
            .query("SELECT name, record FROM people", &[])
            .map_err(|e| self.err(e))?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let name: String = column(&row, 0, &self.target)?;
            let bytes: Vec<u8> = column(&row, 1, &self.target)?;
            out.push(codec::decode::<Person>(&bytes, || {
                format!("person {name} in {}", self.target)
            })?);
        }
        out.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
        Ok(out)
    }

    /// The person whose token hashes to `token_hash`, if any: every hash is compared in full
    /// (as in sled), so the time taken does not tell how much of a guess was right.
    pub fn person_by_token_hash(&self, token_hash: &str) -> Result<Option<Person>> {
        Ok(with_token_hash(self.people()?, token_hash))
    }

    /// Removes a person: their token stops working on every service at once, and the
    /// mentions assigned to them are nobody's (returned, to tell the clients). `None` when
    /// there is no such person.
    pub fn remove_person(&self, name: &str) -> Result<Option<Vec<crate::domain::MentionKey>>> {
        let mut client = self.lock();
        let mut tx = client.transaction().map_err(|e| self.err(e))?;
        let removed = tx
            .execute("DELETE FROM people WHERE name = $1", &[&name])
            .map_err(|e| self.err(e))?;
        if removed == 0 {
            return Ok(None);
        }
        let rows = tx
            .query(
                "DELETE FROM assignments WHERE person = $1 RETURNING account_id, tweet_id",
                &[&name],
            )
            .map_err(|e| self.err(e))?;
        let mut unassigned = Vec::with_capacity(rows.len());
        let now = chrono::Utc::now();
        for row in rows {
            let tweet: i64 = column(&row, "tweet_id", &self.target)?;
            let key = crate::domain::MentionKey {
                account_id: column(&row, "account_id", &self.target)?,
                tweet_id: u64::try_from(tweet).unwrap_or(0),
            };
            // Every service's dashboards hear that it is nobody's now (the handle is read by
            // whoever tells its clients: empty here).
            let change = super::changes::Change::Assigned {
                account: key.account_id,
                tweet: key.tweet_id,
                handle: String::new(),
                person: None,
                by: crate::domain::team::OWNER_NAME.to_string(),
                at: now,
            };
            super::changes::notify(&mut tx, &change, &self.target)?;
            unassigned.push(key);
        }
        tx.commit().map_err(|e| self.err(e))?;
        Ok(Some(unassigned))
    }

    /// Appends an entry (its `seq` chosen here, one past the newest) and returns it as stored.
    pub fn append_audit(&self, entry: AuditEntry) -> Result<AuditEntry> {
        let mut client = self.lock();
        let mut tx = client.transaction().map_err(|e| self.err(e))?;
        let entry = self.append_audit_in(&mut tx, entry)?;
        tx.commit().map_err(|e| self.err(e))?;
        Ok(entry)
    }

    /// [`PgStore::append_audit`] inside the caller's transaction (the entry commits with the
    /// change it records, or not at all).
    pub(super) fn append_audit_in(
        &self,
        tx: &mut postgres::Transaction<'_>,
        mut entry: AuditEntry,
    ) -> Result<AuditEntry> {
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&AUDIT_LOCK])
            .map_err(|e| self.err(e))?;
        let newest: i64 = tx
            .query_one("SELECT COALESCE(MAX(seq), 0) FROM audit", &[])
            .map_err(|e| self.err(e))
            .and_then(|row| column(&row, 0, &self.target))?;
        entry.seq = u64::try_from(newest).unwrap_or(0) + 1;
        let seq = i64::try_from(entry.seq)
            .map_err(|_| StoreError::Invalid("the audit log is full".to_string()))?;
        let tweet = entry.mention.and_then(tweet_column);
        tx.execute(
            "INSERT INTO audit (seq, at, person, account_id, tweet_id, record)
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &seq,
                &entry.at,
                &entry.person,
                &entry.account_id,
                &tweet,
                &codec::encode(&entry, "audit entry")?,
            ],
        )
        .map_err(|e| self.err(e))?;
        Ok(entry)
    }

    /// Entries matching `query`, newest first (the filters run in the database; a page says
    /// where to go on when there is more).
    pub fn audit(&self, query: &AuditQuery) -> Result<AuditPage> {
        let before = query
            .before
            .map_or(i64::MAX, |b| i64::try_from(b).unwrap_or(i64::MAX));
        let limit = query.limit.min(AUDIT_SCAN);
        let tweet = query.mention.map(|m| tweet_column(m).unwrap_or(-1));
        let among = query.among.clone();
        let fetch = i64::try_from(limit).unwrap_or(i64::MAX).saturating_add(1);
        let rows = self
            .lock()
            .query(
                "SELECT seq, record FROM audit
                 WHERE seq < $1
                   AND ($2::text IS NULL OR person = $2)
                   AND ($3::bigint IS NULL OR tweet_id = $3)
                   AND ($4::uuid IS NULL OR account_id = $4)
                   AND ($5::uuid[] IS NULL OR account_id = ANY($5))
                 ORDER BY seq DESC LIMIT $6",
                &[
                    &before,
                    &query.person,
                    &tweet,
                    &query.account,
                    &among,
                    &fetch,
                ],
            )
            .map_err(|e| self.err(e))?;
        let mut page = AuditPage {
            entries: Vec::with_capacity(rows.len().min(limit)),
            next_before: None,
        };
        for row in rows.iter().take(limit) {
            let seq: i64 = column(row, 0, &self.target)?;
            let bytes: Vec<u8> = column(row, 1, &self.target)?;
            page.entries.push(codec::decode(&bytes, || {
                format!("audit entry {seq} in {}", self.target)
            })?);
        }
        if rows.len() > limit {
            page.next_before = page.entries.last().map(|e| e.seq);
        }
        Ok(page)
    }
}
