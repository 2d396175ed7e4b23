//! The one-line verdict over every reading: where XMPP federation runs,
//! what disagrees, and which command would put it right.
//!
//! In order: partners cannot federate (down, exit 11); no site's route
//! names the pool DNS prefers, or the A record points at another pool than
//! the preferred SRV record (split brain, exit 10); anything else that
//! disagrees (drift, exit 10); a source could not be read (exit 12);
//! otherwise consistent and federating (exit 0).

use serde::{Deserialize, Serialize};

use super::{PoolReading, ServicesState, Status};
use crate::exit::Exit;

/// What the verdict is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VerdictState {
    /// Every source agrees and partners federate.
    Federating,
    /// Partners federate, but something disagrees (another site's route, a
    /// lagging DNS server, stragglers).
    Drift,
    /// The route and DNS (or the A and SRV records) name different pools.
    SplitBrain,
    /// Partners cannot federate.
    Down,
    /// A source could not be read, and what could be read agrees.
    #[default]
    CannotTell,
}

impl VerdictState {
    /// The exit code `status` ends with.
    pub fn exit(self) -> Exit {
        match self {
            VerdictState::Federating => Exit::Ok,
            VerdictState::Drift | VerdictState::SplitBrain => Exit::Drift,
            VerdictState::Down => Exit::FederationDown,
            VerdictState::CannotTell => Exit::SourceUnreadable,
        }
    }
}

/// The verdict.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    pub state: VerdictState,
    /// The one line: "XMPP federation runs through EdgePool2 (Site2)".
    pub line: String,
    /// The pool partners are sent to (the preferred SRV record's).
    pub pool: Option<String>,
    pub site: Option<String>,
    /// What disagrees, one item each.
    pub disagreements: Vec<String>,
    /// Sources that could not be read, with the reason.
    pub cannot_tell: Vec<String>,
    /// What would put it right (commands first).
    pub fix: Vec<String>,
    pub exit_code: i32,
}

struct Finding {
    split: bool,
    text: String,
}

fn pool<'a>(s: &'a Status, name: &str) -> Option<&'a PoolReading> {
    s.pools.iter().find(|p| p.pool.eq_ignore_ascii_case(name))
}

fn healthy(s: &Status, name: &str) -> bool {
    pool(s, name).is_some_and(PoolReading::healthy)
}

fn failover(from: &str, to: &str) -> String {
    format!("edgefail failover --from {from} --to {to}")
}

/// What could not be read, source by source.
fn unreadable(s: &Status) -> Vec<String> {
    let mut out = Vec::new();
    for site in &s.sites {
        if let Some(why) = &site.cannot_tell {
            out.push(format!("{}'s route: {why}", site.site));
        }
    }
    for p in &s.pools {
        for server in &p.servers {
            if let Some(why) = &server.cannot_tell {
                out.push(format!("{} services ({}): {why}", server.fqdn, p.pool));
            }
        }
    }
    for d in &s.dns.servers {
        if let Some(why) = &d.cannot_tell {
            out.push(format!("DNS {}: {why}", d.server));
        }
    }
    if s.dns.basis.is_none() && s.dns.servers.iter().all(|d| d.cannot_tell.is_none()) {
        out.push("DNS: no authoritative server could be read".into());
    }
    if let Some(why) = &s.partner.cannot_tell {
        out.push(format!("what partners see: {why}"));
    }
    out
}

