//! Pruning: which live objects that no manifest declares any longer a plan deletes, and the
//! guards around every destroy (`--max-destroy`, `--allow-destroy Sddc`, `--replace`).
//!
//! Ownership comes from the objects themselves, never from an inventory file: a Salt job or
//! an SDDC whose id is the client-chosen id sextant derives for its own connection, kind and
//! name (for one of the first [`OWNED_ATTEMPTS`] attempts) was created by sextant; any other
//! object is owned only when its name matches the Connection's `prune.scope`. Pruning is off
//! unless a Connection opts in with `prune.kinds`, and VMs are never pruned.
//!
//! This module reads the model and the live state (scanned whole for the listings of
//! [`scan_set`]) and adds delete actions; it never calls a provider.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::{
    Action, ActionCause, KeptReason, LiveMatch, LiveState, Plan, PlanError, PlanProblem,
    ResourceChange, diff,
};
use crate::model::rules::rules_for;
use crate::model::{Address, Ensure, Kind, Model, Resource};
use crate::providers::{LiveObject, LiveStatus};

/// Attempts whose derived ids are recognised as sextant's (a create is retried with the next
/// attempt only after an object of the name was deleted, so a handful covers every estate).
pub const OWNED_ATTEMPTS: u32 = 8;

/// Destroys a plan may hold when neither `--max-destroy` nor a Connection says otherwise.
pub const DEFAULT_MAX_DESTROY: u32 = 10;

/// Why an undeclared object is sextant's to delete.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ownership {
    /// Its id is the one sextant derives for its connection, kind and name.
    CreatedBySextant { attempt: u32 },
    /// Its name matches the Connection's `prune.scope`.
    InScope { scope: String },
}

impl Ownership {
    /// The reason shown after `pruned:`.
    pub fn describe(&self) -> String {
        match self {
            Ownership::CreatedBySextant { .. } => {
                "created by sextant, no longer declared".to_string()
            }
            Ownership::InScope { scope } => {
                format!("in the connection's prune scope `{scope}`, no longer declared")
            }
        }
    }
}

/// One live object the next apply deletes because no manifest declares it any longer.
#[derive(Clone, Debug)]
pub struct Prune {
    /// `Kind/name` of the live object (no manifest declares it).
    pub address: Address,
    pub connection: String,
    pub object: Arc<LiveObject>,
    pub ownership: Ownership,
    /// Pruned objects it refers to (deleted after it).
    pub refers_to: Vec<Address>,
    /// Declared resources whose live object still refers to it: their planned change runs
    /// first (it moves them off this object).
    pub declared_users: Vec<Address>,
}

impl Prune {
    /// `pruned: created by sextant, no longer declared`.
    pub fn reason(&self) -> String {
        format!("pruned: {}", self.ownership.describe())
    }
}

/// The result of [`prunes`]: what is deleted, and what was left alone that a user may want
/// to know about.
#[derive(Clone, Debug, Default)]
pub struct Pruning {
    pub prunes: Vec<Prune>,
    /// Owned, undeclared objects that are kept, each with the reason.
    pub kept: Vec<PlanProblem>,
}

/// The listings pruning needs scanned whole: each Connection's `prune.kinds`, and the kinds
/// whose objects may refer to them (a job to its target group, a schedule to its job), so
/// that an object still used by an undeclared one is never pruned.
pub fn scan_set(model: &Model) -> BTreeSet<(String, Kind)> {
    let mut scan = BTreeSet::new();
    for (name, connection) in &model.connections {
        let Some(policy) = &connection.config.prune else {
            continue;
        };
        for kind in &policy.kinds {
            scan.insert((name.clone(), *kind));
            for user in Kind::ALL {
                if rules_for(user)
                    .named_fields()
                    .iter()
                    .any(|(_, target)| target == kind)
                {
                    scan.insert((name.clone(), user));
                }
            }
        }
    }
    scan
}

/// Whether `id` is one sextant derives for `kind`/`name` on `connection`, and for which
/// attempt (see [`crate::apply::idempotency_key`]).
pub fn derived_attempt(connection: &str, kind: Kind, name: &str, id: &str) -> Option<u32> {
    if !rules_for(kind).client_chosen_id() {
        return None;
    }
    let address = Address::new(kind, name);
    (0..OWNED_ATTEMPTS).find(|attempt| {
        crate::apply::idempotency_key(connection, &address, *attempt)
            .to_string()
            .eq_ignore_ascii_case(id.trim())
    })
}

