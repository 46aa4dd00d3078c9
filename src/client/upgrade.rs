//! Opening an upgraded connection on the service socket: one HTTP/1.1 request with `Connection:
//! Upgrade`, then the socket speaks the framed protocol. Written by hand because it is one request
//! and one status line, and the session after it must be a plain blocking stream.

use std::io::{BufRead as _, BufReader, Write as _};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// How long connecting and the upgrade answer may take before the service counts as not
/// answering.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Connects to `socket` and upgrades `path` to `protocol`. The returned stream has no timeouts
/// set (the caller decides).
pub fn open(socket: &Path, path: &str, protocol: &str) -> std::io::Result<UnixStream> {
    let mut stream = UnixStream::connect(socket)?;
    stream.set_read_timeout(Some(CONNECT_TIMEOUT))?;
    stream.set_write_timeout(Some(CONNECT_TIMEOUT))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: perch\r\nConnection: Upgrade\r\nUpgrade: {protocol}\r\n\r\n"
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
        return Err(invalid(&format!(
            "the service refused the session ({status}); is it a perch of the same version?"
        )));
    }
    stream.set_read_timeout(None)?;
    stream.set_write_timeout(None)?;
    Ok(stream)
}

fn invalid(message: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, message.to_string())
}
