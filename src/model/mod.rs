//! The validated domain model: addresses, resources, connections and their settings.
//!
//! Everything here is already checked: the manifest loader (`crate::manifest`) turns raw YAML
//! into these types, and the planner, providers and executor only ever see them. This module
//! knows no wire format and does no I/O except resolving secret references on demand and
//! reading what is not secret in a VCD token file (`kinds::vcd_api_token::token_file`).
//!
//! A resource's `spec` is kept as a JSON object holding **only the fields the user wrote**, in
//! the canonical spelling described on each kind (for example an SDDC region is `US_WEST_2`,
//! a deployment type `SingleAZ`). Providers normalize live objects into the same shape, so the
//! planner can diff the two field by field without knowing any kind.

pub mod compact;
pub mod kind;
pub mod kinds;
pub mod live;
pub mod rules;
pub mod secret;
pub mod shown;
pub mod wildcard;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use compact::CompactJson;
pub use kind::SystemType;
pub use kinds::Kind;
pub use secret::{SecretSource, SecretValue};

/// `Kind/name`: how a resource is named everywhere (CLI, plan output, `depends_on`).
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct Address {
    pub kind: Kind,
    pub name: String,
}

impl Address {
    pub fn new(kind: Kind, name: impl Into<String>) -> Self {
        Self {
            kind,
            name: name.into(),
        }
    }

    /// Parses `Kind/name`. The name may itself contain `/`.
    pub fn parse(text: &str) -> Option<Self> {
        let (kind, name) = text.split_once('/')?;
        let kind = Kind::parse(kind)?;
        if name.is_empty() {
            return None;
        }
        Some(Self::new(kind, name))
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.kind, self.name)
    }
}

/// Where a document (or a field in it) came from, for error messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceLocation {
    /// Shared by every object of the file.
    pub file: Arc<Path>,
    pub line: usize,
    pub column: usize,
}

impl Default for SourceLocation {
    fn default() -> Self {
        Self {
            file: Arc::from(Path::new("")),
            line: 0,
            column: 0,
        }
    }
}

impl fmt::Display for SourceLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Ensure {
    #[default]
    Present,
    Absent,
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Lifecycle {
    pub prevent_destroy: bool,
    /// Field paths such as `spec.desc` whose drift is not reported.
    pub ignore_changes: Vec<String>,
}

/// How long apply waits for each kind of long-running work before giving up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    pub create: Duration,
    pub update: Duration,
    pub delete: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            create: Duration::from_secs(5 * 3600),
            update: Duration::from_secs(5 * 3600),
            delete: Duration::from_secs(3 * 3600),
        }
    }
}

/// A `${Kind/name.attribute}` occurrence inside a string of a spec.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Reference {
    pub target: Address,
    pub attribute: String,
}

/// A `target` or `job` name that no manifest declares: the object must already exist on the
/// resource's connection (the built-in "All Minions" target group, a group made by hand).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamedReference {
    pub target: Address,
    /// The spec field holding the name, e.g. `target` (shown as `spec.target`).
    pub field: &'static str,
    /// Where the name is written.
    pub location: SourceLocation,
}

/// One declared managed object.
#[derive(Clone, Debug)]
pub struct Resource {
    pub address: Address,
    /// Name of the resolved connection (always set after validation).
    pub connection: String,
    /// Explicit `depends_on` plus implicit edges (`target`, `job`, `${...}` references).
    pub depends_on: Vec<Address>,
    pub ensure: Ensure,
    pub lifecycle: Lifecycle,
    pub timeouts: Timeouts,
    /// Only the fields the user wrote, canonical spelling; `${...}` kept verbatim in strings.
    /// Shared with the plan's `after` when it holds no reference to resolve.
    pub spec: CompactJson,
    pub references: Vec<Reference>,
    /// Names of undeclared objects this one refers to; planning checks they are live.
    pub named: Vec<NamedReference>,
    /// Names the object had before (`previous_names`), for renames.
    pub previous_names: Vec<String>,
    /// Directory of the manifest file, for relative paths such as `VcdApiToken.spec.file`
    /// (shared by every resource of the file).
    pub base_dir: Arc<Path>,
    pub location: SourceLocation,
}

/// TLS settings of a connection.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsConfig {
    /// Absolute path (resolved against the manifest's directory).
    pub ca_file: Option<PathBuf>,
    /// SHA-256 of the one server certificate trusted (`tls.pin_sha256`).
    pub pin_sha256: Option<[u8; 32]>,
    pub insecure: bool,
}

impl TlsConfig {
    /// A SHA-256 fingerprint as written in a manifest: 64 hex digits, optionally separated by
    /// colons (as `openssl x509 -fingerprint -sha256` prints it).
    pub fn parse_pin(text: &str) -> Option<[u8; 32]> {
        let digits: String = text.trim().chars().filter(|c| *c != ':').collect();
        hex::decode(digits).ok()?.try_into().ok()
    }
}

