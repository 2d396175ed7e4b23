//! The runbook's steps. Each step has a stable id (see `event::StepId`) and
//! three phases: check (read the real state, change nothing), apply, verify
//! (read back until the state holds or the deadline passes). A step that
//! changes something implements [`Step`]: its check hands a typed plan to its
//! apply and verify. A step that only looks implements [`Look`]: it has no
//! apply, and its verify waits for what it looks at.

pub mod ctx;
mod deploy;
pub mod fixture;
pub mod partner;
pub mod port;
pub mod records;
pub mod route;
mod services;
pub mod srv_preference;
mod tests;

use std::ops::Deref;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;

pub use crate::event::{Change, Seen, StepId};
pub use ctx::{Ctx, RunOptions, SelectError};
pub use records::{DnsA, DnsSrv};
pub use route::RouteState;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckState {
    /// The desired state already holds.
    Done,
    /// Apply would change something (a look: verify has something to wait for).
    WouldChange,
    /// The state could not be read.
    CannotTell,
    /// The state was read and forbids going on (nothing apply could fix).
    Blocked,
}

/// What a check found, as reported.
#[derive(Debug, Clone)]
pub struct Reading {
    pub state: CheckState,
    pub summary: String,
    pub changes: Vec<Change>,
    /// What the check read that its change rests on: a failover stops
    /// before applying the step when this differs from what the operator
    /// confirmed. Empty for steps that only look, or whose change does not
    /// depend on what they read (starting services).
    pub seen: Vec<Seen>,
    pub details: Vec<String>,
}

/// A check's result: the reading, and for "would change" the plan that the
/// step's apply and verify follow (the records a compare-and-swap expects,
/// the servers still to stop, the route's parameter and value).
#[derive(Debug, Clone)]
pub struct Check<P> {
    pub reading: Reading,
    pub plan: Option<P>,
}

impl<P> Deref for Check<P> {
    type Target = Reading;

    fn deref(&self) -> &Reading {
        &self.reading
    }
}

impl<P> Check<P> {
    fn new(state: CheckState, summary: impl Into<String>) -> Check<P> {
        Check {
            reading: Reading {
                state,
                summary: summary.into(),
                changes: Vec::new(),
                seen: Vec::new(),
                details: Vec::new(),
            },
            plan: None,
        }
    }

    pub fn done(summary: impl Into<String>) -> Check<P> {
        Check::new(CheckState::Done, summary)
    }

    /// Apply would change `changes`, following `plan`.
    pub fn change(summary: impl Into<String>, changes: Vec<Change>, plan: P) -> Check<P> {
        let mut check = Check::new(CheckState::WouldChange, summary);
        check.reading.changes = changes;
        check.plan = Some(plan);
        check
    }

    pub fn cannot_tell(reason: impl Into<String>) -> Check<P> {
        Check::new(CheckState::CannotTell, reason)
    }

    pub fn blocked(reason: impl Into<String>) -> Check<P> {
        Check::new(CheckState::Blocked, reason)
    }

    pub fn with_details(mut self, details: Vec<String>) -> Check<P> {
        self.reading.details = details;
        self
    }

    pub fn with_seen(mut self, seen: Vec<Seen>) -> Check<P> {
        self.reading.seen = seen;
        self
    }
}

impl Check<()> {
    /// A look whose state is not there yet: its verify waits for it.
    pub fn waits(summary: impl Into<String>) -> Check<()> {
        Check::change(summary, Vec::new(), ())
    }
}

/// What apply did.
#[derive(Debug, Clone)]
pub struct Applied {
    pub summary: String,
    pub details: Vec<String>,
}

/// Why apply failed; `details` lists per-machine results.
#[derive(Debug, Clone)]
pub struct Failure {
    pub summary: String,
    pub details: Vec<String>,
}

impl Failure {
    pub fn new(summary: impl Into<String>) -> Failure {
        Failure {
            summary: summary.into(),
            details: Vec::new(),
        }
    }
}

/// One reading during verify.
#[derive(Debug, Clone)]
pub struct Observation {
    pub holds: bool,
    pub summary: String,
    pub details: Vec<String>,
}

/// The verify phase's result.
#[derive(Debug, Clone)]
pub struct Verified {
    pub holds: bool,
    pub summary: String,
    pub details: Vec<String>,
}

/// The states earlier steps' checks found in the same pass, so a later
/// check can account for what an earlier step is about to change.
pub type Prior<'a> = &'a [(StepId, CheckState)];

/// A step that changes something.
#[async_trait]
pub trait Step: Send + Sync {
    /// What check hands to apply and verify.
    type Plan: Send + Sync;

