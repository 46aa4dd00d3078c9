//! Property tests (issue 10): every parser that takes outside data — mentions pages, token
//! responses, Problem bodies, rate-limit headers, the config file, stored records — is fed
//! arbitrary bytes and arbitrary JSON and must answer with a value or an error, never a panic.
//! And structured hostile mentions pages (lying meta, unreadable posts, retweets, duplicates,
//! huge ids) must never let the cursor pass a post that was not stored, whether judged alone
//! (`sync::page`) or committed to a real store.

use std::path::Path;

use chrono::{DateTime, Utc};
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::domain::{Account, Mention};
use crate::store::Store;
use crate::sync::page::{next_cursor, read_page};
use crate::x::{self, wire};

fn now() -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp(1_800_000_000, 0).unwrap_or_default()
}

/// Any JSON value, a few levels deep, with the awkward corners (huge and negative numbers,
/// control characters, empty keys) well represented.
fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,24}".prop_map(Value::String),
        "[0-9]{1,25}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("data".to_string()),
                    Just("meta".to_string()),
                    Just("errors".to_string()),
                    Just("includes".to_string()),
                    Just("id".to_string()),
                    Just("text".to_string()),
                    Just("newest_id".to_string()),
                    Just("next_token".to_string()),
                    Just("users".to_string()),
                    Just("tweets".to_string()),
                    Just("access_token".to_string()),
                    Just("expires_in".to_string()),
                    Just("token_type".to_string()),
                    Just("detail".to_string()),
                    Just("type".to_string()),
                    ".{0,8}",
                ],
                inner,
                0..8,
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn arb_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..512)
}

/// Every outside-data parser at once, on one input.
fn parse_everything(body: &[u8]) {
    let _ = wire::parse_mentions(body);
    let _ = wire::parse_me(body);
    let _ = wire::parse_posted(body);
    let _ = wire::parse_dm(body);
    for status in [200, 400, 401, 402, 403, 404, 429, 500, 503, 599] {
        let _ = x::errors::classify(status, x::RateLimit::default(), body).to_string();
    }
    if let Ok(response) = serde_json::from_slice::<oauth2::basic::BasicTokenResponse>(body) {
        let _ = crate::auth::oauth::tokens_from_response(&response, None, now());
    }
    let text = String::from_utf8_lossy(body);
    let _ = crate::config::parse_file(Path::new("config.toml"), &text);
    let _ = crate::store::codec::decode::<Mention>(body, || "mention".into());
    let _ = crate::store::codec::decode::<Account>(body, || "account".into());
    let _ = crate::store::codec::decode::<crate::store::OutboxEntry>(body, || "outbox".into());
    let _ = crate::store::codec::decode::<crate::store::Draft>(body, || "draft".into());
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic_a_parser(body in arb_bytes()) {
        parse_everything(&body);
    }

    #[test]
    fn arbitrary_json_never_panics_a_parser(value in arb_json()) {
        parse_everything(value.to_string().as_bytes());
        // Behind a record format byte, JSON text is as good as any bytes to the codec.
        let mut record = vec![crate::store::RECORD_FORMAT];
        record.extend_from_slice(value.to_string().as_bytes());
        parse_everything(&record);
    }

    #[test]
    fn arbitrary_config_text_never_panics(text in "(\\PC|\n|=|\\[|\\]|\"){0,200}") {
        let _ = crate::config::parse_file(Path::new("config.toml"), &text);
    }

    #[test]
    fn arbitrary_rate_limit_headers_never_panic(
        values in prop::collection::vec(".{0,30}", 7),
        raw in prop::collection::vec(any::<u8>(), 0..40),
    ) {
        let names = [
            "x-rate-limit-limit", "x-rate-limit-remaining", "x-rate-limit-reset",
            "x-user-limit-24hour-reset", "x-user-limit-24hour-remaining",
            "x-user-limit-24hour-limit", "retry-after",
        ];
        let mut headers = reqwest::header::HeaderMap::new();
        for (name, value) in names.iter().zip(&values) {
            if let Ok(v) = reqwest::header::HeaderValue::from_str(value) {
                headers.insert(*name, v);
            }
        }
        if let Ok(v) = reqwest::header::HeaderValue::from_bytes(&raw) {
            headers.insert("retry-after", v);
        }
        let rl = x::parse_rate_limit_at(&headers, now());
        let _ = rl.retry_at();
        let _ = x::judge_reset(rl.retry_at(), now());
        let mut budget = crate::sync::budget::EndpointBudget::default();
        budget.observe(&rl, now());
        let _ = budget.spent_until(now());
        let _ = budget.pace(now(), 3);
        let _ = x::parse_retry_after(&values[0], now());
    }

    #[test]
    fn numeric_rate_limit_headers_never_panic_and_resets_are_judged(
        limit in any::<i64>(), remaining in any::<i64>(), reset in any::<i64>(),
        retry in any::<u64>(),
    ) {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("x-rate-limit-limit", limit.into());
        headers.insert("x-rate-limit-remaining", remaining.into());
        headers.insert("x-rate-limit-reset", reset.into());
        headers.insert("retry-after", retry.into());
        let rl = x::parse_rate_limit_at(&headers, now());
        let mut budget = crate::sync::budget::EndpointBudget::default();
        budget.observe(&rl, now());
        // Whatever X said, perch never waits longer than the longest real budget.
        if let Some(until) = budget.spent_until(now()) {
            prop_assert!(until - now() <= x::MAX_RESET_AHEAD);
        }
    }
}

