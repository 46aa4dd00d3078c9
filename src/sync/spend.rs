//! The money gate: before every read the engine sends, it asks here whether the monthly budgets
//! still allow it, against what the store has recorded this month plus what requests already on
//! their way may still cost. A page is also sized to what is left (`max_results`), so even a page
//! of nothing but new posts cannot take the spend past the budget.
//!
//! The rules themselves are pure (`crate::costs`); this holds the few numbers that change while
//! the engine runs: the in-flight reservations.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

use crate::costs::{self, BudgetReached, Budgets, Month};
use crate::domain::{Account, AccountId};
use crate::store::SharedStore;

/// Shared by every poll of one engine.
#[derive(Clone, Debug)]
pub struct SpendGate {
    store: SharedStore,
    /// Shared by every clone, so a budget changed while the engine runs (the config file was
    /// edited) applies to polls already scheduled.
    budgets: Arc<std::sync::RwLock<Budgets>>,
    reserved: Arc<Mutex<HashMap<AccountId, u64>>>,
}

/// What a read may cost at most, held until its page is committed (then the store has the real
/// charge) or the request failed (then it cost nothing). Dropping it releases it.
#[derive(Debug)]
pub struct Reservation {
    gate: Option<SpendGate>,
    account: AccountId,
    micros: u64,
    /// The page size that keeps the spend within the budget.
    pub max_results: u32,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if let Some(gate) = &self.gate {
            let mut reserved = gate.lock();
            if let Some(r) = reserved.get_mut(&self.account) {
                *r = r.saturating_sub(self.micros);
            }
        }
    }
}

/// Where the month stands for one account.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Standing {
    pub month: Month,
    pub spent_all: u64,
    pub spent_account: u64,
}

impl SpendGate {
    pub fn new(store: SharedStore, budgets: Budgets) -> SpendGate {
        SpendGate {
            store,
            budgets: Arc::new(std::sync::RwLock::new(budgets)),
            reserved: Arc::default(),
        }
    }

