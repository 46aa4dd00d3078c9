//! Starting and ending a service: the lock, the store, the engine and outbox, the socket (and the
//! TCP listener if configured), and the watch on the data directory.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::task::JoinHandle;

use super::hub::{Hub, ServiceEvent, ServiceInfo};
use super::lock::{LockError, ServiceLock};
use super::paths::{ServicePaths, ensure_private_runtime_dir};
use crate::auth::{OAuthSettings, TokenManager};
use crate::config::Config;
use crate::store::pg::leader;
use crate::store::{PgStore, SharedStore, Store, StoreError};
use crate::sync;
use crate::x::XClient;

/// Why a service did not start. The message names the store and says what to do.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(
        "a perch service is already running for the store at {data_dir}{}; use it (the dashboard and commands connect to it), or end it with `perch service stop`",
        pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
    )]
    AlreadyRunning {
        data_dir: std::path::PathBuf,
        pid: Option<u32>,
    },
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Other(String),
}

/// A service that is up: its socket answers.
pub struct RunningService {
    pub hub: Arc<Hub>,
    pub paths: ServicePaths,
    engine: Option<JoinHandle<()>>,
    /// On PostgreSQL: stepped down (the lock released at once) when the service ends.
    election: Option<leader::ElectionHandle>,
    servers: Vec<JoinHandle<()>>,
    helpers: Vec<JoinHandle<()>>,
    _lock: ServiceLock,
}

/// Starts the service for `config.data_dir`. `store` is an already open store to serve (the demo
/// opens it first to log its accounts in); `None` opens it here.
pub async fn start(config: Config, store: Option<Store>) -> Result<RunningService, ServiceError> {
    start_with(config, store, axum::Router::new()).await
}

