//! RaaS login and the JSON-RPC transport (`raas.md` §1–§3): the XSRF bootstrap, the cloud
//! (CSP Bearer) and on-prem (JWT) logins, cookies kept by hand, the `/rpc` envelope, batches,
//! and the one re-login on 401 / one XSRF refresh on 403. Knows nothing about jobs or targets.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use base64::Engine;

use reqwest::header::{AUTHORIZATION, COOKIE, HeaderName};
use serde_json::{Value, json};

use crate::model::{Connection, SecretSource, SecretValue};
use crate::providers::csp::CspAuth;
use crate::providers::http::{HttpClient, HttpRequest, HttpResponse, truncate_body};
use crate::providers::token::{Credential, Lease, TokenCache};
use crate::providers::{ProviderError, ProviderResult};

/// The XSRF header (header names are case-insensitive; D1/D3 spell it this way).
pub const XSRF_HEADER: &str = "x-xsrftoken";
/// Set by RaaS ≥ 8.3 on a 403 caused by a missing or invalid XSRF token.
pub const XSRF_MISSING_HEADER: &str = "x-xsrftoken-missing";
/// Tornado's XSRF cookie.
pub const XSRF_COOKIE: &str = "_xsrf";
/// On-prem login path (no trailing slash) and RPC path, below an optional `/raas` prefix
/// (VCF 9).
pub const LOGIN_PATH: &str = "/account/login";
/// Cloud login path, spelled as seed `000`'s cURL recipe spells it (trailing slash).
pub const CLOUD_LOGIN_PATH: &str = "/account/login/";
/// The older XSRF bootstrap (raas.md §1, D4: the Postman article's `GET {server}/version`),
/// tried when `GET /account/login` fails.
pub const VERSION_PATH: &str = "/version";
pub const RPC_PATH: &str = "/rpc";
/// Prefix tried when the plain paths answer 404/405 (VCF "Salt for VCF Components").
pub const VCF_PREFIX: &str = "/raas";
/// Default on-prem `token_type` asked for at login.
const JWT_TOKEN_TYPE: &str = "jwt";
/// RPC error code documented for internal server errors (the only one named by clients).
pub const RPC_INTERNAL_ERROR: i64 = 5000;
/// Logins in a row after which a call refused with 401 fails.
const MAX_RELOGINS: u32 = 3;

/// How the connection authenticates.
enum Credentials {
    /// Cloud: CSP API token → access token, sent as `Authorization: Bearer`.
    Cloud(Box<CspAuth>),
    /// On-prem: JSON login → `Authorization: JWT`.
    OnPrem {
        username: String,
        password: SecretSource,
        config_name: String,
    },
}

/// What one login established: the XSRF token, the cookies to send back and (on-prem) the
/// JWT. Cloud sessions take their Bearer from the CSP cache on every call.
#[derive(Clone, Debug, Default)]
pub struct Session {
    xsrf: Option<SecretValue>,
    cookies: BTreeMap<String, SecretValue>,
    jwt: Option<SecretValue>,
    /// The CSP access-token generation the login used (cloud only).
    csp_generation: Option<u64>,
}

/// An RPC-level error (HTTP 200 with a non-null `error`).
#[derive(Clone, Debug, PartialEq)]
pub struct RpcError {
    pub code: Option<i64>,
    pub message: String,
    pub detail: Option<Value>,
}

impl RpcError {
    /// A human-readable rendering, with the code when there is one.
    pub fn describe(&self) -> String {
        let mut text = match self.code {
            Some(code) => format!("RPC error {code}: {}", self.message),
            None => format!("RPC error: {}", self.message),
        };
        if let Some(detail) = &self.detail
            && !detail.is_null()
        {
            text.push_str(&format!(
                " ({})",
                truncate_body(detail.to_string().as_bytes())
            ));
        }
        text
    }

