//! Notifications when new mentions arrive: what the user configured (`config.rs`), how arrivals
//! become bursts (`burst.rs`, one notification per account per burst), what a notification says
//! (`message.rs`), desktop notifications (`desktop.rs`) and the `on_new_mentions` hook
//! (`hook.rs`).
//!
//! Who does what: the service sends desktop notifications and runs hooks
//! (`service/notifier.rs`), so they work while no dashboard is open; the terminal bell and title
//! are the dashboard's (`app/notify.rs` decides, as effects; `tui.rs` writes them). Quiet hours
//! silence the bell, desktop notifications and hooks; the title keeps counting.
//!
//! May use: domain, text (see docs/ARCHITECTURE.md). The hook's JSON document is built by the
//! service (it is the REST API's mention shape).

pub mod burst;
pub mod config;
pub mod desktop;
pub mod hook;
pub mod message;

pub use burst::{Burst, Bursts};
pub use config::{AccountNotify, Channels, NotifyFile, NotifySettings, QuietHours};
