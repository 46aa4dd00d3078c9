//! OAuth 2.0 for X: adding an account (Authorization Code + PKCE, with a loopback listener or a
//! pasted redirect) and keeping its tokens alive (refresh before expiry, one refresh at a time per
//! account, rotated tokens made durable before use). CONTRACT.md §1 is the reference.
//!
//! - `login`: the authorization URL, reading the callback, the code exchange, storing the account.
//! - `listener`: the loopback HTTP listener that receives the browser's redirect.
//! - `tokens`: [`TokenManager`], refresh and the retry-once-on-401 wrapper.
//! - `oauth`: the `oauth2` crate client and how its errors map onto [`AuthError`].
//! - `revoke`: ending the grant at X when an account is removed.

// AuthError can carry an XError, which holds the rate-limit headers by value (the x contract).
// Errors are rare and short-lived here, so their size costs nothing worth boxing for.
#![allow(clippy::result_large_err)]

mod listener;
mod login;
pub(crate) mod oauth;
pub mod revoke;
mod tokens;

use std::path::PathBuf;

use crate::domain::{AccountId, Secret};
use crate::store::StoreError;
use crate::x::XError;

pub use listener::{CallbackListener, CallbackResponder};
pub use login::{
    LoginRequest, complete_login, complete_login_as, exchange_code, login_headless,
    login_headless_as, login_with_listener, login_with_listener_as, login_with_listener_using,
    parse_callback, start_login, with_login_hint,
};
pub use tokens::{TokenManager, refresh_tokens};

/// The scopes perch asks for: read mentions and profiles, post replies, send DMs, and a refresh
/// token (`offline.access`) so that the user logs in once.
pub const SCOPES: &str = "tweet.read users.read tweet.write dm.read dm.write offline.access";

/// How long the login waits for the browser before giving up.
pub const LOGIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5 * 60);

/// Refresh an access token this long before it expires (as xurl does).
pub const EXPIRY_SKEW: chrono::Duration = chrono::Duration::seconds(30);

/// Where and as whom perch talks OAuth to X.
#[derive(Clone, Debug)]
pub struct OAuthSettings {
    pub client_id: String,
    /// Set for confidential clients (HTTP Basic at the token endpoint); `None` for public ones.
    pub client_secret: Option<Secret>,
    pub authorize_url: String,
    pub token_url: String,
    pub redirect_uri: String,
}

impl OAuthSettings {
    pub fn from_config(cfg: &crate::config::Config) -> Result<OAuthSettings, AuthError> {
        let client_id = cfg
            .client_id
            .as_deref()
            .map(str::trim)
            .filter(|id| !id.is_empty())
            .ok_or_else(|| AuthError::NoClientId {
                config_path: cfg.config_path.clone(),
                redirect_uri: cfg.redirect_uri.clone(),
            })?;
        Ok(OAuthSettings {
            client_id: client_id.to_string(),
            client_secret: cfg.client_secret.clone(),
            authorize_url: cfg.authorize_url.clone(),
            token_url: cfg.token_url.clone(),
            redirect_uri: cfg.redirect_uri.clone(),
        })
    }
}

/// A resource call made through [`TokenManager::with_token`] failed: either X refused it, or no
/// usable token could be had.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error(transparent)]
    X(XError),
    #[error(transparent)]
    Auth(AuthError),
}

