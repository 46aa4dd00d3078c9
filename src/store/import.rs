//! Bulk import (issue 13): accounts and mentions brought in from another system, beside
//! `commit_page`. The same keys, counters and cursor rules as a sync page, plus what a sync page
//! never needs: an incoming mention may already be stored, and then the newer version wins
//! (by `updated_at`), with its index entries and counters moved. Every batch commits atomically;
//! with `dry_run` the same decisions are made and counted, and nothing is written.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};
use sled::Batch;

use super::{CounterUpdates, Result, Store, StoreError, keys, stage_new_mention};
use crate::domain::{Account, AccountId, Mention, MentionStatus, Tokens};

/// What importing one account did (or, in a dry run, would do).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccountImport {
    /// Not tracked before: added.
    Added,
    /// Tracked, and the imported version is newer: replaced (perch's own id is kept).
    Updated,
    /// Tracked, at the same version: nothing to change.
    Unchanged,
    /// Tracked, and perch's version is newer: perch's is kept.
    KeptNewer,
}

/// What importing one mention did (or, in a dry run, would do).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MentionOutcome {
    Added,
    Updated,
    Unchanged,
    KeptNewer,
}

impl MentionOutcome {
    /// The mention was (or would be) written.
    pub fn written(self) -> bool {
        matches!(self, MentionOutcome::Added | MentionOutcome::Updated)
    }
}

/// What importing one batch of mentions did (or, in a dry run, would do).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MentionImport {
    /// Per mention of the batch, in order (empty in totals added up with [`MentionImport::add`]).
    pub outcomes: Vec<MentionOutcome>,
    /// New mentions, by status code (`MentionStatus::code`).
    pub added: [u64; 5],
    /// Stored mentions replaced by a newer imported version, by their new status code.
    pub updated: [u64; 5],
    /// Stored mentions identical to the imported ones (or repeated within the batch).
    pub unchanged: u64,
    /// Stored mentions newer than the imported ones: perch's are kept.
    pub kept_newer: u64,
}

impl MentionImport {
    pub fn added_total(&self) -> u64 {
        self.added.iter().sum()
    }

    pub fn updated_total(&self) -> u64 {
        self.updated.iter().sum()
    }

    pub fn add(&mut self, other: &MentionImport) {
        for (a, b) in self.added.iter_mut().zip(other.added) {
            *a += b;
        }
        for (a, b) in self.updated.iter_mut().zip(other.updated) {
            *a += b;
        }
        self.unchanged += other.unchanged;
        self.kept_newer += other.kept_newer;
    }
}

impl Store {
    /// Imports one account, matched by its X user id (the unique key): a new one is added with
    /// `account.id`; a tracked one keeps perch's id and is replaced only when `account` is newer
    /// (`updated_at`). `tokens` are stored with an added or updated account, or when perch holds
    /// none for it. Returns what happened and the account as it is (or would be) stored.
    pub fn import_account(
        &self,
        account: &Account,
        tokens: Option<&Tokens>,
        dry_run: bool,
    ) -> Result<(AccountImport, Account)> {
        let local = self.account_by_twitter_id(&account.twitter_id)?;
        let (outcome, stored) = match &local {
            None => {
                if self.account(account.id)?.is_some() {
                    // The imported id is taken by another X user here: give this one a new id.
                    let mut fresh = account.clone();
                    fresh.id = uuid::Uuid::new_v4();
                    (AccountImport::Added, fresh)
                } else {
                    (AccountImport::Added, account.clone())
                }
            }
            Some(local) => {
                let mut incoming = account.clone();
                incoming.id = local.id;
                if incoming.updated_at > local.updated_at {
                    (AccountImport::Updated, incoming)
                } else if incoming.updated_at < local.updated_at {
                    (AccountImport::KeptNewer, local.clone())
                } else {
                    (AccountImport::Unchanged, local.clone())
                }
            }
        };
        let write_tokens = match (tokens, outcome) {
            (None, _) => None,
            (Some(t), AccountImport::Added | AccountImport::Updated) => Some(t),
            (Some(t), _) => match self.tokens(stored.id)? {
                None => Some(t),
                Some(_) => None,
            },
        };
        let outcome = match (outcome, write_tokens) {
            (AccountImport::Unchanged | AccountImport::KeptNewer, Some(_)) => {
                AccountImport::Updated
            }
            (o, _) => o,
        };
        if !dry_run {
            if matches!(outcome, AccountImport::Added | AccountImport::Updated) {
                self.put_account(&stored)?;
            }
            if let Some(t) = write_tokens {
                self.put_tokens(stored.id, t)?;
            }
        }
        Ok((outcome, stored))
    }

