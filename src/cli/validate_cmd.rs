//! `sextant validate [PATHS]`: load and check manifests, report every problem on stderr.

use std::io::Write;

use super::args::ValidateArgs;
use super::{Failure, GlobalArgs, Reporter, exit};
use crate::manifest::{self, Diagnostics};

/// Writes the diagnostics on stderr: every line names its `file:line:column`.
pub fn report_diagnostics(diagnostics: &Diagnostics, reporter: &Reporter) {
    let mut stderr = std::io::stderr().lock();
    let _ = stderr.write_all(diagnostics.render(reporter.color).as_bytes());
}

pub fn run(args: &ValidateArgs, global: &GlobalArgs, reporter: &Reporter) -> Result<i32, Failure> {
    let paths = super::workspace::manifest_paths(&args.paths, reporter)?;
    match manifest::load_with(&paths, &global.access()) {
        Ok(model) => {
            for warning in &model.warnings {
                reporter.warning(warning);
            }
            let resources = model.resources.len();
            let connections = model.connections.len();
            reporter.note(&format!(
                "manifests are valid: {connections} {}, {resources} {}",
                if connections == 1 {
                    "connection"
                } else {
                    "connections"
                },
                if resources == 1 {
                    "resource"
                } else {
                    "resources"
                },
            ));
            Ok(exit::OK)
        }
        Err(diagnostics) => {
            report_diagnostics(&diagnostics, reporter);
            Ok(exit::ERROR)
        }
    }
}
