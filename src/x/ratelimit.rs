//! Reading X's rate-limit headers. Every response (success or error) carries the 15-minute window
//! (`x-rate-limit-*`); some plans add 24-hour caps (`x-user-limit-24hour-*`, `x-app-limit-24hour-*`,
//! CONTRACT.md §6). A budget is only reported when all three of its headers are present and
//! readable: a half-read budget would make the scheduler guess.

use chrono::{DateTime, Utc};
use reqwest::header::HeaderMap;

use super::{Budget, RateLimit};

/// The rate-limit budgets the headers of one response report.
pub fn parse_rate_limit(headers: &HeaderMap) -> RateLimit {
    RateLimit {
        window: parse_budget(headers, "x-rate-limit"),
        user_24h: parse_budget(headers, "x-user-limit-24hour"),
        app_24h: parse_budget(headers, "x-app-limit-24hour"),
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

    /// True when no budget header was present at all.
    pub fn is_empty(&self) -> bool {
        self.window.is_none() && self.user_24h.is_none() && self.app_24h.is_none()
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
