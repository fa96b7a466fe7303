//! `schedule.*`: schedules, the `SchedulerScheduleSchema` checks and partial updates.

use super::*;

pub(super) const SCHEDULE_LISTING: Listing<Schedule> = Listing {
    sort_fields: &[
        "cmd",
        "fun",
        "tgt_name",
        "job_name",
        "sched_name",
        "next_fire_time",
        "last_fire_time",
        "status",
    ],
    sort_key: |state, s, field| match field {
        "cmd" => s.cmd.as_deref().unwrap_or_default(),
        "fun" => s.fun.as_deref().unwrap_or_default(),
        "tgt_name" => target_name(state, s.tgt_uuid.as_deref()).unwrap_or_default(),
        "job_name" => job_name(state, s.job_uuid.as_deref()).unwrap_or_default(),
        "status" => schedule_state(s),
        // Fire times are not simulated (always null).
        "next_fire_time" | "last_fire_time" => "",
        _ => &s.name,
    },
    uuid: |s| &s.uuid,
    render: schedule_json,
};

/// Keys of `SchedulerScheduleSchema` (`additionalProperties: false`).
pub(super) const SCHEDULE_KEYS: &[&str] = &[
    "seconds",
    "minutes",
    "hours",
    "days",
    "cron",
    "once",
    "once_fmt",
    "when",
    "after",
    "after_fmt",
    "until",
    "until_fmt",
    "range",
    "splay",
    "timezone",
    "maxrunning",
    "jid_include",
    "return_job",
    "run_on_start",
    "skip_explicit",
    "skip_times",
    "skip_times_fmt",
];
/// Smallest interval in seconds a schedule may use.
pub const MIN_SCHEDULE_SECONDS: i64 = 60;
/// Top-level fields `schedule.update` may remove with `delete_fields`; the keys of the
/// `schedule` dict ([`SCHEDULE_KEYS`]) may be removed too.
pub(super) const DELETABLE_FIELDS: &[&str] = &[
    "masters", "cmd", "arg", "tgt", "tgt_uuid", "job_uuid", "fun",
];
/// Schedule states the `state` filter accepts.
pub(super) const SCHEDULE_STATES: &[&str] = &[
    "new",
    "retrieved",
    "skipped",
    "pausing",
    "paused",
    "resumed",
    "resuming",
    "complete",
    "stopping",
    "stopped",
    "disabled",
    "failed",
];

pub(super) fn validate_schedule(schedule: &Map<String, Value>) -> Result<(), RpcFault> {
    reject_unknown_keys(schedule.keys(), |k| SCHEDULE_KEYS.contains(&k))?;
    for (key, minimum) in [
        ("seconds", MIN_SCHEDULE_SECONDS),
        ("minutes", 0),
        ("hours", 0),
        ("days", 0),
        ("maxrunning", 0),
    ] {
        if let Some(value) = schedule.get(key) {
            let Some(n) = value.as_i64() else {
                return Err(invalid(format!("{value} is not of type 'integer'")));
            };
            if n < minimum {
                return Err(invalid(format!(
                    "{n} is less than the minimum of {minimum}"
                )));
            }
        }
    }
    for key in ["cron", "once", "after", "until", "timezone"] {
        if let Some(value) = schedule.get(key).filter(|v| !v.is_string()) {
            return Err(invalid(format!("{value} is not of type 'string'")));
        }
    }
    for (key, required) in [("splay", &["end"][..]), ("range", &["start", "end"][..])] {
        if let Some(value) = schedule.get(key) {
            let Some(obj) = value.as_object() else {
                return Err(invalid(format!("{value} is not of type 'object'")));
            };
            for field in required {
                if !obj.contains_key(*field) {
                    return Err(invalid(format!("'{field}' is a required property")));
                }
            }
        }
    }
    if let Some(when) = schedule.get("when").filter(|v| !v.is_object()) {
        return Err(invalid(format!("{when} is not of type 'object'")));
    }
    Ok(())
}

pub(super) fn schedule_json(state: &RaasState, schedule: &Schedule) -> Value {
    let tgt_name = target_name(state, schedule.tgt_uuid.as_deref());
    let job_name = job_name(state, schedule.job_uuid.as_deref());
    json!({
        "uuid": schedule.uuid,
        "name": schedule.name,
        "schedule": schedule.schedule,
        "enabled": schedule.enabled,
        "state": schedule_state(schedule),
        "function": schedule.function,
        "cmd": schedule.cmd,
        "fun": schedule.fun,
        "arg": schedule.arg,
        "masters": schedule.masters,
        "tgt": schedule.tgt,
        "tgt_uuid": schedule.tgt_uuid,
        "tgt_name": tgt_name,
        "job_uuid": schedule.job_uuid,
        "job_name": job_name,
        "next_fire_time": null,
        "last_fire_time": null,
        "metadata": access_metadata(&schedule.owner, &default_access(TARGET_PERMISSIONS)),
    })
}

