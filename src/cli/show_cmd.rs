//! `sextant show FILE`: a saved plan (`plan --out`) or drift report (`drift --out`) printed
//! again in any format, from the file alone: no manifest, no credential, no API call.

use std::io::Write;

use super::args::{ReportFormat, ShowArgs};
use super::{Failure, exit};
use crate::plan::saved::SavedPlan;

pub fn run(args: &ShowArgs) -> Result<i32, Failure> {
    let text = match crate::drift::load_saved(&args.file) {
        Ok(Some(report)) => super::drift_cmd::render(&report, args.format)?,
        Ok(None) => plan_text(args)?,
        Err(err) => {
            return Err(Failure::from(err)
                .with_hint("`sextant show` reads the files `plan --out` and `drift --out` write"));
        }
    };
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
    Ok(exit::OK)
}

fn plan_text(args: &ShowArgs) -> Result<String, Failure> {
    let path = &args.file;
    let saved = SavedPlan::load(path)?.ok_or_else(|| {
        Failure::new(format!("`{}` is not JSON", path.display()))
            .with_hint("`sextant show` reads the files `plan --out` and `drift --out` write")
    })?;
    let rendered = || {
        saved.rendered.as_ref().ok_or_else(|| {
            Failure::new(format!(
                "plan file `{}` holds no text rendering (it was saved by an older sextant)",
                path.display()
            ))
            .with_hint("show it with `--format json`, or save the plan again")
        })
    };
    Ok(match args.format {
        ReportFormat::Json => {
            let mut text = serde_json::to_string_pretty(&saved.plan)
                .map_err(|e| Failure::with_source("cannot render the plan as JSON", e))?;
            text.push('\n');
            text
        }
        ReportFormat::Text => rendered()?.text.clone(),
        ReportFormat::Markdown => rendered()?.markdown.clone(),
        ReportFormat::Junit => {
            return Err(Failure::new(format!(
                "`{}` is a plan; JUnit renders drift reports",
                path.display()
            ))
            .with_hint("show a plan as `text`, `json` or `markdown`"));
        }
    })
}
