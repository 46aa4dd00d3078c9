//! The X Activity API (XAA) as it arrives: one line of `GET /2/activity/stream` at a time, and
//! the subscription objects of `/2/activity/subscriptions` (ACTIVITY.md §3-§5).
//!
//! The stream is newline-delimited JSON with blank keep-alive lines (§4.3). Each line is an
//! event `{"data":{…}}`, an error or disconnect `{"errors":[…]}`, or something new. Nothing here
//! fails on an odd line: the reader reports what it could not understand and goes on, since one
//! bad line must not end a stream that carries every account's mentions.
//!
//! Spellings: real deliveries use v2 Tweet names (`referenced_tweets`,
//! `edit_history_tweet_ids`), spec 2.167's Post schema says `referenced_posts` /
//! `edit_history_post_ids`. Both are accepted (ACTIVITY.md §5.2).

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::Value;

use super::FetchedPost;
use super::wire::{WireTweet, WireUser, read_post};

/// The longest line perch reads from the stream; xurl caps at 1 MiB too (ACTIVITY.md §4.3).
pub const MAX_STREAM_LINE: usize = 1024 * 1024;

/// What X's event type names (ACTIVITY.md §2). Unknown types are kept by name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ActivityKind {
    MentionCreate,
    ReplyCreate,
    QuoteCreate,
    DmReceived,
    Other(String),
}

impl ActivityKind {
    pub fn parse(name: &str) -> ActivityKind {
        match name {
            "post.mention.create" => ActivityKind::MentionCreate,
            "post.reply.create" => ActivityKind::ReplyCreate,
            "post.quote.create" => ActivityKind::QuoteCreate,
            "dm.received" => ActivityKind::DmReceived,
            other => ActivityKind::Other(other.to_string()),
        }
    }

    pub fn name(&self) -> &str {
        match self {
            ActivityKind::MentionCreate => "post.mention.create",
            ActivityKind::ReplyCreate => "post.reply.create",
            ActivityKind::QuoteCreate => "post.quote.create",
            ActivityKind::DmReceived => "dm.received",
            ActivityKind::Other(name) => name,
        }
    }

    /// Post events whose payload is a Post that mentions or answers the watched user.
    pub fn carries_post(&self) -> bool {
        matches!(
            self,
            ActivityKind::MentionCreate | ActivityKind::ReplyCreate | ActivityKind::QuoteCreate
        )
    }
}

/// A received DM (the legacy Account-Activity shape, ACTIVITY.md §5.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivedDm {
    pub event_id: String,
    pub sender_id: String,
    pub sender_username: Option<String>,
    pub recipient_id: Option<String>,
    pub text: String,
    /// `created_timestamp`: epoch milliseconds, sent as a string.
    pub created_at_ms: Option<i64>,
}

/// One delivered event, routed by `user_id` (the subscription filter) and `tag`.
#[derive(Clone, Debug, PartialEq)]
pub struct ActivityEvent {
    /// Opaque: digits, negative digits or a UUID have all been seen (§5.1). Never parsed.
    pub event_uuid: String,
    pub kind: ActivityKind,
    /// `filter.user_id`: which watched account the event is for.
    pub user_id: Option<String>,
    pub tag: Option<String>,
    /// The post, for post events whose payload could be read.
    pub post: Option<FetchedPost>,
    /// The DM, for `dm.received`.
    pub dm: Option<ReceivedDm>,
    /// Why the payload could not be read, when it could not (the envelope was still fine).
    pub unreadable: Option<String>,
}

/// One line of the stream, classified.
#[derive(Clone, Debug, PartialEq)]
pub enum StreamLine {
    /// A blank keep-alive line (`\n` or `\r\n`), or XDK's `{}`.
    KeepAlive,
    Event(Box<ActivityEvent>),
    /// An in-stream operational disconnect (§4.6): the server closes next; reconnect.
    Disconnect {
        kind: String,
        detail: String,
    },
    /// Any other in-stream error (connection issues, unknown problems), one line each.
    Errors(Vec<String>),
    /// A line that is not a message perch knows (not JSON, or an unknown shape).
    Unreadable(String),
}

#[derive(Debug, Deserialize)]
struct WireLine {
    data: Option<Value>,
    errors: Option<Vec<Value>>,
}

