//! `perch-bench --postgres URL`: the PostgreSQL store (issue 16) beside sled in the same run,
//! through the one `store::Backend` interface both implement. Figures: ingest of the N mentions
//! in pages of 100 on each (and PostgreSQL's rate ÷ sled's), and the feed's page reads on
//! PostgreSQL (the first page of the four orders, a page deep in, a count), p50 and p99, after
//! an `ANALYZE` (as autovacuum would have run on a live database); how long a change one
//! service commits takes to reach another's change listener (LISTEN/NOTIFY); and how long a
//! page the sync leader commits takes to reach an SSE client of a follower service (a real
//! `perch serve` started in this process on the database, following while this run holds the
//! leader lock, its `GET /api/v1/events` read over TCP).
//!
//! The dashboard does not run on a PostgreSQL service yet, so the keys are sled's (README "The
//! PostgreSQL store (in progress)"). `URL` names a server (`postgres://user@host:port`); the
//! run creates its own database there and drops it after.

use std::path::Path;
use std::time::Instant;

use perch::domain::{Account, MentionStatus, TokenKey};
use perch::store::pg::changes::{Change, ChangeListener};
use perch::store::{Backend, FeedFilter, FeedPos, PgStore, Store};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

#[derive(Serialize, Debug)]
pub struct PgFigures {
    pub sled_ingest_per_sec: f64,
    pub postgres_ingest_per_sec: f64,
    /// PostgreSQL's ingest rate ÷ sled's.
    pub ingest_ratio: f64,
    pub reads: Vec<ReadFigure>,
    /// A status change committed by one connection (one service) until another connection's
    /// change listener (another service) hears it: the LISTEN/NOTIFY hop of a change reaching
    /// another service's SSE clients. The service's own SSE hop is in `page_to_follower_sse`.
    pub change_to_other_service: ReadFigure,
    /// A page committed by the leader until a follower service's SSE client has the new
    /// mention's event: the notification, the follower reading the mention from the database,
    /// and its SSE hop over TCP.
    pub page_to_follower_sse: ReadFigure,
    /// The dashboard's keys through a service on the database (the same presses as sled's
    /// figures: every page and count is a read of the team's database through the service).
    pub keys_through_service: super::KeyFigures,
}

#[derive(Serialize, Debug)]
pub struct ReadFigure {
    pub read: String,
    pub samples: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

const READ_SAMPLES: usize = 200;

pub fn bench(dir: &Path, n: u64, accounts: &[Account], server: &str) -> anyhow::Result<PgFigures> {
    let server = server.trim_end_matches('/');
    let name = format!("perch_bench_{}_{n}", std::process::id());
    let mut admin = postgres::Client::connect(&format!("{server}/postgres"), postgres::NoTls)?;
    // Two statements: DROP DATABASE cannot run inside the transaction a batch is.
    admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name}"))?;
    admin.batch_execute(&format!("CREATE DATABASE {name}"))?;
    let url = format!("{server}/{name}");
    let result = (|| {
        let sled_dir = dir.join("pg-bench-sled");
        if sled_dir.exists() {
            std::fs::remove_dir_all(&sled_dir)?;
        }
        let sled = Store::open_with_token_key(&sled_dir, Some(TokenKey::generate()))?;
        let sled_rate = ingest(&sled, n, accounts)?;
        drop(sled);
        std::fs::remove_dir_all(&sled_dir)?;
        let key = TokenKey::generate();
        let pg = PgStore::connect(&url, Some(key.clone()))?;
        let pg_rate = ingest(&pg, n, accounts)?;
        // What autovacuum does within a minute of this many inserts, done at once: without
        // statistics the planner takes one account's pending page for 2 rows, and reads and
        // sorts all of them instead of walking mentions_by_account_status (EXPLAIN ANALYZE on
        // 100 000 rows made for it: 8.5 ms before, 0.09 ms after; README).
        postgres::Client::connect(&url, postgres::NoTls)?.batch_execute("ANALYZE")?;
        // And what the sync leader does every 20 s: fold the count deltas of the ingest's
        // pages (schema version 9) into one row per account and status.
        pg.fold_counts()?;
        let reads = reads(&pg, n, accounts)?;
        let change_to_other_service = change_latency(&url, &pg, accounts)?;
        let (page_to_follower_sse, keys_through_service) =
            page_to_follower_sse(dir, &url, &key, &pg, accounts)?;
        Ok(PgFigures {
            sled_ingest_per_sec: sled_rate,
            postgres_ingest_per_sec: pg_rate,
            ingest_ratio: pg_rate / sled_rate.max(1e-9),
            reads,
            change_to_other_service,
            page_to_follower_sse,
            keys_through_service,
        })
    })();
    let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
    result
}

