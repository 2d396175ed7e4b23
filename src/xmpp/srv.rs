//! Where a partner's server goes for a domain: the `_xmpp-server._tcp` SRV
//! records in RFC 2782 order and the preferred target's address, looked up
//! by asking given DNS servers directly (never the system resolver). The
//! lookup sits behind [`Lookup`] so another DNS client can stand in.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use async_trait::async_trait;
use hickory_resolver::TokioResolver;
use hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
    ServerOrderingStrategy,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{Name, RData, RecordType};
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

/// Longer waits are cut to this (the resolver adds the timeout to the clock).
const MAX_TIMEOUT: Duration = Duration::from_secs(3600);

/// Asks each given server in turn, as a resolver would (recursion desired,
/// UDP, the same question again over TCP when the UDP answer comes back
/// truncated), and takes the first answer: a server that answers (even
/// NXDOMAIN or REFUSED) ends the search, as only a silent one would make a
/// resolver move on. Never the system's resolver, resolv.conf or hosts
/// file, and no cache: every lookup asks anew (a verify step polls).
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

    /// A resolver that asks `server` only. Made per question: nothing is
    /// remembered between lookups.
    fn resolver(&self, server: SocketAddr) -> Result<TokioResolver, NetError> {
        let mut udp = ConnectionConfig::udp();
        udp.port = server.port();
        let mut tcp = ConnectionConfig::tcp();
        tcp.port = server.port();
        let name_server = NameServerConfig::new(server.ip(), true, vec![udp, tcp]);
        let config = ResolverConfig::from_name_servers(vec![name_server]);
        let mut options = ResolverOpts::default();
        options.timeout = self.timeout.min(MAX_TIMEOUT);
        // One try per server; a silent server is reported, not retried.
        options.attempts = 0;
        options.cache_size = 0;
        options.use_hosts_file = ResolveHosts::Never;
        options.recursion_desired = true;
        options.num_concurrent_reqs = 1;
        options.server_ordering_strategy = ServerOrderingStrategy::UserProvidedOrder;
        TokioResolver::builder_with_config(config, TokioRuntimeProvider::default())
            .with_options(options)
            .build()
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
            let resolver = match self.resolver(*server) {
                Ok(r) => r,
                Err(e) => {
                    reasons.push(format!("{server}: {e}"));
                    continue;
                }
            };
            // The resolver keeps to its timeout per exchange; a truncated UDP
            // answer and the TCP retry make two. This bounds the whole.
            let asked = tokio::time::timeout(
                self.timeout
                    .min(MAX_TIMEOUT)
                    .saturating_mul(2)
                    .saturating_add(Duration::from_millis(100)),
                resolver.lookup(qname.clone(), rtype),
            )
            .await;
            let silent = || format!("{server}: no answer in {} ms", self.timeout.as_millis());
            let error = match asked {
                Err(_) => {
                    reasons.push(silent());
                    continue;
                }
                Ok(Ok(lookup)) => {
                    let found: Vec<(u32, RData)> = lookup
                        .answers()
                        .iter()
                        .filter(|r| r.record_type() == rtype)
                        .map(|r| (r.ttl, r.data.clone()))
                        .collect();
                    if found.is_empty() {
                        // Only something else (a CNAME to nowhere) came back.
                        return Err(LookupError::NoRecords {
                            name: name.to_string(),
                            rtype: label,
                            server: server.to_string(),
                        });
                    }
                    return Ok(found);
                }
                Ok(Err(e)) => e,
            };
            let answered = |code: ResponseCode| match code {
                ResponseCode::NXDomain => LookupError::NoSuchName {
                    name: name.to_string(),
                    rtype: label,
                    server: server.to_string(),
                },
                ResponseCode::NoError => LookupError::NoRecords {
                    name: name.to_string(),
                    rtype: label,
                    server: server.to_string(),
                },
                code => LookupError::Refused {
                    name: name.to_string(),
                    rtype: label,
                    server: server.to_string(),
                    code: code.to_string(),
                },
            };
            match error {
                NetError::Dns(DnsError::NoRecordsFound(none)) => {
                    return Err(answered(none.response_code));
                }
                NetError::Dns(DnsError::ResponseCode(code)) => return Err(answered(code)),
                NetError::Timeout => reasons.push(silent()),
                other => reasons.push(format!("{server}: {other}")),
            }
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

    // --- a tiny DNS server on 127.0.0.1, UDP and TCP on one port ---------

    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use hickory_resolver::proto::op::Message;
    use hickory_resolver::proto::rr::Record;
    use hickory_resolver::proto::rr::rdata::SRV;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, UdpSocket};

    /// How the fake server answers on one transport.
    #[derive(Debug, Clone, Copy)]
    enum Reply {
        /// The SRV set below.
        Full,
        /// TC set, no records: "ask again over TCP".
        Truncated,
        /// This response code, no records.
        Code(ResponseCode),
        /// Nothing at all.
        Silent,
    }

    const SRV_SET: [(u16, u16, &str); 3] = [
        (20, 0, "edgepool1-xmpp.contoso.com."),
        (10, 0, "edgepool2-xmpp.contoso.com."),
        (10, 50, "edgepool2b-xmpp.contoso.com."),
    ];

    fn respond(query: &Message, reply: Reply) -> Option<Message> {
        let mut m = Message::response(query.metadata.id, query.metadata.op_code);
        m.metadata.recursion_desired = query.metadata.recursion_desired;
        m.metadata.recursion_available = true;
        m.metadata.authoritative = true;
        m.add_queries(query.queries.clone());
        match reply {
            Reply::Silent => return None,
            Reply::Truncated => m.metadata.truncation = true,
            Reply::Code(code) => m.metadata.response_code = code,
            Reply::Full => {
                for q in &query.queries {
                    for (priority, weight, target) in SRV_SET {
                        let target = Name::from_ascii(target).expect("target");
                        m.add_answer(Record::from_rdata(
                            q.name().clone(),
                            300,
                            RData::SRV(SRV::new(priority, weight, 5269, target)),
                        ));
                    }
                }
            }
        }
        Some(m)
    }

    struct FakeDns {
        addr: SocketAddr,
        udp_queries: Arc<AtomicUsize>,
        tcp_queries: Arc<AtomicUsize>,
        tasks: Vec<tokio::task::JoinHandle<()>>,
    }

    impl Drop for FakeDns {
        fn drop(&mut self) {
            for task in &self.tasks {
                task.abort();
            }
        }
    }

    impl FakeDns {
        async fn start(udp: Reply, tcp: Reply) -> FakeDns {
            let (socket, listener) = bind_pair().await;
            let addr = socket.local_addr().expect("udp addr");
            let udp_queries = Arc::new(AtomicUsize::new(0));
            let tcp_queries = Arc::new(AtomicUsize::new(0));
            let counted = udp_queries.clone();
            let udp_task = tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                while let Ok((n, from)) = socket.recv_from(&mut buf).await {
                    counted.fetch_add(1, Ordering::SeqCst);
                    let Ok(query) = Message::from_vec(&buf[..n]) else {
                        continue;
                    };
                    if let Some(bytes) = respond(&query, udp).and_then(|m| m.to_vec().ok()) {
                        let _ = socket.send_to(&bytes, from).await;
                    }
                }
            });
            let counted = tcp_queries.clone();
            let tcp_task = tokio::spawn(async move {
                while let Ok((mut stream, _)) = listener.accept().await {
                    let counted = counted.clone();
                    tokio::spawn(async move {
                        loop {
                            let mut len = [0u8; 2];
                            if stream.read_exact(&mut len).await.is_err() {
                                return;
                            }
                            let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
                            if stream.read_exact(&mut buf).await.is_err() {
                                return;
                            }
                            counted.fetch_add(1, Ordering::SeqCst);
                            let Ok(query) = Message::from_vec(&buf) else {
                                return;
                            };
                            let Some(bytes) = respond(&query, tcp).and_then(|m| m.to_vec().ok())
                            else {
                                continue;
                            };
                            let len = u16::try_from(bytes.len()).expect("short answer");
                            let mut framed = len.to_be_bytes().to_vec();
                            framed.extend_from_slice(&bytes);
                            if stream.write_all(&framed).await.is_err() {
                                return;
                            }
                        }
                    });
                }
            });
            FakeDns {
                addr,
                udp_queries,
                tcp_queries,
                tasks: vec![udp_task, tcp_task],
            }
        }
    }

    /// A UDP socket and a TCP listener on the same free loopback port.
    async fn bind_pair() -> (UdpSocket, TcpListener) {
        for _ in 0..50 {
            let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind udp");
            let port = socket.local_addr().expect("udp addr").port();
            if let Ok(listener) = TcpListener::bind(("127.0.0.1", port)).await {
                return (socket, listener);
            }
        }
        panic!("no loopback port free for both UDP and TCP");
    }

    const OWNER: &str = "_xmpp-server._tcp.contoso.com";

    #[tokio::test]
    async fn a_truncated_udp_answer_is_asked_again_over_tcp() {
        let dns = FakeDns::start(Reply::Truncated, Reply::Full).await;
        let lookup = DirectLookup::new(vec![dns.addr], Duration::from_secs(3));
        let mut found = lookup.srv(OWNER).await.expect("the SRV set over TCP");
        order(&mut found);
        let got: Vec<(u16, u16, u16, &str)> = found
            .iter()
            .map(|r| (r.priority, r.weight, r.port, r.target.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (10, 50, 5269, "edgepool2b-xmpp.contoso.com"),
                (10, 0, 5269, "edgepool2-xmpp.contoso.com"),
                (20, 0, 5269, "edgepool1-xmpp.contoso.com"),
            ]
        );
        assert!(found.iter().all(|r| r.ttl == 300));
        assert!(
            dns.udp_queries.load(Ordering::SeqCst) >= 1,
            "asked over UDP first"
        );
        assert!(dns.tcp_queries.load(Ordering::SeqCst) >= 1, "then over TCP");
    }

    #[tokio::test]
    async fn answers_by_response_code_keep_their_messages() {
        let cases = [
            (
                ResponseCode::NXDomain,
                "no such name (NXDOMAIN from {server})",
                true,
            ),
            (
                ResponseCode::NoError,
                "the name exists but has no SRV record (asked {server})",
                true,
            ),
            // The code as hickory names it ("Query Refused", "Server Failure").
            (ResponseCode::Refused, "{server} answered {code}", false),
            (ResponseCode::ServFail, "{server} answered {code}", false),
        ];
        for (code, want, absent) in cases {
            let dns = FakeDns::start(Reply::Code(code), Reply::Code(code)).await;
            let lookup = DirectLookup::new(vec![dns.addr], Duration::from_secs(3));
            let e = lookup.srv(OWNER).await.expect_err("no records");
            let want = format!(
                "look up {OWNER} SRV: {}",
                want.replace("{server}", &dns.addr.to_string())
                    .replace("{code}", &code.to_string())
            );
            assert_eq!(e.to_string(), want, "{code:?}");
            assert_eq!(e.is_absent(), absent, "{code:?}");
        }
    }

    #[tokio::test]
    async fn a_silent_server_is_passed_over_and_named() {
        let silent = FakeDns::start(Reply::Silent, Reply::Silent).await;
        let answering = FakeDns::start(Reply::Full, Reply::Full).await;
        let timeout = Duration::from_millis(400);

        let lookup = DirectLookup::new(vec![silent.addr], timeout);
        let e = lookup.srv(OWNER).await.expect_err("nobody answers");
        assert_eq!(
            e.to_string(),
            format!(
                "look up {OWNER} SRV: no answer from {0} ({0}: no answer in 400 ms)",
                silent.addr
            )
        );
        assert!(!e.is_absent());

        let lookup = DirectLookup::new(vec![silent.addr, answering.addr], timeout);
        assert_eq!(lookup.srv(OWNER).await.expect("second server").len(), 3);
        assert_eq!(
            lookup.describe(),
            format!("{}, {}", silent.addr, answering.addr)
        );
    }

    #[tokio::test]
    async fn no_servers_no_answer() {
        let lookup = DirectLookup::new(Vec::new(), Duration::from_millis(100));
        let e = lookup.ipv4("edge.contoso.com").await.expect_err("none");
        assert_eq!(
            e.to_string(),
            "look up edge.contoso.com A: no answer from  (no DNS servers given)"
        );
        let e = lookup.ipv4("not a name..").await.expect_err("bad");
        assert!(matches!(e, LookupError::BadName { .. }), "{e}");
    }
}