    /// Whether the server refused because other objects depend on this one.
    pub fn is_dependency_failure(&self) -> bool {
        let detail = self
            .detail
            .as_ref()
            .map(Value::to_string)
            .unwrap_or_default();
        self.message.contains("FailedResourceDependency")
            || detail.contains("FailedResourceDependency")
            || self.message.to_lowercase().contains("depend")
    }
}

/// One call of a batch, or a single call.
#[derive(Clone, Debug)]
pub struct RpcCall {
    pub resource: &'static str,
    pub method: &'static str,
    pub kwarg: Value,
}

impl RpcCall {
    pub fn new(resource: &'static str, method: &'static str, kwarg: Value) -> Self {
        Self {
            resource,
            method,
            kwarg,
        }
    }

    pub fn name(&self) -> String {
        format!("{}.{}", self.resource, self.method)
    }
}

/// The login and transport of one RaaS connection.
pub struct RaasSession {
    connection: String,
    http: HttpClient,
    credentials: Credentials,
    sessions: TokenCache<Session>,
    riq: AtomicU64,
    /// Set once the plain paths answered 404/405 and `/raas/...` is used instead.
    vcf_paths: AtomicBool,
}

impl RaasSession {
    pub fn new(connection: &Connection, http: HttpClient) -> ProviderResult<Self> {
        let config = &connection.config;
        let credentials = match (&config.api_token, &config.username, &config.password) {
            (Some(_), None, None) => Credentials::Cloud(Box::new(CspAuth::new(
                &connection.name,
                config,
                http.clone(),
            ))),
            (None, Some(username), Some(password)) => Credentials::OnPrem {
                username: username.clone(),
                password: password.clone(),
                config_name: config.config_name.clone(),
            },
            (Some(_), _, _) => {
                return Err(ProviderError::Config {
                    connection: connection.name.clone(),
                    message: "a raas connection takes either `api_token` (cloud) or `username` and `password` (on-prem), not both".to_string(),
                });
            }
            _ => {
                return Err(ProviderError::Config {
                    connection: connection.name.clone(),
                    message: "a raas connection needs `api_token` (cloud) or `username` and `password` (on-prem)".to_string(),
                });
            }
        };
        Ok(Self {
            connection: connection.name.clone(),
            http,
            credentials,
            sessions: TokenCache::new(config.refresh_before_expiry),
            riq: AtomicU64::new(1),
            vcf_paths: AtomicBool::new(false),
        })
    }

    fn path(&self, path: &str) -> String {
        if self.vcf_paths.load(Ordering::Relaxed) {
            format!("{VCF_PREFIX}{path}")
        } else {
            path.to_string()
        }
    }

    fn auth_error(&self, message: impl Into<String>) -> ProviderError {
        ProviderError::Auth {
            connection: self.connection.clone(),
            message: message.into(),
        }
    }

    /// Calls one method; `Ok(Err(_))` is an RPC-level error.
    pub async fn call(
        &self,
        call: &RpcCall,
        idempotent: bool,
    ) -> ProviderResult<Result<Value, RpcError>> {
        let riq = self.riq.fetch_add(1, Ordering::Relaxed);
        let body = json!({
            "resource": call.resource,
            "method": call.method,
            "kwarg": call.kwarg,
            "riq": riq,
        });
        let response = self.post_rpc(body, idempotent, &call.name()).await?;
        parse_call_reply(&response, call)
    }

