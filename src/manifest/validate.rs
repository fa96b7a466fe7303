//! The validation pipeline: parse every file, check every document against the schema, then
//! build connections and resources, resolve connections and references, and find cycles.
//! Every problem is collected; the model is returned only when there is none.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value as Json;

use super::connection::ConnectionReader;
use super::diagnostics::{Diagnostic, Diagnostics};
use super::did_you_mean;
use super::files::{SourceFile, position_of};
use super::node::{Node, Pos, Value, parse_documents};
use super::references::{self, Edge};
use super::rules::{RuleContext, canonicalize};
use super::schema::{document_def, manifest_schema};
use super::spec::{
    ConnectionSpec, EnsureSpec, ResourceEnvelope, SaltJobSpec, SaltScheduleSpec, SaltTargetSpec,
    SddcSpec, VcdApiTokenSpec, VirtualMachineSpec,
};
use super::structure::Checker;
use crate::model::{
    Address, Connection, Ensure, Kind, Lifecycle, Model, Resource, SourceLocation, SystemType,
    Timeouts,
};

/// A document whose `kind` is known.
pub struct Document {
    pub file: PathBuf,
    pub base_dir: PathBuf,
    pub node: Node,
    pub kind: Kind,
    pub name: Option<String>,
    /// No structural error: typed deserialization and rules may run.
    pub valid: bool,
}

impl Document {
    pub fn location(&self) -> SourceLocation {
        SourceLocation {
            file: self.file.clone(),
            line: self.node.pos.line,
            column: self.node.pos.column,
        }
    }

    pub fn spec_node(&self) -> Option<&Node> {
        self.node.get("spec")
    }

    fn address(&self) -> Option<Address> {
        self.name.clone().map(|n| Address::new(self.kind, n))
    }
}

fn kinds_list() -> String {
    Kind::ALL
        .iter()
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn read_file(source: &SourceFile, errors: &mut Vec<Diagnostic>) -> Option<String> {
    let bytes = match std::fs::read(&source.path) {
        Ok(bytes) => bytes,
        Err(err) => {
            errors.push(Diagnostic::new(
                &source.path,
                Pos::START,
                "",
                format!("cannot read file: {err}"),
            ));
            return None;
        }
    };
    match String::from_utf8(bytes) {
        Ok(text) => Some(text),
        Err(err) => {
            let offset = err.utf8_error().valid_up_to();
            let pos = position_of(err.as_bytes(), offset);
            errors.push(
                Diagnostic::new(&source.path, pos, "", "file is not valid UTF-8 text")
                    .with_hint(Some("manifests are UTF-8 encoded YAML".to_string())),
            );
            None
        }
    }
}

/// Turns one parsed document into a [`Document`], checking its structure.
fn classify(
    source: &SourceFile,
    node: Node,
    checker: &Checker<'_>,
    errors: &mut Vec<Diagnostic>,
) -> Option<Document> {
    let file = &source.path;
    if !matches!(node.value, Value::Map(_)) {
        errors.push(
            Diagnostic::new(
                file,
                node.pos,
                "",
                format!(
                    "a document must be a mapping with `kind`, `name` and `spec`, found {}",
                    node.value.describe()
                ),
            )
            .with_hint(Some("separate documents with `---`".to_string())),
        );
        return None;
    }
    let kind = match node.get("kind") {
        None => {
            errors.push(
                Diagnostic::new(file, node.pos, "kind", "missing required field `kind`")
                    .with_hint(Some(format!("kinds: {}", kinds_list()))),
            );
            return None;
        }
        Some(kind_node) => match kind_node.as_str() {
            Some(text) => match Kind::parse(text) {
                Some(kind) => kind,
                None => {
                    let names = Kind::ALL.iter().map(|k| k.as_str());
                    let hint = did_you_mean::hint(text, names)
                        .unwrap_or_else(|| format!("kinds: {}", kinds_list()));
                    errors.push(
                        Diagnostic::new(
                            file,
                            kind_node.pos,
                            "kind",
                            format!("unknown kind `{text}`"),
                        )
                        .with_hint(Some(hint)),
                    );
                    return None;
                }
            },
            None => {
                errors.push(Diagnostic::new(
                    file,
                    kind_node.pos,
                    "kind",
                    format!("expected a string, found {}", kind_node.value.describe()),
                ));
                return None;
            }
        },
    };
    let before = errors.len();
    if let Some(schema) = checker.definition(&document_def(kind)) {
        checker.check(schema, &node, "", errors);
    }
    let name = node
        .get("name")
        .and_then(Node::as_str)
        .filter(|n| !n.is_empty())
        .map(str::to_string);
    Some(Document {
        file: file.clone(),
        base_dir: source.base_dir.clone(),
        node,
        kind,
        name,
        valid: errors.len() == before,
    })
}

fn parse_duration(
    doc: &Document,
    field: &str,
    default: Duration,
    errors: &mut Vec<Diagnostic>,
) -> Duration {
    let Some(node) = doc.node.get("timeouts").and_then(|t| t.get(field)) else {
        return default;
    };
    let text = node.as_str().unwrap_or_default();
    match humantime::parse_duration(text.trim()) {
        Ok(d) if !d.is_zero() => d,
        _ => {
            errors.push(
                Diagnostic::new(
                    &doc.file,
                    node.pos,
                    format!("timeouts.{field}"),
                    format!("`{text}` is not a duration longer than zero"),
                )
                .with_hint(Some("write a duration like `90m` or `5h`".to_string())),
            );
            default
        }
    }
}

struct Loader<'a> {
    checker: &'a Checker<'a>,
    errors: Vec<Diagnostic>,
}

