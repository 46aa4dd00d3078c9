//! The loopback listener that receives the browser's redirect after the user approves perch on X.
//! It listens on the redirect URI's port on both 127.0.0.1 and ::1 (a browser may resolve
//! `localhost` to either), answers anything that is not the callback path with 404 (favicons,
//! probes), and ends at the first request to the callback path: a valid one yields the code, any
//! other one the reason it was refused. The browser gets its answer only once the login is done
//! ([`CallbackResponder`]), so the page can say which account was added.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use url::{Host, Url};

use super::{AuthError, parse_callback};

/// How long one browser connection may take to send its request line and headers. Browsers open
/// idle speculative connections, so each is read on its own task and none can hold up the others.
const REQUEST_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Requests larger than this are not an OAuth redirect.
const MAX_REQUEST_HEAD: usize = 16 * 1024;

pub struct CallbackListener {
    primary: TcpListener,
    secondary: Option<TcpListener>,
    path: String,
    redirect_uri: String,
}

impl std::fmt::Debug for CallbackListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallbackListener")
            .field("redirect_uri", &self.redirect_uri)
            .finish_non_exhaustive()
    }
}

impl CallbackListener {
    /// Listens on the redirect URI's port, on 127.0.0.1 and ::1. Port 0 picks a free port: read
    /// the address actually used back with [`CallbackListener::redirect_uri`].
    pub async fn bind(redirect_uri: &str) -> Result<CallbackListener, AuthError> {
        let bad = |detail: &str| AuthError::BadRedirectUri {
            redirect_uri: redirect_uri.to_string(),
            detail: detail.to_string(),
        };
        let mut url = Url::parse(redirect_uri).map_err(|e| bad(&e.to_string()))?;
        if url.scheme() != "http" {
            return Err(bad(
                "perch's listener speaks plain http on this machine only",
            ));
        }
        let (first, second): (IpAddr, Option<IpAddr>) = match url.host() {
            Some(Host::Domain(d)) if d.eq_ignore_ascii_case("localhost") => {
                (Ipv4Addr::LOCALHOST.into(), Some(Ipv6Addr::LOCALHOST.into()))
            }
            Some(Host::Ipv4(ip)) if ip.is_loopback() => {
                (ip.into(), Some(Ipv6Addr::LOCALHOST.into()))
            }
            Some(Host::Ipv6(ip)) if ip.is_loopback() => {
                (ip.into(), Some(Ipv4Addr::LOCALHOST.into()))
            }
            _ => {
                return Err(bad(
                    "the host must be this machine (127.0.0.1, [::1] or localhost)",
                ));
            }
        };
        let port = url.port_or_known_default().unwrap_or(80);
        let primary = TcpListener::bind(SocketAddr::new(first, port))
            .await
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::AddrInUse => AuthError::PortBusy { port },
                _ => bad(&format!("cannot listen on {first} port {port}: {e}")),
            })?;
        let port = primary
            .local_addr()
            .map_err(|e| AuthError::Io(format!("the login listener has no address: {e}")))?
            .port();
        // The other loopback family is a convenience (IPv6 may be off on this machine).
        let secondary = match second {
            Some(ip) => match TcpListener::bind(SocketAddr::new(ip, port)).await {
                Ok(l) => Some(l),
                Err(e) => {
                    tracing::debug!("login listener: not listening on {ip} port {port}: {e}");
                    None
                }
            },
            None => None,
        };
        if url.port().is_some() || port != 80 {
            // Only the port changes (when 0 was asked for); set_port fails only for URLs
            // without a host, which were refused above.
            let _ = url.set_port(Some(port));
        }
        Ok(CallbackListener {
            primary,
            secondary,
            path: url.path().to_string(),
            redirect_uri: url.to_string(),
        })
    }

    /// The redirect URI this listener answers, with the port actually bound.
    pub fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }

    /// Waits for the browser's redirect. Returns the authorization code and the responder that
    /// answers the browser once the login is done. A request to the callback path that is not a
    /// valid callback (state mismatch, denial, no code) is answered with the reason and ends the
    /// wait with that error; requests to other paths are answered 404 and ignored.
    pub async fn next_callback(
        &mut self,
        expected_state: &str,
        timeout: Duration,
    ) -> Result<(String, CallbackResponder), AuthError> {
        tokio::time::timeout(timeout, self.wait_for_callback(expected_state))
            .await
            .map_err(|_| AuthError::Timeout)?
    }

    async fn wait_for_callback(
        &mut self,
        expected_state: &str,
    ) -> Result<(String, CallbackResponder), AuthError> {
        let (tx, mut rx) = mpsc::channel::<(String, TcpStream)>(16);
        loop {
            tokio::select! {
                accepted = accept_any(&self.primary, self.secondary.as_ref()) => {
                    match accepted {
                        Ok(stream) => {
                            let tx = tx.clone();
                            tokio::spawn(async move {
                                if let Some(request) = read_request(stream).await {
                                    let _ = tx.send(request).await;
                                }
                            });
                        }
                        Err(e) => tracing::debug!("login listener: accept failed: {e}"),
                    }
                }
                Some((target, stream)) = rx.recv() => {
                    let (path, query) = target.split_once('?').unwrap_or((target.as_str(), ""));
                    if path != self.path {
                        respond_later(stream, 404, "perch: nothing here".to_string());
                        continue;
                    }
                    let responder = CallbackResponder { stream: Some(stream) };
                    return match parse_callback(&format!("?{query}"), expected_state) {
                        Ok(code) => Ok((code, responder)),
                        Err(e) => {
                            responder.finish_async(Err(&e.to_string())).await;
                            Err(e)
                        }
                    };
                }
            }
        }
    }
}

