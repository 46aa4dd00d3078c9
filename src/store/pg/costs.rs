//! The cost meter on PostgreSQL (schema version 5): the same counters and the same same-UTC-day
//! de-duplication as sled's (`store/costs.rs`), so that the sync leader of a team charges each
//! read where every service reads the spend.
//!
//! A charge is written in the transaction of the write that caused it (a page commit, a streamed
//! post), so a crash keeps both or neither. Two services charging one post on one day cannot
//! both count it: the seen set's primary key lets one insert win (`ON CONFLICT DO NOTHING
//! RETURNING` names the ids this charge took), whatever the interleaving.

use std::collections::HashMap;

use chrono::NaiveDate;
use postgres::GenericClient;

use super::{PgStore, column, unsigned};
use crate::costs::{ByKind, CostKind, Month, Pricing, Use, XUsage};
use crate::domain::AccountId;
use crate::store::costs::{CostRow, ReadCharge, Warned, by_kind_of, spend_of};
use crate::store::{Result, StoreError};

/// Seen-set rows of earlier days deleted per charge at most (bounds the work of one write).
const PRUNE_CHUNK: i64 = 5_000;

/// `meter_notes` names.
const X_USAGE_NOTE: &str = "x_usage";
const WARNED_NOTE: &str = "budget_warnings";

