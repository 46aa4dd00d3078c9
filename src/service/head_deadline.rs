//! A connection must send its first request head within [`FIRST_REQUEST_HEAD`] of connecting,
//! or it is closed. `axum::serve` has no such limit, so a client that connected and sent nothing
//! (or trickled bytes) held a task and a descriptor of the service for as long as it liked.
//!
//! Why not hyper's own `header_read_timeout`: it also closes a keep-alive connection that is idle
//! between requests, and an HTTP client that reuses a pooled connection just as the server closes
//! it gets `IncompleteMessage` for a request that was fine. (A first attempt with it failed in
//! CI with that error; the cause there turned out to be another close, after a refused body,
//! which `api::close_when_body_left_unread` now announces; the idle close remains a race worth
//! not having.) Here only the *first* head is bounded: once a client has sent a whole request it
//! is a real client, and its keep-alive connection and its upgraded session (the dashboard's, a
//! CLI command's) may stay quiet as long as they like.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::serve::Listener;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// How long a new connection has to send its first request head.
pub const FIRST_REQUEST_HEAD: Duration = Duration::from_secs(10);

/// A listener whose connections must send their first request head in time.
pub struct HeadDeadlineListener<L> {
    inner: L,
    limit: Duration,
}

impl<L> HeadDeadlineListener<L> {
    pub fn new(inner: L, limit: Duration) -> HeadDeadlineListener<L> {
        HeadDeadlineListener { inner, limit }
    }
}

impl<L: Listener> Listener for HeadDeadlineListener<L> {
    type Io = HeadDeadline<L::Io>;
    type Addr = L::Addr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (io, addr) = self.inner.accept().await;
        (HeadDeadline::new(io, self.limit), addr)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// A connection that fails its reads once `limit` has passed before the end of the first request
/// head (the blank line after the headers) arrived; after that, it is the connection itself.
pub struct HeadDeadline<S> {
    inner: S,
    /// `None` once the first head is complete.
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    /// The last bytes read so far, to find a `\r\n\r\n` split across reads.
    tail: Vec<u8>,
}

const HEAD_END: &[u8] = b"\r\n\r\n";

impl<S> HeadDeadline<S> {
    pub fn new(inner: S, limit: Duration) -> HeadDeadline<S> {
        HeadDeadline {
            inner,
            deadline: Some(Box::pin(tokio::time::sleep(limit))),
            tail: Vec::with_capacity(HEAD_END.len() * 2),
        }
    }

    /// Looks for the end of the head in the bytes just read (with the few before them).
    fn saw(&mut self, bytes: &[u8]) {
        if self.deadline.is_none() || bytes.is_empty() {
            return;
        }
        // Only the bytes that can complete `\r\n\r\n` are kept: the last three of what came before.
        let mut window = std::mem::take(&mut self.tail);
        window.extend_from_slice(bytes);
        if window.windows(HEAD_END.len()).any(|w| w == HEAD_END) {
            self.deadline = None;
            return;
        }
        let keep = window.len().min(HEAD_END.len() - 1);
        self.tail = window[window.len() - keep..].to_vec();
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for HeadDeadline<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if let Some(deadline) = &mut this.deadline
            && deadline.as_mut().poll(cx).is_ready()
        {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "no request head in time: closing the connection",
            )));
        }
        let before = buf.filled().len();
        let result = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &result {
            let new = buf.filled()[before..].to_vec();
            this.saw(&new);
        }
        result
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for HeadDeadline<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn a_connection_that_sends_nothing_fails_its_read_after_the_limit() {
        let (_client, server) = tokio::io::duplex(64);
        let mut conn = HeadDeadline::new(server, Duration::from_millis(50));
        let mut buf = [0u8; 16];
        let read = tokio::time::timeout(Duration::from_secs(30), conn.read(&mut buf))
            .await
            .expect("the deadline ends the read");
        assert_eq!(read.unwrap_err().kind(), io::ErrorKind::TimedOut);
    }

    #[tokio::test]
    async fn a_head_split_across_reads_lifts_the_deadline_for_good() {
        let (mut client, server) = tokio::io::duplex(64);
        let mut conn = HeadDeadline::new(server, Duration::from_millis(300));
        let mut buf = [0u8; 64];
        for part in [&b"GET / HTTP/1.1\r\nHost: x\r"[..], b"\n\r", b"\n"] {
            client.write_all(part).await.unwrap();
            let n = conn.read(&mut buf).await.unwrap();
            assert_eq!(n, part.len());
        }
        assert!(conn.deadline.is_none(), "the head is complete");
        // Long after the limit, the connection still reads (a quiet keep-alive or session).
        tokio::time::sleep(Duration::from_millis(400)).await;
        client.write_all(b"later").await.unwrap();
        let n = conn.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"later");
    }

    #[tokio::test]
    async fn bytes_without_a_blank_line_do_not_lift_the_deadline() {
        let (mut client, server) = tokio::io::duplex(64);
        let mut conn = HeadDeadline::new(server, Duration::from_millis(100));
        let mut buf = [0u8; 64];
        client
            .write_all(b"GET / HTTP/1.1\r\nX: 1\r\n")
            .await
            .unwrap();
        let n = conn.read(&mut buf).await.unwrap();
        assert!(n > 0);
        // A trickle keeps coming but the head never ends: the deadline still holds.
        let read = tokio::time::timeout(Duration::from_secs(30), conn.read(&mut buf))
            .await
            .expect("the deadline ends the read");
        assert_eq!(read.unwrap_err().kind(), io::ErrorKind::TimedOut);
    }
}
