//! The data model: tracked accounts, the mentions they receive, and the small value types around
//! them. No I/O lives here; the store persists these types and the CLI prints them as JSON, so the
//! serde names (snake_case) are part of perch's public interface.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub mod team;
pub mod token_key;
pub use team::{Access, AuditAction, AuditEntry, Person, Role, TeamEvent};
pub use token_key::TokenKey;

/// perch's own id for a tracked account (stable across reauthorizations).
pub type AccountId = Uuid;

/// Why an account is or is not being polled.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SyncStatus {
    Active,
    Paused,
    Error,
    TokenExpired,
    RateLimited,
}

impl SyncStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SyncStatus::Active => "active",
            SyncStatus::Paused => "paused",
            SyncStatus::Error => "error",
            SyncStatus::TokenExpired => "token_expired",
            SyncStatus::RateLimited => "rate_limited",
        }
    }
}

impl fmt::Display for SyncStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a mention is in triage.
#[derive(
    Serialize,
    Deserialize,
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum MentionStatus {
    Pending,
    Processing,
    Replied,
    Ignored,
    Error,
}

impl MentionStatus {
    pub const ALL: [MentionStatus; 5] = [
        MentionStatus::Pending,
        MentionStatus::Processing,
        MentionStatus::Replied,
        MentionStatus::Ignored,
        MentionStatus::Error,
    ];

    /// Stable one-byte code used in store keys. Never renumber: stored indexes depend on it.
    pub fn code(self) -> u8 {
        match self {
            MentionStatus::Pending => 0,
            MentionStatus::Processing => 1,
            MentionStatus::Replied => 2,
            MentionStatus::Ignored => 3,
            MentionStatus::Error => 4,
        }
    }

    pub fn from_code(code: u8) -> Option<MentionStatus> {
        MentionStatus::ALL.into_iter().find(|s| s.code() == code)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            MentionStatus::Pending => "pending",
            MentionStatus::Processing => "processing",
            MentionStatus::Replied => "replied",
            MentionStatus::Ignored => "ignored",
            MentionStatus::Error => "error",
        }
    }

    pub fn parse(s: &str) -> Option<MentionStatus> {
        MentionStatus::ALL
            .into_iter()
            .find(|st| st.as_str().eq_ignore_ascii_case(s.trim()))
    }
}

impl fmt::Display for MentionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One tracked X account. Its OAuth tokens are deliberately *not* part of this type: they live in
/// their own store record ([`Tokens`]) so that printing or logging an account can never leak them.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, utoipa::ToSchema)]
pub struct Account {
    #[schema(value_type = String, format = Uuid)]
    pub id: AccountId,
    pub twitter_id: String,
    pub twitter_username: String,
    pub display_name: String,
    pub profile_image_url: Option<String>,
    pub is_active: bool,
    pub sync_status: SyncStatus,
    pub error_message: Option<String>,
    pub added_at: DateTime<Utc>,
    pub last_synced_at: Option<DateTime<Utc>>,
    pub total_mentions_tracked: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Account {
    /// A newly authorized account: active, never synced.
    pub fn new(
        twitter_id: String,
        twitter_username: String,
        display_name: String,
        profile_image_url: Option<String>,
        now: DateTime<Utc>,
    ) -> Account {
        Account {
            id: Uuid::new_v4(),
            twitter_id,
            twitter_username,
            display_name,
            profile_image_url,
            is_active: true,
            sync_status: SyncStatus::Active,
            error_message: None,
            added_at: now,
            last_synced_at: None,
            total_mentions_tracked: 0,
            created_at: now,
            updated_at: now,
        }
    }

    /// `@handle`, the way the UI and the CLI name an account.
    pub fn handle(&self) -> String {
        format!("@{}", self.twitter_username)
    }
}

/// A secret string (access token, refresh token, client secret). `Debug` and `Display` never show
/// the value; use [`Secret::expose`] at the one place that must send it.
#[derive(Serialize, Deserialize, Clone, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// The OAuth 2.0 user tokens of one account.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Tokens {
    pub access_token: Secret,
    pub refresh_token: Option<Secret>,
    /// When the access token stops working. A token response without `expires_in` is treated as
    /// already expired (as xurl does), so the first use refreshes it.
    pub expires_at: DateTime<Utc>,
    pub scope: String,
}

/// Who wrote a mention. Every field is optional: a page fetched without the `author_id` expansion
/// (or with the author hidden) still yields a mention, shown with the sender unknown.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct Sender {
    pub twitter_id: Option<String>,
    pub username: Option<String>,
    pub display_name: Option<String>,
    pub profile_image_url: Option<String>,
}

