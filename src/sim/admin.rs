//! Fault injection, request counters, persistence, seed data, credentials and the `/_sim/`
//! admin API.
//!
//! Owns everything that is about the simulator rather than a vendor API: which API a path
//! belongs to, the seeded fault dice, the counters, loading and atomically saving
//! [`SimState`]. Each API module may add its own admin hooks under `/_sim/<api>/…`; requests
//! under `/_sim/` are never faulted or counted.
//!
//! | endpoint | what |
//! |---|---|
//! | `GET`/`PUT /_sim/faults` | the active [`Faults`] (PUT replaces them; omitted fields default) |
//! | `GET`/`PUT /_sim/options` | the answers to unverified points ([`super::SimOptions`]) |
//! | `GET /_sim/counters`, `POST /_sim/counters/reset` | requests per API: `{"csp","vmc","raas","vcd","vsphere","total"}` |
//! | `GET /_sim/state` | the whole [`SimState`] as JSON |
//! | `GET /_sim/clock`, `POST /_sim/clock/advance {"seconds": N}` | simulated time; jump it forward |
//! | `POST /_sim/csp/revoke-api-token`, `GET /_sim/csp/org` | CSP hooks (`csp.rs`) |
//! | `POST /_sim/vsphere/expire-sessions` | vSphere hook (`vsphere.rs`) |

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::json;

use super::{SimConfig, SimError, SimOptions, SimRef, SimState, csp, raas, vcd, vmc, vsphere};

/// How a dropped response reaches the client.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DropMode {
    /// 504 Gateway Timeout, as a load balancer in front of the service would answer.
    #[default]
    GatewayTimeout,
    /// The connection breaks before the body arrives.
    Reset,
}

/// Faults that can be switched on at start or through `/_sim/faults` (PUT replaces them all;
/// fields left out take their defaults).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Added to every API request, in milliseconds.
    pub latency_ms: u64,
    /// Share of API requests (0.0–1.0) answered 429 with `Retry-After`.
    pub rate_429: f64,
    /// `Retry-After` seconds sent with an injected 429.
    pub retry_after_secs: u64,
    /// Share of API requests (0.0–1.0) answered 503.
    pub rate_503: f64,
    /// Lifetime of newly issued access tokens in simulated seconds; `None` = `--token-ttl`.
    pub token_ttl_secs: Option<u64>,
    /// SDDCs (by name or id) whose running and future tasks end FAILED.
    pub fail_sddc_tasks: BTreeSet<String>,
    /// SDDCs (by name or id) whose running and future tasks end CANCELED.
    pub cancel_sddc_tasks: BTreeSet<String>,
    /// vSphere VMs (by name or id) that answer power and hardware changes with `resource_busy`.
    pub busy_vms: BTreeSet<String>,
    /// The next N mutating requests are carried out, then their response is dropped.
    pub drop_next_mutations: u32,
    /// Share of mutating requests (0.0–1.0) carried out and then dropped.
    pub drop_rate: f64,
    /// How a dropped response looks to the client.
    pub drop_mode: DropMode,
    /// Cloud Director token revokes (`DELETE /cloudapi/1.0.0/tokens/{id}`) wait, unanswered,
    /// until this is switched off: a test can stop a client between its steps.
    pub hold_token_revokes: bool,
    /// Cloud Director revoke tasks (`GET /api/task/{id}`, after a 202 revoke) answer
    /// `running` until this is switched off.
    pub hold_revoke_tasks: bool,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            latency_ms: 0,
            rate_429: 0.0,
            retry_after_secs: 1,
            rate_503: 0.0,
            token_ttl_secs: None,
            fail_sddc_tasks: BTreeSet::new(),
            cancel_sddc_tasks: BTreeSet::new(),
            busy_vms: BTreeSet::new(),
            drop_next_mutations: 0,
            drop_rate: 0.0,
            drop_mode: DropMode::GatewayTimeout,
            hold_token_revokes: false,
            hold_revoke_tasks: false,
        }
    }
}

