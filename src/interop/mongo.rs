//! The document shapes of the FastAPI + MongoDB mention tracker perch replaces (its `accounts`,
//! older `users`, and `messages` collections), both ways: a BSON document → perch's `Account` /
//! `Mention`, and back. The shapes are the contract (`../shared/seed/000_070611682bc983ed.txt`);
//! where that note is silent the readings chosen are said next to the code.
//!
//! Times: MongoDB keeps milliseconds, so a time exported from perch comes back to the
//! millisecond.

use std::borrow::Cow;

use bson::{Bson, Document, oid::ObjectId};
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::domain::{
    Account, Mention, MentionStatus, ReferenceKind, ReferencedPost, Response, Secret, Sender,
    SentTo, SyncStatus, Tokens,
};

/// What `processing` becomes: perch has no outbox entry that could resume it, so a person must
/// look at it.
pub const PROCESSING_MESSAGE: &str = "imported while sending: check on X";

/// An account document, read.
#[derive(Clone, Debug)]
pub struct ImportedAccount {
    pub account: Account,
    pub tokens: Option<Tokens>,
    /// The document's own `id` (the uuid the messages' `sent_to.account_id` refers to).
    pub source_id: Option<String>,
}

/// How a message document names its account, in the order it is tried (borrowed from the
/// document's line where it can be: it is only needed until the account is found).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AccountLink<'a> {
    /// `sent_to.account_id`: the account's `id` in the old system (or perch's id).
    pub account_id: Option<Cow<'a, str>>,
    /// `sent_to.twitter_id`.
    pub twitter_id: Option<Cow<'a, str>>,
    /// The legacy `user` field: the old user's `twitter_id`, or the account `id`.
    pub user: Option<Cow<'a, str>>,
}

/// A message document, read; its `sent_to` is filled in once its account is known.
#[derive(Clone, Debug)]
pub struct ImportedMessage<'a> {
    pub mention: Mention,
    pub link: AccountLink<'a>,
    /// It was `processing` and is imported as `error`.
    pub was_processing: bool,
    /// `sent_to.username` / `display_name` as the document had them (kept over the account's
    /// current ones: they say where the mention was sent at the time).
    pub sent_to_username: Option<String>,
    pub sent_to_display_name: Option<String>,
}

// ---- reading fields ---------------------------------------------------------------------------

/// A string value; numbers and ObjectIds are accepted as their text (ids are sometimes numbers).
fn value_text(value: Bson) -> Option<String> {
    match value {
        Bson::String(s) => Some(s),
        Bson::Int32(n) => Some(n.to_string()),
        Bson::Int64(n) => Some(n.to_string()),
        Bson::ObjectId(o) => Some(o.to_hex()),
        Bson::Binary(b) if b.bytes.len() == 16 => {
            Uuid::from_slice(&b.bytes).ok().map(|u| u.to_string())
        }
        _ => None,
    }
}

