//! What X bills, as perch estimates it: the price table, the kinds of billable use, and the
//! billing rules (owned reads, same-UTC-day de-duplication, which reply costs what, budgets) as
//! pure functions. No I/O: the store counts (`store/costs.rs`), the sync engine and the outbox
//! call in here to decide.
//!
//! The facts come from `../shared/x-api/COSTS.md` (pricing page of 2026-08-13). Readings chosen
//! where COSTS.md marks a fact as assumed [INF]:
//! - A mentions page is billed per post in `data` ("post_read counts the posts in data", issue
//!   14). Users and posts in `includes` are not billed: COSTS.md calls that undocumented, and its
//!   worked estimates (§8) leave them out. The simulator bills the same way.
//! - A reply whose text contains a URL is billed $0.200 even when it is summoned (COSTS.md §2:
//!   "unclear ... budget $0.200").
//! - A reply is summoned when the post it answers @mentions the replying account or quotes one
//!   of its posts (COSTS.md §2, the summoned rule); anything else is `reply_unsummoned`.
//! - De-duplication is app-wide, by resource: a post read through two accounts on one UTC day is
//!   charged once, to the account that read it first.
//!
//! Money is kept in micro-dollars (`u64`): $0.005 is 5 000 µ$, so sums are exact.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

/// The date of the pricing page the defaults were taken from (COSTS.md [P]).
pub const DEFAULT_PRICES_DATE: &str = "2026-08-13";

/// Micro-dollars per dollar.
pub const MICROS_PER_USD: u64 = 1_000_000;

/// One kind of billable use. The names are the issue's `by_kind` keys.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum CostKind {
    /// A post returned in `data` of a read, for an account that is not the app owner.
    PostRead,
    /// A post returned by an owned read (the app owner reading its own mentions).
    OwnedRead,
    /// A user returned by a read (`GET /2/users/me` at login).
    UserRead,
    /// A DM event returned by `GET /2/dm_events`.
    DmRead,
    /// A summoned reply (to a post that mentions the account), without a URL.
    Reply,
    /// A reply whose text contains a URL.
    ReplyWithUrl,
    /// A reply to a post that did not summon the account, without a URL.
    ReplyUnsummoned,
    /// A DM sent.
    DmSent,
    /// An event delivered by the X Activity stream.
    StreamEvent,
}

impl CostKind {
    pub const ALL: [CostKind; 9] = [
        CostKind::PostRead,
        CostKind::OwnedRead,
        CostKind::UserRead,
        CostKind::DmRead,
        CostKind::Reply,
        CostKind::ReplyWithUrl,
        CostKind::ReplyUnsummoned,
        CostKind::DmSent,
        CostKind::StreamEvent,
    ];

    /// The snake_case name (as in config and JSON).
    pub fn as_str(self) -> &'static str {
        match self {
            CostKind::PostRead => "post_read",
            CostKind::OwnedRead => "owned_read",
            CostKind::UserRead => "user_read",
            CostKind::DmRead => "dm_read",
            CostKind::Reply => "reply",
            CostKind::ReplyWithUrl => "reply_with_url",
            CostKind::ReplyUnsummoned => "reply_unsummoned",
            CostKind::DmSent => "dm_sent",
            CostKind::StreamEvent => "stream_event",
        }
    }

    /// A stable one-byte code for store keys.
    pub fn code(self) -> u8 {
        match self {
            CostKind::PostRead => 1,
            CostKind::OwnedRead => 2,
            CostKind::UserRead => 3,
            CostKind::DmRead => 4,
            CostKind::Reply => 5,
            CostKind::ReplyWithUrl => 6,
            CostKind::ReplyUnsummoned => 7,
            CostKind::DmSent => 8,
            CostKind::StreamEvent => 9,
        }
    }

    pub fn from_code(code: u8) -> Option<CostKind> {
        CostKind::ALL.into_iter().find(|k| k.code() == code)
    }

    /// Reads (and stream deliveries) are charged per resource and de-duplicated per UTC day;
    /// writes are charged per request.
    pub fn is_read(self) -> bool {
        matches!(
            self,
            CostKind::PostRead
                | CostKind::OwnedRead
                | CostKind::UserRead
                | CostKind::DmRead
                | CostKind::StreamEvent
        )
    }

    /// What a reply or DM is, in words, for the composer and the CLI.
    pub fn describe(self) -> &'static str {
        match self {
            CostKind::PostRead => "post read",
            CostKind::OwnedRead => "owned read",
            CostKind::UserRead => "user read",
            CostKind::DmRead => "DM read",
            CostKind::Reply => "reply",
            CostKind::ReplyWithUrl => "reply with a link",
            CostKind::ReplyUnsummoned => "reply not to a mention",
            CostKind::DmSent => "DM",
            CostKind::StreamEvent => "stream event",
        }
    }
}

