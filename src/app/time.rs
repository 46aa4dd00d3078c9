//! Times as the screen shows them. `now` is always passed in, so the same state draws the same
//! text in tests.

use chrono::{DateTime, Utc};

/// "just now", "45s ago", "2m ago", "3h ago", "5d ago".
pub fn relative_time(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = (now - t).num_seconds();
    if secs < 10 {
        // Includes clocks slightly ahead of ours: never print a negative age.
        return "just now".to_string();
    }
    format!("{} ago", age(secs))
}

/// The feed's narrow time column: "now", "45s", "12m", "3h", "5d", then "Nov 3".
pub fn compact_age(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = (now - t).num_seconds();
    if secs < 10 {
        return "now".to_string();
    }
    if secs >= 7 * 86_400 {
        return t.format("%b %-d").to_string();
    }
    age(secs)
}

fn age(secs: i64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3_600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h", s / 3_600),
        s => format!("{}d", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn ages_read_naturally() {
        let now = Utc.with_ymd_and_hms(2025, 11, 26, 12, 0, 0).unwrap();
        let ago = |s: i64| now - chrono::Duration::seconds(s);
        assert_eq!(relative_time(ago(2), now), "just now");
        assert_eq!(
            relative_time(now + chrono::Duration::seconds(30), now),
            "just now"
        );
        assert_eq!(relative_time(ago(45), now), "45s ago");
        assert_eq!(relative_time(ago(150), now), "2m ago");
        assert_eq!(relative_time(ago(3 * 3600 + 5), now), "3h ago");
        assert_eq!(compact_age(ago(2 * 86_400), now), "2d");
        assert_eq!(compact_age(ago(30 * 86_400), now), "Oct 27");
    }
}
