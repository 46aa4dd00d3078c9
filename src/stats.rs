//! Account statistics, computed from the store's counters (never by scanning mentions).

use chrono::{DateTime, Utc};

use crate::domain::{Account, AccountStats, MentionStatus};
use crate::store::{FeedFilter, Result};

/// Days of per-day counters read for the average at most (ten years).
const MAX_DAYS: u32 = 3660;

/// The figures of `perch accounts stats` and the stats view.
pub fn account_stats<S: crate::store::ServiceBackend + ?Sized>(
    store: &S,
    account: &Account,
    now: DateTime<Utc>,
) -> Result<AccountStats> {
    let count = |status: Option<MentionStatus>| {
        store.count(&FeedFilter {
            account: Some(account.id),
            status,
        })
    };
    let total = count(None)?;
    let pending = count(Some(MentionStatus::Pending))?;
    let replied = count(Some(MentionStatus::Replied))?;
    // Tracked since the account was added: the calendar days from then to today, both counted.
    // The average is over the mentions posted in those days only: a first sync also fetches
    // X's backlog (up to 800 older posts), which would make one day look like a hundred.
    let today = now.date_naive();
    let first_day = account.added_at.date_naive().min(today);
    let days_tracked = ((today - first_day).num_days().max(0) as u64) + 1;
    let days = u32::try_from(days_tracked)
        .unwrap_or(u32::MAX)
        .min(MAX_DAYS);
    let while_tracked: u64 = store
        .daily_counts(account.id, today, days)?
        .iter()
        .map(|(_, n)| n)
        .sum();
    Ok(AccountStats {
        account_id: account.id,
        username: account.twitter_username.clone(),
        total_mentions: total,
        pending_mentions: pending,
        replied_mentions: replied,
        tracked_since: account.added_at,
        days_tracked,
        mentions_while_tracked: while_tracked,
        avg_mentions_per_day: ((while_tracked as f64 / days_tracked as f64) * 100.0).round()
            / 100.0,
        last_synced: account.last_synced_at,
        sync_status: account.sync_status,
        is_active: account.is_active,
    })
}
