//! The simulated Vcd API.

use axum::Router;

use super::SimRef;

/// Everything the simulated Vcd API holds.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct VcdState {}

impl VcdState {
    /// The state a simulator starts with when it has no state file and no seed data.
    pub fn default_estate() -> Self {
        Self::default()
    }
}

pub fn routes() -> Router<SimRef> {
    Router::new()
}
