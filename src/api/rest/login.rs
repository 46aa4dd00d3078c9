//! Adding and reauthorizing accounts over the API: the service is the OAuth client (it holds the
//! PKCE verifier and the state while the person is on X's authorize page).
//!
//! Where X sends the browser back depends on the configured `redirect_uri`:
//! - when it is this API's own TCP address, path `/api/v1/auth/callback` (registered with X as
//!   such), `GET /api/v1/auth/callback?code=&state=` finishes the login and returns the account;
//! - otherwise (the usual `http://127.0.0.1:8765/callback`) the service listens on that loopback
//!   address itself, as `perch login` does, and finishes the login when the browser arrives; the
//!   account then shows in `GET /api/v1/accounts/` and as an `account_updated` event.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::Utc;
use serde::Deserialize;
use utoipa::IntoParams;

use super::extract::Params;
use super::shapes::{AuthorizationUrl, ErrorBody};
use super::{ApiError, ApiResult};
use crate::auth::{self, AuthError, CallbackListener, LOGIN_TIMEOUT, LoginRequest, OAuthSettings};
use crate::domain::Account;
use crate::service::Hub;

/// The API path X redirects to when `redirect_uri` points at the API.
pub const CALLBACK_PATH: &str = "/api/v1/auth/callback";

/// Logins started and not finished, at most this many (the oldest is forgotten first).
const MAX_PENDING: usize = 16;

/// A login waiting for its callback on the API.
struct Pending {
    login: LoginRequest,
    settings: OAuthSettings,
    /// A reauthorization: the login must come back as this account.
    expected: Option<Account>,
    started: Instant,
    /// Who started it (the audit log names them).
    started_by: String,
    /// The service (store) it was started for: one process can run several (tests).
    data_dir: PathBuf,
}

static PENDING: Mutex<Vec<Pending>> = Mutex::new(Vec::new());

fn pending() -> std::sync::MutexGuard<'static, Vec<Pending>> {
    PENDING.lock().unwrap_or_else(|p| p.into_inner())
}

/// Starts a login (or a reauthorization of `expected`) and returns the URL to open.
pub async fn begin(
    hub: &Arc<Hub>,
    expected: Option<Account>,
    started_by: &str,
) -> ApiResult<String> {
    let started_by = started_by.to_string();
    let Some(settings) = hub.oauth.clone() else {
        let e = AuthError::NoClientId {
            config_path: hub.config.config_path.clone(),
            redirect_uri: hub.config.redirect_uri.clone(),
        };
        return Err(ApiError::unavailable(e.to_string()));
    };
    if redirects_to_api(&settings.redirect_uri, hub.info.api_listen) {
        let mut login = auth::start_login(&settings).map_err(auth_error)?;
        if let Some(a) = &expected {
            login.url = auth::with_login_hint(&login.url, &a.twitter_username);
        }
        let url = login.url.clone();
        let mut waiting = pending();
        waiting.retain(|p| p.started.elapsed() < LOGIN_TIMEOUT);
        if waiting.len() >= MAX_PENDING {
            waiting.remove(0);
        }
        waiting.push(Pending {
            login,
            settings,
            expected,
            started: Instant::now(),
            started_by,
            data_dir: hub.info.data_dir.clone(),
        });
        return Ok(url);
    }
    // The loopback listener, as `perch login` uses it.
    let mut listener = CallbackListener::bind(&settings.redirect_uri)
        .await
        .map_err(|e| match e {
            AuthError::PortBusy { port } => ApiError::conflict(format!(
                "another login is waiting for its redirect on port {port} (or another program uses it); finish that one or wait {} minutes",
                LOGIN_TIMEOUT.as_secs() / 60
            )),
            e => auth_error(e),
        })?;
    let mut settings = settings;
    settings.redirect_uri = listener.redirect_uri().to_string();
    let mut login = auth::start_login(&settings).map_err(auth_error)?;
    if let Some(a) = &expected {
        login.url = auth::with_login_hint(&login.url, &a.twitter_username);
    }
    let url = login.url.clone();
    let hub = hub.clone();
    tokio::spawn(async move {
        let wait = async {
            let (code, responder) = listener.next_callback(login.state(), LOGIN_TIMEOUT).await?;
            let result = finish(
                &hub,
                &settings,
                &login,
                &code,
                expected.as_ref(),
                &started_by,
            )
            .await;
            match &result {
                Ok(a) => responder.finish_async(Ok(&a.handle())).await,
                Err(e) => responder.finish_async(Err(&e.to_string())).await,
            }
            result
        };
        tokio::select! {
            result = wait => {
                if let Err(e) = result {
                    tracing::warn!("a login started over the API did not complete: {e}");
                }
            }
            _ = hub.stopped() => {}
        }
    });
    Ok(url)
}