    /// Sends several calls in one request (`raas.md` §3.4); replies come back in order.
    pub async fn call_many(
        &self,
        calls: &[RpcCall],
        idempotent: bool,
    ) -> ProviderResult<Vec<Result<Value, RpcError>>> {
        if calls.is_empty() {
            return Ok(Vec::new());
        }
        let body: Vec<Value> = calls
            .iter()
            .map(|call| {
                json!({
                    "resource": call.resource,
                    "method": call.method,
                    "kwarg": call.kwarg,
                    "riq": self.riq.fetch_add(1, Ordering::Relaxed),
                })
            })
            .collect();
        let response = self
            .post_rpc(Value::Array(body), idempotent, "batch")
            .await?;
        let reply: Value = response.json()?;
        let protocol = |message: String| ProviderError::Protocol {
            method: "POST".to_string(),
            path: response.path.clone(),
            message,
        };
        // C1's shape is `{batched_retcode, ret: [...]}`; a bare list is also accepted.
        let items = match reply {
            Value::Array(items) => items,
            Value::Object(mut map) => match map.remove("ret") {
                Some(Value::Array(items)) => items,
                _ => {
                    return Err(protocol(format!(
                        "batch reply has no `ret` list: {}",
                        truncate_body(&response.body)
                    )));
                }
            },
            _ => {
                return Err(protocol(format!(
                    "batch reply is not a list: {}",
                    truncate_body(&response.body)
                )));
            }
        };
        if items.len() != calls.len() {
            return Err(protocol(format!(
                "batch of {} calls got {} replies",
                calls.len(),
                items.len()
            )));
        }
        items
            .into_iter()
            .map(|item| {
                parse_reply(item).ok_or_else(|| {
                    protocol("a batch reply item has neither `ret` nor `error`".to_string())
                })
            })
            .collect()
    }

    /// POSTs an envelope to `/rpc` with the session's credentials; re-logs in on 401 (up to
    /// [`MAX_RELOGINS`] times: a fresh token can expire while a request waits out
    /// `Retry-After`) or once on a non-JSON 200 (the login page), and refreshes the XSRF token
    /// once on a 403.
    async fn post_rpc(
        &self,
        body: Value,
        idempotent: bool,
        what: &str,
    ) -> ProviderResult<HttpResponse> {
        let mut relogins = 0u32;
        let mut xsrf_refreshed = false;
        loop {
            let (lease, bearer) = self.session().await?;
            let mut request = HttpRequest::post(self.path(RPC_PATH))
                .json(body.clone())
                .idempotent(idempotent);
            request = self.with_session(request, &lease.value);
            request = match (&bearer, &lease.value.jwt) {
                (Some(bearer), _) => request.secret_header(
                    AUTHORIZATION,
                    SecretValue::new(format!("Bearer {}", bearer.value.expose())),
                ),
                (None, Some(jwt)) => request.secret_header(
                    AUTHORIZATION,
                    SecretValue::new(format!("JWT {}", jwt.expose())),
                ),
                (None, None) => request,
            };
            let response = self.http.send(request).await?;
            tracing::trace!(connection = %self.connection, call = what, status = response.status, "raas rpc");
            match response.status {
                401 => {
                    if relogins >= MAX_RELOGINS {
                        return Err(self.auth_error(format!(
                            "`{what}` was refused with 401 after logging in again: {}",
                            auth_message(&response)
                        )));
                    }
                    relogins += 1;
                    self.drop_session(&lease, bearer.as_ref()).await;
                }
                403 if is_xsrf_refusal(&response) => {
                    if xsrf_refreshed {
                        return Err(self.auth_error(format!(
                            "`{what}` was refused with 403 (XSRF) after refreshing the XSRF token"
                        )));
                    }
                    xsrf_refreshed = true;
                    self.sessions.invalidate(lease.generation).await;
                }
                status if (200..300).contains(&status) => {
                    if serde_json::from_slice::<Value>(&response.body).is_ok() {
                        return Ok(response);
                    }
                    // An unauthenticated call may get the HTML login page with 200.
                    if relogins > 0 {
                        return Err(ProviderError::Protocol {
                            method: response.method.to_string(),
                            path: response.path.clone(),
                            message: format!(
                                "`{what}` on connection `{}` answered a page that is not JSON ({}) even after logging in again: {}",
                                self.connection,
                                response.describe(),
                                truncate_body(&response.body)
                            ),
                        });
                    }
                    relogins += 1;
                    self.drop_session(&lease, bearer.as_ref()).await;
                }
                _ => return Err(response.error(server_message(&response))),
            }
        }
    }

