//! The topology file: sites, Edge pools and servers, the XMPP federation
//! records, the external DNS and how each machine is reached; the public
//! API to load it ([`load`], [`parse`]) and its findings ([`Report`]).
//!
//! The text is parsed once, into a located node tree (`tree`), within limits
//! on size, nesting and aliases. The typed structs below are deserialised
//! from that tree part by part (`de`), so that a broken element hides
//! nothing else: every structural problem (wrong type, missing field, bad
//! value, unknown field) and every semantic one (`validate`) is reported
//! together, each with file:line:column and the field's path.

mod de;
mod tree;
mod validate;

use std::fmt;
use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::IgnoredAny;

pub use tree::Pos;
use tree::{Kind, Locator, Masked, Tree};

/// The topology format this edgefail reads.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Topology {
    pub version: u32,
    pub xmpp: Xmpp,
    pub dns: Dns,
    pub management: Management,
    #[serde(default)]
    pub timeouts: Timeouts,
    pub sites: Vec<Site>,
    /// Where journal and lock live (a team's shared folder on an admin
    /// host); relative to the topology file's folder. Default: this user's
    /// state directory.
    #[serde(default)]
    pub state_dir: Option<PathBuf>,
    /// How runs of this estate exclude each other across machines.
    #[serde(default)]
    pub lock: LockMode,
}

/// `lock:`: `zone` (default) also takes a lease in the DNS zone when the
/// run updates DNS with RFC 2136; `local` only locks the state directory.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LockMode {
    #[default]
    Zone,
    Local,
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
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

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DnsMode {
    /// RFC 2136 dynamic updates signed with TSIG.
    #[default]
    Rfc2136,
    /// The operator makes the change by hand; edgefail prints it and verifies.
    Manual,
}

/// What serves the zone. It changes only how `export powershell` writes
/// the DNS steps: `failover` speaks RFC 2136 with TSIG to any server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DnsServerKind {
    /// BIND, Knot, PowerDNS or any other server `nsupdate` can update.
    #[default]
    Other,
    /// Windows Server DNS: the export uses the DnsServer module's cmdlets.
    Windows,
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
pub struct Dns {
    pub zone: String,
    #[serde(default)]
    pub mode: DnsMode,
    #[serde(default)]
    pub server: DnsServerKind,
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
    /// The TXT record that holds a run's lease (`lock: zone`); default
    /// `_edgefail-lock.<zone>`.
    #[serde(default)]
    pub lease_name: Option<String>,
    /// How long a lease lasts unless renewed (the run renews it while it
    /// lasts).
    #[serde(default = "default_lease_secs")]
    pub lease_secs: u64,
}

impl Dns {
    /// The lease record's name.
    pub fn lease_owner(&self) -> String {
        self.lease_name
            .clone()
            .unwrap_or_else(|| format!("_edgefail-lock.{}", self.zone))
    }
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
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
    /// Present only to reject it: secrets are never written in the topology
    /// (left out of the schema, which so refuses it too).
    #[serde(default)]
    #[schemars(skip)]
    pub secret: Option<IgnoredAny>,
}

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize, schemars::JsonSchema,
)]
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

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Management {
    pub transport: TransportSpec,
    #[serde(default)]
    pub route_parameter: RouteParameter,
    /// Which sites' routes step 3 moves to the target pool.
    #[serde(default)]
    pub move_routes: MoveRoutes,
}

/// Which sites' XMPP federation routes a failover (or failback) moves.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum MoveRoutes {
    /// The documented procedure: only the target pool's site (Set-CsSite
    /// Site2 ...). Other sites' routes are listed and left as they are.
    #[default]
    TargetSite,
    /// Also every other site whose route names another pool, in the same
    /// step: nothing keeps naming the pool that was left.
    AllSites,
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum TransportSpec {
    /// PowerShell on this machine.
    Local(LocalSpec),
    /// The system OpenSSH client to the machine, PowerShell on the far side.
    Ssh(SshSpec),
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
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
    /// One PowerShell process for the whole run (the default), or one per
    /// script with `false`.
    #[serde(default)]
    pub session: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
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
    /// One PowerShell process for the whole run (the default), or one per
    /// script with `false`.
    #[serde(default)]
    pub session: Option<bool>,
}

