//! Step 6: port 5269 of every Edge server of the new pool is reachable from
//! outside. It runs while the pool's services are stopped, so "closed"
//! (refused at once) is the expected answer; only a drop or no route fails.

use std::net::{Ipv4Addr, SocketAddr};

use async_trait::async_trait;

use super::{Check, CheckState, Ctx, Look, Prior, StepId, Verified};
use crate::xmpp::Timeouts;
use crate::xmpp::port::{self, PortProbe, PortState};

pub struct PortCheck;

/// One Edge server's port, as step 6 saw it.
#[derive(Debug, Clone)]
pub struct ServerPort {
    pub fqdn: String,
    pub probe: PortProbe,
}

/// Probe every Edge server of the target pool at once.
pub async fn probe_pool(ctx: &Ctx) -> Vec<ServerPort> {
    let timeouts = Timeouts::from_topology(&ctx.topology.xmpp);
    let port = ctx.topology.xmpp.port;
    let mut tasks = Vec::new();
    for server in &ctx.target_pool().servers {
        // Validation guarantees an IPv4 address; an unparsable one would
        // have stopped the run before any step.
        let ip: Ipv4Addr = server
            .external_ipv4
            .parse()
            .unwrap_or(Ipv4Addr::UNSPECIFIED);
        let addr = SocketAddr::from((ip, port));
        let fqdn = server.fqdn.clone();
        tasks.push(tokio::spawn(async move {
            ServerPort {
                fqdn,
                probe: port::classify(addr, timeouts.connect).await,
            }
        }));
    }
    let mut seen = Vec::with_capacity(tasks.len());
    for task in tasks {
        if let Ok(s) = task.await {
            seen.push(s);
        }
    }
    seen
}

fn line(s: &ServerPort) -> String {
    format!(
        "{} {}: {}: {}",
        s.fqdn,
        s.probe.addr,
        s.probe.describe(),
        s.probe.state.meaning_before_start()
    )
}

/// Judge the probes: open or closed everywhere passes.
pub fn judge(ctx: &Ctx, seen: &[ServerPort]) -> Check<()> {
    let pool = &ctx.target_pool().name;
    let port = ctx.topology.xmpp.port;
    let details: Vec<String> = seen.iter().map(line).collect();
    let bad: Vec<&ServerPort> = seen.iter().filter(|s| !s.probe.state.path_open()).collect();
    if seen.len() < ctx.target_pool().servers.len() {
        return Check::cannot_tell(format!(
            "port {port} could not be probed on every Edge server of {pool}"
        ))
        .with_details(details);
    }
    if bad.is_empty() {
        let count = |state| seen.iter().filter(|s| s.probe.state == state).count();
        return Check::done(format!(
            "port {port} is reachable on all {} Edge server(s) of {pool} ({} closed, {} open)",
            seen.len(),
            count(PortState::Closed),
            count(PortState::Open)
        ))
        .with_details(details);
    }
    let addrs: Vec<String> = bad.iter().map(|s| s.probe.addr.ip().to_string()).collect();
    let mut details = details;
    details.push(format!(
        "hint: allow TCP {port} inbound from the internet to {} on the external firewall (and any NAT in front of the Edge), then run again",
        addrs.join(", ")
    ));
    Check::blocked(format!(
        "port {port} is not reachable on {} of {} Edge server(s) of {pool}: {}",
        bad.len(),
        seen.len(),
        bad.iter()
            .map(|s| format!("{} {}", s.fqdn, s.probe.state))
            .collect::<Vec<_>>()
            .join(", ")
    ))
    .with_details(details)
}

#[async_trait]
impl Look for PortCheck {
    fn id(&self) -> StepId {
        StepId::PortCheck
    }

    fn title(&self, ctx: &Ctx) -> String {
        format!(
            "Check port {} on {}",
            ctx.topology.xmpp.port,
            ctx.to().pool.name
        )
    }

    async fn check(&self, ctx: &Ctx, _prior: Prior<'_>) -> Check<()> {
        judge(ctx, &probe_pool(ctx).await)
    }

    async fn verify(&self, ctx: &Ctx) -> Verified {
        let check = judge(ctx, &probe_pool(ctx).await).reading;
        Verified {
            holds: check.state == CheckState::Done,
            summary: check.summary,
            details: check.details,
        }
    }
}