impl Loader<'_> {
    fn duplicates(&mut self, docs: &[Document]) {
        let mut first: BTreeMap<Address, &Document> = BTreeMap::new();
        for doc in docs {
            let Some(address) = doc.address() else {
                continue;
            };
            match first.get(&address) {
                Some(original) => {
                    let pos = doc.node.get("name").map_or(doc.node.pos, |n| n.pos);
                    self.errors.push(
                        Diagnostic::new(
                            &doc.file,
                            pos,
                            "name",
                            format!("`{address}` is declared twice"),
                        )
                        .with_hint(Some(format!("first declared at {}", original.location()))),
                    );
                }
                None => {
                    first.insert(address, doc);
                }
            }
        }
    }

    fn connections(&mut self, docs: &[Document]) -> BTreeMap<String, (Connection, bool)> {
        let mut connections = BTreeMap::new();
        for doc in docs.iter().filter(|d| d.kind == Kind::Connection) {
            let Some(name) = &doc.name else { continue };
            if connections.contains_key(name) {
                continue;
            }
            let spec_node = doc.spec_node();
            let parsed = spec_node
                .filter(|_| doc.valid)
                .and_then(|n| serde_json::from_value::<ConnectionSpec>(n.to_json()).ok());
            let (Some(spec_node), Some(spec)) = (spec_node, parsed) else {
                // Still declared: resources naming it must not get a second error.
                let system = spec_node
                    .and_then(|n| n.get("type"))
                    .and_then(Node::as_str)
                    .and_then(|t| {
                        serde_json::from_value::<SystemType>(Json::String(t.into())).ok()
                    });
                if let Some(system) = system {
                    connections.insert(
                        name.clone(),
                        (
                            Connection {
                                name: name.clone(),
                                config: crate::model::ConnectionConfig::with_defaults(system),
                                location: doc.location(),
                            },
                            false,
                        ),
                    );
                }
                continue;
            };
            let system = match spec.kind {
                super::spec::ConnectionType::Vmc => SystemType::Vmc,
                super::spec::ConnectionType::Raas => SystemType::Raas,
                super::spec::ConnectionType::Vcd => SystemType::Vcd,
                super::spec::ConnectionType::Vsphere => SystemType::Vsphere,
            };
            let mut reader = ConnectionReader {
                file: &doc.file,
                base_dir: &doc.base_dir,
                spec_node,
                errors: &mut self.errors,
            };
            let (config, ok) = match reader.read(&spec) {
                Some(config) => (config, true),
                None => (crate::model::ConnectionConfig::with_defaults(system), false),
            };
            connections.insert(
                name.clone(),
                (
                    Connection {
                        name: name.clone(),
                        config,
                        location: doc.location(),
                    },
                    ok,
                ),
            );
        }
        connections
    }

    fn resolve_connection(
        &mut self,
        doc: &Document,
        connections: &BTreeMap<String, (Connection, bool)>,
    ) -> Option<String> {
        let system = doc.kind.system()?;
        match doc.node.get("connection") {
            Some(node) => {
                let name = node.as_str()?;
                match connections.get(name) {
                    None => {
                        let hint = did_you_mean::hint(name, connections.keys().map(String::as_str))
                            .or_else(|| {
                                Some(format!(
                                    "declare a `Connection` named `{name}` of type `{system}`"
                                ))
                            });
                        self.errors.push(
                            Diagnostic::new(
                                &doc.file,
                                node.pos,
                                "connection",
                                format!("connection `{name}` is not declared"),
                            )
                            .with_hint(hint),
                        );
                        None
                    }
                    Some((connection, _)) if connection.config.system != system => {
                        self.errors.push(Diagnostic::new(
                            &doc.file,
                            node.pos,
                            "connection",
                            format!(
                                "connection `{name}` is a `{}` connection, but `{}` needs `{system}`",
                                connection.config.system, doc.kind
                            ),
                        ));
                        None
                    }
                    Some(_) => Some(name.to_string()),
                }
            }
            None => {
                let candidates: Vec<&String> = connections
                    .iter()
                    .filter(|(_, (c, _))| c.config.system == system)
                    .map(|(name, _)| name)
                    .collect();
                let pos = doc.node.get("kind").map_or(doc.node.pos, |k| k.pos);
                match candidates.as_slice() {
                    [only] => Some((*only).clone()),
                    [] => {
                        self.errors.push(
                            Diagnostic::new(
                                &doc.file,
                                pos,
                                "connection",
                                format!(
                                    "`{}` needs a `{system}` connection, and none is declared",
                                    doc.kind
                                ),
                            )
                            .with_hint(Some(format!(
                                "declare a `Connection` with `spec.type: {system}`"
                            ))),
                        );
                        None
                    }
                    several => {
                        let names: Vec<String> = several.iter().map(|n| format!("`{n}`")).collect();
                        self.errors.push(
                            Diagnostic::new(
                                &doc.file,
                                pos,
                                "connection",
                                format!(
                                    "several `{system}` connections are declared; this `{}` must say which",
                                    doc.kind
                                ),
                            )
                            .with_hint(Some(format!(
                                "set `connection:` to one of {}",
                                names.join(", ")
                            ))),
                        );
                        None
                    }
                }
            }
        }
    }

    fn check_ignore_changes(&mut self, doc: &Document, lifecycle: &Lifecycle) {
        let Some(items) = doc
            .node
            .get("lifecycle")
            .and_then(|l| l.get("ignore_changes"))
            .and_then(Node::as_seq)
        else {
            return;
        };
        let spec_schema = self
            .checker
            .definition(&document_def(doc.kind))
            .and_then(|d| self.checker.property(d, "spec"));
        let fields: Vec<&str> = spec_schema
            .map(|s| self.checker.property_names(s))
            .unwrap_or_default();
        for (index, path) in lifecycle.ignore_changes.iter().enumerate() {
            let pos = items.get(index).map_or(doc.node.pos, |n| n.pos);
            let field = path.strip_prefix("spec.").map(|rest| {
                rest.split(['.', '['])
                    .next()
                    .unwrap_or_default()
                    .to_string()
            });
            let diag_path = format!("lifecycle.ignore_changes[{index}]");
            match field {
                None => self.errors.push(
                    Diagnostic::new(
                        &doc.file,
                        pos,
                        diag_path,
                        format!("`{path}` is not a spec field path"),
                    )
                    .with_hint(Some("write paths like `spec.desc`".to_string())),
                ),
                Some(field) if !fields.contains(&field.as_str()) => self.errors.push(
                    Diagnostic::new(
                        &doc.file,
                        pos,
                        diag_path,
                        format!("`{}` has no field `spec.{field}`", doc.kind),
                    )
                    .with_hint(
                        did_you_mean::closest(&field, fields.iter().copied())
                            .map(|c| format!("did you mean `spec.{c}`?")),
                    ),
                ),
                Some(_) => {}
            }
        }
    }

    fn resource(
        &mut self,
        doc: &Document,
        connection: Option<String>,
        connections: &BTreeMap<String, (Connection, bool)>,
    ) -> Option<Resource> {
        let name = doc.name.clone()?;
        let spec_node = doc.spec_node()?;
        let mut envelope_json = doc.node.to_json();
        if let Json::Object(map) = &mut envelope_json {
            map.remove("kind");
            map.remove("spec");
        }
        let envelope: ResourceEnvelope = serde_json::from_value(envelope_json).ok()?;
        let ensure = match envelope.ensure {
            Some(EnsureSpec::Absent) => Ensure::Absent,
            _ => Ensure::Present,
        };
        if doc.kind == Kind::VirtualMachine && ensure == Ensure::Absent {
            let pos = doc.node.get("ensure").map_or(doc.node.pos, |n| n.pos);
            self.errors.push(
                Diagnostic::new(
                    &doc.file,
                    pos,
                    "ensure",
                    "`ensure: absent` is not allowed on a `VirtualMachine`: sextant never deletes VMs",
                )
                .with_hint(Some("remove the document to stop managing the VM".to_string())),
            );
        }
        let lifecycle = Lifecycle {
            prevent_destroy: envelope
                .lifecycle
                .as_ref()
                .and_then(|l| l.prevent_destroy)
                .unwrap_or(false),
            ignore_changes: envelope
                .lifecycle
                .as_ref()
                .and_then(|l| l.ignore_changes.clone())
                .unwrap_or_default(),
        };
        self.check_ignore_changes(doc, &lifecycle);
        let defaults = Timeouts::default();
        let timeouts = Timeouts {
            create: parse_duration(doc, "create", defaults.create, &mut self.errors),
            update: parse_duration(doc, "update", defaults.update, &mut self.errors),
            delete: parse_duration(doc, "delete", defaults.delete, &mut self.errors),
        };

        let spec_json = spec_node.to_json();
        let mut rules = RuleContext::new(&doc.file, spec_node);
        match doc.kind {
            Kind::Sddc => {
                if let Ok(spec) = serde_json::from_value::<SddcSpec>(spec_json.clone()) {
                    rules.check_sddc(&spec);
                }
            }
            Kind::SaltTarget => {
                if let Ok(spec) = serde_json::from_value::<SaltTargetSpec>(spec_json.clone()) {
                    rules.check_salt_target(&spec);
                }
            }
            Kind::SaltJob => {
                if let Ok(spec) = serde_json::from_value::<SaltJobSpec>(spec_json.clone()) {
                    rules.check_salt_job(&spec);
                }
            }
            Kind::SaltSchedule => {
                if let Ok(spec) = serde_json::from_value::<SaltScheduleSpec>(spec_json.clone()) {
                    rules.check_salt_schedule(&spec);
                }
            }
            Kind::VcdApiToken => {
                if serde_json::from_value::<VcdApiTokenSpec>(spec_json.clone()).is_ok()
                    && let Some(conn) = connection.as_ref().and_then(|c| connections.get(c))
                    && conn.1
                    && (conn.0.config.username.is_none() || conn.0.config.password.is_none())
                {
                    let pos = doc
                        .node
                        .get("connection")
                        .or_else(|| doc.node.get("kind"))
                        .map_or(doc.node.pos, |n| n.pos);
                    self.errors.push(
                        Diagnostic::new(
                            &doc.file,
                            pos,
                            "connection",
                            format!(
                                "managing API tokens needs a user session, but connection `{}` has no `username` and `password`",
                                conn.0.name
                            ),
                        )
                        .with_hint(Some(
                            "add `username` and `password` to the vcd connection (token sessions cannot manage tokens)"
                                .to_string(),
                        )),
                    );
                }
            }
            Kind::VirtualMachine => {
                let _ = serde_json::from_value::<VirtualMachineSpec>(spec_json.clone());
            }
            Kind::Connection => return None,
        }
        self.errors.extend(rules.errors);
        let mut spec = spec_json;
        canonicalize(doc.kind, &mut spec);
        Some(Resource {
            address: Address::new(doc.kind, name),
            connection: connection.unwrap_or_default(),
            depends_on: Vec::new(),
            ensure,
            lifecycle,
            timeouts,
            spec,
            references: Vec::new(),
            base_dir: doc.base_dir.clone(),
            location: doc.location(),
        })
    }
}

