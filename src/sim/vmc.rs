//! The simulated Vmc API.

use axum::Router;

use super::SimRef;

/// Everything the simulated Vmc API holds.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct VmcState {}

pub fn routes() -> Router<SimRef> {
    Router::new()
}
