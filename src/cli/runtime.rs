//! Starting the long-running parts: logging, the dashboard with its sync engine and outbox, the
//! demo (simulator + demo accounts), and the standalone simulator.

use std::time::Duration;

use tracing_appender::non_blocking::WorkerGuard;

use crate::auth::{self, OAuthSettings, TokenManager};
use crate::config::Config;
use crate::sim::{self, SimConfig, SimHandle};
use crate::store::Store;
use crate::x::XClient;

use super::{CliResult, Failure, SimArgs, open_store};

/// The pieces every command that talks to X needs.
pub struct App {
    pub store: Store,
    pub client: XClient,
    pub tokens: TokenManager,
    pub oauth: OAuthSettings,
}

impl App {
    pub async fn open(config: &Config) -> Result<App, Failure> {
        let oauth = OAuthSettings::from_config(config)?;
        // Run in the service for a client: the service's own store, X client and token manager
        // (one refresher per account, whoever asks).
        if let Some(remote) = super::console::remote() {
            return Ok(App {
                store: remote.hub.sled_store()?,
                client: remote.hub.client.clone(),
                tokens: remote.hub.tokens.clone(),
                oauth,
            });
        }
        let store = open_store(config).await?;
        Ok(App {
            client: XClient::new(&config.api_base),
            tokens: TokenManager::new(store.shared(), oauth.clone()),
            store,
            oauth,
        })
    }
}

/// Logs go to `file` (`perch.log`, or a service's own log) in the state directory, never to the
/// terminal the TUI draws on. `PERCH_LOG` sets the filter (default `perch=info`).
pub fn init_logging(config: &Config, file: &str) -> Option<WorkerGuard> {
    let dir = &config.state_dir;
    // The appender would create the file with the umask (often 0644); it holds account
    // handles and X's messages, so it is created owner-only first.
    if crate::config::create_private_dir(dir).is_err()
        || crate::config::create_private_file(&dir.join(file)).is_err()
    {
        return None;
    }
    let appender = tracing_appender::rolling::never(dir, file);
    let (writer, guard) = tracing_appender::non_blocking(appender);
    let filter = tracing_subscriber::EnvFilter::try_from_env("PERCH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("perch=info"));
    let installed = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(false)
        .try_init();
    installed.ok().map(|_| guard)
}

/// The simulator and throwaway data directory behind `perch --demo`.
pub struct DemoSetup {
    pub sim: SimHandle,
    sim_config: SimConfig,
    /// `--demo --faults`: the faults and the timed script, switched on once the demo accounts
    /// are logged in (a fault during the logins would only stop the demo from starting).
    pending_faults: Option<(sim::Faults, Vec<TimedFault>)>,
    /// The timed faults of `--demo --faults` (stopped with the demo).
    _script: Option<FaultScript>,
    /// Removed when the demo ends, unless the user gave `--data-dir`.
    _data_dir: Option<tempfile::TempDir>,
}

impl DemoSetup {
    /// Starts the simulator and points `config` at it.
    pub async fn start(
        config: &mut Config,
        faults: bool,
        keep_data_dir: bool,
    ) -> Result<DemoSetup, Failure> {
        let mut sim_config = SimConfig::demo();
        let demo_faults = sim::Faults {
            // The storm comes and goes on a timer (below) rather than lasting forever.
            rate_limit_storm: Vec::new(),
            ..sim::Faults::demo_mix(&sim_config.users[0].username)
        };
        if faults {
            // One-minute rate-limit windows, so a rate-limited account visibly comes back
            // within a minute or so.
            sim_config.rate_limits.window = Duration::from_secs(60);
        }
        let sim = sim::start(sim_config.clone(), 0).await.map_err(|e| {
            Failure::new(format!("cannot start the demo simulator on 127.0.0.1: {e}"))
        })?;
        let pending_faults = faults.then(|| {
            let users = &sim_config.users;
            let mut script = vec![TimedFault::StormWindows {
                user: users[0].username.clone(),
                first: Duration::from_secs(20),
                length: Duration::from_secs(15),
                every: Duration::from_secs(150),
            }];
            if let Some(victim) = users.get(1) {
                script.push(TimedFault::Revoke {
                    user: victim.username.clone(),
                    after: Duration::from_secs(45),
                });
            }
            (demo_faults, script)
        });
        config.api_base = sim.api_base();
        config.authorize_url = sim.authorize_url();
        config.token_url = sim.token_url();
        config.client_id = Some(sim_config.client_id.clone());
        config.client_secret = None;
        if let Some(uri) = sim_config.redirect_uris.first() {
            config.redirect_uri = uri.clone();
        }
        // The simulator's app is owned by its first account and answers the usage endpoint with
        // its made-up Bearer token: the meter and the reconciliation work as with a real app.
        if config.pricing.app_owner.is_none() {
            config.pricing.app_owner = sim_config.app_owner.clone();
        }
        if config.app_bearer_token.is_none() {
            config.app_bearer_token = Some(crate::domain::Secret::new(
                sim_config.app_bearer_token.clone(),
            ));
        }
        // Demo mentions arrive every few seconds; poll often (well within the simulated budget).
        config.poll_interval_secs = 5;
        let data_dir = if keep_data_dir {
            None
        } else {
            let dir = tempfile::Builder::new()
                .prefix("perch-demo-")
                .tempdir()
                .map_err(|e| {
                    Failure::new(format!(
                        "cannot create a temporary directory for the demo: {e}"
                    ))
                })?;
            config.data_dir = dir.path().join("store");
            Some(dir)
        };
        Ok(DemoSetup {
            sim,
            sim_config,
            pending_faults,
            _script: None,
            _data_dir: data_dir,
        })
    }

    /// Adds each simulated user as an account through the real authorization-code + PKCE
    /// exchange: authorize URL → the simulator's redirect → code → token → users/me.
    /// With `--faults`, the faults start once the accounts are in.
    pub async fn add_accounts(&mut self, app: &App) -> Result<(), Failure> {
        let usernames: Vec<String> = self
            .sim_config
            .users
            .iter()
            .map(|u| u.username.clone())
            .collect();
        add_sim_accounts(app, &usernames).await?;
        if let Some((faults, script)) = self.pending_faults.take() {
            let control = self.sim.control();
            control.set_faults(faults);
            self._script = Some(FaultScript::spawn(control, script));
        }
        Ok(())
    }
}

/// Logs each of `usernames` (simulated users) in through the real authorization-code + PKCE
/// exchange against the simulator `app.oauth` points at, and stores them as accounts. Used by the
/// demo, the soak run and the sync tests.
pub async fn add_sim_accounts(app: &App, usernames: &[String]) -> Result<(), Failure> {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()?;
    for username in usernames {
        let login = auth::start_login(&app.oauth)?;
        let url = format!("{}&sim_user={username}", login.url);
        let response = http.get(&url).send().await?;
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                Failure::new(format!(
                    "the simulator did not redirect the login of @{username} (status {})",
                    response.status()
                ))
            })?
            .to_string();
        let code = auth::parse_callback(&location, login.state())?;
        let tokens = auth::exchange_code(&app.oauth, &login, &code).await?;
        auth::complete_login(&app.store.shared(), &app.client, tokens, chrono::Utc::now()).await?;
    }
    Ok(())
}

