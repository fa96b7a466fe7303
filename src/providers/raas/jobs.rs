//! Saved jobs (`job`, raas.md §5) as the `SaltJob` kind: the body of `job.save_job` built
//! from [`SaltJobSpec`], and a listed job normalized into the spec shape.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::access::{AccessCalls, DesiredAccess};
use super::{
    ACCESS_KEY, RaasKind, RaasProvider, References, RpcCall, fingerprint, kwarg, live_object,
    str_field,
};
use crate::model::Kind;
use crate::model::kinds::salt_job::{JobArgs, JobPermission, SaltCmd, SaltJob, SaltJobSpec};
use crate::model::kinds::salt_target::SaltTarget;
use crate::providers::{LiveObject, ProviderResult};

/// Access of a job: `job.save_job_access`, read back with `job.get_jobs` (raas.md §5).
/// Permissions: those of a target group and `run` (the VMware Salt API names the job
/// permissions `job-delete`, `job-read`, `job-run`, `job-write`:
/// developer.broadcom.com/xapis/vmware-salt-raas/latest/permissions.html), sorted.
const ACCESS: AccessCalls = AccessCalls {
    resource: "job",
    save_method: "save_job_access",
    read_method: "get_jobs",
    uuid_key: "job_uuid",
    permissions: &["delete", "discover", "read", "run", "write"],
};

/// The fields of a job `job.save_job` is sent (raas.md §5), and the name of its target
/// group, sent as the group's uuid.
#[derive(Debug, Default, Serialize)]
struct JobFields<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    desc: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cmd: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fun: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    masters: Option<Vec<&'a str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    arg: Option<Arg>,
    #[serde(skip)]
    target: Option<&'a str>,
}

/// A job's `arg` on the wire: always both lists.
#[derive(Debug, Serialize)]
struct Arg {
    arg: Vec<Value>,
    kwarg: Map<String, Value>,
}

/// `job.save_job` with the client-chosen `job_uuid` ("given but unknown → a new job is
/// created with that UUID", raas.md §5).
#[derive(Debug, Serialize)]
struct SaveJob<'a> {
    job_uuid: &'a str,
    name: &'a str,
    #[serde(flatten)]
    fields: JobFields<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tgt_uuid: Option<String>,
}

impl<'a> From<&'a SaltJobSpec> for JobFields<'a> {
    fn from(spec: &'a SaltJobSpec) -> Self {
        JobFields {
            desc: spec.desc.as_deref(),
            cmd: spec.cmd.map(cmd),
            fun: Some(&spec.fun),
            masters: spec
                .masters
                .as_ref()
                .map(|masters| masters.iter().map(String::as_str).collect()),
            arg: spec.arg.as_ref().map(Arg::from),
            target: spec.target.as_deref(),
        }
    }
}

impl From<&JobArgs> for Arg {
    fn from(args: &JobArgs) -> Self {
        Arg {
            arg: args.arg.clone().unwrap_or_default(),
            kwarg: args.kwarg.clone().unwrap_or_default(),
        }
    }
}

/// What an update reads of a live job: its spec, as [`job_object`] writes it (`cmd` and
/// `masters` as the server gives them).
#[derive(Debug, Deserialize)]
pub(super) struct LiveJob {
    desc: Option<String>,
    cmd: Option<String>,
    fun: Option<String>,
    masters: Option<Vec<Value>>,
    arg: Option<LiveArgs>,
    target: Option<String>,
}

/// A live job's `arg`: both lists, always written by [`job_object`].
#[derive(Debug, Deserialize)]
struct LiveArgs {
    arg: Vec<Value>,
    kwarg: Map<String, Value>,
}

impl<'a> From<&'a LiveJob> for JobFields<'a> {
    fn from(live: &'a LiveJob) -> Self {
        JobFields {
            desc: live.desc.as_deref(),
            cmd: live.cmd.as_deref(),
            fun: live.fun.as_deref(),
            masters: live
                .masters
                .as_ref()
                .map(|masters| masters.iter().filter_map(Value::as_str).collect()),
            arg: live.arg.as_ref().map(|arg| Arg {
                arg: arg.arg.clone(),
                kwarg: arg.kwarg.clone(),
            }),
            target: live.target.as_deref(),
        }
    }
}

impl<'a> JobFields<'a> {
    /// These fields, each one absent taken from `other`.
    fn or(self, other: Self) -> Self {
        JobFields {
            desc: self.desc.or(other.desc),
            cmd: self.cmd.or(other.cmd),
            fun: self.fun.or(other.fun),
            masters: self.masters.or(other.masters),
            arg: self.arg.or(other.arg),
            target: self.target.or(other.target),
        }
    }
}

/// A `cmd` as the wire spells it (raas.md §5; the manifest spells them the same).
fn cmd(cmd: SaltCmd) -> &'static str {
    match cmd {
        SaltCmd::Local => "local",
        SaltCmd::Runner => "runner",
        SaltCmd::Wheel => "wheel",
    }
}

