//! The manifest's raw types: what a user may write, with one doc comment per field.
//!
//! These types (with the kinds' specs, which live in their modules under `model::kinds`) are
//! the single source of the JSON Schema (`sextant schema`), and the structural checks read
//! that schema, so a field documented here is a field the loader accepts. A kind's checks
//! and canonical spelling live in its module; the connection's in `connection.rs`.

use std::borrow::Cow;
use std::collections::BTreeMap;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::Deserialize;

use crate::model::Kind;

/// `{env: NAME}`: the value of an environment variable.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EnvRef {
    /// Name of the environment variable.
    pub env: String,
}

/// `{file: PATH}`: the trimmed contents of a file (relative to the manifest's directory).
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileRef {
    /// Path of the file, relative to the directory of the manifest that names it.
    pub file: String,
}

/// A secret: never written inline, always `{env: NAME}` or `{file: PATH}`. Read only when the
/// connection is first used, so `sextant validate` needs no credentials.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum SecretRef {
    Env(EnvRef),
    File(FileRef),
}

/// A connection setting written either as a value or as `{env: NAME}` (read when loading).
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum EnvOr<T> {
    Env(EnvRef),
    Value(T),
}

impl<T: JsonSchema> JsonSchema for EnvOr<T> {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        format!("EnvOr_{}", T::schema_name()).into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "anyOf": [generator.subschema_for::<T>(), generator.subschema_for::<EnvRef>()]
        })
    }
}

/// `Connection.spec.type`: which system the connection talks to.
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ConnectionType {
    /// VMware Cloud on AWS (SDDCs).
    Vmc,
    /// Aria Automation Config / Salt (target groups, jobs, schedules).
    Raas,
    /// Cloud Director (API tokens).
    Vcd,
    /// vSphere Automation REST (existing VMs).
    Vsphere,
}

/// Cloud Aria Automation Config regions (`region` shorthand for `url`).
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RaasRegion {
    Us,
    De,
    In,
    Ca,
    Au,
    Uk,
}

/// TLS settings.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TlsSpec {
    /// PEM file of extra CA certificates to trust (relative to the manifest's directory). A
    /// self-signed server certificate given here is trusted as that server's own, even when
    /// it is marked as a CA (as `openssl req -x509` makes it).
    pub ca_file: Option<EnvOr<String>>,
    /// SHA-256 fingerprint of the server's certificate (64 hex digits, colons allowed, as
    /// `openssl x509 -noout -fingerprint -sha256` prints it): only that certificate is
    /// trusted, whatever its issuer, names or dates.
    pub pin_sha256: Option<EnvOr<String>>,
    /// Skip certificate verification (lab use only). Default `false`.
    pub insecure: Option<EnvOr<bool>>,
}

