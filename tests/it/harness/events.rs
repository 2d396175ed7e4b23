//! Run events as the library's own types: what `--output json` prints and
//! what a journal records, read into `edgefail::event::Event`, with small
//! views for what tests ask of them.

use std::path::Path;

use edgefail::event::{self, Event, Phase, RunOutcome};
use edgefail::steps::{Change, StepId};
use serde::Deserialize;

/// Every event in JSON Lines `text`, typed (the rehearsal's own lines
/// included). Panics with the offending line (and `context`) on anything
/// that does not parse.
#[track_caller]
pub fn parse(text: &str, context: &str) -> Vec<Event> {
    let mut events = Vec::new();
    for line in text.lines() {
        let value: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}\n{context}"));
        events.push(
            serde_json::from_value(value)
                .unwrap_or_else(|e| panic!("not a run event ({e}): {line}\n{context}")),
        );
    }
    events
}

/// The steps with an apply phase: each changes something, and a completed
/// failover has verified each (the others only look).
pub const CHANGING_STEPS: [StepId; 5] = [
    StepId::ServicesStop,
    StepId::RouteSet,
    StepId::DnsA,
    StepId::DnsSrv,
    StepId::ServicesStart,
];

/// One line of a journal: `{"journal_format":1,"run":"<id>", <event>}`.
#[derive(Debug, Deserialize)]
pub struct JournalRecord {
    pub journal_format: u32,
    pub run: String,
    #[serde(flatten)]
    pub event: Event,
}

/// Every record of a journal file, in order. Lines that are not JSON (a
/// partial last line, a damaged one) are passed over as edgefail's reader
/// does; a JSON line that is not a record fails the test, naming it.
#[track_caller]
pub fn journal_records(path: &Path) -> Vec<JournalRecord> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|v| {
            let line = v.to_string();
            serde_json::from_value(v).unwrap_or_else(|e| {
                panic!("{}: not a journal record ({e}): {line}", path.display())
            })
        })
        .collect()
}

/// The events of a journal file, in order.
#[track_caller]
pub fn journal_events(path: &Path) -> Vec<Event> {
    journal_records(path).into_iter().map(|r| r.event).collect()
}

/// One `phase_finished` event, field by field.
#[derive(Debug, Clone, Copy)]
pub struct Finished<'a> {
    pub step: StepId,
    pub phase: Phase,
    pub outcome: event::Outcome,
    pub summary: &'a str,
    pub changes: &'a [Change],
    pub details: &'a [String],
    /// The whole event.
    pub event: &'a Event,
}

impl Finished<'_> {
    pub fn is(&self, step: StepId, phase: Phase, outcome: event::Outcome) -> bool {
        self.step == step && self.phase == phase && self.outcome == outcome
    }

    /// The event as the JSON line it came from (every field).
    pub fn json(&self) -> String {
        serde_json::to_string(self.event).expect("an event serialises")
    }
}

/// How a run ended: a `run_finished` event's outcome, exit code, message.
pub type Ending = (RunOutcome, i32, String);

/// What tests ask of a sequence of run events.
pub trait Events {
    /// Every `phase_finished`, in order.
    fn finished(&self) -> Vec<Finished<'_>>;
    /// The first `phase_finished` of `step` (in a plan: its check).
    fn first_finished(&self, step: StepId) -> Finished<'_>;
    /// The last `phase_finished` of `step`.
    fn last_finished(&self, step: StepId) -> Finished<'_>;
    /// (phase, outcome) of every finished phase of `step`, in order.
    fn phases(&self, step: StepId) -> Vec<(Phase, event::Outcome)>;
    /// The steps whose verify phase finished verified, in order.
    fn verified(&self) -> Vec<StepId>;
    /// Every `run_finished`, in order.
    fn run_endings(&self) -> Vec<Ending>;
    /// The last event, which must be `run_finished`.
    fn run_finished(&self) -> Ending;
    /// (run_id, resumes) of every `run_started`, in order.
    fn run_starts(&self) -> Vec<(String, Option<String>)>;
}

impl Events for [Event] {
    fn finished(&self) -> Vec<Finished<'_>> {
        self.iter()
            .filter_map(|e| match e {
                Event::PhaseFinished {
                    step,
                    phase,
                    outcome,
                    summary,
                    changes,
                    details,
                    ..
                } => Some(Finished {
                    step: *step,
                    phase: *phase,
                    outcome: *outcome,
                    summary,
                    changes,
                    details,
                    event: e,
                }),
                _ => None,
            })
            .collect()
    }

    #[track_caller]
    fn first_finished(&self, step: StepId) -> Finished<'_> {
        self.finished()
            .into_iter()
            .find(|f| f.step == step)
            .unwrap_or_else(|| panic!("no phase_finished for {step} in {self:#?}"))
    }

    #[track_caller]
    fn last_finished(&self, step: StepId) -> Finished<'_> {
        self.finished()
            .into_iter()
            .rfind(|f| f.step == step)
            .unwrap_or_else(|| panic!("no phase_finished for {step} in {self:#?}"))
    }

    fn phases(&self, step: StepId) -> Vec<(Phase, event::Outcome)> {
        self.finished()
            .iter()
            .filter(|f| f.step == step)
            .map(|f| (f.phase, f.outcome))
            .collect()
    }

    fn verified(&self) -> Vec<StepId> {
        self.finished()
            .iter()
            .filter(|f| f.phase == Phase::Verify && f.outcome == event::Outcome::Verified)
            .map(|f| f.step)
            .collect()
    }

    fn run_endings(&self) -> Vec<Ending> {
        self.iter()
            .filter_map(|e| match e {
                Event::RunFinished {
                    outcome,
                    exit_code,
                    message,
                    ..
                } => Some((*outcome, *exit_code, message.clone())),
                _ => None,
            })
            .collect()
    }

    #[track_caller]
    fn run_finished(&self) -> Ending {
        match self.last() {
            Some(Event::RunFinished {
                outcome,
                exit_code,
                message,
                ..
            }) => (*outcome, *exit_code, message.clone()),
            other => panic!("the last event is not run_finished: {other:#?}"),
        }
    }

    fn run_starts(&self) -> Vec<(String, Option<String>)> {
        self.iter()
            .filter_map(|e| match e {
                Event::RunStarted {
                    run_id, resumes, ..
                } => Some((run_id.clone(), resumes.clone())),
                _ => None,
            })
            .collect()
    }
}
