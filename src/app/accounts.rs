//! Account management in the dashboard: adding an account (the login dialog), reauthorizing one,
//! its detail and stats views, removing it (with a confirm dialog), hiding paused accounts, and
//! what the sync engine has said about each account (next poll, budget, a short event log).
//!
//! Like the rest of `app`, nothing here touches the network: the login runs as a task the event
//! loop starts for an [`AccountEffect::StartLogin`], and it reports back as [`LoginEvent`]s.

use std::collections::{HashMap, VecDeque};

use chrono::{DateTime, NaiveDate, Utc};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::app::keymap::{Intent, LoginAction, RemoveAction, ViewAction};
use crate::app::source::FeedSource;
use crate::app::state::{AppState, Mode};
use crate::domain::{AccountId, AccountStats, Mention, SyncStatus};
use crate::store::{FeedFilter, StoreError};
use crate::sync::SyncEvent;
use crate::text;

/// Sync events kept per account for its detail view.
pub const LOG_CAPACITY: usize = 100;
/// Days in the stats view's chart.
pub const STATS_DAYS: u32 = 30;
/// Recent mentions read for the stats view (it lists as many as fit).
pub const STATS_RECENT: usize = 20;

/// What the account-management side of the state holds besides the overlays.
#[derive(Clone, Debug)]
pub struct AccountsUi {
    /// The accounts pane lists paused accounts too (`H` toggles).
    pub show_paused: bool,
    /// What the sync engine last said about each account.
    pub live: HashMap<AccountId, LiveInfo>,
    /// The time of the last clock tick: when sync events are stamped, and the stats view's "today".
    pub clock: Option<DateTime<Utc>>,
    /// Logins get increasing ids so a report from a cancelled one is recognised and dropped.
    pub last_login_id: u64,
    /// The Activity stream, once the engine has said (`None`: it runs no stream).
    pub stream: Option<crate::sync::stream::StreamStatus>,
    /// Each account's Activity subscriptions, as the engine's last reconcile left them.
    pub subscriptions: HashMap<AccountId, crate::sync::subscriptions::AccountSubscriptions>,
}

impl Default for AccountsUi {
    fn default() -> AccountsUi {
        AccountsUi {
            show_paused: true,
            live: HashMap::new(),
            clock: None,
            last_login_id: 0,
            stream: None,
            subscriptions: HashMap::new(),
        }
    }
}

impl AccountsUi {
    pub fn live(&self, id: AccountId) -> Option<&LiveInfo> {
        self.live.get(&id)
    }

    /// Whether the account's mentions arrive by stream now (live, with a mention subscription);
    /// `None` when perch runs no stream at all.
    pub fn streamed(&self, id: AccountId) -> Option<bool> {
        let stream = self.stream.as_ref()?;
        let live = *stream == crate::sync::stream::StreamStatus::Live;
        Some(live && self.subscriptions.get(&id).is_some_and(|s| s.streamed()))
    }

    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.clock.unwrap_or_else(Utc::now)
    }
}

/// The mentions endpoint's budget for one account, as the engine last reported it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BudgetInfo {
    pub remaining: u32,
    pub limit: u32,
    pub reset: DateTime<Utc>,
}

/// One line of an account's sync log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogEntry {
    pub at: DateTime<Utc>,
    pub text: String,
    pub is_error: bool,
}

#[derive(Clone, Debug, Default)]
pub struct LiveInfo {
    pub next_poll_at: Option<DateTime<Utc>>,
    pub budget: Option<BudgetInfo>,
    /// Newest last; at most [`LOG_CAPACITY`] entries.
    pub log: VecDeque<LogEntry>,
}

impl LiveInfo {
    fn push(&mut self, at: DateTime<Utc>, text: String, is_error: bool) {
        if self.log.len() == LOG_CAPACITY {
            self.log.pop_front();
        }
        self.log.push_back(LogEntry { at, text, is_error });
    }
}

