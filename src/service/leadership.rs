//! A service on PostgreSQL (issue 16): any number of them share one database, and only the
//! elected leader (`store/pg/leader.rs`) runs the sync engine. This module is the glue:
//!
//! - [`lead_while_elected`] starts the engine when this service becomes leader and stops it, with
//!   the polls it is running, the moment it is not (a page commit already handed to the store
//!   finishes; it is atomic), so two services never poll at once for long: a leader that loses
//!   the database steps down in the tick that notices, before another can take the lock.
//!   The hub's sync channel stays the same across terms; commands that arrive while this
//!   service follows are the leader's to act on, and are dropped here with a note in the log.
//! - [`hear_changes`] listens on the database's change feed (`store/pg/changes.rs`) and tells
//!   this service's clients what another service's engine committed, so every dashboard and SSE
//!   client on every service is live. The leader's own engine reports its writes itself.
//!
//! The leader also runs the outbox's sending worker (`outbox::claims`) each term, woken by the
//! change feed when any service queues a send. Every service turns the feed's outbox changes
//! into the events its clients hear (`outbox::team::read_event`), the leader's own included:
//! on PostgreSQL the feed is the one source of outbox events, so a client hears each once.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, mpsc, watch};

use super::hub::{Hub, ServiceEvent};
use crate::auth::TokenManager;
use crate::store::SharedStore;
use crate::store::pg::changes::{Change, ChangeListener};
use crate::store::pg::leader::Role;
use crate::sync::{self, SyncEvent};
use crate::x::XClient;

/// How often the leader folds the store's count deltas (a count sums the rows since the last).
const STORE_UPKEEP: Duration = Duration::from_secs(20);

/// The longest an engine is given to stop between pages when leadership ends.
const ENGINE_STOP: Duration = Duration::from_secs(5);

/// What the engine runs with, each term.
pub struct EngineParts {
    pub store: SharedStore,
    pub client: XClient,
    pub tokens: TokenManager,
    pub settings: sync::SyncSettings,
    /// Wakes the outbox worker (notified by [`hear_changes`]).
    pub outbox_wake: Arc<Notify>,
}

/// Runs the engine during each term this service leads, forwarding the hub's sync commands to
/// it, until the hub stops.
pub async fn lead_while_elected(
    hub: Arc<Hub>,
    mut role: watch::Receiver<Role>,
    mut commands: mpsc::Receiver<sync::Command>,
    parts: EngineParts,
) {
    loop {
        // Follow until elected (or stopped).
        loop {
            if role.borrow_and_update().is_leader() {
                break;
            }
            tokio::select! {
                changed = role.changed() => if changed.is_err() { return },
                command = commands.recv() => match command {
                    None | Some(sync::Command::Shutdown) => return,
                    Some(command) => tracing::debug!(?command, "sync command left to the leader"),
                },
                _ = hub.stopped() => return,
            }
        }
        tracing::info!("this service is the sync leader: polling and sending start");
        // The outbox worker of this term: told to stop claiming when the term ends, never
        // aborted (a request out finishes and is recorded; see `outbox::claims`).
        let (leading, leading_rx) = watch::channel(true);
        tokio::spawn(
            crate::outbox::claims::Claims {
                store: parts.store.clone(),
                client: parts.client.clone(),
                tokens: parts.tokens.clone(),
                wake: parts.outbox_wake.clone(),
            }
            .run(leading_rx),
        );
        let mut engine = sync::spawn(
            parts.store.clone(),
            parts.client.clone(),
            parts.tokens.clone(),
            parts.settings.clone(),
        );
        // The store's upkeep (on PostgreSQL, folding the feed's count deltas) is the leader's.
        let mut upkeep = tokio::time::interval(STORE_UPKEEP);
        upkeep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let ending = loop {
            tokio::select! {
                _ = upkeep.tick() => {
                    let store = parts.store.clone();
                    if let Ok(Err(e)) = tokio::task::spawn_blocking(move || store.maintain()).await {
                        tracing::warn!("the store's upkeep failed: {e}");
                    }
                }
                changed = role.changed() => {
                    if changed.is_err() || !role.borrow_and_update().is_leader() {
                        break false;
                    }
                }
                command = commands.recv() => match command {
                    None | Some(sync::Command::Shutdown) => break true,
                    Some(command) => {
                        if engine.commands.send(command).await.is_err() {
                            tracing::error!("the sync engine stopped while leading");
                            break false;
                        }
                    }
                },
                event = engine.events.recv() => match event {
                    Some(event) => hub.publish(ServiceEvent::Sync(event)),
                    None => break false,
                },
                _ = hub.stopped() => break true,
            }
        };
        let _ = leading.send(false);
        let _ = engine.commands.send(sync::Command::Shutdown).await;
        // Events the engine still reports while it stops reach the clients.
        let drain = async {
            while let Some(event) = engine.events.recv().await {
                hub.publish(ServiceEvent::Sync(event));
            }
        };
        let _ = tokio::time::timeout(ENGINE_STOP, async {
            drain.await;
            let _ = (&mut engine.task).await;
        })
        .await;
        engine.task.abort();
        if ending {
            return;
        }
        tracing::warn!("this service is no longer the sync leader: polling and sending stopped");
    }
}

