//! The RaaS JSON-RPC methods (`raas.md` §3–§8): the envelope (`arg|args`, `kwarg|kwargs`,
//! `riq`), batching, argument binding against each method's parameter list (unknown
//! keyword arguments are rejected, as the real schemas have `additionalProperties: false`),
//! pagination and the table of methods. The resources themselves live in the submodules:
//! [`targets`] (`tgt`), [`jobs`] (`job`), [`schedules`] (`schedule`), [`commands`] (`cmd`)
//! and [`meta`] (`api`, `test`).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::{
    Access, Command, JOB_PERMISSIONS, Job, Owner, Principal, RaasState, SUPERUSER_ROLE, Schedule,
    TARGET_PERMISSIONS, TargetGroup, default_access,
};

mod commands;
mod jobs;
mod meta;
mod schedules;
mod targets;

use commands::*;
use jobs::*;
use meta::*;
use schedules::*;
use targets::*;

/// Version reported by `api.get_versions`.
pub const RAAS_VERSION: &str = "8.18.0";
/// `rpc-api-version` constant reported by `api.discover`.
pub const RPC_API_VERSION: i64 = 13;
/// `batched_retcode` when every call of a batch succeeded.
pub const BATCH_RETCODE_OK: i64 = 0;
/// `batched_retcode` when at least one call of a batch failed (semantics unverified).
pub const BATCH_RETCODE_FAILED: i64 = 1;

/// The only code real clients name: an internal server error.
pub const CODE_INTERNAL: i64 = 5000;
/// Malformed envelope (chosen; the real code is unverified).
pub const CODE_INVALID_REQUEST: i64 = 4000;
/// Arguments that fail the method's schema (chosen).
pub const CODE_VALIDATION: i64 = 4001;
/// An object named by UUID does not exist (chosen).
pub const CODE_NOT_FOUND: i64 = 4004;
/// Unknown resource or method (chosen).
pub const CODE_METHOD_NOT_FOUND: i64 = 4005;
/// `FailedResourceDependency` (chosen).
pub const CODE_FAILED_DEPENDENCY: i64 = 4009;

/// The codes RPC errors carry; real values are unverified, so they are options.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct ErrorCodes {
    pub internal: i64,
    pub invalid_request: i64,
    pub validation: i64,
    pub not_found: i64,
    pub method_not_found: i64,
    pub failed_dependency: i64,
}

impl Default for ErrorCodes {
    fn default() -> Self {
        Self {
            internal: CODE_INTERNAL,
            invalid_request: CODE_INVALID_REQUEST,
            validation: CODE_VALIDATION,
            not_found: CODE_NOT_FOUND,
            method_not_found: CODE_METHOD_NOT_FOUND,
            failed_dependency: CODE_FAILED_DEPENDENCY,
        }
    }
}

/// Why an RPC call failed; becomes the `error` object of its reply.
#[derive(Debug, thiserror::Error)]
pub enum RpcFault {
    #[error("invalid rpc request: {0}")]
    InvalidRequest(String),
    #[error("unknown rpc method `{resource}.{method}`")]
    MethodNotFound { resource: String, method: String },
    /// Keeps the wording of the JSON Schema validator the real server uses.
    #[error("{0}")]
    Validation(String),
    #[error("{kind} `{uuid}` not found")]
    NotFound { kind: &'static str, uuid: String },
    #[error(
        "FailedResourceDependency: cannot delete {kind} `{uuid}`: {dependants_kind} depend on it: {}; pass force=True to delete them too",
        names.join(", ")
    )]
    Dependency {
        kind: &'static str,
        uuid: String,
        dependants_kind: &'static str,
        names: Vec<String>,
        uuids: Vec<String>,
    },
    #[error("{0}")]
    Internal(String),
}

impl RpcFault {
    fn code(&self, codes: &ErrorCodes) -> i64 {
        match self {
            Self::InvalidRequest(_) => codes.invalid_request,
            Self::MethodNotFound { .. } => codes.method_not_found,
            Self::Validation(_) => codes.validation,
            Self::NotFound { .. } => codes.not_found,
            Self::Dependency { .. } => codes.failed_dependency,
            Self::Internal(_) => codes.internal,
        }
    }

    fn detail(&self) -> Value {
        match self {
            Self::Validation(_) => json!({"exception": "ValidationError"}),
            Self::NotFound { kind, uuid } => {
                json!({"exception": "NotFound", "resource": kind, "uuid": uuid})
            }
            Self::Dependency {
                dependants_kind,
                uuids,
                names,
                ..
            } => json!({
                "exception": "FailedResourceDependency",
                "dependants": {"resource": dependants_kind, "uuids": uuids, "names": names},
            }),
            Self::MethodNotFound { .. } => json!({"exception": "MethodNotFound"}),
            Self::InvalidRequest(_) => json!({"exception": "InvalidRequest"}),
            Self::Internal(_) => json!({"exception": "Exception"}),
        }
    }

    fn to_json(&self, codes: &ErrorCodes) -> Value {
        json!({"code": self.code(codes), "message": self.to_string(), "detail": self.detail()})
    }
}

fn invalid(message: impl Into<String>) -> RpcFault {
    RpcFault::Validation(message.into())
}

/// The object `uuid` names among `objects`, or `NotFound` for a `kind`.
fn existing<'a, T>(
    objects: &'a BTreeMap<String, T>,
    kind: &'static str,
    uuid: &str,
) -> Result<&'a T, RpcFault> {
    objects.get(uuid).ok_or_else(|| RpcFault::NotFound {
        kind,
        uuid: uuid.to_owned(),
    })
}

/// [`existing`], to change the object.
fn existing_mut<'a, T>(
    objects: &'a mut BTreeMap<String, T>,
    kind: &'static str,
    uuid: &str,
) -> Result<&'a mut T, RpcFault> {
    objects.get_mut(uuid).ok_or_else(|| RpcFault::NotFound {
        kind,
        uuid: uuid.to_owned(),
    })
}

/// The JSON type a parameter accepts (besides `null` for optional ones).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Ty {
    Str,
    Bool,
    Int,
    Obj,
    StrList,
    StrOrStrList,
    Any,
}