/// A field of a message as text (see [`value_text`]), borrowed from the line when it was a
/// plain JSON string.
fn field_text(value: Field<'_>) -> Option<Cow<'_, str>> {
    match value {
        Field::Absent => None,
        Field::Text(s) => Some(s),
        Field::Other(b) => value_text(*b).map(Cow::Owned),
    }
}

/// A non-blank text field of a message.
fn field_non_empty(value: Field<'_>) -> Option<Cow<'_, str>> {
    field_text(value).filter(|s| !s.trim().is_empty())
}

/// A non-blank text field of a message, to keep.
fn field_owned(value: Field<'_>) -> Option<String> {
    field_non_empty(value).map(Cow::into_owned)
}

/// A string field; numbers and ObjectIds are accepted as their text (ids are sometimes numbers).
fn text(doc: &Document, key: &str) -> Option<String> {
    match doc.get(key)? {
        Bson::String(s) => Some(s.clone()),
        Bson::Int32(n) => Some(n.to_string()),
        Bson::Int64(n) => Some(n.to_string()),
        Bson::ObjectId(o) => Some(o.to_hex()),
        Bson::Binary(b) if b.bytes.len() == 16 => {
            Uuid::from_slice(&b.bytes).ok().map(|u| u.to_string())
        }
        _ => None,
    }
}

/// A non-empty string field.
fn non_empty(doc: &Document, key: &str) -> Option<String> {
    text(doc, key).filter(|s| !s.trim().is_empty())
}

/// A handle without its `@` (the old system stored `"@user"`).
fn handle<S: AsRef<str>>(s: Option<S>) -> Option<String> {
    let s = s?;
    let h = s.as_ref().trim().trim_start_matches('@');
    (!h.is_empty()).then(|| h.to_string())
}

/// A time field: a BSON date, or an ISO 8601 string (how a pydantic model without a date type
/// would have stored it), or epoch milliseconds as a number.
fn time(doc: &Document, key: &str) -> Option<DateTime<Utc>> {
    value_time(doc.get(key)?)
}

fn value_time(value: &Bson) -> Option<DateTime<Utc>> {
    match value {
        Bson::DateTime(d) => DateTime::from_timestamp_millis(d.timestamp_millis()),
        Bson::String(s) => iso_time(s),
        Bson::Int64(ms) => DateTime::from_timestamp_millis(*ms),
        _ => None,
    }
}

fn boolean(doc: &Document, key: &str) -> Option<bool> {
    match doc.get(key)? {
        Bson::Boolean(b) => Some(*b),
        _ => None,
    }
}

fn count(doc: &Document, key: &str) -> Option<u64> {
    match doc.get(key)? {
        Bson::Int32(n) => u64::try_from(*n).ok(),
        Bson::Int64(n) => u64::try_from(*n).ok(),
        Bson::Double(f) if f.is_finite() && *f >= 0.0 => Some(*f as u64),
        _ => None,
    }
}

/// A stable uuid for something the old system gave no usable `id`, so a second import of the
/// same document finds the same record.
fn derived_id(parts: &[&str]) -> Uuid {
    let mut hash = Sha256::new();
    for p in parts {
        hash.update(p.as_bytes());
        hash.update([0]);
    }
    let digest = hash.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

fn parse_sync_status(s: &str) -> Option<SyncStatus> {
    [
        SyncStatus::Active,
        SyncStatus::Paused,
        SyncStatus::Error,
        SyncStatus::TokenExpired,
        SyncStatus::RateLimited,
    ]
    .into_iter()
    .find(|st| st.as_str().eq_ignore_ascii_case(s.trim()))
}

// ---- accounts / users ---------------------------------------------------------------------------

/// Reads an `accounts` (or legacy `users`) document. `now` fills times the document lacks.
pub fn account_from(doc: &Document, now: DateTime<Utc>) -> Result<ImportedAccount, String> {
    let twitter_id =
        non_empty(doc, "twitter_id").ok_or("no twitter_id (the account's unique key)")?;
    // `users` documents may call the handle `username`.
    let username =
        handle(non_empty(doc, "twitter_username").or_else(|| non_empty(doc, "username")))
            .ok_or("no twitter_username")?;
    let source_id = non_empty(doc, "id");
    let id = source_id
        .as_deref()
        .and_then(|s| Uuid::parse_str(s.trim()).ok())
        .unwrap_or_else(|| derived_id(&["account", &twitter_id]));
    let is_active = boolean(doc, "is_active").unwrap_or(true);
    let sync_status = match non_empty(doc, "sync_status") {
        Some(s) => parse_sync_status(&s).ok_or_else(|| {
            format!(
                "unknown sync_status {s:?} (expected active, paused, error, token_expired or rate_limited)"
            )
        })?,
        // A `users` document predates sync_status: derive it from is_active.
        None if is_active => SyncStatus::Active,
        None => SyncStatus::Paused,
    };
    let created_at = time(doc, "created_at");
    let added_at = time(doc, "added_at").or(created_at).unwrap_or(now);
    let created_at = created_at.unwrap_or(added_at);
    let updated_at = time(doc, "updated_at").unwrap_or(created_at);
    let account = Account {
        id,
        twitter_id,
        display_name: non_empty(doc, "display_name")
            .or_else(|| non_empty(doc, "name"))
            .unwrap_or_else(|| username.clone()),
        twitter_username: username,
        profile_image_url: non_empty(doc, "profile_image_url"),
        is_active,
        sync_status,
        error_message: non_empty(doc, "error_message"),
        added_at,
        last_synced_at: time(doc, "last_synced_at"),
        total_mentions_tracked: count(doc, "total_mentions_tracked").unwrap_or(0),
        created_at,
        updated_at,
    };
    // A token without an expiry time is treated as expired, so the first poll refreshes it (as
    // perch does with a token response that has no `expires_in`).
    let tokens = non_empty(doc, "access_token").map(|access| Tokens {
        access_token: Secret::new(access),
        refresh_token: non_empty(doc, "refresh_token").map(Secret::new),
        expires_at: time(doc, "token_expires_at").unwrap_or(DateTime::UNIX_EPOCH),
        // The old system did not store the granted scope; perch asks for its own set, and the
        // same app granted them (perch's own export adds `token_scope`).
        scope: non_empty(doc, "token_scope").unwrap_or_else(|| crate::auth::SCOPES.to_string()),
    });
    Ok(ImportedAccount {
        account,
        tokens,
        source_id,
    })
}

// ---- messages ---------------------------------------------------------------------------------

/// A response field: `null`, a string (the text), or an object with the text and possibly an id
/// and a time. Reading chosen for the object's keys (the note does not name them): the text is
/// `text` (or `message`/`content`), the id `id` (or `tweet_id`/`dm_id`/`event_id`/`message_id`),
/// the time `sent_at` (or `timestamp`/`created_at`/`time`/`at`). A missing id is kept as an
/// empty one, a missing time as the message's `updated_at`.
fn response(
    value: Option<&Bson>,
    key: &str,
    fallback_time: DateTime<Utc>,
) -> Result<Option<Response>, String> {
    match value {
        None | Some(Bson::Null) => Ok(None),
        Some(Bson::String(s)) if s.is_empty() => Ok(None),
        Some(Bson::String(s)) => Ok(Some(Response {
            id: String::new(),
            text: s.clone(),
            sent_at: fallback_time,
        })),
        Some(Bson::Document(r)) => {
            let first = |keys: &[&str]| keys.iter().find_map(|k| text(r, k));
            let Some(body) = first(&["text", "message", "content"]) else {
                return Err(format!("{key} has no text"));
            };
            let sent_at = ["sent_at", "timestamp", "created_at", "time", "at"]
                .iter()
                .find_map(|k| time(r, k))
                .unwrap_or(fallback_time);
            Ok(Some(Response {
                id: first(&["id", "tweet_id", "dm_id", "event_id", "message_id"])
                    .unwrap_or_default(),
                text: body,
                sent_at,
            }))
        }
        Some(other) => Err(format!(
            "{key} is neither null, a string nor an object ({})",
            bson_kind(other)
        )),
    }
}

fn bson_kind(b: &Bson) -> &'static str {
    match b {
        Bson::Double(_) | Bson::Int32(_) | Bson::Int64(_) | Bson::Decimal128(_) => "a number",
        Bson::Boolean(_) => "a boolean",
        Bson::Array(_) => "an array",
        _ => "another type",
    }
}

fn referenced_posts(value: Option<&Bson>) -> Vec<ReferencedPost> {
    let Some(Bson::Array(items)) = value else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|item| {
            let Bson::Document(r) = item else { return None };
            let kind = match text(r, "kind")?.as_str() {
                "replied_to" => ReferenceKind::RepliedTo,
                "quoted" => ReferenceKind::Quoted,
                _ => return None,
            };
            Some(ReferencedPost {
                kind,
                tweet_id: non_empty(r, "tweet_id")?,
                text: text(r, "text"),
                author_username: handle(text(r, "author_username")),
            })
        })
        .collect()
}

/// A date field of a message: `{"$date": "ISO"}` (relaxed), `{"$date": {"$numberLong": "ms"}}`
/// (canonical), an ISO string, or epoch milliseconds; anything else reads as absent (and the
/// field's fallback applies). Read by its own visitor because the `bson` crate reads `$date` as an
/// untagged choice that builds and formats a serde error for every relaxed date, which was a
/// tenth of an import's time; the ISO text is still parsed by a library (chrono).
#[derive(Default)]
struct ExtDate(Option<DateTime<Utc>>);

impl<'de> serde::Deserialize<'de> for ExtDate {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<ExtDate, D::Error> {
        d.deserialize_any(ExtDateVisitor)
    }
}

struct ExtDateVisitor;

/// An ISO 8601 time; without an offset (Python's `isoformat()` of a naive time) it is UTC.
fn iso_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
        .or_else(|| {
            chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
                .ok()
                .map(|n| n.and_utc())
        })
}

