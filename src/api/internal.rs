//! `perch service status` and `perch service stop`.

use std::sync::Arc;

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::SyncStatus;
use crate::service::Hub;

pub fn routes() -> Router<Arc<Hub>> {
    Router::new()
        .route("/internal/v1/status", get(status))
        .route("/internal/v1/stop", post(stop))
}

/// `perch service status --json`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct ServiceStatus {
    pub pid: u32,
    pub uptime_secs: u64,
    pub socket: String,
    pub api_listen: Option<String>,
    pub accounts: Vec<StatusAccount>,
    pub last_poll_at: Option<DateTime<Utc>>,
    pub data_dir: String,
    /// "leader" (this service polls, holds the X stream and sends) or "follower" (it serves
    /// the API and dashboards while another leads). A service on sled is always its store's
    /// one leader; on PostgreSQL the election decides (issue 16, `store/pg/leader.rs`).
    #[serde(default = "leader_role")]
    pub role: String,
    /// The leader's machine and process, when known.
    #[serde(default)]
    pub leader: Option<LeaderStatus>,
    /// Which store the service runs on: "sled" (embedded) or "postgresql".
    #[serde(default = "sled_store")]
    pub store: String,
    /// Why a follower on PostgreSQL cannot take part in the election (the database does not
    /// answer, say): it neither syncs nor can take over until this clears.
    #[serde(default)]
    pub election_problem: Option<String>,
}

/// Which service leads.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct LeaderStatus {
    pub host: String,
    pub pid: u32,
}

fn leader_role() -> String {
    "leader".to_string()
}

fn sled_store() -> String {
    "sled".to_string()
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct StatusAccount {
    pub id: String,
    pub username: String,
    pub is_active: bool,
    pub sync_status: SyncStatus,
    pub last_synced_at: Option<DateTime<Utc>>,
}

pub async fn status(State(hub): State<Arc<Hub>>) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    let store = hub.store.clone();
    let accounts = match tokio::task::spawn_blocking(move || store.accounts()).await {
        Ok(Ok(accounts)) => accounts,
        Ok(Err(e)) => {
            return super::error(axum::http::StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
        }
        Err(e) => {
            return super::error(axum::http::StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
        }
    };
    let info = &hub.info;
    let (role, leader, store_kind, election_problem) = match &hub.election {
        // One process holds a sled store (its lock file), so it is the leader, here.
        None => (
            "leader",
            Some(LeaderStatus {
                host: crate::store::pg::leader::host_name(),
                pid: info.pid,
            }),
            "sled",
            None,
        ),
        Some(election) => {
            use crate::store::pg::leader::Role;
            let role = election.borrow().clone();
            let (leader, problem) = match &role {
                Role::Leader { .. } => (
                    Some(LeaderStatus {
                        host: crate::store::pg::leader::host_name(),
                        pid: info.pid,
                    }),
                    None,
                ),
                Role::Follower { leader, problem } => (
                    leader.as_ref().map(|l| LeaderStatus {
                        host: l.host.clone(),
                        pid: l.pid,
                    }),
                    problem.clone(),
                ),
            };
            (role.as_str(), leader, "postgresql", problem)
        }
    };
    Json(ServiceStatus {
        pid: info.pid,
        uptime_secs: (Utc::now() - info.started_at).num_seconds().max(0) as u64,
        socket: info.socket.display().to_string(),
        api_listen: info.api_listen.map(|a| a.to_string()),
        accounts: accounts
            .into_iter()
            .map(|a| StatusAccount {
                id: a.id.to_string(),
                username: a.handle(),
                is_active: a.is_active,
                sync_status: a.sync_status,
                last_synced_at: a.last_synced_at,
            })
            .collect(),
        last_poll_at: hub.last_poll_at(),
        data_dir: info.data_dir.display().to_string(),
        role: role.to_string(),
        leader,
        store: store_kind.to_string(),
        election_problem,
    })
    .into_response()
}

async fn stop(State(hub): State<Arc<Hub>>) -> Json<serde_json::Value> {
    tracing::info!("stop requested by a client");
    hub.request_stop();
    Json(serde_json::json!({"stopping": true, "pid": hub.info.pid}))
}
