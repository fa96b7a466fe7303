//! The simulated Cloud Director API-token surface, as read from `vcd.md`: OAuth token
//! grants and client registration ([`oauth`]), cloudapi session login ([`sessions`]), the
//! `cloudapi/1.0.0/tokens` list/get/revoke endpoints ([`tokens`]) and the legacy XML API
//! clients start with: versions, login, current session and orgs ([`legacy`]). This file
//! holds the state, the auth (`Authorization: Bearer` or `x-vcloud-authorization`) and
//! `Accept` checks and the error body they share.
//!
//! Owns [`VcdState`]: orgs, users, API tokens (secrets kept only as SHA-256 digests) and the
//! access tokens (JWTs) handed out. Errors use the OpenAPI error body
//! `{minorErrorCode, message, stackTrace}`.

mod legacy;
mod oauth;
mod sessions;
mod tokens;

use oauth::*;
use sessions::*;

use std::collections::{BTreeMap, BTreeSet};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sha2::Digest;

use super::{Sim, SimRef};

/// Name of the provider org; matched case-insensitively.
pub const SYSTEM_ORG: &str = "System";
/// API versions the simulator serves (`vcd.md` §1).
pub const SUPPORTED_API_VERSIONS: &[&str] = &[
    "32.0", "33.0", "34.0", "35.0", "36.0", "36.1", "36.2", "36.3", "37.0", "37.1", "37.2", "37.3",
    "38.0", "38.1",
];
/// Lowest API version serving `cloudapi/1.0.0/tokens` and client registration.
pub const MIN_TOKEN_API_VERSION: &str = "36.1";
/// Lowest API version serving `sessions/current`.
pub const MIN_SESSION_API_VERSION: &str = "34.0";
/// Status for a cloudapi request without a supported versioned `Accept`.
pub const NOT_ACCEPTABLE_STATUS: u16 = 406;
/// Header carrying the session JWT after login.
pub const ACCESS_TOKEN_HEADER: &str = "x-vmware-vcloud-access-token";
/// Header naming the token type after login.
pub const TOKEN_TYPE_HEADER: &str = "x-vmware-vcloud-token-type";
/// The legacy session token a `POST /api/sessions` answers with, and clients send back
/// (pyvcloud `client.py` `_HEADER_X_VCLOUD_AUTH_NAME`).
pub const LEGACY_AUTH_HEADER: &str = "x-vcloud-authorization";
/// Length of a legacy session token (go-vcloud-director tells it from a JWT by its 32
/// characters, `vcd.md` §2).
pub const LEGACY_AUTH_LENGTH: usize = 32;
/// Grant type of the one-time initial API-token grant.
pub const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// `type` of user API tokens in the token list.
pub const TOKEN_TYPE_REFRESH: &str = "REFRESH";
/// URN prefix of API tokens (`urn:vcloud:token:<client_id>`).
pub const TOKEN_URN_PREFIX: &str = "urn:vcloud:token:";
/// Default `pageSize` of list endpoints.
pub const DEFAULT_PAGE_SIZE: u64 = 25;
/// Largest `pageSize` served ("maximum supported" in go-vcloud-director).
pub const MAX_PAGE_SIZE: u64 = 128;
/// Length of a generated API-token secret.
pub const API_TOKEN_LENGTH: usize = 32;

/// Behaviour the documents leave unverified, with the documented default.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct VcdOptions {
    /// Refresh grants with a user API token answer `refresh_token: null` (else the token is echoed).
    pub user_token_refresh_token_null: bool,
    /// Status of `invalid_grant` errors.
    pub invalid_grant_status: u16,
    /// Status of a successful token revoke: 204, or 202 with a `Location` task.
    pub revoke_status: u16,
    /// Status of a successful client registration.
    pub register_status: u16,
    /// Status when an API-token session tries what only a password session may do.
    pub api_token_session_forbidden_status: u16,
    /// Largest `pageSize` served; larger requests are capped.
    pub max_page_size: u64,
    /// Accept API tokens the simulator never issued when the credential rule accepts them
    /// (the quickstart's dummy tokens); issued-then-revoked tokens are refused regardless.
    pub accept_unknown_api_tokens: bool,
}

