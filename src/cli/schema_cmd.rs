//! `sextant schema`: the manifest JSON Schema on stdout (the same text as
//! `schemas/manifest.schema.json`), or with `--plan` the schema of `plan --format json`
//! (`schemas/plan.schema.json`), with `--drift` that of `drift --format json`
//! (`schemas/drift.schema.json`).

use std::io::Write;

use super::{Failure, exit};
use crate::manifest;

pub fn run(plan: bool, drift: bool) -> Result<i32, Failure> {
    let text = if plan {
        crate::plan::render::json_schema()
    } else if drift {
        crate::drift::json_schema()
    } else {
        manifest::schema_json()
    };
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|err| Failure::with_source("cannot write the schema to stdout", err))?;
    Ok(exit::OK)
}
