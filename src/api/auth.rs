//! The bearer token on TCP.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;

use crate::service::Hub;

/// Lets a request through only with `Authorization: Bearer <the service's token>`.
pub async fn require_bearer(State(hub): State<Arc<Hub>>, request: Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match presented {
        Some(token) if crate::service::token::matches(token, &hub.api_token) => {
            next.run(request).await
        }
        Some(_) => {
            unauthorized("the bearer token is not this service's (see `perch service token`)")
        }
        None => unauthorized(
            "this API needs `Authorization: Bearer <token>` on TCP; `perch service token` prints the token",
        ),
    }
}

fn unauthorized(detail: &str) -> Response {
    let mut response = super::error(StatusCode::UNAUTHORIZED, detail);
    response.headers_mut().insert(
        axum::http::header::WWW_AUTHENTICATE,
        axum::http::HeaderValue::from_static("Bearer"),
    );
    response
}