impl Default for VcdOptions {
    fn default() -> Self {
        Self {
            user_token_refresh_token_null: true,
            invalid_grant_status: 400,
            revoke_status: 204,
            register_status: 200,
            api_token_session_forbidden_status: 403,
            max_page_size: MAX_PAGE_SIZE,
            accept_unknown_api_tokens: true,
        }
    }
}

/// An organization.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Org {
    pub id: String,
    pub name: String,
}

/// A user of an org.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct User {
    pub id: String,
    pub name: String,
    /// The org's name as stored in [`VcdState::orgs`].
    pub org: String,
}

/// A user API token: a registered OAuth client and, once granted, its secret's digest.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct ApiToken {
    /// `urn:vcloud:token:<client_id>`.
    pub id: String,
    pub client_id: String,
    pub name: String,
    pub owner_id: String,
    pub org: String,
    /// SHA-256 (hex) of the secret; `None` until the one-time grant ran.
    pub secret_digest: Option<String>,
}

/// What an access token was obtained with.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum AccessKind {
    /// A user/password session.
    Password,
    /// A refresh grant with an API token; restricted (`vcd.md` §7).
    ApiToken,
}

/// An access token (JWT) handed out by a login or a grant.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AccessToken {
    pub session_id: String,
    pub user_id: String,
    pub kind: AccessKind,
    pub expires_at: DateTime<Utc>,
    /// The API token a refresh grant was made with: the one token such a session may see.
    #[serde(default)]
    pub api_token: Option<String>,
}

/// Everything the simulated Cloud Director holds. Its `Debug` shows counts, never digests.
#[derive(Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct VcdState {
    /// Orgs by lower-case name; seed data may give a list of `{name}` instead.
    #[serde(deserialize_with = "orgs_by_name")]
    pub orgs: BTreeMap<String, Org>,
    /// Users by URN; seed data may give a list of `{name, org}` instead.
    #[serde(deserialize_with = "users_by_id")]
    pub users: BTreeMap<String, User>,
    /// API tokens by URN.
    pub tokens: BTreeMap<String, ApiToken>,
    /// Digests of secrets whose tokens were revoked: grants with them fail.
    pub revoked_secrets: BTreeSet<String>,
    /// Access tokens by SHA-256 (hex) of their value.
    pub access_tokens: BTreeMap<String, AccessToken>,
    pub options: VcdOptions,
}

impl std::fmt::Debug for VcdState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VcdState")
            .field("orgs", &self.orgs.keys().collect::<Vec<_>>())
            .field("users", &self.users.len())
            .field("tokens", &self.tokens.len())
            .field("revoked_secrets", &self.revoked_secrets.len())
            .field("access_tokens", &self.access_tokens.len())
            .field("options", &self.options)
            .finish()
    }
}

#[derive(serde::Deserialize)]
#[serde(untagged)]
enum MapOrList<T> {
    Map(BTreeMap<String, T>),
    List(Vec<T>),
}

impl<T> MapOrList<T> {
    /// The objects, without the saved map's keys (the callers derive them again).
    fn into_objects(self) -> Vec<T> {
        match self {
            MapOrList::Map(map) => map.into_values().collect(),
            MapOrList::List(list) => list,
        }
    }
}

fn org_urn(name: &str) -> String {
    urn("org", &format!("org/{}", name.to_lowercase()))
}

fn user_urn(name: &str, org: &str) -> String {
    urn("user", &format!("user/{}/{}", org.to_lowercase(), name))
}

