//! Validated settings: the raw clap arguments of `args.rs` turned, in one function per
//! command, into what the command runs with (addresses and kinds parsed, `--sim` checked, a
//! saved plan's own choices taken over), and colour decided once for the whole process.
//! Checks that need the manifests (is a target declared?) stay with the command.

use std::collections::BTreeSet;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use super::args::{
    ApplyArgs, DestroyArgs, DriftArgs, ExportArgs, FailOn, GlobalArgs, GraphArgs, GraphFormatArg,
    LockBackendArgs, LockReleaseArgs, LockStatusArgs, PlanArgs, PlanFormat, RaasLoginGet,
    RenderArgs, ReportFormat, SimArgs, SimServeArgs, ValidateArgs, VarArgs, VsphereFlavorArg,
};
use super::report::Hinted;
use super::workspace::is_plan_file;
use crate::drift::Finding;
use crate::manifest::{Access, DocumentAddress, GraphFormat, Overrides};
use crate::model::{Address, Kind};
use crate::plan::PlanOptions;
use crate::plan::saved::SavedPlan;
use crate::sim::{self, OwnPort, SimConfig};

/// A flag's value or combination that cannot be run, found before anything is read.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("`{flag} {text}` is not an address")]
    NotAnAddress { flag: &'static str, text: String },
    /// A connection's address: well formed, but no resource.
    #[error("`{flag} {text}` names no declared resource")]
    NotAResource { flag: &'static str, text: String },
    #[error("`--allow-destroy {0}` is not a kind")]
    NotAKind(String),
    #[error("`{flag}` must be a positive number, not {value}")]
    TimeScale { flag: &'static str, value: f64 },
    #[error("`{}` is a saved plan, and a saved plan is applied alone", .0.display())]
    SavedPlanNotAlone(PathBuf),
    #[error(
        "`{0}` cannot change a saved plan: `apply FILE` applies exactly what the plan file says; nothing was changed"
    )]
    SavedPlanFlag(String),
    #[error(
        "the saved plan was made {}; it cannot be applied to {}; nothing was changed",
        if *.saved_sim { "on the embedded simulator (`--sim`)" } else { "against the real APIs" },
        if *.saved_sim { "the real APIs" } else { "the embedded simulator (`--sim`)" }
    )]
    SavedPlanSim { saved_sim: bool },
    #[error("`{}` is not a lock key", .0.escape_debug())]
    NotALockKey(String),
    #[error("`lock release` ends another apply's session; pass `--force` to do so")]
    ReleaseWithoutForce,
    #[error("`--options` is not valid")]
    SimOptions(#[source] serde_json::Error),
    #[error(transparent)]
    SavedPlan(#[from] crate::plan::saved::SavedPlanError),
}

impl Hinted for SettingsError {
    fn hint(&self) -> Option<String> {
        Some(match self {
            Self::SavedPlan(_) => return None,
            Self::NotAnAddress { .. } => {
                "addresses look like `Kind/name`, e.g. `SaltJob/Check disk usage`".into()
            }
            Self::NotAResource { .. } => {
                "run `sextant graph` to list the declared addresses".into()
            }
            Self::NotAKind(_) => {
                "name a kind as manifests write it, e.g. `--allow-destroy Sddc`".into()
            }
            Self::TimeScale { .. } => return None,
            Self::SavedPlanNotAlone(path) => format!("run `sextant apply {}`", path.display()),
            Self::SavedPlanFlag(flag) => format!(
                "make a new plan with it: `sextant plan {flag} --out FILE`, then `sextant apply FILE`"
            ),
            Self::SavedPlanSim { saved_sim: true } => {
                "apply it with `--sim`, or make a plan without `--sim`".into()
            }
            Self::SavedPlanSim { saved_sim: false } => {
                "apply it without `--sim`, or make a plan with `--sim`".into()
            }
            Self::NotALockKey(_) => {
                "copy the key from `sextant lock status`, e.g. `raas:https://salt.example.com`"
                    .into()
            }
            Self::ReleaseWithoutForce => {
                "an apply that lost its lock starts no new action and exits 1".into()
            }
            Self::SimOptions(_) => {
                "run the simulator and `GET /_sim/options` to see every option".into()
            }
        })
    }
}

/// Whether stdout and stderr get colour: never with `--no-color` or a non-empty `NO_COLOR`
/// (no-color.org), otherwise only on a terminal. Decided once, in [`GlobalSettings::new`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Colors {
    pub stdout: bool,
    pub stderr: bool,
}

impl Colors {
    fn decide(no_color_flag: bool) -> Self {
        let no_color_env = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let allowed = !no_color_flag && !no_color_env;
        Self {
            stdout: allowed && std::io::stdout().is_terminal(),
            stderr: allowed && std::io::stderr().is_terminal(),
        }
    }
}

