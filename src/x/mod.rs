//! X API v2 client: request building, response parsing, rate-limit headers, typed errors.
//! It knows nothing about the TUI or the store.
//!
//! - `wire`: X's JSON and its conversion into the types below (joins, unescaping, lenient items).
//! - `errors`: unsuccessful responses → [`XError`] (Problem, legacy and non-JSON bodies).
//! - `ratelimit`: the `x-rate-limit-*` and 24-hour headers.
//! - `activity`: the X Activity API stream's lines and subscription bodies.

pub mod activity;
mod activity_api;
pub(crate) mod errors;
mod ratelimit;
mod usage;
pub(crate) mod wire;

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::Method;
use uuid::Uuid;

use crate::domain::{
    Account, Mention, MentionStatus, ReferencedPost, Secret, Sender, SentTo, snowflake_time,
};

pub use ratelimit::{
    MAX_RESET_AHEAD, ResetTime, judge_reset, parse_rate_limit, parse_rate_limit_at,
    parse_retry_after,
};
pub use usage::parse_usage;
pub use wire::unescape_entities;

/// One `x-rate-limit-*` (or 24-hour) budget as the response headers reported it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    pub limit: u32,
    pub remaining: u32,
    pub reset: DateTime<Utc>,
}

/// The rate-limit headers of one response.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RateLimit {
    /// `x-rate-limit-limit/remaining/reset` (15-minute window).
    pub window: Option<Budget>,
    /// `x-user-limit-24hour-*` when present.
    pub user_24h: Option<Budget>,
    /// `x-app-limit-24hour-*` when present.
    pub app_24h: Option<Budget>,
    /// `Retry-After` (seconds or an HTTP-date) when present and readable.
    pub retry_after: Option<DateTime<Utc>>,
}

/// A successful response with what the headers said.
#[derive(Clone, Debug)]
pub struct XResponse<T> {
    pub data: T,
    pub rate_limit: RateLimit,
    /// `x-transaction-id`, for logs.
    pub transaction_id: Option<String>,
}

/// Every way a call can fail, classified so callers can decide: refresh, wait, back off, stop.
#[derive(Clone, Debug, thiserror::Error)]
pub enum XError {
    /// 401: missing, expired or revoked access token (refresh once, retry once).
    #[error("X rejected the access token (401 Unauthorized)")]
    Unauthorized { rate_limit: RateLimit },
    /// 403, with X's own `detail` (duplicate content, not allowed to reply, DM refused,
    /// client-not-enrolled, missing scope...). `problem_type` is the Problem `type` suffix.
    #[error("X refused the request (403): {detail}")]
    Forbidden {
        detail: String,
        problem_type: Option<String>,
        reason: Option<String>,
        rate_limit: RateLimit,
    },
    /// 402: pay-per-use credits depleted.
    #[error("X says the developer account is out of credits (402): {detail}")]
    CreditsDepleted { detail: String },
    /// 429: wait until `reset` (the exhausted budget's reset time, 15-minute or 24-hour).
    #[error("X's rate limit is spent ({detail}){}", until(reset))]
    RateLimited {
        reset: Option<DateTime<Utc>>,
        detail: String,
        rate_limit: RateLimit,
    },
    /// 400 invalid-request or another 4xx: a bug or bad input, do not retry.
    #[error("X rejected the request ({status}): {detail}")]
    InvalidRequest { status: u16, detail: String },
    /// 5xx: transient; back off and retry.
    #[error("X had a server error ({status}): {detail}")]
    Server { status: u16, detail: String },
    /// Connect/read timeout, connection reset, DNS...: transient.
    #[error("network error talking to X: {0}")]
    Network(String),
    /// A 2xx body that is not the expected JSON shape. The page must be rejected.
    #[error(
        "X sent a response perch cannot read ({detail}{})",
        request_id(transaction_id)
    )]
    Malformed {
        detail: String,
        transaction_id: Option<String>,
    },
}

/// "; request id 1a2b3c" when X gave one, for the user to quote in a report; nothing otherwise.
fn request_id(transaction_id: &Option<String>) -> String {
    match transaction_id {
        Some(id) => format!("; request id {}", crate::text::shown_field(id)),
        None => String::new(),
    }
}