/// As [`start`], with `socket_routes` also served on the Unix socket only (the CLI's command
/// forwarding, which lives with the CLI).
pub async fn start_with(
    config: Config,
    store: Option<Store>,
    socket_routes: axum::Router<Arc<Hub>>,
) -> Result<RunningService, ServiceError> {
    crate::config::create_private_dir(&config.data_dir).map_err(|e| {
        ServiceError::Other(format!(
            "cannot create the store directory {}: {e}",
            config.data_dir.display()
        ))
    })?;
    let paths = ServicePaths::new(&config.data_dir, &config.state_dir);
    ensure_private_runtime_dir(&paths.runtime_dir).map_err(ServiceError::Other)?;
    let lock = match ServiceLock::acquire(&paths.lock) {
        Ok(lock) => lock,
        Err(LockError::Held { pid }) => {
            return Err(ServiceError::AlreadyRunning {
                data_dir: paths.data_dir.clone(),
                pid,
            });
        }
        Err(LockError::Io(e)) => {
            return Err(ServiceError::Other(format!(
                "cannot lock the store at {} for the service ({}): {e}",
                paths.data_dir.display(),
                paths.lock.display()
            )));
        }
    };
    let store = open_store(&config, store).await?;
    store.set_pricing(config.pricing.clone());
    if let Err(e @ StoreError::DiskFull { .. }) = store.ensure_room() {
        return Err(e.into());
    }
    // On PostgreSQL, this service's part in the election of the one sync leader.
    let election = match config.database_url.clone() {
        Some(url) => Some(
            tokio::task::spawn_blocking(move || {
                leader::spawn(leader::Election::new(
                    url.expose(),
                    leader::Candidate::this_process(),
                ))
            })
            .await
            .map_err(|e| ServiceError::Other(format!("the election task failed: {e}")))?
            .map_err(|e| ServiceError::Other(format!("cannot start the leader election: {e}")))?,
        ),
        None => None,
    };

    // We hold the lock, so a socket file already there was left by a service that died.
    if paths.socket.exists() {
        tracing::warn!(
            "replacing a stale socket left by an earlier service: {}",
            paths.socket.display()
        );
        std::fs::remove_file(&paths.socket).map_err(|e| {
            ServiceError::Other(format!(
                "cannot remove the stale socket {}: {e}",
                paths.socket.display()
            ))
        })?;
    }
    let unix = tokio::net::UnixListener::bind(&paths.socket).map_err(|e| {
        ServiceError::Other(format!("cannot listen on {}: {e}", paths.socket.display()))
    })?;
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&paths.socket, std::fs::Permissions::from_mode(0o600)).map_err(
            |e| {
                ServiceError::Other(format!(
                    "cannot make the socket {} owner-only: {e}",
                    paths.socket.display()
                ))
            },
        )?;
    }
    let tcp = match config.api_listen {
        None => None,
        Some(addr) => Some(tokio::net::TcpListener::bind(addr).await.map_err(|e| {
            ServiceError::Other(format!(
                "cannot listen on api_listen = {addr}: {e} (is another program using the port?)"
            ))
        })?),
    };
    let api_token = super::token::load_or_create(&paths.token).map_err(|e| {
        ServiceError::Other(format!(
            "cannot read or create the API token {}: {e}",
            paths.token.display()
        ))
    })?;

    let client = XClient::new(&config.api_base);
    let oauth = OAuthSettings::from_config(&config).unwrap_or_else(|_| OAuthSettings {
        // Without an X app perch cannot refresh tokens; the engine reports that per account.
        client_id: String::new(),
        client_secret: None,
        authorize_url: config.authorize_url.clone(),
        token_url: config.token_url.clone(),
        redirect_uri: config.redirect_uri.clone(),
    });
    let tokens = TokenManager::new(store.clone(), oauth);
    let settings = sync::SyncSettings::from_config(&config);
    // sled: this process is its store's one leader, so the engine and the outbox run now. On
    // PostgreSQL the engine runs while the election makes this service the leader
    // (`leadership.rs`), with the outbox's sending worker.
    let (sync_commands, engine, pg_commands) = match &election {
        None => {
            let engine = sync::spawn(
                store.clone(),
                client.clone(),
                tokens.clone(),
                settings.clone(),
            );
            (engine.commands.clone(), Some(engine), None)
        }
        Some(_) => {
            let (tx, rx) = tokio::sync::mpsc::channel(64);
            (tx, None, Some(rx))
        }
    };
    // sled: the outbox worker owns the store's outbox. PostgreSQL: this service records its
    // clients' commands in the database (`team_outbox.rs`) and the leader's worker sends.
    let (outbox_requests, outbox_events, team_outbox) = match store.sled() {
        Some(sled) => {
            let (requests, events) =
                crate::outbox::spawn(sled.clone(), client.clone(), tokens.clone());
            (requests, Some(events), None)
        }
        None => {
            let (requests, commands) = tokio::sync::mpsc::channel(32);
            (requests, None, Some(commands))
        }
    };
    let outbox_wake = Arc::new(tokio::sync::Notify::new());
    let info = ServiceInfo {
        pid: std::process::id(),
        started_at: Utc::now(),
        socket: paths.socket.clone(),
        api_listen: tcp.as_ref().and_then(|l| l.local_addr().ok()),
        data_dir: paths.data_dir.clone(),
    };
    let mut hub = Hub::new(
        store.clone(),
        config.clone(),
        client.clone(),
        tokens.clone(),
        sync_commands,
        outbox_requests,
        info,
        api_token,
    );
    hub.election = election.as_ref().map(|e| e.role.clone());
    // On PostgreSQL, "ana is replying" reaches the clients of every service.
    let presence_out = election.as_ref().map(|_| {
        let (tx, rx) = tokio::sync::mpsc::channel(super::hub::PRESENCE_OUT_BACKLOG);
        hub.share_presence_through(tx);
        rx
    });
    let hub = Arc::new(hub);
    let mut helpers = Vec::new();
    if let Some(changes) = presence_out {
        helpers.push(tokio::spawn(super::leadership::share_presence(
            hub.clone(),
            changes,
        )));
    }

    let engine_task = match (engine, pg_commands, &election) {
        (Some(mut engine), _, _) => {
            let h = hub.clone();
            helpers.push(tokio::spawn(async move {
                while let Some(event) = engine.events.recv().await {
                    h.publish(ServiceEvent::Sync(event));
                }
            }));
            engine.task
        }
        (None, Some(commands), Some(election)) => {
            let parts = super::leadership::EngineParts {
                store: store.clone(),
                client: client.clone(),
                tokens: tokens.clone(),
                settings,
                outbox_wake: outbox_wake.clone(),
            };
            if let Some(url) = config.database_url.clone() {
                helpers.push(tokio::spawn(super::leadership::hear_changes(
                    hub.clone(),
                    url,
                    election.role.clone(),
                    outbox_wake.clone(),
                )));
            }
            tokio::spawn(super::leadership::lead_while_elected(
                hub.clone(),
                election.role.clone(),
                commands,
                parts,
            ))
        }
        _ => tokio::spawn(async {}),
    };
    if let Some(commands) = team_outbox {
        helpers.push(tokio::spawn(super::team_outbox::take_commands(
            hub.clone(),
            commands,
        )));
    }
    if let Some(mut outbox_events) = outbox_events {
        let h = hub.clone();
        helpers.push(tokio::spawn(async move {
            while let Some(event) = outbox_events.recv().await {
                h.publish(ServiceEvent::Outbox(event));
            }
        }));
    }
    helpers.push(tokio::spawn(watch_data_dir(hub.clone(), paths.clone())));
    // Desktop notifications and the hook, when configured (they work with no dashboard open).
    helpers.extend(super::notifier::spawn(hub.clone()));
    // Presence that ran out ("ana is replying" from a client that vanished) ends for everyone
    // within a few seconds of its expiry.
    let h = hub.clone();
    helpers.push(tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(2));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => h.expire_presence(),
                _ = h.stopped() => return,
            }
        }
    }));

    let mut servers = Vec::new();
    let router = crate::api::router(hub.clone(), crate::api::Transport::Unix)
        .merge(socket_routes.with_state(hub.clone()));
    let h = hub.clone();
    servers.push(tokio::spawn(async move {
        let shutdown = async move { h.stopped().await };
        let unix = super::head_deadline::HeadDeadlineListener::new(
            unix,
            super::head_deadline::FIRST_REQUEST_HEAD,
        );
        if let Err(e) = axum::serve(unix, router)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!("the socket server stopped: {e}");
        }
    }));
    if let Some(tcp) = tcp {
        let router = crate::api::router(hub.clone(), crate::api::Transport::Tcp);
        let h = hub.clone();
        servers.push(tokio::spawn(async move {
            let shutdown = async move { h.stopped().await };
            let tcp = super::head_deadline::HeadDeadlineListener::new(
                tcp,
                super::head_deadline::FIRST_REQUEST_HEAD,
            );
            if let Err(e) = axum::serve(tcp, router)
                .with_graceful_shutdown(shutdown)
                .await
            {
                tracing::error!("the TCP API server stopped: {e}");
            }
        }));
    }
    tracing::info!(
        socket = %paths.socket.display(),
        data_dir = %paths.data_dir.display(),
        "perch service started"
    );
    Ok(RunningService {
        hub,
        paths,
        engine: Some(engine_task),
        election,
        servers,
        helpers,
        _lock: lock,
    })
}

