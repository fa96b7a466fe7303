//! The simulated Aria Automation Config (RaaS) HTTP bridge, as read from `raas.md`:
//! `/account/login` (XSRF bootstrap, cloud login with a CSP Bearer token, on-prem
//! username/password login returning a JWT), the JSON-RPC endpoint `/rpc` (also `/raas/rpc`)
//! with its authentication and XSRF checks, and the `/_sim/raas/` admin hooks.
//!
//! Owns [`RaasState`]: target groups and saved jobs (with their per-role access), schedules,
//! routed commands, login sessions, the roles of each user and the current XSRF token. The RPC methods live in [`rpc`]. CSP access tokens are only
//! read here (through [`super::csp::CspState::validate_access_token`]), never changed.

mod rpc;

use std::collections::BTreeMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sha2::Digest;

use super::csp::{CspState, TokenProblem};
use super::{SimRef, SimState};

pub use rpc::ErrorCodes;

/// Fixed UUID of the built-in "All Minions" target group (raas.md §6).
pub const ALL_MINIONS_UUID: &str = "7f93b928-388b-11e6-b133-346895ecb8f3";
/// Name of the built-in target group.
pub const ALL_MINIONS_NAME: &str = "All Minions";
/// Largest page a list method returns, whatever `limit` asks for (the real cap is unverified).
pub const MAX_PAGE_LIMIT: u64 = 1000;
/// Name of the XSRF cookie (Tornado's `_xsrf`).
pub const XSRF_COOKIE: &str = "_xsrf";
/// Header carrying the XSRF token, both ways.
pub const XSRF_HEADER: &str = "x-xsrftoken";
/// Header RaaS ≥ 8.3 sets on a 403 for a missing or wrong XSRF token.
pub const XSRF_MISSING_HEADER: &str = "x-xsrftoken-missing";
/// Reason phrase of that 403 (older RaaS put "missing xsrf" only there).
pub const XSRF_MISSING_REASON: &str = "Missing XSRF token";
/// Name of the session cookie set by a successful login (the real name is unverified).
pub const SESSION_COOKIE: &str = "raas_session";
/// Header identifying the server instance on every response.
pub const INSTANCE_HEADER: &str = "raas-instance-id";
/// Header some clients use for the CSP access token instead of `Authorization: Bearer`.
pub const CSP_AUTH_TOKEN_HEADER: &str = "csp-auth-token";
/// Auth backend used when a login names none.
pub const DEFAULT_CONFIG_NAME: &str = "internal";
/// Auth backend name reported for cloud (CSP) logins.
pub const CSP_CONFIG_NAME: &str = "CSP";

/// How `GET /account/login` is answered (a simulator option, `raas_login_get`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LoginGet {
    /// 200 with the XSRF token (cookie and header).
    #[default]
    Serve,
    /// 401 `{"errors": [...]}` with no token: only the login POST works.
    Refuse,
}

/// Behaviour the documents leave unverified, with the documented default.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct RaasOptions {
    /// Whether POSTs need the XSRF header and cookie (`tornado_xsrf_cookies_enabled`).
    pub xsrf_enabled: bool,
    /// Upper bound on the `limit` a list method honours.
    pub max_page_limit: u64,
    /// Whether substring filters (`name`, `desc`, `fun`) ignore case.
    pub filters_ignore_case: bool,
    /// Whether a job referring to a target group blocks deleting the group without `force`.
    pub job_blocks_target_delete: bool,
    /// Whether `schedule.save` with an unknown `uuid` creates a schedule with that UUID
    /// (otherwise a not-found error).
    pub schedule_save_unknown_uuid_creates: bool,
    /// Answer unauthenticated `/rpc` calls with the HTML login page and status 200 (the
    /// behaviour one third-party client reports) instead of 401.
    pub html_login_page_when_unauthenticated: bool,
    /// Also accept the CSP access token in a `csp-auth-token` header (one third-party client
    /// sends it that way; unverified, so off by default).
    pub accept_csp_auth_token_header: bool,
    /// Error codes of RPC errors.
    pub error_codes: ErrorCodes,
}

impl Default for RaasOptions {
    fn default() -> Self {
        Self {
            xsrf_enabled: true,
            max_page_limit: MAX_PAGE_LIMIT,
            filters_ignore_case: true,
            job_blocks_target_delete: true,
            schedule_save_unknown_uuid_creates: true,
            html_login_page_when_unauthenticated: false,
            accept_csp_auth_token_header: false,
            error_codes: ErrorCodes::default(),
        }
    }
}

/// Who created an object, as reported in `metadata.auth.owner`.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Owner {
    pub username: String,
    pub config_name: String,
    pub uuid: String,
}

