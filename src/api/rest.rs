//! The original system's REST API under `/api/v1/`.

use std::sync::Arc;

use axum::Router;

use crate::service::Hub;

pub fn routes() -> Router<Arc<Hub>> {
    Router::new()
}
