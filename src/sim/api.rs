//! The resource endpoints: `GET /2/users/me`, `GET /2/users/{id}/mentions`, `POST /2/tweets` and
//! `POST /2/dm_conversations/with/{participant_id}/messages`, shaped as CONTRACT.md §2-5 say.
//! Authentication, rate limits and faults happen before these run (see `http::gate`).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::http::{
    BodyFaults, Caller, about_blank, invalid_request, json_response, param_error, problem,
};
use super::state::snowflake_time as snowflake_time_of;
use super::state::{PostDraft, PostRecord, RefKind, Shared, UserRecord, World, x_timestamp};
use super::{CreatedPost, SentDm};

/// Only the 800 most recent mentions are reachable (CONTRACT.md §3.2).
pub(crate) const MENTIONS_CAP: usize = 800;

const TWEET_FIELDS: &[&str] = &[
    "article",
    "attachments",
    "author_id",
    "card_uri",
    "community_id",
    "context_annotations",
    "conversation_id",
    "created_at",
    "display_text_range",
    "edit_controls",
    "edit_history_tweet_ids",
    "entities",
    "geo",
    "id",
    "in_reply_to_user_id",
    "lang",
    "media_metadata",
    "non_public_metrics",
    "note_tweet",
    "organic_metrics",
    "possibly_sensitive",
    "promoted_metrics",
    "public_metrics",
    "referenced_tweets",
    "reply_settings",
    "scopes",
    "source",
    "suggested_source_links",
    "suggested_source_links_with_counts",
    "text",
    "withheld",
];

const USER_FIELDS: &[&str] = &[
    "affiliation",
    "confirmed_email",
    "connection_status",
    "created_at",
    "description",
    "entities",
    "id",
    "is_identity_verified",
    "location",
    "most_recent_tweet_id",
    "name",
    "parody",
    "pinned_tweet_id",
    "profile_banner_url",
    "profile_image_url",
    "protected",
    "public_metrics",
    "receives_your_dm",
    "subscription",
    "subscription_type",
    "url",
    "username",
    "verified",
    "verified_followers_count",
    "verified_type",
    "withheld",
];

const TWEET_EXPANSIONS: &[&str] = &[
    "article.cover_media",
    "article.media_entities",
    "attachments.media_keys",
    "attachments.media_source_tweet",
    "attachments.poll_ids",
    "author_id",
    "edit_history_tweet_ids",
    "entities.mentions.username",
    "geo.place_id",
    "in_reply_to_user_id",
    "entities.note.mentions.username",
    "referenced_tweets.id",
    "referenced_tweets.id.attachments.media_keys",
    "referenced_tweets.id.author_id",
];

const USER_EXPANSIONS: &[&str] = &[
    "affiliation.user_id",
    "most_recent_tweet_id",
    "pinned_tweet_id",
];

const MENTIONS_PARAMS: &[&str] = &[
    "since_id",
    "until_id",
    "max_results",
    "pagination_token",
    "start_time",
    "end_time",
    "tweet.fields",
    "expansions",
    "media.fields",
    "poll.fields",
    "user.fields",
    "place.fields",
];

const USERS_ME_PARAMS: &[&str] = &["user.fields", "expansions", "tweet.fields"];

/// Parsed query parameters, with the invalid-request entries found while parsing.
struct Params {
    values: HashMap<String, String>,
    errors: Vec<Value>,
}

impl Params {
    fn parse(raw: Option<&str>, allowed: &[&str]) -> Params {
        let mut values = HashMap::new();
        let mut errors = Vec::new();
        for (k, v) in url::form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
            if !allowed.contains(&k.as_ref()) {
                errors.push(json!({
                    "parameters": {k.as_ref(): [v.as_ref()]},
                    "message": format!("The query parameter [{k}] is not one of [{}]", allowed.join(",")),
                }));
                continue;
            }
            values.insert(k.into_owned(), v.into_owned());
        }
        Params { values, errors }
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// A comma-separated list parameter checked against its enum.
    fn list(&mut self, name: &str, allowed: &[&str]) -> HashSet<String> {
        let Some(raw) = self.values.get(name).cloned() else {
            return HashSet::new();
        };
        let mut out = HashSet::new();
        for item in raw.split(',') {
            if allowed.contains(&item) {
                out.insert(item.to_string());
            } else {
                self.errors.push(param_error(
                    name,
                    item,
                    &format!("is not one of [{}]", allowed.join(",")),
                ));
            }
        }
        out
    }

    fn tweet_id(&mut self, name: &str) -> Option<u64> {
        let raw = self.get(name)?.to_string();
        let parsed = parse_id(&raw);
        if parsed.is_none() {
            self.errors.push(param_error(name, &raw, "is not valid"));
        }
        parsed
    }

