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

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};

use super::{
    AssignedFilter, Assignment, AuditPage, AuditQuery, Draft, FeedFilter, FeedPos, OutboxEntry,
    OutboxState, PageCommit, ReadCharge, Result, SearchPage, Store, StoreError,
};
use crate::costs::{ByKind, Month, Pricing, Use, XUsage};
use crate::domain::{
    Account, AccountId, Arrival, AuditEntry, Mention, MentionKey, MentionStatus, Person, ReplyKind,
    Response, Tokens,
};
use crate::store::{AssignRefusal, UndoAction, UndoStep};

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
    /// The entry `seq` of `key`, whatever its state (a change notification names one).
    fn outbox_entry(&self, key: MentionKey, seq: u64) -> Result<Option<OutboxEntry>>;
    /// Every entry of `key`, oldest first (finished ones too).
    fn outbox_history(&self, key: MentionKey) -> Result<Vec<OutboxEntry>>;
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
    /// The client of the send `seq` of `key`, out right now, went away. On PostgreSQL the
    /// entry stays `sending` (nobody may retry, cancel or mark it while its request may still
    /// be answered) and is marked, so that a rate-limited answer cancels it rather than keep it
    /// waiting. False when the entry is no longer `sending` (X's answer was recorded
    /// meanwhile: read it again). sled's worker keeps this in its memory instead (it records
    /// the entry `unconfirmed` at once, and refuses commands for a send it has out): nothing
    /// here.
    fn outbox_abandon_sending(&self, key: MentionKey, seq: u64) -> Result<bool>;
    /// Whether [`OutboxBackend::outbox_abandon_sending`] marked the entry (since its claim).
    fn outbox_was_abandoned(&self, key: MentionKey, seq: u64) -> Result<bool>;
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
    fn outbox_entry(&self, key: MentionKey, seq: u64) -> Result<Option<OutboxEntry>> {
        Store::outbox_entry(self, key, seq)
    }
    fn outbox_history(&self, key: MentionKey) -> Result<Vec<OutboxEntry>> {
        Store::outbox_history(self, key)
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
    fn outbox_abandon_sending(&self, _key: MentionKey, _seq: u64) -> Result<bool> {
        Ok(false)
    }
    fn outbox_was_abandoned(&self, _key: MentionKey, _seq: u64) -> Result<bool> {
        Ok(false)
    }
}

