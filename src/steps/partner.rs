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
        let report = target_report(ctx).await;
        if let Some(why) = &report.srv_error {
            // Not knowing what partners see is not the same as knowing they
            // reach the old pool.
            return Check::cannot_tell(format!(
                "the {} lookup on the authoritative servers failed: {why}",
                ctx.topology.xmpp.srv_owner()
            ))
            .with_details(report.lines());
        }
        if report.passed {
            Check::done(report.summary()).with_details(report.lines())
        } else {
            // Before the failover partners are expected not to reach the new
            // pool yet; whether they do is what verify finds out.
            Check::waits(format!(
                "would verify after step 7 what partners see; now: {}",
                report.summary()
            ))
            .with_details(report.lines())
        }
    }

    async fn verify(&self, ctx: &Ctx) -> Verified {
        super::poll(ctx, || partner_check(ctx)).await
    }
}