    /// The budgets in force now.
    pub fn budgets(&self) -> Budgets {
        self.budgets
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Replaces the budgets (a raised budget lets budget-paused accounts resume).
    pub fn set_budgets(&self, budgets: Budgets) {
        *self
            .budgets
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = budgets;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<AccountId, u64>> {
        self.reserved
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// What is recorded this month (UTC), with reservations of requests on their way.
    pub fn standing(&self, account: AccountId, now: DateTime<Utc>) -> Result<Standing, String> {
        let reserved = self.lock();
        self.standing_with(&reserved, account, now)
    }

    fn standing_with(
        &self,
        reserved: &HashMap<AccountId, u64>,
        account: AccountId,
        now: DateTime<Utc>,
    ) -> Result<Standing, String> {
        let month = Month::of(costs::billing_day(now));
        let (total, per) = self
            .store
            .month_spend(month)
            .map_err(|e| format!("cannot read this month's costs: {e}"))?;
        let reserved_all: u64 = reserved.values().sum();
        let reserved_account = reserved.get(&account).copied().unwrap_or(0);
        Ok(Standing {
            month,
            spent_all: total.saturating_add(reserved_all),
            spent_account: per
                .get(&account)
                .copied()
                .unwrap_or(0)
                .saturating_add(reserved_account),
        })
    }

    /// Whether a budget stops this account's reads now (without reserving anything).
    pub fn reached(&self, account: &Account, now: DateTime<Utc>) -> Option<BudgetReached> {
        let budgets = self.budgets();
        if budgets == Budgets::default() {
            return None;
        }
        let standing = match self.standing(account.id, now) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("{e}");
                return None;
            }
        };
        self.verdict(&budgets, account, standing).err()
    }

    /// Asks to send one mentions read for `account`: the page size the budget allows, reserved
    /// until the returned value is dropped, or the budget that is reached.
    pub fn before_read(
        &self,
        account: &Account,
        now: DateTime<Utc>,
    ) -> Result<Reservation, BudgetReached> {
        let free = Reservation {
            gate: None,
            account: account.id,
            micros: 0,
            max_results: costs::MAX_PAGE,
        };
        let budgets = self.budgets();
        if budgets == Budgets::default() {
            return Ok(free);
        }
        // Check and reserve under one lock: two polls at once must not both spend what is left.
        let mut reserved = self.lock();
        let standing = match self.standing_with(&reserved, account.id, now) {
            Ok(s) => s,
            Err(e) => {
                // Unknown spend: refuse rather than risk overrunning the budget.
                tracing::warn!("{e}");
                return Err(BudgetReached {
                    spent: 0,
                    budget: budgets.monthly_micros.unwrap_or(0),
                    month: Month::of(costs::billing_day(now)),
                    account: false,
                    too_little_left: false,
                });
            }
        };
        let max_results = self.verdict(&budgets, account, standing)?;
        let unit = self.store.pricing().prices.of(self
            .store
            .pricing()
            .mentions_read_kind(&account.twitter_username));
        let micros = unit.saturating_mul(u64::from(max_results));
        *reserved.entry(account.id).or_default() += micros;
        drop(reserved);
        Ok(Reservation {
            gate: Some(self.clone()),
            micros,
            max_results,
            ..free
        })
    }

    /// The page size allowed, or the budget that stops it.
    fn verdict(
        &self,
        budgets: &Budgets,
        account: &Account,
        s: Standing,
    ) -> Result<u32, BudgetReached> {
        let username = &account.twitter_username;
        if let Some(reached) = budgets.reached(s.month, username, s.spent_all, s.spent_account) {
            return Err(reached);
        }
        let pricing = self.store.pricing();
        let unit = pricing.prices.of(pricing.mentions_read_kind(username));
        let remaining = budgets.remaining(username, s.spent_all, s.spent_account);
        costs::affordable_page(remaining, unit).ok_or_else(|| {
            // Not even the smallest page X serves fits in what is left: reached for reads.
            let own = budgets.for_account(username);
            let global_left = budgets
                .monthly_micros
                .map(|b| b.saturating_sub(s.spent_all));
            let account_is_tighter = match (own, global_left) {
                (Some(b), Some(g)) => b.saturating_sub(s.spent_account) < g,
                (Some(_), None) => true,
                _ => false,
            };
            if account_is_tighter {
                BudgetReached {
                    spent: s.spent_account,
                    budget: own.unwrap_or(0),
                    month: s.month,
                    account: true,
                    too_little_left: true,
                }
            } else {
                BudgetReached {
                    spent: s.spent_all,
                    budget: budgets.monthly_micros.unwrap_or(0),
                    month: s.month,
                    account: false,
                    too_little_left: true,
                }
            }
        })
    }

    /// The 80% warnings due now (each once a month, remembered in the store): one line each.
    pub fn warnings(&self, accounts: &[Account], now: DateTime<Utc>) -> Vec<String> {
        let month = Month::of(costs::billing_day(now));
        let Ok((total, per)) = self.store.month_spend(month) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let budgets = self.budgets();
        let line = |budget: u64| budget.saturating_mul(costs::WARN_AT_PERCENT) / 100;
        if let Some(budget) = budgets.monthly_micros
            && budget > 0
            && total >= line(budget)
            && self
                .store
                .note_budget_warning("all", month)
                .unwrap_or(false)
        {
            out.push(format!(
                "cost estimate: {} of the {} monthly budget used ({}%)",
                costs::format_usd_cents(total),
                costs::format_usd_cents(budget),
                total.saturating_mul(100) / budget
            ));
        }
        for account in accounts {
            let Some(budget) = budgets.for_account(&account.twitter_username) else {
                continue;
            };
            let spent = per.get(&account.id).copied().unwrap_or(0);
            if budget > 0
                && spent >= line(budget)
                && self
                    .store
                    .note_budget_warning(&account.twitter_username.to_lowercase(), month)
                    .unwrap_or(false)
            {
                out.push(format!(
                    "cost estimate: {} has used {} of its {} monthly budget",
                    account.handle(),
                    costs::format_usd_cents(spent),
                    costs::format_usd_cents(budget)
                ));
            }
        }
        out
    }
}

/// Reads X's own usage count (`GET /2/usage/tweets`, app Bearer token) and keeps it in the store
/// with perch's own post-read count of the same moment, so the two compare like for like.
pub async fn refresh_x_usage(
    client: &crate::x::XClient,
    store: &SharedStore,
    bearer: &crate::domain::Secret,
) -> Result<crate::costs::XUsage, String> {
    let mut usage = client
        .usage_tweets(bearer)
        .await
        .map_err(|e| format!("reading X's usage count failed: {e}"))?;
    let store = store.clone();
    tokio::task::spawn_blocking(move || {
        let month = Month::of(costs::billing_day(usage.fetched_at));
        let by = store.cost_by_kind(month.first_day(), month.last_day(), None)?;
        usage.perch_posts = Some(costs::posts_read(&by));
        store.put_x_usage(&usage)?;
        Ok::<_, crate::store::StoreError>(usage)
    })
    .await
    .map_err(|e| format!("the store task failed: {e}"))?
    .map_err(|e| format!("cannot keep X's usage report: {e}"))
}

/// For one-shot commands: an account the budget paused is resumed when the budget allows again
/// (a new month, a raised budget); while it does not, the pause message comes back instead.
pub fn lift_budget_pause(store: &SharedStore, gate: &SpendGate, account: Account) -> BudgetPause {
    let budget_paused = account.is_active
        && account.sync_status == crate::domain::SyncStatus::Paused
        && account
            .error_message
            .as_deref()
            .is_some_and(|m| m.starts_with(costs::BUDGET_REACHED_PREFIX));
    if !budget_paused {
        return BudgetPause::Go(account);
    }
    if let Some(reached) = gate.reached(&account, Utc::now()) {
        let message = reached.message();
        return BudgetPause::Holds(account, message);
    }
    let mut resumed = account;
    resumed.sync_status = crate::domain::SyncStatus::Active;
    resumed.error_message = None;
    resumed.updated_at = Utc::now();
    if let Err(e) = store.put_account(&resumed) {
        tracing::warn!("cannot record that the budget allows polling again: {e}");
    }
    BudgetPause::Go(resumed)
}

/// What [`lift_budget_pause`] found.
pub enum BudgetPause {
    /// Fetch it (it was not paused by the budget, or the budget allows it again).
    Go(Account),
    /// The budget still holds it, with the pause message.
    Holds(Account, String),
}
