//! Schedules (`schedule`, raas.md §7) as the `SaltSchedule` kind: the bodies of
//! `schedule.save` and `schedule.update` built from [`SaltScheduleSpec`], and a listed
//! schedule normalized into the spec shape.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::access::AccessCalls;
use super::{RaasKind, RaasProvider, References, RpcCall, kwarg, live_object, str_field};
use crate::model::Kind;
use crate::model::kinds::salt_job::SaltJob;
use crate::model::kinds::salt_schedule::{
    SaltSchedule, SaltScheduleSpec, ScheduleTiming, Splay, Weekly, When,
};
use crate::model::kinds::salt_target::SaltTarget;
use crate::providers::{LiveObject, ProviderResult};

/// `show_past` of every `schedule.get`: without it the server leaves out each schedule whose
/// `once` time or `until` date has passed (D2, `schedule.get`, `GetSchedulerSchema`:
/// `show_past`, default false, "include entries that were scheduled to run in the past"),
/// and a fired `once` schedule would look absent and be created again on every apply.
const SHOW_PAST: bool = true;

/// A schedule's `schedule` on the wire (D2, `SchedulerScheduleSchema` of
/// `schedule.save`/`schedule.update`): the manifest's timing keys, spelled the same.
#[derive(Debug, Serialize)]
struct Timing<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    seconds: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    minutes: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hours: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    days: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cron: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    once: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    when: Option<TimesOfDay<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    after: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    until: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timezone: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    splay: Option<SplayRange>,
    #[serde(skip_serializing_if = "Option::is_none")]
    maxrunning: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    run_on_start: Option<bool>,
}

/// `when`: `{daily: [...]}` or `{weekly: {mon: [...], ...}}`, times as `HH:MM`.
#[derive(Debug, Serialize)]
struct TimesOfDay<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    daily: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    weekly: Option<WeeklyTimes<'a>>,
}

#[derive(Debug, Serialize)]
struct WeeklyTimes<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    mon: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tue: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    wed: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thu: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fri: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sat: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sun: Option<&'a [String]>,
}

/// `splay`: `{start, end}` in seconds.
#[derive(Debug, Serialize)]
struct SplayRange {
    #[serde(skip_serializing_if = "Option::is_none")]
    start: Option<u32>,
    end: u32,
}

impl<'a> From<&'a ScheduleTiming> for Timing<'a> {
    fn from(timing: &'a ScheduleTiming) -> Self {
        Timing {
            seconds: timing.seconds,
            minutes: timing.minutes,
            hours: timing.hours,
            days: timing.days,
            cron: timing.cron.as_deref(),
            once: timing.once.as_deref(),
            when: timing.when.as_ref().map(TimesOfDay::from),
            after: timing.after.as_deref(),
            until: timing.until.as_deref(),
            timezone: timing.timezone.as_deref(),
            splay: timing.splay.as_ref().map(SplayRange::from),
            maxrunning: timing.maxrunning,
            run_on_start: timing.run_on_start,
        }
    }
}

impl<'a> From<&'a When> for TimesOfDay<'a> {
    fn from(when: &'a When) -> Self {
        TimesOfDay {
            daily: when.daily.as_deref(),
            weekly: when.weekly.as_ref().map(WeeklyTimes::from),
        }
    }
}

impl<'a> From<&'a Weekly> for WeeklyTimes<'a> {
    fn from(weekly: &'a Weekly) -> Self {
        WeeklyTimes {
            mon: weekly.mon.as_deref(),
            tue: weekly.tue.as_deref(),
            wed: weekly.wed.as_deref(),
            thu: weekly.thu.as_deref(),
            fri: weekly.fri.as_deref(),
            sat: weekly.sat.as_deref(),
            sun: weekly.sun.as_deref(),
        }
    }
}

impl From<&Splay> for SplayRange {
    fn from(splay: &Splay) -> Self {
        SplayRange {
            start: splay.start,
            end: splay.end,
        }
    }
}

