//! CSP API-token exchange (`csp.md`): turns a connection's long-lived API token into a
//! short-lived access token, cached and refreshed ahead of expiry. Used by VMC (as the
//! `csp-auth-token` header) and cloud RaaS (as `Authorization: Bearer`).

use std::time::Duration;

use crate::model::{ConnectionConfig, SecretSource, SecretValue};

use super::http::{FormValue, HttpClient, HttpRequest, HttpResponse, RetryRule};
use super::token::{Credential, Lease, TokenCache};
use super::{ProviderError, ProviderResult};

/// Path of the exchange, below the CSP base URL.
pub const AUTHORIZE_PATH: &str = "/csp/gateway/am/api/auth/api-tokens/authorize";
/// Path of the API-token details, below the CSP base URL: anonymous `POST` of JSON
/// `{"tokenValue": <API token>}` → `ApiTokenDetailsDto {createdAt, expiresAt, lastUsedAt,
/// tokenId, tokenName, orgId, …}` for an unexpired token. Sources: Broadcom API reference,
/// "CSP Authentication Operations Index" (developer.broadcom.com/xapis/tcsp-authn/latest:
/// "Get details of an unexpired org scoped API-token", `GetApiTokenDetailsRequest`,
/// `ApiTokenDetailsDto`); vmware-labs' VMware Image Builder GitHub action
/// (`TOKEN_DETAILS_PATH`, warns 30 days before `expiresAt`); William Lam's VMware.VMC
/// PowerShell module (`Get-CSPRefreshTokenExpiry` posts `tokenValue` and reads `expiresAt`).
pub const DETAILS_PATH: &str = "/csp/gateway/am/api/auth/api-tokens/details";

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct ApiTokenDetailsDto {
    expires_at: Option<serde_json::Value>,
}

/// An epoch time of `ApiTokenDetailsDto`: milliseconds as the live service sends them
/// (`Get-CSPRefreshTokenExpiry` reads them so), seconds as one Broadcom page describes
/// `createdAt`; a value past 10^11 (the year 5138 in seconds) is taken as milliseconds.
fn epoch_time(value: &serde_json::Value) -> Option<chrono::DateTime<chrono::Utc>> {
    let number = match value {
        serde_json::Value::Number(n) => n.as_f64()?,
        serde_json::Value::String(s) => s.trim().parse().ok()?,
        _ => return None,
    };
    if !number.is_finite() || number <= 0.0 {
        return None;
    }
    let millis = if number >= 1e11 {
        number
    } else {
        number * 1000.0
    };
    chrono::DateTime::from_timestamp_millis(millis as i64)
}

#[derive(serde::Deserialize)]
struct AccessTokenDto {
    access_token: Option<String>,
    /// Seconds; tolerated as an integer, a float or a numeric string.
    expires_in: Option<serde_json::Value>,
}

/// `expires_in` in whole seconds, if the server sent a usable number.
fn lifetime(expires_in: Option<&serde_json::Value>) -> Option<Duration> {
    let seconds = match expires_in? {
        serde_json::Value::Number(n) => n.as_f64()?,
        serde_json::Value::String(s) => s.trim().parse().ok()?,
        _ => return None,
    };
    (seconds.is_finite() && seconds > 0.0).then(|| Duration::from_secs(seconds as u64))
}

