//! The HTTP layer every provider sends through: one client per connection with its TLS
//! settings (`tls.ca_file`, `tls.insecure` with a warning), timeouts and concurrency limit;
//! retries with capped exponential backoff and jitter, honouring `Retry-After`, on 429,
//! 503/504 and transport errors for what is safe to resend, plus whatever the provider's
//! [`RetryRule`] accepts (VMC `retryable: true`); a debug line per request (method, path,
//! status, duration). Errors name method, path, status, the server's message and request id,
//! never a secret or a query string (credential headers are marked sensitive and never logged).
//!
//! This is the only place that retries a request: one budget per request (`max_retries`),
//! bounded by the connection's `connect_timeout` per connection attempt, `timeout` per
//! attempt and `request_deadline` over all attempts and waits. A retry after a transport
//! failure (or a long wait) is announced at once as a warning naming the URL and the cause.
//! Once a request gave up because the host cannot be reached, the connection's budget is
//! spent: later requests make one attempt each, without retries, until one gets an answer.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use reqwest::Method;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use tokio::sync::Semaphore;

use crate::model::{ConnectionConfig, SecretValue, shown};

use super::{ProviderError, ProviderResult};

/// A request body.
#[derive(Clone, Debug, Default)]
pub enum Body {
    #[default]
    Empty,
    Json(serde_json::Value),
    /// `application/x-www-form-urlencoded`; values may be secrets.
    Form(Vec<(String, FormValue)>),
    /// JSON text holding a secret (never logged).
    SecretJson(SecretValue),
}

/// A form field value: plain or secret.
#[derive(Clone, Debug)]
pub enum FormValue {
    Plain(String),
    Secret(SecretValue),
}

/// One request, relative to the connection's base URL (or absolute when `path` starts with
/// `http://` or `https://`, e.g. the CSP URL).
#[derive(Clone, Debug)]
pub struct HttpRequest {
    pub method: Method,
    pub path: String,
    pub query: Vec<(String, String)>,
    /// Plain headers.
    pub headers: Vec<(HeaderName, String)>,
    /// Headers carrying credentials: marked sensitive, never logged.
    pub secret_headers: Vec<(HeaderName, SecretValue)>,
    pub body: Body,
    /// Whether the request may be resent after it may have reached the server (GET, PUT,
    /// DELETE, creates with a client-chosen id). Non-idempotent requests are retried only when
    /// the server certainly did not process them (429, or a connect error).
    pub idempotent: bool,
    /// Extra, API-specific responses that are safe to retry.
    pub retry_if: Option<RetryRule>,
}

impl HttpRequest {
    pub fn new(method: Method, path: impl Into<String>) -> Self {
        let idempotent = method != Method::POST && method != Method::PATCH;
        Self {
            method,
            path: path.into(),
            query: Vec::new(),
            headers: Vec::new(),
            secret_headers: Vec::new(),
            body: Body::Empty,
            idempotent,
            retry_if: None,
        }
    }

    pub fn get(path: impl Into<String>) -> Self {
        Self::new(Method::GET, path)
    }

    pub fn post(path: impl Into<String>) -> Self {
        Self::new(Method::POST, path)
    }

    pub fn query(mut self, name: &str, value: impl Into<String>) -> Self {
        self.query.push((name.to_string(), value.into()));
        self
    }