/// What every command shares.
#[derive(Clone, Debug)]
pub struct GlobalSettings {
    pub colors: Colors,
    pub verbose: u8,
    pub quiet: bool,
    /// The directories outside the manifest folders that manifests may use
    /// (`SEXTANT_SECRET_DIRS`, `--secret-dir`, `--token-dir`).
    pub access: Access,
}

impl GlobalSettings {
    pub fn new(args: &GlobalArgs) -> Self {
        let mut access = Access::from_env();
        access.secret_dirs.extend(args.secret_dirs.iter().cloned());
        access.token_dirs.extend(args.token_dirs.iter().cloned());
        Self {
            colors: Colors::decide(args.no_color),
            verbose: args.verbose,
            quiet: args.quiet,
            access,
        }
    }
}

/// The manifests a command reads: paths (empty: the current directory's) and the values
/// overriding their environment's.
#[derive(Clone, Debug, Default)]
pub struct Manifests {
    pub paths: Vec<PathBuf>,
    pub overrides: Overrides,
}

impl Manifests {
    fn new(paths: Vec<PathBuf>, vars: &VarArgs) -> Self {
        Self {
            paths,
            overrides: vars.overrides(),
        }
    }
}

/// `--replace`, `--max-destroy` and `--allow-destroy`, parsed.
#[derive(Clone, Debug, Default)]
pub struct DestroySettings {
    pub replace: Vec<Address>,
    pub max_destroy: Option<u32>,
    pub allow_destroy: BTreeSet<Kind>,
}

fn addresses(flag: &'static str, texts: &[String]) -> Result<Vec<Address>, SettingsError> {
    texts
        .iter()
        .map(|text| {
            DocumentAddress::parse(text)
                .ok_or_else(|| SettingsError::NotAnAddress {
                    flag,
                    text: text.clone(),
                })?
                .into_resource()
                .ok_or_else(|| SettingsError::NotAResource {
                    flag,
                    text: text.clone(),
                })
        })
        .collect()
}

fn allowed_kinds(texts: &[String]) -> Result<BTreeSet<Kind>, SettingsError> {
    texts
        .iter()
        .map(|text| Kind::parse(text).ok_or_else(|| SettingsError::NotAKind(text.clone())))
        .collect()
}

impl DestroySettings {
    fn new(args: &DestroyArgs) -> Result<Self, SettingsError> {
        Ok(Self {
            replace: addresses("--replace", &args.replace)?,
            max_destroy: args.max_destroy,
            allow_destroy: allowed_kinds(&args.allow_destroy)?,
        })
    }
}

/// The simulator's time scale with `--sim`, checked.
fn sim_time_scale(args: &SimArgs) -> Result<Option<f64>, SettingsError> {
    match args.time_scale() {
        Some(scale) if !(scale > 0.0 && scale.is_finite()) => Err(SettingsError::TimeScale {
            flag: "--sim-time-scale",
            value: scale,
        }),
        scale => Ok(scale),
    }
}

/// `sextant plan`.
#[derive(Debug)]
pub struct PlanSettings {
    pub manifests: Manifests,
    pub targets: Vec<Address>,
    pub sim: Option<f64>,
    pub format: PlanFormat,
    pub out: Option<PathBuf>,
    pub detailed_exitcode: bool,
    pub parallelism: usize,
    pub options: PlanOptions,
    pub destroy: DestroySettings,
    pub warn_expiry: Duration,
}

impl PlanSettings {
    pub fn new(args: PlanArgs) -> Result<Self, SettingsError> {
        Ok(Self {
            targets: addresses("--target", &args.targets)?,
            sim: sim_time_scale(&args.sim)?,
            destroy: DestroySettings::new(&args.destroy)?,
            manifests: Manifests::new(args.paths, &args.vars),
            format: args.format,
            out: args.out,
            detailed_exitcode: args.detailed_exitcode,
            parallelism: usize::from(args.parallelism),
            options: PlanOptions {
                recreate_lost_secrets: args.recreate_lost_secrets,
            },
            warn_expiry: args.expiry.warn_expiry,
        })
    }
}

/// `sextant apply`: of the manifests, or of a saved plan (whose own paths, targets,
/// variables and destroy choices are taken).
#[derive(Debug)]
pub struct ApplySettings {
    pub saved: Option<SavedPlan>,
    pub manifests: Manifests,
    pub targets: Vec<Address>,
    pub sim: Option<f64>,
    pub auto_approve: bool,
    pub parallelism: usize,
    pub json: bool,
    pub options: PlanOptions,
    pub destroy: DestroySettings,
    pub lock: LockBackendArgs,
    pub lock_timeout: Option<Duration>,
    pub warn_expiry: Duration,
}

