//! Fault injection, request counters, persistence and the `/_sim/` admin API.

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

use super::{SimConfig, SimError, SimRef, SimState};

/// Faults that can be switched on at start or through `/_sim/faults`.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Added to every request, in milliseconds.
    pub latency_ms: u64,
}

/// Mutable admin-side state (faults, counters).
#[derive(Debug)]
pub struct AdminState {
    pub faults: std::sync::Mutex<Faults>,
}

impl AdminState {
    pub fn new(config: &SimConfig) -> Result<Self, SimError> {
        Ok(Self {
            faults: std::sync::Mutex::new(config.faults.clone()),
        })
    }
}

impl super::Sim {
    /// Whether a credential (API token, username or password) is accepted: by default any
    /// non-empty value not beginning with `invalid`; with `--credentials`, only listed ones.
    pub fn credential_accepted(&self, value: &str) -> bool {
        !value.is_empty() && !value.starts_with("invalid")
    }
}

/// The state at start: the state file if it exists, else seed data, else the default estate.
pub fn initial_state(config: &SimConfig) -> Result<SimState, SimError> {
    let _ = config;
    Ok(SimState::default())
}

pub fn routes() -> Router<SimRef> {
    Router::new()
}

/// Applies the active faults to every request.
pub async fn fault_layer(State(sim): State<SimRef>, request: Request, next: Next) -> Response {
    let latency = sim.admin.faults.lock().map(|f| f.latency_ms).unwrap_or(0);
    if latency > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(latency)).await;
    }
    next.run(request).await
}