impl Ty {
    fn accepts(self, value: &Value) -> bool {
        match self {
            Ty::Str => value.is_string(),
            Ty::Bool => value.is_boolean(),
            Ty::Int => value.is_i64() || value.is_u64(),
            Ty::Obj => value.is_object(),
            Ty::StrList => value
                .as_array()
                .is_some_and(|items| items.iter().all(Value::is_string)),
            Ty::StrOrStrList => value.is_string() || Ty::StrList.accepts(value),
            Ty::Any => true,
        }
    }

    fn schema_name(self) -> &'static str {
        match self {
            Ty::Str => "string",
            Ty::Bool => "boolean",
            Ty::Int => "integer",
            Ty::Obj => "object",
            Ty::StrList => "array",
            Ty::StrOrStrList => "string, array",
            Ty::Any => "any",
        }
    }
}

/// One parameter of a method: name, type, and its default as JSON text (`None` = required).
#[derive(Clone, Copy, Debug)]
struct Param {
    name: &'static str,
    ty: Ty,
    default: Option<&'static str>,
}

const fn opt(name: &'static str, ty: Ty, default: &'static str) -> Param {
    Param {
        name,
        ty,
        default: Some(default),
    }
}

const fn req(name: &'static str, ty: Ty) -> Param {
    Param {
        name,
        ty,
        default: None,
    }
}

type Handler = fn(&mut Call<'_>) -> Result<Value, RpcFault>;

/// A method: `resource.method`, its parameters in positional order, a docstring, a handler.
struct Method {
    resource: &'static str,
    method: &'static str,
    params: &'static [Param],
    doc: &'static str,
    handler: Handler,
}

use Ty::{Any, Bool, Int, Obj, Str, StrList, StrOrStrList};

const METHODS: &[Method] = &[
    Method {
        resource: "job",
        method: "get_jobs",
        params: &[
            opt("job_uuid", Str, "null"),
            opt("name", Str, "null"),
            opt("desc", Str, "null"),
            opt("cmd", Str, "null"),
            opt("tgt_uuid", Str, "null"),
            opt("role_uuid", Str, "null"),
            opt("include_no_tgt_jobs", Bool, "false"),
            opt("fun", Str, "null"),
            opt("masters", StrList, "null"),
            opt("sort_by", Str, "null"),
            opt("reverse", Bool, "false"),
            opt("limit", Int, "50"),
            opt("page", Int, "0"),
        ],
        doc: "Return saved jobs matching the filters.",
        handler: get_jobs,
    },
    Method {
        resource: "job",
        method: "save_job",
        params: &[
            opt("name", Str, "null"),
            opt("desc", Str, "null"),
            opt("cmd", Str, "null"),
            opt("fun", Str, "null"),
            opt("arg", Obj, "null"),
            opt("masters", StrList, "null"),
            opt("job_uuid", Str, "null"),
            opt("tgt_uuid", Str, "null"),
        ],
        doc: "Create or update a job.",
        handler: save_job,
    },
    Method {
        resource: "job",
        method: "get_job_access",
        params: &[req("job_uuid", Str)],
        doc: "Return the access metadata of a job.",
        handler: get_job_access,
    },
    Method {
        resource: "job",
        method: "save_job_access",
        params: &[req("job_uuid", Str), req("access_payload", Obj)],
        doc: "Save access metadata for this job.",
        handler: save_job_access,
    },
    Method {
        resource: "job",
        method: "delete_job",
        params: &[req("job_uuid", Str), opt("force", Bool, "false")],
        doc: "Delete a job; with force, also the schedules that use it.",
        handler: delete_job,
    },
    Method {
        resource: "tgt",
        method: "get_target_group",
        params: &[
            opt("tgt_uuid", Str, "null"),
            opt("master_id", Str, "null"),
            opt("pillar_uuid", Str, "null"),
            opt("role_uuid", Str, "null"),
            opt("name", Str, "null"),
            opt("desc", Str, "null"),
            opt("include_pillar_data", Bool, "false"),
            opt("sort_by", Str, "null"),
            opt("reverse", Bool, "false"),
            opt("limit", Int, "50"),
            opt("page", Int, "0"),
        ],
        doc: "Return target groups matching the filters.",
        handler: get_target_group,
    },
    Method {
        resource: "tgt",
        method: "save_target_group",
        params: &[
            req("tgt", Obj),
            opt("name", Str, "null"),
            opt("tgt_uuid", Str, "null"),
            opt("desc", Str, "null"),
            opt("pillar_uuids", StrList, "null"),
            opt("wait_for_match", Bool, "false"),
        ],
        doc: "Create a new or update an existing target group.",
        handler: save_target_group,
    },
    Method {
        resource: "tgt",
        method: "get_target_group_access",
        params: &[req("tgt_uuid", Str)],
        doc: "Return the access metadata of a target group.",
        handler: get_target_group_access,
    },
    Method {
        resource: "tgt",
        method: "save_target_group_access",
        params: &[req("tgt_uuid", Str), req("access_payload", Obj)],
        doc: "Save the access metadata for a target group.",
        handler: save_target_group_access,
    },
    Method {
        resource: "tgt",
        method: "delete_target_group",
        params: &[req("tgt_uuid", StrOrStrList), opt("force", Bool, "false")],
        doc: "Delete target groups; with force, also the scheduled jobs that use them.",
        handler: delete_target_group,
    },
    Method {
        resource: "schedule",
        method: "get",
        params: &[
            opt("names", StrList, "null"),
            opt("show_past", Bool, "false"),
            opt("query", Str, "null"),
            opt("cmd", Str, "null"),
            opt("fun", Str, "null"),
            opt("masters", StrList, "null"),
            opt("tgt", Obj, "null"),
            opt("arg", Any, "false"),
            opt("kwarg", Any, "false"),
            opt("state", StrList, "null"),
            opt("enabled", Bool, "null"),
            opt("uuid", Str, "null"),
            opt("job_names", StrList, "null"),
            opt("tgt_names", StrList, "null"),
            opt("sort_by", Str, "null"),
            opt("reverse", Bool, "false"),
            opt("limit", Int, "50"),
            opt("page", Int, "0"),
            opt("expired", Bool, "null"),
        ],
        doc: "Return the full schedule json structure.",
        handler: schedule_get,
    },
    Method {
        resource: "schedule",
        method: "save",
        params: &[
            req("name", Str),
            req("schedule", Obj),
            opt("masters", StrList, "null"),
            opt("cmd", Str, "null"),
            opt("arg", Obj, "null"),
            opt("tgt", Obj, "null"),
            opt("tgt_uuid", Str, "null"),
            opt("job_uuid", Str, "null"),
            opt("uuid", Str, "null"),
            opt("fun", Str, "null"),
            opt("function", Str, "\"job.run\""),
            opt("enabled", Bool, "true"),
        ],
        doc: "Add/update a component in the schedule.",
        handler: schedule_save,
    },
    Method {
        resource: "schedule",
        method: "update",
        params: &[
            opt("name", Str, "null"),
            opt("schedule", Obj, "null"),
            opt("masters", StrList, "null"),
            opt("cmd", Str, "null"),
            opt("arg", Obj, "null"),
            opt("tgt", Obj, "null"),
            opt("tgt_uuid", Str, "null"),
            opt("job_uuid", Str, "null"),
            opt("uuid", Str, "null"),
            opt("fun", Str, "null"),
            opt("function", Str, "\"job.run\""),
            opt("enabled", Bool, "null"),
            opt("delete_fields", StrList, "null"),
        ],
        doc: "Update parts of a schedule.",
        handler: schedule_update,
    },
    Method {
        resource: "schedule",
        method: "remove",
        params: &[req("uuid", Str)],
        doc: "Remove a schedule by uuid.",
        handler: schedule_remove,
    },
    Method {
        resource: "cmd",
        method: "route_cmd",
        params: &[
            opt("job_uuid", Str, "null"),
            opt("cmd", Str, "null"),
            opt("fun", Str, "null"),
            opt("masters", StrList, "null"),
            opt("arg", Obj, "null"),
            opt("tgt", Obj, "null"),
            opt("tgt_uuid", Str, "null"),
            opt("jid", Str, "null"),
            opt("disposition", StrList, "null"),
        ],
        doc: "Route a command to the masters; returns its jid.",
        handler: route_cmd,
    },
    Method {
        resource: "cmd",
        method: "get_cmd_status",
        params: &[req("jids", StrList)],
        doc: "Return the state of commands by jid.",
        handler: get_cmd_status,
    },
    Method {
        resource: "api",
        method: "get_versions",
        params: &[],
        doc: "Return the versions of the server components.",
        handler: get_versions,
    },
    Method {
        resource: "api",
        method: "discover",
        params: &[opt("include", Any, "null")],
        doc: "Describe the API: methods, constants and error codes.",
        handler: discover,
    },
    Method {
        resource: "test",
        method: "echo",
        params: &[req("message", Any)],
        doc: "Return the message.",
        handler: test_echo,
    },
    Method {
        resource: "test",
        method: "error",
        params: &[],
        doc: "Raise an error.",
        handler: test_error,
    },
    Method {
        resource: "test",
        method: "warnings",
        params: &[],
        doc: "Return a warning.",
        handler: test_warnings,
    },
];

/// Bound arguments of one call, with defaults filled in.
struct Call<'a> {
    state: &'a mut RaasState,
    principal: &'a Principal,
    now: DateTime<Utc>,
    args: BTreeMap<&'static str, Value>,
    warnings: Vec<String>,
}

