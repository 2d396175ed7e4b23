//! Reading every source at once: the management shell (routes), each Edge
//! server (services, port), each authoritative DNS server, and the
//! partner's-eye probe. Nothing here changes anything.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use super::{
    DnsReading, DnsServerReading, PartnerReading, PoolReading, ServerReading, ServiceReading,
    ServicesState, SiteReading, SrvReading, Status, verdict,
};
use crate::dns::{self, Authority, Snapshot, SrvRecord, ZoneNames};
use crate::lync::{Machine, Service};
use crate::names::printable;
use crate::steps::{partner, route};
use crate::topology::{Server, Topology};
use crate::xmpp::probe;
use crate::xmpp::{Timeouts, port};

/// The machines to ask: the management shell and every Edge server of
/// every pool (topology order).
pub struct Sources {
    pub topology: Topology,
    pub management: Machine,
    /// (pool name, machine) for every server of every pool.
    pub servers: Vec<(String, Arc<Machine>)>,
    pub command_timeout: Duration,
}

impl Sources {
    /// The real machines, through the topology's transports.
    pub fn new(topology: Topology, command_timeout: Duration) -> Sources {
        let management = Machine::new("management shell", &topology.management.transport);
        Sources::with_machines(topology, command_timeout, management, |s| {
            Machine::new(&s.fqdn, &s.transport)
        })
    }

    /// Machines built by the caller (the rehearsal's simulated ones).
    pub fn with_machines(
        topology: Topology,
        command_timeout: Duration,
        management: Machine,
        mut edge: impl FnMut(&Server) -> Machine,
    ) -> Sources {
        let servers = topology
            .pools()
            .flat_map(|p| {
                p.pool
                    .servers
                    .iter()
                    .map(|s| (p.pool.name.clone(), Arc::new(edge(s))))
                    .collect::<Vec<_>>()
            })
            .collect();
        Sources {
            topology,
            management,
            servers,
            command_timeout,
        }
    }
}

/// Read everything at once and judge it.
pub async fn read(sources: &Sources) -> Status {
    let started = Instant::now();
    let at = crate::event::now();
    let t = &sources.topology;
    let (sites, services, ports, dns, partner) = tokio::join!(
        read_routes(sources),
        read_services(sources),
        read_ports(t),
        read_dns(t),
        read_partner(t),
    );
    let pools = assemble_pools(t, services, ports);
    let mut status = Status {
        kind: "status".into(),
        format: super::FORMAT,
        domain: t.xmpp.domain.clone(),
        at,
        duration_ms: 0,
        sites,
        pools,
        dns,
        partner,
        verdict: verdict::Verdict::default(),
    };
    status.verdict = verdict::judge(&status);
    status.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    status
}

async fn read_routes(sources: &Sources) -> Vec<SiteReading> {
    let t = &sources.topology;
    let shell = &sources.management;
    let parameter = match route::detect_parameter(shell, t, sources.command_timeout).await {
        Ok(p) => p,
        Err(e) => {
            return t
                .sites
                .iter()
                .map(|s| SiteReading {
                    site: s.name.clone(),
                    parameter: None,
                    route: None,
                    pool: None,
                    cannot_tell: Some(e.message.clone()),
                })
                .collect();
        }
    };
    route::read_sites(shell, t, parameter, sources.command_timeout)
        .await
        .into_iter()
        .map(|(site, read)| match read {
            Ok(current) => SiteReading {
                site,
                parameter: Some(route::name(parameter).to_string()),
                pool: current
                    .as_deref()
                    .and_then(|c| route::pool_named(t, c))
                    .map(|p| p.pool.name.clone()),
                route: current.as_deref().map(printable),
                cannot_tell: None,
            },
            Err(e) => SiteReading {
                site,
                parameter: Some(route::name(parameter).to_string()),
                route: None,
                pool: None,
                cannot_tell: Some(e),
            },
        })
        .collect()
}

