//! The cost meter's records: what each account spent per UTC day and per kind, and the per-day
//! set of resources already charged (the same-UTC-day de-duplication). Every charge is staged
//! into the batch of the write that caused it (a page commit, an outbox transition to `sent`), so
//! a crash or kill can never keep one without the other: no use is lost or counted twice.
//!
//! Keys (tags distinct from `keys.rs` and `outbox.rs`):
//! - `$ | account | day (u32 BE, keys::day_number) | kind code` → count (u64 BE) ‖ µ$ (u64 BE).
//!   Account first: one account's 30 days (the stats view) or whole history (the price of a
//!   handled mention) is one short range read whatever the number of accounts. Reads over every
//!   account (a month for the budget, today for the status bar) skip from account to account, so
//!   they cost accounts × days asked for, never the whole history. The budget's month total is
//!   read once and then kept up to date in memory by every applied charge.
//! - `% | day | resource class | X id (u64 BE)` → the account charged. Only today's set is
//!   needed; older days are pruned a bounded chunk at a time by later charges.
//! - `\x00xusage` → JSON of the last `GET /2/usage/tweets` answer (the reconciliation).
//! - `\x00costwarn` → JSON of which budget warnings were given, so each is given once a month.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, RwLock};

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sled::Batch;

use super::{Result, Store, StoreError, keys};
use crate::costs::{ByKind, CostKind, Month, Pricing, ResourceClass, Use, XUsage};
use crate::domain::ReplyKind;
use crate::domain::{AccountId, Mention, ReferenceKind};

/// Cost counter: `$ | day | account | kind`.
pub const COST: u8 = b'$';
/// Resource charged on a day: `% | day | class | id`.
pub const SEEN: u8 = b'%';
/// The last usage report from X.
pub const X_USAGE_KEY: &[u8] = b"\x00xusage";
/// Budget warnings already given.
pub const WARNED_KEY: &[u8] = b"\x00costwarn";

/// Older seen-set entries removed per charge at most (bounds the work one write does).
const PRUNE_CHUNK: usize = 5_000;

/// The meter's shared state in a `Store`: the pricing every charge uses (set from config by
/// whoever opens the store; COSTS.md's defaults until then) and how far the seen set is pruned.
#[derive(Debug, Default)]
pub(crate) struct CostState {
    pricing: RwLock<Pricing>,
    /// Seen-set entries of days before this one are gone.
    pruned_before: Mutex<Option<NaiveDate>>,
    /// This month's spend, kept up to date by every applied charge, so the budget check before
    /// each request does not scan the month's counters (`None` until first asked).
    month: Mutex<Option<MonthSpend>>,
}

#[derive(Clone, Debug)]
struct MonthSpend {
    month: Month,
    total: u64,
    per_account: HashMap<AccountId, u64>,
}

/// The resources one successful read returned, to be charged with the write that stores them.
#[derive(Clone, Debug, PartialEq)]
pub struct ReadCharge {
    /// When X answered (the UTC day it is billed on).
    pub at: DateTime<Utc>,
    pub class: ResourceClass,
    pub kind: CostKind,
    /// X's ids of the resources returned (every post in `data`, kept or not).
    pub ids: Vec<u64>,
}

/// One cost counter as stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CostRow {
    pub day: NaiveDate,
    pub account: AccountId,
    pub kind: CostKind,
    pub used: Use,
}

/// Which warnings were given: scope ("all" or a handle) → the month.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Warned(pub BTreeMap<String, String>);

/// The spend (µ$) of `rows`, in all and per account: the budget's figure, on either backend.
pub(crate) fn spend_of(rows: impl IntoIterator<Item = CostRow>) -> (u64, HashMap<AccountId, u64>) {
    let mut per_account: HashMap<AccountId, u64> = HashMap::new();
    let mut total = 0u64;
    for row in rows {
        total = total.saturating_add(row.used.micros);
        let spent = per_account.entry(row.account).or_default();
        *spent = spent.saturating_add(row.used.micros);
    }
    (total, per_account)
}

/// The uses of `rows` per kind, on either backend.
pub(crate) fn by_kind_of(rows: impl IntoIterator<Item = CostRow>) -> ByKind {
    let mut by: ByKind = BTreeMap::new();
    for row in rows {
        by.entry(row.kind).or_default().add(row.used);
    }
    by
}

fn cost_key(day: NaiveDate, account: AccountId, kind: CostKind) -> [u8; 22] {
    let mut k = [0u8; 22];
    k[..21].copy_from_slice(&account_day_prefix(account, day));
    k[21] = kind.code();
    k
}

