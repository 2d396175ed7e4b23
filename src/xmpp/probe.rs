//! The partner's-eye probe: do what a federating server does (SRV, address,
//! connect, stream header, features, STARTTLS, TLS, certificate, stream
//! again over TLS) and write down every finding, stopping at the first
//! thing that would stop a partner.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use serde::Serialize;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

use super::Timeouts;
use super::port::{self, PortProbe, PortState};
use super::srv::{self, Lookup, SrvRecord};
use super::stream::{self, Features, StreamError, StreamHeader, XmppStream};
use super::tls::{self, CertReport, ChainTrust};

/// What to probe as, and how long to wait.
#[derive(Debug, Clone)]
pub struct ProbeOptions {
    /// The XMPP domain: the stream's `to`, TLS SNI and the name the
    /// certificate must cover.
    pub domain: String,
    /// The stream's `from`.
    pub partner: String,
    pub timeouts: Timeouts,
    /// Accept a chain no known CA vouches for (and say so).
    pub accept_untrusted: bool,
    /// How the operator asked for that, for the report's wording.
    pub accept_flag: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pass,
    Fail,
    Warn,
    Info,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "ok",
            Status::Fail => "FAIL",
            Status::Warn => "warn",
            Status::Info => "info",
        }
    }
}

/// One thing the probe found.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// Which part: dns.srv, dns.a, port, stream, features, starttls, tls,
    /// cert.name, cert.chain, tls.stream, pool.
    pub check: String,
    pub status: Status,
    pub text: String,
}

/// The host and port the probe connected to.
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    pub host: String,
    pub port: u16,
    pub addr: Option<SocketAddr>,
    /// Found through the SRV records (false: given, or the no-SRV fallback).
    pub via_srv: bool,
}

/// Everything one probe saw; `passed` when no finding failed.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub domain: String,
    pub partner: String,
    pub passed: bool,
    pub dns_servers: Option<String>,
    /// The SRV records in the order partners try them.
    pub srv: Vec<SrvRecord>,
    /// Why the SRV lookup failed (not: found no records).
    pub srv_error: Option<String>,
    pub target: Option<Target>,
    pub addresses: Vec<IpAddr>,
    pub port: Option<PortProbe>,
    pub header: Option<StreamHeader>,
    pub features: Option<Features>,
    pub tls: Option<CertReport>,
    pub features_after_tls: Option<Features>,
    pub findings: Vec<Finding>,
}

impl Report {
    pub fn new(opts: &ProbeOptions) -> Report {
        Report {
            domain: opts.domain.clone(),
            partner: opts.partner.clone(),
            passed: true,
            dns_servers: None,
            srv: Vec::new(),
            srv_error: None,
            target: None,
            addresses: Vec::new(),
            port: None,
            header: None,
            features: None,
            tls: None,
            features_after_tls: None,
            findings: Vec::new(),
        }
    }

    pub fn note(&mut self, check: &str, status: Status, text: impl Into<String>) {
        if status == Status::Fail {
            self.passed = false;
        }
        self.findings.push(Finding {
            check: check.to_string(),
            status,
            text: text.into(),
        });
    }

    pub fn failures(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| f.status == Status::Fail)
    }

    /// One line per finding, for people.
    pub fn lines(&self) -> Vec<String> {
        self.findings
            .iter()
            .map(|f| format!("{:<4} {:<10} {}", f.status.as_str(), f.check, f.text))
            .collect()
    }

    /// One line: the verdict and the failure that matters most (split
    /// brain first, since it explains the others).
    pub fn summary(&self) -> String {
        let worst = self
            .failures()
            .find(|f| f.check == "pool")
            .or_else(|| self.failures().next());
        // An accepted untrusted chain passes, but must not pass unseen.
        let untrusted = self
            .findings
            .iter()
            .any(|f| f.check == "cert.chain" && f.status == Status::Warn);
        match worst {
            None => format!(
                "a partner's server can federate with {}{}{}",
                self.domain,
                self.target
                    .as_ref()
                    .map(|t| format!(" through {}:{}", t.host, t.port))
                    .unwrap_or_default(),
                if untrusted {
                    " (warning: its certificate chain is NOT trusted and was accepted only because it was told to)"
                } else {
                    ""
                }
            ),
            Some(f) => format!(
                "a partner's server cannot federate with {}: {}",
                self.domain, f.text
            ),
        }
    }
}

