//! Adding an account: the authorization URL (PKCE S256, random state), reading the callback
//! (redirect URL or bare code), the code exchange, and storing the account from `users/me`.
//! Two front ends share it: the loopback listener (browser on this machine) and the paste flow
//! (SSH, headless).

use std::fmt;

use chrono::{DateTime, Utc};
use oauth2::{AuthorizationCode, CsrfToken, PkceCodeChallenge, PkceCodeVerifier, Scope};
use tokio::io::AsyncBufReadExt;

use super::oauth::{self, map_token_error, tokens_from_response};
use super::{AuthError, CallbackListener, LOGIN_TIMEOUT, OAuthSettings, SCOPES};
use crate::domain::{Account, Secret, SyncStatus, Tokens};
use crate::store::{SharedStore, StoreError};
use crate::x::XClient;

/// One login in progress: the URL to open, and what perch must remember to finish it.
pub struct LoginRequest {
    pub url: String,
    state: String,
    verifier: Secret,
    /// The redirect URI this login was started with (the code exchange must repeat it).
    redirect_uri: String,
}

impl LoginRequest {
    /// The random `state` the callback must carry back.
    pub fn state(&self) -> &str {
        &self.state
    }
    pub fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }
}

impl fmt::Debug for LoginRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginRequest")
            .field("url", &self.url)
            .field("state", &self.state)
            .field("verifier", &self.verifier)
            .finish()
    }
}

/// Starts a login: a fresh PKCE verifier (S256) and state, and the authorization URL.
pub fn start_login(settings: &OAuthSettings) -> Result<LoginRequest, AuthError> {
    let client = oauth::client(settings)?;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state) = client
        .authorize_url(CsrfToken::new_random)
        .add_scopes(SCOPES.split(' ').map(|s| Scope::new(s.to_string())))
        .set_pkce_challenge(challenge)
        .url();
    Ok(LoginRequest {
        url: url.to_string(),
        state: state.secret().clone(),
        verifier: Secret::new(verifier.secret().clone()),
        redirect_uri: settings.redirect_uri.clone(),
    })
}

/// Reads what the browser was redirected to: the whole redirect URL (or just its query), or the
/// bare code. A denial is [`AuthError::Denied`]; a URL whose `state` is not `expected_state` is
/// refused ([`AuthError::StateMismatch`]). A bare code carries no state to check: that is the
/// price of the paste flow, as in X's own CLI.
pub fn parse_callback(input: &str, expected_state: &str) -> Result<String, AuthError> {
    let input = input.trim();
    if input.is_empty() {
        return Err(AuthError::InvalidCallback {
            detail: "nothing was entered".to_string(),
        });
    }
    let query = if let Ok(url) = url::Url::parse(input) {
        url.query().unwrap_or_default().to_string()
    } else if let Some((_, query)) = input.split_once('?') {
        query.to_string()
    } else if input.contains('=') {
        input.to_string()
    } else if input
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~'))
    {
        return Ok(input.to_string());
    } else {
        return Err(AuthError::InvalidCallback {
            detail: "it is neither an address nor a code".to_string(),
        });
    };
    let mut code = None;
    let mut state = None;
    let mut error = None;
    let mut description = None;
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        match key.as_ref() {
            "code" => code = Some(value.into_owned()),
            "state" => state = Some(value.into_owned()),
            "error" => error = Some(value.into_owned()),
            "error_description" => description = Some(value.into_owned()),
            _ => {}
        }
    }
    // A refusal grants nothing, so it is reported whatever its state says.
    if let Some(error) = error {
        return Err(if error == "access_denied" {
            AuthError::Denied
        } else {
            AuthError::AuthorizeFailed { error, description }
        });
    }
    if state.as_deref() != Some(expected_state) {
        return Err(AuthError::StateMismatch);
    }
    code.filter(|c| !c.is_empty())
        .ok_or_else(|| AuthError::InvalidCallback {
            detail: "the address has no code=... in it".to_string(),
        })
}

/// Exchanges the authorization code (with the PKCE verifier) for tokens.
pub async fn exchange_code(
    settings: &OAuthSettings,
    login: &LoginRequest,
    code: &str,
) -> Result<Tokens, AuthError> {
    let mut settings = settings.clone();
    settings.redirect_uri = login.redirect_uri.clone();
    let client = oauth::client(&settings)?;
    let http = oauth::http_client();
    let response = client
        .exchange_code(AuthorizationCode::new(code.trim().to_string()))
        .set_pkce_verifier(PkceCodeVerifier::new(login.verifier.expose().to_string()))
        .request_async(&http)
        .await
        .map_err(|e| map_token_error(e, |detail| AuthError::CodeRejected { detail }))?;
    Ok(tokens_from_response(&response, None, Utc::now()))
}

