//! VMware Cloud on AWS (`vmc.md`): the `Sddc` kind.
//!
//! Lists the org's SDDCs in one call (plus one read of the running tasks when any SDDC is
//! alive, to report what it is busy with) and normalizes each into the manifest's spec; creates
//! with a client-chosen `sddc_id` (so a create retried after a lost response never
//! duplicates); changes the primary cluster's host count and converts 1NODE SDDCs; deletes;
//! polls `Task`s. Every call carries a CSP access token in `csp-auth-token` ([`CspAuth`]).
//! Nothing is sent before the first operation: constructing the provider is offline.

use std::collections::HashMap;

use reqwest::header::HeaderName;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

use crate::model::kinds::sddc::{
    self, CONVERTED_HOSTS, DeploymentType, HostInstanceType, Sddc as SddcKind, SddcProvider,
    SddcSpec, SddcType, TypeChange, region_spelling,
};
use crate::model::{Connection, Kind};

use super::csp::CspAuth;
use super::http::{HttpClient, HttpRequest, HttpResponse, RetryRule, path_segment, truncate_body};
use super::{
    Attributes, CreateRequest, DeleteRequest, LiveObject, LiveStatus, Outcome, Provider,
    ProviderError, ProviderResult, TaskHandle, TaskStatus, UpdateRequest,
};

/// The header VMC reads the access token from (not `Authorization`).
const CSP_AUTH_TOKEN: HeaderName = HeaderName::from_static("csp-auth-token");

/// Part of the message VMC sends when a second mutation hits a busy SDDC (`vmc.md` §6).
const CONCURRENT_UPDATE: &str = "Concurrent update";

/// Cluster states during which hosts are being added or the cluster deployed.
const BUSY_CLUSTER_STATES: &[&str] = &["DEPLOYING", "ADDING_HOSTS"];

/// Host states of hosts on their way in or out.
const BUSY_HOST_STATES: &[&str] = &[
    "DEPLOYING",
    "INITIALIZING",
    "PROVISIONED",
    "ADDING_TO_VCENTER",
    "DELETING",
    "DELETING_FROM_VCENTER",
    "PENDING_CLOUD_DELETION",
];

/// The name of the primary cluster when the server names it (`vmc.md` §12, unverified).
const PRIMARY_CLUSTER_NAME: &str = "Cluster-1";

#[derive(serde::Deserialize, Default, Debug)]
#[serde(default)]
struct Organization {
    id: Option<String>,
    display_name: Option<String>,
    project_state: Option<String>,
}

#[derive(serde::Deserialize, Default, Debug)]
#[serde(default)]
struct Sddc {
    id: Option<String>,
    name: Option<String>,
    sddc_state: Option<String>,
    sddc_type: Option<String>,
    provider: Option<String>,
    account_link_state: Option<String>,
    resource_config: Option<ResourceConfig>,
    /// Creation time (vmc.md §2, the `Sddc` entity fields).
    created: Option<Value>,
    updated: Option<Value>,
    version: Option<Value>,
}

#[derive(serde::Deserialize, Default, Debug)]
#[serde(default)]
struct ResourceConfig {
    region: Option<String>,
    deployment_type: Option<String>,
    provider: Option<String>,
    sso_domain: Option<String>,
    skip_creating_vxlan: Option<bool>,
    vxlan_subnet: Option<String>,
    vpc_info: Option<VpcInfo>,
    sddc_size: Option<SddcSize>,
    clusters: Option<Vec<Cluster>>,
    vc_url: Option<String>,
    cloud_username: Option<String>,
    nsx_mgr_url: Option<String>,
}

#[derive(serde::Deserialize, Default, Debug)]
#[serde(default)]
struct VpcInfo {
    vpc_cidr: Option<String>,
}

#[derive(serde::Deserialize, Default, Debug)]
#[serde(default)]
struct SddcSize {
    size: Option<String>,
    vc_size: Option<String>,
}

#[derive(serde::Deserialize, Default, Debug)]
#[serde(default)]
struct Cluster {
    cluster_id: Option<String>,
    cluster_name: Option<String>,
    cluster_state: Option<String>,
    esx_host_list: Option<Vec<EsxHost>>,
    esx_host_info: Option<EsxHostInfo>,
}

#[derive(serde::Deserialize, Default, Debug)]
#[serde(default)]
struct EsxHost {
    esx_state: Option<String>,
    instance_type: Option<String>,
}

#[derive(serde::Deserialize, Default, Debug)]
#[serde(default)]
struct EsxHostInfo {
    instance_type: Option<String>,
}

#[derive(serde::Deserialize, Default, Debug)]
#[serde(default)]
struct Task {
    id: Option<String>,
    status: Option<String>,
    task_type: Option<String>,
    resource_id: Option<String>,
    progress_percent: Option<f64>,
    estimated_remaining_minutes: Option<f64>,
    error_message: Option<String>,
    customer_error_message: Option<String>,
    localized_error_message: Option<String>,
    service_errors: Option<Vec<ServiceError>>,
    start_time: Option<String>,
}

#[derive(serde::Deserialize, Default, Debug)]
#[serde(default)]
struct ServiceError {
    default_message: Option<String>,
}

/// `ErrorResponse` (`vmc.md` §6), plus the singular keys some servers use.
#[derive(serde::Deserialize, Default, Debug)]
#[serde(default)]
struct ErrorResponse {
    retryable: Option<bool>,
    error_code: Option<String>,
    error_messages: Option<Vec<String>>,
    error_message: Option<String>,
    message: Option<String>,
}

impl ErrorResponse {
    fn parse(body: &[u8]) -> Self {
        serde_json::from_slice(body).unwrap_or_default()
    }

    fn messages(&self) -> Vec<&str> {
        let mut messages: Vec<&str> = self
            .error_messages
            .iter()
            .flatten()
            .map(String::as_str)
            .collect();
        messages.extend(self.error_message.as_deref());
        messages.extend(self.message.as_deref());
        messages.retain(|m| !m.trim().is_empty());
        messages
    }
}

/// The server's message of an error response, with its `error_code`.
fn error_message(response: &HttpResponse) -> String {
    let error = ErrorResponse::parse(&response.body);
    let messages = error.messages();
    let mut message = if messages.is_empty() {
        truncate_body(&response.body)
    } else {
        messages.join("; ")
    };
    if let Some(code) = error.error_code.filter(|c| !c.is_empty()) {
        message = format!("{message} (error code `{code}`)");
    }
    message
}

fn api_error(response: &HttpResponse) -> ProviderError {
    response.error(error_message(response))
}

