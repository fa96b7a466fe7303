//! `tgt.*`: target groups, their `tgt` validation and the delete/`force` rules.

use super::*;

pub(super) const TARGET_LISTING: Listing<TargetGroup> = Listing {
    sort_fields: &["name", "desc"],
    sort_key: |_, g, field| match field {
        "desc" => &g.desc,
        _ => &g.name,
    },
    uuid: |g| &g.uuid,
    render: |_, g| target_json(g),
};

/// `tgt_type` values the server accepts.
pub const TGT_TYPES: &[&str] = &[
    "compound",
    "glob",
    "grain",
    "grain_pcre",
    "pillar",
    "pillar_pcre",
    "list",
    "ipcidr",
    "pcre",
    "node",
];

/// `metadata.auth` of an object: its owner and per-role access (raas.md §6).
pub(super) fn access_metadata(owner: &Owner, access: &Access) -> Value {
    json!({"auth": {
        "owner": {"username": owner.username, "config_name": owner.config_name, "uuid": owner.uuid},
        "access": access,
    }})
}

/// Whether the caller sees an object with `access` in a listing: one of its roles is
/// `Superuser` or has `read` on the object.
pub(super) fn can_read(call: &Call<'_>, access: &Access) -> bool {
    match call.state.user_roles.get(&call.principal.username) {
        None => true,
        Some(roles) => roles.iter().any(|role| {
            role == SUPERUSER_ROLE
                || access
                    .get(role)
                    .and_then(|perms| perms.get("read"))
                    .copied()
                    .unwrap_or(false)
        }),
    }
}

/// Reads an `access_payload`: role name → either `{permission: bool}` (the shape listings
/// show, and the one a public sseapiclient script sends, raas.md §6) or a list of the
/// permissions granted (D2's docstring: "a list of allowed access types as values"). Every
/// permission is one of `known`; a role given only some gets `false` for the others.
pub(super) fn read_access_payload(payload: &Value, known: &[&str]) -> Result<Access, RpcFault> {
    let Some(roles) = payload.as_object() else {
        return Err(invalid(format!("{payload} is not of type 'object'")));
    };
    let mut access = Access::new();
    for (role, value) in roles {
        if role.trim().is_empty() {
            return Err(invalid("a role name is empty"));
        }
        let granted: Vec<&str> = match value {
            Value::Object(perms) => {
                let mut granted = Vec::new();
                for (perm, on) in perms {
                    check_enum(Some(perm), known)?;
                    match on {
                        Value::Bool(true) => granted.push(perm.as_str()),
                        Value::Bool(false) => {}
                        other => return Err(invalid(format!("{other} is not of type 'boolean'"))),
                    }
                }
                granted
            }
            Value::Array(items) => {
                let mut granted = Vec::new();
                for item in items {
                    let Some(perm) = item.as_str() else {
                        return Err(invalid(format!("{item} is not of type 'string'")));
                    };
                    check_enum(Some(perm), known)?;
                    granted.push(perm);
                }
                granted
            }
            other => {
                return Err(invalid(format!("{other} is not of type 'object', 'array'")));
            }
        };
        let perms = known
            .iter()
            .map(|p| ((*p).to_owned(), granted.contains(p)))
            .collect();
        access.insert(role.clone(), perms);
    }
    Ok(access)
}

/// The name of the target group `uuid` names, when there is one.
pub(super) fn target_name<'a>(state: &'a RaasState, uuid: Option<&str>) -> Option<&'a str> {
    state.target_groups.get(uuid?).map(|g| g.name.as_str())
}

pub(super) fn target_json(group: &TargetGroup) -> Value {
    json!({
        "name": group.name,
        "desc": group.desc,
        "uuid": group.uuid,
        "tgt": group.tgt,
        "pillars": group.pillars,
        "metadata": access_metadata(&group.owner, &group.access),
    })
}

pub(super) fn get_target_group(call: &mut Call<'_>) -> Result<Value, RpcFault> {
    let call: &Call<'_> = call;
    let items: Vec<&TargetGroup> = if let Some(uuid) = call.nonempty("tgt_uuid") {
        call.state
            .target_groups
            .get(uuid)
            .into_iter()
            .filter(|g| can_read(call, &g.access))
            .collect()
    } else {
        let name = call.str("name").map(str::to_owned);
        let desc = call.str("desc").map(str::to_owned);
        let master = call.str("master_id").map(str::to_owned);
        let pillar = call.str("pillar_uuid").map(str::to_owned);
        call.state
            .target_groups
            .values()
            .filter(|g| can_read(call, &g.access))
            .filter(|g| name.as_deref().is_none_or(|n| call.matches(&g.name, n)))
            .filter(|g| desc.as_deref().is_none_or(|d| call.matches(&g.desc, d)))
            .filter(|g| master.as_deref().is_none_or(|m| g.tgt.contains_key(m)))
            .filter(|g| {
                pillar
                    .as_deref()
                    .is_none_or(|p| g.pillars.iter().any(|x| x == p))
            })
            .collect()
    };
    call.page(items, &TARGET_LISTING)
}