/// Per-role access to one object, as `metadata.auth.access` shows it: role name → permission
/// → granted (raas.md §6).
pub type Access = BTreeMap<String, BTreeMap<String, bool>>;

/// Permissions a target group's access names (raas.md §6: `read`, `write`, `discover`,
/// `delete`).
pub const TARGET_PERMISSIONS: &[&str] = &["read", "write", "discover", "delete"];
/// Permissions a job's access names: those of a target group and `run` (the Jobs permissions
/// of the VMware Salt API are `job-delete`, `job-read`, `job-run`, `job-write`:
/// developer.broadcom.com/xapis/vmware-salt-raas/latest/permissions.html).
pub const JOB_PERMISSIONS: &[&str] = &["read", "write", "discover", "delete", "run"];
/// The role whose members see and may do everything, whatever an object's access says.
pub const SUPERUSER_ROLE: &str = "Superuser";

/// The access a new object gets: full for `Superuser` and `Administrator`, `read` and
/// `discover` (and `run` for jobs) for `User`.
pub fn default_access(permissions: &[&str]) -> Access {
    let grant = |granted: &[&str]| -> BTreeMap<String, bool> {
        permissions
            .iter()
            .map(|p| ((*p).to_owned(), granted.contains(p)))
            .collect()
    };
    BTreeMap::from([
        (SUPERUSER_ROLE.to_owned(), grant(permissions)),
        ("Administrator".to_owned(), grant(permissions)),
        ("User".to_owned(), grant(&["read", "discover", "run"])),
    ])
}

fn default_target_access() -> Access {
    default_access(TARGET_PERMISSIONS)
}

fn default_job_access() -> Access {
    default_access(JOB_PERMISSIONS)
}

/// A target group (`tgt.*`).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct TargetGroup {
    pub uuid: String,
    pub name: String,
    pub desc: String,
    /// `{<master id or "*">: {"tgt_type": …, "tgt": …}}`.
    pub tgt: serde_json::Map<String, Value>,
    pub pillars: Vec<String>,
    pub owner: Owner,
    /// Per-role access (`tgt.save_target_group_access`); seed data without it gets the
    /// default access.
    #[serde(default = "default_target_access")]
    pub access: Access,
}

/// A saved job (`job.*`).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Job {
    pub uuid: String,
    pub name: String,
    pub desc: String,
    pub cmd: Option<String>,
    pub fun: Option<String>,
    /// `{"arg": [...], "kwarg": {...}}`.
    pub arg: Value,
    pub masters: Vec<String>,
    pub tgt_uuid: Option<String>,
    pub owner: Owner,
    /// Per-role access (`job.save_job_access`); seed data without it gets the default access.
    #[serde(default = "default_job_access")]
    pub access: Access,
}

/// A schedule (`schedule.*`).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Schedule {
    pub uuid: String,
    pub name: String,
    pub schedule: serde_json::Map<String, Value>,
    pub masters: Option<Vec<String>>,
    pub cmd: Option<String>,
    pub arg: Option<Value>,
    pub tgt: Option<Value>,
    pub tgt_uuid: Option<String>,
    pub job_uuid: Option<String>,
    pub fun: Option<String>,
    pub function: String,
    pub enabled: bool,
    pub owner: Owner,
}

/// A command started with `cmd.route_cmd`.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Command {
    pub jid: String,
    pub job_uuid: Option<String>,
    pub cmd: Option<String>,
    pub fun: Option<String>,
    pub tgt_uuid: Option<String>,
    pub tgt: Option<Value>,
    pub masters: Option<Vec<String>>,
    pub arg: Option<Value>,
    pub user: String,
    pub start_time: Option<DateTime<Utc>>,
}

/// A login session (JWT or session cookie), stored under the SHA-256 of its value.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Session {
    pub username: String,
    pub config_name: String,
    pub expires_at: DateTime<Utc>,
}

impl Session {
    /// Who the session authenticates.
    fn principal(&self) -> Principal {
        Principal {
            username: self.username.clone(),
            config_name: self.config_name.clone(),
        }
    }
}

