//! The dashboard's session with the service, client side.
//!
//! [`Session`] is one upgraded connection: `call` writes a request frame and blocks for its reply
//! (bounded by [`REPLY_TIMEOUT`]); a reader thread hands replies to their callers and events to
//! the dashboard's loop. `update` reads through it synchronously, as it read the store before: a
//! reply over a local socket takes tens of microseconds.
//!
//! [`Link`] is what the dashboard holds: the current session, replaced when the service
//! restarts. While there is none, every call fails at once with "reconnecting…" (never blocks),
//! and the loop hears [`Incoming::Lost`] and later [`Incoming::Restored`].

use std::collections::{BTreeMap, HashMap};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;

use crate::app::{FeedSource, StoreWrites};
use crate::cost_report::{AccountCostStats, Totals};
use crate::costs::Pricing;
use crate::domain::{Account, AccountId, AccountStats, Mention, MentionKey, MentionStatus, Tokens};
use crate::outbox::OutboxCommand;
use crate::protocol::{self, Request, RequestFrame, ServerFrame};
use crate::service::ServiceEvent;
use crate::store::{
    Draft, FeedFilter, FeedPos, OutboxEntry, SearchPage, StoreError, UndoAction, UndoStep,
};
use crate::sync::Command;

/// The longest a request waits for its reply before the service counts as not answering.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// What the dashboard's loop hears from its connection.
#[derive(Debug)]
pub enum Incoming {
    Event(Box<ServiceEvent>),
    /// The session ended (the service stopped or restarted): the dashboard shows
    /// "reconnecting…".
    Lost(String),
    /// Connected again: the dashboard re-reads what it shows.
    Restored,
}

/// What the dashboard's executor does through the service, beyond reads and store writes.
pub trait Connection: FeedSource + StoreWrites + Send + Sync {
    /// Hands a command to the outbox (a `Send` makes this connection its owner).
    fn outbox(&self, command: OutboxCommand) -> Result<(), String>;
    /// Hands a command to the sync engine.
    fn sync(&self, command: Command) -> Result<(), String>;
    /// Stores the account a login produced (the service checks who the tokens belong to).
    fn complete_login(
        &self,
        tokens: Tokens,
        expected: Option<AccountId>,
    ) -> Result<(Account, bool), String>;
}

type Waiter = std::sync::mpsc::Sender<Result<serde_json::Value, String>>;

/// One upgraded connection to the service.
pub struct Session {
    writer: Mutex<UnixStream>,
    pending: Arc<Mutex<HashMap<u64, Waiter>>>,
    next_id: AtomicU64,
    alive: Arc<AtomicBool>,
}

impl Session {
    /// Connects to the service on `socket`. Events go to `events`; `on_end` runs (on the reader
    /// thread) when the session ends.
    pub fn connect(
        socket: &Path,
        events: mpsc::Sender<Incoming>,
        on_end: impl FnOnce(String) + Send + 'static,
    ) -> std::io::Result<Arc<Session>> {
        let stream = super::upgrade::open(socket, "/internal/v1/session", protocol::UPGRADE)?;
        let reader = stream.try_clone()?;
        let session = Arc::new(Session {
            writer: Mutex::new(stream),
            pending: Arc::default(),
            next_id: AtomicU64::new(1),
            alive: Arc::new(AtomicBool::new(true)),
        });
        let (pending, alive) = (session.pending.clone(), session.alive.clone());
        std::thread::Builder::new()
            .name("perch-session".into())
            .spawn(move || {
                let why = read_loop(reader, &pending, &events);
                alive.store(false, Ordering::SeqCst);
                for (_, waiter) in lock(&pending).drain() {
                    let _ = waiter.send(Err(why.clone()));
                }
                on_end(why);
            })?;
        Ok(session)
    }

    pub fn is_alive(&self) -> bool {
        self.alive.load(Ordering::SeqCst)
    }