/// The server asked for a retry (`retryable: true`).
fn server_says_retry(response: &HttpResponse) -> bool {
    !response.is_success() && ErrorResponse::parse(&response.body).retryable == Some(true)
}

/// A mutation refused because another one is running on the SDDC: 409, or 400 "Concurrent
/// update on <SDDC-ID>…" (which of the two the service sends is unverified).
fn is_concurrent_update(response: &HttpResponse) -> bool {
    response.status == 409
        || (response.status == 400
            && ErrorResponse::parse(&response.body)
                .messages()
                .iter()
                .any(|m| m.contains(CONCURRENT_UPDATE)))
}

/// The id prefix of the stand-in task of a mutation refused as a concurrent update.
const RESEND_TASK_PREFIX: &str = "resend/";

/// A mutation VMC refused because another one runs on the SDDC. It is not waited for here:
/// the mutation is returned as a stand-in task, and each poll of it (the executor's loop
/// owns the delay between polls) sends it again until the SDDC accepts it; then polls follow
/// the server's own task.
#[derive(Clone, Debug)]
enum Resend {
    Waiting(HttpRequest),
    Sent(TaskHandle),
}

/// The provider for one `vmc` connection.
pub struct VmcProvider {
    connection: String,
    http: HttpClient,
    auth: CspAuth,
    configured_org: Option<String>,
    org: OnceCell<String>,
    /// Mutations refused as concurrent updates, by stand-in task id.
    resends: std::sync::Mutex<HashMap<String, Resend>>,
    resend_count: std::sync::atomic::AtomicU64,
}

