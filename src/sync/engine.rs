//! The scheduler: one tokio task owns the schedule of every account; polls run as separate tasks,
//! at most `max_in_flight` at once, and report back through a channel. Only this task writes an
//! account's sync fields (status, error, last sync), so a poll finishing after a pause can never
//! flip the account back to active.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::auth::{AuthError, CallError, TokenManager};
use crate::domain::{Account, AccountId, SyncStatus};
use crate::store::Store;
use crate::x::{Budget, XClient, XError};

use super::poll::{PollError, PollOutcome, poll_account};
use super::{Command, SyncEvent};

/// How the engine schedules polls.
#[derive(Clone, Debug)]
pub struct SyncSettings {
    /// The default interval between two polls of an account.
    pub poll_interval: Duration,
    /// Per-account overrides, by X username (lower case, no `@`).
    pub interval_overrides: HashMap<String, Duration>,
    /// Polls running at once across all accounts.
    pub max_in_flight: usize,
    /// How many mentions the first sync of an account fetches at most (X returns 800 at most).
    pub backfill_cap: usize,
    /// First retry delay after a transient failure; doubles per failure, with jitter.
    pub backoff_base: Duration,
    /// The longest delay between retries.
    pub backoff_cap: Duration,
    /// Consecutive transient failures before the account shows `error`.
    pub failures_before_error: u32,
    /// Interval while X refuses for a reason only the user can fix (402 credits, 403 enrolment).
    pub blocked_interval: Duration,
}

impl SyncSettings {
    pub fn from_config(cfg: &crate::config::Config) -> SyncSettings {
        SyncSettings {
            poll_interval: Duration::from_secs(cfg.poll_interval_secs),
            interval_overrides: cfg
                .accounts
                .iter()
                .filter_map(|(handle, a)| {
                    a.poll_interval_secs.map(|s| {
                        (
                            handle.trim_start_matches('@').to_lowercase(),
                            Duration::from_secs(s.max(1)),
                        )
                    })
                })
                .collect(),
            max_in_flight: cfg.max_in_flight,
            backfill_cap: cfg.backfill_cap,
            ..SyncSettings::default()
        }
    }

    fn interval_for(&self, account: &Account) -> Duration {
        self.interval_overrides
            .get(&account.twitter_username.to_lowercase())
            .copied()
            .unwrap_or(self.poll_interval)
    }
}

impl Default for SyncSettings {
    fn default() -> SyncSettings {
        SyncSettings {
            poll_interval: Duration::from_secs(crate::config::DEFAULT_POLL_INTERVAL_SECS),
            interval_overrides: HashMap::new(),
            max_in_flight: 4,
            backfill_cap: 800,
            backoff_base: Duration::from_secs(5),
            backoff_cap: Duration::from_secs(300),
            failures_before_error: 3,
            blocked_interval: Duration::from_secs(900),
        }
    }
}

/// The channels that connect the engine to its owner.
pub struct SyncHandle {
    pub commands: mpsc::Sender<Command>,
    pub events: mpsc::Receiver<SyncEvent>,
    pub task: JoinHandle<()>,
}

/// Starts the engine over every account in the store.
pub fn spawn(
    store: Store,
    client: XClient,
    tokens: TokenManager,
    settings: SyncSettings,
) -> SyncHandle {
    let (command_tx, command_rx) = mpsc::channel(64);
    // Bounded: if the UI stalls, polls wait rather than queue without limit.
    let (event_tx, event_rx) = mpsc::channel(1024);
    let engine = Engine {
        store,
        client,
        tokens,
        semaphore: Arc::new(Semaphore::new(settings.max_in_flight.max(1))),
        settings,
        slots: HashMap::new(),
        events: event_tx,
    };
    let task = tokio::spawn(engine.run(command_rx));
    SyncHandle {
        commands: command_tx,
        events: event_rx,
        task,
    }
}

/// What the engine knows about one account's schedule.
struct Slot {
    account: Account,
    next_at: Instant,
    running: bool,
    /// A fetch-now arrived while a poll was running: poll again right after it (once).
    again: bool,
    /// Consecutive transient failures (timeouts, resets, 5xx).
    failures: u32,
    /// The mentions endpoint's last known budget.
    budget: Option<Budget>,
    /// Remove the account once the running poll has finished.
    remove_after: Option<bool>,
}

