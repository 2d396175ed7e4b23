//! A real BIND 9 for DNS tests: a primary that takes TSIG-signed updates and
//! a secondary fed by NOTIFY + IXFR/AXFR, each `named -g` on its own free
//! port of 127.0.0.1, in its own temp dir, with a key generated per test;
//! lone primaries for other zones; and the DNS part of a topology pointing
//! at them. Only the children started here are ever stopped, by their own
//! handle.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::need;
use super::net::free_port;
use super::topology::{Dns, Topology, Tsig};

/// The zone every test starts from: EdgePool1 carries XMPP federation.
pub const ZONE: &str = "contoso.com";
pub const A_NAME: &str = "xmpp.contoso.com";
pub const SRV_NAME: &str = "_xmpp-server._tcp.contoso.com";
pub const POOL1_IP: &str = "203.0.113.10";
pub const POOL2_IP: &str = "203.0.113.20";

fn zone_text() -> String {
    zone_with(1, POOL1_IP)
}

/// The test zone at `serial`, with the XMPP A record at `a`.
fn zone_with(serial: u32, a: &str) -> String {
    zone_for(serial, a, POOL1_IP, POOL2_IP)
}

/// The test zone with the pools' published addresses `p1` and `p2`; the XMPP
/// A record is at `a`.
fn zone_for(serial: u32, a: &str, p1: &str, p2: &str) -> String {
    format!(
        "$TTL 300\n\
         @ IN SOA ns1.contoso.com. hostmaster.contoso.com. {serial} 3600 600 86400 60\n\
         @ IN NS ns1.contoso.com.\n\
         ns1 IN A 127.0.0.1\n\
         xmpp 300 IN A {a}\n\
         edgepool1-xmpp IN A {p1}\n\
         edgepool2-xmpp IN A {p2}\n\
         _xmpp-server._tcp 300 IN SRV 10 0 5269 edgepool1-xmpp.contoso.com.\n"
    )
}

/// A TSIG key; `secret` is base64.
#[derive(Debug, Clone)]
pub struct Key {
    pub name: String,
    pub algorithm: String,
    pub secret: String,
}

impl Key {
    /// A fresh random key (32 bytes from the OS).
    pub fn generate(name: &str, algorithm: &str) -> Key {
        use base64::Engine as _;
        let mut bytes = [0u8; 32];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut bytes))
            .expect("read /dev/urandom");
        Key {
            name: name.to_string(),
            algorithm: algorithm.to_string(),
            secret: base64::engine::general_purpose::STANDARD.encode(bytes),
        }
    }

    /// `key "name" { ... };` as tsig-keygen writes it.
    pub fn statement(&self) -> String {
        format!(
            "key \"{}\" {{\n\talgorithm {};\n\tsecret \"{}\";\n}};\n",
            self.name, self.algorithm, self.secret
        )
    }

    /// Write the key file with mode 600 (edgefail refuses world-readable keys).
    pub fn write(&self, path: &Path) {
        std::fs::write(path, self.statement()).expect("write key file");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                .expect("chmod key file");
        }
    }
}

/// named.conf for one server of `zone` on 127.0.0.1:`port`, its files in
/// `dir`: `options` adds to the options block, `keys` are key statements,
/// `zone_body` goes inside the zone statement.
fn named_conf(
    dir: &Path,
    port: u16,
    options: &str,
    keys: &str,
    zone: &str,
    zone_body: &str,
) -> String {
    format!(
        "options {{\n directory \"{d}\";\n listen-on port {port} {{ 127.0.0.1; }};\n listen-on-v6 {{ none; }};\n pid-file none;\n session-keyfile none;\n recursion no;\n dnssec-validation no;\n{options}}};\ncontrols {{ }};\n{keys}zone \"{zone}\" {{\n{zone_body}}};\n",
        d = dir.display(),
    )
}

/// One running `named`.
pub struct Named {
    child: Option<Child>,
    pub port: u16,
    dir: PathBuf,
    role: &'static str,
    /// The temp dir this server owns, if it owns one.
    _tmp: Option<tempfile::TempDir>,
}

