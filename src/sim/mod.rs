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
use std::sync::atomic::{AtomicI64, Ordering};
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
    /// Choices for the behaviours the documents mark unverified.
    pub options: SimOptions,
    /// Systems also served on an address of their own, as real deployments are separate
    /// hosts (`sim serve --listen-vcd`, `--listen-vsphere`).
    pub own_ports: Vec<(OwnPort, SocketAddr)>,
}

/// A system the simulator can serve on an address of its own besides the shared one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OwnPort {
    /// Cloud Director; only there does it serve `/api/session` (pyvcloud's current session),
    /// which on the shared address is vSphere's.
    Vcd,
    /// vSphere Automation.
    Vsphere,
}

impl OwnPort {
    /// The system's name in `sim serve`'s output (`vcd listening on URL`).
    pub fn name(self) -> &'static str {
        match self {
            OwnPort::Vcd => "vcd",
            OwnPort::Vsphere => "vsphere",
        }
    }

    fn api(self) -> admin::Api {
        match self {
            OwnPort::Vcd => admin::Api::Vcd,
            OwnPort::Vsphere => admin::Api::Vsphere,
        }
    }

    fn routes(self) -> Router<SimRef> {
        match self {
            OwnPort::Vcd => vcd::own_port_routes(),
            OwnPort::Vsphere => vsphere::routes(),
        }
    }
}

/// How the simulator answers where `../shared/api/` marks a fact unverified; every default is
/// the documented choice (`README.md`, "Unverified facts").
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimOptions {
    /// VMC status for a second mutation on a busy SDDC: 400 (default) or 409.
    pub vmc_concurrent_update_status: u16,
    /// VMC answers GET on a deleted SDDC with 404 instead of 200 `DELETED`.
    pub vmc_deleted_sddc_not_found: bool,
    /// VMC rejects query parameters it does not know (catches casing bugs).
    pub vmc_strict_query: bool,
    /// VMC answers a repeated create with the same `sddc_id` with the original task (202)
    /// instead of 400.
    pub vmc_duplicate_sddc_id_returns_task: bool,
    /// VMC 401 responses carry an `ErrorResponse` body (default) or no body.
    pub vmc_unauthenticated_body: bool,
    /// Most VMs a vSphere `/rest` list may return before answering 400
    /// `unable_to_allocate_resource`.
    pub vsphere_list_cap: usize,
    /// vSphere `/api` list cap.
    pub vsphere_api_list_cap: usize,
    /// vSphere error kind for a CPU/memory change the VM's state or hot-add settings forbid.
    pub vsphere_hardware_error_kind: String,
    /// vSphere error kind for reset/suspend on a VM that is not powered on.
    pub vsphere_power_error_kind: String,
    /// How RaaS answers `GET /account/login`: `serve` (default) hands out the XSRF token,
    /// `refuse` answers 401, as a server that takes only the login POST does (cloud logins
    /// never need the GET: seed `000`).
    pub raas_login_get: raas::LoginGet,
    /// Which vSphere REST flavours are served: `both` (default), `api` (vSphere 8 and later
    /// once `/rest` is removed) or `rest` (vSphere 6.5 to 7.0 U1, before `/api`).
    pub vsphere_flavors: vsphere::ServedFlavors,
    /// Simulated seconds a guest OS takes to shut down after `guest/power?action=shutdown`.
    pub vsphere_guest_shutdown_secs: u64,
}

impl SimOptions {
    /// Checks the values a handler relies on.
    pub fn validate(&self) -> Result<(), String> {
        if ![400, 409].contains(&self.vmc_concurrent_update_status) {
            return Err(format!(
                "`vmc_concurrent_update_status` must be 400 or 409, not {}",
                self.vmc_concurrent_update_status
            ));
        }
        for (name, kind) in [
            (
                "vsphere_hardware_error_kind",
                &self.vsphere_hardware_error_kind,
            ),
            ("vsphere_power_error_kind", &self.vsphere_power_error_kind),
        ] {
            if !VSPHERE_400_KINDS.contains(&kind.as_str()) {
                return Err(format!(
                    "`{name}` must be one of {}, not `{kind}`",
                    VSPHERE_400_KINDS.join(", ")
                ));
            }
        }
        Ok(())
    }
}

/// vSphere error kinds answered with 400 (`vsphere.md` §6).
const VSPHERE_400_KINDS: &[&str] = &[
    "already_in_desired_state",
    "invalid_argument",
    "resource_busy",
    "resource_inaccessible",
    "unsupported",
    "unable_to_allocate_resource",
    "not_allowed_in_current_state",
    "already_exists",
];