/// A service whose data directory is gone has nothing left to serve: it ends (and says so in the
/// log) rather than polling into a store no client can find.
async fn watch_data_dir(hub: Arc<Hub>, paths: ServicePaths) {
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    loop {
        tick.tick().await;
        if !paths.data_dir.exists() {
            tracing::error!(
                "the data directory {} is gone; the service ends",
                paths.data_dir.display()
            );
            hub.request_stop();
            return;
        }
        if !paths.socket.exists() {
            // Someone removed the socket (a tmp cleaner): nobody can reach this service any
            // more, and a new one could not tell it runs. End, so the next client starts afresh.
            tracing::error!(
                "the socket {} was removed; the service ends",
                paths.socket.display()
            );
            hub.request_stop();
            return;
        }
    }
}

impl RunningService {
    /// Waits until something asks the service to stop.
    pub async fn stopped(&self) {
        self.hub.stopped().await
    }

    /// Ends the service: no new clients, the engine stopped between pages, the store flushed,
    /// the socket removed. The lock goes with the process (or when this is dropped).
    pub async fn shutdown(mut self) {
        self.hub.request_stop();
        let _ = self.hub.sync.send(sync::Command::Shutdown).await;
        if let Some(engine) = self.engine.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), engine).await;
        }
        for server in self.servers.drain(..) {
            // Open SSE streams and sessions end with the process; give the rest a moment.
            let _ = tokio::time::timeout(Duration::from_secs(2), server).await;
        }
        for helper in self.helpers.drain(..) {
            helper.abort();
        }
        let store = self.hub.store.clone();
        let _ = tokio::task::spawn_blocking(move || store.flush()).await;
        if let Some(election) = self.election.take() {
            // Another service takes over now, not when the database notices this one is gone.
            let _ = tokio::task::spawn_blocking(move || election.stop()).await;
        }
        let _ = std::fs::remove_file(&self.paths.socket);
        tracing::info!("perch service stopped");
    }
}

/// The store the service runs on: PostgreSQL when `database_url` is set (connected and
/// migrated; without a token_key it refuses and says how to make one), else sled (`store`, when
/// the caller opened it already, as the demo does).
async fn open_store(config: &Config, store: Option<Store>) -> Result<SharedStore, ServiceError> {
    if let Some(url) = config.database_url.clone() {
        let key = config.token_key.clone();
        let pg = tokio::task::spawn_blocking(move || PgStore::connect(url.expose(), key))
            .await
            .map_err(|e| ServiceError::Other(format!("the store task failed: {e}")))??;
        tracing::info!(store = %crate::store::ServiceBackend::location(&pg), "the service runs on PostgreSQL");
        return Ok(pg.into_shared());
    }
    let store = match store {
        Some(store) => store,
        None => {
            let dir = config.data_dir.clone();
            let token_key = config.token_key.clone();
            tokio::task::spawn_blocking(move || Store::open_with_token_key(&dir, token_key))
                .await
                .map_err(|e| ServiceError::Other(format!("the store task failed: {e}")))??
        }
    };
    Ok(store.shared())
}
