//! The simulated VMware Cloud on AWS console API (`vmc.md`): orgs, SDDCs, hosts on the
//! primary cluster, 1NODE conversion and Tasks.
//!
//! Long-running work is a [`TaskRecord`] holding its start time and simulated duration; its
//! progress and the SDDC's state are worked out from the simulated clock whenever the state
//! is touched ([`VmcState::settle`]), so no background ticker exists. Access tokens come from
//! the simulated CSP ([`super::csp::CspState::validate_access_token`]).

#![allow(
    clippy::result_large_err,
    reason = "handlers short-circuit with the finished HTTP response; it is built once per request"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, Query};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use ipnet::Ipv4Net;
use serde_json::{Value, json};

use super::SimRef;
use super::csp::TokenProblem;

/// Regions the simulator accepts (the real list comes from provision-spec; unverified).
pub const REGIONS: &[&str] = &[
    "US_EAST_1",
    "US_EAST_2",
    "US_WEST_1",
    "US_WEST_2",
    "CA_CENTRAL_1",
    "SA_EAST_1",
    "EU_WEST_1",
    "EU_WEST_2",
    "EU_WEST_3",
    "EU_CENTRAL_1",
    "EU_NORTH_1",
    "EU_SOUTH_1",
    "AP_SOUTH_1",
    "AP_SOUTHEAST_1",
    "AP_SOUTHEAST_2",
    "AP_NORTHEAST_1",
    "AP_NORTHEAST_2",
    "AP_NORTHEAST_3",
    "AF_SOUTH_1",
    "ME_SOUTH_1",
    "US_GOV_WEST_1",
    "US_GOV_EAST_1",
];
/// Deployable host types (`r5.metal` is listed but no longer deployable).
pub const HOST_INSTANCE_TYPES: &[&str] = &[
    "i3.metal",
    "i3en.metal",
    "i4i.metal",
    "c6i.metal",
    "m7i.metal-24xl",
    "m7i.metal-48xl",
];
pub const DEFAULT_HOST_INSTANCE_TYPE: &str = "i4i.metal";
pub const SIZES: &[&str] = &["nsx_small", "medium", "large", "nsx_large"];
/// Most hosts in one cluster (terraform-provider-vmc `MaxHosts`; API maximum unverified).
pub const MAX_HOSTS: u32 = 16;
/// Most hosts a 1NODE SDDC may be asked for (#149's message).
pub const MAX_HOSTS_1NODE: u32 = 4;
/// A single-host SDDC expires this many days after creation (provision-spec `expiry_in_days`).
pub const ONE_NODE_EXPIRY_DAYS: i64 = 60;
/// Primary cluster name (unverified).
pub const PRIMARY_CLUSTER_NAME: &str = "Cluster-1";
/// Task types; only the first two are observed, the others are named guesses (unverified).
pub const TASK_TYPE_CREATE: &str = "SDDC-PROVISION";
pub const TASK_TYPE_DELETE: &str = "SDDC-DELETE";
pub const TASK_TYPE_ADD_HOSTS: &str = "ESX-PROVISION";
pub const TASK_TYPE_REMOVE_HOSTS: &str = "ESX-DELETE";
pub const TASK_TYPE_CONVERT: &str = "SDDC-CONVERT";

/// Simulated durations in seconds (`vmc.md` §5, §8: create ≈ 2 h, ZEROCLOUD ≈ 100 s).
const CREATE_SECS: i64 = 121 * 60;
const DELETE_SECS: i64 = 45 * 60;
const ADD_HOSTS_SECS: i64 = 40 * 60;
const REMOVE_HOSTS_SECS: i64 = 25 * 60;
const CONVERT_SECS: i64 = 90 * 60;
const ZEROCLOUD_CREATE_SECS: i64 = 100;
const ZEROCLOUD_OTHER_SECS: i64 = 60;
/// How long CANCELING lasts before CANCELED.
const CANCEL_SECS: i64 = 120;

const SIM_USER_ID: &str = "5e0f9a2c-3b1d-4e6a-8c7f-2d9b4a1e6c30";
const SIM_USER_NAME: &str = "sim-user@example.com";

/// An organization.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct OrgRecord {
    pub id: String,
    pub name: String,
    pub display_name: String,
    pub created: DateTime<Utc>,
}

/// One ESX host of the primary cluster.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct EsxRecord {
    pub esx_id: String,
    pub name: String,
    pub availability_zone: String,
}

/// An SDDC as the simulator keeps it; rendered to the `Sddc` model on read. Its `Debug`
/// leaves out the cloud admin password.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub struct SddcRecord {
    pub id: String,
    pub org_id: String,
    pub name: String,
    pub provider: String,
    pub region: String,
    /// `SingleAZ` | `MultiAZ` as sent at create.
    pub deployment_type: String,
    pub sddc_type: Option<String>,
    pub size: String,
    pub host_instance_type: String,
    pub vpc_cidr: String,
    pub vxlan_subnet: Option<String>,
    pub skip_creating_vxlan: bool,
    pub sso_domain: String,
    pub delay_account_link: bool,
    /// DEPLOYING | READY | DELETING | DELETED | FAILED | CANCELED.
    pub sddc_state: String,
    pub cluster_id: String,
    /// DEPLOYING | ADDING_HOSTS | READY | FAILED.
    pub cluster_state: String,
    pub hosts: Vec<EsxRecord>,
    pub cloud_password: String,
    pub created: DateTime<Utc>,
    pub updated: DateTime<Utc>,
    pub version: i64,
    /// The task now running against this SDDC.
    pub active_task: Option<String>,
    /// The task that created it (returned again for a repeated `sddc_id` when configured).
    pub create_task: Option<String>,
}

impl std::fmt::Debug for SddcRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SddcRecord")
            .field("id", &self.id)
            .field("org_id", &self.org_id)
            .field("name", &self.name)
            .field("provider", &self.provider)
            .field("region", &self.region)
            .field("sddc_state", &self.sddc_state)
            .field("sddc_type", &self.sddc_type)
            .field("hosts", &self.hosts.len())
            .field("active_task", &self.active_task)
            .finish_non_exhaustive()
    }
}

/// What a task does when it ends.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TaskKind {
    Create,
    Delete,
    AddHosts {
        count: u32,
    },
    RemoveHosts {
        count: u32,
        /// Hosts chosen by the client (`EsxConfig.esxs`); else the newest go.
        #[serde(default)]
        esx_ids: Vec<String>,
    },
    Convert {
        num_hosts: u32,
    },
}

/// A task as the simulator keeps it; progress is derived from the clock on read.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct TaskRecord {
    pub id: String,
    pub org_id: String,
    pub sddc_id: String,
    pub kind: TaskKind,
    pub task_type: String,
    pub start_time: DateTime<Utc>,
    /// Simulated seconds from start to FINISHED.
    pub duration_secs: i64,
    /// STARTED | CANCELING | FINISHED | FAILED | CANCELED.
    pub status: String,
    pub cancel_requested: Option<DateTime<Utc>>,
    pub end_time: Option<DateTime<Utc>>,
    pub error_message: Option<String>,
    pub params: Value,
    pub version: i64,
}

/// Everything the simulated VMC API holds.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct VmcState {
    pub orgs: BTreeMap<String, OrgRecord>,
    pub sddcs: BTreeMap<String, SddcRecord>,
    pub tasks: BTreeMap<String, TaskRecord>,
    /// Tasks still STARTED or CANCELING.
    pub active_tasks: BTreeSet<String>,
}

