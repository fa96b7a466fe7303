//! vSphere Automation REST (`vsphere.md`): the `VirtualMachine` kind, in the `/api` flavour
//! (vSphere 7.0 U2 and later) or the deprecated `/rest` one.
//!
//! Existing VMs only: lists the declared names (the list is capped, not paged, so names go
//! in chunks) or, given no names, every VM (by power state past the cap), normalizes each VM
//! to `{power_state, cpu_count, memory_size_MiB}`, changes power state and CPU/memory. A
//! CPU/memory change on a running VM is a power cycle the user allowed: a guest shutdown the
//! executor polls until the VM is off (or a hard power-off when the manifest says so), the
//! change, then the declared power state. Logs in with Basic and sends the session id in
//! `vmware-api-session-id`, logging in again once on 401. Never creates or deletes a VM.
//!
//! The flavour: `/rest` is deprecated since vSphere 7.0 U2 and announced for removal
//! (`api/README.md`, "Corrections after the audit"); `api_flavor: auto` logs in at
//! `POST /api/session` and falls back to `/rest` only when that answers 404.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use base64::Engine;
use reqwest::header::HeaderName;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::model::kinds::virtual_machine::{
    PowerCycle, PowerState, VirtualMachine, VirtualMachineSpec,
};
use crate::model::{ApiFlavor, Connection, Kind, SecretSource, SecretValue};

use super::http::{HttpClient, HttpRequest, HttpResponse, RetryRule, path_segment, truncate_body};
use super::token::{Credential, TokenCache};
use super::{
    Attributes, CreateRequest, DeleteRequest, LiveObject, LiveStatus, Outcome, Provider,
    ProviderError, ProviderResult, TaskHandle, TaskStatus, UpdateRequest,
};

const SESSION_HEADER: HeaderName = HeaderName::from_static("vmware-api-session-id");
/// Asks the server not to set the session cookie: the id travels in the header only.
const USE_HEADER_AUTHN: HeaderName = HeaderName::from_static("vmware-use-header-authn");

/// Declared names per VM listing: the `/rest` list is capped at 1,000 results and the `/api`
/// one at 4,000 (`vsphere.md` §3), and long query strings are refused by proxies.
pub const NAMES_PER_LIST: usize = 200;

/// The most VMs one `GET /rest/vcenter/vm` returns (`vsphere.md` §3); past it vCenter answers
/// 400 `unable_to_allocate_resource`.
pub const LIST_CAP: usize = 1000;

/// The same cap for `GET /api/vcenter/vm` (`vsphere.md` §3).
pub const API_LIST_CAP: usize = 4000;

const POWERED_ON: &str = "POWERED_ON";
const POWERED_OFF: &str = "POWERED_OFF";
const SUSPENDED: &str = "SUSPENDED";

/// vAPI error kinds this client acts on.
const ALREADY_IN_DESIRED_STATE: &str = "already_in_desired_state";
const RESOURCE_BUSY: &str = "resource_busy";
/// A listing matched more VMs than the cap.
const UNABLE_TO_ALLOCATE: &str = "unable_to_allocate_resource";
/// Guest power operations answer this when VMware Tools is not running in the VM
/// (`com/vmware/vcenter/vm/guest_client.py`, `Power.shutdown`: "ServiceUnavailable if
/// VMware Tools is not running").
const SERVICE_UNAVAILABLE: &str = "service_unavailable";

/// The REST flavour of one vCenter (`vsphere.md` §1; the `/api` paths from the `/api`
/// reference cited in `api/README.md`, "Corrections after the audit").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// Bare JSON bodies, 201/204 replies, `?action=` operations, unprefixed filters.
    Api,
    /// `{"value": …}` replies, `{"spec": …}` request bodies, `filter.*` query keys.
    Rest,
}

impl Flavor {
    fn session_path(self) -> &'static str {
        match self {
            Flavor::Api => "/api/session",
            Flavor::Rest => "/rest/com/vmware/cis/session",
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            Flavor::Api => "/api",
            Flavor::Rest => "/rest",
        }
    }

    fn vm_list_path(self) -> String {
        format!("{}/vcenter/vm", self.prefix())
    }

    fn vm_path(self, vm: &str) -> String {
        format!("{}/vcenter/vm/{}", self.prefix(), path_segment(vm))
    }

    /// The list filter named `name` (`names`, `power_states`): `filter.names` on `/rest`.
    fn filter(self, name: &str) -> String {
        match self {
            Flavor::Api => name.to_string(),
            Flavor::Rest => format!("filter.{name}"),
        }
    }

    fn list_cap(self) -> usize {
        match self {
            Flavor::Api => API_LIST_CAP,
            Flavor::Rest => LIST_CAP,
        }
    }

    /// `POST …/power?action=start` on `/api`, `POST …/power/start` on `/rest`.
    fn power_request(self, vm: &str, operation: &str) -> HttpRequest {
        match self {
            Flavor::Api => {
                HttpRequest::post(format!("{}/power", self.vm_path(vm))).query("action", operation)
            }
            Flavor::Rest => HttpRequest::post(format!("{}/power/{operation}", self.vm_path(vm))),
        }
    }

    /// `POST …/guest/power?action=shutdown`, the same in both flavours.
    fn guest_shutdown_request(self, vm: &str) -> HttpRequest {
        HttpRequest::post(format!("{}/guest/power", self.vm_path(vm))).query("action", "shutdown")
    }

    /// A hardware update body: the spec itself on `/api`, `{"spec": …}` on `/rest`.
    fn update_body(self, spec: Value) -> Value {
        match self {
            Flavor::Api => spec,
            Flavor::Rest => json!({ "spec": spec }),
        }
    }

    /// The payload of a reply: the body on `/api`, its `value` on `/rest`.
    fn payload(self, body: Value) -> Value {
        match (self, body) {
            (Flavor::Rest, Value::Object(mut map)) if map.contains_key("value") => {
                map.remove("value").unwrap_or(Value::Null)
            }
            (_, other) => other,
        }
    }
}

