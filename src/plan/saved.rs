//! Saved plan files (`plan --out FILE`, `apply FILE`). There is no state file, so a plan
//! carries a fingerprint of every live object it read and a digest of the manifests (one
//! hash per connection setting and per declared resource); apply re-reads both, refuses a
//! stale plan and says what changed.
//!
//! The digest is taken from the manifests as written, before `--sim` points every
//! connection at the embedded simulator (whose URL changes from run to run).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Plan, render};
use crate::manifest::Overrides;
use crate::model::{Address, Model};

/// Marks a file as a sextant plan.
pub const MARKER: &str = "sextant-plan";
/// Version of the plan-file format. 3: plans record their prunes, `--replace` and
/// `--max-destroy`; a version-2 file cannot say what it would prune, so it is refused.
pub const FORMAT_VERSION: &str = "3";

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
    /// Planned against the embedded simulator (`--sim`).
    pub sim: bool,
    /// Planned with `--recreate-lost-secrets`.
    pub recreate_lost_secrets: bool,
    /// `--replace` addresses given to `plan`, planned again by `apply`.
    #[serde(default)]
    pub replace: Vec<String>,
    /// `--max-destroy` given to `plan`.
    #[serde(default)]
    pub max_destroy: Option<u32>,
    /// Addresses of the undeclared objects the plan prunes: `apply` refuses the plan when
    /// the objects it would prune now are not exactly these.
    #[serde(default)]
    pub prunes: Vec<String>,
    pub manifest_hash: String,
    /// What the manifests declared, hashed per connection setting and per resource, so a
    /// stale plan can say what changed. Holds no value, only hashes.
    pub manifest_digest: ManifestDigest,
    /// Fingerprint of every live object read, by address.
    pub fingerprints: BTreeMap<String, String>,
    /// The rendered JSON plan, for humans and tools (secrets masked).
    pub plan: serde_json::Value,
    /// The plan as `plan` prints it as text (without colour) and Markdown, for
    /// `sextant show` (secrets masked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rendered: Option<RenderedPlan>,
}

/// The plan's text and Markdown renderings.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RenderedPlan {
    pub text: String,
    pub markdown: String,
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
    #[error("`{path}` is not a sextant plan file: no `\"kind\": \"{MARKER}\"` marker")]
    NoMarker { path: PathBuf },
    #[error("`{path}` is not a sextant plan file")]
    Malformed {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "plan file `{path}` has format version {found}; this sextant reads version {FORMAT_VERSION} only (plans record what they prune since version 3); make the plan again with `sextant plan --out FILE`"
    )]
    Version { path: PathBuf, found: String },
}

/// What changed since a plan was saved, each item one fact ready to print.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the saved plan is stale: {}; nothing was changed", self.describe())]
pub struct Staleness {
    /// Changes in the manifests: connection settings and declared resources.
    pub manifests: Vec<String>,
    /// Addresses whose live object changed (or appeared, or vanished).
    pub changed: Vec<String>,
    /// Resources whose planned action differs from the saved one (`SaltJob/x: update, saved: no-op`).
    pub actions: Vec<String>,
}

impl Staleness {
    /// One line naming what changed, at most a few items of each sort.
    pub fn describe(&self) -> String {
        let mut reasons = Vec::new();
        if !self.manifests.is_empty() {
            reasons.push(format!(
                "the manifests changed: {}",
                first_few(&self.manifests)
            ));
        }
        if !self.changed.is_empty() {
            reasons.push(format!(
                "live objects changed: {}",
                first_few(&self.changed)
            ));
        }
        if !self.actions.is_empty() {
            reasons.push(format!(
                "the plan made now differs: {}",
                first_few(&self.actions)
            ));
        }
        reasons.join("; ")
    }
}

/// `a, b, c and 4 more`.
fn first_few(items: &[String]) -> String {
    const SHOWN: usize = 5;
    let mut text = items
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > SHOWN {
        text.push_str(&format!(" and {} more", items.len() - SHOWN));
    }
    text
}

/// How a plan was made, beyond its manifests: what `apply FILE` must match.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PlanContext {
    pub sim: bool,
    pub recreate_lost_secrets: bool,
}

