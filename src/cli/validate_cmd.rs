//! `sextant validate [PATHS]`: load and check manifests, report every problem on stderr.
//! Each environment among the paths is checked on its own.

use super::settings::{GlobalSettings, Manifests};
use super::workspace::{check_overrides, manifest_paths};
use super::{Failure, Reporter, exit};
use crate::manifest;

fn plural(count: usize, one: &str, many: &str) -> String {
    format!("{count} {}", if count == 1 { one } else { many })
}

pub fn run(
    manifests: &Manifests,
    global: &GlobalSettings,
    reporter: &Reporter,
) -> Result<i32, Failure> {
    let paths = manifest_paths(&manifests.paths, reporter)?;
    let units = manifest::units(&paths, &manifests.overrides, &global.access);
    if units.iter().all(|u| u.environment.is_none()) {
        check_overrides(None, &manifests.overrides)?;
    }
    let mut code = exit::OK;
    for unit in units {
        let environment = unit.environment.clone();
        let label = match &environment {
            Some(env) => format!("environment `{}` ({}) is", env.name, env.file.display()),
            None => "manifests are".to_string(),
        };
        match unit.load() {
            Ok(model) => {
                for warning in &model.warnings {
                    reporter.warning(warning);
                }
                reporter.note(&format!(
                    "{label} valid: {}, {}",
                    plural(model.connections.len(), "connection", "connections"),
                    plural(model.resources.len(), "resource", "resources"),
                ));
            }
            Err(diagnostics) => {
                reporter.diagnostics(&diagnostics);
                if environment.is_some() {
                    reporter.note(&format!(
                        "{label} not valid: {}",
                        plural(diagnostics.len(), "error", "errors")
                    ));
                }
                code = exit::ERROR;
            }
        }
    }
    Ok(code)
}
