//! The one Activity stream (`GET /2/activity/stream`, ACTIVITY.md §4), supervised: connect with
//! the app Bearer, read line by line, treat [`StreamSettings::stall_after`] without a byte as a
//! stall, and reconnect on the back-off schedules of §4.5. It runs as a task the sync engine
//! starts and owns (`engine_stream.rs`), and only the engine: whoever owns the engine owns the
//! stream, so a CLI command never opens one (X allows two connections per app).
//!
//! The task only reads and classifies; it reports to the engine through [`StreamMsg`]. What an
//! event means for the store is the engine's business (`engine_stream.rs`).
//!
//! # Back-off (ACTIVITY.md §4.5, the docs' numbers, stricter than the SDK's for 429)
//!
//! - an established connection that ends (closed, dropped, stalled, told to disconnect):
//!   reconnect at once, once; if that attempt fails, the schedules below apply;
//! - network errors (connect refused, reset, timeout): linear, +250 ms per attempt, cap 16 s;
//! - HTTP errors worth retrying (5xx and other 4xx but those below): exponential from 5 s, ×2,
//!   cap 320 s;
//! - 429: exponential from 60 s, ×2 per further 429 (capped at 15 min, one rate-limit window:
//!   the docs give no cap);
//! - 401, 403 and 402 stop the stream with a visible reason: a retry cannot fix them.
//!
//! A connection counts as established once X answered 200; every schedule starts over then. A
//! connection that ends within [`SHORT_LIVED`] of opening is not a healthy one that dropped:
//! its end counts as a network error, so a server that accepts and closes at once is not hammered.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};

use crate::domain::Secret;
use crate::x::activity::{ActivityEvent, MAX_STREAM_LINE, StreamLine, parse_stream_line};
use crate::x::{XClient, XError};

/// What the UI shows of the stream (status bar, account rows). Crosses the service socket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum StreamStatus {
    /// Getting the app token or opening the connection.
    Connecting,
    /// Connected: events arrive as they happen.
    Live,
    /// Down; the next attempt is at `at`.
    Reconnecting { at: DateTime<Utc>, reason: String },
    /// Not running, and perch will not retry on its own (no app token, 401/403/402).
    Off { reason: String },
}

/// The stream's state as the last events left it: what a client that attaches later (to the
/// service) must be told first, since it missed those events. Fed every event the engine sends.
#[derive(Debug, Default)]
pub struct LiveSnapshot {
    status: Option<StreamStatus>,
    subscriptions: std::collections::BTreeMap<
        crate::domain::AccountId,
        super::subscriptions::AccountSubscriptions,
    >,
}

impl LiveSnapshot {
    pub fn observe(&mut self, event: &super::SyncEvent) {
        use super::SyncEvent;
        match event {
            SyncEvent::StreamStatus(status) => self.status = Some(status.clone()),
            SyncEvent::Subscriptions {
                account_id,
                subscriptions,
            } => {
                self.subscriptions
                    .insert(*account_id, subscriptions.clone());
            }
            SyncEvent::AccountRemoved { account_id } => {
                self.subscriptions.remove(account_id);
            }
            _ => {}
        }
    }

    /// The events that bring a new client up to date (none when there is no stream).
    pub fn events(&self) -> Vec<super::SyncEvent> {
        let Some(status) = &self.status else {
            return Vec::new();
        };
        std::iter::once(super::SyncEvent::StreamStatus(status.clone()))
            .chain(
                self.subscriptions
                    .iter()
                    .map(|(id, subs)| super::SyncEvent::Subscriptions {
                        account_id: *id,
                        subscriptions: subs.clone(),
                    }),
            )
            .collect()
    }
}

/// Why the stream is off when there is no app token (shown once, as a notice).
pub const NO_APP_TOKEN: &str = "no app token";

