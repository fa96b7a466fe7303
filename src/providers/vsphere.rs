//! vSphere Automation REST, `/rest` flavour (`vsphere.md`): the `VirtualMachine` kind.
//!
//! Existing VMs only: lists the declared names with `filter.names` (the list is capped, not
//! paged, so names go in chunks) or, given no names, every VM (by power state past the cap), normalizes each VM to `{power_state, cpu_count,
//! memory_size_MiB}`, changes power state and CPU/memory (stop → change → start on a running
//! VM, only when the user allowed a power cycle). Logs in with Basic and sends the session id
//! in `vmware-api-session-id`, logging in again once on 401. Never creates or deletes a VM.

use std::collections::BTreeSet;

use base64::Engine;
use reqwest::header::HeaderName;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::model::{Connection, Kind, SecretSource, SecretValue};

use super::http::{HttpClient, HttpRequest, HttpResponse, RetryRule, path_segment, truncate_body};
use super::token::{Credential, TokenCache};
use super::{
    Attributes, CreateRequest, DeleteRequest, LiveObject, LiveStatus, Outcome, Provider,
    ProviderError, ProviderResult, TaskHandle, TaskStatus, UpdateRequest,
};

const SESSION_PATH: &str = "/rest/com/vmware/cis/session";
const SESSION_HEADER: HeaderName = HeaderName::from_static("vmware-api-session-id");
/// Asks the server not to set the session cookie: the id travels in the header only.
const USE_HEADER_AUTHN: HeaderName = HeaderName::from_static("vmware-use-header-authn");

/// Declared names per `GET /rest/vcenter/vm`: the `/rest` list is capped at 1,000 results
/// (`vsphere.md` §3), and long query strings are refused by proxies.
pub const NAMES_PER_LIST: usize = 200;

/// The most VMs one `GET /rest/vcenter/vm` returns (`vsphere.md` §3); past it vCenter answers
/// 400 `unable_to_allocate_resource`.
pub const LIST_CAP: usize = 1000;

const POWERED_ON: &str = "POWERED_ON";
const POWERED_OFF: &str = "POWERED_OFF";
const SUSPENDED: &str = "SUSPENDED";

/// vAPI error kinds this client acts on.
const ALREADY_IN_DESIRED_STATE: &str = "already_in_desired_state";
const RESOURCE_BUSY: &str = "resource_busy";
/// A listing matched more VMs than the cap.
const UNABLE_TO_ALLOCATE: &str = "unable_to_allocate_resource";

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

/// `GET /rest/vcenter/vm/{vm}` (the parts this client reads).
#[derive(serde::Deserialize, Default, Debug)]
#[serde(default)]
struct VmInfo {
    cpu: Option<CpuInfo>,
    memory: Option<MemoryInfo>,
}

#[derive(serde::Deserialize, Default, Debug)]
#[serde(default)]
struct CpuInfo {
    count: Option<i64>,
}

