//! `sextant graph [PATHS] --format dot|mermaid`: the dependency graph on stdout.

use std::io::Write;

use super::settings::{GlobalSettings, GraphSettings};
use super::workspace::manifest_unit;
use super::{Failure, Reporter, exit};

pub fn run(
    args: &GraphSettings,
    global: &GlobalSettings,
    reporter: &Reporter,
) -> Result<i32, Failure> {
    let unit = manifest_unit(&args.manifests, global, reporter)?;
    let model = match unit.load() {
        Ok(model) => {
            for warning in &model.warnings {
                reporter.warning(warning);
            }
            model
        }
        Err(diagnostics) => {
            reporter.diagnostics(&diagnostics);
            return Ok(exit::ERROR);
        }
    };
    let text = crate::manifest::dependency_graph(&model).render(args.format);
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|err| Failure::with_source("cannot write the graph to stdout", err))?;
    Ok(exit::OK)
}