/// How the stream is run.
#[derive(Clone, Debug)]
pub struct StreamSettings {
    /// Open the stream at all (the engine of the dashboard or the service; never a CLI command).
    pub enabled: bool,
    /// No byte for this long (not even a heartbeat) is a stall. X sends a heartbeat at least
    /// every 20 s; 30 s leaves room (ACTIVITY.md §4.4).
    pub stall_after: Duration,
    /// While the stream is live, accounts are polled this many times less often.
    pub reconcile_factor: u32,
    /// The consumer API key and secret, to mint the app Bearer when none is configured.
    pub api_key: Option<Secret>,
    pub api_secret: Option<Secret>,
}

impl Default for StreamSettings {
    fn default() -> StreamSettings {
        StreamSettings {
            enabled: false,
            stall_after: Duration::from_secs(30),
            reconcile_factor: 4,
            api_key: None,
            api_secret: None,
        }
    }
}

/// A connection that ends sooner than this after opening counts as a network error.
pub const SHORT_LIVED: Duration = Duration::from_secs(5);

/// How a connection attempt, or a connection, ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// An established connection ended (closed, dropped, stalled, disconnect message).
    Ended,
    Network,
    Http,
    RateLimited,
}

/// The reconnect schedule: pure, so every rule is tested without a clock.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Backoff {
    network: u32,
    http: u32,
    rate_limited: u32,
    /// The immediate reconnect after an established connection ended has been used.
    immediate_used: bool,
}

impl Backoff {
    pub const NETWORK_STEP: Duration = Duration::from_millis(250);
    pub const NETWORK_CAP: Duration = Duration::from_secs(16);
    pub const HTTP_FIRST: Duration = Duration::from_secs(5);
    pub const HTTP_CAP: Duration = Duration::from_secs(320);
    pub const RATE_LIMIT_FIRST: Duration = Duration::from_secs(60);
    pub const RATE_LIMIT_CAP: Duration = Duration::from_secs(900);

    /// A connection was established: every schedule starts over.
    pub fn connected(&mut self) {
        *self = Backoff::default();
    }

    /// How long to wait before the next attempt after `failure`.
    pub fn after(&mut self, failure: Failure) -> Duration {
        match failure {
            Failure::Ended if !self.immediate_used => {
                self.immediate_used = true;
                Duration::ZERO
            }
            Failure::Ended | Failure::Network => {
                self.network += 1;
                (Self::NETWORK_STEP * self.network).min(Self::NETWORK_CAP)
            }
            Failure::Http => {
                self.http += 1;
                exponential(Self::HTTP_FIRST, self.http, Self::HTTP_CAP)
            }
            Failure::RateLimited => {
                self.rate_limited += 1;
                exponential(
                    Self::RATE_LIMIT_FIRST,
                    self.rate_limited,
                    Self::RATE_LIMIT_CAP,
                )
            }
        }
    }
}

fn exponential(first: Duration, attempt: u32, cap: Duration) -> Duration {
    let doublings = attempt.saturating_sub(1).min(20);
    first.saturating_mul(1 << doublings).min(cap)
}

/// What an HTTP error on connect means for the stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConnectRefusal {
    Retry(Failure, String),
    /// Only the user can fix it.
    Stop(String),
}

/// Sorts a failed connect (ACTIVITY.md §4.5; 400 is a request perch should never send).
pub fn judge_connect_error(e: &XError) -> ConnectRefusal {
    match e {
        XError::Unauthorized { .. } => ConnectRefusal::Stop(
            "X rejected the app Bearer token (401): set a valid app_bearer_token (PERCH_APP_BEARER_TOKEN), see the README".into(),
        ),
        XError::Forbidden { detail, .. } => ConnectRefusal::Stop(format!(
            "X refused the stream (403): {detail} (the app's package may not include the Activity API)"
        )),
        XError::CreditsDepleted { detail } => ConnectRefusal::Stop(format!(
            "X refused the stream (402): {detail}"
        )),
        XError::RateLimited { detail, .. } => {
            ConnectRefusal::Retry(Failure::RateLimited, format!("429: {detail}"))
        }
        XError::Network(detail) => ConnectRefusal::Retry(Failure::Network, detail.clone()),
        XError::Server { status, detail } => {
            ConnectRefusal::Retry(Failure::Http, format!("{status}: {detail}"))
        }
        XError::InvalidRequest { status, detail } if *status == 400 => ConnectRefusal::Stop(
            format!("X rejected the stream request (400): {detail}"),
        ),
        other => ConnectRefusal::Retry(Failure::Http, other.to_string()),
    }
}

