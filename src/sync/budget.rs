//! What the engine knows of X's rate-limit budget for one account at one endpoint, from the
//! headers of the last responses (CONTRACT.md §6): the 15-minute window (`x-rate-limit-*`) and,
//! when X sends them, the 24-hour caps (`x-user-limit-24hour-*`, `x-app-limit-24hour-*`).
//!
//! Two questions are answered here, both as pure functions of the known budgets and a time:
//! - [`EndpointBudget::spent_until`]: would X refuse a request now? Then not before this time.
//! - [`EndpointBudget::pace`]: how far apart must regular polls be so that the budget lasts until
//!   its reset, keeping a reserve for fetch-now presses and follow-up pages?

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::x::{Budget, RateLimit, ResetTime, judge_reset};

/// The share of each budget that regular polls leave alone: fetch-now and the next pages of a
/// poll may use it, so pressing `f` still works when the schedule is already tight.
pub const RESERVE_DIVISOR: u32 = 10;

/// X's budgets for one account at one endpoint, as last reported.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EndpointBudget {
    /// The 15-minute window.
    pub window: Option<Budget>,
    /// The per-user 24-hour cap (some plans only).
    pub user_24h: Option<Budget>,
    /// The per-app 24-hour cap as this account's last response reported it. The app cap is shared
    /// by every account; the engine also keeps the newest one it has seen across accounts.
    pub app_24h: Option<Budget>,
    /// The unbelievable reset the last response reported, if it did (see `observe`).
    pub implausible_reset: Option<DateTime<Utc>>,
}

/// How long perch waits before trying again after X reported a reset it cannot mean: the length
/// of X's 15-minute window.
pub const IMPLAUSIBLE_RESET_RETRY: Duration = Duration::from_secs(15 * 60);

fn to_chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or_else(|_| chrono::Duration::zero())
}

impl EndpointBudget {
    /// Takes in the headers of a response received at `now`. A budget the headers leave out
    /// keeps its last known value (it stops mattering once its reset has passed). A reset further
    /// ahead than any budget lasts ([`crate::x::MAX_RESET_AHEAD`]) is not believed: the budget is
    /// kept as resetting after [`IMPLAUSIBLE_RESET_RETRY`], so that neither the schedule nor a
    /// fetch-now waits for year 5138, and [`EndpointBudget::implausible_reset`] says what X sent.
    pub fn observe(&mut self, headers: &RateLimit, now: DateTime<Utc>) {
        self.implausible_reset = None;
        let mut sane = |b: Option<Budget>| -> Option<Budget> {
            let mut b = b?;
            if let ResetTime::Implausible(t) = judge_reset(Some(b.reset), now) {
                self.implausible_reset = Some(t);
                b.reset = now + to_chrono(IMPLAUSIBLE_RESET_RETRY);
            }
            Some(b)
        };
        let (window, user_24h, app_24h) = (
            sane(headers.window),
            sane(headers.user_24h),
            sane(headers.app_24h),
        );
        if window.is_some() {
            self.window = window;
        }
        if user_24h.is_some() {
            self.user_24h = user_24h;
        }
        if app_24h.is_some() {
            self.app_24h = app_24h;
        }
    }

    fn budgets(&self) -> impl Iterator<Item = Budget> {
        [self.window, self.user_24h, self.app_24h]
            .into_iter()
            .flatten()
    }

    /// When any known budget is spent (0 remaining, reset still ahead), the time X will accept a
    /// request again: the latest of the spent budgets' resets. `None`: a request may go now.
    pub fn spent_until(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.budgets()
            .filter(|b| b.remaining == 0 && b.reset > now)
            .map(|b| b.reset)
            .max()
    }

    /// The spacing of regular polls that makes every known budget last until its reset, leaving
    /// a tenth of its limit ([`RESERVE_DIVISOR`]) in reserve: the time to the reset divided by the
    /// requests that may still be spent. When only the reserve is left, the spacing is the time to
    /// the reset. `app_sharers` is how many accounts draw on the app-wide 24-hour cap.
    /// A budget whose reset has passed has renewed and sets no pace.
    pub fn pace(&self, now: DateTime<Utc>, app_sharers: usize) -> Duration {
        let mut pace = Duration::ZERO;
        let mut consider = |b: Budget, sharers: u32| {
            let Ok(until_reset) = (b.reset - now).to_std() else {
                return;
            };
            let reserve = b.limit / RESERVE_DIVISOR;
            let spendable = b.remaining.saturating_sub(reserve) / sharers.max(1);
            let spacing = if spendable == 0 {
                until_reset
            } else {
                until_reset / spendable
            };
            pace = pace.max(spacing);
        };
        if let Some(b) = self.window {
            consider(b, 1);
        }
        if let Some(b) = self.user_24h {
            consider(b, 1);
        }
        if let Some(b) = self.app_24h {
            consider(b, u32::try_from(app_sharers).unwrap_or(u32::MAX));
        }
        pace
    }

