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

impl super::Launch for Local {
    fn describe(&self) -> String {
        format!("local {}", self.program)
    }

    fn command(&self, script: &Script) -> Result<Command, TransportError> {
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args).args(script.args());
        Ok(cmd)
    }

    fn program(&self) -> &str {
        &self.program
    }

    fn not_found_hint(&self) -> &'static str {
        " (is PowerShell installed? set `program` in the topology's transport)"
    }
}

#[async_trait]
impl Transport for Local {
    fn describe(&self) -> String {
        super::Launch::describe(self)
    }

    async fn run(&self, script: &Script, timeout: Duration) -> Result<Output, TransportError> {
        super::run_alone(self, script, timeout).await
    }
}
