//! The simulated Cloud Director API-token endpoints.

use axum::Router;

use super::SimRef;

/// Everything the simulated Cloud Director holds.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct VcdState {}

pub fn routes() -> Router<SimRef> {
    Router::new()
}
