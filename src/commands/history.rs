//! `edgefail history`: past runs from the journal, or one run's events.

use anyhow::anyhow;

use crate::cli::HistoryArgs;
use crate::event::Origin;
use crate::exit::{CommandResult, Exit, OrExit};
use crate::journal;
use crate::names::printable;
use crate::report;
use crate::settings;

pub fn run(args: HistoryArgs) -> CommandResult {
    let path = settings::journal_path(&args.topology.path, &args.journal)?;
    let contents = journal::read(&path).or_exit(Exit::Usage)?;
    // Journal problems go where the output goes (JSON: `warning` lines).
    let events = super::events(args.output, false);
    for p in &contents.problems {
        events.emit(&super::warning(Origin::Journal, p.clone()));
    }
    let Some(id) = args.run else {
        report::history::list(&path, &contents, args.output);
        return Ok(Exit::Ok);
    };
    let Some(run) = contents.run(&id) else {
        let ids: Vec<String> = contents.runs.iter().map(|r| printable(&r.run_id)).collect();
        return Err(anyhow!(
            "no run {} in {} (runs: {})",
            printable(&id),
            path.display(),
            if ids.is_empty() {
                "none".to_string()
            } else {
                ids.join(", ")
            }
        )
        .into());
    };
    report::history::show(run, args.output);
    Ok(Exit::Ok)
}
