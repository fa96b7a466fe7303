//! Edges between resources: explicit `depends_on`, the implicit `target` / `job` names of
//! Salt kinds, and `${Kind/name.attribute}` references inside spec strings. Also finds
//! dependency cycles and reports each as a path `A -> B -> A`.
//!
//! Edges name their ends by index into the [`Declarations`], so that the edges of a large
//! estate stay small once the documents they come from are dropped.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use super::diagnostics::Diagnostic;
use super::did_you_mean;
use super::document_kind::DocumentKind;
use super::node::{Node, Pos, Value};
use super::validate::Document;
use crate::model::{Address, Ensure, Kind, NamedReference, Reference, Resource, SourceLocation};

/// The first declaration of an address.
#[derive(Clone, Debug)]
pub struct Declared {
    pub address: Address,
    /// Index of the declaring document in load order.
    pub doc: usize,
    pub ensure: Ensure,
}

/// Every address declared by a resource document, sorted by address: an index here names
/// a resource in [`Edge`]s, and index order is address order. Kept until the last check, so
/// the names share one buffer.
#[derive(Debug, Default)]
pub struct Declarations {
    entries: Vec<Entry>,
    names: String,
}

#[derive(Debug)]
struct Entry {
    kind: Kind,
    ensure: Ensure,
    doc: usize,
    name: Range<usize>,
}

impl Declarations {
    /// `declared` sorted by address, without duplicates.
    pub fn new(declared: Vec<Declared>) -> Self {
        debug_assert!(declared.is_sorted_by(|a, b| a.address < b.address));
        let mut names = String::with_capacity(declared.iter().map(|d| d.address.name.len()).sum());
        let entries = declared
            .into_iter()
            .map(|d| {
                let start = names.len();
                names.push_str(&d.address.name);
                Entry {
                    kind: d.address.kind,
                    ensure: d.ensure,
                    doc: d.doc,
                    name: start..names.len(),
                }
            })
            .collect();
        Self { entries, names }
    }

    /// The index of an address, if declared. Indexes are `u32` to keep edges small: four
    /// billion documents would not fit in memory anyway.
    pub fn find(&self, address: &Address) -> Option<u32> {
        let index = self
            .entries
            .binary_search_by(|e| {
                (e.kind, self.name_of(e)).cmp(&(address.kind, address.name.as_str()))
            })
            .ok()?;
        u32::try_from(index).ok()
    }

    /// Index of the declaring document in load order.
    pub fn doc(&self, index: u32) -> usize {
        self.entries[index as usize].doc
    }

    fn ensure(&self, index: u32) -> Ensure {
        self.entries[index as usize].ensure
    }

    fn address(&self, index: u32) -> Address {
        let entry = &self.entries[index as usize];
        Address::new(entry.kind, self.name_of(entry))
    }

    fn name_of(&self, entry: &Entry) -> &str {
        &self.names[entry.name.clone()]
    }

    /// Names declared with one kind, in order.
    fn names_of(&self, kind: Kind) -> impl Iterator<Item = &str> {
        self.entries
            .iter()
            .filter(move |e| e.kind == kind)
            .map(|e| self.name_of(e))
    }
}

/// `from` depends on `to`, both indexes into the [`Declarations`]. Every edge of the estate
/// is kept until the last check, so it owns no allocation in the common cases.
#[derive(Clone, Debug)]
pub struct Edge {
    pub from: u32,
    pub to: u32,
    /// The edge comes from a `target` or `job` name, which must live on the same server.
    pub by_name: bool,
    pub file: Arc<Path>,
    /// Field path of the reference in its document.
    pub path: Cow<'static, str>,
    pub pos: Pos,
}

/// What one document depends on.
#[derive(Debug, Default)]
pub struct DocumentEdges {
    pub edges: Vec<Edge>,
    /// The `${...}` references among the edges.
    pub references: Vec<Reference>,
    /// `target` names of objects no manifest declares (they must be live).
    pub named: Vec<NamedReference>,
}

/// One `${...}` occurrence found in a string.
#[derive(Debug, PartialEq, Eq)]
pub enum Interpolation {
    Reference {
        address: Address,
        attribute: String,
    },
    /// `${Connection/name.attribute}` (or `Environment`, `Lock`): a document that configures
    /// sextant is no resource, it has no attributes.
    Configuration {
        kind: DocumentKind,
        name: String,
        attribute: String,
    },
    Invalid {
        text: String,
        reason: String,
    },
}

