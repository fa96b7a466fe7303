//! Planning: read live state in bulk, normalize and diff it against the manifests, choose an
//! action per resource, order the actions in a dependency graph, render and save the plan.
//!
//! The planner knows no kind and no wire format: kinds speak through
//! [`crate::model::rules`], systems through [`crate::providers::Provider`].

pub mod credentials;
mod diff;
mod error;
mod live;
mod order;
pub mod prune;
mod rename;
pub mod render;
pub mod saved;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::Value;

use crate::model::rules::{LocalChange, UpdateKind, rules_for};
use crate::model::{Address, CompactJson, Ensure, Model, Resource};
use crate::providers::{LiveObject, LiveStatus, TaskHandle};

pub use prune::{DestroyGuards, Prune, Pruning, prunes, scan_set};

pub use diff::{
    FieldChange, SpecDiff, UNKNOWN, diff_compact, diff_spec, resolve_references, substitute,
};
pub use error::{KeptReason, PlanError, PlanProblem, RenameError};
pub use live::{
    ListError, ListFailure, LiveMatch, LiveState, ProviderSet, Twin, read_live_state,
    read_live_state_scanning,
};
pub use order::{OrderError, order_changes};

/// What apply will do to one resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Create,
    Update,
    Replace,
    Delete,
    Wait,
    /// Replace a credential without a gap: create the new one, hand its secret over, then
    /// revoke the old one (a VCD token's `rotate_after`), or finish such a rotation.
    Rotate,
    NoOp,
}

impl Action {
    /// Terraform's JSON action list.
    pub fn json_actions(self) -> &'static [&'static str] {
        match self {
            Action::Create => &["create"],
            Action::Update => &["update"],
            Action::Replace => &["delete", "create"],
            Action::Delete => &["delete"],
            Action::Wait => &["wait"],
            // Terraform's create-before-destroy replacement.
            Action::Rotate => &["create", "delete"],
            Action::NoOp => &["no-op"],
        }
    }
}

/// Why an action was chosen when the manifests' fields alone do not say it; JSON's
/// `action_reason`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ActionCause {
    /// An undeclared object sextant owns (see [`prune`]).
    Pruned,
    /// `--replace ADDR`.
    Requested,
    /// `previous_names`: the object is renamed (or replaced under its new name).
    Renamed,
}

impl ActionCause {
    pub fn as_str(self) -> &'static str {
        match self {
            ActionCause::Pruned => "pruned",
            ActionCause::Requested => "requested",
            ActionCause::Renamed => "renamed",
        }
    }
}

/// The planned change of one resource.
#[derive(Clone, Debug)]
pub struct ResourceChange {
    pub address: Address,
    pub connection: String,
    pub action: Action,
    /// Why, when it is not obvious (`deployment failed`, a task in progress, …).
    pub reason: Option<String>,
    /// What asked for the action beyond a diff of fields (pruning, `--replace`, a rename).
    pub cause: Option<ActionCause>,
    /// Per-field changes (all desired fields for a create, live fields for a delete).
    pub fields: Vec<FieldChange>,
    /// Fields compared and found equal (counted as hidden).
    pub unchanged: usize,
    /// Steps of an in-place change that takes more than one call.
    pub steps: Vec<String>,
    /// Desired spec with references resolved (unknown ones as [`UNKNOWN`]); shared with the
    /// model when there is nothing to resolve.
    pub after: Option<CompactJson>,
    /// The live object, when there is one (shared with the live state: plans of 100,000
    /// resources hold no copies). Its normalized spec is [`ResourceChange::before`].
    pub live: Option<Arc<LiveObject>>,
    /// The server task to wait for (`Action::Wait`).
    pub task: Option<TaskHandle>,
    /// How many objects of this name the server has seen (deleted ones included): the
    /// attempt number of the next create, so its client-chosen id is never one used before.
    pub attempt: u32,
    /// Declared resources this one depends on.
    pub depends_on: Vec<Address>,
}

impl ResourceChange {
    pub fn is_change(&self) -> bool {
        self.action != Action::NoOp
    }

    /// The live spec (normalized), when the object exists.
    pub fn before(&self) -> Option<Value> {
        self.live.as_ref().map(|live| live.spec.value())
    }
}

