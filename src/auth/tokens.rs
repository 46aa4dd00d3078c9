//! Keeping access tokens alive. X's access tokens live two hours and every refresh rotates the
//! refresh token (the old one is spent at once), so two refreshes racing with the same refresh
//! token would log the account out. Hence: one refresh in flight per account (the others wait for
//! it and use its result), and the rotated tokens are durable in the store before the new access
//! token is handed to anyone, so a crash can never leave perch holding only a spent token.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use chrono::Utc;
use oauth2::RefreshToken;

use super::login::blocking;
use super::oauth::{self, map_token_error, tokens_from_response};
use super::{AuthError, CallError, EXPIRY_SKEW, OAuthSettings, token_expired_message};
use crate::domain::{AccountId, Secret, SyncStatus, Tokens};
use crate::store::SharedStore;
use crate::x::XError;

/// Hands out valid access tokens for stored accounts, refreshing them when needed. Cheap to
/// clone; clones share the per-account locks.
#[derive(Clone)]
pub struct TokenManager {
    inner: Arc<Inner>,
}

struct Inner {
    store: SharedStore,
    settings: OAuthSettings,
    http: reqwest::Client,
    /// One lock per account, held while its tokens are being refreshed.
    refresh_locks: Mutex<HashMap<AccountId, Arc<tokio::sync::Mutex<()>>>>,
}

impl std::fmt::Debug for TokenManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenManager")
            .field("token_url", &self.inner.settings.token_url)
            .finish_non_exhaustive()
    }
}

/// Exchanges a refresh token for new tokens (no store involved). A refusal
/// (`invalid_request`/`invalid_grant`: spent, revoked or unknown) is
/// [`AuthError::RefreshRejected`].
pub async fn refresh_tokens(
    settings: &OAuthSettings,
    refresh_token: &Secret,
) -> Result<Tokens, AuthError> {
    refresh_with(settings, &oauth::http_client(), refresh_token).await
}

async fn refresh_with(
    settings: &OAuthSettings,
    http: &reqwest::Client,
    refresh_token: &Secret,
) -> Result<Tokens, AuthError> {
    let client = oauth::client(settings)?;
    let refresh = RefreshToken::new(refresh_token.expose().to_string());
    let response = client
        .exchange_refresh_token(&refresh)
        .request_async(http)
        .await
        .map_err(|e| map_token_error(e, |detail| AuthError::RefreshRejected { detail }))?;
    Ok(tokens_from_response(
        &response,
        Some(refresh_token),
        Utc::now(),
    ))
}

fn is_fresh(tokens: &Tokens) -> bool {
    Utc::now() + EXPIRY_SKEW < tokens.expires_at
}

