//! The simulated CSP API-token exchange (`csp.md`). VMC and cloud RaaS check the access
//! tokens issued here with [`CspState::validate_access_token`].
//!
//! API tokens have a lifetime too (`csp.md` §5: configurable TTL, six months by default, seed
//! `000` for cloud Salt tokens): a token is created the first time the simulator sees it, and
//! `POST /csp/gateway/am/api/auth/api-tokens/details` reports its `expiresAt`.
//!
//! Admin hooks: `POST /_sim/csp/revoke-api-token {"api_token": …}` (new exchanges fail,
//! issued access tokens stay valid until they expire), `PUT /_sim/csp/api-token-ttl
//! {"seconds": n}` (the API-token lifetime) and `GET /_sim/csp/org` (the org every API token
//! belongs to).

use std::collections::{BTreeMap, BTreeSet};

use axum::body::Bytes;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde_json::json;

use super::SimRef;

/// Path of the token exchange.
pub const AUTHORIZE_PATH: &str = "/csp/gateway/am/api/auth/api-tokens/authorize";
/// Path of the API-token details: `POST {"tokenValue": …}` → `ApiTokenDetailsDto`, anonymous
/// (Broadcom API reference, CSP Authentication operation index: "Get details of an unexpired
/// org scoped API-token", request `GetApiTokenDetailsRequest {tokenValue}`, reply
/// `ApiTokenDetailsDto {createdAt, expiresAt, lastUsedAt, tokenId, tokenName, orgId, …}`).
pub const DETAILS_PATH: &str = "/csp/gateway/am/api/auth/api-tokens/details";
/// Default API-token lifetime: six months (`csp.md` §5; seed `000`).
pub const DEFAULT_API_TOKEN_TTL_SECS: u64 = 183 * 24 * 3600;
/// The org of the default estate.
pub const DEFAULT_ORG_ID: &str = "2b6f1c3e-8d4a-4f7b-9c21-5e0a7d3f9b12";
/// `token_type` as returned (casing unverified, `csp.md` §3).
pub const TOKEN_TYPE: &str = "bearer";
/// `moduleCode` of the token service in observed error bodies (`csp.md` §4).
const MODULE_CODE: u32 = 340;
const SCOPE: &str = "openid ga_manage_org csp:org_member external/vmc/user:admin";

/// An access token handed out by the exchange.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct IssuedAccessToken {
    pub expires_at: DateTime<Utc>,
    /// The org the API token belongs to.
    pub org_id: String,
}

/// Why an access token was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenProblem {
    Unknown,
    Expired,
}

/// Everything the simulated CSP holds. Its `Debug` shows counts, never token values.
#[derive(Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct CspState {
    /// The org every accepted API token belongs to.
    pub org_id: String,
    /// Issued access tokens by value.
    pub access_tokens: BTreeMap<String, IssuedAccessToken>,
    /// API tokens revoked through the admin API: exchanges fail, issued tokens stay valid.
    pub revoked_api_tokens: BTreeSet<String>,
    /// API tokens seen so far, by SHA-256 (hex) of their value.
    pub api_tokens: BTreeMap<String, ApiTokenRecord>,
    /// Lifetime of an API token from its creation; `None`: six months.
    pub api_token_ttl_secs: Option<u64>,
}

/// An API token the simulator has seen (never its value).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct ApiTokenRecord {
    pub token_id: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
}

/// The `csp` section of seed data.
#[derive(Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CspSeed {
    pub org_id: Option<String>,
    pub revoked_api_tokens: BTreeSet<String>,
    /// Lifetime of API tokens in seconds (default six months).
    pub api_token_ttl_secs: Option<u64>,
}

impl std::fmt::Debug for CspState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CspState")
            .field("org_id", &self.org_id)
            .field("access_tokens", &self.access_tokens.len())
            .field("revoked_api_tokens", &self.revoked_api_tokens.len())
            .finish()
    }
}