/// The `vmc` section of seed data.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VmcSeed {
    pub orgs: Vec<OrgSeed>,
    pub sddcs: Vec<SddcSeed>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrgSeed {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub display_name: Option<String>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SddcSeed {
    pub name: String,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub org_id: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub provider: Option<String>,
    #[serde(default)]
    pub num_hosts: Option<u32>,
    #[serde(default)]
    pub sddc_type: Option<String>,
    #[serde(default)]
    pub deployment_type: Option<String>,
    #[serde(default)]
    pub size: Option<String>,
    #[serde(default)]
    pub host_instance_type: Option<String>,
    #[serde(default)]
    pub vpc_cidr: Option<String>,
    #[serde(default)]
    pub sddc_state: Option<String>,
}

impl VmcState {
    /// One org (the CSP default org), no SDDCs.
    pub fn default_estate() -> Self {
        let mut state = Self::default();
        state.orgs.insert(
            super::csp::DEFAULT_ORG_ID.to_owned(),
            OrgRecord {
                id: super::csp::DEFAULT_ORG_ID.to_owned(),
                name: "sextant-demo".to_owned(),
                display_name: "Sextant Demo".to_owned(),
                created: DateTime::parse_from_rfc3339("2024-03-01T09:00:00Z")
                    .map(|t| t.with_timezone(&Utc))
                    .unwrap_or_default(),
            },
        );
        state
    }

    pub fn from_seed(seed: VmcSeed, csp_org: &str, now: DateTime<Utc>) -> Result<Self, String> {
        let mut state = Self::default();
        for org in seed.orgs {
            state.orgs.insert(
                org.id.clone(),
                OrgRecord {
                    display_name: org.display_name.unwrap_or_else(|| org.name.clone()),
                    id: org.id,
                    name: org.name,
                    created: now,
                },
            );
        }
        if state.orgs.is_empty() {
            let mut default = Self::default_estate();
            if let Some(mut org) = default.orgs.remove(super::csp::DEFAULT_ORG_ID) {
                org.id = csp_org.to_owned();
                state.orgs.insert(org.id.clone(), org);
            }
        }
        for sddc in seed.sddcs {
            let org_id = sddc.org_id.unwrap_or_else(|| csp_org.to_owned());
            if !state.orgs.contains_key(&org_id) {
                return Err(format!("SDDC `{}` names unknown org `{org_id}`", sddc.name));
            }
            let request = CreateRequest {
                name: Some(sddc.name.clone()),
                num_hosts: Some(i64::from(sddc.num_hosts.unwrap_or(2))),
                provider: Some(sddc.provider.unwrap_or_else(|| "AWS".to_owned())),
                region: Some(sddc.region.unwrap_or_else(|| "US_WEST_2".to_owned())),
                sddc_type: sddc.sddc_type,
                deployment_type: sddc.deployment_type,
                size: sddc.size,
                host_instance_type: sddc.host_instance_type,
                vpc_cidr: sddc.vpc_cidr,
                sddc_id: sddc.id,
                // A seeded SDDC exists already, its AWS account linked.
                account_link_sddc_config: Some(vec![AccountLinkSddcConfig {
                    connected_account_id: Some("seeded".to_owned()),
                    customer_subnet_ids: Some(vec!["seeded-a".to_owned(), "seeded-b".to_owned()]),
                }]),
                ..CreateRequest::default()
            };
            let valid = validate_create(&request, &state)
                .map_err(|(_, message)| format!("SDDC `{}`: {message}", sddc.name))?;
            let mut record = new_sddc(valid, &org_id, now);
            record.sddc_state = sddc.sddc_state.unwrap_or_else(|| "READY".to_owned());
            record.cluster_state = "READY".to_owned();
            state.sddcs.insert(record.id.clone(), record);
        }
        Ok(state)
    }

    /// Ends every task whose time has come and applies its effect; returns whether anything
    /// changed. `faults` decides which SDDCs' tasks fail or get canceled.
    pub fn settle(&mut self, now: DateTime<Utc>, faults: &super::admin::Faults) -> bool {
        let mut changed = false;
        let active: Vec<String> = self.active_tasks.iter().cloned().collect();
        for task_id in active {
            let Some(task) = self.tasks.get(&task_id) else {
                self.active_tasks.remove(&task_id);
                changed = true;
                continue;
            };
            let sddc_named = |set: &BTreeSet<String>| {
                set.contains(&task.sddc_id)
                    || self
                        .sddcs
                        .get(&task.sddc_id)
                        .is_some_and(|s| set.contains(&s.name))
            };
            let fail = sddc_named(&faults.fail_sddc_tasks);
            let cancel = sddc_named(&faults.cancel_sddc_tasks);
            let ends_at = match (task.status.as_str(), task.cancel_requested) {
                ("CANCELING", Some(requested)) => {
                    requested + chrono::Duration::seconds(CANCEL_SECS)
                }
                _ => task.start_time + chrono::Duration::seconds(task.duration_secs),
            };
            if now < ends_at {
                continue;
            }
            let outcome = if task.status == "CANCELING" || cancel {
                "CANCELED"
            } else if fail {
                "FAILED"
            } else {
                "FINISHED"
            };
            self.finish_task(&task_id, outcome, ends_at);
            changed = true;
        }
        changed
    }

    fn finish_task(&mut self, task_id: &str, outcome: &str, at: DateTime<Utc>) {
        self.active_tasks.remove(task_id);
        let Some(task) = self.tasks.get_mut(task_id) else {
            return;
        };
        task.status = outcome.to_owned();
        task.end_time = Some(at);
        task.version += 1;
        if outcome == "FAILED" {
            task.error_message = Some(format!(
                "{} failed for SDDC {}: injected failure",
                task.task_type, task.sddc_id
            ));
        }
        let kind = task.kind.clone();
        let Some(sddc) = self.sddcs.get_mut(&task.sddc_id) else {
            return;
        };
        sddc.active_task = None;
        sddc.updated = at;
        sddc.version += 1;
        match (outcome, kind) {
            ("FAILED", _) => {
                sddc.sddc_state = "FAILED".to_owned();
                sddc.cluster_state = "FAILED".to_owned();
            }
            ("CANCELED", TaskKind::Create) => {
                sddc.sddc_state = "CANCELED".to_owned();
                sddc.cluster_state = "FAILED".to_owned();
            }
            ("CANCELED", _) => {
                sddc.sddc_state = "READY".to_owned();
                sddc.cluster_state = "READY".to_owned();
            }
            (_, TaskKind::Create) => {
                sddc.sddc_state = "READY".to_owned();
                sddc.cluster_state = "READY".to_owned();
            }
            (_, TaskKind::Delete) => {
                sddc.sddc_state = "DELETED".to_owned();
                sddc.cluster_state = "READY".to_owned();
                sddc.hosts.clear();
            }
            (_, TaskKind::AddHosts { count }) => {
                let zones = zones(&sddc.region, &sddc.deployment_type);
                let start = sddc.hosts.len();
                for i in 0..count as usize {
                    sddc.hosts
                        .push(new_host(start + i, &zones[(start + i) % zones.len()]));
                }
                sddc.cluster_state = "READY".to_owned();
            }
            (_, TaskKind::RemoveHosts { count, esx_ids }) => {
                if esx_ids.is_empty() {
                    let keep = sddc.hosts.len().saturating_sub(count as usize);
                    sddc.hosts.truncate(keep);
                } else {
                    sddc.hosts.retain(|h| !esx_ids.contains(&h.esx_id));
                }
                sddc.cluster_state = "READY".to_owned();
            }
            (_, TaskKind::Convert { num_hosts }) => {
                let zones = zones(&sddc.region, &sddc.deployment_type);
                while sddc.hosts.len() < num_hosts as usize {
                    let i = sddc.hosts.len();
                    sddc.hosts.push(new_host(i, &zones[i % zones.len()]));
                }
                sddc.sddc_type = Some("DEFAULT".to_owned());
                sddc.cluster_state = "READY".to_owned();
            }
        }
    }
}

fn zones(region: &str, deployment_type: &str) -> Vec<String> {
    let base = region.to_lowercase().replace('_', "-");
    if deployment_type == "MultiAZ" {
        vec![format!("{base}a"), format!("{base}b")]
    } else {
        vec![format!("{base}a")]
    }
}

fn new_host(index: usize, zone: &str) -> EsxRecord {
    let esx_id = uuid::Uuid::new_v4().to_string();
    EsxRecord {
        name: format!("esx-{}.sddc.vmwarevmc.com", index + 1),
        esx_id,
        availability_zone: zone.to_owned(),
    }
}

/// `YYYY-MM-DDTHH:MM:SS.ffffffZ`, as VMC writes timestamps.
fn ts(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// An `ErrorResponse` (`vmc.md` §6) with a code derived from the status.
pub fn error_response(status: StatusCode, path: &str, message: &str) -> Response {
    let code = match status.as_u16() {
        400 => "invalid_request",
        401 => "unauthenticated",
        403 => "unauthorized",
        404 => "not_found",
        409 => "concurrent_change",
        429 => "too_many_requests",
        503 => "service_unavailable",
        504 => "timed_out",
        _ => "internal_server_error",
    };
    let retryable = matches!(status.as_u16(), 429 | 503 | 504);
    vmc_error(status, path, code, message, retryable)
}

fn vmc_error(
    status: StatusCode,
    path: &str,
    code: &str,
    message: &str,
    retryable: bool,
) -> Response {
    let body = json!({
        "status": status.as_u16(),
        "path": path,
        "retryable": retryable,
        "error_code": code,
        "error_messages": [message],
    });
    (status, Json(body)).into_response()
}

type Reply = Result<Response, Response>;

fn bad_request(path: &str, message: &str) -> Response {
    error_response(StatusCode::BAD_REQUEST, path, message)
}

fn not_found(path: &str, what: &str) -> Response {
    error_response(StatusCode::NOT_FOUND, path, &format!("{what} not found"))
}

pub fn routes() -> Router<SimRef> {
    Router::new()
        .route("/vmc/api/orgs", get(list_orgs))
        .route("/vmc/api/orgs/{org}", get(get_org))
        .route(
            "/vmc/api/orgs/{org}/sddcs",
            get(list_sddcs).post(create_sddc),
        )
        .route(
            "/vmc/api/orgs/{org}/sddcs/provision-spec",
            get(provision_spec),
        )
        .route(
            "/vmc/api/orgs/{org}/sddcs/{sddc}",
            get(get_sddc).patch(patch_sddc).delete(delete_sddc),
        )
        .route("/vmc/api/orgs/{org}/sddcs/{sddc}/esxs", post(change_hosts))
        .route(
            "/vmc/api/orgs/{org}/sddcs/{sddc}/primarycluster",
            get(primary_cluster),
        )
        .route("/vmc/api/orgs/{org}/sddcs/{sddc}/convert", post(convert))
        .route("/vmc/api/orgs/{org}/tasks", get(list_tasks))
        .route(
            "/vmc/api/orgs/{org}/tasks/{task}",
            get(get_task).post(cancel_task),
        )
}

/// Everything a handler needs after the auth check: the locked state, the time, the path.
struct Call<'a> {
    sim: &'a SimRef,
    state: tokio::sync::MutexGuard<'a, super::SimState>,
    now: DateTime<Utc>,
    path: String,
    /// The org the token belongs to.
    token_org: String,
}

impl Call<'_> {
    fn vmc(&mut self) -> &mut VmcState {
        &mut self.state.vmc
    }

    /// Checks that `org` exists and the token may see it.
    fn org(&self, org: &str) -> Result<(), Response> {
        if org != self.token_org {
            return Err(error_response(
                StatusCode::FORBIDDEN,
                &self.path,
                &format!("The user is not authorized to access org {org}."),
            ));
        }
        if !self.state.vmc.orgs.contains_key(org) {
            return Err(not_found(&self.path, &format!("Org {org}")));
        }
        Ok(())
    }

    fn sddc(&self, org: &str, sddc: &str) -> Result<&SddcRecord, Response> {
        let record = self
            .state
            .vmc
            .sddcs
            .get(sddc)
            .filter(|s| s.org_id == org)
            .filter(|s| {
                !(s.sddc_state == "DELETED" && self.sim.options().vmc_deleted_sddc_not_found)
            });
        record.ok_or_else(|| not_found(&self.path, &format!("SDDC {sddc}")))
    }

    fn persist(&mut self) {
        self.sim.persist(&mut self.state);
    }
}

