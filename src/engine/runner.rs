//! One run from start to end, the same for `plan`, `failover` and
//! `rehearse`: announce it, plan (every check), stop there or ask the
//! operator, execute, and close with the outcome. The caller has settled
//! the context (pools, machines, event stream, operator) and the journal.

use std::collections::HashMap;

use crate::event::{ApprovedPlan, RunOutcome, Seen};
use crate::exit::Exit;
use crate::journal;
use crate::steps::{Ctx, Entry, StepId};

use super::resume::Resume;
use super::{Confirmed, Engine, Finish, RunInfo};

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
    /// `failover --plan FILE`: the approved plan this run applies exactly.
    pub approved: Option<Approved>,
}

/// An approved plan: each step's readings when it was made, and the file.
#[derive(Debug, Clone)]
pub struct Approved {
    pub readings: HashMap<StepId, Vec<Seen>>,
    /// The runbook the plan was made for (pools, steps, skips).
    pub runbook_sha256: String,
    pub file: ApprovedPlan,
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
        approved,
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
        approved_plan: approved.as_ref().map(|a| a.file.clone()),
    });
    if let Some(a) = &approved
        && engine.plan_sha256() != a.runbook_sha256
    {
        return Ok(stop(
            &mut engine,
            RunOutcome::PlanMismatch,
            Exit::PlanMismatch,
            format!(
                "the approved plan {} was made for another runbook (its steps differ from this edgefail's); nothing was changed: make and approve a new plan",
                a.file.path
            ),
        ));
    }
    if applying && let Some(why) = ctx.events.broken() {
        return Ok(stop(
            &mut engine,
            RunOutcome::Failed,
            Exit::JournalUnwritable,
            format!(
                "{why}; a failover that cannot be recorded is not started: nothing was changed"
            ),
        ));
    }
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
    let confirmed = match &approved {
        Some(a) => Confirmed {
            readings: a.readings.clone(),
            source: format!(
                "the approved plan {} (made by {} at {})",
                a.file.path, a.file.created_by, a.file.created_at
            ),
        },
        None => Confirmed {
            readings: plan.readings.clone(),
            source: "the plan shown above".into(),
        },
    };
    if approved.is_some() {
        // Refuse before anything changes when the world moved since the
        // plan was approved; each step is compared again before it runs.
        let mut moved = Vec::new();
        for (id, _) in &plan.checks {
            let now = plan.readings.get(id).map(Vec::as_slice).unwrap_or(&[]);
            moved.extend(
                confirmed
                    .moved(*id, now)
                    .into_iter()
                    .map(|m| format!("{id}: {m}")),
            );
        }
        if !moved.is_empty() {
            return Ok(stop(
                &mut engine,
                RunOutcome::PlanMismatch,
                Exit::PlanMismatch,
                format!(
                    "the world moved since {}: {}; nothing was changed: make and approve a new plan",
                    confirmed.source,
                    moved.join("; ")
                ),
            ));
        }
    }
    if approved.is_none() && mode == (Mode::Apply { confirm: true }) {
        let answer = confirm(ctx).await;
        if answer != Answer::Yes {
            // Ctrl-C at the prompt is a "no" said another way: nothing was
            // sent anywhere, so the run ends declined (exit 5), not
            // interrupted, and leaves nothing to resume.
            let finish = Finish {
                outcome: RunOutcome::Declined,
                exit: Exit::Declined,
            };
            let message = if answer == Answer::Interrupted {
                "interrupted at the confirmation prompt; nothing was changed"
            } else {
                "not confirmed; nothing was changed"
            };
            engine.finish(finish, message.into());
            return Ok(finish);
        }
    }
    if ctx.cancel.is_set() {
        return Ok(stop(
            &mut engine,
            RunOutcome::Declined,
            Exit::Declined,
            "interrupted before anything was changed".into(),
        ));
    }
    ctx.cancel.mark_changing();
    let (finish, message) = engine.execute(&left, &confirmed).await;
    engine.finish(finish, message);
    Ok(finish)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Yes,
    No,
    /// Ctrl-C (or SIGTERM) while the question was open.
    Interrupted,
}

/// Ask the operator; only "yes" proceeds, and an interruption ends the
/// question at once (the answer is not waited for).
async fn confirm(ctx: &Ctx) -> Answer {
    let prompt = format!(
        "\nMove XMPP federation from {} to {} as planned above? Type 'yes' to proceed: ",
        ctx.from().pool.name,
        ctx.to().pool.name
    );
    if ctx.cancel.is_set() {
        return Answer::Interrupted;
    }
    tokio::select! {
        yes = ctx.operator.ask(&prompt, "yes") => if yes { Answer::Yes } else { Answer::No },
        () = ctx.cancel.wait() => Answer::Interrupted,
    }
}

/// End the run before anything (further) is changed: say why, and hand
/// back how it ended.
fn stop(engine: &mut Engine<'_>, outcome: RunOutcome, exit: Exit, message: String) -> Finish {
    let finish = Finish { outcome, exit };
    engine.finish(finish, message);
    finish
}