impl VmcProvider {
    /// Builds the provider without contacting anything.
    pub fn new(connection: &Connection) -> ProviderResult<Self> {
        let http = HttpClient::new(&connection.name, &connection.config)?;
        super::http::warn_if_cleartext(&connection.name, &connection.config.csp_url);
        let auth = CspAuth::new(&connection.name, &connection.config, http.clone());
        Ok(Self {
            connection: connection.name.clone(),
            http,
            auth,
            configured_org: connection
                .config
                .org_id
                .clone()
                .filter(|org| !org.is_empty()),
            org: OnceCell::new(),
            resends: std::sync::Mutex::new(HashMap::new()),
            resend_count: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// Sends a request with the access token, re-exchanging it once on 401. Responses marked
    /// `retryable: true` are retried unless the request brings its own rule.
    async fn call(&self, build: impl Fn() -> HttpRequest) -> ProviderResult<HttpResponse> {
        self.auth
            .send(&self.http, |token| {
                let mut request = build();
                if request.retry_if.is_none() {
                    request = request.retry_if(RetryRule::new(server_says_retry));
                }
                request
                    .header(reqwest::header::ACCEPT, "application/json")
                    .secret_header(CSP_AUTH_TOKEN, token.clone())
            })
            .await
    }

    /// The org id: the configured one, else the only org the token sees.
    async fn org(&self) -> ProviderResult<&str> {
        self.org
            .get_or_try_init(|| async {
                if let Some(org) = &self.configured_org {
                    return Ok(org.clone());
                }
                let response = self.call(|| HttpRequest::get("/vmc/api/orgs")).await?;
                if !response.is_success() {
                    return Err(api_error(&response));
                }
                let orgs: Vec<Organization> = response.json()?;
                let orgs: Vec<Organization> = orgs
                    .into_iter()
                    .filter(|o| o.project_state.as_deref() != Some("DELETED") && o.id.is_some())
                    .collect();
                match orgs.as_slice() {
                    [only] => Ok(only.id.clone().unwrap_or_default()),
                    [] => Err(ProviderError::Config {
                        connection: self.connection.clone(),
                        message: "the API token sees no VMC org; check the token's org".to_string(),
                    }),
                    many => Err(ProviderError::Config {
                        connection: self.connection.clone(),
                        message: format!(
                            "the API token sees {} orgs ({}); set `org_id` to choose one",
                            many.len(),
                            many.iter()
                                .map(|o| format!(
                                    "`{}`{}",
                                    o.id.as_deref().unwrap_or_default(),
                                    o.display_name
                                        .as_deref()
                                        .map(|n| format!(" {n}"))
                                        .unwrap_or_default()
                                ))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    }),
                }
            })
            .await
            .map(String::as_str)
    }

    async fn org_path(&self, rest: &str) -> ProviderResult<String> {
        Ok(format!(
            "/vmc/api/orgs/{}{rest}",
            path_segment(self.org().await?)
        ))
    }

    /// GET one SDDC; `None` when it does not exist (404).
    async fn get_sddc(&self, sddc_id: &str) -> ProviderResult<Option<Sddc>> {
        let path = self
            .org_path(&format!("/sddcs/{}", path_segment(sddc_id)))
            .await?;
        let response = self.call(|| HttpRequest::get(&path)).await?;
        match response.status {
            404 | 410 => Ok(None),
            // An SDDC carries its admin passwords: a parse error never quotes the body.
            _ if response.is_success() => Ok(Some(response.json_redacted()?)),
            _ => Err(api_error(&response)),
        }
    }

    /// Running tasks (STARTED or CANCELING), newest first, optionally of one SDDC.
    async fn running_tasks(&self, sddc_id: Option<&str>) -> ProviderResult<Vec<Task>> {
        let path = self.org_path("/tasks").await?;
        let mut filter = "((status eq 'STARTED') or (status eq 'CANCELING'))".to_string();
        if let Some(id) = sddc_id {
            filter = format!("{filter} and (resource_id eq '{}')", id.replace('\'', "''"));
        }
        let mut response = self
            .call(|| HttpRequest::get(&path).query("$filter", filter.clone()))
            .await?;
        if response.status == 400 {
            // A server that does not take this `$filter` gets the plain list.
            tracing::debug!(connection = %self.connection, "task `$filter` refused; listing all tasks");
            response = self.call(|| HttpRequest::get(&path)).await?;
        }
        if !response.is_success() {
            return Err(api_error(&response));
        }
        let mut tasks: Vec<Task> = response.json()?;
        // Filter client-side too: a server that ignores `$filter` returns every task.
        tasks.retain(|t| {
            matches!(t.status.as_deref(), Some("STARTED" | "CANCELING"))
                && t.id.is_some()
                && sddc_id.is_none_or(|id| t.resource_id.as_deref() == Some(id))
        });
        tasks.sort_by(|a, b| b.start_time.cmp(&a.start_time));
        Ok(tasks)
    }

    /// The handle to wait on for an SDDC found busy: its running task, or (when none is
    /// visible) a handle that polls the SDDC's own state.
    async fn wait_handle(&self, sddc_id: &str) -> ProviderResult<TaskHandle> {
        let task = self.running_tasks(Some(sddc_id)).await?.into_iter().next();
        Ok(TaskHandle {
            kind: Kind::Sddc,
            id: task.and_then(|t| t.id).unwrap_or_default(),
            object_id: sddc_id.to_string(),
        })
    }

    /// Sends a mutation of an existing SDDC and returns its task. When the answer is lost
    /// (transport error, 502/503/504 after sending), the mutation may have started: look for
    /// a running task on the SDDC before reporting the failure.
    async fn mutate(
        &self,
        sddc_id: &str,
        build: impl Fn() -> HttpRequest,
    ) -> ProviderResult<Outcome> {
        let result = self.call(&build).await;
        if let Ok(response) = &result
            && is_concurrent_update(response)
        {
            return Ok(Outcome::Task(self.resend_later(sddc_id, build())));
        }
        let lost = match &result {
            Ok(response) if response.is_success() => {
                return Ok(Outcome::Task(task_handle(response, sddc_id)?));
            }
            Ok(response) => matches!(response.status, 502..=504),
            Err(ProviderError::Transport { .. }) => true,
            Err(_) => false,
        };
        if lost
            && let Ok(tasks) = self.running_tasks(Some(sddc_id)).await
            && let Some(id) = tasks.into_iter().find_map(|t| t.id)
        {
            tracing::debug!(connection = %self.connection, sddc = sddc_id, task = %id, "adopting the task of a mutation whose answer was lost");
            return Ok(Outcome::Task(TaskHandle {
                kind: Kind::Sddc,
                id,
                object_id: sddc_id.to_string(),
            }));
        }
        match result {
            Ok(response) => Err(api_error(&response)),
            Err(err) => Err(err),
        }
    }

    /// After a create failed or lost its answer: adopt the SDDC if the create reached the
    /// server (same client-chosen id and name), else `None`.
    async fn adopt_created(&self, sddc_id: &str, name: &str) -> ProviderResult<Option<Outcome>> {
        let Some(sddc) = self.get_sddc(sddc_id).await? else {
            return Ok(None);
        };
        let state = sddc.sddc_state.as_deref().unwrap_or_default();
        if state == "DELETED" {
            return Ok(None);
        }
        if sddc.name.as_deref() != Some(name) {
            return Err(ProviderError::Invalid(format!(
                "the SDDC id `{sddc_id}` chosen for `{name}` is already used by SDDC `{}`",
                sddc.name.as_deref().unwrap_or_default()
            )));
        }
        tracing::debug!(connection = %self.connection, sddc = sddc_id, state, "the create reached the server; adopting the SDDC");
        let live = normalize(sddc, None)?;
        match live.status {
            LiveStatus::Ready => Ok(Some(Outcome::Done {
                attributes: live.attributes,
                secret: None,
            })),
            LiveStatus::Failed { reason } => Err(ProviderError::Invalid(format!(
                "SDDC `{name}` (`{sddc_id}`) exists but {reason}"
            ))),
            _ => Ok(Some(Outcome::Task(self.wait_handle(sddc_id).await?))),
        }
    }

    /// Asks the server to cancel a task (`POST /tasks/{id}?action=cancel`; advisory: some
    /// tasks cannot be canceled). Returns the task's state after the request.
    pub async fn cancel_task(&self, task: &TaskHandle) -> ProviderResult<TaskStatus> {
        let path = self
            .org_path(&format!("/tasks/{}", path_segment(&task.id)))
            .await?;
        // Canceling twice is harmless.
        let response = self
            .call(|| {
                HttpRequest::post(&path)
                    .query("action", "cancel")
                    .idempotent(true)
            })
            .await?;
        task_status(&response, &task.id)
    }

    /// Keeps a mutation refused as a concurrent update for [`VmcProvider::poll_resend`].
    fn resend_later(&self, sddc_id: &str, request: HttpRequest) -> TaskHandle {
        let n = self
            .resend_count
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let id = format!("{RESEND_TASK_PREFIX}{sddc_id}/{n}");
        tracing::debug!(connection = %self.connection, sddc = sddc_id, "a mutation met a concurrent update; it is sent again when polled");
        self.resends().insert(id.clone(), Resend::Waiting(request));
        TaskHandle {
            kind: Kind::Sddc,
            id,
            object_id: sddc_id.to_string(),
        }
    }

    fn resends(&self) -> std::sync::MutexGuard<'_, HashMap<String, Resend>> {
        self.resends
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A poll of a refused mutation: sends it again (pending while the SDDC is still busy),
    /// or, once accepted, polls the server's task.
    async fn poll_resend(&self, task: &TaskHandle) -> ProviderResult<TaskStatus> {
        let pending = TaskStatus::Pending {
            progress: None,
            eta: None,
        };
        let resend = self.resends().get(&task.id).cloned();
        let request = match resend {
            None => {
                return Err(ProviderError::Invalid(format!(
                    "there is no refused mutation `{}` to send again",
                    task.id
                )));
            }
            Some(Resend::Sent(accepted)) => {
                let status = self.poll_server_task(&accepted).await?;
                if !matches!(status, TaskStatus::Pending { .. }) {
                    self.resends().remove(&task.id);
                }
                return Ok(status);
            }
            Some(Resend::Waiting(request)) => request,
        };
        let response = self.call(|| request.clone()).await?;
        if is_concurrent_update(&response) {
            return Ok(pending);
        }
        if response.is_success() {
            let accepted = task_handle(&response, &task.object_id)?;
            self.resends()
                .insert(task.id.clone(), Resend::Sent(accepted));
            return Ok(pending);
        }
        self.resends().remove(&task.id);
        // A delete of an SDDC that went away meanwhile is done.
        if request.method == reqwest::Method::DELETE && matches!(response.status, 404 | 410) {
            return Ok(TaskStatus::Done);
        }
        Err(api_error(&response))
    }

    /// `GET /tasks/{id}`, or the SDDC's own state for a handle without a task id.
    async fn poll_server_task(&self, task: &TaskHandle) -> ProviderResult<TaskStatus> {
        if task.id.is_empty() {
            return self.poll_sddc_state(&task.object_id).await;
        }
        let path = self
            .org_path(&format!("/tasks/{}", path_segment(&task.id)))
            .await?;
        let response = self.call(|| HttpRequest::get(&path)).await?;
        task_status(&response, &task.id)
    }

    async fn poll_sddc_state(&self, sddc_id: &str) -> ProviderResult<TaskStatus> {
        let Some(sddc) = self.get_sddc(sddc_id).await? else {
            return Ok(TaskStatus::Done);
        };
        Ok(match normalize(sddc, None)?.status {
            LiveStatus::Ready | LiveStatus::Deleted => TaskStatus::Done,
            LiveStatus::Failed { reason } => TaskStatus::Failed(reason),
            LiveStatus::Busy { .. } => TaskStatus::Pending {
                progress: None,
                eta: None,
            },
        })
    }
}

/// What a `Task` reply says about the work.
pub fn task_status(response: &HttpResponse, id: &str) -> ProviderResult<TaskStatus> {
    if !response.is_success() {
        return Err(api_error(response));
    }
    let body: Task = response.json()?;
    match body.status.as_deref().unwrap_or_default() {
        "FINISHED" => Ok(TaskStatus::Done),
        "FAILED" | "CANCELED" => Ok(TaskStatus::Failed(task_failure(&body, id))),
        "" => Err(ProviderError::Protocol {
            method: response.method.to_string(),
            path: response.path.clone(),
            message: "the task has no `status`".to_string(),
        }),
        // STARTED, CANCELING and states this client does not know.
        _ => Ok(TaskStatus::Pending {
            progress: body
                .progress_percent
                .filter(|p| p.is_finite())
                .map(|p| p.clamp(0.0, 100.0) as u8),
            eta: body
                .estimated_remaining_minutes
                .filter(|m| *m >= 0.0)
                .and_then(|m| std::time::Duration::try_from_secs_f64(m * 60.0).ok()),
        }),
    }
}

/// The task a mutation's `Task` reply started.
pub fn task_handle(response: &HttpResponse, sddc_id: &str) -> ProviderResult<TaskHandle> {
    let task: Task = response.json()?;
    let id = task
        .id
        .filter(|id| !id.is_empty())
        .ok_or_else(|| ProviderError::Protocol {
            method: response.method.to_string(),
            path: response.path.clone(),
            message: "the reply is not a `Task` (no `id`)".to_string(),
        })?;
    Ok(TaskHandle {
        kind: Kind::Sddc,
        id,
        object_id: task
            .resource_id
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| sddc_id.to_string()),
    })
}

/// `SINGLE_AZ`/`SingleAZ` → `SingleAZ`; `MULTI_AZ`/`MultiAZ` → `MultiAZ`.
fn canonical_deployment_type(value: &str) -> String {
    match value.to_uppercase().replace('_', "").as_str() {
        "SINGLEAZ" => "SingleAZ".to_string(),
        "MULTIAZ" => "MultiAZ".to_string(),
        _ => value.to_string(),
    }
}

/// null, `""` and `DEFAULT` are the default type; `1NODE` stays.
fn canonical_sddc_type(value: Option<&str>) -> String {
    match value.map(str::trim) {
        None | Some("") => "DEFAULT".to_string(),
        Some(other) => other.to_uppercase(),
    }
}

fn primary_cluster(clusters: &[Cluster]) -> Option<&Cluster> {
    clusters
        .iter()
        .find(|c| c.cluster_name.as_deref() == Some(PRIMARY_CLUSTER_NAME))
        .or_else(|| clusters.first())
}

/// Turns a wire `Sddc` into what the planner sees. `task` is the running task on it, if known.
fn normalize(sddc: Sddc, task: Option<&Task>) -> ProviderResult<LiveObject> {
    let id = sddc.id.filter(|id| !id.is_empty()).ok_or_else(|| {
        ProviderError::Invalid("the server returned an SDDC without `id`".to_string())
    })?;
    let rc = sddc.resource_config.unwrap_or_default();
    let mut spec = Map::new();
    if let Some(region) = rc.region.as_deref().filter(|r| !r.is_empty()) {
        spec.insert("region".into(), json!(region_spelling(region)));
    }
    if let Some(provider) = sddc.provider.or(rc.provider).filter(|p| !p.is_empty()) {
        spec.insert("provider".into(), json!(provider.to_uppercase()));
    }
    // The link itself is never read back (`vmc.md` §4); a delayed one shows in
    // `account_link_state`, so an exported SDDC says what it was created with.
    if sddc.account_link_state.as_deref() == Some("DELAYED") {
        spec.insert("account_link".into(), json!({"delay": true}));
    }
    let clusters = rc.clusters.unwrap_or_default();
    let primary = primary_cluster(&clusters);
    if let Some(cluster) = primary {
        let hosts = cluster.esx_host_list.as_deref().unwrap_or_default();
        let count = hosts
            .iter()
            .filter(|h| h.esx_state.as_deref() != Some("DELETED"))
            .count();
        spec.insert("num_hosts".into(), json!(count));
        let instance_type = cluster
            .esx_host_info
            .as_ref()
            .and_then(|i| i.instance_type.clone())
            .or_else(|| hosts.iter().find_map(|h| h.instance_type.clone()))
            .filter(|t| !t.is_empty());
        if let Some(instance_type) = instance_type {
            spec.insert(
                "host_instance_type".into(),
                json!(instance_type.to_lowercase()),
            );
        }
    }
    spec.insert(
        "sddc_type".into(),
        json!(canonical_sddc_type(sddc.sddc_type.as_deref())),
    );
    if let Some(value) = rc.deployment_type.as_deref().filter(|v| !v.is_empty()) {
        spec.insert(
            "deployment_type".into(),
            json!(canonical_deployment_type(value)),
        );
    }
    if let Some(cidr) = rc
        .vpc_info
        .and_then(|v| v.vpc_cidr)
        .filter(|c| !c.is_empty())
    {
        spec.insert("vpc_cidr".into(), json!(cidr));
    }
    if let Some(subnet) = rc.vxlan_subnet.filter(|s| !s.is_empty()) {
        spec.insert("vxlan_subnet".into(), json!(subnet));
    }
    if let Some(skip) = rc.skip_creating_vxlan {
        spec.insert("skip_creating_vxlan".into(), json!(skip));
    }
    if let Some(domain) = rc.sso_domain.filter(|d| !d.is_empty()) {
        spec.insert("sso_domain".into(), json!(domain));
    }
    if let Some(size) = rc
        .sddc_size
        .and_then(|s| s.size.filter(|v| !v.is_empty()).or(s.vc_size))
        .filter(|s| !s.is_empty())
    {
        spec.insert("size".into(), json!(size.to_lowercase()));
    }

    let state = sddc.sddc_state.unwrap_or_default();
    let mut attributes = Attributes::default();
    attributes.insert("id".to_string(), id.clone());
    attributes.insert("sddc_state".to_string(), state.clone());
    if let Some(created) = sddc.created.as_ref().and_then(Value::as_str) {
        attributes.insert("created".to_string(), created.to_string());
    }
    for (key, value) in [
        ("vc_url", rc.vc_url),
        ("cloud_username", rc.cloud_username),
        ("nsx_mgr_url", rc.nsx_mgr_url),
    ] {
        if let Some(value) = value.filter(|v| !v.is_empty()) {
            attributes.insert(key.to_string(), value);
        }
    }

    let cluster_activity = clusters
        .iter()
        .filter_map(|c| c.cluster_state.as_deref())
        .find(|s| BUSY_CLUSTER_STATES.contains(s))
        .or_else(|| {
            primary
                .and_then(|c| c.esx_host_list.as_deref())
                .unwrap_or_default()
                .iter()
                .filter_map(|h| h.esx_state.as_deref())
                .find(|s| BUSY_HOST_STATES.contains(s))
        });
    let task_handle = task.and_then(|t| t.id.clone()).map(|task_id| TaskHandle {
        kind: Kind::Sddc,
        id: task_id,
        object_id: id.clone(),
    });
    let status = match state.as_str() {
        "DELETED" => LiveStatus::Deleted,
        "FAILED" | "CANCELED" => LiveStatus::Failed {
            reason: format!("its deployment is {state}"),
        },
        "READY" => match cluster_activity {
            Some(activity) => LiveStatus::Busy {
                task: task_handle,
                activity: activity.to_string(),
            },
            None if task_handle.is_some() => LiveStatus::Busy {
                task: task_handle,
                activity: task
                    .and_then(|t| t.task_type.clone())
                    .filter(|t| !t.is_empty())
                    .unwrap_or_else(|| "RUNNING_TASK".to_string()),
            },
            None => LiveStatus::Ready,
        },
        // DEPLOYING, DELETING, READY_FOR_GLCM_BRINGUP and states this client does not know.
        other => LiveStatus::Busy {
            task: task_handle,
            activity: if other.is_empty() { "UNKNOWN" } else { other }.to_string(),
        },
    };

    let spec = Value::Object(spec);
    let fingerprint = {
        let material = json!({
            "id": id,
            "state": state,
            "spec": spec,
            "version": sddc.version,
            "updated": sddc.updated,
        });
        let digest = Sha256::digest(material.to_string().as_bytes());
        hex::encode(&digest[..16])
    };
    Ok(LiveObject {
        kind: Kind::Sddc,
        name: sddc.name.unwrap_or_default(),
        id,
        spec: spec.into(),
        attributes,
        status,
        fingerprint,
    })
}

/// Reads an SDDC list reply. SDDCs carry their admin passwords: a parse error never quotes
/// the body.
fn parse_sddcs(response: &HttpResponse) -> ProviderResult<Vec<Sddc>> {
    response.json_redacted()
}

/// Reads an SDDC list reply into live objects, as `list` does when no task is running.
pub fn parse_sddc_list(response: &HttpResponse) -> ProviderResult<Vec<LiveObject>> {
    parse_sddcs(response)?
        .into_iter()
        .map(|sddc| normalize(sddc, None).map_err(|err| in_reply(response, err)))
        .collect()
}

/// An SDDC the reply holds but that cannot be used, reported against the request.
fn in_reply(response: &HttpResponse, err: ProviderError) -> ProviderError {
    match err {
        ProviderError::Invalid(message) => ProviderError::Protocol {
            method: response.method.to_string(),
            path: response.path.clone(),
            message: format!("{}: {message}", response.describe()),
        },
        other => other,
    }
}

/// Whether a task could be running on the SDDC (it is neither deleted nor failed).
fn is_alive(sddc: &Sddc) -> bool {
    !matches!(
        sddc.sddc_state.as_deref(),
        Some("DELETED" | "FAILED" | "CANCELED")
    )
}

/// `AwsSddcConfig`, the body of a create, in the vendor's spellings (`vmc.md` §3, fields in
/// the order this client has always sent them).
#[derive(serde::Serialize, Clone, Debug, PartialEq)]
struct AwsSddcConfig {
    name: String,
    /// Optional client-chosen id: a resent create is recognised (`vmc.md` §3).
    sddc_id: String,
    provider: &'static str,
    /// `US_WEST_2`, the VMC form (`vmc.md` §3).
    region: String,
    num_hosts: u32,
    /// Left out for the default type (`vmc.md` §3: null/`""` = default).
    #[serde(skip_serializing_if = "Option::is_none")]
    sddc_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    deployment_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    host_instance_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    vpc_cidr: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    vxlan_subnet: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sso_domain: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    size: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    skip_creating_vxlan: Option<bool>,
    account_link_config: AccountLinkConfig,
    #[serde(skip_serializing_if = "Option::is_none")]
    account_link_sddc_config: Option<[AccountLinkSddcConfig; 1]>,
}

/// `{"delay_account_link": bool}` (`vmc.md` §3).
#[derive(serde::Serialize, Clone, Debug, PartialEq)]
struct AccountLinkConfig {
    delay_account_link: bool,
}

/// One entry of `account_link_sddc_config` (`vmc.md` §3).
#[derive(serde::Serialize, Clone, Debug, PartialEq)]
struct AccountLinkSddcConfig {
    connected_account_id: String,
    customer_subnet_ids: Vec<String>,
}

/// The create body of a desired spec; `name` and `sddc_id` are left empty for the caller.
impl TryFrom<&SddcSpec> for AwsSddcConfig {
    type Error = &'static str;

    fn try_from(spec: &SddcSpec) -> Result<Self, Self::Error> {
        let non_empty = |text: &Option<String>| text.clone().filter(|t| !t.is_empty());
        if spec.region.is_empty() {
            return Err("region");
        }
        let link = spec.account_link.as_ref();
        let account_link_sddc_config =
            link.and_then(|l| non_empty(&l.connected_account_id))
                .map(|account| {
                    [AccountLinkSddcConfig {
                        connected_account_id: account,
                        customer_subnet_ids: link
                            .and_then(|l| l.customer_subnet_ids.clone())
                            .unwrap_or_default(),
                    }]
                });
        Ok(AwsSddcConfig {
            name: String::new(),
            sddc_id: String::new(),
            provider: spec.provider.map_or("AWS", provider_wire),
            region: region_spelling(&spec.region),
            num_hosts: spec.num_hosts,
            sddc_type: Some(sddc_type_wire(spec.sddc_type())).filter(|t| *t != "DEFAULT"),
            deployment_type: spec.deployment_type.map(deployment_type_wire),
            host_instance_type: spec.host_instance_type.map(host_instance_type_wire),
            vpc_cidr: non_empty(&spec.vpc_cidr),
            vxlan_subnet: non_empty(&spec.vxlan_subnet),
            sso_domain: non_empty(&spec.sso_domain),
            size: spec.size.map(size_wire),
            skip_creating_vxlan: spec.skip_creating_vxlan,
            account_link_config: AccountLinkConfig {
                delay_account_link: link.and_then(|l| l.delay).unwrap_or(false),
            },
            account_link_sddc_config,
        })
    }
}

/// The create body for SDDC `name` with the client-chosen `sddc_id`.
fn create_body(name: &str, spec: &SddcSpec, sddc_id: &str) -> ProviderResult<AwsSddcConfig> {
    let body = AwsSddcConfig::try_from(spec)
        .map_err(|field| ProviderError::Invalid(format!("SDDC `{name}` needs `{field}`")))?;
    Ok(AwsSddcConfig {
        name: name.to_string(),
        sddc_id: sddc_id.to_string(),
        ..body
    })
}

/// `provider` (`vmc.md` §3: `AWS` | `ZEROCLOUD`).
fn provider_wire(provider: SddcProvider) -> &'static str {
    match provider {
        SddcProvider::Aws => "AWS",
        SddcProvider::Zerocloud => "ZEROCLOUD",
    }
}

/// `sddc_type` (`vmc.md` §3: `1NODE`; `DEFAULT` also accepted): the manifest's spelling.
fn sddc_type_wire(sddc_type: SddcType) -> &'static str {
    sddc_type.as_str()
}

/// `deployment_type` as sent (`vmc.md` §3: `SingleAZ` | `MultiAZ`).
fn deployment_type_wire(deployment: DeploymentType) -> &'static str {
    if deployment.is_multi_az() {
        "MultiAZ"
    } else {
        "SingleAZ"
    }
}