    fn time(&mut self, name: &str) -> Option<DateTime<Utc>> {
        let raw = self.get(name)?.to_string();
        let parsed = DateTime::parse_from_rfc3339(&raw)
            .ok()
            .map(|t| t.with_timezone(&Utc));
        if parsed.is_none() {
            self.errors.push(param_error(name, &raw, "is not valid"));
        }
        parsed
    }
}

/// An id as the spec allows it: 1-19 decimal digits that fit a u64.
fn parse_id(raw: &str) -> Option<u64> {
    let digits = !raw.is_empty() && raw.len() <= 19 && raw.bytes().all(|b| b.is_ascii_digit());
    digits.then(|| raw.parse().ok()).flatten()
}

/// Post text goes out HTML-escaped (`&amp; &lt; &gt;`), as X sends it (CONTRACT.md §0).
fn escape(text: &str) -> String {
    html_escape::encode_text(text).into_owned()
}

pub(crate) fn user_json(world: &World, user: &UserRecord, fields: &HashSet<String>) -> Value {
    let mut o = Map::new();
    o.insert("id".into(), json!(user.id.to_string()));
    o.insert("name".into(), json!(user.name));
    o.insert("username".into(), json!(user.username));
    let has = |f: &str| fields.contains(f);
    if has("profile_image_url") {
        o.insert("profile_image_url".into(), json!(user.profile_image_url));
    }
    if has("created_at") {
        o.insert("created_at".into(), json!(x_timestamp(user.created_at)));
    }
    if has("description") {
        o.insert("description".into(), json!(user.description));
    }
    if has("protected") {
        o.insert("protected".into(), json!(false));
    }
    if has("verified") {
        o.insert("verified".into(), json!(false));
    }
    if has("verified_type") {
        o.insert("verified_type".into(), json!("none"));
    }
    if has("receives_your_dm") {
        o.insert("receives_your_dm".into(), json!(user.accepts_dms));
    }
    if has("public_metrics") {
        let posts = world.posts_by_author.get(&user.id).map_or(0, |p| p.len());
        o.insert(
            "public_metrics".into(),
            json!({
                "followers_count": user.followers_count,
                "following_count": user.following_count,
                "tweet_count": posts,
                "listed_count": user.followers_count / 50,
                "like_count": user.following_count * 3,
            }),
        );
    }
    Value::Object(o)
}

pub(crate) fn tweet_json(post: &PostRecord, fields: &HashSet<String>, hide_author: bool) -> Value {
    let mut o = Map::new();
    o.insert("id".into(), json!(post.id.to_string()));
    o.insert("text".into(), json!(escape(&post.text)));
    o.insert(
        "edit_history_tweet_ids".into(),
        json!([post.id.to_string()]),
    );
    let has = |f: &str| fields.contains(f);
    if has("author_id") && !hide_author {
        o.insert("author_id".into(), json!(post.author_id.to_string()));
    }
    if has("created_at") {
        o.insert(
            "created_at".into(),
            json!(x_timestamp(snowflake_time_of(post.id))),
        );
    }
    if has("conversation_id") {
        o.insert(
            "conversation_id".into(),
            json!(post.conversation_id.to_string()),
        );
    }
    if has("in_reply_to_user_id")
        && let Some(to) = post.in_reply_to_user_id
    {
        o.insert("in_reply_to_user_id".into(), json!(to.to_string()));
    }
    if has("referenced_tweets") && !post.referenced.is_empty() {
        let refs: Vec<Value> = post
            .referenced
            .iter()
            .map(|(kind, id)| json!({"type": kind.as_str(), "id": id.to_string()}))
            .collect();
        o.insert("referenced_tweets".into(), json!(refs));
    }
    if has("entities") && (!post.mentions.is_empty() || !post.urls.is_empty()) {
        let mut e = Map::new();
        if !post.mentions.is_empty() {
            let mentions: Vec<Value> = post
                .mentions
                .iter()
                .map(|m| {
                    json!({"start": m.start, "end": m.end, "username": m.username, "id": m.id.to_string()})
                })
                .collect();
            e.insert("mentions".into(), json!(mentions));
        }
        if !post.urls.is_empty() {
            let urls: Vec<Value> = post
                .urls
                .iter()
                .map(|u| {
                    json!({"start": u.start, "end": u.end, "url": u.url,
                           "expanded_url": u.expanded_url, "display_url": u.display_url})
                })
                .collect();
            e.insert("urls".into(), json!(urls));
        }
        o.insert("entities".into(), Value::Object(e));
    }
    if has("public_metrics") {
        o.insert(
            "public_metrics".into(),
            json!({
                "retweet_count": post.retweet_count,
                "reply_count": post.reply_count,
                "like_count": post.like_count,
                "quote_count": post.quote_count,
                "bookmark_count": post.like_count / 7,
                "impression_count": post.impression_count,
            }),
        );
    }
    if has("possibly_sensitive") {
        o.insert("possibly_sensitive".into(), json!(false));
    }
    if has("reply_settings") {
        o.insert("reply_settings".into(), json!("everyone"));
    }
    Value::Object(o)
}