impl Faults {
    fn validate(&self) -> Result<(), String> {
        for (name, rate) in [
            ("rate_429", self.rate_429),
            ("rate_503", self.rate_503),
            ("drop_rate", self.drop_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!("`{name}` must be between 0 and 1, not {rate}"));
            }
        }
        Ok(())
    }
}

/// The API a request path belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Api {
    Csp,
    Vmc,
    Raas,
    Vcd,
    Vsphere,
    /// A path no simulated API serves (still counted in `total`).
    Unknown,
}

impl Api {
    const ALL: [Api; 6] = [
        Api::Csp,
        Api::Vmc,
        Api::Raas,
        Api::Vcd,
        Api::Vsphere,
        Api::Unknown,
    ];

    fn index(self) -> usize {
        match self {
            Api::Csp => 0,
            Api::Vmc => 1,
            Api::Raas => 2,
            Api::Vcd => 3,
            Api::Vsphere => 4,
            Api::Unknown => 5,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Api::Csp => "csp",
            Api::Vmc => "vmc",
            Api::Raas => "raas",
            Api::Vcd => "vcd",
            Api::Vsphere => "vsphere",
            Api::Unknown => "unknown",
        }
    }
}

/// Which API serves `path`; `None` for the admin API under `/_sim/`.
///
/// vSphere and Cloud Director both live under `/api/`: vSphere owns `/api/session` and
/// `/api/vcenter/…` (`vsphere.md` §1), Cloud Director everything else there (`/api/sessions`,
/// `/api/login`, `/api/org`, … in `vcd.md`).
pub fn classify(path: &str) -> Option<Api> {
    let starts = |prefix: &str| {
        path == prefix
            || path
                .strip_prefix(prefix)
                .is_some_and(|rest| rest.starts_with('/'))
    };
    if starts("/_sim") {
        return None;
    }
    let api = if starts("/csp") {
        Api::Csp
    } else if starts("/vmc") {
        Api::Vmc
    } else if starts("/rpc") || starts("/raas") || starts("/account") {
        Api::Raas
    } else if starts("/rest") || starts("/api/session") || starts("/api/vcenter") || path == "/api"
    {
        Api::Vsphere
    } else if starts("/oauth") || starts("/cloudapi") || starts("/api") {
        Api::Vcd
    } else {
        Api::Unknown
    };
    Some(api)
}

/// Requests that log in rather than change anything are never "committed then dropped".
fn is_mutation(api: Api, method: &Method, path: &str) -> bool {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return false;
    }
    match api {
        Api::Csp | Api::Unknown => false,
        Api::Raas => !path.contains("/account/login"),
        Api::Vsphere => {
            !(path.starts_with("/rest/com/vmware/cis/session") || path == "/api/session")
        }
        Api::Vcd => {
            !((path.starts_with("/oauth/") && path.ends_with("/token"))
                || path == "/api/sessions"
                || path == "/api/login"
                || path == "/cloudapi/1.0.0/sessions"
                || path.starts_with("/cloudapi/1.0.0/sessions/"))
        }
        Api::Vmc => true,
    }
}

/// Mutable admin-side state (faults, dice, counters, accepted credentials). Its `Debug`
/// never shows the accepted credentials.
pub struct AdminState {
    pub faults: std::sync::Mutex<Faults>,
    /// Starts as `SimConfig::options`; changeable through `/_sim/options`.
    pub options: std::sync::Mutex<SimOptions>,
    rng: std::sync::Mutex<StdRng>,
    counters: [AtomicU64; 6],
    /// `Some` when `--credentials` restricts the accepted values.
    credentials: Option<BTreeSet<String>>,
    /// SHA-256 of the state last written to `--state` (without `saved_at`), so unchanged
    /// state is not rewritten.
    saved_digest: std::sync::Mutex<Option<Vec<u8>>>,
}

