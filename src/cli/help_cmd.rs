//! `sextant completions` and `sextant man`: shell completion scripts and the man page, both
//! generated from the clap definitions so they always match the commands.

use std::io::Write;

use clap::CommandFactory;

use super::args::{Cli, Shell};
use super::{Failure, exit};

/// Writes the completion script of `shell` to stdout.
pub fn print_completions(shell: Shell) -> Result<i32, Failure> {
    let mut command = Cli::command();
    let mut out = Vec::new();
    let generator = match shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    clap_complete::generate(generator, &mut command, "sextant", &mut out);
    write_stdout(&out)
}

/// Writes the man page (roff): `sextant` itself, then a section per subcommand.
pub fn print_man_page() -> Result<i32, Failure> {
    let out = man_page().map_err(|err| Failure::with_source("cannot render the man page", err))?;
    write_stdout(&out)
}

fn man_page() -> std::io::Result<Vec<u8>> {
    let command = Cli::command();
    let mut out = Vec::new();
    clap_mangen::Man::new(command.clone()).render(&mut out)?;
    for sub in command.get_subcommands() {
        render_subcommand(&mut out, "sextant", sub)?;
    }
    Ok(out)
}

fn render_subcommand(out: &mut Vec<u8>, parent: &str, sub: &clap::Command) -> std::io::Result<()> {
    let name = format!("{parent} {}", sub.get_name());
    writeln!(out, ".SH \"{}\"", name.to_uppercase())?;
    let man = clap_mangen::Man::new(sub.clone().bin_name(name.clone()));
    man.render_description_section(out)?;
    man.render_synopsis_section(out)?;
    man.render_options_section(out)?;
    for nested in sub.get_subcommands() {
        render_subcommand(out, &name, nested)?;
    }
    Ok(())
}

fn write_stdout(bytes: &[u8]) -> Result<i32, Failure> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(bytes)
        .and_then(|()| stdout.flush())
        .map_err(|err| Failure::with_source("cannot write to stdout", err))?;
    Ok(exit::OK)
}
