//! The simulated Cloud Director API-token surface, as read from `vcd.md`: OAuth token
//! grants (`refresh_token` with an API token, the one-time `jwt-bearer` grant that hands out
//! a new token's secret), client registration, cloudapi session login, and (in [`tokens`])
//! the `cloudapi/1.0.0/tokens` list/get/revoke endpoints; [`legacy`] has the XML login and
//! org list.
//!
//! Owns [`VcdState`]: orgs, users, API tokens (secrets kept only as SHA-256 digests) and the
//! access tokens (JWTs) handed out. Errors use the OpenAPI error body
//! `{minorErrorCode, message, stackTrace}`.

mod legacy;
mod tokens;

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
}

/// Everything the simulated Cloud Director holds. Its `Debug` shows counts, never digests.
#[derive(Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct VcdState {
    /// Orgs by lower-case name.
    pub orgs: BTreeMap<String, Org>,
    /// Users by URN.
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
            id: urn("org", &format!("org/{}", name.to_lowercase())),
            name: name.to_owned(),
        });
        org.name.clone()
    }

    /// Finds or adds user `name` in an existing org; `None` when the org is unknown.
    pub fn add_user(&mut self, name: &str, org: &str) -> Option<User> {
        let org = self.orgs.get(&org.to_lowercase())?.name.clone();
        let id = urn("user", &format!("user/{}/{}", org.to_lowercase(), name));
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
            },
        );
        (value, session_id)
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
        .route("/api/sessions", post(legacy::login))
        .route("/api/login", post(legacy::login))
        .route("/api/org", get(legacy::org_list))
        .route("/api/org/", get(legacy::org_list))
        .route(
            "/_sim/vcd/options",
            get(admin_get_options).put(admin_put_options),
        )
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
    pub session_id: String,
    pub token_digest: String,
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
    let token = match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
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
        session_id: access.session_id.clone(),
        token_digest,
    })
}

/// Decodes an `application/x-www-form-urlencoded` body.
fn form_fields(body: &[u8]) -> BTreeMap<String, String> {
    let text = String::from_utf8_lossy(body);
    text.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|h| std::str::from_utf8(h).ok())
            .filter(|h| h.chars().all(|c| c.is_ascii_hexdigit()))
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], escaped) {
            (_, Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b'+', None) => {
                out.push(b' ');
                i += 1;
            }
            (byte, None) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn invalid_grant(state: &VcdState, message: &str) -> Response {
    error(
        status(state.options.invalid_grant_status, StatusCode::BAD_REQUEST),
        "invalid_grant",
        message,
    )
}

async fn provider_token(State(sim): State<SimRef>, body: Bytes) -> Response {
    token_grant(&sim, SYSTEM_ORG, &body).await
}

async fn tenant_token(State(sim): State<SimRef>, Path(org): Path<String>, body: Bytes) -> Response {
    token_grant(&sim, &org, &body).await
}

/// `POST /oauth/{provider|tenant/{org}}/token`: the refresh-token and jwt-bearer grants.
async fn token_grant(sim: &Sim, org: &str, body: &[u8]) -> Response {
    let now = sim.clock.now();
    let mut guard = sim.state.lock().await;
    let response = grant(sim, &mut guard.vcd, org, body, now);
    if response.status().is_success() {
        sim.persist(&mut guard);
    }
    response
}

fn grant(sim: &Sim, state: &mut VcdState, org: &str, body: &[u8], now: DateTime<Utc>) -> Response {
    state.prune(now);
    let fields = form_fields(body);
    let Some(org) = state.org(org).map(|o| o.name.clone()) else {
        return invalid_grant(state, "Invalid refresh token: unknown organization");
    };
    let mut response = match fields.get("grant_type").map(String::as_str) {
        Some("refresh_token") => refresh_grant(sim, state, &org, &fields, now),
        Some(JWT_BEARER_GRANT) => initial_grant(sim, state, &org, &fields, now),
        Some(other) => error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            &format!("Unsupported grant type: {other}"),
        ),
        None => error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Missing grant_type",
        ),
    };
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn grant_reply(access_token: String, ttl: chrono::Duration, refresh_token: Value) -> Response {
    let body = json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": ttl.num_seconds(),
        "refresh_token": refresh_token,
    });
    (StatusCode::OK, axum::Json(body)).into_response()
}

