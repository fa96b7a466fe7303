//! Clients of the vendor APIs: the only code that knows a wire format.
//!
//! Each system (`vmc`, `raas`, `vcd`, `vsphere`, with `csp` auth shared by vmc and cloud raas)
//! implements [`Provider`] for the kinds it manages. The planner and executor see only the
//! types defined here: live objects normalized into the manifest's spec shape, and task
//! handles to poll. Adding a kind touches its system's module, never the planner or executor.

pub mod csp;
pub mod http;
pub mod raas;
pub mod tls;
pub mod token;
pub mod vcd;
pub mod vmc;
pub mod vsphere;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::model::kinds::ResourceKind;
use crate::model::{Address, Connection, Kind, SecretValue, SystemType};

pub use crate::model::live::{Attributes, LiveObject, LiveStatus, TaskHandle};

/// What a poll found.
#[derive(Clone, Debug, PartialEq)]
pub enum TaskStatus {
    Done,
    Failed(String),
    Pending {
        /// 0..=100 when the server says.
        progress: Option<u8>,
        /// The server's own estimate of the remaining time.
        eta: Option<Duration>,
    },
}

/// A secret the server hands out once (a VCD API token's refresh token).
#[derive(Clone, Debug)]
pub struct IssuedSecret {
    pub token_type: String,
    pub value: SecretValue,
    /// The server's id of what the secret belongs to (written beside it, so the next plan
    /// knows which token the file holds).
    pub id: Option<String>,
}

/// The result of a create, update or delete call.
#[derive(Clone, Debug)]
pub enum Outcome {
    /// Finished synchronously.
    Done {
        /// Attributes of the object after the change (for `${...}` of dependants).
        attributes: Attributes,
        /// Set only by creates that return a one-time secret.
        secret: Option<IssuedSecret>,
    },
    /// Accepted; poll the task until it finishes.
    Task(TaskHandle),
}

impl Outcome {
    pub fn done() -> Self {
        Outcome::Done {
            attributes: Attributes::default(),
            secret: None,
        }
    }
}

/// Inputs of a create.
#[derive(Clone, Debug)]
pub struct CreateRequest<'a> {
    pub address: &'a Address,
    /// Desired spec (manifest shape, canonical spelling, `${...}` already resolved).
    pub spec: &'a serde_json::Value,
    /// Deterministic id for APIs that accept a client-chosen one (RaaS `job_uuid`, VMC
    /// `sddc_id`), so a create retried after a lost response never duplicates.
    pub idempotency_key: uuid::Uuid,
    pub base_dir: &'a Path,
}

/// Inputs of an in-place update.
#[derive(Clone, Debug)]
pub struct UpdateRequest<'a> {
    pub address: &'a Address,
    pub live: &'a LiveObject,
    /// Desired spec (manifest shape, `${...}` resolved).
    pub spec: &'a serde_json::Value,
    /// Top-level spec fields that differ, sorted.
    pub changed: &'a [String],
}

impl CreateRequest<'_> {
    /// The desired spec as kind `K`'s typed spec ([`ResourceKind::Spec`]): what a provider
    /// builds its wire body from.
    pub fn typed<K: ResourceKind>(&self) -> ProviderResult<K::Spec> {
        typed_spec::<K>(self.address, self.spec)
    }
}

impl UpdateRequest<'_> {
    /// The desired spec as kind `K`'s typed spec ([`ResourceKind::Spec`]).
    pub fn typed<K: ResourceKind>(&self) -> ProviderResult<K::Spec> {
        typed_spec::<K>(self.address, self.spec)
    }
}

/// Reads a desired spec (references resolved) as `K`'s typed spec. The manifest loader has
/// already read the same spec as that type, so a failure here is a defect, reported as an
/// invalid request rather than a panic.
fn typed_spec<K: ResourceKind>(
    address: &Address,
    spec: &serde_json::Value,
) -> ProviderResult<K::Spec> {
    crate::model::kinds::typed::<K>("desired", spec)
        .map_err(|message| ProviderError::Invalid(format!("{address}: {message}")))
}

/// Inputs of a delete.
#[derive(Clone, Debug)]
pub struct DeleteRequest<'a> {
    pub address: &'a Address,
    pub live: &'a LiveObject,
}

/// One failed call to a vendor API. Never holds a secret.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The server answered with an error.
    #[error("{method} {path} failed with {status}: {message}{}", request_id.as_ref().map(|id| format!(" (request id {id})")).unwrap_or_default())]
    Api {
        method: String,
        path: String,
        status: u16,
        message: String,
        request_id: Option<String>,
    },
    /// No answer (connection refused, reset, timeout) after the allowed retries.
    #[error("{method} {path}: {message}")]
    Transport {
        method: String,
        path: String,
        message: String,
    },
    /// The server answered with a redirect, which sextant never follows: credentials would
    /// go wherever it points.
    #[error(
        "{method} {from} answered {status}, a redirect to {to}; sextant never follows redirects, so nothing was sent there"
    )]
    Redirected {
        method: String,
        from: String,
        status: u16,
        to: String,
    },
    /// Login failed or credentials were refused again after re-authenticating.
    #[error("authentication to connection `{connection}` failed: {message}")]
    Auth { connection: String, message: String },
    /// The server answered something the documented API does not allow.
    #[error("unexpected response from {method} {path}: {message}")]
    Protocol {
        method: String,
        path: String,
        message: String,
    },
    /// A secret or setting of the connection could not be used.
    #[error("connection `{connection}`: {message}")]
    Config { connection: String, message: String },
    /// A secret of the connection could not be read (its cause says why, never its value).
    #[error("connection `{connection}`: cannot read `{field}` from {from}")]
    Secret {
        connection: String,
        field: &'static str,
        from: String,
        #[source]
        source: crate::model::secret::SecretError,
    },
    /// The request itself cannot be carried out (e.g. two live objects share a name).
    #[error("{0}")]
    Invalid(String),
}