    /// Sends `request` and waits for its reply.
    pub fn call<T: DeserializeOwned>(&self, request: Request) -> Result<T, String> {
        if !self.is_alive() {
            return Err(RECONNECTING.into());
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = std::sync::mpsc::channel();
        lock(&self.pending).insert(id, tx);
        let body = serde_json::to_vec(&RequestFrame { id, request })
            .map_err(|e| format!("cannot encode a request: {e}"))?;
        let written = {
            let mut writer = lock(&self.writer);
            protocol::write_frame(&mut *writer, &body)
        };
        if let Err(e) = written {
            lock(&self.pending).remove(&id);
            let _ = lock(&self.writer).shutdown(std::net::Shutdown::Both);
            return Err(format!("lost the perch service ({e}); reconnecting…"));
        }
        let value = match rx.recv_timeout(REPLY_TIMEOUT) {
            Ok(result) => result?,
            Err(_) => {
                lock(&self.pending).remove(&id);
                return Err(format!(
                    "the perch service did not answer within {} s",
                    REPLY_TIMEOUT.as_secs()
                ));
            }
        };
        serde_json::from_value(value)
            .map_err(|e| format!("the service's answer was unreadable: {e}"))
    }

    /// Ends the session (the service abandons the sends it owned and X has not answered).
    pub fn close(&self) {
        let _ = lock(&self.writer).shutdown(std::net::Shutdown::Both);
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.close();
    }
}

pub const RECONNECTING: &str = "reconnecting to the perch service…";

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Reads frames until the connection ends; returns why it ended.
fn read_loop(
    mut reader: UnixStream,
    pending: &Mutex<HashMap<u64, Waiter>>,
    events: &mpsc::Sender<Incoming>,
) -> String {
    loop {
        let body = match protocol::read_frame(&mut reader) {
            Ok(Some(body)) => body,
            Ok(None) => return "the perch service closed the connection".into(),
            Err(e) => return format!("lost the perch service: {e}"),
        };
        let frame: ServerFrame = match serde_json::from_slice(&body) {
            Ok(frame) => frame,
            Err(e) => return format!("the perch service sent something unreadable: {e}"),
        };
        match frame {
            ServerFrame::Reply { id, result } => {
                if let Some(waiter) = lock(pending).remove(&id) {
                    let _ = waiter.send(result);
                }
            }
            ServerFrame::Event { event } => {
                // Never block here: a caller waiting for a reply needs this thread to read it.
                // A dashboard thousands of events behind re-reads everything on reconnect.
                match events.try_send(Incoming::Event(Box::new(event))) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        return "the dashboard fell behind the service's events".into();
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => {
                        return "the dashboard stopped listening".into();
                    }
                }
            }
            ServerFrame::Lagged => {
                return "the dashboard fell behind the service's events".into();
            }
        }
    }
}

/// Something that starts the service again when it is gone (the dashboard's auto-start).
pub type Restarter = Box<dyn Fn() -> Result<(), String> + Send + Sync>;

/// The dashboard's connection: the current session, reconnected when it ends.
pub struct Link {
    socket: PathBuf,
    current: RwLock<Option<Arc<Session>>>,
    events: mpsc::Sender<Incoming>,
    restarter: Option<Restarter>,
    /// Prices for the composer's cost line: the dashboard's own configuration, which is the
    /// service's (the dashboard starts it with its config and environment).
    pricing: Pricing,
    closed: AtomicBool,
}

/// How often a lost session is tried again, and after how many tries the service is restarted.
const RETRY_EVERY: Duration = Duration::from_millis(500);
const RESTART_AFTER_TRIES: u32 = 6;

impl Link {
    /// Connects to the service on `socket`.
    pub fn connect(
        socket: &Path,
        pricing: Pricing,
        restarter: Option<Restarter>,
    ) -> std::io::Result<(Arc<Link>, mpsc::Receiver<Incoming>)> {
        let (tx, rx) = mpsc::channel(4096);
        let link = Arc::new(Link {
            socket: socket.to_path_buf(),
            current: RwLock::new(None),
            events: tx,
            restarter,
            pricing,
            closed: AtomicBool::new(false),
        });
        let session = Link::open_session(&link)?;
        *link.current.write().unwrap_or_else(|p| p.into_inner()) = Some(session);
        Ok((link, rx))
    }

    fn open_session(link: &Arc<Link>) -> std::io::Result<Arc<Session>> {
        let weak: Weak<Link> = Arc::downgrade(link);
        Session::connect(&link.socket, link.events.clone(), move |why| {
            if let Some(link) = weak.upgrade() {
                Link::lost(link, why);
            }
        })
    }

    /// The session ended: say so, and try again in the background until it is back (or the
    /// dashboard has gone).
    fn lost(link: Arc<Link>, why: String) {
        if link.closed.load(Ordering::SeqCst) {
            return;
        }
        *link.current.write().unwrap_or_else(|p| p.into_inner()) = None;
        let _ = link.events.try_send(Incoming::Lost(why));
        let weak = Arc::downgrade(&link);
        drop(link);
        let _ = std::thread::Builder::new()
            .name("perch-reconnect".into())
            .spawn(move || {
                let mut tries = 0u32;
                loop {
                    std::thread::sleep(RETRY_EVERY);
                    let Some(link) = weak.upgrade() else { return };
                    if link.closed.load(Ordering::SeqCst) {
                        return;
                    }
                    tries += 1;
                    match Link::open_session(&link) {
                        Ok(session) => {
                            *link.current.write().unwrap_or_else(|p| p.into_inner()) =
                                Some(session);
                            let _ = link.events.try_send(Incoming::Restored);
                            return;
                        }
                        Err(_) if tries.is_multiple_of(RESTART_AFTER_TRIES) => {
                            if let Some(restart) = &link.restarter
                                && let Err(e) = restart()
                            {
                                let _ = link.events.try_send(Incoming::Lost(e));
                            }
                        }
                        Err(_) => {}
                    }
                }
            });
    }