    fn id(&self) -> StepId;
    /// The one-line title for this run (the runbook's wording).
    fn title(&self, ctx: &Ctx) -> String;
    async fn check(&self, ctx: &Ctx, prior: Prior<'_>) -> Check<Self::Plan>;
    async fn apply(&self, ctx: &Ctx, plan: &Self::Plan) -> Result<Applied, Failure>;
    async fn verify(&self, ctx: &Ctx, plan: &Self::Plan) -> Verified;
}

/// A step that only looks: no apply phase. When its check finds the state
/// not yet there ([`Check::waits`]), its verify waits for it.
#[async_trait]
pub trait Look: Send + Sync {
    fn id(&self) -> StepId;
    fn title(&self, ctx: &Ctx) -> String;
    async fn check(&self, ctx: &Ctx, prior: Prior<'_>) -> Check<()>;
    async fn verify(&self, ctx: &Ctx) -> Verified;
}

/// A changing step as the engine drives it: the plan of its last check is
/// kept inside, typed, for its apply and verify.
#[async_trait]
pub trait Planned: Send + Sync {
    fn id(&self) -> StepId;
    fn title(&self, ctx: &Ctx) -> String;
    /// Check, keeping the plan (if any) for apply and verify.
    async fn check(&self, ctx: &Ctx, prior: Prior<'_>) -> Reading;
    async fn apply(&self, ctx: &Ctx) -> Result<Applied, Failure>;
    async fn verify(&self, ctx: &Ctx) -> Verified;
}

struct Bound<S: Step> {
    step: S,
    plan: Mutex<Option<Arc<S::Plan>>>,
}

impl<S: Step> Bound<S> {
    fn plan(&self) -> Option<Arc<S::Plan>> {
        self.plan.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

fn no_plan(id: StepId) -> String {
    format!("{id}: no plan from a check to follow (its check must run first)")
}

#[async_trait]
impl<S: Step> Planned for Bound<S> {
    fn id(&self) -> StepId {
        self.step.id()
    }

    fn title(&self, ctx: &Ctx) -> String {
        self.step.title(ctx)
    }

    async fn check(&self, ctx: &Ctx, prior: Prior<'_>) -> Reading {
        let check = self.step.check(ctx, prior).await;
        *self.plan.lock().unwrap_or_else(|p| p.into_inner()) = check.plan.map(Arc::new);
        check.reading
    }

    async fn apply(&self, ctx: &Ctx) -> Result<Applied, Failure> {
        match self.plan() {
            Some(plan) => self.step.apply(ctx, &plan).await,
            None => Err(Failure::new(no_plan(self.id()))),
        }
    }

    async fn verify(&self, ctx: &Ctx) -> Verified {
        match self.plan() {
            Some(plan) => self.step.verify(ctx, &plan).await,
            None => Verified {
                holds: false,
                summary: no_plan(self.id()),
                details: Vec::new(),
            },
        }
    }
}

/// One entry of a runbook: a step that changes, or one that looks.
pub enum Entry {
    Changes(Box<dyn Planned>),
    Looks(Box<dyn Look>),
}

impl Entry {
    pub fn changes<S: Step + 'static>(step: S) -> Entry {
        Entry::Changes(Box::new(Bound {
            step,
            plan: Mutex::new(None),
        }))
    }

    pub fn looks<L: Look + 'static>(look: L) -> Entry {
        Entry::Looks(Box::new(look))
    }

    pub fn id(&self) -> StepId {
        match self {
            Entry::Changes(s) => s.id(),
            Entry::Looks(l) => l.id(),
        }
    }

    pub fn title(&self, ctx: &Ctx) -> String {
        match self {
            Entry::Changes(s) => s.title(ctx),
            Entry::Looks(l) => l.title(ctx),
        }
    }

    pub async fn check(&self, ctx: &Ctx, prior: Prior<'_>) -> Reading {
        match self {
            Entry::Changes(s) => s.check(ctx, prior).await,
            Entry::Looks(l) => l.check(ctx, prior).await.reading,
        }
    }

    pub async fn verify(&self, ctx: &Ctx) -> Verified {
        match self {
            Entry::Changes(s) => s.verify(ctx).await,
            Entry::Looks(l) => l.verify(ctx).await,
        }
    }
}

/// The runbook in its documented order.
pub fn runbook() -> Vec<Entry> {
    vec![
        Entry::looks(deploy::PoolDeployed),
        Entry::changes(services::Services::stop()),
        Entry::changes(route::Route),
        Entry::changes(records::DnsA),
        Entry::changes(records::DnsSrv),
        Entry::looks(port::PortCheck),
        Entry::changes(services::Services::start()),
        Entry::looks(partner::PartnerCheck),
    ]
}

/// Read the state again and again, with growing pauses, until it holds or
/// the step's verify deadline passes.
pub async fn poll<F, Fut>(ctx: &Ctx, mut observe: F) -> Verified
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Observation>,
{
    let started = Instant::now();
    let deadline = crate::cancel::deadline(started, ctx.opts.verify_timeout);
    let mut pause = ctx.opts.poll;
    let mut reads = 0u32;
    ctx.progress(crate::event::Progress::Deadline(ctx.opts.verify_timeout));
    loop {
        let seen = observe().await;
        reads += 1;
        ctx.progress(crate::event::Progress::Reading(seen.summary.clone()));
        let elapsed = started.elapsed().as_secs_f64();
        if seen.holds {
            return Verified {
                holds: true,
                summary: format!("{} (after {elapsed:.1}s, {reads} read(s))", seen.summary),
                details: seen.details,
            };
        }
        let now = Instant::now();
        if ctx.cancel.is_set() {
            return Verified {
                holds: false,
                summary: format!("interrupted while waiting: {}", seen.summary),
                details: seen.details,
            };
        }
        if now >= deadline {
            return Verified {
                holds: false,
                summary: format!(
                    "still not so after {elapsed:.1}s ({reads} reads, deadline {}s): {}",
                    ctx.opts.verify_timeout.as_secs(),
                    seen.summary
                ),
                details: seen.details,
            };
        }
        tokio::select! {
            _ = tokio::time::sleep(pause.min(deadline - now)) => {}
            _ = ctx.cancel.wait() => {}
        }
        pause = pause
            .saturating_mul(2)
            .min(ctx.opts.poll.saturating_mul(4))
            .max(Duration::from_millis(1));
    }
}
