//! The dashboard's loop and effect executor, generic over the screen (a real terminal, or
//! ratatui's `TestBackend` in tests) and over the connection to the perch service.
//!
//! The loop is the only owner of `AppState`. It waits for one message, drains everything else
//! already queued, applies it all with `app::update`, runs the effects against the connection,
//! and draws at most once per frame interval, and only when the state says something visible
//! changed. Reads (`update`'s feed pages, counts, search steps) go through the connection as a
//! `FeedSource`; writes and commands are effects carried out here.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};

use crate::app::{self, Action, AppState, Effect, Job, SavedReplies, StoreWrites};
use crate::client::{Connection, Incoming};
use crate::config::Config;
use crate::domain::MentionKey;
use crate::outbox::{OutboxCommand, OutboxEvent};
use crate::service::ServiceEvent;
use crate::sync::Command;
pub mod login;

use crate::ui::Theme;
use login::LoginSink;

/// What the loop draws on and asks of the terminal.
pub trait Screen {
    /// The size in cells.
    fn size(&mut self) -> anyhow::Result<(u16, u16)>;
    /// Draws the whole screen from `state` (a pure read of it).
    fn draw(&mut self, state: &AppState, theme: &Theme, now: DateTime<Utc>) -> anyhow::Result<()>;
    /// Hands the terminal to `$VISUAL`/`$EDITOR` to edit `draft`; the edited text, or why not.
    fn edit_externally(&mut self, draft: &str) -> Result<String, String>;
    /// Puts `text` on the clipboard (OSC 52 on a terminal).
    fn copy_to_clipboard(&mut self, text: &str) -> std::io::Result<()>;
    /// Rings the bell. A screen with no bell (a test backend) does nothing.
    fn bell(&mut self) -> std::io::Result<()> {
        Ok(())
    }
    /// Sets the window title (and restores the previous one when the screen ends). A screen
    /// with no title (a test backend) does nothing.
    fn set_title(&mut self, _title: &str) -> std::io::Result<()> {
        Ok(())
    }
    /// The background colour the terminal reported, for `[theme] base = "auto"` (asked before
    /// keys are read, so the answer never arrives as key presses); `None` when unknown.
    fn background(&self) -> Option<crate::ui::palette::Rgb> {
        None
    }
}

/// What `run` needs besides the screen.
pub struct DashboardContext<C: Connection + 'static> {
    pub connection: Arc<C>,
    pub incoming: mpsc::Receiver<Incoming>,
    /// Keys, pastes and resizes, in order.
    pub input: mpsc::Receiver<Action>,
    pub config: Config,
    /// A line shown in the status bar for the whole session, e.g. "demo: simulator at http://...".
    pub banner: Option<String>,
}

/// No more than this many frames a second: a burst of events costs one draw per frame.
const FRAME: Duration = Duration::from_millis(33);

