//! The topology file: sites, Edge pools and servers, the XMPP federation
//! records, the external DNS and how each machine is reached.
//!
//! Loading never stops at the first problem it can recover from: unknown
//! fields and every semantic problem are collected and reported together,
//! each with file:line:column and the field's path.

mod spans;
mod validate;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::IgnoredAny;

pub use spans::{Pos, SpanIndex};

/// The topology format this edgefail reads.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topology {
    pub version: u32,
    pub xmpp: Xmpp,
    pub dns: Dns,
    pub management: Management,
    #[serde(default)]
    pub timeouts: Timeouts,
    pub sites: Vec<Site>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Xmpp {
    /// The SIP/XMPP domain partners federate with (contoso.com).
    pub domain: String,
    /// The A record used for XMPP federation (xmpp.contoso.com).
    pub a_record: String,
    #[serde(default = "default_xmpp_port")]
    pub port: u16,
    /// TTL written on the A and SRV records.
    #[serde(default = "default_ttl")]
    pub ttl: u32,
    /// The `from` name the partner's-eye check presents.
    #[serde(default)]
    pub partner_name: Option<String>,
    /// How long a TCP connect to port 5269 may take before the port counts
    /// as filtered (Linux alone would wait about 127 s).
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// How long a server may stay silent after the partner's stream header.
    #[serde(default = "default_first_byte_timeout_ms")]
    pub first_byte_timeout_ms: u64,
    /// The longest one whole partner's-eye exchange may take.
    #[serde(default = "default_exchange_timeout_ms")]
    pub exchange_timeout_ms: u64,
    /// Accept a certificate chain no public CA vouches for (self-signed, a
    /// private CA): the check then says so instead of failing.
    #[serde(default)]
    pub accept_untrusted_cert: bool,
}

