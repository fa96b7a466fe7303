//! Per-kind planning rules: which fields are local, create-only or force replacement, and
//! what an in-place change of a kind needs. The planner calls these through [`rules_for`]
//! and knows no kind itself; each kind implements [`KindRules`] in its own module of
//! [`super::kinds`].

use serde_json::Value;

pub use super::kinds::virtual_machine::PowerCycle;
use super::{Kind, Resource};
use crate::model::live::LiveObject;

/// What a change to existing fields needs, as decided by the kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UpdateKind {
    /// Change in place.
    InPlace {
        /// Steps shown in the plan when the change is more than one call (e.g. a power cycle).
        steps: Vec<String>,
    },
    /// Destroy and create again; the fields named force it.
    Replace { forced_by: Vec<String> },
}

/// Planning rules of one kind.
pub trait KindRules: Sync {
    /// Spec fields that exist only on the sextant side and are never compared.
    fn local_fields(&self) -> &'static [&'static str] {
        &[]
    }

    /// Spec fields the server never returns: sent on create, never diffed.
    fn create_only_fields(&self) -> &'static [&'static str] {
        &[]
    }

    /// Spec fields whose change forces a replacement.
    fn replace_fields(&self) -> &'static [&'static str] {
        &[]
    }

    /// Decides how to carry out a change of `changed` top-level fields from `live` to
    /// `desired` (both canonical spec objects). `Err` is a plan error for this resource.
    fn classify_update(
        &self,
        desired: &Value,
        live: &Value,
        changed: &[String],
    ) -> Result<UpdateKind, String> {
        let _ = (desired, live);
        let forced_by: Vec<String> = changed
            .iter()
            .filter(|field| self.replace_fields().contains(&field.as_str()))
            .cloned()
            .collect();
        if forced_by.is_empty() {
            Ok(UpdateKind::InPlace { steps: Vec::new() })
        } else {
            Ok(UpdateKind::Replace { forced_by })
        }
    }

    /// A note shown beside a field in the text plan (what a local field is for).
    fn field_note(&self, field: &str) -> Option<&'static str> {
        let _ = field;
        None
    }

    /// Objects of the spec the manifest states whole, once it writes their top-level field:
    /// a key the live object has (with a value other than null, `""`, `[]` or `{}`) and the
    /// manifest does not is a change, to be cleared by the update. Other objects compare only
    /// the keys the manifest writes.
    fn complete_objects(&self) -> &'static [CompleteObject] {
        &[]
    }

    /// Top-level fields whose absence from the manifest means "none": a live value is a
    /// change, cleared by the update.
    fn cleared_when_absent(&self) -> &'static [&'static str] {
        &[]
    }

    /// Top-level object fields whose changes are shown key by key (`access.<role>`), where a
    /// key holding an empty value is the same as an absent one.
    fn per_key_fields(&self) -> &'static [&'static str] {
        &[]
    }

    /// Whether the kind can be deleted at all (`ensure: absent`).
    fn deletable(&self) -> bool {
        true
    }

    /// Pruning an object of the kind needs `--allow-destroy <Kind>` when this says what it
    /// destroys (an SDDC's hosts and workloads): without it a plan warns and apply refuses.
    fn prune_needs_confirmation(&self) -> Option<&'static str> {
        None
    }

    /// Whether sextant creates objects of the kind; when not, a declared object that does
    /// not exist is a planning error, not a create that cannot succeed.
    fn creatable(&self) -> bool {
        true
    }

    /// Whether sextant chooses the ids of new objects (derived from connection, kind, name
    /// and attempt), so that the id alone says sextant created an object.
    fn client_chosen_id(&self) -> bool {
        false
    }

    /// Whether an existing object can be given a new name in place (its id kept).
    fn renames_in_place(&self) -> bool {
        true
    }

    /// Spec fields that name another object of the same connection, with its kind: what
    /// must not be pruned while an object still refers to it.
    fn named_fields(&self) -> &'static [(&'static str, Kind)] {
        &[]
    }

    /// Those of [`KindRules::named_fields`] whose object must be declared in the manifests
    /// (the others may name one that exists only on the server).
    fn declared_fields(&self) -> &'static [&'static str] {
        &[]
    }

    /// A file on this machine that holds the object's secret (a VCD token's `spec.file`):
    /// written on create, left in place (with a warning) when the object is deleted.
    fn secret_file(&self, resource: &Resource) -> Option<std::path::PathBuf> {
        let _ = resource;
        None
    }

    /// A problem with the local side of an object that exists on the server (a VCD token
    /// whose one-time secret file is missing). `None` when all is well.
    fn local_problem(&self, resource: &Resource) -> Option<String> {
        let _ = resource;
        None
    }

    /// What the local side of an up-to-date live object needs (a VCD token due for
    /// rotation); asked only when [`KindRules::local_problem`] found none.
    fn local_change(&self, resource: &Resource, live: &LiveObject) -> LocalChange {
        let _ = (resource, live);
        LocalChange::None
    }
}

/// What [`KindRules::local_change`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LocalChange {
    None,
    /// Like [`KindRules::local_problem`]: the local side is lost.
    Lost(String),
    /// Rotate the object's credential ([`crate::plan::Action::Rotate`]).
    Rotate {
        reason: String,
        steps: Vec<String>,
    },
}

/// An object the manifest states whole (see [`KindRules::complete_objects`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CompleteObject {
    /// Dotted path of the object in the spec, e.g. `arg.kwarg`.
    pub path: &'static str,
    /// A boolean spec field that must be `true` for the rule to apply; `None`: always.
    pub when: Option<&'static str>,
    /// Keys a server may fill in with their default (as JSON text) when the manifest leaves
    /// them out: a live key at its default is not a dropped one.
    pub defaults: &'static [(&'static str, &'static str)],
}