/// "in 40s", "in 3m", "due": when the next poll is, for the accounts pane and the detail view.
pub fn next_poll_label(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = (at - now).num_seconds();
    match secs {
        s if s <= 0 => "due".to_string(),
        s if s < 120 => format!("in {s}s"),
        s if s < 7200 => format!("in {}m", s / 60),
        s => format!("in {}h", s / 3600),
    }
}

/// Whether the engine polls this account on its own (the next-poll time means something).
pub fn is_polled(status: SyncStatus, is_active: bool) -> bool {
    is_active && !matches!(status, SyncStatus::Paused | SyncStatus::TokenExpired)
}

pub use crate::app::message::{
    AccountEffect, LoginEvent, LoginFailure, LoginFailureKind, LoginPurpose, LoginSuccess,
};

// ---- overlays -----------------------------------------------------------------------------

/// The account overlays, one at a time, in `Mode::Account`.
#[derive(Clone, Debug)]
pub enum AccountOverlay {
    Login(LoginDialog),
    Detail(DetailView),
    Stats(Box<StatsView>),
    ConfirmRemove(RemoveDialog),
}

/// Where the login dialog is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoginPhase {
    /// The task is binding the listener and building the URL.
    Starting,
    /// Waiting for the browser's redirect, or for the user to paste it.
    Waiting { url: String },
    /// A code arrived (from the browser or the paste field): exchanging it with X.
    Exchanging,
    /// The login ended without adding the account; the dialog says why until closed or retried.
    Failed(LoginFailure),
}

#[derive(Clone, Debug)]
pub struct LoginDialog {
    pub login_id: u64,
    pub purpose: LoginPurpose,
    pub phase: LoginPhase,
    /// The paste field: the address the browser ended up on, or the bare code.
    pub paste: String,
    /// Why the last pasted text was not accepted (the login keeps waiting).
    pub paste_error: Option<String>,
    /// The authorization link was copied (`y`): the dialog says so.
    pub copied: bool,
}

impl LoginDialog {
    /// The dialog's title: "Add an X account" or "Reauthorize @handle".
    pub fn title(&self) -> String {
        match &self.purpose {
            LoginPurpose::Add => "Add an X account".to_string(),
            LoginPurpose::Reauthorize { handle, .. } => {
                format!("Reauthorize {}", text::for_screen(handle, true))
            }
        }
    }
}

/// `Enter` on an account: who it is, how it syncs, and its recent sync events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DetailView {
    pub account_id: AccountId,
    /// Lines the event log is scrolled by.
    pub scroll: u16,
}

/// `s`: the account's figures, mentions per day, and recent mentions, read when opened (and
/// again when new mentions for it arrive).
#[derive(Clone, Debug)]
pub struct StatsView {
    pub account_id: AccountId,
    pub stats: AccountStats,
    /// Mentions per day, oldest first, ending today.
    pub daily: Vec<(NaiveDate, u64)>,
    /// Newest first.
    pub recent: Vec<Mention>,
    /// The cost section (an estimate): per day, per kind, per handled mention.
    pub costs: crate::cost_report::AccountCostStats,
}

impl StatsView {
    /// Reads the view's figures from the store's counters (and one short page of mentions), in
    /// one read; `None` when the account is no longer in the store.
    pub fn load(
        store: &dyn FeedSource,
        id: AccountId,
        now: DateTime<Utc>,
    ) -> Result<Option<StatsView>, StoreError> {
        let Some(figures) = store.account_figures(id, now, STATS_DAYS, STATS_RECENT)? else {
            return Ok(None);
        };
        Ok(Some(StatsView {
            account_id: figures.account.id,
            stats: figures.stats,
            daily: figures.daily,
            recent: figures.recent,
            costs: figures.costs,
        }))
    }
}

/// The choices of the remove dialog, left to right.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RemoveChoice {
    KeepMentions,
    DeleteMentions,
    Cancel,
}

