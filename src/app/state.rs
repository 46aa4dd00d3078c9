//! Everything the screen shows, owned by the main loop. Only [`crate::app::update`] changes it;
//! `ui::draw` only reads it.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

use chrono::{DateTime, Utc};

use crate::app::accounts::{self, AccountOverlay, StatsView};
use crate::app::composer::Composer;
use crate::app::feed::FeedWindow;
use crate::app::layout::{ScreenLayout, screen_layout};
use crate::app::marks::Marks;
use crate::app::overlay::{AccountPicker, BulkConfirm};
use crate::app::source::FeedSource;
use crate::app::triage::{BulkJob, UndoJob};
use crate::domain::{Account, AccountId, MentionKey, MentionStatus};
use crate::store::{FeedFilter, StoreError};
use ratatui::layout::Rect;

/// The panes Tab moves between.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pane {
    Accounts,
    Feed,
    Detail,
}

/// What keys currently do.
#[derive(Clone, Debug)]
pub enum Mode {
    Normal,
    Help,
    Compose(Box<Composer>),
    /// Typing a search (`/`): keys edit `feed.search`'s query, the feed follows as you type.
    Search,
    /// "Ignore 37 mentions? y/n" before a bulk action.
    Confirm(BulkConfirm),
    /// "Undo an earlier action…? y/n": `u` when the action it would undo is not the one the
    /// user just did (a reply went out since, or it is from an earlier session).
    ConfirmUndo(crate::store::UndoAction),
    /// Which account replies to a post sent to several (reply needs exactly one).
    PickAccount(AccountPicker),
    /// An account overlay: add/reauthorize dialog, detail, stats, remove confirmation.
    Account(Box<crate::app::accounts::AccountOverlay>),
}

/// Saved replies per account, from the config file (`[accounts.<handle>] templates = [...]`).
#[derive(Clone, Debug, Default)]
pub struct SavedReplies {
    /// Lowercased handle (without `@`) → templates.
    pub by_account: BTreeMap<String, Vec<String>>,
    /// Where they are configured, for the message when an account has none.
    pub config_path: Option<PathBuf>,
}

impl SavedReplies {
    pub fn from_config(config: &crate::config::Config) -> SavedReplies {
        SavedReplies {
            by_account: config
                .accounts
                .iter()
                .map(|(handle, a)| {
                    let handle = handle.trim_start_matches('@').to_lowercase();
                    (handle, a.templates.clone())
                })
                .collect(),
            config_path: Some(config.config_path.clone()),
        }
    }

    pub fn for_account(&self, username: &str) -> &[String] {
        self.by_account
            .get(&username.to_lowercase())
            .map_or(&[], Vec::as_slice)
    }
}

/// The status filter `f` cycles through (the feed's account filter comes from the accounts pane).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusFilter {
    All,
    Only(MentionStatus),
}

impl StatusFilter {
    /// All → pending → replied → ignored → error → all.
    pub fn next(self) -> StatusFilter {
        match self {
            StatusFilter::All => StatusFilter::Only(MentionStatus::Pending),
            StatusFilter::Only(MentionStatus::Pending) => {
                StatusFilter::Only(MentionStatus::Replied)
            }
            StatusFilter::Only(MentionStatus::Replied) => {
                StatusFilter::Only(MentionStatus::Ignored)
            }
            StatusFilter::Only(MentionStatus::Ignored) => StatusFilter::Only(MentionStatus::Error),
            StatusFilter::Only(_) => StatusFilter::All,
        }
    }

    pub fn status(self) -> Option<MentionStatus> {
        match self {
            StatusFilter::All => None,
            StatusFilter::Only(s) => Some(s),
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            StatusFilter::All => "all",
            StatusFilter::Only(s) => s.as_str(),
        }
    }
}

