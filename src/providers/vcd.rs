//! Cloud Director API tokens (`vcd.md`): logging in (OAuth refresh grant with an API token,
//! or a Basic user/password session), listing tokens through cloudapi (paged, filtered by
//! name and owner), creating one (client registration + the one-time jwt-bearer grant that
//! returns the secret) and revoking it. Only this module knows the Cloud Director wire format.

use base64::Engine;
use reqwest::Method;
use reqwest::header::{ACCEPT, AUTHORIZATION};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::model::kinds::vcd_api_token::token_file::{self, base_token_name};
use crate::model::{Connection, Kind, SecretSource, SecretValue};
use crate::providers::http::{FormValue, HttpClient, HttpRequest, HttpResponse, truncate_body};
use crate::providers::raas::session::jwt_lifetime;
use crate::providers::token::{Credential, Lease, TokenCache};
use crate::providers::{
    Attributes, CreateRequest, DeleteRequest, IssuedSecret, LiveObject, LiveStatus, Outcome,
    Provider, ProviderError, ProviderResult, TaskHandle, TaskStatus, UpdateRequest,
};

/// cloudapi token collection.
pub const TOKENS_PATH: &str = "/cloudapi/1.0.0/tokens";
/// Tenant and provider (org `System`) session logins.
pub const TENANT_SESSIONS_PATH: &str = "/cloudapi/1.0.0/sessions";
pub const PROVIDER_SESSIONS_PATH: &str = "/cloudapi/1.0.0/sessions/provider";
/// The current session (tells who is logged in).
pub const CURRENT_SESSION_PATH: &str = "/cloudapi/1.0.0/sessions/current";
/// Response header carrying the session JWT.
pub const ACCESS_TOKEN_HEADER: &str = "x-vmware-vcloud-access-token";
/// Largest page cloudapi serves (go-vcloud-director: "maximum supported").
pub const PAGE_SIZE: u64 = 128;
/// The OAuth grant that turns a session JWT into a token's one-time secret.
pub const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// A token's id is this prefix plus the registered `client_id`.
pub const TOKEN_URN_PREFIX: &str = "urn:vcloud:token:";
/// `token_type` of the issued secret, as written to the token file.
pub const ISSUED_TOKEN_TYPE: &str = "API Token";
/// Token types a user API token may have (`vcd.md` §6).
const TOKEN_TYPE_FILTER: &str = "(type==PROXY,type==REFRESH)";
/// Attempts of a client registration (each after looking the name up).
pub const MAX_REGISTER_ATTEMPTS: u32 = 5;
/// Logins in a row after which a request refused with 401 fails.
const MAX_RELOGINS: u32 = 3;

/// The Cloud Director provider of one connection.
pub struct VcdProvider {
    connection: String,
    http: HttpClient,
    org: String,
    api_version: String,
    username: Option<String>,
    password: Option<SecretSource>,
    api_token: Option<SecretSource>,
    /// Access tokens from the refresh grant (connections with `api_token`).
    grants: TokenCache<SecretValue>,
    /// User/password session JWTs.
    sessions: TokenCache<SecretValue>,
    /// The logged-in user's name, once known.
    owner: tokio::sync::OnceCell<String>,
    /// Revokes of several generations waiting on a task, by stand-in task id.
    revokes: std::sync::Mutex<std::collections::HashMap<String, RevokesInTurn>>,
    revokes_started: std::sync::atomic::AtomicU64,
}

/// The id prefix of the stand-in task of several revokes in turn.
const REVOKES_TASK_PREFIX: &str = "revokes/";

/// Generations revoked one after the other, the current one waiting on a server task. It is
/// not waited for here: each poll of the stand-in task (the executor's loop owns the delay
/// between polls) polls the current task and, once it is done, revokes the next generations.
#[derive(Clone, Debug)]
struct RevokesInTurn {
    current: TaskHandle,
    /// Generations still to revoke, in order.
    rest: std::collections::VecDeque<String>,
}

/// Which login a call uses.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Login {
    /// The connection's usual one: the API token when there is one, else user/password.
    Default,
    /// A user/password session (token management needs one).
    User,
}

impl VcdProvider {
    /// Builds the client; never contacts the server (login happens on the first call).
    pub fn new(connection: &Connection) -> ProviderResult<Self> {
        let config = &connection.config;
        if config.api_token.is_none() && (config.username.is_none() || config.password.is_none()) {
            return Err(ProviderError::Config {
                connection: connection.name.clone(),
                message: "a vcd connection needs `api_token`, or `username` and `password`"
                    .to_string(),
            });
        }
        Ok(Self {
            connection: connection.name.clone(),
            http: HttpClient::new(&connection.name, config)?,
            org: config.org.clone(),
            api_version: config.api_version.clone(),
            username: config.username.clone(),
            password: config.password.clone(),
            api_token: config.api_token.clone(),
            grants: TokenCache::new(config.refresh_before_expiry),
            sessions: TokenCache::new(config.refresh_before_expiry),
            owner: tokio::sync::OnceCell::new(),
            revokes: Default::default(),
            revokes_started: std::sync::atomic::AtomicU64::new(0),
        })
    }

