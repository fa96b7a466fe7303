//! Edges between resources: explicit `depends_on`, the implicit `target` / `job` names of
//! Salt kinds, and `${Kind/name.attribute}` references inside spec strings. Also finds
//! dependency cycles and reports each as a path `A -> B -> A`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use super::diagnostics::Diagnostic;
use super::did_you_mean;
use super::node::{Node, Pos, Value};
use super::validate::{Document, declared_ensure};
use crate::model::{Address, Ensure, Kind, Reference, Resource};

/// `from` depends on `to` (both declared).
#[derive(Clone, Debug)]
pub struct Edge {
    pub from: Address,
    pub to: Address,
    pub attribute: Option<String>,
    /// The edge comes from a `target` or `job` name, which must live on the same server.
    pub by_name: bool,
    pub file: PathBuf,
    /// Field path of the reference in its document.
    pub path: String,
    pub pos: Pos,
}

/// One `${...}` occurrence found in a string.
#[derive(Debug, PartialEq, Eq)]
pub enum Interpolation {
    Reference { address: Address, attribute: String },
    Invalid { text: String, reason: String },
}

/// Finds every `${...}` in a string.
pub fn interpolations(text: &str) -> Vec<Interpolation> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
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
    match Kind::parse(kind) {
        Some(kind) => Interpolation::Reference {
            address: Address::new(kind, name),
            attribute: attribute.to_string(),
        },
        None => Interpolation::Invalid {
            text: format!("${{{inner}}}"),
            reason: format!("names an unknown kind `{kind}`"),
        },
    }
}

fn kind_hint(kind: &str) -> Option<String> {
    did_you_mean::hint(kind, Kind::ALL.iter().map(|k| k.as_str()))
}

struct Collector<'a> {
    doc: &'a Document,
    from: Address,
    declared: &'a BTreeMap<Address, &'a Document>,
    errors: &'a mut Vec<Diagnostic>,
    edges: Vec<Edge>,
}