impl TokenManager {
    pub fn new(store: SharedStore, settings: OAuthSettings) -> TokenManager {
        TokenManager {
            inner: Arc::new(Inner {
                store,
                settings,
                http: oauth::http_client(),
                refresh_locks: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The OAuth client settings (for revoking a grant, `auth::revoke`).
    pub fn settings(&self) -> &OAuthSettings {
        &self.inner.settings
    }

    fn lock_for(&self, account: AccountId) -> Arc<tokio::sync::Mutex<()>> {
        // A poisoned map only means another thread panicked while inserting; the map is fine.
        let mut locks = self
            .inner
            .refresh_locks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        locks.entry(account).or_default().clone()
    }

    async fn stored_tokens(&self, account: AccountId) -> Result<Tokens, AuthError> {
        blocking(&self.inner.store, move |s| s.tokens(account))
            .await?
            .ok_or(AuthError::NoTokens { account })
    }

    /// A valid access token for `account`, refreshed first when it expires within 30 seconds.
    pub async fn access_token(&self, account: AccountId) -> Result<Secret, AuthError> {
        let tokens = self.stored_tokens(account).await?;
        if is_fresh(&tokens) {
            return Ok(tokens.access_token);
        }
        let seen = tokens.access_token;
        let lock = self.lock_for(account);
        let _guard = lock.lock().await;
        // Someone may have refreshed while this call waited for the lock: use their result (as
        // long as it has not actually expired) rather than refresh again.
        let tokens = self.stored_tokens(account).await?;
        if is_fresh(&tokens) || (tokens.access_token != seen && Utc::now() < tokens.expires_at) {
            return Ok(tokens.access_token);
        }
        self.refresh_locked(account, tokens).await
    }

    /// X refused `rejected` (401): refresh now, unless the stored token is already another one
    /// (someone refreshed since), in which case that one is returned.
    pub async fn force_refresh(
        &self,
        account: AccountId,
        rejected: &Secret,
    ) -> Result<Secret, AuthError> {
        let lock = self.lock_for(account);
        let _guard = lock.lock().await;
        let tokens = self.stored_tokens(account).await?;
        if tokens.access_token != *rejected && is_fresh(&tokens) {
            return Ok(tokens.access_token);
        }
        self.refresh_locked(account, tokens).await
    }

    /// Runs `call` with a valid token; a 401 forces one refresh and one retry.
    pub async fn with_token<T, F, Fut>(&self, account: AccountId, call: F) -> Result<T, CallError>
    where
        F: Fn(Secret) -> Fut,
        Fut: Future<Output = Result<T, XError>>,
    {
        let token = self.access_token(account).await.map_err(CallError::Auth)?;
        match call(token.clone()).await {
            Err(XError::Unauthorized { .. }) => {
                tracing::info!(account = %account, "X answered 401; refreshing the token once");
                let token = self
                    .force_refresh(account, &token)
                    .await
                    .map_err(CallError::Auth)?;
                call(token).await.map_err(CallError::X)
            }
            other => other.map_err(CallError::X),
        }
    }

    /// Refreshes with the stored refresh token. The caller holds the account's refresh lock.
    async fn refresh_locked(
        &self,
        account: AccountId,
        tokens: Tokens,
    ) -> Result<Secret, AuthError> {
        let result = match &tokens.refresh_token {
            Some(refresh_token) => {
                refresh_with(&self.inner.settings, &self.inner.http, refresh_token).await
            }
            None => Err(AuthError::RefreshRejected {
                detail: "the access token expired and X gave perch no refresh token".to_string(),
            }),
        };
        match result {
            Ok(new_tokens) => {
                let access = new_tokens.access_token.clone();
                // Durable before use: put_tokens flushes. An account removed while its refresh
                // was in flight gets no orphaned tokens record.
                let kept = blocking(&self.inner.store, move |s| {
                    if s.account(account)?.is_none() {
                        return Ok(false);
                    }
                    s.put_tokens(account, &new_tokens)?;
                    Ok(true)
                })
                .await?;
                if !kept {
                    return Err(AuthError::UnknownAccount { account });
                }
                tracing::info!(account = %account, "access token refreshed");
                Ok(access)
            }
            Err(error @ AuthError::RefreshRejected { .. }) => {
                self.mark_token_expired(account).await;
                Err(error)
            }
            Err(error) => Err(error),
        }
    }

    /// The grant is gone: the account shows `token_expired` and stops being polled until it is
    /// reauthorized. Failing to record that is logged, not fatal: the caller still gets the error.
    async fn mark_token_expired(&self, account: AccountId) {
        let marked = blocking(&self.inner.store, move |s| {
            let Some(mut acc) = s.account(account)? else {
                return Ok(None);
            };
            acc.sync_status = SyncStatus::TokenExpired;
            acc.error_message = Some(token_expired_message(&acc.twitter_username));
            acc.updated_at = Utc::now();
            s.put_account(&acc)?;
            Ok(Some(acc.handle()))
        })
        .await;
        match marked {
            Ok(Some(handle)) => {
                tracing::warn!("X rejected the refresh for {handle}: token expired")
            }
            Ok(None) => {}
            Err(e) => tracing::error!(account = %account, "cannot mark the token expired: {e}"),
        }
    }
}
