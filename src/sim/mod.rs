//! The simulated estate `edgefail rehearse` runs against, built inside
//! this process on loopback: the management shell and Edge servers behind
//! the real transport interface (`machine`, `shell`), an authoritative DNS
//! primary and a secondary that follows it (`dns`), and an XMPP listener per
//! Edge server (`xmpp`), plus the drills that break one of them on purpose.

pub mod dns;
pub mod machine;
pub mod shell;
pub mod xmpp;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_proto::rr::rdata::{A, NS, SOA, SRV};
use hickory_proto::rr::{Name, RData, Record, TSigner};

use crate::lync::Machine;
use crate::steps::{Ctx, RunOptions};
use crate::topology::{DnsMode, RouteParameter, Topology, Tsig};
use machine::{Estate, Simulated};
use shell::{Fault, HostState, PoolState, Replica, SiteState, State};

/// A failure to practise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Drill {
    StopFails(String),
    StartFails(String),
    ServiceHangs(String),
    RouteFails,
    DnsBadKey,
    DnsConcurrentChange,
    PortFiltered,
}

impl Drill {
    pub fn parse(text: &str, target_servers: &[String]) -> Result<Drill, String> {
        let (name, server) = match text.split_once(':') {
            Some((n, s)) => (n, Some(s)),
            None => (text, None),
        };
        let server = || -> Result<String, String> {
            match server {
                None => target_servers
                    .first()
                    .cloned()
                    .ok_or_else(|| "the target pool has no Edge server".to_string()),
                Some(s) => target_servers
                    .iter()
                    .find(|t| t.eq_ignore_ascii_case(s))
                    .cloned()
                    .ok_or_else(|| {
                        format!(
                            "--inject {}: {} is not an Edge server of the target pool ({})",
                            crate::names::printable(text),
                            crate::names::printable(s),
                            target_servers.join(", ")
                        )
                    }),
            }
        };
        let plain = |d: Drill| match server_given(text) {
            true => Err(format!(
                "--inject {}: this drill takes no server",
                crate::names::printable(text)
            )),
            false => Ok(d),
        };
        match name {
            "stop-fails" => Ok(Drill::StopFails(server()?)),
            "start-fails" => Ok(Drill::StartFails(server()?)),
            "service-hangs" => Ok(Drill::ServiceHangs(server()?)),
            "route-fails" => plain(Drill::RouteFails),
            "dns-bad-key" => plain(Drill::DnsBadKey),
            "dns-concurrent-change" => plain(Drill::DnsConcurrentChange),
            "port-filtered" => plain(Drill::PortFiltered),
            _ => Err(format!(
                "--inject {}: no such drill (drills: stop-fails[:SERVER], start-fails[:SERVER], service-hangs[:SERVER], route-fails, dns-bad-key, dns-concurrent-change, port-filtered)",
                crate::names::printable(text)
            )),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Drill::StopFails(s) => format!("stop-fails:{s}"),
            Drill::StartFails(s) => format!("start-fails:{s}"),
            Drill::ServiceHangs(s) => format!("service-hangs:{s}"),
            Drill::RouteFails => "route-fails".into(),
            Drill::DnsBadKey => "dns-bad-key".into(),
            Drill::DnsConcurrentChange => "dns-concurrent-change".into(),
            Drill::PortFiltered => "port-filtered".into(),
        }
    }
}

fn server_given(text: &str) -> bool {
    text.contains(':')
}