/// One account in the accounts pane, with the figures shown beside it.
#[derive(Clone, Debug)]
pub struct AccountRow {
    pub account: Account,
    /// Pending mentions, from the store's counters.
    pub pending: u64,
    /// A poll of this account is running (spinner).
    pub syncing: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoticeKind {
    Info,
    Error,
}

/// The last thing perch wants the user to know, shown in the status bar. It goes away after a
/// while (`NOTICE_SECONDS`, longer for errors), so what the status bar says never goes stale:
/// figures that keep changing (counts, times) live in the panes, not in notices.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    pub kind: NoticeKind,
    pub text: String,
    /// The first clock tick that saw it (the clock comes from ticks: `update` reads no clock).
    pub since: Option<DateTime<Utc>>,
}

/// How long an info notice stays; an error stays three times as long.
pub const NOTICE_SECONDS: i64 = 10;

impl Notice {
    /// Has it been shown long enough at `now`?
    pub fn expired(&self, now: DateTime<Utc>) -> bool {
        let limit = match self.kind {
            NoticeKind::Info => NOTICE_SECONDS,
            NoticeKind::Error => 3 * NOTICE_SECONDS,
        };
        self.since
            .is_some_and(|t| now - t >= chrono::Duration::seconds(limit))
    }
}

#[derive(Clone, Debug)]
pub struct AppState {
    pub mode: Mode,
    pub focus: Pane,
    /// Accounts pane rows, ordered by handle. Row 0 of the pane is "All accounts".
    pub accounts: Vec<AccountRow>,
    /// Selected accounts-pane row: 0 = All accounts, i = `accounts[i - 1]`.
    pub account_selected: usize,
    pub status_filter: StatusFilter,
    pub feed: FeedWindow,
    /// Pending mentions across all accounts (status bar).
    pub pending_total: u64,
    /// Lines the detail pane is scrolled by.
    pub detail_scroll: u16,
    /// How the selected row's mentions arrived (read from the store when the selection changes,
    /// so the detail pane can show it without reading the store).
    pub selected_arrivals: Vec<(crate::domain::MentionKey, crate::domain::Arrival)>,
    /// Replies handed to the outbox and not yet reported back: shown as `processing`.
    pub sending: HashSet<MentionKey>,
    /// Outbox entries that still need something (waiting, unconfirmed...), read from the store.
    pub outbox: crate::app::outbox_board::OutboxBoard,
    pub notice: Option<Notice>,
    /// Shown in the status bar for the whole session (e.g. "demo: simulator at http://...").
    pub banner: Option<String>,
    /// The terminal size, for the layout.
    pub size: (u16, u16),
    /// Something visible changed since the last draw.
    pub dirty: bool,
    pub quit: bool,
    /// What the time-dependent text looked like at the last tick (so a tick redraws only when a
    /// relative time on screen changes).
    pub clock_fingerprint: String,
    /// Mentions marked for a bulk action (`Space`, `V`).
    pub marks: Marks,
    /// A bulk triage being applied chunk by chunk.
    pub bulk: Option<BulkJob>,
    /// An undo being applied chunk by chunk.
    pub undoing: Option<UndoJob>,
    /// A search step is queued with the loop (at most one is).
    pub search_scheduled: bool,
    /// The id of the last triage action (undo log ids only grow).
    pub last_action_id: u64,
    pub saved_replies: SavedReplies,
    /// Account management: hidden paused accounts, what the engine said per account, logins.
    pub accounts_ui: crate::app::accounts::AccountsUi,
    /// The cost estimate (status bar, accounts pane), re-read with the accounts.
    pub costs: crate::app::costs::CostMeter,
    /// The monthly budgets from the config (replies over budget ask first).
    pub budgets: crate::costs::Budgets,
    /// `r`/`d` on a mention already answered asked to be pressed again: this mention and kind.
    pub reply_again: Option<(MentionKey, crate::domain::ReplyKind)>,
    /// The key tables (the preset with the user's `[keys]` on top): what keys do, and the labels
    /// the help, hints and messages show.
    pub keymap: std::sync::Arc<crate::app::keymap::Keymap>,
    /// The presses of a key sequence typed so far (`g` of `g g`).
    pub keys_typed: Vec<crate::app::keymap::KeyPress>,
    /// The triage action the user just did (and can see the effect of): `u` undoes it at once.
    /// Anything else `u` would undo is asked about first.
    pub undo_ready: Option<u64>,
    /// The terminal bell and title for new mentions (`[notify]`, `app/notify.rs`).
    pub alerts: crate::app::notify::TerminalAlerts,
    /// Who has which mention and who is replying (issue 16), re-read with the accounts.
    pub team: crate::app::team::TeamView,
    /// The mention whose composer the team was last told is open here, and when it was last
    /// touched (`update` keeps it in step with the composer).
    pub presence: Option<(MentionKey, DateTime<Utc>)>,
}