    pub fn header(mut self, name: HeaderName, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub fn secret_header(mut self, name: HeaderName, value: SecretValue) -> Self {
        self.secret_headers.push((name, value));
        self
    }

    pub fn json(mut self, body: serde_json::Value) -> Self {
        self.body = Body::Json(body);
        self
    }

    /// A JSON body that holds a secret: kept as a [`SecretValue`], so no `Debug` shows it.
    pub fn secret_json(mut self, body: serde_json::Value) -> Self {
        self.body = Body::SecretJson(SecretValue::new(body.to_string()));
        self
    }

    pub fn form(mut self, fields: Vec<(String, FormValue)>) -> Self {
        self.body = Body::Form(fields);
        self
    }

    pub fn idempotent(mut self, idempotent: bool) -> Self {
        self.idempotent = idempotent;
        self
    }

    pub fn retry_if(mut self, rule: RetryRule) -> Self {
        self.retry_if = Some(rule);
        self
    }

    pub fn patch(path: impl Into<String>) -> Self {
        Self::new(Method::PATCH, path)
    }

    pub fn delete(path: impl Into<String>) -> Self {
        Self::new(Method::DELETE, path)
    }
}

/// A response of any status; callers decide what a status means for their API. `Debug`
/// leaves out headers and body: a login reply holds a credential.
#[derive(Clone)]
pub struct HttpResponse {
    pub method: Method,
    pub path: String,
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// 401: the credential was refused.
    pub fn is_unauthorized(&self) -> bool {
        self.status == 401
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The request id the server echoed, if any (`X-Request-Id`, `x-vmware-vcloud-request-id`).
    pub fn request_id(&self) -> Option<String> {
        [
            "x-request-id",
            "x-vmware-vcloud-request-id",
            "csp-request-id",
        ]
        .iter()
        .find_map(|name| self.header(name))
        .map(str::to_string)
    }

    /// Parses the body as JSON, with an error naming the request on failure.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> ProviderResult<T> {
        serde_json::from_slice(&self.body).map_err(|err| ProviderError::Protocol {
            method: self.method.to_string(),
            path: self.path.clone(),
            message: format!(
                "{}: body is not the documented JSON ({err}): {}",
                self.describe(),
                truncate_body(&self.body)
            ),
        })
    }

    /// Parses a body that holds a credential (a login reply): a parse error never quotes it.
    pub fn json_redacted<T: serde::de::DeserializeOwned>(&self) -> ProviderResult<T> {
        serde_json::from_slice(&self.body).map_err(|err| ProviderError::Protocol {
            method: self.method.to_string(),
            path: self.path.clone(),
            message: format!(
                "{}: body is not the documented JSON (line {}, column {}; body not shown: it may hold a credential)",
                self.describe(),
                err.line(),
                err.column()
            ),
        })
    }

    /// `status 200, text/html, 1234 bytes`: what came back, for parse errors.
    pub fn describe(&self) -> String {
        format!(
            "status {}, {}, {} bytes",
            self.status,
            self.header("content-type").unwrap_or("no content type"),
            self.body.len()
        )
    }

    /// An [`ProviderError::Api`] for this response, with `message` as the server's message.
    pub fn error(&self, message: impl Into<String>) -> ProviderError {
        ProviderError::Api {
            method: self.method.to_string(),
            path: self.path.clone(),
            status: self.status,
            message: message.into(),
            request_id: self.request_id(),
        }
    }
}

impl std::fmt::Debug for HttpResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpResponse")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("status", &self.status)
            .field("body_len", &self.body.len())
            .finish_non_exhaustive()
    }
}

/// A short, single-line rendering of a body for error messages.
pub fn truncate_body(body: &[u8]) -> String {
    const MAX: usize = 300;
    // Only the head is looked at: a huge body must not cost a pass over all of it.
    let text = String::from_utf8_lossy(&body[..body.len().min(4 * MAX)]);
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > MAX || body.len() > 4 * MAX {
        let cut: String = flat.chars().take(MAX).collect();
        format!("{cut}…")
    } else if flat.is_empty() {
        "(empty body)".to_string()
    } else {
        flat
    }
}

/// Decides, from a response the generic rules would not retry, that the server asked for a
/// retry and did not carry out the request (VMC `retryable: true`, a concurrent-update
/// rejection). Set per request by the provider that knows the API.
#[derive(Clone)]
pub struct RetryRule(Arc<dyn Fn(&HttpResponse) -> bool + Send + Sync>);