impl Default for SimOptions {
    fn default() -> Self {
        Self {
            vmc_concurrent_update_status: 400,
            vmc_deleted_sddc_not_found: false,
            vmc_strict_query: false,
            vmc_duplicate_sddc_id_returns_task: false,
            vmc_unauthenticated_body: true,
            vsphere_list_cap: 1000,
            vsphere_api_list_cap: 4000,
            vsphere_hardware_error_kind: "invalid_argument".to_owned(),
            vsphere_power_error_kind: "not_allowed_in_current_state".to_owned(),
            raas_login_get: raas::LoginGet::Serve,
            vsphere_flavors: vsphere::ServedFlavors::Both,
            vsphere_guest_shutdown_secs: 60,
        }
    }
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
            options: SimOptions::default(),
            own_ports: Vec::new(),
        }
    }
}

/// Everything the simulator holds, persisted as one JSON document.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct SimState {
    /// Simulated time when the state was last saved; a restarted simulator resumes from it so
    /// that tasks never run backwards.
    pub saved_at: Option<chrono::DateTime<chrono::Utc>>,
    pub csp: csp::CspState,
    pub vmc: vmc::VmcState,
    pub raas: raas::RaasState,
    pub vcd: vcd::VcdState,
    pub vsphere: vsphere::VsphereState,
}

/// Simulated time: starts at the real wall clock (or where a saved state left off, if later)
/// and runs `time_scale` times faster; `/_sim/clock/advance` jumps it forward.
#[derive(Debug)]
pub struct SimClock {
    started: Instant,
    started_wall: chrono::DateTime<chrono::Utc>,
    scale: f64,
    /// Simulated milliseconds added through [`SimClock::advance`].
    skipped_ms: AtomicI64,
}

impl SimClock {
    pub fn new(scale: f64) -> Self {
        Self::starting_at(chrono::Utc::now(), scale)
    }

    /// A clock whose simulated time begins at `start`.
    pub fn starting_at(start: chrono::DateTime<chrono::Utc>, scale: f64) -> Self {
        Self {
            started: Instant::now(),
            started_wall: start,
            scale: if scale > 0.0 && scale.is_finite() {
                scale
            } else {
                1.0
            },
            skipped_ms: AtomicI64::new(0),
        }
    }