/// Runs the dashboard until the user quits.
pub async fn run<S: Screen, C: Connection + 'static>(
    screen: &mut S,
    ctx: DashboardContext<C>,
) -> anyhow::Result<()> {
    let DashboardContext {
        connection,
        mut incoming,
        mut input,
        config,
        banner,
    } = ctx;
    let theme = Theme::from_settings(
        &config.theme,
        screen.background(),
        Theme::no_color_from_env(),
    );
    let mut state = AppState::new(banner);
    // Checked before the terminal was taken over (`run_dashboard`); the default keys otherwise.
    match crate::app::keymap_config::build(&config.keys, &config.config_path) {
        Ok(keymap) => state.keymap = Arc::new(keymap),
        Err(e) => state.error(e),
    }
    state.saved_replies = SavedReplies::from_config(&config);
    state.budgets = config.budgets.clone();
    state.alerts = app::notify::TerminalAlerts::new(config.notify.clone());

    // Logins (`a`, `R`) run as tasks that report here.
    let (login_tx, mut login_rx) = mpsc::channel::<Action>(64);
    let sink: Arc<dyn LoginSink> = Arc::new(login::ServiceLogins(connection.clone()));
    let mut account_ops = login::AccountOps::new(sink, config.clone(), login_tx);
    // Effects that finish later (a browser that would not open, a draft measured off the key
    // path) report here.
    let (reports_tx, mut reports_rx) = mpsc::channel::<Action>(64);
    let measurer = spawn_measurer(reports_tx.clone());

    let (width, height) = screen.size()?;
    // The clock first: `update` reads time from the state only.
    let mut pending: VecDeque<Action> = VecDeque::from([
        Action::Tick(Utc::now()),
        Action::Resize { width, height },
        Action::StoreChanged,
    ]);

    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut last_draw: Option<Instant> = None;
    let mut incoming_open = true;
    // Steps of long jobs (search, bulk triage, undo), run one at a time when nothing else waits.
    let mut idle: VecDeque<Job> = VecDeque::new();
    // The selected mention as the user knows it: as last drawn, moved since only by their own
    // keys (whose effect they can predict). Every key carries it, so a key acts on what the user
    // saw even when an arrival changed the state after the last draw.
    let mut seen: Option<MentionKey> = None;

    let outcome: anyhow::Result<()> = loop {
        // 1. Apply everything queued, running effects as they come.
        while let Some(mut action) = pending.pop_front() {
            let is_key = match &mut action {
                Action::Key { seen: carried, .. } => {
                    *carried = seen;
                    true
                }
                _ => false,
            };
            // A mouse event means what is drawn under it (the state as it is now, as for keys).
            if let Action::Mouse(m) = &action {
                let what = match m.kind {
                    crossterm::event::MouseEventKind::ScrollUp => {
                        app::message::PointerKind::WheelUp
                    }
                    crossterm::event::MouseEventKind::ScrollDown => {
                        app::message::PointerKind::WheelDown
                    }
                    _ => app::message::PointerKind::Click,
                };
                match crate::ui::hit_test(&state, &theme, Utc::now(), state.size, m.column, m.row) {
                    Some(target) => action = Action::Pointer { target, what },
                    None => continue,
                }
            }
            let effects = app::update(&mut state, action, &*connection);
            if is_key {
                seen = selected_key(&state);
            }
            for effect in effects {
                match effect {
                    Effect::Account(e) => {
                        let sync = |command: Command| sync_command(&*connection, command);
                        if let Some(follow_up) = account_ops.run(e, &sync) {
                            pending.push_back(follow_up);
                        }
                    }
                    Effect::Background(job) => idle.push_back(job),
                    Effect::MeasureDraft {
                        key,
                        generation,
                        text,
                    } => {
                        let _ = measurer.send(MeasureRequest {
                            key,
                            generation,
                            text,
                        });
                    }
                    Effect::EditExternally { key, text } => {
                        let result = screen.edit_externally(&text);
                        state.dirty = true;
                        last_draw = None;
                        pending.push_back(Action::EditorDone { key, result });
                    }
                    Effect::Bell => {
                        if let Err(e) = screen.bell() {
                            tracing::debug!("could not ring the bell: {e}");
                        }
                    }
                    Effect::SetTitle(title) => {
                        if let Err(e) = screen.set_title(&title) {
                            tracing::debug!("could not set the terminal title: {e}");
                        }
                    }
                    Effect::CopyToClipboard(text) => {
                        if let Err(e) = screen.copy_to_clipboard(&text) {
                            pending.push_back(Action::Notify {
                                text: format!("could not copy the link: {e}"),
                                is_error: true,
                            });
                        }
                    }
                    effect => {
                        if let Some(follow_up) = run_effect(effect, &*connection, &reports_tx) {
                            pending.push_back(follow_up);
                        }
                    }
                }
            }
        }
        if state.quit {
            break Ok(());
        }

        // 2. Draw once for the whole batch, if anything visible changed.
        let frame_due = last_draw.map_or(Instant::now(), |t| t + FRAME);
        if state.dirty && Instant::now() >= frame_due {
            screen.draw(&state, &theme, Utc::now())?;
            seen = selected_key(&state);
            state.dirty = false;
            last_draw = Some(Instant::now());
        }

        // 3. Wait for the next message (or the end of the frame interval if a draw is owed).
        let first = tokio::select! {
            biased;
            event = input.recv() => match event {
                Some(a) => a,
                None => break Err(anyhow::anyhow!("the terminal stopped sending input")),
            },
            event = incoming.recv(), if incoming_open => match event {
                Some(i) => {
                    let mut actions = from_service(i);
                    let first = actions.remove(0);
                    pending.extend(actions);
                    first
                }
                None => {
                    incoming_open = false;
                    Action::Notify {
                        text: "the connection to the perch service ended: no new mentions will arrive (restart perch)".into(),
                        is_error: true,
                    }
                }
            },
            Some(action) = login_rx.recv() => action,
            Some(action) = reports_rx.recv() => action,
            _ = ticker.tick() => Action::Tick(Utc::now()),
            // Lowest priority (`biased`): a job step only when no event is waiting, so keys and
            // draws always come first.
            _ = std::future::ready(()), if !idle.is_empty() => match idle.pop_front() {
                Some(job) => Action::Continue(job),
                None => continue,
            },
            _ = tokio::time::sleep_until(frame_due), if state.dirty => continue,
        };
        pending.push_back(first);
        // Drain what else is already waiting, so a burst becomes one draw.
        while let Ok(a) = input.try_recv() {
            pending.push_back(a);
        }
        while let Ok(i) = incoming.try_recv() {
            pending.extend(from_service(i));
        }
        while let Ok(a) = login_rx.try_recv() {
            pending.push_back(a);
        }
        while let Ok(a) = reports_rx.try_recv() {
            pending.push_back(a);
        }
    };
    outcome
}

