//! Port 5269 and the partner's-eye check: step 6 through `failover`, and
//! `probe` against a real Prosody, a silent listener, a full backlog and a
//! server that answers with something else than XML.

use std::io::Write;
use std::net::{Ipv4Addr, TcpStream};
use std::path::Path;
use std::time::Duration;

use edgefail::event::Outcome;
use edgefail::steps::StepId;

use crate::harness::bind::Named;
use crate::harness::net::{FullBacklog, free_port, listen};
use crate::harness::topology::{Dns, Server, Timeouts, Topology};
use crate::harness::{Events, Run};

/// A topology whose target pool's Edge servers have the given external
/// addresses, the XMPP port `port`, and DNS answered at `dns`.
pub fn topology(port: u16, edges: &[Ipv4Addr], dns: &str) -> Topology {
    let mut t = Topology::new("contoso.com").srv_targets().xmpp_port(port);
    t.xmpp.ttl = None;
    t.xmpp.connect_timeout_ms = Some(1000);
    t.xmpp.first_byte_timeout_ms = Some(2000);
    t.xmpp.exchange_timeout_ms = Some(10000);
    t.dns = Dns {
        mode: Some("manual"),
        authoritative: vec![dns.into()],
        timeout_secs: Some(2),
        ..Dns::default()
    };
    t.timeouts = Timeouts {
        verify_secs: Some(5),
        poll_ms: Some(100),
        ..Timeouts::default()
    };
    t.pool_mut("EdgePool1").servers = vec![Server::local("edge1.contoso.com", "127.0.0.250")];
    t.pool_mut("EdgePool2").servers = edges
        .iter()
        .enumerate()
        .map(|(i, ip)| Server::local(&format!("edge2-{i}.contoso.com"), &ip.to_string()))
        .collect();
    t
}

/// Step 6 alone, as a dry run from EdgePool1 to EdgePool2.
fn port_check(topology: &Path) -> Run {
    Run::failover(topology)
        .dry_run()
        .from("EdgePool1")
        .to("EdgePool2")
        .only(&[StepId::PortCheck])
}

fn step6(topology: &Path) -> Run {
    // Per-server lines show on success only when verbose.
    port_check(topology).verbose(1)
}

/// A DNS server address where nothing answers.
fn no_dns() -> String {
    format!("127.0.0.1:{}", free_port())
}

#[test]
fn step6_closed_ports_pass_before_the_services_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = Ipv4Addr::new(127, 0, 0, 21);
    let b = Ipv4Addr::new(127, 0, 0, 22);
    // The same port on both addresses, free on both.
    let port = free_port();
    let t = topology(port, &[a, b], &no_dns()).write(dir.path());
    let out = step6(&t)
        .run()
        .code(0)
        .stdout_has("reachable on all 2 Edge server(s) of EdgePool2 (2 closed, 0 open)")
        .stdout_has(&format!("127.0.0.21:{port}: closed"))
        .stdout_has("nothing listens yet, as expected before step 7");
    assert!(out.stdout.contains(&format!("127.0.0.22:{port}: closed")));
}

#[test]
fn step6_json_lists_each_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ip = Ipv4Addr::new(127, 0, 0, 23);
    let (listener, port) = listen(ip);
    let t = topology(port, &[ip], &no_dns()).write(dir.path());
    let out = port_check(&t).json().run().code(0);
    let events = out.events();
    let check = events.first_finished(StepId::PortCheck);
    assert_eq!(check.outcome, Outcome::AlreadyDone, "{}", check.json());
    assert!(
        check
            .details
            .first()
            .is_some_and(|d| d.contains(&format!("127.0.0.23:{port}: open"))),
        "{}",
        check.json()
    );
    drop(listener);
}

#[test]
fn step6_filtered_port_blocks_with_a_firewall_hint() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ip = Ipv4Addr::new(127, 0, 0, 24);
    let full = FullBacklog::new(ip, 0);
    let t = topology(full.addr.port(), &[ip], &no_dns()).write(dir.path());
    step6(&t)
        .run()
        .code(1)
        .stdout_has("not reachable on 1 of 1 Edge server(s) of EdgePool2")
        .stdout_has("filtered (no answer in 1.")
        .stdout_has("a firewall drops the connection")
        .stdout_has("hint: allow TCP");
}

// --- probe through the binary -------------------------------------------

use crate::harness::prosody::Prosody;

/// `probe` with short timeouts: 1 s to connect and for the first byte,
/// 10 s for the whole exchange.
fn probe() -> Run {
    Run::new([
        "probe",
        "--connect-timeout",
        "1s",
        "--first-byte-timeout",
        "1s",
        "--exchange-timeout",
        "10s",
    ])
}

