//! The store's interface, with two implementations: sled ([`Store`], the embedded default) and
//! PostgreSQL ([`PgStore`](super::pg::PgStore), for a team's shared database).
//!
//! It covers what syncing and triage need of a store: accounts and their tokens, the sync
//! cursor, committing a fetched page, one mention, a status change, and the feed's pages and
//! counts. Both implementations keep the same guarantees, and `tests/store_backends.rs` runs one
//! suite against each: a page commits atomically with its cursor, the cursor never moves back, a
//! mention already stored is never overwritten by a later copy (but an unknown sender is filled
//! in), and pages are newest first by (tweet id, account).
//!
//! The rest of sled's `Store` (the outbox, drafts, undo, costs, the team, search) is not behind
//! the trait yet, so the service still runs on sled alone; see README "Not there yet".

use chrono::{DateTime, Utc};

use super::{FeedFilter, FeedPos, PageCommit, Result, Store};
use crate::domain::{Account, AccountId, Mention, MentionKey, MentionStatus, Tokens};

pub trait Backend: Send + Sync {
    /// Stores (or replaces) an account; another account with the same X user id is refused
    /// with `StoreError::DuplicateAccount`.
    fn put_account(&self, account: &Account) -> Result<()>;
    fn account(&self, id: AccountId) -> Result<Option<Account>>;
    fn account_by_twitter_id(&self, twitter_id: &str) -> Result<Option<Account>>;
    /// Every account, by handle ignoring case.
    fn accounts(&self) -> Result<Vec<Account>>;
    fn put_tokens(&self, id: AccountId, tokens: &Tokens) -> Result<()>;
    fn tokens(&self, id: AccountId) -> Result<Option<Tokens>>;
    fn cursor(&self, id: AccountId) -> Result<Option<u64>>;
    /// See [`Store::commit_page`]: new mentions, duplicates skipped, and the cursor, at once.
    fn commit_page(
        &self,
        account: AccountId,
        mentions: &[Mention],
        new_cursor: Option<u64>,
    ) -> Result<PageCommit>;
    fn mention(&self, key: MentionKey) -> Result<Option<Mention>>;
    /// Sets a stored mention's status; `None` when it is not stored.
    fn set_status(
        &self,
        key: MentionKey,
        status: MentionStatus,
        now: DateTime<Utc>,
    ) -> Result<Option<Mention>>;
    /// Up to `limit` mentions matching `filter`, newest first, strictly older than `after`.
    fn page_after(
        &self,
        filter: &FeedFilter,
        after: Option<FeedPos>,
        limit: usize,
    ) -> Result<Vec<Mention>>;
    /// How many mentions match `filter`.
    fn count(&self, filter: &FeedFilter) -> Result<u64>;
}

impl Backend for Store {
    fn put_account(&self, account: &Account) -> Result<()> {
        Store::put_account(self, account)
    }
    fn account(&self, id: AccountId) -> Result<Option<Account>> {
        Store::account(self, id)
    }
    fn account_by_twitter_id(&self, twitter_id: &str) -> Result<Option<Account>> {
        Store::account_by_twitter_id(self, twitter_id)
    }
    fn accounts(&self) -> Result<Vec<Account>> {
        Store::accounts(self)
    }
    fn put_tokens(&self, id: AccountId, tokens: &Tokens) -> Result<()> {
        Store::put_tokens(self, id, tokens)
    }
    fn tokens(&self, id: AccountId) -> Result<Option<Tokens>> {
        Store::tokens(self, id)
    }
    fn cursor(&self, id: AccountId) -> Result<Option<u64>> {
        Store::cursor(self, id)
    }
    fn commit_page(
        &self,
        account: AccountId,
        mentions: &[Mention],
        new_cursor: Option<u64>,
    ) -> Result<PageCommit> {
        Store::commit_page(self, account, mentions, new_cursor)
    }
    fn mention(&self, key: MentionKey) -> Result<Option<Mention>> {
        Store::mention(self, key)
    }
    fn set_status(
        &self,
        key: MentionKey,
        status: MentionStatus,
        now: DateTime<Utc>,
    ) -> Result<Option<Mention>> {
        Store::set_status(self, key, status, now)
    }
    fn page_after(
        &self,
        filter: &FeedFilter,
        after: Option<FeedPos>,
        limit: usize,
    ) -> Result<Vec<Mention>> {
        Store::page_after(self, filter, after, limit)
    }
    fn count(&self, filter: &FeedFilter) -> Result<u64> {
        Store::count(self, filter)
    }
}
