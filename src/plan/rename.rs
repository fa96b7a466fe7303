//! Renames: a resource's `previous_names` find its live object under an old name, so a
//! changed `name` renames the object (in place where the API can) instead of creating a
//! second one and leaving the first behind.

use std::sync::Arc;

use super::{LiveMatch, LiveState, RenameError};
use crate::model::{Address, Model, Resource};
use crate::providers::LiveObject;

/// The live object `resource` had under one of its previous names, with that name, when its
/// own name has none (`own`). Both names live, several old names live, or an old name that
/// another manifest declares, are errors naming the objects.
pub(super) fn previous_object<'l>(
    resource: &Resource,
    model: &Model,
    live: &'l LiveState,
    own: Option<&Arc<LiveObject>>,
) -> Result<Option<(String, &'l Arc<LiveObject>)>, RenameError> {
    let mut found: Vec<(&str, &'l Arc<LiveObject>)> = Vec::new();
    for old in &resource.previous_names {
        let address = Address::new(resource.address.kind, old.clone());
        if let Some(other) = model.resources.get(&address) {
            return Err(RenameError::DeclaredToo {
                old: old.clone(),
                address,
                location: other.location.to_string(),
            });
        }
        match live.get(&address) {
            LiveMatch::Found { object, .. } => found.push((old.as_str(), object)),
            LiveMatch::Ambiguous { objects } => {
                let ids: Vec<String> = objects.iter().map(|t| format!("`{}`", t.id)).collect();
                return Err(RenameError::OldNameAmbiguous {
                    old: old.clone(),
                    count: objects.len(),
                    ids: ids.join(", "),
                });
            }
            LiveMatch::Missing { .. } => {}
        }
    }
    let name = &resource.address.name;
    match (own, found.as_slice()) {
        (_, []) => Ok(None),
        (Some(own), [(old, object), ..]) => Err(RenameError::BothLive {
            address: resource.address.clone(),
            id: own.id.clone(),
            old: old.to_string(),
            old_id: object.id.clone(),
        }),
        (None, [(old, object)]) => Ok(Some((old.to_string(), *object))),
        (None, several) => {
            let listed: Vec<String> = several
                .iter()
                .map(|(old, object)| format!("`{old}` (id `{}`)", object.id))
                .collect();
            Err(RenameError::SeveralLive {
                name: name.clone(),
                listed: listed.join(", "),
            })
        }
    }
}
