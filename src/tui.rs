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

use crate::app::{self, Action, AppState, Effect, Job, SavedReplies};
use crate::config::Config;
use crate::domain::MentionKey;
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
    run_after("", async { Ok(ctx) }).await
}

/// Takes the terminal, draws a loading frame saying `loading` at once, then awaits `prepare`
/// (opening the store, starting the demo...) and runs the dashboard on what it returns. The first
/// frame is on screen within milliseconds however large the store is; if `prepare` fails, the
/// terminal is restored before the error is returned.
pub async fn run_after<F>(loading: &str, prepare: F) -> anyhow::Result<()>
where
    F: std::future::Future<Output = anyhow::Result<TuiContext>>,
{
    let mut terminal = TerminalGuard::enter()?;
    if !loading.is_empty() {
        terminal
            .terminal
            .draw(|frame| ui::draw_loading(frame, &Theme::default(), loading))
            .context("could not draw to the terminal")?;
    }
    let result = match prepare.await {
        Ok(ctx) => event_loop(&mut terminal, ctx).await,
        Err(e) => Err(e),
    };
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
        // Bracketed paste: a paste arrives as one `Event::Paste`, inserted and measured once,
        // instead of one key event (and one length count) per character. ratatui's `init` does
        // not enable it, so it is disabled here on every way out: drop, editor, panic.
        let _ = execute!(stdout(), crossterm::event::EnableBracketedPaste);
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let _ = execute!(stdout(), crossterm::event::DisableBracketedPaste);
            if keyboard_enhanced {
                let _ = execute!(stdout(), PopKeyboardEnhancementFlags);
            }
            previous(info);
        }));
        Ok(TerminalGuard {
            terminal,
            keyboard_enhanced,
        })
    }
}

impl TerminalGuard {
    /// Hands the terminal to `$VISUAL` / `$EDITOR` to edit `draft`, then takes it back. The draft
    /// goes through a temporary file only the user can read (0600), removed afterwards. Returns
    /// the edited text, or a message saying why the editor could not be used.
    fn suspend_for_editor(&mut self, draft: &str) -> Result<String, String> {
        let editor = ["VISUAL", "EDITOR"]
            .into_iter()
            .filter_map(|name| std::env::var(name).ok())
            .find(|v| !v.trim().is_empty())
            .ok_or(
                "no editor is set: set $EDITOR (for example `export EDITOR=vim`), then C-e again",
            )?;
        let path = std::env::temp_dir().join(format!("perch-draft-{}.txt", uuid::Uuid::new_v4()));
        write_private(&path, draft)
            .map_err(|e| format!("could not write the draft to {}: {e}", path.display()))?;

        // Leave the screen as the shell had it, so the editor gets a normal terminal.
        let _ = execute!(stdout(), crossterm::event::DisableBracketedPaste);
        if self.keyboard_enhanced {
            let _ = execute!(stdout(), PopKeyboardEnhancementFlags);
        }
        ratatui::restore();
        let mut words = editor.split_whitespace();
        let program = words.next().unwrap_or_default().to_string();
        let status = std::process::Command::new(&program)
            .args(words)
            .arg(&path)
            .status();
        let back = self.resume();

        let outcome = match status {
            Err(e) => Err(format!(
                "could not start the editor {program:?} (from $VISUAL/$EDITOR): {e}; the draft is unchanged"
            )),
            Ok(s) if !s.success() => Err(format!(
                "the editor {program:?} exited with {s}; the draft is unchanged"
            )),
            Ok(_) => std::fs::read_to_string(&path).map_err(|e| {
                format!("could not read the edited draft back: {e}; the draft is unchanged")
            }),
        };
        if let Err(e) = std::fs::remove_file(&path) {
            tracing::warn!("could not remove the draft file {}: {e}", path.display());
        }
        back.map_err(|e| format!("could not take the terminal back: {e}"))?;
        outcome
    }

