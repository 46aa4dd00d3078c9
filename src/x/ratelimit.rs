//! Reading X's rate-limit headers. Every response (success or error) carries the 15-minute window
//! (`x-rate-limit-*`); some plans add 24-hour caps (`x-user-limit-24hour-*`, `x-app-limit-24hour-*`,
//! CONTRACT.md §6). A budget is only reported when all three of its headers are present and
//! readable: a half-read budget would make the scheduler guess.

use chrono::{DateTime, Utc};
use reqwest::header::HeaderMap;

use super::{Budget, RateLimit};

/// The rate-limit budgets the headers of one response report.
pub fn parse_rate_limit(headers: &HeaderMap) -> RateLimit {
    parse_rate_limit_at(headers, Utc::now())
}

/// As [`parse_rate_limit`], with `now` for a `Retry-After` given in seconds.
pub fn parse_rate_limit_at(headers: &HeaderMap, now: DateTime<Utc>) -> RateLimit {
    RateLimit {
        window: parse_budget(headers, "x-rate-limit"),
        user_24h: parse_budget(headers, "x-user-limit-24hour"),
        app_24h: parse_budget(headers, "x-app-limit-24hour"),
        retry_after: headers
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, now)),
    }
}

/// `Retry-After` (RFC 9110 §10.2.3): a number of seconds, or an HTTP-date. CONTRACT.md §6 says
/// X documents no `retry-after`; a proxy in front of it may send one, and it is honoured when
/// readable. Anything else is `None`.
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // More digits than any sane delay: read as "very long", judged by `judge_reset`.
        let secs = value
            .parse::<i64>()
            .unwrap_or(i64::MAX)
            .min(MAX_RETRY_AFTER_SECS);
        return now.checked_add_signed(chrono::Duration::seconds(secs));
    }
    DateTime::parse_from_rfc2822(value)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Larger `Retry-After` seconds are clipped before any arithmetic (about 300 years).
const MAX_RETRY_AFTER_SECS: i64 = 10_000_000_000;

/// The furthest ahead a reset can believably be: X's longest budget is 24 hours, and the two
/// clocks may differ by some minutes.
pub const MAX_RESET_AHEAD: chrono::Duration = chrono::Duration::minutes(24 * 60 + 15);

/// How a reset time X gave compares with now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResetTime {
    /// In the future, within reason: wait for it.
    Ahead(DateTime<Utc>),
    /// Not said, or already passed (clock skew): back off instead of retrying at once.
    NotAhead,
    /// Further ahead than any budget lasts (year 5138): a fault, not a time to wait for.
    Implausible(DateTime<Utc>),
}

/// Judges a reset time (from `x-rate-limit-reset`, the 24-hour headers or `Retry-After`).
pub fn judge_reset(reset: Option<DateTime<Utc>>, now: DateTime<Utc>) -> ResetTime {
    match reset {
        Some(t) if t <= now => ResetTime::NotAhead,
        Some(t) if t - now > MAX_RESET_AHEAD => ResetTime::Implausible(t),
        Some(t) => ResetTime::Ahead(t),
        None => ResetTime::NotAhead,
    }
}

/// `<prefix>-limit`, `<prefix>-remaining`, `<prefix>-reset` (reset in Unix epoch seconds).
fn parse_budget(headers: &HeaderMap, prefix: &str) -> Option<Budget> {
    let number = |suffix: &str| -> Option<i64> {
        headers
            .get(format!("{prefix}-{suffix}"))?
            .to_str()
            .ok()?
            .trim()
            .parse::<i64>()
            .ok()
    };
    let limit = u32::try_from(number("limit")?).ok()?;
    let remaining = u32::try_from(number("remaining")?).ok()?;
    let reset = DateTime::<Utc>::from_timestamp(number("reset")?, 0)?;
    Some(Budget {
        limit,
        remaining,
        reset,
    })
}

impl RateLimit {
    /// When the budget that ran out resets: a spent 24-hour cap wins over the 15-minute window
    /// (X can answer 429 from the 24-hour cap while the window still has room). `None` when no
    /// header says.
    pub fn exhausted_reset(&self) -> Option<DateTime<Utc>> {
        let spent = |b: &Option<Budget>| b.filter(|b| b.remaining == 0).map(|b| b.reset);
        spent(&self.user_24h)
            .or_else(|| spent(&self.app_24h))
            .or_else(|| spent(&self.window))
            .or_else(|| self.window.map(|b| b.reset))
    }

