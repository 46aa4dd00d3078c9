//! The event loop's side of account management: running the add-account / reauthorize login as
//! a task (loopback listener and paste field at once), and handing added or removed accounts to
//! the sync engine. The task reports back through `Action::Login`, so the dialog stays a plain
//! state machine in `app::accounts`.

use chrono::Utc;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::app::Action;
use crate::app::accounts::{
    AccountEffect, LoginEvent, LoginFailure, LoginFailureKind, LoginPurpose, LoginSuccess,
};
use crate::auth::{self, AuthError, CallbackListener, OAuthSettings};
use crate::client::Connection;
use crate::config::Config;
use crate::domain::{Account, AccountId, Tokens};
use crate::store::Store;
use crate::sync::Command;
use crate::x::XClient;

/// Where a finished login is stored: the service (through the dashboard's connection, which
/// checks who the tokens belong to and tells the engine), or a store directly (tests).
pub trait LoginSink: Send + Sync {
    /// The account a reauthorization is for.
    fn account(&self, id: AccountId) -> Result<Option<Account>, String>;
    /// Stores the account the tokens belong to (`expected`: it must be this one).
    fn complete(
        &self,
        tokens: Tokens,
        expected: Option<Account>,
    ) -> futures::future::BoxFuture<'_, Result<(Account, bool), String>>;
}

/// Logins stored straight into a store, checked with `client` (tests, and no service).
pub struct StoreLogins {
    pub store: Store,
    pub client: XClient,
}

impl LoginSink for StoreLogins {
    fn account(&self, id: AccountId) -> Result<Option<Account>, String> {
        self.store.account(id).map_err(|e| e.to_string())
    }
    fn complete(
        &self,
        tokens: Tokens,
        expected: Option<Account>,
    ) -> futures::future::BoxFuture<'_, Result<(Account, bool), String>> {
        Box::pin(async move {
            let result = auth::complete_login_as(
                &self.store.shared(),
                &self.client,
                tokens,
                expected.as_ref(),
                Utc::now(),
            )
            .await
            .map_err(|e| e.to_string());
            // Durable before the engine is told (it reads the account back from the store).
            let flushed = self.store.clone();
            if let Err(e) = tokio::task::spawn_blocking(move || flushed.flush()).await {
                tracing::warn!("store flush task failed after a login: {e}");
            }
            result
        })
    }
}

/// A dashboard's connection to the service stores logins there.
pub struct ServiceLogins(pub std::sync::Arc<dyn Connection>);

impl LoginSink for ServiceLogins {
    fn account(&self, id: AccountId) -> Result<Option<Account>, String> {
        self.0.account(id).map_err(|e| e.to_string())
    }
    fn complete(
        &self,
        tokens: Tokens,
        expected: Option<Account>,
    ) -> futures::future::BoxFuture<'_, Result<(Account, bool), String>> {
        let connection = self.0.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                connection.complete_login(tokens, expected.map(|a| a.id))
            })
            .await
            .map_err(|e| format!("the login task failed: {e}"))?
        })
    }
}

/// Opens the authorization URL somewhere a person can approve it (the real one starts a browser).
pub type Opener = Box<dyn FnOnce(&str) + Send>;

/// Carries out `Effect::Account`. Holds the one login that may run at a time.
pub struct AccountOps {
    store: std::sync::Arc<dyn LoginSink>,
    config: Config,
    /// The login dialog's keys, for the messages that name them (the dashboard's own map).
    keys: crate::app::keymap::Layer<crate::app::keymap::LoginAction>,
    reports: mpsc::Sender<Action>,
    login: Option<LoginTask>,
}

impl AccountOps {
    pub fn new(
        store: std::sync::Arc<dyn LoginSink>,
        config: Config,
        reports: mpsc::Sender<Action>,
    ) -> AccountOps {
        let keys = crate::app::keymap_config::build(&config.keys, &config.config_path)
            .unwrap_or_default()
            .login;
        AccountOps {
            store,
            config,
            keys,
            reports,
            login: None,
        }
    }

