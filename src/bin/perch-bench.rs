//! perch-bench: builds a store of N mentions deterministically and measures what issue 6 asks
//! for: ingest against plain sled, open time, key-to-frame time, memory, disk, and counts.
//!
//! ```text
//! cargo run --release --bin perch-bench -- [--mentions N] [--accounts M] [--json]
//! ```
//!
//! Without `--mentions` it runs N = 1 000, 100 000 and 1 000 000. Open and memory are measured in
//! fresh processes: the benchmark runs itself with a hidden `child` subcommand.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use serde::{Deserialize, Serialize};
use serde_json::json;

use perch::app::{self, Action, AppState, Effect, Job, Mode, Pane, StatusFilter};
use perch::domain::{Account, AccountId, Mention, MentionStatus, Sender, SentTo};
use perch::store::{FeedFilter, FeedPos, Store, mention_entries};
use perch::ui::Theme;

#[path = "perch-bench/postgres.rs"]
mod postgres;
#[path = "perch-bench/rest.rs"]
mod rest;

#[derive(Parser, Debug)]
#[command(
    about = "Measures perch (store, open, key to frame, memory, disk, counts) at 1k, 100k and 1M mentions"
)]
struct Args {
    /// Mentions to store (default: run 1000, 100000 and 1000000).
    #[arg(long)]
    mentions: Option<u64>,
    /// Tracked accounts the mentions are spread over.
    #[arg(long, default_value_t = 5)]
    accounts: u32,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// Where to build the stores (default: a fresh directory under the system temp dir, removed
    /// afterwards).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Keep the stores after the run.
    #[arg(long)]
    keep: bool,
    /// Also measure `perch import mongo` (issue 13): write the N mentions as a mongoexport file
    /// (relaxed Extended JSON lines) and import it in a fresh process; report the import rate ÷
    /// perch's ingest rate (target ≥ 0.8) and the import's peak memory.
    #[arg(long)]
    import: bool,
    /// With `--import`: mentions per atomic import batch (default: perch's own).
    #[arg(long, default_value_t = perch::interop::import::IMPORT_BATCH)]
    import_batch: usize,
    /// Also measure the REST API through a running service on the store (issue 11), over its
    /// Unix socket: the round trip of `GET /api/v1/mentions/?limit=50` and the time from a page
    /// committed to its `mentions_stored` event reaching an SSE client (p50, p99).
    #[arg(long)]
    rest: bool,
    /// Also measure the keys through a running perch service over its Unix socket (issue 11):
    /// the same presses, the dashboard reading every page and count through the service.
    #[arg(long)]
    service: bool,
    /// Also measure the PostgreSQL store (issue 16) beside sled, on the server at this URL
    /// (`postgres://user@host:port`; the run makes and drops a database of its own): ingest ÷
    /// sled's, and the feed's page reads (p50, p99).
    #[arg(long, value_name = "URL")]
    postgres: Option<String>,
    #[command(subcommand)]
    child: Option<Child>,
}

/// Work done in a fresh process, so that open time and memory are not flattered by this one.
#[derive(Subcommand, Debug)]
enum Child {
    #[command(hide = true)]
    Child {
        /// `sled` (plain sled open) or `perch` (perch open, first page, then browsing).
        what: String,
        dir: PathBuf,
        #[arg(long, default_value_t = 5)]
        accounts: u32,
        /// `import`: how many mentions the files hold.
        #[arg(long, default_value_t = 0)]
        mentions: u64,
        /// `import`: mentions per import batch.
        #[arg(long, default_value_t = perch::interop::import::IMPORT_BATCH)]
        batch: usize,
    },
}

const PAGE: usize = 100;
const SCREEN_ROWS: usize = 40;
/// The word that the generator puts in about 1% of posts (for the search figures).
const RARE_WORD: &str = "zeppelin";
const SEED: u64 = 0x5EED_9E4C;

/// Progress beats; the watchdog ends the run if they stop (see `start_watchdog`).
static HEARTBEAT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn beat() {
    HEARTBEAT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

/// sled 0.34.7 can deadlock under bursts of writes (its segment accountant waits, while holding
/// its lock, for a file truncation queued behind pool threads that wait for that lock). A
/// benchmark that hangs forever would hang CI with it, so a run that makes no progress for five
/// minutes is ended with a message instead.
fn start_watchdog() {
    std::thread::spawn(|| {
        let mut last = HEARTBEAT.load(std::sync::atomic::Ordering::Relaxed);
        let mut idle = Duration::ZERO;
        let tick = Duration::from_secs(5);
        loop {
            std::thread::sleep(tick);
            let now = HEARTBEAT.load(std::sync::atomic::Ordering::Relaxed);
            if now == last {
                idle += tick;
                if idle >= Duration::from_secs(300) {
                    eprintln!(
                        "perch-bench: no progress for {}s; sled appears deadlocked (a known sled 0.34.7 bug); giving up",
                        idle.as_secs()
                    );
                    std::process::exit(2);
                }
            } else {
                idle = Duration::ZERO;
                last = now;
            }
        }
    });
}

fn main() {
    let args = Args::parse();
    if let Some(Child::Child {
        what,
        dir,
        accounts,
        mentions,
        batch,
    }) = &args.child
    {
        let started = Instant::now();
        let result = if what == "import" || what == "import-ingest" {
            import_child(dir, *accounts, *mentions, *batch, what == "import-ingest")
        } else {
            run_child(what, dir, *accounts, started)
        };
        let code = match result {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("perch-bench child: {e}");
                1
            }
        };
        std::process::exit(code);
    }
    start_watchdog();
    if let Err(e) = run(&args) {
        eprintln!("perch-bench: {e:#}");
        std::process::exit(1);
    }
}

fn run(args: &Args) -> anyhow::Result<()> {
    let sizes: Vec<u64> = match args.mentions {
        Some(n) => vec![n],
        None => vec![1_000, 100_000, 1_000_000],
    };
    anyhow::ensure!(args.accounts >= 1, "--accounts must be at least 1");
    let root = match &args.dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("perch-bench-{}", std::process::id())),
    };
    std::fs::create_dir_all(&root)?;
    let machine = machine_info();
    if !args.json {
        println!(
            "machine: {} cores, {} MB memory, {}",
            machine.cores, machine.memory_mb, machine.cpu
        );
    }
    let mut results = Vec::new();
    for &n in &sizes {
        let dir = root.join(format!("n{n}"));
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        let mut r = bench_size(&dir, n, args.accounts)?;
        if args.import {
            r.import = Some(bench_import(
                &dir,
                n,
                args.accounts,
                args.import_batch,
                r.ingest.perch_per_sec,
                args.keep,
            )?);
        }
        if args.rest {
            r.rest = Some(rest::bench(
                &dir,
                &dir.join("perch"),
                &bench_accounts(args.accounts),
            )?);
        }
        if args.service {
            r.through_service = Some(bench_through_service(&dir, args.accounts)?);
        }
        if let Some(server) = &args.postgres {
            r.postgres = Some(postgres::bench(
                &dir,
                n,
                &bench_accounts(args.accounts),
                server,
            )?);
        }
        if !args.json {
            print_table(&r);
            if let Some(pg) = &r.postgres {
                postgres::print(pg);
            }
        }
        results.push(r);
    }
    let growth = key_growth(&results);
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &json!({ "machine": machine, "runs": results, "key_p99_growth": growth })
            )?
        );
    } else if !growth.is_empty() {
        let (small, big) = (sizes.iter().min(), sizes.iter().max());
        println!();
        println!(
            "key p99 growth, N = {} vs N = {} (target <= 2)",
            big.copied().unwrap_or(0),
            small.copied().unwrap_or(0)
        );
        println!("  {:<46} {:>12}  p99 less CPU wait", "key", "p99");
        for g in &growth {
            println!(
                "  {:<46} {:>12.2}  {:.2}",
                g.key, g.p99, g.p99_without_run_queue
            );
        }
    }
    if !args.keep {
        let _ = std::fs::remove_dir_all(&root);
    }
    Ok(())
}

