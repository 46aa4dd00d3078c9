//! Desktop notifications through the freedesktop notification service (D-Bus on Linux), with
//! `notify-rust`.
//!
//! Where there is no notification daemon (no D-Bus session: a server, a container, SSH), sending
//! fails: perch logs that once, at warn level, and carries on; later failures are only logged at
//! debug level until one succeeds again. A send never waits longer than [`SEND_TIMEOUT`], runs
//! on its own task, and at most one is in flight: a burst that comes while one is still being
//! sent is logged and skipped, never queued behind a stuck bus.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The longest a desktop notification may take to be handed over.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(5);

/// Sends desktop notifications (cheap to clone).
#[derive(Clone, Debug, Default)]
pub struct Desktop {
    /// The last send failed (so the next failure is not logged again).
    failing: Arc<AtomicBool>,
    in_flight: Arc<AtomicBool>,
}

impl Desktop {
    /// Sends one notification in the background. Returns false when it was skipped because an
    /// earlier one is still being sent.
    pub fn send(&self, summary: String, body: String) -> bool {
        if self.in_flight.swap(true, Ordering::AcqRel) {
            tracing::debug!("a desktop notification is still being sent; skipping: {summary}");
            return false;
        }
        let this = self.clone();
        tokio::spawn(async move {
            let result = match tokio::time::timeout(SEND_TIMEOUT, show(&summary, &body)).await {
                Ok(result) => result,
                Err(_) => Err(format!(
                    "the notification service did not answer within {} s",
                    SEND_TIMEOUT.as_secs()
                )),
            };
            this.in_flight.store(false, Ordering::Release);
            this.observe(result);
        });
        true
    }

    fn observe(&self, result: Result<(), String>) {
        match result {
            Ok(()) => {
                if self.failing.swap(false, Ordering::AcqRel) {
                    tracing::info!("desktop notifications work again");
                }
            }
            Err(e) => {
                if self.failing.swap(true, Ordering::AcqRel) {
                    tracing::debug!("desktop notification not shown: {e}");
                } else {
                    tracing::warn!(
                        "desktop notifications are unavailable ({e}); perch carries on without them (is a notification daemon running in a D-Bus session?)"
                    );
                }
            }
        }
    }

    /// Whether the last send failed.
    pub fn is_failing(&self) -> bool {
        self.failing.load(Ordering::Acquire)
    }
}

#[cfg(all(unix, not(target_os = "macos")))]
async fn show(summary: &str, body: &str) -> Result<(), String> {
    notify_rust::Notification::new()
        .appname("perch")
        .summary(summary)
        .body(body)
        .show_async()
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[cfg(not(all(unix, not(target_os = "macos"))))]
async fn show(summary: &str, body: &str) -> Result<(), String> {
    let (summary, body) = (summary.to_string(), body.to_string());
    tokio::task::spawn_blocking(move || {
        notify_rust::Notification::new()
            .appname("perch")
            .summary(&summary)
            .body(&body)
            .show()
            .map(|_| ())
            .map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| e.to_string())?
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This machine has no D-Bus session: sending fails quietly, is bounded, and is remembered
    /// (so it is logged once). Where a session bus exists the send may succeed: both are fine.
    #[tokio::test]
    async fn without_a_notification_daemon_a_send_ends_and_says_so() {
        let desktop = Desktop::default();
        assert!(desktop.send("perch test".into(), "body".into()));
        // Wait on the condition (the send ending), never on a duration.
        for _ in 0..600 {
            if !desktop.in_flight.load(Ordering::Acquire) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(
            !desktop.in_flight.load(Ordering::Acquire),
            "the send is bounded by its timeout"
        );
    }
}
