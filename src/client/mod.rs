//! The connection a dashboard or CLI command holds to the perch service: over its Unix socket
//! (the owner), or to a remote service as a team person (`--connect`).
//!
//! - `endpoint.rs`: where the service is (socket, or `http://` / `https://` with a person's
//!   token), and the connection to it (Unix, TCP, or rustls).
//! - `session.rs`: the dashboard's session (blocking request/reply for hot reads and commands on
//!   one connection, the service's events pushed on another), and [`Link`], which reconnects it.
//! - `upgrade.rs`: opening an upgraded connection (`Upgrade: perch-session/2` and friends).
//! - `http.rs`: plain requests to the service (status, stop), with reqwest over the socket.

pub mod endpoint;
pub mod http;
pub mod session;
pub mod upgrade;

pub use endpoint::Endpoint;
pub use session::{Connection, Incoming, Link, Session};
