//! One attempt at sending an outbox entry: mark it `sending` (durably), make the one request to X
//! with the tokens of the mention's own account, and record what X's answer means.
//!
//! sled's worker marks the entry itself ([`attempt`]); a team's worker on PostgreSQL has it
//! marked by its claim (`claims.rs`). Both then go through [`send_marked`], on any backend.

use chrono::{DateTime, Duration, Utc};
use tokio::sync::mpsc;

use super::{OutboxEvent, ReplyKind, blocking, blocking_shared};
use crate::auth::{CallError, TokenManager};
use crate::domain::{Mention, MentionKey};
use crate::store::{OutboxEntry, SharedStore, Store};
use crate::x::{ResetTime, XClient, XError, judge_reset};

/// How long to wait after a 429 that did not say when the limit resets.
const UNKNOWN_RESET_WAIT: Duration = Duration::seconds(60);
/// How long to wait after a 429 whose reset is further ahead than any X budget lasts.
const IMPLAUSIBLE_RESET_WAIT: Duration = Duration::minutes(15);
/// X's reset times are whole seconds; going a moment after avoids a second 429 at the boundary.
const RESET_MARGIN: Duration = Duration::seconds(1);

/// How an attempt ended, already recorded in the store.
#[derive(Debug)]
pub(super) enum Outcome {
    /// Sent, failed or unconfirmed: the entry is done until the user acts.
    Done(OutboxEvent),
    /// Rate-limited: the entry is `waiting` and goes again at `until`.
    Wait {
        until: DateTime<Utc>,
        event: OutboxEvent,
    },
}

/// What X's answer (or its absence) means for the entry.
#[derive(Debug, PartialEq)]
pub(super) enum Verdict {
    /// Posted; X's id, when its answer said it.
    Sent(Option<String>),
    /// Definitely not posted.
    Failed(String),
    /// The request may have reached X: only the user can tell.
    Unconfirmed(String),
    /// Rate-limited (the request was not executed): go again at the time given.
    Wait(DateTime<Utc>, String),
}

/// Sends entry `seq` of mention `key` once (sled's worker). `events` hears `Sending` once the
/// entry is durably `sending`; the returned outcome's event is for the caller to pass on.
pub(super) async fn attempt(
    store: &Store,
    client: &XClient,
    tokens: &TokenManager,
    key: MentionKey,
    seq: u64,
    events: &mpsc::Sender<OutboxEvent>,
) -> Outcome {
    let shared = store.shared();
    let read = blocking(store, move |s| {
        Ok((s.outbox_entry(key, seq)?, s.mention(key)?))
    })
    .await;
    let (entry, mention) = match read {
        Ok((Some(entry), Some(mention))) => (entry, mention),
        Ok((Some(entry), None)) => return fail(&shared, &entry, mention_gone()).await,
        Ok((None, _)) => {
            return Outcome::Done(OutboxEvent::Refused {
                key,
                message: format!("the outbox has no entry {seq} for this mention"),
            });
        }
        Err(e) => {
            return Outcome::Done(OutboxEvent::Refused {
                key,
                message: format!("could not read the outbox: {e}"),
            });
        }
    };
    if let Some(problem) = wrong_account(&entry, &mention) {
        return fail(&shared, &entry, problem).await;
    }
    let now = Utc::now();
    if let Err(e) = blocking(store, move |s| s.outbox_begin_send(key, seq, now)).await {
        // Not marked `sending`, so the request must not leave.
        return Outcome::Done(OutboxEvent::Refused {
            key,
            message: format!("not sent: could not record the send before it left ({e})"),
        });
    }
    let _ = events.send(OutboxEvent::Sending { key }).await;
    send_marked(&shared, client, tokens, &entry, &mention).await
}

/// What a send is failed with when its mention is no longer stored.
pub(super) fn mention_gone() -> String {
    "not sent: the mention is no longer in the store (was its account removed?)".into()
}

/// The key names the account: a stored mention that says otherwise is damaged, and sending
/// from either account could be the wrong one.
pub(super) fn wrong_account(entry: &OutboxEntry, mention: &Mention) -> Option<String> {
    (mention.sent_to.account_id != entry.key.account_id).then(|| {
        "not sent: the stored mention does not agree on which account it was sent to".into()
    })
}

/// The request for an entry already recorded `sending` (so it may leave), and its outcome
/// recorded: on sled or on a team's database.
pub(super) async fn send_marked(
    store: &SharedStore,
    client: &XClient,
    tokens: &TokenManager,
    entry: &OutboxEntry,
    mention: &Mention,
) -> Outcome {
    let result = request(client, tokens, entry, mention).await;
    let verdict = judge(result, entry, mention, Utc::now());
    record(store, entry, verdict).await
}