impl<'de> serde::de::Visitor<'de> for ExtDateVisitor {
    type Value = ExtDate;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an Extended JSON date")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ExtDate, E> {
        Ok(ExtDate(iso_time(v)))
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<ExtDate, E> {
        Ok(ExtDate(DateTime::from_timestamp_millis(v)))
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<ExtDate, E> {
        Ok(ExtDate(
            i64::try_from(v)
                .ok()
                .and_then(DateTime::from_timestamp_millis),
        ))
    }

    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<ExtDate, E> {
        Ok(ExtDate(None))
    }

    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<ExtDate, E> {
        Ok(ExtDate(None))
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<ExtDate, E> {
        Ok(ExtDate(None))
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<ExtDate, E> {
        Ok(ExtDate(None))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<ExtDate, A::Error> {
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(ExtDate(None))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<ExtDate, A::Error> {
        let mut found = None;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match key.as_ref() {
                // `$date` holds the relaxed ISO text or the canonical `{"$numberLong": "ms"}`.
                "$date" => found = map.next_value::<ExtDate>()?.0,
                "$numberLong" => {
                    let ms = map.next_value::<std::borrow::Cow<'de, str>>()?;
                    found = ms
                        .trim()
                        .parse::<i64>()
                        .ok()
                        .and_then(DateTime::from_timestamp_millis);
                }
                _ => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        Ok(ExtDate(found))
    }
}

/// A field of a `messages` document as it is read from the line: a plain JSON string, borrowed
/// from the line unless it has escapes (most of a message is such strings, and most of them
/// are copied once more into the mention or not kept at all); anything else as the `bson`
/// crate's Extended JSON reader makes of it (`{"$oid"}`, `{"$numberLong"}`, `{"$binary"}`,
/// numbers, embedded documents, arrays, …); or absent (missing, or `null`).
#[derive(Default)]
enum Field<'a> {
    #[default]
    Absent,
    Text(Cow<'a, str>),
    Other(Box<Bson>),
}

impl<'de: 'a, 'a> serde::Deserialize<'de> for Field<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Field<'a>, D::Error> {
        d.deserialize_any(FieldVisitor)
    }
}

struct FieldVisitor;

impl FieldVisitor {
    /// A value that is not a string: read by the `bson` crate's own deserializer.
    fn bson<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Field<'de>, D::Error> {
        use serde::Deserialize;
        Ok(Field::Other(Box::new(Bson::deserialize(d)?)))
    }
}

impl<'de> serde::de::Visitor<'de> for FieldVisitor {
    type Value = Field<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an Extended JSON value")
    }

    fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Field<'de>, E> {
        Ok(Field::Text(Cow::Borrowed(v)))
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Field<'de>, E> {
        Ok(Field::Text(Cow::Owned(v.to_string())))
    }

    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Field<'de>, E> {
        Ok(Field::Text(Cow::Owned(v)))
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Field<'de>, E> {
        Ok(Field::Absent)
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<Field<'de>, E> {
        Ok(Field::Absent)
    }

    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Field<'de>, D::Error> {
        d.deserialize_any(FieldVisitor)
    }

    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Field<'de>, E> {
        FieldVisitor::bson(serde::de::value::BoolDeserializer::new(v))
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Field<'de>, E> {
        FieldVisitor::bson(serde::de::value::I64Deserializer::new(v))
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Field<'de>, E> {
        FieldVisitor::bson(serde::de::value::U64Deserializer::new(v))
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Field<'de>, E> {
        FieldVisitor::bson(serde::de::value::F64Deserializer::new(v))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Field<'de>, A::Error> {
        FieldVisitor::bson(serde::de::value::MapAccessDeserializer::new(map))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<Field<'de>, A::Error> {
        FieldVisitor::bson(serde::de::value::SeqAccessDeserializer::new(seq))
    }
}