/// Orgs as saved (a map by lower-case name) or listed in seed data; a missing `id` is derived
/// from the name.
fn orgs_by_name<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<String, Org>, D::Error> {
    let orgs = <MapOrList<Org> as serde::Deserialize>::deserialize(deserializer)?.into_objects();
    Ok(orgs
        .into_iter()
        .map(|mut org| {
            if org.id.is_empty() {
                org.id = org_urn(&org.name);
            }
            (org.name.to_lowercase(), org)
        })
        .collect())
}

/// Users as saved (a map by URN) or listed in seed data; a missing `id` is derived from the
/// user and org names, as a login would.
fn users_by_id<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<String, User>, D::Error> {
    let users = <MapOrList<User> as serde::Deserialize>::deserialize(deserializer)?.into_objects();
    Ok(users
        .into_iter()
        .map(|mut user| {
            if user.id.is_empty() {
                user.id = user_urn(&user.name, &user.org);
            }
            (user.id.clone(), user)
        })
        .collect())
}

fn urn(kind: &str, seed: &str) -> String {
    let id = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, seed.as_bytes());
    format!("urn:vcloud:{kind}:{id}")
}

impl VcdState {
    /// The provider org `System` with its administrator, and one tenant org with an org admin.
    pub fn default_estate() -> Self {
        let mut state = Self::default();
        for name in [SYSTEM_ORG, "acme"] {
            state.add_org(name);
        }
        state.add_user("administrator", SYSTEM_ORG);
        state.add_user("orgadmin", "acme");
        state
    }

    /// Adds an org (no-op when it exists) and returns its stored name.
    pub fn add_org(&mut self, name: &str) -> String {
        let org = self.orgs.entry(name.to_lowercase()).or_insert_with(|| Org {
            id: org_urn(name),
            name: name.to_owned(),
        });
        org.name.clone()
    }

    /// Finds or adds user `name` in an existing org; `None` when the org is unknown.
    pub fn add_user(&mut self, name: &str, org: &str) -> Option<User> {
        let org = self.orgs.get(&org.to_lowercase())?.name.clone();
        let id = user_urn(name, &org);
        let user = self.users.entry(id.clone()).or_insert_with(|| User {
            id,
            name: name.to_owned(),
            org,
        });
        Some(user.clone())
    }

    fn org(&self, name: &str) -> Option<&Org> {
        self.orgs.get(&name.to_lowercase())
    }

    fn issue_access_token(
        &mut self,
        user: &User,
        kind: AccessKind,
        api_token: Option<String>,
        now: DateTime<Utc>,
        ttl: chrono::Duration,
    ) -> (String, String) {
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let head = engine.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
        let claims = json!({
            "sub": user.name,
            "iss": format!("{}@{}", user.id, org_id(self, &user.org)),
            "exp": (now + ttl).timestamp(),
            "iat": now.timestamp(),
            "jti": uuid::Uuid::new_v4().to_string(),
        });
        let body = engine.encode(claims.to_string().as_bytes());
        let value = format!("{head}.{body}.{}", random_string(43));
        let session_id = uuid::Uuid::new_v4().to_string();
        self.access_tokens.insert(
            digest(&value),
            AccessToken {
                session_id: session_id.clone(),
                user_id: user.id.clone(),
                kind,
                expires_at: now + ttl,
                api_token,
            },
        );
        (value, session_id)
    }

    /// A legacy `x-vcloud-authorization` token for an open session, valid as long as it.
    fn issue_legacy_token(&mut self, session_id: &str) -> Option<String> {
        let session = self
            .access_tokens
            .values()
            .find(|t| t.session_id == session_id)?
            .clone();
        let value = random_string(LEGACY_AUTH_LENGTH);
        self.access_tokens.insert(digest(&value), session);
        Some(value)
    }

    /// Forgets expired access tokens.
    fn prune(&mut self, now: DateTime<Utc>) {
        self.access_tokens.retain(|_, t| t.expires_at > now);
    }
}

fn org_id(state: &VcdState, org: &str) -> String {
    state.org(org).map(|o| o.id.clone()).unwrap_or_default()
}

