//! Soak run of the sync engine: the X API simulator streaming mentions at a high rate to many
//! accounts, and perch's real engine syncing all of them into a real store, headless, for a few
//! minutes. Prints what was sent and stored, duplicates, budget violations, the delay from the
//! simulator creating a mention to perch committing it, and memory before and after.
//!
//! `cargo run --release --bin perch-soak -- --accounts 200 --rate 50 --minutes 3`
//!
//! With `--stream` the run has two phases of `--minutes` each, measured apart: polling only,
//! then with the Activity stream (an engine that owns the stream, polling as reconciliation).
//! `--stream-fault-every SECS` drops and stalls the stream in turn every SECS seconds of the
//! second phase; the reconnect polls must lose nothing.
//!
//! The simulator runs in this process (so the memory figures include its growing world and its
//! request log, capped at 200 000 entries). Exit status 1 when a duplicate or a budget violation
//! was seen, or when mentions are missing at the end.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::Parser;
use perch::auth::{OAuthSettings, TokenManager};
use perch::cli::{App, add_sim_accounts, sim_users};
use perch::domain::{Mention, SyncStatus, snowflake_time};
use perch::sim::{self, Faults, SimConfig};
use perch::store::{FeedFilter, Store};
use perch::sync::stream::StreamSettings;
use perch::sync::stream::StreamStatus;
use perch::sync::{self, Command, SyncCounters, SyncEvent, SyncSettings};
use perch::x::XClient;

#[derive(Parser, Debug)]
#[command(
    name = "perch-soak",
    about = "Soak-test the sync engine against the X API simulator"
)]
struct Args {
    /// Simulated accounts perch syncs.
    #[arg(long, default_value_t = 200)]
    accounts: usize,
    /// New mentions per second across all accounts.
    #[arg(long, default_value_t = 50.0)]
    rate: f64,
    /// How long the stream runs.
    #[arg(long, default_value_t = 3.0)]
    minutes: f64,
    /// perch's base poll interval, in seconds.
    #[arg(long, default_value_t = 10)]
    interval: u64,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 4)]
    max_in_flight: usize,
    /// After the stream stops and perch has caught up, keep polling this long with no new
    /// mentions, sampling memory: polling alone must not grow it.
    #[arg(long, default_value_t = 1.0)]
    quiet_minutes: f64,
    /// Mentions of each account that exist before the run (the first sync backfills them).
    #[arg(long, default_value_t = 20)]
    backlog: usize,
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// A second phase with the Activity stream (see the module docs).
    #[arg(long)]
    stream: bool,
    /// In the stream phase, drop (then, next time, stall) the stream every SECS seconds.
    #[arg(long, value_name = "SECS")]
    stream_fault_every: Option<u64>,
}

/// One measured phase: when the simulator created mentions during it, and what perch did.
struct Phase {
    name: &'static str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
}

/// A running engine and what the soak watches of it.
struct RunningEngine {
    commands: tokio::sync::mpsc::Sender<Command>,
    task: tokio::task::JoinHandle<()>,
    counters: Arc<SyncCounters>,
    drain: tokio::task::JoinHandle<()>,
    live: Arc<std::sync::atomic::AtomicBool>,
    reconnects: Arc<AtomicU64>,
}

fn spawn_engine(
    store: &Store,
    app: &App,
    settings: SyncSettings,
    troubled: &Arc<AtomicU64>,
) -> RunningEngine {
    let engine = sync::spawn(
        store.shared(),
        app.client.clone(),
        app.tokens.clone(),
        settings,
    );
    let live = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reconnects = Arc::new(AtomicU64::new(0));
    let drain = {
        let (troubled, live, reconnects) = (troubled.clone(), live.clone(), reconnects.clone());
        let mut events = engine.events;
        tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                match event {
                    SyncEvent::AccountUpdated(a) if a.sync_status != SyncStatus::Active => {
                        troubled.fetch_add(1, Ordering::Relaxed);
                        eprintln!(
                            "  {} is {}: {}",
                            a.handle(),
                            a.sync_status,
                            a.error_message.unwrap_or_default()
                        );
                    }
                    SyncEvent::StreamStatus(status) => {
                        // Every transition to live is a (re)connect.
                        let is_live = status == StreamStatus::Live;
                        if is_live && !live.swap(true, Ordering::Relaxed) {
                            reconnects.fetch_add(1, Ordering::Relaxed);
                        }
                        live.store(is_live, Ordering::Relaxed);
                        if let StreamStatus::Off { reason } = status {
                            eprintln!("  stream off: {reason}");
                        }
                    }
                    _ => {}
                }
            }
        })
    };
    RunningEngine {
        commands: engine.commands,
        task: engine.task,
        counters: engine.counters,
        drain,
        live,
        reconnects,
    }
}