/// Per key, p99 at the largest N ÷ p99 at the smallest (issue 6: ≤ 2 from 1 000 to 1 000 000).
#[derive(Serialize, Debug)]
struct Growth {
    key: String,
    p99: f64,
    p99_without_run_queue: f64,
}

fn key_growth(results: &[SizeResult]) -> Vec<Growth> {
    let small = results.iter().min_by_key(|r| r.mentions);
    let big = results.iter().max_by_key(|r| r.mentions);
    let (Some(small), Some(big)) = (small, big) else {
        return Vec::new();
    };
    let (Some(sk), Some(bk)) = (&small.keys, &big.keys) else {
        return Vec::new();
    };
    if small.mentions == big.mentions {
        return Vec::new();
    }
    bk.keys
        .iter()
        .filter_map(|b| {
            let s = sk.keys.iter().find(|s| s.key == b.key)?;
            Some(Growth {
                key: b.key.clone(),
                p99: b.p99_ms / s.p99_ms.max(1e-9),
                p99_without_run_queue: b.p99_without_run_queue_ms
                    / s.p99_without_run_queue_ms.max(1e-9),
            })
        })
        .collect()
}

// ---- deterministic data ---------------------------------------------------------------------

/// The accounts of the benchmark store (fixed ids so that every run builds the same store).
fn bench_accounts(m: u32) -> Vec<Account> {
    let t0 = DateTime::<Utc>::from_timestamp(1_735_689_600, 0).unwrap_or_default();
    (0..m)
        .map(|i| {
            let mut a = Account::new(
                format!("{}", 4_000_000_000u64 + u64::from(i)),
                format!("brand{i}"),
                format!("Brand Number {i}"),
                None,
                t0,
            );
            a.id = AccountId::from_u128(0xBE4C_0000 + u128::from(i));
            a
        })
        .collect()
}

const WORDS: &[&str] = &[
    "thanks",
    "for",
    "the",
    "quick",
    "reply",
    "my",
    "order",
    "still",
    "hasn't",
    "arrived",
    "love",
    "new",
    "update",
    "app",
    "crashes",
    "when",
    "open",
    "settings",
    "can",
    "you",
    "help",
    "with",
    "billing",
    "question",
    "great",
    "service",
    "today",
    "why",
    "is",
    "this",
    "so",
    "slow",
    "🙏",
    "🔥",
    "😂",
    "咖啡",
    "很好",
    "ありがとう",
    "https://example.com/p/123",
    "#support",
    "week",
    "again",
    "please",
    "check",
    "DMs",
    "refund",
    "shipping",
    "login",
    "broken",
    "works",
    "now",
];

/// Builds page `p` (100 mentions of one account, consecutive in time). Tweet ids are snowflakes
/// spread over the year before 2026-01-01, increasing with the global mention number.
fn make_page(rng: &mut ChaCha8Rng, accounts: &[Account], p: u64, n: u64) -> Vec<Mention> {
    let account = &accounts[(p % accounts.len() as u64) as usize];
    let first = p * PAGE as u64;
    let year_ms: u64 = 365 * 24 * 3600 * 1000;
    let start_ms: u64 = 1_735_689_600_000 - 1_288_834_974_657 - year_ms;
    let step = (year_ms / n.max(1)).max(1);
    (first..(first + PAGE as u64).min(n))
        .map(|i| {
            let ms = start_ms + i * step;
            let tweet = (ms << 22) | (i & 0x3F_FFFF);
            let words = rng.random_range(3..40);
            let mut text = format!("@{} ", account.twitter_username);
            for w in 0..words {
                if w > 0 {
                    text.push(' ');
                }
                text.push_str(WORDS[rng.random_range(0..WORDS.len())]);
            }
            // Exactly one post in a hundred carries the search word, spread evenly over time
            // and accounts, so the search figure means the same at every N.
            if i % 100 == 50 {
                text.push(' ');
                text.push_str(RARE_WORD);
            }
            let sender = rng.random_range(0..5_000u32);
            // A store a year old has been triaged, so the status filters have rows to show. The
            // statuses are drawn at ingest: a page of mixed statuses costs perch more counter
            // updates than a real sync page (all pending), so the ingest ratios err against perch.
            // (Triaging afterwards through `set_status` would be more realistic, but hundreds of
            // thousands of rewrites in one burst trip a sled 0.34.7 deadlock; see the report.)
            let status = match rng.random_range(0..100) {
                0..70 => MentionStatus::Pending,
                70..90 => MentionStatus::Replied,
                90..99 => MentionStatus::Ignored,
                _ => MentionStatus::Error,
            };
            let timestamp = perch::domain::snowflake_time(tweet).unwrap_or_default();
            Mention {
                id: uuid::Uuid::from_u64_pair(SEED, i),
                tweet_id: tweet.to_string(),
                timestamp,
                text,
                sender: Sender {
                    twitter_id: Some(format!("{}", 10_000_000 + sender)),
                    username: Some(format!("user_{sender}")),
                    display_name: Some(format!("User {sender}")),
                    profile_image_url: Some(format!(
                        "https://pbs.twimg.com/profile_images/{sender}/a_normal.jpg"
                    )),
                },
                sent_to: SentTo::account(account),
                status,
                public_response: None,
                dm_response: None,
                conversation_id: Some(tweet.to_string()),
                referenced_posts: Vec::new(),
                error_message: None,
                created_at: timestamp,
                updated_at: timestamp,
            }
        })
        .collect()
}

// ---- one size -------------------------------------------------------------------------------

#[derive(Serialize, Debug)]
struct SizeResult {
    mentions: u64,
    accounts: u32,
    ingest: Ingest,
    open: Open,
    keys: Option<KeyFigures>,
    memory: Memory,
    disk: Disk,
    counts: Counts,
    /// With `--import` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    import: Option<ImportFigures>,
    /// With `--rest` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    rest: Option<rest::RestFigures>,
    /// With `--service` only: the keys through a running service.
    #[serde(skip_serializing_if = "Option::is_none")]
    through_service: Option<ServiceFigures>,
    /// With `--postgres` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    postgres: Option<postgres::PgFigures>,
}

/// `--service`: the same key presses with the dashboard reading through a perch service over its
/// Unix socket (target: every key p99 ≤ 4 ms at 1M).
#[derive(Serialize, Deserialize, Debug, Clone)]
struct ServiceFigures {
    keys: KeyFigures,
    /// The service's target for every key's p99 (ms).
    target_p99_ms: f64,
}

/// Runs the keys through a service, in a fresh process (see the `app-service` child).
fn bench_through_service(dir: &Path, m: u32) -> anyhow::Result<ServiceFigures> {
    beat();
    let (_, report) = spawn_child("app-service", &dir.join("perch"), m)?;
    let keys: KeyFigures = serde_json::from_value(report["keys"].clone())
        .map_err(|e| anyhow::anyhow!("the service child reported no keys ({e}): {report}"))?;
    Ok(ServiceFigures {
        keys,
        target_p99_ms: 4.0,
    })
}

#[derive(Serialize, Debug)]
struct Ingest {
    perch_per_sec: f64,
    sled_same_keys_per_sec: f64,
    sled_records_only_per_sec: f64,
    /// perch ÷ plain sled writing the same keys (target ≥ 0.8).
    ratio_same_keys: f64,
    /// perch ÷ plain sled writing the records alone (target ≥ 0.25).
    ratio_records_only: f64,
    /// The share of perch's ingest time spent encoding records (timed on the same pages
    /// outside `commit_page`, which does the same work). Diagnostic for the same-keys ratio.
    encoding_share_of_perch: f64,
    /// How many times the store was built for these figures (small N only).
    repetitions: u64,
    /// Median time to write one page of 100 (µs): perch, plain sled same keys, records alone.
    /// Beside the totals above, these show the steady cost without background-flush outliers.
    median_page_us: [f64; 3],
}

