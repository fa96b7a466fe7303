//! `cmd.*`: routing commands and reading their status.

use super::*;

/// `cmd` values `route_cmd` accepts.
pub(super) const ROUTE_CMDS: &[&str] = &["local", "runner", "wheel"];
/// `disposition` values `route_cmd` accepts.
pub(super) const DISPOSITIONS: &[&str] = &[
    "all-masters",
    "any-in-cluster",
    "any-master",
    "all-in-cluster",
];

pub(super) fn route_cmd(call: &mut Call<'_>) -> Result<Value, RpcFault> {
    check_enum(call.str("cmd"), ROUTE_CMDS)?;
    for d in call.strings("disposition").iter().flatten() {
        check_enum(Some(d), DISPOSITIONS)?;
    }
    check_target_args(call)?;
    let job_uuid = call.nonempty("job_uuid").map(str::to_owned);
    require_job(call.state, job_uuid.as_deref())?;
    require_target(call.state, call.nonempty("tgt_uuid"))?;
    let job = job_uuid.as_ref().and_then(|j| call.state.jobs.get(j));
    let cmd = call
        .str("cmd")
        .map(str::to_owned)
        .or_else(|| job.and_then(|j| j.cmd.clone()));
    let fun = call
        .str("fun")
        .map(str::to_owned)
        .or_else(|| job.and_then(|j| j.fun.clone()));
    if fun.is_none() {
        return Err(invalid("a command needs `job_uuid` or `fun`"));
    }
    if call.value("masters").is_some() && cmd.as_deref() == Some("local") {
        return Err(invalid("`masters` is only for runner and wheel commands"));
    }
    let tgt_uuid = call
        .nonempty("tgt_uuid")
        .map(str::to_owned)
        .or_else(|| job.and_then(|j| j.tgt_uuid.clone()));
    let jid = match call.nonempty("jid") {
        Some(jid) => jid.to_owned(),
        None => {
            let mut jid = call.now.format("%Y%m%d%H%M%S%6f").to_string();
            while call.state.commands.contains_key(&jid) {
                jid = (jid.parse::<u128>().unwrap_or(0) + 1).to_string();
            }
            jid
        }
    };
    let command = Command {
        jid: jid.clone(),
        job_uuid,
        cmd,
        fun,
        tgt_uuid,
        tgt: call.value("tgt").cloned(),
        masters: call.strings("masters"),
        arg: call.value("arg").cloned(),
        user: call.principal.username.clone(),
        start_time: Some(call.now),
    };
    call.state.commands.insert(jid.clone(), command);
    Ok(json!(jid))
}

pub(super) fn get_cmd_status(call: &mut Call<'_>) -> Result<Value, RpcFault> {
    let jids = call.strings("jids").unwrap_or_default();
    Ok(Value::Array(
        jids.iter()
            .filter_map(|jid| call.state.commands.get(jid))
            .map(|c| {
                json!({
                    "jid": c.jid,
                    "state": "completed_all_successful",
                    "fun": c.fun,
                    "user": c.user,
                    "start_time": c.start_time,
                })
            })
            .collect(),
    ))
}