/// Validates the given files into a model, or returns every problem found.
pub fn validate_files(
    sources: &[SourceFile],
    mut errors: Vec<Diagnostic>,
) -> Result<Model, Diagnostics> {
    let schema = manifest_schema();
    let checker = Checker::new(&schema, Path::new(""));
    let mut docs: Vec<Document> = Vec::new();
    for source in sources {
        let Some(text) = read_file(source, &mut errors) else {
            continue;
        };
        let nodes = match parse_documents(&text) {
            Ok(nodes) => nodes,
            Err(err) => {
                errors.push(Diagnostic::new(
                    &source.path,
                    err.pos,
                    "",
                    format!("invalid YAML: {}", err.message),
                ));
                continue;
            }
        };
        let file_checker = Checker::new(&schema, &source.path);
        for node in nodes {
            if let Some(doc) = classify(source, node, &file_checker, &mut errors) {
                docs.push(doc);
            }
        }
    }

    let mut loader = Loader {
        checker: &checker,
        errors,
    };
    loader.duplicates(&docs);
    let connections = loader.connections(&docs);

    let declared: BTreeMap<Address, &Document> = docs
        .iter()
        .filter(|d| d.kind != Kind::Connection)
        .filter_map(|d| d.address().map(|a| (a, d)))
        .rev()
        .collect();
    let mut resources: BTreeMap<Address, Resource> = BTreeMap::new();
    let mut edges: Vec<Edge> = Vec::new();
    let mut seen = BTreeSet::new();
    for doc in docs.iter().filter(|d| d.kind != Kind::Connection) {
        let Some(address) = doc.address() else {
            continue;
        };
        if !seen.insert(address.clone()) {
            continue;
        }
        let connection = loader.resolve_connection(doc, &connections);
        edges.extend(references::collect_edges(
            doc,
            &declared,
            &mut loader.errors,
        ));
        if !doc.valid {
            continue;
        }
        if let Some(resource) = loader.resource(doc, connection, &connections) {
            resources.insert(address, resource);
        }
    }
    references::apply_edges(&mut resources, &edges);
    references::check_cycles(&edges, &mut loader.errors);

    let mut diagnostics = Diagnostics {
        errors: loader.errors,
    };
    if !diagnostics.is_empty() {
        diagnostics.sort();
        return Err(diagnostics);
    }
    Ok(Model {
        connections: connections
            .into_iter()
            .map(|(name, (connection, _))| (name, connection))
            .collect(),
        resources,
    })
}

/// The ensure of a declared document (for reference checks).
pub fn declared_ensure(doc: &Document) -> Ensure {
    match doc.node.get("ensure").and_then(Node::as_str) {
        Some("absent") => Ensure::Absent,
        _ => Ensure::Present,
    }
}
