//! The key layout. Everything lives in ONE sled tree, each kind of key under its own leading tag
//! byte, so that a fetched page (records, index entries, counters, cursor) commits as a single
//! `apply_batch`, which sled applies atomically. A multi-tree sled transaction would give the same
//! atomicity at several times the cost per key, and the ingest target (issue 6) is measured against
//! plain `apply_batch`.
//!
//! Per mention the store writes exactly two keys:
//! - `m | account | tweet` → the record. This is also the "one account" feed order (newest first
//!   = reverse key order), so that order needs no separate index.
//! - `s | account | status | tweet` → empty. The "one account, one status" order.
//!
//! The "all accounts" and "one status" orders are k-way merges of those per-account ranges (see
//! `feed.rs`): the number of accounts is small, so a page costs O(page × accounts) key reads and
//! never depends on how many mentions are stored, while ingest writes half the keys a design with
//! four separate index entries per mention would.
//!
//! Integers are big-endian so that byte order is numeric order; tweet ids are snowflakes, so
//! numeric order is time order.

use chrono::{DateTime, NaiveDate, Utc};

use crate::domain::{AccountId, MentionStatus};

/// Store-wide metadata: `0x00 | name`.
pub const META: u8 = 0x00;
/// Account record: `a | account`.
pub const ACCOUNT: u8 = b'a';
/// Unique X user id → account: `u | twitter_id (utf-8)` → account uuid bytes.
pub const TWITTER_ID: u8 = b'u';
/// Tokens record: `t | account`.
pub const TOKENS: u8 = b't';
/// Sync cursor: `k | account` → u64 BE.
pub const CURSOR: u8 = b'k';
/// When the first mention of an account was stored: `f | account` → record (DateTime).
pub const FIRST_SEEN: u8 = b'f';
/// Mention record: `m | account | tweet`.
pub const MENTION: u8 = b'm';
/// Account+status index: `s | account | status | tweet` → empty.
pub const BY_STATUS: u8 = b's';
/// Per-account per-status counter: `c | account | status` → u64 BE.
pub const STATUS_COUNT: u8 = b'c';
/// Store-wide per-status counter: `g | status` → u64 BE (counts for "all accounts" filters,
/// including mentions of removed accounts that were kept).
pub const GLOBAL_COUNT: u8 = b'g';
/// Per-account per-day counter: `d | account | day` → u64 BE.
pub const DAY_COUNT: u8 = b'd';
/// Draft of a reply: `r | account | tweet` → record.
pub const DRAFT: u8 = b'r';
/// A post X sent in a mentions page that could not be read, so it was skipped: `n | account |
/// tweet` → record (when it was first skipped).
pub const UNREADABLE: u8 = b'n';
/// How many unreadable posts were skipped for an account: `N | account` → u64 BE.
pub const UNREADABLE_COUNT: u8 = b'N';

/// A mention that first arrived by the Activity stream: `w | account | tweet` → empty. Absent:
/// it arrived by a poll (or was stored before perch had a stream). Written in the batch that
/// stores the mention, so a record never exists without it; a separate key rather than a field
/// of the record, so no record format changes and older perch versions simply ignore it.
pub const STREAMED: u8 = b'w';

/// A person on the team (issue 16): `P | name (utf-8)` → record.
pub const PERSON: u8 = b'P';
/// The audit log: `L | seq (u64 BE)` → record. Appended to only.
pub const AUDIT: u8 = b'L';
/// Who a mention is assigned to: `A | account | tweet` → record. Its own key rather than a field
/// of the mention, so assigning never rewrites the mention (or its indexes).
pub const ASSIGNED: u8 = b'A';

/// The meta key holding the store's format number (one byte).
pub const FORMAT_KEY: &[u8] = b"\x00format";

pub const UUID_LEN: usize = 16;
/// Length of `tag | account`.
pub const ACCOUNT_PREFIX_LEN: usize = 1 + UUID_LEN;

pub fn account_key(tag: u8, account: AccountId) -> [u8; ACCOUNT_PREFIX_LEN] {
    let mut k = [0u8; ACCOUNT_PREFIX_LEN];
    k[0] = tag;
    k[1..].copy_from_slice(account.as_bytes());
    k
}

pub fn mention_key(account: AccountId, tweet: u64) -> [u8; 25] {
    let mut k = [0u8; 25];
    k[..17].copy_from_slice(&account_key(MENTION, account));
    k[17..].copy_from_slice(&tweet.to_be_bytes());
    k
}