/// Runs a blocking store operation off the async threads (sled flushes can take a while).
pub(crate) async fn blocking<S: Clone + Send + 'static, T: Send + 'static>(
    store: &S,
    op: impl FnOnce(&S) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, AuthError> {
    let store = store.clone();
    tokio::task::spawn_blocking(move || op(&store))
        .await
        .map_err(|e| AuthError::Io(format!("a store task failed: {e}")))?
        .map_err(AuthError::from)
}

/// Finishes a login with fresh tokens: asks X who the user is, then stores a new account, or
/// updates the one already tracked for that X user (a reauthorization: tokens and profile
/// replaced, status active again, mentions and cursor kept). Returns the account and whether it
/// was a reauthorization.
pub async fn complete_login(
    store: &SharedStore,
    client: &XClient,
    tokens: Tokens,
    now: DateTime<Utc>,
) -> Result<(Account, bool), AuthError> {
    complete_login_as(store, client, tokens, None, now).await
}

/// [`complete_login`] for a reauthorization of `expected`: the identity X returns must be that
/// account's, whatever the authorize page did (the user may be logged in to X as someone else).
/// Another identity is refused with [`AuthError::WrongAccount`] before anything is written.
pub async fn complete_login_as(
    store: &SharedStore,
    client: &XClient,
    tokens: Tokens,
    expected: Option<&Account>,
    now: DateTime<Utc>,
) -> Result<(Account, bool), AuthError> {
    let me = client
        .users_me(&tokens.access_token)
        .await
        .map_err(AuthError::X)?
        .data;
    if let Some(expected) = expected
        && expected.twitter_id != me.id
    {
        tracing::warn!(
            "reauthorization of {} came back as @{}: refused, nothing changed",
            expected.handle(),
            me.username
        );
        return Err(AuthError::WrongAccount {
            expected: expected.twitter_username.clone(),
            got: me.username,
        });
    }
    let twitter_id = me.id.clone();
    let existing = blocking(store, move |s| s.account_by_twitter_id(&twitter_id)).await?;
    let (account, reauthorized) = match existing {
        Some(mut account) => {
            account.twitter_username = me.username;
            account.display_name = me.name;
            account.profile_image_url = me.profile_image_url;
            account.is_active = true;
            account.sync_status = SyncStatus::Active;
            account.error_message = None;
            account.updated_at = now;
            (account, true)
        }
        None => (
            Account::new(me.id, me.username, me.name, me.profile_image_url, now),
            false,
        ),
    };
    let stored = account.clone();
    let billed_user = me_id_for_billing(&account.twitter_id);
    // Tokens first for a known account (so its stored grant is never the revoked one while it is
    // marked active); account first for a new one (tokens belong to an existing account).
    blocking(store, move |s| {
        if reauthorized {
            s.put_tokens(stored.id, &tokens)?;
            s.put_account(&stored)?;
        } else {
            s.put_account(&stored)?;
            s.put_tokens(stored.id, &tokens)?;
        }
        // X bills the users/me read that identified the account (a User: Read).
        if let Some(id) = billed_user {
            s.record_read(
                stored.id,
                &crate::store::ReadCharge {
                    at: now,
                    class: crate::costs::ResourceClass::User,
                    kind: crate::costs::CostKind::UserRead,
                    ids: vec![id],
                },
            )?;
        }
        Ok(())
    })
    .await?;
    tracing::info!(
        account = %account.id,
        reauthorized,
        "login completed for {}",
        account.handle()
    );
    Ok((account, reauthorized))
}

/// The login with a browser on this machine: listens on the redirect URI's port first, then opens
/// the browser (a failure to open it is fine: `on_url` has printed the URL), and waits up to five
/// minutes for the redirect.
pub async fn login_with_listener(
    settings: &OAuthSettings,
    store: &SharedStore,
    client: &XClient,
    on_url: impl FnOnce(&str),
) -> Result<(Account, bool), AuthError> {
    login_with_listener_as(settings, store, client, None, on_url).await
}

/// [`login_with_listener`], reauthorizing `expected` when given: the authorize page is asked
/// for that account (`login_hint`), and the identity that comes back must be it.
pub async fn login_with_listener_as(
    settings: &OAuthSettings,
    store: &SharedStore,
    client: &XClient,
    expected: Option<&Account>,
    on_url: impl FnOnce(&str),
) -> Result<(Account, bool), AuthError> {
    listen_and_login(
        settings,
        store,
        client,
        expected,
        open_browser,
        on_url,
        LOGIN_TIMEOUT,
    )
    .await
}

/// For a reauthorization against a loopback authorize page (the built-in simulator), names the
/// account to log in as with `login_hint`, as a person would by picking it on X's login page.
/// X's own page (`x.com`) never gets the parameter: the identity check after the login is what
/// protects the account there.
pub fn with_login_hint(url: &str, username: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return url.to_string();
    };
    let loopback = match parsed.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    };
    if !loopback {
        return url.to_string();
    }
    parsed
        .query_pairs_mut()
        .append_pair("login_hint", username.trim_start_matches('@'));
    parsed.to_string()
}