#[derive(Default)]
struct IngestTimes {
    perch: Duration,
    same_keys: Duration,
    records: Duration,
    /// Encoding the pages' records (bincode), timed separately.
    encoding: Duration,
    /// The perch store's size on disk right after its last page, before any explicit flush.
    bytes_before_flush: u64,
    /// Per-page write times (µs) of perch, same keys, records alone.
    page_us: [Vec<f64>; 3],
}

/// Builds the perch store and the two plain-sled baselines once, page by page in turn so that all
/// three see the same machine load, and returns the time each spent writing.
fn ingest_once(
    perch_dir: &Path,
    same_keys_dir: &Path,
    records_dir: &Path,
    accounts: &[Account],
    n: u64,
) -> anyhow::Result<IngestTimes> {
    let store = Store::open(perch_dir)?;
    for a in accounts {
        store.put_account(a)?;
    }
    let same_keys = sled::open(same_keys_dir)?;
    let records = sled::open(records_dir)?;
    let mut rng = ChaCha8Rng::seed_from_u64(SEED);
    let mut times = IngestTimes::default();
    let pages = n.div_ceil(PAGE as u64);
    for p in 0..pages {
        let page = make_page(&mut rng, accounts, p, n);
        let account = page[0].sent_to.account_id;
        let cursor = page.iter().map(|m| m.tweet_id_u64()).max();
        // The baselines get perch's bytes ready-made (encoding is perch's cost, not sled's);
        // their time is what plain sled spends writing them: filling a Batch and applying it.
        let mut same_entries = Vec::with_capacity(2 * page.len());
        let mut record_entries = Vec::with_capacity(page.len());
        // How long encoding this page takes (perch does the same inside `commit_page`): the
        // part of perch's time that the baselines, given ready-made bytes, do not spend.
        let encoding = Instant::now();
        for mention in &page {
            let [record, index] = mention_entries(mention)?;
            record_entries.push(record.clone());
            same_entries.push(record);
            same_entries.push(index);
        }
        times.encoding += encoding.elapsed();
        // Who writes first changes every page, so no writer always meets a warm (or a cold) CPU.
        let mut same_entries = Some(same_entries);
        let mut record_entries = Some(record_entries);
        for turn in 0..3 {
            match (p + turn) % 3 {
                0 => {
                    let t = Instant::now();
                    store.commit_page(account, &page, cursor)?;
                    times.perch += t.elapsed();
                    times.page_us[0].push(t.elapsed().as_secs_f64() * 1e6);
                }
                1 => {
                    let t = Instant::now();
                    let mut batch = sled::Batch::default();
                    for (k, v) in same_entries.take().unwrap_or_default() {
                        batch.insert(k, v);
                    }
                    same_keys.apply_batch(batch)?;
                    times.same_keys += t.elapsed();
                    times.page_us[1].push(t.elapsed().as_secs_f64() * 1e6);
                }
                _ => {
                    let t = Instant::now();
                    let mut batch = sled::Batch::default();
                    for (k, v) in record_entries.take().unwrap_or_default() {
                        batch.insert(k, v);
                    }
                    records.apply_batch(batch)?;
                    times.records += t.elapsed();
                    times.page_us[2].push(t.elapsed().as_secs_f64() * 1e6);
                }
            }
        }
        beat();
    }
    times.bytes_before_flush = dir_bytes(perch_dir);
    Ok(times)
}

#[derive(Serialize, Debug)]
struct Open {
    /// Medians over the runs, wall time from spawning a fresh process. Plain sled: until
    /// `sled::open` of the store's directory returned.
    sled_open_ms: f64,
    /// perch: until `Store::open` returned (measured inside the child from its `main`).
    perch_store_open_ms: f64,
    /// perch: until the first frame was drawn: the loading frame `tui::run_after` draws before
    /// opening the store (`ui::draw_loading` into a 120x40 TestBackend).
    first_frame_ms: f64,
    /// perch: until the first frame that shows mentions (the loading frame comes before it, drawn
    /// before the store is opened).
    first_frame_with_mentions_ms: f64,
    /// first frame with mentions ÷ plain sled's open (target ≤ 1.2 at N = 1M).
    ratio_first_frame_with_mentions_vs_sled_open: f64,
    runs: usize,
}

#[derive(Serialize, Debug)]
struct Memory {
    sled_rss_after_open_mb: f64,
    /// Peak RSS of a fresh process that opened the store, drew the first frame, and then ran
    /// every key of section (3) and the store-level browse below.
    perch_peak_rss_browsing_mb: f64,
    /// perch's peak − sled's RSS after open (target ≤ 64 MB).
    over_sled_mb: f64,
    /// Store-level page reads while browsing (40 rows each): not key-to-frame, but its floor.
    page_read_p50_us: f64,
    page_read_p99_us: f64,
    /// `Store::search_page` alone for the first screen of `RARE_WORD` hits.
    search_first_screen_ms: f64,
}

#[derive(Serialize, Debug)]
struct Disk {
    bytes_per_mention_after_ingest: f64,
    bytes_per_mention_after_flush: f64,
}

#[derive(Serialize, Debug)]
struct Counts {
    /// One account's stats (5 status counters, 30 daily counters, first seen).
    stats_p50_us: f64,
    stats_p99_us: f64,
}