fn refresh_grant(
    sim: &Sim,
    state: &mut VcdState,
    org: &str,
    fields: &BTreeMap<String, String>,
    now: DateTime<Utc>,
) -> Response {
    let Some(secret) = fields.get("refresh_token").filter(|s| !s.is_empty()) else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Missing refresh_token",
        );
    };
    let secret_digest = digest(secret);
    let issued = state
        .tokens
        .values()
        .find(|t| t.secret_digest.as_deref() == Some(secret_digest.as_str()))
        .cloned();
    let user = match issued {
        Some(token) => {
            if !token.org.eq_ignore_ascii_case(org) {
                return invalid_grant(state, "Invalid refresh token");
            }
            match state.users.get(&token.owner_id) {
                Some(user) => user.clone(),
                None => return invalid_grant(state, "Invalid refresh token"),
            }
        }
        None => {
            let accepted = state.options.accept_unknown_api_tokens
                && !state.revoked_secrets.contains(&secret_digest)
                && sim.credential_accepted(secret);
            if !accepted {
                return invalid_grant(state, "Invalid refresh token");
            }
            match state.add_user("api-token-user", org) {
                Some(user) => user,
                None => return invalid_grant(state, "Invalid refresh token"),
            }
        }
    };
    let ttl = ttl(sim);
    let (access, _) = state.issue_access_token(&user, AccessKind::ApiToken, now, ttl);
    let refresh = if state.options.user_token_refresh_token_null {
        Value::Null
    } else {
        json!(secret)
    };
    grant_reply(access, ttl, refresh)
}

/// The one-time grant: a password session's JWT plus a registered `client_id` give the new
/// token's secret, once.
fn initial_grant(
    sim: &Sim,
    state: &mut VcdState,
    org: &str,
    fields: &BTreeMap<String, String>,
    now: DateTime<Utc>,
) -> Response {
    let (Some(assertion), Some(client_id)) = (fields.get("assertion"), fields.get("client_id"))
    else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "The jwt-bearer grant needs assertion and client_id",
        );
    };
    let session = state
        .access_tokens
        .get(&digest(assertion))
        .filter(|a| a.expires_at > now && a.kind == AccessKind::Password)
        .cloned();
    let Some(session) = session else {
        return invalid_grant(state, "Invalid assertion");
    };
    let token_id = format!("{TOKEN_URN_PREFIX}{client_id}");
    let Some(token) = state.tokens.get(&token_id).cloned() else {
        return invalid_grant(state, "Invalid client");
    };
    if token.owner_id != session.user_id || !token.org.eq_ignore_ascii_case(org) {
        return invalid_grant(state, "Invalid client");
    }
    if token.secret_digest.is_some() {
        return invalid_grant(
            state,
            "The initial token for this client was already issued",
        );
    }
    let Some(user) = state.users.get(&session.user_id).cloned() else {
        return invalid_grant(state, "Invalid assertion");
    };
    let secret = random_string(API_TOKEN_LENGTH);
    if let Some(stored) = state.tokens.get_mut(&token_id) {
        stored.secret_digest = Some(digest(&secret));
    }
    let ttl = ttl(sim);
    let (access, _) = state.issue_access_token(&user, AccessKind::ApiToken, now, ttl);
    grant_reply(access, ttl, json!(secret))
}

async fn provider_register(State(sim): State<SimRef>, headers: HeaderMap, body: Bytes) -> Response {
    register(&sim, SYSTEM_ORG, &headers, &body).await
}

async fn tenant_register(
    State(sim): State<SimRef>,
    Path(org): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    register(&sim, &org, &headers, &body).await
}

/// `POST /oauth/{provider|tenant/{org}}/register`: registers the OAuth client behind a new
/// API token (the token appears in the token list from now on, without a secret yet).
async fn register(sim: &Sim, org: &str, headers: &HeaderMap, body: &[u8]) -> Response {
    let now = sim.clock.now();
    let mut guard = sim.state.lock().await;
    let response = register_client(&mut guard.vcd, org, headers, body, now);
    if response.status().is_success() {
        sim.persist(&mut guard);
    }
    response
}

