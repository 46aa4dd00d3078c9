//! The dashboard's session with the service, client side.
//!
//! [`Session`] is the two upgraded connections of `protocol`: on the calls connection, `call`
//! writes a request frame and reads its reply itself (bounded by [`REPLY_TIMEOUT`]), holding the
//! connection for the round trip (the service answers a session's requests in order anyway); on
//! the events connection, a reader thread hands the service's events to the dashboard's loop.
//! `update` reads through it synchronously, as it read the store before. The caller reading its
//! own reply matters: a hand-off from a reader thread is a thread wake-up on every read of the key
//! path (issue 11).
//!
//! [`Link`] is what the dashboard holds: the current session, replaced when the service
//! restarts. While there is none, every call fails at once with "reconnecting…" (never blocks),
//! and the loop hears [`Incoming::Lost`] and later [`Incoming::Restored`].

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;

use super::endpoint::{Endpoint, Shutdown, Stream};
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
    /// This dashboard's person opened (`open`) or closed the mention's composer: the team sees
    /// them replying until they close it, or until the service stops hearing from them.
    fn presence(&self, key: MentionKey, open: bool) -> Result<(), String>;
    /// Stores the account a login produced (the service checks who the tokens belong to).
    fn complete_login(
        &self,
        tokens: Tokens,
        expected: Option<AccountId>,
    ) -> Result<(Account, bool), String>;
}

/// One session with the service: its calls and events connections.
pub struct Session {
    /// The calls connection, held by a caller for its whole round trip.
    calls: Mutex<Stream>,
    /// A handle to shut the calls connection down without waiting for a caller's round trip
    /// (closing wakes a caller blocked in its read).
    calls_handle: Shutdown,
    /// A handle to shut the events connection down (the reader thread reads it).
    events: Shutdown,
    next_id: AtomicU64,
    alive: Arc<AtomicBool>,
}

impl Session {
    /// Connects to the service at `endpoint`. Events go to `events`; `on_end` runs (on the
    /// reader thread) when the session ends, whichever connection ended it.
    pub fn connect(
        endpoint: &Endpoint,
        events: mpsc::Sender<Incoming>,
        on_end: impl FnOnce(String) + Send + 'static,
    ) -> std::io::Result<Arc<Session>> {
        let calls = super::upgrade::open(endpoint, protocol::CALLS_PATH, protocol::CALLS_UPGRADE)?;
        calls.set_read_timeout(Some(REPLY_TIMEOUT))?;
        calls.set_write_timeout(Some(REPLY_TIMEOUT))?;
        let reader =
            super::upgrade::open(endpoint, protocol::EVENTS_PATH, protocol::EVENTS_UPGRADE)?;
        let events_handle = reader.shutdown_handle()?;
        // Shuts the calls connection when the events one ends, so a caller blocked on a reply
        // from a service that has gone wakes at once.
        let calls_handle = calls.shutdown_handle()?;
        let session = Arc::new(Session {
            calls_handle: calls.shutdown_handle()?,
            calls: Mutex::new(calls),
            events: events_handle,
            next_id: AtomicU64::new(1),
            alive: Arc::new(AtomicBool::new(true)),
        });
        let alive = session.alive.clone();
        std::thread::Builder::new()
            .name("perch-session".into())
            .spawn(move || {
                let why = read_events(reader, &events);
                alive.store(false, Ordering::SeqCst);
                calls_handle.shutdown();
                on_end(why);
            })?;
        Ok(session)
    }

    pub fn is_alive(&self) -> bool {
        self.alive.load(Ordering::SeqCst)
    }

    /// Sends `request` and reads its reply.
    pub fn call<T: DeserializeOwned>(&self, request: Request) -> Result<T, String> {
        if !self.is_alive() {
            return Err(RECONNECTING.into());
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let body = serde_json::to_vec(&RequestFrame { id, request })
            .map_err(|e| format!("cannot encode a request: {e}"))?;
        let answer = {
            let mut calls = lock(&self.calls);
            round_trip(&mut calls, id, &body)
        };
        let answer = match answer {
            Ok(answer) => answer,
            Err(failure) => {
                // The connection is out of step (or gone): end the session; the reader thread
                // then says so to the dashboard, and the link reconnects.
                self.close();
                return Err(failure.message());
            }
        };
        answer.and_then(|answer| protocol::decode_answer(&answer))
    }

    /// Ends the session (the service abandons the sends it owned and X has not answered).
    pub fn close(&self) {
        self.alive.store(false, Ordering::SeqCst);
        self.calls_handle.shutdown();
        self.events.shutdown();
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.close();
    }
}

/// Why a round trip on the calls connection failed (the session cannot go on after any).
enum CallFailure {
    /// No reply within [`REPLY_TIMEOUT`].
    TimedOut,
    Lost(String),
}

impl CallFailure {
    fn message(&self) -> String {
        match self {
            CallFailure::TimedOut => format!(
                "the perch service did not answer within {} s; reconnecting…",
                REPLY_TIMEOUT.as_secs()
            ),
            CallFailure::Lost(why) => format!("lost the perch service ({why}); reconnecting…"),
        }
    }
}

/// Writes request `id` and reads its reply: the answer's bytes, or the service's refusal.
fn round_trip(
    calls: &mut Stream,
    id: u64,
    body: &[u8],
) -> Result<Result<Vec<u8>, String>, CallFailure> {
    let io = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => CallFailure::TimedOut,
        _ => CallFailure::Lost(e.to_string()),
    };
    protocol::write_frame(calls, body).map_err(io)?;
    await_reply_briefly(calls);
    let frame = protocol::read_frame(calls)
        .map_err(io)?
        .ok_or_else(|| CallFailure::Lost("it closed the connection".into()))?;
    match ServerFrame::decode(&frame).map_err(CallFailure::Lost)? {
        ServerFrame::Reply {
            id: answered,
            result,
        } if answered == id => Ok(result),
        ServerFrame::Reply { id: answered, .. } => Err(CallFailure::Lost(format!(
            "it answered request {answered} when {id} was asked"
        ))),
        ServerFrame::Event { .. } | ServerFrame::Lagged => Err(CallFailure::Lost(
            "it sent an event on the calls connection".into(),
        )),
    }
}