impl std::fmt::Display for CostKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the de-duplication rule keys a resource by: its class and X's id. Posts read as mentions
/// and posts delivered by the stream share a class (COSTS.md §4: "expect one on the same UTC day
/// if the Post is the de-dup key").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ResourceClass {
    Post,
    User,
    DmEvent,
}

impl ResourceClass {
    pub fn code(self) -> u8 {
        match self {
            ResourceClass::Post => b'P',
            ResourceClass::User => b'U',
            ResourceClass::DmEvent => b'D',
        }
    }
}

/// The price table: what one unit of each kind costs, in micro-dollars, and the date the prices
/// were taken from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prices {
    pub date: String,
    pub micros: BTreeMap<CostKind, u64>,
}

impl Default for Prices {
    /// COSTS.md §2 (docs of 2026-08-13).
    fn default() -> Prices {
        let micros = [
            (CostKind::PostRead, 5_000),
            (CostKind::OwnedRead, 1_000),
            (CostKind::UserRead, 10_000),
            (CostKind::DmRead, 10_000),
            (CostKind::Reply, 10_000),
            (CostKind::ReplyWithUrl, 200_000),
            (CostKind::ReplyUnsummoned, 15_000),
            (CostKind::DmSent, 15_000),
            // "billed as a Post" (COSTS.md §2, X Activity API deliveries).
            (CostKind::StreamEvent, 5_000),
        ]
        .into_iter()
        .collect();
        Prices {
            date: DEFAULT_PRICES_DATE.to_string(),
            micros,
        }
    }
}

impl Prices {
    /// The price of one unit of `kind`.
    pub fn of(&self, kind: CostKind) -> u64 {
        self.micros.get(&kind).copied().unwrap_or(0)
    }

    /// Replaces the price of `kind` with `usd` dollars (from config). Refuses what is not a
    /// price: negative, not a number, or more than $1 000 per unit.
    pub fn set_usd(&mut self, kind: CostKind, usd: f64) -> Result<(), String> {
        let micros = usd_to_micros(usd)
            .filter(|m| *m <= 1_000 * MICROS_PER_USD)
            .ok_or_else(|| format!("{kind} = {usd}: a price is a number of dollars, 0 to 1000"))?;
        self.micros.insert(kind, micros);
        Ok(())
    }
}

/// Dollars to micro-dollars, rounded to the nearest; `None` for negative or non-finite amounts.
pub fn usd_to_micros(usd: f64) -> Option<u64> {
    if !usd.is_finite() || !(0.0..=1e12).contains(&usd) {
        return None;
    }
    Some((usd * MICROS_PER_USD as f64).round() as u64)
}

/// Micro-dollars as dollars (for JSON).
pub fn micros_to_usd(micros: u64) -> f64 {
    // Rounded to the micro-dollar so JSON shows 0.015, not 0.015000000000000001.
    (micros as f64 / MICROS_PER_USD as f64 * 1e6).round() / 1e6
}

/// "$0.20", "$25.00", "$0.005": two decimals, three when the amount needs them (a single read
/// must not show as "$0.01" or "$0.00").
pub fn format_usd(micros: u64) -> String {
    if micros.is_multiple_of(10_000) || micros >= 10 * MICROS_PER_USD {
        format!("${:.2}", micros as f64 / MICROS_PER_USD as f64)
    } else {
        format!("${:.3}", micros as f64 / MICROS_PER_USD as f64)
    }
}

