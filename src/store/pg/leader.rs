//! Which of several perch services on one database is the sync leader (issue 16): the one that
//! polls, holds the X stream and runs the outbox worker. The others serve the API and dashboards.
//!
//! Leadership is a PostgreSQL session-level advisory lock ([`LEADER_LOCK`]) held on a connection
//! of its own. PostgreSQL frees it the moment that session ends, so a leader that dies hands over
//! without anyone having to notice a missed heartbeat:
//! - killed (`kill -9`, a crash): the kernel closes its socket, the server ends the session at
//!   once, and the next follower to try ([`TRY_INTERVAL`]) takes the lock;
//! - its machine gone, or the network between: nothing closes the socket, so the session sets the
//!   server's TCP keepalives and user timeout for it ([`SERVER_DEAD_PEER`], about 10 s), after
//!   which the server ends it. Takeover: at most about 10 s + one try interval, inside the 15 s
//!   the issue allows.
//!
//! A leader checks its own connection on every tick ([`CHECK_TIMEOUT`]): when it cannot reach
//! the database it steps down at once, which is before the server frees the lock for another, so
//! two leaders never act at the same time because of a network cut. (Sends are claimed with row
//! locks besides, `outbox.rs`, so even then one reply is one post.)
//!
//! The lock is the truth. The `service_leader` row (schema version 3) only names the holder for
//! `perch service status`, and it is read joined with `pg_locks`: a row left by a leader whose
//! session is gone names nobody.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use postgres::Client;
use serde::Serialize;

use super::{DeadPeer, column, connect_client_with, database, detail, redacted};
use crate::store::Result;

/// The advisory lock key of the sync leader ("perch" and 2 in ASCII; the migration lock is 1).
pub const LEADER_LOCK: i64 = 0x7065_7263_6802;
/// How often a follower tries to take the lock, and a leader checks it still can reach the
/// database.
pub const TRY_INTERVAL: Duration = Duration::from_secs(2);
/// How long a leader's check of its connection may take before it steps down.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(3);
/// How long the server keeps the session of a leader that stopped answering (its machine or
/// network gone): keepalive probes after 4 s idle, every 2 s, 3 missed end it, and no sent
/// data may stay unacknowledged longer than 10 s.
pub const SERVER_DEAD_PEER: Duration = Duration::from_secs(10);

/// Who a service is, as the leader row names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// The machine's host name.
    pub host: String,
    /// The service's process id.
    pub pid: u32,
}

impl Candidate {
    /// This process on this machine.
    pub fn this_process() -> Candidate {
        Candidate {
            host: host_name(),
            pid: std::process::id(),
        }
    }
}

/// The service holding the leader lock, as its row names it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LeaderInfo {
    pub host: String,
    pub pid: u32,
    pub since: DateTime<Utc>,
}

/// What a service is right now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum Role {
    /// This service holds the lock: it syncs and sends.
    Leader { since: DateTime<Utc> },
    /// Another service leads (`leader`, when one does), or this one could not reach the
    /// database (`problem`). Either way it must not sync or send.
    Follower {
        leader: Option<LeaderInfo>,
        problem: Option<String>,
    },
}

impl Role {
    pub fn is_leader(&self) -> bool {
        matches!(self, Role::Leader { .. })
    }

    /// "leader" or "follower", as `perch service status --json` says it.
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Leader { .. } => "leader",
            Role::Follower { .. } => "follower",
        }
    }
}

/// One service's part in the election: its own connection, and whether it holds the lock.
pub struct Election {
    url: String,
    target: String,
    me: Candidate,
    client: Option<Client>,
    leading_since: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for Election {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the URL: it may hold a password.
        f.debug_struct("Election")
            .field("target", &self.target)
            .field("me", &self.me)
            .field("leading_since", &self.leading_since)
            .finish_non_exhaustive()
    }
}

impl Election {
    /// Joins the election on the database at `url` (already migrated by [`super::PgStore`]).
    /// Nothing is connected until the first [`Election::tick`].
    pub fn new(url: &str, me: Candidate) -> Election {
        Election {
            url: url.to_string(),
            target: redacted(url),
            me,
            client: None,
            leading_since: None,
        }
    }

    /// One round: a leader checks it still holds its session (stepping down at once if not); a
    /// follower tries to take the lock, and otherwise reads who holds it. Bounded by the connect
    /// timeout, the check timeout, and the connection's dead-peer limits (about 10 s).
    pub fn tick(&mut self) -> Role {
        match self.try_tick() {
            Ok(role) => role,
            Err(e) => {
                // The connection is unusable or the database said no: this service does not
                // lead. Dropping the client ends the session, so a lock it held is freed.
                if self.leading_since.take().is_some() {
                    tracing::warn!("stepping down as sync leader: {e}");
                }
                self.client = None;
                Role::Follower {
                    leader: None,
                    problem: Some(e.to_string()),
                }
            }
        }
    }

    /// Gives up the lock (a service stopping): the next follower to try takes over at once.
    pub fn step_down(&mut self) {
        self.leading_since = None;
        self.client = None;
    }