/// `host_instance_type` (`vmc.md` §3, [SDK] `SddcConfig_HOST_INSTANCE_TYPE_*`).
fn host_instance_type_wire(instance: HostInstanceType) -> &'static str {
    match instance {
        HostInstanceType::I3 => "i3.metal",
        HostInstanceType::I3en => "i3en.metal",
        HostInstanceType::I4i => "i4i.metal",
        HostInstanceType::C6i => "c6i.metal",
        HostInstanceType::M7i24 => "m7i.metal-24xl",
        HostInstanceType::M7i48 => "m7i.metal-48xl",
    }
}

/// `size` (`vmc.md` §3, [SDK] `SddcConfig_SIZE_*`).
fn size_wire(size: sddc::SddcSize) -> &'static str {
    match size {
        sddc::SddcSize::Medium => "medium",
        sddc::SddcSize::Large => "large",
    }
}

/// The message of a failed or canceled task.
fn task_failure(task: &Task, id: &str) -> String {
    let mut parts: Vec<String> = Vec::new();
    for message in [
        &task.error_message,
        &task.customer_error_message,
        &task.localized_error_message,
    ]
    .into_iter()
    .flatten()
    .chain(
        task.service_errors
            .iter()
            .flatten()
            .filter_map(|e| e.default_message.as_ref()),
    ) {
        let message = message.trim();
        if !message.is_empty() && !parts.iter().any(|p| p == message) {
            parts.push(message.to_string());
        }
    }
    let what = format!(
        "task `{id}`{} {}",
        task.task_type
            .as_deref()
            .map(|t| format!(" ({t})"))
            .unwrap_or_default(),
        if task.status.as_deref() == Some("CANCELED") {
            "was canceled"
        } else {
            "failed"
        }
    );
    if parts.is_empty() {
        what
    } else {
        format!("{what}: {}", parts.join("; "))
    }
}

