//! Rotating a credential without a gap (`Action::Rotate`, a VCD token's `rotate_after`):
//! create the new token, write its secret and id to the token file (atomically, mode 0600),
//! and only then revoke the generations the file no longer names. At every moment the file
//! names a token that works. `crate::model::token_file` says how the next plan recognises a
//! rotation a crash interrupted and finishes it.

use std::time::Duration;

use chrono::Utc;

use super::error::{ApplyError, Call};
use super::secret_file;
use crate::model::token_file::{TokenState, rotated_token_name, token_state};
use crate::model::{Address, Resource};
use crate::providers::{
    Attributes, CreateRequest, DeleteRequest, LiveObject, Outcome, Provider, TaskStatus,
};

/// Polls of a revoke the server answered with a task (Cloud Director's 202 + `Location`).
const MAX_REVOKE_POLLS: u32 = 120;
const REVOKE_POLL_INTERVAL: Duration = Duration::from_millis(500);

/// Carries out the rotation the token file calls for now (a saved plan may be older than
/// the file); returns the attributes of the token kept.
pub async fn rotate(
    provider: &dyn Provider,
    resource: &Resource,
    desired: &serde_json::Value,
    live: &LiveObject,
) -> Result<Attributes, ApplyError> {
    let rotation = match token_state(resource, live, Utc::now()) {
        TokenState::Rotate(rotation) => rotation,
        TokenState::Fine => return Ok(live.attributes.clone()),
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
    for id in rotation.revoke.iter().filter(|id| **id != kept) {
        revoke(provider, resource, live, id)
            .await
            .map_err(|cause| ApplyError::Rotation {
                message: format!("revoking `{id}` failed; the token file holds `{kept}`, which works; the next apply revokes the old token"),
                source: Some(Box::new(cause)),
            })?;
    }
    Ok(Attributes::from([("id".to_string(), kept)]))
}

/// Revokes the one generation `id`, waiting for a task the server answers with.
async fn revoke(
    provider: &dyn Provider,
    resource: &Resource,
    live: &LiveObject,
    id: &str,
) -> Result<(), ApplyError> {
    let generation = LiveObject {
        id: id.to_string(),
        attributes: Attributes::from([("id".to_string(), id.to_string())]),
        ..live.clone()
    };
    let outcome = provider
        .delete(&DeleteRequest {
            address: &resource.address,
            live: &generation,
        })
        .await
        .map_err(ApplyError::call(Call::Delete))?;
    let Outcome::Task(task) = outcome else {
        return Ok(());
    };
    // A revoke task is short (Cloud Director answers it done at once); it is waited for
    // here so the step stays one call for the executor.
    for _ in 0..MAX_REVOKE_POLLS {
        match provider
            .poll(&task)
            .await
            .map_err(ApplyError::call(Call::Poll))?
        {
            TaskStatus::Done => return Ok(()),
            TaskStatus::Failed(message) => return Err(ApplyError::TaskFailed { message }),
            TaskStatus::Pending { .. } => tokio::time::sleep(REVOKE_POLL_INTERVAL).await,
        }
    }
    Err(ApplyError::Rotation {
        message: format!("the revoke task `{}` did not finish", task.id),
        source: None,
    })
}
