//! The simulated vSphere Automation REST API (`vsphere.md`): sessions, VM list with filters,
//! VM get, power operations and CPU/memory reads and updates, in both the `/rest` flavour
//! (values wrapped in `{"value": …}`, specs in `{"spec": …}`, 200 without body) and the `/api`
//! flavour (bare JSON, 201/204).
//!
//! Both flavours are served unless `SimOptions::vsphere_flavors` (`sim serve --vsphere-flavor`)
//! limits them to one; the other then answers 404, as a vCenter without it does. `/api`
//! refuses `/rest`-shaped requests (`{"spec": …}` bodies, `filter.*` query keys) with 400.
//!
//! Guest shutdown (`…/guest/power?action=shutdown`) needs VMware Tools running in the VM
//! (`VmRecord::tools_running`) and takes `SimOptions::vsphere_guest_shutdown_secs` of
//! simulated time before the VM reads `POWERED_OFF`.
//!
//! `POST /api` is vAPI JSON-RPC (`rpc.rs`), the transport of the vSphere SDK's default client,
//! for the session and VM services; it shares the VM operations below with the REST flavours.
//!
//! `/api/session` is shared with Cloud Director's legacy API on the single port:
//! [`front_door`] claims the requests that are vSphere's (see [`is_cloud_director_request`]).
//!
//! Admin hook: `POST /_sim/vsphere/expire-sessions` ends every session (clients must log in
//! again). `Faults::busy_vms` makes power and hardware changes answer `resource_busy`.

#![allow(
    clippy::result_large_err,
    reason = "handlers short-circuit with the finished HTTP response; it is built once per request"
)]

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tokio::sync::MutexGuard;

use super::{SimRef, SimState};

mod rpc;

/// Session header and cookie name.
pub const SESSION_HEADER: &str = "vmware-api-session-id";
const POWER_STATES: &[&str] = &["POWERED_OFF", "POWERED_ON", "SUSPENDED"];
const MAX_CPU_COUNT: i64 = 768;
const MAX_MEMORY_MIB: i64 = 24 * 1024 * 1024;
const MEMORY_HOT_ADD_INCREMENT_MIB: i64 = 128;
/// Largest JSON-RPC request body read.
const RPC_BODY_LIMIT: usize = 1024 * 1024;

/// One virtual machine.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct VmRecord {
    pub vm: String,
    pub name: String,
    pub power_state: String,
    pub cpu_count: i64,
    pub cores_per_socket: i64,
    pub cpu_hot_add_enabled: bool,
    pub cpu_hot_remove_enabled: bool,
    #[serde(rename = "memory_size_MiB")]
    pub memory_size_mib: i64,
    pub memory_hot_add_enabled: bool,
    pub folder: String,
    pub datacenter: String,
    pub host: String,
    pub cluster: String,
    pub resource_pool: String,
    pub guest_os: String,
    /// VMware Tools runs in the guest: guest shutdown works only then.
    #[serde(default = "default_true")]
    pub tools_running: bool,
    /// A guest shutdown is under way and ends (the VM reads `POWERED_OFF`) at this simulated
    /// time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shutdown_until: Option<DateTime<Utc>>,
    /// How the VM last went off: `guest_shutdown` or `power_stop` (a hard power-off).
    /// Simulator bookkeeping, shown only in `GET /_sim/state`: vCenter reports both as a
    /// clean power-off (`Power.Info.clean_power_off` flags crashes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_power_off: Option<String>,
}

fn default_true() -> bool {
    true
}

impl VmRecord {
    /// Finishes a guest shutdown whose time has come; returns whether the VM changed.
    fn settle(&mut self, now: DateTime<Utc>) -> bool {
        match self.shutdown_until {
            Some(until) if until <= now => {
                self.shutdown_until = None;
                self.power_state = "POWERED_OFF".to_owned();
                self.last_power_off = Some("guest_shutdown".to_owned());
                true
            }
            _ => false,
        }
    }
}

/// A logged-in session.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct SessionRecord {
    pub user: String,
    pub created_time: DateTime<Utc>,
    pub last_accessed_time: DateTime<Utc>,
}

/// Everything the simulated vSphere API holds. Its `Debug` never shows session ids.
#[derive(Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct VsphereState {
    /// VMs by id (`vm-NN`).
    pub vms: BTreeMap<String, VmRecord>,
    /// Sessions by id.
    pub sessions: BTreeMap<String, SessionRecord>,
}

impl std::fmt::Debug for VsphereState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VsphereState")
            .field("vms", &self.vms)
            .field("sessions", &self.sessions.len())
            .finish()
    }
}

/// The `vsphere` section of seed data.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VsphereSeed {
    pub vms: Vec<VmSeed>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VmSeed {
    pub name: String,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub power_state: Option<String>,
    #[serde(default)]
    pub cpu_count: Option<i64>,
    #[serde(default)]
    pub cores_per_socket: Option<i64>,
    #[serde(default, rename = "memory_size_MiB")]
    pub memory_size_mib: Option<i64>,
    #[serde(default)]
    pub cpu_hot_add_enabled: bool,
    #[serde(default)]
    pub cpu_hot_remove_enabled: bool,
    #[serde(default)]
    pub memory_hot_add_enabled: bool,
    /// VMware Tools runs in the guest (default `true`); without it guest shutdown is refused.
    #[serde(default)]
    pub tools_running: Option<bool>,
}

fn vm(id: &str, name: &str, power_state: &str, cpu_count: i64, memory_mib: i64) -> VmRecord {
    VmRecord {
        vm: id.to_owned(),
        name: name.to_owned(),
        power_state: power_state.to_owned(),
        cpu_count,
        cores_per_socket: 1,
        cpu_hot_add_enabled: false,
        cpu_hot_remove_enabled: false,
        memory_size_mib: memory_mib,
        memory_hot_add_enabled: false,
        folder: "group-v4".to_owned(),
        datacenter: "datacenter-3".to_owned(),
        host: "host-12".to_owned(),
        cluster: "domain-c8".to_owned(),
        resource_pool: "resgroup-9".to_owned(),
        guest_os: "UBUNTU_64".to_owned(),
        tools_running: true,
        shutdown_until: None,
        last_power_off: None,
    }
}

