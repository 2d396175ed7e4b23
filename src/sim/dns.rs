//! The rehearsal's external DNS: an authoritative server for the zone on a
//! free loopback port (UDP and TCP), taking TSIG-signed RFC 2136 updates and
//! answering failures as BIND does, and a secondary that follows it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::tsig::TsigError;
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType, TSigResponseContext, TSigner};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

/// One zone's records, with the SOA at the apex.
#[derive(Debug, Clone)]
pub struct Zone {
    pub origin: Name,
    pub records: Vec<Record>,
}

fn same(a: &Name, b: &Name) -> bool {
    a.to_lowercase() == b.to_lowercase()
}

fn same_data(a: &Record, b: &Record) -> bool {
    a.record_type() == b.record_type() && a.data == b.data
}

impl Zone {
    pub fn new(origin: Name, records: Vec<Record>) -> Zone {
        Zone { origin, records }
    }

    pub fn serial(&self) -> u32 {
        self.records
            .iter()
            .find_map(|r| match &r.data {
                RData::SOA(soa) => Some(soa.serial),
                _ => None,
            })
            .unwrap_or_default()
    }

    fn bump_serial(&mut self) {
        for r in &mut self.records {
            if let RData::SOA(soa) = &mut r.data {
                soa.serial = soa.serial.wrapping_add(1);
            }
        }
    }

    fn contains(&self, name: &Name) -> bool {
        self.origin.zone_of(name)
    }

    fn rrset(&self, name: &Name, rtype: RecordType) -> Vec<&Record> {
        self.records
            .iter()
            .filter(|r| {
                same(&r.name, name) && (rtype == RecordType::ANY || r.record_type() == rtype)
            })
            .collect()
    }

    fn soa(&self) -> Option<&Record> {
        self.records
            .iter()
            .find(|r| r.record_type() == RecordType::SOA)
    }

    /// Replace `name`'s `rtype` records with exactly these addresses (a
    /// drill's "someone else changed it").
    pub fn replace(&mut self, name: &Name, rtype: RecordType, data: Vec<RData>, ttl: u32) {
        self.records
            .retain(|r| !(same(&r.name, name) && r.record_type() == rtype));
        for d in data {
            self.records.push(Record::from_rdata(name.clone(), ttl, d));
        }
        self.bump_serial();
    }

    /// RFC 2136 3.2: the prerequisites, all of them, or the first failure.
    fn prerequisites(&self, prereqs: &[Record]) -> ResponseCode {
        let mut exact: Vec<&Record> = Vec::new();
        for p in prereqs {
            if !self.contains(&p.name) {
                return ResponseCode::NotZone;
            }
            let rtype = p.record_type();
            let present = !self.rrset(&p.name, rtype).is_empty();
            match p.dns_class {
                DNSClass::ANY if rtype == RecordType::ANY && !present => {
                    return ResponseCode::NXDomain;
                }
                DNSClass::ANY if !present => return ResponseCode::NXRRSet,
                DNSClass::NONE if rtype == RecordType::ANY && present => {
                    return ResponseCode::YXDomain;
                }
                DNSClass::NONE if present => return ResponseCode::YXRRSet,
                DNSClass::IN => exact.push(p),
                DNSClass::ANY | DNSClass::NONE => {}
                _ => return ResponseCode::FormErr,
            }
        }
        // Value-dependent prerequisites: each named rrset must be exactly
        // the records listed for it.
        for p in &exact {
            let wanted: Vec<&&Record> = exact
                .iter()
                .filter(|q| same(&q.name, &p.name) && q.record_type() == p.record_type())
                .collect();
            let have = self.rrset(&p.name, p.record_type());
            let all_listed = have.iter().all(|h| wanted.iter().any(|w| same_data(h, w)));
            let all_there = wanted.iter().all(|w| have.iter().any(|h| same_data(h, w)));
            if !all_listed || !all_there {
                return ResponseCode::NXRRSet;
            }
        }
        ResponseCode::NoError
    }

