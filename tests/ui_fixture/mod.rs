//! A store with known accounts and mentions (fixed ids and times) for the UI tests and snapshots.
#![allow(dead_code)]

use chrono::{DateTime, Duration, TimeZone, Utc};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use perch::app::{Action, AppState, Effect, update};
use perch::domain::{
    Account, Mention, MentionStatus, ReferenceKind, ReferencedPost, Response, Sender, SentTo,
    SyncStatus,
};
use perch::store::Store;
use perch::ui::{Theme, draw};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use uuid::Uuid;

/// The clock every test and snapshot uses.
pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 11, 26, 12, 0, 0).unwrap()
}

/// The screen a `width`x`height` terminal shows for `state` (default theme, the fixture's clock).
pub fn render(state: &AppState, width: u16, height: u16) -> String {
    render_terminal(state, width, height).backend().to_string()
}

/// As [`render`], keeping the terminal (for tests that look at cells and their styles).
pub fn render_terminal(state: &AppState, width: u16, height: u16) -> Terminal<TestBackend> {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("test terminal");
    terminal
        .draw(|frame| draw(frame, state, &Theme::default(), now()))
        .expect("draw");
    terminal
}

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub store: Store,
    pub accounts: Vec<Account>,
    /// Every mention, newest first (the feed's order).
    pub mentions: Vec<Mention>,
}

fn account(n: u128, username: &str, name: &str, status: SyncStatus, synced_ago: i64) -> Account {
    let mut a = Account::new(
        format!("{}", 1000 + n),
        username.to_string(),
        name.to_string(),
        None,
        now() - Duration::days(30),
    );
    a.id = Uuid::from_u128(n);
    a.sync_status = status;
    a.is_active = status != SyncStatus::Paused;
    a.last_synced_at = Some(now() - Duration::seconds(synced_ago));
    a
}

const SENDERS: &[(&str, &str)] = &[
    ("mara_k", "Mara Kovač"),
    ("tanaka_yu", "田中 優"),
    ("devon", "Devon 🚲"),
    ("priya_codes", "Priya S."),
    ("olu", "Olúwaseun"),
];

const TEXTS: &[&str] = &[
    "@{acct} the export button does nothing on Safari 17, is that known?",
    "@{acct} 注文した商品がまだ届きません。確認していただけますか？",
    "@{acct} love the new release 🎉🎉 dark mode is 🔥",
    "@{acct} hi! see https://example.com/a/very/long/path/to/a/bug/report for the logs",
    "@{acct} quick one: do you ship to Norway?\nAnd is there a student discount?",
    "@{acct} sneaky \u{1b}[2Jescape\u{7} sequences must not reach the terminal",
    "@{acct} ok",
];

/// The base tweet id: a snowflake from late 2025. Ids step by a large amount so ordering by id is
/// ordering by time, as on X.
const BASE_ID: u64 = 1_993_000_000_000_000_000;

pub fn mention(account: &Account, i: usize, tweet_id: u64, at: DateTime<Utc>) -> Mention {
    let (username, name) = SENDERS[i % SENDERS.len()];
    let text = TEXTS[i % TEXTS.len()].replace("{acct}", &account.twitter_username);
    Mention {
        id: Uuid::from_u128(0xABCD_0000_0000 + tweet_id as u128),
        tweet_id: tweet_id.to_string(),
        timestamp: at,
        text,
        sender: Sender {
            twitter_id: Some(format!("{}", 5000 + i % SENDERS.len())),
            username: Some(username.to_string()),
            display_name: Some(name.to_string()),
            profile_image_url: None,
        },
        sent_to: SentTo::account(account),
        status: MentionStatus::Pending,
        public_response: None,
        dm_response: None,
        conversation_id: None,
        referenced_posts: Vec::new(),
        error_message: None,
        created_at: at,
        updated_at: at,
    }
}

impl Fixture {
    /// Three accounts and `count` mentions spread over them, one every 97 seconds back from
    /// `now()`. The first few carry every kind of detail the screen can show.
    pub fn new(count: usize) -> Fixture {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(dir.path()).expect("open store");
        let accounts = vec![
            account(1, "acme", "Acme Support", SyncStatus::Active, 120),
            account(
                2,
                "bluebird_dev",
                "Bluebird Dev",
                SyncStatus::RateLimited,
                900,
            ),
            account(3, "nightowl_io", "Night Owl", SyncStatus::Paused, 7200),
        ];
        for a in &accounts {
            store.put_account(a).expect("put account");
        }
        let mut mentions = Vec::new();
        for i in 0..count {
            let a = &accounts[i % accounts.len()];
            let id = BASE_ID - (i as u64) * 1_000_000_000;
            let mut m = mention(a, i, id, now() - Duration::seconds(40 + 97 * i as i64));
            match i {
                1 => {
                    m.status = MentionStatus::Replied;
                    m.public_response = Some(Response {
                        id: "1993000000999999999".into(),
                        text: "@tanaka_yu 申し訳ありません、すぐに確認します。".into(),
                        sent_at: now() - Duration::seconds(60),
                    });
                }
                3 => {
                    m.referenced_posts = vec![ReferencedPost {
                        kind: ReferenceKind::RepliedTo,
                        tweet_id: "1992000000000000000".into(),
                        text: Some("Known issue: exports fail on some browsers".into()),
                        author_username: Some(a.twitter_username.clone()),
                    }];
                    m.conversation_id = Some("1992000000000000000".into());
                }
                4 => {
                    m.status = MentionStatus::Error;
                    m.error_message = Some("You are not allowed to reply to this post.".into());
                }
                6 => m.status = MentionStatus::Ignored,
                _ => {}
            }
            mentions.push(m);
        }
        for a in &accounts {
            let mine: Vec<Mention> = mentions
                .iter()
                .filter(|m| m.sent_to.account_id == a.id)
                .cloned()
                .collect();
            let cursor = mine.iter().map(Mention::tweet_id_u64).max();
            store.commit_page(a.id, &mine, cursor).expect("commit page");
        }
        Fixture {
            dir,
            store,
            accounts,
            mentions,
        }
    }

