//! A simulated machine behind the same [`Transport`] the real ones use: it
//! receives the script as powershell.exe would (`-EncodedCommand`), decodes
//! it, and has the shared simulated estate run it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

use super::shell::{self, Action, State};
use crate::powershell::Script;
use crate::transport::{Output, Transport, TransportError};

/// The estate every simulated machine acts on.
pub type Estate = Arc<Mutex<State>>;

pub fn lock(estate: &Estate) -> std::sync::MutexGuard<'_, State> {
    estate.lock().unwrap_or_else(|p| p.into_inner())
}

#[derive(Debug)]
pub struct Simulated {
    /// The machine this plays, as the estate's faults and services name it.
    pub host: String,
    pub estate: Estate,
    /// How long a read takes; stopping and starting services take longer.
    pub delay: Duration,
}

#[async_trait]
impl Transport for Simulated {
    fn describe(&self) -> String {
        format!("simulated {}", self.host)
    }

    async fn run(&self, script: &Script, timeout: Duration) -> Result<Output, TransportError> {
        let work = async {
            // Decode what powershell.exe would be handed, so the encoding is
            // rehearsed too.
            let args = script.args();
            let text = match shell::decode(&args[3]) {
                Ok(t) => t,
                Err(e) => return failed(&e),
            };
            let slow = matches!(
                script.action,
                "Stop-CsWindowsService" | "Start-CsWindowsService" | "Set-CsSite"
            );
            tokio::time::sleep(if slow {
                self.delay.saturating_mul(4)
            } else {
                self.delay
            })
            .await;
            let action = shell::run(&mut lock(&self.estate), &self.host, &text);
            match action {
                Ok(Action::Print(out)) => ok(out),
                Ok(Action::Slow(out, ms)) => {
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    ok(out)
                }
                Ok(Action::Hang | Action::HangForever) => std::future::pending().await,
                Ok(Action::Die) => Output {
                    stdout: String::new(),
                    stderr: String::new(),
                    code: None,
                },
                Err(e) => failed(&e),
            }
        };
        tokio::time::timeout(timeout, work)
            .await
            .map_err(|_| TransportError::Timeout { after: timeout })
    }
}

fn ok(stdout: String) -> Output {
    Output {
        stdout,
        stderr: String::new(),
        code: Some(0),
    }
}

fn failed(e: &shell::PsError) -> Output {
    Output {
        stdout: String::new(),
        stderr: e.render(),
        code: Some(1),
    }
}
