//! RFC 2136 UPDATE messages and the primary that takes them. An [`Update`]
//! is a compare-and-swap: prerequisites that pin the rrset to what was read,
//! then deletions and additions, applied by the server all or nothing.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode, UpdateMessage};
use hickory_proto::rr::rdata::{A, SRV, TXT};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

use super::client::Connection;
use super::error::{Action, DnsError};
use super::records::SrvRecord;
use super::show;
use super::tsig::Signer;

/// One record's data, as an update names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Data {
    A(Ipv4Addr),
    Srv(SrvRecord),
    /// One TXT record of one string (the run lease).
    Txt(String),
}

impl Data {
    fn rtype(&self) -> RecordType {
        match self {
            Data::A(_) => RecordType::A,
            Data::Srv(_) => RecordType::SRV,
            Data::Txt(_) => RecordType::TXT,
        }
    }

    fn rdata(&self) -> RData {
        match self {
            Data::A(ip) => RData::A(A(*ip)),
            Data::Srv(s) => RData::SRV(SRV::new(s.priority, s.weight, s.port, s.target.clone())),
            Data::Txt(t) => RData::TXT(TXT::new(vec![t.clone()])),
        }
    }

    fn text(&self) -> String {
        match self {
            Data::A(ip) => ip.to_string(),
            Data::Srv(s) => s.to_string(),
            Data::Txt(t) => format!("{t:?}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Prereq {
    /// The rrset is exactly these records (RFC 2136 2.4.2).
    Exactly(Name, RecordType, Vec<Data>),
    /// No record of that type at that name (RFC 2136 2.4.3).
    Absent(Name, RecordType),
    /// No record of any type at that name (RFC 2136 2.4.5).
    NameUnused(Name),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Change {
    DeleteRrset(Name, RecordType),
    Delete(Name, Data),
    Add(Name, u32, Data),
}

/// One atomic change to a zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    zone: Name,
    prereqs: Vec<Prereq>,
    changes: Vec<Change>,
}

impl Update {
    pub fn new(zone: &Name) -> Update {
        Update {
            zone: zone.clone(),
            prereqs: Vec::new(),
            changes: Vec::new(),
        }
    }

    /// Require `name`'s rrset of `data`'s type to be exactly `data`; an
    /// empty list requires that there is no such rrset.
    pub fn require_a(&mut self, name: &Name, now: &[Ipv4Addr]) -> &mut Self {
        let data = now.iter().copied().map(Data::A).collect();
        self.require(name, RecordType::A, data)
    }

    pub fn require_srv(&mut self, name: &Name, now: &[SrvRecord]) -> &mut Self {
        let data = now.iter().cloned().map(Data::Srv).collect();
        self.require(name, RecordType::SRV, data)
    }

    fn require(&mut self, name: &Name, rtype: RecordType, data: Vec<Data>) -> &mut Self {
        self.prereqs.push(if data.is_empty() {
            Prereq::Absent(name.clone(), rtype)
        } else {
            Prereq::Exactly(name.clone(), rtype, data)
        });
        self
    }

    /// Require the TXT rrset at `name` to be exactly `now`.
    pub fn require_txt(&mut self, name: &Name, now: &[String]) -> &mut Self {
        let data = now.iter().cloned().map(Data::Txt).collect();
        self.require(name, RecordType::TXT, data)
    }

    /// Require that `name` holds no record at all: of two updates racing
    /// to create it, exactly one passes.
    pub fn require_name_unused(&mut self, name: &Name) -> &mut Self {
        self.prereqs.push(Prereq::NameUnused(name.clone()));
        self
    }

    pub fn delete_rrset(&mut self, name: &Name, rtype: RecordType) -> &mut Self {
        self.changes.push(Change::DeleteRrset(name.clone(), rtype));
        self
    }

    pub fn delete(&mut self, name: &Name, data: Data) -> &mut Self {
        self.changes.push(Change::Delete(name.clone(), data));
        self
    }

    pub fn add(&mut self, name: &Name, ttl: u32, data: Data) -> &mut Self {
        self.changes.push(Change::Add(name.clone(), ttl, data));
        self
    }

    pub fn zone(&self) -> &Name {
        &self.zone
    }

    /// The same prerequisites with changes that change nothing: for each
    /// rrset a prerequisite pins, delete one record the prerequisite says
    /// is not there. The server checks the signature, the key's right to
    /// touch those names, and the prerequisites, and leaves the zone (and
    /// its serial) as it was.
    pub(super) fn no_op(&self) -> Update {
        let mut proof = Update::new(&self.zone);
        proof.prereqs = self.prereqs.clone();
        for p in &self.prereqs {
            let (name, rtype, present): (&Name, RecordType, &[Data]) = match p {
                Prereq::Exactly(name, rtype, data) => (name, *rtype, data),
                Prereq::Absent(name, rtype) => (name, *rtype, &[]),
                // Nothing at the name: the prerequisite alone is the proof.
                Prereq::NameUnused(_) => continue,
            };
            if let Some(absent) = absent_record(rtype, present) {
                proof.changes.push(Change::Delete(name.clone(), absent));
            }
        }
        proof
    }

    /// The same change as `nsupdate` input, for an operator to read or
    /// type (manual mode) and for logs. Holds no key material.
    pub fn to_nsupdate(&self, server: Option<SocketAddr>) -> String {
        let mut out = String::new();
        if let Some(s) = server {
            out.push_str(&format!("server {} {}\n", s.ip(), s.port()));
        }
        out.push_str(&format!("zone {}\n", show(&self.zone)));
        for p in &self.prereqs {
            match p {
                Prereq::Exactly(name, rtype, data) => {
                    for d in data {
                        out.push_str(&format!(
                            "prereq yxrrset {} IN {rtype} {}\n",
                            show(name),
                            d.text()
                        ));
                    }
                }
                Prereq::Absent(name, rtype) => {
                    out.push_str(&format!("prereq nxrrset {} IN {rtype}\n", show(name)));
                }
                Prereq::NameUnused(name) => {
                    out.push_str(&format!("prereq nxdomain {}\n", show(name)));
                }
            }
        }
        for c in &self.changes {
            match c {
                Change::DeleteRrset(name, rtype) => {
                    out.push_str(&format!("update delete {} IN {rtype}\n", show(name)))
                }
                Change::Delete(name, d) => out.push_str(&format!(
                    "update delete {} IN {} {}\n",
                    show(name),
                    d.rtype(),
                    d.text()
                )),
                Change::Add(name, ttl, d) => out.push_str(&format!(
                    "update add {} {ttl} IN {} {}\n",
                    show(name),
                    d.rtype(),
                    d.text()
                )),
            }
        }
        out.push_str("send\n");
        out
    }

    fn to_message(&self) -> Message {
        let mut message = Message::query();
        message.metadata.op_code = OpCode::Update;
        message.metadata.message_type = MessageType::Query;
        message.metadata.recursion_desired = false;
        let mut zone = Query::query(self.zone.clone(), RecordType::SOA);
        zone.set_query_class(DNSClass::IN);
        message.add_zone(zone);
        for p in &self.prereqs {
            match p {
                Prereq::Exactly(name, _, data) => {
                    for d in data {
                        // Class IN, TTL 0: "this exact rrset exists".
                        message.add_pre_requisite(Record::from_rdata(name.clone(), 0, d.rdata()));
                    }
                }
                Prereq::Absent(name, rtype) => {
                    let mut r = Record::update0(name.clone(), 0, *rtype);
                    r.dns_class = DNSClass::NONE;
                    message.add_pre_requisite(r);
                }
                Prereq::NameUnused(name) => {
                    let mut r = Record::update0(name.clone(), 0, RecordType::ANY);
                    r.dns_class = DNSClass::NONE;
                    message.add_pre_requisite(r);
                }
            }
        }
        for c in &self.changes {
            match c {
                Change::DeleteRrset(name, rtype) => {
                    let mut r = Record::update0(name.clone(), 0, *rtype);
                    r.dns_class = DNSClass::ANY;
                    message.add_update(r);
                }
                Change::Delete(name, d) => {
                    let mut r = Record::from_rdata(name.clone(), 0, d.rdata());
                    r.dns_class = DNSClass::NONE;
                    message.add_update(r);
                }
                Change::Add(name, ttl, d) => {
                    message.add_update(Record::from_rdata(name.clone(), *ttl, d.rdata()));
                }
            }
        }
        message
    }
}

/// A record of type `rtype` that is not among `present`: an address of
/// TEST-NET-1 (RFC 5737), or an SRV record for an `.invalid` target.
fn absent_record(rtype: RecordType, present: &[Data]) -> Option<Data> {
    let candidates: Vec<Data> = match rtype {
        RecordType::A => (0..=255u8)
            .map(|n| Data::A(Ipv4Addr::new(192, 0, 2, n)))
            .collect(),
        RecordType::SRV => (0..=255u16)
            .filter_map(|n| {
                let target = Name::from_ascii("edgefail-key-proof.invalid.").ok()?;
                Some(Data::Srv(SrvRecord {
                    priority: u16::MAX,
                    weight: u16::MAX - n,
                    port: 0,
                    target,
                }))
            })
            .collect(),
        _ => Vec::new(),
    };
    candidates.into_iter().find(|c| !present.contains(c))
}

/// The server that accepts updates for the zone.
#[derive(Debug, Clone)]
pub struct Primary {
    pub addr: SocketAddr,
    pub timeout: Duration,
    signer: Signer,
}

impl Primary {
    pub fn new(addr: SocketAddr, timeout: Duration, signer: Signer) -> Primary {
        Primary {
            addr,
            timeout,
            signer,
        }
    }

    /// Send `update`, signed, and wait for the verdict. A failed
    /// prerequisite is [`DnsError::Prerequisite`]: nothing was changed.
    pub async fn update(&self, update: &Update) -> Result<(), DnsError> {
        let server = self.addr;
        let action = Action::Update {
            zone: show(update.zone()),
            key: self.signer.key_name().to_string(),
        };
        let mut message = update.to_message();
        let id = message.metadata.id;
        let verifier = self.signer.sign(&mut message)?;
        let bytes = message.to_vec().map_err(|e| DnsError::Malformed {
            server,
            action: action.clone(),
            problem: format!("cannot encode the update: {e}"),
        })?;
        tracing::debug!(%server, "sending update:\n{}", update.to_nsupdate(None));
        let mut conn = Connection::open(server, self.timeout).await?;
        let raw = conn.exchange(&bytes, id, &action).await?;
        let answer = verifier.check(&raw, server, &action)?;
        if answer.metadata.op_code != OpCode::Update
            || answer.metadata.message_type != MessageType::Response
        {
            return Err(DnsError::Malformed {
                server,
                action,
                problem: "the answer is not an update response".into(),
            });
        }
        match answer.metadata.response_code {
            ResponseCode::NoError => Ok(()),
            rcode @ (ResponseCode::NXRRSet
            | ResponseCode::YXRRSet
            | ResponseCode::NXDomain
            | ResponseCode::YXDomain) => Err(DnsError::Prerequisite {
                server,
                action,
                rcode,
            }),
            rcode => Err(DnsError::Answer {
                server,
                action,
                rcode,
            }),
        }
    }
}