    /// Ends the session for good (the dashboard quits).
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        if let Some(session) = self
            .current
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            session.close();
        }
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    fn call<T: DeserializeOwned>(&self, request: Request) -> Result<T, String> {
        let session = self
            .current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or_else(|| RECONNECTING.to_string())?;
        session.call(request)
    }

    fn read<T: DeserializeOwned>(&self, request: Request) -> Result<T, StoreError> {
        self.call(request).map_err(StoreError::Service)
    }
}

impl FeedSource for Link {
    fn mention(&self, key: MentionKey) -> Result<Option<Mention>, StoreError> {
        self.read(Request::Mention { key })
    }
    fn count(&self, filter: &FeedFilter) -> Result<u64, StoreError> {
        self.read(Request::Count {
            filter: filter.clone(),
        })
    }
    fn account(&self, id: AccountId) -> Result<Option<Account>, StoreError> {
        self.read(Request::Account { id })
    }
    fn accounts(&self) -> Result<Vec<Account>, StoreError> {
        self.read(Request::Accounts)
    }
    fn page_before(
        &self,
        filter: &FeedFilter,
        before: Option<FeedPos>,
        limit: usize,
    ) -> Result<Vec<Mention>, StoreError> {
        self.read(Request::PageBefore {
            filter: filter.clone(),
            before,
            limit,
        })
    }
    fn page_after(
        &self,
        filter: &FeedFilter,
        after: Option<FeedPos>,
        limit: usize,
    ) -> Result<Vec<Mention>, StoreError> {
        self.read(Request::PageAfter {
            filter: filter.clone(),
            after,
            limit,
        })
    }
    fn search_page(
        &self,
        filter: &FeedFilter,
        query: &str,
        after: Option<FeedPos>,
        limit: usize,
        max_scan: usize,
    ) -> Result<SearchPage, StoreError> {
        self.read(Request::SearchPage {
            filter: filter.clone(),
            query: query.to_string(),
            after,
            limit,
            max_scan,
        })
    }
    fn daily_counts(
        &self,
        account: AccountId,
        today: NaiveDate,
        days: u32,
    ) -> Result<Vec<(NaiveDate, u64)>, StoreError> {
        self.read(Request::DailyCounts {
            account,
            today,
            days,
        })
    }
    fn draft(&self, key: MentionKey) -> Result<Option<Draft>, StoreError> {
        self.read(Request::Draft { key })
    }
    fn last_undo_action(&self) -> Result<Option<UndoAction>, StoreError> {
        self.read(Request::LastUndoAction)
    }
    fn account_stats(
        &self,
        account: &Account,
        now: DateTime<Utc>,
    ) -> Result<AccountStats, StoreError> {
        self.read(Request::AccountStats {
            account: Box::new(account.clone()),
            now,
        })
    }
    fn account_cost_stats(
        &self,
        account: AccountId,
        now: DateTime<Utc>,
    ) -> Result<AccountCostStats, StoreError> {
        self.read(Request::AccountCostStats { account, now })
    }
    fn outbox_open(&self) -> Result<Vec<OutboxEntry>, StoreError> {
        self.read(Request::OutboxOpen)
    }
    fn outbox_current(&self, key: MentionKey) -> Result<Option<OutboxEntry>, StoreError> {
        self.read(Request::OutboxCurrent { key })
    }
    fn arrival(&self, key: MentionKey) -> Result<crate::domain::Arrival, StoreError> {
        self.read(Request::Arrival { key })
    }
    fn pricing(&self) -> Pricing {
        self.pricing.clone()
    }
    fn cost_today_and_month(
        &self,
        now: DateTime<Utc>,
    ) -> Result<(Totals, BTreeMap<AccountId, u64>), StoreError> {
        self.read(Request::CostTodayAndMonth { now })
    }
}

impl StoreWrites for Link {
    fn triage(
        &self,
        action: u64,
        keys: &[MentionKey],
        status: MentionStatus,
    ) -> Result<usize, StoreError> {
        self.read(Request::Triage {
            action,
            keys: keys.to_vec(),
            status,
        })
    }
    fn undo_step(&self, action: Option<u64>) -> Result<Option<UndoStep>, StoreError> {
        self.read(Request::UndoStep { action })
    }
    fn put_draft(&self, key: MentionKey, draft: &Draft) -> Result<(), StoreError> {
        self.read(Request::PutDraft {
            key,
            draft: draft.clone(),
        })
    }
    fn delete_draft(&self, key: MentionKey) -> Result<(), StoreError> {
        self.read(Request::DeleteDraft { key })
    }
}

impl Connection for Link {
    fn outbox(&self, command: OutboxCommand) -> Result<(), String> {
        self.call(Request::Outbox { command })
    }
    fn sync(&self, command: Command) -> Result<(), String> {
        self.call(Request::Sync { command })
    }
    fn complete_login(
        &self,
        tokens: Tokens,
        expected: Option<AccountId>,
    ) -> Result<(Account, bool), String> {
        self.call(Request::CompleteLogin { tokens, expected })
    }
}
