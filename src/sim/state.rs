//! The simulator's world: users, posts, who mentions whom, what the API created, the request log,
//! and the clock. One `World` behind one mutex; handlers lock it briefly and never across an await.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, TimeZone, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use super::activity::ActivityState;
use super::billing::Billing;
use super::faults::Faults;
use super::generator::Corpus;
use super::oauth::OAuthState;
use super::ratelimit::RateLimiter;
use super::{CreatedPost, RequestLogEntry, SentDm, SimConfig};

/// Twitter's snowflake epoch (2010-11-04T01:42:54.657Z), CONTRACT.md §9.
pub(crate) const SNOWFLAKE_EPOCH_MS: i64 = 1_288_834_974_657;
/// How many request-log entries are kept (oldest dropped first), so a soak cannot grow it forever.
const REQUEST_LOG_CAP: usize = 200_000;

/// The simulator's notion of "now": real time plus an offset that tests can push forward, so
/// 30-second codes and two-hour tokens can expire without anyone sleeping.
#[derive(Default)]
pub(crate) struct Clock {
    offset_ms: AtomicI64,
}

impl Clock {
    pub fn now(&self) -> DateTime<Utc> {
        Utc::now() + chrono::Duration::milliseconds(self.offset_ms.load(Ordering::Relaxed))
    }

    pub fn advance(&self, by: std::time::Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX / 4);
        self.offset_ms.fetch_add(ms, Ordering::Relaxed);
    }
}

/// The milliseconds since the Unix epoch embedded in a snowflake id.
pub(crate) fn snowflake_millis(id: u64) -> i64 {
    (id >> 22) as i64 + SNOWFLAKE_EPOCH_MS
}

/// `created_at` as X prints it: whole seconds, always `.000Z` (CONTRACT.md §9).
pub(crate) fn x_timestamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S.000Z").to_string()
}

/// The time embedded in a snowflake, truncated to the second as X reports it.
pub(crate) fn snowflake_time(id: u64) -> DateTime<Utc> {
    let ms = snowflake_millis(id);
    Utc.timestamp_millis_opt(ms - ms.rem_euclid(1000))
        .single()
        .unwrap_or_else(Utc::now)
}

/// A user the simulator knows: one of the configured accounts or a fictional author.
#[derive(Clone, Debug)]
pub(crate) struct UserRecord {
    pub id: u64,
    pub username: String,
    pub name: String,
    pub profile_image_url: String,
    pub description: String,
    pub created_at: DateTime<Utc>,
    pub accepts_dms: bool,
    pub followers_count: u64,
    pub following_count: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RefKind {
    RepliedTo,
    Quoted,
}

impl RefKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RefKind::RepliedTo => "replied_to",
            RefKind::Quoted => "quoted",
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct MentionEntity {
    /// Code-point indices into the raw (unescaped) text; start inclusive, end exclusive.
    pub start: usize,
    pub end: usize,
    pub username: String,
    pub id: u64,
}

#[derive(Clone, Debug)]
pub(crate) struct UrlEntity {
    pub start: usize,
    pub end: usize,
    pub url: String,
    pub expanded_url: String,
    pub display_url: String,
}

/// A post as the simulator stores it. `text` is raw; it is HTML-escaped only on the way out.
#[derive(Clone, Debug)]
pub(crate) struct PostRecord {
    pub id: u64,
    pub author_id: u64,
    pub text: String,
    pub conversation_id: u64,
    pub in_reply_to_user_id: Option<u64>,
    pub referenced: Vec<(RefKind, u64)>,
    pub mentions: Vec<MentionEntity>,
    /// Where the text proper starts (code points): a reply's leading @handles come before it.
    /// Mentions there are implicit, and fire no `post.mention.create` (ACTIVITY.md §2).
    pub display_start: usize,
    pub urls: Vec<UrlEntity>,
    pub like_count: u64,
    pub reply_count: u64,
    pub retweet_count: u64,
    pub quote_count: u64,
    pub impression_count: u64,
}

/// What a new post is made of before it gets an id.
pub(crate) struct PostDraft {
    pub author_id: u64,
    pub text: String,
    pub at: DateTime<Utc>,
    pub reply_to: Option<u64>,
    pub quote_of: Option<u64>,
    /// Short links in `text` and where they lead: (t.co url, expanded url).
    pub links: Vec<(String, String)>,
    pub like_count: u64,
    pub impression_count: u64,
}

pub(crate) struct World {
    pub users: BTreeMap<u64, UserRecord>,
    /// Lower-cased username → id.
    pub by_username: HashMap<String, u64>,
    /// The configured accounts, in configuration order.
    pub sim_user_ids: Vec<u64>,
    /// The fictional authors who write mentions.
    pub author_ids: Vec<u64>,
    pub posts: BTreeMap<u64, PostRecord>,
    /// User id → ids of the posts that mention them (never their own posts).
    pub mentions: HashMap<u64, BTreeSet<u64>>,
    pub posts_by_author: HashMap<u64, Vec<u64>>,
    pub created_posts: Vec<CreatedPost>,
    pub dms: Vec<SentDm>,
    pub request_log: VecDeque<RequestLogEntry>,
    pub oauth: OAuthState,
    pub limits: RateLimiter,
    pub faults: Faults,
    pub billing: Billing,
    /// The Activity API: subscriptions and open stream connections (`activity.rs`).
    pub activity: ActivityState,
    pub rng: ChaCha8Rng,
    used_ids: HashSet<u64>,
    last_ms: i64,
    sequence: u64,
}

impl World {
    pub fn new(config: &SimConfig) -> World {
        World {
            users: BTreeMap::new(),
            by_username: HashMap::new(),
            sim_user_ids: Vec::new(),
            author_ids: Vec::new(),
            posts: BTreeMap::new(),
            mentions: HashMap::new(),
            posts_by_author: HashMap::new(),
            created_posts: Vec::new(),
            dms: Vec::new(),
            request_log: VecDeque::new(),
            oauth: OAuthState::default(),
            limits: RateLimiter::default(),
            faults: config.faults.clone(),
            billing: Billing::new(config.credits_usd),
            activity: ActivityState::default(),
            rng: ChaCha8Rng::seed_from_u64(config.seed),
            used_ids: HashSet::new(),
            last_ms: 0,
            sequence: 0,
        }
    }