/// A private directory for the rehearsal's key file and journal, removed
/// when the rehearsal ends.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> std::io::Result<TempDir> {
        let path =
            std::env::temp_dir().join(format!("edgefail-rehearsal-{}-{tag}", std::process::id()));
        crate::platform::create_private_dir(&path)?;
        Ok(TempDir(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn random_bytes<const N: usize>() -> [u8; N] {
    use ring::rand::SecureRandom;
    let mut out = [0u8; N];
    // The system's generator only fails when the OS has none; the
    // rehearsal then still gets distinct (if predictable) values.
    if ring::rand::SystemRandom::new().fill(&mut out).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default()
            ^ std::process::id();
        for (i, b) in out.iter_mut().enumerate() {
            *b = (nanos >> ((i % 4) * 8)) as u8;
        }
    }
    out
}

/// Where one Edge server lives for the rehearsal.
#[derive(Debug, Clone)]
pub struct MappedServer {
    pub fqdn: String,
    pub pool: String,
    pub real: String,
    pub ip: Ipv4Addr,
}

/// The most Edge servers one rehearsal maps (127.A.B.10 to 127.A.B.249).
const MAX_SERVERS: usize = 240;

/// Give each Edge server its own 127.A.B.x, A and B drawn for this
/// rehearsal so that two rehearsals on one machine do not meet.
fn map_servers(t: &Topology) -> Result<Vec<MappedServer>, String> {
    let [a, b] = random_bytes::<2>();
    let a = 100 + a % 100;
    let mut out = Vec::new();
    for p in t.pools() {
        for s in &p.pool.servers {
            let k = out.len();
            if k >= MAX_SERVERS {
                return Err(format!(
                    "the rehearsal maps at most {MAX_SERVERS} Edge servers onto loopback; this topology has more"
                ));
            }
            out.push(MappedServer {
                fqdn: s.fqdn.clone(),
                pool: p.pool.name.clone(),
                real: s.external_ipv4.clone(),
                ip: Ipv4Addr::new(127, a, b, 10 + k as u8),
            });
        }
    }
    Ok(out)
}

/// The topology's XMPP port if it can be bound on every mapped address,
/// else one free port that can.
async fn pick_port(servers: &[MappedServer], wanted: u16) -> Result<u16, String> {
    async fn all_bind(servers: &[MappedServer], port: u16) -> bool {
        let mut held = Vec::new();
        for s in servers {
            match tokio::net::TcpListener::bind((s.ip, port)).await {
                Ok(l) => held.push(l),
                Err(_) => return false,
            }
        }
        true
    }
    if all_bind(servers, wanted).await {
        return Ok(wanted);
    }
    let first = servers.first().map(|s| s.ip).unwrap_or(Ipv4Addr::LOCALHOST);
    for _ in 0..20 {
        let port = tokio::net::TcpListener::bind((first, 0))
            .await
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("find a free loopback port: {e}"))?
            .port();
        if all_bind(servers, port).await {
            return Ok(port);
        }
    }
    Err("find a loopback port free on every mapped Edge server address".into())
}

fn name(text: &str) -> Result<Name, String> {
    crate::dns::fqdn(text).map_err(|e| format!("failed to {e}"))
}

