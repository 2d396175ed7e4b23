//! `edgefail completions SHELL` and `edgefail man`: the shell completion
//! scripts (clap_complete) and the manual page (clap_mangen), both made
//! from the same command-line definition as `--help`.

use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs};
use crate::exit::{CommandResult, Exit, OrExit};
use crate::report;

pub fn completions(args: &CompletionsArgs) -> CommandResult {
    let mut command = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut command, "edgefail", &mut out);
    report::write_stdout(&out);
    Ok(Exit::Ok)
}

pub fn man() -> CommandResult {
    let command = Cli::command();
    let mut out = Vec::new();
    clap_mangen::Man::new(command)
        .render(&mut out)
        .or_exit(Exit::StepFailed)?;
    report::write_stdout(&out);
    Ok(Exit::Ok)
}