/// An amount as a column: PostgreSQL has no unsigned 64-bit type, and no real spend or count
/// comes near 2^63, so a larger one is held at the top rather than wrapped.
fn amount(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl PgStore {
    /// The pricing charges use now (set from config by whoever opens the store).
    pub fn pricing(&self) -> Pricing {
        self.pricing
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    pub fn set_pricing(&self, pricing: Pricing) {
        *self
            .pricing
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = pricing;
    }

    /// Charges `charge` to `account` inside `tx`: the resources not yet charged on its UTC day,
    /// at the price of its kind. Returns what was charged.
    pub(super) fn charge_in(
        &self,
        tx: &mut impl GenericClient,
        account: AccountId,
        charge: &ReadCharge,
    ) -> Result<Use> {
        let day = crate::costs::billing_day(charge.at);
        // Earlier days no longer de-duplicate anything (the window resets at midnight UTC).
        tx.execute(
            "DELETE FROM cost_seen WHERE ctid IN
               (SELECT ctid FROM cost_seen WHERE day < $1 LIMIT $2)",
            &[&day, &PRUNE_CHUNK],
        )
        .map_err(|e| self.err(e))?;
        // Once per id within this answer (X bills a resource once however often it appears).
        let ids: Vec<i64> = crate::costs::charged_today(&charge.ids, |_| false)
            .into_iter()
            .filter_map(|id| i64::try_from(id).ok())
            .collect();
        let class = i16::from(charge.class.code());
        let taken = tx
            .query(
                "INSERT INTO cost_seen (day, class, x_id, account_id)
                 SELECT $1, $2, id, $3 FROM unnest($4::bigint[]) AS u(id)
                 ON CONFLICT (day, class, x_id) DO NOTHING
                 RETURNING x_id",
                &[&day, &class, &account, &ids],
            )
            .map_err(|e| self.err(e))?
            .len() as u64;
        let price = self.pricing().prices.of(charge.kind);
        let used = Use {
            count: taken,
            micros: price.saturating_mul(taken),
        };
        self.add_use(tx, day, account, charge.kind, used)?;
        Ok(used)
    }

    /// Adds `add` to the counter of (`account`, `day`, `kind`).
    pub(super) fn add_use(
        &self,
        tx: &mut impl GenericClient,
        day: NaiveDate,
        account: AccountId,
        kind: CostKind,
        add: Use,
    ) -> Result<()> {
        if add.count == 0 && add.micros == 0 {
            return Ok(());
        }
        tx.execute(
            "INSERT INTO cost_uses (account_id, day, kind, count, micros) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (account_id, day, kind) DO UPDATE SET
               count = LEAST(cost_uses.count::numeric + EXCLUDED.count, 9223372036854775807)::bigint,
               micros = LEAST(cost_uses.micros::numeric + EXCLUDED.micros, 9223372036854775807)::bigint",
            &[
                &account,
                &day,
                &i16::from(kind.code()),
                &amount(add.count),
                &amount(add.micros),
            ],
        )
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Charges a read that stores nothing else (`GET /2/users/me` at login), on its own.
    pub fn record_read(&self, account: AccountId, charge: &ReadCharge) -> Result<Use> {
        let mut client = self.lock();
        let mut tx = client.transaction().map_err(|e| self.err(e))?;
        let used = self.charge_in(&mut tx, account, charge)?;
        tx.commit().map_err(|e| self.err(e))?;
        Ok(used)
    }

    /// Every counter of the days `first..=last` (for one account, or all), oldest day first.
    pub fn cost_rows_of(
        &self,
        first: NaiveDate,
        last: NaiveDate,
        account: Option<AccountId>,
    ) -> Result<Vec<CostRow>> {
        // "All time" is asked for as NaiveDate::MIN, which PostgreSQL's date type cannot hold
        // (it starts at 4713 BC): no charge is older than perch, so 1970 is all time here.
        let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
        let (first, last) = (first.max(epoch), last.max(epoch));
        let rows = self
            .lock()
            .query(
                "SELECT account_id, day, kind, count, micros FROM cost_uses
                 WHERE day BETWEEN $1 AND $2 AND ($3::uuid IS NULL OR account_id = $3)
                 ORDER BY day, account_id, kind",
                &[&first, &last, &account],
            )
            .map_err(|e| self.err(e))?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let code: i16 = column(&row, "kind", &self.target)?;
            // A kind a newer perch added: not this perch's to price or name.
            let Some(kind) = u8::try_from(code).ok().and_then(CostKind::from_code) else {
                tracing::warn!(code, "cost counter of an unknown kind skipped");
                continue;
            };
            out.push(CostRow {
                day: column(&row, "day", &self.target)?,
                account: column(&row, "account_id", &self.target)?,
                kind,
                used: Use {
                    count: unsigned(column(&row, "count", &self.target)?, "count", &self.target)?,
                    micros: unsigned(
                        column(&row, "micros", &self.target)?,
                        "micros",
                        &self.target,
                    )?,
                },
            });
        }
        Ok(out)
    }

    /// The spend of `month` in µ$, in all and per account (the budget's figure). Read from the
    /// database each time: another service's charges count as much as this one's.
    pub fn month_spend(&self, month: Month) -> Result<(u64, HashMap<AccountId, u64>)> {
        Ok(spend_of(self.cost_rows_of(
            month.first_day(),
            month.last_day(),
            None,
        )?))
    }

    /// Uses per kind over `first..=last`, for one account or all.
    pub fn cost_by_kind(
        &self,
        first: NaiveDate,
        last: NaiveDate,
        account: Option<AccountId>,
    ) -> Result<ByKind> {
        Ok(by_kind_of(self.cost_rows_of(first, last, account)?))
    }

    /// Saves X's usage report.
    pub fn put_x_usage(&self, usage: &XUsage) -> Result<()> {
        let json = serde_json::to_string(usage)
            .map_err(|e| StoreError::Invalid(format!("cannot encode the usage report: {e}")))?;
        self.lock()
            .execute(
                "INSERT INTO meter_notes (name, value) VALUES ($1, $2)
                 ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value",
                &[&X_USAGE_NOTE, &json],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// The last usage report saved (`None` when none was, or it no longer reads).
    pub fn x_usage(&self) -> Result<Option<XUsage>> {
        let row = self
            .lock()
            .query_opt(
                "SELECT value FROM meter_notes WHERE name = $1",
                &[&X_USAGE_NOTE],
            )
            .map_err(|e| self.err(e))?;
        Ok(match row {
            Some(row) => {
                let json: String = column(&row, 0, &self.target)?;
                serde_json::from_str(&json).ok()
            }
            None => None,
        })
    }

    /// Records that the budget warning for `scope` was given in `month`; false if it already
    /// was (by this service or another: the row is locked while it is decided).
    pub fn note_budget_warning(&self, scope: &str, month: Month) -> Result<bool> {
        let mut client = self.lock();
        let mut tx = client.transaction().map_err(|e| self.err(e))?;
        // The row must exist to be locked; two services inserting it at once both go on.
        tx.execute(
            "INSERT INTO meter_notes (name, value) VALUES ($1, '{}') ON CONFLICT (name) DO NOTHING",
            &[&WARNED_NOTE],
        )
        .map_err(|e| self.err(e))?;
        let row = tx
            .query_one(
                "SELECT value FROM meter_notes WHERE name = $1 FOR UPDATE",
                &[&WARNED_NOTE],
            )
            .map_err(|e| self.err(e))?;
        let json: String = column(&row, 0, &self.target)?;
        let mut warned: Warned = serde_json::from_str(&json).unwrap_or_default();
        let month = month.to_string();
        if warned.0.get(scope) == Some(&month) {
            return Ok(false);
        }
        warned.0.insert(scope.to_string(), month);
        let json = serde_json::to_string(&warned)
            .map_err(|e| StoreError::Invalid(format!("cannot encode the budget warnings: {e}")))?;
        tx.execute(
            "UPDATE meter_notes SET value = $2 WHERE name = $1",
            &[&WARNED_NOTE, &json],
        )
        .map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))?;
        Ok(true)
    }
}
