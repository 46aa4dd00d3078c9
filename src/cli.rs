//! The command line: the TUI (default), `--demo`, the simulator, and the same operations as the
//! TUI as scriptable commands with `--json`. Exit codes: 0 success, 1 failure, 2 usage.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::Config;
use crate::domain::{Account, MentionStatus};
use crate::store::Store;

mod accounts;
pub mod completions;
pub mod console;
mod costs;
mod interop;
mod keys;
mod mentions;
pub(crate) mod remote;
mod report;
mod runtime;
mod service;
mod team;

pub use runtime::{App, DemoSetup, FaultScript, TimedFault, add_sim_accounts, sim_users};

#[derive(Parser, Debug)]
#[command(
    name = "perch",
    version,
    about = "Watch and triage the @mentions of several X accounts from one terminal",
    after_help = "Without a command, perch opens the dashboard. Try `perch --demo` first: it runs \
                  against a built-in X API simulator with three demo accounts."
)]
pub struct Cli {
    /// Run against the built-in X API simulator with three demo accounts (no credentials needed).
    /// The dashboard only: commands take no --demo (script the simulator with `perch sim`).
    #[arg(long)]
    pub demo: bool,
    /// With --demo: switch on the simulator's fault injection (rate limits, errors, revoked tokens).
    #[arg(long, requires = "demo")]
    pub faults: bool,
    /// Where the store lives (default: the XDG data directory; with --demo, a fresh temporary one).
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Attach the dashboard to a perch service elsewhere, as a team person (https://HOST, or
    /// http://127.0.0.1:PORT through a tunnel). The person's token is read from PERCH_API_TOKEN, never from
    /// the command line; PERCH_CA_FILE adds trusted certificates (a team's own CA).
    #[arg(
        long,
        env = "PERCH_CONNECT",
        value_name = "URL",
        conflicts_with = "demo"
    )]
    pub connect: Option<String>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the X API v2 simulator on 127.0.0.1 and print the environment that points perch at it.
    Sim(SimArgs),
    /// Add an X account (or reauthorize one) with OAuth 2.0.
    Login {
        /// Print the authorization URL and read the redirect URL (or the code) from standard
        /// input, for SSH sessions and machines without a browser.
        #[arg(long)]
        headless: bool,
    },
    /// List, inspect, pause, resume, remove and reauthorize accounts.
    #[command(subcommand)]
    Accounts(AccountsCommand),
    /// List mentions, change their status, fetch new ones.
    #[command(subcommand)]
    Mentions(MentionsCommand),
    /// Reply publicly to a mention, from the account it was sent to (TEXT `-` reads stdin).
    Reply { id: String, text: String },
    /// Send a DM to a mention's author, from the account the mention was sent to.
    Dm { id: String, text: String },
    /// What X is estimated to bill, per account and kind (an estimate at the configured prices).
    Costs {
        /// One account only.
        #[arg(long)]
        account: Option<String>,
        /// A UTC calendar month like 2026-12 (default: this month).
        #[arg(long)]
        month: Option<String>,
        /// {"estimate", "currency", "prices_date", "today_usd", "month_usd", "accounts": [...]}.
        #[arg(long)]
        json: bool,
        /// Show the price table and the date it was taken from.
        #[arg(long)]
        prices: bool,
    },
    /// The people who use this service, their roles and the accounts each may see or reply as.
    #[command(subcommand)]
    Team(team::TeamCommand),
    /// Who did what: status changes, assignments, replies, DMs, account and team changes.
    Audit {
        /// Only actions on this post (its X id).
        #[arg(long)]
        mention: Option<String>,
        /// Only this person's actions (`owner`: the socket and the service token).
        #[arg(long)]
        person: Option<String>,
        /// Only actions on or as this account.
        #[arg(long)]
        account: Option<String>,
        /// At most this many entries, newest first.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// [{"seq", "at", "person", "action", "account", "account_id", "mention", "detail"}].
        #[arg(long)]
        json: bool,
    },
    /// Bring data in from the MongoDB mention tracker perch replaces.
    #[command(subcommand)]
    Import(ImportCommand),
    /// Get data out: for MongoDB (`mongoimport`), spreadsheets or scripts.
    #[command(subcommand)]
    Export(ExportCommand),
    /// Run the perch service in the foreground (for systemd, launchd or a container): it owns the
    /// store, polls, sends, and serves the dashboard, the CLI and the REST API.
    Serve {
        /// Started by a dashboard: say `ready` on stdout once serving, then let go of it.
        #[arg(long, hide = true)]
        background: bool,
    },
    /// The background service: status, stop, a systemd unit, the API token.
    #[command(subcommand)]
    Service(ServiceCommand),
    /// The dashboard's effective key map: the preset with `[keys.<layer>]` from config.toml on
    /// top. Its lines can be pasted into the config.
    Keys {
        /// One layer only: normal, search, composer, confirm or picker.
        #[arg(long)]
        layer: Option<String>,
        /// {"normal": {"i": "ignore_and_next", ...}, ...}: layer → key → action.
        #[arg(long)]
        json: bool,
    },
    /// Print a shell completion script (account handles complete from the store): e.g.
    /// `perch completions bash > ~/.local/share/bash-completion/completions/perch`.
    Completions {
        #[arg(value_enum)]
        shell: completions::CompletionShell,
    },
    /// Print the man page (roff) of perch, or of one of its commands (`perch man accounts`):
    /// e.g. `perch man > ~/.local/share/man/man1/perch.1`.
    Man {
        /// The command whose page to print (`accounts`, `mentions list`, ...).
        command: Vec<String>,
    },
    /// For the completion scripts: the account handles, when WORDS (the command line typed so
    /// far, after `perch`) are followed by an account.
    #[command(name = "__complete-accounts", hide = true)]
    CompleteAccounts {
        /// The word being completed: when it starts with `@`, so do the handles printed.
        #[arg(long, default_value = "", allow_hyphen_values = true)]
        current: String,
        #[arg(last = true, allow_hyphen_values = true)]
        words: Vec<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum ServiceCommand {
    /// Is it running, since when, on which socket, the accounts and the last poll (exit code 3
    /// when no service runs).
    Status {
        /// {"pid", "uptime_secs", "socket", "api_listen", "accounts", "last_poll_at"}.
        #[arg(long)]
        json: bool,
    },
    /// End the running service (exit code 3 when none runs).
    Stop,
    /// Print a systemd user unit for the service, and the commands to enable it.
    Unit,
    /// Print the bearer token TCP clients of the REST API must send (alone on stdout).
    Token,
}

#[derive(Subcommand, Debug)]
pub enum ImportCommand {
    /// Import a `mongoexport` of the old tracker's accounts (or users) and messages. Exit code 0
    /// when every line was imported (or already was), 1 when lines were skipped, 2 for usage.
    Mongo {
        /// The `accounts` collection (`mongoexport --collection accounts --out FILE`).
        #[arg(long, value_name = "FILE")]
        accounts: Option<PathBuf>,
        /// The legacy `users` collection (before that system's migration to accounts).
        #[arg(long, value_name = "FILE")]
        users: Option<PathBuf>,
        /// The `messages` collection.
        #[arg(long, value_name = "FILE")]
        messages: PathBuf,
        /// Read and decide everything, write nothing, print the same report.
        #[arg(long)]
        dry_run: bool,
        /// Print the report as one JSON object.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum ExportCommand {
    /// Write accounts.json and messages.json (relaxed Extended JSON, one document per line) in
    /// the old tracker's shapes, for `mongoimport` or `perch import mongo`.
    Mongo {
        /// The directory to write into (created if needed).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Include the accounts' access and refresh tokens (the files are then 0600).
        #[arg(long)]
        include_tokens: bool,
    },
    /// Write mentions to standard output as CSV or JSON lines, newest first.
    Mentions {
        #[arg(long, value_enum)]
        format: crate::interop::MentionFormat,
        /// Only this account (@handle, handle or id).
        #[arg(long)]
        account: Option<String>,
        /// Only this status (pending, processing, replied, ignored, error).
        #[arg(long)]
        status: Option<String>,
        /// Only mentions posted on or after this date (YYYY-MM-DD, UTC) or time (RFC 3339).
        #[arg(long, value_name = "DATE")]
        since: Option<String>,
    },
}

#[derive(Args, Debug, Clone)]
pub struct SimArgs {
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 8787)]
    pub port: u16,
    /// Seed of the mention generator (same seed, same mentions).
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// New mentions per second across all simulated users.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Simulate this many users (`user000`, `user001`, ...) instead of the three demo accounts.
    #[arg(long, value_name = "N")]
    pub users: Option<usize>,
    /// The app's credit balance in dollars: spent at X's prices; once gone, every call gets 402.
    #[arg(long, value_name = "USD", default_value_t = 25.0)]
    pub credits: f64,
    #[command(flatten)]
    pub faults: SimFaultArgs,
}

