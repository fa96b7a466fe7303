//! `job.*`: saved jobs (upsert by client-chosen UUID) and the delete/`force` rules.

use super::*;

pub(super) const JOB_LISTING: Listing<Job> = Listing {
    sort_fields: &["name", "desc", "cmd", "fun"],
    sort_key: |_, j, field| match field {
        "desc" => &j.desc,
        "cmd" => j.cmd.as_deref().unwrap_or_default(),
        "fun" => j.fun.as_deref().unwrap_or_default(),
        _ => &j.name,
    },
    uuid: |j| &j.uuid,
    render: job_json,
};

/// `cmd` values `save_job` accepts (the schema enum; `ssh` is unverified).
pub const JOB_CMDS: &[&str] = &["cloud", "local", "runner", "wheel"];
/// `cmd` values the list filters and schedules accept.
pub const FILTER_CMDS: &[&str] = &["local", "runner", "wheel", "ssh"];

/// The name of the job `uuid` names, when there is one.
pub(super) fn job_name<'a>(state: &'a RaasState, uuid: Option<&str>) -> Option<&'a str> {
    state.jobs.get(uuid?).map(|j| j.name.as_str())
}

pub(super) fn job_json(state: &RaasState, job: &Job) -> Value {
    let tgt_name = target_name(state, job.tgt_uuid.as_deref());
    json!({
        "uuid": job.uuid,
        "name": job.name,
        "desc": job.desc,
        "cmd": job.cmd,
        "tgt_uuid": job.tgt_uuid,
        "tgt_name": tgt_name,
        "fun": job.fun,
        "arg": job.arg,
        "masters": job.masters,
        "metadata": access_metadata(&job.owner, &job.access),
    })
}

pub(super) fn get_jobs(call: &mut Call<'_>) -> Result<Value, RpcFault> {
    check_enum(call.str("cmd"), FILTER_CMDS)?;
    let call: &Call<'_> = call;
    let items: Vec<&Job> = if let Some(uuid) = call.nonempty("job_uuid") {
        call.state
            .jobs
            .get(uuid)
            .into_iter()
            .filter(|j| can_read(call, &j.access))
            .collect()
    } else {
        let name = call.str("name").map(str::to_owned);
        let desc = call.str("desc").map(str::to_owned);
        let fun = call.str("fun").map(str::to_owned);
        let cmd = call.str("cmd").map(str::to_owned);
        let tgt = call.nonempty("tgt_uuid").map(str::to_owned);
        let no_tgt = call.bool("include_no_tgt_jobs").unwrap_or(false);
        let masters = call.strings("masters");
        call.state
            .jobs
            .values()
            .filter(|j| can_read(call, &j.access))
            .filter(|j| name.as_deref().is_none_or(|n| call.matches(&j.name, n)))
            .filter(|j| desc.as_deref().is_none_or(|d| call.matches(&j.desc, d)))
            .filter(|j| {
                fun.as_deref()
                    .is_none_or(|f| call.matches(j.fun.as_deref().unwrap_or(""), f))
            })
            .filter(|j| cmd.is_none() || j.cmd == cmd)
            .filter(|j| tgt.is_none() || j.tgt_uuid == tgt || (no_tgt && j.tgt_uuid.is_none()))
            .filter(|j| {
                masters
                    .as_ref()
                    .is_none_or(|ms| j.masters.iter().any(|m| ms.contains(m)))
            })
            .collect()
    };
    call.page(items, &JOB_LISTING)
}

pub(super) fn validate_job_arg(arg: &Value) -> Result<(), RpcFault> {
    let Some(arg) = arg.as_object() else {
        return Err(invalid(format!("{arg} is not of type 'object'")));
    };
    for (key, value) in arg {
        match key.as_str() {
            "arg" if value.is_array() || value.is_null() => {}
            "kwarg" if value.is_object() || value.is_null() => {}
            "arg" => return Err(invalid(format!("{value} is not of type 'array'"))),
            "kwarg" => return Err(invalid(format!("{value} is not of type 'object'"))),
            other => return Err(unexpected_properties(&[other])),
        }
    }
    Ok(())
}

