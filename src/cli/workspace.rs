//! What `plan` and `apply` share: loading the manifests, pointing connections at the
//! embedded simulator with `--sim`, checking targets, and creating the providers.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::report::Hinted;
use super::settings::{DestroySettings, GlobalSettings, Manifests};
use super::{Failure, Reporter};
use crate::apply::lock::EstateKey;
use crate::manifest::{Diagnostics, EnvironmentInfo, Overrides, Unit};
use crate::model::{Address, Connection, Kind, Model, SecretSource, SecretValue, SystemType};
use crate::plan::saved::ManifestDigest;
use crate::plan::{self, LiveState, Plan, ProviderSet};
use crate::sim::{SimConfig, SimHandle};

/// Where `--sim` keeps the simulator's state, relative to the working directory.
pub const SIM_STATE_FILE: &str = ".sextant/sim-state.json";

/// Loaded manifests, the providers they need and (with `--sim`) the running simulator.
pub struct Workspace {
    pub model: Model,
    pub scope: BTreeSet<Address>,
    pub targets: Vec<Address>,
    pub providers: ProviderSet,
    /// Names of the connections the command uses.
    pub in_use: BTreeSet<String>,
    /// The manifests as written (before `--sim` rewrites the connections), for saved plans.
    pub digest: ManifestDigest,
    /// The estate each connection manages, by connection name, as the manifests name it
    /// (before `--sim` points the connections elsewhere): what apply locks.
    pub estates: std::collections::BTreeMap<String, EstateKey>,
    /// Kept alive for the duration of the command.
    pub sim: Option<SimHandle>,
    /// Listings read whole for pruning (empty when no Connection prunes, or with `--target`).
    pub scan: BTreeSet<(String, Kind)>,
    /// Pruning, `--replace` and the destroy guards, for every plan the command makes.
    pub extras: plan::PlanExtras,
}

/// Loads and validates a run found with [`manifest_unit`], its warnings reported.
pub fn load_unit(unit: Unit, reporter: &Reporter) -> Result<Model, Failure> {
    let model = unit.load().map_err(|d| manifest_failure(&d, reporter))?;
    for warning in &model.warnings {
        reporter.warning(warning);
    }
    Ok(model)
}

/// The run of `paths` (or of the current directory's manifests): fails when they hold
/// several environments, or when variables are given and they hold none.
pub fn manifest_unit(
    manifests: &Manifests,
    global: &GlobalSettings,
    reporter: &Reporter,
) -> Result<Unit, Failure> {
    let paths = manifest_paths(&manifests.paths, reporter)?;
    let unit = crate::manifest::unit(&paths, &manifests.overrides, &global.access)
        .map_err(|d| manifest_failure(&d, reporter))?;
    check_overrides(unit.environment.as_ref(), &manifests.overrides)?;
    if let Some(environment) = &unit.environment {
        tracing::info!(
            environment = %environment.name,
            file = %environment.file.display(),
            "loading an environment"
        );
    }
    Ok(unit)
}

/// `--var` and `--var-file` need an environment to override.
pub fn check_overrides(
    environment: Option<&EnvironmentInfo>,
    overrides: &Overrides,
) -> Result<(), Failure> {
    if environment.is_none() && !overrides.is_empty() {
        return Err(Failure::new(
            "`--var` and `--var-file` override an environment's values, but no environment is loaded",
        )
        .with_hint("give the directory of a `kind: Environment` document"));
    }
    Ok(())
}

/// Prints the diagnostics and returns the failure that ends the command.
pub fn manifest_failure(diagnostics: &Diagnostics, reporter: &Reporter) -> Failure {
    reporter.diagnostics(diagnostics);
    let count = diagnostics.len();
    Failure::new(format!(
        "{count} error{} in the manifests; nothing was changed",
        if count == 1 { "" } else { "s" }
    ))
}

