//! A span-aware YAML tree: every value and every mapping key carries its line and column.
//!
//! Validation walks this tree instead of typed structs so that it can report every problem
//! of a document at once, each at the exact node it concerns. This is the only place that
//! talks to serde-saphyr.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

/// 1-based line and column of a node in its file (0:0 when unknown).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

impl Pos {
    pub const START: Pos = Pos { line: 1, column: 1 };

    fn from_location(location: serde_saphyr::Location) -> Pos {
        let line = usize::try_from(location.line()).unwrap_or(0);
        let column = usize::try_from(location.column()).unwrap_or(0);
        if line == 0 {
            Pos::START
        } else {
            Pos {
                line,
                column: column.max(1),
            }
        }
    }
}

/// One YAML node with its position.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub pos: Pos,
    pub value: Value,
}

/// A mapping entry: the key node and the value node.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub key: Node,
    pub value: Node,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    /// Every integer YAML can spell that fits in 128 bits.
    Int(i128),
    Float(f64),
    String(String),
    Seq(Vec<Node>),
    /// Entries in source order.
    Map(Vec<Entry>),
}

impl Value {
    /// What kind of value this is, for messages (`a string`, `a mapping`).
    pub fn describe(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::String(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }
}

impl Node {
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::String(text) => Some(text),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&[Entry]> {
        match &self.value {
            Value::Map(entries) => Some(entries),
            _ => None,
        }
    }

    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.value {
            Value::Seq(items) => Some(items),
            _ => None,
        }
    }

    /// The value under a string key of a mapping (the first one if repeated).
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entry(key).map(|entry| &entry.value)
    }

    /// The entry under a string key of a mapping.
    pub fn entry(&self, key: &str) -> Option<&Entry> {
        self.as_map()?
            .iter()
            .find(|entry| entry.key.as_str() == Some(key))
    }

    /// Converts to JSON. Non-string keys are written as their YAML text; floats that JSON
    /// cannot hold become null (the structural checks report them first).
    pub fn to_json(&self) -> serde_json::Value {
        match &self.value {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Int(i) => {
                if let Ok(v) = i64::try_from(*i) {
                    serde_json::Value::from(v)
                } else if let Ok(v) = u64::try_from(*i) {
                    serde_json::Value::from(v)
                } else {
                    serde_json::Value::String(i.to_string())
                }
            }
            Value::Float(f) => serde_json::Number::from_f64(*f)
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null),
            Value::String(s) => serde_json::Value::String(s.clone()),
            Value::Seq(items) => {
                serde_json::Value::Array(items.iter().map(Node::to_json).collect())
            }
            Value::Map(entries) => serde_json::Value::Object(
                entries
                    .iter()
                    .map(|entry| (entry.key.key_text(), entry.value.to_json()))
                    .collect(),
            ),
        }
    }

    /// A mapping key as text (scalars only; other keys render as their kind).
    pub fn key_text(&self) -> String {
        match &self.value {
            Value::String(s) => s.clone(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => f.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Null => "null".to_string(),
            Value::Seq(_) | Value::Map(_) => format!("<{}>", self.value.describe()),
        }
    }
}

/// A YAML syntax or structure error with its position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    pub pos: Pos,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Documents accepted in one file.
pub const MAX_DOCUMENTS: usize = 1_000_000;
/// YAML nodes accepted in one file.
pub const MAX_NODES: usize = 50_000_000;

/// Parses every non-empty document of a multi-document YAML text.
pub fn parse_documents(text: &str) -> Result<Vec<Node>, ParseError> {
    // The default budget allows 1,024 documents per file; large estates keep thousands of
    // resources in one generated file. The other limits (aliases, depth) stay as they are.
    let mut budget = serde_saphyr::budget::Budget::default();
    budget.max_documents = MAX_DOCUMENTS;
    budget.max_nodes = MAX_NODES;
    budget.max_events = MAX_NODES.saturating_mul(4);
    let options = serde_saphyr::options! { with_snippet: false, budget: Some(budget) };
    let result =
        serde_saphyr::from_str_multiple_with_options::<Spanned<Value>, Vec<_>>(text, options);
    match result {
        Ok(docs) => Ok(docs.into_iter().map(spanned_node).collect()),
        Err(err) => Err(ParseError {
            pos: err.location().map(Pos::from_location).unwrap_or(Pos::START),
            message: first_line(&err.without_snippet().to_string()),
        }),
    }
}