/// Everything that disagrees with the pool DNS prefers, and the fixes.
fn disagreements(s: &Status, preferred: &str, fix: &mut Vec<String>) -> Vec<Finding> {
    let mut found = Vec::new();
    let routed: Vec<(&str, Option<&str>, &str)> = s
        .sites
        .iter()
        .filter_map(|site| {
            site.route
                .as_deref()
                .map(|r| (site.site.as_str(), site.pool.as_deref(), r))
        })
        .collect();
    let on_dns = routed
        .iter()
        .filter(|(_, p, _)| p.is_some_and(|p| p.eq_ignore_ascii_case(preferred)))
        .count();
    let mut others: Vec<&str> = routed
        .iter()
        .filter_map(|(_, p, _)| *p)
        .filter(|p| !p.eq_ignore_ascii_case(preferred))
        .collect();
    others.sort_unstable();
    others.dedup();
    if !routed.is_empty() && on_dns == 0 {
        let named = if others.is_empty() {
            "no pool in the topology".to_string()
        } else {
            others.join(" and ")
        };
        found.push(Finding {
            split: true,
            text: format!("split brain: the route names {named} while DNS prefers {preferred}"),
        });
        for other in &others {
            if healthy(s, preferred) {
                fix.push(failover(other, preferred));
            } else if healthy(s, other) {
                fix.push(failover(preferred, other));
            } else {
                fix.push(format!(
                    "{} (once {preferred}'s services run and its port is open)",
                    failover(other, preferred)
                ));
            }
        }
    }
    for (site, p, route) in &routed {
        match p {
            Some(p) if p.eq_ignore_ascii_case(preferred) => {}
            Some(p) if on_dns == 0 => {
                // Already said as the split brain above; one line per site.
                found.push(Finding {
                    split: false,
                    text: format!("{site}'s route names {p} ({route})"),
                });
            }
            Some(p) => {
                let stopped = pool(s, p)
                    .map(|x| x.services)
                    .filter(|st| matches!(st, ServicesState::Stopped | ServicesState::Mixed));
                if let Some(state) = stopped {
                    // A route on a pool whose services are down while DNS
                    // sends partners elsewhere: what a failover to that pool
                    // looks like when it stopped between steps 3 and 4.
                    found.push(Finding {
                        split: true,
                        text: format!(
                            "split brain: {site}'s route names {p}, whose services are {}, while DNS prefers {preferred}",
                            state.as_str()
                        ),
                    });
                    fix.push(format!(
                        "to finish a failover to {p}: `{}` (or `edgefail failover --resume` if that run was interrupted)",
                        failover(preferred, p)
                    ));
                    fix.push(format!(
                        "to stay on {preferred}: set management.move_routes: all_sites in the topology and run `{}`",
                        failover(p, preferred)
                    ));
                } else {
                    found.push(Finding {
                        split: false,
                        text: format!(
                            "{site}'s route still names {p} ({route}), not {preferred} where partners go"
                        ),
                    });
                    fix.push(format!(
                        "set management.move_routes: all_sites in the topology and run `{}` (moves {site}'s route too; the rest is already done)",
                        failover(p, preferred)
                    ));
                }
            }
            None => found.push(Finding {
                split: false,
                text: format!(
                    "{site}'s route names {route}, an Edge server in no pool of the topology"
                ),
            }),
        }
    }
    let a_pools = &s.dns.a_pools;
    if !a_pools.is_empty() && !a_pools.iter().any(|p| p.eq_ignore_ascii_case(preferred)) {
        found.push(Finding {
            split: true,
            text: format!(
                "split brain: {} A points at {} ({}) while the SRV record prefers {preferred}",
                s.dns.a_record,
                s.dns.a.join(", "),
                a_pools.join(", ")
            ),
        });
        if let Some(a_pool) = a_pools.first() {
            fix.push(format!(
                "{} (step 4 moves the A record)",
                failover(a_pool, preferred)
            ));
        }
    }
    if !s.partner.pools.is_empty()
        && !s
            .partner
            .pools
            .iter()
            .any(|p| p.eq_ignore_ascii_case(preferred))
    {
        found.push(Finding {
            split: false,
            text: format!(
                "partners reach {} although the SRV record prefers {preferred}",
                s.partner.pools.join(", ")
            ),
        });
    }
    if let Some(p) = pool(s, preferred) {
        match p.services {
            ServicesState::Mixed => found.push(Finding {
                split: false,
                text: format!(
                    "{preferred}'s services are mixed: {}",
                    p.stragglers.join("; ")
                ),
            }),
            ServicesState::Stopped => found.push(Finding {
                split: false,
                text: format!("{preferred}'s Lync services are Stopped"),
            }),
            _ => {}
        }
        if p.services == ServicesState::Mixed || p.services == ServicesState::Stopped {
            fix.push(format!(
                "start the Lync services on {preferred}'s Edge servers (Start-CsWindowsService)"
            ));
        }
    }
    for d in &s.dns.disagreements {
        found.push(Finding {
            split: false,
            text: format!("the authoritative servers disagree: {d}"),
        });
    }
    if !s.dns.disagreements.is_empty() {
        fix.push(
            "check zone transfers to the lagging server (NOTIFY, allow-transfer) and run status again"
                .into(),
        );
    }
    found
}