/// Whether `name` matches `pattern` (`*` any run of characters, `?` one character).
pub use crate::model::wildcard::matches as glob_matches;

/// The objects the next apply prunes, given the whole model and a live state read with
/// [`scan_set`] (objects of listings not scanned are never pruned). Callable without the CLI:
/// `sextant drift` lists these under `pending`.
pub fn prunes(model: &Model, live: &LiveState) -> Pruning {
    let mut pruning = Pruning::default();
    if model.connections.values().all(|c| c.config.prune.is_none()) {
        return pruning;
    }
    let declared = DeclaredReferences::of(model, live);
    // Candidates by address, per connection.
    let mut candidates: BTreeMap<(String, Address), (Arc<LiveObject>, Ownership)> = BTreeMap::new();
    for (connection_name, connection) in &model.connections {
        let Some(policy) = &connection.config.prune else {
            continue;
        };
        for kind in &policy.kinds {
            // What sextant may never delete (VMs) is never pruned.
            if !rules_for(*kind).deletable() {
                continue;
            }
            let objects = live.undeclared(connection_name, *kind);
            let renamed = previous_names(model, connection_name, *kind);
            let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
            for object in objects {
                *counts.entry(object.name.as_str()).or_default() += 1;
            }
            for object in objects {
                let address = Address::new(*kind, object.name.clone());
                let ownership = match &policy.scope {
                    Some(scope) if glob_matches(scope, &object.name) => Ownership::InScope {
                        scope: scope.clone(),
                    },
                    Some(_) => continue,
                    None => match derived_attempt(connection_name, *kind, &object.name, &object.id)
                    {
                        Some(attempt) => Ownership::CreatedBySextant { attempt },
                        None => continue,
                    },
                };
                let keep = |reason: KeptReason| PlanProblem {
                    address: address.clone(),
                    error: PlanError::NotPruned(reason),
                };
                if renamed.contains(object.name.as_str()) {
                    // The rename of the declared resource takes it over.
                    continue;
                }
                if let Some(other) = model.resources.get(&address) {
                    pruning.kept.push(keep(KeptReason::DeclaredElsewhere {
                        address: address.clone(),
                        connection: other.connection.clone(),
                    }));
                    continue;
                }
                if counts[object.name.as_str()] > 1 {
                    pruning.kept.push(keep(KeptReason::NameShared {
                        count: counts[object.name.as_str()],
                        connection: connection_name.clone(),
                    }));
                    continue;
                }
                if let LiveStatus::Busy { activity, .. } = &object.status {
                    // Already going away (an SDDC `DELETING`): nothing to say.
                    if activity.to_ascii_uppercase().contains("DELET") {
                        continue;
                    }
                    pruning.kept.push(keep(KeptReason::Busy {
                        activity: activity.clone(),
                    }));
                    continue;
                }
                if let Some(user) = declared
                    .kept
                    .get(&(connection_name.clone(), address.clone()))
                {
                    pruning
                        .kept
                        .push(keep(KeptReason::NamedByManifest { user: user.clone() }));
                    continue;
                }
                candidates.insert(
                    (connection_name.clone(), address),
                    (Arc::new(object.clone()), ownership),
                );
            }
        }
    }

    // Who refers to what, among the live objects of each connection's scanned listings:
    // (connection, referenced address) -> users.
    let mut undeclared_users: BTreeMap<(String, Address), Vec<Address>> = BTreeMap::new();
    for (connection, kind, objects) in live.undeclared_all() {
        for object in objects {
            for target in referenced(kind, &object.spec.value()) {
                undeclared_users
                    .entry((connection.to_string(), target))
                    .or_default()
                    .push(Address::new(kind, object.name.clone()));
            }
        }
    }
    // An object an undeclared, kept object still uses stays too (to a fixpoint: a target
    // group kept for its job keeps nothing else, but a job kept for its schedule keeps its
    // target group).
    loop {
        let blocked: Vec<((String, Address), Address)> = candidates
            .keys()
            .filter_map(|key| {
                let users = undeclared_users.get(key)?;
                let user = users
                    .iter()
                    .find(|u| !candidates.contains_key(&(key.0.clone(), (*u).clone())))?;
                Some((key.clone(), user.clone()))
            })
            .collect();
        if blocked.is_empty() {
            break;
        }
        for (key, user) in blocked {
            candidates.remove(&key);
            pruning.kept.push(PlanProblem {
                address: key.1.clone(),
                error: PlanError::NotPruned(KeptReason::UsedByUndeclared { user }),
            });
        }
    }

    for ((connection, address), (object, ownership)) in &candidates {
        let refers_to = referenced(address.kind, &object.spec.value())
            .into_iter()
            .filter(|target| candidates.contains_key(&(connection.clone(), target.clone())))
            .collect();
        let declared_users = declared
            .live
            .get(&(connection.clone(), address.clone()))
            .cloned()
            .unwrap_or_default();
        pruning.prunes.push(Prune {
            address: address.clone(),
            connection: connection.clone(),
            object: Arc::clone(object),
            ownership: ownership.clone(),
            refers_to,
            declared_users,
        });
    }
    pruning.kept.sort_by(|a, b| a.address.cmp(&b.address));
    pruning
}

