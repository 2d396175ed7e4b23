//! Why a DNS exchange failed, worded for the operator: the server
//! (address:port), what it answered, and what to check. No variant carries
//! key material.

use std::net::SocketAddr;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::tsig::TsigError;

/// What edgefail was doing when the server answered with an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Reading `name`'s `rtype` records.
    Query { name: String, rtype: String },
    /// Updating zone `zone` with key `key`.
    Update { zone: String, key: String },
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Action::Query { name, rtype } => write!(f, "read {name} {rtype}"),
            Action::Update { zone, .. } => write!(f, "update zone {zone}"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    #[error("use '{name}' as a DNS name: {problem}")]
    BadName { name: String, problem: String },
    #[error("use {field} as a server address: {problem}")]
    BadAddress { field: String, problem: String },
    #[error(
        "connect to DNS server {server}: connection refused: nothing listens on TCP port {port} there; check that the DNS server is running and that the topology names the right address and port",
        port = server.port()
    )]
    ConnectRefused { server: SocketAddr },
    #[error(
        "connect to DNS server {server}: no connection within {secs}s (dns.timeout_secs): check the address, and that a firewall lets TCP port {port} through",
        port = server.port()
    )]
    ConnectTimeout { server: SocketAddr, secs: u64 },
    #[error("connect to DNS server {server}: {source}")]
    Connect {
        server: SocketAddr,
        source: std::io::Error,
    },
    #[error(
        "{action} on {server}: the server took the connection but sent no answer within {secs}s (dns.timeout_secs): check that a DNS server (not some other service) listens there and that it is not hung or overloaded"
    )]
    Timeout {
        server: SocketAddr,
        action: Action,
        secs: u64,
    },
    #[error("{action} on {server}: {source}")]
    Io {
        server: SocketAddr,
        action: Action,
        source: std::io::Error,
    },
    #[error("{action} on {server}: the answer is not a DNS message edgefail can read: {problem}")]
    Malformed {
        server: SocketAddr,
        action: Action,
        problem: String,
    },
    #[error("{action} on {server}: {}", rcode_advice(action, *rcode))]
    Answer {
        server: SocketAddr,
        action: Action,
        rcode: ResponseCode,
    },
    #[error(
        "{action} on {server}: the server answered without claiming authority for the zone (no AA flag): it does not serve the zone; check dns.authoritative and dns.zone"
    )]
    NotAuthoritative { server: SocketAddr, action: Action },
    #[error("{action} on {server}: {}", tsig_advice(action, *error, *skew))]
    Tsig {
        server: SocketAddr,
        action: Action,
        error: TsigError,
        /// Server clock minus ours, in seconds, when the server said (BADTIME).
        skew: Option<i64>,
    },
    #[error(
        "{action} on {server}: the answer ({rcode}) carries no TSIG signature, so it cannot be trusted: whether the update was applied is unknown; read the records to find out, and check that nothing between here and the server strips signatures"
    )]
    Unsigned {
        server: SocketAddr,
        action: Action,
        rcode: ResponseCode,
    },
    #[error(
        "{action} on {server}: the answer's TSIG signature does not verify ({problem}): it may not come from the server; whether the update was applied is unknown"
    )]
    BadAnswerSignature {
        server: SocketAddr,
        action: Action,
        problem: String,
    },
    #[error(
        "{action} on {server}: the prerequisite failed ({rcode}): the records are not what was read"
    )]
    Prerequisite {
        server: SocketAddr,
        action: Action,
        rcode: ResponseCode,
    },
    #[error("sign the update with TSIG key \"{key}\": {problem}")]
    Sign { key: String, problem: String },
}

fn rcode_name(rcode: ResponseCode) -> String {
    match rcode {
        ResponseCode::NoError => "NOERROR".into(),
        ResponseCode::FormErr => "FORMERR".into(),
        ResponseCode::ServFail => "SERVFAIL".into(),
        ResponseCode::NXDomain => "NXDOMAIN".into(),
        ResponseCode::NotImp => "NOTIMP".into(),
        ResponseCode::Refused => "REFUSED".into(),
        ResponseCode::YXDomain => "YXDOMAIN".into(),
        ResponseCode::YXRRSet => "YXRRSET".into(),
        ResponseCode::NXRRSet => "NXRRSET".into(),
        ResponseCode::NotAuth => "NOTAUTH".into(),
        ResponseCode::NotZone => "NOTZONE".into(),
        other => format!("rcode {}", u16::from(other)),
    }
}

