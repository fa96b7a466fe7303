//! `${var.NAME}` substitution: the values an environment sets (overridden by `--var` and
//! `--var-file`), and the walk that replaces every reference in a parsed document.
//!
//! A string that is exactly `${var.NAME}` takes the value itself, with its type; inside a
//! longer string a scalar value is written as text. `$${` is an escape for a literal `${` and
//! is left as it is (the later layers read it, so `${Kind/name.attr}` references and escapes
//! mean the same in every manifest). Errors are reported where the reference was written,
//! down to its column when the source text shows it.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use super::diagnostics::Diagnostic;
use super::did_you_mean;
use super::node::{Entry, Node, Pos, Text, Value};

/// The text that opens a variable reference.
const OPEN: &str = "${var.";

/// Where a value was set, for hints.
#[derive(Clone, Debug, PartialEq)]
pub enum Origin {
    /// In a file: an environment's `values` or a `--var-file`.
    File { file: Arc<Path>, pos: Pos },
    /// On the command line, `--var NAME=VALUE`.
    Flag,
}

impl Origin {
    fn describe(&self, name: &str) -> String {
        match self {
            Origin::File { file, pos } => {
                format!("{}:{}:{}", file.display(), pos.line, pos.column)
            }
            Origin::Flag => format!("`--var {name}=…`"),
        }
    }
}

/// One variable: its value (a YAML node) and where it was set.
#[derive(Clone, Debug)]
pub struct Variable {
    pub value: Node,
    pub origin: Origin,
}

/// The variables of one run.
#[derive(Clone, Debug, Default)]
pub struct Variables {
    values: BTreeMap<String, Variable>,
    /// The environment that set them; `None` when no environment is loaded.
    environment: Option<String>,
}

/// Whether `name` may be a variable name: a letter or `_`, then letters, digits, `_`, `-`.
pub fn is_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

impl Variables {
    /// No environment: every reference is an error.
    pub fn none() -> Self {
        Self::default()
    }

    /// The variables of environment `name` (values are added with [`Variables::set`]).
    pub fn of_environment(name: &str) -> Self {
        Self {
            values: BTreeMap::new(),
            environment: Some(name.to_string()),
        }
    }

    /// Sets (or overrides) one value.
    pub fn set(&mut self, name: &str, variable: Variable) {
        self.values.insert(name.to_string(), variable);
    }

    pub fn get(&self, name: &str) -> Option<&Variable> {
        self.values.get(name)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.values.keys().map(String::as_str)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Variable)> {
        self.values.iter().map(|(name, v)| (name.as_str(), v))
    }

    /// The hint for an undefined variable.
    fn undefined_hint(&self, name: &str) -> String {
        if let Some(close) = did_you_mean::closest(name, self.names()) {
            return format!("did you mean `{close}`?");
        }
        match &self.environment {
            None => "no environment is loaded: variables are set by the `values` of a \
                     `kind: Environment` document; run sextant on the environment's directory"
                .to_string(),
            Some(env) if self.values.is_empty() => {
                format!("environment `{env}` sets no values; add it under `spec.values`")
            }
            Some(env) => {
                let list: Vec<String> = self.names().map(|n| format!("`{n}`")).collect();
                format!("environment `{env}` sets {}", list.join(", "))
            }
        }
    }
}

/// A source text and its line starts (computed on the first error only), for precise
/// columns. Shared by the threads that parse one file.
pub struct SourceText<'a> {
    pub file: &'a Arc<Path>,
    text: &'a str,
    lines: OnceLock<Vec<usize>>,
}

impl<'a> SourceText<'a> {
    pub fn new(file: &'a Arc<Path>, text: &'a str) -> Self {
        Self {
            file,
            text,
            lines: OnceLock::new(),
        }
    }

    /// Byte offsets where lines start, counting breaks as YAML does (`\n`, `\r\n`, `\r`).
    fn lines(&self) -> &[usize] {
        self.lines.get_or_init(|| {
            std::iter::once(0)
                .chain(super::node::line_break_ends(self.text.as_bytes()).map(|end| end + 1))
                .collect()
        })
    }

