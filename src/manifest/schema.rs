//! The JSON Schema of a manifest document, generated from the raw types in `spec.rs`.
//!
//! The same schema drives the structural checks (`structure.rs`), so what the schema says
//! and what `validate` accepts cannot drift apart. `schemas/manifest.schema.json` is this
//! output, committed and pinned by a test. The published schema differs from the one the
//! checks read in one way: a field that is not a plain string also accepts a whole
//! `${var.NAME}` (editors see documents before substitution; the checks see them after).

use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, SchemaGenerator};
use serde_json::{Value, json};

use super::document_kind::DocumentKind;
use super::spec::{
    ConnectionEnvelope, ConnectionSpec, EnvironmentEnvelope, EnvironmentSpec, LockEnvelope,
    LockSpec, ResourceEnvelope,
};

/// The name of a kind's document schema in `$defs`.
pub fn document_def(kind: impl Into<DocumentKind>) -> String {
    format!("{}Document", kind.into())
}

/// The description of the Connection document.
const CONNECTION_DESCRIPTION: &str = "Where and how to talk to one system (the token settings).";

/// The schema of a document of any kind.
fn document_schema(kind: DocumentKind, generator: &mut SchemaGenerator) -> Value {
    match kind {
        DocumentKind::Connection => declared_document_schema(
            kind,
            ConnectionEnvelope::json_schema(generator).to_value(),
            generator.subschema_for::<ConnectionSpec>().to_value(),
            CONNECTION_DESCRIPTION,
            &[],
        ),
        DocumentKind::Resource(resource) => declared_document_schema(
            kind,
            ResourceEnvelope::json_schema(generator).to_value(),
            resource.spec_schema(generator).to_value(),
            resource.description(),
            resource.attributes(),
        ),
        DocumentKind::Environment => environment_schema(generator),
        DocumentKind::Lock => lock_schema(generator),
    }
}

/// The schema of a document declared by address (a connection or a resource).
fn declared_document_schema(
    kind: DocumentKind,
    mut document: Value,
    spec: Value,
    description: &str,
    attributes: &[&str],
) -> Value {
    let mut description = description.to_string();
    if !attributes.is_empty() {
        let list: Vec<String> = attributes.iter().map(|a| format!("`{a}`")).collect();
        description.push_str(&format!(
            " Attributes other documents can read with `${{{kind}/<name>.<attribute>}}`: {}.",
            list.join(", ")
        ));
    }
    // A connection always has a spec; a resource may leave it out when it is to be deleted.
    let resource = matches!(kind, DocumentKind::Resource(_));
    if let Some(object) = document.as_object_mut() {
        object.insert("title".into(), json!(document_def(kind)));
        object.insert("description".into(), json!(description));
        if !attributes.is_empty() {
            object.insert("x-sextant-attributes".into(), json!(attributes));
        }
        if let Some(Value::Object(properties)) = object.get_mut("properties") {
            let mut ordered = serde_json::Map::new();
            if let Some(api) = properties.remove("apiVersion") {
                ordered.insert("apiVersion".into(), api);
            }
            ordered.insert(
                "kind".into(),
                json!({ "description": "The kind of object.", "const": kind.as_str() }),
            );
            ordered.extend(std::mem::take(properties));
            let mut spec = spec;
            if let Some(spec) = spec.as_object_mut() {
                spec.insert(
                    "description".into(),
                    json!(format!("What the `{kind}` should look like.")),
                );
            }
            ordered.insert("spec".into(), spec);
            *properties = ordered;
        }
        let required = object
            .entry("required")
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(list) = required {
            list.retain(|v| v != "kind" && v != "spec");
            list.insert(0, json!("kind"));
            if !resource {
                list.push(json!("spec"));
            }
        }
        if resource {
            // `spec` may be left out only when the object is to be deleted.
            object.insert(
                "if".into(),
                json!({ "properties": { "ensure": { "const": "absent" } }, "required": ["ensure"] }),
            );
            object.insert("else".into(), json!({ "required": ["spec"] }));
        }
    }
    document
}

/// The name of the Environment document's schema in `$defs`.
pub const ENVIRONMENT_DEF: &str = "EnvironmentDocument";

/// The name of the schema of a whole `${var.NAME}` in `$defs` (published schema only).
const VARIABLE_DEF: &str = "Variable";

/// The name of the Lock document's schema in `$defs`.
pub const LOCK_DEF: &str = "LockDocument";

fn environment_schema(generator: &mut SchemaGenerator) -> Value {
    let document = EnvironmentEnvelope::json_schema(generator).to_value();
    let spec = generator.subschema_for::<EnvironmentSpec>().to_value();
    special_document_schema(
        document,
        spec,
        "Environment",
        "What the environment includes, its values and its patches.",
        "One estate built from shared manifests (one per environment directory): the \
         included documents with `${var.NAME}` substituted and patches applied. Every \
         command given the environment's directory loads it.",
    )
}

fn lock_schema(generator: &mut SchemaGenerator) -> Value {
    let document = LockEnvelope::json_schema(generator).to_value();
    let spec = generator.subschema_for::<LockSpec>().to_value();
    special_document_schema(
        document,
        spec,
        "Lock",
        "The lock backend and how long to wait for a lock.",
        "Where `apply` takes its locks, one per estate it changes, so that applies from any \
         runner or repository never interleave (at most one per run; `--lock` and \
         `--lock-timeout` override it). Not a resource: nothing is created.",
    )
}