    /// The window's figures for the UI ("287/300").
    pub fn window(&self) -> Option<Budget> {
        self.window
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(1_800_000_000 + secs, 0).unwrap()
    }

    fn budget(limit: u32, remaining: u32, reset: i64) -> Budget {
        Budget {
            limit,
            remaining,
            reset: at(reset),
        }
    }

    #[test]
    fn a_spent_window_blocks_until_its_reset_and_not_after() {
        let b = EndpointBudget {
            window: Some(budget(300, 0, 600)),
            ..Default::default()
        };
        assert_eq!(b.spent_until(at(0)), Some(at(600)));
        assert_eq!(b.spent_until(at(600)), None);
        let left = EndpointBudget {
            window: Some(budget(300, 1, 600)),
            ..Default::default()
        };
        assert_eq!(left.spent_until(at(0)), None);
    }

    #[test]
    fn a_spent_24_hour_cap_blocks_even_when_the_window_has_room() {
        // examples/errors.json, "24h user cap exhausted": window 98 left, user cap 0 left.
        let b = EndpointBudget {
            window: Some(budget(100, 98, 900)),
            user_24h: Some(budget(17, 0, 80_000)),
            app_24h: Some(budget(17, 5, 80_000)),
            ..Default::default()
        };
        assert_eq!(b.spent_until(at(0)), Some(at(80_000)));
    }

    #[test]
    fn headers_without_24_hour_caps_keep_the_known_caps() {
        let mut b = EndpointBudget::default();
        b.observe(
            &RateLimit {
                window: Some(budget(300, 299, 900)),
                user_24h: Some(budget(17, 3, 80_000)),
                ..RateLimit::default()
            },
            at(0),
        );
        b.observe(
            &RateLimit {
                window: Some(budget(300, 298, 900)),
                ..RateLimit::default()
            },
            at(0),
        );
        assert_eq!(b.window.unwrap().remaining, 298);
        assert_eq!(b.user_24h.unwrap().remaining, 3);
    }

    #[test]
    fn an_absurd_reset_is_kept_as_a_short_wait_and_reported() {
        let mut b = EndpointBudget::default();
        // x-rate-limit-reset: 100 000 000 000 (year 5138), nothing left.
        b.observe(
            &RateLimit {
                window: Some(Budget {
                    limit: 300,
                    remaining: 0,
                    reset: DateTime::<Utc>::from_timestamp(100_000_000_000, 0).unwrap(),
                }),
                ..RateLimit::default()
            },
            at(0),
        );
        assert_eq!(b.implausible_reset.unwrap().timestamp(), 100_000_000_000);
        assert_eq!(
            b.spent_until(at(0)),
            Some(at(0) + to_chrono(IMPLAUSIBLE_RESET_RETRY))
        );
        // After that sane interval a request may go again (F works).
        assert_eq!(b.spent_until(at(15 * 60 + 1)), None);
    }

    #[test]
    fn pace_spreads_what_is_left_above_the_reserve_until_the_reset() {
        // 900 s to go, 300 left of 300, 30 in reserve: one poll per 900/270 s.
        let b = EndpointBudget {
            window: Some(budget(300, 300, 900)),
            ..Default::default()
        };
        assert_eq!(b.pace(at(0), 1), Duration::from_secs(900) / 270);
        // Only the reserve left: regular polls wait for the reset.
        let low = EndpointBudget {
            window: Some(budget(300, 30, 600)),
            ..Default::default()
        };
        assert_eq!(low.pace(at(0), 1), Duration::from_secs(600));
        // After the reset the window has renewed: no pace.
        assert_eq!(low.pace(at(601), 1), Duration::ZERO);
        assert_eq!(EndpointBudget::default().pace(at(0), 1), Duration::ZERO);
    }

    #[test]
    fn the_tightest_budget_sets_the_pace_and_the_app_cap_is_shared() {
        let b = EndpointBudget {
            window: Some(budget(300, 300, 900)),
            user_24h: Some(budget(100, 50, 86_400)),
            app_24h: Some(budget(10_000, 5_000, 86_400)),
            ..Default::default()
        };
        // user cap: 86 400 s / (50 - 10) = 2 160 s, tighter than the window's 3.3 s.
        assert_eq!(b.pace(at(0), 1), Duration::from_secs(2160));
        // app cap: 4 000 spendable shared by 400 accounts = 10 each: 8 640 s.
        assert_eq!(b.pace(at(0), 400), Duration::from_secs(8640));
    }
}
