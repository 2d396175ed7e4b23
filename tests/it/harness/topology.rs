//! The one topology builder: every topology a test runs edgefail with is a
//! `Topology`, changed through its methods or public fields, then rendered
//! to YAML (`yaml`) or written (`write`).
//!
//! `Topology::new(domain)` is the shape every test starts from; the
//! stand-in estate (`Topology::estate`, `Topology::estate_ssh`), BIND
//! (`Bind::dns`, `Bind::topology`) and the XMPP tests build on it.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::bind::Key;
use super::standin::{Estate, SshEndpoints};

/// A whole topology file.
#[derive(Debug, Clone)]
pub struct Topology {
    /// The XMPP domain and DNS zone; pool names and SRV targets derive from
    /// it (`edgepool1.<domain>`, `edgepool1-xmpp.<domain>`).
    pub domain: String,
    pub xmpp: Xmpp,
    pub dns: Dns,
    pub management: Management,
    pub timeouts: Timeouts,
    pub sites: Vec<Site>,
    /// `lock:`: the tests of other things run with `local` (a lease adds a
    /// TXT record and bumps the zone's serial, which they measure); the
    /// lease's own tests set `zone`.
    pub lock: &'static str,
}

/// `xmpp:` beyond domain and A record; `None` leaves a field out.
#[derive(Debug, Clone, Default)]
pub struct Xmpp {
    pub port: u16,
    pub ttl: Option<u32>,
    pub connect_timeout_ms: Option<u64>,
    pub first_byte_timeout_ms: Option<u64>,
    pub exchange_timeout_ms: Option<u64>,
    pub accept_untrusted_cert: bool,
    pub partner_name: Option<String>,
}

/// `dns:` beyond the zone; `None` leaves a field out.
#[derive(Debug, Clone, Default)]
pub struct Dns {
    /// "rfc2136" or "manual".
    pub mode: Option<&'static str>,
    pub primary: Option<String>,
    pub authoritative: Vec<String>,
    pub tsig: Option<Tsig>,
    pub timeout_secs: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct Tsig {
    pub name: String,
    pub algorithm: Option<String>,
    pub secret: Secret,
}

/// Where a TSIG secret comes from (never the topology itself).
#[derive(Debug, Clone)]
pub enum Secret {
    File(PathBuf),
    Env(String),
}

impl Tsig {
    /// `key`, written to `path` (mode 600) and read from there.
    pub fn file(key: &Key, path: &Path) -> Tsig {
        key.write(path);
        Tsig {
            name: key.name.clone(),
            algorithm: Some(key.algorithm.clone()),
            secret: Secret::File(path.to_path_buf()),
        }
    }