/// Whether `redirect_uri` is this API's own callback route on its TCP address.
fn redirects_to_api(redirect_uri: &str, api: Option<std::net::SocketAddr>) -> bool {
    let (Some(api), Ok(url)) = (api, url::Url::parse(redirect_uri)) else {
        return false;
    };
    let host_matches = match url.host() {
        Some(url::Host::Ipv4(ip)) => {
            std::net::IpAddr::V4(ip) == api.ip() || (ip.is_loopback() && api.ip().is_loopback())
        }
        Some(url::Host::Ipv6(ip)) => {
            std::net::IpAddr::V6(ip) == api.ip() || (ip.is_loopback() && api.ip().is_loopback())
        }
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost") && api.ip().is_loopback(),
        None => false,
    };
    host_matches && url.port_or_known_default() == Some(api.port()) && url.path() == CALLBACK_PATH
}

/// The code exchange, the identity check, the store, and the engine told.
async fn finish(
    hub: &Hub,
    settings: &OAuthSettings,
    login: &LoginRequest,
    code: &str,
    expected: Option<&Account>,
    person: &str,
) -> Result<Account, AuthError> {
    let tokens = auth::exchange_code(settings, login, code).await?;
    let (account, reauthorized) =
        auth::complete_login_as(&hub.store, &hub.client, tokens, expected, Utc::now()).await?;
    hub.account_logged_in(account.id).await;
    super::audit(
        hub,
        crate::domain::AuditEntry::login(person, &account, reauthorized),
    )
    .await;
    Ok(account)
}

fn auth_error(e: AuthError) -> ApiError {
    let status = match &e {
        AuthError::NoClientId { .. } | AuthError::Config { .. } => StatusCode::SERVICE_UNAVAILABLE,
        AuthError::BadRedirectUri { .. } => StatusCode::SERVICE_UNAVAILABLE,
        AuthError::Denied => StatusCode::FORBIDDEN,
        AuthError::WrongAccount { .. } | AuthError::PortBusy { .. } => StatusCode::CONFLICT,
        AuthError::StateMismatch | AuthError::InvalidCallback { .. } => StatusCode::BAD_REQUEST,
        AuthError::CodeRejected { .. } | AuthError::AuthorizeFailed { .. } => {
            StatusCode::BAD_REQUEST
        }
        AuthError::Store(_) | AuthError::Io(_) => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_GATEWAY,
    };
    ApiError::new(status, e.to_string())
}

/// Starts adding an account.
#[utoipa::path(
    get,
    path = "/api/v1/auth/login",
    tag = "auth",
    responses(
        (status = 200, body = AuthorizationUrl),
        (status = 409, description = "Another login is waiting on the loopback redirect", body = ErrorBody),
        (status = 503, description = "No X app is configured (client_id)", body = ErrorBody),
    )
)]
pub async fn login(
    State(hub): State<Arc<Hub>>,
    caller: crate::api::auth::Caller,
) -> ApiResult<Json<AuthorizationUrl>> {
    caller.must_manage("add an account")?;
    let url = begin(&hub, None, caller.name()).await?;
    Ok(Json(AuthorizationUrl {
        authorization_url: url,
    }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CallbackParams {
    /// The authorization code X added to the redirect.
    code: Option<String>,
    /// The state of the login this redirect finishes.
    state: Option<String>,
    /// Set by X when the person refused (`access_denied`) or the request was wrong.
    error: Option<String>,
    error_description: Option<String>,
}

/// Where X redirects the browser (when `redirect_uri` is this API's address): exchanges the
/// code, creates the account or updates the one already tracked for that X user, and returns it.
#[utoipa::path(
    get,
    path = "/api/v1/auth/callback",
    tag = "auth",
    params(CallbackParams),
    responses(
        (status = 200, description = "The account added or reauthorized", body = Account),
        (status = 400, description = "An unknown or expired state, or a code X refused", body = ErrorBody),
        (status = 403, description = "The person refused on X", body = ErrorBody),
        (status = 409, description = "A reauthorization came back as another X account", body = ErrorBody),
        (status = 422, body = ErrorBody),
    )
)]
pub async fn callback(
    State(hub): State<Arc<Hub>>,
    Params(params): Params<CallbackParams>,
) -> ApiResult<Json<Account>> {
    if let Some(error) = params.error {
        return Err(auth_error(if error == "access_denied" {
            AuthError::Denied
        } else {
            AuthError::AuthorizeFailed {
                error,
                description: params.error_description,
            }
        }));
    }
    let (Some(code), Some(state)) = (params.code.filter(|c| !c.is_empty()), params.state) else {
        return Err(ApiError::unprocessable(
            "the callback needs code and state (the query X adds to the redirect)",
        ));
    };
    let found = {
        let mut waiting = pending();
        waiting.retain(|p| p.started.elapsed() < LOGIN_TIMEOUT);
        let at = waiting
            .iter()
            .position(|p| p.login.state() == state && p.data_dir == hub.info.data_dir);
        at.map(|i| waiting.remove(i))
    };
    let Some(p) = found else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "no login is waiting for this state (it expired, was used, or was started elsewhere): start again with GET /api/v1/auth/login",
        ));
    };
    let account = finish(
        &hub,
        &p.settings,
        &p.login,
        &code,
        p.expected.as_ref(),
        &p.started_by,
    )
    .await
    .map_err(auth_error)?;
    Ok(Json(account))
}