/// Section (3), key to frame, measured in the browsing child (see `measure_keys`).
#[derive(Serialize, Deserialize, Debug, Clone)]
struct KeyFigure {
    key: String,
    presses: usize,
    p50_ms: f64,
    p99_ms: f64,
    /// p99 of (wall − time spent waiting for a CPU): the press's own cost on a machine that is
    /// not overloaded. Diagnostic; the target is on `p99_ms`.
    #[serde(default)]
    p99_without_run_queue_ms: f64,
    /// The p99 target for this key (ms).
    target_p99_ms: f64,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
struct KeyFigures {
    keys: Vec<KeyFigure>,
    /// How the search figure was taken (the search UI may not be on this branch yet).
    search_note: String,
}

fn bench_size(dir: &Path, n: u64, m: u32) -> anyhow::Result<SizeResult> {
    let perch_dir = dir.join("perch");
    let same_keys_dir = dir.join("sled-same-keys");
    let records_dir = dir.join("sled-records");
    let accounts = bench_accounts(m);

    // (1) Ingest: perch's commit path and the two plain-sled baselines, page by page in turn so
    // that all three see the same machine load.
    // Small stores ingest in milliseconds, where one background fsync decides the ratio: they
    // are built several times over (into fresh directories) and the times summed.
    let reps = (50_000 / n.max(1)).clamp(1, 20);
    let mut totals = IngestTimes::default();
    for _ in 0..reps {
        for d in [&perch_dir, &same_keys_dir, &records_dir] {
            if d.exists() {
                std::fs::remove_dir_all(d)?;
            }
        }
        let t = ingest_once(&perch_dir, &same_keys_dir, &records_dir, &accounts, n)?;
        totals.perch += t.perch;
        totals.same_keys += t.same_keys;
        totals.records += t.records;
        totals.encoding += t.encoding;
        totals.bytes_before_flush = t.bytes_before_flush;
        for (all, one) in totals.page_us.iter_mut().zip(t.page_us) {
            all.extend(one);
        }
    }
    // The baselines have served; only the perch store is measured from here on (and big
    // stores must not pile up on disk).
    for d in [&same_keys_dir, &records_dir] {
        std::fs::remove_dir_all(d)?;
    }
    let ingest = {
        let rate = |d: Duration| (n * reps) as f64 / d.as_secs_f64().max(1e-9);
        let secs = |d: Duration| d.as_secs_f64().max(1e-9);
        Ingest {
            perch_per_sec: rate(totals.perch),
            sled_same_keys_per_sec: rate(totals.same_keys),
            sled_records_only_per_sec: rate(totals.records),
            ratio_same_keys: secs(totals.same_keys) / secs(totals.perch),
            ratio_records_only: secs(totals.records) / secs(totals.perch),
            encoding_share_of_perch: secs(totals.encoding) / secs(totals.perch),
            repetitions: reps,
            median_page_us: [
                median(&mut totals.page_us[0]),
                median(&mut totals.page_us[1]),
                median(&mut totals.page_us[2]),
            ],
        }
    };

    // (5) Disk, then (6) counts, on the store as ingest left it.
    let disk = {
        beat();
        let after_ingest = totals.bytes_before_flush as f64 / n as f64;
        let store = Store::open(&perch_dir)?;
        store.flush()?;
        let after_flush = dir_bytes(&perch_dir) as f64 / n as f64;
        Disk {
            bytes_per_mention_after_ingest: after_ingest,
            bytes_per_mention_after_flush: after_flush,
        }
    };
    let counts = {
        let store = Store::open(&perch_dir)?;
        let account = accounts[0].id;
        let today = chrono::NaiveDate::from_ymd_opt(2025, 12, 31).unwrap_or_default();
        let mut samples = Vec::with_capacity(1000);
        for _ in 0..1000 {
            let t = Instant::now();
            for status in MentionStatus::ALL {
                std::hint::black_box(store.count(&FeedFilter {
                    account: Some(account),
                    status: Some(status),
                })?);
            }
            std::hint::black_box(store.daily_counts(account, today, 30)?);
            std::hint::black_box(store.first_seen(account)?);
            samples.push(t.elapsed().as_secs_f64() * 1e6);
        }
        beat();
        Counts {
            stats_p50_us: percentile(&mut samples, 50.0),
            stats_p99_us: percentile(&mut samples, 99.0),
        }
    };

    // (2) Open, in fresh processes alternating sled and perch; then (3) keys and (4) memory in
    // one more fresh perch process that browses.
    const RUNS: usize = 3;
    let mut sled_open = Vec::new();
    let mut store_open = Vec::new();
    let mut first_frame = Vec::new();
    let mut with_mentions = Vec::new();
    let mut sled_rss = Vec::new();
    for _ in 0..RUNS {
        beat();
        let (marks, report) = spawn_child("sled", &perch_dir, m)?;
        sled_open.push(mark(&marks, "OPEN")?);
        sled_rss.push(report["rss_kb"].as_f64().unwrap_or(0.0) / 1024.0);
        let (marks, report) = spawn_child("app", &perch_dir, m)?;
        first_frame.push(mark(&marks, "FRAME")?);
        with_mentions.push(mark(&marks, "MENTIONS")?);
        store_open.push(report["store_open_ms"].as_f64().unwrap_or(0.0));
    }
    let sled_open_ms = median(&mut sled_open);
    let with_mentions_ms = median(&mut with_mentions);
    let open = Open {
        sled_open_ms,
        perch_store_open_ms: median(&mut store_open),
        first_frame_ms: median(&mut first_frame),
        first_frame_with_mentions_ms: with_mentions_ms,
        ratio_first_frame_with_mentions_vs_sled_open: with_mentions_ms / sled_open_ms.max(1e-9),
        runs: RUNS,
    };
    beat();
    let (_, browsed) = spawn_child("app-browse", &perch_dir, m)?;
    let keys: Option<KeyFigures> = serde_json::from_value(browsed["keys"].clone()).ok();
    let sled_rss_mb = median(&mut sled_rss);
    let peak = browsed["peak_rss_kb"].as_f64().unwrap_or(0.0) / 1024.0;
    let memory = Memory {
        sled_rss_after_open_mb: sled_rss_mb,
        perch_peak_rss_browsing_mb: peak,
        over_sled_mb: peak - sled_rss_mb,
        page_read_p50_us: browsed["page_p50_us"].as_f64().unwrap_or(0.0),
        page_read_p99_us: browsed["page_p99_us"].as_f64().unwrap_or(0.0),
        search_first_screen_ms: browsed["search_ms"].as_f64().unwrap_or(0.0),
    };
    Ok(SizeResult {
        mentions: n,
        accounts: m,
        ingest,
        open,
        keys,
        memory,
        disk,
        counts,
        import: None,
        rest: None,
        through_service: None,
        postgres: None,
    })
}

// ---- (7) import (with --import) ------------------------------------------------------------

#[derive(Serialize, Debug)]
struct ImportFigures {
    messages: u64,
    /// Size of the generated mongoexport file.
    file_mb: f64,
    /// `interop::import_mongo` from opening the files to the last flush (parsing included).
    import_per_sec: f64,
    /// perch's own ingest (`commit_page`, pages of 100) of the same mentions, alone in a fresh
    /// process just before the import's.
    ingest_per_sec: f64,
    /// import ÷ ingest in that process (target ≥ 0.8).
    ratio_vs_ingest: f64,
    /// import ÷ section (1)'s perch ingest figure of this run.
    ratio_vs_ingest_of_section_1: f64,
    /// Peak RSS of the import's process (it does nothing else).
    peak_rss_mb: f64,
    /// RSS of that process before the import started.
    rss_before_mb: f64,
    /// Peak RSS of the ingest's process (sled's own memory under a burst of writes, for scale).
    ingest_peak_rss_mb: f64,
    /// Mentions per atomic import batch.
    batch: usize,
    /// CPU time (all threads) ÷ wall time of the import, and of the ingest: below 1 on an idle
    /// machine means waiting (I/O, locks); diagnostic.
    import_cpu_share: f64,
    ingest_cpu_share: f64,
}

/// Writes the N mentions of the benchmark as the old tracker's export (accounts.json and
/// messages.json, relaxed Extended JSON lines, what `perch export mongo` writes), then imports
/// them in a fresh process.
fn bench_import(
    dir: &Path,
    n: u64,
    m: u32,
    batch: usize,
    ingest_per_sec: f64,
    keep: bool,
) -> anyhow::Result<ImportFigures> {
    use std::io::Write;
    let src = dir.join("import-src");
    std::fs::create_dir_all(&src)?;
    let accounts = bench_accounts(m);
    let mut out = std::io::BufWriter::new(std::fs::File::create(src.join("accounts.json"))?);
    for a in &accounts {
        let doc = perch::interop::mongo::account_document(a, None);
        serde_json::to_writer(&mut out, &bson::Bson::Document(doc).into_relaxed_extjson())?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    let mut out = std::io::BufWriter::new(std::fs::File::create(src.join("messages.json"))?);
    let mut rng = ChaCha8Rng::seed_from_u64(SEED);
    for p in 0..n.div_ceil(PAGE as u64) {
        for mention in make_page(&mut rng, &accounts, p, n) {
            let doc = perch::interop::mongo::message_document(&mention);
            serde_json::to_writer(&mut out, &bson::Bson::Document(doc).into_relaxed_extjson())?;
            out.write_all(b"\n")?;
        }
        if p % 100 == 0 {
            beat();
        }
    }
    out.flush()?;
    drop(out);
    let file_mb = std::fs::metadata(src.join("messages.json"))?.len() as f64 / 1e6;
    // Two fresh processes: perch's ingest of the same mentions, then the import alone (so its
    // peak RSS is its own).
    let args = ["--mentions", &n.to_string(), "--batch", &batch.to_string()];
    let (_, ingest) = spawn_child_with("import-ingest", dir, m, &args)?;
    let (_, mut report) = spawn_child_with("import", dir, m, &args)?;
    report["ingest_per_sec"] = ingest["ingest_per_sec"].clone();
    report["ingest_cpu_secs"] = ingest["ingest_cpu_secs"].clone();
    report["ingest_peak_rss_kb"] = ingest["peak_rss_kb"].clone();
    // With `--keep` the files stay too, so the import child can be rerun (or profiled) alone:
    // `perch-bench child import DIR/nN --mentions N`.
    if !keep {
        std::fs::remove_dir_all(&src)?;
    }
    let get = |k: &str| report[k].as_f64().unwrap_or(0.0);
    let import_per_sec = get("import_per_sec");
    Ok(ImportFigures {
        messages: report["messages"].as_u64().unwrap_or(0),
        file_mb,
        import_per_sec,
        ingest_per_sec: get("ingest_per_sec"),
        ratio_vs_ingest: import_per_sec / get("ingest_per_sec").max(1e-9),
        ratio_vs_ingest_of_section_1: import_per_sec / ingest_per_sec.max(1e-9),
        peak_rss_mb: get("peak_rss_kb") / 1024.0,
        rss_before_mb: get("rss_before_kb") / 1024.0,
        ingest_peak_rss_mb: get("ingest_peak_rss_kb") / 1024.0,
        batch,
        import_cpu_share: get("import_cpu_secs") * import_per_sec / (n as f64).max(1.0),
        ingest_cpu_share: get("ingest_cpu_secs") * get("ingest_per_sec") / (n as f64).max(1.0),
    })
}

/// The `import` child: perch's ingest of the N mentions (timed as section 1 times it), then the
/// import of the files `bench_import` wrote, each into a fresh store.
fn import_child(dir: &Path, m: u32, n: u64, batch: usize, ingest_only: bool) -> anyhow::Result<()> {
    use std::io::Write;
    let accounts = bench_accounts(m);
    let ingest_dir = dir.join("import-ingest");
    let import_dir = dir.join("import-store");
    for d in [&ingest_dir, &import_dir] {
        if d.exists() {
            std::fs::remove_dir_all(d)?;
        }
    }
    let ingest = if !ingest_only {
        (Duration::ZERO, 0.0)
    } else {
        let store = Store::open(&ingest_dir)?;
        for a in &accounts {
            store.put_account(a)?;
        }
        let mut rng = ChaCha8Rng::seed_from_u64(SEED);
        let mut spent = Duration::ZERO;
        let mut cpu = 0.0;
        for p in 0..n.div_ceil(PAGE as u64) {
            let page = make_page(&mut rng, &accounts, p, n);
            let account = page[0].sent_to.account_id;
            let cursor = page.iter().map(|m| m.tweet_id_u64()).max();
            let t = Instant::now();
            let c = cpu_secs();
            store.commit_page(account, &page, cursor)?;
            cpu += cpu_secs() - c;
            spent += t.elapsed();
        }
        let t = Instant::now();
        let c = cpu_secs();
        store.flush()?;
        cpu += cpu_secs() - c;
        spent += t.elapsed();
        (spent, cpu)
    };
    let (ingest, ingest_cpu) = ingest;
    if ingest_dir.exists() {
        std::fs::remove_dir_all(&ingest_dir)?;
    }
    if ingest_only {
        println!(
            "{}",
            json!({
                "ingest_per_sec": n as f64 / ingest.as_secs_f64().max(1e-9),
                "ingest_cpu_secs": ingest_cpu,
                "peak_rss_kb": proc_status_kb("VmHWM"),
            })
        );
        return Ok(());
    }
    let rss_before_kb = proc_status_kb("VmRSS");
    let src = dir.join("import-src");
    let store = Store::open(&import_dir)?;
    let t = Instant::now();
    let c = cpu_secs();
    let report = perch::interop::import_mongo(
        &store,
        &perch::interop::MongoSources {
            accounts: Some(src.join("accounts.json")),
            users: None,
            messages: src.join("messages.json"),
        },
        perch::interop::ImportOptions {
            dry_run: false,
            batch,
        },
        Utc::now(),
        &mut perch::interop::Quiet,
    )?;
    let import = t.elapsed();
    let import_cpu = cpu_secs() - c;
    let peak_rss_kb = proc_status_kb("VmHWM");
    anyhow::ensure!(
        report.skipped == 0 && report.messages.added == n,
        "the import did not import every message: {}",
        report.summary()
    );
    drop(store);
    std::fs::remove_dir_all(&import_dir)?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{}",
        json!({
            "messages": report.messages.added,
            "import_per_sec": n as f64 / import.as_secs_f64().max(1e-9),
            "peak_rss_kb": peak_rss_kb,
            "rss_before_kb": rss_before_kb,
            "import_cpu_secs": import_cpu,
        })
    )?;
    Ok(())
}

// ---- (3) key to frame -----------------------------------------------------------------------

/// Presses timed per key (the issue asks for at least 1 000).
const PRESSES: usize = 1_000;
/// The screen the figures are taken on (the issue's 120x40).
const SCREEN: (u16, u16) = (120, 40);

/// The app as the TUI loop runs it, minus the real terminal: the state, the store, and a
/// TestBackend to draw into.
/// What the app reads and writes through: the store itself, or a service connection.
trait Source: perch::app::FeedSource + perch::app::StoreWrites {}
impl<T: perch::app::FeedSource + perch::app::StoreWrites> Source for T {}

struct App {
    state: AppState,
    store: std::sync::Arc<dyn Source>,
    terminal: Terminal<TestBackend>,
    theme: Theme,
    /// Steps of long jobs (search, bulk triage) the loop runs when no key waits.
    idle: std::collections::VecDeque<Job>,
}

impl App {
    /// What `tui::run` does before its first draw: a fresh state, then the `Resize` and
    /// `StoreChanged` it queues first, then one draw.
    fn start(store: std::sync::Arc<dyn Source>) -> anyhow::Result<App> {
        let mut app = App {
            state: AppState::new(None),
            store,
            terminal: Terminal::new(TestBackend::new(SCREEN.0, SCREEN.1))?,
            theme: Theme::default(),
            idle: Default::default(),
        };
        app.apply(Action::Resize {
            width: SCREEN.0,
            height: SCREEN.1,
        });
        app.apply(Action::StoreChanged);
        app.draw()?;
        Ok(app)
    }