/// `probe --host 127.0.0.1 --port PORT --domain DOMAIN`.
fn probe_local(port: &str, domain: &str) -> Run {
    probe().args(["--host", "127.0.0.1", "--port", port, "--domain", domain])
}

fn json(out: &crate::harness::Outcome) -> serde_json::Value {
    serde_json::from_str(out.stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "probe --output json printed no JSON ({e})\n--- stdout\n{}\n--- stderr\n{}",
            out.stdout, out.stderr
        )
    })
}

fn finding<'a>(report: &'a serde_json::Value, check: &str) -> Vec<&'a serde_json::Value> {
    report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["check"] == check)
        .collect()
}

#[test]
fn probe_full_handshake_with_a_certificate_naming_the_domain() {
    let p = Prosody::shared();
    let _log = p.log_on_panic();
    let port = p.addr.port().to_string();
    let out = probe_local(&port, "contoso.com")
        .arg("--accept-untrusted-cert")
        .json()
        .run()
        .code(0);
    let r = json(&out);
    assert_eq!(r["passed"], true, "{r:#}");
    assert_eq!(r["header"]["from"], "contoso.com", "{r:#}");
    assert_eq!(r["features"]["starttls"], true, "{r:#}");
    assert_eq!(r["features"]["starttls_required"], true, "{r:#}");
    assert_eq!(r["features"]["dialback"], true, "{r:#}");
    assert_eq!(r["tls"]["covers_domain"], true, "{r:#}");
    assert_eq!(r["tls"]["chain"], "untrusted", "{r:#}");
    assert!(
        r["tls"]["dns_names"]
            .as_array()
            .is_some_and(|n| n.iter().any(|n| n == "contoso.com")),
        "{r:#}"
    );
    let chain = finding(&r, "cert.chain");
    assert_eq!(chain[0]["status"], "warn", "{r:#}");
    assert!(
        chain[0]["text"]
            .as_str()
            .is_some_and(|t| t.contains("accepted because of --accept-untrusted-cert")),
        "{r:#}"
    );
    assert_eq!(finding(&r, "tls.stream").len(), 2, "{r:#}");

    // Human output says the same, and names the accepted risk.
    probe_local(&port, "contoso.com")
        .arg("--accept-untrusted-cert")
        .run()
        .code(0)
        .stdout_has("starttls (required), dialback")
        .stdout_has("cover contoso.com")
        .stdout_has("the chain is NOT trusted")
        .stdout_has("PASS: a partner's server can federate with contoso.com");
}

#[test]
fn probe_untrusted_chain_fails_without_the_flag() {
    let p = Prosody::shared();
    let _log = p.log_on_panic();
    let port = p.addr.port().to_string();
    probe_local(&port, "contoso.com")
        .run()
        .code(1)
        .stdout_has("ok   cert.name")
        .stdout_has("FAIL cert.chain the chain is not trusted")
        .stdout_has("use --accept-untrusted-cert");
}

#[test]
fn probe_reports_a_certificate_without_the_domain() {
    let p = Prosody::shared();
    let _log = p.log_on_panic();
    let port = p.addr.port().to_string();
    let out = probe_local(&port, "fabrikam.com")
        .arg("--accept-untrusted-cert")
        .json()
        .run()
        .code(1);
    let r = json(&out);
    assert_eq!(r["tls"]["covers_domain"], false, "{r:#}");
    let name = finding(&r, "cert.name");
    assert_eq!(name[0]["status"], "fail", "{r:#}");
    assert!(
        name[0]["text"]
            .as_str()
            .is_some_and(|t| t
                .contains("the certificate names (edge.fabrikam.net) do not cover fabrikam.com")),
        "{r:#}"
    );
}

#[test]
fn probe_wrong_domain_gets_host_unknown() {
    let p = Prosody::shared();
    let _log = p.log_on_panic();
    let port = p.addr.port().to_string();
    probe_local(&port, "nothere.example")
        .run()
        .code(1)
        .stdout_has("answered a stream header from nothere.example")
        .stdout_has("it sent the stream error <host-unknown>");
}

#[test]
fn probe_nothing_listening_is_closed() {
    let port = free_port().to_string();
    probe_local(&port, "contoso.com")
        .run()
        .code(1)
        .stdout_has(&format!("127.0.0.1:{port}: closed (refused after"))
        .stdout_has("nothing listens");
}