/// Fault injection for `perch sim` (see `sim::Faults`). USER is a username or an X user id.
#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "Faults")]
pub struct SimFaultArgs {
    /// Answer every call of USER with 429 (repeatable).
    #[arg(long = "storm", value_name = "USER")]
    pub storm: Vec<String>,
    /// Apply the probabilistic and account-level faults only to USER (repeatable).
    #[arg(long = "only", value_name = "USER")]
    pub only: Vec<String>,
    /// Probability (0-1) of a 503 answer.
    #[arg(long, value_name = "P", default_value_t = 0.0)]
    pub server_errors: f64,
    /// Delay answers by MS milliseconds (to outlast a client timeout).
    #[arg(long, value_name = "MS")]
    pub slow_ms: Option<u64>,
    /// Probability (0-1) that an answer is delayed by --slow-ms (default 1).
    #[arg(long, value_name = "P")]
    pub slow_probability: Option<f64>,
    /// Probability (0-1) that the connection is reset instead of answered.
    #[arg(long, value_name = "P", default_value_t = 0.0)]
    pub resets: f64,
    /// Probability (0-1) that a 200 answer carries a truncated JSON body.
    #[arg(long, value_name = "P", default_value_t = 0.0)]
    pub malformed: f64,
    /// Mentions pages carry partial `errors` (a missing referenced post and user).
    #[arg(long)]
    pub partial_errors: bool,
    /// Every other post of a mentions page comes without its author.
    #[arg(long)]
    pub missing_authors: bool,
    /// The second post of every mentions page is unreadable (no text).
    #[arg(long)]
    pub bad_posts: bool,
    /// Every third post of a mentions page is marked as a retweet.
    #[arg(long)]
    pub retweets: bool,
    /// Every call gets 402 CreditsDepleted.
    #[arg(long)]
    pub credits_depleted: bool,
    /// Every call gets 403 client-not-enrolled.
    #[arg(long)]
    pub not_enrolled: bool,
    /// Revoke USER's grant after SECS seconds (`USER:SECS`, repeatable): its next call gets 401
    /// and its refresh is refused.
    #[arg(long = "revoke", value_name = "USER:SECS", value_parser = parse_timed_user)]
    pub revoke: Vec<(String, u64)>,
    /// Expire every user's access tokens every SECS seconds (refresh tokens keep working).
    #[arg(long, value_name = "SECS")]
    pub expire_every: Option<u64>,
    /// Mentions pages claim a meta.newest_id beyond every post they hold.
    #[arg(long)]
    pub newest_id_beyond: bool,
    /// Every post of a mentions page is unreadable (text null).
    #[arg(long)]
    pub unreadable_pages: bool,
    /// Every mentions page carries the same next_token, leading back to itself.
    #[arg(long)]
    pub repeat_next_token: bool,
    /// Pages asked for with a pagination_token are empty and still carry a next_token.
    #[arg(long)]
    pub empty_token_pages: bool,
    /// Mentions pages never end (a new next_token on every page).
    #[arg(long)]
    pub endless_pages: bool,
    /// x-rate-limit-reset is now + SECS (negative: in the past; 100000000000: year 5138).
    #[arg(long, value_name = "SECS", allow_hyphen_values = true)]
    pub reset_offset: Option<i64>,
    /// Send this Retry-After header (seconds or an HTTP-date) on every 429.
    #[arg(long, value_name = "VALUE")]
    pub retry_after: Option<String>,
    /// Replies and DMs get a 200 holding only `errors`, and nothing is posted.
    #[arg(long)]
    pub errors_only_sends: bool,
    /// Mention authors have hostile usernames and names (control, C1 and bidi characters, 10 000
    /// characters long), and posts carry C1, DEL and bidi characters.
    #[arg(long)]
    pub hostile_senders: bool,
    /// The Activity stream's faults (boxed: they would make every `Command` larger).
    #[command(flatten)]
    pub stream: Box<StreamFaultArgs>,
}

