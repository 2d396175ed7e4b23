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
//!   id this run resumes; absent otherwise), `utc_offset_secs` (the
//!   operator's time zone; absent when unknown), `approved_plan` (`{path,
//!   checksum, created_at, created_by}` with `failover --plan FILE`).
//! - `phase_started`: `step`, `phase` ("check" | "apply" | "verify"), `at`.
//! - `phase_finished`: `step`, `phase`, `outcome`, `summary`, `changes`
//!   (`[{what, old, new}]`), `seen` (check only, when the step's change
//!   rests on it: `[{what, value}]`, what the check read), `details`
//!   (strings), `duration_ms`. Outcomes:
//!   check: "already_done" | "would_change" | "cannot_tell" | "blocked" |
//!   "skipped"; apply: "changed" | "failed"; verify: "verified" |
//!   "verify_failed".
//! - `run_finished`: `outcome` ("nothing_to_do" | "changes_pending" |
//!   "incomplete" | "completed" | "failed" | "verify_failed" | "declined" |
//!   "refused" | "interrupted" | "plan_mismatch"), `exit_code`, `message`, `counts` (outcome ->
//!   number of phases), `duration_ms`, and after a failure, a verify
//!   failure or an interruption of a failover `estate`: `steps_done`,
//!   `steps_unverified` (step ids), `readings` (`[{step, what, state}]`,
//!   read at the end), `fix` (why it stopped) and `next` (the command that
//!   continues it).
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
//! - `error`: `exit_code`, `message`: the command ended in an error outside
//!   a run (a missing file, an unknown pool, a refused resume, a usage
//!   error); the last line.
//! - `finding` (`validate` only): `level` ("error" | "warning" | "note"),
//!   `message`, `file`, `line`, `column`, `field`: one per problem, in file
//!   order; then `validated`: `file`, `valid`, `errors`, `warnings`,
//!   `notes` (an invalid file then ends with `error`, exit 2).
//! - `unlock` (`edgefail unlock` only): `target` ("lease" | "lock"),
//!   `outcome` ("removed" | "nothing" | "declined"), `place` (the lease's
//!   owner name or the lock record's path), `holder` (what the record said;
//!   absent when there was none), `message`. A live holder ends with
//!   `error` (exit 6) instead; "declined" ends the command with exit 5.
//! - `rehearsal_resume`: `failed_exit_code`, `message` (how the drill's
//!   run ended; its own `run_finished` is not repeated: one per
//!   rehearsal), `command` (what an operator
//!   would type), `why` (present when no `--resume` was possible).
//!
//! Every step event carries the step's stable id in `step`: pool.deployed,
//! services.stop, route.set, dns.a, dns.srv, port.check, services.start,
//! federation.check.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub const FORMAT: u32 = 1;

/// Stable step ids: they appear in JSON output, journals and `--skip`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
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

/// One value a step's check read, that its change rests on ("xmpp.contoso.com
/// A on the primary" -> "203.0.113.10 (EdgePool1) [TTL 300]"). A failover
/// compares these with what the operator confirmed (the plan, or an
/// approved plan file) before applying the step: if they differ, the world
/// moved since, and the step is not applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Seen {
    pub what: String,
    pub value: String,
}

/// The `what` of the DNS steps' reading of the old records' largest TTL
/// (seconds), which the change record turns into "gone from every cache by".
pub const OLD_TTL: &str = "largest TTL of the old records on any server (seconds)";

/// The approved plan file a failover applies (`failover --plan FILE`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ApprovedPlan {
    pub path: String,
    /// The plan file's own checksum (its `checksum` field).
    pub checksum: String,
    pub created_at: String,
    pub created_by: String,
}

/// One value that a step would change, old -> new.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Change {
    pub what: String,
    pub old: String,
    pub new: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Check,
    Apply,
    Verify,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
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
    /// What the operator confirmed (the plan, an approved plan file) no
    /// longer matches the world or the topology; stopped before the step.
    PlanMismatch,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct StepInfo {
    pub step: StepId,
    pub number: usize,
    pub title: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
#[expect(
    clippy::large_enum_variant,
    reason = "a few events a second, each written once: size does not matter here"
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
        /// The operator's local time zone at `at`, seconds east of UTC.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        utc_offset_secs: Option<i32>,
        /// The approved plan file this run applies, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        approved_plan: Option<ApprovedPlan>,
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
        /// Check only: what the check read that its change rests on.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        seen: Vec<Seen>,
        details: Vec<String>,
        duration_ms: u64,
    },
    RunFinished {
        outcome: RunOutcome,
        exit_code: i32,
        message: String,
        counts: BTreeMap<Outcome, usize>,
        duration_ms: u64,
        /// After a failure, a verify failure or an interruption: the state
        /// the estate was read in at the end, and what to do next.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        estate: Option<EstateState>,
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
        /// How the drill's run ended (its `run_finished` message, which is
        /// in its journal but not repeated on the stream).
        #[serde(default)]
        message: String,
        command: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        why: Option<String>,
        /// The state of the estate the drill's run read back when it
        /// stopped (its `run_finished`'s `estate`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        estate: Option<EstateState>,
    },
    /// A command ended in an error without a run's own end (a missing
    /// file, an unknown pool, a refused resume, a usage error): the last
    /// line under `--output json`.
    Error { exit_code: i32, message: String },
    /// `validate --output json`: one problem in the topology file.
    Finding {
        level: Level,
        message: String,
        #[serde(flatten)]
        at: Location,
    },
    /// `edgefail unlock`: what became of one thing a crashed run can
    /// leave behind (the lease in the zone, the lock record). A live
    /// holder is refused with an `error` event (exit 6) instead.
    Unlock {
        target: UnlockTarget,
        outcome: UnlockOutcome,
        /// Where it is: the lease's TXT owner name, or the lock record's
        /// path.
        place: String,
        /// Who held it, as the record says (absent when there was none).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        holder: Option<String>,
        message: String,
    },
    /// `validate --output json`, last line: the verdict.
    Validated {
        file: String,
        valid: bool,
        errors: usize,
        warnings: usize,
        notes: usize,
    },
}