/// Finds every `${...}` in a string. `$${` is a literal `${`, and `${var.NAME}` is left to
/// the variables layer (which substitutes it or reports it).
pub fn interpolations(text: &str) -> Vec<Interpolation> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        if rest[..start].ends_with('$') {
            rest = &rest[start + 2..];
            continue;
        }
        let after = &rest[start + 2..];
        if after.starts_with("var.") {
            rest = after;
            continue;
        }
        let Some(end) = after.find('}') else {
            found.push(Interpolation::Invalid {
                text: rest[start..].to_string(),
                reason: "has no closing `}`".to_string(),
            });
            break;
        };
        let inner = &after[..end];
        found.push(parse_reference(inner));
        rest = &after[end + 1..];
    }
    found
}

fn parse_reference(inner: &str) -> Interpolation {
    let invalid = |reason: &str| Interpolation::Invalid {
        text: format!("${{{inner}}}"),
        reason: reason.to_string(),
    };
    let Some((target, attribute)) = inner.rsplit_once('.') else {
        return invalid("is not of the form `${Kind/name.attribute}`");
    };
    if attribute.is_empty()
        || !attribute
            .chars()
            .all(|c| c.is_ascii_lowercase() || c == '_')
    {
        return invalid("is not of the form `${Kind/name.attribute}`");
    }
    let Some((kind, name)) = target.split_once('/') else {
        return invalid("is not of the form `${Kind/name.attribute}`");
    };
    if name.is_empty() {
        return invalid("has an empty name");
    }
    match DocumentKind::parse(kind) {
        Some(DocumentKind::Resource(kind)) => Interpolation::Reference {
            address: Address::new(kind, name),
            attribute: attribute.to_string(),
        },
        Some(kind) => Interpolation::Configuration {
            kind,
            name: name.to_string(),
            attribute: attribute.to_string(),
        },
        None => Interpolation::Invalid {
            text: format!("${{{inner}}}"),
            reason: format!("names an unknown kind `{kind}`"),
        },
    }
}

fn kind_hint(kind: &str) -> Option<String> {
    did_you_mean::hint(kind, DocumentKind::declared().map(DocumentKind::as_str))
}

struct Collector<'a> {
    doc: &'a Document,
    from: u32,
    declared: &'a Declarations,
    errors: &'a mut Vec<Diagnostic>,
    found: DocumentEdges,
}

