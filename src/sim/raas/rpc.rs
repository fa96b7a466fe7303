//! The RaaS JSON-RPC methods (`raas.md` §3–§8): the envelope (`arg|args`, `kwarg|kwargs`,
//! `riq`), batching, argument binding against each method's parameter list (unknown
//! keyword arguments are rejected, as the real schemas have `additionalProperties: false`),
//! pagination and substring filters, and the `job`, `tgt`, `schedule`, `cmd`, `api` and
//! `test` resources with their dependency and `force` rules.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::{Command, Job, Owner, Principal, RaasState, Schedule, TargetGroup};

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

    /// Applies `sort_by`/`reverse`/`limit`/`page` and builds `{count, limit, results}`.
    fn page(
        &self,
        items: Vec<Value>,
        sort_fields: &[&str],
        default_sort: &str,
    ) -> Result<Value, RpcFault> {
        let text = |v: Option<&Value>| match v {
            Some(Value::String(s)) => s.to_lowercase(),
            Some(Value::Null) | None => String::new(),
            Some(other) => other.to_string(),
        };
        self.page_of(
            items,
            sort_fields,
            default_sort,
            |item, field| (text(item.get(field)), text(item.get("uuid"))),
            |item| item,
        )
    }

    /// [`Call::page`] over any items: `sort_key(item, field)` gives the lower-cased sort
    /// field and uuid, and only the items of the page are turned into JSON.
    fn page_of<T>(
        &self,
        mut items: Vec<T>,
        sort_fields: &[&str],
        default_sort: &str,
        sort_key: impl Fn(&T, &str) -> (String, String),
        to_json: impl Fn(T) -> Value,
    ) -> Result<Value, RpcFault> {
        let sort_by = match self.str("sort_by") {
            // `schedule.get` sorts by `sched_name`/`status`, reported as `name`/`state`.
            Some("sched_name") if sort_fields.contains(&"sched_name") => "name".to_owned(),
            Some("status") if sort_fields.contains(&"status") => "state".to_owned(),
            Some(field) if sort_fields.contains(&field) => field.to_owned(),
            Some(field) => return Err(not_one_of(field, sort_fields)),
            None => default_sort.to_owned(),
        };
        let limit = self.int("limit").unwrap_or(50);
        if limit < -1 {
            return Err(invalid(format!("{limit} is less than the minimum of -1")));
        }
        let page = self.int("page").unwrap_or(0);
        if page < 0 {
            return Err(invalid(format!("{page} is less than the minimum of 0")));
        }
        items.sort_by_cached_key(|item| sort_key(item, &sort_by));
        if self.bool("reverse").unwrap_or(false) {
            items.reverse();
        }
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
            .unwrap_or(usize::MAX);
        let take = usize::try_from(effective).unwrap_or(usize::MAX);
        let results: Vec<Value> = items
            .into_iter()
            .skip(start)
            .take(take)
            .map(to_json)
            .collect();
        Ok(json!({"count": count, "limit": effective, "results": results}))
    }
}

fn not_one_of(value: &str, allowed: &[&str]) -> RpcFault {
    let list = allowed
        .iter()
        .map(|a| format!("'{a}'"))
        .collect::<Vec<_>>()
        .join(", ");
    invalid(format!("'{value}' is not one of [{list}]"))
}

fn check_enum(value: Option<&str>, allowed: &[&str]) -> Result<(), RpcFault> {
    match value {
        Some(v) if !allowed.contains(&v) => Err(not_one_of(v, allowed)),
        _ => Ok(()),
    }
}

/// Runs one envelope and returns its reply `{riq, ret, error, warnings}`.
pub(super) fn single(
    state: &mut RaasState,
    principal: &Principal,
    now: DateTime<Utc>,
    envelope: Value,
) -> Value {
    call_reply(state, principal, now, envelope).0
}

/// Runs a list of envelopes in order: `{batched_retcode, ret: [reply, …]}`.
pub(super) fn batch(
    state: &mut RaasState,
    principal: &Principal,
    now: DateTime<Utc>,
    envelopes: Vec<Value>,
) -> Value {
    let mut failed = false;
    let mut replies = Vec::with_capacity(envelopes.len());
    for envelope in envelopes {
        let (reply, ok) = call_reply(state, principal, now, envelope);
        failed |= !ok;
        replies.push(reply);
    }
    let retcode = if failed {
        BATCH_RETCODE_FAILED
    } else {
        BATCH_RETCODE_OK
    };
    json!({"batched_retcode": retcode, "ret": replies})
}