impl ApplySettings {
    pub fn new(args: ApplyArgs) -> Result<Self, SettingsError> {
        let saved = match args.paths.as_slice() {
            [single] if is_plan_file(single) => SavedPlan::load(single)?,
            paths => {
                if let Some(plan) = paths.iter().find(|p| is_plan_file(p)) {
                    return Err(SettingsError::SavedPlanNotAlone(plan.clone()));
                }
                None
            }
        };
        let sim = sim_time_scale(&args.sim)?;
        let Some(saved) = saved else {
            return Ok(Self {
                targets: addresses("--target", &args.targets)?,
                destroy: DestroySettings::new(&args.destroy)?,
                manifests: Manifests::new(args.paths, &args.vars),
                options: PlanOptions {
                    recreate_lost_secrets: args.recreate_lost_secrets,
                },
                saved: None,
                sim,
                auto_approve: args.auto_approve,
                parallelism: usize::from(args.parallelism),
                json: args.json,
                lock: args.lock,
                lock_timeout: args.lock_timeout,
                warn_expiry: args.expiry.warn_expiry,
            });
        };
        refuse_changes_to_saved_plan(&args, &saved)?;
        Ok(Self {
            targets: addresses("--target", &saved.targets)?,
            destroy: DestroySettings {
                replace: addresses("--replace", &saved.replace)?,
                max_destroy: saved.max_destroy,
                allow_destroy: allowed_kinds(&args.destroy.allow_destroy)?,
            },
            manifests: Manifests {
                paths: saved.paths.clone(),
                overrides: saved.overrides(),
            },
            options: PlanOptions {
                recreate_lost_secrets: saved.recreate_lost_secrets,
            },
            saved: Some(saved),
            sim,
            auto_approve: args.auto_approve,
            parallelism: usize::from(args.parallelism),
            json: args.json,
            lock: args.lock,
            lock_timeout: args.lock_timeout,
            warn_expiry: args.expiry.warn_expiry,
        })
    }
}

/// `apply FILE` carries out exactly the saved plan: a flag that would change what is applied
/// is refused rather than ignored (ignoring `--target` would apply everything).
fn refuse_changes_to_saved_plan(args: &ApplyArgs, saved: &SavedPlan) -> Result<(), SettingsError> {
    let replan = SettingsError::SavedPlanFlag;
    if let Some(target) = args.targets.first() {
        return Err(replan(format!("--target {target}")));
    }
    if let Some((name, _)) = args.vars.vars.first() {
        return Err(replan(format!("--var {name}=…")));
    }
    if let Some(file) = args.vars.var_files.first() {
        return Err(replan(format!("--var-file {}", file.display())));
    }
    if let Some(address) = args.destroy.replace.first() {
        return Err(replan(format!("--replace {address}")));
    }
    if let Some(max) = args.destroy.max_destroy {
        return Err(replan(format!("--max-destroy {max}")));
    }
    if args.recreate_lost_secrets && !saved.recreate_lost_secrets {
        return Err(replan("--recreate-lost-secrets".into()));
    }
    if args.sim.sim != saved.sim {
        return Err(SettingsError::SavedPlanSim {
            saved_sim: saved.sim,
        });
    }
    Ok(())
}

/// `sextant drift`.
#[derive(Debug)]
pub struct DriftSettings {
    pub manifests: Manifests,
    pub baseline: Option<String>,
    pub sim: Option<f64>,
    pub format: ReportFormat,
    pub out: Option<PathBuf>,
    pub fail_on: Vec<Finding>,
    pub parallelism: usize,
    pub warn_expiry: Duration,
}

impl DriftSettings {
    pub fn new(args: DriftArgs) -> Result<Self, SettingsError> {
        Ok(Self {
            sim: sim_time_scale(&args.sim)?,
            manifests: Manifests::new(args.paths, &args.vars),
            baseline: args.baseline,
            format: args.format,
            out: args.out,
            fail_on: args
                .fail_on
                .iter()
                .map(|f| match f {
                    FailOn::Drift => Finding::Drift,
                    FailOn::Pending => Finding::Pending,
                    FailOn::Unmanaged => Finding::Unmanaged,
                })
                .collect(),
            parallelism: usize::from(args.parallelism),
            warn_expiry: args.expiry.warn_expiry,
        })
    }
}

/// `sextant export`.
#[derive(Debug)]
pub struct ExportSettings {
    pub manifests: Manifests,
    pub sim: Option<f64>,
    pub connection: String,
    /// The kinds asked for (`--kind`, each once, in the order given); empty: every kind of
    /// the connection's system.
    pub kinds: Vec<Kind>,
    pub out: Option<PathBuf>,
    pub skip_declared: Vec<PathBuf>,
    pub names: Vec<String>,
}