impl Collector<'_> {
    fn error(&mut self, pos: Pos, path: &str, message: String, hint: Option<String>) {
        self.errors
            .push(Diagnostic::new(self.doc.file(), pos, path, message).with_hint(hint));
    }

    fn undeclared_hint(&self, address: &Address) -> Option<String> {
        did_you_mean::closest(&address.name, self.declared.names_of(address.kind))
            .map(|n| format!("did you mean `{}/{n}`?", address.kind))
    }

    fn add(&mut self, to: u32, attribute: Option<String>, pos: Pos, path: Cow<'static, str>) {
        if self.doc.ensure() == Ensure::Present && self.declared.ensure(to) == Ensure::Absent {
            let to = self.declared.address(to);
            self.error(
                pos,
                &path,
                format!("depends on `{to}`, which has `ensure: absent`"),
                None,
            );
        }
        let by_name = attribute.is_none() && path.starts_with("spec.");
        if let Some(attribute) = attribute {
            let reference = Reference {
                target: self.declared.address(to),
                attribute,
            };
            if !self.found.references.contains(&reference) {
                self.found.references.push(reference);
            }
        }
        self.found.edges.push(Edge {
            from: self.from,
            to,
            by_name,
            file: Arc::clone(self.doc.file()),
            path,
            pos,
        });
    }

    fn depends_on(&mut self) {
        let Some(items) = self.doc.node.get("depends_on").and_then(Node::as_seq) else {
            return;
        };
        for (index, item) in items.iter().enumerate() {
            let path = format!("depends_on[{index}]");
            let Some(text) = item.as_str() else { continue };
            let Some((kind, name)) = text.split_once('/') else {
                self.error(
                    item.pos,
                    &path,
                    format!("`{text}` is not an address"),
                    Some("write `Kind/name`, e.g. `SaltTarget/web servers`".to_string()),
                );
                continue;
            };
            let kind = match DocumentKind::parse(kind) {
                Some(DocumentKind::Resource(kind)) => kind,
                Some(DocumentKind::Connection) => {
                    self.error(
                        item.pos,
                        &path,
                        "a resource cannot depend on a `Connection`".to_string(),
                        Some("use `connection:` to choose the connection".to_string()),
                    );
                    continue;
                }
                Some(other) => {
                    self.error(
                        item.pos,
                        &path,
                        format!(
                            "a resource cannot depend on a `{other}`, which configures sextant"
                        ),
                        None,
                    );
                    continue;
                }
                None => {
                    self.error(
                        item.pos,
                        &path,
                        format!("unknown kind `{kind}` in `{text}`"),
                        kind_hint(kind),
                    );
                    continue;
                }
            };
            let address = Address::new(kind, name);
            if let Some(to) = self.declared.find(&address) {
                self.add(to, None, item.pos, path.into());
            } else {
                let hint = self.undeclared_hint(&address);
                self.error(
                    item.pos,
                    &path,
                    format!("`{address}` is not declared"),
                    hint,
                );
            }
        }
    }

    /// A `spec.<field>` naming an object of `kind`; `path` is `spec.<field>`.
    /// The spec field `field` names an object of `kind`; `required`: it must be declared.
    fn named(&mut self, field: &'static str, kind: Kind, required: bool) {
        let Some(node) = self.doc.spec_node().and_then(|s| s.get(field)) else {
            return;
        };
        let path = format!("spec.{field}");
        let Some(name) = node.as_str() else { return };
        if name.contains("${") {
            return;
        }
        let address = Address::new(kind, name);
        if let Some(to) = self.declared.find(&address) {
            self.add(to, None, node.pos, path.into());
        } else if !required {
            self.found.named.push(NamedReference {
                target: address,
                field,
                location: SourceLocation {
                    file: Arc::clone(self.doc.file()),
                    line: node.pos.line as usize,
                    column: node.pos.column as usize,
                },
            });
        } else {
            let hint = self
                .undeclared_hint(&address)
                .or_else(|| Some(format!("declare a `{kind}` named `{name}`")));
            self.error(
                node.pos,
                &path,
                format!("`{address}` is not declared"),
                hint,
            );
        }
    }

    fn strings(&mut self, node: &Node, path: &str) {
        match &node.value {
            Value::String(text) => {
                for found in interpolations(text) {
                    self.interpolation(found, node.pos, path);
                }
            }
            Value::Seq(items) => {
                for (index, item) in items.iter().enumerate() {
                    self.strings(item, &format!("{path}[{index}]"));
                }
            }
            Value::Map(entries) => {
                for entry in entries {
                    let key = entry.key.key_text();
                    self.strings(&entry.value, &format!("{path}.{key}"));
                }
            }
            _ => {}
        }
    }

    fn interpolation(&mut self, found: Interpolation, pos: Pos, path: &str) {
        match found {
            Interpolation::Invalid { text, reason } => {
                self.error(
                    pos,
                    path,
                    format!("reference `{text}` {reason}"),
                    Some("write `${Kind/name.attribute}`, e.g. `${Sddc/prod.vc_url}`".to_string()),
                );
            }
            Interpolation::Configuration {
                kind,
                name,
                attribute,
            } => {
                // Connections, environments and locks configure sextant; they have no
                // attributes, whether or not one of that name is declared.
                self.error(
                    pos,
                    path,
                    format!(
                        "reference `${{{kind}/{name}.{attribute}}}` names a `{kind}`, which configures sextant; references read the attributes of managed objects only"
                    ),
                    Some(format!("write the value itself (a `{kind}`'s settings are in its own document)")),
                );
            }
            Interpolation::Reference { address, attribute } => {
                let shown = format!("${{{address}.{attribute}}}");
                let Some(to) = self.declared.find(&address) else {
                    let hint = self.undeclared_hint(&address);
                    self.error(
                        pos,
                        path,
                        format!("reference `{shown}` names `{address}`, which is not declared"),
                        hint,
                    );
                    return;
                };
                let attributes = address.kind.attributes();
                if !attributes.contains(&attribute.as_str()) {
                    let list: Vec<String> = attributes.iter().map(|a| format!("`{a}`")).collect();
                    let hint =
                        did_you_mean::hint(&attribute, attributes.iter().copied()).or_else(|| {
                            Some(format!(
                                "attributes of `{}`: {}",
                                address.kind,
                                list.join(", ")
                            ))
                        });
                    self.error(
                        pos,
                        path,
                        format!("`{}` has no attribute `{attribute}`", address.kind),
                        hint,
                    );
                    return;
                }
                self.add(to, Some(attribute), pos, path.to_string().into());
            }
        }
    }
}