/// `perch` (and `perch --demo`): the dashboard, a client of the perch service. Without `--demo`
/// it connects to the service of the data directory, starting one in the background if none
/// runs; the service keeps tracking after the dashboard quits. With `--demo`, the service runs in
/// this process beside the simulator and ends with the dashboard.
pub async fn run_dashboard(
    mut config: Config,
    remote: Option<crate::client::Endpoint>,
    demo: bool,
    faults: bool,
    keep_data_dir: bool,
) -> CliResult {
    // A bad `[keys]` is reported before the terminal changes (the dashboard builds the same map).
    crate::app::keymap_config::build(&config.keys, &config.config_path).map_err(Failure::new)?;
    // Everything slow (the demo's simulator and logins, starting a service on a large store)
    // happens behind a loading frame, so something is on screen at once.
    let loading = if demo {
        "starting the demo: the X API simulator and three demo accounts…".to_string()
    } else if let Some(remote) = &remote {
        format!("connecting to {}…", remote.describe())
    } else {
        "connecting to the perch service…".to_string()
    };
    // Short: the status bar keeps only its right end for this, and the host is what matters.
    let remote_banner = remote
        .as_ref()
        .and_then(|r| r.address())
        .map(|address| format!("remote {address}"));
    let mut demo_setup: Option<DemoSetup> = None;
    let mut demo_service: Option<crate::service::RunningService> = None;
    let mut link: Option<std::sync::Arc<crate::client::Link>> = None;
    let mut started_here = false;
    let theme = config.theme.clone();
    let result = crate::tui::run_after(&loading, config.mouse, &theme, async {
        let fail = |f: Failure| anyhow::anyhow!(f.message);
        let (endpoint, banner) = if demo {
            // The demo is the embedded default whatever the environment names: its own
            // simulator, accounts and temporary sled store.
            config.database_url = None;
            let mut setup = DemoSetup::start(&mut config, faults, keep_data_dir)
                .await
                .map_err(fail)?;
            let app = App::open(&config).await.map_err(fail)?;
            setup.add_accounts(&app).await.map_err(fail)?;
            let banner = Some(format!("demo: X API simulator at {}", setup.sim.base_url()));
            demo_setup = Some(setup);
            let service = crate::service::start_with(
                config.clone(),
                Some(app.store.clone()),
                super::remote::routes(),
            )
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
            let socket = service.paths.socket.clone();
            demo_service = Some(service);
            (crate::client::Endpoint::Socket(socket), banner)
        } else if let Some(remote) = remote.clone() {
            // Another machine's service: nothing to start here, and it is not ours to restart.
            (remote, remote_banner.clone())
        } else {
            let (socket, started) = super::service::ensure_running(&config)
                .await
                .map_err(fail)?;
            started_here = started;
            (crate::client::Endpoint::Socket(socket), None)
        };
        let restarter: Option<crate::client::session::Restarter> = if demo || remote.is_some() {
            None
        } else {
            let data_dir = config.data_dir.clone();
            Some(Box::new(move || {
                crate::service::spawn::start_background(&data_dir)
            }))
        };
        let pricing = config.pricing.clone();
        let (connected, incoming) = tokio::task::spawn_blocking(move || {
            crate::client::Link::connect(endpoint, pricing, restarter)
        })
        .await
        .map_err(|e| anyhow::anyhow!("the connect task failed: {e}"))?
        .map_err(|e| anyhow::anyhow!("cannot connect to the perch service: {e}"))?;
        link = Some(connected.clone());
        Ok(crate::tui::Prepared {
            connection: connected,
            incoming,
            config: config.clone(),
            banner,
        })
    })
    .await;
    if let Some(link) = &link {
        link.close();
    }
    if let Some(service) = demo_service {
        service.shutdown().await;
    }
    if let Some(setup) = demo_setup {
        setup.sim.shutdown().await;
    }
    if !demo && remote.is_none() && link.is_some() {
        super::service::after_dashboard(&config, started_here).await;
    }
    result.map_err(|e| Failure::new(format!("{e:#}")))
}

