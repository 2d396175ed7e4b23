//! Reporters: turn events into what the operator sees. Human text or JSON
//! Lines on stdout; warnings, prompts and progress on stderr, progress only
//! when stderr is a terminal. Also the terminal behind the operator
//! interface, and the outputs of the commands that are not runs
//! (validate, history, probe, unlock).

pub mod history;
mod human;
mod json;
mod terminal;

use std::io::Write;
use std::path::Path;

pub use human::Human;
pub use json::Json;
pub use terminal::Terminal;

use crate::cli::Output;
use crate::event::{Event, Sink};
use crate::platform;
use crate::topology::{Loaded, Severity};
use crate::xmpp::probe::Report;

/// Colour on stdout: a terminal, and NO_COLOR unset or empty.
fn color_for_stdout() -> bool {
    platform::color_allowed(platform::stdout_is_terminal())
}

/// Whether transcripts of the PowerShell sent go to the output: at `-vv`
/// (debug logs, also `RUST_LOG=debug`).
pub fn transcripts_shown() -> bool {
    tracing::enabled!(target: "edgefail", tracing::Level::DEBUG)
}

/// The reporter for `output` on stdout.
pub fn reporter(output: Output, verbose: bool) -> Box<dyn Sink> {
    match output {
        Output::Json => Box::new(Json::new(std::io::stdout())),
        Output::Human => Box::new(Human::new(std::io::stdout(), color_for_stdout(), verbose)),
    }
}

/// One line of a command's result on stdout. A closed stdout (a pipe to
/// `head`) ends nothing: the line is dropped.
pub fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// A line for the operator on stderr (an interruption, an error).
pub fn notice(text: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{text}");
}

/// Say on stderr what needs a person, whatever stdout carries: warnings and
/// an action the operator must take. Other events are not for stderr.
fn to_stderr(event: &Event) {
    let mut err = std::io::stderr().lock();
    let _ = match event {
        Event::Warning {
            level,
            message,
            at: Some(at),
            ..
        } => writeln!(
            err,
            "{}:{}:{}: {}: {}: {message}",
            at.file,
            at.line,
            at.column,
            level.as_str(),
            if at.field.is_empty() {
                "(document)"
            } else {
                &at.field
            }
        ),
        Event::Warning {
            level,
            message,
            at: None,
            ..
        } => writeln!(err, "{}: {message}", level.as_str()),
        Event::OperatorAction {
            step,
            message,
            instructions_title,
            instructions,
        } => {
            let mut text = format!("\n{step}: {message}\n{instructions_title}\n");
            for line in instructions {
                text.push_str(&format!("    {line}\n"));
            }
            write!(err, "{text}")
        }
        _ => Ok(()),
    };
    let _ = err.flush();
}

/// The line `validate` ends with on a valid topology.
pub fn validated(path: &Path, loaded: &Loaded) {
    let t = &loaded.topology;
    let pools = t.pools().count();
    let servers: usize = t.pools().map(|p| p.pool.servers.len()).sum();
    let warnings = loaded
        .report
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Warning)
        .count();
    say(&format!(
        "{}: valid ({} site(s), {pools} pool(s), {servers} Edge server(s), {warnings} warning(s))",
        path.display(),
        t.sites.len()
    ));
}

/// The partner's-eye report of `probe`.
pub fn probe(report: &Report, output: Output) {
    match output {
        Output::Json => match serde_json::to_string(report) {
            Ok(line) => say(&line),
            Err(e) => notice(&format!("error: failed to write the report as JSON: {e}")),
        },
        Output::Human => {
            say(&format!(
                "Probing {} as a partner's server would (from {}):",
                report.domain, report.partner
            ));
            for line in report.lines() {
                say(&format!("  {line}"));
            }
            say("");
            let verdict = if report.passed { "PASS" } else { "FAIL" };
            say(&format!("{verdict}: {}", report.summary()));
        }
    }
}

/// Show how a command ended (the error and its causes, on stderr) and
/// return the exit to report.
pub fn outcome(result: crate::exit::CommandResult) -> crate::exit::Exit {
    match result {
        Ok(exit) => exit,
        Err(failed) => {
            notice(&format!("error: {}", render(&failed.error)));
            failed.exit
        }
    }
}

/// An error with its causes, each said once: many of edgefail's errors
/// already include their cause's text.
fn render(error: &anyhow::Error) -> String {
    let mut out = error.to_string();
    for cause in error.chain().skip(1) {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
    }
    out
}
