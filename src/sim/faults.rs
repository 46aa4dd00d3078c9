//! Fault injection: the ways X misbehaves that perch must survive. Plain data with `Default` (no
//! faults), so `perch sim` flags map straight onto it; settable at runtime through `SimControl` or
//! `PUT /__sim/faults`.
//!
//! Faults apply to the resource endpoints (`/2/users/me`, mentions, posts, DMs), never to the OAuth
//! endpoints or the control routes. They are checked after authentication and the rate-limit
//! count, in this order: 429 storm, 402 credits, 403 not-enrolled, connection reset, 5xx, slow
//! response (then the request proceeds), malformed body, and the body-shaping faults
//! (`partial_errors`, `missing_authors`, `bad_posts`, `retweets`) on mentions pages.

use std::time::Duration;

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Faults {
    /// Users (username, with or without `@`, or id) whose every resource call gets a 429 with the
    /// about:blank Problem body and `x-rate-limit-remaining: 0`.
    pub rate_limit_storm: Vec<String>,
    /// When not empty, the probabilistic and account-level faults below (credits, not-enrolled,
    /// resets, 5xx, slow, malformed) hit only these users; the others are served normally.
    pub only_users: Vec<String>,
    /// Probability (0..=1) that a resource call answers 503 with the about:blank Problem body.
    pub server_error_probability: f64,
    /// Delay added before answering, to outlast a client's timeout.
    #[serde(with = "millis_opt")]
    pub slow_response: Option<Duration>,
    /// Probability (0..=1) that a call is delayed by `slow_response` (1.0 when only the delay is set
    /// is the usual choice).
    pub slow_probability: f64,
    /// Probability (0..=1) that the connection is reset (TCP RST) instead of answered.
    pub connection_reset_probability: f64,
    /// Probability (0..=1) that a 200 answer carries a truncated, unparseable JSON body.
    pub malformed_json_probability: f64,
    /// Mentions pages carry partial `errors` beside `data` (CONTRACT.md §3.2 shapes): the first
    /// referenced post of a page is "not found" and the first replied-to user is "not authorized",
    /// both left out of `includes`.
    pub partial_errors: bool,
    /// Every other post of a mentions page comes without `author_id` and without its author in
    /// `includes.users`, like the recorded pages fetched without expansions.
    pub missing_authors: bool,
    /// The second post of every mentions page comes without its `text`: one unreadable item in
    /// an otherwise good page.
    pub bad_posts: bool,
    /// Every third post of a mentions page is marked as a retweet (`referenced_tweets` type
    /// `retweeted`), which a client must not treat as a mention to answer.
    pub retweets: bool,
    /// Every resource call gets 402 CreditsDepleted (pay-per-use account out of credits).
    pub credits_depleted: bool,
    /// Every resource call gets 403 client-forbidden / client-not-enrolled.
    pub client_not_enrolled: bool,
    /// Overrides the configured live mention rate (mentions per second across all users).
    pub high_mention_rate: Option<f64>,

    // ---- hostile X (issue 10) ---------------------------------------------------------------
    /// Mentions pages claim `meta.newest_id` 9223372036854775807, beyond every post they hold.
    pub newest_id_beyond: bool,
    /// Every post of a mentions page comes with `text: null`: pages with no readable post.
    pub unreadable_pages: bool,
    /// Every mentions page carries the same `next_token`, which leads back to the same page.
    pub repeat_next_token: bool,
    /// Every page asked for with a `pagination_token` is empty and still carries a new token.
    pub empty_token_pages: bool,
    /// Mentions pages never end: each one carries a `next_token` never sent before.
    pub endless_pages: bool,
    /// Sets every resource response's `x-rate-limit-reset` to now plus this many seconds:
    /// negative puts it in the past (clock skew), 100 000 000 000 in year 5138.
    pub reset_offset_secs: Option<i64>,
    /// A `Retry-After` header (sent verbatim: seconds or an HTTP-date) on every 429.
    pub retry_after: Option<String>,
    /// `POST /2/tweets` and the DM endpoint answer 200 with only an `errors` array, and post
    /// nothing.
    pub errors_only_sends: bool,
    /// Authors of mentions get hostile profiles: usernames with ESC, OSC, BEL, C1 and bidi
    /// characters, one 10 000 characters long, and display names and post text with C1, DEL and
    /// bidi controls.
    pub hostile_senders: bool,

    // ---- the Activity stream (issue 12) -----------------------------------------------------
    /// Each stream connection goes silent (open, no events, no heartbeats) this long after it
    /// was opened.
    #[serde(with = "millis_opt")]
    pub stream_stall_after: Option<Duration>,
    /// Each stream connection is closed without a word this long after it was opened.
    #[serde(with = "millis_opt")]
    pub stream_drop_after: Option<Duration>,
    /// Each stream connection gets the in-stream operational-disconnect message and is closed
    /// this long after it was opened.
    #[serde(with = "millis_opt")]
    pub stream_disconnect_after: Option<Duration>,
    /// Stream connects are refused with 429.
    pub stream_connect_429: bool,
    /// Stream connects are refused with 503.
    pub stream_connect_503: bool,
    /// A malformed line goes out before every event.
    pub stream_malformed_lines: bool,
    /// The heartbeat interval (default 10 s).
    #[serde(with = "millis_opt")]
    pub stream_heartbeat: Option<Duration>,
}

impl Faults {
    /// The mixed set `perch --demo --faults` uses: every kind of trouble, mild enough that the
    /// accounts keep coming back. The first configured user gets a 429 storm.
    pub fn demo_mix(storm_user: &str) -> Faults {
        Faults {
            rate_limit_storm: vec![storm_user.to_string()],
            server_error_probability: 0.05,
            slow_response: Some(Duration::from_secs(40)),
            slow_probability: 0.02,
            connection_reset_probability: 0.03,
            malformed_json_probability: 0.03,
            partial_errors: true,
            missing_authors: true,
            // The stream drops every 45 s, and says so once in a while: the status bar shows
            // it coming back, and the reconnect poll closes the gap.
            stream_drop_after: Some(Duration::from_secs(45)),
            stream_malformed_lines: false,
            ..Faults::default()
        }
    }
}

/// `Option<Duration>` as whole milliseconds in JSON (`null` when unset).
mod millis_opt {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(d) => s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(Duration::from_millis))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_round_trip_as_json_with_millisecond_delays() {
        let faults = Faults {
            slow_response: Some(Duration::from_millis(1500)),
            partial_errors: true,
            ..Faults::default()
        };
        let json = serde_json::to_value(&faults).unwrap();
        assert_eq!(json["slow_response"], 1500);
        let back: Faults = serde_json::from_value(json).unwrap();
        assert_eq!(back, faults);
        // A partial object sets only what it names.
        let partial: Faults = serde_json::from_str(r#"{"credits_depleted":true}"#).unwrap();
        assert!(partial.credits_depleted && !partial.partial_errors);
    }
}