/// `perch sim`: the simulator on its own, for scripts and manual tries, with the faults the
/// flags ask for.
pub async fn run_sim(args: SimArgs) -> CliResult {
    let mut config = SimConfig::demo();
    config.seed = args.seed;
    if let Some(rate) = args.rate {
        config.mentions_per_second = rate.max(0.0);
    }
    if let Some(n) = args.users {
        config.users = sim_users(n);
    }
    config.faults = args.faults.to_faults();
    config.credits_usd = Some(args.credits).filter(|c| c.is_finite());
    let mut script: Vec<TimedFault> = args
        .faults
        .revoke
        .iter()
        .map(|(user, secs)| TimedFault::Revoke {
            user: user.clone(),
            after: Duration::from_secs(*secs),
        })
        .collect();
    if let Some(secs) = args.faults.expire_every {
        script.push(TimedFault::ExpireEvery {
            every: Duration::from_secs(secs.max(1)),
        });
    }
    let handle = sim::start_standalone(config, args.port)
        .await
        .map_err(|e| Failure::new(format!("{e:#}")))?;
    let _script = FaultScript::spawn(handle.control(), script);
    tokio::signal::ctrl_c().await?;
    handle.shutdown().await;
    Ok(())
}

/// `n` simulated users, `user000`, `user001`, ... (every other one accepts DMs).
pub fn sim_users(n: usize) -> Vec<sim::SimUserSpec> {
    (0..n)
        .map(|i| {
            sim::SimUserSpec::new(&format!("user{i:03}"), &format!("Sim User {i}"), i % 2 == 0)
        })
        .collect()
}

/// Faults that happen at a time rather than with a probability.
#[derive(Clone, Debug)]
pub enum TimedFault {
    /// Revoke `user`'s grant once, `after` the start.
    Revoke { user: String, after: Duration },
    /// Expire every user's access tokens every `every` (refreshes keep working).
    ExpireEvery { every: Duration },
    /// A 429 storm on `user` for `length`, first after `first`, then every `every`.
    StormWindows {
        user: String,
        first: Duration,
        length: Duration,
        every: Duration,
    },
}

/// The running timed faults; they stop when this is dropped.
pub struct FaultScript {
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl FaultScript {
    pub fn spawn(control: sim::SimControl, faults: Vec<TimedFault>) -> FaultScript {
        let tasks = faults
            .into_iter()
            .map(|fault| tokio::spawn(run_timed_fault(control.clone(), fault)))
            .collect();
        FaultScript { tasks }
    }
}

impl Drop for FaultScript {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

async fn run_timed_fault(control: sim::SimControl, fault: TimedFault) {
    match fault {
        TimedFault::Revoke { user, after } => {
            tokio::time::sleep(after).await;
            match control.revoke_grant(&user) {
                Ok(()) => tracing::info!("simulator: revoked @{user}'s grant"),
                Err(e) => tracing::warn!("simulator: cannot revoke: {e}"),
            }
        }
        TimedFault::ExpireEvery { every } => loop {
            tokio::time::sleep(every).await;
            for user in control.users() {
                let _ = control.expire_access_tokens(&user.id);
            }
        },
        TimedFault::StormWindows {
            user,
            first,
            length,
            every,
        } => {
            tokio::time::sleep(first).await;
            loop {
                set_storm(&control, &user, true);
                tokio::time::sleep(length).await;
                set_storm(&control, &user, false);
                tokio::time::sleep(every.saturating_sub(length)).await;
            }
        }
    }
}

fn set_storm(control: &sim::SimControl, user: &str, on: bool) {
    let mut faults = control.faults();
    faults.rate_limit_storm.retain(|u| u != user);
    if on {
        faults.rate_limit_storm.push(user.to_string());
    }
    tracing::info!("simulator: 429 storm on @{user}: {on}");
    control.set_faults(faults);
}
