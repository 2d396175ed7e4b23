//! Lync / Skype for Business operations on one machine, over any transport:
//! run a script, turn a failure into "<machine>: <cmdlet> failed: <message>",
//! and parse the JSON the scripts print.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::event::{Emitter, Event, Transcript};
use crate::powershell::{self, Script};
use crate::topology::{RouteParameter, TransportSpec};
use crate::transport::{self, Transport, TransportError};

/// A machine edgefail sends PowerShell to: an Edge server or the
/// management shell.
#[derive(Debug)]
pub struct Machine {
    pub name: String,
    pub module: Option<String>,
    transport: Box<dyn Transport>,
    /// Where each script's transcript goes, once the run's events are set.
    events: OnceLock<Emitter>,
}

#[derive(Debug, thiserror::Error)]
pub enum MachineError {
    #[error("{machine}: {action} failed: {message}")]
    PowerShell {
        machine: String,
        action: &'static str,
        message: String,
    },
    #[error("{machine}: {action}: {source}")]
    Transport {
        machine: String,
        action: &'static str,
        source: TransportError,
    },
    #[error("{machine}: {action} printed something edgefail cannot read ({problem}): {excerpt}")]
    Unreadable {
        machine: String,
        action: &'static str,
        problem: String,
        excerpt: String,
    },
}

impl MachineError {
    pub fn is_timeout(&self) -> bool {
        matches!(
            self,
            MachineError::Transport {
                source: TransportError::Timeout { .. },
                ..
            }
        )
    }
}

/// One Lync Windows service as Get-CsWindowsService reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Service {
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "Status")]
    pub status: String,
}

/// One CMS replica's state.
#[derive(Debug, Clone, Deserialize)]
pub struct Replica {
    #[serde(rename = "ReplicaFqdn")]
    pub fqdn: String,
    #[serde(rename = "UpToDate")]
    pub up_to_date: bool,
}

/// A pool as the Central Management Store knows it.
#[derive(Debug, Clone, Deserialize)]
pub struct CmsPool {
    #[serde(rename = "Identity")]
    pub identity: String,
    #[serde(rename = "Site")]
    pub site: String,
    #[serde(rename = "Computers", default)]
    pub computers: Vec<String>,
}

impl Machine {
    pub fn new(name: &str, spec: &TransportSpec) -> Machine {
        Machine {
            name: name.to_string(),
            module: spec.module().map(str::to_string),
            transport: transport::from_spec(spec),
            events: OnceLock::new(),
        }
    }

    pub fn with_transport(
        name: &str,
        module: Option<String>,
        transport: Box<dyn Transport>,
    ) -> Machine {
        Machine {
            name: name.to_string(),
            module,
            transport,
            events: OnceLock::new(),
        }
    }

    /// Send a transcript of every script to `events` (the first call wins).
    pub fn transcribe_to(&self, events: Emitter) {
        let _ = self.events.set(events);
    }

    /// Start this machine's PowerShell session in the background, if its
    /// transport keeps one, so that start-ups overlap.
    pub fn warm_up(&self, timeout: Duration) {
        self.transport.warm_up(timeout);
    }

    /// End this machine's session, if it keeps one; finished when the
    /// handle is.
    pub fn close(&self) -> Option<tokio::task::JoinHandle<()>> {
        self.transport.close()
    }

    fn module(&self) -> Option<&str> {
        self.module.as_deref()
    }

    /// Run a script; a non-zero exit is a PowerShell failure with the
    /// message it printed.
    pub async fn run(&self, script: &Script, timeout: Duration) -> Result<String, MachineError> {
        tracing::debug!(machine = %self.name, action = script.action, via = %self.transport.describe(), "running");
        let started = Instant::now();
        let result = self.transport.run(script, timeout).await;
        if let Some(events) = self.events.get() {
            let (exit_code, stdout, stderr, error) = match &result {
                Ok(out) => (out.code, out.stdout.clone(), out.stderr.clone(), None),
                Err(e) => (None, String::new(), String::new(), Some(e.to_string())),
            };
            events.emit(&Event::Transcript(Box::new(Transcript {
                machine: self.name.clone(),
                action: script.action.to_string(),
                via: self.transport.describe(),
                script: self.transport.sent_text(script),
                exit_code,
                stdout,
                stderr,
                error,
                duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            })));
        }
        let out = result.map_err(|source| MachineError::Transport {
            machine: self.name.clone(),
            action: script.action,
            source,
        })?;
        if out.code == Some(0) {
            return Ok(out.stdout);
        }
        let mut message = error_message(&out.stderr);
        if message.is_empty() {
            message = match out.code {
                Some(code) => format!("exit code {code} and no error text"),
                None => "ended by a signal".into(),
            };
        }
        Err(MachineError::PowerShell {
            machine: self.name.clone(),
            action: script.action,
            message,
        })
    }

    async fn json<T: for<'de> Deserialize<'de>>(
        &self,
        script: &Script,
        timeout: Duration,
    ) -> Result<T, MachineError> {
        let stdout = self.run(script, timeout).await?;
        let text = stdout.trim().trim_start_matches('\u{feff}');
        serde_json::from_str(text).map_err(|e| MachineError::Unreadable {
            machine: self.name.clone(),
            action: script.action,
            problem: e.to_string(),
            excerpt: excerpt(text),
        })
    }

    pub async fn services(&self, timeout: Duration) -> Result<Vec<Service>, MachineError> {
        let one_or_many: OneOrMany<Service> = self
            .json(&powershell::services_read(self.module()), timeout)
            .await?;
        Ok(one_or_many.into_vec())
    }

