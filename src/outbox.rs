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

use chrono::Utc;
use tokio::sync::mpsc;

use crate::auth::{CallError, TokenManager};
use crate::domain::{Mention, MentionStatus};
use crate::store::{Draft, Store};
use crate::x::{XClient, XError};

/// Starts the outbox worker: requests in, events out. Sends run one at a time, in order, so two
/// quick presses can never race each other into a double send.
pub fn spawn(
    store: Store,
    client: XClient,
    tokens: TokenManager,
) -> (mpsc::Sender<SendRequest>, mpsc::Receiver<OutboxEvent>) {
    let (request_tx, mut request_rx) = mpsc::channel::<SendRequest>(32);
    let (event_tx, event_rx) = mpsc::channel::<OutboxEvent>(64);
    tokio::spawn(async move {
        while let Some(request) = request_rx.recv().await {
            let events = event_tx.clone();
            let outcome = send(&store, &client, &tokens, &request, |event| {
                let _ = events.try_send(event);
            })
            .await;
            let _ = event_tx.send(outcome).await;
        }
    });
    (request_tx, event_rx)
}

/// Sends one reply or DM for a mention, from the account the mention was sent to, and records the
/// outcome on the mention. `progress` hears `Sending` once the mention is marked `processing`.
/// Returns `Sent` or `Failed`; never panics on what X answers.
pub async fn send(
    store: &Store,
    client: &XClient,
    tokens: &TokenManager,
    request: &SendRequest,
    progress: impl FnOnce(OutboxEvent),
) -> OutboxEvent {
    let failed = |message: String| OutboxEvent::Failed {
        key: request.key,
        kind: request.kind,
        message,
    };
    let mention = match blocking(store, {
        let key = request.key;
        move |s| s.mention(key)
    })
    .await
    {
        Ok(Some(m)) => m,
        Ok(None) => return failed("that mention is no longer in the store".into()),
        Err(e) => return failed(e),
    };
    if let Some(reason) = refusal(&mention, request) {
        return failed(reason);
    }
    // Mark it in flight and keep the draft, durably, before anything leaves.
    let draft = Draft {
        kind: request.kind,
        text: request.text.clone(),
        updated_at: Utc::now(),
    };
    let mut processing = mention.clone();
    processing.status = MentionStatus::Processing;
    processing.error_message = None;
    processing.updated_at = Utc::now();
    if let Err(e) = blocking(store, {
        let (key, processing) = (request.key, processing.clone());
        move |s| {
            s.put_draft(key, &draft)?;
            s.update_mention(&processing)?;
            s.flush()
        }
    })
    .await
    {
        return failed(e);
    }
    progress(OutboxEvent::Sending { key: request.key });

    let account_id = mention.sent_to.account_id;
    let result: Result<Response, CallError> = match request.kind {
        ReplyKind::Public => tokens
            .with_token(account_id, |token| {
                let (client, text, id) = (
                    client.clone(),
                    request.text.clone(),
                    mention.tweet_id.clone(),
                );
                async move { client.post_reply(&token, &text, &id).await }
            })
            .await
            .map(|r| Response {
                id: r.data.id,
                text: request.text.clone(),
                sent_at: Utc::now(),
            }),
        ReplyKind::Dm => {
            // `refusal` checked that the sender is known.
            let recipient = mention.sender.twitter_id.clone().unwrap_or_default();
            tokens
                .with_token(account_id, |token| {
                    let (client, text, to) =
                        (client.clone(), request.text.clone(), recipient.clone());
                    async move { client.send_dm(&token, &to, &text).await }
                })
                .await
                .map(|r| Response {
                    id: r.data.dm_event_id,
                    text: request.text.clone(),
                    sent_at: Utc::now(),
                })
        }
    };

    let now = Utc::now();
    let key = request.key;
    match result {
        Ok(response) => {
            let kind = request.kind;
            let stored = blocking(store, {
                let response = response.clone();
                move |s| {
                    let Some(mut m) = s.mention(key)? else {
                        return Ok(());
                    };
                    m.status = MentionStatus::Replied;
                    m.error_message = None;
                    match kind {
                        ReplyKind::Public => m.public_response = Some(response),
                        ReplyKind::Dm => m.dm_response = Some(response),
                    }
                    m.updated_at = now;
                    s.update_mention(&m)?;
                    s.delete_draft(key)?;
                    s.flush()
                }
            })
            .await;
            if let Err(e) = stored {
                tracing::error!("reply sent but not recorded: {e}");
            }
            OutboxEvent::Sent {
                key,
                kind,
                response,
            }
        }
        Err(error) => {
            let message = explain(&error, request.kind, &mention);
            let stored = blocking(store, {
                let message = message.clone();
                move |s| {
                    let Some(mut m) = s.mention(key)? else {
                        return Ok(());
                    };
                    m.status = MentionStatus::Error;
                    m.error_message = Some(message);
                    m.updated_at = now;
                    s.update_mention(&m)?;
                    s.flush()
                }
            })
            .await;
            if let Err(e) = stored {
                tracing::error!("send failed and the failure was not recorded: {e}");
            }
            failed(message)
        }
    }
}

