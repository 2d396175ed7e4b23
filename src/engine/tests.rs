//! The engine and the runner over fake steps: the order of phases, what
//! stops a run, the typed plan hand-off, skips, confirmation and
//! interruption, without any machine, server or process.
#![cfg(test)]

use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::runner::{self, Mode, Run};
use crate::event::{Emitter, Event, Outcome, Phase, RunOutcome, Sink, Sinks, StepId};
use crate::exit::Exit;
use crate::operator::{Absent, Operator, Scripted};
use crate::steps::{
    Applied, Check, CheckState, Ctx, Entry, Failure, Look, Prior, Step, Verified, fixture,
};

/// What the fakes did, in order.
type Log = Arc<Mutex<Vec<String>>>;

fn push(log: &Log, line: String) {
    log.lock().unwrap().push(line);
}

/// A changing step whose check finds `state`; its plan names the step and
/// the check count, so apply and verify show which plan they got.
struct FakeStep {
    id: StepId,
    state: CheckState,
    apply_ok: bool,
    verify_ok: bool,
    checks: Mutex<u32>,
    log: Log,
}

#[async_trait]
impl Step for FakeStep {
    type Plan = String;

    fn id(&self) -> StepId {
        self.id
    }

    fn title(&self, _ctx: &Ctx) -> String {
        format!("fake {}", self.id)
    }

    async fn check(&self, _ctx: &Ctx, prior: Prior<'_>) -> Check<String> {
        let n = {
            let mut c = self.checks.lock().unwrap();
            *c += 1;
            *c
        };
        push(
            &self.log,
            format!("check {} (prior {})", self.id, prior.len()),
        );
        match self.state {
            CheckState::WouldChange => {
                Check::change("would change", Vec::new(), format!("{}#{n}", self.id))
            }
            CheckState::Done => Check::done("already"),
            CheckState::CannotTell => Check::cannot_tell("unreadable"),
            CheckState::Blocked => Check::blocked("no way"),
        }
    }

    async fn apply(&self, _ctx: &Ctx, plan: &String) -> Result<Applied, Failure> {
        push(&self.log, format!("apply {} with {plan}", self.id));
        if self.apply_ok {
            Ok(Applied {
                summary: "done it".into(),
                details: Vec::new(),
            })
        } else {
            Err(Failure::new("it broke"))
        }
    }

    async fn verify(&self, _ctx: &Ctx, plan: &String) -> Verified {
        push(&self.log, format!("verify {} with {plan}", self.id));
        Verified {
            holds: self.verify_ok,
            summary: "read back".into(),
            details: Vec::new(),
        }
    }
}

/// A step that only looks.
struct FakeLook {
    id: StepId,
    state: CheckState,
    log: Log,
}

#[async_trait]
impl Look for FakeLook {
    fn id(&self) -> StepId {
        self.id
    }

    fn title(&self, _ctx: &Ctx) -> String {
        format!("fake look {}", self.id)
    }

    async fn check(&self, _ctx: &Ctx, _prior: Prior<'_>) -> Check<()> {
        push(&self.log, format!("check {}", self.id));
        match self.state {
            CheckState::WouldChange => Check::waits("not yet"),
            CheckState::Done => Check::done("fine"),
            CheckState::CannotTell => Check::cannot_tell("unreadable"),
            CheckState::Blocked => Check::blocked("no way"),
        }
    }

    async fn verify(&self, _ctx: &Ctx) -> Verified {
        push(&self.log, format!("verify {}", self.id));
        Verified {
            holds: true,
            summary: "seen".into(),
            details: Vec::new(),
        }
    }
}

fn step(id: StepId, state: CheckState, log: &Log) -> FakeStep {
    FakeStep {
        id,
        state,
        apply_ok: true,
        verify_ok: true,
        checks: Mutex::new(0),
        log: log.clone(),
    }
}

/// Every event, kept.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Event>>>);

impl Sink for Recorder {
    fn event(&mut self, event: &Event) {
        self.0.lock().unwrap().push(event.clone());
    }
}

