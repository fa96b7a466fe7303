//! Target groups (`tgt`, raas.md §6) as the `SaltTarget` kind: the body of
//! `tgt.save_target_group` built from [`SaltTargetSpec`], and a listed group normalized into
//! the spec shape.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::access::{AccessCalls, DesiredAccess};
use super::{
    ACCESS_KEY, RaasKind, RaasProvider, References, RpcCall, kwarg, live_object, str_field,
};
use crate::model::Kind;
use crate::model::kinds::salt_target::{
    SaltTarget, SaltTargetSpec, TargetPermission, TgtEntry, TgtType,
};
use crate::providers::{LiveObject, ProviderResult};

/// Access of a target group: `tgt.save_target_group_access`, read back with
/// `tgt.get_target_group` (raas.md §6). Permissions `read`, `write`, `discover`, `delete`
/// (raas.md §6), sorted as the manifest's canonical form sorts them.
const ACCESS: AccessCalls = AccessCalls {
    resource: "tgt",
    save_method: "save_target_group_access",
    read_method: "get_target_group",
    uuid_key: "tgt_uuid",
    permissions: &["delete", "discover", "read", "write"],
};

/// The fields of a group `tgt.save_target_group` is sent (raas.md §6).
#[derive(Debug, Serialize)]
struct TargetGroupFields<'a> {
    tgt: BTreeMap<&'a str, Tgt<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    desc: Option<&'a str>,
}

/// One master's targeting expression on the wire, `{tgt_type, tgt}` (raas.md §6).
#[derive(Debug, Serialize)]
struct Tgt<'a> {
    tgt_type: &'static str,
    tgt: &'a str,
}

/// `tgt.save_target_group`: a new group without `tgt_uuid`, an existing one with it.
#[derive(Debug, Serialize)]
struct SaveTargetGroup<'a> {
    name: &'a str,
    #[serde(flatten)]
    fields: TargetGroupFields<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tgt_uuid: Option<&'a str>,
}

/// What an update reads of a live group: its spec, as [`target_object`] writes it.
#[derive(Debug, Deserialize)]
pub(super) struct LiveGroup {
    desc: Option<String>,
}

impl<'a> From<&'a SaltTargetSpec> for TargetGroupFields<'a> {
    fn from(spec: &'a SaltTargetSpec) -> Self {
        TargetGroupFields {
            tgt: spec
                .tgt
                .iter()
                .map(|(master, entry)| (master.as_str(), Tgt::from(entry)))
                .collect(),
            desc: spec.desc.as_deref(),
        }
    }
}

impl<'a> From<&'a TgtEntry> for Tgt<'a> {
    fn from(entry: &'a TgtEntry) -> Self {
        Tgt {
            tgt_type: tgt_type(entry.tgt_type),
            tgt: &entry.tgt,
        }
    }
}

/// A `tgt_type` as the wire spells it (raas.md §6; the manifest spells them the same).
fn tgt_type(tgt_type: TgtType) -> &'static str {
    match tgt_type {
        TgtType::Compound => "compound",
        TgtType::Glob => "glob",
        TgtType::Grain => "grain",
        TgtType::GrainPcre => "grain_pcre",
        TgtType::Pillar => "pillar",
        TgtType::PillarPcre => "pillar_pcre",
        TgtType::List => "list",
        TgtType::Ipcidr => "ipcidr",
        TgtType::Pcre => "pcre",
        TgtType::Node => "node",
    }
}

fn permission(permission: &TargetPermission) -> &'static str {
    match permission {
        TargetPermission::Read => "read",
        TargetPermission::Write => "write",
        TargetPermission::Delete => "delete",
        TargetPermission::Discover => "discover",
    }
}

#[async_trait::async_trait]
impl RaasKind for SaltTarget {
    const KIND: Kind = Kind::SaltTarget;
    const LIST: (&'static str, &'static str) = ("tgt", "get_target_group");
    const CLIENT_CHOSEN_ID: bool = false;
    const ACCESS: Option<&'static AccessCalls> = Some(&ACCESS);
    const WRITTEN_ORDER: &'static [&'static str] = &["tgt"];
    type Live = LiveGroup;

    /// `get_target_group` narrows by one `name` only.
    fn name_filters(names: &[&str]) -> Map<String, Value> {
        match names {
            [name] => Map::from_iter([("name".to_string(), json!(name))]),
            _ => Map::new(),
        }
    }

    fn live_object(item: &Value) -> Option<LiveObject> {
        target_object(item)
    }

    async fn list(provider: &RaasProvider) -> ProviderResult<Vec<LiveObject>> {
        let (resource, method) = Self::LIST;
        provider
            .list_all_map(resource, method, Map::new(), |item| target_object(&item))
            .await
    }

    fn references(_: &SaltTargetSpec) -> Vec<(Kind, &str)> {
        Vec::new()
    }

    fn desired_access(spec: &SaltTargetSpec) -> Option<DesiredAccess> {
        DesiredAccess::from_spec(spec.access.as_ref(), spec.access_exclusive, permission)
    }

    fn create_call(
        name: &str,
        spec: &SaltTargetSpec,
        _id: &str,
        _refs: &References,
    ) -> ProviderResult<RpcCall> {
        save_call(name, spec.into(), None)
    }

    /// `save_target_group` is sent the whole group (whether it keeps omitted fields is
    /// unverified, raas.md §6): the desired fields over the live ones. `tgt` goes whole, so
    /// masters the manifest dropped from it go.
    fn update_call(
        name: &str,
        spec: &SaltTargetSpec,
        live: &LiveGroup,
        uuid: &str,
        _refs: &References,
    ) -> ProviderResult<RpcCall> {
        let mut fields = TargetGroupFields::from(spec);
        fields.desc = fields.desc.or(live.desc.as_deref());
        save_call(name, fields, Some(uuid))
    }

    fn delete_call(uuid: &str) -> RpcCall {
        RpcCall::new(
            "tgt",
            "delete_target_group",
            json!({"tgt_uuid": uuid, "force": false}),
        )
    }
}