/// What every VMC handler takes from a request besides its path parameters and body: the
/// simulator, the headers (for `csp-auth-token`), the URI (error bodies name the path) and the
/// query pairs.
struct VmcRequest {
    sim: SimRef,
    headers: HeaderMap,
    uri: Uri,
    query: Vec<(String, String)>,
}

impl FromRequestParts<SimRef> for VmcRequest {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, sim: &SimRef) -> Result<Self, Response> {
        let Query(query) = Query::<Vec<(String, String)>>::from_request_parts(parts, sim)
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(VmcRequest {
            sim: sim.clone(),
            headers: parts.headers.clone(),
            uri: parts.uri.clone(),
            query,
        })
    }
}

impl VmcRequest {
    /// [`VmcRequest::begin`], then checks that `org` exists and the token may see it.
    async fn begin_in(&self, org: &str, known_query: &[&str]) -> Result<Call<'_>, Response> {
        let call = self.begin(known_query).await?;
        call.org(org)?;
        Ok(call)
    }

    /// Locks the state, checks `csp-auth-token`, settles due tasks and checks the query names.
    async fn begin(&self, known_query: &[&str]) -> Result<Call<'_>, Response> {
        let (sim, headers, query) = (&self.sim, &self.headers, &self.query);
        let path = self.uri.path().to_owned();
        let state = sim.state.lock().await;
        let now = sim.clock.now();
        let token = access_token(headers);
        let token_org = match token.map(|t| state.csp.validate_access_token(t, now)) {
            Some(Ok(issued)) => issued.org_id.clone(),
            Some(Err(TokenProblem::Expired)) => {
                return Err(unauthenticated(sim, &path, "The access token has expired."));
            }
            Some(Err(TokenProblem::Unknown)) | None => {
                return Err(unauthenticated(
                    sim,
                    &path,
                    "Authentication required: a valid csp-auth-token (or Authorization: Bearer) header is missing.",
                ));
            }
        };
        if sim.options().vmc_strict_query
            && let Some((name, _)) = query
                .iter()
                .find(|(k, _)| !known_query.contains(&k.as_str()))
        {
            return Err(bad_request(
                &path,
                &format!("Unknown query parameter {name}."),
            ));
        }
        let faults = sim.admin.faults();
        let mut call = Call {
            sim,
            state,
            now,
            path,
            token_org,
        };
        if call.vmc().settle(now, &faults) {
            call.persist();
        }
        Ok(call)
    }
}

/// The CSP access token of a request: `csp-auth-token` (the Go SDK, terraform-provider-vmc)
/// or `Authorization: Bearer` (VMware's Python SDK, `vmware/vapi/vmc/csp_filter.py` through
/// `vmware/vapi/security/oauth.py`); `../shared/api/README.md`, "Corrections".
fn access_token(headers: &HeaderMap) -> Option<&str> {
    let csp = headers
        .get("csp-auth-token")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|t| !t.is_empty());
    csp.or_else(|| {
        let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
        let (scheme, token) = value.split_once(' ')?;
        Some(token.trim()).filter(|t| scheme.eq_ignore_ascii_case("bearer") && !t.is_empty())
    })
}

fn unauthenticated(sim: &SimRef, path: &str, message: &str) -> Response {
    let mut response = if sim.options().vmc_unauthenticated_body {
        vmc_error(
            StatusCode::UNAUTHORIZED,
            path,
            "unauthenticated",
            message,
            false,
        )
    } else {
        StatusCode::UNAUTHORIZED.into_response()
    };
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("csp-auth-token"),
    );
    response
}

fn query_value<'q>(query: &'q [(String, String)], name: &str) -> Option<&'q str> {
    query
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn query_bool(query: &[(String, String)], name: &str, path: &str) -> Result<bool, Response> {
    match query_value(query, name) {
        None => Ok(false),
        Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
        Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
        Some(v) => Err(bad_request(
            path,
            &format!("Invalid value {v} for query parameter {name}: expected true or false."),
        )),
    }
}

fn org_json(org: &OrgRecord) -> Value {
    json!({
        "id": org.id,
        "name": org.name,
        "display_name": org.display_name,
        "org_type": "CUSTOMER",
        "project_state": "CREATED",
        "properties": {"values": {}},
        "org_seller_info": null,
        "created": ts(org.created),
        "updated": ts(org.created),
        "version": 1,
        "user_id": SIM_USER_ID,
        "user_name": SIM_USER_NAME,
        "updated_by_user_id": SIM_USER_ID,
        "updated_by_user_name": SIM_USER_NAME,
    })
}

fn size_json(size: &str) -> Value {
    let (vc, nsx) = match size {
        "large" => ("large", "large"),
        "nsx_small" => ("medium", "small"),
        "nsx_large" => ("medium", "large"),
        _ => ("medium", "medium"),
    };
    json!({"vc_size": vc, "nsx_size": nsx, "size": size.to_uppercase()})
}

fn availability_type(deployment_type: &str) -> &'static str {
    if deployment_type == "MultiAZ" {
        "MULTI_AZ"
    } else {
        "SINGLE_AZ"
    }
}

fn cluster_json(sddc: &SddcRecord) -> Value {
    let esx_state = match sddc.sddc_state.as_str() {
        "DEPLOYING" => "DEPLOYING",
        "DELETING" => "DELETING",
        _ => "READY",
    };
    let hosts: Vec<Value> = sddc
        .hosts
        .iter()
        .map(|h| {
            json!({
                "esx_id": h.esx_id,
                "name": h.name,
                "hostname": h.name,
                "esx_state": esx_state,
                "instance_type": sddc.host_instance_type,
                "availability_zone": h.availability_zone,
                "provider": sddc.provider,
            })
        })
        .collect();
    json!({
        "cluster_id": sddc.cluster_id,
        "cluster_name": PRIMARY_CLUSTER_NAME,
        "cluster_state": sddc.cluster_state,
        "availability_type": availability_type(&sddc.deployment_type),
        "availability_zones": zones(&sddc.region, &sddc.deployment_type),
        "esx_host_list": hosts,
        "esx_host_info": {"instance_type": sddc.host_instance_type},
        "host_cpu_cores_count": 36,
        "msft_license_config": null,
        "vsan_version": "vsanesa",
    })
}