/// Every server's services, in `sources.servers` order.
async fn read_services(sources: &Sources) -> Vec<Result<Vec<Service>, String>> {
    let mut set = JoinSet::new();
    for (i, (_, m)) in sources.servers.iter().enumerate() {
        let m = m.clone();
        let timeout = sources.command_timeout;
        set.spawn(async move { (i, m.services(timeout).await.map_err(|e| e.to_string())) });
    }
    let mut out: Vec<Result<Vec<Service>, String>> = sources
        .servers
        .iter()
        .map(|(_, m)| Err(format!("{}: the reading task failed", m.name)))
        .collect();
    while let Some(joined) = set.join_next().await {
        if let Ok((i, r)) = joined
            && let Some(slot) = out.get_mut(i)
        {
            *slot = r;
        }
    }
    out
}

/// Every server's XMPP port from outside, in topology order.
async fn read_ports(t: &Topology) -> Vec<port::PortProbe> {
    let timeouts = Timeouts::from_topology(&t.xmpp);
    let mut tasks = Vec::new();
    for p in t.pools() {
        for s in &p.pool.servers {
            // Validation guarantees an IPv4 address.
            let ip: Ipv4Addr = s.external_ipv4.parse().unwrap_or(Ipv4Addr::UNSPECIFIED);
            let addr = SocketAddr::from((ip, t.xmpp.port));
            tasks.push(tokio::spawn(port::classify(addr, timeouts.connect)));
        }
    }
    let mut out = Vec::with_capacity(tasks.len());
    for task in tasks {
        if let Ok(p) = task.await {
            out.push(p);
        }
    }
    out
}

fn services_state(services: &[Service]) -> ServicesState {
    let running = services.iter().filter(|s| s.status == "Running").count();
    let stopped = services.iter().filter(|s| s.status == "Stopped").count();
    match (running, stopped) {
        _ if services.is_empty() => ServicesState::CannotTell,
        (r, _) if r == services.len() => ServicesState::Running,
        (_, s) if s == services.len() => ServicesState::Stopped,
        _ => ServicesState::Mixed,
    }
}

fn assemble_pools(
    t: &Topology,
    services: Vec<Result<Vec<Service>, String>>,
    ports: Vec<port::PortProbe>,
) -> Vec<PoolReading> {
    let mut services = services.into_iter();
    let mut ports = ports.into_iter();
    let mut pools = Vec::new();
    for p in t.pools() {
        let mut servers = Vec::new();
        for s in &p.pool.servers {
            let read = services
                .next()
                .unwrap_or_else(|| Err("not read".to_string()));
            let probe = ports.next();
            let (list, state, cannot_tell) = match read {
                Ok(list) if list.is_empty() => (
                    Vec::new(),
                    ServicesState::CannotTell,
                    Some(format!(
                        "{}: Get-CsWindowsService listed no Lync services",
                        s.fqdn
                    )),
                ),
                Ok(list) => {
                    let state = services_state(&list);
                    (list, state, None)
                }
                Err(e) => (Vec::new(), ServicesState::CannotTell, Some(e)),
            };
            servers.push(ServerReading {
                fqdn: s.fqdn.clone(),
                external_ipv4: s.external_ipv4.clone(),
                services: list
                    .iter()
                    .map(|x| ServiceReading {
                        name: printable(&x.name),
                        status: printable(&x.status),
                    })
                    .collect(),
                services_state: state,
                cannot_tell,
                port: probe
                    .as_ref()
                    .map(|p| p.state.as_str().to_string())
                    .unwrap_or_else(|| "cannot tell".into()),
                port_detail: probe
                    .as_ref()
                    .map(|p| format!("{} {}", p.addr, p.describe()))
                    .unwrap_or_else(|| "the port probe did not finish".into()),
            });
        }
        let (state, stragglers) = pool_state(&servers);
        pools.push(PoolReading {
            pool: p.pool.name.clone(),
            site: p.site.name.clone(),
            version: p.pool.version.to_string(),
            carries_xmpp: p.pool.version.carries_xmpp(),
            services: state,
            stragglers,
            servers,
        });
    }
    pools
}

