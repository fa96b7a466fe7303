//! The simulated Vsphere API.

use axum::Router;

use super::SimRef;

/// Everything the simulated Vsphere API holds.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct VsphereState {}

pub fn routes() -> Router<SimRef> {
    Router::new()
}