/// Commits the benchmark's N mentions in pages, as a poll does; mentions per second.
fn ingest(store: &dyn Backend, n: u64, accounts: &[Account]) -> anyhow::Result<f64> {
    for a in accounts {
        store.put_account(a)?;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(super::SEED);
    let mut spent = std::time::Duration::ZERO;
    for p in 0..n.div_ceil(super::PAGE as u64) {
        let page = super::make_page(&mut rng, accounts, p, n);
        let account = page[0].sent_to.account_id;
        let cursor = page.iter().map(|m| m.tweet_id_u64()).max();
        let t = Instant::now();
        store.commit_page(account, &page, cursor)?;
        spent += t.elapsed();
        super::beat();
    }
    Ok(n as f64 / spent.as_secs_f64().max(1e-9))
}

fn reads(store: &dyn Backend, n: u64, accounts: &[Account]) -> anyhow::Result<Vec<ReadFigure>> {
    let account = accounts.first().map(|a| a.id);
    let filters = [
        ("first page, all accounts", FeedFilter::default()),
        (
            "first page, one account",
            FeedFilter {
                account,
                status: None,
            },
        ),
        (
            "first page, replied",
            FeedFilter {
                account: None,
                status: Some(MentionStatus::Replied),
            },
        ),
        (
            "first page, one account, pending",
            FeedFilter {
                account,
                status: Some(MentionStatus::Pending),
            },
        ),
    ];
    let mut out = Vec::new();
    for (what, filter) in &filters {
        out.push(sample(what, || {
            store.page_after(filter, None, super::SCREEN_ROWS)?;
            Ok(())
        })?);
    }
    // Half way down the whole feed: where a page deep in starts.
    let middle = store
        .page_after(
            &FeedFilter::default(),
            None,
            (n / 2).clamp(1, 10_000) as usize,
        )?
        .last()
        .map(FeedPos::from);
    out.push(sample("a page deep in, all accounts", || {
        store.page_after(&FeedFilter::default(), middle, super::SCREEN_ROWS)?;
        Ok(())
    })?);
    out.push(sample("count, one account, pending", || {
        store.count(&filters[3].1)?;
        Ok(())
    })?);
    Ok(out)
}

/// How long a committed change takes to reach another connection's listener.
fn change_latency(url: &str, store: &PgStore, accounts: &[Account]) -> anyhow::Result<ReadFigure> {
    let mut listener = ChangeListener::connect(url)?;
    let first = FeedFilter {
        account: accounts.first().map(|a| a.id),
        status: None,
    };
    let Some(m) = store.page_after(&first, None, 1)?.into_iter().next() else {
        anyhow::bail!("no mention to change");
    };
    let key = m.key();
    let wanted = Change::Mention {
        account: key.account_id,
        tweet: key.tweet_id,
    };
    let mut ms = Vec::with_capacity(READ_SAMPLES);
    for i in 0..READ_SAMPLES {
        let status = if i % 2 == 0 {
            MentionStatus::Ignored
        } else {
            MentionStatus::Pending
        };
        let t = Instant::now();
        store.set_status(key, status, chrono::Utc::now())?;
        // Bounded: a change that is not heard in 10 s fails the run rather than hanging it.
        loop {
            match listener.next(std::time::Duration::from_secs(10))? {
                Some(change) if change == wanted => break,
                Some(_) => continue,
                None => anyhow::bail!("a committed change was not heard within 10 s"),
            }
        }
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    super::beat();
    Ok(ReadFigure {
        read: "status change, heard by another service".to_string(),
        samples: READ_SAMPLES,
        p50_ms: super::percentile(&mut ms, 50.0),
        p99_ms: super::percentile(&mut ms, 99.0),
    })
}

/// Samples of [`page_to_follower_sse`]: fewer than the reads, each is a page and an HTTP event.
const SSE_SAMPLES: usize = 100;
/// Pages committed at most before the follower's listener is known to hear them.
const WARM_UP: u64 = 10;

/// Starts a follower service on the database (this run holds the leader lock, as another
/// machine's leader would), subscribes to its event stream over TCP, then commits one-mention
/// pages as the leader's engine does and times each until the follower's SSE client has it.
/// Then the dashboard's keys through that service, over its socket.
fn page_to_follower_sse(
    dir: &Path,
    url: &str,
    key: &TokenKey,
    store: &PgStore,
    accounts: &[Account],
) -> anyhow::Result<(ReadFigure, super::KeyFigures)> {
    use perch::store::pg::leader::{Candidate, Election};
    let mut lead = Election::new(
        url,
        Candidate {
            host: "perch-bench".to_string(),
            pid: std::process::id(),
        },
    );
    anyhow::ensure!(
        lead.tick().is_leader(),
        "the bench could not take the leader lock"
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let scratch = tempfile::tempdir_in(dir)?;
    let run_dir = scratch.path().join("run");
    std::fs::create_dir_all(&run_dir)?;
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&run_dir, std::fs::Permissions::from_mode(0o700))?;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let env: std::collections::BTreeMap<String, String> = [
        (
            "PERCH_CONFIG",
            scratch.path().join("none.toml").display().to_string(),
        ),
        (
            "PERCH_DATA_DIR",
            scratch.path().join("data").display().to_string(),
        ),
        (
            "XDG_STATE_HOME",
            scratch.path().join("state").display().to_string(),
        ),
        ("XDG_RUNTIME_DIR", run_dir.display().to_string()),
        // Nothing listens there; and a follower does not poll.
        ("PERCH_API_BASE", "http://127.0.0.1:9".to_string()),
        ("PERCH_POLL_INTERVAL", "3600".to_string()),
        ("PERCH_DATABASE_URL", url.to_string()),
        // The team's key: the database refuses any other.
        ("PERCH_TOKEN_KEY", key.to_base64()),
        ("PERCH_API_LISTEN", format!("127.0.0.1:{port}")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let config = perch::config::Config::load_from(&env)?;
    let service = runtime.block_on(perch::service::start(config, None))?;
    let token = service.hub.api_token.expose().to_string();
    let account = accounts
        .first()
        .ok_or_else(|| anyhow::anyhow!("no account"))?;
    let first = FeedFilter {
        account: Some(account.id),
        status: None,
    };
    let Some(template) = store.page_after(&first, None, 1)?.into_iter().next() else {
        anyhow::bail!("no mention to copy");
    };
    let result = runtime.block_on(async {
        let client = reqwest::Client::new();
        let mut events = client
            .get(format!("http://127.0.0.1:{port}/api/v1/events"))
            .bearer_auth(&token)
            .send()
            .await?
            .error_for_status()?;
        let mut ms = Vec::with_capacity(SSE_SAMPLES);
        let mut buffer = String::new();
        // The service answers before its change listener has connected: pages committed until
        // the first is heard are a warm-up (at most WARM_UP of them, 2 s each), not samples.
        let mut warm = false;
        let mut i = 0u64;
        while ms.len() < SSE_SAMPLES {
            i += 1;
            anyhow::ensure!(
                warm || i <= WARM_UP,
                "no committed page reached the follower's SSE client in {WARM_UP} tries"
            );
            let mut m = template.clone();
            // Newer than every benchmark post, and stored after the stream connected.
            let tweet = 1_900_000_000_000_000_000 + i;
            m.tweet_id = tweet.to_string();
            m.id = uuid::Uuid::new_v4();
            m.created_at = chrono::Utc::now();
            m.updated_at = m.created_at;
            let wanted = format!("\"{tweet}\"");
            let t = Instant::now();
            // The synchronous client may not block a runtime thread: give it up meanwhile.
            let commit = tokio::task::block_in_place(|| {
                store.commit_page(account.id, std::slice::from_ref(&m), Some(tweet))
            })?;
            anyhow::ensure!(commit.inserted == 1, "the page stored nothing new");
            // Bounded: an event that does not come in time fails the run rather than hang it.
            let limit = std::time::Duration::from_secs(if warm { 10 } else { 2 });
            let heard = tokio::time::timeout(limit, async {
                while !buffer.contains(&wanted) {
                    match events.chunk().await? {
                        Some(bytes) => buffer.push_str(&String::from_utf8_lossy(&bytes)),
                        None => anyhow::bail!("the follower's event stream ended"),
                    }
                }
                anyhow::Ok(())
            })
            .await;
            match heard {
                Ok(result) => result?,
                Err(_) if !warm => continue,
                Err(_) => anyhow::bail!(
                    "a committed page did not reach the follower's SSE client in 10 s"
                ),
            }
            buffer.clear();
            if warm {
                ms.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            warm = true;
        }
        anyhow::Ok(ms)
    });
    let keys = result.and_then(|ms| {
        super::beat();
        let (link, mut incoming) = perch::client::Link::connect(
            perch::client::Endpoint::Socket(service.paths.socket.clone()),
            perch::costs::Pricing::default(),
            None,
        )?;
        // The dashboard's loop would apply these; here they are only drained.
        runtime.spawn(async move { while incoming.recv().await.is_some() {} });
        let mut app = super::App::start(link.clone())?;
        anyhow::ensure!(
            !app.state.feed.rows.is_empty(),
            "the first frame through the PostgreSQL service shows no mentions (error: {:?})",
            app.error_shown()
        );
        let keys = super::measure_keys(&mut app)?;
        link.close();
        Ok((ms, keys))
    });
    runtime.block_on(service.shutdown());
    lead.step_down();
    let (mut ms, keys) = keys?;
    super::beat();
    let sse = ReadFigure {
        read: "leader's page, follower's SSE client".to_string(),
        samples: ms.len(),
        p50_ms: super::percentile(&mut ms, 50.0),
        p99_ms: super::percentile(&mut ms, 99.0),
    };
    Ok((sse, keys))
}

fn sample(what: &str, mut read: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<ReadFigure> {
    let mut ms = Vec::with_capacity(READ_SAMPLES);
    for _ in 0..READ_SAMPLES {
        let t = Instant::now();
        read()?;
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    super::beat();
    Ok(ReadFigure {
        read: what.to_string(),
        samples: READ_SAMPLES,
        p50_ms: super::percentile(&mut ms, 50.0),
        p99_ms: super::percentile(&mut ms, 99.0),
    })
}

pub fn print(f: &PgFigures) {
    println!("  PostgreSQL store (--postgres), beside sled in this run:");
    println!(
        "    ingest: sled {:.0}/s, PostgreSQL {:.0}/s, ratio {:.2}",
        f.sled_ingest_per_sec, f.postgres_ingest_per_sec, f.ingest_ratio
    );
    for r in f
        .reads
        .iter()
        .chain([&f.change_to_other_service, &f.page_to_follower_sse])
    {
        println!(
            "    {:<40} p50 {:>7.2} ms  p99 {:>7.2} ms  ({} reads)",
            r.read, r.p50_ms, r.p99_ms, r.samples
        );
    }
    println!("    keys through a service on PostgreSQL (target p99 <= 8 ms):");
    for k in &f.keys_through_service.keys {
        println!(
            "      {:<36} p50 {:>7.2} ms  p99 {:>7.2} ms  (less CPU wait {:.2})",
            k.key, k.p50_ms, k.p99_ms, k.p99_without_run_queue_ms
        );
    }
}
