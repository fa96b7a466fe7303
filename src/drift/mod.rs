//! Drift detection: what the scheduled job needs to tell apart. Given the manifests of the
//! working tree, those at a baseline commit (the last applied one) and the live state read
//! once for both, it reports
//!
//! - **drifted**: declared objects whose live state differs from the manifests at the
//!   baseline (what the plan of the baseline manifests would change: changed outside sextant);
//! - **pending**: what the manifests of the working tree change against the baseline, made
//!   without any API call (merged, not applied yet);
//! - **unmanaged**: live objects of the scanned listings that no manifest of the working tree
//!   declares (minus the ignored ones, which are only counted).
//!
//! Owns the report's document (JSON, saved with `drift --out`) and its renderings; it reads
//! no file and makes no request (`baseline` reads Git, the CLI reads the live state). The
//! report is deterministic: sorted by address, no timestamps.

pub mod baseline;
pub mod render;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::{Address, Kind, Model, Resource};
use crate::plan::render::{JsonChange, JsonWarning, json_change, mask};
use crate::plan::{
    self, FieldChange, LiveState, Plan, PlanProblem, ResourceChange, is_sensitive_key,
};

/// Marks a file as a saved drift report (`drift --out`).
pub const MARKER: &str = "sextant-drift";
/// Version of the report document (`format_version`).
pub const FORMAT_VERSION: &str = "1.0";

const SENSITIVE: &str = "(sensitive value)";

/// The report of one `sextant drift` run (`--format json`, and what `--out` saves).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DriftReport {
    /// Version of this format; a change of the major part breaks readers.
    pub format_version: String,
    pub sextant_version: String,
    /// The commit `--baseline` resolved to (40 hex digits); null without `--baseline`.
    pub baseline: Option<String>,
    /// `--baseline` as given (`sextant/applied/prod`); null without it.
    pub baseline_ref: Option<String>,
    /// What a reader must know to read the report right (without a baseline, drift and
    /// pending cannot be told apart).
    pub notes: Vec<String>,
    pub summary: DriftSummary,
    /// Declared objects whose live state differs from the manifests at the baseline (from
    /// the working tree's manifests without `--baseline`), sorted by address. `change` is
    /// what apply of the baseline manifests would do: `before` is live, `after` declared.
    pub drifted: Vec<DriftItem>,
    /// What the next apply changes because the manifests changed since the baseline,
    /// sorted by address. `change.before` is the declaration at the baseline, `after` the
    /// one in the working tree. A removed document is not pending: apply leaves its object
    /// alone.
    pub pending: Vec<DriftItem>,
    /// Live objects of the scanned listings that no manifest declares, sorted by address.
    pub unmanaged: Vec<UnmanagedItem>,
    /// The listings scanned for unmanaged objects, with how many were found and ignored.
    pub scanned: Vec<ScannedListing>,
    /// Declared resources whose live state matches the manifests at the baseline.
    pub in_sync: Vec<ResourceRef>,
    /// Credentials in use that expire within `--warn-expiry` (as in the plan's JSON). Never
    /// holds a secret.
    #[serde(default)]
    pub warnings: Vec<JsonWarning>,
}

/// Counts of each section.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DriftSummary {
    pub drifted: usize,
    pub pending: usize,
    pub unmanaged: usize,
    /// Unmanaged objects matched by `unmanaged.ignore` (not listed).
    pub ignored: usize,
    pub in_sync: usize,
}

/// A declared resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ResourceRef {
    /// `Kind/name`.
    pub address: String,
    pub kind: String,
    pub name: String,
    pub connection: String,
}

/// A drifted or pending resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DriftItem {
    /// `Kind/name`.
    pub address: String,
    pub kind: String,
    pub name: String,
    pub connection: String,
    /// The change, shaped as `resource_changes[].change` of `plan --format json`.
    pub change: JsonChange,
    /// Why, when it is not obvious (a task running on the server, a move of connection).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action_reason: Option<String>,
    /// The fields that differ (top-level spec fields; per key for maps such as `access`).
    pub fields: Vec<FieldDiff>,
    /// Fields compared and found equal.
    pub unchanged: usize,
}

