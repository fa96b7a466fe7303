//! Reading live state in bulk: one listing per declared kind per connection, concurrently,
//! and matching live objects to declared resources by exact name.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use futures::stream::{self, StreamExt};

use crate::model::{Address, Ensure, Kind, Model};
use crate::providers::{self, LiveObject, LiveStatus, Provider, ProviderError};

/// The providers of the connections a run uses, created on first use (no network until a
/// provider makes its first call).
#[derive(Default, Clone)]
pub struct ProviderSet {
    providers: BTreeMap<String, Arc<dyn Provider>>,
}

impl ProviderSet {
    /// Providers for the connections used by resources in `scope`.
    pub fn connect(model: &Model, scope: &BTreeSet<Address>) -> Result<Self, ProviderError> {
        Self::connect_scanning(model, scope, &BTreeSet::new())
    }

    /// Providers for the connections used by resources in `scope` and by the listings of
    /// `scan` (see [`read_live_state_scanning`]).
    pub fn connect_scanning(
        model: &Model,
        scope: &BTreeSet<Address>,
        scan: &BTreeSet<(String, Kind)>,
    ) -> Result<Self, ProviderError> {
        let used = scope
            .iter()
            .filter_map(|address| model.resources.get(address))
            .map(|resource| resource.connection.as_str())
            .chain(scan.iter().map(|(connection, _)| connection.as_str()));
        let mut providers = BTreeMap::new();
        for name in used {
            if providers.contains_key(name) {
                continue;
            }
            let Some(connection) = model.connections.get(name) else {
                continue;
            };
            providers.insert(name.to_string(), providers::connect(connection)?);
        }
        Ok(Self { providers })
    }

    /// A set built from ready providers (tests, benchmarks).
    pub fn from_providers(providers: BTreeMap<String, Arc<dyn Provider>>) -> Self {
        Self { providers }
    }

    pub fn get(&self, connection: &str) -> Option<&Arc<dyn Provider>> {
        self.providers.get(connection)
    }

    /// Ends every provider's server-side session (vSphere sessions count against a limit).
    pub async fn close(&self) {
        for (connection, provider) in &self.providers {
            if let Err(err) = provider.close().await {
                tracing::debug!(connection, "closing the session failed: {err}");
            }
        }
    }
}

/// What the live state holds for one declared resource.
#[derive(Clone, Debug, PartialEq)]
pub enum LiveMatch {
    Missing {
        /// Objects of this name the server still reports as deleted (their ids can never be
        /// reused).
        seen: u32,
    },
    Found {
        object: Arc<LiveObject>,
        /// Every object of this name the server reports, the live one included.
        seen: u32,
    },
    /// Several live objects carry the name.
    Ambiguous { objects: Vec<Twin> },
}

/// One of several live objects sharing a name: what a human needs to choose which to keep.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Twin {
    /// Creation time, when the server reports it (the `created` attribute).
    pub created: Option<String>,
    pub id: String,
}

/// Live objects matched to declared resources.
#[derive(Clone, Debug, Default)]
pub struct LiveState {
    matches: BTreeMap<Address, LiveMatch>,
    /// How many live objects carry each undeclared name a resource refers to, per connection.
    named: BTreeMap<(String, Address), usize>,
    /// Live objects no resource of the model declares, per scanned connection and kind (only
    /// for the listings [`read_live_state_scanning`] was asked to scan; deleted ones left out).
    undeclared: BTreeMap<(String, Kind), Vec<LiveObject>>,
}

const MISSING: LiveMatch = LiveMatch::Missing { seen: 0 };

impl LiveState {
    pub fn get(&self, address: &Address) -> &LiveMatch {
        self.matches.get(address).unwrap_or(&MISSING)
    }

    pub fn insert(&mut self, address: Address, found: LiveMatch) {
        self.matches.insert(address, found);
    }

    /// How many live objects on `connection` carry the undeclared name `address` (only for
    /// names resources refer to; see [`crate::model::NamedReference`]).
    pub fn named_count(&self, connection: &str, address: &Address) -> usize {
        self.named
            .get(&(connection.to_string(), address.clone()))
            .copied()
            .unwrap_or(0)
    }