    async fn drop_session(&self, lease: &Lease<Session>, bearer: Option<&Lease<SecretValue>>) {
        self.sessions.invalidate(lease.generation).await;
        if let (Credentials::Cloud(csp), Some(bearer)) = (&self.credentials, bearer) {
            csp.invalidate(bearer.generation).await;
        }
    }

    /// The current session and, for cloud connections, the Bearer to send with it. A new
    /// CSP access token (refreshed ahead of expiry) means a new login.
    async fn session(&self) -> ProviderResult<(Lease<Session>, Option<Lease<SecretValue>>)> {
        let mut attempts = 0;
        loop {
            attempts += 1;
            let lease = self.sessions.get(|| self.login()).await?;
            let Credentials::Cloud(csp) = &self.credentials else {
                return Ok((lease, None));
            };
            let bearer = csp.access_token().await?;
            if lease.value.csp_generation == Some(bearer.generation) || attempts > 2 {
                return Ok((lease, Some(bearer)));
            }
            self.sessions.invalidate(lease.generation).await;
        }
    }

    fn with_session(&self, mut request: HttpRequest, session: &Session) -> HttpRequest {
        if let Some(xsrf) = &session.xsrf {
            request = request.secret_header(HeaderName::from_static(XSRF_HEADER), xsrf.clone());
        }
        if let Some(cookie) = cookie_header(&session.cookies) {
            request = request.secret_header(COOKIE, cookie);
        }
        request
    }

    /// When a cloud connection's CSP API token expires (`None` on-prem or when CSP does not
    /// say).
    pub async fn api_token_expiry(&self) -> ProviderResult<Option<chrono::DateTime<chrono::Utc>>> {
        match &self.credentials {
            Credentials::Cloud(csp) => csp.api_token_expiry().await,
            _ => Ok(None),
        }
    }

    async fn login(&self) -> ProviderResult<Credential<Session>> {
        let mut session = Session::default();
        match &self.credentials {
            Credentials::Cloud(csp) => {
                let mut bearer = csp.access_token().await?;
                let mut exchanges = 0u32;
                loop {
                    match self.cloud_login(&mut session, &bearer.value).await {
                        Err(LoginRefused::Unauthorized(_)) if exchanges < MAX_RELOGINS => {
                            // The access token may have expired on the way (a short-lived
                            // token on a slow link): exchange it again, a bounded number of
                            // times, as a refused RPC is.
                            tracing::debug!(connection = %self.connection, "raas refused the access token; exchanging it again");
                            exchanges += 1;
                            csp.invalidate(bearer.generation).await;
                            bearer = csp.access_token().await?;
                        }
                        Err(LoginRefused::Unauthorized(message)) => {
                            return Err(self.auth_error(format!(
                                "`POST {CLOUD_LOGIN_PATH}` refused the CSP access token: {message}"
                            )));
                        }
                        Err(LoginRefused::Other(err)) => return Err(err),
                        Ok(()) => break,
                    }
                }
                session.csp_generation = Some(bearer.generation);
            }
            Credentials::OnPrem {
                username,
                password,
                config_name,
            } => {
                let password =
                    crate::providers::read_secret(&self.connection, "password", password)?;
                session = self.bootstrap_xsrf().await?;
                self.onprem_login(&mut session, username, &password, config_name)
                    .await?;
            }
        }
        tracing::debug!(connection = %self.connection, xsrf = session.xsrf.is_some(), "logged in to raas");
        let lifetime = session.jwt.as_ref().and_then(jwt_lifetime);
        Ok(Credential {
            value: session,
            lifetime,
        })
    }