/// The zone as it stands before the failover: the --from pool published and
/// preferred.
pub fn before_zone(
    t: &Topology,
    from: &str,
    mapped: &[MappedServer],
    port: u16,
) -> Result<dns::Zone, String> {
    let x = &t.xmpp;
    let origin = name(&t.dns.zone)?;
    let ns = name(&format!("ns1.{}", t.dns.zone))?;
    let ttl = x.ttl;
    let published = |pool: &crate::topology::Pool| -> Option<Ipv4Addr> {
        let route = pool.route_server();
        mapped
            .iter()
            .find(|m| m.fqdn.eq_ignore_ascii_case(route))
            .map(|m| m.ip)
    };
    let mut records = vec![
        Record::from_rdata(
            origin.clone(),
            3600,
            RData::SOA(SOA::new(
                ns.clone(),
                name(&format!("hostmaster.{}", t.dns.zone))?,
                2026010101,
                3600,
                600,
                86400,
                60,
            )),
        ),
        Record::from_rdata(origin.clone(), 3600, RData::NS(NS(ns.clone()))),
        Record::from_rdata(ns, 3600, RData::A(A(Ipv4Addr::LOCALHOST))),
    ];
    let from_pool = t
        .pool(from)
        .ok_or_else(|| format!("no pool named '{}'", crate::names::printable(from)))?
        .pool;
    let mut a_names: Vec<Name> = Vec::new();
    let mut add_a = |host: &str, ip: Option<Ipv4Addr>, records: &mut Vec<Record>| {
        let (Ok(n), Some(ip)) = (name(host), ip) else {
            return;
        };
        if a_names.iter().any(|m| m.to_lowercase() == n.to_lowercase()) {
            return;
        }
        a_names.push(n.clone());
        records.push(Record::from_rdata(n, ttl, RData::A(A(ip))));
    };
    add_a(&x.a_record, published(from_pool), &mut records);
    add_a(from_pool.srv_target(x), published(from_pool), &mut records);
    let carriers: Vec<&crate::topology::Pool> = t
        .pools()
        .map(|p| p.pool)
        .filter(|p| p.version.carries_xmpp() && !p.servers.is_empty())
        .collect();
    for p in &carriers {
        add_a(p.srv_target(x), published(p), &mut records);
    }
    // The failed pool was the preferred one: it swaps priorities with
    // whichever pool the topology prefers, if that is another.
    let lowest = carriers.iter().map(|p| p.srv_priority).min().unwrap_or(0);
    let owner = name(&x.srv_owner())?;
    for p in &carriers {
        let priority = if p.name == from_pool.name {
            lowest.min(p.srv_priority)
        } else if p.srv_priority == lowest && from_pool.srv_priority != lowest {
            from_pool.srv_priority
        } else {
            p.srv_priority
        };
        records.push(Record::from_rdata(
            owner.clone(),
            ttl,
            RData::SRV(SRV::new(
                priority,
                p.srv_weight,
                port,
                name(p.srv_target(x))?,
            )),
        ));
    }
    Ok(dns::Zone::new(origin, records))
}

/// The estate as it stands before the failover: every service running,
/// every site's route on the --from pool's route server.
pub fn before_estate(t: &Topology, from: &str, management_host: &str) -> State {
    let parameter = match t.management.route_parameter {
        RouteParameter::XmppFederationRoute => "XmppFederationRoute",
        _ => "XmppExternalFederationRoute",
    };
    let route_server = t.pool(from).map(|p| p.pool.route_server()).unwrap_or("");
    let route = if parameter == "XmppFederationRoute" {
        format!("EdgeServer:{route_server}")
    } else {
        route_server.to_string()
    };
    let running: BTreeMap<String, String> = ["REPLICA", "RTCDATAPROXY", "RTCMEDIARELAY", "RTCSRV"]
        .iter()
        .map(|s| (s.to_string(), "Running".to_string()))
        .collect();
    let mut state = State {
        set_cssite_parameter: parameter.into(),
        replication_lag_reads: 1,
        ..State::default()
    };
    let mut replicas = vec![Replica {
        fqdn: management_host.to_string(),
        up_to_date: true,
        lag: 0,
    }];
    for site in &t.sites {
        state.sites.insert(
            site.name.clone(),
            SiteState {
                identity: format!("Site:{}", site.name),
                route: route.clone(),
            },
        );
        for pool in &site.pools {
            state.pools.insert(
                pool.fqdn.to_ascii_lowercase(),
                PoolState {
                    identity: pool.fqdn.clone(),
                    site: format!("Site:{}", site.name),
                    computers: pool.servers.iter().map(|s| s.fqdn.clone()).collect(),
                },
            );
            for s in &pool.servers {
                state.hosts.insert(
                    s.fqdn.clone(),
                    HostState {
                        services: running.clone(),
                        settle_reads: 1,
                        pending: 0,
                    },
                );
                replicas.push(Replica {
                    fqdn: s.fqdn.clone(),
                    up_to_date: true,
                    lag: 0,
                });
            }
        }
    }
    state.replication = Some(replicas);
    state
}

fn fault(host: &str, cmdlet: &str, action: &str, message: &str) -> Fault {
    Fault {
        host: host.into(),
        cmdlet: cmdlet.into(),
        action: action.into(),
        message: message.into(),
        ..Fault::default()
    }
}