pub type ProviderResult<T> = Result<T, ProviderError>;

/// Reads a connection's secret `field` from `source`; a failure is [`ProviderError::Secret`].
pub fn read_secret(
    connection: &str,
    field: &'static str,
    source: &crate::model::SecretSource,
) -> ProviderResult<crate::model::SecretValue> {
    source.resolve().map_err(|err| ProviderError::Secret {
        connection: connection.to_string(),
        field,
        from: source.describe(),
        source: err,
    })
}

/// What every system implements. Methods never sleep between polls: long work is returned
/// as a [`TaskHandle`] and the executor calls [`Provider::poll`] when it sees fit.
#[async_trait::async_trait]
pub trait Provider: Send + Sync {
    /// All live objects of `kind`, in bulk (paged as the API requires). `names` are the
    /// declared names, which a provider may use to narrow the listing; objects outside it may
    /// still be returned and are ignored by the planner. Empty `names` means every object of
    /// the kind (`sextant export`).
    async fn list(&self, kind: Kind, names: &[String]) -> ProviderResult<Vec<LiveObject>>;

    async fn create(&self, request: &CreateRequest<'_>) -> ProviderResult<Outcome>;

    /// Most creates one [`Provider::create_many`] call should carry; 1 (the default) when the
    /// API has no batched form, so the executor calls [`Provider::create`] per object.
    fn create_batch_limit(&self) -> usize {
        1
    }

    /// Creates independent objects (their dependencies already exist) in as few requests as
    /// the API allows. Results are in request order. The default creates them one by one.
    async fn create_many(&self, requests: &[CreateRequest<'_>]) -> Vec<ProviderResult<Outcome>> {
        let mut results = Vec::with_capacity(requests.len());
        for request in requests {
            results.push(self.create(request).await);
        }
        results
    }

    async fn update(&self, request: &UpdateRequest<'_>) -> ProviderResult<Outcome>;

    async fn delete(&self, request: &DeleteRequest<'_>) -> ProviderResult<Outcome>;

    async fn poll(&self, task: &TaskHandle) -> ProviderResult<TaskStatus>;

    /// When the connection's long-lived credential expires, where the vendor API reports it
    /// (a CSP API token's `expiresAt`); `Ok(None)` when it does not.
    async fn credential_expiry(&self) -> ProviderResult<Option<chrono::DateTime<chrono::Utc>>> {
        Ok(None)
    }

    /// Ends any server-side session this provider opened. Called once when a command is
    /// done; errors are only logged.
    async fn close(&self) -> ProviderResult<()> {
        Ok(())
    }
}

/// Builds the provider for a connection. Never contacts the server: login happens lazily on
/// the first call.
pub fn connect(connection: &Connection) -> ProviderResult<Arc<dyn Provider>> {
    match connection.config.system {
        SystemType::Vmc => Ok(Arc::new(vmc::VmcProvider::new(connection)?)),
        SystemType::Vsphere => Ok(Arc::new(vsphere::VsphereProvider::new(connection)?)),
        SystemType::Raas => Ok(Arc::new(raas::RaasProvider::new(connection)?)),
        SystemType::Vcd => Ok(Arc::new(vcd::VcdProvider::new(connection)?)),
    }
}

#[cfg(test)]
mod tests {
    use super::Attributes;

    #[test]
    fn an_unreadable_secret_keeps_why_as_its_cause() {
        let source = crate::model::SecretSource::Env("SEXTANT_UNIT_SURELY_UNSET".into());
        let err = super::read_secret("vc", "password", &source).unwrap_err();
        assert_eq!(
            err.to_string(),
            "connection `vc`: cannot read `password` from env `SEXTANT_UNIT_SURELY_UNSET`"
        );
        let cause = std::error::Error::source(&err).expect("a cause");
        assert!(
            cause.to_string().contains("SEXTANT_UNIT_SURELY_UNSET"),
            "{cause}"
        );
    }

    #[test]
    fn attributes_behave_as_a_sorted_map() {
        let mut attributes = Attributes::from([
            ("vc_url".to_string(), "https://vc".to_string()),
            ("id".to_string(), "sddc-1".to_string()),
        ]);
        assert_eq!(
            attributes.insert("id".into(), "sddc-2".into()),
            Some("sddc-1".into())
        );
        attributes.extend([("sddc_state".to_string(), "READY".to_string())]);
        let names: Vec<&String> = attributes.iter().map(|(k, _)| k).collect();
        assert_eq!(names, ["id", "sddc_state", "vc_url"]);
        assert_eq!(attributes["id"], "sddc-2");
        assert_eq!(attributes.get("missing"), None);
        assert!(attributes.contains_key("vc_url"));
        assert_eq!(attributes.len(), 3);
        assert!(Attributes::default().is_empty());
    }
}