impl VsphereState {
    /// `web-01`, `web-02` (on) and `db-01` (off), hot-add off everywhere.
    pub fn default_estate() -> Self {
        let mut state = Self::default();
        for record in [
            vm("vm-1001", "web-01", "POWERED_ON", 2, 4096),
            vm("vm-1002", "web-02", "POWERED_ON", 2, 4096),
            vm("vm-1003", "db-01", "POWERED_OFF", 4, 8192),
        ] {
            state.vms.insert(record.vm.clone(), record);
        }
        state
    }

    pub fn from_seed(seed: VsphereSeed) -> Result<Self, String> {
        let mut state = Self::default();
        for (index, s) in seed.vms.into_iter().enumerate() {
            let id = s.id.unwrap_or_else(|| format!("vm-{}", 1001 + index));
            let power_state = s.power_state.unwrap_or_else(|| "POWERED_OFF".to_owned());
            if !POWER_STATES.contains(&power_state.as_str()) {
                return Err(format!(
                    "VM `{}`: unknown power_state `{power_state}`",
                    s.name
                ));
            }
            let mut record = vm(
                &id,
                &s.name,
                &power_state,
                s.cpu_count.unwrap_or(1),
                s.memory_size_mib.unwrap_or(2048),
            );
            record.cores_per_socket = s.cores_per_socket.unwrap_or(1).max(1);
            record.cpu_hot_add_enabled = s.cpu_hot_add_enabled;
            record.cpu_hot_remove_enabled = s.cpu_hot_remove_enabled;
            record.memory_hot_add_enabled = s.memory_hot_add_enabled;
            record.tools_running = s.tools_running.unwrap_or(true);
            if state.vms.insert(id.clone(), record).is_some() {
                return Err(format!("VM id `{id}` appears twice"));
            }
        }
        Ok(state)
    }
}

/// `/rest` or `/api`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flavor {
    Rest,
    Api,
}

impl Flavor {
    fn of(path: &str) -> Flavor {
        if path.starts_with("/api") {
            Flavor::Api
        } else {
            Flavor::Rest
        }
    }

    /// A successful response carrying `value`.
    fn value(self, value: Value) -> Response {
        match self {
            Flavor::Rest => Json(json!({ "value": value })).into_response(),
            Flavor::Api => Json(value).into_response(),
        }
    }

    /// A successful response without a body: 200 on `/rest`, 204 on `/api`.
    fn done(self) -> Response {
        match self {
            Flavor::Rest => StatusCode::OK.into_response(),
            Flavor::Api => StatusCode::NO_CONTENT.into_response(),
        }
    }

    /// A vAPI error of `kind` (`vsphere.md` §1, §6).
    fn error(self, kind: &str, message: &str) -> Response {
        let status = match kind {
            "unauthenticated" => StatusCode::UNAUTHORIZED,
            "unauthorized" => StatusCode::FORBIDDEN,
            "not_found" => StatusCode::NOT_FOUND,
            "error" => StatusCode::INTERNAL_SERVER_ERROR,
            "service_unavailable" => StatusCode::SERVICE_UNAVAILABLE,
            "timed_out" => StatusCode::GATEWAY_TIMEOUT,
            _ => StatusCode::BAD_REQUEST,
        };
        let messages = json!([{
            "id": format!("vapi.std.errors.{kind}"),
            "default_message": message,
            "args": [],
        }]);
        let body = match self {
            Flavor::Rest => json!({
                "type": format!("com.vmware.vapi.std.errors.{kind}"),
                "value": { "messages": messages },
            }),
            Flavor::Api => json!({
                "error_type": kind.to_uppercase(),
                "messages": messages,
            }),
        };
        (status, Json(body)).into_response()
    }
}

/// An error for an injected fault or an unknown path, in the flavour of `path`.
pub fn error_for_path(path: &str, status: StatusCode, message: &str) -> Response {
    let kind = match status.as_u16() {
        401 => "unauthenticated",
        403 => "unauthorized",
        404 => "not_found",
        429 | 503 => "service_unavailable",
        504 => "timed_out",
        500 => "error",
        _ => "invalid_argument",
    };
    let mut response = Flavor::of(path).error(kind, message);
    *response.status_mut() = status;
    response
}

/// The vSphere REST flavours a simulator serves.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServedFlavors {
    /// `/rest` and `/api` (vSphere 7.0 U2 and later).
    #[default]
    Both,
    /// `/api` only: `/rest` answers 404.
    Api,
    /// `/rest` only: `/api` answers 404.
    Rest,
}

impl ServedFlavors {
    fn serves(self, flavor: Flavor) -> bool {
        !matches!(
            (self, flavor),
            (ServedFlavors::Api, Flavor::Rest) | (ServedFlavors::Rest, Flavor::Api)
        )
    }
}

pub fn routes() -> Router<SimRef> {
    // `/api/session` is not routed here: [`front_door`] serves it, since Cloud Director's
    // legacy API shares the path.
    Router::new()
        .route(
            "/rest/com/vmware/cis/session",
            post(rest_session_post)
                .get(session_get)
                .delete(session_delete),
        )
        .route("/rest/vcenter/vm", get(list_vms))
        .route("/api/vcenter/vm", get(list_vms))
        .route("/rest/vcenter/vm/{vm}", read_vm(vm_info))
        .route("/api/vcenter/vm/{vm}", read_vm(vm_info))
        .route("/rest/vcenter/vm/{vm}/power", read_vm(power_info))
        .route(
            "/api/vcenter/vm/{vm}/power",
            read_vm(power_info).post(api_power),
        )
        .route("/rest/vcenter/vm/{vm}/power/{op}", post(rest_power))
        .route(
            "/rest/vcenter/vm/{vm}/guest/power",
            read_vm(guest_power_info).post(guest_power),
        )
        .route(
            "/api/vcenter/vm/{vm}/guest/power",
            read_vm(guest_power_info).post(guest_power),
        )
        .route(
            "/rest/vcenter/vm/{vm}/hardware/cpu",
            read_vm(|vm, _| cpu_info(vm)).patch(patch_hardware::<CpuUpdate>),
        )
        .route(
            "/api/vcenter/vm/{vm}/hardware/cpu",
            read_vm(|vm, _| cpu_info(vm)).patch(patch_hardware::<CpuUpdate>),
        )
        .route(
            "/rest/vcenter/vm/{vm}/hardware/memory",
            read_vm(|vm, _| memory_info(vm)).patch(patch_hardware::<MemoryUpdate>),
        )
        .route(
            "/api/vcenter/vm/{vm}/hardware/memory",
            read_vm(|vm, _| memory_info(vm)).patch(patch_hardware::<MemoryUpdate>),
        )
        .route("/_sim/vsphere/expire-sessions", post(expire_sessions))
}