/// Counts for the summary line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    pub add: usize,
    pub change: usize,
    pub destroy: usize,
    pub wait: usize,
}

/// Choices that change how resources are planned.
#[derive(Clone, Copy, Debug, Default)]
pub struct PlanOptions {
    /// Replace objects whose local side is lost (a VCD token whose secret file is missing)
    /// instead of only warning about them.
    pub recreate_lost_secrets: bool,
}

/// A whole plan, in execution order.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    pub changes: Vec<ResourceChange>,
    pub problems: Vec<PlanProblem>,
    /// Things the user should know that do not stop the plan.
    pub warnings: Vec<PlanProblem>,
    /// Credentials in use that expire soon ([`credentials::credential_warnings`]).
    pub credentials: Vec<credentials::CredentialWarning>,
    /// `--target` was used: the plan covers only part of the manifests.
    pub partial: bool,
}

impl Plan {
    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for change in &self.changes {
            match change.action {
                Action::Create => s.add += 1,
                Action::Update => s.change += 1,
                Action::Replace => {
                    s.add += 1;
                    s.destroy += 1;
                }
                Action::Delete => s.destroy += 1,
                Action::Rotate => s.change += 1,
                Action::Wait => s.wait += 1,
                Action::NoOp => {}
            }
        }
        s
    }

    pub fn has_changes(&self) -> bool {
        self.changes.iter().any(ResourceChange::is_change)
    }

    /// Fingerprint of the live object of every planned resource, by address (`absent` when
    /// there is none): what a saved plan compares to see whether the estate moved.
    pub fn fingerprints(&self) -> BTreeMap<String, String> {
        self.changes
            .iter()
            .map(|change| {
                let print = change
                    .live
                    .as_ref()
                    .map_or_else(|| "absent".to_string(), |live| live.fingerprint.clone());
                (change.address.to_string(), print)
            })
            .collect()
    }
}

/// Why the live state of some resources could not be read: a connection (and, when only
/// one listing failed, its kind) with the message to show.
#[derive(Clone, Debug)]
pub struct ReadFailure {
    pub connection: String,
    /// `None` when every kind of the connection is affected (its credentials, say).
    pub kind: Option<crate::model::Kind>,
    pub message: String,
}

impl ListFailure {
    /// One [`ReadFailure`] per failed listing.
    pub fn read_failures(&self) -> Vec<ReadFailure> {
        self.errors
            .iter()
            .map(|err| ReadFailure {
                connection: err.connection.clone(),
                kind: Some(err.kind),
                message: err.chain(),
            })
            .collect()
    }
}

/// A plan that could not be made: every resource in scope whose live state could not be
/// read is a problem carrying the reason (for `plan --format json`).
pub fn failed_plan(model: &Model, scope: &BTreeSet<Address>, failures: &[ReadFailure]) -> Plan {
    let mut problems = Vec::new();
    for address in scope {
        let Some(resource) = model.resources.get(address) else {
            continue;
        };
        let affected = failures.iter().filter(|f| {
            f.connection == resource.connection && f.kind.is_none_or(|k| k == address.kind)
        });
        for failure in affected {
            problems.push(PlanProblem {
                address: address.clone(),
                error: PlanError::Unreadable(failure.message.clone()),
            });
        }
    }
    if problems.is_empty() {
        // A listing of referenced objects only: name the first resource in scope.
        if let Some(address) = scope.iter().next() {
            problems.extend(failures.iter().map(|f| PlanProblem {
                address: address.clone(),
                error: PlanError::Unreadable(f.message.clone()),
            }));
        }
    }
    Plan {
        problems,
        partial: scope.len() < model.resources.len(),
        ..Plan::default()
    }
}

/// The addresses a run covers: everything, or the targets and what they depend on.
pub fn scope(model: &Model, targets: &[Address]) -> BTreeSet<Address> {
    if targets.is_empty() {
        return model.resources.keys().cloned().collect();
    }
    let mut scope = BTreeSet::new();
    let mut stack: Vec<Address> = targets.to_vec();
    while let Some(address) = stack.pop() {
        if let Some(resource) = model.resources.get(&address)
            && scope.insert(address)
        {
            stack.extend(resource.depends_on.iter().cloned());
        }
    }
    scope
}