fn rcode_advice(action: &Action, rcode: ResponseCode) -> String {
    let code = rcode_name(rcode);
    match (action, rcode) {
        (Action::Update { key, .. }, ResponseCode::Refused) => format!(
            "the server refused the update ({code}): the TSIG key \"{key}\" is not allowed to update this zone there (check allow-update / update-policy), or the server is not the primary (check dns.primary)"
        ),
        (Action::Update { zone, .. }, ResponseCode::NotAuth) => format!(
            "the server is not authoritative for {zone} ({code}): it does not serve the zone as primary; check dns.primary and dns.zone"
        ),
        (Action::Update { zone, .. }, ResponseCode::NotZone) => format!(
            "a name in the update is outside zone {zone} ({code}): check that xmpp.a_record and xmpp.domain lie inside dns.zone"
        ),
        (Action::Update { .. }, ResponseCode::ServFail) => format!(
            "the server failed to apply the update ({code}): check its log (zone not loaded, journal not writable, disk full)"
        ),
        (Action::Update { .. }, ResponseCode::NotImp) => format!(
            "the server does not implement dynamic updates ({code}): use dns.mode: manual, or point dns.primary at a server that accepts RFC 2136 updates"
        ),
        (Action::Update { .. }, ResponseCode::FormErr) => {
            format!("the server could not parse the update ({code}): check its log")
        }
        (Action::Query { .. }, ResponseCode::Refused) => format!(
            "the server refused the query ({code}): it does not serve the zone, or does not let this machine query it; check dns.authoritative, dns.zone and the server's allow-query"
        ),
        (Action::Query { .. }, ResponseCode::NotAuth) => format!(
            "the server is not authoritative for the zone ({code}); check dns.authoritative and dns.zone"
        ),
        (Action::Query { .. }, ResponseCode::ServFail) => format!(
            "the server failed to answer ({code}): the zone may have failed to load or expired there; check its log"
        ),
        (_, _) => format!("the server answered {code}"),
    }
}

fn tsig_advice(action: &Action, error: TsigError, skew: Option<i64>) -> String {
    let key = match action {
        Action::Update { key, .. } => key.as_str(),
        Action::Query { .. } => "",
    };
    match error {
        TsigError::BadSig => format!(
            "the server rejected the TSIG key \"{key}\" (BADSIG): the signature does not match; check the secret (dns.tsig.secret_file or secret_env) against the server's key"
        ),
        TsigError::BadKey => format!(
            "the server rejected the TSIG key \"{key}\" (BADKEY): it does not know a key of that name and algorithm; check dns.tsig.name and dns.tsig.algorithm against the server's key statement, and that dns.primary is the server that has the key"
        ),
        TsigError::BadTime => match skew {
            Some(s) => format!(
                "the server rejected the TSIG signature's time (BADTIME): its clock and this machine's differ by {s}s; check the clock (NTP) on both"
            ),
            None => "the server rejected the TSIG signature's time (BADTIME): the clocks differ too much; check the clock (NTP) on both".to_string(),
        },
        TsigError::BadTrunc => format!(
            "the server rejected the TSIG signature of key \"{key}\" as truncated (BADTRUNC); check dns.tsig.algorithm"
        ),
        TsigError::Unknown(code) => format!(
            "the server rejected the TSIG signature of key \"{key}\" (TSIG error {code})"
        ),
    }
}

impl DnsError {
    /// The server the error is about, when there is one.
    pub fn server(&self) -> Option<SocketAddr> {
        match self {
            DnsError::BadName { .. } | DnsError::BadAddress { .. } | DnsError::Sign { .. } => None,
            DnsError::ConnectRefused { server }
            | DnsError::ConnectTimeout { server, .. }
            | DnsError::Connect { server, .. }
            | DnsError::Timeout { server, .. }
            | DnsError::Io { server, .. }
            | DnsError::Malformed { server, .. }
            | DnsError::Answer { server, .. }
            | DnsError::NotAuthoritative { server, .. }
            | DnsError::Tsig { server, .. }
            | DnsError::Unsigned { server, .. }
            | DnsError::BadAnswerSignature { server, .. }
            | DnsError::Prerequisite { server, .. } => Some(*server),
        }
    }
}