/// `GET /2/users/me`.
pub(crate) async fn users_me(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    RawQuery(query): RawQuery,
) -> Response {
    let mut params = Params::parse(query.as_deref(), USERS_ME_PARAMS);
    let user_fields = params.list("user.fields", USER_FIELDS);
    params.list("expansions", USER_EXPANSIONS);
    params.list("tweet.fields", TWEET_FIELDS);
    if !params.errors.is_empty() {
        return invalid_request(params.errors);
    }
    let mut world = shared.world();
    let day = shared.clock.now().date_naive();
    world.billing.user_read(caller.user_id, day, caller.user_id);
    match world.users.get(&caller.user_id) {
        Some(user) => json_response(
            StatusCode::OK,
            &json!({"data": user_json(&world, user, &user_fields)}),
        ),
        None => about_blank(StatusCode::UNAUTHORIZED, "Unauthorized", "Unauthorized"),
    }
}

/// The `hostile_senders` fault: the `i`-th user of a page gets a username and name that no real
/// X account has (X's usernames are 1-15 of `[A-Za-z0-9_]`).
fn hostile_profile(user: &mut Value, i: usize) {
    let username = match i % 4 {
        0 => "evil\u{1b}]52;c;aGk=\u{7}".to_string(),
        1 => "a".repeat(10_000),
        2 => "bidi\u{202e}\u{2067}\u{9b}2J".to_string(),
        _ => "del\u{7f}\u{85}x".to_string(),
    };
    user["username"] = json!(username);
    user["name"] = json!("Name\u{85}\u{202e}\u{7f}\u{1b}[31m");
}

/// Where a page starts: `next_token` continues below an id, `previous_token` above one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PageToken {
    Older(u64),
    Newer(u64),
}

const TOKEN_SALT: u64 = 0x5DEE_CE66_D1CE_4E5B;

impl PageToken {
    /// Opaque base36, as X's tokens look; carries a check so a mangled token is refused.
    fn encode(self) -> String {
        let (dir, id) = match self {
            PageToken::Older(id) => (0u128, id),
            PageToken::Newer(id) => (1u128, id),
        };
        let check = u128::from((id ^ TOKEN_SALT).rotate_left(17) & 0xFF_FFFF_FFFF);
        let mut n = (u128::from(id) << 48) | (dir << 40) | check;
        let mut out = Vec::new();
        while n > 0 {
            out.push(char::from_digit((n % 36) as u32, 36).unwrap_or('0'));
            n /= 36;
        }
        out.iter().rev().collect()
    }

    fn decode(raw: &str) -> Option<PageToken> {
        let n = u128::from_str_radix(raw, 36).ok()?;
        let id = u64::try_from(n >> 48).ok()?;
        let dir = (n >> 40) & 0xFF;
        let check = n & 0xFF_FFFF_FFFF;
        if check != u128::from((id ^ TOKEN_SALT).rotate_left(17) & 0xFF_FFFF_FFFF) {
            return None;
        }
        match dir {
            0 => Some(PageToken::Older(id)),
            1 => Some(PageToken::Newer(id)),
            _ => None,
        }
    }
}

