//! Reading what one authoritative server holds: the SOA serial, the XMPP A
//! rrset and the `_xmpp-server._tcp` SRV rrset, asked directly over TCP with
//! recursion off, so no cache stands between edgefail and the zone.

use std::cmp::Ordering;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};

use super::client::Connection;
use super::error::{Action, DnsError};
use super::{ZoneNames, show};

/// The records of one name and type, sorted, with their TTL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rrset<T> {
    pub records: Vec<T>,
    /// The largest TTL among the records; `None` when there are none.
    pub ttl: Option<u32>,
}

impl<T: Ord> Rrset<T> {
    pub fn new(mut records: Vec<T>, ttl: Option<u32>) -> Rrset<T> {
        records.sort();
        records.dedup();
        let ttl = if records.is_empty() { None } else { ttl };
        Rrset { records, ttl }
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Same records, TTL aside.
    pub fn same_records(&self, other: &Rrset<T>) -> bool {
        self.records == other.records
    }
}

impl<T: fmt::Display> fmt::Display for Rrset<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.records.is_empty() {
            return f.write_str("no record");
        }
        let list: Vec<String> = self.records.iter().map(|r| r.to_string()).collect();
        write!(f, "{}", list.join(", "))?;
        if let Some(ttl) = self.ttl {
            write!(f, " (TTL {ttl})")?;
        }
        Ok(())
    }
}

/// One SRV record. Targets compare without regard to case.
#[derive(Debug, Clone)]
pub struct SrvRecord {
    pub priority: u16,
    pub weight: u16,
    pub port: u16,
    /// As the server spelled it, absolute.
    pub target: Name,
}

impl SrvRecord {
    fn key(&self) -> (u16, u16, u16, String) {
        (self.priority, self.weight, self.port, show(&self.target))
    }

    /// Is this record's target `host` (case and trailing dot aside)?
    pub fn targets(&self, host: &Name) -> bool {
        show(&self.target) == show(host)
    }
}

impl PartialEq for SrvRecord {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}
impl Eq for SrvRecord {}
impl PartialOrd for SrvRecord {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for SrvRecord {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key().cmp(&other.key())
    }
}

impl fmt::Display for SrvRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} {}",
            self.priority,
            self.weight,
            self.port,
            show(&self.target)
        )
    }
}

/// What one server holds, read in one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub serial: u32,
    pub a: Rrset<Ipv4Addr>,
    /// A CNAME at the A record's name (the A rrset is then empty).
    pub a_cname: Option<String>,
    pub srv: Rrset<SrvRecord>,
}

/// An authoritative server to read from.
#[derive(Debug, Clone, Copy)]
pub struct Authority {
    pub addr: SocketAddr,
    pub timeout: Duration,
}

impl Authority {
    pub fn new(addr: SocketAddr, timeout: Duration) -> Authority {
        Authority { addr, timeout }
    }

    /// Read the SOA serial, the A rrset and the SRV rrset.
    pub async fn read(&self, names: &ZoneNames) -> Result<Snapshot, DnsError> {
        let mut conn = Connection::open(self.addr, self.timeout).await?;
        let soa = query(&mut conn, &names.zone, RecordType::SOA).await?;
        let serial = soa
            .answers
            .iter()
            .find_map(|r| match &r.data {
                RData::SOA(soa) if same(&r.name, &names.zone) => Some(soa.serial),
                _ => None,
            })
            .ok_or_else(|| DnsError::Malformed {
                server: self.addr,
                action: Action::Query {
                    name: show(&names.zone),
                    rtype: "SOA".into(),
                },
                problem: format!(
                    "no SOA record for {} in the answer: the server does not hold the zone at that name; check dns.zone",
                    show(&names.zone)
                ),
            })?;
        let a = self.read_a_in(&mut conn, &names.a).await?;
        let srv = read_srv_in(&mut conn, &names.srv).await?;
        Ok(Snapshot {
            serial,
            a: a.0,
            a_cname: a.1,
            srv,
        })
    }

    /// Only the A rrset (to say what it changed to after a failed
    /// compare-and-swap).
    pub async fn read_a(&self, name: &Name) -> Result<Rrset<Ipv4Addr>, DnsError> {
        let mut conn = Connection::open(self.addr, self.timeout).await?;
        Ok(self.read_a_in(&mut conn, name).await?.0)
    }

    /// Only the SRV rrset.
    pub async fn read_srv(&self, name: &Name) -> Result<Rrset<SrvRecord>, DnsError> {
        let mut conn = Connection::open(self.addr, self.timeout).await?;
        read_srv_in(&mut conn, name).await
    }

    /// The TXT strings at `name` (each record's strings joined).
    pub async fn read_txt(&self, name: &Name) -> Result<Vec<String>, DnsError> {
        let mut conn = Connection::open(self.addr, self.timeout).await?;
        let answer = query(&mut conn, name, RecordType::TXT).await?;
        Ok(answer
            .answers
            .iter()
            .filter(|r| same(&r.name, name))
            .filter_map(|r| match &r.data {
                RData::TXT(txt) => Some(
                    txt.txt_data
                        .iter()
                        .map(|b| String::from_utf8_lossy(b).into_owned())
                        .collect::<String>(),
                ),
                _ => None,
            })
            .collect())
    }

