//! `local`: PowerShell started on this machine.

use std::time::Duration;

use async_trait::async_trait;
use tokio::process::Command;

use super::{Output, Transport, TransportError};
use crate::powershell::Script;
use crate::topology::LocalSpec;

#[derive(Debug, Clone)]
pub struct Local {
    program: String,
    args: Vec<String>,
}

impl Local {
    pub fn new(spec: &LocalSpec) -> Local {
        Local {
            program: spec
                .program
                .clone()
                .unwrap_or_else(|| crate::platform::DEFAULT_POWERSHELL.to_string()),
            args: spec.args.clone(),
        }
    }
}

#[async_trait]
impl Transport for Local {
    fn describe(&self) -> String {
        format!("local {}", self.program)
    }

    async fn run(&self, script: &Script, timeout: Duration) -> Result<Output, TransportError> {
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args).args(script.args());
        let out = super::run_command(
            cmd,
            &self.program,
            " (is PowerShell installed? set `program` in the topology's transport)",
            timeout,
        )
        .await?;
        Ok(Output {
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            code: out.status.code(),
        })
    }
}