/// Whether `name` is an X username as X allows them: 1 to 15 of `[A-Za-z0-9_]`.
pub fn is_x_username(name: &str) -> bool {
    (1..=15).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

impl Sender {
    /// `@handle`, or `@unknown` when the API did not say who wrote the post.
    pub fn handle(&self) -> String {
        match &self.username {
            Some(u) => format!("@{u}"),
            None => "@unknown".to_string(),
        }
    }
}

/// Which tracked account a mention was sent to. Replies always go out from this account.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct SentTo {
    pub account_id: AccountId,
    pub twitter_id: String,
    pub username: String,
    pub display_name: String,
}

impl SentTo {
    /// The tracked account a mention was sent to, as the mention records it.
    pub fn account(account: &Account) -> SentTo {
        SentTo {
            account_id: account.id,
            twitter_id: account.twitter_id.clone(),
            username: account.twitter_username.clone(),
            display_name: account.display_name.clone(),
        }
    }
}

/// A reply (public post or DM) that perch sent for a mention.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, utoipa::ToSchema)]
pub struct Response {
    /// The post id (public reply) or DM event id.
    pub id: String,
    pub text: String,
    pub sent_at: DateTime<Utc>,
}

/// How a mention relates to another post.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReferenceKind {
    RepliedTo,
    Quoted,
}

/// A post the mention replies to or quotes, as far as the API returned it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, utoipa::ToSchema)]
pub struct ReferencedPost {
    pub kind: ReferenceKind,
    pub tweet_id: String,
    /// `None` when the API did not include the post (deleted, protected, or not expanded).
    pub text: Option<String>,
    pub author_username: Option<String>,
}

/// One post that mentions one tracked account. Keyed by (account, tweet id): a post that mentions
/// two tracked accounts is two mentions.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Mention {
    pub id: Uuid,
    pub tweet_id: String,
    /// When the post was created on X (`created_at`, or the snowflake's time when absent).
    pub timestamp: DateTime<Utc>,
    /// Unescaped post text, exactly as the author wrote it. Sanitise before drawing.
    pub text: String,
    pub sender: Sender,
    pub sent_to: SentTo,
    pub status: MentionStatus,
    pub public_response: Option<Response>,
    pub dm_response: Option<Response>,
    /// The thread this post belongs to (`conversation_id`), when the API returned it.
    pub conversation_id: Option<String>,
    /// Posts this one replies to or quotes.
    pub referenced_posts: Vec<ReferencedPost>,
    /// Why the last action on this mention failed (status `error`), in words for the user.
    pub error_message: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Why a person may not give a mention a status (see [`Mention::status_change_refused`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusRefusal {
    /// `processing` and `error` describe what perch's outbox is doing or met; only it sets them.
    SetByPerch(MentionStatus),
    /// A reply or DM went out: the mention stays `replied` (nothing can take a post back).
    ReplySent,
}

impl fmt::Display for StatusRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StatusRefusal::SetByPerch(MentionStatus::Processing) => f.write_str(
                "processing is set by perch while a reply is being sent; use pending, replied or ignored",
            ),
            StatusRefusal::SetByPerch(_) => f.write_str(
                "error is set by perch when a reply fails; use pending, replied or ignored",
            ),
            StatusRefusal::ReplySent => f.write_str(
                "a reply to it was sent, so it stays replied (a sent post cannot be taken back)",
            ),
        }
    }
}

impl Mention {
    /// The allowed triage transitions, defined once for the dashboard's keys and for
    /// `perch mentions set-status`: a person may set `pending`, `replied` or `ignored`, except
    /// that a mention with a sent reply stays `replied`. `processing` and `error` only come from
    /// the outbox. Setting the status a mention already has is always allowed (it changes
    /// nothing). Returns why not, or `None` when the change may be made.
    pub fn status_change_refused(&self, to: MentionStatus) -> Option<StatusRefusal> {
        if to == self.status {
            return None;
        }
        match to {
            MentionStatus::Processing | MentionStatus::Error => Some(StatusRefusal::SetByPerch(to)),
            MentionStatus::Replied => None,
            MentionStatus::Pending | MentionStatus::Ignored => (self.public_response.is_some()
                || self.dm_response.is_some())
            .then_some(StatusRefusal::ReplySent),
        }
    }

    /// The tweet id as a number (snowflakes order by time). Ids that are not decimal u64 sort first.
    pub fn tweet_id_u64(&self) -> u64 {
        self.tweet_id.parse().unwrap_or(0)
    }

    pub fn key(&self) -> MentionKey {
        MentionKey {
            account_id: self.sent_to.account_id,
            tweet_id: self.tweet_id_u64(),
        }
    }

    /// The post's address on x.com. Only X-shaped parts go into it (the link is copied to the
    /// clipboard through OSC 52 and opened in a browser): the sender's username when it is a valid
    /// X username, otherwise X's id-only form `i/web`, and the post id as a number.
    pub fn url(&self) -> String {
        let user = self
            .sender
            .username
            .as_deref()
            .filter(|u| is_x_username(u))
            .unwrap_or("i/web");
        format!("https://x.com/{user}/status/{}", self.tweet_id_u64())
    }
}