/// One field that differs. Sensitive values are `"(sensitive value)"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FieldDiff {
    /// The field, as in the manifest's `spec` (`power_state`, `access.Ops`).
    pub field: String,
    /// Drifted: the live value; pending: the value at the baseline. Null when absent.
    pub before: Option<Value>,
    /// The declared value (working tree for pending, baseline for drifted). Null when absent.
    pub after: Option<Value>,
    pub forces_replacement: bool,
}

/// A live object no manifest declares.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct UnmanagedItem {
    /// `Kind/name`.
    pub address: String,
    pub kind: String,
    pub name: String,
    pub connection: String,
    /// The server's id of the object.
    pub id: String,
}

/// One listing scanned whole for unmanaged objects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ScannedListing {
    pub connection: String,
    pub kind: String,
    /// Unmanaged objects found and reported.
    pub unmanaged: usize,
    /// Unmanaged objects matched by `unmanaged.ignore`.
    pub ignored: usize,
}

/// A saved report: the document with a marker, for `sextant show`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedDrift {
    pub kind: String,
    pub report: DriftReport,
}

/// What `--fail-on` may name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Finding {
    Drift,
    Pending,
    Unmanaged,
}

impl DriftReport {
    /// Whether the report holds one of `findings`.
    pub fn has_any(&self, findings: &[Finding]) -> bool {
        findings.iter().any(|finding| match finding {
            Finding::Drift => !self.drifted.is_empty(),
            Finding::Pending => !self.pending.is_empty(),
            Finding::Unmanaged => !self.unmanaged.is_empty(),
        })
    }

    /// Writes the report for `sextant show` (write to a temporary name, then rename).
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let saved = SavedDrift {
            kind: MARKER.to_string(),
            report: self.clone(),
        };
        let mut text = serde_json::to_string_pretty(&saved).map_err(std::io::Error::other)?;
        text.push('\n');
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, path)
    }
}

/// The JSON Schema of [`DriftReport`] (committed as `schemas/drift.schema.json`).
pub fn json_schema() -> String {
    let schema = schemars::schema_for!(DriftReport);
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}

/// The listings to scan whole for unmanaged objects: per connection the manifests use (or
/// that names `unmanaged.kinds`), the kinds it names, or else the kinds declared on it —
/// `VirtualMachine` only when named (sextant does not create VMs).
pub fn scanned_listings(model: &Model) -> BTreeSet<(String, Kind)> {
    let mut declared: BTreeMap<&str, BTreeSet<Kind>> = BTreeMap::new();
    for (address, resource) in &model.resources {
        declared
            .entry(resource.connection.as_str())
            .or_default()
            .insert(address.kind);
    }
    let mut scan = BTreeSet::new();
    for (name, connection) in &model.connections {
        match &connection.config.unmanaged.kinds {
            Some(kinds) => {
                scan.extend(kinds.iter().map(|kind| (name.clone(), *kind)));
            }
            None => {
                let kinds = declared.get(name.as_str()).into_iter().flatten();
                scan.extend(
                    kinds
                        // Kinds sextant never creates (VMs) only when named.
                        .filter(|kind| crate::model::rules::rules_for(**kind).creatable())
                        .map(|kind| (name.clone(), *kind)),
                );
            }
        }
    }
    scan
}

