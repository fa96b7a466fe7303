//! The local side of a Cloud Director API token: the JSON file its one-time secret was
//! written to, `{token_type, refresh_token, id, updated_on}`. Read here only for what is not
//! secret — which token the file holds (`id`) and when it was written (`updated_on`) — and
//! turned into what the token needs: nothing, a rotation, or the end of an interrupted one.
//! The secret itself is never read into memory here.
//!
//! # Rotation, and how an interrupted one is recognised
//!
//! Cloud Director token names are unique per user (`vcd.md` §6), so a rotation cannot create
//! the new token under the old name: the new one is named `<name>.rotated-<UTC time>`
//! ([`rotated_token_name`]), and every live token whose name is the
//! declared name or a rotated form of it is a *generation* of the one declared resource. The
//! provider lists them as one live object (attribute `generations`, oldest first).
//!
//! Apply rotates in three steps: create the new token, write its secret and id to the file
//! atomically (0600), then revoke every other generation. The file always names a token that
//! works, so a crash leaves one of two states, and the next plan reads them so:
//! - the file names the old token, and a newer generation exists whose secret was never
//!   written (crash between create and write): that generation is useless; the rotation is
//!   still due, so it is planned again, and the useless generation is revoked with the old one;
//! - the file names the new token and the old one is still live (crash before or during the
//!   revoke): the plan shows a rotation that only revokes the generations the file does not
//!   name.
//!
//! A file written before files carried `id` holds the oldest generation (rotations always
//! write `id`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::model::Resource;
use crate::model::live::LiveObject;

/// Marks the name of a rotated generation: `<name>.rotated-<UTC time>`.
pub const ROTATED_MARK: &str = ".rotated-";
/// The time format after [`ROTATED_MARK`].
const ROTATED_TIME_FORMAT: &str = "%Y%m%dT%H%M%SZ";

/// The name of the token that replaces token `name` in a rotation at `now`. Cloud Director
/// token names are unique per user (`vcd.md` §6, terraform-provider-vcd docs), so the new
/// token cannot take the old one's name while the old one still works.
pub fn rotated_token_name(name: &str, now: chrono::DateTime<chrono::Utc>) -> String {
    format!(
        "{}{ROTATED_MARK}{}",
        base_token_name(name),
        now.format(ROTATED_TIME_FORMAT)
    )
}

/// The declared name a live token belongs to: `name` itself, or the name a rotated
/// generation was created for.
pub fn base_token_name(name: &str) -> &str {
    match name.rsplit_once(ROTATED_MARK) {
        Some((base, time))
            if !base.is_empty()
                && chrono::NaiveDateTime::parse_from_str(time, ROTATED_TIME_FORMAT).is_ok() =>
        {
            base
        }
        _ => name,
    }
}

/// Attribute of a live VcdApiToken listing every live generation's id, oldest first,
/// separated by spaces (token URNs hold no space).
pub const GENERATIONS_ATTRIBUTE: &str = "generations";

/// Largest token file read: the JSON of one token is far smaller.
const MAX_TOKEN_FILE_BYTES: u64 = 64 * 1024;

/// What a token file says besides its secret.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TokenFileMeta {
    /// The id (`urn:vcloud:token:…`) of the token whose secret the file holds.
    pub id: Option<String>,
    /// When the secret was written: `updated_on`, else the file's modification time.
    pub updated_on: Option<DateTime<Utc>>,
}

#[derive(serde::Deserialize)]
struct FileFields {
    id: Option<String>,
    updated_on: Option<String>,
}

/// The absolute path of a VcdApiToken's `spec.file`, read from its typed spec (`None` when the
/// resource is not a token).
pub fn token_file_path(resource: &Resource) -> Option<PathBuf> {
    Some(resource.base_dir.join(token_spec(resource)?.file))
}

/// A VcdApiToken's typed spec (`None` when the resource is not a token).
fn token_spec(resource: &Resource) -> Option<super::VcdApiTokenSpec> {
    use serde::Deserialize;
    super::VcdApiTokenSpec::deserialize(&resource.spec.value()).ok()
}