    /// The live objects on `connection` of `kind` that no resource of the model declares,
    /// sorted by name (empty unless that listing was scanned).
    pub fn undeclared(&self, connection: &str, kind: Kind) -> &[LiveObject] {
        self.undeclared
            .get(&(connection.to_string(), kind))
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// Every scanned listing's undeclared objects, by connection and kind.
    pub fn undeclared_all(&self) -> impl Iterator<Item = (&str, Kind, &[LiveObject])> {
        self.undeclared
            .iter()
            .map(|((connection, kind), objects)| (connection.as_str(), *kind, objects.as_slice()))
    }

    /// Counts the live objects of a listing named by undeclared references.
    fn count_named(
        &mut self,
        connection: &str,
        kind: Kind,
        names: &[String],
        listed: &[LiveObject],
    ) {
        for name in names {
            let alive = listed
                .iter()
                .filter(|o| o.name == *name && o.status != LiveStatus::Deleted)
                .count();
            self.named.insert(
                (connection.to_string(), Address::new(kind, name.clone())),
                alive,
            );
        }
    }

    /// Matches listed objects of one kind to the declared names (moving them, never copying:
    /// listings can hold 100,000 objects). Both sides are sorted by name and walked together,
    /// so matching allocates nothing per object; objects nobody declared are dropped.
    pub fn match_listing(&mut self, kind: Kind, names: &[String], mut listed: Vec<LiveObject>) {
        listed.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        let mut sorted: Vec<&String> = names.iter().collect();
        sorted.sort_unstable();
        sorted.dedup();
        let mut objects = listed.into_iter().peekable();
        for name in sorted {
            while objects
                .next_if(|o| o.name.as_str() < name.as_str())
                .is_some()
            {}
            let mut seen = 0u32;
            let mut alive: Vec<LiveObject> = Vec::new();
            while let Some(object) = objects.next_if(|o| o.name == **name) {
                seen += 1;
                if object.status != LiveStatus::Deleted {
                    alive.push(object);
                }
            }
            let found = if alive.len() > 1 {
                let mut twins: Vec<Twin> = alive
                    .into_iter()
                    .map(|o| Twin {
                        created: o.attributes.get("created").cloned(),
                        id: o.id,
                    })
                    .collect();
                twins.sort();
                LiveMatch::Ambiguous { objects: twins }
            } else {
                match alive.pop() {
                    Some(object) => LiveMatch::Found {
                        object: Arc::new(object),
                        seen,
                    },
                    None => LiveMatch::Missing { seen },
                }
            };
            self.matches.insert(Address::new(kind, name.clone()), found);
        }
    }
}

/// A listing that failed, with the connection and kind it was for.
#[derive(Debug, thiserror::Error)]
#[error("cannot list {kind} objects on connection `{connection}`")]
pub struct ListError {
    pub connection: String,
    pub kind: Kind,
    #[source]
    pub source: ProviderError,
}

impl ListError {
    /// The error and its causes on one line.
    pub fn chain(&self) -> String {
        let mut text = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            text.push_str(&format!(": {cause}"));
            source = cause.source();
        }
        text
    }
}

/// Every listing that failed, sorted by connection and kind (never empty). Shown as the
/// first one; [`ListFailure::errors`] holds them all.
#[derive(Debug)]
pub struct ListFailure {
    pub errors: Vec<ListError>,
}

impl std::fmt::Display for ListFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.errors.first() {
            Some(first) => first.fmt(f),
            None => f.write_str("listing failed"),
        }
    }
}

impl std::error::Error for ListFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.errors
            .first()
            .and_then(|first| std::error::Error::source(first))
    }
}

/// Lists every kind used in `scope` once per connection, `parallelism` listings at a time.
/// Every failed listing is reported, not only the first.
pub async fn read_live_state(
    model: &Model,
    scope: &BTreeSet<Address>,
    providers: &ProviderSet,
    parallelism: usize,
) -> Result<LiveState, ListFailure> {
    read_live_state_scanning(model, scope, &BTreeSet::new(), providers, parallelism).await
}

/// [`read_live_state`], and also lists each `(connection, kind)` of `scan` whole (no name
/// filter), keeping the live objects no resource of the model declares
/// ([`LiveState::undeclared`]). A scanned listing the plan makes anyway costs no extra request
/// for RaaS and VMC (their listings are never filtered); for Cloud Director and vSphere it
/// replaces the name-filtered listing by an unfiltered one. Used by unmanaged-object
/// reporting and pruning.
pub async fn read_live_state_scanning(
    model: &Model,
    scope: &BTreeSet<Address>,
    scan: &BTreeSet<(String, Kind)>,
    providers: &ProviderSet,
    parallelism: usize,
) -> Result<LiveState, ListFailure> {
    let mut wanted: BTreeMap<(String, Kind), (Vec<String>, Vec<String>)> = BTreeMap::new();
    for key in scan {
        wanted.entry(key.clone()).or_default();
    }
    for address in scope {
        if let Some(resource) = model.resources.get(address) {
            // Previous names too: a renamed object is still listed under its old one.
            wanted
                .entry((resource.connection.clone(), address.kind))
                .or_default()
                .0
                .extend(
                    std::iter::once(&address.name)
                        .chain(&resource.previous_names)
                        .cloned(),
                );
            if resource.ensure == Ensure::Present {
                for named in &resource.named {
                    let entry = wanted
                        .entry((resource.connection.clone(), named.target.kind))
                        .or_default();
                    if !entry.1.contains(&named.target.name) {
                        entry.1.push(named.target.name.clone());
                    }
                }
            }
        }
    }
    let listings = stream::iter(wanted)
        .map(|((connection, kind), (declared, named))| async move {
            let whole = scan.contains(&(connection.clone(), kind));
            let mut names = Vec::new();
            if !whole {
                names.extend(declared.iter().cloned());
                names.extend(named.iter().cloned());
            }
            let provider = providers.get(&connection).ok_or_else(|| ListError {
                connection: connection.clone(),
                kind,
                source: ProviderError::Invalid(format!(
                    "no provider for connection `{connection}`"
                )),
            })?;
            let listed = provider
                .list(kind, &names)
                .await
                .map_err(|source| ListError {
                    connection: connection.clone(),
                    kind,
                    source,
                })?;
            Ok::<_, ListError>((connection, kind, declared, named, listed, whole))
        })
        .buffer_unordered(parallelism.max(1))
        .collect::<Vec<_>>()
        .await;
    let mut state = LiveState::default();
    let mut errors = Vec::new();
    for listing in listings {
        match listing {
            Ok((connection, kind, declared, named, mut listed, whole)) => {
                state.count_named(&connection, kind, &named, &listed);
                if whole {
                    let owned = declared_names(model, &connection, kind);
                    let (known, mut unknown): (Vec<_>, Vec<_>) = listed
                        .into_iter()
                        .partition(|o| owned.contains(o.name.as_str()));
                    unknown.retain(|o| o.status != LiveStatus::Deleted);
                    unknown.sort_by(|a, b| (&a.name, &a.id).cmp(&(&b.name, &b.id)));
                    state.undeclared.insert((connection.clone(), kind), unknown);
                    listed = known;
                }
                state.match_listing(kind, &declared, listed);
            }
            Err(err) => errors.push(err),
        }
    }
    if errors.is_empty() {
        Ok(state)
    } else {
        // Sorted, so that reports are deterministic.
        errors.sort_by(|a, b| (&a.connection, a.kind).cmp(&(&b.connection, b.kind)));
        Err(ListFailure { errors })
    }
}

