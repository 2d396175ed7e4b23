//! `failover --resume`: find the run to continue in the journal, or say
//! exactly why there is none.

use std::collections::HashMap;
use std::path::Path;

use crate::event::{Event, RunOutcome};
use crate::journal::{self, Contents, Left};
use crate::names::printable;
use crate::steps::StepId;

/// What `--resume` continues.
#[derive(Debug, Clone)]
pub struct Resume {
    pub run_id: String,
    /// The runbook checksum of that run: a resume must follow the same one.
    pub plan_sha256: String,
    /// What that run (and the runs it resumed) left each step in.
    pub left: HashMap<StepId, Left>,
    pub from: String,
    pub to: String,
    pub skipped: Vec<StepId>,
}

/// The last unfinished failover in `contents` (the journal at `path`), if
/// the topology is still the one it ran with and the pools given (if any)
/// are its pools.
pub fn find(
    contents: &Contents,
    path: &Path,
    topology_text: &str,
    from: Option<&str>,
    to: Option<&str>,
) -> Result<Resume, String> {
    let Some(run) = contents.runs.iter().rev().find(|r| r.is_apply_run()) else {
        return Err(format!(
            "nothing to resume: the journal {} has no failover of this topology",
            path.display()
        ));
    };
    if !run.is_unfinished() {
        let (outcome, _, message) = run.finished().unwrap_or((RunOutcome::Completed, 0, ""));
        return Err(format!(
            "nothing to resume: the last failover (run {}) ended {:?}: {}",
            printable(&run.run_id),
            outcome,
            printable(message)
        ));
    }
    let Some(Event::RunStarted {
        from: was_from,
        to: was_to,
        topology_sha256,
        plan_sha256,
        skipped,
        ..
    }) = run.started()
    else {
        return Err(format!(
            "run {} has no start record in the journal",
            printable(&run.run_id)
        ));
    };
    let now = journal::sha256_hex(topology_text.as_bytes());
    if &now != topology_sha256 {
        return Err(format!(
            "the topology changed since run {} (sha256 {} then, {} now): resuming could follow a different plan; review `edgefail plan` and start a new failover instead",
            printable(&run.run_id),
            printable(topology_sha256.get(..12).unwrap_or(topology_sha256)),
            now.get(..12).unwrap_or(&now)
        ));
    }
    for (flag, given, was) in [("--from", from, was_from), ("--to", to, was_to)] {
        if let Some(g) = given
            && !g.eq_ignore_ascii_case(was)
        {
            return Err(format!(
                "{flag} {} differs from run {} ({flag} {}); resume continues that run as it was",
                printable(g),
                printable(&run.run_id),
                printable(was)
            ));
        }
    }
    Ok(Resume {
        run_id: run.run_id.clone(),
        plan_sha256: plan_sha256.clone(),
        left: journal::left_by(contents, run),
        from: was_from.clone(),
        to: was_to.clone(),
        skipped: skipped.clone(),
    })
}
