//! A Cloud Director API token: its spec (the local secret file) and planning rules.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::ResourceKind;
use super::checks::CheckContext;
use crate::model::Resource;
use crate::model::live::LiveObject;
use crate::model::rules::{KindRules, LocalChange};
use crate::model::token_file::{self, TokenState};
use crate::model::{SystemType, shown};

/// The `VcdApiToken` kind: what the core knows of it ([`ResourceKind`]) and its planning rules
/// ([`KindRules`]).
pub struct VcdApiToken;

impl ResourceKind for VcdApiToken {
    const NAME: &'static str = "VcdApiToken";
    const SYSTEM: SystemType = SystemType::Vcd;
    const ATTRIBUTES: &'static [&'static str] = &["id"];
    const DESCRIPTION: &'static str =
        "A Cloud Director API token (vcd connection with username and password).";
    type Spec = VcdApiTokenSpec;

    fn check(spec: &VcdApiTokenSpec, context: &mut dyn CheckContext) {
        check_token_file(&spec.file, context);
        if let Some(text) = &spec.rotate_after
            && token_file::parse_rotate_after(text).is_none()
        {
            context.error(
                &["rotate_after"],
                format!(
                    "`{}` is not a duration longer than zero",
                    shown::visible(text)
                ),
                Some("write a duration like `90d` or `30d 12h`".into()),
            );
        }
        check_token_name(context);
        if let Some(connection) = context.connection()
            && (connection.config.username.is_none() || connection.config.password.is_none())
        {
            let message = format!(
                "managing API tokens needs a user session, but connection `{}` has no `username` and `password`",
                connection.name
            );
            context.document_error(
                "connection",
                message,
                Some("add `username` and `password` to the vcd connection: a session opened from an API token may not list, create or revoke API tokens".into()),
            );
        }
    }

    /// The secret is never readable again: `file` is a placeholder, and a comment says so.
    fn exported(name: &str, spec: &mut Map<String, Value>) -> &'static str {
        spec.insert("file".to_string(), Value::String(token_placeholder(name)));
        "# The token's secret cannot be exported: Cloud Director hands it out once, when the\n\
         # token is created. `file` is a placeholder; point it at where the secret is kept.\n\
         # While the file is missing, plan warns; `--recreate-lost-secrets` would revoke\n\
         # the token and create a new one.\n"
    }
}

/// Where an exported token points its `file`: a placeholder under `.secrets/`.
pub fn token_placeholder(name: &str) -> String {
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let safe = safe.trim_start_matches('.');
    let safe = if safe.is_empty() { "token" } else { safe };
    format!(".secrets/{safe}.json")
}

/// `spec.file`: where sextant writes a secret, so inside the manifest tree (or a
/// `--token-dir`), and a file, not a directory (the secret would be lost).
fn check_token_file(file: &str, context: &mut dyn CheckContext) {
    let path = context.local_path(file);
    let shown = shown::visible(file);
    if !context.may_write(&path) {
        context.error(
            &["file"],
            format!("`{shown}` is outside the manifest folders"),
            Some("token files are written inside the manifest folders; pass `--token-dir DIR` to allow another directory".into()),
        );
    } else if path.is_dir() {
        context.error(
            &["file"],
            format!("`{shown}` is a directory; the token's secret is written to a file"),
            Some("name a file, e.g. `.secrets/ci-token.json`".into()),
        );
    }
}

/// A name sextant would take for a rotated generation of another token
/// (`<name>.rotated-<UTC time>`) would make the two one token.
fn check_token_name(context: &mut dyn CheckContext) {
    let name = context.name().to_string();
    let base = token_file::base_token_name(&name);
    if base != name {
        let message = format!(
            "`{}` is the name sextant gives a rotated generation of API token `{}`",
            shown::visible(&name),
            shown::visible(base)
        );
        context.document_error(
            "name",
            message,
            Some("choose a name that does not end in `.rotated-<time>`".into()),
        );
    }
}

/// A Cloud Director API token of the connection's user.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VcdApiTokenSpec {
    /// Where the one-time secret is written on creation, as JSON `{token_type,
    /// refresh_token, id, updated_on}` with mode 0600 (relative to the manifest's directory).
    /// Local only, never compared with the server.
    #[schemars(length(min = 1))]
    pub file: String,
    /// Rotate the token once its file's `updated_on` is older than this (humantime, e.g.
    /// `90d`): apply creates a new token, writes its secret to `file`, and only then revokes
    /// the old one. Local only, never compared with the server.
    pub rotate_after: Option<String>,
}

impl KindRules for VcdApiToken {
    /// A token's name is fixed at registration (vcd.md §8 has no rename).
    fn renames_in_place(&self) -> bool {
        false
    }

    fn local_fields(&self) -> &'static [&'static str] {
        &["file", "rotate_after"]
    }

    fn field_note(&self, field: &str) -> Option<&'static str> {
        match field {
            "file" => Some("the one-time secret is written to this file (mode 0600)"),
            "rotate_after" => Some("a new token replaces this one once the file is this old"),
            _ => None,
        }
    }

    fn local_change(&self, resource: &Resource, live: &LiveObject) -> LocalChange {
        match token_file::token_state(resource, live, chrono::Utc::now()) {
            TokenState::Fine => LocalChange::None,
            TokenState::Lost(message) => LocalChange::Lost(message),
            TokenState::Rotate(rotation) => LocalChange::Rotate {
                steps: rotation.steps(),
                reason: rotation.reason,
            },
        }
    }

    fn secret_file(&self, resource: &Resource) -> Option<std::path::PathBuf> {
        token_file::token_file_path(resource)
    }

    fn local_problem(&self, resource: &Resource) -> Option<String> {
        let path = token_file::token_file_path(resource)?;
        if path.exists() {
            None
        } else {
            Some(format!(
                "the token exists on the server but its secret file `{}` is missing: the one-time secret was never written or was removed",
                path.display()
            ))
        }
    }
}
