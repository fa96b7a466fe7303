//! Per-kind planning rules: which fields are local, create-only or force replacement, and
//! what an in-place change of a kind needs. The planner calls these through [`rules_for`]
//! and knows no kind itself, so adding a kind means adding its rules here.

use serde_json::Value;

use super::token_file::{self, TokenState};
use super::{Kind, Resource};
use crate::providers::LiveObject;

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

    /// Whether sextant creates objects of the kind; when not, a declared object that does
    /// not exist is a planning error, not a create that cannot succeed.
    fn creatable(&self) -> bool {
        true
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
    const fn always(path: &'static str) -> Self {
        Self {
            path,
            when: None,
            defaults: &[],
        }
    }
}

/// The rules of `kind`.
pub fn rules_for(kind: Kind) -> &'static dyn KindRules {
    match kind {
        Kind::Sddc => &SddcRules,
        Kind::VirtualMachine => &VirtualMachineRules,
        Kind::VcdApiToken => &VcdApiTokenRules,
        Kind::SaltTarget => &SaltTargetRules,
        Kind::SaltJob => &SaltJobRules,
        Kind::SaltSchedule => &SaltScheduleRules,
        Kind::Connection => &PlainRules,
    }
}

/// Every field can change in place.
struct PlainRules;

impl KindRules for PlainRules {}

/// `access` of a job or target group: roles not named are left alone unless
/// `access_exclusive: true` (a local switch, never on the server) makes the map complete.
const EXCLUSIVE_ACCESS: CompleteObject = CompleteObject {
    path: "access",
    when: Some("access_exclusive"),
    defaults: &[],
};

/// A target group's `tgt` lists every master it targets: a master dropped from the manifest
/// is removed (`save_target_group` replaces `tgt` whole).
struct SaltTargetRules;

impl KindRules for SaltTargetRules {
    fn local_fields(&self) -> &'static [&'static str] {
        &["access_exclusive"]
    }

    fn complete_objects(&self) -> &'static [CompleteObject] {
        const COMPLETE: &[CompleteObject] = &[CompleteObject::always("tgt"), EXCLUSIVE_ACCESS];
        COMPLETE
    }

    fn per_key_fields(&self) -> &'static [&'static str] {
        &["access"]
    }
}

/// A job's `arg` is its whole argument list: positional arguments and keyword arguments
/// dropped from the manifest are removed (`save_job` is sent the whole `arg`).
struct SaltJobRules;

impl KindRules for SaltJobRules {
    fn local_fields(&self) -> &'static [&'static str] {
        &["access_exclusive"]
    }

    fn complete_objects(&self) -> &'static [CompleteObject] {
        const COMPLETE: &[CompleteObject] = &[
            CompleteObject::always("arg"),
            CompleteObject::always("arg.kwarg"),
            EXCLUSIVE_ACCESS,
        ];
        COMPLETE
    }

    fn per_key_fields(&self) -> &'static [&'static str] {
        &["access"]
    }
}

/// A schedule's `schedule` block is its whole timing, and a schedule without `target` has
/// none: keys dropped from the manifest (`cron` after a switch to an interval, `until`, the
/// target) are removed through `schedule.update`'s `delete_fields`.
struct SaltScheduleRules;

impl KindRules for SaltScheduleRules {
    fn complete_objects(&self) -> &'static [CompleteObject] {
        // Defaults of `SchedulerScheduleSchema` (D2, saltstack/raas-mcp
        // `raas_mcp/data/api_discovery.json`, `schedule.save`/`schedule.update`).
        const COMPLETE: &[CompleteObject] = &[CompleteObject {
            path: "schedule",
            when: None,
            defaults: &[("timezone", "\"UTC\""), ("run_on_start", "false")],
        }];
        COMPLETE
    }

    fn cleared_when_absent(&self) -> &'static [&'static str] {
        &["target"]
    }
}

struct SddcRules;