/// The pool's services as a whole, and who is off the majority.
fn pool_state(servers: &[ServerReading]) -> (ServicesState, Vec<String>) {
    if servers.is_empty()
        || servers
            .iter()
            .any(|s| s.services_state == ServicesState::CannotTell)
    {
        return (ServicesState::CannotTell, Vec::new());
    }
    let all = |state| servers.iter().all(|s| s.services_state == state);
    if all(ServicesState::Running) {
        return (ServicesState::Running, Vec::new());
    }
    if all(ServicesState::Stopped) {
        return (ServicesState::Stopped, Vec::new());
    }
    // Mixed: name what is not running (or, when most are stopped, what runs).
    let running = servers
        .iter()
        .flat_map(|s| &s.services)
        .filter(|x| x.status == "Running")
        .count();
    let total = servers.iter().map(|s| s.services.len()).sum::<usize>();
    let odd_status = |x: &ServiceReading| {
        if running * 2 >= total {
            x.status != "Running"
        } else {
            x.status == "Running"
        }
    };
    let stragglers = servers
        .iter()
        .filter_map(|s| {
            let odd: Vec<String> = s
                .services
                .iter()
                .filter(|x| odd_status(x))
                .map(|x| format!("{} {}", x.name, x.status))
                .collect();
            (!odd.is_empty()).then(|| format!("{}: {}", s.fqdn, odd.join(", ")))
        })
        .collect();
    (ServicesState::Mixed, stragglers)
}

fn same_host(a: &str, b: &str) -> bool {
    a.trim_end_matches('.')
        .eq_ignore_ascii_case(b.trim_end_matches('.'))
}

fn srv_reading(t: &Topology, r: &SrvRecord) -> SrvReading {
    let target = dns::show(&r.target);
    SrvReading {
        priority: r.priority,
        weight: r.weight,
        port: r.port,
        pool: t
            .pools()
            .find(|p| same_host(p.pool.srv_target(&t.xmpp), &target))
            .map(|p| p.pool.name.clone()),
        target: target.trim_end_matches('.').to_string(),
    }
}

/// The pools with an Edge server at `ip`.
fn pools_at(t: &Topology, ip: IpAddr) -> Vec<String> {
    t.pools()
        .filter(|p| {
            p.pool
                .servers
                .iter()
                .any(|s| s.external_ipv4.parse::<IpAddr>().ok() == Some(ip))
        })
        .map(|p| p.pool.name.clone())
        .collect()
}

fn describe(s: &Snapshot) -> String {
    let a: Vec<String> = s.a.records.iter().map(|ip| ip.to_string()).collect();
    let srv: Vec<String> = s.srv.records.iter().map(|r| r.to_string()).collect();
    format!(
        "serial {}, A {}, SRV {}",
        s.serial,
        if a.is_empty() {
            "none".to_string()
        } else {
            a.join(" ")
        },
        if srv.is_empty() {
            "none".to_string()
        } else {
            srv.join("; ")
        }
    )
}

