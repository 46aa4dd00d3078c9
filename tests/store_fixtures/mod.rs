//! Builders shared by the store tests (`tests/store_*.rs`).
#![allow(dead_code)]

use chrono::{DateTime, TimeZone, Utc};
use perch::domain::{
    Account, AccountId, Mention, MentionStatus, ReferenceKind, ReferencedPost, Response, Sender,
    SentTo, snowflake_time,
};
use uuid::Uuid;

pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
}

pub fn account(n: u128, username: &str) -> Account {
    let mut a = Account::new(
        format!("{}", 1000 + n),
        username.to_string(),
        format!("{username} display"),
        Some(format!("https://pbs.example/{username}.jpg")),
        t0(),
    );
    a.id = AccountId::from_u128(n);
    a
}

/// A mention of `account` with tweet id `tweet` (its timestamp follows the snowflake).
pub fn mention(account: &Account, tweet: u64, text: &str) -> Mention {
    let ts = snowflake_time(tweet).unwrap_or_else(t0);
    Mention {
        id: Uuid::from_u128(tweet as u128 ^ account.id.as_u128()),
        tweet_id: tweet.to_string(),
        timestamp: ts,
        text: text.to_string(),
        sender: Sender {
            twitter_id: Some(format!("9{tweet}")),
            username: Some(format!("sender{}", tweet % 7)),
            display_name: Some(format!("Sender Number {}", tweet % 7)),
            profile_image_url: None,
        },
        sent_to: SentTo::account(account),
        status: MentionStatus::Pending,
        public_response: None,
        dm_response: None,
        conversation_id: Some(tweet.to_string()),
        referenced_posts: Vec::new(),
        error_message: None,
        created_at: t0(),
        updated_at: t0(),
    }
}

/// A mention with every optional field filled, for round-trip tests.
pub fn full_mention(account: &Account, tweet: u64) -> Mention {
    let mut m = mention(
        account,
        tweet,
        "héllo 🌍 世界 &lt;not html&gt; https://example.com/x",
    );
    m.status = MentionStatus::Replied;
    m.public_response = Some(Response {
        id: "77".into(),
        text: "thanks!".into(),
        sent_at: t0(),
    });
    m.dm_response = Some(Response {
        id: "dm-1".into(),
        text: "dm text".into(),
        sent_at: t0(),
    });
    m.referenced_posts = vec![ReferencedPost {
        kind: ReferenceKind::Quoted,
        tweet_id: "5".into(),
        text: None,
        author_username: Some("quoted".into()),
    }];
    m.error_message = Some("earlier failure".into());
    m
}

/// Snowflake-like tweet ids that increase with `i` (newer = larger).
pub fn tweet(i: u64) -> u64 {
    (1_600_000_000_000_000_000u64) + (i << 22)
}