fn open_browser(url: &str) {
    let url = url.to_string();
    // `webbrowser` may block while it starts a process; keep it off the async threads.
    tokio::task::spawn_blocking(move || {
        if let Err(e) = webbrowser::open(&url) {
            tracing::info!("could not open a browser ({e}); the URL was printed instead");
        }
    });
}

/// [`login_with_listener`] with the browser and the time limit given (tests drive the "browser"
/// over HTTP themselves).
pub async fn login_with_listener_using(
    settings: &OAuthSettings,
    store: &SharedStore,
    client: &XClient,
    open: impl FnOnce(&str),
    on_url: impl FnOnce(&str),
    timeout: std::time::Duration,
) -> Result<(Account, bool), AuthError> {
    listen_and_login(settings, store, client, None, open, on_url, timeout).await
}

async fn listen_and_login(
    settings: &OAuthSettings,
    store: &SharedStore,
    client: &XClient,
    expected: Option<&Account>,
    open: impl FnOnce(&str),
    on_url: impl FnOnce(&str),
    timeout: std::time::Duration,
) -> Result<(Account, bool), AuthError> {
    let mut listener = CallbackListener::bind(&settings.redirect_uri).await?;
    let mut settings = settings.clone();
    settings.redirect_uri = listener.redirect_uri().to_string();
    let mut login = start_login(&settings)?;
    if let Some(a) = expected {
        login.url = with_login_hint(&login.url, &a.twitter_username);
    }
    on_url(&login.url);
    open(&login.url);
    let (code, responder) = listener.next_callback(login.state(), timeout).await?;
    let result = async {
        let tokens = exchange_code(&settings, &login, &code).await?;
        complete_login_as(store, client, tokens, expected, Utc::now()).await
    }
    .await;
    match &result {
        Ok((account, _)) => responder.finish_async(Ok(&account.handle())).await,
        Err(e) => responder.finish_async(Err(&e.to_string())).await,
    }
    result
}

/// The login for SSH and headless machines: prints the authorization URL on a line of its own,
/// then reads the address the browser was redirected to (or the bare code) from `input`.
pub async fn login_headless(
    settings: &OAuthSettings,
    store: &SharedStore,
    client: &XClient,
    url_out: &mut impl std::io::Write,
    input: impl tokio::io::AsyncBufRead + Unpin,
) -> Result<(Account, bool), AuthError> {
    login_headless_as(settings, store, client, None, url_out, input).await
}

/// [`login_headless`], reauthorizing `expected` when given (see [`login_with_listener_as`]).
pub async fn login_headless_as(
    settings: &OAuthSettings,
    store: &SharedStore,
    client: &XClient,
    expected: Option<&Account>,
    url_out: &mut impl std::io::Write,
    mut input: impl tokio::io::AsyncBufRead + Unpin,
) -> Result<(Account, bool), AuthError> {
    let mut login = start_login(settings)?;
    if let Some(a) = expected {
        login.url = with_login_hint(&login.url, &a.twitter_username);
    }
    let io = |e: std::io::Error| AuthError::Io(format!("cannot write the login URL: {e}"));
    writeln!(
        url_out,
        "Open this address in a browser, approve perch, then paste the address the browser ends up on (or just the code):"
    )
    .map_err(io)?;
    writeln!(url_out, "{}", login.url).map_err(io)?;
    url_out.flush().map_err(io)?;
    let mut line = String::new();
    loop {
        line.clear();
        let n = input
            .read_line(&mut line)
            .await
            .map_err(|e| AuthError::Io(format!("cannot read the pasted address: {e}")))?;
        if n == 0 {
            return Err(AuthError::InvalidCallback {
                detail: "the input ended before an address or code was pasted".to_string(),
            });
        }
        if !line.trim().is_empty() {
            break;
        }
    }
    let code = parse_callback(&line, login.state())?;
    let tokens = exchange_code(settings, &login, &code).await?;
    complete_login_as(store, client, tokens, expected, Utc::now()).await
}