fn sddc_json(sddc: &SddcRecord) -> Value {
    let short = sddc.id.get(..8).unwrap_or(&sddc.id);
    json!({
        "id": sddc.id,
        "name": sddc.name,
        "org_id": sddc.org_id,
        "provider": sddc.provider,
        "sddc_state": sddc.sddc_state,
        "sddc_type": sddc.sddc_type,
        "sddc_access_state": "ENABLED",
        "account_link_state": if sddc.delay_account_link { "DELAYED" } else { "LINKED" },
        "expiration_date": (sddc.sddc_type.as_deref() == Some("1NODE"))
            .then(|| ts(sddc.created + chrono::Duration::days(ONE_NODE_EXPIRY_DAYS))),
        "version": sddc.version,
        "created": ts(sddc.created),
        "updated": ts(sddc.updated),
        "user_id": SIM_USER_ID,
        "user_name": SIM_USER_NAME,
        "updated_by_user_id": SIM_USER_ID,
        "updated_by_user_name": SIM_USER_NAME,
        "resource_config": {
            "provider": sddc.provider,
            "region": sddc.region,
            "availability_zones": zones(&sddc.region, &sddc.deployment_type),
            "deployment_type": availability_type(&sddc.deployment_type),
            "sso_domain": sddc.sso_domain,
            "skip_creating_vxlan": sddc.skip_creating_vxlan,
            "vxlan_subnet": sddc.vxlan_subnet,
            "vpc_info": {"vpc_cidr": sddc.vpc_cidr, "id": format!("vpc-{short}")},
            "sddc_size": size_json(&sddc.size),
            "vc_url": format!("https://vcenter.sddc-{short}.vmwarevmc.com/"),
            "cloud_username": format!("cloudadmin@{}", sddc.sso_domain),
            "cloud_password": sddc.cloud_password,
            "nsx_api_public_endpoint_url": format!("https://nsx-{short}.rp.vmwarevmc.com/vmc/reverse-proxy/api/orgs/{}/sddcs/{}/sks-nsxt-manager", sddc.org_id, sddc.id),
            "clusters": [cluster_json(sddc)],
            "esx_hosts": [],
            "sddc_id": sddc.id,
            "custom_properties": {},
        },
    })
}

const CREATE_PHASES: &[&str] = &[
    "VALIDATE_CONFIG",
    "DEPLOY_VPC",
    "DEPLOY_ESX",
    "DEPLOY_VCENTER",
    "DEPLOY_NSX",
    "CONFIGURE_SDDC",
];
const OTHER_PHASES: &[&str] = &["VALIDATE", "EXECUTE", "FINALIZE"];

fn task_json(task: &TaskRecord, now: DateTime<Utc>) -> Value {
    let duration = task.duration_secs.max(1);
    let progress_at = |t: DateTime<Utc>| {
        let elapsed = (t - task.start_time).num_seconds().clamp(0, duration);
        elapsed * 100 / duration
    };
    let (progress, remaining) = match task.status.as_str() {
        "STARTED" => {
            let p = progress_at(now).min(99);
            let left = (task.start_time + chrono::Duration::seconds(duration) - now)
                .num_seconds()
                .max(0);
            (p, (left + 59) / 60)
        }
        "CANCELING" => (
            progress_at(task.cancel_requested.unwrap_or(now)).min(99),
            -1,
        ),
        "FINISHED" => (100, 0),
        _ => (progress_at(task.end_time.unwrap_or(now)).min(99), 0),
    };
    let phases = if task.kind == TaskKind::Create {
        CREATE_PHASES
    } else {
        OTHER_PHASES
    };
    let current = usize::try_from(progress).unwrap_or(0) * phases.len() / 100;
    let phase_list: Vec<Value> = phases
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let pct = match i.cmp(&current) {
                std::cmp::Ordering::Less => 100,
                std::cmp::Ordering::Equal if task.status == "FINISHED" => 100,
                std::cmp::Ordering::Equal => {
                    let per = 100 / phases.len() as i64;
                    ((progress - per * i as i64) * 100 / per.max(1)).clamp(0, 99)
                }
                std::cmp::Ordering::Greater if task.status == "FINISHED" => 100,
                std::cmp::Ordering::Greater => 0,
            };
            json!({"id": name, "name": name, "progress_percent": pct})
        })
        .collect();
    let phase_in_progress = if task.status == "STARTED" {
        phases.get(current).copied().unwrap_or("")
    } else {
        ""
    };
    json!({
        "id": task.id,
        "status": task.status,
        "sub_status": task.status,
        "task_type": task.task_type,
        "resource_type": "sddc",
        "resource_id": task.sddc_id,
        "progress_percent": progress,
        "estimated_remaining_minutes": remaining,
        "phase_in_progress": phase_in_progress,
        "task_progress_phases": phase_list,
        "error_message": task.error_message,
        "localized_error_message": task.error_message,
        "customer_error_message": task.error_message,
        "service_errors": [],
        "start_time": ts(task.start_time),
        "end_time": task.end_time.map(ts),
        "parent_task_id": null,
        "correlation_id": null,
        "task_version": "20191024",
        "org_id": task.org_id,
        "org_type": "CUSTOMER",
        "params": task.params,
        "created": ts(task.start_time),
        "updated": ts(task.end_time.or(task.cancel_requested).unwrap_or(task.start_time)),
        "version": task.version,
        "user_id": SIM_USER_ID,
        "user_name": SIM_USER_NAME,
        "updated_by_user_id": SIM_USER_ID,
        "updated_by_user_name": SIM_USER_NAME,
    })
}

async fn list_orgs(request: VmcRequest) -> Reply {
    let call = request.begin(&[]).await?;
    let orgs: Vec<Value> = call
        .state
        .vmc
        .orgs
        .values()
        .filter(|o| o.id == call.token_org)
        .map(org_json)
        .collect();
    Ok(Json(orgs).into_response())
}

async fn get_org(Path(org): Path<String>, request: VmcRequest) -> Reply {
    let call = request.begin_in(&org, &[]).await?;
    let record = call.state.vmc.orgs.get(&org).map(org_json);
    record
        .map(|o| Json(o).into_response())
        .ok_or_else(|| not_found(&call.path, &format!("Org {org}")))
}

async fn list_sddcs(Path(org): Path<String>, request: VmcRequest) -> Reply {
    let call = request
        .begin_in(&org, &["includeDeleted", "$filter"])
        .await?;
    let include_deleted = query_bool(&request.query, "includeDeleted", &call.path)?;
    let filter = parse_filter_param(&request.query, &call.path)?;
    let sddcs: Vec<Value> = call
        .state
        .vmc
        .sddcs
        .values()
        .filter(|s| s.org_id == org && (include_deleted || s.sddc_state != "DELETED"))
        .map(sddc_json)
        .filter(|v| filter.as_ref().is_none_or(|f| f.matches(v)))
        .collect();
    Ok(Json(sddcs).into_response())
}

fn parse_filter_param(query: &[(String, String)], path: &str) -> Result<Option<Filter>, Response> {
    match query_value(query, "$filter") {
        None => Ok(None),
        Some(text) => Filter::parse(text)
            .map(Some)
            .map_err(|message| bad_request(path, &format!("Invalid $filter: {message}"))),
    }
}

async fn get_sddc(Path((org, sddc)): Path<(String, String)>, request: VmcRequest) -> Reply {
    let call = request.begin_in(&org, &[]).await?;
    Ok(Json(sddc_json(call.sddc(&org, &sddc)?)).into_response())
}

async fn primary_cluster(Path((org, sddc)): Path<(String, String)>, request: VmcRequest) -> Reply {
    let call = request.begin_in(&org, &[]).await?;
    let record = call.sddc(&org, &sddc)?;
    if record.sddc_state == "DELETED" {
        return Err(bad_request(&call.path, "The sddc has been deleted."));
    }
    Ok(Json(cluster_json(record)).into_response())
}

async fn provision_spec(Path(org): Path<String>, request: VmcRequest) -> Reply {
    request.begin_in(&org, &[]).await?;
    let region_names: serde_json::Map<String, Value> = REGIONS
        .iter()
        .map(|r| {
            (
                (*r).to_owned(),
                Value::String(r.replace('_', "-").to_lowercase()),
            )
        })
        .collect();
    let availability: serde_json::Map<String, Value> = REGIONS
        .iter()
        .map(|r| {
            let types: Vec<Value> = HOST_INSTANCE_TYPES
                .iter()
                .map(|t| {
                    json!({"instance_type": t, "display_name": t,
                           "hosts": (2..=MAX_HOSTS).collect::<Vec<_>>()})
                })
                .collect();
            ((*r).to_owned(), Value::Array(types))
        })
        .collect();
    Ok(Json(json!({
        "provider": {"AWS": {
            "region_display_names": region_names,
            "sddc_type_config_spec": {
                "DEFAULT": {"sddc_sizes": SIZES, "expiry_in_days": null, "availability": availability},
                "1NODE": {"sddc_sizes": ["medium"], "expiry_in_days": ONE_NODE_EXPIRY_DAYS, "availability": {}},
            },
        }},
    }))
    .into_response())
}

