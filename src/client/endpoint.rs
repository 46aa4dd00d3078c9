//! Where the dashboard's service is: this machine's Unix socket (its owner, no token), or a
//! remote service given by `--connect URL` (`PERCH_CONNECT`) with a person's API token
//! (`PERCH_API_TOKEN`), over plain TCP (`http://`, for a tunnel or a trusted network) or TLS
//! (`https://`, usually a reverse proxy in front of the service's `api_listen`; README "Working
//! as a team").
//!
//! TLS is rustls, verifying the server against the Mozilla roots (webpki-roots) and, when
//! `PERCH_CA_FILE` names a PEM file, the certificates in it too (a team's own CA or a
//! self-signed proxy). The token goes only in the `Authorization` header of the upgrade request,
//! never in a URL, a log line or `Debug` output.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::domain::Secret;

/// How long connecting (TCP, then TLS) may take.
pub const CONNECT_TIMEOUT: Duration = super::upgrade::CONNECT_TIMEOUT;

/// The dashboard's service.
#[derive(Clone)]
pub enum Endpoint {
    /// The local service's Unix socket: the owner, protected by the socket's file mode.
    Socket(PathBuf),
    /// A service elsewhere, as a team person.
    Remote(Arc<Remote>),
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Socket(path) => f.debug_tuple("Socket").field(path).finish(),
            Endpoint::Remote(remote) => f.debug_tuple("Remote").field(&remote.shown).finish(),
        }
    }
}

/// A remote service: where, how, and the person's token.
pub struct Remote {
    host: String,
    port: u16,
    tls: Option<Arc<rustls::ClientConfig>>,
    token: Secret,
    /// The URL as the user gave it, without any user or password, for messages.
    shown: String,
}

impl Endpoint {
    /// `--connect URL` with the person's `token`; `ca_file` adds trusted certificates for
    /// `https://`. Says what is wrong with the URL, the token or the file.
    pub fn remote(
        url: &str,
        token: Option<Secret>,
        ca_file: Option<&Path>,
    ) -> Result<Endpoint, String> {
        let parsed = url::Url::parse(url).map_err(|e| {
            format!("--connect {url:?} is not a URL ({e}): give it as https://perch.example.com or http://127.0.0.1:7878")
        })?;
        let tls = match parsed.scheme() {
            "https" => true,
            "http" => false,
            other => {
                return Err(format!(
                    "--connect: {other}:// is not a scheme perch speaks; use https:// (or http:// through a tunnel)"
                ));
            }
        };
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(
                "--connect: put no user or password in the URL; the person's token goes in PERCH_API_TOKEN".into(),
            );
        }
        let host = parsed
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| format!("--connect {url:?} names no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = parsed
            .port_or_known_default()
            .ok_or_else(|| format!("--connect {url:?} names no port"))?;
        let Some(token) = token.filter(|t| !t.expose().trim().is_empty()) else {
            return Err("--connect needs the person's API token in PERCH_API_TOKEN (`perch team add NAME` printed it once; an owner or admin can make a new one with `perch team add` after `perch team remove`)".into());
        };
        if !tls && !is_loopback(&host) {
            return Err(format!(
                "--connect {url}: http:// would send your token across the network in the clear; use https:// (TLS in front of the service), or an SSH tunnel and http://127.0.0.1:PORT"
            ));
        }
        let tls = if tls {
            Some(Arc::new(tls_config(ca_file)?))
        } else {
            None
        };
        let shown = format!(
            "{}://{}:{port}",
            parsed.scheme(),
            parsed.host_str().unwrap_or_default()
        );
        Ok(Endpoint::Remote(Arc::new(Remote {
            host,
            port,
            tls,
            token,
            shown,
        })))
    }

    /// Where it is, for messages.
    pub fn describe(&self) -> String {
        match self {
            Endpoint::Socket(path) => format!("the perch service at {}", path.display()),
            Endpoint::Remote(remote) => format!("the perch service at {}", remote.shown),
        }
    }

    /// The remote service's host (and port, when not the scheme's own), for the status bar;
    /// `None` for the local socket.
    pub fn address(&self) -> Option<String> {
        match self {
            Endpoint::Socket(_) => None,
            Endpoint::Remote(remote) => {
                let default = if remote.tls.is_some() { 443 } else { 80 };
                Some(if remote.port == default {
                    remote.host.clone()
                } else {
                    format!("{}:{}", remote.host, remote.port)
                })
            }
        }
    }

    /// The local socket, when that is what it is.
    pub fn socket(&self) -> Option<&Path> {
        match self {
            Endpoint::Socket(path) => Some(path),
            Endpoint::Remote(_) => None,
        }
    }

    /// Opens a connection (TLS handshake done for `https://`), with no timeouts left set.
    pub fn connect(&self) -> std::io::Result<Stream> {
        match self {
            Endpoint::Socket(path) => Ok(Stream::Unix(UnixStream::connect(path)?)),
            Endpoint::Remote(remote) => remote.connect(),
        }
    }

