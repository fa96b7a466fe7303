//! Manifest loading and validation: YAML files → the validated [`Model`].
//!
//! Owns reading files and directories, the span-aware YAML tree, the raw manifest types and
//! the JSON Schema generated from them, structural and per-kind validation, connection
//! resolution, references and the dependency graph, and environments (includes, `${var.…}`
//! values and patches) between reading documents and checking them. It does no network I/O
//! and never reads secrets (they stay [`crate::model::SecretSource`] references until a
//! connection is used). Every problem of a run is collected into [`Diagnostics`].

mod connection;
mod diagnostics;
mod did_you_mean;
mod environment;
mod files;
mod graph;
mod lock;
mod node;
mod patch;
mod references;
mod render;
mod rules;
mod schema;
pub mod spec;
mod structure;
mod validate;
mod variables;

use std::path::PathBuf;

pub use connection::raas_region_url;
pub use diagnostics::{Diagnostic, Diagnostics};
pub use environment::{EnvironmentInfo, Overrides, Unit};
pub use files::{DefaultManifests, default_manifests};
pub use graph::{DependencyGraph, GraphFormat, dependency_cycles, dependency_graph};
pub use schema::{checker_schema, document_def, manifest_schema, schema_json};
pub use validate::SharedDocuments;

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
/// the model, or every problem found. When the paths hold an `Environment`, its includes,
/// values and patches apply.
pub fn load(paths: &[PathBuf]) -> Result<Model, Diagnostics> {
    load_with(paths, &Access::from_env())
}

/// [`load`] with the directories the operator named.
pub fn load_with(paths: &[PathBuf], access: &Access) -> Result<Model, Diagnostics> {
    environment::unit(paths, &Overrides::default(), access)?.load()
}

/// The run of `paths` (one environment at most, its values overridden by `overrides`), to
/// load later; tells which environment it is before anything is checked. More than one
/// environment among the paths is an error.
pub fn unit(
    paths: &[PathBuf],
    overrides: &Overrides,
    access: &Access,
) -> Result<Unit, Diagnostics> {
    environment::unit(paths, overrides, access)
}

/// The runs of `paths` when each environment is checked on its own: one per environment
/// (with the files under its directory), and one for files under no environment.
pub fn units(paths: &[PathBuf], overrides: &Overrides, access: &Access) -> Vec<Unit> {
    environment::units(paths, overrides, access)
}

/// The final documents of a run (after includes, substitution and patches) as one
/// deterministic multi-document YAML text: sorted by address, fields in a fixed order,
/// secrets as their references. Fails with every problem when the documents are invalid.
pub fn render(
    paths: &[PathBuf],
    overrides: &Overrides,
    access: &Access,
) -> Result<String, Diagnostics> {
    render_unit(environment::unit(paths, overrides, access)?)
}

/// [`render`] of a run already found with [`unit`].
pub fn render_unit(unit: Unit) -> Result<String, Diagnostics> {
    let environment = unit.environment.as_ref().map(|e| e.name.clone());
    let (_, documents) = unit.load_documents()?;
    Ok(render::render_documents(environment.as_deref(), &documents))
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
    environment::load_text(&source, &confinement, text)
}
