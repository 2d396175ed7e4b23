//! The runbook's steps. Each step has a stable id and three phases:
//! check (read the real state, change nothing), apply, verify (read back
//! until the state holds or the deadline passes).

mod deploy;
mod dns;
pub mod partner;
pub mod port;
mod route;
mod services;

use std::any::Any;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::context::Ctx;

pub use dns::{DnsA, DnsSrv};
pub use route::RouteState;

/// Stable step ids: they appear in JSON output, journals and `--skip`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum StepId {
    #[serde(rename = "pool.deployed")]
    PoolDeployed,
    #[serde(rename = "services.stop")]
    ServicesStop,
    #[serde(rename = "route.set")]
    RouteSet,
    #[serde(rename = "dns.a")]
    DnsA,
    #[serde(rename = "dns.srv")]
    DnsSrv,
    #[serde(rename = "port.check")]
    PortCheck,
    #[serde(rename = "services.start")]
    ServicesStart,
    #[serde(rename = "federation.check")]
    FederationCheck,
}

impl StepId {
    pub const ALL: [StepId; 8] = [
        StepId::PoolDeployed,
        StepId::ServicesStop,
        StepId::RouteSet,
        StepId::DnsA,
        StepId::DnsSrv,
        StepId::PortCheck,
        StepId::ServicesStart,
        StepId::FederationCheck,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StepId::PoolDeployed => "pool.deployed",
            StepId::ServicesStop => "services.stop",
            StepId::RouteSet => "route.set",
            StepId::DnsA => "dns.a",
            StepId::DnsSrv => "dns.srv",
            StepId::PortCheck => "port.check",
            StepId::ServicesStart => "services.start",
            StepId::FederationCheck => "federation.check",
        }
    }

    /// The step's number: 1 to 7 as in the documented runbook, 8 for the
    /// closing partner's-eye check.
    pub fn number(self) -> usize {
        StepId::ALL.iter().position(|s| *s == self).unwrap_or(0) + 1
    }

    pub fn parse(text: &str) -> Option<StepId> {
        StepId::ALL
            .into_iter()
            .find(|s| s.as_str() == text || s.number().to_string() == text)
    }
}

impl std::fmt::Display for StepId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One value that a step would change, old -> new.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub what: String,
    pub old: String,
    pub new: String,
}

/// What a check found.
#[derive(Debug, Clone)]
pub struct Check {
    pub state: CheckState,
    pub summary: String,
    pub changes: Vec<Change>,
    pub details: Vec<String>,
    /// What the step read, for its own apply (a DNS compare-and-swap needs
    /// the exact records seen).
    pub memo: Option<Arc<dyn Any + Send + Sync>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckState {
    /// The desired state already holds.
    Done,
    /// Apply would change something.
    WouldChange,
    /// The state could not be read.
    CannotTell,
    /// The state was read and forbids going on (nothing apply could fix).
    Blocked,
}

impl Check {
    fn new(state: CheckState, summary: impl Into<String>) -> Check {
        Check {
            state,
            summary: summary.into(),
            changes: Vec::new(),
            details: Vec::new(),
            memo: None,
        }
    }

    pub fn done(summary: impl Into<String>) -> Check {
        Check::new(CheckState::Done, summary)
    }

    pub fn change(summary: impl Into<String>, changes: Vec<Change>) -> Check {
        Check {
            changes,
            ..Check::new(CheckState::WouldChange, summary)
        }
    }

    pub fn cannot_tell(reason: impl Into<String>) -> Check {
        Check::new(CheckState::CannotTell, reason)
    }

    pub fn blocked(reason: impl Into<String>) -> Check {
        Check::new(CheckState::Blocked, reason)
    }

    pub fn with_details(mut self, details: Vec<String>) -> Check {
        self.details = details;
        self
    }

    pub fn with_memo<T: Any + Send + Sync>(mut self, memo: T) -> Check {
        self.memo = Some(Arc::new(memo));
        self
    }

    pub fn memo<T: Any>(&self) -> Option<&T> {
        self.memo.as_deref().and_then(|m| m.downcast_ref())
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

/// Checks of the steps before this one in the same plan, so a later check
/// can account for what an earlier step is about to change.
pub type Prior<'a> = &'a [(StepId, Check)];

#[async_trait]
pub trait Step: Send + Sync {
    fn id(&self) -> StepId;
    /// A step that only looks (no apply phase): when its check finds the
    /// state not yet there, its verify waits for it.
    fn only_looks(&self) -> bool {
        false
    }

    /// The one-line title for this run (the runbook's wording).
    fn title(&self, ctx: &Ctx) -> String {
        crate::context::title(ctx, self.id())
    }
    async fn check(&self, ctx: &Ctx, prior: Prior<'_>) -> Check;
    async fn apply(&self, ctx: &Ctx, check: &Check) -> Result<Applied, Failure>;
    async fn verify(&self, ctx: &Ctx, check: &Check) -> Verified;
}

/// The runbook in its documented order.
pub fn runbook() -> Vec<Box<dyn Step>> {
    vec![
        Box::new(deploy::PoolDeployed),
        Box::new(services::Services::stop()),
        Box::new(route::Route),
        Box::new(dns::DnsA),
        Box::new(dns::DnsSrv),
        Box::new(port::PortCheck),
        Box::new(services::Services::start()),
        Box::new(partner::PartnerCheck),
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
    let deadline = started + ctx.opts.verify_timeout;
    let mut pause = ctx.opts.poll;
    let mut reads = 0u32;
    loop {
        let seen = observe().await;
        reads += 1;
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
        pause = (pause * 2)
            .min(ctx.opts.poll * 4)
            .max(Duration::from_millis(1));
    }
}
