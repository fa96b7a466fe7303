//! The manifest's raw types: what a user may write, with one doc comment per field.
//!
//! These types are the single source of the JSON Schema (`sextant schema`), and the
//! structural checks read that schema, so a field documented here is a field the loader
//! accepts. Semantic rules and canonical spelling live in `rules.rs` and `connection.rs`.

use std::borrow::Cow;
use std::collections::BTreeMap;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::Deserialize;

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
    /// Which live objects of this connection `sextant drift` reports as unmanaged (live, but
    /// declared by no manifest).
    pub unmanaged: Option<UnmanagedSpec>,
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

/// SDDC hardware provider.
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema, PartialEq, Eq)]
pub enum SddcProvider {
    /// Amazon Web Services (default).
    #[serde(rename = "AWS")]
    Aws,
    /// Simulated hosts, for testing.
    #[serde(rename = "ZEROCLOUD")]
    Zerocloud,
}

/// ESXi host instance type.
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema, PartialEq, Eq)]
pub enum HostInstanceType {
    #[serde(rename = "i3.metal")]
    I3,
    #[serde(rename = "i3en.metal")]
    I3en,
    #[serde(rename = "i4i.metal")]
    I4i,
    #[serde(rename = "c6i.metal")]
    C6i,
    #[serde(rename = "m7i.metal-24xl")]
    M7i24,
    #[serde(rename = "m7i.metal-48xl")]
    M7i48,
}

/// SDDC type: `1NODE` is a single-host SDDC, `DEFAULT` a regular one.
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema, PartialEq, Eq)]
pub enum SddcType {
    /// Exactly one host.
    #[serde(rename = "1NODE")]
    OneNode,
    /// Two hosts or more.
    #[serde(rename = "DEFAULT")]
    Default,
}

/// Single or stretched (multi availability zone) cluster.
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema, PartialEq, Eq)]
pub enum DeploymentType {
    /// One availability zone (default).
    SingleAZ,
    /// Stretched across two availability zones; host counts are even.
    MultiAZ,
    /// Same as `SingleAZ`.
    #[serde(rename = "SINGLE_AZ")]
    SingleAzUpper,
    /// Same as `MultiAZ`.
    #[serde(rename = "MULTI_AZ")]
    MultiAzUpper,
}

impl DeploymentType {
    pub fn is_multi_az(self) -> bool {
        matches!(self, DeploymentType::MultiAZ | DeploymentType::MultiAzUpper)
    }
}

/// Size of the management appliances.
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SddcSize {
    Medium,
    Large,
}

/// Link to the customer's AWS account (create-only; the server never returns it). An `AWS`
/// SDDC needs `connected_account_id` and `customer_subnet_ids`, or `delay: true`: VMC
/// refuses to create it otherwise ("Invalid account linking configuration").
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountLink {
    /// Create the SDDC now and link the AWS account later (`delay_account_link`). Default
    /// `false`.
    pub delay: Option<bool>,
    /// Id of the connected AWS account (VMC console: Connected Accounts).
    pub connected_account_id: Option<String>,
    /// Subnets of the connected VPC: one for SingleAZ, two (one per zone) for MultiAZ.
    pub customer_subnet_ids: Option<Vec<String>>,
}

/// A VMware Cloud on AWS SDDC. `num_hosts` and 1NODE→DEFAULT change in place; any other
/// change replaces the SDDC.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SddcSpec {
    /// AWS region, `us-west-2` or `US_WEST_2` (the same thing).
    pub region: String,
    /// `AWS` (default) or `ZEROCLOUD`.
    pub provider: Option<SddcProvider>,
    /// Number of ESXi hosts in the primary cluster: exactly 1 for `1NODE`, otherwise 2 to 16
    /// (even for MultiAZ).
    #[schemars(range(min = 1, max = 16))]
    pub num_hosts: u32,
    /// ESXi host instance type. Default `i3.metal`.
    pub host_instance_type: Option<HostInstanceType>,
    /// `1NODE` or `DEFAULT` (default).
    pub sddc_type: Option<SddcType>,
    /// `SingleAZ` (default) or `MultiAZ` (`SINGLE_AZ`/`MULTI_AZ` also accepted).
    pub deployment_type: Option<DeploymentType>,
    /// Management network CIDR with prefix /16, /20 or /23, e.g. `10.2.0.0/16`.
    pub vpc_cidr: Option<String>,
    /// Compute gateway logical network CIDR, e.g. `192.168.1.0/24`.
    pub vxlan_subnet: Option<String>,
    /// Do not create the default logical network. Default `true`.
    pub skip_creating_vxlan: Option<bool>,
    /// SSO domain of the vCenter. Default `vmc.local`.
    pub sso_domain: Option<String>,
    /// Appliance size, `medium` (default) or `large`.
    pub size: Option<SddcSize>,
    /// Link to the customer's AWS account; required for `AWS` (the default provider):
    /// `connected_account_id` and `customer_subnet_ids`, or `delay: true`.
    pub account_link: Option<AccountLink>,
}