/// The store key of a mention: (account, tweet id).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MentionKey {
    pub account_id: AccountId,
    pub tweet_id: u64,
}

/// Milliseconds since the Unix epoch at which a snowflake id was minted (X's epoch is
/// 1288834974657 ms). Used when a post comes without `created_at`.
pub fn snowflake_time(id: u64) -> Option<DateTime<Utc>> {
    let ms = (id >> 22) as i64 + 1_288_834_974_657;
    DateTime::<Utc>::from_timestamp_millis(ms)
}

/// Figures for one account's stats view and `perch accounts stats`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, utoipa::ToSchema)]
pub struct AccountStats {
    #[schema(value_type = String, format = Uuid)]
    pub account_id: AccountId,
    pub username: String,
    pub total_mentions: u64,
    pub pending_mentions: u64,
    pub replied_mentions: u64,
    /// Since when perch has tracked the account (when it was added).
    pub tracked_since: DateTime<Utc>,
    /// Calendar days (UTC) from `tracked_since` to today, both counted.
    pub days_tracked: u64,
    /// Mentions posted during those days (the backfill also brings older ones, which are in
    /// `total_mentions` but say nothing about the rate since).
    pub mentions_while_tracked: u64,
    /// `mentions_while_tracked / days_tracked`, to two decimals.
    pub avg_mentions_per_day: f64,
    pub last_synced: Option<DateTime<Utc>>,
    pub sync_status: SyncStatus,
    pub is_active: bool,
}

/// How a mention first reached perch: by a poll of the mentions timeline, or pushed by the
/// Activity stream (issue 12).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Arrival {
    Poll,
    Stream,
}

impl Arrival {
    pub fn as_str(self) -> &'static str {
        match self {
            Arrival::Poll => "poll",
            Arrival::Stream => "stream",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snowflake_time_matches_recorded_cassette() {
        // CONTRACT.md §9: 1578516295611748353 → 2022-10-07T22:43:06.945Z.
        let t = snowflake_time(1578516295611748353).unwrap();
        assert_eq!(t.to_rfc3339(), "2022-10-07T22:43:06.945+00:00");
    }

    #[test]
    fn links_use_only_valid_usernames_and_numeric_ids() {
        let now = Utc::now();
        let mut m = Mention {
            id: Uuid::from_u128(1),
            tweet_id: "1900".into(),
            timestamp: now,
            text: "hi".into(),
            sender: Sender {
                username: Some("carol_codes".into()),
                ..Sender::default()
            },
            sent_to: SentTo {
                account_id: Uuid::from_u128(2),
                twitter_id: "2".into(),
                username: "acme".into(),
                display_name: "Acme".into(),
            },
            status: MentionStatus::Pending,
            public_response: None,
            dm_response: None,
            conversation_id: None,
            referenced_posts: vec![],
            error_message: None,
            created_at: now,
            updated_at: now,
        };
        assert_eq!(m.url(), "https://x.com/carol_codes/status/1900");
        for hostile in [
            "evil\u{1b}]52;c;aGk=\u{7}",
            "bidi\u{202e}x",
            "c1\u{9b}2J",
            "sixteen_chars_xx",
            "",
        ] {
            m.sender.username = Some(hostile.into());
            assert_eq!(m.url(), "https://x.com/i/web/status/1900", "{hostile:?}");
        }
        assert!(is_x_username("a") && is_x_username("A_1_b2_C3_d4_E5"));
    }

    #[test]
    fn secrets_never_show_in_debug() {
        let t = Tokens {
            access_token: Secret::new("AT-very-secret"),
            refresh_token: Some(Secret::new("RT-very-secret")),
            expires_at: Utc::now(),
            scope: "tweet.read".into(),
        };
        let shown = format!("{t:?}");
        assert!(!shown.contains("very-secret"), "{shown}");
    }

    #[test]
    fn statuses_serialize_snake_case() {
        assert_eq!(
            serde_json::to_string(&SyncStatus::TokenExpired).unwrap(),
            "\"token_expired\""
        );
        assert_eq!(
            serde_json::to_string(&MentionStatus::Processing).unwrap(),
            "\"processing\""
        );
        for s in MentionStatus::ALL {
            assert_eq!(MentionStatus::from_code(s.code()), Some(s));
            assert_eq!(MentionStatus::parse(s.as_str()), Some(s));
        }
    }
}

/// A public reply or a direct message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReplyKind {
    Public,
    Dm,
}

impl ReplyKind {
    /// "reply" or "DM", for messages.
    pub fn noun(self) -> &'static str {
        match self {
            ReplyKind::Public => "reply",
            ReplyKind::Dm => "DM",
        }
    }
}