impl Call<'_> {
    fn value(&self, name: &str) -> Option<&Value> {
        self.args.get(name).filter(|v| !v.is_null())
    }

    fn str(&self, name: &str) -> Option<&str> {
        self.value(name).and_then(Value::as_str)
    }

    /// A string argument where an empty string means "not given".
    fn nonempty(&self, name: &str) -> Option<&str> {
        self.str(name).filter(|s| !s.is_empty())
    }

    fn bool(&self, name: &str) -> Option<bool> {
        self.value(name).and_then(Value::as_bool)
    }

    fn int(&self, name: &str) -> Option<i64> {
        self.value(name).and_then(Value::as_i64)
    }

    fn strings(&self, name: &str) -> Option<Vec<String>> {
        self.value(name).map(|v| match v {
            Value::String(s) => vec![s.clone()],
            Value::Array(items) => items
                .iter()
                .filter_map(|i| i.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        })
    }

    fn owner(&self) -> Owner {
        Owner {
            username: self.principal.username.clone(),
            config_name: self.principal.config_name.clone(),
            uuid: uuid::Uuid::new_v5(
                &uuid::Uuid::NAMESPACE_OID,
                format!("{}/{}", self.principal.config_name, self.principal.username).as_bytes(),
            )
            .to_string(),
        }
    }

    fn matches(&self, haystack: &str, needle: &str) -> bool {
        if self.state.options.filters_ignore_case {
            haystack.to_lowercase().contains(&needle.to_lowercase())
        } else {
            haystack.contains(needle)
        }
    }

    /// Applies `sort_by`/`reverse`/`limit`/`page` and builds `{count, limit, results}`;
    /// only the returned page is rendered, so listing a large estate stays cheap.
    fn page<T>(&self, items: Vec<&T>, listing: &Listing<T>) -> Result<Value, RpcFault> {
        let sort_by = match self.str("sort_by") {
            Some(field) if listing.sort_fields.contains(&field) => field.to_owned(),
            Some(field) => return Err(not_one_of(field, listing.sort_fields)),
            None => "name".to_owned(),
        };
        let limit = self.int("limit").unwrap_or(50);
        if limit < -1 {
            return Err(invalid(format!("{limit} is less than the minimum of -1")));
        }
        let page = self.int("page").unwrap_or(0);
        if page < 0 {
            return Err(invalid(format!("{page} is less than the minimum of 0")));
        }
        let state: &RaasState = self.state;
        let reverse = self.bool("reverse").unwrap_or(false);
        let cap = self.state.options.max_page_limit.max(1);
        let effective = if limit <= 0 {
            cap
        } else {
            u64::try_from(limit).unwrap_or(cap).min(cap)
        };
        let count = items.len();
        let start = u64::try_from(page)
            .unwrap_or(0)
            .saturating_mul(effective)
            .try_into()
            .unwrap_or(usize::MAX)
            .min(count);
        let end = start
            .saturating_add(usize::try_from(effective).unwrap_or(usize::MAX))
            .min(count);
        // Keys are unique (the UUID breaks ties), so selecting the page and sorting only it
        // gives the same page as sorting everything.
        let mut keyed: Vec<((&str, &str), &T)> = items
            .into_iter()
            .map(|item| {
                let key = (
                    (listing.sort_key)(state, item, &sort_by),
                    (listing.uuid)(item),
                );
                (key, item)
            })
            .collect();
        let order = |a: &((&str, &str), &T), b: &((&str, &str), &T)| {
            if reverse {
                b.0.cmp(&a.0)
            } else {
                a.0.cmp(&b.0)
            }
        };
        if start < count {
            keyed.select_nth_unstable_by(start, order);
            let rest = &mut keyed[start..];
            let len = end - start;
            if len < rest.len() {
                rest.select_nth_unstable_by(len, order);
            }
            rest[..len].sort_unstable_by(order);
        }
        let results: Vec<Value> = keyed[start..end]
            .iter()
            .map(|(_, item)| (listing.render)(state, item))
            .collect();
        Ok(object([
            ("count", json!(count)),
            ("limit", json!(effective)),
            ("results", Value::Array(results)),
        ]))
    }
}

