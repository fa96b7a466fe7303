//! The simulated Csp API.

use axum::Router;

use super::SimRef;

/// Everything the simulated Csp API holds.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct CspState {}

pub fn routes() -> Router<SimRef> {
    Router::new()
}
