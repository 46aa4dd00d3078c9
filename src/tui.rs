//! The terminal side: setting the terminal up and putting it back (on quit, on error and on
//! panic), reading keys on their own task, and the main loop, the only owner of `AppState`.
//!
//! The loop waits for one message, drains everything else already queued, applies it all with
//! `app::update`, runs the effects, and draws at most once per frame interval, and only when the
//! state says something visible changed.

use std::collections::VecDeque;
use std::io::stdout;
use std::time::Duration;

use anyhow::Context as _;
use chrono::Utc;
use crossterm::event::{
    Event, EventStream, KeyEventKind, KeyboardEnhancementFlags, PopKeyboardEnhancementFlags,
    PushKeyboardEnhancementFlags,
};
use crossterm::execute;
use futures::StreamExt as _;
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};

pub mod login;

use crate::app::{self, Action, AppState, Effect};
use crate::config::Config;
use crate::domain::MentionStatus;
use crate::outbox::{OutboxCommand, OutboxEvent};
use crate::store::Store;
use crate::sync::{Command, SyncEvent};
use crate::ui::{self, Theme};

/// What `run` needs: the store, the configuration, and the channels to the sync engine and the
/// outbox worker (which the caller has already started).
pub struct TuiContext {
    pub store: Store,
    pub config: Config,
    pub sync_commands: mpsc::Sender<Command>,
    pub sync_events: mpsc::Receiver<SyncEvent>,
    pub outbox_requests: mpsc::Sender<OutboxCommand>,
    pub outbox_events: mpsc::Receiver<OutboxEvent>,
    /// A line shown in the status bar for the whole session, e.g. "demo: simulator at http://...".
    pub banner: Option<String>,
}

/// No more than this many frames a second: a burst of events costs one draw per frame.
const FRAME: Duration = Duration::from_millis(33);

/// Runs the dashboard until the user quits. The terminal is restored however this ends.
pub async fn run(ctx: TuiContext) -> anyhow::Result<()> {
    let mut terminal = TerminalGuard::enter()?;
    let result = event_loop(&mut terminal, ctx).await;
    drop(terminal);
    result
}

/// Owns the terminal while the TUI runs. Dropping it (normal return, `?`, or unwinding from a
/// panic) puts the terminal back; the panic hook does the same before the panic message prints,
/// so the message is readable.
struct TerminalGuard {
    terminal: ratatui::DefaultTerminal,
    keyboard_enhanced: bool,
}

impl TerminalGuard {
    fn enter() -> anyhow::Result<TerminalGuard> {
        // `try_init` enables raw mode and the alternate screen and installs a panic hook that
        // restores both.
        let terminal = ratatui::try_init().context(
            "could not set up the terminal (perch needs an interactive terminal; is stdout a TTY?)",
        )?;
        // Ask for unambiguous key reports where the terminal supports them: that is what lets
        // Ctrl-Enter reach the composer. Whoever pushes the flags must pop them, also on panic.
        let keyboard_enhanced = matches!(
            crossterm::terminal::supports_keyboard_enhancement(),
            Ok(true)
        ) && execute!(
            stdout(),
            PushKeyboardEnhancementFlags(KeyboardEnhancementFlags::DISAMBIGUATE_ESCAPE_CODES)
        )
        .is_ok();
        if keyboard_enhanced {
            let previous = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                let _ = execute!(stdout(), PopKeyboardEnhancementFlags);
                previous(info);
            }));
        }
        Ok(TerminalGuard {
            terminal,
            keyboard_enhanced,
        })
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        if self.keyboard_enhanced {
            let _ = execute!(stdout(), PopKeyboardEnhancementFlags);
        }
        ratatui::restore();
    }
}

/// Reads terminal events on its own task and forwards the ones the app cares about. Key
/// releases and repeats (reported by enhanced keyboards) are dropped: only presses act.
fn spawn_terminal_reader(tx: mpsc::Sender<Action>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut events = EventStream::new();
        while let Some(event) = events.next().await {
            let action = match event {
                Ok(Event::Key(key)) if key.kind == KeyEventKind::Press => Action::Key(key),
                Ok(Event::Paste(text)) => Action::Paste(text),
                Ok(Event::Resize(width, height)) => Action::Resize { width, height },
                Ok(_) => continue,
                Err(e) => Action::Notify {
                    text: format!("cannot read the terminal: {e}"),
                    is_error: true,
                },
            };
            if tx.send(action).await.is_err() {
                break; // the loop has ended
            }
        }
    })
}

