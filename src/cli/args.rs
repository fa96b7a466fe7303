//! Raw command-line arguments (clap), as typed: nothing here is checked beyond what clap
//! parses. `settings.rs` turns them into each command's validated settings.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Keeps VMware cloud estates in line with YAML manifests kept in Git.
#[derive(Debug, Parser)]
#[command(name = "sextant", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags accepted before or after the subcommand.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// More logging on stderr (-v info, -vv debug, -vvv trace). Secrets are never logged.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Only errors on stderr.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Never use colour (also when NO_COLOR is set).
    #[arg(long, global = true)]
    pub no_color: bool,
    /// Also read `{file: …}` secrets from DIR (repeatable; adds to SEXTANT_SECRET_DIRS).
    /// Outside the manifest folders, secrets are read only from such directories.
    #[arg(long = "secret-dir", value_name = "DIR", global = true)]
    pub secret_dirs: Vec<PathBuf>,
    /// Also let `VcdApiToken` files be written under DIR (repeatable); by default they stay
    /// inside the manifest folders.
    #[arg(long = "token-dir", value_name = "DIR", global = true)]
    pub token_dirs: Vec<PathBuf>,
}

/// `--sim` and its time scale: only on the commands that contact the APIs.
#[derive(Debug, Clone, Args)]
pub struct SimArgs {
    /// Run against the embedded simulator (state kept in .sextant/sim-state.json).
    #[arg(long)]
    pub sim: bool,
    /// With --sim: simulated seconds per real second (240: a 2-hour SDDC create takes 30 s).
    #[arg(long, default_value_t = 240.0, value_name = "N", requires = "sim")]
    pub sim_time_scale: f64,
}

