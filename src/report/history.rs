//! `edgefail history`: the list of runs in a journal, and one run replayed
//! through the reporters.

use std::path::Path;

use serde::Serialize;

use super::say;
use crate::cli::Output;
use crate::event::{Event, RunOutcome};
use crate::journal::{Contents, Run};
use crate::names::printable;

/// One run in `history --output json`.
#[derive(Debug, Serialize)]
struct Line<'a> {
    /// Always "run": the line's kind, as events have.
    #[serde(rename = "type")]
    kind: &'static str,
    run_id: &'a str,
    command: &'a str,
    dry_run: bool,
    from: &'a str,
    to: &'a str,
    operator: &'a str,
    at: &'a str,
    resumes: &'a Option<String>,
    outcome: Option<RunOutcome>,
    exit_code: Option<i32>,
    unfinished: bool,
}

fn outcome_word(o: RunOutcome) -> String {
    serde_json::to_value(o)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// Every run in the journal, one line each.
pub fn list(path: &Path, contents: &Contents, output: Output) {
    if output == Output::Human {
        say(&format!("journal: {}", path.display()));
        if contents.runs.is_empty() {
            say("no runs recorded");
        }
    }
    for run in &contents.runs {
        let Some(Event::RunStarted {
            command,
            dry_run,
            from,
            to,
            operator,
            at,
            resumes,
            ..
        }) = run.started()
        else {
            continue;
        };
        let outcome = run.finished();
        if output == Output::Json {
            let line = Line {
                kind: "run",
                run_id: &run.run_id,
                command,
                dry_run: *dry_run,
                from,
                to,
                operator,
                at,
                resumes,
                outcome: outcome.map(|o| o.0),
                exit_code: outcome.map(|o| o.1),
                unfinished: run.is_unfinished(),
            };
            if let Ok(text) = serde_json::to_string(&line) {
                say(&text);
            }
            continue;
        }
        let kind = match (command.as_str(), dry_run) {
            ("failover", false) if resumes.is_some() => "failover --resume",
            ("failover", false) => "failover",
            ("failover", true) => "failover --dry-run",
            _ => "plan",
        };
        let end = match outcome {
            Some((o, code, _)) => format!("{} (exit {code})", outcome_word(o)),
            None => "unfinished (no end recorded)".into(),
        };
        let resumable = if run.is_unfinished() {
            "  <- resumable"
        } else {
            ""
        };
        say(&format!(
            "{}  {}  {}  {kind:<18}  {} -> {}  {end}{resumable}",
            printable(&run.run_id),
            printable(at),
            printable(operator),
            printable(from),
            printable(to)
        ));
    }
}

/// One run's events, as the run showed them.
pub fn show(run: &Run, output: Output) {
    let mut sink = super::reporter(output, true);
    for e in &run.events {
        sink.event(e);
    }
    if run.finished().is_none() && output == Output::Human {
        say("\n(no end recorded: the run was cut off; `edgefail failover --resume` continues it)");
    }
}
