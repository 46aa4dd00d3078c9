//! The PostgreSQL store as a service holds it ([`SharedStore`]): the same store, safe to call
//! from anywhere in the service.
//!
//! The `postgres` crate's client is synchronous: each call runs the statement on a small
//! runtime of its own, and tokio refuses that on a thread that is already driving async tasks
//! ("Cannot start a runtime from within a runtime"), as it refuses closing the client there. sled
//! had no such rule, and parts of the service read the store from async code (the hub reading
//! an account to name it in the audit log, the API checking a person's token). Rather than
//! leave each of those a panic waiting to happen, every call made from inside a runtime runs on
//! a scoped thread of its own (the caller waits, as it waited for sled), and the last handle
//! closes its connection off the runtime. Calls from a blocking thread (`spawn_blocking`, the
//! engine's writes) also take the detour: a thread start is tens of microseconds, a round trip
//! to the database a few hundred.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};

use super::PgStore;
use crate::costs::{ByKind, Month, Pricing, Use, XUsage};
use crate::domain::{
    Account, AccountId, Arrival, AuditEntry, Mention, MentionKey, MentionStatus, Person, ReplyKind,
    Response, Tokens,
};
use crate::store::backend::{Backend, OutboxBackend, ServiceBackend, SharedStore};
use crate::store::{AssignRefusal, UndoAction, UndoStep};
use crate::store::{
    AssignedFilter, Assignment, AuditPage, AuditQuery, Draft, FeedFilter, FeedPos, OutboxEntry,
    PageCommit, ReadCharge, Result, SearchPage, Store,
};

/// A [`PgStore`] that may be called, and dropped, from async code.
#[derive(Debug)]
pub struct PgShared {
    /// `None` only while being dropped.
    store: Option<PgStore>,
}

impl PgStore {
    /// This store as a service's [`SharedStore`].
    pub fn into_shared(self) -> SharedStore {
        std::sync::Arc::new(PgShared { store: Some(self) })
    }
}

impl PgShared {
    fn inner(&self) -> &PgStore {
        self.store
            .as_ref()
            .expect("the store is only taken while being dropped")
    }
}

impl Drop for PgShared {
    fn drop(&mut self) {
        if let Some(store) = self.store.take() {
            if tokio::runtime::Handle::try_current().is_ok() {
                // Closing the connection runs a statement: not on a runtime thread.
                let _ = std::thread::Builder::new()
                    .name("perch-pg-close".to_string())
                    .spawn(move || drop(store));
            } else {
                drop(store);
            }
        }
    }
}