fn spec_text<'a>(spec: &'a Value, key: &str) -> Option<&'a str> {
    spec.get(key).and_then(Value::as_str)
}

#[async_trait::async_trait]
impl Provider for VmcProvider {
    async fn credential_expiry(&self) -> ProviderResult<Option<chrono::DateTime<chrono::Utc>>> {
        self.auth.api_token_expiry().await
    }

    async fn list(&self, kind: Kind, _names: &[String]) -> ProviderResult<Vec<LiveObject>> {
        if kind != Kind::Sddc {
            return Err(ProviderError::Invalid(format!(
                "connection `{}` (vmc) does not manage `{kind}`",
                self.connection
            )));
        }
        let path = self.org_path("/sddcs").await?;
        // Deleted SDDCs too: the planner needs them to choose a fresh id for a re-create.
        let response = self
            .call(|| HttpRequest::get(&path).query("includeDeleted", "true"))
            .await?;
        if !response.is_success() {
            return Err(api_error(&response));
        }
        let sddcs = parse_sddcs(&response)?;
        let mut tasks: HashMap<String, Task> = HashMap::new();
        // One more read when an SDDC is alive: some tasks (a conversion) leave no trace in
        // the SDDC's own states, and a busy SDDC must never get a second mutation.
        if sddcs.iter().any(is_alive) {
            for task in self.running_tasks(None).await? {
                if let Some(resource) = task.resource_id.clone() {
                    tasks.entry(resource).or_insert(task);
                }
            }
        }
        sddcs
            .into_iter()
            .map(|sddc| {
                let task = sddc.id.as_ref().and_then(|id| tasks.get(id));
                normalize(sddc, task).map_err(|err| in_reply(&response, err))
            })
            .collect()
    }

