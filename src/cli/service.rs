//! `perch serve` and `perch service status|stop|unit|token`, and the dashboard's side of the
//! service's life: finding or starting it, and what it says when it quits.

use std::path::PathBuf;
use std::time::Duration;

use chrono::Utc;

use super::{CliResult, Failure, print_json};
use crate::config::Config;
use crate::service::{self, ServicePaths};

/// Exit code of `perch service status` (and `stop`) when no service runs.
pub const NOT_RUNNING: i32 = 3;

/// The notice the first quit of the dashboard prints, once.
pub const BACKGROUND_NOTICE: &str =
    "perch keeps watching in the background; `perch service stop` ends it";

fn paths(config: &Config) -> ServicePaths {
    ServicePaths::new(&config.data_dir, &config.state_dir)
}

/// The socket of the running service for `config.data_dir`, starting one in the background if
/// none runs. The flag says whether it was started here.
pub async fn ensure_running(config: &Config) -> Result<(PathBuf, bool), Failure> {
    let paths = paths(config);
    match crate::client::http::status(&paths.socket).await {
        Some(Ok(_)) => return Ok((paths.socket, false)),
        Some(Err(e)) => tracing::warn!("a service socket is there but did not answer: {e}"),
        None => {}
    }
    let data_dir = config.data_dir.clone();
    tokio::task::spawn_blocking(move || service::spawn::start_background(&data_dir))
        .await
        .map_err(|e| Failure::new(format!("the service start task failed: {e}")))?
        .map_err(Failure::new)?;
    Ok((paths.socket, true))
}

/// After the dashboard quit (the terminal is back): end the service if the configuration says
/// so, otherwise say once that it keeps watching.
pub async fn after_dashboard(config: &Config, _started_here: bool) {
    let paths = paths(config);
    if config.stop_with_dashboard {
        if let Err(e) = crate::client::http::stop(&paths.socket).await {
            eprintln!("perch: could not stop the service: {e}");
        }
        return;
    }
    if paths.first_quit_marker.exists() {
        return;
    }
    eprintln!("{BACKGROUND_NOTICE}");
    if crate::config::create_private_dir(&config.state_dir).is_ok()
        && let Err(e) = crate::config::create_private_file(&paths.first_quit_marker)
    {
        tracing::warn!("could not remember that the background notice was shown: {e}");
    }
}

/// `perch serve`: the service in the foreground until SIGTERM, SIGINT or `perch service stop`.
/// `background`: started by a dashboard (announce readiness on stdout, then let go of it).
pub async fn serve(config: Config, background: bool) -> CliResult {
    let running = match service::start_with(config, None, super::remote::routes()).await {
        Ok(running) => running,
        Err(e) => {
            tracing::error!("the service did not start: {e}");
            return Err(Failure::new(e.to_string()));
        }
    };
    if background {
        service::spawn::announce_ready_and_detach();
    } else {
        eprintln!(
            "perch service for {} on {}{} (log: {})",
            running.paths.data_dir.display(),
            running.paths.socket.display(),
            running
                .hub
                .info
                .api_listen
                .map(|a| format!(" and http://{a}"))
                .unwrap_or_default(),
            running.paths.log.display()
        );
    }
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| Failure::new(format!("cannot watch for SIGTERM: {e}")))?;
    tokio::select! {
        _ = running.stopped() => {}
        _ = terminate.recv() => tracing::info!("SIGTERM: stopping"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: stopping"),
    }
    running.shutdown().await;
    Ok(())
}