/// `$ | account | day`.
fn account_day_prefix(account: AccountId, day: NaiveDate) -> [u8; 21] {
    let mut k = [0u8; 21];
    k[..17].copy_from_slice(&keys::account_key(COST, account));
    k[17..21].copy_from_slice(&keys::day_number(day).to_be_bytes());
    k
}

fn day_prefix(tag: u8, day: NaiveDate) -> [u8; 5] {
    let mut k = [0u8; 5];
    k[0] = tag;
    k[1..5].copy_from_slice(&keys::day_number(day).to_be_bytes());
    k
}

fn seen_key(day: NaiveDate, class: ResourceClass, id: u64) -> [u8; 14] {
    let mut k = [0u8; 14];
    k[..5].copy_from_slice(&day_prefix(SEEN, day));
    k[5] = class.code();
    k[6..].copy_from_slice(&id.to_be_bytes());
    k
}

fn day_from_number(n: u32) -> NaiveDate {
    let days = i64::from((n ^ 0x8000_0000) as i32);
    NaiveDate::from_ymd_opt(1970, 1, 1)
        .and_then(|e| e.checked_add_signed(chrono::Duration::days(days)))
        .unwrap_or(NaiveDate::MIN)
}

fn encode_use(u: Use) -> [u8; 16] {
    let mut v = [0u8; 16];
    v[..8].copy_from_slice(&u.count.to_be_bytes());
    v[8..].copy_from_slice(&u.micros.to_be_bytes());
    v
}

fn decode_use(v: &[u8]) -> Option<Use> {
    let count = keys::read_u64(v.get(..8)?)?;
    let micros = keys::read_u64(v.get(8..16)?)?;
    Some(Use { count, micros })
}

fn decode_row(k: &[u8], v: &[u8]) -> Option<CostRow> {
    if k.len() != 22 || k[0] != COST {
        return None;
    }
    let account = keys::key_account(k)?;
    let day = day_from_number(u32::from_be_bytes(k[17..21].try_into().ok()?));
    let kind = CostKind::from_code(k[21])?;
    Some(CostRow {
        day,
        account,
        kind,
        used: decode_use(v)?,
    })
}

/// The kind the send `entry` (just sent) is billed as; `mention` is `None` when it is no longer
/// stored (its account was removed): priced as summoned, the cheaper reading.
pub(crate) fn sent_entry_kind(entry: &super::OutboxEntry, mention: Option<&Mention>) -> CostKind {
    match mention {
        Some(m) => send_kind(entry.kind, &entry.text, m),
        None if entry.kind == ReplyKind::Dm => CostKind::DmSent,
        None => crate::costs::reply_kind(&entry.text, true),
    }
}

/// The kind a sent reply or DM is billed as.
pub fn send_kind(kind: ReplyKind, text: &str, mention: &Mention) -> CostKind {
    match kind {
        ReplyKind::Dm => CostKind::DmSent,
        ReplyKind::Public => {
            let quoted = mention
                .referenced_posts
                .iter()
                .filter(|r| r.kind == ReferenceKind::Quoted)
                .filter_map(|r| r.author_username.as_deref());
            let summoned =
                crate::costs::is_summoned(&mention.sent_to.username, &mention.text, quoted);
            crate::costs::reply_kind(text, summoned)
        }
    }
}

/// Counter values a batch being built will write (so two charges in one batch add up), and the
/// amounts added, for the month cache once the batch is applied.
#[derive(Default)]
pub(crate) struct StagedUses {
    values: HashMap<[u8; 22], Use>,
    added: Vec<(NaiveDate, AccountId, u64)>,
}

impl Store {
    /// Sets the prices and the app owner every later charge uses.
    pub fn set_pricing(&self, pricing: Pricing) {
        *self
            .costs
            .pricing
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = pricing;
    }

