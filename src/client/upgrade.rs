//! Opening an upgraded connection to the service (its socket, or a remote one: `endpoint.rs`):
//! one HTTP/1.1 request with `Connection: Upgrade`, then the connection speaks the framed
//! protocol. Written by hand because it is one request
//! and one status line, and the session after it must be a plain blocking stream.

use std::io::{BufRead as _, BufReader, Write as _};
use std::time::Duration;

use super::endpoint::{Endpoint, Stream};

/// How long connecting and the upgrade answer may take before the service counts as not
/// answering.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Connects to `endpoint` and upgrades `path` to `protocol`. The returned stream has no
/// timeouts set (the caller decides).
pub fn open(endpoint: &Endpoint, path: &str, protocol: &str) -> std::io::Result<Stream> {
    let mut stream = endpoint.connect()?;
    stream.set_read_timeout(Some(CONNECT_TIMEOUT))?;
    stream.set_write_timeout(Some(CONNECT_TIMEOUT))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\n{}Connection: Upgrade\r\nUpgrade: {protocol}\r\n\r\n",
        endpoint.request_headers()
    )?;
    stream.flush()?;
    // Read the answer's head byte by byte (bounded), so nothing after it is swallowed by a buffer.
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 8192 {
            return Err(invalid("the service's answer to the upgrade is too long"));
        }
        let n = std::io::Read::read(&mut stream, &mut byte)?;
        if n == 0 {
            return Err(invalid(
                "the service closed the connection during the upgrade",
            ));
        }
        head.push(byte[0]);
    }
    let mut lines = BufReader::new(&head[..]).lines();
    let status = lines.next().transpose()?.unwrap_or_default();
    if !status.starts_with("HTTP/1.1 101") {
        let status = crate::text::sanitize(&status, true);
        // The service says why in the body (a JSON error): read a little of it, bounded.
        let why = refusal_body(&mut stream, &head);
        return Err(invalid(&match why {
            Some(why) => format!(
                "{} refused the session ({status}): {why}",
                endpoint.describe()
            ),
            None => format!(
                "{} refused the session ({status}); is it a perch of the same version?",
                endpoint.describe()
            ),
        }));
    }
    stream.set_read_timeout(None)?;
    stream.set_write_timeout(None)?;
    Ok(stream)
}

/// The `detail` of a refusal's JSON body (401 wrong token, 403 a member), at most 4 KiB read.
fn refusal_body(stream: &mut Stream, head: &[u8]) -> Option<String> {
    let head = String::from_utf8_lossy(head);
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.trim()
                .eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .filter(|n| *n <= 4096)?;
    let mut body = vec![0u8; length];
    std::io::Read::read_exact(stream, &mut body).ok()?;
    let value: serde_json::Value = serde_json::from_slice(&body).ok()?;
    let error = value.get("detail")?.as_str()?;
    Some(crate::text::sanitize(error, true))
}

fn invalid(message: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, message.to_string())
}
