//! The terminal side: setting the terminal up and putting it back (on quit, on error and on
//! panic), reading keys on their own task, the external editor and OSC 52. The loop itself is in
//! `dashboard`, generic over the screen; this module is its terminal [`Screen`].

use std::io::stdout;
use std::sync::Arc;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use crossterm::event::{
    Event, EventStream, KeyEventKind, KeyboardEnhancementFlags, MouseButton, MouseEventKind,
    PopKeyboardEnhancementFlags, PushKeyboardEnhancementFlags,
};
use crossterm::execute;
use futures::StreamExt as _;
use tokio::sync::mpsc;

pub mod background;

use crate::app::{Action, AppState};
use crate::client::{Connection, Incoming};
use crate::config::{Config, ThemeBase, ThemeSettings};
use crate::dashboard::{self, DashboardContext, Screen};
use crate::ui::{self, Theme};

pub use crate::dashboard::run_store_effect;

/// What the dashboard runs on, once `prepare` (connecting to the service, starting the demo...)
/// is done.
pub struct Prepared<C: Connection + 'static> {
    pub connection: Arc<C>,
    pub incoming: mpsc::Receiver<Incoming>,
    pub config: Config,
    /// A line shown in the status bar for the whole session, e.g. "demo: simulator at http://...".
    pub banner: Option<String>,
}

/// Takes the terminal, draws a loading frame saying `loading` at once, then awaits `prepare` and
/// runs the dashboard on what it returns. The first frame is on screen within milliseconds; if
/// `prepare` fails, the terminal is restored before the error is returned. `theme` is the
/// configuration's `[theme]`: with `base = "auto"` the terminal is asked for its background
/// first, before anything reads keys.
pub async fn run_after<C, F>(
    loading: &str,
    mouse: bool,
    theme: &ThemeSettings,
    prepare: F,
) -> anyhow::Result<()>
where
    C: Connection + 'static,
    F: std::future::Future<Output = anyhow::Result<Prepared<C>>>,
{
    let mut terminal = TerminalGuard::enter(mouse)?;
    let background = if theme.base == ThemeBase::Auto {
        let answer = background::query(background::TIMEOUT);
        tracing::info!("the terminal's background: {answer:?}");
        answer
    } else {
        None
    };
    if !loading.is_empty() {
        let theme = Theme::from_settings(theme, background, Theme::no_color_from_env());
        terminal
            .terminal
            .draw(|frame| ui::draw_loading(frame, &theme, loading))
            .context("could not draw to the terminal")?;
    }
    let prepared = match prepare.await {
        Ok(p) => p,
        Err(e) => {
            drop(terminal);
            return Err(e);
        }
    };
    let (input_tx, input_rx) = mpsc::channel::<Action>(256);
    let reader = spawn_terminal_reader(input_tx.clone());
    let mut screen = TerminalScreen {
        guard: terminal,
        reader,
        input_tx,
        background,
    };
    let result = dashboard::run(
        &mut screen,
        DashboardContext {
            connection: prepared.connection,
            incoming: prepared.incoming,
            input: input_rx,
            config: prepared.config,
            banner: prepared.banner,
        },
    )
    .await;
    screen.reader.abort();
    drop(screen);
    result
}

/// The real terminal as the dashboard's screen.
struct TerminalScreen {
    guard: TerminalGuard,
    reader: tokio::task::JoinHandle<()>,
    input_tx: mpsc::Sender<Action>,
    /// What the terminal said its background is (asked only for `base = "auto"`).
    background: Option<crate::ui::palette::Rgb>,
}

impl Screen for TerminalScreen {
    fn size(&mut self) -> anyhow::Result<(u16, u16)> {
        let size = self
            .guard
            .terminal
            .size()
            .context("could not read the terminal size")?;
        Ok((size.width, size.height))
    }

    fn draw(&mut self, state: &AppState, theme: &Theme, now: DateTime<Utc>) -> anyhow::Result<()> {
        self.guard
            .terminal
            .draw(|frame| ui::draw(frame, state, theme, now))
            .context("could not draw to the terminal")?;
        Ok(())
    }

