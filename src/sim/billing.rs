//! Pay-per-use billing as `../shared/x-api/COSTS.md` describes it, kept by the simulator itself
//! (it never asks perch's cost module, or it could not catch perch's mistakes): a per-app credit
//! balance, charges per resource returned (reads) and per request (writes), owned reads for the
//! app owner, the same-UTC-day de-duplication, and 402 CreditsDepleted once the balance is spent
//! ("Balance can dip slightly negative; requests are then blocked", COSTS.md §1).
//!
//! Readings (the same as perch's, see `crate::costs`): a mentions page is billed per post in
//! `data`; `includes` are not billed; a post with a URL is $0.200 even when summoned.

use std::collections::{BTreeMap, HashSet};

use chrono::NaiveDate;
use serde::Serialize;

/// Prices in micro-dollars (COSTS.md §2, docs of 2026-08-13).
pub(crate) mod price {
    pub const POST_READ: u64 = 5_000;
    pub const OWNED_READ: u64 = 1_000;
    pub const USER_READ: u64 = 10_000;
    pub const REPLY: u64 = 10_000;
    pub const POST_WITH_URL: u64 = 200_000;
    pub const POST: u64 = 15_000;
    pub const DM_SENT: u64 = 15_000;
}

/// What one kind of use cost one user's grant.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Charged {
    pub count: u64,
    pub micros: u64,
}

/// The bill as `GET /__sim/bill` and `SimControl::bill` show it.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SimBill {
    /// What is left; `None` when the simulator runs with unlimited credits.
    pub balance_micros: Option<i64>,
    pub spent_micros: u64,
    /// Username → kind (perch's snake_case names) → count and µ$.
    pub by_user: BTreeMap<String, BTreeMap<String, Charged>>,
    /// Posts consumed per UTC day (what `GET /2/usage/tweets` reports).
    pub posts_by_day: BTreeMap<NaiveDate, u64>,
}

pub(crate) struct Billing {
    balance_micros: Option<i64>,
    /// (day, resource class, id) already charged.
    seen: HashSet<(NaiveDate, u8, u64)>,
    by_user: BTreeMap<u64, BTreeMap<&'static str, Charged>>,
    spent_micros: u64,
    posts_by_day: BTreeMap<NaiveDate, u64>,
}

impl Billing {
    pub fn new(credits_usd: Option<f64>) -> Billing {
        Billing {
            balance_micros: credits_usd
                .filter(|c| c.is_finite())
                .map(|c| (c * 1e6).round() as i64),
            seen: HashSet::new(),
            by_user: BTreeMap::new(),
            spent_micros: 0,
            posts_by_day: BTreeMap::new(),
        }
    }

    /// Out of credits: every resource request gets 402.
    pub fn depleted(&self) -> bool {
        self.balance_micros.is_some_and(|b| b <= 0)
    }

    pub fn set_credits(&mut self, credits_usd: Option<f64>) {
        self.balance_micros = Billing::new(credits_usd).balance_micros;
    }

    fn charge(&mut self, user: u64, kind: &'static str, count: u64, unit: u64) {
        if count == 0 {
            return;
        }
        let micros = unit * count;
        let entry = self
            .by_user
            .entry(user)
            .or_default()
            .entry(kind)
            .or_default();
        entry.count += count;
        entry.micros += micros;
        self.spent_micros += micros;
        if let Some(b) = &mut self.balance_micros {
            *b -= micros as i64;
        }
    }

    /// A mentions page: every post in `data` not yet charged today; owned when the app owner
    /// reads its own mentions.
    pub fn posts_read(&mut self, user: u64, owned: bool, day: NaiveDate, ids: &[u64]) {
        let new: Vec<u64> = ids
            .iter()
            .copied()
            .filter(|id| self.seen.insert((day, b'P', *id)))
            .collect();
        let n = new.len() as u64;
        *self.posts_by_day.entry(day).or_default() += n;
        if owned {
            self.charge(user, "owned_read", n, price::OWNED_READ);
        } else {
            self.charge(user, "post_read", n, price::POST_READ);
        }
    }

    /// A post event delivered on the Activity stream: billed as a post read, de-duplicated
    /// within the UTC day together with the posts of mentions pages (COSTS.md §2, §4: the
    /// reading that one post is one charge a day whichever way it came; X does not say).
    pub fn stream_event(&mut self, user: u64, day: NaiveDate, post: u64) {
        if self.seen.insert((day, b'P', post)) {
            *self.posts_by_day.entry(day).or_default() += 1;
            self.charge(user, "stream_event", 1, price::POST_READ);
        }
    }

    /// `GET /2/users/me`: one user returned.
    pub fn user_read(&mut self, user: u64, day: NaiveDate, returned: u64) {
        if self.seen.insert((day, b'U', returned)) {
            self.charge(user, "user_read", 1, price::USER_READ);
        }
    }

    /// `POST /2/tweets`: a reply to a post that summoned the author, or any other post.
    pub fn post_created(&mut self, user: u64, has_url: bool, summoned_reply: bool) {
        let (kind, unit) = if has_url {
            ("reply_with_url", price::POST_WITH_URL)
        } else if summoned_reply {
            ("reply", price::REPLY)
        } else {
            ("reply_unsummoned", price::POST)
        };
        self.charge(user, kind, 1, unit);
    }

    pub fn dm_sent(&mut self, user: u64) {
        self.charge(user, "dm_sent", 1, price::DM_SENT);
    }

    pub fn bill(&self, username: impl Fn(u64) -> String) -> SimBill {
        SimBill {
            balance_micros: self.balance_micros,
            spent_micros: self.spent_micros,
            by_user: self
                .by_user
                .iter()
                .map(|(user, kinds)| {
                    (
                        username(*user),
                        kinds.iter().map(|(k, c)| (k.to_string(), *c)).collect(),
                    )
                })
                .collect(),
            posts_by_day: self.posts_by_day.clone(),
        }
    }

    /// Posts consumed from `first` on.
    pub fn posts_since(&self, first: NaiveDate) -> u64 {
        self.posts_by_day.range(first..).map(|(_, n)| *n).sum()
    }

    pub fn posts_by_day(&self) -> &BTreeMap<NaiveDate, u64> {
        &self.posts_by_day
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_charged_once_a_day_and_the_balance_runs_out() {
        let mut b = Billing::new(Some(0.012));
        let d1 = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
        let d2 = d1.succ_opt().unwrap();
        b.posts_read(1, false, d1, &[10, 11]);
        b.posts_read(1, false, d1, &[10, 11]);
        assert_eq!(b.spent_micros, 10_000);
        assert!(!b.depleted());
        b.posts_read(1, false, d2, &[10]);
        b.posts_read(2, true, d2, &[12]);
        assert_eq!(b.spent_micros, 16_000);
        assert!(b.depleted());
        let bill = b.bill(|u| format!("u{u}"));
        assert_eq!(bill.by_user["u1"]["post_read"].count, 3);
        assert_eq!(bill.by_user["u2"]["owned_read"].micros, 1_000);
        assert_eq!(bill.balance_micros, Some(-4_000));
    }
}