/// Where and how to talk to one system: the "token settings".
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectionSpec {
    /// The system: `vmc`, `raas`, `vcd` or `vsphere`.
    #[serde(rename = "type")]
    pub kind: ConnectionType,
    /// Base URL of the API. Default for vmc: `https://vmc.vmware.com`; required for raas
    /// (unless `region` is set), vcd and vsphere.
    pub url: Option<EnvOr<String>>,
    /// Cloud Aria Automation Config region (`us`, `de`, `in`, `ca`, `au`, `uk`): shorthand
    /// for the regional `url`. raas with `api_token` only.
    pub region: Option<EnvOr<RaasRegion>>,
    /// CSP base URL used to exchange the API token (vmc and cloud raas). Default
    /// `https://console.cloud.vmware.com`.
    pub csp_url: Option<EnvOr<String>>,
    /// VMC organization id. May be omitted when the API token sees exactly one organization.
    pub org_id: Option<EnvOr<String>>,
    /// API token (vmc, cloud raas, vcd): `{env: NAME}` or `{file: PATH}`, never inline.
    #[schemars(extend("x-sextant-secret" = true))]
    pub api_token: Option<SecretRef>,
    /// User name (raas on-prem, vcd sessions, vsphere).
    pub username: Option<EnvOr<String>>,
    /// Password (raas on-prem, vcd sessions, vsphere): `{env: NAME}` or `{file: PATH}`,
    /// never inline.
    #[schemars(extend("x-sextant-secret" = true))]
    pub password: Option<SecretRef>,
    /// RaaS on-prem authentication back-end. Default `internal`.
    pub config_name: Option<EnvOr<String>>,
    /// Cloud Director organization to log in to. Default `System`.
    pub org: Option<EnvOr<String>>,
    /// Cloud Director API version. Default `36.1` (quote it: `"36.1"`).
    pub api_version: Option<EnvOr<String>>,
    /// TLS settings.
    pub tls: Option<TlsSpec>,
    /// Longest wait for the answer to one attempt of an HTTP request, humantime (`30s`,
    /// `2m`). Default `30s`.
    pub timeout: Option<EnvOr<String>>,
    /// Longest wait for a connection to the server (name lookup, TCP and TLS) in one
    /// attempt, humantime. Default `10s`.
    pub connect_timeout: Option<EnvOr<String>>,
    /// Longest time one request may take, all its attempts and the waits between them
    /// included, humantime. Default `2m`.
    pub request_deadline: Option<EnvOr<String>>,
    /// Retries of one failed request (connection errors, 429, 503, timeouts of what is safe
    /// to resend), each announced on stderr. Default 4.
    pub max_retries: Option<EnvOr<u32>>,
    /// API calls in flight at once on this connection (at least 1). Default 10.
    pub max_concurrency: Option<EnvOr<u32>>,
    /// Refresh an access token this long before it expires (humantime). Default `120s`; the
    /// effective margin is the smaller of this and half the token's lifetime.
    pub refresh_before_expiry: Option<EnvOr<String>>,
    /// vSphere REST flavour: `auto` (default: `/api`, falling back to `/rest` when
    /// `/api/session` answers 404), `api` (vSphere 7.0 U2 and later) or `rest` (the flavour
    /// of vSphere 6.5 to 7.0 U1, deprecated since 7.0 U2). vsphere only.
    pub api_flavor: Option<EnvOr<VsphereApiFlavor>>,
    /// Pruning (off unless set): live objects of these kinds that sextant owns and no
    /// manifest declares any longer are planned as deletes. vmc, raas and vcd.
    pub prune: Option<PruneSpec>,
    /// Most objects one plan may destroy (deletes and replacements, pruned objects
    /// included), counted over the whole plan; `--max-destroy N` overrides it. Default 10.
    pub max_destroy: Option<EnvOr<u32>>,
    /// Longest age of the Cloud Director API token in `api_token: {file: …}` (humantime,
    /// e.g. `90d`): `plan` and `apply` warn when the file (its `updated_on`, or its
    /// modification time) gets older than this minus `--warn-expiry`. vcd only.
    pub max_age: Option<EnvOr<String>>,
    /// Which live objects of this connection `sextant drift` reports as unmanaged (live, but
    /// declared by no manifest).
    pub unmanaged: Option<UnmanagedSpec>,
}

/// `Connection.spec.prune`: which undeclared objects a plan deletes.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PruneSpec {
    /// Kinds to prune, of this connection's system. An `Sddc` is pruned only when the plan
    /// is also applied with `--allow-destroy Sddc`. VMs are never pruned.
    #[schemars(length(min = 1))]
    pub kinds: Vec<PrunableKind>,
    /// Names this connection reserves for sextant, as a glob (`*` any run of characters,
    /// `?` one character), e.g. `prod-*`. When set, only objects whose name matches are
    /// pruned, whoever created them. When not set, only objects sextant created (a job's or
    /// SDDC's id derived from its connection, kind and name) are pruned; kinds whose ids the
    /// server assigns (target groups, schedules, Cloud Director tokens) need a scope.
    #[schemars(length(min = 1))]
    pub scope: Option<String>,
}

/// A kind `prune.kinds` may list: a managed kind that can be deleted (from the registry, so a
/// new kind is listed without a change here).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PrunableKind(pub Kind);

impl PrunableKind {
    fn all() -> impl Iterator<Item = Kind> {
        Kind::ALL
            .into_iter()
            .filter(|kind| kind.rules().deletable())
    }
}

