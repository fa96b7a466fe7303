//! `sextant render [--check FILE] [PATHS]`: an environment's final documents as YAML on
//! stdout, or a check that a committed copy is current (a unified diff when it is not).

use std::io::Write;

use super::settings::{GlobalSettings, RenderSettings};
use super::workspace::{manifest_failure, manifest_unit};
use super::{Failure, Reporter, exit};
use crate::manifest;

pub fn run(
    args: &RenderSettings,
    global: &GlobalSettings,
    reporter: &Reporter,
) -> Result<i32, Failure> {
    let unit = manifest_unit(&args.manifests, global, reporter)?;
    let rendered = manifest::render_unit(unit).map_err(|d| manifest_failure(&d, reporter))?;
    let Some(check) = &args.check else {
        let mut stdout = std::io::stdout().lock();
        stdout
            .write_all(rendered.as_bytes())
            .and_then(|()| stdout.flush())
            .map_err(|err| Failure::with_source("cannot write to stdout", err))?;
        return Ok(exit::OK);
    };
    let committed = match std::fs::read_to_string(check) {
        Ok(text) => Some(text),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
        Err(err) => {
            return Err(Failure::with_source(
                format!("cannot read `{}`", check.display()),
                err,
            ));
        }
    };
    if committed.as_deref() == Some(rendered.as_str()) {
        reporter.note(&format!("`{}` is current", check.display()));
        return Ok(exit::OK);
    }
    let old = committed.as_deref().unwrap_or("");
    let shown = check.display().to_string();
    let diff = similar::TextDiff::from_lines(old, rendered.as_str())
        .unified_diff()
        .context_radius(3)
        .header(&shown, &format!("{shown} (rendered)"))
        .to_string();
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(diff.as_bytes());
    let _ = stdout.flush();
    let sources: Vec<String> = args
        .manifests
        .paths
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    let what = if committed.is_none() {
        format!("`{shown}` does not exist")
    } else {
        format!("`{shown}` is stale: it differs from what `sextant render` prints")
    };
    reporter.error(&Failure::new(what).with_hint(format!(
        "regenerate it with `sextant render {} > {shown}` and commit it",
        sources.join(" ")
    )));
    Ok(exit::ERROR)
}
