//! Everything a run needs, resolved and validated once: the topology, the
//! source and target pools, the options, and a handle on every machine.

use std::sync::Arc;
use std::time::Duration;

use crate::cancel::Cancel;
use crate::lync::Machine;
use crate::steps::StepId;
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
        let from_at = locate(&topology, from)?;
        let to_at = locate(&topology, to)?;
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
        let edges = target.servers.iter().map(edge).map(Arc::new).collect();
        Ok(Ctx {
            from: from_at,
            to: to_at,
            opts,
            management,
            edges,
            topology,
            cancel: Cancel::default(),
        })
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

/// A step's one-line title for this run.
pub fn title(ctx: &Ctx, id: StepId) -> String {
    let to = ctx.to();
    let x = &ctx.topology.xmpp;
    match id {
        StepId::PoolDeployed => format!("Confirm {} is deployed", to.pool.name),
        StepId::ServicesStop => format!(
            "Stop the Lync services on every Edge server of {}",
            to.pool.name
        ),
        StepId::RouteSet => format!(
            "Point {}'s XMPP federation route at {}",
            to.site.name,
            to.pool.route_server()
        ),
        StepId::DnsA => format!("Point {} A at {}", x.a_record, to.pool.name),
        StepId::DnsSrv => format!(
            "Make {} SRV (port {}) prefer {}",
            x.srv_owner(),
            x.port,
            to.pool.name
        ),
        StepId::PortCheck => format!("Check port {} on {}", x.port, to.pool.name),
        StepId::ServicesStart => format!(
            "Start the Lync services on every Edge server of {}",
            to.pool.name
        ),
        StepId::FederationCheck => format!(
            "Check what a federating partner sees of {} (SRV, port, STARTTLS, certificate)",
            x.domain
        ),
    }
}
