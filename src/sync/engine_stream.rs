//! The engine's live side: it starts the Activity stream task (`stream.rs`), keeps the
//! subscriptions in step with the accounts (`subscriptions.rs`), commits streamed events through
//! the same page commit as polling, and turns polling into reconciliation while the stream is
//! live (ACTIVITY.md §7):
//!
//! - while the stream is live, a streamed account is polled [`StreamSettings::reconcile_factor`]
//!   times less often (default 4×); an event never triggers a poll;
//! - on every (re)connect every account is polled at once, closing the gap of the time it was
//!   down (X keeps nothing for a stream that is not connected);
//! - when the stream goes down, every account is back on its normal cadence at once.
//!
//! # The cursor invariant
//!
//! A streamed event is committed with no cursor (`new_cursor: None`), never "the newest id
//! seen". The poll cursor means "every mention up to here has been fetched by a poll"; a
//! streamed post newer than posts the poll has not yet fetched (implicit mentions XAA never
//! sends, anything created while the stream was down) would otherwise move `since_id` past
//! them and they would never be fetched. So only the poll moves the cursor, to the newest id it
//! stored itself (`page.rs`). A post that came by stream and then by poll is stored once (the
//! commit drops ids it already has) and still raises the poll's cursor, since the poll saw it.
//! (ACTIVITY.md §7 mentions bots that advance the cursor on stream events to save a read; perch
//! pays that read to keep the no-gap guarantee.)

use std::collections::{HashMap, HashSet, VecDeque};

use chrono::Utc;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::{Engine, SyncCounters, SyncEvent, is_pollable};
use crate::costs::{CostKind, ResourceClass};
use crate::domain::{AccountId, Secret};
use crate::store::{ReadCharge, StoreError};
use crate::sync::stream::{self, NO_APP_TOKEN, StreamMsg, StreamStatus};
use crate::sync::subscriptions::{self, AccountSubscriptions, Reconciled, Wanted};
use crate::x::activity::ActivityEvent;

/// Event ids remembered to drop the stream's duplicate deliveries (ACTIVITY.md §4.3). The store
/// drops duplicates anyway; this spares the commit.
const SEEN_EVENTS: usize = 2000;

/// The engine's state of the live side.
pub(super) struct Live {
    pub status: StreamStatus,
    /// The app Bearer (configured or minted), once known.
    app_token: Option<Secret>,
    reconciling: bool,
    reconcile_again: bool,
    not_offered: HashSet<String>,
    /// What the last reconcile found, per account.
    pub subscriptions: HashMap<AccountId, AccountSubscriptions>,
    seen: VecDeque<(String, String)>,
    seen_set: HashSet<(String, String)>,
    stop: Option<watch::Sender<bool>>,
    task: Option<JoinHandle<()>>,
    channels: Option<LiveChannels>,
    /// A reconcile that failed in part (a limit, a refusal) is tried again then.
    retry_at: Option<Instant>,
}

/// How long after a reconcile that failed in part it is tried again: one rate-limit window of
/// the subscription calls (ACTIVITY.md §3.6).
const RECONCILE_RETRY: std::time::Duration = std::time::Duration::from_secs(15 * 60);

impl Live {
    pub fn new() -> Live {
        Live {
            status: StreamStatus::Off {
                reason: "not started".into(),
            },
            app_token: None,
            reconciling: false,
            reconcile_again: false,
            not_offered: HashSet::new(),
            subscriptions: HashMap::new(),
            seen: VecDeque::new(),
            seen_set: HashSet::new(),
            stop: None,
            task: None,
            channels: None,
            retry_at: None,
        }
    }

    /// Whether the stream is delivering now.
    pub fn healthy(&self) -> bool {
        self.status == StreamStatus::Live
    }

    /// Whether this account's mentions arrive by stream now.
    pub fn streams(&self, account: AccountId) -> bool {
        self.healthy()
            && self
                .subscriptions
                .get(&account)
                .is_some_and(AccountSubscriptions::streamed)
    }