/// The create body fields the simulator reads (`AwsSddcConfig`); unknown fields are ignored.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct CreateRequest {
    name: Option<String>,
    num_hosts: Option<i64>,
    provider: Option<String>,
    region: Option<String>,
    sddc_type: Option<String>,
    deployment_type: Option<String>,
    host_instance_type: Option<String>,
    size: Option<String>,
    vpc_cidr: Option<String>,
    vxlan_subnet: Option<String>,
    skip_creating_vxlan: Option<bool>,
    sso_domain: Option<String>,
    sddc_id: Option<String>,
    sddc_template_id: Option<String>,
    account_link_config: Option<AccountLinkConfig>,
    account_link_sddc_config: Option<Vec<AccountLinkSddcConfig>>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct AccountLinkConfig {
    delay_account_link: Option<bool>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct AccountLinkSddcConfig {
    connected_account_id: Option<String>,
    customer_subnet_ids: Option<Vec<String>>,
}

/// The 400 message of an AWS create that neither links an account nor delays linking
/// (vmware/terraform-provider-vmc PR #215).
pub const INVALID_ACCOUNT_LINKING: &str = "Invalid account linking configuration: null";

/// An AWS SDDC is created with its account linked (a connected account and one customer
/// subnet, two for MultiAZ) or with `delay_account_link: true`; ZEROCLOUD needs neither
/// (`../shared/api/README.md`, "Corrections after the audit").
fn check_account_link(
    request: &CreateRequest,
    provider: &str,
    deployment_type: &str,
) -> Result<bool, String> {
    let delay = request
        .account_link_config
        .as_ref()
        .and_then(|c| c.delay_account_link)
        .unwrap_or(false);
    if provider != "AWS" || delay {
        return Ok(delay);
    }
    let Some(config) = request
        .account_link_sddc_config
        .as_deref()
        .and_then(<[_]>::first)
    else {
        return Err(INVALID_ACCOUNT_LINKING.to_owned());
    };
    if present(&config.connected_account_id).is_none() {
        return Err(INVALID_ACCOUNT_LINKING.to_owned());
    }
    // The count per layout is terraform-provider-vmc's check; the wording is ours.
    let needed = if deployment_type == "MultiAZ" { 2 } else { 1 };
    let given = config
        .customer_subnet_ids
        .iter()
        .flatten()
        .filter(|s| !s.trim().is_empty())
        .count();
    if given < needed {
        return Err(format!(
            "Invalid account linking configuration: a {deployment_type} SDDC needs {needed} customer subnet(s), {given} given."
        ));
    }
    Ok(false)
}

/// A create request that passed validation.
struct ValidCreate {
    id: String,
    name: String,
    num_hosts: u32,
    provider: String,
    region: String,
    sddc_type: Option<String>,
    deployment_type: String,
    host_instance_type: String,
    size: String,
    vpc_cidr: String,
    vxlan_subnet: Option<String>,
    skip_creating_vxlan: bool,
    sso_domain: String,
    delay_account_link: bool,
}

/// `""` counts as absent in create bodies (`vmc.md` §3).
fn present(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

fn validate_create(
    request: &CreateRequest,
    state: &VmcState,
) -> Result<ValidCreate, (StatusCode, String)> {
    let invalid = |m: String| Err((StatusCode::BAD_REQUEST, m));
    let Some(name) = present(&request.name) else {
        return invalid("The SDDC name is required.".to_owned());
    };
    let Some(num_hosts) = request.num_hosts else {
        return invalid("num_hosts is required.".to_owned());
    };
    let provider = match present(&request.provider) {
        Some(p @ ("AWS" | "ZEROCLOUD")) => p.to_owned(),
        Some(p) => return invalid(format!("Invalid provider {p}: expected AWS or ZEROCLOUD.")),
        None => return invalid("provider is required.".to_owned()),
    };
    let region = match present(&request.region) {
        Some(r) => r.to_uppercase().replace('-', "_"),
        None => return invalid("region is required.".to_owned()),
    };
    if !REGIONS.contains(&region.as_str()) {
        return invalid(format!(
            "Invalid region {region}: the region is not available."
        ));
    }
    let sddc_type = match present(&request.sddc_type) {
        None => None,
        Some(t @ ("1NODE" | "DEFAULT")) => Some(t.to_owned()),
        Some(t) => return invalid(format!("Invalid sddc_type {t}: expected 1NODE or DEFAULT.")),
    };
    let deployment_type = match present(&request.deployment_type) {
        None | Some("SingleAZ") => "SingleAZ".to_owned(),
        Some("MultiAZ") => "MultiAZ".to_owned(),
        Some(d) => {
            return invalid(format!(
                "Invalid deployment_type {d}: expected SingleAZ or MultiAZ."
            ));
        }
    };
    let one_node = sddc_type.as_deref() == Some("1NODE");
    if one_node {
        if num_hosts > i64::from(MAX_HOSTS_1NODE) {
            return invalid(format!(
                "Maximum host limit of {MAX_HOSTS_1NODE} hosts reached for the cluster."
            ));
        }
        if num_hosts != 1 {
            return invalid("A single host SDDC (1NODE) must have exactly 1 host.".to_owned());
        }
    } else {
        if num_hosts < 2 {
            return invalid("Sddc provisioning requires a minimum of 2 hosts.".to_owned());
        }
        if num_hosts > i64::from(MAX_HOSTS) {
            return invalid(format!(
                "Maximum host limit of {MAX_HOSTS} hosts reached for the cluster."
            ));
        }
    }
    if deployment_type == "MultiAZ" && num_hosts % 2 != 0 {
        return invalid(
            "A stretched cluster needs an even number of hosts across availability zones."
                .to_owned(),
        );
    }
    let host_instance_type = match present(&request.host_instance_type) {
        None => DEFAULT_HOST_INSTANCE_TYPE.to_owned(),
        Some("r5.metal") => {
            return invalid("Host instance type r5.metal is no longer available.".to_owned());
        }
        Some(t) if HOST_INSTANCE_TYPES.contains(&t) => t.to_owned(),
        Some(t) => return invalid(format!("Invalid host_instance_type {t}.")),
    };
    let size = match present(&request.size) {
        None => "medium".to_owned(),
        Some(s) if SIZES.contains(&s.to_lowercase().as_str()) => s.to_lowercase(),
        Some(s) => return invalid(format!("Invalid size {s}.")),
    };
    let vpc_cidr = match present(&request.vpc_cidr) {
        None => "10.2.0.0/16".to_owned(),
        Some(c) => {
            validate_management_cidr(c).map_err(|m| (StatusCode::BAD_REQUEST, m))?;
            c.to_owned()
        }
    };
    let delay_account_link = check_account_link(request, &provider, &deployment_type)
        .map_err(|m| (StatusCode::BAD_REQUEST, m))?;
    let id = match present(&request.sddc_id) {
        None => uuid::Uuid::new_v4().to_string(),
        Some(id) => match uuid::Uuid::parse_str(id) {
            Ok(parsed) => parsed.hyphenated().to_string(),
            Err(_) => return invalid(format!("Invalid sddc_id {id}: expected a UUID.")),
        },
    };
    if state.sddcs.contains_key(&id) {
        return Err((StatusCode::CONFLICT, id));
    }
    let num_hosts = u32::try_from(num_hosts).unwrap_or(1);
    Ok(ValidCreate {
        id,
        name: name.to_owned(),
        num_hosts,
        provider,
        region,
        sddc_type,
        deployment_type,
        host_instance_type,
        size,
        vpc_cidr,
        vxlan_subnet: present(&request.vxlan_subnet).map(str::to_owned),
        skip_creating_vxlan: request.skip_creating_vxlan.unwrap_or(true),
        sso_domain: present(&request.sso_domain)
            .unwrap_or("vmc.local")
            .to_owned(),
        delay_account_link,
    })
}

/// Management CIDR: a /16, /20 or /23 outside the reserved ranges (`vmc.md` §3).
fn validate_management_cidr(cidr: &str) -> Result<(), String> {
    let invalid = || format!("Invalid management CIDR {cidr}: expected a.b.c.d/16, /20 or /23.");
    let net: Ipv4Net = cidr.parse().map_err(|_| invalid())?;
    if ![16, 20, 23].contains(&net.prefix_len()) || net != net.trunc() {
        return Err(invalid());
    }
    let overlaps = |reserved: Ipv4Net| reserved.contains(&net) || net.contains(&reserved);
    if overlaps(Ipv4Net::new_assert(Ipv4Addr::new(10, 0, 0, 0), 15))
        || overlaps(Ipv4Net::new_assert(Ipv4Addr::new(172, 31, 0, 0), 16))
    {
        return Err(format!(
            "Invalid management CIDR {cidr}: 10.0.0.0/15 and 172.31.0.0/16 are reserved."
        ));
    }
    Ok(())
}

fn new_sddc(valid: ValidCreate, org: &str, now: DateTime<Utc>) -> SddcRecord {
    let zones = zones(&valid.region, &valid.deployment_type);
    let hosts = (0..valid.num_hosts as usize)
        .map(|i| new_host(i, &zones[i % zones.len()]))
        .collect();
    SddcRecord {
        id: valid.id,
        org_id: org.to_owned(),
        name: valid.name,
        provider: valid.provider,
        region: valid.region,
        deployment_type: valid.deployment_type,
        sddc_type: valid.sddc_type,
        size: valid.size,
        host_instance_type: valid.host_instance_type,
        vpc_cidr: valid.vpc_cidr,
        vxlan_subnet: valid.vxlan_subnet,
        skip_creating_vxlan: valid.skip_creating_vxlan,
        sso_domain: valid.sso_domain,
        delay_account_link: valid.delay_account_link,
        sddc_state: "DEPLOYING".to_owned(),
        cluster_id: uuid::Uuid::new_v4().to_string(),
        cluster_state: "DEPLOYING".to_owned(),
        hosts,
        cloud_password: uuid::Uuid::new_v4().simple().to_string(),
        created: now,
        updated: now,
        version: 1,
        active_task: None,
        create_task: None,
    }
}

fn duration_for(provider: &str, kind: &TaskKind) -> i64 {
    let zerocloud = provider == "ZEROCLOUD";
    match kind {
        TaskKind::Create if zerocloud => ZEROCLOUD_CREATE_SECS,
        _ if zerocloud => ZEROCLOUD_OTHER_SECS,
        TaskKind::Create => CREATE_SECS,
        TaskKind::Delete => DELETE_SECS,
        TaskKind::AddHosts { .. } => ADD_HOSTS_SECS,
        TaskKind::RemoveHosts { .. } => REMOVE_HOSTS_SECS,
        TaskKind::Convert { .. } => CONVERT_SECS,
    }
}

/// Starts a task against `sddc_id` and marks the SDDC busy.
fn start_task(
    vmc: &mut VmcState,
    sddc_id: &str,
    kind: TaskKind,
    params: Value,
    now: DateTime<Utc>,
) -> Option<Value> {
    let sddc = vmc.sddcs.get_mut(sddc_id)?;
    let task_type = match kind {
        TaskKind::Create => TASK_TYPE_CREATE,
        TaskKind::Delete => TASK_TYPE_DELETE,
        TaskKind::AddHosts { .. } => TASK_TYPE_ADD_HOSTS,
        TaskKind::RemoveHosts { .. } => TASK_TYPE_REMOVE_HOSTS,
        TaskKind::Convert { .. } => TASK_TYPE_CONVERT,
    };
    let task = TaskRecord {
        id: uuid::Uuid::new_v4().to_string(),
        org_id: sddc.org_id.clone(),
        sddc_id: sddc_id.to_owned(),
        duration_secs: duration_for(&sddc.provider, &kind),
        kind,
        task_type: task_type.to_owned(),
        start_time: now,
        status: "STARTED".to_owned(),
        cancel_requested: None,
        end_time: None,
        error_message: None,
        params,
        version: 1,
    };
    sddc.active_task = Some(task.id.clone());
    sddc.updated = now;
    sddc.version += 1;
    let body = task_json(&task, now);
    vmc.active_tasks.insert(task.id.clone());
    vmc.tasks.insert(task.id.clone(), task);
    Some(body)
}

fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8], path: &str) -> Result<T, Response> {
    serde_json::from_slice(body)
        .map_err(|err| bad_request(path, &format!("Invalid request body: {err}")))
}

