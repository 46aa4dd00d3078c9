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
use crate::store::{Store, StoreError};
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
    if let Some(url) = config.database_url.clone() {
        return Err(ServiceError::Other(
            postgres_not_yet(url, config.token_key.clone()).await,
        ));
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
    store.set_pricing(config.pricing.clone());
    if let Err(e @ StoreError::DiskFull { .. }) = store.ensure_room() {
        return Err(e.into());
    }

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
    let mut engine = sync::spawn(
        store.clone(),
        client.clone(),
        tokens.clone(),
        sync::SyncSettings::from_config(&config),
    );
    let (outbox_requests, mut outbox_events) =
        crate::outbox::spawn(store.clone(), client.clone(), tokens.clone());
    let info = ServiceInfo {
        pid: std::process::id(),
        started_at: Utc::now(),
        socket: paths.socket.clone(),
        api_listen: tcp.as_ref().and_then(|l| l.local_addr().ok()),
        data_dir: paths.data_dir.clone(),
    };
    let hub = Arc::new(Hub::new(
        store,
        config,
        client,
        tokens,
        engine.commands.clone(),
        outbox_requests,
        info,
        api_token,
    ));

    let mut helpers = Vec::new();
    let h = hub.clone();
    helpers.push(tokio::spawn(async move {
        while let Some(event) = engine.events.recv().await {
            h.publish(ServiceEvent::Sync(event));
        }
    }));
    let h = hub.clone();
    helpers.push(tokio::spawn(async move {
        while let Some(event) = outbox_events.recv().await {
            h.publish(ServiceEvent::Outbox(event));
        }
    }));
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
        engine: Some(engine.task),
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
        let _ = std::fs::remove_file(&self.paths.socket);
        tracing::info!("perch service stopped");
    }
}

/// Why a service with `database_url` does not start: the key or the database (as the
/// PostgreSQL store reports them: no token_key and how to make one, a database it cannot
/// reach), or, when both are right, that the service itself does not run on PostgreSQL yet.
/// The database is only looked at, never migrated: other perch services may be using it.
/// Starting on sled instead would split the team's state without a word, so it does not.
pub async fn postgres_not_yet(
    url: crate::domain::Secret,
    key: Option<crate::domain::TokenKey>,
) -> String {
    let target = crate::store::pg::redacted(url.expose());
    let checked =
        tokio::task::spawn_blocking(move || crate::store::PgStore::inspect(url.expose(), key))
            .await;
    match checked {
        Ok(Ok(version)) => format!(
            "database_url is set: the PostgreSQL database at {target} is reachable and its schema is at version {version} (this perch's: {}), but this perch's service does not run on PostgreSQL yet (README \"The PostgreSQL store (in progress)\"); unset database_url (and PERCH_DATABASE_URL) to run on the embedded store",
            crate::store::PgStore::latest_schema_version()
        ),
        Ok(Err(e)) => e.to_string(),
        Err(e) => format!("the database check failed: {e}"),
    }
}