impl RemoveChoice {
    pub const ALL: [RemoveChoice; 3] = [
        RemoveChoice::KeepMentions,
        RemoveChoice::DeleteMentions,
        RemoveChoice::Cancel,
    ];
}

/// `D`: remove an account, asking whether its stored mentions go too.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoveDialog {
    pub account_id: AccountId,
    pub handle: String,
    /// Its stored mentions (from the counters), so the choice is informed.
    pub mentions: u64,
    /// Starts on Cancel: Enter alone never removes anything.
    pub choice: RemoveChoice,
}

// ---- reacting to the engine and the clock ------------------------------------------------

/// Records what a sync event says about an account (budget, next poll, the event log). Called
/// for every event before the usual handling.
pub fn observe_sync(state: &mut AppState, event: &SyncEvent) {
    let now = state.now();
    let ui = &mut state.accounts_ui;
    match event {
        SyncEvent::Started { account_id } => {
            ui.live
                .entry(*account_id)
                .or_default()
                .push(now, "poll started".into(), false);
        }
        SyncEvent::PageCommitted {
            account_id,
            inserted,
        } => {
            ui.live.entry(*account_id).or_default().push(
                now,
                format!("page stored: {inserted} new"),
                false,
            );
        }
        SyncEvent::Finished {
            account_id,
            inserted,
            next_poll_at,
            ..
        } => {
            let live = ui.live.entry(*account_id).or_default();
            live.next_poll_at = *next_poll_at;
            let next = match next_poll_at {
                Some(at) => format!("; next poll {}", next_poll_label(*at, now)),
                None => String::new(),
            };
            live.push(now, format!("poll finished: {inserted} new{next}"), false);
        }
        SyncEvent::Budget {
            account_id,
            remaining,
            limit,
            reset,
        } => {
            ui.live.entry(*account_id).or_default().budget = Some(BudgetInfo {
                remaining: *remaining,
                limit: *limit,
                reset: *reset,
            });
        }
        SyncEvent::AccountUpdated(account) => {
            // Log status changes only (every poll rewrites the record).
            let before = state
                .accounts
                .iter()
                .find(|r| r.account.id == account.id)
                .map(|r| (r.account.sync_status, r.account.error_message.clone()));
            let after = (account.sync_status, account.error_message.clone());
            if before.as_ref() != Some(&after) {
                let mut line = format!("status {}", account.sync_status);
                if let Some(e) = &account.error_message {
                    line.push_str(": ");
                    line.push_str(&text::for_screen(e, true));
                }
                let is_error = matches!(
                    account.sync_status,
                    SyncStatus::Error | SyncStatus::TokenExpired | SyncStatus::RateLimited
                );
                ui.live
                    .entry(account.id)
                    .or_default()
                    .push(now, line, is_error);
            }
        }
        SyncEvent::Notice {
            account_id: Some(id),
            message,
        } => {
            ui.live
                .entry(*id)
                .or_default()
                .push(now, text::for_screen(message, true), false);
        }
        SyncEvent::Notice {
            account_id: None, ..
        } => {}
        SyncEvent::StreamStatus(status) => ui.stream = Some(status.clone()),
        SyncEvent::Subscriptions {
            account_id,
            subscriptions,
        } => {
            let line = if subscriptions.subscriptions.is_empty() {
                "no Activity subscriptions: polled only".to_string()
            } else {
                let kinds: Vec<&str> = subscriptions
                    .subscriptions
                    .iter()
                    .map(|s| s.event_type.as_str())
                    .collect();
                format!("subscribed: {}", kinds.join(", "))
            };
            let log = ui.live.entry(*account_id).or_default();
            log.push(now, line, false);
            if let Some(error) = &subscriptions.error {
                log.push(now, text::for_screen(error, true), true);
            }
            ui.subscriptions.insert(*account_id, subscriptions.clone());
        }
        SyncEvent::AccountRemoved { account_id } => {
            ui.live.remove(account_id);
            ui.subscriptions.remove(account_id);
            if let Some(handle) = state.account(*account_id).map(|r| r.account.handle()) {
                state.info(format!("{} removed", text::sanitize(&handle, true)));
            }
            // An overlay about the removed account has nothing left to show.
            if let Mode::Account(overlay) = &state.mode
                && overlay_account(overlay) == Some(*account_id)
            {
                state.mode = Mode::Normal;
            }
        }
    }
}