impl Named {
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("named.log")).unwrap_or_default()
    }

    fn spawn(dir: &Path, conf: &str, port: u16, role: &'static str) -> Named {
        let named = need("named", "bind9");
        let conf_path = dir.join("named.conf");
        std::fs::write(&conf_path, conf).expect("write named.conf");
        let log = std::fs::File::create(dir.join("named.log")).expect("create named.log");
        let child = Command::new(named)
            .arg("-g")
            .arg("-c")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log handle"))
            .stderr(log)
            .spawn()
            .expect("start named");
        Named {
            child: Some(child),
            port,
            dir: dir.to_path_buf(),
            role,
            _tmp: None,
        }
    }

    /// A lone primary for `zone` serving `zone_text`, in nobody's NOTIFY
    /// list, on a free port of 127.0.0.1 (another is tried if that one is
    /// taken), in a new directory under `parent`.
    pub fn lone(parent: &Path, role: &'static str, zone: &str, zone_text: &str) -> Named {
        for attempt in 0..5 {
            let port = free_port();
            let dir = parent.join(format!("{role}{attempt}"));
            std::fs::create_dir_all(&dir).expect("mkdir for named");
            std::fs::write(dir.join("zone.db"), zone_text).expect("write zone");
            let conf = named_conf(
                &dir,
                port,
                " notify no;\n",
                "",
                zone,
                &format!(" type primary;\n file \"{}/zone.db\";\n", dir.display()),
            );
            let mut named = Named::spawn(&dir, &conf, port, role);
            match named.wait_ready(Instant::now() + Duration::from_secs(10)) {
                Ok(()) => return named,
                Err(true) => continue,
                Err(false) => panic!("the {role} BIND did not start (log above)"),
            }
        }
        panic!("the {role} BIND could not find a free port in 5 attempts");
    }

    /// As `lone`, in a temp dir of its own, removed with it.
    pub fn lone_in_temp_dir(role: &'static str, zone: &str, zone_text: &str) -> Named {
        let tmp = tempfile::tempdir().expect("temp dir for named");
        let mut named = Named::lone(tmp.path(), role, zone, zone_text);
        named._tmp = Some(tmp);
        named
    }

    /// Wait for "running" in the log. `Err(true)`: the port was taken (retry).
    fn wait_ready(&mut self, deadline: Instant) -> Result<(), bool> {
        loop {
            let log = self.log();
            if log.contains("address in use") {
                return Err(true);
            }
            if log.lines().any(|l| l.ends_with(" running")) {
                return Ok(());
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                eprintln!("--- {} named exited ({status}); its log:\n{log}", self.role);
                return Err(false);
            }
            if Instant::now() >= deadline {
                eprintln!("--- {} named not ready in time; its log:\n{log}", self.role);
                return Err(false);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Stop this server (its own child only) and wait for it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Named {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!(
                "--- {} named log ({}):\n{}",
                self.role,
                self.addr(),
                self.log()
            );
        }
    }
}

/// A primary and a secondary serving contoso.com.
pub struct Bind {
    pub primary: Named,
    pub secondary: Named,
    /// Allowed to update the zone.
    pub key: Key,
    /// Known to the primary but not allowed to update (-> REFUSED).
    pub other_key: Key,
    pub dir: tempfile::TempDir,
}

impl Bind {
    pub fn start() -> Bind {
        Bind::start_with("hmac-sha256")
    }

    /// Start both servers; the key uses `algorithm`.
    pub fn start_with(algorithm: &str) -> Bind {
        Bind::start_zone(algorithm, &zone_text())
    }

    /// Start both servers with the pools published at `pool1` and `pool2`
    /// (EdgePool1 preferred, the XMPP A record at `pool1`).
    pub fn start_for(pool1: &str, pool2: &str) -> Bind {
        Bind::start_zone("hmac-sha256", &zone_for(1, pool1, pool1, pool2))
    }

    fn start_zone(algorithm: &str, zone: &str) -> Bind {
        let dir = tempfile::tempdir().expect("temp dir");
        let key = Key::generate("edgefail-test", algorithm);
        let other_key = Key::generate("not-allowed", "hmac-sha256");
        for attempt in 0..5 {
            let (pp, sp) = (free_port(), free_port());
            if pp == sp {
                continue;
            }
            let pdir = dir.path().join(format!("primary{attempt}"));
            let sdir = dir.path().join(format!("secondary{attempt}"));
            std::fs::create_dir_all(&pdir).expect("mkdir primary");
            std::fs::create_dir_all(&sdir).expect("mkdir secondary");
            std::fs::write(pdir.join("zone.db"), zone).expect("write zone");
            // The secondary starts from the same data, so it is ready at
            // once; NOTIFY then brings every change over.
            std::fs::write(sdir.join("zone.db"), zone).expect("write zone");
            let pconf = named_conf(
                &pdir,
                pp,
                &format!(
                    " notify explicit;\n also-notify {{ 127.0.0.1 port {sp}; }};\n notify-delay 0;\n allow-transfer {{ 127.0.0.1; }};\n"
                ),
                &format!("{}{}", key.statement(), other_key.statement()),
                ZONE,
                &format!(
                    " type primary;\n file \"{}/zone.db\";\n allow-update {{ key \"{}\"; }};\n",
                    pdir.display(),
                    key.name
                ),
            );
            let sconf = named_conf(
                &sdir,
                sp,
                " notify no;\n",
                "",
                ZONE,
                &format!(
                    " type secondary;\n masterfile-format text;\n primaries {{ 127.0.0.1 port {pp}; }};\n file \"{}/zone.db\";\n",
                    sdir.display()
                ),
            );
            let mut primary = Named::spawn(&pdir, &pconf, pp, "primary");
            let mut secondary = Named::spawn(&sdir, &sconf, sp, "secondary");
            let deadline = Instant::now() + Duration::from_secs(10);
            let p = primary.wait_ready(deadline);
            let s = secondary.wait_ready(deadline);
            match (p, s) {
                (Ok(()), Ok(())) => {
                    return Bind {
                        primary,
                        secondary,
                        key,
                        other_key,
                        dir,
                    };
                }
                (Err(true), _) | (_, Err(true)) => continue,
                _ => panic!("BIND did not start (logs above)"),
            }
        }
        panic!("BIND could not find free ports in 5 attempts");
    }

    /// A third server for contoso.com that is in nobody's NOTIFY list and
    /// holds other data (serial `serial`, A record `a`): one that
    /// disagrees and never catches up.
    pub fn start_rogue(&self, serial: u32, a: &str) -> Named {
        Named::lone(self.dir.path(), "rogue", ZONE, &zone_with(serial, a))
    }

    /// The DNS section for this BIND: RFC 2136 updates to the primary, both
    /// servers authoritative, the allowed key read from a file in `dir`, a
    /// 2 s timeout.
    pub fn dns(&self, dir: &Path) -> Dns {
        Dns {
            mode: Some("rfc2136"),
            primary: Some(self.primary.addr()),
            authoritative: vec![self.primary.addr(), self.secondary.addr()],
            tsig: Some(Tsig::file(&self.key, &dir.join("edgefail.key"))),
            timeout_secs: Some(2),
        }
    }

    /// The DNS tests' topology ([`published`]) pointed at this BIND.
    pub fn topology(&self, dir: &Path) -> Topology {
        published(ZONE).dns(self.dns(dir))
    }

    /// `dig +short` against one server over TCP, no recursion, sorted.
    pub fn dig(&self, port: u16, name: &str, rtype: &str) -> Vec<String> {
        let dig = need("dig", "bind9-dnsutils");
        let out = Command::new(dig)
            .args(["+tcp", "+norec", "+short", "+time=2", "+tries=1"])
            .arg("@127.0.0.1")
            .args(["-p", &port.to_string(), name, rtype])
            .output()
            .expect("run dig");
        assert!(out.status.success(), "dig failed: {out:?}");
        let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect();
        lines.sort();
        lines
    }

    pub fn serial(&self, port: u16) -> u32 {
        let soa = self.dig(port, ZONE, "SOA");
        soa.first()
            .and_then(|l| l.split_whitespace().nth(2))
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no SOA from port {port}: {soa:?}"))
    }

    /// (serial, A, SRV) as one server has them.
    pub fn state(&self, port: u16) -> (u32, Vec<String>, Vec<String>) {
        (
            self.serial(port),
            self.dig(port, A_NAME, "A"),
            self.dig(port, SRV_NAME, "SRV"),
        )
    }

    /// Wait until the secondary has the primary's serial.
    pub fn wait_in_sync(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let want = self.serial(self.primary.port);
            if self.serial(self.secondary.port) == want {
                return;
            }
            assert!(Instant::now() < deadline, "the secondary did not catch up");
            std::thread::sleep(Duration::from_millis(30));
        }
    }

    /// Run nsupdate against the primary with the allowed key.
    pub fn nsupdate(&self, commands: &str) {
        (self.updater())(commands)
    }

    /// nsupdate against the primary with the allowed key, as a function a
    /// test can hand to another thread.
    pub fn updater(&self) -> impl Fn(&str) + Send + Sync + 'static {
        let keyfile = self.dir.path().join("nsupdate.key");
        self.key.write(&keyfile);
        let port = self.primary.port;
        move |commands: &str| run_nsupdate(&keyfile, port, commands)
    }
}

fn run_nsupdate(keyfile: &Path, port: u16, commands: &str) {
    use std::io::Write;
    let nsupdate = need("nsupdate", "bind9-dnsutils");
    let script = format!("server 127.0.0.1 {port}\nzone {ZONE}\n{commands}\nsend\n");
    let mut child = Command::new(nsupdate)
        .arg("-v")
        .arg("-k")
        .arg(keyfile)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start nsupdate");
    let mut stdin = child.stdin.take().expect("nsupdate stdin");
    stdin.write_all(script.as_bytes()).expect("feed nsupdate");
    drop(stdin);
    let out = child.wait_with_output().expect("wait for nsupdate");
    assert!(
        out.status.success(),
        "nsupdate failed:\n{script}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The DNS tests' topology for `domain`: `Topology::new` with SRV targets,
/// the Edge servers published at [`POOL1_IP`] and [`POOL2_IP`] as the zone
/// has them, and a TTL of 120 for the new records.
pub fn published(domain: &str) -> Topology {
    Topology::new(domain)
        .srv_targets()
        .ttl(120)
        .address(&format!("EdgeServer1.{domain}"), POOL1_IP)
        .address(&format!("EdgeServer2.{domain}"), POOL2_IP)
}