/// How a target group selects minions.
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum TgtType {
    Compound,
    Glob,
    Grain,
    GrainPcre,
    Pillar,
    PillarPcre,
    List,
    Ipcidr,
    Pcre,
    Node,
}

/// The targeting expression for one master (or `*` for all masters).
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TgtEntry {
    /// Kind of expression: compound, glob, grain, grain_pcre, pillar, pillar_pcre, list,
    /// ipcidr, pcre or node.
    pub tgt_type: TgtType,
    /// The expression, e.g. `G@os:CentOS` (compound) or `web*` (glob).
    pub tgt: String,
}

/// A permission a role may have on a target group.
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TargetPermission {
    /// See the group and its definition.
    Read,
    /// Change the group.
    Write,
    /// Delete the group.
    Delete,
    /// RaaS's `discover` access to the group.
    Discover,
}

/// A permission a role may have on a saved job.
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum JobPermission {
    /// See the job and its definition.
    Read,
    /// Change the job.
    Write,
    /// Delete the job.
    Delete,
    /// RaaS's `discover` access to the job.
    Discover,
    /// Run the job.
    Run,
}

/// An Aria Automation Config target group.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SaltTargetSpec {
    /// Description.
    pub desc: Option<String>,
    /// Master id (or `*` for every master) → targeting expression.
    #[schemars(extend("minProperties" = 1))]
    pub tgt: BTreeMap<String, TgtEntry>,
    /// Role name → the permissions it has on the group, e.g. `{Ops: [read, write]}`; a role
    /// given `[]` has none. Roles not named are left alone unless `access_exclusive: true`.
    pub access: Option<BTreeMap<String, Vec<TargetPermission>>>,
    /// Take every permission from roles not named in `access`. Default `false`.
    pub access_exclusive: Option<bool>,
}

/// Which Salt client runs a job.
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SaltCmd {
    /// Run on minions (default).
    Local,
    /// Run a runner on the masters.
    Runner,
    /// Run a wheel function on the masters.
    Wheel,
}

/// Arguments of a saved job.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JobArgs {
    /// Positional arguments.
    pub arg: Option<Vec<serde_json::Value>>,
    /// Keyword arguments (values may be job-input definitions).
    pub kwarg: Option<serde_json::Map<String, serde_json::Value>>,
}

/// An Aria Automation Config saved job.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SaltJobSpec {
    /// Description.
    pub desc: Option<String>,
    /// `local` (default), `runner` or `wheel`.
    pub cmd: Option<SaltCmd>,
    /// Salt function, e.g. `test.ping` or `state.apply`.
    #[schemars(length(min = 1))]
    pub fun: String,
    /// Arguments: `{arg: [...], kwarg: {...}}`.
    pub arg: Option<JobArgs>,
    /// Master ids that receive runner and wheel commands.
    pub masters: Option<Vec<String>>,
    /// Name of a target group: a declared SaltTarget or one that already exists (such as
    /// `All Minions`).
    pub target: Option<String>,
    /// Role name → the permissions it has on the job, e.g. `{Ops: [read, run]}`; a role given
    /// `[]` has none. Roles not named are left alone unless `access_exclusive: true`.
    pub access: Option<BTreeMap<String, Vec<JobPermission>>>,
    /// Take every permission from roles not named in `access`. Default `false`.
    pub access_exclusive: Option<bool>,
}

/// `splay`: random delay in seconds.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Splay {
    /// Lower bound in seconds. Default 0.
    pub start: Option<u32>,
    /// Upper bound in seconds.
    pub end: u32,
}

/// Weekly times per day (`HH:MM`).
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Weekly {
    /// Times on Mondays (`HH:MM`).
    pub mon: Option<Vec<String>>,
    /// Times on Tuesdays (`HH:MM`).
    pub tue: Option<Vec<String>>,
    /// Times on Wednesdays (`HH:MM`).
    pub wed: Option<Vec<String>>,
    /// Times on Thursdays (`HH:MM`).
    pub thu: Option<Vec<String>>,
    /// Times on Fridays (`HH:MM`).
    pub fri: Option<Vec<String>>,
    /// Times on Saturdays (`HH:MM`).
    pub sat: Option<Vec<String>>,
    /// Times on Sundays (`HH:MM`).
    pub sun: Option<Vec<String>>,
}

