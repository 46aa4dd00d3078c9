//! Small modal choices: the bulk confirm, the "reply as which account?" picker and the saved-reply
//! picker. Each holds only what it needs to finish the action it interrupts.

use crate::domain::ReplyKind;
use crate::domain::{Mention, MentionKey, MentionStatus};
use crate::text;

/// "Ignore 37 mentions? y/n".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BulkConfirm {
    pub status: MentionStatus,
    /// "37" or "120+".
    pub count: String,
}

/// The verb of a triage status, for questions and messages.
pub fn verb(status: MentionStatus) -> &'static str {
    match status {
        MentionStatus::Ignored => "Ignore",
        MentionStatus::Pending => "Reopen",
        MentionStatus::Replied => "Mark as replied",
        MentionStatus::Processing | MentionStatus::Error => "Change",
    }
}

impl BulkConfirm {
    pub fn question(&self) -> String {
        let noun = if self.count == "1" {
            "mention"
        } else {
            "mentions"
        };
        format!("{} {} {noun}? y/n", verb(self.status), self.count)
    }
}

/// Which account answers a post that was sent to several: a reply goes out from exactly one.
#[derive(Clone, Debug, PartialEq)]
pub struct AccountPicker {
    pub kind: ReplyKind,
    /// The post's mentions (one per account), in feed order; the first is the default.
    pub choices: Vec<(MentionKey, String)>,
    pub selected: usize,
}

impl AccountPicker {
    pub fn new(kind: ReplyKind, mentions: &[Mention]) -> AccountPicker {
        AccountPicker {
            kind,
            choices: mentions
                .iter()
                .map(|m| {
                    (
                        m.key(),
                        format!("@{}", text::for_screen(&m.sent_to.username, true)),
                    )
                })
                .collect(),
            selected: 0,
        }
    }

    pub fn title(&self) -> &'static str {
        match self.kind {
            ReplyKind::Public => "Reply as which account?",
            ReplyKind::Dm => "DM as which account?",
        }
    }
}

/// The saved replies of the replying account, already filled in for this mention.
#[derive(Clone, Debug, PartialEq)]
pub struct TemplatePicker {
    pub items: Vec<String>,
    pub selected: usize,
}

/// Fills a saved reply's placeholders: `{sender}` (@handle), `{sender_name}` (their name, or the
/// handle when X gave none) and `{account}` (@handle of the replying account).
pub fn fill_template(template: &str, mention: &Mention) -> String {
    let sender = mention.sender.handle();
    let sender_name = mention
        .sender
        .display_name
        .clone()
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| sender.clone());
    let account = format!("@{}", mention.sent_to.username);
    // One pass, so a name that itself contains "{account}" is not expanded again.
    let mut filled = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        filled.push_str(&rest[..start]);
        let after = &rest[start..];
        let (value, len) = [
            ("{sender_name}", &sender_name),
            ("{sender}", &sender),
            ("{account}", &account),
        ]
        .into_iter()
        .find(|(p, _)| after.starts_with(p))
        .map_or(("{", 1), |(p, v)| (v.as_str(), p.len()));
        filled.push_str(value);
        rest = &after[len..];
    }
    filled.push_str(rest);
    // Names come from X: no control sequences into the draft.
    text::sanitize(&filled, false)
}