    /// Stores one post that mentions several of the accounts (one mention per account, the same
    /// tweet id), newer than everything else, and returns its mentions.
    pub fn add_shared_post(&self, accounts: &[usize], tweet_id: u64) -> Vec<Mention> {
        let mut made = Vec::new();
        for &i in accounts {
            let a = &self.accounts[i];
            let mut m = mention(a, 0, tweet_id, now() - Duration::seconds(5));
            m.text = "@acme @bluebird_dev @nightowl_io is anyone from your teams at the meetup?"
                .to_string();
            m.sender.username = Some("zoe_r".into());
            m.sender.display_name = Some("Zoë R.".into());
            self.store
                .commit_page(a.id, std::slice::from_ref(&m), None)
                .expect("commit shared post");
            made.push(m);
        }
        made
    }

    /// Closes the store and opens it again from its directory, as a restart does.
    pub fn reopen(self) -> Fixture {
        let Fixture {
            dir,
            store,
            accounts,
            mentions,
        } = self;
        drop(store);
        let store = Store::open(dir.path()).expect("reopen store");
        Fixture {
            dir,
            store,
            accounts,
            mentions,
        }
    }

    pub fn status_of(&self, m: &Mention) -> MentionStatus {
        self.store
            .mention(m.key())
            .expect("read mention")
            .expect("mention stored")
            .status
    }

    /// A state loaded as the event loop loads it: the clock (the fixture's `now()`), the size,
    /// then the store.
    pub fn state(&self, width: u16, height: u16) -> AppState {
        let mut state = AppState::new(Some("demo: simulator at http://127.0.0.1:7878".into()));
        self.apply(&mut state, Action::Tick(now()));
        self.apply(&mut state, Action::Resize { width, height });
        self.apply(&mut state, Action::StoreChanged);
        state
    }

    /// Applies an action and, as the event loop does, carries out the store writes it asks for
    /// (feeding their follow-up actions back in), then runs background steps (search, bulk,
    /// undo) until none is left, as an idle loop would, and answers draft measurements as the
    /// loop's measurer does. Returns the effects of `action` itself.
    pub fn apply(&self, state: &mut AppState, action: Action) -> Vec<Effect> {
        let effects = self.apply_without_idle(state, action);
        for effect in &effects {
            match effect {
                Effect::Background(job) => {
                    self.apply(state, Action::Continue(*job));
                }
                // The loop's measurer answers a draft it was asked to measure (later, off the
                // key path; here once the action is done).
                Effect::MeasureDraft {
                    key,
                    generation,
                    text,
                } => {
                    self.apply(
                        state,
                        Action::DraftMeasured {
                            key: *key,
                            generation: *generation,
                            length: perch::text::post_length(text),
                        },
                    );
                }
                _ => {}
            }
        }
        effects
    }

    /// As `apply`, but leaves background steps undone (a loop that has not been idle yet).
    pub fn apply_without_idle(&self, state: &mut AppState, action: Action) -> Vec<Effect> {
        let effects = update(state, action, &self.store);
        for effect in &effects {
            if let Some(follow_up) = perch::tui::run_store_effect(&self.store, effect) {
                self.apply(state, follow_up);
            }
        }
        effects
    }

    pub fn key(&self, state: &mut AppState, code: KeyCode) -> Vec<Effect> {
        let action = Action::key_seeing(KeyEvent::new(code, KeyModifiers::NONE), state);
        self.apply(state, action)
    }

    pub fn ctrl(&self, state: &mut AppState, c: char) -> Vec<Effect> {
        let action = Action::key_seeing(
            KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL),
            state,
        );
        self.apply(state, action)
    }

    pub fn chars(&self, state: &mut AppState, text: &str) {
        for c in text.chars() {
            self.key(state, KeyCode::Char(c));
        }
    }

    /// Presses `code` `n` times.
    pub fn press(&self, state: &mut AppState, code: KeyCode, n: usize) {
        for _ in 0..n {
            self.key(state, code);
        }
    }
}