/// Splits the byte stream into lines, bounded: a line longer than [`MAX_STREAM_LINE`] is
/// dropped (reported once) up to its newline, so a stream without newlines cannot grow memory.
#[derive(Debug, Default)]
pub struct LineBuffer {
    buf: Vec<u8>,
    /// Discarding the rest of an overlong line.
    skipping: bool,
}

impl LineBuffer {
    /// Feeds bytes; returns the complete lines (without `\n`) and how many overlong lines began.
    pub fn push(&mut self, bytes: &[u8]) -> (Vec<Vec<u8>>, usize) {
        let mut lines = Vec::new();
        let mut overlong = 0;
        for chunk in bytes.split_inclusive(|b| *b == b'\n') {
            let ends = chunk.last() == Some(&b'\n');
            let body = if ends {
                &chunk[..chunk.len() - 1]
            } else {
                chunk
            };
            if !self.skipping {
                if self.buf.len() + body.len() > MAX_STREAM_LINE {
                    self.buf.clear();
                    self.skipping = true;
                    overlong += 1;
                } else {
                    self.buf.extend_from_slice(body);
                }
            }
            if ends {
                if !self.skipping {
                    lines.push(std::mem::take(&mut self.buf));
                }
                self.skipping = false;
            }
        }
        (lines, overlong)
    }
}

/// What the stream task tells the engine.
#[derive(Debug)]
pub(crate) enum StreamMsg {
    /// The app Bearer to use for the subscription calls too.
    Token(Secret),
    Connected,
    Event(Box<ActivityEvent>),
    /// The stream is down; the next attempt is at `at`.
    Down {
        at: DateTime<Utc>,
        reason: String,
    },
    /// The stream stopped for good (this run): only the user can fix `reason`.
    Stopped {
        reason: String,
    },
    /// A line perch could not use, or an in-stream error: for the log, not the screen.
    Trouble(String),
}

/// The app Bearer: the configured one, or one minted from the API key and secret.
pub(crate) async fn app_token(
    client: &XClient,
    configured: Option<&Secret>,
    settings: &StreamSettings,
) -> Result<Secret, String> {
    if let Some(token) = configured {
        return Ok(token.clone());
    }
    match (&settings.api_key, &settings.api_secret) {
        (Some(key), Some(secret)) => client.mint_app_token(key, secret).await.map_err(|e| {
            format!("cannot get the app Bearer token with PERCH_API_KEY/PERCH_API_SECRET: {e}")
        }),
        _ => Err(NO_APP_TOKEN.to_string()),
    }
}

