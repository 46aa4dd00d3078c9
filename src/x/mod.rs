//! X API v2 client: request building, response parsing, rate-limit headers, typed errors.
//! It knows nothing about the TUI or the store.
//!
//! SKELETON: the public types and signatures below are the contract the sync engine, the outbox
//! and auth code against. Keep them (extend freely).

use chrono::{DateTime, Utc};

use crate::domain::{Account, Mention, ReferencedPost, Secret, Sender};

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
    #[error("rate limited by X until {reset:?}")]
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
    #[error("X sent a response perch cannot read ({detail}; request id {transaction_id:?})")]
    Malformed {
        detail: String,
        transaction_id: Option<String>,
    },
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
    pub newest_id: Option<u64>,
    pub oldest_id: Option<u64>,
    pub next_token: Option<String>,
    pub result_count: u32,
    /// Partial errors (HTTP 200 `errors` array), as one line each.
    pub partial_errors: Vec<String>,
    /// Items of `data` that could not be read; the rest of the page is still good.
    pub skipped_items: Vec<String>,
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
}

#[derive(Clone)]
pub struct XClient {
    api_base: String,
}

impl XClient {
    /// A client for `api_base` (e.g. `https://api.x.com`, or the simulator's address).
    pub fn new(api_base: &str) -> XClient {
        let _ = api_base;
        todo!()
    }

    pub async fn users_me(&self, token: &Secret) -> Result<XResponse<Me>, XError> {
        let _ = token;
        todo!()
    }

    /// One page of mentions, newest first, strictly newer than `since_id`.
    pub async fn mentions_page(
        &self,
        token: &Secret,
        user_id: &str,
        since_id: Option<u64>,
        pagination_token: Option<&str>,
    ) -> Result<XResponse<MentionsPage>, XError> {
        let _ = (token, user_id, since_id, pagination_token);
        todo!()
    }

    pub async fn post_reply(
        &self,
        token: &Secret,
        text: &str,
        in_reply_to_tweet_id: &str,
    ) -> Result<XResponse<PostedTweet>, XError> {
        let _ = (token, text, in_reply_to_tweet_id);
        todo!()
    }

    pub async fn send_dm(
        &self,
        token: &Secret,
        participant_id: &str,
        text: &str,
    ) -> Result<XResponse<SentDm>, XError> {
        let _ = (token, participant_id, text);
        todo!()
    }
}

/// Turns a fetched post into a stored mention of `account` (status pending).
pub fn to_mention(post: &FetchedPost, account: &Account, now: DateTime<Utc>) -> Mention {
    let _ = (post, account, now);
    todo!()
}
