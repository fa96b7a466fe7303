//! An Aria Automation Config (RaaS) saved job: its spec and planning rules.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

use serde_json::{Map, Value};

use super::ResourceKind;
use super::checks::{CheckContext, canonical_access, check_access, has_reference};
use crate::model::rules::{CompleteObject, EXCLUSIVE_ACCESS, KindRules};
use crate::model::{Kind, SystemType};

/// The `SaltJob` kind: what the core knows of it ([`ResourceKind`]) and its planning rules
/// ([`KindRules`]).
pub struct SaltJob;

impl ResourceKind for SaltJob {
    const NAME: &'static str = "SaltJob";
    const SYSTEM: SystemType = SystemType::Raas;
    const ATTRIBUTES: &'static [&'static str] = &["uuid"];
    const DESCRIPTION: &'static str = "An Aria Automation Config saved job (raas connection).";
    type Spec = SaltJobSpec;

    fn check(spec: &SaltJobSpec, context: &mut dyn CheckContext) {
        let fun = spec.fun.trim();
        if !has_reference(fun) && (!fun.contains('.') || fun.starts_with('.') || fun.ends_with('.'))
        {
            context.error(
                &["fun"],
                format!("`{fun}` is not a Salt function name"),
                Some("write `module.function`, e.g. `test.ping` or `state.apply`".into()),
            );
        }
        check_access(
            spec.access.as_ref().map(|a| a.keys()),
            spec.access_exclusive,
            context,
        );
    }

    fn canonicalize(spec: &mut Map<String, Value>) {
        canonical_access(spec);
    }
}

/// A permission a role may have on a saved job.
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum JobPermission {
    /// See the job and its definition.
    Read,
    /// Change the job.
    Write,
    /// Delete the job.
    Delete,
    /// RaaS's `discover` access to the job.
    Discover,
    /// Run the job.
    Run,
}

/// Which Salt client runs a job.
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SaltCmd {
    /// Run on minions (default).
    Local,
    /// Run a runner on the masters.
    Runner,
    /// Run a wheel function on the masters.
    Wheel,
}

/// Arguments of a saved job.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JobArgs {
    /// Positional arguments.
    pub arg: Option<Vec<serde_json::Value>>,
    /// Keyword arguments (values may be job-input definitions).
    pub kwarg: Option<serde_json::Map<String, serde_json::Value>>,
}

/// An Aria Automation Config saved job.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SaltJobSpec {
    /// Description.
    pub desc: Option<String>,
    /// `local` (default), `runner` or `wheel`.
    pub cmd: Option<SaltCmd>,
    /// Salt function, e.g. `test.ping` or `state.apply`.
    #[schemars(length(min = 1))]
    pub fun: String,
    /// Arguments: `{arg: [...], kwarg: {...}}`.
    pub arg: Option<JobArgs>,
    /// Master ids that receive runner and wheel commands.
    pub masters: Option<Vec<String>>,
    /// Name of a target group: a declared SaltTarget or one that already exists (such as
    /// `All Minions`).
    pub target: Option<String>,
    /// Role name → the permissions it has on the job, e.g. `{Ops: [read, run]}`; a role given
    /// `[]` has none. Roles not named are left alone unless `access_exclusive: true`.
    pub access: Option<BTreeMap<String, Vec<JobPermission>>>,
    /// Take every permission from roles not named in `access`. Default `false`.
    pub access_exclusive: Option<bool>,
}

/// A job's `arg` is its whole argument list: positional arguments and keyword arguments
/// dropped from the manifest are removed (`save_job` is sent the whole `arg`).
impl KindRules for SaltJob {
    /// `job_uuid` of `save_job` is client-chosen: "given but unknown → a new job is created with that UUID" (raas.md §5).
    fn client_chosen_id(&self) -> bool {
        true
    }

    fn named_fields(&self) -> &'static [(&'static str, Kind)] {
        &[("target", Kind::SaltTarget)]
    }

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