/// Letters and digits from fresh UUIDs.
fn random_string(len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::with_capacity(len);
    while out.len() < len {
        for byte in uuid::Uuid::new_v4().as_bytes() {
            if out.len() < len {
                out.push(char::from(ALPHABET[usize::from(*byte) % ALPHABET.len()]));
            }
        }
    }
    out
}

fn digest(value: &str) -> String {
    hex::encode(sha2::Sha256::digest(value.as_bytes()))
}

fn ttl(sim: &Sim) -> chrono::Duration {
    chrono::Duration::from_std(sim.token_ttl()).unwrap_or(chrono::Duration::seconds(1800))
}

/// Routes of the Cloud Director endpoints and their admin hooks.
pub fn routes() -> Router<SimRef> {
    Router::new()
        .route("/oauth/provider/token", post(provider_token))
        .route("/oauth/tenant/{org}/token", post(tenant_token))
        .route("/oauth/provider/register", post(provider_register))
        .route("/oauth/tenant/{org}/register", post(tenant_register))
        .route("/cloudapi/1.0.0/sessions/provider", post(provider_login))
        .route("/cloudapi/1.0.0/sessions", post(tenant_login))
        .route(
            "/cloudapi/1.0.0/sessions/current",
            get(current_session).delete(logout),
        )
        .route("/cloudapi/1.0.0/tokens", get(tokens::list))
        .route(
            "/cloudapi/1.0.0/tokens/{id}",
            get(tokens::get_one).delete(tokens::revoke),
        )
        .route("/api/task/{id}", get(tokens::task))
        .route("/api/versions", get(legacy::versions))
        .route("/api/sessions", post(legacy::login))
        .route("/api/login", post(legacy::login))
        .route("/api/org", get(legacy::org_list))
        .route("/api/org/", get(legacy::org_list))
        .route("/api/org/{id}", get(legacy::org))
        .route(
            "/_sim/vcd/options",
            get(admin_get_options).put(admin_put_options),
        )
}

/// The routes Cloud Director serves only on an address of its own (`sim serve --listen-vcd`):
/// the current session `GET`/`DELETE /api/session`, which pyvcloud calls after every login.
/// On the shared port that path is vSphere's `/api` session (`POST`/`GET`/`DELETE
/// /api/session`); there Cloud Director keeps `/api/sessions` (plural), `/api/versions`,
/// `/api/org…` and `/cloudapi/…`, so each request has exactly one owner.
pub fn own_port_routes() -> Router<SimRef> {
    routes().route("/api/session", get(legacy::current).delete(legacy::logout))
}

/// A refused request; answered with its status and the OpenAPI error body
/// `{minorErrorCode, message, stackTrace}` (401s also carry `WWW-Authenticate`).
#[derive(Debug, thiserror::Error)]
#[error("{minor}: {message}")]
pub(crate) struct VcdError {
    pub status: StatusCode,
    pub minor: &'static str,
    pub message: String,
}

impl IntoResponse for VcdError {
    fn into_response(self) -> Response {
        let trace = format!(
            "com.vmware.vcloud.api.rest.toolkit.exceptions.{}Exception: {}",
            self.minor, self.message
        );
        let body =
            json!({"minorErrorCode": self.minor, "message": self.message, "stackTrace": trace});
        let mut response = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"vcloud\""),
            );
        }
        response
    }
}

fn refusal(status: StatusCode, minor: &'static str, message: impl Into<String>) -> VcdError {
    VcdError {
        status,
        minor,
        message: message.into(),
    }
}

/// The OpenAPI error response.
pub(crate) fn error(status: StatusCode, minor: &'static str, message: &str) -> Response {
    refusal(status, minor, message).into_response()
}

fn status(code: u16, fallback: StatusCode) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(fallback)
}