async fn event_loop(guard: &mut TerminalGuard, ctx: TuiContext) -> anyhow::Result<()> {
    let TuiContext {
        store,
        config,
        sync_commands,
        mut sync_events,
        outbox_requests,
        mut outbox_events,
        banner,
    } = ctx;
    let theme = Theme::default();
    let mut state = AppState::new(banner);

    let (term_tx, mut term_rx) = mpsc::channel::<Action>(256);
    let reader = spawn_terminal_reader(term_tx);
    // Logins (`a`, `R`) run as tasks that report here.
    let (login_tx, mut login_rx) = mpsc::channel::<Action>(64);
    let mut account_ops = login::AccountOps::new(store.clone(), config.clone(), login_tx);

    let size = guard
        .terminal
        .size()
        .context("could not read the terminal size")?;
    // Everything waiting to be applied, in arrival order.
    let mut pending: VecDeque<Action> = VecDeque::from([
        Action::Resize {
            width: size.width,
            height: size.height,
        },
        Action::StoreChanged,
    ]);

    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut last_draw: Option<Instant> = None;
    let (mut sync_open, mut outbox_open) = (true, true);

    let outcome: anyhow::Result<()> = loop {
        // 1. Apply everything queued, running effects as they come.
        while let Some(action) = pending.pop_front() {
            for effect in app::update(&mut state, action, &store) {
                let follow_up = match effect {
                    Effect::Account(e) => account_ops.run(e, &sync_commands),
                    other => run_effect(other, &store, &sync_commands, &outbox_requests),
                };
                if let Some(follow_up) = follow_up {
                    pending.push_back(follow_up);
                }
            }
        }
        if state.quit {
            break Ok(());
        }

        // 2. Draw once for the whole batch, if anything visible changed.
        let frame_due = last_draw.map_or(Instant::now(), |t| t + FRAME);
        if state.dirty && Instant::now() >= frame_due {
            guard
                .terminal
                .draw(|frame| ui::draw(frame, &state, &theme, Utc::now()))
                .context("could not draw to the terminal")?;
            state.dirty = false;
            last_draw = Some(Instant::now());
        }

        // 3. Wait for the next message (or the end of the frame interval if a draw is owed).
        let first = tokio::select! {
            event = term_rx.recv() => match event {
                Some(a) => a,
                None => break Err(anyhow::anyhow!("the terminal stopped sending input")),
            },
            event = sync_events.recv(), if sync_open => match event {
                Some(e) => Action::Sync(e),
                None => {
                    sync_open = false;
                    tracing::warn!("sync engine channel closed");
                    Action::Notify {
                        text: "the sync engine stopped: no new mentions will arrive (see the log file; restart perch)".into(),
                        is_error: true,
                    }
                }
            },
            event = outbox_events.recv(), if outbox_open => match event {
                Some(e) => Action::Outbox(e),
                None => {
                    outbox_open = false;
                    tracing::warn!("outbox channel closed");
                    Action::Notify {
                        text: "the outbox stopped: replies cannot be sent (see the log file; restart perch)".into(),
                        is_error: true,
                    }
                }
            },
            Some(action) = login_rx.recv() => action,
            _ = ticker.tick() => Action::Tick(Utc::now()),
            _ = tokio::time::sleep_until(frame_due), if state.dirty => continue,
        };
        pending.push_back(first);
        // Drain what else is already waiting, so a burst becomes one draw.
        while let Ok(a) = term_rx.try_recv() {
            pending.push_back(a);
        }
        while let Ok(e) = sync_events.try_recv() {
            pending.push_back(Action::Sync(e));
        }
        while let Ok(e) = outbox_events.try_recv() {
            pending.push_back(Action::Outbox(e));
        }
        while let Ok(a) = login_rx.try_recv() {
            pending.push_back(a);
        }
    };

    reader.abort();
    outcome
}

