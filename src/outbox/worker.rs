//! The outbox worker: the one task that sends. It repairs what a previous process left, then
//! takes commands while at most one request is out, and keeps rate-limited entries waiting (each
//! until its own reset) without holding up the others.

use std::collections::VecDeque;

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::attempt::{self, Outcome};
use super::{OutboxCommand, OutboxEvent, ReplyKind, SendRequest, blocking};
use crate::auth::TokenManager;
use crate::domain::{Mention, MentionKey, MentionStatus};
use crate::store::{OutboxEntry, OutboxState, Store};
use crate::x::XClient;

/// An entry the worker will send: as soon as it can, or not before a rate limit's reset.
#[derive(Clone, Copy, Debug)]
struct Job {
    key: MentionKey,
    seq: u64,
    kind: ReplyKind,
    not_before: Option<DateTime<Utc>>,
}

type InFlight = Option<(Job, JoinHandle<Outcome>)>;

/// The in-flight send whose client went away: recorded unconfirmed already; a 429 answer cancels
/// it instead of queueing it for later.
type Abandoned = Option<MentionKey>;

pub(super) struct Worker {
    store: Store,
    client: XClient,
    tokens: TokenManager,
    events: mpsc::Sender<OutboxEvent>,
    /// In the order they were asked for.
    queue: VecDeque<Job>,
}

impl Worker {
    pub(super) fn new(
        store: Store,
        client: XClient,
        tokens: TokenManager,
        events: mpsc::Sender<OutboxEvent>,
    ) -> Worker {
        Worker {
            store,
            client,
            tokens,
            events,
            queue: VecDeque::new(),
        }
    }

    pub(super) async fn run(mut self, mut commands: mpsc::Receiver<OutboxCommand>) {
        self.recover().await;
        let mut in_flight: InFlight = None;
        let mut abandoned: Abandoned = None;
        loop {
            if in_flight.is_none()
                && let Some(job) = self.take_ready(Utc::now())
            {
                in_flight = Some((job, self.start(job)));
            }
            let wake = match in_flight {
                None => self.next_wake(),
                Some(_) => None,
            };
            let busy_key = in_flight.as_ref().map(|(job, _)| job.key);
            tokio::select! {
                command = commands.recv() => match command {
                    Some(OutboxCommand::Abandon(key)) => {
                        let busy = in_flight.as_ref().map(|(job, _)| *job).filter(|j| j.key == key);
                        if self.abandon(key, busy).await {
                            abandoned = Some(key);
                        }
                    }
                    Some(command) => self.handle(command, busy_key).await,
                    None => {
                        // Nobody is listening any more. A request already out still records its
                        // outcome (it runs in its own task); nothing new is started.
                        return;
                    }
                },
                (job, outcome) = join(&mut in_flight) => {
                    in_flight = None;
                    let was_abandoned = abandoned.take() == Some(job.key);
                    self.finish(job, outcome, was_abandoned).await;
                }
                _ = sleep_until(wake), if wake.is_some() => {}
            }
        }
    }

    async fn emit(&self, event: OutboxEvent) {
        // A closed channel means the UI or CLI is gone; the store already holds the outcome.
        let _ = self.events.send(event).await;
    }

    /// Entries a previous process left `sending` become `unconfirmed`; `queued`/`waiting` ones
    /// become `failed` (they never left). Each change is reported.
    async fn recover(&self) {
        let recovered = blocking(&self.store, super::recover).await;
        match recovered {
            Ok(entries) => {
                for e in entries {
                    let message = e.last_error.clone().unwrap_or_default();
                    let event = match e.state {
                        OutboxState::Unconfirmed => OutboxEvent::Unconfirmed {
                            key: e.key,
                            kind: e.kind,
                            message,
                        },
                        _ => OutboxEvent::Failed {
                            key: e.key,
                            kind: e.kind,
                            message,
                        },
                    };
                    tracing::warn!(tweet_id = e.key.tweet_id, state = %e.state, "outbox entry left by a previous run");
                    self.emit(event).await;
                }
            }
            Err(e) => tracing::error!("could not check the outbox for interrupted sends: {e}"),
        }
    }

    /// The first job that may go now (waiting ones keep their place until their reset).
    fn take_ready(&mut self, now: DateTime<Utc>) -> Option<Job> {
        let i = self
            .queue
            .iter()
            .position(|j| j.not_before.is_none_or(|t| t <= now))?;
        self.queue.remove(i)
    }

    fn next_wake(&self) -> Option<DateTime<Utc>> {
        self.queue.iter().filter_map(|j| j.not_before).min()
    }

    fn start(&self, job: Job) -> JoinHandle<Outcome> {
        let (store, client, tokens, events) = (
            self.store.clone(),
            self.client.clone(),
            self.tokens.clone(),
            self.events.clone(),
        );
        tokio::spawn(async move {
            attempt::attempt(&store, &client, &tokens, job.key, job.seq, &events).await
        })
    }