/// What a rehearsal is asked to simulate.
pub struct Setup<'a> {
    /// The real topology, validated.
    pub real: &'a Topology,
    /// The pools, as the topology names them.
    pub from: &'a str,
    pub to: &'a str,
    /// How long each simulated command takes.
    pub delay: Duration,
    pub drills: &'a [Drill],
}

impl Stage {
    /// Build the estate as it stands before the failover, on loopback, with
    /// the drills' faults in place.
    pub async fn build(setup: Setup<'_>) -> Result<Stage, String> {
        let Setup {
            real,
            from,
            to,
            delay,
            drills,
        } = setup;
        let dir = TempDir::new(&format!("{:x}", u32::from_be_bytes(random_bytes::<4>())))
            .map_err(|e| format!("create a private temporary directory: {e}"))?;
        let mapped = map_servers(real)?;
        let port = pick_port(&mapped, real.xmpp.port).await?;

        // The rehearsal's own TSIG key, in a key file only this user can read.
        let key_name = real
            .dns
            .tsig
            .as_ref()
            .map(|t| t.name.clone())
            .unwrap_or_else(|| "edgefail-rehearsal".into());
        let secret = random_bytes::<32>();
        let key_file = dir.0.join("rehearsal.key");
        write_key_file(&key_file, &key_name, &secret)?;
        let tsig_name = name(&key_name)?;
        let signer = |secret: Vec<u8>| {
            TSigner::new(
                secret,
                hickory_proto::rr::rdata::tsig::TsigAlgorithm::HmacSha256,
                tsig_name.clone(),
                300,
            )
            .map_err(|e| format!("make the rehearsal's TSIG key: {e}"))
        };
        let real_key = signer(secret.to_vec())?;

        // DNS: the primary and a secondary following it.
        let zone = before_zone(real, from, &mapped, port)?;
        let primary_zone = Arc::new(Mutex::new(zone.clone()));
        let keys = Arc::new(Mutex::new(dns::Keys {
            signer: real_key.clone(),
        }));
        let dns_faults = Arc::new(Mutex::new(dns::DnsFaults::default()));
        let primary_addr = dns::serve(dns::Server {
            zone: primary_zone.clone(),
            keys: Some(keys.clone()),
            faults: dns_faults.clone(),
        })
        .await
        .map_err(|e| format!("start the rehearsal's DNS primary: {e}"))?;
        let secondary_zone = Arc::new(Mutex::new(zone));
        let secondary_addr = dns::serve(dns::Server {
            zone: secondary_zone.clone(),
            keys: None,
            faults: Arc::default(),
        })
        .await
        .map_err(|e| format!("start the rehearsal's DNS secondary: {e}"))?;
        dns::follow(
            primary_addr,
            primary_zone,
            secondary_zone,
            delay.max(Duration::from_millis(50)),
        );

        // The rewritten topology: same names, loopback addresses, the
        // rehearsal's key, short timeouts.
        let mut t = real.clone();
        for site in &mut t.sites {
            for pool in &mut site.pools {
                for s in &mut pool.servers {
                    if let Some(m) = mapped.iter().find(|m| m.fqdn == s.fqdn) {
                        s.external_ipv4 = m.ip.to_string();
                    }
                }
            }
        }
        t.xmpp.port = port;
        t.xmpp.accept_untrusted_cert = true;
        t.xmpp.connect_timeout_ms = 1000;
        t.xmpp.first_byte_timeout_ms = 3000;
        t.xmpp.exchange_timeout_ms = 10_000;
        t.dns.mode = DnsMode::Rfc2136;
        t.dns.primary = Some(primary_addr.to_string());
        t.dns.authoritative = vec![primary_addr.to_string(), secondary_addr.to_string()];
        t.dns.timeout_secs = 2;
        t.dns.tsig = Some(Tsig {
            name: key_name.clone(),
            algorithm: "hmac-sha256".into(),
            secret_file: Some(key_file),
            secret_env: None,
            secret: None,
        });
        let delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        let command_secs = 4u64.max(delay_ms.saturating_mul(12) / 1000 + 1);
        t.timeouts.command_secs = command_secs;
        t.timeouts.verify_secs = 30;
        t.timeouts.poll_ms = 100;

        // The management shell and Edge servers.
        let management_host = format!("fe1.{}", real.dns.zone);
        let estate: Estate = Arc::new(Mutex::new(before_estate(&t, from, &management_host)));
        let filtered = Arc::new(AtomicBool::new(false));
        for d in drills {
            let mut e = machine::lock(&estate);
            match d {
            Drill::StopFails(s) => e.faults.push(fault(s, "Stop-CsWindowsService", "fail", "Service RTCSRV failed to stop: the service did not respond to the stop request in a timely fashion.")),
            Drill::StartFails(s) => e.faults.push(fault(s, "Start-CsWindowsService", "fail", "Service RTCSRV failed to start: the certificate assigned to the external edge is not valid.")),
            Drill::ServiceHangs(s) => e.faults.push(fault(s, "Start-CsWindowsService", "hang", "")),
            Drill::RouteFails => e.faults.push(fault(&management_host, "Set-CsSite", "fail", "Cannot connect to the Central Management Store: the SQL Server instance is not reachable.")),
            Drill::DnsBadKey => dns::lock(&keys).signer = signer(random_bytes::<32>().to_vec())?,
            Drill::DnsConcurrentChange => {
                let other = mapped.first().map(|m| m.ip.octets()).unwrap_or([127, 0, 0, 1]);
                dns::lock(&dns_faults).concurrent_change = Some((
                    name(&real.xmpp.a_record)?,
                    vec![RData::A(A(Ipv4Addr::new(127, other[1], other[2], 250)))],
                ));
            }
            Drill::PortFiltered => filtered.store(true, Ordering::SeqCst),
        }
        }

        let names = vec![real.xmpp.domain.clone(), real.xmpp.a_record.clone()];
        let persona = xmpp::Persona {
            domain: real.xmpp.domain.clone(),
            tls: xmpp::tls_config(&names).map_err(|e| e.to_string())?,
        };
        let target_pool = to.to_string();
        let mut listeners = Listeners {
            servers: mapped
                .iter()
                .map(|m| (m.clone(), m.pool.eq_ignore_ascii_case(&target_pool)))
                .collect(),
            port,
            estate: estate.clone(),
            persona,
            filtered: filtered.clone(),
            now: mapped.iter().map(|_| (Port::Closed, None)).collect(),
        };
        listeners.sync().await;
        let listeners = Arc::new(tokio::sync::Mutex::new(listeners));
        let follower = listeners.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(20)).await;
                follower.lock().await.sync().await;
            }
        });

        let stage = Stage {
            topology: t,
            mapped,
            primary: primary_addr,
            secondary: secondary_addr,
            dir,
            estate,
            management_host,
            delay,
            keys,
            real_key,
            dns_faults,
            filtered,
            listeners,
        };
        Ok(stage)
    }

    /// Where the rehearsal keeps its journal.
    pub fn journal_path(&self) -> PathBuf {
        self.dir.0.join("journal.jsonl")
    }
}

