//! The simulated Vcd API.

use axum::Router;

use super::SimRef;

/// Everything the simulated Vcd API holds.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct VcdState {}

pub fn routes() -> Router<SimRef> {
    Router::new()
}
