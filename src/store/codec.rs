//! The record codec: one format-version byte followed by bincode 2 (standard config). Every
//! record the store writes goes through [`encode_into`] (or its wrapper [`encode`]) and every
//! record it reads through [`decode`], so the on-disk format changes in one place.
//!
//! Formats:
//! - **1**: every record through bincode's serde layer. Dates were RFC 3339 strings.
//! - **2** (written now): the hot records (mentions, accounts, tokens, first-seen times) through
//!   bincode's own `Encode`/`Decode` derive on the mirror structs below, with dates as seconds +
//!   nanoseconds. The serde layer and the date formatting were 13–16% of ingest (issue 13). The
//!   other records (drafts, outbox entries, undo log) keep their serde bytes: they are written a
//!   few at a time, and their format-1 and format-2 bytes are the same.
//!
//! A format-1 record is migrated forward on read (decoded by the format-1 reader); it is written
//! back in format 2 whenever it is next changed. The mirror structs keep `domain` free of
//! bincode (ARCHITECTURE.md: `domain` uses std, serde, chrono and uuid only).

use bincode::{Decode, Encode};
use chrono::{DateTime, Utc};
use serde::{Serialize, de::DeserializeOwned};
use uuid::Uuid;

use super::{Result, StoreError};
use crate::domain::{
    Account, Mention, MentionStatus, ReferenceKind, ReferencedPost, Response, Secret, Sender,
    SentTo, SyncStatus, Tokens,
};

/// The record format this perch writes. Records (and the store's format marker) with a higher
/// number were written by a newer perch and are refused, never misread.
pub const RECORD_FORMAT: u8 = 2;

/// Upper bound on any one length prefix inside a record. Stored bytes are untrusted: without a
/// limit, a corrupt length could make bincode try to allocate exabytes and abort the process.
/// The limit changes no encoded byte; it only bounds what decoding will believe.
const DECODE_LIMIT: usize = 16 * 1024 * 1024;

type Config = bincode::config::Configuration<
    bincode::config::LittleEndian,
    bincode::config::Varint,
    bincode::config::Limit<DECODE_LIMIT>,
>;

fn config() -> Config {
    bincode::config::standard().with_limit::<DECODE_LIMIT>()
}

/// A value the store keeps as a record: how its body is written in [`RECORD_FORMAT`] and read in
/// every format this perch knows.
pub trait Record: Sized {
    /// Appends the body (in [`RECORD_FORMAT`]) to `out`.
    fn write_body(&self, out: &mut Vec<u8>) -> std::result::Result<(), String>;
    /// Reads a body written in `format` (1..=RECORD_FORMAT); returns the value and the bytes used.
    fn read_body(format: u8, body: &[u8]) -> std::result::Result<(Self, usize), String>;
}

/// Encodes a record into `out` (cleared first): the format byte, then the body. Reusing one
/// buffer for a page of records saves an allocation per record.
pub fn encode_into<T: Record>(value: &T, out: &mut Vec<u8>, what: &str) -> Result<()> {
    out.clear();
    out.push(RECORD_FORMAT);
    value.write_body(out).map_err(|detail| StoreError::Decode {
        what: what.to_string(),
        detail: format!("cannot encode: {detail}"),
    })
}

/// Encodes a record into a new buffer (see [`encode_into`]).
pub fn encode<T: Record>(value: &T, what: &str) -> Result<Vec<u8>> {
    // Most mention records are 200-500 bytes: one allocation, rarely a second.
    let mut bytes = Vec::with_capacity(512);
    encode_into(value, &mut bytes, what)?;
    Ok(bytes)
}

/// Decodes a record written by [`encode`] (in any known format). `what` names the record in the
/// error (e.g. "mention 1578516295611748353 of account …"); it is only evaluated on failure.
pub fn decode<T: Record>(bytes: &[u8], what: impl FnOnce() -> String) -> Result<T> {
    decode_record(bytes).map_err(|detail| StoreError::Decode {
        what: what(),
        detail,
    })
}