impl RetryRule {
    pub fn new(rule: impl Fn(&HttpResponse) -> bool + Send + Sync + 'static) -> Self {
        Self(Arc::new(rule))
    }

    fn applies(&self, response: &HttpResponse) -> bool {
        (self.0)(response)
    }
}

impl std::fmt::Debug for RetryRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RetryRule")
    }
}

/// One client per connection.
#[derive(Clone)]
pub struct HttpClient {
    client: reqwest::Client,
    base_url: String,
    connection: String,
    limit: Arc<Semaphore>,
    /// Shared by every clone: it is the connection's budget, not one request's.
    budget: Arc<RetryBudget>,
}

/// How long and how often one connection's requests are tried.
struct RetryBudget {
    max_retries: u32,
    timeout: Duration,
    deadline: Duration,
    /// Set when a request gave up because the host could not be reached; cleared by the next
    /// answer.
    unreachable: AtomicBool,
}

impl HttpClient {
    pub fn new(connection: &str, config: &ConnectionConfig) -> ProviderResult<Self> {
        let config_error = |message: String| ProviderError::Config {
            connection: connection.to_string(),
            message,
        };
        let mut builder = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.connect_timeout.min(config.timeout))
            .user_agent(concat!("sextant/", env!("CARGO_PKG_VERSION")))
            // The vendor APIs never redirect an API call, and a followed redirect would carry
            // session headers to whatever host it names: a 3xx is reported, never followed.
            .redirect(reqwest::redirect::Policy::none());
        // `tls.insecure` wins: reqwest's own configuration then skips verification.
        if !config.tls.insecure
            && let Some(tls) = super::tls::client_config(&config.tls)
                .map_err(|err| config_error(err.to_string()))?
        {
            builder = builder.use_preconfigured_tls(tls);
        }
        if config.tls.insecure {
            tracing::warn!(
                connection,
                "TLS certificate verification is disabled (`tls.insecure: true`): anyone on the network path can read the credentials"
            );
            builder = builder.danger_accept_invalid_certs(true);
        }
        warn_if_cleartext(connection, &config.url);
        let client = builder
            .build()
            .map_err(|err| config_error(format!("cannot build HTTP client: {err}")))?;
        Ok(Self {
            client,
            base_url: config.url.trim_end_matches('/').to_string(),
            connection: connection.to_string(),
            limit: Arc::new(Semaphore::new(config.max_concurrency.max(1))),
            budget: Arc::new(RetryBudget {
                max_retries: config.max_retries,
                timeout: config.timeout,
                deadline: config.request_deadline,
                unreachable: AtomicBool::new(false),
            }),
        })
    }

    pub fn connection(&self) -> &str {
        &self.connection
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub fn max_retries(&self) -> u32 {
        self.budget.max_retries
    }

    /// Sends a request, retrying what is safe to retry, and returns the final response of any
    /// status. Retried: 429 always (the server did not process it); 503 and 504 when the
    /// request is idempotent; whatever the request's [`RetryRule`] accepts; connect errors
    /// always; timeouts and resets only for idempotent requests. At most `max_retries`
    /// retries, waiting `Retry-After` when the server sends it, else a capped exponential
    /// backoff with jitter, and never past the connection's `request_deadline`.
    pub async fn send(&self, request: HttpRequest) -> ProviderResult<HttpResponse> {
        let url = if request.path.starts_with("http://") || request.path.starts_with("https://") {
            request.path.clone()
        } else {
            format!("{}{}", self.base_url, request.path)
        };
        let log_path = url_path(&url);
        let request_started = Instant::now();
        // With the budget spent by an earlier request, one attempt only.
        let budget = &*self.budget;
        let max_retries = if budget.unreachable.load(Ordering::Relaxed) {
            0
        } else {
            budget.max_retries
        };
        let mut attempt = 0u32;
        loop {
            let started = Instant::now();
            let remaining = budget.deadline.saturating_sub(request_started.elapsed());
            let result = {
                let _permit = self
                    .limit
                    .acquire()
                    .await
                    .map_err(|_| ProviderError::Transport {
                        method: request.method.to_string(),
                        path: log_path.clone(),
                        message: "the connection's request limiter was closed".to_string(),
                    })?;
                self.send_once(&request, &url, budget.timeout.min(remaining))
                    .await
            };
            let elapsed_ms = started.elapsed().as_millis() as u64;
            match &result {
                Ok(response) => tracing::debug!(
                    connection = %self.connection,
                    method = %request.method,
                    path = %log_path,
                    status = response.status,
                    elapsed_ms,
                    attempt,
                    "http request"
                ),
                Err(err) => tracing::debug!(
                    connection = %self.connection,
                    method = %request.method,
                    path = %log_path,
                    error = %failure_message(err, budget.timeout),
                    elapsed_ms,
                    attempt,
                    "http request failed"
                ),
            }
            if result.is_ok() {
                budget.unreachable.store(false, Ordering::Relaxed);
            }
            let decision = retry_decision(&request, &result);
            let mut past_deadline = false;
            if let Some(hint) = decision
                && attempt < max_retries
            {
                let delay = hint.map_or_else(|| backoff(attempt), with_jitter);
                if request_started.elapsed() + delay < budget.deadline {
                    self.announce_retry(
                        &request,
                        &url,
                        &result,
                        delay,
                        attempt + 2,
                        max_retries + 1,
                    );
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                    continue;
                }
                past_deadline = true;
            }
            let attempts = attempt + 1;
            return match result {
                Ok(response) if (300..400).contains(&response.status) => {
                    Err(redirect_error(&request, &url, &response))
                }
                Ok(response) => Ok(HttpResponse {
                    path: log_path,
                    ..response
                }),
                Err(Failure::BodyTooLarge { status }) => Err(ProviderError::Protocol {
                    method: request.method.to_string(),
                    path: log_path,
                    message: format!(
                        "the response body (status {status}) is larger than the {} MiB this client reads",
                        MAX_BODY_BYTES / (1024 * 1024)
                    ),
                }),
                Err(Failure::Transport(err)) => {
                    if err.is_connect() {
                        budget.unreachable.store(true, Ordering::Relaxed);
                    }
                    let mut message = format!(
                        "{} `{}`: {}",
                        if err.is_connect() {
                            "cannot connect to"
                        } else {
                            "no answer from"
                        },
                        host_of(&url),
                        transport_cause(&err, budget.timeout)
                    );
                    if attempts > 1 || past_deadline {
                        message.push_str(&format!(
                            " (gave up after {attempts} attempt{}{})",
                            if attempts == 1 { "" } else { "s" },
                            if past_deadline {
                                format!(
                                    ": another would pass the `request_deadline` of {}",
                                    humantime::format_duration(budget.deadline)
                                )
                            } else {
                                String::new()
                            }
                        ));
                    }
                    if is_tls_failure(&err) {
                        message.push_str(&format!("; {}", super::tls::failure_hint(&err)));
                    }
                    Err(ProviderError::Transport {
                        method: request.method.to_string(),
                        path: log_path,
                        message,
                    })
                }
            };
        }
    }

    /// Says on stderr, at once, that a request is being sent again and why: silence while
    /// retrying reads as a hang. Routine short waits on a busy server are only logged.
    fn announce_retry(
        &self,
        request: &HttpRequest,
        url: &str,
        result: &Result<HttpResponse, Failure>,
        delay: Duration,
        next_attempt: u32,
        attempts: u32,
    ) {
        let target = display_url(url);
        let wait = format_delay(delay);
        match result {
            Err(failure) => {
                let cause = failure_message(failure, self.budget.timeout);
                tracing::warn!(
                    "connection `{}`: retrying {} {target} in {wait}: {cause} (attempt {next_attempt} of {attempts})",
                    self.connection,
                    request.method
                );
            }
            Ok(response) if delay >= LONG_WAIT => tracing::warn!(
                "connection `{}`: retrying {} {target} in {wait}: the server answered {} (attempt {next_attempt} of {attempts})",
                self.connection,
                request.method,
                response.status
            ),
            Ok(response) => tracing::debug!(
                connection = %self.connection,
                method = %request.method,
                path = %url_path(url),
                status = response.status,
                attempt = next_attempt,
                delay_ms = delay.as_millis() as u64,
                "retrying"
            ),
        }
    }

    async fn send_once(
        &self,
        request: &HttpRequest,
        url: &str,
        timeout: Duration,
    ) -> Result<HttpResponse, Failure> {
        let mut builder = self
            .client
            .request(request.method.clone(), url)
            .timeout(timeout);
        if !request.query.is_empty() {
            builder = builder.query(&request.query);
        }
        for (name, value) in &request.headers {
            builder = builder.header(name, value);
        }
        for (name, secret) in &request.secret_headers {
            if let Ok(mut value) = HeaderValue::from_str(secret.expose()) {
                value.set_sensitive(true);
                builder = builder.header(name, value);
            }
        }
        builder = match &request.body {
            Body::Empty => builder,
            Body::Json(value) => builder.json(value),
            Body::SecretJson(text) => builder
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(text.expose().to_string()),
            Body::Form(fields) => {
                let encoded: Vec<(&str, &str)> = fields
                    .iter()
                    .map(|(k, v)| {
                        let v = match v {
                            FormValue::Plain(s) => s.as_str(),
                            FormValue::Secret(s) => s.expose(),
                        };
                        (k.as_str(), v)
                    })
                    .collect();
                builder.form(&encoded)
            }
        };
        let mut response = builder.send().await?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let too_large = Failure::BodyTooLarge { status };
        if response
            .content_length()
            .is_some_and(|length| length > MAX_BODY_BYTES as u64)
        {
            return Err(too_large);
        }
        // Sized once from `Content-Length` (at most `MAX_BODY_BYTES`, checked above): a
        // listing page of a megabyte grown by doubling would be copied a dozen times.
        let expected = response.content_length().unwrap_or(0);
        let mut body = Vec::with_capacity(usize::try_from(expected).unwrap_or(0));
        while let Some(chunk) = response.chunk().await? {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(too_large);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(HttpResponse {
            method: request.method.clone(),
            path: String::new(),
            status,
            headers,
            body,
        })
    }
}

/// A redirect answer as an error naming both URLs (without credentials or query strings).
fn redirect_error(request: &HttpRequest, url: &str, response: &HttpResponse) -> ProviderError {
    let location = response.header("location").unwrap_or_default();
    // A relative `Location` is resolved against the request's URL, as a client would.
    let target = reqwest::Url::parse(url)
        .and_then(|base| base.join(location))
        .map_or_else(|_| location.to_string(), String::from);
    ProviderError::Redirected {
        method: request.method.to_string(),
        from: shown::url(url),
        status: response.status,
        to: if location.is_empty() {
            "no `Location`".to_string()
        } else {
            shown::url(&target)
        },
    }
}

/// Largest response body read (64 MiB): a longer one is refused with an error naming the
/// request, so a hostile or broken server cannot exhaust memory. The largest documented
/// reply (a page of SDDCs or RaaS objects) is far below it.
pub const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// Why one attempt produced no response.
#[derive(Debug)]
enum Failure {
    Transport(reqwest::Error),
    /// The body is longer than [`MAX_BODY_BYTES`]; not retried (it would be again).
    BodyTooLarge {
        status: u16,
    },
}

impl From<reqwest::Error> for Failure {
    fn from(err: reqwest::Error) -> Self {
        Failure::Transport(err)
    }
}

/// A wait for a busy server this long is announced on stderr, not only logged.
const LONG_WAIT: Duration = Duration::from_secs(5);

/// Longest `Retry-After` honoured; a server asking for more gets this.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(120);

/// Whether to retry, and the server's requested delay if it gave one.
fn retry_decision(
    request: &HttpRequest,
    result: &Result<HttpResponse, Failure>,
) -> Option<Option<Duration>> {
    match result {
        Ok(response) => {
            let retry = match response.status {
                // Rate limited: the server did not process the request.
                429 => true,
                // May have been processed behind a gateway: only resend what is safe twice.
                503 | 504 => request.idempotent,
                _ => false,
            } || request
                .retry_if
                .as_ref()
                .is_some_and(|rule| rule.applies(response));
            retry.then(|| retry_after(&response.headers))
        }
        Err(Failure::BodyTooLarge { .. }) => None,
        Err(Failure::Transport(err)) if is_tls_failure(err) => None,
        // Never connected: nothing reached the server.
        Err(Failure::Transport(err)) if err.is_connect() => Some(None),
        // Timed out or reset after sending: the server may have acted on it.
        Err(Failure::Transport(_)) if request.idempotent => Some(None),
        Err(Failure::Transport(_)) => None,
    }
}

/// Warns when credentials would travel in clear text to a host other than loopback.
pub fn warn_if_cleartext(connection: &str, url: &str) {
    let Some(rest) = url.strip_prefix("http://") else {
        return;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    // Never log `user:password@`.
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(v6),
        None => host_port.rsplit_once(':').map_or(host_port, |(h, _)| h),
    };
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if !loopback {
        tracing::warn!(
            connection,
            host,
            "the URL uses plain `http://` to a host that is not loopback: credentials travel unencrypted"
        );
    }
}

/// What a URL path segment escapes: everything but RFC 3986's unreserved characters.
pub const PATH_SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Percent-encodes one path segment (an id placed in a URL path).
pub fn path_segment(segment: &str) -> String {
    percent_encoding::utf8_percent_encode(segment, PATH_SEGMENT).to_string()
}

/// The path of a URL without its query string (query strings may carry secrets).
fn url_path(url: &str) -> String {
    let without_query = url.split(['?', '#']).next().unwrap_or(url);
    match without_query.find("://") {
        Some(i) => {
            let rest = &without_query[i + 3..];
            match rest.find('/') {
                Some(j) => rest[j..].to_string(),
                None => "/".to_string(),
            }
        }
        None => without_query.to_string(),
    }
}

fn failure_message(failure: &Failure, timeout: Duration) -> String {
    match failure {
        Failure::Transport(err) => transport_cause(err, timeout),
        Failure::BodyTooLarge { status } => {
            format!("the response body (status {status}) exceeds `MAX_BODY_BYTES`")
        }
    }
}

/// The cause of a transport failure in a few words (`connection refused`, `no answer within
/// 30s`), without the URL reqwest would add.
fn transport_cause(err: &reqwest::Error, timeout: Duration) -> String {
    if err.is_timeout() {
        return if err.is_connect() {
            "no connection within the `connect_timeout`".to_string()
        } else {
            format!(
                "no answer within the `timeout` of {}",
                humantime::format_duration(timeout)
            )
        };
    }
    if is_tls_failure(err) {
        return match root_cause(err) {
            Some(cause) => format!("the TLS handshake failed: {cause}"),
            None => "the TLS handshake failed".to_string(),
        };
    }
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused => return "connection refused".to_string(),
                std::io::ErrorKind::ConnectionReset => return "connection reset".to_string(),
                std::io::ErrorKind::ConnectionAborted => return "connection aborted".to_string(),
                _ => {}
            }
        }
        source = cause.source();
    }
    let cause = root_cause(err).map(|c| c.to_string()).unwrap_or_default();
    // `Connection refused (os error 111)`: the OS error number helps nobody.
    let cause = match cause.rfind(" (os error ") {
        Some(i) => cause[..i].to_string(),
        None => cause,
    };
    match (err.is_connect(), cause.is_empty()) {
        (true, true) => "cannot connect".to_string(),
        (false, true) => "the connection failed".to_string(),
        (_, false) => cause,
    }
}