    /// [`OutboxCommand::Abandon`]. `in_flight` is the job when the send is out right now.
    /// Returns true when the in-flight send was recorded unconfirmed (its outcome is then
    /// settled by [`Worker::finish`]).
    async fn abandon(&mut self, key: MentionKey, in_flight: Option<Job>) -> bool {
        let now = Utc::now();
        if let Some(job) = in_flight {
            let seq = job.seq;
            let message = super::CLIENT_LEFT_WHILE_SENDING;
            return match blocking(&self.store, move |s| {
                s.outbox_unconfirmed(key, seq, message, now)
            })
            .await
            {
                Ok(_) => {
                    self.emit(OutboxEvent::Unconfirmed {
                        key,
                        kind: job.kind,
                        message: message.to_string(),
                    })
                    .await;
                    true
                }
                Err(e) => {
                    tracing::warn!("could not record an abandoned send as unconfirmed: {e}");
                    false
                }
            };
        }
        // Not out: cancel it if it is still queued or waiting; anything else is finished.
        let Some(job) = self.queue.iter().find(|j| j.key == key).copied() else {
            return false;
        };
        self.queue.retain(|j| j.key != key);
        match blocking(&self.store, move |s| s.outbox_cancel(key, now)).await {
            Ok(_) => {
                self.emit(OutboxEvent::Cancelled {
                    key,
                    kind: job.kind,
                })
                .await
            }
            Err(e) => tracing::warn!("could not cancel an abandoned send: {e}"),
        }
        false
    }

    async fn finish(
        &mut self,
        job: Job,
        outcome: Result<Outcome, tokio::task::JoinError>,
        abandoned: bool,
    ) {
        let outcome = match outcome {
            Ok(outcome) => outcome,
            Err(e) => {
                // The attempt task panicked: its request may have left. Never send it again by
                // itself; let the user check (as after a crash).
                tracing::error!("an outbox send task ended abnormally: {e}");
                let (key, seq) = (job.key, job.seq);
                let now = Utc::now();
                let message = super::STOPPED_WHILE_SENDING;
                if let Err(e) = blocking(&self.store, move |s| {
                    s.outbox_unconfirmed(key, seq, message, now)
                })
                .await
                {
                    tracing::error!("could not record the interrupted send: {e}");
                }
                Outcome::Done(OutboxEvent::Unconfirmed {
                    key,
                    kind: job.kind,
                    message: message.to_string(),
                })
            }
        };
        match outcome {
            Outcome::Done(event) => self.emit(event).await,
            Outcome::Wait { .. } if abandoned => {
                // X did not execute it, and the client that wanted it is gone: never sent later.
                let (key, now) = (job.key, Utc::now());
                match blocking(&self.store, move |s| s.outbox_cancel(key, now)).await {
                    Ok(_) => {
                        self.emit(OutboxEvent::Cancelled {
                            key,
                            kind: job.kind,
                        })
                        .await
                    }
                    Err(e) => tracing::warn!("could not cancel an abandoned send: {e}"),
                }
            }
            Outcome::Wait { until, event } => {
                self.queue.push_back(Job {
                    not_before: Some(until),
                    ..job
                });
                self.emit(event).await;
            }
        }
    }

    async fn handle(&mut self, command: OutboxCommand, busy_key: Option<MentionKey>) {
        let key = command.key();
        let refused = |message: &str| OutboxEvent::Refused {
            key,
            message: message.to_string(),
        };
        if busy_key == Some(key) && !matches!(command, OutboxCommand::Send(_)) {
            let event = refused("it is being sent right now; it cannot be called back");
            return self.emit(event).await;
        }
        let now = Utc::now();
        let event = match command {
            OutboxCommand::Send(request) => match self.enqueue(request).await {
                Ok(job) => {
                    self.queue.push_back(job);
                    return;
                }
                Err(message) => refused(&message),
            },
            OutboxCommand::Retry(key) => {
                match blocking(&self.store, move |s| s.outbox_retry(key, now)).await {
                    Ok(entry) => {
                        self.queue.retain(|j| j.key != key);
                        self.queue.push_back(Job {
                            key,
                            seq: entry.seq,
                            kind: entry.kind,
                            not_before: None,
                        });
                        return;
                    }
                    Err(e) => refused(&format!("nothing to send again: {e}")),
                }
            }
            OutboxCommand::MarkSent(key) => {
                match blocking(&self.store, move |s| s.outbox_mark_sent(key, now)).await {
                    Ok((entry, response)) => OutboxEvent::Sent {
                        key,
                        kind: entry.kind,
                        response,
                    },
                    Err(e) => refused(&format!("nothing to mark as sent: {e}")),
                }
            }
            // Handled by `run`, which knows what is in flight.
            OutboxCommand::Abandon(_) => return,
            OutboxCommand::Cancel(key) => {
                match blocking(&self.store, move |s| s.outbox_cancel(key, now)).await {
                    Ok(entry) => {
                        self.queue.retain(|j| j.key != key);
                        OutboxEvent::Cancelled {
                            key,
                            kind: entry.kind,
                        }
                    }
                    Err(e) => refused(&format!("nothing to cancel: {e}")),
                }
            }
        };
        self.emit(event).await;
    }

