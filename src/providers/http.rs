//! The HTTP layer every provider sends through: one client per connection with its TLS
//! settings, timeout and concurrency limit; retries on 429/503/504 and transport errors with
//! backoff honouring `Retry-After`; errors that name method, path, status, the server's
//! message and request id, never a secret (headers marked sensitive are never logged).

use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use tokio::sync::Semaphore;

use crate::model::{ConnectionConfig, SecretValue};

use super::{ProviderError, ProviderResult};

/// A request body.
#[derive(Clone, Debug, Default)]
pub enum Body {
    #[default]
    Empty,
    Json(serde_json::Value),
    /// `application/x-www-form-urlencoded`; values may be secrets.
    Form(Vec<(String, FormValue)>),
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

    pub fn form(mut self, fields: Vec<(String, FormValue)>) -> Self {
        self.body = Body::Form(fields);
        self
    }

    pub fn idempotent(mut self, idempotent: bool) -> Self {
        self.idempotent = idempotent;
        self
    }
}

/// A response of any status; callers decide what a status means for their API.
#[derive(Clone, Debug)]
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
                "body is not the documented JSON ({err}): {}",
                truncate_body(&self.body)
            ),
        })
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

/// A short, single-line rendering of a body for error messages.
pub fn truncate_body(body: &[u8]) -> String {
    const MAX: usize = 300;
    let text = String::from_utf8_lossy(body);
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > MAX {
        let cut: String = flat.chars().take(MAX).collect();
        format!("{cut}…")
    } else if flat.is_empty() {
        "(empty body)".to_string()
    } else {
        flat
    }
}

/// One client per connection.
#[derive(Clone)]
pub struct HttpClient {
    client: reqwest::Client,
    base_url: String,
    connection: String,
    limit: Arc<Semaphore>,
    max_retries: u32,
}

impl HttpClient {
    pub fn new(connection: &str, config: &ConnectionConfig) -> ProviderResult<Self> {
        let config_error = |message: String| ProviderError::Config {
            connection: connection.to_string(),
            message,
        };
        let mut builder = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("sextant/", env!("CARGO_PKG_VERSION")));
        if let Some(ca_file) = &config.tls.ca_file {
            let pem = std::fs::read(ca_file).map_err(|err| {
                config_error(format!(
                    "cannot read `tls.ca_file` {}: {err}",
                    ca_file.display()
                ))
            })?;
            let cert = reqwest::Certificate::from_pem(&pem).map_err(|err| {
                config_error(format!(
                    "`tls.ca_file` {} is not PEM: {err}",
                    ca_file.display()
                ))
            })?;
            builder = builder.add_root_certificate(cert);
        }
        if config.tls.insecure {
            tracing::warn!(connection, "TLS certificate verification is disabled");
            builder = builder.danger_accept_invalid_certs(true);
        }
        let client = builder
            .build()
            .map_err(|err| config_error(format!("cannot build HTTP client: {err}")))?;
        Ok(Self {
            client,
            base_url: config.url.trim_end_matches('/').to_string(),
            connection: connection.to_string(),
            limit: Arc::new(Semaphore::new(config.max_concurrency.max(1))),
            max_retries: config.max_retries,
        })
    }

    pub fn connection(&self) -> &str {
        &self.connection
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Sends a request, retrying what is safe to retry. Returns any final status.
    pub async fn send(&self, request: HttpRequest) -> ProviderResult<HttpResponse> {
        let url = if request.path.starts_with("http://") || request.path.starts_with("https://") {
            request.path.clone()
        } else {
            format!("{}{}", self.base_url, request.path)
        };
        let log_path = url_path(&url);
        let mut attempt = 0u32;
        loop {
            let permit = self
                .limit
                .acquire()
                .await
                .expect("the semaphore is never closed");
            let result = self.send_once(&request, &url).await;
            drop(permit);
            let retry_after = match &result {
                Ok(response) if matches!(response.status, 429 | 503 | 504) => {
                    // 503/504 may have been processed; 429 never was.
                    if response.status != 429 && !request.idempotent {
                        None
                    } else {
                        Some(retry_after(&response.headers))
                    }
                }
                Err(err) if err.is_connect() || (request.idempotent && err.is_timeout()) => {
                    Some(None)
                }
                _ => None,
            };
            match retry_after {
                Some(hint) if attempt < self.max_retries => {
                    let delay = hint.unwrap_or_else(|| backoff(attempt));
                    tracing::debug!(method = %request.method, path = %log_path, attempt, ?delay, "retrying");
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                _ => {
                    return match result {
                        Ok(response) => Ok(HttpResponse {
                            method: request.method.clone(),
                            path: log_path,
                            ..response
                        }),
                        Err(err) => Err(ProviderError::Transport {
                            method: request.method.to_string(),
                            path: log_path,
                            message: transport_message(&err),
                        }),
                    };
                }
            }
        }
    }

    async fn send_once(
        &self,
        request: &HttpRequest,
        url: &str,
    ) -> Result<HttpResponse, reqwest::Error> {
        let mut builder = self.client.request(request.method.clone(), url);
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
        let response = builder.send().await?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.bytes().await?.to_vec();
        Ok(HttpResponse {
            method: request.method.clone(),
            path: String::new(),
            status,
            headers,
            body,
        })
    }
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

fn transport_message(err: &reqwest::Error) -> String {
    if err.is_timeout() {
        "the request timed out".to_string()
    } else if err.is_connect() {
        "cannot connect to the server".to_string()
    } else {
        // reqwest's Display includes the URL; keep only the kind of failure.
        let mut message = "the connection failed".to_string();
        let mut source = std::error::Error::source(err);
        while let Some(cause) = source {
            message = format!("the connection failed: {cause}");
            source = cause.source();
        }
        message
    }
}

/// `Retry-After` in seconds (HTTP dates are rare on these APIs and treated as absent).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get("retry-after")?.to_str().ok()?;
    let seconds: u64 = value.trim().parse().ok()?;
    Some(Duration::from_secs(seconds.min(120)))
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
    fn retry_after_is_read_in_seconds() {
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", HeaderValue::from_static("3"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(3)));
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
