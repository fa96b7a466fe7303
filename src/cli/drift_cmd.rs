//! `sextant drift`: the manifests of the working tree and (with `--baseline REF`) those at
//! REF are loaded and checked before anything is contacted; the live state is then read once
//! for both, with the listings of the unmanaged scan made whole, and the report printed.

use std::io::Write;
use std::path::PathBuf;

use super::args::ReportFormat;
use super::settings::{DriftSettings, GlobalSettings, Manifests};
use super::workspace::{
    Workspace, check_overrides, listing_failure, manifest_paths, manifest_unit,
};
use super::{Failure, Reporter, exit};
use crate::drift::baseline::{Baseline, BaselineTree};
use crate::drift::{self, DriftInputs, DriftReport};
use crate::manifest::{Diagnostics, Overrides};
use crate::model::Model;
use crate::plan::{self, ProviderSet};

pub async fn run(
    args: DriftSettings,
    global: &GlobalSettings,
    reporter: &Reporter,
) -> Result<i32, Failure> {
    let manifests = Manifests {
        paths: manifest_paths(&args.manifests.paths, reporter)?,
        overrides: args.manifests.overrides.clone(),
    };
    let mut unit = manifest_unit(&manifests, global, reporter)?;
    // The manifests at the baseline load on another thread while the working tree's do:
    // both are checked before anything is contacted. The working tree's documents are
    // handed over once parsed, so the baseline parses only the documents that differ.
    let baseline_load = args.baseline.clone().map(|reference| {
        let (manifests, access) = (manifests.clone(), global.access.clone());
        let (documents, reuse) = std::sync::mpsc::sync_channel(1);
        unit.share_documents(documents);
        // A thread of its own, not the runtime's blocking pool: it ends with the load, so
        // the memory it freed goes back to the other threads (a pooled thread would idle on
        // it, and the listings would take fresh pages from the kernel).
        let (done, loaded) = tokio::sync::oneshot::channel();
        let spawned = std::thread::Builder::new()
            .name("sextant-baseline".into())
            .spawn(move || {
                let _ = done.send(load_baseline(
                    &reference,
                    &manifests.paths,
                    &manifests.overrides,
                    access,
                    reuse,
                ));
            });
        spawned.map(|_| loaded)
    });
    let opened = Workspace::open_unit(unit, &[], args.sim, None, reporter).await;
    let baseline = match baseline_load {
        Some(Ok(loaded)) => Some(
            loaded
                .await
                .map_err(|err| Failure::with_source("loading the baseline failed", err)),
        ),
        Some(Err(err)) => Some(Err(Failure::with_source(
            "cannot start the thread that loads the baseline",
            err,
        ))),
        None => None,
    };
    let mut workspace = opened?;
    let baseline = match baseline {
        None => None,
        Some(Ok(Ok(loaded))) => Some(loaded),
        Some(Ok(Err(failure))) => {
            workspace.close().await;
            return Err(failure.report(reporter));
        }
        Some(Err(failure)) => {
            workspace.close().await;
            return Err(failure);
        }
    };
    let result = drift(&args, baseline, &mut workspace, reporter).await;
    workspace.close().await;
    let report = result?;
    print(&report, args.format)?;
    if let Some(out) = &args.out {
        report.save(out).map_err(|err| {
            Failure::with_source(
                format!("cannot write the drift report to `{}`", out.display()),
                err,
            )
        })?;
        reporter.note(&format!(
            "Saved the report to `{}`; render it again with `sextant show {}`.",
            out.display(),
            out.display()
        ));
    }
    Ok(if report.has_any(&args.fail_on) {
        exit::CHANGES
    } else {
        exit::OK
    })
}

async fn drift(
    args: &DriftSettings,
    baseline: Option<LoadedBaseline>,
    workspace: &mut Workspace,
    reporter: &Reporter,
) -> Result<DriftReport, Failure> {
    // The unmanaged scan, and the listings pruning reads (what the next apply prunes is
    // pending).
    let mut scan = drift::scanned_listings(&workspace.model);
    scan.extend(plan::prune::scan_set(&workspace.model));
    // The scanned listings' connections are used too, even when nothing is declared on them.
    if scan
        .iter()
        .any(|(connection, _)| !workspace.in_use.contains(connection))
    {
        workspace.providers =
            ProviderSet::connect_scanning(&workspace.model, &workspace.scope, &scan)?;
        workspace
            .in_use
            .extend(scan.iter().map(|(connection, _)| connection.clone()));
    }
    workspace.check_credentials(reporter)?;
    let workspace = &*workspace;
    // The baseline's tree stays until the report is made (its resources point into it).
    let (baseline, baseline_model) = match baseline {
        Some(LoadedBaseline { baseline, model }) => {
            let (tree, model) = model.unzip();
            (Some((baseline, tree)), model)
        }
        None => (None, None),
    };
    let listing = drift::listing(&workspace.model, baseline_model);
    // Without `--target`, the working tree's scope is every address it declares: the
    // listing model's.
    let live = plan::read_live_state_scanning(
        &listing.model,
        &workspace.scope,
        &scan,
        &workspace.providers,
        args.parallelism,
    )
    .await
    .map_err(|failure| listing_failure(failure, reporter))?;
    let inputs = DriftInputs {
        current: &workspace.model,
        baseline: baseline
            .as_ref()
            .map(|(b, _)| (b.reference.as_str(), b.commit.as_str())),
        listing: &listing,
        live: &live,
    };
    let report = drift::report(&inputs).map_err(|problems| {
        for problem in &problems {
            reporter.error(&Failure::from(problem.clone()));
        }
        let count = problems.len();
        Failure::new(format!(
            "{count} resource{} could not be compared with the live state; nothing was changed",
            if count == 1 { "" } else { "s" }
        ))
    })?;
    for note in &report.notes {
        reporter.warning(note);
    }
    let mut report = report;
    let credentials = workspace
        .credential_warnings(args.warn_expiry, reporter)
        .await;
    report.warnings = crate::plan::render::credential_json_warnings(&credentials);
    Ok(report)
}