    /// `app::update`, then the store effects it asks for and the actions they feed back, as the
    /// TUI loop runs them.
    fn apply(&mut self, action: Action) {
        let mut pending = std::collections::VecDeque::from([action]);
        while let Some(action) = pending.pop_front() {
            for effect in app::update(&mut self.state, action, &*self.store) {
                if let Effect::Background(job) = effect {
                    self.idle.push_back(job);
                } else if let Some(follow_up) = perch::tui::run_store_effect(&*self.store, &effect)
                {
                    pending.push_back(follow_up);
                }
            }
        }
    }

    fn draw(&mut self) -> anyhow::Result<()> {
        let (state, theme) = (&self.state, &self.theme);
        self.terminal
            .draw(|f| perch::ui::draw(f, state, theme, Utc::now()))?;
        self.state.dirty = false;
        Ok(())
    }

    /// One key press to its finished frame.
    fn press(&mut self, key: KeyEvent) -> anyhow::Result<Sample> {
        timed(|| {
            self.apply(Action::key_seeing(key, &self.state));
            self.draw()
        })
    }

    /// Runs queued job steps, as the loop does when no key waits, until `done` holds or no step
    /// is left.
    fn run_idle_until(&mut self, done: impl Fn(&AppState) -> bool) {
        while !done(&self.state) {
            let Some(job) = self.idle.pop_front() else {
                return;
            };
            self.apply(Action::Continue(job));
        }
    }

    fn at_last_row(&self) -> bool {
        let feed = &self.state.feed;
        feed.at_end && feed.selected + 1 >= feed.rows.len()
    }