    /// RFC 2136 3.4: apply every update, or (on a malformed one) none.
    fn apply(&mut self, updates: &[Record]) -> ResponseCode {
        let mut next = self.clone();
        let mut changed = false;
        for u in updates {
            if !self.contains(&u.name) {
                return ResponseCode::NotZone;
            }
            let rtype = u.record_type();
            let apex_guard = |r: &Record| {
                same(&r.name, &next.origin)
                    && matches!(r.record_type(), RecordType::SOA | RecordType::NS)
            };
            match u.dns_class {
                DNSClass::IN => {
                    if matches!(rtype, RecordType::SOA | RecordType::ANY) {
                        return ResponseCode::Refused;
                    }
                    for r in next.records.iter_mut() {
                        if same(&r.name, &u.name) && r.record_type() == rtype && r.ttl != u.ttl {
                            r.ttl = u.ttl;
                            changed = true;
                        }
                    }
                    if !next.rrset(&u.name, rtype).iter().any(|r| same_data(r, u)) {
                        let mut add = u.clone();
                        add.dns_class = DNSClass::IN;
                        next.records.push(add);
                        changed = true;
                    }
                }
                DNSClass::ANY => {
                    let before = next.records.len();
                    next.records.retain(|r| {
                        !(same(&r.name, &u.name)
                            && (rtype == RecordType::ANY || r.record_type() == rtype)
                            && !apex_guard(r))
                    });
                    changed |= next.records.len() != before;
                }
                DNSClass::NONE => {
                    let before = next.records.len();
                    next.records
                        .retain(|r| !(same(&r.name, &u.name) && same_data(r, u) && !apex_guard(r)));
                    changed |= next.records.len() != before;
                }
                _ => return ResponseCode::FormErr,
            }
        }
        if changed {
            next.bump_serial();
            *self = next;
        }
        ResponseCode::NoError
    }
}

/// Which key the primary believes in, and the drills it plays.
#[derive(Clone)]
pub struct Keys {
    /// The key updates must be signed with.
    pub signer: TSigner,
}

/// What the primary does to the next update, for a drill.
#[derive(Debug, Clone, Default)]
pub struct DnsFaults {
    /// Before applying the next update, change these records as another
    /// administrator would (name, A records), so its prerequisite fails.
    pub concurrent_change: Option<(Name, Vec<RData>)>,
}