impl SimArgs {
    /// The simulator's time scale when `--sim` is given.
    pub fn time_scale(&self) -> Option<f64> {
        self.sim.then_some(self.sim_time_scale)
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show what apply would change: read live state, diff it against the manifests.
    ///
    /// Examples:
    ///   sextant plan --sim examples/quickstart
    ///   sextant plan envs/prod --format markdown --out prod.plan --detailed-exitcode
    #[command(verbatim_doc_comment)]
    Plan(PlanArgs),
    /// Tell drift (changed outside sextant) from pending changes and unmanaged objects.
    ///
    /// Reads the live state as `plan` does (the same listings) and reports: `drifted`,
    /// declared objects whose live state differs from the manifests at the baseline commit
    /// (the last applied one); `pending`, what the manifests changed since the baseline
    /// (merged, not applied yet; no API call); `unmanaged`, live objects of the scanned kinds
    /// that no manifest declares (see `unmanaged` on Connection). Exit 0 when nothing counted
    /// by --fail-on was found, 2 when something was, 1 on error.
    ///
    /// Examples:
    ///   sextant drift --baseline sextant/applied/prod envs/prod
    ///   sextant drift --baseline origin/main~3 --format junit --out drift.json envs/prod > drift.xml
    #[command(verbatim_doc_comment)]
    Drift(DriftArgs),
    /// Render a saved plan (`plan --out`) or drift report (`drift --out`) again.
    ///
    /// No API call and no credentials: CI computes once and renders the comment, the job
    /// summary and the artifact from the same file.
    ///
    /// Examples:
    ///   sextant show prod.plan --format markdown > comment.md
    ///   sextant show drift.json --format junit > drift.xml
    #[command(verbatim_doc_comment)]
    Show(ShowArgs),
    /// Carry out the plan: create, update and delete in dependency order, polling tasks.
    ///
    /// Examples:
    ///   sextant apply --sim --auto-approve examples/quickstart
    ///   sextant apply prod.plan
    #[command(verbatim_doc_comment)]
    Apply(ApplyArgs),
    /// Check manifests without touching any API (no credentials needed).
    ///
    /// Reports every problem at once, each as `file:line:column`. Exits 1 on any error.
    ///
    /// Example: sextant validate examples/quickstart
    Validate(ValidateArgs),
    /// Print the dependency graph of the manifests (Graphviz dot or Mermaid).
    ///
    /// Example: sextant graph examples/quickstart | dot -Tsvg > graph.svg
    Graph(GraphArgs),
    /// Print an environment's final documents as YAML, or check a committed copy.
    ///
    /// The documents after includes, `${var.NAME}` substitution and patches, sorted by
    /// address with fields in a fixed order and secrets as their `{env}`/`{file}`
    /// references: the same bytes whenever the documents are the same. Commit the output
    /// per environment, and a pull request's diff shows what a change does to each one,
    /// without credentials. With --check FILE, exit 1 and print a unified diff when FILE is
    /// not what render prints.
    ///
    /// Examples:
    ///   sextant render envs/prod > rendered/prod.yaml
    ///   sextant render --check rendered/prod.yaml envs/prod
    #[command(verbatim_doc_comment)]
    Render(RenderArgs),
    /// Print the JSON Schema of a manifest document (or, with --plan, of `plan --format json`).
    ///
    /// Example: sextant schema > schemas/manifest.schema.json
    Schema(SchemaArgs),
    /// Write the live objects of one connection as manifests, to adopt an existing estate.
    ///
    /// Lists every object of each kind the connection's system manages (or only --kind),
    /// leaves out deleted ones, and writes one file per kind (`sddc.yaml`, `salt-job.yaml`,
    /// ...) with documents sorted by name. Only fields a manifest can set are written; secrets
    /// never are. Without --out the documents go to stdout. A plan over the exported files
    /// and the connection's manifest shows `No changes.`
    ///
    /// Examples:
    ///   sextant export --sim --connection salt-cloud --out adopted examples/quickstart
    ///   sextant export --connection vcenter --kind VirtualMachine connections/ > vms.yaml
    #[command(verbatim_doc_comment)]
    Export(ExportArgs),
    /// Print a shell completion script (bash, zsh or fish) on stdout.
    ///
    /// Examples:
    ///   sextant completions bash > /etc/bash_completion.d/sextant
    ///   sextant completions zsh > "${fpath[1]}/_sextant"
    ///   sextant completions fish > ~/.config/fish/completions/sextant.fish
    #[command(verbatim_doc_comment)]
    Completions(CompletionsArgs),
    /// Print the man page (roff) of sextant and its commands on stdout.
    ///
    /// Example:
    ///   sextant man > /usr/local/share/man/man1/sextant.1 && man sextant
    #[command(verbatim_doc_comment)]
    Man,
    /// Show or end the locks applies take (one per estate: connection URL and org).
    ///
    /// Examples:
    ///   sextant lock status --lock "$SEXTANT_LOCK_URL"
    ///   sextant lock release 'raas:https://salt.example.com' --force
    #[command(subcommand, verbatim_doc_comment)]
    Lock(LockCommand),
    /// Run the simulator of the vendor APIs.
    ///
    /// Example: sextant sim serve --listen 127.0.0.1:8080 --state sim.json
    #[command(subcommand)]
    Sim(SimCommand),
}

#[derive(Debug, Subcommand)]
pub enum LockCommand {
    /// List the locks held now and who holds them (host, pid, user, since, CI run).
    ///
    /// Example: sextant lock status --lock "$SEXTANT_LOCK_URL"
    Status(LockStatusArgs),
    /// End the session of a stuck holder so its lock goes (PostgreSQL: pg_terminate_backend).
    ///
    /// The holder's apply loses its lock, starts no new action and exits 1. Asks for
    /// confirmation unless --yes is given.
    ///
    /// Example: sextant lock release 'raas:https://salt.example.com' --force
    Release(LockReleaseArgs),
}

/// Where locks are kept.
#[derive(Debug, Clone, Args)]
pub struct LockBackendArgs {
    /// Where applies take their locks: a PostgreSQL URL (`postgres://…`, advisory locks
    /// shared by every runner) or `file` (per-user lock files on this machine). Overrides the
    /// manifests' `kind: Lock` document; without either, lock files are used.
    #[arg(
        long,
        env = "SEXTANT_LOCK_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub lock: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct LockStatusArgs {
    #[command(flatten)]
    pub backend: LockBackendArgs,
    /// Manifests whose `kind: Lock` document names the backend (read when `--lock` is not
    /// given).
    pub paths: Vec<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct LockReleaseArgs {
    /// The lock's key as `lock status` prints it, e.g. `raas:https://salt.example.com`.
    pub key: String,
    /// Required: ending another apply's session is never done by accident.
    #[arg(long)]
    pub force: bool,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub yes: bool,
    #[command(flatten)]
    pub backend: LockBackendArgs,
    /// Manifests whose `kind: Lock` document names the backend (read when `--lock` is not
    /// given).
    pub paths: Vec<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum SimCommand {
    /// Serve every simulated API on one port until SIGINT or SIGTERM.
    ///
    /// Example: sextant sim serve --listen 127.0.0.1:8080 --state sim.json
    Serve(SimServeArgs),
}

#[derive(Debug, Clone, Args)]
pub struct SimServeArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// Also serve Cloud Director alone on this address, as a real one is a host of its own
    /// (pyvcloud needs it: its `/api/session` is vSphere's on the shared address).
    #[arg(long, value_name = "ADDR")]
    pub listen_vcd: Option<SocketAddr>,
    /// Also serve vSphere alone on this address.
    #[arg(long, value_name = "ADDR")]
    pub listen_vsphere: Option<SocketAddr>,
    /// Keep state in this file across restarts (saved atomically after each change).
    #[arg(long)]
    pub state: Option<PathBuf>,
    /// Simulated seconds per real second (240: a 2-hour SDDC create takes 30 s).
    #[arg(long, default_value_t = 240.0)]
    pub time_scale: f64,
    /// Preload objects from this YAML or JSON file (sections `csp`, `vmc`, `vsphere`, `raas`,
    /// `vcd`; each section present replaces that API's default estate). Ignored when the
    /// `--state` file already exists.
    #[arg(long)]
    pub seed_data: Option<PathBuf>,
    /// Accept only the credentials (API tokens, usernames, passwords) listed in this file, one
    /// per line; blank lines and lines starting with `#` are ignored.
    #[arg(long)]
    pub credentials: Option<PathBuf>,
    /// Seed for injected faults.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Lifetime of access tokens in simulated seconds.
    #[arg(long, default_value_t = 1800)]
    pub token_ttl: u64,
    /// Latency added to every request, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Answers to the points the API documents leave unverified, as JSON, e.g.
    /// '{"vmc_concurrent_update_status": 409}' (see `GET /_sim/options` for every name).
    #[arg(long, value_name = "JSON")]
    pub options: Option<String>,
    /// How RaaS answers `GET /account/login`: `serve` hands out the XSRF token, `refuse`
    /// answers 401 (only the login POST works). Overrides `raas_login_get` in `--options`.
    #[arg(long, value_enum, value_name = "MODE")]
    pub raas_login_get: Option<RaasLoginGet>,
    /// Which vSphere REST flavours to serve: `both`, `api` (as vSphere once `/rest` is
    /// removed) or `rest` (as vSphere before 7.0 U2); the other answers 404. Overrides
    /// `vsphere_flavors` in `--options`.
    #[arg(long, value_enum, value_name = "FLAVOR")]
    pub vsphere_flavor: Option<VsphereFlavorArg>,
}

/// `sim serve --raas-login-get`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RaasLoginGet {
    /// Hand out the XSRF token (the default).
    Serve,
    /// Answer 401.
    Refuse,
}

/// `sim serve --vsphere-flavor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum VsphereFlavorArg {
    Both,
    Api,
    Rest,
}