impl std::fmt::Debug for AdminState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminState")
            .field("faults", &self.faults)
            .field("options", &self.options)
            .field("counters", &self.counters)
            .field(
                "credentials",
                &self.credentials.as_ref().map(|listed| listed.len()),
            )
            .finish_non_exhaustive()
    }
}

impl AdminState {
    pub fn new(config: &SimConfig) -> Result<Self, SimError> {
        let credentials = match &config.credentials_file {
            Some(path) => Some(load_credentials(path)?),
            None => None,
        };
        Ok(Self {
            faults: std::sync::Mutex::new(config.faults.clone()),
            options: std::sync::Mutex::new(config.options.clone()),
            rng: std::sync::Mutex::new(StdRng::seed_from_u64(config.seed)),
            counters: Default::default(),
            credentials,
            saved_digest: std::sync::Mutex::new(None),
        })
    }

    /// A copy of the active faults.
    pub fn faults(&self) -> Faults {
        locked(&self.faults).clone()
    }

    fn roll(&self, probability: f64) -> bool {
        if probability <= 0.0 {
            return false;
        }
        locked(&self.rng).random_bool(probability.min(1.0))
    }

    fn count(&self, api: Api) {
        self.counters[api.index()].fetch_add(1, Ordering::Relaxed);
    }

    fn counters_json(&self) -> serde_json::Value {
        let mut map = serde_json::Map::new();
        let mut total = 0;
        for api in Api::ALL {
            let n = self.counters[api.index()].load(Ordering::Relaxed);
            total += n;
            if api != Api::Unknown {
                map.insert(api.name().to_owned(), n.into());
            }
        }
        map.insert("total".to_owned(), total.into());
        serde_json::Value::Object(map)
    }

    fn reset_counters(&self) {
        for counter in &self.counters {
            counter.store(0, Ordering::Relaxed);
        }
    }
}

/// Locks `mutex`, carrying on with its value if a panicking thread poisoned it: every value
/// kept behind these locks is replaced or updated in one step, so it is never half-written.
fn locked<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Reads a `--credentials` file: one accepted credential (API token, username or password)
/// per line; blank lines and lines starting with `#` are ignored.
fn load_credentials(path: &Path) -> Result<BTreeSet<String>, SimError> {
    let text = std::fs::read_to_string(path).map_err(|err| SimError::Credentials {
        path: path.to_owned(),
        message: err.to_string(),
    })?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(str::to_owned)
        .collect())
}

impl super::Sim {
    /// Whether a credential (API token, username or password) is accepted: by default any
    /// non-empty value not beginning with `invalid`; with `--credentials`, only listed ones.
    pub fn credential_accepted(&self, value: &str) -> bool {
        match &self.admin.credentials {
            Some(listed) => listed.contains(value),
            None => !value.is_empty() && !value.starts_with("invalid"),
        }
    }

    /// The current answers to the unverified points.
    pub fn options(&self) -> SimOptions {
        locked(&self.admin.options).clone()
    }

    /// Lifetime of an access token issued now.
    pub fn token_ttl(&self) -> Duration {
        self.admin
            .faults()
            .token_ttl_secs
            .map(Duration::from_secs)
            .unwrap_or(self.config.token_ttl)
    }

    /// Saves `state` to the `--state` file, if any and if it changed since the last save:
    /// written to a temporary file beside it, then renamed over it, so a killed simulator
    /// never leaves a half-written file. Every handler that changes `state` calls this before
    /// answering.
    pub fn persist(&self, state: &mut SimState) {
        self.save(state, false);
    }

    /// Saves even when only the simulated time moved (`/_sim/clock/advance`).
    fn persist_clock(&self, state: &mut SimState) {
        self.save(state, true);
    }