/// One authoritative server: a zone, and for the primary its key.
#[derive(Clone)]
pub struct Server {
    pub zone: Arc<Mutex<Zone>>,
    pub keys: Option<Arc<Mutex<Keys>>>,
    pub faults: Arc<Mutex<DnsFaults>>,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Server {
    /// Answer one request's bytes; `None` when there is nothing to answer
    /// (not a DNS request at all).
    pub fn answer(&self, raw: &[u8]) -> Option<Vec<u8>> {
        let request = match Message::from_vec(raw) {
            Ok(m) => m,
            Err(_) if raw.len() >= 2 => {
                let id = u16::from_be_bytes([raw[0], raw[1]]);
                return Message::error_msg(id, OpCode::Query, ResponseCode::FormErr)
                    .to_vec()
                    .ok();
            }
            Err(_) => return None,
        };
        if request.metadata.message_type != MessageType::Query {
            return None;
        }
        match request.metadata.op_code {
            OpCode::Query => self.query(&request).to_vec().ok(),
            OpCode::Update => self.update(&request, raw),
            other => Message::error_msg(request.metadata.id, other, ResponseCode::NotImp)
                .to_vec()
                .ok(),
        }
    }

    fn query(&self, request: &Message) -> Message {
        let mut response = Message::response(request.metadata.id, OpCode::Query);
        response.metadata.recursion_desired = request.metadata.recursion_desired;
        let [question] = request.queries.as_slice() else {
            response.metadata.response_code = ResponseCode::FormErr;
            return response;
        };
        response.add_query(question.clone());
        let zone = lock(&self.zone);
        let name = question.name();
        if !zone.contains(name) {
            response.metadata.response_code = ResponseCode::Refused;
            return response;
        }
        response.metadata.authoritative = true;
        let answers: Vec<Record> = zone
            .rrset(name, question.query_type())
            .into_iter()
            .cloned()
            .collect();
        if answers.is_empty() {
            if zone.rrset(name, RecordType::ANY).is_empty() {
                response.metadata.response_code = ResponseCode::NXDomain;
            }
            if let Some(soa) = zone.soa() {
                response.add_authority(soa.clone());
            }
        }
        response.add_answers(answers);
        response
    }

    fn update(&self, request: &Message, raw: &[u8]) -> Option<Vec<u8>> {
        let id = request.metadata.id;
        let reply = |code: ResponseCode| {
            let mut m = Message::response(id, OpCode::Update);
            m.add_queries(request.queries.clone());
            m.metadata.response_code = code;
            m
        };
        let Some(keys) = &self.keys else {
            // A secondary takes no updates (BIND would forward or refuse).
            return reply(ResponseCode::Refused).to_vec().ok();
        };
        let Some(signature) = request.signature() else {
            return reply(ResponseCode::Refused).to_vec().ok();
        };
        let signer = lock(keys).signer.clone();
        let unsigned = |code: ResponseCode, ctx: TSigResponseContext| {
            let mut m = reply(code);
            let bytes = m.to_vec().ok()?;
            m.set_signature(ctx.sign(&bytes).ok()?);
            m.to_vec().ok()
        };
        if !same(&signature.name, signer.signer_name()) {
            let ctx = TSigResponseContext::unknown_key(id, now(), signature.name.clone());
            return unsigned(ResponseCode::NotAuth, ctx);
        }
        // hickory subtracts the fudge from the time unchecked once the MAC
        // verifies: refuse such a request before it gets there.
        if signature.data.time < u64::from(signature.data.fudge) {
            let ctx = TSigResponseContext::bad_signature(id, now(), signer);
            return unsigned(ResponseCode::NotAuth, ctx);
        }
        let (mac, _, range) = match signer.verify_message_byte(raw, None, true) {
            Ok(v) => v,
            Err(_) => {
                let ctx = TSigResponseContext::bad_signature(id, now(), signer);
                return unsigned(ResponseCode::NotAuth, ctx);
            }
        };
        let sign = |code: ResponseCode, error: Option<TsigError>| {
            let mut m = reply(code);
            let bytes = m.to_vec().ok()?;
            let ctx = TSigResponseContext::new(id, now(), signer.clone(), mac.clone(), error);
            m.set_signature(ctx.sign(&bytes).ok()?);
            m.to_vec().ok()
        };
        if !range.contains(&now()) {
            return sign(ResponseCode::NotAuth, Some(TsigError::BadTime));
        }
        let [zone_q] = request.queries.as_slice() else {
            return sign(ResponseCode::FormErr, None);
        };
        let mut zone = lock(&self.zone);
        if !same(zone_q.name(), &zone.origin) {
            return sign(ResponseCode::NotAuth, None);
        }
        // The other writer strikes before the first update that adds
        // something (a failover's own), not before the key's no-op proof.
        let adds = request
            .authorities
            .iter()
            .any(|r| r.dns_class == DNSClass::IN);
        if adds && let Some((name, data)) = lock(&self.faults).concurrent_change.take() {
            zone.replace(&name, RecordType::A, data, 300);
        }
        let code = match zone.prerequisites(&request.answers) {
            ResponseCode::NoError => zone.apply(&request.authorities),
            failed => failed,
        };
        drop(zone);
        sign(code, None)
    }
}

/// Bind UDP and TCP on the same free port of `ip`.
async fn bind_pair(ip: std::net::IpAddr) -> std::io::Result<(UdpSocket, TcpListener)> {
    let mut last = None;
    for _ in 0..20 {
        let tcp = TcpListener::bind(SocketAddr::new(ip, 0)).await?;
        let addr = tcp.local_addr()?;
        match UdpSocket::bind(addr).await {
            Ok(udp) => return Ok((udp, tcp)),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no free port")))
}

/// Serve `server` on a free port of 127.0.0.1 until the process ends.
pub async fn serve(server: Server) -> std::io::Result<SocketAddr> {
    let (udp, tcp) = bind_pair(std::net::Ipv4Addr::LOCALHOST.into()).await?;
    let addr = tcp.local_addr()?;
    let udp_server = server.clone();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        loop {
            let Ok((n, peer)) = udp.recv_from(&mut buf).await else {
                continue;
            };
            if let Some(answer) = udp_server.answer(&buf[..n]) {
                let _ = udp.send_to(&answer, peer).await;
            }
        }
    });
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = tcp.accept().await else {
                continue;
            };
            let server = server.clone();
            tokio::spawn(async move {
                let _ = serve_tcp(stream, &server).await;
            });
        }
    });
    Ok(addr)
}

