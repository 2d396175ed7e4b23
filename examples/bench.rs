//! The failover bench: `cargo run --release --example bench [-- OPTIONS]`.
//!
//! Starts its own BIND primary and secondary (named on two loopback ports,
//! in a temporary directory, NOTIFY with no delay and a 10 ms rate-limit
//! tick, see `Bind::reset`), an XMPP listener per
//! Edge server (STARTTLS, a certificate made here for contoso.com), and the
//! PowerShell stand-in (examples/pwsh_standin.rs, built first) with a
//! start-up delay per process and delays per cmdlet. For each N it runs a
//! full `edgefail failover` (every verify phase, the partner's check
//! included) with every server worked on at once, and prints a Markdown
//! table: wall time, the critical path the configured delays make, DNS
//! propagation as an observer polling the primary and the secondary saw
//! it, edgefail's overhead (wall - critical path - propagation), how late
//! verify saw each DNS change after the secondary had it, PowerShell
//! processes per machine, and edgefail's peak memory. Then the dry run's
//! time and `validate` and `plan` on a generated topology of 1,000 sites.
//!
//! Options: `--startup-ms N` (3000), `--stop-ms N` (500), `--start-ms N`
//! (500), `--sizes 1,4,16,64`, `--sites 1000`. With `BENCH_PHASES` set in
//! the environment, every phase's time goes to stderr.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;

type Fallible<T> = Result<T, String>;

struct Options {
    startup_ms: u64,
    stop_ms: u64,
    start_ms: u64,
    sizes: Vec<usize>,
    sites: usize,
}

fn options() -> Fallible<Options> {
    let mut o = Options {
        startup_ms: 3000,
        stop_ms: 500,
        start_ms: 500,
        sizes: vec![1, 4, 16, 64],
        sites: 1000,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        let number = || value.parse::<u64>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--startup-ms" => o.startup_ms = number()?,
            "--stop-ms" => o.stop_ms = number()?,
            "--start-ms" => o.start_ms = number()?,
            "--sites" => o.sites = number()? as usize,
            "--sizes" => {
                o.sizes = value
                    .split(',')
                    .map(|s| s.trim().parse().map_err(|e| format!("--sizes: {e}")))
                    .collect::<Fallible<_>>()?
            }
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    Ok(o)
}

fn main() {
    if let Err(e) = run() {
        eprintln!("bench: {e}");
        std::process::exit(1);
    }
}

/// The binaries next to this example: target/<profile>/{edgefail, examples/pwsh_standin}.
fn binaries() -> Fallible<(PathBuf, PathBuf)> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let examples = exe.parent().ok_or("no examples dir")?;
    let profile = examples.parent().ok_or("no profile dir")?;
    let profile_name = profile
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("debug");
    let mut build = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    build.args([
        "build",
        "--quiet",
        "--bin",
        "edgefail",
        "--example",
        "pwsh_standin",
    ]);
    if profile_name == "release" {
        build.arg("--release");
    }
    let status = build.status().map_err(|e| format!("cargo build: {e}"))?;
    if !status.success() {
        return Err("cargo build failed".into());
    }
    Ok((profile.join("edgefail"), examples.join("pwsh_standin")))
}