/// Keeps the stats view current when new mentions for its account were stored.
pub fn after_sync(
    state: &mut AppState,
    event: &SyncEvent,
    store: &dyn FeedSource,
) -> Result<(), StoreError> {
    let refresh_for = match event {
        SyncEvent::PageCommitted {
            account_id,
            inserted,
        } if *inserted > 0 => Some(*account_id),
        SyncEvent::AccountUpdated(a) => Some(a.id),
        _ => None,
    };
    if let (Some(id), Mode::Account(overlay)) = (refresh_for, &state.mode)
        && let AccountOverlay::Stats(view) = overlay.as_ref()
        && view.account_id == id
    {
        state.reload_stats(store)?;
    }
    Ok(())
}

/// The clock ticked. Returns true when something on screen counts down with it (a next-poll
/// time in the accounts pane or an open account view), so the tick must redraw.
pub fn on_tick(state: &mut AppState, now: DateTime<Utc>) -> bool {
    state.accounts_ui.clock = Some(now);
    let counting = state.accounts.iter().any(|row| {
        is_polled(row.account.sync_status, row.account.is_active)
            && state
                .accounts_ui
                .live(row.account.id)
                .and_then(|l| l.next_poll_at)
                .is_some()
    });
    counting || matches!(state.mode, Mode::Account(_))
}

// ---- keys in the normal mode ----------------------------------------------------------------

/// The account an account key acts on: the accounts pane's choice, else the selected mention's.
pub fn target_account(state: &AppState) -> Option<AccountId> {
    match state.selected_account() {
        Some(row) => Some(row.account.id),
        None => state.feed.selected_mention().map(|m| m.sent_to.account_id),
    }
}

/// `a`: opens the add-account dialog and starts the login.
pub fn open_add_account(state: &mut AppState, effects: &mut Vec<super::Effect>) {
    start_login(state, LoginPurpose::Add, effects);
}

/// `R`: the login again for `account` (the normal mode passes [`target_account`]; `None`: no
/// account was chosen).
pub fn open_reauthorize(
    state: &mut AppState,
    account: Option<AccountId>,
    effects: &mut Vec<super::Effect>,
) {
    let Some(row) = account.and_then(|id| state.account(id)) else {
        let (tab, key) = (
            state.keymap.key(Intent::NextPane),
            state.keymap.key(Intent::Reauthorize),
        );
        state.error(format!(
            "no account selected: pick one in the accounts pane ({tab}), then press {key}"
        ));
        return;
    };
    let purpose = LoginPurpose::Reauthorize {
        account_id: row.account.id,
        twitter_id: row.account.twitter_id.clone(),
        handle: row.account.handle(),
    };
    start_login(state, purpose, effects);
}

fn start_login(state: &mut AppState, purpose: LoginPurpose, effects: &mut Vec<super::Effect>) {
    state.accounts_ui.last_login_id += 1;
    let login_id = state.accounts_ui.last_login_id;
    state.mode = Mode::Account(Box::new(AccountOverlay::Login(LoginDialog {
        login_id,
        purpose: purpose.clone(),
        phase: LoginPhase::Starting,
        paste: String::new(),
        paste_error: None,
        copied: false,
    })));
    effects.push(super::Effect::Account(AccountEffect::StartLogin {
        login_id,
        purpose,
    }));
}

/// `Enter` on an account row: its detail.
pub fn open_detail(state: &mut AppState, account_id: AccountId) {
    state.mode = Mode::Account(Box::new(AccountOverlay::Detail(DetailView {
        account_id,
        scroll: 0,
    })));
}

