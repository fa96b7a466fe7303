//! Saved plan files (`plan --out FILE`, `apply FILE`). There is no state file, so a plan
//! carries a fingerprint of every live object it read and a hash of the manifests; apply
//! re-reads both and refuses a stale plan.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Plan, render};
use crate::manifest::Overrides;
use crate::model::{Address, Model};

/// Marks a file as a sextant plan.
pub const MARKER: &str = "sextant-plan";
/// Version of the plan-file format.
pub const FORMAT_VERSION: &str = "1";

/// What a plan file holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedPlan {
    pub kind: String,
    pub format_version: String,
    pub sextant_version: String,
    /// The manifest paths the plan was made from (as given on the command line).
    pub paths: Vec<PathBuf>,
    pub targets: Vec<String>,
    /// `--var NAME=VALUE` given to `plan` (values, never secrets), applied again by `apply`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vars: Vec<(String, String)>,
    /// `--var-file` paths given to `plan`, read again by `apply`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub var_files: Vec<PathBuf>,
    pub manifest_hash: String,
    /// Fingerprint of every live object read, by address.
    pub fingerprints: BTreeMap<String, String>,
    /// The rendered JSON plan, for humans and tools (secrets masked).
    pub plan: serde_json::Value,
}

#[derive(Debug, thiserror::Error)]
pub enum SavedPlanError {
    #[error("cannot read plan file `{path}`")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write plan file `{path}`")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{path}` is not a sextant plan file: {message}")]
    NotAPlan { path: PathBuf, message: String },
    #[error(
        "plan file `{path}` has format version {found}; this sextant reads version {FORMAT_VERSION}"
    )]
    Version { path: PathBuf, found: String },
}

/// What changed since a plan was saved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Staleness {
    pub manifests_changed: bool,
    /// Addresses whose live object changed (or appeared, or vanished).
    pub changed: Vec<String>,
}

impl SavedPlan {
    pub fn new(plan: &Plan, model: &Model, paths: &[PathBuf], targets: &[Address]) -> Self {
        Self {
            kind: MARKER.to_string(),
            format_version: FORMAT_VERSION.to_string(),
            sextant_version: env!("CARGO_PKG_VERSION").to_string(),
            paths: paths.to_vec(),
            targets: targets.iter().map(ToString::to_string).collect(),
            vars: Vec::new(),
            var_files: Vec::new(),
            manifest_hash: manifest_hash(model),
            fingerprints: plan.fingerprints(),
            plan: serde_json::to_value(render::json(plan)).unwrap_or_default(),
        }
    }

    /// Records the variables the plan was made with.
    pub fn with_overrides(mut self, overrides: &Overrides) -> Self {
        self.vars = overrides.vars.clone();
        self.var_files = overrides.var_files.clone();
        self
    }

    /// The variables the plan was made with.
    pub fn overrides(&self) -> Overrides {
        Overrides {
            vars: self.vars.clone(),
            var_files: self.var_files.clone(),
        }
    }

    /// Writes the file (write to a temporary name, then rename).
    pub fn save(&self, path: &Path) -> Result<(), SavedPlanError> {
        let write = |source| SavedPlanError::Write {
            path: path.to_path_buf(),
            source,
        };
        let mut text =
            serde_json::to_string_pretty(self).map_err(|e| write(std::io::Error::other(e)))?;
        text.push('\n');
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text).map_err(write)?;
        std::fs::rename(&tmp, path).map_err(write)
    }

    /// Reads a plan file; `Ok(None)` when the file is not JSON at all (so it may be a
    /// manifest), an error when it is JSON but not a usable plan.
    pub fn load(path: &Path) -> Result<Option<Self>, SavedPlanError> {
        let text = std::fs::read_to_string(path).map_err(|source| SavedPlanError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let Ok(value) = serde_json::from_str::<serde_json::Value>(&text) else {
            return Ok(None);
        };
        if value.get("kind").and_then(|k| k.as_str()) != Some(MARKER) {
            return Err(SavedPlanError::NotAPlan {
                path: path.to_path_buf(),
                message: format!("no `\"kind\": \"{MARKER}\"` marker"),
            });
        }
        let found = value
            .get("format_version")
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string();
        if found != FORMAT_VERSION {
            return Err(SavedPlanError::Version {
                path: path.to_path_buf(),
                found,
            });
        }
        serde_json::from_value(value)
            .map(Some)
            .map_err(|err| SavedPlanError::NotAPlan {
                path: path.to_path_buf(),
                message: err.to_string(),
            })
    }

    /// Compares with a fresh plan of the same manifests.
    pub fn check_fresh(&self, model: &Model, fresh: &Plan) -> Result<(), Staleness> {
        let manifests_changed = manifest_hash(model) != self.manifest_hash;
        let fresh_fingerprints = fresh.fingerprints();
        let mut changed: Vec<String> = self
            .fingerprints
            .iter()
            .filter(|(address, print)| fresh_fingerprints.get(*address) != Some(*print))
            .map(|(address, _)| address.clone())
            .collect();
        changed.extend(
            fresh_fingerprints
                .keys()
                .filter(|a| !self.fingerprints.contains_key(*a))
                .cloned(),
        );
        changed.sort();
        changed.dedup();
        if manifests_changed || !changed.is_empty() {
            Err(Staleness {
                manifests_changed,
                changed,
            })
        } else {
            Ok(())
        }
    }
}

/// A hash of everything the manifests declare (not of their formatting).
pub fn manifest_hash(model: &Model) -> String {
    let mut hasher = Sha256::new();
    for (name, connection) in &model.connections {
        hasher.update(name.as_bytes());
        hasher.update(connection.config.system.as_str().as_bytes());
        hasher.update(connection.config.url.as_bytes());
        hasher.update([0]);
    }
    for (address, resource) in &model.resources {
        hasher.update(address.to_string().as_bytes());
        hasher.update(resource.connection.as_bytes());
        hasher.update(format!("{:?}", resource.ensure).as_bytes());
        hasher.update(resource.spec.as_str().as_bytes());
        for dep in &resource.depends_on {
            hasher.update(dep.to_string().as_bytes());
        }
        hasher.update([0]);
    }
    hex::encode(hasher.finalize())
}
