//! What the dashboard knows about costs: today's and this month's estimate (status bar), today's
//! per account (accounts pane), and what a reply will cost (the composer), read from the store's
//! cost counters whenever the accounts are re-read.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::app::source::FeedSource;
use crate::cost_report::Totals;
use crate::costs::{Budgets, CostKind, Month};
use crate::domain::ReplyKind;
use crate::domain::{AccountId, Mention};
use crate::store::StoreError;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct CostMeter {
    pub totals: Totals,
    pub today_by_account: BTreeMap<AccountId, u64>,
    pub prices_date: String,
    pub month: Option<Month>,
    /// The global budget is reached (replies and DMs then ask "over budget: send anyway?").
    pub over_budget: bool,
}

impl CostMeter {
    pub fn load(
        store: &dyn FeedSource,
        budgets: &Budgets,
        now: DateTime<Utc>,
    ) -> Result<CostMeter, StoreError> {
        let (totals, today_by_account) = store.cost_today_and_month(now)?;
        Ok(CostMeter {
            over_budget: budgets.monthly_micros.is_some_and(|b| totals.month >= b),
            totals,
            today_by_account,
            prices_date: store.pricing().prices.date,
            month: Some(Month::of(crate::costs::billing_day(now))),
        })
    }

    pub fn today_of(&self, account: AccountId) -> u64 {
        self.today_by_account.get(&account).copied().unwrap_or(0)
    }
}

/// What sending `text` in answer to `mention` will be billed as, and at what price.
pub fn send_price(
    store: &dyn FeedSource,
    kind: ReplyKind,
    text: &str,
    mention: &Mention,
) -> (CostKind, u64) {
    let kind = crate::store::send_kind(kind, text, mention);
    (kind, store.pricing().prices.of(kind))
}

/// The composer's warning before a reply that costs $0.20 ("this reply costs $0.20: it contains
/// a link"), or `None`.
pub fn link_warning(
    store: &dyn FeedSource,
    kind: ReplyKind,
    text: &str,
    mention: &Mention,
) -> Option<String> {
    let (kind, price) = send_price(store, kind, text, mention);
    (kind == CostKind::ReplyWithUrl).then(|| {
        format!(
            "this reply costs {}: it contains a link",
            crate::costs::format_usd_cents(price)
        )
    })
}