/// Who owns the developer app, and the price table: what perch needs to price a use.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pricing {
    pub prices: Prices,
    /// The app owner's handle, lower case without `@` (`app_owner = "@handle"`).
    pub app_owner: Option<String>,
}

impl Pricing {
    /// The owned-read rule (COSTS.md §3): the mentions of the account that owns the developer
    /// app cost $0.001 a post, every other account's $0.005.
    pub fn mentions_read_kind(&self, account_username: &str) -> CostKind {
        owned_or_post_read(account_username, self.app_owner.as_deref())
    }
}

/// The owned-read rule as a function of the account and the configured owner.
pub fn owned_or_post_read(account_username: &str, app_owner: Option<&str>) -> CostKind {
    let account = account_username.trim().trim_start_matches('@');
    match app_owner {
        Some(owner)
            if owner
                .trim()
                .trim_start_matches('@')
                .eq_ignore_ascii_case(account) =>
        {
            CostKind::OwnedRead
        }
        _ => CostKind::PostRead,
    }
}

/// What a reply costs: with a URL (the same detection as the length counter) $0.200; summoned
/// $0.010; otherwise $0.015.
pub fn reply_kind(text: &str, summoned: bool) -> CostKind {
    if crate::text::contains_url(text) {
        CostKind::ReplyWithUrl
    } else if summoned {
        CostKind::Reply
    } else {
        CostKind::ReplyUnsummoned
    }
}

/// Whether a reply from `account_username` to a post with `parent_text` (quoting posts by
/// `quoted_authors`) is summoned: the post @mentions the account or quotes one of its posts.
pub fn is_summoned<'a>(
    account_username: &str,
    parent_text: &str,
    quoted_authors: impl IntoIterator<Item = &'a str>,
) -> bool {
    let account = account_username.trim_start_matches('@');
    crate::text::mentions_handle(parent_text, account)
        || quoted_authors
            .into_iter()
            .any(|a| a.trim_start_matches('@').eq_ignore_ascii_case(account))
}

/// The same-UTC-day rule: of the resources `ids` returned on one day, those that are charged —
/// each id once, and only if it was not already charged that day (`seen_today`).
pub fn charged_today(ids: &[u64], mut seen_today: impl FnMut(u64) -> bool) -> Vec<u64> {
    let mut in_this_response = HashSet::with_capacity(ids.len());
    ids.iter()
        .copied()
        .filter(|id| in_this_response.insert(*id) && !seen_today(*id))
        .collect()
}

/// The UTC day a use is billed on.
pub fn billing_day(at: DateTime<Utc>) -> NaiveDate {
    at.date_naive()
}

/// A UTC calendar month, as `2026-12`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Month {
    pub year: i32,
    pub month: u32,
}

impl Month {
    pub fn of(day: NaiveDate) -> Month {
        Month {
            year: day.year(),
            month: day.month(),
        }
    }

    /// Parses `2026-12`.
    pub fn parse(s: &str) -> Option<Month> {
        let (y, m) = s.trim().split_once('-')?;
        let (year, month) = (y.parse().ok()?, m.parse().ok()?);
        NaiveDate::from_ymd_opt(year, month, 1)?;
        Some(Month { year, month })
    }

    pub fn first_day(self) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.year, self.month, 1).unwrap_or(NaiveDate::MIN)
    }

    /// The first day of the next month.
    pub fn next(self) -> Month {
        if self.month >= 12 {
            Month {
                year: self.year + 1,
                month: 1,
            }
        } else {
            Month {
                year: self.year,
                month: self.month + 1,
            }
        }
    }

    pub fn last_day(self) -> NaiveDate {
        self.next().first_day().pred_opt().unwrap_or(NaiveDate::MIN)
    }

    /// "1 Jan": when the next month starts, for the budget message.
    pub fn next_start_label(self) -> String {
        self.next().first_day().format("%-d %b").to_string()
    }
}

impl std::fmt::Display for Month {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

/// The budgets the user set: one for all accounts together, and per account (by handle, lower
/// case without `@`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Budgets {
    pub monthly_micros: Option<u64>,
    pub per_account_micros: BTreeMap<String, u64>,
}