/// The one request: from the account the mention was sent to, and no other.
async fn request(
    client: &XClient,
    tokens: &TokenManager,
    entry: &OutboxEntry,
    mention: &Mention,
) -> Result<String, CallError> {
    let account = mention.sent_to.account_id;
    match entry.kind {
        ReplyKind::Public => tokens
            .with_token(account, |token| {
                let (client, text, id) =
                    (client.clone(), entry.text.clone(), mention.tweet_id.clone());
                async move { client.post_reply(&token, &text, &id).await }
            })
            .await
            .map(|r| r.data.id),
        ReplyKind::Dm => {
            let Some(recipient) = mention.sender.twitter_id.clone() else {
                return Err(CallError::X(XError::InvalidRequest {
                    status: 0,
                    detail: "X did not say who wrote this post, so there is no one to DM".into(),
                }));
            };
            tokens
                .with_token(account, |token| {
                    let (client, text, to) =
                        (client.clone(), entry.text.clone(), recipient.clone());
                    async move { client.send_dm(&token, &to, &text).await }
                })
                .await
                .map(|r| r.data.dm_event_id)
        }
    }
}

/// What an answer means. Pure, so every case is tested without a network.
///
/// Every branch answers one question: does X's answer prove the post went out, prove it did not,
/// or neither? Only proof is `Sent` or `Failed`; everything else is `Unconfirmed`, for the user to
/// check on X (a false "sent" is the worst outcome: the mention would never be answered).
/// - a readable 2xx with the new id: proof it was posted;
/// - no token (refresh refused), a 429, a 401/402/403/4xx, a connection that never opened: X did
///   not execute the request, proof it was not;
/// - 403 duplicate content on a retry of an attempt that may have left: proof the earlier one
///   was posted (X refuses the same text from the same account only because it has it);
/// - a 2xx whose body does not hold the new id (cut short, or only `errors`), a 5xx, a
///   connection that broke after the request left: unknown.
// CallError carries XError by value (the auth module's contract).
#[allow(clippy::result_large_err)]
pub(super) fn judge(
    result: Result<String, CallError>,
    entry: &OutboxEntry,
    mention: &Mention,
    now: DateTime<Utc>,
) -> Verdict {
    let from = format!("@{}", mention.sent_to.username);
    let noun = entry.kind.noun();
    let error = match result {
        Ok(id) => return Verdict::Sent(Some(id)),
        Err(CallError::Auth(e)) => return Verdict::Failed(format!("not sent: {e}")),
        Err(CallError::X(e)) => e,
    };
    match &error {
        XError::RateLimited { reset, .. } => {
            // A reset that has passed (clock skew) would mean a retry every second: wait as for
            // an unknown one. One no budget lasts until (year 5138) is capped to the window.
            let until = match judge_reset(*reset, now) {
                ResetTime::Ahead(at) => at + RESET_MARGIN,
                ResetTime::NotAhead => now + UNKNOWN_RESET_WAIT,
                ResetTime::Implausible(_) => now + IMPLAUSIBLE_RESET_WAIT,
            };
            Verdict::Wait(until, rate_limited_message(until))
        }
        XError::Forbidden { detail, .. }
            if entry.kind == ReplyKind::Public
                && entry.may_have_been_sent
                && is_duplicate_content(detail) =>
        {
            // The earlier attempt did reach X: this text is already posted from this account.
            Verdict::Sent(None)
        }
        // A 2xx that does not hold the new id proves nothing either way: it may be cut short
        // after X created the post, or (a 200 with only `errors`) X may have created nothing.
        XError::Malformed { detail, .. } => Verdict::Unconfirmed(format!(
            "unconfirmed: check on X. X answered the {noun} from {from} as a success but without saying what it posted ({detail}), so it may or may not have gone out."
        )),
        XError::Network(detail) if !reached_x(detail) => Verdict::Failed(format!(
            "not sent: perch could not reach X ({detail}). Nothing was posted; the draft is kept."
        )),
        XError::Network(detail) => Verdict::Unconfirmed(format!(
            "unconfirmed: check on X. The connection broke after the {noun} left ({detail}), so it may or may not have been posted from {from}."
        )),
        XError::Server { status, .. } => Verdict::Unconfirmed(format!(
            "unconfirmed: check on X. X answered with a server error ({status}) and may still have posted the {noun} from {from}."
        )),
        _ => Verdict::Failed(explain(&error, entry.kind, mention)),
    }
}

