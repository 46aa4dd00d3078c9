//! Helpers for the sync engine's tests (included by the `sync_*` test files with `#[path]`): a
//! simulator on loopback, a store in a temporary directory, accounts logged in through the real
//! OAuth flow, and an engine whose events are collected so the tests can wait on the store.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use perch::auth::{OAuthSettings, TokenManager};
use perch::cli::{App, add_sim_accounts};
use perch::domain::{Account, AccountId, Mention, SyncStatus};
use perch::sim::{self, Faults, RequestLogEntry, SimConfig, SimControl, SimHandle, SimUserSpec};
use perch::store::{FeedFilter, Store};
use perch::sync::{self, Command, SyncEvent, SyncSettings};
use perch::x::XClient;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// How long a test waits for something that should happen within a second or two: generous,
/// because the machine running the tests may be slow and busy.
pub const PATIENCE: Duration = Duration::from_secs(60);

pub struct Harness {
    pub sim: SimHandle,
    pub control: SimControl,
    pub store: Store,
    pub client: XClient,
    pub tokens: TokenManager,
    /// In the order of the simulator's users.
    pub accounts: Vec<Account>,
    pub dir: tempfile::TempDir,
}

/// A simulator with `n` users (`user00`, `user01`, ...), no live stream, `backlog` mentions each.
pub fn sim_config(n: usize, backlog: usize) -> SimConfig {
    let mut config = SimConfig::for_tests(11);
    config.users = (0..n)
        .map(|i| SimUserSpec::new(&format!("user{i:02}"), &format!("User {i}"), true))
        .collect();
    config.backlog_per_user = backlog;
    config
}

/// Settings for tests: short intervals and backoffs so nothing waits long.
pub fn fast_settings() -> SyncSettings {
    SyncSettings {
        poll_interval: Duration::from_millis(300),
        backoff_base: Duration::from_millis(100),
        backoff_cap: Duration::from_millis(800),
        failures_before_error: 3,
        blocked_interval: Duration::from_secs(3),
        reset_margin: Duration::from_millis(300),
        ..SyncSettings::default()
    }
}

impl Harness {
    /// Starts the simulator, opens a store and logs every simulated user in (before any fault
    /// is switched on). `request_timeout` is the client's whole-request timeout.
    pub async fn start(config: SimConfig, request_timeout: Duration) -> Harness {
        Harness::start_at(config, request_timeout, None).await
    }

    /// As [`Harness::start`], with the store in `store_dir` instead of a temporary directory.
    pub async fn start_at(
        config: SimConfig,
        request_timeout: Duration,
        store_dir: Option<&std::path::Path>,
    ) -> Harness {
        let sim = sim::start(config.clone(), 0)
            .await
            .expect("simulator starts");
        let dir = tempfile::tempdir().unwrap();
        let store_path = store_dir
            .map(|d| d.to_path_buf())
            .unwrap_or_else(|| dir.path().join("store"));
        let store = Store::open(&store_path).expect("store opens");
        let oauth = OAuthSettings {
            client_id: config.client_id.clone(),
            client_secret: None,
            authorize_url: sim.authorize_url(),
            token_url: sim.token_url(),
            redirect_uri: sim::DEMO_REDIRECT_URI.to_string(),
        };
        let client =
            XClient::with_timeouts(&sim.api_base(), Duration::from_secs(5), request_timeout);
        let tokens = TokenManager::new(store.shared(), oauth.clone());
        let app = App {
            store: store.clone(),
            client: client.clone(),
            tokens: tokens.clone(),
            oauth,
        };
        let names: Vec<String> = config.users.iter().map(|u| u.username.clone()).collect();
        add_sim_accounts(&app, &names)
            .await
            .unwrap_or_else(|f| panic!("logging the simulated users in failed: {}", f.message));
        let mut accounts = Vec::new();
        for name in &names {
            let account = store
                .accounts()
                .unwrap()
                .into_iter()
                .find(|a| &a.twitter_username == name)
                .expect("logged-in account is stored");
            accounts.push(account);
        }
        Harness {
            control: sim.control(),
            sim,
            store,
            client,
            tokens,
            accounts,
            dir,
        }
    }

    pub fn set_faults(&self, faults: Faults) {
        self.control.set_faults(faults);
    }

    /// Starts an engine over the store.
    pub fn engine(&self, settings: SyncSettings) -> Engine {
        let handle = sync::spawn(
            self.store.shared(),
            self.client.clone(),
            self.tokens.clone(),
            settings,
        );
        Engine::collect(handle)
    }

    pub fn account(&self, i: usize) -> Account {
        self.store
            .account(self.accounts[i].id)
            .unwrap()
            .expect("account exists")
    }

    pub fn stored(&self, i: usize) -> u64 {
        self.store
            .count(&FeedFilter {
                account: Some(self.accounts[i].id),
                ..FeedFilter::default()
            })
            .unwrap()
    }

