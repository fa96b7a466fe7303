//! A span-aware YAML tree: every value and every mapping key carries its line and column.
//!
//! Validation walks this tree instead of typed structs so that it can report every problem
//! of a document at once, each at the exact node it concerns. This is the only place that
//! talks to serde-saphyr.

use std::fmt;
use std::ops::Deref;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

/// 1-based line and column of a node in its file (0:0 when unknown). `u32` keeps every node
/// of a large estate small; a position past `u32::MAX` saturates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pos {
    pub line: u32,
    pub column: u32,
}

impl Pos {
    pub const START: Pos = Pos { line: 1, column: 1 };

    /// A position from 1-based counts, saturating at `u32::MAX`.
    pub fn new(line: usize, column: usize) -> Pos {
        Pos {
            line: u32::try_from(line).unwrap_or(u32::MAX),
            column: u32::try_from(column).unwrap_or(u32::MAX),
        }
    }

    fn from_location(location: serde_saphyr::Location) -> Pos {
        let line = u32::try_from(location.line()).unwrap_or(u32::MAX);
        let column = u32::try_from(location.column()).unwrap_or(u32::MAX);
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

/// A YAML value. Collections are boxed slices (no spare capacity), wide integers are boxed
/// and short strings are stored inline, so that a [`Node`] is 32 bytes: a large estate holds
/// millions of them until its model is built.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    /// An integer that fits in 64 bits.
    Int(i64),
    /// Any other integer YAML can spell that fits in 128 bits.
    BigInt(Box<i128>),
    Float(f64),
    String(Text),
    Seq(Box<[Node]>),
    /// Entries in source order.
    Map(Box<[Entry]>),
}

/// The text of a string scalar. Most keys, kinds and names are short and stored in the node
/// itself: one small allocation per scalar would double a document's tree, and once freed
/// such pieces are too small for the allocator to reuse for the model.
///
/// Hand-written rather than taken from a small-string crate on purpose: it is sized to fit
/// beside the tag of [`Value`] so that a [`Node`] stays 32 bytes, part of BENCHMARKS.md
/// fix 12 (100k manifest load peak 400 → 149 MB).
#[derive(Clone)]
pub enum Text {
    Inline { len: u8, bytes: [u8; Text::INLINE] },
    Heap(Box<str>),
}

impl Text {
    /// The longest text stored inline (what fits beside the tag in a 24-byte [`Value`]).
    const INLINE: usize = 22;

    pub fn new(text: &str) -> Text {
        match u8::try_from(text.len()) {
            Ok(len) if text.len() <= Text::INLINE => {
                let mut bytes = [0; Text::INLINE];
                bytes[..text.len()].copy_from_slice(text.as_bytes());
                Text::Inline { len, bytes }
            }
            _ => Text::Heap(Box::from(text)),
        }
    }