fn write_key_file(path: &Path, name: &str, secret: &[u8]) -> Result<(), String> {
    use base64::Engine as _;
    use std::io::Write;
    let text = format!(
        "key \"{name}\" {{\n\talgorithm hmac-sha256;\n\tsecret \"{}\";\n}};\n",
        base64::engine::general_purpose::STANDARD.encode(secret)
    );
    crate::platform::create_private_file(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| format!("write the rehearsal's key file {}: {e}", path.display()))
}

/// Which XMPP listener one Edge server has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Port {
    Closed,
    Open,
    Filtered,
}

/// Keep each Edge server's XMPP port as its simulated services say: open
/// while they all run, closed otherwise, dropped by the port-filtered drill.
struct Listeners {
    servers: Vec<(MappedServer, bool)>,
    port: u16,
    estate: Estate,
    persona: xmpp::Persona,
    filtered: Arc<AtomicBool>,
    now: Vec<(Port, Option<tokio::task::JoinHandle<()>>)>,
}

impl Listeners {
    fn wanted(&self, i: usize) -> Port {
        let (server, target) = &self.servers[i];
        if *target && self.filtered.load(Ordering::SeqCst) {
            return Port::Filtered;
        }
        let estate = machine::lock(&self.estate);
        let running = estate
            .hosts
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(&server.fqdn))
            .is_some_and(|(_, h)| {
                !h.services.is_empty() && h.services.values().all(|s| s == "Running")
            });
        if running { Port::Open } else { Port::Closed }
    }

    async fn sync(&mut self) {
        for i in 0..self.servers.len() {
            let want = self.wanted(i);
            if self.now[i].0 == want {
                continue;
            }
            if let Some(h) = self.now[i].1.take() {
                h.abort();
                let _ = h.await;
            }
            let addr = SocketAddr::from((self.servers[i].0.ip, self.port));
            let started = match want {
                Port::Closed => Ok(None),
                Port::Open => xmpp::listen(addr, self.persona.clone()).await.map(Some),
                Port::Filtered => xmpp::listen_filtered(addr).await.map(Some),
            };
            match started {
                Ok(handle) => self.now[i] = (want, handle),
                Err(e) => tracing::debug!(%addr, "rehearsal listener: {e}; retrying"),
            }
        }
    }
}

