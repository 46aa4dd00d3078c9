//! `perch-bench --rest`: the REST API through a running service on the benchmark's store, over
//! its Unix socket. Two figures: the round trip of `GET /api/v1/mentions/?limit=50` (the first
//! page and pages deeper in, by cursor), and the time from a page committed (the store's commit
//! returned and the engine's event published, as the engine does) to its `mentions_stored`
//! event read by an SSE client.

use std::path::Path;
use std::time::{Duration, Instant};

use chrono::Utc;
use perch::domain::{Account, Mention, MentionStatus, Sender, SentTo};
use serde::Serialize;

#[derive(Serialize, Debug)]
pub struct RestFigures {
    pub list_requests: usize,
    pub list_p50_ms: f64,
    pub list_p99_ms: f64,
    pub sse_events: usize,
    pub sse_p50_ms: f64,
    pub sse_p99_ms: f64,
}

const LIST_REQUESTS: usize = 500;
const SSE_EVENTS: usize = 200;

pub fn bench(dir: &Path, perch_dir: &Path, accounts: &[Account]) -> anyhow::Result<RestFigures> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(run(dir, perch_dir, accounts))
}

async fn run(dir: &Path, perch_dir: &Path, accounts: &[Account]) -> anyhow::Result<RestFigures> {
    let mut env = std::collections::BTreeMap::new();
    env.insert(
        "PERCH_CONFIG".to_string(),
        dir.join("no-config.toml").display().to_string(),
    );
    env.insert(
        "PERCH_DATA_DIR".to_string(),
        perch_dir.display().to_string(),
    );
    // Nothing answers there: the engine's polls of the (token-less) bench accounts fail at once.
    env.insert(
        "PERCH_API_BASE".to_string(),
        "http://127.0.0.1:9".to_string(),
    );
    let mut config = perch::config::Config::load_from(&env)?;
    config.state_dir = dir.join("state");
    let service = perch::service::start(config, None)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let result = measure(&service, accounts).await;
    service.shutdown().await;
    result
}

async fn measure(
    service: &perch::service::RunningService,
    accounts: &[Account],
) -> anyhow::Result<RestFigures> {
    let client = reqwest::Client::builder()
        .unix_socket(service.paths.socket.clone())
        .timeout(Duration::from_secs(60))
        .build()?;
    // The list: the first page, then deeper pages by cursor, starting over at the end.
    let mut list_ms = Vec::with_capacity(LIST_REQUESTS);
    let mut cursor: Option<String> = None;
    for _ in 0..LIST_REQUESTS {
        let url = match &cursor {
            Some(c) => format!("http://perch/api/v1/mentions/?limit=50&cursor={c}"),
            None => "http://perch/api/v1/mentions/?limit=50".to_string(),
        };
        let started = Instant::now();
        let response = client.get(&url).send().await?;
        anyhow::ensure!(
            response.status().is_success(),
            "{url}: {}",
            response.status()
        );
        let body: serde_json::Value = response.json().await?;
        list_ms.push(started.elapsed().as_secs_f64() * 1000.0);
        cursor = body["next_cursor"].as_str().map(str::to_string);
        super::beat();
    }

    // SSE: one new mention a page, committed and announced as the engine does.
    let mut stream = client.get("http://perch/api/v1/events").send().await?;
    let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel::<(String, Instant)>();
    let reader = tokio::spawn(async move {
        let mut buffer = String::new();
        while let Ok(Some(chunk)) = stream.chunk().await {
            let at = Instant::now();
            buffer.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buffer.find("\n\n") {
                let frame: String = buffer.drain(..end + 2).collect();
                let Some(data) = frame.lines().find_map(|l| l.strip_prefix("data: ")) else {
                    continue;
                };
                let Ok(value) = serde_json::from_str::<serde_json::Value>(data) else {
                    continue;
                };
                if value["type"] == "mentions_stored" {
                    for m in value["mentions"].as_array().into_iter().flatten() {
                        if let Some(id) = m["tweet_id"].as_str() {
                            let _ = seen_tx.send((id.to_string(), at));
                        }
                    }
                }
            }
        }
    });
    // Let the stream subscribe before the first event.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let hub = service.hub.clone();
    let account = accounts
        .first()
        .ok_or_else(|| anyhow::anyhow!("no accounts"))?
        .clone();
    let mut sse_ms = Vec::with_capacity(SSE_EVENTS);
    for i in 0..SSE_EVENTS {
        // Newer than every stored post (snowflakes of the far future).
        let tweet = (u64::MAX >> 2) - 1_000 + i as u64;
        let mention = live_mention(&account, tweet);
        let store = hub.store.clone();
        let id = account.id;
        tokio::task::spawn_blocking(move || store.commit_page(id, &[mention], None)).await??;
        let committed = Instant::now();
        hub.publish(perch::service::ServiceEvent::Sync(
            perch::sync::SyncEvent::PageCommitted {
                account_id: id,
                inserted: 1,
            },
        ));
        let wanted = tweet.to_string();
        let arrived = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some((got, at)) = seen_rx.recv().await {
                if got == wanted {
                    return Some(at);
                }
            }
            None
        })
        .await
        .ok()
        .flatten()
        .ok_or_else(|| anyhow::anyhow!("the SSE event for post {tweet} did not arrive"))?;
        sse_ms.push(arrived.saturating_duration_since(committed).as_secs_f64() * 1000.0);
        super::beat();
    }
    reader.abort();
    Ok(RestFigures {
        list_requests: list_ms.len(),
        list_p50_ms: super::percentile(&mut list_ms, 50.0),
        list_p99_ms: super::percentile(&mut list_ms, 99.0),
        sse_events: sse_ms.len(),
        sse_p50_ms: super::percentile(&mut sse_ms, 50.0),
        sse_p99_ms: super::percentile(&mut sse_ms, 99.0),
    })
}

fn live_mention(account: &Account, tweet: u64) -> Mention {
    let now = Utc::now();
    Mention {
        id: uuid::Uuid::new_v4(),
        tweet_id: tweet.to_string(),
        timestamp: now,
        text: format!("@{} live mention {tweet}", account.twitter_username),
        sender: Sender {
            twitter_id: Some("10000001".into()),
            username: Some("live_user".into()),
            display_name: Some("Live User".into()),
            profile_image_url: None,
        },
        sent_to: SentTo::account(account),
        status: MentionStatus::Pending,
        public_response: None,
        dm_response: None,
        conversation_id: None,
        referenced_posts: Vec::new(),
        error_message: None,
        created_at: now,
        updated_at: now,
    }
}
