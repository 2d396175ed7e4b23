//! `edgefail report [RUN]`: a run's change record, in Markdown, from the
//! journal (see `changerecord`).

use anyhow::anyhow;

use crate::cli::ReportArgs;
use crate::exit::{CommandResult, Exit, OrExit};
use crate::journal;
use crate::names::printable;
use crate::settings;

pub fn run(args: ReportArgs) -> CommandResult {
    let path = settings::journal_path(&args.topology.path, &args.journal)?;
    let contents = journal::read(&path).or_exit(Exit::Usage)?;
    let run = match &args.run {
        Some(id) => contents.run(id).ok_or_else(|| {
            anyhow!(
                "no run {} in {} (`edgefail history` lists them)",
                printable(id),
                path.display()
            )
        })?,
        None => contents
            .runs
            .iter()
            .rev()
            .find(|r| r.started().is_some())
            .ok_or_else(|| anyhow!("no run in {} to report", path.display()))?,
    };
    let text = crate::changerecord::markdown(run);
    match &args.out {
        Some(out) => std::fs::write(out, text)
            .map_err(|e| anyhow!("cannot write {}: {e}", out.display()))
            .or_exit(Exit::StepFailed)?,
        None => crate::report::say(text.trim_end()),
    }
    Ok(Exit::Ok)
}