/// A `messages` document as it is read from the file: the fields perch uses (see [`Field`]);
/// other fields (`_id`, …) are skipped unread.
#[derive(serde::Deserialize, Default)]
pub struct MessageFields<'a> {
    #[serde(default, borrow)]
    id: Field<'a>,
    #[serde(default, borrow)]
    tweet_id: Field<'a>,
    #[serde(default)]
    timestamp: ExtDate,
    #[serde(default, borrow)]
    text: Field<'a>,
    #[serde(default, borrow)]
    sender: Option<SenderFields<'a>>,
    #[serde(default, borrow)]
    sent_to: Option<SentToFields<'a>>,
    /// The legacy link to the account: a twitter_id or account id (or an embedded user).
    #[serde(default, borrow)]
    user: Field<'a>,
    #[serde(default, borrow)]
    status: Field<'a>,
    #[serde(default, borrow)]
    public_response: Field<'a>,
    #[serde(default, borrow)]
    dm_response: Field<'a>,
    #[serde(default)]
    created_at: ExtDate,
    #[serde(default)]
    updated_at: ExtDate,
    #[serde(default, borrow)]
    error_message: Field<'a>,
    #[serde(default, borrow)]
    conversation_id: Field<'a>,
    #[serde(default, borrow)]
    referenced_posts: Field<'a>,
}

