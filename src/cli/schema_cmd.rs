//! `sextant schema`: the manifest JSON Schema on stdout (the same text as
//! `schemas/manifest.schema.json`).

use std::io::Write;

use super::{Failure, exit};
use crate::manifest;

pub fn run() -> Result<i32, Failure> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(manifest::schema_json().as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|err| Failure::new(format!("cannot write the schema to stdout: {err}")))?;
    Ok(exit::OK)
}