    /// The upgrade request's headers beyond `Connection` and `Upgrade`, each ending in CRLF.
    pub(super) fn request_headers(&self) -> String {
        match self {
            Endpoint::Socket(_) => "Host: perch\r\n".to_string(),
            Endpoint::Remote(remote) => {
                let host = if remote.host.contains(':') {
                    format!("[{}]", remote.host)
                } else {
                    remote.host.clone()
                };
                format!(
                    "Host: {host}:{}\r\nAuthorization: Bearer {}\r\n",
                    remote.port,
                    remote.token.expose()
                )
            }
        }
    }
}

impl Remote {
    fn connect(&self) -> std::io::Result<Stream> {
        let addrs: Vec<_> = (self.host.as_str(), self.port).to_socket_addrs()?.collect();
        let mut last = None;
        let mut tcp = None;
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
                Ok(stream) => {
                    tcp = Some(stream);
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        let tcp = match tcp {
            Some(tcp) => tcp,
            None => {
                return Err(last.unwrap_or_else(|| {
                    std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        format!("{} has no address", self.host),
                    )
                }));
            }
        };
        tcp.set_nodelay(true)?;
        let Some(config) = &self.tls else {
            return Ok(Stream::Tcp(tcp));
        };
        let name = rustls::pki_types::ServerName::try_from(self.host.clone())
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()))?;
        let connection = rustls::ClientConnection::new(config.clone(), name)
            .map_err(|e| std::io::Error::other(format!("TLS: {e}")))?;
        let mut tls = rustls::StreamOwned::new(connection, tcp);
        // The handshake now, bounded, so a proxy that accepts and never answers is reported here.
        tls.sock.set_read_timeout(Some(CONNECT_TIMEOUT))?;
        tls.sock.set_write_timeout(Some(CONNECT_TIMEOUT))?;
        while tls.conn.is_handshaking() {
            tls.conn.complete_io(&mut tls.sock).map_err(|e| {
                std::io::Error::new(e.kind(), format!("TLS with {}: {e}", self.shown))
            })?;
        }
        tls.sock.set_read_timeout(None)?;
        tls.sock.set_write_timeout(None)?;
        Ok(Stream::Tls(Box::new(tls)))
    }
}

/// This machine: where plain http:// is allowed (an SSH tunnel's end).
fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn tls_config(ca_file: Option<&Path>) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(path) = ca_file {
        use rustls::pki_types::pem::PemObject as _;
        let certs = rustls::pki_types::CertificateDer::pem_file_iter(path)
            .map_err(|e| format!("PERCH_CA_FILE {}: {e}", path.display()))?;
        let mut added = 0usize;
        for cert in certs {
            let cert = cert.map_err(|e| format!("PERCH_CA_FILE {}: {e}", path.display()))?;
            roots
                .add(cert)
                .map_err(|e| format!("PERCH_CA_FILE {}: {e}", path.display()))?;
            added += 1;
        }
        if added == 0 {
            return Err(format!(
                "PERCH_CA_FILE {} holds no PEM certificate",
                path.display()
            ));
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))
        .map(|b| b.with_root_certificates(roots).with_no_client_auth())
}

/// One connection to the service.
pub enum Stream {
    Unix(UnixStream),
    Tcp(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

/// Shuts a connection down from another thread (waking a reader blocked on it).
pub enum Shutdown {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Shutdown {
    pub fn shutdown(&self) {
        let _ = match self {
            Shutdown::Unix(s) => s.shutdown(std::net::Shutdown::Both),
            Shutdown::Tcp(s) => s.shutdown(std::net::Shutdown::Both),
        };
    }
}

impl Stream {
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> std::io::Result<()> {
        match self {
            Stream::Unix(s) => s.set_read_timeout(timeout),
            Stream::Tcp(s) => s.set_read_timeout(timeout),
            Stream::Tls(s) => s.sock.set_read_timeout(timeout),
        }
    }

    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> std::io::Result<()> {
        match self {
            Stream::Unix(s) => s.set_write_timeout(timeout),
            Stream::Tcp(s) => s.set_write_timeout(timeout),
            Stream::Tls(s) => s.sock.set_write_timeout(timeout),
        }
    }

    /// A handle that shuts this connection down.
    pub fn shutdown_handle(&self) -> std::io::Result<Shutdown> {
        Ok(match self {
            Stream::Unix(s) => Shutdown::Unix(s.try_clone()?),
            Stream::Tcp(s) => Shutdown::Tcp(s.try_clone()?),
            Stream::Tls(s) => Shutdown::Tcp(s.sock.try_clone()?),
        })
    }

    /// The socket's descriptor, when reading it directly tells whether data is waiting (not
    /// under TLS, whose records may already be buffered).
    pub fn pollable_fd(&self) -> Option<std::os::fd::RawFd> {
        use std::os::fd::AsRawFd as _;
        match self {
            Stream::Unix(s) => Some(s.as_raw_fd()),
            Stream::Tcp(s) => Some(s.as_raw_fd()),
            Stream::Tls(_) => None,
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Unix(s) => s.read(buf),
            Stream::Tcp(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Unix(s) => s.write(buf),
            Stream::Tcp(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Stream::Unix(s) => s.flush(),
            Stream::Tcp(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}