#[derive(serde::Deserialize, Default)]
struct SenderFields<'a> {
    #[serde(default, borrow)]
    twitter_id: Field<'a>,
    #[serde(default, borrow)]
    username: Field<'a>,
    #[serde(default, borrow)]
    display_name: Field<'a>,
    #[serde(default, borrow)]
    profile_image_url: Field<'a>,
}

#[derive(serde::Deserialize, Default)]
struct SentToFields<'a> {
    #[serde(default, borrow)]
    account_id: Field<'a>,
    #[serde(default, borrow)]
    twitter_id: Field<'a>,
    #[serde(default, borrow)]
    username: Field<'a>,
    #[serde(default, borrow)]
    display_name: Field<'a>,
}

/// A response field of a message (see [`response`]).
fn field_response(
    value: Field<'_>,
    key: &str,
    fallback_time: DateTime<Utc>,
) -> Result<Option<Response>, String> {
    match value {
        Field::Absent => Ok(None),
        Field::Text(s) if s.is_empty() => Ok(None),
        Field::Text(s) => Ok(Some(Response {
            id: String::new(),
            text: s.into_owned(),
            sent_at: fallback_time,
        })),
        Field::Other(b) => response(Some(&b), key, fallback_time),
    }
}

/// Reads a `messages` document from its JSON text (see [`message_from`]).
pub fn message_from_json(json: &[u8]) -> Result<ImportedMessage<'_>, String> {
    message_from(super::documents::parse_as::<MessageFields>(json)?)
}

