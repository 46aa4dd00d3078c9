//! The service's side of notifications: desktop notifications and the `on_new_mentions` hook,
//! which work whether or not a dashboard is open (the bell and the title are the dashboard's).
//!
//! It listens to the hub's events like any client. `PageCommitted` says only how many mentions a
//! page stored, so the new mentions are read back from the store (the same search as the REST
//! API's event stream: those stored since this notifier last looked). They gather into bursts
//! (`notify::burst`), and when a burst closes it becomes one desktop notification and one hook
//! run for its account, unless it is quiet hours (local time).
//!
//! An account's first sync (its backfill of up to 800 older mentions) notifies nothing: those
//! mentions are not news. Which accounts have synced is known from the store when the notifier
//! starts and from the events after that (the `AccountUpdated` that records an account's first
//! `last_synced_at` comes after that poll's `PageCommitted`s), never by reading the account when
//! a page's event is handled: by then the poll may have finished.
//!
//! On PostgreSQL (issue 16) only the sync leader's notifier acts: the others hear the same pages
//! through the database, and a hook run once per service would post each mention several times.
//!
//! Nothing here can hold up the engine: events come from the broadcast (a notifier that falls
//! behind misses some, and logs it), store reads are in `spawn_blocking`, desktop sends and hooks
//! run on tasks of their own behind a bounded, merging queue.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;

use super::hub::{Hub, ServiceEvent};
use crate::api::rest::shapes::MentionOut;
use crate::domain::{Account, AccountId, Mention};
use crate::notify::desktop::Desktop;
use crate::notify::hook::{self, FailureLatch, HookJob, HookNews, HookQueue, Queued};
use crate::notify::{Burst, Bursts, NotifySettings, message};
use crate::sync::SyncEvent;

/// Starts the notifier if any account has a desktop notification or a hook to run; `None`
/// otherwise (nothing to do: no task at all).
pub(crate) fn spawn(hub: Arc<Hub>) -> Option<tokio::task::JoinHandle<()>> {
    let settings = hub.config.notify.clone();
    let anything = settings.desktop
        || settings.on_new_mentions.is_some()
        || settings
            .accounts
            .values()
            .any(|a| a.desktop == Some(true) || a.on_new_mentions.is_some());
    if !anything {
        return None;
    }
    // Read before subscribing: an account that finishes its first sync in between is taken for
    // unsynced until its next poll (one poll not notified), never the other way round (a
    // backfill notified).
    let synced: HashSet<AccountId> = match hub.store.accounts() {
        Ok(accounts) => accounts
            .into_iter()
            .filter(|a| a.last_synced_at.is_some())
            .map(|a| a.id)
            .collect(),
        Err(e) => {
            tracing::warn!("notifications: cannot read the accounts: {e}");
            HashSet::new()
        }
    };
    let events = hub.subscribe();
    Some(tokio::spawn(run(hub, settings, synced, events)))
}