fn save_call(
    name: &str,
    fields: TargetGroupFields<'_>,
    tgt_uuid: Option<&str>,
) -> ProviderResult<RpcCall> {
    let body = SaveTargetGroup {
        name,
        fields,
        tgt_uuid,
    };
    Ok(RpcCall::new("tgt", "save_target_group", kwarg(&body)?))
}

/// A listed group in the spec shape.
fn target_object(item: &Value) -> Option<LiveObject> {
    let name = str_field(item, "name")?;
    let uuid = str_field(item, "uuid")?;
    let mut spec = json!({
        "desc": str_field(item, "desc").unwrap_or_default(),
        "tgt": normalize_tgt(item.get("tgt").unwrap_or(&Value::Null)),
    });
    if let Some(access) = item.get(ACCESS_KEY).and_then(|a| ACCESS.normalize(a)) {
        spec["access"] = access;
    }
    Some(live_object(Kind::SaltTarget, name, uuid, spec))
}

/// `tgt` as the manifest writes it: `{master: {tgt_type, tgt}}`.
fn normalize_tgt(tgt: &Value) -> Value {
    let Some(map) = tgt.as_object() else {
        return json!({});
    };
    let entries = map
        .iter()
        .map(|(master, entry)| {
            let mut out = Map::new();
            for key in ["tgt_type", "tgt"] {
                if let Some(value) = entry.get(key).filter(|v| !v.is_null()) {
                    out.insert(key.to_string(), value.clone());
                }
            }
            (master.clone(), Value::Object(out))
        })
        .collect();
    Value::Object(entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::raas::ALL_MINIONS_UUID;

    fn spec(value: Value) -> SaltTargetSpec {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn targets_keep_only_tgt_type_and_tgt() {
        let item = json!({"uuid": ALL_MINIONS_UUID, "name": "All Minions", "desc": "",
            "tgt": {"*": {"tgt_type": "compound", "tgt": "*", "extra": 1}}, "pillars": []});
        let live = target_object(&item).unwrap();
        assert_eq!(
            live.spec,
            json!({"desc": "", "tgt": {"*": {"tgt_type": "compound", "tgt": "*"}}})
        );
        // What an update reads of a live group reads from the spec the listing writes.
        let view: LiveGroup = serde_json::from_value(live.spec.value()).unwrap();
        assert_eq!(view.desc.as_deref(), Some(""));
    }

    #[test]
    fn creates_send_the_spec_in_wire_spelling() {
        let desired = spec(json!({"desc": "d", "access": {"Ops": ["read"]},
            "tgt": {"*": {"tgt": "web-*", "tgt_type": "grain_pcre"}}}));
        let call = SaltTarget::create_call("web", &desired, "key", &References::default()).unwrap();
        assert_eq!(call.name(), "tgt.save_target_group");
        assert_eq!(
            call.kwarg,
            json!({"name": "web", "tgt": {"*": {"tgt_type": "grain_pcre", "tgt": "web-*"}}, "desc": "d"})
        );
    }

    #[test]
    fn updates_send_the_whole_object() {
        let live = serde_json::from_value(
            json!({"desc": "old", "tgt": {"*": {"tgt_type": "glob", "tgt": "a*"}}}),
        )
        .unwrap();
        let desired =
            spec(json!({"desc": "new", "tgt": {"m1": {"tgt_type": "glob", "tgt": "b*"}}}));
        let call =
            SaltTarget::update_call("web", &desired, &live, "g1", &References::default()).unwrap();
        assert_eq!(
            call.kwarg,
            json!({"name": "web", "tgt": {"m1": {"tgt_type": "glob", "tgt": "b*"}}, "desc": "new", "tgt_uuid": "g1"})
        );
        let without_desc = spec(json!({"tgt": {"*": {"tgt_type": "list", "tgt": "a,b"}}}));
        let call =
            SaltTarget::update_call("web", &without_desc, &live, "g1", &References::default())
                .unwrap();
        assert_eq!(
            call.kwarg,
            json!({"name": "web", "tgt": {"*": {"tgt_type": "list", "tgt": "a,b"}}, "desc": "old", "tgt_uuid": "g1"})
        );
    }
}
