//! Where a command's output goes and its input comes from. Run in a terminal, that is the
//! process's stdout, stderr and stdin. Run inside the perch service for a CLI client (as tmux runs
//! a client's command in its server), it is the client's: every line goes back over the
//! connection, and input is asked of the client. The command's code is the same either way, which
//! is what makes its output and exit code the same with and without a service.

use std::collections::HashSet;
use std::io::Write as _;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use crate::domain::MentionKey;
use crate::service::Hub;

/// What a command run for a client sends it.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", content = "data", rename_all = "snake_case")]
pub enum ToClient {
    Stdout(String),
    Stderr(String),
    /// Send one line of standard input (`FromClient::Line`).
    ReadLine,
    /// Send all of standard input (`FromClient::All`).
    ReadAll,
    /// The command ended with this exit code.
    Exit(i32),
}

/// What the client sends.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", content = "data", rename_all = "snake_case")]
pub enum FromClient {
    /// The command line, and where it was typed (relative paths are the client's).
    Start {
        argv: Vec<String>,
        cwd: String,
        stdin_is_terminal: bool,
    },
    /// A line of standard input (`None` at its end).
    Line(Option<String>),
    All(String),
}

/// The client of a command run in the service.
pub struct Remote {
    pub hub: Arc<Hub>,
    out: mpsc::UnboundedSender<ToClient>,
    input: tokio::sync::Mutex<mpsc::Receiver<FromClient>>,
    pub stdin_is_terminal: bool,
    /// Sends this command asked for: abandoned when it ends (see `OutboxCommand::Abandon`).
    owned: Mutex<HashSet<MentionKey>>,
}

tokio::task_local! {
    static REMOTE: Arc<Remote>;
}

impl Remote {
    pub fn new(
        hub: Arc<Hub>,
        out: mpsc::UnboundedSender<ToClient>,
        input: mpsc::Receiver<FromClient>,
        stdin_is_terminal: bool,
    ) -> Remote {
        Remote {
            hub,
            out,
            input: tokio::sync::Mutex::new(input),
            stdin_is_terminal,
            owned: Mutex::default(),
        }
    }

    /// Runs `f` with this client as its console.
    pub async fn scope<F: std::future::Future>(self: Arc<Remote>, f: F) -> F::Output {
        REMOTE.scope(self, f).await
    }

    pub fn send(&self, message: ToClient) {
        let _ = self.out.send(message);
    }

    /// The sends the command asked for.
    pub fn owned(&self) -> Vec<MentionKey> {
        self.owned
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .copied()
            .collect()
    }
}

/// The client this command runs for, when it runs in the service.
pub fn remote() -> Option<Arc<Remote>> {
    REMOTE.try_with(Arc::clone).ok()
}

/// Writes to the command's standard output.
pub fn out(text: &str) {
    match remote() {
        Some(r) => r.send(ToClient::Stdout(text.to_string())),
        None => {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(text.as_bytes());
            let _ = out.flush();
        }
    }
}

/// Writes to the command's standard error.
pub fn err(text: &str) {
    match remote() {
        Some(r) => r.send(ToClient::Stderr(text.to_string())),
        None => {
            let mut err = std::io::stderr().lock();
            let _ = err.write_all(text.as_bytes());
        }
    }
}

/// Whether standard input is a terminal (a person who can answer a question).
pub fn stdin_is_terminal() -> bool {
    use std::io::IsTerminal as _;
    match remote() {
        Some(r) => r.stdin_is_terminal,
        None => std::io::stdin().is_terminal(),
    }
}

/// Whether standard error is a terminal (worth a progress bar). A client's never counts.
pub fn stderr_is_terminal() -> bool {
    use std::io::IsTerminal as _;
    remote().is_none() && std::io::stderr().is_terminal()
}

