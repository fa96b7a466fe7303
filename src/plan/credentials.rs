//! Credential lifetimes: which long-lived credentials of the connections in use expire, or
//! outgrow the age their Connection allows, within a warning window. `plan`, `apply` (and
//! any report built on them) show the result; nothing here stops a run.
//!
//! Two sources: a CSP API token's `expiresAt` as the CSP API reports it (through
//! [`crate::providers::Provider::credential_expiry`]), and the age of a Cloud Director API
//! token file (`api_token: {file: …}`) against the Connection's `max_age`. A warning names
//! the connection and where the credential comes from, never its value.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::ProviderSet;
use crate::model::kinds::vcd_api_token::token_file::read_meta;
use crate::model::{Connection, Model, SecretSource, SystemType};

/// A credential that expires (or reaches its `max_age`) within the warning window.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct CredentialWarning {
    pub connection: String,
    /// What the credential is and where it comes from, e.g. "CSP API token (env `X`)".
    pub credential: String,
    /// When it expires or reaches its `max_age`.
    pub expires_at: DateTime<Utc>,
    /// Already past `expires_at`.
    pub expired: bool,
    /// The whole warning, one line.
    pub message: String,
}

/// The warnings for the credentials of `connections` (names in `model`) that expire before
/// `now + window`, sorted by connection. A zero window checks nothing. Lookups that fail are
/// logged at debug level and skipped: a warning never fails a run.
pub async fn credential_warnings(
    model: &Model,
    connections: &BTreeSet<String>,
    providers: &ProviderSet,
    window: Duration,
    now: DateTime<Utc>,
) -> Vec<CredentialWarning> {
    if window.is_zero() {
        return Vec::new();
    }
    let horizon = now + chrono::Duration::from_std(window).unwrap_or(chrono::Duration::MAX);
    let lookups = connections
        .iter()
        .filter_map(|name| model.connections.get(name))
        .map(|connection| async move {
            match connection.config.system {
                SystemType::Vmc | SystemType::Raas => csp_token(connection, providers).await,
                SystemType::Vcd => vcd_token_file(connection),
                SystemType::Vsphere => None,
            }
        });
    let mut warnings: Vec<CredentialWarning> = futures::future::join_all(lookups)
        .await
        .into_iter()
        .flatten()
        .filter(|(_, _, expires_at, _)| *expires_at <= horizon)
        .map(|(connection, credential, expires_at, advice)| {
            let expired = expires_at <= now;
            let when = if expired {
                format!("expired on {}", day(expires_at))
            } else {
                format!(
                    "expires on {}, within the {} warning window",
                    day(expires_at),
                    short_duration(window)
                )
            };
            CredentialWarning {
                message: format!("connection `{connection}`: the {credential} {when}; {advice}"),
                connection,
                credential,
                expires_at,
                expired,
            }
        })
        .collect();
    warnings.sort_by(|a, b| (&a.connection, &a.credential).cmp(&(&b.connection, &b.credential)));
    warnings
}

/// `(connection, credential, expires_at, advice)`.
type Lifetime = (String, String, DateTime<Utc>, String);

/// A CSP API token's expiry, as the CSP API reports it.
async fn csp_token(connection: &Connection, providers: &ProviderSet) -> Option<Lifetime> {
    let source = connection.config.api_token.as_ref()?;
    // On-prem RaaS logs in with username and password; only cloud RaaS uses CSP.
    if connection.config.system == SystemType::Raas && connection.config.username.is_some() {
        return None;
    }
    let provider = providers.get(&connection.name)?;
    match provider.credential_expiry().await {
        Ok(Some(expires_at)) => Some((
            connection.name.clone(),
            format!("CSP API token ({})", source.describe()),
            expires_at,
            "create a new API token in the CSP console and hand it to sextant before then"
                .to_string(),
        )),
        Ok(None) => None,
        Err(err) => {
            tracing::debug!(connection = %connection.name, "cannot read the CSP API token's expiry: {err}");
            None
        }
    }
}

/// When a Cloud Director API token file reaches the Connection's `max_age`.
fn vcd_token_file(connection: &Connection) -> Option<Lifetime> {
    let max_age = connection.config.max_age?;
    let Some(SecretSource::File(path)) = &connection.config.api_token else {
        return None;
    };
    let written = match read_meta(path) {
        Ok(meta) => meta?.updated_on?,
        Err(message) => {
            tracing::debug!(connection = %connection.name, "{message}");
            return None;
        }
    };
    let expires_at = written + chrono::Duration::from_std(max_age).ok()?;
    Some((
        connection.name.clone(),
        format!(
            "Cloud Director API token file `{}` (written on {}, `max_age: {}`)",
            path.display(),
            day(written),
            short_duration(max_age)
        ),
        expires_at,
        "rotate the token before then (a `VcdApiToken` with `rotate_after` rotates its file on apply)"
            .to_string(),
    ))
}

/// `30d`, `36h`, `90m` or `45s`: the largest unit that divides `duration` (as written in a
/// manifest or on the command line).
fn short_duration(duration: Duration) -> String {
    let seconds = duration.as_secs();
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60)] {
        if seconds >= size && seconds.is_multiple_of(size) {
            return format!("{}{unit}", seconds / size);
        }
    }
    format!("{seconds}s")
}

fn day(time: DateTime<Utc>) -> String {
    time.format("%Y-%m-%d").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_shown_as_written() {
        assert_eq!(short_duration(Duration::from_secs(30 * 86_400)), "30d");
        assert_eq!(short_duration(Duration::from_secs(36 * 3_600)), "36h");
        assert_eq!(short_duration(Duration::from_secs(90)), "90s");
    }
}