/// Judge the readings.
pub fn judge(s: &Status) -> Verdict {
    let cannot_tell = unreadable(s);
    let preferred = s.dns.preferred_pool().map(str::to_string);
    let site = preferred
        .as_deref()
        .and_then(|p| pool(s, p))
        .map(|p| p.site.clone());
    let mut fix = Vec::new();
    let found = match &preferred {
        Some(p) => disagreements(s, p, &mut fix),
        None => match &s.dns.preferred {
            Some(srv) => vec![Finding {
                split: false,
                text: format!(
                    "partners prefer {}, which is the SRV target of no pool in the topology",
                    srv.target
                ),
            }],
            None if s.dns.basis.is_some() => vec![Finding {
                split: false,
                text: format!(
                    "no _xmpp-server._tcp record for {}: partners fall back to the domain itself",
                    s.domain
                ),
            }],
            None => Vec::new(),
        },
    };
    let texts: Vec<String> = found.iter().map(|f| f.text.clone()).collect();
    let runs = match (&preferred, &site) {
        (Some(p), Some(site)) => format!("XMPP federation runs through {p} ({site})"),
        (Some(p), None) => format!("XMPP federation runs through {p}"),
        _ => "XMPP federation runs".to_string(),
    };
    let (state, line) = if s.partner.cannot_tell.is_none() && !s.partner.passed {
        let from = s
            .partner
            .pools
            .first()
            .cloned()
            .or_else(|| preferred.clone());
        // Where federation could go: a pool partners do not reach now,
        // whose services could be read and whose port path is open
        // (stopped services are what a failover starts in step 7). Live
        // pools first, then pools a site's route already names (a failover
        // that stopped half-way).
        let routed = |p: &PoolReading| s.sites.iter().any(|x| x.pool.as_deref() == Some(&p.pool));
        let mut spare: Vec<&PoolReading> = s
            .pools
            .iter()
            .filter(|p| p.carries_xmpp && !s.partner.pools.contains(&p.pool))
            .filter(|p| p.services != ServicesState::CannotTell && !p.servers.is_empty())
            .filter(|p| {
                p.servers
                    .iter()
                    .all(|x| x.port == "open" || x.port == "closed")
            })
            .collect();
        spare.sort_by_key(|p| (!p.healthy(), !routed(p)));
        let mut down_fix = match (&from, spare.first()) {
            (Some(from), Some(to)) => vec![failover(from, &to.pool)],
            (Some(from), None) => vec![format!(
                "no other Edge pool can be read with its port reachable: bring {from} back, or open the port of another pool and run `edgefail failover --from {from} --to POOL`"
            )],
            (None, _) => vec!["publish an _xmpp-server._tcp record for a live pool (edgefail failover --from POOL --to POOL)".into()],
        };
        down_fix.append(&mut fix);
        fix = down_fix;
        (VerdictState::Down, format!("down: {}", s.partner.sees))
    } else if let Some(split) = found.iter().find(|f| f.split) {
        (VerdictState::SplitBrain, split.text.clone())
    } else if let Some(first) = found.first() {
        (
            VerdictState::Drift,
            format!("{runs}, with drift: {}", first.text),
        )
    } else if let Some(first) = cannot_tell.first() {
        (
            VerdictState::CannotTell,
            match &preferred {
                Some(_) => format!("cannot tell: {first}; what could be read says {runs}"),
                None => format!("cannot tell: {first}"),
            },
        )
    } else {
        (VerdictState::Federating, runs)
    };
    fix.dedup();
    Verdict {
        state,
        line,
        pool: preferred,
        site,
        disagreements: texts,
        cannot_tell,
        fix,
        exit_code: state.exit().code(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::{
        DnsReading, DnsServerReading, PartnerReading, PoolReading, ServerReading, SiteReading,
        SrvReading,
    };
    use super::*;

    fn pool(name: &str, site: &str, services: ServicesState, port: &str) -> PoolReading {
        PoolReading {
            pool: name.into(),
            site: site.into(),
            version: "Lync Server 2013".into(),
            carries_xmpp: true,
            services,
            stragglers: Vec::new(),
            servers: vec![ServerReading {
                fqdn: format!("{name}-edge.contoso.com"),
                external_ipv4: "192.0.2.1".into(),
                services: Vec::new(),
                services_state: services,
                cannot_tell: None,
                port: port.into(),
                port_detail: String::new(),
            }],
        }
    }

    fn srv(priority: u16, pool: &str) -> SrvReading {
        SrvReading {
            priority,
            weight: 0,
            port: 5269,
            target: format!("{}-xmpp.contoso.com", pool.to_lowercase()),
            pool: Some(pool.into()),
        }
    }

    /// Both sites routed through `routes`, DNS preferring `preferred` with
    /// the A record on `a`, partners federating through `preferred`.
    fn estate(routes: [&str; 2], preferred: &str, a: &str) -> Status {
        let other = if preferred == "EdgePool1" {
            "EdgePool2"
        } else {
            "EdgePool1"
        };
        let srvs = vec![srv(10, preferred), srv(20, other)];
        Status {
            kind: "status".into(),
            format: 1,
            domain: "contoso.com".into(),
            at: String::new(),
            duration_ms: 0,
            sites: ["Site1", "Site2"]
                .iter()
                .zip(routes)
                .map(|(site, pool)| SiteReading {
                    site: site.to_string(),
                    parameter: Some("XmppExternalFederationRoute".into()),
                    route: Some(format!("{pool}-edge.contoso.com")),
                    pool: Some(pool.into()),
                    cannot_tell: None,
                })
                .collect(),
            pools: vec![
                pool("EdgePool1", "Site1", ServicesState::Running, "open"),
                pool("EdgePool2", "Site2", ServicesState::Running, "open"),
            ],
            dns: DnsReading {
                a_record: "xmpp.contoso.com".into(),
                servers: vec![DnsServerReading {
                    server: "192.0.2.53:53 (primary)".into(),
                    primary: true,
                    listed: true,
                    serial: Some(7),
                    a: vec!["192.0.2.1".into()],
                    srv: srvs.clone(),
                    cannot_tell: None,
                }],
                basis: Some("192.0.2.53:53 (primary)".into()),
                a: vec!["192.0.2.1".into()],
                a_pools: vec![a.into()],
                preferred: srvs.first().cloned(),
                srv: srvs,
                disagreements: Vec::new(),
            },
            partner: PartnerReading {
                passed: true,
                summary: "a partner's server can federate".into(),
                sees: "partners now go to ... and federate".into(),
                target: None,
                pools: vec![preferred.into()],
                findings: Vec::new(),
                cannot_tell: None,
            },
            verdict: Verdict::default(),
        }
    }

    #[test]
    fn consistent_and_federating() {
        let v = judge(&estate(
            ["EdgePool2", "EdgePool2"],
            "EdgePool2",
            "EdgePool2",
        ));
        assert_eq!(v.state, VerdictState::Federating);
        assert_eq!(v.line, "XMPP federation runs through EdgePool2 (Site2)");
        assert_eq!(v.exit_code, 0);
        assert!(v.fix.is_empty());
    }

    #[test]
    fn the_a_record_on_another_pool_is_split_brain() {
        let v = judge(&estate(
            ["EdgePool2", "EdgePool2"],
            "EdgePool2",
            "EdgePool1",
        ));
        assert_eq!(v.state, VerdictState::SplitBrain);
        assert!(
            v.line
                .starts_with("split brain: xmpp.contoso.com A points at")
        );
        assert_eq!(
            v.fix,
            vec!["edgefail failover --from EdgePool1 --to EdgePool2 (step 4 moves the A record)"]
        );
        assert_eq!(v.exit_code, 10);
    }

    #[test]
    fn every_route_elsewhere_is_split_brain_fixed_towards_the_healthy_pool() {
        let mut s = estate(["EdgePool1", "EdgePool1"], "EdgePool2", "EdgePool2");
        s.pools[1].services = ServicesState::Stopped;
        s.pools[1].servers[0].services_state = ServicesState::Stopped;
        let v = judge(&s);
        assert_eq!(
            v.line,
            "split brain: the route names EdgePool1 while DNS prefers EdgePool2"
        );
        // EdgePool2 is preferred but stopped: go back to the live pool.
        assert_eq!(
            v.fix[0],
            "edgefail failover --from EdgePool2 --to EdgePool1"
        );
    }

    #[test]
    fn down_fails_over_to_a_live_pool() {
        let mut s = estate(["EdgePool1", "EdgePool1"], "EdgePool1", "EdgePool1");
        s.partner.passed = false;
        s.partner.sees = "partners now go to edgepool1-xmpp.contoso.com:5269 (EdgePool1) and cannot federate: refused".into();
        s.pools[0].servers[0].port = "closed".into();
        let v = judge(&s);
        assert_eq!(v.state, VerdictState::Down);
        assert_eq!(v.exit_code, 11);
        assert!(v.line.starts_with("down: partners now go to"));
        assert_eq!(
            v.fix[0],
            "edgefail failover --from EdgePool1 --to EdgePool2"
        );
    }

    #[test]
    fn an_unreadable_source_is_cannot_tell_unless_something_disagrees() {
        let mut s = estate(["EdgePool2", "EdgePool2"], "EdgePool2", "EdgePool2");
        s.sites[0].route = None;
        s.sites[0].pool = None;
        s.sites[0].cannot_tell = Some("management shell: timed out".into());
        let v = judge(&s);
        assert_eq!(v.state, VerdictState::CannotTell);
        assert_eq!(v.exit_code, 12);
        assert!(
            v.line
                .contains("what could be read says XMPP federation runs through EdgePool2")
        );
        s.dns
            .disagreements
            .push("192.0.2.54:53 has serial 6".into());
        assert_eq!(judge(&s).state, VerdictState::Drift);
    }

    #[test]
    fn down_half_way_points_at_the_pool_the_route_already_names() {
        // Step 4 failed with EdgePool1 dead: Site2's route on EdgePool2,
        // whose services step 2 stopped (its port refuses: closed).
        let mut s = estate(["EdgePool1", "EdgePool2"], "EdgePool1", "EdgePool1");
        s.partner.passed = false;
        s.pools[0].servers[0].port = "filtered".into();
        s.pools[1].services = ServicesState::Stopped;
        s.pools[1].servers[0].services_state = ServicesState::Stopped;
        s.pools[1].servers[0].port = "closed".into();
        let v = judge(&s);
        assert_eq!(v.state, VerdictState::Down);
        assert_eq!(
            v.fix[0],
            "edgefail failover --from EdgePool1 --to EdgePool2"
        );
    }
}
