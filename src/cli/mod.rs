//! The command line: clap definitions (raw arguments), turned into validated settings per
//! command, and the one renderer for errors, warnings and hints.
//!
//! Data goes to stdout; errors, warnings and logs go to stderr. Exit codes are Terraform's:
//! 0 success / no changes, 1 any error (usage errors included), 2 changes present (only with
//! `plan --detailed-exitcode`; for `drift`, findings that `--fail-on` counts), 130 interrupted (SIGINT), 143 terminated (SIGTERM) — both after
//! a clean stop of `apply`.

mod apply_cmd;
mod args;
mod drift_cmd;
mod export_cmd;
mod graph_cmd;
mod help_cmd;
mod lock_cmd;
mod plan_cmd;
mod render_cmd;
mod report;
mod schema_cmd;
mod settings;
mod show_cmd;
mod sim_cmd;
mod validate_cmd;
mod workspace;

use clap::Parser;

pub use args::{Cli, Command, GlobalArgs};
use args::{LockCommand, SimCommand};
pub use report::{Failure, Reporter};
pub use settings::GlobalSettings;

/// Exit codes shared by every command.
pub mod exit {
    pub const OK: i32 = 0;
    pub const ERROR: i32 = 1;
    pub const CHANGES: i32 = 2;
    /// Interrupted by SIGINT (Ctrl-C).
    pub const INTERRUPTED: i32 = 130;
    /// Stopped by SIGTERM (CI cancellation), after the same clean stop as SIGINT.
    pub const TERMINATED: i32 = 143;
}

/// Parses the process arguments, runs the command and returns the exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let code = match err.kind() {
                clap::error::ErrorKind::DisplayHelp
                | clap::error::ErrorKind::DisplayVersion
                | clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                    let _ = err.print();
                    return if err.kind()
                        == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
                    {
                        exit::ERROR
                    } else {
                        exit::OK
                    };
                }
                _ => exit::ERROR,
            };
            let _ = err.print();
            return code;
        }
    };
    run(cli)
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> i32 {
    let global = GlobalSettings::new(&cli.global);
    let reporter = Reporter::new(&global);
    reporter.init_logging();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            reporter.error(&Failure::with_source("cannot start the async runtime", err));
            return exit::ERROR;
        }
    };
    let result = runtime.block_on(dispatch(cli.command, &global, &reporter));
    match result {
        Ok(code) => code,
        Err(failure) => {
            reporter.error(&failure);
            exit::ERROR
        }
    }
}

/// Turns each command's raw arguments into its settings (the one place they are checked),
/// then runs it.
async fn dispatch(
    command: Command,
    global: &GlobalSettings,
    reporter: &Reporter,
) -> Result<i32, Failure> {
    use settings::*;
    match command {
        Command::Plan(args) => {
            plan_cmd::run(
                PlanSettings::new(args).map_err(Failure::hinted)?,
                global,
                reporter,
            )
            .await
        }
        Command::Apply(args) => {
            apply_cmd::run(
                ApplySettings::new(args).map_err(Failure::hinted)?,
                global,
                reporter,
            )
            .await
        }
        Command::Validate(args) => validate_cmd::run(&validate_manifests(args), global, reporter),
        Command::Graph(args) => graph_cmd::run(&GraphSettings::new(args), global, reporter),
        Command::Render(args) => render_cmd::run(&RenderSettings::new(args), global, reporter),
        Command::Schema(args) => schema_cmd::run(args.plan, args.drift),
        Command::Drift(args) => {
            drift_cmd::run(
                DriftSettings::new(args).map_err(Failure::hinted)?,
                global,
                reporter,
            )
            .await
        }
        Command::Show(args) => show_cmd::run(&args),
        Command::Export(args) => {
            export_cmd::run(
                ExportSettings::new(args).map_err(Failure::hinted)?,
                global,
                reporter,
            )
            .await
        }
        Command::Completions(args) => help_cmd::print_completions(args.shell),
        Command::Man => help_cmd::print_man_page(),
        Command::Lock(LockCommand::Status(args)) => {
            lock_cmd::status(LockStatusSettings::new(args), global, reporter).await
        }
        Command::Lock(LockCommand::Release(args)) => {
            lock_cmd::release(
                LockReleaseSettings::new(args).map_err(Failure::hinted)?,
                global,
                reporter,
            )
            .await
        }
        Command::Sim(SimCommand::Serve(args)) => {
            sim_cmd::serve(sim_serve_config(args).map_err(Failure::hinted)?, reporter).await
        }
    }
}
