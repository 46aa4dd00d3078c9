//! Commands run by the service for a CLI client, as tmux runs a client's command in its server:
//! the client sends its command line over an upgraded connection (`/internal/v1/cli`,
//! `Upgrade: perch-cli`), the service runs the very same command code against its store, engine
//! and outbox, and sends back every line of output and the exit code; input the command asks for
//! (a confirmation, a pasted login address, reply text on stdin) is asked of the client. So a
//! command prints and exits the same with and without a service, and `perch mentions list` works
//! in a second pane while the dashboard runs.
//!
//! Frames are `protocol`'s (length + JSON) carrying `console::ToClient` / `FromClient`. A client
//! that goes away (Ctrl-C, kill -9, a closed pipe) ends its command; the sends it asked for and X
//! has not answered are abandoned, as when a perch process ends.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse as _, Response};
use axum::routing::get;
use clap::Parser as _;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;

use super::console::{FromClient, Remote, ToClient};
use super::{Cli, Command, ExportCommand, Failure, ImportCommand};
use crate::config::Config;
use crate::outbox::OutboxCommand;
use crate::protocol::tokio_io::{read_frame, write_frame};
use crate::service::{Hub, ServicePaths};

pub const UPGRADE: &str = "perch-cli";

/// How long a client may take to send its command line after connecting.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// The socket of the service for `config.data_dir`, if one answers there.
pub async fn running_service(config: &Config) -> Option<PathBuf> {
    let paths = ServicePaths::new(&config.data_dir, &config.state_dir);
    if !paths.socket.exists() {
        return None;
    }
    // A socket nobody listens on was left by a crash: run the command here.
    tokio::net::UnixStream::connect(&paths.socket).await.ok()?;
    Some(paths.socket)
}

/// Runs this process's command line in the service on `socket`; returns its exit code.
pub async fn forward(socket: &Path) -> Result<i32, Failure> {
    let lost = |e: std::io::Error| {
        Failure::new(format!(
            "lost the perch service while running the command ({e}); see `perch service status`"
        ))
    };
    let mut stream = open_upgraded(socket).await.map_err(|e| {
        Failure::new(format!(
            "the perch service on {} did not take the command: {e}",
            socket.display()
        ))
    })?;
    let start = FromClient::Start {
        argv: std::env::args().collect(),
        cwd: std::env::current_dir()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        stdin_is_terminal: std::io::IsTerminal::is_terminal(&std::io::stdin()),
    };
    send(&mut stream, &start).await.map_err(lost)?;
    loop {
        let Some(body) = read_frame(&mut stream).await.map_err(lost)? else {
            return Err(Failure::new(
                "the perch service ended before the command finished; see its log (`perch service status` shows where)",
            ));
        };
        let message: ToClient = serde_json::from_slice(&body).map_err(|e| {
            Failure::new(format!("the perch service sent something unreadable: {e}"))
        })?;
        match message {
            ToClient::Stdout(text) => write_all(std::io::stdout(), &text)?,
            ToClient::Stderr(text) => write_all(std::io::stderr(), &text)?,
            ToClient::ReadLine => {
                let line = super::console::read_line().await?;
                send(&mut stream, &FromClient::Line(line))
                    .await
                    .map_err(lost)?;
            }
            ToClient::ReadAll => {
                let text = super::console::read_all().await?;
                send(&mut stream, &FromClient::All(text))
                    .await
                    .map_err(lost)?;
            }
            ToClient::Exit(code) => return Ok(code),
        }
    }
}

fn write_all(mut to: impl std::io::Write, text: &str) -> Result<(), Failure> {
    to.write_all(text.as_bytes())?;
    to.flush()?;
    Ok(())
}

async fn send(
    stream: &mut (impl AsyncWrite + Unpin),
    message: &impl serde::Serialize,
) -> std::io::Result<()> {
    let body = serde_json::to_vec(message).map_err(std::io::Error::other)?;
    write_frame(stream, &body).await
}

/// Connects and upgrades to the CLI protocol (one HTTP/1.1 request, by hand: see
/// `client::upgrade`).
async fn open_upgraded(socket: &Path) -> std::io::Result<tokio::net::UnixStream> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::UnixStream::connect(socket).await?;
    let request = format!(
        "GET /internal/v1/cli HTTP/1.1\r\nHost: perch\r\nConnection: Upgrade\r\nUpgrade: {UPGRADE}\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    let read_head = async {
        while !head.ends_with(b"\r\n\r\n") {
            if head.len() > 8192 || stream.read(&mut byte).await? == 0 {
                return Err(std::io::Error::other("no upgrade answer"));
            }
            head.push(byte[0]);
        }
        Ok(())
    };
    tokio::time::timeout(crate::client::upgrade::CONNECT_TIMEOUT, read_head)
        .await
        .map_err(|_| std::io::Error::other("the service did not answer in time"))??;
    if !head.starts_with(b"HTTP/1.1 101") {
        let status = String::from_utf8_lossy(&head);
        return Err(std::io::Error::other(format!(
            "it answered {}",
            status.lines().next().unwrap_or_default()
        )));
    }
    Ok(stream)
}

