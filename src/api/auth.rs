//! Who is calling (issue 16). Every request carries a [`Caller`]: on the Unix socket the owner
//! (its file mode is its protection); on TCP the owner with the service's token, or a person of
//! the team with their personal token (`perch team add`). Anyone else gets 401.
//!
//! What each caller may do is decided by `domain::team`'s rules, asked by the handlers; the
//! dashboard's session and the CLI's upgrade (`/internal/...`) serve only callers who see
//! everything (owners and admins), since they read the whole store.

use std::sync::Arc;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};

use crate::domain::team::OWNER_NAME;
use crate::domain::{AccountId, Person};
use crate::service::Hub;

/// The person a request acts for.
#[derive(Clone, Debug)]
pub struct Caller(pub Person);

impl Caller {
    /// Refuses a caller who may not read `account`'s mentions (403 with the reason).
    pub fn must_read(&self, account: AccountId, handle: &str) -> Result<(), ApiError403> {
        if self.0.may_read(account) {
            Ok(())
        } else {
            Err(ApiError403(format!(
                "{} may not see {handle}: ask an owner or admin for `perch team grant {} {handle} read`",
                self.0.name, self.0.name
            )))
        }
    }

    /// Refuses a caller who may not reply or send DMs as `account`.
    pub fn must_reply(&self, account: AccountId, handle: &str) -> Result<(), ApiError403> {
        if self.0.may_reply(account) {
            Ok(())
        } else {
            Err(ApiError403(format!(
                "{} may not reply as {handle}: ask an owner or admin for `perch team grant {} {handle} reply`",
                self.0.name, self.0.name
            )))
        }
    }

    /// Refuses a caller who may not add, change or remove accounts or manage the team.
    pub fn must_manage(&self, what: &str) -> Result<(), ApiError403> {
        if self.0.manages() {
            Ok(())
        } else {
            Err(ApiError403(format!(
                "{} is a member: only owners and admins may {what}",
                self.0.name
            )))
        }
    }

    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// This caller as the team has them now, for a connection that outlives its request (SSE,
    /// the dashboard's session): `None` once they were removed or given a new token, and then
    /// the connection ends, as their token stops working at once. Their grants and role are
    /// the current ones. The owner (the socket, the service token) is always themselves; a store
    /// that cannot say ends the connection too (the client reconnects and is asked again).
    pub fn current(&self, hub: &Hub) -> Option<Caller> {
        if self.0.name == OWNER_NAME {
            return Some(self.clone());
        }
        match hub.store.person(&self.0.name) {
            Ok(Some(p)) if p.token_hash == self.0.token_hash => Some(Caller(p)),
            Ok(_) => None,
            Err(e) => {
                tracing::warn!("could not check a connection's person: {e}");
                None
            }
        }
    }

    /// Resolves once this caller is removed, or no longer `allowed` what the connection does
    /// (checked every 2 s); never for the owner.
    pub async fn revoked(&self, hub: &Hub, allowed: impl Fn(&Person) -> bool) {
        if self.0.name == OWNER_NAME {
            return std::future::pending().await;
        }
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(2));
        loop {
            tick.tick().await;
            match self.current(hub) {
                Some(now) if allowed(&now.0) => {}
                _ => {
                    tracing::info!(person = %self.0.name, "a connection of a removed or changed person ends");
                    return;
                }
            }
        }
    }
}

/// A refusal for lack of permission (403), with the reason.
#[derive(Debug)]
pub struct ApiError403(pub String);

impl From<ApiError403> for super::rest::ApiError {
    fn from(e: ApiError403) -> Self {
        super::rest::ApiError::new(StatusCode::FORBIDDEN, e.0)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Caller>().cloned().ok_or_else(|| {
            super::error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "this request was not identified (a perch bug: the route has no caller layer)",
            )
        })
    }
}

/// The Unix socket's layer: every request is the owner's.
pub async fn socket_owner(mut request: Request, next: Next) -> Response {
    request
        .extensions_mut()
        .insert(Caller(Person::local_owner()));
    next.run(request).await
}

/// The TCP layer: lets a request through only with `Authorization: Bearer <token>`, the
/// service's (the owner) or a person's, and records who it is.
pub async fn require_bearer(
    State(hub): State<Arc<Hub>>,
    mut request: Request,
    next: Next,
) -> Response {
    // X sends the person's browser back here, and a browser has no token to send. The login's
    // one-time random `state` is what protects the route: a callback without a pending state
    // changes nothing.
    if request.uri().path() == crate::api::rest::AUTH_CALLBACK_PATH {
        request
            .extensions_mut()
            .insert(Caller(Person::local_owner()));
        return next.run(request).await;
    }
    let presented = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .map(str::to_string);
    let Some(token) = presented else {
        return unauthorized(
            "this API needs `Authorization: Bearer <token>` on TCP: `perch service token` prints the owner's, `perch team add` makes a person's",
        );
    };
    let caller = if crate::service::token::matches(&token, &hub.api_token) {
        Person::local_owner()
    } else {
        let hash = crate::service::token::hash(&token);
        let store = hub.store.clone();
        match tokio::task::spawn_blocking(move || store.person_by_token_hash(&hash)).await {
            Ok(Ok(Some(person))) => person,
            Ok(Ok(None)) => {
                return unauthorized(
                    "the bearer token is neither this service's (`perch service token`) nor a team member's (`perch team list`)",
                );
            }
            Ok(Err(e)) => return super::error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
            Err(e) => return super::error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        }
    };
    // The dashboard's session, the CLI and service control read or change the whole store.
    if request.uri().path().starts_with("/internal/") && !caller.sees_everything() {
        return super::error(
            StatusCode::FORBIDDEN,
            format!(
                "{} is a member: the dashboard session, the CLI and service control are for owners and admins; members use the REST API under /api/v1/",
                caller.name
            ),
        );
    }
    request.extensions_mut().insert(Caller(caller));
    next.run(request).await
}

fn unauthorized(detail: &str) -> Response {
    let mut response = super::error(StatusCode::UNAUTHORIZED, detail);
    response.headers_mut().insert(
        axum::http::header::WWW_AUTHENTICATE,
        axum::http::HeaderValue::from_static("Bearer"),
    );
    response.into_response()
}