/// The Activity stream's faults for `perch sim` (part of [`SimFaultArgs`]).
#[derive(Args, Debug, Clone, Default)]
pub struct StreamFaultArgs {
    /// Activity stream: each connection goes silent (no events, no heartbeats) after SECS.
    #[arg(long, value_name = "SECS")]
    pub stream_stall_after: Option<u64>,
    /// Activity stream: each connection is closed without a word after SECS.
    #[arg(long, value_name = "SECS")]
    pub stream_drop_after: Option<u64>,
    /// Activity stream: each connection gets the operational-disconnect message after SECS.
    #[arg(long, value_name = "SECS")]
    pub stream_disconnect_after: Option<u64>,
    /// Activity stream: connects are refused with 429.
    #[arg(long)]
    pub stream_429: bool,
    /// Activity stream: connects are refused with 503.
    #[arg(long)]
    pub stream_503: bool,
    /// Activity stream: a malformed line before every event.
    #[arg(long)]
    pub stream_malformed: bool,
    /// Activity stream: a heartbeat every SECS seconds (default 10).
    #[arg(long, value_name = "SECS")]
    pub stream_heartbeat: Option<u64>,
}

fn parse_timed_user(s: &str) -> Result<(String, u64), String> {
    let (user, secs) = s
        .rsplit_once(':')
        .ok_or_else(|| format!("expected USER:SECS, got {s:?}"))?;
    let secs = secs
        .trim()
        .parse::<u64>()
        .map_err(|_| format!("expected a whole number of seconds after ':', got {secs:?}"))?;
    Ok((user.trim().to_string(), secs))
}