/// `GET /2/users/{id}/mentions`.
pub(crate) async fn mentions(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    Extension(body_faults): Extension<BodyFaults>,
    Extension(caller): Extension<Caller>,
    RawQuery(query): RawQuery,
) -> Response {
    let mut params = Params::parse(query.as_deref(), MENTIONS_PARAMS);
    let user_id = parse_id(&id);
    if user_id.is_none() {
        params.errors.push(param_error("id", &id, "is not valid"));
    }
    let max_results = match params.get("max_results").map(str::to_string) {
        None => 10,
        Some(raw) => match raw.parse::<i64>() {
            Ok(n) if (5..=100).contains(&n) => n as usize,
            Ok(_) => {
                params
                    .errors
                    .push(param_error("max_results", &raw, "is not between 5 and 100"));
                10
            }
            Err(_) => {
                params
                    .errors
                    .push(param_error("max_results", &raw, "is not valid"));
                10
            }
        },
    };
    let since_id = params.tweet_id("since_id");
    let until_id = params.tweet_id("until_id");
    let start_time = params.time("start_time");
    let end_time = params.time("end_time");
    let token = match params.get("pagination_token").map(str::to_string) {
        None => None,
        Some(raw) => {
            let t = PageToken::decode(&raw);
            if t.is_none() {
                params
                    .errors
                    .push(param_error("pagination_token", &raw, "is not valid"));
            }
            t
        }
    };
    let tweet_fields = params.list("tweet.fields", TWEET_FIELDS);
    let expansions = params.list("expansions", TWEET_EXPANSIONS);
    let user_fields = params.list("user.fields", USER_FIELDS);
    let (Some(user_id), true) = (user_id, params.errors.is_empty()) else {
        return invalid_request(params.errors);
    };

    let mut world = shared.world();
    if !world.users.contains_key(&user_id) {
        return json_response(
            StatusCode::OK,
            &json!({"errors": [{
                "value": id,
                "detail": format!("Could not find user with id: [{id}]."),
                "title": "Not Found Error",
                "resource_type": "user",
                "parameter": "id",
                "resource_id": id,
                "type": "https://api.twitter.com/2/problems/resource-not-found",
            }]}),
        );
    }
    // Newest first, the cap applied before any filter: older mentions simply do not exist.
    let reachable: Vec<u64> = world
        .mentions
        .get(&user_id)
        .map(|set| set.iter().rev().take(MENTIONS_CAP).copied().collect())
        .unwrap_or_default();
    let filtered: Vec<u64> = reachable
        .into_iter()
        .filter(|id| since_id.is_none_or(|s| *id > s))
        .filter(|id| until_id.is_none_or(|u| *id < u))
        .filter(|id| {
            let t = snowflake_time_of(*id);
            start_time.is_none_or(|s| t >= s) && end_time.is_none_or(|e| t <= e)
        })
        .collect();
    let page: Vec<u64> = match token {
        None => filtered.iter().take(max_results).copied().collect(),
        Some(PageToken::Older(below)) => filtered
            .iter()
            .filter(|id| **id < below)
            .take(max_results)
            .copied()
            .collect(),
        Some(PageToken::Newer(above)) => {
            let newer: Vec<u64> = filtered.iter().filter(|id| **id > above).copied().collect();
            let skip = newer.len().saturating_sub(max_results);
            newer[skip..].to_vec()
        }
    };
    if body_faults.empty_token_pages
        && let Some(PageToken::Older(below)) = token
    {
        // An empty page that still points further (a new token each time).
        let next = PageToken::Older(below.saturating_sub(1)).encode();
        return json_response(
            StatusCode::OK,
            &json!({"meta": {"result_count": 0, "next_token": next}}),
        );
    }
    let (Some(&newest), Some(&oldest)) = (page.first(), page.last()) else {
        return json_response(StatusCode::OK, &json!({"meta": {"result_count": 0}}));
    };
    let mut meta = json!({
        "result_count": page.len(),
        "newest_id": newest.to_string(),
        "oldest_id": oldest.to_string(),
    });
    if body_faults.newest_id_beyond {
        meta["newest_id"] = json!(i64::MAX.to_string());
    }
    if filtered.iter().any(|id| *id < oldest) {
        meta["next_token"] = json!(PageToken::Older(oldest).encode());
    }
    if body_faults.repeat_next_token {
        // "Older than u64::MAX" is this very first page again: the token leads in a circle.
        meta["next_token"] = json!(PageToken::Older(u64::MAX).encode());
    } else if body_faults.endless_pages {
        // A token never sent before, that leads to the first page again.
        let previous = match token {
            Some(PageToken::Older(below)) => below,
            _ => u64::MAX,
        };
        meta["next_token"] =
            json!(PageToken::Older(previous.saturating_sub(1).max(newest + 1)).encode());
    }
    if token.is_some() && filtered.iter().any(|id| *id > newest) {
        meta["previous_token"] = json!(PageToken::Newer(newest).encode());
    }

    // Billed per post in `data`; owned when the app owner reads its own mentions (COSTS.md §3).
    let owned = user_id == caller.user_id
        && shared
            .config
            .app_owner
            .as_deref()
            .and_then(|owner| world.find_user(owner))
            == Some(caller.user_id);
    let billed: Vec<u64> = page
        .iter()
        .copied()
        .filter(|id| world.posts.contains_key(id))
        .collect();
    let day = shared.clock.now().date_naive();
    world
        .billing
        .posts_read(caller.user_id, owned, day, &billed);
    let world = &*world;
    let posts: Vec<&PostRecord> = page.iter().filter_map(|id| world.posts.get(id)).collect();
    let mut body = Map::new();
    let data: Vec<Value> = posts
        .iter()
        .enumerate()
        .map(|(i, post)| {
            let hide_author = body_faults.missing_authors && i % 2 == 0;
            let mut item = tweet_json(post, &tweet_fields, hide_author);
            if body_faults.bad_posts && i == 1 {
                item.as_object_mut().map(|o| o.remove("text"));
            }
            if body_faults.unreadable_pages {
                item["text"] = Value::Null;
            }
            if body_faults.hostile_senders {
                item["text"] = json!(format!(
                    "{} \u{85}\u{9b}31m\u{7f}\u{202e}evil\u{2066}",
                    post.text
                ));
            }
            if body_faults.retweets && i % 3 == 2 {
                item["referenced_tweets"] =
                    json!([{"type": "retweeted", "id": post.conversation_id.to_string()}]);
            }
            item
        })
        .collect();
    body.insert("data".into(), json!(data));
    let (includes, errors) = expand(
        world,
        &posts,
        &expansions,
        &tweet_fields,
        &user_fields,
        body_faults,
    );
    if !includes.is_empty() {
        body.insert("includes".into(), Value::Object(includes));
    }
    if !errors.is_empty() {
        body.insert("errors".into(), json!(errors));
    }
    body.insert("meta".into(), meta);
    json_response(StatusCode::OK, &Value::Object(body))
}