/// Everything the simulated RaaS holds. Its `Debug` shows counts, never the XSRF token.
#[derive(Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct RaasState {
    /// Target groups by UUID. Seed data may also give a list (see [`by_uuid`]).
    #[serde(deserialize_with = "by_uuid")]
    pub target_groups: BTreeMap<String, TargetGroup>,
    #[serde(deserialize_with = "by_uuid")]
    pub jobs: BTreeMap<String, Job>,
    #[serde(deserialize_with = "by_uuid")]
    pub schedules: BTreeMap<String, Schedule>,
    pub commands: BTreeMap<String, Command>,
    /// Sessions by SHA-256 (hex) of the JWT or session cookie value.
    pub sessions: BTreeMap<String, Session>,
    /// The XSRF token currently accepted; empty until first handed out.
    pub xsrf_token: String,
    /// Sent as `RaaS-Instance-ID`; empty until first needed.
    pub instance_id: String,
    pub options: RaasOptions,
    /// The roles of each user (by the user name a login or Basic credentials give, or
    /// `csp:<org id>` for cloud logins). A user not listed has the `Superuser` role.
    pub user_roles: BTreeMap<String, Vec<String>>,
}

impl std::fmt::Debug for RaasState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RaasState")
            .field("target_groups", &self.target_groups.len())
            .field("jobs", &self.jobs.len())
            .field("schedules", &self.schedules.len())
            .field("commands", &self.commands.len())
            .field("sessions", &self.sessions.len())
            .field("user_roles", &self.user_roles)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// An object stored by UUID.
trait Keyed {
    /// Namespace of the UUID derived from the name when seed data gives none.
    const KIND: &'static str;
    fn uuid_mut(&mut self) -> &mut String;
    fn name(&self) -> &str;
}

/// Implements [`Keyed`] for object types keyed by their `uuid` field and named by `name`.
macro_rules! keyed_by_uuid {
    ($($object:ty => $kind:literal),* $(,)?) => {$(
        impl Keyed for $object {
            const KIND: &'static str = $kind;
            fn uuid_mut(&mut self) -> &mut String {
                &mut self.uuid
            }
            fn name(&self) -> &str {
                &self.name
            }
        }
    )*};
}

keyed_by_uuid!(TargetGroup => "tgt", Job => "job", Schedule => "schedule");

#[derive(serde::Deserialize)]
#[serde(untagged)]
enum MapOrList<T> {
    Map(BTreeMap<String, T>),
    List(Vec<T>),
}

/// Reads objects as a map by UUID (the saved form) or a list (handy in seed data). An object
/// without `uuid` takes its map key, or in a list a UUID derived from its kind and name, so
/// seed files stay stable across runs.
fn by_uuid<'de, D, T>(deserializer: D) -> Result<BTreeMap<String, T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Keyed + serde::Deserialize<'de>,
{
    let objects: Vec<(Option<String>, T)> =
        match <MapOrList<T> as serde::Deserialize>::deserialize(deserializer)? {
            MapOrList::Map(map) => map.into_iter().map(|(k, v)| (Some(k), v)).collect(),
            MapOrList::List(list) => list.into_iter().map(|v| (None, v)).collect(),
        };
    let mut out = BTreeMap::new();
    for (key, mut object) in objects {
        if object.uuid_mut().is_empty() {
            let uuid = key.unwrap_or_else(|| {
                let seed = format!("sextant-sim/raas/{}/{}", T::KIND, object.name());
                uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, seed.as_bytes()).to_string()
            });
            *object.uuid_mut() = uuid;
        }
        out.insert(object.uuid_mut().clone(), object);
    }
    Ok(out)
}

/// The owner recorded for objects the simulator seeds itself.
fn builtin_owner() -> Owner {
    Owner {
        username: "--<{internal-access}>--".to_owned(),
        config_name: DEFAULT_CONFIG_NAME.to_owned(),
        uuid: "c74f8bee-3a9c-11e6-8a0b-346895ecb8f3".to_owned(),
    }
}