/// Runs `f` where the synchronous client may block: here when no runtime is entered, else on
/// a scoped thread of its own.
fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    if tokio::runtime::Handle::try_current().is_err() {
        return f();
    }
    std::thread::scope(|scope| match scope.spawn(f).join() {
        Ok(value) => value,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

impl Backend for PgShared {
    fn put_account(&self, account: &Account) -> Result<()> {
        off_runtime(|| <PgStore as Backend>::put_account(self.inner(), account))
    }
    fn account(&self, id: AccountId) -> Result<Option<Account>> {
        off_runtime(|| <PgStore as Backend>::account(self.inner(), id))
    }
    fn account_by_twitter_id(&self, twitter_id: &str) -> Result<Option<Account>> {
        off_runtime(|| <PgStore as Backend>::account_by_twitter_id(self.inner(), twitter_id))
    }
    fn accounts(&self) -> Result<Vec<Account>> {
        off_runtime(|| <PgStore as Backend>::accounts(self.inner()))
    }
    fn put_tokens(&self, id: AccountId, tokens: &Tokens) -> Result<()> {
        off_runtime(|| <PgStore as Backend>::put_tokens(self.inner(), id, tokens))
    }
    fn tokens(&self, id: AccountId) -> Result<Option<Tokens>> {
        off_runtime(|| <PgStore as Backend>::tokens(self.inner(), id))
    }
    fn cursor(&self, id: AccountId) -> Result<Option<u64>> {
        off_runtime(|| <PgStore as Backend>::cursor(self.inner(), id))
    }
    fn commit_page(
        &self,
        account: AccountId,
        mentions: &[Mention],
        new_cursor: Option<u64>,
    ) -> Result<PageCommit> {
        off_runtime(|| {
            <PgStore as Backend>::commit_page(self.inner(), account, mentions, new_cursor)
        })
    }
    fn mention(&self, key: MentionKey) -> Result<Option<Mention>> {
        off_runtime(|| <PgStore as Backend>::mention(self.inner(), key))
    }
    fn set_status(
        &self,
        key: MentionKey,
        status: MentionStatus,
        now: DateTime<Utc>,
    ) -> Result<Option<Mention>> {
        off_runtime(|| <PgStore as Backend>::set_status(self.inner(), key, status, now))
    }
    fn page_after(
        &self,
        filter: &FeedFilter,
        after: Option<FeedPos>,
        limit: usize,
    ) -> Result<Vec<Mention>> {
        off_runtime(|| <PgStore as Backend>::page_after(self.inner(), filter, after, limit))
    }
    fn count(&self, filter: &FeedFilter) -> Result<u64> {
        off_runtime(|| <PgStore as Backend>::count(self.inner(), filter))
    }
}

impl OutboxBackend for PgShared {
    fn outbox_enqueue_by(
        &self,
        key: MentionKey,
        kind: ReplyKind,
        text: &str,
        person: Option<&str>,
        send_anyway: bool,
        now: DateTime<Utc>,
    ) -> Result<OutboxEntry> {
        off_runtime(|| {
            <PgStore as OutboxBackend>::outbox_enqueue_by(
                self.inner(),
                key,
                kind,
                text,
                person,
                send_anyway,
                now,
            )
        })
    }
    fn outbox_claim_next(&self, now: DateTime<Utc>) -> Result<Option<OutboxEntry>> {
        off_runtime(|| <PgStore as OutboxBackend>::outbox_claim_next(self.inner(), now))
    }
    fn outbox_sent(
        &self,
        key: MentionKey,
        seq: u64,
        response_id: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<Response> {
        off_runtime(|| {
            <PgStore as OutboxBackend>::outbox_sent(self.inner(), key, seq, response_id, now)
        })
    }
    fn outbox_failed(
        &self,
        key: MentionKey,
        seq: u64,
        message: &str,
        now: DateTime<Utc>,
    ) -> Result<OutboxEntry> {
        off_runtime(|| {
            <PgStore as OutboxBackend>::outbox_failed(self.inner(), key, seq, message, now)
        })
    }
    fn outbox_unconfirmed(
        &self,
        key: MentionKey,
        seq: u64,
        message: &str,
        now: DateTime<Utc>,
    ) -> Result<OutboxEntry> {
        off_runtime(|| {
            <PgStore as OutboxBackend>::outbox_unconfirmed(self.inner(), key, seq, message, now)
        })
    }
    fn outbox_waiting(
        &self,
        key: MentionKey,
        seq: u64,
        until: DateTime<Utc>,
        message: &str,
        now: DateTime<Utc>,
    ) -> Result<OutboxEntry> {
        off_runtime(|| {
            <PgStore as OutboxBackend>::outbox_waiting(self.inner(), key, seq, until, message, now)
        })
    }
    fn outbox_retry(&self, key: MentionKey, now: DateTime<Utc>) -> Result<OutboxEntry> {
        off_runtime(|| <PgStore as OutboxBackend>::outbox_retry(self.inner(), key, now))
    }
    fn outbox_cancel(&self, key: MentionKey, now: DateTime<Utc>) -> Result<OutboxEntry> {
        off_runtime(|| <PgStore as OutboxBackend>::outbox_cancel(self.inner(), key, now))
    }
    fn outbox_mark_sent(
        &self,
        key: MentionKey,
        now: DateTime<Utc>,
    ) -> Result<(OutboxEntry, Response)> {
        off_runtime(|| <PgStore as OutboxBackend>::outbox_mark_sent(self.inner(), key, now))
    }
    fn outbox_current(&self, key: MentionKey) -> Result<Option<OutboxEntry>> {
        off_runtime(|| <PgStore as OutboxBackend>::outbox_current(self.inner(), key))
    }
    fn outbox_entry(&self, key: MentionKey, seq: u64) -> Result<Option<OutboxEntry>> {
        off_runtime(|| <PgStore as OutboxBackend>::outbox_entry(self.inner(), key, seq))
    }
    fn outbox_abandon_sending(&self, key: MentionKey, seq: u64) -> Result<bool> {
        off_runtime(|| <PgStore as OutboxBackend>::outbox_abandon_sending(self.inner(), key, seq))
    }
    fn outbox_was_abandoned(&self, key: MentionKey, seq: u64) -> Result<bool> {
        off_runtime(|| <PgStore as OutboxBackend>::outbox_was_abandoned(self.inner(), key, seq))
    }
    fn outbox_history(&self, key: MentionKey) -> Result<Vec<OutboxEntry>> {
        off_runtime(|| <PgStore as OutboxBackend>::outbox_history(self.inner(), key))
    }
    fn outbox_open(&self) -> Result<Vec<OutboxEntry>> {
        off_runtime(|| <PgStore as OutboxBackend>::outbox_open(self.inner()))
    }
    fn outbox_recover(
        &self,
        now: DateTime<Utc>,
        unconfirmed_message: &str,
        not_sent_message: &str,
    ) -> Result<Vec<OutboxEntry>> {
        off_runtime(|| {
            <PgStore as OutboxBackend>::outbox_recover(
                self.inner(),
                now,
                unconfirmed_message,
                not_sent_message,
            )
        })
    }
    fn draft(&self, key: MentionKey) -> Result<Option<Draft>> {
        off_runtime(|| <PgStore as OutboxBackend>::draft(self.inner(), key))
    }
}

impl ServiceBackend for PgShared {
    fn maintain(&self) -> Result<()> {
        off_runtime(|| self.inner().fold_counts())
    }
    fn cost_rows_among(
        &self,
        first: NaiveDate,
        last: NaiveDate,
        account: Option<AccountId>,
    ) -> Result<Vec<crate::store::costs::CostRow>> {
        off_runtime(|| self.inner().cost_rows_of(first, last, account))
    }
    fn put_draft(&self, key: MentionKey, draft: &Draft) -> Result<()> {
        off_runtime(|| self.inner().put_draft(key, draft))
    }
    fn delete_draft(&self, key: MentionKey) -> Result<()> {
        off_runtime(|| self.inner().delete_draft(key))
    }
    fn triage_as(
        &self,
        person: &str,
        action: u64,
        keys: &[MentionKey],
        status: MentionStatus,
        now: DateTime<Utc>,
    ) -> Result<Vec<Mention>> {
        off_runtime(|| self.inner().triage_as(person, action, keys, status, now))
    }
    fn undo_step_as(
        &self,
        person: &str,
        action: Option<u64>,
        now: DateTime<Utc>,
    ) -> Result<Option<UndoStep>> {
        off_runtime(|| self.inner().undo_step_as(person, action, now))
    }
    fn last_undo_action_of(&self, person: &str) -> Result<Option<UndoAction>> {
        off_runtime(|| self.inner().last_undo_action_of(person))
    }
    fn assign_as(
        &self,
        by: &str,
        key: MentionKey,
        handle: &str,
        person: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<std::result::Result<Option<Assignment>, AssignRefusal>> {
        off_runtime(|| self.inner().assign_as(by, key, handle, person, now))
    }
    fn assignments(&self) -> Result<(Vec<(MentionKey, Assignment)>, bool)> {
        off_runtime(|| self.inner().assignments_upto(crate::store::ASSIGNMENT_SCAN))
    }
    fn daily_counts(
        &self,
        account: AccountId,
        today: NaiveDate,
        days: u32,
    ) -> Result<Vec<(NaiveDate, u64)>> {
        off_runtime(|| self.inner().daily_counts(account, today, days))
    }
    fn commit_fetched_page_charged(
        &self,
        account: AccountId,
        mentions: &[Mention],
        unreadable: &[u64],
        new_cursor: Option<u64>,
        charge: Option<&ReadCharge>,
    ) -> Result<PageCommit> {
        off_runtime(|| {
            <PgStore as ServiceBackend>::commit_fetched_page_charged(
                self.inner(),
                account,
                mentions,
                unreadable,
                new_cursor,
                charge,
            )
        })
    }
    fn commit_streamed_post(
        &self,
        account: AccountId,
        mention: &Mention,
        charge: Option<&ReadCharge>,
    ) -> Result<PageCommit> {
        off_runtime(|| {
            <PgStore as ServiceBackend>::commit_streamed_post(
                self.inner(),
                account,
                mention,
                charge,
            )
        })
    }
    fn page_before(
        &self,
        filter: &FeedFilter,
        before: Option<FeedPos>,
        limit: usize,
    ) -> Result<Vec<Mention>> {
        off_runtime(|| {
            <PgStore as ServiceBackend>::page_before(self.inner(), filter, before, limit)
        })
    }
    fn page_after_among(
        &self,
        filter: &FeedFilter,
        among: &[AccountId],
        after: Option<FeedPos>,
        limit: usize,
    ) -> Result<Vec<Mention>> {
        off_runtime(|| {
            <PgStore as ServiceBackend>::page_after_among(self.inner(), filter, among, after, limit)
        })
    }
    fn count_among(&self, filter: &FeedFilter, among: &[AccountId]) -> Result<u64> {
        off_runtime(|| <PgStore as ServiceBackend>::count_among(self.inner(), filter, among))
    }
    fn mention_with_outbox(&self, m: Mention) -> Result<(Mention, Option<OutboxEntry>)> {
        off_runtime(|| <PgStore as ServiceBackend>::mention_with_outbox(self.inner(), m))
    }
    fn assignment(&self, key: MentionKey) -> Result<Option<Assignment>> {
        off_runtime(|| <PgStore as ServiceBackend>::assignment(self.inner(), key))
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
        off_runtime(|| {
            <PgStore as ServiceBackend>::search_page_among(
                self.inner(),
                filter,
                among,
                query,
                after,
                limit,
                max_scan,
            )
        })
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
        off_runtime(|| {
            <PgStore as ServiceBackend>::assigned_page(
                self.inner(),
                filter,
                among,
                assigned,
                query,
                after,
                limit,
                max_scan,
                count_scan,
            )
        })
    }
    fn arrival(&self, key: MentionKey) -> Result<Arrival> {
        off_runtime(|| <PgStore as ServiceBackend>::arrival(self.inner(), key))
    }
    fn remove_account(&self, id: AccountId, delete_mentions: bool) -> Result<()> {
        off_runtime(|| {
            <PgStore as ServiceBackend>::remove_account(self.inner(), id, delete_mentions)
        })
    }
    fn ensure_room(&self) -> Result<()> {
        off_runtime(|| <PgStore as ServiceBackend>::ensure_room(self.inner()))
    }
    fn flush(&self) -> Result<()> {
        off_runtime(|| <PgStore as ServiceBackend>::flush(self.inner()))
    }
    fn pricing(&self) -> Pricing {
        <PgStore as ServiceBackend>::pricing(self.inner())
    }
    fn set_pricing(&self, pricing: Pricing) {
        <PgStore as ServiceBackend>::set_pricing(self.inner(), pricing)
    }
    fn record_read(&self, account: AccountId, charge: &ReadCharge) -> Result<Use> {
        off_runtime(|| <PgStore as ServiceBackend>::record_read(self.inner(), account, charge))
    }
    fn month_spend(&self, month: Month) -> Result<(u64, HashMap<AccountId, u64>)> {
        off_runtime(|| <PgStore as ServiceBackend>::month_spend(self.inner(), month))
    }
    fn cost_by_kind(
        &self,
        first: NaiveDate,
        last: NaiveDate,
        account: Option<AccountId>,
    ) -> Result<ByKind> {
        off_runtime(|| {
            <PgStore as ServiceBackend>::cost_by_kind(self.inner(), first, last, account)
        })
    }
    fn note_budget_warning(&self, scope: &str, month: Month) -> Result<bool> {
        off_runtime(|| <PgStore as ServiceBackend>::note_budget_warning(self.inner(), scope, month))
    }
    fn put_x_usage(&self, usage: &XUsage) -> Result<()> {
        off_runtime(|| <PgStore as ServiceBackend>::put_x_usage(self.inner(), usage))
    }
    fn x_usage(&self) -> Result<Option<XUsage>> {
        off_runtime(|| <PgStore as ServiceBackend>::x_usage(self.inner()))
    }
    fn add_person(&self, person: &Person) -> Result<()> {
        off_runtime(|| <PgStore as ServiceBackend>::add_person(self.inner(), person))
    }
    fn update_person(&self, person: &Person) -> Result<()> {
        off_runtime(|| <PgStore as ServiceBackend>::update_person(self.inner(), person))
    }
    fn person(&self, name: &str) -> Result<Option<Person>> {
        off_runtime(|| <PgStore as ServiceBackend>::person(self.inner(), name))
    }
    fn people(&self) -> Result<Vec<Person>> {
        off_runtime(|| <PgStore as ServiceBackend>::people(self.inner()))
    }
    fn person_by_token_hash(&self, token_hash: &str) -> Result<Option<Person>> {
        off_runtime(|| <PgStore as ServiceBackend>::person_by_token_hash(self.inner(), token_hash))
    }
    fn remove_person(&self, name: &str) -> Result<Option<Vec<MentionKey>>> {
        off_runtime(|| <PgStore as ServiceBackend>::remove_person(self.inner(), name))
    }
    fn append_audit(&self, entry: AuditEntry) -> Result<AuditEntry> {
        off_runtime(|| <PgStore as ServiceBackend>::append_audit(self.inner(), entry))
    }
    fn audit(&self, query: &AuditQuery) -> Result<AuditPage> {
        off_runtime(|| <PgStore as ServiceBackend>::audit(self.inner(), query))
    }
    fn announce_login(&self, account: AccountId) -> Result<()> {
        off_runtime(|| <PgStore as ServiceBackend>::announce_login(self.inner(), account))
    }
    fn share_presence(
        &self,
        key: MentionKey,
        person: &str,
        replying: bool,
        origin: uuid::Uuid,
    ) -> Result<()> {
        off_runtime(|| {
            <PgStore as ServiceBackend>::share_presence(self.inner(), key, person, replying, origin)
        })
    }
    fn sled(&self) -> Option<&Store> {
        None
    }
    fn location(&self) -> String {
        <PgStore as ServiceBackend>::location(self.inner())
    }
}