fn permission(permission: &JobPermission) -> &'static str {
    match permission {
        JobPermission::Read => "read",
        JobPermission::Write => "write",
        JobPermission::Delete => "delete",
        JobPermission::Discover => "discover",
        JobPermission::Run => "run",
    }
}

#[async_trait::async_trait]
impl RaasKind for SaltJob {
    const KIND: Kind = Kind::SaltJob;
    const LIST: (&'static str, &'static str) = ("job", "get_jobs");
    /// `job_uuid` of `save_job` is client-chosen (raas.md §5).
    const CLIENT_CHOSEN_ID: bool = true;
    const ACCESS: Option<&'static AccessCalls> = Some(&ACCESS);
    type Live = LiveJob;

    /// `get_jobs` narrows by one `name` only.
    fn name_filters(names: &[&str]) -> Map<String, Value> {
        match names {
            [name] => Map::from_iter([("name".to_string(), json!(name))]),
            _ => Map::new(),
        }
    }

    fn live_object(item: &Value) -> Option<LiveObject> {
        job_object(item)
    }

    /// Each page becomes live objects as it arrives. A job names its group by `tgt_name`
    /// (documented); one that carries only `tgt_uuid` is given the group's name from one
    /// listing of the groups, made only when needed; its `target` holds the uuid until then.
    async fn list(provider: &RaasProvider) -> ProviderResult<Vec<LiveObject>> {
        let (resource, method) = Self::LIST;
        let unnamed = AtomicBool::new(false);
        let mut jobs = provider
            .list_all_map(resource, method, Map::new(), |job| {
                if str_field(&job, "tgt_uuid").is_some_and(|u| !u.is_empty())
                    && str_field(&job, "tgt_name").is_none_or(str::is_empty)
                {
                    unnamed.store(true, Ordering::Relaxed);
                }
                job_object(&job)
            })
            .await?;
        if unnamed.into_inner() {
            name_job_targets(&mut jobs, &provider.uuid_names::<SaltTarget>().await?);
        }
        Ok(jobs)
    }

    fn references(spec: &SaltJobSpec) -> Vec<(Kind, &str)> {
        spec.target
            .as_deref()
            .map(|target| (Kind::SaltTarget, target))
            .into_iter()
            .collect()
    }

    /// The target of the updated job: the desired one, else the live one.
    fn update_references<'a>(spec: &'a SaltJobSpec, live: &'a LiveJob) -> Vec<(Kind, &'a str)> {
        spec.target
            .as_deref()
            .or(live.target.as_deref())
            .map(|target| (Kind::SaltTarget, target))
            .into_iter()
            .collect()
    }

    fn desired_access(spec: &SaltJobSpec) -> Option<DesiredAccess> {
        DesiredAccess::from_spec(spec.access.as_ref(), spec.access_exclusive, permission)
    }

    fn create_call(
        name: &str,
        spec: &SaltJobSpec,
        id: &str,
        refs: &References,
    ) -> ProviderResult<RpcCall> {
        save_call(name, id, spec.into(), refs)
    }

    /// `save_job` is sent the whole job (whether it keeps omitted fields is unverified,
    /// raas.md §5): the desired fields over the live ones. `arg` goes whole, so arguments
    /// the manifest dropped from it go.
    fn update_call(
        name: &str,
        spec: &SaltJobSpec,
        live: &LiveJob,
        uuid: &str,
        refs: &References,
    ) -> ProviderResult<RpcCall> {
        let fields = JobFields::from(spec).or(JobFields::from(live));
        save_call(name, uuid, fields, refs)
    }

    fn delete_call(uuid: &str) -> RpcCall {
        RpcCall::new(
            "job",
            "delete_job",
            json!({"job_uuid": uuid, "force": false}),
        )
    }
}

fn save_call(
    name: &str,
    job_uuid: &str,
    fields: JobFields<'_>,
    refs: &References,
) -> ProviderResult<RpcCall> {
    let tgt_uuid = match fields.target {
        Some(target) => Some(refs.uuid(Kind::SaltTarget, target)?),
        None => None,
    };
    let body = SaveJob {
        job_uuid,
        name,
        fields,
        tgt_uuid,
    };
    Ok(RpcCall::new("job", "save_job", kwarg(&body)?))
}