/// What a running service needs of its store beyond the feed and the outbox: what the sync
/// engine writes beside a page (the cost meter, the stream's arrivals, unreadable posts), account
/// removal, and the meter's reads. The service holds its store as a [`SharedStore`], so the same
/// engine, token manager and hub run on sled or on PostgreSQL.
///
/// What is not here yet (undo, search, the team's records, imports) is reached through
/// [`ServiceBackend::sled`]: on PostgreSQL those parts answer that they do not run there yet.
pub trait ServiceBackend: OutboxBackend + std::fmt::Debug {
    /// [`Store::commit_fetched_page_charged`]: a fetched page, its unreadable posts, its cursor
    /// and the read's charge, at once.
    fn commit_fetched_page_charged(
        &self,
        account: AccountId,
        mentions: &[Mention],
        unreadable: &[u64],
        new_cursor: Option<u64>,
        charge: Option<&ReadCharge>,
    ) -> Result<PageCommit>;
    /// [`Store::commit_streamed_post`]: one post the Activity stream delivered (no cursor).
    fn commit_streamed_post(
        &self,
        account: AccountId,
        mention: &Mention,
        charge: Option<&ReadCharge>,
    ) -> Result<PageCommit>;
    /// Up to `limit` mentions matching `filter` strictly newer than `before`, newest first
    /// (the rows just above `before`; with `None`, the oldest `limit`).
    fn page_before(
        &self,
        filter: &FeedFilter,
        before: Option<FeedPos>,
        limit: usize,
    ) -> Result<Vec<Mention>>;
    /// [`Backend::page_after`] over the accounts in `among` only (a member's "all accounts").
    fn page_after_among(
        &self,
        filter: &FeedFilter,
        among: &[AccountId],
        after: Option<FeedPos>,
        limit: usize,
    ) -> Result<Vec<Mention>>;
    /// [`Backend::count`] over the accounts in `among` only.
    fn count_among(&self, filter: &FeedFilter, among: &[AccountId]) -> Result<u64>;
    /// The mention with its current outbox entry (what the API shows of a send).
    fn mention_with_outbox(&self, m: Mention) -> Result<(Mention, Option<OutboxEntry>)>;
    /// Who a mention is assigned to.
    fn assignment(&self, key: MentionKey) -> Result<Option<Assignment>>;
    /// A page of a text search (see `Store::search_page_among`).
    #[allow(clippy::too_many_arguments)]
    fn search_page_among(
        &self,
        filter: &FeedFilter,
        among: Option<&[AccountId]>,
        query: &str,
        after: Option<FeedPos>,
        limit: usize,
        max_scan: usize,
    ) -> Result<SearchPage>;
    /// A page of the "assigned to" filter (see `Store::assigned_page`).
    #[allow(clippy::too_many_arguments)]
    fn assigned_page(
        &self,
        filter: &FeedFilter,
        among: Option<&[AccountId]>,
        assigned: &AssignedFilter,
        query: &str,
        after: Option<FeedPos>,
        limit: usize,
        max_scan: usize,
        count_scan: usize,
    ) -> Result<(SearchPage, Option<u64>)>;
    /// How a stored mention first arrived.
    fn arrival(&self, key: MentionKey) -> Result<Arrival>;
    /// Removes an account (its tokens, cursor, drafts), and its mentions when asked.
    fn remove_account(&self, id: AccountId, delete_mentions: bool) -> Result<()>;
    /// `DiskFull` when the store's disk is nearly full (PostgreSQL: its server's concern).
    fn ensure_room(&self) -> Result<()>;
    /// Makes what was written durable (PostgreSQL: every commit already is).
    fn flush(&self) -> Result<()>;
    fn pricing(&self) -> Pricing;
    fn set_pricing(&self, pricing: Pricing);
    fn record_read(&self, account: AccountId, charge: &ReadCharge) -> Result<Use>;
    fn month_spend(&self, month: Month) -> Result<(u64, HashMap<AccountId, u64>)>;
    fn cost_by_kind(
        &self,
        first: NaiveDate,
        last: NaiveDate,
        account: Option<AccountId>,
    ) -> Result<ByKind>;
    fn note_budget_warning(&self, scope: &str, month: Month) -> Result<bool>;
    fn put_x_usage(&self, usage: &XUsage) -> Result<()>;
    fn x_usage(&self) -> Result<Option<XUsage>>;
    // The team (people and their tokens, the audit log): see `store/team.rs`.
    fn add_person(&self, person: &Person) -> Result<()>;
    fn update_person(&self, person: &Person) -> Result<()>;
    fn person(&self, name: &str) -> Result<Option<Person>>;
    fn people(&self) -> Result<Vec<Person>>;
    fn person_by_token_hash(&self, token_hash: &str) -> Result<Option<Person>>;
    /// The mentions that were theirs (now nobody's), `None` when there is no such person.
    fn remove_person(&self, name: &str) -> Result<Option<Vec<MentionKey>>>;
    fn append_audit(&self, entry: AuditEntry) -> Result<AuditEntry>;
    fn audit(&self, query: &AuditQuery) -> Result<AuditPage>;
    /// Tells whoever syncs that `account` was just added or authorized again, so that it is
    /// (re)loaded and polled now. On PostgreSQL, a change every service hears (the leader acts
    /// on it); on sled nothing: one process holds the store, and a service running it hears of
    /// the login from its client directly.
    fn announce_login(&self, account: AccountId) -> Result<()>;
    /// Tells the other services on the store that `person` is (or no longer is) replying to
    /// `key`, from the service `origin`. On sled nothing: one service holds the store.
    fn share_presence(
        &self,
        key: MentionKey,
        person: &str,
        replying: bool,
        origin: uuid::Uuid,
    ) -> Result<()>;
    /// The sled store itself, for the parts of perch not behind this trait yet; `None` on
    /// PostgreSQL.
    fn sled(&self) -> Option<&Store>;
    /// Where the store is, for messages: a directory, or a database without its password.
    fn location(&self) -> String;
    /// Upkeep a team's shared store needs from time to time (its sync leader runs it): on
    /// PostgreSQL, folding the feed's count deltas. Nothing on sled.
    fn maintain(&self) -> Result<()>;
    /// The cost meter's counters of the days `first..=last`, for one account or all, oldest
    /// day first.
    fn cost_rows_among(
        &self,
        first: NaiveDate,
        last: NaiveDate,
        account: Option<AccountId>,
    ) -> Result<Vec<super::costs::CostRow>>;
    fn put_draft(&self, key: MentionKey, draft: &Draft) -> Result<()>;
    fn delete_draft(&self, key: MentionKey) -> Result<()>;
    /// [`Store::triage_as`]: one chunk of `person`'s triage action, with its undo record.
    fn triage_as(
        &self,
        person: &str,
        action: u64,
        keys: &[MentionKey],
        status: MentionStatus,
        now: DateTime<Utc>,
    ) -> Result<Vec<Mention>>;
    /// [`Store::undo_step_as`].
    fn undo_step_as(
        &self,
        person: &str,
        action: Option<u64>,
        now: DateTime<Utc>,
    ) -> Result<Option<UndoStep>>;
    /// [`Store::last_undo_action_of`].
    fn last_undo_action_of(&self, person: &str) -> Result<Option<UndoAction>>;
    /// [`Store::assign_as`]: with its audit entry.
    fn assign_as(
        &self,
        by: &str,
        key: MentionKey,
        handle: &str,
        person: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<std::result::Result<Option<Assignment>, AssignRefusal>>;
    /// [`Store::assignments`]: at most `ASSIGNMENT_SCAN`, and whether that was all.
    fn assignments(&self) -> Result<(Vec<(MentionKey, Assignment)>, bool)>;
    /// [`Store::daily_counts`].
    fn daily_counts(
        &self,
        account: AccountId,
        today: NaiveDate,
        days: u32,
    ) -> Result<Vec<(NaiveDate, u64)>>;
}

/// A service's store, shared by its engine, outbox, token manager and API.
pub type SharedStore = std::sync::Arc<dyn ServiceBackend>;

/// The refusal of a part of perch that does not run on PostgreSQL yet.
pub fn not_on_postgres(what: &str) -> StoreError {
    StoreError::NotOnPostgres(format!(
        "{what} does not run on the PostgreSQL store yet (README \"The PostgreSQL store (in progress)\")"
    ))
}

impl Store {
    /// This store as a service's [`SharedStore`] (the same store: sled's handle is shared).
    pub fn shared(&self) -> SharedStore {
        std::sync::Arc::new(self.clone())
    }
}

impl ServiceBackend for Store {
    fn maintain(&self) -> Result<()> {
        Ok(())
    }
    fn cost_rows_among(
        &self,
        first: NaiveDate,
        last: NaiveDate,
        account: Option<AccountId>,
    ) -> Result<Vec<super::costs::CostRow>> {
        match account {
            Some(a) => Store::account_cost_rows(self, a, first, last),
            None => Store::cost_rows(self, first, last),
        }
    }
    fn put_draft(&self, key: MentionKey, draft: &Draft) -> Result<()> {
        Store::put_draft(self, key, draft)
    }
    fn delete_draft(&self, key: MentionKey) -> Result<()> {
        Store::delete_draft(self, key)
    }
    fn triage_as(
        &self,
        person: &str,
        action: u64,
        keys: &[MentionKey],
        status: MentionStatus,
        now: DateTime<Utc>,
    ) -> Result<Vec<Mention>> {
        Store::triage_as(self, person, action, keys, status, now)
    }
    fn undo_step_as(
        &self,
        person: &str,
        action: Option<u64>,
        now: DateTime<Utc>,
    ) -> Result<Option<UndoStep>> {
        Store::undo_step_as(self, person, action, now)
    }
    fn last_undo_action_of(&self, person: &str) -> Result<Option<UndoAction>> {
        Store::last_undo_action_of(self, person)
    }
    fn assign_as(
        &self,
        by: &str,
        key: MentionKey,
        handle: &str,
        person: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<std::result::Result<Option<Assignment>, AssignRefusal>> {
        Store::assign_as(self, by, key, handle, person, now)
    }
    fn assignments(&self) -> Result<(Vec<(MentionKey, Assignment)>, bool)> {
        Store::assignments(self)
    }
    fn daily_counts(
        &self,
        account: AccountId,
        today: NaiveDate,
        days: u32,
    ) -> Result<Vec<(NaiveDate, u64)>> {
        Store::daily_counts(self, account, today, days)
    }
    fn commit_fetched_page_charged(
        &self,
        account: AccountId,
        mentions: &[Mention],
        unreadable: &[u64],
        new_cursor: Option<u64>,
        charge: Option<&ReadCharge>,
    ) -> Result<PageCommit> {
        Store::commit_fetched_page_charged(self, account, mentions, unreadable, new_cursor, charge)
    }
    fn commit_streamed_post(
        &self,
        account: AccountId,
        mention: &Mention,
        charge: Option<&ReadCharge>,
    ) -> Result<PageCommit> {
        Store::commit_streamed_post(self, account, mention, charge)
    }
    fn page_before(
        &self,
        filter: &FeedFilter,
        before: Option<FeedPos>,
        limit: usize,
    ) -> Result<Vec<Mention>> {
        Store::page_before(self, filter, before, limit)
    }
    fn page_after_among(
        &self,
        filter: &FeedFilter,
        among: &[AccountId],
        after: Option<FeedPos>,
        limit: usize,
    ) -> Result<Vec<Mention>> {
        Store::page_after_among(self, filter, among, after, limit)
    }
    fn count_among(&self, filter: &FeedFilter, among: &[AccountId]) -> Result<u64> {
        Store::count_among(self, filter, among)
    }
    fn mention_with_outbox(&self, m: Mention) -> Result<(Mention, Option<OutboxEntry>)> {
        Store::mention_with_outbox(self, m)
    }
    fn assignment(&self, key: MentionKey) -> Result<Option<Assignment>> {
        Store::assignment(self, key)
    }
    fn search_page_among(
        &self,
        filter: &FeedFilter,
        among: Option<&[AccountId]>,
        query: &str,
        after: Option<FeedPos>,
        limit: usize,
        max_scan: usize,
    ) -> Result<SearchPage> {
        Store::search_page_among(self, filter, among, query, after, limit, max_scan)
    }
    fn assigned_page(
        &self,
        filter: &FeedFilter,
        among: Option<&[AccountId]>,
        assigned: &AssignedFilter,
        query: &str,
        after: Option<FeedPos>,
        limit: usize,
        max_scan: usize,
        count_scan: usize,
    ) -> Result<(SearchPage, Option<u64>)> {
        Store::assigned_page(
            self, filter, among, assigned, query, after, limit, max_scan, count_scan,
        )
    }
    fn arrival(&self, key: MentionKey) -> Result<Arrival> {
        Store::arrival(self, key)
    }
    fn remove_account(&self, id: AccountId, delete_mentions: bool) -> Result<()> {
        Store::remove_account(self, id, delete_mentions)
    }
    fn ensure_room(&self) -> Result<()> {
        Store::ensure_room(self)
    }
    fn flush(&self) -> Result<()> {
        Store::flush(self)
    }
    fn pricing(&self) -> Pricing {
        Store::pricing(self)
    }
    fn set_pricing(&self, pricing: Pricing) {
        Store::set_pricing(self, pricing)
    }
    fn record_read(&self, account: AccountId, charge: &ReadCharge) -> Result<Use> {
        Store::record_read(self, account, charge)
    }
    fn month_spend(&self, month: Month) -> Result<(u64, HashMap<AccountId, u64>)> {
        Store::month_spend(self, month)
    }
    fn cost_by_kind(
        &self,
        first: NaiveDate,
        last: NaiveDate,
        account: Option<AccountId>,
    ) -> Result<ByKind> {
        Store::cost_by_kind(self, first, last, account)
    }
    fn note_budget_warning(&self, scope: &str, month: Month) -> Result<bool> {
        Store::note_budget_warning(self, scope, month)
    }
    fn put_x_usage(&self, usage: &XUsage) -> Result<()> {
        Store::put_x_usage(self, usage)
    }
    fn x_usage(&self) -> Result<Option<XUsage>> {
        Store::x_usage(self)
    }
    fn add_person(&self, person: &Person) -> Result<()> {
        Store::add_person(self, person)
    }
    fn update_person(&self, person: &Person) -> Result<()> {
        Store::update_person(self, person)
    }
    fn person(&self, name: &str) -> Result<Option<Person>> {
        Store::person(self, name)
    }
    fn people(&self) -> Result<Vec<Person>> {
        Store::people(self)
    }
    fn person_by_token_hash(&self, token_hash: &str) -> Result<Option<Person>> {
        Store::person_by_token_hash(self, token_hash)
    }
    fn remove_person(&self, name: &str) -> Result<Option<Vec<MentionKey>>> {
        Store::remove_person(self, name)
    }
    fn append_audit(&self, entry: AuditEntry) -> Result<AuditEntry> {
        Store::append_audit(self, entry)
    }
    fn audit(&self, query: &AuditQuery) -> Result<AuditPage> {
        Store::audit(self, query)
    }
    fn announce_login(&self, _account: AccountId) -> Result<()> {
        Ok(())
    }
    fn share_presence(
        &self,
        _key: MentionKey,
        _person: &str,
        _replying: bool,
        _origin: uuid::Uuid,
    ) -> Result<()> {
        Ok(())
    }
    fn sled(&self) -> Option<&Store> {
        Some(self)
    }
    fn location(&self) -> String {
        self.dir().display().to_string()
    }
}
