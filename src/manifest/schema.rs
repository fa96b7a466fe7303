//! The JSON Schema of a manifest document, generated from the raw types in `spec.rs`.
//!
//! The same schema drives the structural checks (`structure.rs`), so what the schema says
//! and what `validate` accepts cannot drift apart. `schemas/manifest.schema.json` is this
//! output, committed and pinned by a test.

use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, SchemaGenerator};
use serde_json::{Value, json};

use super::spec::{
    ConnectionEnvelope, ConnectionSpec, ResourceEnvelope, SaltJobSpec, SaltScheduleSpec,
    SaltTargetSpec, SddcSpec, VcdApiTokenSpec, VirtualMachineSpec,
};
use crate::model::Kind;

/// The name of a kind's document schema in `$defs`.
pub fn document_def(kind: Kind) -> String {
    format!("{kind}Document")
}

fn kind_description(kind: Kind) -> &'static str {
    match kind {
        Kind::Connection => "Where and how to talk to one system (the token settings).",
        Kind::Sddc => "A VMware Cloud on AWS SDDC (vmc connection).",
        Kind::SaltTarget => "An Aria Automation Config target group (raas connection).",
        Kind::SaltJob => "An Aria Automation Config saved job (raas connection).",
        Kind::SaltSchedule => "An Aria Automation Config schedule (raas connection).",
        Kind::VcdApiToken => {
            "A Cloud Director API token (vcd connection with username and password)."
        }
        Kind::VirtualMachine => {
            "An existing vSphere VM: power state, CPU and memory (vsphere connection). \
             `ensure: absent` is not allowed."
        }
    }
}

fn envelope_and_spec(kind: Kind, generator: &mut SchemaGenerator) -> (Value, Value) {
    let envelope = match kind {
        Kind::Connection => ConnectionEnvelope::json_schema(generator),
        _ => ResourceEnvelope::json_schema(generator),
    };
    let spec = match kind {
        Kind::Connection => generator.subschema_for::<ConnectionSpec>(),
        Kind::Sddc => generator.subschema_for::<SddcSpec>(),
        Kind::SaltTarget => generator.subschema_for::<SaltTargetSpec>(),
        Kind::SaltJob => generator.subschema_for::<SaltJobSpec>(),
        Kind::SaltSchedule => generator.subschema_for::<SaltScheduleSpec>(),
        Kind::VcdApiToken => generator.subschema_for::<VcdApiTokenSpec>(),
        Kind::VirtualMachine => generator.subschema_for::<VirtualMachineSpec>(),
    };
    (envelope.to_value(), spec.to_value())
}

fn document_schema(kind: Kind, generator: &mut SchemaGenerator) -> Value {
    let (mut document, spec) = envelope_and_spec(kind, generator);
    let mut description = kind_description(kind).to_string();
    let attributes = kind.attributes();
    if !attributes.is_empty() {
        let list: Vec<String> = attributes.iter().map(|a| format!("`{a}`")).collect();
        description.push_str(&format!(
            " Attributes other documents can read with `${{{kind}/<name>.<attribute>}}`: {}.",
            list.join(", ")
        ));
    }
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
            if kind == Kind::Connection {
                list.push(json!("spec"));
            }
        }
        if kind != Kind::Connection {
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

/// The whole manifest schema: one document of any kind.
pub fn manifest_schema() -> Value {
    let mut generator = SchemaSettings::draft2020_12().into_generator();
    let mut documents = serde_json::Map::new();
    for kind in Kind::ALL {
        documents.insert(document_def(kind), document_schema(kind, &mut generator));
    }
    let mut defs = documents;
    let generated = generator.take_definitions(true);
    for (name, schema) in generated {
        defs.insert(name, schema);
    }
    let one_of: Vec<Value> = Kind::ALL
        .iter()
        .map(|kind| json!({ "$ref": format!("#/$defs/{}", document_def(*kind)) }))
        .collect();
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "sextant manifest",
        "description": "One document of a sextant manifest file (several documents per file \
                        are separated by `---`). Strings in a resource's spec may refer to \
                        another resource's attribute with `${Kind/name.attribute}`.",
        "oneOf": one_of,
        "$defs": defs,
    })
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
        for kind in Kind::ALL {
            let document = &schema["$defs"][document_def(kind)];
            assert_eq!(document["properties"]["kind"]["const"], kind.as_str());
            assert_eq!(document["additionalProperties"], false);
            assert!(
                document["description"]
                    .as_str()
                    .is_some_and(|d| !d.is_empty())
            );
            for attribute in kind.attributes() {
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