/// A job as the manifest writes it. `target` is the group's name as the reply gives it
/// (`tgt_name`); a reply without the name leaves the group's uuid there, for
/// [`name_job_targets`] to replace, and a job pointing at a deleted group keeps the dangling
/// uuid, shown as drift.
fn job_object(item: &Value) -> Option<LiveObject> {
    let name = str_field(item, "name")?;
    let uuid = str_field(item, "uuid")?;
    let arg = item.get("arg").unwrap_or(&Value::Null);
    // Sized for the eight fields a job has: listings hold 100,000 of them.
    let mut spec = Map::with_capacity(8);
    spec.insert(
        "desc".into(),
        json!(str_field(item, "desc").unwrap_or_default()),
    );
    if let Some(cmd) = str_field(item, "cmd") {
        spec.insert("cmd".into(), json!(cmd));
    }
    if let Some(fun) = str_field(item, "fun") {
        spec.insert("fun".into(), json!(fun));
    }
    spec.insert(
        "arg".into(),
        Value::Object(Map::from_iter([
            (
                "arg".to_string(),
                arg.get("arg")
                    .filter(|v| v.is_array())
                    .cloned()
                    .unwrap_or(json!([])),
            ),
            (
                "kwarg".to_string(),
                arg.get("kwarg")
                    .filter(|v| v.is_object())
                    .cloned()
                    .unwrap_or(json!({})),
            ),
        ])),
    );
    spec.insert(
        "masters".into(),
        item.get("masters")
            .filter(|v| v.is_array())
            .cloned()
            .unwrap_or(json!([])),
    );
    if let Some(tgt_uuid) = str_field(item, "tgt_uuid").filter(|u| !u.is_empty()) {
        let target = str_field(item, "tgt_name")
            .filter(|n| !n.is_empty())
            .unwrap_or(tgt_uuid);
        spec.insert("target".into(), json!(target));
    }
    if let Some(access) = item.get(ACCESS_KEY).and_then(|a| ACCESS.normalize(a)) {
        spec.insert("access".into(), access);
    }
    Some(live_object(Kind::SaltJob, name, uuid, Value::Object(spec)))
}

/// Replaces a job `target` that is a group's uuid (`groups`: uuid → name) with the name.
fn name_job_targets(jobs: &mut [LiveObject], groups: &HashMap<String, String>) {
    for job in jobs {
        let mut spec = job.spec.value();
        let name = str_field(&spec, "target").and_then(|uuid| groups.get(uuid));
        if let Some(name) = name.cloned() {
            spec["target"] = json!(name);
            job.fingerprint = fingerprint(&job.name, &job.id, &spec);
            job.spec = spec.into();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(value: Value) -> SaltJobSpec {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn jobs_normalize_into_the_manifest_shape() {
        let item = json!({
            "uuid": "u1", "name": "ping", "desc": "d", "cmd": "local", "fun": "test.ping",
            "tgt_uuid": "g1", "arg": {"arg": ["a"], "kwarg": null}, "masters": null,
            "metadata": {"auth": {}}
        });
        let groups = HashMap::from([("g1".to_string(), "web".to_string())]);
        let mut live = [job_object(&item).unwrap()];
        name_job_targets(&mut live, &groups);
        let [live] = live;
        assert_eq!(
            live.spec,
            json!({"desc": "d", "cmd": "local", "fun": "test.ping",
                   "arg": {"arg": ["a"], "kwarg": {}}, "masters": [], "target": "web"})
        );
        assert_eq!(live.attributes["uuid"], "u1");
        let moved = job_object(&json!({"uuid": "u1", "name": "ping", "desc": "other"})).unwrap();
        assert_ne!(live.fingerprint, moved.fingerprint);
        // What an update reads of a live job reads from every spec the listing writes.
        for listed in [&live, &moved] {
            let view: LiveJob = serde_json::from_value(listed.spec.value()).unwrap();
            assert!(view.desc.is_some());
        }
    }

    #[test]
    fn creates_name_their_uuid_and_send_both_argument_lists() {
        let desired = spec(
            json!({"fun": "state.apply", "cmd": "runner", "target": "web",
            "arg": {"arg": ["nginx"]}, "masters": ["m1"], "access": {"Ops": ["run"]}}),
        );
        assert_eq!(SaltJob::references(&desired), [(Kind::SaltTarget, "web")]);
        let refs = References::known(&[(Kind::SaltTarget, "web", "g1")]);
        let call = SaltJob::create_call("apply", &desired, "j1", &refs).unwrap();
        assert_eq!(call.name(), "job.save_job");
        assert_eq!(
            call.kwarg,
            json!({"job_uuid": "j1", "name": "apply", "cmd": "runner", "fun": "state.apply",
                   "masters": ["m1"], "arg": {"arg": ["nginx"], "kwarg": {}}, "tgt_uuid": "g1"})
        );
        assert!(SaltJob::create_call("apply", &desired, "j1", &References::default()).is_err());
    }

    #[test]
    fn updates_send_the_desired_fields_over_the_live_ones() {
        let live =
            serde_json::from_value(json!({"desc": "old", "cmd": "local", "fun": "test.ping",
            "arg": {"arg": ["a"], "kwarg": {"k": 1}}, "masters": ["m1"], "target": "web"}))
            .unwrap();
        let desired = spec(json!({"fun": "test.echo", "desc": "new"}));
        assert_eq!(
            SaltJob::update_references(&desired, &live),
            [(Kind::SaltTarget, "web")]
        );
        let refs = References::known(&[(Kind::SaltTarget, "web", "g1")]);
        let call = SaltJob::update_call("ping", &desired, &live, "u1", &refs).unwrap();
        assert_eq!(
            call.kwarg,
            json!({"job_uuid": "u1", "name": "ping", "desc": "new", "cmd": "local",
                   "fun": "test.echo", "masters": ["m1"], "arg": {"arg": ["a"], "kwarg": {"k": 1}},
                   "tgt_uuid": "g1"})
        );
    }
}
