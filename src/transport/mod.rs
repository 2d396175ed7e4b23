//! How a PowerShell script reaches a machine. Each transport runs one script
//! and hands back stdout, stderr and the exit code; what they mean is the
//! caller's business (see `lync`). A machine is reached through one
//! PowerShell session for the whole run (`session`), or, with `session:
//! false` in the topology, through one process per script.

mod local;
mod session;
mod ssh;

use std::collections::BTreeSet;
use std::process::Stdio;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use tokio::process::Command;

pub use local::Local;
pub use session::Session;
pub use ssh::{Ssh, SshFailure};

use crate::powershell::Script;
use crate::topology::TransportSpec;

/// What a script printed and how it ended.
#[derive(Debug, Clone)]
pub struct Output {
    pub stdout: String,
    pub stderr: String,
    pub code: Option<i32>,
}

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("cannot start {program}: {source}{hint}")]
    Spawn {
        program: String,
        source: std::io::Error,
        hint: &'static str,
    },
    #[error(
        "no answer within {}s; edgefail stopped waiting and ended its local process (over ssh the remote command may still finish)",
        after.as_secs_f32()
    )]
    Timeout { after: Duration },
    /// ssh itself failed (exit 255): the message says which way and where.
    #[error("ssh: {message}")]
    Ssh { kind: SshFailure, message: String },
    /// The machine's PowerShell session ended without answering, after it
    /// had been replaced once already (or before it was ready).
    #[error("the PowerShell session ended {why}")]
    SessionEnded { why: String },
    #[error("{0}")]
    Other(String),
}

#[async_trait]
pub trait Transport: Send + Sync + std::fmt::Debug {
    /// "local pwsh", "ssh admin@edge2:22": for messages.
    fn describe(&self) -> String;

    async fn run(&self, script: &Script, timeout: Duration) -> Result<Output, TransportError>;

    /// The script's text as the far side runs it (alone: the whole script;
    /// in a session: the body, after the bootstrap's preamble and module).
    fn sent_text(&self, script: &Script) -> String {
        script.text()
    }

    /// Get ready for the run's first script in the background (a session
    /// starts its process), so that start-ups overlap. Nothing by default.
    fn warm_up(&self, _timeout: Duration) {}

    /// End what this transport keeps running (a session: its stdin is
    /// closed so the far side ends as it should); the handle finishes when
    /// it has. Nothing by default.
    fn close(&self) -> Option<tokio::task::JoinHandle<()>> {
        None
    }
}

/// How a transport starts PowerShell with a script as its whole
/// `-EncodedCommand`: the piece a per-script transport and a session share.
pub trait Launch: Send + Sync + std::fmt::Debug + 'static {
    fn describe(&self) -> String;
    /// The command that runs `script`, not yet started.
    fn command(&self, script: &Script) -> Result<Command, TransportError>;
    /// The program started, for messages.
    fn program(&self) -> &str;
    /// Said when the program is not found.
    fn not_found_hint(&self) -> &'static str;
    /// The transport's own failure, told from how the process ended (ssh
    /// exits 255); None when the far side's PowerShell ended it.
    fn failure(&self, _code: Option<i32>, _stderr: &str) -> Option<TransportError> {
        None
    }
    /// How long connecting may take on top of a command's timeout.
    fn connect_allowance(&self) -> Duration {
        Duration::ZERO
    }
    /// The far side's stderr without the transport's own notices.
    fn clean_stderr(&self, stderr: &str) -> String {
        stderr.to_string()
    }
}

/// Build the transport a topology entry describes: a session unless the
/// topology says `session: false`.
pub fn from_spec(spec: &TransportSpec) -> Box<dyn Transport> {
    let module = spec.module().map(str::to_string);
    match spec {
        TransportSpec::Local(local) if spec.session() => {
            Box::new(Session::new(Local::new(local), module))
        }
        TransportSpec::Local(local) => Box::new(Local::new(local)),
        TransportSpec::Ssh(ssh) if spec.session() => {
            Box::new(Session::new(Ssh::for_session(ssh), module))
        }
        TransportSpec::Ssh(ssh) => Box::new(Ssh::new(ssh)),
    }
}

/// Run one script in a process of its own, started by `launch`.
pub(crate) async fn run_alone(
    launch: &impl Launch,
    script: &Script,
    timeout: Duration,
) -> Result<Output, TransportError> {
    let cmd = launch.command(script)?;
    let out = run_command(cmd, launch.program(), launch.not_found_hint(), timeout).await?;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if let Some(e) = launch.failure(out.status.code(), &stderr) {
        return Err(e);
    }
    Ok(Output {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: launch.clean_stderr(&stderr),
        code: out.status.code(),
    })
}

/// Process groups of the commands in flight, so that abandoning a run (a
/// second Ctrl-C) can end them instead of leaving them behind.
static IN_FLIGHT: Mutex<BTreeSet<u32>> = Mutex::new(BTreeSet::new());

#[derive(Debug)]
struct InFlight(u32);

impl InFlight {
    fn new(pid: u32) -> InFlight {
        if let Ok(mut set) = IN_FLIGHT.lock() {
            set.insert(pid);
        }
        InFlight(pid)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Ok(mut set) = IN_FLIGHT.lock() {
            set.remove(&self.0);
        }
    }
}

/// End every command edgefail started that is still running, with whatever
/// it started (each runs in its own process group, led by the PID edgefail
/// got from spawning it).
pub fn end_in_flight() {
    let Ok(set) = IN_FLIGHT.lock() else {
        return;
    };
    for &pid in set.iter() {
        crate::platform::end_process_tree(pid);
    }
}

/// Run `cmd` to its end or until `timeout`: output captured, no stdin, in its
/// own process group (a terminal Ctrl-C goes to edgefail, which lets the
/// command in flight finish), ended if edgefail stops waiting.
pub(crate) async fn run_command(
    mut cmd: Command,
    program: &str,
    not_found_hint: &'static str,
    timeout: Duration,
) -> Result<std::process::Output, TransportError> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    crate::platform::own_process_group(&mut cmd);
    let child = cmd.spawn().map_err(|source| TransportError::Spawn {
        program: program.to_string(),
        hint: if source.kind() == std::io::ErrorKind::NotFound {
            not_found_hint
        } else {
            ""
        },
        source,
    })?;
    let _in_flight = child.id().map(InFlight::new);
    match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Err(_) => Err(TransportError::Timeout { after: timeout }),
        Ok(Err(e)) => Err(TransportError::Other(format!("{program}: {e}"))),
        Ok(Ok(out)) => Ok(out),
    }
}