/// Reads the non-secret fields of the token file at `path`; `Ok(None)` when there is no
/// file. A file that is not JSON (a bare token) yields its modification time only. Errors
/// name the file, never its content.
pub fn read_meta(path: &Path) -> Result<Option<TokenFileMeta>, String> {
    let metadata = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(format!("cannot read `{}`: {err}", path.display())),
    };
    if !metadata.is_file() || metadata.len() > MAX_TOKEN_FILE_BYTES {
        return Err(format!(
            "`{}` is not a token file (not a regular file of at most 64 KiB)",
            path.display()
        ));
    }
    let modified = metadata.modified().ok().map(DateTime::<Utc>::from);
    let bytes =
        std::fs::read(path).map_err(|err| format!("cannot read `{}`: {err}", path.display()))?;
    let Ok(fields) = serde_json::from_slice::<FileFields>(&bytes) else {
        return Ok(Some(TokenFileMeta {
            id: None,
            updated_on: modified,
        }));
    };
    let updated_on = fields
        .updated_on
        .and_then(|text| DateTime::parse_from_rfc3339(text.trim()).ok())
        .map(|t| t.with_timezone(&Utc))
        .or(modified);
    Ok(Some(TokenFileMeta {
        id: fields.id.filter(|id| !id.is_empty()),
        updated_on,
    }))
}

/// `rotate_after` as a duration (humantime: `90d`, `30d 12h`); `None` when it is not one
/// longer than zero.
pub fn parse_rotate_after(text: &str) -> Option<Duration> {
    humantime::parse_duration(text.trim())
        .ok()
        .filter(|d| !d.is_zero())
}

/// The live generations of a token, oldest first.
pub fn generations(live: &LiveObject) -> Vec<String> {
    match live.attributes.get(GENERATIONS_ATTRIBUTE) {
        Some(list) if !list.trim().is_empty() => {
            list.split_whitespace().map(str::to_string).collect()
        }
        _ => vec![live.id.clone()],
    }
}

/// A rotation to carry out (or finish).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rotation {
    /// Create a new token and write it to the file first (the file's token is too old).
    pub create: bool,
    /// The generation the file holds now.
    pub held: String,
    /// Generations to revoke once the file names the token to keep (`held` among them when
    /// a new token is created).
    pub revoke: Vec<String>,
    /// Why, for the plan.
    pub reason: String,
}

impl Rotation {
    /// The steps shown in the plan.
    pub fn steps(&self) -> Vec<String> {
        let mut steps = Vec::new();
        if self.create {
            steps.push("create a new token".to_string());
            steps.push("write its secret to the file (0600)".to_string());
        }
        let revoked: Vec<String> = self.revoke.iter().map(|id| format!("`{id}`")).collect();
        steps.push(format!("revoke {}", revoked.join(", ")));
        steps
    }
}

/// What a live token's local side needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenState {
    /// The file holds the only live generation and is young enough.
    Fine,
    /// The file holds no live generation: its secret is lost (a replace can fix it).
    Lost(String),
    Rotate(Rotation),
}

/// Decides what the live token `live` of `resource` needs at `now`.
pub fn token_state(resource: &Resource, live: &LiveObject, now: DateTime<Utc>) -> TokenState {
    let Some(spec) = token_spec(resource) else {
        return TokenState::Fine;
    };
    let path = resource.base_dir.join(&spec.file);
    let meta = match read_meta(&path) {
        Ok(Some(meta)) => meta,
        Ok(None) => {
            return TokenState::Lost(format!(
                "the token exists on the server but its secret file `{}` is missing: the one-time secret was never written or was removed",
                path.display()
            ));
        }
        Err(message) => return TokenState::Lost(message),
    };
    let generations = generations(live);
    let held = match &meta.id {
        Some(id) => id.clone(),
        // Written before files named their token: the oldest generation (see the module doc).
        None => generations[0].clone(),
    };
    if !generations.contains(&held) {
        return TokenState::Lost(format!(
            "the secret file `{}` holds token `{held}`, which is no longer live; the live token{} {} {} no secret sextant holds",
            path.display(),
            if generations.len() == 1 { "" } else { "s" },
            quoted(&generations),
            if generations.len() == 1 {
                "has"
            } else {
                "have"
            }
        ));
    }
    let others: Vec<String> = generations.into_iter().filter(|g| *g != held).collect();
    let due = spec.rotate_after.as_deref().and_then(|text| {
        let after = parse_rotate_after(text)?;
        let written = meta.updated_on?;
        let age = now.signed_duration_since(written).to_std().ok()?;
        (age > after).then(|| (text.to_string(), written))
    });
    if let Some((text, written)) = due {
        let mut revoke = vec![held.clone()];
        revoke.extend(others);
        return TokenState::Rotate(Rotation {
            create: true,
            held,
            revoke,
            reason: format!(
                "rotate: the secret file was written on {}, longer ago than `rotate_after: {text}`",
                written.format("%Y-%m-%d")
            ),
        });
    }
    if others.is_empty() {
        return TokenState::Fine;
    }
    TokenState::Rotate(Rotation {
        create: false,
        reason: format!(
            "rotate: finish an interrupted rotation: the secret file holds `{held}`; revoke the other live token{} of this name ({}), whose secret sextant does not keep",
            if others.len() == 1 { "" } else { "s" },
            quoted(&others)
        ),
        held,
        revoke: others,
    })
}

