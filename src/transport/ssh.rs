//! `ssh`: the system OpenSSH client to the machine, PowerShell on the far side.
//!
//! The remote command is `<remote_program> -NoProfile -NonInteractive
//! -EncodedCommand <base64>`: every character of it is a letter, digit or one
//! of `+/=-` apart from the configured program, so neither cmd.exe (Windows
//! OpenSSH's default shell) nor a POSIX shell can re-quote anything.
//!
//! Commands a run sends to one host share one connection (ControlMaster) whose
//! socket lives in a private directory made for this process; when the last
//! transport goes away the masters are told to exit and the directory is
//! removed, so no ssh process outlives edgefail by more than its ControlPersist.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::process::Command;

use super::{Output, Transport, TransportError};
use crate::powershell::Script;
use crate::topology::SshSpec;

/// ssh's own failures (as opposed to the remote command's) end with this code.
const SSH_FAILED: i32 = 255;

/// cmd.exe refuses longer command lines; the script never gets that long, but
/// a clear error beats a confusing one from the far side.
const MAX_REMOTE_COMMAND: usize = 8191;

const DEFAULT_CONNECT_TIMEOUT_SECS: u64 = 10;
const DEFAULT_CONTROL_PERSIST_SECS: u64 = 30;

/// Unix socket paths are limited to about 104 bytes (sun_path).
const MAX_SOCKET_PATH: usize = 100;

/// What went wrong on ssh's side, for callers that react to the kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SshFailure {
    /// The server refused every key offered (Permission denied).
    Authentication,
    /// The server's key is not in known_hosts.
    HostKeyUnknown,
    /// The server's key differs from the one known_hosts records.
    HostKeyChanged,
    /// No connection: refused, timed out, no route, name not resolved.
    Unreachable,
    /// Anything else ssh reported with exit code 255.
    Other,
}

#[derive(Debug)]
pub struct Ssh {
    program: String,
    host: String,
    port: Option<u16>,
    user: Option<String>,
    identity_file: Option<PathBuf>,
    known_hosts: Option<PathBuf>,
    connect_timeout_secs: u64,
    remote_program: String,
    accept_new_host_keys: bool,
    /// Connection reuse, when on.
    control: Option<Control>,
}

#[derive(Debug)]
struct Control {
    dir: Arc<ControlDir>,
    /// This transport's socket name inside the directory.
    name: String,
    persist_secs: u64,
}

impl Ssh {
    /// The transport of one long session: a connection of its own, no
    /// sharing (nothing else would use it).
    pub fn for_session(spec: &SshSpec) -> Ssh {
        Ssh::new(&SshSpec {
            control_persist_secs: Some(0),
            ..spec.clone()
        })
    }

    pub fn new(spec: &SshSpec) -> Ssh {
        let default_persist = if crate::platform::SSH_CONNECTION_SHARING {
            DEFAULT_CONTROL_PERSIST_SECS
        } else {
            0
        };
        let persist_secs = spec.control_persist_secs.unwrap_or(default_persist);
        let control = (persist_secs > 0).then(|| {
            let dir = ControlDir::shared();
            let name = format!("c{}", dir.next.fetch_add(1, Ordering::Relaxed));
            Control {
                dir,
                name,
                persist_secs,
            }
        });
        Ssh {
            program: spec.ssh_program.clone().unwrap_or_else(|| "ssh".into()),
            host: spec.host.clone(),
            port: spec.port,
            user: spec.user.clone(),
            identity_file: spec.identity_file.clone(),
            known_hosts: spec.known_hosts.clone(),
            connect_timeout_secs: spec
                .connect_timeout_secs
                .unwrap_or(DEFAULT_CONNECT_TIMEOUT_SECS),
            remote_program: spec
                .remote_program
                .clone()
                .unwrap_or_else(|| "powershell.exe".into()),
            accept_new_host_keys: spec.accept_new_host_keys,
            control,
        }
    }

