//! The events a run emits, which every reporter (human, JSON Lines) and the
//! journal consume.
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
//!
//! Every step event carries the step's stable id in `step`: pool.deployed,
//! services.stop, route.set, dns.a, dns.srv, port.check, services.start.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::steps::{Change, StepId};

pub const FORMAT: u32 = 1;

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

/// Now, as RFC 3339 UTC with milliseconds.
pub fn now() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}
