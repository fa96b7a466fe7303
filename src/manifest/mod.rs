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

/// Directories outside the manifest tree that the operator lets manifests use. A manifest
/// (say, of a pull request) must not be able to send a file of its choosing to a URL of its
/// choosing, nor write where it likes: outside the tree, `{file: …}` secrets are read only
/// from `secret_dirs` and `VcdApiToken.file` is written only under `token_dirs`.
#[derive(Clone, Debug, Default)]
pub struct Access {
    pub secret_dirs: Vec<PathBuf>,
    pub token_dirs: Vec<PathBuf>,
}

/// The environment variable naming secret directories (separated like `PATH`).
pub const SECRET_DIRS_ENV: &str = "SEXTANT_SECRET_DIRS";

impl Access {
    /// The secret directories named by [`SECRET_DIRS_ENV`], no token directory.
    pub fn from_env() -> Self {
        Self {
            secret_dirs: std::env::var_os(SECRET_DIRS_ENV)
                .map(|dirs| {
                    std::env::split_paths(&dirs)
                        .filter(|d| !d.as_os_str().is_empty())
                        .collect()
                })
                .unwrap_or_default(),
            token_dirs: Vec::new(),
        }
    }
}

/// Loads and validates manifests from files and directories (recursively, in sorted order,
/// skipping dot-directories), with the secret directories of [`Access::from_env`]. Returns
/// the model, or every problem found.
pub fn load(paths: &[PathBuf]) -> Result<Model, Diagnostics> {
    load_with(paths, &Access::from_env())
}

/// [`load`] with the directories the operator named.
pub fn load_with(paths: &[PathBuf], access: &Access) -> Result<Model, Diagnostics> {
    let mut errors = Vec::new();
    let confinement = files::Confinement::new(paths, access);
    let sources = files::discover(paths, &confinement, &mut errors);
    validate::validate_files(&sources, &confinement, errors)
}

/// Parses and validates one manifest given as text, exactly as [`load`] does for a file
/// named `name` in the current directory (relative paths in it resolve from there).
pub fn load_text(name: &str, text: &str) -> Result<Model, Diagnostics> {
    let path = PathBuf::from(name);
    let base_dir = std::path::absolute(&path)
        .ok()
        .and_then(|p| p.parent().map(std::path::Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("."));
    let confinement = files::Confinement::new(std::slice::from_ref(&base_dir), &Access::from_env());
    let source = files::SourceFile { path, base_dir };
    validate::validate_text(&source, &confinement, text)
}