    /// "127.0.0.1:2222", "[2001:db8::1]:22" for messages.
    fn address(&self) -> String {
        let port = self.port.unwrap_or(22);
        if self.host.contains(':') {
            format!("[{}]:{port}", self.host)
        } else {
            format!("{}:{port}", self.host)
        }
    }

    fn target(&self) -> String {
        match &self.user {
            Some(user) => format!("{user}@{}", self.address()),
            None => self.address(),
        }
    }

    /// The control socket's path, when reuse is on and the directory exists.
    fn control_path(&self) -> Option<PathBuf> {
        let control = self.control.as_ref()?;
        Some(control.dir.path()?.join(&control.name))
    }

    /// Every argument before the remote command.
    fn options(&self, control_path: Option<&Path>) -> Vec<OsString> {
        let mut args: Vec<OsString> = Vec::new();
        let mut opt = |value: String| {
            args.push("-o".into());
            args.push(value.into());
        };
        opt("BatchMode=yes".into());
        opt("LogLevel=ERROR".into());
        opt(format!(
            "StrictHostKeyChecking={}",
            if self.accept_new_host_keys {
                "accept-new"
            } else {
                "yes"
            }
        ));
        // Left on, OpenSSH may add keys the server offers to known_hosts; the
        // file must change only when the operator changes it.
        opt("UpdateHostKeys=no".into());
        if let Some(file) = &self.known_hosts {
            opt(format!("UserKnownHostsFile={}", ssh_path(file)));
        }
        opt(format!("ConnectTimeout={}", self.connect_timeout_secs));
        if let Some(file) = &self.identity_file {
            opt(format!("IdentityFile={}", ssh_path(file)));
            opt("IdentitiesOnly=yes".into());
        }
        // An Edge server sits in the perimeter: lend it nothing.
        opt("ForwardAgent=no".into());
        opt("ForwardX11=no".into());
        opt("ClearAllForwardings=yes".into());
        match (&self.control, control_path) {
            (Some(control), Some(path)) => {
                opt("ControlMaster=auto".into());
                opt(format!("ControlPath={}", ssh_path(path)));
                opt(format!("ControlPersist={}s", control.persist_secs));
            }
            // Also overrides a ControlMaster in the user's ssh_config.
            _ => {
                opt("ControlMaster=no".into());
                opt("ControlPath=none".into());
            }
        }
        args.push("-T".into());
        if let Some(user) = &self.user {
            args.push("-l".into());
            args.push(user.into());
        }
        if let Some(port) = self.port {
            args.push("-p".into());
            args.push(port.to_string().into());
        }
        args.push("--".into());
        args.push(self.host.clone().into());
        args
    }

    /// The command line the far side's shell runs.
    fn remote_command(&self, script: &Script) -> Result<String, TransportError> {
        let mut command = self.remote_program.clone();
        for arg in script.args() {
            command.push(' ');
            command.push_str(&arg);
        }
        if command.len() > MAX_REMOTE_COMMAND {
            return Err(TransportError::Other(format!(
                "the {} script is {} characters once encoded, more than the {MAX_REMOTE_COMMAND} a Windows command line holds",
                script.action,
                command.len()
            )));
        }
        Ok(command)
    }