/// Why this request must not be sent at all (nothing is changed), or `None`.
fn refusal(mention: &Mention, request: &SendRequest) -> Option<String> {
    let problem = match request.kind {
        ReplyKind::Public => crate::text::check_post(&request.text),
        ReplyKind::Dm => crate::text::check_dm(&request.text),
    };
    if let Some(problem) = problem {
        return Some(format!("not sent: {problem}"));
    }
    if mention.status == MentionStatus::Processing {
        return Some("not sent: a reply to this mention is already on its way".into());
    }
    match request.kind {
        ReplyKind::Public if mention.public_response.is_some() => {
            Some("not sent: this mention already has a public reply from perch".into())
        }
        ReplyKind::Dm if mention.dm_response.is_some() => {
            Some("not sent: perch already sent a DM for this mention".into())
        }
        ReplyKind::Dm if mention.sender.twitter_id.is_none() => {
            Some("not sent: X did not say who wrote this post, so there is no one to DM".into())
        }
        _ => None,
    }
}

/// A failed send in plain words: what happened and what to do.
fn explain(error: &CallError, kind: ReplyKind, mention: &Mention) -> String {
    let from = format!("@{}", mention.sent_to.username);
    match error {
        CallError::X(XError::Forbidden { detail, .. }) => {
            let lower = detail.to_lowercase();
            if lower.contains("duplicate content") {
                format!(
                    "X refused: {from} recently posted the same text. Change the wording and send again."
                )
            } else if lower.contains("not allowed because you have not been mentioned")
                || lower.contains("reply to this conversation is not allowed")
            {
                format!(
                    "X does not let {from} reply in this conversation (the author did not mention or quote {from}). Try a DM."
                )
            } else if lower.contains("deleted or not visible") {
                "X says the post was deleted or is not visible to you: nothing to reply to.".into()
            } else if kind == ReplyKind::Dm {
                format!(
                    "X refused the DM: the recipient may not accept messages from {from}, or has blocked it. ({detail})"
                )
            } else {
                format!("X refused the reply: {detail}")
            }
        }
        CallError::X(XError::RateLimited { reset, .. }) => match reset {
            Some(at) => format!(
                "X rate-limited {from} until {}: the draft is kept, send it again then.",
                at.with_timezone(&chrono::Local).format("%H:%M")
            ),
            None => format!("X rate-limited {from}: the draft is kept, send it again later."),
        },
        other => format!("not sent: {other}. The draft is kept; press r to try again."),
    }
}

async fn blocking<T: Send + 'static>(
    store: &Store,
    f: impl FnOnce(&Store) -> crate::store::Result<T> + Send + 'static,
) -> Result<T, String> {
    let store = store.clone();
    match tokio::task::spawn_blocking(move || f(&store)).await {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(e) => Err(format!("store task failed: {e}")),
    }
}