    /// Runs one account effect; returns an action to feed back when it has something to say.
    pub fn run(
        &mut self,
        effect: AccountEffect,
        sync: &dyn Fn(Command) -> Option<Action>,
    ) -> Option<Action> {
        match effect {
            AccountEffect::StartLogin { login_id, purpose } => {
                // A new login replaces any other (its listener would hold the same port).
                self.login = None;
                self.login = Some(LoginTask::spawn(
                    login_id,
                    purpose,
                    self.store.clone(),
                    self.config.clone(),
                    {
                        let reports = self.reports.clone();
                        let copy = self.keys.label(crate::app::keymap::LoginAction::CopyLink);
                        Box::new(move |url: &str| open_browser(url, &copy, reports))
                    },
                    self.reports.clone(),
                ));
                None
            }
            AccountEffect::PasteLogin { login_id, input } => match &self.login {
                Some(task) if task.id == login_id && task.paste(input) => None,
                _ => Some(Action::Login(LoginEvent::Finished {
                    login_id,
                    outcome: Err(LoginFailure {
                        kind: LoginFailureKind::Other,
                        message: format!(
                            "this login has already ended; press {} to start a new one",
                            self.keys.label(crate::app::keymap::LoginAction::Submit)
                        ),
                    }),
                })),
            },
            AccountEffect::CancelLogin { login_id } => {
                if self.login.as_ref().is_some_and(|t| t.id == login_id) {
                    self.login = None;
                }
                None
            }
            AccountEffect::Added(id) => sync(Command::AccountAdded(id)),
            AccountEffect::Remove {
                account_id,
                delete_mentions,
            } => sync(Command::Remove {
                account_id,
                delete_mentions,
            }),
        }
    }
}

fn open_browser(url: &str, copy_key: &str, reports: mpsc::Sender<Action>) {
    let url = url.to_string();
    let copy_key = copy_key.to_string();
    // `webbrowser` may block while it starts a process. A failure is told (the dialog shows the
    // URL, and `y` copies it).
    tokio::task::spawn_blocking(move || {
        if let Err(e) = webbrowser::open(&url) {
            tracing::info!(
                "could not open a browser for the login ({e}); the dialog shows the URL"
            );
            let _ = reports.blocking_send(Action::Notify {
                text: format!(
                    "no browser could be opened ({e}): press {copy_key} to copy the link and open it in a browser"
                ),
                is_error: true,
            });
        }
    });
}

/// One running login. Dropping it stops the login and frees the listener's port.
pub struct LoginTask {
    id: u64,
    paste: mpsc::Sender<String>,
    task: JoinHandle<()>,
}

impl Drop for LoginTask {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl LoginTask {
    /// Starts the login: binds the loopback listener first, then reports the URL
    /// ([`LoginEvent::Listening`]) and calls `open` with it, then waits for the browser's
    /// redirect or a pasted one, exchanges the code and stores the account. Every step is
    /// reported on `reports` as `Action::Login`, ending with [`LoginEvent::Finished`].
    pub fn spawn(
        login_id: u64,
        purpose: LoginPurpose,
        store: std::sync::Arc<dyn LoginSink>,
        config: Config,
        open: Opener,
        reports: mpsc::Sender<Action>,
    ) -> LoginTask {
        let (paste_tx, paste_rx) = mpsc::channel(4);
        let task = tokio::spawn(async move {
            let outcome = login(
                login_id, &purpose, &*store, &config, open, paste_rx, &reports,
            )
            .await
            .map_err(|e| failure(&e));
            if let Err(f) = &outcome {
                tracing::info!("login {login_id} ended without an account: {}", f.message);
            }
            let _ = reports
                .send(Action::Login(LoginEvent::Finished { login_id, outcome }))
                .await;
        });
        LoginTask {
            id: login_id,
            paste: paste_tx,
            task,
        }
    }

    pub fn id(&self) -> u64 {
        self.id
    }

