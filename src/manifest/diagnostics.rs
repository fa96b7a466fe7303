//! Validation findings: every problem of a run, each with its file, line, column, field path,
//! message and an optional hint, rendered uv-style (`error: <file>:<line>:<col>: ...`).

use std::fmt;
use std::path::{Path, PathBuf};

use super::node::Pos;
use crate::model::shown;

/// One problem found in the manifests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    /// Dotted field path inside the document (`spec.num_hosts`), empty for whole-file errors.
    pub path: String,
    pub message: String,
    pub hint: Option<String>,
    /// A warning: reported, but the manifests still load.
    pub warning: bool,
}

impl Diagnostic {
    pub fn new(file: &Path, pos: Pos, path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            file: file.to_path_buf(),
            line: pos.line as usize,
            column: pos.column as usize,
            path: path.into(),
            message: message.into(),
            hint: None,
            warning: false,
        }
    }

    /// The same finding as a warning.
    pub fn as_warning(mut self) -> Self {
        self.warning = true;
        self
    }

    pub fn with_hint(mut self, hint: Option<String>) -> Self {
        self.hint = hint;
        self
    }

    /// The position as `file:line:column`.
    pub fn location(&self) -> String {
        format!("{}:{}:{}", self.file.display(), self.line, self.column)
    }

    /// `file:line:column: `path`: message` with every value made visible (a name from a
    /// manifest may hold control or bidi characters).
    pub fn text(&self) -> String {
        let mut out = format!("{}: ", shown::visible(&self.location()));
        if !self.path.is_empty() {
            out.push_str(&format!("`{}`: ", shown::visible(&self.path)));
        }
        out.push_str(&shown::visible(&self.message));
        out
    }

    fn render_into(&self, out: &mut String, color: bool) {
        let label = if self.warning {
            shown::paint("warning:", shown::WARNING, color)
        } else {
            shown::paint("error:", shown::ERROR, color)
        };
        out.push_str(&format!("{label} {}\n", self.text()));
        if let Some(hint) = &self.hint {
            out.push_str(&format!(
                "  {} {}\n",
                shown::paint("hint:", shown::HINT, color),
                shown::visible(hint)
            ));
        }
    }
}

/// All problems of a load, sorted by file and position.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diagnostics {
    pub errors: Vec<Diagnostic>,
    /// Findings that alone would not stop the load, shown after the errors.
    pub warnings: Vec<Diagnostic>,
}

impl Diagnostics {
    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.errors.push(diagnostic);
    }

    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    pub fn len(&self) -> usize {
        self.errors.len()
    }

    /// Sorts by file, line and column and drops exact duplicates.
    pub fn sort(&mut self) {
        self.errors.sort_by(|a, b| {
            (&a.file, a.line, a.column, &a.path, &a.message)
                .cmp(&(&b.file, b.line, b.column, &b.path, &b.message))
        });
        self.errors.dedup();
        self.warnings.sort_by(|a, b| {
            (&a.file, a.line, a.column, &a.path, &a.message)
                .cmp(&(&b.file, b.line, b.column, &b.path, &b.message))
        });
        self.warnings.dedup();
    }

    /// One `error: <file>:<line>:<col>: ...` line per problem, each followed by its hint.
    pub fn render(&self, color: bool) -> String {
        let mut out = String::new();
        for diagnostic in self.errors.iter().chain(&self.warnings) {
            diagnostic.render_into(&mut out, color);
        }
        out
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.render(false).trim_end())
    }
}

impl std::error::Error for Diagnostics {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_location_path_message_and_hint() {
        let mut diagnostics = Diagnostics::default();
        diagnostics.push(
            Diagnostic::new(
                Path::new("b.yaml"),
                Pos { line: 3, column: 5 },
                "spec.nmae",
                "unknown field `nmae`",
            )
            .with_hint(Some("did you mean `name`?".into())),
        );
        diagnostics.push(Diagnostic::new(
            Path::new("a.yaml"),
            Pos::START,
            "",
            "invalid YAML",
        ));
        diagnostics.sort();
        assert_eq!(
            diagnostics.render(false),
            "error: a.yaml:1:1: invalid YAML\n\
             error: b.yaml:3:5: `spec.nmae`: unknown field `nmae`\n  hint: did you mean `name`?\n"
        );
        assert!(
            diagnostics
                .render(true)
                .contains("\x1b[1m\x1b[31merror:\x1b[0m")
        );
    }
}
