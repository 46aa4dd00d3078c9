//! What a running service shares with everything that serves its clients (the REST API, the
//! dashboard sessions, the CLI): the store, the engine's and the outbox's command channels, and
//! one broadcast of everything they report.

use std::path::PathBuf;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use tokio::sync::{broadcast, mpsc, watch};

use super::presence::{Presence, PresenceChange, Replying};
use super::send_audit::{AskedSend, AskedSends, Settled};
use crate::auth::{OAuthSettings, TokenManager};
use crate::config::Config;
use crate::domain::{AuditAction, AuditEntry, MentionKey, Secret, TeamEvent};
use crate::outbox::{OutboxCommand, OutboxEvent, ReplyKind};
use crate::store::{SharedStore, Store, StoreError};
use crate::sync::{self, SyncEvent};
use crate::x::XClient;

/// One thing the engine or the outbox reported, as every client hears it.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(tag = "source", content = "event", rename_all = "snake_case")]
pub enum ServiceEvent {
    Sync(SyncEvent),
    Outbox(OutboxEvent),
    /// Assignments (issue 16): made through the API or the CLI, heard by every client.
    Team(TeamEvent),
}

/// How many events a slow client may fall behind before it misses some (and is told so).
pub const EVENT_BACKLOG: usize = 4096;

/// Facts about the running service, for `perch service status`.
#[derive(Clone, Debug)]
pub struct ServiceInfo {
    pub pid: u32,
    pub started_at: DateTime<Utc>,
    pub socket: PathBuf,
    pub api_listen: Option<std::net::SocketAddr>,
    pub data_dir: PathBuf,
}

pub struct Hub {
    /// sled, or a team's PostgreSQL database.
    pub store: SharedStore,
    pub config: Config,
    pub client: XClient,
    pub tokens: TokenManager,
    /// `None` when no X app is configured (`client_id`): logins are refused with the hint.
    pub oauth: Option<OAuthSettings>,
    pub sync: mpsc::Sender<sync::Command>,
    pub outbox: mpsc::Sender<OutboxCommand>,
    pub info: ServiceInfo,
    /// The bearer token TCP clients must present (the Unix socket needs none).
    pub api_token: Secret,
    events: broadcast::Sender<ServiceEvent>,
    last_poll_at: Mutex<Option<DateTime<Utc>>>,
    /// The live stream's state, for clients that attach later (issue 12).
    live: Mutex<sync::stream::LiveSnapshot>,
    /// A problem that lasts (the `on_new_mentions` hook failing), told again to each client
    /// that attaches while it lasts.
    standing_notice: Mutex<Option<SyncEvent>>,
    stop: watch::Sender<bool>,
    /// Who has which mention's composer open (issue 16): memory only, it expires by itself.
    presence: Mutex<Presence>,
    /// Who asked for each send not settled yet, for the audit log (`service::send_audit`).
    asked: Mutex<AskedSends>,
    /// On PostgreSQL, this service's part in the sync leader election; `None` on sled (one
    /// process holds a sled store, so it is always its leader).
    pub election: Option<watch::Receiver<crate::store::pg::leader::Role>>,
    /// This service among the others on one database (so that it does not apply its own
    /// presence notices twice).
    pub instance: uuid::Uuid,
    /// On PostgreSQL, where this service's presence touches and leaves go to reach the other
    /// services (in order; see [`Hub::share_presence_through`]).
    presence_out: Option<mpsc::Sender<SharedPresence>>,
}

/// One presence change to tell the other services of: `person` is (`true`) or no longer is
/// replying to `key`.
pub type SharedPresence = (MentionKey, String, bool);

/// Presence notices waiting to go out at most; past it one is dropped (with a note in the log):
/// presence is a hint, and the next touch, every few seconds, repairs it.
pub const PRESENCE_OUT_BACKLOG: usize = 256;

