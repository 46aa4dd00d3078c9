//! The scheduler: one tokio task owns the schedule of every account; polls run as separate tasks,
//! at most `max_in_flight` at once, and report back through a channel. Only this task writes an
//! account's sync fields (status, error, last sync), so a poll finishing after a pause can never
//! flip the account back to active.
//!
//! Fairness: when more accounts are due than there are free slots, fetch-now requests go first,
//! then the account that has waited longest (earliest due time), so with 500 accounts none
//! starves. The budget gate ([`Engine::gate`]) runs before every request is started, whatever
//! asked for it (schedule, fetch-now, resume), so no path sends a request X has said it will
//! refuse. See `schedule.rs` for how the interval is chosen.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::auth::{TokenManager, token_expired_message};
use crate::domain::{Account, AccountId, SyncStatus};
use crate::store::SharedStore;
use crate::x::{Budget, ResetTime, XClient, judge_reset};

use super::budget::{EndpointBudget, IMPLAUSIBLE_RESET_RETRY};
use super::poll::{PollError, PollJob, PollOutcome, Resume, poll_account};
use super::schedule::{Cadence, backoff};
use super::{Command, SyncCounters, SyncEvent};

/// How the engine schedules polls.
#[derive(Clone, Debug)]
pub struct SyncSettings {
    /// The default interval between two polls of an account (adapted per account, see
    /// `schedule.rs`).
    pub poll_interval: Duration,
    /// Per-account overrides, by X username (lower case, no `@`).
    pub interval_overrides: HashMap<String, Duration>,
    /// Requests in flight at once across all accounts.
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
    /// Added to every rate-limit reset before polling again: X's reset is in whole seconds and
    /// the two clocks differ a little.
    pub reset_margin: Duration,
    /// Poll every account as soon as the engine starts (the dashboard). Off for one-shot
    /// commands such as `perch mentions fetch --account @h`, which ask with `FetchNow`.
    pub poll_on_start: bool,
    /// The monthly budgets (`monthly_budget_usd`), checked before every request.
    pub budgets: crate::costs::Budgets,
    /// How often budget-paused accounts are checked for resuming (a new month, a raised
    /// budget) and the 80% warnings are looked at.
    pub budget_check_interval: Duration,
    /// The app-only Bearer token: when set, X's own usage count is read once an hour.
    pub app_bearer_token: Option<crate::domain::Secret>,
    /// How often `GET /2/usage/tweets` is read.
    pub usage_interval: Duration,
    /// Re-reads the budgets (from the config file) at each budget check; `None`: they are fixed.
    pub reload_budgets: Option<fn() -> Result<crate::costs::Budgets, String>>,
    /// The Activity stream (off by default; on for the dashboard's or the service's engine).
    pub stream: super::stream::StreamSettings,
}

impl SyncSettings {
    pub fn from_config(cfg: &crate::config::Config) -> SyncSettings {
        SyncSettings {
            poll_interval: Duration::from_secs(cfg.poll_interval_secs.max(1)),
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
            max_in_flight: cfg.max_in_flight.max(1),
            backfill_cap: cfg.backfill_cap,
            backoff_base: Duration::from_secs(cfg.backoff_base_secs),
            backoff_cap: Duration::from_secs(cfg.backoff_cap_secs.max(cfg.backoff_base_secs)),
            budgets: cfg.budgets.clone(),
            app_bearer_token: cfg.app_bearer_token.clone(),
            reload_budgets: Some(|| {
                crate::config::Config::load()
                    .map(|c| c.budgets)
                    .map_err(|e| e.to_string())
            }),
            // Whoever builds settings from the config runs the engine of the dashboard or the
            // service: the one process that holds the stream. CLI commands use `fetch_once`.
            stream: super::stream::StreamSettings {
                enabled: true,
                reconcile_factor: cfg.stream_reconcile_factor.max(1),
                api_key: cfg.api_key.clone(),
                api_secret: cfg.api_secret.clone(),
                ..super::stream::StreamSettings::default()
            },
            ..SyncSettings::default()
        }
    }