impl<'de> Deserialize<'de> for PrunableKind {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        PrunableKind::all()
            .find(|kind| kind.as_str() == text)
            .map(PrunableKind)
            .ok_or_else(|| serde::de::Error::unknown_variant(&text, &[]))
    }
}

impl JsonSchema for PrunableKind {
    fn schema_name() -> Cow<'static, str> {
        "PrunableKind".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let names: Vec<&str> = PrunableKind::all().map(Kind::as_str).collect();
        json_schema!({
            "type": "string",
            "enum": names,
            "description": "A kind `prune.kinds` may list.",
        })
    }
}

/// `Connection.spec.unmanaged`: the scope of unmanaged-object reporting on one connection.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UnmanagedSpec {
    /// Kinds whose live objects are checked, e.g. `[SaltTarget, SaltJob]`. Default: the
    /// kinds the manifests declare on this connection (their listings are made anyway).
    /// `VirtualMachine` is checked only when named here (sextant does not create VMs).
    pub kinds: Option<Vec<String>>,
    /// Address globs of live objects never reported, e.g. `SaltTarget/All Minions` or
    /// `SaltJob/tmp-*` (`*`, `?`, `[abc]`, `{a,b}`; `\` escapes). Ignored objects are
    /// counted, not listed.
    pub ignore: Option<Vec<String>>,
}

/// Which vSphere REST flavour a connection speaks.
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum VsphereApiFlavor {
    /// `/api`, or `/rest` when the server has no `/api/session`.
    Auto,
    /// `/api` only.
    Api,
    /// `/rest` only.
    Rest,
}

/// `apiVersion`: only `sextant/v1` exists.
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema)]
pub enum ApiVersion {
    #[serde(rename = "sextant/v1")]
    V1,
}

/// `ensure`: whether the object should exist.
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum EnsureSpec {
    /// Create it if missing (default).
    Present,
    /// Delete it if it exists.
    Absent,
}

/// Lifecycle guards.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LifecycleSpec {
    /// Refuse any plan that deletes or replaces this object. Default `false`.
    pub prevent_destroy: Option<bool>,
    /// Field paths (`spec.desc`) whose drift is not reported.
    pub ignore_changes: Option<Vec<String>>,
}

/// How long apply waits for long-running work (humantime: `5h`, `90m`).
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TimeoutsSpec {
    /// Default `5h`.
    pub create: Option<String>,
    /// Default `5h`.
    pub update: Option<String>,
    /// Default `3h`.
    pub delete: Option<String>,
}

/// Fields every managed object's document has (`kind` and `spec` are added per kind).
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResourceEnvelope {
    /// Manifest language version, `sextant/v1` (optional).
    #[serde(rename = "apiVersion")]
    pub api_version: Option<ApiVersion>,
    /// The object's name in the remote system; `Kind/name` is its address.
    #[schemars(length(min = 1))]
    pub name: String,
    /// Name of the Connection to use; optional when exactly one connection of the kind's
    /// system exists.
    pub connection: Option<String>,
    /// Explicit dependencies as `Kind/name` addresses (references add implicit ones).
    pub depends_on: Option<Vec<String>>,
    /// `present` (default) or `absent` (delete it if it exists).
    pub ensure: Option<EnsureSpec>,
    /// Lifecycle guards.
    pub lifecycle: Option<LifecycleSpec>,
    /// How long apply waits for long-running work.
    pub timeouts: Option<TimeoutsSpec>,
    /// Names the object had before: when one of them exists live and `name` does not, the
    /// plan renames it (in place where the API can, else a replacement that says why).
    pub previous_names: Option<Vec<PreviousName>>,
}

/// One of `previous_names`.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct PreviousName(#[schemars(length(min = 1))] pub String);

/// Fields of a Connection document (`kind` and `spec` are added).
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectionEnvelope {
    /// Manifest language version, `sextant/v1` (optional).
    #[serde(rename = "apiVersion")]
    pub api_version: Option<ApiVersion>,
    /// Name other documents use in `connection:`.
    #[schemars(length(min = 1))]
    pub name: String,
}