/// Which budget stopped spending.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BudgetReached {
    pub spent: u64,
    pub budget: u64,
    /// The month the budget is for (the account resumes when it ends).
    pub month: Month,
    /// The budget of one account rather than the global one.
    pub account: bool,
    /// Something is left, but less than the smallest request could cost (X serves pages of 5
    /// posts at least): this account's reads stop; others, at cheaper prices, may go on.
    pub too_little_left: bool,
}

impl BudgetReached {
    /// The `error_message` of a budget pause: "budget reached ($25.00 of $25.00): raise
    /// monthly_budget_usd or wait until 1 Jan".
    pub fn message(&self) -> String {
        let key = if self.account {
            "[accounts.<handle>] monthly_budget_usd"
        } else {
            "monthly_budget_usd"
        };
        let left = if self.too_little_left {
            "; too little left for another read"
        } else {
            ""
        };
        format!(
            "budget reached ({} of {}{left}): raise {key} or wait until {}",
            format_usd_cents(self.spent),
            format_usd_cents(self.budget),
            self.month.next_start_label()
        )
    }
}

/// A unit price: three decimals always ("$0.010", "$0.200"), so a table of prices lines up.
pub fn format_price(micros: u64) -> String {
    format!("${:.3}", micros as f64 / MICROS_PER_USD as f64)
}

/// Two decimals always ("$25.00"), for budgets.
pub fn format_usd_cents(micros: u64) -> String {
    format!("${:.2}", micros as f64 / MICROS_PER_USD as f64)
}

/// The start of every budget-pause message, to recognise one (a budget pause keeps `is_active`).
pub const BUDGET_REACHED_PREFIX: &str = "budget reached (";

/// What a 402 CreditsDepleted sets on every account.
pub const CREDITS_DEPLETED_MESSAGE: &str = "X credits depleted: top up in the developer console";

/// The share of a budget at which perch warns (once).
pub const WARN_AT_PERCENT: u64 = 80;

impl Budgets {
    pub fn for_account(&self, username: &str) -> Option<u64> {
        self.per_account_micros
            .get(&username.trim_start_matches('@').to_lowercase())
            .copied()
    }

    /// Whether spending more is refused: the global budget against everything spent this month,
    /// or the account's own budget against what the account spent. `reserved` is what requests
    /// already on their way may still cost.
    pub fn reached(
        &self,
        month: Month,
        username: &str,
        spent_all: u64,
        spent_account: u64,
    ) -> Option<BudgetReached> {
        if let Some(budget) = self.monthly_micros
            && spent_all >= budget
        {
            return Some(BudgetReached {
                spent: spent_all,
                budget,
                month,
                account: false,
                too_little_left: false,
            });
        }
        if let Some(budget) = self.for_account(username)
            && spent_account >= budget
        {
            return Some(BudgetReached {
                spent: spent_account,
                budget,
                month,
                account: true,
                too_little_left: false,
            });
        }
        None
    }

    /// What is left before the tighter of the two budgets is reached (`None`: no budget).
    pub fn remaining(&self, username: &str, spent_all: u64, spent_account: u64) -> Option<u64> {
        let global = self.monthly_micros.map(|b| b.saturating_sub(spent_all));
        let own = self
            .for_account(username)
            .map(|b| b.saturating_sub(spent_account));
        match (global, own) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Whether spending `before` → `after` crossed the warning line of a budget of `budget`.
    pub fn crossed_warning(budget: u64, before: u64, after: u64) -> bool {
        let line = budget.saturating_mul(WARN_AT_PERCENT) / 100;
        budget > 0 && before < line && after >= line
    }
}

/// X's page size limits for the mentions endpoint.
pub const MIN_PAGE: u32 = 5;
pub const MAX_PAGE: u32 = 100;

/// How many posts the next page may ask for so that, even if every one is new, the spend stays
/// within `remaining` (a budget is never overrun by a page). `None` when not even the smallest
/// page X allows fits: the budget is reached for reads.
pub fn affordable_page(remaining: Option<u64>, unit: u64) -> Option<u32> {
    let Some(remaining) = remaining else {
        return Some(MAX_PAGE);
    };
    if unit == 0 {
        return Some(MAX_PAGE);
    }
    let n = (remaining / unit).min(u64::from(MAX_PAGE)) as u32;
    (n >= MIN_PAGE).then_some(n)
}

/// One kind's use: how many units and what they cost.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Use {
    pub count: u64,
    pub micros: u64,
}