/// From the domain: SRV (with the RFC 6120 fallback to the domain when
/// there is none), the preferred target's address, then [`probe_addr`].
pub async fn probe_domain(lookup: &dyn Lookup, opts: &ProbeOptions) -> Report {
    let mut report = Report::new(opts);
    report.dns_servers = Some(lookup.describe());
    let owner = format!("_xmpp-server._tcp.{}", opts.domain);
    let (host, port, via_srv) = match lookup.srv(&owner).await {
        Ok(mut records) => {
            srv::order(&mut records);
            report.srv = records.clone();
            let usable: Vec<&SrvRecord> = records.iter().filter(|r| !r.is_no_service()).collect();
            let Some(first) = usable.first() else {
                report.note(
                    "dns.srv",
                    Status::Fail,
                    format!(
                        "{owner} says the service is decidedly not available (target \".\"): partners will not federate"
                    ),
                );
                return report;
            };
            report.note(
                "dns.srv",
                Status::Pass,
                format!(
                    "{owner}: {} record(s); partners try {}:{} first (priority {})",
                    records.len(),
                    first.target,
                    first.port,
                    first.priority
                ),
            );
            for r in &records {
                report.note("dns.srv", Status::Info, r.describe());
            }
            let ties = usable
                .iter()
                .filter(|r| r.priority == first.priority)
                .count();
            if ties > 1 {
                report.note(
                    "dns.srv",
                    Status::Warn,
                    format!(
                        "{ties} targets share priority {}: partners pick among them at random by weight",
                        first.priority
                    ),
                );
            }
            (first.target.clone(), first.port, true)
        }
        Err(e) if e.is_absent() => {
            report.note(
                "dns.srv",
                Status::Warn,
                format!(
                    "no {owner} record ({e}); partners fall back to {}:5269",
                    opts.domain
                ),
            );
            (opts.domain.clone(), 5269, false)
        }
        Err(e) => {
            report.srv_error = Some(e.to_string());
            report.note("dns.srv", Status::Fail, format!("failed to {e}"));
            return report;
        }
    };
    let Some(addr) = resolve(lookup, &host, port, via_srv, &mut report).await else {
        return report;
    };
    report.target = Some(Target {
        host: host.clone(),
        port,
        addr: Some(SocketAddr::new(addr, port)),
        via_srv,
    });
    exchange(SocketAddr::new(addr, port), opts, &mut report).await;
    report
}

/// From a host name or address (no SRV): its address, then [`probe_addr`].
pub async fn probe_host(lookup: &dyn Lookup, host: &str, port: u16, opts: &ProbeOptions) -> Report {
    let mut report = Report::new(opts);
    report.dns_servers = Some(lookup.describe());
    let Some(addr) = resolve(lookup, host, port, false, &mut report).await else {
        return report;
    };
    report.target = Some(Target {
        host: host.to_string(),
        port,
        addr: Some(SocketAddr::new(addr, port)),
        via_srv: false,
    });
    exchange(SocketAddr::new(addr, port), opts, &mut report).await;
    report
}

/// The first A address of `host` (partners try the others if it fails).
async fn resolve(
    lookup: &dyn Lookup,
    host: &str,
    port: u16,
    via_srv: bool,
    report: &mut Report,
) -> Option<IpAddr> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        report.addresses = vec![ip];
        return Some(ip);
    }
    let problem = match lookup.ipv4(host).await {
        Ok(ips) if !ips.is_empty() => {
            report.addresses = ips.iter().map(|ip| IpAddr::V4(*ip)).collect();
            let list: Vec<String> = ips.iter().map(|i| i.to_string()).collect();
            report.note(
                "dns.a",
                Status::Pass,
                format!("{host} A {}", list.join(", ")),
            );
            return Some(IpAddr::V4(ips[0]));
        }
        Ok(_) => format!("{host} has no A record"),
        Err(e) => format!("failed to {e}"),
    };
    report.note("dns.a", Status::Fail, problem);
    report.target = Some(Target {
        host: host.to_string(),
        port,
        addr: None,
        via_srv,
    });
    None
}