/// A logged-in session and the flavour it speaks.
#[derive(Clone)]
struct Session {
    id: SecretValue,
    flavor: Flavor,
}

/// A power cycle waiting for its guest shutdown: what to do once the VM is off.
#[derive(Clone, Debug)]
struct PendingCycle {
    vm: String,
    hardware: HardwareChange,
    /// The power state to end in.
    target: String,
}

/// `Cpu.UpdateSpec`, the body of `PATCH …/hardware/cpu` (`vsphere.md` §4 "Update CPU";
/// `vm/hardware_client.py`).
#[derive(serde::Serialize, Clone, Copy, Debug, PartialEq)]
struct CpuUpdate {
    count: u32,
}

/// `Memory.UpdateSpec`, the body of `PATCH …/hardware/memory` (`vsphere.md` §4 "Update
/// memory"); note the casing `size_MiB`.
#[derive(serde::Serialize, Clone, Copy, Debug, PartialEq)]
struct MemoryUpdate {
    #[serde(rename = "size_MiB")]
    size_mib: u64,
}

/// The CPU and memory updates of a desired spec: what it declares, then
/// ([`HardwareChange::against`]) only what differs from the live VM.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct HardwareChange {
    cpu: Option<CpuUpdate>,
    memory: Option<MemoryUpdate>,
}

impl From<&VirtualMachineSpec> for HardwareChange {
    fn from(spec: &VirtualMachineSpec) -> Self {
        HardwareChange {
            cpu: spec.cpu_count.map(|count| CpuUpdate { count }),
            memory: spec
                .memory_size_mib
                .map(|size_mib| MemoryUpdate { size_mib }),
        }
    }
}

impl HardwareChange {
    /// Keeps only the updates that change the live VM (its normalized spec).
    fn against(self, live: &Value) -> Self {
        HardwareChange {
            cpu: self
                .cpu
                .filter(|c| Some(i64::from(c.count)) != spec_int(live, "cpu_count")),
            memory: self
                .memory
                .filter(|m| i64::try_from(m.size_mib).ok() != spec_int(live, "memory_size_MiB")),
        }
    }

    fn is_empty(&self) -> bool {
        self.cpu.is_none() && self.memory.is_none()
    }
}

/// The wire spelling of a power state (`vsphere.md` §3: `POWERED_OFF | POWERED_ON |
/// SUSPENDED`).
fn power_state_wire(state: PowerState) -> &'static str {
    match state {
        PowerState::PoweredOn => POWERED_ON,
        PowerState::PoweredOff => POWERED_OFF,
        PowerState::Suspended => SUSPENDED,
    }
}

#[derive(serde::Deserialize, Default, Debug)]
#[serde(default)]
struct VmSummary {
    vm: Option<String>,
    name: Option<String>,
    power_state: Option<String>,
    cpu_count: Option<i64>,
    #[serde(rename = "memory_size_MiB")]
    memory_size_mib: Option<i64>,
}

/// `VM.Info`, the reply of `GET …/vcenter/vm/{vm}` (the parts this client reads). The whole
/// shape (`com/vmware/vcenter_client.py` `VM.Info`: `name`, `guest_OS`, `power_state`,
/// `hardware`, `boot`, `boot_devices`, `cpu`, `memory`, `disks`, `nics`, …) parses: every
/// other field is ignored, whether its maps come as `/api` objects or `/rest` key/value lists.
#[derive(serde::Deserialize, Default, Debug, PartialEq)]
#[serde(default)]
pub struct VmInfo {
    pub name: Option<String>,
    pub power_state: Option<String>,
    pub cpu: Option<CpuInfo>,
    pub memory: Option<MemoryInfo>,
}

/// `Cpu.Info` (`vm/hardware_client.py`).
#[derive(serde::Deserialize, Default, Debug, PartialEq)]
#[serde(default)]
pub struct CpuInfo {
    pub count: Option<i64>,
}

/// `Memory.Info` (`vm/hardware_client.py`); note the casing `size_MiB`.
#[derive(serde::Deserialize, Default, Debug, PartialEq)]
#[serde(default)]
pub struct MemoryInfo {
    #[serde(rename = "size_MiB")]
    pub size_mib: Option<i64>,
}