/// 202 with the task just started.
fn accepted(task: Option<Value>) -> Response {
    (StatusCode::ACCEPTED, Json(task.unwrap_or(Value::Null))).into_response()
}

async fn create_sddc(Path(org): Path<String>, request: VmcRequest, body: Bytes) -> Reply {
    let mut call = request.begin_in(&org, &["validateOnly"]).await?;
    let validate_only = query_bool(&request.query, "validateOnly", &call.path)?;
    let spec: CreateRequest = parse_body(&body, &call.path)?;
    let valid = match validate_create(&spec, &call.state.vmc) {
        Ok(v) => v,
        Err((StatusCode::CONFLICT, id)) => {
            let existing = call.state.vmc.sddcs.get(&id);
            let same_task = existing
                .filter(|s| {
                    s.org_id == org && call.sim.options().vmc_duplicate_sddc_id_returns_task
                })
                .and_then(|s| s.create_task.as_ref())
                .and_then(|t| call.state.vmc.tasks.get(t));
            return match same_task {
                Some(task) => {
                    Ok((StatusCode::ACCEPTED, Json(task_json(task, call.now))).into_response())
                }
                None => Err(bad_request(
                    &call.path,
                    &format!("An SDDC with id {id} already exists."),
                )),
            };
        }
        Err((status, message)) => return Err(error_response(status, &call.path, &message)),
    };
    if validate_only {
        return Ok(StatusCode::OK.into_response());
    }
    let now = call.now;
    let record = new_sddc(valid, &org, now);
    let sddc_id = record.id.clone();
    let params = json!({"SDDC_CREATE_CONTEXT_PARAM": {"sddc_id": sddc_id, "name": record.name}});
    let vmc = call.vmc();
    vmc.sddcs.insert(sddc_id.clone(), record);
    let task = start_task(vmc, &sddc_id, TaskKind::Create, params, now);
    if let Some(sddc) = vmc.sddcs.get_mut(&sddc_id) {
        sddc.create_task = sddc.active_task.clone();
    }
    call.persist();
    Ok(accepted(task))
}

/// Rejects a mutation unless the SDDC is idle and in one of `states`.
fn check_mutable(
    call: &Call<'_>,
    org: &str,
    sddc: &str,
    states: &[&str],
    message: &str,
) -> Result<(), Response> {
    let record = call.sddc(org, sddc)?;
    if record.active_task.is_some() && record.sddc_state == "READY" {
        let status = StatusCode::from_u16(call.sim.options().vmc_concurrent_update_status)
            .unwrap_or(StatusCode::BAD_REQUEST);
        return Err(vmc_error(
            status,
            &call.path,
            "concurrent_change",
            &format!(
                "com.vmware.skyscraper.common.InternalSkyscraperException: Concurrent update on {sddc}, column name {{1}}. Try operation again."
            ),
            false,
        ));
    }
    if !states.contains(&record.sddc_state.as_str()) {
        return Err(bad_request(&call.path, message));
    }
    Ok(())
}

/// Rejects a host change or conversion unless the SDDC is idle and READY.
fn check_updatable(call: &Call<'_>, org: &str, sddc: &str) -> Result<(), Response> {
    check_mutable(
        call,
        org,
        sddc,
        &["READY"],
        "The sddc is not in a state that's valid for updates",
    )
}

async fn delete_sddc(Path((org, sddc)): Path<(String, String)>, request: VmcRequest) -> Reply {
    let known = ["retain_configuration", "template_name", "force"];
    let mut call = request.begin_in(&org, &known).await?;
    let retain = query_bool(&request.query, "retain_configuration", &call.path)?;
    query_bool(&request.query, "force", &call.path)?;
    check_mutable(
        &call,
        &org,
        &sddc,
        &["READY", "FAILED", "CANCELED"],
        "The sddc is not in a state that's valid for deletion",
    )?;
    let now = call.now;
    let vmc = call.vmc();
    let previous_state = vmc.sddcs.get(&sddc).map(|s| s.sddc_state.clone());
    let params = json!({"SDDC_DELETE_CONTEXT_PARAM": {
        "sddc_id": sddc, "retain_configuration": retain,
        "template_name": query_value(&request.query, "template_name"), "sddc_state": previous_state}});
    let task = start_task(vmc, &sddc, TaskKind::Delete, params, now);
    if let Some(record) = vmc.sddcs.get_mut(&sddc) {
        record.sddc_state = "DELETING".to_owned();
    }
    call.persist();
    Ok(accepted(task))
}

#[derive(serde::Deserialize)]
struct PatchRequest {
    name: Option<String>,
}