impl KindRules for SddcRules {
    fn create_only_fields(&self) -> &'static [&'static str] {
        &["account_link"]
    }

    fn replace_fields(&self) -> &'static [&'static str] {
        &[
            "region",
            "provider",
            "host_instance_type",
            "deployment_type",
            "vpc_cidr",
            "vxlan_subnet",
            "skip_creating_vxlan",
            "sso_domain",
            "size",
        ]
    }

    fn classify_update(
        &self,
        desired: &Value,
        live: &Value,
        changed: &[String],
    ) -> Result<UpdateKind, String> {
        let mut forced_by: Vec<String> = changed
            .iter()
            .filter(|field| self.replace_fields().contains(&field.as_str()))
            .cloned()
            .collect();
        let mut steps = Vec::new();
        if changed.iter().any(|f| f == "sddc_type") {
            let from = live.get("sddc_type").and_then(Value::as_str).unwrap_or("");
            let to = desired
                .get("sddc_type")
                .and_then(Value::as_str)
                .unwrap_or("");
            let hosts = desired
                .get("num_hosts")
                .and_then(Value::as_u64)
                .or_else(|| live.get("num_hosts").and_then(Value::as_u64));
            match (from, to, hosts) {
                ("1NODE", "DEFAULT", Some(3)) => {
                    steps.push("convert 1NODE to DEFAULT (3 hosts)".to_string())
                }
                ("1NODE", "DEFAULT", Some(2)) => forced_by.push("sddc_type".to_string()),
                ("1NODE", "DEFAULT", _) => {
                    return Err(
                        "a 1NODE SDDC converts in place only to 3 hosts (or is replaced to get 2); set `num_hosts` to 3 or 2"
                            .to_string(),
                    );
                }
                _ => forced_by.push("sddc_type".to_string()),
            }
        } else if changed.iter().any(|f| f == "num_hosts") {
            let from = live.get("num_hosts").and_then(Value::as_u64).unwrap_or(0);
            let to = desired
                .get("num_hosts")
                .and_then(Value::as_u64)
                .unwrap_or(0);
            if to > from {
                steps.push(format!("add {} host(s)", to - from));
            } else {
                steps.push(format!("remove {} host(s)", from - to));
            }
        }
        if forced_by.is_empty() {
            Ok(UpdateKind::InPlace { steps })
        } else {
            forced_by.sort();
            forced_by.dedup();
            Ok(UpdateKind::Replace { forced_by })
        }
    }
}

/// How a VM may be stopped for a CPU or memory change (`allow_power_cycle`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PowerCycle {
    /// `true` or `graceful`: shut the guest OS down through VMware Tools; refuse when Tools
    /// is not running.
    Graceful,
    /// `graceful_or_hard`: shut the guest down, or power the VM off hard when VMware Tools is
    /// not running.
    GracefulOrHard,
    /// `hard`: power the VM off without asking the guest.
    Hard,
}

impl PowerCycle {
    /// The power cycle a desired `VirtualMachine` spec allows; `None` when it allows none.
    pub fn of_spec(spec: &Value) -> Option<PowerCycle> {
        match spec.get("allow_power_cycle")? {
            Value::Bool(true) => Some(PowerCycle::Graceful),
            Value::String(mode) => match mode.as_str() {
                "graceful" => Some(PowerCycle::Graceful),
                "graceful_or_hard" => Some(PowerCycle::GracefulOrHard),
                "hard" => Some(PowerCycle::Hard),
                _ => None,
            },
            _ => None,
        }
    }

    /// How the plan names the stop.
    pub fn stop_step(self) -> &'static str {
        match self {
            PowerCycle::Graceful => "guest shutdown",
            PowerCycle::GracefulOrHard => {
                "guest shutdown (hard power-off if VMware Tools is not running)"
            }
            PowerCycle::Hard => "hard power-off",
        }
    }
}

struct VirtualMachineRules;

