//! Turns live objects into manifests, so an existing estate can be adopted (`sextant export`).
//!
//! Owns the choice of what an exported document holds: the live object's spec (already
//! normalized by its provider into the manifest's canonical spelling) cut down to the fields
//! the manifest schema lets a user write, in the schema's field order, nested objects sorted
//! by key, documents sorted by name. This is not a wire format: it writes manifests from
//! [`LiveObject::spec`] and checks that the YAML it wrote reads back as the same value.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::manifest::{checker_schema, document_def};
use crate::model::Kind;
use crate::providers::{LiveObject, LiveStatus};

/// Why a kind could not be written as YAML.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("cannot write `{address}` as YAML: {message}")]
    Yaml { address: String, message: String },
    #[error("the YAML written for `{address}` does not read back as the same value")]
    RoundTrip { address: String },
}

/// The manifest text of one kind plus what was left out and why.
#[derive(Debug, Default)]
pub struct KindExport {
    /// The file's text; empty when no object was exported.
    pub text: String,
    /// Names written, sorted.
    pub exported: Vec<String>,
    /// `(name, reason)` of live objects left out.
    pub skipped: Vec<(String, String)>,
}

/// Which live objects to export: not those other manifests already declare
/// (`--skip-declared`), and only names matching one of the patterns (`--name`), if any.
#[derive(Debug, Default)]
pub struct ExportFilter {
    pub declared: std::collections::BTreeSet<crate::model::Address>,
    /// Shell-style patterns: `*` any run of characters, `?` one character.
    pub patterns: Vec<String>,
}

/// Why [`ExportFilter`] leaves an object out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeftOut {
    Declared,
    NameNotMatched,
}

impl ExportFilter {
    /// `None` when the object is exported.
    pub fn left_out(&self, kind: Kind, name: &str) -> Option<LeftOut> {
        if self
            .declared
            .contains(&crate::model::Address::new(kind, name))
        {
            Some(LeftOut::Declared)
        } else if !self.patterns.is_empty() && !self.patterns.iter().any(|p| name_matches(p, name))
        {
            Some(LeftOut::NameNotMatched)
        } else {
            None
        }
    }

    pub fn keeps(&self, kind: Kind, name: &str) -> bool {
        self.left_out(kind, name).is_none()
    }
}

/// Whether `name` matches the shell-style `pattern` (`*`, `?`; everything else literal).
pub use crate::model::wildcard::matches as name_matches;

/// The file a kind is exported to, e.g. `salt-job.yaml`.
pub fn file_name(kind: Kind) -> String {
    let mut out = String::new();
    for (i, c) in kind.as_str().chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('-');
        }
        out.push(c.to_ascii_lowercase());
    }
    out.push_str(".yaml");
    out
}

/// The spec fields a user may write for `kind`, in the schema's order.
pub fn spec_fields(kind: Kind) -> Vec<String> {
    let schema = checker_schema();
    let mut spec = &schema["$defs"][document_def(kind)]["properties"]["spec"];
    if let Some(reference) = spec.get("$ref").and_then(Value::as_str)
        && let Some(name) = reference.strip_prefix("#/$defs/")
    {
        spec = &schema["$defs"][name];
    }
    spec["properties"]
        .as_object()
        .map(|properties| properties.keys().cloned().collect())
        .unwrap_or_default()
}

/// Writes the live objects of one kind of `connection` as manifest documents.
///
/// Deleted objects are left out silently, failed ones and name clashes with a reason.
pub fn export_kind(
    connection: &str,
    kind: Kind,
    objects: &[LiveObject],
) -> Result<KindExport, ExportError> {
    let mut out = KindExport::default();
    let mut by_name: BTreeMap<&str, Vec<&LiveObject>> = BTreeMap::new();
    for object in objects.iter().filter(|o| o.kind == kind) {
        match &object.status {
            LiveStatus::Deleted => {}
            LiveStatus::Failed { reason } => out
                .skipped
                .push((object.name.clone(), format!("it is unusable: {reason}"))),
            LiveStatus::Ready | LiveStatus::Busy { .. } if object.name.is_empty() => out
                .skipped
                .push((object.id.clone(), "it has no name".to_string())),
            LiveStatus::Ready | LiveStatus::Busy { .. } => {
                by_name.entry(&object.name).or_default().push(object);
            }
        }
    }
    let fields = spec_fields(kind);
    let mut documents = Vec::new();
    for (name, same) in by_name {
        let [object] = same.as_slice() else {
            out.skipped.push((
                name.to_string(),
                format!(
                    "{} live objects share this name, so no manifest can tell them apart",
                    same.len()
                ),
            ));
            continue;
        };
        documents.push(document(connection, object, &fields)?);
        out.exported.push(name.to_string());
    }
    if !documents.is_empty() {
        out.text = format!(
            "# {kind} objects of connection `{connection}`, written by `sextant export`.\n\
             # Only fields a manifest can set are included; secrets never are.\n{}",
            documents.join("---\n")
        );
    }
    Ok(out)
}