/// ", perch waits until 14:05 UTC" (for the rate-limit message).
fn until(reset: &Option<DateTime<Utc>>) -> String {
    // A reset that has passed, or that no budget could last until, is no time to name.
    match judge_reset(*reset, Utc::now()) {
        ResetTime::Ahead(t) => format!(
            "; perch waits until {} UTC and tries again",
            t.format("%H:%M")
        ),
        ResetTime::NotAhead | ResetTime::Implausible(_) => {
            "; perch waits and tries again later".to_string()
        }
    }
}

/// The authenticated user (`GET /2/users/me`).
#[derive(Clone, Debug, PartialEq)]
pub struct Me {
    pub id: String,
    pub username: String,
    pub name: String,
    pub profile_image_url: Option<String>,
}

/// One post from a mentions page, already joined with its `includes` and unescaped.
#[derive(Clone, Debug, PartialEq)]
pub struct FetchedPost {
    pub tweet_id: u64,
    pub created_at: Option<DateTime<Utc>>,
    pub text: String,
    pub author: Sender,
    pub conversation_id: Option<String>,
    pub in_reply_to_user_id: Option<String>,
    pub referenced_posts: Vec<ReferencedPost>,
    /// `referenced_tweets` contains `retweeted`: not a mention to answer.
    pub is_retweet: bool,
}

/// One page of `GET /2/users/{id}/mentions`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MentionsPage {
    pub posts: Vec<FetchedPost>,
    /// `meta.newest_id` as X sent it (never a fallback: see `sync::page`).
    pub newest_id: Option<u64>,
    /// `meta.oldest_id` as X sent it.
    pub oldest_id: Option<u64>,
    pub next_token: Option<String>,
    pub result_count: u32,
    /// Partial errors (HTTP 200 `errors` array), as one line each.
    pub partial_errors: Vec<String>,
    /// Items of `data` that could not be read; the rest of the page is still good.
    pub skipped_items: Vec<String>,
    /// The ids of the unreadable items, where at least the id could be read.
    pub skipped_ids: Vec<u64>,
    /// The id of every item of `data` whose id could be read, readable post or not.
    pub item_ids: Vec<u64>,
    /// How many items `data` held (readable or not).
    pub item_count: usize,
}

/// A created post (`POST /2/tweets`, 201).
#[derive(Clone, Debug, PartialEq)]
pub struct PostedTweet {
    pub id: String,
    pub text: String,
}

/// A sent DM (`POST /2/dm_conversations/with/{id}/messages`, 201).
#[derive(Clone, Debug, PartialEq)]
pub struct SentDm {
    pub dm_event_id: String,
    pub dm_conversation_id: String,
}

/// Which endpoint a budget belongs to (the sync engine tracks budgets per account per endpoint).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Endpoint {
    UsersMe,
    Mentions,
    CreateTweet,
    SendDm,
    Usage,
    /// `POST /oauth2/token` with client_credentials: the app Bearer.
    AppToken,
    /// `/2/activity/subscriptions`.
    Subscriptions,
    /// `GET /2/activity/stream`.
    ActivityStream,
}

/// How long to wait for a connection, and for a whole request, unless told otherwise.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The user fields perch asks for wherever users appear.
const USER_FIELDS: &str = "name,username,profile_image_url";
const MENTION_EXPANSIONS: &str = "author_id,in_reply_to_user_id,referenced_tweets.id";
const MENTION_TWEET_FIELDS: &str =
    "created_at,conversation_id,author_id,in_reply_to_user_id,referenced_tweets,entities";

impl Endpoint {
    /// For logs.
    pub fn name(self) -> &'static str {
        match self {
            Endpoint::UsersMe => "users/me",
            Endpoint::Mentions => "users/mentions",
            Endpoint::CreateTweet => "create tweet",
            Endpoint::SendDm => "send DM",
            Endpoint::Usage => "usage/tweets",
            Endpoint::AppToken => "oauth2/token (app)",
            Endpoint::Subscriptions => "activity/subscriptions",
            Endpoint::ActivityStream => "activity/stream",
        }
    }
}

impl XError {
    /// The rate-limit headers of the failed response, when the variant carries them.
    pub fn rate_limit(&self) -> Option<&RateLimit> {
        match self {
            XError::Unauthorized { rate_limit }
            | XError::Forbidden { rate_limit, .. }
            | XError::RateLimited { rate_limit, .. } => Some(rate_limit),
            _ => None,
        }
    }