    /// The pricing charges use now.
    pub fn pricing(&self) -> Pricing {
        self.costs
            .pricing
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Adds `add` to the counter of (`day`, `account`, `kind`) in `batch`.
    pub(crate) fn stage_use(
        &self,
        staged: &mut StagedUses,
        batch: &mut Batch,
        day: NaiveDate,
        account: AccountId,
        kind: CostKind,
        add: Use,
    ) -> Result<()> {
        if add.count == 0 && add.micros == 0 {
            return Ok(());
        }
        let key = cost_key(day, account, kind);
        let mut used = match staged.values.get(&key) {
            Some(u) => *u,
            None => match self.get(&key)? {
                Some(v) => decode_use(&v).ok_or_else(|| StoreError::Decode {
                    what: format!("cost counter of account {account} on {day}"),
                    detail: format!("expected 16 bytes, found {}", v.len()),
                })?,
                None => Use::default(),
            },
        };
        used.add(add);
        batch.insert(&key, &encode_use(used));
        staged.values.insert(key, used);
        staged.added.push((day, account, add.micros));
        Ok(())
    }

    /// Tells the month cache what a batch that was just applied added.
    pub(crate) fn note_applied(&self, staged: &StagedUses) {
        let mut cache = self
            .costs
            .month
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(m) = cache.as_mut() {
            for (day, account, micros) in &staged.added {
                if Month::of(*day) == m.month {
                    m.total = m.total.saturating_add(*micros);
                    *m.per_account.entry(*account).or_default() += micros;
                }
            }
        }
    }

    /// Stages the charge for a read: the resources not yet charged today, at the price of
    /// `charge.kind`, and marks them charged. The caller holds the write lock until the batch is
    /// applied (so two pages cannot both charge one post). Returns what was charged.
    pub(crate) fn stage_read_charge(
        &self,
        staged: &mut StagedUses,
        batch: &mut Batch,
        account: AccountId,
        charge: &ReadCharge,
    ) -> Result<Use> {
        let day = crate::costs::billing_day(charge.at);
        self.stage_seen_prune(batch, day)?;
        let mut lookup_error = None;
        let charged = crate::costs::charged_today(&charge.ids, |id| {
            match self.tree.contains_key(seen_key(day, charge.class, id)) {
                Ok(seen) => seen,
                Err(e) => {
                    lookup_error = Some(e);
                    true
                }
            }
        });
        if let Some(e) = lookup_error {
            return Err(self.err(e));
        }
        for id in &charged {
            batch.insert(&seen_key(day, charge.class, *id), account.as_bytes());
        }
        let price = self.pricing().prices.of(charge.kind);
        let used = Use {
            count: charged.len() as u64,
            micros: price.saturating_mul(charged.len() as u64),
        };
        self.stage_use(staged, batch, day, account, charge.kind, used)?;
        Ok(used)
    }

    /// Removes a chunk of seen-set entries older than `today` (they no longer de-duplicate
    /// anything: the window resets at midnight UTC).
    fn stage_seen_prune(&self, batch: &mut Batch, today: NaiveDate) -> Result<()> {
        let mut pruned = self
            .costs
            .pruned_before
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if *pruned == Some(today) {
            return Ok(());
        }
        let end = day_prefix(SEEN, today);
        let mut removed = 0;
        for entry in self.tree.range([SEEN].as_slice()..end.as_slice()) {
            let (k, _) = entry.map_err(|e| self.err(e))?;
            batch.remove(k);
            removed += 1;
            if removed >= PRUNE_CHUNK {
                // More to do: the next charge continues.
                return Ok(());
            }
        }
        *pruned = Some(today);
        Ok(())
    }

    /// Charges a read that stores nothing else (`GET /2/users/me` at login), in its own batch.
    pub fn record_read(&self, account: AccountId, charge: &ReadCharge) -> Result<Use> {
        let _writer = self.lock();
        let mut batch = Batch::default();
        let mut staged = StagedUses::default();
        let used = self.stage_read_charge(&mut staged, &mut batch, account, charge)?;
        self.apply(batch)?;
        self.note_applied(&staged);
        Ok(used)
    }

    /// Every cost counter from `first` to `last` (UTC days, inclusive), oldest day first.
    pub fn cost_rows(&self, first: NaiveDate, last: NaiveDate) -> Result<Vec<CostRow>> {
        let mut out = Vec::new();
        // Skip from account to account: each is one range read of the days asked for.
        let mut from: Vec<u8> = vec![COST];
        loop {
            let Some(entry) = self
                .tree
                .range(from.as_slice()..)
                .next()
                .transpose()
                .map_err(|e| self.err(e))?
            else {
                break;
            };
            let (k, _) = entry;
            if k.first() != Some(&COST) {
                break;
            }
            let Some(account) = keys::key_account(&k) else {
                tracing::warn!("skipping an unreadable cost counter {k:?}");
                match keys::prefix_end(&k) {
                    Some(next) => from = next,
                    None => break,
                }
                continue;
            };
            out.extend(self.account_cost_rows(account, first, last)?);
            match keys::prefix_end(&keys::account_key(COST, account)) {
                Some(next) => from = next,
                None => break,
            }
        }
        out.sort_by_key(|r| (r.day, r.account, r.kind));
        Ok(out)
    }

    /// One account's cost counters from `first` to `last`, oldest day first.
    pub fn account_cost_rows(
        &self,
        account: AccountId,
        first: NaiveDate,
        last: NaiveDate,
    ) -> Result<Vec<CostRow>> {
        let start = account_day_prefix(account, first);
        let Some(end) = keys::prefix_end(&account_day_prefix(account, last)) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for entry in self.tree.range(start.as_slice()..end.as_slice()) {
            let (k, v) = entry.map_err(|e| self.err(e))?;
            match decode_row(&k, &v) {
                Some(row) => out.push(row),
                None => tracing::warn!("skipping an unreadable cost counter {k:?}"),
            }
        }
        Ok(out)
    }

    /// What was spent in `month`: in total, and per account. The current month comes from a
    /// cache that every applied charge keeps up to date (read from the counters once); the
    /// write lock is held while it is filled, so no charge slips between the scan and the cache.
    pub fn month_spend(&self, month: Month) -> Result<(u64, HashMap<AccountId, u64>)> {
        {
            let cache = self
                .costs
                .month
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if let Some(m) = cache.as_ref().filter(|m| m.month == month) {
                return Ok((m.total, m.per_account.clone()));
            }
        }
        let _writer = self.lock();
        let (total, per_account) = self.scan_month_spend(month)?;
        if month == Month::of(crate::costs::billing_day(Utc::now())) {
            *self
                .costs
                .month
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(MonthSpend {
                month,
                total,
                per_account: per_account.clone(),
            });
        }
        Ok((total, per_account))
    }

    fn scan_month_spend(&self, month: Month) -> Result<(u64, HashMap<AccountId, u64>)> {
        Ok(spend_of(
            self.cost_rows(month.first_day(), month.last_day())?,
        ))
    }

    /// Uses per kind over `first..=last`, for one account or all.
    pub fn cost_by_kind(
        &self,
        first: NaiveDate,
        last: NaiveDate,
        account: Option<AccountId>,
    ) -> Result<ByKind> {
        let rows = match account {
            Some(a) => self.account_cost_rows(a, first, last)?,
            None => self.cost_rows(first, last)?,
        };
        Ok(by_kind_of(rows))
    }

    /// Saves X's usage report.
    pub fn put_x_usage(&self, usage: &XUsage) -> Result<()> {
        let bytes = serde_json::to_vec(usage)
            .map_err(|e| StoreError::Invalid(format!("cannot encode the usage report: {e}")))?;
        self.tree
            .insert(X_USAGE_KEY, bytes)
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// X's last usage report, if any (an unreadable one is treated as absent).
    pub fn x_usage(&self) -> Result<Option<XUsage>> {
        Ok(self
            .get(X_USAGE_KEY)?
            .and_then(|v| serde_json::from_slice(&v).ok()))
    }

    /// Records that the warning for `scope` was given in `month`; returns false if it already was.
    pub fn note_budget_warning(&self, scope: &str, month: Month) -> Result<bool> {
        let _writer = self.lock();
        let mut warned: Warned = self
            .get(WARNED_KEY)?
            .and_then(|v| serde_json::from_slice(&v).ok())
            .unwrap_or_default();
        let month = month.to_string();
        if warned.0.get(scope) == Some(&month) {
            return Ok(false);
        }
        warned.0.insert(scope.to_string(), month);
        let bytes = serde_json::to_vec(&warned)
            .map_err(|e| StoreError::Invalid(format!("cannot encode warnings: {e}")))?;
        self.tree
            .insert(WARNED_KEY, bytes)
            .map_err(|e| self.err(e))?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_keys_sort_by_account_then_day_and_decode() {
        let a = AccountId::from_u128(3);
        let d1 = NaiveDate::from_ymd_opt(2026, 11, 30).unwrap();
        let d2 = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
        assert!(cost_key(d1, a, CostKind::Reply) < cost_key(d2, a, CostKind::PostRead));
        assert!(
            cost_key(d2, a, CostKind::Reply)
                < cost_key(d1, AccountId::from_u128(4), CostKind::PostRead)
        );
        let row = decode_row(
            &cost_key(d2, a, CostKind::DmSent),
            &encode_use(Use {
                count: 2,
                micros: 30_000,
            }),
        )
        .unwrap();
        assert_eq!((row.day, row.account, row.kind), (d2, a, CostKind::DmSent));
        assert_eq!(row.used.micros, 30_000);
        assert_eq!(day_from_number(keys::day_number(d1)), d1);
    }

    #[test]
    fn cost_tags_do_not_collide_with_the_store_layout() {
        for tag in [
            keys::META,
            keys::ACCOUNT,
            keys::TWITTER_ID,
            keys::TOKENS,
            keys::CURSOR,
            keys::FIRST_SEEN,
            keys::MENTION,
            keys::BY_STATUS,
            keys::STATUS_COUNT,
            keys::GLOBAL_COUNT,
            keys::DAY_COUNT,
            keys::DRAFT,
            super::super::outbox::ENTRY,
            super::super::outbox::CURRENT,
        ] {
            assert!(tag != COST && tag != SEEN, "tag {:?} is taken", tag as char);
        }
    }
}
