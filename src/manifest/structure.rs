//! Structural checks of a YAML node against the generated JSON Schema: unknown fields (with
//! did-you-mean), missing fields, wrong types, enum values and numeric bounds, each reported
//! at the node it concerns. Only the schema keywords `spec.rs` produces are interpreted.

use std::path::Path;

use serde_json::Value as Json;

use super::diagnostics::Diagnostic;
use super::did_you_mean;
use super::node::{Node, Value};

/// Checks nodes against one root schema (whose `$defs` hold every referenced type).
pub struct Checker<'a> {
    root: &'a Json,
    file: &'a Path,
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// JSON Schema type names a node satisfies.
fn node_types(value: &Value) -> &'static [&'static str] {
    match value {
        Value::Null => &["null"],
        Value::Bool(_) => &["boolean"],
        Value::Int(_) | Value::BigInt(_) => &["integer", "number"],
        Value::Float(_) => &["number"],
        Value::String(_) => &["string"],
        Value::Seq(_) => &["array"],
        Value::Map(_) => &["object"],
    }
}

/// A number or boolean: what a string field holds when its value lacks quotes.
fn is_unquoted_scalar(value: &Value) -> bool {
    matches!(
        value,
        Value::Int(_) | Value::BigInt(_) | Value::Float(_) | Value::Bool(_)
    )
}

fn type_phrase(name: &str) -> &str {
    match name {
        "null" => "null",
        "boolean" => "a boolean",
        "integer" => "an integer",
        "number" => "a number",
        "string" => "a string",
        "array" => "a list",
        "object" => "a mapping",
        other => other,
    }
}

fn declared_types(schema: &Json) -> Option<Vec<&str>> {
    match schema.get("type")? {
        Json::String(t) => Some(vec![t.as_str()]),
        Json::Array(list) => Some(list.iter().filter_map(Json::as_str).collect()),
        _ => None,
    }
}

fn format_bounds(format: &str) -> Option<(i128, i128)> {
    Some(match format {
        "uint8" => (0, i128::from(u8::MAX)),
        "uint16" => (0, i128::from(u16::MAX)),
        "uint32" => (0, i128::from(u32::MAX)),
        "uint64" | "uint" => (0, i128::from(u64::MAX)),
        "int32" => (i128::from(i32::MIN), i128::from(i32::MAX)),
        "int64" | "int" => (i128::from(i64::MIN), i128::from(i64::MAX)),
        _ => return None,
    })
}

