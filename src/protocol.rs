//! The dashboard's session protocol: what crosses the service socket on its two upgraded
//! connections, the calls (`GET /internal/v1/session`, `Upgrade: perch-session/2`: requests and
//! their replies) and the events (`GET /internal/v1/session/events`, `Upgrade: perch-events/2`:
//! the service's events, pushed). The REST API is the public face; this is the dashboard's fast
//! path for hot reads (a page, a count, a search step) and its commands. Frames are a 4-byte big-endian length and a
//! body, at most [`MAX_FRAME`] bytes. A request's body is JSON; a server frame's body is one kind
//! byte and then (see [`ServerFrame::encode`]): for a reply, its request's id and the answer in
//! bincode (the answer to a page read is a page of mentions, and bincode reads and writes one in a
//! tenth of JSON's time: this is the dashboard's key path, issue 11); for an event, JSON.
//!
//! The calls connection is also the owner of the sends it asks for: when it ends, the service
//! abandons the ones X has not answered (see `outbox::OutboxCommand::Abandon`).

use chrono::{DateTime, NaiveDate, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::domain::{Account, AccountId, MentionKey, MentionStatus, Tokens};
use crate::outbox::OutboxCommand;
use crate::service::ServiceEvent;
use crate::store::{Draft, FeedFilter, FeedPos};
use crate::sync::Command;

/// The largest frame either side accepts: a page of 50 mentions is a few tens of KB.
pub const MAX_FRAME: usize = 16 << 20;

/// The calls connection: its path and `Upgrade` token. The token names the protocol's version, so
/// a dashboard and a service of different perch versions refuse each other with a clear message
/// rather than misread each other's frames.
pub const CALLS_PATH: &str = "/internal/v1/session";
pub const CALLS_UPGRADE: &str = "perch-session/2";
/// The events connection: its path and `Upgrade` token.
pub const EVENTS_PATH: &str = "/internal/v1/session/events";
pub const EVENTS_UPGRADE: &str = "perch-events/2";

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
    // Combined reads (see `app::FeedSource`): one round trip for what one key needs.
    EndPage {
        filter: FeedFilter,
        newest: bool,
        limit: usize,
    },
    Arrivals {
        keys: Vec<MentionKey>,
    },
    AccountFigures {
        id: AccountId,
        now: DateTime<Utc>,
        days: u32,
        recent: usize,
    },
    /// Who this session is, the assignments and who is replying (issue 16).
    Team,
    // Writes.
    /// Assign a mention to a person (or nobody), as this session's person.
    Assign {
        key: MentionKey,
        handle: String,
        person: Option<String>,
    },
    /// This session's person opened (`open`) or closed the mention's composer.
    Presence {
        key: MentionKey,
        open: bool,
    },
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
#[derive(Debug)]
pub enum ServerFrame {
    /// The answer to request `id`: the value in the reply codec ([`encode_answer`]), or why
    /// there is none.
    Reply {
        id: u64,
        result: Result<Vec<u8>, String>,
    },
    Event {
        event: ServiceEvent,
    },
    /// The session fell too far behind the events and is being closed: reconnect and re-read.
    Lagged,
}

/// The kind byte that starts a server frame's body.
const KIND_ANSWER: u8 = 1;
const KIND_REFUSAL: u8 = 2;
const KIND_EVENT: u8 = 3;
const KIND_LAGGED: u8 = 4;

impl ServerFrame {
    /// The frame's body: the kind byte, then for a reply the id (8 bytes, big-endian) and the
    /// answer's bytes (or the refusal's UTF-8 text), for an event its JSON.
    pub fn encode(&self) -> Result<Vec<u8>, String> {
        match self {
            ServerFrame::Reply { id, result } => {
                let (kind, bytes) = match result {
                    Ok(answer) => (KIND_ANSWER, answer.as_slice()),
                    Err(why) => (KIND_REFUSAL, why.as_bytes()),
                };
                let mut body = Vec::with_capacity(9 + bytes.len());
                body.push(kind);
                body.extend_from_slice(&id.to_be_bytes());
                body.extend_from_slice(bytes);
                Ok(body)
            }
            ServerFrame::Event { event } => {
                let mut body = vec![KIND_EVENT];
                serde_json::to_writer(&mut body, event)
                    .map_err(|e| format!("cannot encode an event: {e}"))?;
                Ok(body)
            }
            ServerFrame::Lagged => Ok(vec![KIND_LAGGED]),
        }
    }

    /// Reads a body written by [`ServerFrame::encode`]. The bytes come from another process:
    /// anything malformed is an error, never a panic.
    pub fn decode(body: &[u8]) -> Result<ServerFrame, String> {
        let Some((&kind, rest)) = body.split_first() else {
            return Err("an empty frame".into());
        };
        let reply_id = |rest: &[u8]| -> Result<(u64, Vec<u8>), String> {
            let (id, bytes) = rest
                .split_first_chunk::<8>()
                .ok_or("a reply frame too short for its id")?;
            Ok((u64::from_be_bytes(*id), bytes.to_vec()))
        };
        match kind {
            KIND_ANSWER => {
                let (id, answer) = reply_id(rest)?;
                Ok(ServerFrame::Reply {
                    id,
                    result: Ok(answer),
                })
            }
            KIND_REFUSAL => {
                let (id, why) = reply_id(rest)?;
                Ok(ServerFrame::Reply {
                    id,
                    result: Err(String::from_utf8_lossy(&why).into_owned()),
                })
            }
            KIND_EVENT => serde_json::from_slice(rest)
                .map(|event| ServerFrame::Event { event })
                .map_err(|e| format!("an unreadable event: {e}")),
            KIND_LAGGED if rest.is_empty() => Ok(ServerFrame::Lagged),
            other => Err(format!("a frame of unknown kind {other}")),
        }
    }
}

/// The reply codec: bincode 2 (standard configuration) through serde, with every length it reads
/// bounded by [`MAX_FRAME`] so a corrupt length cannot make it allocate more than a frame holds.
type AnswerConfig = bincode::config::Configuration<
    bincode::config::LittleEndian,
    bincode::config::Varint,
    bincode::config::Limit<MAX_FRAME>,
>;

fn answer_config() -> AnswerConfig {
    bincode::config::standard().with_limit::<MAX_FRAME>()
}

/// Encodes an answer (the value a request's store call returned) for a reply frame.
pub fn encode_answer<T: Serialize>(value: &T) -> Result<Vec<u8>, String> {
    bincode::serde::encode_to_vec(value, answer_config())
        .map_err(|e| format!("cannot encode the answer: {e}"))
}

/// Decodes an answer written by [`encode_answer`]; bytes left over mean the two sides disagree
/// on the answer's type, and are an error.
pub fn decode_answer<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    let (value, used) = bincode::serde::decode_from_slice::<T, _>(bytes, answer_config())
        .map_err(|e| format!("the service's answer was unreadable: {e}"))?;
    if used != bytes.len() {
        return Err(format!(
            "the service's answer was unreadable: {} bytes left over",
            bytes.len() - used
        ));
    }
    Ok(value)
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

    #[test]
    fn a_reply_and_a_refusal_keep_their_id_and_bytes() {
        for result in [
            Ok(encode_answer(&(7u64, "x")).unwrap()),
            Err("no such account".into()),
        ] {
            let frame = ServerFrame::Reply {
                id: 0x0102_0304_0506_0708,
                result: result.clone(),
            };
            match ServerFrame::decode(&frame.encode().unwrap()).unwrap() {
                ServerFrame::Reply { id, result: back } => {
                    assert_eq!(id, 0x0102_0304_0506_0708);
                    assert_eq!(back, result);
                }
                other => panic!("not a reply: {other:?}"),
            }
        }
    }

    #[test]
    fn an_event_and_lagged_read_back() {
        let event = ServiceEvent::Sync(crate::sync::SyncEvent::Notice {
            account_id: None,
            message: "fetch deferred".into(),
        });
        let body = (ServerFrame::Event { event }).encode().unwrap();
        assert!(matches!(
            ServerFrame::decode(&body).unwrap(),
            ServerFrame::Event {
                event: ServiceEvent::Sync(crate::sync::SyncEvent::Notice { message, .. })
            } if message == "fetch deferred"
        ));
        let body = ServerFrame::Lagged.encode().unwrap();
        assert!(matches!(
            ServerFrame::decode(&body),
            Ok(ServerFrame::Lagged)
        ));
    }

    /// A server frame comes from another process: every malformed one is an error, not a panic
    /// and not a reply to somebody.
    #[test]
    fn a_malformed_server_frame_is_an_error() {
        for body in [
            &[][..],
            &[KIND_ANSWER, 0, 0, 0][..],
            &[KIND_REFUSAL][..],
            &[KIND_EVENT, b'{'][..],
            &[KIND_LAGGED, 1][..],
            &[0, 0, 0, 0, 0, 0, 0, 0, 1][..],
            &[99][..],
        ] {
            assert!(ServerFrame::decode(body).is_err(), "{body:?} was accepted");
        }
    }

    #[test]
    fn an_answer_reads_back_as_its_type_and_no_other() {
        let daily = vec![
            (NaiveDate::from_ymd_opt(2026, 12, 1).unwrap(), 3u64),
            (NaiveDate::from_ymd_opt(2026, 12, 2).unwrap(), 0),
        ];
        let bytes = encode_answer(&daily).unwrap();
        assert_eq!(
            decode_answer::<Vec<(NaiveDate, u64)>>(&bytes).unwrap(),
            daily
        );
        // Trailing bytes (the two sides disagree on the type) and a cut answer are refused.
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode_answer::<Vec<(NaiveDate, u64)>>(&longer).is_err());
        assert!(decode_answer::<Vec<(NaiveDate, u64)>>(&bytes[..bytes.len() - 1]).is_err());
        assert!(decode_answer::<u64>(&bytes).is_err());
    }

    proptest::proptest! {
        /// Whatever bytes arrive, reading them as a frame or an answer returns, it never panics
        /// or allocates beyond the frame limit.
        #[test]
        fn arbitrary_bytes_never_panic_the_readers(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let _ = ServerFrame::decode(&bytes);
            let _ = decode_answer::<Vec<crate::domain::Mention>>(&bytes);
            let _ = decode_answer::<Option<crate::app::AccountFigures>>(&bytes);
            let _ = decode_answer::<crate::store::SearchPage>(&bytes);
            let _ = serde_json::from_slice::<RequestFrame>(&bytes);
        }
    }
}
