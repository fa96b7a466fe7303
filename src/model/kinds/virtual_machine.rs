//! An existing vSphere VM: its spec (power state, CPU, memory), how a hardware change is
//! carried out (stop → change → start when allowed), and the power-cycle modes.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use super::checks::CheckContext;
use super::{ResourceKind, typed_specs};
use crate::model::SystemType;
use crate::model::rules::{KindRules, UpdateKind};

/// The `VirtualMachine` kind: what the core knows of it ([`ResourceKind`]) and its planning rules
/// ([`KindRules`]).
pub struct VirtualMachine;

impl ResourceKind for VirtualMachine {
    const NAME: &'static str = "VirtualMachine";
    const SYSTEM: SystemType = SystemType::Vsphere;
    const ATTRIBUTES: &'static [&'static str] = &["vm"];
    const DESCRIPTION: &'static str = "An existing vSphere VM: power state, CPU and memory (vsphere connection). \
         `ensure: absent` is not allowed.";
    type Spec = VirtualMachineSpec;

    /// sextant manages existing VMs only: it never deletes one, nor renames one.
    fn check_document(absent: bool, renamed: bool, context: &mut dyn CheckContext) {
        if absent {
            context.document_error(
                "ensure",
                "`ensure: absent` is not allowed on a `VirtualMachine`: sextant never deletes VMs"
                    .into(),
                Some("remove the document to stop managing the VM".into()),
            );
        }
        if renamed {
            context.document_error(
                "previous_names",
                "a `VirtualMachine` cannot be renamed by sextant: it manages existing VMs only"
                    .into(),
                Some("rename the VM in vCenter, then change `name`".into()),
            );
        }
    }
}

/// Power state of a VM.
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema, PartialEq, Eq)]
pub enum PowerState {
    #[serde(rename = "POWERED_ON")]
    PoweredOn,
    #[serde(rename = "POWERED_OFF")]
    PoweredOff,
    #[serde(rename = "SUSPENDED")]
    Suspended,
}

/// An existing vSphere VM (sextant never creates or deletes VMs).
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VirtualMachineSpec {
    /// `POWERED_ON`, `POWERED_OFF` or `SUSPENDED`.
    pub power_state: Option<PowerState>,
    /// Number of virtual CPUs.
    #[schemars(range(min = 1))]
    pub cpu_count: Option<u32>,
    /// Memory in MiB.
    #[serde(rename = "memory_size_MiB")]
    #[schemars(range(min = 1))]
    pub memory_size_mib: Option<u64>,
    /// Allow a stop → change → start cycle when CPU or memory changes on a running or
    /// suspended VM, and say how the VM stops: `true` (or `graceful`) shuts the guest OS down
    /// through VMware Tools and waits up to `timeouts.update` for the VM to power off;
    /// `hard` powers it off at once; `graceful_or_hard` shuts the guest down, or powers off
    /// hard when VMware Tools is not running. Default `false` (the plan stops with an error
    /// instead).
    pub allow_power_cycle: Option<AllowPowerCycle>,
}

/// `allow_power_cycle`: `true`/`false`, or how to stop the VM.
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(untagged)]
pub enum AllowPowerCycle {
    /// `true`: guest shutdown; `false`: no power cycle.
    Allowed(bool),
    /// How to stop the VM.
    Stop(PowerCycleStop),
}

impl AllowPowerCycle {
    /// The power cycle this setting allows; `None` for `false`.
    pub fn power_cycle(self) -> Option<PowerCycle> {
        match self {
            AllowPowerCycle::Allowed(false) => None,
            AllowPowerCycle::Allowed(true) | AllowPowerCycle::Stop(PowerCycleStop::Graceful) => {
                Some(PowerCycle::Graceful)
            }
            AllowPowerCycle::Stop(PowerCycleStop::GracefulOrHard) => {
                Some(PowerCycle::GracefulOrHard)
            }
            AllowPowerCycle::Stop(PowerCycleStop::Hard) => Some(PowerCycle::Hard),
        }
    }
}

impl VirtualMachineSpec {
    /// The power cycle the spec allows for a CPU or memory change; `None` when it allows none.
    pub fn power_cycle(&self) -> Option<PowerCycle> {
        self.allow_power_cycle
            .and_then(AllowPowerCycle::power_cycle)
    }
}

/// How a power cycle stops the VM.
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum PowerCycleStop {
    /// Shut the guest OS down through VMware Tools (the same as `true`).
    Graceful,
    /// Power off without asking the guest.
    Hard,
    /// Guest shutdown, or a hard power-off when VMware Tools is not running.
    GracefulOrHard,
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

impl KindRules for VirtualMachine {
    fn renames_in_place(&self) -> bool {
        false
    }

    fn local_fields(&self) -> &'static [&'static str] {
        &["allow_power_cycle"]
    }

    fn classify_update(
        &self,
        desired: &Value,
        live: &Value,
        changed: &[String],
    ) -> Result<UpdateKind, String> {
        let (desired, live) = typed_specs::<Self>(desired, live)?;
        let hardware = changed
            .iter()
            .any(|f| f == "cpu_count" || f == "memory_size_MiB");
        let live_power = live.power_state;
        let wanted_power = desired.power_state.or(live_power);
        let mut steps = Vec::new();
        let running = matches!(
            live_power,
            Some(PowerState::PoweredOn | PowerState::Suspended)
        );
        if hardware && running {
            let Some(cycle) = desired.power_cycle() else {
                return Err(
                    "changing `cpu_count` or `memory_size_MiB` needs the VM powered off; set `allow_power_cycle: true` to let sextant shut it down and start it again"
                        .to_string(),
                );
            };
            // A suspended guest cannot shut down: it is resumed first, unless the stop is hard.
            if live_power == Some(PowerState::Suspended) && cycle != PowerCycle::Hard {
                steps.push("start".to_string());
            }
            steps.push(cycle.stop_step().to_string());
            steps.push("change CPU/memory".to_string());
            match wanted_power {
                Some(PowerState::PoweredOn) => steps.push("start".to_string()),
                Some(PowerState::Suspended) => {
                    steps.push("start".to_string());
                    steps.push("suspend".to_string());
                }
                Some(PowerState::PoweredOff) | None => {}
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