#[derive(Debug, Deserialize)]
struct WireEnvelope {
    event_uuid: Value,
    event_type: String,
    #[serde(default)]
    filter: Option<WireFilter>,
    #[serde(default)]
    tag: Option<String>,
    #[serde(default)]
    payload: Option<Value>,
    #[serde(default)]
    includes: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct WireFilter {
    user_id: Option<String>,
}

/// Reads one line of the stream. Never fails: what cannot be used is classified as such.
pub fn parse_stream_line(line: &[u8]) -> StreamLine {
    let text = String::from_utf8_lossy(line);
    let trimmed = text.trim();
    if trimmed.is_empty() || trimmed == "{}" {
        return StreamLine::KeepAlive;
    }
    if line.len() > MAX_STREAM_LINE {
        return StreamLine::Unreadable(format!("a line of {} bytes (too long)", line.len()));
    }
    let wire: WireLine = match serde_json::from_str(trimmed) {
        Ok(w) => w,
        Err(e) => return StreamLine::Unreadable(format!("not JSON: {e}")),
    };
    // The schema allows data and errors on one object; an event is worth more than its notes.
    if let Some(data) = wire.data {
        return match serde_json::from_value::<WireEnvelope>(data) {
            Ok(envelope) => StreamLine::Event(Box::new(read_event(envelope))),
            Err(e) => StreamLine::Unreadable(format!("an event without its envelope: {e}")),
        };
    }
    match wire.errors {
        Some(errors) if !errors.is_empty() => read_errors(&errors),
        _ => StreamLine::Unreadable("a line with neither data nor errors".to_string()),
    }
}

fn read_errors(errors: &[Value]) -> StreamLine {
    // Problems are told apart by their `type` suffix, since spec 2.167 dropped the union (§4.6).
    for e in errors {
        let kind = e.get("type").and_then(Value::as_str).unwrap_or("");
        let title = e.get("title").and_then(Value::as_str).unwrap_or("");
        if kind.ends_with("/operational-disconnect") || title == "operational-disconnect" {
            return StreamLine::Disconnect {
                kind: e
                    .get("disconnect_type")
                    .and_then(Value::as_str)
                    .unwrap_or("OperationalDisconnect")
                    .to_string(),
                detail: e
                    .get("detail")
                    .and_then(Value::as_str)
                    .unwrap_or("the stream was disconnected")
                    .to_string(),
            };
        }
    }
    StreamLine::Errors(
        errors
            .iter()
            .map(|e| super::errors::error_item_line(e).unwrap_or_else(|| e.to_string()))
            .collect(),
    )
}

fn read_event(envelope: WireEnvelope) -> ActivityEvent {
    let kind = ActivityKind::parse(&envelope.event_type);
    let event_uuid = match envelope.event_uuid {
        Value::String(s) => s,
        other => other.to_string(),
    };
    let mut event = ActivityEvent {
        event_uuid,
        user_id: envelope.filter.and_then(|f| f.user_id),
        tag: envelope.tag,
        post: None,
        dm: None,
        unreadable: None,
        kind,
    };
    let Some(payload) = envelope.payload else {
        event.unreadable = Some("the event has no payload".to_string());
        return event;
    };
    if event.kind.carries_post() {
        let (users, tweets) = read_includes(envelope.includes.as_ref());
        match read_post(payload, &users, &tweets) {
            Ok(post) => event.post = Some(post),
            Err(why) => event.unreadable = Some(why),
        }
    } else if event.kind == ActivityKind::DmReceived {
        match read_dm(&payload) {
            Ok(dm) => event.dm = Some(dm),
            Err(why) => event.unreadable = Some(why),
        }
    }
    event
}

/// `includes.users[]` come flat in mention events and wrapped as `{"data": User}` in others
/// (§5.2); both are read. Unreadable items are left out, as for polled pages.
fn read_includes(includes: Option<&Value>) -> (HashMap<String, WireUser>, HashMap<u64, WireTweet>) {
    let mut users = HashMap::new();
    let mut tweets = HashMap::new();
    let Some(includes) = includes else {
        return (users, tweets);
    };
    for item in includes
        .get("users")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let item = item.get("data").unwrap_or(item);
        if let Ok(user) = serde_json::from_value::<WireUser>(item.clone()) {
            users.insert(user.id.trim().to_string(), user);
        }
    }
    for item in includes
        .get("tweets")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let item = item.get("data").unwrap_or(item);
        if let Ok(tweet) = serde_json::from_value::<WireTweet>(item.clone())
            && let Ok(id) = tweet.id.trim().parse::<u64>()
        {
            tweets.insert(id, tweet);
        }
    }
    (users, tweets)
}