fn call_reply(
    state: &mut RaasState,
    principal: &Principal,
    now: DateTime<Utc>,
    envelope: Value,
) -> (Value, bool) {
    let riq = envelope.get("riq").cloned().unwrap_or(Value::Null);
    let codes = state.options.error_codes.clone();
    match run(state, principal, now, envelope) {
        Ok((ret, warnings)) => (
            json!({"riq": riq, "ret": ret, "error": null, "warnings": warnings}),
            true,
        ),
        Err(fault) => (
            json!({"riq": riq, "ret": null, "error": fault.to_json(&codes), "warnings": []}),
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
    let resource = match envelope.remove("resource") {
        Some(Value::String(s)) => s,
        _ => {
            return Err(RpcFault::InvalidRequest(
                "`resource` must be a string".into(),
            ));
        }
    };
    let method = match envelope.remove("method") {
        Some(Value::String(s)) => s,
        _ => {
            return Err(RpcFault::InvalidRequest("`method` must be a string".into()));
        }
    };
    let positional = match (envelope.remove("arg"), envelope.remove("args")) {
        (Some(_), Some(_)) => {
            return Err(RpcFault::InvalidRequest(
                "send `arg` or `args`, not both".into(),
            ));
        }
        (Some(Value::Array(a)), None) | (None, Some(Value::Array(a))) => a,
        (Some(Value::Null), None) | (None, Some(Value::Null)) | (None, None) => Vec::new(),
        _ => {
            return Err(RpcFault::InvalidRequest(
                "`arg` must be a list of positional arguments".into(),
            ));
        }
    };
    let keywords = match (envelope.remove("kwarg"), envelope.remove("kwargs")) {
        (Some(_), Some(_)) => {
            return Err(RpcFault::InvalidRequest(
                "send `kwarg` or `kwargs`, not both".into(),
            ));
        }
        (Some(Value::Object(k)), None) | (None, Some(Value::Object(k))) => k,
        (Some(Value::Null), None) | (None, Some(Value::Null)) | (None, None) => Map::new(),
        _ => {
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
    let unknown: Vec<String> = keywords
        .keys()
        .filter(|k| !spec.params.iter().any(|p| p.name == k.as_str()))
        .map(|k| format!("'{k}'"))
        .collect();
    if !unknown.is_empty() {
        let verb = if unknown.len() == 1 { "was" } else { "were" };
        return Err(invalid(format!(
            "Additional properties are not allowed ({} {verb} unexpected)",
            unknown.join(", ")
        )));
    }
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

// ---- target groups --------------------------------------------------------------------

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

fn access_metadata(owner: &Owner) -> Value {
    let full = json!({"read": true, "write": true, "discover": true, "delete": true});
    json!({"auth": {
        "owner": {"username": owner.username, "config_name": owner.config_name, "uuid": owner.uuid},
        "access": {
            "Superuser": full,
            "Administrator": full,
            "User": {"read": true, "write": false, "discover": true, "delete": false},
        },
    }})
}

fn target_json(group: &TargetGroup) -> Value {
    json!({
        "name": group.name,
        "desc": group.desc,
        "uuid": group.uuid,
        "tgt": group.tgt,
        "pillars": group.pillars,
        "metadata": access_metadata(&group.owner),
    })
}

fn get_target_group(call: &mut Call<'_>) -> Result<Value, RpcFault> {
    let items: Vec<&TargetGroup> = if let Some(uuid) = call.nonempty("tgt_uuid") {
        call.state.target_groups.get(uuid).into_iter().collect()
    } else {
        let name = call.str("name").map(str::to_owned);
        let desc = call.str("desc").map(str::to_owned);
        let master = call.str("master_id").map(str::to_owned);
        let pillar = call.str("pillar_uuid").map(str::to_owned);
        call.state
            .target_groups
            .values()
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
    call.page_of(
        items,
        &["name", "desc"],
        "name",
        |g, field| {
            let key = match field {
                "desc" => &g.desc,
                _ => &g.name,
            };
            (key.to_lowercase(), g.uuid.to_lowercase())
        },
        target_json,
    )
}

fn validate_tgt(tgt: &Map<String, Value>) -> Result<(), RpcFault> {
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
                return Err(invalid(format!(
                    "Additional properties are not allowed ('{key}' was unexpected)"
                )));
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

fn save_target_group(call: &mut Call<'_>) -> Result<Value, RpcFault> {
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
        let group = call
            .state
            .target_groups
            .get_mut(&uuid)
            .ok_or(RpcFault::NotFound {
                kind: "target group",
                uuid: uuid.clone(),
            })?;
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
    };
    call.state.target_groups.insert(uuid.clone(), group);
    Ok(json!(uuid))
}

fn delete_target_group(call: &mut Call<'_>) -> Result<Value, RpcFault> {
    let uuids = call.strings("tgt_uuid").unwrap_or_default();
    let force = call.bool("force").unwrap_or(false);
    for uuid in &uuids {
        if !call.state.target_groups.contains_key(uuid) {
            return Err(RpcFault::NotFound {
                kind: "target group",
                uuid: uuid.clone(),
            });
        }
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

// ---- jobs ------------------------------------------------------------------------------

/// `cmd` values `save_job` accepts (the schema enum; `ssh` is unverified).
pub const JOB_CMDS: &[&str] = &["cloud", "local", "runner", "wheel"];
/// `cmd` values the list filters and schedules accept.
pub const FILTER_CMDS: &[&str] = &["local", "runner", "wheel", "ssh"];

fn job_json(job: &Job, state: &RaasState) -> Value {
    let tgt_name = job
        .tgt_uuid
        .as_ref()
        .and_then(|t| state.target_groups.get(t))
        .map(|g| g.name.clone());
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
        "metadata": access_metadata(&job.owner),
    })
}

fn get_jobs(call: &mut Call<'_>) -> Result<Value, RpcFault> {
    check_enum(call.str("cmd"), FILTER_CMDS)?;
    let items: Vec<&Job> = if let Some(uuid) = call.nonempty("job_uuid") {
        call.state.jobs.get(uuid).into_iter().collect()
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
    let state: &RaasState = call.state;
    call.page_of(
        items,
        &["name", "desc", "cmd", "fun"],
        "name",
        |j, field| {
            let key = match field {
                "desc" => Some(&j.desc),
                "cmd" => j.cmd.as_ref(),
                "fun" => j.fun.as_ref(),
                _ => Some(&j.name),
            };
            (
                key.map(|k| k.to_lowercase()).unwrap_or_default(),
                j.uuid.to_lowercase(),
            )
        },
        |j| job_json(j, state),
    )
}

fn validate_job_arg(arg: &Value) -> Result<(), RpcFault> {
    let Some(arg) = arg.as_object() else {
        return Err(invalid(format!("{arg} is not of type 'object'")));
    };
    for (key, value) in arg {
        match key.as_str() {
            "arg" if value.is_array() || value.is_null() => {}
            "kwarg" if value.is_object() || value.is_null() => {}
            "arg" => return Err(invalid(format!("{value} is not of type 'array'"))),
            "kwarg" => return Err(invalid(format!("{value} is not of type 'object'"))),
            other => {
                return Err(invalid(format!(
                    "Additional properties are not allowed ('{other}' was unexpected)"
                )));
            }
        }
    }
    Ok(())
}

fn require_target(state: &RaasState, uuid: Option<&str>) -> Result<(), RpcFault> {
    match uuid {
        Some(uuid) if !state.target_groups.contains_key(uuid) => Err(RpcFault::NotFound {
            kind: "target group",
            uuid: uuid.to_owned(),
        }),
        _ => Ok(()),
    }
}

fn require_job(state: &RaasState, uuid: Option<&str>) -> Result<(), RpcFault> {
    match uuid {
        Some(uuid) if !state.jobs.contains_key(uuid) => Err(RpcFault::NotFound {
            kind: "job",
            uuid: uuid.to_owned(),
        }),
        _ => Ok(()),
    }
}

fn save_job(call: &mut Call<'_>) -> Result<Value, RpcFault> {
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

fn delete_job(call: &mut Call<'_>) -> Result<Value, RpcFault> {
    let uuid = call.str("job_uuid").unwrap_or_default().to_owned();
    let force = call.bool("force").unwrap_or(false);
    if !call.state.jobs.contains_key(&uuid) {
        return Err(RpcFault::NotFound { kind: "job", uuid });
    }
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

// ---- schedules -------------------------------------------------------------------------

/// Keys of `SchedulerScheduleSchema` (`additionalProperties: false`).
const SCHEDULE_KEYS: &[&str] = &[
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
/// Fields `schedule.update` may remove with `delete_fields`.
const DELETABLE_FIELDS: &[&str] = &[
    "masters", "cmd", "arg", "tgt", "tgt_uuid", "job_uuid", "fun",
];
/// Schedule states the `state` filter accepts.
const SCHEDULE_STATES: &[&str] = &[
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

fn validate_schedule(schedule: &Map<String, Value>) -> Result<(), RpcFault> {
    let unknown: Vec<String> = schedule
        .keys()
        .filter(|k| !SCHEDULE_KEYS.contains(&k.as_str()))
        .map(|k| format!("'{k}'"))
        .collect();
    if !unknown.is_empty() {
        let verb = if unknown.len() == 1 { "was" } else { "were" };
        return Err(invalid(format!(
            "Additional properties are not allowed ({} {verb} unexpected)",
            unknown.join(", ")
        )));
    }
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

fn schedule_json(schedule: &Schedule, state: &RaasState) -> Value {
    let tgt_name = schedule
        .tgt_uuid
        .as_ref()
        .and_then(|t| state.target_groups.get(t))
        .map(|g| g.name.clone());
    let job_name = schedule
        .job_uuid
        .as_ref()
        .and_then(|j| state.jobs.get(j))
        .map(|j| j.name.clone());
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
        "metadata": access_metadata(&schedule.owner),
    })
}

fn schedule_state(schedule: &Schedule) -> &'static str {
    if schedule.enabled { "new" } else { "disabled" }
}

fn schedule_get(call: &mut Call<'_>) -> Result<Value, RpcFault> {
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
    let items: Vec<Value> = call
        .state
        .schedules
        .values()
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
                s.job_uuid
                    .as_ref()
                    .and_then(|j| call.state.jobs.get(j))
                    .is_some_and(|j| names.contains(&j.name))
            })
        })
        .filter(|s| {
            tgt_names.as_ref().is_none_or(|names| {
                s.tgt_uuid
                    .as_ref()
                    .and_then(|t| call.state.target_groups.get(t))
                    .is_some_and(|t| names.contains(&t.name))
            })
        })
        .map(|s| schedule_json(s, call.state))
        .collect();
    call.page(
        items,
        &[
            "cmd",
            "fun",
            "tgt_name",
            "job_name",
            "sched_name",
            "next_fire_time",
            "last_fire_time",
            "status",
        ],
        "name",
    )
}

/// Checks the references and enums shared by `schedule.save` and `schedule.update`.
fn check_schedule_refs(call: &Call<'_>) -> Result<(), RpcFault> {
    check_enum(call.str("cmd"), FILTER_CMDS)?;
    if call.value("tgt").is_some() && call.value("tgt_uuid").is_some() {
        return Err(invalid("use `tgt` or `tgt_uuid`, not both"));
    }
    if let Some(tgt) = call.value("tgt").and_then(Value::as_object) {
        validate_tgt(tgt)?;
    }
    if let Some(schedule) = call.value("schedule").and_then(Value::as_object) {
        validate_schedule(schedule)?;
    }
    require_target(call.state, call.nonempty("tgt_uuid"))?;
    require_job(call.state, call.nonempty("job_uuid"))?;
    Ok(())
}

fn schedule_save(call: &mut Call<'_>) -> Result<Value, RpcFault> {
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

fn schedule_update(call: &mut Call<'_>) -> Result<Value, RpcFault> {
    check_schedule_refs(call)?;
    let Some(uuid) = call.nonempty("uuid").map(str::to_owned) else {
        return Err(invalid("`uuid` names the schedule to update"));
    };
    let delete_fields = call.strings("delete_fields").unwrap_or_default();
    for field in &delete_fields {
        check_enum(Some(field), DELETABLE_FIELDS)?;
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
    let schedule = call
        .state
        .schedules
        .get_mut(&uuid)
        .ok_or(RpcFault::NotFound {
            kind: "schedule",
            uuid: uuid.clone(),
        })?;
    if let Some(name) = name {
        schedule.name = name;
    }
    if let Some(body) = body {
        schedule.schedule = body;
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
            _ => schedule.fun = None,
        }
    }
    Ok(json!(uuid))
}

fn schedule_remove(call: &mut Call<'_>) -> Result<Value, RpcFault> {
    let uuid = call.str("uuid").unwrap_or_default().to_owned();
    Ok(json!(call.state.schedules.remove(&uuid).is_some()))
}

// ---- commands --------------------------------------------------------------------------

/// `cmd` values `route_cmd` accepts.
const ROUTE_CMDS: &[&str] = &["local", "runner", "wheel"];
/// `disposition` values `route_cmd` accepts.
const DISPOSITIONS: &[&str] = &[
    "all-masters",
    "any-in-cluster",
    "any-master",
    "all-in-cluster",
];

fn route_cmd(call: &mut Call<'_>) -> Result<Value, RpcFault> {
    check_enum(call.str("cmd"), ROUTE_CMDS)?;
    for d in call.strings("disposition").iter().flatten() {
        check_enum(Some(d), DISPOSITIONS)?;
    }
    if call.value("tgt").is_some() && call.value("tgt_uuid").is_some() {
        return Err(invalid("use `tgt` or `tgt_uuid`, not both"));
    }
    if let Some(tgt) = call.value("tgt").and_then(Value::as_object) {
        validate_tgt(tgt)?;
    }
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

fn get_cmd_status(call: &mut Call<'_>) -> Result<Value, RpcFault> {
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

// ---- api and test ----------------------------------------------------------------------

fn get_versions(_call: &mut Call<'_>) -> Result<Value, RpcFault> {
    Ok(json!({"raas": RAAS_VERSION, "python": "3.10.14", "rpc-api-version": RPC_API_VERSION}))
}

fn discover(call: &mut Call<'_>) -> Result<Value, RpcFault> {
    let include: Option<Vec<String>> = match call.value("include") {
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .filter_map(|i| i.as_str().map(str::to_owned))
                .collect(),
        ),
        Some(Value::Object(map)) => Some(map.keys().cloned().collect()),
        Some(Value::String(s)) => Some(vec![s.clone()]),
        _ => None,
    };
    let wanted = |section: &str| {
        include
            .as_ref()
            .is_none_or(|i| i.iter().any(|x| x == section))
    };
    let mut out = Map::new();
    if wanted("api") {
        let mut api = Map::new();
        for m in METHODS {
            let resource = api
                .entry(m.resource)
                .or_insert_with(|| Value::Object(Map::new()));
            let signature = m
                .params
                .iter()
                .map(|p| match p.default {
                    Some(d) => format!("{}={}", p.name, d.replace("null", "None")),
                    None => p.name.to_owned(),
                })
                .collect::<Vec<_>>()
                .join(", ");
            let parameters: Vec<Value> = m
                .params
                .iter()
                .map(|p| json!({"name": p.name, "type": p.ty.schema_name(), "required": p.default.is_none()}))
                .collect();
            if let Some(resource) = resource.as_object_mut() {
                resource.insert(
                    m.method.to_owned(),
                    json!({
                        "formatted": format!("{}.{}({signature})", m.resource, m.method),
                        "detailed": {
                            "signature": format!("({signature})"),
                            "doc": m.doc,
                            "parameters": parameters,
                        },
                    }),
                );
            }
        }
        out.insert("api".into(), Value::Object(api));
    }
    if wanted("constants") {
        out.insert(
            "constants".into(),
            json!({"rpc-api-version": RPC_API_VERSION}),
        );
    }
    if wanted("errors") {
        let codes = &call.state.options.error_codes;
        out.insert(
            "errors".into(),
            json!({"errorcode": {
                codes.invalid_request.to_string(): "InvalidRequest",
                codes.validation.to_string(): "ValidationError",
                codes.not_found.to_string(): "NotFound",
                codes.method_not_found.to_string(): "MethodNotFound",
                codes.failed_dependency.to_string(): "FailedResourceDependency",
                codes.internal.to_string(): "RPCInternalServerError",
            }}),
        );
    }
    Ok(Value::Object(out))
}

fn test_echo(call: &mut Call<'_>) -> Result<Value, RpcFault> {
    Ok(call.value("message").cloned().unwrap_or(Value::Null))
}

fn test_error(_call: &mut Call<'_>) -> Result<Value, RpcFault> {
    Err(RpcFault::Internal("test error".into()))
}

fn test_warnings(call: &mut Call<'_>) -> Result<Value, RpcFault> {
    call.warnings.push("this is a test warning".into());
    Ok(Value::Null)
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
    }

    #[test]
    fn positional_arguments_bind_in_parameter_order() {
        let mut state = RaasState::default_estate();
        let reply = single(
            &mut state,
            &principal(),
            Utc::now(),
            json!({"resource": "tgt", "method": "get_target_group", "args": [super::super::ALL_MINIONS_UUID]}),
        );
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
        );
        assert_eq!(reply["error"]["code"], CODE_VALIDATION);
        assert!(
            reply["error"]["message"]
                .as_str()
                .unwrap()
                .contains("multiple values")
        );
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
        let reply = call(
            &mut state,
            "schedule",
            "update",
            json!({"uuid": uuid, "job_uuid": "00000000-0000-4000-8000-000000000000"}),
        );
        assert_eq!(reply["error"]["code"], CODE_NOT_FOUND);
    }
}
