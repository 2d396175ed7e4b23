//! One run from start to end, the same for `plan`, `failover` and
//! `rehearse`: announce it, plan (every check), stop there or ask the
//! operator, execute, and close with the outcome. The caller has settled
//! the context (pools, machines, event stream, operator) and the journal.

use crate::event::RunOutcome;
use crate::exit::Exit;
use crate::journal;
use crate::steps::{Ctx, Entry, StepId};

use super::resume::Resume;
use super::{Engine, Finish, RunInfo};

/// What kind of run this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `plan`: every check, nothing changed.
    Plan,
    /// `failover --dry-run`: the same, under the failover name.
    DryRun,
    /// `failover`: plan, confirm (unless `confirm` is false), execute.
    Apply { confirm: bool },
}

/// A run whose context, journal and resume are settled.
pub struct Run<'a> {
    pub ctx: &'a Ctx,
    pub mode: Mode,
    /// The steps, in order (`steps::runbook()`).
    pub runbook: Vec<Entry>,
    pub skip: Vec<StepId>,
    pub run_id: &'a str,
    /// user@host.
    pub operator: &'a str,
    pub topology_path: &'a str,
    /// The topology file's bytes, for its checksum.
    pub topology_text: &'a str,
    pub resume: Option<Resume>,
}

/// Why a run was refused before it started.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(
        "cannot resume: run {run_id} followed a different runbook (steps or --skip differ); start a new failover instead"
    )]
    RunbookChanged { run_id: String },
}

/// Plan, confirm and execute through the engine; every outcome goes out on
/// the context's event stream. The run's finish (outcome and exit code), or
/// why a resume is refused before anything starts.
pub async fn run(r: Run<'_>) -> Result<Finish, RunError> {
    let ctx = r.ctx;
    let result = run_sessions_open(r).await;
    ctx.close().await;
    result
}

/// [`run`], the machines' sessions left to the caller to close.
async fn run_sessions_open(r: Run<'_>) -> Result<Finish, RunError> {
    let Run {
        ctx,
        mode,
        runbook,
        skip,
        run_id,
        operator,
        topology_path,
        topology_text,
        resume,
    } = r;
    let applying = matches!(mode, Mode::Apply { .. });
    let mut engine = Engine::new(ctx, runbook, skip);
    if let Some(r) = &resume
        && engine.plan_sha256() != r.plan_sha256
    {
        return Err(RunError::RunbookChanged {
            run_id: r.run_id.clone(),
        });
    }
    let topology_sha256 = journal::sha256_hex(topology_text.as_bytes());
    engine.start(RunInfo {
        run_id,
        command: if mode == Mode::Plan {
            "plan"
        } else {
            "failover"
        },
        dry_run: !applying,
        topology: topology_path,
        topology_sha256: &topology_sha256,
        operator,
        resumes: resume.as_ref().map(|r| r.run_id.as_str()),
    });
    let left = resume.map(|r| r.left).unwrap_or_default();
    ctx.warm_up();
    let plan = engine.plan(&left).await;
    let (finish, message) = engine.plan_finish(&plan);
    if !applying || finish.outcome != RunOutcome::ChangesPending {
        let message = if applying && finish.outcome == RunOutcome::Incomplete {
            "the plan is incomplete (see the steps above); nothing was changed".to_string()
        } else {
            message
        };
        engine.finish(finish, message);
        return Ok(finish);
    }
    if mode == (Mode::Apply { confirm: true }) && !confirm(ctx).await {
        let finish = Finish {
            outcome: RunOutcome::Declined,
            exit: Exit::Declined,
        };
        engine.finish(finish, "not confirmed; nothing was changed".into());
        return Ok(finish);
    }
    let (finish, message) = engine.execute(&left).await;
    engine.finish(finish, message);
    Ok(finish)
}

/// Ask the operator; only "yes" proceeds.
async fn confirm(ctx: &Ctx) -> bool {
    ctx.operator
        .ask(
            &format!(
                "\nMove XMPP federation from {} to {} as planned above? Type 'yes' to proceed: ",
                ctx.from().pool.name,
                ctx.to().pool.name
            ),
            "yes",
        )
        .await
}