impl Recorder {
    fn phases(&self, id: StepId) -> Vec<(Phase, Outcome)> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                Event::PhaseFinished {
                    step,
                    phase,
                    outcome,
                    ..
                } if *step == id => Some((*phase, *outcome)),
                _ => None,
            })
            .collect()
    }

    fn finished(&self) -> (RunOutcome, i32) {
        self.0
            .lock()
            .unwrap()
            .iter()
            .find_map(|e| match e {
                Event::RunFinished {
                    outcome, exit_code, ..
                } => Some((*outcome, *exit_code)),
                _ => None,
            })
            .expect("a run_finished event")
    }
}

fn ctx(recorder: &Recorder, operator: Arc<dyn Operator>) -> Ctx {
    Ctx::new(
        fixture::topology(),
        "EdgePool1",
        "EdgePool2",
        fixture::opts(),
    )
    .expect("pools")
    .with_events(Emitter::new(Sinks(vec![Box::new(recorder.clone())])))
    .with_operator(operator)
}

async fn run(ctx: &Ctx, mode: Mode, runbook: Vec<Entry>, skip: Vec<StepId>) -> Exit {
    runner::run(Run {
        ctx,
        mode,
        runbook,
        skip,
        run_id: "test-run",
        operator: "tester@here",
        topology_path: "t.yaml",
        topology_text: fixture::TOPOLOGY,
        resume: None,
        approved: None,
    })
    .await
    .expect("not a resume")
    .exit
}

#[tokio::test]
async fn a_plan_checks_every_step_and_changes_nothing() {
    let log = Log::default();
    let rec = Recorder::default();
    let ctx = ctx(&rec, Arc::new(Absent));
    let runbook = vec![
        Entry::changes(step(StepId::ServicesStop, CheckState::WouldChange, &log)),
        Entry::looks(FakeLook {
            id: StepId::PortCheck,
            state: CheckState::Done,
            log: log.clone(),
        }),
    ];
    assert_eq!(
        run(&ctx, Mode::Plan, runbook, Vec::new()).await,
        Exit::ChangesPending
    );
    assert_eq!(
        *log.lock().unwrap(),
        ["check services.stop (prior 0)", "check port.check"]
    );
    assert_eq!(rec.finished(), (RunOutcome::ChangesPending, 4));
}

#[tokio::test]
async fn a_failover_checks_twice_then_applies_and_verifies_with_the_fresh_plan() {
    let log = Log::default();
    let rec = Recorder::default();
    let ctx = ctx(&rec, Arc::new(Absent));
    let runbook = vec![
        Entry::looks(FakeLook {
            id: StepId::PoolDeployed,
            state: CheckState::Done,
            log: log.clone(),
        }),
        Entry::changes(step(StepId::RouteSet, CheckState::WouldChange, &log)),
        Entry::changes(step(StepId::DnsA, CheckState::Done, &log)),
        Entry::looks(FakeLook {
            id: StepId::FederationCheck,
            state: CheckState::WouldChange,
            log: log.clone(),
        }),
    ];
    let code = run(&ctx, Mode::Apply { confirm: false }, runbook, Vec::new()).await;
    assert_eq!(code, Exit::Ok);
    assert_eq!(
        *log.lock().unwrap(),
        [
            // The plan.
            "check pool.deployed",
            "check route.set (prior 1)",
            "check dns.a (prior 2)",
            "check federation.check",
            // The run: each step checked again right before it is applied,
            // and apply gets the plan of that second check.
            "check pool.deployed",
            "check route.set (prior 1)",
            "apply route.set with route.set#2",
            "verify route.set with route.set#2",
            "check dns.a (prior 2)",
            // A look that waits has no apply: its verify waits.
            "check federation.check",
            "verify federation.check",
        ]
    );
    assert_eq!(
        rec.phases(StepId::RouteSet),
        [
            (Phase::Check, Outcome::WouldChange),
            (Phase::Check, Outcome::WouldChange),
            (Phase::Apply, Outcome::Changed),
            (Phase::Verify, Outcome::Verified),
        ]
    );
    assert_eq!(rec.finished(), (RunOutcome::Completed, 0));
}

