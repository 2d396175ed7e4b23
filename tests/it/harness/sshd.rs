//! A real OpenSSH server on loopback for the ssh transport's tests: its own
//! directory, host key, authorized client key and config, listening on a few
//! free ports of 127.0.0.1 (one per simulated machine).

use std::io::Read;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::need;
use super::net::free_port;
use super::standin::SshEndpoints;

pub struct Sshd {
    dir: tempfile::TempDir,
    child: Child,
    /// One listening port per simulated machine.
    pub ports: Vec<u16>,
    /// The user the tests log in as (whoever runs them).
    pub user: String,
    /// A key in authorized_keys.
    pub client_key: PathBuf,
    /// A key the server does not know.
    pub stranger_key: PathBuf,
    /// `[127.0.0.1]:PORT <host key>` for every port.
    pub known_hosts: PathBuf,
    host_key_line: String,
    log: PathBuf,
}

#[track_caller]
fn keygen(path: &Path) {
    let keygen = need("ssh-keygen", "openssh-client");
    let out = Command::new(keygen)
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "edgefail-test", "-f"])
        .arg(path)
        .output()
        .expect("run ssh-keygen");
    assert!(
        out.status.success(),
        "ssh-keygen -f {} failed: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// "ssh-ed25519 AAAA..." without the comment.
fn public_key(path: &Path) -> String {
    let text = std::fs::read_to_string(path.with_extension("pub")).expect("read public key");
    text.split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

fn current_user() -> String {
    let out = Command::new("id").arg("-un").output().expect("run id -un");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

impl Sshd {
    /// Start sshd listening on `listeners` ports; fails the test with sshd's
    /// log if it does not come up.
    #[track_caller]
    pub fn start(listeners: usize) -> Sshd {
        let sshd = need("sshd", "openssh-server");
        need("ssh", "openssh-client");
        // sshd refuses to start without its privilege separation directory.
        if let Err(e) = std::fs::create_dir_all("/run/sshd") {
            panic!(
                "sshd needs the directory /run/sshd, which cannot be made ({e}): create it as root (mkdir -p /run/sshd)"
            );
        }
        // A port found free may be taken before sshd binds it: try again.
        let mut failures = String::new();
        for _attempt in 0..5 {
            match Sshd::try_start(&sshd, listeners) {
                Ok(server) => return server,
                Err((why, log)) if log.contains("Address already in use") => {
                    failures.push_str(&format!("{why}\n{log}\n"));
                }
                Err((why, log)) => panic!("sshd did not start: {why}\n--- sshd log\n{log}"),
            }
        }
        panic!("sshd did not start after 5 attempts:\n{failures}");
    }

    fn try_start(sshd: &Path, listeners: usize) -> Result<Sshd, (String, String)> {
        let dir = tempfile::tempdir().expect("temp dir");
        let host_key = dir.path().join("host_ed25519");
        let client_key = dir.path().join("client_ed25519");
        let stranger_key = dir.path().join("stranger_ed25519");
        keygen(&host_key);
        keygen(&client_key);
        keygen(&stranger_key);
        let authorized = dir.path().join("authorized_keys");
        std::fs::write(&authorized, format!("{}\n", public_key(&client_key)))
            .expect("write authorized_keys");
        let log = dir.path().join("sshd.log");
        let host_key_line = public_key(&host_key);

        let ports: Vec<u16> = (0..listeners).map(|_| free_port()).collect();
        let mut config = String::new();
        for port in &ports {
            config.push_str(&format!("ListenAddress 127.0.0.1:{port}\n"));
        }
        config.push_str(&format!(
            "HostKey {host}\nAuthorizedKeysFile {auth}\nPidFile {pid}\n\
             StrictModes no\nUsePAM no\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\nPubkeyAuthentication yes\n\
             PermitRootLogin yes\nLogLevel VERBOSE\nMaxStartups 100\nMaxSessions 100\n\
             X11Forwarding no\nAllowTcpForwarding no\nPrintMotd no\n",
            host = host_key.display(),
            auth = authorized.display(),
            pid = dir.path().join("sshd.pid").display(),
        ));
        let config_path = dir.path().join("sshd_config");
        std::fs::write(&config_path, config).expect("write sshd_config");
        let known_hosts = dir.path().join("known_hosts");
        let lines: String = ports
            .iter()
            .map(|p| format!("[127.0.0.1]:{p} {host_key_line}\n"))
            .collect();
        std::fs::write(&known_hosts, lines).expect("write known_hosts");
        let child = Command::new(sshd)
            .arg("-D")
            .arg("-f")
            .arg(&config_path)
            .arg("-E")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start sshd");
        let mut server = Sshd {
            dir,
            child,
            ports,
            user: current_user(),
            client_key,
            stranger_key,
            known_hosts,
            host_key_line,
            log,
        };
        match server.wait_ready() {
            Ok(()) => Ok(server),
            // Drop stops this sshd; the log is read first.
            Err(why) => Err((why, server.log_text())),
        }
    }

    /// Every port answers with an SSH banner, within a deadline.
    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        for &port in &self.ports {
            loop {
                if let Ok(Some(status)) = self.child.try_wait() {
                    return Err(format!("sshd exited early ({status})"));
                }
                if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) {
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                    let mut banner = [0u8; 7];
                    if stream.read_exact(&mut banner).is_ok() && &banner == b"SSH-2.0" {
                        break;
                    }
                }
                if Instant::now() > deadline {
                    return Err(format!("port {port} gave no SSH banner within 10s"));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Ok(())
    }

    /// Where an estate's machines are reached: one port each.
    pub fn endpoints(&self) -> SshEndpoints {
        SshEndpoints {
            ports: self.ports.clone(),
            user: self.user.clone(),
            identity_file: self.client_key.clone(),
            known_hosts: self.known_hosts.clone(),
        }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Log lines containing `needle`.
    pub fn log_count(&self, needle: &str) -> usize {
        self.log_text()
            .lines()
            .filter(|l| l.contains(needle))
            .count()
    }

    /// Successful logins so far.
    pub fn logins(&self) -> usize {
        self.log_count("Accepted publickey for ")
    }

    /// Sessions whose connection has closed so far.
    pub fn logouts(&self) -> usize {
        self.log_count("Disconnected from user ")
    }

    /// Wait until every accepted connection has closed, i.e. no client (a
    /// lingering ControlMaster included) still holds one.
    pub fn wait_all_closed(&self, within: Duration) -> Result<(), String> {
        let deadline = Instant::now() + within;
        loop {
            let (logins, logouts) = (self.logins(), self.logouts());
            if logouts >= logins {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{logins} login(s) but only {logouts} disconnect(s) after {within:?}"
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A known_hosts file (in the server's directory) with these lines.
    pub fn known_hosts_with(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).expect("write known_hosts");
        path
    }

    /// A known_hosts that records a different key for every port, as if the
    /// server had been replaced.
    pub fn changed_known_hosts(&self) -> PathBuf {
        let other = self.dir.path().join("other_host_ed25519");
        if !other.exists() {
            keygen(&other);
        }
        let key = public_key(&other);
        assert_ne!(key, self.host_key_line);
        let lines: String = self
            .ports
            .iter()
            .map(|p| format!("[127.0.0.1]:{p} {key}\n"))
            .collect();
        self.known_hosts_with("changed_known_hosts", &lines)
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        // Only the sshd this harness started, by its own handle.
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- sshd log ({})\n{}", self.log.display(), self.log_text());
        }
    }
}
