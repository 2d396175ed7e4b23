//! How a PowerShell script reaches a machine. Each transport runs one script
//! and hands back stdout, stderr and the exit code; what they mean is the
//! caller's business (see `lync`).

mod local;
mod ssh;

use std::time::Duration;

use async_trait::async_trait;

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
    #[error("no answer within {}s (the command was ended)", after.as_secs_f32())]
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
