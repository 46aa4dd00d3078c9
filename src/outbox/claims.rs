//! The sending half of the outbox on a team's database (issue 16), run by the sync leader only
//! (`service/leadership.rs`): it claims the oldest entry ready to go (`outbox_claim_next`, a row
//! lock with `SKIP LOCKED` committed `sending` before the request may leave), sends it with the
//! tokens of the mention's own account, records X's answer, and claims the next.
//!
//! - It wakes when the change feed says an entry changed (a send queued on any service), when
//!   the earliest rate-limited entry's reset comes, and every [`IDLE_CHECK`] in case a
//!   notification was missed while the feed reconnected.
//! - When this service stops leading it claims nothing more; a request already out still has
//!   its answer recorded (it is never aborted half way: an entry left `sending` by a live
//!   session would wait for the user forever). The new leader's start-up repair
//!   (`outbox_recover`) turns the entries of a leader that died while sending `unconfirmed`;
//!   queued and waiting ones it sends.
//! - One request at a time, in the order asked for, as on sled.
//!
//! It reports nothing itself: every change it makes reaches every service's clients through the
//! change feed (`team::read_event`).

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::{Notify, watch};

use super::OutboxEvent;
use super::attempt::{Outcome, fail, mention_gone, send_marked, wrong_account};
use super::{STOPPED_BEFORE_SENDING, STOPPED_WHILE_SENDING, blocking_shared};
use crate::auth::TokenManager;
use crate::store::{OutboxEntry, OutboxState, SharedStore};
use crate::x::XClient;

/// The longest the worker sleeps without looking for work.
const IDLE_CHECK: Duration = Duration::from_secs(5);
/// How long it waits after the database failed it before trying again.
const AFTER_ERROR: Duration = Duration::from_secs(2);
/// Sends in one go before the worker waits again.
const BURST: usize = 16;
/// How often an outcome the database failed to record is tried again.
const RECORD_TRIES: u32 = 5;

/// The parts the worker sends with.
#[derive(Clone)]
pub struct Claims {
    pub store: SharedStore,
    pub client: XClient,
    pub tokens: TokenManager,
    /// Notified when the change feed reports an outbox change.
    pub wake: Arc<Notify>,
}

impl Claims {
    /// Sends while `leading` says so (it turns false when this service stops leading or
    /// ends). First repairs what a previous leader left (see the module doc).
    pub async fn run(self, mut leading: watch::Receiver<bool>) {
        let recovered = blocking_shared(&self.store, |s| {
            s.outbox_recover(Utc::now(), STOPPED_WHILE_SENDING, STOPPED_BEFORE_SENDING)
        })
        .await;
        match recovered {
            Ok(entries) => {
                for e in entries {
                    tracing::warn!(tweet_id = e.key.tweet_id, state = %e.state, "outbox entry left by a previous leader");
                }
            }
            Err(e) => tracing::error!("could not check the outbox for interrupted sends: {e}"),
        }
        loop {
            if !*leading.borrow_and_update() {
                return;
            }
            let wait = match self.send_ready(&leading).await {
                Ok(()) => self.next_wake().await,
                Err(e) => {
                    tracing::warn!("the outbox cannot claim sends now: {e}");
                    AFTER_ERROR
                }
            };
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
                changed = leading.changed() => if changed.is_err() { return },
            }
        }
    }

    /// Claims and sends entries until none is ready (or a burst is done), and claims nothing
    /// once `leading` turns false (the next term's worker, maybe in this very service, sends
    /// from then on).
    async fn send_ready(&self, leading: &watch::Receiver<bool>) -> Result<(), String> {
        for _ in 0..BURST {
            if !*leading.borrow() {
                return Ok(());
            }
            let now = Utc::now();
            let Some(entry) =
                blocking_shared(&self.store, move |s| s.outbox_claim_next(now)).await?
            else {
                return Ok(());
            };
            self.send(entry).await;
        }
        Ok(())
    }

    /// One claimed entry: its request, and X's answer recorded.
    async fn send(&self, entry: OutboxEntry) {
        let key = entry.key;
        let mention = match blocking_shared(&self.store, move |s| s.mention(key)).await {
            Ok(Some(m)) => m,
            Ok(None) => {
                fail(&self.store, &entry, mention_gone()).await;
                return;
            }
            Err(e) => {
                // Claimed, and nothing left: failed, so that it is not left `sending`.
                let message = format!("not sent: could not read the mention ({e})");
                fail(&self.store, &entry, message).await;
                return;
            }
        };
        if let Some(problem) = wrong_account(&entry, &mention) {
            fail(&self.store, &entry, problem).await;
            return;
        }
        // Its own task: a request that has left is answered and recorded even if this
        // worker is dropped meanwhile.
        let (store, client, tokens) =
            (self.store.clone(), self.client.clone(), self.tokens.clone());
        let seq = entry.seq;
        let sending =
            tokio::spawn(
                async move { send_marked(&store, &client, &tokens, &entry, &mention).await },
            );
        let message = match sending.await {
            // Recorded as the outcome says, unless the database failed it (checked below).
            Ok(Outcome::Done(OutboxEvent::Unconfirmed { message, .. })) => message,
            Ok(_) => STOPPED_WHILE_SENDING.to_string(),
            Err(e) => {
                tracing::error!("an outbox send task ended abnormally: {e}");
                STOPPED_WHILE_SENDING.to_string()
            }
        };
        self.never_left_sending(key, seq, message).await;
    }

    /// A send whose outcome could not be recorded (the database failed the write, or the
    /// attempt's task ended abnormally) would stay `sending` under this live session, where no
    /// repair finds it, and block its mention: it is recorded `unconfirmed` (its request may
    /// have left; never sent again by itself), trying a few times.
    async fn never_left_sending(&self, key: crate::domain::MentionKey, seq: u64, message: String) {
        for attempt in 0..RECORD_TRIES {
            let message = message.clone();
            let fixed = blocking_shared(&self.store, move |s| match s.outbox_entry(key, seq)? {
                Some(e) if e.state == OutboxState::Sending => s
                    .outbox_unconfirmed(key, seq, &message, Utc::now())
                    .map(|_| ()),
                _ => Ok(()),
            })
            .await;
            match fixed {
                Ok(()) => return,
                Err(e) => {
                    tracing::error!(attempt, "could not record a send's outcome: {e}");
                    tokio::time::sleep(AFTER_ERROR).await;
                }
            }
        }
    }

    /// How long until the earliest rate-limited entry may go (at most [`IDLE_CHECK`]).
    async fn next_wake(&self) -> Duration {
        let open = blocking_shared(&self.store, |s| s.outbox_open()).await;
        let now = Utc::now();
        open.ok()
            .into_iter()
            .flatten()
            .filter(|e| e.state == OutboxState::Waiting)
            .filter_map(|e| e.not_before)
            .map(|at| (at - now).to_std().unwrap_or_default())
            .min()
            .map_or(IDLE_CHECK, |d| d.min(IDLE_CHECK))
    }
}
