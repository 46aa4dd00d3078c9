//! What a notification says: the desktop notification's summary and body, the terminal title,
//! and what a hook is given (its environment and the JSON document on its stdin). Pure.

use crate::domain::Mention;
use crate::notify::burst::Burst;
use crate::text;

/// The longest post text shown in a desktop notification (in characters).
const BODY_CHARS: usize = 200;
/// At most this many ids in `PERCH_MENTION_IDS` (the JSON on stdin has the same ones).
pub const HOOK_MAX_IDS: usize = 100;

/// The terminal title: `perch · 12 pending`.
pub fn title(pending: u64) -> String {
    format!("perch · {pending} pending")
}

/// "@handle" for a stored username (which has no `@`), terminal-safe.
pub fn handle(username: &str) -> String {
    format!(
        "@{}",
        text::sanitize(username.trim_start_matches('@'), true)
    )
}

/// The desktop notification for a burst: (summary, body). It names the account and the count,
/// and for a single mention its sender and text. Post text is untrusted: it is sanitised, made
/// one line and cut short.
pub fn desktop(account_username: &str, burst: &Burst) -> (String, String) {
    let account = handle(account_username);
    match (burst.count, burst.mentions.as_slice()) {
        (1, [m]) => (
            format!(
                "{account}: new mention from {}",
                text::sanitize(&m.sender.handle(), true)
            ),
            shorten(&text::sanitize(&m.text, true), BODY_CHARS),
        ),
        (n, _) => {
            let noun = if n == 1 { "mention" } else { "mentions" };
            let senders = senders(&burst.mentions);
            let body = if senders.is_empty() {
                String::new()
            } else {
                format!("from {senders}")
            };
            (format!("{account}: {n} new {noun}"), body)
        }
    }
}

/// Up to three distinct senders, "and N more".
fn senders(mentions: &[Mention]) -> String {
    let mut names: Vec<String> = Vec::new();
    for m in mentions {
        let h = text::sanitize(&m.sender.handle(), true);
        if !names.contains(&h) {
            names.push(h);
        }
    }
    let more = names.len().saturating_sub(3);
    names.truncate(3);
    let mut out = names.join(", ");
    if more > 0 {
        out.push_str(&format!(" and {more} more"));
    }
    out
}

fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// The hook's environment: `PERCH_ACCOUNT` (`@handle`), `PERCH_COUNT`, `PERCH_MENTION_IDS`
/// (the posts' ids, comma-separated, newest first, at most [`HOOK_MAX_IDS`]) and
/// `PERCH_ACCOUNT_ID` (perch's id for the account).
pub fn hook_env(account_username: &str, burst: &Burst) -> Vec<(&'static str, String)> {
    let ids: Vec<&str> = burst
        .mentions
        .iter()
        .take(HOOK_MAX_IDS)
        .map(|m| m.tweet_id.as_str())
        .collect();
    vec![
        ("PERCH_ACCOUNT", handle(account_username)),
        ("PERCH_ACCOUNT_ID", burst.account_id.to_string()),
        ("PERCH_COUNT", burst.count.to_string()),
        ("PERCH_MENTION_IDS", ids.join(",")),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Mention, MentionStatus, Sender, SentTo};

    fn mention(id: u64, sender: &str, text: &str) -> Mention {
        let now = chrono::Utc::now();
        Mention {
            id: uuid::Uuid::new_v4(),
            tweet_id: id.to_string(),
            timestamp: now,
            text: text.into(),
            sender: Sender {
                twitter_id: Some("1".into()),
                username: Some(sender.into()),
                display_name: Some(sender.into()),
                profile_image_url: None,
            },
            sent_to: SentTo {
                account_id: uuid::Uuid::nil(),
                twitter_id: "2".into(),
                username: "acme".into(),
                display_name: "Acme".into(),
            },
            status: MentionStatus::Pending,
            public_response: None,
            dm_response: None,
            conversation_id: None,
            referenced_posts: Vec::new(),
            error_message: None,
            created_at: now,
            updated_at: now,
        }
    }

    #[test]
    fn one_mention_names_its_sender_and_text_sanitised() {
        let burst = Burst::new(
            uuid::Uuid::nil(),
            1,
            vec![mention(7, "bob", "hi\x1b]0;pwned\x07 there\nfriend")],
        );
        let (summary, body) = desktop("acme", &burst);
        assert_eq!(summary, "@acme: new mention from @bob");
        assert!(!body.contains('\x1b') && !body.contains('\x07') && !body.contains('\n'));
        assert!(body.contains("there"), "{body}");
    }

    #[test]
    fn several_name_the_count_and_senders() {
        let burst = Burst::new(
            uuid::Uuid::nil(),
            12,
            (1..=5).map(|i| mention(i, &format!("s{i}"), "x")).collect(),
        );
        let (summary, body) = desktop("acme", &burst);
        assert_eq!(summary, "@acme: 12 new mentions");
        assert_eq!(body, "from @s5, @s4, @s3 and 2 more");
        let env = hook_env("acme", &burst);
        assert!(env.contains(&("PERCH_COUNT", "12".into())));
        assert!(env.contains(&("PERCH_MENTION_IDS", "5,4,3,2,1".into())));
        assert!(env.contains(&("PERCH_ACCOUNT", "@acme".into())));
    }

    #[test]
    fn the_title_counts_pending() {
        assert_eq!(title(12), "perch · 12 pending");
    }
}