impl SimFaultArgs {
    /// The simulator's fault settings these flags ask for.
    pub fn to_faults(&self) -> crate::sim::Faults {
        let probability = |p: f64| {
            if p.is_finite() {
                p.clamp(0.0, 1.0)
            } else {
                0.0
            }
        };
        crate::sim::Faults {
            rate_limit_storm: self.storm.clone(),
            only_users: self.only.clone(),
            server_error_probability: probability(self.server_errors),
            slow_response: self.slow_ms.map(std::time::Duration::from_millis),
            slow_probability: match (self.slow_ms, self.slow_probability) {
                (_, Some(p)) => probability(p),
                (Some(_), None) => 1.0,
                (None, None) => 0.0,
            },
            connection_reset_probability: probability(self.resets),
            malformed_json_probability: probability(self.malformed),
            partial_errors: self.partial_errors,
            missing_authors: self.missing_authors,
            bad_posts: self.bad_posts,
            retweets: self.retweets,
            credits_depleted: self.credits_depleted,
            client_not_enrolled: self.not_enrolled,
            high_mention_rate: None,
            newest_id_beyond: self.newest_id_beyond,
            unreadable_pages: self.unreadable_pages,
            repeat_next_token: self.repeat_next_token,
            empty_token_pages: self.empty_token_pages,
            endless_pages: self.endless_pages,
            reset_offset_secs: self.reset_offset,
            retry_after: self.retry_after.clone(),
            errors_only_sends: self.errors_only_sends,
            hostile_senders: self.hostile_senders,
            stream_stall_after: self
                .stream
                .stream_stall_after
                .map(std::time::Duration::from_secs),
            stream_drop_after: self
                .stream
                .stream_drop_after
                .map(std::time::Duration::from_secs),
            stream_disconnect_after: self
                .stream
                .stream_disconnect_after
                .map(std::time::Duration::from_secs),
            stream_connect_429: self.stream.stream_429,
            stream_connect_503: self.stream.stream_503,
            stream_malformed_lines: self.stream.stream_malformed,
            stream_heartbeat: self
                .stream
                .stream_heartbeat
                .map(|s| std::time::Duration::from_secs(s.max(1))),
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum AccountsCommand {
    /// List tracked accounts with totals (`--json`: {"accounts": [...], "total": N,
    /// "active_count": N, "paused_count": N}; total counts paused accounts too).
    List {
        /// Include paused accounts.
        #[arg(long)]
        include_inactive: bool,
        #[arg(long)]
        json: bool,
    },
    /// Show one account.
    Show {
        account: String,
        #[arg(long)]
        json: bool,
    },
    /// Stop polling an account.
    Pause { account: String },
    /// Poll an account again.
    Resume { account: String },
    /// Stop tracking an account.
    Remove {
        account: String,
        /// Delete its stored mentions too (by default they are kept).
        #[arg(long)]
        delete_mentions: bool,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
    /// Mention statistics of an account.
    Stats {
        account: String,
        #[arg(long)]
        json: bool,
    },
    /// Log in again for an account whose token X no longer accepts.
    Reauthorize {
        account: String,
        #[arg(long)]
        headless: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum MentionsCommand {
    /// List mentions, newest first.
    List {
        #[arg(long)]
        account: Option<String>,
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        search: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Only the mentions assigned to this person (`me`: the owner), or to nobody (`none`).
        #[arg(long)]
        assigned: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Set a mention's status (ID is the mention's uuid or its post id).
    SetStatus { id: String, status: String },
    /// Assign a mention to a person on the team (`perch team list`), take it (`me`), or
    /// unassign it (`none`). Everyone's dashboard hears of it at once.
    Assign { id: String, person: String },
    /// Fetch new mentions now (one account, or all active ones): one attempt per account, and
    /// a line per account saying what was stored and, if it stopped early, why. Exit 1 when any
    /// account could not be fetched in full.
    Fetch {
        #[arg(long)]
        account: Option<String>,
        /// The per-account outcome as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// A failure the user can act on: printed as one line, exit code 1 (or 2 for usage).
#[derive(Debug)]
pub struct Failure {
    pub message: String,
    pub code: i32,
    /// Already reported on stdout (a `--json` report): nothing more on stderr.
    pub quiet: bool,
}

impl Failure {
    pub fn new(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            code: 1,
            quiet: false,
        }
    }
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            code: 2,
            quiet: false,
        }
    }
}

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(e: E) -> Failure {
        Failure::new(e.to_string())
    }
}

pub type CliResult = Result<(), Failure>;

/// Parses the command line and runs it; returns the process exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("perch: cannot start the async runtime: {e}");
            return 1;
        }
    };
    exit_code(runtime.block_on(run(cli)))
}

/// The exit code of a command's result, saying the failure (on the command's standard error).
pub(crate) fn exit_code(result: CliResult) -> i32 {
    match result {
        Ok(()) => 0,
        Err(failure) if failure.quiet => failure.code,
        Err(failure) => {
            // Failures often quote X or a stored record: nothing in them may drive the terminal.
            crate::errln!("perch: {}", crate::text::sanitize(&failure.message, false));
            failure.code
        }
    }
}

async fn run(cli: Cli) -> CliResult {
    // Generated from the clap definitions alone: they work with a broken config file too (a
    // shell's startup file may run them), and a Tab never prints an error.
    match cli.command {
        Some(Command::Completions { shell }) => {
            quiet_on_closed_pipe();
            crate::outp!("{}", completions::script(shell));
            return Ok(());
        }
        Some(Command::Man { command }) => {
            quiet_on_closed_pipe();
            crate::outp!("{}", completions::man_page(&command)?);
            return Ok(());
        }
        Some(Command::CompleteAccounts { words, current }) => {
            quiet_on_closed_pipe();
            return completions::complete_accounts(words, &current, cli.data_dir).await;
        }
        // Before the config is read: a bad token_key there must not block making a new one.
        Some(Command::Team(team::TeamCommand::Keygen)) => return team::keygen(),
        _ => {}
    }
    if cli.connect.is_some() && cli.command.is_some() {
        return Err(Failure::new(
            "--connect (PERCH_CONNECT) attaches the dashboard only; for commands on a remote service use its REST API with your token, e.g. `curl -H \"Authorization: Bearer $PERCH_API_TOKEN\" URL/api/v1/mentions/` (or unset PERCH_CONNECT to run commands here)",
        ));
    }
    let mut config = Config::load()?;
    if let Some(dir) = &cli.data_dir {
        config.data_dir = dir.clone();
    }
    // A service logs to a file of its own (named by its data directory), so `perch service
    // status` can say where, and a dashboard's lines do not mix into it.
    let log_file = match cli.command {
        Some(Command::Serve { .. }) => {
            crate::service::ServicePaths::new(&config.data_dir, &config.state_dir)
                .log
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "perch.log".into())
        }
        _ => "perch.log".to_string(),
    };
    let _log_guard = runtime::init_logging(&config, &log_file);
    for warning in &config.warnings {
        eprintln!("perch: {warning}");
        tracing::warn!("{warning}");
    }
    // The team's database is named, and some store commands do not run on it yet: say so
    // rather than read and write a sled store beside it. The dashboard does (it attaches to a
    // service, started here when none runs, and the service runs on the database).
    let uses_store = match &cli.command {
        None => false,
        Some(command) => command.needs_store() && !command.runs_on_postgres(),
    };
    if !cli.demo
        && uses_store
        && let Some(url) = config.database_url.clone()
    {
        return Err(Failure::new(
            postgres_not_yet(url, config.token_key.clone()).await,
        ));
    }
    // A command that needs the store goes to the running service, which holds it (the same
    // command runs there, with its output and exit code sent back); with none running, it opens
    // the store itself.
    let on_postgres = !cli.demo && config.database_url.is_some();
    if !cli.demo
        && !on_postgres
        && cli.command.as_ref().is_some_and(Command::needs_store)
        && let Some(socket) = remote::running_service(&config).await
    {
        if cli.command.as_ref().is_some_and(Command::only_prints) {
            quiet_on_closed_pipe();
        }
        let code = remote::forward(&socket).await?;
        return match code {
            0 => Ok(()),
            code => Err(Failure {
                message: String::new(),
                code,
                quiet: true,
            }),
        };
    }
    dispatch(cli, config).await
}