pub(super) fn schedule_state(schedule: &Schedule) -> &'static str {
    if schedule.enabled { "new" } else { "disabled" }
}

pub(super) fn schedule_get(call: &mut Call<'_>) -> Result<Value, RpcFault> {
    check_enum(call.str("cmd"), FILTER_CMDS)?;
    let states = call.strings("state");
    for state in states.iter().flatten() {
        check_enum(Some(state), SCHEDULE_STATES)?;
    }
    let uuid = call.nonempty("uuid").map(str::to_owned);
    let names = call.strings("names");
    let job_names = call.strings("job_names");
    let tgt_names = call.strings("tgt_names");
    let masters = call.strings("masters");
    let query = call.str("query").map(str::to_owned);
    let fun = call.str("fun").map(str::to_owned);
    let cmd = call.str("cmd").map(str::to_owned);
    let enabled = call.bool("enabled");
    let tgt = call.value("tgt").cloned();
    let show_past = call.bool("show_past").unwrap_or(false);
    let call: &Call<'_> = call;
    let now = call.now;
    let items: Vec<&Schedule> = call
        .state
        .schedules
        .values()
        .filter(|s| show_past || !lies_in_the_past(s, now))
        .filter(|s| uuid.as_deref().is_none_or(|u| s.uuid == u))
        .filter(|s| names.as_ref().is_none_or(|n| n.contains(&s.name)))
        .filter(|s| query.as_deref().is_none_or(|q| call.matches(&s.name, q)))
        .filter(|s| {
            fun.as_deref()
                .is_none_or(|f| call.matches(s.fun.as_deref().unwrap_or(""), f))
        })
        .filter(|s| cmd.is_none() || s.cmd == cmd)
        .filter(|s| enabled.is_none_or(|e| s.enabled == e))
        .filter(|s| tgt.is_none() || s.tgt == tgt)
        .filter(|s| {
            states
                .as_ref()
                .is_none_or(|st| st.iter().any(|x| x == schedule_state(s)))
        })
        .filter(|s| {
            masters.as_ref().is_none_or(|ms| {
                s.masters
                    .as_ref()
                    .is_some_and(|sm| sm.iter().any(|m| ms.contains(m)))
            })
        })
        .filter(|s| {
            job_names.as_ref().is_none_or(|names| {
                job_name(call.state, s.job_uuid.as_deref())
                    .is_some_and(|n| names.iter().any(|x| x == n))
            })
        })
        .filter(|s| {
            tgt_names.as_ref().is_none_or(|names| {
                target_name(call.state, s.tgt_uuid.as_deref())
                    .is_some_and(|n| names.iter().any(|x| x == n))
            })
        })
        .collect();
    call.page(items, &SCHEDULE_LISTING)
}

/// Whether a schedule lies in the past: its `once` time or its `until` date has passed.
/// `schedule.get` leaves such schedules out unless `show_past` is true (D2, `schedule.get`,
/// `GetSchedulerSchema`: `show_past`, default false, "include entries that were scheduled to
/// run in the past"). Times without an offset are read as UTC: the simulator has no time zone
/// database, so a schedule's `timezone` moves the moment by its offset at most.
pub(super) fn lies_in_the_past(schedule: &Schedule, now: DateTime<Utc>) -> bool {
    ["once", "until"].iter().any(|key| {
        schedule
            .schedule
            .get(*key)
            .and_then(Value::as_str)
            .and_then(schedule_time)
            .is_some_and(|at| at <= now)
    })
}

/// A schedule date-time (ISO 8601, as `dateutil` reads it): with an offset, or without one
/// (then UTC). `None` when it is in another format (`once_fmt`, `until_fmt`).
fn schedule_time(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Some(at.with_timezone(&Utc));
    }
    [
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%d %H:%M:%S",
    ]
    .iter()
    .find_map(|format| chrono::NaiveDateTime::parse_from_str(text, format).ok())
    .or_else(|| {
        chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .ok()
            .and_then(|day| day.and_hms_opt(0, 0, 0))
    })
    .map(|naive| naive.and_utc())
}

/// Checks the references and enums shared by `schedule.save` and `schedule.update`.
pub(super) fn check_schedule_refs(call: &Call<'_>) -> Result<(), RpcFault> {
    check_enum(call.str("cmd"), FILTER_CMDS)?;
    check_target_args(call)?;
    if let Some(schedule) = call.value("schedule").and_then(Value::as_object) {
        validate_schedule(schedule)?;
    }
    require_target(call.state, call.nonempty("tgt_uuid"))?;
    require_job(call.state, call.nonempty("job_uuid"))?;
    Ok(())
}