/// Every edge a document of `kind` declares or implies, reporting references to nothing.
/// `from` is the document's own index in `declared`.
pub fn collect_edges(
    doc: &Document,
    kind: Kind,
    from: u32,
    declared: &Declarations,
    errors: &mut Vec<Diagnostic>,
) -> DocumentEdges {
    if doc.name().is_none() {
        return DocumentEdges::default();
    }
    let mut collector = Collector {
        doc,
        from,
        declared,
        errors,
        found: DocumentEdges::default(),
    };
    collector.depends_on();
    let rules = kind.rules();
    for &(field, kind) in rules.named_fields() {
        collector.named(field, kind, rules.declared_fields().contains(&field));
    }
    if let Some(spec) = doc.spec_node() {
        collector.strings(spec, "spec");
    }
    collector.found
}

impl DocumentEdges {
    /// Records the edges on the document's resource (sorted, without duplicates).
    pub fn apply(&mut self, resource: &mut Resource, declared: &Declarations) {
        let mut depends_on: Vec<Address> = Vec::with_capacity(self.edges.len());
        for edge in &self.edges {
            let to = declared.address(edge.to);
            if !depends_on.contains(&to) {
                depends_on.push(to);
            }
        }
        depends_on.sort();
        depends_on.shrink_to_fit();
        let mut references = std::mem::take(&mut self.references);
        references.sort();
        references.shrink_to_fit();
        resource.depends_on = depends_on;
        resource.references = references;
        resource.named = std::mem::take(&mut self.named);
    }
}

/// A `target` or `job` name must refer to an object on the same connection: saved jobs and
/// schedules point at target groups and jobs by their server-side id.
pub fn check_same_connection(
    resources: &BTreeMap<Address, Resource>,
    declared: &Declarations,
    edges: &[Edge],
    errors: &mut Vec<Diagnostic>,
) {
    for edge in edges.iter().filter(|e| e.by_name) {
        let (from_address, to_address) = (declared.address(edge.from), declared.address(edge.to));
        let (Some(from), Some(to)) = (resources.get(&from_address), resources.get(&to_address))
        else {
            continue;
        };
        if from.connection != to.connection
            && !from.connection.is_empty()
            && !to.connection.is_empty()
        {
            errors.push(
                Diagnostic::new(
                    &edge.file,
                    edge.pos,
                    &*edge.path,
                    format!(
                        "`{from_address}` uses connection `{}`, but `{to_address}` is on connection `{}`",
                        from.connection, to.connection
                    ),
                )
                .with_hint(Some(format!(
                    "a `{}` can only refer to a `{}` on the same server",
                    from_address.kind, to_address.kind
                ))),
            );
        }
    }
}

/// Reports each dependency cycle once, as a path starting at its smallest address.
pub fn check_cycles(declared: &Declarations, edges: &[Edge], errors: &mut Vec<Diagnostic>) {
    // Node `n` is declaration `n`: indexes follow address order.
    let mut pairs: Vec<(u32, u32)> = edges.iter().map(|e| (e.from, e.to)).collect();
    pairs.sort_unstable();
    pairs.dedup();
    let graph: petgraph::graph::DiGraph<(), ()> = petgraph::graph::DiGraph::from_edges(&pairs);
    for cycle in super::graph::dependency_cycles(&graph, |node| node) {
        let cycle: Vec<u32> = cycle
            .iter()
            .filter_map(|node| u32::try_from(node.index()).ok())
            .collect();
        report_cycle(declared, edges, &cycle, errors);
    }
}