/// The model whose live state is read, and the addresses whose drift is reported.
pub struct Listing<'m> {
    /// The working tree's resources, each replaced by its declaration at the baseline when
    /// the baseline declares it on the same connection (drift compares against that); the
    /// working tree's model itself when there is no other baseline.
    pub model: std::borrow::Cow<'m, Model>,
    /// The addresses compared with the live state: those declared both at the baseline and
    /// in the working tree (all of the working tree's without a baseline).
    pub drift_scope: BTreeSet<Address>,
    /// The baseline's declarations of the resources the working tree moved to another
    /// connection (compared for pending, not for drift).
    moved: BTreeMap<Address, Resource>,
    /// Whether the baseline's manifests are not the working tree's (then they can differ).
    separate: bool,
}

/// The listing model of `current` (the working tree) and `baseline` (`None` without one,
/// or when the manifests at the baseline are the working tree's). The baseline's resources
/// are moved into it, not copied. Objects declared only at the baseline (their document was
/// removed since) are not compared: apply leaves them alone, and they are unmanaged now.
pub fn listing(current: &Model, baseline: Option<Model>) -> Listing<'_> {
    let Some(baseline) = baseline else {
        return Listing {
            model: std::borrow::Cow::Borrowed(current),
            drift_scope: current.resources.keys().cloned().collect(),
            moved: BTreeMap::new(),
            separate: false,
        };
    };
    let mut drift_scope = BTreeSet::new();
    let mut moved = BTreeMap::new();
    let mut resources = Vec::with_capacity(current.resources.len());
    // One pass over both, in address order.
    let mut before = baseline.resources.into_iter().peekable();
    for (address, resource) in &current.resources {
        // Declared only at the baseline: dropped.
        while before.next_if(|(at, _)| at < address).is_some() {}
        match before.next_if(|(at, _)| at == address) {
            Some((at, declared)) if declared.connection == resource.connection => {
                drift_scope.insert(address.clone());
                resources.push((at, declared));
            }
            Some((at, declared)) => {
                moved.insert(at, declared);
                resources.push((address.clone(), resource.clone()));
            }
            None => resources.push((address.clone(), resource.clone())),
        }
    }
    Listing {
        model: std::borrow::Cow::Owned(Model {
            connections: current.connections.clone(),
            resources: resources.into_iter().collect(),
            warnings: current.warnings.clone(),
            lock: current.lock.clone(),
        }),
        drift_scope,
        moved,
        separate: true,
    }
}

impl Listing<'_> {
    /// What the next apply changes in the declarations since the baseline (`current`'s
    /// resources compared with their declarations at the baseline), in address order;
    /// nothing when the baseline's manifests are the working tree's.
    pub fn pending(&self, current: &Model) -> Vec<ResourceChange> {
        if !self.separate {
            return Vec::new();
        }
        let mut compared = self.drift_scope.iter().peekable();
        // The listing model holds exactly `current`'s addresses, in the same order.
        current
            .resources
            .iter()
            .zip(self.model.resources.values())
            .filter_map(|((address, resource), listed)| {
                let before = if compared.next_if(|at| *at == address).is_some() {
                    Some(listed)
                } else {
                    self.moved.get(address)
                };
                plan::compare_declared(before, resource)
            })
            .collect()
    }
}

/// Everything [`report`] needs.
pub struct DriftInputs<'a> {
    /// The manifests of the working tree.
    pub current: &'a Model,
    /// The baseline's ref and commit (its manifests are in `listing`).
    pub baseline: Option<(&'a str, &'a str)>,
    pub listing: &'a Listing<'a>,
    pub live: &'a LiveState,
}