/// How long a caller watches for its reply before it sleeps in the read. A page of the feed
/// comes back in 0.2–0.5 ms and a search step in under 1 ms (issue 11's traces at 1M), so 1 ms
/// covers nearly every read of a key; a longer call (a bulk write) sleeps after it, as before.
const WATCH_FOR_REPLY: Duration = Duration::from_millis(1);

/// Watches the calls connection for up to [`WATCH_FOR_REPLY`] before the blocking read. A thread
/// that is awake when its reply arrives reads it at once; one asleep in `read` is woken by the
/// kernel, and on a virtual machine whose CPU has gone idle that wake-up costs about 150 µs per
/// reply, at the tail milliseconds (issue 11, README section 8).
///
/// Between looks the caller yields its CPU (`sched_yield`) rather than spinning: on two cores
/// the service's thread answering this very request may need the CPU the caller holds, and a
/// spinning caller made it wait (measured at 1M, the slowest key's p99: 2.0–2.5 ms spinning for
/// 1 ms, 1.7–1.9 ms yielding). Any error here is left for the blocking read to report.
///
/// Under TLS it does not watch: a reply may already sit decrypted in rustls's buffer, which the
/// descriptor cannot show.
fn await_reply_briefly(calls: &Stream) {
    let Some(fd) = calls.pollable_fd() else {
        return;
    };
    let deadline = std::time::Instant::now() + WATCH_FOR_REPLY;
    let mut watched = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    loop {
        // SAFETY: `watched` is one valid pollfd for an open descriptor `calls` owns, for the
        // duration of the call; a zero timeout only looks.
        let ready = unsafe { libc::poll(&mut watched, 1, 0) };
        // Readable, closed, or an error: the read after this sees which.
        if ready != 0 || std::time::Instant::now() >= deadline {
            return;
        }
        // SAFETY: takes no arguments and touches no memory; it only lets another runnable thread
        // have this CPU before the next look.
        unsafe { libc::sched_yield() };
    }
}

pub const RECONNECTING: &str = "reconnecting to the perch service…";

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Reads the events connection until it ends; returns why it ended.
fn read_events(mut reader: Stream, events: &mpsc::Sender<Incoming>) -> String {
    loop {
        let body = match protocol::read_frame(&mut reader) {
            Ok(Some(body)) => body,
            Ok(None) => return "the perch service closed the connection".into(),
            Err(e) => return format!("lost the perch service: {e}"),
        };
        let frame = match ServerFrame::decode(&body) {
            Ok(frame) => frame,
            Err(e) => return format!("the perch service sent something unreadable: {e}"),
        };
        match frame {
            ServerFrame::Event { event } => {
                // Never block here: a dashboard thousands of events behind re-reads everything
                // on reconnect.
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
            ServerFrame::Reply { .. } => {
                return "the perch service sent a reply on the events connection".into();
            }
        }
    }
}

/// Something that starts the service again when it is gone (the dashboard's auto-start).
pub type Restarter = Box<dyn Fn() -> Result<(), String> + Send + Sync>;

/// The dashboard's connection: the current session, reconnected when it ends.
pub struct Link {
    endpoint: Endpoint,
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
    /// Connects to the service at `endpoint`.
    pub fn connect(
        endpoint: Endpoint,
        pricing: Pricing,
        restarter: Option<Restarter>,
    ) -> std::io::Result<(Arc<Link>, mpsc::Receiver<Incoming>)> {
        let (tx, rx) = mpsc::channel(4096);
        let link = Arc::new(Link {
            endpoint,
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
        Session::connect(&link.endpoint, link.events.clone(), move |why| {
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

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
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
    fn team(&self) -> Result<crate::app::team::TeamSnapshot, StoreError> {
        self.read(Request::Team)
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
    fn end_page(
        &self,
        filter: &FeedFilter,
        newest: bool,
        limit: usize,
    ) -> Result<(Vec<Mention>, u64), StoreError> {
        self.read(Request::EndPage {
            filter: filter.clone(),
            newest,
            limit,
        })
    }
    fn arrivals(&self, keys: &[MentionKey]) -> Result<Vec<crate::domain::Arrival>, StoreError> {
        self.read(Request::Arrivals {
            keys: keys.to_vec(),
        })
    }
    fn account_figures(
        &self,
        id: AccountId,
        now: DateTime<Utc>,
        days: u32,
        recent: usize,
    ) -> Result<Option<crate::app::AccountFigures>, StoreError> {
        self.read(Request::AccountFigures {
            id,
            now,
            days,
            recent,
        })
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
    fn assign(
        &self,
        key: MentionKey,
        handle: &str,
        person: Option<&str>,
    ) -> Result<Result<(), String>, StoreError> {
        self.read(Request::Assign {
            key,
            handle: handle.to_string(),
            person: person.map(str::to_string),
        })
    }
}

impl Connection for Link {
    fn outbox(&self, command: OutboxCommand) -> Result<(), String> {
        self.call(Request::Outbox { command })
    }
    fn presence(&self, key: MentionKey, open: bool) -> Result<(), String> {
        self.call(Request::Presence { key, open })
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