fn decode_record<T: Record>(bytes: &[u8]) -> std::result::Result<T, String> {
    let Some((&format, body)) = bytes.split_first() else {
        return Err("the record is empty".into());
    };
    if format > RECORD_FORMAT {
        return Err(format!(
            "record format {format} was written by a newer perch (this perch reads up to {RECORD_FORMAT}); upgrade perch"
        ));
    }
    if format == 0 {
        return Err("record format 0 does not exist".into());
    }
    let (value, used) = T::read_body(format, body)?;
    if used != body.len() {
        return Err(format!("{} unexpected trailing bytes", body.len() - used));
    }
    Ok(value)
}

// ---- the serde layer (format 1, and the records that keep it) ------------------------------

pub(crate) fn write_serde<T: Serialize>(
    value: &T,
    out: &mut Vec<u8>,
) -> std::result::Result<(), String> {
    bincode::serde::encode_into_std_write(value, out, config())
        .map(|_| ())
        .map_err(|e| e.to_string())
}

pub(crate) fn read_serde<T: DeserializeOwned>(
    body: &[u8],
) -> std::result::Result<(T, usize), String> {
    bincode::serde::decode_from_slice::<T, _>(body, config()).map_err(|e| e.to_string())
}

/// A record whose bytes are bincode's serde encoding in every format.
macro_rules! serde_record {
    ($($t:ty),* $(,)?) => {$(
        impl $crate::store::codec::Record for $t {
            fn write_body(&self, out: &mut Vec<u8>) -> std::result::Result<(), String> {
                $crate::store::codec::write_serde(self, out)
            }
            fn read_body(_format: u8, body: &[u8]) -> std::result::Result<(Self, usize), String> {
                $crate::store::codec::read_serde(body)
            }
        }
    )*};
}
pub(crate) use serde_record;

/// The format-1 bytes of a record (what perch before issue 13 wrote), for migration tests.
#[cfg(test)]
pub fn encode_format1<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = vec![1u8];
    write_serde(value, &mut out).expect("format-1 encoding");
    out
}

// ---- format 2: bincode's own derive on mirror structs ---------------------------------------

