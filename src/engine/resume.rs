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

/// Why there is nothing to resume; every message says what to do instead.
#[derive(Debug, thiserror::Error)]
pub enum ResumeError {
    #[error("nothing to resume: the journal {} has no failover of this topology", path.display())]
    NoFailover { path: std::path::PathBuf },
    #[error("nothing to resume: the last failover (run {run_id}) ended {outcome:?}: {message}")]
    Finished {
        run_id: String,
        outcome: RunOutcome,
        message: String,
    },
    #[error("run {run_id} has no start record in the journal")]
    NoStart { run_id: String },
    #[error(
        "the topology changed since run {run_id} (sha256 {then} then, {now} now): resuming could follow a different plan; review `edgefail plan` and start a new failover instead"
    )]
    TopologyChanged {
        run_id: String,
        then: String,
        now: String,
    },
    #[error(
        "{flag} {given} differs from run {run_id} ({flag} {was}); resume continues that run as it was"
    )]
    PoolDiffers {
        flag: &'static str,
        given: String,
        run_id: String,
        was: String,
    },
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
) -> Result<Resume, ResumeError> {
    let Some(run) = contents.runs.iter().rev().find(|r| r.is_apply_run()) else {
        return Err(ResumeError::NoFailover {
            path: path.to_path_buf(),
        });
    };
    if !run.is_unfinished() {
        let (outcome, _, message) = run.finished().unwrap_or((RunOutcome::Completed, 0, ""));
        return Err(ResumeError::Finished {
            run_id: printable(&run.run_id),
            outcome,
            message: printable(message),
        });
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
        return Err(ResumeError::NoStart {
            run_id: printable(&run.run_id),
        });
    };
    let now = journal::sha256_hex(topology_text.as_bytes());
    if &now != topology_sha256 {
        return Err(ResumeError::TopologyChanged {
            run_id: printable(&run.run_id),
            then: printable(topology_sha256.get(..12).unwrap_or(topology_sha256)),
            now: now.get(..12).unwrap_or(&now).to_string(),
        });
    }
    for (flag, given, was) in [("--from", from, was_from), ("--to", to, was_to)] {
        if let Some(g) = given
            && !g.eq_ignore_ascii_case(was)
        {
            return Err(ResumeError::PoolDiffers {
                flag,
                given: printable(g),
                run_id: printable(&run.run_id),
                was: printable(was),
            });
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
