//! The validation pipeline: parse every file, check every document against the schema, then
//! build connections and resources, resolve connections and references, and find cycles.
//! Every problem is collected; the model is returned only when there is none.
//!
//! Memory: files are read one at a time and each text is dropped once parsed; the tables that
//! span documents (declarations, edges) hold compact data, so that each document's tree is
//! dropped as soon as its resource is built.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value as Json;

use super::connection::ConnectionReader;
use super::diagnostics::{Diagnostic, Diagnostics};
use super::did_you_mean;
use super::document_kind::{DocumentAddress, DocumentKind};
use super::environment::Layer;
use super::files::{Confinement, SourceFile, position_of};
use super::lock;
use super::node::{
    Node, Pos, Segment, Value, document_segments, move_lines, parse_documents_at,
    parse_documents_with,
};
use super::references::{self, Declarations, Declared, Edge};
use super::rules::RuleContext;
use super::schema::{checker_schema, document_def};
use super::spec::ConnectionSpec;
use super::structure::Checker;
use super::variables::SourceText;
use crate::model::{
    Address, Connection, Ensure, Kind, Lifecycle, Model, Resource, SourceLocation, SystemType,
    Timeouts, shown,
};

/// A document whose `kind` is known (a connection or a resource: environments and locks are
/// read apart). Kept small (48 bytes): every document of the estate is held until the model
/// is built.
#[derive(Clone)]
pub struct Document {
    pub origin: Arc<FileOrigin>,
    /// Shared, so that handing a document to another load (see [`Share`]) copies no tree.
    pub node: Arc<Node>,
    pub kind: DocumentKind,
    /// No structural error at all: the document becomes part of the model.
    pub valid: bool,
    /// No structural error under `spec`: typed deserialization and kind rules may run.
    pub spec_valid: bool,
}

/// The file documents come from, shared by all of them.
pub struct FileOrigin {
    /// The path as given or found, for messages.
    pub file: Arc<Path>,
    /// The file's directory as an absolute path.
    pub base_dir: Arc<Path>,
}

impl Document {
    pub fn file(&self) -> &Arc<Path> {
        &self.origin.file
    }

    /// The `name`, when it is a non-empty string.
    pub fn name(&self) -> Option<&str> {
        self.node
            .get("name")
            .and_then(Node::as_str)
            .filter(|n| !n.is_empty())
    }

    pub fn location(&self) -> SourceLocation {
        SourceLocation {
            file: Arc::clone(self.file()),
            line: self.node.pos.line as usize,
            column: self.node.pos.column as usize,
        }
    }

    pub fn spec_node(&self) -> Option<&Node> {
        self.node.get("spec")
    }

    fn address(&self) -> Option<DocumentAddress> {
        self.name().and_then(|n| DocumentAddress::new(self.kind, n))
    }

    /// The ensure the document declares (for reference checks).
    pub fn ensure(&self) -> Ensure {
        match self.node.get("ensure").and_then(Node::as_str) {
            Some("absent") => Ensure::Absent,
            _ => Ensure::Present,
        }
    }
}

/// A name with every character outside printable ASCII spelled as `\u{…}`, and surrounding
/// spaces kept visible inside the quotes: two look-alike names then read differently.
fn spelled_out(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if c.is_ascii_graphic() || c == ' ' {
            out.push(c);
        } else {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        }
    }
    out
}

