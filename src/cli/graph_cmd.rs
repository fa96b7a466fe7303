//! `sextant graph [PATHS] --format dot|mermaid`: the dependency graph on stdout.

use std::io::Write;

use super::args::{GraphArgs, GraphFormatArg};
use super::workspace::manifest_unit;
use super::{Failure, GlobalArgs, Reporter, exit};
use crate::manifest::GraphFormat;

pub fn run(args: &GraphArgs, global: &GlobalArgs, reporter: &Reporter) -> Result<i32, Failure> {
    let unit = manifest_unit(&args.paths, &args.vars.overrides(), global, reporter)?;
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
    let format = match args.format {
        GraphFormatArg::Dot => GraphFormat::Dot,
        GraphFormatArg::Mermaid => GraphFormat::Mermaid,
    };
    let text = crate::manifest::dependency_graph(&model).render(format);
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|err| Failure::with_source("cannot write the graph to stdout", err))?;
    Ok(exit::OK)
}