/// One document: a comment where needed, then the YAML.
fn document(
    connection: &str,
    object: &LiveObject,
    fields: &[String],
) -> Result<String, ExportError> {
    let address = format!("{}/{}", object.kind, object.name);
    let mut spec = Map::new();
    let live = object.spec.value();
    for field in fields {
        if let Some(value) = live.get(field) {
            spec.insert(field.clone(), sorted(value));
        }
    }
    // What the server cannot give back (a token's secret file), with a comment saying so.
    let comment = object.kind.exported(&object.name, &mut spec);
    let value = json!({
        "kind": object.kind.as_str(),
        "name": object.name,
        "connection": connection,
        "spec": Value::Object(spec),
    });
    let yaml = serde_saphyr::to_string(&value).map_err(|err| ExportError::Yaml {
        address: address.clone(),
        message: err.to_string(),
    })?;
    let back: Value = serde_saphyr::from_str(&yaml).map_err(|_| ExportError::RoundTrip {
        address: address.clone(),
    })?;
    if back != value {
        return Err(ExportError::RoundTrip { address });
    }
    Ok(format!("{comment}{yaml}"))
}

/// A copy with every nested object's keys sorted, so output never depends on server order,
/// and every `${` in a string escaped as `$${`, so a manifest reads it as text rather than as
/// a reference or a variable.
fn sorted(value: &Value) -> Value {
    match value {
        Value::String(text) if text.contains("${") => Value::String(text.replace("${", "$${")),
        Value::Object(map) => {
            let ordered: BTreeMap<&String, Value> =
                map.iter().map(|(k, v)| (k, sorted(v))).collect();
            Value::Object(ordered.into_iter().map(|(k, v)| (k.clone(), v)).collect())
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_patterns_match_like_the_shell() {
        for (pattern, name, expected) in [
            ("*(prod)", "Deploy web (prod)", true),
            ("*(prod)", "Deploy web (staging)", false),
            ("prod ?eb", "prod web", true),
            ("prod*", "prod", true),
            ("*a*b*", "xxaxxbxx", true),
            ("*a*b", "xxaxxbxxc", false),
            ("exact", "exact", true),
            ("exact", "exactly", false),
            ("", "", true),
        ] {
            assert_eq!(name_matches(pattern, name), expected, "{pattern} {name}");
        }
        let filter = ExportFilter {
            declared: [crate::model::Address::new(Kind::SaltJob, "a (prod)")].into(),
            patterns: vec!["*(prod)".into()],
        };
        assert!(!filter.keeps(Kind::SaltJob, "a (prod)"));
        assert!(filter.keeps(Kind::SaltTarget, "a (prod)"));
        assert!(!filter.keeps(Kind::SaltJob, "b (dev)"));
    }

    fn live(kind: Kind, name: &str, spec: Value, status: LiveStatus) -> LiveObject {
        LiveObject {
            kind,
            name: name.to_string(),
            id: format!("id-{name}"),
            spec: spec.into(),
            attributes: crate::providers::Attributes::default(),
            status,
            fingerprint: String::new(),
        }
    }

    #[test]
    fn file_names_are_kebab_case() {
        assert_eq!(file_name(Kind::VcdApiToken), "vcd-api-token.yaml");
        assert_eq!(file_name(Kind::Sddc), "sddc.yaml");
    }

    #[test]
    fn spec_fields_follow_the_schema() {
        let fields = spec_fields(Kind::VirtualMachine);
        assert!(
            fields.contains(&"memory_size_MiB".to_string()),
            "{fields:?}"
        );
        assert!(spec_fields(Kind::Sddc).contains(&"num_hosts".to_string()));
    }

    #[test]
    fn documents_are_sorted_deleted_skipped_and_unknown_fields_dropped() {
        let objects = vec![
            live(
                Kind::VirtualMachine,
                "b",
                json!({"memory_size_MiB": 1024, "power_state": "POWERED_ON", "guest": "x"}),
                LiveStatus::Ready,
            ),
            live(
                Kind::VirtualMachine,
                "a",
                json!({"cpu_count": 1}),
                LiveStatus::Ready,
            ),
            live(Kind::VirtualMachine, "gone", json!({}), LiveStatus::Deleted),
            live(
                Kind::VirtualMachine,
                "broken",
                json!({}),
                LiveStatus::Failed {
                    reason: "FAILED".into(),
                },
            ),
        ];
        let out = export_kind("vc", Kind::VirtualMachine, &objects).unwrap();
        assert_eq!(out.exported, ["a", "b"]);
        assert_eq!(out.skipped.len(), 1);
        assert!(!out.text.contains("guest"));
        assert!(out.text.find("name: a").unwrap() < out.text.find("name: b").unwrap());
        let b = out.text.split("---\n").nth(1).unwrap();
        assert!(
            b.find("power_state").unwrap() < b.find("memory_size_MiB").unwrap(),
            "{b}"
        );
    }

    #[test]
    fn tokens_get_a_placeholder_file_and_a_comment() {
        let objects = vec![live(
            Kind::VcdApiToken,
            "ci/bot",
            json!({}),
            LiveStatus::Ready,
        )];
        let out = export_kind("vcd", Kind::VcdApiToken, &objects).unwrap();
        assert!(
            out.text.contains("file: .secrets/ci-bot.json"),
            "{}",
            out.text
        );
        assert!(out.text.contains("cannot be exported"));
    }

    #[test]
    fn documents_of_every_kind() {
        let cases = [
            (
                Kind::Sddc,
                "vmc",
                json!({"region": "US_WEST_2", "provider": "AWS", "num_hosts": 3,
                    "host_instance_type": "i3.metal", "sddc_type": "DEFAULT",
                    "deployment_type": "SingleAZ", "vpc_cidr": "10.2.0.0/16", "size": "medium"}),
            ),
            (
                Kind::SaltTarget,
                "salt",
                json!({"desc": "", "tgt": {"*": {"tgt_type": "compound", "tgt": "G@os:Ubuntu and web*"}}}),
            ),
            (
                Kind::SaltJob,
                "salt",
                json!({"desc": "yes", "cmd": "local", "fun": "state.apply",
                    "arg": {"kwarg": {"test": true, "mods": "nginx"}, "arg": ["1", 2]},
                    "masters": [], "target": "web: servers"}),
            ),
            (
                Kind::SaltSchedule,
                "salt",
                json!({"job": "Apply", "target": "All Minions",
                    "schedule": {"timezone": "UTC", "cron": "0 3 * * *"}, "enabled": false}),
            ),
            (Kind::VcdApiToken, "vcd", json!({})),
            (
                Kind::VirtualMachine,
                "vcenter",
                json!({"power_state": "POWERED_ON", "cpu_count": 2, "memory_size_MiB": 4096}),
            ),
        ];
        let mut all = String::new();
        for (kind, connection, spec) in cases {
            let objects = vec![live(kind, &format!("{kind} #1"), spec, LiveStatus::Ready)];
            all.push_str(&export_kind(connection, kind, &objects).unwrap().text);
            all.push_str("---\n");
        }
        insta::assert_snapshot!(all);
    }

    #[test]
    fn a_live_dollar_brace_is_exported_escaped_and_loads_as_text() {
        let spec =
            json!({"fun": "cmd.run", "desc": "uses ${HOME}", "arg": {"arg": ["echo ${var.x}"]}});
        let objects = vec![live(Kind::SaltJob, "j", spec, LiveStatus::Ready)];
        let text = export_kind("salt", Kind::SaltJob, &objects).unwrap().text;
        assert!(text.contains("desc: uses $${HOME}"), "{text}");
        assert!(text.contains("echo $${var.x}"), "{text}");
        let connection = "kind: Connection\nname: salt\nspec:\n  type: raas\n  url: https://salt.example.com\n  api_token: {env: T}\n---\n";
        let model = crate::manifest::load_text("adopted.yaml", &format!("{connection}{text}"))
            .unwrap_or_else(|d| panic!("{}", d.render(false)));
        let job = &model.resources[&crate::model::Address::new(Kind::SaltJob, "j")];
        assert!(job.references.is_empty());
        assert_eq!(job.spec.value()["desc"], "uses $${HOME}");
    }

    #[test]
    fn name_clashes_are_skipped() {
        let objects = vec![
            live(Kind::Sddc, "x", json!({}), LiveStatus::Ready),
            live(Kind::Sddc, "x", json!({}), LiveStatus::Ready),
        ];
        let out = export_kind("vmc", Kind::Sddc, &objects).unwrap();
        assert!(out.text.is_empty());
        assert_eq!(out.skipped[0].0, "x");
    }
}