/// Every way adding an account or keeping its tokens alive can fail. Each message says what
/// happened and what to do next; none contains a token.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error(
        "no X client id is configured. Set PERCH_CLIENT_ID, or client_id in {}. To get one, create an app in the X developer portal (https://developer.x.com/en/portal/dashboard), turn on OAuth 2.0 with type \"Native App\", set its callback URL to {redirect_uri}, and copy its OAuth 2.0 Client ID",
        config_path.display()
    )]
    NoClientId {
        config_path: PathBuf,
        redirect_uri: String,
    },
    #[error(
        "the authorization was declined on X, so no account was added; run the login again and choose \"Authorize app\" to add it"
    )]
    Denied,
    #[error(
        "X reported an authorization error ({error}{}); check the app's settings in the X developer portal (callback URL, OAuth 2.0 enabled) and run the login again",
        description.as_deref().map(|d| format!(": {d}")).unwrap_or_default()
    )]
    AuthorizeFailed {
        error: String,
        description: Option<String>,
    },
    #[error(
        "perch refused this authorization response: its state does not match the login in progress (an old link, or one that did not come from this login). Start the login again and use the new link"
    )]
    StateMismatch,
    #[error(
        "that is not an authorization response perch can read ({detail}); paste the whole address the browser was sent to (it contains code=...), or just the code"
    )]
    InvalidCallback { detail: String },
    #[error(
        "X did not accept the authorization code ({detail}); codes work once and only for 30 seconds: run the login again and finish it promptly"
    )]
    CodeRejected { detail: String },
    #[error(
        "X no longer accepts the saved token ({detail}); reauthorize the account: press R in perch, or run `perch accounts reauthorize @handle`"
    )]
    RefreshRejected { detail: String },
    #[error(
        "X's token endpoint refused perch's client credentials ({detail}); if your X app is a confidential client (Web App, Automated App or bot), set PERCH_CLIENT_SECRET, otherwise check PERCH_CLIENT_ID"
    )]
    ClientRejected { detail: String },
    #[error(
        "X's token endpoint gave an unexpected answer ({detail}); try again later, and check PERCH_TOKEN_URL if it keeps happening"
    )]
    TokenEndpoint { detail: String },
    #[error(
        "port {port} for the login callback is in use by another program; close it, or pick a free port with PERCH_REDIRECT_URI (e.g. http://127.0.0.1:8766/callback) and add that URL as a callback URL of your X app"
    )]
    PortBusy { port: u16 },
    #[error(
        "the login callback address {redirect_uri:?} cannot be used ({detail}); set PERCH_REDIRECT_URI to a loopback http URL such as {}",
        crate::config::DEFAULT_REDIRECT_URI
    )]
    BadRedirectUri {
        redirect_uri: String,
        detail: String,
    },
    #[error("the OAuth settings are not usable: {detail}")]
    Config { detail: String },
    #[error(
        "no answer came back from the browser within the time allowed; run the login again, or use `perch login --headless` and paste the address the browser ends up on"
    )]
    Timeout,
    #[error(
        "network error talking to X's OAuth endpoints ({0}); check the connection and try again"
    )]
    Network(String),
    #[error("{0}")]
    Io(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Storing the login through the perch service failed with this message.
    #[error("{message}")]
    Stored { message: String },
    #[error("after logging in, X did not return the account's profile: {0}")]
    X(XError),
    #[error(
        "perch has no saved tokens for this account; reauthorize it (press R on it in perch, or run `perch accounts reauthorize @handle`)"
    )]
    NoTokens { account: AccountId },
    #[error(
        "the account is no longer in the store (it was removed); add it again with `perch login` if that was a mistake"
    )]
    UnknownAccount { account: AccountId },
    /// A reauthorization came back logged in as another X user: nothing was changed.
    #[error(
        "the login was for @{got}, not @{expected}: nothing was changed. Log in to X as @{expected} (log out of @{got} on x.com first, or use a private window) and reauthorize again"
    )]
    WrongAccount { expected: String, got: String },
}

impl AuthError {
    /// True when the account's grant is gone and only a new login can fix it.
    pub fn needs_reauthorization(&self) -> bool {
        matches!(
            self,
            AuthError::RefreshRejected { .. } | AuthError::NoTokens { .. }
        )
    }
}

/// The message stored on an account whose refresh X rejected (shown in the accounts pane).
pub fn token_expired_message(username: &str) -> String {
    format!(
        "X no longer accepts perch's token for @{username}: press R in perch, or run `perch accounts reauthorize @{username}`"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_debug_never_shows_the_client_secret() {
        let settings = OAuthSettings {
            client_id: "id".into(),
            client_secret: Some(Secret::new("very-secret-value")),
            authorize_url: "https://x.com/i/oauth2/authorize".into(),
            token_url: "https://api.x.com/2/oauth2/token".into(),
            redirect_uri: "http://127.0.0.1:8765/callback".into(),
        };
        let shown = format!("{settings:?}");
        assert!(!shown.contains("very-secret-value"), "{shown}");
    }

    #[test]
    fn the_token_expired_message_names_the_handle_and_the_fix() {
        let m = token_expired_message("acme");
        assert!(
            m.contains("@acme")
                && m.contains("press R")
                && m.contains("perch accounts reauthorize @acme")
        );
    }
}
