//! Renames: a resource's `previous_names` find its live object under an old name, so a
//! changed `name` renames the object (in place where the API can) instead of creating a
//! second one and leaving the first behind.

use std::sync::Arc;

use super::LiveMatch;
use super::LiveState;
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
) -> Result<Option<(String, &'l Arc<LiveObject>)>, String> {
    let mut found: Vec<(&str, &'l Arc<LiveObject>)> = Vec::new();
    for old in &resource.previous_names {
        let address = Address::new(resource.address.kind, old.clone());
        if let Some(other) = model.resources.get(&address) {
            return Err(format!(
                "`previous_names` lists `{old}`, but `{address}` is declared too ({}); a name belongs to one document: remove it from `previous_names` or remove the other document",
                other.location
            ));
        }
        match live.get(&address) {
            LiveMatch::Found { object, .. } => found.push((old.as_str(), object)),
            LiveMatch::Ambiguous { objects } => {
                let ids: Vec<String> = objects.iter().map(|t| format!("`{}`", t.id)).collect();
                return Err(format!(
                    "previous name `{old}` is carried by {} live objects (ids {}); sextant will not guess which one to rename: delete the extra ones on the server",
                    objects.len(),
                    ids.join(", ")
                ));
            }
            LiveMatch::Missing { .. } => {}
        }
    }
    let name = &resource.address.name;
    match (own, found.as_slice()) {
        (_, []) => Ok(None),
        (Some(own), [(old, object), ..]) => Err(format!(
            "both `{}` (id `{}`) and `{}` (id `{}`) exist live, and `previous_names` says they are one object; delete or rename one of them on the server, or remove `{old}` from `previous_names`",
            resource.address,
            own.id,
            Address::new(resource.address.kind, *old),
            object.id
        )),
        (None, [(old, object)]) => Ok(Some((old.to_string(), *object))),
        (None, several) => {
            let listed: Vec<String> = several
                .iter()
                .map(|(old, object)| format!("`{old}` (id `{}`)", object.id))
                .collect();
            Err(format!(
                "several previous names of `{name}` exist live: {}; sextant will not guess which one to rename: delete the others on the server, or list only one in `previous_names`",
                listed.join(", ")
            ))
        }
    }
}