    /// The screen shows an error in the status bar (a store read failed).
    fn error_shown(&self) -> Option<String> {
        self.state
            .notice
            .as_ref()
            .filter(|n| n.kind == perch::app::NoticeKind::Error)
            .map(|n| n.text.clone())
    }
}

fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

fn ch(c: char) -> KeyEvent {
    let modifiers = if c.is_ascii_uppercase() {
        KeyModifiers::SHIFT
    } else {
        KeyModifiers::NONE
    };
    KeyEvent::new(KeyCode::Char(c), modifiers)
}

/// One timed press. On this shared 2-core machine a press is often preempted: `queued_ms` is
/// the time the thread spent runnable but waiting for a CPU (from /proc/thread-self/schedstat),
/// so `wall_ms - queued_ms` is what the press costs when the machine is not overloaded.
#[derive(Clone, Copy, Debug)]
struct Sample {
    wall_ms: f64,
    queued_ms: f64,
}

/// Runs `f` and times it, wall clock and run-queue wait.
fn timed(f: impl FnOnce() -> anyhow::Result<()>) -> anyhow::Result<Sample> {
    let queued_before = run_queue_wait_ns();
    let t = Instant::now();
    f()?;
    let wall_ms = t.elapsed().as_secs_f64() * 1e3;
    let queued_ms = match (queued_before, run_queue_wait_ns()) {
        (Some(a), Some(b)) => b.saturating_sub(a) as f64 / 1e6,
        _ => 0.0,
    };
    Ok(Sample { wall_ms, queued_ms })
}

/// Nanoseconds this thread has spent waiting on a run queue (Linux schedstat; None elsewhere).
fn run_queue_wait_ns() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().nth(1)?.parse().ok()
}

/// Collects the samples of one key and turns them into its figure.
fn figure(name: &str, samples: Vec<Sample>, target_p99_ms: f64) -> KeyFigure {
    let mut wall: Vec<f64> = samples.iter().map(|s| s.wall_ms).collect();
    let mut unqueued: Vec<f64> = samples
        .iter()
        .map(|s| (s.wall_ms - s.queued_ms).max(0.0))
        .collect();
    KeyFigure {
        key: name.to_string(),
        presses: samples.len(),
        p50_ms: percentile(&mut wall, 50.0),
        p99_ms: percentile(&mut wall, 99.0),
        p99_without_run_queue_ms: percentile(&mut unqueued, 99.0),
        target_p99_ms,
    }
}

/// Times every key of issue 6 section (3), each over `PRESSES` presses, key event to finished
/// frame. Untimed presses put the app back where a timed press does work (e.g. `g` when the
/// selection has reached the last row).
fn measure_keys(app: &mut App) -> anyhow::Result<KeyFigures> {
    let mut keys = Vec::new();
    app.state.focus = Pane::Feed;

    // Scroll down, one row at a time.
    let mut samples = Vec::with_capacity(PRESSES);
    while samples.len() < PRESSES {
        if app.at_last_row() {
            app.press(ch('g'))?;
        }
        samples.push(app.press(ch('j'))?);
        beat_every(samples.len());
    }
    keys.push(figure("scroll down (j)", samples, 16.0));

    // Page down.
    app.press(ch('g'))?;
    let mut samples = Vec::with_capacity(PRESSES);
    while samples.len() < PRESSES {
        if app.at_last_row() {
            app.press(ch('g'))?;
        }
        samples.push(app.press(key(KeyCode::PageDown))?);
        beat_every(samples.len());
    }
    keys.push(figure("page down (PgDn)", samples, 16.0));

    // Jump to the end and back to the top, alternately (so each press moves).
    let (mut end, mut top) = (Vec::with_capacity(PRESSES), Vec::with_capacity(PRESSES));
    while end.len() < PRESSES {
        end.push(app.press(ch('G'))?);
        top.push(app.press(ch('g'))?);
        beat_every(end.len());
    }
    keys.push(figure("jump to end (G)", end, 16.0));
    keys.push(figure("jump to top (g)", top, 16.0));

    // Switch the account filter: move the accounts pane's selection down to the last account,
    // then up to "All accounts", and again.
    app.state.focus = Pane::Accounts;
    let last = app.state.accounts.len();
    anyhow::ensure!(last > 0, "the accounts pane lists no accounts");
    let mut samples = Vec::with_capacity(PRESSES);
    let mut down = true;
    while samples.len() < PRESSES {
        if app.state.account_selected >= last {
            down = false;
        } else if app.state.account_selected == 0 {
            down = true;
        }
        samples.push(app.press(ch(if down { 'j' } else { 'k' }))?);
        beat_every(samples.len());
    }
    keys.push(figure("switch account (j/k, accounts)", samples, 16.0));
    while app.state.account_selected > 0 {
        app.press(ch('k'))?;
    }
    app.state.focus = Pane::Feed;

    // Switch the status filter (f cycles all → pending → replied → ignored → error → all).
    let mut samples = Vec::with_capacity(PRESSES);
    while samples.len() < PRESSES {
        samples.push(app.press(ch('f'))?);
        beat_every(samples.len());
    }
    keys.push(figure("switch status filter (f)", samples, 16.0));
    while app.state.status_filter != StatusFilter::All {
        app.press(ch('f'))?;
    }

    // Search for a word in 1% of posts, to the first screen of results.
    let [each_key, first_screen] = measure_search(app)?;
    keys.push(figure("search: each key of /zeppelin", each_key, 16.0));
    keys.push(figure(
        "search 1%: last key to 1st screen",
        first_screen,
        50.0,
    ));
    let search_note = format!(
        "search typed through the / search UI, {} keys per round; the first screen includes the \
         background steps the loop runs until the feed is full of hits",
        RARE_WORD.len() + 2
    );

    // Open the stats view (s), and close it (Esc).
    let (mut open, mut close) = (Vec::with_capacity(PRESSES), Vec::with_capacity(PRESSES));
    while open.len() < PRESSES {
        open.push(app.press(ch('s'))?);
        anyhow::ensure!(
            matches!(app.state.mode, Mode::Account(_)),
            "s did not open the stats view ({:?})",
            app.error_shown()
        );
        close.push(app.press(key(KeyCode::Esc))?);
        beat_every(open.len());
    }
    keys.push(figure("open stats view (s)", open, 16.0));
    keys.push(figure("close stats view (Esc)", close, 16.0));

    if let Some(e) = app.error_shown() {
        anyhow::bail!("the app showed an error while browsing: {e}");
    }
    Ok(KeyFigures { keys, search_note })
}

/// The search figures, through the `/` search UI: `/`, then the word typed a key at a time (each
/// key re-runs the search, a bounded scan newest first), then the background steps the loop
/// runs until the feed shows a full screen of hits (or the search has seen everything). Times
/// each typed key to its frame, and the last key to the first full screen; `Esc` (untimed)
/// clears the search and drops its remaining background steps before the next round.
fn measure_search(app: &mut App) -> anyhow::Result<[Vec<Sample>; 2]> {
    let screen_full = |s: &AppState| {
        s.feed.rows.len() >= s.feed.height.max(1) || (s.feed.at_end && !s.feed.searching())
    };
    let mut each_key = Vec::with_capacity(PRESSES * RARE_WORD.len());
    let mut first_screen = Vec::with_capacity(PRESSES);
    while first_screen.len() < PRESSES {
        app.press(ch('/'))?;
        anyhow::ensure!(
            matches!(app.state.mode, Mode::Search),
            "/ did not open the search"
        );
        let (last, rest) = RARE_WORD
            .as_bytes()
            .split_last()
            .ok_or_else(|| anyhow::anyhow!("empty search word"))?;
        for &c in rest {
            each_key.push(app.press(ch(char::from(c)))?);
        }
        let last = timed(|| {
            app.apply(Action::key_seeing(ch(char::from(*last)), &app.state));
            app.run_idle_until(screen_full);
            app.draw()
        })?;
        each_key.push(last);
        first_screen.push(last);
        anyhow::ensure!(
            !app.state.feed.rows.is_empty(),
            "the search for {RARE_WORD:?} showed nothing"
        );
        app.press(key(KeyCode::Esc))?;
        app.idle.clear();
        beat_every(first_screen.len());
    }
    Ok([each_key, first_screen])
}