/// `schedule.save` of a new schedule (D2, `schedule.save`).
#[derive(Debug, Serialize)]
struct SaveSchedule<'a> {
    name: &'a str,
    schedule: Timing<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    job_uuid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tgt_uuid: Option<String>,
    /// Default `true` (`SaltScheduleSpec::enabled`).
    enabled: bool,
}

/// `schedule.update` of schedule `uuid`. The update is partial (D2, `schedule.update`,
/// `UpdateSchedulerSchema`: no required field, `delete_fields` "List of fields to remove
/// from the schedule"; README.md "Corrections after the audit"): the desired fields are
/// sent, and every key the live schedule holds that the manifest dropped is named in
/// `delete_fields` — timing keys (`cron` after a switch to an interval, `until`) and the
/// target (`tgt_uuid`) — or its old value would stay live.
#[derive(Debug, Serialize)]
struct UpdateSchedule<'a> {
    uuid: &'a str,
    name: &'a str,
    schedule: Map<String, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    job_uuid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tgt_uuid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    enabled: Option<bool>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    delete_fields: Vec<String>,
}

/// What an update reads of a live schedule: its spec, as [`schedule_object`] writes it.
#[derive(Debug, Deserialize)]
pub(super) struct LiveSchedule {
    /// Every timing key the server holds, known to the manifest or not: each one the
    /// manifest dropped goes in `delete_fields`.
    schedule: Map<String, Value>,
    target: Option<String>,
}

#[async_trait::async_trait]
impl RaasKind for SaltSchedule {
    const KIND: Kind = Kind::SaltSchedule;
    const LIST: (&'static str, &'static str) = ("schedule", "get");
    const CLIENT_CHOSEN_ID: bool = false;
    const ACCESS: Option<&'static AccessCalls> = None;
    const WRITTEN_ORDER: &'static [&'static str] = &["schedule"];
    type Live = LiveSchedule;

    /// `schedule.get` narrows by `names`; `show_past`: fired `once` schedules are hidden
    /// without it (the audit's correction, `api_discovery.json` `schedule.get`).
    fn name_filters(names: &[&str]) -> Map<String, Value> {
        Map::from_iter([
            ("names".to_string(), json!(names)),
            ("show_past".to_string(), json!(SHOW_PAST)),
        ])
    }

    /// Job and target stay uuids unless the item names them.
    fn live_object(item: &Value) -> Option<LiveObject> {
        schedule_object(item, &HashMap::new(), &HashMap::new())
    }

    /// The job and target group of a schedule are named from one listing of each, made
    /// only when some schedule gives a uuid without the name.
    async fn list(provider: &RaasProvider) -> ProviderResult<Vec<LiveObject>> {
        let (resource, method) = Self::LIST;
        let filters = Map::from_iter([("show_past".to_string(), json!(SHOW_PAST))]);
        let schedules = provider.list_all(resource, method, filters).await?;
        let needs = |uuid_key: &str, name_key: &str| {
            schedules.iter().any(|s| {
                str_field(s, uuid_key).is_some_and(|u| !u.is_empty())
                    && str_field(s, name_key).is_none_or(str::is_empty)
            })
        };
        let jobs = if needs("job_uuid", "job_name") {
            provider.uuid_names::<SaltJob>().await?
        } else {
            HashMap::new()
        };
        let groups = if needs("tgt_uuid", "tgt_name") {
            provider.uuid_names::<SaltTarget>().await?
        } else {
            HashMap::new()
        };
        Ok(schedules
            .iter()
            .filter_map(|s| schedule_object(s, &jobs, &groups))
            .collect())
    }

    fn references(spec: &SaltScheduleSpec) -> Vec<(Kind, &str)> {
        let mut references = vec![(Kind::SaltJob, spec.job.as_str())];
        references.extend(spec.target.as_deref().map(|t| (Kind::SaltTarget, t)));
        references
    }

    fn create_call(
        name: &str,
        spec: &SaltScheduleSpec,
        _id: &str,
        refs: &References,
    ) -> ProviderResult<RpcCall> {
        let (job_uuid, tgt_uuid) = reference_uuids(spec, refs)?;
        let body = SaveSchedule {
            name,
            schedule: Timing::from(&spec.schedule),
            job_uuid,
            tgt_uuid,
            enabled: spec.enabled.unwrap_or(true),
        };
        Ok(RpcCall::new("schedule", "save", kwarg(&body)?))
    }

    fn update_call(
        name: &str,
        spec: &SaltScheduleSpec,
        live: &LiveSchedule,
        uuid: &str,
        refs: &References,
    ) -> ProviderResult<RpcCall> {
        let (job_uuid, tgt_uuid) = reference_uuids(spec, refs)?;
        let Value::Object(timing) = kwarg(&Timing::from(&spec.schedule))? else {
            return Err(crate::providers::ProviderError::Invalid(
                "a schedule's timing is not an object".to_string(),
            ));
        };
        let mut delete_fields: Vec<String> = live
            .schedule
            .keys()
            .filter(|key| !timing.contains_key(key.as_str()))
            .cloned()
            .collect();
        if tgt_uuid.is_none() && live.target.is_some() {
            delete_fields.push("tgt_uuid".to_string());
        }
        let body = UpdateSchedule {
            uuid,
            name,
            schedule: timing,
            job_uuid,
            tgt_uuid,
            enabled: spec.enabled,
            delete_fields,
        };
        Ok(RpcCall::new("schedule", "update", kwarg(&body)?))
    }

    fn delete_call(uuid: &str) -> RpcCall {
        RpcCall::new("schedule", "remove", json!({"uuid": uuid}))
    }
}

