//! Per-role access of target groups and saved jobs (`metadata.auth.access`, raas.md §5–§6):
//! the calls that read and save it, its normalization into the manifest's `access` shape, and
//! the `access_payload` a save sends. Which permissions a kind has is said by its module
//! (`targets`, `jobs`); this one knows no kind.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::{Map, Value, json};

use super::RpcCall;

/// The access calls and permissions of one kind.
pub(super) struct AccessCalls {
    /// The RPC resource (`tgt`, `job`).
    pub resource: &'static str,
    /// `save_target_group_access` / `save_job_access`.
    pub save_method: &'static str,
    /// The listing method that reads one object back by uuid, with its access.
    pub read_method: &'static str,
    /// The key naming the object's uuid in both calls (`tgt_uuid`, `job_uuid`).
    pub uuid_key: &'static str,
    /// Every permission of the kind, sorted as the manifest's canonical form sorts them.
    pub permissions: &'static [&'static str],
}

/// The `access` a manifest asks for, in wire permission names.
#[derive(Clone, Debug)]
pub(super) struct DesiredAccess {
    /// Role → the permissions granted to it (a role given none is listed with none).
    pub roles: BTreeMap<String, Vec<&'static str>>,
    /// `access_exclusive: true`: roles not named lose every permission.
    pub exclusive: bool,
}

impl DesiredAccess {
    /// The access of a typed spec's `access` / `access_exclusive`; `None` without `access`.
    /// `name` gives a permission's wire name.
    pub fn from_spec<P>(
        access: Option<&BTreeMap<String, Vec<P>>>,
        exclusive: Option<bool>,
        name: fn(&P) -> &'static str,
    ) -> Option<Self> {
        Some(DesiredAccess {
            roles: access?
                .iter()
                .map(|(role, granted)| (role.clone(), granted.iter().map(name).collect()))
                .collect(),
            exclusive: exclusive == Some(true),
        })
    }
}

impl AccessCalls {
    /// `job.save_job_access` / `tgt.save_target_group_access` of object `uuid`
    /// (raas.md §5–§6).
    pub fn save_call(&self, uuid: &str, payload: Value) -> RpcCall {
        let mut kwarg = Map::new();
        kwarg.insert(self.uuid_key.into(), json!(uuid));
        kwarg.insert("access_payload".into(), payload);
        RpcCall::new(self.resource, self.save_method, Value::Object(kwarg))
    }

    /// The listing call that reads one object back by uuid, with its access.
    pub fn read_back_call(&self, uuid: &str) -> RpcCall {
        let mut kwarg = Map::new();
        kwarg.insert(self.uuid_key.into(), json!(uuid));
        RpcCall::new(self.resource, self.read_method, Value::Object(kwarg))
    }

    /// `metadata.auth.access` (role → permission → granted, raas.md §6) as the manifest
    /// writes it: role → the sorted permissions granted, roles with none left out.
    pub fn grants(&self, access: &Value) -> Option<RoleGrants> {
        let roles = access.as_object()?;
        let granted = roles
            .iter()
            .filter_map(|(role, perms)| {
                let granted: Vec<String> = self
                    .permissions
                    .iter()
                    .filter(|perm| perms.get(**perm).and_then(Value::as_bool) == Some(true))
                    .map(|perm| perm.to_string())
                    .collect();
                (!granted.is_empty()).then(|| (role.clone(), granted))
            })
            .collect();
        Some(RoleGrants(granted))
    }

    /// [`AccessCalls::grants`] as the spec of a listed object holds it.
    pub fn normalize(&self, access: &Value) -> Option<Value> {
        self.grants(access).map(Value::from)
    }

