//! `sextant plan`.

use std::io::Write;

use super::args::PlanFormat;
use super::settings::{GlobalSettings, PlanSettings};
use super::workspace::{Workspace, listing_failure};
use super::{Failure, Reporter, exit};
use crate::plan::render::{self, Style};
use crate::plan::saved::{PlanContext, SavedPlan};
use crate::plan::{Plan, ReadFailure, failed_plan};

pub async fn run(
    args: PlanSettings,
    global: &GlobalSettings,
    reporter: &Reporter,
) -> Result<i32, Failure> {
    let mut workspace =
        Workspace::open(&args.manifests, &args.targets, args.sim, global, reporter).await?;
    if let Err(failure) = workspace.guard_destroys(&args.destroy, false) {
        workspace.close().await;
        return Err(failure);
    }
    if !workspace.targets.is_empty() {
        reporter.warning(
            "resource targeting is in effect: this plan covers only the targets and what they depend on, so it may be incomplete",
        );
    }
    // Machines get a failure to read the live state in the documented shape too.
    let json_failure = |failures: &[ReadFailure]| {
        if args.format == PlanFormat::Json {
            print_json(&failed_plan(&workspace.model, &workspace.scope, failures))
        } else {
            Ok(())
        }
    };
    if let Err(failure) = workspace.check_credentials(reporter) {
        let failures: Vec<ReadFailure> = workspace
            .unreadable_credentials()
            .into_iter()
            .map(|p| ReadFailure {
                message: p.one_line(),
                connection: p.connection,
                kind: None,
            })
            .collect();
        let printed = json_failure(&failures);
        workspace.close().await;
        printed?;
        return Err(failure);
    }
    let live = match workspace.read_live(args.parallelism).await {
        Ok(live) => live,
        Err(failure) => {
            let printed = json_failure(&failure.read_failures());
            workspace.close().await;
            printed?;
            return Err(listing_failure(failure, reporter));
        }
    };
    let mut plan = workspace.plan_from(&live, args.options, reporter);
    plan.credentials = workspace
        .credential_warnings(args.warn_expiry, reporter)
        .await;
    let code = finish(&args, global, reporter, &workspace, &plan);
    workspace.close().await;
    code
}

fn finish(
    args: &PlanSettings,
    global: &GlobalSettings,
    reporter: &Reporter,
    workspace: &Workspace,
    plan: &Plan,
) -> Result<i32, Failure> {
    let output = match args.format {
        PlanFormat::Text => render::text(
            plan,
            Style {
                color: global.colors.stdout,
            },
        ),
        PlanFormat::Json => json_text(plan)?,
        PlanFormat::Markdown => render::markdown(plan),
    };
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(output.as_bytes());
    let _ = stdout.flush();
    report_problems(reporter, plan)?;
    if let Some(out) = &args.out {
        let context = PlanContext {
            sim: workspace.sim.is_some(),
            recreate_lost_secrets: args.options.recreate_lost_secrets,
        };
        SavedPlan::new(
            plan,
            workspace.digest.clone(),
            &args.manifests.paths,
            &workspace.targets,
            context,
        )
        .with_overrides(&args.manifests.overrides)
        .with_destroy_settings(&workspace.extras.replace, args.destroy.max_destroy)
        .save(out)?;
        reporter.note(&format!(
            "Saved the plan to `{}`; apply it with `sextant apply {}`.",
            out.display(),
            out.display()
        ));
    }
    Ok(if args.detailed_exitcode && plan.has_changes() {
        exit::CHANGES
    } else {
        exit::OK
    })
}

fn json_text(plan: &Plan) -> Result<String, Failure> {
    let mut text = serde_json::to_string_pretty(&render::json(plan))
        .map_err(|e| Failure::with_source("cannot render the plan as JSON", e))?;
    text.push('\n');
    Ok(text)
}

fn print_json(plan: &Plan) -> Result<(), Failure> {
    let text = json_text(plan)?;
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
    Ok(())
}

/// Renders per-resource planning errors; any makes the command fail.
pub fn report_problems(reporter: &Reporter, plan: &Plan) -> Result<(), Failure> {
    for problem in &plan.problems {
        reporter.error(&Failure::from(problem.clone()));
    }
    if plan.problems.is_empty() {
        Ok(())
    } else {
        let count = plan.problems.len();
        Err(Failure::new(format!(
            "planning failed for {count} resource{}; nothing was changed",
            if count == 1 { "" } else { "s" }
        )))
    }
}
