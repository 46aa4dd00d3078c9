//! `perch import mongo` and `perch export mongo|mentions`: the command line around
//! `crate::interop`. There is no service yet (issue 11): these open the store directly, as the
//! other commands do, so a running dashboard must be closed first.

use chrono::{DateTime, NaiveDate, Utc};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::config::Config;
use crate::interop::{
    self, ImportError, ImportOptions, ImportProgress, ImportReport, MentionSelection, MongoSources,
};
use crate::store::{Store, StoreError};
use crate::text::sanitize;

use super::{CliResult, ExportCommand, Failure, ImportCommand, find_account, parse_status};

/// A progress bar on stderr over the bytes of the file being read; nothing when stderr is not a
/// terminal (scripts, logs, tests).
struct Bar {
    enabled: bool,
    bar: Option<ProgressBar>,
}

impl Bar {
    fn new() -> Bar {
        Bar {
            enabled: super::console::stderr_is_terminal(),
            bar: None,
        }
    }
}

impl ImportProgress for Bar {
    fn file(&mut self, name: &str, total_bytes: u64) {
        if !self.enabled {
            return;
        }
        let bar = ProgressBar::with_draw_target(Some(total_bytes), ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template(
            "{msg} [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta} left)",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(sanitize(name, true));
        self.bar = Some(bar);
    }

    fn advanced(&mut self, bytes_done: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(bytes_done);
        }
    }

    fn finished(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

/// Opens the store for an import or export; a store held by a running perch gets a message that
/// says what to do.
async fn open(config: &Config) -> Result<Store, Failure> {
    if let Some(remote) = super::console::remote() {
        return Ok(remote.hub.sled_store()?);
    }
    let dir = config.data_dir.clone();
    let token_key = config.token_key.clone();
    let opened = tokio::task::spawn_blocking(move || Store::open_with_token_key(&dir, token_key))
        .await
        .map_err(|e| Failure::new(format!("store task failed: {e}")))?;
    match opened {
        Ok(store) => Ok(store),
        Err(StoreError::Locked { dir }) => Err(Failure::new(format!(
            "the perch store at {} is in use by another perch process (a running dashboard?); \
             quit it and run this command again",
            dir.display()
        ))),
        Err(e) => Err(Failure::new(e.to_string())),
    }
}

pub async fn import(config: &Config, command: ImportCommand) -> CliResult {
    let ImportCommand::Mongo {
        accounts,
        users,
        messages,
        dry_run,
        json,
    } = command;
    let sources = MongoSources {
        accounts,
        users,
        messages,
    };
    // A file that cannot be opened is a usage error, found before the store is touched.
    interop::import::check_sources(&sources).map_err(|e| Failure::usage(e.to_string()))?;
    let store = open(config).await?;
    let options = ImportOptions {
        dry_run,
        ..ImportOptions::default()
    };
    let engine_store = store.clone();
    // Made here, where the console is known (a client's stderr never gets a bar).
    let mut bar = Bar::new();
    let report = tokio::task::spawn_blocking(move || {
        interop::import_mongo(&store, &sources, options, Utc::now(), &mut bar)
    })
    .await
    .map_err(|e| Failure::new(format!("import task failed: {e}")))?
    .map_err(|e| match e {
        ImportError::Input { .. } => Failure::usage(e.to_string()),
        other => Failure::new(other.to_string()),
    })?;
    // Run in the service: its engine starts tracking the imported accounts now.
    if let Some(remote) = super::console::remote()
        && !dry_run
    {
        for account in engine_store.accounts()? {
            let _ = remote
                .hub
                .sync
                .send(crate::sync::Command::AccountAdded(account.id))
                .await;
        }
    }
    print_report(&report, json)?;
    if report.skipped > 0 {
        return Err(Failure::new(format!(
            "{} skipped (listed above); fix {} and run the import again: what was imported stays, and nothing is imported twice",
            if report.skipped == 1 {
                "1 line was".to_string()
            } else {
                format!("{} lines were", report.skipped)
            },
            if report.skipped == 1 { "it" } else { "them" }
        )));
    }
    Ok(())
}

fn print_report(report: &ImportReport, json: bool) -> CliResult {
    if json {
        return super::print_json(report);
    }
    for s in &report.skipped_lines {
        crate::errln!(
            "skipped {} line {}: {}",
            sanitize(&s.file, true),
            s.line,
            sanitize(&s.reason, true)
        );
    }
    if report.skipped > report.skipped_lines.len() as u64 {
        crate::errln!(
            "… and {} more skipped lines",
            report.skipped - report.skipped_lines.len() as u64
        );
    }
    crate::outln!("{}", sanitize(&report.summary(), false));
    Ok(())
}

pub async fn export(config: &Config, command: ExportCommand) -> CliResult {
    match command {
        ExportCommand::Mongo {
            out,
            include_tokens,
        } => {
            let store = open(config).await?;
            let dir = out.clone();
            let written = tokio::task::spawn_blocking(move || {
                interop::export_mongo(&store, &dir, include_tokens)
            })
            .await
            .map_err(|e| Failure::new(format!("export task failed: {e}")))??;
            if include_tokens {
                crate::errln!(
                    "warning: {} holds the access and refresh tokens of {} account(s): whoever reads it can act as them on X. \
                     The files are 0600; keep them private and delete them once imported.",
                    out.join("accounts.json").display(),
                    written.accounts
                );
            }
            crate::outln!(
                "exported {} accounts and {} messages to {} (accounts.json, messages.json){}",
                written.accounts,
                written.messages,
                out.display(),
                if include_tokens {
                    ", tokens included"
                } else {
                    "; tokens left out (--include-tokens adds them)"
                }
            );
            Ok(())
        }
        ExportCommand::Mentions {
            format,
            account,
            status,
            since,
        } => {
            let since = since.as_deref().map(parse_since).transpose()?;
            let status = status.as_deref().map(parse_status).transpose()?;
            let store = open(config).await?;
            let account = match account {
                Some(name) => Some(find_account(&store, &name)?.id),
                None => None,
            };
            let selection = MentionSelection {
                account,
                status,
                since,
            };
            let mut out = super::console::stdout();
            tokio::task::spawn_blocking(move || {
                interop::export_mentions(&store, &selection, format, &mut out)
            })
            .await
            .map_err(|e| Failure::new(format!("export task failed: {e}")))??;
            Ok(())
        }
    }
}

/// `--since`: a date (midnight UTC) or an RFC 3339 time.
fn parse_since(s: &str) -> Result<DateTime<Utc>, Failure> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
        .ok_or_else(|| {
            Failure::usage(format!(
                "--since {s:?} is not a date (YYYY-MM-DD) or an RFC 3339 time (2026-01-31T12:00:00Z)"
            ))
        })
}