/// Everything the rehearsal built, to run the engine against and to clear
/// the drills' faults from.
pub struct Stage {
    /// The topology with every address mapped onto loopback.
    pub topology: Topology,
    /// Where each Edge server went.
    pub mapped: Vec<MappedServer>,
    pub primary: SocketAddr,
    pub secondary: SocketAddr,
    /// The rehearsal's private directory (key file, journal); removed on drop.
    dir: TempDir,
    estate: Estate,
    management_host: String,
    delay: Duration,
    keys: Arc<Mutex<dns::Keys>>,
    real_key: TSigner,
    dns_faults: Arc<Mutex<dns::DnsFaults>>,
    filtered: Arc<AtomicBool>,
    listeners: Arc<tokio::sync::Mutex<Listeners>>,
}

impl Stage {
    /// A run context whose machines are this stage's simulated ones.
    pub fn ctx(&self, from: &str, to: &str, opts: RunOptions) -> Result<Ctx, String> {
        Ctx::with_machines(
            self.topology.clone(),
            from,
            to,
            opts,
            self.management(),
            |s| self.edge(s),
        )
        .map_err(|e| e.to_string())
    }

    /// The simulated machines, for `status` to read the estate the run left.
    pub fn status_sources(&self, command_timeout: Duration) -> crate::estate::Sources {
        crate::estate::Sources::with_machines(
            self.topology.clone(),
            command_timeout,
            self.management(),
            |s| self.edge(s),
        )
    }

    /// The simulated management shell.
    fn management(&self) -> Machine {
        Machine::with_transport(
            "management shell",
            self.topology
                .management
                .transport
                .module()
                .map(str::to_string),
            Box::new(self.simulated(&self.management_host)),
        )
    }

    /// A simulated Edge server.
    fn edge(&self, s: &crate::topology::Server) -> Machine {
        Machine::with_transport(
            &s.fqdn,
            s.transport.module().map(str::to_string),
            Box::new(self.simulated(&s.fqdn)),
        )
    }

    fn simulated(&self, host: &str) -> Simulated {
        Simulated {
            host: host.to_string(),
            estate: self.estate.clone(),
            delay: self.delay,
        }
    }

    /// Undo every drill: the estate's faults, the key, the DNS fault, the
    /// filtered port (reopened before this returns, so the resume's first
    /// check cannot beat it).
    pub async fn clear(&self) {
        machine::lock(&self.estate).faults.clear();
        dns::lock(&self.keys).signer = self.real_key.clone();
        *dns::lock(&self.dns_faults) = dns::DnsFaults::default();
        self.filtered.store(false, Ordering::SeqCst);
        self.listeners.lock().await.sync().await;
    }
}