    fn edit_externally(&mut self, draft: &str) -> Result<String, String> {
        // The editor needs the terminal (and its keys) to itself.
        self.reader.abort();
        let result = self.guard.suspend_for_editor(draft);
        self.reader = spawn_terminal_reader(self.input_tx.clone());
        result
    }

    fn copy_to_clipboard(&mut self, text: &str) -> std::io::Result<()> {
        copy_to_clipboard(text)
    }

    fn background(&self) -> Option<crate::ui::palette::Rgb> {
        self.background
    }

    fn bell(&mut self) -> std::io::Result<()> {
        use std::io::Write as _;
        let mut out = stdout();
        out.write_all(b"\x07")?;
        out.flush()
    }

    fn set_title(&mut self, title: &str) -> std::io::Result<()> {
        set_title(title)
    }
}

/// perch changed the terminal title (and saved the old one on the terminal's title stack): it
/// must be put back on every way out, the panic hook included, which is why this is a static.
static TITLE_SET: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Sets the terminal title. The first time, the terminal's own title is pushed on its title
/// stack (xterm's `CSI 22;0 t`, which tmux and most terminals accept or ignore) so that
/// [`restore_title`] can pop it back.
fn set_title(title: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut out = stdout();
    if !TITLE_SET.swap(true, std::sync::atomic::Ordering::AcqRel) {
        out.write_all(b"\x1b[22;0t")?;
    }
    // `app::notify` made it (a count), so it holds no control character to end the sequence.
    execute!(out, crossterm::terminal::SetTitle(title))
}

/// Puts the terminal title back, if perch set one: an empty title first (so a terminal with no
/// title stack does not keep showing a stale count), then the saved one popped.
fn restore_title() {
    use std::io::Write as _;
    if TITLE_SET.swap(false, std::sync::atomic::Ordering::AcqRel) {
        let mut out = stdout();
        let _ = execute!(out, crossterm::terminal::SetTitle(""));
        let _ = out.write_all(b"\x1b[23;0t");
        let _ = out.flush();
    }
}

/// Owns the terminal while the TUI runs. Dropping it (normal return, `?`, or unwinding from a
/// panic) puts the terminal back; the panic hook does the same before the panic message prints,
/// so the message is readable.
struct TerminalGuard {
    terminal: ratatui::DefaultTerminal,
    keyboard_enhanced: bool,
    /// Mouse capture is on (`mouse = true`): released on every way out, as bracketed paste is.
    mouse: bool,
}

impl TerminalGuard {
    fn enter(mouse: bool) -> anyhow::Result<TerminalGuard> {
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
        let mouse = mouse && execute!(stdout(), crossterm::event::EnableMouseCapture).is_ok();
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore_title();
            let _ = execute!(stdout(), crossterm::event::DisableBracketedPaste);
            if mouse {
                let _ = execute!(stdout(), crossterm::event::DisableMouseCapture);
            }
            if keyboard_enhanced {
                let _ = execute!(stdout(), PopKeyboardEnhancementFlags);
            }
            previous(info);
        }));
        Ok(TerminalGuard {
            terminal,
            keyboard_enhanced,
            mouse,
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
        if self.mouse {
            let _ = execute!(stdout(), crossterm::event::DisableMouseCapture);
        }
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
        if self.mouse {
            execute!(stdout(), crossterm::event::EnableMouseCapture)?;
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
        restore_title();
        let _ = execute!(stdout(), crossterm::event::DisableBracketedPaste);
        if self.mouse {
            let _ = execute!(stdout(), crossterm::event::DisableMouseCapture);
        }
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
                Ok(Event::Key(key)) if key.kind == KeyEventKind::Press => {
                    // The loop says what was on screen when it takes the key.
                    Action::Key { key, seen: None }
                }
                Ok(Event::Paste(text)) => Action::Paste(text),
                // Clicks and the wheel only: moves and drags would flood the loop for nothing.
                Ok(Event::Mouse(m))
                    if matches!(
                        m.kind,
                        MouseEventKind::Down(MouseButton::Left)
                            | MouseEventKind::ScrollUp
                            | MouseEventKind::ScrollDown
                    ) =>
                {
                    Action::Mouse(m)
                }
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