    fn save(&self, state: &mut SimState, force: bool) {
        use sha2::Digest;
        let Some(path) = &self.config.state_file else {
            return;
        };
        let previous = state.saved_at.take();
        let digest = serde_json::to_vec(&*state)
            .map(|bytes| sha2::Sha256::digest(&bytes).to_vec())
            .ok();
        state.saved_at = previous;
        let mut last = locked(&self.admin.saved_digest);
        if !force && digest.is_some() && *last == digest {
            return;
        }
        state.saved_at = Some(self.clock.now());
        match save_state(path, state) {
            Ok(()) => *last = digest,
            Err(err) => tracing::warn!(error = %err, "simulator state not saved"),
        }
    }
}

fn save_state(path: &Path, state: &SimState) -> Result<(), SimError> {
    let io = |source| SimError::SaveState {
        path: path.to_owned(),
        source,
    };
    let bytes = serde_json::to_vec(state).map_err(|err| io(std::io::Error::other(err)))?;
    crate::local_file::write_atomic(path, &bytes, 0o666, true).map_err(io)
}

/// Seed data (`--seed-data`, YAML or JSON): a partial state document. Each top-level section
/// present replaces that API's default estate; sections left out keep their defaults.
///
/// ```yaml
/// csp:     { org_id: <uuid> }                   # org every API token belongs to
/// vmc:     { orgs: [{id, name, display_name}],
///            sddcs: [{name, id?, org_id?, region?, provider?, num_hosts?, sddc_type?,
///                     deployment_type?, size?, host_instance_type?, vpc_cidr?,
///                     sddc_state?}] }           # READY unless sddc_state says otherwise
/// vsphere: { vms: [{name, id?, power_state?, cpu_count?, cores_per_socket?,
///                   memory_size_MiB?, cpu_hot_add_enabled?, cpu_hot_remove_enabled?,
///                   memory_hot_add_enabled?, tools_running?}] }
/// raas:    <the RaaS state document>
/// vcd:     <the Cloud Director state document>
/// ```
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SeedData {
    pub csp: Option<csp::CspSeed>,
    pub vmc: Option<vmc::VmcSeed>,
    pub vsphere: Option<vsphere::VsphereSeed>,
    pub raas: Option<raas::RaasState>,
    pub vcd: Option<vcd::VcdState>,
}

/// The small realistic estate a newcomer sees: one org, a few VMs, each API's defaults.
pub fn default_estate() -> SimState {
    SimState {
        saved_at: None,
        csp: csp::CspState::default_estate(),
        vmc: vmc::VmcState::default_estate(),
        raas: raas::RaasState::default_estate(),
        vcd: vcd::VcdState::default_estate(),
        vsphere: vsphere::VsphereState::default_estate(),
    }
}