/// `s`: the stats view of `account`.
pub fn open_stats(
    state: &mut AppState,
    store: &dyn FeedSource,
    account: Option<AccountId>,
) -> Result<(), StoreError> {
    let Some(id) = account else {
        let (tab, key) = (
            state.keymap.key(Intent::NextPane),
            state.keymap.key(Intent::Stats),
        );
        state.error(format!(
            "no account selected: pick one in the accounts pane ({tab}), then press {key}"
        ));
        return Ok(());
    };
    let Some(view) = StatsView::load(store, id, state.now())? else {
        state.error("that account is no longer in the store");
        return Ok(());
    };
    state.mode = Mode::Account(Box::new(AccountOverlay::Stats(Box::new(view))));
    Ok(())
}

/// `D`: asks how to remove `account`.
pub fn open_remove(
    state: &mut AppState,
    store: &dyn FeedSource,
    account: Option<AccountId>,
) -> Result<(), StoreError> {
    let Some(row) = account.and_then(|id| state.account(id)) else {
        let (tab, key) = (
            state.keymap.key(Intent::NextPane),
            state.keymap.key(Intent::RemoveAccount),
        );
        state.error(format!(
            "no account selected: pick one in the accounts pane ({tab}), then press {key}"
        ));
        return Ok(());
    };
    let (account_id, handle) = (row.account.id, row.account.handle());
    let mentions = store.count(&FeedFilter {
        account: Some(account_id),
        status: None,
    })?;
    state.mode = Mode::Account(Box::new(AccountOverlay::ConfirmRemove(RemoveDialog {
        account_id,
        handle,
        mentions,
        choice: RemoveChoice::Cancel,
    })));
    Ok(())
}

/// `H`: shows or hides paused accounts in the accounts pane.
pub fn toggle_show_paused(state: &mut AppState) {
    state.accounts_ui.show_paused = !state.accounts_ui.show_paused;
    let paused = state
        .accounts
        .iter()
        .filter(|r| !r.account.is_active)
        .count();
    if state.accounts_ui.show_paused {
        state.info("showing paused accounts (H hides them)");
    } else {
        // Hiding tidies the accounts pane; it never hides mentions (All accounts still shows
        // them, and P on one resumes its account).
        state.info(format!(
            "hiding paused accounts from this list{}; their mentions stay in All accounts (H shows them)",
            if paused > 0 {
                format!(" ({paused} hidden)")
            } else {
                String::new()
            }
        ));
    }
}

/// Whether the accounts pane lists this account.
pub fn is_listed(state: &AppState, account: &crate::domain::Account) -> bool {
    state.accounts_ui.show_paused || account.is_active
}

// ---- keys inside the overlays ----------------------------------------------------------------

