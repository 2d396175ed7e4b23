//! How a PowerShell script reaches a machine. Each transport runs one script
//! and hands back stdout, stderr and the exit code; what they mean is the
//! caller's business (see `lync`).

mod local;
mod ssh;

use std::collections::BTreeSet;
use std::process::Stdio;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use tokio::process::Command;

pub use local::Local;
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
    #[error("{0}")]
    Other(String),
}

#[async_trait]
pub trait Transport: Send + Sync + std::fmt::Debug {
    /// "local pwsh", "ssh admin@edge2:22": for messages.
    fn describe(&self) -> String;

    async fn run(&self, script: &Script, timeout: Duration) -> Result<Output, TransportError>;
}

/// Build the transport a topology entry describes.
pub fn from_spec(spec: &TransportSpec) -> Box<dyn Transport> {
    match spec {
        TransportSpec::Local(local) => Box::new(Local::new(local)),
        TransportSpec::Ssh(ssh) => Box::new(Ssh::new(ssh)),
    }
}

/// Process groups of the commands in flight, so that abandoning a run (a
/// second Ctrl-C) can end them instead of leaving them behind.
static IN_FLIGHT: Mutex<BTreeSet<u32>> = Mutex::new(BTreeSet::new());

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