async fn serve_tcp(mut stream: TcpStream, server: &Server) -> std::io::Result<()> {
    loop {
        let mut prefix = [0u8; 2];
        stream.read_exact(&mut prefix).await?;
        let mut request = vec![0u8; usize::from(u16::from_be_bytes(prefix))];
        stream.read_exact(&mut request).await?;
        let Some(answer) = server.answer(&request) else {
            return Ok(());
        };
        let Ok(len) = u16::try_from(answer.len()) else {
            return Ok(());
        };
        let mut framed = len.to_be_bytes().to_vec();
        framed.extend_from_slice(&answer);
        stream.write_all(&framed).await?;
    }
}

/// Keep `secondary` a copy of the primary at `primary`: read the primary's
/// SOA serial over DNS every `every`, and copy the zone when it is newer,
/// as a zone transfer after NOTIFY would.
pub fn follow(
    primary: SocketAddr,
    primary_zone: Arc<Mutex<Zone>>,
    secondary: Arc<Mutex<Zone>>,
    every: Duration,
) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            let origin = lock(&secondary).origin.clone();
            let Some(serial) = soa_serial(primary, &origin).await else {
                continue;
            };
            let mine = lock(&secondary).serial();
            if serial != mine && crate::dns::serial_at_least(serial, mine) {
                let copy = lock(&primary_zone).clone();
                *lock(&secondary) = copy;
            }
        }
    });
}