/// What a plan does beyond the manifests' diff: pruning, forced replacements, destroy guards.
#[derive(Clone, Debug, Default)]
pub struct PlanExtras {
    /// Delete the undeclared objects each Connection's `prune` owns (only when the plan
    /// covers every resource, and the live state was read scanning [`prune::scan_set`]).
    pub prune: bool,
    /// `--replace ADDR`.
    pub replace: Vec<Address>,
    /// Refuse a plan destroying more than allowed; `None`: no limit.
    pub guards: Option<prune::DestroyGuards>,
}

/// Chooses an action for every resource in `scope`, given what the live state holds.
pub fn make_plan(
    model: &Model,
    scope: &BTreeSet<Address>,
    live: &LiveState,
    options: PlanOptions,
) -> Plan {
    make_plan_with(model, scope, live, options, &PlanExtras::default())
}

/// [`make_plan`], with pruning, `--replace` and the destroy guards of `extras`.
pub fn make_plan_with(
    model: &Model,
    scope: &BTreeSet<Address>,
    live: &LiveState,
    options: PlanOptions,
    extras: &PlanExtras,
) -> Plan {
    let mut plan = Plan {
        partial: scope.len() < model.resources.len(),
        ..Plan::default()
    };
    // In address order, as `scope` is: `decide` finds earlier decisions by binary search.
    let mut changes: Vec<ResourceChange> = Vec::with_capacity(scope.len());
    for address in scope {
        let Some(resource) = model.resources.get(address) else {
            continue;
        };
        if let Some(error) = missing_named_reference(resource, live) {
            plan.problems.push(PlanProblem {
                address: address.clone(),
                error,
            });
            continue;
        }
        let found = live.get(address);
        match decide(resource, model, found, &changes, live) {
            Ok(mut change) => {
                if let Some(problem) = local_side(resource, &mut change) {
                    if options.recreate_lost_secrets && !resource.lifecycle.prevent_destroy {
                        change.action = Action::Replace;
                        change.reason = Some(problem);
                    } else {
                        plan.warnings.push(PlanProblem {
                            address: address.clone(),
                            error: PlanError::LostSecret { problem },
                        });
                    }
                }
                changes.push(change);
            }
            Err(error) => plan.problems.push(PlanProblem {
                address: address.clone(),
                error,
            }),
        }
    }
    if extras.prune && !plan.partial {
        let pruning = prune::prunes(model, live);
        plan.warnings.extend(pruning.kept.iter().cloned());
        prune::add_prunes(&mut changes, &pruning);
    }
    match order_changes(changes) {
        Ok(ordered) => plan.changes = ordered,
        Err(err) => plan.problems.push(PlanProblem {
            address: err.first_address(),
            error: PlanError::Cycle(err),
        }),
    }
    prune::force_replacements(&mut plan, model, &extras.replace);
    if let Some(guards) = &extras.guards {
        prune::check_destroys(&mut plan, model, guards);
    }
    plan
}

/// Looks at the local side of an up-to-date object: returns a problem to report (a lost
/// secret), or turns the change into a rotation the local side calls for.
fn local_side(resource: &Resource, change: &mut ResourceChange) -> Option<String> {
    if change.action != Action::NoOp {
        return None;
    }
    let rules = rules_for(resource.address.kind);
    if let Some(problem) = rules.local_problem(resource) {
        return Some(problem);
    }
    let live = change.live.clone()?;
    match rules.local_change(resource, &live) {
        LocalChange::None => None,
        LocalChange::Lost(problem) => Some(problem),
        LocalChange::Rotate { reason, steps } => {
            change.action = Action::Rotate;
            change.reason = Some(reason);
            change.steps = steps;
            None
        }
    }
}