impl TransportSpec {
    pub fn module(&self) -> Option<&str> {
        match self {
            TransportSpec::Local(l) => l.module.as_deref(),
            TransportSpec::Ssh(s) => s.module.as_deref(),
        }
    }

    /// Whether the machine is reached through one session for the run.
    pub fn session(&self) -> bool {
        match self {
            TransportSpec::Local(l) => l.session,
            TransportSpec::Ssh(s) => s.session,
        }
        .unwrap_or(true)
    }
}

#[derive(Debug, Clone, Copy, Deserialize, schemars::JsonSchema)]
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

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Site {
    pub name: String,
    pub pools: Vec<Pool>,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, schemars::JsonSchema,
)]
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

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
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

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
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
fn default_lease_secs() -> u64 {
    600
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
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
    /// Where each field stands, for findings added later.
    tree: Tree,
}

impl Loaded {
    /// Where the field at `path` (like `sites[1].pools[0].name`) stands in
    /// the file: its value, or the nearest enclosing value that exists.
    pub fn locate(&self, path: &str) -> Pos {
        let masked = Masked::new();
        Locator {
            tree: &self.tree,
            masked: &masked,
        }
        .resolve(path)
        .1
    }

    /// Add a finding about the field at `path`, located, in file order.
    pub fn push(&mut self, severity: Severity, path: &str, message: String) {
        let pos = self.locate(path);
        let diagnostics = &mut self.report.diagnostics;
        let at = diagnostics.partition_point(|d| (d.pos, d.severity) <= (pos, severity));
        diagnostics.insert(
            at,
            Diagnostic {
                severity,
                pos,
                path: path.to_string(),
                message,
            },
        );
    }
}

/// Read, parse and validate a topology file.
pub fn load(path: &Path) -> Result<Loaded, LoadError> {
    load_checked(path, |_| Vec::new())
}

/// Read, parse and validate a topology file; `outside` adds what it finds
/// about the things the file names outside itself (topology itself does no
/// such I/O: `settings` passes the checker), reported with the file's
/// own findings, located and in file order.
pub fn load_checked(
    path: &Path,
    outside: impl FnOnce(&Topology) -> Vec<Outside>,
) -> Result<Loaded, LoadError> {
    let read_error = |source| LoadError::Read {
        path: path.to_path_buf(),
        source,
    };
    // Never read more than a topology file may hold.
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(tree::MAX_BYTES as u64 + 1).read_to_end(&mut bytes))
        .map_err(read_error)?;
    if bytes.len() > tree::MAX_BYTES {
        let f = tree::too_large();
        return Err(LoadError::Invalid {
            report: Report {
                file: path.to_path_buf(),
                diagnostics: vec![Diagnostic {
                    severity: Severity::Error,
                    pos: f.pos,
                    path: f.path,
                    message: f.message,
                }],
            },
        });
    }
    let text = String::from_utf8(bytes)
        .map_err(|e| read_error(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))?;
    let (topology, diagnostics, tree) = parse_located(&text);
    let report = Report {
        file: path.to_path_buf(),
        diagnostics,
    };
    let Some(topology) = topology else {
        return Err(LoadError::Invalid { report });
    };
    let mut loaded = Loaded {
        topology,
        report,
        text,
        tree,
    };
    resolve_key_file(&mut loaded.topology, path);
    for (severity, field, message) in outside(&loaded.topology) {
        loaded.push(severity, field, message);
    }
    if loaded.report.errors() == 0 {
        Ok(loaded)
    } else {
        Err(LoadError::Invalid {
            report: loaded.report,
        })
    }
}

