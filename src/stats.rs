//! Account statistics, computed from the store's counters (never by scanning mentions).

use chrono::{DateTime, Utc};

use crate::domain::{Account, AccountStats, MentionStatus};
use crate::store::{FeedFilter, Result, Store};

/// The figures of `perch accounts stats` and the stats view.
pub fn account_stats(store: &Store, account: &Account, now: DateTime<Utc>) -> Result<AccountStats> {
    let count = |status: Option<MentionStatus>| {
        store.count(&FeedFilter {
            account: Some(account.id),
            status,
        })
    };
    let total = count(None)?;
    let pending = count(Some(MentionStatus::Pending))?;
    let replied = count(Some(MentionStatus::Replied))?;
    // Tracked since the account was added; at least one day so the average is meaningful.
    let days_tracked = ((now - account.added_at).num_days().max(0) as u64) + 1;
    Ok(AccountStats {
        account_id: account.id,
        username: account.twitter_username.clone(),
        total_mentions: total,
        pending_mentions: pending,
        replied_mentions: replied,
        days_tracked,
        avg_mentions_per_day: ((total as f64 / days_tracked as f64) * 100.0).round() / 100.0,
        last_synced: account.last_synced_at,
        sync_status: account.sync_status,
        is_active: account.is_active,
    })
}
