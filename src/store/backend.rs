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
//! [`OutboxBackend`] adds the outbox and drafts. The rest of sled's `Store` (undo, costs, the
//! team, search) is not behind a trait yet, so the service still runs on sled alone; see README
//! "Not there yet".

use chrono::{DateTime, Utc};

use super::{
    Draft, FeedFilter, FeedPos, OutboxEntry, OutboxState, PageCommit, Result, Store, StoreError,
};
use crate::domain::{
    Account, AccountId, Mention, MentionKey, MentionStatus, ReplyKind, Response, Tokens,
};

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

/// The outbox on a store (issue 16: a team's services share one record of every send, and one
/// worker sends each). The states and their rules are `store/outbox.rs`'s; both backends keep
/// them, and `tests/store_backends.rs` runs one suite against each. What PostgreSQL adds is that
/// the rules hold between processes: a claim is a row lock (`FOR UPDATE SKIP LOCKED`), and one
/// mention has at most one unresolved send, whichever service asked.
pub trait OutboxBackend: Backend {
    /// Records a new send for `key` by `person` (a team person's name; `None`: the owner): the
    /// entry `queued`, the mention `processing`, the text kept as its draft. Refused
    /// (`StoreError::Conflict`, saying who and when) while another send for the mention is
    /// unresolved, and, unless `send_anyway`, when the mention already has a sent answer of
    /// that kind: two people replying at the same moment make one post, and the second is told.
    fn outbox_enqueue_by(
        &self,
        key: MentionKey,
        kind: ReplyKind,
        text: &str,
        person: Option<&str>,
        send_anyway: bool,
        now: DateTime<Utc>,
    ) -> Result<OutboxEntry>;
    /// Takes the oldest entry ready to go (queued, or waiting past its reset) and marks it
    /// `sending`, committed before it returns: the caller's request may now leave. No two
    /// callers ever get the same entry.
    fn outbox_claim_next(&self, now: DateTime<Utc>) -> Result<Option<OutboxEntry>>;
    fn outbox_sent(
        &self,
        key: MentionKey,
        seq: u64,
        response_id: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<Response>;
    fn outbox_failed(
        &self,
        key: MentionKey,
        seq: u64,
        message: &str,
        now: DateTime<Utc>,
    ) -> Result<OutboxEntry>;
    fn outbox_unconfirmed(
        &self,
        key: MentionKey,
        seq: u64,
        message: &str,
        now: DateTime<Utc>,
    ) -> Result<OutboxEntry>;
    fn outbox_waiting(
        &self,
        key: MentionKey,
        seq: u64,
        until: DateTime<Utc>,
        message: &str,
        now: DateTime<Utc>,
    ) -> Result<OutboxEntry>;
    fn outbox_retry(&self, key: MentionKey, now: DateTime<Utc>) -> Result<OutboxEntry>;
    fn outbox_cancel(&self, key: MentionKey, now: DateTime<Utc>) -> Result<OutboxEntry>;
    fn outbox_mark_sent(
        &self,
        key: MentionKey,
        now: DateTime<Utc>,
    ) -> Result<(OutboxEntry, Response)>;
    fn outbox_current(&self, key: MentionKey) -> Result<Option<OutboxEntry>>;
    /// Every unfinished current entry, oldest first.
    fn outbox_open(&self) -> Result<Vec<OutboxEntry>>;
    /// The crash rule, for a worker starting (sled: the process; PostgreSQL: a new leader): a
    /// `sending` entry whose worker is gone may have reached X, so it becomes `unconfirmed`,
    /// never sent again by itself. On sled, where the process that ended was also the one whose
    /// user asked, a `queued` or `waiting` one never left and becomes `failed`. On PostgreSQL
    /// the people who asked are on services still running, so those stay for the new leader to
    /// send; and a `sending` entry whose claiming session is still connected is left alone (its
    /// worker may yet hear X's answer).
    fn outbox_recover(
        &self,
        now: DateTime<Utc>,
        unconfirmed_message: &str,
        not_sent_message: &str,
    ) -> Result<Vec<OutboxEntry>>;
    fn draft(&self, key: MentionKey) -> Result<Option<Draft>>;
}

impl OutboxBackend for Store {
    fn outbox_enqueue_by(
        &self,
        key: MentionKey,
        kind: ReplyKind,
        text: &str,
        _person: Option<&str>,
        send_anyway: bool,
        now: DateTime<Utc>,
    ) -> Result<OutboxEntry> {
        // sled's entries do not record who asked (one machine, its owner); the answer already
        // on the mention says when.
        if !send_anyway
            && let Some(m) = Store::mention(self, key)?
            && let Some(message) = super::outbox::already_answered(&m, kind, None)
        {
            return Err(StoreError::Conflict(message));
        }
        Store::outbox_enqueue(self, key, kind, text, now)
    }
    fn outbox_claim_next(&self, now: DateTime<Utc>) -> Result<Option<OutboxEntry>> {
        // One process holds a sled store and its one worker claims: no other claimant to race.
        let ready = Store::outbox_open(self)?
            .into_iter()
            .find(|e| match e.state {
                OutboxState::Queued => true,
                OutboxState::Waiting => e.not_before.is_none_or(|t| t <= now),
                _ => false,
            });
        match ready {
            Some(e) => Store::outbox_begin_send(self, e.key, e.seq, now).map(Some),
            None => Ok(None),
        }
    }
    fn outbox_sent(
        &self,
        key: MentionKey,
        seq: u64,
        response_id: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<Response> {
        Store::outbox_sent(self, key, seq, response_id, now)
    }
    fn outbox_failed(
        &self,
        key: MentionKey,
        seq: u64,
        message: &str,
        now: DateTime<Utc>,
    ) -> Result<OutboxEntry> {
        Store::outbox_failed(self, key, seq, message, now)
    }
    fn outbox_unconfirmed(
        &self,
        key: MentionKey,
        seq: u64,
        message: &str,
        now: DateTime<Utc>,
    ) -> Result<OutboxEntry> {
        Store::outbox_unconfirmed(self, key, seq, message, now)
    }
    fn outbox_waiting(
        &self,
        key: MentionKey,
        seq: u64,
        until: DateTime<Utc>,
        message: &str,
        now: DateTime<Utc>,
    ) -> Result<OutboxEntry> {
        Store::outbox_waiting(self, key, seq, until, message, now)
    }
    fn outbox_retry(&self, key: MentionKey, now: DateTime<Utc>) -> Result<OutboxEntry> {
        Store::outbox_retry(self, key, now)
    }
    fn outbox_cancel(&self, key: MentionKey, now: DateTime<Utc>) -> Result<OutboxEntry> {
        Store::outbox_cancel(self, key, now)
    }
    fn outbox_mark_sent(
        &self,
        key: MentionKey,
        now: DateTime<Utc>,
    ) -> Result<(OutboxEntry, Response)> {
        Store::outbox_mark_sent(self, key, now)
    }
    fn outbox_current(&self, key: MentionKey) -> Result<Option<OutboxEntry>> {
        Store::outbox_current(self, key)
    }
    fn outbox_open(&self) -> Result<Vec<OutboxEntry>> {
        Store::outbox_open(self)
    }
    fn outbox_recover(
        &self,
        now: DateTime<Utc>,
        unconfirmed_message: &str,
        not_sent_message: &str,
    ) -> Result<Vec<OutboxEntry>> {
        Store::outbox_recover(self, now, unconfirmed_message, not_sent_message)
    }
    fn draft(&self, key: MentionKey) -> Result<Option<Draft>> {
        Store::draft(self, key)
    }
}