    fn is_provider(&self) -> bool {
        self.org.eq_ignore_ascii_case("system")
    }

    /// `/oauth/provider` for org System, `/oauth/tenant/{org}` otherwise.
    fn oauth_base(&self) -> String {
        if self.is_provider() {
            "/oauth/provider".to_string()
        } else {
            format!("/oauth/tenant/{}", encode_segment(&self.org))
        }
    }

    fn cloudapi_accept(&self) -> String {
        format!("application/json;version={}", self.api_version)
    }

    fn auth_error(&self, message: impl Into<String>) -> ProviderError {
        ProviderError::Auth {
            connection: self.connection.clone(),
            message: message.into(),
        }
    }

    fn has_user_login(&self) -> bool {
        self.username.is_some() && self.password.is_some()
    }

    /// The login that lists, creates and revokes tokens: the user session whenever the
    /// connection has one. A session opened from an API token may not create tokens nor view
    /// or revoke any but its own (seed `004`; go-vcloud-director `govcd/api_token.go` uses
    /// the user session; `../shared/api/README.md`, "Corrections").
    fn token_login(&self) -> Login {
        if self.has_user_login() {
            Login::User
        } else {
            Login::Default
        }
    }

    async fn bearer(&self, login: Login) -> ProviderResult<(Login, Lease<SecretValue>)> {
        if login == Login::Default && self.api_token.is_some() {
            Ok((
                Login::Default,
                self.grants.get(|| self.refresh_grant()).await?,
            ))
        } else {
            Ok((Login::User, self.sessions.get(|| self.user_login()).await?))
        }
    }

    async fn invalidate(&self, login: Login, generation: u64) {
        match login {
            Login::Default => self.grants.invalidate(generation).await,
            Login::User => self.sessions.invalidate(generation).await,
        }
    }

    /// `grant_type=refresh_token` with the connection's API token.
    async fn refresh_grant(&self) -> ProviderResult<Credential<SecretValue>> {
        let source = self
            .api_token
            .as_ref()
            .ok_or_else(|| ProviderError::Config {
                connection: self.connection.clone(),
                message: "`api_token` is required for the refresh grant".to_string(),
            })?;
        let api_token = crate::providers::read_secret(&self.connection, "api_token", source)?;
        let api_token = token_file_secret(api_token);
        let request = HttpRequest::post(format!("{}/token", self.oauth_base()))
            .header(ACCEPT, "application/json")
            .form(vec![
                (
                    "grant_type".to_string(),
                    FormValue::Plain("refresh_token".to_string()),
                ),
                ("refresh_token".to_string(), FormValue::Secret(api_token)),
            ])
            // A user API token is not rotated: asking twice only mints another access token.
            .idempotent(true);
        let response = self.http.send(request).await?;
        if !response.is_success() {
            let message = vcd_message(&response);
            if matches!(response.status, 400 | 401 | 403) {
                return Err(self.auth_error(format!(
                    "the API token was refused at `{}/token`: {message}; check that it is valid, not revoked, and belongs to a user of org `{}`",
                    self.oauth_base(),
                    self.org
                )));
            }
            return Err(response.error(message));
        }
        let grant: GrantReply = parse_secret_reply(&response)?;
        let token = grant.access_token.ok_or_else(|| ProviderError::Protocol {
            method: "POST".to_string(),
            path: response.path.clone(),
            message: "the grant reply has no `access_token`".to_string(),
        })?;
        tracing::debug!(connection = %self.connection, "obtained a cloud director access token");
        Ok(Credential {
            value: token.0,
            lifetime: grant
                .expires_in
                .filter(|s| *s > 0)
                .map(std::time::Duration::from_secs),
        })
    }

    /// A user/password session: Basic `user@org` → JWT in `X-VMWARE-VCLOUD-ACCESS-TOKEN`.
    async fn user_login(&self) -> ProviderResult<Credential<SecretValue>> {
        let (Some(username), Some(source)) = (&self.username, &self.password) else {
            return Err(ProviderError::Config {
                connection: self.connection.clone(),
                message: "managing API tokens needs `username` and `password` on the connection (an API-token session cannot create or revoke tokens)".to_string(),
            });
        };
        let password = crate::providers::read_secret(&self.connection, "password", source)?;
        let user = if username.contains('@') {
            username.clone()
        } else {
            format!("{username}@{}", self.org)
        };
        let basic = base64::engine::general_purpose::STANDARD
            .encode(format!("{user}:{}", password.expose()));
        let path = if self.is_provider() {
            PROVIDER_SESSIONS_PATH
        } else {
            TENANT_SESSIONS_PATH
        };
        let request = HttpRequest::post(path)
            .header(ACCEPT, self.cloudapi_accept())
            .secret_header(AUTHORIZATION, SecretValue::new(format!("Basic {basic}")))
            .idempotent(true);
        let response = self.http.send(request).await?;
        if matches!(response.status, 401 | 403) {
            return Err(self.auth_error(format!(
                "`POST {path}` refused the username and password of `{user}`: {}",
                vcd_message(&response)
            )));
        }
        if !response.is_success() {
            return Err(response.error(vcd_message(&response)));
        }
        let jwt = response
            .header(ACCESS_TOKEN_HEADER)
            .filter(|v| !v.is_empty())
            .map(SecretValue::new)
            .ok_or_else(|| ProviderError::Protocol {
                method: "POST".to_string(),
                path: path.to_string(),
                message: format!("the session reply has no `{ACCESS_TOKEN_HEADER}` header"),
            })?;
        tracing::debug!(connection = %self.connection, user = %user, "logged in to cloud director");
        let lifetime = jwt_lifetime(&jwt);
        Ok(Credential {
            value: jwt,
            lifetime,
        })
    }