async fn patch_sddc(
    Path((org, sddc)): Path<(String, String)>,
    request: VmcRequest,
    body: Bytes,
) -> Reply {
    let mut call = request.begin_in(&org, &[]).await?;
    let spec: PatchRequest = parse_body(&body, &call.path)?;
    let Some(name) = present(&spec.name).map(str::to_owned) else {
        return Err(bad_request(&call.path, "The SDDC name is required."));
    };
    if call.sddc(&org, &sddc)?.sddc_state != "READY" {
        return Err(bad_request(&call.path, "SDDC cannot be patched"));
    }
    let now = call.now;
    let path = call.path.clone();
    let Some(record) = call.vmc().sddcs.get_mut(&sddc) else {
        return Err(not_found(&path, &format!("SDDC {sddc}")));
    };
    record.name = name;
    record.updated = now;
    record.version += 1;
    let body = sddc_json(record);
    call.persist();
    Ok(Json(body).into_response())
}

#[derive(serde::Deserialize)]
struct EsxConfig {
    num_hosts: i64,
    #[serde(default)]
    cluster_id: Option<String>,
    #[serde(default)]
    esxs: Option<Vec<String>>,
}

async fn change_hosts(
    Path((org, sddc)): Path<(String, String)>,
    request: VmcRequest,
    body: Bytes,
) -> Reply {
    let mut call = request.begin_in(&org, &["action"]).await?;
    let add = match query_value(&request.query, "action").unwrap_or("add") {
        "add" => true,
        "remove" => false,
        "force-remove" | "addToAll" | "removeFromAll" | "attach-diskgroup" | "detach-diskgroup" => {
            return Err(error_response(
                StatusCode::FORBIDDEN,
                &call.path,
                "The user is not authorized to perform this action.",
            ));
        }
        other => {
            return Err(bad_request(&call.path, &format!("Invalid action {other}.")));
        }
    };
    let spec: EsxConfig = parse_body(&body, &call.path)?;
    check_updatable(&call, &org, &sddc)?;
    let record = call.sddc(&org, &sddc)?;
    if let Some(cluster) = present(&spec.cluster_id)
        && cluster != record.cluster_id
    {
        return Err(not_found(&call.path, &format!("Cluster {cluster}")));
    }
    if spec.num_hosts < 1 {
        return Err(bad_request(&call.path, "num_hosts must be at least 1."));
    }
    let delta = u32::try_from(spec.num_hosts).unwrap_or(u32::MAX);
    if record.deployment_type == "MultiAZ" && delta % 2 != 0 {
        return Err(bad_request(
            &call.path,
            "Hosts must be added in pairs across availability zones.",
        ));
    }
    if record.sddc_type.as_deref() == Some("1NODE") {
        return Err(bad_request(
            &call.path,
            "Hosts cannot be added to or removed from a single host SDDC: convert it first.",
        ));
    }
    let current = u32::try_from(record.hosts.len()).unwrap_or(u32::MAX);
    let kind = if add {
        if current.saturating_add(delta) > MAX_HOSTS {
            return Err(bad_request(
                &call.path,
                &format!("Maximum host limit of {MAX_HOSTS} hosts reached for the cluster."),
            ));
        }
        TaskKind::AddHosts { count: delta }
    } else {
        if current.saturating_sub(delta) < 2 || delta >= current {
            return Err(bad_request(
                &call.path,
                "The cluster requires a minimum of 2 hosts.",
            ));
        }
        let chosen: Vec<String> = spec.esxs.clone().unwrap_or_default();
        if !chosen.is_empty() {
            if chosen.len() != delta as usize {
                return Err(bad_request(
                    &call.path,
                    "The number of hosts listed in esxs must equal num_hosts.",
                ));
            }
            if let Some(unknown) = chosen
                .iter()
                .find(|id| !record.hosts.iter().any(|h| &h.esx_id == *id))
            {
                return Err(not_found(&call.path, &format!("ESX host {unknown}")));
            }
        }
        TaskKind::RemoveHosts {
            count: delta,
            esx_ids: chosen,
        }
    };
    let now = call.now;
    let cluster_id = record.cluster_id.clone();
    let vmc = call.vmc();
    let params = json!({"ESX_CONTEXT_PARAM": {"sddc_id": sddc, "cluster_id": cluster_id, "num_hosts": delta, "action": if add {"add"} else {"remove"}}});
    let task = start_task(vmc, &sddc, kind, params, now);
    if let Some(record) = vmc.sddcs.get_mut(&sddc)
        && add
    {
        record.cluster_state = "ADDING_HOSTS".to_owned();
    }
    call.persist();
    Ok(accepted(task))
}

#[derive(Default, serde::Deserialize)]
#[serde(default)]
struct ConvertRequest {
    num_hosts: Option<i64>,
}

async fn convert(
    Path((org, sddc)): Path<(String, String)>,
    request: VmcRequest,
    body: Bytes,
) -> Reply {
    let mut call = request.begin_in(&org, &[]).await?;
    let spec: ConvertRequest = if body.iter().all(u8::is_ascii_whitespace) {
        ConvertRequest::default()
    } else {
        parse_body(&body, &call.path)?
    };
    check_updatable(&call, &org, &sddc)?;
    if call.sddc(&org, &sddc)?.sddc_type.as_deref() != Some("1NODE") {
        return Err(bad_request(
            &call.path,
            "Only a single host SDDC (1NODE) can be converted.",
        ));
    }
    let num_hosts = spec.num_hosts.unwrap_or(3);
    if !(3..=i64::from(MAX_HOSTS)).contains(&num_hosts) {
        return Err(bad_request(
            &call.path,
            &format!("num_hosts after conversion must be between 3 and {MAX_HOSTS}."),
        ));
    }
    let num_hosts = u32::try_from(num_hosts).unwrap_or(3);
    let now = call.now;
    let params = json!({"SDDC_CONVERT_CONTEXT_PARAM": {"sddc_id": sddc, "num_hosts": num_hosts}});
    let task = start_task(
        call.vmc(),
        &sddc,
        TaskKind::Convert { num_hosts },
        params,
        now,
    );
    call.persist();
    Ok(accepted(task))
}

async fn list_tasks(Path(org): Path<String>, request: VmcRequest) -> Reply {
    let call = request.begin_in(&org, &["$filter"]).await?;
    let filter = parse_filter_param(&request.query, &call.path)?;
    let tasks: Vec<Value> = call
        .state
        .vmc
        .tasks
        .values()
        .filter(|t| t.org_id == org)
        .map(|t| task_json(t, call.now))
        .filter(|v| filter.as_ref().is_none_or(|f| f.matches(v)))
        .collect();
    Ok(Json(tasks).into_response())
}

async fn get_task(Path((org, task)): Path<(String, String)>, request: VmcRequest) -> Reply {
    let call = request.begin_in(&org, &[]).await?;
    let record = call
        .state
        .vmc
        .tasks
        .get(&task)
        .filter(|t| t.org_id == org)
        .ok_or_else(|| not_found(&call.path, &format!("Task {task}")))?;
    Ok(Json(task_json(record, call.now)).into_response())
}

async fn cancel_task(Path((org, task)): Path<(String, String)>, request: VmcRequest) -> Reply {
    let mut call = request.begin_in(&org, &["action"]).await?;
    let now = call.now;
    let path = call.path.clone();
    let Some(record) = call.vmc().tasks.get_mut(&task).filter(|t| t.org_id == org) else {
        return Err(not_found(&path, &format!("Task {task}")));
    };
    if query_value(&request.query, "action") != Some("cancel") || record.status != "STARTED" {
        return Err(bad_request(&path, "Invalid action or bad argument"));
    }
    record.status = "CANCELING".to_owned();
    record.cancel_requested = Some(now);
    record.version += 1;
    let body = task_json(record, now);
    call.persist();
    Ok(Json(body).into_response())
}

/// A parsed `$filter`: comparisons on (dotted) fields joined by `and`/`or`/`not`.
#[derive(Debug, PartialEq)]
enum Filter {
    Compare {
        field: String,
        op: String,
        value: Value,
    },
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
}

impl Filter {
    fn parse(text: &str) -> Result<Filter, String> {
        let tokens = tokenize(text)?;
        let mut pos = 0;
        let filter = parse_or(&tokens, &mut pos)?;
        if pos != tokens.len() {
            return Err(format!(
                "unexpected `{}`",
                tokens.get(pos).map(String::as_str).unwrap_or_default()
            ));
        }
        Ok(filter)
    }