/// The schema of a document that is not a resource (`Environment`, `Lock`): its envelope's
/// fields with `kind` first and `spec` last.
fn special_document_schema(
    mut document: Value,
    mut spec: Value,
    kind: &str,
    spec_description: &str,
    description: &str,
) -> Value {
    if let Some(spec) = spec.as_object_mut() {
        spec.insert("description".into(), json!(spec_description));
    }
    if let Some(object) = document.as_object_mut() {
        object.insert("title".into(), json!(format!("{kind}Document")));
        object.insert("description".into(), json!(description));
        if let Some(Value::Object(properties)) = object.get_mut("properties") {
            let mut ordered = serde_json::Map::new();
            if let Some(api) = properties.remove("apiVersion") {
                ordered.insert("apiVersion".into(), api);
            }
            ordered.insert(
                "kind".into(),
                json!({ "description": "The kind of document.", "const": kind }),
            );
            ordered.extend(std::mem::take(properties));
            ordered.insert("spec".into(), spec);
            *properties = ordered;
        }
        if let Some(Value::Array(list)) = object.get_mut("required") {
            list.insert(0, json!("kind"));
            list.push(json!("spec"));
        }
    }
    document
}

fn schema(published: bool) -> Value {
    let mut generator = SchemaSettings::draft2020_12().into_generator();
    let mut defs = serde_json::Map::new();
    for kind in DocumentKind::all() {
        defs.insert(document_def(kind), document_schema(kind, &mut generator));
    }
    let generated = generator.take_definitions(true);
    for (name, schema) in generated {
        defs.insert(name, schema);
    }
    if published {
        for (name, def) in defs.iter_mut() {
            // An environment's own fields are read as written (a patch's fields hold
            // anything already).
            if !name.starts_with("Environment") && name != "PatchSpec" && name != "IncludePath" {
                accept_variables(def);
            }
        }
        defs.insert(
            VARIABLE_DEF.into(),
            json!({
                "description": "A whole `${var.NAME}`: replaced by the environment's value \
                                of NAME, with its type, before the document is checked.",
                "type": "string",
                "pattern": "^\\$\\{var\\.[A-Za-z_][A-Za-z0-9_-]*\\}$",
            }),
        );
    }
    let one_of: Vec<Value> = DocumentKind::all()
        .map(|kind| json!({ "$ref": format!("#/$defs/{}", document_def(kind)) }))
        .collect();
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "sextant manifest",
        "description": "One document of a sextant manifest file (several documents per file \
                        are separated by `---`). Strings in a resource's spec may refer to \
                        another resource's attribute with `${Kind/name.attribute}`, and any \
                        value may be `${var.NAME}` when an `Environment` includes the file; \
                        `$${` is a literal `${`.",
        "oneOf": one_of,
        "$defs": defs,
    })
}

/// The published manifest schema: one document of any kind, a field that is not a plain
/// string also accepting a whole `${var.NAME}`.
pub fn manifest_schema() -> Value {
    schema(true)
}

/// The schema the structural checks read: documents as they are after substitution. Built
/// once per process (`drift` loads two sets of manifests with it).
pub fn checker_schema() -> &'static Value {
    static SCHEMA: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    SCHEMA.get_or_init(|| schema(false))
}

/// Lets every property of `def` that is not a plain string (nor `kind`, nor a secret) be a
/// whole `${var.NAME}` instead.
fn accept_variables(def: &mut Value) {
    let Some(properties) = def.get_mut("properties").and_then(Value::as_object_mut) else {
        return;
    };
    for (name, property) in properties.iter_mut() {
        let plain_string = property.get("type") == Some(&json!("string"))
            && property.get("enum").is_none()
            && property.get("const").is_none();
        let secret = property.get("x-sextant-secret") == Some(&json!(true));
        if name == "kind" || plain_string || secret || *property == json!(true) {
            continue;
        }
        let Some(object) = property.as_object_mut() else {
            continue;
        };
        // The description stays outside, for editors and the generated reference.
        let description = object.remove("description");
        let original = Value::Object(std::mem::take(object));
        object.insert(
            "anyOf".into(),
            json!([original, { "$ref": format!("#/$defs/{VARIABLE_DEF}") }]),
        );
        if let Some(description) = description {
            object.insert("description".into(), description);
        }
    }
}

/// The schema as committed in `schemas/manifest.schema.json` (pretty JSON, trailing newline).
pub fn schema_json() -> String {
    let mut text = serde_json::to_string_pretty(&manifest_schema()).unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_a_documented_document_schema() {
        let schema = manifest_schema();
        for kind in DocumentKind::all() {
            let document = &schema["$defs"][document_def(kind)];
            assert_eq!(document["properties"]["kind"]["const"], kind.as_str());
            assert_eq!(document["additionalProperties"], false);
            assert!(
                document["description"]
                    .as_str()
                    .is_some_and(|d| !d.is_empty())
            );
            let DocumentKind::Resource(resource) = kind else {
                continue;
            };
            for attribute in resource.attributes() {
                assert!(
                    document["description"]
                        .as_str()
                        .unwrap()
                        .contains(attribute),
                    "{kind}: {attribute}"
                );
            }
        }
    }

    #[test]
    fn every_spec_field_has_a_description() {
        let schema = manifest_schema();
        for (name, def) in schema["$defs"].as_object().unwrap() {
            let Some(properties) = def["properties"].as_object() else {
                continue;
            };
            for (field, property) in properties {
                assert!(
                    property.get("description").is_some(),
                    "`{name}.{field}` has no description"
                );
            }
        }
    }
}