fn run() -> Fallible<()> {
    let o = options()?;
    let (edgefail, standin) = binaries()?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let xmpp_port = free_port()?;
    let mut bind = Bind::start(dir.path(), xmpp_port)?;
    let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    let max = o.sizes.iter().copied().max().unwrap_or(1);
    // An XMPP listener on every Edge server's address, up throughout.
    let tls = edgefail::sim::xmpp::tls_config(&["contoso.com".to_string()])
        .map_err(|e| format!("certificate: {e:?}"))?;
    let persona = edgefail::sim::xmpp::Persona {
        domain: "contoso.com".into(),
        tls,
    };
    let mut listeners = Vec::new();
    let addrs = std::iter::once(edge_ip(1, 1)).chain((1..=max).map(|i| edge_ip(2, i)));
    for ip in addrs {
        let addr = SocketAddr::from((ip, xmpp_port));
        listeners.push(
            runtime
                .block_on(edgefail::sim::xmpp::listen(addr, persona.clone()))
                .map_err(|e| format!("listen on {addr}: {e}"))?,
        );
    }

    println!(
        "start-up {} ms per PowerShell process; Stop/Start-CsWindowsService {} / {} ms; machine: {}\n",
        o.startup_ms,
        o.stop_ms,
        o.start_ms,
        machine()
    );
    println!(
        "| N | start-up | wall | critical path | DNS propagation | overhead | verify late (A, SRV) | PowerShell processes per machine | peak memory |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    let critical = Duration::from_millis(o.stop_ms + o.start_ms);
    for &n in &o.sizes {
        for startup in [o.startup_ms, 0] {
            bind.reset()?;
            let case = Case::write(dir.path(), &bind, &standin, n, xmpp_port, startup, &o)?;
            let observer = Observer::start(&bind);
            let timed = timed(
                failover(
                    &edgefail,
                    "--yes",
                    &case.topology,
                    &dir.path().join(format!("journal-{n}-{startup}.jsonl")),
                )
                .args(["--parallel", &n.to_string()]),
            )?;
            let seen = observer.stop();
            if timed.code != 0 {
                return Err(format!(
                    "the failover at N={n} exited {}:\n{}\n{}",
                    timed.code, timed.stdout, timed.stderr
                ));
            }
            let propagation = seen.propagation();
            let overhead = timed
                .wall
                .saturating_sub(critical)
                .saturating_sub(propagation);
            let late = verify_late(&timed.stdout, &seen);
            if std::env::var_os("BENCH_PHASES").is_some() {
                phases(&timed.stdout);
            }
            let starts = case.starts()?;
            println!(
                "| {n} | {} | {} | {} | {} | {} | {} | {} | {} |",
                ms(Duration::from_millis(startup)),
                ms(timed.wall),
                ms(critical),
                ms(propagation),
                ms(overhead),
                late,
                starts,
                mib(timed.max_rss_kib)
            );
        }
    }

    // The dry run at the largest N, no start-up delay.
    bind.reset()?;
    let case = Case::write(dir.path(), &bind, &standin, max, xmpp_port, 0, &o)?;
    let dry = timed(&mut failover(
        &edgefail,
        "--dry-run",
        &case.topology,
        &dir.path().join("journal-dry.jsonl"),
    ))?;
    println!();
    println!("| what | wall | peak memory | exit |");
    println!("|---|---|---|---|");
    println!(
        "| failover --dry-run, N={max}, no start-up delay | {} | {} | {} |",
        ms(dry.wall),
        mib(dry.max_rss_kib),
        dry.code
    );
    let big = Case::write_sites(dir.path(), &bind, &standin, o.sites, xmpp_port)?;
    let validate = timed(Command::new(&edgefail).arg("validate").arg("-t").arg(&big))?;
    if validate.code != 0 {
        eprintln!("validate on the generated topology:\n{}", validate.stderr);
    }
    println!(
        "| validate, {} sites | {} | {} | {} |",
        o.sites,
        ms(validate.wall),
        mib(validate.max_rss_kib),
        validate.code
    );
    let plan = timed(
        Command::new(&edgefail)
            .args([
                "plan",
                "--output",
                "json",
                "--from",
                "EdgePool1",
                "--to",
                "EdgePool2",
            ])
            .arg("-t")
            .arg(&big)
            .arg("--journal")
            .arg(dir.path().join("journal-big.jsonl")),
    )?;
    println!(
        "| plan, {} sites | {} | {} | {} |",
        o.sites,
        ms(plan.wall),
        mib(plan.max_rss_kib),
        plan.code
    );
    for l in listeners {
        l.abort();
    }
    Ok(())
}

fn ms(d: Duration) -> String {
    format!("{} ms", d.as_millis())
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!("{model}, {cpus} CPUs, {}", std::env::consts::OS)
}

/// Edge server `i` of pool `pool`: 127.<pool>.0.<i>... spread over the
/// third octet for large pools.
fn edge_ip(pool: u8, i: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, 40 + pool, (i / 250) as u8, (i % 250 + 1) as u8)
}