    fn offset_of(&self, pos: Pos) -> Option<usize> {
        let start = *self.lines().get((pos.line as usize).checked_sub(1)?)?;
        let line = self.text.get(start..)?;
        let column = (pos.column as usize).checked_sub(1)?;
        match line.char_indices().nth(column) {
            Some((at, _)) => Some(start + at),
            None => Some(self.text.len()),
        }
    }

    fn pos_of(&self, offset: usize) -> Pos {
        let lines = self.lines();
        let index = lines.partition_point(|&start| start <= offset).max(1) - 1;
        let start = lines[index];
        let column = self
            .text
            .get(start..offset)
            .map_or(0, |s| s.chars().count());
        Pos::new(index + 1, column + 1)
    }

    /// Where the `nth` (0-based) `needle` at or after the node at `pos` starts; `pos` when the
    /// text does not show it (escapes in a quoted scalar).
    fn locate(&self, pos: Pos, needle: &str, nth: usize) -> Pos {
        let Some(from) = self.offset_of(pos) else {
            return pos;
        };
        let rest = &self.text[from..];
        match rest.match_indices(needle).nth(nth) {
            Some((at, _)) => self.pos_of(from + at),
            None => pos,
        }
    }
}

/// What substitution did to one document, for the checks that follow.
#[derive(Debug, Default)]
pub struct Notes {
    /// Nodes that are a whole `${var.NAME}`, replaced by the value: (position, name).
    pub replaced: Vec<(Pos, String)>,
    /// Nodes whose references could not be substituted: later errors there are noise.
    pub failed: Vec<Pos>,
}

/// Replaces the references in one document.
pub struct Substitution<'a> {
    pub vars: &'a Variables,
    pub source: &'a SourceText<'a>,
}

/// A piece of a field path, recorded while walking so paths are built only for errors.
#[derive(Clone)]
enum Step {
    Key(usize),
    Index(usize),
}

struct Walk<'a, 'e> {
    subst: &'a Substitution<'a>,
    errors: &'e mut Vec<Diagnostic>,
    notes: Notes,
    steps: Vec<Step>,
    /// Errors waiting for their field path: (steps, position, message, hint).
    pending: Vec<(Vec<Step>, Pos, String, Option<String>)>,
}