pub(super) fn schedule_save(call: &mut Call<'_>) -> Result<Value, RpcFault> {
    check_schedule_refs(call)?;
    if call.value("job_uuid").is_none() && call.value("fun").is_none() {
        return Err(invalid("a schedule needs `job_uuid` or `fun`"));
    }
    let uuid = match call.nonempty("uuid") {
        Some(uuid) if call.state.schedules.contains_key(uuid) => uuid.to_owned(),
        Some(uuid) if call.state.options.schedule_save_unknown_uuid_creates => {
            uuid::Uuid::parse_str(uuid)
                .map_err(|_| invalid(format!("'{uuid}' is not a 'uuid'")))?
                .to_string()
        }
        Some(uuid) => {
            return Err(RpcFault::NotFound {
                kind: "schedule",
                uuid: uuid.to_owned(),
            });
        }
        None => uuid::Uuid::new_v4().to_string(),
    };
    let owner = call
        .state
        .schedules
        .get(&uuid)
        .map(|s| s.owner.clone())
        .unwrap_or_else(|| call.owner());
    let schedule = Schedule {
        uuid: uuid.clone(),
        name: call.str("name").unwrap_or_default().to_owned(),
        schedule: call
            .value("schedule")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default(),
        masters: call.strings("masters"),
        cmd: call.str("cmd").map(str::to_owned),
        arg: call.value("arg").cloned(),
        tgt: call.value("tgt").cloned(),
        tgt_uuid: call.nonempty("tgt_uuid").map(str::to_owned),
        job_uuid: call.nonempty("job_uuid").map(str::to_owned),
        fun: call.str("fun").map(str::to_owned),
        function: call.str("function").unwrap_or("job.run").to_owned(),
        enabled: call.bool("enabled").unwrap_or(true),
        owner,
    };
    call.state.schedules.insert(uuid.clone(), schedule);
    Ok(json!(uuid))
}

pub(super) fn schedule_update(call: &mut Call<'_>) -> Result<Value, RpcFault> {
    check_schedule_refs(call)?;
    let Some(uuid) = call.nonempty("uuid").map(str::to_owned) else {
        return Err(invalid("`uuid` names the schedule to update"));
    };
    let delete_fields = call.strings("delete_fields").unwrap_or_default();
    for field in &delete_fields {
        let field = field.as_str();
        if !DELETABLE_FIELDS.contains(&field) && !SCHEDULE_KEYS.contains(&field) {
            let known: Vec<&str> = DELETABLE_FIELDS
                .iter()
                .chain(SCHEDULE_KEYS)
                .copied()
                .collect();
            return Err(not_one_of(field, &known));
        }
    }
    let name = call.str("name").map(str::to_owned);
    let body = call.value("schedule").and_then(Value::as_object).cloned();
    let masters = call.strings("masters");
    let cmd = call.str("cmd").map(str::to_owned);
    let arg = call.value("arg").cloned();
    let tgt = call.value("tgt").cloned();
    let tgt_uuid = call.nonempty("tgt_uuid").map(str::to_owned);
    let job_uuid = call.nonempty("job_uuid").map(str::to_owned);
    let fun = call.str("fun").map(str::to_owned);
    let function = call.str("function").map(str::to_owned);
    let enabled = call.bool("enabled");
    let schedule = existing_mut(&mut call.state.schedules, "schedule", &uuid)?;
    if let Some(name) = name {
        schedule.name = name;
    }
    // A partial update: the `schedule` keys given replace those stored, the others stay
    // until `delete_fields` names them (D2, `schedule.update`, `UpdateSchedulerSchema`:
    // `delete_fields`, "List of fields to remove from the schedule"; README.md "Corrections
    // after the audit").
    if let Some(body) = body {
        schedule.schedule.extend(body);
    }
    if masters.is_some() {
        schedule.masters = masters;
    }
    if cmd.is_some() {
        schedule.cmd = cmd;
    }
    if arg.is_some() {
        schedule.arg = arg;
    }
    if tgt.is_some() {
        schedule.tgt = tgt;
        schedule.tgt_uuid = None;
    }
    if tgt_uuid.is_some() {
        schedule.tgt_uuid = tgt_uuid;
        schedule.tgt = None;
    }
    if job_uuid.is_some() {
        schedule.job_uuid = job_uuid;
    }
    if fun.is_some() {
        schedule.fun = fun;
    }
    if let Some(function) = function {
        schedule.function = function;
    }
    if let Some(enabled) = enabled {
        schedule.enabled = enabled;
    }
    for field in delete_fields {
        match field.as_str() {
            "masters" => schedule.masters = None,
            "cmd" => schedule.cmd = None,
            "arg" => schedule.arg = None,
            "tgt" => schedule.tgt = None,
            "tgt_uuid" => schedule.tgt_uuid = None,
            "job_uuid" => schedule.job_uuid = None,
            "fun" => schedule.fun = None,
            key => {
                schedule.schedule.remove(key);
            }
        }
    }
    Ok(json!(uuid))
}

pub(super) fn schedule_remove(call: &mut Call<'_>) -> Result<Value, RpcFault> {
    let uuid = call.str("uuid").unwrap_or_default().to_owned();
    Ok(json!(call.state.schedules.remove(&uuid).is_some()))
}