/// The names the whole model (not only the scope) declares for `kind` on `connection`, the
/// previous names of renamed resources included.
fn declared_names<'m>(model: &'m Model, connection: &str, kind: Kind) -> BTreeSet<&'m str> {
    model
        .resources
        .iter()
        .filter(|(address, resource)| address.kind == kind && resource.connection == connection)
        .flat_map(|(address, resource)| {
            std::iter::once(address.name.as_str())
                .chain(resource.previous_names.iter().map(String::as_str))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(name: &str, status: LiveStatus) -> LiveObject {
        LiveObject {
            kind: Kind::Sddc,
            name: name.into(),
            id: format!("id-{name}"),
            spec: json!({}).into(),
            attributes: crate::providers::Attributes::default(),
            status,
            fingerprint: "f".into(),
        }
    }

    #[test]
    fn names_match_exactly_and_duplicates_are_ambiguous() {
        let mut state = LiveState::default();
        state.match_listing(
            Kind::Sddc,
            &["prod".into(), "dup".into(), "new".into()],
            vec![
                object("prod", LiveStatus::Ready),
                object("prod-2", LiveStatus::Ready),
                object("dup", LiveStatus::Ready),
                object("dup", LiveStatus::Ready),
            ],
        );
        assert!(matches!(
            state.get(&Address::new(Kind::Sddc, "prod")),
            LiveMatch::Found { .. }
        ));
        assert!(matches!(
            state.get(&Address::new(Kind::Sddc, "dup")),
            LiveMatch::Ambiguous { objects } if objects.len() == 2
        ));
        assert_eq!(
            state.get(&Address::new(Kind::Sddc, "new")),
            &LiveMatch::Missing { seen: 0 }
        );
    }

    #[test]
    fn unsorted_listings_with_undeclared_objects_match_every_name() {
        let mut state = LiveState::default();
        let names: Vec<String> = ["m", "a", "z", "gone"].map(String::from).to_vec();
        state.match_listing(
            Kind::Sddc,
            &names,
            vec![
                object("z", LiveStatus::Ready),
                object("b-undeclared", LiveStatus::Ready),
                object("m", LiveStatus::Deleted),
                object("a", LiveStatus::Ready),
                object("m", LiveStatus::Ready),
                object("zz-undeclared", LiveStatus::Ready),
                object("gone", LiveStatus::Deleted),
            ],
        );
        for name in ["a", "z"] {
            let found = state.get(&Address::new(Kind::Sddc, name));
            assert!(
                matches!(found, LiveMatch::Found { object, seen: 1 } if object.name == name),
                "{name}: {found:?}"
            );
        }
        assert!(matches!(
            state.get(&Address::new(Kind::Sddc, "m")),
            LiveMatch::Found { seen: 2, .. }
        ));
        assert_eq!(
            state.get(&Address::new(Kind::Sddc, "gone")),
            &LiveMatch::Missing { seen: 1 }
        );
        assert_eq!(state.matches.len(), 4);
    }

    #[test]
    fn deleted_objects_are_counted_not_matched() {
        let mut state = LiveState::default();
        state.match_listing(
            Kind::Sddc,
            &["prod".into()],
            vec![
                object("prod", LiveStatus::Deleted),
                object("prod", LiveStatus::Deleted),
            ],
        );
        assert_eq!(
            state.get(&Address::new(Kind::Sddc, "prod")),
            &LiveMatch::Missing { seen: 2 }
        );
    }
}
