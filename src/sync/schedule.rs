//! When an account is polled next: pure rules, no clock and no I/O, so they are tested directly.
//!
//! # How the schedule is chosen
//!
//! Every account has a base interval `I`: `poll_interval_secs` from the config (default 60 s, or
//! `PERCH_POLL_INTERVAL`), or its own `[accounts.<handle>] poll_interval_secs`. After each
//! successful poll the engine adapts it to how busy the account was ([`Cadence`]):
//!
//! - **bursty**: the poll had to follow `next_token` (a full page, more waiting) or stored at least
//!   [`BURST_MENTIONS`] new mentions → next poll after `I/4`;
//! - **active**: it stored some new mentions → `I/2`;
//! - **quiet**: it stored nothing → one step slower than last time, up to `4·I`
//!   (`I/4 → I/2 → I → 2·I → 4·I`), so an account that goes quiet slows down gradually.
//!
//! Never below one second (or `I` itself, if that is shorter). The rate-limit budget then has the
//! last word: the interval is at least the budget's pace (the time to the reset divided by the
//! requests left above a 10 % reserve, see `budget.rs`), and an account whose budget is spent
//! waits for the reset. So bursty accounts spend their budget faster but never past it, and the
//! reserve keeps fetch-now working. Failures do not use the cadence: timeouts, resets and 5xx back
//! off exponentially ([`backoff`]); a 429 waits for the reset; 402/403 wait a long, fixed interval.

use std::time::Duration;

use rand::Rng;

/// New mentions in one poll that make an account count as bursty.
pub const BURST_MENTIONS: usize = 10;

/// The shortest interval the cadence chooses (unless the base interval is shorter still).
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);

/// How busy an account has been: its interval is `base · 2^level`, level in `-2..=2`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cadence {
    level: i8,
}

impl Cadence {
    const FASTEST: i8 = -2;
    const SLOWEST: i8 = 2;

    /// Learns from one successful poll: how many mentions it stored and how many pages it read.
    pub fn after_poll(&mut self, new_mentions: usize, pages: usize) {
        self.level = if pages > 1 || new_mentions >= BURST_MENTIONS {
            Self::FASTEST
        } else if new_mentions > 0 {
            -1
        } else {
            (self.level + 1).min(Self::SLOWEST)
        };
    }

    /// The interval this cadence gives a base interval.
    pub fn interval(&self, base: Duration) -> Duration {
        let scaled = if self.level >= 0 {
            base.saturating_mul(1 << self.level)
        } else {
            base / (1 << (-self.level))
        };
        scaled.max(MIN_INTERVAL.min(base))
    }
}

/// Exponential backoff with jitter: after `failures` consecutive failures, a delay drawn from
/// the upper half of `base · 2^(failures-1)`, capped at `cap` (so retries of many accounts that
/// failed together spread out instead of returning as one burst).
pub fn backoff(base: Duration, cap: Duration, failures: u32) -> Duration {
    let ceiling = backoff_ceiling(base, cap, failures);
    let half = ceiling / 2;
    let spread = u64::try_from(half.as_millis()).unwrap_or(u64::MAX);
    half + Duration::from_millis(rand::rng().random_range(0..=spread))
}

/// The largest delay [`backoff`] may pick after `failures` failures.
pub fn backoff_ceiling(base: Duration, cap: Duration, failures: u32) -> Duration {
    base.saturating_mul(1u32 << failures.saturating_sub(1).min(20))
        .min(cap)
}

#[cfg(test)]
mod tests {
    use super::*;

    const I: Duration = Duration::from_secs(60);

    #[test]
    fn bursty_accounts_poll_at_a_quarter_and_active_ones_at_half_the_interval() {
        let mut c = Cadence::default();
        assert_eq!(c.interval(I), I);
        c.after_poll(3, 2);
        assert_eq!(c.interval(I), I / 4, "a poll that followed next_token");
        c = Cadence::default();
        c.after_poll(BURST_MENTIONS, 1);
        assert_eq!(c.interval(I), I / 4, "many new mentions");
        c.after_poll(2, 1);
        assert_eq!(c.interval(I), I / 2);
    }

    #[test]
    fn quiet_accounts_slow_down_one_step_per_empty_poll_up_to_four_times() {
        let mut c = Cadence::default();
        c.after_poll(50, 3);
        let steps: Vec<Duration> = (0..6)
            .map(|_| {
                c.after_poll(0, 1);
                c.interval(I)
            })
            .collect();
        assert_eq!(steps, vec![I / 2, I, I * 2, I * 4, I * 4, I * 4]);
    }

    #[test]
    fn the_cadence_never_goes_below_a_second_unless_the_base_is_shorter() {
        let mut c = Cadence::default();
        c.after_poll(100, 2);
        assert_eq!(c.interval(Duration::from_secs(2)), MIN_INTERVAL);
        let tiny = Duration::from_millis(100);
        assert_eq!(c.interval(tiny), tiny);
    }

    #[test]
    fn backoff_grows_doubling_and_is_capped() {
        let base = Duration::from_secs(5);
        let cap = Duration::from_secs(300);
        let ceilings: Vec<u64> = (1..=9)
            .map(|n| backoff_ceiling(base, cap, n).as_secs())
            .collect();
        assert_eq!(ceilings, vec![5, 10, 20, 40, 80, 160, 300, 300, 300]);
        for failures in [1, 2, 5, 30, u32::MAX] {
            let ceiling = backoff_ceiling(base, cap, failures);
            for _ in 0..50 {
                let d = backoff(base, cap, failures);
                assert!(d >= ceiling / 2 && d <= ceiling, "{failures}: {d:?}");
            }
        }
    }
}
