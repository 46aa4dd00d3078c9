//! Plain HTTP requests to the service over its socket (reqwest speaks Unix sockets).

use std::path::Path;
use std::time::Duration;

use crate::api::internal::ServiceStatus;

/// A client for the service on `socket`.
pub fn client(socket: &Path) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .unix_socket(socket)
        .timeout(Duration::from_secs(10))
        .build()
}

/// What the service says about itself, or `None` when no service answers on `socket`.
pub async fn status(socket: &Path) -> Option<Result<ServiceStatus, String>> {
    if !socket.exists() {
        return None;
    }
    let client = client(socket).ok()?;
    let response = match client.get("http://perch/internal/v1/status").send().await {
        Ok(r) => r,
        // Nobody listening: a socket left by a crash.
        Err(e) if e.is_connect() => return None,
        Err(e) => return Some(Err(format!("the service did not answer: {e}"))),
    };
    if !response.status().is_success() {
        return Some(Err(format!(
            "the service answered {} to a status request",
            response.status()
        )));
    }
    Some(
        response
            .json::<ServiceStatus>()
            .await
            .map_err(|e| format!("the service's status could not be read: {e}")),
    )
}

/// Asks the service to stop. `Ok(false)` when none was running.
pub async fn stop(socket: &Path) -> Result<bool, String> {
    if !socket.exists() {
        return Ok(false);
    }
    let client = client(socket).map_err(|e| e.to_string())?;
    match client.post("http://perch/internal/v1/stop").send().await {
        Ok(r) if r.status().is_success() => Ok(true),
        Ok(r) => Err(format!("the service answered {} to stop", r.status())),
        Err(e) if e.is_connect() => Ok(false),
        Err(e) => Err(format!("the service did not answer: {e}")),
    }
}
