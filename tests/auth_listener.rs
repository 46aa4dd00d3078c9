//! The loopback login listener over real sockets: it waits for the one callback, ignores other
//! requests and idle connections, refuses a foreign state, answers the browser with the outcome,
//! and says clearly when its port is taken.

use std::time::Duration;

use perch::auth::{AuthError, CallbackListener};

const GENEROUS: Duration = Duration::from_secs(60);

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[tokio::test]
async fn the_callback_yields_the_code_and_the_browser_learns_the_account() {
    let mut listener = CallbackListener::bind("http://127.0.0.1:0/callback")
        .await
        .unwrap();
    let base = listener.redirect_uri().to_string();
    assert!(
        base.starts_with("http://127.0.0.1:") && base.ends_with("/callback"),
        "{base}"
    );
    assert!(!base.contains(":0/"), "the bound port is reported: {base}");
    let root = base.trim_end_matches("/callback").to_string();

    let browser_task = tokio::spawn(async move {
        let b = browser();
        // A browser's side requests and an idle pre-connection must not disturb the login.
        let _idle = tokio::net::TcpStream::connect(root.trim_start_matches("http://"))
            .await
            .unwrap();
        let favicon = b.get(format!("{root}/favicon.ico")).send().await.unwrap();
        assert_eq!(favicon.status(), 404);
        let page = b
            .get(format!("{root}/callback?state=s-123&code=the-code"))
            .send()
            .await
            .unwrap();
        (page.status().as_u16(), page.text().await.unwrap())
    });

    let (code, responder) = listener.next_callback("s-123", GENEROUS).await.unwrap();
    assert_eq!(code, "the-code");
    responder.finish_async(Ok("@acme")).await;
    let (status, page) = browser_task.await.unwrap();
    assert_eq!(status, 200);
    assert!(
        page.contains("perch: @acme added, you can close this tab"),
        "{page}"
    );
}

#[tokio::test]
async fn a_foreign_state_is_refused_and_the_browser_told_why() {
    let mut listener = CallbackListener::bind("http://127.0.0.1:0/callback")
        .await
        .unwrap();
    let url = listener.redirect_uri().to_string();
    let browser_task = tokio::spawn(async move {
        let page = browser()
            .get(format!("{url}?state=forged&code=stolen"))
            .send()
            .await
            .unwrap();
        (page.status().as_u16(), page.text().await.unwrap())
    });
    let err = listener.next_callback("s-123", GENEROUS).await.unwrap_err();
    assert!(matches!(err, AuthError::StateMismatch), "{err:?}");
    let (status, page) = browser_task.await.unwrap();
    assert_eq!(status, 400);
    assert!(page.contains("state does not match"), "{page}");
}

#[tokio::test]
async fn a_denial_ends_the_wait_as_denied() {
    let mut listener = CallbackListener::bind("http://localhost:0/callback")
        .await
        .unwrap();
    let url = listener.redirect_uri().to_string();
    tokio::spawn(async move {
        let _ = browser()
            .get(format!("{url}?error=access_denied&state=s-123"))
            .send()
            .await;
    });
    let err = listener.next_callback("s-123", GENEROUS).await.unwrap_err();
    assert!(matches!(err, AuthError::Denied), "{err:?}");
}

#[tokio::test]
async fn a_busy_port_names_the_port_and_the_setting_to_change() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let err = CallbackListener::bind(&format!("http://127.0.0.1:{port}/callback"))
        .await
        .unwrap_err();
    match &err {
        AuthError::PortBusy { port: p } => assert_eq!(*p, port),
        other => panic!("{other:?}"),
    }
    let message = err.to_string();
    assert!(
        message.contains(&port.to_string()) && message.contains("PERCH_REDIRECT_URI"),
        "{message}"
    );
}

#[tokio::test]
async fn a_redirect_uri_off_this_machine_is_refused() {
    let err = CallbackListener::bind("http://example.com:8765/callback")
        .await
        .unwrap_err();
    assert!(matches!(err, AuthError::BadRedirectUri { .. }), "{err:?}");
    let err = CallbackListener::bind("https://127.0.0.1:8765/callback")
        .await
        .unwrap_err();
    assert!(matches!(err, AuthError::BadRedirectUri { .. }), "{err:?}");
}

#[tokio::test]
async fn nobody_coming_back_is_a_timeout() {
    let mut listener = CallbackListener::bind("http://127.0.0.1:0/callback")
        .await
        .unwrap();
    let err = listener
        .next_callback("s-123", Duration::from_millis(200))
        .await
        .unwrap_err();
    assert!(matches!(err, AuthError::Timeout), "{err:?}");
    assert!(err.to_string().contains("--headless"), "{err}");
}