/// What `edgefail unlock` looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum UnlockTarget {
    /// The estate's lease in the zone (`lock: zone`, `dns.mode: rfc2136`).
    Lease,
    /// The lock record in the state directory.
    Lock,
}

/// What `edgefail unlock` did with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum UnlockOutcome {
    /// An expired lease or a lock record left behind, removed.
    Removed,
    /// There was nothing to remove.
    Nothing,
    /// The operator said no at the question (exit 5); left as it was.
    Declined,
}

/// The state of the estate when a failover stopped short: read, not
/// guessed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct EstateState {
    /// Steps applied and verified, by this run or the runs it resumes.
    pub steps_done: Vec<StepId>,
    /// Steps this run applied, or tried to (a failed apply may have changed
    /// part of what it touches), that were not verified.
    pub steps_unverified: Vec<StepId>,
    /// What was read at the end, one entry per thing looked at.
    pub readings: Vec<EstateReading>,
    /// What to fix first (why the run stopped).
    pub fix: String,
    /// The exact command that continues the run once that is fixed.
    pub next: String,
}

/// One thing read back at the end of a run that stopped short.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct EstateReading {
    /// The step whose check read it.
    pub step: StepId,
    /// What it is (a server's services, a site's route, a record).
    pub what: String,
    /// How it was found ("cannot tell: ..." when it could not be read).
    pub state: String,
}

/// A script as sent and its result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    Topology,
    Journal,
    Lock,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// Only in `finding` events: the file is invalid.
    Error,
    Warning,
    Note,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warning => "warning",
            Level::Note => "note",
        }
    }
}

/// A place in a topology file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Location {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub field: String,
}

/// A real address or port and the rehearsal's stand-in for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Mapped<R, S> {
    pub real: R,
    pub rehearsal: S,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct MappedServer {
    pub fqdn: String,
    pub pool: String,
    pub real: String,
    pub rehearsal: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RehearsalDns {
    pub primary: Mapped<Option<String>, String>,
    pub authoritative: Mapped<Vec<String>, Vec<String>>,
    pub tsig_key: Option<String>,
}

/// What a rehearsal simulates and where it put everything.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
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

/// What a running phase shows while it waits: for a terminal's live
/// progress only, never journaled nor part of the JSON stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// The phase gives up this long after it started (a verify deadline).
    Deadline(std::time::Duration),
    /// Each command of the phase may run this long (the command timeout).
    CommandTimeout(std::time::Duration),
    /// The latest reading of what the phase waits for.
    Reading(String),
}

/// Anything that consumes events: a reporter, the journal.
pub trait Sink: Send {
    fn event(&mut self, event: &Event);

    /// A running phase's progress; most sinks have no use for it.
    fn progress(&mut self, _progress: &Progress) {}

    /// Why this sink can no longer record what the run does (the journal
    /// could not be written), if so. A run must not change anything it
    /// cannot record.
    fn broken(&self) -> Option<String> {
        None
    }
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

    fn progress(&mut self, progress: &Progress) {
        for s in &mut self.0 {
            s.progress(progress);
        }
    }

    fn broken(&self) -> Option<String> {
        self.0.iter().find_map(|s| s.broken())
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

    /// Tell the sinks how the running phase is getting on.
    pub fn progress(&self, progress: &Progress) {
        let mut sinks = self.0.lock().unwrap_or_else(|p| p.into_inner());
        sinks.progress(progress);
    }

    /// Why the run's record can no longer be kept, if it cannot (see
    /// [`Sink::broken`]).
    pub fn broken(&self) -> Option<String> {
        let sinks = self.0.lock().unwrap_or_else(|p| p.into_inner());
        sinks.broken()
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

    fn progress(&mut self, progress: &Progress) {
        Emitter::progress(self, progress);
    }

    fn broken(&self) -> Option<String> {
        Emitter::broken(self)
    }
}

/// Now, as RFC 3339 UTC with milliseconds.
pub fn now() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}