/// One line of standard input, without its line break; `None` at its end.
pub async fn read_line() -> std::io::Result<Option<String>> {
    match remote() {
        Some(r) => {
            r.send(ToClient::ReadLine);
            match r.input.lock().await.recv().await {
                Some(FromClient::Line(line)) => Ok(line),
                _ => Ok(None),
            }
        }
        None => tokio::task::spawn_blocking(|| {
            use std::io::BufRead as _;
            let mut line = String::new();
            let n = std::io::stdin().lock().read_line(&mut line)?;
            Ok((n > 0).then(|| line.trim_end_matches(['\n', '\r']).to_string()))
        })
        .await
        .map_err(std::io::Error::other)?,
    }
}

/// All of standard input.
pub async fn read_all() -> std::io::Result<String> {
    match remote() {
        Some(r) => {
            r.send(ToClient::ReadAll);
            match r.input.lock().await.recv().await {
                Some(FromClient::All(text)) => Ok(text),
                _ => Ok(String::new()),
            }
        }
        None => tokio::task::spawn_blocking(|| {
            use std::io::Read as _;
            let mut text = String::new();
            std::io::stdin().read_to_string(&mut text)?;
            Ok(text)
        })
        .await
        .map_err(std::io::Error::other)?,
    }
}

/// Standard input as an async line reader (the headless login reads the pasted address).
pub fn stdin_reader() -> Box<dyn tokio::io::AsyncBufRead + Unpin + Send> {
    match remote() {
        None => Box::new(tokio::io::BufReader::new(tokio::io::stdin())),
        Some(r) => {
            let (mut write, read) = tokio::io::duplex(64 * 1024);
            tokio::spawn(async move {
                use tokio::io::AsyncWriteExt as _;
                loop {
                    r.send(ToClient::ReadLine);
                    let line = match r.input.lock().await.recv().await {
                        Some(FromClient::Line(Some(line))) => line,
                        _ => return,
                    };
                    if write
                        .write_all(format!("{line}\n").as_bytes())
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            });
            Box::new(tokio::io::BufReader::new(read))
        }
    }
}

/// A `Write` over the command's standard output (for writers that stream, like CSV).
/// It remembers the console it was made in, so it can be moved to a blocking task.
pub struct Stdout {
    buffer: Vec<u8>,
    remote: Option<Arc<Remote>>,
}

pub fn stdout() -> Stdout {
    Stdout {
        buffer: Vec::new(),
        remote: remote(),
    }
}

impl std::io::Write for Stdout {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(bytes);
        if self.buffer.len() >= 64 * 1024 {
            self.flush()?;
        }
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let bytes = std::mem::take(&mut self.buffer);
        match &self.remote {
            Some(r) => r.send(ToClient::Stdout(
                String::from_utf8_lossy(&bytes).into_owned(),
            )),
            None => {
                let mut out = std::io::stdout().lock();
                out.write_all(&bytes)?;
                out.flush()?;
            }
        }
        Ok(())
    }
}

impl Drop for Stdout {
    fn drop(&mut self) {
        let _ = std::io::Write::flush(self);
    }
}

/// Records that the command asked for a send of `key` (run in the service: abandoned if the
/// client goes away before X answers).
pub fn own_send(key: MentionKey) {
    if let Some(r) = remote() {
        r.owned
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key);
    }
}

/// `println!` to the command's standard output.
#[macro_export]
macro_rules! outln {
    () => { $crate::cli::console::out("\n") };
    ($($arg:tt)*) => { $crate::cli::console::out(&format!("{}\n", format_args!($($arg)*))) };
}

/// `print!` to the command's standard output.
#[macro_export]
macro_rules! outp {
    ($($arg:tt)*) => { $crate::cli::console::out(&format!($($arg)*)) };
}

/// `eprintln!` to the command's standard error.
#[macro_export]
macro_rules! errln {
    ($($arg:tt)*) => { $crate::cli::console::err(&format!("{}\n", format_args!($($arg)*))) };
}
