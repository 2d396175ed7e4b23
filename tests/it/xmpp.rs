//! Port 5269 and the partner's-eye check: step 6 through `failover`, and
//! `probe` against a real Prosody, a silent listener, a full backlog and a
//! server that answers with something else than XML.

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::harness::Run;

/// A port on `ip` where nothing listens (bound, then released).
fn closed_port(ip: Ipv4Addr) -> u16 {
    let l = TcpListener::bind((ip, 0)).expect("bind a free port");
    l.local_addr().expect("local addr").port()
}

/// A listener whose accept queue is full: further SYNs are dropped, as a
/// firewall's drop rule would, so a connect can only time out.
pub struct FullBacklog {
    pub addr: SocketAddr,
    _listener: socket2::Socket,
    _queued: Vec<TcpStream>,
}

impl FullBacklog {
    pub fn new(ip: Ipv4Addr, port: u16) -> FullBacklog {
        use socket2::{Domain, Socket, Type};
        let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
        let addr = SocketAddr::from((ip, port));
        socket.bind(&addr.into()).expect("bind");
        socket.listen(0).expect("listen");
        let addr = socket
            .local_addr()
            .expect("local addr")
            .as_socket()
            .expect("inet");
        let mut queued = Vec::new();
        for _ in 0..8 {
            match TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
                Ok(s) => queued.push(s),
                Err(_) => break,
            }
        }
        assert!(
            TcpStream::connect_timeout(&addr, Duration::from_millis(300)).is_err(),
            "the backlog of {addr} did not fill after {} connections",
            queued.len()
        );
        FullBacklog {
            addr,
            _listener: socket,
            _queued: queued,
        }
    }
}

/// A topology whose target pool's Edge servers have the given external
/// addresses, the XMPP port `port`, and DNS answered at `dns`.
pub fn topology(
    dir: &Path,
    port: u16,
    edges: &[Ipv4Addr],
    dns: SocketAddr,
    extra_xmpp: &str,
) -> PathBuf {
    let mut servers = String::new();
    for (i, ip) in edges.iter().enumerate() {
        servers.push_str(&format!(
            "          - fqdn: edge2-{i}.contoso.com\n            external_ipv4: {ip}\n            transport: {{ type: local, program: pwsh }}\n"
        ));
    }
    let text = format!(
        r#"version: 1
xmpp:
  domain: contoso.com
  a_record: xmpp.contoso.com
  port: {port}
  connect_timeout_ms: 1000
  first_byte_timeout_ms: 2000
  exchange_timeout_ms: 10000
{extra_xmpp}
dns:
  zone: contoso.com
  mode: manual
  authoritative: ["{dns}"]
  timeout_secs: 2
management:
  transport: {{ type: local, program: pwsh }}
timeouts: {{ verify_secs: 5, poll_ms: 100 }}
sites:
  - name: Site1
    pools:
      - name: EdgePool1
        fqdn: edgepool1.contoso.com
        version: lync2013
        srv_priority: 10
        srv_target: edgepool1-xmpp.contoso.com
        servers:
          - fqdn: edge1.contoso.com
            external_ipv4: 127.0.0.250
            transport: {{ type: local, program: pwsh }}
  - name: Site2
    pools:
      - name: EdgePool2
        fqdn: edgepool2.contoso.com
        version: lync2013
        srv_priority: 20
        srv_target: edgepool2-xmpp.contoso.com
        servers:
{servers}"#
    );
    let path = dir.join("topology.yaml");
    std::fs::File::create(&path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .expect("write topology");
    path
}

const SKIP_ALL_BUT_PORT: [&str; 12] = [
    "--skip",
    "pool.deployed",
    "--skip",
    "services.stop",
    "--skip",
    "route.set",
    "--skip",
    "dns.a",
    "--skip",
    "dns.srv",
    "--skip",
    "services.start",
];

fn step6(topology: &Path) -> Run {
    let mut args = vec![
        // Per-server lines show on success only when verbose.
        "-v".to_string(),
        "failover".to_string(),
        "--dry-run".into(),
        "-t".into(),
        topology.display().to_string(),
        "--from".into(),
        "EdgePool1".into(),
        "--to".into(),
        "EdgePool2".into(),
    ];
    args.extend(SKIP_ALL_BUT_PORT.iter().map(|s| s.to_string()));
    Run::new(args)
}

fn no_dns() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], closed_port(Ipv4Addr::LOCALHOST)))
}

#[test]
fn step6_closed_ports_pass_before_the_services_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = Ipv4Addr::new(127, 0, 0, 21);
    let b = Ipv4Addr::new(127, 0, 0, 22);
    // The same port on both addresses, free on both.
    let port = closed_port(a);
    let t = topology(dir.path(), port, &[a, b], no_dns(), "");
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
    let listener = TcpListener::bind((ip, 0)).expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let t = topology(dir.path(), port, &[ip], no_dns(), "");
    let out = Run::new(
        std::iter::once("failover".to_string())
            .chain(["--dry-run", "--output", "json", "-t"].map(String::from))
            .chain([t.display().to_string()])
            .chain(["--from", "EdgePool1", "--to", "EdgePool2"].map(String::from))
            .chain(SKIP_ALL_BUT_PORT.iter().map(|s| s.to_string())),
    )
    .run()
    .code(0);
    let check = out
        .events()
        .into_iter()
        .find(|e| e["type"] == "phase_finished" && e["step"] == "port.check")
        .expect("a port.check event");
    assert_eq!(check["outcome"], "already_done", "{check}");
    let details = check["details"].as_array().expect("details");
    assert!(
        details[0]
            .as_str()
            .is_some_and(|d| d.contains(&format!("127.0.0.23:{port}: open"))),
        "{check}"
    );
    drop(listener);
}

#[test]
fn step6_filtered_port_blocks_with_a_firewall_hint() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ip = Ipv4Addr::new(127, 0, 0, 24);
    let full = FullBacklog::new(ip, 0);
    let t = topology(dir.path(), full.addr.port(), &[ip], no_dns(), "");
    step6(&t)
        .run()
        .code(1)
        .stdout_has("not reachable on 1 of 1 Edge server(s) of EdgePool2")
        .stdout_has("filtered (no answer in 1.")
        .stdout_has("a firewall drops the connection")
        .stdout_has("hint: allow TCP");
}
