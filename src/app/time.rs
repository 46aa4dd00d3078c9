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

/// The feed's time column, at most 4 cells: "now", "45s", "12m", "3h", "5d", "6w", "2y".
pub fn compact_age(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = (now - t).num_seconds();
    match secs {
        s if s < 10 => "now".to_string(),
        s if s < 7 * 86_400 => age(s),
        s if s < 365 * 86_400 => format!("{}w", s / (7 * 86_400)),
        s => format!("{}y", (s / (365 * 86_400)).min(999)),
    }
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
        assert_eq!(compact_age(ago(30 * 86_400), now), "4w");
        assert_eq!(compact_age(ago(800 * 86_400), now), "2y");
    }
}