/// What the service said, as actions for `update` (never empty).
fn from_service(incoming: Incoming) -> Vec<Action> {
    match incoming {
        Incoming::Event(event) => vec![match *event {
            ServiceEvent::Sync(e) => Action::Sync(e),
            ServiceEvent::Outbox(e) => Action::Outbox(e),
            ServiceEvent::Team(e) => Action::Team(e),
        }],
        Incoming::Lost(why) => {
            tracing::warn!("lost the service: {why}");
            vec![Action::Notify {
                text: format!("reconnecting… ({why}); your draft and selection are kept"),
                is_error: true,
            }]
        }
        // Everything may have changed while the connection was down: read it all again.
        Incoming::Restored => vec![
            Action::Notify {
                text: "reconnected to the perch service".into(),
                is_error: false,
            },
            Action::StoreChanged,
        ],
    }
}

fn selected_key(state: &AppState) -> Option<MentionKey> {
    state
        .feed
        .selected_mention()
        .map(crate::domain::Mention::key)
}

/// Carries out one effect against the connection. Returns an action to feed back when the effect
/// has something to report (a failure, or a store write the screen must re-read).
fn run_effect(
    effect: Effect,
    connection: &dyn Connection,
    reports: &mpsc::Sender<Action>,
) -> Option<Action> {
    match effect {
        Effect::Send(request) => to_outbox(connection, OutboxCommand::Send(request)),
        Effect::Outbox(command) => to_outbox(connection, command),
        Effect::FetchNow(account) => sync_command(connection, Command::FetchNow(account)),
        Effect::Pause(id) => sync_command(connection, Command::Pause(id)),
        Effect::Resume(id) => sync_command(connection, Command::Resume(id)),
        Effect::Triage { .. }
        | Effect::Undo { .. }
        | Effect::SaveDraft { .. }
        | Effect::DeleteDraft { .. }
        | Effect::Assign { .. } => run_store_effect(connection, &effect),
        Effect::Presence { key, open } => {
            // What the team sees is a courtesy: a failure to say it must not stop the reply.
            if let Err(e) = connection.presence(key, open) {
                tracing::debug!("could not tell the team about the composer: {e}");
            }
            None
        }
        Effect::OpenUrl(url) => {
            // Browsers can take a while to start; never hold up the screen for one. A failure
            // comes back as an action, so the user hears of it (and gets the link instead).
            let reports = reports.clone();
            tokio::task::spawn_blocking(move || {
                if let Err(e) = webbrowser::open(&url) {
                    tracing::warn!("could not open {url} in a browser: {e}");
                    let _ = reports.blocking_send(Action::OpenFailed {
                        url,
                        why: e.to_string(),
                    });
                }
            });
            None
        }
        // Handled by the loop itself.
        Effect::Account(_)
        | Effect::Background(_)
        | Effect::EditExternally { .. }
        | Effect::MeasureDraft { .. }
        | Effect::CopyToClipboard(_)
        | Effect::Bell
        | Effect::SetTitle(_)
        | Effect::Quit => None,
    }
}

