//! The cost estimate as `perch costs`, the status bar, the accounts pane and the stats view show
//! it, read from the store's cost counters (never by scanning mentions). Everything here is an
//! estimate at the configured prices (with their date): X's console has the real bill.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use crate::costs::{self, ByKind, CostKind, Month, micros_to_usd};
use crate::domain::{Account, AccountId, MentionStatus};
use crate::store::{FeedFilter, Result, ServiceBackend};

/// One kind in `by_kind`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct KindJson {
    pub count: u64,
    pub usd: f64,
}

/// One account in `perch costs --json`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AccountCosts {
    pub account: String,
    pub today_usd: f64,
    pub month_usd: f64,
    /// Kinds with no use are left out.
    pub by_kind: BTreeMap<CostKind, KindJson>,
}

/// `perch costs --json`, exactly the shape.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CostReport {
    pub estimate: bool,
    pub currency: &'static str,
    pub prices_date: String,
    pub today_usd: f64,
    pub month_usd: f64,
    pub accounts: Vec<AccountCosts>,
}

fn kinds_json(by: &ByKind) -> BTreeMap<CostKind, KindJson> {
    by.iter()
        .filter(|(_, u)| u.count > 0 || u.micros > 0)
        .map(|(k, u)| {
            (
                *k,
                KindJson {
                    count: u.count,
                    usd: micros_to_usd(u.micros),
                },
            )
        })
        .collect()
}

/// Builds the report of `month` (today's figures are always today's), for every account or one.
pub fn report<S: ServiceBackend + ?Sized>(
    store: &S,
    accounts: &[Account],
    only: Option<AccountId>,
    month: Month,
    now: DateTime<Utc>,
) -> Result<CostReport> {
    let today = costs::billing_day(now);
    let month_rows = store.cost_rows_among(month.first_day(), month.last_day(), None)?;
    let today_rows = store.cost_rows_among(today, today, None)?;
    let sum = |rows: &[crate::store::CostRow], id: Option<AccountId>| -> u64 {
        rows.iter()
            .filter(|r| id.is_none_or(|a| a == r.account))
            .map(|r| r.used.micros)
            .sum()
    };
    let mut out = Vec::new();
    for account in accounts.iter().filter(|a| only.is_none_or(|id| id == a.id)) {
        let mut by: ByKind = BTreeMap::new();
        for row in month_rows.iter().filter(|r| r.account == account.id) {
            by.entry(row.kind).or_default().add(row.used);
        }
        out.push(AccountCosts {
            account: account.handle(),
            today_usd: micros_to_usd(sum(&today_rows, Some(account.id))),
            month_usd: micros_to_usd(sum(&month_rows, Some(account.id))),
            by_kind: kinds_json(&by),
        });
    }
    Ok(CostReport {
        estimate: true,
        currency: "USD",
        prices_date: store.pricing().prices.date,
        today_usd: micros_to_usd(sum(&today_rows, only)),
        month_usd: micros_to_usd(sum(&month_rows, only)),
        accounts: out,
    })
}

/// Today's and this month's totals, in µ$ (the status bar).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Totals {
    pub today: u64,
    pub month: u64,
}

/// Today's estimate per account, and the totals (the accounts pane and the status bar).
pub fn today_and_month<S: ServiceBackend + ?Sized>(
    store: &S,
    now: DateTime<Utc>,
) -> Result<(Totals, BTreeMap<AccountId, u64>)> {
    let today = costs::billing_day(now);
    // The month's total comes from the store's running total (no scan: this runs whenever the
    // dashboard re-reads its accounts); today is one day's few counters.
    let (month_total, _) = store.month_spend(Month::of(today))?;
    let mut per_account: BTreeMap<AccountId, u64> = BTreeMap::new();
    let mut totals = Totals {
        today: 0,
        month: month_total,
    };
    for row in store.cost_rows_among(today, today, None)? {
        totals.today += row.used.micros;
        *per_account.entry(row.account).or_default() += row.used.micros;
    }
    Ok((totals, per_account))
}