async fn read_dns(t: &Topology) -> DnsReading {
    let mut reading = DnsReading {
        a_record: t.xmpp.a_record.clone(),
        servers: Vec::new(),
        basis: None,
        a: Vec::new(),
        a_pools: Vec::new(),
        srv: Vec::new(),
        preferred: None,
        disagreements: Vec::new(),
    };
    let (names, roles) = match (ZoneNames::from_topology(t), dns::servers(t)) {
        (Ok(n), Ok(r)) => (n, r),
        (Err(e), _) | (_, Err(e)) => {
            reading.servers.push(DnsServerReading {
                server: "(none)".into(),
                primary: false,
                listed: false,
                serial: None,
                a: Vec::new(),
                srv: Vec::new(),
                cannot_tell: Some(format!("failed to {e}")),
            });
            return reading;
        }
    };
    let timeout = dns::timeout(t);
    let mut set = JoinSet::new();
    for (i, role) in roles.iter().enumerate() {
        let names = names.clone();
        let auth = Authority::new(role.addr, timeout);
        set.spawn(async move { (i, auth.read(&names).await.map_err(|e| e.to_string())) });
    }
    let mut snaps: Vec<Result<Snapshot, String>> = roles
        .iter()
        .map(|r| Err(format!("read {}: the reading task failed", r.addr)))
        .collect();
    while let Some(joined) = set.join_next().await {
        if let Ok((i, r)) = joined
            && let Some(slot) = snaps.get_mut(i)
        {
            *slot = r;
        }
    }
    let basis = roles
        .iter()
        .zip(&snaps)
        .find(|(r, s)| r.primary && s.is_ok())
        .or_else(|| roles.iter().zip(&snaps).find(|(_, s)| s.is_ok()))
        .and_then(|(r, s)| s.as_ref().ok().map(|s| (*r, s.clone())));
    for (role, snap) in roles.iter().zip(&snaps) {
        reading.servers.push(match snap {
            Ok(s) => DnsServerReading {
                server: role.label(),
                primary: role.primary,
                listed: role.listed,
                serial: Some(s.serial),
                a: s.a.records.iter().map(|ip| ip.to_string()).collect(),
                srv: s.srv.records.iter().map(|r| srv_reading(t, r)).collect(),
                cannot_tell: None,
            },
            Err(e) => DnsServerReading {
                server: role.label(),
                primary: role.primary,
                listed: role.listed,
                serial: None,
                a: Vec::new(),
                srv: Vec::new(),
                cannot_tell: Some(format!("failed to {e}")),
            },
        });
    }
    let Some((base_role, base)) = basis else {
        return reading;
    };
    reading.basis = Some(base_role.label());
    reading.a = base.a.records.iter().map(|ip| ip.to_string()).collect();
    let mut a_pools: Vec<String> = base
        .a
        .records
        .iter()
        .flat_map(|ip| pools_at(t, IpAddr::V4(*ip)))
        .collect();
    a_pools.dedup();
    reading.a_pools = a_pools;
    let mut srv: Vec<SrvRecord> = base.srv.records.clone();
    // The order partners try them: lowest priority number, then heaviest.
    srv.sort_by(|a, b| {
        a.priority
            .cmp(&b.priority)
            .then(b.weight.cmp(&a.weight))
            .then(dns::show(&a.target).cmp(&dns::show(&b.target)))
    });
    reading.srv = srv.iter().map(|r| srv_reading(t, r)).collect();
    reading.preferred = reading.srv.first().cloned();
    for (role, snap) in roles.iter().zip(&snaps) {
        let Ok(s) = snap else { continue };
        if role.addr == base_role.addr {
            continue;
        }
        if s.serial != base.serial
            || s.a.records != base.a.records
            || s.srv.records != base.srv.records
        {
            let behind = if dns::serial_at_least(base.serial, s.serial) && s.serial != base.serial {
                format!(" ({} serial(s) behind)", base.serial.wrapping_sub(s.serial))
            } else {
                String::new()
            };
            reading.disagreements.push(format!(
                "{} has {}{behind}, {} has {}",
                role.label(),
                describe(s),
                base_role.label(),
                describe(&base)
            ));
        }
    }
    reading
}

async fn read_partner(t: &Topology) -> PartnerReading {
    let report = probe::probe_domain(&partner::lookup(t), &partner::options(t)).await;
    PartnerReading {
        passed: report.passed && report.srv_error.is_none(),
        summary: report.summary(),
        sees: partner::where_partners_go(t, &report),
        target: report
            .target
            .as_ref()
            .map(|x| format!("{}:{}", x.host, x.port)),
        pools: partner::reached_pools(t, &report),
        findings: report.lines(),
        cannot_tell: report.srv_error.clone(),
    }
}