fn free_port() -> Fallible<u16> {
    let tcp = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(|e| e.to_string())?;
    tcp.local_addr()
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}

struct Timed {
    wall: Duration,
    code: i32,
    stdout: String,
    stderr: String,
    max_rss_kib: u64,
}

/// Run a command to its end: wall time, exit code, output, peak memory.
fn timed(cmd: &mut Command) -> Fallible<Timed> {
    let out_file = tempfile::tempfile().map_err(|e| e.to_string())?;
    let err_file = tempfile::tempfile().map_err(|e| e.to_string())?;
    let started = Instant::now();
    let child = cmd
        .stdin(Stdio::null())
        .stdout(out_file.try_clone().map_err(|e| e.to_string())?)
        .stderr(err_file.try_clone().map_err(|e| e.to_string())?)
        .spawn()
        .map_err(|e| format!("{cmd:?}: {e}"))?;
    let (code, max_rss_kib) = wait_with_rusage(child.id())?;
    let wall = started.elapsed();
    let read = |mut f: std::fs::File| {
        use std::io::{Read, Seek};
        let mut s = String::new();
        let _ = f.seek(std::io::SeekFrom::Start(0));
        let _ = f.read_to_string(&mut s);
        s
    };
    Ok(Timed {
        wall,
        code,
        stdout: read(out_file),
        stderr: read(err_file),
        max_rss_kib,
    })
}

/// wait4(2): the exit code and the child's peak resident set (KiB).
fn wait_with_rusage(pid: u32) -> Fallible<(i32, u64)> {
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid value; wait4 fills it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child `pid`; both pointers are to locals.
    let r = unsafe { libc::wait4(pid as libc::pid_t, &mut status, 0, &mut usage) };
    if r < 0 {
        return Err(format!("wait4: {}", std::io::Error::last_os_error()));
    }
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    Ok((code, usage.ru_maxrss.max(0) as u64))
}

/// Every phase's duration on stderr, for finding where the time goes.
fn phases(stdout: &str) {
    for line in stdout.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if v["type"] == "phase_finished" {
            eprintln!("{:>6} ms {} {}", v["duration_ms"], v["step"], v["phase"]);
        }
    }
}

/// How late verify saw each DNS change after the secondary had it: the
/// end of the dns.a and dns.srv verify phases against the observer's times.
fn verify_late(stdout: &str, seen: &Seen) -> String {
    let mut started = std::collections::HashMap::new();
    let mut late = Vec::new();
    for line in stdout.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let (Some(step), Some(phase)) = (v["step"].as_str(), v["phase"].as_str()) else {
            continue;
        };
        if phase != "verify" || !matches!(step, "dns.a" | "dns.srv") {
            continue;
        }
        match v["type"].as_str() {
            Some("phase_started") => {
                if let Some(at) = v["at"]
                    .as_str()
                    .and_then(|t| humantime::parse_rfc3339(t).ok())
                {
                    started.insert(step.to_string(), at);
                }
            }
            Some("phase_finished") => {
                let (Some(at), Some(d)) = (started.get(step), v["duration_ms"].as_u64()) else {
                    continue;
                };
                let end = *at + Duration::from_millis(d);
                let secondary = if step == "dns.a" {
                    seen.a.1
                } else {
                    seen.srv.1
                };
                late.push(match secondary {
                    Some(s) => match end.duration_since(s) {
                        Ok(d) => format!("{} ms", d.as_millis()),
                        // Verify saw it before the observer did.
                        Err(e) if e.duration() < Duration::from_millis(1) => "0 ms".into(),
                        Err(e) => format!("-{} ms", e.duration().as_millis()),
                    },
                    None => "unseen".into(),
                });
            }
            _ => {}
        }
    }
    late.join(", ")
}