/// A key while an account overlay is open.
pub fn on_key(
    state: &mut AppState,
    key: KeyEvent,
    store: &dyn FeedSource,
    effects: &mut Vec<super::Effect>,
) -> Result<(), StoreError> {
    let keys = state.keymap.clone();
    let Mode::Account(overlay) = &mut state.mode else {
        return Ok(());
    };
    match overlay.as_mut() {
        AccountOverlay::Login(dialog) => {
            let failed = matches!(dialog.phase, LoginPhase::Failed(_));
            let action = keys.login.of_event(&key);
            match action {
                Some(LoginAction::Cancel) => {
                    if !failed {
                        effects.push(super::Effect::Account(AccountEffect::CancelLogin {
                            login_id: dialog.login_id,
                        }));
                        state.info("login cancelled");
                    }
                    state.mode = Mode::Normal;
                }
                Some(LoginAction::Submit) if failed => {
                    // Try again: a fresh login (new state, new verifier, new listener).
                    let purpose = dialog.purpose.clone();
                    start_login(state, purpose, effects);
                }
                _ => login_key(dialog, key, action, effects),
            }
            Ok(())
        }
        AccountOverlay::Detail(view) => {
            let account_id = view.account_id;
            match keys.view.of_event(&key) {
                Some(ViewAction::Close) => state.mode = Mode::Normal,
                Some(ViewAction::ScrollDown) => view.scroll = view.scroll.saturating_add(1),
                Some(ViewAction::ScrollUp) => view.scroll = view.scroll.saturating_sub(1),
                Some(ViewAction::PageDown) => view.scroll = view.scroll.saturating_add(10),
                Some(ViewAction::PageUp) => view.scroll = view.scroll.saturating_sub(10),
                Some(ViewAction::ScrollTop) => view.scroll = 0,
                None => match keys.normal.of_event(&key) {
                    // Enter (the normal layer's "open"), pressed on what is open, closes it.
                    Some(Intent::Open) => state.mode = Mode::Normal,
                    // The account keys work here too, on this account.
                    Some(intent) => {
                        account_intent_in_view(state, account_id, intent, store, effects)?
                    }
                    None => {}
                },
            }
            Ok(())
        }
        AccountOverlay::Stats(view) => {
            let account_id = view.account_id;
            match keys.view.of_event(&key) {
                Some(ViewAction::Close) => state.mode = Mode::Normal,
                Some(_) => {}
                None => match keys.normal.of_event(&key) {
                    // The key that opened the stats closes them.
                    Some(Intent::Stats) => state.mode = Mode::Normal,
                    Some(intent) => {
                        account_intent_in_view(state, account_id, intent, store, effects)?
                    }
                    None => {}
                },
            }
            Ok(())
        }
        AccountOverlay::ConfirmRemove(dialog) => {
            let chosen = match keys.remove.of_event(&key) {
                Some(RemoveAction::KeepMentions) => Some(RemoveChoice::KeepMentions),
                Some(RemoveAction::DeleteMentions) => Some(RemoveChoice::DeleteMentions),
                Some(RemoveAction::Cancel) => Some(RemoveChoice::Cancel),
                Some(RemoveAction::Confirm) => Some(dialog.choice),
                Some(RemoveAction::PreviousChoice) => {
                    dialog.choice = step_choice(dialog.choice, -1);
                    None
                }
                Some(RemoveAction::NextChoice) => {
                    dialog.choice = step_choice(dialog.choice, 1);
                    None
                }
                None => None,
            };
            let Some(choice) = chosen else {
                return Ok(());
            };
            let (account_id, handle) = (dialog.account_id, dialog.handle.clone());
            state.mode = Mode::Normal;
            match choice {
                RemoveChoice::Cancel => state.info(format!("{handle} kept")),
                RemoveChoice::KeepMentions | RemoveChoice::DeleteMentions => {
                    let delete_mentions = choice == RemoveChoice::DeleteMentions;
                    effects.push(super::Effect::Account(AccountEffect::Remove {
                        account_id,
                        delete_mentions,
                    }));
                    state.info(format!(
                        "removing {handle}{} (after any poll in progress)…",
                        if delete_mentions {
                            " and its mentions"
                        } else {
                            "; its mentions stay"
                        }
                    ));
                }
            }
            Ok(())
        }
    }
}

fn step_choice(choice: RemoveChoice, delta: isize) -> RemoveChoice {
    let n = RemoveChoice::ALL.len() as isize;
    let here = RemoveChoice::ALL
        .iter()
        .position(|c| *c == choice)
        .unwrap_or(0) as isize;
    RemoveChoice::ALL[((here + delta).rem_euclid(n)) as usize]
}

