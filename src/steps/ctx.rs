//! The context a step runs in: the topology, the source and target pools,
//! the options, a handle on every machine, the run's event stream, the
//! operator to ask, and the interruption flag.

use std::sync::Arc;
use std::time::Duration;

use crate::cancel::Cancel;
use crate::event::{Emitter, Event, Progress};
use crate::lync::Machine;
use crate::operator::{Absent, Operator};
use crate::topology::{Pool, PoolRef, Server, Site, Topology};

/// Options of one run, from flags and the topology's timeouts.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// How many Edge servers steps 2 and 7 work on at once.
    pub parallel: usize,
    /// Drain sessions before stopping (Stop-CsWindowsService -Graceful).
    pub graceful: bool,
    pub command_timeout: Duration,
    pub verify_timeout: Duration,
    pub poll: Duration,
}

/// Why a run cannot even start (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum SelectError {
    #[error(
        "--from and --to both name {0}: pick the failed pool and a different pool to take over"
    )]
    SamePool(String),
    #[error("no pool named '{name}' in the topology (pools: {known})")]
    UnknownPool { name: String, known: String },
    #[error(
        "{pool} runs {version}, which has no XMPP gateway: XMPP federation can only move to a Lync Server 2013 or Skype for Business Server 2015 Edge pool"
    )]
    NoXmppGateway { pool: String, version: String },
    #[error("pool {0} has no Edge servers to carry XMPP federation")]
    NoServers(String),
}

pub struct Ctx {
    pub topology: Topology,
    from: (usize, usize),
    to: (usize, usize),
    pub opts: RunOptions,
    pub management: Machine,
    /// The target pool's Edge servers, in topology order.
    pub edges: Vec<Arc<Machine>>,
    /// Set by the first Ctrl-C / SIGTERM: launch nothing new.
    pub cancel: Cancel,
    /// The run's event stream (the reporters and the journal).
    pub events: Emitter,
    /// Who to ask when a step needs the operator (manual DNS).
    pub operator: Arc<dyn Operator>,
}

fn locate(t: &Topology, name: &str) -> Result<(usize, usize), SelectError> {
    for (si, site) in t.sites.iter().enumerate() {
        for (pi, pool) in site.pools.iter().enumerate() {
            if pool.name.eq_ignore_ascii_case(name) {
                return Ok((si, pi));
            }
        }
    }
    Err(SelectError::UnknownPool {
        name: crate::names::printable(name),
        known: t
            .pools()
            .map(|p| p.pool.name.clone())
            .collect::<Vec<_>>()
            .join(", "),
    })
}

/// Where a pool is: (site index, pool index).
pub type At = (usize, usize);

/// Pick the failed pool and the pool that takes over, by name (as Lync,
/// without regard to case): (site, pool) indexes of each, or why not.
pub fn select(topology: &Topology, from: &str, to: &str) -> Result<(At, At), SelectError> {
    let from_at = locate(topology, from)?;
    let to_at = locate(topology, to)?;
    if from_at == to_at {
        return Err(SelectError::SamePool(
            topology.sites[to_at.0].pools[to_at.1].name.clone(),
        ));
    }
    let target = &topology.sites[to_at.0].pools[to_at.1];
    if !target.version.carries_xmpp() {
        return Err(SelectError::NoXmppGateway {
            pool: target.name.clone(),
            version: target.version.to_string(),
        });
    }
    if target.servers.is_empty() {
        return Err(SelectError::NoServers(target.name.clone()));
    }
    Ok((from_at, to_at))
}

impl Ctx {
    /// Pick the pools and build the machines; nothing is contacted yet.
    pub fn new(
        topology: Topology,
        from: &str,
        to: &str,
        opts: RunOptions,
    ) -> Result<Ctx, SelectError> {
        let management = Machine::new("management shell", &topology.management.transport);
        Ctx::with_machines(topology, from, to, opts, management, |s| {
            Machine::new(&s.fqdn, &s.transport)
        })
    }

    /// Pick the pools with machines built by the caller (the rehearsal's
    /// simulated ones): `edge` makes each target Edge server's.
    pub fn with_machines(
        topology: Topology,
        from: &str,
        to: &str,
        opts: RunOptions,
        management: Machine,
        edge: impl FnMut(&Server) -> Machine,
    ) -> Result<Ctx, SelectError> {
        let (from_at, to_at) = select(&topology, from, to)?;
        let target = &topology.sites[to_at.0].pools[to_at.1];
        let edges = target.servers.iter().map(edge).map(Arc::new).collect();
        Ok(Ctx {
            from: from_at,
            to: to_at,
            opts,
            management,
            edges,
            topology,
            cancel: Cancel::default(),
            events: Emitter::discard(),
            operator: Arc::new(Absent),
        })
    }

    /// Send the run's events to `events`.
    pub fn with_events(mut self, events: Emitter) -> Ctx {
        self.management.transcribe_to(events.clone());
        for edge in &self.edges {
            edge.transcribe_to(events.clone());
        }
        self.events = events;
        self
    }

    /// Ask `operator` when a step needs someone.
    pub fn with_operator(mut self, operator: Arc<dyn Operator>) -> Ctx {
        self.operator = operator;
        self
    }

    /// Start every machine's PowerShell session at once, in the
    /// background: their start-ups overlap with each other and with
    /// whatever the run reads meanwhile.
    pub fn warm_up(&self) {
        self.management.warm_up(self.opts.command_timeout);
        for edge in &self.edges {
            edge.warm_up(self.opts.command_timeout);
        }
    }

    /// End every machine's session, all at once, and wait until they have.
    pub async fn close(&self) {
        let handles: Vec<_> = std::iter::once(&self.management)
            .chain(self.edges.iter().map(|e| &**e))
            .filter_map(Machine::close)
            .collect();
        for handle in handles {
            let _ = handle.await;
        }
    }

    pub fn emit(&self, event: Event) {
        self.events.emit(&event);
    }

    /// Tell a terminal how the running phase is getting on.
    pub fn progress(&self, progress: Progress) {
        self.events.progress(&progress);
    }

    fn at(&self, (s, p): (usize, usize)) -> PoolRef<'_> {
        PoolRef {
            site: &self.topology.sites[s],
            pool: &self.topology.sites[s].pools[p],
        }
    }

    /// The failed pool, that XMPP federation leaves.
    pub fn from(&self) -> PoolRef<'_> {
        self.at(self.from)
    }

    /// The pool that takes XMPP federation over.
    pub fn to(&self) -> PoolRef<'_> {
        self.at(self.to)
    }

    pub fn target_pool(&self) -> &Pool {
        self.to().pool
    }

    pub fn target_site(&self) -> &Site {
        self.to().site
    }
}