    /// When a refused (429) request may go again: the later of `Retry-After` and the spent
    /// budget's reset, when either says. Judge it with [`judge_reset`] before waiting for it.
    pub fn retry_at(&self) -> Option<DateTime<Utc>> {
        match (self.retry_after, self.exhausted_reset()) {
            (Some(r), Some(e)) => Some(r.max(e)),
            (r, e) => r.or(e),
        }
    }

    /// True when no budget header was present at all.
    pub fn is_empty(&self) -> bool {
        self.window.is_none() && self.user_24h.is_none() && self.app_24h.is_none()
    }
}

#[cfg(test)]
mod retry_tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(1_800_000_000, 0).unwrap()
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        assert_eq!(
            parse_retry_after("120", now()),
            Some(now() + chrono::Duration::seconds(120))
        );
        let date = parse_retry_after("Fri, 15 Jan 2027 08:00:00 GMT", now()).unwrap();
        assert_eq!(date.to_rfc3339(), "2027-01-15T08:00:00+00:00");
        assert_eq!(parse_retry_after("soon", now()), None);
        assert_eq!(parse_retry_after("-5", now()), None);
        assert_eq!(parse_retry_after("", now()), None);
        let huge = parse_retry_after("99999999999999999999999", now()).unwrap();
        assert!(matches!(
            judge_reset(Some(huge), now()),
            ResetTime::Implausible(_)
        ));
    }

    #[test]
    fn resets_in_the_past_or_far_future_are_not_waited_for() {
        let n = now();
        assert_eq!(judge_reset(None, n), ResetTime::NotAhead);
        assert_eq!(
            judge_reset(Some(n - chrono::Duration::seconds(30)), n),
            ResetTime::NotAhead
        );
        let soon = n + chrono::Duration::minutes(7);
        assert_eq!(judge_reset(Some(soon), n), ResetTime::Ahead(soon));
        // Year 5138, as a hostile x-rate-limit-reset of 100 000 000 000 says.
        let far = DateTime::<Utc>::from_timestamp(100_000_000_000, 0).unwrap();
        assert_eq!(judge_reset(Some(far), n), ResetTime::Implausible(far));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderName, HeaderValue};

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        map
    }

    #[test]
    fn window_headers_from_the_recorded_mentions_page_are_read() {
        // recorded/users_mentions.json: 450 / 448 / 1665183228.
        let rl = parse_rate_limit(&headers(&[
            ("x-rate-limit-limit", "450"),
            ("x-rate-limit-remaining", "448"),
            ("x-rate-limit-reset", "1665183228"),
        ]));
        let w = rl.window.unwrap();
        assert_eq!((w.limit, w.remaining), (450, 448));
        assert_eq!(w.reset.timestamp(), 1665183228);
        assert!(rl.user_24h.is_none() && rl.app_24h.is_none());
    }

    #[test]
    fn a_budget_with_a_missing_or_garbled_header_is_not_reported() {
        let rl = parse_rate_limit(&headers(&[
            ("x-rate-limit-limit", "450"),
            ("x-rate-limit-reset", "1665183228"),
            ("x-user-limit-24hour-limit", "17"),
            ("x-user-limit-24hour-remaining", "soon"),
            ("x-user-limit-24hour-reset", "1795771200"),
        ]));
        assert_eq!(rl, RateLimit::default());
        assert!(rl.is_empty());
    }

    #[test]
    fn spent_24_hour_cap_decides_the_reset_even_when_the_window_has_room() {
        // examples/errors.json, "24h user cap exhausted".
        let rl = parse_rate_limit(&headers(&[
            ("x-rate-limit-limit", "100"),
            ("x-rate-limit-remaining", "98"),
            ("x-rate-limit-reset", "1795695300"),
            ("x-user-limit-24hour-limit", "17"),
            ("x-user-limit-24hour-remaining", "0"),
            ("x-user-limit-24hour-reset", "1795771200"),
            ("x-app-limit-24hour-limit", "17"),
            ("x-app-limit-24hour-remaining", "5"),
            ("x-app-limit-24hour-reset", "1795771200"),
        ]));
        assert_eq!(rl.user_24h.unwrap().remaining, 0);
        assert_eq!(rl.app_24h.unwrap().remaining, 5);
        assert_eq!(rl.exhausted_reset().unwrap().timestamp(), 1795771200);
    }

    #[test]
    fn spent_window_resets_at_the_window_reset() {
        let rl = parse_rate_limit(&headers(&[
            ("x-rate-limit-limit", "300"),
            ("x-rate-limit-remaining", "0"),
            ("x-rate-limit-reset", "1795695300"),
        ]));
        assert_eq!(rl.exhausted_reset().unwrap().timestamp(), 1795695300);
        assert_eq!(RateLimit::default().exhausted_reset(), None);
    }
}