impl Hub {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: SharedStore,
        config: Config,
        client: XClient,
        tokens: TokenManager,
        sync: mpsc::Sender<sync::Command>,
        outbox: mpsc::Sender<OutboxCommand>,
        info: ServiceInfo,
        api_token: Secret,
    ) -> Hub {
        let (events, _) = broadcast::channel(EVENT_BACKLOG);
        let (stop, _) = watch::channel(false);
        Hub {
            oauth: OAuthSettings::from_config(&config).ok(),
            store,
            config,
            client,
            tokens,
            sync,
            outbox,
            info,
            api_token,
            events,
            last_poll_at: Mutex::new(None),
            live: Mutex::default(),
            standing_notice: Mutex::default(),
            stop,
            presence: Mutex::default(),
            asked: Mutex::default(),
            election: None,
            instance: uuid::Uuid::new_v4(),
            presence_out: None,
        }
    }

    /// From now on, this service's presence changes are also handed to `out`, for a task that
    /// tells the other services on the database (`Change::Presence`).
    pub fn share_presence_through(&mut self, out: mpsc::Sender<SharedPresence>) {
        self.presence_out = Some(out);
    }

    fn share_presence(&self, key: MentionKey, person: &str, replying: bool) {
        let Some(out) = &self.presence_out else {
            return;
        };
        if out.try_send((key, person.to_string(), replying)).is_err() {
            tracing::debug!("presence notice dropped: the database is behind");
        }
    }

    /// Another service said `person` is (or no longer is) replying to `key`: this service's
    /// clients see it too. A remote presence expires here as a local one does, unless its
    /// service touches it again.
    pub fn heard_presence(&self, key: MentionKey, person: &str, replying: bool) {
        let now = Utc::now();
        let changes = {
            let mut presence = lock(&self.presence);
            if replying {
                presence.touch(key, person, now)
            } else if presence.leave(key, person) {
                vec![PresenceChange {
                    key,
                    person: person.to_string(),
                    replying: false,
                }]
            } else {
                Vec::new()
            }
        };
        self.announce_presence(changes, now);
    }

    /// The sled store, for the parts of perch that do not run on PostgreSQL yet; on
    /// PostgreSQL, the refusal that says so (`what` names the part).
    pub fn sled_store(&self) -> Result<Store, StoreError> {
        self.store
            .sled()
            .cloned()
            .ok_or_else(|| crate::store::not_on_postgres("this command"))
    }

    /// `account` was just logged in (added or authorized again): the engine that syncs it
    /// loads it and polls it now. On sled that is this service's engine; on PostgreSQL it is
    /// the leader's, wherever it runs, told through the database (this service may follow).
    pub async fn account_logged_in(&self, account: crate::domain::AccountId) {
        if self.store.sled().is_some() {
            let _ = self.sync.send(sync::Command::AccountAdded(account)).await;
            return;
        }
        let store = self.store.clone();
        match tokio::task::spawn_blocking(move || store.announce_login(account)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(%account, "cannot tell the sync leader of a login: {e}"),
            Err(e) => tracing::error!(%account, "the store task failed: {e}"),
        }
    }

    /// Why this service cannot give its engine a command (pause, resume, refresh): on
    /// PostgreSQL only the sync leader runs one, and this service follows. `None` when it can.
    pub fn engine_refusal(&self) -> Option<String> {
        let role = self.election.as_ref()?.borrow().clone();
        match role {
            crate::store::pg::leader::Role::Leader { .. } => None,
            crate::store::pg::leader::Role::Follower { leader, .. } => Some(match leader {
                Some(l) => format!(
                    "the team's sync engine runs on the leader (pid {} on {}), not this service: pause, resume and refresh from a dashboard attached to it",
                    l.pid, l.host
                ),
                None => "no service leads the team's sync right now (the database cannot be reached, or the leader is changing); try again in a moment".to_string(),
            }),
        }
    }

    /// Every event from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<ServiceEvent> {
        self.events.subscribe()
    }

    /// Hands an event to every client listening (none listening is fine).
    pub fn publish(&self, event: ServiceEvent) {
        if let ServiceEvent::Sync(SyncEvent::Finished { .. }) = &event {
            *self.last_poll_at.lock().unwrap_or_else(|p| p.into_inner()) = Some(Utc::now());
        }
        if let ServiceEvent::Sync(e) = &event {
            self.live
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .observe(e);
        }
        if let ServiceEvent::Outbox(e) = &event {
            self.audit_settled_send(e);
        }
        let _ = self.events.send(event);
    }

    /// Tells every client of an assignment just made (`TeamEvent::Assigned`). On PostgreSQL
    /// the change feed tells every service's clients, this one's too (`leadership.rs`), so it is
    /// not published here as well.
    pub fn publish_assigned(&self, event: TeamEvent) {
        if self.store.sled().is_some() {
            self.publish(ServiceEvent::Team(event));
        }
    }

    /// `person` asks for a send of `key` (before the command goes to the outbox): when it is on
    /// X, or may be, the audit log records it under them (`service::send_audit`).
    pub fn note_send(&self, key: MentionKey, person: &str, kind: ReplyKind, text: &str) {
        lock(&self.asked).note(
            key,
            AskedSend {
                person: person.to_string(),
                kind,
                text: text.to_string(),
                asked_at: Utc::now(),
            },
        );
    }

    /// Who asked for the send `command` starts, when a client said so through [`Hub::note_send`]
    /// (recorded with the send on a team's database, for "ana asked for a reply at ...").
    pub fn asked_by(&self, command: &OutboxCommand) -> Option<String> {
        match command {
            OutboxCommand::Send(r) => lock(&self.asked)
                .asked_by(r.key, r.kind, &r.text)
                .map(str::to_string),
            _ => None,
        }
    }

    fn audit_settled_send(&self, event: &OutboxEvent) {
        let key = event.key();
        let settled = lock(&self.asked).observe(event, || {
            self.store
                .outbox_current(key)
                .ok()
                .flatten()
                .map(|entry| entry.text)
        });
        let Some(Settled {
            key,
            asked,
            unconfirmed,
        }) = settled
        else {
            return;
        };
        let action = match asked.kind {
            ReplyKind::Public => AuditAction::Reply,
            ReplyKind::Dm => AuditAction::Dm,
        };
        let detail = if unconfirmed {
            format!("{} (unconfirmed: it may be on X)", asked.text)
        } else {
            asked.text
        };
        // Written here, before the event goes out: whoever hears that the send is on X can read
        // the entry (one small store write per settled send; sled does not sync it here).
        let handle = match self.store.account(key.account_id) {
            Ok(Some(a)) => a.handle(),
            _ => key.account_id.to_string(),
        };
        let entry = AuditEntry::new(&asked.person, action, Utc::now(), detail).mention(key, handle);
        if let Err(e) = self.store.append_audit(entry) {
            tracing::warn!("could not record a send in the audit log: {e}");
        }
    }

    /// The live stream's state (and a standing problem, if any) as events, for a client that
    /// has just attached.
    pub fn live_events(&self) -> Vec<ServiceEvent> {
        let mut events: Vec<ServiceEvent> = self
            .live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .events()
            .into_iter()
            .map(ServiceEvent::Sync)
            .collect();
        if let Some(notice) = self
            .standing_notice
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
        {
            events.push(ServiceEvent::Sync(notice));
        }
        events
    }

    /// Tells every client `notice` now, and each client that attaches later until it is
    /// cleared (`None`: the problem is over).
    pub fn set_standing_notice(&self, notice: Option<SyncEvent>) {
        *self
            .standing_notice
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = notice.clone();
        if let Some(notice) = notice {
            self.publish(ServiceEvent::Sync(notice));
        }
    }

    /// `person` has `key`'s composer open now: every client hears that they are replying
    /// (the first time), until they leave or stop touching it. Who is replying now.
    pub fn touch_presence(&self, key: MentionKey, person: &str) -> Vec<Replying> {
        let now = Utc::now();
        let (changes, who) = {
            let mut presence = lock(&self.presence);
            let changes = presence.touch(key, person, now);
            (changes, presence.who(key, now))
        };
        self.announce_presence(changes, now);
        // Every touch, not only the first: the others' copies expire unless refreshed.
        self.share_presence(key, person, true);
        who
    }

    /// `person` closed `key`'s composer, or sent: they are no longer replying.
    pub fn leave_presence(&self, key: MentionKey, person: &str) {
        // Told to the others even when this service did not show them (they may have touched
        // it through another service).
        self.share_presence(key, person, false);
        if lock(&self.presence).leave(key, person) {
            let change = PresenceChange {
                key,
                person: person.to_string(),
                replying: false,
            };
            self.announce_presence(vec![change], Utc::now());
        }
    }

    /// Makes presence last `ttl` after each touch from now on (forgetting who is replying now).
    pub fn set_presence_ttl(&self, ttl: chrono::Duration) {
        *lock(&self.presence) = Presence::with_ttl(ttl);
    }

    /// How long presence lasts after a touch.
    pub fn presence_ttl(&self) -> chrono::Duration {
        lock(&self.presence).ttl()
    }

    /// Everyone replying to anything now: (mention, person).
    pub fn everyone_replying(&self) -> Vec<(MentionKey, String)> {
        lock(&self.presence).everyone(Utc::now())
    }

    /// Who is replying to `key` now.
    pub fn replying(&self, key: MentionKey) -> Vec<Replying> {
        lock(&self.presence).who(key, Utc::now())
    }

    /// Forgets the presences that ran out, telling every client (the service does this every
    /// few seconds).
    pub fn expire_presence(&self) {
        let now = Utc::now();
        let changes = lock(&self.presence).expire(now);
        self.announce_presence(changes, now);
    }

    fn announce_presence(&self, changes: Vec<PresenceChange>, at: DateTime<Utc>) {
        for change in changes {
            // The handle is for people to read; an account removed meanwhile shows its id.
            let handle = match self.store.account(change.key.account_id) {
                Ok(Some(a)) => a.handle(),
                _ => change.key.account_id.to_string(),
            };
            self.publish(ServiceEvent::Team(TeamEvent::Replying {
                key: change.key,
                handle,
                person: change.person,
                replying: change.replying,
                at,
            }));
        }
    }

    /// When the engine last finished a poll of any account (since this service started).
    pub fn last_poll_at(&self) -> Option<DateTime<Utc>> {
        *self.last_poll_at.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Asks the service to end (the `stop` request, a signal, the data directory gone).
    pub fn request_stop(&self) {
        let _ = self.stop.send(true);
    }

    /// Resolves once a stop was asked for.
    pub async fn stopped(&self) {
        let mut rx = self.stop.subscribe();
        let _ = rx.wait_for(|stop| *stop).await;
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