struct Engine {
    store: Store,
    client: XClient,
    tokens: TokenManager,
    settings: SyncSettings,
    semaphore: Arc<Semaphore>,
    slots: HashMap<AccountId, Slot>,
    events: mpsc::Sender<SyncEvent>,
}

impl Engine {
    async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        self.load_accounts().await;
        let (done_tx, mut done_rx) = mpsc::channel::<PollOutcome>(64);
        loop {
            self.start_due_polls(&done_tx);
            let wake = self.next_wake();
            tokio::select! {
                command = commands.recv() => match command {
                    None | Some(Command::Shutdown) => break,
                    Some(command) => self.handle_command(command).await,
                },
                Some(outcome) = done_rx.recv() => self.finish_poll(outcome).await,
                _ = tokio::time::sleep_until(wake) => {}
            }
        }
        tracing::info!("sync engine stopped");
    }

    async fn load_accounts(&mut self) {
        let store = self.store.clone();
        let accounts = match tokio::task::spawn_blocking(move || store.accounts()).await {
            Ok(Ok(accounts)) => accounts,
            Ok(Err(e)) => {
                self.notice(None, format!("cannot read accounts: {e}"))
                    .await;
                return;
            }
            Err(e) => {
                tracing::error!("account load task failed: {e}");
                return;
            }
        };
        let now = Instant::now();
        for (i, account) in accounts.into_iter().enumerate() {
            // Spread the first polls a little so a large set does not start as one burst.
            let next_at = now + Duration::from_millis(50 * i as u64);
            self.slots.insert(account.id, Slot::new(account, next_at));
        }
    }

    fn next_wake(&self) -> Instant {
        let far = Instant::now() + Duration::from_secs(3600);
        self.slots
            .values()
            .filter(|s| !s.running && is_pollable(&s.account))
            .map(|s| s.next_at)
            .min()
            .unwrap_or(far)
            .max(Instant::now())
    }

    fn start_due_polls(&mut self, done: &mpsc::Sender<PollOutcome>) {
        let now = Instant::now();
        let mut due: Vec<(Instant, AccountId)> = self
            .slots
            .iter()
            .filter(|(_, s)| !s.running && is_pollable(&s.account) && s.next_at <= now)
            .map(|(id, s)| (s.next_at, *id))
            .collect();
        // The longest-waiting account goes first, so none starves behind the others.
        due.sort();
        for (_, id) in due {
            let Ok(permit) = self.semaphore.clone().try_acquire_owned() else {
                break;
            };
            let Some(slot) = self.slots.get_mut(&id) else {
                continue;
            };
            slot.running = true;
            let account = slot.account.clone();
            let budget = slot.budget;
            let (store, client, tokens) =
                (self.store.clone(), self.client.clone(), self.tokens.clone());
            let (events, done) = (self.events.clone(), done.clone());
            let cap = self.settings.backfill_cap;
            tokio::spawn(async move {
                let _ = events
                    .send(SyncEvent::Started {
                        account_id: account.id,
                    })
                    .await;
                let outcome =
                    poll_account(&store, &client, &tokens, &account, budget, cap, &events).await;
                drop(permit);
                let _ = done.send(outcome).await;
            });
        }
    }

    async fn handle_command(&mut self, command: Command) {
        match command {
            Command::FetchNow(Some(id)) => self.fetch_now(id).await,
            Command::FetchNow(None) => {
                let ids: Vec<AccountId> = self.slots.keys().copied().collect();
                for id in ids {
                    if self.slots.get(&id).is_some_and(|s| is_pollable(&s.account)) {
                        self.fetch_now(id).await;
                    }
                }
            }
            Command::Pause(id) => {
                self.set_active(id, false).await;
            }
            Command::Resume(id) => {
                self.set_active(id, true).await;
            }
            Command::AccountAdded(id) => {
                let store = self.store.clone();
                match tokio::task::spawn_blocking(move || store.account(id)).await {
                    Ok(Ok(Some(account))) => {
                        let _ = self
                            .events
                            .send(SyncEvent::AccountUpdated(account.clone()))
                            .await;
                        match self.slots.get_mut(&id) {
                            Some(slot) => {
                                slot.account = account;
                                slot.failures = 0;
                                slot.next_at = Instant::now();
                                if slot.running {
                                    slot.again = true;
                                }
                            }
                            None => {
                                self.slots.insert(id, Slot::new(account, Instant::now()));
                            }
                        }
                    }
                    Ok(Ok(None)) => {}
                    Ok(Err(e)) => {
                        self.notice(Some(id), format!("cannot read account: {e}"))
                            .await
                    }
                    Err(e) => tracing::error!("account read task failed: {e}"),
                }
            }
            Command::Remove {
                account_id,
                delete_mentions,
            } => match self.slots.get_mut(&account_id) {
                Some(slot) if slot.running => slot.remove_after = Some(delete_mentions),
                _ => self.remove_now(account_id, delete_mentions).await,
            },
            Command::Shutdown => {}
        }
    }

    async fn fetch_now(&mut self, id: AccountId) {
        let now = Instant::now();
        let Some(slot) = self.slots.get_mut(&id) else {
            return;
        };
        if !is_pollable(&slot.account) {
            let message = format!(
                "{} is {}: not fetching",
                slot.account.handle(),
                slot.account.sync_status
            );
            self.notice(Some(id), message).await;
            return;
        }
        if slot.running {
            // Coalesce: however many presses arrive during a poll, one more poll follows it.
            slot.again = true;
            return;
        }
        if let Some(reset) = exhausted_until(slot.budget, Utc::now()) {
            slot.next_at = slot.next_at.min(instant_at(reset));
            let message = format!(
                "{}: rate-limit budget spent; fetching at {}",
                slot.account.handle(),
                reset.with_timezone(&chrono::Local).format("%H:%M:%S")
            );
            self.notice(Some(id), message).await;
            return;
        }
        slot.next_at = now;
    }

    async fn set_active(&mut self, id: AccountId, active: bool) {
        let updated = self
            .update_account(id, move |a| {
                a.is_active = active;
                a.sync_status = if active {
                    SyncStatus::Active
                } else {
                    SyncStatus::Paused
                };
                a.error_message = None;
            })
            .await;
        if let (Some(_), Some(slot)) = (updated, self.slots.get_mut(&id)) {
            slot.failures = 0;
            if active {
                slot.next_at = Instant::now();
            }
        }
    }

    async fn remove_now(&mut self, id: AccountId, delete_mentions: bool) {
        self.slots.remove(&id);
        let store = self.store.clone();
        match tokio::task::spawn_blocking(move || store.remove_account(id, delete_mentions)).await {
            Ok(Ok(())) => {
                let _ = self
                    .events
                    .send(SyncEvent::AccountRemoved { account_id: id })
                    .await;
            }
            Ok(Err(e)) => self.notice(Some(id), format!("removing failed: {e}")).await,
            Err(e) => tracing::error!("remove task failed: {e}"),
        }
    }

    async fn finish_poll(&mut self, outcome: PollOutcome) {
        let id = outcome.account_id;
        let now = Instant::now();
        let Some(slot) = self.slots.get_mut(&id) else {
            return;
        };
        slot.running = false;
        if outcome.budget.is_some() {
            slot.budget = outcome.budget;
        }
        if let Some(delete_mentions) = slot.remove_after.take() {
            self.remove_now(id, delete_mentions).await;
            return;
        }
        let interval = self.settings.interval_for(&slot.account);
        let again = std::mem::take(&mut slot.again);
        // What to write to the account, decided here; written below.
        let mut status_change: Option<(SyncStatus, Option<String>)> = None;
        let mut synced_at: Option<DateTime<Utc>> = None;
        let inserted = outcome.inserted;
        match outcome.result {
            Ok(()) => {
                slot.failures = 0;
                slot.next_at = now + interval;
                if let Some(reset) = exhausted_until(slot.budget, Utc::now()) {
                    slot.next_at = slot.next_at.max(instant_at(reset));
                }
                if again && slot.next_at > now {
                    slot.next_at = if exhausted_until(slot.budget, Utc::now()).is_some() {
                        slot.next_at
                    } else {
                        now
                    };
                }
                synced_at = Some(Utc::now());
                status_change = Some((SyncStatus::Active, None));
            }
            Err(PollError::RateLimited { reset }) => {
                let reset = reset.unwrap_or_else(|| Utc::now() + chrono::Duration::seconds(60));
                slot.next_at = instant_at(reset);
                let until = reset.with_timezone(&chrono::Local).format("%H:%M");
                status_change = Some((
                    SyncStatus::RateLimited,
                    Some(format!("rate limited until {until}")),
                ));
            }
            Err(PollError::TokenExpired(message)) => {
                status_change = Some((SyncStatus::TokenExpired, Some(message)));
            }
            Err(PollError::Transient(message)) => {
                slot.failures += 1;
                let delay = backoff(
                    self.settings.backoff_base,
                    self.settings.backoff_cap,
                    slot.failures,
                );
                slot.next_at = now + delay;
                if slot.failures >= self.settings.failures_before_error {
                    status_change = Some((
                        SyncStatus::Error,
                        Some(format!(
                            "{message} ({} failures in a row; retrying in {}s)",
                            slot.failures,
                            delay.as_secs()
                        )),
                    ));
                }
            }
            Err(PollError::Blocked(message)) => {
                slot.next_at = now + self.settings.blocked_interval;
                status_change = Some((SyncStatus::Error, Some(message)));
            }
            Err(PollError::Rejected(message)) => {
                // A page perch cannot read: retry later, the cursor did not move.
                slot.failures += 1;
                slot.next_at = now
                    + backoff(
                        self.settings.backoff_base,
                        self.settings.backoff_cap,
                        slot.failures,
                    );
                status_change = Some((SyncStatus::Error, Some(message)));
            }
        }
        let next_poll_at =
            Some(Utc::now() + to_chrono(slot.next_at.saturating_duration_since(now)));
        if let Some((status, message)) = status_change {
            let updated = self
                .update_account(id, move |a| {
                    // A pause that arrived during the poll wins over the poll's outcome.
                    if a.is_active {
                        a.sync_status = status;
                        a.error_message = message;
                    }
                    if let Some(at) = synced_at {
                        a.last_synced_at = Some(at);
                    }
                    a.total_mentions_tracked += inserted as u64;
                })
                .await;
            if updated.is_none() {
                return;
            }
        }
        let _ = self
            .events
            .send(SyncEvent::Finished {
                account_id: id,
                inserted,
                next_poll_at,
            })
            .await;
    }

    /// Re-reads the account, applies `change`, writes it back and tells the UI.
    async fn update_account(
        &mut self,
        id: AccountId,
        change: impl FnOnce(&mut Account) + Send + 'static,
    ) -> Option<Account> {
        let store = self.store.clone();
        let result =
            tokio::task::spawn_blocking(move || -> crate::store::Result<Option<Account>> {
                let Some(mut account) = store.account(id)? else {
                    return Ok(None);
                };
                change(&mut account);
                account.updated_at = Utc::now();
                store.put_account(&account)?;
                Ok(Some(account))
            })
            .await;
        match result {
            Ok(Ok(Some(account))) => {
                if let Some(slot) = self.slots.get_mut(&id) {
                    slot.account = account.clone();
                }
                let _ = self
                    .events
                    .send(SyncEvent::AccountUpdated(account.clone()))
                    .await;
                Some(account)
            }
            Ok(Ok(None)) => {
                self.slots.remove(&id);
                None
            }
            Ok(Err(e)) => {
                self.notice(Some(id), format!("cannot save account: {e}"))
                    .await;
                None
            }
            Err(e) => {
                tracing::error!("account update task failed: {e}");
                None
            }
        }
    }

    async fn notice(&self, account_id: Option<AccountId>, message: String) {
        tracing::info!(?account_id, "{message}");
        let _ = self
            .events
            .send(SyncEvent::Notice {
                account_id,
                message,
            })
            .await;
    }
}