/// A JSON object of `entries`, moved in (no copy of the values).
fn object<const N: usize>(entries: [(&str, Value); N]) -> Value {
    Value::Object(
        entries
            .into_iter()
            .map(|(key, value)| (key.to_string(), value))
            .collect(),
    )
}

/// How a list method sorts and renders its objects.
struct Listing<T> {
    /// Accepted `sort_by` values (`name` is the default order).
    sort_fields: &'static [&'static str],
    /// The text an object sorts by for a `sort_by` value (compared as is, then by UUID).
    sort_key: for<'a> fn(&'a RaasState, &'a T, &str) -> &'a str,
    uuid: fn(&T) -> &str,
    render: fn(&RaasState, &T) -> Value,
}

/// Names quoted and joined the way the schema validator lists them: `'a', 'b'`.
fn quoted_list(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("'{n}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn not_one_of(value: &str, allowed: &[&str]) -> RpcFault {
    invalid(format!(
        "'{value}' is not one of [{}]",
        quoted_list(allowed)
    ))
}

/// The error for keys a schema with `additionalProperties: false` does not list.
fn unexpected_properties(keys: &[&str]) -> RpcFault {
    let verb = if keys.len() == 1 { "was" } else { "were" };
    invalid(format!(
        "Additional properties are not allowed ({} {verb} unexpected)",
        quoted_list(keys)
    ))
}

/// Refuses, in one error, every key of `given` that `known` does not accept.
fn reject_unknown_keys<'a>(
    given: impl IntoIterator<Item = &'a String>,
    known: impl Fn(&str) -> bool,
) -> Result<(), RpcFault> {
    let unknown: Vec<&str> = given
        .into_iter()
        .map(String::as_str)
        .filter(|k| !known(k))
        .collect();
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(unexpected_properties(&unknown))
    }
}

fn check_enum(value: Option<&str>, allowed: &[&str]) -> Result<(), RpcFault> {
    match value {
        Some(v) if !allowed.contains(&v) => Err(not_one_of(v, allowed)),
        _ => Ok(()),
    }
}

/// Methods that change the state (the others only read it).
const MUTATING: &[(&str, &str)] = &[
    ("job", "save_job"),
    ("job", "save_job_access"),
    ("job", "delete_job"),
    ("tgt", "save_target_group"),
    ("tgt", "save_target_group_access"),
    ("tgt", "delete_target_group"),
    ("schedule", "save"),
    ("schedule", "update"),
    ("schedule", "remove"),
    ("cmd", "route_cmd"),
];

/// Replies to a request, and whether any call in it changed the state.
pub(super) struct Outcome {
    pub reply: Value,
    pub changed: bool,
}

/// Runs one envelope; the reply is `{riq, ret, error, warnings}`.
pub(super) fn single(
    state: &mut RaasState,
    principal: &Principal,
    now: DateTime<Utc>,
    envelope: Value,
) -> Outcome {
    let (reply, _, changed) = call_reply(state, principal, now, envelope);
    Outcome { reply, changed }
}

/// Runs a list of envelopes in order: `{batched_retcode, ret: [reply, …]}`.
pub(super) fn batch(
    state: &mut RaasState,
    principal: &Principal,
    now: DateTime<Utc>,
    envelopes: Vec<Value>,
) -> Outcome {
    let mut failed = false;
    let mut changed = false;
    let mut replies = Vec::with_capacity(envelopes.len());
    for envelope in envelopes {
        let (reply, ok, call_changed) = call_reply(state, principal, now, envelope);
        failed |= !ok;
        changed |= call_changed;
        replies.push(reply);
    }
    let retcode = if failed {
        BATCH_RETCODE_FAILED
    } else {
        BATCH_RETCODE_OK
    };
    Outcome {
        reply: json!({"batched_retcode": retcode, "ret": replies}),
        changed,
    }
}

/// One call's reply, whether it succeeded, and whether it changed the state.
fn call_reply(
    state: &mut RaasState,
    principal: &Principal,
    now: DateTime<Utc>,
    envelope: Value,
) -> (Value, bool, bool) {
    let riq = envelope.get("riq").cloned().unwrap_or(Value::Null);
    let mutating = MUTATING.iter().any(|(resource, method)| {
        envelope.get("resource").and_then(Value::as_str) == Some(resource)
            && envelope.get("method").and_then(Value::as_str) == Some(method)
    });
    let codes = state.options.error_codes.clone();
    match run(state, principal, now, envelope) {
        // Built by moving `ret` in: `json!` would copy a 1,000-object page through the
        // serializer.
        Ok((ret, warnings)) => (
            object([
                ("riq", riq),
                ("ret", ret),
                ("error", Value::Null),
                ("warnings", json!(warnings)),
            ]),
            true,
            mutating,
        ),
        Err(fault) => (
            json!({"riq": riq, "ret": null, "error": fault.to_json(&codes), "warnings": []}),
            false,
            false,
        ),
    }
}

fn run(
    state: &mut RaasState,
    principal: &Principal,
    now: DateTime<Utc>,
    envelope: Value,
) -> Result<(Value, Vec<String>), RpcFault> {
    let Value::Object(mut envelope) = envelope else {
        return Err(RpcFault::InvalidRequest(
            "an envelope must be a json object".into(),
        ));
    };
    let resource = envelope_string(&mut envelope, "resource")?;
    let method = envelope_string(&mut envelope, "method")?;
    let positional = match aliased(&mut envelope, "arg", "args")? {
        Some(Value::Array(a)) => a,
        None => Vec::new(),
        Some(_) => {
            return Err(RpcFault::InvalidRequest(
                "`arg` must be a list of positional arguments".into(),
            ));
        }
    };
    let keywords = match aliased(&mut envelope, "kwarg", "kwargs")? {
        Some(Value::Object(k)) => k,
        None => Map::new(),
        Some(_) => {
            return Err(RpcFault::InvalidRequest(
                "`kwarg` must be an object of keyword arguments".into(),
            ));
        }
    };
    let spec = METHODS
        .iter()
        .find(|m| m.resource == resource && m.method == method)
        .ok_or(RpcFault::MethodNotFound { resource, method })?;
    let args = bind(spec, positional, keywords)?;
    let mut call = Call {
        state,
        principal,
        now,
        args,
        warnings: Vec::new(),
    };
    let ret = (spec.handler)(&mut call)?;
    Ok((ret, call.warnings))
}

