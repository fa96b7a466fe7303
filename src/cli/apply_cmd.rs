//! `sextant apply`.

use std::collections::BTreeSet;
use std::io::{BufRead, IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio_util::sync::CancellationToken;

use super::plan_cmd::report_problems;
use super::settings::{ApplySettings, GlobalSettings};
use super::workspace::Workspace;
use super::{Failure, Reporter, exit};
use crate::apply::events::{EventSink, JsonSink, PlainSink, TerminalSink};
use crate::apply::lock::{EstateKey, HeldLocks, Holder, LockBackend, Waiting, acquire_all};
use crate::apply::{self, ApplyOptions, ApplyReport, ResourceOutcome};
use crate::plan::Plan;
use crate::plan::render::{self, Style};

pub async fn run(
    args: ApplySettings,
    global: &GlobalSettings,
    reporter: &Reporter,
) -> Result<i32, Failure> {
    let mut workspace =
        Workspace::open(&args.manifests, &args.targets, args.sim, global, reporter).await?;
    if let Err(failure) = workspace.guard_destroys(&args.destroy, true) {
        workspace.close().await;
        return Err(failure);
    }
    if let Err(failure) = workspace.check_credentials(reporter) {
        workspace.close().await;
        return Err(failure);
    }
    // Connected before any API call: an unreachable lock database changes nothing.
    let backend =
        match super::lock_cmd::open_backend(&args.lock, workspace.model.lock.as_ref()).await {
            Ok(backend) => backend,
            Err(failure) => {
                workspace.close().await;
                return Err(failure);
            }
        };
    let code = run_in(&args, global, reporter, &workspace, backend.as_ref()).await;
    workspace.close().await;
    code
}

/// Plans without a lock, then locks the estates the plan changes (in sorted order) and plans
/// again under the locks, until the plan changes only locked estates. Returns the final plan
/// and the locks; a plan without changes takes no lock.
async fn plan_under_lock(
    args: &ApplySettings,
    reporter: &Reporter,
    workspace: &Workspace,
    backend: &dyn LockBackend,
) -> Result<(Plan, HeldLocks), Failure> {
    let parallelism = args.parallelism;
    let options = args.options;
    let (mut plan, _live) = workspace
        .plan_silently(parallelism, options, reporter)
        .await?;
    let mut locks = HeldLocks::default();
    let me = Holder::me();
    loop {
        let wanted = workspace.estates_changed_by(&plan);
        let held = locks.keys();
        if wanted.is_subset(&held) {
            break;
        }
        // Keys are only ever taken together and in order: give back what is held first.
        let all: BTreeSet<EstateKey> = held.union(&wanted).cloned().collect();
        locks.release().await;
        let progress = |line: &str| reporter.note(line);
        locks = acquire_all(backend, &all, &me, Waiting::new(lock_timeout(args, &workspace.model)), &progress)
            .await
            .map_err(|err| {
                Failure::from(err).with_hint(
                    "wait for the other apply to finish and run this one again, or pass `--lock-timeout 10m` to wait for it; `sextant lock status` lists the holders",
                )
            })?;
        tracing::debug!(locks = ?all.iter().map(ToString::to_string).collect::<Vec<_>>(), backend = %backend.describe(), "locked");
        // Another apply may have finished between the first plan and the lock.
        match workspace
            .plan_silently(parallelism, options, reporter)
            .await
        {
            Ok((fresh, _live)) => plan = fresh,
            Err(failure) => {
                locks.release().await;
                return Err(failure);
            }
        }
    }
    for warning in &plan.warnings {
        reporter.warning(&warning.to_string());
    }
    Ok((plan, locks))
}

async fn run_in(
    args: &ApplySettings,
    global: &GlobalSettings,
    reporter: &Reporter,
    workspace: &Workspace,
    backend: &dyn LockBackend,
) -> Result<i32, Failure> {
    if !workspace.targets.is_empty() {
        reporter.warning("resource targeting is in effect: applied changes may be incomplete");
    }
    let (mut plan, locks) = plan_under_lock(args, reporter, workspace, backend).await?;
    plan.credentials = workspace
        .credential_warnings(args.warn_expiry, reporter)
        .await;
    let code = apply_locked(args, global, reporter, workspace, &plan, &locks).await;
    locks.release().await;
    code
}

async fn apply_locked(
    args: &ApplySettings,
    global: &GlobalSettings,
    reporter: &Reporter,
    workspace: &Workspace,
    plan: &Plan,
    locks: &HeldLocks,
) -> Result<i32, Failure> {
    report_problems(reporter, plan)?;
    let saved = args.saved.as_ref();
    if let Some(saved) = saved
        && let Err(stale) = saved.check_fresh(&workspace.digest, plan)
    {
        return Err(Failure::from(stale)
            .with_hint("run `sextant plan --out FILE` again and review the new plan"));
    }
    if !args.json {
        let style = Style {
            color: global.colors.stdout,
        };
        print!("{}", render::text(plan, style));
    }
    if !plan.has_changes() {
        return Ok(exit::OK);
    }
    if saved.is_none() && !args.auto_approve {
        if !std::io::stdin().is_terminal() {
            return Err(Failure::new(
                "refusing to apply without confirmation: standard input is not a terminal",
            )
            .with_hint(
                "pass `--auto-approve`, or apply a plan file saved with `sextant plan --out FILE`",
            ));
        }
        print!(
            "\nDo you want to perform these actions?\n  Only 'yes' will be accepted to approve.\n\n  Enter a value: "
        );
        let _ = std::io::stdout().flush();
        let mut answer = String::new();
        let _ = std::io::stdin().lock().read_line(&mut answer);
        if answer.trim() != "yes" {
            println!("\nApply cancelled.");
            return Ok(exit::ERROR);
        }
    }
    if !args.json {
        println!();
    }

    if let Some(key) = locks.lost_key() {
        return Err(lost_lock(key));
    }
    let cancel = CancellationToken::new();
    // SIGINT (Ctrl-C) and SIGTERM (what CI sends on cancellation) both stop new work; the
    // exit code says which arrived (130 or 143). Listeners are set up before any action runs.
    let terminated = Arc::new(AtomicBool::new(false));
    let watcher = {
        use tokio::signal::unix::{SignalKind, signal};
        let cancel = cancel.clone();
        let terminated = terminated.clone();
        let mut interrupt = signal(SignalKind::interrupt()).ok();
        let mut terminate = signal(SignalKind::terminate()).ok();
        tokio::spawn(async move {
            tokio::select! {
                _ = next_signal(interrupt.as_mut()) => {}
                _ = next_signal(terminate.as_mut()) => terminated.store(true, Ordering::SeqCst),
            }
            cancel.cancel();
        })
    };
    // A lost lock stops the apply as Ctrl-C does: nothing new starts, calls in flight finish,
    // server tasks are left for the next apply to pick up.
    let lost = {
        let cancel = cancel.clone();
        async move {
            let key = locks.wait_lost().await;
            cancel.cancel();
            key
        }
    };
    let sink: Box<dyn EventSink> = if args.json {
        Box::new(JsonSink::new(std::io::stdout()))
    } else if std::io::stdout().is_terminal() {
        Box::new(TerminalSink::new())
    } else {
        Box::new(PlainSink::new(std::io::stdout()))
    };
    if args.json {
        // The plan's warnings (credentials expiring soon) lead the event stream.
        for warning in crate::plan::render::credential_json_warnings(&plan.credentials) {
            let mut line = serde_json::Map::new();
            line.insert("type".into(), "warning".into());
            if let Ok(serde_json::Value::Object(fields)) = serde_json::to_value(&warning) {
                line.extend(fields);
            }
            println!("{}", serde_json::Value::Object(line));
        }
    }
    let options = ApplyOptions {
        parallelism: args.parallelism,
        server_time_scale: args.sim.unwrap_or(1.0),
        ..ApplyOptions::default()
    };
    let run = apply::apply(
        plan,
        &workspace.model,
        &workspace.providers,
        &options,
        sink.as_ref(),
        cancel,
    );
    tokio::pin!(run, lost);
    let mut lost_key = None;
    let report = loop {
        tokio::select! {
            report = &mut run => break report,
            key = &mut lost, if lost_key.is_none() => lost_key = Some(key),
        }
    };
    watcher.abort();
    let code = summarize(&report, args.json, reporter);
    let code = if code == exit::INTERRUPTED && terminated.load(Ordering::SeqCst) {
        exit::TERMINATED
    } else {
        code
    };
    match lost_key {
        Some(key) => Err(lost_lock(&key)),
        None => Ok(code),
    }
}

fn lost_lock(key: &EstateKey) -> Failure {
    Failure::new(format!(
        "the lock on {} was lost during the apply; no new action was started",
        key.describe()
    ))
    .with_hint(
        "another apply may now run: run `sextant plan` to see what is left, then apply again",
    )
}

/// The next delivery of a signal; never, when its listener could not be set up.
async fn next_signal(stream: Option<&mut tokio::signal::unix::Signal>) {
    match stream {
        Some(stream) => {
            stream.recv().await;
        }
        None => std::future::pending().await,
    }
}

/// One resource's change failed; the cause chain says why.
#[derive(Debug, thiserror::Error)]
#[error("applying `{address}` failed")]
struct ResourceFailed {
    address: crate::model::Address,
    #[source]
    source: Arc<apply::ApplyError>,
}

fn summarize(report: &ApplyReport, json: bool, reporter: &Reporter) -> i32 {
    let mut failed = Vec::new();
    let mut skipped = Vec::new();
    let mut running = Vec::new();
    let mut not_started = Vec::new();
    let mut errors = Vec::new();
    for (address, outcome) in &report.results {
        match outcome {
            ResourceOutcome::Done => {}
            ResourceOutcome::Failed(error) if json => {
                failed.push(format!("{address}: {}", error.chain()))
            }
            ResourceOutcome::Failed(error) => {
                failed.push(address.to_string());
                errors.push(ResourceFailed {
                    address: address.clone(),
                    source: error.clone(),
                });
            }
            ResourceOutcome::Skipped { because } => {
                skipped.push(format!("{address} (because {because} did not complete)"))
            }
            ResourceOutcome::StillRunning(task) => {
                running.push(format!("{address} (task {})", task.id))
            }
            ResourceOutcome::NotStarted => not_started.push(address.to_string()),
        }
    }
    let done = report
        .results
        .values()
        .filter(|o| matches!(o, ResourceOutcome::Done))
        .count();
    let totals = format!(
        "Resources: {} added, {} changed, {} destroyed.",
        report.added, report.changed, report.destroyed
    );
    if json {
        let line = serde_json::json!({
            "type": "summary",
            "done": done,
            "failed": failed,
            "skipped": skipped,
            "still_running": running,
            "not_started": not_started,
            "interrupted": report.interrupted,
            "added": report.added,
            "changed": report.changed,
            "destroyed": report.destroyed,
        });
        println!("{line}");
    } else if !report.interrupted && failed.is_empty() && skipped.is_empty() {
        println!("\nApply complete! {totals}");
    } else {
        println!(
            "\n{} {totals}",
            if report.interrupted {
                "Apply interrupted."
            } else {
                "Apply failed."
            }
        );
        println!("  done: {done}");
        for (label, items) in [
            ("failed", &failed),
            ("skipped", &skipped),
            ("still running on the server", &running),
            ("not started", &not_started),
        ] {
            if !items.is_empty() {
                println!("  {label}: {}", items.len());
                for item in items {
                    println!("    - {}", crate::model::shown::visible(item));
                }
            }
        }
    }
    // Each failure once, with its causes, through the one renderer.
    for error in errors {
        reporter.error(&Failure::from(error));
    }
    if report.interrupted {
        if !running.is_empty() {
            reporter.note("The server tasks above are still running; the next `sextant apply` or `sextant plan` will wait for them instead of starting them again.");
        }
        exit::INTERRUPTED
    } else if !failed.is_empty() || !skipped.is_empty() {
        reporter
            .note("Run `sextant plan` to see what is left to do; completed work is not repeated.");
        exit::ERROR
    } else {
        exit::OK
    }
}

/// `--lock-timeout`, else the `kind: Lock` document's `timeout`, else 0 (fail at once).
fn lock_timeout(args: &ApplySettings, model: &crate::model::Model) -> std::time::Duration {
    args.lock_timeout
        .or_else(|| model.lock.as_ref().and_then(|lock| lock.timeout))
        .unwrap_or_default()
}
