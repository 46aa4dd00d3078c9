//! The service's HTTP surface, on the Unix socket and (with `api_listen`) on TCP:
//!
//! - `rest.rs`: the original system's REST API under `/api/v1/` (accounts, mentions, auth, SSE
//!   events, the OpenAPI document).
//! - `session.rs`: the dashboard's session (`/internal/v1/session`, an upgraded connection
//!   speaking `protocol`), its fast path for hot reads, commands and pushed events.
//! - `internal.rs`: `perch service status` and `stop` (`/internal/v1/status`, `/internal/v1/stop`).
//! - `auth.rs`: TCP clients must send `Authorization: Bearer <token>`; the socket's file mode is
//!   its protection, so it needs none.

use std::sync::Arc;

use axum::Router;

use crate::service::Hub;

mod auth;
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
        Transport::Unix => routes,
        Transport::Tcp => routes.layer(axum::middleware::from_fn_with_state(
            hub.clone(),
            auth::require_bearer,
        )),
    };
    routes.with_state(hub)
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
