//! `sextant export`: lists every live object of one connection through its provider and
//! writes them as manifests (the writing itself is `crate::export`).

use std::io::Write;
use std::path::Path;

use super::settings::{ExportSettings, GlobalSettings};
use super::workspace::Workspace;
use super::{Failure, Reporter, exit};
use std::collections::BTreeSet;

use crate::export::{self, ExportFilter, KindExport, LeftOut};
use crate::model::{Address, Connection, Kind};
use crate::providers::{self, Provider};

pub async fn run(
    args: ExportSettings,
    global: &GlobalSettings,
    reporter: &Reporter,
) -> Result<i32, Failure> {
    let workspace = Workspace::open_with(
        &args.manifests,
        &[],
        args.sim,
        Some(&args.connection),
        global,
        reporter,
    )
    .await?;
    if let Err(failure) = workspace.check_credentials(reporter) {
        workspace.close().await;
        return Err(failure);
    }
    let result = export(&args, global, &workspace, reporter).await;
    workspace.close().await;
    result
}

async fn export(
    args: &ExportSettings,
    global: &GlobalSettings,
    workspace: &Workspace,
    reporter: &Reporter,
) -> Result<i32, Failure> {
    let connection = workspace
        .model
        .connections
        .get(&args.connection)
        .ok_or_else(|| {
            let known: Vec<&str> = workspace
                .model
                .connections
                .keys()
                .map(String::as_str)
                .collect();
            Failure::new(format!(
                "no connection named `{}` in the manifests",
                args.connection
            ))
            .with_hint(if known.is_empty() {
                "pass the files or directories that declare the connection".to_string()
            } else {
                format!("declared connections: `{}`", known.join("`, `"))
            })
        })?;
    let kinds = kinds(args, connection)?;
    let filter = ExportFilter {
        declared: declared_elsewhere(args, global, reporter)?,
        patterns: args.names.clone(),
    };
    let provider = providers::connect(connection)?;
    let result = export_kinds(
        args,
        connection,
        provider.as_ref(),
        &kinds,
        &filter,
        reporter,
    )
    .await;
    if let Err(err) = provider.close().await {
        tracing::debug!(
            connection = connection.name,
            "closing the session failed: {err}"
        );
    }
    result
}

/// The addresses that the `--skip-declared` manifests declare on the exported connection,
/// leaving out those declared under `--out` (a previous export being refreshed). The
/// manifests are read with `PATHS`, which declare the connections they use.
fn declared_elsewhere(
    args: &ExportSettings,
    global: &GlobalSettings,
    reporter: &Reporter,
) -> Result<BTreeSet<Address>, Failure> {
    if args.skip_declared.is_empty() {
        return Ok(BTreeSet::new());
    }
    let mut paths = super::workspace::manifest_paths(&args.manifests.paths, reporter)?;
    paths.extend(args.skip_declared.iter().cloned());
    let out = args
        .out
        .as_ref()
        .and_then(|dir| std::path::absolute(dir).ok());
    // Each environment among them declares its own estate: read each on its own.
    let mut declared = BTreeSet::new();
    for unit in crate::manifest::units(&paths, &Default::default(), &global.access) {
        let model = unit
            .load()
            .map_err(|d| super::workspace::manifest_failure(&d, reporter))?;
        declared.extend(
            model
                .resources
                .values()
                .filter(|r| r.connection == args.connection)
                .filter(|r| out.as_ref().is_none_or(|out| !r.base_dir.starts_with(out)))
                .map(|r| r.address.clone()),
        );
    }
    Ok(declared)
}

