//! The dependency graph of a validated model, rendered as Graphviz dot or Mermaid.
//! Edges point from a dependency to its dependant (the order apply creates them in).

use std::fmt::Write as _;

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