#[test]
fn probe_filtered_port_times_out_on_connect() {
    let full = FullBacklog::new(Ipv4Addr::new(127, 0, 0, 31), 0);
    let port = full.addr.port().to_string();
    probe()
        .args([
            "--host",
            "127.0.0.31",
            "--port",
            &port,
            "--domain",
            "contoso.com",
        ])
        .run()
        .code(1)
        .stdout_has("filtered (no answer in 1.")
        .stdout_has("a firewall drops the connection");
}

/// A listener on 127.0.0.1 that accepts one connection and hands it to `serve`.
fn one_shot(serve: impl FnOnce(TcpStream) + Send + 'static) -> u16 {
    let (listener, port) = listen(Ipv4Addr::LOCALHOST);
    std::thread::spawn(move || {
        if let Ok((conn, _)) = listener.accept() {
            serve(conn);
        }
    });
    port
}

#[test]
fn probe_silent_server_hits_the_first_byte_timeout() {
    let port = one_shot(|conn| {
        std::thread::sleep(Duration::from_secs(5));
        drop(conn);
    })
    .to_string();
    probe_local(&port, "contoso.com")
    .run()
    .code(1)
    .stdout_has("open (accepted")
    .stdout_has(
        "within 1000 ms of sending the stream header: it accepted the connection and said nothing",
    );
}

#[test]
fn probe_non_xml_answer_is_quoted() {
    let port = one_shot(|mut conn| {
        let mut buf = [0u8; 512];
        let _ = std::io::Read::read(&mut conn, &mut buf);
        let _ = conn.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
        std::thread::sleep(Duration::from_secs(3));
    })
    .to_string();
    probe_local(&port, "contoso.com")
        .run()
        .code(1)
        .stdout_has("it answered \"HTTP/1.1 400 Bad Request\\r\\n")
        .stdout_has("which is not an XMPP stream");
}

#[test]
fn probe_usage_errors_exit_2() {
    probe()
        .arg("contoso.com")
        .run()
        .code(2)
        .stderr_has("never uses the system resolver");
    probe()
        .args(["--host", "127.0.0.1"])
        .run()
        .code(2)
        .stderr_has("--domain");
    probe()
        .args(["--host", "127.0.0.1", "--domain", "not a domain"])
        .run()
        .code(2);
}

// --- the partner's-eye check with real DNS -----------------------------

/// A BIND serving `zone` with `records` on 127.0.0.1 and a free port, for
/// the SRV and A lookups a partner makes.
fn auth_dns(zone: &str, records: &str) -> Named {
    Named::lone_in_temp_dir(
        "partner DNS",
        zone,
        &format!(
            "$TTL 300\n@ IN SOA ns1.{zone}. hostmaster.{zone}. 1 3600 600 86400 300\n@ IN NS ns1.{zone}.\nns1 IN A 127.0.0.1\n{records}"
        ),
    )
}

/// SRV records for both pools (EdgePool2 preferred when `prefer_new`) at
/// Prosody's port; EdgePool1's target at its address 127.0.0.250,
/// EdgePool2's at `new_a`.
fn federation_zone(port: u16, prefer_new: bool, new_a: &str) -> String {
    let (p1, p2) = if prefer_new { (20, 10) } else { (10, 20) };
    format!(
        "_xmpp-server._tcp IN SRV {p1} 0 {port} edgepool1-xmpp.contoso.com.\n\
         _xmpp-server._tcp IN SRV {p2} 0 {port} edgepool2-xmpp.contoso.com.\n\
         edgepool1-xmpp IN A 127.0.0.250\n\
         edgepool2-xmpp IN A {new_a}\n"
    )
}

/// A DNS server with [`federation_zone`] and a topology in `dir` whose
/// target Edge server is Prosody's address, reading DNS from that server,
/// accepting Prosody's self-signed certificate, with `partner` as the
/// partner's name if given.
fn federation(
    p: &Prosody,
    dir: &Path,
    prefer_new: bool,
    new_a: &str,
    partner: Option<&str>,
) -> (Named, String) {
    let dns = auth_dns(
        "contoso.com",
        &federation_zone(p.addr.port(), prefer_new, new_a),
    );
    let mut t =
        topology(p.addr.port(), &[Ipv4Addr::LOCALHOST], &dns.addr()).accept_untrusted_cert();
    if let Some(partner) = partner {
        t = t.partner_name(partner);
    }
    (dns, t.write(dir).display().to_string())
}

