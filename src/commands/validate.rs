//! `edgefail validate`: check a topology file and report every problem at
//! once: human lines (`file:line:column: level: field: message`) or, with
//! `--output json`, one `finding` event per problem and a `validated`
//! verdict.

use crate::cli::{Output, ValidateArgs};
use crate::event::{Event, Level, Location};
use crate::exit::{CommandResult, Exit, Failed};
use crate::report;
use crate::settings;
use crate::topology::{LoadError, Report, Severity};

pub fn run(args: &ValidateArgs) -> CommandResult {
    let path = &args.topology.path;
    if args.output == Output::Human {
        let loaded = settings::load_topology(path)?;
        let events = super::events(Output::Human, false);
        for finding in settings::findings(&loaded) {
            events.emit(&finding);
        }
        report::validated(path, &loaded);
        return Ok(Exit::Ok);
    }
    let events = super::events(Output::Json, false);
    let (report, failed) = match settings::load_topology(path) {
        Ok(loaded) => (loaded.report, None),
        Err(error) => match error.downcast_ref::<LoadError>() {
            Some(LoadError::Invalid { report }) => (report.clone(), Some(error)),
            _ => return Err(error.into()),
        },
    };
    for event in findings(&report) {
        events.emit(&event);
    }
    let count = |s: Severity| {
        report
            .diagnostics
            .iter()
            .filter(|d| d.severity == s)
            .count()
    };
    events.emit(&Event::Validated {
        file: report.file.display().to_string(),
        valid: failed.is_none(),
        errors: count(Severity::Error),
        warnings: count(Severity::Warning),
        notes: count(Severity::Note),
    });
    match failed {
        None => Ok(Exit::Ok),
        // The findings are out as events: the error says only how many.
        Some(_) => Err(Failed {
            exit: Exit::Usage,
            error: anyhow::anyhow!("{} has {} error(s)", report.file.display(), report.errors()),
        }),
    }
}

/// Every finding of a file, errors included, as events.
fn findings(report: &Report) -> Vec<Event> {
    let file = report.file.display().to_string();
    report
        .diagnostics
        .iter()
        .map(|d| Event::Finding {
            level: match d.severity {
                Severity::Error => Level::Error,
                Severity::Warning => Level::Warning,
                Severity::Note => Level::Note,
            },
            message: d.message.clone(),
            at: Location {
                file: file.clone(),
                line: d.pos.line,
                column: d.pos.column,
                field: d.path.clone(),
            },
        })
        .collect()
}