impl RaasState {
    /// A small realistic estate: the built-in "All Minions" group, a Linux group and two
    /// saved jobs, one of them scheduled.
    pub fn default_estate() -> Self {
        let mut state = Self::default();
        let owner = builtin_owner();
        let mut all = serde_json::Map::new();
        all.insert("*".into(), json!({"tgt_type": "compound", "tgt": "*"}));
        state.target_groups.insert(
            ALL_MINIONS_UUID.to_owned(),
            TargetGroup {
                uuid: ALL_MINIONS_UUID.to_owned(),
                name: ALL_MINIONS_NAME.to_owned(),
                desc: String::new(),
                tgt: all,
                pillars: Vec::new(),
                owner: owner.clone(),
                access: default_target_access(),
            },
        );
        let linux_uuid = "2b3d6e2a-5f0c-4c53-9d7e-0a3c5b1f9e11";
        let mut linux = serde_json::Map::new();
        linux.insert(
            "*".into(),
            json!({"tgt_type": "grain", "tgt": "kernel:Linux"}),
        );
        state.target_groups.insert(
            linux_uuid.to_owned(),
            TargetGroup {
                uuid: linux_uuid.to_owned(),
                name: "Linux".to_owned(),
                desc: "All Linux minions".to_owned(),
                tgt: linux,
                pillars: Vec::new(),
                owner: owner.clone(),
                access: default_target_access(),
            },
        );
        let ping_uuid = "9a1e4c7b-2d3f-4e5a-8b6c-7d8e9f0a1b2c";
        state.jobs.insert(
            ping_uuid.to_owned(),
            Job {
                uuid: ping_uuid.to_owned(),
                name: "Ping all minions".to_owned(),
                desc: "Check that minions answer".to_owned(),
                cmd: Some("local".to_owned()),
                fun: Some("test.ping".to_owned()),
                arg: json!({"arg": [], "kwarg": {}}),
                masters: Vec::new(),
                tgt_uuid: Some(ALL_MINIONS_UUID.to_owned()),
                owner: owner.clone(),
                access: default_job_access(),
            },
        );
        let highstate_uuid = "4f6a8c0e-1b3d-4e5f-9a7b-c9d1e3f5a7b9";
        state.jobs.insert(
            highstate_uuid.to_owned(),
            Job {
                uuid: highstate_uuid.to_owned(),
                name: "Highstate Linux".to_owned(),
                desc: "Apply the highstate to Linux minions".to_owned(),
                cmd: Some("local".to_owned()),
                fun: Some("state.apply".to_owned()),
                arg: json!({"arg": [], "kwarg": {}}),
                masters: Vec::new(),
                tgt_uuid: Some(linux_uuid.to_owned()),
                owner: owner.clone(),
                access: default_job_access(),
            },
        );
        let nightly_uuid = "6c8e0a2b-4d6f-4a1c-b3e5-f7a9c1e3b5d7";
        let mut nightly = serde_json::Map::new();
        nightly.insert("cron".into(), json!("0 2 * * *"));
        nightly.insert("timezone".into(), json!("UTC"));
        state.schedules.insert(
            nightly_uuid.to_owned(),
            Schedule {
                uuid: nightly_uuid.to_owned(),
                name: "Nightly highstate".to_owned(),
                schedule: nightly,
                cmd: Some("local".to_owned()),
                tgt_uuid: Some(linux_uuid.to_owned()),
                job_uuid: Some(highstate_uuid.to_owned()),
                function: "job.run".to_owned(),
                enabled: true,
                owner,
                ..Schedule::default()
            },
        );
        state
    }

    /// The XSRF token currently accepted, minted on first use.
    fn current_xsrf(&mut self, now: DateTime<Utc>) -> String {
        if self.xsrf_token.is_empty() {
            self.xsrf_token = new_xsrf_token(now);
        }
        self.xsrf_token.clone()
    }

    /// Whether the XSRF token or instance id is still to be minted (a change to save).
    fn minting_needed(&self) -> bool {
        (self.options.xsrf_enabled && self.xsrf_token.is_empty()) || self.instance_id.is_empty()
    }

    fn instance_id(&mut self) -> String {
        if self.instance_id.is_empty() {
            self.instance_id = uuid::Uuid::new_v4().to_string();
        }
        self.instance_id.clone()
    }

    /// Replaces the XSRF token: requests carrying the old one get 403 from now on.
    pub fn rotate_xsrf(&mut self, now: DateTime<Utc>) {
        self.xsrf_token = new_xsrf_token(now);
    }

    fn session(&self, value: &str, now: DateTime<Utc>) -> Result<&Session, TokenProblem> {
        let session = self
            .sessions
            .get(&digest(value))
            .ok_or(TokenProblem::Unknown)?;
        if session.expires_at <= now {
            return Err(TokenProblem::Expired);
        }
        Ok(session)
    }

    fn open_session(&mut self, session: Session) -> String {
        let value = random_hex(32);
        self.sessions.insert(digest(&value), session);
        value
    }

    fn open_jwt(&mut self, session: Session, now: DateTime<Utc>) -> String {
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let head = engine.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        let claims = json!({
            "sub": session.username,
            "config_name": session.config_name,
            "iat": now.timestamp(),
            "exp": session.expires_at.timestamp(),
            "jti": uuid::Uuid::new_v4().to_string(),
        });
        let body = engine.encode(claims.to_string().as_bytes());
        let value = format!("{head}.{body}.{}", random_hex(32));
        self.sessions.insert(digest(&value), session);
        value
    }

    /// Forgets sessions that have expired.
    fn prune_sessions(&mut self, now: DateTime<Utc>) {
        self.sessions.retain(|_, s| s.expires_at > now);
    }
}

