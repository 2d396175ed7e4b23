//! The partner's-eye check that closes a failover (after step 7): probe the
//! XMPP domain exactly as a federating server would, through the zone's
//! authoritative servers, and check that what partners reach is the new
//! pool. SRV or A pointing at another pool is split brain, named as such.

use std::net::IpAddr;
use std::time::Duration;

use async_trait::async_trait;

use super::{Check, Ctx, Look, Observation, Prior, StepId, Verified};
use crate::topology::{Pool, Topology, parse_server_addr};
use crate::xmpp::probe::{self, ProbeOptions, Report, Status};
use crate::xmpp::srv::{DirectLookup, Lookup};
use crate::xmpp::{DEFAULT_PARTNER, Timeouts};

/// Probe options from the topology.
pub fn options(t: &Topology) -> ProbeOptions {
    ProbeOptions {
        domain: t.xmpp.domain.clone(),
        partner: t
            .xmpp
            .partner_name
            .clone()
            .unwrap_or_else(|| DEFAULT_PARTNER.to_string()),
        timeouts: Timeouts::from_topology(&t.xmpp),
        accept_untrusted: t.xmpp.accept_untrusted_cert,
        accept_flag: "xmpp.accept_untrusted_cert in the topology",
    }
}

/// Ask the topology's authoritative servers directly.
pub fn lookup(t: &Topology) -> DirectLookup {
    let servers = t
        .dns
        .authoritative
        .iter()
        .filter_map(|s| parse_server_addr(s, 53).ok())
        .collect();
    DirectLookup::new(servers, Duration::from_secs(t.dns.timeout_secs))
}

fn same_host(a: &str, b: &str) -> bool {
    a.trim_end_matches('.')
        .eq_ignore_ascii_case(b.trim_end_matches('.'))
}

/// The pools whose SRV target is `host`.
fn pools_targeting<'a>(t: &'a Topology, host: &str) -> Vec<&'a str> {
    t.pools()
        .filter(|p| same_host(p.pool.srv_target(&t.xmpp), host))
        .map(|p| p.pool.name.as_str())
        .collect()
}

/// The pool and server with external address `ip`.
fn owner_of(t: &Topology, ip: IpAddr) -> Option<(String, String)> {
    t.pools().find_map(|p| {
        p.pool
            .servers
            .iter()
            .find(|s| s.external_ipv4.parse::<IpAddr>().ok() == Some(ip))
            .map(|s| (p.pool.name.clone(), s.fqdn.clone()))
    })
}

fn label(pools: &[&str]) -> String {
    if pools.is_empty() {
        "no pool in the topology".into()
    } else {
        pools.join(", ")
    }
}

/// Probe the domain through `lookup` and judge whether partners reach
/// `pool`.
pub async fn partner_report(
    t: &Topology,
    pool: &Pool,
    lookup: &dyn Lookup,
    opts: &ProbeOptions,
) -> Report {
    let mut report = probe::probe_domain(lookup, opts).await;
    judge_pool(t, pool, &mut report);
    report
}

/// Add the split-brain findings: which records point where.
pub fn judge_pool(t: &Topology, pool: &Pool, report: &mut Report) {
    let expected = pool.srv_target(&t.xmpp);
    let first = report.srv.iter().find(|r| !r.is_no_service()).cloned();
    match first {
        None if report.srv_error.is_some() => {
            report.note(
                "pool",
                Status::Fail,
                format!(
                    "cannot tell which pool partners reach: the {} lookup failed: {}",
                    t.xmpp.srv_owner(),
                    report.srv_error.as_deref().unwrap_or_default()
                ),
            );
        }
        None => {
            report.note(
                "pool",
                Status::Fail,
                format!(
                    "no usable {} record points at {} ({expected}): step 5 publishes one",
                    t.xmpp.srv_owner(),
                    pool.name
                ),
            );
        }
        Some(first) if same_host(&first.target, expected) => {
            report.note(
                "pool",
                Status::Pass,
                format!(
                    "partners' first choice {} is {}'s SRV target",
                    first.target, pool.name
                ),
            );
            if first.port != t.xmpp.port {
                report.note(
                    "pool",
                    Status::Warn,
                    format!(
                        "the SRV record says port {}, the topology {}",
                        first.port, t.xmpp.port
                    ),
                );
            }
        }
        Some(first) => {
            let records: Vec<String> = report
                .srv
                .iter()
                .map(|r| {
                    format!(
                        "{} -> {}",
                        r.describe(),
                        label(&pools_targeting(t, &r.target))
                    )
                })
                .collect();
            report.note(
                "pool",
                Status::Fail,
                format!(
                    "split brain: partners go first to {} ({}), not to {}'s {expected}; records: {}",
                    first.target,
                    label(&pools_targeting(t, &first.target)),
                    pool.name,
                    records.join("; ")
                ),
            );
        }
    }
    // The A record matters once SRV leads to the new pool's target (pools
    // may share one target name, and then only the A record tells them
    // apart); behind another pool's target it says nothing new.
    let Some(target) = &report.target else {
        return;
    };
    if !target.via_srv || !same_host(&target.host, expected) || report.addresses.is_empty() {
        return;
    }
    let mine = |ip: &IpAddr| {
        pool.servers
            .iter()
            .any(|s| s.external_ipv4.parse::<IpAddr>().ok() == Some(*ip))
    };
    if report.addresses.iter().any(mine) {
        return;
    }
    let seen: Vec<String> = report
        .addresses
        .iter()
        .map(|ip| match owner_of(t, *ip) {
            Some((p, s)) => format!("{ip} ({s} of {p})"),
            None => format!("{ip} (no Edge server in the topology)"),
        })
        .collect();
    let elsewhere = report.addresses.iter().any(|ip| owner_of(t, *ip).is_some());
    let text = format!(
        "{} A points at {}, not at an external address of {}",
        target.host,
        seen.join(", "),
        pool.name
    );
    if elsewhere {
        report.note("pool", Status::Fail, format!("split brain: {text}"));
    } else {
        report.note(
            "pool",
            Status::Warn,
            format!("{text} (a NAT or load balancer address?)"),
        );
    }
}