fn unauthorized(message: &str) -> VcdError {
    refusal(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", message)
}

fn forbidden(status_code: u16, message: &str) -> Response {
    error(
        status(status_code, StatusCode::FORBIDDEN),
        "ACCESS_TO_RESOURCE_IS_FORBIDDEN",
        message,
    )
}

/// The API version named by a versioned `Accept` header, checked against the supported
/// list and the endpoint's minimum.
pub(crate) fn api_version(headers: &HeaderMap, minimum: &str) -> Result<String, VcdError> {
    let version = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split([',', ';']))
        .filter_map(|part| part.trim().strip_prefix("version="))
        .map(|v| v.trim().trim_matches('"').to_owned())
        .next();
    let not_acceptable = |message: String| {
        refusal(
            status(NOT_ACCEPTABLE_STATUS, StatusCode::NOT_ACCEPTABLE),
            "NOT_ACCEPTABLE",
            message,
        )
    };
    let Some(version) = version else {
        return Err(not_acceptable(
            "The request has invalid accept header: the API version is missing; send `Accept: application/json;version=<version>`".to_owned(),
        ));
    };
    if !SUPPORTED_API_VERSIONS.contains(&version.as_str()) {
        return Err(not_acceptable(format!(
            "The request has invalid accept header: invalid API version requested ({version}); supported versions are {}",
            SUPPORTED_API_VERSIONS.join(", ")
        )));
    }
    if version_number(&version) < version_number(minimum) {
        return Err(not_acceptable(format!(
            "The request has invalid accept header: this endpoint needs API version {minimum} or later, not {version}"
        )));
    }
    Ok(version)
}

fn version_number(version: &str) -> (u32, u32) {
    let (major, minor) = version.split_once('.').unwrap_or((version, "0"));
    (major.parse().unwrap_or(0), minor.parse().unwrap_or(0))
}

/// The caller of a cloudapi request, from `Authorization: Bearer <JWT>`.
pub(crate) struct Caller {
    pub user: User,
    pub kind: AccessKind,
    /// For an API-token session, the token it was granted with (`None` for a token the
    /// simulator never issued).
    pub api_token: Option<String>,
    pub session_id: String,
}

pub(crate) fn caller(
    headers: &HeaderMap,
    state: &VcdState,
    now: DateTime<Utc>,
) -> Result<Caller, VcdError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .trim();
    let legacy = headers
        .get(LEGACY_AUTH_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty());
    let token = match (value.split_once(' '), legacy) {
        (Some((scheme, token)), _) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
        (_, Some(token)) => token,
        _ => return Err(unauthorized("Missing or unsupported Authorization header")),
    };
    let token_digest = digest(token);
    let Some(access) = state.access_tokens.get(&token_digest) else {
        return Err(unauthorized("The access token is not valid"));
    };
    if access.expires_at <= now {
        return Err(unauthorized("The access token has expired"));
    }
    let Some(user) = state.users.get(&access.user_id) else {
        return Err(unauthorized("The access token is not valid"));
    };
    Ok(Caller {
        user: user.clone(),
        kind: access.kind.clone(),
        api_token: access.api_token.clone(),
        session_id: access.session_id.clone(),
    })
}

/// The caller of a cloudapi request to an endpoint that needs API version `minimum`: the
/// `Accept` header is checked first, then the access token.
pub(crate) fn versioned_caller(
    headers: &HeaderMap,
    state: &VcdState,
    now: DateTime<Utc>,
    minimum: &str,
) -> Result<Caller, VcdError> {
    api_version(headers, minimum)?;
    caller(headers, state, now)
}

async fn admin_get_options(State(sim): State<SimRef>) -> axum::Json<VcdOptions> {
    axum::Json(sim.state.lock().await.vcd.options.clone())
}

/// `PUT /_sim/vcd/options`: replaces the options (fields left out take their defaults).
async fn admin_put_options(
    State(sim): State<SimRef>,
    axum::Json(options): axum::Json<VcdOptions>,
) -> axum::Json<VcdOptions> {
    let mut guard = sim.state.lock().await;
    guard.vcd.options = options;
    sim.persist(&mut guard);
    axum::Json(guard.vcd.options.clone())
}
