//! What the dashboard reads: a read-only view of the store. `update` and the jobs it starts read
//! through this trait only, so the same app runs over the store itself (tests, the benchmark) and
//! over a connection to the perch service (the dashboard), which answers from its store.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};

use crate::cost_report::Totals;
use crate::costs::Pricing;
use crate::domain::team::OWNER_NAME;
use crate::domain::{Account, AccountId, Mention, MentionKey};
use crate::store::{
    Backend, Draft, FeedFilter, FeedPos, OutboxBackend, SearchPage, ServiceBackend, StoreError,
    UndoAction,
};

/// The store reads the dashboard makes. Every method is a quick, bounded read (a page, a count,
/// one record); none writes. The methods mirror `Store`'s (see there for what each returns).
pub trait FeedSource {
    fn mention(&self, key: MentionKey) -> Result<Option<Mention>, StoreError>;
    fn count(&self, filter: &FeedFilter) -> Result<u64, StoreError>;
    fn account(&self, id: AccountId) -> Result<Option<Account>, StoreError>;
    fn accounts(&self) -> Result<Vec<Account>, StoreError>;
    fn page_before(
        &self,
        filter: &FeedFilter,
        before: Option<FeedPos>,
        limit: usize,
    ) -> Result<Vec<Mention>, StoreError>;
    fn page_after(
        &self,
        filter: &FeedFilter,
        after: Option<FeedPos>,
        limit: usize,
    ) -> Result<Vec<Mention>, StoreError>;
    fn search_page(
        &self,
        filter: &FeedFilter,
        query: &str,
        after: Option<FeedPos>,
        limit: usize,
        max_scan: usize,
    ) -> Result<SearchPage, StoreError>;
    fn daily_counts(
        &self,
        account: AccountId,
        today: NaiveDate,
        days: u32,
    ) -> Result<Vec<(NaiveDate, u64)>, StoreError>;
    fn draft(&self, key: MentionKey) -> Result<Option<Draft>, StoreError>;
    fn last_undo_action(&self) -> Result<Option<UndoAction>, StoreError>;
    /// The figures of one account's stats view (see `stats::account_stats`).
    fn account_stats(
        &self,
        account: &Account,
        now: DateTime<Utc>,
    ) -> Result<crate::domain::AccountStats, StoreError>;
    /// The cost section of one account's stats view.
    fn account_cost_stats(
        &self,
        account: AccountId,
        now: DateTime<Utc>,
    ) -> Result<crate::cost_report::AccountCostStats, StoreError>;
    /// Every outbox entry that still needs something (queued, waiting, unconfirmed...).
    fn outbox_open(&self) -> Result<Vec<crate::store::OutboxEntry>, StoreError>;
    /// The mention's newest outbox entry.
    fn outbox_current(
        &self,
        key: MentionKey,
    ) -> Result<Option<crate::store::OutboxEntry>, StoreError>;
    /// How a mention first arrived: by stream or by poll (issue 12).
    fn arrival(&self, key: MentionKey) -> Result<crate::domain::Arrival, StoreError>;
    /// The prices and app owner replies are priced with.
    fn pricing(&self) -> Pricing;
    /// Today's and this month's estimated spend, and today's per account (the status bar).
    fn cost_today_and_month(
        &self,
        now: DateTime<Utc>,
    ) -> Result<(Totals, BTreeMap<AccountId, u64>), StoreError>;
    /// Who this dashboard is, who has which mention and who is replying to what (issue 16).
    fn team(&self) -> Result<crate::app::team::TeamSnapshot, StoreError>;

    // Combined reads: what one key needs, in one read. Over the service each read is a round
    // trip, and a round trip is thread wake-ups on both sides, hundreds of microseconds at the
    // tail on a busy machine (issue 11); the defaults make them the single reads above.