/// From an address: connect, stream, STARTTLS, TLS, certificate, and the
/// stream again over TLS.
pub async fn probe_addr(addr: SocketAddr, host: &str, opts: &ProbeOptions) -> Report {
    let mut report = Report::new(opts);
    report.target = Some(Target {
        host: host.to_string(),
        port: addr.port(),
        addr: Some(addr),
        via_srv: false,
    });
    report.addresses = vec![addr.ip()];
    exchange(addr, opts, &mut report).await;
    report
}

fn meaning_when_running(state: PortState) -> &'static str {
    match state {
        PortState::Open => "a connection is accepted",
        PortState::Closed => {
            "nothing listens: the XMPP federation service is not running there (or a firewall rejects)"
        }
        PortState::Filtered => "no answer at all: a firewall drops the connection",
        PortState::Unreachable => "no route to the host",
    }
}

async fn exchange(addr: SocketAddr, opts: &ProbeOptions, report: &mut Report) {
    let t = opts.timeouts;
    let started = Instant::now();
    let deadline = Instant::from_std(crate::cancel::deadline(started.into_std(), t.exchange));
    let tcp = match port::connect(addr, t.connect.min(t.exchange)).await {
        Ok((tcp, probe)) => {
            report.note(
                "port",
                Status::Pass,
                format!("{addr}: {}", probe.describe()),
            );
            report.port = Some(probe);
            tcp
        }
        Err(probe) => {
            report.note(
                "port",
                Status::Fail,
                format!(
                    "{addr}: {}: {}",
                    probe.describe(),
                    meaning_when_running(probe.state)
                ),
            );
            report.port = Some(probe);
            return;
        }
    };
    let peer = addr.to_string();
    let mut xmpp = XmppStream::new(tcp, peer.clone(), deadline, t.exchange);
    let features = match open(&mut xmpp, opts, t.first_byte, report, "stream").await {
        Ok((header, features)) => {
            report.header = Some(header);
            features
        }
        Err(e) => {
            report.note("stream", Status::Fail, explain(&e, opts));
            return;
        }
    };
    report.note(
        "features",
        Status::Pass,
        format!("features: {}", features.describe()),
    );
    report.features = Some(features.clone());
    if !features.starttls {
        report.note(
            "features",
            Status::Fail,
            "no STARTTLS offered: partners that require encryption (most, and Lync) will not federate",
        );
        return;
    }
    if !features.dialback && features.sasl.is_empty() {
        report.note(
            "features",
            Status::Info,
            "no dialback before TLS (servers often offer it only after TLS)",
        );
    }
    if let Err(e) = xmpp.starttls().await {
        report.note("starttls", Status::Fail, explain(&e, opts));
        return;
    }
    report.note("starttls", Status::Pass, "<starttls/> answered <proceed/>");
    let tcp = match xmpp.into_inner() {
        Ok(tcp) => tcp,
        Err(e) => {
            report.note("starttls", Status::Fail, explain(&e, opts));
            return;
        }
    };
    let shake = tokio::time::timeout_at(deadline, tls::handshake(tcp, &opts.domain, &peer)).await;
    let (tls_stream, cert) = match shake {
        Ok(Ok(done)) => done,
        Ok(Err(e)) => {
            report.note("tls", Status::Fail, format!("failed to {e}"));
            return;
        }
        Err(_) => {
            report.note(
                "tls",
                Status::Fail,
                format!(
                    "failed to complete a TLS handshake with {peer} within {} ms",
                    t.exchange.as_millis()
                ),
            );
            return;
        }
    };
    report.note(
        "tls",
        Status::Pass,
        format!("{} {}", cert.protocol, cert.cipher),
    );
    judge_cert(&cert, opts, report);
    report.tls = Some(cert);

    let mut secure = XmppStream::new(tls_stream, peer, deadline, t.exchange);
    let remaining = deadline.saturating_duration_since(Instant::now());
    let first_byte = t.first_byte.min(remaining.max(Duration::from_millis(1)));
    match open(&mut secure, opts, first_byte, report, "tls.stream").await {
        Ok((_, features)) => {
            report.note(
                "tls.stream",
                Status::Pass,
                format!("features over TLS: {}", features.describe()),
            );
            report.features_after_tls = Some(features);
        }
        Err(e) => report.note("tls.stream", Status::Fail, explain(&e, opts)),
    }
    // Be polite: close our stream; the answer does not matter.
    let _ = tokio::time::timeout(Duration::from_millis(200), secure.send("</stream:stream>")).await;
}