    /// The current simulated time.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        let elapsed = self.started.elapsed().mul_f64(self.scale);
        let skipped = chrono::Duration::milliseconds(self.skipped_ms.load(Ordering::Relaxed));
        self.started_wall + chrono::Duration::from_std(elapsed).unwrap_or_default() + skipped
    }

    /// Moves simulated time forward by `by` (tests use it instead of sleeping).
    pub fn advance(&self, by: Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX / 4);
        self.skipped_ms.fetch_add(ms, Ordering::Relaxed);
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
    /// The URL of each system served on an address of its own, in [`SimConfig::own_ports`]
    /// order.
    pub own_urls: Vec<(OwnPort, String)>,
    pub sim: SimRef,
    shutdown: tokio::sync::watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl SimHandle {
    /// The URL `system` is served on: its own address when it has one, else the shared one.
    pub fn url_of(&self, system: OwnPort) -> &str {
        self.own_urls
            .iter()
            .find(|(s, _)| *s == system)
            .map_or(&self.base_url, |(_, url)| url)
    }

    /// Stops serving and waits for the server tasks to end.
    pub async fn stop(mut self) {
        let _ = self.shutdown.send(true);
        for task in std::mem::take(&mut self.tasks) {
            let _ = task.await;
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
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
    #[error("invalid simulator options: {message}")]
    Options { message: String },
    #[error(
        "the simulator state file `{path}` is in use by another simulator ({holder}); wait for it to finish, or give this one another state file"
    )]
    StateInUse { path: PathBuf, holder: String },
    #[error("cannot lock the simulator state file `{path}`")]
    LockState {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot save simulator state to `{path}`")]
    SaveState {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The lock `<state file>.lock` of a running simulator; the file is removed when the
/// simulator stops (and the lock released by the OS if the process dies).
struct StateLock {
    path: PathBuf,
    _file: std::fs::File,
}

impl Drop for StateLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Takes the lock `<state file>.lock` without waiting, writing this process's id into it.
fn lock_state_file(state: &std::path::Path) -> Result<StateLock, SimError> {
    use std::io::{Read, Write};
    use std::os::unix::fs::MetadataExt;
    let mut name = state.as_os_str().to_owned();
    name.push(".lock");
    let path = PathBuf::from(name);
    let io = |source| SimError::LockState {
        path: state.to_path_buf(),
        source,
    };
    loop {
        let mut file = match crate::local_file::try_lock(&path).map_err(io)? {
            Ok(file) => file,
            Err(mut file) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                return Err(SimError::StateInUse {
                    path: state.to_path_buf(),
                    holder: if holder.is_empty() {
                        "holder unknown".to_string()
                    } else {
                        holder.to_string()
                    },
                });
            }
        };
        // A simulator that stopped meanwhile removed the file this one locked: lock anew.
        let locked = file.metadata().map_err(io)?;
        let current = std::fs::metadata(&path).ok();
        if current.is_none_or(|m| (m.dev(), m.ino()) != (locked.dev(), locked.ino())) {
            continue;
        }
        file.set_len(0).map_err(io)?;
        write!(file, "pid {}", std::process::id()).map_err(io)?;
        return Ok(StateLock { path, _file: file });
    }
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
        .method_not_allowed_fallback(admin::method_not_allowed)
        .fallback(admin::unknown_path)
        // vSphere and Cloud Director share `/api/session` on this port: vSphere's front door
        // takes the requests that are its own (by their headers), its JSON-RPC endpoint
        // (`POST /api`) and the REST flavours it does not serve, and passes everything else
        // on unchanged.
        .layer(axum::middleware::from_fn_with_state(
            sim.clone(),
            vsphere::front_door,
        ))
        .layer(axum::middleware::from_fn_with_state(
            sim.clone(),
            admin::fault_layer,
        ))
        .with_state(sim)
}

/// The routes of one system alone, for its own address: no path is shared with another
/// system there, and every request counts (and is faulted) as that system's.
pub fn own_port_router(sim: SimRef, system: OwnPort) -> Router {
    system
        .routes()
        .method_not_allowed_fallback(admin::method_not_allowed)
        .fallback(admin::unknown_path)
        .layer(axum::middleware::from_fn_with_state(
            (sim.clone(), system.api()),
            admin::own_port_fault_layer,
        ))
        .with_state(sim)
}

/// Starts a simulator on `config.listen` (and each of `config.own_ports`) in the current
/// tokio runtime.
pub async fn start(config: SimConfig) -> Result<SimHandle, SimError> {
    config
        .options
        .validate()
        .map_err(|message| SimError::Options { message })?;
    // Held while the server runs: a second simulator on the same state file would save over
    // this one's objects.
    let state_lock = config
        .state_file
        .as_deref()
        .map(lock_state_file)
        .transpose()?;
    let state = admin::initial_state(&config)?;
    let start_at = match state.saved_at {
        Some(saved) if saved > chrono::Utc::now() => saved,
        _ => chrono::Utc::now(),
    };
    let sim = Arc::new(Sim {
        clock: SimClock::starting_at(start_at, config.time_scale),
        admin: admin::AdminState::new(&config)?,
        state: Mutex::new(state),
        config,
    });
    if sim.config.state_file.is_some() {
        let mut state = sim.state.lock().await;
        sim.persist(&mut state);
    }
    // Every address is bound before any is served, so a failure leaves nothing running.
    let (listener, addr) = bind(sim.config.listen).await?;
    let mut own = Vec::new();
    for &(system, wanted) in &sim.config.own_ports {
        let (listener, addr) = bind(wanted).await?;
        own.push((system, listener, addr));
    }
    let (shutdown, stopped) = tokio::sync::watch::channel(false);
    let main = serve(listener, router(sim.clone()), stopped.clone());
    let mut tasks = vec![tokio::spawn(async move {
        // The state file stays locked until the server has stopped.
        let _state_lock = state_lock;
        let _ = main.await;
    })];
    let mut own_urls = Vec::new();
    for (system, listener, own_addr) in own {
        tasks.push(serve(
            listener,
            own_port_router(sim.clone(), system),
            stopped.clone(),
        ));
        own_urls.push((system, format!("http://{own_addr}")));
    }
    Ok(SimHandle {
        base_url: format!("http://{addr}"),
        addr,
        own_urls,
        sim,
        shutdown,
        tasks,
    })
}

async fn bind(addr: SocketAddr) -> Result<(tokio::net::TcpListener, SocketAddr), SimError> {
    let listen = |source| SimError::Listen { addr, source };
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(listen)?;
    let bound = listener.local_addr().map_err(listen)?;
    Ok((listener, bound))
}

fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            })
            .await;
    })
}