/// Lists and writes each kind; stdout gets everything at once, only when all succeeded.
async fn export_kinds(
    args: &ExportSettings,
    connection: &Connection,
    provider: &dyn Provider,
    kinds: &[Kind],
    filter: &ExportFilter,
    reporter: &Reporter,
) -> Result<i32, Failure> {
    let mut stdout_text = String::new();
    let (mut declared, mut unmatched) = (0usize, 0usize);
    for &kind in kinds {
        let listed = provider.list(kind, &[]).await.map_err(|err| {
            Failure::from(err).with_hint(format!(
                "nothing was written; check connection `{}` and run the command again",
                connection.name
            ))
        })?;
        let objects: Vec<_> = listed
            .into_iter()
            .filter(|o| match filter.left_out(kind, &o.name) {
                None => true,
                Some(LeftOut::Declared) => {
                    declared += 1;
                    false
                }
                Some(LeftOut::NameNotMatched) => {
                    unmatched += 1;
                    false
                }
            })
            .collect();
        let exported = export::export_kind(&connection.name, kind, &objects)?;
        for (name, reason) in &exported.skipped {
            reporter.warning(&format!("`{kind}/{name}` was not exported: {reason}"));
        }
        match &args.out {
            Some(dir) => write_file(dir, kind, &exported, reporter)?,
            None if !exported.text.is_empty() => {
                if !stdout_text.is_empty() {
                    stdout_text.push_str("---\n");
                }
                stdout_text.push_str(&exported.text);
            }
            None => {}
        }
    }
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    if declared > 0 {
        reporter.note(&format!(
            "Left out {declared} live object{} that the `--skip-declared` manifests declare.",
            plural(declared)
        ));
    }
    if unmatched > 0 {
        reporter.note(&format!(
            "Left out {unmatched} live object{} whose name matches no `--name` pattern.",
            plural(unmatched)
        ));
    }
    if args.out.is_none() {
        let mut stdout = std::io::stdout().lock();
        stdout
            .write_all(stdout_text.as_bytes())
            .and_then(|()| stdout.flush())
            .map_err(|err| Failure::with_source("cannot write to stdout", err))?;
    }
    Ok(exit::OK)
}

/// The kinds asked for, checked against the connection's system, sorted; all of them by
/// default.
fn kinds(args: &ExportSettings, connection: &Connection) -> Result<Vec<Kind>, Failure> {
    let system = connection.config.system;
    let of_system: Vec<Kind> = Kind::ALL
        .into_iter()
        .filter(|k| k.system() == system)
        .collect();
    if args.kinds.is_empty() {
        return Ok(of_system);
    }
    if let Some(&kind) = args.kinds.iter().find(|k| !of_system.contains(k)) {
        let names: Vec<&str> = of_system.iter().map(|k| k.as_str()).collect();
        return Err(Failure::new(format!(
            "connection `{}` is a `{system}` connection and has no `{kind}` objects",
            connection.name
        ))
        .with_hint(format!("its kinds: `{}`", names.join("`, `"))));
    }
    let mut kinds = args.kinds.clone();
    kinds.sort();
    Ok(kinds)
}

fn write_file(
    dir: &Path,
    kind: Kind,
    exported: &KindExport,
    reporter: &Reporter,
) -> Result<(), Failure> {
    let path = dir.join(export::file_name(kind));
    if exported.text.is_empty() {
        reporter.note(&format!("No `{kind}` objects to export."));
        if path.is_file() {
            std::fs::remove_file(&path).map_err(|err| {
                Failure::with_source(format!("cannot remove the stale `{}`", path.display()), err)
            })?;
            reporter.note(&format!("Removed the stale `{}`.", path.display()));
        }
        return Ok(());
    }
    std::fs::create_dir_all(dir)
        .map_err(|err| Failure::with_source(format!("cannot create `{}`", dir.display()), err))?;
    std::fs::write(&path, &exported.text)
        .map_err(|err| Failure::with_source(format!("cannot write `{}`", path.display()), err))?;
    let count = exported.exported.len();
    reporter.note(&format!(
        "Exported {count} `{kind}` object{} to `{}`.",
        if count == 1 { "" } else { "s" },
        path.display()
    ));
    Ok(())
}