    /// The on-prem XSRF bootstrap: `GET /account/login` hands out the `_xsrf` cookie and the
    /// `X-Xsrftoken` header (raas.md §2.1). An answer that is a failure (401, 403, 5xx, an
    /// HTML page) is never fatal, as saltstack/raas-cli `salt_config_cli/api/client.py`
    /// (`_init_xsrf`) ignores the status of its GET: cookies are taken from whatever came back,
    /// the older `GET /version` bootstrap (raas.md §1, D4) is tried for the token, and the
    /// login is posted with what was found. No answer at all (the request's retry budget
    /// spent on a host that does not answer) is the error: the POST would meet the same host.
    async fn bootstrap_xsrf(&self) -> ProviderResult<Session> {
        let mut session = Session::default();
        let login = match self
            .http
            .send(HttpRequest::get(self.path(LOGIN_PATH)))
            .await
        {
            Ok(response)
                if matches!(response.status, 404 | 405)
                    && !self.vcf_paths.load(Ordering::Relaxed) =>
            {
                match self
                    .http
                    .send(HttpRequest::get(format!("{VCF_PREFIX}{LOGIN_PATH}")))
                    .await
                {
                    Ok(alternative) if alternative.is_success() => {
                        tracing::debug!(connection = %self.connection, "using the `/raas` API paths");
                        self.vcf_paths.store(true, Ordering::Relaxed);
                        Ok(alternative)
                    }
                    _ => Ok(response),
                }
            }
            other => other,
        };
        if let Err(err @ ProviderError::Transport { .. }) = login {
            return Err(err);
        }
        let bootstrapped = match &login {
            Ok(response) => {
                absorb(&mut session, response);
                response.is_success()
            }
            Err(_) => false,
        };
        if !bootstrapped {
            let failure = match &login {
                Ok(response) => response.describe(),
                Err(err) => err.to_string(),
            };
            tracing::debug!(connection = %self.connection, %failure, "`GET {LOGIN_PATH}` failed; logging in without it");
            if session.xsrf.is_none()
                && let Ok(version) = self
                    .http
                    .send(HttpRequest::get(self.path(VERSION_PATH)))
                    .await
                && version.is_success()
            {
                absorb(&mut session, &version);
            }
        }
        Ok(session)
    }

    /// Cloud login, exactly seed `000`'s cURL recipe: `POST {server}/account/login/` with
    /// `Authorization: Bearer <access token>` and nothing else (no prior GET, no XSRF, no
    /// cookie, no body; README.md "Corrections after the audit"). The XSRF token comes back in
    /// the `X-Xsrftoken` header or the `_xsrf` cookie, with the session cookie.
    async fn cloud_login(
        &self,
        session: &mut Session,
        bearer: &SecretValue,
    ) -> Result<(), LoginRefused> {
        let authorization = SecretValue::new(format!("Bearer {}", bearer.expose()));
        let login = |path: String| {
            HttpRequest::post(path)
                .secret_header(AUTHORIZATION, authorization.clone())
                .idempotent(true)
        };
        let mut response = self.http.send(login(self.path(CLOUD_LOGIN_PATH))).await?;
        if matches!(response.status, 404 | 405) && !self.vcf_paths.load(Ordering::Relaxed) {
            let alternative = self
                .http
                .send(login(format!("{VCF_PREFIX}{CLOUD_LOGIN_PATH}")))
                .await?;
            if !matches!(alternative.status, 404 | 405) {
                tracing::debug!(connection = %self.connection, "using the `/raas` API paths");
                self.vcf_paths.store(true, Ordering::Relaxed);
                response = alternative;
            }
        }
        match response.status {
            401 => Err(LoginRefused::Unauthorized(auth_message(&response))),
            status if (200..300).contains(&status) => {
                *session = Session::default();
                absorb(session, &response);
                Ok(())
            }
            _ => Err(LoginRefused::Other(
                response.error(server_message(&response)),
            )),
        }
    }