    fn try_tick(&mut self) -> Result<Role> {
        if let Some(client) = self.client.as_mut()
            && client.is_valid(CHECK_TIMEOUT).is_err()
        {
            // Follower at once, in this tick: reconnecting may take the whole connect timeout,
            // and a leader must have stopped before the server frees its lock for another
            // (SERVER_DEAD_PEER). The next tick connects again.
            self.client = None;
            let was_leading = self.leading_since.take().is_some();
            if was_leading {
                tracing::warn!(
                    "stepping down as sync leader: the database at {} stopped answering",
                    self.target
                );
            }
            return Ok(Role::Follower {
                leader: None,
                problem: Some(format!(
                    "the database at {} did not answer within {} s",
                    self.target,
                    CHECK_TIMEOUT.as_secs()
                )),
            });
        }
        let target = self.target.clone();
        if self.client.is_none() {
            self.client = Some(election_client(&self.url, &target)?);
        }
        let Some(client) = self.client.as_mut() else {
            return Err(database(&target, "no connection".to_string()));
        };
        if let Some(since) = self.leading_since {
            return Ok(Role::Leader { since });
        }
        let row = client
            .query_one("SELECT pg_try_advisory_lock($1)", &[&LEADER_LOCK])
            .map_err(|e| database(&target, detail(&e)))?;
        if column::<bool>(&row, 0, &target)? {
            let pid = i32::try_from(self.me.pid).unwrap_or(i32::MAX);
            let row = client
                .query_one(
                    "INSERT INTO service_leader (id, host, pid, backend_pid, since)
                     VALUES (1, $1, $2, pg_backend_pid(), now())
                     ON CONFLICT (id) DO UPDATE SET host = EXCLUDED.host, pid = EXCLUDED.pid,
                         backend_pid = EXCLUDED.backend_pid, since = EXCLUDED.since
                     RETURNING since",
                    &[&self.me.host, &pid],
                )
                .map_err(|e| database(&target, format!("recording the leader: {}", detail(&e))))?;
            let since: DateTime<Utc> = column(&row, 0, &target)?;
            tracing::info!(host = %self.me.host, pid = self.me.pid, "this service is now the sync leader");
            self.leading_since = Some(since);
            return Ok(Role::Leader { since });
        }
        let leader = current_leader(client, &target)?;
        Ok(Role::Follower {
            leader,
            problem: None,
        })
    }
}

/// The service holding the leader lock, if any holds it.
pub fn current_leader(client: &mut Client, target: &str) -> Result<Option<LeaderInfo>> {
    // pg_locks shows a bigint advisory key as its high and low 32 bits, objsubid 1.
    let rows = client
        .query(
            "SELECT s.host, s.pid, s.since FROM service_leader s
             JOIN pg_locks l ON l.pid = s.backend_pid
             WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
               AND l.classid::bigint = ($1::bigint >> 32)
               AND l.objid::bigint = ($1::bigint & 4294967295)",
            &[&LEADER_LOCK],
        )
        .map_err(|e| database(target, format!("reading the leader: {}", detail(&e))))?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    let pid: i32 = column(row, "pid", target)?;
    Ok(Some(LeaderInfo {
        host: column(row, "host", target)?,
        pid: u32::try_from(pid).unwrap_or(0),
        since: column(row, "since", target)?,
    }))
}

/// The election's own connection: the store's settings, plus the server-side dead-peer limits
/// that free the lock of a leader whose machine vanished, and no idle limits that would end a
/// healthy leader's session (it is idle between ticks).
fn election_client(url: &str, target: &str) -> Result<Client> {
    // This side too gives up on a silent server within about 10 s, so no tick (and no
    // `ElectionHandle::stop`) waits on a vanished network for the kernel's minutes.
    let dead = DeadPeer {
        idle: Duration::from_secs(4),
        interval: Duration::from_secs(2),
        retries: 3,
        user_timeout: SERVER_DEAD_PEER,
    };
    let mut client = connect_client_with(url, target, dead)?;
    let keepalive_idle = 4;
    let keepalive_interval = 2;
    let keepalive_count = 3;
    let user_timeout_ms = SERVER_DEAD_PEER.as_millis();
    client
        .batch_execute(&format!(
            "SET tcp_keepalives_idle = {keepalive_idle};
             SET tcp_keepalives_interval = {keepalive_interval};
             SET tcp_keepalives_count = {keepalive_count};
             SET tcp_user_timeout = {user_timeout_ms};
             SET idle_session_timeout = 0;
             SET idle_in_transaction_session_timeout = 0;
             SET application_name = 'perch election'"
        ))
        .map_err(|e| {
            database(
                target,
                format!("setting up the election connection: {}", detail(&e)),
            )
        })?;
    Ok(client)
}

/// Runs `election` on a thread of its own, a tick every [`TRY_INTERVAL`], publishing the role
/// to the returned watch (only when it changes). It stops, giving up the lock, when every
/// receiver is dropped or [`ElectionHandle::stop`] is called.
pub fn spawn(mut election: Election) -> std::io::Result<ElectionHandle> {
    let first = election.tick();
    let (tx, rx) = tokio::sync::watch::channel(first);
    let stop = Arc::new(AtomicBool::new(false));
    let stopping = stop.clone();
    let thread = std::thread::Builder::new()
        .name("perch-election".to_string())
        .spawn(move || {
            let step = Duration::from_millis(100);
            loop {
                let mut waited = Duration::ZERO;
                while waited < TRY_INTERVAL {
                    if stopping.load(Ordering::Relaxed) || tx.is_closed() {
                        election.step_down();
                        return;
                    }
                    std::thread::sleep(step);
                    waited += step;
                }
                let role = election.tick();
                tx.send_if_modified(|current| {
                    if *current == role {
                        false
                    } else {
                        *current = role;
                        true
                    }
                });
            }
        })?;
    Ok(ElectionHandle {
        role: rx,
        stop,
        thread: Some(thread),
    })
}

/// A running election: its role, and stopping it.
pub struct ElectionHandle {
    pub role: tokio::sync::watch::Receiver<Role>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ElectionHandle {
    /// Steps down and waits for the election thread to end (at most one tick).
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for ElectionHandle {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// This machine's host name, or "unknown host" when the system will not say.
pub fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at most that many bytes.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "unknown host".to_string();
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    match std::str::from_utf8(&buf[..end]) {
        Ok(name) if !name.is_empty() => name.to_string(),
        _ => "unknown host".to_string(),
    }
}