/// Send the opening, read the header (recorded) and the features.
async fn open<S>(
    xmpp: &mut XmppStream<S>,
    opts: &ProbeOptions,
    first_byte: Duration,
    report: &mut Report,
    check: &str,
) -> Result<(StreamHeader, Features), StreamError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    xmpp.send(&stream::opening(&opts.domain, &opts.partner))
        .await?;
    xmpp.first_byte(first_byte).await?;
    let header = xmpp.read_header().await?;
    let mut notes = Vec::new();
    if header.content_ns.as_deref() != Some(stream::NS_SERVER) {
        notes.push(format!(
            "content namespace {:?} is not jabber:server",
            header.content_ns.as_deref().unwrap_or("")
        ));
    }
    if header.version.as_deref() != Some("1.0") {
        notes.push(format!(
            "version {:?} is not 1.0 (no features, no STARTTLS)",
            header.version.as_deref().unwrap_or("")
        ));
    }
    if let Some(from) = &header.from
        && !from.eq_ignore_ascii_case(&opts.domain)
    {
        notes.push(format!("it answers as {from}, not {}", opts.domain));
    }
    report.note(
        check,
        Status::Pass,
        format!(
            "{} answered a stream header from {}{}",
            xmpp.peer(),
            header.from.as_deref().unwrap_or("(no from)"),
            header
                .id
                .as_deref()
                .map(|id| format!(" (id {})", crate::names::printable(id)))
                .unwrap_or_default()
        ),
    );
    for n in notes {
        report.note(check, Status::Warn, n);
    }
    let features = xmpp.read_features().await?;
    Ok((header, features))
}

/// A stream failure, with what a known stream error condition means.
fn explain(e: &StreamError, opts: &ProbeOptions) -> String {
    let hint = match e.condition() {
        Some("host-unknown") => {
            " (the XMPP domain must be configured on the server that answers)".to_string()
        }
        Some("host-gone") => format!(" ({} is no longer served there)", opts.domain),
        Some("policy-violation") => " (the server refuses this partner by policy)".into(),
        Some("improper-addressing") => " (the stream lacked a to or from it accepts)".into(),
        _ => String::new(),
    };
    format!("failed to {e}{hint}")
}

fn judge_cert(cert: &CertReport, opts: &ProbeOptions, report: &mut Report) {
    let names = if cert.dns_names.is_empty() {
        "no DNS names".to_string()
    } else {
        cert.dns_names.join(", ")
    };
    if cert.covers_domain {
        report.note(
            "cert.name",
            Status::Pass,
            format!("the certificate names ({names}) cover {}", opts.domain),
        );
    } else {
        report.note(
            "cert.name",
            Status::Fail,
            format!(
                "the certificate names ({names}) do not cover {}: partners check the XMPP domain, not the host name; put {} in the subject alternative names of the Edge's external certificate",
                opts.domain, opts.domain
            ),
        );
    }
    match (cert.chain, opts.accept_untrusted) {
        (ChainTrust::Trusted, _) => report.note(
            "cert.chain",
            Status::Pass,
            format!(
                "the chain ({} certificate(s)) leads to a trusted root",
                cert.chain_length
            ),
        ),
        (ChainTrust::Untrusted, true) => report.note(
            "cert.chain",
            Status::Warn,
            format!(
                "the chain is NOT trusted ({}); accepted because of {}: partners that check chains will refuse it",
                cert.chain_problem.as_deref().unwrap_or("unknown reason"),
                opts.accept_flag
            ),
        ),
        (ChainTrust::Untrusted, false) => report.note(
            "cert.chain",
            Status::Fail,
            format!(
                "the chain is not trusted ({}); to accept a self-signed or private-CA chain knowingly, use {}",
                cert.chain_problem.as_deref().unwrap_or("unknown reason"),
                opts.accept_flag
            ),
        ),
    }
}