/// A Tornado-style (version 2) XSRF token: `2|mask|masked token|timestamp`.
fn new_xsrf_token(now: DateTime<Utc>) -> String {
    format!("2|{}|{}|{}", random_hex(4), random_hex(16), now.timestamp())
}

fn random_hex(bytes: usize) -> String {
    let mut out = String::with_capacity(bytes * 2);
    while out.len() < bytes * 2 {
        out.push_str(&uuid::Uuid::new_v4().simple().to_string());
    }
    out.truncate(bytes * 2);
    out
}

fn digest(value: &str) -> String {
    hex::encode(sha2::Sha256::digest(value.as_bytes()))
}

/// Routes of the RaaS HTTP bridge and its admin hooks.
pub fn routes() -> Router<SimRef> {
    Router::new()
        .route("/account/login", get(get_login).post(post_login))
        .route("/account/login/", get(get_login).post(post_login))
        .route("/raas/account/login", get(get_login).post(post_login))
        .route("/raas/account/login/", get(get_login).post(post_login))
        .route("/version", get(get_version))
        .route("/rpc", post(post_rpc))
        .route("/raas/rpc", post(post_rpc))
        .route("/_sim/raas/rotate-xsrf", post(admin_rotate_xsrf))
        .route(
            "/_sim/raas/options",
            get(admin_get_options).put(admin_put_options),
        )
        .route(
            "/_sim/raas/user-roles",
            get(admin_get_user_roles).put(admin_put_user_roles),
        )
}

/// The identity a request authenticated as.
#[derive(Clone, Debug)]
pub(crate) struct Principal {
    pub username: String,
    pub config_name: String,
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The value of cookie `name` in the request's `Cookie` headers.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"'))
}

/// The credentials in an `Authorization` header.
enum Credentials {
    Bearer(String),
    Jwt(String),
    Basic { username: String, password: String },
    Malformed,
}

fn credentials(headers: &HeaderMap, raas: &RaasState) -> Option<Credentials> {
    if raas.options.accept_csp_auth_token_header
        && headers.get(header::AUTHORIZATION).is_none()
        && let Some(token) = header_str(headers, CSP_AUTH_TOKEN_HEADER).map(str::trim)
        && !token.is_empty()
    {
        return Some(Credentials::Bearer(token.to_owned()));
    }
    let value = header_str(headers, "authorization")?.trim();
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    let rest = rest.trim().to_owned();
    Some(match scheme.to_ascii_lowercase().as_str() {
        "bearer" if !rest.is_empty() => Credentials::Bearer(rest),
        "jwt" if !rest.is_empty() => Credentials::Jwt(rest),
        "basic" => base64::engine::general_purpose::STANDARD
            .decode(rest.as_bytes())
            .ok()
            .and_then(|raw| String::from_utf8(raw).ok())
            .and_then(|text| {
                text.split_once(':').map(|(u, p)| Credentials::Basic {
                    username: u.to_owned(),
                    password: p.to_owned(),
                })
            })
            .unwrap_or(Credentials::Malformed),
        _ => Credentials::Malformed,
    })
}

/// A refused login or RPC call: `401 {"errors": [{title, message, detail}]}`.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub(crate) struct Unauthorized {
    title: &'static str,
    message: &'static str,
}

impl Unauthorized {
    fn new(title: &'static str, message: &'static str) -> Self {
        Self { title, message }
    }
}

impl IntoResponse for Unauthorized {
    fn into_response(self) -> Response {
        unauthorized(self.title, self.message)
    }
}

/// `401 {"errors": [{title, message, detail}]}`.
fn unauthorized(title: &str, message: &str) -> Response {
    errors_response(StatusCode::UNAUTHORIZED, title, message)
}

fn errors_response(status: StatusCode, title: &str, message: &str) -> Response {
    let body = json!({"errors": [{"title": title, "message": message, "detail": message}]});
    (status, axum::Json(body)).into_response()
}

/// The 403 for a missing or stale XSRF token: reason phrase, `X-XSRFToken-Missing`, and
/// Tornado's HTML error page.
fn xsrf_forbidden() -> Response {
    let page = format!(
        "<html><title>403: {XSRF_MISSING_REASON}</title><body>403: {XSRF_MISSING_REASON}</body></html>"
    );
    let mut response = (
        StatusCode::FORBIDDEN,
        [(header::CONTENT_TYPE, "text/html; charset=UTF-8")],
        page,
    )
        .into_response();
    response.headers_mut().insert(
        HeaderName::from_static(XSRF_MISSING_HEADER),
        HeaderValue::from_static("missing xsrf token"),
    );
    response
        .extensions_mut()
        .insert(hyper::ext::ReasonPhrase::from_static(
            XSRF_MISSING_REASON.as_bytes(),
        ));
    response
}

