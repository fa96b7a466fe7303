//! `sextant apply`.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use tokio_util::sync::CancellationToken;

use super::args::ApplyArgs;
use super::plan_cmd::report_problems;
use super::workspace::{Workspace, is_plan_file};
use super::{Failure, GlobalArgs, Reporter, exit};
use crate::apply::events::{EventSink, JsonSink, PlainSink, TerminalSink};
use crate::apply::{self, ApplyOptions, ApplyReport, ResourceOutcome};
use crate::plan::render::{self, Style};
use crate::plan::saved::SavedPlan;

pub async fn run(
    args: ApplyArgs,
    global: &GlobalArgs,
    reporter: &Reporter,
) -> Result<i32, Failure> {
    let saved = match args.paths.as_slice() {
        [single] if is_plan_file(single) => SavedPlan::load(single)?,
        paths => {
            if let Some(plan) = paths.iter().find(|p| is_plan_file(p)) {
                return Err(Failure::new(format!(
                    "`{}` is a saved plan, and a saved plan is applied alone",
                    plan.display()
                ))
                .with_hint(format!("run `sextant apply {}`", plan.display())));
            }
            None
        }
    };
    if let Some(saved) = &saved {
        refuse_changes_to_saved_plan(&args, saved)?;
    }
    let (paths, targets): (Vec<PathBuf>, Vec<String>) = match &saved {
        Some(saved) => (saved.paths.clone(), saved.targets.clone()),
        None => (args.paths.clone(), args.targets.clone()),
    };
    let lock_dir = apply::lock::lock_dir(
        paths
            .first()
            .map_or(std::path::Path::new("."), |p| p.as_path()),
    );
    let _lock = apply::lock::ApplyLock::acquire(&lock_dir).map_err(|err| {
        Failure::from(err).with_hint("wait for the other apply to finish; in CI, use a concurrency group so applies never overlap")
    })?;
    let workspace = Workspace::open(&paths, &targets, args.sim.time_scale(), reporter).await?;
    if let Err(failure) = workspace.check_credentials(reporter) {
        workspace.close().await;
        return Err(failure);
    }
    let code = run_in(&args, global, reporter, &workspace, saved.as_ref()).await;
    workspace.close().await;
    code
}

/// `apply FILE` carries out exactly the saved plan: a flag that would change what is applied
/// is refused rather than ignored (ignoring `--target` would apply everything).
fn refuse_changes_to_saved_plan(args: &ApplyArgs, saved: &SavedPlan) -> Result<(), Failure> {
    let replan = |flag: &str| {
        Failure::new(format!(
            "`{flag}` cannot change a saved plan: `apply FILE` applies exactly what the plan file says; nothing was changed"
        ))
        .with_hint(format!(
            "make a new plan with it: `sextant plan {flag} --out FILE`, then `sextant apply FILE`"
        ))
    };
    if let Some(target) = args.targets.first() {
        return Err(replan(&format!("--target {target}")));
    }
    if args.recreate_lost_secrets && !saved.recreate_lost_secrets {
        return Err(replan("--recreate-lost-secrets"));
    }
    let sim = args.sim.time_scale().is_some();
    if sim != saved.sim {
        let (made, now) = if saved.sim {
            ("on the embedded simulator (`--sim`)", "the real APIs")
        } else {
            ("against the real APIs", "the embedded simulator (`--sim`)")
        };
        return Err(Failure::new(format!(
            "the saved plan was made {made}; it cannot be applied to {now}; nothing was changed"
        ))
        .with_hint(if saved.sim {
            "apply it with `--sim`, or make a plan without `--sim`"
        } else {
            "apply it without `--sim`, or make a plan with `--sim`"
        }));
    }
    Ok(())
}

async fn run_in(
    args: &ApplyArgs,
    global: &GlobalArgs,
    reporter: &Reporter,
    workspace: &Workspace,
    saved: Option<&SavedPlan>,
) -> Result<i32, Failure> {
    if !workspace.targets.is_empty() {
        reporter.warning("resource targeting is in effect: applied changes may be incomplete");
    }
    let (plan, _live) = workspace
        .plan(
            args.parallelism as usize,
            crate::plan::PlanOptions {
                recreate_lost_secrets: saved
                    .map_or(args.recreate_lost_secrets, |s| s.recreate_lost_secrets),
            },
            reporter,
        )
        .await?;
    report_problems(reporter, &plan)?;
    if let Some(saved) = saved
        && let Err(stale) = saved.check_fresh(&workspace.digest, &plan)
    {
        return Err(Failure::new(format!(
            "the saved plan is stale: {}; nothing was changed",
            stale.describe()
        ))
        .with_hint("run `sextant plan --out FILE` again and review the new plan"));
    }
    let color = !global.no_color
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        && std::io::stdout().is_terminal();
    if !args.json {
        print!("{}", render::text(&plan, Style { color }));
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

    let cancel = CancellationToken::new();
    let watcher = {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                cancel.cancel();
            }
        })
    };
    let sink: Box<dyn EventSink> = if args.json {
        Box::new(JsonSink::new(std::io::stdout()))
    } else if std::io::stdout().is_terminal() {
        Box::new(TerminalSink::new())
    } else {
        Box::new(PlainSink::new(std::io::stdout()))
    };
    let options = ApplyOptions {
        parallelism: args.parallelism as usize,
        server_time_scale: args.sim.time_scale().unwrap_or(1.0),
        ..ApplyOptions::default()
    };
    let report = apply::apply(
        &plan,
        &workspace.model,
        &workspace.providers,
        &options,
        sink.as_ref(),
        cancel,
    )
    .await;
    watcher.abort();
    Ok(summarize(&report, args.json, reporter))
}

fn summarize(report: &ApplyReport, json: bool, reporter: &Reporter) -> i32 {
    let mut failed = Vec::new();
    let mut skipped = Vec::new();
    let mut running = Vec::new();
    let mut not_started = Vec::new();
    for (address, outcome) in &report.results {
        match outcome {
            ResourceOutcome::Done => {}
            ResourceOutcome::Failed(message) => failed.push(format!("{address}: {message}")),
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
        .filter(|o| **o == ResourceOutcome::Done)
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
                    println!("    - {item}");
                }
            }
        }
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