    fn matches(&self, object: &Value) -> bool {
        match self {
            Filter::And(a, b) => a.matches(object) && b.matches(object),
            Filter::Or(a, b) => a.matches(object) || b.matches(object),
            Filter::Not(a) => !a.matches(object),
            Filter::Compare { field, op, value } => {
                let actual = field
                    .split('.')
                    .try_fold(object, |v, key| v.get(key))
                    .unwrap_or(&Value::Null);
                let ordering = compare(actual, value);
                match op.as_str() {
                    "eq" => ordering == Some(std::cmp::Ordering::Equal),
                    "ne" => ordering != Some(std::cmp::Ordering::Equal),
                    "lt" => ordering == Some(std::cmp::Ordering::Less),
                    "gt" => ordering == Some(std::cmp::Ordering::Greater),
                    "le" => ordering.is_some_and(|o| o != std::cmp::Ordering::Greater),
                    "ge" => ordering.is_some_and(|o| o != std::cmp::Ordering::Less),
                    _ => false,
                }
            }
        }
    }
}

fn compare(actual: &Value, expected: &Value) -> Option<std::cmp::Ordering> {
    match (actual, expected) {
        (Value::Number(a), Value::Number(b)) => a.as_f64()?.partial_cmp(&b.as_f64()?),
        (Value::String(a), Value::String(b)) => Some(a.as_str().cmp(b.as_str())),
        (Value::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
        (Value::Null, Value::Null) => Some(std::cmp::Ordering::Equal),
        (Value::Number(a), Value::String(b)) => a.to_string().partial_cmp(b),
        _ => None,
    }
}

fn tokenize(text: &str) -> Result<Vec<String>, String> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '(' || c == ')' {
            tokens.push(c.to_string());
            chars.next();
        } else if c == '\'' {
            chars.next();
            let mut s = String::from("'");
            loop {
                match chars.next() {
                    Some('\'') if chars.peek() == Some(&'\'') => {
                        chars.next();
                        s.push('\'');
                    }
                    Some('\'') => break,
                    Some(ch) => s.push(ch),
                    None => return Err("unterminated string".to_owned()),
                }
            }
            tokens.push(s);
        } else {
            let mut word = String::new();
            while let Some(&ch) = chars.peek() {
                if ch.is_whitespace() || ch == '(' || ch == ')' {
                    break;
                }
                word.push(ch);
                chars.next();
            }
            tokens.push(word);
        }
    }
    Ok(tokens)
}

fn parse_or(tokens: &[String], pos: &mut usize) -> Result<Filter, String> {
    let mut left = parse_and(tokens, pos)?;
    while tokens.get(*pos).is_some_and(|t| t == "or") {
        *pos += 1;
        left = Filter::Or(Box::new(left), Box::new(parse_and(tokens, pos)?));
    }
    Ok(left)
}

fn parse_and(tokens: &[String], pos: &mut usize) -> Result<Filter, String> {
    let mut left = parse_unary(tokens, pos)?;
    while tokens.get(*pos).is_some_and(|t| t == "and") {
        *pos += 1;
        left = Filter::And(Box::new(left), Box::new(parse_unary(tokens, pos)?));
    }
    Ok(left)
}

fn parse_unary(tokens: &[String], pos: &mut usize) -> Result<Filter, String> {
    match tokens.get(*pos).map(String::as_str) {
        Some("not") => {
            *pos += 1;
            Ok(Filter::Not(Box::new(parse_unary(tokens, pos)?)))
        }
        Some("(") => {
            *pos += 1;
            let inner = parse_or(tokens, pos)?;
            if tokens.get(*pos).map(String::as_str) != Some(")") {
                return Err("missing `)`".to_owned());
            }
            *pos += 1;
            Ok(inner)
        }
        Some(field) => {
            let op = tokens
                .get(*pos + 1)
                .filter(|op| ["eq", "ne", "lt", "gt", "le", "ge"].contains(&op.as_str()))
                .ok_or_else(|| format!("expected a comparison after `{field}`"))?;
            let literal = tokens
                .get(*pos + 2)
                .ok_or_else(|| format!("expected a value after `{op}`"))?;
            let value = if let Some(s) = literal.strip_prefix('\'') {
                Value::String(s.to_owned())
            } else if let Ok(n) = literal.parse::<i64>() {
                Value::from(n)
            } else if let Ok(n) = literal.parse::<f64>() {
                Value::from(n)
            } else {
                match literal.as_str() {
                    "true" => Value::Bool(true),
                    "false" => Value::Bool(false),
                    "null" => Value::Null,
                    other => Value::String(other.to_owned()),
                }
            };
            let filter = Filter::Compare {
                field: field.to_owned(),
                op: op.clone(),
                value,
            };
            *pos += 3;
            Ok(filter)
        }
        None => Err("unexpected end of filter".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_match_top_level_and_nested_fields() {
        let task = json!({"status": "STARTED", "resource_id": "abc", "progress_percent": 40,
                          "params": {"x": {"y": "z"}}});
        let f = Filter::parse("(status eq 'STARTED') and (resource_id eq abc)").unwrap();
        assert!(f.matches(&task));
        let f = Filter::parse("status ne 'STARTED' or progress_percent gt 50").unwrap();
        assert!(!f.matches(&task));
        let f = Filter::parse("not (params.x.y eq 'q')").unwrap();
        assert!(f.matches(&task));
        assert!(Filter::parse("status eq").is_err());
        assert!(Filter::parse("(status eq 'a'").is_err());
        assert!(Filter::parse("status foo 'a'").is_err());
    }

    #[test]
    fn management_cidrs_follow_the_documented_rules() {
        assert!(validate_management_cidr("10.2.0.0/16").is_ok());
        assert!(validate_management_cidr("192.168.16.0/20").is_ok());
        assert!(validate_management_cidr("10.2.0.0/24").is_err());
        assert!(validate_management_cidr("10.1.0.0/16").is_err());
        assert!(validate_management_cidr("172.31.0.0/16").is_err());
        assert!(validate_management_cidr("10.2.1.0/16").is_err());
        assert!(validate_management_cidr("nonsense").is_err());
    }

    #[test]
    fn aws_creates_link_an_account_or_delay_linking() {
        let state = VmcState::default();
        let request =
            |provider: &str, deployment: &str, link: Option<(&str, &[&str])>| CreateRequest {
                name: Some("s".into()),
                num_hosts: Some(2),
                provider: Some(provider.into()),
                region: Some("US_WEST_2".into()),
                deployment_type: Some(deployment.into()),
                account_link_sddc_config: link.map(|(account, subnets)| {
                    vec![AccountLinkSddcConfig {
                        connected_account_id: Some(account.into()),
                        customer_subnet_ids: Some(subnets.iter().map(|s| s.to_string()).collect()),
                    }]
                }),
                ..CreateRequest::default()
            };
        let refused = |r: &CreateRequest| validate_create(r, &state).err().map(|e| e.1);
        assert_eq!(
            refused(&request("AWS", "SingleAZ", None)).as_deref(),
            Some(INVALID_ACCOUNT_LINKING)
        );
        assert_eq!(
            refused(&request("AWS", "SingleAZ", Some(("", &["subnet-1"])))).as_deref(),
            Some(INVALID_ACCOUNT_LINKING)
        );
        assert!(
            refused(&request("AWS", "MultiAZ", Some(("acc", &["subnet-1"]))))
                .is_some_and(|m| m.starts_with("Invalid account linking configuration"))
        );
        assert_eq!(
            refused(&request("AWS", "SingleAZ", Some(("acc", &["subnet-1"])))),
            None
        );
        assert_eq!(refused(&request("ZEROCLOUD", "SingleAZ", None)), None);
        let delayed = CreateRequest {
            account_link_config: Some(AccountLinkConfig {
                delay_account_link: Some(true),
            }),
            ..request("AWS", "SingleAZ", None)
        };
        assert!(validate_create(&delayed, &state).is_ok_and(|v| v.delay_account_link));
    }

    #[test]
    fn host_counts_are_validated_at_create() {
        let state = VmcState::default_estate();
        let base = || CreateRequest {
            name: Some("s".into()),
            provider: Some("AWS".into()),
            region: Some("us-west-2".into()),
            account_link_config: Some(AccountLinkConfig {
                delay_account_link: Some(true),
            }),
            ..CreateRequest::default()
        };
        let one = CreateRequest {
            num_hosts: Some(1),
            ..base()
        };
        let err = validate_create(&one, &state).err().unwrap();
        assert_eq!(err.1, "Sddc provisioning requires a minimum of 2 hosts.");
        let one_node_six = CreateRequest {
            num_hosts: Some(6),
            sddc_type: Some("1NODE".into()),
            ..base()
        };
        let err = validate_create(&one_node_six, &state).err().unwrap();
        assert_eq!(
            err.1,
            "Maximum host limit of 4 hosts reached for the cluster."
        );
        let ok = CreateRequest {
            num_hosts: Some(1),
            sddc_type: Some("1NODE".into()),
            vpc_cidr: Some(String::new()),
            ..base()
        };
        let valid = validate_create(&ok, &state).ok().unwrap();
        assert_eq!(valid.region, "US_WEST_2");
        assert_eq!(valid.vpc_cidr, "10.2.0.0/16");
    }
}