impl Collector<'_> {
    fn error(&mut self, pos: Pos, path: &str, message: String, hint: Option<String>) {
        self.errors
            .push(Diagnostic::new(&self.doc.file, pos, path, message).with_hint(hint));
    }

    fn undeclared_hint(&self, address: &Address) -> Option<String> {
        let same_kind: Vec<String> = self
            .declared
            .keys()
            .filter(|a| a.kind == address.kind)
            .map(|a| a.name.clone())
            .collect();
        did_you_mean::closest(&address.name, same_kind.iter().map(String::as_str))
            .map(|n| format!("did you mean `{}/{n}`?", address.kind))
    }

    fn add(&mut self, to: Address, attribute: Option<String>, pos: Pos, path: &str) {
        if let Some(target) = self.declared.get(&to)
            && declared_ensure(self.doc) == Ensure::Present
            && declared_ensure(target) == Ensure::Absent
        {
            self.error(
                pos,
                path,
                format!("depends on `{to}`, which has `ensure: absent`"),
                None,
            );
        }
        self.edges.push(Edge {
            from: self.from.clone(),
            to,
            by_name: attribute.is_none() && path.starts_with("spec."),
            attribute,
            file: self.doc.file.clone(),
            path: path.to_string(),
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
            let Some(kind) = Kind::parse(kind) else {
                self.error(
                    item.pos,
                    &path,
                    format!("unknown kind `{kind}` in `{text}`"),
                    kind_hint(kind),
                );
                continue;
            };
            if kind == Kind::Connection {
                self.error(
                    item.pos,
                    &path,
                    "a resource cannot depend on a `Connection`".to_string(),
                    Some("use `connection:` to choose the connection".to_string()),
                );
                continue;
            }
            let address = Address::new(kind, name);
            if self.declared.contains_key(&address) {
                self.add(address, None, item.pos, &path);
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

    fn named(&mut self, field: &str, kind: Kind, required: bool) {
        let Some(node) = self.doc.spec_node().and_then(|s| s.get(field)) else {
            return;
        };
        let Some(name) = node.as_str() else { return };
        if name.contains("${") {
            return;
        }
        let address = Address::new(kind, name);
        let path = format!("spec.{field}");
        if self.declared.contains_key(&address) {
            self.add(address, None, node.pos, &path);
        } else if required {
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
            Interpolation::Reference { address, attribute } => {
                let shown = format!("${{{address}.{attribute}}}");
                if !self.declared.contains_key(&address) {
                    let hint = self.undeclared_hint(&address);
                    self.error(
                        pos,
                        path,
                        format!("reference `{shown}` names `{address}`, which is not declared"),
                        hint,
                    );
                    return;
                }
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
                self.add(address, Some(attribute), pos, path);
            }
        }
    }
}

/// Every edge a document declares or implies, reporting references to nothing.
pub fn collect_edges(
    doc: &Document,
    declared: &BTreeMap<Address, &Document>,
    errors: &mut Vec<Diagnostic>,
) -> Vec<Edge> {
    let Some(name) = &doc.name else {
        return Vec::new();
    };
    let mut collector = Collector {
        doc,
        from: Address::new(doc.kind, name.clone()),
        declared,
        errors,
        edges: Vec::new(),
    };
    collector.depends_on();
    match doc.kind {
        Kind::SaltJob => collector.named("target", Kind::SaltTarget, false),
        Kind::SaltSchedule => {
            collector.named("job", Kind::SaltJob, true);
            collector.named("target", Kind::SaltTarget, false);
        }
        _ => {}
    }
    if let Some(spec) = doc.spec_node() {
        collector.strings(spec, "spec");
    }
    collector.edges
}

/// Records edges on the resources they start from (sorted, without duplicates).
pub fn apply_edges(resources: &mut BTreeMap<Address, Resource>, edges: &[Edge]) {
    for edge in edges {
        let Some(resource) = resources.get_mut(&edge.from) else {
            continue;
        };
        if !resource.depends_on.contains(&edge.to) {
            resource.depends_on.push(edge.to.clone());
        }
        if let Some(attribute) = &edge.attribute {
            let reference = Reference {
                target: edge.to.clone(),
                attribute: attribute.clone(),
            };
            if !resource.references.contains(&reference) {
                resource.references.push(reference);
            }
        }
    }
    for resource in resources.values_mut() {
        resource.depends_on.sort();
        resource.references.sort();
    }
}

/// A `target` or `job` name must refer to an object on the same connection: saved jobs and
/// schedules point at target groups and jobs by their server-side id.
pub fn check_same_connection(
    resources: &BTreeMap<Address, Resource>,
    edges: &[Edge],
    errors: &mut Vec<Diagnostic>,
) {
    for edge in edges.iter().filter(|e| e.by_name) {
        let (Some(from), Some(to)) = (resources.get(&edge.from), resources.get(&edge.to)) else {
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
                    &edge.path,
                    format!(
                        "`{}` uses connection `{}`, but `{}` is on connection `{}`",
                        edge.from, from.connection, edge.to, to.connection
                    ),
                )
                .with_hint(Some(format!(
                    "a `{}` can only refer to a `{}` on the same server",
                    edge.from.kind, edge.to.kind
                ))),
            );
        }
    }
}

/// Reports each dependency cycle once, as a path starting at its smallest address.
pub fn check_cycles(edges: &[Edge], errors: &mut Vec<Diagnostic>) {
    let mut graph: BTreeMap<&Address, BTreeSet<&Address>> = BTreeMap::new();
    for edge in edges {
        graph.entry(&edge.from).or_default().insert(&edge.to);
        graph.entry(&edge.to).or_default();
    }
    let mut reported: BTreeSet<Vec<&Address>> = BTreeSet::new();
    let mut done: BTreeSet<&Address> = BTreeSet::new();
    let nodes: Vec<&Address> = graph.keys().copied().collect();
    for start in nodes {
        if done.contains(start) {
            continue;
        }
        // Iterative DFS keeping the current path.
        let mut path: Vec<&Address> = vec![start];
        let mut iters: Vec<Vec<&Address>> = vec![graph[start].iter().copied().collect::<Vec<_>>()];
        while let Some(next_list) = iters.last_mut() {
            if let Some(next) = (!next_list.is_empty()).then(|| next_list.remove(0)) {
                if let Some(index) = path.iter().position(|a| *a == next) {
                    let mut cycle: Vec<&Address> = path[index..].to_vec();
                    let min = cycle
                        .iter()
                        .enumerate()
                        .min_by_key(|(_, a)| **a)
                        .map_or(0, |(i, _)| i);
                    cycle.rotate_left(min);
                    if reported.insert(cycle.clone()) {
                        let first = cycle[0];
                        let second = cycle.get(1).copied().unwrap_or(first);
                        let edge = edges
                            .iter()
                            .find(|e| &e.from == first && &e.to == second)
                            .or_else(|| edges.iter().find(|e| &e.from == first));
                        let mut shown: Vec<String> = cycle.iter().map(|a| a.to_string()).collect();
                        shown.push(first.to_string());
                        if let Some(edge) = edge {
                            errors.push(
                                Diagnostic::new(
                                    &edge.file,
                                    edge.pos,
                                    &edge.path,
                                    format!("dependency cycle: `{}`", shown.join(" -> ")),
                                )
                                .with_hint(Some(
                                    "remove one of these dependencies (depends_on, target, job or ${...})"
                                        .to_string(),
                                )),
                            );
                        }
                    }
                } else if !done.contains(next) {
                    path.push(next);
                    iters.push(graph[next].iter().copied().collect());
                }
            } else {
                iters.pop();
                if let Some(finished) = path.pop() {
                    done.insert(finished);
                }
            }
        }
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

    fn edge(from: &str, to: &str) -> Edge {
        Edge {
            from: Address::parse(from).unwrap(),
            to: Address::parse(to).unwrap(),
            attribute: None,
            by_name: false,
            file: PathBuf::from("t.yaml"),
            path: String::new(),
            pos: Pos::START,
        }
    }

    #[test]
    fn cycles_are_reported_once_as_a_path() {
        let edges = vec![
            edge("SaltJob/b", "SaltJob/c"),
            edge("SaltJob/c", "SaltJob/a"),
            edge("SaltJob/a", "SaltJob/b"),
            edge("SaltJob/d", "SaltJob/a"),
            edge("SaltJob/e", "SaltJob/e"),
        ];
        let mut errors = Vec::new();
        check_cycles(&edges, &mut errors);
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
    fn acyclic_graph_has_no_errors() {
        let edges = vec![
            edge("SaltJob/b", "SaltTarget/t"),
            edge("SaltSchedule/s", "SaltJob/b"),
        ];
        let mut errors = Vec::new();
        check_cycles(&edges, &mut errors);
        assert!(errors.is_empty());
    }
}