/// Hears the changes every service commits and tells this service's clients about those this
/// service did not make itself (while it follows). Reconnects after a lost connection, at most
/// once a second, until the hub stops; a leader that was not listening for a while loads and
/// polls every account again, since a login made meanwhile went unheard.
pub async fn hear_changes(
    hub: Arc<Hub>,
    url: crate::domain::Secret,
    role: watch::Receiver<Role>,
    outbox_wake: Arc<Notify>,
) {
    let mut outbox_heard = OutboxHeard::default();
    let (tx, mut rx) = mpsc::channel::<Heard>(1024);
    let stopped = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop_flag = stopped.clone();
    let listening = tokio::task::spawn_blocking(move || listen(url, tx, stop_flag));
    loop {
        tokio::select! {
            heard = rx.recv() => match heard {
                Some(Heard::Listening { again: true }) if role.borrow().is_leader() => {
                    // Changes made while this listener was away were not heard: a login among
                    // them would wait for the next leader. Load and poll every account now.
                    let store = hub.store.clone();
                    if let Ok(Ok(accounts)) = tokio::task::spawn_blocking(move || store.accounts()).await {
                        for a in accounts {
                            let _ = hub.sync.send(sync::Command::AccountAdded(a.id)).await;
                        }
                    }
                }
                Some(Heard::Listening { .. }) => {}
                Some(Heard::Change(Change::Outbox { account, tweet, seq })) => {
                    if role.borrow().is_leader() {
                        outbox_wake.notify_one();
                    }
                    let key = crate::domain::MentionKey { account_id: account, tweet_id: tweet };
                    match crate::outbox::team::read_event(&hub.store, key, seq).await {
                        Ok(Some((seen, event))) => {
                            if outbox_heard.is_new(key, seq, seen) {
                                // Publishing a settled send writes its audit entry: a database
                                // round trip, off the runtime's threads (awaited: in order).
                                let h = hub.clone();
                                let _ = tokio::task::spawn_blocking(move || {
                                    h.publish(ServiceEvent::Outbox(event))
                                })
                                .await;
                            }
                        }
                        Ok(None) => {}
                        Err(e) => tracing::warn!(tweet, "cannot read a changed send: {e}"),
                    }
                }
                Some(Heard::Change(Change::Presence { account, tweet, person, replying, origin })) => {
                    if origin != hub.instance {
                        let key = crate::domain::MentionKey { account_id: account, tweet_id: tweet };
                        // It reads the account's handle for the event: off the runtime's threads.
                        let h = hub.clone();
                        let _ = tokio::task::spawn_blocking(move || {
                            h.heard_presence(key, &person, replying)
                        })
                        .await;
                    }
                }
                Some(Heard::Change(Change::Assigned { account, tweet, handle, person, by, at })) => {
                    // Every service's clients, this one's too: the service that assigned does
                    // not publish it itself (`Hub::publish_assigned`).
                    let key = crate::domain::MentionKey { account_id: account, tweet_id: tweet };
                    let store = hub.store.clone();
                    let read = tokio::task::spawn_blocking(move || {
                        let id = store.mention(key).ok().flatten().map(|m| m.id);
                        let handle = match handle.is_empty() {
                            true => store.account(key.account_id).ok().flatten().map(|a| a.handle()),
                            false => Some(handle),
                        };
                        (id, handle)
                    })
                    .await;
                    let (mention_id, handle) = match read {
                        Ok((id, handle)) => (
                            id.unwrap_or_else(uuid::Uuid::nil),
                            handle.unwrap_or_else(|| account.to_string()),
                        ),
                        Err(_) => (uuid::Uuid::nil(), account.to_string()),
                    };
                    hub.publish(ServiceEvent::Team(crate::domain::TeamEvent::Assigned {
                        key,
                        mention_id,
                        handle,
                        assigned_to: person,
                        by,
                        at,
                    }));
                }
                Some(Heard::Change(change)) => {
                    if let Change::LoggedIn { account } = change
                        && role.borrow().is_leader()
                    {
                        // A login from a command or another service: this leader's engine
                        // loads the account and polls it now.
                        let _ = hub.sync.send(sync::Command::AccountAdded(account)).await;
                    }
                    if role.borrow().is_leader() {
                        // This service's engine made it (only the leader writes pages) and
                        // told the clients itself.
                        continue;
                    }
                    if let Some(event) = event_of(&hub, change).await {
                        hub.publish(ServiceEvent::Sync(event));
                    }
                }
                None => break,
            },
            _ = hub.stopped() => break,
        }
    }
    stopped.store(true, std::sync::atomic::Ordering::Release);
    let _ = tokio::time::timeout(Duration::from_secs(3), listening).await;
}