/// The uuids of the schedule's job and target group.
fn reference_uuids(
    spec: &SaltScheduleSpec,
    refs: &References,
) -> ProviderResult<(Option<String>, Option<String>)> {
    let job = refs.uuid(Kind::SaltJob, &spec.job)?;
    let target = match &spec.target {
        Some(target) => Some(refs.uuid(Kind::SaltTarget, target)?),
        None => None,
    };
    Ok((Some(job), target))
}

/// A reference of a schedule item: `<key>_uuid` mapped through `names`, `<key>_name`, or
/// a nested `{uuid, name}` object under `object_key`.
fn schedule_reference(
    item: &Value,
    prefix: &str,
    object_key: &str,
    names: &HashMap<String, String>,
) -> Option<String> {
    if let Some(name) = str_field(item, &format!("{prefix}_name")).filter(|n| !n.is_empty()) {
        return Some(name.to_string());
    }
    if let Some(uuid) = str_field(item, &format!("{prefix}_uuid")).filter(|u| !u.is_empty()) {
        return Some(names.get(uuid).cloned().unwrap_or_else(|| uuid.to_string()));
    }
    let nested = item.get(object_key)?;
    str_field(nested, "name").map(str::to_string)
}

/// A listed schedule in the spec shape (`jobs`, `groups`: uuid → name).
fn schedule_object(
    item: &Value,
    jobs: &HashMap<String, String>,
    groups: &HashMap<String, String>,
) -> Option<LiveObject> {
    let name = str_field(item, "name")?;
    let uuid = str_field(item, "uuid")?;
    let mut spec = Map::new();
    if let Some(job) = schedule_reference(item, "job", "job", jobs) {
        spec.insert("job".into(), json!(job));
    }
    if let Some(target) = schedule_reference(item, "tgt", "target", groups) {
        spec.insert("target".into(), json!(target));
    }
    let schedule: Map<String, Value> = item
        .get("schedule")
        .and_then(Value::as_object)
        .map(|s| {
            s.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    spec.insert("schedule".into(), Value::Object(schedule));
    spec.insert(
        "enabled".into(),
        json!(item.get("enabled").and_then(Value::as_bool).unwrap_or(true)),
    );
    Some(live_object(
        Kind::SaltSchedule,
        name,
        uuid,
        Value::Object(spec),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(value: Value) -> SaltScheduleSpec {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn schedules_map_uuids_to_names() {
        let item = json!({"uuid": "s1", "name": "nightly", "job_uuid": "j1", "tgt_uuid": "g1",
            "schedule": {"cron": "0 1 * * *", "splay": null}, "enabled": false, "next_fire_time": "x"});
        let jobs = HashMap::from([("j1".to_string(), "ping".to_string())]);
        let groups = HashMap::from([("g1".to_string(), "web".to_string())]);
        let live = schedule_object(&item, &jobs, &groups).unwrap();
        assert_eq!(
            live.spec,
            json!({"job": "ping", "target": "web", "schedule": {"cron": "0 1 * * *"}, "enabled": false})
        );
        // What an update reads of a live schedule reads from every spec the listing writes.
        let bare = schedule_object(&json!({"uuid": "s2", "name": "bare"}), &jobs, &groups).unwrap();
        for listed in [&live, &bare] {
            let view: LiveSchedule = serde_json::from_value(listed.spec.value()).unwrap();
            assert_eq!(view.target.is_some(), listed.name == "nightly");
        }
    }

    #[test]
    fn saves_send_the_timing_and_the_reference_uuids() {
        let desired = spec(json!({"job": "j", "target": "web", "schedule": {
            "when": {"weekly": {"mon": ["03:00"]}}, "splay": {"end": 5}, "timezone": "UTC"}}));
        assert_eq!(
            SaltSchedule::references(&desired),
            [(Kind::SaltJob, "j"), (Kind::SaltTarget, "web")]
        );
        let refs =
            References::known(&[(Kind::SaltJob, "j", "j1"), (Kind::SaltTarget, "web", "g1")]);
        let call = SaltSchedule::create_call("s", &desired, "key", &refs).unwrap();
        assert_eq!(call.name(), "schedule.save");
        assert_eq!(
            call.kwarg,
            json!({"name": "s", "schedule": {"when": {"weekly": {"mon": ["03:00"]}},
                   "timezone": "UTC", "splay": {"end": 5}},
                   "job_uuid": "j1", "tgt_uuid": "g1", "enabled": true})
        );
    }

    #[test]
    fn schedule_updates_name_every_dropped_key_in_delete_fields() {
        let live = serde_json::from_value(json!({"job": "j", "target": "web", "enabled": false,
            "schedule": {"cron": "0 3 * * *", "until": "2099-01-01T00:00", "splay": {"end": 5}}}))
        .unwrap();
        let refs =
            References::known(&[(Kind::SaltJob, "j", "j1"), (Kind::SaltTarget, "web", "g1")]);
        let desired = spec(json!({"job": "j", "schedule": {"minutes": 30, "splay": {"end": 9}}}));
        let call = SaltSchedule::update_call("s", &desired, &live, "s1", &refs).unwrap();
        assert_eq!(call.method, "update");
        assert_eq!(
            call.kwarg,
            json!({"uuid": "s1", "name": "s", "schedule": {"minutes": 30, "splay": {"end": 9}},
                   "job_uuid": "j1", "delete_fields": ["cron", "until", "tgt_uuid"]})
        );
        let kept = spec(json!({"job": "j", "target": "web", "enabled": true,
            "schedule": {"cron": "0 3 * * *"}}));
        let call = SaltSchedule::update_call("s", &kept, &live, "s1", &refs).unwrap();
        assert_eq!(
            call.kwarg,
            json!({"uuid": "s1", "name": "s", "schedule": {"cron": "0 3 * * *"}, "job_uuid": "j1",
                   "tgt_uuid": "g1", "enabled": true, "delete_fields": ["until", "splay"]})
        );
    }
}
