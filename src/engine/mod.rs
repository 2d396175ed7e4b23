//! Runs the runbook: the plan (every check, nothing changed), then, for a
//! failover, each step in order as check -> apply -> verify, stopping at the
//! first step that fails. Everything it learns goes out as events on the
//! run's event stream. [`runner`] drives a whole run on top of it.

pub mod resume;
pub mod runner;
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use crate::event::{
    self, ApprovedPlan, EstateReading, EstateState, Event, Outcome, Phase, RunOutcome, Seen,
    StepInfo,
};
use crate::exit::Exit;
use crate::journal::Left;
use crate::steps::{CheckState, Ctx, Entry, Reading, StepId};

pub struct Engine<'a> {
    ctx: &'a Ctx,
    steps: Vec<Entry>,
    skip: Vec<StepId>,
    started: Instant,
    counts: BTreeMap<Outcome, usize>,
    /// The topology path the run was started with (for the next command).
    topology: String,
    /// Steps this run applied, those whose apply failed (they may have
    /// changed part of what they touch), and those it verified.
    applied: Vec<StepId>,
    attempted: Vec<StepId>,
    verified: Vec<StepId>,
    /// The state of the estate, read when the run stopped short.
    estate: Option<EstateState>,
}

/// The plan: each step's check state, in order (`None`: skipped), and what
/// each check read.
pub struct Plan {
    pub checks: Vec<(StepId, Option<CheckState>)>,
    pub readings: HashMap<StepId, Vec<Seen>>,
}

/// What the operator confirmed: each step's readings when the plan was
/// made. A failover compares every step's fresh reading with these right
/// before applying it, and stops (exit 8) when the world moved since.
#[derive(Debug, Clone)]
pub struct Confirmed {
    pub readings: HashMap<StepId, Vec<Seen>>,
    /// Where they come from, for messages ("the plan confirmed above").
    pub source: String,
}

impl Confirmed {
    /// What moved for `id`: one line per reading that differs.
    pub fn moved(&self, id: StepId, now: &[Seen]) -> Vec<String> {
        let was = self.readings.get(&id).map(Vec::as_slice).unwrap_or(&[]);
        let mut lines = Vec::new();
        for w in was {
            match now.iter().find(|n| n.what == w.what) {
                Some(n) if n.value == w.value => {}
                Some(n) => lines.push(format!("{}: was {}, now {}", w.what, w.value, n.value)),
                None => lines.push(format!("{}: was {}, now not read", w.what, w.value)),
            }
        }
        for n in now {
            if !was.iter().any(|w| w.what == n.what) {
                lines.push(format!("{}: not in the plan, now {}", n.what, n.value));
            }
        }
        lines
    }
}

impl Plan {
    fn states(&self) -> impl Iterator<Item = CheckState> + '_ {
        self.checks.iter().filter_map(|(_, c)| *c)
    }

    pub fn has_changes(&self) -> bool {
        self.states().any(|s| s == CheckState::WouldChange)
    }

    /// A step could not be read or is blocked: the plan cannot be trusted.
    pub fn is_incomplete(&self) -> bool {
        self.states()
            .any(|s| matches!(s, CheckState::CannotTell | CheckState::Blocked))
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy)]
pub struct Finish {
    pub outcome: RunOutcome,
    pub exit: Exit,
}

fn check_outcome(state: CheckState) -> Outcome {
    match state {
        CheckState::Done => Outcome::AlreadyDone,
        CheckState::WouldChange => Outcome::WouldChange,
        CheckState::CannotTell => Outcome::CannotTell,
        CheckState::Blocked => Outcome::Blocked,
    }
}

pub struct RunInfo<'a> {
    pub run_id: &'a str,
    pub command: &'a str,
    pub dry_run: bool,
    pub topology: &'a str,
    pub topology_sha256: &'a str,
    pub operator: &'a str,
    pub resumes: Option<&'a str>,
    pub approved_plan: Option<ApprovedPlan>,
}