/// Fields of an Environment document (`kind` and `spec` are added).
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentEnvelope {
    /// Manifest language version, `sextant/v1` (optional).
    #[serde(rename = "apiVersion")]
    pub api_version: Option<ApiVersion>,
    /// The environment's name (`staging`, `prod`), shown in messages and rendered files.
    #[schemars(length(min = 1))]
    pub name: String,
}

/// One estate built from shared manifests: what to include, the `${var.NAME}` values, and
/// patches by address.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentSpec {
    /// Manifest files or directories to load, relative to this file's directory (directories
    /// are read recursively). An included directory may hold another environment, whose
    /// values and patches then apply first.
    pub include: Option<Vec<IncludePath>>,
    /// Values of `${var.NAME}` in every included document. A string that is exactly
    /// `${var.NAME}` takes the value with its type; inside a longer string it is written as
    /// text. `--var NAME=VALUE` and then `--var-file FILE` override them. Never secrets:
    /// those stay `{env: NAME}` or `{file: PATH}`.
    pub values: Option<BTreeMap<String, serde_json::Value>>,
    /// JSON merge patches (RFC 7396) applied, in order, to the documents with the target
    /// address after substitution.
    pub patches: Option<Vec<PatchSpec>>,
}

/// A path of `Environment.spec.include`.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct IncludePath(#[schemars(length(min = 1))] pub String);

/// A JSON merge patch of the documents with one address: objects merge, `null` removes a
/// field, anything else replaces it.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchSpec {
    /// The address the patch applies to, `Kind/name`, after substitution.
    #[schemars(length(min = 1))]
    pub target: String,
    /// Merged into the document's `spec`.
    pub spec: Option<serde_json::Value>,
    /// Replaces the document's `connection`.
    pub connection: Option<serde_json::Value>,
    /// Replaces the document's `depends_on`.
    pub depends_on: Option<serde_json::Value>,
    /// Replaces the document's `ensure`.
    pub ensure: Option<serde_json::Value>,
    /// Merged into the document's `lifecycle`.
    pub lifecycle: Option<serde_json::Value>,
    /// Merged into the document's `timeouts`.
    pub timeouts: Option<serde_json::Value>,
}

/// Fields of a Lock document (`kind` and `spec` are added).
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LockEnvelope {
    /// Manifest language version, `sextant/v1` (optional).
    #[serde(rename = "apiVersion")]
    pub api_version: Option<ApiVersion>,
    /// The lock's name, shown in messages.
    #[schemars(length(min = 1))]
    pub name: String,
}

/// Where `apply` takes its locks (one per estate it changes), and how long it waits for one.
/// `--lock` / `SEXTANT_LOCK_URL` and `--lock-timeout` override it.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LockSpec {
    /// Session-level advisory locks on a PostgreSQL database every runner reaches.
    pub postgres: PostgresLockSpec,
    /// How long an apply waits for a lock another apply holds, e.g. `10m` (default `0s`:
    /// fail at once, naming the holder).
    pub timeout: Option<String>,
}

/// The PostgreSQL database that holds the locks.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PostgresLockSpec {
    /// `postgres://user@host:port/database`. A URL that carries a password is a secret:
    /// write it as `{env: NAME}` or `{file: PATH}`.
    pub url: LockUrl,
}

/// A lock database URL: written inline only when it holds no password.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum LockUrl {
    Secret(SecretRef),
    Text(#[schemars(length(min = 1))] String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prunable_kinds_are_the_deletable_managed_kinds() {
        let listed: Vec<Kind> = PrunableKind::all().collect();
        assert!(!listed.contains(&Kind::VirtualMachine));
        assert!(listed.contains(&Kind::Sddc) && listed.contains(&Kind::VcdApiToken));
        let read: Vec<PrunableKind> = serde_json::from_str(r#"["SaltJob"]"#).unwrap();
        assert_eq!(read, vec![PrunableKind(Kind::SaltJob)]);
        assert!(serde_json::from_str::<PrunableKind>(r#""VirtualMachine""#).is_err());
    }
}
