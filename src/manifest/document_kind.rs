//! What a document's `kind:` names, and the address `Kind/name` of a document.
//!
//! The model's [`Kind`] lists only the managed kinds. The documents that configure sextant
//! (`Connection`, `Environment`, `Lock`) are known here alone, so that no resource path has to
//! handle them. This module reads `kind:` and addresses; it knows no document's fields.

use std::fmt;

use super::environment::ENVIRONMENT_KIND;
use super::lock::LOCK_KIND;
use super::node::Node;
use crate::model::{Address, Kind};

/// The `kind` of a Connection document.
pub const CONNECTION_KIND: &str = "Connection";

/// The kind of a manifest document.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DocumentKind {
    /// Where and how to talk to one system.
    Connection,
    /// A managed object.
    Resource(Kind),
    /// An estate built from shared manifests (read before the other documents).
    Environment,
    /// Where `apply` takes its locks.
    Lock,
}

impl DocumentKind {
    /// The kinds of the documents an estate declares by address: `Connection`, then every
    /// managed kind. The order of the schema, of `render` and of the kinds a hint lists.
    pub fn declared() -> impl Iterator<Item = DocumentKind> {
        std::iter::once(DocumentKind::Connection)
            .chain(Kind::ALL.into_iter().map(DocumentKind::Resource))
    }

    /// Every kind of document: [`Self::declared`], then `Environment` and `Lock`.
    pub fn all() -> impl Iterator<Item = DocumentKind> {
        Self::declared().chain([DocumentKind::Environment, DocumentKind::Lock])
    }

    /// The kind `text` names, of any document.
    pub fn parse(text: &str) -> Option<DocumentKind> {
        Self::all().find(|kind| kind.as_str() == text)
    }

    /// The kind `text` names, when it is one of [`Self::declared`].
    pub fn parse_declared(text: &str) -> Option<DocumentKind> {
        Self::declared().find(|kind| kind.as_str() == text)
    }

    /// The kind a parsed document's `kind:` names, when it is a known one.
    pub fn of(node: &Node) -> Option<DocumentKind> {
        node.get("kind")
            .and_then(Node::as_str)
            .and_then(DocumentKind::parse)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DocumentKind::Connection => CONNECTION_KIND,
            DocumentKind::Resource(kind) => kind.as_str(),
            DocumentKind::Environment => ENVIRONMENT_KIND,
            DocumentKind::Lock => LOCK_KIND,
        }
    }
}

impl From<Kind> for DocumentKind {
    fn from(kind: Kind) -> Self {
        DocumentKind::Resource(kind)
    }
}

impl fmt::Display for DocumentKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `Kind/name` of a connection or a resource: what declarations and patches name. Ordered as
/// [`DocumentKind::declared`]: connections first, then resources by [`Address`].
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DocumentAddress {
    Connection(String),
    Resource(Address),
}

impl DocumentAddress {
    /// The address of a document of `kind` named `name` (`None` for a kind without one).
    pub fn new(kind: DocumentKind, name: impl Into<String>) -> Option<Self> {
        match kind {
            DocumentKind::Connection => Some(DocumentAddress::Connection(name.into())),
            DocumentKind::Resource(kind) => {
                Some(DocumentAddress::Resource(Address::new(kind, name)))
            }
            DocumentKind::Environment | DocumentKind::Lock => None,
        }
    }

    /// Parses `Kind/name` of a connection or a resource, as [`Address::parse`] does.
    pub fn parse(text: &str) -> Option<Self> {
        let (kind, name) = text.split_once('/')?;
        let kind = DocumentKind::parse_declared(kind)?;
        if name.is_empty() {
            return None;
        }
        DocumentAddress::new(kind, name)
    }

    pub fn kind(&self) -> DocumentKind {
        match self {
            DocumentAddress::Connection(_) => DocumentKind::Connection,
            DocumentAddress::Resource(address) => DocumentKind::Resource(address.kind),
        }
    }

    pub fn name(&self) -> &str {
        match self {
            DocumentAddress::Connection(name) => name,
            DocumentAddress::Resource(address) => &address.name,
        }
    }

    /// The resource's address; `None` for a connection.
    pub fn into_resource(self) -> Option<Address> {
        match self {
            DocumentAddress::Resource(address) => Some(address),
            DocumentAddress::Connection(_) => None,
        }
    }
}

impl fmt::Display for DocumentAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.kind(), self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_document_kind_reads_back_from_its_name() {
        for kind in DocumentKind::all() {
            assert_eq!(DocumentKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(
            DocumentKind::parse("Sddc"),
            Some(DocumentKind::Resource(Kind::Sddc))
        );
        assert_eq!(DocumentKind::parse("Connectio"), None);
        assert_eq!(DocumentKind::parse_declared("Lock"), None);
        assert_eq!(DocumentKind::parse_declared("Environment"), None);
    }

    #[test]
    fn connection_addresses_sort_before_resource_addresses() {
        let connection = DocumentAddress::parse("Connection/z").unwrap();
        let resource = DocumentAddress::parse("Sddc/a/b").unwrap();
        assert!(connection < resource);
        assert_eq!(connection.to_string(), "Connection/z");
        assert_eq!(
            resource.clone().into_resource(),
            Some(Address::new(Kind::Sddc, "a/b"))
        );
        assert_eq!(connection.into_resource(), None);
        assert_eq!(DocumentAddress::parse("Lock/x"), None);
        assert_eq!(DocumentAddress::parse("Connection/"), None);
    }
}