async fn run(
    hub: Arc<Hub>,
    settings: NotifySettings,
    mut synced: HashSet<AccountId>,
    mut events: tokio::sync::broadcast::Receiver<ServiceEvent>,
) {
    let origin = Instant::now();
    let started_at = Utc::now();
    // Per account: the newest `created_at` (store time) already taken into a burst.
    let mut seen: HashMap<AccountId, DateTime<Utc>> = HashMap::new();
    let mut bursts = Bursts::default();
    let desktop = Desktop::default();
    let queue = Arc::new(HookQueue::default());
    let worker = AbortOnDrop(tokio::spawn(hook_worker(
        hub.clone(),
        queue.clone(),
        settings.hook_timeout,
    )));
    tracing::info!(
        desktop = settings.desktop,
        hook = settings.on_new_mentions.is_some(),
        quiet = %settings.quiet.map(|q| q.to_string()).unwrap_or_default(),
        "notifications on"
    );
    loop {
        let wake = bursts.next_due().map(|due| origin + due);
        tokio::select! {
            event = events.recv() => match event {
                Ok(ServiceEvent::Sync(SyncEvent::PageCommitted { account_id, inserted })) => {
                    // On PostgreSQL every service hears every page; only the leader, whose
                    // engine committed it, notifies and runs the hook, so a team's hook runs
                    // once per mention, not once per service.
                    if hub.election.as_ref().is_some_and(|role| !role.borrow().is_leader()) {
                        continue;
                    }
                    let since = *seen.get(&account_id).unwrap_or(&started_at);
                    let Some((account, found)) = read_new(&hub, account_id, since, inserted).await
                    else {
                        continue;
                    };
                    if let Some(newest) = found.iter().map(|m| m.created_at).max() {
                        seen.insert(account_id, newest.max(since));
                    }
                    if !synced.contains(&account_id) {
                        tracing::debug!(account = %account.handle(), inserted, "first sync of the account: not notified");
                        continue;
                    }
                    // The bell is the dashboard's: here only desktop notifications and hooks.
                    let channels = settings.for_account(&account.twitter_username);
                    if !channels.desktop && channels.hook.is_none() {
                        continue;
                    }
                    // A burst of this account that is over goes out first, so these mentions
                    // open a new one rather than stretch it.
                    for burst in bursts.take_due(origin.elapsed()) {
                        dispatch(&hub, &settings, &desktop, &queue, burst).await;
                    }
                    bursts.add(account_id, inserted, found, origin.elapsed());
                }
                Ok(ServiceEvent::Sync(SyncEvent::AccountUpdated(account))) => {
                    if account.last_synced_at.is_some() {
                        synced.insert(account.id);
                    }
                }
                Ok(ServiceEvent::Sync(SyncEvent::AccountRemoved { account_id })) => {
                    bursts.forget(account_id);
                    seen.remove(&account_id);
                    synced.remove(&account_id);
                }
                Ok(_) => {}
                Err(RecvError::Lagged(missed)) => {
                    tracing::warn!("notifications fell {missed} events behind the sync engine: some new mentions may not be notified");
                }
                Err(RecvError::Closed) => break,
            },
            _ = sleep_until(wake), if wake.is_some() => {}
        }
        for burst in bursts.take_due(origin.elapsed()) {
            dispatch(&hub, &settings, &desktop, &queue, burst).await;
        }
    }
    drop(worker);
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The account and its mentions stored after `since` (at most `inserted`), off the async
/// threads. `None` when the account is gone or the store cannot be read (logged).
async fn read_new(
    hub: &Hub,
    account_id: AccountId,
    since: DateTime<Utc>,
    inserted: usize,
) -> Option<(Account, Vec<Mention>)> {
    let store = hub.store.clone();
    let read = tokio::task::spawn_blocking(move || {
        let account = store.account(account_id)?;
        let found = crate::api::rest::new_mentions(store.as_ref(), account_id, since, inserted)?;
        Ok::<_, crate::store::StoreError>(account.map(|a| (a, found)))
    })
    .await;
    match read {
        Ok(Ok(found)) => found,
        Ok(Err(e)) => {
            tracing::warn!("notifications: cannot read the new mentions: {e}");
            None
        }
        Err(e) => {
            tracing::warn!("notifications: the store task failed: {e}");
            None
        }
    }
}

/// One closed burst: a desktop notification and a hook run for its account, as configured.
async fn dispatch(
    hub: &Hub,
    settings: &NotifySettings,
    desktop: &Desktop,
    queue: &HookQueue,
    burst: Burst,
) {
    let store = hub.store.clone();
    let id = burst.account_id;
    let account = match tokio::task::spawn_blocking(move || store.account(id)).await {
        Ok(Ok(Some(account))) => account,
        _ => return,
    };
    let channels = settings.for_account(&account.twitter_username);
    if settings.is_quiet_now() {
        // Debug level: in quiet hours this would be a line per burst all night.
        tracing::debug!(
            account = %account.handle(),
            count = burst.count,
            "quiet hours: new mentions not notified"
        );
        return;
    }
    if channels.desktop {
        let (summary, body) = message::desktop(&account.twitter_username, &burst);
        desktop.send(summary, body);
    }
    if let Some(command) = channels.hook {
        let queued = queue.push(HookJob {
            command,
            account_username: account.twitter_username.clone(),
            burst,
        });
        match queued {
            Queued::Added => {}
            Queued::Merged => tracing::debug!(
                account = %account.handle(),
                "the on_new_mentions hook is behind: this burst joins the one already waiting for the account"
            ),
            Queued::DroppedOldest { account_username } => tracing::warn!(
                "the on_new_mentions hook is behind ({} bursts waiting): the waiting burst of @{account_username} was dropped",
                hook::HOOK_QUEUE
            ),
        }
    }
}

/// Runs the hooks one at a time; the first failure (and the recovery) is told to every client.
async fn hook_worker(hub: Arc<Hub>, queue: Arc<HookQueue>, timeout: std::time::Duration) {
    let mut latch = FailureLatch::default();
    loop {
        let job = queue.next().await;
        let document = HookDocument::new(&job.account_username, &job.burst);
        let stdin = serde_json::to_vec_pretty(&document).unwrap_or_default();
        let outcome = hook::run_job(&job, stdin, timeout).await;
        let news = latch.observe(&outcome);
        let notice = |message: String| SyncEvent::Notice {
            account_id: Some(job.burst.account_id),
            message,
        };
        match news {
            None => {}
            Some(HookNews::Failed(problem)) => {
                hook::log_failure(&job, &outcome);
                // Standing: a dashboard opened later hears of it too (once, as it attaches).
                hub.set_standing_notice(Some(notice(format!(
                    "the on_new_mentions hook failed for @{} ({problem}); perch keeps running it for new mentions and says so once it succeeds (details in the log)",
                    job.account_username
                ))));
            }
            Some(HookNews::Recovered) => {
                tracing::info!("the on_new_mentions hook works again");
                hub.set_standing_notice(None);
                hub.publish(ServiceEvent::Sync(notice(
                    "the on_new_mentions hook works again".to_string(),
                )));
            }
        }
    }
}

/// The JSON document a hook reads on stdin.
#[derive(Debug, serde::Serialize)]
struct HookDocument {
    /// `"@handle"`.
    account: String,
    account_id: crate::domain::AccountId,
    /// How many new mentions the burst had (may be more than `mentions` holds).
    count: usize,
    /// The newest of them, newest first, in the REST API's shape.
    mentions: Vec<MentionOut>,
}

impl HookDocument {
    fn new(account_username: &str, burst: &Burst) -> HookDocument {
        HookDocument {
            account: message::handle(account_username),
            account_id: burst.account_id,
            count: burst.count,
            mentions: burst
                .mentions
                .iter()
                .take(message::HOOK_MAX_IDS)
                .map(|m| MentionOut::new(m, None))
                .collect(),
        }
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