// ---- structured hostile pages ----------------------------------------------------------------

/// One item of a hostile page.
#[derive(Clone, Debug)]
struct Item {
    id: IdShape,
    text: TextShape,
    retweet: bool,
}

#[derive(Clone, Debug)]
enum IdShape {
    Number(u64),
    Garbage(String),
    Missing,
    NotAString(i64),
}

#[derive(Clone, Debug)]
enum TextShape {
    Good(String),
    Null,
    Missing,
    Number(i64),
}

#[derive(Clone, Debug)]
enum MetaNewest {
    Absent,
    Honest,
    Beyond(u64),
    OneOfTheItems(usize),
    Garbage(String),
}

fn arb_item() -> impl Strategy<Value = Item> {
    let id = prop_oneof![
        6 => (1u64..2000).prop_map(IdShape::Number),
        1 => any::<u64>().prop_map(IdShape::Number),
        1 => ".{0,6}".prop_map(IdShape::Garbage),
        1 => Just(IdShape::Missing),
        1 => any::<i64>().prop_map(IdShape::NotAString),
    ];
    let text = prop_oneof![
        6 => ".{0,20}".prop_map(TextShape::Good),
        1 => Just(TextShape::Null),
        1 => Just(TextShape::Missing),
        1 => any::<i64>().prop_map(TextShape::Number),
    ];
    (id, text, prop::bool::weighted(0.2)).prop_map(|(id, text, retweet)| Item { id, text, retweet })
}

fn arb_meta() -> impl Strategy<Value = MetaNewest> {
    prop_oneof![
        Just(MetaNewest::Absent),
        Just(MetaNewest::Honest),
        any::<u64>().prop_map(MetaNewest::Beyond),
        Just(MetaNewest::Beyond(9_223_372_036_854_775_807)),
        (0usize..10).prop_map(MetaNewest::OneOfTheItems),
        "[a-z0-9]{0,5}".prop_map(MetaNewest::Garbage),
    ]
}

fn page_json(items: &[Item], meta: &MetaNewest, token: &Option<String>) -> Value {
    let data: Vec<Value> = items
        .iter()
        .map(|item| {
            let mut o = serde_json::Map::new();
            match &item.id {
                IdShape::Number(n) => {
                    o.insert("id".into(), json!(n.to_string()));
                }
                IdShape::Garbage(g) => {
                    o.insert("id".into(), json!(g));
                }
                IdShape::Missing => {}
                IdShape::NotAString(n) => {
                    o.insert("id".into(), json!(n));
                }
            }
            match &item.text {
                TextShape::Good(t) => {
                    o.insert("text".into(), json!(t));
                }
                TextShape::Null => {
                    o.insert("text".into(), Value::Null);
                }
                TextShape::Missing => {}
                TextShape::Number(n) => {
                    o.insert("text".into(), json!(n));
                }
            }
            if item.retweet {
                o.insert(
                    "referenced_tweets".into(),
                    json!([{"type": "retweeted", "id": "1"}]),
                );
            }
            Value::Object(o)
        })
        .collect();
    let ids: Vec<u64> = items
        .iter()
        .filter_map(|i| match i.id {
            IdShape::Number(n) => Some(n),
            _ => None,
        })
        .collect();
    let mut meta_json = json!({"result_count": items.len()});
    match meta {
        MetaNewest::Absent => {}
        MetaNewest::Honest => {
            if let Some(max) = ids.iter().max() {
                meta_json["newest_id"] = json!(max.to_string());
            }
        }
        MetaNewest::Beyond(n) => meta_json["newest_id"] = json!(n.to_string()),
        MetaNewest::OneOfTheItems(i) => {
            if let Some(id) = ids.get(*i) {
                meta_json["newest_id"] = json!(id.to_string());
            }
        }
        MetaNewest::Garbage(g) => meta_json["newest_id"] = json!(g),
    }
    if let Some(t) = token {
        meta_json["next_token"] = json!(t);
    }
    json!({"data": data, "meta": meta_json})
}

