//! The `oauth2` crate, configured for X: its reqwest 0.12 integration over a client that never
//! follows redirects (a token endpoint that redirects must not receive the code or the refresh
//! token a second time, somewhere else), and the mapping of its results onto perch's types.

use std::time::Duration;

use chrono::{DateTime, Utc};
use oauth2::basic::{BasicClient, BasicErrorResponse, BasicErrorResponseType, BasicTokenResponse};
use oauth2::{
    AuthUrl, ClientId, ClientSecret, EndpointNotSet, EndpointSet, HttpClientError, RedirectUrl,
    RequestTokenError, TokenResponse, TokenUrl,
};

use super::{AuthError, OAuthSettings};
use crate::domain::{Secret, Tokens};

pub(crate) type XOAuthClient =
    BasicClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

pub(crate) type TokenError = RequestTokenError<HttpClientError<reqwest::Error>, BasicErrorResponse>;

/// The HTTP client for the token endpoint.
pub(crate) fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("perch/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap_or_else(|e| {
            tracing::warn!("cannot build the OAuth HTTP client ({e}); using defaults");
            reqwest::Client::default()
        })
}

/// The `oauth2` client for these settings. Without a secret, `client_id` goes in the form body
/// (public client); with one, HTTP Basic authentication (the crate's default), as X requires of
/// confidential clients.
pub(crate) fn client(settings: &OAuthSettings) -> Result<XOAuthClient, AuthError> {
    let bad = |what: &str, value: &str, e: url::ParseError| AuthError::Config {
        detail: format!("the {what} {value:?} is not a URL ({e})"),
    };
    let auth_url = AuthUrl::new(settings.authorize_url.clone()).map_err(|e| {
        bad(
            "authorize URL (PERCH_AUTHORIZE_URL)",
            &settings.authorize_url,
            e,
        )
    })?;
    let token_url = TokenUrl::new(settings.token_url.clone())
        .map_err(|e| bad("token URL (PERCH_TOKEN_URL)", &settings.token_url, e))?;
    let redirect = RedirectUrl::new(settings.redirect_uri.clone()).map_err(|e| {
        bad(
            "redirect URI (PERCH_REDIRECT_URI)",
            &settings.redirect_uri,
            e,
        )
    })?;
    let mut client = BasicClient::new(ClientId::new(settings.client_id.clone()))
        .set_auth_uri(auth_url)
        .set_token_uri(token_url)
        .set_redirect_uri(redirect);
    if let Some(secret) = &settings.client_secret {
        client = client.set_client_secret(ClientSecret::new(secret.expose().to_string()));
    }
    Ok(client)
}

/// perch's record of a token response. A response without `expires_in` counts as already
/// expired, so the first use refreshes it; one without a refresh token keeps `previous_refresh`
/// (a refresh that does not rotate leaves the old one valid).
pub(crate) fn tokens_from_response(
    response: &BasicTokenResponse,
    previous_refresh: Option<&Secret>,
    now: DateTime<Utc>,
) -> Tokens {
    let expires_at = response
        .expires_in()
        .and_then(|d| chrono::Duration::from_std(d).ok())
        .and_then(|d| now.checked_add_signed(d))
        .unwrap_or(now);
    let scope = response
        .scopes()
        .map(|scopes| {
            scopes
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default();
    Tokens {
        access_token: Secret::new(response.access_token().secret().clone()),
        refresh_token: response
            .refresh_token()
            .map(|r| Secret::new(r.secret().clone()))
            .or_else(|| previous_refresh.cloned()),
        expires_at,
        scope,
    }
}

/// What the token endpoint's refusal was, in words (never the body: it could hold a token).
fn server_detail(response: &BasicErrorResponse) -> String {
    let code = response.error().as_ref().to_string();
    match response.error_description() {
        Some(description) => format!("{code}: {description}"),
        None => code,
    }
}

/// Which of perch's errors a failed token request is. `rejected` builds the error for a refused
/// grant (`invalid_request`/`invalid_grant`): a bad code at login, a spent refresh token later.
pub(crate) fn map_token_error(
    error: TokenError,
    rejected: impl FnOnce(String) -> AuthError,
) -> AuthError {
    match error {
        RequestTokenError::ServerResponse(response) => {
            let detail = server_detail(&response);
            match response.error() {
                BasicErrorResponseType::InvalidRequest | BasicErrorResponseType::InvalidGrant => {
                    rejected(detail)
                }
                BasicErrorResponseType::InvalidClient
                | BasicErrorResponseType::UnauthorizedClient => {
                    AuthError::ClientRejected { detail }
                }
                _ => AuthError::TokenEndpoint { detail },
            }
        }
        RequestTokenError::Request(e) => AuthError::Network(describe_http_error(&e)),
        RequestTokenError::Parse(e, _body) => AuthError::TokenEndpoint {
            detail: format!("a response perch cannot read: {}", e.inner()),
        },
        RequestTokenError::Other(detail) => AuthError::TokenEndpoint { detail },
    }
}

fn describe_http_error(e: &HttpClientError<reqwest::Error>) -> String {
    match e {
        HttpClientError::Reqwest(e) if e.is_timeout() => format!("timed out: {e}"),
        HttpClientError::Reqwest(e) => e.to_string(),
        other => other.to_string(),
    }
}