    /// Hands pasted text to the login; false if it no longer listens.
    pub fn paste(&self, input: String) -> bool {
        self.paste.try_send(input).is_ok()
    }
}

async fn login(
    login_id: u64,
    purpose: &LoginPurpose,
    store: &dyn LoginSink,
    config: &Config,
    open: Opener,
    mut paste: mpsc::Receiver<String>,
    reports: &mpsc::Sender<Action>,
) -> Result<LoginSuccess, AuthError> {
    let report = |event: LoginEvent| {
        let reports = reports.clone();
        async move {
            let _ = reports.send(Action::Login(event)).await;
        }
    };
    let mut settings = OAuthSettings::from_config(config)?;
    // Listen before the browser opens, or a fast approval would find nobody there.
    let mut listener = CallbackListener::bind(&settings.redirect_uri).await?;
    settings.redirect_uri = listener.redirect_uri().to_string();
    let mut request = auth::start_login(&settings)?;
    if let LoginPurpose::Reauthorize { handle, .. } = purpose {
        request.url = auth::with_login_hint(&request.url, handle);
    }
    report(LoginEvent::Listening {
        login_id,
        url: request.url.clone(),
    })
    .await;
    open(&request.url);

    let expected_state = request.state().to_string();
    let callback = listener.next_callback(&expected_state, auth::LOGIN_TIMEOUT);
    tokio::pin!(callback);
    let (code, responder) = loop {
        tokio::select! {
            result = &mut callback => {
                let (code, responder) = result?;
                break (code, Some(responder));
            }
            Some(input) = paste.recv() => match auth::parse_callback(&input, &expected_state) {
                Ok(code) => break (code, None),
                // Not something perch can read: say so and keep waiting (the browser may still
                // come back, or the next paste may be right).
                Err(e @ AuthError::InvalidCallback { .. }) => {
                    report(LoginEvent::PasteRejected { login_id, message: e.to_string() }).await;
                }
                Err(e) => return Err(e),
            },
        }
    };
    report(LoginEvent::Exchanging { login_id }).await;
    // A reauthorization must come back as the account it is for, whatever the page did.
    let expected = match purpose {
        LoginPurpose::Reauthorize { account_id, .. } => store
            .account(*account_id)
            .map_err(|message| AuthError::Stored { message })?,
        _ => None,
    };
    let result = async {
        let tokens = auth::exchange_code(&settings, &request, &code).await?;
        store
            .complete(tokens, expected)
            .await
            .map_err(|message| AuthError::Stored { message })
    }
    .await;
    if let Some(responder) = responder {
        match &result {
            Ok((account, _)) => responder.finish_async(Ok(&account.handle())).await,
            Err(e) => responder.finish_async(Err(&e.to_string())).await,
        }
    }
    let (account, reauthorized) = result?;
    if let LoginPurpose::Reauthorize { handle, .. } = purpose {
        tracing::info!("reauthorization of {handle} logged in {}", account.handle());
    }
    Ok(LoginSuccess {
        account_id: account.id,
        handle: account.handle(),
        reauthorized,
    })
}

/// The dialog's view of an `AuthError`: which heading, and the full message (it says what to do).
pub fn failure(e: &AuthError) -> LoginFailure {
    let kind = match e {
        AuthError::Denied => LoginFailureKind::Denied,
        AuthError::StateMismatch => LoginFailureKind::StateMismatch,
        AuthError::CodeRejected { .. } => LoginFailureKind::CodeRejected,
        AuthError::PortBusy { .. } => LoginFailureKind::PortBusy,
        AuthError::NoClientId { .. } => LoginFailureKind::NoClientId,
        AuthError::Timeout => LoginFailureKind::Timeout,
        _ => LoginFailureKind::Other,
    };
    LoginFailure {
        kind,
        message: e.to_string(),
    }
}

#[cfg(test)]
mod login_hint_tests {
    use crate::auth::with_login_hint;

    #[test]
    fn login_hint_goes_only_to_a_loopback_authorize_page() {
        let sim = with_login_hint("http://127.0.0.1:4000/i/oauth2/authorize?state=s", "@mara");
        assert!(sim.ends_with("&login_hint=mara"), "{sim}");
        let x = "https://x.com/i/oauth2/authorize?state=s";
        assert_eq!(with_login_hint(x, "@mara"), x);
    }
}
