//! Rotating a credential without a gap (`Action::Rotate`, a VCD token's `rotate_after`):
//! create the new token, write its secret and id to the token file (atomically, mode 0600),
//! and only then revoke the generations the file no longer names. At every moment the file
//! names a token that works. `crate::model::kinds::vcd_api_token::token_file` says how the
//! next plan recognises a rotation a crash interrupted and finishes it. A revoke the server answers with a task is
//! not waited for here: it goes back to the executor's loop, which polls it.

use chrono::Utc;

use super::error::{ApplyError, Call};
use super::secret_file;
use crate::model::kinds::vcd_api_token::token_file::{
    GENERATIONS_ATTRIBUTE, TokenState, rotated_token_name, token_state,
};
use crate::model::{Address, Resource};
use crate::providers::{
    Attributes, CreateRequest, DeleteRequest, LiveObject, Outcome, Provider, TaskHandle,
};

/// What a rotation did.
#[derive(Debug)]
pub struct Rotated {
    /// The attributes of the token kept.
    pub attributes: Attributes,
    /// The revoke still running on the server, when it answered with a task.
    pub revoking: Option<Revoking>,
}

/// A revoke of old generations the server is still carrying out.
#[derive(Debug)]
pub struct Revoking {
    pub task: TaskHandle,
    /// What a failure of the task means (the token file already names a token that works).
    pub failure: String,
}

/// Carries out the rotation the token file calls for now (a saved plan may be older than
/// the file).
pub async fn rotate(
    provider: &dyn Provider,
    resource: &Resource,
    desired: &serde_json::Value,
    live: &LiveObject,
) -> Result<Rotated, ApplyError> {
    let rotation = match token_state(resource, live, Utc::now()) {
        TokenState::Rotate(rotation) => rotation,
        TokenState::Fine => {
            return Ok(Rotated {
                attributes: live.attributes.clone(),
                revoking: None,
            });
        }
        TokenState::Lost(message) => {
            return Err(ApplyError::Rotation {
                message,
                source: None,
            });
        }
    };
    let mut kept = rotation.held.clone();
    if rotation.create {
        // Token names are unique per user: the new generation gets a name of its own.
        let address = Address::new(
            resource.address.kind,
            rotated_token_name(&resource.address.name, Utc::now()),
        );
        let request = CreateRequest {
            address: &address,
            spec: desired,
            idempotency_key: uuid::Uuid::new_v4(),
            base_dir: &resource.base_dir,
        };
        let outcome = provider
            .create(&request)
            .await
            .map_err(|source| ApplyError::Rotation {
                message: "creating the new token failed; the old one still works".to_string(),
                source: Some(Box::new(ApplyError::call(Call::Create)(source))),
            })?;
        let Outcome::Done {
            attributes,
            secret: Some(secret),
        } = outcome
        else {
            return Err(ApplyError::Rotation {
                message: format!(
                    "the server returned no secret for the new token `{}`; the old one still works",
                    address.name
                ),
                source: None,
            });
        };
        secret_file::write(resource, &secret)?;
        kept = attributes
            .get("id")
            .cloned()
            .or_else(|| secret.id.clone())
            .unwrap_or_default();
        tracing::info!("{}: the token file now holds `{kept}`", resource.address);
    }
    let attributes = Attributes::from([("id".to_string(), kept.clone())]);
    let revoke: Vec<String> = rotation
        .revoke
        .into_iter()
        .filter(|id| *id != kept)
        .collect();
    let Some(last) = revoke.last().cloned() else {
        return Ok(Rotated {
            attributes,
            revoking: None,
        });
    };
    let quoted: Vec<String> = revoke.iter().map(|id| format!("`{id}`")).collect();
    let failure = format!(
        "revoking {} failed; the token file holds `{kept}`, which works; the next apply revokes the old token",
        quoted.join(", ")
    );
    // One delete of the generations to revoke, oldest first (the provider revokes them in turn).
    let generations = LiveObject {
        id: last.clone(),
        attributes: Attributes::from([
            ("id".to_string(), last),
            (GENERATIONS_ATTRIBUTE.to_string(), revoke.join(" ")),
        ]),
        ..live.clone()
    };
    let outcome = provider
        .delete(&DeleteRequest {
            address: &resource.address,
            live: &generations,
        })
        .await
        .map_err(|source| ApplyError::Rotation {
            message: failure.clone(),
            source: Some(Box::new(ApplyError::call(Call::Delete)(source))),
        })?;
    Ok(Rotated {
        attributes,
        revoking: match outcome {
            Outcome::Task(task) => Some(Revoking { task, failure }),
            Outcome::Done { .. } => None,
        },
    })
}