/// Carries out one effect. Returns an action to feed back when the effect has something to
/// report (a failure, or a store write the screen must re-read).
fn run_effect(
    effect: Effect,
    store: &Store,
    sync_commands: &mpsc::Sender<Command>,
    outbox_requests: &mpsc::Sender<OutboxCommand>,
) -> Option<Action> {
    match effect {
        Effect::Send(request) => to_outbox(outbox_requests, OutboxCommand::Send(request)),
        Effect::Outbox(command) => to_outbox(outbox_requests, command),
        Effect::FetchNow(account) => command(sync_commands, Command::FetchNow(account)),
        Effect::Pause(id) => command(sync_commands, Command::Pause(id)),
        Effect::Resume(id) => command(sync_commands, Command::Resume(id)),
        Effect::SetStatus { .. } | Effect::SaveDraft { .. } | Effect::DeleteDraft { .. } => {
            run_store_effect(store, &effect)
        }
        Effect::OpenUrl(url) => {
            // Browsers can take a while to start; never hold up the screen for one.
            tokio::task::spawn_blocking(move || {
                if let Err(e) = webbrowser::open(&url) {
                    tracing::warn!("could not open {url} in a browser: {e}");
                }
            });
            None
        }
        // The loop hands these to `login::AccountOps`.
        Effect::Account(_) | Effect::Quit => None,
    }
}

/// Hands a command to the outbox worker; when it cannot take it, the UI hears why (as a refusal,
/// so a reply it showed as on its way is shown as it really is).
fn to_outbox(tx: &mpsc::Sender<OutboxCommand>, command: OutboxCommand) -> Option<Action> {
    let why = match tx.try_send(command) {
        Ok(()) => return None,
        Err(mpsc::error::TrySendError::Full(c)) => (c, "the outbox is busy; try again in a moment"),
        Err(mpsc::error::TrySendError::Closed(c)) => (c, "the outbox has stopped; restart perch"),
    };
    Some(Action::Outbox(OutboxEvent::Refused {
        key: why.0.key(),
        message: why.1.to_string(),
    }))
}

fn command(tx: &mpsc::Sender<Command>, command: Command) -> Option<Action> {
    match tx.try_send(command) {
        Ok(()) => None,
        Err(mpsc::error::TrySendError::Full(_)) => Some(Action::Notify {
            text: "the sync engine is busy; try again in a moment".into(),
            is_error: true,
        }),
        Err(mpsc::error::TrySendError::Closed(_)) => Some(Action::Notify {
            text: "the sync engine has stopped; restart perch".into(),
            is_error: true,
        }),
    }
}

/// Carries out the effects that write to the store (triage decisions and drafts); other effects
/// are ignored here. Public so tests can play the loop's part without a terminal.
pub fn run_store_effect(store: &Store, effect: &Effect) -> Option<Action> {
    match effect {
        Effect::SetStatus { key, status } => Some(set_status(store, *key, *status)),
        Effect::SaveDraft { key, draft } => store.put_draft(*key, draft).err().map(|e| {
            tracing::warn!("could not save a draft: {e}");
            Action::Notify {
                text: format!("could not save the draft (it is still in the composer): {e}"),
                is_error: true,
            }
        }),
        Effect::DeleteDraft { key } => {
            if let Err(e) = store.delete_draft(*key) {
                // A leftover draft is harmless: the next reply just starts from it.
                tracing::warn!("could not delete a sent draft: {e}");
            }
            None
        }
        _ => None,
    }
}

/// Writes a triage decision (`i`, `p`, `x`) to the store.
fn set_status(store: &Store, key: crate::domain::MentionKey, status: MentionStatus) -> Action {
    let result = store.mention(key).and_then(|found| match found {
        Some(mut m) => {
            m.status = status;
            if status != MentionStatus::Error {
                m.error_message = None;
            }
            m.updated_at = Utc::now();
            store.update_mention(&m).map(|_| true)
        }
        None => Ok(false),
    });
    match result {
        Ok(true) => Action::StoreChanged,
        Ok(false) => Action::Notify {
            text: "that mention is no longer in the store (its account was removed?)".into(),
            is_error: true,
        },
        Err(e) => {
            tracing::warn!("could not record a status change: {e}");
            Action::Notify {
                text: format!("could not record the change: {e}"),
                is_error: true,
            }
        }
    }
}
