//! `sextant render`: the final documents of a run as one multi-document YAML text that is
//! the same byte for byte whenever the documents are. Documents are sorted by address,
//! fields follow the schema's order (free-form maps are sorted by key), strings are written
//! plain when the loader reads them back as the same string and double-quoted otherwise
//! (multi-line ones as literal blocks), and secrets appear as the `{env}` / `{file}`
//! references the manifests hold.

use serde_json::Value as Json;

use super::document_kind::DocumentKind;
use super::node::{Entry, Node, Value, parse_documents_with};
use super::schema::{checker_schema, document_def};

/// The text of `documents` (already validated) for environment `environment`.
pub fn render_documents(environment: Option<&str>, documents: &[Node]) -> String {
    let schema = checker_schema();
    let mut sorted: Vec<(usize, &str, &Node)> = documents
        .iter()
        .map(|doc| {
            let kind = doc.get("kind").and_then(Node::as_str).unwrap_or_default();
            // Connections first, then resources by kind; anything else last.
            let rank = DocumentKind::declared()
                .position(|k| k.as_str() == kind)
                .unwrap_or(usize::MAX);
            let name = doc.get("name").and_then(Node::as_str).unwrap_or_default();
            (rank, name, doc)
        })
        .collect();
    sorted.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    let mut out = String::new();
    match environment {
        Some(name) => out.push_str(&format!(
            "# Environment `{name}`, rendered by `sextant render`: the documents after includes,\n# substitution and patches. Regenerate it instead of editing it.\n"
        )),
        None => out.push_str(
            "# Rendered by `sextant render`. Regenerate it instead of editing it.\n",
        ),
    }
    let writer = Writer { root: schema };
    for (rank, _, doc) in sorted {
        out.push_str("---\n");
        let def = DocumentKind::declared()
            .nth(rank)
            .and_then(|kind| schema["$defs"].get(document_def(kind)));
        writer.entries(&mut out, doc, def, 0);
    }
    out
}

/// The order of a document's own fields.
const DOCUMENT_ORDER: [&str; 10] = [
    "apiVersion",
    "kind",
    "name",
    "previous_names",
    "connection",
    "depends_on",
    "ensure",
    "lifecycle",
    "timeouts",
    "spec",
];

struct Writer<'a> {
    root: &'a Json,
}

fn pad(out: &mut String, indent: usize) {
    out.extend(std::iter::repeat_n(' ', indent));
}

