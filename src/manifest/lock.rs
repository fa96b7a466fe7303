//! The `kind: Lock` document: where `apply` takes its locks (see `src/apply/lock/`). Not a
//! resource — nothing is created — and at most one per run. Its database URL is a secret
//! unless it carries no password; it is resolved only when an apply opens the lock.

use std::sync::Arc;

use super::connection::secret_source;
use super::diagnostics::Diagnostic;
use super::files::Confinement;
use super::node::Node;
use super::schema::LOCK_DEF;
use super::spec::{LockSpec, LockUrl};
use super::structure::Checker;
use super::validate::FileOrigin;
use crate::model::{LockSettings, SecretSource, SecretValue, SourceLocation};

/// The `kind` of a Lock document.
pub const LOCK_KIND: &str = "Lock";

/// A Lock document whose structure was checked.
pub struct LockDocument {
    origin: Arc<FileOrigin>,
    node: Node,
    valid: bool,
}

impl LockDocument {
    fn location(&self) -> SourceLocation {
        SourceLocation {
            file: Arc::clone(&self.origin.file),
            line: self.node.pos.line as usize,
            column: self.node.pos.column as usize,
        }
    }

    fn error(&self, path: &str, message: impl Into<String>) -> Diagnostic {
        let node = self.node.deepest(path.split('.').filter(|k| !k.is_empty()));
        Diagnostic::new(&self.origin.file, node.pos, path, message)
    }
}

/// Checks a Lock document's fields against the schema (unknown fields, types), located.
pub fn classify(
    origin: &Arc<FileOrigin>,
    node: Node,
    checker: &Checker<'_>,
    errors: &mut Vec<Diagnostic>,
) -> LockDocument {
    let before = errors.len();
    if let Some(def) = checker.definition(LOCK_DEF) {
        checker.check(def, &node, "", errors);
    }
    LockDocument {
        origin: Arc::clone(origin),
        node,
        valid: errors.len() == before,
    }
}

/// The run's lock settings from its Lock documents: none, or exactly one.
pub fn settings(
    documents: Vec<LockDocument>,
    confinement: &Confinement,
    errors: &mut Vec<Diagnostic>,
) -> Option<LockSettings> {
    let mut documents = documents.into_iter();
    let first = documents.next()?;
    for other in documents {
        errors.push(
            other
                .error("kind", "a run has at most one `Lock` document")
                .with_hint(Some(format!(
                    "the first is at {}; keep one",
                    first.location()
                ))),
        );
    }
    if !first.valid {
        return None;
    }
    let name = first
        .node
        .get("name")
        .and_then(Node::as_str)
        .unwrap_or_default()
        .to_string();
    let spec = first.node.get("spec").map(Node::to_json)?;
    let spec: LockSpec = match serde_json::from_value(spec) {
        Ok(spec) => spec,
        Err(err) => {
            errors.push(first.error("spec", format!("invalid lock settings: {err}")));
            return None;
        }
    };
    let postgres_url = match &spec.postgres.url {
        LockUrl::Secret(secret) => {
            match secret_source(&first.origin.base_dir, confinement, secret) {
                Ok(source) => source,
                Err((message, hint)) => {
                    errors.push(first.error("spec.postgres.url", message).with_hint(hint));
                    return None;
                }
            }
        }
        LockUrl::Text(text) => match inline_url(text) {
            Ok(()) => SecretSource::Fixed(SecretValue::new(text.trim())),
            Err((message, hint)) => {
                errors.push(
                    first
                        .error("spec.postgres.url", message)
                        .with_hint(Some(hint.to_string())),
                );
                return None;
            }
        },
    };
    let timeout = match spec.timeout.as_deref().map(str::trim) {
        None => None,
        Some(text) => match humantime::parse_duration(text) {
            Ok(duration) => Some(duration),
            Err(_) => {
                errors.push(
                    first
                        .error(
                            "spec.timeout",
                            format!("`{}` is not a duration", text.escape_debug()),
                        )
                        .with_hint(Some(
                            "write a duration like `10m`, or `0s` to fail at once".to_string(),
                        )),
                );
                return None;
            }
        },
    };
    Some(LockSettings {
        name,
        postgres_url,
        timeout,
        location: first.location(),
    })
}

/// An inline URL must be a `postgres://` URL without a password (messages never echo it).
fn inline_url(text: &str) -> Result<(), (&'static str, &'static str)> {
    let Ok(url) = url::Url::parse(text.trim()) else {
        return Err((
            "`url` is not a URL",
            "write `postgres://user@host:5432/database`, or `{env: NAME}` for one with a password",
        ));
    };
    if !matches!(url.scheme(), "postgres" | "postgresql") {
        return Err((
            "`url` is not a `postgres://` URL",
            "write `postgres://user@host:5432/database`",
        ));
    }
    if url.password().is_some() || url.query_pairs().any(|(key, _)| key == "password") {
        return Err((
            "the URL carries a password, which a manifest never holds inline",
            "write `url: {env: NAME}` (or `{file: PATH}`) and put the URL there",
        ));
    }
    Ok(())
}