    /// Turn ssh's own failure (exit 255) into an error that says which.
    fn failure(&self, stderr: &str) -> TransportError {
        let kind = classify(stderr);
        let said = what_ssh_said(stderr, kind);
        let known_hosts = match &self.known_hosts {
            Some(file) => format!("known_hosts {}", file.display()),
            None => "the default known_hosts".into(),
        };
        let message = match kind {
            SshFailure::Authentication => format!(
                "authentication failed for {} ({}): {said}",
                self.target(),
                match &self.identity_file {
                    Some(file) => format!("identity {}", file.display()),
                    None => "ssh's default identities".into(),
                }
            ),
            SshFailure::HostKeyUnknown => format!(
                "host key verification failed for {} ({known_hosts}): the server's key is unknown; check its fingerprint with the server's administrator and add it to known_hosts",
                self.address()
            ),
            SshFailure::HostKeyChanged => format!(
                "host key verification failed for {} ({known_hosts}): the server's key has CHANGED since it was recorded ({said}); check it and update known_hosts",
                self.address()
            ),
            SshFailure::Unreachable => format!("cannot reach {}: {said}", self.address()),
            SshFailure::Other if said.is_empty() => format!(
                "connection to {} failed (ssh exited {SSH_FAILED} without a message)",
                self.target()
            ),
            SshFailure::Other => format!("connection to {} failed: {said}", self.target()),
        };
        TransportError::Ssh { kind, message }
    }
}

impl super::Launch for Ssh {
    fn describe(&self) -> String {
        format!("ssh {}", self.target())
    }

    fn command(&self, script: &Script) -> Result<Command, TransportError> {
        let remote = self.remote_command(script)?;
        let control_path = self.control_path();
        let mut cmd = Command::new(&self.program);
        cmd.args(self.options(control_path.as_deref())).arg(remote);
        Ok(cmd)
    }

    fn program(&self) -> &str {
        &self.program
    }

    fn not_found_hint(&self) -> &'static str {
        " (is the OpenSSH client installed? set `ssh_program` in the topology's transport)"
    }

    fn failure(&self, code: Option<i32>, stderr: &str) -> Option<TransportError> {
        (code == Some(SSH_FAILED)).then(|| self.failure(stderr))
    }

    fn clean_stderr(&self, stderr: &str) -> String {
        without_mux_notices(stderr)
    }

    fn connect_allowance(&self) -> Duration {
        Duration::from_secs(self.connect_timeout_secs)
    }
}

#[async_trait]
impl Transport for Ssh {
    fn describe(&self) -> String {
        super::Launch::describe(self)
    }

    async fn run(&self, script: &Script, timeout: Duration) -> Result<Output, TransportError> {
        super::run_alone(self, script, timeout).await
    }
}

impl Drop for Ssh {
    /// Tell this host's master to exit now rather than at ControlPersist's
    /// end, so edgefail leaves no ssh process behind.
    fn drop(&mut self) {
        let Some(path) = self.control_path() else {
            return;
        };
        if !path.exists() {
            return;
        }
        let mut args: Vec<OsString> = vec![
            "-o".into(),
            "BatchMode=yes".into(),
            "-o".into(),
            "LogLevel=QUIET".into(),
            "-o".into(),
            format!("ControlPath={}", ssh_path(&path)).into(),
            "-O".into(),
            "exit".into(),
            "--".into(),
        ];
        args.push(self.host.clone().into());
        let child = std::process::Command::new(&self.program)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        if let Ok(mut child) = child {
            let deadline = Instant::now() + Duration::from_secs(3);
            loop {
                match child.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) if Instant::now() >= deadline => {
                        // Our own `ssh -O exit` child, by its handle.
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                    Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        }
        // The master removes its socket as it exits.
        let deadline = Instant::now() + Duration::from_secs(2);
        while path.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        if path.exists() {
            tracing::warn!(
                "the ssh connection to {} did not close; it ends by itself after {}s idle",
                self.address(),
                self.control.as_ref().map_or(0, |c| c.persist_secs)
            );
        }
    }
}

/// The private directory holding this process's control sockets, shared by
/// every ssh transport alive at the same time.
#[derive(Debug)]
struct ControlDir {
    /// Made on first use, so commands that never connect leave no trace;
    /// `None` when it could not be made (then each command connects anew).
    path: OnceLock<Option<PathBuf>>,
    next: AtomicUsize,
}

static SHARED: Mutex<Weak<ControlDir>> = Mutex::new(Weak::new());

impl ControlDir {
    fn shared() -> Arc<ControlDir> {
        let mut shared = SHARED
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(dir) = shared.upgrade() {
            return dir;
        }
        let dir = Arc::new(ControlDir {
            path: OnceLock::new(),
            next: AtomicUsize::new(0),
        });
        *shared = Arc::downgrade(&dir);
        dir
    }