impl AppState {
    /// Re-reads accounts, counters and the feed window (keeping the selection).
    /// The clock as of the last `Action::Tick` (the event loop sends one before anything else;
    /// only a state that was never ticked, in a test, falls back to the system clock). `update`
    /// reads time only here, so it can be driven with any clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.accounts_ui.now()
    }

    pub fn refresh(&mut self, store: &dyn FeedSource) -> Result<(), StoreError> {
        self.reload_accounts(store)?;
        self.team = crate::app::team::TeamView::from_snapshot(store.team()?);
        self.outbox.reload(store)?;
        self.feed.reload_around_selection(store)
    }

    /// Re-reads the accounts pane's rows, the cost meter and the pending count, keeping the
    /// selected account.
    pub fn reload_accounts(&mut self, store: &dyn FeedSource) -> Result<(), StoreError> {
        let state = self;
        let selected_id = state.selected_account().map(|a| a.account.id);
        let syncing: Vec<AccountId> = state
            .accounts
            .iter()
            .filter(|a| a.syncing)
            .map(|a| a.account.id)
            .collect();
        let mut rows = Vec::new();
        for account in store.accounts()? {
            if !accounts::is_listed(state, &account) {
                continue;
            }
            let pending = store.count(&FeedFilter {
                account: Some(account.id),
                status: Some(MentionStatus::Pending),
            })?;
            rows.push(AccountRow {
                syncing: syncing.contains(&account.id),
                account,
                pending,
            });
        }
        state.accounts = rows;
        state.costs = crate::app::costs::CostMeter::load(store, &state.budgets, state.now())?;
        state.pending_total = store.count(&FeedFilter {
            account: None,
            status: Some(MentionStatus::Pending),
        })?;
        // Keep the same account selected if it is still there.
        state.account_selected = match selected_id {
            Some(id) => state
                .accounts
                .iter()
                .position(|a| a.account.id == id)
                .map_or(0, |i| i + 1),
            None => 0,
        };
        Ok(())
    }

    /// Re-reads the open stats view's figures (new mentions for its account arrived).
    pub fn reload_stats(&mut self, store: &dyn FeedSource) -> Result<(), StoreError> {
        let state = self;
        let now = state.now();
        let Mode::Account(overlay) = &mut state.mode else {
            return Ok(());
        };
        let AccountOverlay::Stats(view) = overlay.as_mut() else {
            return Ok(());
        };
        if let Some(loaded) = StatsView::load(store, view.account_id, now)? {
            **view = loaded;
        }
        Ok(())
    }

    /// An empty state; the first `Action::Resize` and `Action::StoreChanged` fill it.
    pub fn new(banner: Option<String>) -> AppState {
        AppState {
            mode: Mode::Normal,
            focus: Pane::Feed,
            accounts: Vec::new(),
            account_selected: 0,
            status_filter: StatusFilter::All,
            feed: FeedWindow {
                untouched: true,
                ..FeedWindow::default()
            },
            pending_total: 0,
            detail_scroll: 0,
            selected_arrivals: Vec::new(),
            sending: HashSet::new(),
            outbox: crate::app::outbox_board::OutboxBoard::default(),
            notice: None,
            banner,
            size: (80, 24),
            dirty: true,
            quit: false,
            clock_fingerprint: String::new(),
            marks: Marks::default(),
            bulk: None,
            undoing: None,
            search_scheduled: false,
            last_action_id: 0,
            saved_replies: SavedReplies::default(),
            accounts_ui: Default::default(),
            costs: Default::default(),
            budgets: Default::default(),
            reply_again: None,
            keymap: Default::default(),
            keys_typed: Vec::new(),
            undo_ready: None,
            alerts: Default::default(),
            team: Default::default(),
            presence: None,
        }
    }

    /// A new triage action id: the clock in microseconds, and always more than the last one, so
    /// the undo log orders actions by when they happened, across restarts too.
    pub fn next_action_id(&mut self, now: DateTime<Utc>) -> u64 {
        let clock = u64::try_from(now.timestamp_micros()).unwrap_or(0);
        self.last_action_id = clock.max(self.last_action_id + 1);
        self.last_action_id
    }

    pub fn layout(&self) -> ScreenLayout {
        screen_layout(Rect::new(0, 0, self.size.0, self.size.1))
    }

    /// The account picked in the accounts pane, if a single one is.
    pub fn selected_account(&self) -> Option<&AccountRow> {
        self.account_selected
            .checked_sub(1)
            .and_then(|i| self.accounts.get(i))
    }

    pub fn account(&self, id: AccountId) -> Option<&AccountRow> {
        self.accounts.iter().find(|a| a.account.id == id)
    }

    /// The account's place in the list: the theme picks its colour from it, so the few accounts a
    /// person has get distinct colours. Unknown (removed) accounts get one from their id.
    pub fn account_colour_index(&self, id: AccountId) -> usize {
        self.accounts
            .iter()
            .position(|a| a.account.id == id)
            .unwrap_or_else(|| usize::from(id.as_bytes()[0]))
    }

    /// The status to show for a mention: `processing` while its reply is with the outbox.
    pub fn shown_status(&self, key: MentionKey, stored: MentionStatus) -> MentionStatus {
        if self.sending.contains(&key) {
            MentionStatus::Processing
        } else {
            stored
        }
    }

    /// Accounts with a poll running, for the status bar.
    pub fn syncing_handles(&self) -> Vec<String> {
        self.accounts
            .iter()
            .filter(|a| a.syncing)
            .map(|a| a.account.handle())
            .collect()
    }

    pub fn composer(&self) -> Option<&Composer> {
        match &self.mode {
            Mode::Compose(c) => Some(c),
            _ => None,
        }
    }

    /// Notices often carry text perch did not write (handles, X's error messages, store
    /// problems), so every one is made terminal-safe here rather than at each caller.
    pub fn info(&mut self, text: impl Into<String>) {
        self.notice = Some(Notice {
            kind: NoticeKind::Info,
            text: crate::text::for_screen(&text.into(), true),
            since: None,
        });
    }

    pub fn error(&mut self, text: impl Into<String>) {
        self.notice = Some(Notice {
            kind: NoticeKind::Error,
            text: crate::text::for_screen(&text.into(), true),
            since: None,
        });
    }

    /// Labels that change with the clock alone, used to decide whether a tick must redraw.
    pub fn clock_labels(&self, now: DateTime<Utc>) -> String {
        let mut out = String::new();
        for a in &self.accounts {
            if let Some(t) = a.account.last_synced_at {
                out.push_str(&crate::app::time::relative_time(t, now));
            }
            out.push('|');
        }
        for row in self.feed.visible() {
            out.push_str(&crate::app::time::compact_age(row.primary().timestamp, now));
            out.push('|');
        }
        if let Some(m) = self.feed.selected_mention() {
            out.push_str(&crate::app::time::relative_time(m.timestamp, now));
        }
        out
    }
}