fn beat_every(done: usize) {
    if done.is_multiple_of(50) {
        beat();
    }
}

// ---- fresh-process children -----------------------------------------------------------------

/// The wall time (ms) at which a child printed `name`.
fn mark(marks: &HashMap<String, f64>, name: &str) -> anyhow::Result<f64> {
    marks
        .get(name)
        .copied()
        .ok_or_else(|| anyhow::anyhow!("the child never reported {name}"))
}

/// Runs this binary's `child` subcommand; returns the wall time (ms) from spawn at which each
/// marker line (`OPEN`, `FRAME`, `MENTIONS`) arrived, and the child's JSON report.
fn spawn_child(
    what: &str,
    dir: &Path,
    m: u32,
) -> anyhow::Result<(HashMap<String, f64>, serde_json::Value)> {
    spawn_child_with(what, dir, m, &[])
}

fn spawn_child_with(
    what: &str,
    dir: &Path,
    m: u32,
    extra: &[&str],
) -> anyhow::Result<(HashMap<String, f64>, serde_json::Value)> {
    let exe = std::env::current_exe()?;
    let started = Instant::now();
    let mut child = Command::new(exe)
        .args(["child", what])
        .arg(dir)
        .args(["--accounts", &m.to_string()])
        .args(extra)
        .stdout(Stdio::piped())
        .spawn()?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| anyhow::anyhow!("child has no stdout"))?;
    let mut marks = HashMap::new();
    let mut report = serde_json::Value::Null;
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
            report = v;
        } else {
            beat();
            marks
                .entry(line.trim().to_string())
                .or_insert_with(|| started.elapsed().as_secs_f64() * 1e3);
        }
    }
    let status = child.wait()?;
    anyhow::ensure!(status.success(), "the {what} child failed: {status}");
    Ok((marks, report))
}

fn run_child(what: &str, dir: &Path, m: u32, started: Instant) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let mut say = |line: &str| -> std::io::Result<()> {
        writeln!(out, "{line}")?;
        out.flush()
    };
    match what {
        "sled" => {
            let db = sled::open(dir)?;
            say("OPEN")?;
            let open_ms = started.elapsed().as_secs_f64() * 1e3;
            say(&json!({ "open_ms": open_ms, "rss_kb": proc_status_kb("VmRSS"), "peak_rss_kb": proc_status_kb("VmHWM") }).to_string())?;
            drop(db);
        }
        // Diagnostic: plain sled opened with perch's cache size, to tell sled's own cost of that
        // setting apart from perch's work at open.
        "sled-perch-cache" => {
            let db = sled::Config::new()
                .path(dir)
                .cache_capacity(perch::store::CACHE_CAPACITY)
                .open()?;
            say("OPEN")?;
            let open_ms = started.elapsed().as_secs_f64() * 1e3;
            say(&json!({ "open_ms": open_ms, "rss_kb": proc_status_kb("VmRSS") }).to_string())?;
            drop(db);
        }
        // The dashboard's start: the store, then the app's first frame; "app-browse" then runs
        // the keys of section (3) and the store-level browse, and reports the peak RSS.
        "app" | "app-browse" => {
            // As `perch` does (tui::run_after): a loading frame first, then the store.
            let mut loading = ratatui::Terminal::new(ratatui::backend::TestBackend::new(120, 40))?;
            loading.draw(|f| {
                perch::ui::draw_loading(f, &perch::ui::Theme::default(), "opening the store…")
            })?;
            let first_frame_ms = started.elapsed().as_secs_f64() * 1e3;
            say("FRAME")?;
            let store = Store::open(dir)?;
            let store_open_ms = started.elapsed().as_secs_f64() * 1e3;
            let mut app = App::start(std::sync::Arc::new(store.clone()))?;
            anyhow::ensure!(
                !app.state.feed.rows.is_empty(),
                "the first frame shows no mentions (error: {:?})",
                app.error_shown()
            );
            say("MENTIONS")?;
            let mut report = json!({
                "store_open_ms": store_open_ms,
                "first_frame_ms": first_frame_ms,
            });
            if what == "app-browse" {
                let keys = measure_keys(&mut app)?;
                let (page_p50, page_p99, search_ms) = browse(&store, m)?;
                report["keys"] = serde_json::to_value(keys)?;
                report["page_p50_us"] = json!(page_p50);
                report["page_p99_us"] = json!(page_p99);
                report["search_ms"] = json!(search_ms);
                report["peak_rss_kb"] = json!(proc_status_kb("VmHWM"));
            }
            say(&report.to_string())?;
        }
        // The keys with the app reading through a perch service on this store, over its socket.
        "app-service" => {
            let report = service_keys(dir)?;
            say(&report.to_string())?;
        }
        other => anyhow::bail!("unknown child {other}"),
    }
    Ok(())
}

/// Starts a perch service on the store at `dir` (in this process, as `perch serve` would),
/// connects to it as the dashboard does, and times the keys.
fn service_keys(dir: &Path) -> anyhow::Result<serde_json::Value> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let store = Store::open(dir)?;
    let scratch = tempfile::tempdir()?;
    let env: std::collections::BTreeMap<String, String> = [
        (
            "PERCH_CONFIG",
            scratch.path().join("none.toml").display().to_string(),
        ),
        ("PERCH_DATA_DIR", dir.display().to_string()),
        // Nothing listens there: the engine's polls fail at once and do not compete for long.
        ("PERCH_API_BASE", "http://127.0.0.1:9".to_string()),
        ("PERCH_POLL_INTERVAL", "3600".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let config = perch::config::Config::load_from(&env)?;
    let service = runtime.block_on(perch::service::start(config.clone(), Some(store)))?;
    let socket = service.paths.socket.clone();
    let (link, mut incoming) = perch::client::Link::connect(
        perch::client::Endpoint::Socket(socket.clone()),
        config.pricing.clone(),
        None,
    )?;
    // The dashboard's loop would apply these; here they are only drained.
    runtime.spawn(async move { while incoming.recv().await.is_some() {} });
    let mut app = App::start(link.clone())?;
    anyhow::ensure!(
        !app.state.feed.rows.is_empty(),
        "the first frame through the service shows no mentions (error: {:?})",
        app.error_shown()
    );
    let keys = measure_keys(&mut app)?;
    link.close();
    runtime.block_on(service.shutdown());
    Ok(json!({ "keys": keys }))
}

/// What a user does over a long session: page down a long way, jump to the end and page back up,
/// look at each account and status, search. Returns page-read p50/p99 (µs) and the time of the
/// first screen of search results (ms).
fn browse(store: &Store, m: u32) -> anyhow::Result<(f64, f64, f64)> {
    let accounts = bench_accounts(m);
    let mut samples = Vec::new();
    let mut timed = |f: &mut dyn FnMut() -> anyhow::Result<Vec<Mention>>| {
        let t = Instant::now();
        let rows = f()?;
        samples.push(t.elapsed().as_secs_f64() * 1e6);
        anyhow::Ok(rows)
    };
    let all = FeedFilter::default();
    let mut after: Option<FeedPos> = None;
    for _ in 0..1000 {
        let rows = timed(&mut || Ok(store.page_after(&all, after, SCREEN_ROWS)?))?;
        match rows.last() {
            Some(last) => after = Some(FeedPos::from(last)),
            None => break,
        }
    }
    let mut before: Option<FeedPos> = None;
    let end = timed(&mut || Ok(store.page_before(&all, None, SCREEN_ROWS)?))?;
    if let Some(top) = end.first() {
        before = Some(FeedPos::from(top));
    }
    for _ in 0..300 {
        let rows = timed(&mut || Ok(store.page_before(&all, before, SCREEN_ROWS)?))?;
        match rows.first() {
            Some(top) => before = Some(FeedPos::from(top)),
            None => break,
        }
    }
    let mut filters = Vec::new();
    for a in accounts.iter().map(|a| Some(a.id)).chain([None]) {
        for s in MentionStatus::ALL.map(Some).into_iter().chain([None]) {
            filters.push(FeedFilter {
                account: a,
                status: s,
            });
        }
    }
    for _ in 0..5 {
        for f in &filters {
            timed(&mut || Ok(store.page_after(f, None, SCREEN_ROWS)?))?;
        }
    }
    let t = Instant::now();
    let hits = store.search_page(&all, RARE_WORD, None, SCREEN_ROWS, 1_000_000)?;
    let search_ms = t.elapsed().as_secs_f64() * 1e3;
    std::hint::black_box(hits);
    Ok((
        percentile(&mut samples, 50.0),
        percentile(&mut samples, 99.0),
        search_ms,
    ))
}

// ---- measurement helpers --------------------------------------------------------------------

/// CPU time used by the whole process so far (user + system, all threads), in seconds.
fn cpu_secs() -> f64 {
    // SAFETY: getrusage only writes into the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return 0.0;
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

fn proc_status_kb(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0.0)
}

fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(md) if md.is_dir() => dir_bytes(&e.path()),
            Ok(md) => md.len(),
            Err(_) => 0,
        })
        .sum()
}

