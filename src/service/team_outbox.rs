//! The outbox of a service on a team's PostgreSQL database (issue 16). Its clients' commands
//! (REST, dashboard sessions, CLI commands run in the service) arrive on the hub's outbox
//! channel as on sled; here they are recorded in the database (`outbox::team::carry_out`) under
//! the person who asked, and a refusal is told to this service's clients at once. Everything
//! else (claimed, sent, failed, ...) comes back through the change feed (`leadership.rs`), from
//! whichever service's leader sent it.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::hub::{Hub, ServiceEvent};
use crate::outbox::OutboxCommand;

/// Takes the hub's outbox commands until the hub stops (or every sender is gone).
pub async fn take_commands(hub: Arc<Hub>, mut commands: mpsc::Receiver<OutboxCommand>) {
    loop {
        let command = tokio::select! {
            command = commands.recv() => match command {
                Some(command) => command,
                None => return,
            },
            _ = hub.stopped() => return,
        };
        let person = hub.asked_by(&command);
        if let Some(refusal) = crate::outbox::team::carry_out(&hub.store, command, person).await {
            hub.publish(ServiceEvent::Outbox(refusal));
        }
    }
}