impl Slot {
    fn new(account: Account, next_at: Instant) -> Slot {
        Slot {
            account,
            next_at,
            running: false,
            again: false,
            failures: 0,
            budget: None,
            remove_after: None,
        }
    }
}

/// Accounts the engine polls: active ones, and rate-limited/errored ones waiting to retry.
/// Paused and token-expired accounts wait for the user.
fn is_pollable(account: &Account) -> bool {
    account.is_active
        && !matches!(
            account.sync_status,
            SyncStatus::Paused | SyncStatus::TokenExpired
        )
}

/// When the budget is spent, the time it comes back.
pub(crate) fn exhausted_until(budget: Option<Budget>, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    budget
        .filter(|b| b.remaining == 0 && b.reset > now)
        .map(|b| b.reset)
}

/// Exponential backoff with full jitter in the upper half: base·2^(n-1), capped.
pub(crate) fn backoff(base: Duration, cap: Duration, failures: u32) -> Duration {
    let exp = base.saturating_mul(1u32 << failures.saturating_sub(1).min(16));
    let ceiling = exp.min(cap);
    let half = ceiling / 2;
    let jitter = rand::rng().random_range(0..=half.as_millis() as u64);
    half + Duration::from_millis(jitter)
}

fn instant_at(at: DateTime<Utc>) -> Instant {
    let delta = (at - Utc::now()).to_std().unwrap_or_default();
    Instant::now() + delta
}