/// Hands a command to the outbox; when it cannot take it, the UI hears why (as a refusal, so a
/// reply it showed as on its way is shown as it really is).
fn to_outbox(connection: &dyn Connection, command: OutboxCommand) -> Option<Action> {
    let key = command.key();
    connection
        .outbox(command)
        .err()
        .map(|message| Action::Outbox(OutboxEvent::Refused { key, message }))
}

fn sync_command(connection: &dyn Connection, command: Command) -> Option<Action> {
    connection.sync(command).err().map(|text| Action::Notify {
        text,
        is_error: true,
    })
}

/// Carries out the effects that write to the store (triage decisions, undo and drafts); other
/// effects are ignored here. Public so tests can play the loop's part without a terminal.
pub fn run_store_effect(store: &dyn StoreWrites, effect: &Effect) -> Option<Action> {
    match effect {
        Effect::Triage {
            action,
            keys,
            status,
        } => Some(match store.triage(*action, keys, *status) {
            Ok(changed) => Action::Triaged {
                action: *action,
                changed,
            },
            Err(e) => {
                tracing::warn!("could not record a status change: {e}");
                Action::Notify {
                    text: format!("could not record the change: {e}"),
                    is_error: true,
                }
            }
        }),
        Effect::Undo { action } => Some(Action::Undone(store.undo_step(*action).map_err(|e| {
            tracing::warn!("could not undo: {e}");
            format!("could not undo: {e}")
        }))),
        Effect::SaveDraft { key, draft } => store.put_draft(*key, draft).err().map(|e| {
            tracing::warn!("could not save a draft: {e}");
            Action::Notify {
                text: format!("could not save the draft (it is still in the composer): {e}"),
                is_error: true,
            }
        }),
        Effect::Assign {
            key,
            mention_id,
            handle,
            person,
            by,
        } => Some(match store.assign(*key, handle, person.as_deref()) {
            // Over the service the same change also comes back as its event (applied twice, it
            // changes nothing the second time); on a store alone this is the only report.
            Ok(Ok(())) => Action::Team(crate::domain::TeamEvent::Assigned {
                key: *key,
                mention_id: *mention_id,
                handle: handle.clone(),
                assigned_to: person.clone(),
                by: by.clone(),
                at: chrono::Utc::now(),
            }),
            Ok(Err(refusal)) => Action::Notify {
                text: crate::text::sanitize(&format!("not assigned: {refusal}"), true),
                is_error: true,
            },
            Err(e) => {
                tracing::warn!("could not assign a mention: {e}");
                Action::Notify {
                    text: format!("could not assign the mention: {e}"),
                    is_error: true,
                }
            }
        }),
        Effect::DeleteDraft { key } => store.delete_draft(*key).err().map(|e| {
            tracing::warn!("could not delete a sent draft: {e}");
            Action::Notify {
                text: format!(
                    "the reply went out, but its draft could not be deleted ({e}): the next reply to this mention starts from it"
                ),
                is_error: true,
            }
        }),
        _ => None,
    }
}

/// A draft to measure (see `Effect::MeasureDraft`).
struct MeasureRequest {
    key: MentionKey,
    generation: u64,
    text: String,
}

/// Measures drafts off the key path, one at a time: while one is being measured, newer requests
/// replace each other, so typing into a long word costs one measurement at a time, for the
/// newest text, never a queue of stale ones. Each measurement is bounded (`text::post_length`).
fn spawn_measurer(results: mpsc::Sender<Action>) -> mpsc::UnboundedSender<MeasureRequest> {
    let (tx, mut rx) = mpsc::unbounded_channel::<MeasureRequest>();
    tokio::spawn(async move {
        while let Some(mut request) = rx.recv().await {
            while let Ok(newer) = rx.try_recv() {
                request = newer;
            }
            let MeasureRequest {
                key,
                generation,
                text,
            } = request;
            let Ok(length) =
                tokio::task::spawn_blocking(move || crate::text::post_length(&text)).await
            else {
                continue;
            };
            let measured = Action::DraftMeasured {
                key,
                generation,
                length,
            };
            if results.send(measured).await.is_err() {
                break;
            }
        }
    });
    tx
}