/// `host:port` of a URL, without `user:password@`.
fn host_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host)
        .to_string()
}

/// A URL as shown in messages: scheme, host and path; no credentials, no query string.
fn display_url(url: &str) -> String {
    let scheme = url.split_once("://").map_or("", |(scheme, _)| scheme);
    format!("{scheme}://{}{}", host_of(url), url_path(url))
}

/// `0.5 s`, `2.1 s`, `30 s`.
fn format_delay(delay: Duration) -> String {
    let seconds = delay.as_secs_f64();
    if seconds < 10.0 {
        format!("{seconds:.1} s")
    } else {
        format!("{} s", seconds.round() as u64)
    }
}

fn root_cause(err: &reqwest::Error) -> Option<&(dyn std::error::Error + 'static)> {
    let mut source = std::error::Error::source(err)?;
    while let Some(cause) = source.source() {
        source = cause;
    }
    Some(source)
}

/// Whether the TLS handshake failed (rustls reports it as invalid data, wrapped in another
/// I/O error by the connector: an untrusted or mismatched certificate, no common protocol).
/// Resending cannot change the outcome.
fn is_tls_failure(err: &reqwest::Error) -> bool {
    fn invalid_data(io: &std::io::Error) -> bool {
        io.kind() == std::io::ErrorKind::InvalidData
            || io
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<std::io::Error>())
                .is_some_and(invalid_data)
    }
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        if cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(invalid_data)
        {
            return true;
        }
        source = cause.source();
    }
    false
}