    /// On-prem login: JSON credentials with `config_name` → `jwt`.
    async fn onprem_login(
        &self,
        session: &mut Session,
        username: &str,
        password: &SecretValue,
        config_name: &str,
    ) -> ProviderResult<()> {
        let mut xsrf_refreshed = false;
        loop {
            let body = json!({
                "username": username,
                "password": password.expose(),
                "config_name": config_name,
                "token_type": JWT_TOKEN_TYPE,
            });
            let request = self.with_session(
                HttpRequest::post(self.path(LOGIN_PATH))
                    .json(body)
                    .idempotent(true),
                session,
            );
            let response = self.http.send(request).await?;
            match response.status {
                401 => {
                    return Err(self.auth_error(format!(
                        "`POST {LOGIN_PATH}` refused the username and password for `{username}` (config `{config_name}`): {}",
                        auth_message(&response)
                    )));
                }
                403 if !xsrf_refreshed => {
                    xsrf_refreshed = true;
                    *session = self.bootstrap_xsrf().await?;
                }
                status if (200..300).contains(&status) => {
                    absorb(session, &response);
                    let reply: LoginReply =
                        serde_json::from_slice(&response.body).map_err(|err| {
                            ProviderError::Protocol {
                                method: "POST".to_string(),
                                path: response.path.clone(),
                                // The body holds the JWT: never quote it.
                                message: format!(
                                    "the login reply is not the documented JSON: {err}"
                                ),
                            }
                        })?;
                    if reply.authenticated == Some(false) {
                        return Err(self.auth_error(format!(
                            "`POST {LOGIN_PATH}` answered `authenticated: false` for `{username}`"
                        )));
                    }
                    if let Some(name) = reply.attributes.and_then(|a| a.username)
                        && name != username
                    {
                        return Err(self.auth_error(format!(
                            "`POST {LOGIN_PATH}` logged in `{name}` instead of `{username}`"
                        )));
                    }
                    session.jwt = reply.jwt.map(|jwt| jwt.0);
                    if session.jwt.is_none() && session.cookies.len() <= 1 {
                        return Err(self.auth_error(format!(
                            "`POST {LOGIN_PATH}` returned neither a JWT nor a session cookie"
                        )));
                    }
                    return Ok(());
                }
                _ => return Err(response.error(server_message(&response))),
            }
        }
    }
}

enum LoginRefused {
    Unauthorized(String),
    Other(ProviderError),
}

impl From<ProviderError> for LoginRefused {
    fn from(err: ProviderError) -> Self {
        LoginRefused::Other(err)
    }
}

/// The lifetime a JWT states (`exp - iat`), read without verifying it. Measured from when it
/// was received, so a skewed server clock does not matter.
pub fn jwt_lifetime(jwt: &SecretValue) -> Option<Duration> {
    let payload = jwt.expose().split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    let exp = claims.get("exp")?.as_i64()?;
    let iat = claims.get("iat")?.as_i64()?;
    u64::try_from(exp - iat)
        .ok()
        .filter(|s| *s > 0)
        .map(Duration::from_secs)
}

/// A string read straight into a secret wrapper.
pub struct WireSecret(pub SecretValue);

impl<'de> serde::Deserialize<'de> for WireSecret {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = String::deserialize(deserializer)?;
        Ok(WireSecret(SecretValue::new(value)))
    }
}

#[derive(serde::Deserialize)]
struct LoginReply {
    jwt: Option<WireSecret>,
    attributes: Option<LoginAttributes>,
    authenticated: Option<bool>,
}

#[derive(serde::Deserialize)]
struct LoginAttributes {
    username: Option<String>,
}