    fn first_time(&mut self, key: (String, String)) -> bool {
        if !self.seen_set.insert(key.clone()) {
            return false;
        }
        self.seen.push_back(key);
        if self.seen.len() > SEEN_EVENTS
            && let Some(old) = self.seen.pop_front()
        {
            self.seen_set.remove(&old);
        }
        true
    }

    /// When the engine must wake for a retried reconcile.
    pub fn next_tick(&self) -> Option<Instant> {
        self.retry_at
    }

    /// Stops the stream task (the engine is stopping).
    pub fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(true);
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// The channels the engine's loop listens to for the live side (the receivers stay in the
/// loop, see `Engine::run`).
pub(super) struct LiveChannels {
    pub stream_tx: mpsc::Sender<StreamMsg>,
    pub reconciled_tx: mpsc::Sender<Reconciled>,
}

/// The receiving ends, for the engine's loop.
pub(super) struct LiveReceivers {
    pub stream_rx: mpsc::Receiver<StreamMsg>,
    pub reconciled_rx: mpsc::Receiver<Reconciled>,
}

/// A pair of channels for the live side.
pub(super) fn live_channels() -> (LiveChannels, LiveReceivers) {
    let (stream_tx, stream_rx) = mpsc::channel(256);
    let (reconciled_tx, reconciled_rx) = mpsc::channel(4);
    (
        LiveChannels {
            stream_tx,
            reconciled_tx,
        },
        LiveReceivers {
            stream_rx,
            reconciled_rx,
        },
    )
}

impl Engine {
    /// Starts the stream task when the settings ask for it: resolve the app token, then run.
    pub(super) async fn start_stream(&mut self, channels: LiveChannels) {
        let settings = self.settings.stream.clone();
        if !settings.enabled {
            return;
        }
        let out = channels.stream_tx.clone();
        self.live.channels = Some(channels);
        self.set_stream_status(StreamStatus::Connecting).await;
        let client = self.client.clone();
        let configured = self.settings.app_bearer_token.clone();
        let (stop_tx, stop_rx) = watch::channel(false);
        self.live.stop = Some(stop_tx);
        self.live.task = Some(tokio::spawn(async move {
            match stream::app_token(&client, configured.as_ref(), &settings).await {
                Ok(token) => {
                    if out.send(StreamMsg::Token(token.clone())).await.is_err() {
                        return;
                    }
                    stream::run(client, token, settings, out, stop_rx).await;
                }
                Err(reason) => {
                    let _ = out.send(StreamMsg::Stopped { reason }).await;
                }
            }
        }));
    }

    pub(super) async fn on_stream(&mut self, msg: StreamMsg) {
        match msg {
            StreamMsg::Token(token) => self.live.app_token = Some(token),
            StreamMsg::Connected => {
                tracing::info!("activity stream connected");
                self.set_stream_status(StreamStatus::Live).await;
                self.reconcile().await;
                self.poll_all_for_gap();
            }
            StreamMsg::Event(event) => self.on_event(*event).await,
            StreamMsg::Down { at, reason } => {
                let was_live = self.live.healthy();
                self.set_stream_status(StreamStatus::Reconnecting { at, reason })
                    .await;
                if was_live {
                    self.back_to_normal_cadence();
                }
            }
            StreamMsg::Stopped { reason } => {
                self.back_to_normal_cadence();
                if reason == NO_APP_TOKEN {
                    // Said once, as a notice: polling alone is a fine way to run perch.
                    self.notice(
                        None,
                        "live stream off (no app token): see README".to_string(),
                    )
                    .await;
                } else {
                    self.notice(None, format!("live stream off: {reason}"))
                        .await;
                }
                self.set_stream_status(StreamStatus::Off { reason }).await;
            }
            StreamMsg::Trouble(what) => {
                SyncCounters::add(&self.counters.stream_trouble, 1);
                tracing::warn!("activity stream: {what}");
            }
        }
    }