/// The stats view's cost section for one account.
#[derive(Clone, Debug, Default, PartialEq, serde::Deserialize, Serialize)]
pub struct AccountCostStats {
    /// µ$ per day, oldest first, the 30 days ending today.
    pub daily: Vec<(NaiveDate, u64)>,
    /// This month per kind.
    pub by_kind: ByKind,
    /// Everything spent since metering began over the mentions handled (replied or ignored):
    /// both are all-time figures, so they describe the same mentions.
    pub per_handled_mention: Option<u64>,
    pub month_total: u64,
    pub prices_date: String,
    /// X's own post count beside perch's (all accounts: X counts per app), when known.
    pub reconciliation: Option<Reconciliation>,
}

pub fn account_cost_stats<S: ServiceBackend + ?Sized>(
    store: &S,
    account: AccountId,
    now: DateTime<Utc>,
) -> Result<AccountCostStats> {
    let today = costs::billing_day(now);
    let first = today
        .checked_sub_days(chrono::Days::new(29))
        .unwrap_or(today);
    let mut per_day: BTreeMap<NaiveDate, u64> = BTreeMap::new();
    for row in store.cost_rows_among(first, today, Some(account))? {
        *per_day.entry(row.day).or_default() += row.used.micros;
    }
    let daily = first
        .iter_days()
        .take_while(|d| *d <= today)
        .map(|d| (d, per_day.get(&d).copied().unwrap_or(0)))
        .collect();
    let month = Month::of(today);
    let by_kind = store.cost_by_kind(month.first_day(), today, Some(account))?;
    let handled = [MentionStatus::Replied, MentionStatus::Ignored]
        .into_iter()
        .map(|status| {
            store.count(&FeedFilter {
                account: Some(account),
                status: Some(status),
            })
        })
        .sum::<Result<u64>>()?;
    let all_time = store.cost_by_kind(NaiveDate::MIN, today, Some(account))?;
    Ok(AccountCostStats {
        daily,
        per_handled_mention: costs::per_handled_mention(&all_time, handled),
        month_total: costs::total(&by_kind),
        by_kind,
        prices_date: store.pricing().prices.date,
        reconciliation: reconciliation(store, now)?,
    })
}

/// perch's post-read count this month beside X's own (`GET /2/usage/tweets`), when known.
#[derive(Clone, Debug, Default, PartialEq, serde::Deserialize, Serialize)]
pub struct Reconciliation {
    pub perch_posts: u64,
    pub x_posts: u64,
    pub fetched_at: DateTime<Utc>,
}

impl Reconciliation {
    /// X's count minus perch's: another app or tool on the same credentials shows as a gap.
    pub fn difference(&self) -> i64 {
        self.x_posts as i64 - self.perch_posts as i64
    }

    /// For the stats view: "X counts 123 posts this month, perch 120: difference +3".
    pub fn short(&self) -> String {
        format!(
            "at {} UTC X counted {} posts read this month, perch {}: difference {:+}",
            self.fetched_at.format("%H:%M"),
            self.x_posts,
            self.perch_posts,
            self.difference()
        )
    }

    pub fn line(&self) -> String {
        format!(
            "X counted {} posts read this month, perch {} (difference {:+}; both as of {} UTC)",
            self.x_posts,
            self.perch_posts,
            self.difference(),
            self.fetched_at.format("%Y-%m-%d %H:%M")
        )
    }
}

pub fn reconciliation<S: ServiceBackend + ?Sized>(
    store: &S,
    now: DateTime<Utc>,
) -> Result<Option<Reconciliation>> {
    let Some(usage) = store.x_usage()? else {
        return Ok(None);
    };
    let month = Month::of(costs::billing_day(usage.fetched_at));
    if month != Month::of(costs::billing_day(now)) {
        // Last month's report says nothing about this month.
        return Ok(None);
    }
    let perch_posts = match usage.perch_posts {
        Some(n) => n,
        None => {
            costs::posts_read(&store.cost_by_kind(month.first_day(), month.last_day(), None)?)
        }
    };
    // X's daily figures cover this month exactly; without them, its cycle total.
    let x_posts = if usage.daily.is_empty() {
        usage.project_usage
    } else {
        usage
            .daily
            .range(month.first_day()..=month.last_day())
            .map(|(_, n)| *n)
            .sum()
    };
    Ok(Some(Reconciliation {
        perch_posts,
        x_posts,
        fetched_at: usage.fetched_at,
    }))
}