    /// Sends a request with a Bearer token; logs in again on 401, up to [`MAX_RELOGINS`]
    /// times (a fresh token can expire while a request waits out `Retry-After`).
    async fn send_authenticated(
        &self,
        login: Login,
        build: impl Fn() -> HttpRequest,
    ) -> ProviderResult<HttpResponse> {
        let mut relogins = 0;
        loop {
            let (used, lease) = self.bearer(login).await?;
            let request = build().secret_header(
                AUTHORIZATION,
                SecretValue::new(format!("Bearer {}", lease.value.expose())),
            );
            let response = self.http.send(request).await?;
            if response.status == 401 && relogins < MAX_RELOGINS {
                relogins += 1;
                self.invalidate(used, lease.generation).await;
                continue;
            }
            if response.status == 401 {
                return Err(self.auth_error(format!(
                    "`{} {}` was refused with 401 after logging in again: {}",
                    response.method,
                    response.path,
                    vcd_message(&response)
                )));
            }
            return Ok(response);
        }
    }

    /// The name of the user whose tokens this connection manages.
    async fn owner(&self) -> ProviderResult<&str> {
        self.owner
            .get_or_try_init(|| async {
                if let Some(username) = &self.username {
                    return Ok(username.split('@').next().unwrap_or(username).to_string());
                }
                let response = self
                    .send_authenticated(Login::Default, || {
                        HttpRequest::get(CURRENT_SESSION_PATH)
                            .header(ACCEPT, self.cloudapi_accept())
                    })
                    .await?;
                if !response.is_success() {
                    return Err(response.error(vcd_message(&response)));
                }
                let body: Value = response.json()?;
                body.get("user")
                    .and_then(|u| u.get("name"))
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .ok_or_else(|| ProviderError::Protocol {
                        method: "GET".to_string(),
                        path: CURRENT_SESSION_PATH.to_string(),
                        message: "the session has no `user.name`".to_string(),
                    })
            })
            .await
            .map(String::as_str)
    }

    /// The owner's tokens (one name, or all when `name` is `None`), every page.
    async fn list_tokens(&self, name: Option<&str>) -> ProviderResult<Vec<Token>> {
        let owner = self.owner().await?.to_string();
        let filter = match name.filter(|n| fiql_safe(n)) {
            Some(name) => format!("(name=={name};owner.name=={owner};{TOKEN_TYPE_FILTER})"),
            None if fiql_safe(&owner) => format!("(owner.name=={owner};{TOKEN_TYPE_FILTER})"),
            None => TOKEN_TYPE_FILTER.to_string(),
        };
        let first = self.token_page(&filter, 1, PAGE_SIZE).await?;
        let total = first.result_total;
        let page_size = first.page_size.filter(|s| *s > 0).unwrap_or(PAGE_SIZE);
        let pages = first
            .page_count
            .unwrap_or_else(|| total.div_ceil(page_size.max(1)));
        if pages > MAX_LIST_PAGES {
            return Err(ProviderError::Protocol {
                method: "GET".to_string(),
                path: TOKENS_PATH.to_string(),
                message: format!(
                    "the token list claims {pages} pages, more than the {MAX_LIST_PAGES} this client reads"
                ),
            });
        }
        let mut values = first.values;
        if pages > 1 {
            let rest = futures::future::try_join_all(
                (2..=pages).map(|page| self.token_page(&filter, page, page_size)),
            )
            .await?;
            for page in rest {
                values.extend(page.values);
            }
        }
        if values.len() as u64 != total {
            return Err(ProviderError::Protocol {
                method: "GET".to_string(),
                path: TOKENS_PATH.to_string(),
                message: format!(
                    "collected {} tokens but `resultTotal` is {total}; the list changed while paging, run again",
                    values.len()
                ),
            });
        }
        Ok(values
            .into_iter()
            .filter(|t| {
                t.owner
                    .as_ref()
                    .and_then(|o| o.name.as_deref())
                    .is_none_or(|o| o == owner)
            })
            .filter(|t| name.is_none_or(|n| t.name == n))
            .collect())
    }

