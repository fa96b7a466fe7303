//! The dependency graph of a validated model, rendered as Graphviz dot or Mermaid.
//! Edges point from a dependency to its dependant (the order apply creates them in).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use petgraph::algo::TarjanScc;
use petgraph::graph::{DiGraph, NodeIndex};

use crate::model::{Address, Model};

/// Nodes and edges sorted by address, so output is deterministic.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DependencyGraph {
    pub nodes: Vec<Address>,
    /// `(dependency, dependant)` pairs.
    pub edges: Vec<(Address, Address)>,
}

/// Output format of `sextant graph`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GraphFormat {
    Dot,
    Mermaid,
}

/// One cycle per strongly connected component of `graph` (petgraph's Tarjan), each as a path
/// that starts at the component's lowest node by `key` and follows the lowest successor
/// inside the component until a node repeats, rotated to start at its lowest node. Sorted by
/// that first node, so a cycle reads the same on every run.
pub fn dependency_cycles<N, E, K: Ord>(
    graph: &DiGraph<N, E>,
    key: impl Fn(NodeIndex) -> K,
) -> Vec<Vec<NodeIndex>> {
    let mut components: Vec<Vec<NodeIndex>> = Vec::new();
    TarjanScc::new().run(graph, |component: &[NodeIndex]| {
        let cyclic = match component {
            [node] => graph.contains_edge(*node, *node),
            _ => true,
        };
        if cyclic {
            components.push(component.to_vec());
        }
    });
    let mut found: Vec<Vec<NodeIndex>> = Vec::new();
    for mut component in components {
        component.sort_unstable();
        let inside = |node: &NodeIndex| component.binary_search(node).is_ok();
        let Some(&start) = component.iter().min_by_key(|node| key(**node)) else {
            continue;
        };
        let mut path = vec![start];
        let mut seen = BTreeMap::from([(start, 0usize)]);
        while let Some(next) = path.last().and_then(|&node| {
            graph
                .neighbors(node)
                .filter(inside)
                .min_by_key(|next| key(*next))
        }) {
            if let Some(&at) = seen.get(&next) {
                let mut cycle = path.split_off(at);
                let lowest = (0..cycle.len()).min_by_key(|&i| key(cycle[i])).unwrap_or(0);
                cycle.rotate_left(lowest);
                found.push(cycle);
                break;
            }
            seen.insert(next, path.len());
            path.push(next);
        }
    }
    found.sort_by(|a, b| key(a[0]).cmp(&key(b[0])));
    found
}

/// Builds the graph of every resource and its `depends_on` edges.
pub fn dependency_graph(model: &Model) -> DependencyGraph {
    let nodes: Vec<Address> = model.resources.keys().cloned().collect();
    let mut edges: Vec<(Address, Address)> = model
        .resources
        .values()
        .flat_map(|r| {
            r.depends_on
                .iter()
                .map(move |dep| (dep.clone(), r.address.clone()))
        })
        .collect();
    edges.sort();
    edges.dedup();
    DependencyGraph { nodes, edges }
}

fn dot_quote(text: &str) -> String {
    let text = crate::model::shown::visible(text);
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A label Mermaid shows as text: quotes and angle brackets (HTML) as entities.
fn mermaid_label(text: &str) -> String {
    crate::model::shown::visible(text)
        .replace('"', "#quot;")
        .replace('<', "#lt;")
        .replace('>', "#gt;")
}

impl DependencyGraph {
    pub fn render(&self, format: GraphFormat) -> String {
        match format {
            GraphFormat::Dot => self.to_dot(),
            GraphFormat::Mermaid => self.to_mermaid(),
        }
    }

    pub fn to_dot(&self) -> String {
        let mut out = String::from("digraph sextant {\n  rankdir=LR;\n  node [shape=box];\n");
        for node in &self.nodes {
            let _ = writeln!(out, "  {};", dot_quote(&node.to_string()));
        }
        for (from, to) in &self.edges {
            let _ = writeln!(
                out,
                "  {} -> {};",
                dot_quote(&from.to_string()),
                dot_quote(&to.to_string())
            );
        }
        out.push_str("}\n");
        out
    }

    pub fn to_mermaid(&self) -> String {
        let mut out = String::from("flowchart LR\n");
        let id = |address: &Address| {
            self.nodes
                .iter()
                .position(|n| n == address)
                .map_or_else(|| "unknown".to_string(), |i| format!("n{i}"))
        };
        for (index, node) in self.nodes.iter().enumerate() {
            let _ = writeln!(out, "  n{index}[\"{}\"]", mermaid_label(&node.to_string()));
        }
        for (from, to) in &self.edges {
            let _ = writeln!(out, "  {} --> {}", id(from), id(to));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Kind;

    fn graph() -> DependencyGraph {
        DependencyGraph {
            nodes: vec![
                Address::new(Kind::SaltTarget, "web \"a\""),
                Address::new(Kind::SaltJob, "ping"),
            ],
            edges: vec![(
                Address::new(Kind::SaltTarget, "web \"a\""),
                Address::new(Kind::SaltJob, "ping"),
            )],
        }
    }

    #[test]
    fn dot_quotes_names() {
        assert_eq!(
            graph().to_dot(),
            "digraph sextant {\n  rankdir=LR;\n  node [shape=box];\n  \"SaltTarget/web \\\"a\\\"\";\n  \"SaltJob/ping\";\n  \"SaltTarget/web \\\"a\\\"\" -> \"SaltJob/ping\";\n}\n"
        );
    }

    #[test]
    fn mermaid_uses_ids_and_labels() {
        assert_eq!(
            graph().to_mermaid(),
            "flowchart LR\n  n0[\"SaltTarget/web #quot;a#quot;\"]\n  n1[\"SaltJob/ping\"]\n  n0 --> n1\n"
        );
    }
}
