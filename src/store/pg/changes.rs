//! Changes reach every service on the database at once (issue 16): each write that a dashboard
//! or SSE client would want to see also sends a PostgreSQL notification on [`CHANNEL`], inside
//! the write's own transaction. PostgreSQL delivers a notification only when its transaction
//! commits, and in commit order, so a listener never hears of a change it cannot yet read, nor
//! of one that was rolled back.
//!
//! A notification names what changed, not its contents (a payload is limited to 8000 bytes,
//! and one page may hold a hundred posts): the listener reads the rows it needs.
//!
//! [`ChangeListener`] is the receiving end: its own connection, `LISTEN`, and a bounded wait
//! for the next change. A payload it cannot read (another program on the channel, a newer
//! perch) is skipped with a warning, never a panic.

use std::time::Duration;

use postgres::fallible_iterator::FallibleIterator;
use postgres::{Client, GenericClient};
use serde::{Deserialize, Serialize};

use super::{connect_client, database, detail, redacted};
use crate::domain::AccountId;
use crate::store::Result;

/// The notification channel perch uses.
pub const CHANNEL: &str = "perch_changes";

/// What changed: enough to know what to read again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    /// An account was added or changed.
    Account { account: AccountId },
    /// An account was just logged in (added, or authorized again) by a command or service that
    /// does not sync: the leader loads it and polls it now.
    LoggedIn { account: AccountId },
    /// A page committed `inserted` new mentions of `account`.
    Mentions { account: AccountId, inserted: u64 },
    /// One mention changed (its status, its sender filled in).
    Mention { account: AccountId, tweet: u64 },
    /// A send of a mention changed state (queued, claimed, sent, failed, ...).
    Outbox {
        account: AccountId,
        tweet: u64,
        seq: u64,
    },
    /// A mention was assigned to `person` (`None`: to nobody) by `by`.
    Assigned {
        account: AccountId,
        tweet: u64,
        handle: String,
        person: Option<String>,
        by: String,
        at: chrono::DateTime<chrono::Utc>,
    },
    /// `person` opened (touched) or closed a mention's composer on the service `origin`
    /// (presence, `service/presence.rs`). Not a row: presence lives in each service's memory
    /// and expires there unless touched again, so a service that vanished stops showing its
    /// people everywhere.
    Presence {
        account: AccountId,
        tweet: u64,
        person: String,
        replying: bool,
        origin: uuid::Uuid,
    },
}

/// Sends `change` on [`CHANNEL`] inside the caller's transaction (delivered when it commits).
pub(super) fn notify(client: &mut impl GenericClient, change: &Change, target: &str) -> Result<()> {
    let payload = serde_json::to_string(change)
        .map_err(|e| database(target, format!("encoding a change notification: {e}")))?;
    client
        .execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &payload])
        .map_err(|e| {
            database(
                target,
                format!("sending a change notification: {}", detail(&e)),
            )
        })?;
    Ok(())
}

/// One service's subscription to the changes every service makes.
pub struct ChangeListener {
    client: Client,
    target: String,
}

impl std::fmt::Debug for ChangeListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChangeListener")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl ChangeListener {
    /// Connects to `url` and listens. Changes committed from now on are heard; earlier ones
    /// are not (a service starting reads the state itself).
    pub fn connect(url: &str) -> Result<ChangeListener> {
        let target = redacted(url);
        let mut client = connect_client(url, &target)?;
        client
            .batch_execute(&format!("LISTEN {CHANNEL}"))
            .map_err(|e| database(&target, format!("listening for changes: {}", detail(&e))))?;
        Ok(ChangeListener { client, target })
    }

    /// The next change, waiting at most `timeout`: `Ok(None)` when none came in time. An error
    /// means the connection is gone; connect again (and read the state again: changes made
    /// meanwhile were not heard).
    pub fn next(&mut self, timeout: Duration) -> Result<Option<Change>> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let mut notifications = self.client.notifications();
            let mut waiting = notifications.timeout_iter(left);
            let next = waiting.next();
            drop(waiting);
            drop(notifications);
            let Some(n) = next.map_err(|e| {
                database(&self.target, format!("waiting for changes: {}", detail(&e)))
            })?
            else {
                // The iterator also ends at once on a closed connection: that is not "nothing
                // came", and a caller looping on it would spin.
                if self.client.is_closed() {
                    return Err(database(
                        &self.target,
                        "the connection listening for changes closed".to_string(),
                    ));
                }
                return Ok(None);
            };
            if n.channel() != CHANNEL {
                continue;
            }
            match serde_json::from_str::<Change>(n.payload()) {
                Ok(change) => return Ok(Some(change)),
                Err(e) => {
                    tracing::warn!("skipping a change notification perch cannot read: {e}");
                    if left.is_zero() {
                        return Ok(None);
                    }
                }
            }
        }
    }
}