/// A name no manifest declares must be that of exactly one live object on the resource's
/// connection; otherwise apply would fail (or guess), so the plan fails now, naming where the
/// name is written.
fn missing_named_reference(resource: &Resource, live: &LiveState) -> Option<PlanError> {
    if resource.ensure == Ensure::Absent {
        return None;
    }
    resource.named.iter().find_map(|named| {
        let count = live.named_count(&resource.connection, &named.target);
        let at = format!("{} `spec.{}`", named.location, named.field);
        match count {
            1 => None,
            0 => Some(PlanError::NamedMissing {
                at,
                target: named.target.clone(),
                connection: resource.connection.clone(),
            }),
            count => Some(PlanError::NamedAmbiguous {
                at,
                target: named.target.clone(),
                count,
                connection: resource.connection.clone(),
            }),
        }
    })
}

fn decide(
    resource: &Resource,
    model: &Model,
    found: &LiveMatch,
    decided: &[ResourceChange],
    live: &LiveState,
) -> Result<ResourceChange, PlanError> {
    let rules = rules_for(resource.address.kind);
    let (object, attempt) = match found {
        LiveMatch::Ambiguous { objects } => return Err(ambiguity(resource, objects)),
        LiveMatch::Missing { seen } => (None, *seen),
        LiveMatch::Found { object, seen } => (Some(object), *seen),
    };
    // `previous_names`: the object may still carry an old name.
    let (object, renamed_from) = match rename::previous_object(resource, model, live, object)? {
        Some((old, previous)) => (Some(previous), Some(old)),
        None => (object, None),
    };
    let resolved = resolve_references(&resource.spec, &resource.references, decided, live);
    let mut change = ResourceChange {
        address: resource.address.clone(),
        connection: resource.connection.clone(),
        action: Action::NoOp,
        reason: None,
        cause: None,
        fields: Vec::new(),
        unchanged: 0,
        steps: Vec::new(),
        after: Some(resolved.clone()),
        live: object.cloned(),
        task: None,
        attempt,
        depends_on: resource.depends_on.clone(),
    };
    let protect = |change: &ResourceChange| -> Result<(), PlanError> {
        if resource.lifecycle.prevent_destroy
            && matches!(change.action, Action::Delete | Action::Replace)
        {
            return Err(PlanError::PreventDestroy {
                replace: change.action == Action::Replace,
            });
        }
        Ok(())
    };

    if resource.ensure == Ensure::Absent {
        change.after = None;
        if !rules.deletable() {
            return Err(PlanError::AbsentUnsupported {
                kind: resource.address.kind,
            });
        }
        if let Some(object) = object {
            if let LiveStatus::Busy { task, activity } = &object.status {
                change.action = Action::Wait;
                change.task = task.clone();
                change.reason = Some(activity.clone());
                return Ok(change);
            }
            change.action = Action::Delete;
            change.fields = diff::all_fields(&object.spec.value(), diff::Side::Before);
            protect(&change)?;
        }
        return Ok(change);
    }

    let Some(object) = object else {
        if !rules.creatable() {
            return Err(PlanError::NotCreatable {
                address: resource.address.clone(),
                connection: resource.connection.clone(),
            });
        }
        change.action = Action::Create;
        // Local fields are shown too: they say what apply writes on this machine.
        change.fields = diff::all_fields(&resolved.value(), diff::Side::After);
        return Ok(change);
    };

    match &object.status {
        LiveStatus::Busy { task, activity } => {
            change.action = Action::Wait;
            change.task = task.clone();
            change.reason = Some(activity.clone());
            return Ok(change);
        }
        LiveStatus::Failed { reason } => {
            change.action = Action::Replace;
            change.reason = Some(reason.clone());
            change.fields = diff::all_fields(&resolved.value(), diff::Side::After);
            protect(&change)?;
            return Ok(change);
        }
        LiveStatus::Ready | LiveStatus::Deleted => {}
    }

    if let Some(old) = &renamed_from {
        let (fields, unchanged) = compared_fields(resource, &resolved, &object.spec);
        change.unchanged = unchanged;
        return rename_change(change, resource, old, fields, &resolved, object);
    }
    compare_spec(resource, &resolved, &object.spec, &mut change)?;
    if change.action == Action::Replace {
        protect(&change)?;
    }
    Ok(change)
}