/// Whether a request to a path both APIs use is Cloud Director's: it carries Cloud
/// Director's session header, a bearer token, or asks for its versioned media types
/// (`application/*+xml;version=…`, `vcd.md`). vSphere clients send Basic credentials or
/// `vmware-api-session-id` and accept `application/json` (`vsphere.md` §2; the SDK's
/// `rest_connector.py` sends `Accept: application/json`).
pub fn is_cloud_director_request(headers: &HeaderMap) -> bool {
    let accept = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("+xml") || v.contains("version=") || v.contains("vnd.vmware.vcloud"));
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("bearer "));
    accept
        || bearer
        || headers.contains_key("x-vcloud-authorization")
        || headers.contains_key("x-vmware-vcloud-access-token")
}

/// The flavour a vSphere path belongs to, or `None` for a path that is not vSphere's.
fn flavor_of_path(path: &str) -> Option<Flavor> {
    if path == "/rest" || path.starts_with("/rest/") {
        Some(Flavor::Rest)
    } else if path == "/api/session" || path.starts_with("/api/vcenter/") || path == "/api/vcenter"
    {
        Some(Flavor::Api)
    } else {
        None
    }
}

/// Middleware in front of every route: serves vAPI JSON-RPC at `POST /api` and vSphere's
/// `/api/session`, and answers 404 for a REST flavour the simulator is told not to serve.
/// Everything else (Cloud Director's requests to `/api/session` among them) passes on
/// unchanged.
pub async fn front_door(
    State(sim): State<SimRef>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let path = request.uri().path();
    // `POST /api` (exactly) is the vAPI JSON-RPC endpoint of the SDK's default client;
    // Cloud Director serves nothing there.
    if path == "/api" && request.method() == axum::http::Method::POST {
        return match axum::body::to_bytes(request.into_body(), RPC_BODY_LIMIT).await {
            Ok(body) => rpc::serve(&sim, &body).await,
            Err(_) => StatusCode::PAYLOAD_TOO_LARGE.into_response(),
        };
    }
    let shared = path == "/api/session";
    if shared && is_cloud_director_request(request.headers()) {
        return next.run(request).await;
    }
    let Some(flavor) = flavor_of_path(path) else {
        return next.run(request).await;
    };
    if !sim.options().vsphere_flavors.serves(flavor) {
        return flavor.error("not_found", "the requested resource could not be found");
    }
    if !shared {
        return next.run(request).await;
    }
    let headers = request.headers().clone();
    match *request.method() {
        axum::http::Method::POST => create_session(&sim, &headers, Flavor::Api).await,
        axum::http::Method::GET => read_session(&sim, &headers, Flavor::Api).await,
        axum::http::Method::DELETE => end_session(&sim, &headers, Flavor::Api).await,
        _ => Flavor::Api
            .error(
                "operation_not_found",
                &format!(
                    "method `{}` is not allowed on /api/session",
                    request.method()
                ),
            )
            .into_response_with(StatusCode::METHOD_NOT_ALLOWED),
    }
}

trait WithStatus {
    fn into_response_with(self, status: StatusCode) -> Response;
}

impl WithStatus for Response {
    fn into_response_with(mut self, status: StatusCode) -> Response {
        *self.status_mut() = status;
        self
    }
}

/// The session id from the header, else from the cookie.
fn presented_session(headers: &HeaderMap) -> Option<String> {
    if let Some(id) = headers.get(SESSION_HEADER).and_then(|v| v.to_str().ok()) {
        return Some(id.to_owned());
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_HEADER)
        .map(|(_, value)| value.to_owned())
}

const UNAUTHENTICATED: &str = "This method requires authentication.";

/// Locks the state and checks the session, touching its last-access time; returns the locked
/// state and the session id.
async fn authenticate<'a>(
    sim: &'a SimRef,
    headers: &HeaderMap,
    flavor: Flavor,
) -> Result<(MutexGuard<'a, SimState>, String), Response> {
    let now = sim.clock.now();
    let mut state = sim.state.lock().await;
    let sessions = &mut state.vsphere.sessions;
    let id = presented_session(headers).filter(|id| sessions.contains_key(id));
    let Some(id) = id else {
        return Err(flavor.error("unauthenticated", UNAUTHENTICATED));
    };
    if let Some(session) = sessions.get_mut(&id) {
        session.last_accessed_time = now;
    }
    Ok((state, id))
}

/// `POST /rest/com/vmware/cis/session`, also `?~action=get` and `?~action=delete`.
async fn rest_session_post(
    State(sim): State<SimRef>,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    match query.get("~action").map(String::as_str) {
        None => create_session(&sim, &headers, Flavor::Rest).await,
        Some("get") => read_session(&sim, &headers, Flavor::Rest).await,
        Some("delete") => end_session(&sim, &headers, Flavor::Rest).await,
        Some(other) => Flavor::Rest.error(
            "invalid_argument",
            &format!("unknown action `{other}` on the session"),
        ),
    }
}