impl Use {
    pub fn add(&mut self, other: Use) {
        self.count = self.count.saturating_add(other.count);
        self.micros = self.micros.saturating_add(other.micros);
    }
}

/// Uses per kind.
pub type ByKind = BTreeMap<CostKind, Use>;

pub fn total(by_kind: &ByKind) -> u64 {
    by_kind.values().map(|u| u.micros).sum()
}

/// The price of one handled mention: reads plus replies (and DMs) over mentions handled
/// (replied or ignored). `None` when none was handled.
pub fn per_handled_mention(by_kind: &ByKind, handled: u64) -> Option<u64> {
    if handled == 0 {
        return None;
    }
    let spent: u64 = by_kind
        .iter()
        .filter(|(k, _)| **k != CostKind::UserRead)
        .map(|(_, u)| u.micros)
        .sum();
    Some(spent / handled)
}

/// The last `GET /2/usage/tweets` answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct XUsage {
    pub fetched_at: DateTime<Utc>,
    /// Posts consumed this billing cycle (`project_usage`).
    pub project_usage: u64,
    pub project_cap: Option<u64>,
    /// Posts consumed per UTC day (`daily_project_usage`), when X sent it.
    pub daily: BTreeMap<NaiveDate, u64>,
    /// perch's own post-read count this month when X's answer arrived, so the two are compared
    /// at the same moment (reads after it are in neither).
    #[serde(default)]
    pub perch_posts: Option<u64>,
}