/// What apply would change to make an object whose (normalized) spec is `live_spec` match
/// `resolved`, the resource's spec with references resolved: sets the action (no-op, update
/// or replace), the changed fields, the steps and the count of unchanged fields of `change`.
fn compare_spec(
    resource: &Resource,
    resolved: &CompactJson,
    live_spec: &CompactJson,
    change: &mut ResourceChange,
) -> Result<(), PlanError> {
    let rules = rules_for(resource.address.kind);
    let (fields, unchanged) = compared_fields(resource, resolved, live_spec);
    change.unchanged = unchanged;
    if fields.is_empty() {
        return Ok(());
    }
    let changed: Vec<String> = fields.iter().map(|c| c.field.clone()).collect();
    match rules
        .classify_update(&resolved.value(), &live_spec.value(), &changed)
        .map_err(PlanError::Refused)?
    {
        UpdateKind::InPlace { steps } => {
            change.action = Action::Update;
            change.steps = steps;
            change.fields = fields;
        }
        UpdateKind::Replace { forced_by } => {
            change.action = Action::Replace;
            change.fields = fields
                .into_iter()
                .map(|mut c| {
                    c.forces_replacement = forced_by.contains(&c.field);
                    c
                })
                .collect();
        }
    }
    Ok(())
}

/// The fields of `live_spec` that differ from `resolved` under the kind's rules (local,
/// create-only and ignored fields left out; dropped keys of complete objects included), and
/// how many compared fields are unchanged.
fn compared_fields(
    resource: &Resource,
    resolved: &CompactJson,
    live_spec: &CompactJson,
) -> (Vec<FieldChange>, usize) {
    let rules = rules_for(resource.address.kind);
    let skip: BTreeSet<&str> = rules
        .local_fields()
        .iter()
        .chain(rules.create_only_fields())
        .copied()
        .chain(
            resource
                .lifecycle
                .ignore_changes
                .iter()
                .map(|p| p.strip_prefix("spec.").unwrap_or(p)),
        )
        .collect();
    let mut compared = diff::diff_compact(resolved, live_spec, &skip);
    let dropped = diff::dropped_fields(
        resolved,
        live_spec,
        rules.complete_objects(),
        rules.cleared_when_absent(),
        &skip,
        &compared.changes,
    );
    // A dropped key inside a field the manifest writes was counted as unchanged.
    compared.unchanged = compared
        .unchanged
        .saturating_sub(dropped.iter().filter(|d| d.after.is_some()).count());
    compared.changes.extend(dropped);
    let desired_flag = |flag: &str| {
        resolved
            .value()
            .get(flag)
            .and_then(serde_json::Value::as_bool)
            == Some(true)
    };
    let (changes, unchanged) = diff::split_by_key(
        std::mem::take(&mut compared.changes),
        rules.per_key_fields(),
        |field| {
            rules
                .complete_objects()
                .iter()
                .any(|rule| rule.path == field && rule.when.is_none_or(&desired_flag))
        },
    );
    compared.changes = changes;
    compared.unchanged += unchanged;
    (compared.changes, compared.unchanged)
}

/// What the next apply would change in the declaration of one resource if the live object
/// matched `before` exactly: the difference between two declarations of the same address
/// (the manifests at a baseline commit and now), made without reading any live state.
/// References are compared as written (`${Kind/name.attribute}`), not resolved. Create when
/// `before` is absent or `ensure: absent`; delete when `after` is `ensure: absent` and
/// `before` was present; `None` when apply would do nothing.
pub fn compare_declared(before: Option<&Resource>, after: &Resource) -> Option<ResourceChange> {
    let present = |r: &Resource| r.ensure == Ensure::Present;
    let before = before.filter(|b| present(b));
    // The same spec text on the same connection compares equal field by field: skip
    // decoding it, and building the change (most documents at a baseline are the working
    // tree's).
    if let Some(before) = before
        && present(after)
        && before.connection == after.connection
        && before.spec.same_text(&after.spec)
    {
        return None;
    }
    let mut change = ResourceChange {
        address: after.address.clone(),
        connection: after.connection.clone(),
        action: Action::NoOp,
        reason: None,
        cause: None,
        fields: Vec::new(),
        unchanged: 0,
        steps: Vec::new(),
        after: present(after).then(|| after.spec.clone()),
        live: None,
        task: None,
        attempt: 0,
        depends_on: after.depends_on.clone(),
    };
    let declared = |resource: &Resource| {
        Arc::new(crate::providers::LiveObject {
            kind: resource.address.kind,
            name: resource.address.name.clone(),
            id: String::new(),
            spec: resource.spec.clone(),
            attributes: crate::providers::Attributes::default(),
            status: LiveStatus::Ready,
            fingerprint: String::new(),
        })
    };
    match (before, present(after)) {
        (None, false) => return None,
        (None, true) => {
            change.action = Action::Create;
            change.fields = diff::all_fields(&after.spec.value(), diff::Side::After);
        }
        (Some(before), false) => {
            change.action = Action::Delete;
            change.fields = diff::all_fields(&before.spec.value(), diff::Side::Before);
            change.live = Some(declared(before));
        }
        (Some(before), true) => {
            change.live = Some(declared(before));
            if let Err(reason) = compare_spec(after, &after.spec, &before.spec, &mut change) {
                change.action = Action::Update;
                change.reason = Some(reason.to_string());
            }
            if before.connection != after.connection {
                change.action = Action::Replace;
                change.reason = Some(format!(
                    "moved from connection `{}` to `{}`",
                    before.connection, after.connection
                ));
            }
        }
    }
    change.is_change().then_some(change)
}