/// Takes the cookies and the XSRF token a login response sets.
fn absorb(session: &mut Session, response: &HttpResponse) {
    for value in response.headers.get_all("set-cookie") {
        let Ok(text) = value.to_str() else { continue };
        let pair = text.split(';').next().unwrap_or_default();
        if let Some((name, value)) = pair.split_once('=') {
            let name = name.trim();
            let value = value.trim().trim_matches('"');
            if name.is_empty() {
                continue;
            }
            if value.is_empty() {
                session.cookies.remove(name);
            } else {
                session
                    .cookies
                    .insert(name.to_string(), SecretValue::new(value));
            }
        }
    }
    // The header must carry the cookie's value; the reply header is the fallback.
    if let Some(cookie) = session.cookies.get(XSRF_COOKIE) {
        session.xsrf = Some(cookie.clone());
    } else if let Some(header) = response.header(XSRF_HEADER).filter(|v| !v.is_empty()) {
        let token = SecretValue::new(header);
        session
            .cookies
            .insert(XSRF_COOKIE.to_string(), token.clone());
        session.xsrf = Some(token);
    }
}

fn cookie_header(cookies: &BTreeMap<String, SecretValue>) -> Option<SecretValue> {
    if cookies.is_empty() {
        return None;
    }
    let text = cookies
        .iter()
        .map(|(name, value)| format!("{name}={}", value.expose()))
        .collect::<Vec<_>>()
        .join("; ");
    Some(SecretValue::new(text))
}

fn is_xsrf_refusal(response: &HttpResponse) -> bool {
    response.headers.contains_key(XSRF_MISSING_HEADER)
        || String::from_utf8_lossy(&response.body)
            .to_lowercase()
            .contains("xsrf")
}

/// Reads the reply to one RPC call: its `ret`, or the RPC error it carries.
pub fn parse_call_reply(
    response: &HttpResponse,
    call: &RpcCall,
) -> ProviderResult<Result<Value, RpcError>> {
    let reply: Value = response.json()?;
    parse_reply(reply).ok_or_else(|| ProviderError::Protocol {
        method: "POST".to_string(),
        path: response.path.clone(),
        message: format!(
            "`{}` reply has neither `ret` nor `error`: {}",
            call.name(),
            truncate_body(&response.body)
        ),
    })
}

/// `{riq, ret, error, warnings}` → the value or the RPC error; `None` if neither is there.
fn parse_reply(reply: Value) -> Option<Result<Value, RpcError>> {
    let Value::Object(mut map) = reply else {
        return None;
    };
    if let Some(warnings) = map.get("warnings").and_then(Value::as_array) {
        for warning in warnings {
            tracing::warn!(warning = %warning, "raas warning");
        }
    }
    match map.get("error") {
        Some(Value::Null) | None => {
            if !map.contains_key("ret") && !map.contains_key("error") {
                return None;
            }
            Some(Ok(map.remove("ret").unwrap_or(Value::Null)))
        }
        Some(Value::Object(error)) => Some(Err(RpcError {
            code: error.get("code").and_then(Value::as_i64),
            message: error
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("(no message)")
                .to_string(),
            detail: error.get("detail").cloned(),
        })),
        Some(other) => Some(Err(RpcError {
            code: None,
            message: other.to_string(),
            detail: None,
        })),
    }
}

/// The message of a 401 body `{"errors":[{title, message, detail}]}`.
fn auth_message(response: &HttpResponse) -> String {
    serde_json::from_slice::<Value>(&response.body)
        .ok()
        .and_then(|body| {
            let first = body.get("errors")?.get(0)?;
            let title = first.get("title").and_then(Value::as_str);
            let message = first.get("message").and_then(Value::as_str);
            match (title, message) {
                (Some(t), Some(m)) => Some(format!("{t}: {m}")),
                (Some(t), None) => Some(t.to_string()),
                (None, Some(m)) => Some(m.to_string()),
                (None, None) => None,
            }
        })
        .unwrap_or_else(|| format!("status {}", response.status))
}