/// `Retry-After` as delay-seconds or an HTTP date (RFC 9110 §10.2.3), capped at
/// [`MAX_RETRY_AFTER`].
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get("retry-after")?.to_str().ok()?.trim();
    let delay = match value.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => httpdate::parse_http_date(value)
            .ok()?
            .duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    };
    Some(delay.min(MAX_RETRY_AFTER))
}

/// The server's `Retry-After` plus up to a tenth more (at most 1 s), so clients told the same
/// delay do not all come back at once. Never earlier than asked.
fn with_jitter(delay: Duration) -> Duration {
    let spread = (delay.as_millis() / 10).min(1000) as u64;
    delay + Duration::from_millis(rand::random_range(0..=spread))
}

/// Capped exponential backoff with jitter: ~0.5 s, 1 s, 2 s, … up to 30 s.
fn backoff(attempt: u32) -> Duration {
    let base = 500u64.saturating_mul(1 << attempt.min(6)).min(30_000);
    let jitter = rand::random_range(0..=base / 4);
    Duration::from_millis(base - base / 8 + jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_path_drops_host_and_query() {
        assert_eq!(
            url_path("https://h.example:8443/csp/x?api_token=abc"),
            "/csp/x"
        );
        assert_eq!(url_path("http://127.0.0.1:1"), "/");
    }

    #[test]
    fn messages_name_the_host_but_never_credentials_or_queries() {
        let url = "https://ci:hunter2@vc.example.com:8443/rest/x?api_token=abc";
        assert_eq!(host_of(url), "vc.example.com:8443");
        assert_eq!(display_url(url), "https://vc.example.com:8443/rest/x");
        assert_eq!(format_delay(Duration::from_millis(480)), "0.5 s");
        assert_eq!(format_delay(Duration::from_secs(30)), "30 s");
    }

    #[tokio::test]
    async fn a_refused_connection_spends_the_connection_budget_until_an_answer() {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let mut config = ConnectionConfig::with_defaults(crate::model::SystemType::Vsphere);
        config.url = format!("http://127.0.0.1:{port}");
        config.max_retries = 1;
        let client = HttpClient::new("c", &config).unwrap();
        let first = client.send(HttpRequest::get("/a")).await.unwrap_err();
        let text = first.to_string();
        assert!(
            text.contains(&format!("cannot connect to `127.0.0.1:{port}`"))
                && text.contains("gave up after 2 attempts"),
            "{text}"
        );
        // The budget is spent: the next request is tried once, at once.
        let second = client
            .clone()
            .send(HttpRequest::get("/b"))
            .await
            .unwrap_err();
        assert!(!second.to_string().contains("attempts"), "{second}");
    }

    #[test]
    fn retry_after_is_read_in_seconds() {
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", HeaderValue::from_static("3"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(3)));
    }

    fn response(status: u16, retry_after: Option<&'static str>) -> HttpResponse {
        let mut headers = HeaderMap::new();
        if let Some(value) = retry_after {
            headers.insert("retry-after", HeaderValue::from_static(value));
        }
        HttpResponse {
            method: Method::POST,
            path: "/x".to_string(),
            status,
            headers,
            body: br#"{"retryable":true}"#.to_vec(),
        }
    }

    #[test]
    fn only_what_is_safe_to_resend_is_retried() {
        let create = HttpRequest::post("/x");
        let read = HttpRequest::get("/x");
        let decide = |request: &HttpRequest, status, hint| {
            retry_decision(request, &Ok(response(status, hint)))
        };
        // 429: never processed, so retried even for a create, after `Retry-After`.
        assert_eq!(
            decide(&create, 429, Some("7")),
            Some(Some(Duration::from_secs(7)))
        );
        // 503/504 may have been processed: only idempotent requests are resent.
        assert_eq!(decide(&create, 503, None), None);
        assert_eq!(decide(&create, 504, None), None);
        assert_eq!(decide(&read, 503, None), Some(None));
        assert_eq!(
            decide(&read, 504, Some("2")),
            Some(Some(Duration::from_secs(2)))
        );
        // Validation errors are final.
        assert_eq!(decide(&read, 400, None), None);
        assert_eq!(decide(&read, 500, None), None);
        // The API's own rule adds to the generic ones.
        let marked = HttpRequest::post("/x").retry_if(RetryRule::new(|r| r.status == 400));
        assert_eq!(decide(&marked, 400, None), Some(None));
        assert_eq!(decide(&marked, 503, None), None);
    }

    #[test]
    fn retry_after_accepts_http_dates_and_is_capped() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "retry-after",
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&headers), Some(Duration::ZERO));
        let soon = std::time::SystemTime::now() + Duration::from_secs(60);
        headers.insert(
            "retry-after",
            HeaderValue::from_str(&httpdate::fmt_http_date(soon)).unwrap(),
        );
        let delay = retry_after(&headers).unwrap();
        assert!(delay > Duration::from_secs(50) && delay <= Duration::from_secs(60));
        headers.insert("retry-after", HeaderValue::from_static("86400"));
        assert_eq!(retry_after(&headers), Some(MAX_RETRY_AFTER));
    }

    #[test]
    fn retry_after_gets_jitter_but_never_less() {
        for _ in 0..50 {
            let delay = with_jitter(Duration::from_secs(5));
            assert!(delay >= Duration::from_secs(5) && delay <= Duration::from_millis(5500));
        }
        assert_eq!(with_jitter(Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn path_segments_are_percent_encoded() {
        assert_eq!(path_segment("vm-42"), "vm-42");
        assert_eq!(path_segment("a/b c"), "a%2Fb%20c");
        assert_eq!(path_segment("urn:x~é"), "urn%3Ax~%C3%A9");
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        assert!(backoff(0) < Duration::from_secs(1));
        assert!(backoff(10) <= Duration::from_millis(30_000 + 30_000 / 4));
    }

    #[test]
    fn long_bodies_are_truncated_on_one_line() {
        let body = "x\n".repeat(1000);
        let text = truncate_body(body.as_bytes());
        assert!(!text.contains('\n'));
        assert!(text.ends_with('…'));
    }
}