#[test]
fn partner_check_reaches_the_new_pool_over_tls() {
    let p = Prosody::shared();
    let _log = p.log_on_panic();
    let dir = tempfile::tempdir().expect("tempdir");
    let (dns, t) = federation(
        &p,
        dir.path(),
        true,
        "127.0.0.1",
        Some("partner.example.net"),
    );
    let out = probe()
        .args(["-t", &t, "--pool", "EdgePool2"])
        .json()
        .run()
        .code(0);
    let r = json(&out);
    assert_eq!(r["passed"], true, "{r:#}");
    assert_eq!(r["partner"], "partner.example.net", "{r:#}");
    assert_eq!(r["srv"][0]["target"], "edgepool2-xmpp.contoso.com", "{r:#}");
    assert_eq!(r["target"]["via_srv"], true, "{r:#}");
    assert_eq!(r["tls"]["covers_domain"], true, "{r:#}");
    let pool = finding(&r, "pool");
    assert_eq!(pool[0]["status"], "pass", "{r:#}");

    // The same through DOMAIN --dns-server, in human form.
    let dns_addr = dns.addr();
    probe()
        .args([
            "contoso.com",
            "--dns-server",
            &dns_addr,
            "--accept-untrusted-cert",
        ])
        .run()
        .code(0)
        .stdout_has("partners try edgepool2-xmpp.contoso.com:")
        .stdout_has("edgepool2-xmpp.contoso.com A 127.0.0.1")
        .stdout_has("cover contoso.com");

    // --host by name: its address from the given DNS server, no SRV.
    let port = p.addr.port().to_string();
    probe()
        .args([
            "--host",
            "edgepool2-xmpp.contoso.com",
            "--port",
            &port,
            "--domain",
            "contoso.com",
            "--dns-server",
            &dns_addr,
            "--accept-untrusted-cert",
        ])
        .run()
        .code(0)
        .stdout_has("edgepool2-xmpp.contoso.com A 127.0.0.1")
        .stdout_has(&format!("127.0.0.1:{port}: open"));
}

#[test]
fn partner_check_names_split_brain() {
    let p = Prosody::shared();
    let _log = p.log_on_panic();
    // SRV still prefers the old pool, whose A record is the old address.
    let dir = tempfile::tempdir().expect("tempdir");
    let (dns, t) = federation(&p, dir.path(), false, "127.0.0.1", None);
    probe()
        .args(["-t", &t, "--pool", "EdgePool2"])
        .run()
        .code(1)
        .stdout_has("split brain: partners go first to edgepool1-xmpp.contoso.com (EdgePool1), not to EdgePool2's edgepool2-xmpp.contoso.com")
        .stdout_has("priority 20 weight 0 port")
        .stdout_has("target edgepool2-xmpp.contoso.com -> EdgePool2")
        .stdout_has("FAIL: a partner's server cannot federate with contoso.com: split brain");
    drop(dns);

    // SRV moved, but the new target's A record still carries the old
    // pool's address.
    let (_dns, t) = federation(&p, dir.path(), true, "127.0.0.250", None);
    probe()
        .args(["-t", &t, "--pool", "EdgePool2"])
        .run()
        .code(1)
        .stdout_has("ok   pool       partners' first choice edgepool2-xmpp.contoso.com is EdgePool2's SRV target")
        .stdout_has("FAIL pool       split brain: edgepool2-xmpp.contoso.com A points at 127.0.0.250 (edge1.contoso.com of EdgePool1), not at an external address of EdgePool2");
}

#[test]
fn step6_unreachable_host_blocks_inside_a_private_network_namespace() {
    // A network namespace of our own: only loopback, and a route that
    // answers "unreachable" for the Edge's documentation address, so no
    // packet leaves this test.
    let unshare = crate::harness::need("unshare", "util-linux");
    let ip = crate::harness::need("ip", "iproute2");
    let dir = tempfile::tempdir().expect("tempdir");
    let edge = Ipv4Addr::new(192, 0, 2, 20);
    let t = topology(5269, &[edge], &no_dns()).write(dir.path());
    // $0: edgefail, $1: ip, then edgefail's arguments.
    let script = "\"$1\" link set lo up && \"$1\" route add unreachable 192.0.2.0/24 && shift && exec \"$0\" \"$@\"";
    let out = port_check(&t)
        .inside([
            unshare.as_os_str(),
            "--net".as_ref(),
            "sh".as_ref(),
            "-c".as_ref(),
            script.as_ref(),
            crate::harness::edgefail_bin().as_os_str(),
            ip.as_os_str(),
        ])
        .run()
        .code(1);
    let (stdout, stderr) = (&out.stdout, &out.stderr);
    assert!(
        stdout.contains("192.0.2.20:5269: unreachable (no route to host")
            && stdout.contains("not reachable on 1 of 1 Edge server(s)"),
        "{stdout}\n{stderr}"
    );
}
