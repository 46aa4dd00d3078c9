//! Batching new mentions into bursts: one notification per account per burst.
//!
//! A burst is what arrives for one account while it keeps arriving: it opens with the first new
//! mention and closes once [`BURST_GAP`] passes with nothing more for that account, or
//! [`BURST_MAX`] after it opened, whichever is first. A poll commits its pages moments apart
//! (one burst, however many pages); Activity-stream arrivals come one post at a time, and the
//! gap gathers a flurry of them into one notification; the cap keeps a steady stream from
//! silencing the account for good (at most one notification per account every `BURST_MAX`).
//!
//! The terminal bell rings when a burst opens (so it is immediate) and is silent for the rest of
//! it; the desktop notification and the hook go out when it closes, with the whole count.
//!
//! Pure: the caller passes the time, as a `Duration` from any fixed origin.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::domain::{AccountId, Mention};

/// A burst closes after this long with no new mention for its account.
pub const BURST_GAP: Duration = Duration::from_secs(5);
/// A burst closes this long after it opened, even if mentions keep coming.
pub const BURST_MAX: Duration = Duration::from_secs(30);
/// At most this many mentions are kept per burst (the count stays exact).
pub const BURST_KEEP: usize = 100;

/// The new mentions of one account in one burst.
#[derive(Clone, Debug, PartialEq)]
pub struct Burst {
    pub account_id: AccountId,
    /// How many new mentions (exact, even when `mentions` was capped).
    pub count: usize,
    /// The newest [`BURST_KEEP`] of them, newest first.
    pub mentions: Vec<Mention>,
    opened: Duration,
    last: Duration,
}

impl Burst {
    pub fn new(account_id: AccountId, count: usize, mentions: Vec<Mention>) -> Burst {
        let mut burst = Burst {
            account_id,
            count: 0,
            mentions: Vec::new(),
            opened: Duration::ZERO,
            last: Duration::ZERO,
        };
        burst.merge(count, mentions);
        burst
    }

    /// Adds `count` more new mentions (of which `mentions` are known), keeping the newest.
    pub fn merge(&mut self, count: usize, mentions: Vec<Mention>) {
        self.count += count.max(mentions.len());
        let known: std::collections::HashSet<_> = self.mentions.iter().map(Mention::key).collect();
        self.mentions
            .extend(mentions.into_iter().filter(|m| !known.contains(&m.key())));
        self.mentions
            .sort_by_key(|m| std::cmp::Reverse(m.tweet_id_u64()));
        self.mentions.truncate(BURST_KEEP);
    }

    /// Merges another burst of the same account into this one (a hook queue that fell behind).
    pub fn absorb(&mut self, other: Burst) {
        self.merge(other.count, other.mentions);
    }
}

/// The open bursts, per account.
#[derive(Debug)]
pub struct Bursts {
    open: BTreeMap<AccountId, Burst>,
    gap: Duration,
    max: Duration,
}

impl Default for Bursts {
    fn default() -> Self {
        Bursts::new(BURST_GAP, BURST_MAX)
    }
}

impl Bursts {
    pub fn new(gap: Duration, max: Duration) -> Bursts {
        Bursts {
            open: BTreeMap::new(),
            gap,
            max,
        }
    }

    /// New mentions for `account` at `now`. Returns true when they open a new burst (the moment
    /// for the bell), false when they join one already open.
    pub fn add(
        &mut self,
        account: AccountId,
        count: usize,
        mentions: Vec<Mention>,
        now: Duration,
    ) -> bool {
        if count == 0 && mentions.is_empty() {
            return false;
        }
        // A burst that should have closed already does, first: its time is up.
        let expired = self.open.get(&account).is_some_and(|b| self.is_due(b, now));
        if let Some(burst) = self.open.get_mut(&account).filter(|_| !expired) {
            burst.merge(count, mentions);
            burst.last = now;
            return false;
        }
        let mut burst = Burst::new(account, count, mentions);
        burst.opened = now;
        burst.last = now;
        // An expired one not yet taken is lost to `take_due`; callers take before adding, and
        // the app side keeps no content. Keep the count honest anyway: merge it in.
        if let Some(old) = self.open.remove(&account) {
            burst.count += old.count;
        }
        self.open.insert(account, burst);
        true
    }

    fn is_due(&self, burst: &Burst, now: Duration) -> bool {
        now.saturating_sub(burst.last) >= self.gap || now.saturating_sub(burst.opened) >= self.max
    }

    /// The bursts that have closed by `now`, in account order.
    pub fn take_due(&mut self, now: Duration) -> Vec<Burst> {
        let due: Vec<AccountId> = self
            .open
            .values()
            .filter(|b| self.is_due(b, now))
            .map(|b| b.account_id)
            .collect();
        due.into_iter()
            .filter_map(|id| self.open.remove(&id))
            .collect()
    }

    /// When the next open burst closes (`None`: none is open).
    pub fn next_due(&self) -> Option<Duration> {
        self.open
            .values()
            .map(|b| (b.last + self.gap).min(b.opened + self.max))
            .min()
    }

    pub fn is_open(&self, account: AccountId) -> bool {
        self.open.contains_key(&account)
    }

    /// Forgets an account's open burst (the account was removed).
    pub fn forget(&mut self, account: AccountId) {
        self.open.remove(&account);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    fn account(n: u8) -> AccountId {
        uuid::Uuid::from_bytes([n; 16])
    }

    #[test]
    fn arrivals_close_together_are_one_burst_with_their_total() {
        let mut b = Bursts::default();
        let a = account(1);
        assert!(b.add(a, 3, vec![], s(0)), "the first arrival opens a burst");
        assert!(!b.add(a, 1, vec![], s(2)), "2 s later it joins");
        assert!(
            !b.add(a, 1, vec![], s(6)),
            "4 s after the last it still joins"
        );
        assert!(
            b.take_due(s(10)).is_empty(),
            "not closed 4 s after the last"
        );
        let closed = b.take_due(s(11));
        assert_eq!(closed.len(), 1);
        assert_eq!(closed[0].count, 5);
        assert!(
            b.add(a, 1, vec![], s(12)),
            "the next arrival opens a new one"
        );
    }

    #[test]
    fn each_account_has_its_own_burst() {
        let mut b = Bursts::default();
        assert!(b.add(account(1), 1, vec![], s(0)));
        assert!(b.add(account(2), 2, vec![], s(1)));
        assert_eq!(b.next_due(), Some(s(5)));
        let closed = b.take_due(s(5));
        assert_eq!(closed.iter().map(|b| b.count).collect::<Vec<_>>(), [1]);
        let closed = b.take_due(s(6));
        assert_eq!(closed[0].account_id, account(2));
        assert_eq!(b.next_due(), None);
    }

    #[test]
    fn a_steady_stream_still_notifies_every_burst_max() {
        let mut b = Bursts::default();
        let a = account(1);
        let mut opened = 0;
        let mut closed = Vec::new();
        for t in (0..=60).step_by(2) {
            closed.extend(b.take_due(s(t)));
            if b.add(a, 1, vec![], s(t)) {
                opened += 1;
            }
        }
        assert_eq!(opened, 3, "at 0 s, 30 s and 60 s");
        assert_eq!(closed.iter().map(|b| b.count).sum::<usize>(), 30);
    }

    #[test]
    fn an_empty_arrival_opens_nothing() {
        let mut b = Bursts::default();
        assert!(!b.add(account(1), 0, vec![], s(0)));
        assert_eq!(b.next_due(), None);
    }
}