/// Account keys pressed in the detail or stats view act on that view's account.
fn account_intent_in_view(
    state: &mut AppState,
    account_id: AccountId,
    intent: Intent,
    store: &dyn FeedSource,
    effects: &mut Vec<super::Effect>,
) -> Result<(), StoreError> {
    let Some(row) = state.account(account_id) else {
        state.mode = Mode::Normal;
        return Ok(());
    };
    let (handle, paused) = (
        row.account.handle(),
        row.account.sync_status == SyncStatus::Paused || !row.account.is_active,
    );
    match intent {
        Intent::TogglePause => {
            if paused {
                effects.push(super::Effect::Resume(account_id));
                state.info(format!("resuming {handle}"));
            } else {
                effects.push(super::Effect::Pause(account_id));
                state.info(format!("pausing {handle}"));
            }
        }
        Intent::FetchAccount => {
            effects.push(super::Effect::FetchNow(Some(account_id)));
            state.info(format!("fetching {handle} now"));
        }
        // Switch views, on this view's account.
        Intent::Reauthorize => {
            state.mode = Mode::Normal;
            open_reauthorize(state, Some(account_id), effects);
        }
        Intent::Stats => {
            state.mode = Mode::Normal;
            open_stats(state, store, Some(account_id))?;
        }
        Intent::RemoveAccount => {
            state.mode = Mode::Normal;
            open_remove(state, store, Some(account_id))?;
        }
        Intent::Open => open_detail(state, account_id),
        Intent::Quit => {
            state.mode = Mode::Normal;
        }
        _ => {}
    }
    Ok(())
}

fn login_key(
    dialog: &mut LoginDialog,
    key: KeyEvent,
    action: Option<LoginAction>,
    effects: &mut Vec<super::Effect>,
) {
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    let plain_char = matches!(key.code, KeyCode::Char(_)) && !ctrl;
    match (&dialog.phase, action) {
        (LoginPhase::Failed(_), _) => {}
        (LoginPhase::Waiting { .. }, Some(LoginAction::Submit)) => {
            let input = dialog.paste.trim().to_string();
            if input.is_empty() {
                dialog.paste_error = Some(
                    "paste the address the browser ended up on (or the code) first".to_string(),
                );
                return;
            }
            dialog.paste_error = None;
            effects.push(super::Effect::Account(AccountEffect::PasteLogin {
                login_id: dialog.login_id,
                input,
            }));
        }
        // `y` copies the link (OSC 52), for a browser on another machine: while nothing has been
        // pasted yet (a code may contain a y), or with Ctrl at any time.
        (LoginPhase::Waiting { url }, Some(LoginAction::CopyLink))
            if !plain_char || dialog.paste.is_empty() =>
        {
            effects.push(super::Effect::CopyToClipboard(url.clone()));
            dialog.copied = true;
        }
        (LoginPhase::Starting | LoginPhase::Waiting { .. }, Some(LoginAction::ClearInput)) => {
            dialog.paste.clear();
        }
        (LoginPhase::Starting | LoginPhase::Waiting { .. }, _) => match key.code {
            KeyCode::Backspace => {
                dialog.paste.pop();
            }
            KeyCode::Char(c) if !ctrl => {
                dialog.paste.push(c);
                dialog.paste_error = None;
            }
            _ => {}
        },
        _ => {}
    }
}

/// Text pasted while the login dialog waits goes into its paste field.
pub fn on_paste(state: &mut AppState, pasted: &str) -> bool {
    let Mode::Account(overlay) = &mut state.mode else {
        return false;
    };
    let AccountOverlay::Login(dialog) = overlay.as_mut() else {
        return false;
    };
    if matches!(
        dialog.phase,
        LoginPhase::Starting | LoginPhase::Waiting { .. }
    ) {
        // One line: a URL or a code never spans lines, and control characters have no place.
        let clean: String = text::sanitize(pasted, true)
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        dialog.paste.push_str(&clean);
        dialog.paste_error = None;
    }
    true
}

// ---- the login task's reports -----------------------------------------------------------------