    /// Raw mode and the alternate screen again after the editor, with a full redraw.
    fn resume(&mut self) -> std::io::Result<()> {
        crossterm::terminal::enable_raw_mode()?;
        execute!(
            stdout(),
            crossterm::terminal::EnterAlternateScreen,
            crossterm::event::EnableBracketedPaste
        )?;
        if self.keyboard_enhanced {
            execute!(
                stdout(),
                PushKeyboardEnhancementFlags(KeyboardEnhancementFlags::DISAMBIGUATE_ESCAPE_CODES)
            )?;
        }
        self.terminal.clear()
    }
}

/// Creates `path` readable and writable by the owner only, and writes `text` to it. Refuses to
/// reuse an existing file (the name is random; an existing one is not ours).
fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        let _ = execute!(stdout(), crossterm::event::DisableBracketedPaste);
        if self.keyboard_enhanced {
            let _ = execute!(stdout(), PopKeyboardEnhancementFlags);
        }
        ratatui::restore();
    }
}

/// A draft to measure (see `Effect::MeasureDraft`).
struct MeasureRequest {
    key: crate::domain::MentionKey,
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

/// Reads terminal events on its own task and forwards the ones the app cares about. Key
/// releases and repeats (reported by enhanced keyboards) are dropped: only presses act.
fn spawn_terminal_reader(tx: mpsc::Sender<Action>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut events = EventStream::new();
        while let Some(event) = events.next().await {
            let action = match event {
                Ok(Event::Key(key)) if key.kind == KeyEventKind::Press => {
                    // The loop says what was on screen when it takes the key.
                    Action::Key { key, seen: None }
                }
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
    let theme = Theme::from_env();
    let mut state = AppState::new(banner);
    state.saved_replies = SavedReplies::from_config(&config);
    state.budgets = config.budgets.clone();

    let (term_tx, mut term_rx) = mpsc::channel::<Action>(256);
    let mut reader = spawn_terminal_reader(term_tx.clone());
    // Logins (`a`, `R`) run as tasks that report here.
    let (login_tx, mut login_rx) = mpsc::channel::<Action>(64);
    let mut account_ops = login::AccountOps::new(store.clone(), config.clone(), login_tx);
    // Effects that finish later (a browser that would not open, a draft measured off the key
    // path) report here.
    let (reports_tx, mut reports_rx) = mpsc::channel::<Action>(64);
    // Drafts too slow to measure on a key press are measured here, newest request first.
    let measurer = spawn_measurer(reports_tx.clone());

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
            let effects = app::update(&mut state, action, &store);
            if is_key {
                seen = selected_key(&state);
            }
            for effect in effects {
                match effect {
                    Effect::Account(e) => {
                        if let Some(follow_up) = account_ops.run(e, &sync_commands) {
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
                        // The editor needs the terminal (and its keys) to itself.
                        reader.abort();
                        let _ = (&mut reader).await;
                        let result = guard.suspend_for_editor(&text);
                        reader = spawn_terminal_reader(term_tx.clone());
                        state.dirty = true;
                        last_draw = None;
                        pending.push_back(Action::EditorDone { key, result });
                    }
                    effect => {
                        if let Some(follow_up) = run_effect(
                            effect,
                            &store,
                            &sync_commands,
                            &outbox_requests,
                            &reports_tx,
                        ) {
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
            guard
                .terminal
                .draw(|frame| ui::draw(frame, &state, &theme, Utc::now()))
                .context("could not draw to the terminal")?;
            seen = selected_key(&state);
            state.dirty = false;
            last_draw = Some(Instant::now());
        }

        // 3. Wait for the next message (or the end of the frame interval if a draw is owed).
        let first = tokio::select! {
            biased;
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
        while let Ok(a) = reports_rx.try_recv() {
            pending.push_back(a);
        }
    };

    reader.abort();
    outcome
}

fn selected_key(state: &AppState) -> Option<MentionKey> {
    state
        .feed
        .selected_mention()
        .map(crate::domain::Mention::key)
}

/// Carries out one effect. Returns an action to feed back when the effect has something to
/// report (a failure, or a store write the screen must re-read).
fn run_effect(
    effect: Effect,
    store: &Store,
    sync_commands: &mpsc::Sender<Command>,
    outbox_requests: &mpsc::Sender<OutboxCommand>,
    reports: &mpsc::Sender<Action>,
) -> Option<Action> {
    match effect {
        Effect::Send(request) => to_outbox(outbox_requests, OutboxCommand::Send(request)),
        Effect::Outbox(command) => to_outbox(outbox_requests, command),
        Effect::FetchNow(account) => command(sync_commands, Command::FetchNow(account)),
        Effect::Pause(id) => command(sync_commands, Command::Pause(id)),
        Effect::Resume(id) => command(sync_commands, Command::Resume(id)),
        Effect::Triage { .. }
        | Effect::Undo { .. }
        | Effect::SaveDraft { .. }
        | Effect::DeleteDraft { .. } => run_store_effect(store, &effect),
        Effect::CopyToClipboard(text) => copy_to_clipboard(&text).err().map(|e| Action::Notify {
            text: format!("could not copy the link: {e}"),
            is_error: true,
        }),
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
        // Handled by the loop itself (accounts go to `login::AccountOps`).
        Effect::Account(_)
        | Effect::Background(_)
        | Effect::EditExternally { .. }
        | Effect::MeasureDraft { .. }
        | Effect::Quit => None,
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

/// OSC 52: the terminal puts the (base64) text on the clipboard. It works over SSH and in tmux
/// (with `set-clipboard on`), where no local clipboard tool could.
fn copy_to_clipboard(text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut out = stdout();
    out.write_all(osc52(text).as_bytes())?;
    out.flush()
}

/// The OSC 52 "set clipboard" sequence for `text` (base64, so no byte of the text can end the
/// sequence early or be read by the terminal as a command).
fn osc52(text: &str) -> String {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(text);
    format!("\x1b]52;c;{encoded}\x07")
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

/// Carries out the effects that write to the store (triage decisions, undo and drafts); other
/// effects are ignored here. Public so tests can play the loop's part without a terminal.
pub fn run_store_effect(store: &Store, effect: &Effect) -> Option<Action> {
    match effect {
        Effect::Triage {
            action,
            keys,
            status,
        } => Some(match store.triage(*action, keys, *status, Utc::now()) {
            Ok(changed) => {
                // Bulk chunks: flushing between them keeps sled 0.34's background log writes
                // few; a pile of them is what its pool deadlock (sled #804/#1412) needs.
                if keys.len() > 1
                    && let Err(e) = store.flush()
                {
                    tracing::warn!("could not flush after a bulk change: {e}");
                }
                Action::Triaged {
                    action: *action,
                    changed: changed.len(),
                }
            }
            Err(e) => {
                tracing::warn!("could not record a status change: {e}");
                Action::Notify {
                    text: format!("could not record the change: {e}"),
                    is_error: true,
                }
            }
        }),
        Effect::Undo { action } => Some(Action::Undone(
            store.undo_step(*action, Utc::now()).map_err(|e| {
                tracing::warn!("could not undo: {e}");
                format!("could not undo: {e}")
            }),
        )),
        Effect::SaveDraft { key, draft } => store.put_draft(*key, draft).err().map(|e| {
            tracing::warn!("could not save a draft: {e}");
            Action::Notify {
                text: format!("could not save the draft (it is still in the composer): {e}"),
                is_error: true,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn osc52_carries_the_link_base64_encoded() {
        assert_eq!(
            osc52("https://x.com/a/status/1"),
            "\x1b]52;c;aHR0cHM6Ly94LmNvbS9hL3N0YXR1cy8x\x07"
        );
    }

    #[test]
    fn drafts_for_the_editor_are_private_files() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("draft.txt");
        write_private(&path, "secret-ish draft").expect("write");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "secret-ish draft");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(
            write_private(&path, "again").is_err(),
            "an existing file is never reused"
        );
    }
}
