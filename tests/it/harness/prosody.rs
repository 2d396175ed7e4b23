//! A real Prosody (the Debian package) for the XMPP tests: its own config,
//! data dir and self-signed certificates in a temp dir, server-to-server on
//! 127.0.0.1 and a free port (another if that one is taken), killed by PID
//! when dropped.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use super::need;
use super::net::free_port;

/// One VirtualHost and the DNS names its certificate carries.
#[derive(Debug, Clone)]
pub struct VHost {
    pub domain: String,
    pub cert_names: Vec<String>,
}

impl VHost {
    pub fn new(domain: &str, cert_names: &[&str]) -> VHost {
        VHost {
            domain: domain.into(),
            cert_names: cert_names.iter().map(|s| s.to_string()).collect(),
        }
    }
}

pub struct Prosody {
    child: Child,
    dir: tempfile::TempDir,
    pub addr: SocketAddr,
}

fn lua_string(s: &Path) -> String {
    format!("{:?}", s.display().to_string())
}

impl Prosody {
    /// Start Prosody serving `hosts` and wait until its server-to-server
    /// port accepts connections; if the free port found was taken
    /// meanwhile, start again on another.
    pub fn start(hosts: &[VHost]) -> Prosody {
        Prosody::start_on(hosts, &["127.0.0.1"])
    }

    /// As [`Prosody::start`], listening on each of `interfaces` (loopback
    /// addresses; the first must be 127.0.0.1) at the same port: one server
    /// standing in for Edge servers of several pools.
    pub fn start_on(hosts: &[VHost], interfaces: &[&str]) -> Prosody {
        for _attempt in 0..5 {
            if let Some(p) = Prosody::try_start(hosts, interfaces) {
                return p;
            }
        }
        panic!("prosody found its port taken 5 times");
    }

    /// `None`: the port was taken.
    fn try_start(hosts: &[VHost], interfaces: &[&str]) -> Option<Prosody> {
        let prosody = need("prosody", "prosody");
        let dir = tempfile::tempdir().expect("temp dir for prosody");
        let root = dir.path();
        std::fs::create_dir_all(root.join("data")).expect("data dir");
        std::fs::create_dir_all(root.join("certs")).expect("certs dir");
        let port = free_port();
        let mut vhosts = String::new();
        for h in hosts {
            let ck = rcgen::generate_simple_self_signed(h.cert_names.clone())
                .expect("make a self-signed certificate");
            let cert = root.join(format!("{}.crt", h.domain));
            let key = root.join(format!("{}.key", h.domain));
            std::fs::write(&cert, ck.cert.pem()).expect("write certificate");
            std::fs::write(&key, ck.signing_key.serialize_pem()).expect("write key");
            vhosts.push_str(&format!(
                "VirtualHost {:?}\n  ssl = {{ certificate = {}; key = {} }}\n",
                h.domain,
                lua_string(&cert),
                lua_string(&key)
            ));
        }
        let config = format!(
            r#"-- written by the edgefail test harness
pidfile = {pid}
daemonize = false
run_as_root = true
data_path = {data}
certificates = {certs}
interfaces = {{ {interfaces} }}
local_interfaces = {{ "127.0.0.1" }}
s2s_ports = {{ {port} }}
s2s_direct_tls_ports = {{ }}
c2s_direct_tls_ports = {{ }}
modules_enabled = {{ "tls"; "dialback"; "disco"; }}
modules_disabled = {{ "c2s"; "offline"; }}
s2s_require_encryption = true
s2s_secure_auth = false
authentication = "internal_hashed"
storage = "internal"
log = {{ debug = {log} }}
{vhosts}"#,
            pid = lua_string(&root.join("prosody.pid")),
            data = lua_string(&root.join("data")),
            certs = lua_string(&root.join("certs")),
            log = lua_string(&root.join("prosody.log")),
            interfaces = interfaces
                .iter()
                .map(|i| format!("{i:?}"))
                .collect::<Vec<_>>()
                .join(", "),
        );
        let config_path = root.join("prosody.cfg.lua");
        std::fs::write(&config_path, config).expect("write prosody config");
        let out = std::fs::File::create(root.join("stdout.txt")).expect("stdout file");
        let err = std::fs::File::create(root.join("stderr.txt")).expect("stderr file");
        let child = Command::new(prosody)
            .arg("--config")
            .arg(&config_path)
            .arg("-F")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("start prosody");
        let mut p = Prosody {
            child,
            dir,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        };
        p.wait_ready(Duration::from_secs(20)).then_some(p)
    }

    /// The two hosts the XMPP tests use: contoso.com with a certificate
    /// naming it, fabrikam.com with one that names another host only.
    pub fn standard_hosts() -> Vec<VHost> {
        vec![
            VHost::new("contoso.com", &["contoso.com", "xmpp.contoso.com"]),
            VHost::new("fabrikam.com", &["edge.fabrikam.net"]),
        ]
    }

    /// One Prosody with [`Prosody::standard_hosts`], shared by the tests
    /// that run at the same time (two cores: start it once), stopped when
    /// the last of them lets go.
    pub fn shared() -> Arc<Prosody> {
        static SHARED: Mutex<Weak<Prosody>> = Mutex::new(Weak::new());
        let mut slot = SHARED.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = slot.upgrade() {
            return p;
        }
        let p = Arc::new(Prosody::start(&Prosody::standard_hosts()));
        *slot = Arc::downgrade(&p);
        p
    }

    /// Wait until Prosody says it listens on its port and a connection is
    /// accepted there; `false` if it says the port is in use.
    fn wait_ready(&mut self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        // With several interfaces the line lists them in any order.
        let address = format!("[127.0.0.1]:{}", self.addr.port());
        let listening = |log: &str| {
            log.lines()
                .any(|l| l.contains("Activated service 's2s' on") && l.contains(&address))
        };
        loop {
            let log =
                std::fs::read_to_string(self.dir.path().join("prosody.log")).unwrap_or_default();
            if log.contains("Failed to open server port") {
                // Drop stops this one; the caller starts another.
                return false;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "prosody exited before it was ready ({status})\n{}",
                    self.log()
                );
            }
            if listening(&log)
                && TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_ok()
            {
                return true;
            }
            if Instant::now() >= deadline {
                panic!(
                    "prosody did not listen on {} within {limit:?}\n{}",
                    self.addr,
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Print this server's log if the test fails while the guard lives.
    pub fn log_on_panic(&self) -> LogOnPanic<'_> {
        LogOnPanic(self)
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn cert_path(&self, domain: &str) -> PathBuf {
        self.dir.path().join(format!("{domain}.crt"))
    }

    /// Its stdout, stderr and log file, for failure messages.
    pub fn log(&self) -> String {
        let read =
            |name: &str| std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
        format!(
            "--- prosody stdout\n{}\n--- prosody stderr\n{}\n--- prosody.log (last 60 lines)\n{}",
            read("stdout.txt"),
            read("stderr.txt"),
            read("prosody.log")
                .lines()
                .rev()
                .take(60)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n")
        )
    }
}

pub struct LogOnPanic<'a>(&'a Prosody);

impl Drop for LogOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.0.log());
        }
    }
}

impl Drop for Prosody {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.log());
        }
        // Only our own child, by its PID.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
