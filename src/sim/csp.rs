//! The simulated CSP API-token exchange (`csp.md`). VMC and cloud RaaS check the access
//! tokens issued here with [`CspState::validate_access_token`].

use std::collections::{BTreeMap, BTreeSet};

use axum::Router;
use chrono::{DateTime, Utc};

use super::SimRef;

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

/// Everything the simulated CSP holds.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct CspState {
    /// Issued access tokens by value.
    pub access_tokens: BTreeMap<String, IssuedAccessToken>,
    /// API tokens revoked through the admin API: exchanges fail, issued tokens stay valid.
    pub revoked_api_tokens: BTreeSet<String>,
}

impl CspState {
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
}

pub fn routes() -> Router<SimRef> {
    Router::new()
}