    /// The base interval of an account: its override, or the default.
    pub fn interval_for(&self, account: &Account) -> Duration {
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
            reset_margin: Duration::from_secs(1),
            poll_on_start: true,
            budgets: crate::costs::Budgets::default(),
            budget_check_interval: Duration::from_secs(60),
            app_bearer_token: None,
            usage_interval: Duration::from_secs(3600),
            reload_budgets: None,
            stream: super::stream::StreamSettings::default(),
        }
    }
}

/// What the owner keeps of a [`SyncHandle`] once the events have gone to the UI: the way to stop
/// the engine and wait for it.
pub struct SyncHandleParts {
    pub commands: mpsc::Sender<Command>,
    pub task: JoinHandle<()>,
}

/// The channels that connect the engine to its owner.
pub struct SyncHandle {
    pub commands: mpsc::Sender<Command>,
    pub events: mpsc::Receiver<SyncEvent>,
    pub task: JoinHandle<()>,
    /// What the engine has done so far.
    pub counters: Arc<SyncCounters>,
}

/// Starts the engine over every account in the store.
pub fn spawn(
    store: SharedStore,
    client: XClient,
    tokens: TokenManager,
    settings: SyncSettings,
) -> SyncHandle {
    let (command_tx, command_rx) = mpsc::channel(64);
    // Bounded: if the UI stalls, polls wait rather than queue without limit.
    let (event_tx, event_rx) = mpsc::channel(1024);
    let counters = Arc::new(SyncCounters::default());
    let engine = Engine {
        money: Money::new(&store, &settings),
        counters: counters.clone(),
        store,
        client,
        tokens,
        semaphore: Arc::new(Semaphore::new(settings.max_in_flight.max(1))),
        settings,
        slots: HashMap::new(),
        app_day: None,
        events: event_tx,
        live: Live::new(),
    };
    let task = tokio::spawn(engine.run(command_rx));
    SyncHandle {
        commands: command_tx,
        events: event_rx,
        task,
        counters,
    }
}

/// What the engine knows about one account's schedule.
struct Slot {
    account: Account,
    /// When the next scheduled poll is due.
    next_at: Instant,
    running: bool,
    /// A fetch-now is waiting for a free slot: it goes before every scheduled poll.
    urgent: bool,
    /// A fetch-now arrived while a poll was running: poll again right after it (once).
    again: bool,
    /// Consecutive failures (timeouts, resets, 5xx, unreadable pages).
    failures: u32,
    /// Consecutive polls that met a malformed page (see `page.rs`).
    malformed_pages: u32,
    /// The last poll found the disk too full to store anything.
    disk_full: bool,
    /// The mentions endpoint's budget (the only endpoint the engine calls).
    budget: EndpointBudget,
    cadence: Cadence,
    /// Where an unfinished poll stopped.
    resume: Option<Resume>,
    /// Remove the account once the running poll has finished.
    remove_after: Option<bool>,
}

struct Engine {
    store: SharedStore,
    client: XClient,
    tokens: TokenManager,
    settings: SyncSettings,
    semaphore: Arc<Semaphore>,
    slots: HashMap<AccountId, Slot>,
    /// The app-wide 24-hour cap, when X reports one: shared by every account.
    app_day: Option<Budget>,
    events: mpsc::Sender<SyncEvent>,
    counters: Arc<SyncCounters>,
    /// Budgets, the 402 stop and the usage reconciliation (`engine_costs.rs`).
    money: Money,
    /// The Activity stream and the subscriptions (`engine_stream.rs`).
    live: Live,
}

#[path = "engine_costs.rs"]
mod engine_costs;
use engine_costs::{Money, MoneyEvent};

#[path = "engine_stream.rs"]
mod engine_stream;
use engine_stream::{Live, live_channels};