fn show(value: &Json) -> String {
    match value {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl<'a> Checker<'a> {
    pub fn new(root: &'a Json, file: &'a Path) -> Self {
        Self { root, file }
    }

    fn resolve(&self, schema: &'a Json) -> &'a Json {
        let mut current = schema;
        for _ in 0..32 {
            let Some(reference) = current.get("$ref").and_then(Json::as_str) else {
                return current;
            };
            let Some(name) = reference.strip_prefix("#/$defs/") else {
                return current;
            };
            match self.root.get("$defs").and_then(|defs| defs.get(name)) {
                Some(next) => current = next,
                None => return current,
            }
        }
        current
    }

    /// The `$defs` entry with this name.
    pub fn definition(&self, name: &str) -> Option<&'a Json> {
        self.root.get("$defs")?.get(name)
    }

    /// Property names a schema (an object type) allows, for suggestions.
    pub fn property_names(&self, schema: &'a Json) -> Vec<&'a str> {
        let schema = self.resolve(schema);
        schema
            .get("properties")
            .and_then(Json::as_object)
            .map(|props| props.keys().map(String::as_str).collect())
            .unwrap_or_default()
    }

    /// The schema of a property of an object schema.
    pub fn property(&self, schema: &'a Json, name: &str) -> Option<&'a Json> {
        self.resolve(schema).get("properties")?.get(name)
    }

    fn error(&self, out: &mut Vec<Diagnostic>, node: &Node, path: &str, message: String) {
        out.push(Diagnostic::new(self.file, node.pos, path, message));
    }

    /// Enumerated values, from `enum`, `const` or a `oneOf`/`anyOf` of consts.
    fn enum_values(&self, schema: &'a Json) -> Option<Vec<&'a Json>> {
        if let Some(Json::Array(values)) = schema.get("enum") {
            return Some(values.iter().collect());
        }
        if let Some(value) = schema.get("const") {
            return Some(vec![value]);
        }
        let branches = schema
            .get("oneOf")
            .or_else(|| schema.get("anyOf"))?
            .as_array()?;
        let mut values = Vec::new();
        for branch in branches {
            values.extend(self.enum_values(self.resolve(branch))?);
        }
        Some(values)
    }

    /// Checks `node` against `schema`, appending every problem to `out`.
    pub fn check(&self, schema: &'a Json, node: &Node, path: &str, out: &mut Vec<Diagnostic>) {
        let is_secret = schema
            .get("x-sextant-secret")
            .and_then(Json::as_bool)
            .unwrap_or(false);
        let schema = self.resolve(schema);
        if schema.as_bool() == Some(true) {
            return;
        }
        if is_secret && (matches!(node.value, Value::String(_)) || is_unquoted_scalar(&node.value))
        {
            out.push(
                Diagnostic::new(
                    self.file,
                    node.pos,
                    path,
                    "a secret cannot be written inline in a manifest",
                )
                .with_hint(Some(
                    "use `{env: NAME}` or `{file: PATH}` so the secret stays out of Git"
                        .to_string(),
                )),
            );
            return;
        }
        if let Some(values) = self.enum_values(schema) {
            self.check_enum(&values, node, path, out);
            return;
        }
        if let Some(branches) = schema
            .get("anyOf")
            .or_else(|| schema.get("oneOf"))
            .and_then(Json::as_array)
        {
            self.check_branches(branches, node, path, out);
            return;
        }
        if let Some(types) = declared_types(schema) {
            let actual = node_types(&node.value);
            if !types.iter().any(|t| actual.contains(t)) {
                let expected: Vec<&str> = types
                    .iter()
                    .filter(|t| **t != "null")
                    .map(|t| type_phrase(t))
                    .collect();
                let expected = if expected.is_empty() {
                    "null".to_string()
                } else {
                    expected.join(" or ")
                };
                let mut diagnostic = Diagnostic::new(
                    self.file,
                    node.pos,
                    path,
                    format!("expected {expected}, found {}", node.value.describe()),
                );
                if types.contains(&"string") && is_unquoted_scalar(&node.value) {
                    diagnostic = diagnostic
                        .with_hint(Some("quote the value to make it a string".to_string()));
                }
                out.push(diagnostic);
                return;
            }
        }
        match &node.value {
            Value::Map(entries) => self.check_object(schema, node, entries, path, out),
            Value::Seq(items) => {
                if let Some(min) = schema.get("minItems").and_then(Json::as_u64)
                    && (items.len() as u64) < min
                {
                    self.error(out, node, path, format!("needs at least {min} item(s)"));
                }
                if let Some(item_schema) = schema.get("items") {
                    for (index, item) in items.iter().enumerate() {
                        self.check(item_schema, item, &format!("{path}[{index}]"), out);
                    }
                }
            }
            Value::Int(number) => {
                self.check_integer(schema, node, i128::from(*number), path, out);
            }
            Value::BigInt(number) => self.check_integer(schema, node, **number, path, out),
            Value::Float(number) => {
                if !number.is_finite() {
                    self.error(out, node, path, "number is not finite".to_string());
                }
            }
            Value::String(text) => {
                if let Some(min) = schema.get("minLength").and_then(Json::as_u64)
                    && (text.chars().count() as u64) < min
                {
                    self.error(out, node, path, "must not be empty".to_string());
                }
            }
            Value::Null | Value::Bool(_) => {}
        }
    }

    fn check_enum(&self, values: &[&Json], node: &Node, path: &str, out: &mut Vec<Diagnostic>) {
        let actual = node.to_json();
        if values.iter().any(|v| **v == actual) {
            return;
        }
        let allowed: Vec<String> = values.iter().map(|v| format!("`{}`", show(v))).collect();
        let message = if let Value::Map(_) | Value::Seq(_) = node.value {
            format!(
                "expected one of {}, found {}",
                allowed.join(", "),
                node.value.describe()
            )
        } else {
            format!("`{}` is not one of {}", show(&actual), allowed.join(", "))
        };
        let strings: Vec<&str> = values.iter().filter_map(|v| v.as_str()).collect();
        let hint = node
            .as_str()
            .and_then(|text| did_you_mean::hint(text, strings.iter().copied()));
        out.push(Diagnostic::new(self.file, node.pos, path, message).with_hint(hint));
    }

    fn check_branches(
        &self,
        branches: &'a [Json],
        node: &Node,
        path: &str,
        out: &mut Vec<Diagnostic>,
    ) {
        let actual = node_types(&node.value);
        let compatible: Vec<&'a Json> = branches
            .iter()
            .filter(|branch| {
                let resolved = self.resolve(branch);
                match declared_types(resolved) {
                    Some(types) => types.iter().any(|t| actual.contains(t)),
                    None => true,
                }
            })
            .collect();
        if compatible.is_empty() {
            let mut expected: Vec<String> = Vec::new();
            for branch in branches {
                let resolved = self.resolve(branch);
                let phrase = if let Some(values) = self.enum_values(resolved) {
                    let list: Vec<String> =
                        values.iter().map(|v| format!("`{}`", show(v))).collect();
                    format!("one of {}", list.join(", "))
                } else if resolved.get("properties").is_some() {
                    let keys = self.property_names(resolved);
                    format!("`{{{}: ...}}`", keys.join(", "))
                } else {
                    declared_types(resolved)
                        .unwrap_or_default()
                        .iter()
                        .filter(|t| **t != "null")
                        .map(|t| type_phrase(t).to_string())
                        .collect::<Vec<_>>()
                        .join(" or ")
                };
                if !phrase.is_empty() && !expected.contains(&phrase) {
                    expected.push(phrase);
                }
            }
            let quote = expected.iter().any(|e| e == "a string") && is_unquoted_scalar(&node.value);
            out.push(
                Diagnostic::new(
                    self.file,
                    node.pos,
                    path,
                    format!(
                        "expected {}, found {}",
                        expected.join(" or "),
                        node.value.describe()
                    ),
                )
                .with_hint(quote.then(|| "quote the value to make it a string".to_string())),
            );
            return;
        }
        let mut best: Option<Vec<Diagnostic>> = None;
        for branch in compatible {
            let mut attempt = Vec::new();
            self.check(branch, node, path, &mut attempt);
            if attempt.is_empty() {
                return;
            }
            if best.as_ref().is_none_or(|b| attempt.len() < b.len()) {
                best = Some(attempt);
            }
        }
        out.extend(best.unwrap_or_default());
    }

    fn check_integer(
        &self,
        schema: &Json,
        node: &Node,
        number: i128,
        path: &str,
        out: &mut Vec<Diagnostic>,
    ) {
        let minimum = schema.get("minimum").and_then(Json::as_i64).map(i128::from);
        let maximum = schema.get("maximum").and_then(Json::as_i64).map(i128::from);
        if let Some(min) = minimum
            && number < min
        {
            self.error(
                out,
                node,
                path,
                format!("must be at least {min}, found {number}"),
            );
            return;
        }
        if let Some(max) = maximum
            && number > max
        {
            self.error(
                out,
                node,
                path,
                format!("must be at most {max}, found {number}"),
            );
            return;
        }
        if let Some((low, high)) = schema
            .get("format")
            .and_then(Json::as_str)
            .and_then(format_bounds)
            && (number < low || number > high)
        {
            self.error(out, node, path, format!("{number} is out of range"));
        }
    }

    fn check_object(
        &self,
        schema: &'a Json,
        node: &Node,
        entries: &[super::node::Entry],
        path: &str,
        out: &mut Vec<Diagnostic>,
    ) {
        let properties = schema.get("properties").and_then(Json::as_object);
        let additional = schema.get("additionalProperties");
        let mut seen: Vec<&str> = Vec::new();
        let mut suggested: Vec<&str> = Vec::new();
        for entry in entries {
            let Some(key) = entry.key.as_str() else {
                // YAML reads some plain words as booleans, numbers or null (`y`, `n`, `on`,
                // `off`, `1`, `~`): the user meant a name, and quoting keeps it one.
                let found = entry.key.value.describe();
                out.push(
                    Diagnostic::new(
                        self.file,
                        entry.key.pos,
                        path,
                        format!("keys must be strings, found {found}"),
                    )
                    .with_hint(Some(format!(
                        "YAML reads this key as {found}; quote it to make it a name (unquoted `y`, `no`, `off`, `1` and `~` are not strings)"
                    ))),
                );
                continue;
            };
            let child = join(path, key);
            if seen.contains(&key) {
                self.error(out, &entry.key, &child, format!("duplicate key `{key}`"));
                continue;
            }
            seen.push(key);
            if let Some(property) = properties.and_then(|p| p.get(key)) {
                self.check(property, &entry.value, &child, out);
                continue;
            }
            match additional {
                Some(Json::Bool(false)) => {
                    let names: Vec<&str> = properties
                        .map(|p| p.keys().map(String::as_str).collect())
                        .unwrap_or_default();
                    let where_ = if path.is_empty() {
                        String::new()
                    } else {
                        format!(" in `{path}`")
                    };
                    let closest = did_you_mean::closest(key, names.iter().copied());
                    suggested.extend(closest);
                    let hint = closest.map(|c| format!("did you mean `{c}`?")).or_else(|| {
                        (!names.is_empty()).then(|| {
                            let list: Vec<String> =
                                names.iter().map(|n| format!("`{n}`")).collect();
                            format!("known fields: {}", list.join(", "))
                        })
                    });
                    out.push(
                        Diagnostic::new(
                            self.file,
                            entry.key.pos,
                            &child,
                            format!("unknown field `{key}`{where_}"),
                        )
                        .with_hint(hint),
                    );
                }
                Some(extra) if extra.is_object() => self.check(extra, &entry.value, &child, out),
                _ => {}
            }
        }
        if let Some(min) = schema.get("minProperties").and_then(Json::as_u64)
            && (entries.len() as u64) < min
        {
            self.error(out, node, path, format!("needs at least {min} entry"));
        }
        if let Some(Json::Array(required)) = schema.get("required") {
            for name in required.iter().filter_map(Json::as_str) {
                // A misspelt field is reported once, as unknown with a suggestion.
                if !seen.contains(&name) && !suggested.contains(&name) {
                    let at = if path.is_empty() {
                        "the document".to_string()
                    } else {
                        format!("`{path}`")
                    };
                    self.error(
                        out,
                        node,
                        &join(path, name),
                        format!("missing required field `{name}` in {at}"),
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::document_kind::DocumentKind;
    use crate::manifest::node::parse_documents;
    use crate::manifest::schema::{checker_schema, document_def};
    use crate::model::Kind;

    fn check(kind: impl Into<DocumentKind>, yaml: &str) -> Vec<String> {
        let schema = checker_schema();
        let checker = Checker::new(schema, Path::new("t.yaml"));
        let node = &parse_documents(yaml).unwrap()[0];
        let mut out = Vec::new();
        checker.check(
            checker.definition(&document_def(kind)).unwrap(),
            node,
            "",
            &mut out,
        );
        out.iter()
            .map(|d| {
                format!(
                    "{}:{} {} {}{}",
                    d.line,
                    d.column,
                    d.path,
                    d.message,
                    d.hint
                        .as_ref()
                        .map(|h| format!(" ({h})"))
                        .unwrap_or_default()
                )
            })
            .collect()
    }

    #[test]
    fn accepts_a_valid_document() {
        let errors = check(
            Kind::Sddc,
            "kind: Sddc\nname: a\nspec:\n  region: us-west-2\n  num_hosts: 2\n",
        );
        assert!(errors.is_empty(), "{errors:?}");
    }

    #[test]
    fn unknown_field_suggests_the_closest() {
        let errors = check(
            Kind::Sddc,
            "kind: Sddc\nname: a\nspec:\n  region: us-west-2\n  num_host: 2\n",
        );
        assert_eq!(
            errors,
            vec![
                "5:3 spec.num_host unknown field `num_host` in `spec` (did you mean `num_hosts`?)"
            ]
        );
        let errors = check(
            Kind::Sddc,
            "kind: Sddc\nname: a\nspec:\n  region: us-west-2\n",
        );
        assert_eq!(
            errors,
            vec!["4:3 spec.num_hosts missing required field `num_hosts` in `spec`"]
        );
    }

    #[test]
    fn wrong_type_and_enum_value() {
        let errors = check(
            Kind::Sddc,
            "kind: Sddc\nname: a\nspec:\n  region: us-west-2\n  num_hosts: two\n  provider: AWZ\n",
        );
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].starts_with("5:14 spec.num_hosts expected an integer, found a string"));
        assert!(errors[1].contains("`AWZ` is not one of `AWS`, `ZEROCLOUD` (did you mean `AWS`?)"));
    }

    #[test]
    fn bounds_are_checked() {
        let errors = check(
            Kind::SaltSchedule,
            "kind: SaltSchedule\nname: a\nspec:\n  job: j\n  schedule:\n    seconds: 30\n",
        );
        assert_eq!(
            errors,
            vec!["6:14 spec.schedule.seconds must be at least 60, found 30"]
        );
        let errors = check(
            Kind::Sddc,
            "kind: Sddc\nname: a\nspec:\n  region: r\n  num_hosts: 99999999999999999999\n",
        );
        assert_eq!(errors.len(), 1, "{errors:?}");
    }

    #[test]
    fn inline_secret_is_rejected_without_echo() {
        let errors = check(
            DocumentKind::Connection,
            "kind: Connection\nname: c\nspec:\n  type: vmc\n  api_token: s3cr3t-value\n",
        );
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].contains("cannot be written inline"), "{errors:?}");
        assert!(!errors[0].contains("s3cr3t"), "{errors:?}");
    }

    #[test]
    fn env_form_is_accepted_for_settings() {
        let errors = check(
            DocumentKind::Connection,
            "kind: Connection\nname: c\nspec:\n  type: vmc\n  api_token: {env: T}\n  max_retries: {env: R}\n  url: {envv: U}\n",
        );
        assert_eq!(
            errors,
            vec!["7:9 spec.url.envv unknown field `envv` in `spec.url` (did you mean `env`?)"]
        );
    }

    #[test]
    fn number_where_string_expected_hints_quoting() {
        let errors = check(
            DocumentKind::Connection,
            "kind: Connection\nname: c\nspec:\n  type: vcd\n  api_version: 36.1\n",
        );
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].contains("quote the value"), "{errors:?}");
    }
}