#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct CspErrorResponse {
    message: Option<String>,
    csp_error_code: Option<String>,
    request_id: Option<String>,
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

    /// Sends a request built with the current access token (`build` puts it in the header
    /// its API expects). On 401 the API token is exchanged again and the call is sent once
    /// more; a second 401 is an [`ProviderError::Auth`] naming the connection. Any other
    /// status is returned to the caller.
    pub async fn send(
        &self,
        http: &HttpClient,
        build: impl Fn(&SecretValue) -> HttpRequest,
    ) -> ProviderResult<HttpResponse> {
        let response = self
            .cache
            .send_authenticated(
                http,
                || self.exchange(),
                build,
                HttpResponse::is_unauthorized,
            )
            .await?;
        if response.is_unauthorized() {
            return Err(ProviderError::Auth {
                connection: self.connection.clone(),
                message: format!(
                    "{} {} was refused with 401 again after a fresh CSP access token; check that the API token has access to this org",
                    response.method, response.path
                ),
            });
        }
        Ok(response)
    }

    /// When the connection's API token expires, as `api-tokens/details` reports it;
    /// `Ok(None)` when the server does not say. Errors never hold the token.
    pub async fn api_token_expiry(&self) -> ProviderResult<Option<chrono::DateTime<chrono::Utc>>> {
        let Some(source) = self.api_token.as_ref() else {
            return Ok(None);
        };
        let api_token = crate::providers::read_secret(&self.connection, "api_token", source)?;
        let request = HttpRequest::post(format!("{}{DETAILS_PATH}", self.csp_url))
            .secret_json(serde_json::json!({ "tokenValue": api_token.expose() }))
            // Reading details changes nothing.
            .idempotent(true);
        let response = self.http.send(request).await?;
        if !response.is_success() {
            let body: CspErrorResponse = serde_json::from_slice(&response.body).unwrap_or_default();
            let message = body
                .message
                .map(|m| m.replace(api_token.expose(), "[REDACTED]"))
                .unwrap_or_else(|| format!("status {}", response.status));
            return Err(ProviderError::Api {
                method: response.method.to_string(),
                path: response.path.clone(),
                status: response.status,
                message,
                request_id: body.request_id.or_else(|| response.request_id()),
            });
        }
        let dto: ApiTokenDetailsDto = response.json_redacted()?;
        Ok(dto.expires_at.as_ref().and_then(epoch_time))
    }

    async fn exchange(&self) -> ProviderResult<Credential<SecretValue>> {
        let source = self
            .api_token
            .as_ref()
            .ok_or_else(|| ProviderError::Config {
                connection: self.connection.clone(),
                message: "`api_token` is required to log in to CSP".to_string(),
            })?;
        let api_token = crate::providers::read_secret(&self.connection, "api_token", source)?;
        let api_token_text = api_token.expose().to_string();
        let request = HttpRequest::post(format!("{}{AUTHORIZE_PATH}", self.csp_url))
            .form(vec![(
                "api_token".to_string(),
                FormValue::Secret(api_token),
            )])
            // Exchanging twice is harmless: each call only mints a new access token.
            .idempotent(true)
            .retry_if(RetryRule::new(|response| {
                matches!(response.status, 500 | 502)
            }));
        let response = self.http.send(request).await?;
        if !response.is_success() {
            let body: CspErrorResponse = serde_json::from_slice(&response.body).unwrap_or_default();
            // A server that echoes the token back must not get it into our errors.
            let mut message = body
                .message
                .map(|m| m.replace(api_token_text.as_str(), "[REDACTED]"))
                .unwrap_or_else(|| format!("status {}", response.status));
            if let Some(code) = body.csp_error_code {
                message = format!("{message} (cspErrorCode {code})");
            }
            let request_id = body.request_id.or_else(|| response.request_id());
            if response.status == 400 {
                let request = request_id
                    .map(|id| format!(" (request id {id})"))
                    .unwrap_or_default();
                return Err(ProviderError::Auth {
                    connection: self.connection.clone(),
                    message: format!(
                        "the CSP API token was refused: {message}{request}; check that the token is valid and not revoked"
                    ),
                });
            }
            return Err(ProviderError::Api {
                method: response.method.to_string(),
                path: response.path.clone(),
                status: response.status,
                message,
                request_id,
            });
        }
        parse_token_reply(&response)
    }
}

/// Reads a successful exchange reply: the access token and its lifetime.
pub fn parse_token_reply(response: &HttpResponse) -> ProviderResult<Credential<SecretValue>> {
    let dto: AccessTokenDto = response.json_redacted()?;
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
        lifetime: lifetime(dto.expires_in.as_ref()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn details_times_are_read_in_milliseconds_or_seconds() {
        use serde_json::json;
        let expected = chrono::DateTime::from_timestamp(1_796_000_000, 0).unwrap();
        assert_eq!(epoch_time(&json!(1_796_000_000_000_i64)), Some(expected));
        assert_eq!(epoch_time(&json!(1_796_000_000)), Some(expected));
        assert_eq!(epoch_time(&json!("1796000000000")), Some(expected));
        assert_eq!(epoch_time(&json!(null)), None);
        assert_eq!(epoch_time(&json!(0)), None);
    }

    #[test]
    fn expires_in_is_read_tolerantly() {
        use serde_json::json;
        assert_eq!(
            lifetime(Some(&json!(1799))),
            Some(Duration::from_secs(1799))
        );
        assert_eq!(
            lifetime(Some(&json!(1800.0))),
            Some(Duration::from_secs(1800))
        );
        assert_eq!(
            lifetime(Some(&json!("1800"))),
            Some(Duration::from_secs(1800))
        );
        assert_eq!(lifetime(Some(&json!(null))), None);
        assert_eq!(lifetime(Some(&json!(-5))), None);
        assert_eq!(lifetime(None), None);
    }
}