    /// The newest (`newest`) or oldest `limit` mentions of `filter`, and how many match it: a
    /// jump to either end of the feed, or a new filter.
    fn end_page(
        &self,
        filter: &FeedFilter,
        newest: bool,
        limit: usize,
    ) -> Result<(Vec<Mention>, u64), StoreError> {
        let page = if newest {
            self.page_after(filter, None, limit)?
        } else {
            self.page_before(filter, None, limit)?
        };
        Ok((page, self.count(filter)?))
    }
    /// How each of `keys` arrived (the selected row's mentions), in their order.
    fn arrivals(&self, keys: &[MentionKey]) -> Result<Vec<crate::domain::Arrival>, StoreError> {
        keys.iter().map(|k| self.arrival(*k)).collect()
    }
    /// The stats view's figures of one account (`None` when it is gone).
    fn account_figures(
        &self,
        id: AccountId,
        now: DateTime<Utc>,
        days: u32,
        recent: usize,
    ) -> Result<Option<AccountFigures>, StoreError> {
        let Some(account) = self.account(id)? else {
            return Ok(None);
        };
        let stats = self.account_stats(&account, now)?;
        let daily = self.daily_counts(id, now.date_naive(), days)?;
        let filter = FeedFilter {
            account: Some(id),
            status: None,
        };
        let recent = self.page_after(&filter, None, recent)?;
        let costs = self.account_cost_stats(id, now)?;
        Ok(Some(AccountFigures {
            account,
            stats,
            daily,
            recent,
            costs,
        }))
    }
}

/// Everything the stats view shows of one account, read together (`FeedSource::account_figures`).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct AccountFigures {
    pub account: Account,
    pub stats: crate::domain::AccountStats,
    /// Mentions per day, oldest first, ending today.
    pub daily: Vec<(NaiveDate, u64)>,
    /// The account's newest mentions, newest first.
    pub recent: Vec<Mention>,
    /// The cost section (an estimate): per day, per kind, per handled mention.
    pub costs: crate::cost_report::AccountCostStats,
}

/// The store writes the dashboard's effects make (triage, undo, drafts): carried out by the
/// dashboard's executor, over the service connection, or on a store directly (tests).
pub trait StoreWrites {
    /// Sets `status` on `keys` as one step of undoable action `action`; returns how many changed.
    fn triage(
        &self,
        action: u64,
        keys: &[MentionKey],
        status: crate::domain::MentionStatus,
    ) -> Result<usize, StoreError>;
    fn undo_step(&self, action: Option<u64>) -> Result<Option<crate::store::UndoStep>, StoreError>;
    fn put_draft(&self, key: MentionKey, draft: &Draft) -> Result<(), StoreError>;
    fn delete_draft(&self, key: MentionKey) -> Result<(), StoreError>;
    /// Assigns the mention (of the account `handle`) to `person`, or to nobody, as this
    /// dashboard's person, recorded in the audit log. `Ok(Err(why))`: refused, nothing changed.
    fn assign(
        &self,
        key: MentionKey,
        handle: &str,
        person: Option<&str>,
    ) -> Result<Result<(), String>, StoreError>;
}

/// On a store itself (tests, the benchmark, and a service's sessions through its shared store)
/// the dashboard is the owner.
impl<S: ServiceBackend + ?Sized> StoreWrites for S {
    fn triage(
        &self,
        action: u64,
        keys: &[MentionKey],
        status: crate::domain::MentionStatus,
    ) -> Result<usize, StoreError> {
        triage_as(self, OWNER_NAME, action, keys, status)
    }
    fn undo_step(&self, action: Option<u64>) -> Result<Option<crate::store::UndoStep>, StoreError> {
        ServiceBackend::undo_step_as(self, OWNER_NAME, action, Utc::now())
    }
    fn put_draft(&self, key: MentionKey, draft: &Draft) -> Result<(), StoreError> {
        ServiceBackend::put_draft(self, key, draft)
    }
    fn delete_draft(&self, key: MentionKey) -> Result<(), StoreError> {
        ServiceBackend::delete_draft(self, key)
    }
    fn assign(
        &self,
        key: MentionKey,
        handle: &str,
        person: Option<&str>,
    ) -> Result<Result<(), String>, StoreError> {
        let done = ServiceBackend::assign_as(self, OWNER_NAME, key, handle, person, Utc::now())?;
        Ok(done.map(|_| ()).map_err(|refusal| refusal.to_string()))
    }
}

