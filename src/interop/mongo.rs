//! The document shapes of the FastAPI + MongoDB mention tracker perch replaces (its `accounts`,
//! older `users`, and `messages` collections), both ways: a BSON document → perch's `Account` /
//! `Mention`, and back. The shapes are the contract (`../shared/seed/000_070611682bc983ed.txt`);
//! where that note is silent the readings chosen are said next to the code.
//!
//! Times: MongoDB keeps milliseconds, so a time exported from perch comes back to the
//! millisecond.

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

/// How a message document names its account, in the order it is tried.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AccountLink {
    /// `sent_to.account_id`: the account's `id` in the old system (or perch's id).
    pub account_id: Option<String>,
    /// `sent_to.twitter_id`.
    pub twitter_id: Option<String>,
    /// The legacy `user` field: the old user's `twitter_id`, or the account `id`.
    pub user: Option<String>,
}

/// A message document, read; its `sent_to` is filled in once its account is known.
#[derive(Clone, Debug)]
pub struct ImportedMessage {
    pub mention: Mention,
    pub link: AccountLink,
    /// It was `processing` and is imported as `error`.
    pub was_processing: bool,
    /// `sent_to.username` / `display_name` as the document had them (kept over the account's
    /// current ones: they say where the mention was sent at the time).
    pub sent_to_username: Option<String>,
    pub sent_to_display_name: Option<String>,
}

// ---- reading fields ---------------------------------------------------------------------------

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
fn handle(s: Option<String>) -> Option<String> {
    s.map(|h| h.trim().trim_start_matches('@').to_string())
        .filter(|h| !h.is_empty())
}

/// A time field: a BSON date, or an ISO 8601 string (how a pydantic model without a date type
/// would have stored it), or epoch milliseconds as a number.
fn time(doc: &Document, key: &str) -> Option<DateTime<Utc>> {
    match doc.get(key)? {
        Bson::DateTime(d) => DateTime::from_timestamp_millis(d.timestamp_millis()),
        Bson::String(s) => DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|t| t.with_timezone(&Utc))
            .or_else(|| {
                // Python's isoformat() without an offset: read it as UTC.
                chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
                    .ok()
                    .map(|n| n.and_utc())
            }),
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

fn sub_document<'a>(doc: &'a Document, key: &str) -> Option<&'a Document> {
    match doc.get(key)? {
        Bson::Document(d) => Some(d),
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
    doc: &Document,
    key: &str,
    fallback_time: DateTime<Utc>,
) -> Result<Option<Response>, String> {
    match doc.get(key) {
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

fn referenced_posts(doc: &Document) -> Vec<ReferencedPost> {
    let Some(Bson::Array(items)) = doc.get("referenced_posts") else {
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

/// Reads a `messages` document. Its account is not known yet: `sent_to` holds a placeholder
/// until [`ImportedMessage::send_to`].
pub fn message_from(doc: &Document) -> Result<ImportedMessage, String> {
    let tweet_id = non_empty(doc, "tweet_id").ok_or("no tweet_id")?;
    let tweet_id = tweet_id.trim().to_string();
    let tweet: u64 = tweet_id
        .parse()
        .map_err(|_| format!("tweet_id {tweet_id:?} is not a post id (a decimal number)"))?;
    let (status, was_processing) = match non_empty(doc, "status") {
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
    let timestamp = time(doc, "timestamp")
        .or_else(|| crate::domain::snowflake_time(tweet))
        .ok_or("no timestamp")?;
    let created_at = time(doc, "created_at").unwrap_or(timestamp);
    let updated_at = time(doc, "updated_at").unwrap_or(created_at);
    let sender = match sub_document(doc, "sender") {
        Some(s) => Sender {
            twitter_id: non_empty(s, "twitter_id"),
            username: handle(non_empty(s, "username")),
            display_name: non_empty(s, "display_name"),
            profile_image_url: non_empty(s, "profile_image_url"),
        },
        None => Sender::default(),
    };
    let sent_to = sub_document(doc, "sent_to");
    let user = match doc.get("user") {
        // Some old documents embedded the user: take its ids.
        Some(Bson::Document(u)) => non_empty(u, "twitter_id").or_else(|| non_empty(u, "id")),
        _ => non_empty(doc, "user"),
    };
    let link = AccountLink {
        account_id: sent_to.and_then(|s| non_empty(s, "account_id")),
        twitter_id: sent_to.and_then(|s| non_empty(s, "twitter_id")),
        user,
    };
    if link == AccountLink::default() {
        return Err("no account: neither sent_to nor user names one".into());
    }
    let public_response = response(doc, "public_response", updated_at)?;
    let dm_response = response(doc, "dm_response", updated_at)?;
    let mut error_message = non_empty(doc, "error_message");
    if was_processing {
        error_message = Some(PROCESSING_MESSAGE.to_string());
    }
    let source_id = non_empty(doc, "id").and_then(|s| Uuid::parse_str(s.trim()).ok());
    Ok(ImportedMessage {
        mention: Mention {
            id: source_id.unwrap_or(Uuid::nil()),
            tweet_id,
            timestamp,
            text: text(doc, "text").unwrap_or_default(),
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
            conversation_id: non_empty(doc, "conversation_id"),
            referenced_posts: referenced_posts(doc),
            error_message,
            created_at,
            updated_at,
        },
        link,
        was_processing,
        sent_to_username: sent_to.and_then(|s| handle(non_empty(s, "username"))),
        sent_to_display_name: sent_to.and_then(|s| non_empty(s, "display_name")),
    })
}

impl ImportedMessage {
    /// Ties the message to the perch account it was sent to.
    pub fn send_to(mut self, account: &Account) -> Mention {
        let mut sent_to = SentTo::account(account);
        if let Some(u) = self.sent_to_username.take() {
            sent_to.username = u;
        }
        if let Some(d) = self.sent_to_display_name.take() {
            sent_to.display_name = d;
        }
        self.mention.sent_to = sent_to;
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
        assert_eq!(response(&d, "a", t).unwrap(), None);
        assert_eq!(response(&d, "missing", t).unwrap(), None);
        let b = response(&d, "b", t).unwrap().unwrap();
        assert_eq!(
            (b.text.as_str(), b.id.as_str(), b.sent_at),
            ("thanks!", "", t)
        );
        let c = response(&d, "c", t).unwrap().unwrap();
        assert_eq!((c.text.as_str(), c.id.as_str()), ("sent", "123"));
        assert_eq!(c.sent_at.timestamp_millis(), 5000);
        assert_eq!(response(&d, "d", t).unwrap().unwrap().text, "no id");
        assert!(response(&d, "e", t).is_err());
    }

    #[test]
    fn processing_becomes_error_with_a_reason() {
        let d = doc! { "tweet_id": "1578516295611748353", "status": "processing", "user": "42" };
        let m = message_from(&d).unwrap();
        assert!(m.was_processing);
        assert_eq!(m.mention.status, MentionStatus::Error);
        assert_eq!(m.mention.error_message.as_deref(), Some(PROCESSING_MESSAGE));
        assert_eq!(m.link.user.as_deref(), Some("42"));
        assert!(message_from(&doc! { "tweet_id": "1", "status": "odd", "user": "42" }).is_err());
        assert!(message_from(&doc! { "tweet_id": "x1", "user": "42" }).is_err());
        assert!(message_from(&doc! { "tweet_id": "1" }).is_err());
    }
}