/// Posts read (post and owned reads) in a set of uses.
pub fn posts_read(by_kind: &ByKind) -> u64 {
    [CostKind::PostRead, CostKind::OwnedRead]
        .iter()
        .filter_map(|k| by_kind.get(k))
        .map(|u| u.count)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_prices_of_costs_md() {
        let p = Prices::default();
        assert_eq!(p.date, "2026-08-13");
        assert_eq!(format_usd(p.of(CostKind::PostRead)), "$0.005");
        assert_eq!(format_usd(p.of(CostKind::OwnedRead)), "$0.001");
        assert_eq!(format_usd(p.of(CostKind::Reply)), "$0.01");
        assert_eq!(format_usd(p.of(CostKind::ReplyWithUrl)), "$0.20");
        assert_eq!(format_usd(p.of(CostKind::ReplyUnsummoned)), "$0.015");
        assert_eq!(format_usd(p.of(CostKind::DmSent)), "$0.015");
        assert_eq!(format_usd(p.of(CostKind::DmRead)), "$0.01");
        assert_eq!(format_usd(p.of(CostKind::UserRead)), "$0.01");
    }

    #[test]
    fn kinds_are_snake_case_and_codes_round_trip() {
        for k in CostKind::ALL {
            assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
            assert_eq!(CostKind::from_code(k.code()), Some(k));
        }
        assert_eq!(CostKind::from_code(0), None);
    }

    #[test]
    fn only_the_app_owner_gets_owned_reads() {
        assert_eq!(
            owned_or_post_read("NimbusNotes", Some("@nimbusnotes")),
            CostKind::OwnedRead
        );
        assert_eq!(
            owned_or_post_read("mara_quill", Some("@nimbusnotes")),
            CostKind::PostRead
        );
        assert_eq!(owned_or_post_read("nimbusnotes", None), CostKind::PostRead);
    }

    #[test]
    fn reply_prices_follow_url_and_summoning() {
        assert_eq!(reply_kind("thanks!", true), CostKind::Reply);
        assert_eq!(reply_kind("thanks!", false), CostKind::ReplyUnsummoned);
        assert_eq!(
            reply_kind("see https://nimbus.io/help", true),
            CostKind::ReplyWithUrl
        );
        // A bare domain is a URL for X's counter too.
        assert_eq!(reply_kind("see nimbus.com", true), CostKind::ReplyWithUrl);
        assert!(is_summoned("nimbusnotes", "@NimbusNotes help", []));
        assert!(!is_summoned("nimbusnotes", "email me@nimbusnotes.io", []));
        assert!(is_summoned("nimbusnotes", "so true", ["nimbusnotes"]));
        assert!(!is_summoned(
            "nimbusnotes",
            "@mara_quill hi",
            ["mara_quill"]
        ));
    }

    #[test]
    fn a_resource_is_charged_once_a_day() {
        let seen: HashSet<u64> = [2].into_iter().collect();
        assert_eq!(
            charged_today(&[1, 2, 3, 1], |id| seen.contains(&id)),
            [1, 3]
        );
        assert!(charged_today(&[], |_| false).is_empty());
    }

    #[test]
    fn months_and_budget_messages() {
        let m = Month::parse("2026-12").unwrap();
        assert_eq!(m.to_string(), "2026-12");
        assert_eq!(m.last_day(), NaiveDate::from_ymd_opt(2026, 12, 31).unwrap());
        assert_eq!(m.next_start_label(), "1 Jan");
        assert_eq!(Month::parse("2026-13"), None);
        let b = Budgets {
            monthly_micros: Some(25 * MICROS_PER_USD),
            ..Budgets::default()
        };
        let reached = b.reached(m, "nimbusnotes", 25 * MICROS_PER_USD, 0).unwrap();
        assert_eq!(
            reached.message(),
            "budget reached ($25.00 of $25.00): raise monthly_budget_usd or wait until 1 Jan"
        );
        assert!(b.reached(m, "x", 24 * MICROS_PER_USD, 0).is_none());
        let short = BudgetReached {
            spent: 30_000,
            budget: 50_000,
            month: m,
            account: false,
            too_little_left: true,
        };
        assert_eq!(
            short.message(),
            "budget reached ($0.03 of $0.05; too little left for another read): raise monthly_budget_usd or wait until 1 Jan"
        );
    }

    #[test]
    fn account_budgets_stop_one_account_only() {
        let b = Budgets {
            monthly_micros: None,
            per_account_micros: [("mara_quill".to_string(), 1_000_000)]
                .into_iter()
                .collect(),
        };
        let m = Month::parse("2026-12").unwrap();
        assert!(b.reached(m, "@Mara_Quill", 5_000_000, 1_000_000).is_some());
        assert!(b.reached(m, "nimbusnotes", 5_000_000, 5_000_000).is_none());
        assert_eq!(b.remaining("mara_quill", 0, 400_000), Some(600_000));
        assert_eq!(b.remaining("nimbusnotes", 0, 400_000), None);
    }

    #[test]
    fn a_page_is_sized_to_what_the_budget_still_affords() {
        assert_eq!(affordable_page(None, 5_000), Some(100));
        assert_eq!(affordable_page(Some(1_000_000), 5_000), Some(100));
        assert_eq!(affordable_page(Some(40_000), 5_000), Some(8));
        assert_eq!(affordable_page(Some(24_999), 5_000), None);
        assert_eq!(affordable_page(Some(0), 5_000), None);
    }

    #[test]
    fn warning_fires_once_when_crossing_80_percent() {
        assert!(Budgets::crossed_warning(100, 79, 80));
        assert!(!Budgets::crossed_warning(100, 80, 90));
        assert!(!Budgets::crossed_warning(100, 10, 20));
    }

    #[test]
    fn money_formats() {
        assert_eq!(format_usd(0), "$0.00");
        assert_eq!(format_usd(35_000), "$0.035");
        assert_eq!(format_usd(1_230_000), "$1.23");
        assert_eq!(format_usd_cents(50_000), "$0.05");
        assert_eq!(micros_to_usd(15_000), 0.015);
        assert_eq!(usd_to_micros(0.005), Some(5_000));
        assert_eq!(usd_to_micros(-1.0), None);
    }

    #[test]
    fn price_of_a_handled_mention() {
        let mut by: ByKind = BTreeMap::new();
        by.insert(
            CostKind::PostRead,
            Use {
                count: 10,
                micros: 50_000,
            },
        );
        by.insert(
            CostKind::Reply,
            Use {
                count: 2,
                micros: 20_000,
            },
        );
        assert_eq!(per_handled_mention(&by, 2), Some(35_000));
        assert_eq!(per_handled_mention(&by, 0), None);
    }
}
