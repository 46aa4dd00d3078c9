//! Ending perch's grant at X when an account is removed (CONTRACT.md §1.5: `POST
//! /2/oauth2/revoke`, RFC 7009). Removing an account deletes its tokens from the store; without
//! this, the grant would stay valid at X and perch would stay listed in the user's connected apps.
//!
//! Revoking the refresh token ends the whole grant, its access tokens with it (RFC 7009 §2.1);
//! an account stored without a refresh token has its access token revoked instead.
//!
//! The revoke URL: CONTRACT.md gives only X's (`https://api.x.com/2/oauth2/revoke`, beside the
//! token endpoint `.../2/oauth2/token`), and perch has no setting for it. Our reading: it is the
//! token URL with its last segment `token` replaced by `revoke`, which holds for X and for the
//! simulator, and a token URL of another shape gets no revoke (said to the user).

use std::time::Duration;

use super::OAuthSettings;
use crate::domain::Tokens;

/// The longest a revoke may take: an account's removal waits for it.
pub const REVOKE_LIMIT: Duration = Duration::from_secs(10);

/// Where X's revoke endpoint is, from the token URL (see the module's note).
pub fn revoke_url(token_url: &str) -> Option<String> {
    let base = token_url.strip_suffix("/token")?;
    Some(format!("{base}/revoke"))
}

/// Whether a token may be sent to `url`: HTTPS, or plain HTTP to this machine (the simulator).
/// The `oauth2` crate's revoke refuses every non-HTTPS URL, so the request is made here, with
/// the same rule for anything that leaves the machine.
fn may_send_token_to(url: &url::Url) -> bool {
    match url.scheme() {
        "https" => true,
        "http" => match url.host() {
            Some(url::Host::Domain(d)) => d == "localhost",
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        },
        _ => false,
    }
}

/// Revokes the grant `tokens` belong to (RFC 7009: the token in a form, the client's id in the
/// form or, for a confidential client, HTTP Basic, as at the token endpoint). Any 2xx counts as
/// revoked (CONTRACT.md §1.5). `Err` says why it could not, in words for the user.
pub async fn revoke_grant(settings: &OAuthSettings, tokens: &Tokens) -> Result<(), String> {
    let url = revoke_url(&settings.token_url).ok_or_else(|| {
        format!(
            "perch does not know X's revoke endpoint for the token URL {}",
            settings.token_url
        )
    })?;
    let url = url::Url::parse(&url).map_err(|e| format!("the revoke URL is not a URL ({e})"))?;
    if !may_send_token_to(&url) {
        return Err(format!(
            "the revoke URL {url} is not HTTPS, and perch sends tokens over plain HTTP only to this machine"
        ));
    }
    let (token, hint) = match &tokens.refresh_token {
        Some(refresh) => (refresh.expose(), "refresh_token"),
        None => (tokens.access_token.expose(), "access_token"),
    };
    let mut form = vec![("token", token), ("token_type_hint", hint)];
    let mut request = super::oauth::http_client().post(url.clone());
    match &settings.client_secret {
        Some(secret) => request = request.basic_auth(&settings.client_id, Some(secret.expose())),
        None => form.push(("client_id", settings.client_id.as_str())),
    }
    let sent = tokio::time::timeout(REVOKE_LIMIT, request.form(&form).send()).await;
    let response = match sent {
        Ok(Ok(response)) => response,
        // reqwest's error names the URL, never the form (where the token is).
        Ok(Err(e)) => return Err(format!("X did not answer the revoke ({e})")),
        Err(_) => {
            return Err(format!(
                "X did not answer the revoke within {} s",
                REVOKE_LIMIT.as_secs()
            ));
        }
    };
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let body = tokio::time::timeout(REVOKE_LIMIT, response.text())
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    // X's words, untrusted: whoever shows them sanitises them (the CLI's `errln`, the status
    // bar's notice, sanitised in `app::update`).
    let said: String = body.chars().take(300).collect();
    Err(format!("X answered the revoke with {status}: {said}"))
}

/// What the engine and the CLI do once an account is removed: revoke its grant; `Err` is what
/// to tell the user ([`not_revoked_message`]).
pub async fn revoke_on_removal(
    settings: &OAuthSettings,
    handle: &str,
    tokens: &Tokens,
) -> Result<(), String> {
    revoke_grant(settings, tokens)
        .await
        .map_err(|why| not_revoked_message(handle, &why))
}

/// What perch says when an account is removed but its grant could not be revoked.
pub fn not_revoked_message(handle: &str, why: &str) -> String {
    format!(
        "{handle} is removed from perch, but its access at X was not revoked: {why}. Revoke it at https://x.com/settings/connected_apps"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_revoke_url_sits_beside_the_token_url() {
        assert_eq!(
            revoke_url("https://api.x.com/2/oauth2/token").as_deref(),
            Some("https://api.x.com/2/oauth2/revoke")
        );
        assert_eq!(
            revoke_url("http://127.0.0.1:4000/2/oauth2/token").as_deref(),
            Some("http://127.0.0.1:4000/2/oauth2/revoke")
        );
        assert_eq!(revoke_url("https://example.com/oauth/access"), None);
    }

    #[test]
    fn tokens_go_over_https_or_to_this_machine_only() {
        let ok = |u: &str| may_send_token_to(&url::Url::parse(u).unwrap());
        assert!(ok("https://api.x.com/2/oauth2/revoke"));
        assert!(ok("http://127.0.0.1:4000/2/oauth2/revoke"));
        assert!(ok("http://localhost:4000/2/oauth2/revoke"));
        assert!(ok("http://[::1]:4000/2/oauth2/revoke"));
        assert!(!ok("http://api.x.com/2/oauth2/revoke"));
        assert!(!ok("http://10.0.0.2/2/oauth2/revoke"));
        assert!(!ok("ftp://127.0.0.1/revoke"));
    }
}
