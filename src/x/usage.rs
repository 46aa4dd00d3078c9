//! `GET /2/usage/tweets` (COSTS.md §6): X's own count of posts consumed, read with the app-only
//! Bearer token. The sources disagree on types (strings in 2.167, integers in 2.159, an array in
//! the docs' example), so every number is read from a number or a numeric string, and an
//! unexpected `daily_project_usage` shape is ignored rather than failing the whole report.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;

use crate::costs::XUsage;

/// A number, or a string of digits.
fn count(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Parses the body of a 200 answer.
pub fn parse_usage(body: &[u8], now: DateTime<Utc>) -> Result<XUsage, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let data = v.get("data").ok_or("no `data` in the usage report")?;
    let project_usage = data
        .get("project_usage")
        .and_then(count)
        .ok_or("no `project_usage` in the usage report")?;
    let mut daily = BTreeMap::new();
    if let Some(days) = data
        .get("daily_project_usage")
        .and_then(|d| d.get("usage"))
        .and_then(Value::as_array)
    {
        for day in days {
            let date = day
                .get("date")
                .and_then(Value::as_str)
                .and_then(|d| d.get(..10))
                .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok());
            if let (Some(date), Some(n)) = (date, day.get("usage").and_then(count)) {
                daily.insert(date, n);
            }
        }
    }
    Ok(XUsage {
        fetched_at: now,
        project_usage,
        project_cap: data.get("project_cap").and_then(count),
        daily,
        perch_posts: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_numeric_strings_both_parse() {
        let legacy = br#"{"data":{"project_id":"1281043626347900822499","project_cap":"2000000","project_usage":"200","cap_reset_day":5,
 "daily_project_usage":{"project_id":"1281043626347900822499","usage":[{"date":"2023-11-01T00:00:00.000Z","usage":"200"}]}}}"#;
        let u = parse_usage(legacy, Utc::now()).unwrap();
        assert_eq!(u.project_usage, 200);
        assert_eq!(u.project_cap, Some(2_000_000));
        assert_eq!(
            u.daily.get(&NaiveDate::from_ymd_opt(2023, 11, 1).unwrap()),
            Some(&200)
        );
        let ints = br#"{"data":{"project_usage":7,"project_cap":5000000,"daily_project_usage":[{"date":"2024-01-15"}]}}"#;
        let u = parse_usage(ints, Utc::now()).unwrap();
        assert_eq!((u.project_usage, u.daily.len()), (7, 0));
        assert!(parse_usage(b"{\"errors\":[]}", Utc::now()).is_err());
    }
}
