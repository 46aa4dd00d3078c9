//! The service's HTTP surface, on the Unix socket and (with `api_listen`) on TCP:
//!
//! - `rest.rs`: the original system's REST API under `/api/v1/` (accounts, mentions, auth, SSE
//!   events, the OpenAPI document).
//! - `session.rs`: the dashboard's session (`/internal/v1/session` and `.../session/events`, two
//!   upgraded connections speaking `protocol`), its fast path for hot reads and commands, and
//!   its pushed events.
//! - `internal.rs`: `perch service status` and `stop` (`/internal/v1/status`, `/internal/v1/stop`).
//! - `auth.rs`: TCP clients must send `Authorization: Bearer <token>`; the socket's file mode is
//!   its protection, so it needs none.

use std::sync::Arc;

use axum::Router;

use crate::service::Hub;

pub mod auth;
pub mod internal;
pub mod rest;
mod session;

/// Which listener a router serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// The owner-only Unix socket: no token needed.
    Unix,
    /// TCP (`api_listen`): every request needs the bearer token.
    Tcp,
}

/// The largest request body the API reads (JSON commands are small; imports name files).
pub const MAX_BODY: usize = 1 << 20;

/// Every route the service serves on one transport.
pub fn router(hub: Arc<Hub>, transport: Transport) -> Router {
    let routes = Router::new()
        .merge(rest::routes())
        .merge(internal::routes())
        .merge(session::routes())
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY));
    let routes = match transport {
        Transport::Unix => routes.layer(axum::middleware::from_fn(auth::socket_owner)),
        Transport::Tcp => routes.layer(axum::middleware::from_fn_with_state(
            hub.clone(),
            auth::require_bearer,
        )),
    };
    routes
        .layer(axum::middleware::from_fn(close_when_body_left_unread))
        .with_state(hub)
}

/// A request refused before its body was read (too large, wrong type, no token) leaves the rest
/// of that body on the connection, so hyper closes the connection after answering. Saying so in
/// the answer (`Connection: close`) keeps a pooling client from sending its next request on a
/// connection that is about to go (it would get a broken answer, `IncompleteMessage`, for a
/// request that was fine).
async fn close_when_body_left_unread(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::http::{StatusCode, header};
    let has_body = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim() != "0")
        || request.headers().contains_key(header::TRANSFER_ENCODING);
    let mut response = next.run(request).await;
    let refused_unread = matches!(
        response.status(),
        StatusCode::PAYLOAD_TOO_LARGE
            | StatusCode::UNSUPPORTED_MEDIA_TYPE
            | StatusCode::UNAUTHORIZED
            | StatusCode::FORBIDDEN
    );
    if has_body && refused_unread {
        response.headers_mut().insert(
            header::CONNECTION,
            axum::http::HeaderValue::from_static("close"),
        );
    }
    response
}

/// An error body in the original system's (FastAPI's) shape: `{"detail": "..."}`.
pub fn error(
    status: axum::http::StatusCode,
    detail: impl Into<String>,
) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    (
        status,
        axum::Json(serde_json::json!({ "detail": detail.into() })),
    )
        .into_response()
}