    async fn create(&self, request: &CreateRequest<'_>) -> ProviderResult<Outcome> {
        let name = request.address.name.as_str();
        let sddc_id = request.idempotency_key.to_string();
        let body =
            serde_json::to_value(create_body(name, &request.typed::<SddcKind>()?, &sddc_id)?)
                .map_err(|err| ProviderError::Invalid(format!("SDDC `{name}`: {err}")))?;
        let path = self.org_path("/sddcs").await?;
        let result = self
            .call(|| {
                HttpRequest::post(&path)
                    .json(body.clone())
                    // The client-chosen `sddc_id` makes a resent create detectable.
                    .idempotent(true)
                    .retry_if(RetryRule::new(server_says_retry))
            })
            .await;
        match result {
            Ok(response) if response.is_success() => {
                Ok(Outcome::Task(task_handle(&response, &sddc_id)?))
            }
            Ok(response) => {
                // A resent create whose first attempt committed is refused as a duplicate.
                if matches!(response.status, 400 | 409 | 500..=599)
                    && let Some(outcome) = self.adopt_created(&sddc_id, name).await?
                {
                    return Ok(outcome);
                }
                Err(api_error(&response))
            }
            Err(err @ ProviderError::Transport { .. }) => {
                match self.adopt_created(&sddc_id, name).await {
                    Ok(Some(outcome)) => Ok(outcome),
                    _ => Err(err),
                }
            }
            Err(err) => Err(err),
        }
    }