    async fn set_stream_status(&mut self, status: StreamStatus) {
        if self.live.status == status {
            return;
        }
        self.live.status = status.clone();
        let _ = self.events.send(SyncEvent::StreamStatus(status)).await;
    }

    /// After a (re)connect: every pollable account at once, to close the gap. A poll already
    /// running started before the connection, so it runs once more after.
    fn poll_all_for_gap(&mut self) {
        for slot in self.slots.values_mut() {
            if !is_pollable(&slot.account) {
                continue;
            }
            if slot.running {
                slot.again = true;
            } else {
                slot.urgent = true;
            }
        }
    }

    /// The stream went down: no account waits longer than its normal cadence.
    fn back_to_normal_cadence(&mut self) {
        let now = Instant::now();
        for slot in self.slots.values_mut() {
            let normal = now
                + slot
                    .cadence
                    .interval(self.settings.interval_for(&slot.account));
            if slot.next_at > normal {
                slot.next_at = normal;
            }
        }
    }

    /// How many times the base interval an account waits between polls now.
    pub(super) fn interval_factor(&self, account: AccountId) -> u32 {
        if self.live.streams(account) {
            self.settings.stream.reconcile_factor.max(1)
        } else {
            1
        }
    }

    /// Lists and fixes the subscriptions (coalesced: one at a time, one more if asked meanwhile).
    pub(super) async fn reconcile(&mut self) {
        if !self.settings.stream.enabled {
            return;
        }
        let (Some(app), Some(channels)) =
            (self.live.app_token.clone(), self.live.channels.as_ref())
        else {
            return;
        };
        if self.live.reconciling {
            self.live.reconcile_again = true;
            return;
        }
        self.live.reconciling = true;
        let wanted: Vec<Wanted> = self
            .slots
            .values()
            .filter(|s| is_pollable(&s.account) && s.remove_after.is_none())
            .map(|s| Wanted {
                account_id: s.account.id,
                user_id: s.account.twitter_id.clone(),
            })
            .collect();
        let (client, tokens) = (self.client.clone(), self.tokens.clone());
        let not_offered = self.live.not_offered.clone();
        let out = channels.reconciled_tx.clone();
        tokio::spawn(async move {
            let done =
                subscriptions::reconcile(&client, &tokens, &app, &wanted, &not_offered).await;
            let _ = out.send(done).await;
        });
    }

    /// Runs a reconcile that is due again.
    pub(super) async fn live_tick(&mut self) {
        if self.live.retry_at.is_some_and(|at| at <= Instant::now()) {
            self.live.retry_at = None;
            self.reconcile().await;
        }
    }

    pub(super) async fn on_reconciled(&mut self, done: Reconciled) {
        self.live.reconciling = false;
        self.live.not_offered = done.not_offered;
        let failed = done.error.is_some() || done.accounts.values().any(|a| a.error.is_some());
        self.live.retry_at = failed.then(|| Instant::now() + RECONCILE_RETRY);
        if let Some(error) = done.error {
            self.notice(None, error).await;
        } else {
            if done.created + done.deleted > 0 {
                tracing::info!(
                    created = done.created,
                    deleted = done.deleted,
                    "activity subscriptions reconciled"
                );
            }
            // Accounts no longer wanted have none left.
            let gone: Vec<AccountId> = self
                .live
                .subscriptions
                .keys()
                .filter(|id| !done.accounts.contains_key(id))
                .copied()
                .collect();
            for id in gone {
                self.live.subscriptions.remove(&id);
                let _ = self
                    .events
                    .send(SyncEvent::Subscriptions {
                        account_id: id,
                        subscriptions: AccountSubscriptions::default(),
                    })
                    .await;
            }
            for (id, subs) in done.accounts {
                if self.live.subscriptions.get(&id) == Some(&subs) {
                    continue;
                }
                if let Some(error) = &subs.error {
                    let handle = self
                        .slots
                        .get(&id)
                        .map(|s| s.account.handle())
                        .unwrap_or_default();
                    self.notice(Some(id), format!("{handle}: {error}")).await;
                }
                self.live.subscriptions.insert(id, subs.clone());
                let _ = self
                    .events
                    .send(SyncEvent::Subscriptions {
                        account_id: id,
                        subscriptions: subs,
                    })
                    .await;
            }
        }
        if std::mem::take(&mut self.live.reconcile_again) {
            self.reconcile().await;
        }
    }