fn percentile(samples: &mut [f64], p: f64) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    samples.sort_by(|a, b| a.total_cmp(b));
    let idx = ((p / 100.0) * (samples.len() - 1) as f64).round() as usize;
    samples[idx.min(samples.len() - 1)]
}

fn median(samples: &mut [f64]) -> f64 {
    percentile(samples, 50.0)
}

#[derive(Serialize, Debug)]
struct Machine {
    cores: usize,
    memory_mb: u64,
    cpu: String,
}

fn machine_info() -> Machine {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory_mb = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(0, |kb| kb / 1024);
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map_or_else(|| "unknown cpu".to_string(), |s| s.trim().to_string());
    Machine {
        cores,
        memory_mb,
        cpu,
    }
}

fn print_table(r: &SizeResult) {
    let i = &r.ingest;
    let o = &r.open;
    let mem = &r.memory;
    println!();
    println!("N = {} mentions over {} accounts", r.mentions, r.accounts);
    println!("  {:<50} {:>12}  target", "figure", "value");
    let row = |name: &str, value: String, target: &str| {
        println!("  {name:<50} {value:>12}  {target}");
    };
    row(
        "1 ingest, perch (mentions/s)",
        format!("{:.0}", i.perch_per_sec),
        &format!("(store built {}x)", i.repetitions),
    );
    row(
        "  plain sled, same keys (mentions/s)",
        format!("{:.0}", i.sled_same_keys_per_sec),
        "",
    );
    row(
        "  plain sled, records alone (mentions/s)",
        format!("{:.0}", i.sled_records_only_per_sec),
        "",
    );
    row(
        "  ratio vs same keys",
        format!("{:.2}", i.ratio_same_keys),
        ">= 0.8",
    );
    row(
        "  share of perch's time spent encoding",
        format!("{:.2}", i.encoding_share_of_perch),
        "",
    );
    row(
        "  ratio vs records alone",
        format!("{:.2}", i.ratio_records_only),
        ">= 0.25",
    );
    row(
        "2 open, plain sled (ms)",
        format!("{:.1}", o.sled_open_ms),
        "",
    );
    row(
        "  perch Store::open (ms)",
        format!("{:.1}", o.perch_store_open_ms),
        "",
    );
    row(
        "  perch first frame (ms)",
        format!("{:.1}", o.first_frame_ms),
        "<= 50",
    );
    row(
        "  perch first frame with mentions (ms)",
        format!("{:.1}", o.first_frame_with_mentions_ms),
        "",
    );
    row(
        "  ratio with mentions / sled open",
        format!("{:.2}", o.ratio_first_frame_with_mentions_vs_sled_open),
        "<= 1.2 at 1M",
    );
    match &r.keys {
        None => row(
            "3 key to frame",
            "not measured".into(),
            "(browse child failed)",
        ),
        Some(k) => {
            for f in &k.keys {
                row(
                    &format!("3 {} p50/p99 (ms)", f.key),
                    format!("{:.2}/{:.2}", f.p50_ms, f.p99_ms),
                    &format!(
                        "p99 <= {} at 1M   (p99 less CPU wait: {:.2})",
                        f.target_p99_ms, f.p99_without_run_queue_ms
                    ),
                );
            }
            println!("    ({})", k.search_note);
        }
    }
    row(
        "4 plain sled RSS after open (MB)",
        format!("{:.1}", mem.sled_rss_after_open_mb),
        "",
    );
    row(
        "  perch peak RSS browsing (MB)",
        format!("{:.1}", mem.perch_peak_rss_browsing_mb),
        "",
    );
    row(
        "  perch over sled (MB)",
        format!("{:.1}", mem.over_sled_mb),
        "<= 64",
    );
    row(
        "  store page read p50/p99 (us)",
        format!("{:.0}/{:.0}", mem.page_read_p50_us, mem.page_read_p99_us),
        "",
    );
    row(
        "  search first screen, store only (ms)",
        format!("{:.1}", mem.search_first_screen_ms),
        "",
    );
    row(
        "5 disk per mention after ingest (bytes)",
        format!("{:.0}", r.disk.bytes_per_mention_after_ingest),
        "",
    );
    row(
        "  disk per mention after flush (bytes)",
        format!("{:.0}", r.disk.bytes_per_mention_after_flush),
        "<= 1100 at 1M",
    );
    row(
        "6 stats of one account p50/p99 (us)",
        format!("{:.0}/{:.0}", r.counts.stats_p50_us, r.counts.stats_p99_us),
        "independent of N",
    );
    if let Some(rest) = &r.rest {
        row(
            "9 REST GET /api/v1/mentions/?limit=50 p50/p99 (ms)",
            format!("{:.2}/{:.2}", rest.list_p50_ms, rest.list_p99_ms),
            &format!("({} requests, Unix socket)", rest.list_requests),
        );
        row(
            "  page committed -> SSE event p50/p99 (ms)",
            format!("{:.2}/{:.2}", rest.sse_p50_ms, rest.sse_p99_ms),
            "p99 <= 50",
        );
    }
    if let Some(sf) = &r.through_service {
        for f in &sf.keys.keys {
            row(
                &format!("8 via service {} p50/p99 (ms)", f.key),
                format!("{:.2}/{:.2}", f.p50_ms, f.p99_ms),
                &format!(
                    "p99 <= {:.0}   (p99 less CPU wait: {:.2})",
                    sf.target_p99_ms, f.p99_without_run_queue_ms
                ),
            );
        }
    }
    if let Some(im) = &r.import {
        row(
            "7 import mongo (messages/s)",
            format!("{:.0}", im.import_per_sec),
            &format!("({} messages, {:.0} MB file)", im.messages, im.file_mb),
        );
        row(
            "  perch ingest, same process (mentions/s)",
            format!("{:.0}", im.ingest_per_sec),
            "",
        );
        row(
            "  ratio import / ingest",
            format!("{:.2}", im.ratio_vs_ingest),
            ">= 0.8",
        );
        row(
            "  ratio import / section 1 ingest",
            format!("{:.2}", im.ratio_vs_ingest_of_section_1),
            "",
        );
        row(
            "  CPU share of wall, import / ingest",
            format!("{:.2}/{:.2}", im.import_cpu_share, im.ingest_cpu_share),
            &format!("(batches of {})", im.batch),
        );
        row(
            "  import peak RSS (MB)",
            format!("{:.1}", im.peak_rss_mb),
            &format!(
                "(before: {:.1}; ingest's peak: {:.1})",
                im.rss_before_mb, im.ingest_peak_rss_mb
            ),
        );
    }
}