/// Why the manifests at the baseline could not be loaded: a failure, and for invalid
/// manifests their diagnostics (located as `REF:path:line:column`) to print first.
struct BaselineFailure {
    diagnostics: Option<Diagnostics>,
    failure: Failure,
}

impl BaselineFailure {
    /// Prints the diagnostics and returns the failure that ends the command.
    fn report(self, reporter: &Reporter) -> Failure {
        if let Some(diagnostics) = &self.diagnostics {
            reporter.diagnostics(diagnostics);
        }
        self.failure
    }
}

impl From<Failure> for BaselineFailure {
    fn from(failure: Failure) -> Self {
        Self {
            diagnostics: None,
            failure,
        }
    }
}

/// The baseline, with its manifests unless they are the working tree's.
struct LoadedBaseline {
    baseline: Baseline,
    /// `None` when every manifest at the baseline is the working tree's (byte for byte):
    /// then the working tree's model is the baseline's.
    model: Option<(BaselineTree, Model)>,
}

/// The manifests at `reference`, loaded and validated as the working tree's are (unless
/// they are the working tree's).
fn load_baseline(
    reference: &str,
    paths: &[PathBuf],
    overrides: &Overrides,
    mut access: crate::manifest::Access,
    reuse: std::sync::mpsc::Receiver<crate::manifest::SharedDocuments>,
) -> Result<LoadedBaseline, BaselineFailure> {
    let hint = |err: drift::baseline::BaselineError| {
        let hint = match &err {
            drift::baseline::BaselineError::NotACommit { .. } => {
                "name a commit, a tag or a branch of that repository (`git log --oneline` lists commits; fetch tags with `git fetch --tags` in shallow CI clones)"
            }
            drift::baseline::BaselineError::NotARepository { .. } => {
                "run drift on a Git checkout, or leave out `--baseline`"
            }
            _ => "nothing was contacted",
        };
        Failure::from(err).with_hint(hint)
    };
    let baseline = Baseline::resolve(reference, paths).map_err(hint)?;
    if baseline.same_as_working_tree().map_err(hint)? {
        tracing::info!(
            baseline = %baseline.reference,
            commit = %baseline.commit,
            "the manifests at the baseline are the working tree's"
        );
        return Ok(LoadedBaseline {
            baseline,
            model: None,
        });
    }
    let tree = baseline.clone().read().map_err(hint)?;
    // Nothing at the baseline is read beyond its manifests: its secrets are never read and
    // its token files never written, so its own tree may hold them.
    access.secret_dirs.push(tree.dir.clone());
    access.token_dirs.push(tree.dir.clone());
    let unit = crate::manifest::unit(&tree.paths, overrides, &access)
        .map_err(|d| baseline_failure(&tree, d))?;
    check_overrides(unit.environment.as_ref(), overrides).map_err(|failure| {
        Failure::new(format!(
            "at `{reference}`: {}",
            tree.relocate_text(&failure.error.to_string())
        ))
        .with_hint(failure.hint.unwrap_or_default())
    })?;
    let mut unit = unit;
    unit.reuse_documents(reuse);
    let model = unit.load().map_err(|d| baseline_failure(&tree, d))?;
    tracing::info!(
        baseline = %tree.reference,
        commit = %tree.commit,
        resources = model.resources.len(),
        "loaded the manifests at the baseline"
    );
    Ok(LoadedBaseline {
        baseline,
        model: Some((tree, model)),
    })
}

/// The baseline's diagnostics located as `REF:path:line:column`, and the failure.
fn baseline_failure(tree: &BaselineTree, mut diagnostics: Diagnostics) -> BaselineFailure {
    for diagnostic in diagnostics
        .errors
        .iter_mut()
        .chain(diagnostics.warnings.iter_mut())
    {
        if let Some(located) = tree.locate(&diagnostic.file) {
            diagnostic.file = PathBuf::from(located);
        }
        diagnostic.message = tree.relocate_text(&diagnostic.message);
        diagnostic.hint = diagnostic.hint.take().map(|h| tree.relocate_text(&h));
    }
    let count = diagnostics.len();
    let failure = Failure::new(format!(
        "{count} error{} in the manifests at `{}` (commit {}); nothing was contacted",
        if count == 1 { "" } else { "s" },
        tree.reference,
        tree.commit
    ))
    .with_hint("drift compares the live state with the manifests at the baseline, so they must load; fix them in a new commit and move the baseline to it once applied");
    BaselineFailure {
        diagnostics: Some(diagnostics),
        failure,
    }
}

/// Prints `report` on stdout in `format`.
pub fn print(report: &DriftReport, format: ReportFormat) -> Result<(), Failure> {
    let text = render(report, format)?;
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
    Ok(())
}

/// `report` in `format`.
pub fn render(report: &DriftReport, format: ReportFormat) -> Result<String, Failure> {
    Ok(match format {
        ReportFormat::Text => drift::render::text(report),
        ReportFormat::Markdown => drift::render::markdown(report),
        ReportFormat::Junit => drift::render::junit(report),
        ReportFormat::Json => {
            let mut text = serde_json::to_string_pretty(report)
                .map_err(|e| Failure::with_source("cannot render the report as JSON", e))?;
            text.push('\n');
            text
        }
    })
}