/// "rate limited: sending at 14:05" (local time: it is the user's clock that matters).
pub fn rate_limited_message(until: DateTime<Utc>) -> String {
    format!(
        "rate limited: sending at {}",
        until.with_timezone(&chrono::Local).format("%H:%M")
    )
}

/// X's duplicate-content refusal ("You are not allowed to create a Tweet with duplicate content.").
pub(super) fn is_duplicate_content(detail: &str) -> bool {
    detail.to_lowercase().contains("duplicate content")
}

/// Whether a network error may have happened after the request reached X. `XClient` words a
/// failed connection as "could not connect" (see `x::network_error`): then nothing was sent.
/// Everything else (a timeout, a reset mid-request) may have been after X received it.
fn reached_x(detail: &str) -> bool {
    !detail.contains("could not connect")
}

/// Records the verdict on the entry and its mention, and says what happened.
async fn record(store: &SharedStore, entry: &OutboxEntry, verdict: Verdict) -> Outcome {
    let (key, seq, kind) = (entry.key, entry.seq, entry.kind);
    let now = Utc::now();
    match verdict {
        Verdict::Sent(id) => {
            match blocking_shared(store, move |s| s.outbox_sent(key, seq, id, now)).await {
                Ok(response) => Outcome::Done(OutboxEvent::Sent {
                    key,
                    kind,
                    response,
                }),
                Err(e) => {
                    // X has it; the store does not. Saying "failed" would invite a double send.
                    tracing::error!("{} sent but not recorded: {e}", kind.noun());
                    Outcome::Done(OutboxEvent::Unconfirmed {
                        key,
                        kind,
                        message: format!(
                            "X accepted the {} but perch could not record it ({e}); do not send it again",
                            kind.noun()
                        ),
                    })
                }
            }
        }
        Verdict::Failed(message) => fail(store, entry, message).await,
        Verdict::Unconfirmed(message) => {
            let stored = message.clone();
            if let Err(e) =
                blocking_shared(store, move |s| s.outbox_unconfirmed(key, seq, &stored, now)).await
            {
                // Left `sending`: the next start turns it unconfirmed all the same.
                tracing::error!("could not record an unconfirmed send: {e}");
            }
            Outcome::Done(OutboxEvent::Unconfirmed { key, kind, message })
        }
        Verdict::Wait(until, message) => {
            let recorded = blocking_shared(store, move |s| {
                s.outbox_waiting(key, seq, until, &message, now)
            })
            .await;
            match recorded {
                Ok(_) => match cancel_if_abandoned(store, entry).await {
                    Some(cancelled) => cancelled,
                    None => Outcome::Wait {
                        until,
                        event: OutboxEvent::Waiting { key, kind, until },
                    },
                },
                Err(e) => {
                    fail(
                        store,
                        entry,
                        format!("not sent: X rate-limited the account and perch could not record the wait ({e})"),
                    )
                    .await
                }
            }
        }
    }
}

pub(super) async fn fail(store: &SharedStore, entry: &OutboxEntry, message: String) -> Outcome {
    let (key, seq, kind) = (entry.key, entry.seq, entry.kind);
    let stored = message.clone();
    let now = Utc::now();
    if let Err(e) = blocking_shared(store, move |s| s.outbox_failed(key, seq, &stored, now)).await {
        tracing::error!("send failed and the failure was not recorded: {e}");
    }
    Outcome::Done(OutboxEvent::Failed { key, kind, message })
}

/// A rate-limited send (just recorded `waiting`) whose client went away while it was out, on a
/// team's database (`outbox_abandon_sending`; the mark is read after the wait is recorded, so
/// an abandon that came at any moment of the attempt is seen, and one after it cancels the
/// waiting entry itself): X did not execute it, and nobody wants it sent later, so it is
/// cancelled (the draft kept). sled's worker does the same from its own memory. `None`: it
/// was not abandoned.
async fn cancel_if_abandoned(store: &SharedStore, entry: &OutboxEntry) -> Option<Outcome> {
    let (key, seq, kind) = (entry.key, entry.seq, entry.kind);
    let abandoned = blocking_shared(store, move |s| s.outbox_was_abandoned(key, seq))
        .await
        .unwrap_or(false);
    if !abandoned {
        return None;
    }
    let now = Utc::now();
    match blocking_shared(store, move |s| s.outbox_cancel(key, now)).await {
        Ok(_) => Some(Outcome::Done(OutboxEvent::Cancelled { key, kind })),
        Err(e) => {
            tracing::warn!("could not cancel an abandoned send: {e}");
            None
        }
    }
}