    /// Worth trying again later without changing anything (network, 5xx, 429).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            XError::Network(_) | XError::Server { .. } | XError::RateLimited { .. }
        )
    }
}

/// A response that arrived, before its body is interpreted.
struct RawResponse {
    status: u16,
    rate_limit: RateLimit,
    transaction_id: Option<String>,
    body: Vec<u8>,
}

#[derive(Clone)]
pub struct XClient {
    api_base: String,
    http: reqwest::Client,
    /// For the Activity stream: a connect timeout but no total one (the response never ends;
    /// the reader's stall timer watches it instead).
    stream_http: reqwest::Client,
}

impl std::fmt::Debug for XClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XClient")
            .field("api_base", &self.api_base)
            .finish_non_exhaustive()
    }
}

impl XClient {
    /// A client for `api_base` (e.g. `https://api.x.com`, or the simulator's address).
    pub fn new(api_base: &str) -> XClient {
        XClient::with_timeouts(api_base, DEFAULT_CONNECT_TIMEOUT, DEFAULT_REQUEST_TIMEOUT)
    }

    /// As [`XClient::new`], with the time allowed to connect and for a whole request.
    pub fn with_timeouts(api_base: &str, connect: Duration, request: Duration) -> XClient {
        let http = reqwest::Client::builder()
            .user_agent(concat!("perch/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(connect)
            .timeout(request)
            // The API never redirects a valid call; following one could carry the bearer token
            // somewhere else.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_else(|e| {
                tracing::warn!("cannot build the configured HTTP client ({e}); using defaults");
                reqwest::Client::default()
            });
        let stream_http = reqwest::Client::builder()
            .user_agent(concat!("perch/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(connect)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_else(|e| {
                tracing::warn!("cannot build the stream's HTTP client ({e}); using defaults");
                reqwest::Client::default()
            });
        XClient {
            api_base: api_base.trim_end_matches('/').to_string(),
            http,
            stream_http,
        }
    }

    /// The base URL this client talks to.
    pub fn api_base(&self) -> &str {
        &self.api_base
    }

