//! External DNS for steps 4 and 5: reading the XMPP records and the SOA
//! serial from each authoritative server directly, and changing them on the
//! primary with one TSIG-signed RFC 2136 UPDATE over TCP.
//!
//! Two small seams carry everything: [`Authority`], a server to ask, and
//! [`Primary`], the server to update. Both take an address and port, never
//! a name and never an assumed port 53, so the same code talks to a real
//! estate, a test BIND, or an in-process server on loopback.

mod client;
mod error;
pub mod lease;
mod proof;
mod records;
mod tsig;
mod update;

use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::rr::Name;

pub use error::{Action, DnsError};
pub use proof::prove_key;
pub use records::{Authority, Rrset, Snapshot, SrvRecord};
pub use tsig::Signer;
pub use update::{Data, Primary, Update};

use crate::topology::{Topology, parse_server_addr};

/// The names one check reads, as DNS names (fully qualified).
#[derive(Debug, Clone)]
pub struct ZoneNames {
    pub zone: Name,
    /// The XMPP federation A record (xmpp.contoso.com.).
    pub a: Name,
    /// `_xmpp-server._tcp.<domain>.`
    pub srv: Name,
}

impl ZoneNames {
    pub fn from_topology(t: &Topology) -> Result<ZoneNames, DnsError> {
        Ok(ZoneNames {
            zone: fqdn(&t.dns.zone)?,
            a: fqdn(&t.xmpp.a_record)?,
            srv: fqdn(&t.xmpp.srv_owner())?,
        })
    }
}

/// A name from the topology as an absolute DNS name.
pub fn fqdn(text: &str) -> Result<Name, DnsError> {
    let trimmed = text.trim_end_matches('.');
    let mut name = Name::from_ascii(format!("{trimmed}.")).map_err(|e| DnsError::BadName {
        name: crate::names::printable(text),
        problem: e.to_string(),
    })?;
    name.set_fqdn(true);
    Ok(name)
}

/// A name as operators read it: lowercase, with the trailing dot.
pub fn show(name: &Name) -> String {
    let mut text = name.to_lowercase().to_ascii();
    if !text.ends_with('.') {
        text.push('.');
    }
    text
}

/// One server a check or verify asks, and what it is to the zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerRole {
    pub addr: SocketAddr,
    /// Updates go here.
    pub primary: bool,
    /// Listed in `dns.authoritative`.
    pub listed: bool,
}

impl ServerRole {
    pub fn label(&self) -> String {
        match (self.primary, self.listed) {
            (true, true) => format!("{} (primary)", self.addr),
            (true, false) => format!("{} (primary, not listed as authoritative)", self.addr),
            _ => self.addr.to_string(),
        }
    }
}

/// Every server to read: the listed authoritative servers in topology
/// order, and the primary (first) even when it is a hidden primary, since
/// the compare-and-swap must compare against what the primary holds.
pub fn servers(t: &Topology) -> Result<Vec<ServerRole>, DnsError> {
    let primary = match &t.dns.primary {
        Some(p) => Some(
            parse_server_addr(p, 53).map_err(|problem| DnsError::BadAddress {
                field: "dns.primary".into(),
                problem,
            })?,
        ),
        None => None,
    };
    let mut out: Vec<ServerRole> = Vec::new();
    if let Some(addr) = primary {
        out.push(ServerRole {
            addr,
            primary: true,
            listed: false,
        });
    }
    for (i, text) in t.dns.authoritative.iter().enumerate() {
        let addr = parse_server_addr(text, 53).map_err(|problem| DnsError::BadAddress {
            field: format!("dns.authoritative[{i}]"),
            problem,
        })?;
        match out.iter_mut().find(|s| s.addr == addr) {
            Some(s) => s.listed = true,
            None => out.push(ServerRole {
                addr,
                primary: false,
                listed: true,
            }),
        }
    }
    Ok(out)
}

/// The per-exchange timeout the topology sets (`dns.timeout_secs`).
pub fn timeout(t: &Topology) -> Duration {
    Duration::from_secs(t.dns.timeout_secs.max(1))
}

/// RFC 1982 serial arithmetic: is `a` at least `b`?
pub fn serial_at_least(a: u32, b: u32) -> bool {
    a == b || (a.wrapping_sub(b) as i32) > 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_wrap() {
        assert!(serial_at_least(5, 5));
        assert!(serial_at_least(6, 5));
        assert!(!serial_at_least(4, 5));
        assert!(serial_at_least(1, u32::MAX));
        assert!(!serial_at_least(u32::MAX, 1));
    }

    #[test]
    fn names_are_absolute() {
        assert_eq!(
            show(&fqdn("XMPP.Contoso.com").unwrap()),
            "xmpp.contoso.com."
        );
        assert_eq!(
            show(&fqdn("xmpp.contoso.com.").unwrap()),
            "xmpp.contoso.com."
        );
    }
}