impl CompleteObject {
    pub const fn always(path: &'static str) -> Self {
        Self {
            path,
            when: None,
            defaults: &[],
        }
    }
}

/// The rules of `kind` (each kind's module in [`super::kinds`] holds its own).
pub fn rules_for(kind: Kind) -> &'static dyn KindRules {
    kind.rules()
}

/// `access` of a job or target group: roles not named are left alone unless
/// `access_exclusive: true` (a local switch, never on the server) makes the map complete.
pub const EXCLUSIVE_ACCESS: CompleteObject = CompleteObject {
    path: "access",
    when: Some("access_exclusive"),
    defaults: &[],
};

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn classify(
        kind: Kind,
        desired: Value,
        live: Value,
        changed: &[&str],
    ) -> Result<UpdateKind, String> {
        let changed: Vec<String> = changed.iter().map(|s| s.to_string()).collect();
        rules_for(kind).classify_update(&desired, &live, &changed)
    }

    #[test]
    fn sddc_region_forces_replacement() {
        let got = classify(
            Kind::Sddc,
            json!({"region": "US_EAST_1", "num_hosts": 2}),
            json!({"region": "US_WEST_2", "num_hosts": 2}),
            &["region"],
        );
        assert_eq!(
            got,
            Ok(UpdateKind::Replace {
                forced_by: vec!["region".into()]
            })
        );
    }

    #[test]
    fn sddc_host_count_changes_in_place() {
        let got = classify(
            Kind::Sddc,
            json!({"region": "US_WEST_2", "num_hosts": 4}),
            json!({"region": "US_WEST_2", "num_hosts": 2}),
            &["num_hosts"],
        );
        assert_eq!(
            got,
            Ok(UpdateKind::InPlace {
                steps: vec!["add 2 host(s)".into()]
            })
        );
    }

    #[test]
    fn one_node_to_three_hosts_converts_to_two_replaces_else_errors() {
        let live = json!({"region": "US_WEST_2", "sddc_type": "1NODE", "num_hosts": 1});
        let three = classify(
            Kind::Sddc,
            json!({"region": "US_WEST_2", "sddc_type": "DEFAULT", "num_hosts": 3}),
            live.clone(),
            &["sddc_type", "num_hosts"],
        );
        assert!(matches!(three, Ok(UpdateKind::InPlace { .. })));
        let two = classify(
            Kind::Sddc,
            json!({"region": "US_WEST_2", "sddc_type": "DEFAULT", "num_hosts": 2}),
            live.clone(),
            &["sddc_type", "num_hosts"],
        );
        assert_eq!(
            two,
            Ok(UpdateKind::Replace {
                forced_by: vec!["sddc_type".into()]
            })
        );
        let four = classify(
            Kind::Sddc,
            json!({"region": "US_WEST_2", "sddc_type": "DEFAULT", "num_hosts": 4}),
            live.clone(),
            &["sddc_type", "num_hosts"],
        );
        assert!(four.is_err());
        let not_a_spec = classify(Kind::Sddc, json!({"num_hosts": 4}), live, &["num_hosts"]);
        assert!(not_a_spec.is_err_and(|e| e.contains("the desired spec is not a `Sddc` spec")),);
    }

    #[test]
    fn vm_hardware_change_on_running_vm_needs_permission() {
        let live = json!({"power_state": "POWERED_ON", "cpu_count": 2});
        let refused = classify(
            Kind::VirtualMachine,
            json!({"cpu_count": 4}),
            live.clone(),
            &["cpu_count"],
        );
        assert!(refused.unwrap_err().contains("allow_power_cycle"));
        let allowed = classify(
            Kind::VirtualMachine,
            json!({"cpu_count": 4, "allow_power_cycle": true}),
            live.clone(),
            &["cpu_count"],
        );
        assert_eq!(
            allowed,
            Ok(UpdateKind::InPlace {
                steps: vec![
                    "guest shutdown".into(),
                    "change CPU/memory".into(),
                    "start".into()
                ]
            })
        );
        let hard = classify(
            Kind::VirtualMachine,
            json!({"cpu_count": 4, "allow_power_cycle": "hard"}),
            live,
            &["cpu_count"],
        );
        assert_eq!(
            hard,
            Ok(UpdateKind::InPlace {
                steps: vec![
                    "hard power-off".into(),
                    "change CPU/memory".into(),
                    "start".into()
                ]
            })
        );
    }

    #[test]
    fn a_suspended_vm_is_resumed_before_its_guest_shuts_down() {
        let live = json!({"power_state": "SUSPENDED", "memory_size_MiB": 2048});
        let refused = classify(
            Kind::VirtualMachine,
            json!({"memory_size_MiB": 4096}),
            live.clone(),
            &["memory_size_MiB"],
        );
        assert!(refused.unwrap_err().contains("allow_power_cycle"));
        let graceful = classify(
            Kind::VirtualMachine,
            json!({"memory_size_MiB": 4096, "allow_power_cycle": "graceful"}),
            live,
            &["memory_size_MiB"],
        );
        assert_eq!(
            graceful,
            Ok(UpdateKind::InPlace {
                steps: vec![
                    "start".into(),
                    "guest shutdown".into(),
                    "change CPU/memory".into(),
                    "start".into(),
                    "suspend".into()
                ]
            })
        );
    }

    #[test]
    fn vm_hardware_change_on_stopped_vm_needs_no_cycle() {
        let got = classify(
            Kind::VirtualMachine,
            json!({"cpu_count": 4}),
            json!({"power_state": "POWERED_OFF"}),
            &["cpu_count"],
        );
        assert_eq!(got, Ok(UpdateKind::InPlace { steps: vec![] }));
    }
}