fn kinds_list() -> String {
    DocumentKind::declared()
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) fn read_file(source: &SourceFile, errors: &mut Vec<Diagnostic>) -> Option<String> {
    let bytes = match super::files::read_manifest(&source.path) {
        Ok(bytes) => bytes,
        Err(message) => {
            errors.push(Diagnostic::new(&source.path, Pos::START, "", message));
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
    origin: &Arc<FileOrigin>,
    node: Node,
    checker: &Checker<'_>,
    errors: &mut Vec<Diagnostic>,
) -> Option<Document> {
    let file = &*origin.file;
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
            Some(text) => match DocumentKind::parse_declared(text) {
                Some(kind) => kind,
                None => {
                    let names = DocumentKind::declared().map(DocumentKind::as_str);
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
    if matches!(kind, DocumentKind::Resource(_))
        && node.get("spec").is_none()
        && node.get("ensure").and_then(Node::as_str) != Some("absent")
    {
        errors.push(
            Diagnostic::new(
                file,
                node.pos,
                "spec",
                "missing required field `spec` in the document",
            )
            .with_hint(Some(
                "only an `ensure: absent` document may leave out `spec`".to_string(),
            )),
        );
    }
    let spec_valid = !errors[before..]
        .iter()
        .any(|e| e.path == "spec" || e.path.starts_with("spec.") || e.path.starts_with("spec["));
    Some(Document {
        origin: Arc::clone(origin),
        node: Arc::new(node),
        kind,
        valid: errors.len() == before,
        spec_valid,
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
    // A non-string was already reported by the structural checks.
    let Some(text) = node.as_str() else {
        return default;
    };
    match humantime::parse_duration(text.trim()) {
        Ok(d) if !d.is_zero() => d,
        _ => {
            errors.push(
                Diagnostic::new(
                    doc.file(),
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
    confinement: &'a Confinement,
    errors: Vec<Diagnostic>,
}

/// A document declaring an address, connection or resource.
struct Declaration {
    address: DocumentAddress,
    /// Index of the declaring document in load order.
    doc: usize,
    ensure: Ensure,
}

impl Loader<'_> {
    /// Reports addresses declared twice and returns the first declaration of every resource
    /// address (connections are checked alike, but are not resources).
    fn declarations(&mut self, docs: &[&Document]) -> Declarations {
        let mut all: Vec<Declaration> = Vec::with_capacity(docs.len());
        for (index, doc) in docs.iter().enumerate() {
            if let Some(address) = doc.address() {
                all.push(Declaration {
                    address,
                    doc: index,
                    ensure: doc.ensure(),
                });
            }
        }
        // By address, then in source order: the first of each run is the declaration kept.
        all.sort_unstable_by(|a, b| (&a.address, a.doc).cmp(&(&b.address, b.doc)));
        let mut first = 0;
        for index in 1..all.len() {
            if all[index].address != all[first].address {
                first = index;
                continue;
            }
            let (original, doc) = (docs[all[first].doc], docs[all[index].doc]);
            let pos = doc.node.get("name").map_or(doc.node.pos, |n| n.pos);
            self.errors.push(
                Diagnostic::new(
                    doc.file(),
                    pos,
                    "name",
                    format!("`{}` is declared twice", all[index].address),
                )
                .with_hint(Some(format!("first declared at {}", original.location()))),
            );
        }
        all.dedup_by(|later, first| later.address == first.address);
        self.check_names(docs, &all);
        Declarations::new(
            all.into_iter()
                .filter_map(|d| {
                    Some(Declared {
                        address: d.address.into_resource()?,
                        doc: d.doc,
                        ensure: d.ensure,
                    })
                })
                .collect(),
        )
    }

    /// Names reach terminals and pull-request comments: one with a control or invisible
    /// character is refused, and one that only looks like another declared name of its kind
    /// (Unicode normalization, look-alike letters, surrounding spaces) is warned about.
    fn check_names(&mut self, docs: &[&Document], declared: &[Declaration]) {
        use std::hash::{Hash, Hasher};
        let name_pos = |doc: &Document| doc.node.get("name").map_or(doc.node.pos, |n| n.pos);
        // By kind and a hash of the UTS #39 skeleton of the trimmed name: the first name seen.
        let mut seen: std::collections::HashMap<(DocumentKind, u64), usize> =
            std::collections::HashMap::new();
        for declaration in declared {
            let doc = docs[declaration.doc];
            let name = declaration.address.name();
            if let Some(c) = name.chars().find(|c| shown::is_hidden_or_control(*c)) {
                self.errors.push(
                    Diagnostic::new(
                        doc.file(),
                        name_pos(doc),
                        "name",
                        format!(
                            "`{}` holds a control or invisible character (U+{:04X})",
                            shown::visible(name),
                            c as u32
                        ),
                    )
                    .with_hint(Some(
                        "names are shown in terminals and pull-request comments; use printable characters".to_string(),
                    )),
                );
                continue;
            }
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            unicode_security::skeleton(name.trim()).for_each(|c| c.hash(&mut hasher));
            let key = (declaration.address.kind(), hasher.finish());
            let Some(&first) = seen.get(&key) else {
                seen.insert(key, declaration.doc);
                continue;
            };
            let other = docs[first];
            let Some(other_name) = other.name() else {
                continue;
            };
            let same = |a: &str, b: &str| {
                unicode_security::skeleton(a.trim()).eq(unicode_security::skeleton(b.trim()))
            };
            if other_name != name && same(other_name, name) {
                self.errors.push(
                    Diagnostic::new(
                        doc.file(),
                        name_pos(doc),
                        "name",
                        format!(
                            "`{}` looks like `{}`, declared at {}: they differ only by Unicode normalization, look-alike letters or surrounding spaces",
                            spelled_out(name),
                            spelled_out(other_name),
                            other.location()
                        ),
                    )
                    .with_hint(Some(format!(
                        "if both are meant, rename one; a `{}` named like another is easy to mistake for it in a review",
                        declaration.address.kind()
                    )))
                    .as_warning(),
                );
            }
        }
    }

    fn connections(&mut self, docs: &[&Document]) -> BTreeMap<String, (Connection, bool)> {
        let mut connections = BTreeMap::new();
        for doc in docs.iter().filter(|d| d.kind == DocumentKind::Connection) {
            let Some(name) = doc.name() else { continue };
            if connections.contains_key(name) {
                continue;
            }
            let spec_node = doc.spec_node();
            let parsed = spec_node
                .filter(|_| doc.spec_valid)
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
                        name.to_string(),
                        (
                            Connection {
                                name: name.to_string(),
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
                file: doc.file(),
                base_dir: &doc.origin.base_dir,
                spec_node,
                confinement: self.confinement,
                errors: &mut self.errors,
            };
            let (config, ok) = match reader.read(&spec) {
                Some(config) => (config, true),
                None => (crate::model::ConnectionConfig::with_defaults(system), false),
            };
            connections.insert(
                name.to_string(),
                (
                    Connection {
                        name: name.to_string(),
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
        kind: Kind,
        connections: &BTreeMap<String, (Connection, bool)>,
    ) -> Option<String> {
        let system = kind.system();
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
                                doc.file(),
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
                            doc.file(),
                            node.pos,
                            "connection",
                            format!(
                                "connection `{name}` is a `{}` connection, but `{}` needs `{system}`",
                                connection.config.system, kind
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
                                doc.file(),
                                pos,
                                "connection",
                                format!(
                                    "`{kind}` needs a `{system}` connection, and none is declared",
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
                                doc.file(),
                                pos,
                                "connection",
                                format!(
                                    "several `{system}` connections are declared; this `{kind}` must say which",
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

    fn check_ignore_changes(&mut self, doc: &Document) {
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
        for (index, item) in items.iter().enumerate() {
            let Some(path) = item.as_str() else { continue };
            let pos = item.pos;
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
                        doc.file(),
                        pos,
                        diag_path,
                        format!("`{path}` is not a spec field path"),
                    )
                    .with_hint(Some("write paths like `spec.desc`".to_string())),
                ),
                Some(field) if !fields.contains(&field.as_str()) => self.errors.push(
                    Diagnostic::new(
                        doc.file(),
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

    /// `previous_names`: each a different name, written once.
    fn previous_names(&mut self, doc: &Document, name: &str) -> Vec<String> {
        let Some(items) = doc.node.get("previous_names").and_then(Node::as_seq) else {
            return Vec::new();
        };
        let mut names: Vec<String> = Vec::new();
        for (index, item) in items.iter().enumerate() {
            let Some(old) = item.as_str() else { continue };
            let path = format!("previous_names[{index}]");
            if old == name {
                self.errors.push(Diagnostic::new(
                    doc.file(),
                    item.pos,
                    path,
                    format!(
                        "`{}` is the document's own name",
                        crate::model::shown::visible(old)
                    ),
                ));
            } else if names.iter().any(|n| n == old) {
                self.errors.push(Diagnostic::new(
                    doc.file(),
                    item.pos,
                    path,
                    format!("`{}` is listed twice", crate::model::shown::visible(old)),
                ));
            } else {
                names.push(old.to_string());
            }
        }
        names
    }

    fn resource(
        &mut self,
        doc: &Document,
        kind: Kind,
        connection: Option<String>,
        connections: &BTreeMap<String, (Connection, bool)>,
    ) -> Option<Resource> {
        let name = doc.name()?;
        let empty = Node {
            pos: doc.node.pos,
            value: Value::Map(Box::default()),
        };
        let spec_node = doc.spec_node().unwrap_or(&empty);
        let ensure = doc.ensure();
        let lifecycle_node = doc.node.get("lifecycle");
        let lifecycle = Lifecycle {
            prevent_destroy: lifecycle_node
                .and_then(|l| l.get("prevent_destroy"))
                .is_some_and(|n| n.value == Value::Bool(true)),
            ignore_changes: lifecycle_node
                .and_then(|l| l.get("ignore_changes"))
                .and_then(Node::as_seq)
                .unwrap_or_default()
                .iter()
                .filter_map(|n| n.as_str().map(str::to_string))
                .collect(),
        };
        self.check_ignore_changes(doc);
        let defaults = Timeouts::default();
        let timeouts = Timeouts {
            create: parse_duration(doc, "create", defaults.create, &mut self.errors),
            update: parse_duration(doc, "update", defaults.update, &mut self.errors),
            delete: parse_duration(doc, "delete", defaults.delete, &mut self.errors),
        };

        let previous_names = self.previous_names(doc, name);
        let mut spec = spec_node.to_json();
        let mut rules = RuleContext {
            doc_node: &doc.node,
            name,
            base_dir: &doc.origin.base_dir,
            confinement: Some(self.confinement),
            connection: connection
                .as_ref()
                .and_then(|c| connections.get(c))
                .filter(|(_, valid)| *valid)
                .map(|(conn, _)| conn),
            ..RuleContext::new(doc.file(), spec_node)
        };
        kind.check_document(
            ensure == Ensure::Absent,
            !previous_names.is_empty(),
            &mut rules,
        );
        // An `ensure: absent` document may leave `spec` out: nothing to check.
        if doc.spec_valid
            && doc.spec_node().is_some()
            && let Err(err) = kind.check_spec(&spec, &mut rules)
        {
            self.errors.push(Diagnostic::new(
                doc.file(),
                spec_node.pos,
                "spec",
                format!("invalid `{kind}` spec: {err}"),
            ));
        }
        self.errors.extend(rules.errors);
        kind.canonicalize(&mut spec);
        Some(Resource {
            address: Address::new(kind, name),
            connection: connection.unwrap_or_default(),
            depends_on: Vec::new(),
            ensure,
            lifecycle,
            timeouts,
            spec: (&spec).into(),
            references: Vec::new(),
            named: Vec::new(),
            previous_names,
            base_dir: Arc::clone(&doc.origin.base_dir),
            location: doc.location(),
        })
    }
}

/// Validates the given files into a model, or returns every problem found. Each document
/// passes through `layer` (substitution and patches) before its structure is checked.
pub fn validate_files(
    sources: &[SourceFile],
    confinement: &Confinement,
    mut errors: Vec<Diagnostic>,
    layer: &Layer,
    share: Share,
) -> Result<Model, Diagnostics> {
    tracing::debug!(files = sources.len(), "loading manifests");
    let schema = checker_schema();
    let mut parsed = Parsed::default();
    let (mut record, received, send) = match share {
        Share::None => (None, None, None),
        Share::Send(sender) => (Some(SharedDocuments::default()), None, Some(sender)),
        // Waits for the other load's documents; none when it stopped without sending them.
        Share::Receive(receiver) => (None, receiver.recv().ok(), None),
    };
    let (texts, documents): (Vec<String>, Vec<Vec<Document>>) = received
        .map(|shared| shared.files.into_iter().unzip())
        .unwrap_or_default();
    let mut reuse = (!texts.is_empty()).then(|| SegmentIndex::new(&texts, documents));
    if let Some(index) = &reuse {
        tracing::debug!(
            segments = index.segments.len(),
            "reusing documents of another load"
        );
    }
    for source in sources {
        // One text at a time: each is dropped once its documents are parsed (unless it is
        // kept with them for another load).
        if let Some(text) = read_file(source, &mut errors) {
            let mut copies = Vec::new();
            let sharing = Sharing {
                record: record.is_some().then_some(&mut copies),
                reuse: reuse.as_mut(),
            };
            parse_file(
                source,
                &text,
                schema,
                layer,
                sharing,
                &mut parsed,
                &mut errors,
            );
            if let Some(record) = record.as_mut()
                && !copies.is_empty()
            {
                record.files.push((text, copies));
            }
        }
    }
    if let (Some(sender), Some(record)) = (send, record) {
        // The other load may have found it has nothing to reuse and gone.
        let _ = sender.send(record);
    }
    validate_documents(parsed, schema, confinement, errors)
}

/// Whether a load hands its parsed documents to another load of nearly the same files, or
/// takes them from one (`sextant drift` loads the manifests at the baseline beside the
/// working tree's: most documents are the same text, and are parsed once).
pub enum Share {
    None,
    /// Send the documents once every file is parsed (before the model is built, so the
    /// other load runs beside this one's checks).
    Send(std::sync::mpsc::SyncSender<SharedDocuments>),
    /// Wait for the other load's documents, and reuse those of the same text.
    Receive(std::sync::mpsc::Receiver<SharedDocuments>),
}

/// Documents of one load, file by file: the text of the file and its documents, in order
/// (their trees shared, not copied). Only files whose documents raised no diagnostic at all
/// are kept, so a reused document is exactly what parsing the same lines gives, moved to
/// where they are now.
#[derive(Default)]
pub struct SharedDocuments {
    files: Vec<(String, Vec<Document>)>,
}

/// The documents another load shared, by the text of the segment (see [`Segment`]) they
/// were parsed from. Built by the load that reuses them, so that the load that shares them
/// only hands them over.
struct SegmentIndex<'t> {
    segments: std::collections::HashMap<&'t str, (u32, Vec<Document>), rustc_hash::FxBuildHasher>,
}

impl<'t> SegmentIndex<'t> {
    /// `documents[i]` are the documents parsed from `texts[i]`, in order.
    fn new(texts: &'t [String], documents: Vec<Vec<Document>>) -> Self {
        let mut segments = std::collections::HashMap::default();
        for (text, documents) in texts.iter().zip(documents) {
            let cuts = document_segments(text);
            let mut documents = documents.into_iter().peekable();
            for (index, segment) in cuts.iter().enumerate() {
                let next_line = cuts.get(index + 1).map_or(u32::MAX, |s| s.line);
                let mut docs = Vec::new();
                while let Some(doc) = documents.next_if(|doc| doc.node.pos.line < next_line) {
                    docs.push(doc);
                }
                segments
                    .entry(&text[segment.start..segment.end])
                    .or_insert((segment.line, docs));
            }
        }
        Self { segments }
    }
}

/// What one file's parse records for, or takes from, another load (default: nothing).
#[derive(Default)]
struct Sharing<'a, 't> {
    /// Receives the file's documents when none of them raised a diagnostic.
    record: Option<&'a mut Vec<Document>>,
    reuse: Option<&'a mut SegmentIndex<'t>>,
}

/// Parses and validates one manifest text already read, as [`validate_files`] does for each
/// file it reads.
pub fn validate_text(
    source: &SourceFile,
    confinement: &Confinement,
    text: &str,
    layer: &Layer,
) -> Result<Model, Diagnostics> {
    let schema = checker_schema();
    let mut errors = Vec::new();
    let mut parsed = Parsed::default();
    parse_file(
        source,
        text,
        schema,
        layer,
        Sharing::default(),
        &mut parsed,
        &mut errors,
    );
    validate_documents(parsed, schema, confinement, errors)
}

/// Documents are kept in batches of this many, each freed once its documents are consumed.
const DOCUMENT_BATCH: usize = 4096;

/// The classified documents of a run: resources and connections in batches, and the `Lock`
/// documents apart (they are not resources).
#[derive(Default)]
struct Parsed {
    batches: Vec<Vec<Document>>,
    locks: Vec<lock::LockDocument>,
}

/// One parsed document, classified.
enum Classified {
    Document(Document),
    Lock(lock::LockDocument),
}

/// One document's parse: what it became, and its diagnostics.
type ParsedEntry = (Option<Classified>, Vec<Diagnostic>);

/// Parses the documents of one file, checks their structure and adds them to `batches`.
fn parse_file(
    source: &SourceFile,
    text: &str,
    schema: &Json,
    layer: &Layer,
    sharing: Sharing<'_, '_>,
    parsed: &mut Parsed,
    errors: &mut Vec<Diagnostic>,
) {
    let origin = Arc::new(FileOrigin {
        file: Arc::from(source.path.as_path()),
        base_dir: Arc::from(source.base_dir.as_path()),
    });
    let checker = Checker::new(schema, &source.path);
    let source_text = SourceText::new(&origin.file, text);
    // Each document is rewritten and checked on the thread that parsed it, its errors kept
    // beside it.
    let each = |node| -> ParsedEntry {
        let mut found = Vec::new();
        let Some((node, notes)) = layer.prepare(&source_text, node, &mut found) else {
            return (None, found);
        };
        let before = found.len();
        if DocumentKind::of(&node) == Some(DocumentKind::Lock) {
            let doc = lock::classify(&origin, node, &checker, &mut found);
            layer.annotate(&notes, &mut found, before);
            return (Some(Classified::Lock(doc)), found);
        }
        let mut doc = classify(&origin, node, &checker, &mut found);
        if !notes.failed.is_empty()
            && let Some(doc) = doc.as_mut()
        {
            doc.valid = false;
            doc.spec_valid = false;
        }
        layer.annotate(&notes, &mut found, before);
        (doc.map(Classified::Document), found)
    };
    let reused = sharing
        .reuse
        .and_then(|shared| reuse_documents(text, &origin, shared, &each));
    let classified = match reused {
        Some(classified) => Ok(classified),
        None => parse_documents_with(text, each),
    };
    let classified = match classified {
        Ok(classified) => classified,
        Err(err) => {
            errors.push(Diagnostic::new(
                &source.path,
                err.pos,
                "",
                format!("invalid YAML: {}", err.message),
            ));
            return;
        }
    };
    if let Some(record) = sharing.record {
        record_documents(&classified, record);
    }
    tracing::debug!(file = %source.path.display(), documents = classified.len(), "parsed");
    let mut classified = classified.into_iter().peekable();
    while classified.peek().is_some() {
        // Sized to what is left: a file of one document must not reserve a whole batch
        // (10,000 small files would hold 2 GB of empty slots).
        let mut batch = Vec::with_capacity(classified.len().min(DOCUMENT_BATCH));
        for (doc, mut found) in classified.by_ref().take(DOCUMENT_BATCH) {
            errors.append(&mut found);
            match doc {
                Some(Classified::Document(doc)) => batch.push(doc),
                Some(Classified::Lock(lock)) => parsed.locks.push(lock),
                None => {}
            }
        }
        parsed.batches.push(batch);
    }
}

/// Keeps a file's documents for another load (their trees shared) when each was parsed
/// without any diagnostic (a `Lock` document, an error or a warning anywhere in the file:
/// nothing of it is kept).
fn record_documents(classified: &[ParsedEntry], record: &mut Vec<Document>) {
    let clean = classified
        .iter()
        .all(|(doc, found)| found.is_empty() && !matches!(doc, Some(Classified::Lock(_))));
    if clean {
        record.extend(classified.iter().filter_map(|(doc, _)| match doc {
            Some(Classified::Document(doc)) => Some(doc.clone()),
            _ => None,
        }));
    }
}

/// A file's documents with those of the segments another load parsed from the same text
/// taken from it (moved to their lines here, and to this file), and the other segments
/// parsed, runs of neighbours together. `None` when nothing is reused or a run does not
/// parse alone: then the whole file is parsed as usual (and its errors located as usual).
fn reuse_documents(
    text: &str,
    origin: &Arc<FileOrigin>,
    shared: &mut SegmentIndex<'_>,
    each: &(impl Fn(Node) -> ParsedEntry + Sync),
) -> Option<Vec<ParsedEntry>> {
    let segments = document_segments(text);
    let reusable = |segment: &Segment| {
        shared
            .segments
            .contains_key(&text[segment.start..segment.end])
    };
    if !segments.iter().any(reusable) {
        return None;
    }
    let mut entries = Vec::new();
    let mut run: Option<Segment> = None;
    let parse_run = |run: Segment, entries: &mut Vec<ParsedEntry>| -> Option<()> {
        let mut parsed = parse_documents_at(&text[run.start..run.end], run.line, each).ok()?;
        entries.append(&mut parsed);
        Some(())
    };
    for segment in &segments {
        let Some((line, docs)) = shared.segments.remove(&text[segment.start..segment.end]) else {
            run = Some(run.map_or(*segment, |r| Segment {
                end: segment.end,
                ..r
            }));
            continue;
        };
        if let Some(run) = run.take() {
            parse_run(run, &mut entries)?;
        }
        let delta = i64::from(segment.line) - i64::from(line);
        for mut doc in docs {
            if delta != 0 {
                // The tree is copied here only when its lines moved.
                move_lines(Arc::make_mut(&mut doc.node), delta);
            }
            doc.origin = Arc::clone(origin);
            entries.push((Some(Classified::Document(doc)), Vec::new()));
        }
    }
    if let Some(run) = run.take() {
        parse_run(run, &mut entries)?;
    }
    (entries.len() <= super::node::MAX_DOCUMENTS).then_some(entries)
}

/// Builds connections and resources from the classified documents, in load order, consuming
/// them: each document's tree is dropped once its resource is built.
fn validate_documents(
    parsed: Parsed,
    schema: &Json,
    confinement: &Confinement,
    errors: Vec<Diagnostic>,
) -> Result<Model, Diagnostics> {
    let Parsed { batches, locks } = parsed;
    let checker = Checker::new(schema, Path::new(""));
    let mut loader = Loader {
        checker: &checker,
        confinement,
        errors,
    };
    let docs: Vec<&Document> = batches.iter().flatten().collect();
    let declarations = loader.declarations(&docs);
    let connections = loader.connections(&docs);
    drop(docs);
    let lock = lock::settings(locks, confinement, &mut loader.errors);

    // Documents are consumed in load order: each tree is freed once its resource is built.
    let mut resources = DenseMap::default();
    let mut edges: Vec<Edge> = Vec::new();
    for (index, doc) in batches.into_iter().flatten().enumerate() {
        let DocumentKind::Resource(kind) = doc.kind else {
            continue;
        };
        let Some(address) = doc.name().map(|name| Address::new(kind, name)) else {
            continue;
        };
        // Only the first declaration of an address becomes a resource.
        let Some(from) = declarations
            .find(&address)
            .filter(|&id| declarations.doc(id) == index)
        else {
            continue;
        };
        let connection = loader.resolve_connection(&doc, kind, &connections);
        let mut found =
            references::collect_edges(&doc, kind, from, &declarations, &mut loader.errors);
        let resource = loader.resource(&doc, kind, connection, &connections);
        if let Some(mut resource) = resource.filter(|_| doc.valid) {
            found.apply(&mut resource, &declarations);
            resources.insert(address, resource);
        }
        edges.append(&mut found.edges);
    }
    let resources = resources.finish();
    references::check_same_connection(&resources, &declarations, &edges, &mut loader.errors);
    references::check_cycles(&declarations, &edges, &mut loader.errors);

    let (warnings, errors) = loader.errors.into_iter().partition(|d| d.warning);
    let mut diagnostics = Diagnostics { errors, warnings };
    diagnostics.sort();
    if !diagnostics.is_empty() {
        return Err(diagnostics);
    }
    Ok(Model {
        warnings: diagnostics.warnings.iter().map(Diagnostic::text).collect(),
        connections: connections
            .into_iter()
            .map(|(name, (connection, _))| (name, connection))
            .collect(),
        resources,
        lock,
    })
}

/// Builds a B-tree map from entries in any order, with full nodes. Inserting one by one
/// leaves nodes about half empty (a full node splits in two, and sorted input never fills the
/// left half again), while `BTreeMap::append` into a non-empty map bulk-loads full nodes and
/// frees the old ones as it walks them. So entries gather in a small map, which then joins a
/// stack of full maps merged like a binary counter: each entry is moved about log2(n / 1024)
/// times, and at most two batches sit in half-empty nodes.
struct DenseMap<K, V> {
    /// Full maps, each larger than the next.
    levels: Vec<BTreeMap<K, V>>,
    recent: BTreeMap<K, V>,
}

impl<K, V> Default for DenseMap<K, V> {
    fn default() -> Self {
        Self {
            levels: Vec::new(),
            recent: BTreeMap::new(),
        }
    }
}

impl<K: Ord, V> DenseMap<K, V> {
    const BATCH: usize = 1024;

    /// Inserts a key not inserted before.
    fn insert(&mut self, key: K, value: V) {
        self.recent.insert(key, value);
        if self.recent.len() >= Self::BATCH {
            self.flush();
        }
    }

    fn flush(&mut self) {
        let mut run = std::mem::take(&mut self.recent);
        if run.is_empty() {
            return;
        }
        while let Some(last) = self.levels.pop_if(|last| last.len() <= run.len()) {
            run = merged(last, run);
        }
        self.levels.push(run);
    }

    fn finish(mut self) -> BTreeMap<K, V> {
        self.flush();
        let mut map = BTreeMap::new();
        while let Some(level) = self.levels.pop() {
            map = merged(map, level);
        }
        map
    }
}

/// Both maps' entries in one map with full nodes (keys are distinct).
fn merged<K: Ord, V>(mut into: BTreeMap<K, V>, mut from: BTreeMap<K, V>) -> BTreeMap<K, V> {
    if into.is_empty() {
        // `append` into an empty map would only swap the two.
        let Some((key, value)) = from.pop_first() else {
            return into;
        };
        into.insert(key, value);
    }
    into.append(&mut from);
    into
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::manifest::files::discover;

    /// Loads manifests written to a temporary directory; diagnostics as `file:line:col path: msg`.
    pub(crate) fn load(files: &[(&str, &str)]) -> Result<Model, Vec<String>> {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        let mut errors = Vec::new();
        let paths = [dir.path().to_path_buf()];
        let confinement = Confinement::new(&paths, &crate::manifest::Access::default());
        let sources = discover(&paths, &confinement, &mut errors);
        validate_files(&sources, &confinement, errors, &Layer::flat(), Share::None).map_err(|d| {
            d.errors
                .iter()
                .map(|e| {
                    let file = e.file.strip_prefix(dir.path()).unwrap_or(&e.file);
                    format!(
                        "{}:{}:{} {}: {}",
                        file.display(),
                        e.line,
                        e.column,
                        e.path,
                        e.message
                    )
                })
                .collect()
        })
    }

    const RAAS: &str = "kind: Connection\nname: salt\nspec:\n  type: raas\n  url: https://salt.example.com\n  username: root\n  password: {env: P}\n---\n";
    const VMC: &str =
        "kind: Connection\nname: vmc\nspec:\n  type: vmc\n  api_token: {env: T}\n---\n";

    fn address(text: &str) -> Address {
        Address::parse(text).unwrap()
    }

    #[test]
    fn dense_map_keeps_every_entry_in_order() {
        for count in [0, 1, 1023, 1024, 5000] {
            let mut map = DenseMap::default();
            // Every key once, in a scrambled order.
            for i in 0..count {
                let key = (i * 7919) % count.max(1);
                map.insert(key, key * 2);
            }
            let map = map.finish();
            assert_eq!(map.len(), count);
            assert!(
                map.iter()
                    .enumerate()
                    .all(|(i, (k, v))| *k == i && *v == i * 2)
            );
        }
    }

    #[test]
    fn documents_stay_small() {
        assert!(std::mem::size_of::<Document>() <= 48);
    }

    /// A connection has an address (declared once, named in messages) but is no resource:
    /// nothing may depend on it or read it, and it is no kind a connection manages.
    #[test]
    fn a_connection_is_declared_by_address_but_is_no_resource() {
        let second = RAAS.replace("salt.example.com", "salt2.example.com");
        let job = "kind: SaltJob\nname: ping\nconnection: salt\ndepends_on: [Connection/salt]\nspec:\n  fun: test.ping\n  arg: {arg: ['${Connection/salt.url}']}\n";
        let unmanaged = "  unmanaged:\n    kinds: [Connection]\n---\n";
        let errors = load(&[
            ("a.yaml", &format!("{RAAS}{second}{job}")),
            (
                "b.yaml",
                &RAAS
                    .replace("name: salt", "name: other")
                    .replace("---\n", unmanaged),
            ),
        ])
        .unwrap_err();
        assert_eq!(
            errors,
            vec![
                "a.yaml:10:7 name: `Connection/salt` is declared twice",
                "a.yaml:20:14 depends_on[0]: a resource cannot depend on a `Connection`",
                "a.yaml:23:15 spec.arg.arg[0]: reference `${Connection/salt.url}` names a `Connection`, which configures sextant; references read the attributes of managed objects only",
                "b.yaml:9:13 spec.unmanaged.kinds[0]: `Connection` is not a kind of a `raas` connection",
            ]
        );
    }

    #[test]
    fn single_connection_of_the_type_is_implied() {
        let model = load(&[(
            "a.yaml",
            &format!("{VMC}kind: Sddc\nname: lab\nspec:\n  region: us-west-2\n  num_hosts: 2\n  account_link: {{delay: true}}\n"),
        )])
        .unwrap();
        let sddc = &model.resources[&address("Sddc/lab")];
        assert_eq!(sddc.connection, "vmc");
        assert_eq!(sddc.location.line, 7);
        assert!(sddc.base_dir.is_absolute());
    }

    #[test]
    fn missing_ambiguous_wrong_and_undeclared_connections() {
        let target =
            "kind: SaltTarget\nname: web\nspec:\n  tgt:\n    '*': {tgt_type: glob, tgt: 'w*'}\n";
        let errors = load(&[("a.yaml", target)]).unwrap_err();
        assert_eq!(
            errors,
            vec![
                "a.yaml:1:7 connection: `SaltTarget` needs a `raas` connection, and none is declared"
            ]
        );
        let second = RAAS.replace("name: salt", "name: salt2");
        let errors = load(&[("a.yaml", &format!("{RAAS}{second}{target}"))]).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].contains("several `raas` connections"),
            "{errors:?}"
        );
        let errors = load(&[(
            "a.yaml",
            &format!(
                "{RAAS}{VMC}{}",
                target.replace("name: web\n", "name: web\nconnection: vmc\n")
            ),
        )])
        .unwrap_err();
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0]
                .ends_with("connection `vmc` is a `vmc` connection, but `SaltTarget` needs `raas`"),
            "{errors:?}"
        );
        let errors = load(&[(
            "a.yaml",
            &format!(
                "{RAAS}{}",
                target.replace("name: web\n", "name: web\nconnection: slat\n")
            ),
        )])
        .unwrap_err();
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].ends_with("connection `slat` is not declared"),
            "{errors:?}"
        );
    }

    #[test]
    fn duplicate_addresses_across_files() {
        let target =
            "kind: SaltTarget\nname: web\nspec:\n  tgt:\n    '*': {tgt_type: glob, tgt: 'w*'}\n";
        let errors =
            load(&[("a.yaml", &format!("{RAAS}{target}")), ("b/c.yaml", target)]).unwrap_err();
        assert_eq!(
            errors,
            vec!["b/c.yaml:2:7 name: `SaltTarget/web` is declared twice"]
        );
    }

    #[test]
    fn implicit_edges_and_undeclared_target_groups() {
        let docs = format!(
            "{RAAS}kind: SaltTarget\nname: web\nspec:\n  tgt:\n    '*': {{tgt_type: glob, tgt: 'w*'}}\n---\n\
             kind: SaltJob\nname: deploy\nspec:\n  fun: state.apply\n  target: web\n---\n\
             kind: SaltJob\nname: disk\nspec:\n  fun: disk.usage\n  target: All Minions\n---\n\
             kind: SaltSchedule\nname: nightly\nspec:\n  job: deploy\n  target: web\n  schedule: {{cron: '0 3 * * *'}}\n"
        );
        let model = load(&[("a.yaml", &docs)]).unwrap();
        let deploy = &model.resources[&address("SaltJob/deploy")];
        assert_eq!(deploy.depends_on, vec![address("SaltTarget/web")]);
        assert!(
            model.resources[&address("SaltJob/disk")]
                .depends_on
                .is_empty()
        );
        let nightly = &model.resources[&address("SaltSchedule/nightly")];
        assert_eq!(
            nightly.depends_on,
            vec![address("SaltTarget/web"), address("SaltJob/deploy")]
        );
        let errors = load(&[("a.yaml", &docs.replace("job: deploy", "job: deplyo"))]).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].ends_with("`SaltJob/deplyo` is not declared"),
            "{errors:?}"
        );
    }

    #[test]
    fn named_job_and_target_live_on_the_same_connection() {
        let eu = RAAS.replace("name: salt", "name: salt-eu");
        let docs = format!(
            "{RAAS}{eu}kind: SaltTarget\nname: web\nconnection: salt-eu\nspec:\n  tgt:\n    '*': {{tgt_type: glob, tgt: 'w*'}}\n---\n\
             kind: SaltJob\nname: deploy\nconnection: salt\nspec:\n  fun: state.apply\n  target: web\n"
        );
        let errors = load(&[("a.yaml", &docs)]).unwrap_err();
        assert_eq!(
            errors,
            vec![
                "a.yaml:29:11 spec.target: `SaltJob/deploy` uses connection `salt`, but `SaltTarget/web` is on connection `salt-eu`"
            ]
        );
        assert!(
            load(&[(
                "a.yaml",
                &docs.replace("connection: salt\n", "connection: salt-eu\n")
            )])
            .is_ok()
        );
    }

    #[test]
    fn references_add_edges_and_stay_verbatim() {
        let docs = format!(
            "{VMC}{RAAS}kind: Sddc\nname: prod\nspec:\n  region: us-west-2\n  num_hosts: 2\n  account_link: {{delay: true}}\n---\n\
             kind: SaltJob\nname: report\nspec:\n  fun: cmd.run\n  desc: 'vCenter at ${{Sddc/prod.vc_url}}'\n"
        );
        let model = load(&[("a.yaml", &docs)]).unwrap();
        let report = &model.resources[&address("SaltJob/report")];
        assert_eq!(report.depends_on, vec![address("Sddc/prod")]);
        assert_eq!(report.references.len(), 1);
        assert_eq!(report.references[0].attribute, "vc_url");
        assert_eq!(
            report.spec.value()["desc"],
            "vCenter at ${Sddc/prod.vc_url}"
        );
        let errors = load(&[("a.yaml", &docs.replace("vc_url}", "vcurl}"))]).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].ends_with("`Sddc` has no attribute `vcurl`"),
            "{errors:?}"
        );
    }

    #[test]
    fn depending_on_an_absent_resource_is_an_error() {
        let docs = format!(
            "{RAAS}kind: SaltJob\nname: old\nensure: absent\nspec:\n  fun: test.ping\n---\n\
             kind: SaltJob\nname: new\ndepends_on: [SaltJob/old]\nspec:\n  fun: test.ping\n"
        );
        let errors = load(&[("a.yaml", &docs)]).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert!(errors[0].ends_with("depends on `SaltJob/old`, which has `ensure: absent`"));
    }

    #[test]
    fn cycles_fail_the_load() {
        let docs = format!(
            "{RAAS}kind: SaltJob\nname: a\ndepends_on: [SaltJob/b]\nspec:\n  fun: test.ping\n---\n\
             kind: SaltJob\nname: b\ndepends_on: [SaltJob/a]\nspec:\n  fun: test.ping\n"
        );
        let errors = load(&[("a.yaml", &docs)]).unwrap_err();
        assert_eq!(
            errors,
            vec![
                "a.yaml:11:14 depends_on[0]: dependency cycle: `SaltJob/a -> SaltJob/b -> SaltJob/a`"
            ]
        );
    }

    #[test]
    fn spec_may_be_omitted_only_for_absent_objects() {
        let docs = format!("{RAAS}kind: SaltJob\nname: old\nensure: absent\n");
        let model = load(&[("a.yaml", &docs)]).unwrap();
        let old = &model.resources[&address("SaltJob/old")];
        assert_eq!(old.ensure, Ensure::Absent);
        assert_eq!(old.spec.value(), serde_json::json!({}));
        let errors = load(&[("a.yaml", &docs.replace("ensure: absent\n", ""))]).unwrap_err();
        assert_eq!(
            errors,
            vec!["a.yaml:9:1 spec: missing required field `spec` in the document"]
        );
    }

    #[test]
    fn virtual_machines_are_never_absent() {
        let docs = "kind: Connection\nname: vc\nspec:\n  type: vsphere\n  url: https://vc\n  username: u\n  password: {env: P}\n---\n\
             kind: VirtualMachine\nname: web-01\nensure: absent\nspec: {}\n";
        let errors = load(&[("a.yaml", docs)]).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert!(errors[0].starts_with("a.yaml:11:9 ensure: `ensure: absent` is not allowed"));
    }

    #[test]
    fn vcd_tokens_need_a_password_connection() {
        let conn = "kind: Connection\nname: vcd\nspec:\n  type: vcd\n  url: https://vcd\n  api_token: {env: T}\n---\n";
        let token = "kind: VcdApiToken\nname: ci\nspec:\n  file: t.json\n";
        let errors = load(&[("a.yaml", &format!("{conn}{token}"))]).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert!(errors[0].contains("managing API tokens needs a user session"));
        let conn = conn.replace(
            "  api_token: {env: T}\n",
            "  username: u\n  password: {file: pw}\n",
        );
        let model = load(&[("a.yaml", &format!("{conn}{token}"))]).unwrap();
        let password = model.connections["vcd"].config.password.clone().unwrap();
        match password {
            crate::model::SecretSource::File(path) => {
                assert!(path.is_absolute() && path.ends_with("pw"), "{path:?}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn previous_names_are_other_names_each_written_once() {
        let model = load(&[(
            "a.yaml",
            &format!(
                "{RAAS}kind: SaltJob\nname: new\nprevious_names: [old, older]\nspec:\n  fun: test.ping\n"
            ),
        )])
        .unwrap();
        assert_eq!(
            model.resources[&address("SaltJob/new")].previous_names,
            vec!["old", "older"]
        );
        let errors = load(&[(
            "a.yaml",
            &format!(
                "{RAAS}kind: SaltJob\nname: new\nprevious_names: [old, new, old]\nspec:\n  fun: test.ping\n"
            ),
        )])
        .unwrap_err();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(
            errors[0].contains("previous_names[1]: `new` is the document's own name"),
            "{errors:?}"
        );
        assert!(
            errors[1].contains("previous_names[2]: `old` is listed twice"),
            "{errors:?}"
        );
    }

    #[test]
    fn lifecycle_timeouts_and_api_version() {
        let docs = format!(
            "{VMC}apiVersion: sextant/v1\nkind: Sddc\nname: lab\nlifecycle:\n  prevent_destroy: true\n  ignore_changes: [spec.size]\n\
             timeouts: {{create: 90m}}\nspec:\n  region: US_WEST_2\n  num_hosts: 2\n  size: large\n  provider: ZEROCLOUD\n"
        );
        let model = load(&[("a.yaml", &docs)]).unwrap();
        let sddc = &model.resources[&address("Sddc/lab")];
        assert!(sddc.lifecycle.prevent_destroy);
        assert_eq!(sddc.lifecycle.ignore_changes, vec!["spec.size"]);
        assert_eq!(sddc.timeouts.create, Duration::from_secs(90 * 60));
        assert_eq!(sddc.timeouts.delete, Timeouts::default().delete);
        assert_eq!(
            sddc.spec.value(),
            serde_json::json!({"region": "US_WEST_2", "num_hosts": 2, "size": "large", "provider": "ZEROCLOUD"})
        );
        let errors = load(&[(
            "a.yaml",
            &docs
                .replace("spec.size]", "spec.sise]")
                .replace("90m", "soon")
                .replace("sextant/v1", "v1"),
        )])
        .unwrap_err();
        assert_eq!(errors.len(), 3, "{errors:?}");
    }

    #[test]
    fn document_shape_and_kind() {
        let errors = load(&[(
            "a.yaml",
            "- a\n---\nname: x\n---\nkind: SaltJobs\nname: x\n---\nkind: 3\n",
        )])
        .unwrap_err();
        assert_eq!(
            errors,
            vec![
                "a.yaml:1:1 : a document must be a mapping with `kind`, `name` and `spec`, found a list",
                "a.yaml:3:1 kind: missing required field `kind`",
                "a.yaml:5:7 kind: unknown kind `SaltJobs`",
                "a.yaml:8:7 kind: expected a string, found an integer",
            ]
        );
    }

    #[test]
    fn syntax_and_encoding_errors_are_located() {
        let errors =
            load(&[("a.yaml", "kind: [\n"), ("b.yaml", "kind: x\nname: \u{0}")]).unwrap_err();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].starts_with("a.yaml:"), "{errors:?}");
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("c.yaml"), b"kind: Sddc\nname: \xff\n").unwrap();
        let mut errors = Vec::new();
        let paths = [dir.path().to_path_buf()];
        let confinement = Confinement::new(&paths, &crate::manifest::Access::default());
        let sources = discover(&paths, &confinement, &mut errors);
        let diagnostics =
            validate_files(&sources, &confinement, errors, &Layer::flat(), Share::None)
                .unwrap_err();
        assert_eq!(
            (diagnostics.errors[0].line, diagnostics.errors[0].column),
            (2, 7)
        );
        assert_eq!(
            diagnostics.errors[0].message,
            "file is not valid UTF-8 text"
        );
    }

    /// Loads `after` three ways from one directory: alone, reusing the documents of a load
    /// of `before`, and returns both results (Debug-printed) for comparison.
    fn load_reusing(before: &[(&str, &str)], after: &[(&str, &str)]) -> (String, String) {
        let dir = tempfile::tempdir().unwrap();
        let write = |files: &[(&str, &str)]| {
            for entry in std::fs::read_dir(dir.path()).unwrap() {
                std::fs::remove_file(entry.unwrap().path()).unwrap();
            }
            for (name, text) in files {
                std::fs::write(dir.path().join(name), text).unwrap();
            }
        };
        let run = |share: Share| {
            let mut errors = Vec::new();
            let paths = [dir.path().to_path_buf()];
            let confinement = Confinement::new(&paths, &crate::manifest::Access::default());
            let sources = discover(&paths, &confinement, &mut errors);
            format!(
                "{:?}",
                validate_files(&sources, &confinement, errors, &Layer::flat(), share)
            )
        };
        write(before);
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        run(Share::Send(tx));
        write(after);
        (run(Share::None), run(Share::Receive(rx)))
    }

    #[test]
    fn a_load_reusing_another_loads_documents_equals_a_load_of_its_own() {
        let job = |name: &str, fun: &str| {
            format!("kind: SaltJob\nname: {name}\nconnection: salt\nspec:\n  fun: {fun}\n")
        };
        let jobs = |names: &[(&str, &str)]| {
            names
                .iter()
                .map(|(n, f)| job(n, f))
                .collect::<Vec<_>>()
                .join("---\n")
        };
        let before = jobs(&[("a", "test.ping"), ("b", "test.ping"), ("c", "test.ping")]);
        let cases = [
            // Unchanged.
            before.clone(),
            // Lines inserted above reused documents, one document changed.
            format!(
                "# moved\n\n{}",
                jobs(&[("a", "test.ping"), ("b", "state.apply"), ("c", "test.ping")])
            ),
            // A document removed, one added in between.
            jobs(&[("a", "test.ping"), ("new", "test.ping"), ("c", "test.ping")]),
            // An error in a changed document beside reused ones: located in this file.
            jobs(&[("a", "test.ping"), ("b", "test.ping"), ("c", "test.ping")]).replace(
                "name: b\nconnection: salt\nspec:\n  fun: test.ping",
                "name: b\nconnection: salt\nspec:\n  fun: test.ping\n  bogus: 1",
            ),
            // A syntax error in a changed document.
            format!(
                "{}---\nkind: [\n",
                jobs(&[("a", "test.ping"), ("b", "test.ping")])
            ),
            // A reused document now refers to a connection that is gone.
            jobs(&[("a", "test.ping"), ("b", "test.ping"), ("c", "test.ping")]),
        ];
        for (index, case) in cases.iter().enumerate() {
            let conn = if index == cases.len() - 1 { "" } else { RAAS };
            let (alone, reusing) = load_reusing(
                &[("conn.yaml", RAAS), ("jobs.yaml", &before)],
                &[("conn.yaml", conn), ("jobs.yaml", case)],
            );
            assert_eq!(reusing, alone, "case {index}");
        }
        let (alone, _) = load_reusing(&[], &[("conn.yaml", RAAS), ("jobs.yaml", &cases[3])]);
        assert!(alone.contains("bogus"), "{alone}");
        assert!(alone.contains("line: 12"), "{alone}");
    }

    #[test]
    fn only_the_changed_documents_are_parsed_again() {
        let job = |name: &str| format!("kind: SaltJob\nname: {name}\nspec:\n  fun: test.ping\n");
        let before = [job("a"), job("b"), job("c")].join("---\n");
        let source = SourceFile {
            path: "jobs.yaml".into(),
            base_dir: ".".into(),
        };
        let mut copies = Vec::new();
        let (mut parsed, mut errors) = (Parsed::default(), Vec::new());
        let sharing = Sharing {
            record: Some(&mut copies),
            reuse: None,
        };
        let schema = checker_schema();
        parse_file(
            &source,
            &before,
            schema,
            &Layer::flat(),
            sharing,
            &mut parsed,
            &mut errors,
        );
        assert!(errors.is_empty(), "{errors:?}");
        let texts = [before.clone()];
        let mut shared = SegmentIndex::new(&texts, vec![copies]);
        assert_eq!(shared.segments.len(), 3);
        let changed = format!("# a comment\n{}", job("B"));
        let after = [job("a"), changed, job("c")].join("---\n");
        let origin = Arc::new(FileOrigin {
            file: Arc::from(Path::new("jobs.yaml")),
            base_dir: Arc::from(Path::new(".")),
        });
        let calls = std::sync::atomic::AtomicUsize::new(0);
        let each = |_node| -> ParsedEntry {
            calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            (None, Vec::new())
        };
        let entries = reuse_documents(&after, &origin, &mut shared, &each).unwrap();
        assert_eq!(entries.len(), 3);
        assert_eq!(calls.into_inner(), 1, "only `B` is parsed");
        let lines: Vec<u32> = entries
            .iter()
            .filter_map(|(doc, _)| match doc {
                Some(Classified::Document(doc)) => Some(doc.node.pos.line),
                _ => None,
            })
            .collect();
        assert_eq!(
            lines,
            vec![1, 12],
            "the reused `a` where it was, `c` moved down a line"
        );
    }

    #[test]
    fn empty_files_and_null_documents_are_fine() {
        let model = load(&[("a.yaml", ""), ("b.yaml", "---\n...\n")]).unwrap();
        assert!(model.resources.is_empty());
    }

    #[test]
    fn junk_never_panics() {
        for junk in [
            "\u{0}\u{1}\u{2}",
            "[[[[[[[[",
            "kind: Sddc\nspec: *nope\n",
            "kind: Sddc\nname: x\nspec:\n  num_hosts: -1\n  region: 12\n",
            "kind: Connection\nname: c\nspec:\n  type: vmc\n  api_token: {env: 3}\n",
            "? [a, b]\n: c\n",
            "kind: SaltJob\nname: ${SaltJob/x.uuid}\nspec: {fun: '${'}\n",
            "%YAML 1.2\n---\n!custom {kind: Sddc}\n",
            "kind: Sddc\nname: !!binary aGVsbG8=\nspec: {}\n",
            "{kind: Sddc, kind: Sddc}\n",
            "kind: Sddc\n\tname: x\n",
            "kind: Sddc\nname: x\nspec:\n  num_hosts: 1e400\n  region: .nan\n",
            "<<: {kind: Sddc}\nname: x\n",
        ] {
            let _ = load(&[("a.yaml", junk)]);
        }
    }
}