/// Whether the request carries the current XSRF token in both the header and the cookie.
fn xsrf_ok(headers: &HeaderMap, raas: &RaasState) -> bool {
    if !raas.options.xsrf_enabled {
        return true;
    }
    let (Some(sent), Some(jar)) = (
        header_str(headers, XSRF_HEADER),
        cookie(headers, XSRF_COOKIE),
    ) else {
        return false;
    };
    !raas.xsrf_token.is_empty() && sent == jar && sent == raas.xsrf_token
}

/// Adds the XSRF header and cookie to a response; with XSRF disabled there is neither, which
/// is how clients learn it is off.
fn hand_out_xsrf(response: &mut Response, raas: &mut RaasState, now: DateTime<Utc>) {
    if !raas.options.xsrf_enabled {
        return;
    }
    let token = raas.current_xsrf(now);
    if let Ok(value) = HeaderValue::from_str(&token) {
        response
            .headers_mut()
            .insert(HeaderName::from_static(XSRF_HEADER), value);
    }
    append_cookie(response, &format!("{XSRF_COOKIE}={token}; Path=/"));
}

fn append_cookie(response: &mut Response, cookie: &str) {
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

fn with_instance(mut response: Response, raas: &mut RaasState) -> Response {
    if let Ok(value) = HeaderValue::from_str(&raas.instance_id()) {
        response
            .headers_mut()
            .insert(HeaderName::from_static(INSTANCE_HEADER), value);
    }
    response
}

/// Checks the request's credentials: `Authorization` (Bearer CSP access token, `JWT`,
/// Basic) or else the session cookie.
fn authenticate(
    sim: &super::Sim,
    headers: &HeaderMap,
    csp: &CspState,
    raas: &RaasState,
    now: DateTime<Utc>,
) -> Result<Principal, Unauthorized> {
    match credentials(headers, raas) {
        Some(Credentials::Bearer(token)) => match csp.validate_access_token(&token, now) {
            Ok(issued) => Ok(csp_principal(&issued.org_id)),
            Err(TokenProblem::Expired) => Err(Unauthorized::new(
                "Unauthorized",
                "jwt not authorized: the access token has expired",
            )),
            Err(TokenProblem::Unknown) => Err(Unauthorized::new(
                "Unauthorized",
                "jwt not authorized: the access token is not valid",
            )),
        },
        Some(Credentials::Jwt(token)) => match raas.session(&token, now) {
            Ok(session) => Ok(session.principal()),
            Err(TokenProblem::Expired) => Err(Unauthorized::new(
                "Unauthorized",
                "jwt not authorized: the jwt has expired",
            )),
            Err(TokenProblem::Unknown) => Err(Unauthorized::new(
                "Unauthorized",
                "jwt not authorized: the jwt is not valid",
            )),
        },
        Some(Credentials::Basic { username, password }) => {
            if sim.credential_accepted(&username) && sim.credential_accepted(&password) {
                Ok(Principal {
                    username,
                    config_name: DEFAULT_CONFIG_NAME.to_owned(),
                })
            } else {
                Err(Unauthorized::new(
                    "Invalid Credentials",
                    "authentication failed: invalid basic-auth credentials",
                ))
            }
        }
        Some(Credentials::Malformed) => Err(Unauthorized::new(
            "Unauthorized",
            "authentication failed: unsupported authorization header",
        )),
        None => match cookie(headers, SESSION_COOKIE) {
            Some(value) => match raas.session(value, now) {
                Ok(session) => Ok(session.principal()),
                Err(_) => Err(Unauthorized::new(
                    "Unauthorized",
                    "authentication required: the session has expired",
                )),
            },
            None => Err(Unauthorized::new(
                "Unauthorized",
                "authentication required: no credentials were sent",
            )),
        },
    }
}

fn csp_principal(org_id: &str) -> Principal {
    Principal {
        username: format!("csp:{org_id}"),
        config_name: CSP_CONFIG_NAME.to_owned(),
    }
}

/// `GET /account/login`: hands out the XSRF token (cookie and header) and reports whether
/// the request is already authenticated; 401 under the `raas_login_get: refuse` option.
async fn get_login(State(sim): State<SimRef>, headers: HeaderMap) -> Response {
    if sim.options().raas_login_get == LoginGet::Refuse {
        return unauthorized(
            "Unauthorized",
            "authentication required: this server takes only `POST /account/login`",
        );
    }
    let now = sim.clock.now();
    let mut guard = sim.state.lock().await;
    let SimState { csp, raas, .. } = &mut *guard;
    let body = match authenticate(&sim, &headers, csp, raas, now) {
        Ok(p) => json!({
            "authenticated": true,
            "attributes": {"username": p.username, "config_name": p.config_name},
        }),
        Err(_) => json!({"authenticated": false, "attributes": null}),
    };
    xsrf_handout(&sim, &mut guard, body, now)
}

/// `GET /version`: the old way to get an `_xsrf` cookie (raas.md §1).
async fn get_version(State(sim): State<SimRef>) -> Response {
    let now = sim.clock.now();
    let mut guard = sim.state.lock().await;
    xsrf_handout(&sim, &mut guard, json!({"version": rpc::RAAS_VERSION}), now)
}

/// The 200 reply of a GET that hands out the XSRF token: `body`, the token (header and
/// cookie) and the instance id; the state is saved when the token or id was minted for it.
fn xsrf_handout(
    sim: &super::Sim,
    state: &mut SimState,
    body: Value,
    now: DateTime<Utc>,
) -> Response {
    let fresh = state.raas.minting_needed();
    let mut response = (StatusCode::OK, axum::Json(body)).into_response();
    hand_out_xsrf(&mut response, &mut state.raas, now);
    let response = with_instance(response, &mut state.raas);
    if fresh {
        sim.persist(state);
    }
    response
}

/// The JSON body of a password login.
#[derive(serde::Deserialize)]
struct PasswordLogin {
    username: String,
    password: String,
    #[serde(default)]
    config_name: Option<String>,
    #[serde(default)]
    token_type: Option<String>,
}

/// `POST /account/login`: with `Authorization: Bearer <CSP access token>` (no XSRF needed:
/// the reply carries it), or a JSON username/password body (XSRF required).
async fn post_login(State(sim): State<SimRef>, headers: HeaderMap, body: Bytes) -> Response {
    let now = sim.clock.now();
    let mut guard = sim.state.lock().await;
    let SimState { csp, raas, .. } = &mut *guard;
    raas.prune_sessions(now);
    let response = login(&sim, &headers, &body, csp, raas, now);
    let response = with_instance(response, raas);
    if response.status().is_success() {
        sim.persist(&mut guard);
    }
    response
}

fn login(
    sim: &super::Sim,
    headers: &HeaderMap,
    body: &[u8],
    csp: &CspState,
    raas: &mut RaasState,
    now: DateTime<Utc>,
) -> Response {
    let wants_jwt = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| {
            v.get("token_type")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .is_some_and(|t| t.eq_ignore_ascii_case("jwt"));
    if let Some(Credentials::Bearer(token)) = credentials(headers, raas) {
        let issued = match csp.validate_access_token(&token, now) {
            Ok(issued) => issued,
            Err(TokenProblem::Expired) => {
                return unauthorized(
                    "Invalid Credentials",
                    "jwt not authorized: the access token has expired",
                );
            }
            Err(TokenProblem::Unknown) => {
                return unauthorized("Invalid Credentials", "the access token was not accepted");
            }
        };
        let principal = csp_principal(&issued.org_id);
        let session = Session {
            username: principal.username.clone(),
            config_name: principal.config_name.clone(),
            expires_at: issued.expires_at,
        };
        return logged_in(raas, session, wants_jwt, now);
    }
    if !xsrf_ok(headers, raas) {
        return xsrf_forbidden();
    }
    let login: PasswordLogin = match serde_json::from_slice(body) {
        Ok(login) => login,
        Err(_) => {
            return errors_response(
                StatusCode::BAD_REQUEST,
                "Bad Request",
                "the login body must be a json object with `username` and `password`",
            );
        }
    };
    if !sim.credential_accepted(&login.username) || !sim.credential_accepted(&login.password) {
        return unauthorized("Invalid Credentials", "invalid username or password");
    }
    let session = Session {
        username: login.username,
        config_name: login
            .config_name
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| DEFAULT_CONFIG_NAME.to_owned()),
        expires_at: now + session_ttl(sim),
    };
    let wants_jwt = wants_jwt
        || login
            .token_type
            .is_some_and(|t| t.eq_ignore_ascii_case("jwt"));
    logged_in(raas, session, wants_jwt, now)
}

fn session_ttl(sim: &super::Sim) -> chrono::Duration {
    chrono::Duration::from_std(sim.token_ttl()).unwrap_or(chrono::Duration::seconds(1800))
}

/// The 200 reply of a successful login: attributes, the JWT when asked for, a session
/// cookie and the XSRF token (header and cookie).
fn logged_in(
    raas: &mut RaasState,
    session: Session,
    wants_jwt: bool,
    now: DateTime<Utc>,
) -> Response {
    let mut body = json!({
        "attributes": {
            "username": session.username,
            "config_name": session.config_name,
        },
        "authenticated": true,
    });
    if wants_jwt {
        body["jwt"] = json!(raas.open_jwt(session.clone(), now));
    }
    let cookie_value = raas.open_session(session);
    let mut response = (StatusCode::OK, axum::Json(body)).into_response();
    hand_out_xsrf(&mut response, raas, now);
    append_cookie(
        &mut response,
        &format!("{SESSION_COOKIE}={cookie_value}; Path=/; HttpOnly"),
    );
    response
}

/// `POST /rpc` and `/raas/rpc`.
async fn post_rpc(State(sim): State<SimRef>, headers: HeaderMap, body: Bytes) -> Response {
    let now = sim.clock.now();
    let mut guard = sim.state.lock().await;
    let SimState { csp, raas, .. } = &mut *guard;
    let (response, changed) = rpc_response(&sim, &headers, &body, csp, raas, now);
    let response = with_instance(response, raas);
    if changed {
        sim.persist(&mut guard);
    }
    response
}

fn rpc_response(
    sim: &super::Sim,
    headers: &HeaderMap,
    body: &[u8],
    csp: &CspState,
    raas: &mut RaasState,
    now: DateTime<Utc>,
) -> (Response, bool) {
    if !xsrf_ok(headers, raas) {
        return (xsrf_forbidden(), false);
    }
    let principal = match authenticate(sim, headers, csp, raas, now) {
        Ok(p) => p,
        Err(refusal) => {
            if raas.options.html_login_page_when_unauthenticated {
                let page = (
                    StatusCode::OK,
                    [(header::CONTENT_TYPE, "text/html; charset=UTF-8")],
                    LOGIN_PAGE,
                );
                return (page.into_response(), false);
            }
            return (refusal.into_response(), false);
        }
    };
    let request: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(_) => {
            let refusal = errors_response(
                StatusCode::BAD_REQUEST,
                "Bad Request",
                "the request body is not valid json",
            );
            return (refusal, false);
        }
    };
    let outcome = match request {
        Value::Array(calls) => rpc::batch(raas, &principal, now, calls),
        call @ Value::Object(_) => rpc::single(raas, &principal, now, call),
        _ => {
            let refusal = errors_response(
                StatusCode::BAD_REQUEST,
                "Bad Request",
                "the request body must be an rpc envelope or a list of them",
            );
            return (refusal, false);
        }
    };
    let response = (StatusCode::OK, axum::Json(outcome.reply)).into_response();
    (response, outcome.changed)
}

