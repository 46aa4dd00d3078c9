//! The dashboard's side of notifications: the terminal bell and the terminal title, decided
//! here as effects (`Effect::Bell`, `Effect::SetTitle`) and written by the terminal (`tui.rs`).
//! Desktop notifications and the hook are the service's (`service/notifier.rs`).
//!
//! The bell rings once per burst (`notify::burst`): when new mentions open one for an account
//! whose `bell` is on, outside quiet hours, and not during the account's first sync (its
//! backfill is not news). The title (`perch · 12 pending`) follows the pending count whenever it
//! changes, in quiet hours too.
//!
//! The clock is the state's (the last tick); quiet hours are local wall-clock times.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::app::message::Effect;
use crate::app::state::AppState;
use crate::domain::AccountId;
use crate::notify::{Bursts, NotifySettings, message};

/// What the dashboard remembers for the bell and the title.
#[derive(Debug, Default)]
pub struct TerminalAlerts {
    pub settings: NotifySettings,
    bursts: Bursts,
    /// The title last asked for (so it is written only when it changes).
    title: Option<String>,
}

impl Clone for TerminalAlerts {
    fn clone(&self) -> Self {
        // The open bursts are bookkeeping of this session's bell, not state to copy.
        TerminalAlerts {
            settings: self.settings.clone(),
            bursts: Bursts::default(),
            title: self.title.clone(),
        }
    }
}

impl TerminalAlerts {
    pub fn new(settings: NotifySettings) -> TerminalAlerts {
        TerminalAlerts {
            settings,
            ..TerminalAlerts::default()
        }
    }
}

fn since_epoch(now: DateTime<Utc>) -> Duration {
    Duration::from_millis(u64::try_from(now.timestamp_millis()).unwrap_or(0))
}

/// `inserted` new mentions were stored for `account_id`: the bell, if this opens a burst.
pub fn on_new_mentions(
    state: &mut AppState,
    account_id: AccountId,
    inserted: usize,
) -> Option<Effect> {
    if inserted == 0 {
        return None;
    }
    let now = state.now();
    let row = state.account(account_id)?;
    // Never synced yet: this is its backfill, not news.
    row.account.last_synced_at?;
    let bell = state
        .alerts
        .settings
        .for_account(&row.account.twitter_username)
        .bell;
    let at = since_epoch(now);
    let alerts = &mut state.alerts;
    alerts.bursts.take_due(at);
    let opened = alerts.bursts.add(account_id, inserted, Vec::new(), at);
    let quiet = alerts
        .settings
        .is_quiet(now.with_timezone(&chrono::Local).time());
    (opened && bell && !quiet).then_some(Effect::Bell)
}

/// The title for the pending count, when it is on and changed since it was last set.
pub fn title(state: &mut AppState) -> Option<Effect> {
    // Not before the accounts are read (the first title is the real count, not a "0 pending"
    // flash while loading), nor with no account to count for.
    if !state.alerts.settings.title || state.accounts.is_empty() {
        return None;
    }
    let title = message::title(state.pending_total);
    if state.alerts.title.as_deref() == Some(title.as_str()) {
        return None;
    }
    state.alerts.title = Some(title.clone());
    Some(Effect::SetTitle(title))
}