/// The pools a host serves as SRV target, or whose Edge server has one of
/// `addresses`: which pool partners reach.
pub fn reached_pools(t: &Topology, report: &Report) -> Vec<String> {
    let mut pools: Vec<String> = Vec::new();
    if let Some(target) = &report.target
        && target.via_srv
    {
        pools.extend(
            pools_targeting(t, &target.host)
                .into_iter()
                .map(str::to_string),
        );
    }
    // Several pools behind one SRV name (or no SRV): the address tells.
    if pools.len() != 1 {
        let owners: Vec<String> = report
            .addresses
            .iter()
            .filter_map(|ip| owner_of(t, *ip).map(|(p, _)| p))
            .collect();
        if !owners.is_empty() {
            pools = owners;
        }
    }
    pools.dedup();
    pools
}

/// "partners now go to edgepool1-xmpp.contoso.com:5269 (EdgePool1) and
/// federate", or what stops them there.
pub fn where_partners_go(t: &Topology, now: &Report) -> String {
    let Some(target) = &now.target else {
        return format!(
            "partners now find no server for {}: {}",
            t.xmpp.domain,
            now.summary()
        );
    };
    let pools = reached_pools(t, now);
    let whose = if pools.is_empty() {
        "no pool in the topology".to_string()
    } else {
        pools.join(", ")
    };
    match now.failures().next() {
        None => format!(
            "partners now go to {}:{} ({whose}) and federate",
            target.host, target.port
        ),
        Some(f) => format!(
            "partners now go to {}:{} ({whose}) and cannot federate: {}",
            target.host, target.port, f.text
        ),
    }
}

/// The partner's-eye check for the run's target pool: one reading (the
/// caller polls).
pub async fn partner_check(ctx: &Ctx) -> Observation {
    let report = target_report(ctx).await;
    Observation {
        holds: report.passed,
        summary: report.summary(),
        details: report.lines(),
    }
}

/// What partners see of the run's target pool, as the topology's
/// authoritative servers answer.
async fn target_report(ctx: &Ctx) -> Report {
    let t = &ctx.topology;
    partner_report(t, ctx.target_pool(), &lookup(t), &options(t)).await
}

/// The closing step: what a federating partner sees once the services run
/// again. Nothing to apply; its verify polls until partners reach the new
/// pool, or the deadline passes.
pub struct PartnerCheck;

#[async_trait]
impl Look for PartnerCheck {
    fn id(&self) -> StepId {
        StepId::FederationCheck
    }

    fn title(&self, ctx: &Ctx) -> String {
        format!(
            "Check what a federating partner sees of {} (SRV, port, STARTTLS, certificate)",
            ctx.topology.xmpp.domain
        )
    }

    async fn check(&self, ctx: &Ctx, _prior: Prior<'_>) -> Check<()> {
        let t = &ctx.topology;
        let pool = ctx.target_pool();
        // What partners see now, unjudged: before a failover they federate
        // through the pool being left, which is no split brain.
        let now = probe::probe_domain(&lookup(t), &options(t)).await;
        let mut judged = now.clone();
        judge_pool(t, pool, &mut judged);
        if let Some(why) = &now.srv_error {
            // Not knowing what partners see is not the same as knowing they
            // reach the old pool.
            return Check::cannot_tell(format!(
                "the {} lookup on the authoritative servers failed: {why}",
                t.xmpp.srv_owner()
            ))
            .with_details(judged.lines());
        }
        if judged.passed {
            Check::done(judged.summary()).with_details(judged.lines())
        } else {
            // Whether partners reach the new pool is what verify finds out,
            // once step 7 has started its services.
            Check::waits(format!(
                "{}; after step 7 this step verifies that partners reach {} ({}:{}) and federate",
                where_partners_go(t, &now),
                pool.name,
                pool.srv_target(&t.xmpp),
                t.xmpp.port
            ))
            .with_details(judged.lines())
        }
    }

    async fn verify(&self, ctx: &Ctx) -> Verified {
        super::poll(ctx, || partner_check(ctx)).await
    }
}