    fn path(&self) -> Option<&Path> {
        self.path
            .get_or_init(|| match make_private_dir() {
                Ok(path) => Some(path),
                Err(e) => {
                    tracing::warn!(
                        "cannot make a directory for ssh control sockets ({e}); every command opens its own connection"
                    );
                    None
                }
            })
            .as_deref()
    }
}

impl Drop for ControlDir {
    fn drop(&mut self) {
        if let Some(Some(path)) = self.path.get() {
            // Not remove_dir_all: a socket still there means a master still
            // runs, and unlinking it would only hide that.
            if let Err(e) = std::fs::remove_dir(path) {
                tracing::debug!("cannot remove {}: {e}", path.display());
            }
        }
    }
}

/// A new directory only this user can enter, short enough that socket paths
/// inside it fit in sun_path.
fn make_private_dir() -> std::io::Result<PathBuf> {
    let mut base = std::env::temp_dir();
    // Room for "/efssh-<pid>-<n>/c<k>".
    if base.as_os_str().len() + 40 > MAX_SOCKET_PATH {
        base = crate::platform::short_temp_dir();
    }
    let pid = std::process::id();
    let mut last = None;
    for attempt in 0..100u32 {
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = base.join(format!("efssh-{pid}-{:x}", stamp ^ attempt));
        match crate::platform::create_private_dir(&path) {
            Ok(()) => return Ok(path),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no free name")))
}

/// A path as an `-o` value that OpenSSH reads back exactly: always in
/// double quotes (ssh splits an unquoted value at whitespace and reads `#`,
/// quotes and backslashes specially), with `\\` and `"` escaped as ssh's
/// argument splitter expects, and `%` doubled (ssh expands `%` tokens in
/// these options). Line breaks and NUL cannot be passed: validate refuses
/// them. A leading `~` is still the home directory, as in ssh_config.
fn ssh_path(path: &Path) -> String {
    let mut out = String::from("\"");
    for c in path.to_string_lossy().chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '%' => out.push_str("%%"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The remote command's stderr without ssh's own notices about connection
/// sharing (two commands racing to start a master), which would otherwise
/// be read as part of PowerShell's error message.
fn without_mux_notices(stderr: &str) -> String {
    if !stderr.contains("ControlSocket ") && !stderr.contains("mux_client_") {
        return stderr.to_string();
    }
    stderr
        .split_inclusive('\n')
        .filter(|line| {
            !(line.starts_with("ControlSocket ") && line.contains("disabling multiplexing")
                || line.starts_with("mux_client_"))
        })
        .collect()
}

/// Which failure ssh's stderr describes.
pub fn classify(stderr: &str) -> SshFailure {
    let has = |needle: &str| stderr.contains(needle);
    if has("REMOTE HOST IDENTIFICATION HAS CHANGED") || has("Host key for ") && has("has changed") {
        SshFailure::HostKeyChanged
    } else if has("Host key verification failed") || has("host key is known for") {
        SshFailure::HostKeyUnknown
    } else if has("Permission denied") || has("Too many authentication failures") {
        SshFailure::Authentication
    } else if [
        "Connection refused",
        "Connection timed out",
        "Operation timed out",
        "No route to host",
        "Network is unreachable",
        "Could not resolve hostname",
        "Name or service not known",
        "Temporary failure in name resolution",
        "Connection reset",
        "Connection closed by",
        "kex_exchange_identification",
    ]
    .iter()
    .any(|n| has(n))
    {
        SshFailure::Unreachable
    } else {
        SshFailure::Other
    }
}

/// The line of ssh's stderr that tells the operator the most, printable.
fn what_ssh_said(stderr: &str, kind: SshFailure) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("@@@"))
        .collect();
    let pick = match kind {
        // Where the recorded key is: the line to edit.
        SshFailure::HostKeyChanged => lines
            .iter()
            .find(|l| l.starts_with("Offending "))
            .or_else(|| lines.last()),
        SshFailure::Authentication => lines.iter().find(|l| l.contains("Permission denied")),
        SshFailure::Unreachable => lines.last(),
        _ => lines.last(),
    }
    .or_else(|| lines.last());
    let line = pick.copied().unwrap_or_default();
    crate::names::printable(line.strip_prefix("ssh: ").unwrap_or(line))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> SshSpec {
        SshSpec {
            host: "edge2.contoso.com".into(),
            port: Some(2222),
            user: Some("admin".into()),
            identity_file: Some("/keys/edge 2%h".into()),
            known_hosts: Some("/keys/known_hosts".into()),
            control_persist_secs: Some(0),
            ..SshSpec::default()
        }
    }

    fn strings(args: &[OsString]) -> Vec<String> {
        args.iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn options_are_non_interactive_strict_and_end_with_the_host() {
        let ssh = Ssh::new(&spec());
        let args = strings(&ssh.options(None));
        for want in [
            "BatchMode=yes",
            "StrictHostKeyChecking=yes",
            "UpdateHostKeys=no",
            "UserKnownHostsFile=\"/keys/known_hosts\"",
            "IdentityFile=\"/keys/edge 2%%h\"",
            "IdentitiesOnly=yes",
            "ConnectTimeout=10",
            "ControlMaster=no",
            "LogLevel=ERROR",
        ] {
            assert!(args.contains(&want.to_string()), "{want} missing: {args:?}");
        }
        assert_eq!(
            &args[args.len() - 7..],
            ["-T", "-l", "admin", "-p", "2222", "--", "edge2.contoso.com"]
        );
    }

    #[test]
    fn reuse_options_name_the_socket() {
        let ssh = Ssh::new(&SshSpec {
            control_persist_secs: Some(5),
            ..spec()
        });
        let args = strings(&ssh.options(Some(Path::new("/tmp/efssh-1-2/c0"))));
        assert!(args.contains(&"ControlMaster=auto".to_string()));
        assert!(args.contains(&"ControlPath=\"/tmp/efssh-1-2/c0\"".to_string()));
        assert!(args.contains(&"ControlPersist=5s".to_string()));
    }

    #[test]
    fn remote_command_is_the_program_and_the_encoded_script() {
        let ssh = Ssh::new(&spec());
        let script = crate::powershell::services_start(None);
        let command = ssh.remote_command(&script).unwrap();
        assert_eq!(
            command,
            format!(
                "powershell.exe -NoProfile -NonInteractive -EncodedCommand {}",
                script.encoded()
            )
        );
        assert!(
            command
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || " .-+/=".contains(c))
        );
    }

    #[test]
    fn ssh_failures_are_told_apart() {
        assert_eq!(
            classify("root@127.0.0.1: Permission denied (publickey).\r\n"),
            SshFailure::Authentication
        );
        assert_eq!(
            classify(
                "No ED25519 host key is known for [127.0.0.1]:2222 and you have requested strict checking.\r\nHost key verification failed.\r\n"
            ),
            SshFailure::HostKeyUnknown
        );
        assert_eq!(
            classify(
                "@@@@@@@\r\n@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\r\nOffending ED25519 key in /k:1\r\nHost key verification failed.\r\n"
            ),
            SshFailure::HostKeyChanged
        );
        assert_eq!(
            classify("ssh: connect to host 127.0.0.1 port 1: Connection refused\r\n"),
            SshFailure::Unreachable
        );
        assert_eq!(
            classify(
                "ssh: Could not resolve hostname nowhere.invalid: Name or service not known\r\n"
            ),
            SshFailure::Unreachable
        );
        assert_eq!(classify("something new\n"), SshFailure::Other);
    }

    #[test]
    fn messages_name_the_host_port_and_what_to_do() {
        let ssh = Ssh::new(&spec());
        let e = ssh.failure("@@@\r\n@ WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED! @\r\nOffending ED25519 key in /keys/known_hosts:3\r\nHost key verification failed.\r\n");
        let text = e.to_string();
        assert!(text.starts_with("ssh: host key verification failed for edge2.contoso.com:2222 (known_hosts /keys/known_hosts): the server's key has CHANGED"), "{text}");
        assert!(
            text.contains("Offending ED25519 key in /keys/known_hosts:3"),
            "{text}"
        );
        assert!(text.ends_with("update known_hosts"), "{text}");

        let e =
            ssh.failure("ssh: connect to host edge2.contoso.com port 2222: Connection refused\r\n");
        assert_eq!(
            e.to_string(),
            "ssh: cannot reach edge2.contoso.com:2222: connect to host edge2.contoso.com port 2222: Connection refused"
        );
        let e = ssh.failure("admin@edge2.contoso.com: Permission denied (publickey).\r\n");
        assert_eq!(
            e.to_string(),
            "ssh: authentication failed for admin@edge2.contoso.com:2222 (identity /keys/edge 2%h): admin@edge2.contoso.com: Permission denied (publickey)."
        );
        assert_eq!(
            ssh.failure("").to_string(),
            "ssh: connection to admin@edge2.contoso.com:2222 failed (ssh exited 255 without a message)"
        );
    }

    #[test]
    fn sharing_notices_are_not_part_of_powershell_errors() {
        assert_eq!(
            without_mux_notices(
                "ControlSocket /tmp/efssh-1-2/c0 already exists, disabling multiplexing\r\nStop-CsWindowsService : denied\r\n"
            ),
            "Stop-CsWindowsService : denied\r\n"
        );
        assert_eq!(without_mux_notices("plain\n"), "plain\n");
    }

    /// What `ssh -G` (OpenSSH's own reading of the options) says a path
    /// option is, for paths that quoting, `#`, `%` and backslashes would
    /// otherwise change.
    #[test]
    fn openssh_reads_paths_back_exactly() {
        let hostile = [
            "/k/plain",
            "/k/with space/id",
            "/k/quote\"d/id",
            "/k/single'quote",
            "/k/back\\slash\\\\two",
            "/k/percent%h%%",
            "/k/hash#not a comment",
            "/k/trailing space ",
            "/k/tab\there",
            "/k/\u{e9}t\u{e9}",
        ];
        for path in hostile {
            let ssh = Ssh::new(&SshSpec {
                known_hosts: Some(path.into()),
                identity_file: Some(path.into()),
                ..spec()
            });
            let out = std::process::Command::new("ssh")
                .arg("-G")
                .args(ssh.options(None))
                .output()
                .expect("ssh -G (install openssh-client)");
            assert!(
                out.status.success(),
                "{path:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let text = String::from_utf8_lossy(&out.stdout);
            let value = |key: &str| {
                text.lines()
                    .find_map(|l| l.strip_prefix(key))
                    .map(str::to_string)
                    .unwrap_or_default()
            };
            // known_hosts is printed expanded; the identity before its
            // `%` tokens are expanded (at load time, `%%` -> `%`).
            assert_eq!(value("userknownhostsfile "), path, "{path:?}");
            assert_eq!(value("identityfile "), path.replace('%', "%%"), "{path:?}");
        }
    }

    #[test]
    fn ipv6_addresses_are_bracketed() {
        let ssh = Ssh::new(&SshSpec {
            host: "2001:db8::1".into(),
            port: None,
            user: None,
            ..spec()
        });
        assert_eq!(ssh.describe(), "ssh [2001:db8::1]:22");
    }
}