    /// Imports a batch of mentions (of any accounts) in one atomic batch: new ones are stored
    /// with their index entries, counters, first-seen times and cursors (the cursor moves to the
    /// newest imported tweet id, never backwards); stored ones are replaced only by a newer
    /// version (`updated_at`), keeping perch's mention id. A mention whose tweet id is not a
    /// decimal number is refused (the caller validates them first).
    pub fn import_mentions(&self, mentions: &[Mention], dry_run: bool) -> Result<MentionImport> {
        if let Some(m) = mentions.iter().find(|m| m.tweet_id.parse::<u64>().is_err()) {
            return Err(StoreError::Invalid(format!(
                "imported mention tweet id {:?} is not a number",
                m.tweet_id
            )));
        }
        if !dry_run {
            // A bulk write: stop before sled runs out of room (as sync pages do).
            self.ensure_room()?;
        }
        let mut writer = self.lock();
        let mut updates = CounterUpdates::default();
        let mut batch = Batch::default();
        let mut result = MentionImport::default();

        // Which are stored already: one range read per account over the batch's span.
        let mut by_account: HashMap<AccountId, Vec<u64>> = HashMap::new();
        for m in mentions {
            by_account
                .entry(m.sent_to.account_id)
                .or_default()
                .push(m.tweet_id_u64());
        }
        let mut stored: HashSet<(AccountId, u64)> = HashSet::new();
        for (account, tweets) in &by_account {
            for t in self.stored_among(*account, tweets)? {
                stored.insert((*account, t));
            }
        }

        let mut seen = HashSet::with_capacity(mentions.len());
        let mut new_by_status: HashMap<(AccountId, MentionStatus), i64> = HashMap::new();
        let mut new_by_day: BTreeMap<(AccountId, NaiveDate), i64> = BTreeMap::new();
        let mut earliest: HashMap<AccountId, DateTime<Utc>> = HashMap::new();
        let mut newest: HashMap<AccountId, u64> = HashMap::new();
        for m in mentions {
            let key = m.key();
            if !seen.insert((key.account_id, key.tweet_id)) {
                result.unchanged += 1;
                result.outcomes.push(MentionOutcome::Unchanged);
                continue;
            }
            if stored.contains(&(key.account_id, key.tweet_id)) {
                // (`stored_among` just saw it, and this writer holds the lock.)
                let Some(old) = self.mention(key)? else {
                    return Err(StoreError::Invalid(format!(
                        "mention {} vanished during an import",
                        key.tweet_id
                    )));
                };
                let mut incoming = m.clone();
                incoming.id = old.id;
                let outcome = if incoming == old {
                    result.unchanged += 1;
                    MentionOutcome::Unchanged
                } else if incoming.updated_at <= old.updated_at
                    // perch is sending a reply for it: its outbox owns the status now.
                    || old.status == MentionStatus::Processing
                {
                    result.kept_newer += 1;
                    MentionOutcome::KeptNewer
                } else {
                    self.stage_mention_update(&writer, &mut updates, &mut batch, &old, &incoming)?;
                    result.updated[incoming.status.code() as usize] += 1;
                    MentionOutcome::Updated
                };
                result.outcomes.push(outcome);
                continue;
            }
            result.outcomes.push(MentionOutcome::Added);
            stage_new_mention(&mut batch, &mut writer.buf, m)?;
            result.added[m.status.code() as usize] += 1;
            *new_by_status.entry((key.account_id, m.status)).or_default() += 1;
            *new_by_day
                .entry((key.account_id, keys::day_of(m.timestamp)))
                .or_default() += 1;
            let first = earliest.entry(key.account_id).or_insert(m.created_at);
            *first = (*first).min(m.created_at);
            let last = newest.entry(key.account_id).or_insert(key.tweet_id);
            *last = (*last).max(key.tweet_id);
        }
        if dry_run {
            return Ok(result);
        }
        for ((account, status), n) in new_by_status {
            self.add_to_status_counts(&writer, &mut updates, &mut batch, account, status, n)?;
        }
        for ((account, day), n) in new_by_day {
            self.add_to_counter(
                &writer,
                &mut updates,
                &mut batch,
                &keys::day_count_key(account, day),
                n,
            )?;
        }
        let mut remembered = Vec::new();
        for (account, t) in earliest {
            // Imported history arrives in any order: the earliest mention wins.
            let first_seen = self.stage_first_seen(&mut writer, &mut batch, account, t, true)?;
            let cursor = match newest.get(&account) {
                Some(&c) => Some(self.stage_cursor(&mut writer, &mut batch, account, c)?),
                None => None,
            };
            remembered.push((account, first_seen, cursor));
        }
        self.apply_counted(&mut writer, batch, updates)?;
        for (account, first_seen, cursor) in remembered {
            writer.remember(account, first_seen, cursor);
        }
        Ok(result)
    }
}
