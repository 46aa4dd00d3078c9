//! The original system's REST API under `/api/v1/`, on both transports (the Unix socket needs
//! no token, TCP needs the bearer token: `api/auth.rs`).
//!
//! - `shapes.rs`: the request and response bodies (the original system's shapes, which
//!   `perch ... --json` prints too).
//! - `extract.rs`: JSON bodies and query strings whose rejections read like FastAPI's:
//!   `{"detail": "..."}` with 400/413/415/422.
//! - `accounts.rs`, `mentions.rs`, `send.rs` (reply and DM through the outbox), `login.rs` (the
//!   OAuth routes), `events.rs` (Server-Sent Events).
//!
//! The OpenAPI document is generated from the handlers' `#[utoipa::path]` attributes and the
//! types' `ToSchema` derives: `GET /api/v1/openapi.json`, and [`openapi`] for tests.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::service::Hub;
use crate::store::StoreError;
use crate::store::lookup::LookupError;

mod accounts;
mod events;
pub mod extract;
mod login;
mod mentions;
mod send;
pub mod shapes;
mod team;

/// The mentions a committed page stored, read back from the store (the service's notifier uses it
/// too, so both find the same ones).
pub(crate) use events::new_mentions;

/// The document's fixed parts; the paths and schemas come from the handlers.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "perch",
        description = "The perch service's REST API: the tracked X accounts, their mentions, \
replies and DMs through the durable outbox, and a live event stream. On the Unix socket no \
token is needed (its file mode protects it); on TCP (`api_listen`) every request needs \
`Authorization: Bearer <token>` (`perch service token`). Errors are `{\"detail\": \"...\"}`.",
        license(name = "MIT")
    ),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    tags(
        (name = "accounts", description = "The tracked X accounts"),
        (name = "mentions", description = "Mentions, triage, replies and DMs"),
        (name = "auth", description = "Adding and reauthorizing accounts (OAuth 2.0 with PKCE)"),
        (name = "events", description = "Live events (Server-Sent Events)"),
        (name = "team", description = "Working as a team: assignments and the audit log"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "TCP only: the service's token (`perch service token`). The Unix socket needs none.",
                    ))
                    .build(),
            ),
        );
    }
}

fn api() -> OpenApiRouter<Arc<Hub>> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(accounts::list))
        .routes(routes!(accounts::get, accounts::patch, accounts::delete))
        .routes(routes!(accounts::stats))
        .routes(routes!(accounts::reauthorize))
        .routes(routes!(login::login))
        .routes(routes!(login::callback))
        .routes(routes!(mentions::list))
        .routes(routes!(mentions::get, mentions::patch))
        .routes(routes!(mentions::fetch_new))
        .routes(routes!(send::reply))
        .routes(routes!(send::dm))
        .routes(routes!(events::events))
        .routes(routes!(team::assign))
        .routes(routes!(team::audit_log))
        .routes(routes!(team::touch_presence, team::leave_presence))
}

/// The generated OpenAPI 3.1 document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api().split_for_parts().1
}

pub fn routes() -> Router<Arc<Hub>> {
    let (router, doc) = api().split_for_parts();
    let doc = Arc::new(doc);
    router
        .route(
            "/api/v1/openapi.json",
            get(move || {
                let doc = doc.clone();
                async move { Json(doc.as_ref().clone()) }
            }),
        )
        // FastAPI's answers for a path or method that is not there, with the same body shape.
        .fallback(|| async { ApiError::not_found("Not Found") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed")
        })
}

/// A request that could not be served, as the original system says it: `{"detail": "..."}`.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub detail: String,
}

impl ApiError {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> ApiError {
        ApiError {
            status,
            detail: detail.into(),
        }
    }
    pub fn not_found(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, detail)
    }
    pub fn unprocessable(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, detail)
    }
    pub fn conflict(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, detail)
    }
    pub fn unavailable(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, detail)
    }
    pub fn internal(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, detail)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        crate::api::error(self.status, self.detail)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            e @ StoreError::DiskFull { .. } => {
                ApiError::new(StatusCode::INSUFFICIENT_STORAGE, e.to_string())
            }
            StoreError::Conflict(m) => ApiError::conflict(m),
            StoreError::NotOnPostgres(m) => ApiError::new(StatusCode::NOT_IMPLEMENTED, m),
            e => ApiError::internal(e.to_string()),
        }
    }
}

impl From<LookupError> for ApiError {
    fn from(e: LookupError) -> ApiError {
        match e {
            LookupError::NotFound(m) => ApiError::not_found(m),
            LookupError::Ambiguous(m) => ApiError::conflict(m),
            LookupError::Malformed(m) => ApiError::unprocessable(m),
            LookupError::Store(e) => e.into(),
        }
    }
}

/// The OAuth callback route: the one route TCP serves without the bearer token (a browser
/// arrives there from X; the login's one-time `state` protects it).
pub const AUTH_CALLBACK_PATH: &str = login::CALLBACK_PATH;

pub type ApiResult<T> = Result<T, ApiError>;

/// Appends an entry to the audit log (issue 16).
pub async fn audit(hub: &Hub, entry: crate::domain::AuditEntry) {
    // The action is done whatever this does: a failure to record it must not read as a failure
    // of the action (a client told "500" after a removal that happened would retry it).
    if let Err(e) = blocking_shared(hub, move |s| Ok(s.append_audit(entry).map(|_| ())?)).await {
        tracing::warn!("could not record an action in the audit log: {}", e.detail);
    }
}

/// Runs a store operation off the async threads (sled may block on a flush).
pub async fn blocking<T: Send + 'static>(
    hub: &Hub,
    op: impl FnOnce(&crate::store::Store) -> Result<T, ApiError> + Send + 'static,
) -> ApiResult<T> {
    // Most of the REST API reads sled's store until it is behind the store trait (issue 16);
    // on PostgreSQL it answers 501 and says so. `blocking_shared` runs on either.
    let store = hub.sled_store()?;
    tokio::task::spawn_blocking(move || op(&store))
        .await
        .map_err(|e| ApiError::internal(format!("a store task failed: {e}")))?
}

/// [`blocking`] for operations the store trait covers, on sled or PostgreSQL.
pub async fn blocking_shared<T: Send + 'static>(
    hub: &Hub,
    op: impl FnOnce(&dyn crate::store::ServiceBackend) -> Result<T, ApiError> + Send + 'static,
) -> ApiResult<T> {
    let store = hub.store.clone();
    tokio::task::spawn_blocking(move || op(store.as_ref()))
        .await
        .map_err(|e| ApiError::internal(format!("a store task failed: {e}")))?
}