/// The paths to read: those given, or without any, the current directory's own YAML files
/// that declare a sextant `kind` (saying which were read and which were skipped).
pub fn manifest_paths(paths: &[PathBuf], reporter: &Reporter) -> Result<Vec<PathBuf>, Failure> {
    if !paths.is_empty() {
        return Ok(paths.to_vec());
    }
    let found = crate::manifest::default_manifests(Path::new("."))
        .map_err(|err| Failure::with_source("cannot read the current directory", err))?;
    let list = |files: &[PathBuf]| {
        files
            .iter()
            .map(|f| format!("`{}`", f.display()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    if !found.skipped.is_empty() {
        reporter.note(&format!(
            "Skipped {} YAML file{} without a sextant `kind`: {}.",
            found.skipped.len(),
            plural(found.skipped.len()),
            list(&found.skipped)
        ));
    }
    if found.files.is_empty() {
        return Err(Failure::new(
            "no manifests in the current directory: none of its `*.yaml`/`*.yml` files declares a sextant `kind`",
        )
        .with_hint(
            "pass the files or directories that hold the manifests, e.g. `sextant plan connections envs/prod` (directories given are read recursively)",
        ));
    }
    reporter.note(&format!(
        "Reading {} manifest file{} of the current directory (no PATHS given; subdirectories are read only when named): {}.",
        found.files.len(),
        plural(found.files.len()),
        list(&found.files)
    ));
    Ok(found.files)
}

impl Workspace {
    pub async fn open(
        manifests: &Manifests,
        targets: &[Address],
        sim: Option<f64>,
        global: &GlobalSettings,
        reporter: &Reporter,
    ) -> Result<Self, Failure> {
        Self::open_with(manifests, targets, sim, None, global, reporter).await
    }

    /// [`Workspace::open`] for one connection only (export): the scope is that connection's
    /// resources, and only its credentials are needed.
    pub async fn open_with(
        manifests: &Manifests,
        targets: &[Address],
        sim: Option<f64>,
        only: Option<&str>,
        global: &GlobalSettings,
        reporter: &Reporter,
    ) -> Result<Self, Failure> {
        let unit = manifest_unit(manifests, global, reporter)?;
        Self::open_unit(unit, targets, sim, only, reporter).await
    }

    /// [`Workspace::open_with`] of a run already found with [`manifest_unit`].
    pub async fn open_unit(
        unit: Unit,
        targets: &[Address],
        sim: Option<f64>,
        only: Option<&str>,
        reporter: &Reporter,
    ) -> Result<Self, Failure> {
        let mut model = load_unit(unit, reporter)?;
        let targets = declared_targets(&model, targets)?;
        let mut scope = plan::scope(&model, &targets);
        if let Some(only) = only {
            scope.retain(|a| model.resources.get(a).is_some_and(|r| r.connection == only));
        }
        let digest = ManifestDigest::of(&model);
        // With `--sim` the estate is the simulator's state file in this directory.
        let sim_state = sim.map(|_| {
            let path = std::env::current_dir()
                .unwrap_or_default()
                .join(SIM_STATE_FILE);
            format!("file://{}", path.display())
        });
        let estates = model
            .connections
            .iter()
            .map(|(name, connection)| {
                let mut key = EstateKey::of(&connection.config);
                if let Some(state) = &sim_state {
                    key.url.clone_from(state);
                }
                (name.clone(), key)
            })
            .collect();
        let sim = if let Some(time_scale) = sim {
            let handle = start_sim(time_scale).await?;
            point_at_sim(&mut model, &handle.base_url);
            Some(handle)
        } else {
            None
        };
        let mut in_use: BTreeSet<String> = scope
            .iter()
            .filter_map(|a| model.resources.get(a))
            .map(|r| r.connection.clone())
            .collect();
        in_use.extend(only.map(str::to_string));
        // A partial run (`--target`, one connection) never prunes: it does not see
        // everything the manifests declare.
        let scan = if targets.is_empty() && only.is_none() {
            plan::prune::scan_set(&model)
        } else {
            if !targets.is_empty() && !plan::prune::scan_set(&model).is_empty() {
                reporter.note(
                    "Pruning is skipped: with `--target` the plan does not cover every document.",
                );
            }
            BTreeSet::new()
        };
        in_use.extend(scan.iter().map(|(connection, _)| connection.clone()));
        let providers = ProviderSet::connect_scanning(&model, &scope, &scan)?;
        let extras = plan::PlanExtras {
            prune: !scan.is_empty(),
            ..plan::PlanExtras::default()
        };
        Ok(Self {
            model,
            scope,
            targets,
            providers,
            in_use,
            digest,
            estates,
            sim,
            scan,
            extras,
        })
    }

    /// Takes `--replace`, `--max-destroy` and `--allow-destroy` into every plan the command
    /// makes. `applying`: the plan is about to be applied (an SDDC pruned without
    /// `--allow-destroy Sddc` is refused, not only warned about).
    pub fn guard_destroys(
        &mut self,
        settings: &DestroySettings,
        applying: bool,
    ) -> Result<(), Failure> {
        for address in &settings.replace {
            if !self.model.resources.contains_key(address) {
                return Err(Failure::hinted(UndeclaredError::NotDeclared {
                    flag: "--replace",
                    address: address.clone(),
                }));
            }
            if !self.scope.contains(address) {
                return Err(Failure::hinted(UndeclaredError::OutsideTargets(
                    address.clone(),
                )));
            }
        }
        self.extras.replace.clone_from(&settings.replace);
        self.extras.guards = Some(plan::DestroyGuards {
            max_destroy: settings.max_destroy,
            allow_destroy: settings.allow_destroy.clone(),
            applying,
        });
        Ok(())
    }

    /// Reads live state and plans, printing the plan's warnings.
    /// Reads the live state of everything in scope.
    pub async fn read_live(&self, parallelism: usize) -> Result<LiveState, plan::ListFailure> {
        plan::read_live_state_scanning(
            &self.model,
            &self.scope,
            &self.scan,
            &self.providers,
            parallelism,
        )
        .await
    }

    /// Plans against `live`, printing the plan's warnings.
    pub fn plan_from(
        &self,
        live: &LiveState,
        options: plan::PlanOptions,
        reporter: &Reporter,
    ) -> Plan {
        let plan = plan::make_plan_with(&self.model, &self.scope, live, options, &self.extras);
        for warning in &plan.warnings {
            reporter.warning(&warning.to_string());
        }
        plan
    }

    /// The credentials of the connections in use that expire within `window`, each also
    /// printed as a warning.
    pub async fn credential_warnings(
        &self,
        window: std::time::Duration,
        reporter: &Reporter,
    ) -> Vec<plan::credentials::CredentialWarning> {
        let warnings = plan::credentials::credential_warnings(
            &self.model,
            &self.in_use,
            &self.providers,
            window,
            chrono::Utc::now(),
        )
        .await;
        for warning in &warnings {
            reporter.warning(&warning.message);
        }
        warnings
    }

    /// Reads live state and plans; warnings stay in the plan.
    pub async fn plan_silently(
        &self,
        parallelism: usize,
        options: plan::PlanOptions,
        reporter: &Reporter,
    ) -> Result<(Plan, LiveState), Failure> {
        let live = self
            .read_live(parallelism)
            .await
            .map_err(|failure| listing_failure(failure, reporter))?;
        let plan = plan::make_plan_with(&self.model, &self.scope, &live, options, &self.extras);
        Ok((plan, live))
    }

    /// The estates `plan` changes: what an apply of it must lock.
    pub fn estates_changed_by(&self, plan: &Plan) -> std::collections::BTreeSet<EstateKey> {
        plan.changes
            .iter()
            .filter(|c| c.is_change())
            .filter_map(|c| self.estates.get(&c.connection).cloned())
            .collect()
    }

    /// Reads every secret of every connection in use before the first request, so that a
    /// missing environment variable or file is reported at once, for all connections, not
    /// after other requests or their retries. Each problem is reported; the failure says how
    /// many there were.
    pub fn check_credentials(&self, reporter: &Reporter) -> Result<(), Failure> {
        let problems = self.unreadable_credentials();
        let count = problems.len();
        for problem in problems {
            reporter.error(&Failure::hinted(problem));
        }
        match count {
            0 => Ok(()),
            count => Err(Failure::new(format!(
                "{count} credential{} of the connections in use cannot be read; nothing was sent and nothing was changed",
                if count == 1 { "" } else { "s" }
            ))),
        }
    }

    /// The secrets of the connections in use that cannot be read.
    pub fn unreadable_credentials(&self) -> Vec<CredentialProblem> {
        let mut problems = Vec::new();
        for connection in self
            .in_use
            .iter()
            .filter_map(|n| self.model.connections.get(n))
        {
            problems.extend(unreadable_credentials(connection));
        }
        problems
    }

    pub async fn close(self) {
        self.providers.close().await;
        if let Some(sim) = self.sim {
            sim.stop().await;
        }
    }
}

/// Reports every failed listing but the first, and returns the first as the command's failure.
pub fn listing_failure(mut failure: plan::ListFailure, reporter: &Reporter) -> Failure {
    let hint = "nothing was changed; check the connection settings and run the command again";
    if failure.errors.is_empty() {
        return Failure::new("reading the live state failed").with_hint(hint);
    }
    let first = failure.errors.remove(0);
    for other in failure.errors {
        reporter.error(&Failure::from(other));
    }
    Failure::from(first).with_hint(hint)
}

/// A secret of a connection that cannot be read (the cause names the variable or file,
/// never a value).
#[derive(Debug, thiserror::Error)]
#[error("connection `{connection}` ({location}): cannot read `spec.{field}` from {from}")]
pub struct CredentialProblem {
    pub connection: String,
    location: String,
    field: &'static str,
    /// Where the secret is read from: `env `NAME`` or `file `path``.
    from: String,
    /// The variable when the secret comes from one (for the hint).
    env: Option<String>,
    #[source]
    source: crate::model::secret::SecretError,
}

impl CredentialProblem {
    /// The problem and its first cause on one line (a plan's JSON `errors`).
    pub fn one_line(&self) -> String {
        format!("{self}: {}", self.source)
    }
}

impl Hinted for CredentialProblem {
    fn hint(&self) -> Option<String> {
        Some(match &self.env {
            Some(name) => format!("export `{name}` before running sextant"),
            None => "check the path and the file's permissions".to_string(),
        })
    }
}

fn unreadable_credentials(connection: &Connection) -> Vec<CredentialProblem> {
    let config = &connection.config;
    let mut problems = Vec::new();
    for (field, source) in [
        ("api_token", &config.api_token),
        ("password", &config.password),
    ] {
        let Some(secret) = source else { continue };
        if let Err(err) = secret.resolve() {
            problems.push(CredentialProblem {
                connection: connection.name.clone(),
                location: connection.location.to_string(),
                field,
                from: secret.describe(),
                env: match secret {
                    SecretSource::Env(name) => Some(name.clone()),
                    _ => None,
                },
                source: err,
            });
        }
    }
    problems
}

/// `--target` or `--replace` names an address the manifests do not declare, or one the
/// targets leave out.
#[derive(Debug, thiserror::Error)]
enum UndeclaredError {
    #[error("`{flag} {address}` names no declared resource")]
    NotDeclared {
        flag: &'static str,
        address: Address,
    },
    #[error("`--replace {0}` names a resource outside the `--target` scope")]
    OutsideTargets(Address),
}

impl Hinted for UndeclaredError {
    fn hint(&self) -> Option<String> {
        Some(
            match self {
                Self::NotDeclared { .. } => "run `sextant graph` to list the declared addresses",
                Self::OutsideTargets(_) => "add it with `--target`, or drop `--target`",
            }
            .to_string(),
        )
    }
}

fn declared_targets(model: &Model, targets: &[Address]) -> Result<Vec<Address>, Failure> {
    for address in targets {
        if !model.resources.contains_key(address) {
            return Err(Failure::hinted(UndeclaredError::NotDeclared {
                flag: "--target",
                address: address.clone(),
            }));
        }
    }
    Ok(targets.to_vec())
}

/// Starts the simulator `--sim` asks for (its time scale checked with the settings).
async fn start_sim(time_scale: f64) -> Result<SimHandle, Failure> {
    let state = PathBuf::from(SIM_STATE_FILE);
    if let Some(dir) = state.parent() {
        std::fs::create_dir_all(dir).map_err(|err| {
            Failure::with_source(format!("cannot create `{}`", dir.display()), err)
        })?;
    }
    let config = SimConfig {
        state_file: Some(state),
        time_scale,
        ..SimConfig::default()
    };
    Ok(crate::sim::start(config).await?)
}

/// Points every connection at the simulator; credentials come from the manifests' env vars
/// when set, dummy ones otherwise.
fn point_at_sim(model: &mut Model, base_url: &str) {
    for connection in model.connections.values_mut() {
        let config = &mut connection.config;
        config.url = base_url.to_string();
        config.csp_url = base_url.to_string();
        config.tls = Default::default();
        if config.system == SystemType::Vmc {
            // The simulator's token sees exactly one org.
            config.org_id = None;
        }
        let dummy = |name: &str| SecretSource::Fixed(SecretValue::new(format!("sim-{name}")));
        let usable =
            |source: &Option<SecretSource>| source.as_ref().is_some_and(|s| s.resolve().is_ok());
        if config.api_token.is_some() && !usable(&config.api_token) {
            config.api_token = Some(dummy("api-token"));
        }
        if config.password.is_some() && !usable(&config.password) {
            config.password = Some(dummy("password"));
        }
    }
}

/// Whether `path` is a saved plan rather than a manifest.
pub fn is_plan_file(path: &Path) -> bool {
    // A plan file of another format version is a plan too: applying it says why it cannot.
    path.is_file()
        && matches!(
            plan::saved::SavedPlan::load(path),
            Ok(Some(_)) | Err(plan::saved::SavedPlanError::Version { .. })
        )
}