fn register_client(
    state: &mut VcdState,
    org: &str,
    headers: &HeaderMap,
    body: &[u8],
    now: DateTime<Utc>,
) -> Response {
    let caller = match caller(headers, state, now) {
        Ok(c) => c,
        Err(refusal) => return refusal.into_response(),
    };
    if caller.kind == AccessKind::ApiToken {
        return forbidden(
            state.options.api_token_session_forbidden_status,
            "A session opened with an API token cannot create API tokens",
        );
    }
    if !caller.user.org.eq_ignore_ascii_case(org) {
        return forbidden(
            state.options.api_token_session_forbidden_status,
            "API tokens can only be created in the user's own organization",
        );
    }
    let request: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(_) => return error(StatusCode::BAD_REQUEST, "BAD_REQUEST", "Invalid JSON body"),
    };
    let Some(name) = request
        .get("client_name")
        .and_then(Value::as_str)
        .filter(|n| !n.trim().is_empty())
    else {
        return error(
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            "client_name is required",
        );
    };
    if request.get("software_id").is_some_and(|v| !v.is_null()) {
        return error(
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            "Service accounts (software_id) are not simulated",
        );
    }
    let duplicate = state
        .tokens
        .values()
        .any(|t| t.owner_id == caller.user.id && t.name == name);
    if duplicate {
        return error(
            StatusCode::BAD_REQUEST,
            "DUPLICATE_NAME",
            &format!("An API token named {name} already exists for this user"),
        );
    }
    let client_id = uuid::Uuid::new_v4().to_string();
    let id = format!("{TOKEN_URN_PREFIX}{client_id}");
    state.tokens.insert(
        id.clone(),
        ApiToken {
            id,
            client_id: client_id.clone(),
            name: name.to_owned(),
            owner_id: caller.user.id.clone(),
            org: caller.user.org.clone(),
            secret_digest: None,
        },
    );
    let body = json!({
        "client_name": name,
        "client_id": client_id,
        "grant_types": [JWT_BEARER_GRANT, "refresh_token"],
        "token_endpoint_auth_method": "none",
        "client_uri": null,
        "software_id": null,
        "software_version": null,
        "scope": null,
    });
    (
        status(state.options.register_status, StatusCode::OK),
        axum::Json(body),
    )
        .into_response()
}

async fn provider_login(State(sim): State<SimRef>, headers: HeaderMap) -> Response {
    login(&sim, &headers, LoginEndpoint::Provider).await
}

async fn tenant_login(State(sim): State<SimRef>, headers: HeaderMap) -> Response {
    login(&sim, &headers, LoginEndpoint::Tenant).await
}

/// Basic `user@org:password` from the `Authorization` header.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim().as_bytes())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (login, password) = text.split_once(':')?;
    let (user, org) = login.rsplit_once('@')?;
    Some((user.to_owned(), org.to_owned(), password.to_owned()))
}

/// `POST /cloudapi/1.0.0/sessions[/provider]`: Basic login; the JWT comes back in
/// `X-VMWARE-VCLOUD-ACCESS-TOKEN`.
/// Which login endpoint was called.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum LoginEndpoint {
    /// `/cloudapi/1.0.0/sessions/provider`: System org only.
    Provider,
    /// `/cloudapi/1.0.0/sessions`: tenant orgs only.
    Tenant,
    /// `/api/sessions` (and `/api/login`): any org.
    Legacy,
}

/// A password session just opened.
pub(crate) struct OpenedSession {
    pub user: User,
    pub jwt: String,
    pub session_id: String,
}