/// Encodes a mirror struct (format 2).
fn write_derived<T: Encode>(value: &T, out: &mut Vec<u8>) -> std::result::Result<(), String> {
    bincode::encode_into_std_write(value, out, config())
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn read_derived<T: Decode<()>>(body: &[u8]) -> std::result::Result<(T, usize), String> {
    bincode::decode_from_slice::<T, _>(body, config()).map_err(|e| e.to_string())
}

/// A UTC time as seconds and nanoseconds since the epoch (varint-encoded: 6-7 bytes, against ~30
/// for the RFC 3339 string of format 1, and no formatting).
#[derive(Encode, Decode, Clone, Copy)]
struct Time {
    secs: i64,
    nanos: u32,
}

impl From<DateTime<Utc>> for Time {
    fn from(t: DateTime<Utc>) -> Time {
        Time {
            secs: t.timestamp(),
            nanos: t.timestamp_subsec_nanos(),
        }
    }
}

impl TryFrom<Time> for DateTime<Utc> {
    type Error = String;
    fn try_from(t: Time) -> std::result::Result<DateTime<Utc>, String> {
        DateTime::from_timestamp(t.secs, t.nanos)
            .ok_or_else(|| format!("time {}s {}ns is out of range", t.secs, t.nanos))
    }
}

fn time(t: Time) -> std::result::Result<DateTime<Utc>, String> {
    t.try_into()
}

fn opt_time(t: Option<Time>) -> std::result::Result<Option<DateTime<Utc>>, String> {
    t.map(time).transpose()
}

fn mention_status(code: u8) -> std::result::Result<MentionStatus, String> {
    MentionStatus::from_code(code).ok_or_else(|| format!("unknown mention status code {code}"))
}

/// Stable codes of `SyncStatus` in records. Never renumber.
fn sync_status_code(s: SyncStatus) -> u8 {
    match s {
        SyncStatus::Active => 0,
        SyncStatus::Paused => 1,
        SyncStatus::Error => 2,
        SyncStatus::TokenExpired => 3,
        SyncStatus::RateLimited => 4,
    }
}

fn sync_status(code: u8) -> std::result::Result<SyncStatus, String> {
    Ok(match code {
        0 => SyncStatus::Active,
        1 => SyncStatus::Paused,
        2 => SyncStatus::Error,
        3 => SyncStatus::TokenExpired,
        4 => SyncStatus::RateLimited,
        other => return Err(format!("unknown sync status code {other}")),
    })
}

fn reference_code(k: ReferenceKind) -> u8 {
    match k {
        ReferenceKind::RepliedTo => 0,
        ReferenceKind::Quoted => 1,
    }
}

fn reference_kind(code: u8) -> std::result::Result<ReferenceKind, String> {
    match code {
        0 => Ok(ReferenceKind::RepliedTo),
        1 => Ok(ReferenceKind::Quoted),
        other => Err(format!("unknown reference kind code {other}")),
    }
}

// The mirror structs are generic over the string type: `&str` to encode straight from a borrowed
// domain value (no copies), `String` to decode into owned fields that move into the domain value.

#[derive(Encode, Decode)]
struct SenderRecord<S> {
    twitter_id: Option<S>,
    username: Option<S>,
    display_name: Option<S>,
    profile_image_url: Option<S>,
}

#[derive(Encode, Decode)]
struct SentToRecord<S> {
    account_id: [u8; 16],
    twitter_id: S,
    username: S,
    display_name: S,
}

#[derive(Encode, Decode)]
struct ResponseRecord<S> {
    id: S,
    text: S,
    sent_at: Time,
}

#[derive(Encode, Decode)]
struct ReferencedRecord<S> {
    kind: u8,
    tweet_id: S,
    text: Option<S>,
    author_username: Option<S>,
}

#[derive(Encode, Decode)]
struct MentionRecord<S> {
    id: [u8; 16],
    tweet_id: S,
    timestamp: Time,
    text: S,
    sender: SenderRecord<S>,
    sent_to: SentToRecord<S>,
    status: u8,
    public_response: Option<ResponseRecord<S>>,
    dm_response: Option<ResponseRecord<S>>,
    conversation_id: Option<S>,
    referenced_posts: Vec<ReferencedRecord<S>>,
    error_message: Option<S>,
    created_at: Time,
    updated_at: Time,
}

#[derive(Encode, Decode)]
struct AccountRecord<S> {
    id: [u8; 16],
    twitter_id: S,
    twitter_username: S,
    display_name: S,
    profile_image_url: Option<S>,
    is_active: bool,
    sync_status: u8,
    error_message: Option<S>,
    added_at: Time,
    last_synced_at: Option<Time>,
    total_mentions_tracked: u64,
    created_at: Time,
    updated_at: Time,
}

#[derive(Encode, Decode)]
struct TokensRecord<S> {
    access_token: S,
    refresh_token: Option<S>,
    expires_at: Time,
    scope: S,
}

fn response_out(r: &Response) -> ResponseRecord<&str> {
    ResponseRecord {
        id: &r.id,
        text: &r.text,
        sent_at: r.sent_at.into(),
    }
}

fn response_in(r: ResponseRecord<String>) -> std::result::Result<Response, String> {
    Ok(Response {
        id: r.id,
        text: r.text,
        sent_at: time(r.sent_at)?,
    })
}

impl Record for Mention {
    fn write_body(&self, out: &mut Vec<u8>) -> std::result::Result<(), String> {
        let m = self;
        write_derived(
            &MentionRecord::<&str> {
                id: *m.id.as_bytes(),
                tweet_id: &m.tweet_id,
                timestamp: m.timestamp.into(),
                text: &m.text,
                sender: SenderRecord {
                    twitter_id: m.sender.twitter_id.as_deref(),
                    username: m.sender.username.as_deref(),
                    display_name: m.sender.display_name.as_deref(),
                    profile_image_url: m.sender.profile_image_url.as_deref(),
                },
                sent_to: SentToRecord {
                    account_id: *m.sent_to.account_id.as_bytes(),
                    twitter_id: &m.sent_to.twitter_id,
                    username: &m.sent_to.username,
                    display_name: &m.sent_to.display_name,
                },
                status: m.status.code(),
                public_response: m.public_response.as_ref().map(response_out),
                dm_response: m.dm_response.as_ref().map(response_out),
                conversation_id: m.conversation_id.as_deref(),
                // Empty for most mentions: an empty Vec does not allocate.
                referenced_posts: m
                    .referenced_posts
                    .iter()
                    .map(|r| ReferencedRecord {
                        kind: reference_code(r.kind),
                        tweet_id: r.tweet_id.as_str(),
                        text: r.text.as_deref(),
                        author_username: r.author_username.as_deref(),
                    })
                    .collect(),
                error_message: m.error_message.as_deref(),
                created_at: m.created_at.into(),
                updated_at: m.updated_at.into(),
            },
            out,
        )
    }

    fn read_body(format: u8, body: &[u8]) -> std::result::Result<(Self, usize), String> {
        if format == 1 {
            return read_serde(body);
        }
        let (r, used) = read_derived::<MentionRecord<String>>(body)?;
        let referenced_posts = r
            .referenced_posts
            .into_iter()
            .map(|p| {
                Ok(ReferencedPost {
                    kind: reference_kind(p.kind)?,
                    tweet_id: p.tweet_id,
                    text: p.text,
                    author_username: p.author_username,
                })
            })
            .collect::<std::result::Result<Vec<_>, String>>()?;
        let mention = Mention {
            id: Uuid::from_bytes(r.id),
            tweet_id: r.tweet_id,
            timestamp: time(r.timestamp)?,
            text: r.text,
            sender: Sender {
                twitter_id: r.sender.twitter_id,
                username: r.sender.username,
                display_name: r.sender.display_name,
                profile_image_url: r.sender.profile_image_url,
            },
            sent_to: SentTo {
                account_id: Uuid::from_bytes(r.sent_to.account_id),
                twitter_id: r.sent_to.twitter_id,
                username: r.sent_to.username,
                display_name: r.sent_to.display_name,
            },
            status: mention_status(r.status)?,
            public_response: r.public_response.map(response_in).transpose()?,
            dm_response: r.dm_response.map(response_in).transpose()?,
            conversation_id: r.conversation_id,
            referenced_posts,
            error_message: r.error_message,
            created_at: time(r.created_at)?,
            updated_at: time(r.updated_at)?,
        };
        Ok((mention, used))
    }
}

impl Record for Account {
    fn write_body(&self, out: &mut Vec<u8>) -> std::result::Result<(), String> {
        let a = self;
        write_derived(
            &AccountRecord::<&str> {
                id: *a.id.as_bytes(),
                twitter_id: &a.twitter_id,
                twitter_username: &a.twitter_username,
                display_name: &a.display_name,
                profile_image_url: a.profile_image_url.as_deref(),
                is_active: a.is_active,
                sync_status: sync_status_code(a.sync_status),
                error_message: a.error_message.as_deref(),
                added_at: a.added_at.into(),
                last_synced_at: a.last_synced_at.map(Time::from),
                total_mentions_tracked: a.total_mentions_tracked,
                created_at: a.created_at.into(),
                updated_at: a.updated_at.into(),
            },
            out,
        )
    }

    fn read_body(format: u8, body: &[u8]) -> std::result::Result<(Self, usize), String> {
        if format == 1 {
            return read_serde(body);
        }
        let (r, used) = read_derived::<AccountRecord<String>>(body)?;
        let account = Account {
            id: Uuid::from_bytes(r.id),
            twitter_id: r.twitter_id,
            twitter_username: r.twitter_username,
            display_name: r.display_name,
            profile_image_url: r.profile_image_url,
            is_active: r.is_active,
            sync_status: sync_status(r.sync_status)?,
            error_message: r.error_message,
            added_at: time(r.added_at)?,
            last_synced_at: opt_time(r.last_synced_at)?,
            total_mentions_tracked: r.total_mentions_tracked,
            created_at: time(r.created_at)?,
            updated_at: time(r.updated_at)?,
        };
        Ok((account, used))
    }
}

impl Record for Tokens {
    fn write_body(&self, out: &mut Vec<u8>) -> std::result::Result<(), String> {
        write_derived(
            &TokensRecord::<&str> {
                access_token: self.access_token.expose(),
                refresh_token: self.refresh_token.as_ref().map(Secret::expose),
                expires_at: self.expires_at.into(),
                scope: &self.scope,
            },
            out,
        )
    }

    fn read_body(format: u8, body: &[u8]) -> std::result::Result<(Self, usize), String> {
        if format == 1 {
            return read_serde(body);
        }
        let (r, used) = read_derived::<TokensRecord<String>>(body)?;
        let tokens = Tokens {
            access_token: Secret::new(r.access_token),
            refresh_token: r.refresh_token.map(Secret::new),
            expires_at: time(r.expires_at)?,
            scope: r.scope,
        };
        Ok((tokens, used))
    }
}

/// A bare time (an account's first-seen time).
impl Record for DateTime<Utc> {
    fn write_body(&self, out: &mut Vec<u8>) -> std::result::Result<(), String> {
        write_derived(&Time::from(*self), out)
    }

    fn read_body(format: u8, body: &[u8]) -> std::result::Result<(Self, usize), String> {
        if format == 1 {
            return read_serde(body);
        }
        let (t, used) = read_derived::<Time>(body)?;
        Ok((time(t)?, used))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ReferenceKind, ReferencedPost};

    fn at(secs: i64, nanos: u32) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, nanos).unwrap()
    }

    fn account() -> Account {
        let mut a = Account::new(
            "2244994945".into(),
            "perch_test".into(),
            "Perch Test ✓".into(),
            Some("https://pbs.twimg.com/p.jpg".into()),
            at(1_700_000_000, 123_456_789),
        );
        a.sync_status = SyncStatus::RateLimited;
        a.last_synced_at = Some(at(1_700_000_100, 0));
        a.total_mentions_tracked = 42;
        a
    }

    fn mention(a: &Account) -> Mention {
        Mention {
            id: Uuid::from_u128(99),
            tweet_id: "1578516295611748353".into(),
            timestamp: at(1_665_182_586, 945_000_000),
            text: "@perch_test hello 👋 — zeppelin".into(),
            sender: Sender {
                twitter_id: Some("17".into()),
                username: Some("sender".into()),
                display_name: None,
                profile_image_url: Some("https://x/p.png".into()),
            },
            sent_to: SentTo::account(a),
            status: MentionStatus::Replied,
            public_response: Some(Response {
                id: "1578516295611748400".into(),
                text: "thanks!".into(),
                sent_at: at(1_665_182_600, 1),
            }),
            dm_response: None,
            conversation_id: Some("1578516295611748000".into()),
            referenced_posts: vec![ReferencedPost {
                kind: ReferenceKind::Quoted,
                tweet_id: "1".into(),
                text: None,
                author_username: Some("q".into()),
            }],
            error_message: Some("once failed".into()),
            created_at: at(1_665_182_590, 0),
            updated_at: at(1_665_182_600, 5),
        }
    }

    fn tokens() -> Tokens {
        Tokens {
            access_token: Secret::new("AT"),
            refresh_token: Some(Secret::new("RT")),
            expires_at: at(1_800_000_000, 0),
            scope: "tweet.read".into(),
        }
    }

    #[test]
    fn round_trip_keeps_every_field_and_leads_with_format_byte() {
        let a = account();
        let m = mention(&a);
        let bytes = encode(&m, "mention").unwrap();
        assert_eq!(bytes[0], RECORD_FORMAT);
        assert_eq!(decode::<Mention>(&bytes, || "m".into()).unwrap(), m);
        let bytes = encode(&a, "account").unwrap();
        assert_eq!(decode::<Account>(&bytes, || "a".into()).unwrap(), a);
        let bytes = encode(&tokens(), "tokens").unwrap();
        assert_eq!(decode::<Tokens>(&bytes, || "t".into()).unwrap(), tokens());
        let t = at(-5, 7);
        let bytes = encode(&t, "time").unwrap();
        assert_eq!(decode::<DateTime<Utc>>(&bytes, || "t".into()).unwrap(), t);
    }

    #[test]
    fn format_1_records_are_read_forward() {
        let a = account();
        let m = mention(&a);
        let old = encode_format1(&m);
        assert_eq!(old[0], 1);
        assert_eq!(decode::<Mention>(&old, || "m".into()).unwrap(), m);
        assert_eq!(
            decode::<Account>(&encode_format1(&a), || "a".into()).unwrap(),
            a
        );
        assert_eq!(
            decode::<Tokens>(&encode_format1(&tokens()), || "t".into()).unwrap(),
            tokens()
        );
        let t = at(1_700_000_000, 5);
        assert_eq!(
            decode::<DateTime<Utc>>(&encode_format1(&t), || "t".into()).unwrap(),
            t
        );
        // The new bytes are smaller than the old (dates are no longer strings).
        assert!(encode(&m, "m").unwrap().len() < old.len());
    }

    #[test]
    fn encode_into_reuses_the_buffer() {
        let a = account();
        let m = mention(&a);
        let mut buf = Vec::new();
        encode_into(&m, &mut buf, "m").unwrap();
        let first = buf.clone();
        encode_into(&a, &mut buf, "a").unwrap();
        encode_into(&m, &mut buf, "m").unwrap();
        assert_eq!(buf, first);
    }

    #[test]
    fn newer_format_is_refused_with_what_it_was() {
        let mut bytes = encode(&account(), "a").unwrap();
        bytes[0] = RECORD_FORMAT + 1;
        let err = decode::<Account>(&bytes, || "the test account".into()).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("the test account") && msg.contains("newer perch"),
            "{msg}"
        );
    }

    #[test]
    fn garbage_never_panics() {
        // A huge length prefix (varint 0xFD + u64::MAX) must be an error, not an allocation.
        for format in [1, RECORD_FORMAT] {
            let mut bytes = vec![format, 0xFD];
            bytes.extend_from_slice(&u64::MAX.to_le_bytes());
            assert!(decode::<Mention>(&bytes, || "m".into()).is_err());
            assert!(decode::<Account>(&bytes, || "a".into()).is_err());
        }
        assert!(decode::<Mention>(&[], || "empty".into()).is_err());
        for format in [1, RECORD_FORMAT] {
            for seed in 0u8..=255 {
                let junk: Vec<u8> = (0..64u32)
                    .map(|i| (i as u8).wrapping_mul(seed) ^ seed)
                    .collect();
                let mut rec = vec![format];
                rec.extend_from_slice(&junk);
                let _ = decode::<Mention>(&rec, || "junk".into());
                let _ = decode::<Account>(&rec, || "junk".into());
                let _ = decode::<Tokens>(&rec, || "junk".into());
            }
        }
        // Out-of-range times and unknown codes are errors too.
        let mut bytes = encode(&mention(&account()), "m").unwrap();
        let status_at = bytes.len() - 1;
        bytes[status_at] = 0xFF;
        let _ = decode::<Mention>(&bytes, || "m".into());
    }

    #[test]
    fn trailing_bytes_are_corruption() {
        let mut bytes = encode(&account(), "a").unwrap();
        bytes.push(0);
        assert!(decode::<Account>(&bytes, || "a".into()).is_err());
    }
}