    /// A fresh snowflake for time `at`: unique, and its embedded time is `at` (to the millisecond,
    /// moved forward by at most a few ms when many ids share one millisecond).
    pub fn next_id(&mut self, at: DateTime<Utc>) -> u64 {
        let mut ms = at.timestamp_millis().max(SNOWFLAKE_EPOCH_MS);
        if ms == self.last_ms {
            self.sequence += 1;
        } else {
            self.sequence = 0;
            self.last_ms = ms;
        }
        // X's ids come from many workers (bits 12-21); varying them keeps the low digits realistic.
        let worker: u64 = self.rng.random_range(0..1024);
        loop {
            if self.sequence > 0xFFF {
                ms += 1;
                self.sequence = 0;
            }
            let id = (((ms - SNOWFLAKE_EPOCH_MS) as u64) << 22) | (worker << 12) | self.sequence;
            if self.used_ids.insert(id) {
                return id;
            }
            self.sequence += 1;
        }
    }

    pub fn add_user(&mut self, user: UserRecord) {
        self.by_username
            .insert(user.username.to_lowercase(), user.id);
        self.users.insert(user.id, user);
    }

    /// Finds a user by username (with or without `@`, any case) or by numeric id.
    pub fn find_user(&self, name_or_id: &str) -> Option<u64> {
        let key = name_or_id.trim().trim_start_matches('@').to_lowercase();
        if let Some(id) = self.by_username.get(&key) {
            return Some(*id);
        }
        key.parse::<u64>()
            .ok()
            .filter(|id| self.users.contains_key(id))
    }

    pub fn username(&self, id: u64) -> String {
        self.users
            .get(&id)
            .map(|u| u.username.clone())
            .unwrap_or_default()
    }

    /// Stores a post, links it into its thread and indexes it under every user it mentions.
    pub fn insert_post(&mut self, draft: PostDraft) -> u64 {
        let id = self.next_id(draft.at);
        let mut referenced = Vec::new();
        let mut conversation_id = id;
        let mut in_reply_to_user_id = None;
        if let Some(parent_id) = draft.reply_to
            && let Some(parent) = self.posts.get_mut(&parent_id)
        {
            parent.reply_count += 1;
            conversation_id = parent.conversation_id;
            in_reply_to_user_id = Some(parent.author_id);
            referenced.push((RefKind::RepliedTo, parent_id));
        }
        if let Some(quoted_id) = draft.quote_of
            && let Some(quoted) = self.posts.get_mut(&quoted_id)
        {
            quoted.quote_count += 1;
            referenced.push((RefKind::Quoted, quoted_id));
        }
        let mentions = self.mention_entities(&draft.text);
        let display_start = if draft.reply_to.is_some() {
            leading_handles_len(&draft.text)
        } else {
            0
        };
        let urls = url_entities(&draft.text, &draft.links);
        for m in &mentions {
            if m.id != draft.author_id {
                self.mentions.entry(m.id).or_default().insert(id);
            }
        }
        self.posts_by_author
            .entry(draft.author_id)
            .or_default()
            .push(id);
        self.posts.insert(
            id,
            PostRecord {
                id,
                author_id: draft.author_id,
                text: draft.text,
                conversation_id,
                in_reply_to_user_id,
                referenced,
                mentions,
                display_start,
                urls,
                like_count: draft.like_count,
                reply_count: 0,
                retweet_count: 0,
                quote_count: 0,
                impression_count: draft.impression_count,
            },
        );
        super::activity::publish(self, id);
        id
    }