/// The state at start: the state file if it exists, else seed data, else the default estate.
pub fn initial_state(config: &SimConfig) -> Result<SimState, SimError> {
    if let Some(path) = &config.state_file
        && path.exists()
    {
        let load = |message: String| SimError::LoadState {
            path: path.clone(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| load(e.to_string()))?;
        return serde_json::from_str(&text).map_err(|e| load(e.to_string()));
    }
    let mut state = default_estate();
    if let Some(path) = &config.seed_data {
        let seed = load_seed_data(path)?;
        apply_seed(&mut state, seed, chrono::Utc::now()).map_err(|message| SimError::SeedData {
            path: path.clone(),
            message,
        })?;
    }
    Ok(state)
}

fn load_seed_data(path: &Path) -> Result<SeedData, SimError> {
    let fail = |message: String| SimError::SeedData {
        path: path.to_owned(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
    let is_json = path
        .extension()
        .is_some_and(|ext| ext.eq_ignore_ascii_case("json"));
    if is_json {
        serde_json::from_str(&text).map_err(|e| fail(e.to_string()))
    } else {
        serde_saphyr::from_str(&text).map_err(|e| fail(e.to_string()))
    }
}

fn apply_seed(
    state: &mut SimState,
    seed: SeedData,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), String> {
    if let Some(csp_seed) = seed.csp {
        state.csp = csp::CspState::from_seed(csp_seed);
    }
    if let Some(vmc_seed) = seed.vmc {
        state.vmc = vmc::VmcState::from_seed(vmc_seed, &state.csp.org_id, now)?;
    }
    if let Some(vsphere_seed) = seed.vsphere {
        state.vsphere = vsphere::VsphereState::from_seed(vsphere_seed)?;
    }
    if let Some(raas_state) = seed.raas {
        state.raas = raas_state;
    }
    if let Some(vcd_state) = seed.vcd {
        state.vcd = vcd_state;
    }
    Ok(())
}

pub fn routes() -> Router<SimRef> {
    Router::new()
        .route("/_sim/faults", get(get_faults).put(put_faults))
        .route("/_sim/options", get(get_options).put(put_options))
        .route("/_sim/counters", get(get_counters))
        .route("/_sim/counters/reset", post(reset_counters))
        .route("/_sim/state", get(get_state))
        .route("/_sim/clock", get(get_clock))
        .route("/_sim/clock/advance", post(advance_clock))
}

async fn get_faults(State(sim): State<SimRef>) -> Json<Faults> {
    Json(sim.admin.faults())
}

/// `PUT /_sim/faults`: replaces the faults (fields left out take their defaults).
async fn put_faults(State(sim): State<SimRef>, body: Bytes) -> Response {
    replace_setting(&sim.admin.faults, &body, Faults::validate)
}

async fn get_options(State(sim): State<SimRef>) -> Json<SimOptions> {
    Json(sim.options())
}

/// `PUT /_sim/options`: replaces the options (fields left out take their defaults).
async fn put_options(State(sim): State<SimRef>, body: Bytes) -> Response {
    replace_setting(&sim.admin.options, &body, SimOptions::validate)
}

/// Parses a whole setting from `body`, checks it with `validate`, stores it in `slot` and
/// answers with what was stored; 400 if it does not parse or validate.
fn replace_setting<T>(
    slot: &std::sync::Mutex<T>,
    body: &[u8],
    validate: impl FnOnce(&T) -> Result<(), String>,
) -> Response
where
    T: serde::de::DeserializeOwned + serde::Serialize + Clone,
{
    let value: T = match parse_admin_body(body) {
        Ok(value) => value,
        Err(response) => return response,
    };
    if let Err(message) = validate(&value) {
        return admin_error(StatusCode::BAD_REQUEST, &message);
    }
    *locked(slot) = value.clone();
    Json(value).into_response()
}

async fn get_counters(State(sim): State<SimRef>) -> Json<serde_json::Value> {
    Json(sim.admin.counters_json())
}

async fn reset_counters(State(sim): State<SimRef>) -> Json<serde_json::Value> {
    sim.admin.reset_counters();
    Json(sim.admin.counters_json())
}

async fn get_state(State(sim): State<SimRef>) -> Response {
    let state = sim.state.lock().await;
    match serde_json::to_value(&*state) {
        Ok(value) => Json(value).into_response(),
        Err(err) => admin_error(StatusCode::INTERNAL_SERVER_ERROR, &err.to_string()),
    }
}

async fn get_clock(State(sim): State<SimRef>) -> Json<serde_json::Value> {
    Json(json!({ "now": sim.clock.now(), "time_scale": sim.clock.scale() }))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct AdvanceRequest {
    seconds: u64,
}

/// `POST /_sim/clock/advance {"seconds": N}`: jumps simulated time forward.
async fn advance_clock(State(sim): State<SimRef>, body: Bytes) -> Response {
    let request: AdvanceRequest = match parse_admin_body(&body) {
        Ok(request) => request,
        Err(response) => return response,
    };
    sim.clock.advance(Duration::from_secs(request.seconds));
    let mut state = sim.state.lock().await;
    sim.persist_clock(&mut state);
    drop(state);
    Json(json!({ "now": sim.clock.now() })).into_response()
}

fn admin_error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

/// The JSON body of an admin request; 400 `{"error": …}` if it does not parse.
#[allow(
    clippy::result_large_err,
    reason = "handlers short-circuit with the finished HTTP response; it is built once per request"
)]
pub(super) fn parse_admin_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Response> {
    serde_json::from_slice(body)
        .map_err(|err| admin_error(StatusCode::BAD_REQUEST, &err.to_string()))
}

/// An error in the shape of the API the path belongs to.
fn api_error(api: Api, status: StatusCode, path: &str, message: &str) -> Response {
    match api {
        Api::Csp => csp::error_response(status, message),
        Api::Vmc => vmc::error_response(status, path, message),
        Api::Vsphere => vsphere::error_for_path(path, status, message),
        Api::Raas => (status, Json(json!({ "errors": [message] }))).into_response(),
        Api::Vcd => (
            status,
            Json(json!({
                "minorErrorCode": status.canonical_reason().unwrap_or("ERROR").to_uppercase().replace(' ', "_"),
                "message": message,
                "stackTrace": null,
            })),
        )
            .into_response(),
        Api::Unknown => (status, Json(json!({ "error": message }))).into_response(),
    }
}

/// An error in the shape of the API the request's path belongs to.
fn error_for_request(request: &Request, status: StatusCode, message: &str) -> Response {
    let path = request.uri().path();
    let api = classify(path).unwrap_or(Api::Unknown);
    api_error(api, status, path, message)
}

/// Fallback for paths no API serves: 404 in the shape of the API the prefix belongs to.
pub async fn unknown_path(request: Request) -> Response {
    error_for_request(
        &request,
        StatusCode::NOT_FOUND,
        "the requested resource could not be found",
    )
}

/// Wrong method on a known path: 405 in the shape of the API the path belongs to.
pub async fn method_not_allowed(request: Request) -> Response {
    let message = format!(
        "method `{}` is not allowed on this resource",
        request.method()
    );
    error_for_request(&request, StatusCode::METHOD_NOT_ALLOWED, &message)
}

/// Counts every API request and applies the active faults to it.
pub async fn fault_layer(State(sim): State<SimRef>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    match classify(&path) {
        Some(api) => apply_faults(sim, api, path, request, next).await,
        None => next.run(request).await,
    }
}

/// [`fault_layer`] for an address that serves one API only (`sim serve --listen-vcd`): every
/// request there but the admin API's belongs to `api`, whatever its path.
pub async fn own_port_fault_layer(
    State((sim, api)): State<(SimRef, Api)>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path().to_owned();
    match classify(&path) {
        Some(_) => apply_faults(sim, api, path, request, next).await,
        None => next.run(request).await,
    }
}

async fn apply_faults(
    sim: SimRef,
    api: Api,
    path: String,
    request: Request,
    next: Next,
) -> Response {
    sim.admin.count(api);
    let faults = sim.admin.faults();
    if faults.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(faults.latency_ms)).await;
    }
    if sim.admin.roll(faults.rate_429) {
        let mut response = api_error(
            api,
            StatusCode::TOO_MANY_REQUESTS,
            &path,
            "the user has sent too many requests",
        );
        response.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(faults.retry_after_secs),
        );
        return response;
    }
    if sim.admin.roll(faults.rate_503) {
        return api_error(
            api,
            StatusCode::SERVICE_UNAVAILABLE,
            &path,
            "the service is temporarily unavailable",
        );
    }
    if !is_mutation(api, request.method(), &path) {
        return next.run(request).await;
    }
    let drop = take_drop(&sim, faults.drop_rate);
    let response = next.run(request).await;
    if !drop {
        return response;
    }
    match faults.drop_mode {
        DropMode::GatewayTimeout => {
            (StatusCode::GATEWAY_TIMEOUT, "upstream request timeout").into_response()
        }
        DropMode::Reset => {
            let broken = futures::stream::once(async {
                Err::<Bytes, std::io::Error>(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "response dropped by fault injection",
                ))
            });
            Response::new(Body::from_stream(broken))
        }
    }
}