    /// The `access_payload` of a save: every role of `live` (the normalized live access;
    /// roles not named in `desired` keep theirs, or lose all with `access_exclusive: true`),
    /// with the roles `desired` names put over it, each as `{permission: granted}` for every
    /// permission of the kind (the shape listings show and a public sseapiclient script
    /// sends, raas.md §6).
    pub fn payload(&self, live: Option<&RoleGrants>, desired: &DesiredAccess) -> Value {
        let as_flags = |granted: &[&str]| -> Value {
            Value::Object(
                self.permissions
                    .iter()
                    .map(|perm| (perm.to_string(), json!(granted.contains(perm))))
                    .collect(),
            )
        };
        let mut payload = Map::new();
        for (role, granted) in live.into_iter().flat_map(|live| &live.0) {
            let kept: Vec<&str> = match desired.exclusive {
                true => Vec::new(),
                false => granted.iter().map(String::as_str).collect(),
            };
            payload.insert(role.clone(), as_flags(&kept));
        }
        for (role, granted) in &desired.roles {
            payload.insert(role.clone(), as_flags(granted));
        }
        Value::Object(payload)
    }
}

/// A live object's access: role → the permissions granted to it, in the order the server
/// lists the roles (the order its spec keeps, so that the `access_payload` of a save lists
/// them as they are).
#[derive(Clone, Debug, Default, PartialEq)]
pub(super) struct RoleGrants(pub Vec<(String, Vec<String>)>);

impl From<RoleGrants> for Value {
    fn from(grants: RoleGrants) -> Value {
        Value::Object(
            grants
                .0
                .into_iter()
                .map(|(role, granted)| {
                    let granted = granted.into_iter().map(Value::String).collect();
                    (role, Value::Array(granted))
                })
                .collect(),
        )
    }
}

/// Reads the `access` of a live object's spec (role → permissions), keeping the order of
/// the roles.
impl<'de> Deserialize<'de> for RoleGrants {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Roles;
        impl<'de> Visitor<'de> for Roles {
            type Value = RoleGrants;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map of role to permissions")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RoleGrants, A::Error> {
                let mut roles = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    roles.push(entry);
                }
                Ok(RoleGrants(roles))
            }
        }
        deserializer.deserialize_map(Roles)
    }
}

/// What an update reads of any live object's spec: its `access`, as
/// [`AccessCalls::normalize`] writes it.
#[derive(Debug, Default, serde::Deserialize)]
pub(super) struct LiveAccess {
    pub access: Option<RoleGrants>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const CALLS: AccessCalls = AccessCalls {
        resource: "tgt",
        save_method: "save_target_group_access",
        read_method: "get_target_group",
        uuid_key: "tgt_uuid",
        permissions: &["delete", "read", "write"],
    };

    #[test]
    fn grants_keep_the_role_order_and_round_trip_through_the_spec() {
        let wire = json!({"Ops": {"read": true, "write": true, "delete": false},
            "Admins": {"delete": true}, "Nobody": {"read": false}});
        let spec = CALLS.normalize(&wire).unwrap();
        assert_eq!(
            spec.to_string(),
            r#"{"Ops":["read","write"],"Admins":["delete"]}"#
        );
        let live: LiveAccess = serde_json::from_value(json!({"desc": "", "access": spec})).unwrap();
        assert_eq!(live.access, CALLS.grants(&wire));
    }

    #[test]
    fn payloads_put_the_desired_roles_over_the_live_ones() {
        let live = CALLS.grants(&json!({"Ops": {"read": true}, "Dev": {"write": true}}));
        let desired = DesiredAccess {
            roles: BTreeMap::from([("Ops".to_string(), vec!["delete"])]),
            exclusive: false,
        };
        assert_eq!(
            CALLS.payload(live.as_ref(), &desired).to_string(),
            r#"{"Ops":{"delete":true,"read":false,"write":false},"Dev":{"delete":false,"read":false,"write":true}}"#
        );
        let exclusive = DesiredAccess {
            exclusive: true,
            ..desired
        };
        assert_eq!(
            CALLS.payload(live.as_ref(), &exclusive)["Dev"],
            json!({"delete": false, "read": false, "write": false})
        );
    }
}