pub fn streamed_key(account: AccountId, tweet: u64) -> [u8; 25] {
    let mut k = mention_key(account, tweet);
    k[0] = STREAMED;
    k
}

pub fn status_prefix(account: AccountId, status: MentionStatus) -> [u8; 18] {
    let mut k = [0u8; 18];
    k[..17].copy_from_slice(&account_key(BY_STATUS, account));
    k[17] = status.code();
    k
}

pub fn status_index_key(account: AccountId, status: MentionStatus, tweet: u64) -> [u8; 26] {
    let mut k = [0u8; 26];
    k[..18].copy_from_slice(&status_prefix(account, status));
    k[18..].copy_from_slice(&tweet.to_be_bytes());
    k
}

pub fn status_count_key(account: AccountId, status: MentionStatus) -> [u8; 18] {
    let mut k = [0u8; 18];
    k[..17].copy_from_slice(&account_key(STATUS_COUNT, account));
    k[17] = status.code();
    k
}

pub fn global_count_key(status: MentionStatus) -> [u8; 2] {
    [GLOBAL_COUNT, status.code()]
}

pub fn draft_key(account: AccountId, tweet: u64) -> [u8; 25] {
    let mut k = mention_key(account, tweet);
    k[0] = DRAFT;
    k
}

pub fn assigned_key(account: AccountId, tweet: u64) -> [u8; 25] {
    let mut k = mention_key(account, tweet);
    k[0] = ASSIGNED;
    k
}

pub fn unreadable_key(account: AccountId, tweet: u64) -> [u8; 25] {
    let mut k = mention_key(account, tweet);
    k[0] = UNREADABLE;
    k
}

pub fn twitter_id_key(twitter_id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + twitter_id.len());
    k.push(TWITTER_ID);
    k.extend_from_slice(twitter_id.as_bytes());
    k
}

/// Days since 1970-01-01, shifted to be unsigned so big-endian bytes sort by date.
pub fn day_number(day: NaiveDate) -> u32 {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    let days = (day - epoch).num_days();
    (days.clamp(i32::MIN as i64, i32::MAX as i64) as i32 as u32) ^ 0x8000_0000
}

pub fn day_of(t: DateTime<Utc>) -> NaiveDate {
    t.date_naive()
}

pub fn day_count_key(account: AccountId, day: NaiveDate) -> [u8; 21] {
    let mut k = [0u8; 21];
    k[..17].copy_from_slice(&account_key(DAY_COUNT, account));
    k[17..].copy_from_slice(&day_number(day).to_be_bytes());
    k
}

/// The tweet id at the end of a key (`… | tweet`), if the key is long enough.
pub fn trailing_tweet(key: &[u8]) -> Option<u64> {
    let start = key.len().checked_sub(8)?;
    let bytes: [u8; 8] = key[start..].try_into().ok()?;
    Some(u64::from_be_bytes(bytes))
}

/// The account uuid right after the tag byte.
pub fn key_account(key: &[u8]) -> Option<AccountId> {
    let bytes: [u8; UUID_LEN] = key.get(1..ACCOUNT_PREFIX_LEN)?.try_into().ok()?;
    Some(AccountId::from_bytes(bytes))
}

/// A stored u64 counter or cursor value.
pub fn read_u64(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.try_into().ok()?))
}

/// The smallest key greater than every key starting with `prefix` (None: no such key).
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mention_keys_sort_by_account_then_tweet_number() {
        let a = AccountId::from_u128(1);
        assert!(mention_key(a, 9) < mention_key(a, 10));
        assert!(mention_key(a, u64::MAX) < mention_key(AccountId::from_u128(2), 0));
        assert_eq!(trailing_tweet(&mention_key(a, 77)), Some(77));
        assert_eq!(key_account(&mention_key(a, 77)), Some(a));
    }

    #[test]
    fn day_keys_sort_by_date_across_the_epoch() {
        let before = NaiveDate::from_ymd_opt(1969, 12, 31).unwrap();
        let after = NaiveDate::from_ymd_opt(1970, 1, 2).unwrap();
        assert!(day_number(before) < day_number(after));
    }

    #[test]
    fn prefix_end_is_the_next_prefix() {
        assert_eq!(prefix_end(&[1, 2]), Some(vec![1, 3]));
        assert_eq!(prefix_end(&[1, 0xFF]), Some(vec![2]));
        assert_eq!(prefix_end(&[0xFF]), None);
    }
}
