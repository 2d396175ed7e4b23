//! Where a partner's server goes for a domain: the `_xmpp-server._tcp` SRV
//! records in RFC 2782 order and the preferred target's address, looked up
//! by asking given DNS servers directly (never the system resolver). The
//! lookup sits behind [`Lookup`] so another DNS client can stand in.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use async_trait::async_trait;
use hickory_net::client::{Client, ClientHandle};
use hickory_net::proto::op::ResponseCode;
use hickory_net::proto::rr::{DNSClass, Name, RData, RecordType};
use hickory_net::runtime::TokioRuntimeProvider;
use hickory_net::udp::UdpClientStream;
use serde::Serialize;

/// One SRV record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SrvRecord {
    pub priority: u16,
    pub weight: u16,
    pub port: u16,
    /// Without the trailing dot; "." means "no service here" (RFC 2782).
    pub target: String,
    pub ttl: u32,
}

impl SrvRecord {
    /// The RFC 2782 "decidedly not available" record.
    pub fn is_no_service(&self) -> bool {
        self.target.is_empty() || self.target == "."
    }

    pub fn describe(&self) -> String {
        format!(
            "priority {} weight {} port {} target {}",
            self.priority,
            self.weight,
            self.port,
            if self.is_no_service() {
                "."
            } else {
                &self.target
            }
        )
    }
}

/// RFC 2782 order as a partner tries it: the lowest priority number first;
/// within a priority, the heavier weight first (the likelier pick of the
/// weighted random choice), then by name so that the order is stable.
pub fn order(records: &mut [SrvRecord]) {
    records.sort_by(|a, b| {
        a.priority
            .cmp(&b.priority)
            .then(b.weight.cmp(&a.weight))
            .then_with(|| a.target.cmp(&b.target))
    });
}

/// Why a lookup gave no records; reads well after "failed to".
#[derive(Debug, Clone, thiserror::Error)]
pub enum LookupError {
    #[error("look up {name} {rtype}: no such name (NXDOMAIN from {server})")]
    NoSuchName {
        name: String,
        rtype: &'static str,
        server: String,
    },
    #[error("look up {name} {rtype}: the name exists but has no {rtype} record (asked {server})")]
    NoRecords {
        name: String,
        rtype: &'static str,
        server: String,
    },
    #[error("look up {name} {rtype}: {server} answered {code}")]
    Refused {
        name: String,
        rtype: &'static str,
        server: String,
        code: String,
    },
    #[error("look up {name} {rtype}: no answer from {servers} ({reason})")]
    NoAnswer {
        name: String,
        rtype: &'static str,
        servers: String,
        reason: String,
    },
    #[error("look up {name}: it is not a valid DNS name")]
    BadName { name: String },
}

impl LookupError {
    /// The server says the records do not exist (as opposed to not
    /// answering): a partner then falls back to the domain itself.
    pub fn is_absent(&self) -> bool {
        matches!(
            self,
            LookupError::NoSuchName { .. } | LookupError::NoRecords { .. }
        )
    }
}

/// DNS lookups the partner's-eye check needs.
#[async_trait]
pub trait Lookup: Send + Sync {
    /// The SRV records at `owner`, unordered.
    async fn srv(&self, owner: &str) -> Result<Vec<SrvRecord>, LookupError>;
    /// The A records of `host`.
    async fn ipv4(&self, host: &str) -> Result<Vec<Ipv4Addr>, LookupError>;
    /// Whom it asks, for reports ("127.0.0.1:53").
    fn describe(&self) -> String;
}

/// Asks each given server in turn over UDP, taking the first answer; a
/// server that answers (even NXDOMAIN) ends the search, as only a silent
/// one would make a resolver move on.
pub struct DirectLookup {
    servers: Vec<SocketAddr>,
    timeout: Duration,
}

impl DirectLookup {
    pub fn new(servers: Vec<SocketAddr>, timeout: Duration) -> DirectLookup {
        DirectLookup { servers, timeout }
    }

    pub fn servers(&self) -> &[SocketAddr] {
        &self.servers
    }