/// `NotFound` when `uuid` is given and names no target group.
pub(super) fn require_target(state: &RaasState, uuid: Option<&str>) -> Result<(), RpcFault> {
    if let Some(uuid) = uuid {
        existing(&state.target_groups, "target group", uuid)?;
    }
    Ok(())
}

/// `NotFound` when `uuid` is given and names no job.
pub(super) fn require_job(state: &RaasState, uuid: Option<&str>) -> Result<(), RpcFault> {
    if let Some(uuid) = uuid {
        existing(&state.jobs, "job", uuid)?;
    }
    Ok(())
}

pub(super) fn save_job(call: &mut Call<'_>) -> Result<Value, RpcFault> {
    check_enum(call.str("cmd"), JOB_CMDS)?;
    if let Some(arg) = call.value("arg") {
        validate_job_arg(arg)?;
    }
    let tgt_uuid = call.nonempty("tgt_uuid").map(str::to_owned);
    require_target(call.state, tgt_uuid.as_deref())?;
    let uuid = match call.nonempty("job_uuid") {
        Some(uuid) => uuid::Uuid::parse_str(uuid)
            .map_err(|_| invalid(format!("'{uuid}' is not a 'uuid'")))?
            .to_string(),
        None => uuid::Uuid::new_v4().to_string(),
    };
    let owner = call.owner();
    let name = call.str("name").map(str::to_owned);
    let desc = call.str("desc").map(str::to_owned);
    let cmd = call.str("cmd").map(str::to_owned);
    let fun = call.str("fun").map(str::to_owned);
    let arg = call.value("arg").cloned();
    let masters = call.strings("masters");
    let job = call.state.jobs.entry(uuid.clone()).or_insert_with(|| Job {
        uuid: uuid.clone(),
        arg: json!({"arg": [], "kwarg": {}}),
        owner,
        access: default_access(JOB_PERMISSIONS),
        ..Job::default()
    });
    if let Some(name) = name {
        job.name = name;
    }
    if let Some(desc) = desc {
        job.desc = desc;
    }
    if cmd.is_some() {
        job.cmd = cmd;
    }
    if fun.is_some() {
        job.fun = fun;
    }
    if let Some(arg) = arg {
        job.arg = arg;
    }
    if let Some(masters) = masters {
        job.masters = masters;
    }
    if tgt_uuid.is_some() {
        job.tgt_uuid = tgt_uuid;
    }
    Ok(json!(uuid))
}

pub(super) fn delete_job(call: &mut Call<'_>) -> Result<Value, RpcFault> {
    let uuid = call.str("job_uuid").unwrap_or_default().to_owned();
    let force = call.bool("force").unwrap_or(false);
    require_job(call.state, Some(&uuid))?;
    let dependants: Vec<(String, String)> = call
        .state
        .schedules
        .values()
        .filter(|s| s.job_uuid.as_deref() == Some(uuid.as_str()))
        .map(|s| (s.uuid.clone(), s.name.clone()))
        .collect();
    if !dependants.is_empty() && !force {
        return Err(RpcFault::Dependency {
            kind: "job",
            uuid,
            dependants_kind: "schedules",
            names: dependants.iter().map(|(_, n)| format!("`{n}`")).collect(),
            uuids: dependants.iter().map(|(u, _)| u.clone()).collect(),
        });
    }
    for (schedule, _) in &dependants {
        call.state.schedules.remove(schedule);
    }
    call.state.jobs.remove(&uuid);
    Ok(Value::Null)
}

pub(super) fn get_job_access(call: &mut Call<'_>) -> Result<Value, RpcFault> {
    let uuid = call.str("job_uuid").unwrap_or_default().to_owned();
    let job = existing(&call.state.jobs, "job", &uuid)?;
    Ok(json!(job.access))
}

/// `job.save_job_access`: the payload becomes the job's whole access.
pub(super) fn save_job_access(call: &mut Call<'_>) -> Result<Value, RpcFault> {
    let uuid = call.str("job_uuid").unwrap_or_default().to_owned();
    let payload = call.value("access_payload").cloned().unwrap_or(Value::Null);
    let access = read_access_payload(&payload, JOB_PERMISSIONS)?;
    existing_mut(&mut call.state.jobs, "job", &uuid)?.access = access;
    Ok(json!(uuid))
}
