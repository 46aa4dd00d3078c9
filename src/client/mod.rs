//! The connection a dashboard or CLI command holds to the perch service, over its Unix socket.
//!
//! - `session.rs`: the dashboard's session (blocking request/reply for hot reads and commands on
//!   one connection, the service's events pushed on another), and [`Link`], which reconnects it.
//! - `upgrade.rs`: opening an upgraded connection (`Upgrade: perch-session/2` and friends).
//! - `http.rs`: plain requests to the service (status, stop), with reqwest over the socket.

pub mod http;
pub mod session;
pub mod upgrade;

pub use session::{Connection, Incoming, Link, Session};