/// The drift report, or the resources that could not be compared (as `plan` would fail).
pub fn report(inputs: &DriftInputs<'_>) -> Result<DriftReport, Vec<PlanProblem>> {
    let drift_plan: Plan = plan::make_plan(
        &inputs.listing.model,
        &inputs.listing.drift_scope,
        inputs.live,
        plan::PlanOptions::default(),
    );
    if !drift_plan.problems.is_empty() {
        return Err(drift_plan.problems);
    }
    let mut drifted = Vec::new();
    let mut in_sync = Vec::new();
    for change in &drift_plan.changes {
        if change.is_change() {
            drifted.push(item(change));
        } else {
            in_sync.push(resource_ref(&change.address, &change.connection));
        }
    }
    drifted.sort_by(|a, b| a.address.cmp(&b.address));
    in_sync.sort_by(|a, b| a.address.cmp(&b.address));

    let mut notes = Vec::new();
    let mut pending = Vec::new();
    match inputs.baseline {
        Some(_) => pending.extend(inputs.listing.pending(inputs.current).iter().map(item)),
        None => notes.push(
            "no `--baseline` was given: every difference from the manifests is reported as drifted, and drift (changed outside sextant) cannot be told from pending (merged, not applied yet); run `sextant drift --baseline <last applied commit>`".to_string(),
        ),
    }
    // What the next apply prunes is pending whatever the baseline: no manifest declares it.
    let prunes = pending_prunes(inputs.current, inputs.live);
    let pruned: BTreeSet<(String, String)> = prunes
        .iter()
        .map(|p| (p.connection.clone(), p.address.clone()))
        .collect();
    pending.extend(prunes);
    pending.sort_by(|a, b| a.address.cmp(&b.address));

    let mut unmanaged = Vec::new();
    let mut scanned = Vec::new();
    for (connection, kind, objects) in inputs.live.undeclared_all() {
        let scope = inputs
            .current
            .connections
            .get(connection)
            .map(|c| &c.config.unmanaged);
        let mut listing = ScannedListing {
            connection: connection.to_string(),
            kind: kind.as_str().to_string(),
            unmanaged: 0,
            ignored: 0,
        };
        for object in objects {
            let address = Address::new(kind, object.name.clone());
            if scope.is_some_and(|s| s.ignores(&address)) {
                listing.ignored += 1;
                continue;
            }
            if pruned.contains(&(connection.to_string(), address.to_string())) {
                continue;
            }
            listing.unmanaged += 1;
            unmanaged.push(UnmanagedItem {
                address: address.to_string(),
                kind: kind.as_str().to_string(),
                name: object.name.clone(),
                connection: connection.to_string(),
                id: object.id.clone(),
            });
        }
        scanned.push(listing);
    }
    unmanaged.sort_by(|a, b| {
        (&a.address, &a.connection, &a.id).cmp(&(&b.address, &b.connection, &b.id))
    });
    scanned.sort_by(|a, b| (&a.connection, &a.kind).cmp(&(&b.connection, &b.kind)));

    let summary = DriftSummary {
        drifted: drifted.len(),
        pending: pending.len(),
        unmanaged: unmanaged.len(),
        ignored: scanned.iter().map(|s| s.ignored).sum(),
        in_sync: in_sync.len(),
    };
    Ok(DriftReport {
        format_version: FORMAT_VERSION.to_string(),
        sextant_version: env!("CARGO_PKG_VERSION").to_string(),
        baseline: inputs.baseline.map(|(_, commit)| commit.to_string()),
        baseline_ref: inputs.baseline.map(|(reference, _)| reference.to_string()),
        notes,
        summary,
        drifted,
        pending,
        unmanaged,
        scanned,
        in_sync,
        warnings: Vec::new(),
    })
}

/// The undeclared objects the next apply prunes (see `docs/pruning.md`), as pending deletes
/// with the reason `pruned: …`; [`report`] leaves them out of `unmanaged`.
pub fn pending_prunes(current: &Model, live: &LiveState) -> Vec<DriftItem> {
    plan::prunes(current, live)
        .prunes
        .iter()
        .map(|prune| {
            let mut pending = item(&prune.change(Vec::new()));
            pending.action_reason = Some(prune.reason());
            pending
        })
        .collect()
}

fn resource_ref(address: &Address, connection: &str) -> ResourceRef {
    ResourceRef {
        address: address.to_string(),
        kind: address.kind.as_str().to_string(),
        name: address.name.clone(),
        connection: connection.to_string(),
    }
}