    async fn update(&self, request: &UpdateRequest<'_>) -> ProviderResult<Outcome> {
        let name = &request.address.name;
        let sddc_id = request.live.id.as_str();
        // A rename (`previous_names`): `PATCH …/sddcs/{sddc}` `{"name": …}`, synchronous,
        // 200 `Sddc` (vmc.md §2 "rename SDDC", §7 `SddcPatchRequest`). Setting a name twice
        // is harmless, so a resent PATCH is safe.
        if request.live.name != *name {
            let path = self
                .org_path(&format!("/sddcs/{}", path_segment(sddc_id)))
                .await?;
            let response = self
                .call(|| HttpRequest::patch(&path).json(serde_json::json!({ "name": name })))
                .await?;
            if !response.is_success() {
                return Err(api_error(&response));
            }
            if request.changed.iter().all(|f| f == "name") {
                return Ok(Outcome::Done {
                    attributes: request.live.attributes.clone(),
                    secret: None,
                });
            }
        }
        if let Some(field) = request
            .changed
            .iter()
            .find(|f| !matches!(f.as_str(), "num_hosts" | "sddc_type" | "name"))
        {
            return Err(ProviderError::Invalid(format!(
                "`{field}` of SDDC `{name}` cannot change in place; the SDDC must be replaced"
            )));
        }
        let live = &request.live.spec.value();
        let desired = request.typed::<SddcKind>()?;
        let live_type = canonical_sddc_type(spec_text(live, "sddc_type"));
        let desired_num = i64::from(desired.num_hosts);
        let live_num = live.get("num_hosts").and_then(Value::as_i64);

        if request.changed.iter().any(|f| f == "sddc_type") {
            let desired_type = sddc_type_wire(desired.sddc_type());
            // The rule is the kind's (`TypeChange`), the one the planner classified with.
            match TypeChange::of(&live_type, desired_type, Some(u64::from(desired.num_hosts))) {
                TypeChange::Convert => {}
                TypeChange::Replace => {
                    return Err(ProviderError::Invalid(format!(
                        "`sddc_type` of SDDC `{name}` can change in place only from 1NODE to DEFAULT (not {live_type} to {desired_type}); the SDDC must be replaced"
                    )));
                }
                TypeChange::ReplaceForTwoHosts | TypeChange::WrongHosts => {
                    return Err(ProviderError::Invalid(format!(
                        "converting 1NODE SDDC `{name}` gives it {CONVERTED_HOSTS} hosts; declare `num_hosts: {CONVERTED_HOSTS}` and change the count in a later apply (2 hosts need a replacement)"
                    )));
                }
            }
            let path = self
                .org_path(&format!("/sddcs/{}/convert", path_segment(sddc_id)))
                .await?;
            return self.mutate(sddc_id, || HttpRequest::post(&path)).await;
        }

        let Some(have) = live_num else {
            return Err(ProviderError::Invalid(format!(
                "SDDC `{name}`: cannot change `num_hosts` without the live count"
            )));
        };
        let delta = desired_num - have;
        if delta == 0 {
            return Ok(Outcome::Done {
                attributes: request.live.attributes.clone(),
                secret: None,
            });
        }
        if live_type == "1NODE" {
            return Err(ProviderError::Invalid(format!(
                "1NODE SDDC `{name}` has exactly one host; set `sddc_type: DEFAULT` to convert it"
            )));
        }
        let multi_az = desired.deployment_type.is_some_and(|d| d.is_multi_az())
            || spec_text(live, "deployment_type")
                .is_some_and(|t| canonical_deployment_type(t) == "MultiAZ");
        if multi_az && delta % 2 != 0 {
            return Err(ProviderError::Invalid(format!(
                "MultiAZ SDDC `{name}`: hosts are added and removed in pairs across availability zones, but the change is {delta}"
            )));
        }
        let cluster_path = self
            .org_path(&format!("/sddcs/{}/primarycluster", path_segment(sddc_id)))
            .await?;
        let response = self.call(|| HttpRequest::get(&cluster_path)).await?;
        if !response.is_success() {
            return Err(api_error(&response));
        }
        let cluster: Cluster = response.json()?;
        let cluster_id = cluster
            .cluster_id
            .filter(|c| !c.is_empty())
            .ok_or_else(|| ProviderError::Protocol {
                method: "GET".to_string(),
                path: response.path.clone(),
                message: "the primary cluster has no `cluster_id`".to_string(),
            })?;
        let path = self
            .org_path(&format!("/sddcs/{}/esxs", path_segment(sddc_id)))
            .await?;
        let action = if delta > 0 { "add" } else { "remove" };
        let body = json!({ "num_hosts": delta.abs(), "cluster_id": cluster_id });
        self.mutate(sddc_id, || {
            HttpRequest::post(&path)
                .query("action", action)
                .json(body.clone())
        })
        .await
    }

    async fn delete(&self, request: &DeleteRequest<'_>) -> ProviderResult<Outcome> {
        let sddc_id = request.live.id.as_str();
        let path = self
            .org_path(&format!("/sddcs/{}", path_segment(sddc_id)))
            .await?;
        let response = self.call(|| HttpRequest::delete(&path)).await?;
        if is_concurrent_update(&response) {
            return Ok(Outcome::Task(
                self.resend_later(sddc_id, HttpRequest::delete(&path)),
            ));
        }
        if response.is_success() {
            return Ok(Outcome::Task(task_handle(&response, sddc_id)?));
        }
        if matches!(response.status, 404 | 410) {
            return Ok(Outcome::done());
        }
        // A resent DELETE whose first attempt committed finds the SDDC DELETING or DELETED.
        if response.status == 400 {
            match self.get_sddc(sddc_id).await? {
                None => return Ok(Outcome::done()),
                Some(sddc) => match sddc.sddc_state.as_deref() {
                    Some("DELETED") => return Ok(Outcome::done()),
                    Some("DELETING") => {
                        return Ok(Outcome::Task(self.wait_handle(sddc_id).await?));
                    }
                    _ => {}
                },
            }
        }
        Err(api_error(&response))
    }