async fn accept_any(
    primary: &TcpListener,
    secondary: Option<&TcpListener>,
) -> std::io::Result<TcpStream> {
    match secondary {
        Some(secondary) => tokio::select! {
            r = primary.accept() => r.map(|(s, _)| s),
            r = secondary.accept() => r.map(|(s, _)| s),
        },
        None => primary.accept().await.map(|(s, _)| s),
    }
}

/// Reads one request head and returns the target of a GET (`/callback?code=...`). Anything else
/// is answered here and dropped.
async fn read_request(mut stream: TcpStream) -> Option<(String, TcpStream)> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 2048];
    let read = async {
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_REQUEST_HEAD {
            let n = stream.read(&mut buf).await.ok()?;
            if n == 0 {
                return None;
            }
            head.extend_from_slice(&buf[..n]);
        }
        Some(())
    };
    tokio::time::timeout(REQUEST_READ_TIMEOUT, read)
        .await
        .ok()??;
    let text = String::from_utf8_lossy(&head);
    let mut parts = text.lines().next()?.split_whitespace();
    let (method, target) = (parts.next()?, parts.next()?);
    if method != "GET" {
        write_page(&mut stream, 405, "perch: only GET is answered here").await;
        return None;
    }
    Some((target.to_string(), stream))
}

/// Answers the browser that delivered the callback, once perch knows how the login ended.
pub struct CallbackResponder {
    stream: Option<TcpStream>,
}

impl std::fmt::Debug for CallbackResponder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CallbackResponder")
    }
}

fn outcome_page(outcome: Result<&str, &str>) -> (u16, String) {
    match outcome {
        Ok(handle) => {
            let handle = if handle.starts_with('@') {
                handle.to_string()
            } else {
                format!("@{handle}")
            };
            (
                200,
                format!("perch: {handle} added, you can close this tab"),
            )
        }
        Err(error) => (400, format!("perch: the login did not complete. {error}")),
    }
}

impl CallbackResponder {
    /// Answers the browser: "perch: @handle added, you can close this tab", or the error. The page
    /// is written in the background; use [`CallbackResponder::finish_async`] to wait for it.
    pub fn finish(mut self, outcome: Result<&str, &str>) {
        if let Some(stream) = self.stream.take() {
            let (status, message) = outcome_page(outcome);
            respond_later(stream, status, message);
        }
    }

    /// As [`CallbackResponder::finish`], returning once the page is written.
    pub async fn finish_async(mut self, outcome: Result<&str, &str>) {
        if let Some(mut stream) = self.stream.take() {
            let (status, message) = outcome_page(outcome);
            write_page(&mut stream, status, &message).await;
        }
    }
}

impl Drop for CallbackResponder {
    fn drop(&mut self) {
        // Dropped without an outcome (the login failed on the way out): never leave the browser
        // hanging on a connection nobody will answer.
        if let Some(stream) = self.stream.take() {
            respond_later(
                stream,
                500,
                "perch: the login did not complete; see the terminal for why".to_string(),
            );
        }
    }
}

fn respond_later(mut stream: TcpStream, status: u16, message: String) {
    if let Ok(handle) = tokio::runtime::Handle::try_current() {
        handle.spawn(async move { write_page(&mut stream, status, &message).await });
    }
}

async fn write_page(stream: &mut TcpStream, status: u16, message: &str) {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Internal Server Error",
    };
    let body = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>perch</title></head><body><p>{}</p></body></html>\n",
        html_escape::encode_text(message)
    );
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    if let Err(e) = stream.write_all(response.as_bytes()).await {
        tracing::debug!("login listener: could not answer the browser: {e}");
    }
    let _ = stream.shutdown().await;
}