fn quoted(ids: &[String]) -> String {
    ids.iter()
        .map(|id| format!("`{id}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::live::{Attributes, LiveStatus};
    use crate::model::{Address, Kind};
    use serde_json::json;

    fn resource(dir: &Path, spec: serde_json::Value) -> Resource {
        Resource {
            address: Address::new(Kind::VcdApiToken, "ci"),
            connection: "vcd".into(),
            depends_on: vec![],
            ensure: Default::default(),
            lifecycle: Default::default(),
            timeouts: Default::default(),
            spec: spec.into(),
            references: vec![],
            named: vec![],
            previous_names: vec![],
            base_dir: dir.into(),
            location: Default::default(),
        }
    }

    fn live(ids: &[&str]) -> LiveObject {
        LiveObject {
            kind: Kind::VcdApiToken,
            name: "ci".into(),
            id: ids.last().unwrap().to_string(),
            spec: json!({}).into(),
            attributes: Attributes::from([
                ("id".to_string(), ids.last().unwrap().to_string()),
                (GENERATIONS_ATTRIBUTE.to_string(), ids.join(" ")),
            ]),
            status: LiveStatus::Ready,
            fingerprint: "f".into(),
        }
    }

    fn write(dir: &Path, id: Option<&str>, updated_on: &str) {
        let mut body =
            json!({"token_type": "API Token", "refresh_token": "s3cret", "updated_on": updated_on});
        if let Some(id) = id {
            body["id"] = json!(id);
        }
        std::fs::write(dir.join("t.json"), body.to_string()).unwrap();
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-12-07T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn a_young_file_holding_the_only_generation_is_fine() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), Some("a"), "2026-11-01T00:00:00Z");
        let r = resource(dir.path(), json!({"file": "t.json", "rotate_after": "90d"}));
        assert_eq!(token_state(&r, &live(&["a"]), now()), TokenState::Fine);
    }

    #[test]
    fn an_old_file_is_rotated_and_revokes_every_other_generation() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), Some("a"), "2026-08-01T00:00:00Z");
        let r = resource(dir.path(), json!({"file": "t.json", "rotate_after": "90d"}));
        let TokenState::Rotate(rotation) = token_state(&r, &live(&["a", "orphan"]), now()) else {
            panic!("not a rotation");
        };
        assert!(rotation.create);
        assert_eq!(rotation.revoke, vec!["a".to_string(), "orphan".to_string()]);
        assert!(
            rotation.reason.contains("2026-08-01"),
            "{}",
            rotation.reason
        );
        // Without `rotate_after` an old file is fine.
        let r = resource(dir.path(), json!({"file": "t.json"}));
        assert_eq!(token_state(&r, &live(&["a"]), now()), TokenState::Fine);
    }

    #[test]
    fn a_file_naming_the_newer_generation_finishes_the_rotation() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), Some("new"), "2026-12-06T00:00:00Z");
        let r = resource(dir.path(), json!({"file": "t.json", "rotate_after": "90d"}));
        let TokenState::Rotate(rotation) = token_state(&r, &live(&["old", "new"]), now()) else {
            panic!("not a rotation");
        };
        assert!(!rotation.create);
        assert_eq!(rotation.held, "new");
        assert_eq!(rotation.revoke, vec!["old".to_string()]);
    }

    #[test]
    fn a_file_without_id_holds_the_oldest_generation_and_one_naming_a_dead_token_is_lost() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), None, "2026-12-06T00:00:00Z");
        let r = resource(dir.path(), json!({"file": "t.json"}));
        let TokenState::Rotate(rotation) = token_state(&r, &live(&["a", "b"]), now()) else {
            panic!("not a rotation");
        };
        assert_eq!(rotation.held, "a");
        write(dir.path(), Some("gone"), "2026-12-06T00:00:00Z");
        let state = token_state(&r, &live(&["a"]), now());
        assert!(
            matches!(&state, TokenState::Lost(m) if m.contains("`gone`") && !m.contains("s3cret")),
            "{state:?}"
        );
    }
}