fn account() -> Account {
    Account::new("99".into(), "acme".into(), "Acme".into(), None, now())
}

proptest! {
    #[test]
    fn a_hostile_page_never_lets_the_cursor_pass_an_unstored_post(
        items in prop::collection::vec(arb_item(), 0..12),
        meta in arb_meta(),
        token in prop::option::of("[a-z]{1,4}"),
        room in prop_oneof![Just(usize::MAX), 0usize..12],
        since in prop::option::of(1u64..2000),
    ) {
        let body = page_json(&items, &meta, &token).to_string();
        let Ok(page) = wire::parse_mentions(body.as_bytes()) else {
            // Rejected as a whole: nothing is stored and the cursor stays.
            return Ok(());
        };
        let reading = read_page(&page, room);
        let stored: Vec<u64> = reading.to_store.iter().map(|p| p.tweet_id).collect();
        // The page moves the cursor to a post it stores, or not at all.
        match reading.newest_stored {
            Some(n) => prop_assert!(stored.contains(&n)),
            None => prop_assert!(stored.is_empty()),
        }
        let cursor = next_cursor(reading.newest_stored, since);
        let limit = stored.iter().copied().chain(since).max();
        prop_assert!(cursor <= limit, "cursor {cursor:?} beyond {limit:?}");
        // A lying meta is noticed, not believed.
        if let MetaNewest::Beyond(n) = meta
            && !items.iter().any(|i| matches!(i.id, IdShape::Number(m) if m == n))
            && !page.posts.is_empty()
        {
            prop_assert!(reading.fault.is_some());
        }
        // An unreadable page stores nothing and says so.
        if !items.is_empty() && page.posts.is_empty() {
            prop_assert!(reading.fault.is_some());
            prop_assert_eq!(reading.newest_stored, None);
        }
    }
}

proptest! {
    // Each case opens a real store: fewer cases.
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn committed_hostile_pages_leave_the_cursor_within_what_is_stored(
        pages in prop::collection::vec(
            (prop::collection::vec(arb_item(), 0..8), arb_meta()),
            1..4,
        ),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store")).unwrap();
        let account = account();
        store.put_account(&account).unwrap();
        for (items, meta) in pages {
            let body = page_json(&items, &meta, &None).to_string();
            let Ok(page) = wire::parse_mentions(body.as_bytes()) else { continue };
            let reading = read_page(&page, usize::MAX);
            let mentions: Vec<Mention> = reading
                .to_store
                .iter()
                .map(|p| x::to_mention(p, &account, now()))
                .collect();
            let since = store.cursor(account.id).unwrap();
            // A malformed page stores its readable posts but never moves the cursor.
            let cursor = match reading.fault {
                Some(_) => None,
                None => next_cursor(reading.newest_stored, since),
            };
            store
                .commit_fetched_page(account.id, &mentions, &reading.skipped_ids, cursor)
                .unwrap();
            let newest = store
                .page_after(&crate::store::FeedFilter::default(), None, 1000)
                .unwrap()
                .iter()
                .map(|m| m.tweet_id_u64())
                .max();
            let cursor = store.cursor(account.id).unwrap();
            prop_assert!(cursor <= newest, "cursor {cursor:?} beyond the newest stored {newest:?}");
        }
    }
}