fn read_dm(payload: &Value) -> Result<ReceivedDm, String> {
    let event = payload
        .get("direct_message_events")
        .and_then(Value::as_array)
        .and_then(|events| events.first())
        .ok_or("a dm.received without direct_message_events")?;
    let create = event
        .get("message_create")
        .ok_or("a DM event without message_create")?;
    let sender_id = create
        .get("sender_id")
        .and_then(Value::as_str)
        .ok_or("a DM without sender_id")?
        .to_string();
    let text = create
        .pointer("/message_data/text")
        .and_then(Value::as_str)
        .ok_or("a DM without text")?;
    let sender_username = payload
        .get("users")
        .and_then(|u| u.get(&sender_id))
        .map(|u| u.get("data").unwrap_or(u))
        .and_then(|u| u.get("username"))
        .and_then(Value::as_str)
        .map(str::to_string);
    Ok(ReceivedDm {
        event_id: event
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        sender_id,
        sender_username,
        recipient_id: create
            .pointer("/target/recipient_id")
            .and_then(Value::as_str)
            .map(str::to_string),
        text: super::unescape_entities(text),
        created_at_ms: event.get("created_timestamp").and_then(|t| match t {
            Value::String(s) => s.trim().parse().ok(),
            other => other.as_i64(),
        }),
    })
}

/// One activity subscription (create, list).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscription {
    pub subscription_id: String,
    pub event_type: String,
    pub user_id: Option<String>,
    pub tag: Option<String>,
}

#[derive(Debug, Deserialize)]
struct WireSubscription {
    subscription_id: String,
    event_type: String,
    #[serde(default)]
    filter: Option<WireFilter>,
    #[serde(default)]
    tag: Option<String>,
}

impl From<WireSubscription> for Subscription {
    fn from(w: WireSubscription) -> Self {
        Subscription {
            subscription_id: w.subscription_id,
            event_type: w.event_type,
            user_id: w.filter.and_then(|f| f.user_id),
            tag: w.tag,
        }
    }
}

/// The body of a subscription create. Spec 2.167 nests it as `data.subscription`; the docs'
/// quickstart shows a flat `data{…}` and once `data:[{…}]` (ACTIVITY.md §3.2): all three read.
pub fn parse_subscription_created(body: &[u8]) -> Result<Subscription, String> {
    let value: Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let data = value
        .get("data")
        .ok_or("no data in the subscription body")?;
    let item = match data {
        Value::Array(items) => items.first().ok_or("an empty data array")?,
        object => object.get("subscription").unwrap_or(object),
    };
    serde_json::from_value::<WireSubscription>(item.clone())
        .map(Subscription::from)
        .map_err(|e| format!("the subscription could not be read: {e}"))
}

/// The body of a subscription list: `data` is an array; unreadable items are left out.
pub fn parse_subscription_list(body: &[u8]) -> Result<Vec<Subscription>, String> {
    let value: Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let items = match value.get("data") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items.clone(),
        Some(other) => {
            return Err(format!("subscriptions data is not a list: {other}"));
        }
    };
    Ok(items
        .into_iter()
        .filter_map(|i| serde_json::from_value::<WireSubscription>(i).ok())
        .map(Subscription::from)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_lines_and_empty_objects_are_keep_alives() {
        for line in [&b""[..], b"\r\n", b"\n", b"   ", b"{}"] {
            assert_eq!(parse_stream_line(line), StreamLine::KeepAlive);
        }
    }

    #[test]
    fn garbage_lines_are_unreadable_not_fatal() {
        for line in [
            &b"<html>"[..],
            b"[1,2]",
            b"{\"data\":7}",
            b"{\"data\":{\"event_type\":1}}",
            b"\xff\xfe",
            b"{\"other\":1}",
        ] {
            assert!(
                matches!(parse_stream_line(line), StreamLine::Unreadable(_)),
                "{:?}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn spec_2_167_spellings_are_read() {
        let line = br#"{"data":{"event_uuid":"0f52b591-aaaa","event_type":"post.quote.create","filter":{"user_id":"7"},
            "payload":{"id":"12","text":"q","author_id":"9","edit_history_post_ids":["12"],
            "referenced_posts":[{"type":"quoted","id":"11"}]}}}"#;
        let StreamLine::Event(event) = parse_stream_line(line) else {
            panic!("not an event");
        };
        let post = event.post.expect("post");
        assert_eq!(post.referenced_posts.len(), 1);
        assert_eq!(post.referenced_posts[0].tweet_id, "11");
        assert_eq!(event.event_uuid, "0f52b591-aaaa");
    }

    #[test]
    fn an_event_with_a_bad_payload_keeps_its_envelope() {
        let line = br#"{"data":{"event_uuid":1,"event_type":"post.mention.create","filter":{"user_id":"7"},"payload":{"text":null}}}"#;
        let StreamLine::Event(event) = parse_stream_line(line) else {
            panic!("not an event");
        };
        assert_eq!(event.user_id.as_deref(), Some("7"));
        assert!(event.post.is_none());
        assert!(event.unreadable.is_some());
    }
}