/// Checks Basic `user@org:password` for `endpoint` and opens a password session.
pub(crate) fn open_session(
    sim: &Sim,
    state: &mut VcdState,
    headers: &HeaderMap,
    endpoint: LoginEndpoint,
    now: DateTime<Utc>,
) -> Result<OpenedSession, VcdError> {
    state.prune(now);
    let Some((user, org, password)) = basic_credentials(headers) else {
        return Err(unauthorized("Send Basic credentials as user@org:password"));
    };
    if !sim.credential_accepted(&user) || !sim.credential_accepted(&password) {
        return Err(unauthorized("Invalid credentials"));
    }
    let is_system = org.eq_ignore_ascii_case(SYSTEM_ORG);
    match (endpoint, is_system) {
        (LoginEndpoint::Provider, false) => {
            return Err(unauthorized(
                "Use /cloudapi/1.0.0/sessions to log in to a tenant organization",
            ));
        }
        (LoginEndpoint::Tenant, true) => {
            return Err(unauthorized(
                "Use /cloudapi/1.0.0/sessions/provider to log in to the System organization",
            ));
        }
        _ => {}
    }
    let Some(user) = state.add_user(&user, &org) else {
        return Err(unauthorized("Invalid credentials"));
    };
    let (jwt, session_id) = state.issue_access_token(&user, AccessKind::Password, now, ttl(sim));
    Ok(OpenedSession {
        user,
        jwt,
        session_id,
    })
}

/// Adds the session JWT headers to a login response.
pub(crate) fn with_session_headers(mut response: Response, jwt: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(jwt) {
        response.headers_mut().insert(ACCESS_TOKEN_HEADER, value);
    }
    response
        .headers_mut()
        .insert(TOKEN_TYPE_HEADER, HeaderValue::from_static("Bearer"));
    response
}

/// `POST /cloudapi/1.0.0/sessions[/provider]`: Basic login; the JWT comes back in
/// `X-VMWARE-VCLOUD-ACCESS-TOKEN`.
async fn login(sim: &Sim, headers: &HeaderMap, endpoint: LoginEndpoint) -> Response {
    if let Err(refusal) = api_version(headers, SUPPORTED_API_VERSIONS[0]) {
        return refusal.into_response();
    }
    let now = sim.clock.now();
    let mut guard = sim.state.lock().await;
    let state = &mut guard.vcd;
    match open_session(sim, state, headers, endpoint, now) {
        Ok(opened) => {
            let body = session_json(state, &opened.user, &opened.session_id);
            sim.persist(&mut guard);
            with_session_headers(
                (StatusCode::OK, axum::Json(body)).into_response(),
                &opened.jwt,
            )
        }
        Err(refusal) => refusal.into_response(),
    }
}

fn session_json(state: &VcdState, user: &User, session_id: &str) -> Value {
    let org = json!({"name": user.org, "id": org_id(state, &user.org)});
    let role = if user.org.eq_ignore_ascii_case(SYSTEM_ORG) {
        "System Administrator"
    } else {
        "Organization Administrator"
    };
    json!({
        "id": format!("urn:vcloud:session:{session_id}"),
        "site": {"name": "sextant-sim", "id": urn("site", "site")},
        "user": {"name": user.name, "id": user.id},
        "org": org,
        "operatingOrg": org,
        "location": urn("location", "location"),
        "roles": [role],
        "roleRefs": [{"name": role, "id": urn("role", role)}],
        "sessionIdleTimeoutMinutes": 30,
    })
}

/// `GET /cloudapi/1.0.0/sessions/current`.
async fn current_session(State(sim): State<SimRef>, headers: HeaderMap) -> Response {
    if let Err(refusal) = api_version(&headers, MIN_SESSION_API_VERSION) {
        return refusal.into_response();
    }
    let now = sim.clock.now();
    let guard = sim.state.lock().await;
    match caller(&headers, &guard.vcd, now) {
        Ok(caller) => (
            StatusCode::OK,
            axum::Json(session_json(&guard.vcd, &caller.user, &caller.session_id)),
        )
            .into_response(),
        Err(refusal) => refusal.into_response(),
    }
}

/// `DELETE /cloudapi/1.0.0/sessions/current`: the access token stops working.
async fn logout(State(sim): State<SimRef>, headers: HeaderMap) -> Response {
    if let Err(refusal) = api_version(&headers, MIN_SESSION_API_VERSION) {
        return refusal.into_response();
    }
    let now = sim.clock.now();
    let mut guard = sim.state.lock().await;
    match caller(&headers, &guard.vcd, now) {
        Ok(caller) => {
            guard.vcd.access_tokens.remove(&caller.token_digest);
            sim.persist(&mut guard);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(refusal) => refusal.into_response(),
    }
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