    /// Which account an event is for: the tag's account when it is perch's and its user
    /// matches, otherwise the account with the event's `filter.user_id`.
    fn route(&self, event: &ActivityEvent) -> Option<AccountId> {
        let user = event.user_id.as_deref()?;
        if let Some(id) = event.tag.as_deref().and_then(subscriptions::account_of_tag)
            && self
                .slots
                .get(&id)
                .is_some_and(|s| s.account.twitter_id == user)
        {
            return Some(id);
        }
        self.slots
            .values()
            .filter(|s| s.account.twitter_id == user)
            .min_by_key(|s| !is_pollable(&s.account))
            .map(|s| s.account.id)
    }

    async fn on_event(&mut self, event: ActivityEvent) {
        SyncCounters::add(&self.counters.stream_events, 1);
        if !event.kind.carries_post() {
            tracing::debug!(
                kind = event.kind.name(),
                "activity event perch does not use"
            );
            return;
        }
        let Some(account_id) = self.route(&event) else {
            tracing::info!(
                kind = event.kind.name(),
                "an activity event for no account of perch's"
            );
            return;
        };
        let Some(slot) = self.slots.get(&account_id) else {
            return;
        };
        // A paused account's subscriptions are being deleted: what still arrives is dropped, as
        // its polls would be.
        if !is_pollable(&slot.account) {
            return;
        }
        let account = slot.account.clone();
        let Some(post) = event.post else {
            // Unreadable payload: the reconciliation poll fetches the post properly.
            SyncCounters::add(&self.counters.stream_trouble, 1);
            tracing::warn!(account = %account.handle(), "an activity event whose post could not be read: {}", event.unreadable.unwrap_or_default());
            return;
        };
        // One post can come as a mention and as a reply event, and twice on one stream.
        if !self
            .live
            .first_time((account_id.to_string(), post.tweet_id.to_string()))
        {
            return;
        }
        if post.is_retweet {
            return;
        }
        let now = Utc::now();
        let mention = crate::x::to_mention(&post, &account, now);
        let charge = ReadCharge {
            at: now,
            class: ResourceClass::Post,
            kind: CostKind::StreamEvent,
            ids: vec![post.tweet_id],
        };
        let store = self.store.clone();
        // The poll's commit, with no cursor: see the module docs (the cursor invariant).
        let committed = tokio::task::spawn_blocking(move || {
            store.commit_streamed_post(account_id, &mention, Some(&charge))
        })
        .await
        .unwrap_or_else(|e| Err(StoreError::Invalid(format!("the store task failed: {e}"))));
        match committed {
            Ok(done) => {
                SyncCounters::add(&self.counters.inserted, done.inserted as u64);
                SyncCounters::add(&self.counters.streamed, done.inserted as u64);
                if done.inserted > 0 {
                    let inserted = done.inserted;
                    let _ = self
                        .events
                        .send(SyncEvent::PageCommitted {
                            account_id,
                            inserted,
                        })
                        .await;
                    self.update_account(account_id, move |a| {
                        a.total_mentions_tracked += inserted as u64;
                    })
                    .await;
                }
            }
            Err(e) => {
                // Not stored: the reconciliation poll fetches it (the cursor did not move).
                tracing::warn!(account = %account.handle(), "cannot store a streamed mention: {e}");
            }
        }
    }
}
