//! An Aria Automation Config (RaaS) target group: its spec and planning rules.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

use serde_json::{Map, Value};

use super::ResourceKind;
use super::checks::{CheckContext, canonical_access, check_access};
use crate::model::SystemType;
use crate::model::rules::{CompleteObject, EXCLUSIVE_ACCESS, KindRules};

/// The `SaltTarget` kind: what the core knows of it ([`ResourceKind`]) and its planning rules
/// ([`KindRules`]).
pub struct SaltTarget;

impl ResourceKind for SaltTarget {
    const NAME: &'static str = "SaltTarget";
    const SYSTEM: SystemType = SystemType::Raas;
    const ATTRIBUTES: &'static [&'static str] = &["uuid"];
    const DESCRIPTION: &'static str = "An Aria Automation Config target group (raas connection).";
    type Spec = SaltTargetSpec;

    fn check(spec: &SaltTargetSpec, context: &mut dyn CheckContext) {
        for (master, entry) in &spec.tgt {
            if entry.tgt.trim().is_empty() {
                context.error(
                    &["tgt", master, "tgt"],
                    "targeting expression is empty".into(),
                    None,
                );
            }
        }
        if spec.tgt.contains_key("*") && spec.tgt.len() > 1 {
            context.error(
                &["tgt"],
                "`*` (every master) must be the only key of `tgt`".into(),
                None,
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

/// How a target group selects minions.
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum TgtType {
    Compound,
    Glob,
    Grain,
    GrainPcre,
    Pillar,
    PillarPcre,
    List,
    Ipcidr,
    Pcre,
    Node,
}

/// The targeting expression for one master (or `*` for all masters).
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TgtEntry {
    /// Kind of expression: compound, glob, grain, grain_pcre, pillar, pillar_pcre, list,
    /// ipcidr, pcre or node.
    pub tgt_type: TgtType,
    /// The expression, e.g. `G@os:CentOS` (compound) or `web*` (glob).
    pub tgt: String,
}

/// A permission a role may have on a target group.
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TargetPermission {
    /// See the group and its definition.
    Read,
    /// Change the group.
    Write,
    /// Delete the group.
    Delete,
    /// RaaS's `discover` access to the group.
    Discover,
}

/// An Aria Automation Config target group.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SaltTargetSpec {
    /// Description.
    pub desc: Option<String>,
    /// Master id (or `*` for every master) → targeting expression.
    #[schemars(extend("minProperties" = 1))]
    pub tgt: BTreeMap<String, TgtEntry>,
    /// Role name → the permissions it has on the group, e.g. `{Ops: [read, write]}`; a role
    /// given `[]` has none. Roles not named are left alone unless `access_exclusive: true`.
    pub access: Option<BTreeMap<String, Vec<TargetPermission>>>,
    /// Take every permission from roles not named in `access`. Default `false`.
    pub access_exclusive: Option<bool>,
}

/// A target group's `tgt` lists every master it targets: a master dropped from the manifest
/// is removed (`save_target_group` replaces `tgt` whole).
impl KindRules for SaltTarget {
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