/// The `includes` object for a page and the partial errors beside it.
fn expand(
    world: &World,
    posts: &[&PostRecord],
    expansions: &HashSet<String>,
    tweet_fields: &HashSet<String>,
    user_fields: &HashSet<String>,
    faults: BodyFaults,
) -> (Map<String, Value>, Vec<Value>) {
    let wants = |e: &str| expansions.contains(e);
    let mut user_ids: Vec<u64> = Vec::new();
    let mut tweet_ids: Vec<u64> = Vec::new();
    let mut hidden_users: HashSet<u64> = HashSet::new();
    let mut errors = Vec::new();
    let push = |list: &mut Vec<u64>, id: u64| {
        if !list.contains(&id) {
            list.push(id);
        }
    };
    for (i, post) in posts.iter().enumerate() {
        let hide_author = faults.missing_authors && i % 2 == 0;
        if wants("author_id") && !hide_author {
            push(&mut user_ids, post.author_id);
        }
        if wants("in_reply_to_user_id")
            && let Some(to) = post.in_reply_to_user_id
        {
            if faults.partial_errors && hidden_users.is_empty() {
                hidden_users.insert(to);
                errors.push(json!({
                    "resource_id": to.to_string(),
                    "parameter": "in_reply_to_user_id",
                    "resource_type": "user",
                    "section": "includes",
                    "title": "Authorization Error",
                    "value": to.to_string(),
                    "detail": format!("Sorry, you are not authorized to see the user with in_reply_to_user_id: [{to}]."),
                    "type": "https://api.twitter.com/2/problems/not-authorized-for-resource",
                }));
            } else {
                push(&mut user_ids, to);
            }
        }
        if wants("entities.mentions.username") {
            for m in &post.mentions {
                push(&mut user_ids, m.id);
            }
        }
        for (_, ref_id) in &post.referenced {
            if wants("referenced_tweets.id") {
                let first_reference = errors
                    .iter()
                    .all(|e| e["parameter"] != "referenced_tweets.id");
                if faults.partial_errors && first_reference {
                    errors.push(json!({
                        "value": ref_id.to_string(),
                        "detail": format!("Could not find tweet with referenced_tweets.id: [{ref_id}]."),
                        "title": "Not Found Error",
                        "resource_type": "tweet",
                        "parameter": "referenced_tweets.id",
                        "resource_id": ref_id.to_string(),
                        "type": "https://api.twitter.com/2/problems/resource-not-found",
                    }));
                    continue;
                }
                push(&mut tweet_ids, *ref_id);
            }
            if wants("referenced_tweets.id.author_id")
                && let Some(referenced) = world.posts.get(ref_id)
            {
                push(&mut user_ids, referenced.author_id);
            }
        }
    }
    let mut includes = Map::new();
    let users: Vec<Value> = user_ids
        .iter()
        .filter(|id| !hidden_users.contains(id))
        .filter_map(|id| world.users.get(id))
        .enumerate()
        .map(|(i, u)| {
            let mut user = user_json(world, u, user_fields);
            if faults.hostile_senders {
                hostile_profile(&mut user, i);
            }
            user
        })
        .collect();
    if !users.is_empty() {
        includes.insert("users".into(), json!(users));
    }
    let tweets: Vec<Value> = tweet_ids
        .iter()
        .filter_map(|id| world.posts.get(id))
        .map(|p| tweet_json(p, tweet_fields, false))
        .collect();
    if !tweets.is_empty() {
        includes.insert("tweets".into(), json!(tweets));
    }
    (includes, errors)
}

