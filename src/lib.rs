//! Sextant keeps VMware cloud estates in line with YAML manifests: `plan` reads live state
//! through the vendors' APIs and diffs it against the manifests, `apply` carries out the
//! ordered actions. There is no state file: the APIs are the state.
//!
//! Data flows one way: [`manifest`] → [`model`] → [`providers`] → [`plan`] → [`apply`], with
//! the [`sim`]ulator beside them and [`cli`] on top; [`drift`] compares the live state with
//! the manifests at a baseline commit and now.

pub mod apply;
pub mod cli;
pub mod drift;
pub mod export;
pub mod local_file;
pub mod manifest;
pub mod model;
pub mod plan;
pub mod providers;
pub mod sim;
