//! Manifest loading and validation: YAML files → the validated [`Model`].
//!
//! Owns reading files and directories, the span-aware YAML tree, the raw manifest types and
//! the JSON Schema generated from them, structural and per-kind validation, connection
//! resolution, references and the dependency graph. It does no network I/O and never reads
//! secrets (they stay [`crate::model::SecretSource`] references until a connection is used).
//! Every problem of a run is collected into [`Diagnostics`].

mod connection;
mod diagnostics;
mod did_you_mean;
mod files;
mod graph;
mod node;
mod references;
mod rules;
mod schema;
pub mod spec;
mod structure;
mod validate;

use std::path::PathBuf;

pub use connection::raas_region_url;
pub use diagnostics::{Diagnostic, Diagnostics};
pub use files::{DefaultManifests, default_manifests};
pub use graph::{DependencyGraph, GraphFormat, dependency_graph};
pub use schema::{document_def, manifest_schema, schema_json};

use crate::model::Model;

/// Loads and validates manifests from files and directories (recursively, in sorted order,
/// skipping dot-directories). Returns the model, or every problem found.
pub fn load(paths: &[PathBuf]) -> Result<Model, Diagnostics> {
    let mut errors = Vec::new();
    let sources = files::discover(paths, &mut errors);
    validate::validate_files(&sources, errors)
}

/// Parses and validates one manifest given as text, exactly as [`load`] does for a file
/// named `name` in the current directory (relative paths in it resolve from there).
pub fn load_text(name: &str, text: &str) -> Result<Model, Diagnostics> {
    let path = PathBuf::from(name);
    let base_dir = std::path::absolute(&path)
        .ok()
        .and_then(|p| p.parent().map(std::path::Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("."));
    let source = files::SourceFile { path, base_dir };
    validate::validate_text(&source, text)
}