    pub async fn stop_services(
        &self,
        graceful: bool,
        timeout: Duration,
    ) -> Result<(), MachineError> {
        self.run(&powershell::services_stop(self.module(), graceful), timeout)
            .await
            .map(drop)
    }

    pub async fn start_services(&self, timeout: Duration) -> Result<(), MachineError> {
        self.run(&powershell::services_start(self.module()), timeout)
            .await
            .map(drop)
    }

    /// The Xmpp* parameters of the installed Set-CsSite.
    pub async fn route_parameters(&self, timeout: Duration) -> Result<Vec<String>, MachineError> {
        let v: Option<OneOrMany<String>> = self
            .json(&powershell::route_parameters(self.module()), timeout)
            .await?;
        Ok(v.map(OneOrMany::into_vec).unwrap_or_default())
    }

    /// The site's Xmpp* properties (name -> value as text).
    pub async fn site(
        &self,
        site: &str,
        timeout: Duration,
    ) -> Result<serde_json::Map<String, serde_json::Value>, MachineError> {
        self.json(&powershell::site_read(self.module(), site), timeout)
            .await
    }

    /// Every named site at once, in their order: each site's properties,
    /// or why that site could not be read.
    pub async fn sites(
        &self,
        sites: &[&str],
        timeout: Duration,
    ) -> Result<Vec<Result<serde_json::Map<String, serde_json::Value>, String>>, MachineError> {
        let script = powershell::sites_read(self.module(), sites);
        let read: OneOrMany<serde_json::Map<String, serde_json::Value>> =
            self.json(&script, timeout).await?;
        let read = read.into_vec();
        if read.len() != sites.len() {
            return Err(MachineError::Unreadable {
                machine: self.name.clone(),
                action: script.action,
                problem: format!("{} site(s) asked for, {} answered", sites.len(), read.len()),
                excerpt: String::new(),
            });
        }
        Ok(read
            .into_iter()
            .map(|props| match props.get("Error") {
                Some(e) => Err(format!(
                    "{}: Get-CsSite failed: {}",
                    self.name,
                    e.as_str().unwrap_or_default()
                )),
                None => Ok(props),
            })
            .collect())
    }

    pub async fn set_route(
        &self,
        site: &str,
        parameter: RouteParameter,
        value: &str,
        timeout: Duration,
    ) -> Result<(), MachineError> {
        self.run(
            &powershell::site_set_route(self.module(), site, parameter, value),
            timeout,
        )
        .await
        .map(drop)
    }

    /// CMS replication, or None where the cmdlet does not exist.
    pub async fn replication(
        &self,
        timeout: Duration,
    ) -> Result<Option<Vec<Replica>>, MachineError> {
        let v: Option<OneOrMany<Replica>> = self
            .json(&powershell::replication_read(self.module()), timeout)
            .await?;
        Ok(v.map(OneOrMany::into_vec))
    }

    pub async fn pool(&self, pool_fqdn: &str, timeout: Duration) -> Result<CmsPool, MachineError> {
        self.json(&powershell::pool_read(self.module(), pool_fqdn), timeout)
            .await
    }
}

/// ConvertTo-Json writes a one-element array as a bare object on some
/// PowerShell versions; accept both.
#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany<T> {
    Many(Vec<T>),
    One(T),
}

impl<T> OneOrMany<T> {
    fn into_vec(self) -> Vec<T> {
        match self {
            OneOrMany::Many(v) => v,
            OneOrMany::One(t) => vec![t],
        }
    }
}

fn excerpt(text: &str) -> String {
    let mut s: String = text.chars().take(160).collect();
    if text.chars().count() > 160 {
        s.push_str("...");
    }
    crate::names::printable(&s)
}

/// The message of a PowerShell error record, without the position and
/// category lines PowerShell adds, from plain text or CLIXML stderr.
pub fn error_message(stderr: &str) -> String {
    let text = if stderr.trim_start().starts_with("#< CLIXML") {
        clixml_errors(stderr)
    } else {
        stderr.to_string()
    };
    let mut lines = Vec::new();
    for line in text.lines() {
        let line = line.trim_end();
        if line.starts_with("At line:") || line.starts_with("At ") && line.contains(" char:") {
            break;
        }
        if line.trim().is_empty() {
            continue;
        }
        lines.push(line.trim());
    }
    let joined = lines.join(" ");
    // "Stop-CsWindowsService : message" -> "message"
    let message = match joined.split_once(" : ") {
        Some((head, rest)) if !head.contains(' ') => rest.to_string(),
        _ => joined,
    };
    crate::names::printable(message.trim())
}

/// The text of `<S S="Error">` records in PowerShell's CLIXML error stream.
fn clixml_errors(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("<S S=\"Error\">") {
        rest = &rest[start + "<S S=\"Error\">".len()..];
        let end = rest.find("</S>").unwrap_or(rest.len());
        out.push_str(&rest[..end]);
        rest = &rest[end..];
    }
    out.replace("_x000D_", "")
        .replace("_x000A_", "\n")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_error_record() {
        let stderr = "Stop-CsWindowsService : Cannot stop service RTCSRV.\nAt line:3 char:1\n+ Stop-CsWindowsService\n+ ~~~\n    + CategoryInfo : x\n";
        assert_eq!(error_message(stderr), "Cannot stop service RTCSRV.");
    }

    #[test]
    fn clixml_error_record() {
        let stderr = "#< CLIXML\n<Objs Version=\"1.1.0.1\"><S S=\"Error\">Set-CsSite : Access denied_x000D__x000A_</S><S S=\"Error\">At line:1 char:1_x000D__x000A_</S></Objs>";
        assert_eq!(error_message(stderr), "Access denied");
    }
}
