//! perch: a terminal dashboard for the @mentions of several X accounts.
//! See ARCHITECTURE.md (in the shared design folder) for how the modules fit together.

pub mod api;
pub mod app;
pub mod auth;
pub mod cli;
pub mod client;
pub mod config;
pub mod cost_report;
pub mod costs;
pub mod dashboard;
pub mod domain;
pub mod interop;
pub mod notify;
pub mod outbox;
pub mod protocol;
pub mod service;
pub mod sim;
pub mod stats;
pub mod store;
pub mod sync;
pub mod text;
pub mod tui;
pub mod ui;
pub mod x;

/// Property tests for every parser that takes outside data (issue 10).
#[cfg(test)]
mod input_properties;