impl ExportSettings {
    pub fn new(args: ExportArgs) -> Result<Self, SettingsError> {
        // clap accepts only resource kind names.
        let mut kinds: Vec<Kind> = Vec::new();
        for kind in args.kinds.iter().filter_map(|k| Kind::parse(k)) {
            if !kinds.contains(&kind) {
                kinds.push(kind);
            }
        }
        Ok(Self {
            sim: sim_time_scale(&args.sim)?,
            manifests: Manifests::new(args.paths, &args.vars),
            connection: args.connection,
            kinds,
            out: args.out,
            skip_declared: args.skip_declared,
            names: args.names,
        })
    }
}

/// `sextant validate`.
pub fn validate_manifests(args: ValidateArgs) -> Manifests {
    Manifests::new(args.paths, &args.vars)
}

/// `sextant graph`.
#[derive(Debug)]
pub struct GraphSettings {
    pub manifests: Manifests,
    pub format: GraphFormat,
}

impl GraphSettings {
    pub fn new(args: GraphArgs) -> Self {
        Self {
            manifests: Manifests::new(args.paths, &args.vars),
            format: match args.format {
                GraphFormatArg::Dot => GraphFormat::Dot,
                GraphFormatArg::Mermaid => GraphFormat::Mermaid,
            },
        }
    }
}

/// `sextant render`.
#[derive(Debug)]
pub struct RenderSettings {
    pub manifests: Manifests,
    pub check: Option<PathBuf>,
}

impl RenderSettings {
    pub fn new(args: RenderArgs) -> Self {
        Self {
            manifests: Manifests::new(args.paths, &args.vars),
            check: args.check,
        }
    }
}

/// `sextant lock status`.
#[derive(Debug)]
pub struct LockStatusSettings {
    pub backend: LockBackendArgs,
    pub paths: Vec<PathBuf>,
}

impl LockStatusSettings {
    pub fn new(args: LockStatusArgs) -> Self {
        Self {
            backend: args.backend,
            paths: args.paths,
        }
    }
}

/// `sextant lock release`: a key that parses, and `--force`.
#[derive(Debug)]
pub struct LockReleaseSettings {
    pub key: String,
    pub yes: bool,
    pub backend: LockBackendArgs,
    pub paths: Vec<PathBuf>,
}

impl LockReleaseSettings {
    pub fn new(args: LockReleaseArgs) -> Result<Self, SettingsError> {
        if crate::apply::lock::EstateKey::parse(&args.key).is_none() {
            return Err(SettingsError::NotALockKey(args.key));
        }
        if !args.force {
            return Err(SettingsError::ReleaseWithoutForce);
        }
        Ok(Self {
            key: args.key,
            yes: args.yes,
            backend: args.backend,
            paths: args.paths,
        })
    }
}

/// `sextant sim serve`: the simulator's configuration.
pub fn sim_serve_config(args: SimServeArgs) -> Result<SimConfig, SettingsError> {
    if !(args.time_scale > 0.0 && args.time_scale.is_finite()) {
        return Err(SettingsError::TimeScale {
            flag: "--time-scale",
            value: args.time_scale,
        });
    }
    let mut config = SimConfig {
        listen: args.listen,
        time_scale: args.time_scale,
        token_ttl: Duration::from_secs(args.token_ttl.max(1)),
        seed: args.seed,
        state_file: args.state,
        seed_data: args.seed_data,
        credentials_file: args.credentials,
        own_ports: [
            (OwnPort::Vcd, args.listen_vcd),
            (OwnPort::Vsphere, args.listen_vsphere),
        ]
        .into_iter()
        .filter_map(|(system, addr)| Some((system, addr?)))
        .collect(),
        ..SimConfig::default()
    };
    config.faults.latency_ms = args.latency_ms;
    if let Some(options) = &args.options {
        config.options = serde_json::from_str(options).map_err(SettingsError::SimOptions)?;
    }
    if let Some(mode) = args.raas_login_get {
        config.options.raas_login_get = match mode {
            RaasLoginGet::Serve => sim::raas::LoginGet::Serve,
            RaasLoginGet::Refuse => sim::raas::LoginGet::Refuse,
        };
    }
    if let Some(flavor) = args.vsphere_flavor {
        config.options.vsphere_flavors = match flavor {
            VsphereFlavorArg::Both => sim::vsphere::ServedFlavors::Both,
            VsphereFlavorArg::Api => sim::vsphere::ServedFlavors::Api,
            VsphereFlavorArg::Rest => sim::vsphere::ServedFlavors::Rest,
        };
    }
    Ok(config)
}
