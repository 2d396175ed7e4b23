//! The events of edgefail: everything the operator sees of a run goes out
//! as one of these, and every reporter (human, JSON Lines) and the journal
//! consume them. The step ids and the change records live here too: they
//! are part of the wire vocabulary.
//!
//! # JSON Lines wire format (`--output json`), version 1
//!
//! One JSON object per line on stdout, each with a `type`:
//!
//! - `run_started`: `format` (1), `run_id`, `command` ("plan" | "failover"),
//!   `from`, `to`, `dry_run`, `topology` (path), `topology_sha256`,
//!   `plan_sha256`, `operator` (user@host), `at` (RFC 3339 UTC), `steps`
//!   (`[{step, number, title}]`), `skipped` (step ids), `resumes` (the run
//!   id this run resumes; absent otherwise).
//! - `phase_started`: `step`, `phase` ("check" | "apply" | "verify"), `at`.
//! - `phase_finished`: `step`, `phase`, `outcome`, `summary`, `changes`
//!   (`[{what, old, new}]`), `details` (strings), `duration_ms`. Outcomes:
//!   check: "already_done" | "would_change" | "cannot_tell" | "blocked" |
//!   "skipped"; apply: "changed" | "failed"; verify: "verified" |
//!   "verify_failed".
//! - `run_finished`: `outcome` ("nothing_to_do" | "changes_pending" |
//!   "incomplete" | "completed" | "failed" | "verify_failed" | "declined" |
//!   "refused" | "interrupted"), `exit_code`, `message`, `counts` (outcome ->
//!   number of phases), `duration_ms`.
//! - `warning`: `origin` ("topology" | "journal" | "lock"), `level`
//!   ("warning" | "note"), `message`, and for topology findings `file`,
//!   `line`, `column`, `field`. Also said on stderr under `--output json`.
//!   Warnings about the topology or the journal come before `run_started`
//!   (in a rehearsal, right after `rehearsal`): they are found before the
//!   run begins.
//! - `operator_action`: `step`, `message`, `instructions_title`,
//!   `instructions` (lines, such as nsupdate input): the operator must act
//!   (dns.mode manual). Also said on stderr under `--output json`.
//! - `rehearsal`: first line of `edgefail rehearse`: `format`, `from`, `to`,
//!   `topology`, `domain`, `xmpp_port` (`{real, rehearsal}`), `servers`
//!   (`[{fqdn, pool, real, rehearsal}]`), `dns` (`primary` and
//!   `authoritative`, each `{real, rehearsal}`, and `tsig_key`),
//!   `delay_ms`, `command_timeout_secs`, `drills`.
//! - `rehearsal_resume`: `failed_exit_code`, `command` (what an operator
//!   would type), `why` (present when no `--resume` was possible).
//!
//! Every step event carries the step's stable id in `step`: pool.deployed,
//! services.stop, route.set, dns.a, dns.srv, port.check, services.start,
//! federation.check.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

pub const FORMAT: u32 = 1;

/// Stable step ids: they appear in JSON output, journals and `--skip`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum StepId {
    #[serde(rename = "pool.deployed")]
    PoolDeployed,
    #[serde(rename = "services.stop")]
    ServicesStop,
    #[serde(rename = "route.set")]
    RouteSet,
    #[serde(rename = "dns.a")]
    DnsA,
    #[serde(rename = "dns.srv")]
    DnsSrv,
    #[serde(rename = "port.check")]
    PortCheck,
    #[serde(rename = "services.start")]
    ServicesStart,
    #[serde(rename = "federation.check")]
    FederationCheck,
}

impl StepId {
    pub const ALL: [StepId; 8] = [
        StepId::PoolDeployed,
        StepId::ServicesStop,
        StepId::RouteSet,
        StepId::DnsA,
        StepId::DnsSrv,
        StepId::PortCheck,
        StepId::ServicesStart,
        StepId::FederationCheck,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StepId::PoolDeployed => "pool.deployed",
            StepId::ServicesStop => "services.stop",
            StepId::RouteSet => "route.set",
            StepId::DnsA => "dns.a",
            StepId::DnsSrv => "dns.srv",
            StepId::PortCheck => "port.check",
            StepId::ServicesStart => "services.start",
            StepId::FederationCheck => "federation.check",
        }
    }

    /// The step's number: 1 to 7 as in the documented runbook, 8 for the
    /// closing partner's-eye check.
    pub fn number(self) -> usize {
        StepId::ALL.iter().position(|s| *s == self).unwrap_or(0) + 1
    }

    pub fn parse(text: &str) -> Option<StepId> {
        StepId::ALL
            .into_iter()
            .find(|s| s.as_str() == text || s.number().to_string() == text)
    }
}

