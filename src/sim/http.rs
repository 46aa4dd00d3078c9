//! The HTTP plumbing every route shares: a listener whose connections can be reset on purpose, the
//! gate every request passes (authentication, scopes, rate limits, faults, X's headers, the request
//! log), and helpers for X's response bodies.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::Body;
use axum::extract::connect_info::{ConnectInfo, Connected};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::serve::{IncomingStream, Listener};
use rand::Rng;
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use super::RequestLogEntry;
use super::ratelimit::{Budget, Endpoint};
use super::state::Shared;

pub(crate) const JSON: &str = "application/json; charset=utf-8";
pub(crate) const PROBLEM_JSON: &str = "application/problem+json";
pub(crate) const INVALID_REQUEST_TYPE: &str = "https://api.twitter.com/2/problems/invalid-request";

// ---------------------------------------------------------------------------------------------
// A listener whose connections the simulator can reset (a real TCP RST, not a polite close).

pub(crate) struct ResettableListener {
    pub inner: TcpListener,
}

impl Listener for ResettableListener {
    type Io = ResettableStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.inner.accept().await {
                Ok((stream, addr)) => {
                    let _ = stream.set_nodelay(true);
                    return (
                        ResettableStream {
                            inner: stream,
                            reset: Arc::new(AtomicBool::new(false)),
                        },
                        addr,
                    );
                }
                Err(e) => {
                    // Usually EMFILE under load: wait a moment rather than spin.
                    tracing::warn!("simulator accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// A TCP stream that fails every read and write once its connection is marked for reset, so hyper
/// drops it; on drop the socket is closed with SO_LINGER 0, which sends RST.
pub(crate) struct ResettableStream {
    inner: TcpStream,
    reset: Arc<AtomicBool>,
}

impl ResettableStream {
    fn is_reset(&self) -> bool {
        self.reset.load(Ordering::Relaxed)
    }
}

fn reset_error() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionReset, "simulated connection reset")
}

impl Drop for ResettableStream {
    fn drop(&mut self) {
        if self.is_reset() {
            let _ = self.inner.set_zero_linger();
        }
    }
}

impl AsyncRead for ResettableStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.is_reset() {
            return Poll::Ready(Err(reset_error()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for ResettableStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.is_reset() {
            return Poll::Ready(Err(reset_error()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.is_reset() {
            return Poll::Ready(Err(reset_error()));
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.is_reset() {
            return Poll::Ready(Err(reset_error()));
        }
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Per-connection handle that lets a request reset its own connection.
#[derive(Clone)]
pub(crate) struct ConnHandle {
    reset: Arc<AtomicBool>,
}

impl ConnHandle {
    fn reset(&self) {
        self.reset.store(true, Ordering::Relaxed);
    }
}

impl Connected<IncomingStream<'_, ResettableListener>> for ConnHandle {
    fn connect_info(stream: IncomingStream<'_, ResettableListener>) -> Self {
        ConnHandle {
            reset: stream.io().reset.clone(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Response helpers.

/// A JSON body with X's success content type.
pub(crate) fn json_response(status: StatusCode, body: &Value) -> Response {
    (status, [(header::CONTENT_TYPE, JSON)], body.to_string()).into_response()
}

/// A Problem body (RFC 7807), served as `application/problem+json` as the spec declares.
pub(crate) fn problem(status: StatusCode, body: Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, PROBLEM_JSON)],
        body.to_string(),
    )
        .into_response()
}

/// The generic `about:blank` Problem X sends for 401, 403, 429 and 5xx.
pub(crate) fn about_blank(status: StatusCode, title: &str, detail: &str) -> Response {
    problem(
        status,
        json!({"title": title, "detail": detail, "type": "about:blank", "status": status.as_u16()}),
    )
}

/// 400 invalid-request with the given `errors` entries (`{parameters, message}`).
pub(crate) fn invalid_request(errors: Vec<Value>) -> Response {
    problem(
        StatusCode::BAD_REQUEST,
        json!({
            "errors": errors,
            "title": "Invalid Request",
            "detail": "One or more parameters to your request was invalid.",
            "type": INVALID_REQUEST_TYPE,
        }),
    )
}

/// One invalid-request entry in X's wording: "The `name` query parameter value [v] is ...".
pub(crate) fn param_error(name: &str, value: &str, problem: &str) -> Value {
    json!({
        "parameters": {name: [value]},
        "message": format!("The `{name}` query parameter value [{value}] {problem}"),
    })
}

/// Unknown paths: X answers true 404s with the legacy v1 shape.
pub(crate) async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, JSON)],
        json!({"errors": [{"message": "Sorry, that page does not exist", "code": 34}]}).to_string(),
    )
        .into_response()
}

// ---------------------------------------------------------------------------------------------
// The gate.

/// Who is calling a resource endpoint; inserted into the request by the gate.
#[derive(Clone, Debug)]
pub(crate) struct Caller {
    pub user_id: u64,
}

/// Body-shaping faults a handler applies to what it returns; inserted by the gate.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct BodyFaults {
    pub partial_errors: bool,
    pub missing_authors: bool,
    pub bad_posts: bool,
    pub retweets: bool,
    pub newest_id_beyond: bool,
    pub unreadable_pages: bool,
    pub repeat_next_token: bool,
    pub empty_token_pages: bool,
    pub endless_pages: bool,
    pub hostile_senders: bool,
}

/// What a handler tells the request log about a request the gate could not attribute (the token
/// endpoint knows which user a token went to).
#[derive(Clone, Debug, Default)]
pub(crate) struct LogNote {
    pub user_id: Option<u64>,
    pub note: Option<String>,
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
        .filter(|t| !t.is_empty())
}

/// What `x-access-level` says for a grant's scopes.
fn access_level(scope: &str) -> &'static str {
    let has = |s: &str| scope.split_whitespace().any(|x| x == s);
    if has("dm.read") || has("dm.write") {
        "read-write-directmessages"
    } else if has("tweet.write") {
        "read-write"
    } else {
        "read"
    }
}

fn set_header(headers: &mut HeaderMap, name: &'static str, value: impl ToString) {
    if let Ok(v) = HeaderValue::from_str(&value.to_string()) {
        headers.insert(name, v);
    }
}

fn rate_headers(headers: &mut HeaderMap, budget: &Budget) {
    set_header(headers, "x-rate-limit-limit", budget.limit);
    set_header(headers, "x-rate-limit-remaining", budget.remaining);
    set_header(headers, "x-rate-limit-reset", budget.reset_epoch);
    if let Some((limit, remaining, reset)) = budget.daily {
        set_header(headers, "x-user-limit-24hour-limit", limit);
        set_header(headers, "x-user-limit-24hour-remaining", remaining);
        set_header(headers, "x-user-limit-24hour-reset", reset);
    }
}

/// Every request passes here. Resource endpoints are authenticated, rate-limited and subjected to
/// faults; every response gets X's common headers; every non-control request is logged.
pub(crate) async fn gate(State(shared): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = req.uri().query().map(str::to_string);
    let is_control = path.starts_with("/__sim");
    let mut user_id = None;
    let mut response = match Endpoint::classify(&method, &path) {
        Some(endpoint) => resource(&shared, endpoint, req, next, &mut user_id).await,
        None => next.run(req).await,
    };
    let now = shared.clock.now();
    let transaction_id = {
        let mut world = shared.world();
        format!("{:016x}", world.rng.random::<u64>())
    };
    let headers = response.headers_mut();
    set_header(headers, "date", now.format("%a, %d %b %Y %H:%M:%S UTC"));
    set_header(headers, "x-transaction-id", &transaction_id);
    set_header(headers, "api-version", "2.159");
    set_header(headers, "x-response-time", started.elapsed().as_millis());
    set_header(headers, "cache-control", "no-cache, no-store, max-age=0");
    if !is_control {
        let note = response.extensions().get::<LogNote>().cloned();
        if user_id.is_none() {
            user_id = note.as_ref().and_then(|n| n.user_id);
        }
        let mut world = shared.world();
        let username = user_id.and_then(|id| world.users.get(&id).map(|u| u.username.clone()));
        world.log_request(RequestLogEntry {
            method: method.to_string(),
            path,
            query,
            status: response.status().as_u16(),
            user_id: user_id.map(|id| id.to_string()),
            username,
            note: note.and_then(|n| n.note),
            transaction_id,
            at: now,
        });
    }
    response
}

/// The resource-endpoint part of the gate.
async fn resource(
    shared: &Arc<Shared>,
    endpoint: Endpoint,
    mut req: Request,
    next: Next,
    user_out: &mut Option<u64>,
) -> Response {
    let now = shared.clock.now();
    let token = bearer(req.headers()).unwrap_or("").to_string();
    let conn = req
        .extensions()
        .get::<ConnectInfo<ConnHandle>>()
        .map(|c| c.0.clone());

    // Decide everything that needs the world in one short lock.
    let decision = {
        let mut world = shared.world();
        let Some(grant) = world.oauth.check_access(&token, now) else {
            return about_blank(StatusCode::UNAUTHORIZED, "Unauthorized", "Unauthorized");
        };
        let (user_id, scope) = (grant.user_id, grant.scope.clone());
        *user_out = Some(user_id);
        let scopes: Vec<&str> = scope.split_whitespace().collect();
        if endpoint
            .required_scopes()
            .iter()
            .any(|s| !scopes.contains(s))
        {
            return about_blank(StatusCode::FORBIDDEN, "Forbidden", "Forbidden");
        }
        let faults = world.faults.clone();
        let names_user = |list: &[String]| {
            list.iter()
                .any(|name| world.find_user(name) == Some(user_id))
        };
        let storm = names_user(&faults.rate_limit_storm);
        let targeted = faults.only_users.is_empty() || names_user(&faults.only_users);
        let profile = &shared.config.rate_limits;
        let budget = if storm {
            world.limits.peek(&token, endpoint, now, profile)
        } else {
            world.limits.take(&token, endpoint, now, profile)
        };
        let depleted = world.billing.depleted();
        let mut roll = |p: f64| targeted && p > 0.0 && world.rng.random::<f64>() < p;
        Decision {
            user_id,
            scope,
            budget,
            credits: (targeted && faults.credits_depleted) || depleted,
            not_enrolled: targeted && faults.client_not_enrolled,
            reset: roll(faults.connection_reset_probability),
            server_error: roll(faults.server_error_probability),
            slow: faults
                .slow_response
                .filter(|_| roll(faults.slow_probability)),
            malformed: roll(faults.malformed_json_probability),
            body_faults: BodyFaults {
                partial_errors: faults.partial_errors,
                missing_authors: faults.missing_authors,
                bad_posts: faults.bad_posts,
                retweets: faults.retweets,
                newest_id_beyond: faults.newest_id_beyond,
                unreadable_pages: faults.unreadable_pages,
                repeat_next_token: faults.repeat_next_token,
                empty_token_pages: faults.empty_token_pages,
                endless_pages: faults.endless_pages,
                hostile_senders: faults.hostile_senders,
            },
            reset_at: faults
                .reset_offset_secs
                .map(|offset| now.timestamp().saturating_add(offset)),
            retry_after: faults.retry_after.clone(),
            errors_only: faults.errors_only_sends
                && matches!(endpoint, Endpoint::CreatePost | Endpoint::SendDm),
        }
    };

    let mut response = if decision.budget.exhausted {
        about_blank(
            StatusCode::TOO_MANY_REQUESTS,
            "Too Many Requests",
            "Too Many Requests",
        )
    } else if decision.credits {
        problem(
            StatusCode::PAYMENT_REQUIRED,
            json!({
                "account_id": decision.user_id,
                "title": "CreditsDepleted",
                "detail": format!("Your enrolled account [{}] does not have any credits to fulfill this request.", decision.user_id),
                "type": "https://api.twitter.com/2/problems/credits",
            }),
        )
    } else if decision.not_enrolled {
        problem(
            StatusCode::FORBIDDEN,
            json!({
                "client_id": shared.config.client_id,
                "required_enrollment": "Standard Basic",
                "registration_url": "https://developer.twitter.com/en/account",
                "title": "Client Forbidden",
                "detail": "This request must be made using an approved developer account that is enrolled in the requested endpoint. Learn more by visiting our documentation.",
                "reason": "client-not-enrolled",
                "type": "https://api.x.com/2/problems/client-forbidden",
            }),
        )
    } else if decision.reset && conn.is_some() {
        if let Some(conn) = &conn {
            conn.reset();
        }
        // Never delivered: writing it fails and the connection is torn down with RST.
        StatusCode::INTERNAL_SERVER_ERROR.into_response()
    } else if decision.errors_only {
        // A 200 that proves nothing: no `data`, only `errors`; and nothing is posted.
        json_response(
            StatusCode::OK,
            &json!({"errors": [{
                "title": "Service Unavailable",
                "detail": "The request could not be completed. Please try again later.",
                "type": "about:blank",
            }]}),
        )
    } else if decision.server_error {
        about_blank(
            StatusCode::SERVICE_UNAVAILABLE,
            "Service Unavailable",
            "Service Unavailable",
        )
    } else {
        if let Some(delay) = decision.slow {
            tokio::time::sleep(delay).await;
        }
        req.extensions_mut().insert(Caller {
            user_id: decision.user_id,
        });
        req.extensions_mut().insert(decision.body_faults);
        let response = next.run(req).await;
        if decision.malformed && response.status().is_success() {
            truncate_body(response).await
        } else {
            response
        }
    };
    let refused = response.status() == StatusCode::TOO_MANY_REQUESTS;
    let headers = response.headers_mut();
    let mut budget = decision.budget;
    if let Some(reset) = decision.reset_at {
        budget.reset_epoch = reset;
    }
    rate_headers(headers, &budget);
    if let (true, Some(value)) = (refused, &decision.retry_after) {
        set_header(headers, "retry-after", value);
    }
    set_header(headers, "x-access-level", access_level(&decision.scope));
    response
}

struct Decision {
    user_id: u64,
    scope: String,
    budget: Budget,
    credits: bool,
    not_enrolled: bool,
    reset: bool,
    server_error: bool,
    slow: Option<std::time::Duration>,
    malformed: bool,
    body_faults: BodyFaults,
    /// `x-rate-limit-reset` to send instead of the real one (epoch seconds).
    reset_at: Option<i64>,
    retry_after: Option<String>,
    /// Answer a send with a 200 that holds only `errors`.
    errors_only: bool,
}

/// Cuts a JSON body in half, keeping status and headers: valid HTTP, unparseable JSON.
async fn truncate_body(response: Response) -> Response {
    let (mut parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, 16 * 1024 * 1024)
        .await
        .unwrap_or_default();
    let cut = (bytes.len() / 2).max(1).min(bytes.len());
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(bytes.slice(..cut)))
}
