//! A Cloud Director API token: its spec (the local secret file) and planning rules.

use schemars::JsonSchema;
use serde::Deserialize;

use super::ResourceKind;
use crate::model::Resource;
use crate::model::SystemType;
use crate::model::live::LiveObject;
use crate::model::rules::{KindRules, LocalChange};
use crate::model::token_file::{self, TokenState};

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

    fn local_problem(&self, resource: &Resource) -> Option<String> {
        let file = resource.spec.get("file")?;
        let path = resource.base_dir.join(file.as_str()?);
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
