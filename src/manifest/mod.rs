//! Manifest loading and validation.
mod diagnostics;
mod did_you_mean;
mod node;
mod schema;
mod spec;
mod structure;