    /// Sends one request and reads the whole response. Never logs the token or the body.
    async fn send(
        &self,
        endpoint: Endpoint,
        method: Method,
        path: &str,
        token: &Secret,
        query: &[(&str, String)],
        json: Option<serde_json::Value>,
    ) -> Result<RawResponse, XError> {
        let url = format!("{}{}", self.api_base, path);
        let mut request = self
            .http
            .request(method, &url)
            .bearer_auth(token.expose())
            .query(query);
        if let Some(json) = json {
            request = request.json(&json);
        }
        let response = request
            .send()
            .await
            .map_err(|e| network_error(endpoint, &e))?;
        let status = response.status().as_u16();
        let rate_limit = parse_rate_limit(response.headers());
        let transaction_id = response
            .headers()
            .get("x-transaction-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = response
            .bytes()
            .await
            .map_err(|e| network_error(endpoint, &e))?
            .to_vec();
        tracing::debug!(
            endpoint = endpoint.name(),
            status,
            transaction_id = transaction_id.as_deref().unwrap_or("-"),
            remaining = rate_limit.window.map(|b| b.remaining),
            "X API response"
        );
        let raw = RawResponse {
            status,
            rate_limit,
            transaction_id,
            body,
        };
        if (200..300).contains(&raw.status) {
            Ok(raw)
        } else {
            let error = errors::classify(raw.status, raw.rate_limit, &raw.body);
            tracing::info!(
                endpoint = endpoint.name(),
                status = raw.status,
                transaction_id = raw.transaction_id.as_deref().unwrap_or("-"),
                "X API error: {error}"
            );
            Err(error)
        }
    }

    pub async fn users_me(&self, token: &Secret) -> Result<XResponse<Me>, XError> {
        let raw = self
            .send(
                Endpoint::UsersMe,
                Method::GET,
                "/2/users/me",
                token,
                &[("user.fields", USER_FIELDS.to_string())],
                None,
            )
            .await?;
        interpret(Endpoint::UsersMe, raw, wire::parse_me)
    }

    /// One page of mentions, newest first, strictly newer than `since_id`.
    pub async fn mentions_page(
        &self,
        token: &Secret,
        user_id: &str,
        since_id: Option<u64>,
        pagination_token: Option<&str>,
    ) -> Result<XResponse<MentionsPage>, XError> {
        self.mentions_page_sized(token, user_id, since_id, pagination_token, 100)
            .await
    }

    /// [`XClient::mentions_page`] asking for at most `max_results` posts (X serves 5 to 100; the
    /// value is clamped): a page sized to what the budget still covers.
    pub async fn mentions_page_sized(
        &self,
        token: &Secret,
        user_id: &str,
        since_id: Option<u64>,
        pagination_token: Option<&str>,
        max_results: u32,
    ) -> Result<XResponse<MentionsPage>, XError> {
        let user_id = user_id.trim();
        // A user id goes into the path: refuse anything that is not one rather than build an
        // unexpected URL.
        if user_id.parse::<u64>().is_err() {
            return Err(XError::InvalidRequest {
                status: 0,
                detail: format!("{user_id:?} is not an X user id"),
            });
        }
        let mut query = vec![
            ("max_results", max_results.clamp(5, 100).to_string()),
            ("expansions", MENTION_EXPANSIONS.to_string()),
            ("tweet.fields", MENTION_TWEET_FIELDS.to_string()),
            ("user.fields", USER_FIELDS.to_string()),
        ];
        if let Some(since_id) = since_id {
            query.push(("since_id", since_id.to_string()));
        }
        if let Some(token) = pagination_token {
            query.push(("pagination_token", token.to_string()));
        }
        let raw = self
            .send(
                Endpoint::Mentions,
                Method::GET,
                &format!("/2/users/{user_id}/mentions"),
                token,
                &query,
                None,
            )
            .await?;
        let response = interpret(Endpoint::Mentions, raw, wire::parse_mentions)?;
        for line in &response.data.skipped_items {
            tracing::warn!("skipped an unreadable post in a mentions page: {line}");
        }
        Ok(response)
    }

    pub async fn post_reply(
        &self,
        token: &Secret,
        text: &str,
        in_reply_to_tweet_id: &str,
    ) -> Result<XResponse<PostedTweet>, XError> {
        let body = serde_json::json!({
            "text": text,
            "reply": { "in_reply_to_tweet_id": in_reply_to_tweet_id.trim() },
        });
        let raw = self
            .send(
                Endpoint::CreateTweet,
                Method::POST,
                "/2/tweets",
                token,
                &[],
                Some(body),
            )
            .await?;
        interpret(Endpoint::CreateTweet, raw, wire::parse_posted)
    }

    pub async fn send_dm(
        &self,
        token: &Secret,
        participant_id: &str,
        text: &str,
    ) -> Result<XResponse<SentDm>, XError> {
        let participant_id = participant_id.trim();
        if participant_id.parse::<u64>().is_err() {
            return Err(XError::InvalidRequest {
                status: 0,
                detail: format!("{participant_id:?} is not an X user id"),
            });
        }
        let raw = self
            .send(
                Endpoint::SendDm,
                Method::POST,
                &format!("/2/dm_conversations/with/{participant_id}/messages"),
                token,
                &[],
                Some(serde_json::json!({ "text": text })),
            )
            .await?;
        interpret(Endpoint::SendDm, raw, wire::parse_dm)
    }
}

impl XClient {
    /// X's count of posts consumed (`GET /2/usage/tweets`), with the app-only Bearer token.
    pub async fn usage_tweets(&self, bearer: &Secret) -> Result<crate::costs::XUsage, XError> {
        let raw = self
            .send(
                Endpoint::Usage,
                Method::GET,
                "/2/usage/tweets",
                bearer,
                &[
                    ("days", "31".to_string()),
                    ("usage.fields", "daily_project_usage".to_string()),
                ],
                None,
            )
            .await?;
        usage::parse_usage(&raw.body, Utc::now()).map_err(|detail| XError::Malformed {
            detail: format!("usage/tweets: {detail}"),
            transaction_id: raw.transaction_id,
        })
    }
}

fn network_error(endpoint: Endpoint, e: &reqwest::Error) -> XError {
    // reqwest's Display can include the URL (no token: that is in a header), never the headers.
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "connection failed"
    };
    XError::Network(format!("{} {what}: {e}", endpoint.name()))
}