/// What an unauthenticated client may be shown instead of a 401 (an option).
const LOGIN_PAGE: &str = "<!DOCTYPE html><html><head><title>Login</title></head><body><form method=\"post\" action=\"/account/login\"><input name=\"username\"><input name=\"password\" type=\"password\"></form></body></html>";

/// `POST /_sim/raas/rotate-xsrf`: tokens handed out so far stop working.
async fn admin_rotate_xsrf(State(sim): State<SimRef>) -> StatusCode {
    let now = sim.clock.now();
    let mut guard = sim.state.lock().await;
    guard.raas.rotate_xsrf(now);
    sim.persist(&mut guard);
    StatusCode::NO_CONTENT
}

async fn admin_get_options(State(sim): State<SimRef>) -> axum::Json<RaasOptions> {
    axum::Json(sim.state.lock().await.raas.options.clone())
}

/// `PUT /_sim/raas/options`: replaces the options (fields left out take their defaults).
async fn admin_put_options(
    State(sim): State<SimRef>,
    axum::Json(options): axum::Json<RaasOptions>,
) -> axum::Json<RaasOptions> {
    let mut guard = sim.state.lock().await;
    guard.raas.options = options;
    sim.persist(&mut guard);
    axum::Json(guard.raas.options.clone())
}

async fn admin_get_user_roles(
    State(sim): State<SimRef>,
) -> axum::Json<BTreeMap<String, Vec<String>>> {
    axum::Json(sim.state.lock().await.raas.user_roles.clone())
}

/// `PUT /_sim/raas/user-roles`: replaces the roles of every user (`{"alice": ["Ops"]}`);
/// users left out have the `Superuser` role.
async fn admin_put_user_roles(
    State(sim): State<SimRef>,
    axum::Json(roles): axum::Json<BTreeMap<String, Vec<String>>>,
) -> axum::Json<BTreeMap<String, Vec<String>>> {
    let mut guard = sim.state.lock().await;
    guard.raas.user_roles = roles;
    sim.persist(&mut guard);
    axum::Json(guard.raas.user_roles.clone())
}
