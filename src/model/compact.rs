//! Specs held as compact JSON text.
//!
//! A plan of 100,000 resources holds two specs per resource: the desired one and the live one.
//! As `serde_json::Value` trees (a 112-byte map entry per field, a heap string per key) a
//! seven-field SaltJob spec takes about 1.4 kB; as compact text it takes about 150 bytes.
//! Specs are parsed when they are read (diffing, rendering, request bodies), which costs a
//! microsecond or two each and never more than one spec at a time per task.

use std::fmt;
use std::sync::Arc;

use serde_json::Value;

/// A JSON value stored as its compact serialization, shared on clone.
#[derive(Clone)]
pub struct CompactJson(Arc<str>);

impl CompactJson {
    pub fn new(value: &Value) -> Self {
        // Serializing a `Value` into a `String` cannot fail: its map keys are strings and
        // writing to a `String` has no I/O error.
        let text = serde_json::to_string(value).unwrap_or_else(|_| "null".to_string());
        Self(Arc::from(text))
    }

    /// The value, parsed from the text this type wrote.
    pub fn value(&self) -> Value {
        // The text was written by `serde_json` from a `Value`, so it parses back to an equal
        // value; `Null` only guards the invariant.
        serde_json::from_str(&self.0).unwrap_or(Value::Null)
    }

    /// One top-level field of an object (parses the whole value).
    pub fn get(&self, key: &str) -> Option<Value> {
        match self.value() {
            Value::Object(mut map) => map.remove(key),
            _ => None,
        }
    }

    /// The compact JSON text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether both hold the same text (the same allocation or an identical serialization).
    pub fn same_text(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0 == other.0
    }
}

impl From<Value> for CompactJson {
    fn from(value: Value) -> Self {
        Self::new(&value)
    }
}

impl From<&Value> for CompactJson {
    fn from(value: &Value) -> Self {
        Self::new(value)
    }
}

/// Equal when the values are equal (`serde_json` maps compare regardless of key order).
impl PartialEq for CompactJson {
    fn eq(&self, other: &Self) -> bool {
        self.same_text(other) || self.value() == other.value()
    }
}

impl PartialEq<Value> for CompactJson {
    fn eq(&self, other: &Value) -> bool {
        self.value() == *other
    }
}

impl fmt::Debug for CompactJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.value(), f)
    }
}

/// The compact JSON text, as `Value`'s `Display` writes it.
impl fmt::Display for CompactJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl serde::Serialize for CompactJson {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.value().serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn round_trips_values_in_key_order() {
        let value = json!({"desc": "d", "arg": {"arg": [1, 2.5, "x"], "kwarg": {}}, "masters": [], "n": null});
        let compact = CompactJson::new(&value);
        assert_eq!(compact.value(), value);
        assert_eq!(
            compact.as_str(),
            r#"{"desc":"d","arg":{"arg":[1,2.5,"x"],"kwarg":{}},"masters":[],"n":null}"#
        );
        let keys: Vec<String> = compact
            .value()
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        assert_eq!(keys, ["desc", "arg", "masters", "n"]);
    }

    #[test]
    fn equality_follows_the_values() {
        let a = CompactJson::new(&json!({"a": 1, "b": 2}));
        let b = CompactJson::new(&json!({"b": 2, "a": 1}));
        assert_eq!(a, b);
        assert_ne!(a, CompactJson::new(&json!({"a": 1, "b": 3})));
        assert_eq!(a, json!({"a": 1, "b": 2}));
    }

    #[test]
    fn serializes_as_the_value_itself() {
        let compact = CompactJson::new(&json!({"k": ["v"]}));
        let text = serde_json::to_string(&json!({"spec": compact})).unwrap();
        assert_eq!(text, r#"{"spec":{"k":["v"]}}"#);
    }
}