    async fn query(
        &self,
        name: &str,
        rtype: RecordType,
        label: &'static str,
    ) -> Result<Vec<(u32, RData)>, LookupError> {
        let fqdn = format!("{}.", name.trim_end_matches('.'));
        let qname = Name::from_ascii(&fqdn).map_err(|_| LookupError::BadName {
            name: crate::names::printable(name),
        })?;
        let mut reasons = Vec::new();
        for server in &self.servers {
            let stream = UdpClientStream::builder(*server, TokioRuntimeProvider::default())
                .with_timeout(Some(self.timeout))
                .build();
            let (mut client, background) = Client::<TokioRuntimeProvider>::from_sender(stream);
            let bg = tokio::spawn(background);
            let asked = tokio::time::timeout(
                self.timeout + Duration::from_millis(100),
                client.query(qname.clone(), DNSClass::IN, rtype),
            )
            .await;
            bg.abort();
            let response = match asked {
                Ok(Ok(r)) => r,
                Ok(Err(e)) => {
                    reasons.push(format!("{server}: {e}"));
                    continue;
                }
                Err(_) => {
                    reasons.push(format!(
                        "{server}: no answer in {} ms",
                        self.timeout.as_millis()
                    ));
                    continue;
                }
            };
            let server = server.to_string();
            match response.response_code {
                ResponseCode::NoError => {}
                ResponseCode::NXDomain => {
                    return Err(LookupError::NoSuchName {
                        name: name.to_string(),
                        rtype: label,
                        server,
                    });
                }
                code => {
                    return Err(LookupError::Refused {
                        name: name.to_string(),
                        rtype: label,
                        server,
                        code: code.to_string(),
                    });
                }
            }
            let found: Vec<(u32, RData)> = response
                .answers
                .iter()
                .filter(|r| r.record_type() == rtype)
                .map(|r| (r.ttl, r.data.clone()))
                .collect();
            if found.is_empty() {
                return Err(LookupError::NoRecords {
                    name: name.to_string(),
                    rtype: label,
                    server,
                });
            }
            return Ok(found);
        }
        Err(LookupError::NoAnswer {
            name: name.to_string(),
            rtype: label,
            servers: self
                .servers
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            reason: if reasons.is_empty() {
                "no DNS servers given".into()
            } else {
                reasons.join("; ")
            },
        })
    }
}

#[async_trait]
impl Lookup for DirectLookup {
    async fn srv(&self, owner: &str) -> Result<Vec<SrvRecord>, LookupError> {
        let found = self.query(owner, RecordType::SRV, "SRV").await?;
        Ok(found
            .into_iter()
            .filter_map(|(ttl, data)| match data {
                RData::SRV(srv) => Some(SrvRecord {
                    priority: srv.priority,
                    weight: srv.weight,
                    port: srv.port,
                    target: srv.target.to_ascii().trim_end_matches('.').to_string(),
                    ttl,
                }),
                _ => None,
            })
            .collect())
    }

    async fn ipv4(&self, host: &str) -> Result<Vec<Ipv4Addr>, LookupError> {
        let found = self.query(host, RecordType::A, "A").await?;
        Ok(found
            .into_iter()
            .filter_map(|(_, data)| match data {
                RData::A(a) => Some(a.0),
                _ => None,
            })
            .collect())
    }

    fn describe(&self) -> String {
        self.servers
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(priority: u16, weight: u16, target: &str) -> SrvRecord {
        SrvRecord {
            priority,
            weight,
            port: 5269,
            target: target.into(),
            ttl: 300,
        }
    }

    #[test]
    fn lowest_priority_number_first_then_heaviest() {
        let mut r = vec![
            rec(20, 0, "edgepool2-xmpp.contoso.com"),
            rec(10, 5, "b.contoso.com"),
            rec(10, 50, "a2.contoso.com"),
            rec(10, 50, "a1.contoso.com"),
        ];
        order(&mut r);
        let names: Vec<&str> = r.iter().map(|r| r.target.as_str()).collect();
        assert_eq!(
            names,
            [
                "a1.contoso.com",
                "a2.contoso.com",
                "b.contoso.com",
                "edgepool2-xmpp.contoso.com"
            ]
        );
    }
}
