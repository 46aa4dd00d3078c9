//! The dashboard's session protocol: what crosses the service socket on an upgraded connection
//! (`GET /internal/v1/session`, `Upgrade: perch-session`). The REST API is the public face; this is
//! the dashboard's fast path for hot reads (a page, a count, a search step) and its commands, with
//! the service's events pushed on the same connection. Frames are a 4-byte big-endian length and a
//! JSON body, at most [`MAX_FRAME`] bytes.
//!
//! The session is also the owner of the sends it asks for: when it ends, the service abandons the
//! ones X has not answered (see `outbox::OutboxCommand::Abandon`).

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::{Account, AccountId, MentionKey, MentionStatus, Tokens};
use crate::outbox::OutboxCommand;
use crate::service::ServiceEvent;
use crate::store::{Draft, FeedFilter, FeedPos};
use crate::sync::Command;

/// The largest frame either side accepts: a page of 50 mentions is a few tens of KB.
pub const MAX_FRAME: usize = 16 << 20;

/// The `Upgrade` token of the session.
pub const UPGRADE: &str = "perch-session";

/// A request from the client, numbered so its reply can be matched.
#[derive(Serialize, Deserialize, Debug)]
pub struct RequestFrame {
    pub id: u64,
    pub request: Request,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    // Reads: the `app::FeedSource` methods.
    Mention {
        key: MentionKey,
    },
    Count {
        filter: FeedFilter,
    },
    Account {
        id: AccountId,
    },
    Accounts,
    PageBefore {
        filter: FeedFilter,
        before: Option<FeedPos>,
        limit: usize,
    },
    PageAfter {
        filter: FeedFilter,
        after: Option<FeedPos>,
        limit: usize,
    },
    SearchPage {
        filter: FeedFilter,
        query: String,
        after: Option<FeedPos>,
        limit: usize,
        max_scan: usize,
    },
    DailyCounts {
        account: AccountId,
        today: NaiveDate,
        days: u32,
    },
    Draft {
        key: MentionKey,
    },
    LastUndoAction,
    AccountStats {
        account: Box<Account>,
        now: DateTime<Utc>,
    },
    AccountCostStats {
        account: AccountId,
        now: DateTime<Utc>,
    },
    OutboxOpen,
    OutboxCurrent {
        key: MentionKey,
    },
    /// How a mention first arrived (stream or poll), issue 12.
    Arrival {
        key: MentionKey,
    },
    CostTodayAndMonth {
        now: DateTime<Utc>,
    },
    // Writes.
    Triage {
        action: u64,
        keys: Vec<MentionKey>,
        status: MentionStatus,
    },
    UndoStep {
        action: Option<u64>,
    },
    PutDraft {
        key: MentionKey,
        draft: Draft,
    },
    DeleteDraft {
        key: MentionKey,
    },
    /// To the outbox. A `Send` makes this session the send's owner.
    Outbox {
        command: OutboxCommand,
    },
    /// To the sync engine.
    Sync {
        command: Command,
    },
    /// A login the dashboard ran (browser, loopback, paste) ends here: the service checks who the
    /// tokens belong to (users/me), stores the account and its tokens, and tells the engine.
    CompleteLogin {
        tokens: Tokens,
        expected: Option<AccountId>,
    },
}

/// What the service sends: a reply to a request, or an event.
#[derive(Serialize, Deserialize, Debug)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ServerFrame {
    Reply {
        id: u64,
        result: Result<serde_json::Value, String>,
    },
    Event {
        event: ServiceEvent,
    },
    /// The session fell too far behind the events and is being closed: reconnect and re-read.
    Lagged,
}

/// Writes one frame (blocking).
pub fn write_frame(out: &mut impl std::io::Write, body: &[u8]) -> std::io::Result<()> {
    out.write_all(&framed(body)?)?;
    out.flush()
}

/// The length prefix and the body in one buffer, so a frame is one write (one syscall) and the
/// reader is not woken for the four length bytes alone before the body follows.
fn framed(body: &[u8]) -> std::io::Result<Vec<u8>> {
    let len = u32::try_from(body.len())
        .ok()
        .filter(|l| (*l as usize) <= MAX_FRAME)
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "frame too large"))?;
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(body);
    Ok(frame)
}

/// Reads one frame (blocking); `Ok(None)` at a clean end of stream.
pub fn read_frame(input: &mut impl std::io::Read) -> std::io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 4];
    match input.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("a frame of {len} bytes is over the limit"),
        ));
    }
    let mut body = vec![0u8; len];
    input.read_exact(&mut body)?;
    Ok(Some(body))
}

/// The async forms, for the service side.
pub mod tokio_io {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::MAX_FRAME;

    pub async fn write_frame(
        out: &mut (impl tokio::io::AsyncWrite + Unpin),
        body: &[u8],
    ) -> std::io::Result<()> {
        out.write_all(&super::framed(body)?).await?;
        out.flush().await
    }

    pub async fn read_frame(
        input: &mut (impl tokio::io::AsyncRead + Unpin),
    ) -> std::io::Result<Option<Vec<u8>>> {
        let mut len = [0u8; 4];
        match input.read_exact(&mut len).await {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e),
        }
        let len = u32::from_be_bytes(len) as usize;
        if len > MAX_FRAME {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("a frame of {len} bytes is over the limit"),
            ));
        }
        let mut body = vec![0u8; len];
        input.read_exact(&mut body).await?;
        Ok(Some(body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records each write a frame takes.
    struct Writes(Vec<Vec<u8>>);

    impl std::io::Write for Writes {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.push(buf.to_vec());
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_frame_is_written_in_one_write_and_reads_back() {
        let mut out = Writes(Vec::new());
        write_frame(&mut out, br#"{"id":1}"#).expect("written");
        assert_eq!(out.0.len(), 1, "the length and the body in one write");
        let mut input = std::io::Cursor::new(out.0.concat());
        let body = read_frame(&mut input).expect("read");
        assert_eq!(body.as_deref(), Some(&br#"{"id":1}"#[..]));
        assert_eq!(read_frame(&mut input).expect("clean end"), None);
    }

    #[test]
    fn a_frame_over_the_limit_is_refused_before_anything_is_written() {
        let mut out = Writes(Vec::new());
        let body = vec![b' '; MAX_FRAME + 1];
        assert!(write_frame(&mut out, &body).is_err());
        assert!(out.0.is_empty(), "nothing of it went out");
    }
}
