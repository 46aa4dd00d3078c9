//! Turning an unsuccessful HTTP response into an [`XError`]. X answers errors with RFC 7807
//! Problem objects (`type`, `title`, `detail`, sometimes `reason`), with the legacy v1.1 shape
//! `{"errors":[{"code","message"}]}`, or with something else entirely (an HTML page from a proxy,
//! an empty body): every one of them must become a typed error, never a panic (CONTRACT.md §7).

use serde_json::Value;

use super::{RateLimit, XError};

/// What could be read from an error body.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct ProblemInfo {
    /// The Problem `type` suffix after `/2/problems/` (hosts vary: api.twitter.com, api.x.com).
    /// `None` for `about:blank`, whose meaning is the HTTP status.
    pub problem_type: Option<String>,
    pub title: Option<String>,
    pub detail: Option<String>,
    pub reason: Option<String>,
    /// `errors[].message` (invalid-request details, or the legacy shape with its `code`).
    pub messages: Vec<String>,
}

/// The suffix of a Problem `type` URI: `https://api.twitter.com/2/problems/credits` → `credits`.
pub(crate) fn problem_type_suffix(type_uri: &str) -> Option<String> {
    let (_, suffix) = type_uri.rsplit_once("/2/problems/")?;
    let suffix = suffix.trim_end_matches('/');
    (!suffix.is_empty()).then(|| suffix.to_string())
}

fn string_field(v: &Value, key: &str) -> Option<String> {
    v.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// Reads whatever a JSON error body says. Non-JSON bodies give `None`.
pub(crate) fn read_problem(body: &[u8]) -> Option<ProblemInfo> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let obj = value.as_object()?;
    let problem_type = obj
        .get("type")
        .and_then(Value::as_str)
        .and_then(problem_type_suffix);
    let messages = obj
        .get("errors")
        .and_then(Value::as_array)
        .map(|errors| errors.iter().filter_map(error_item_line).collect())
        .unwrap_or_default();
    Some(ProblemInfo {
        problem_type,
        title: string_field(&value, "title"),
        detail: string_field(&value, "detail"),
        reason: string_field(&value, "reason"),
        messages,
    })
}

/// One line for an item of an `errors` array: a legacy `{code, message}`, an invalid-request
/// `{message, parameters}`, or a nested Problem (`{title, detail, type, ...}`).
pub(crate) fn error_item_line(item: &Value) -> Option<String> {
    let message = string_field(item, "message").or_else(|| string_field(item, "detail"));
    let title = string_field(item, "title");
    let line = match (item.get("code").and_then(Value::as_i64), message, title) {
        (Some(code), Some(m), _) => format!("{m} (code {code})"),
        (None, Some(m), Some(t)) if m != t => format!("{t}: {m}"),
        (None, Some(m), _) => m,
        (_, None, Some(t)) => t,
        (Some(code), None, None) => format!("error code {code}"),
        (None, None, None) => return None,
    };
    Some(line)
}

/// The sentence shown to the user for an error body: the most specific text the body holds.
fn describe(status: u16, problem: Option<&ProblemInfo>, body: &[u8]) -> String {
    if let Some(p) = problem {
        let generic = p.detail.as_deref().or(p.title.as_deref());
        return match (generic, p.messages.is_empty()) {
            // invalid-request: the generic detail says little; the per-parameter messages say what.
            (Some(g), false) => format!("{g} {}", p.messages.join("; ")),
            (Some(g), true) => g.to_string(),
            (None, false) => p.messages.join("; "),
            (None, true) => status_text(status),
        };
    }
    // Not JSON (a proxy's HTML page, an empty body): show a short, safe excerpt.
    let text = String::from_utf8_lossy(body);
    let excerpt: String = text
        .chars()
        .filter(|c| !c.is_control())
        .take(120)
        .collect::<String>()
        .trim()
        .to_string();
    if excerpt.is_empty() {
        status_text(status)
    } else {
        format!(
            "{} (unexpected non-JSON body: {excerpt})",
            status_text(status)
        )
    }
}

fn status_text(status: u16) -> String {
    reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("unexpected status")
        .to_string()
}

/// Classifies an unsuccessful response (any non-2xx status).
pub(crate) fn classify(status: u16, rate_limit: RateLimit, body: &[u8]) -> XError {
    let problem = read_problem(body);
    let detail = describe(status, problem.as_ref(), body);
    match status {
        401 => XError::Unauthorized { rate_limit },
        402 => XError::CreditsDepleted { detail },
        403 => {
            let (problem_type, reason) = problem
                .map(|p| (p.problem_type, p.reason))
                .unwrap_or_default();
            XError::Forbidden {
                detail,
                problem_type,
                reason,
                rate_limit,
            }
        }
        429 => XError::RateLimited {
            reset: rate_limit.retry_at(),
            detail,
            rate_limit,
        },
        500..=599 => XError::Server { status, detail },
        _ => XError::InvalidRequest { status, detail },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_429_waits_for_retry_after_when_its_reset_has_passed() {
        let now = chrono::Utc::now();
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("x-rate-limit-limit", 300.into());
        headers.insert("x-rate-limit-remaining", 0.into());
        headers.insert("x-rate-limit-reset", (now.timestamp() - 600).into());
        headers.insert("retry-after", 120.into());
        let rl = super::super::parse_rate_limit_at(&headers, now);
        let XError::RateLimited { reset, .. } = classify(429, rl, b"") else {
            panic!("a 429 is RateLimited")
        };
        assert_eq!(reset, Some(now + chrono::Duration::seconds(120)));
    }

    #[test]
    fn problem_types_match_on_the_suffix_whatever_the_host() {
        assert_eq!(
            problem_type_suffix("https://api.twitter.com/2/problems/client-forbidden").as_deref(),
            Some("client-forbidden")
        );
        assert_eq!(
            problem_type_suffix("https://api.x.com/2/problems/usage-capped").as_deref(),
            Some("usage-capped")
        );
        assert_eq!(problem_type_suffix("about:blank"), None);
    }

    #[test]
    fn invalid_request_detail_names_the_parameter() {
        let body = br#"{"errors":[{"parameters":{"since_id":["abc"]},"message":"The `since_id` query parameter value [abc] is not valid"}],"title":"Invalid Request","detail":"One or more parameters to your request was invalid.","type":"https://api.twitter.com/2/problems/invalid-request"}"#;
        match classify(400, RateLimit::default(), body) {
            XError::InvalidRequest { status, detail } => {
                assert_eq!(status, 400);
                assert!(detail.contains("since_id"), "{detail}");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn legacy_error_shape_keeps_code_and_message() {
        let body = br#"{"errors":[{"code":88,"message":"Rate limit exceeded"}]}"#;
        match classify(429, RateLimit::default(), body) {
            XError::RateLimited { detail, reset, .. } => {
                assert_eq!(detail, "Rate limit exceeded (code 88)");
                assert_eq!(reset, None);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn html_and_empty_bodies_still_classify_by_status() {
        match classify(
            502,
            RateLimit::default(),
            b"<html><body>Bad Gateway</body></html>",
        ) {
            XError::Server { status, detail } => {
                assert_eq!(status, 502);
                assert!(detail.contains("non-JSON"), "{detail}");
            }
            other => panic!("unexpected {other:?}"),
        }
        match classify(503, RateLimit::default(), b"") {
            XError::Server { detail, .. } => assert_eq!(detail, "Service Unavailable"),
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(
            classify(401, RateLimit::default(), b"not json"),
            XError::Unauthorized { .. }
        ));
    }
}