/// A relative `dns.tsig.secret_file` names a file beside the topology, not
/// in whatever folder edgefail runs from: make it absolute against the
/// topology file's folder, so every message shows the path tried.
fn resolve_key_file(topology: &mut Topology, topology_path: &Path) {
    let Some(file) = topology
        .dns
        .tsig
        .as_mut()
        .and_then(|t| t.secret_file.as_mut())
    else {
        return;
    };
    if !file.is_relative() || crate::secret::looks_like_secret(&file.to_string_lossy()) {
        return;
    }
    let folder = match topology_path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let folder = std::path::absolute(&folder).unwrap_or(folder);
    *file = folder.join(&*file);
}

/// A finding about the world outside the file (a key file, a variable),
/// as a later layer checks it: severity, field path, message.
pub type Outside = (Severity, &'static str, String);

/// Parse and validate text; the topology is `None` when its structure is
/// broken anywhere (the report says where).
pub fn parse(file: &Path, text: &str) -> (Option<Topology>, Report) {
    let (topology, diagnostics, _) = parse_located(text);
    (
        topology,
        Report {
            file: file.to_path_buf(),
            diagnostics,
        },
    )
}

/// The top-level fields, in the order of [`Topology`].
const TOP_FIELDS: &[&str] = &[
    "version",
    "xmpp",
    "dns",
    "management",
    "timeouts",
    "sites",
    "state_dir",
    "lock",
];

/// Top-level fields that may be left out.
const OPTIONAL_TOP: &[&str] = &["timeouts", "state_dir", "lock"];

/// Each top-level part of the file, deserialised on its own.
#[derive(Default)]
struct Sections {
    version: Option<u32>,
    xmpp: Option<Xmpp>,
    dns: Option<Dns>,
    management: Option<Management>,
    timeouts: Option<Timeouts>,
    sites: Option<Vec<Site>>,
    state_dir: Option<Option<PathBuf>>,
    lock: Option<LockMode>,
}

fn parse_located(text: &str) -> (Option<Topology>, Vec<Diagnostic>, Tree) {
    let error = |pos, path, message| Diagnostic {
        severity: Severity::Error,
        pos,
        path,
        message,
    };
    let (tree, findings) = match Tree::parse(text) {
        Ok(parsed) => parsed,
        Err(f) => return (None, vec![error(f.pos, f.path, f.message)], Tree::default()),
    };
    let mut diagnostics: Vec<Diagnostic> = findings
        .into_iter()
        .map(|f| error(f.pos, f.path, f.message))
        .collect();
    let mut recovery = de::Recovery::new(&tree);
    let sections = sections(&tree, &mut recovery);
    let masked = std::mem::take(&mut recovery.masked);
    diagnostics.extend(
        recovery
            .into_problems()
            .into_iter()
            .map(|p| error(p.pos, p.path, p.message)),
    );
    let structure_ok = diagnostics.is_empty();
    let parts = validate::Parts {
        version: sections.version,
        xmpp: sections.xmpp.as_ref(),
        dns: sections.dns.as_ref(),
        management: sections.management.as_ref(),
        timeouts: sections.timeouts.as_ref(),
        sites: sections.sites.as_deref(),
    };
    let locator = Locator {
        tree: &tree,
        masked: &masked,
    };
    validate::validate(&parts, &locator, &mut diagnostics);
    let topology = match sections {
        Sections {
            version: Some(version),
            xmpp: Some(xmpp),
            dns: Some(dns),
            management: Some(management),
            timeouts: Some(timeouts),
            sites: Some(sites),
            state_dir: Some(state_dir),
            lock: Some(lock),
        } if structure_ok => Some(Topology {
            version,
            xmpp,
            dns,
            management,
            timeouts,
            sites,
            state_dir,
            lock,
        }),
        _ => None,
    };
    let mut seen = std::collections::HashSet::new();
    diagnostics.retain(|d| seen.insert((d.severity, d.pos, d.path.clone(), d.message.clone())));
    diagnostics.sort_by_key(|d| (d.pos, d.severity));
    (topology, diagnostics, tree)
}

/// Deserialise each top-level part on its own; report unknown and missing
/// top-level fields.
fn sections(tree: &Tree, r: &mut de::Recovery<'_>) -> Sections {
    let mut s = Sections::default();
    let expected = "expected a mapping with version, xmpp, dns, management and sites";
    let Some(root) = tree.root.and_then(|id| tree.node(id)) else {
        r.report(
            Pos { line: 1, column: 1 },
            String::new(),
            format!("the file is empty: {expected}"),
        );
        return s;
    };
    let entries = match &root.kind {
        Kind::Map(entries) => entries,
        other => {
            let found = match other {
                Kind::Seq(_) => "a sequence",
                _ => "a single value",
            };
            r.report(
                root.pos,
                String::new(),
                format!("found {found}, {expected}"),
            );
            return s;
        }
    };
    for e in entries {
        if !TOP_FIELDS.contains(&e.key.as_str()) {
            r.report(
                e.key_pos,
                e.key.clone(),
                de::unknown_field_message(&e.key, TOP_FIELDS),
            );
        }
    }
    for field in TOP_FIELDS.iter().filter(|f| !OPTIONAL_TOP.contains(f)) {
        if !entries.iter().any(|e| e.key == *field) {
            r.report(root.pos, String::new(), format!("missing field `{field}`"));
        }
    }
    let get = |key: &str| entries.iter().find(|e| e.key == key).map(|e| e.value);
    s.version = get("version").and_then(|id| r.recover(id, "version"));
    s.xmpp = get("xmpp").and_then(|id| r.recover(id, "xmpp"));
    s.dns = get("dns").and_then(|id| r.recover(id, "dns"));
    s.management = get("management").and_then(|id| r.recover(id, "management"));
    s.timeouts = match get("timeouts") {
        None => Some(Timeouts::default()),
        Some(id) => r.recover(id, "timeouts"),
    };
    s.sites = get("sites").and_then(|id| r.recover(id, "sites"));
    s.state_dir = match get("state_dir") {
        None => Some(None),
        Some(id) => r.recover::<PathBuf>(id, "state_dir").map(Some),
    };
    s.lock = match get("lock") {
        None => Some(LockMode::default()),
        Some(id) => r.recover(id, "lock"),
    };
    s
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    const GOOD: &str = "version: 1
xmpp:
  domain: contoso.com
  a_record: xmpp.contoso.com
dns:
  zone: contoso.com
  mode: manual
  authoritative: ['192.0.2.53']
management:
  transport: {type: local}
sites:
  - name: Site1
    pools:
      - name: EdgePool1
        fqdn: edgepool1.contoso.com
        version: lync2013
        srv_priority: 10
        servers:
          - fqdn: edge1.contoso.com
            external_ipv4: 192.0.2.10
            transport: {type: local}
  - name: Site2
    pools:
      - name: EdgePool2
        fqdn: edgepool2.contoso.com
        version: lync2013
        srv_priority: 20
        servers:
          - fqdn: edge2.contoso.com
            external_ipv4: 192.0.2.20
            transport: {type: local}
";

    fn lines(report: &Report) -> Vec<String> {
        report
            .diagnostics
            .iter()
            .map(|d| format!("{}:{} {}: {}", d.pos.line, d.pos.column, d.path, d.message))
            .collect()
    }

    /// Parse `text` within `limit`; exactly one error, at `line`.
    #[track_caller]
    fn fails_fast(text: &str, line: usize, needle: &str) {
        let started = Instant::now();
        let (topology, report) = parse(Path::new("t.yaml"), text);
        let took = started.elapsed();
        assert!(took < Duration::from_secs(5), "took {took:?}");
        assert!(topology.is_none());
        let found = lines(&report);
        assert_eq!(found.len(), 1, "{found:?}");
        let d = &report.diagnostics[0];
        assert_eq!(d.pos.line, line, "{found:?}");
        assert!(d.pos.column > 0, "{found:?}");
        assert!(d.message.contains(needle), "{found:?}");
    }

    #[test]
    fn a_good_file_has_no_findings() {
        let (topology, report) = parse(Path::new("t.yaml"), GOOD);
        assert!(report.diagnostics.is_empty(), "{report}");
        let t = topology.unwrap_or_else(|| panic!("no topology"));
        assert_eq!(t.pools().count(), 2);
        assert_eq!(t.xmpp.port, 5269);
        assert_eq!(t.timeouts.command_secs, 120);
    }

    #[test]
    fn deep_nesting_fails_fast_with_a_location() {
        // 60 KB of nested block sequences: `- - - - ... x`.
        let text = format!("{}x\n", "- ".repeat(30_000));
        fails_fast(&text, 1, "nest deeper than 64 levels");
        let (_, report) = parse(Path::new("t.yaml"), &text);
        assert_eq!(report.diagnostics[0].pos.column, 2 * tree::MAX_DEPTH + 1);
        // Flow collections and mappings too.
        fails_fast(&"[".repeat(60_000), 1, "");
        let mut nested = String::new();
        for depth in 0..100 {
            nested.push_str(&format!("{}k:\n", "  ".repeat(depth)));
        }
        fails_fast(&nested, 65, "nest deeper than 64 levels");
    }

    #[test]
    fn billion_laughs_fails_fast_with_a_location() {
        let mut text = String::from("a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
        for (prev, name) in ["a", "b", "c", "d", "e", "f", "g", "h"]
            .iter()
            .zip(["b", "c", "d", "e", "f", "g", "h", "i"])
        {
            let aliases = vec![format!("*{prev}"); 9].join(", ");
            text.push_str(&format!("{name}: &{name} [{aliases}]\n"));
        }
        fails_fast(&text, 5, "takes the document past 50000");
        // An alias inside its own anchor.
        fails_fast(
            "a: &a [*a, *a]\nsites: *a\n",
            1,
            "refers to a node that contains it",
        );
    }

    #[test]
    fn a_file_too_large_is_refused_before_parsing() {
        let text = format!("# {}\n", "x".repeat(tree::MAX_BYTES));
        fails_fast(&text, 1, "larger than");
    }

    #[test]
    fn every_problem_is_reported_once_with_its_location() {
        let text = GOOD
            .replacen(
                "a_record: xmpp.contoso.com",
                "a_record: xmpp.contoso.com\n  port: [5269]",
                1,
            )
            .replacen("        fqdn: edgepool1.contoso.com\n", "", 1)
            .replacen("version: lync2013", "version: lync2010", 2)
            .replacen("  mode: manual", "  mode: manual\n  colour: blue", 1)
            .replacen("external_ipv4: 192.0.2.20", "external_ipv4: 300.1.2.3", 1)
            .replacen(
                "transport: {type: local}\n  - name",
                "transport: {type: local, x: 1}\n  - name",
                1,
            );
        let (topology, report) = parse(Path::new("t.yaml"), &text);
        assert!(topology.is_none());
        assert_eq!(
            lines(&report),
            [
                "5:9 xmpp.port: invalid type: sequence, expected u16",
                "9:3 dns.colour: unknown field `colour`, expected one of `zone`, `mode`, `server`, `primary`, `authoritative`, `tsig`, `timeout_secs`, `lease_name`, `lease_secs`",
                "16:9 sites[0].pools[0]: missing field `fqdn`",
                "17:18 sites[0].pools[0].version: unknown variant `lync2010`, expected one of `lync2013`, `sfb2015`, `sfb2019`",
                "22:38 sites[0].pools[0].servers[0].transport.x: unknown field `x`, expected one of `program`, `args`, `module`, `session`",
                "27:18 sites[1].pools[0].version: unknown variant `lync2010`, expected one of `lync2013`, `sfb2015`, `sfb2019`",
                "31:28 sites[1].pools[0].servers[0].external_ipv4: '300.1.2.3' is not an IPv4 address",
            ]
        );
        assert!(!report.to_string().contains("fix this first"));
    }

    #[test]
    fn a_broken_section_hides_nothing_else() {
        // No xmpp at all, a pool whose every server is broken, an unknown
        // top-level field: the rest is still checked.
        let start = GOOD.find("xmpp:").unwrap_or_default();
        let end = GOOD.find("dns:").unwrap_or_default();
        let text = format!("{}{}", &GOOD[..start], &GOOD[end..])
            .replacen("version: 1", "version: 2\nextra: 1", 1)
            .replacen("external_ipv4: 192.0.2.20", "external_ipv4: {a: 1}", 1)
            .replacen("name: Site2", "name: Site1", 1);
        let (_, report) = parse(Path::new("t.yaml"), &text);
        assert_eq!(
            lines(&report),
            [
                "1:1 : missing field `xmpp`",
                "1:10 version: this edgefail reads topology format 1, the file says 2",
                "2:1 extra: unknown field `extra`, expected one of `version`, `xmpp`, `dns`, `management`, `timeouts`, `sites`, `state_dir`, `lock`",
                "20:11 sites[1].name: duplicate site 'Site1' (first at line 10)",
                "28:28 sites[1].pools[0].servers[0].external_ipv4: invalid type: map, expected a string",
            ]
        );
    }

    #[test]
    fn left_out_items_keep_their_own_indexes() {
        // A broken required field gets a placeholder: the pool stays, its
        // other problems are found. A server whose transport is broken
        // goes, and so does a broken list item: the items after them keep
        // their own indexes.
        let text = GOOD
            .replacen("srv_priority: 10", "srv_priority: ten", 1)
            .replacen("fqdn: edgepool1.contoso.com", "fqdn: bad_name", 1)
            .replacen(
                "          - fqdn: edge2.contoso.com",
                "          - fqdn: edge3.contoso.com\n            external_ipv4: 192.0.2.30\n            transport: {type: telnet}\n          - fqdn: edge2.contoso.com",
                1,
            )
            .replacen("external_ipv4: 192.0.2.20", "external_ipv4: 192.0.2.10", 1)
            .replacen("['192.0.2.53']", "[[x], 'ns1']", 1);
        let (_, report) = parse(Path::new("t.yaml"), &text);
        assert_eq!(
            lines(&report),
            [
                "8:19 dns.authoritative[0]: invalid type: sequence, expected a string",
                "8:24 dns.authoritative[1]: 'ns1': expected an IP address with an optional port (192.0.2.53 or 192.0.2.53:5353 or [2001:db8::53]:53)",
                "15:15 sites[0].pools[0].fqdn: 'bad_name' is not a valid pool FQDN: label 'bad_name' may hold only letters, digits and inner hyphens",
                "17:23 sites[0].pools[0].srv_priority: invalid type: string \"ten\", expected u16",
                "31:31 sites[1].pools[0].servers[0].transport.type: unknown variant `telnet`, expected `local` or `ssh`",
                "33:28 sites[1].pools[0].servers[1].external_ipv4: duplicate external address '192.0.2.10' (first at line 20)",
            ]
        );
    }

    #[test]
    fn loaded_locates_and_keeps_later_findings_in_order() {
        let (topology, diagnostics, tree) = parse_located(GOOD);
        let mut loaded = Loaded {
            topology: topology.unwrap_or_else(|| panic!("{diagnostics:?}")),
            report: Report {
                file: PathBuf::from("t.yaml"),
                diagnostics,
            },
            text: GOOD.to_string(),
            tree,
        };
        assert_eq!(
            loaded.locate("sites[1].pools[0].name"),
            Pos {
                line: 24,
                column: 15
            }
        );
        // A missing field points at its mapping.
        assert_eq!(loaded.locate("dns.primary"), Pos { line: 6, column: 3 });
        loaded.push(Severity::Warning, "sites[1].name", "late".into());
        loaded.push(Severity::Note, "xmpp.domain", "early".into());
        loaded.push(Severity::Error, "sites[1].name", "same place".into());
        assert_eq!(
            lines(&loaded.report),
            [
                "3:11 xmpp.domain: early",
                "22:11 sites[1].name: same place",
                "22:11 sites[1].name: late",
            ]
        );
    }
}