#[tokio::test]
async fn a_failed_apply_stops_the_run_and_a_failed_verify_says_so() {
    let log = Log::default();
    let rec = Recorder::default();
    let ctx = ctx(&rec, Arc::new(Absent));
    let mut broken = step(StepId::ServicesStop, CheckState::WouldChange, &log);
    broken.apply_ok = false;
    let runbook = vec![
        Entry::changes(broken),
        Entry::changes(step(StepId::RouteSet, CheckState::WouldChange, &log)),
    ];
    let code = run(&ctx, Mode::Apply { confirm: false }, runbook, Vec::new()).await;
    assert_eq!(code, Exit::StepFailed);
    assert!(
        !log.lock()
            .unwrap()
            .iter()
            .any(|l| l.starts_with("apply route.set")),
        "{:?}",
        log.lock().unwrap()
    );
    assert_eq!(rec.finished(), (RunOutcome::Failed, 1));

    let log = Log::default();
    let rec = Recorder::default();
    let ctx = self::ctx(&rec, Arc::new(Absent));
    let mut unverified = step(StepId::DnsA, CheckState::WouldChange, &log);
    unverified.verify_ok = false;
    let code = run(
        &ctx,
        Mode::Apply { confirm: false },
        vec![Entry::changes(unverified)],
        Vec::new(),
    )
    .await;
    assert_eq!(code, Exit::VerifyFailed);
    assert_eq!(rec.finished(), (RunOutcome::VerifyFailed, 3));
}

#[tokio::test]
async fn a_plan_that_cannot_be_read_changes_nothing() {
    let log = Log::default();
    let rec = Recorder::default();
    let ctx = ctx(&rec, Arc::new(Absent));
    let runbook = vec![
        Entry::changes(step(StepId::ServicesStop, CheckState::WouldChange, &log)),
        Entry::changes(step(StepId::DnsA, CheckState::CannotTell, &log)),
    ];
    let code = run(&ctx, Mode::Apply { confirm: false }, runbook, Vec::new()).await;
    assert_eq!(code, Exit::StepFailed);
    assert!(
        log.lock().unwrap().iter().all(|l| l.starts_with("check")),
        "{:?}",
        log.lock().unwrap()
    );
    assert_eq!(rec.finished(), (RunOutcome::Incomplete, 1));
}

#[tokio::test]
async fn skipped_steps_are_not_checked_and_say_so() {
    let log = Log::default();
    let rec = Recorder::default();
    let ctx = ctx(&rec, Arc::new(Absent));
    let runbook = vec![Entry::changes(step(
        StepId::DnsSrv,
        CheckState::WouldChange,
        &log,
    ))];
    let code = run(&ctx, Mode::Plan, runbook, vec![StepId::DnsSrv]).await;
    assert_eq!(code, Exit::Ok);
    assert!(log.lock().unwrap().is_empty());
    assert_eq!(
        rec.phases(StepId::DnsSrv),
        [(Phase::Check, Outcome::Skipped)]
    );
}

#[tokio::test]
async fn the_operator_is_asked_and_a_no_changes_nothing() {
    let log = Log::default();
    let rec = Recorder::default();
    let operator = Arc::new(Scripted::new(["no"]));
    let ctx = ctx(&rec, operator.clone());
    let runbook = vec![Entry::changes(step(
        StepId::RouteSet,
        CheckState::WouldChange,
        &log,
    ))];
    let code = run(&ctx, Mode::Apply { confirm: true }, runbook, Vec::new()).await;
    assert_eq!(code, Exit::Declined);
    assert_eq!(operator.asked().len(), 1);
    assert!(operator.asked()[0].contains("from EdgePool1 to EdgePool2"));
    assert_eq!(*log.lock().unwrap(), ["check route.set (prior 0)"]);
    assert_eq!(rec.finished(), (RunOutcome::Declined, 5));
}