impl SavedPlan {
    /// `digest` is the digest of the manifests as written (see [`ManifestDigest::of`]).
    pub fn new(
        plan: &Plan,
        digest: ManifestDigest,
        paths: &[PathBuf],
        targets: &[Address],
        context: PlanContext,
    ) -> Self {
        Self {
            kind: MARKER.to_string(),
            format_version: FORMAT_VERSION.to_string(),
            sextant_version: env!("CARGO_PKG_VERSION").to_string(),
            paths: paths.to_vec(),
            targets: targets.iter().map(ToString::to_string).collect(),
            vars: Vec::new(),
            var_files: Vec::new(),
            sim: context.sim,
            recreate_lost_secrets: context.recreate_lost_secrets,
            replace: Vec::new(),
            max_destroy: None,
            prunes: pruned_addresses(plan),
            manifest_hash: digest.hash(),
            manifest_digest: digest,
            fingerprints: plan.fingerprints(),
            plan: serde_json::to_value(render::json(plan)).unwrap_or_default(),
            rendered: Some(RenderedPlan {
                text: render::text(plan, render::Style::default()),
                markdown: render::markdown(plan),
            }),
        }
    }

    /// Records `--replace` and `--max-destroy`.
    pub fn with_destroy_settings(mut self, replace: &[Address], max_destroy: Option<u32>) -> Self {
        self.replace = replace.iter().map(ToString::to_string).collect();
        self.max_destroy = max_destroy;
        self
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

    /// How the plan was made.
    pub fn context(&self) -> PlanContext {
        PlanContext {
            sim: self.sim,
            recreate_lost_secrets: self.recreate_lost_secrets,
        }
    }

    /// Writes the file (write to a temporary file beside it, then rename).
    pub fn save(&self, path: &Path) -> Result<(), SavedPlanError> {
        let write = |source| SavedPlanError::Write {
            path: path.to_path_buf(),
            source,
        };
        let mut text =
            serde_json::to_string_pretty(self).map_err(|e| write(std::io::Error::other(e)))?;
        text.push('\n');
        crate::local_file::write_atomic(path, text.as_bytes(), 0o666, false).map_err(write)
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
            return Err(SavedPlanError::NoMarker {
                path: path.to_path_buf(),
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
            .map_err(|source| SavedPlanError::Malformed {
                path: path.to_path_buf(),
                source,
            })
    }

    /// Compares with a fresh plan of the same manifests; `digest` is theirs as written now.
    pub fn check_fresh(&self, digest: &ManifestDigest, fresh: &Plan) -> Result<(), Staleness> {
        let manifests = if digest.hash() == self.manifest_hash {
            Vec::new()
        } else {
            self.manifest_digest.differences(digest)
        };
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
        let mut actions = self.action_differences(fresh);
        let now = pruned_addresses(fresh);
        if now != self.prunes {
            let added: Vec<String> = now
                .iter()
                .filter(|a| !self.prunes.contains(a))
                .map(|a| format!("`{a}` would be pruned now"))
                .collect();
            let gone: Vec<String> = self
                .prunes
                .iter()
                .filter(|a| !now.contains(a))
                .map(|a| format!("`{a}` was to be pruned, no longer"))
                .collect();
            actions.extend(added);
            actions.extend(gone);
        }
        if manifests.is_empty() && changed.is_empty() && actions.is_empty() {
            Ok(())
        } else {
            Err(Staleness {
                manifests,
                changed,
                actions,
            })
        }
    }

    /// Resources whose action in `fresh` is not the saved one: even with the same manifests
    /// and live objects, local facts (a lost secret file) can change a plan, and apply must
    /// never do more than the saved plan says.
    fn action_differences(&self, fresh: &Plan) -> Vec<String> {
        let saved: BTreeMap<String, String> = self
            .plan
            .get("resource_changes")
            .and_then(serde_json::Value::as_array)
            .map(|changes| {
                changes
                    .iter()
                    .filter_map(|change| {
                        let address = change.get("address")?.as_str()?.to_string();
                        let actions = change.get("change")?.get("actions")?.as_array()?;
                        let actions: Vec<&str> =
                            actions.iter().filter_map(|a| a.as_str()).collect();
                        Some((address, actions.join(",")))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let now: BTreeMap<String, String> = fresh
            .changes
            .iter()
            .map(|c| (c.address.to_string(), c.action.json_actions().join(",")))
            .collect();
        let mut differences = Vec::new();
        for (address, action) in &now {
            match saved.get(address) {
                Some(before) if before == action => {}
                Some(before) => differences.push(format!("`{address}`: {action}, saved: {before}")),
                None => differences.push(format!("`{address}`: {action}, not in the saved plan")),
            }
        }
        for (address, before) in &saved {
            if !now.contains_key(address) {
                differences.push(format!("`{address}`: saved as {before}, no longer planned"));
            }
        }
        differences
    }
}

/// The addresses `plan` prunes, sorted.
fn pruned_addresses(plan: &Plan) -> Vec<String> {
    let mut pruned: Vec<String> = plan
        .changes
        .iter()
        .filter(|c| c.cause == Some(super::ActionCause::Pruned))
        .map(|c| c.address.to_string())
        .collect();
    pruned.sort();
    pruned
}

/// Hashes of what the manifests declare: per connection, each setting that decides which
/// estate is addressed; per resource, its file and everything it declares. Values are never
/// stored (a URL may carry a user name), only short hashes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestDigest {
    pub connections: BTreeMap<String, BTreeMap<String, String>>,
    pub resources: BTreeMap<String, DeclaredDigest>,
}

/// One declared resource in a [`ManifestDigest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeclaredDigest {
    /// The file that declares it, as named in messages.
    pub file: String,
    pub hash: String,
}

impl ManifestDigest {
    /// The digest of `model`, which must be the manifests as written (before `--sim`).
    pub fn of(model: &Model) -> Self {
        let connections = model
            .connections
            .iter()
            .map(|(name, connection)| {
                let config = &connection.config;
                let secret = |source: &Option<crate::model::SecretSource>| {
                    source.as_ref().map(|s| s.describe()).unwrap_or_default()
                };
                let settings = [
                    ("type", config.system.as_str().to_string()),
                    ("url", config.url.clone()),
                    ("csp_url", config.csp_url.clone()),
                    ("org_id", config.org_id.clone().unwrap_or_default()),
                    ("org", config.org.clone()),
                    ("api_version", config.api_version.clone()),
                    ("username", config.username.clone().unwrap_or_default()),
                    ("config_name", config.config_name.clone()),
                    ("api_token", secret(&config.api_token)),
                    ("password", secret(&config.password)),
                    // What plans of the connection may delete.
                    ("prune", format!("{:?}", config.prune)),
                    ("max_destroy", format!("{:?}", config.max_destroy)),
                ]
                .into_iter()
                .map(|(field, value)| (field.to_string(), short_hash(&[value.as_bytes()])))
                .collect();
                (name.clone(), settings)
            })
            .collect();
        let resources = model
            .resources
            .iter()
            .map(|(address, resource)| {
                let depends_on: Vec<String> = resource
                    .depends_on
                    .iter()
                    .map(ToString::to_string)
                    .collect();
                let previous = resource.previous_names.join("\n");
                let ensure = format!("{:?}", resource.ensure);
                let lifecycle = format!("{:?}", resource.lifecycle);
                let depends_on = depends_on.join("\n");
                let mut parts: Vec<&[u8]> = vec![
                    resource.connection.as_bytes(),
                    ensure.as_bytes(),
                    lifecycle.as_bytes(),
                    resource.spec.as_str().as_bytes(),
                    depends_on.as_bytes(),
                ];
                // Only when set, so that the hashes of documents without it stay as they were.
                if !previous.is_empty() {
                    parts.push(previous.as_bytes());
                }
                let hash = short_hash(&parts);
                let declared = DeclaredDigest {
                    file: resource.location.file.display().to_string(),
                    hash,
                };
                (address.to_string(), declared)
            })
            .collect();
        Self {
            connections,
            resources,
        }
    }

    /// One hash of the whole digest.
    pub fn hash(&self) -> String {
        let text = serde_json::to_string(self).unwrap_or_default();
        hex::encode(Sha256::digest(text.as_bytes()))
    }

    /// What changed from `self` (saved) to `now`, one fact per item, sorted.
    pub fn differences(&self, now: &ManifestDigest) -> Vec<String> {
        let mut out = Vec::new();
        for (name, settings) in &now.connections {
            match self.connections.get(name) {
                None => out.push(format!("connection `{name}` is new")),
                Some(saved) => {
                    for (field, hash) in settings {
                        if saved.get(field) != Some(hash) {
                            out.push(format!("connection `{name}`: `spec.{field}` changed"));
                        }
                    }
                }
            }
        }
        for name in self.connections.keys() {
            if !now.connections.contains_key(name) {
                out.push(format!("connection `{name}` was removed"));
            }
        }
        for (address, declared) in &now.resources {
            match self.resources.get(address) {
                None => out.push(format!("`{address}` is new in `{}`", declared.file)),
                Some(saved) if saved.hash != declared.hash => {
                    out.push(format!("`{address}` changed in `{}`", declared.file))
                }
                Some(_) => {}
            }
        }
        for (address, saved) in &self.resources {
            if !now.resources.contains_key(address) {
                out.push(format!("`{address}` was removed from `{}`", saved.file));
            }
        }
        if out.is_empty() {
            // Same settings and resources, yet another hash: a plan from another version.
            out.push("the manifests were read differently".to_string());
        }
        out
    }
}

fn short_hash(parts: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
    hex::encode(&hasher.finalize()[..8])
}
