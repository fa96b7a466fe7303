//! CSP API-token exchange (`csp.md`): turns a connection's long-lived API token into a
//! short-lived access token, cached and refreshed ahead of expiry. Used by VMC (as the
//! `csp-auth-token` header) and cloud RaaS (as `Authorization: Bearer`).

use std::time::Duration;

use crate::model::{ConnectionConfig, SecretSource, SecretValue};

use super::http::{FormValue, HttpClient, HttpRequest};
use super::token::{Credential, Lease, TokenCache};
use super::{ProviderError, ProviderResult};

/// Path of the exchange, below the CSP base URL.
pub const AUTHORIZE_PATH: &str = "/csp/gateway/am/api/auth/api-tokens/authorize";

#[derive(serde::Deserialize)]
struct AccessTokenDto {
    access_token: Option<String>,
    expires_in: Option<u64>,
}

#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct CspErrorResponse {
    message: Option<String>,
    csp_error_code: Option<String>,
}

/// Access tokens for one connection.
pub struct CspAuth {
    connection: String,
    csp_url: String,
    api_token: Option<SecretSource>,
    http: HttpClient,
    cache: TokenCache<SecretValue>,
}

impl CspAuth {
    /// `http` is the connection's client; the exchange goes to `config.csp_url`.
    pub fn new(connection: &str, config: &ConnectionConfig, http: HttpClient) -> Self {
        Self {
            connection: connection.to_string(),
            csp_url: config.csp_url.trim_end_matches('/').to_string(),
            api_token: config.api_token.clone(),
            http,
            cache: TokenCache::new(config.refresh_before_expiry),
        }
    }

    /// A valid access token, exchanging the API token first when needed.
    pub async fn access_token(&self) -> ProviderResult<Lease<SecretValue>> {
        self.cache.get(|| self.exchange()).await
    }

    /// Forgets the access token of `generation` after the server refused it.
    pub async fn invalidate(&self, generation: u64) {
        self.cache.invalidate(generation).await;
    }

    async fn exchange(&self) -> ProviderResult<Credential<SecretValue>> {
        let source = self
            .api_token
            .as_ref()
            .ok_or_else(|| ProviderError::Config {
                connection: self.connection.clone(),
                message: "`api_token` is required to log in to CSP".to_string(),
            })?;
        let api_token = source.resolve().map_err(|err| ProviderError::Config {
            connection: self.connection.clone(),
            message: format!("cannot read `api_token` from {}: {err}", source.describe()),
        })?;
        let request = HttpRequest::post(format!("{}{AUTHORIZE_PATH}", self.csp_url))
            .form(vec![(
                "api_token".to_string(),
                FormValue::Secret(api_token),
            )])
            // Exchanging twice is harmless: each call only mints a new access token.
            .idempotent(true);
        let response = self.http.send(request).await?;
        if !response.is_success() {
            let body: CspErrorResponse = serde_json::from_slice(&response.body).unwrap_or_default();
            let mut message = body
                .message
                .unwrap_or_else(|| format!("status {}", response.status));
            if let Some(code) = body.csp_error_code {
                message = format!("{message} (cspErrorCode {code})");
            }
            if response.status == 400 {
                return Err(ProviderError::Auth {
                    connection: self.connection.clone(),
                    message: format!(
                        "the CSP API token was refused: {message}; check that the token is valid and not revoked"
                    ),
                });
            }
            return Err(response.error(message));
        }
        let dto: AccessTokenDto = response.json()?;
        let token =
            dto.access_token
                .filter(|t| !t.is_empty())
                .ok_or_else(|| ProviderError::Protocol {
                    method: "POST".to_string(),
                    path: AUTHORIZE_PATH.to_string(),
                    message: "the reply has no `access_token`".to_string(),
                })?;
        Ok(Credential {
            value: SecretValue::new(token),
            lifetime: dto.expires_in.map(Duration::from_secs),
        })
    }
}
