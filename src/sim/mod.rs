//! The embedded simulator: one axum server speaking CSP, VMC, RaaS, Cloud Director and
//! vSphere as documented in `../shared/api/`, with time compression, fault injection and an
//! admin API under `/_sim/`.
//!
//! It shares no wire types or protocol code with `crate::providers`: it is a second,
//! independent reading of the vendor documents. Each API lives in its own module, holding its
//! own part of [`SimState`] and its own routes.

pub mod admin;
pub mod csp;
pub mod raas;
pub mod vcd;
pub mod vmc;
pub mod vsphere;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use tokio::sync::Mutex;

/// How a simulator is started.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Address to listen on; port 0 picks a free one.
    pub listen: SocketAddr,
    /// Simulated seconds per real second (240: a 2-hour SDDC create takes 30 s).
    pub time_scale: f64,
    /// Lifetime of issued access tokens, in simulated seconds.
    pub token_ttl: Duration,
    /// Seed of every random choice (fault injection), so runs are reproducible.
    pub seed: u64,
    /// Load state from here at start and save it after each mutation.
    pub state_file: Option<PathBuf>,
    /// Objects to preload (YAML or JSON) when there is no state file yet.
    pub seed_data: Option<PathBuf>,
    /// Restrict accepted credentials to those listed in this file.
    pub credentials_file: Option<PathBuf>,
    /// Faults active from the start (changeable later through `/_sim/faults`).
    pub faults: admin::Faults,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            time_scale: 240.0,
            token_ttl: Duration::from_secs(1800),
            seed: 0,
            state_file: None,
            seed_data: None,
            credentials_file: None,
            faults: admin::Faults::default(),
        }
    }
}

/// Everything the simulator holds, persisted as one JSON document.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct SimState {
    pub csp: csp::CspState,
    pub vmc: vmc::VmcState,
    pub raas: raas::RaasState,
    pub vcd: vcd::VcdState,
    pub vsphere: vsphere::VsphereState,
}

/// Simulated time: starts at the real wall clock and runs `time_scale` times faster.
#[derive(Debug)]
pub struct SimClock {
    started: Instant,
    started_wall: chrono::DateTime<chrono::Utc>,
    scale: f64,
}

impl SimClock {
    pub fn new(scale: f64) -> Self {
        Self {
            started: Instant::now(),
            started_wall: chrono::Utc::now(),
            scale: if scale > 0.0 { scale } else { 1.0 },
        }
    }

    /// The current simulated time.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        let elapsed = self.started.elapsed().mul_f64(self.scale);
        self.started_wall + chrono::Duration::from_std(elapsed).unwrap_or_default()
    }

    pub fn scale(&self) -> f64 {
        self.scale
    }
}

/// The shared simulator, handed to every handler as axum state.
pub struct Sim {
    pub config: SimConfig,
    pub clock: SimClock,
    pub state: Mutex<SimState>,
    pub admin: admin::AdminState,
}

pub type SimRef = Arc<Sim>;

/// A running simulator.
pub struct SimHandle {
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub base_url: String,
    pub addr: SocketAddr,
    pub sim: SimRef,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl SimHandle {
    /// Stops serving and waits for the server task to end.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("cannot listen on {addr}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot load simulator state from `{path}`: {message}")]
    LoadState { path: PathBuf, message: String },
    #[error("cannot load seed data from `{path}`: {message}")]
    SeedData { path: PathBuf, message: String },
    #[error("cannot load credentials from `{path}`: {message}")]
    Credentials { path: PathBuf, message: String },
}

/// All routes of all APIs on one router.
pub fn router(sim: SimRef) -> Router {
    Router::new()
        .merge(csp::routes())
        .merge(vmc::routes())
        .merge(raas::routes())
        .merge(vcd::routes())
        .merge(vsphere::routes())
        .merge(admin::routes())
        .layer(axum::middleware::from_fn_with_state(
            sim.clone(),
            admin::fault_layer,
        ))
        .with_state(sim)
}

/// Starts a simulator on `config.listen` in the current tokio runtime.
pub async fn start(config: SimConfig) -> Result<SimHandle, SimError> {
    let state = admin::initial_state(&config)?;
    let sim = Arc::new(Sim {
        clock: SimClock::new(config.time_scale),
        admin: admin::AdminState::new(&config)?,
        state: Mutex::new(state),
        config,
    });
    let listener = tokio::net::TcpListener::bind(sim.config.listen)
        .await
        .map_err(|source| SimError::Listen {
            addr: sim.config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| SimError::Listen {
        addr: sim.config.listen,
        source,
    })?;
    let app = router(sim.clone());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = rx.await;
            })
            .await;
    });
    Ok(SimHandle {
        base_url: format!("http://{addr}"),
        addr,
        sim,
        shutdown: Some(tx),
        task: Some(task),
    })
}