/// The names resources of `kind` on `connection` had before (`previous_names`).
fn previous_names<'m>(model: &'m Model, connection: &str, kind: Kind) -> BTreeSet<&'m str> {
    model
        .resources
        .values()
        .filter(|r| r.address.kind == kind && r.connection == connection)
        .flat_map(|r| r.previous_names.iter().map(String::as_str))
        .collect()
}

/// What declared resources refer to, by (connection, referenced address).
struct DeclaredReferences {
    /// Named after apply too: in the manifest, or, for a field under `ignore_changes`, by
    /// the live object (which apply leaves as it is). The first such resource.
    kept: BTreeMap<(String, Address), Address>,
    /// Named by the live object now (its planned change may move it off).
    live: BTreeMap<(String, Address), Vec<Address>>,
}

impl DeclaredReferences {
    /// One pass over the model (never one per candidate: models hold 100,000 resources).
    fn of(model: &Model, live: &LiveState) -> Self {
        let mut refs = Self {
            kept: BTreeMap::new(),
            live: BTreeMap::new(),
        };
        for resource in model.resources.values() {
            let rules = rules_for(resource.address.kind);
            if rules.named_fields().is_empty() {
                continue;
            }
            let object = match live.get(&resource.address) {
                LiveMatch::Found { object, .. } => Some(object.spec.value()),
                _ => None,
            };
            if let Some(object) = &object {
                for target in referenced(resource.address.kind, object) {
                    refs.live
                        .entry((resource.connection.clone(), target))
                        .or_default()
                        .push(resource.address.clone());
                }
            }
            if resource.ensure != Ensure::Present {
                continue;
            }
            let spec = resource.spec.value();
            for (field, kind) in rules.named_fields() {
                let ignored = resource
                    .lifecycle
                    .ignore_changes
                    .iter()
                    .any(|p| p.strip_prefix("spec.").unwrap_or(p) == *field);
                let source = if ignored {
                    object.as_ref()
                } else {
                    Some(&spec)
                };
                if let Some(name) = source.and_then(|s| s.get(*field)).and_then(|v| v.as_str()) {
                    refs.kept
                        .entry((resource.connection.clone(), Address::new(*kind, name)))
                        .or_insert_with(|| resource.address.clone());
                }
            }
        }
        refs
    }
}

/// A declared resource that refers to `address` on the server (a job to its target group, a
/// schedule to its job).
fn server_user(model: &Model, address: &Address) -> Option<Address> {
    let connection = &model.resources.get(address)?.connection;
    model
        .resources
        .values()
        .filter(|r| &r.connection == connection && r.ensure == Ensure::Present)
        .find(|r| referenced(r.address.kind, &r.spec.value()).contains(address))
        .map(|r| r.address.clone())
}

/// The objects a live spec of `kind` names (a job's target group, a schedule's job).
fn referenced(kind: Kind, spec: &serde_json::Value) -> Vec<Address> {
    rules_for(kind)
        .named_fields()
        .iter()
        .filter_map(|(field, target)| {
            spec.get(*field)
                .and_then(|v| v.as_str())
                .map(|name| Address::new(*target, name))
        })
        .collect()
}

