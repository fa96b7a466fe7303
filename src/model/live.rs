//! What a live object is once a provider has read and normalized it: the planner's view of
//! the estate. Providers build these from their wire formats; the model and planner read them.

use crate::model::{CompactJson, Kind};

/// A live object as the planner sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct LiveObject {
    pub kind: Kind,
    /// The object's name in the remote system (matched exactly against the manifest name).
    pub name: String,
    /// The server's id (SDDC id, RaaS uuid, VCD token id, vSphere VM id).
    pub id: String,
    /// Every user-settable field the server reports, normalized into the manifest's spec shape
    /// and canonical spelling. Fields the server never returns are absent.
    pub spec: CompactJson,
    /// Exported attributes (`id`, `vc_url`, `uuid`, …) for `${Kind/name.attr}`.
    pub attributes: Attributes,
    pub status: LiveStatus,
    /// Changes whenever the object changes on the server (an etag, or a hash of its JSON).
    pub fingerprint: String,
}

/// Exported attributes of a live object, by name: a handful of pairs in a vector sorted by
/// name (a `BTreeMap` allocates a node of about 500 bytes even for one pair, and a plan
/// holds one set per live object).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Attributes(Vec<(String, String)>);

impl Attributes {
    fn position(&self, key: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(k, _)| k.as_str().cmp(key))
    }

    pub fn get(&self, key: &str) -> Option<&String> {
        self.position(key).ok().map(|i| &self.0[i].1)
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.position(key).is_ok()
    }

    /// Sets `key`, returning the value it replaced.
    pub fn insert(&mut self, key: String, value: String) -> Option<String> {
        match self.position(&key) {
            Ok(i) => Some(std::mem::replace(&mut self.0[i].1, value)),
            Err(i) => {
                self.0.insert(i, (key, value));
                None
            }
        }
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Pairs in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &String)> {
        self.0.iter().map(|(k, v)| (k, v))
    }
}

impl Extend<(String, String)> for Attributes {
    fn extend<I: IntoIterator<Item = (String, String)>>(&mut self, pairs: I) {
        for (key, value) in pairs {
            self.insert(key, value);
        }
    }
}

impl FromIterator<(String, String)> for Attributes {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(pairs: I) -> Self {
        let mut attributes = Attributes::default();
        attributes.extend(pairs);
        attributes
    }
}

impl<const N: usize> From<[(String, String); N]> for Attributes {
    fn from(pairs: [(String, String); N]) -> Self {
        pairs.into_iter().collect()
    }
}

impl IntoIterator for Attributes {
    type Item = (String, String);
    type IntoIter = std::vec::IntoIter<(String, String)>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl std::ops::Index<&str> for Attributes {
    type Output = String;

    /// Panics when `key` is absent, as `BTreeMap`'s index does.
    fn index(&self, key: &str) -> &String {
        self.get(key)
            .unwrap_or_else(|| panic!("no attribute `{key}`"))
    }
}

/// Whether a live object can be acted on now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LiveStatus {
    Ready,
    /// A task is running on the object (an SDDC DEPLOYING or DELETING, hosts being added).
    Busy {
        task: Option<TaskHandle>,
        /// What the server is doing, e.g. `DEPLOYING`.
        activity: String,
    },
    /// The object exists but is unusable (an SDDC whose deployment FAILED or was CANCELED).
    Failed {
        reason: String,
    },
    /// Gone but still readable (a DELETED SDDC). Never matched to a manifest; counted only to
    /// choose a fresh client-side id for the next create.
    Deleted,
}

/// Long-running work on the server that the executor polls.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TaskHandle {
    pub kind: Kind,
    /// The server's task id.
    pub id: String,
    /// The id of the object the task works on.
    pub object_id: String,
}