/// The service's route for CLI clients.
pub fn routes() -> Router<Arc<Hub>> {
    Router::new().route("/internal/v1/cli", get(upgrade))
}

async fn upgrade(State(hub): State<Arc<Hub>>, mut request: Request) -> Response {
    let wants = request
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case(UPGRADE));
    if !wants {
        return crate::api::error(
            StatusCode::UPGRADE_REQUIRED,
            format!(
                "this endpoint runs perch commands: send `Connection: Upgrade` and `Upgrade: {UPGRADE}`"
            ),
        );
    }
    let on_upgrade = hyper::upgrade::on(&mut request);
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => run_for_client(hub, TokioIo::new(upgraded)).await,
            Err(e) => tracing::warn!("a CLI upgrade failed: {e}"),
        }
    });
    (
        StatusCode::SWITCHING_PROTOCOLS,
        [(header::CONNECTION, "upgrade"), (header::UPGRADE, UPGRADE)],
    )
        .into_response()
}

async fn run_for_client<S>(hub: Arc<Hub>, stream: S)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut reader, mut writer) = tokio::io::split(stream);
    let start = match tokio::time::timeout(START_TIMEOUT, read_frame(&mut reader)).await {
        Ok(Ok(Some(body))) => serde_json::from_slice::<FromClient>(&body).ok(),
        _ => None,
    };
    let Some(FromClient::Start {
        argv,
        cwd,
        stdin_is_terminal,
    }) = start
    else {
        tracing::warn!("a CLI client sent no command line");
        return;
    };
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<ToClient>();
    let (in_tx, in_rx) = mpsc::channel::<FromClient>(4);
    let remote = Arc::new(Remote::new(hub.clone(), out_tx, in_rx, stdin_is_terminal));
    let config = hub.config.clone();
    let command = tokio::spawn(
        remote
            .clone()
            .scope(async move { super::exit_code(run_command(argv, &cwd, config).await) }),
    );
    tokio::pin!(command);
    let mut finished: Option<i32> = None;
    loop {
        if let Some(code) = finished {
            // Everything the command printed is queued before its exit code.
            while let Ok(message) = out_rx.try_recv() {
                if send(&mut writer, &message).await.is_err() {
                    break;
                }
            }
            let _ = send(&mut writer, &ToClient::Exit(code)).await;
            break;
        }
        tokio::select! {
            result = &mut command => {
                finished = Some(result.unwrap_or_else(|e| {
                    tracing::error!("a client's command ended abnormally: {e}");
                    1
                }));
            }
            Some(message) = out_rx.recv() => {
                if send(&mut writer, &message).await.is_err() {
                    command.abort();
                    break;
                }
            }
            _ = hub.stopped() => {
                command.abort();
                let _ = send(&mut writer, &ToClient::Stderr(
                    "perch: the perch service stopped before the command finished\n".into(),
                ))
                .await;
                let _ = send(&mut writer, &ToClient::Exit(1)).await;
                break;
            }
            frame = read_frame(&mut reader) => match frame {
                Ok(Some(body)) => match serde_json::from_slice::<FromClient>(&body) {
                    Ok(input) => {
                        let _ = in_tx.send(input).await;
                    }
                    Err(_) => {
                        command.abort();
                        break;
                    }
                },
                // The client went away (Ctrl-C, kill, closed pipe): its command ends with it.
                _ => {
                    tracing::info!("a CLI client went away; ending its command");
                    command.abort();
                    break;
                }
            },
        }
    }
    for key in remote.owned() {
        let _ = hub.outbox.send(OutboxCommand::Abandon(key)).await;
    }
}

/// Parses the client's command line and runs it here, with the client's relative paths made
/// absolute against its working directory.
async fn run_command(argv: Vec<String>, cwd: &str, config: Config) -> super::CliResult {
    let mut cli = Cli::try_parse_from(&argv).map_err(|e| Failure::usage(e.to_string()))?;
    match &cli.command {
        Some(command) if command.needs_store() => {}
        _ => {
            return Err(Failure::usage(
                "only commands that use the store run in the service",
            ));
        }
    }
    let base = PathBuf::from(cwd);
    let absolute = |p: &mut PathBuf| {
        if p.is_relative() {
            *p = base.join(&*p);
        }
    };
    match &mut cli.command {
        Some(Command::Import(ImportCommand::Mongo {
            accounts,
            users,
            messages,
            ..
        })) => {
            accounts.as_mut().map(absolute);
            users.as_mut().map(absolute);
            absolute(messages);
        }
        Some(Command::Export(ExportCommand::Mongo { out, .. })) => absolute(out),
        _ => {}
    }
    super::dispatch(cli, config).await
}