fn report_cycle(
    declared: &Declarations,
    edges: &[Edge],
    cycle: &[u32],
    errors: &mut Vec<Diagnostic>,
) {
    let first = cycle[0];
    let second = cycle.get(1).copied().unwrap_or(first);
    let edge = edges
        .iter()
        .find(|e| e.from == first && e.to == second)
        .or_else(|| edges.iter().find(|e| e.from == first));
    let mut shown: Vec<String> = cycle
        .iter()
        .map(|&n| declared.address(n).to_string())
        .collect();
    shown.push(declared.address(first).to_string());
    if let Some(edge) = edge {
        errors.push(
            Diagnostic::new(
                &edge.file,
                edge.pos,
                &*edge.path,
                format!("dependency cycle: `{}`", shown.join(" -> ")),
            )
            .with_hint(Some(
                "remove one of these dependencies (depends_on, target, job or ${...})".to_string(),
            )),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_references_in_strings() {
        assert_eq!(
            interpolations("https://${Sddc/prod eu.vc_url}/ui and ${SaltJob/a.b.uuid}"),
            vec![
                Interpolation::Reference {
                    address: Address::new(Kind::Sddc, "prod eu"),
                    attribute: "vc_url".into()
                },
                Interpolation::Reference {
                    address: Address::new(Kind::SaltJob, "a.b"),
                    attribute: "uuid".into()
                },
            ]
        );
        assert!(interpolations("no refs $ {x}").is_empty());
    }

    #[test]
    fn malformed_references_are_reported() {
        assert!(matches!(
            interpolations("${Sddc/prod.vc_url")[0],
            Interpolation::Invalid { .. }
        ));
        assert!(matches!(
            interpolations("${Sdc/prod.vc_url}")[0],
            Interpolation::Invalid { ref reason, .. } if reason.contains("unknown kind `Sdc`")
        ));
        assert!(matches!(
            interpolations("${Sddc/prod}")[0],
            Interpolation::Invalid { .. }
        ));
        assert!(matches!(
            interpolations("${Sddc/.id}")[0],
            Interpolation::Invalid { .. }
        ));
    }

    /// Declarations of every address the pairs name, and one edge per pair.
    fn graph(pairs: &[(&str, &str)]) -> (Declarations, Vec<Edge>) {
        let mut addresses: Vec<Address> = pairs
            .iter()
            .flat_map(|(from, to)| [from, to])
            .map(|text| Address::parse(text).unwrap())
            .collect();
        addresses.sort();
        addresses.dedup();
        let declared = Declarations::new(
            addresses
                .into_iter()
                .enumerate()
                .map(|(doc, address)| Declared {
                    address,
                    doc,
                    ensure: Ensure::Present,
                })
                .collect(),
        );
        let index = |text: &str| declared.find(&Address::parse(text).unwrap()).unwrap();
        let edges = pairs
            .iter()
            .map(|(from, to)| Edge {
                from: index(from),
                to: index(to),
                by_name: false,
                file: Arc::from(Path::new("t.yaml")),
                path: Cow::Borrowed(""),
                pos: Pos::START,
            })
            .collect();
        (declared, edges)
    }

    #[test]
    fn cycles_are_reported_once_as_a_path() {
        let (declared, edges) = graph(&[
            ("SaltJob/b", "SaltJob/c"),
            ("SaltJob/c", "SaltJob/a"),
            ("SaltJob/a", "SaltJob/b"),
            ("SaltJob/d", "SaltJob/a"),
            ("SaltJob/e", "SaltJob/e"),
        ]);
        let mut errors = Vec::new();
        check_cycles(&declared, &edges, &mut errors);
        let messages: Vec<&str> = errors.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(
            messages,
            vec![
                "dependency cycle: `SaltJob/a -> SaltJob/b -> SaltJob/c -> SaltJob/a`",
                "dependency cycle: `SaltJob/e -> SaltJob/e`",
            ]
        );
    }

    #[test]
    fn a_component_with_two_cycles_is_reported_once_from_its_lowest_address() {
        let (declared, edges) = graph(&[
            ("SaltJob/a", "SaltJob/c"),
            ("SaltJob/c", "SaltJob/a"),
            ("SaltJob/a", "SaltJob/b"),
            ("SaltJob/b", "SaltJob/a"),
            ("SaltJob/0", "SaltJob/b"),
        ]);
        let mut errors = Vec::new();
        check_cycles(&declared, &edges, &mut errors);
        let messages: Vec<&str> = errors.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(
            messages,
            vec!["dependency cycle: `SaltJob/a -> SaltJob/b -> SaltJob/a`"]
        );
    }

    #[test]
    fn acyclic_graph_has_no_errors() {
        let (declared, edges) = graph(&[
            ("SaltJob/b", "SaltTarget/t"),
            ("SaltSchedule/s", "SaltJob/b"),
        ]);
        let mut errors = Vec::new();
        check_cycles(&declared, &edges, &mut errors);
        assert!(errors.is_empty());
    }
}