/// Reads a `messages` document. Its account is not known yet: `sent_to` holds a placeholder
/// until [`ImportedMessage::send_to`].
pub fn message_from(doc: MessageFields<'_>) -> Result<ImportedMessage<'_>, String> {
    let tweet_id = field_non_empty(doc.tweet_id).ok_or("no tweet_id")?;
    let tweet_id = tweet_id.trim();
    let tweet: u64 = tweet_id
        .parse()
        .map_err(|_| format!("tweet_id {tweet_id:?} is not a post id (a decimal number)"))?;
    let tweet_id = tweet_id.to_string();
    let (status, was_processing) = match field_non_empty(doc.status) {
        None => (MentionStatus::Pending, false),
        Some(s) => match MentionStatus::parse(&s) {
            Some(MentionStatus::Processing) => (MentionStatus::Error, true),
            Some(st) => (st, false),
            None => {
                return Err(format!(
                    "unknown status {s:?} (expected pending, processing, replied, ignored or error)"
                ));
            }
        },
    };
    let timestamp = doc
        .timestamp
        .0
        .or_else(|| crate::domain::snowflake_time(tweet))
        .ok_or("no timestamp")?;
    let created_at = doc.created_at.0.unwrap_or(timestamp);
    let updated_at = doc.updated_at.0.unwrap_or(created_at);
    let sender = doc.sender.unwrap_or_default();
    let sender = Sender {
        twitter_id: field_owned(sender.twitter_id),
        username: handle(field_non_empty(sender.username)),
        display_name: field_owned(sender.display_name),
        profile_image_url: field_owned(sender.profile_image_url),
    };
    let sent_to = doc.sent_to.unwrap_or_default();
    let user = match doc.user {
        // Some old documents embedded the user: take its ids.
        Field::Other(u) => match *u {
            Bson::Document(u) => non_empty(&u, "twitter_id")
                .or_else(|| non_empty(&u, "id"))
                .map(Cow::Owned),
            other => value_text(other)
                .filter(|s| !s.trim().is_empty())
                .map(Cow::Owned),
        },
        other => field_non_empty(other),
    };
    let link = AccountLink {
        account_id: field_non_empty(sent_to.account_id),
        twitter_id: field_non_empty(sent_to.twitter_id),
        user,
    };
    if link == AccountLink::default() {
        return Err("no account: neither sent_to nor user names one".into());
    }
    let public_response = field_response(doc.public_response, "public_response", updated_at)?;
    let dm_response = field_response(doc.dm_response, "dm_response", updated_at)?;
    let mut error_message = field_owned(doc.error_message);
    if was_processing {
        error_message = Some(PROCESSING_MESSAGE.to_string());
    }
    let source_id = field_non_empty(doc.id).and_then(|s| Uuid::parse_str(s.trim()).ok());
    let referenced_posts = match doc.referenced_posts {
        Field::Other(b) => referenced_posts(Some(&b)),
        _ => Vec::new(),
    };
    Ok(ImportedMessage {
        mention: Mention {
            id: source_id.unwrap_or(Uuid::nil()),
            tweet_id,
            timestamp,
            text: field_text(doc.text)
                .map(Cow::into_owned)
                .unwrap_or_default(),
            sender,
            sent_to: SentTo {
                account_id: Uuid::nil(),
                twitter_id: String::new(),
                username: String::new(),
                display_name: String::new(),
            },
            status,
            public_response,
            dm_response,
            conversation_id: field_owned(doc.conversation_id),
            referenced_posts,
            error_message,
            created_at,
            updated_at,
        },
        link,
        was_processing,
        sent_to_username: handle(field_non_empty(sent_to.username)),
        sent_to_display_name: field_owned(sent_to.display_name),
    })
}

impl ImportedMessage<'_> {
    /// Ties the message to the perch account it was sent to.
    pub fn send_to(mut self, account: &Account) -> Mention {
        self.mention.sent_to = SentTo {
            account_id: account.id,
            twitter_id: account.twitter_id.clone(),
            username: self
                .sent_to_username
                .unwrap_or_else(|| account.twitter_username.clone()),
            display_name: self
                .sent_to_display_name
                .unwrap_or_else(|| account.display_name.clone()),
        };
        if self.mention.id.is_nil() {
            self.mention.id = derived_id(&["mention", &account.twitter_id, &self.mention.tweet_id]);
        }
        self.mention
    }
}

// ---- export -------------------------------------------------------------------------------------

fn date(t: DateTime<Utc>) -> Bson {
    Bson::DateTime(bson::DateTime::from_millis(t.timestamp_millis()))
}

fn opt_date(t: Option<DateTime<Utc>>) -> Bson {
    t.map_or(Bson::Null, date)
}

fn opt_text(s: Option<&str>) -> Bson {
    s.map_or(Bson::Null, |s| Bson::String(s.to_string()))
}

fn at_handle(s: &str) -> String {
    format!("@{s}")
}

/// A stable `_id` for a perch record: the time in its first four bytes (as MongoDB's own ids
/// have), then bytes of a hash of perch's id, so exporting twice gives the same `_id`s and
/// `mongoimport --mode upsert` replaces instead of duplicating.
fn object_id(id: Uuid, t: DateTime<Utc>) -> ObjectId {
    let mut bytes = [0u8; 12];
    let secs = u32::try_from(t.timestamp().max(0)).unwrap_or(u32::MAX);
    bytes[..4].copy_from_slice(&secs.to_be_bytes());
    let digest = Sha256::digest(id.as_bytes());
    bytes[4..].copy_from_slice(&digest[..8]);
    ObjectId::from_bytes(bytes)
}