pub(super) fn validate_tgt(tgt: &Map<String, Value>) -> Result<(), RpcFault> {
    if tgt.is_empty() {
        return Err(invalid("{} does not have enough properties"));
    }
    if tgt.contains_key("*") && tgt.len() > 1 {
        return Err(invalid(
            "master '*' must be the only key of `tgt` when present",
        ));
    }
    for entry in tgt.values() {
        let Some(entry) = entry.as_object() else {
            return Err(invalid(format!("{entry} is not of type 'object'")));
        };
        for key in entry.keys() {
            if key != "tgt_type" && key != "tgt" {
                return Err(unexpected_properties(&[key]));
            }
        }
        match entry.get("tgt_type") {
            Some(Value::String(t)) => check_enum(Some(t), TGT_TYPES)?,
            Some(other) => return Err(invalid(format!("{other} is not of type 'string'"))),
            None => return Err(invalid("'tgt_type' is a required property")),
        }
        match entry.get("tgt") {
            Some(Value::String(_)) => {}
            Some(Value::Array(items)) if items.iter().all(Value::is_string) => {}
            Some(other) => return Err(invalid(format!("{other} is not of type 'string'"))),
            None => return Err(invalid("'tgt' is a required property")),
        }
    }
    Ok(())
}

/// Checks how a schedule or command names its minions: an inline `tgt` or a `tgt_uuid`,
/// not both.
pub(super) fn check_target_args(call: &Call<'_>) -> Result<(), RpcFault> {
    if call.value("tgt").is_some() && call.value("tgt_uuid").is_some() {
        return Err(invalid("use `tgt` or `tgt_uuid`, not both"));
    }
    if let Some(tgt) = call.value("tgt").and_then(Value::as_object) {
        validate_tgt(tgt)?;
    }
    Ok(())
}

pub(super) fn save_target_group(call: &mut Call<'_>) -> Result<Value, RpcFault> {
    let tgt = call
        .value("tgt")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    validate_tgt(&tgt)?;
    let pillars = call.strings("pillar_uuids");
    let name = call.str("name").map(str::to_owned);
    let desc = call.str("desc").map(str::to_owned);
    if let Some(uuid) = call.nonempty("tgt_uuid").map(str::to_owned) {
        let group = existing_mut(&mut call.state.target_groups, "target group", &uuid)?;
        group.tgt = tgt;
        if let Some(name) = name {
            group.name = name;
        }
        if let Some(desc) = desc {
            group.desc = desc;
        }
        if let Some(pillars) = pillars {
            group.pillars = pillars;
        }
        return Ok(json!(uuid));
    }
    let uuid = uuid::Uuid::new_v4().to_string();
    let group = TargetGroup {
        uuid: uuid.clone(),
        name: name.unwrap_or_default(),
        desc: desc.unwrap_or_default(),
        tgt,
        pillars: pillars.unwrap_or_default(),
        owner: call.owner(),
        access: default_access(TARGET_PERMISSIONS),
    };
    call.state.target_groups.insert(uuid.clone(), group);
    Ok(json!(uuid))
}

pub(super) fn delete_target_group(call: &mut Call<'_>) -> Result<Value, RpcFault> {
    let uuids = call.strings("tgt_uuid").unwrap_or_default();
    let force = call.bool("force").unwrap_or(false);
    for uuid in &uuids {
        require_target(call.state, Some(uuid))?;
    }
    let uses = |t: &Option<String>| t.as_ref().is_some_and(|t| uuids.contains(t));
    let schedules: Vec<(String, String)> = call
        .state
        .schedules
        .values()
        .filter(|s| uses(&s.tgt_uuid))
        .map(|s| (s.uuid.clone(), s.name.clone()))
        .collect();
    let jobs: Vec<(String, String)> = if call.state.options.job_blocks_target_delete {
        call.state
            .jobs
            .values()
            .filter(|j| uses(&j.tgt_uuid))
            .map(|j| (j.uuid.clone(), j.name.clone()))
            .collect()
    } else {
        Vec::new()
    };
    if !force {
        let (dependants_kind, deps) = if schedules.is_empty() {
            ("jobs", &jobs)
        } else {
            ("schedules", &schedules)
        };
        if !deps.is_empty() {
            return Err(RpcFault::Dependency {
                kind: "target group",
                uuid: uuids.join(", "),
                dependants_kind,
                names: deps.iter().map(|(_, n)| format!("`{n}`")).collect(),
                uuids: deps.iter().map(|(u, _)| u.clone()).collect(),
            });
        }
    }
    for (uuid, _) in &schedules {
        call.state.schedules.remove(uuid);
    }
    for job in call.state.jobs.values_mut() {
        if uses(&job.tgt_uuid) {
            job.tgt_uuid = None;
        }
    }
    for uuid in &uuids {
        call.state.target_groups.remove(uuid);
    }
    Ok(Value::Null)
}

pub(super) fn get_target_group_access(call: &mut Call<'_>) -> Result<Value, RpcFault> {
    let uuid = call.str("tgt_uuid").unwrap_or_default().to_owned();
    let group = existing(&call.state.target_groups, "target group", &uuid)?;
    Ok(json!(group.access))
}

/// `tgt.save_target_group_access`: the payload becomes the group's whole access.
pub(super) fn save_target_group_access(call: &mut Call<'_>) -> Result<Value, RpcFault> {
    let uuid = call.str("tgt_uuid").unwrap_or_default().to_owned();
    let payload = call.value("access_payload").cloned().unwrap_or(Value::Null);
    let access = read_access_payload(&payload, TARGET_PERMISSIONS)?;
    existing_mut(&mut call.state.target_groups, "target group", &uuid)?.access = access;
    Ok(json!(uuid))
}
