//! The engine's money side: monthly budgets (pause and resume by themselves), the 402
//! CreditsDepleted stop, the 80% warnings, and the hourly read of X's own usage count. The
//! decisions are `crate::costs`' pure rules and the `SpendGate`; this file only applies them to
//! the engine's accounts.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, Timelike, Utc};
use tokio::time::Instant;

use super::{Engine, SyncSettings, is_pollable};
use crate::costs::{BUDGET_REACHED_PREFIX, CREDITS_DEPLETED_MESSAGE};
use crate::domain::{Account, AccountId, Secret, SyncStatus};
use crate::store::SharedStore;
use crate::sync::spend::SpendGate;

/// What a finished poll asks of every account.
pub(super) enum MoneyEvent {
    /// The global budget is reached: every account pauses with this message.
    GlobalBudget(String),
    /// X answered 402: every account shows it and nothing is sent until `F` or the next hour.
    CreditsDepleted,
}

pub(super) struct Money {
    pub gate: SpendGate,
    credits_blocked_until: Option<DateTime<Utc>>,
    next_check: Instant,
    check_interval: Duration,
    bearer: Option<Secret>,
    usage_interval: Duration,
    next_usage: Instant,
    usage_running: Arc<AtomicBool>,
}

/// A pause the budget made (the user's own pause clears `is_active`).
pub(super) fn is_budget_pause(account: &Account) -> bool {
    account.is_active
        && account.sync_status == SyncStatus::Paused
        && account
            .error_message
            .as_deref()
            .is_some_and(|m| m.starts_with(BUDGET_REACHED_PREFIX))
}

/// The start of the next UTC hour.
fn next_hour(now: DateTime<Utc>) -> DateTime<Utc> {
    let start = now
        .with_minute(0)
        .and_then(|t| t.with_second(0))
        .and_then(|t| t.with_nanosecond(0))
        .unwrap_or(now);
    start + chrono::Duration::hours(1)
}

impl Money {
    pub fn new(store: &SharedStore, settings: &SyncSettings) -> Money {
        let now = Instant::now();
        Money {
            gate: SpendGate::new(store.clone(), settings.budgets.clone()),
            credits_blocked_until: None,
            next_check: now,
            check_interval: settings
                .budget_check_interval
                .max(Duration::from_millis(50)),
            bearer: settings.app_bearer_token.clone(),
            usage_interval: settings.usage_interval.max(Duration::from_secs(1)),
            // The first comparison once the first polls are in, then every interval.
            next_usage: now + settings.usage_interval.min(Duration::from_secs(30)),
            usage_running: Arc::default(),
        }
    }

    /// When the engine must look at the money side again.
    pub fn next_tick(&self) -> Instant {
        let mut at = self.next_check;
        if self.bearer.is_some() {
            at = at.min(self.next_usage);
        }
        if let Some(until) = self.credits_blocked_until {
            let wait = (until - Utc::now()).to_std().unwrap_or_default();
            at = at.min(Instant::now() + wait);
        }
        at
    }

    /// Whether a 402 still stops every request (it ends by itself at the next hour).
    pub fn credits_blocked(&mut self, now: DateTime<Utc>) -> bool {
        match self.credits_blocked_until {
            Some(until) if until > now => true,
            Some(_) => {
                self.credits_blocked_until = None;
                false
            }
            None => false,
        }
    }

    pub fn clear_credits_block(&mut self) {
        self.credits_blocked_until = None;
    }
}

impl Engine {
    /// Resumes budget-paused accounts the budget allows again, gives due warnings, and reads
    /// X's usage count when it is time.
    pub(super) async fn money_tick(&mut self) {
        let now = Instant::now();
        if now >= self.money.next_check {
            self.money.next_check = now + self.money.check_interval;
            self.reload_budgets();
            let utc_now = Utc::now();
            let resumable: Vec<AccountId> = self
                .slots
                .values()
                .filter(|s| is_budget_pause(&s.account))
                .filter(|s| self.money.gate.reached(&s.account, utc_now).is_none())
                .map(|s| s.account.id)
                .collect();
            for id in resumable {
                let updated = self
                    .update_account(id, |a| {
                        if is_budget_pause(a) {
                            a.sync_status = SyncStatus::Active;
                            a.error_message = None;
                        }
                    })
                    .await;
                if updated.is_some() {
                    if let Some(slot) = self.slots.get_mut(&id) {
                        slot.urgent = true;
                    }
                    tracing::info!(account = %id, "budget allows polling again: resumed");
                }
            }
            self.budget_warnings().await;
        }
        if let Some(bearer) = self.money.bearer.clone()
            && now >= self.money.next_usage
        {
            self.money.next_usage = now + self.money.usage_interval;
            self.read_x_usage(bearer);
        }
    }

