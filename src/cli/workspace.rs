//! What `plan` and `apply` share: loading the manifests, pointing connections at the
//! embedded simulator with `--sim`, checking targets, and creating the providers.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::{Failure, Reporter};
use crate::apply::lock::EstateKey;
use crate::model::{Address, Model, SecretSource, SecretValue, SystemType};
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
    /// The estate each connection manages, by connection name, as the manifests name it
    /// (before `--sim` points the connections elsewhere): what apply locks.
    pub estates: std::collections::BTreeMap<String, EstateKey>,
    /// Kept alive for the duration of the command.
    pub sim: Option<SimHandle>,
}

/// Loads and validates the manifests, rendering every diagnostic on failure.
pub fn load_model(paths: &[PathBuf], reporter: &Reporter) -> Result<Model, Failure> {
    let paths = default_paths(paths);
    crate::manifest::load(&paths).map_err(|diagnostics| {
        eprint!("{}", diagnostics.render(reporter.color));
        let count = diagnostics.len();
        Failure::new(format!(
            "{count} error{} in the manifests; nothing was changed",
            if count == 1 { "" } else { "s" }
        ))
    })
}

pub fn default_paths(paths: &[PathBuf]) -> Vec<PathBuf> {
    if paths.is_empty() {
        vec![PathBuf::from(".")]
    } else {
        paths.to_vec()
    }
}

impl Workspace {
    pub async fn open(
        paths: &[PathBuf],
        targets: &[String],
        sim: Option<f64>,
        reporter: &Reporter,
    ) -> Result<Self, Failure> {
        let mut model = load_model(paths, reporter)?;
        let targets = parse_targets(&model, targets)?;
        let scope = plan::scope(&model, &targets);
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
        let providers = ProviderSet::connect(&model, &scope)?;
        Ok(Self {
            model,
            scope,
            targets,
            providers,
            estates,
            sim,
        })
    }

    /// Reads live state and plans, printing the plan's warnings.
    pub async fn plan(
        &self,
        parallelism: usize,
        options: plan::PlanOptions,
        reporter: &Reporter,
    ) -> Result<(Plan, LiveState), Failure> {
        let (plan, live) = self.plan_silently(parallelism, options).await?;
        for warning in &plan.warnings {
            reporter.warning(&format!("{}: {}", warning.address, warning.message));
        }
        Ok((plan, live))
    }

    /// Reads live state and plans; warnings stay in the plan.
    pub async fn plan_silently(
        &self,
        parallelism: usize,
        options: plan::PlanOptions,
    ) -> Result<(Plan, LiveState), Failure> {
        let live = plan::read_live_state(&self.model, &self.scope, &self.providers, parallelism)
            .await
            .map_err(|err| {
                Failure::from(err).with_hint(
                    "nothing was changed; check the connection settings and run the command again",
                )
            })?;
        let plan = plan::make_plan(&self.model, &self.scope, &live, options);
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

    pub async fn close(self) {
        self.providers.close().await;
        if let Some(sim) = self.sim {
            sim.stop().await;
        }
    }
}

fn parse_targets(model: &Model, targets: &[String]) -> Result<Vec<Address>, Failure> {
    let mut out = Vec::new();
    for text in targets {
        let address = Address::parse(text).ok_or_else(|| {
            Failure::new(format!("`--target {text}` is not an address"))
                .with_hint("addresses look like `Kind/name`, e.g. `SaltJob/Check disk usage`")
        })?;
        if !model.resources.contains_key(&address) {
            return Err(
                Failure::new(format!("`--target {text}` names no declared resource"))
                    .with_hint("run `sextant graph` to list the declared addresses"),
            );
        }
        out.push(address);
    }
    Ok(out)
}

async fn start_sim(time_scale: f64) -> Result<SimHandle, Failure> {
    if !(time_scale > 0.0 && time_scale.is_finite()) {
        return Err(Failure::new(format!(
            "`--sim-time-scale` must be a positive number, not {time_scale}"
        )));
    }
    let state = PathBuf::from(SIM_STATE_FILE);
    if let Some(dir) = state.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|err| Failure::new(format!("cannot create `{}`: {err}", dir.display())))?;
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
    path.is_file() && plan::saved::SavedPlan::load(path).is_ok_and(|p| p.is_some())
}
