//! Serving the API on a listener, one task per connection, with limits on what a client can hold:
//! a connection must send its request head within [`HEADER_READ_TIMEOUT`] (one that connects and
//! sends nothing is closed, never kept forever), and on stop every connection is asked to finish
//! and dropped after [`DRAIN`]. `axum::serve` has no header-read timeout, so this is hyper's own
//! HTTP/1 connection with a timer; upgrades (the dashboard's session, CLI commands) are kept.

use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;

use super::Hub;

/// How long a new connection (or one idle between requests) may take to send a request head.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How long connections get to finish when the service stops.
const DRAIN: Duration = Duration::from_secs(2);

/// The two kinds of listener the service serves on.
pub trait Accept: Send + 'static {
    type Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static;
    fn accept(&self) -> impl std::future::Future<Output = std::io::Result<Self::Stream>> + Send;
}

impl Accept for tokio::net::UnixListener {
    type Stream = tokio::net::UnixStream;
    async fn accept(&self) -> std::io::Result<Self::Stream> {
        tokio::net::UnixListener::accept(self).await.map(|(s, _)| s)
    }
}

impl Accept for tokio::net::TcpListener {
    type Stream = tokio::net::TcpStream;
    async fn accept(&self) -> std::io::Result<Self::Stream> {
        let (stream, _) = tokio::net::TcpListener::accept(self).await?;
        let _ = stream.set_nodelay(true);
        Ok(stream)
    }
}

/// Serves `router` on `listener` until the service stops.
pub async fn serve(listener: impl Accept, router: axum::Router, hub: Arc<Hub>) {
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(stream) => stream,
                Err(e) => {
                    // Out of descriptors and the like: wait a moment rather than spin.
                    tracing::warn!("could not accept a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = hub.stopped() => return,
        };
        let service = TowerToHyperService::new(router.clone());
        let hub = hub.clone();
        tokio::spawn(async move {
            let mut builder = http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT);
            let connection = builder
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            tokio::pin!(connection);
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!("a connection ended: {e}");
                    }
                }
                _ = hub.stopped() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(DRAIN, connection.as_mut()).await;
                }
            }
        });
    }
}