impl<'a> Engine<'a> {
    pub fn new(ctx: &'a Ctx, steps: Vec<Entry>, skip: Vec<StepId>) -> Engine<'a> {
        Engine {
            ctx,
            steps,
            skip,
            started: Instant::now(),
            counts: BTreeMap::new(),
            topology: String::new(),
            applied: Vec::new(),
            attempted: Vec::new(),
            verified: Vec::new(),
            estate: None,
        }
    }

    fn emit(&mut self, event: Event) {
        if let Event::PhaseFinished { outcome, .. } = &event {
            *self.counts.entry(*outcome).or_default() += 1;
        }
        self.ctx.emit(event);
    }

    /// The checksum of the runbook a run follows: which pools, which steps,
    /// which skipped. A resume must follow the same one.
    pub fn plan_sha256(&self) -> String {
        let steps: Vec<&str> = self.steps.iter().map(|s| s.id().as_str()).collect();
        let skip: Vec<&str> = self.skip.iter().map(|s| s.as_str()).collect();
        crate::journal::sha256_hex(
            format!(
                "from={}\nto={}\nsteps={}\nskip={}",
                self.ctx.from().pool.name,
                self.ctx.to().pool.name,
                steps.join(","),
                skip.join(",")
            )
            .as_bytes(),
        )
    }

    pub fn start(&mut self, info: RunInfo<'_>) {
        let steps = self
            .steps
            .iter()
            .map(|s| StepInfo {
                step: s.id(),
                number: s.id().number(),
                title: s.title(self.ctx),
            })
            .collect();
        let plan_sha256 = self.plan_sha256();
        self.topology = info.topology.to_string();
        self.emit(Event::RunStarted {
            format: event::FORMAT,
            run_id: info.run_id.to_string(),
            command: info.command.to_string(),
            from: self.ctx.from().pool.name.clone(),
            to: self.ctx.to().pool.name.clone(),
            dry_run: info.dry_run,
            topology: info.topology.to_string(),
            topology_sha256: info.topology_sha256.to_string(),
            plan_sha256,
            operator: info.operator.to_string(),
            at: event::now(),
            steps,
            skipped: self.skip.clone(),
            resumes: info.resumes.map(str::to_string),
            utc_offset_secs: crate::platform::utc_offset_secs(std::time::SystemTime::now()),
            approved_plan: info.approved_plan,
        });
    }

    async fn check(
        &mut self,
        index: usize,
        prior: &[(StepId, CheckState)],
        left: Option<&Left>,
    ) -> Option<Reading> {
        let id = self.steps[index].id();
        let at = Instant::now();
        self.ctx.emit(Event::PhaseStarted {
            step: id,
            phase: Phase::Check,
            at: event::now(),
        });
        self.ctx.progress(event::Progress::CommandTimeout(
            self.ctx.opts.command_timeout,
        ));
        if self.skip.contains(&id) {
            self.emit(Event::PhaseFinished {
                step: id,
                phase: Phase::Check,
                outcome: Outcome::Skipped,
                summary: "skipped by --skip: make sure it is done by other means".into(),
                changes: Vec::new(),
                seen: Vec::new(),
                details: Vec::new(),
                duration_ms: 0,
            });
            return None;
        }
        let mut check = self.steps[index].check(self.ctx, prior).await;
        // On resume, say what an earlier run left this step in.
        match (left, check.state) {
            (Some(Left::Verified { run_id }), CheckState::Done) => {
                check.summary = format!(
                    "re-verified, not redone (verified in run {run_id}): {}",
                    check.summary
                );
            }
            (Some(Left::Verified { run_id }), _) => {
                check.summary = format!(
                    "verified in run {run_id} but no longer so: {}",
                    check.summary
                );
            }
            (Some(Left::Dirty { run_id, why }), _) => {
                check.summary = format!(
                    "resumed: in run {run_id} {why}; the check decides: {}",
                    check.summary
                );
            }
            (None, _) => {}
        }
        self.emit(Event::PhaseFinished {
            step: id,
            phase: Phase::Check,
            outcome: check_outcome(check.state),
            summary: check.summary.clone(),
            changes: check.changes.clone(),
            seen: check.seen.clone(),
            details: check.details.clone(),
            duration_ms: at.elapsed().as_millis() as u64,
        });
        Some(check)
    }

    /// Run every check; change nothing. `left` labels steps an earlier run
    /// touched (on resume).
    pub async fn plan(&mut self, left: &HashMap<StepId, Left>) -> Plan {
        let mut prior: Vec<(StepId, CheckState)> = Vec::new();
        let mut checks = Vec::new();
        let mut readings = HashMap::new();
        for i in 0..self.steps.len() {
            if self.ctx.cancel.is_set() {
                break;
            }
            let id = self.steps[i].id();
            let check = self.check(i, &prior, left.get(&id)).await;
            let state = check.as_ref().map(|c| c.state);
            if let Some(c) = check {
                prior.push((id, c.state));
                readings.insert(id, c.seen);
            }
            checks.push((id, state));
        }
        Plan { checks, readings }
    }

    /// The outcome of a plan-only run (plan, --dry-run).
    pub fn plan_finish(&self, plan: &Plan) -> (Finish, String) {
        if self.ctx.cancel.is_set() {
            Engine::interrupted("while planning; nothing was changed".into())
        } else if plan.is_incomplete() {
            (
                Finish {
                    outcome: RunOutcome::Incomplete,
                    exit: Exit::StepFailed,
                },
                "some steps could not be checked or are blocked; see above".into(),
            )
        } else if plan.has_changes() {
            (
                Finish {
                    outcome: RunOutcome::ChangesPending,
                    exit: Exit::ChangesPending,
                },
                "changes are pending; nothing was changed".into(),
            )
        } else {
            (
                Finish {
                    outcome: RunOutcome::NothingToDo,
                    exit: Exit::Ok,
                },
                "every step is already done; nothing to change".into(),
            )
        }
    }

    fn interrupted(what: String) -> (Finish, String) {
        (
            Finish {
                outcome: RunOutcome::Interrupted,
                exit: Exit::Interrupted,
            },
            format!("interrupted {what}; `edgefail failover --resume` continues from here"),
        )
    }

    /// A run that cannot be recorded changes nothing more.
    fn unrecorded(&self, before: StepId) -> Option<(Finish, String)> {
        let why = self.ctx.events.broken()?;
        Some((
            Finish {
                outcome: RunOutcome::Failed,
                exit: Exit::JournalUnwritable,
            },
            format!(
                "{why}; stopped before applying {before}: nothing further was changed (free space or fix the permissions, or choose another journal with --journal PATH, then `edgefail failover --resume`)"
            ),
        ))
    }

    /// The apply phase of step `i`; Err ends the run.
    async fn apply_phase(&mut self, i: usize, check: &Reading) -> Result<(), (Finish, String)> {
        let Entry::Changes(step) = &self.steps[i] else {
            return Ok(());
        };
        let id = step.id();
        let at = Instant::now();
        self.ctx.emit(Event::PhaseStarted {
            step: id,
            phase: Phase::Apply,
            at: event::now(),
        });
        self.ctx.progress(event::Progress::CommandTimeout(
            self.ctx.opts.command_timeout,
        ));
        crash_drill(id);
        let applied = step.apply(self.ctx).await;
        let ms = at.elapsed().as_millis() as u64;
        match applied {
            Ok(a) => {
                self.applied.push(id);
                self.emit(Event::PhaseFinished {
                    step: id,
                    phase: Phase::Apply,
                    outcome: Outcome::Changed,
                    summary: a.summary,
                    changes: check.changes.clone(),
                    seen: Vec::new(),
                    details: a.details,
                    duration_ms: ms,
                });
            }
            Err(f) => {
                // A failed apply may have changed part of what it touches
                // (some servers stopped, say): the survey reads it.
                self.attempted.push(id);
                let message = format!("{id} failed: {}; later steps were not run", f.summary);
                self.emit(Event::PhaseFinished {
                    step: id,
                    phase: Phase::Apply,
                    outcome: Outcome::Failed,
                    summary: f.summary,
                    changes: Vec::new(),
                    seen: Vec::new(),
                    details: f.details,
                    duration_ms: ms,
                });
                return Err((
                    Finish {
                        outcome: RunOutcome::Failed,
                        exit: Exit::StepFailed,
                    },
                    message,
                ));
            }
        }
        Ok(())
    }

    /// Run the steps for real, in order; stop at the first failure or
    /// interruption, or before a step whose reading moved since `confirmed`.
    /// `left` is what an earlier run left each step in. A run that stops
    /// short reads the estate back for its closing words (see
    /// [`Engine::survey`]).
    pub async fn execute(
        &mut self,
        left: &HashMap<StepId, Left>,
        confirmed: &Confirmed,
    ) -> (Finish, String) {
        let (finish, mut message) = self.execute_steps(left, confirmed).await;
        if matches!(
            finish.outcome,
            RunOutcome::Failed
                | RunOutcome::VerifyFailed
                | RunOutcome::Interrupted
                | RunOutcome::PlanMismatch
        ) {
            let fix = message.clone();
            let changed: Vec<&str> = self.applied.iter().map(|s| s.as_str()).collect();
            if !changed.is_empty() {
                message = format!(
                    "{message}; this run changed the estate before it stopped ({}): see its state below",
                    changed.join(", ")
                );
            }
            self.estate = Some(self.survey(left, &fix).await);
        }
        (finish, message)
    }

    /// Read the estate back after a run stopped short: every target
    /// server's services, the route, the A and SRV records, as the checks
    /// of the steps that change them read them now (not what the run
    /// believes it did).
    pub async fn survey(&self, left: &HashMap<StepId, Left>, fix: &str) -> EstateState {
        let mut readings = Vec::new();
        for id in [
            StepId::ServicesStart,
            StepId::RouteSet,
            StepId::DnsA,
            StepId::DnsSrv,
        ] {
            let Some(entry) = self.steps.iter().find(|s| s.id() == id) else {
                continue;
            };
            if self.skip.contains(&id) {
                readings.push(EstateReading {
                    step: id,
                    what: entry.title(self.ctx),
                    state: "not read: skipped by --skip".into(),
                });
                continue;
            }
            let reading = entry.check(self.ctx, &[]).await;
            match reading.state {
                CheckState::CannotTell | CheckState::Blocked => readings.push(EstateReading {
                    step: id,
                    what: entry.title(self.ctx),
                    state: format!("cannot tell: {}", reading.summary),
                }),
                _ if reading.changes.is_empty() => readings.push(EstateReading {
                    step: id,
                    what: entry.title(self.ctx),
                    state: reading.summary.clone(),
                }),
                _ => readings.extend(reading.changes.iter().map(|c| EstateReading {
                    step: id,
                    what: c.what.clone(),
                    state: c.old.clone(),
                })),
            }
        }
        let mut steps_done: Vec<StepId> = Vec::new();
        for entry in &self.steps {
            let id = entry.id();
            let earlier = matches!(left.get(&id), Some(Left::Verified { .. }));
            if self.verified.contains(&id) || earlier {
                steps_done.push(id);
            }
        }
        let steps_unverified = self
            .applied
            .iter()
            .chain(self.attempted.iter())
            .filter(|s| !self.verified.contains(s))
            .copied()
            .collect();
        EstateState {
            steps_done,
            steps_unverified,
            readings,
            fix: fix.to_string(),
            next: format!(
                "edgefail failover --resume -t {}",
                crate::names::printable(&self.topology)
            ),
        }
    }

    async fn execute_steps(
        &mut self,
        left: &HashMap<StepId, Left>,
        confirmed: &Confirmed,
    ) -> (Finish, String) {
        let mut prior: Vec<(StepId, CheckState)> = Vec::new();
        let mut applied_any = false;
        for i in 0..self.steps.len() {
            let id = self.steps[i].id();
            if self.ctx.cancel.is_set() {
                return Engine::interrupted(format!("before {id}"));
            }
            let Some(check) = self.check(i, &prior, left.get(&id)).await else {
                continue;
            };
            prior.push((id, check.state));
            // A compare-and-swap against the re-check would overwrite a
            // change someone made after the operator confirmed: the
            // confirmed readings are the prerequisites.
            let moved = confirmed.moved(id, &check.seen);
            if !moved.is_empty() {
                let before = if applied_any {
                    "the steps before it were applied and verified"
                } else {
                    "nothing was changed"
                };
                return (
                    Finish {
                        outcome: RunOutcome::PlanMismatch,
                        exit: Exit::PlanMismatch,
                    },
                    format!(
                        "stopped before {id}: the world moved since {}: {}; {id} was not applied ({before}); find out who changed it, then `edgefail failover --resume` plans afresh from what is there now",
                        confirmed.source,
                        moved.join("; ")
                    ),
                );
            }
            match check.state {
                CheckState::Done => continue,
                CheckState::CannotTell | CheckState::Blocked => {
                    return (
                        Finish {
                            outcome: RunOutcome::Failed,
                            exit: Exit::StepFailed,
                        },
                        format!("stopped at {id}: {}", check.summary),
                    );
                }
                CheckState::WouldChange => {}
            }
            if self.ctx.cancel.is_set() {
                return Engine::interrupted(format!(
                    "before applying {id} (its check ran; it was not applied)"
                ));
            }

            if let Some(stop) = self.unrecorded(id) {
                return stop;
            }
            // A step that only looks has nothing to apply: its verify
            // waits for what it looks at.
            if let Err(stop) = self.apply_phase(i, &check).await {
                return stop;
            }
            applied_any = true;
            if self.ctx.cancel.is_set() {
                return Engine::interrupted(format!("after applying {id}, before verifying it"));
            }
            let at = Instant::now();
            self.ctx.emit(Event::PhaseStarted {
                step: id,
                phase: Phase::Verify,
                at: event::now(),
            });
            let verified = self.steps[i].verify(self.ctx).await;
            let ok = verified.holds;
            if ok {
                self.verified.push(id);
            }
            let summary = verified.summary.clone();
            self.emit(Event::PhaseFinished {
                step: id,
                phase: Phase::Verify,
                outcome: if ok {
                    Outcome::Verified
                } else {
                    Outcome::VerifyFailed
                },
                summary: verified.summary,
                changes: Vec::new(),
                seen: Vec::new(),
                details: verified.details,
                duration_ms: at.elapsed().as_millis() as u64,
            });
            if !ok && self.ctx.cancel.is_set() {
                return Engine::interrupted(format!("while verifying {id}"));
            }
            if !ok {
                return (
                    Finish {
                        outcome: RunOutcome::VerifyFailed,
                        exit: Exit::VerifyFailed,
                    },
                    format!(
                        "{id} was applied but did not verify: {summary}; later steps were not run"
                    ),
                );
            }
        }
        (
            Finish {
                outcome: RunOutcome::Completed,
                exit: Exit::Ok,
            },
            format!(
                "XMPP federation now runs through {}",
                self.ctx.to().pool.name
            ),
        )
    }

    pub fn finish(&mut self, finish: Finish, message: String) {
        let counts = self.counts.clone();
        let estate = self.estate.take();
        self.emit(Event::RunFinished {
            outcome: finish.outcome,
            exit_code: finish.exit.code(),
            message,
            counts,
            duration_ms: self.started.elapsed().as_millis() as u64,
            estate,
        });
    }
}

/// Debug builds only: `EDGEFAIL_DEBUG_PANIC_AT=<step id>` panics right
/// before that step's apply, so the tests can prove the crash path (the
/// panic hook's journal record and closing words). Release builds have no
/// such switch.
#[cfg(debug_assertions)]
fn crash_drill(id: StepId) {
    if std::env::var("EDGEFAIL_DEBUG_PANIC_AT").is_ok_and(|v| v == id.as_str()) {
        panic!("EDGEFAIL_DEBUG_PANIC_AT={id}: a crash on request");
    }
}

#[cfg(not(debug_assertions))]
fn crash_drill(_id: StepId) {}