pub async fn status(config: &Config, json: bool) -> CliResult {
    let paths = paths(config);
    let status = match crate::client::http::status(&paths.socket).await {
        None => return Err(not_running(&paths)),
        Some(Err(e)) => return Err(Failure::new(e)),
        Some(Ok(s)) => s,
    };
    if json {
        return print_json(&serde_json::json!({
            "pid": status.pid,
            "uptime_secs": status.uptime_secs,
            "socket": status.socket,
            "api_listen": status.api_listen,
            "accounts": status.accounts,
            "last_poll_at": status.last_poll_at,
            "role": status.role,
            "leader": status.leader,
            "store": status.store,
            "election_problem": status.election_problem,
        }));
    }
    let shown = |s: &str| crate::text::sanitize(s, false);
    println!(
        "perch service for {} (pid {}, up {})",
        shown(&status.data_dir),
        status.pid,
        crate::app::time::compact_age(
            Utc::now() - chrono::Duration::seconds(status.uptime_secs as i64),
            Utc::now()
        )
    );
    println!("socket:     {}", shown(&status.socket));
    let leader = status
        .leader
        .as_ref()
        .map(|l| format!(", leader {} pid {}", shown(&l.host), l.pid))
        .unwrap_or_default();
    println!(
        "role:       {} ({} store{leader})",
        shown(&status.role),
        shown(&status.store)
    );
    if let Some(problem) = &status.election_problem {
        println!(
            "election:   {} (this service cannot take over)",
            shown(problem)
        );
    }
    println!(
        "api_listen: {}",
        status
            .api_listen
            .as_deref()
            .map_or("off (Unix socket only)".to_string(), shown)
    );
    match status.last_poll_at {
        Some(at) => println!(
            "last poll:  {} ({})",
            at.format("%Y-%m-%d %H:%M:%S UTC"),
            crate::app::time::relative_time(at, Utc::now())
        ),
        None => println!("last poll:  none yet"),
    }
    if status.accounts.is_empty() {
        println!("accounts:   none (add one with `perch login`)");
    }
    for a in &status.accounts {
        println!(
            "  {:<20} {}{}",
            shown(&a.username),
            a.sync_status.as_str(),
            a.last_synced_at
                .map(|t| format!(", synced {}", t.format("%H:%M:%S UTC")))
                .unwrap_or_default()
        );
    }
    Ok(())
}

fn not_running(paths: &ServicePaths) -> Failure {
    Failure {
        message: format!(
            "no perch service is running for {} (start one with `perch serve`, or open the dashboard)",
            paths.data_dir.display()
        ),
        code: NOT_RUNNING,
        quiet: false,
    }
}

pub async fn stop(config: &Config) -> CliResult {
    let paths = paths(config);
    if !crate::client::http::stop(&paths.socket)
        .await
        .map_err(Failure::new)?
    {
        return Err(not_running(&paths));
    }
    // Wait (bounded) until it has let go of the store, so a command right after finds it free.
    for _ in 0..100 {
        if service::lock::ServiceLock::holder(&paths.lock).is_none() {
            println!("perch service stopped");
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(Failure::new(format!(
        "the perch service for {} was asked to stop and has not yet; see its log {}",
        paths.data_dir.display(),
        paths.log.display()
    )))
}

/// `perch service token`: the API's bearer token alone on stdout (made now if the service has
/// never run).
pub fn token(config: &Config) -> CliResult {
    let paths = paths(config);
    crate::config::create_private_dir(&config.data_dir)?;
    let token = service::token::load_or_create(&paths.token)
        .map_err(|e| Failure::new(format!("cannot read {}: {e}", paths.token.display())))?;
    println!("{}", token.expose());
    Ok(())
}

/// `perch service unit`: a systemd user unit, and how to enable it.
pub fn unit(config: &Config) -> CliResult {
    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "perch".into());
    let data_dir = config.data_dir.display();
    println!(
        "# ~/.config/systemd/user/perch.service
[Unit]
Description=perch: watches the @mentions of your X accounts
After=network-online.target

[Service]
ExecStart={exe} --data-dir {data_dir} serve
Restart=on-failure
# Secrets (client secret, app Bearer token) belong in the config file ({}) or in an
# EnvironmentFile= readable only by you, never on this command line.

[Install]
WantedBy=default.target

# To enable it:
#   mkdir -p ~/.config/systemd/user
#   perch service unit > ~/.config/systemd/user/perch.service
#   systemctl --user daemon-reload
#   systemctl --user enable --now perch.service
#   loginctl enable-linger \"$USER\"   # keep it running while you are logged out",
        config.config_path.display()
    );
    Ok(())
}