impl std::fmt::Debug for CspSeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CspSeed")
            .field("org_id", &self.org_id)
            .field("revoked_api_tokens", &self.revoked_api_tokens.len())
            .finish()
    }
}

impl CspState {
    /// One org, no tokens yet.
    pub fn default_estate() -> Self {
        Self {
            org_id: DEFAULT_ORG_ID.to_owned(),
            ..Self::default()
        }
    }

    pub fn from_seed(seed: CspSeed) -> Self {
        Self {
            org_id: seed.org_id.unwrap_or_else(|| DEFAULT_ORG_ID.to_owned()),
            access_tokens: BTreeMap::new(),
            revoked_api_tokens: seed.revoked_api_tokens,
            api_tokens: BTreeMap::new(),
            api_token_ttl_secs: seed.api_token_ttl_secs,
        }
    }

    /// The record of API token `value`, created at `now` when first seen.
    fn api_token(&mut self, value: &str, now: DateTime<Utc>) -> &mut ApiTokenRecord {
        use sha2::Digest;
        let digest = hex::encode(sha2::Sha256::digest(value.as_bytes()));
        self.api_tokens
            .entry(digest)
            .or_insert_with(|| ApiTokenRecord {
                token_id: uuid::Uuid::new_v4().to_string(),
                created_at: now,
                last_used_at: now,
            })
    }

    /// When an API token created at `created_at` expires.
    fn api_token_expiry(&self, created_at: DateTime<Utc>) -> DateTime<Utc> {
        let ttl = self
            .api_token_ttl_secs
            .unwrap_or(DEFAULT_API_TOKEN_TTL_SECS);
        created_at + chrono::Duration::seconds(i64::try_from(ttl).unwrap_or(i64::MAX / 4))
    }

    /// Checks an access token presented to VMC or RaaS at simulated time `now`.
    pub fn validate_access_token(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<&IssuedAccessToken, TokenProblem> {
        let issued = self.access_tokens.get(token).ok_or(TokenProblem::Unknown)?;
        if issued.expires_at <= now {
            return Err(TokenProblem::Expired);
        }
        Ok(issued)
    }

    /// Forgets access tokens that expired before `now` (keeps the state small).
    fn prune_expired(&mut self, now: DateTime<Utc>) {
        self.access_tokens.retain(|_, t| t.expires_at > now);
    }
}

/// A `CspErrorResponse` (`csp.md` §4).
pub fn error_response(status: StatusCode, message: &str) -> Response {
    let code = status.as_u16();
    let body = json!({
        "statusCode": code,
        "cspErrorCode": format!("{MODULE_CODE}.{code}"),
        "errorCode": format!("{MODULE_CODE}.{code}"),
        "message": message,
        "moduleCode": MODULE_CODE,
        "requestId": uuid::Uuid::new_v4().simple().to_string(),
        "traceId": uuid::Uuid::new_v4().simple().to_string(),
        "metadata": null,
    });
    (status, Json(body)).into_response()
}

pub fn routes() -> Router<SimRef> {
    Router::new()
        .route(AUTHORIZE_PATH, post(authorize))
        .route(DETAILS_PATH, post(details))
        .route(
            "/_sim/csp/api-token-ttl",
            axum::routing::put(set_api_token_ttl),
        )
        .route("/_sim/csp/revoke-api-token", post(revoke_api_token))
        .route("/_sim/csp/org", get(default_org))
}

/// `POST /csp/gateway/am/api/auth/api-tokens/authorize`: anonymous, form-encoded; the API
/// token comes as `api_token` (body), `refresh_token` (body, deprecated) or `refresh_token`
/// (query, deprecated).
async fn authorize(
    State(sim): State<SimRef>,
    Query(query): Query<BTreeMap<String, String>>,
    form: Result<Form<BTreeMap<String, String>>, FormRejection>,
) -> Response {
    let form = form.map(|Form(f)| f).unwrap_or_default();
    let api_token = form
        .get("api_token")
        .or_else(|| form.get("refresh_token"))
        .or_else(|| query.get("refresh_token"))
        .filter(|t| !t.is_empty());
    let Some(api_token) = api_token else {
        return error_response(StatusCode::BAD_REQUEST, "Invalid request body");
    };
    let mut state = sim.state.lock().await;
    let now = sim.clock.now();
    if !api_token_usable(&sim, &mut state.csp, api_token, now) {
        return error_response(
            StatusCode::BAD_REQUEST,
            "invalid_grant: Invalid refresh token: the API token is invalid, expired or revoked",
        );
    }
    state.csp.api_token(api_token, now).last_used_at = now;
    let ttl = sim.token_ttl();
    let ttl_secs = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX / 4);
    let expires_at = now + chrono::Duration::seconds(ttl_secs);
    let org_id = state.csp.org_id.clone();
    let access_token = jwt_shaped(&org_id, now, expires_at);
    let id_token = jwt_shaped(&org_id, now, expires_at);
    state.csp.prune_expired(now);
    state.csp.access_tokens.insert(
        access_token.clone(),
        IssuedAccessToken { expires_at, org_id },
    );
    sim.persist(&mut state);
    drop(state);
    Json(json!({
        "id_token": id_token,
        "token_type": TOKEN_TYPE,
        "expires_in": ttl_secs,
        "scope": SCOPE,
        "access_token": access_token,
        "refresh_token": uuid::Uuid::new_v4().to_string(),
    }))
    .into_response()
}