/// Whether this mutation's response is dropped: first the countdown, then the rate.
fn take_drop(sim: &SimRef, rate: f64) -> bool {
    let counted = match sim.admin.faults.lock() {
        Ok(mut faults) if faults.drop_next_mutations > 0 => {
            faults.drop_next_mutations -= 1;
            true
        }
        _ => false,
    };
    counted || sim.admin.roll(rate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_classified_by_api() {
        assert_eq!(classify("/_sim/faults"), None);
        assert_eq!(classify("/_sim/raas/rotate-xsrf"), None);
        assert_eq!(
            classify("/csp/gateway/am/api/auth/api-tokens/authorize"),
            Some(Api::Csp)
        );
        assert_eq!(classify("/vmc/api/orgs"), Some(Api::Vmc));
        assert_eq!(classify("/rpc"), Some(Api::Raas));
        assert_eq!(classify("/raas/rpc"), Some(Api::Raas));
        assert_eq!(classify("/account/login/"), Some(Api::Raas));
        assert_eq!(classify("/rest/com/vmware/cis/session"), Some(Api::Vsphere));
        assert_eq!(classify("/api/session"), Some(Api::Vsphere));
        assert_eq!(classify("/api/vcenter/vm/vm-1/power"), Some(Api::Vsphere));
        assert_eq!(classify("/api/sessions"), Some(Api::Vcd));
        assert_eq!(classify("/api/org"), Some(Api::Vcd));
        assert_eq!(classify("/oauth/provider/token"), Some(Api::Vcd));
        assert_eq!(classify("/cloudapi/1.0.0/tokens"), Some(Api::Vcd));
        assert_eq!(classify("/rpcx"), Some(Api::Unknown));
        assert_eq!(classify("/"), Some(Api::Unknown));
    }

    #[test]
    fn logins_are_not_mutations() {
        assert!(!is_mutation(
            Api::Vsphere,
            &Method::POST,
            "/rest/com/vmware/cis/session"
        ));
        assert!(!is_mutation(Api::Raas, &Method::POST, "/account/login/"));
        assert!(!is_mutation(
            Api::Vcd,
            &Method::POST,
            "/oauth/tenant/acme/token"
        ));
        assert!(is_mutation(
            Api::Vmc,
            &Method::POST,
            "/vmc/api/orgs/o/sddcs"
        ));
        assert!(is_mutation(Api::Raas, &Method::POST, "/rpc"));
        assert!(!is_mutation(
            Api::Vmc,
            &Method::GET,
            "/vmc/api/orgs/o/sddcs"
        ));
    }

    #[tokio::test]
    async fn unchanged_state_is_not_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let config = SimConfig {
            state_file: Some(path.clone()),
            ..SimConfig::default()
        };
        let sim = super::super::Sim {
            clock: super::super::SimClock::new(1.0),
            admin: AdminState::new(&config).unwrap(),
            state: tokio::sync::Mutex::new(default_estate()),
            config,
        };
        let mut state = sim.state.lock().await;
        sim.persist(&mut state);
        assert!(path.exists());
        std::fs::remove_file(&path).unwrap();
        sim.persist(&mut state);
        assert!(!path.exists(), "nothing changed, nothing written");
        state.vsphere.vms.clear();
        sim.persist(&mut state);
        let saved: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(saved["vsphere"]["vms"], json!({}));
    }

    #[test]
    fn faults_reject_rates_outside_zero_to_one() {
        let faults = Faults {
            rate_429: 1.5,
            ..Faults::default()
        };
        assert!(faults.validate().is_err());
        assert!(Faults::default().validate().is_ok());
    }
}