/// Adds a delete per prune to `changes` (not yet ordered), with the edges that order them:
/// an object after the declared changes that move its users off it, before what it uses.
pub fn add_prunes(changes: &mut Vec<ResourceChange>, pruning: &Pruning) {
    let position: BTreeMap<Address, usize> = changes
        .iter()
        .enumerate()
        .map(|(i, c)| (c.address.clone(), i))
        .collect();
    for prune in &pruning.prunes {
        if position.contains_key(&prune.address) {
            // A declared address never is an undeclared object; be safe anyway.
            continue;
        }
        let mut depends_on = prune.refers_to.clone();
        for user in &prune.declared_users {
            match position.get(user).map(|i| &mut changes[*i]) {
                // Deletes run dependants first: the user's delete depends on this object.
                Some(change) if change.action == Action::Delete => {
                    change.depends_on.push(prune.address.clone());
                }
                Some(_) => depends_on.push(user.clone()),
                None => {}
            }
        }
        changes.push(prune.change(depends_on));
    }
}

impl Prune {
    /// The planned delete of the pruned object, after `depends_on`.
    pub fn change(&self, depends_on: Vec<Address>) -> ResourceChange {
        ResourceChange {
            address: self.address.clone(),
            connection: self.connection.clone(),
            action: Action::Delete,
            reason: Some(self.ownership.describe()),
            cause: Some(ActionCause::Pruned),
            fields: diff::all_fields(&self.object.spec.value(), diff::Side::Before),
            unchanged: 0,
            steps: Vec::new(),
            after: None,
            live: Some(Arc::clone(&self.object)),
            task: None,
            attempt: 0,
            depends_on,
        }
    }
}

/// What the executor deletes for a pruned object, which no manifest declares: a resource
/// standing in for it (its live spec, `ensure: absent`). `None` for any other change.
pub fn stand_in(change: &ResourceChange) -> Option<Resource> {
    if change.cause != Some(ActionCause::Pruned) || change.action != Action::Delete {
        return None;
    }
    let live = change.live.as_ref()?;
    Some(Resource {
        address: change.address.clone(),
        connection: change.connection.clone(),
        depends_on: change.depends_on.clone(),
        ensure: Ensure::Absent,
        lifecycle: Default::default(),
        timeouts: Default::default(),
        spec: live.spec.clone(),
        references: Vec::new(),
        named: Vec::new(),
        previous_names: Vec::new(),
        base_dir: Arc::from(std::path::Path::new("")),
        location: Default::default(),
    })
}

/// What guards a plan's destroys.
#[derive(Clone, Debug, Default)]
pub struct DestroyGuards {
    /// `--max-destroy N`; `None`: the Connections' `max_destroy`, else
    /// [`DEFAULT_MAX_DESTROY`].
    pub max_destroy: Option<u32>,
    /// Kinds `--allow-destroy` names (an SDDC is pruned only when `Sddc` is among them).
    pub allow_destroy: BTreeSet<Kind>,
    /// The plan is to be applied now: an SDDC pruned without `--allow-destroy Sddc` is a
    /// problem; otherwise (`plan`) a warning saying what apply will need.
    pub applying: bool,
}

/// The objects `plan` destroys (deletes and replacements).
pub fn destroyed(plan: &Plan) -> impl Iterator<Item = &ResourceChange> {
    plan.changes
        .iter()
        .filter(|c| matches!(c.action, Action::Delete | Action::Replace))
}

/// Adds a problem to `plan` when it destroys more than the guards allow: more objects than
/// the limit, or an SDDC pruned without `--allow-destroy Sddc`.
pub fn check_destroys(plan: &mut Plan, model: &Model, guards: &DestroyGuards) {
    let destroys: Vec<&ResourceChange> = destroyed(plan).collect();
    let Some(first) = destroys.first() else {
        return;
    };
    let (limit, source) = match guards.max_destroy {
        Some(n) => (n, "`--max-destroy`".to_string()),
        None => {
            let connections: BTreeSet<&str> =
                destroys.iter().map(|c| c.connection.as_str()).collect();
            connections
                .iter()
                .map(|name| {
                    match model
                        .connections
                        .get(*name)
                        .and_then(|c| c.config.max_destroy)
                    {
                        Some(n) => (n, format!("`max_destroy` of connection `{name}`")),
                        None => (DEFAULT_MAX_DESTROY, "the default".to_string()),
                    }
                })
                .min_by_key(|(n, _)| *n)
                .unwrap_or((DEFAULT_MAX_DESTROY, "the default".to_string()))
        }
    };
    let count = destroys.len();
    let mut problems = Vec::new();
    if count > limit as usize {
        let pruned = destroys
            .iter()
            .filter(|c| c.cause == Some(ActionCause::Pruned))
            .count();
        problems.push(PlanProblem {
            address: first.address.clone(),
            error: PlanError::TooManyDestroys {
                count,
                pruned,
                limit,
                allowed_by: source,
            },
        });
    }
    let mut warnings = Vec::new();
    for change in &destroys {
        let kind = change.address.kind;
        if change.cause == Some(ActionCause::Pruned)
            && let Some(what) = rules_for(kind).prune_needs_confirmation()
            && !guards.allow_destroy.contains(&kind)
        {
            let found = PlanProblem {
                address: change.address.clone(),
                error: PlanError::PruneUnconfirmed { kind, what },
            };
            if guards.applying {
                problems.push(found);
            } else {
                warnings.push(found);
            }
        }
    }
    plan.problems.extend(problems);
    plan.warnings.extend(warnings);
}

