//! JSON merge patches (RFC 7396) of parsed documents: a mapping merges key by key, `null`
//! removes a key, anything else replaces the value. Nodes brought in by a patch keep their
//! positions in the environment file; the positions are recorded so that an error found in
//! them later is reported in that file.

use super::node::{Entry, Node, Pos, Value};

/// A node a patch put into a document: its field path and position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inserted {
    pub path: String,
    pub pos: Pos,
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Merges `patch` (a mapping of document fields) into `document`.
pub fn merge(document: &mut Node, patch: &Node, inserted: &mut Vec<Inserted>) {
    merge_at(document, patch, "", inserted);
}

fn merge_at(target: &mut Node, patch: &Node, path: &str, inserted: &mut Vec<Inserted>) {
    let Value::Map(patch_entries) = &patch.value else {
        *target = without_nulls(patch);
        record(target, path, inserted);
        return;
    };
    if !matches!(target.value, Value::Map(_)) {
        target.value = Value::Map(Box::default());
    }
    let Value::Map(entries) = &mut target.value else {
        return;
    };
    let mut merged: Vec<Entry> = std::mem::take(entries).into_vec();
    for patch_entry in patch_entries.iter() {
        let key = patch_entry.key.key_text();
        let child = join(path, &key);
        let existing = merged.iter().position(|e| e.key.key_text() == key);
        match (existing, &patch_entry.value.value) {
            (Some(index), Value::Null) => {
                merged.remove(index);
            }
            (None, Value::Null) => {}
            (Some(index), _) => merge_at(
                &mut merged[index].value,
                &patch_entry.value,
                &child,
                inserted,
            ),
            (None, _) => {
                let entry = Entry {
                    key: patch_entry.key.clone(),
                    value: without_nulls(&patch_entry.value),
                };
                inserted.push(Inserted {
                    path: child.clone(),
                    pos: entry.key.pos,
                });
                record(&entry.value, &child, inserted);
                merged.push(entry);
            }
        }
    }
    *entries = merged.into_boxed_slice();
}

/// A copy of `node` without `null` entries in its mappings, at any depth (what merging a
/// patch into nothing gives).
fn without_nulls(node: &Node) -> Node {
    let value = match &node.value {
        Value::Map(entries) => Value::Map(
            entries
                .iter()
                .filter(|e| e.value.value != Value::Null)
                .map(|e| Entry {
                    key: e.key.clone(),
                    value: without_nulls(&e.value),
                })
                .collect(),
        ),
        other => other.clone(),
    };
    Node {
        pos: node.pos,
        value,
    }
}

/// Records `node` and every node under it as brought in at `path`.
fn record(node: &Node, path: &str, inserted: &mut Vec<Inserted>) {
    inserted.push(Inserted {
        path: path.to_string(),
        pos: node.pos,
    });
    match &node.value {
        Value::Map(entries) => {
            for entry in entries.iter() {
                inserted.push(Inserted {
                    path: path.to_string(),
                    pos: entry.key.pos,
                });
                record(&entry.value, path, inserted);
            }
        }
        Value::Seq(items) => items.iter().for_each(|item| record(item, path, inserted)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::node::parse_documents;

    fn patched(document: &str, patch: &str) -> (serde_json::Value, Vec<Inserted>) {
        let mut document = parse_documents(document).unwrap().remove(0);
        let patch = parse_documents(patch).unwrap().remove(0);
        let mut inserted = Vec::new();
        merge(&mut document, &patch, &mut inserted);
        (document.to_json(), inserted)
    }

    #[test]
    fn mappings_merge_null_removes_and_the_rest_replaces() {
        let (json, _) = patched(
            "kind: Sddc\nname: a\nspec:\n  num_hosts: 2\n  region: us-west-2\n  tags: [a, b]\n  arg: {kwarg: {x: 1, y: 2}}\n",
            "spec:\n  num_hosts: 6\n  region: null\n  tags: [c]\n  arg: {kwarg: {y: null, z: 3}}\n  size: large\nlifecycle: {prevent_destroy: true, ignore_changes: null}\n",
        );
        assert_eq!(
            json,
            serde_json::json!({
                "kind": "Sddc",
                "name": "a",
                "spec": {"num_hosts": 6, "tags": ["c"], "arg": {"kwarg": {"x": 1, "z": 3}}, "size": "large"},
                "lifecycle": {"prevent_destroy": true},
            })
        );
    }

    #[test]
    fn a_scalar_target_becomes_a_mapping_and_removing_a_missing_key_is_nothing() {
        let (json, _) = patched("spec: 3\n", "spec: {a: 1, b: null}\nnothing: null\n");
        assert_eq!(json, serde_json::json!({"spec": {"a": 1}}));
        let (json, _) = patched("spec: {a: 1}\n", "spec: null\n");
        assert_eq!(json, serde_json::json!({}));
    }

    #[test]
    fn inserted_nodes_are_recorded_with_their_paths() {
        let (_, inserted) = patched("spec:\n  a: 1\n", "spec:\n  a: 2\n  b:\n    c: 3\n");
        let paths: Vec<(&str, u32)> = inserted
            .iter()
            .map(|i| (i.path.as_str(), i.pos.line))
            .collect();
        assert_eq!(
            paths,
            vec![
                ("spec.a", 2),
                ("spec.b", 3),
                ("spec.b", 4),
                ("spec.b", 4),
                ("spec.b", 4)
            ]
        );
    }
}