const TWEET_CREATE_KEYS: &[&str] = &[
    "card_uri",
    "community_id",
    "direct_message_deep_link",
    "edit_options",
    "for_super_followers_only",
    "geo",
    "media",
    "nullcast",
    "poll",
    "quote_tweet_id",
    "reply",
    "reply_settings",
    "share_with_followers",
    "text",
];
const REPLY_KEYS: &[&str] = &[
    "auto_populate_reply_metadata",
    "exclude_reply_user_ids",
    "in_reply_to_tweet_id",
];
/// Request features the simulator does not model; refused rather than silently ignored.
const UNSUPPORTED_CREATE_KEYS: &[&str] = &[
    "card_uri",
    "community_id",
    "direct_message_deep_link",
    "edit_options",
    "media",
    "poll",
];

/// A request-body error in the wording of X's schema validator (`$.path: problem`).
fn body_error(message: String) -> Response {
    invalid_request(vec![json!({"message": message})])
}

fn forbidden(detail: &str) -> Response {
    about_blank(StatusCode::FORBIDDEN, "Forbidden", detail)
}

// The refusal is the ready-made response, returned as is: boxing it would buy nothing.
#[allow(clippy::result_large_err)]
fn parse_body(body: &Bytes) -> Result<Map<String, Value>, Response> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(body_error("$: object expected".into())),
        Err(_) => Err(body_error(
            "Request body is not valid JSON. Send a JSON object with Content-Type: application/json."
                .into(),
        )),
    }
}