    fn from_string(text: String) -> Text {
        if text.len() <= Text::INLINE {
            Text::new(&text)
        } else {
            Text::Heap(text.into_boxed_str())
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            // Always valid: the bytes were copied from a `str`.
            Text::Inline { len, bytes } => {
                std::str::from_utf8(&bytes[..usize::from(*len)]).unwrap_or_default()
            }
            Text::Heap(text) => text,
        }
    }
}

impl Deref for Text {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq for Text {
    fn eq(&self, other: &Text) -> bool {
        self.as_str() == other.as_str()
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl Value {
    /// An integer, boxed only when it does not fit in 64 bits.
    pub fn integer(value: i128) -> Value {
        i64::try_from(value).map_or_else(|_| Value::BigInt(Box::new(value)), Value::Int)
    }

    /// What kind of value this is, for messages (`a string`, `a mapping`).
    pub fn describe(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) | Value::BigInt(_) => "an integer",
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
            Value::String(text) => Some(text.as_str()),
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

    /// The node at `path` (keys of nested mappings), or the deepest one on the way that
    /// exists: where a message about that path points.
    pub fn deepest<'k>(&self, path: impl IntoIterator<Item = &'k str>) -> &Node {
        let mut node = self;
        for key in path {
            match node.get(key) {
                Some(next) => node = next,
                None => break,
            }
        }
        node
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
            Value::Int(i) => serde_json::Value::from(*i),
            Value::BigInt(i) => match u64::try_from(**i) {
                Ok(v) => serde_json::Value::from(v),
                Err(_) => serde_json::Value::String(i.to_string()),
            },
            Value::Float(f) => serde_json::Number::from_f64(*f)
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null),
            Value::String(s) => serde_json::Value::String(s.to_string()),
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
            Value::String(s) => s.to_string(),
            Value::Int(i) => i.to_string(),
            Value::BigInt(i) => i.to_string(),
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
#[cfg(test)]
pub fn parse_documents(text: &str) -> Result<Vec<Node>, ParseError> {
    parse_documents_with(text, |node| node)
}

/// Hand-written on purpose: a YAML parser reads a text on one thread, and cutting it at
/// document starts is what BENCHMARKS.md fix 15 measured (100k manifest load 2.3–3.0 →
/// 1.5 s); std's scoped threads run the pieces.
///
/// Parses every non-empty document of a multi-document YAML text and passes each through
/// `each` on the thread that parsed it (checking a document's structure costs about as much
/// as parsing it).
///
/// A large text is cut at document-start lines (`---` at the start of a line, which YAML
/// forbids inside any scalar or collection) and the pieces are parsed on several threads;
/// positions are shifted back to the whole text. When any piece fails, the whole text is
/// parsed again in one go, so errors and their positions are exactly those of a single parse.
/// The node budget ([`MAX_NODES`]) applies to each piece.
pub fn parse_documents_with<T: Send>(
    text: &str,
    each: impl Fn(Node) -> T + Sync,
) -> Result<Vec<T>, ParseError> {
    // Asked only for a text worth splitting: on Linux the answer costs reads of the cgroup
    // files, which for 10,000 small manifests took longer than parsing them.
    let threads = if text.len() >= 2 * MIN_PIECE {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        1
    };
    let threads = threads.min(text.len() / MIN_PIECE);
    // More pieces than threads, each thread taking the next one left: a thread slowed by
    // other work (the other load of `drift`, a neighbour on a CI runner) leaves its share to
    // the others instead of holding the whole parse up.
    let pieces = (text.len() / MIN_SHARE).min(threads * SHARES_PER_THREAD);
    parse_documents_in(text, pieces, threads, &each)
}

/// Smallest text worth a thread, per thread.
const MIN_PIECE: usize = 256 * 1024;
/// Smallest piece the threads share out.
const MIN_SHARE: usize = 64 * 1024;
/// Pieces per thread, at most.
const SHARES_PER_THREAD: usize = 4;

/// Parses `text` in up to `pieces` pieces on up to `threads` threads (this one included),
/// each taking the next piece left.
fn parse_documents_in<T: Send>(
    text: &str,
    pieces: usize,
    threads: usize,
    each: &(impl Fn(Node) -> T + Sync),
) -> Result<Vec<T>, ParseError> {
    let one_parse = || parse_piece(text).map(|docs| docs.into_iter().map(each).collect());
    if threads < 2 {
        return one_parse();
    }
    let pieces = split_documents(text, pieces);
    if pieces.len() < 2 {
        return one_parse();
    }
    // The line each piece starts at, counted once.
    let mut offsets = Vec::with_capacity(pieces.len());
    let mut counted = (0, 0u32);
    for &(start, _) in &pieces {
        let breaks = u32::try_from(line_breaks(&text[counted.0..start])).unwrap_or(u32::MAX);
        counted = (start, counted.1.saturating_add(breaks));
        offsets.push(counted.1);
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let work = || {
        let mut done = Vec::new();
        loop {
            let index = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let (Some(&(start, end)), Some(&offset)) = (pieces.get(index), offsets.get(index))
            else {
                break;
            };
            let parsed = parse_piece(&text[start..end]).map(|docs| {
                docs.into_iter()
                    .map(|mut node| {
                        move_lines(&mut node, i64::from(offset));
                        each(node)
                    })
                    .collect::<Vec<T>>()
            });
            let failed = parsed.is_err();
            done.push((index, parsed));
            if failed {
                break;
            }
        }
        done
    };
    let mut results: Vec<Option<Result<Vec<T>, ParseError>>> =
        std::iter::repeat_with(|| None).take(pieces.len()).collect();
    std::thread::scope(|scope| {
        let helpers: Vec<_> = (1..threads.min(pieces.len()))
            .filter_map(|_| {
                std::thread::Builder::new()
                    .name("sextant-yaml".into())
                    .spawn_scoped(scope, work)
                    .ok()
            })
            .collect();
        let mut done = work();
        for helper in helpers {
            if let Ok(mut more) = helper.join() {
                done.append(&mut more);
            }
        }
        for (index, parsed) in done {
            results[index] = Some(parsed);
        }
    });
    let mut docs = Vec::new();
    for result in results {
        match result {
            Some(Ok(mut piece)) => docs.append(&mut piece),
            // A failed piece (or a thread that could not run): the single parse decides.
            _ => return one_parse(),
        }
    }
    if docs.len() > MAX_DOCUMENTS {
        return one_parse();
    }
    Ok(docs)
}

/// Up to `pieces` byte ranges covering `text`, each after the first starting at a
/// document-start line. None when the text holds directives (`%YAML`, `%TAG`), which apply
/// to the document after them.
fn split_documents(text: &str, pieces: usize) -> Vec<(usize, usize)> {
    if pieces < 2 || has_directives(text) {
        return vec![(0, text.len())];
    }
    let mut cuts = vec![0];
    for k in 1..pieces {
        let from = (text.len() * k / pieces).max(cuts[cuts.len() - 1] + 1);
        let Some(cut) = next_document_start(text, from) else {
            break;
        };
        cuts.push(cut);
    }
    cuts.push(text.len());
    cuts.dedup();
    cuts.windows(2).map(|w| (w[0], w[1])).collect()
}

/// Whether `text` holds a directive line (`%YAML`, `%TAG`): it applies to the document after
/// it, so such a text is never cut.
fn has_directives(text: &str) -> bool {
    text.starts_with('%') || text.contains("\n%")
}

/// The byte offset of the first `---` line starting at or after `from`.
fn next_document_start(text: &str, from: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut at = from;
    // memchr's substring search, not a byte window: this scans every manifest (twice for a
    // drift baseline), and is most of the cost of cutting a large file.
    while let Some(found) = memchr::memmem::find(bytes.get(at..)?, b"\n---") {
        let line = at + found + 1;
        match bytes.get(line + 3) {
            None | Some(b' ' | b'\t' | b'\r' | b'\n') => return Some(line),
            Some(_) => at = line,
        }
    }
    None
}

/// A run of whole lines of a text that starts at a document-start line (or at the start of
/// the text) and ends before the next one: the unit in which one load of a file can reuse
/// the documents another load parsed from the same lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Byte range in the text.
    pub start: usize,
    pub end: usize,
    /// Its first line (1-based).
    pub line: u32,
}

/// `text` cut at every document-start line. One segment when the text holds directives,
/// which apply to the document after them.
pub fn document_segments(text: &str) -> Vec<Segment> {
    let whole = || {
        vec![Segment {
            start: 0,
            end: text.len(),
            line: 1,
        }]
    };
    if has_directives(text) {
        return whole();
    }
    let mut segments = Vec::new();
    let (mut start, mut line) = (0, 1u32);
    while let Some(cut) = next_document_start(text, start) {
        segments.push(Segment {
            start,
            end: cut,
            line,
        });
        let breaks = u32::try_from(line_breaks(&text[start..cut])).unwrap_or(u32::MAX);
        line = line.saturating_add(breaks);
        start = cut;
    }
    segments.push(Segment {
        start,
        end: text.len(),
        line,
    });
    segments
}

/// [`parse_documents_with`] of the lines of a larger text that start at line `first_line`:
/// positions are those in the larger text before `each` sees a document.
pub fn parse_documents_at<T: Send>(
    text: &str,
    first_line: u32,
    each: impl Fn(Node) -> T + Sync,
) -> Result<Vec<T>, ParseError> {
    let offset = first_line.saturating_sub(1);
    parse_documents_with(text, |mut node| {
        if offset != 0 {
            move_lines(&mut node, i64::from(offset));
        }
        each(node)
    })
    .map_err(|mut err| {
        err.pos.line = err.pos.line.saturating_add(offset);
        err
    })
}

/// Moves a node and everything under it by `delta` lines (up when negative).
pub fn move_lines(node: &mut Node, delta: i64) {
    if delta == 0 {
        return;
    }
    if node.pos.line != 0 {
        node.pos.line =
            u32::try_from((i64::from(node.pos.line) + delta).max(1)).unwrap_or(u32::MAX);
    }
    match &mut node.value {
        Value::Seq(items) => items.iter_mut().for_each(|item| move_lines(item, delta)),
        Value::Map(entries) => entries.iter_mut().for_each(|entry| {
            move_lines(&mut entry.key, delta);
            move_lines(&mut entry.value, delta);
        }),
        _ => {}
    }
}

/// Line breaks in `text` as YAML counts them (`\n`, `\r\n` and a lone `\r`).
fn line_breaks(text: &str) -> usize {
    line_break_ends(text.as_bytes()).count()
}

/// The offset of the last byte of each line break in `bytes`, in order, as YAML counts them
/// (`\n`, `\r\n` and a lone `\r`): a line starts at the byte after each.
pub(super) fn line_break_ends(bytes: &[u8]) -> impl Iterator<Item = usize> + '_ {
    memchr::memchr2_iter(b'\n', b'\r', bytes)
        .filter(|&i| bytes[i] == b'\n' || bytes.get(i + 1) != Some(&b'\n'))
}

fn parse_piece(text: &str) -> Result<Vec<Node>, ParseError> {
    // The default budget allows 1,024 documents per file; large estates keep thousands of
    // resources in one generated file. The other limits (aliases, depth) stay as they are.
    let mut budget = serde_saphyr::budget::Budget::default();
    budget.max_documents = MAX_DOCUMENTS;
    budget.max_nodes = MAX_NODES;
    budget.max_events = MAX_NODES.saturating_mul(4);
    let options = serde_saphyr::options! { with_snippet: false, budget: Some(budget) };
    let result =
        serde_saphyr::from_str_multiple_with_options::<Spanned<Value>, Documents>(text, options);
    match result {
        Ok(Documents(mut docs)) => {
            docs.shrink_to_fit();
            Ok(docs)
        }
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

/// Collects documents as nodes while parsing, without a list of spanned values first.
#[derive(Default)]
struct Documents(Vec<Node>);

impl Extend<Spanned<Value>> for Documents {
    fn extend<I: IntoIterator<Item = Spanned<Value>>>(&mut self, docs: I) {
        self.0.extend(docs.into_iter().map(spanned_node));
    }
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
        Ok(Value::Int(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::integer(i128::from(v)))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Value, E> {
        Ok(Value::integer(v))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Value, E> {
        Ok(i128::try_from(v).map_or(Value::Float(v as f64), Value::integer))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(Text::new(v)))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(Text::from_string(v)))
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Value, E> {
        Ok(Value::String(Text::new(&String::from_utf8_lossy(v))))
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
        Ok(Value::Seq(items.into_boxed_slice()))
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
        Ok(Value::Map(entries.into_boxed_slice()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_parsed_in_pieces_equal_one_parse() {
        let mut text = String::from("# generated\n");
        for i in 0..40 {
            text.push_str(&format!(
                "---\nkind: SaltJob\nname: j{i}\nspec:\n  desc: |\n    line {i}\n    ---not a marker\n  arg: {{kwarg: {{n: {i}}}}}\r\n"
            ));
            if i % 7 == 0 {
                text.push_str("---\n# only a comment\n---   \nnote: é\r");
            }
        }
        let whole = parse_piece(&text).unwrap();
        assert!(whole.len() > 40);
        for pieces in [2, 3, 5, 16] {
            assert!(split_documents(&text, pieces).len() > 1);
            for threads in [2, 3, 8] {
                assert_eq!(
                    parse_documents_in(&text, pieces, threads, &|n| n).unwrap(),
                    whole,
                    "{pieces} pieces, {threads} threads"
                );
            }
        }
    }

    #[test]
    fn a_failing_piece_reports_the_error_of_one_parse() {
        let good = "---\nkind: Sddc\nname: a\n".repeat(30);
        // A quoted scalar cut by a document marker, and a bad indentation further on.
        let text =
            format!("{good}---\ndesc: \"open\n--- still quoted\"\n{good}---\na: 1\n b: 2\n{good}");
        let whole = parse_piece(&text).unwrap_err();
        for pieces in [2, 4, 8] {
            for threads in [2, 3] {
                assert_eq!(
                    parse_documents_in(&text, pieces, threads, &|n| n).unwrap_err(),
                    whole
                );
            }
        }
        let late = format!("{good}{good}---\na: 1\n b: 2\n");
        let whole = parse_piece(&late).unwrap_err();
        assert!(whole.pos.line > 100, "{whole:?}");
        assert_eq!(parse_documents_in(&late, 4, 2, &|n| n).unwrap_err(), whole);
    }

    #[test]
    fn segments_cover_the_text_and_parse_to_the_documents_of_the_whole() {
        let text = "# head\nkind: A\n---\nkind: B\r\n--- \n# only a comment\n---\nkind: C\nx: |\n  ---not a marker\n";
        let segments = document_segments(text);
        assert_eq!(
            segments.iter().map(|s| s.line).collect::<Vec<_>>(),
            vec![1, 3, 5, 7]
        );
        assert_eq!(segments[0].start, 0);
        assert_eq!(segments.last().unwrap().end, text.len());
        assert!(segments.windows(2).all(|w| w[0].end == w[1].start));
        let whole = parse_piece(text).unwrap();
        let mut pieces = Vec::new();
        for segment in &segments {
            let text = &text[segment.start..segment.end];
            pieces.extend(parse_documents_at(text, segment.line, |n| n).unwrap());
        }
        assert_eq!(pieces, whole);
        let directives = "%YAML 1.2\n---\na: 1\n---\nb: 2\n";
        assert_eq!(document_segments(directives).len(), 1);
    }

    #[test]
    fn a_parse_at_a_later_line_locates_errors_in_the_larger_text() {
        let err = parse_documents_at("---\na: 1\n b: 2\n", 10, |n| n).unwrap_err();
        assert_eq!(err.pos.line, 12, "{err:?}");
    }

    #[test]
    fn moved_nodes_keep_their_columns() {
        let mut doc = parse_piece("\n\nkind: A\nspec:\n  count: 1\n")
            .unwrap()
            .remove(0);
        move_lines(&mut doc, -2);
        let count = doc.get("spec").unwrap().entry("count").unwrap();
        assert_eq!(count.key.pos, Pos { line: 3, column: 3 });
        move_lines(&mut doc, 5);
        assert_eq!(
            doc.get("spec")
                .unwrap()
                .entry("count")
                .unwrap()
                .key
                .pos
                .line,
            8
        );
    }

    #[test]
    fn texts_with_directives_are_not_cut() {
        let text = "%YAML 1.2\n---\na: 1\n---\nb: 2\n%TAG ! tag:x,2000:\n---\nc: 3\n";
        assert_eq!(split_documents(text, 4), vec![(0, text.len())]);
        assert_eq!(split_documents("a: 1\n---\nb: 2\n", 4).len(), 2);
    }

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
    fn nodes_stay_small() {
        assert_eq!(std::mem::size_of::<Node>(), 32);
        assert_eq!(std::mem::size_of::<Entry>(), 64);
    }

    #[test]
    fn short_and_long_strings_read_the_same() {
        let (short, long) = ("é, twenty-two bytes!!", "é, twenty-three bytes!!");
        assert_eq!((short.len(), long.len()), (22, 24));
        let docs = parse_documents(&format!("short: {short}\nlong: {long}\n")).unwrap();
        let node = docs[0].get("short").unwrap();
        assert!(matches!(node.value, Value::String(Text::Inline { .. })));
        assert_eq!(node.as_str(), Some(short));
        assert_eq!(node.to_json(), serde_json::json!(short));
        let node = docs[0].get("long").unwrap();
        assert!(matches!(node.value, Value::String(Text::Heap(_))));
        assert_eq!(node.as_str(), Some(long));
        assert_eq!(Text::new(long), Text::from_string(long.to_string()));
    }

    #[test]
    fn integers_keep_their_value_at_any_width() {
        let docs = parse_documents("a: -5\nb: 18446744073709551615\n").unwrap();
        assert_eq!(docs[0].get("a").unwrap().value, Value::Int(-5));
        let b = docs[0].get("b").unwrap();
        assert_eq!(b.value, Value::BigInt(Box::new(i128::from(u64::MAX))));
        assert_eq!(b.to_json(), serde_json::json!(u64::MAX));
        assert_eq!(b.key_text(), "18446744073709551615");
        let wide = Node {
            pos: Pos::START,
            value: Value::integer(-(1 << 70)),
        };
        assert_eq!(wide.to_json(), serde_json::json!("-1180591620717411303424"));
    }

    #[test]
    fn huge_numbers_do_not_panic() {
        let docs = parse_documents("a: 99999999999999999999999999999999999999999999\n").unwrap();
        assert!(docs[0].get("a").is_some());
        let err = parse_documents("b: 1e999\n").unwrap_err();
        assert_eq!(err.pos, Pos { line: 1, column: 4 });
    }
}
