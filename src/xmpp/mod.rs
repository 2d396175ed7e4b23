//! XMPP server-to-server, seen from outside: the state of port 5269, the
//! stream a partner opens, STARTTLS and the certificate it gets, the SRV
//! records it follows, and a report that puts them together.

pub mod port;
pub mod probe;
pub mod srv;
pub mod stream;
pub mod tls;

use std::time::Duration;

use crate::topology::Xmpp;

/// The `from` a probe presents when the topology names no partner.
pub const DEFAULT_PARTNER: &str = "partner.example";

/// Every wait of a probe, explicit: a silent firewall or a hung server must
/// never hold an operator for minutes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP connect; past it the port counts as filtered.
    pub connect: Duration,
    /// From sending the stream header to the first byte of the answer.
    pub first_byte: Duration,
    /// The whole exchange: connect, stream, STARTTLS, TLS handshake.
    pub exchange: Duration,
}

impl Timeouts {
    pub fn from_topology(x: &Xmpp) -> Timeouts {
        Timeouts {
            connect: Duration::from_millis(x.connect_timeout_ms),
            first_byte: Duration::from_millis(x.first_byte_timeout_ms),
            exchange: Duration::from_millis(x.exchange_timeout_ms),
        }
    }
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts {
            connect: Duration::from_secs(5),
            first_byte: Duration::from_secs(10),
            exchange: Duration::from_secs(30),
        }
    }
}