/// A refusal in plain words: what happened and what to do.
pub(super) fn explain(error: &XError, kind: ReplyKind, mention: &Mention) -> String {
    let from = format!("@{}", mention.sent_to.username);
    match error {
        XError::Forbidden { detail, .. } => {
            let lower = detail.to_lowercase();
            if is_duplicate_content(detail) {
                format!(
                    "X refused: {from} recently posted exactly this text. Change the wording and send again."
                )
            } else if lower.contains("not allowed because you have not been mentioned")
                || lower.contains("reply to this conversation is not allowed")
            {
                format!(
                    "X does not let {from} reply in this conversation (the author did not mention or quote {from}). Try a DM."
                )
            } else if lower.contains("deleted or not visible") {
                "X says the post was deleted or is not visible to you: nothing to reply to.".into()
            } else if detail.trim() == "Forbidden" {
                format!(
                    "X refused: perch's authorization for {from} does not allow sending this. Reauthorize the account (R in perch, or `perch accounts reauthorize {from}`)."
                )
            } else if kind == ReplyKind::Dm {
                format!(
                    "X refused the DM: the recipient does not accept messages from {from}, or has blocked it. Reply publicly instead. (X said: {detail})"
                )
            } else {
                format!("X refused the reply: {detail}")
            }
        }
        XError::CreditsDepleted { .. } => {
            format!("not sent: {error}. Add credits in the X developer portal, then send again.")
        }
        other => format!("not sent: {other}. The draft is kept."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{MentionStatus, Sender, SentTo};
    use crate::store::OutboxState;
    use crate::x::RateLimit;

    fn mention() -> Mention {
        let now = Utc::now();
        Mention {
            id: uuid::Uuid::from_u128(1),
            tweet_id: "1900".into(),
            timestamp: now,
            text: "@acme hi".into(),
            sender: Sender {
                twitter_id: Some("55".into()),
                username: Some("bob".into()),
                ..Sender::default()
            },
            sent_to: SentTo {
                account_id: uuid::Uuid::from_u128(9),
                twitter_id: "99".into(),
                username: "acme".into(),
                display_name: "Acme".into(),
            },
            status: MentionStatus::Pending,
            public_response: None,
            dm_response: None,
            conversation_id: None,
            referenced_posts: vec![],
            error_message: None,
            created_at: now,
            updated_at: now,
        }
    }

    fn entry(kind: ReplyKind, may_have_been_sent: bool) -> OutboxEntry {
        let m = mention();
        OutboxEntry {
            seq: 1,
            key: m.key(),
            kind,
            text: "@bob thanks".into(),
            state: OutboxState::Sending,
            attempts: 1,
            may_have_been_sent,
            not_before: None,
            last_error: None,
            response_id: None,
            last_attempt_at: None,
            created_at: m.created_at,
            updated_at: m.created_at,
        }
    }

    #[allow(clippy::result_large_err)]
    fn x(e: XError) -> Result<String, CallError> {
        Err(CallError::X(e))
    }

    fn forbidden(detail: &str) -> XError {
        XError::Forbidden {
            detail: detail.into(),
            problem_type: None,
            reason: None,
            rate_limit: RateLimit::default(),
        }
    }

    const DUPLICATE: &str = "You are not allowed to create a Tweet with duplicate content.";

    #[test]
    fn duplicate_content_on_a_retry_of_an_unconfirmed_reply_counts_as_sent() {
        let v = judge(
            x(forbidden(DUPLICATE)),
            &entry(ReplyKind::Public, true),
            &mention(),
            Utc::now(),
        );
        assert_eq!(v, Verdict::Sent(None));
    }

    #[test]
    fn duplicate_content_on_a_first_send_is_a_refusal_not_a_success() {
        // A saved reply used for two people is refused the second time: that one was NOT sent.
        let v = judge(
            x(forbidden(DUPLICATE)),
            &entry(ReplyKind::Public, false),
            &mention(),
            Utc::now(),
        );
        match v {
            Verdict::Failed(m) => assert!(m.contains("@acme recently posted"), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn rate_limit_waits_until_just_after_the_reset() {
        let now = Utc::now();
        let reset = now + Duration::minutes(7);
        let v = judge(
            x(XError::RateLimited {
                reset: Some(reset),
                detail: "Too Many Requests".into(),
                rate_limit: RateLimit::default(),
            }),
            &entry(ReplyKind::Public, false),
            &mention(),
            now,
        );
        match v {
            Verdict::Wait(until, message) => {
                assert_eq!(until, reset + RESET_MARGIN);
                assert!(
                    message.starts_with("rate limited: sending at "),
                    "{message}"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_passed_or_absurd_reset_does_not_make_a_send_retry_every_second() {
        let now = Utc::now();
        #[allow(clippy::result_large_err)]
        let limited = |reset| {
            x(XError::RateLimited {
                reset: Some(reset),
                detail: "Too Many Requests".into(),
                rate_limit: RateLimit::default(),
            })
        };
        let (e, m) = (entry(ReplyKind::Public, false), mention());
        match judge(limited(now - Duration::minutes(5)), &e, &m, now) {
            Verdict::Wait(until, _) => assert_eq!(until, now + UNKNOWN_RESET_WAIT),
            other => panic!("{other:?}"),
        }
        let year_5138 = DateTime::<Utc>::from_timestamp(100_000_000_000, 0).unwrap();
        match judge(limited(year_5138), &e, &m, now) {
            Verdict::Wait(until, _) => assert_eq!(until, now + IMPLAUSIBLE_RESET_WAIT),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn errors_after_the_request_left_are_unconfirmed_and_before_are_failures() {
        let (e, m) = (entry(ReplyKind::Public, false), mention());
        let timeout = x(XError::Network("create tweet timed out: ...".into()));
        assert!(matches!(
            judge(timeout, &e, &m, Utc::now()),
            Verdict::Unconfirmed(_)
        ));
        let server = x(XError::Server {
            status: 503,
            detail: "Service Unavailable".into(),
        });
        assert!(matches!(
            judge(server, &e, &m, Utc::now()),
            Verdict::Unconfirmed(_)
        ));
        let refused = x(XError::Network(
            "create tweet could not connect: error sending request".into(),
        ));
        assert!(matches!(
            judge(refused, &e, &m, Utc::now()),
            Verdict::Failed(_)
        ));
        let unreadable_2xx = x(XError::Malformed {
            detail: "bad".into(),
            transaction_id: None,
        });
        assert!(matches!(
            judge(unreadable_2xx, &e, &m, Utc::now()),
            Verdict::Unconfirmed(_)
        ));
    }

    #[test]
    fn a_200_with_only_errors_is_unconfirmed_and_says_what_x_returned() {
        // Issue 10 item 2: this used to be recorded as sent.
        for kind in [ReplyKind::Public, ReplyKind::Dm] {
            for retry in [false, true] {
                let only_errors = x(XError::Malformed {
                    detail: "create tweet: X answered with only errors: Service Unavailable: The request could not be completed.".into(),
                    transaction_id: Some("abc".into()),
                });
                match judge(only_errors, &entry(kind, retry), &mention(), Utc::now()) {
                    Verdict::Unconfirmed(m) => {
                        assert!(m.contains("The request could not be completed"), "{m}");
                        assert!(!m.contains("already had it"), "{m}");
                    }
                    other => panic!("{kind:?} retry={retry}: {other:?}"),
                }
            }
        }
    }

    #[test]
    fn every_refusal_x_did_not_execute_is_a_failure_not_unknown() {
        let (e, m) = (entry(ReplyKind::Public, true), mention());
        let refusals = [
            XError::Unauthorized {
                rate_limit: RateLimit::default(),
            },
            XError::CreditsDepleted {
                detail: "no credits".into(),
            },
            XError::InvalidRequest {
                status: 400,
                detail: "bad".into(),
            },
            forbidden("You cannot send messages to this user."),
        ];
        for r in refusals {
            assert!(
                matches!(judge(x(r.clone()), &e, &m, Utc::now()), Verdict::Failed(_)),
                "{r:?}"
            );
        }
    }

    #[test]
    fn refusals_are_explained_in_plain_words() {
        let m = mention();
        let not_summoned = forbidden(
            "Reply to this conversation is not allowed because you have not been mentioned or otherwise engaged by the author of the post you are replying to.",
        );
        let said = explain(&not_summoned, ReplyKind::Public, &m);
        assert!(
            said.contains("does not let @acme reply") && said.contains("Try a DM"),
            "{said}"
        );
        let dm = explain(
            &forbidden("You cannot send messages to this user."),
            ReplyKind::Dm,
            &m,
        );
        assert!(dm.contains("does not accept messages from @acme"), "{dm}");
        let scope = explain(&forbidden("Forbidden"), ReplyKind::Public, &m);
        assert!(scope.contains("Reauthorize"), "{scope}");
    }
}