/// A report from the login task. Reports from a login that is no longer shown are dropped (a
/// success is still handed to the sync engine, since the account was stored).
pub fn on_login_event(state: &mut AppState, event: LoginEvent, effects: &mut Vec<super::Effect>) {
    let keys = state.keymap.clone();
    let current = match &mut state.mode {
        Mode::Account(overlay) => match overlay.as_mut() {
            AccountOverlay::Login(d) if d.login_id == event.login_id() => Some(d),
            _ => None,
        },
        _ => None,
    };
    let Some(dialog) = current else {
        if let LoginEvent::Finished {
            outcome: Ok(success),
            ..
        } = event
        {
            effects.push(super::Effect::Account(AccountEffect::Added(
                success.account_id,
            )));
        }
        return;
    };
    match event {
        LoginEvent::Listening { url, .. } => {
            if !matches!(dialog.phase, LoginPhase::Exchanging) {
                dialog.phase = LoginPhase::Waiting { url };
            }
        }
        LoginEvent::PasteRejected { message, .. } => {
            dialog.paste_error = Some(message);
        }
        LoginEvent::Exchanging { .. } => {
            dialog.phase = LoginPhase::Exchanging;
            dialog.paste_error = None;
        }
        LoginEvent::Finished {
            outcome: Err(failure),
            ..
        } => {
            dialog.phase = LoginPhase::Failed(failure);
        }
        LoginEvent::Finished {
            outcome: Ok(success),
            ..
        } => {
            effects.push(super::Effect::Account(AccountEffect::Added(
                success.account_id,
            )));
            if let LoginPurpose::Reauthorize {
                account_id, handle, ..
            } = &dialog.purpose
                && *account_id != success.account_id
            {
                let message = format!(
                    "you approved perch as {got} while reauthorizing {handle}: {got} was {what}, and {handle} still needs a new login. Log in to X as {handle} (or log out there first), then press {retry} to try again",
                    retry = keys.login.label(LoginAction::Submit),
                    got = success.handle,
                    what = if success.reauthorized {
                        "updated"
                    } else {
                        "added as a new account"
                    },
                );
                dialog.phase = LoginPhase::Failed(LoginFailure {
                    kind: LoginFailureKind::WrongAccount,
                    message,
                });
                return;
            }
            state.mode = Mode::Normal;
            let handle = text::sanitize(&success.handle, true);
            if success.reauthorized {
                state.info(format!("{handle} reauthorized; fetching its mentions now"));
            } else {
                state.info(format!("{handle} added; fetching its mentions now"));
            }
        }
    }
}

fn overlay_account(overlay: &AccountOverlay) -> Option<AccountId> {
    match overlay {
        AccountOverlay::Login(_) => None,
        AccountOverlay::Detail(v) => Some(v.account_id),
        AccountOverlay::Stats(v) => Some(v.account_id),
        AccountOverlay::ConfirmRemove(d) => Some(d.account_id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn next_poll_reads_as_a_countdown() {
        let now = Utc.with_ymd_and_hms(2025, 11, 26, 12, 0, 0).unwrap();
        let at = |s: i64| now + chrono::Duration::seconds(s);
        assert_eq!(next_poll_label(at(40), now), "in 40s");
        assert_eq!(next_poll_label(at(0), now), "due");
        assert_eq!(next_poll_label(at(-5), now), "due");
        assert_eq!(next_poll_label(at(600), now), "in 10m");
        assert_eq!(next_poll_label(at(3 * 3600), now), "in 3h");
    }

    #[test]
    fn the_log_keeps_the_last_hundred_events() {
        let mut live = LiveInfo::default();
        let now = Utc::now();
        for i in 0..250 {
            live.push(now, format!("event {i}"), false);
        }
        assert_eq!(live.log.len(), LOG_CAPACITY);
        assert_eq!(live.log.front().map(|e| e.text.as_str()), Some("event 150"));
        assert_eq!(live.log.back().map(|e| e.text.as_str()), Some("event 249"));
    }

    #[test]
    fn the_remove_choice_wraps_both_ways() {
        assert_eq!(
            step_choice(RemoveChoice::Cancel, 1),
            RemoveChoice::KeepMentions
        );
        assert_eq!(
            step_choice(RemoveChoice::KeepMentions, -1),
            RemoveChoice::Cancel
        );
        assert_eq!(
            step_choice(RemoveChoice::KeepMentions, 1),
            RemoveChoice::DeleteMentions
        );
    }
}