/// The "token settings" of one connection, with defaults applied.
#[derive(Clone, Debug)]
pub struct ConnectionConfig {
    pub system: SystemType,
    /// Base URL of the API (no trailing slash).
    pub url: String,
    /// CSP base URL (vmc and cloud raas).
    pub csp_url: String,
    pub org_id: Option<String>,
    pub api_token: Option<SecretSource>,
    pub username: Option<String>,
    pub password: Option<SecretSource>,
    /// RaaS on-prem authentication back-end (`internal` by default).
    pub config_name: String,
    /// Cloud Director organization (`System` for the provider).
    pub org: String,
    /// Cloud Director API version (`36.1` by default).
    pub api_version: String,
    pub tls: TlsConfig,
    /// Longest wait for one attempt's answer.
    pub timeout: Duration,
    /// Longest wait for a TCP/TLS connection (DNS included) in one attempt.
    pub connect_timeout: Duration,
    /// Longest time one request may take, every attempt and wait between them included.
    pub request_deadline: Duration,
    /// Retries of one request (the only retries: nothing retries around them).
    pub max_retries: u32,
    pub max_concurrency: usize,
    pub refresh_before_expiry: Duration,
    /// vSphere REST flavour (`auto` by default).
    pub api_flavor: ApiFlavor,
    /// Which undeclared objects plans delete; `None`: pruning is off.
    pub prune: Option<PrunePolicy>,
    /// Most objects one plan may destroy (`--max-destroy` overrides it); `None`: the default.
    pub max_destroy: Option<u32>,
    /// Longest age of a Cloud Director API token file (`max_age`); `None`: not checked.
    pub max_age: Option<Duration>,
    /// Which live objects `sextant drift` reports as unmanaged.
    pub unmanaged: UnmanagedScope,
}

/// `Connection.spec.prune`: which undeclared live objects of a connection a plan deletes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PrunePolicy {
    /// Kinds pruned (never `VirtualMachine`), of the connection's system.
    pub kinds: Vec<Kind>,
    /// A name glob (`*`, `?`) the team reserves for sextant: when set, exactly the undeclared
    /// objects whose name matches are pruned.
    pub scope: Option<String>,
}

/// `Connection.spec.unmanaged`, validated: which listings are checked for objects no
/// manifest declares, and which of those objects are never reported.
#[derive(Clone, Debug, Default)]
pub struct UnmanagedScope {
    /// The kinds named in `unmanaged.kinds`; `None`: the kinds declared on the connection.
    pub kinds: Option<Vec<Kind>>,
    /// `unmanaged.ignore`, as written (each a valid address glob).
    pub ignore: Vec<String>,
    /// The globs compiled, matched against `Kind/name`.
    pub ignore_set: globset::GlobSet,
}

impl UnmanagedScope {
    /// Compiles one address glob: `*`, `?`, `[…]` and `{a,b}`, matched against the whole
    /// `Kind/name` (`*` crosses `/`, which names may hold).
    pub fn compile(glob: &str) -> Result<globset::Glob, globset::Error> {
        globset::GlobBuilder::new(glob)
            .literal_separator(false)
            .backslash_escape(true)
            .empty_alternates(true)
            .build()
    }

    /// Whether the live object at `address` is ignored.
    pub fn ignores(&self, address: &Address) -> bool {
        !self.ignore.is_empty() && self.ignore_set.is_match(address.to_string())
    }
}

/// Which vSphere REST flavour a connection speaks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ApiFlavor {
    /// `/api`, falling back to `/rest` when `POST /api/session` answers 404.
    #[default]
    Auto,
    /// `/api` (vSphere 7.0 U2 and later).
    Api,
    /// `/rest` (vSphere 6.5 and later; deprecated since 7.0 U2).
    Rest,
}

impl ConnectionConfig {
    /// Defaults for a system, as documented in the manifest schema.
    pub fn with_defaults(system: SystemType) -> Self {
        Self {
            system,
            url: system.default_url().unwrap_or_default().to_string(),
            csp_url: "https://console.cloud.vmware.com".to_string(),
            org_id: None,
            api_token: None,
            username: None,
            password: None,
            config_name: "internal".to_string(),
            org: "System".to_string(),
            api_version: "36.1".to_string(),
            tls: TlsConfig::default(),
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            request_deadline: Duration::from_secs(120),
            max_retries: 4,
            max_concurrency: 10,
            refresh_before_expiry: Duration::from_secs(120),
            api_flavor: ApiFlavor::Auto,
            prune: None,
            max_destroy: None,
            max_age: None,
            unmanaged: UnmanagedScope::default(),
        }
    }
}

/// A declared `Connection`.
#[derive(Clone, Debug)]
pub struct Connection {
    pub name: String,
    pub config: ConnectionConfig,
    pub location: SourceLocation,
}

/// The whole validated set of manifests.
#[derive(Clone, Debug, Default)]
pub struct Model {
    pub connections: BTreeMap<String, Connection>,
    pub resources: BTreeMap<Address, Resource>,
    /// Findings that did not stop the load (`file:line:column: message`), for the CLI to show.
    pub warnings: Vec<String>,
    /// The run's `kind: Lock` document, when it has one.
    pub lock: Option<LockSettings>,
}

/// A `kind: Lock` document: where `apply` takes its locks and how long it waits for one.
#[derive(Clone, Debug)]
pub struct LockSettings {
    pub name: String,
    /// The PostgreSQL URL: a secret, as it may carry a password (an inline URL without one
    /// is a [`SecretSource::Fixed`]).
    pub postgres_url: SecretSource,
    pub timeout: Option<Duration>,
    pub location: SourceLocation,
}
