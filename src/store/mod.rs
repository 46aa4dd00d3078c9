//! The sled store: the source of truth for accounts, tokens, mentions, indexes, counters, cursors,
//! drafts and the outbox. Blocking (sled is): async callers use `spawn_blocking` for bulk work.
//!
//! SKELETON: signatures are the contract other modules code against. Bodies are filled in by the
//! store work; keep the signatures (or change every caller with them).

use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, Utc};

use crate::domain::{Account, AccountId, Mention, MentionKey, MentionStatus, Tokens};

/// Why the store could not be opened or used. Each message names the directory and what to do.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "the perch store at {dir} is in use by another perch process; close it (or pass --data-dir to use another store)"
    )]
    Locked { dir: PathBuf },
    #[error(
        "the perch store at {dir} cannot be read ({detail}); move it aside to start afresh, or restore it from a backup"
    )]
    Corrupt { dir: PathBuf, detail: String },
    #[error(
        "the perch store at {dir} was written by a newer perch (format {found}, this perch reads up to {supported}); upgrade perch"
    )]
    NewerVersion {
        dir: PathBuf,
        found: u8,
        supported: u8,
    },
    #[error("store I/O error at {dir}: {detail}")]
    Io { dir: PathBuf, detail: String },
    #[error("a stored record could not be decoded ({what}): {detail}")]
    Decode { what: String, detail: String },
    #[error("not found: {0}")]
    NotFound(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// Which mentions the feed shows. `None` means "any".
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FeedFilter {
    pub account: Option<AccountId>,
    pub status: Option<MentionStatus>,
}

/// A position in a feed ordering (newest first): the (tweet id, account) of a row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FeedPos {
    pub tweet_id: u64,
    pub account_id: AccountId,
}

impl From<MentionKey> for FeedPos {
    fn from(k: MentionKey) -> FeedPos {
        FeedPos {
            tweet_id: k.tweet_id,
            account_id: k.account_id,
        }
    }
}

/// What a page commit did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PageCommit {
    /// Mentions that were new and are now stored.
    pub inserted: usize,
    /// Mentions that were already stored (left untouched: their triage state is kept).
    pub duplicates: usize,
}

#[derive(Clone)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    /// Opens (creating if needed) the store in `dir`, created 0700 with files 0600.
    pub fn open(dir: &Path) -> Result<Store> {
        let _ = dir;
        todo!()
    }

    /// The directory this store lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Flushes everything to disk (sled flushes in the background too).
    pub fn flush(&self) -> Result<()> {
        todo!()
    }

    // ---- accounts -------------------------------------------------------------------------

    /// Inserts or replaces an account (by `id`); accounts are unique by `twitter_id`.
    pub fn put_account(&self, account: &Account) -> Result<()> {
        let _ = account;
        todo!()
    }
    pub fn account(&self, id: AccountId) -> Result<Option<Account>> {
        let _ = id;
        todo!()
    }
    pub fn account_by_twitter_id(&self, twitter_id: &str) -> Result<Option<Account>> {
        let _ = twitter_id;
        todo!()
    }
    /// All accounts, ordered by handle (case-insensitive). Accounts are few: this is a small read.
    pub fn accounts(&self) -> Result<Vec<Account>> {
        todo!()
    }
    /// Removes an account, its tokens, cursor and counters; its mentions too when
    /// `delete_mentions`, otherwise they stay readable (under "All accounts").
    pub fn remove_account(&self, id: AccountId, delete_mentions: bool) -> Result<()> {
        let _ = (id, delete_mentions);
        todo!()
    }

    /// Stores an account's tokens and flushes before returning (a rotated refresh token must be
    /// durable before the new access token is used).
    pub fn put_tokens(&self, id: AccountId, tokens: &Tokens) -> Result<()> {
        let _ = (id, tokens);
        todo!()
    }
    pub fn tokens(&self, id: AccountId) -> Result<Option<Tokens>> {
        let _ = id;
        todo!()
    }

    /// The newest tweet id committed for this account (the next poll's `since_id`).
    pub fn cursor(&self, id: AccountId) -> Result<Option<u64>> {
        let _ = id;
        todo!()
    }

    // ---- mentions -------------------------------------------------------------------------

    /// Commits one fetched page atomically: new mention records, their index entries, the
    /// per-account/per-status/per-day counters, and (when given) the account's cursor. Mentions
    /// already stored are skipped, never overwritten.
    pub fn commit_page(
        &self,
        account: AccountId,
        mentions: &[Mention],
        new_cursor: Option<u64>,
    ) -> Result<PageCommit> {
        let _ = (account, mentions, new_cursor);
        todo!()
    }

    pub fn mention(&self, key: MentionKey) -> Result<Option<Mention>> {
        let _ = key;
        todo!()
    }

    /// Replaces a stored mention (same key), moving its index entries and counters if its status
    /// changed, in one atomic batch. Returns the previous version.
    pub fn update_mention(&self, mention: &Mention) -> Result<Option<Mention>> {
        let _ = mention;
        todo!()
    }

    /// Up to `limit` mentions matching `filter`, newest first, strictly older than `after`
    /// (from the newest when `None`). Reads an index range: cost depends on `limit`, not the store.
    pub fn page_after(
        &self,
        filter: &FeedFilter,
        after: Option<FeedPos>,
        limit: usize,
    ) -> Result<Vec<Mention>> {
        let _ = (filter, after, limit);
        todo!()
    }

    /// Up to `limit` mentions matching `filter` strictly newer than `before`, returned newest
    /// first (the rows just above `before`). With `None`, the oldest `limit` mentions (the end).
    pub fn page_before(
        &self,
        filter: &FeedFilter,
        before: Option<FeedPos>,
        limit: usize,
    ) -> Result<Vec<Mention>> {
        let _ = (filter, before, limit);
        todo!()
    }

    /// How many mentions match `filter`, from counters (never a scan).
    pub fn count(&self, filter: &FeedFilter) -> Result<u64> {
        let _ = filter;
        todo!()
    }

    /// Mentions per day for one account over the `days` days ending at `today` (oldest first),
    /// from per-day counters.
    pub fn daily_counts(
        &self,
        account: AccountId,
        today: NaiveDate,
        days: u32,
    ) -> Result<Vec<(NaiveDate, u64)>> {
        let _ = (account, today, days);
        todo!()
    }

    /// When the first mention of this account was stored (for "days tracked").
    pub fn first_seen(&self, account: AccountId) -> Result<Option<DateTime<Utc>>> {
        let _ = account;
        todo!()
    }
}