/// The zone's SOA serial, asked over UDP.
async fn soa_serial(server: SocketAddr, zone: &Name) -> Option<u32> {
    let socket = UdpSocket::bind("127.0.0.1:0").await.ok()?;
    let mut q = Message::query();
    q.metadata.id = 0x5eca;
    q.add_query(hickory_proto::op::Query::query(
        zone.clone(),
        RecordType::SOA,
    ));
    socket.send_to(&q.to_vec().ok()?, server).await.ok()?;
    let mut buf = vec![0u8; 4096];
    let (n, _) = tokio::time::timeout(Duration::from_secs(1), socket.recv_from(&mut buf))
        .await
        .ok()?
        .ok()?;
    let answer = Message::from_vec(&buf[..n]).ok()?;
    answer.answers.iter().find_map(|r| match &r.data {
        RData::SOA(soa) => Some(soa.serial),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use hickory_proto::rr::rdata::tsig::TsigAlgorithm;
    use hickory_proto::rr::rdata::{A, SOA};

    use super::*;
    use crate::dns::{Authority, Data, DnsError, Primary, Signer, Update, ZoneNames, fqdn};
    use crate::secret::{Secret, TsigKey};

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn zone() -> Zone {
        let origin = fqdn("example.test").unwrap();
        let ns = fqdn("ns1.example.test").unwrap();
        Zone::new(
            origin.clone(),
            vec![
                Record::from_rdata(
                    origin,
                    3600,
                    RData::SOA(SOA::new(ns.clone(), ns, 7, 1, 1, 1, 1)),
                ),
                Record::from_rdata(
                    fqdn("xmpp.example.test").unwrap(),
                    300,
                    RData::A(A(Ipv4Addr::new(127, 0, 0, 10))),
                ),
            ],
        )
    }

    fn signer(name: &str, secret: &[u8]) -> Signer {
        Signer::new(&TsigKey {
            name: name.into(),
            algorithm: "hmac-sha256".into(),
            secret: Secret::new(secret.to_vec()),
        })
        .unwrap()
    }

    fn move_a(from: u8, to: u8) -> Update {
        let zone = fqdn("example.test").unwrap();
        let a = fqdn("xmpp.example.test").unwrap();
        let mut u = Update::new(&zone);
        u.require_a(&a, &[Ipv4Addr::new(127, 0, 0, from)])
            .delete_rrset(&a, RecordType::A)
            .add(&a, 300, Data::A(Ipv4Addr::new(127, 0, 0, to)));
        u
    }

    #[tokio::test]
    async fn updates_are_checked_signed_applied_and_followed() {
        let key = TSigner::new(
            SECRET.to_vec(),
            TsigAlgorithm::HmacSha256,
            fqdn("k").unwrap(),
            300,
        )
        .unwrap();
        let primary_zone = Arc::new(Mutex::new(zone()));
        let primary = serve(Server {
            zone: primary_zone.clone(),
            keys: Some(Arc::new(Mutex::new(Keys { signer: key }))),
            faults: Arc::default(),
        })
        .await
        .unwrap();
        let secondary_zone = Arc::new(Mutex::new(zone()));
        let secondary = serve(Server {
            zone: secondary_zone.clone(),
            keys: None,
            faults: Arc::default(),
        })
        .await
        .unwrap();
        follow(
            primary,
            primary_zone,
            secondary_zone,
            Duration::from_millis(20),
        );
        let t = Duration::from_secs(2);
        let names = ZoneNames {
            zone: fqdn("example.test").unwrap(),
            a: fqdn("xmpp.example.test").unwrap(),
            srv: fqdn("_xmpp-server._tcp.example.test").unwrap(),
        };

        Primary::new(primary, t, signer("k", SECRET))
            .update(&move_a(10, 20))
            .await
            .unwrap();
        let read = Authority::new(primary, t).read(&names).await.unwrap();
        assert_eq!(read.serial, 8);
        assert_eq!(read.a.records, vec![Ipv4Addr::new(127, 0, 0, 20)]);

        // The same compare-and-swap again: the records are no longer 10.
        let stale = Primary::new(primary, t, signer("k", SECRET))
            .update(&move_a(10, 30))
            .await;
        assert!(
            matches!(stale, Err(DnsError::Prerequisite { .. })),
            "{stale:?}"
        );

        let bad_sig = Primary::new(primary, t, signer("k", b"another secret, same key name"))
            .update(&move_a(20, 30))
            .await;
        assert!(
            matches!(
                &bad_sig,
                Err(DnsError::Tsig {
                    error: TsigError::BadSig,
                    ..
                })
            ),
            "{bad_sig:?}"
        );
        let bad_key = Primary::new(primary, t, signer("other", SECRET))
            .update(&move_a(20, 30))
            .await;
        assert!(
            matches!(
                &bad_key,
                Err(DnsError::Tsig {
                    error: TsigError::BadKey,
                    ..
                })
            ),
            "{bad_key:?}"
        );

        // The secondary catches up with the primary's serial.
        let mut caught_up = false;
        for _ in 0..100 {
            let s = Authority::new(secondary, t).read(&names).await.unwrap();
            if s.serial == 8 && s.a.records == vec![Ipv4Addr::new(127, 0, 0, 20)] {
                caught_up = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(caught_up, "the secondary never followed the primary");
        let refused = Primary::new(secondary, t, signer("k", SECRET))
            .update(&move_a(20, 30))
            .await;
        assert!(refused.is_err(), "a secondary took an update");
    }

    #[test]
    fn garbage_gets_no_answer_or_formerr() {
        let server = Server {
            zone: Arc::new(Mutex::new(zone())),
            keys: None,
            faults: Arc::default(),
        };
        assert!(server.answer(&[1]).is_none());
        let answer = server.answer(&[0xab, 0xcd, 0xff, 0xff, 0xff]).unwrap();
        let m = Message::from_vec(&answer).unwrap();
        assert_eq!(m.metadata.id, 0xabcd);
        assert_eq!(m.metadata.response_code, ResponseCode::FormErr);
    }
}