/// When the observer saw each change: (primary, secondary).
#[derive(Default)]
struct Seen {
    a: (Option<SystemTime>, Option<SystemTime>),
    srv: (Option<SystemTime>, Option<SystemTime>),
}

impl Seen {
    /// How long the secondary lagged the primary, A and SRV together.
    fn propagation(&self) -> Duration {
        let lag = |(p, s): (Option<SystemTime>, Option<SystemTime>)| match (p, s) {
            (Some(p), Some(s)) => s.duration_since(p).unwrap_or_default(),
            _ => Duration::ZERO,
        };
        lag(self.a) + lag(self.srv)
    }
}

/// The records the observer watches: the failover's A and SRV changes
/// themselves, not the zone's serial (the run's lease, a TXT record in the
/// same zone, moves the serial too).
const WATCHED: [(&str, RecordType); 2] = [
    ("xmpp.contoso.com", RecordType::A),
    ("_xmpp-server._tcp.contoso.com", RecordType::SRV),
];

/// One record on one server: its last answer, and when that changed.
type Watched = (Option<Vec<String>>, Option<SystemTime>);

/// Polls the A and the SRV record on both servers every millisecond, on
/// its own thread, and keeps when each server's answer last changed: at
/// the end, that is when it took the record's final state (a change made
/// by more than one UPDATE counts when its last part arrived).
struct Observer {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Seen>,
}

