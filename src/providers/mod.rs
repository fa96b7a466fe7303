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

use crate::model::{Address, CompactJson, Connection, Kind, SecretValue, SystemType};

/// A live object as the planner sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct LiveObject {
    pub kind: Kind,
    /// The object's name in the remote system (matched exactly against the manifest name).
    pub name: String,
    /// The server's id (SDDC id, RaaS uuid, VCD token id, vSphere VM id).
    pub id: String,
    /// Every user-settable field the server reports, normalized into the manifest's spec shape
    /// and canonical spelling. Fields the server never returns are absent.
    pub spec: CompactJson,
    /// Exported attributes (`id`, `vc_url`, `uuid`, …) for `${Kind/name.attr}`.
    pub attributes: Attributes,
    pub status: LiveStatus,
    /// Changes whenever the object changes on the server (an etag, or a hash of its JSON).
    pub fingerprint: String,
}

/// Exported attributes of a live object, by name: a handful of pairs in a vector sorted by
/// name (a `BTreeMap` allocates a node of about 500 bytes even for one pair, and a plan
/// holds one set per live object).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Attributes(Vec<(String, String)>);

impl Attributes {
    fn position(&self, key: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(k, _)| k.as_str().cmp(key))
    }

    pub fn get(&self, key: &str) -> Option<&String> {
        self.position(key).ok().map(|i| &self.0[i].1)
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.position(key).is_ok()
    }

    /// Sets `key`, returning the value it replaced.
    pub fn insert(&mut self, key: String, value: String) -> Option<String> {
        match self.position(&key) {
            Ok(i) => Some(std::mem::replace(&mut self.0[i].1, value)),
            Err(i) => {
                self.0.insert(i, (key, value));
                None
            }
        }
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Pairs in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &String)> {
        self.0.iter().map(|(k, v)| (k, v))
    }
}

impl Extend<(String, String)> for Attributes {
    fn extend<I: IntoIterator<Item = (String, String)>>(&mut self, pairs: I) {
        for (key, value) in pairs {
            self.insert(key, value);
        }
    }
}

impl FromIterator<(String, String)> for Attributes {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(pairs: I) -> Self {
        let mut attributes = Attributes::default();
        attributes.extend(pairs);
        attributes
    }
}

impl<const N: usize> From<[(String, String); N]> for Attributes {
    fn from(pairs: [(String, String); N]) -> Self {
        pairs.into_iter().collect()
    }
}

impl IntoIterator for Attributes {
    type Item = (String, String);
    type IntoIter = std::vec::IntoIter<(String, String)>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl std::ops::Index<&str> for Attributes {
    type Output = String;

    /// Panics when `key` is absent, as `BTreeMap`'s index does.
    fn index(&self, key: &str) -> &String {
        self.get(key)
            .unwrap_or_else(|| panic!("no attribute `{key}`"))
    }
}

/// Whether a live object can be acted on now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LiveStatus {
    Ready,
    /// A task is running on the object (an SDDC DEPLOYING or DELETING, hosts being added).
    Busy {
        task: Option<TaskHandle>,
        /// What the server is doing, e.g. `DEPLOYING`.
        activity: String,
    },
    /// The object exists but is unusable (an SDDC whose deployment FAILED or was CANCELED).
    Failed {
        reason: String,
    },
    /// Gone but still readable (a DELETED SDDC). Never matched to a manifest; counted only to
    /// choose a fresh client-side id for the next create.
    Deleted,
}

/// Long-running work on the server that the executor polls.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TaskHandle {
    pub kind: Kind,
    /// The server's task id.
    pub id: String,
    /// The id of the object the task works on.
    pub object_id: String,
}

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
    /// The user allowed a power cycle (VirtualMachine).
    pub allow_power_cycle: bool,
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
    /// The request itself cannot be carried out (e.g. two live objects share a name).
    #[error("{0}")]
    Invalid(String),
}

pub type ProviderResult<T> = Result<T, ProviderError>;

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