    async fn token_page(
        &self,
        filter: &str,
        page: u64,
        page_size: u64,
    ) -> ProviderResult<TokenPage> {
        let response = self
            .send_authenticated(self.token_login(), || {
                HttpRequest::get(TOKENS_PATH)
                    .header(ACCEPT, self.cloudapi_accept())
                    .query("filter", filter)
                    .query("page", page.to_string())
                    .query("pageSize", page_size.to_string())
            })
            .await?;
        if !response.is_success() {
            return Err(response.error(vcd_message(&response)));
        }
        parse_token_page(&response)
    }

    /// The one live token named `name` of this owner, if any.
    async fn find_token(&self, name: &str) -> ProviderResult<Option<Token>> {
        let mut tokens = self.list_tokens(Some(name)).await?;
        match tokens.len() {
            0 => Ok(None),
            1 => Ok(tokens.pop()),
            n => Err(ProviderError::Invalid(format!(
                "{n} live API tokens are named `{name}` for the same user on connection `{}`",
                self.connection
            ))),
        }
    }

    /// Registers an OAuth client named `name`; a registration whose reply was lost is
    /// found by name instead of being sent again.
    async fn register(&self, name: &str) -> ProviderResult<String> {
        let path = format!("{}/register", self.oauth_base());
        let mut attempt = 1;
        loop {
            let result = self
                .send_authenticated(Login::User, || {
                    HttpRequest::post(path.clone())
                        .header(ACCEPT, "application/json")
                        .json(json!({"client_name": name}))
                        .idempotent(false)
                })
                .await;
            let failure = match result {
                Ok(response) if response.is_success() => {
                    return parse_register_reply(&response);
                }
                Ok(response) => response.error(vcd_message(&response)),
                Err(err) => err,
            };
            if !may_have_committed(&failure) {
                return Err(failure);
            }
            tracing::debug!(connection = %self.connection, name, attempt, "the registration may have reached the server; looking it up by name");
            if let Some(token) = self.find_token(name).await? {
                return Ok(token
                    .id
                    .strip_prefix(TOKEN_URN_PREFIX)
                    .unwrap_or(&token.id)
                    .to_string());
            }
            if attempt >= MAX_REGISTER_ATTEMPTS {
                return Err(failure);
            }
            attempt += 1;
        }
    }

    /// The one-time jwt-bearer grant, with a session logged in just before it; on
    /// `invalid_grant`, logs in again and retries once with the same `client_id`.
    async fn initial_grant(&self, name: &str, client_id: &str) -> ProviderResult<SecretValue> {
        let path = format!("{}/token", self.oauth_base());
        let mut retried = false;
        loop {
            let assertion = self.user_login().await?.value;
            let request = HttpRequest::post(path.clone())
                .header(ACCEPT, "application/json")
                .form(vec![
                    (
                        "grant_type".to_string(),
                        FormValue::Plain(JWT_BEARER_GRANT.to_string()),
                    ),
                    ("assertion".to_string(), FormValue::Secret(assertion)),
                    (
                        "client_id".to_string(),
                        FormValue::Plain(client_id.to_string()),
                    ),
                ])
                // Resent on 503/504 or a broken connection: if the first grant was carried
                // out, its secret is lost whatever we do (the resend fails with
                // `invalid_grant`); if it was not, the resend receives the secret.
                .idempotent(true);
            let response = match self.http.send(request).await {
                Ok(response) => response,
                Err(err) => return Err(lost_secret(name, client_id, &err.to_string())),
            };
            if response.is_success() {
                return parse_grant_reply(&response, name);
            }
            if is_invalid_grant(&response) && !retried {
                tracing::debug!(connection = %self.connection, name, "invalid_grant; logging in again");
                retried = true;
                continue;
            }
            if matches!(response.status, 500 | 502 | 503 | 504) {
                return Err(lost_secret(name, client_id, &vcd_message(&response)));
            }
            return Err(response.error(format!(
                "the one-time grant for token `{name}` (`{TOKEN_URN_PREFIX}{client_id}`) failed: {}",
                vcd_message(&response)
            )));
        }
    }
}

#[async_trait::async_trait]
impl Provider for VcdProvider {
    async fn list(&self, kind: Kind, names: &[String]) -> ProviderResult<Vec<LiveObject>> {
        if kind != Kind::VcdApiToken {
            return Err(unsupported(kind));
        }
        // Every generation of a rotated token is listed: they carry names of their own.
        let tokens = self.list_tokens(None).await?;
        let mut groups: std::collections::BTreeMap<&str, Vec<&Token>> = Default::default();
        for token in &tokens {
            groups
                .entry(base_token_name(&token.name))
                .or_default()
                .push(token);
        }
        Ok(groups
            .into_iter()
            .filter(|(base, _)| !matches!(names, [one] if one != base))
            .map(|(base, generations)| generations_object(base, generations))
            .collect())
    }