/// Output format of `plan`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PlanFormat {
    Text,
    Json,
    Markdown,
}

/// `--var` and `--var-file`: values that override an environment's.
#[derive(Debug, Clone, Default, Args)]
pub struct VarArgs {
    /// Override the environment's value of `${var.NAME}` (repeatable; VALUE is read as YAML:
    /// `6` is an integer, '"6"' a string).
    #[arg(long = "var", value_name = "NAME=VALUE", value_parser = parse_var)]
    pub vars: Vec<(String, String)>,
    /// Override values from a YAML file of `NAME: value` lines (repeatable; applied after
    /// every --var, later files win).
    #[arg(long = "var-file", value_name = "FILE")]
    pub var_files: Vec<PathBuf>,
}

impl VarArgs {
    pub fn overrides(&self) -> crate::manifest::Overrides {
        crate::manifest::Overrides {
            vars: self.vars.clone(),
            var_files: self.var_files.clone(),
        }
    }
}

fn parse_var(text: &str) -> Result<(String, String), String> {
    let (name, value) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}` is not NAME=VALUE"))?;
    let valid = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !valid {
        return Err(format!(
            "`{name}` is not a variable name (letters, digits, `_` and `-`)"
        ));
    }
    Ok((name.to_string(), value.to_string()))
}

#[derive(Debug, Clone, Args)]
pub struct PlanArgs {
    /// Manifest files or directories, read recursively (default: the current directory's
    /// own YAML files that declare a sextant `kind`).
    pub paths: Vec<PathBuf>,
    #[command(flatten)]
    pub sim: SimArgs,
    #[command(flatten)]
    pub vars: VarArgs,
    /// How to print the plan on stdout.
    #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
    pub format: PlanFormat,
    /// Also save the plan to this file, for `sextant apply FILE`.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Exit 2 when there are changes (0 none, 1 error).
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Plan only this resource and what it depends on (repeatable).
    #[arg(long = "target", value_name = "ADDR")]
    pub targets: Vec<String>,
    /// Listings in flight at once.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..))]
    pub parallelism: u16,
    /// Revoke and re-create VCD tokens whose secret file is missing (instead of warning).
    #[arg(long)]
    pub recreate_lost_secrets: bool,
    #[command(flatten)]
    pub destroy: DestroyArgs,
    #[command(flatten)]
    pub expiry: WarnExpiryArgs,
}

/// What a plan may destroy: `--replace`, `--max-destroy`, `--allow-destroy`.
#[derive(Debug, Clone, Default, Args)]
pub struct DestroyArgs {
    /// Replace this resource (destroy it and create it again) even when nothing changed
    /// (repeatable); `lifecycle.prevent_destroy` still refuses.
    #[arg(long = "replace", value_name = "ADDR")]
    pub replace: Vec<String>,
    /// Refuse a plan that destroys more than N objects (deletes, replacements and pruned
    /// objects together). Default: the Connections' `max_destroy`, else 10.
    #[arg(long, value_name = "N")]
    pub max_destroy: Option<u32>,
    /// Allow destroying objects of this kind where sextant asks for confirmation: pruning
    /// an `Sddc` needs `--allow-destroy Sddc` (repeatable).
    #[arg(long = "allow-destroy", value_name = "KIND")]
    pub allow_destroy: Vec<String>,
}

/// `--warn-expiry`: how early credentials that expire are reported.
#[derive(Debug, Clone, Args)]
pub struct WarnExpiryArgs {
    /// Warn when a credential in use expires within this window (a CSP API token's expiry,
    /// a VCD token file's `max_age`), e.g. `30d`; `0s` turns the check off.
    #[arg(long = "warn-expiry", value_name = "DURATION", value_parser = humantime::parse_duration, default_value = "30d")]
    pub warn_expiry: std::time::Duration,
}

/// Output format of `drift` and `show`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    Text,
    Json,
    Markdown,
    /// JUnit XML (drift reports only).
    Junit,
}

/// What `drift --fail-on` may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FailOn {
    /// Declared objects changed outside sextant.
    #[value(alias = "drifted")]
    Drift,
    /// Manifest changes since the baseline, not applied yet.
    Pending,
    /// Live objects no manifest declares.
    Unmanaged,
}

#[derive(Debug, Clone, Args)]
pub struct DriftArgs {
    /// Manifest files or directories, read recursively (default: the current directory's
    /// own YAML files that declare a sextant `kind`).
    pub paths: Vec<PathBuf>,
    /// The Git revision holding the manifests last applied (a tag such as
    /// `sextant/applied/prod`, a commit, `origin/main~3`), in the repository of PATHS.
    /// Without it, every difference is reported as drifted.
    #[arg(long, value_name = "REF")]
    pub baseline: Option<String>,
    #[command(flatten)]
    pub sim: SimArgs,
    #[command(flatten)]
    pub vars: VarArgs,
    /// How to print the report on stdout.
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub format: ReportFormat,
    /// Also save the report to this file, for `sextant show`.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// What makes the exit code 2 (comma-separated).
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [FailOn::Drift, FailOn::Unmanaged])]
    pub fail_on: Vec<FailOn>,
    /// Listings in flight at once.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..))]
    pub parallelism: u16,
    #[command(flatten)]
    pub expiry: WarnExpiryArgs,
}

#[derive(Debug, Clone, Args)]
pub struct ShowArgs {
    /// A plan file saved by `plan --out`, or a report saved by `drift --out`.
    pub file: PathBuf,
    /// How to print it (`junit` only for drift reports).
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub format: ReportFormat,
}

#[derive(Debug, Clone, Args)]
pub struct ApplyArgs {
    /// Manifest files or directories, or one plan file saved by `plan --out`.
    pub paths: Vec<PathBuf>,
    #[command(flatten)]
    pub sim: SimArgs,
    #[command(flatten)]
    pub vars: VarArgs,
    /// Apply without asking for confirmation.
    #[arg(long)]
    pub auto_approve: bool,
    /// Actions in flight at once (tasks being polled do not count).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..))]
    pub parallelism: u16,
    /// Apply only this resource and what it depends on (repeatable).
    #[arg(long = "target", value_name = "ADDR")]
    pub targets: Vec<String>,
    /// Print progress as one JSON event per line on stdout.
    #[arg(long)]
    pub json: bool,
    /// Revoke and re-create VCD tokens whose secret file is missing (instead of warning).
    #[arg(long)]
    pub recreate_lost_secrets: bool,
    #[command(flatten)]
    pub destroy: DestroyArgs,
    #[command(flatten)]
    pub lock: LockBackendArgs,
    /// How long to wait for a lock another apply holds, e.g. `10m` (progress on stderr names
    /// the holder); 0 fails at once, naming the holder. Default: the `kind: Lock` document's
    /// `timeout`, else 0.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub lock_timeout: Option<std::time::Duration>,
    #[command(flatten)]
    pub expiry: WarnExpiryArgs,
}

#[derive(Debug, Clone, Args)]
pub struct ValidateArgs {
    /// Manifest files or directories, read recursively (default: the current directory's
    /// own YAML files that declare a sextant `kind`); each environment among them is
    /// checked on its own.
    pub paths: Vec<PathBuf>,
    #[command(flatten)]
    pub vars: VarArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GraphFormatArg {
    /// Graphviz dot (`dot -Tsvg`).
    Dot,
    /// Mermaid flowchart (renders in GitHub Markdown).
    Mermaid,
}

#[derive(Debug, Clone, Args)]
pub struct GraphArgs {
    /// Manifest files or directories, read recursively (default: the current directory's
    /// own YAML files that declare a sextant `kind`).
    pub paths: Vec<PathBuf>,
    #[command(flatten)]
    pub vars: VarArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = GraphFormatArg::Dot)]
    pub format: GraphFormatArg,
}

#[derive(Debug, Clone, Args)]
pub struct RenderArgs {
    /// The environment's directory or files (default: the current directory's own YAML files
    /// that declare a sextant `kind`).
    pub paths: Vec<PathBuf>,
    #[command(flatten)]
    pub vars: VarArgs,
    /// Compare with FILE instead of printing: exit 1 with a unified diff when it differs.
    #[arg(long, value_name = "FILE")]
    pub check: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct ExportArgs {
    /// Manifest files or directories that declare the connection (default: the current
    /// directory's manifests).
    pub paths: Vec<PathBuf>,
    #[command(flatten)]
    pub sim: SimArgs,
    #[command(flatten)]
    pub vars: VarArgs,
    /// The connection whose live objects to export.
    #[arg(long, value_name = "NAME")]
    pub connection: String,
    /// Export only this kind (repeatable; default: every kind of the connection's system).
    #[arg(long = "kind", value_name = "KIND",
          value_parser = clap::builder::PossibleValuesParser::new(crate::model::Kind::NAMES))]
    pub kinds: Vec<String>,
    /// Write one file per kind into this directory (created if missing; files of the
    /// exported kinds are replaced, and removed when the kind has no objects) instead of
    /// printing to stdout.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Leave out the objects these manifest files or directories already declare on the
    /// connection, e.g. every environment's directory (repeatable; files under --out are not
    /// counted, so exporting again refreshes them).
    #[arg(long = "skip-declared", value_name = "PATH")]
    pub skip_declared: Vec<PathBuf>,
    /// Export only objects whose name matches this pattern (`*` any characters, `?` one;
    /// repeatable: any pattern may match).
    #[arg(long = "name", value_name = "PATTERN")]
    pub names: Vec<String>,
}

/// Shells `completions` writes scripts for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

#[derive(Debug, Clone, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: Shell,
}

#[derive(Debug, Clone, Args)]
pub struct SchemaArgs {
    /// Print the schema of the JSON plan instead of the manifest schema.
    #[arg(long, conflicts_with = "drift")]
    pub plan: bool,
    /// Print the schema of the JSON drift report instead of the manifest schema.
    #[arg(long)]
    pub drift: bool,
}
