//! X's JSON as it arrives, and its conversion into perch's types. The serde types here mirror the
//! API's objects (CONTRACT.md §2-§5) and are private to the client: the simulator has its own, so
//! a mistake here cannot hide behind a matching mistake there.
//!
//! Leniency is deliberate and narrow: a mentions page whose envelope is wrong is rejected
//! (`Malformed`), but one unreadable post inside `data` is skipped and reported, and a missing
//! expansion (author, referenced post) only leaves that field unknown.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

use super::errors::error_item_line;
use super::{FetchedPost, Me, MentionsPage, PostedTweet, SentDm};
use crate::domain::{ReferenceKind, ReferencedPost, Sender};

/// Undoes the HTML escaping X applies to post text (`&amp;`, `&lt;`, `&gt;`, and nothing else),
/// in one pass: `&amp;lt;` is the five characters `&lt;` the author typed, not `<`.
pub fn unescape_entities(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find('&') {
        out.push_str(&rest[..pos]);
        let tail = &rest[pos..];
        let (replacement, consumed) = if tail.starts_with("&amp;") {
            ('&', 5)
        } else if tail.starts_with("&lt;") {
            ('<', 4)
        } else if tail.starts_with("&gt;") {
            ('>', 4)
        } else {
            ('&', 1)
        };
        out.push(replacement);
        rest = &tail[consumed..];
    }
    out.push_str(rest);
    out
}