    /// `key`'s name and algorithm, the secret from environment variable `var`.
    pub fn env(key: &Key, var: &str) -> Tsig {
        Tsig {
            name: key.name.clone(),
            algorithm: Some(key.algorithm.clone()),
            secret: Secret::Env(var.into()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Management {
    pub route_parameter: Option<String>,
    /// `management.move_routes`: target_site, all_sites.
    pub move_routes: Option<String>,
    pub transport: Transport,
}

#[derive(Debug, Clone, Default)]
pub struct Timeouts {
    pub command_secs: Option<u64>,
    pub verify_secs: Option<u64>,
    pub poll_ms: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct Site {
    pub name: String,
    pub pools: Vec<Pool>,
}

#[derive(Debug, Clone)]
pub struct Pool {
    pub name: String,
    /// "lync2013", "sfb2015", "sfb2019".
    pub version: &'static str,
    pub srv_priority: u16,
    /// Whether the pool names its SRV target, `<name lowercased>-xmpp.<domain>`.
    pub srv_target: bool,
    pub route_server: Option<String>,
    pub servers: Vec<Server>,
}

#[derive(Debug, Clone)]
pub struct Server {
    pub fqdn: String,
    pub external_ipv4: String,
    pub transport: Transport,
}

/// How edgefail reaches a machine.
#[derive(Debug, Clone)]
pub enum Transport {
    Local {
        program: String,
        args: Vec<String>,
        module: Option<String>,
        /// `session:` (None: edgefail's default, a session).
        session: Option<bool>,
    },
    Ssh(Ssh),
}

#[derive(Debug, Clone)]
pub struct Ssh {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub identity_file: PathBuf,
    pub known_hosts: PathBuf,
    pub remote_program: String,
    pub module: Option<String>,
    pub accept_new_host_keys: Option<bool>,
    pub control_persist_secs: Option<u64>,
    pub connect_timeout_secs: Option<u64>,
    pub ssh_program: Option<String>,
    /// `session:` (None: edgefail's default, a session).
    pub session: Option<bool>,
}

impl Transport {
    /// `pwsh` on this machine.
    pub fn pwsh() -> Transport {
        Transport::Local {
            program: "pwsh".into(),
            args: Vec::new(),
            module: None,
            session: None,
        }
    }

    /// Set `session:` on this transport.
    pub fn session(mut self, on: bool) -> Transport {
        match &mut self {
            Transport::Local { session, .. } => *session = Some(on),
            Transport::Ssh(ssh) => ssh.session = Some(on),
        }
        self
    }

    /// The ssh settings of an ssh transport.
    #[track_caller]
    pub fn ssh_mut(&mut self) -> &mut Ssh {
        match self {
            Transport::Ssh(ssh) => ssh,
            Transport::Local { .. } => panic!("not an ssh transport: {self:?}"),
        }
    }
}

impl Server {
    /// A server reached through a local `pwsh`.
    pub fn local(fqdn: &str, external_ipv4: &str) -> Server {
        Server {
            fqdn: fqdn.into(),
            external_ipv4: external_ipv4.into(),
            transport: Transport::pwsh(),
        }
    }
}

impl Pool {
    pub fn new(name: &str, version: &'static str, srv_priority: u16, servers: Vec<Server>) -> Pool {
        Pool {
            name: name.into(),
            version,
            srv_priority,
            srv_target: false,
            route_server: None,
            servers,
        }
    }
}

impl Topology {
    /// The shape every test starts from: Site1/EdgePool1 (EdgeServer1,
    /// 127.0.0.10) carries XMPP, Site2/EdgePool2 (EdgeServer2, 127.0.0.20)
    /// takes over; Lync 2013, SRV priorities 10 and 20, no SRV targets;
    /// every machine on a local `pwsh`; XMPP port 5269, TTL 300; manual DNS
    /// at 127.0.0.1:1; 10 s command and verify timeouts, 50 ms polls.
    pub fn new(domain: &str) -> Topology {
        let pool = |n: u16| {
            Pool::new(
                &format!("EdgePool{n}"),
                "lync2013",
                n * 10,
                vec![Server::local(
                    &format!("EdgeServer{n}.{domain}"),
                    &format!("127.0.0.{}", n * 10),
                )],
            )
        };
        Topology {
            domain: domain.into(),
            xmpp: Xmpp {
                port: 5269,
                ttl: Some(300),
                ..Xmpp::default()
            },
            dns: Dns {
                mode: Some("manual"),
                authoritative: vec!["127.0.0.1:1".into()],
                ..Dns::default()
            },
            management: Management {
                route_parameter: None,
                move_routes: None,
                transport: Transport::pwsh(),
            },
            timeouts: Timeouts {
                command_secs: Some(10),
                verify_secs: Some(10),
                poll_ms: Some(50),
            },
            sites: vec![
                Site {
                    name: "Site1".into(),
                    pools: vec![pool(1)],
                },
                Site {
                    name: "Site2".into(),
                    pools: vec![pool(2)],
                },
            ],
            lock: "local",
        }
    }

    /// Take the lease in the zone (`lock: zone`, edgefail's default).
    pub fn zone_lock(mut self) -> Topology {
        self.lock = "zone";
        self
    }

    /// `new("contoso.com")` for a stand-in estate: every machine (the
    /// management shell fe1 included) runs the stand-in locally, and the
    /// target pool has the estate's servers (127.0.0.20, .21, ...).
    pub fn estate(estate: &Estate) -> Topology {
        Topology::estate_via(estate, |host| estate.local_transport(host))
    }

    /// As `estate`, every machine reached over ssh on its own port of
    /// `endpoints` (in `Estate::machines` order), the stand-in playing
    /// powershell.exe on the far side.
    #[track_caller]
    pub fn estate_ssh(estate: &Estate, endpoints: &SshEndpoints) -> Topology {
        let machines = estate.machines();
        assert!(
            endpoints.ports.len() >= machines.len(),
            "{} machines need as many ports (sshd listeners)",
            machines.len()
        );
        Topology::estate_via(estate, |host| {
            let index = machines
                .iter()
                .position(|m| m == host)
                .expect("a machine of this estate");
            estate.ssh_transport(host, endpoints, endpoints.ports[index])
        })
    }

    fn estate_via(estate: &Estate, transport: impl Fn(&str) -> Transport) -> Topology {
        let mut t = Topology::new("contoso.com");
        t.management.transport = transport(super::standin::MANAGEMENT);
        let edge1 = t.server_mut("EdgeServer1.contoso.com");
        edge1.transport = transport(&edge1.fqdn);
        t.pool_mut("EdgePool2").servers = estate
            .target_servers
            .iter()
            .enumerate()
            .map(|(i, fqdn)| Server {
                fqdn: fqdn.clone(),
                external_ipv4: format!("127.0.0.{}", 20 + i),
                transport: transport(fqdn),
            })
            .collect();
        t
    }

    /// Every pool names its SRV target (`edgepool1-xmpp.<domain>`, ...).
    pub fn srv_targets(mut self) -> Topology {
        for pool in self.sites.iter_mut().flat_map(|s| &mut s.pools) {
            pool.srv_target = true;
        }
        self
    }

    /// `server`'s external address.
    #[track_caller]
    pub fn address(mut self, server: &str, ipv4: &str) -> Topology {
        self.server_mut(server).external_ipv4 = ipv4.into();
        self
    }

    pub fn ttl(mut self, ttl: u32) -> Topology {
        self.xmpp.ttl = Some(ttl);
        self
    }

    pub fn xmpp_port(mut self, port: u16) -> Topology {
        self.xmpp.port = port;
        self
    }

    pub fn accept_untrusted_cert(mut self) -> Topology {
        self.xmpp.accept_untrusted_cert = true;
        self
    }

    /// The partner's name in the partner's-eye check's stream header.
    pub fn partner_name(mut self, name: &str) -> Topology {
        self.xmpp.partner_name = Some(name.into());
        self
    }

    pub fn dns(mut self, dns: Dns) -> Topology {
        self.dns = dns;
        self
    }

    /// RFC 2136 updates to `primary`, reads from `authoritative`.
    pub fn rfc2136(mut self, primary: &str, authoritative: &[&str]) -> Topology {
        self.dns.mode = Some("rfc2136");
        self.dns.primary = Some(primary.into());
        self.dns.authoritative = authoritative.iter().map(|a| a.to_string()).collect();
        self
    }

    pub fn tsig(mut self, tsig: Tsig) -> Topology {
        self.dns.tsig = Some(tsig);
        self
    }

    /// The operator changes DNS by hand: manual mode, no TSIG key.
    pub fn manual_dns(mut self) -> Topology {
        self.dns.mode = Some("manual");
        self.dns.tsig = None;
        self
    }

    pub fn dns_timeout(mut self, secs: u64) -> Topology {
        self.dns.timeout_secs = Some(secs);
        self
    }

    /// Pin the management shell's route parameter.
    pub fn move_routes(mut self, which: &str) -> Topology {
        self.management.move_routes = Some(which.into());
        self
    }

    pub fn route_parameter(mut self, parameter: &str) -> Topology {
        self.management.route_parameter = Some(parameter.into());
        self
    }

    /// `pool`'s product version ("sfb2019", ...).
    #[track_caller]
    pub fn version(mut self, pool: &str, version: &'static str) -> Topology {
        self.pool_mut(pool).version = version;
        self
    }

    #[track_caller]
    pub fn pool_mut(&mut self, name: &str) -> &mut Pool {
        self.sites
            .iter_mut()
            .flat_map(|s| &mut s.pools)
            .find(|p| p.name == name)
            .unwrap_or_else(|| panic!("no pool {name} in the topology"))
    }

    #[track_caller]
    pub fn server_mut(&mut self, fqdn: &str) -> &mut Server {
        self.sites
            .iter_mut()
            .flat_map(|s| &mut s.pools)
            .flat_map(|p| &mut p.servers)
            .find(|s| s.fqdn == fqdn)
            .unwrap_or_else(|| panic!("no server {fqdn} in the topology"))
    }

    /// The topology file's text.
    pub fn yaml(&self) -> String {
        let d = &self.domain;
        let x = &self.xmpp;
        let mut y = format!(
            "version: 1\nxmpp:\n  domain: {d}\n  a_record: xmpp.{d}\n  port: {}\n",
            x.port
        );
        let field = |y: &mut String, key: &str, value: Option<String>| {
            if let Some(v) = value {
                let _ = writeln!(y, "  {key}: {v}");
            }
        };
        field(&mut y, "ttl", x.ttl.map(|v| v.to_string()));
        field(
            &mut y,
            "connect_timeout_ms",
            x.connect_timeout_ms.map(|v| v.to_string()),
        );
        field(
            &mut y,
            "first_byte_timeout_ms",
            x.first_byte_timeout_ms.map(|v| v.to_string()),
        );
        field(
            &mut y,
            "exchange_timeout_ms",
            x.exchange_timeout_ms.map(|v| v.to_string()),
        );
        field(
            &mut y,
            "accept_untrusted_cert",
            x.accept_untrusted_cert.then(|| "true".into()),
        );
        field(&mut y, "partner_name", x.partner_name.clone());

        let dns = &self.dns;
        let _ = writeln!(y, "dns:\n  zone: {d}");
        field(&mut y, "mode", dns.mode.map(String::from));
        field(&mut y, "primary", dns.primary.clone());
        field(
            &mut y,
            "authoritative",
            (!dns.authoritative.is_empty()).then(|| flow_list(&dns.authoritative)),
        );
        if let Some(tsig) = &dns.tsig {
            let _ = writeln!(y, "  tsig:\n    name: {}", tsig.name);
            if let Some(algorithm) = &tsig.algorithm {
                let _ = writeln!(y, "    algorithm: {algorithm}");
            }
            let _ = match &tsig.secret {
                Secret::File(path) => writeln!(y, "    secret_file: {}", path.display()),
                Secret::Env(var) => writeln!(y, "    secret_env: {var}"),
            };
        }
        field(
            &mut y,
            "timeout_secs",
            dns.timeout_secs.map(|v| v.to_string()),
        );

        y.push_str("management:\n");
        field(
            &mut y,
            "route_parameter",
            self.management.route_parameter.clone(),
        );
        field(&mut y, "move_routes", self.management.move_routes.clone());
        field(&mut y, "transport", Some(self.management.transport.flow()));

        let t = &self.timeouts;
        if t.command_secs.is_some() || t.verify_secs.is_some() || t.poll_ms.is_some() {
            y.push_str("timeouts:\n");
            field(
                &mut y,
                "command_secs",
                t.command_secs.map(|v| v.to_string()),
            );
            field(&mut y, "verify_secs", t.verify_secs.map(|v| v.to_string()));
            field(&mut y, "poll_ms", t.poll_ms.map(|v| v.to_string()));
        }

        y.push_str("sites:\n");
        for site in &self.sites {
            let _ = writeln!(y, "  - name: {}\n    pools:", site.name);
            for pool in &site.pools {
                let lower = pool.name.to_lowercase();
                let _ = write!(
                    y,
                    "      - name: {}\n        fqdn: {lower}.{d}\n        version: {}\n        srv_priority: {}\n",
                    pool.name, pool.version, pool.srv_priority
                );
                if pool.srv_target {
                    let _ = writeln!(y, "        srv_target: {lower}-xmpp.{d}");
                }
                if let Some(route_server) = &pool.route_server {
                    let _ = writeln!(y, "        route_server: {route_server}");
                }
                if pool.servers.is_empty() {
                    y.push_str("        servers: []\n");
                    continue;
                }
                y.push_str("        servers:\n");
                for s in &pool.servers {
                    let _ = write!(
                        y,
                        "          - fqdn: {}\n            external_ipv4: {}\n            transport: {}\n",
                        s.fqdn,
                        s.external_ipv4,
                        s.transport.flow()
                    );
                }
            }
        }
        // Last, so the line numbers the validate tests expect stay put.
        let _ = writeln!(y, "lock: {}", self.lock);
        y
    }

    /// Write `topology.yaml` into `dir` and return its path.
    pub fn write(&self, dir: &Path) -> PathBuf {
        let path = dir.join("topology.yaml");
        std::fs::write(&path, self.yaml()).expect("write topology");
        path
    }
}

/// A YAML single-quoted string.
fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// `['a', 'b']`.
fn flow_list(items: &[String]) -> String {
    let items: Vec<String> = items.iter().map(|i| quoted(i)).collect();
    format!("[{}]", items.join(", "))
}

impl Transport {
    /// The transport as one flow mapping, `{ type: ..., ... }`.
    fn flow(&self) -> String {
        let mut f = Vec::new();
        let text = |f: &mut Vec<String>, key: &str, value: &str| {
            f.push(format!("{key}: {}", quoted(value)));
        };
        match self {
            Transport::Local {
                program,
                args,
                module,
                session,
            } => {
                f.push("type: local".into());
                text(&mut f, "program", program);
                if !args.is_empty() {
                    f.push(format!("args: {}", flow_list(args)));
                }
                if let Some(m) = module {
                    f.push(format!("module: {m}"));
                }
                if let Some(b) = session {
                    f.push(format!("session: {b}"));
                }
            }
            Transport::Ssh(ssh) => {
                f.push("type: ssh".into());
                text(&mut f, "host", &ssh.host);
                f.push(format!("port: {}", ssh.port));
                text(&mut f, "user", &ssh.user);
                text(
                    &mut f,
                    "identity_file",
                    &ssh.identity_file.display().to_string(),
                );
                text(
                    &mut f,
                    "known_hosts",
                    &ssh.known_hosts.display().to_string(),
                );
                text(&mut f, "remote_program", &ssh.remote_program);
                if let Some(m) = &ssh.module {
                    f.push(format!("module: {m}"));
                }
                if let Some(b) = ssh.accept_new_host_keys {
                    f.push(format!("accept_new_host_keys: {b}"));
                }
                if let Some(n) = ssh.control_persist_secs {
                    f.push(format!("control_persist_secs: {n}"));
                }
                if let Some(n) = ssh.connect_timeout_secs {
                    f.push(format!("connect_timeout_secs: {n}"));
                }
                if let Some(program) = &ssh.ssh_program {
                    text(&mut f, "ssh_program", program);
                }
                if let Some(b) = ssh.session {
                    f.push(format!("session: {b}"));
                }
            }
        }
        format!("{{ {} }}", f.join(", "))
    }
}