impl Command {
    /// Commands that only read the store and print (`... | head` is normal use).
    pub fn only_prints(&self) -> bool {
        matches!(
            self,
            Command::Accounts(
                AccountsCommand::List { .. }
                    | AccountsCommand::Show { .. }
                    | AccountsCommand::Stats { .. }
            ) | Command::Mentions(MentionsCommand::List { .. })
                | Command::Export(_)
                | Command::Costs { .. }
                | Command::Keys { .. }
                | Command::Audit { .. }
                | Command::Team(team::TeamCommand::List { .. })
        )
    }

    /// Whether the command runs on the team's PostgreSQL database when `database_url` is set
    /// (issue 16: the team's people, the audit log, logins). It then works on the database
    /// directly, which every service and command share, instead of going through a service.
    pub fn runs_on_postgres(&self) -> bool {
        matches!(
            self,
            Command::Login { .. }
                | Command::Audit { .. }
                | Command::Team(
                    team::TeamCommand::Add { .. }
                        | team::TeamCommand::List { .. }
                        | team::TeamCommand::Remove { .. }
                        | team::TeamCommand::Grant { .. }
                )
        )
    }

    /// Whether the command reads or writes the store (and so runs in the service when one runs).
    pub fn needs_store(&self) -> bool {
        !matches!(
            self,
            Command::Sim(_)
                | Command::Serve { .. }
                | Command::Service(_)
                | Command::Keys { .. }
                | Command::Completions { .. }
                | Command::Man { .. }
                | Command::Team(team::TeamCommand::Keygen)
        )
    }
}