fn item(change: &ResourceChange) -> DriftItem {
    DriftItem {
        address: change.address.to_string(),
        kind: change.address.kind.as_str().to_string(),
        name: change.address.name.clone(),
        connection: change.connection.clone(),
        change: json_change(change),
        action_reason: change.reason.clone(),
        fields: change.fields.iter().map(field_diff).collect(),
        unchanged: change.unchanged,
    }
}

fn field_diff(field: &FieldChange) -> FieldDiff {
    let shown = |value: &Option<Value>| {
        value.as_ref().map(|v| {
            if is_sensitive_key(&field.field) {
                Value::String(SENSITIVE.to_string())
            } else {
                mask(v)
            }
        })
    };
    FieldDiff {
        field: field.field.clone(),
        before: shown(&field.before),
        after: shown(&field.after),
        forces_replacement: field.forces_replacement,
    }
}

/// Reads a saved report; `Ok(None)` when the file is JSON without the drift marker.
pub fn load_saved(path: &Path) -> Result<Option<DriftReport>, SavedDriftError> {
    let path_buf = || path.to_path_buf();
    let text = std::fs::read_to_string(path).map_err(|source| SavedDriftError::Read {
        path: path_buf(),
        source,
    })?;
    let value: Value = serde_json::from_str(&text).map_err(|source| SavedDriftError::NotJson {
        path: path_buf(),
        source,
    })?;
    if value.get("kind").and_then(Value::as_str) != Some(MARKER) {
        return Ok(None);
    }
    let saved: SavedDrift =
        serde_json::from_value(value).map_err(|source| SavedDriftError::Malformed {
            path: path_buf(),
            source,
        })?;
    let major = |v: &str| v.split('.').next().unwrap_or_default().to_string();
    if major(&saved.report.format_version) != major(FORMAT_VERSION) {
        return Err(SavedDriftError::Version {
            path: path_buf(),
            found: saved.report.format_version,
        });
    }
    Ok(Some(saved.report))
}