impl Xmpp {
    /// `_xmpp-server._tcp.<domain>`.
    pub fn srv_owner(&self) -> String {
        format!("_xmpp-server._tcp.{}", self.domain)
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DnsMode {
    /// RFC 2136 dynamic updates signed with TSIG.
    #[default]
    Rfc2136,
    /// The operator makes the change by hand; edgefail prints it and verifies.
    Manual,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Dns {
    pub zone: String,
    #[serde(default)]
    pub mode: DnsMode,
    /// Where updates go: "address" or "address:port" (port 53 by default).
    #[serde(default)]
    pub primary: Option<String>,
    /// Every server that answers authoritatively for the zone; verification
    /// asks each of them directly.
    #[serde(default)]
    pub authoritative: Vec<String>,
    #[serde(default)]
    pub tsig: Option<Tsig>,
    #[serde(default = "default_dns_timeout")]
    pub timeout_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Tsig {
    pub name: String,
    #[serde(default = "default_tsig_algorithm")]
    pub algorithm: String,
    /// A key file as `tsig-keygen` writes it.
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
    /// The name of an environment variable holding the base64 secret.
    #[serde(default)]
    pub secret_env: Option<String>,
    /// Present only to reject it: secrets are never written in the topology.
    #[serde(default)]
    pub secret: Option<IgnoredAny>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
pub enum RouteParameter {
    /// Ask the installed Set-CsSite which parameter it has.
    #[default]
    #[serde(rename = "auto")]
    Auto,
    /// The procedure page's spelling; the value is an Edge server FQDN.
    XmppExternalFederationRoute,
    /// The cmdlet reference's spelling; the value is a service identity,
    /// `EdgeServer:<fqdn>`.
    XmppFederationRoute,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Management {
    pub transport: TransportSpec,
    #[serde(default)]
    pub route_parameter: RouteParameter,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum TransportSpec {
    /// PowerShell on this machine.
    Local(LocalSpec),
    /// The system OpenSSH client to the machine, PowerShell on the far side.
    Ssh(SshSpec),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalSpec {
    /// powershell.exe on Windows, pwsh elsewhere.
    #[serde(default)]
    pub program: Option<String>,
    /// Arguments placed before `-NoProfile -NonInteractive -EncodedCommand`.
    #[serde(default)]
    pub args: Vec<String>,
    /// A module to import before each script (Lync, SkypeForBusiness).
    #[serde(default)]
    pub module: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SshSpec {
    pub host: String,
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub identity_file: Option<PathBuf>,
    /// The known_hosts file the server's key is checked against (ssh's
    /// default, ~/.ssh/known_hosts, when absent).
    #[serde(default)]
    pub known_hosts: Option<PathBuf>,
    #[serde(default)]
    pub connect_timeout_secs: Option<u64>,
    /// The program the far side runs (powershell.exe by default).
    #[serde(default)]
    pub remote_program: Option<String>,
    #[serde(default)]
    pub module: Option<String>,
    /// The OpenSSH client on this machine (`ssh` from PATH by default).
    #[serde(default)]
    pub ssh_program: Option<String>,
    /// How long an idle shared connection stays open; 0 turns connection
    /// reuse off. 30 by default; off on Windows, whose OpenSSH client cannot
    /// share connections.
    #[serde(default)]
    pub control_persist_secs: Option<u64>,
    /// Trust a server whose key is not yet in known_hosts and record it
    /// (OpenSSH's accept-new). A changed key is refused either way.
    #[serde(default)]
    pub accept_new_host_keys: bool,
}

impl TransportSpec {
    pub fn module(&self) -> Option<&str> {
        match self {
            TransportSpec::Local(l) => l.module.as_deref(),
            TransportSpec::Ssh(s) => s.module.as_deref(),
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Timeouts {
    /// Longest any one remote command may run.
    #[serde(default = "default_command_secs")]
    pub command_secs: u64,
    /// How long a step's verify phase waits for its state to hold.
    #[serde(default = "default_verify_secs")]
    pub verify_secs: u64,
    /// Pause between two reads while verifying (grows up to 4x).
    #[serde(default = "default_poll_ms")]
    pub poll_ms: u64,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            command_secs: default_command_secs(),
            verify_secs: default_verify_secs(),
            poll_ms: default_poll_ms(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Site {
    pub name: String,
    pub pools: Vec<Pool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
pub enum ProductVersion {
    #[serde(rename = "lync2013")]
    Lync2013,
    #[serde(rename = "sfb2015")]
    Sfb2015,
    #[serde(rename = "sfb2019")]
    Sfb2019,
}

impl ProductVersion {
    /// Skype for Business Server 2019 dropped the XMPP gateway.
    pub fn carries_xmpp(self) -> bool {
        !matches!(self, ProductVersion::Sfb2019)
    }
}

impl fmt::Display for ProductVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ProductVersion::Lync2013 => "Lync Server 2013",
            ProductVersion::Sfb2015 => "Skype for Business Server 2015",
            ProductVersion::Sfb2019 => "Skype for Business Server 2019",
        })
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pool {
    /// The label operators use on the command line (EdgePool2).
    pub name: String,
    /// The pool's FQDN, its identity in the Central Management Store.
    pub fqdn: String,
    pub version: ProductVersion,
    /// This pool's `_xmpp-server._tcp` SRV priority; lower is preferred.
    pub srv_priority: u16,
    #[serde(default)]
    pub srv_weight: u16,
    /// The host this pool's SRV record targets; the XMPP A record by default.
    #[serde(default)]
    pub srv_target: Option<String>,
    /// The Edge server named in the site's federation route; the first
    /// server by default.
    #[serde(default)]
    pub route_server: Option<String>,
    pub servers: Vec<Server>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Server {
    pub fqdn: String,
    /// The external address the XMPP A record carries when this pool is live.
    pub external_ipv4: String,
    pub transport: TransportSpec,
}

fn default_xmpp_port() -> u16 {
    5269
}
fn default_connect_timeout_ms() -> u64 {
    5000
}
fn default_first_byte_timeout_ms() -> u64 {
    10_000
}
fn default_exchange_timeout_ms() -> u64 {
    30_000
}
fn default_ttl() -> u32 {
    300
}
fn default_dns_timeout() -> u64 {
    5
}
fn default_tsig_algorithm() -> String {
    "hmac-sha256".into()
}
fn default_command_secs() -> u64 {
    120
}
fn default_verify_secs() -> u64 {
    300
}
fn default_poll_ms() -> u64 {
    1000
}

/// A pool found by name, with the site that holds it.
#[derive(Debug, Clone, Copy)]
pub struct PoolRef<'a> {
    pub site: &'a Site,
    pub pool: &'a Pool,
}

impl Topology {
    pub fn pools(&self) -> impl Iterator<Item = PoolRef<'_>> {
        self.sites
            .iter()
            .flat_map(|site| site.pools.iter().map(move |pool| PoolRef { site, pool }))
    }

    /// Pool names are compared without regard to case, as Lync does.
    pub fn pool(&self, name: &str) -> Option<PoolRef<'_>> {
        self.pools()
            .find(|p| p.pool.name.eq_ignore_ascii_case(name))
    }
}

impl Pool {
    pub fn srv_target<'a>(&'a self, xmpp: &'a Xmpp) -> &'a str {
        self.srv_target.as_deref().unwrap_or(&xmpp.a_record)
    }

    pub fn route_server(&self) -> &str {
        self.route_server
            .as_deref()
            .or_else(|| self.servers.first().map(|s| s.fqdn.as_str()))
            .unwrap_or_default()
    }

    /// The address the XMPP A record carries when this pool is live: the
    /// route server's external address.
    pub fn published_ipv4(&self) -> Option<Ipv4Addr> {
        let route = self.route_server();
        self.servers
            .iter()
            .find(|s| s.fqdn.eq_ignore_ascii_case(route))
            .and_then(|s| s.external_ipv4.parse().ok())
    }
}

/// Parse "address" or "address:port" ("[v6]:port" for IPv6); DNS servers are
/// given by address so that a DNS failover never depends on DNS.
pub fn parse_server_addr(text: &str, default_port: u16) -> Result<SocketAddr, String> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        if addr.port() == 0 {
            return Err("port 0 is not a port".into());
        }
        return Ok(addr);
    }
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, default_port));
    }
    Err("expected an IP address with an optional port (192.0.2.53 or 192.0.2.53:5353 or [2001:db8::53]:53)".into())
}

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Warning,
    Note,
}

/// One finding in a topology file.
#[derive(Debug, Clone)]
pub struct Diagnostic {
    pub severity: Severity,
    pub pos: Pos,
    /// The field's path, like `sites[1].pools[0].servers[0].fqdn`.
    pub path: String,
    pub message: String,
}

/// Every finding for one file, in file order.
#[derive(Debug, Clone)]
pub struct Report {
    pub file: PathBuf,
    pub diagnostics: Vec<Diagnostic>,
}

impl Report {
    pub fn errors(&self) -> usize {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.diagnostics {
            let level = match d.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
                Severity::Note => "note",
            };
            let path = if d.path.is_empty() {
                "(document)"
            } else {
                &d.path
            };
            writeln!(
                f,
                "{}:{}:{}: {level}: {path}: {}",
                self.file.display(),
                d.pos.line,
                d.pos.column,
                d.message
            )?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read topology file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} has {} error(s):\n{report}", report.file.display(), report.errors())]
    Invalid { report: Report },
}

/// A topology that passed validation, with its findings (warnings, notes).
#[derive(Debug, Clone)]
pub struct Loaded {
    pub topology: Topology,
    pub report: Report,
    /// The file's bytes, for checksums.
    pub text: String,
}

/// Read, parse and validate a topology file.
pub fn load(path: &Path) -> Result<Loaded, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let (topology, report) = parse(path, &text);
    match topology {
        Some(topology) if report.errors() == 0 => Ok(Loaded {
            topology,
            report,
            text,
        }),
        _ => Err(LoadError::Invalid { report }),
    }
}

/// Parse and validate text; the topology is `None` when it could not be
/// deserialised at all.
pub fn parse(file: &Path, text: &str) -> (Option<Topology>, Report) {
    let spans = SpanIndex::build(text);
    let mut diagnostics = Vec::new();
    let deserializer = serde_yaml::Deserializer::from_str(text);
    let mut unknown = Vec::new();
    let result: Result<Topology, _> = serde_ignored::deserialize(deserializer, |path| {
        unknown.push(ignored_path(&path));
    });
    for path in unknown {
        diagnostics.push(Diagnostic {
            severity: Severity::Error,
            pos: spans.find(&path),
            path: path.clone(),
            message: format!(
                "unknown field `{}`",
                path.rsplit(['.', ']'])
                    .find(|s| !s.is_empty())
                    .unwrap_or(&path)
            ),
        });
    }
    let topology = match result {
        Ok(t) => Some(t),
        Err(e) => {
            let pos = e
                .location()
                .map(|l| Pos {
                    line: l.line(),
                    column: l.column(),
                })
                .unwrap_or_default();
            let message = e.to_string();
            let message = match message.rfind(" at line ") {
                Some(cut) => message[..cut].to_string(),
                None => message,
            };
            let (path, message) = split_serde_path(&message);
            diagnostics.push(Diagnostic {
                severity: Severity::Error,
                pos,
                path,
                message: format!("{message} (fix this first: it stops the remaining checks)"),
            });
            None
        }
    };
    if let Some(t) = &topology {
        validate::validate(t, &spans, &mut diagnostics);
    }
    diagnostics.sort_by_key(|a| (a.pos, a.severity));
    (
        topology,
        Report {
            file: file.to_path_buf(),
            diagnostics,
        },
    )
}

/// serde_yaml prefixes its messages with the path ("sites[0].pools[0]: ...").
fn split_serde_path(message: &str) -> (String, String) {
    if let Some((head, rest)) = message.split_once(": ") {
        let looks_like_path = !head.is_empty()
            && head
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '[' | ']'));
        if looks_like_path {
            return (head.to_string(), rest.to_string());
        }
    }
    (String::new(), message.to_string())
}

fn ignored_path(path: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path as P;
    match path {
        P::Root => String::new(),
        P::Seq { parent, index } => format!("{}[{index}]", ignored_path(parent)),
        P::Map { parent, key } => {
            let parent = ignored_path(parent);
            if parent.is_empty() {
                key.clone()
            } else {
                format!("{parent}.{key}")
            }
        }
        P::Some { parent } | P::NewtypeStruct { parent } | P::NewtypeVariant { parent } => {
            ignored_path(parent)
        }
    }
}