/// Runs a parsed command with `config` (in this process, or in the service for a client).
pub(crate) async fn dispatch(cli: Cli, config: Config) -> CliResult {
    // Never in the service: a closed client socket must be an error there, not its death.
    if console::remote().is_none() && cli.command.as_ref().is_some_and(Command::only_prints) {
        quiet_on_closed_pipe();
    }
    match cli.command {
        None => {
            let remote = match &cli.connect {
                Some(url) => Some(remote_endpoint(url)?),
                None => None,
            };
            runtime::run_dashboard(config, remote, cli.demo, cli.faults, cli.data_dir.is_some())
                .await
        }
        Some(Command::Sim(args)) => runtime::run_sim(args).await,
        Some(_) if cli.demo => Err(Failure::usage(
            "--demo only opens the dashboard; to script against the simulator, run `perch sim` and \
             export the lines it prints",
        )),
        Some(Command::Login { headless }) => accounts::login(&config, headless, None).await,
        Some(Command::Accounts(command)) => accounts::run(&config, command).await,
        Some(Command::Mentions(command)) => mentions::run(&config, command).await,
        Some(Command::Reply { id, text }) => {
            mentions::reply(&config, &id, &text, crate::domain::ReplyKind::Public).await
        }
        Some(Command::Dm { id, text }) => {
            mentions::reply(&config, &id, &text, crate::domain::ReplyKind::Dm).await
        }
        Some(Command::Serve { background }) => service::serve(config, background).await,
        Some(Command::Service(command)) => match command {
            ServiceCommand::Status { json } => service::status(&config, json).await,
            ServiceCommand::Stop => service::stop(&config).await,
            ServiceCommand::Unit => service::unit(&config),
            ServiceCommand::Token => service::token(&config),
        },
        Some(Command::Keys { layer, json }) => keys::run(&config, layer.as_deref(), json),
        Some(Command::Team(team::TeamCommand::Keygen)) => team::keygen(),
        Some(Command::Team(command)) => team::run(&config, command).await,
        Some(Command::Audit {
            mention,
            person,
            account,
            limit,
            json,
        }) => {
            team::audit(
                &config,
                mention.as_deref(),
                person.as_deref(),
                account.as_deref(),
                limit,
                json,
            )
            .await
        }
        Some(Command::Import(command)) => interop::import(&config, command).await,
        Some(Command::Export(command)) => interop::export(&config, command).await,
        Some(Command::Costs {
            account,
            month,
            json,
            prices,
        }) => costs::run(&config, account.as_deref(), month.as_deref(), json, prices).await,
        // In the service, for a client that forwarded it (the client's own process answers the
        // others before it gets here).
        Some(Command::CompleteAccounts { words, current }) => {
            completions::served_accounts(&config, words, &current).await
        }
        Some(Command::Completions { shell }) => {
            crate::outp!("{}", completions::script(shell));
            Ok(())
        }
        Some(Command::Man { command }) => {
            crate::outp!("{}", completions::man_page(&command)?);
            Ok(())
        }
    }
}