impl KindRules for VirtualMachineRules {
    fn local_fields(&self) -> &'static [&'static str] {
        &["allow_power_cycle"]
    }

    fn classify_update(
        &self,
        desired: &Value,
        live: &Value,
        changed: &[String],
    ) -> Result<UpdateKind, String> {
        let hardware = changed
            .iter()
            .any(|f| f == "cpu_count" || f == "memory_size_MiB");
        let live_power = live
            .get("power_state")
            .and_then(Value::as_str)
            .unwrap_or("");
        let wanted_power = desired
            .get("power_state")
            .and_then(Value::as_str)
            .unwrap_or(live_power);
        let mut steps = Vec::new();
        if hardware && (live_power == "POWERED_ON" || live_power == "SUSPENDED") {
            let Some(cycle) = PowerCycle::of_spec(desired) else {
                return Err(
                    "changing `cpu_count` or `memory_size_MiB` needs the VM powered off; set `allow_power_cycle: true` to let sextant shut it down and start it again"
                        .to_string(),
                );
            };
            // A suspended guest cannot shut down: it is resumed first, unless the stop is hard.
            if live_power == "SUSPENDED" && cycle != PowerCycle::Hard {
                steps.push("start".to_string());
            }
            steps.push(cycle.stop_step().to_string());
            steps.push("change CPU/memory".to_string());
            if wanted_power == "POWERED_ON" {
                steps.push("start".to_string());
            } else if wanted_power == "SUSPENDED" {
                steps.push("start".to_string());
                steps.push("suspend".to_string());
            }
        }
        Ok(UpdateKind::InPlace { steps })
    }

    fn deletable(&self) -> bool {
        false
    }

    /// Sextant manages existing VMs only.
    fn creatable(&self) -> bool {
        false
    }
}

struct VcdApiTokenRules;

impl KindRules for VcdApiTokenRules {
    fn local_fields(&self) -> &'static [&'static str] {
        &["file", "rotate_after"]
    }

    fn field_note(&self, field: &str) -> Option<&'static str> {
        match field {
            "file" => Some("the one-time secret is written to this file (mode 0600)"),
            "rotate_after" => Some("a new token replaces this one once the file is this old"),
            _ => None,
        }
    }

    fn local_change(&self, resource: &Resource, live: &LiveObject) -> LocalChange {
        match token_file::token_state(resource, live, chrono::Utc::now()) {
            TokenState::Fine => LocalChange::None,
            TokenState::Lost(message) => LocalChange::Lost(message),
            TokenState::Rotate(rotation) => LocalChange::Rotate {
                steps: rotation.steps(),
                reason: rotation.reason,
            },
        }
    }

    fn local_problem(&self, resource: &Resource) -> Option<String> {
        let file = resource.spec.get("file")?;
        let path = resource.base_dir.join(file.as_str()?);
        if path.exists() {
            None
        } else {
            Some(format!(
                "the token exists on the server but its secret file `{}` is missing: the one-time secret was never written or was removed",
                path.display()
            ))
        }
    }
}

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
            json!({"region": "US_EAST_1"}),
            json!({"region": "US_WEST_2"}),
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
            json!({"num_hosts": 4}),
            json!({"num_hosts": 2}),
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
        let live = json!({"sddc_type": "1NODE", "num_hosts": 1});
        let three = classify(
            Kind::Sddc,
            json!({"sddc_type": "DEFAULT", "num_hosts": 3}),
            live.clone(),
            &["sddc_type", "num_hosts"],
        );
        assert!(matches!(three, Ok(UpdateKind::InPlace { .. })));
        let two = classify(
            Kind::Sddc,
            json!({"sddc_type": "DEFAULT", "num_hosts": 2}),
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
            json!({"sddc_type": "DEFAULT", "num_hosts": 4}),
            live,
            &["sddc_type", "num_hosts"],
        );
        assert!(four.is_err());
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
