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

/// edgefail(1), then a page per subcommand (edgefail-plan and so on) with
/// its options, examples and exit codes, in one roff stream.
pub fn man() -> CommandResult {
    let mut command = Cli::command();
    command.build();
    let mut out = Vec::new();
    clap_mangen::Man::new(command.clone())
        .render(&mut out)
        .or_exit(Exit::StepFailed)?;
    for sub in command.get_subcommands().filter(|s| s.get_name() != "help") {
        let title = format!("edgefail-{}", sub.get_name());
        clap_mangen::Man::new(sub.clone())
            .title(title)
            .render(&mut out)
            .or_exit(Exit::StepFailed)?;
    }
    report::write_stdout(&out);
    Ok(Exit::Ok)
}