/// For commands that only read the store and print (`... | head` is normal use): when the reader
/// goes away, end quietly like other Unix tools instead of reporting "Broken pipe". Only for
/// these: commands that talk to X or run servers keep Rust's default (SIGPIPE ignored), so a
/// closed socket is an error to handle, not a reason to die.
fn quiet_on_closed_pipe() {
    #[cfg(unix)]
    // SAFETY: setting a signal disposition to the default is async-signal-safe and done before
    // any output; nothing else in these commands installs a SIGPIPE handler.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Why the dashboard or a store command does not run with `database_url`: the key or the
/// database (as the PostgreSQL store reports them: no token_key and how to make one, a database
/// it cannot reach), or, when both are right, that only the service runs there so far. The
/// database is only looked at, never migrated: other perch services may be using it.
async fn postgres_not_yet(
    url: crate::domain::Secret,
    key: Option<crate::domain::TokenKey>,
) -> String {
    let target = crate::store::pg::redacted(url.expose());
    let checked =
        tokio::task::spawn_blocking(move || crate::store::PgStore::inspect(url.expose(), key))
            .await;
    match checked {
        Ok(Ok(version)) => format!(
            "database_url is set: the PostgreSQL database at {target} is reachable and its schema is at version {version} (this perch's: {}), but this command does not run on PostgreSQL yet (README \"The PostgreSQL store (in progress)\"); the dashboard, `perch serve` (one leader syncs, the others follow), `perch login`, `perch team` and `perch audit` do, and `perch service status` shows a service's role; unset database_url (and PERCH_DATABASE_URL) to run on the embedded store",
            crate::store::PgStore::latest_schema_version()
        ),
        Ok(Err(e)) => e.to_string(),
        Err(e) => format!("the database check failed: {e}"),
    }
}

/// The store for a command that runs on sled or on the team's PostgreSQL database (the team's
/// records, the audit log, logins): in the service for a client, the service's; with
/// `database_url`, the database itself (every service and command share it; nothing to
/// forward); else the sled store, as [`open_store`] opens it.
pub(crate) async fn open_shared_store(
    config: &Config,
) -> Result<crate::store::SharedStore, Failure> {
    if let Some(remote) = console::remote() {
        return Ok(remote.hub.store.clone());
    }
    if let Some(url) = config.database_url.clone() {
        let key = config.token_key.clone();
        let store =
            tokio::task::spawn_blocking(move || crate::store::PgStore::connect(url.expose(), key))
                .await
                .map_err(|e| Failure::new(format!("the store task failed: {e}")))??;
        return Ok(store.into_shared());
    }
    Ok(open_store(config).await?.shared())
}

/// Opens the store for a command, in a blocking task.
pub(crate) async fn open_store(config: &Config) -> Result<Store, Failure> {
    // Run in the service for a client: the store the service holds.
    if let Some(remote) = console::remote() {
        return Ok(remote.hub.sled_store()?);
    }
    let dir = config.data_dir.clone();
    let token_key = config.token_key.clone();
    let store = tokio::task::spawn_blocking(move || Store::open_with_token_key(&dir, token_key))
        .await
        .map_err(|e| Failure::new(format!("store task failed: {e}")))?
        .map_err(|e| Failure::new(e.to_string()))?;
    // Every charge the store records uses the configured prices and app owner.
    store.set_pricing(config.pricing.clone());
    warn_if_disk_full(&store);
    Ok(store)
}

/// Says on stderr when the disk under the store is too full for perch to store new mentions
/// (the sync engine stops storing until there is room; see `store::space`).
pub(crate) fn warn_if_disk_full(store: &Store) {
    if let Err(e @ crate::store::StoreError::DiskFull { .. }) = store.ensure_room() {
        eprintln!("perch: {e}");
    }
}

/// Finds an account by `@handle`, handle or id; an unknown one lists the known handles.
pub(crate) fn find_account(
    store: &dyn crate::store::ServiceBackend,
    name: &str,
) -> Result<Account, Failure> {
    crate::store::lookup::find_account(store, name).map_err(Failure::from_lookup)
}

impl Failure {
    /// A lookup that found nothing (or too much) is a failure; an id of the wrong form is usage.
    pub(crate) fn from_lookup(e: crate::store::lookup::LookupError) -> Failure {
        match e {
            crate::store::lookup::LookupError::Malformed(m) => Failure::usage(m),
            other => Failure::new(other.to_string()),
        }
    }
}

pub(crate) fn parse_status(s: &str) -> Result<MentionStatus, Failure> {
    MentionStatus::parse(s).ok_or_else(|| {
        Failure::usage(format!(
            "unknown status {s:?}; use one of pending, processing, replied, ignored, error"
        ))
    })
}

/// Prints a value as pretty JSON on stdout: every `--json` output goes through here.
pub(crate) fn print_json(value: &impl serde::Serialize) -> CliResult {
    let text = json_text(value)?;
    crate::outln!("{text}");
    Ok(())
}

/// Pretty JSON in which every character a terminal could act on is escaped. serde_json escapes
/// C0 controls only; a consumer that prints a string from this output must not receive raw DEL,
/// C1 controls (U+0080-U+009F, CSI among them) or bidi controls either, so those are written as
/// `\uXXXX` too. They can only occur inside strings, where the escape means the same character,
/// so the JSON value is unchanged.
pub fn json_text(value: &impl serde::Serialize) -> Result<String, serde_json::Error> {
    let text = serde_json::to_string_pretty(value)?;
    if !text.chars().any(needs_json_escape) {
        return Ok(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if needs_json_escape(c) {
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

/// DEL, C1 controls, and the bidi marks, embeddings, overrides and isolates.
fn needs_json_escape(c: char) -> bool {
    matches!(c,
        '\u{7f}'..='\u{9f}'
        | '\u{200e}' | '\u{200f}' | '\u{061c}'
        | '\u{202a}'..='\u{202e}'
        | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod json_tests {
    use super::*;

    #[test]
    fn json_output_escapes_del_c1_and_bidi_and_means_the_same() {
        let value = serde_json::json!({
            "text": "a\u{7f}b\u{85}c\u{9b}31m\u{202e}d\u{2066}e\u{1b}f",
            "plain": "café 日本 🙂",
        });
        let text = json_text(&value).unwrap();
        for raw in [
            '\u{7f}', '\u{85}', '\u{9b}', '\u{202e}', '\u{2066}', '\u{1b}',
        ] {
            assert!(!text.contains(raw), "{raw:?} left raw in {text}");
        }
        assert!(text.contains("\\u009b"), "{text}");
        assert!(text.contains("café 日本 🙂"), "{text}");
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, value);
    }
}

#[cfg(test)]
mod sim_flag_tests {
    use super::*;

    #[test]
    fn every_hostile_x_flag_reaches_the_simulator_faults() {
        let cli = Cli::try_parse_from([
            "perch",
            "sim",
            "--newest-id-beyond",
            "--unreadable-pages",
            "--repeat-next-token",
            "--empty-token-pages",
            "--endless-pages",
            "--reset-offset",
            "-60",
            "--retry-after",
            "Wed, 21 Oct 2015 07:28:00 GMT",
            "--errors-only-sends",
            "--hostile-senders",
        ])
        .unwrap();
        let Some(Command::Sim(args)) = cli.command else {
            panic!("not the sim command: {cli:?}")
        };
        let f = args.faults.to_faults();
        assert!(f.newest_id_beyond && f.unreadable_pages && f.repeat_next_token);
        assert!(f.empty_token_pages && f.endless_pages && f.errors_only_sends && f.hostile_senders);
        assert_eq!(f.reset_offset_secs, Some(-60));
        assert_eq!(
            f.retry_after.as_deref(),
            Some("Wed, 21 Oct 2015 07:28:00 GMT")
        );
    }
}

/// The remote service of `--connect URL`, with the person's token from `PERCH_API_TOKEN` and
/// extra trusted certificates from `PERCH_CA_FILE`.
fn remote_endpoint(url: &str) -> Result<crate::client::Endpoint, Failure> {
    let token = std::env::var("PERCH_API_TOKEN")
        .ok()
        .map(crate::domain::Secret::new);
    let ca_file = std::env::var_os("PERCH_CA_FILE")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    crate::client::Endpoint::remote(url, token, ca_file.as_deref()).map_err(Failure::new)
}
