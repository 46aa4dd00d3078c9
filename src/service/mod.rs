//! The perch service: the one long-running owner of a data directory's store, sync engine and
//! outbox. The dashboard, the CLI and HTTP clients are its clients, over an owner-only Unix socket
//! (and, when `api_listen` is set, TCP with a bearer token). It keeps tracking when the dashboard
//! is closed, because X serves only the newest 800 mentions of an account.
//!
//! - `paths.rs`: where the socket, lock, token, log and markers live.
//! - `lock.rs`: one service per data directory.
//! - `token.rs`: the API's bearer token.
//! - `hub.rs`: what the API and sessions share (store, engine, outbox, event broadcast).
//! - `run.rs`: starting and ending it.
//! - `notifier.rs`: desktop notifications and the `on_new_mentions` hook for new mentions.
//! - `leadership.rs`: on PostgreSQL, the engine runs while this service is the elected leader,
//!   and the change feed tells this service's clients what the others committed.
//! - `team_outbox.rs`: on PostgreSQL, this service's clients' sends recorded in the database,
//!   for the leader's worker to send.
//! - `spawn.rs`: starting one in the background for the dashboard, and finding a running one.

mod head_deadline;
pub mod hub;
mod leadership;
pub mod lock;
mod notifier;
pub mod paths;
pub mod presence;
mod run;
pub mod send_audit;
pub mod spawn;
mod team_outbox;
pub mod token;

pub use hub::{Hub, ServiceEvent, ServiceInfo};
pub use paths::ServicePaths;
pub use run::{RunningService, ServiceError, start, start_with};
