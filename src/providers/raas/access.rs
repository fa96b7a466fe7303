//! Per-role access of target groups and saved jobs (`metadata.auth.access`, raas.md §5–§6):
//! the calls that read and save it, its normalization into the manifest's `access` shape, and
//! the `access_payload` a save sends. Which permissions a kind has is said by its module
//! (`targets`, `jobs`); this one knows no kind.

use std::collections::BTreeMap;

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
    pub fn normalize(&self, access: &Value) -> Option<Value> {
        let roles = access.as_object()?;
        let out: Map<String, Value> = roles
            .iter()
            .filter_map(|(role, perms)| {
                let granted: Vec<Value> = self
                    .permissions
                    .iter()
                    .filter(|perm| perms.get(**perm).and_then(Value::as_bool) == Some(true))
                    .map(|perm| json!(perm))
                    .collect();
                (!granted.is_empty()).then(|| (role.clone(), Value::Array(granted)))
            })
            .collect();
        Some(Value::Object(out))
    }

    /// The `access_payload` of a save: every role of `live` (the normalized live access;
    /// roles not named in `desired` keep theirs, or lose all with `access_exclusive: true`),
    /// with the roles `desired` names put over it, each as `{permission: granted}` for every
    /// permission of the kind (the shape listings show and a public sseapiclient script
    /// sends, raas.md §6).
    pub fn payload(&self, live: Option<&Value>, desired: &DesiredAccess) -> Value {
        let as_flags = |granted: &[&str]| -> Value {
            Value::Object(
                self.permissions
                    .iter()
                    .map(|perm| (perm.to_string(), json!(granted.contains(perm))))
                    .collect(),
            )
        };
        let mut payload = Map::new();
        for (role, granted) in live.and_then(Value::as_object).into_iter().flatten() {
            let kept: Vec<&str> = match desired.exclusive {
                true => Vec::new(),
                false => granted
                    .as_array()
                    .map(|list| list.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default(),
            };
            payload.insert(role.clone(), as_flags(&kept));
        }
        for (role, granted) in &desired.roles {
            payload.insert(role.clone(), as_flags(granted));
        }
        Value::Object(payload)
    }
}