/// An `accounts` document; the token fields only when `tokens` is given.
pub fn account_document(a: &Account, tokens: Option<&Tokens>) -> Document {
    let mut doc = Document::new();
    doc.insert("_id", object_id(a.id, a.created_at));
    doc.insert("id", a.id.to_string());
    doc.insert("twitter_id", a.twitter_id.clone());
    doc.insert("twitter_username", a.twitter_username.clone());
    doc.insert("display_name", a.display_name.clone());
    doc.insert(
        "profile_image_url",
        opt_text(a.profile_image_url.as_deref()),
    );
    if let Some(t) = tokens {
        doc.insert("access_token", t.access_token.expose().to_string());
        doc.insert(
            "refresh_token",
            opt_text(t.refresh_token.as_ref().map(Secret::expose)),
        );
        doc.insert("token_expires_at", date(t.expires_at));
        // perch's addition: the granted scope (the old system did not keep it).
        doc.insert("token_scope", t.scope.clone());
    }
    doc.insert("is_active", a.is_active);
    doc.insert("sync_status", a.sync_status.as_str());
    doc.insert("error_message", opt_text(a.error_message.as_deref()));
    doc.insert("added_at", date(a.added_at));
    doc.insert("last_synced_at", opt_date(a.last_synced_at));
    doc.insert(
        "total_mentions_tracked",
        i64::try_from(a.total_mentions_tracked).unwrap_or(i64::MAX),
    );
    doc.insert("created_at", date(a.created_at));
    doc.insert("updated_at", date(a.updated_at));
    doc
}

fn response_document(r: Option<&Response>) -> Bson {
    let Some(r) = r else { return Bson::Null };
    let mut doc = Document::new();
    doc.insert("text", r.text.clone());
    if !r.id.is_empty() {
        doc.insert("id", r.id.clone());
    }
    doc.insert("sent_at", date(r.sent_at));
    Bson::Document(doc)
}