    /// Records a new send, unless it must not be sent at all (then nothing changes).
    async fn enqueue(&self, request: SendRequest) -> Result<Job, String> {
        let key = request.key;
        let (mention, current) = blocking(&self.store, move |s| {
            Ok((s.mention(key)?, s.outbox_current(key)?))
        })
        .await?;
        let Some(mention) = mention else {
            return Err("not sent: that mention is no longer in the store".into());
        };
        if let Some(reason) = refusal(&mention, current.as_ref(), &request) {
            return Err(reason);
        }
        let now = Utc::now();
        let entry = blocking(&self.store, move |s| {
            s.outbox_enqueue(key, request.kind, &request.text, now)
        })
        .await?;
        Ok(Job {
            key,
            seq: entry.seq,
            kind: entry.kind,
            not_before: None,
        })
    }
}

/// Why this request must not be sent at all (nothing is changed), or `None`.
pub(super) fn refusal(
    mention: &Mention,
    current: Option<&OutboxEntry>,
    request: &SendRequest,
) -> Option<String> {
    if let Some(problem) = request_problem(mention, request) {
        return Some(problem);
    }
    if let Some(problem) = unconfirmed_first(current) {
        return Some(problem);
    }
    if current.is_some_and(|e| e.state.blocks_new_send())
        || mention.status == MentionStatus::Processing
    {
        return Some("not sent: a reply to this mention is already on its way".into());
    }
    if request.send_anyway {
        return None;
    }
    match request.kind {
        ReplyKind::Public if mention.public_response.is_some() => {
            Some("not sent: this mention already has a public reply from perch".into())
        }
        ReplyKind::Dm if mention.dm_response.is_some() => {
            Some("not sent: perch already sent a DM for this mention".into())
        }
        _ => None,
    }
}

/// What is wrong with the request itself, whatever else is going on: its text, or a DM with
/// no one to send it to.
pub(super) fn request_problem(mention: &Mention, request: &SendRequest) -> Option<String> {
    let problem = match request.kind {
        ReplyKind::Public => crate::text::check_post(&request.text),
        ReplyKind::Dm => crate::text::check_dm(&request.text),
    };
    if let Some(problem) = problem {
        return Some(format!("not sent: {problem}"));
    }
    if request.kind == ReplyKind::Dm && mention.sender.twitter_id.is_none() {
        return Some(
            "not sent: X did not say who wrote this post, so there is no one to DM".into(),
        );
    }
    None
}

/// The mention's last send is unconfirmed: that is resolved first (it may be on X).
pub(super) fn unconfirmed_first(current: Option<&OutboxEntry>) -> Option<String> {
    let current = current.filter(|e| e.state == OutboxState::Unconfirmed)?;
    Some(format!(
        "not sent: the last {} to this mention is unconfirmed. Check on X first, then mark it sent, send it again, or put the mention back to pending",
        current.kind.noun()
    ))
}

/// Waits for the request in flight; never completes when there is none.
async fn join(slot: &mut InFlight) -> (Job, Result<Outcome, tokio::task::JoinError>) {
    match slot {
        Some((job, handle)) => (*job, handle.await),
        None => std::future::pending().await,
    }
}

async fn sleep_until(wake: Option<DateTime<Utc>>) {
    let Some(at) = wake else {
        return std::future::pending().await;
    };
    let wait = (at - Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep(wait).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Response, Sender, SentTo};

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
            status: MentionStatus::Replied,
            public_response: Some(Response {
                id: "1700".into(),
                text: "first".into(),
                sent_at: now,
            }),
            dm_response: None,
            conversation_id: None,
            referenced_posts: vec![],
            error_message: None,
            created_at: now,
            updated_at: now,
        }
    }

    fn request(send_anyway: bool) -> SendRequest {
        SendRequest {
            key: mention().key(),
            kind: ReplyKind::Public,
            text: "second".into(),
            send_anyway,
        }
    }

    #[test]
    fn an_answered_mention_gets_a_second_reply_only_on_purpose() {
        let m = mention();
        let refused = refusal(&m, None, &request(false)).expect("refused");
        assert!(refused.contains("already has a public reply"), "{refused}");
        assert_eq!(refusal(&m, None, &request(true)), None);
    }

    #[test]
    fn sending_anyway_never_overrides_a_send_on_its_way_or_a_bad_text() {
        let mut m = mention();
        m.status = MentionStatus::Processing;
        assert!(refusal(&m, None, &request(true)).is_some(), "on its way");
        let m = mention();
        let mut empty = request(true);
        empty.text = "   ".into();
        assert!(refusal(&m, None, &empty).is_some(), "an empty text");
    }
}