    /// Picks up budgets changed in the config file while perch runs (a raised budget resumes
    /// the accounts it paused at the next check). A file that no longer reads keeps the budgets
    /// in force.
    fn reload_budgets(&mut self) {
        let Some(reload) = self.settings.reload_budgets else {
            return;
        };
        match reload() {
            Ok(budgets) if budgets != self.money.gate.budgets() => {
                tracing::info!("monthly budgets changed in the config file");
                self.money.gate.set_budgets(budgets);
            }
            Ok(_) => {}
            Err(e) => tracing::warn!("keeping the budgets in force: {e}"),
        }
    }

    /// Applies what a poll's outcome means for every account.
    pub(super) async fn money_event(&mut self, event: MoneyEvent) {
        match event {
            MoneyEvent::GlobalBudget(message) => {
                let ids: Vec<AccountId> = self
                    .slots
                    .values()
                    .filter(|s| is_pollable(&s.account))
                    .map(|s| s.account.id)
                    .collect();
                for id in ids {
                    let message = message.clone();
                    self.update_account(id, move |a| {
                        if a.is_active && a.sync_status != SyncStatus::TokenExpired {
                            a.sync_status = SyncStatus::Paused;
                            a.error_message = Some(message);
                        }
                    })
                    .await;
                }
            }
            MoneyEvent::CreditsDepleted => {
                let until = next_hour(Utc::now());
                self.money.credits_blocked_until = Some(until);
                let ids: Vec<AccountId> = self
                    .slots
                    .values()
                    .filter(|s| is_pollable(&s.account))
                    .map(|s| s.account.id)
                    .collect();
                for id in ids {
                    self.update_account(id, |a| {
                        if a.is_active && a.sync_status != SyncStatus::TokenExpired {
                            a.sync_status = SyncStatus::Error;
                            a.error_message = Some(CREDITS_DEPLETED_MESSAGE.to_string());
                        }
                    })
                    .await;
                }
                self.notice(
                    None,
                    format!(
                        "{CREDITS_DEPLETED_MESSAGE}; perch sends nothing until {} UTC (or press F after topping up)",
                        until.format("%H:%M")
                    ),
                )
                .await;
            }
        }
    }

    /// The 80% warnings, once each per month (visible as notices).
    pub(super) async fn budget_warnings(&mut self) {
        if self.money.gate.budgets() == crate::costs::Budgets::default() {
            return;
        }
        let accounts: Vec<Account> = self.slots.values().map(|s| s.account.clone()).collect();
        for warning in self.money.gate.warnings(&accounts, Utc::now()) {
            tracing::warn!("{warning}");
            self.notice(None, warning).await;
        }
    }

    /// Reads `GET /2/usage/tweets` with the app Bearer token in the background and keeps the
    /// answer in the store (one read at a time).
    fn read_x_usage(&self, bearer: Secret) {
        if self.money.usage_running.swap(true, Ordering::AcqRel) {
            return;
        }
        let (client, store, running) = (
            self.client.clone(),
            self.store.clone(),
            self.money.usage_running.clone(),
        );
        tokio::spawn(async move {
            if let Err(e) = crate::sync::spend::refresh_x_usage(&client, &store, &bearer).await {
                tracing::info!("{e}");
            }
            running.store(false, Ordering::Release);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_credits_stop_ends_at_the_next_hour() {
        let t = DateTime::parse_from_rfc3339("2026-12-01T09:41:07Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(next_hour(t).to_rfc3339(), "2026-12-01T10:00:00+00:00");
    }

    #[test]
    fn only_a_budget_message_on_an_active_account_is_a_budget_pause() {
        let mut a = Account::new("1".into(), "a".into(), "A".into(), None, Utc::now());
        a.sync_status = SyncStatus::Paused;
        a.error_message = Some(
            "budget reached ($0.05 of $0.05): raise monthly_budget_usd or wait until 1 Jan".into(),
        );
        assert!(is_budget_pause(&a));
        a.is_active = false;
        assert!(!is_budget_pause(&a));
    }
}