/// Reads a `GET …/vcenter/vm/{vm}` reply body of `flavor`.
pub fn parse_vm_info(flavor: Flavor, body: &[u8]) -> Result<VmInfo, String> {
    let body: Value = serde_json::from_slice(body).map_err(|err| err.to_string())?;
    serde_json::from_value(flavor.payload(body)).map_err(|err| err.to_string())
}

/// `/rest` error body, or the `/api` one.
#[derive(serde::Deserialize, Default, Debug)]
#[serde(default)]
struct VapiError {
    #[serde(rename = "type")]
    kind: Option<String>,
    error_type: Option<String>,
    value: Option<VapiErrorValue>,
    messages: Option<Vec<VapiMessage>>,
}

#[derive(serde::Deserialize, Default, Debug)]
#[serde(default)]
struct VapiErrorValue {
    messages: Option<Vec<VapiMessage>>,
}

#[derive(serde::Deserialize, Default, Debug)]
#[serde(default)]
struct VapiMessage {
    default_message: Option<String>,
}

impl VapiError {
    fn parse(body: &[u8]) -> Self {
        serde_json::from_slice(body).unwrap_or_default()
    }

    /// The error kind, lower case without the package (`not_found`).
    fn kind(&self) -> Option<String> {
        self.kind
            .as_deref()
            .map(|k| k.rsplit('.').next().unwrap_or(k).to_string())
            .or_else(|| self.error_type.as_deref().map(str::to_lowercase))
    }

    fn message(&self) -> Option<&str> {
        self.value
            .as_ref()
            .and_then(|v| v.messages.as_ref())
            .or(self.messages.as_ref())
            .and_then(|m| m.iter().find_map(|m| m.default_message.as_deref()))
    }
}

fn error_kind(response: &HttpResponse) -> Option<String> {
    VapiError::parse(&response.body).kind()
}

fn api_error(response: &HttpResponse) -> ProviderError {
    let error = VapiError::parse(&response.body);
    let message = match (error.kind(), error.message()) {
        (Some(kind), Some(message)) => format!("`{kind}`: {message}"),
        (Some(kind), None) => format!("`{kind}`"),
        (None, Some(message)) => message.to_string(),
        (None, None) => truncate_body(&response.body),
    };
    response.error(message)
}

/// The reply's payload (`value` on `/rest`, the body on `/api`) as `T`.
fn read_payload<T: serde::de::DeserializeOwned>(
    flavor: Flavor,
    response: &HttpResponse,
) -> ProviderResult<T> {
    let body: Value = response.json()?;
    serde_json::from_value(flavor.payload(body)).map_err(|err| ProviderError::Protocol {
        method: response.method.to_string(),
        path: response.path.clone(),
        message: format!(
            "{}: body is not the documented JSON ({err})",
            response.describe()
        ),
    })
}

/// The provider for one `vsphere` connection.
pub struct VsphereProvider {
    connection: String,
    http: HttpClient,
    username: Option<String>,
    password: Option<SecretSource>,
    api_flavor: ApiFlavor,
    session: TokenCache<Session>,
    /// Power cycles waiting for a guest shutdown, by task id.
    cycles: Mutex<HashMap<String, PendingCycle>>,
}

/// How a guest shutdown request ended.
enum ShutdownStart {
    /// The guest is shutting down; poll until the VM is off.
    Started,
    /// The VM was off already (a concurrent change).
    AlreadyOff,
    /// VMware Tools is not running, so the guest cannot be asked.
    NoTools,
}

impl VsphereProvider {
    /// Builds the provider without contacting anything.
    pub fn new(connection: &Connection) -> ProviderResult<Self> {
        Ok(Self {
            connection: connection.name.clone(),
            http: HttpClient::new(&connection.name, &connection.config)?,
            username: connection.config.username.clone(),
            password: connection.config.password.clone(),
            api_flavor: connection.config.api_flavor,
            session: TokenCache::new(connection.config.refresh_before_expiry),
            cycles: Mutex::new(HashMap::new()),
        })
    }

    fn config_error(&self, message: impl Into<String>) -> ProviderError {
        ProviderError::Config {
            connection: self.connection.clone(),
            message: message.into(),
        }
    }