    async fn poll(&self, task: &TaskHandle) -> ProviderResult<TaskStatus> {
        if task.id.starts_with(RESEND_TASK_PREFIX) {
            return self.poll_resend(task).await;
        }
        self.poll_server_task(task).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Value {
        json!({"id":"f46eda60","name":"sddc-1","org_id":"o","provider":"AWS","sddc_state":"READY",
            "sddc_type":null,"version":54,"updated":"2021-04-08T02:17:04.000000Z","unknown_field":{"x":1},
            "resource_config":{"provider":"AWS","region":"US_WEST_2","deployment_type":"SINGLE_AZ",
              "sso_domain":"vmc.local","skip_creating_vxlan":true,"vpc_info":{"vpc_cidr":"10.2.0.0/16"},
              "sddc_size":{"vc_size":"medium","nsx_size":"medium","size":"MEDIUM"},
              "vc_url":"https://vcenter.example/","cloud_username":"cloudadmin@vmc.local","cloud_password":"pw",
              "nsx_mgr_url":null,
              "clusters":[{"cluster_id":"c1","cluster_name":"Cluster-1","cluster_state":"READY",
                "esx_host_list":[{"esx_id":"e1","esx_state":"READY","instance_type":"i3.metal"},
                                 {"esx_id":"e2","esx_state":"READY","instance_type":"i3.metal"}]},
                {"cluster_id":"c2","cluster_name":"Cluster-2","cluster_state":"READY",
                "esx_host_list":[{"esx_id":"e3","esx_state":"READY","instance_type":"i4i.metal"}]}]}})
    }

    #[test]
    fn normalizes_into_the_canonical_spec() {
        let sddc: Sddc = serde_json::from_value(sample()).unwrap();
        let live = normalize(sddc, None).unwrap();
        assert_eq!(
            live.spec,
            json!({"region":"US_WEST_2","provider":"AWS","num_hosts":2,"host_instance_type":"i3.metal",
                "sddc_type":"DEFAULT","deployment_type":"SingleAZ","vpc_cidr":"10.2.0.0/16",
                "skip_creating_vxlan":true,"sso_domain":"vmc.local","size":"medium"})
        );
        assert_eq!(live.status, LiveStatus::Ready);
        assert_eq!(live.attributes["vc_url"], "https://vcenter.example/");
        assert!(!live.attributes.contains_key("nsx_mgr_url"));
        assert!(!format!("{live:?}").contains("\"pw\""));
    }

    #[test]
    fn states_map_to_statuses() {
        for (state, expected) in [
            ("DELETED", "deleted"),
            ("FAILED", "failed"),
            ("CANCELED", "failed"),
            ("DEPLOYING", "busy"),
            ("DELETING", "busy"),
        ] {
            let mut value = sample();
            value["sddc_state"] = json!(state);
            let live = normalize(serde_json::from_value(value).unwrap(), None).unwrap();
            let got = match live.status {
                LiveStatus::Ready => "ready",
                LiveStatus::Busy { .. } => "busy",
                LiveStatus::Failed { .. } => "failed",
                LiveStatus::Deleted => "deleted",
            };
            assert_eq!(got, expected, "{state}");
        }
        let mut adding = sample();
        adding["resource_config"]["clusters"][0]["cluster_state"] = json!("ADDING_HOSTS");
        let live = normalize(serde_json::from_value(adding).unwrap(), None).unwrap();
        assert!(
            matches!(live.status, LiveStatus::Busy { ref activity, .. } if activity == "ADDING_HOSTS")
        );
    }

    #[test]
    fn fingerprint_follows_changes() {
        let a = normalize(serde_json::from_value(sample()).unwrap(), None).unwrap();
        let mut changed = sample();
        changed["version"] = json!(55);
        let b = normalize(serde_json::from_value(changed).unwrap(), None).unwrap();
        let again = normalize(serde_json::from_value(sample()).unwrap(), None).unwrap();
        assert_ne!(a.fingerprint, b.fingerprint);
        assert_eq!(a.fingerprint, again.fingerprint);
    }

    #[test]
    fn create_body_uses_vendor_spellings() {
        let body = |name: &str, spec: Value, id: &str| {
            let spec: SddcSpec = serde_json::from_value(spec).unwrap();
            create_body(name, &spec, id).map(|b| serde_json::to_value(b).unwrap())
        };
        let spec = json!({"region":"us-west-2","num_hosts":1,"sddc_type":"1NODE","deployment_type":"SINGLE_AZ",
            "size":"medium","vpc_cidr":"10.2.0.0/16",
            "account_link":{"delay":false,"connected_account_id":"acc","customer_subnet_ids":["subnet-1"]}});
        assert_eq!(
            body("s1", spec, "id-1").unwrap().to_string(),
            json!({"name":"s1","sddc_id":"id-1","provider":"AWS","region":"US_WEST_2","num_hosts":1,
                "sddc_type":"1NODE","deployment_type":"SingleAZ","vpc_cidr":"10.2.0.0/16","size":"medium",
                "account_link_config":{"delay_account_link":false},
                "account_link_sddc_config":[{"connected_account_id":"acc","customer_subnet_ids":["subnet-1"]}]})
            .to_string()
        );
        let default_type = body(
            "s2",
            json!({"region":"US_WEST_2","num_hosts":2,"sddc_type":"DEFAULT","provider":"ZEROCLOUD",
                "host_instance_type":"m7i.metal-24xl","deployment_type":"MULTI_AZ","size":"large"}),
            "id-2",
        )
        .unwrap();
        assert!(default_type.get("sddc_type").is_none());
        assert_eq!(default_type["provider"], "ZEROCLOUD");
        assert_eq!(default_type["host_instance_type"], "m7i.metal-24xl");
        assert_eq!(default_type["deployment_type"], "MultiAZ");
        assert_eq!(default_type["size"], "large");
        assert_eq!(
            default_type["account_link_config"],
            json!({"delay_account_link": false})
        );
        assert!(default_type.get("account_link_sddc_config").is_none());
        assert!(body("s3", json!({"region":"","num_hosts":2}), "id-3").is_err());
    }

    #[test]
    fn task_failure_collects_the_server_messages() {
        let task: Task = serde_json::from_value(
            json!({"id":"t","status":"FAILED","task_type":"SDDC-PROVISION",
            "error_message":"boom","customer_error_message":"boom",
            "service_errors":[{"default_message":"no capacity"}]}),
        )
        .unwrap();
        assert_eq!(
            task_failure(&task, "t"),
            "task `t` (SDDC-PROVISION) failed: boom; no capacity"
        );
    }
}