/// A string split into literal text and variable references.
enum Piece<'t> {
    Text(&'t str),
    Var { name: &'t str, raw: &'t str },
    Unclosed(&'t str),
}

fn pieces(text: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let mut literal = 0;
    let mut at = 0;
    while let Some(found) = text[at..].find('$') {
        let start = at + found;
        let rest = &text[start..];
        if rest.starts_with("$${") {
            at = start + 3;
        } else if rest.starts_with(OPEN) {
            if literal < start {
                out.push(Piece::Text(&text[literal..start]));
            }
            let name_start = start + OPEN.len();
            match text[name_start..].find('}') {
                Some(end) => {
                    let close = name_start + end + 1;
                    out.push(Piece::Var {
                        name: &text[name_start..name_start + end],
                        raw: &text[start..close],
                    });
                    at = close;
                    literal = close;
                }
                None => {
                    out.push(Piece::Unclosed(&text[start..]));
                    return out;
                }
            }
        } else {
            at = start + 1;
        }
    }
    if literal < text.len() {
        out.push(Piece::Text(&text[literal..]));
    }
    out
}

/// The position of the first string under `node` that uses a variable (values are inserted
/// as they are, so a reference inside one would never be substituted).
pub fn first_reference(node: &Node) -> Option<Pos> {
    match &node.value {
        Value::String(text) if text.contains(OPEN) => pieces(text)
            .iter()
            .any(|p| matches!(p, Piece::Var { .. } | Piece::Unclosed(_)))
            .then_some(node.pos),
        Value::Seq(items) => items.iter().find_map(first_reference),
        Value::Map(entries) => entries
            .iter()
            .find_map(|e| first_reference(&e.key).or_else(|| first_reference(&e.value))),
        _ => None,
    }
}

/// The text a scalar value reads as inside a longer string.
fn as_text(value: &Value) -> Option<String> {
    Some(match value {
        Value::String(text) => text.to_string(),
        Value::Int(i) => i.to_string(),
        Value::BigInt(i) => i.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null | Value::Seq(_) | Value::Map(_) => return None,
    })
}

/// A copy of `value` with every node placed at `pos` (where the reference was written).
fn placed(value: &Node, pos: Pos) -> Value {
    match &value.value {
        Value::Seq(items) => Value::Seq(
            items
                .iter()
                .map(|item| Node {
                    pos,
                    value: placed(item, pos),
                })
                .collect(),
        ),
        Value::Map(entries) => Value::Map(
            entries
                .iter()
                .map(|entry| Entry {
                    key: Node {
                        pos,
                        value: placed(&entry.key, pos),
                    },
                    value: Node {
                        pos,
                        value: placed(&entry.value, pos),
                    },
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

impl Substitution<'_> {
    /// Substitutes every reference in `node`, reporting problems into `errors`.
    pub fn apply(&self, node: &mut Node, errors: &mut Vec<Diagnostic>) -> Notes {
        let mut walk = Walk {
            subst: self,
            errors,
            notes: Notes::default(),
            steps: Vec::new(),
            pending: Vec::new(),
        };
        walk.node(node, false);
        let Walk {
            errors,
            notes,
            pending,
            ..
        } = walk;
        for (steps, pos, message, hint) in pending {
            let path = field_path(node, &steps);
            errors.push(Diagnostic::new(self.source.file, pos, path, message).with_hint(hint));
        }
        notes
    }
}

/// The dotted field path of `steps` from `root` (`spec.tgt["*"]` style keys as written).
fn field_path(root: &Node, steps: &[Step]) -> String {
    let mut path = String::new();
    let mut node = root;
    for step in steps {
        match (step, &node.value) {
            (Step::Key(index), Value::Map(entries)) => {
                let Some(entry) = entries.get(*index) else {
                    break;
                };
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(&entry.key.key_text());
                node = &entry.value;
            }
            (Step::Index(index), Value::Seq(items)) => {
                let Some(item) = items.get(*index) else {
                    break;
                };
                path.push_str(&format!("[{index}]"));
                node = item;
            }
            _ => break,
        }
    }
    path
}

impl Walk<'_, '_> {
    fn error(&mut self, pos: Pos, message: String, hint: Option<String>) {
        self.pending.push((self.steps.clone(), pos, message, hint));
    }

    fn node(&mut self, node: &mut Node, is_key: bool) {
        match &mut node.value {
            Value::String(text) if text.contains(OPEN) => {
                let text = text.to_string();
                self.string(node, &text, is_key);
            }
            Value::Seq(items) => {
                for (index, item) in items.iter_mut().enumerate() {
                    self.steps.push(Step::Index(index));
                    self.node(item, false);
                    self.steps.pop();
                }
            }
            Value::Map(entries) => {
                for (index, entry) in entries.iter_mut().enumerate() {
                    self.steps.push(Step::Key(index));
                    self.node(&mut entry.key, true);
                    self.node(&mut entry.value, false);
                    self.steps.pop();
                }
            }
            _ => {}
        }
    }

    fn string(&mut self, node: &mut Node, text: &str, is_key: bool) {
        let pieces = pieces(text);
        let vars = self.subst.vars;
        let source = self.subst.source;
        // A whole `${var.NAME}` takes the value itself (a key stays text).
        if let [Piece::Var { name, raw }] = pieces.as_slice()
            && !is_key
        {
            match vars.get(name) {
                Some(variable) => {
                    node.value = placed(&variable.value, node.pos);
                    self.notes.replaced.push((node.pos, name.to_string()));
                }
                None => {
                    self.notes.failed.push(node.pos);
                    self.undefined(node.pos, name, raw, 0);
                }
            }
            return;
        }
        let mut out = String::with_capacity(text.len());
        let mut seen: Vec<&str> = Vec::new();
        let mut failed = false;
        for piece in &pieces {
            match piece {
                Piece::Text(literal) => out.push_str(literal),
                Piece::Unclosed(rest) => {
                    let at = source.locate(node.pos, rest, 0);
                    self.error(
                        at,
                        format!("variable reference `{rest}` has no closing `}}`"),
                        Some("write `${var.NAME}`".to_string()),
                    );
                    failed = true;
                }
                Piece::Var { name, raw } => {
                    let nth = seen.iter().filter(|r| *r == raw).count();
                    seen.push(raw);
                    match vars.get(name) {
                        None => {
                            self.undefined(node.pos, name, raw, nth);
                            failed = true;
                        }
                        Some(variable) => match as_text(&variable.value.value) {
                            Some(text) => out.push_str(&text),
                            None => {
                                let at = source.locate(node.pos, raw, nth);
                                let what = variable.value.value.describe();
                                self.error(
                                    at,
                                    format!(
                                        "`{raw}` is {what} and cannot be written inside a string"
                                    ),
                                    Some(format!(
                                        "only a value that is exactly `{raw}` takes {what}; it is set at {}",
                                        variable.origin.describe(name)
                                    )),
                                );
                                failed = true;
                            }
                        },
                    }
                }
            }
        }
        if failed {
            self.notes.failed.push(node.pos);
        } else {
            node.value = Value::String(Text::new(&out));
        }
    }

    fn undefined(&mut self, pos: Pos, name: &str, raw: &str, nth: usize) {
        let at = self.subst.source.locate(pos, raw, nth);
        if !is_name(name) {
            self.error(
                at,
                format!("`{raw}` does not name a variable"),
                Some("variable names are letters, digits, `_` and `-`, e.g. `${var.region}`; write `$${` for a literal `${`".to_string()),
            );
            return;
        }
        let hint = self.subst.vars.undefined_hint(name);
        self.error(at, format!("undefined variable `{name}`"), Some(hint));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::node::parse_documents;

    #[test]
    fn lines_start_after_each_break_as_yaml_counts_them() {
        let file: Arc<Path> = Arc::from(Path::new("m.yaml"));
        let source = SourceText::new(&file, "a\r\nb\rc\n\nd");
        assert_eq!(source.lines(), [0, 3, 5, 7, 8]);
    }

    fn vars(yaml: &str) -> Variables {
        let mut vars = Variables::of_environment("test");
        let doc = &parse_documents(yaml).unwrap()[0];
        for entry in doc.as_map().unwrap() {
            vars.set(
                entry.key.as_str().unwrap(),
                Variable {
                    value: entry.value.clone(),
                    origin: Origin::File {
                        file: Arc::from(Path::new("env.yaml")),
                        pos: entry.value.pos,
                    },
                },
            );
        }
        vars
    }

    /// Substitutes in `yaml`; returns the JSON and the errors as `line:col path: message`.
    fn run(vars: &Variables, yaml: &str) -> (serde_json::Value, Vec<String>) {
        let file: Arc<Path> = Arc::from(Path::new("a.yaml"));
        let source = SourceText::new(&file, yaml);
        let mut node = parse_documents(yaml).unwrap().remove(0);
        let mut errors = Vec::new();
        Substitution {
            vars,
            source: &source,
        }
        .apply(&mut node, &mut errors);
        let errors = errors
            .iter()
            .map(|e| format!("{}:{} {}: {}", e.line, e.column, e.path, e.message))
            .collect();
        (node.to_json(), errors)
    }

    #[test]
    fn a_whole_reference_takes_the_value_and_its_type() {
        let vars =
            vars("hosts: 4\nflag: true\nnet: {cidr: 10.0.0.0/16}\nzones: [a, b]\nratio: 0.5\n");
        let (json, errors) = run(
            &vars,
            "num: ${var.hosts}\nb: ${var.flag}\nm: ${var.net}\nl: ${var.zones}\nq: \"${var.hosts}\"\nf: ${var.ratio}\n",
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            json,
            serde_json::json!({"num": 4, "b": true, "m": {"cidr": "10.0.0.0/16"}, "l": ["a", "b"], "q": 4, "f": 0.5})
        );
    }

    #[test]
    fn references_inside_text_interpolate_scalars() {
        let vars = vars("prefix: prod\nhosts: 4\nflag: false\n");
        let (json, errors) = run(
            &vars,
            "name: ${var.prefix}-sddc\ndesc: ${var.hosts} hosts, on=${var.flag}, ${var.prefix}/${var.prefix}\n${var.prefix}-key: x\n",
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            json,
            serde_json::json!({"name": "prod-sddc", "desc": "4 hosts, on=false, prod/prod", "prod-key": "x"})
        );
    }

    #[test]
    fn escapes_and_references_to_resources_are_left_alone() {
        let vars = vars("prefix: prod\n");
        let (json, errors) = run(
            &vars,
            "a: $${var.prefix}\nb: echo $${HOME} ${var.prefix}\nc: ${Sddc/x.vc_url}\nd: $$${var.prefix}\ne: cost $5\n",
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            json,
            serde_json::json!({
                "a": "$${var.prefix}",
                "b": "echo $${HOME} prod",
                "c": "${Sddc/x.vc_url}",
                "d": "$$${var.prefix}",
                "e": "cost $5",
            })
        );
    }

    #[test]
    fn undefined_variables_are_located_at_the_reference_with_a_suggestion() {
        let vars = vars("prefix: prod\nregion: us-west-2\n");
        let file: Arc<Path> = Arc::from(Path::new("a.yaml"));
        let yaml =
            "spec:\n  desc: \"made by ${var.prefx}\"\n  tags:\n    - x\n    - ${var.regoin}\n";
        let source = SourceText::new(&file, yaml);
        let mut node = parse_documents(yaml).unwrap().remove(0);
        let mut errors = Vec::new();
        let notes = Substitution {
            vars: &vars,
            source: &source,
        }
        .apply(&mut node, &mut errors);
        assert_eq!(errors.len(), 2, "{errors:#?}");
        assert_eq!((errors[0].line, errors[0].column), (2, 18));
        assert_eq!(errors[0].path, "spec.desc");
        assert_eq!(errors[0].message, "undefined variable `prefx`");
        assert_eq!(errors[0].hint.as_deref(), Some("did you mean `prefix`?"));
        assert_eq!((errors[1].line, errors[1].column), (5, 7));
        assert_eq!(errors[1].path, "spec.tags[1]");
        assert_eq!(notes.failed.len(), 2);
    }

    #[test]
    fn structured_values_cannot_be_interpolated() {
        let vars = vars("net: {cidr: x}\nnothing: null\n");
        let (_, errors) = run(&vars, "a: cidr ${var.net}\nb: x${var.nothing}\n");
        assert_eq!(
            errors,
            vec![
                "1:9 a: `${var.net}` is a mapping and cannot be written inside a string",
                "2:5 b: `${var.nothing}` is null and cannot be written inside a string",
            ]
        );
    }

    #[test]
    fn without_an_environment_every_reference_is_an_error() {
        let (_, errors) = run(&Variables::none(), "a: ${var.x}\nb: ${var.}\nc: ${var.y\n");
        assert_eq!(
            errors,
            vec![
                "1:4 a: undefined variable `x`",
                "2:4 b: `${var.}` does not name a variable",
                "3:4 c: variable reference `${var.y` has no closing `}`",
            ]
        );
    }

    #[test]
    fn names() {
        assert!(is_name("prefix") && is_name("_a-1") && is_name("RAAS_URL"));
        assert!(!is_name("") && !is_name("1a") && !is_name("a.b") && !is_name("a b"));
    }
}