    async fn create(&self, request: &CreateRequest<'_>) -> ProviderResult<Outcome> {
        if request.address.kind != Kind::VcdApiToken {
            return Err(unsupported(request.address.kind));
        }
        if !self.has_user_login() {
            return Err(ProviderError::Config {
                connection: self.connection.clone(),
                message: "creating an API token needs `username` and `password` on the connection (an API-token session cannot create tokens)".to_string(),
            });
        }
        let name = &request.address.name;
        // Registration takes no client-chosen id: a token of this name created since the plan
        // listed (a racing apply) is adopted, not registered twice. Its one-time secret went
        // to whoever created it.
        if let Some(twin) = self.find_token(name).await? {
            tracing::warn!(
                "API token `{name}` appeared on connection `{}` after the plan read it ({}); adopting it: its one-time secret went to the run that created it",
                self.connection,
                twin.id
            );
            return Ok(Outcome::Done {
                attributes: Attributes::from([("id".to_string(), twin.id)]),
                secret: None,
            });
        }
        let client_id = self.register(name).await?;
        let secret = self.initial_grant(name, &client_id).await?;
        let id = format!("{TOKEN_URN_PREFIX}{client_id}");
        Ok(Outcome::Done {
            attributes: Attributes::from([("id".to_string(), id.clone())]),
            secret: Some(IssuedSecret {
                token_type: ISSUED_TOKEN_TYPE.to_string(),
                value: secret,
                id: Some(id),
            }),
        })
    }

    async fn update(&self, request: &UpdateRequest<'_>) -> ProviderResult<Outcome> {
        Err(ProviderError::Invalid(format!(
            "API token `{}` cannot be changed in place; it is replaced instead",
            request.address.name
        )))
    }

    async fn delete(&self, request: &DeleteRequest<'_>) -> ProviderResult<Outcome> {
        if request.address.kind != Kind::VcdApiToken {
            return Err(unsupported(request.address.kind));
        }
        // Every generation, oldest first; the executor polls a revoke's task.
        let ids = generation_ids(request.live);
        self.revoke_in_turn(&request.live.id, ids.into()).await
    }

    async fn poll(&self, task: &TaskHandle) -> ProviderResult<TaskStatus> {
        if task.id.starts_with(REVOKES_TASK_PREFIX) {
            return self.poll_revokes(task).await;
        }
        self.poll_task(task).await
    }
}

impl VcdProvider {
    /// Revokes `ids` in order until one answers with a task: that task when it was the last,
    /// else a stand-in task whose polls carry on with the rest ([`VcdProvider::poll_revokes`]).
    async fn revoke_in_turn(
        &self,
        object_id: &str,
        ids: std::collections::VecDeque<String>,
    ) -> ProviderResult<Outcome> {
        let Some(waiting) = self.revoke_until_task(ids).await? else {
            return Ok(Outcome::done());
        };
        if waiting.rest.is_empty() {
            return Ok(Outcome::Task(waiting.current));
        }
        let n = self
            .revokes_started
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let stand_in = TaskHandle {
            kind: Kind::VcdApiToken,
            id: format!("{REVOKES_TASK_PREFIX}{object_id}/{n}"),
            object_id: object_id.to_string(),
        };
        self.revokes_waiting().insert(stand_in.id.clone(), waiting);
        Ok(Outcome::Task(stand_in))
    }

    /// Revokes `ids` in order until one answers with a task; `None` when all are revoked.
    async fn revoke_until_task(
        &self,
        mut ids: std::collections::VecDeque<String>,
    ) -> ProviderResult<Option<RevokesInTurn>> {
        while let Some(id) = ids.pop_front() {
            if let Outcome::Task(task) = self.revoke(&id).await? {
                return Ok(Some(RevokesInTurn {
                    current: task,
                    rest: ids,
                }));
            }
        }
        Ok(None)
    }