fn first_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or("invalid YAML").trim();
    // serde-saphyr appends its own location; ours is printed in front of the message.
    let line = match line.find(" at line ") {
        Some(index) => &line[..index],
        None => line,
    };
    if let Some(rest) = line.strip_prefix("duplicate mapping key: ") {
        let key = rest
            .split(", set DuplicateKeyPolicy")
            .next()
            .unwrap_or(rest);
        return format!("duplicate key `{key}`");
    }
    let mut message = line.to_string();
    if let Some(first) = message.get(..1) {
        let lower = first.to_lowercase();
        message.replace_range(..1, &lower);
    }
    message
}

fn spanned_node(spanned: Spanned<Value>) -> Node {
    Node {
        pos: Pos::from_location(spanned.referenced),
        value: spanned.value,
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(i128::from(v)))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Int(i128::from(v)))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Value, E> {
        Ok(Value::Int(v))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Value, E> {
        Ok(i128::try_from(v).map_or(Value::Float(v as f64), Value::Int))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Value, E> {
        Ok(Value::String(String::from_utf8_lossy(v).into_owned()))
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Value, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<Value>>()? {
            items.push(spanned_node(item));
        }
        Ok(Value::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<Value>>()? {
            let value = map.next_value::<Spanned<Value>>()?;
            entries.push(Entry {
                key: spanned_node(key),
                value: spanned_node(value),
            });
        }
        Ok(Value::Map(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_positions_of_keys_and_values() {
        let docs = parse_documents("kind: Sddc\nspec:\n  num_hosts: 2\n  tags: [a, b]\n").unwrap();
        assert_eq!(docs.len(), 1);
        let spec = docs[0].entry("spec").unwrap();
        assert_eq!(spec.key.pos, Pos { line: 2, column: 1 });
        let hosts = docs[0].get("spec").unwrap().entry("num_hosts").unwrap();
        assert_eq!(hosts.key.pos, Pos { line: 3, column: 3 });
        assert_eq!(
            hosts.value.pos,
            Pos {
                line: 3,
                column: 14
            }
        );
        assert_eq!(hosts.value.value, Value::Int(2));
        let tags = docs[0]
            .get("spec")
            .unwrap()
            .get("tags")
            .unwrap()
            .as_seq()
            .unwrap();
        assert_eq!(
            tags[1].pos,
            Pos {
                line: 4,
                column: 13
            }
        );
    }

    #[test]
    fn splits_documents_and_skips_empty_ones() {
        let docs = parse_documents("---\na: 1\n---\n---\nb: x\n").unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1].get("b").unwrap().pos, Pos { line: 5, column: 4 });
    }

    #[test]
    fn syntax_error_has_a_position_and_no_snippet() {
        let err = parse_documents("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(err.pos.line >= 1, "{err:?}");
        assert!(!err.message.contains('\n'), "{err:?}");
    }

    #[test]
    fn duplicate_keys_are_named() {
        let err = parse_documents("kind: Sddc\nname: a\nname: b\n").unwrap_err();
        assert_eq!(err.message, "duplicate key `name`");
        assert_eq!(err.pos, Pos { line: 3, column: 1 });
    }

    #[test]
    fn huge_numbers_do_not_panic() {
        let docs = parse_documents("a: 99999999999999999999999999999999999999999999\n").unwrap();
        assert!(docs[0].get("a").is_some());
        let err = parse_documents("b: 1e999\n").unwrap_err();
        assert_eq!(err.pos, Pos { line: 1, column: 4 });
    }
}