/// The state each send was last reported in, so that two notifications read after the same
/// commit (the entry read once it had moved on) make one event, not two.
#[derive(Default)]
struct OutboxHeard {
    last: std::collections::HashMap<(crate::domain::MentionKey, u64), crate::outbox::team::Seen>,
}

/// Sends remembered at most; past it the memory starts over (a repeat then is one duplicate
/// event, which clients take as the same news).
const OUTBOX_HEARD: usize = 4096;

impl OutboxHeard {
    /// Whether `seen` differs from what was last reported of this send (a retry that fails
    /// again is a new change: its time differs).
    fn is_new(
        &mut self,
        key: crate::domain::MentionKey,
        seq: u64,
        seen: crate::outbox::team::Seen,
    ) -> bool {
        if self.last.len() >= OUTBOX_HEARD && !self.last.contains_key(&(key, seq)) {
            self.last.clear();
        }
        self.last.insert((key, seq), seen) != Some(seen)
    }
}

/// What the listening thread hands over.
enum Heard {
    /// Listening (`again`: after a lost connection, so changes may have been missed).
    Listening {
        again: bool,
    },
    Change(Change),
}

/// Tells the other services of this one's presence changes, in the order they happened.
pub async fn share_presence(
    hub: Arc<Hub>,
    mut changes: mpsc::Receiver<super::hub::SharedPresence>,
) {
    loop {
        let (key, person, replying) = tokio::select! {
            change = changes.recv() => match change {
                Some(change) => change,
                None => return,
            },
            _ = hub.stopped() => return,
        };
        let (store, origin) = (hub.store.clone(), hub.instance);
        let shared = tokio::task::spawn_blocking(move || {
            store.share_presence(key, &person, replying, origin)
        })
        .await;
        if let Ok(Err(e)) = shared {
            tracing::debug!("could not tell the other services of a presence change: {e}");
        }
    }
}

/// The blocking side: one connection listening, reconnected when it fails.
fn listen(
    url: crate::domain::Secret,
    tx: mpsc::Sender<Heard>,
    stopped: Arc<std::sync::atomic::AtomicBool>,
) {
    let stop = || stopped.load(std::sync::atomic::Ordering::Acquire);
    let mut connected_before = false;
    while !stop() {
        let mut listener = match ChangeListener::connect(url.expose()) {
            Ok(listener) => listener,
            Err(e) => {
                tracing::warn!("cannot listen for the team's changes: {e}");
                std::thread::sleep(Duration::from_secs(1));
                continue;
            }
        };
        if tx
            .blocking_send(Heard::Listening {
                again: connected_before,
            })
            .is_err()
        {
            return;
        }
        connected_before = true;
        while !stop() {
            match listener.next(Duration::from_millis(500)) {
                Ok(Some(change)) => {
                    if tx.blocking_send(Heard::Change(change)).is_err() {
                        return;
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!("lost the team's change feed, listening again: {e}");
                    std::thread::sleep(Duration::from_secs(1));
                    break;
                }
            }
        }
    }
}

/// The event a client would have heard from the engine that made `change`.
async fn event_of(hub: &Arc<Hub>, change: Change) -> Option<SyncEvent> {
    match change {
        Change::Mentions { account, inserted } => Some(SyncEvent::PageCommitted {
            account_id: account,
            inserted: usize::try_from(inserted).unwrap_or(usize::MAX),
        }),
        Change::Account { account } | Change::LoggedIn { account } => {
            let store = hub.store.clone();
            match tokio::task::spawn_blocking(move || store.account(account)).await {
                Ok(Ok(Some(a))) => Some(SyncEvent::AccountUpdated(a)),
                Ok(Ok(None)) => Some(SyncEvent::AccountRemoved {
                    account_id: account,
                }),
                Ok(Err(e)) => {
                    tracing::warn!(%account, "cannot read a changed account: {e}");
                    None
                }
                Err(_) => None,
            }
        }
        // A status change: the dashboards that show them do not run on PostgreSQL yet; SSE
        // clients hear of mentions, accounts and sends (the latter in `hear_changes`).
        Change::Mention { .. }
        | Change::Outbox { .. }
        | Change::Presence { .. }
        | Change::Assigned { .. } => None,
    }
}
