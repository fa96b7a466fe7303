//! Ordering planned changes in a dependency graph (petgraph): dependencies first for creates
//! and updates, dependants first for deletes, ties broken by address so the order never
//! changes between runs.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use petgraph::graph::{DiGraph, NodeIndex};

use super::{Action, ResourceChange};
use crate::model::Address;

/// A dependency cycle, as a path `A -> B -> A`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("dependency cycle: {}", .path.iter().map(ToString::to_string).collect::<Vec<_>>().join(" -> "))]
pub struct OrderError {
    pub path: Vec<Address>,
}

impl OrderError {
    pub fn first_address(&self) -> Address {
        self.path[0].clone()
    }
}

/// Returns the changes in execution order.
pub fn order_changes(mut changes: Vec<ResourceChange>) -> Result<Vec<ResourceChange>, OrderError> {
    let mut graph: DiGraph<usize, ()> = DiGraph::with_capacity(changes.len(), changes.len());
    let index: BTreeMap<&Address, NodeIndex> = changes
        .iter()
        .enumerate()
        .map(|(i, c)| (&c.address, graph.add_node(i)))
        .collect();
    // `update_edge` would scan a node's edges per call: quadratic when 100,000 jobs share one
    // target group. Duplicates are filtered here instead.
    let mut edges: HashSet<(NodeIndex, NodeIndex)> = HashSet::new();
    for change in &changes {
        let node = index[&change.address];
        for dependency in &change.depends_on {
            let Some(&dep) = index.get(dependency) else {
                continue;
            };
            let dep_is_delete = changes[graph[dep]].action == Action::Delete;
            let edge = if change.action == Action::Delete && dep_is_delete {
                // Delete the dependant before what it depends on.
                (node, dep)
            } else {
                (dep, node)
            };
            if edges.insert(edge) {
                graph.add_edge(edge.0, edge.1, ());
            }
        }
    }
    let order = kahn(&graph, &changes)?;
    permute(&mut changes, &order);
    Ok(changes)
}

/// Reorders `items` in place so that position `k` holds what was at `order[k]` (a
/// permutation of the indices), without a second vector of 100,000 changes.
fn permute<T>(items: &mut [T], order: &[usize]) {
    // `destination[i]`: where the item now at `i` belongs.
    let mut destination = vec![0usize; order.len()];
    for (position, &from) in order.iter().enumerate() {
        destination[from] = position;
    }
    for i in 0..items.len() {
        while destination[i] != i {
            let j = destination[i];
            items.swap(i, j);
            destination.swap(i, j);
        }
    }
}

/// Topological order where, among the ready nodes, the lowest address goes first.
fn kahn(graph: &DiGraph<usize, ()>, changes: &[ResourceChange]) -> Result<Vec<usize>, OrderError> {
    let mut indegree: Vec<usize> = graph
        .node_indices()
        .map(|n| {
            graph
                .neighbors_directed(n, petgraph::Direction::Incoming)
                .count()
        })
        .collect();
    let key = |n: NodeIndex| (&changes[graph[n]].address, n);
    let mut ready: BTreeSet<(&Address, NodeIndex)> = graph
        .node_indices()
        .filter(|n| indegree[n.index()] == 0)
        .map(key)
        .collect();
    let mut order = Vec::with_capacity(changes.len());
    while let Some(first) = ready.pop_first() {
        let node = first.1;
        order.push(graph[node]);
        for next in graph.neighbors_directed(node, petgraph::Direction::Outgoing) {
            indegree[next.index()] -= 1;
            if indegree[next.index()] == 0 {
                ready.insert(key(next));
            }
        }
    }
    if order.len() == changes.len() {
        return Ok(order);
    }
    Err(OrderError {
        path: find_cycle(graph, changes),
    })
}

/// The first dependency cycle, by address, among the nodes Kahn's algorithm could not place.
fn find_cycle(graph: &DiGraph<usize, ()>, changes: &[ResourceChange]) -> Vec<Address> {
    let address = |node: NodeIndex| &changes[graph[node]].address;
    let cycles = crate::manifest::dependency_cycles(graph, address);
    let Some(cycle) = cycles.first() else {
        return Vec::new();
    };
    cycle
        .iter()
        .chain(cycle.first())
        .map(|node| address(*node).clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Kind;

    fn change(kind: Kind, name: &str, action: Action, deps: &[(Kind, &str)]) -> ResourceChange {
        ResourceChange {
            address: Address::new(kind, name),
            connection: "c".into(),
            action,
            reason: None,
            cause: None,
            fields: vec![],
            unchanged: 0,
            steps: vec![],
            after: None,
            live: None,
            task: None,
            attempt: 0,
            depends_on: deps.iter().map(|(k, n)| Address::new(*k, *n)).collect(),
        }
    }

    #[test]
    fn permute_reorders_in_place() {
        let mut items = vec!['a', 'b', 'c', 'd', 'e'];
        permute(&mut items, &[3, 0, 4, 1, 2]);
        assert_eq!(items, ['d', 'a', 'e', 'b', 'c']);
        let mut same = vec![1, 2, 3];
        permute(&mut same, &[0, 1, 2]);
        assert_eq!(same, [1, 2, 3]);
    }

    fn names(changes: &[ResourceChange]) -> Vec<String> {
        changes.iter().map(|c| c.address.to_string()).collect()
    }

    #[test]
    fn dependencies_first_then_by_address() {
        let ordered = order_changes(vec![
            change(
                Kind::SaltSchedule,
                "s",
                Action::Create,
                &[(Kind::SaltJob, "j")],
            ),
            change(
                Kind::SaltJob,
                "j",
                Action::Create,
                &[(Kind::SaltTarget, "t")],
            ),
            change(Kind::SaltTarget, "t", Action::Create, &[]),
            change(Kind::Sddc, "a", Action::Create, &[]),
        ])
        .unwrap();
        // Kinds order as declared (Sddc before SaltTarget), then by name.
        assert_eq!(
            names(&ordered),
            ["Sddc/a", "SaltTarget/t", "SaltJob/j", "SaltSchedule/s"]
        );
    }

    #[test]
    fn deletes_run_in_reverse() {
        let ordered = order_changes(vec![
            change(Kind::SaltTarget, "t", Action::Delete, &[]),
            change(
                Kind::SaltJob,
                "j",
                Action::Delete,
                &[(Kind::SaltTarget, "t")],
            ),
        ])
        .unwrap();
        assert_eq!(names(&ordered), ["SaltJob/j", "SaltTarget/t"]);
    }

    #[test]
    fn a_cycle_is_reported_as_a_path() {
        let err = order_changes(vec![
            change(Kind::SaltJob, "a", Action::Create, &[(Kind::SaltJob, "b")]),
            change(Kind::SaltJob, "b", Action::Create, &[(Kind::SaltJob, "a")]),
        ])
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "dependency cycle: SaltJob/a -> SaltJob/b -> SaltJob/a"
        );
    }

    #[test]
    fn a_cycle_is_found_when_a_lower_address_waits_behind_it() {
        let err = order_changes(vec![
            change(Kind::SaltJob, "0", Action::Create, &[(Kind::SaltJob, "a")]),
            change(Kind::SaltJob, "a", Action::Create, &[(Kind::SaltJob, "b")]),
            change(Kind::SaltJob, "b", Action::Create, &[(Kind::SaltJob, "a")]),
        ])
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "dependency cycle: SaltJob/a -> SaltJob/b -> SaltJob/a"
        );
    }
}