#[derive(serde::Deserialize, Default, Debug)]
#[serde(default)]
struct MemoryInfo {
    #[serde(rename = "size_MiB")]
    size_mib: Option<i64>,
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

/// The body's `value` for `/rest`, or the body itself for `/api`.
fn unwrap_value<T: serde::de::DeserializeOwned>(response: &HttpResponse) -> ProviderResult<T> {
    unwrap_value_from(response, response.json()?)
}

fn unwrap_value_from<T: serde::de::DeserializeOwned>(
    response: &HttpResponse,
    body: Value,
) -> ProviderResult<T> {
    let inner = match body {
        Value::Object(mut map) if map.contains_key("value") => {
            map.remove("value").unwrap_or(Value::Null)
        }
        other => other,
    };
    serde_json::from_value(inner).map_err(|err| ProviderError::Protocol {
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
    session: TokenCache<SecretValue>,
}

impl VsphereProvider {
    /// Builds the provider without contacting anything.
    pub fn new(connection: &Connection) -> ProviderResult<Self> {
        Ok(Self {
            connection: connection.name.clone(),
            http: HttpClient::new(&connection.name, &connection.config)?,
            username: connection.config.username.clone(),
            password: connection.config.password.clone(),
            session: TokenCache::new(connection.config.refresh_before_expiry),
        })
    }

    fn config_error(&self, message: impl Into<String>) -> ProviderError {
        ProviderError::Config {
            connection: self.connection.clone(),
            message: message.into(),
        }
    }

    /// `POST /rest/com/vmware/cis/session` with Basic credentials.
    async fn login(&self) -> ProviderResult<Credential<SecretValue>> {
        let username = self
            .username
            .as_deref()
            .filter(|u| !u.is_empty())
            .ok_or_else(|| self.config_error("`username` is required to log in to vCenter"))?;
        let source = self
            .password
            .as_ref()
            .ok_or_else(|| self.config_error("`password` is required to log in to vCenter"))?;
        let password = source.resolve().map_err(|err| {
            self.config_error(format!(
                "cannot read `password` from {}: {err}",
                source.describe()
            ))
        })?;
        let basic = SecretValue::new(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD
                .encode(format!("{username}:{}", password.expose()))
        ));
        let request = HttpRequest::post(SESSION_PATH)
            .header(reqwest::header::ACCEPT, "application/json")
            .header(USE_HEADER_AUTHN, "true")
            .secret_header(reqwest::header::AUTHORIZATION, basic)
            // A second session is harmless.
            .idempotent(true);
        let response = self.http.send(request).await?;
        if response.status == 401 || response.status == 403 {
            return Err(ProviderError::Auth {
                connection: self.connection.clone(),
                message: format!(
                    "vCenter refused the username `{username}` or its password ({})",
                    response.status
                ),
            });
        }
        if !response.is_success() {
            return Err(api_error(&response));
        }
        // The reply is the session id itself: never quote it in an error.
        let id: String = unwrap_value_from(&response, response.json_redacted()?).map_err(|_| {
            ProviderError::Protocol {
                method: "POST".to_string(),
                path: SESSION_PATH.to_string(),
                message: "the reply holds no session id string".to_string(),
            }
        })?;
        if id.is_empty() {
            return Err(ProviderError::Protocol {
                method: "POST".to_string(),
                path: SESSION_PATH.to_string(),
                message: "the session id is empty".to_string(),
            });
        }
        Ok(Credential {
            value: SecretValue::new(id),
            lifetime: None,
        })
    }

    /// Sends a request with the session id, logging in again once on 401.
    async fn call(&self, build: impl Fn() -> HttpRequest) -> ProviderResult<HttpResponse> {
        let response = self
            .session
            .send_authenticated(
                &self.http,
                || self.login(),
                |session| {
                    build()
                        .header(reqwest::header::ACCEPT, "application/json")
                        .retry_if(RetryRule::new(|r| {
                            r.status == 400 && error_kind(r).as_deref() == Some(RESOURCE_BUSY)
                        }))
                        .secret_header(SESSION_HEADER, session.clone())
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
        Ok(response)
    }

    /// Ends the session, if one was opened (`DELETE /rest/com/vmware/cis/session`).
    pub async fn logout(&self) -> ProviderResult<()> {
        let Some(session) = self.session.take().await else {
            return Ok(());
        };
        let response = self
            .http
            .send(HttpRequest::delete(SESSION_PATH).secret_header(SESSION_HEADER, session))
            .await?;
        if response.is_success() || response.is_unauthorized() {
            Ok(())
        } else {
            Err(api_error(&response))
        }
    }

    /// Every VM. vCenter refuses a listing that matches more than [`LIST_CAP`] VMs, so past
    /// the cap this lists by power state instead (warning that the cap was hit), and fails
    /// only when one power state alone is past it.
    async fn list_all(&self) -> ProviderResult<Vec<VmSummary>> {
        if let Some(all) = self.list_unfiltered(None).await? {
            return Ok(all);
        }
        tracing::warn!(
            "connection `{}` has more VMs than one `/rest` listing returns ({LIST_CAP} on vCenter); listing them by power state instead",
            self.connection
        );
        let mut out = Vec::new();
        for state in [POWERED_ON, POWERED_OFF, SUSPENDED] {
            match self.list_unfiltered(Some(state)).await? {
                Some(vms) => out.extend(vms),
                None => {
                    return Err(ProviderError::Invalid(format!(
                        "connection `{}` has more VMs in power state `{state}` than one `/rest` listing returns ({LIST_CAP} on vCenter), so not every VM can be listed",
                        self.connection
                    )));
                }
            }
        }
        Ok(out)
    }

    /// `GET /rest/vcenter/vm`, optionally of one power state; `None` when more VMs match
    /// than one listing returns (400 `unable_to_allocate_resource`).
    async fn list_unfiltered(
        &self,
        power_state: Option<&str>,
    ) -> ProviderResult<Option<Vec<VmSummary>>> {
        let response = self
            .call(|| {
                let request = HttpRequest::get("/rest/vcenter/vm");
                match power_state {
                    Some(state) => request.query("filter.power_states", state),
                    None => request,
                }
            })
            .await?;
        if !response.is_success() {
            if error_kind(&response).as_deref() == Some(UNABLE_TO_ALLOCATE) {
                return Ok(None);
            }
            return Err(api_error(&response));
        }
        Ok(Some(unwrap_value(&response)?))
    }

    /// One chunk of declared names → the VMs whose name matches one of them exactly.
    async fn list_chunk(&self, names: &[&str]) -> ProviderResult<Vec<VmSummary>> {
        let response = self
            .call(|| {
                let mut request = HttpRequest::get("/rest/vcenter/vm");
                for name in names {
                    request = request.query("filter.names", *name);
                }
                request
            })
            .await?;
        if !response.is_success() {
            return Err(api_error(&response));
        }
        let mut vms = parse_summaries(&response)?;
        // The filter is exact on vCenter; match client-side as well.
        vms.retain(|vm| vm.name.as_deref().is_some_and(|n| names.contains(&n)));
        Ok(vms)
    }

    async fn get_value<T: serde::de::DeserializeOwned>(&self, path: &str) -> ProviderResult<T> {
        let response = self.call(|| HttpRequest::get(path)).await?;
        if !response.is_success() {
            return Err(api_error(&response));
        }
        unwrap_value(&response)
    }

    /// Fills in CPU and memory when the list left them unset (config unavailable): one
    /// `GET /rest/vcenter/vm/{vm}`, whose `Info` holds both.
    async fn complete(&self, mut vm: VmSummary) -> ProviderResult<VmSummary> {
        if vm.cpu_count.is_some() && vm.memory_size_mib.is_some() {
            return Ok(vm);
        }
        let id = path_segment(vm.vm.as_deref().unwrap_or_default());
        let info: VmInfo = self.get_value(&format!("/rest/vcenter/vm/{id}")).await?;
        vm.cpu_count = vm.cpu_count.or(info.cpu.and_then(|c| c.count));
        vm.memory_size_mib = vm.memory_size_mib.or(info.memory.and_then(|m| m.size_mib));
        Ok(vm)
    }

    /// `POST …/power/{start|stop|suspend}`; `already_in_desired_state` counts as success.
    async fn power(&self, vm: &str, operation: &str) -> ProviderResult<()> {
        let path = format!("/rest/vcenter/vm/{}/power/{operation}", path_segment(vm));
        // Resending is safe: a repeated operation gets `already_in_desired_state`.
        let response = self
            .call(|| HttpRequest::post(&path).idempotent(true))
            .await?;
        if response.is_success()
            || (response.status == 400
                && error_kind(&response).as_deref() == Some(ALREADY_IN_DESIRED_STATE))
        {
            return Ok(());
        }
        Err(api_error(&response))
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

    async fn patch(&self, path: &str, spec: Value) -> ProviderResult<()> {
        let body = json!({ "spec": spec });
        let response = self
            .call(|| HttpRequest::patch(path).json(body.clone()).idempotent(true))
            .await?;
        if response.is_success() {
            Ok(())
        } else {
            Err(api_error(&response))
        }
    }

    async fn set_hardware(
        &self,
        vm: &str,
        cpu: Option<i64>,
        memory: Option<i64>,
    ) -> ProviderResult<()> {
        let id = path_segment(vm);
        if let Some(count) = cpu {
            self.patch(
                &format!("/rest/vcenter/vm/{id}/hardware/cpu"),
                json!({ "count": count }),
            )
            .await?;
        }
        if let Some(size) = memory {
            self.patch(
                &format!("/rest/vcenter/vm/{id}/hardware/memory"),
                json!({ "size_MiB": size }),
            )
            .await?;
        }
        Ok(())
    }
}

fn parse_summaries(response: &HttpResponse) -> ProviderResult<Vec<VmSummary>> {
    unwrap_value(response)
}

/// Reads a `GET /rest/vcenter/vm` reply into live objects (before CPU and memory are filled
/// in for VMs whose list entry lacks them).
pub fn parse_vm_list(response: &HttpResponse) -> ProviderResult<Vec<LiveObject>> {
    Ok(parse_summaries(response)?
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
        let desired = request.spec;
        let live_power = live
            .get("power_state")
            .and_then(Value::as_str)
            .unwrap_or(POWERED_OFF)
            .to_string();
        let desired_power = desired.get("power_state").and_then(Value::as_str);
        let cpu =
            spec_int(desired, "cpu_count").filter(|c| Some(*c) != spec_int(live, "cpu_count"));
        let memory = spec_int(desired, "memory_size_MiB")
            .filter(|m| Some(*m) != spec_int(live, "memory_size_MiB"));

        if cpu.is_some() || memory.is_some() {
            if live_power != POWERED_OFF {
                if !request.allow_power_cycle {
                    return Err(ProviderError::Invalid(format!(
                        "`{name}` is {live_power}: changing `cpu_count` or `memory_size_MiB` needs a power cycle (stop, change, start); set `allow_power_cycle: true` or power the VM off first"
                    )));
                }
                self.power(vm, "stop").await?;
            }
            let changed = self.set_hardware(vm, cpu, memory).await;
            // Back to the declared state (or the one it had) even when the change failed.
            let target = desired_power.unwrap_or(live_power.as_str());
            let restored = self.power_to(vm, POWERED_OFF, target).await;
            changed?;
            restored?;
        } else if let Some(target) = desired_power {
            self.power_to(vm, &live_power, target).await?;
        }
        Ok(Outcome::Done {
            attributes: Attributes::from([("vm".to_string(), vm.to_string())]),
            secret: None,
        })
    }

    async fn delete(&self, request: &DeleteRequest<'_>) -> ProviderResult<Outcome> {
        Err(ProviderError::Invalid(format!(
            "`{}`: sextant never deletes virtual machines",
            request.address
        )))
    }

    async fn poll(&self, task: &TaskHandle) -> ProviderResult<TaskStatus> {
        Err(ProviderError::Invalid(format!(
            "vSphere changes finish synchronously; there is no task `{}` to poll",
            task.id
        )))
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