    /// How many mentions of account `i` the simulator holds (a generated post can mention two
    /// accounts, so this is not exactly the backlog asked for), at most X's 800.
    pub fn expected(&self, i: usize) -> u64 {
        let n = self
            .control
            .mention_count(&self.accounts[i].twitter_username)
            .unwrap();
        n.min(800) as u64
    }

    /// Account `i` has stored everything the simulator holds for it.
    pub fn caught_up(&self, i: usize) -> bool {
        self.stored(i) == self.expected(i)
    }

    /// Every stored mention of account `i`, newest first.
    pub fn mentions(&self, i: usize) -> Vec<Mention> {
        let filter = FeedFilter {
            account: Some(self.accounts[i].id),
            ..FeedFilter::default()
        };
        self.store.page_after(&filter, None, 10_000).unwrap()
    }

    pub fn cursor(&self, i: usize) -> Option<u64> {
        self.store.cursor(self.accounts[i].id).unwrap()
    }

    /// The simulator's log of mentions requests for account `i`.
    pub fn mention_requests(&self, i: usize) -> Vec<RequestLogEntry> {
        let id = &self.accounts[i].twitter_id;
        self.control
            .request_log()
            .into_iter()
            .filter(|r| r.path == format!("/2/users/{id}/mentions"))
            .collect()
    }

    /// Token-endpoint refreshes for account `i`.
    pub fn refreshes(&self, i: usize) -> usize {
        let id = &self.accounts[i].twitter_id;
        self.control
            .request_log()
            .into_iter()
            .filter(|r| {
                r.path == "/2/oauth2/token"
                    && r.user_id.as_deref() == Some(id)
                    && r.note
                        .as_deref()
                        .is_some_and(|n| n.contains("refresh_token"))
            })
            .count()
    }

    /// Every refresh attempt at the token endpoint (accepted or refused; a refused one is not
    /// attributed to a user).
    pub fn refresh_attempts(&self) -> usize {
        self.control
            .request_log()
            .into_iter()
            .filter(|r| {
                r.path == "/2/oauth2/token"
                    && r.note
                        .as_deref()
                        .is_some_and(|n| n.contains("refresh_token"))
            })
            .count()
    }

    /// Waits until `check` holds, or fails the test saying what it waited for.
    pub async fn wait_until(&self, what: &str, check: impl Fn(&Harness) -> bool) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while !check(self) {
            if tokio::time::Instant::now() > deadline {
                let states: Vec<String> = (0..self.accounts.len().min(5))
                    .map(|i| {
                        let a = self.account(i);
                        format!(
                            "{}: {} {:?} stored {}",
                            a.handle(),
                            a.sync_status,
                            a.error_message,
                            self.stored(i)
                        )
                    })
                    .collect();
                panic!("timed out waiting for {what}; accounts: {states:#?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn wait_for_status(&self, i: usize, status: SyncStatus) {
        self.wait_until(&format!("account {i} to be {status}"), |h| {
            h.account(i).sync_status == status
        })
        .await;
    }
}

/// A running engine whose events are kept for the test to look at.
pub struct Engine {
    pub commands: mpsc::Sender<Command>,
    pub events: Arc<Mutex<Vec<SyncEvent>>>,
    pub counters: Arc<sync::SyncCounters>,
    task: JoinHandle<()>,
    drain: JoinHandle<()>,
}

impl Engine {
    fn collect(handle: sync::SyncHandle) -> Engine {
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = events.clone();
        let mut rx = handle.events;
        let drain = tokio::spawn(async move {
            while let Some(event) = rx.recv().await {
                sink.lock().unwrap().push(event);
            }
        });
        Engine {
            commands: handle.commands,
            counters: handle.counters.clone(),
            events,
            task: handle.task,
            drain,
        }
    }

    pub async fn send(&self, command: Command) {
        self.commands
            .send(command)
            .await
            .expect("engine is running");
    }

    /// The notices the engine has shown about `account`.
    pub fn notices(&self, account: AccountId) -> Vec<String> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                SyncEvent::Notice {
                    account_id: Some(a),
                    message,
                } if *a == account => Some(message.clone()),
                _ => None,
            })
            .collect()
    }

    /// Polls of `account` that have finished.
    pub fn finished(&self, account: AccountId) -> usize {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(
                |e| matches!(e, SyncEvent::Finished { account_id, .. } if *account_id == account),
            )
            .count()
    }

    /// Stops the engine and waits for it.
    pub async fn stop(self) {
        let _ = self.commands.send(Command::Shutdown).await;
        let _ = tokio::time::timeout(PATIENCE, self.task).await;
        self.drain.abort();
    }
}

/// The value of one query parameter of a logged request.
pub fn query_param(entry: &RequestLogEntry, name: &str) -> Option<String> {
    let query = entry.query.as_deref()?;
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}