/// A `messages` document. perch's own fields that the old shape lacks (`error_message`,
/// `conversation_id`, `referenced_posts`) are added; the old system ignores unknown fields.
pub fn message_document(m: &Mention) -> Document {
    let mut sender = Document::new();
    sender.insert("twitter_id", opt_text(m.sender.twitter_id.as_deref()));
    sender.insert(
        "username",
        m.sender
            .username
            .as_deref()
            .map_or(Bson::Null, |u| Bson::String(at_handle(u))),
    );
    sender.insert("display_name", opt_text(m.sender.display_name.as_deref()));
    sender.insert(
        "profile_image_url",
        opt_text(m.sender.profile_image_url.as_deref()),
    );
    let mut sent_to = Document::new();
    sent_to.insert("account_id", m.sent_to.account_id.to_string());
    sent_to.insert("twitter_id", m.sent_to.twitter_id.clone());
    sent_to.insert("username", at_handle(&m.sent_to.username));
    sent_to.insert("display_name", m.sent_to.display_name.clone());
    let mut doc = Document::new();
    doc.insert("_id", object_id(m.id, m.created_at));
    doc.insert("id", m.id.to_string());
    doc.insert("tweet_id", m.tweet_id.clone());
    doc.insert("timestamp", date(m.timestamp));
    doc.insert("text", m.text.clone());
    doc.insert("sender", sender);
    doc.insert("sent_to", sent_to);
    doc.insert("status", m.status.as_str());
    doc.insert(
        "public_response",
        response_document(m.public_response.as_ref()),
    );
    doc.insert("dm_response", response_document(m.dm_response.as_ref()));
    doc.insert("created_at", date(m.created_at));
    doc.insert("updated_at", date(m.updated_at));
    doc.insert("error_message", opt_text(m.error_message.as_deref()));
    doc.insert("conversation_id", opt_text(m.conversation_id.as_deref()));
    let refs: Vec<Bson> = m
        .referenced_posts
        .iter()
        .map(|r| {
            let mut d = Document::new();
            d.insert(
                "kind",
                match r.kind {
                    ReferenceKind::RepliedTo => "replied_to",
                    ReferenceKind::Quoted => "quoted",
                },
            );
            d.insert("tweet_id", r.tweet_id.clone());
            d.insert("text", opt_text(r.text.as_deref()));
            d.insert("author_username", opt_text(r.author_username.as_deref()));
            Bson::Document(d)
        })
        .collect();
    doc.insert("referenced_posts", refs);
    doc
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    #[test]
    fn responses_in_all_three_shapes() {
        let t = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let d = doc! {
            "a": Bson::Null,
            "b": "thanks!",
            "c": { "text": "sent", "id": "123", "sent_at": bson::DateTime::from_millis(5000) },
            "d": { "message": "no id" },
            "e": 5,
        };
        let r = |k: &str| response(d.get(k), k, t);
        assert_eq!(r("a").unwrap(), None);
        assert_eq!(r("missing").unwrap(), None);
        let b = r("b").unwrap().unwrap();
        assert_eq!(
            (b.text.as_str(), b.id.as_str(), b.sent_at),
            ("thanks!", "", t)
        );
        let c = r("c").unwrap().unwrap();
        assert_eq!((c.text.as_str(), c.id.as_str()), ("sent", "123"));
        assert_eq!(c.sent_at.timestamp_millis(), 5000);
        assert_eq!(r("d").unwrap().unwrap().text, "no id");
        assert!(r("e").is_err());
    }

    #[test]
    fn message_fields_read_plain_escaped_numeric_and_extended_json_values() {
        // Escaped strings (not borrowable), numbers and `$oid`/`$numberInt` values as text,
        // `null` as absent, an embedded document as a response.
        let m = message_from_json(
            br#"{"tweet_id": 1578516295611748353, "text": "say \"hi\" caf\u00e9",
                 "sender": {"username": "@ann", "twitter_id": {"$numberInt": "7"}},
                 "user": {"$oid": "5f1d7f3e9c1b2a0012345678"}, "status": null,
                 "public_response": {"text": "done", "id": {"$numberLong": "99"}},
                 "dm_response": "", "conversation_id": "  ", "referenced_posts": []}"#,
        )
        .unwrap();
        assert_eq!(m.mention.tweet_id, "1578516295611748353");
        assert_eq!(m.mention.text, "say \"hi\" caf\u{e9}");
        assert_eq!(m.mention.sender.username.as_deref(), Some("ann"));
        assert_eq!(m.mention.sender.twitter_id.as_deref(), Some("7"));
        assert_eq!(m.link.user.as_deref(), Some("5f1d7f3e9c1b2a0012345678"));
        assert_eq!(m.mention.status, MentionStatus::Pending);
        let public = m.mention.public_response.as_ref().unwrap();
        assert_eq!((public.text.as_str(), public.id.as_str()), ("done", "99"));
        assert_eq!(m.mention.dm_response, None);
        assert_eq!(m.mention.conversation_id, None);
        // A response that is neither null, a string nor an object is refused, and so is
        // malformed Extended JSON (read by the `bson` crate).
        let bad = message_from_json(br#"{"tweet_id": "1", "user": "7", "dm_response": [1]}"#);
        assert!(bad.unwrap_err().contains("dm_response is neither"));
        let bad = message_from_json(br#"{"tweet_id": "1", "user": {"$oid": "nothex"}}"#);
        assert!(bad.unwrap_err().starts_with("not valid Extended JSON"));
    }

    #[test]
    fn processing_becomes_error_with_a_reason() {
        let m = message_from_json(
            br#"{"tweet_id": "1578516295611748353", "status": "processing", "user": "42"}"#,
        )
        .unwrap();
        assert!(m.was_processing);
        assert_eq!(m.mention.status, MentionStatus::Error);
        assert_eq!(m.mention.error_message.as_deref(), Some(PROCESSING_MESSAGE));
        assert_eq!(m.link.user.as_deref(), Some("42"));
        assert!(message_from_json(br#"{"tweet_id": "1", "status": "odd", "user": "42"}"#).is_err());
        assert!(message_from_json(br#"{"tweet_id": "x1", "user": "42"}"#).is_err());
        assert!(message_from_json(br#"{"tweet_id": "1"}"#).is_err());
        // An embedded legacy user, a numeric tweet id, a canonical date.
        let m = message_from_json(
            br#"{"tweet_id": {"$numberLong": "1578516295611748353"}, "user": {"twitter_id": "7"},
                 "timestamp": {"$date": {"$numberLong": "1665182586945"}}, "_id": {"$oid": "5f1d7f3e9c1b2a0012345678"}}"#,
        )
        .unwrap();
        assert_eq!(m.link.user.as_deref(), Some("7"));
        assert_eq!(m.mention.tweet_id, "1578516295611748353");
        assert_eq!(m.mention.timestamp.timestamp_millis(), 1_665_182_586_945);
    }
}