    /// Every `@handle` in `text` that names a known user, as X's mention entities.
    fn mention_entities(&self, text: &str) -> Vec<MentionEntity> {
        let chars: Vec<char> = text.chars().collect();
        let is_handle_char = |c: char| c.is_ascii_alphanumeric() || c == '_';
        let mut out: Vec<MentionEntity> = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            let at_boundary = i == 0 || !(is_handle_char(chars[i - 1]) || chars[i - 1] == '@');
            if chars[i] == '@' && at_boundary {
                let start = i;
                let mut end = i + 1;
                while end < chars.len() && is_handle_char(chars[end]) && end - start <= 15 {
                    end += 1;
                }
                let handle: String = chars[start + 1..end].iter().collect();
                if let Some(user) = self
                    .by_username
                    .get(&handle.to_lowercase())
                    .and_then(|id| self.users.get(id))
                    && !out.iter().any(|m| m.id == user.id && m.start == start)
                {
                    out.push(MentionEntity {
                        start,
                        end,
                        username: user.username.clone(),
                        id: user.id,
                    });
                }
                i = end;
            } else {
                i += 1;
            }
        }
        out
    }

    pub fn log_request(&mut self, entry: RequestLogEntry) {
        if self.request_log.len() >= REQUEST_LOG_CAP {
            self.request_log.pop_front();
        }
        self.request_log.push_back(entry);
    }
}

/// The length in code points of the run of `@handle ` at the start of a reply: the handles X
/// puts there itself, outside `display_text_range`.
fn leading_handles_len(text: &str) -> usize {
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    let mut end = 0;
    while i < chars.len() && chars[i] == '@' {
        let mut j = i + 1;
        while j < chars.len() && (chars[j].is_ascii_alphanumeric() || chars[j] == '_') {
            j += 1;
        }
        if j == i + 1 || j >= chars.len() || !chars[j].is_whitespace() {
            break;
        }
        while j < chars.len() && chars[j].is_whitespace() {
            j += 1;
        }
        end = j;
        i = j;
    }
    end
}

/// URL entities for the short links placed in `text`.
fn url_entities(text: &str, links: &[(String, String)]) -> Vec<UrlEntity> {
    let mut out = Vec::new();
    for (short, expanded) in links {
        if let Some(byte_start) = text.find(short.as_str()) {
            let start = text[..byte_start].chars().count();
            let end = start + short.chars().count();
            let bare = expanded
                .trim_start_matches("https://")
                .trim_start_matches("http://");
            let display_url = if bare.chars().count() > 26 {
                let cut: String = bare.chars().take(25).collect();
                format!("{cut}…")
            } else {
                bare.to_string()
            };
            out.push(UrlEntity {
                start,
                end,
                url: short.clone(),
                expanded_url: expanded.clone(),
                display_url,
            });
        }
    }
    out
}

/// Everything the handlers share: the world, the clock and the fixed configuration.
pub(crate) struct Shared {
    pub world: Mutex<World>,
    pub clock: Clock,
    pub config: SimConfig,
    pub corpus: Corpus,
    pub base_url: String,
}

impl Shared {
    /// Locks the world. A panic while holding the lock must not wedge the whole simulator, so a
    /// poisoned lock is taken over (the world's invariants are re-established on every write).
    pub fn world(&self) -> std::sync::MutexGuard<'_, World> {
        self.world
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snowflakes_embed_their_time_and_never_repeat() {
        let mut world = World::new(&SimConfig::for_tests(1));
        let at = Utc
            .timestamp_millis_opt(1_700_000_000_123)
            .single()
            .unwrap();
        let a = world.next_id(at);
        let b = world.next_id(at);
        assert_ne!(a, b);
        assert_eq!(snowflake_millis(a), 1_700_000_000_123);
        assert_eq!(x_timestamp(snowflake_time(a)), "2023-11-14T22:13:20.000Z");
    }

    /// CONTRACT.md §9: 1578516295611748353 → 2022-10-07T22:43:06.945Z.
    #[test]
    fn snowflake_layout_matches_the_contract() {
        assert_eq!(
            snowflake_millis(1_578_516_295_611_748_353),
            1_665_182_586_945
        );
    }
}