impl RunningEngine {
    async fn stop(self) {
        let _ = self.commands.send(Command::Shutdown).await;
        let _ = tokio::time::timeout(Duration::from_secs(10), self.task).await;
        self.drain.abort();
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let clean = runtime.block_on(soak(args))?;
    std::process::exit(if clean { 0 } else { 1 });
}

/// The resident set size of this process, from /proc (Linux); `None` elsewhere.
fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn mib(kib: Option<u64>) -> String {
    kib.map(|k| format!("{:.1} MiB", k as f64 / 1024.0))
        .unwrap_or_else(|| "n/a".into())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

async fn soak(args: Args) -> anyhow::Result<bool> {
    let rss_start = rss_kib();
    let mut config = SimConfig::for_tests(args.seed);
    config.users = sim_users(args.accounts);
    config.backlog_per_user = args.backlog;
    // The stream starts once every account is logged in.
    config.mentions_per_second = 0.0;
    let handle = sim::start(config.clone(), 0)
        .await
        .context("cannot start the simulator")?;
    let control = handle.control();
    // The soak measures syncing, not billing: the simulated app has unlimited credits.
    control.set_credits(None);
    let dir = tempfile::Builder::new().prefix("perch-soak-").tempdir()?;
    let store = Store::open(&dir.path().join("store"))?;
    let oauth = OAuthSettings {
        client_id: config.client_id.clone(),
        client_secret: None,
        authorize_url: handle.authorize_url(),
        token_url: handle.token_url(),
        redirect_uri: sim::DEMO_REDIRECT_URI.to_string(),
    };
    let app = App {
        client: XClient::new(&handle.api_base()),
        tokens: TokenManager::new(store.shared(), oauth.clone()),
        store: store.clone(),
        oauth,
    };
    let names: Vec<String> = config.users.iter().map(|u| u.username.clone()).collect();
    let login_started = Instant::now();
    add_sim_accounts(&app, &names)
        .await
        .map_err(|f| anyhow::anyhow!(f.message))?;
    println!(
        "perch-soak: {} accounts logged in through OAuth in {:.1}s; streaming {} mentions/s for {} min; poll interval {}s, {} in flight",
        args.accounts,
        login_started.elapsed().as_secs_f64(),
        args.rate,
        args.minutes,
        args.interval,
        args.max_in_flight
    );

    let settings = SyncSettings {
        poll_interval: Duration::from_secs(args.interval.max(1)),
        max_in_flight: args.max_in_flight.max(1),
        ..SyncSettings::default()
    };
    let troubled = Arc::new(AtomicU64::new(0));
    let mut engine = spawn_engine(&store, &app, settings.clone(), &troubled);
    let mut counters = engine.counters.clone();

    // Let the first syncs backfill, then start the stream and measure from there.
    let backfill_started = Instant::now();
    let accounts = store.accounts()?;
    loop {
        let mut synced = 0;
        for a in &accounts {
            if store.cursor(a.id)?.is_some() {
                synced += 1;
            }
        }
        if synced == accounts.len() || backfill_started.elapsed() > Duration::from_secs(300) {
            println!(
                "  first sync of {synced}/{} accounts in {:.1}s ({} mentions)",
                accounts.len(),
                backfill_started.elapsed().as_secs_f64(),
                store.count(&FeedFilter::default())?
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let rss_before = rss_kib();
    let stream_started: DateTime<Utc> = control.now();
    control.set_faults(Faults {
        high_mention_rate: Some(args.rate),
        ..Faults::default()
    });
    let run = Duration::from_secs_f64(args.minutes.max(0.0) * 60.0);
    let mut rss_samples: Vec<(u64, Option<u64>)> = Vec::new();
    let mut phases = Vec::new();
    let first = if args.stream {
        "polling only"
    } else {
        "polling"
    };
    phases.push(
        run_phase(
            first,
            run,
            &control,
            &store,
            &counters,
            &mut rss_samples,
            None,
        )
        .await?,
    );
    let mut stream_counters = None;
    if args.stream {
        // The same engine, now owning the stream: stop the polling-only one, start it.
        engine.stop().await;
        let streaming = SyncSettings {
            app_bearer_token: Some(perch::domain::Secret::new(sim::DEMO_APP_BEARER_TOKEN)),
            stream: StreamSettings {
                enabled: true,
                ..StreamSettings::default()
            },
            ..settings.clone()
        };
        engine = spawn_engine(&store, &app, streaming, &troubled);
        counters = engine.counters.clone();
        let wait_live = Instant::now();
        while !engine.live.load(Ordering::Relaxed) && wait_live.elapsed() < Duration::from_secs(60)
        {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        println!(
            "  stream {} after {:.1}s",
            if engine.live.load(Ordering::Relaxed) {
                "live"
            } else {
                "NOT live"
            },
            wait_live.elapsed().as_secs_f64()
        );
        phases.push(
            run_phase(
                "with the stream",
                run,
                &control,
                &store,
                &counters,
                &mut rss_samples,
                args.stream_fault_every
                    .map(|s| Duration::from_secs(s.max(1))),
            )
            .await?,
        );
        stream_counters = Some(counters.clone());
    }
    // Stop the stream; give perch time to catch up (one fetch-now for everyone, within budget).
    control.set_faults(Faults {
        high_mention_rate: Some(0.0),
        ..Faults::default()
    });
    let stream_stopped = control.now();
    // The stream finishes the tick it is in.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ = engine.commands.send(Command::FetchNow(None)).await;
    let users = control.users();
    let expected: HashMap<String, u64> = users
        .iter()
        .map(|u| {
            let n = control.mention_count(&u.username).unwrap_or(0).min(800) as u64;
            (u.id.clone(), n)
        })
        .collect();
    let caught_up = |store: &Store| -> anyhow::Result<u64> {
        let mut missing = 0;
        for a in &accounts {
            let have = store.count(&FeedFilter {
                account: Some(a.id),
                ..FeedFilter::default()
            })?;
            let want = expected.get(&a.twitter_id).copied().unwrap_or(0);
            missing += want.saturating_sub(have);
        }
        Ok(missing)
    };
    let catch_up_deadline = Instant::now() + Duration::from_secs(120);
    let mut missing = caught_up(&store)?;
    while missing > 0 && Instant::now() < catch_up_deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
        missing = caught_up(&store)?;
    }
    let rss_caught_up = rss_kib();
    let quiet = Duration::from_secs_f64(args.quiet_minutes.max(0.0) * 60.0);
    let quiet_started = Instant::now();
    let requests_before_quiet = SyncCounters::get(&counters.page_requests);
    let mut quiet_samples: Vec<(u64, Option<u64>)> = Vec::new();
    while quiet_started.elapsed() < quiet {
        tokio::time::sleep(
            Duration::from_secs(15).min(quiet.saturating_sub(quiet_started.elapsed())),
        )
        .await;
        quiet_samples.push((quiet_started.elapsed().as_secs(), rss_kib()));
    }
    let quiet_requests = SyncCounters::get(&counters.page_requests) - requests_before_quiet;
    let reconnects = engine.reconnects.load(Ordering::Relaxed);
    engine.stop().await;
    let rss_after = rss_kib();

    // What the simulator saw.
    let log = control.request_log();
    let mentions_requests: Vec<_> = log
        .iter()
        .filter(|r| r.path.ends_with("/mentions"))
        .collect();
    let mut by_status: HashMap<u16, u64> = HashMap::new();
    for r in &mentions_requests {
        *by_status.entry(r.status).or_default() += 1;
    }
    let refused = by_status.get(&429).copied().unwrap_or(0);
    let during: Vec<_> = mentions_requests
        .iter()
        .filter(|r| r.at >= stream_started && r.at <= stream_stopped)
        .collect();
    let window_secs = (stream_stopped - stream_started).num_milliseconds() as f64 / 1000.0;

    // What perch stored: every record, checked against the status counters (a mention stored
    // twice would leave a counter above the number of records).
    let mut records = 0u64;
    let mut unique: HashSet<(uuid::Uuid, String)> = HashSet::new();
    let mut delays: Vec<f64> = Vec::new();
    let mut phase_delays: Vec<Vec<f64>> = vec![Vec::new(); phases.len()];
    // The same, for the mentions that arrived by stream only.
    let mut phase_streamed: Vec<Vec<f64>> = vec![Vec::new(); phases.len()];
    let mut counter_total = 0u64;
    for a in &accounts {
        let filter = FeedFilter {
            account: Some(a.id),
            ..FeedFilter::default()
        };
        counter_total += store.count(&filter)?;
        let mentions: Vec<Mention> = store.page_after(&filter, None, 100_000)?;
        for m in mentions {
            records += 1;
            if let Some(created) = m.tweet_id.parse::<u64>().ok().and_then(snowflake_time)
                && created >= stream_started
            {
                let delay = (m.created_at - created).num_milliseconds() as f64 / 1000.0;
                delays.push(delay);
                if let Some(i) = phases
                    .iter()
                    .position(|p| created >= p.from && created < p.to)
                {
                    phase_delays[i].push(delay);
                    if store.arrival(m.key())? == perch::domain::Arrival::Stream {
                        phase_streamed[i].push(delay);
                    }
                }
            }
            unique.insert((a.id, m.tweet_id));
        }
    }
    let duplicates = (records - unique.len() as u64) + counter_total.saturating_sub(records);
    delays.sort_by(|a, b| a.total_cmp(b));

    println!();
    println!("requests sent (mentions)    {}", mentions_requests.len());
    let mut statuses: Vec<_> = by_status.into_iter().collect();
    statuses.sort();
    println!(
        "  by status                 {}",
        statuses
            .iter()
            .map(|(s, n)| format!("{s}: {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "  while streaming           {} ({:.1}/s)",
        during.len(),
        during.len() as f64 / window_secs.max(1.0)
    );
    println!(
        "mentions stored             {records} (simulator holds {} reachable)",
        expected.values().sum::<u64>()
    );
    println!("  created while streaming   {} stored", delays.len());
    println!("  missing at the end        {missing}");
    println!("duplicates stored           {duplicates}");
    println!(
        "  posts re-fetched          {} (returned again by X, dropped by the store)",
        SyncCounters::get(&counters.refetched)
    );
    println!("budget violations (429s)    {refused}");
    println!(
        "  polls held back by budget {}",
        SyncCounters::get(&counters.held_back)
    );
    println!(
        "failed polls                {}  (accounts leaving active: {})",
        SyncCounters::get(&counters.failed_polls),
        troubled.load(Ordering::Relaxed)
    );
    println!(
        "delay created→committed    p50 {:.2}s  p90 {:.2}s  p99 {:.2}s  max {:.2}s",
        percentile(&delays, 50.0),
        percentile(&delays, 90.0),
        percentile(&delays, 99.0),
        delays.last().copied().unwrap_or(f64::NAN)
    );
    println!(
        "memory (RSS)                start {}  before streaming {}  after {}",
        mib(rss_start),
        mib(rss_before),
        mib(rss_after)
    );
    println!(
        "  samples                   {}",
        rss_samples
            .iter()
            .map(|(t, r)| format!("{t}s {}", mib(*r)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for ((phase, delays), streamed) in phases
        .iter()
        .zip(phase_delays.iter_mut())
        .zip(phase_streamed.iter_mut())
    {
        delays.sort_by(|a, b| a.total_cmp(b));
        streamed.sort_by(|a, b| a.total_cmp(b));
        let requests = log
            .iter()
            .filter(|r| r.at >= phase.from && r.at < phase.to)
            .filter(|r| r.path.ends_with("/mentions") || r.path.starts_with("/2/activity"))
            .count();
        println!(
            "phase: {:<16} {} mentions  delay p50 {:.2}s p90 {:.2}s p99 {:.2}s max {:.2}s  requests/mention {:.3}",
            phase.name,
            delays.len(),
            percentile(delays, 50.0),
            percentile(delays, 90.0),
            percentile(delays, 99.0),
            delays.last().copied().unwrap_or(f64::NAN),
            requests as f64 / (delays.len().max(1)) as f64
        );
        if !streamed.is_empty() {
            println!(
                "  arrived by stream         {} mentions  delay p50 {:.2}s p90 {:.2}s p99 {:.2}s max {:.2}s; the other {} came by poll (implicit mentions XAA never sends, gaps)",
                streamed.len(),
                percentile(streamed, 50.0),
                percentile(streamed, 90.0),
                percentile(streamed, 99.0),
                streamed.last().copied().unwrap_or(f64::NAN),
                delays.len() - streamed.len()
            );
        }
    }
    if let Some(c) = &stream_counters {
        println!(
            "  stream                    {} events, {} mentions stored from them, {} unusable lines, {} (re)connects, {} stream connects seen by the simulator",
            SyncCounters::get(&c.stream_events),
            SyncCounters::get(&c.streamed),
            SyncCounters::get(&c.stream_trouble),
            reconnects,
            control.stream_connects()
        );
    }
    if !quiet.is_zero() {
        println!(
            "  quiet phase               {quiet_requests} polls in {}s with no new mentions: caught up {}, {}",
            quiet.as_secs(),
            mib(rss_caught_up),
            quiet_samples
                .iter()
                .map(|(t, r)| format!("+{t}s {}", mib(*r)))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    handle.shutdown().await;
    Ok(duplicates == 0 && refused == 0 && missing == 0)
}

/// Runs one phase of `run` with the simulator creating mentions, printing a line every 30 s;
/// with `faults`, drops and stalls the stream in turn at that period.
async fn run_phase(
    name: &'static str,
    run: Duration,
    control: &perch::sim::SimControl,
    store: &Store,
    counters: &Arc<SyncCounters>,
    rss_samples: &mut Vec<(u64, Option<u64>)>,
    faults: Option<Duration>,
) -> anyhow::Result<Phase> {
    let from = control.now();
    let started = Instant::now();
    let mut next_print = Duration::from_secs(30);
    let mut next_fault = faults;
    let mut stall = false;
    while started.elapsed() < run {
        let mut wake = next_print;
        if let Some(f) = next_fault {
            wake = wake.min(f);
        }
        let wake = wake.min(run);
        tokio::time::sleep(wake.saturating_sub(started.elapsed())).await;
        let now = started.elapsed();
        if let (Some(at), Some(every)) = (next_fault, faults)
            && now >= at
        {
            if stall {
                control.stall_streams();
            } else {
                control.drop_streams();
            }
            stall = !stall;
            next_fault = Some(at + every);
        }
        if now >= next_print || now >= run {
            let rss = rss_kib();
            rss_samples.push((now.as_secs(), rss));
            println!(
                "  [{name}] t={:>4}s  page requests {:>6}  stored {:>7}  rss {}",
                now.as_secs(),
                SyncCounters::get(&counters.page_requests),
                store.count(&FeedFilter::default())?,
                mib(rss)
            );
            next_print += Duration::from_secs(30);
        }
    }
    Ok(Phase {
        name,
        from,
        to: control.now(),
    })
}