async fn session_get(
    State(sim): State<SimRef>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Response {
    read_session(&sim, &headers, Flavor::of(uri.path())).await
}

async fn session_delete(
    State(sim): State<SimRef>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Response {
    end_session(&sim, &headers, Flavor::of(uri.path())).await
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

async fn create_session(sim: &SimRef, headers: &HeaderMap, flavor: Flavor) -> Response {
    let accepted = basic_credentials(headers).filter(|(user, password)| {
        sim.credential_accepted(user) && sim.credential_accepted(password)
    });
    let Some((user, _)) = accepted else {
        return flavor.error("unauthenticated", "Authentication required.");
    };
    let id = open_session(sim, &user).await;
    let mut response = match flavor {
        Flavor::Rest => Json(json!({ "value": id })).into_response(),
        Flavor::Api => (StatusCode::CREATED, Json(json!(id))).into_response(),
    };
    let header_only = headers
        .get("vmware-use-header-authn")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    if !header_only {
        let cookie_path = match flavor {
            Flavor::Rest => "/rest",
            Flavor::Api => "/api",
        };
        if let Ok(cookie) = HeaderValue::from_str(&format!(
            "{SESSION_HEADER}={id}; Path={cookie_path}; HttpOnly"
        )) {
            response.headers_mut().insert(header::SET_COOKIE, cookie);
        }
    }
    response
}

/// Records a new session of `user`; returns its id.
async fn open_session(sim: &SimRef, user: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let now = sim.clock.now();
    let mut state = sim.state.lock().await;
    state.vsphere.sessions.insert(
        id.clone(),
        SessionRecord {
            user: user.to_owned(),
            created_time: now,
            last_accessed_time: now,
        },
    );
    sim.persist(&mut state);
    id
}

async fn read_session(sim: &SimRef, headers: &HeaderMap, flavor: Flavor) -> Response {
    let (state, id) = match authenticate(sim, headers, flavor).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let Some(session) = state.vsphere.sessions.get(&id) else {
        return flavor.error("unauthenticated", UNAUTHENTICATED);
    };
    flavor.value(json!({
        "user": session.user,
        "created_time": session.created_time,
        "last_accessed_time": session.last_accessed_time,
    }))
}

async fn end_session(sim: &SimRef, headers: &HeaderMap, flavor: Flavor) -> Response {
    let (mut state, id) = match authenticate(sim, headers, flavor).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    state.vsphere.sessions.remove(&id);
    sim.persist(&mut state);
    flavor.done()
}

async fn expire_sessions(State(sim): State<SimRef>) -> Response {
    let mut state = sim.state.lock().await;
    state.vsphere.sessions.clear();
    sim.persist(&mut state);
    StatusCode::NO_CONTENT.into_response()
}

fn summary(vm: &VmRecord) -> Value {
    json!({
        "vm": vm.vm,
        "name": vm.name,
        "power_state": vm.power_state,
        "cpu_count": vm.cpu_count,
        "memory_size_MiB": vm.memory_size_mib,
    })
}

/// `filter.names=a`, `filter.names.1=a` (`/rest`) or `names=a` (`/api`) → (`names`, `a`).
fn filter_key(key: &str, flavor: Flavor) -> Option<&str> {
    let key = match flavor {
        Flavor::Rest => key.strip_prefix("filter.")?,
        Flavor::Api => key,
    };
    let base = match key.rsplit_once('.') {
        Some((base, index)) if index.chars().all(|c| c.is_ascii_digit()) => base,
        _ => key,
    };
    Some(base)
}

async fn list_vms(
    State(sim): State<SimRef>,
    uri: axum::http::Uri,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Response {
    let flavor = Flavor::of(uri.path());
    let mut state = match authenticate(&sim, &headers, flavor).await {
        Ok((state, _)) => state,
        Err(response) => return response,
    };
    let now = sim.clock.now();
    let mut settled = false;
    for vm in state.vsphere.vms.values_mut() {
        settled |= vm.settle(now);
    }
    if settled {
        sim.persist(&mut state);
    }
    let mut filters: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (key, value) in &query {
        // `/api` names its filters without the `/rest` prefix and refuses the prefixed form
        // (its reference lists `names`, `power_states`, …; `filter.names` is not a parameter).
        if flavor == Flavor::Api && key.starts_with("filter.") {
            return flavor.error(
                "invalid_argument",
                &format!("unexpected query parameter `{key}` (the `/rest` form; `/api` takes `names`, `power_states`, …)"),
            );
        }
        if let Some(name) = filter_key(key, flavor) {
            filters.entry(name).or_default().push(value.as_str());
        }
    }
    let cap = match flavor {
        Flavor::Rest => sim.options().vsphere_list_cap,
        Flavor::Api => sim.options().vsphere_api_list_cap,
    };
    let found = match select_vms(&state.vsphere, &filters, cap) {
        Ok(found) => found,
        Err((kind, message)) => return flavor.error(&kind, &message),
    };
    flavor.value(Value::Array(found.into_iter().map(summary).collect()))
}

/// The VMs matching every filter (`VM.FilterSpec`: a VM matches a filter naming a set of
/// values when its value is in the set), or 400 `unable_to_allocate_resource` past `cap`.
fn select_vms<'a>(
    state: &'a VsphereState,
    filters: &BTreeMap<&str, Vec<&str>>,
    cap: usize,
) -> Result<Vec<&'a VmRecord>, Refusal> {
    if let Some(states) = filters.get("power_states")
        && let Some(bad) = states.iter().find(|s| !POWER_STATES.contains(s))
    {
        return Err(refusal(
            "invalid_argument",
            format!("invalid power state `{bad}` in the filter"),
        ));
    }
    let matches = |set: &str, value: &str| {
        filters
            .get(set)
            .is_none_or(|wanted| wanted.contains(&value))
    };
    let found: Vec<&VmRecord> = state
        .vms
        .values()
        .filter(|vm| {
            matches("vms", &vm.vm)
                && matches("names", &vm.name)
                && matches("power_states", &vm.power_state)
                && matches("folders", &vm.folder)
                && matches("datacenters", &vm.datacenter)
                && matches("hosts", &vm.host)
                && matches("clusters", &vm.cluster)
                && matches("resource_pools", &vm.resource_pool)
        })
        .collect();
    if found.len() > cap {
        return Err(refusal(
            "unable_to_allocate_resource",
            format!(
                "the filter matches {} virtual machines, more than the limit of {cap}",
                found.len()
            ),
        ));
    }
    Ok(found)
}

fn vm_not_found(flavor: Flavor, vm: &str) -> Response {
    flavor.error(
        "not_found",
        &format!("virtual machine with identifier `{vm}` does not exist"),
    )
}

fn cpu_info(vm: &VmRecord) -> Value {
    json!({
        "count": vm.cpu_count,
        "cores_per_socket": vm.cores_per_socket,
        "hot_add_enabled": vm.cpu_hot_add_enabled,
        "hot_remove_enabled": vm.cpu_hot_remove_enabled,
    })
}

fn memory_info(vm: &VmRecord) -> Value {
    let mut info = json!({
        "size_MiB": vm.memory_size_mib,
        "hot_add_enabled": vm.memory_hot_add_enabled,
    });
    if vm.memory_hot_add_enabled {
        info["hot_add_increment_size_MiB"] = json!(MEMORY_HOT_ADD_INCREMENT_MIB);
        info["hot_add_limit_MiB"] = json!(MAX_MEMORY_MIB);
    }
    info
}

/// Runs `f` on an authenticated request for an existing VM.
async fn with_vm<F>(sim: &SimRef, headers: &HeaderMap, path: &str, vm: &str, f: F) -> Response
where
    F: FnOnce(&mut VmRecord, Flavor, &SimRef) -> Result<(Response, bool), Response>,
{
    let flavor = Flavor::of(path);
    let mut state = match authenticate(sim, headers, flavor).await {
        Ok((state, _)) => state,
        Err(response) => return response,
    };
    let now = sim.clock.now();
    let Some(record) = state.vsphere.vms.get_mut(vm) else {
        return vm_not_found(flavor, vm);
    };
    let settled = record.settle(now);
    match f(record, flavor, sim) {
        Ok((response, changed)) => {
            if changed || settled {
                sim.persist(&mut state);
            }
            response
        }
        Err(response) => {
            if settled {
                sim.persist(&mut state);
            }
            response
        }
    }
}

/// `GET` on a VM or one of its parts: answers with `view` of the VM.
fn read_vm(view: fn(&VmRecord, Flavor) -> Value) -> MethodRouter<SimRef> {
    get(
        move |State(sim): State<SimRef>,
              uri: axum::http::Uri,
              Path(vm): Path<String>,
              headers: HeaderMap| async move {
            with_vm(&sim, &headers, uri.path(), &vm, |record, flavor, _| {
                Ok((flavor.value(view(record, flavor)), false))
            })
            .await
        },
    )
}

/// A map of `VM.Info` (disks, nics, …): a JSON object on `/api`, a list of
/// `{"key": …, "value": …}` on `/rest` (the vAPI REST encoding of maps).
fn info_map(flavor: Flavor, entries: Vec<(String, Value)>) -> Value {
    match flavor {
        Flavor::Api => Value::Object(entries.into_iter().collect()),
        Flavor::Rest => Value::Array(
            entries
                .into_iter()
                .map(|(key, value)| json!({ "key": key, "value": value }))
                .collect(),
        ),
    }
}

/// `VM.Info` (`GET …/vcenter/vm/{vm}`): every field the vSphere SDK's bindings declare
/// (`com/vmware/vcenter_client.py` `VM.Info`: `guest_OS`, `name`, `identity`, `power_state`,
/// `hardware`, `boot`, `boot_devices`, `cpu`, `memory`, `disks`, `nics`, `cdroms`,
/// `floppies`, `parallel_ports`, `serial_ports`, `sata_adapters`, `scsi_adapters`; the
/// nested shapes from `vm/hardware_client.py`, `vm/hardware/boot_client.py` and
/// `vm/hardware/adapter_client.py`). One SCSI disk, one VMXNET3 NIC, one SATA CD-ROM.
fn vm_info(vm: &VmRecord, flavor: Flavor) -> Value {
    let uuid = |salt: &str| {
        uuid::Uuid::new_v5(
            &uuid::Uuid::NAMESPACE_OID,
            format!("{salt}/{}", vm.vm).as_bytes(),
        )
        .to_string()
    };
    let number: u64 = vm.vm.bytes().filter(u8::is_ascii_digit).fold(0u64, |n, d| {
        n.wrapping_mul(10).wrapping_add(u64::from(d - b'0'))
    });
    let disk = json!({
        "label": "Hard disk 1",
        "type": "SCSI",
        "scsi": {"bus": 0, "unit": 0},
        "backing": {
            "type": "VMDK_FILE",
            "vmdk_file": format!("[datastore1] {0}/{0}.vmdk", vm.name),
        },
        "capacity": 16u64 * 1024 * 1024 * 1024,
    });
    let nic = json!({
        "label": "Network adapter 1",
        "type": "VMXNET3",
        "upt_compatibility_enabled": false,
        "mac_type": "ASSIGNED",
        "mac_address": format!("00:50:56:{:02x}:{:02x}:{:02x}", (number >> 16) & 0xff, (number >> 8) & 0xff, number & 0xff),
        "pci_slot_number": 192,
        "wake_on_lan_enabled": false,
        "backing": {"type": "STANDARD_PORTGROUP", "network": "network-11", "network_name": "VM Network"},
        "state": if vm.power_state == "POWERED_OFF" { "NOT_CONNECTED" } else { "CONNECTED" },
        "start_connected": true,
        "allow_guest_control": true,
    });
    let cdrom = json!({
        "type": "SATA",
        "label": "CD/DVD drive 1",
        "sata": {"bus": 0, "unit": 0},
        "backing": {"type": "CLIENT_DEVICE", "device_access_type": "EMULATION"},
        "state": "NOT_CONNECTED",
        "start_connected": false,
        "allow_guest_control": true,
    });
    json!({
        "name": vm.name,
        "guest_OS": vm.guest_os,
        "identity": {
            "name": vm.name,
            "bios_uuid": uuid("bios"),
            "instance_uuid": uuid("instance"),
        },
        "power_state": vm.power_state,
        "instant_clone_frozen": false,
        "hardware": {"version": "VMX_19", "upgrade_policy": "NEVER", "upgrade_status": "NONE"},
        "boot": {
            "type": "BIOS",
            "delay": 0,
            "retry": false,
            "retry_delay": 10000,
            "enter_setup_mode": false,
        },
        "boot_devices": [{"type": "DISK", "disks": ["2000"]}],
        "cpu": cpu_info(vm),
        "memory": memory_info(vm),
        "disks": info_map(flavor, vec![("2000".to_owned(), disk)]),
        "nics": info_map(flavor, vec![("4000".to_owned(), nic)]),
        "cdroms": info_map(flavor, vec![("16000".to_owned(), cdrom)]),
        "floppies": info_map(flavor, Vec::new()),
        "parallel_ports": info_map(flavor, Vec::new()),
        "serial_ports": info_map(flavor, Vec::new()),
        "sata_adapters": info_map(flavor, vec![("15000".to_owned(), json!({
            "label": "SATA controller 0",
            "type": "AHCI",
            "bus": 0,
            "pci_slot_number": 33,
        }))]),
        "scsi_adapters": info_map(flavor, vec![("1000".to_owned(), json!({
            "label": "SCSI controller 0",
            "type": "PVSCSI",
            "scsi": {"bus": 0, "unit": 7},
            "pci_slot_number": 160,
            "sharing": "NONE",
        }))]),
    })
}

/// `Power.Info` of the guest OS (`vm/guest_client.py`: `state`, `operations_ready`).
fn guest_power_info(vm: &VmRecord, _flavor: Flavor) -> Value {
    let state = match (vm.power_state.as_str(), vm.tools_running) {
        ("POWERED_ON", true) if vm.shutdown_until.is_some() => "SHUTTING_DOWN",
        ("POWERED_ON", true) => "RUNNING",
        ("SUSPENDED", _) => "STANDBY",
        _ => "NOT_RUNNING",
    };
    json!({
        "state": state,
        "operations_ready": state == "RUNNING",
    })
}

fn power_info(vm: &VmRecord, _flavor: Flavor) -> Value {
    let mut info = json!({ "state": vm.power_state });
    if vm.power_state == "POWERED_OFF" {
        info["clean_power_off"] = json!(true);
    }
    info
}

async fn rest_power(
    State(sim): State<SimRef>,
    uri: axum::http::Uri,
    Path((vm, op)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    power(&sim, &headers, uri.path(), &vm, &op).await
}

async fn api_power(
    State(sim): State<SimRef>,
    uri: axum::http::Uri,
    Path(vm): Path<String>,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let Some(action) = query.get("action") else {
        return Flavor::Api.error(
            "invalid_argument",
            "the `action` query parameter is required",
        );
    };
    power(&sim, &headers, uri.path(), &vm, action).await
}

fn busy(sim: &SimRef, record: &VmRecord) -> bool {
    let faults = sim.admin.faults();
    faults.busy_vms.contains(&record.name) || faults.busy_vms.contains(&record.vm)
}

/// A refused operation: the vAPI error kind and its message.
type Refusal = (String, String);

fn refusal(kind: &str, message: String) -> Refusal {
    (kind.to_owned(), message)
}

/// The power state a power operation leads to; `None` for an unknown operation.
fn power_target(op: &str) -> Option<&'static str> {
    match op {
        "start" | "reset" => Some("POWERED_ON"),
        "stop" => Some("POWERED_OFF"),
        "suspend" => Some("SUSPENDED"),
        _ => None,
    }
}

/// `Power.start|stop|suspend|reset` on a VM (`vsphere.md` §4), for every transport.
fn change_power(sim: &SimRef, record: &mut VmRecord, op: &str) -> Result<(), Refusal> {
    let Some(target) = power_target(op) else {
        return Err(refusal(
            "invalid_argument",
            format!("unknown operation `{op}`"),
        ));
    };
    if busy(sim, record) {
        return Err(refusal(
            "resource_busy",
            format!(
                "virtual machine `{}` is busy with another operation",
                record.vm
            ),
        ));
    }
    let current = record.power_state.as_str();
    let needs_on = matches!(op, "suspend" | "reset");
    if op != "reset" && current == target {
        return Err(refusal(
            "already_in_desired_state",
            format!("virtual machine `{}` is already {current}", record.vm),
        ));
    }
    if needs_on && current != "POWERED_ON" {
        return Err(refusal(
            &sim.options().vsphere_power_error_kind,
            format!(
                "virtual machine `{}` is {current}; {op} needs it powered on",
                record.vm
            ),
        ));
    }
    record.power_state = target.to_owned();
    // A hard stop, reset or suspend ends a guest shutdown under way.
    record.shutdown_until = None;
    if target == "POWERED_OFF" {
        record.last_power_off = Some("power_stop".to_owned());
    }
    Ok(())
}

async fn power(sim: &SimRef, headers: &HeaderMap, path: &str, vm: &str, op: &str) -> Response {
    let op = op.to_owned();
    with_vm(sim, headers, path, vm, move |record, flavor, sim| {
        if power_target(&op).is_none() {
            return Err(match flavor {
                Flavor::Rest => flavor.error("not_found", &format!("unknown operation `{op}`")),
                Flavor::Api => flavor.error("invalid_argument", &format!("unknown action `{op}`")),
            });
        }
        change_power(sim, record, &op).map_err(|(kind, message)| flavor.error(&kind, &message))?;
        Ok((flavor.done(), true))
    })
    .await
}

/// `POST …/vcenter/vm/{vm}/guest/power?action=shutdown|reboot|standby` (both flavours take
/// the action as a query parameter; `vm/guest_client.py` `Power`). The request returns at
/// once; a shutdown completes after `vsphere_guest_shutdown_secs` of simulated time. Errors
/// as the bindings document them: `service_unavailable` when VMware Tools is not running,
/// `already_in_desired_state` when the VM is not powered on, `not_allowed_in_current_state`
/// when it is suspended, `resource_busy` when it is busy.
async fn guest_power(
    State(sim): State<SimRef>,
    uri: axum::http::Uri,
    Path(vm): Path<String>,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let action = query.get("action").cloned().unwrap_or_default();
    with_vm(
        &sim,
        &headers,
        uri.path(),
        &vm,
        move |record, flavor, sim| {
            let changed = change_guest_power(sim, record, &action)
                .map_err(|(kind, message)| flavor.error(&kind, &message))?;
            Ok((flavor.done(), changed))
        },
    )
    .await
}

/// `guest.Power.shutdown|reboot|standby`, for every transport; returns whether the VM
/// changed.
fn change_guest_power(sim: &SimRef, record: &mut VmRecord, action: &str) -> Result<bool, Refusal> {
    if !matches!(action, "shutdown" | "reboot" | "standby") {
        return Err(refusal(
            "invalid_argument",
            format!("unknown guest power action `{action}` (expected shutdown, reboot or standby)"),
        ));
    }
    match record.power_state.as_str() {
        "POWERED_OFF" => {
            return Err(refusal(
                "already_in_desired_state",
                format!("virtual machine `{}` is not powered on", record.vm),
            ));
        }
        "SUSPENDED" => {
            return Err(refusal(
                "not_allowed_in_current_state",
                format!("virtual machine `{}` is suspended", record.vm),
            ));
        }
        _ => {}
    }
    if busy(sim, record) {
        return Err(refusal(
            "resource_busy",
            format!(
                "virtual machine `{}` is busy with another operation",
                record.vm
            ),
        ));
    }
    if !record.tools_running {
        return Err(refusal(
            "service_unavailable",
            format!(
                "VMware Tools is not running in virtual machine `{}`",
                record.vm
            ),
        ));
    }
    match action {
        "shutdown" if record.shutdown_until.is_none() => {
            let secs =
                i64::try_from(sim.options().vsphere_guest_shutdown_secs).unwrap_or(i64::MAX / 4);
            record.shutdown_until = Some(sim.clock.now() + chrono::Duration::seconds(secs));
            Ok(true)
        }
        "standby" => {
            record.power_state = "SUSPENDED".to_owned();
            record.shutdown_until = None;
            Ok(true)
        }
        // A reboot leaves the VM on; a second shutdown keeps the first one's timing.
        _ => Ok(false),
    }
}

/// `Cpu.UpdateSpec` (`vm/hardware_client.py`). Unknown fields are refused, as the vAPI
/// endpoints refuse them: a `/rest`-shaped `{"spec": …}` sent to `/api` gets 400.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
struct CpuUpdate {
    count: Option<i64>,
    cores_per_socket: Option<i64>,
    hot_add_enabled: Option<bool>,
    hot_remove_enabled: Option<bool>,
}

/// `Memory.UpdateSpec` (`vm/hardware_client.py`); unknown fields refused as for [`CpuUpdate`].
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
struct MemoryUpdate {
    #[serde(rename = "size_MiB")]
    size_mib: Option<i64>,
    hot_add_enabled: Option<bool>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Wrapped<T> {
    spec: T,
}

/// The update spec: `{"spec": …}` on `/rest`, bare on `/api`.
fn parse_spec<T: serde::de::DeserializeOwned>(body: &[u8], flavor: Flavor) -> Result<T, Response> {
    let parsed = match flavor {
        Flavor::Rest => serde_json::from_slice::<Wrapped<T>>(body).map(|w| w.spec),
        Flavor::Api => serde_json::from_slice::<T>(body),
    };
    parsed.map_err(|err| flavor.error("invalid_argument", &format!("invalid update spec: {err}")))
}

/// A CPU or memory update spec (`vsphere.md` §5).
trait HardwareUpdate: serde::de::DeserializeOwned + Send + 'static {
    /// Checks the update against the VM; `rule_kind` is the error kind for changes the VM's
    /// power state or hot-plug settings forbid. The error is (kind, message).
    fn check(&self, record: &VmRecord, rule_kind: &str) -> Result<(), (String, String)>;

    /// Applies a checked update; returns whether anything changed.
    fn commit(&self, record: &mut VmRecord) -> bool;
}

/// `PATCH` of a VM's CPU or memory: the spec must parse and pass its rules, and the VM must
/// not be busy.
async fn patch_hardware<T: HardwareUpdate>(
    State(sim): State<SimRef>,
    uri: axum::http::Uri,
    Path(vm): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let flavor = Flavor::of(uri.path());
    let spec: T = match parse_spec(&body, flavor) {
        Ok(spec) => spec,
        Err(response) => return response,
    };
    with_vm(
        &sim,
        &headers,
        uri.path(),
        &vm,
        move |record, flavor, sim| {
            let changed = change_hardware(sim, record, &spec)
                .map_err(|(kind, message)| flavor.error(&kind, &message))?;
            Ok((flavor.done(), changed))
        },
    )
    .await
}

/// A checked CPU or memory update, for every transport; returns whether the VM changed.
fn change_hardware<T: HardwareUpdate>(
    sim: &SimRef,
    record: &mut VmRecord,
    spec: &T,
) -> Result<bool, Refusal> {
    spec.check(record, &sim.options().vsphere_hardware_error_kind)?;
    if busy(sim, record) {
        return Err(refusal(
            "resource_busy",
            "the virtual machine is busy".to_owned(),
        ));
    }
    Ok(spec.commit(record))
}

impl HardwareUpdate for CpuUpdate {
    fn check(&self, record: &VmRecord, rule_kind: &str) -> Result<(), (String, String)> {
        let invalid = |m: String| Err(("invalid_argument".to_owned(), m));
        let forbidden = |m: String| Err((rule_kind.to_owned(), m));
        let count = self.count.unwrap_or(record.cpu_count);
        let cores = self.cores_per_socket.unwrap_or(record.cores_per_socket);
        if !(1..=MAX_CPU_COUNT).contains(&count) {
            return invalid(format!(
                "CPU count {count} is out of range 1..{MAX_CPU_COUNT}"
            ));
        }
        if cores < 1 || count % cores != 0 {
            return invalid(format!(
                "CPU count {count} is not a multiple of cores per socket {cores}"
            ));
        }
        if record.power_state == "POWERED_OFF" {
            return Ok(());
        }
        let toggles = self
            .hot_add_enabled
            .is_some_and(|v| v != record.cpu_hot_add_enabled)
            || self
                .hot_remove_enabled
                .is_some_and(|v| v != record.cpu_hot_remove_enabled);
        if toggles {
            return forbidden(
                "CPU hot-plug settings can change only while the VM is powered off".to_owned(),
            );
        }
        if cores != record.cores_per_socket {
            return forbidden(
                "cores per socket can change only while the VM is powered off".to_owned(),
            );
        }
        if count > record.cpu_count && !record.cpu_hot_add_enabled {
            return forbidden(format!(
                "CPU hot-add is not enabled: cannot raise the CPU count of {} while it is {}",
                record.vm, record.power_state
            ));
        }
        if count < record.cpu_count && !record.cpu_hot_remove_enabled {
            return forbidden(format!(
                "CPU hot-remove is not enabled: cannot lower the CPU count of {} while it is {}",
                record.vm, record.power_state
            ));
        }
        Ok(())
    }

    fn commit(&self, record: &mut VmRecord) -> bool {
        let before = (
            record.cpu_count,
            record.cores_per_socket,
            record.cpu_hot_add_enabled,
            record.cpu_hot_remove_enabled,
        );
        record.cpu_count = self.count.unwrap_or(record.cpu_count);
        record.cores_per_socket = self.cores_per_socket.unwrap_or(record.cores_per_socket);
        record.cpu_hot_add_enabled = self.hot_add_enabled.unwrap_or(record.cpu_hot_add_enabled);
        record.cpu_hot_remove_enabled = self
            .hot_remove_enabled
            .unwrap_or(record.cpu_hot_remove_enabled);
        before
            != (
                record.cpu_count,
                record.cores_per_socket,
                record.cpu_hot_add_enabled,
                record.cpu_hot_remove_enabled,
            )
    }
}

impl HardwareUpdate for MemoryUpdate {
    fn check(&self, record: &VmRecord, rule_kind: &str) -> Result<(), (String, String)> {
        let size = self.size_mib.unwrap_or(record.memory_size_mib);
        if !(4..=MAX_MEMORY_MIB).contains(&size) || size % 4 != 0 {
            return Err((
                "invalid_argument".to_owned(),
                format!(
                    "memory size {size} MiB must be a multiple of 4 between 4 and {MAX_MEMORY_MIB}"
                ),
            ));
        }
        if record.power_state == "POWERED_OFF" {
            return Ok(());
        }
        let forbidden = |m: String| Err((rule_kind.to_owned(), m));
        if self
            .hot_add_enabled
            .is_some_and(|v| v != record.memory_hot_add_enabled)
        {
            return forbidden(
                "memory hot-add can change only while the VM is powered off".to_owned(),
            );
        }
        if size == record.memory_size_mib {
            return Ok(());
        }
        if !record.memory_hot_add_enabled {
            return forbidden(format!(
                "memory hot-add is not enabled: cannot change the memory of {} while it is {}",
                record.vm, record.power_state
            ));
        }
        if size < record.memory_size_mib {
            return forbidden("memory cannot be reduced while the VM is powered on".to_owned());
        }
        if (size - record.memory_size_mib) % MEMORY_HOT_ADD_INCREMENT_MIB != 0 {
            return Err((
                "invalid_argument".to_owned(),
                format!(
                    "hot-added memory must be a multiple of {MEMORY_HOT_ADD_INCREMENT_MIB} MiB"
                ),
            ));
        }
        Ok(())
    }

    fn commit(&self, record: &mut VmRecord) -> bool {
        let before = (record.memory_size_mib, record.memory_hot_add_enabled);
        record.memory_size_mib = self.size_mib.unwrap_or(record.memory_size_mib);
        record.memory_hot_add_enabled = self
            .hot_add_enabled
            .unwrap_or(record.memory_hot_add_enabled);
        before != (record.memory_size_mib, record.memory_hot_add_enabled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_keys_accept_repeated_and_indexed_forms() {
        assert_eq!(filter_key("filter.names", Flavor::Rest), Some("names"));
        assert_eq!(filter_key("filter.names.2", Flavor::Rest), Some("names"));
        assert_eq!(filter_key("names", Flavor::Rest), None);
        assert_eq!(
            filter_key("power_states", Flavor::Api),
            Some("power_states")
        );
    }

    #[test]
    fn cloud_director_requests_are_told_apart_by_their_headers() {
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut map = HeaderMap::new();
            for (name, value) in pairs {
                map.insert(*name, HeaderValue::from_static(value));
            }
            map
        };
        assert!(is_cloud_director_request(&headers(&[(
            "accept",
            "application/*+xml;version=36.1"
        )])));
        assert!(is_cloud_director_request(&headers(&[(
            "x-vcloud-authorization",
            "abc"
        )])));
        assert!(is_cloud_director_request(&headers(&[(
            "authorization",
            "Bearer abc"
        )])));
        assert!(!is_cloud_director_request(&headers(&[
            ("accept", "application/json"),
            ("authorization", "Basic YTpi"),
        ])));
        assert!(!is_cloud_director_request(&headers(&[(
            "vmware-api-session-id",
            "abc"
        )])));
    }

    #[test]
    fn cpu_rules_follow_the_spec() {
        let on = vm("vm-1", "a", "POWERED_ON", 2, 4096);
        let raise = CpuUpdate {
            count: Some(4),
            ..CpuUpdate::default()
        };
        let err = raise.check(&on, "invalid_argument").unwrap_err();
        assert_eq!(err.0, "invalid_argument");
        let mut hot = on.clone();
        hot.cpu_hot_add_enabled = true;
        assert!(raise.check(&hot, "invalid_argument").is_ok());
        let off = vm("vm-2", "b", "POWERED_OFF", 2, 4096);
        assert!(raise.check(&off, "x").is_ok());
        let odd = CpuUpdate {
            count: Some(3),
            cores_per_socket: Some(2),
            ..CpuUpdate::default()
        };
        assert_eq!(odd.check(&off, "x").unwrap_err().0, "invalid_argument");
    }

    #[test]
    fn memory_rules_follow_the_spec() {
        let on = vm("vm-1", "a", "POWERED_ON", 2, 4096);
        let grow = MemoryUpdate {
            size_mib: Some(8192),
            ..MemoryUpdate::default()
        };
        assert_eq!(
            grow.check(&on, "not_allowed_in_current_state")
                .unwrap_err()
                .0,
            "not_allowed_in_current_state"
        );
        let off = vm("vm-2", "b", "POWERED_OFF", 2, 4096);
        assert!(grow.check(&off, "x").is_ok());
    }
}
