//! Where XMPP federation runs now, read from every source at once and
//! changing nothing: every site's route (Get-CsSite), every Edge server's
//! Lync services and port, the XMPP records on every authoritative DNS
//! server, and what a partner sees. `edgefail status` prints it; `rehearse
//! --status` reads the simulated estate the same way.
//!
//! The readers are the runbook's own (the route, `lync::Machine`,
//! `dns::Authority`, the port check, the partner's-eye probe); this module
//! only reads them side by side and judges ([`verdict`]).

mod read;
pub mod verdict;

use serde::{Deserialize, Serialize};

pub use read::{Sources, read};
pub use verdict::{Verdict, VerdictState};

/// The version of the JSON document; bumped when a field changes meaning.
pub const FORMAT: u32 = 1;

/// Everything `status` read, and the verdict: the one JSON document of
/// `edgefail status --output json` (its `type` is `status`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// Always "status".
    #[serde(rename = "type")]
    pub kind: String,
    pub format: u32,
    /// The XMPP domain.
    pub domain: String,
    /// When the reading started (RFC 3339 UTC).
    pub at: String,
    /// How long the reading took.
    pub duration_ms: u64,
    pub sites: Vec<SiteReading>,
    pub pools: Vec<PoolReading>,
    pub dns: DnsReading,
    pub partner: PartnerReading,
    pub verdict: Verdict,
}

/// One site's XMPP federation route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteReading {
    pub site: String,
    /// The Set-CsSite parameter read (XmppExternalFederationRoute or
    /// XmppFederationRoute).
    pub parameter: Option<String>,
    /// The route as Get-CsSite shows it; `None`: not set (or not read).
    pub route: Option<String>,
    /// The pool whose Edge server the route names.
    pub pool: Option<String>,
    /// Why the route could not be read.
    pub cannot_tell: Option<String>,
}

/// How a set of Lync services stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServicesState {
    Running,
    Stopped,
    /// Some running, some not: the stragglers are named.
    Mixed,
    CannotTell,
}

impl ServicesState {
    pub fn as_str(self) -> &'static str {
        match self {
            ServicesState::Running => "Running",
            ServicesState::Stopped => "Stopped",
            ServicesState::Mixed => "mixed",
            ServicesState::CannotTell => "cannot tell",
        }
    }
}

/// One Lync service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceReading {
    pub name: String,
    pub status: String,
}

/// One Edge server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerReading {
    pub fqdn: String,
    pub external_ipv4: String,
    pub services: Vec<ServiceReading>,
    pub services_state: ServicesState,
    /// Why the services could not be read.
    pub cannot_tell: Option<String>,
    /// The XMPP port from outside: open, closed, filtered, unreachable.
    pub port: String,
    /// The port probe in words ("closed (refused after 0.0s)").
    pub port_detail: String,
}

/// One Edge pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolReading {
    pub pool: String,
    pub site: String,
    pub version: String,
    /// Lync 2013 / SfB 2015: has an XMPP gateway.
    pub carries_xmpp: bool,
    pub services: ServicesState,
    /// Servers (or services) off the pool's majority: "EdgeServer2b: RTCSRV Stopped".
    pub stragglers: Vec<String>,
    pub servers: Vec<ServerReading>,
}

impl PoolReading {
    /// Every service runs and every port accepts connections.
    pub fn healthy(&self) -> bool {
        self.services == ServicesState::Running
            && !self.servers.is_empty()
            && self.servers.iter().all(|s| s.port == "open")
    }
}

/// One `_xmpp-server._tcp` record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SrvReading {
    pub priority: u16,
    pub weight: u16,
    pub port: u16,
    pub target: String,
    /// The pool whose `srv_target` this is.
    pub pool: Option<String>,
}

/// What one authoritative server holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsServerReading {
    pub server: String,
    /// Updates go here.
    pub primary: bool,
    /// Listed in `dns.authoritative`.
    pub listed: bool,
    pub serial: Option<u32>,
    pub a: Vec<String>,
    pub srv: Vec<SrvReading>,
    pub cannot_tell: Option<String>,
}

/// The zone's XMPP records, server by server, and what they mean.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsReading {
    /// The XMPP A record's name (xmpp.contoso.com).
    pub a_record: String,
    pub servers: Vec<DnsServerReading>,
    /// The server the meaning below is read from: the primary, else the
    /// first that answered.
    pub basis: Option<String>,
    /// The A record's addresses on the basis server, and whose they are.
    pub a: Vec<String>,
    pub a_pools: Vec<String>,
    /// The SRV records on the basis server, in the order partners try them.
    pub srv: Vec<SrvReading>,
    /// The record partners try first (lowest priority number).
    pub preferred: Option<SrvReading>,
    /// Servers that differ from the basis (serial, A or SRV), in words.
    pub disagreements: Vec<String>,
}

impl DnsReading {
    /// The pool partners prefer.
    pub fn preferred_pool(&self) -> Option<&str> {
        self.preferred.as_ref().and_then(|p| p.pool.as_deref())
    }
}

/// What a federating partner sees, asked through the authoritative servers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartnerReading {
    /// A partner's server could federate (stream, STARTTLS, certificate).
    pub passed: bool,
    /// The probe's one line.
    pub summary: String,
    /// "partners now go to ... (EdgePool2) and federate".
    pub sees: String,
    /// host:port partners connect to.
    pub target: Option<String>,
    /// The pool(s) partners reach.
    pub pools: Vec<String>,
    /// One line per finding.
    pub findings: Vec<String>,
    /// The SRV lookup itself failed: whether partners federate is unknown.
    pub cannot_tell: Option<String>,
}