/// Times of day the job runs.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct When {
    /// Every day at these times (`HH:MM`).
    pub daily: Option<Vec<String>>,
    /// On these weekdays at these times.
    pub weekly: Option<Weekly>,
}

/// When a schedule fires: an interval, a cron expression, a one-off time or times of day.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleTiming {
    /// Interval in seconds (at least 60).
    #[schemars(range(min = 60))]
    pub seconds: Option<u32>,
    /// Interval in minutes.
    pub minutes: Option<u32>,
    /// Interval in hours.
    pub hours: Option<u32>,
    /// Interval in days.
    pub days: Option<u32>,
    /// Cron expression, e.g. `0 3 * * *`.
    pub cron: Option<String>,
    /// Run once at this ISO 8601 date-time, e.g. `2026-06-25T23:00`.
    pub once: Option<String>,
    /// Times of day: `{daily: [...]}` or `{weekly: {mon: [...], ...}}`.
    pub when: Option<When>,
    /// Do not fire before this date-time.
    pub after: Option<String>,
    /// Do not fire after this date-time.
    pub until: Option<String>,
    /// IANA time zone name. Default `UTC`.
    pub timezone: Option<String>,
    /// Random delay: `{start, end}` in seconds.
    pub splay: Option<Splay>,
    /// Maximum number of concurrent runs.
    pub maxrunning: Option<u32>,
    /// Also run when the scheduler starts. Default `false`.
    pub run_on_start: Option<bool>,
}

/// An Aria Automation Config schedule running a saved job.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SaltScheduleSpec {
    /// Name of the SaltJob to run (declared in the manifests).
    #[schemars(length(min = 1))]
    pub job: String,
    /// Name of the target group: a declared SaltTarget or an existing one.
    pub target: Option<String>,
    /// When it fires.
    pub schedule: ScheduleTiming,
    /// Whether the schedule is active. Default `true`.
    pub enabled: Option<bool>,
}

/// A Cloud Director API token of the connection's user.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VcdApiTokenSpec {
    /// Where the one-time secret is written on creation, as JSON `{token_type,
    /// refresh_token, updated_on}` with mode 0600 (relative to the manifest's directory).
    /// Local only, never compared with the server.
    #[schemars(length(min = 1))]
    pub file: String,
}

/// Power state of a VM.
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema, PartialEq, Eq)]
pub enum PowerState {
    #[serde(rename = "POWERED_ON")]
    PoweredOn,
    #[serde(rename = "POWERED_OFF")]
    PoweredOff,
    #[serde(rename = "SUSPENDED")]
    Suspended,
}

/// An existing vSphere VM (sextant never creates or deletes VMs).
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VirtualMachineSpec {
    /// `POWERED_ON`, `POWERED_OFF` or `SUSPENDED`.
    pub power_state: Option<PowerState>,
    /// Number of virtual CPUs.
    #[schemars(range(min = 1))]
    pub cpu_count: Option<u32>,
    /// Memory in MiB.
    #[serde(rename = "memory_size_MiB")]
    #[schemars(range(min = 1))]
    pub memory_size_mib: Option<u64>,
    /// Allow a stop → change → start cycle when CPU or memory changes on a running or
    /// suspended VM, and say how the VM stops: `true` (or `graceful`) shuts the guest OS down
    /// through VMware Tools and waits up to `timeouts.update` for the VM to power off;
    /// `hard` powers it off at once; `graceful_or_hard` shuts the guest down, or powers off
    /// hard when VMware Tools is not running. Default `false` (the plan stops with an error
    /// instead).
    pub allow_power_cycle: Option<AllowPowerCycle>,
}

/// `allow_power_cycle`: `true`/`false`, or how to stop the VM.
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(untagged)]
pub enum AllowPowerCycle {
    /// `true`: guest shutdown; `false`: no power cycle.
    Allowed(bool),
    /// How to stop the VM.
    Stop(PowerCycleStop),
}

/// How a power cycle stops the VM.
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum PowerCycleStop {
    /// Shut the guest OS down through VMware Tools (the same as `true`).
    Graceful,
    /// Power off without asking the guest.
    Hard,
    /// Guest shutdown, or a hard power-off when VMware Tools is not running.
    GracefulOrHard,
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
}

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