/// The X user id a users/me read is charged under (ids are decimal; anything else is not).
fn me_id_for_billing(twitter_id: &str) -> Option<u64> {
    twitter_id.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> OAuthSettings {
        OAuthSettings {
            client_id: "perch-test-client".into(),
            client_secret: None,
            authorize_url: "https://x.com/i/oauth2/authorize".into(),
            token_url: "https://api.x.com/2/oauth2/token".into(),
            redirect_uri: "http://127.0.0.1:8765/callback".into(),
        }
    }

    #[test]
    fn authorization_url_carries_pkce_s256_state_and_every_scope() {
        let login = start_login(&settings()).unwrap();
        let url = url::Url::parse(&login.url).unwrap();
        assert!(login.url.starts_with("https://x.com/i/oauth2/authorize?"));
        let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(q["response_type"], "code");
        assert_eq!(q["client_id"], "perch-test-client");
        assert_eq!(q["redirect_uri"], "http://127.0.0.1:8765/callback");
        assert_eq!(q["scope"], SCOPES);
        assert_eq!(q["code_challenge_method"], "S256");
        assert_eq!(q["state"], login.state());
        assert!(login.state().len() >= 16);
        // The challenge is base64url(sha256(verifier)).
        use base64::Engine;
        use sha2::Digest;
        let digest = sha2::Sha256::digest(login.verifier.expose().as_bytes());
        let expected = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest);
        assert_eq!(q["code_challenge"], expected);
        // Two logins never share a state or a verifier.
        let other = start_login(&settings()).unwrap();
        assert_ne!(other.state(), login.state());
    }

    #[test]
    fn login_request_debug_hides_the_verifier() {
        let login = start_login(&settings()).unwrap();
        let shown = format!("{login:?}");
        assert!(!shown.contains(login.verifier.expose()), "{shown}");
    }

    #[test]
    fn callback_accepts_the_whole_url_a_query_or_a_bare_code() {
        let url = "http://127.0.0.1:8765/callback?state=abc&code=VGNibzFWSWRE";
        assert_eq!(parse_callback(url, "abc").unwrap(), "VGNibzFWSWRE");
        assert_eq!(
            parse_callback("  /callback?code=xyz&state=abc\n", "abc").unwrap(),
            "xyz"
        );
        assert_eq!(parse_callback("code=xyz&state=abc", "abc").unwrap(), "xyz");
        assert_eq!(
            parse_callback("VGNibzFWSWRE\n", "abc").unwrap(),
            "VGNibzFWSWRE"
        );
    }

    #[test]
    fn callback_with_another_state_is_refused() {
        let err =
            parse_callback("http://127.0.0.1:8765/callback?state=evil&code=x", "abc").unwrap_err();
        assert!(matches!(err, AuthError::StateMismatch), "{err:?}");
        let err = parse_callback("http://127.0.0.1:8765/callback?code=x", "abc").unwrap_err();
        assert!(matches!(err, AuthError::StateMismatch), "{err:?}");
    }

    #[test]
    fn denial_and_other_errors_are_told_apart() {
        let err = parse_callback("/callback?error=access_denied&state=abc", "abc").unwrap_err();
        assert!(matches!(err, AuthError::Denied), "{err:?}");
        let err = parse_callback(
            "/callback?error=invalid_scope&error_description=bad+scope&state=abc",
            "abc",
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("invalid_scope: bad scope"),
            "{err}"
        );
        assert!(matches!(
            parse_callback("", "abc"),
            Err(AuthError::InvalidCallback { .. })
        ));
        assert!(matches!(
            parse_callback("not a code at all", "abc"),
            Err(AuthError::InvalidCallback { .. })
        ));
        assert!(matches!(
            parse_callback("/callback?state=abc", "abc"),
            Err(AuthError::InvalidCallback { .. })
        ));
    }
}
