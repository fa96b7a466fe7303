//! `api.*` (versions, discovery) and `test.*` (echo, error, warnings).

use super::*;

pub(super) fn get_versions(_call: &mut Call<'_>) -> Result<Value, RpcFault> {
    Ok(json!({"raas": RAAS_VERSION, "python": "3.10.14", "rpc-api-version": RPC_API_VERSION}))
}

pub(super) fn discover(call: &mut Call<'_>) -> Result<Value, RpcFault> {
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
                    Some(d) => format!("{}={}", p.name, python_literal(d)),
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

/// A JSON default as Python writes it in a signature (`None`, `True`, `False`).
pub(super) fn python_literal(json_text: &str) -> &str {
    match json_text {
        "null" => "None",
        "true" => "True",
        "false" => "False",
        other => other,
    }
}

pub(super) fn test_echo(call: &mut Call<'_>) -> Result<Value, RpcFault> {
    Ok(call.value("message").cloned().unwrap_or(Value::Null))
}

pub(super) fn test_error(_call: &mut Call<'_>) -> Result<Value, RpcFault> {
    Err(RpcFault::Internal("test error".into()))
}

pub(super) fn test_warnings(call: &mut Call<'_>) -> Result<Value, RpcFault> {
    call.warnings.push("this is a test warning".into());
    Ok(Value::Null)
}