impl Engine {
    async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        self.load_accounts().await;
        let (done_tx, mut done_rx) = mpsc::channel::<PollOutcome>(64);
        let (live_tx, mut live_rx) = live_channels();
        // The polls running now. When the engine stops they stop too: a service on PostgreSQL
        // that is no longer the leader must not go on fetching and committing beside the new
        // one (a commit already handed to the store finishes; it is atomic either way).
        let mut polls = tokio::task::JoinSet::new();
        self.start_stream(live_tx).await;
        loop {
            self.money_tick().await;
            self.live_tick().await;
            self.start_due_polls(&done_tx, &mut polls).await;
            let mut wake = self.next_wake().min(self.money.next_tick());
            if let Some(at) = self.live.next_tick() {
                wake = wake.min(at);
            }
            tokio::select! {
                command = commands.recv() => match command {
                    None | Some(Command::Shutdown) => break,
                    Some(command) => self.handle_command(command).await,
                },
                Some(outcome) = done_rx.recv() => self.finish_poll(outcome).await,
                // Reaps finished poll tasks (their outcomes came through `done_rx`).
                Some(_) = polls.join_next(), if !polls.is_empty() => {}
                Some(msg) = live_rx.stream_rx.recv() => self.on_stream(msg).await,
                Some(done) = live_rx.reconciled_rx.recv() => self.on_reconciled(done).await,
                _ = tokio::time::sleep_until(wake) => {}
            }
        }
        polls.abort_all();
        while polls.join_next().await.is_some() {}
        self.live.shutdown();
        tracing::info!("sync engine stopped");
    }

    async fn load_accounts(&mut self) {
        let store = self.store.clone();
        let accounts = match tokio::task::spawn_blocking(move || store.accounts()).await {
            Ok(Ok(accounts)) => accounts,
            Ok(Err(e)) => {
                self.notice(
                    None,
                    format!("cannot read the accounts, so nothing is synced: {e}"),
                )
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
            let next_at = if self.settings.poll_on_start {
                now + Duration::from_millis(20 * i as u64)
            } else {
                now + self.settings.interval_for(&account)
            };
            self.slots.insert(account.id, Slot::new(account, next_at));
        }
    }

    /// When the loop must look at the schedule again (it also wakes on every command and every
    /// finished poll).
    fn next_wake(&self) -> Instant {
        let now = Instant::now();
        let far = now + Duration::from_secs(3600);
        if self.semaphore.available_permits() == 0 {
            // Nothing can start until a poll finishes, and that wakes the loop.
            return far;
        }
        self.slots
            .values()
            .filter(|s| !s.running && is_pollable(&s.account))
            .map(|s| if s.urgent { now } else { s.next_at })
            .min()
            .unwrap_or(far)
            .max(now)
    }

    /// The time X's budget allows this account's next request, when that is not now.
    fn gate(&self, slot: &Slot, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let app = self
            .app_day
            .filter(|b| b.remaining == 0 && b.reset > now)
            .map(|b| b.reset);
        slot.budget.spent_until(now).max(app)
    }

    /// Starts polls that are due, fetch-now first, then longest-waiting first, while slots are
    /// free and the budget allows.
    async fn start_due_polls(
        &mut self,
        done: &mpsc::Sender<PollOutcome>,
        polls: &mut tokio::task::JoinSet<()>,
    ) {
        let now = Instant::now();
        let utc_now = Utc::now();
        if self.money.credits_blocked(utc_now) {
            // 402: X refuses every request of the app; nothing goes until F or the next hour.
            return;
        }
        let mut due: Vec<(bool, Instant, AccountId)> = self
            .slots
            .iter()
            .filter(|(_, s)| {
                !s.running && is_pollable(&s.account) && (s.urgent || s.next_at <= now)
            })
            .map(|(id, s)| (!s.urgent, s.next_at, *id))
            .collect();
        due.sort();
        let mut deferred: Vec<(AccountId, DateTime<Utc>)> = Vec::new();
        for (_, _, id) in due {
            if self.semaphore.available_permits() == 0 {
                break;
            }
            let Some(slot) = self.slots.get(&id) else {
                continue;
            };
            if let Some(reset) = self.gate(slot, utc_now) {
                deferred.push((id, reset));
                continue;
            }
            let Ok(permit) = self.semaphore.clone().try_acquire_owned() else {
                break;
            };
            let Some(slot) = self.slots.get_mut(&id) else {
                continue;
            };
            slot.running = true;
            slot.urgent = false;
            let job = PollJob {
                account: slot.account.clone(),
                budget: slot.budget,
                backfill_cap: self.settings.backfill_cap,
                resume: slot.resume.take(),
                spend: self.money.gate.clone(),
            };
            let (store, client, tokens) =
                (self.store.clone(), self.client.clone(), self.tokens.clone());
            let (events, done) = (self.events.clone(), done.clone());
            let counters = self.counters.clone();
            polls.spawn(async move {
                let account_id = job.account.id;
                let _ = events.send(SyncEvent::Started { account_id }).await;
                let outcome = poll_account(&store, &client, &tokens, job, &events, &counters).await;
                drop(permit);
                let _ = done.send(outcome).await;
            });
        }
        SyncCounters::add(&self.counters.held_back, deferred.len() as u64);
        for (id, reset) in deferred {
            let margin = self.settings.reset_margin;
            if let Some(slot) = self.slots.get_mut(&id) {
                slot.urgent = false;
                slot.next_at = instant_at(reset) + margin;
            }
            self.mark_rate_limited(id, reset).await;
        }
    }

    async fn handle_command(&mut self, command: Command) {
        // Adding creates an account's subscriptions, removing deletes them (pausing and
        // resuming go through `update_account`, which reconciles when pollability changes).
        let accounts_change = matches!(command, Command::AccountAdded(_) | Command::Remove { .. });
        self.handle_command_inner(command).await;
        if accounts_change {
            self.reconcile().await;
        }
    }

    async fn handle_command_inner(&mut self, command: Command) {
        match command {
            Command::FetchNow(Some(id)) => self.fetch_now(id).await,
            Command::FetchNow(None) => {
                self.money.clear_credits_block();
                if let Some(paused) = self
                    .slots
                    .values()
                    .find(|s| engine_costs::is_budget_pause(&s.account))
                {
                    let message = format!(
                        "not fetching the accounts paused by the budget: {}",
                        paused.account.error_message.as_deref().unwrap_or_default()
                    );
                    self.notice(None, message).await;
                }
                let ids: Vec<AccountId> = self
                    .slots
                    .iter()
                    .filter(|(_, s)| is_pollable(&s.account))
                    .map(|(id, _)| *id)
                    .collect();
                for id in ids {
                    self.fetch_now(id).await;
                }
            }
            Command::Pause(id) => self.set_active(id, false).await,
            Command::Resume(id) => self.set_active(id, true).await,
            Command::AccountAdded(id) => self.account_added(id).await,
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

    /// Fetch-now: jumps the queue, coalesces (one extra poll however often it is pressed), and
    /// says when it can run if the budget does not allow it now.
    async fn fetch_now(&mut self, id: AccountId) {
        // `F` after a 402: the user says credits were added; try again now.
        self.money.clear_credits_block();
        let Some(slot) = self.slots.get(&id) else {
            return;
        };
        if !is_pollable(&slot.account) {
            let message = match slot.account.sync_status {
                SyncStatus::TokenExpired => token_expired_message(&slot.account.twitter_username),
                _ if engine_costs::is_budget_pause(&slot.account) => format!(
                    "{}: {}",
                    slot.account.handle(),
                    slot.account.error_message.as_deref().unwrap_or_default()
                ),
                status => format!("{} is {status}: not fetching", slot.account.handle()),
            };
            self.notice(Some(id), message).await;
            return;
        }
        if let Some(reset) = self.gate(slot, Utc::now()) {
            let message = format!(
                "{}: X's rate limit for this account is spent; perch fetches at {}",
                slot.account.handle(),
                clock_time(reset + to_chrono(self.settings.reset_margin))
            );
            self.notice(Some(id), message).await;
            return;
        }
        let Some(slot) = self.slots.get_mut(&id) else {
            return;
        };
        if slot.running {
            slot.again = true;
        } else {
            slot.urgent = true;
        }
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
            slot.again = false;
            // Resuming polls at once (the budget gate still applies); pausing drops any queued
            // fetch-now. A poll already running finishes; its result does not reactivate.
            slot.urgent = active;
        }
    }

    async fn account_added(&mut self, id: AccountId) {
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
                        slot.resume = None;
                        if slot.running {
                            slot.again = true;
                        } else {
                            slot.urgent = true;
                        }
                    }
                    None => {
                        let mut slot = Slot::new(account, Instant::now());
                        slot.urgent = true;
                        self.slots.insert(id, slot);
                    }
                }
            }
            Ok(Ok(None)) => {}
            Ok(Err(e)) => {
                self.notice(Some(id), format!("cannot read the new account: {e}"))
                    .await
            }
            Err(e) => tracing::error!("account read task failed: {e}"),
        }
    }

    async fn remove_now(&mut self, id: AccountId, delete_mentions: bool) {
        let handle = self.slots.remove(&id).map(|slot| slot.account.handle());
        let store = self.store.clone();
        // The tokens are read before the removal deletes them: the grant they belong to is
        // revoked at X after it (`auth::revoke`).
        let removed = tokio::task::spawn_blocking(move || {
            let tokens = store.tokens(id).ok().flatten();
            store.remove_account(id, delete_mentions).map(|()| tokens)
        })
        .await;
        match removed {
            Ok(Ok(tokens)) => {
                // Off the engine's loop (a revoke may wait up to `REVOKE_LIMIT`), and before
                // `AccountRemoved`, so whoever waits for the removal hears first that the revoke
                // failed (the CLI says it the same with and without a service).
                let settings = self.tokens.settings().clone();
                let events = self.events.clone();
                let handle = handle.unwrap_or_else(|| format!("account {id}"));
                tokio::spawn(async move {
                    if let Some(tokens) = tokens
                        && let Err(message) =
                            crate::auth::revoke::revoke_on_removal(&settings, &handle, &tokens)
                                .await
                    {
                        tracing::warn!("{message}");
                        let _ = events
                            .send(SyncEvent::Notice {
                                account_id: Some(id),
                                message,
                            })
                            .await;
                    }
                    let _ = events
                        .send(SyncEvent::AccountRemoved { account_id: id })
                        .await;
                });
            }
            Ok(Err(e)) => {
                self.notice(Some(id), format!("removing the account failed: {e}"))
                    .await
            }
            Err(e) => tracing::error!("remove task failed: {e}"),
        }
    }

    async fn finish_poll(&mut self, outcome: PollOutcome) {
        let id = outcome.account_id;
        let now = Instant::now();
        let utc_now = Utc::now();
        if let Some(day) = outcome.budget.app_24h
            && self.app_day.is_none_or(|known| day.reset >= known.reset)
        {
            self.app_day = Some(day);
        }
        let sharers = self
            .slots
            .values()
            .filter(|s| is_pollable(&s.account))
            .count();
        let settings = self.settings.clone();
        // While the stream delivers this account's mentions, polling is reconciliation: slower.
        let factor = self.interval_factor(id);
        let Some(slot) = self.slots.get_mut(&id) else {
            return;
        };
        slot.running = false;
        if outcome.result.is_err() {
            SyncCounters::add(&self.counters.failed_polls, 1);
        }
        slot.budget = outcome.budget;
        slot.resume = outcome.resume;
        if let Some(delete_mentions) = slot.remove_after.take() {
            self.remove_now(id, delete_mentions).await;
            return;
        }
        let base = settings.interval_for(&slot.account).saturating_mul(factor);
        // One more poll right away if fetch-now was pressed meanwhile (the gate still applies).
        slot.urgent = std::mem::take(&mut slot.again);
        let mut synced_at: Option<DateTime<Utc>> = None;
        let (inserted, senders_filled) = (outcome.inserted, outcome.senders_filled);
        let mut money_event: Option<MoneyEvent> = None;
        if outcome.unreadable > 0 {
            tracing::warn!(account = %slot.account.handle(), skipped = outcome.unreadable, "unreadable posts skipped and recorded");
        }
        if !matches!(outcome.result, Err(PollError::MalformedPage(_))) {
            slot.malformed_pages = 0;
        }
        let was_disk_full = std::mem::replace(
            &mut slot.disk_full,
            matches!(outcome.result, Err(PollError::DiskFull(_))),
        );
        let implausible_reset = slot.budget.implausible_reset;
        // What to write to the account: (status, message), decided here, written below.
        let status_change: Option<(SyncStatus, Option<String>)> = match outcome.result {
            Ok(()) if implausible_reset.is_some() => {
                // The poll went through, but X's headers carry a reset it cannot mean: show it.
                slot.failures = 0;
                let retry = utc_now + to_chrono(IMPLAUSIBLE_RESET_RETRY);
                slot.next_at = now
                    + slot
                        .cadence
                        .interval(base)
                        .max(slot.budget.pace(utc_now, sharers));
                synced_at = Some(utc_now);
                implausible_reset.map(|said| {
                    (
                        SyncStatus::Error,
                        Some(implausible_reset_message(said, retry)),
                    )
                })
            }
            Ok(()) => {
                slot.failures = 0;
                slot.cadence.after_poll(inserted, outcome.pages);
                let interval = slot
                    .cadence
                    .interval(base)
                    .max(slot.budget.pace(utc_now, sharers));
                slot.next_at = now + interval;
                synced_at = Some(utc_now);
                match slot.budget.spent_until(utc_now) {
                    // The poll used the last request X allows before a reset.
                    Some(reset) => {
                        slot.next_at = slot.next_at.max(instant_at(reset) + settings.reset_margin);
                        Some((SyncStatus::RateLimited, Some(rate_limited_message(reset))))
                    }
                    None => Some((SyncStatus::Active, None)),
                }
            }
            Err(PollError::RateLimited { reset, refused }) => {
                // The tracked budget is already sane (`EndpointBudget::observe`); what the 429
                // itself said is judged here: a reset that has passed (clock skew) or none means
                // back off, one that no budget lasts until is a fault.
                let tracked = slot.budget.spent_until(utc_now);
                match judge_reset(reset, utc_now) {
                    ResetTime::Implausible(said) => {
                        slot.failures += 1;
                        let retry = utc_now + to_chrono(IMPLAUSIBLE_RESET_RETRY);
                        slot.next_at = instant_at(retry);
                        tracing::warn!(account = %slot.account.handle(), "X answered 429 with the reset {said}, which cannot be right");
                        Some((
                            SyncStatus::Error,
                            Some(implausible_reset_message(said, retry)),
                        ))
                    }
                    judged => {
                        let reset = match (judged, tracked) {
                            (ResetTime::Ahead(r), tracked) => r.max(tracked.unwrap_or(r)),
                            (_, Some(tracked)) => tracked,
                            (_, None) => {
                                slot.failures += 1;
                                utc_now
                                    + to_chrono(backoff(
                                        settings.backoff_base.max(Duration::from_secs(60)),
                                        settings.backoff_cap,
                                        slot.failures,
                                    ))
                            }
                        };
                        slot.next_at = instant_at(reset) + settings.reset_margin;
                        if refused {
                            tracing::warn!(account = %slot.account.handle(), "X answered 429; waiting until {reset}");
                        }
                        Some((SyncStatus::RateLimited, Some(rate_limited_message(reset))))
                    }
                }
            }
            Err(PollError::MalformedPage(reason)) => {
                // The cursor stayed; ask again after a short back-off, and say so after
                // MALFORMED_PAGES_BEFORE_ERROR polls in a row.
                slot.malformed_pages += 1;
                let delay = backoff(
                    settings.backoff_base,
                    settings.backoff_cap,
                    slot.malformed_pages,
                );
                slot.next_at = now + delay;
                (slot.malformed_pages >= MALFORMED_PAGES_BEFORE_ERROR).then(|| {
                    (
                        SyncStatus::Error,
                        Some(format!(
                            "malformed page: {reason} ({} polls in a row). Nothing was lost; perch asks again at {}",
                            slot.malformed_pages,
                            clock_time(utc_now + to_chrono(delay))
                        )),
                    )
                })
            }
            Err(PollError::MalformedPagination(reason)) => {
                // What was read is stored; the next poll starts again at the usual interval.
                let interval = slot
                    .cadence
                    .interval(base)
                    .max(slot.budget.pace(utc_now, sharers));
                slot.next_at = now + interval;
                Some((
                    SyncStatus::Error,
                    Some(format!(
                        "malformed pagination: {reason} (at {})",
                        clock_time(utc_now + to_chrono(interval))
                    )),
                ))
            }
            Err(PollError::DiskFull(message)) => {
                // Checking for room costs no request: look again often, so syncing resumes soon
                // after space returns.
                slot.failures += 1;
                let cap = settings.backoff_cap.min(DISK_FULL_RECHECK_CAP);
                let delay = backoff(settings.backoff_base, cap, slot.failures);
                slot.next_at = now + delay;
                Some((SyncStatus::Error, Some(message)))
            }
            Err(PollError::TokenExpired(reason)) => {
                tracing::warn!(account = %slot.account.handle(), "token expired: {reason}");
                Some((
                    SyncStatus::TokenExpired,
                    Some(token_expired_message(&slot.account.twitter_username)),
                ))
            }
            Err(PollError::Transient(reason)) => {
                slot.failures += 1;
                let delay = backoff(settings.backoff_base, settings.backoff_cap, slot.failures);
                slot.next_at = now + delay;
                tracing::info!(account = %slot.account.handle(), failures = slot.failures, "poll failed: {reason}");
                (slot.failures >= settings.failures_before_error).then(|| {
                    (
                        SyncStatus::Error,
                        Some(format!(
                            "{reason} ({} failures in a row; perch retries at {})",
                            slot.failures,
                            clock_time(utc_now + to_chrono(delay))
                        )),
                    )
                })
            }
            Err(PollError::Blocked { detail, remedy }) => {
                slot.next_at = now + settings.blocked_interval;
                Some((
                    SyncStatus::Error,
                    Some(format!(
                        "{detail} {remedy}. perch tries again at {}.",
                        clock_time(utc_now + to_chrono(settings.blocked_interval))
                    )),
                ))
            }
            Err(PollError::BudgetReached(reached)) => {
                // Paused by the budget, not by the user: `is_active` stays true and the money
                // check resumes it (a new month, a raised budget).
                slot.next_at = now + base;
                if outcome.pages > 0 {
                    // Pages were stored before the budget stopped the next one.
                    synced_at = Some(utc_now);
                }
                let message = reached.message();
                // Only a global budget that is spent stops every account; too little left for
                // this account's smallest page may still be enough for a cheaper one.
                if !reached.account && !reached.too_little_left {
                    money_event = Some(MoneyEvent::GlobalBudget(message.clone()));
                }
                Some((SyncStatus::Paused, Some(message)))
            }
            Err(PollError::CreditsDepleted(detail)) => {
                tracing::warn!(account = %slot.account.handle(), "X: credits depleted: {detail}");
                money_event = Some(MoneyEvent::CreditsDepleted);
                Some((
                    SyncStatus::Error,
                    Some(crate::costs::CREDITS_DEPLETED_MESSAGE.to_string()),
                ))
            }
            Err(PollError::Rejected(reason)) => {
                // A page perch cannot read: nothing of it was stored, the cursor did not move.
                slot.failures += 1;
                let delay = backoff(settings.backoff_base, settings.backoff_cap, slot.failures);
                slot.next_at = now + delay;
                Some((
                    SyncStatus::Error,
                    Some(format!(
                        "{reason}; the page was not stored, perch retries at {}",
                        clock_time(utc_now + to_chrono(delay))
                    )),
                ))
            }
        };
        // A full disk holds for every account: the others check at once (no request is sent
        // while it lasts), so each shows it instead of failing one by one later.
        let disk_newly_full = slot.disk_full && !was_disk_full;
        let next_poll_at = Some(utc_now + to_chrono(slot.next_at.saturating_duration_since(now)));
        let unchanged = status_change.is_none() && synced_at.is_none() && inserted == 0;
        if !unchanged {
            let updated = self
                .update_account(id, move |a| {
                    if let Some((status, message)) = status_change {
                        // A pause recorded meanwhile wins over the poll's outcome; so does an
                        // expired token (only a new login clears it).
                        let expired = a.sync_status == SyncStatus::TokenExpired
                            && status != SyncStatus::TokenExpired;
                        if a.is_active && !expired {
                            a.sync_status = status;
                            a.error_message = message;
                        }
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
        if let Some(event) = money_event {
            self.money_event(event).await;
        }
        self.budget_warnings().await;
        if disk_newly_full {
            for other in self.slots.values_mut() {
                if !other.disk_full && !other.running && is_pollable(&other.account) {
                    other.urgent = true;
                }
            }
        }
        let _ = self
            .events
            .send(SyncEvent::Finished {
                account_id: id,
                inserted,
                senders_filled,
                next_poll_at,
            })
            .await;
    }

    /// Shows an account as rate limited until `reset` (when the gate holds back a poll that
    /// was asked for).
    async fn mark_rate_limited(&mut self, id: AccountId, reset: DateTime<Utc>) {
        let already = self.slots.get(&id).is_some_and(|s| {
            s.account.sync_status == SyncStatus::RateLimited
                && s.account.error_message.as_deref() == Some(&rate_limited_message(reset))
        });
        if already {
            return;
        }
        self.update_account(id, move |a| {
            if a.is_active && a.sync_status != SyncStatus::TokenExpired {
                a.sync_status = SyncStatus::RateLimited;
                a.error_message = Some(rate_limited_message(reset));
            }
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
                let mut pollable_changed = false;
                if let Some(slot) = self.slots.get_mut(&id) {
                    pollable_changed = is_pollable(&slot.account) != is_pollable(&account);
                    slot.account = account.clone();
                }
                // Paused by the budget, token expired, resumed by a new month...: the
                // subscriptions follow (a paused account costs nothing).
                if pollable_changed {
                    self.reconcile().await;
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
                self.notice(
                    Some(id),
                    format!("cannot save the account's sync state: {e}"),
                )
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
            urgent: false,
            again: false,
            failures: 0,
            malformed_pages: 0,
            disk_full: false,
            budget: EndpointBudget::default(),
            cadence: Cadence::default(),
            resume: None,
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

/// The longest wait between two checks for room while the disk is full.
const DISK_FULL_RECHECK_CAP: Duration = Duration::from_secs(30);

/// Polls in a row that meet a malformed page before the account shows an error.
pub const MALFORMED_PAGES_BEFORE_ERROR: u32 = 3;

/// The fault shown when X's rate-limit headers give a reset no budget lasts until.
fn implausible_reset_message(said: DateTime<Utc>, retry: DateTime<Utc>) -> String {
    format!(
        "X's rate-limit headers say the limit resets on {} UTC, which cannot be right; perch tries again at {} (press F then to try at once)",
        said.format("%Y-%m-%d %H:%M"),
        clock_time(retry)
    )
}

/// "rate limited until 14:05" (local time; with the day when the reset is not today).
pub fn rate_limited_message(reset: DateTime<Utc>) -> String {
    let local = reset.with_timezone(&chrono::Local);
    let when = if local.date_naive() == chrono::Local::now().date_naive() {
        local.format("%H:%M")
    } else {
        local.format("%a %H:%M")
    };
    format!("rate limited until {when}")
}

/// A time of day for messages, local: "14:05", or "Tue 14:05" when it is not today.
fn clock_time(at: DateTime<Utc>) -> String {
    let local = at.with_timezone(&chrono::Local);
    if local.date_naive() == chrono::Local::now().date_naive() {
        local.format("%H:%M:%S").to_string()
    } else {
        local.format("%a %H:%M").to_string()
    }
}

fn instant_at(at: DateTime<Utc>) -> Instant {
    let delta = (at - Utc::now()).to_std().unwrap_or_default();
    Instant::now() + delta
}

fn to_chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or_else(|_| chrono::Duration::seconds(0))
}