/// Why a file given to `sextant show` cannot be read as a saved drift report.
#[derive(Debug, thiserror::Error)]
pub enum SavedDriftError {
    #[error("cannot read `{}`", .path.display())]
    Read {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{}` is not JSON", .path.display())]
    NotJson {
        path: std::path::PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("`{}` is not a sextant drift report", .path.display())]
    Malformed {
        path: std::path::PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "drift report `{}` has format version {found}; this sextant reads version {FORMAT_VERSION}",
        .path.display()
    )]
    Version {
        path: std::path::PathBuf,
        found: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Action;

    const CONNECTION: &str = "kind: Connection\nname: salt\nspec: { type: raas, url: https://salt.example.com, api_token: { env: T } }\n";

    fn model(documents: &str) -> Model {
        crate::manifest::load_text("m.yaml", &format!("{CONNECTION}---\n{documents}"))
            .unwrap_or_else(|d| panic!("{d}"))
    }

    fn pending(before: &Model, after: &Model) -> Vec<(String, Action, Vec<String>)> {
        after
            .resources
            .iter()
            .filter_map(|(address, resource)| {
                plan::compare_declared(before.resources.get(address), resource)
            })
            .map(|c| {
                (
                    c.address.to_string(),
                    c.action,
                    c.fields.iter().map(|f| f.field.clone()).collect(),
                )
            })
            .collect()
    }

    const JOB: &str =
        "kind: SaltJob\nname: job\nspec: { desc: one, fun: test.ping, target: All Minions }\n";

    #[test]
    fn pending_is_what_apply_changes_in_the_declarations() {
        let base = model(JOB);
        assert!(pending(&base, &base).is_empty());
        let edited = model(&JOB.replace("desc: one", "desc: two"));
        assert_eq!(
            pending(&base, &edited),
            [(
                "SaltJob/job".to_string(),
                Action::Update,
                vec!["desc".to_string()]
            )]
        );
        // A field left out is the server's business: apply does not clear it.
        let dropped = model(&JOB.replace("desc: one, ", ""));
        assert!(pending(&base, &dropped).is_empty());
        let added = model(&format!(
            "{JOB}---\nkind: SaltTarget\nname: new\nspec: {{ tgt: {{ '*': {{ tgt_type: glob, tgt: 'x*' }} }} }}\n"
        ));
        assert_eq!(
            pending(&base, &added),
            [(
                "SaltTarget/new".to_string(),
                Action::Create,
                vec!["tgt".to_string()]
            )]
        );
        let absent = model(&format!("{JOB}ensure: absent\n"));
        assert_eq!(pending(&base, &absent)[0].1, Action::Delete);
    }

    #[test]
    fn listing_compares_only_what_both_declare_and_borrows_when_it_can() {
        let base = model(JOB);
        let same = listing(&base, None);
        assert!(matches!(same.model, std::borrow::Cow::Borrowed(_)));
        assert_eq!(same.drift_scope.len(), 1);
        let now = model(&format!(
            "{}---\nkind: SaltTarget\nname: new\nspec: {{ tgt: {{ '*': {{ tgt_type: glob, tgt: 'x*' }} }} }}\n",
            JOB.replace("desc: one", "desc: two")
        ));
        let both = listing(&now, Some(base.clone()));
        let job = Address::new(Kind::SaltJob, "job");
        assert_eq!(both.drift_scope, BTreeSet::from([job.clone()]));
        // Drift compares the live job with its declaration at the baseline.
        assert_eq!(
            both.model.resources[&job].spec.as_str(),
            base.resources[&job].spec.as_str()
        );
        assert_eq!(both.model.resources.len(), 2);
        // Pending compares the working tree with the baseline's declarations moved in.
        let changes = |listing: &Listing<'_>, current: &Model| -> Vec<(String, Action)> {
            listing
                .pending(current)
                .iter()
                .map(|c| (c.address.to_string(), c.action))
                .collect()
        };
        assert!(changes(&same, &base).is_empty());
        assert_eq!(
            changes(&both, &now),
            [
                ("SaltTarget/new".to_string(), Action::Create),
                ("SaltJob/job".to_string(), Action::Update)
            ]
        );
        // A job moved to another connection: listed there, not compared for drift, and
        // replaced by the next apply.
        let other = "kind: Connection\nname: other\nspec: { type: raas, url: https://other.example.com, api_token: { env: T } }\n";
        let moved = model(&format!("{other}---\n{JOB}connection: other\n"));
        let base = model(&format!("{other}---\n{JOB}connection: salt\n"));
        let listed = listing(&moved, Some(base));
        assert!(listed.drift_scope.is_empty());
        assert_eq!(listed.model.resources[&job].connection, "other");
        assert_eq!(
            changes(&listed, &moved),
            [("SaltJob/job".to_string(), Action::Replace)]
        );
    }

    #[test]
    fn virtual_machines_are_scanned_only_when_named() {
        let vsphere = "kind: Connection\nname: vc\nspec: { type: vsphere, url: https://vc, username: u, password: { env: P } }\n---\nkind: VirtualMachine\nname: web\nspec: { power_state: POWERED_ON }\n";
        let scan = scanned_listings(&model(&format!("{JOB}---\n{vsphere}")));
        assert_eq!(scan, BTreeSet::from([("salt".to_string(), Kind::SaltJob)]));
        let named = vsphere.replace(
            "password: { env: P } }",
            "password: { env: P }, unmanaged: { kinds: [VirtualMachine] } }",
        );
        let scan = scanned_listings(&model(&format!("{JOB}---\n{named}")));
        assert!(
            scan.contains(&("vc".to_string(), Kind::VirtualMachine)),
            "{scan:?}"
        );
    }
}