fn server_message(response: &HttpResponse) -> String {
    let parsed = serde_json::from_slice::<Value>(&response.body).ok();
    if let Some(body) = &parsed
        && let Some(errors) = body.get("errors")
        && errors.is_array()
    {
        return auth_message(response);
    }
    if let Some(message) = parsed
        .as_ref()
        .and_then(|b| b.get("message"))
        .and_then(Value::as_str)
    {
        return message.to_string();
    }
    truncate_body(&response.body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue};

    fn response(headers: &[(&'static str, &str)], body: &str) -> HttpResponse {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        HttpResponse {
            method: reqwest::Method::GET,
            path: LOGIN_PATH.to_string(),
            status: 200,
            headers: map,
            body: body.as_bytes().to_vec(),
        }
    }

    fn empty() -> Session {
        Session {
            xsrf: None,
            cookies: BTreeMap::new(),
            jwt: None,
            csp_generation: None,
        }
    }

    #[test]
    fn xsrf_comes_from_the_cookie_first_then_the_header() {
        let mut session = empty();
        absorb(
            &mut session,
            &response(
                &[
                    ("set-cookie", "_xsrf=2|abc|def; Path=/"),
                    ("set-cookie", "session=s1; HttpOnly"),
                    ("x-xsrftoken", "other"),
                ],
                "",
            ),
        );
        assert_eq!(session.xsrf.as_ref().unwrap().expose(), "2|abc|def");
        let cookie = cookie_header(&session.cookies).unwrap();
        assert_eq!(cookie.expose(), "_xsrf=2|abc|def; session=s1");

        let mut header_only = empty();
        absorb(&mut header_only, &response(&[("X-Xsrftoken", "tok")], ""));
        assert_eq!(header_only.xsrf.as_ref().unwrap().expose(), "tok");
        assert_eq!(
            cookie_header(&header_only.cookies).unwrap().expose(),
            "_xsrf=tok"
        );

        let mut disabled = empty();
        absorb(&mut disabled, &response(&[], ""));
        assert!(disabled.xsrf.is_none());
        assert!(cookie_header(&disabled.cookies).is_none());
    }

    #[test]
    fn replies_split_into_values_and_rpc_errors() {
        let ok = json!({"riq": 1, "ret": {"count": 0}, "error": null, "warnings": []});
        assert_eq!(parse_reply(ok).unwrap().unwrap(), json!({"count": 0}));
        let err = json!({"riq": 1, "ret": null, "error": {"code": 5000, "message": "boom", "detail": {"x": 1}}});
        let err = parse_reply(err).unwrap().unwrap_err();
        assert_eq!(err.code, Some(RPC_INTERNAL_ERROR));
        assert!(err.describe().contains("boom"));
        assert!(parse_reply(json!({"other": 1})).is_none());
        assert!(parse_reply(json!([1])).is_none());
    }

    #[test]
    fn xsrf_refusals_are_recognized_by_header_or_text() {
        let mut by_header = response(&[("x-xsrftoken-missing", "missing xsrf")], "");
        by_header.status = 403;
        assert!(is_xsrf_refusal(&by_header));
        let by_text = response(&[], "'_xsrf' argument missing from POST");
        assert!(is_xsrf_refusal(&by_text));
        assert!(!is_xsrf_refusal(&response(&[], "forbidden")));
    }

    #[test]
    fn jwt_lifetimes_come_from_exp_minus_iat() {
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let claims = engine.encode(br#"{"sub":"root","iat":1000,"exp":2800}"#);
        let jwt = SecretValue::new(format!("h.{claims}.sig"));
        assert_eq!(jwt_lifetime(&jwt), Some(Duration::from_secs(1800)));
        assert_eq!(jwt_lifetime(&SecretValue::new("opaque")), None);
    }

    #[test]
    fn dependency_failures_are_recognized() {
        let err = RpcError {
            code: Some(1),
            message: "FailedResourceDependency: schedules s1".to_string(),
            detail: None,
        };
        assert!(err.is_dependency_failure());
    }
}
