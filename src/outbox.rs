//! Sending replies and DMs: always from the account the mention was sent to, recorded in the store
//! before and after the request so that a send is never lost and never doubled.
//!
//! SKELETON: the types below are the contract between the UI and the outbox worker.

use crate::domain::{MentionKey, Response};

/// A public reply or a direct message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplyKind {
    Public,
    Dm,
}

/// A request to send `text` in answer to the mention `key`. There is no account field on
/// purpose: the outbox always uses the tokens of `key.account_id` (the account mentioned).
#[derive(Clone, Debug, PartialEq)]
pub struct SendRequest {
    pub key: MentionKey,
    pub kind: ReplyKind,
    pub text: String,
}

/// What the outbox reports back (to the UI, or the CLI waiting on it).
#[derive(Clone, Debug, PartialEq)]
pub enum OutboxEvent {
    /// The mention is `processing`: the request is on its way.
    Sending { key: MentionKey },
    /// Sent; the mention is `replied` with this response recorded.
    Sent {
        key: MentionKey,
        kind: ReplyKind,
        response: Response,
    },
    /// Not sent; the mention is `error` with `message`, and the draft is kept.
    Failed {
        key: MentionKey,
        kind: ReplyKind,
        message: String,
    },
}