/// Runs the stream until `stop` turns true or the engine goes away.
pub(crate) async fn run(
    client: XClient,
    token: Secret,
    settings: StreamSettings,
    out: mpsc::Sender<StreamMsg>,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff = Backoff::default();
    loop {
        if *stop.borrow() {
            return;
        }
        let (failure, reason) = tokio::select! {
            _ = stop.changed() => return,
            ended = connect_and_read(&client, &token, &settings, &out, &mut backoff) => match ended {
                Ok(ended) => ended,
                Err(reason) => {
                    tracing::warn!("activity stream stopped: {reason}");
                    let _ = out.send(StreamMsg::Stopped { reason }).await;
                    return;
                }
            },
        };
        let delay = backoff.after(failure);
        if matches!(delay, d if d >= Backoff::NETWORK_CAP) {
            tracing::warn!(
                ?failure,
                "activity stream: back-off at {delay:?} ({reason})"
            );
        } else {
            tracing::info!(
                ?failure,
                "activity stream down: {reason}; retry in {delay:?}"
            );
        }
        let at = Utc::now() + chrono::Duration::from_std(delay).unwrap_or_default();
        if out.send(StreamMsg::Down { at, reason }).await.is_err() {
            return;
        }
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

/// One connection: `Ok((failure, reason))` when it ended in a way worth retrying, `Err` when
/// it must stop.
async fn connect_and_read(
    client: &XClient,
    token: &Secret,
    settings: &StreamSettings,
    out: &mpsc::Sender<StreamMsg>,
    backoff: &mut Backoff,
) -> Result<(Failure, String), String> {
    let mut response = match client.open_activity_stream(token).await {
        Ok(response) => response,
        Err(e) => {
            return match judge_connect_error(&e) {
                ConnectRefusal::Retry(failure, reason) => Ok((failure, reason)),
                ConnectRefusal::Stop(reason) => Err(reason),
            };
        }
    };
    backoff.connected();
    let opened = tokio::time::Instant::now();
    if out.send(StreamMsg::Connected).await.is_err() {
        return Ok((Failure::Ended, "perch is stopping".into()));
    }
    let mut lines = LineBuffer::default();
    let mut disconnect: Option<String> = None;
    let ended = loop {
        let chunk = match tokio::time::timeout(settings.stall_after, response.chunk()).await {
            Err(_) => {
                break format!(
                    "no data for {} s (the stream stalled)",
                    settings.stall_after.as_secs()
                );
            }
            Ok(Err(e)) => break format!("the stream connection failed: {e}"),
            Ok(Ok(None)) => {
                break disconnect
                    .take()
                    .unwrap_or_else(|| "X closed the stream".to_string());
            }
            Ok(Ok(Some(chunk))) => chunk,
        };
        let (complete, overlong) = lines.push(&chunk);
        if overlong > 0 {
            let _ = out
                .send(StreamMsg::Trouble(format!(
                    "a stream line longer than {MAX_STREAM_LINE} bytes was skipped"
                )))
                .await;
        }
        for line in complete {
            let msg = match parse_stream_line(&line) {
                StreamLine::KeepAlive => continue,
                StreamLine::Event(event) => StreamMsg::Event(event),
                StreamLine::Disconnect { kind, detail } => {
                    // X closes next; the reason is kept for when it does.
                    disconnect = Some(format!("X disconnected the stream ({kind}): {detail}"));
                    continue;
                }
                StreamLine::Errors(errors) => {
                    StreamMsg::Trouble(format!("X sent in-stream errors: {}", errors.join("; ")))
                }
                StreamLine::Unreadable(why) => {
                    StreamMsg::Trouble(format!("an unreadable stream line: {why}"))
                }
            };
            if out.send(msg).await.is_err() {
                return Ok((Failure::Ended, "perch is stopping".into()));
            }
        }
    };
    let failure = if opened.elapsed() < SHORT_LIVED {
        Failure::Network
    } else {
        Failure::Ended
    };
    Ok((failure, ended))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn network_errors_back_off_linearly_by_250_ms_up_to_16_s() {
        let mut b = Backoff::default();
        let waits: Vec<Duration> = (0..70).map(|_| b.after(Failure::Network)).collect();
        assert_eq!(waits[0], Duration::from_millis(250));
        assert_eq!(waits[1], Duration::from_millis(500));
        assert_eq!(waits[3], Duration::from_secs(1));
        assert_eq!(waits[63], secs(16));
        assert_eq!(waits[69], secs(16));
    }

    #[test]
    fn http_errors_back_off_exponentially_from_5_s_up_to_320_s() {
        let mut b = Backoff::default();
        let waits: Vec<Duration> = (0..9).map(|_| b.after(Failure::Http)).collect();
        assert_eq!(
            waits,
            [5, 10, 20, 40, 80, 160, 320, 320, 320].map(secs).to_vec()
        );
    }

    #[test]
    fn rate_limits_back_off_exponentially_from_60_s() {
        let mut b = Backoff::default();
        let waits: Vec<Duration> = (0..6).map(|_| b.after(Failure::RateLimited)).collect();
        assert_eq!(waits, [60, 120, 240, 480, 900, 900].map(secs).to_vec());
    }

    #[test]
    fn an_established_connection_that_ends_reconnects_at_once_then_backs_off() {
        let mut b = Backoff::default();
        assert_eq!(b.after(Failure::Ended), Duration::ZERO);
        // The immediate attempt failed too: now the network schedule.
        assert_eq!(b.after(Failure::Ended), Duration::from_millis(250));
        assert_eq!(b.after(Failure::Network), Duration::from_millis(500));
        // A connection is established again: all starts over.
        b.connected();
        assert_eq!(b.after(Failure::Ended), Duration::ZERO);
        assert_eq!(b.after(Failure::Http), secs(5));
    }

    #[test]
    fn schedules_are_separate() {
        let mut b = Backoff::default();
        assert_eq!(b.after(Failure::Http), secs(5));
        assert_eq!(b.after(Failure::RateLimited), secs(60));
        assert_eq!(b.after(Failure::Http), secs(10));
        assert_eq!(b.after(Failure::Network), Duration::from_millis(250));
    }

    #[test]
    fn connect_errors_are_sorted_by_what_the_stream_does() {
        use crate::x::RateLimit;
        assert!(matches!(
            judge_connect_error(&XError::Unauthorized {
                rate_limit: RateLimit::default()
            }),
            ConnectRefusal::Stop(r) if r.contains("401")
        ));
        assert!(matches!(
            judge_connect_error(&XError::Forbidden {
                detail: "no".into(),
                problem_type: None,
                reason: None,
                rate_limit: RateLimit::default()
            }),
            ConnectRefusal::Stop(r) if r.contains("403")
        ));
        assert!(matches!(
            judge_connect_error(&XError::RateLimited {
                reset: None,
                detail: "Too Many Requests".into(),
                rate_limit: RateLimit::default()
            }),
            ConnectRefusal::Retry(Failure::RateLimited, _)
        ));
        assert!(matches!(
            judge_connect_error(&XError::Server {
                status: 503,
                detail: "Service Unavailable".into()
            }),
            ConnectRefusal::Retry(Failure::Http, _)
        ));
        assert!(matches!(
            judge_connect_error(&XError::Network("refused".into())),
            ConnectRefusal::Retry(Failure::Network, _)
        ));
    }

    #[test]
    fn a_late_client_is_told_the_stream_state_and_every_account_s_subscriptions() {
        use crate::sync::SyncEvent;
        use crate::sync::subscriptions::AccountSubscriptions;
        let mut snap = LiveSnapshot::default();
        assert!(snap.events().is_empty(), "no stream: nothing to say");
        let (a, b) = (uuid::Uuid::from_u128(1), uuid::Uuid::from_u128(2));
        snap.observe(&SyncEvent::StreamStatus(StreamStatus::Connecting));
        snap.observe(&SyncEvent::StreamStatus(StreamStatus::Live));
        for id in [a, b] {
            snap.observe(&SyncEvent::Subscriptions {
                account_id: id,
                subscriptions: AccountSubscriptions::default(),
            });
        }
        snap.observe(&SyncEvent::AccountRemoved { account_id: b });
        let events = snap.events();
        assert_eq!(events.len(), 2);
        assert!(matches!(
            &events[0],
            SyncEvent::StreamStatus(StreamStatus::Live)
        ));
        assert!(
            matches!(&events[1], SyncEvent::Subscriptions { account_id, .. } if *account_id == a)
        );
    }

    #[test]
    fn lines_are_split_across_chunks_and_overlong_ones_dropped() {
        let mut b = LineBuffer::default();
        let (lines, _) = b.push(b"{\"a\":1}\r\n{\"b\"");
        assert_eq!(lines, vec![b"{\"a\":1}\r".to_vec()]);
        let (lines, _) = b.push(b":2}\n\r\n");
        assert_eq!(lines, vec![b"{\"b\":2}".to_vec(), b"\r".to_vec()]);
        let big = vec![b'x'; MAX_STREAM_LINE + 10];
        let (lines, overlong) = b.push(&big);
        assert!(lines.is_empty());
        assert_eq!(overlong, 1);
        let (lines, overlong) = b.push(b"tail\nnext\n");
        assert_eq!(overlong, 0);
        assert_eq!(lines, vec![b"next".to_vec()]);
    }
}
