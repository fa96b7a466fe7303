//! What a kind's checks beyond the schema report to, and the small helpers several kinds'
//! checks and canonical spellings share.
//!
//! The model knows no file or position: the manifest layer implements [`CheckContext`] and
//! turns each finding into a `file:line:column` diagnostic at the node the path names.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::model::Connection;

/// Where a kind's checks report, and what they may ask of the document being loaded.
pub trait CheckContext {
    /// A problem at `spec.<path…>` (positioned at the deepest node of `path` that exists).
    fn error(&mut self, path: &[&str], message: String, hint: Option<String>);
    /// A problem at a top-level field of the document (`name`, `connection`); positioned at
    /// that field, or at `kind` when the document does not write it.
    fn document_error(&mut self, field: &str, message: String, hint: Option<String>);
    /// The document's `name`.
    fn name(&self) -> &str;
    /// `relative` resolved against the directory of the document's file.
    fn local_path(&self, relative: &str) -> PathBuf;
    /// Whether sextant may write a secret to `path` (inside the manifest folders or a
    /// `--token-dir`).
    fn may_write(&self, path: &Path) -> bool;
    /// The connection the document resolved to, when it is declared and valid.
    fn connection(&self) -> Option<&Connection>;
}

/// Whether a text holds a `${…}` reference (resolved at plan time, so not checked here).
pub fn has_reference(text: &str) -> bool {
    text.contains("${")
}

/// `access` names its roles; `access_exclusive: true` needs `access` (SaltJob, SaltTarget).
pub fn check_access<'r>(
    roles: Option<impl Iterator<Item = &'r String>>,
    exclusive: Option<bool>,
    context: &mut dyn CheckContext,
) {
    match roles {
        Some(roles) => {
            for role in roles {
                if role.trim().is_empty() {
                    context.error(&["access"], "a role name is empty".to_string(), None);
                }
            }
        }
        None if exclusive == Some(true) => context.error(
            &["access_exclusive"],
            "`access_exclusive: true` needs `access`".to_string(),
            Some(
                "name the roles that keep access in `access`; `access: {}` takes it from every role"
                    .to_string(),
            ),
        ),
        None => {}
    }
}

/// Each role's permissions of `access` as a set: sorted, once each (SaltJob, SaltTarget).
pub fn canonical_access(spec: &mut Map<String, Value>) {
    if let Some(Value::Object(access)) = spec.get_mut("access") {
        for permissions in access.values_mut() {
            if let Value::Array(list) = permissions {
                list.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
                list.dedup();
            }
        }
    }
}