/// `POST /2/tweets`: a post or a reply, as CONTRACT.md §4 describes.
pub(crate) async fn create_post(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Response {
    let request = match parse_body(&body) {
        Ok(map) => map,
        Err(refusal) => return refusal,
    };
    for key in request.keys() {
        if !TWEET_CREATE_KEYS.contains(&key.as_str()) {
            return body_error(format!(
                "$.{key}: is not defined in the schema and the schema does not allow additional properties"
            ));
        }
        if UNSUPPORTED_CREATE_KEYS.contains(&key.as_str()) {
            return body_error(format!("$.{key}: not supported by the perch simulator"));
        }
    }
    let text = match request.get("text") {
        Some(Value::String(s)) => s.clone(),
        Some(other) => {
            return body_error(format!(
                "$.text: {} found, string expected",
                type_name(other)
            ));
        }
        None => return body_error("$.text: is missing but it is required".into()),
    };
    let mut reply_to = None;
    if let Some(reply) = request.get("reply") {
        let Value::Object(reply) = reply else {
            return body_error(format!(
                "$.reply: {} found, object expected",
                type_name(reply)
            ));
        };
        if let Some(key) = reply.keys().find(|k| !REPLY_KEYS.contains(&k.as_str())) {
            return body_error(format!(
                "$.reply.{key}: is not defined in the schema and the schema does not allow additional properties"
            ));
        }
        match reply.get("in_reply_to_tweet_id") {
            Some(Value::String(id)) => match parse_id(id) {
                Some(id) => reply_to = Some(id),
                None => {
                    return body_error(format!(
                        "$.reply.in_reply_to_tweet_id: does not match the regex pattern ^[0-9]{{1,19}}$ ({id})"
                    ));
                }
            },
            Some(other) => {
                return body_error(format!(
                    "$.reply.in_reply_to_tweet_id: {} found, string expected",
                    type_name(other)
                ));
            }
            None => {
                return body_error(
                    "$.reply.in_reply_to_tweet_id: is missing but it is required".into(),
                );
            }
        }
    }
    let quote_of = match request.get("quote_tweet_id") {
        None => None,
        Some(Value::String(id)) => match parse_id(id) {
            Some(id) => Some(id),
            None => {
                return body_error(format!(
                    "$.quote_tweet_id: does not match the regex pattern ^[0-9]{{1,19}}$ ({id})"
                ));
            }
        },
        Some(other) => {
            return body_error(format!(
                "$.quote_tweet_id: {} found, string expected",
                type_name(other)
            ));
        }
    };
    if text.trim().is_empty() {
        return body_error("$.text: must not be empty".into());
    }
    if crate::text::weighted_length(&text) > crate::text::MAX_POST_LENGTH {
        return body_error("Your Tweet text is too long. For more information on how Twitter determines text length see https://github.com/twitter/twitter-text.".into());
    }

    let now = shared.clock.now();
    let mut world = shared.world();
    let me = caller.user_id;
    let duplicate = world.posts_by_author.get(&me).is_some_and(|ids| {
        ids.iter()
            .any(|id| world.posts.get(id).is_some_and(|p| p.text == text))
    });
    if duplicate {
        return forbidden("You are not allowed to create a Tweet with duplicate content.");
    }
    if let Some(parent_id) = reply_to {
        let Some(parent) = world.posts.get(&parent_id) else {
            return forbidden(
                "You attempted to reply to a Tweet that is deleted or not visible to you.",
            );
        };
        // The summoned-replies rule (CONTRACT.md §4): the parent's author must have engaged you.
        let summoned = parent.author_id == me
            || parent.mentions.iter().any(|m| m.id == me)
            || parent.referenced.iter().any(|(kind, id)| {
                *kind == RefKind::Quoted && world.posts.get(id).is_some_and(|q| q.author_id == me)
            });
        if !summoned {
            return forbidden(
                "Reply to this conversation is not allowed because you have not been mentioned or otherwise engaged by the author of the post you are replying to.",
            );
        }
    }
    if let Some(quoted) = quote_of
        && !world.posts.contains_key(&quoted)
    {
        return forbidden(
            "You attempted to reply to a Tweet that is deleted or not visible to you.",
        );
    }
    // Billed per request (COSTS.md §2): a summoned reply $0.010, any other post $0.015, a post
    // with a URL $0.200.
    let summoned_reply = reply_to
        .and_then(|p| world.posts.get(&p))
        .is_some_and(|parent| {
            parent.mentions.iter().any(|m| m.id == me)
                || parent.referenced.iter().any(|(kind, id)| {
                    *kind == RefKind::Quoted
                        && world.posts.get(id).is_some_and(|q| q.author_id == me)
                })
        });
    world
        .billing
        .post_created(me, crate::text::contains_url(&text), summoned_reply);
    let id = world.insert_post(PostDraft {
        author_id: me,
        text: text.clone(),
        at: now,
        reply_to,
        quote_of,
        links: Vec::new(),
        like_count: 0,
        impression_count: 0,
    });
    let username = world.username(me);
    world.created_posts.push(CreatedPost {
        id: id.to_string(),
        author_id: me.to_string(),
        author_username: username,
        text: text.clone(),
        in_reply_to_tweet_id: reply_to.map(|r| r.to_string()),
        quote_tweet_id: quote_of.map(|q| q.to_string()),
        created_at: snowflake_time_of(id),
    });
    drop(world);
    let mut response = json_response(
        StatusCode::CREATED,
        &json!({"data": {
            "edit_history_tweet_ids": [id.to_string()],
            "id": id.to_string(),
            "text": escape(&text),
        }}),
    );
    if let Ok(location) = format!("https://api.x.com/2/tweets/{id}").parse() {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

/// The project id the usage report names (the simulator has one project).
const PROJECT_ID: &str = "1481043626";

/// `GET /2/usage/tweets` (COSTS.md §6): posts consumed, app-only Bearer token only. Typed as in
/// openapi.json 2.159 (integers), with `daily_project_usage` when `usage.fields` asks for it.
pub(crate) async fn usage_tweets(
    State(shared): State<Arc<Shared>>,
    headers: axum::http::HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    if token != Some(shared.config.app_bearer_token.as_str()) {
        return about_blank(StatusCode::UNAUTHORIZED, "Unauthorized", "Unauthorized");
    }
    let mut params = Params::parse(query.as_deref(), &["days", "usage.fields"]);
    let fields = params.list(
        "usage.fields",
        &[
            "cap_reset_day",
            "daily_client_app_usage",
            "daily_project_usage",
            "project_cap",
            "project_id",
            "project_usage",
        ],
    );
    let days = match params.get("days").map(str::to_string) {
        None => 7,
        Some(raw) => match raw.parse::<i64>() {
            Ok(n) if (1..=90).contains(&n) => n,
            _ => {
                params
                    .errors
                    .push(param_error("days", &raw, "is not between 1 and 90"));
                7
            }
        },
    };
    if !params.errors.is_empty() {
        return invalid_request(params.errors);
    }
    let today = shared.clock.now().date_naive();
    let world = shared.world();
    // The billing cycle is the calendar month here.
    use chrono::Datelike;
    let first_of_month = today.with_day(1).unwrap_or(today);
    let next_month = first_of_month
        .checked_add_months(chrono::Months::new(1))
        .unwrap_or(today);
    let mut data = json!({
        // 2.159: "Number of days left for the Tweet cap to reset".
        "cap_reset_day": (next_month - today).num_days(),
        "project_cap": 3_000_000,
        "project_id": PROJECT_ID,
        "project_usage": world.billing.posts_since(first_of_month),
    });
    if fields.contains("daily_project_usage") {
        let first = today - chrono::Duration::days(days - 1);
        let usage: Vec<Value> = first
            .iter_days()
            .take_while(|d| *d <= today)
            .map(|d| {
                json!({
                    "date": format!("{}T00:00:00.000Z", d.format("%Y-%m-%d")),
                    "usage": world.billing.posts_by_day().get(&d).copied().unwrap_or(0),
                })
            })
            .collect();
        data["daily_project_usage"] = json!({
            "project_id": PROJECT_ID.parse::<i64>().unwrap_or(0),
            "usage": usage,
        });
    }
    json_response(StatusCode::OK, &json!({ "data": data }))
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// `POST /2/dm_conversations/with/{participant_id}/messages`: a one-to-one DM (CONTRACT.md §5).
pub(crate) async fn send_dm(
    State(shared): State<Arc<Shared>>,
    Path(participant_id): Path<String>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Response {
    let Some(recipient) = parse_id(&participant_id) else {
        return invalid_request(vec![param_error(
            "participant_id",
            &participant_id,
            "is not valid",
        )]);
    };
    let request = match parse_body(&body) {
        Ok(map) => map,
        Err(refusal) => return refusal,
    };
    if request.contains_key("attachments") {
        return body_error("$.attachments: not supported by the perch simulator".into());
    }
    if let Some(key) = request.keys().find(|k| k.as_str() != "text") {
        return body_error(format!(
            "$.{key}: is not defined in the schema and the schema does not allow additional properties"
        ));
    }
    let text = match request.get("text") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(Value::String(_)) => {
            return body_error("$.text: must be at least 1 characters long".into());
        }
        Some(other) => {
            return body_error(format!(
                "$.text: {} found, string expected",
                type_name(other)
            ));
        }
        None => return body_error("$.text: is missing but it is required".into()),
    };
    let now = shared.clock.now();
    let mut world = shared.world();
    let me = caller.user_id;
    let accepts = world.users.get(&recipient).map(|u| u.accepts_dms);
    match accepts {
        None => {
            return problem(
                StatusCode::BAD_REQUEST,
                json!({
                    "errors": [{
                        "value": participant_id,
                        "detail": format!("Could not find user with participant_id: [{participant_id}]."),
                        "title": "Not Found Error",
                        "resource_type": "user",
                        "parameter": "participant_id",
                        "resource_id": participant_id,
                        "type": "https://api.twitter.com/2/problems/resource-not-found",
                    }],
                    "title": "Invalid Request",
                    "detail": "One or more parameters to your request was invalid.",
                    "type": super::http::INVALID_REQUEST_TYPE,
                }),
            );
        }
        Some(false) => return forbidden("You cannot send messages to this user."),
        Some(true) if recipient == me => {
            return forbidden("You cannot send messages to this user.");
        }
        Some(true) => {}
    }
    world.billing.dm_sent(me);
    let event_id = world.next_id(now);
    let (low, high) = (me.min(recipient), me.max(recipient));
    let conversation_id = format!("{low}-{high}");
    let sender_username = world.username(me);
    let recipient_username = world.username(recipient);
    world.dms.push(SentDm {
        dm_event_id: event_id.to_string(),
        dm_conversation_id: conversation_id.clone(),
        sender_id: me.to_string(),
        sender_username,
        recipient_id: recipient.to_string(),
        recipient_username,
        text,
        created_at: snowflake_time_of(event_id),
    });
    drop(world);
    let mut response = json_response(
        StatusCode::CREATED,
        &json!({"data": {"dm_conversation_id": conversation_id, "dm_event_id": event_id.to_string()}}),
    );
    // X's quirk, kept on purpose: the id in the location header is wrapped in literal quotes.
    if let Ok(location) = format!("https://api.x.com/2/dm_events/\"{event_id}\"").parse() {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_tokens_round_trip_and_reject_tampering() {
        for t in [
            PageToken::Older(1_578_516_295_611_748_353),
            PageToken::Newer(42),
        ] {
            let s = t.encode();
            assert!(
                s.chars()
                    .all(|c| c.is_ascii_digit() || c.is_ascii_lowercase()),
                "{s}"
            );
            assert_eq!(PageToken::decode(&s), Some(t));
        }
        let mut s = PageToken::Older(12345).encode();
        s.push('7');
        assert_eq!(PageToken::decode(&s), None);
        assert_eq!(PageToken::decode("not a token"), None);
    }

    #[test]
    fn ids_follow_the_spec_pattern() {
        assert_eq!(parse_id("783214"), Some(783_214));
        assert_eq!(parse_id(""), None);
        assert_eq!(parse_id("12a"), None);
        assert_eq!(parse_id("99999999999999999999"), None);
    }

    #[test]
    fn text_is_escaped_like_x() {
        assert_eq!(escape("Q&A <b> \"x\""), "Q&amp;A &lt;b&gt; \"x\"");
    }
}
