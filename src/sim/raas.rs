//! The simulated Raas API.

use axum::Router;

use super::SimRef;

/// Everything the simulated Raas API holds.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct RaasState {}

pub fn routes() -> Router<SimRef> {
    Router::new()
}