/// The change of a resource whose object carries the old name `old`: `~ name = "old" ->
/// "new"` in place when the kind can be renamed (with any other in-place change), else a
/// replacement that says why.
fn rename_change(
    mut change: ResourceChange,
    resource: &Resource,
    old: &str,
    mut fields: Vec<FieldChange>,
    resolved: &CompactJson,
    object: &LiveObject,
) -> Result<ResourceChange, PlanError> {
    let rules = rules_for(resource.address.kind);
    let name = FieldChange {
        field: "name".to_string(),
        before: Some(Value::String(old.to_string())),
        after: Some(Value::String(resource.address.name.clone())),
        forces_replacement: !rules.renames_in_place(),
    };
    let changed: Vec<String> = fields.iter().map(|c| c.field.clone()).collect();
    let update = if changed.is_empty() {
        UpdateKind::InPlace { steps: Vec::new() }
    } else {
        rules
            .classify_update(&resolved.value(), &object.spec.value(), &changed)
            .map_err(PlanError::Refused)?
    };
    change.cause = Some(ActionCause::Renamed);
    match update {
        UpdateKind::InPlace { steps } if rules.renames_in_place() => {
            change.action = Action::Update;
            change.reason = Some(format!("renamed from `{old}`"));
            change.steps = steps;
        }
        UpdateKind::InPlace { .. } => {
            change.action = Action::Replace;
            change.reason = Some(format!(
                "renamed from `{old}`, and a {} cannot be renamed in place",
                resource.address.kind
            ));
        }
        UpdateKind::Replace { forced_by } => {
            change.action = Action::Replace;
            change.reason = Some(format!("renamed from `{old}`"));
            for field in &mut fields {
                field.forces_replacement = forced_by.contains(&field.field);
            }
        }
    }
    fields.insert(0, name);
    change.fields = fields;
    if change.action == Action::Replace && resource.lifecycle.prevent_destroy {
        return Err(PlanError::Rename(RenameError::PreventDestroy {
            old: old.to_string(),
        }));
    }
    Ok(change)
}

/// Says which live objects share the resource's name and how to resolve it.
fn ambiguity(resource: &Resource, twins: &[Twin]) -> PlanError {
    let listed: Vec<String> = twins
        .iter()
        .map(|twin| match &twin.created {
            Some(created) => format!("`{}` (created {created})", twin.id),
            None => format!("`{}`", twin.id),
        })
        .collect();
    PlanError::AmbiguousLive {
        count: twins.len(),
        name: resource.address.name.clone(),
        ids: listed.join(", "),
        created_unknown: twins.iter().all(|t| t.created.is_none()),
    }
}

/// Whether a spec key names a secret, whose value is masked leaf by leaf in every rendering.
pub fn is_sensitive_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    [
        "password",
        "passwd",
        "secret",
        "api_key",
        "apikey",
        "private_key",
    ]
    .iter()
    .any(|word| key.contains(word))
        || (key.contains("token") && key != "token_type")
}