    async fn read_a_in(
        &self,
        conn: &mut Connection,
        name: &Name,
    ) -> Result<(Rrset<Ipv4Addr>, Option<String>), DnsError> {
        let answer = query(conn, name, RecordType::A).await?;
        let mut ttl = None;
        let mut addrs = Vec::new();
        let mut cname = None;
        for r in answer.answers.iter().filter(|r| same(&r.name, name)) {
            match &r.data {
                RData::A(a) => {
                    addrs.push(a.0);
                    ttl = ttl.max(Some(r.ttl));
                }
                RData::CNAME(c) => cname = Some(show(&c.0)),
                _ => {}
            }
        }
        Ok((Rrset::new(addrs, ttl), cname))
    }
}

async fn read_srv_in(conn: &mut Connection, name: &Name) -> Result<Rrset<SrvRecord>, DnsError> {
    let answer = query(conn, name, RecordType::SRV).await?;
    let mut ttl = None;
    let mut records = Vec::new();
    for r in answer.answers.iter().filter(|r| same(&r.name, name)) {
        if let RData::SRV(srv) = &r.data {
            let mut target = srv.target.clone();
            target.set_fqdn(true);
            records.push(SrvRecord {
                priority: srv.priority,
                weight: srv.weight,
                port: srv.port,
                target,
            });
            ttl = ttl.max(Some(r.ttl));
        }
    }
    Ok(Rrset::new(records, ttl))
}

fn same(a: &Name, b: &Name) -> bool {
    show(a) == show(b)
}

/// One plain query, recursion not desired; the answer must be
/// authoritative, and a missing name or type is an empty answer.
async fn query(conn: &mut Connection, name: &Name, rtype: RecordType) -> Result<Message, DnsError> {
    let server = conn.server();
    let action = Action::Query {
        name: show(name),
        rtype: rtype.to_string(),
    };
    let mut request = Message::query();
    request.metadata.recursion_desired = false;
    request.add_query(Query::query(name.clone(), rtype));
    let id = request.metadata.id;
    let bytes = request.to_vec().map_err(|e| DnsError::Malformed {
        server,
        action: action.clone(),
        problem: format!("cannot encode the query: {e}"),
    })?;
    tracing::debug!(%server, "asking {} {rtype}", show(name));
    let raw = conn.exchange(&bytes, id, &action).await?;
    let answer = Message::from_vec(&raw).map_err(|e| DnsError::Malformed {
        server,
        action: action.clone(),
        problem: e.to_string(),
    })?;
    if answer.metadata.message_type != MessageType::Response
        || answer.metadata.op_code != OpCode::Query
    {
        return Err(DnsError::Malformed {
            server,
            action,
            problem: "the answer is not a query response".into(),
        });
    }
    match answer.metadata.response_code {
        ResponseCode::NoError | ResponseCode::NXDomain => {}
        rcode => {
            return Err(DnsError::Answer {
                server,
                action,
                rcode,
            });
        }
    }
    // A truncated answer says nothing about which records exist: never
    // read it as "no record". Over TCP a server has no reason to truncate,
    // so there is no smaller transport to fall back from.
    if answer.metadata.truncation {
        return Err(DnsError::Malformed {
            server,
            action,
            problem: "the answer is truncated (TC bit set) even over TCP, so it cannot tell which records exist; check the server".into(),
        });
    }
    if !answer.metadata.authoritative {
        return Err(DnsError::NotAuthoritative { server, action });
    }
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A TCP server on loopback that answers every query authoritatively
    /// with no records and the TC bit set.
    async fn truncating_server() -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    loop {
                        let mut len = [0u8; 2];
                        if s.read_exact(&mut len).await.is_err() {
                            return;
                        }
                        let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
                        if s.read_exact(&mut buf).await.is_err() {
                            return;
                        }
                        let Ok(q) = Message::from_vec(&buf) else {
                            return;
                        };
                        let mut m = Message::response(q.metadata.id, q.metadata.op_code);
                        m.metadata.authoritative = true;
                        m.metadata.truncation = true;
                        m.add_queries(q.queries.clone());
                        let Ok(bytes) = m.to_vec() else { return };
                        let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
                        framed.extend_from_slice(&bytes);
                        if s.write_all(&framed).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        addr
    }

    #[tokio::test]
    async fn a_truncated_answer_is_an_error_not_an_empty_rrset() {
        let addr = truncating_server().await;
        let auth = Authority::new(addr, Duration::from_secs(3));
        let name = super::super::fqdn("_xmpp-server._tcp.contoso.com").expect("name");
        let e = auth.read_srv(&name).await.expect_err("truncated");
        assert!(e.to_string().contains("truncated (TC bit set)"), "{e}");
    }
}