/// A user object (`data` of users/me, `includes.users[]`).
#[derive(Debug, Deserialize)]
pub(crate) struct WireUser {
    pub id: String,
    pub name: Option<String>,
    pub username: Option<String>,
    pub profile_image_url: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct WireReference {
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
}

/// A post object (`data[]` of mentions, `includes.tweets[]`).
#[derive(Debug, Deserialize)]
pub(crate) struct WireTweet {
    pub id: String,
    pub text: String,
    pub author_id: Option<String>,
    pub created_at: Option<String>,
    pub conversation_id: Option<String>,
    pub in_reply_to_user_id: Option<String>,
    /// Spec 2.167's Post schema calls it `referenced_posts` (ACTIVITY.md §5.2); both are read.
    #[serde(default, alias = "referenced_posts")]
    pub referenced_tweets: Vec<WireReference>,
}

#[derive(Debug, Default, Deserialize)]
struct WireMeta {
    result_count: Option<u32>,
    newest_id: Option<String>,
    oldest_id: Option<String>,
    next_token: Option<String>,
}

/// The envelope of a mentions page. Items stay as raw JSON so that one bad item can be skipped.
#[derive(Debug, Deserialize)]
struct WireMentionsBody {
    data: Option<Vec<Value>>,
    includes: Option<WireIncludes>,
    errors: Option<Vec<Value>>,
    meta: Option<WireMeta>,
}

#[derive(Debug, Default, Deserialize)]
struct WireIncludes {
    #[serde(default)]
    users: Vec<Value>,
    #[serde(default)]
    tweets: Vec<Value>,
}

#[derive(Debug, Deserialize)]
struct WireData<T> {
    data: T,
}

#[derive(Debug, Deserialize)]
struct WirePosted {
    id: String,
    text: String,
}

#[derive(Debug, Deserialize)]
struct WireDm {
    dm_conversation_id: String,
    dm_event_id: String,
}

fn parse_id(id: &str) -> Option<u64> {
    id.trim().parse::<u64>().ok()
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s.trim())
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Why a 2xx body could not be used (becomes `XError::Malformed`).
pub(crate) type ShapeError = String;

fn from_json<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, ShapeError> {
    serde_json::from_slice(body).map_err(|e| e.to_string())
}

pub(crate) fn parse_me(body: &[u8]) -> Result<Me, ShapeError> {
    let WireData { data } = from_json::<WireData<WireUser>>(body)?;
    if parse_id(&data.id).is_none() {
        return Err(format!(
            "users/me returned the id {:?}, not a number",
            data.id
        ));
    }
    let username = data
        .username
        .filter(|u| !u.is_empty())
        .ok_or("users/me returned no username")?;
    // X's usernames are 1-15 of [A-Za-z0-9_] (the spec's pattern). The handle is shown and
    // printed everywhere, so anything else is refused here rather than cleaned at each use.
    if !crate::domain::is_x_username(&username) {
        return Err(format!(
            "users/me returned the username {:?}, which is not an X username",
            crate::text::sanitize(&username, true)
        ));
    }
    Ok(Me {
        id: data.id.trim().to_string(),
        name: data.name.unwrap_or_else(|| username.clone()),
        username,
        profile_image_url: data.profile_image_url,
    })
}

/// A 2xx body without `data` but with `errors` says what X returned instead; the shape error
/// carries it in words, so the user sees it (the send is then unconfirmed, never sent).
fn errors_instead_of_data(body: &[u8]) -> Option<ShapeError> {
    let value: Value = serde_json::from_slice(body).ok()?;
    if value.get("data").is_some_and(|d| !d.is_null()) {
        return None;
    }
    let errors = value.get("errors")?.as_array()?;
    let lines: Vec<String> = errors
        .iter()
        .take(5)
        .filter_map(error_item_line)
        .map(|line| crate::text::sanitize(&crate::text::bounded(&line, 200), true))
        .collect();
    Some(if lines.is_empty() {
        "X answered with an errors array and no data".to_string()
    } else {
        format!("X answered with only errors: {}", lines.join("; "))
    })
}

pub(crate) fn parse_posted(body: &[u8]) -> Result<PostedTweet, ShapeError> {
    if let Some(errors) = errors_instead_of_data(body) {
        return Err(errors);
    }
    let WireData { data } = from_json::<WireData<WirePosted>>(body)?;
    if parse_id(&data.id).is_none() {
        return Err(format!("the new post's id {:?} is not a number", data.id));
    }
    Ok(PostedTweet {
        id: data.id,
        text: unescape_entities(&data.text),
    })
}

pub(crate) fn parse_dm(body: &[u8]) -> Result<SentDm, ShapeError> {
    if let Some(errors) = errors_instead_of_data(body) {
        return Err(errors);
    }
    let WireData { data } = from_json::<WireData<WireDm>>(body)?;
    if parse_id(&data.dm_event_id).is_none() {
        return Err(format!(
            "the DM event id {:?} is not a number",
            data.dm_event_id
        ));
    }
    Ok(SentDm {
        dm_event_id: data.dm_event_id,
        dm_conversation_id: data.dm_conversation_id,
    })
}

pub(crate) fn parse_mentions(body: &[u8]) -> Result<MentionsPage, ShapeError> {
    let page: WireMentionsBody = from_json(body)?;
    if page.data.is_none() && page.meta.is_none() && page.errors.is_none() {
        return Err("a mentions page with neither data, meta nor errors".to_string());
    }
    let meta = page.meta.unwrap_or_default();
    let includes = page.includes.unwrap_or_default();

    // Expansions are joined by id; an include that cannot be read is simply not available.
    let users: HashMap<String, WireUser> = includes
        .users
        .into_iter()
        .filter_map(|u| serde_json::from_value::<WireUser>(u).ok())
        .map(|u| (u.id.trim().to_string(), u))
        .collect();
    let included_tweets: HashMap<u64, WireTweet> = includes
        .tweets
        .into_iter()
        .filter_map(|t| serde_json::from_value::<WireTweet>(t).ok())
        .filter_map(|t| Some((parse_id(&t.id)?, t)))
        .collect();

    let mut posts = Vec::new();
    let mut skipped_items = Vec::new();
    let mut skipped_ids = Vec::new();
    let mut item_ids = Vec::new();
    let items = page.data.unwrap_or_default();
    let item_count = items.len();
    for (index, item) in items.into_iter().enumerate() {
        // The id is read on its own first, so that an unreadable post can still be named (and a
        // page's meta checked against every post it holds, readable or not).
        let id = item.get("id").and_then(Value::as_str).and_then(parse_id);
        item_ids.extend(id);
        match read_post(item, &users, &included_tweets) {
            Ok(post) => posts.push(post),
            Err(why) => {
                skipped_ids.extend(id);
                skipped_items.push(format!("data[{index}]: {why}"));
            }
        }
    }

    let meta_id = |field: &str, value: Option<String>| -> Result<Option<u64>, ShapeError> {
        match value {
            None => Ok(None),
            Some(v) => parse_id(&v)
                .map(Some)
                .ok_or_else(|| format!("meta.{field} {v:?} is not a number")),
        }
    };
    // meta's ids as X sent them, with no fallback: the cursor never comes from them (it comes
    // from what was stored, see `sync::page`); they are only checked against the page.
    let newest_id = meta_id("newest_id", meta.newest_id)?;
    let oldest_id = meta_id("oldest_id", meta.oldest_id)?;
    let partial_errors = page
        .errors
        .unwrap_or_default()
        .iter()
        .map(|e| error_item_line(e).unwrap_or_else(|| e.to_string()))
        .collect();
    Ok(MentionsPage {
        result_count: meta.result_count.unwrap_or(posts.len() as u32),
        posts,
        newest_id,
        oldest_id,
        next_token: meta.next_token.filter(|t| !t.is_empty()),
        partial_errors,
        skipped_items,
        skipped_ids,
        item_ids,
        item_count,
    })
}

pub(crate) fn read_post(
    item: Value,
    users: &HashMap<String, WireUser>,
    included_tweets: &HashMap<u64, WireTweet>,
) -> Result<FetchedPost, String> {
    let tweet: WireTweet = serde_json::from_value(item).map_err(|e| e.to_string())?;
    let tweet_id =
        parse_id(&tweet.id).ok_or_else(|| format!("post id {:?} is not a number", tweet.id))?;
    let author = match tweet.author_id.as_deref().map(str::trim) {
        // No author_id (fetched without the expansion): the sender is unknown, the post is kept.
        None | Some("") => Sender::default(),
        Some(author_id) => {
            let user = users.get(author_id);
            Sender {
                twitter_id: Some(author_id.to_string()),
                username: user.and_then(|u| u.username.clone()),
                display_name: user.and_then(|u| u.name.clone()),
                profile_image_url: user.and_then(|u| u.profile_image_url.clone()),
            }
        }
    };
    let mut is_retweet = false;
    let mut referenced_posts = Vec::new();
    for reference in &tweet.referenced_tweets {
        let kind = match reference.kind.as_str() {
            "replied_to" => ReferenceKind::RepliedTo,
            "quoted" => ReferenceKind::Quoted,
            "retweeted" => {
                is_retweet = true;
                continue;
            }
            _ => continue,
        };
        let included = parse_id(&reference.id).and_then(|id| included_tweets.get(&id));
        referenced_posts.push(ReferencedPost {
            kind,
            tweet_id: reference.id.trim().to_string(),
            text: included.map(|t| unescape_entities(&t.text)),
            author_username: included
                .and_then(|t| t.author_id.as_deref())
                .and_then(|a| users.get(a.trim()))
                .and_then(|u| u.username.clone()),
        });
    }
    Ok(FetchedPost {
        tweet_id,
        created_at: tweet.created_at.as_deref().and_then(parse_time),
        text: unescape_entities(&tweet.text),
        author,
        conversation_id: tweet.conversation_id,
        in_reply_to_user_id: tweet.in_reply_to_user_id,
        referenced_posts,
        is_retweet,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescapes_the_three_entities_x_produces() {
        assert_eq!(
            unescape_entities("Q&amp;A: 1 &lt; 2 &gt; 0"),
            "Q&A: 1 < 2 > 0"
        );
    }

    #[test]
    fn unescaping_is_one_pass_and_leaves_other_ampersands_alone() {
        // The author typed "&lt;" literally: X sends "&amp;lt;".
        assert_eq!(unescape_entities("&amp;lt;3"), "&lt;3");
        assert_eq!(unescape_entities("AT&T &quot; & &am"), "AT&T &quot; & &am");
        assert_eq!(unescape_entities("日本&amp;🎉"), "日本&🎉");
        assert_eq!(unescape_entities(""), "");
    }

    #[test]
    fn one_unreadable_post_is_skipped_and_the_rest_kept() {
        let body = br#"{"data":[
            {"id":"1578516295611748353","text":"ok &amp; fine"},
            {"id":"not-a-number","text":"bad id"},
            {"text":"no id at all"},
            {"id":"1578516273537118209","text":"also ok","author_id":"42"}
        ],"meta":{"result_count":4,"newest_id":"1578516295611748353","oldest_id":"1578516273537118209"}}"#;
        let page = parse_mentions(body).unwrap();
        assert_eq!(page.posts.len(), 2);
        assert_eq!(page.skipped_items.len(), 2, "{:?}", page.skipped_items);
        // Neither skipped item has a readable id, so neither can be named.
        assert!(page.skipped_ids.is_empty());
        assert_eq!(page.item_count, 4);
        assert_eq!(page.posts[0].text, "ok & fine");
        assert_eq!(page.posts[0].author, Sender::default());
        // An author id without its include: the id is known, the rest is not.
        assert_eq!(page.posts[1].author.twitter_id.as_deref(), Some("42"));
        assert_eq!(page.posts[1].author.username, None);
    }

    #[test]
    fn envelopes_that_are_not_a_mentions_page_are_rejected() {
        assert!(parse_mentions(b"[]").is_err());
        assert!(parse_mentions(b"{}").is_err());
        assert!(parse_mentions(br#"{"data":{"id":"1"}}"#).is_err());
        assert!(parse_mentions(br#"{"meta":{"result_count":1,"newest_id":"x"}}"#).is_err());
        assert!(parse_mentions(b"<html>").is_err());
        let empty = parse_mentions(br#"{"meta":{"result_count":0}}"#).unwrap();
        assert_eq!(empty, MentionsPage::default());
    }

    #[test]
    fn retweets_are_flagged_and_not_listed_as_references() {
        let body = br#"{"data":[{"id":"10","text":"RT @a: hi","referenced_tweets":[{"type":"retweeted","id":"9"}]}],"meta":{"result_count":1}}"#;
        let page = parse_mentions(body).unwrap();
        assert!(page.posts[0].is_retweet);
        assert!(page.posts[0].referenced_posts.is_empty());
        // meta said nothing: no newest id is made up from the posts.
        assert_eq!(page.newest_id, None);
        assert_eq!(page.item_ids, vec![10]);
    }
}

#[cfg(test)]
mod username_tests {
    use super::parse_me;

    #[test]
    fn users_me_refuses_a_username_x_would_never_send() {
        let ok = br#"{"data":{"id":"1","name":"A","username":"acme_help"}}"#;
        assert_eq!(parse_me(ok).unwrap().username, "acme_help");
        let evil = br#"{"data":{"id":"1","name":"A","username":"acme\u001b[2J"}}"#;
        assert!(parse_me(evil).is_err());
        let long = br#"{"data":{"id":"1","name":"A","username":"a_very_long_handle_indeed"}}"#;
        assert!(parse_me(long).is_err());
    }
}