    fn basic_credentials(&self) -> ProviderResult<(String, SecretValue)> {
        let username = self
            .username
            .as_deref()
            .filter(|u| !u.is_empty())
            .ok_or_else(|| self.config_error("`username` is required to log in to vCenter"))?;
        let source = self
            .password
            .as_ref()
            .ok_or_else(|| self.config_error("`password` is required to log in to vCenter"))?;
        let password = crate::providers::read_secret(&self.connection, "password", source)?;
        let basic = SecretValue::new(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD
                .encode(format!("{username}:{}", password.expose()))
        ));
        Ok((username.to_string(), basic))
    }

    /// Logs in with Basic credentials: `POST /api/session` (201, the id as a bare JSON
    /// string), or `POST /rest/com/vmware/cis/session` (200, `{"value": id}`) when the
    /// connection says `rest` or, under `auto`, when `/api/session` answers 404.
    async fn login(&self) -> ProviderResult<Credential<Session>> {
        let (username, basic) = self.basic_credentials()?;
        let first = match self.api_flavor {
            ApiFlavor::Rest => Flavor::Rest,
            ApiFlavor::Api | ApiFlavor::Auto => Flavor::Api,
        };
        let mut flavor = first;
        let mut response = self.open_session(flavor, &basic).await?;
        if response.status == 404 && self.api_flavor == ApiFlavor::Auto {
            tracing::debug!(
                connection = %self.connection,
                "POST /api/session answered 404; speaking the /rest flavour"
            );
            flavor = Flavor::Rest;
            response = self.open_session(flavor, &basic).await?;
        }
        if response.status == 401 || response.status == 403 {
            return Err(ProviderError::Auth {
                connection: self.connection.clone(),
                message: format!(
                    "vCenter refused the username `{username}` or its password ({})",
                    response.status
                ),
            });
        }
        if response.status == 404 && self.api_flavor == ApiFlavor::Api {
            return Err(ProviderError::Config {
                connection: self.connection.clone(),
                message: "vCenter has no `/api` (POST /api/session answered 404); set `api_flavor: rest` (or `auto`) for vCenter before 7.0 U2".to_string(),
            });
        }
        if !response.is_success() {
            return Err(api_error(&response));
        }
        let path = flavor.session_path();
        // The reply is the session id itself: never quote it in an error.
        let body: Value = response.json_redacted()?;
        let id = match flavor.payload(body) {
            Value::String(id) if !id.is_empty() => id,
            Value::String(_) => {
                return Err(ProviderError::Protocol {
                    method: "POST".to_string(),
                    path: path.to_string(),
                    message: "the session id is empty".to_string(),
                });
            }
            _ => {
                return Err(ProviderError::Protocol {
                    method: "POST".to_string(),
                    path: path.to_string(),
                    message: "the reply holds no session id string".to_string(),
                });
            }
        };
        Ok(Credential {
            value: Session {
                id: SecretValue::new(id),
                flavor,
            },
            lifetime: None,
        })
    }

    async fn open_session(
        &self,
        flavor: Flavor,
        basic: &SecretValue,
    ) -> ProviderResult<HttpResponse> {
        let request = HttpRequest::post(flavor.session_path())
            .header(reqwest::header::ACCEPT, "application/json")
            .header(USE_HEADER_AUTHN, "true")
            .secret_header(reqwest::header::AUTHORIZATION, basic.clone())
            // A second session is harmless.
            .idempotent(true);
        self.http.send(request).await
    }

    /// Sends the request `build` makes for the session's flavour, with the session id,
    /// logging in again once on 401. Returns the flavour with the response.
    async fn call(
        &self,
        build: impl Fn(Flavor) -> HttpRequest,
    ) -> ProviderResult<(Flavor, HttpResponse)> {
        let used = Mutex::new(Flavor::Api);
        let response = self
            .session
            .send_authenticated(
                &self.http,
                || self.login(),
                |session| {
                    if let Ok(mut used) = used.lock() {
                        *used = session.flavor;
                    }
                    build(session.flavor)
                        .header(reqwest::header::ACCEPT, "application/json")
                        .retry_if(RetryRule::new(|r| {
                            r.status == 400 && error_kind(r).as_deref() == Some(RESOURCE_BUSY)
                        }))
                        .secret_header(SESSION_HEADER, session.id.clone())
                },
                HttpResponse::is_unauthorized,
            )
            .await?;
        if response.is_unauthorized() {
            return Err(ProviderError::Auth {
                connection: self.connection.clone(),
                message: format!(
                    "{} {} was refused with 401 again after a fresh login",
                    response.method, response.path
                ),
            });
        }
        let flavor = used.into_inner().unwrap_or(Flavor::Api);
        Ok((flavor, response))
    }

    /// Ends the session, if one was opened (`DELETE /api/session` or
    /// `DELETE /rest/com/vmware/cis/session`).
    pub async fn logout(&self) -> ProviderResult<()> {
        let Some(session) = self.session.take().await else {
            return Ok(());
        };
        let response = self
            .http
            .send(
                HttpRequest::delete(session.flavor.session_path())
                    .secret_header(SESSION_HEADER, session.id),
            )
            .await?;
        if response.is_success() || response.is_unauthorized() {
            Ok(())
        } else {
            Err(api_error(&response))
        }
    }

    /// Every VM. vCenter refuses a listing that matches more VMs than its cap, so past the
    /// cap this lists by power state instead (warning that the cap was hit), and fails only
    /// when one power state alone is past it.
    async fn list_all(&self) -> ProviderResult<Vec<VmSummary>> {
        let (flavor, all) = self.list_unfiltered(None).await?;
        if let Some(all) = all {
            return Ok(all);
        }
        tracing::warn!(
            "connection `{}` has more VMs than one listing returns ({} on vCenter); listing them by power state instead",
            self.connection,
            flavor.list_cap()
        );
        let mut out = Vec::new();
        for state in [POWERED_ON, POWERED_OFF, SUSPENDED] {
            match self.list_unfiltered(Some(state)).await? {
                (_, Some(vms)) => out.extend(vms),
                (flavor, None) => {
                    return Err(ProviderError::Invalid(format!(
                        "connection `{}` has more VMs in power state `{state}` than one listing returns ({} on vCenter), so not every VM can be listed",
                        self.connection,
                        flavor.list_cap()
                    )));
                }
            }
        }
        Ok(out)
    }

    /// `GET …/vcenter/vm`, optionally of one power state; `None` when more VMs match than
    /// one listing returns (400 `unable_to_allocate_resource`).
    async fn list_unfiltered(
        &self,
        power_state: Option<&str>,
    ) -> ProviderResult<(Flavor, Option<Vec<VmSummary>>)> {
        let (flavor, response) = self
            .call(|flavor| {
                let request = HttpRequest::get(flavor.vm_list_path());
                match power_state {
                    Some(state) => request.query(&flavor.filter("power_states"), state),
                    None => request,
                }
            })
            .await?;
        if !response.is_success() {
            if error_kind(&response).as_deref() == Some(UNABLE_TO_ALLOCATE) {
                return Ok((flavor, None));
            }
            return Err(api_error(&response));
        }
        Ok((flavor, Some(read_payload(flavor, &response)?)))
    }

    /// One chunk of declared names → the VMs whose name matches one of them exactly
    /// (`GET /api/vcenter/vm?names=…`, a bare list; `/rest`: `filter.names=…`).
    async fn list_chunk(&self, names: &[&str]) -> ProviderResult<Vec<VmSummary>> {
        let (flavor, response) = self
            .call(|flavor| {
                let key = flavor.filter("names");
                let mut request = HttpRequest::get(flavor.vm_list_path());
                for name in names {
                    request = request.query(&key, *name);
                }
                request
            })
            .await?;
        if !response.is_success() {
            return Err(api_error(&response));
        }
        let mut vms: Vec<VmSummary> = read_payload(flavor, &response)?;
        // The filter is exact on vCenter; match client-side as well.
        vms.retain(|vm| vm.name.as_deref().is_some_and(|n| names.contains(&n)));
        Ok(vms)
    }

    /// Fills in CPU and memory when the list left them unset (config unavailable): one
    /// `GET …/vcenter/vm/{vm}`, whose `VM.Info` holds both.
    async fn complete(&self, mut vm: VmSummary) -> ProviderResult<VmSummary> {
        if vm.cpu_count.is_some() && vm.memory_size_mib.is_some() {
            return Ok(vm);
        }
        let id = vm.vm.clone().unwrap_or_default();
        let (flavor, response) = self
            .call(|flavor| HttpRequest::get(flavor.vm_path(&id)))
            .await?;
        if !response.is_success() {
            return Err(api_error(&response));
        }
        let info =
            parse_vm_info(flavor, &response.body).map_err(|err| ProviderError::Protocol {
                method: response.method.to_string(),
                path: response.path.clone(),
                message: format!("{}: body is not a `VM.Info` ({err})", response.describe()),
            })?;
        vm.cpu_count = vm.cpu_count.or(info.cpu.and_then(|c| c.count));
        vm.memory_size_mib = vm.memory_size_mib.or(info.memory.and_then(|m| m.size_mib));
        Ok(vm)
    }

    /// The VM's power state (`GET …/vcenter/vm/{vm}/power`).
    async fn power_state(&self, vm: &str) -> ProviderResult<String> {
        #[derive(serde::Deserialize)]
        struct PowerInfo {
            state: String,
        }
        let (flavor, response) = self
            .call(|flavor| HttpRequest::get(format!("{}/power", flavor.vm_path(vm))))
            .await?;
        if !response.is_success() {
            return Err(api_error(&response));
        }
        let info: PowerInfo = read_payload(flavor, &response)?;
        Ok(info.state)
    }

    /// `POST …/power?action=start|stop|suspend` (`/rest`: `…/power/{start|stop|suspend}`);
    /// `already_in_desired_state` counts as success.
    async fn power(&self, vm: &str, operation: &str) -> ProviderResult<()> {
        // Resending is safe: a repeated operation gets `already_in_desired_state`.
        let (_, response) = self
            .call(|flavor| flavor.power_request(vm, operation).idempotent(true))
            .await?;
        if response.is_success()
            || (response.status == 400
                && error_kind(&response).as_deref() == Some(ALREADY_IN_DESIRED_STATE))
        {
            return Ok(());
        }
        Err(api_error(&response))
    }

    /// Asks the guest OS to shut down (`POST …/guest/power?action=shutdown`). The call
    /// returns at once; the VM powers off when the guest is done.
    async fn guest_shutdown(&self, vm: &str) -> ProviderResult<ShutdownStart> {
        // Not resent on 503: here that status says VMware Tools is not running.
        let (_, response) = self
            .call(|flavor| flavor.guest_shutdown_request(vm).idempotent(false))
            .await?;
        if response.is_success() {
            return Ok(ShutdownStart::Started);
        }
        match error_kind(&response).as_deref() {
            // "if the virtual machine is not powered on" (`guest_client.py`).
            Some(ALREADY_IN_DESIRED_STATE) => Ok(ShutdownStart::AlreadyOff),
            Some(SERVICE_UNAVAILABLE) => Ok(ShutdownStart::NoTools),
            _ => Err(api_error(&response)),
        }
    }

    /// The power operations that take a VM from `from` to `to`.
    async fn power_to(&self, vm: &str, from: &str, to: &str) -> ProviderResult<()> {
        let steps: &[&str] = match (from, to) {
            _ if from == to => &[],
            (_, POWERED_ON) => &["start"],
            (_, POWERED_OFF) => &["stop"],
            (POWERED_ON, SUSPENDED) => &["suspend"],
            (_, SUSPENDED) => &["start", "suspend"],
            _ => {
                return Err(ProviderError::Invalid(format!(
                    "unknown power state `{to}` (expected POWERED_ON, POWERED_OFF or SUSPENDED)"
                )));
            }
        };
        for step in steps {
            self.power(vm, step).await?;
        }
        Ok(())
    }

    /// `PATCH …/hardware/{cpu|memory}`: the spec bare on `/api` (204), wrapped in
    /// `{"spec": …}` on `/rest` (200).
    async fn patch(&self, vm: &str, part: &str, spec: Value) -> ProviderResult<()> {
        let (_, response) = self
            .call(|flavor| {
                HttpRequest::patch(format!("{}/hardware/{part}", flavor.vm_path(vm)))
                    .json(flavor.update_body(spec.clone()))
                    .idempotent(true)
            })
            .await?;
        if response.is_success() {
            Ok(())
        } else {
            Err(api_error(&response))
        }
    }

    async fn set_hardware(&self, vm: &str, change: HardwareChange) -> ProviderResult<()> {
        if let Some(cpu) = change.cpu {
            self.patch(vm, "cpu", json!(cpu)).await?;
        }
        if let Some(memory) = change.memory {
            self.patch(vm, "memory", json!(memory)).await?;
        }
        Ok(())
    }

    /// Changes CPU/memory of a VM that is off, then brings it to `target`, even when the
    /// change failed.
    async fn change_then_power(&self, cycle: &PendingCycle) -> ProviderResult<()> {
        let changed = self.set_hardware(&cycle.vm, cycle.hardware).await;
        let restored = self.power_to(&cycle.vm, POWERED_OFF, &cycle.target).await;
        changed?;
        restored
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<String, PendingCycle>> {
        self.cycles
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Reads a `GET /api/vcenter/vm` (bare list) or `GET /rest/vcenter/vm` (`{"value": […]}`)
/// reply, told apart by its path, into live objects (before CPU and memory are filled in for
/// VMs whose list entry lacks them).
pub fn parse_vm_list(response: &HttpResponse) -> ProviderResult<Vec<LiveObject>> {
    let flavor = if response.path.starts_with("/api") {
        Flavor::Api
    } else {
        Flavor::Rest
    };
    Ok(read_payload::<Vec<VmSummary>>(flavor, response)?
        .into_iter()
        .filter(|vm| vm.vm.is_some())
        .map(normalize)
        .collect())
}

fn normalize(vm: VmSummary) -> LiveObject {
    let id = vm.vm.unwrap_or_default();
    let mut spec = serde_json::Map::new();
    if let Some(state) = vm.power_state.filter(|s| !s.is_empty()) {
        spec.insert("power_state".into(), json!(state));
    }
    if let Some(cpu) = vm.cpu_count {
        spec.insert("cpu_count".into(), json!(cpu));
    }
    if let Some(memory) = vm.memory_size_mib {
        spec.insert("memory_size_MiB".into(), json!(memory));
    }
    let spec = Value::Object(spec);
    let digest = Sha256::digest(json!({ "vm": id, "spec": spec }).to_string().as_bytes());
    LiveObject {
        kind: Kind::VirtualMachine,
        name: vm.name.unwrap_or_default(),
        id: id.clone(),
        spec: spec.into(),
        attributes: Attributes::from([("vm".to_string(), id)]),
        status: LiveStatus::Ready,
        fingerprint: hex::encode(&digest[..16]),
    }
}

fn spec_int(spec: &Value, key: &str) -> Option<i64> {
    spec.get(key).and_then(Value::as_i64)
}

/// The id of the task that waits for `vm`'s guest shutdown.
fn shutdown_task_id(vm: &str) -> String {
    format!("guest-shutdown/{vm}")
}

#[async_trait::async_trait]
impl Provider for VsphereProvider {
    async fn close(&self) -> ProviderResult<()> {
        self.logout().await
    }

    async fn list(&self, kind: Kind, names: &[String]) -> ProviderResult<Vec<LiveObject>> {
        if kind != Kind::VirtualMachine {
            return Err(ProviderError::Invalid(format!(
                "connection `{}` (vsphere) does not manage `{kind}`",
                self.connection
            )));
        }
        let names: Vec<&str> = names
            .iter()
            .map(String::as_str)
            .filter(|n| !n.is_empty())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let chunks = if names.is_empty() {
            vec![self.list_all().await?]
        } else {
            futures::future::try_join_all(
                names
                    .chunks(NAMES_PER_LIST)
                    .map(|chunk| self.list_chunk(chunk)),
            )
            .await?
        };
        let completed = futures::future::try_join_all(
            chunks
                .into_iter()
                .flatten()
                .filter(|vm| vm.vm.is_some())
                .map(|vm| self.complete(vm)),
        )
        .await?;
        Ok(completed.into_iter().map(normalize).collect())
    }

    async fn create(&self, request: &CreateRequest<'_>) -> ProviderResult<Outcome> {
        Err(ProviderError::Invalid(format!(
            "`{}` does not exist in vCenter; sextant manages existing VMs only and never creates one",
            request.address
        )))
    }

    async fn update(&self, request: &UpdateRequest<'_>) -> ProviderResult<Outcome> {
        let name = request.address.to_string();
        let vm = request.live.id.as_str();
        let live = &request.live.spec.value();
        let desired = request.typed::<VirtualMachine>()?;
        let live_power = live
            .get("power_state")
            .and_then(Value::as_str)
            .unwrap_or(POWERED_OFF)
            .to_string();
        let desired_power = desired.power_state.map(power_state_wire);
        let hardware = HardwareChange::from(&desired).against(live);
        let done = Outcome::Done {
            attributes: Attributes::from([("vm".to_string(), vm.to_string())]),
            secret: None,
        };

        if hardware.is_empty() {
            if let Some(target) = desired_power {
                self.power_to(vm, &live_power, target).await?;
            }
            return Ok(done);
        }
        let cycle = PendingCycle {
            vm: vm.to_string(),
            hardware,
            // Back to the declared state, or the one it had.
            target: desired_power.unwrap_or(live_power.as_str()).to_string(),
        };
        if live_power == POWERED_OFF {
            self.change_then_power(&cycle).await?;
            return Ok(done);
        }
        let Some(allowed) = desired.power_cycle() else {
            return Err(ProviderError::Invalid(format!(
                "`{name}` is {live_power}: changing `cpu_count` or `memory_size_MiB` needs a power cycle (stop, change, start); set `allow_power_cycle: true` or power the VM off first"
            )));
        };
        if allowed == PowerCycle::Hard {
            self.power(vm, "stop").await?;
            self.change_then_power(&cycle).await?;
            return Ok(done);
        }
        // A suspended guest cannot shut down: resume it first.
        if live_power == SUSPENDED {
            self.power(vm, "start").await?;
        }
        match self.guest_shutdown(vm).await? {
            ShutdownStart::Started => {
                let id = shutdown_task_id(vm);
                self.pending().insert(id.clone(), cycle);
                Ok(Outcome::Task(TaskHandle {
                    kind: Kind::VirtualMachine,
                    id,
                    object_id: vm.to_string(),
                }))
            }
            ShutdownStart::AlreadyOff => {
                self.change_then_power(&cycle).await?;
                Ok(done)
            }
            ShutdownStart::NoTools if allowed == PowerCycle::GracefulOrHard => {
                tracing::warn!(
                    "{name}: VMware Tools is not running, so the guest cannot shut down; powering the VM off hard as `allow_power_cycle: graceful_or_hard` allows"
                );
                self.power(vm, "stop").await?;
                self.change_then_power(&cycle).await?;
                Ok(done)
            }
            ShutdownStart::NoTools => Err(ProviderError::Invalid(format!(
                "`{name}`: VMware Tools is not running, so the guest OS cannot be shut down for the CPU/memory change; start VMware Tools, or set `allow_power_cycle: graceful_or_hard` (or `hard`) to allow a hard power-off"
            ))),
        }
    }

    async fn delete(&self, request: &DeleteRequest<'_>) -> ProviderResult<Outcome> {
        Err(ProviderError::Invalid(format!(
            "`{}`: sextant never deletes virtual machines",
            request.address
        )))
    }

    /// A power cycle's guest shutdown: pending until the VM reads `POWERED_OFF`, then the
    /// CPU/memory change and the power state to end in, in this poll.
    async fn poll(&self, task: &TaskHandle) -> ProviderResult<TaskStatus> {
        let Some(cycle) = self.pending().get(&task.id).cloned() else {
            return Err(ProviderError::Invalid(format!(
                "vSphere changes finish synchronously; there is no task `{}` to poll",
                task.id
            )));
        };
        if self.power_state(&cycle.vm).await? != POWERED_OFF {
            return Ok(TaskStatus::Pending {
                progress: None,
                eta: None,
            });
        }
        self.pending().remove(&task.id);
        self.change_then_power(&cycle).await?;
        Ok(TaskStatus::Done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_summaries_normalize_with_mib_casing() {
        let vms: Vec<VmSummary> = serde_json::from_value(json!([
            {"vm":"vm-42","name":"web01","power_state":"POWERED_ON","cpu_count":2,"memory_size_MiB":4096}
        ]))
        .unwrap();
        let live = normalize(vms.into_iter().next().unwrap());
        assert_eq!(
            live.spec,
            json!({"power_state":"POWERED_ON","cpu_count":2,"memory_size_MiB":4096})
        );
        assert_eq!(live.attributes["vm"], "vm-42");
        assert_eq!(live.id, "vm-42");
    }

    /// `VM.Info` with every field `com/vmware/vcenter_client.py` declares, maps as `/api`
    /// objects; `rest` turns them into `/rest` key/value lists.
    fn full_vm_info(rest: bool) -> Value {
        let map = |key: &str, value: Value| {
            if rest {
                json!([{ "key": key, "value": value }])
            } else {
                json!({ key: value })
            }
        };
        let empty = if rest { json!([]) } else { json!({}) };
        json!({
            "name": "web-01",
            "guest_OS": "RHEL_9_64",
            "identity": {"name": "web-01", "bios_uuid": "4210-a", "instance_uuid": "5010-b"},
            "power_state": "POWERED_ON",
            "instant_clone_frozen": false,
            "hardware": {"version": "VMX_19", "upgrade_policy": "NEVER", "upgrade_status": "NONE"},
            "boot": {"type": "EFI", "efi_legacy_boot": false, "network_protocol": "IPV4",
                     "delay": 0, "retry": true, "retry_delay": 10000, "enter_setup_mode": false},
            "boot_devices": [{"type": "DISK", "disks": ["2000"]}],
            "cpu": {"count": 4, "cores_per_socket": 2, "hot_add_enabled": false, "hot_remove_enabled": false},
            "memory": {"size_MiB": 8192, "hot_add_enabled": true,
                       "hot_add_increment_size_MiB": 128, "hot_add_limit_MiB": 32768},
            "disks": map("2000", json!({"label": "Hard disk 1", "type": "SCSI",
                "scsi": {"bus": 0, "unit": 0},
                "backing": {"type": "VMDK_FILE", "vmdk_file": "[ds] web-01/web-01.vmdk"},
                "capacity": 17179869184u64})),
            "nics": map("4000", json!({"label": "Network adapter 1", "type": "VMXNET3",
                "mac_type": "ASSIGNED", "mac_address": "00:50:56:00:00:01", "pci_slot_number": 192,
                "wake_on_lan_enabled": false,
                "backing": {"type": "STANDARD_PORTGROUP", "network": "network-11"},
                "state": "CONNECTED", "start_connected": true, "allow_guest_control": true})),
            "cdroms": map("16000", json!({"type": "SATA", "label": "CD/DVD drive 1",
                "sata": {"bus": 0, "unit": 0},
                "backing": {"type": "CLIENT_DEVICE", "device_access_type": "EMULATION"},
                "state": "NOT_CONNECTED", "start_connected": false, "allow_guest_control": true})),
            "floppies": empty.clone(),
            "parallel_ports": empty.clone(),
            "serial_ports": empty.clone(),
            "sata_adapters": map("15000", json!({"label": "SATA controller 0", "type": "AHCI",
                "bus": 0, "pci_slot_number": 33})),
            "scsi_adapters": map("1000", json!({"label": "SCSI controller 0", "type": "PVSCSI",
                "scsi": {"bus": 0, "unit": 7}, "pci_slot_number": 160, "sharing": "NONE"})),
            "nvme_adapters": empty,
        })
    }

    #[test]
    fn vm_info_is_read_from_the_whole_shape_in_both_flavours() {
        let expected = VmInfo {
            name: Some("web-01".into()),
            power_state: Some("POWERED_ON".into()),
            cpu: Some(CpuInfo { count: Some(4) }),
            memory: Some(MemoryInfo {
                size_mib: Some(8192),
            }),
        };
        let api = serde_json::to_vec(&full_vm_info(false)).unwrap();
        assert_eq!(parse_vm_info(Flavor::Api, &api), Ok(expected));
        let rest = serde_json::to_vec(&json!({ "value": full_vm_info(true) })).unwrap();
        let parsed = parse_vm_info(Flavor::Rest, &rest).unwrap();
        assert_eq!(parsed.cpu, Some(CpuInfo { count: Some(4) }));
        assert_eq!(
            parsed.memory,
            Some(MemoryInfo {
                size_mib: Some(8192)
            })
        );
        // A `/rest` body read as `/api` has no fields at the top: nothing is made up.
        assert_eq!(parse_vm_info(Flavor::Api, &rest), Ok(VmInfo::default()));
    }

    #[test]
    fn error_kinds_are_read_from_both_flavours() {
        let rest = VapiError::parse(
            br#"{"type":"com.vmware.vapi.std.errors.already_in_desired_state","value":{"messages":[{"id":"x","default_message":"already on","args":[]}]}}"#,
        );
        assert_eq!(rest.kind().as_deref(), Some("already_in_desired_state"));
        assert_eq!(rest.message(), Some("already on"));
        let api = VapiError::parse(br#"{"error_type":"NOT_FOUND","messages":[]}"#);
        assert_eq!(api.kind().as_deref(), Some("not_found"));
    }
}