/// Reads a 2xx body with `parse`; a body that is not the expected shape is `Malformed`.
// XError carries the rate-limit headers by value (the module's contract); it is returned rarely.
#[allow(clippy::result_large_err)]
fn interpret<T>(
    endpoint: Endpoint,
    raw: RawResponse,
    parse: fn(&[u8]) -> Result<T, wire::ShapeError>,
) -> Result<XResponse<T>, XError> {
    match parse(&raw.body) {
        Ok(data) => Ok(XResponse {
            data,
            rate_limit: raw.rate_limit,
            transaction_id: raw.transaction_id,
        }),
        Err(detail) => {
            tracing::warn!(
                endpoint = endpoint.name(),
                transaction_id = raw.transaction_id.as_deref().unwrap_or("-"),
                "unreadable X response: {detail}"
            );
            Err(XError::Malformed {
                detail: format!("{}: {detail}", endpoint.name()),
                transaction_id: raw.transaction_id,
            })
        }
    }
}

/// Turns a fetched post into a stored mention of `account` (status pending).
pub fn to_mention(post: &FetchedPost, account: &Account, now: DateTime<Utc>) -> Mention {
    let timestamp = post
        .created_at
        .or_else(|| snowflake_time(post.tweet_id))
        .unwrap_or(now);
    Mention {
        id: Uuid::new_v4(),
        tweet_id: post.tweet_id.to_string(),
        timestamp,
        text: post.text.clone(),
        sender: post.author.clone(),
        sent_to: SentTo::account(account),
        status: MentionStatus::Pending,
        public_response: None,
        dm_response: None,
        conversation_id: post.conversation_id.clone(),
        referenced_posts: post.referenced_posts.clone(),
        error_message: None,
        created_at: now,
        updated_at: now,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account() -> Account {
        Account::new(
            "1072250532645998596".into(),
            "TweepyDev".into(),
            "Tweepy Testing".into(),
            None,
            Utc::now(),
        )
    }

    #[test]
    fn error_messages_are_sentences_without_debug_text() {
        let with_id = XError::Malformed {
            detail: "users/mentions: expected value".into(),
            transaction_id: Some("abc".into()),
        };
        assert_eq!(
            with_id.to_string(),
            "X sent a response perch cannot read (users/mentions: expected value; request id abc)"
        );
        let without = XError::Malformed {
            detail: "users/mentions: expected value".into(),
            transaction_id: None,
        };
        let shown = without.to_string();
        assert!(
            !shown.contains("None") && !shown.contains("Some("),
            "{shown}"
        );
    }

    #[test]
    fn mention_without_created_at_takes_the_snowflake_time() {
        let post = FetchedPost {
            tweet_id: 1578516295611748353,
            created_at: None,
            text: "hi".into(),
            author: Sender::default(),
            conversation_id: None,
            in_reply_to_user_id: None,
            referenced_posts: vec![],
            is_retweet: false,
        };
        let acc = account();
        let now = Utc::now();
        let m = to_mention(&post, &acc, now);
        assert_eq!(m.timestamp.to_rfc3339(), "2022-10-07T22:43:06.945+00:00");
        assert_eq!(m.tweet_id, "1578516295611748353");
        assert_eq!(m.status, MentionStatus::Pending);
        assert_eq!(m.sent_to.account_id, acc.id);
        assert_eq!(m.sent_to.username, "TweepyDev");
        assert_eq!(m.sender.handle(), "@unknown");
        assert_eq!((m.created_at, m.updated_at), (now, now));
    }

    #[test]
    fn mention_keeps_created_at_and_references() {
        let created = DateTime::parse_from_rfc3339("2026-11-25T09:41:07.000Z")
            .unwrap()
            .with_timezone(&Utc);
        let post = FetchedPost {
            tweet_id: 2125525178881044481,
            created_at: Some(created),
            text: "q".into(),
            author: Sender {
                twitter_id: Some("1".into()),
                username: Some("carol_codes".into()),
                display_name: Some("Carol".into()),
                profile_image_url: None,
            },
            conversation_id: Some("2125525178881044481".into()),
            in_reply_to_user_id: None,
            referenced_posts: vec![ReferencedPost {
                kind: crate::domain::ReferenceKind::Quoted,
                tweet_id: "2125322480260857857".into(),
                text: Some("t".into()),
                author_username: None,
            }],
            is_retweet: false,
        };
        let m = to_mention(&post, &account(), Utc::now());
        assert_eq!(m.timestamp, created);
        assert_eq!(m.referenced_posts, post.referenced_posts);
        assert_eq!(m.conversation_id.as_deref(), Some("2125525178881044481"));
        assert_eq!(m.sender.handle(), "@carol_codes");
    }
}