/// The string the envelope holds under `name` (`resource`, `method`).
fn envelope_string(envelope: &mut Map<String, Value>, name: &str) -> Result<String, RpcFault> {
    match envelope.remove(name) {
        Some(Value::String(s)) => Ok(s),
        _ => Err(RpcFault::InvalidRequest(format!(
            "`{name}` must be a string"
        ))),
    }
}

/// The value the envelope holds under `name` or its plural alias (`arg|args`,
/// `kwarg|kwargs`); `None` when neither is given or the one given is `null`.
fn aliased(
    envelope: &mut Map<String, Value>,
    name: &str,
    plural: &str,
) -> Result<Option<Value>, RpcFault> {
    match (envelope.remove(name), envelope.remove(plural)) {
        (Some(_), Some(_)) => Err(RpcFault::InvalidRequest(format!(
            "send `{name}` or `{plural}`, not both"
        ))),
        (Some(value), None) | (None, Some(value)) => Ok(Some(value).filter(|v| !v.is_null())),
        (None, None) => Ok(None),
    }
}

/// Binds positional and keyword arguments to the method's parameters, rejecting unknown
/// keywords, missing required ones and wrong types.
fn bind(
    spec: &Method,
    positional: Vec<Value>,
    keywords: Map<String, Value>,
) -> Result<BTreeMap<&'static str, Value>, RpcFault> {
    if positional.len() > spec.params.len() {
        return Err(invalid(format!(
            "{}.{}() takes {} positional arguments but {} were given",
            spec.resource,
            spec.method,
            spec.params.len(),
            positional.len()
        )));
    }
    let mut args: BTreeMap<&'static str, Value> = BTreeMap::new();
    for (param, value) in spec.params.iter().zip(positional) {
        args.insert(param.name, value);
    }
    reject_unknown_keys(keywords.keys(), |k| spec.params.iter().any(|p| p.name == k))?;
    for (key, value) in keywords {
        let Some(param) = spec.params.iter().find(|p| p.name == key) else {
            continue;
        };
        if args.insert(param.name, value).is_some() {
            return Err(invalid(format!(
                "{}.{}() got multiple values for argument '{}'",
                spec.resource, spec.method, param.name
            )));
        }
    }
    for param in spec.params {
        match args.get(param.name) {
            Some(value) if value.is_null() && param.default.is_none() => {
                return Err(invalid(format!(
                    "None is not of type '{}'",
                    param.ty.schema_name()
                )));
            }
            Some(value) if !value.is_null() && !param.ty.accepts(value) => {
                return Err(invalid(format!(
                    "{value} is not of type '{}'",
                    param.ty.schema_name()
                )));
            }
            Some(_) => {}
            None => match param.default {
                Some(text) => {
                    args.insert(
                        param.name,
                        serde_json::from_str(text).unwrap_or(Value::Null),
                    );
                }
                None => return Err(invalid(format!("'{}' is a required property", param.name))),
            },
        }
    }
    Ok(args)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal() -> Principal {
        Principal {
            username: "root".into(),
            config_name: "internal".into(),
        }
    }

    fn call(state: &mut RaasState, resource: &str, method: &str, kwarg: Value) -> Value {
        single(
            state,
            &principal(),
            Utc::now(),
            json!({"resource": resource, "method": method, "kwarg": kwarg, "riq": 1}),
        )
        .reply
    }

    #[test]
    fn seed_objects_may_be_a_list_or_a_map_without_uuids() {
        let seeded: RaasState = serde_json::from_value(json!({
            "target_groups": [{"name": "web", "tgt": {"*": {"tgt_type": "glob", "tgt": "web*"}}}],
            "jobs": {"5b0f3c1e-8d2a-4f6b-9c7e-1a2b3c4d5e6f": {"name": "ping", "fun": "test.ping"}},
        }))
        .unwrap();
        let group = seeded.target_groups.values().next().unwrap();
        assert_eq!(seeded.target_groups.keys().next().unwrap(), &group.uuid);
        assert!(uuid::Uuid::parse_str(&group.uuid).is_ok());
        let again: RaasState = serde_json::from_value(json!({
            "target_groups": [{"name": "web", "tgt": {}}],
        }))
        .unwrap();
        assert!(
            again.target_groups.contains_key(&group.uuid),
            "uuids are stable"
        );
        assert_eq!(
            seeded.jobs["5b0f3c1e-8d2a-4f6b-9c7e-1a2b3c4d5e6f"].uuid,
            "5b0f3c1e-8d2a-4f6b-9c7e-1a2b3c4d5e6f"
        );
        let saved = serde_json::to_value(&seeded).unwrap();
        let reloaded: RaasState = serde_json::from_value(saved).unwrap();
        assert_eq!(reloaded.target_groups, seeded.target_groups);
    }

    #[test]
    fn positional_arguments_bind_in_parameter_order() {
        let mut state = RaasState::default_estate();
        let reply = single(
            &mut state,
            &principal(),
            Utc::now(),
            json!({"resource": "tgt", "method": "get_target_group", "args": [super::super::ALL_MINIONS_UUID]}),
        )
        .reply;
        assert_eq!(reply["ret"]["count"], 1);
        assert_eq!(reply["ret"]["results"][0]["name"], "All Minions");
    }

    #[test]
    fn a_keyword_given_twice_is_rejected() {
        let mut state = RaasState::default_estate();
        let reply = single(
            &mut state,
            &principal(),
            Utc::now(),
            json!({"resource": "test", "method": "echo", "arg": ["a"], "kwarg": {"message": "b"}}),
        )
        .reply;
        assert_eq!(reply["error"]["code"], CODE_VALIDATION);
        assert!(
            reply["error"]["message"]
                .as_str()
                .unwrap()
                .contains("multiple values")
        );
    }

    #[test]
    fn envelope_fields_and_their_plural_aliases_are_checked() {
        let mut state = RaasState::default_estate();
        let cases = [
            (json!({"method": "echo"}), "`resource` must be a string"),
            (
                json!({"resource": "test", "method": 1}),
                "`method` must be a string",
            ),
            (
                json!({"resource": "test", "method": "echo", "arg": ["a"], "args": null}),
                "send `arg` or `args`, not both",
            ),
            (
                json!({"resource": "test", "method": "echo", "kwarg": null, "kwargs": {}}),
                "send `kwarg` or `kwargs`, not both",
            ),
            (
                json!({"resource": "test", "method": "echo", "args": {}}),
                "`arg` must be a list of positional arguments",
            ),
            (
                json!({"resource": "test", "method": "echo", "kwargs": []}),
                "`kwarg` must be an object of keyword arguments",
            ),
        ];
        for (envelope, message) in cases {
            let reply = single(&mut state, &principal(), Utc::now(), envelope).reply;
            assert_eq!(reply["error"]["code"], CODE_INVALID_REQUEST, "{message}");
            assert_eq!(
                reply["error"]["message"],
                format!("invalid rpc request: {message}")
            );
        }
        let nulls = json!({"resource": "test", "method": "echo", "args": null, "kwarg": null});
        let reply = single(&mut state, &principal(), Utc::now(), nulls).reply;
        assert_eq!(
            reply["error"]["message"],
            "'message' is a required property"
        );
    }

    #[test]
    fn unexpected_keys_are_named_as_the_schema_validator_names_them() {
        let mut state = RaasState::default_estate();
        let glob = json!({"tgt_type": "glob", "tgt": "*"});
        let cases = [
            (
                "get_jobs",
                json!({"names": [], "limit": 5, "pages": 1}),
                "Additional properties are not allowed ('names', 'pages' were unexpected)",
            ),
            (
                "save_job",
                json!({"name": "j", "arg": {"arg": [], "args": [], "kw": {}}}),
                "Additional properties are not allowed ('args' was unexpected)",
            ),
            (
                "save_target_group",
                json!({"tgt": {"m1": glob, "m2": {"tgt_type": "glob", "tgt": "*", "x": 1, "y": 2}}}),
                "Additional properties are not allowed ('x' was unexpected)",
            ),
        ];
        for (method, kwarg, message) in cases {
            let resource = if method == "save_target_group" {
                "tgt"
            } else {
                "job"
            };
            let reply = call(&mut state, resource, method, kwarg);
            assert_eq!(reply["error"]["message"], message);
        }
        let reply = call(
            &mut state,
            "schedule",
            "save",
            json!({"name": "s", "fun": "test.ping", "schedule": {"every": 1, "hours": 1, "often": 2}}),
        );
        assert_eq!(
            reply["error"]["message"],
            "Additional properties are not allowed ('every', 'often' were unexpected)"
        );
    }

    #[test]
    fn unknown_uuids_are_not_found_errors_naming_the_kind() {
        let mut state = RaasState::default_estate();
        let missing = "00000000-0000-4000-8000-000000000000";
        let glob = json!({"*": {"tgt_type": "glob", "tgt": "*"}});
        let cases = [
            (
                "tgt",
                "save_target_group",
                json!({"tgt_uuid": missing, "tgt": glob}),
                "target group",
            ),
            (
                "tgt",
                "delete_target_group",
                json!({"tgt_uuid": [super::super::ALL_MINIONS_UUID, missing]}),
                "target group",
            ),
            (
                "job",
                "save_job",
                json!({"name": "j", "tgt_uuid": missing}),
                "target group",
            ),
            ("job", "delete_job", json!({"job_uuid": missing}), "job"),
            (
                "schedule",
                "update",
                json!({"uuid": missing, "enabled": true}),
                "schedule",
            ),
            ("cmd", "route_cmd", json!({"job_uuid": missing}), "job"),
        ];
        for (resource, method, kwarg, kind) in cases {
            let reply = call(&mut state, resource, method, kwarg);
            assert_eq!(
                reply["error"],
                json!({
                    "code": CODE_NOT_FOUND,
                    "message": format!("{kind} `{missing}` not found"),
                    "detail": {"exception": "NotFound", "resource": kind, "uuid": missing},
                }),
                "{resource}.{method}"
            );
        }
        assert!(
            state
                .target_groups
                .contains_key(super::super::ALL_MINIONS_UUID)
        );
    }

    #[test]
    fn schedules_and_commands_take_an_inline_tgt_or_a_tgt_uuid() {
        let mut state = RaasState::default_estate();
        let all = super::super::ALL_MINIONS_UUID;
        let glob = json!({"*": {"tgt_type": "glob", "tgt": "*"}});
        let regex = json!({"*": {"tgt_type": "regex", "tgt": "*"}});
        let both = "use `tgt` or `tgt_uuid`, not both";
        let bad_type = "'regex' is not one of ['compound', 'glob', 'grain', 'grain_pcre', 'pillar', 'pillar_pcre', 'list', 'ipcidr', 'pcre', 'node']";
        let saved = call(
            &mut state,
            "schedule",
            "save",
            json!({"name": "s", "schedule": {"hours": 1}, "fun": "test.ping", "tgt": glob}),
        );
        let uuid = saved["ret"].as_str().unwrap().to_owned();
        let cases = [
            (
                "schedule",
                "save",
                json!({"name": "s", "schedule": {}, "fun": "f", "tgt": glob, "tgt_uuid": all}),
                both,
            ),
            (
                "schedule",
                "save",
                json!({"name": "s", "schedule": {}, "fun": "f", "tgt": regex}),
                bad_type,
            ),
            (
                "schedule",
                "update",
                json!({"uuid": uuid, "tgt": glob, "tgt_uuid": all}),
                both,
            ),
            (
                "schedule",
                "update",
                json!({"uuid": uuid, "tgt": regex}),
                bad_type,
            ),
            (
                "cmd",
                "route_cmd",
                json!({"fun": "test.ping", "tgt": glob, "tgt_uuid": all}),
                both,
            ),
            (
                "cmd",
                "route_cmd",
                json!({"fun": "test.ping", "tgt": regex}),
                bad_type,
            ),
        ];
        for (resource, method, kwarg, message) in cases {
            let reply = call(&mut state, resource, method, kwarg);
            assert_eq!(
                reply["error"]["code"], CODE_VALIDATION,
                "{resource}.{method}"
            );
            assert_eq!(reply["error"]["message"], message, "{resource}.{method}");
        }
        let routed = call(
            &mut state,
            "cmd",
            "route_cmd",
            json!({"fun": "test.ping", "tgt": glob}),
        );
        assert_eq!(routed["error"], Value::Null);
    }

    #[test]
    fn only_successful_writes_count_as_changes() {
        let mut state = RaasState::default_estate();
        let save = json!({"resource": "tgt", "method": "save_target_group",
            "kwarg": {"name": "x", "tgt": {"*": {"tgt_type": "glob", "tgt": "*"}}}});
        assert!(single(&mut state, &principal(), Utc::now(), save).changed);
        let read = json!({"resource": "tgt", "method": "get_target_group", "kwarg": {}});
        assert!(!single(&mut state, &principal(), Utc::now(), read.clone()).changed);
        let failed = json!({"resource": "tgt", "method": "save_target_group", "kwarg": {}});
        assert!(!single(&mut state, &principal(), Utc::now(), failed.clone()).changed);
        let mixed = vec![read, failed];
        let outcome = batch(&mut state, &principal(), Utc::now(), mixed);
        assert!(!outcome.changed);
        assert_eq!(outcome.reply["batched_retcode"], BATCH_RETCODE_FAILED);
    }

    #[test]
    fn sorting_and_reverse_order_results() {
        let mut state = RaasState::default();
        for name in ["b", "c", "a"] {
            call(
                &mut state,
                "tgt",
                "save_target_group",
                json!({"name": name, "tgt": {"*": {"tgt_type": "glob", "tgt": name}}}),
            );
        }
        let reply = call(
            &mut state,
            "tgt",
            "get_target_group",
            json!({"sort_by": "name", "reverse": true}),
        );
        let names: Vec<&str> = reply["ret"]["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["c", "b", "a"]);
        let bad = call(
            &mut state,
            "tgt",
            "get_target_group",
            json!({"sort_by": "uuid"}),
        );
        assert_eq!(bad["error"]["code"], CODE_VALIDATION);
    }

    #[test]
    fn pages_put_together_give_the_fully_sorted_list() {
        let mut state = RaasState::default();
        for i in 0..37 {
            // Names repeat, so the UUID has to break ties.
            let name = format!("n{}", (i * 7) % 11);
            call(
                &mut state,
                "tgt",
                "save_target_group",
                json!({"name": name, "tgt": {"*": {"tgt_type": "glob", "tgt": "*"}}}),
            );
        }
        for reverse in [false, true] {
            let mut expected: Vec<(String, String)> = state
                .target_groups
                .values()
                .map(|g| (g.name.clone(), g.uuid.clone()))
                .collect();
            expected.sort();
            if reverse {
                expected.reverse();
            }
            let mut paged = Vec::new();
            for page in 0..9 {
                let reply = call(
                    &mut state,
                    "tgt",
                    "get_target_group",
                    json!({"limit": 5, "page": page, "reverse": reverse}),
                );
                for item in reply["ret"]["results"].as_array().unwrap() {
                    paged.push((
                        item["name"].as_str().unwrap().to_owned(),
                        item["uuid"].as_str().unwrap().to_owned(),
                    ));
                }
            }
            assert_eq!(paged, expected, "reverse={reverse}");
        }
    }

    #[test]
    fn schedules_sort_by_job_name_and_status() {
        let mut state = RaasState::default();
        let mut job = |name: &str| {
            call(&mut state, "job", "save_job", json!({"name": name}))["ret"]
                .as_str()
                .unwrap()
                .to_owned()
        };
        let (zulu, alpha) = (job("zulu"), job("alpha"));
        for (name, job, enabled) in [("a", &zulu, true), ("b", &alpha, false)] {
            call(
                &mut state,
                "schedule",
                "save",
                json!({"name": name, "schedule": {"hours": 1}, "job_uuid": job, "enabled": enabled}),
            );
        }
        let names = |reply: Value| -> Vec<String> {
            reply["ret"]["results"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["name"].as_str().unwrap().to_owned())
                .collect()
        };
        let by_job = call(
            &mut state,
            "schedule",
            "get",
            json!({"sort_by": "job_name"}),
        );
        assert_eq!(names(by_job), ["b", "a"]);
        let by_status = call(&mut state, "schedule", "get", json!({"sort_by": "status"}));
        assert_eq!(names(by_status), ["b", "a"]);
        let by_name = call(
            &mut state,
            "schedule",
            "get",
            json!({"sort_by": "sched_name"}),
        );
        assert_eq!(names(by_name), ["a", "b"]);
    }

    #[test]
    fn schedules_filter_and_sort_by_the_names_of_their_job_and_target() {
        let mut state = RaasState::default_estate();
        let ping = "9a1e4c7b-2d3f-4e5a-8b6c-7d8e9f0a1b2c";
        call(
            &mut state,
            "schedule",
            "save",
            json!({"name": "on-all", "schedule": {"hours": 1}, "job_uuid": ping, "tgt_uuid": super::super::ALL_MINIONS_UUID}),
        );
        call(
            &mut state,
            "schedule",
            "save",
            json!({"name": "no-target", "schedule": {"hours": 1}, "fun": "test.ping"}),
        );
        let names = |reply: &Value| -> Vec<String> {
            reply["ret"]["results"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["name"].as_str().unwrap().to_owned())
                .collect()
        };
        let by_job = call(
            &mut state,
            "schedule",
            "get",
            json!({"job_names": ["Ping all minions", "nope"]}),
        );
        assert_eq!(names(&by_job), ["on-all"]);
        assert_eq!(by_job["ret"]["results"][0]["job_name"], "Ping all minions");
        assert_eq!(by_job["ret"]["results"][0]["tgt_name"], "All Minions");
        let by_target = call(
            &mut state,
            "schedule",
            "get",
            json!({"tgt_names": ["Linux"]}),
        );
        assert_eq!(names(&by_target), ["Nightly highstate"]);
        let sorted = call(
            &mut state,
            "schedule",
            "get",
            json!({"sort_by": "tgt_name"}),
        );
        assert_eq!(names(&sorted), ["no-target", "on-all", "Nightly highstate"]);
        let loose = &sorted["ret"]["results"][0];
        assert_eq!(loose["tgt_name"], Value::Null);
        assert_eq!(loose["job_name"], Value::Null);
    }

    #[test]
    fn access_is_saved_listed_and_hides_objects_from_roles_without_read() {
        let mut state = RaasState::default_estate();
        let job = call(&mut state, "job", "save_job", json!({"name": "secret job"}))["ret"]
            .as_str()
            .unwrap()
            .to_owned();
        // The listing shape (booleans) and D2's docstring shape (a list) are both read.
        let saved = call(
            &mut state,
            "job",
            "save_job_access",
            json!({"job_uuid": job, "access_payload": {"Ops": {"read": true, "run": true}, "Dev": ["write"]}}),
        );
        assert_eq!(saved["ret"], job);
        let listed = call(&mut state, "job", "get_jobs", json!({"job_uuid": job}));
        let access = &listed["ret"]["results"][0]["metadata"]["auth"]["access"];
        assert_eq!(
            access,
            &json!({
                "Dev": {"read": false, "write": true, "discover": false, "delete": false, "run": false},
                "Ops": {"read": true, "write": false, "discover": false, "delete": false, "run": true},
            })
        );
        assert_eq!(
            &call(
                &mut state,
                "job",
                "get_job_access",
                json!({"job_uuid": job})
            )["ret"],
            access
        );
        let bad = call(
            &mut state,
            "tgt",
            "save_target_group_access",
            json!({"tgt_uuid": super::super::ALL_MINIONS_UUID, "access_payload": {"Ops": ["run"]}}),
        );
        assert_eq!(bad["error"]["code"], CODE_VALIDATION);

        // A user whose roles lack `read` does not see the job; `Superuser` sees everything.
        let names = |state: &mut RaasState, user: &str| -> Vec<String> {
            let who = Principal {
                username: user.into(),
                config_name: "internal".into(),
            };
            let envelope = json!({"resource": "job", "method": "get_jobs", "kwarg": {}});
            single(state, &who, Utc::now(), envelope).reply["ret"]["results"]
                .as_array()
                .unwrap()
                .iter()
                .map(|j| j["name"].as_str().unwrap().to_owned())
                .collect()
        };
        state.user_roles.insert("dev".into(), vec!["Dev".into()]);
        state.user_roles.insert("ops".into(), vec!["Ops".into()]);
        state
            .user_roles
            .insert("admin".into(), vec![SUPERUSER_ROLE.into()]);
        assert!(!names(&mut state, "dev").contains(&"secret job".to_string()));
        assert!(names(&mut state, "ops").contains(&"secret job".to_string()));
        assert_eq!(names(&mut state, "admin").len(), 3);
        assert_eq!(names(&mut state, "root").len(), 3);
    }

    #[test]
    fn schedules_in_the_past_are_listed_only_with_show_past() {
        let mut state = RaasState::default_estate();
        let at = |days: i64| {
            (Utc::now() + chrono::Duration::days(days))
                .format("%Y-%m-%dT%H:%M")
                .to_string()
        };
        let timings = [
            ("fired", json!({"once": at(-1)})),
            ("ended", json!({"minutes": 5, "until": at(-1)})),
            ("pending", json!({"once": at(1)})),
            (
                "offset",
                json!({"once": (Utc::now() - chrono::Duration::hours(1)).to_rfc3339()}),
            ),
        ];
        for (name, schedule) in timings {
            let reply = call(
                &mut state,
                "schedule",
                "save",
                json!({"name": name, "schedule": schedule, "fun": "test.ping"}),
            );
            assert_eq!(reply["error"], Value::Null, "{name}");
        }
        let names = |reply: Value| -> Vec<String> {
            let mut names: Vec<String> = reply["ret"]["results"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["name"].as_str().unwrap().to_owned())
                .collect();
            names.sort();
            names
        };
        let shown = call(&mut state, "schedule", "get", json!({}));
        assert_eq!(names(shown), ["Nightly highstate", "pending"]);
        let all = call(&mut state, "schedule", "get", json!({"show_past": true}));
        assert_eq!(
            names(all),
            ["Nightly highstate", "ended", "fired", "offset", "pending"]
        );
        let by_name = call(&mut state, "schedule", "get", json!({"names": ["fired"]}));
        assert_eq!(by_name["ret"]["count"], 0);
    }

    #[test]
    fn schedule_update_deletes_fields_and_checks_references() {
        let mut state = RaasState::default_estate();
        let uuid = call(
            &mut state,
            "schedule",
            "save",
            json!({"name": "s", "schedule": {"minutes": 5}, "fun": "test.ping", "masters": ["m1"], "tgt_uuid": super::super::ALL_MINIONS_UUID}),
        )["ret"]
            .as_str()
            .unwrap()
            .to_owned();
        let reply = call(
            &mut state,
            "schedule",
            "update",
            json!({"uuid": uuid, "delete_fields": ["masters"], "enabled": false}),
        );
        assert_eq!(reply["error"], Value::Null);
        let stored = &state.schedules[&uuid];
        assert_eq!(stored.masters, None);
        assert!(!stored.enabled);
        // `schedule` keys merge; `delete_fields` also removes schedule keys.
        let reply = call(
            &mut state,
            "schedule",
            "update",
            json!({"uuid": uuid, "schedule": {"cron": "0 3 * * *", "until": "2099-01-01T00:00"}}),
        );
        assert_eq!(reply["error"], Value::Null);
        assert_eq!(
            Value::Object(state.schedules[&uuid].schedule.clone()),
            json!({"minutes": 5, "cron": "0 3 * * *", "until": "2099-01-01T00:00"})
        );
        let reply = call(
            &mut state,
            "schedule",
            "update",
            json!({"uuid": uuid, "schedule": {"hours": 2}, "delete_fields": ["minutes", "cron", "until", "tgt_uuid"]}),
        );
        assert_eq!(reply["error"], Value::Null);
        let stored = &state.schedules[&uuid];
        assert_eq!(Value::Object(stored.schedule.clone()), json!({"hours": 2}));
        assert_eq!(stored.tgt_uuid, None);
        let reply = call(
            &mut state,
            "schedule",
            "update",
            json!({"uuid": uuid, "delete_fields": ["name"]}),
        );
        assert_eq!(reply["error"]["code"], CODE_VALIDATION);
        let reply = call(
            &mut state,
            "schedule",
            "update",
            json!({"uuid": uuid, "job_uuid": "00000000-0000-4000-8000-000000000000"}),
        );
        assert_eq!(reply["error"]["code"], CODE_NOT_FOUND);
    }
}