impl Observer {
    fn start(bind: &Bind) -> Observer {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let ports = [bind.primary_port, bind.secondary_port];
        let thread = std::thread::spawn(move || {
            // [record][server]: the last answer and when it last changed.
            let mut last: [[Watched; 2]; 2] = Default::default();
            while !flag.load(Ordering::Relaxed) {
                for (r, (name, rtype)) in WATCHED.into_iter().enumerate() {
                    for (i, port) in ports.into_iter().enumerate() {
                        let Some(now) = records(port, name, rtype) else {
                            continue;
                        };
                        let (seen, changed) = &mut last[r][i];
                        match seen {
                            None => *seen = Some(now),
                            Some(before) if *before != now => {
                                *seen = Some(now);
                                *changed = Some(SystemTime::now());
                            }
                            Some(_) => {}
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            Seen {
                a: (last[0][0].1, last[0][1].1),
                srv: (last[1][0].1, last[1][1].1),
            }
        });
        Observer { stop, thread }
    }

    fn stop(self) -> Seen {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap_or_default()
    }
}

/// The records of `rtype` at `name` as the server on `port` answers them,
/// sorted (BIND rotates the order of a set between answers).
fn records(port: u16, name: &str, rtype: RecordType) -> Option<Vec<String>> {
    let answer = Message::from_vec(&response(port, name, u16::from(rtype))?).ok()?;
    let mut found: Vec<String> = answer
        .answers
        .iter()
        .filter(|r| r.record_type() == rtype)
        .map(|r| r.data.to_string())
        .collect();
    found.sort();
    Some(found)
}

/// The zone's SOA serial as the server on `port` has it: the answer's
/// first record (its owner a compression pointer), whose RDATA ends with
/// serial, refresh, retry, expire, minimum.
fn serial(port: u16) -> Option<u32> {
    let answer = query(port, "contoso.com", 6)?;
    let rdlen = usize::from(u16::from_be_bytes([*answer.get(10)?, *answer.get(11)?]));
    let rdata = answer.get(12..12 + rdlen)?;
    let at = rdlen.checked_sub(20)?;
    let b = rdata.get(at..at + 4)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// One UDP query to 127.0.0.1:`port`; the answer section's bytes.
fn query(port: u16, name: &str, qtype: u16) -> Option<Vec<u8>> {
    let question = 12 + name.len() + 2 + 4;
    response(port, name, qtype)?
        .get(question..)
        .map(<[u8]>::to_vec)
}

/// One UDP query to 127.0.0.1:`port`; the whole response.
fn response(port: u16, name: &str, qtype: u16) -> Option<Vec<u8>> {
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).ok()?;
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .ok()?;
    let mut q = vec![0x12, 0x34, 0x00, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in name.split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.push(0);
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&[0, 1]);
    socket.send_to(&q, (Ipv4Addr::LOCALHOST, port)).ok()?;
    let mut buf = [0u8; 1500];
    let n = socket.recv(&mut buf).ok()?;
    buf.get(..n).map(<[u8]>::to_vec)
}

/// The BIND pair, in `dir`.
struct Bind {
    dir: PathBuf,
    xmpp_port: u16,
    primary_port: u16,
    secondary_port: u16,
    secret: String,
    children: Vec<std::process::Child>,
}

const KEY_NAME: &str = "edgefail-bench";

fn zone(serial: u32, xmpp_port: u16) -> String {
    let mut z = format!(
        "$TTL 300\n@ IN SOA ns1.contoso.com. hostmaster.contoso.com. {serial} 3600 600 86400 60\n@ IN NS ns1.contoso.com.\nns1 IN A 127.0.0.1\nxmpp 300 IN A {p1}\nedgepool1-xmpp IN A {p1}\nedgepool2-xmpp IN A {p2}\n_xmpp-server._tcp 300 IN SRV 10 0 {xmpp_port} edgepool1-xmpp.contoso.com.\n_xmpp-server._tcp 300 IN SRV 20 0 {xmpp_port} edgepool2-xmpp.contoso.com.\n",
        p1 = edge_ip(1, 1),
        p2 = edge_ip(2, 1)
    );
    z.push('\n');
    z
}

impl Bind {
    fn start(parent: &Path, xmpp_port: u16) -> Fallible<Bind> {
        let mut seed = [0u8; 32];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut seed)
            .map_err(|_| "no randomness")?;
        let mut bind = Bind {
            dir: parent.join("bind"),
            xmpp_port,
            primary_port: 0,
            secondary_port: 0,
            secret: base64::engine::general_purpose::STANDARD.encode(seed),
            children: Vec::new(),
        };
        bind.reset()?;
        Ok(bind)
    }

    fn key_statement(&self) -> String {
        format!(
            "key \"{KEY_NAME}\" {{ algorithm hmac-sha256; secret \"{}\"; }};\n",
            self.secret
        )
    }

    /// The key file edgefail reads (mode 600).
    fn write_key(&self, path: &Path) -> Fallible<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        f.write_all(self.key_statement().as_bytes())
            .map_err(|e| e.to_string())
    }

    /// (Re)start both servers from the "before" zone.
    fn reset(&mut self) -> Fallible<()> {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
        let (pp, sp) = (free_port()?, free_port()?);
        let (pdir, sdir) = (self.dir.join("primary"), self.dir.join("secondary"));
        for d in [&pdir, &sdir] {
            std::fs::create_dir_all(d).map_err(|e| e.to_string())?;
            std::fs::write(d.join("zone.db"), zone(1, self.xmpp_port))
                .map_err(|e| e.to_string())?;
        }
        let options = |dir: &Path, port: u16, extra: &str| {
            format!(
                "options {{\n directory \"{}\";\n listen-on port {port} {{ 127.0.0.1; }};\n listen-on-v6 {{ none; }};\n pid-file none;\n session-keyfile none;\n recursion no;\n{extra}}};\ncontrols {{ }};\n",
                dir.display()
            )
        };
        // NOTIFY with no delay, and both rate limiters raised from BIND's
        // default 20 a second: BIND releases a limiter's queue in ticks of
        // 10/rate seconds, so at 20 a second a NOTIFY (primary,
        // `notify-rate`) or refresh query (secondary, `serial-query-rate`)
        // that follows another within half a second waits for the next
        // 500 ms tick. The failover's changes come a few ms apart, so the
        // second reached the secondary ~0.5 s late. At 1000 a second the
        // tick is 10 ms.
        let pconf = format!(
            "{}{}zone \"contoso.com\" {{\n type primary;\n file \"{}/zone.db\";\n allow-update {{ key \"{KEY_NAME}\"; }};\n}};\n",
            options(
                &pdir,
                pp,
                &format!(
                    " notify explicit;\n also-notify {{ 127.0.0.1 port {sp}; }};\n notify-delay 0;\n notify-rate 1000;\n allow-transfer {{ 127.0.0.1; }};\n"
                )
            ),
            self.key_statement(),
            pdir.display()
        );
        let sconf = format!(
            "{}zone \"contoso.com\" {{\n type secondary;\n masterfile-format text;\n primaries {{ 127.0.0.1 port {pp}; }};\n file \"{}/zone.db\";\n}};\n",
            options(&sdir, sp, " notify no;\n serial-query-rate 1000;\n"),
            sdir.display()
        );
        for (dir, conf, port) in [(&pdir, pconf, pp), (&sdir, sconf, sp)] {
            let path = dir.join("named.conf");
            std::fs::write(&path, conf).map_err(|e| e.to_string())?;
            let log = std::fs::File::create(dir.join("named.log")).map_err(|e| e.to_string())?;
            let child = Command::new("named")
                .args(["-g", "-c"])
                .arg(&path)
                .stdin(Stdio::null())
                .stdout(log.try_clone().map_err(|e| e.to_string())?)
                .stderr(log)
                .spawn()
                .map_err(|e| format!("cannot start named ({e}): apt-get install -y bind9"))?;
            self.children.push(child);
            let deadline = Instant::now() + Duration::from_secs(10);
            while serial(port).is_none() {
                if Instant::now() > deadline {
                    return Err(format!(
                        "named on port {port} did not answer; see {}",
                        dir.join("named.log").display()
                    ));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        self.primary_port = pp;
        self.secondary_port = sp;
        Ok(())
    }

    fn stop(&mut self) {
        for mut child in self.children.drain(..) {
            // Our own named, by its handle.
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Bind {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One run's topology and stand-in state.
struct Case {
    topology: PathBuf,
    state: PathBuf,
}

impl Case {
    fn write(
        dir: &Path,
        bind: &Bind,
        standin: &Path,
        n: usize,
        xmpp_port: u16,
        startup_ms: u64,
        o: &Options,
    ) -> Fallible<Case> {
        let sites = vec![(1, 1), (2, n)];
        Case::build(dir, bind, standin, &sites, xmpp_port, startup_ms, o)
    }

    /// `sites` sites of one pool and one server each (Site1, Site2, ...).
    fn write_sites(
        dir: &Path,
        bind: &Bind,
        standin: &Path,
        count: usize,
        xmpp_port: u16,
    ) -> Fallible<PathBuf> {
        let sites: Vec<(u8, usize)> = (0..count).map(|i| ((i + 1).min(200) as u8, 1)).collect();
        let o = Options {
            startup_ms: 0,
            stop_ms: 0,
            start_ms: 0,
            sizes: Vec::new(),
            sites: count,
        };
        let case = Case::build(dir, bind, standin, &sites, xmpp_port, 0, &o)?;
        Ok(case.topology)
    }

    fn build(
        dir: &Path,
        bind: &Bind,
        standin: &Path,
        sites: &[(u8, usize)],
        xmpp_port: u16,
        startup_ms: u64,
        o: &Options,
    ) -> Fallible<Case> {
        let state = dir.join("standin-state.json");
        let key = dir.join("edgefail.key");
        bind.write_key(&key)?;
        let transport = |host: &str| {
            format!(
                "{{ type: local, program: '{}', args: [--state, '{}', --host, '{host}'], module: Lync }}",
                standin.display(),
                state.display()
            )
        };
        let mut y = format!(
            "version: 1\nxmpp: {{ domain: contoso.com, a_record: xmpp.contoso.com, port: {xmpp_port}, ttl: 300, accept_untrusted_cert: true }}\ndns:\n  zone: contoso.com\n  mode: rfc2136\n  primary: 127.0.0.1:{p}\n  authoritative: [127.0.0.1:{p}, 127.0.0.1:{s}]\n  tsig: {{ name: {KEY_NAME}, algorithm: hmac-sha256, secret_file: '{}' }}\nmanagement:\n  transport: {}\ntimeouts: {{ command_secs: 60, verify_secs: 60, poll_ms: 5 }}\nsites:\n",
            key.display(),
            transport("fe1.contoso.com"),
            p = bind.primary_port,
            s = bind.secondary_port,
        );
        for (si, &(pool_octet, servers)) in sites.iter().enumerate() {
            let k = si + 1;
            y.push_str(&format!(
                "  - name: Site{k}\n    pools:\n      - name: EdgePool{k}\n        fqdn: edgepool{k}.contoso.com\n        version: lync2013\n        srv_priority: {}\n        srv_target: edgepool{k}-xmpp.contoso.com\n        servers:\n",
                k * 10
            ));
            for i in 1..=servers {
                let fqdn = format!("EdgeServer{k}-{i}.contoso.com");
                let ip = if k <= 2 {
                    edge_ip(k as u8, i)
                } else {
                    Ipv4Addr::new(
                        127,
                        60 + pool_octet / 100,
                        (k / 250) as u8,
                        (k % 250) as u8 + 1,
                    )
                };
                y.push_str(&format!(
                    "          - fqdn: {fqdn}\n            external_ipv4: {ip}\n            transport: {}\n",
                    transport(&fqdn)
                ));
            }
        }
        let topology = dir.join("topology.yaml");
        std::fs::write(&topology, &y).map_err(|e| e.to_string())?;
        let (parsed, report) = edgefail::topology::parse(&topology, &y);
        let parsed =
            parsed.ok_or_else(|| format!("the generated topology is invalid: {report:?}"))?;
        let mut estate = edgefail::sim::before_estate(&parsed, "EdgePool1", "fe1.contoso.com");
        estate.replication_lag_reads = 0;
        estate.startup_ms = startup_ms;
        estate
            .delays_ms
            .insert("Stop-CsWindowsService".into(), o.stop_ms);
        estate
            .delays_ms
            .insert("Start-CsWindowsService".into(), o.start_ms);
        let text = serde_json::to_string(&estate).map_err(|e| e.to_string())?;
        std::fs::write(&state, text).map_err(|e| e.to_string())?;
        // A new estate: the stand-in's log and process count start empty.
        for kept in [".log", ".starts"] {
            let path = beside(&state, kept);
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(format!("{}: {e}", path.display()));
                }
                _ => {}
            }
        }
        Ok(Case { topology, state })
    }

    /// "1 (max 1)": PowerShell processes per machine, mean and most.
    fn starts(&self) -> Fallible<String> {
        // The stand-in writes a line with its machine's name per process.
        let text =
            std::fs::read_to_string(beside(&self.state, ".starts")).map_err(|e| e.to_string())?;
        let mut per_machine = std::collections::BTreeMap::<&str, u64>::new();
        for host in text.lines() {
            *per_machine.entry(host).or_default() += 1;
        }
        let counts: Vec<u64> = per_machine.into_values().collect();
        let total: u64 = counts.iter().sum();
        let most = counts.iter().copied().max().unwrap_or(0);
        Ok(format!(
            "{total} for {} machines (most {most})",
            counts.len()
        ))
    }
}

/// The file the stand-in appends beside its state: `<state><suffix>`.
fn beside(state: &Path, suffix: &str) -> PathBuf {
    let mut path = state.as_os_str().to_owned();
    path.push(suffix);
    PathBuf::from(path)
}

/// `edgefail failover` from EdgePool1 to EdgePool2 with JSON output, as
/// the bench runs it (`mode`: --yes or --dry-run).
fn failover(edgefail: &Path, mode: &str, topology: &Path, journal: &Path) -> Command {
    let mut cmd = Command::new(edgefail);
    cmd.args([
        "failover",
        mode,
        "--output",
        "json",
        "--from",
        "EdgePool1",
        "--to",
        "EdgePool2",
    ])
    .arg("-t")
    .arg(topology)
    .arg("--journal")
    .arg(journal);
    cmd
}
