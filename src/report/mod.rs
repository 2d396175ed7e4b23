//! Reporters: turn events into what the operator sees. Human text or JSON
//! Lines on stdout; warnings, prompts and progress on stderr, progress only
//! when stderr is a terminal. Also the terminal behind the operator
//! interface, and the outputs of the commands that are not runs
//! (validate, history, probe, unlock).

pub mod footer;
pub mod history;
mod human;
mod json;
mod progress;
pub mod status;
mod terminal;

use std::io::Write;
use std::path::Path;

pub use human::{Human, Style};
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

/// Whether human step lines start with the time (`--timestamps`), for
/// the whole process: set once by `commands::run`.
static TIMESTAMPS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Start human step lines with the time their phase started.
pub fn set_timestamps(on: bool) {
    TIMESTAMPS.store(on, std::sync::atomic::Ordering::Relaxed);
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
        Output::Human => Box::new(Human::with_style(
            std::io::stdout(),
            Style {
                color: color_for_stdout(),
                verbose,
                progress: progress::allowed(),
                timestamps: TIMESTAMPS.load(std::sync::atomic::Ordering::Relaxed),
                width: platform::stdout_width(),
            },
        )),
    }
}

/// Commands that only print (history, validate, schema, completions, man)
/// end when stdout is closed; runs go on (their journal has everything).
static END_ON_CLOSED_STDOUT: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// This command only prints: when its reader goes away (a pipe to `head`),
/// end the program at once, quietly, with exit 0.
pub fn end_on_closed_stdout() {
    END_ON_CLOSED_STDOUT.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// Bytes of a command's result on stdout. A closed stdout never panics:
/// the output is dropped, and a command that only prints ends there.
pub fn write_stdout(bytes: &[u8]) {
    let mut out = std::io::stdout().lock();
    let written = out.write_all(bytes).and_then(|()| out.flush());
    if let Err(e) = written
        && e.kind() == std::io::ErrorKind::BrokenPipe
        && END_ON_CLOSED_STDOUT.load(std::sync::atomic::Ordering::Relaxed)
    {
        std::process::exit(crate::exit::Exit::Ok.code());
    }
}

/// One line of a command's result on stdout (see [`write_stdout`]).
pub fn say(line: &str) {
    let mut bytes = Vec::with_capacity(line.len() + 1);
    bytes.extend_from_slice(line.as_bytes());
    bytes.push(b'\n');
    write_stdout(&bytes);
}

/// A line for the operator on stderr (an interruption, an error).
pub fn notice(text: &str) {
    progress::around(|| {
        let _ = writeln!(std::io::stderr().lock(), "{text}");
    });
}

/// A warning alone, on stderr (commands whose stdout is one document).
pub fn warning(event: &Event) {
    to_stderr(event);
}

/// Say on stderr what needs a person, whatever stdout carries: warnings and
/// an action the operator must take. Other events are not for stderr.
/// Outside text is escaped: stderr is the operator's terminal.
fn to_stderr(event: &Event) {
    use crate::escape::terminal as esc;
    let mut err = std::io::stderr().lock();
    let _ = match event {
        Event::Warning {
            level,
            message,
            at: Some(at),
            ..
        }
        | Event::Finding { level, message, at } => writeln!(
            err,
            "{}:{}:{}: {}: {}: {}",
            esc(&at.file),
            at.line,
            at.column,
            level.as_str(),
            if at.field.is_empty() {
                "(document)".into()
            } else {
                esc(&at.field)
            },
            esc(message)
        ),
        Event::Warning {
            level,
            message,
            at: None,
            ..
        } => writeln!(err, "{}: {}", level.as_str(), esc(message)),
        Event::OperatorAction {
            step,
            message,
            instructions_title,
            instructions,
        } => {
            let mut text = format!("\n{step}: {}\n{}\n", esc(message), esc(instructions_title));
            for line in instructions {
                text.push_str(&format!("    {}\n", esc(line)));
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
        crate::escape::terminal(&path.display().to_string()),
        t.sites.len()
    ));
}

/// The document `probe --output json` prints: the report, with its
/// `type` and the format version.
#[derive(serde::Serialize)]
struct ProbeDocument<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    format: u32,
    #[serde(flatten)]
    report: &'a Report,
}

/// The partner's-eye report of `probe`.
pub fn probe(report: &Report, output: Output) {
    use crate::escape::terminal as esc;
    match output {
        Output::Json => {
            let document = ProbeDocument {
                kind: "probe",
                format: crate::event::FORMAT,
                report,
            };
            match serde_json::to_string(&document) {
                Ok(line) => say(&line),
                Err(e) => notice(&format!("error: failed to write the report as JSON: {e}")),
            }
        }
        Output::Human => {
            say(&format!(
                "Probing {} as a partner's server would (from {}):",
                esc(&report.domain),
                esc(&report.partner)
            ));
            for line in report.lines() {
                say(&format!("  {}", esc(&line)));
            }
            say("");
            let verdict = if report.passed { "PASS" } else { "FAIL" };
            say(&format!("{verdict}: {}", esc(&report.summary())));
        }
    }
}

/// The `error` event a failed command ends with under `--output json`.
pub fn error_event(failed: &crate::exit::Failed) -> Event {
    Event::Error {
        exit_code: failed.exit.code(),
        message: render(&failed.error),
    }
}

/// A command line clap refused (or --help, --version): said as clap says
/// it, and under `--output json` also as the `error` event on stdout; then
/// the process ends with clap's exit (2 for a usage error).
pub fn command_line_error(error: clap::Error) -> ! {
    // Not `env::args`, which panics on an argument that is not UTF-8.
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let asked_json = args.iter().any(|a| a == "--output=json")
        || args
            .windows(2)
            .any(|w| w[0] == "--output" && w[1] == "json");
    if error.use_stderr() && asked_json {
        let event = Event::Error {
            exit_code: error.exit_code(),
            message: first_line(&error.render().to_string()),
        };
        if let Ok(line) = serde_json::to_string(&event) {
            say(&line);
        }
    }
    error.exit()
}

/// The first line of clap's message, without its "error: ".
fn first_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default();
    line.strip_prefix("error: ").unwrap_or(line).to_string()
}

/// Show how a command ended (the error and its causes, on stderr) and
/// return the exit to report.
pub fn outcome(result: crate::exit::CommandResult) -> crate::exit::Exit {
    match result {
        Ok(exit) => exit,
        Err(failed) => {
            let text = crate::escape::terminal_lines(&render(&failed.error));
            notice(&format!("error: {text}"));
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