/// Whether `value` is an accepted API token, not revoked and not expired at `now` (recording
/// it when first seen). Expiry is enforced only once a lifetime was set (seed or admin hook):
/// with time compressed (`--time-scale 200000`), six simulated months pass within minutes,
/// and a long-lived simulator must not start refusing the dummy credentials of `--sim`.
fn api_token_usable(sim: &SimRef, csp: &mut CspState, value: &str, now: DateTime<Utc>) -> bool {
    if !sim.credential_accepted(value) || csp.revoked_api_tokens.contains(value) {
        return false;
    }
    let created_at = csp.api_token(value, now).created_at;
    csp.api_token_ttl_secs.is_none() || csp.api_token_expiry(created_at) > now
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct DetailsRequest {
    token_value: Option<String>,
}

/// `POST /csp/gateway/am/api/auth/api-tokens/details`: anonymous, JSON `{"tokenValue": …}`;
/// the `ApiTokenDetailsDto` of an unexpired API token. Times are epoch milliseconds, as
/// William Lam's `Get-CSPRefreshTokenExpiry` (VMware.VMC PowerShell module) reads them from
/// the live service; one Broadcom page says seconds, so clients accept both.
async fn details(State(sim): State<SimRef>, body: Bytes) -> Response {
    let token = serde_json::from_slice::<DetailsRequest>(&body)
        .ok()
        .and_then(|r| r.token_value)
        .filter(|t| !t.is_empty());
    let Some(token) = token else {
        return error_response(StatusCode::BAD_REQUEST, "Invalid request body");
    };
    let mut state = sim.state.lock().await;
    let now = sim.clock.now();
    if !api_token_usable(&sim, &mut state.csp, &token, now) {
        return error_response(
            StatusCode::BAD_REQUEST,
            "invalid_grant: the API token is invalid, expired or revoked",
        );
    }
    let org_id = state.csp.org_id.clone();
    let record = state.csp.api_token(&token, now).clone();
    let expires_at = state.csp.api_token_expiry(record.created_at);
    sim.persist(&mut state);
    drop(state);
    Json(json!({
        "acct": "sim-user@example.com",
        "createdAt": record.created_at.timestamp_millis(),
        "domain": "example.com",
        "expiresAt": expires_at.timestamp_millis(),
        "firstName": "Sim",
        "idpId": "sim-idp",
        "lastName": "User",
        "lastUsedAt": record.last_used_at.timestamp_millis(),
        "orgId": org_id,
        "scope": SCOPE.split(' ').collect::<Vec<_>>(),
        "tokenId": record.token_id,
        "tokenName": "sim-api-token",
        "userId": "sim-user",
        "username": "sim-user@example.com",
    }))
    .into_response()
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TtlRequest {
    seconds: u64,
}

/// `PUT /_sim/csp/api-token-ttl {"seconds": n}`: the lifetime of every API token from its
/// creation.
async fn set_api_token_ttl(State(sim): State<SimRef>, body: Bytes) -> Response {
    let request: TtlRequest = match super::admin::parse_admin_body(&body) {
        Ok(request) => request,
        Err(response) => return response,
    };
    let mut state = sim.state.lock().await;
    state.csp.api_token_ttl_secs = Some(request.seconds);
    sim.persist(&mut state);
    StatusCode::NO_CONTENT.into_response()
}

/// An opaque token that looks like the JWTs CSP issues (header.payload.signature).
fn jwt_shaped(org_id: &str, issued: DateTime<Utc>, expires: DateTime<Utc>) -> String {
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": "sim-signing-key"});
    let payload = json!({
        "sub": "vmware.com:sim-user",
        "iss": "https://gaz.csp-vidm-prod.com",
        "context_name": org_id,
        "iat": issued.timestamp(),
        "exp": expires.timestamp(),
        "jti": uuid::Uuid::new_v4().to_string(),
    });
    let signature = [
        uuid::Uuid::new_v4().into_bytes(),
        uuid::Uuid::new_v4().into_bytes(),
    ]
    .concat();
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(payload.to_string()),
        URL_SAFE_NO_PAD.encode(signature)
    )
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokeRequest {
    api_token: String,
}

async fn revoke_api_token(State(sim): State<SimRef>, body: Bytes) -> Response {
    let request: RevokeRequest = match super::admin::parse_admin_body(&body) {
        Ok(request) => request,
        Err(response) => return response,
    };
    let mut state = sim.state.lock().await;
    state.csp.revoked_api_tokens.insert(request.api_token);
    sim.persist(&mut state);
    StatusCode::NO_CONTENT.into_response()
}

async fn default_org(State(sim): State<SimRef>) -> Json<serde_json::Value> {
    let state = sim.state.lock().await;
    Json(json!({ "org_id": state.csp.org_id }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expired_and_unknown_tokens_are_refused() {
        let now = Utc::now();
        let mut state = CspState::default_estate();
        state.access_tokens.insert(
            "a".to_owned(),
            IssuedAccessToken {
                expires_at: now + chrono::Duration::seconds(10),
                org_id: DEFAULT_ORG_ID.to_owned(),
            },
        );
        assert!(state.validate_access_token("a", now).is_ok());
        assert_eq!(
            state
                .validate_access_token("a", now + chrono::Duration::seconds(10))
                .err(),
            Some(TokenProblem::Expired)
        );
        assert_eq!(
            state.validate_access_token("b", now).err(),
            Some(TokenProblem::Unknown)
        );
    }

    #[test]
    fn debug_output_never_shows_tokens() {
        let mut state = CspState::default_estate();
        state.access_tokens.insert(
            "secret-access-token".to_owned(),
            IssuedAccessToken {
                expires_at: Utc::now(),
                org_id: DEFAULT_ORG_ID.to_owned(),
            },
        );
        state
            .revoked_api_tokens
            .insert("secret-api-token".to_owned());
        let shown = format!("{state:?}");
        assert!(!shown.contains("secret-"), "{shown}");
        assert!(shown.contains("access_tokens: 1"), "{shown}");
    }

    #[test]
    fn access_tokens_look_like_jwts() {
        let now = Utc::now();
        let token = jwt_shaped(DEFAULT_ORG_ID, now, now);
        assert_eq!(token.split('.').count(), 3);
        let payload = URL_SAFE_NO_PAD
            .decode(token.split('.').nth(1).unwrap())
            .unwrap();
        let payload: serde_json::Value = serde_json::from_slice(&payload).unwrap();
        assert_eq!(payload["context_name"], DEFAULT_ORG_ID);
    }
}