impl<'a> Writer<'a> {
    fn resolve(&self, schema: &'a Json) -> &'a Json {
        let mut current = schema;
        for _ in 0..32 {
            let Some(name) = current
                .get("$ref")
                .and_then(Json::as_str)
                .and_then(|r| r.strip_prefix("#/$defs/"))
            else {
                break;
            };
            match self.root["$defs"].get(name) {
                Some(next) => current = next,
                None => break,
            }
        }
        current
    }

    /// The object schema (with `properties`) that fits a mapping with `keys` best.
    fn object_schema(&self, schema: Option<&'a Json>, keys: &[String]) -> Option<&'a Json> {
        let schema = self.resolve(schema?);
        if schema.get("properties").is_some() || schema.get("additionalProperties").is_some() {
            return Some(schema);
        }
        let branches = schema
            .get("anyOf")
            .or_else(|| schema.get("oneOf"))?
            .as_array()?;
        branches
            .iter()
            .map(|b| self.resolve(b))
            .filter(|b| b.get("properties").is_some() || b.get("additionalProperties").is_some())
            .max_by_key(|b| {
                let known = b.get("properties").and_then(Json::as_object);
                let hits = keys
                    .iter()
                    .filter(|k| known.is_some_and(|p| p.contains_key(k.as_str())))
                    .count();
                // Ties go to the first branch.
                (hits, usize::MAX - branches.len())
            })
    }

    fn item_schema(&self, schema: Option<&'a Json>) -> Option<&'a Json> {
        let schema = self.resolve(schema?);
        if let Some(items) = schema.get("items") {
            return Some(items);
        }
        let branches = schema.get("anyOf").or_else(|| schema.get("oneOf"))?;
        branches
            .as_array()?
            .iter()
            .find_map(|b| self.resolve(b).get("items"))
    }

    /// A mapping's entries in canonical order, each with its schema: a document's own
    /// fields in [`DOCUMENT_ORDER`], other known fields in the schema's order, then the
    /// rest sorted by key.
    fn ordered(
        &self,
        entries: &'a [Entry],
        schema: Option<&'a Json>,
        document: bool,
    ) -> Vec<(&'a Entry, Option<&'a Json>)> {
        let keys: Vec<String> = entries.iter().map(|e| e.key.key_text()).collect();
        let object = self.object_schema(schema, &keys);
        let properties = object
            .and_then(|o| o.get("properties"))
            .and_then(Json::as_object);
        let additional = object
            .and_then(|o| o.get("additionalProperties"))
            .filter(|a| a.is_object());
        let rank = |key: &str| {
            if document {
                DOCUMENT_ORDER.iter().position(|k| *k == key)
            } else {
                properties.and_then(|p| p.keys().position(|k| k == key))
            }
        };
        let mut known: Vec<(usize, &'a Entry, Option<&'a Json>)> = Vec::new();
        let mut rest: Vec<(String, &'a Entry, Option<&'a Json>)> = Vec::new();
        for (entry, key) in entries.iter().zip(keys) {
            let property = properties.and_then(|p| p.get(&key));
            match rank(&key) {
                Some(index) => known.push((index, entry, property)),
                None => rest.push((key, entry, additional)),
            }
        }
        known.sort_by_key(|(index, _, _)| *index);
        rest.sort_by(|a, b| a.0.cmp(&b.0));
        known
            .into_iter()
            .map(|(_, e, s)| (e, s))
            .chain(rest.into_iter().map(|(_, e, s)| (e, s)))
            .collect()
    }

    /// The entries of a mapping, one per line at `indent`.
    fn entries(&self, out: &mut String, node: &'a Node, schema: Option<&'a Json>, indent: usize) {
        let Value::Map(entries) = &node.value else {
            return;
        };
        let document = indent == 0;
        for (entry, child) in self.ordered(entries, schema, document) {
            pad(out, indent);
            out.push_str(&scalar(&entry.key.value, None));
            out.push(':');
            self.value(out, &entry.value, child, indent);
        }
    }

    /// A value after `key:` (or `-`): nested collections on the lines below.
    fn value(&self, out: &mut String, node: &'a Node, schema: Option<&'a Json>, indent: usize) {
        match &node.value {
            Value::Map(entries) if !entries.is_empty() => {
                out.push('\n');
                self.entries(out, node, schema, indent + 2);
            }
            Value::Seq(items) if !items.is_empty() => {
                out.push('\n');
                self.items(out, items, self.item_schema(schema), indent + 2);
            }
            other => {
                out.push(' ');
                out.push_str(&scalar(other, Some(indent + 2)));
                out.push('\n');
            }
        }
    }

    fn items(&self, out: &mut String, items: &'a [Node], schema: Option<&'a Json>, indent: usize) {
        for item in items {
            let nested = match &item.value {
                Value::Map(entries) if !entries.is_empty() => {
                    let mut text = String::new();
                    self.entries(&mut text, item, schema, indent + 2);
                    Some(text)
                }
                Value::Seq(inner) if !inner.is_empty() => {
                    let mut text = String::new();
                    self.items(&mut text, inner, self.item_schema(schema), indent + 2);
                    Some(text)
                }
                _ => None,
            };
            match nested {
                // The first line of the nested block moves up beside the dash.
                Some(text) => {
                    pad(out, indent);
                    out.push_str("- ");
                    out.push_str(&text[indent + 2..]);
                }
                None => {
                    pad(out, indent);
                    out.push('-');
                    out.push(' ');
                    out.push_str(&scalar(&item.value, Some(indent + 2)));
                    out.push('\n');
                }
            }
        }
    }
}

/// A scalar (or an empty collection) as YAML text. `block` is the indentation a literal
/// block would use; keys pass `None` and are never blocks.
fn scalar(value: &Value, block: Option<usize>) -> String {
    match value {
        Value::Null => "null".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::BigInt(i) => i.to_string(),
        Value::Float(f) => float(*f),
        Value::String(text) => string(text, block),
        Value::Seq(_) => "[]".to_string(),
        Value::Map(_) => "{}".to_string(),
    }
}

fn float(f: f64) -> String {
    if f.is_nan() {
        return ".nan".to_string();
    }
    if f.is_infinite() {
        return if f > 0.0 { ".inf" } else { "-.inf" }.to_string();
    }
    let text = f.to_string();
    if text.contains(['.', 'e', 'E']) {
        text
    } else {
        format!("{text}.0")
    }
}

fn string(text: &str, block: Option<usize>) -> String {
    if let Some(indent) = block
        && let Some(literal) = literal_block(text, indent)
    {
        return literal;
    }
    if reads_back_plain(text) {
        text.to_string()
    } else {
        // A JSON string is a valid YAML double-quoted scalar.
        serde_json::to_string(text).unwrap_or_else(|_| "\"\"".to_string())
    }
}

/// `|` block for a multi-line string whose lines a literal block keeps exactly.
fn literal_block(text: &str, indent: usize) -> Option<String> {
    if !text.contains('\n') {
        return None;
    }
    let printable = text
        .chars()
        .all(|c| c == '\n' || c == '\t' || !(c.is_control() || is_special_break(c)));
    let body = text.trim_end_matches('\n');
    let blank_with_spaces = body
        .split('\n')
        .any(|line| !line.is_empty() && line.trim_matches([' ', '\t']).is_empty());
    if !printable
        || blank_with_spaces
        || body.is_empty()
        || body.starts_with([' ', '\t'])
        || text.starts_with('\n')
    {
        return None;
    }
    let trailing = text.len() - body.len();
    let chomp = match trailing {
        0 => "-",
        1 => "",
        _ => "+",
    };
    let mut out = format!("|{chomp}\n");
    let lines: Vec<&str> = text[..text.len() - trailing.min(1)].split('\n').collect();
    for (index, line) in lines.iter().enumerate() {
        if !line.is_empty() {
            pad(&mut out, indent);
            out.push_str(line);
        }
        if index + 1 < lines.len() {
            out.push('\n');
        }
    }
    Some(out)
}

fn is_special_break(c: char) -> bool {
    matches!(c, '\u{85}' | '\u{2028}' | '\u{2029}' | '\u{feff}')
}

/// Whether the loader reads `text`, written plain as a value, back as the same string.
fn reads_back_plain(text: &str) -> bool {
    if text.is_empty()
        || text.starts_with([
            '-', '?', ':', ',', '[', ']', '{', '}', '#', '&', '*', '!', '|', '>', '\'', '"', '%',
            '@', '`', ' ', '\t',
        ])
        || text.ends_with([' ', '\t', ':'])
        || text.contains(": ")
        || text.contains(" #")
        || text.chars().any(|c| c.is_control() || is_special_break(c))
    {
        return false;
    }
    let line = format!("k: {text}\n");
    matches!(
        parse_documents_with(&line, |node| node).as_deref(),
        Ok([doc]) if doc.get("k").and_then(Node::as_str) == Some(text)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::node::parse_documents;

    fn round_trip(yaml: &str) -> (String, serde_json::Value, serde_json::Value) {
        let docs = parse_documents(yaml).unwrap();
        let text = render_documents(Some("t"), &docs);
        let back = parse_documents(&text).unwrap();
        let before = serde_json::Value::Array(docs.iter().map(Node::to_json).collect());
        let mut after: Vec<serde_json::Value> = back.iter().map(Node::to_json).collect();
        // Rendering sorts; compare as sets keyed by name.
        after.sort_by_key(|d| d["name"].to_string());
        let mut expected: Vec<serde_json::Value> = before.as_array().unwrap().clone();
        expected.sort_by_key(|d| d["name"].to_string());
        (
            text,
            serde_json::Value::Array(expected),
            serde_json::Value::Array(after),
        )
    }

    #[test]
    fn fields_follow_the_schema_and_documents_the_address_order() {
        let yaml = "spec: {num_hosts: 2, region: us-west-2}\nname: b\nkind: Sddc\nlifecycle: {ignore_changes: [spec.size], prevent_destroy: true}\n---\n\
                    spec:\n  type: vmc\n  api_token: {env: T}\nkind: Connection\nname: vmc\n---\n\
                    kind: SaltTarget\nname: a\nspec:\n  tgt:\n    'z*': {tgt: b, tgt_type: glob}\n    '*': {tgt_type: glob, tgt: a}\n  desc: x\n";
        let (text, before, after) = round_trip(yaml);
        assert_eq!(before, after);
        assert_eq!(
            text,
            "# Environment `t`, rendered by `sextant render`: the documents after includes,\n# substitution and patches. Regenerate it instead of editing it.\n\
             ---\nkind: Connection\nname: vmc\nspec:\n  type: vmc\n  api_token:\n    env: T\n\
             ---\nkind: Sddc\nname: b\nlifecycle:\n  prevent_destroy: true\n  ignore_changes:\n    - spec.size\nspec:\n  region: us-west-2\n  num_hosts: 2\n\
             ---\nkind: SaltTarget\nname: a\nspec:\n  desc: x\n  tgt:\n    \"*\":\n      tgt_type: glob\n      tgt: a\n    z*:\n      tgt_type: glob\n      tgt: b\n"
        );
    }

    #[test]
    fn awkward_strings_and_numbers_read_back_the_same() {
        let yaml = concat!(
            "kind: SaltJob\nname: \"x: y\"\nspec:\n",
            "  desc: \"true\"\n",
            "  cmd: \"123\"\n",
            "  fun: \"a #b\"\n",
            "  masters: [\"-x\", \"\", \" lead\", \"null\", \"~\", \"1.5\", \"0x1F\", \"yes\", \"---\", \"tab\\there\", \"é ünïcode\", \"$${HOME}\", \"*\"]\n",
            "  arg:\n    kwarg:\n      script: \"line 1\\n  line 2\\n\\nend\\n\"\n      nolf: \"a\\nb\"\n      many: \"a\\n\\n\\n\"\n      lead: \"\\n a\"\n      cr: \"a\\r\\nb\"\n      f: 2.0\n      g: 1.0e-7\n      big: 18446744073709551615\n      deep: [[1, [2]], {a: [3]}, []]\n      empty: {}\n",
        );
        let (text, before, after) = round_trip(yaml);
        assert_eq!(before, after, "{text}");
        assert!(
            text.contains("      script: |\n        line 1\n          line 2\n\n        end\n"),
            "{text}"
        );
        assert!(
            text.contains("      nolf: |-\n        a\n        b\n"),
            "{text}"
        );
        assert!(text.contains("- - 1\n"), "{text}");
    }

    #[test]
    fn rendering_is_the_same_whatever_the_input_order() {
        let a = "kind: SaltJob\nname: j\nspec: {fun: f, desc: d, arg: {kwarg: {b: 1, a: 2}}}\n---\nkind: Sddc\nname: s\nspec: {region: r, num_hosts: 1}\n";
        let b = "kind: Sddc\nname: s\nspec: {num_hosts: 1, region: r}\n---\nkind: SaltJob\nname: j\nspec: {arg: {kwarg: {a: 2, b: 1}}, desc: d, fun: f}\n";
        let render = |yaml: &str| render_documents(None, &parse_documents(yaml).unwrap());
        assert_eq!(render(a), render(b));
    }
}