fn to_chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or_else(|_| chrono::Duration::seconds(0))
}

impl From<CallError> for PollError {
    fn from(e: CallError) -> PollError {
        match e {
            CallError::Auth(AuthError::RefreshRejected { .. }) => {
                PollError::TokenExpired(e.to_string())
            }
            CallError::Auth(other) => PollError::Transient(other.to_string()),
            CallError::X(x) => PollError::from(x),
        }
    }
}

impl From<XError> for PollError {
    fn from(e: XError) -> PollError {
        match e {
            XError::RateLimited { reset, .. } => PollError::RateLimited { reset },
            XError::Unauthorized { .. } => PollError::TokenExpired(
                "X still refuses the token after a refresh: press R to reauthorize".into(),
            ),
            XError::Server { .. } | XError::Network(_) => PollError::Transient(e.to_string()),
            XError::CreditsDepleted { detail } => PollError::Blocked(format!(
                "{detail} Add credits in the X developer portal; perch retries every 15 minutes."
            )),
            XError::Forbidden { detail, reason, .. } => {
                let remedy = if reason.as_deref() == Some("client-not-enrolled") {
                    " Move the app to a package and environment with v2 access (Pay-per-use, Production) in the developer portal."
                } else {
                    ""
                };
                PollError::Blocked(format!("X refused: {detail}{remedy}"))
            }
            XError::Malformed { .. } => PollError::Rejected(e.to_string()),
            XError::InvalidRequest { .. } => PollError::Blocked(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let base = Duration::from_secs(5);
        let cap = Duration::from_secs(300);
        for failures in 1..=20 {
            let ceiling = base.saturating_mul(1 << (failures - 1).min(16)).min(cap);
            for _ in 0..20 {
                let d = backoff(base, cap, failures);
                assert!(d >= ceiling / 2 && d <= ceiling, "{failures}: {d:?}");
            }
        }
        assert!(backoff(base, cap, 30) <= cap);
    }

    #[test]
    fn spent_budget_blocks_until_reset() {
        let now = Utc::now();
        let reset = now + chrono::Duration::seconds(90);
        let spent = Budget {
            limit: 300,
            remaining: 0,
            reset,
        };
        assert_eq!(exhausted_until(Some(spent), now), Some(reset));
        let left = Budget {
            remaining: 1,
            ..spent
        };
        assert_eq!(exhausted_until(Some(left), now), None);
        // A reset in the past means the window has renewed.
        assert_eq!(
            exhausted_until(Some(spent), reset + chrono::Duration::seconds(1)),
            None
        );
    }
}