    fn revokes_waiting(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, RevokesInTurn>> {
        self.revokes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A poll of revokes in turn: polls the current revoke's task; once it is done, revokes
    /// the next generations (pending again when one answers with a task).
    async fn poll_revokes(&self, task: &TaskHandle) -> ProviderResult<TaskStatus> {
        let Some(waiting) = self.revokes_waiting().get(&task.id).cloned() else {
            return Err(ProviderError::Invalid(format!(
                "there are no revokes `{}` to carry on",
                task.id
            )));
        };
        match self.poll_task(&waiting.current).await {
            Ok(TaskStatus::Done) => {}
            Ok(pending @ TaskStatus::Pending { .. }) => return Ok(pending),
            failed => {
                self.revokes_waiting().remove(&task.id);
                return failed;
            }
        }
        self.revokes_waiting().remove(&task.id);
        match self.revoke_until_task(waiting.rest).await? {
            None => Ok(TaskStatus::Done),
            Some(next) => {
                self.revokes_waiting().insert(task.id.clone(), next);
                Ok(TaskStatus::Pending {
                    progress: None,
                    eta: None,
                })
            }
        }
    }

    /// `DELETE /cloudapi/1.0.0/tokens/{id}`: revokes one generation.
    async fn revoke(&self, id: &str) -> ProviderResult<Outcome> {
        let id = id.to_string();
        let path = format!("{TOKENS_PATH}/{}", encode_segment(&id));
        let login = self.token_login();
        let response = self
            .send_authenticated(login, || {
                HttpRequest::new(Method::DELETE, path.clone())
                    .header(ACCEPT, self.cloudapi_accept())
            })
            .await?;
        match response.status {
            202 => match response.header("location").filter(|l| !l.is_empty()) {
                Some(location) => Ok(Outcome::Task(TaskHandle {
                    kind: Kind::VcdApiToken,
                    id: location.to_string(),
                    object_id: id,
                })),
                None => Ok(Outcome::done()),
            },
            status if (200..300).contains(&status) => Ok(Outcome::done()),
            // Cloud Director answers 403 for an id it does not know: gone already?
            403 | 404 => {
                let gone = self.list_tokens(None).await?.iter().all(|t| t.id != id);
                if gone {
                    Ok(Outcome::done())
                } else if login == Login::Default {
                    Err(response.error(format!(
                        "{}; revoking API tokens needs `username` and `password` on the connection",
                        vcd_message(&response)
                    )))
                } else {
                    Err(response.error(vcd_message(&response)))
                }
            }
            _ => Err(response.error(vcd_message(&response))),
        }
    }

    async fn poll_task(&self, task: &TaskHandle) -> ProviderResult<TaskStatus> {
        let accept = if task.id.contains("/cloudapi/") {
            self.cloudapi_accept()
        } else {
            format!("application/*+json;version={}", self.api_version)
        };
        let response = self
            .send_authenticated(self.token_login(), || {
                HttpRequest::get(task.id.clone()).header(ACCEPT, accept.clone())
            })
            .await?;
        if !response.is_success() {
            return Err(response.error(vcd_message(&response)));
        }
        let body: Value = response.json()?;
        Ok(task_status(&body))
    }
}

/// A task's state (`status`: queued, preRunning, running, success, error, aborted, canceled).
fn task_status(body: &Value) -> TaskStatus {
    let status = body
        .get("status")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_ascii_lowercase();
    match status.as_str() {
        "success" => TaskStatus::Done,
        "error" | "aborted" | "canceled" | "cancelled" => {
            let message = body
                .get("error")
                .and_then(|e| e.get("message"))
                .or_else(|| body.get("details"))
                .and_then(Value::as_str)
                .map_or_else(
                    || format!("the task ended with status `{status}`"),
                    str::to_string,
                );
            TaskStatus::Failed(message)
        }
        _ => TaskStatus::Pending {
            progress: body
                .get("progress")
                .and_then(Value::as_u64)
                .map(|p| p.min(100) as u8),
            eta: None,
        },
    }
}

fn unsupported(kind: Kind) -> ProviderError {
    ProviderError::Invalid(format!("the vcd provider does not manage {kind} objects"))
}

fn lost_secret(name: &str, client_id: &str, cause: &str) -> ProviderError {
    ProviderError::Invalid(format!(
        "API token `{name}` was registered as `{TOKEN_URN_PREFIX}{client_id}` but its one-time secret was not received ({cause}); it cannot be recovered: revoke the token and create it again"
    ))
}

/// Whether a failed request may still have been carried out by the server.
fn may_have_committed(err: &ProviderError) -> bool {
    match err {
        ProviderError::Transport { .. } => true,
        ProviderError::Api { status, .. } => matches!(status, 500 | 502 | 503 | 504),
        _ => false,
    }
}

fn is_invalid_grant(response: &HttpResponse) -> bool {
    let Ok(body) = serde_json::from_slice::<Value>(&response.body) else {
        return false;
    };
    ["minorErrorCode", "error"]
        .iter()
        .any(|key| body.get(*key).and_then(Value::as_str) == Some("invalid_grant"))
        || body
            .get("message")
            .and_then(Value::as_str)
            .is_some_and(|m| m.contains("invalid_grant"))
}

/// The server's message: `<minorErrorCode> - <message>` (never the stack trace), or the
/// OAuth `error` / `error_description`.
fn vcd_message(response: &HttpResponse) -> String {
    let Ok(body) = serde_json::from_slice::<Value>(&response.body) else {
        return if response.body.is_empty() {
            format!("status {}", response.status)
        } else {
            truncate_body(&response.body)
        };
    };
    let text = |key: &str| {
        body.get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    match (
        text("minorErrorCode").or(text("error")),
        text("message").or(text("error_description")),
    ) {
        (Some(code), Some(message)) => format!("{code} - {message}"),
        (Some(code), None) => code.to_string(),
        (None, Some(message)) => message.to_string(),
        (None, None) => format!("status {}", response.status),
    }
}

/// Most pages one token listing reads: a server claiming more gets an error, not millions of
/// requests.
const MAX_LIST_PAGES: u64 = 10_000;

/// Reads one page of `GET /cloudapi/1.0.0/tokens`.
fn parse_token_page(response: &HttpResponse) -> ProviderResult<TokenPage> {
    response.json()
}

/// Reads one page of the token list into live objects, with the page's `resultTotal`.
pub fn parse_token_list(response: &HttpResponse) -> ProviderResult<(u64, Vec<LiveObject>)> {
    let page = parse_token_page(response)?;
    Ok((
        page.result_total,
        page.values.iter().map(token_object).collect(),
    ))
}

/// The `client_id` of a registration reply.
pub fn parse_register_reply(response: &HttpResponse) -> ProviderResult<String> {
    let reply: RegisterReply = response.json()?;
    reply
        .client_id
        .filter(|c| !c.is_empty())
        .ok_or_else(|| ProviderError::Protocol {
            method: "POST".to_string(),
            path: response.path.clone(),
            message: "the registration reply has no `client_id`".to_string(),
        })
}

/// The refresh token of a one-time grant reply for token `name`.
pub fn parse_grant_reply(response: &HttpResponse, name: &str) -> ProviderResult<SecretValue> {
    let grant: GrantReply = parse_secret_reply(response)?;
    grant
        .refresh_token
        .map(|t| t.0)
        .ok_or_else(|| ProviderError::Protocol {
            method: "POST".to_string(),
            path: response.path.clone(),
            message: format!("the grant for token `{name}` returned no `refresh_token`"),
        })
}

/// Parses a reply that holds secrets; a parse error never quotes the body.
fn parse_secret_reply<T: serde::de::DeserializeOwned>(
    response: &HttpResponse,
) -> ProviderResult<T> {
    serde_json::from_slice(&response.body).map_err(|err| ProviderError::Protocol {
        method: response.method.to_string(),
        path: response.path.clone(),
        message: format!(
            "{}: the reply is not the documented JSON (line {}, column {}; body not shown: it may hold a secret)",
            response.describe(),
            err.line(),
            err.column()
        ),
    })
}

/// Names FIQL can carry verbatim; others are matched client-side only.
fn fiql_safe(text: &str) -> bool {
    !text.is_empty()
        && !text.chars().any(|c| {
            matches!(
                c,
                ';' | ',' | '(' | ')' | '=' | '!' | '<' | '>' | '"' | '\'' | '*'
            ) || c.is_whitespace()
        })
}

/// Percent-encodes one URL path segment, keeping `:` (allowed in a segment) so token URNs
/// travel verbatim as Cloud Director's own clients send them.
fn encode_segment(text: &str) -> String {
    const SEGMENT: &percent_encoding::AsciiSet = &super::http::PATH_SEGMENT.remove(b':');
    percent_encoding::utf8_percent_encode(text, SEGMENT).to_string()
}

/// The API token in a secret: the secret itself, or the `refresh_token` of a token file as
/// `VcdApiToken` writes it (and terraform-provider-vcd's `api_token_file` reads it, `vcd.md`
/// §8), so one estate's token file can be another connection's `api_token: {file: …}`.
fn token_file_secret(secret: SecretValue) -> SecretValue {
    #[derive(serde::Deserialize)]
    struct TokenFile {
        refresh_token: WireSecret,
    }
    if !secret.expose().starts_with('{') {
        return secret;
    }
    match serde_json::from_str::<TokenFile>(secret.expose()) {
        Ok(file) => file.refresh_token.0,
        Err(_) => secret,
    }
}

/// Every generation's id of a live token, oldest first.
fn generation_ids(live: &LiveObject) -> Vec<String> {
    token_file::generations(live)
}

/// One live object for the generations of token `base`: oldest first (the declared name
/// sorts before its rotated forms, and those by time). The object's id is the newest.
fn generations_object(base: &str, mut generations: Vec<&Token>) -> LiveObject {
    generations
        .sort_by(|a, b| (a.name != base, &a.name, &a.id).cmp(&(b.name != base, &b.name, &b.id)));
    let Some(newest) = generations.last() else {
        return token_object(&Token {
            id: String::new(),
            name: base.to_string(),
            owner: None,
        });
    };
    let mut object = token_object(newest);
    object.name = base.to_string();
    if generations.len() > 1 {
        let ids: Vec<&str> = generations.iter().map(|t| t.id.as_str()).collect();
        let text = json!({"generations": ids}).to_string();
        object.fingerprint = hex::encode(Sha256::digest(text.as_bytes()));
        object
            .attributes
            .insert(token_file::GENERATIONS_ATTRIBUTE.to_string(), ids.join(" "));
    }
    object
}

fn token_object(token: &Token) -> LiveObject {
    let owner = token
        .owner
        .as_ref()
        .and_then(|o| o.name.clone())
        .unwrap_or_default();
    let text = json!({"id": token.id, "name": token.name, "owner": owner}).to_string();
    LiveObject {
        kind: Kind::VcdApiToken,
        name: token.name.clone(),
        id: token.id.clone(),
        // `file` is local and never diffed: nothing on the server maps to the spec.
        spec: json!({}).into(),
        attributes: Attributes::from([("id".to_string(), token.id.clone())]),
        status: LiveStatus::Ready,
        fingerprint: hex::encode(Sha256::digest(text.as_bytes())),
    }
}

/// A string read straight into a secret wrapper.
struct WireSecret(SecretValue);

impl<'de> serde::Deserialize<'de> for WireSecret {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(WireSecret(SecretValue::new(String::deserialize(
            deserializer,
        )?)))
    }
}

#[derive(serde::Deserialize)]
struct GrantReply {
    access_token: Option<WireSecret>,
    expires_in: Option<u64>,
    refresh_token: Option<WireSecret>,
}

#[derive(serde::Deserialize)]
struct RegisterReply {
    client_id: Option<String>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct TokenPage {
    result_total: u64,
    page_count: Option<u64>,
    page_size: Option<u64>,
    #[serde(default)]
    values: Vec<Token>,
}

#[derive(serde::Deserialize)]
struct Token {
    id: String,
    name: String,
    owner: Option<EntityRef>,
}

#[derive(serde::Deserialize)]
struct EntityRef {
    name: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn org_names_are_encoded_in_paths() {
        assert_eq!(encode_segment("my org/x"), "my%20org%2Fx");
        assert_eq!(
            encode_segment("urn:vcloud:token:1-2"),
            "urn:vcloud:token:1-2"
        );
    }

    #[test]
    fn rotated_generations_belong_to_the_declared_name() {
        use crate::model::kinds::vcd_api_token::token_file::rotated_token_name;
        let now = chrono::DateTime::from_timestamp(1_796_000_000, 0).unwrap();
        let rotated = rotated_token_name("ci", now);
        assert_eq!(rotated, "ci.rotated-20261130T005320Z");
        assert_eq!(base_token_name(&rotated), "ci");
        assert_eq!(rotated_token_name(&rotated, now), rotated);
        assert_eq!(base_token_name("ci"), "ci");
        assert_eq!(base_token_name("ci.rotated-soon"), "ci.rotated-soon");
        assert_eq!(
            base_token_name(".rotated-20261130T005320Z"),
            ".rotated-20261130T005320Z"
        );
    }

    #[test]
    fn generations_are_one_live_object_oldest_first() {
        let token = |id: &str, name: &str| Token {
            id: id.to_string(),
            name: name.to_string(),
            owner: None,
        };
        let (first, second, third) = (
            token("urn:vcloud:token:a", "ci"),
            token("urn:vcloud:token:b", "ci.rotated-20261201T000000Z"),
            token("urn:vcloud:token:c", "ci.rotated-20261202T000000Z"),
        );
        let live = generations_object("ci", vec![&third, &second, &first]);
        assert_eq!(live.name, "ci");
        assert_eq!(live.id, "urn:vcloud:token:c");
        assert_eq!(
            live.attributes["generations"],
            "urn:vcloud:token:a urn:vcloud:token:b urn:vcloud:token:c"
        );
        let single = generations_object("ci", vec![&first]);
        assert_eq!(single.id, "urn:vcloud:token:a");
        assert!(!single.attributes.contains_key("generations"));
    }

    #[test]
    fn a_token_file_gives_its_refresh_token() {
        let file = SecretValue::new(
            r#"{"token_type":"API Token","refresh_token":"s3cret","updated_on":"2026-12-01T00:00:00Z"}"#,
        );
        assert_eq!(token_file_secret(file).expose(), "s3cret");
        assert_eq!(token_file_secret(SecretValue::new("bare")).expose(), "bare");
    }

    #[test]
    fn fiql_unsafe_names_are_detected() {
        assert!(fiql_safe("ci-token_1"));
        assert!(!fiql_safe("a;b"));
        assert!(!fiql_safe("with space"));
    }

    #[test]
    fn task_states_map_to_poll_results() {
        assert_eq!(task_status(&json!({"status": "success"})), TaskStatus::Done);
        assert_eq!(
            task_status(&json!({"status": "error", "error": {"message": "nope"}})),
            TaskStatus::Failed("nope".to_string())
        );
        assert_eq!(
            task_status(&json!({"status": "running", "progress": 40})),
            TaskStatus::Pending {
                progress: Some(40),
                eta: None
            }
        );
    }

    #[test]
    fn tokens_have_an_empty_spec_and_their_id() {
        let token = Token {
            id: "urn:vcloud:token:c1".to_string(),
            name: "ci".to_string(),
            owner: Some(EntityRef {
                name: Some("admin".to_string()),
            }),
        };
        let live = token_object(&token);
        assert_eq!(live.spec, json!({}));
        assert_eq!(live.attributes["id"], "urn:vcloud:token:c1");
    }
}