impl std::fmt::Display for StepId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One value that a step would change, old -> new.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub what: String,
    pub old: String,
    pub new: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Check,
    Apply,
    Verify,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    AlreadyDone,
    WouldChange,
    CannotTell,
    Blocked,
    Skipped,
    Changed,
    Failed,
    Verified,
    VerifyFailed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::AlreadyDone => "already done",
            Outcome::WouldChange => "would change",
            Outcome::CannotTell => "cannot tell",
            Outcome::Blocked => "blocked",
            Outcome::Skipped => "skipped",
            Outcome::Changed => "changed",
            Outcome::Failed => "failed",
            Outcome::Verified => "verified",
            Outcome::VerifyFailed => "verify failed",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunOutcome {
    NothingToDo,
    ChangesPending,
    Incomplete,
    Completed,
    Failed,
    VerifyFailed,
    Declined,
    Refused,
    Interrupted,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepInfo {
    pub step: StepId,
    pub number: usize,
    pub title: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[expect(
    clippy::large_enum_variant,
    reason = "a run emits a few dozen events; boxing run_started buys nothing"
)]
pub enum Event {
    RunStarted {
        format: u32,
        run_id: String,
        command: String,
        from: String,
        to: String,
        dry_run: bool,
        topology: String,
        /// sha256 of the topology file's bytes.
        topology_sha256: String,
        /// sha256 of the runbook this run follows (pools, steps, skips).
        plan_sha256: String,
        /// user@host.
        operator: String,
        at: String,
        steps: Vec<StepInfo>,
        skipped: Vec<StepId>,
        /// The run this one resumes, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resumes: Option<String>,
    },
    PhaseStarted {
        step: StepId,
        phase: Phase,
        at: String,
    },
    PhaseFinished {
        step: StepId,
        phase: Phase,
        outcome: Outcome,
        summary: String,
        changes: Vec<Change>,
        details: Vec<String>,
        duration_ms: u64,
    },
    RunFinished {
        outcome: RunOutcome,
        exit_code: i32,
        message: String,
        counts: BTreeMap<Outcome, usize>,
        duration_ms: u64,
    },
    /// Something the operator should know that is not a step's result.
    Warning {
        origin: Origin,
        level: Level,
        message: String,
        /// Where in the topology file, for topology findings.
        #[serde(default, flatten)]
        at: Option<Location>,
    },
    /// The operator must act before the step can go on.
    OperatorAction {
        step: StepId,
        message: String,
        /// What the instructions are ("As nsupdate input ...").
        instructions_title: String,
        instructions: Vec<String>,
    },
    /// One PowerShell script sent to a machine and what came back, decoded
    /// (scripts hold names, never a secret). Shown at `-vv`; journaled.
    Transcript(Box<Transcript>),
    /// `edgefail rehearse` says what it simulates, before the run.
    Rehearsal(Box<Rehearsal>),
    /// `edgefail rehearse` resumes after a drill's failure.
    RehearsalResume {
        failed_exit_code: i32,
        command: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        why: Option<String>,
    },
}

/// A script as sent and its result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transcript {
    /// The machine ("management shell", an Edge server's FQDN).
    pub machine: String,
    /// The cmdlet the script is about.
    pub action: String,
    /// How it was reached ("local pwsh (session)", "ssh admin@edge2:22").
    pub via: String,
    /// The script's text as the far side runs it.
    pub script: String,
    /// PowerShell's exit code (0: success; a session's error answer is 1);
    /// None when nothing came back.
    pub exit_code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    /// Why nothing came back (timeout, ssh, a session that ended).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub duration_ms: u64,
}

/// Where a warning comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    Topology,
    Journal,
    Lock,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Warning,
    Note,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Warning => "warning",
            Level::Note => "note",
        }
    }
}

/// A place in a topology file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Location {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub field: String,
}

/// A real address or port and the rehearsal's stand-in for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mapped<R, S> {
    pub real: R,
    pub rehearsal: S,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MappedServer {
    pub fqdn: String,
    pub pool: String,
    pub real: String,
    pub rehearsal: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RehearsalDns {
    pub primary: Mapped<Option<String>, String>,
    pub authoritative: Mapped<Vec<String>, Vec<String>>,
    pub tsig_key: Option<String>,
}

/// What a rehearsal simulates and where it put everything.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rehearsal {
    pub format: u32,
    pub from: String,
    pub to: String,
    pub topology: String,
    pub domain: String,
    pub xmpp_port: Mapped<u16, u16>,
    pub servers: Vec<MappedServer>,
    pub dns: RehearsalDns,
    pub delay_ms: u64,
    pub command_timeout_secs: u64,
    pub drills: Vec<String>,
}

/// Anything that consumes events: a reporter, the journal.
pub trait Sink: Send {
    fn event(&mut self, event: &Event);
}

/// Fan one event stream out to several sinks.
#[derive(Default)]
pub struct Sinks(pub Vec<Box<dyn Sink>>);

impl Sink for Sinks {
    fn event(&mut self, event: &Event) {
        for s in &mut self.0 {
            s.event(event);
        }
    }
}

/// A handle on a run's event stream that steps, the engine and the signal
/// watcher can share: each event reaches every sink whole, in order.
#[derive(Clone)]
pub struct Emitter(Arc<Mutex<Sinks>>);

impl std::fmt::Debug for Emitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Emitter")
    }
}

impl Emitter {
    pub fn new(sinks: Sinks) -> Emitter {
        Emitter(Arc::new(Mutex::new(sinks)))
    }

    /// An emitter whose events go nowhere (tests, look-ups).
    pub fn discard() -> Emitter {
        Emitter::new(Sinks::default())
    }

    pub fn emit(&self, event: &Event) {
        let mut sinks = self.0.lock().unwrap_or_else(|p| p.into_inner());
        sinks.event(event);
    }

    /// Add a sink (the journal, once it is open).
    pub fn add(&self, sink: Box<dyn Sink>) {
        let mut sinks = self.0.lock().unwrap_or_else(|p| p.into_inner());
        sinks.0.push(sink);
    }
}

impl Sink for Emitter {
    fn event(&mut self, event: &Event) {
        self.emit(event);
    }
}

/// Now, as RFC 3339 UTC with milliseconds.
pub fn now() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}