#[tokio::test]
async fn an_interrupted_run_launches_nothing_more() {
    let log = Log::default();
    let rec = Recorder::default();
    let ctx = ctx(&rec, Arc::new(Absent));
    ctx.cancel.trigger();
    let runbook = vec![Entry::changes(step(
        StepId::RouteSet,
        CheckState::WouldChange,
        &log,
    ))];
    let code = run(&ctx, Mode::Apply { confirm: false }, runbook, Vec::new()).await;
    assert_eq!(code, Exit::Interrupted);
    assert!(log.lock().unwrap().is_empty());
    assert_eq!(rec.finished(), (RunOutcome::Interrupted, 130));
}

/// A record someone else can move: the step reads it (as its `seen`), and
/// `mover`'s apply moves it, as a colleague would while step 2 runs.
struct Record {
    id: StepId,
    world: Arc<Mutex<String>>,
    /// Set the world to this when applied (the mover), else change nothing.
    moves_to: Option<&'static str>,
    log: Log,
}

#[async_trait]
impl Step for Record {
    type Plan = ();

    fn id(&self) -> StepId {
        self.id
    }

    fn title(&self, _ctx: &Ctx) -> String {
        format!("record {}", self.id)
    }

    async fn check(&self, _ctx: &Ctx, _prior: Prior<'_>) -> Check<()> {
        let value = self.world.lock().unwrap().clone();
        let seen = match self.moves_to {
            Some(_) => Vec::new(),
            None => vec![crate::event::Seen {
                what: "xmpp.contoso.com A".into(),
                value,
            }],
        };
        Check::change("would change", Vec::new(), ()).with_seen(seen)
    }

    async fn apply(&self, _ctx: &Ctx, _plan: &()) -> Result<Applied, Failure> {
        push(&self.log, format!("apply {}", self.id));
        if let Some(to) = self.moves_to {
            *self.world.lock().unwrap() = to.into();
        }
        Ok(Applied {
            summary: "done".into(),
            details: Vec::new(),
        })
    }

    async fn verify(&self, _ctx: &Ctx, _plan: &()) -> Verified {
        Verified {
            holds: true,
            summary: "read back".into(),
            details: Vec::new(),
        }
    }
}

#[tokio::test]
async fn a_reading_that_moved_after_the_plan_stops_the_run_before_that_step() {
    let log = Log::default();
    let rec = Recorder::default();
    let ctx = ctx(&rec, Arc::new(Absent));
    let world = Arc::new(Mutex::new("203.0.113.10".to_string()));
    let runbook = vec![
        Entry::changes(Record {
            id: StepId::ServicesStop,
            world: world.clone(),
            moves_to: Some("198.51.100.99"),
            log: log.clone(),
        }),
        Entry::changes(Record {
            id: StepId::DnsA,
            world: world.clone(),
            moves_to: None,
            log: log.clone(),
        }),
    ];
    let code = run(&ctx, Mode::Apply { confirm: false }, runbook, Vec::new()).await;
    assert_eq!(code, Exit::PlanMismatch);
    // The record was read as X in the plan and as Z before step 4: step 4
    // is never applied, so Z is not overwritten.
    assert_eq!(*log.lock().unwrap(), ["apply services.stop"]);
    assert_eq!(rec.finished(), (RunOutcome::PlanMismatch, 8));
    let message = rec
        .0
        .lock()
        .unwrap()
        .iter()
        .find_map(|e| match e {
            Event::RunFinished { message, .. } => Some(message.clone()),
            _ => None,
        })
        .unwrap();
    assert!(
        message.contains("was 203.0.113.10, now 198.51.100.99")
            && message.contains("stopped before dns.a")
            && !message.contains("nothing was changed"),
        "{message}"
    );
}

#[tokio::test]
async fn readings_that_hold_let_the_run_complete() {
    let log = Log::default();
    let rec = Recorder::default();
    let ctx = ctx(&rec, Arc::new(Absent));
    let world = Arc::new(Mutex::new("203.0.113.10".to_string()));
    let runbook = vec![Entry::changes(Record {
        id: StepId::DnsA,
        world,
        moves_to: None,
        log: log.clone(),
    })];
    let code = run(&ctx, Mode::Apply { confirm: false }, runbook, Vec::new()).await;
    assert_eq!(code, Exit::Ok);
    assert_eq!(*log.lock().unwrap(), ["apply dns.a"]);
}