impl<S: ServiceBackend + ?Sized> FeedSource for S {
    fn mention(&self, key: MentionKey) -> Result<Option<Mention>, StoreError> {
        Backend::mention(self, key)
    }
    fn count(&self, filter: &FeedFilter) -> Result<u64, StoreError> {
        Backend::count(self, filter)
    }
    fn account(&self, id: AccountId) -> Result<Option<Account>, StoreError> {
        Backend::account(self, id)
    }
    fn accounts(&self) -> Result<Vec<Account>, StoreError> {
        Backend::accounts(self)
    }
    fn page_before(
        &self,
        filter: &FeedFilter,
        before: Option<FeedPos>,
        limit: usize,
    ) -> Result<Vec<Mention>, StoreError> {
        ServiceBackend::page_before(self, filter, before, limit)
    }
    fn page_after(
        &self,
        filter: &FeedFilter,
        after: Option<FeedPos>,
        limit: usize,
    ) -> Result<Vec<Mention>, StoreError> {
        Backend::page_after(self, filter, after, limit)
    }
    fn search_page(
        &self,
        filter: &FeedFilter,
        query: &str,
        after: Option<FeedPos>,
        limit: usize,
        max_scan: usize,
    ) -> Result<SearchPage, StoreError> {
        // On the store itself the dashboard is the owner (`/is:mine`).
        crate::store::search_page_as(self, OWNER_NAME, filter, query, after, limit, max_scan)
    }
    fn daily_counts(
        &self,
        account: AccountId,
        today: NaiveDate,
        days: u32,
    ) -> Result<Vec<(NaiveDate, u64)>, StoreError> {
        ServiceBackend::daily_counts(self, account, today, days)
    }
    fn draft(&self, key: MentionKey) -> Result<Option<Draft>, StoreError> {
        OutboxBackend::draft(self, key)
    }
    fn last_undo_action(&self) -> Result<Option<UndoAction>, StoreError> {
        ServiceBackend::last_undo_action_of(self, OWNER_NAME)
    }
    fn account_stats(
        &self,
        account: &Account,
        now: DateTime<Utc>,
    ) -> Result<crate::domain::AccountStats, StoreError> {
        crate::stats::account_stats(self, account, now)
    }
    fn account_cost_stats(
        &self,
        account: AccountId,
        now: DateTime<Utc>,
    ) -> Result<crate::cost_report::AccountCostStats, StoreError> {
        crate::cost_report::account_cost_stats(self, account, now)
    }
    fn outbox_open(&self) -> Result<Vec<crate::store::OutboxEntry>, StoreError> {
        OutboxBackend::outbox_open(self)
    }
    fn outbox_current(
        &self,
        key: MentionKey,
    ) -> Result<Option<crate::store::OutboxEntry>, StoreError> {
        OutboxBackend::outbox_current(self, key)
    }
    fn arrival(&self, key: MentionKey) -> Result<crate::domain::Arrival, StoreError> {
        ServiceBackend::arrival(self, key)
    }
    fn pricing(&self) -> Pricing {
        ServiceBackend::pricing(self)
    }
    fn cost_today_and_month(
        &self,
        now: DateTime<Utc>,
    ) -> Result<(Totals, BTreeMap<AccountId, u64>), StoreError> {
        crate::cost_report::today_and_month(self, now)
    }
    /// On the store itself: the owner, the stored assignments, and nobody replying (presence
    /// lives in a service).
    fn team(&self) -> Result<crate::app::team::TeamSnapshot, StoreError> {
        let (assigned, _) = ServiceBackend::assignments(self)?;
        Ok(crate::app::team::TeamSnapshot {
            me: OWNER_NAME.to_string(),
            assigned: assigned.into_iter().map(|(k, a)| (k, a.person)).collect(),
            replying: Vec::new(),
        })
    }
}

/// One chunk of a triage action by `person` (theirs to undo), as the dashboard makes it;
/// how many mentions it changed.
pub fn triage_as<S: ServiceBackend + ?Sized>(
    store: &S,
    person: &str,
    action: u64,
    keys: &[MentionKey],
    status: crate::domain::MentionStatus,
) -> Result<usize, StoreError> {
    let changed = ServiceBackend::triage_as(store, person, action, keys, status, Utc::now())?;
    // Bulk chunks: flushing between them keeps sled 0.34's background log writes few; a pile
    // of them is what its pool deadlock (sled #804/#1412) needs.
    if keys.len() > 1
        && let Err(e) = store.flush()
    {
        tracing::warn!("could not flush after a bulk change: {e}");
    }
    Ok(changed.len())
}