/// Turns the changes of `replace` (`--replace ADDR`) into replacements: an existing object is
/// destroyed and created again even when nothing changed. A resource whose object does not
/// exist is created anyway; `lifecycle.prevent_destroy` refuses.
pub fn force_replacements(plan: &mut Plan, model: &Model, replace: &[Address]) {
    for address in replace {
        let Some(change) = plan.changes.iter_mut().find(|c| &c.address == address) else {
            continue;
        };
        let Some(resource) = model.resources.get(address) else {
            continue;
        };
        let problem = |error: PlanError| PlanProblem {
            address: address.clone(),
            error,
        };
        if resource.ensure == Ensure::Absent {
            plan.problems.push(problem(PlanError::ReplaceAbsent));
            continue;
        }
        if !rules_for(address.kind).creatable() {
            plan.problems.push(problem(PlanError::ReplaceNotCreatable {
                kind: address.kind,
            }));
            continue;
        }
        match change.action {
            Action::NoOp | Action::Update => {}
            // Created, replaced or waited for anyway.
            Action::Create | Action::Replace | Action::Wait | Action::Delete | Action::Rotate => {
                continue;
            }
        }
        if resource.lifecycle.prevent_destroy {
            plan.problems.push(problem(PlanError::ReplacePrevented));
            continue;
        }
        if let Some(user) = server_user(model, address) {
            plan.problems
                .push(problem(PlanError::ReplaceInUse { user }));
            continue;
        }
        change.action = Action::Replace;
        change.cause = Some(ActionCause::Requested);
        change.reason = Some("requested with `--replace`".to_string());
        change.steps.clear();
        if change.fields.is_empty()
            && let Some(after) = &change.after
        {
            change.fields = diff::all_fields(&after.value(), diff::Side::After);
            change.unchanged = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_stars_and_question_marks() {
        assert!(glob_matches("prod-*", "prod-old"));
        assert!(glob_matches("prod-*", "prod-"));
        assert!(!glob_matches("prod-*", "staging-prod-x"));
        assert!(glob_matches("*-tmp", "a b/c-tmp"));
        assert!(glob_matches("a?c", "abc"));
        assert!(!glob_matches("a?c", "ac"));
        assert!(glob_matches("a*b*c", "aXXbYYc"));
        assert!(!glob_matches("a*b*c", "aXXbYY"));
        assert!(glob_matches("exact", "exact"));
        assert!(!glob_matches("exact", "exactly"));
    }

    #[test]
    fn derived_ids_are_recognised_for_their_own_name_only() {
        let address = Address::new(Kind::SaltJob, "prod-old");
        let id = crate::apply::idempotency_key("raas", &address, 2).to_string();
        assert_eq!(
            derived_attempt("raas", Kind::SaltJob, "prod-old", &id),
            Some(2)
        );
        assert_eq!(
            derived_attempt("raas", Kind::SaltJob, &id.to_uppercase(), &id),
            None
        );
        assert_eq!(
            derived_attempt("raas", Kind::SaltJob, "prod-old", &id.to_uppercase()),
            Some(2)
        );
        assert_eq!(
            derived_attempt("raas", Kind::SaltJob, "prod-other", &id),
            None
        );
        assert_eq!(
            derived_attempt("other", Kind::SaltJob, "prod-old", &id),
            None
        );
        // Server-assigned ids are never sextant's, whatever they look like.
        let target =
            crate::apply::idempotency_key("raas", &Address::new(Kind::SaltTarget, "prod-old"), 0)
                .to_string();
        assert_eq!(
            derived_attempt("raas", Kind::SaltTarget, "prod-old", &target),
            None
        );
    }
}
