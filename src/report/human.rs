//! The human reporter: the plan once, then for each step its apply and
//! verify lines (a check right before applying only where it found
//! something other than the plan), changes as a diff, long lines wrapped to
//! the terminal, and a closing summary that counts steps changed and
//! verified, on stdout; warnings and what the operator must do on stderr;
//! a spinner with the latest reading while a phase runs (a terminal only);
//! what a rehearsal simulates before the run. Every text that came from
//! outside is escaped before it is written.

use std::collections::HashMap;
use std::io::Write;

use super::progress::Spinner;
use crate::escape::terminal as esc;
use crate::event::{Change, Event, Outcome, Phase, Progress, Rehearsal, RunOutcome, Sink, StepId};

/// How the human report looks, settled once per process.
#[derive(Debug, Clone, Copy, Default)]
pub struct Style {
    /// Colour the outcomes (a terminal, NO_COLOR unset).
    pub color: bool,
    /// Show every step's details, not only those of trouble.
    pub verbose: bool,
    /// Draw a spinner on stderr while a phase runs.
    pub progress: bool,
    /// Start each step line with the time its phase started (UTC).
    pub timestamps: bool,
    /// Wrap long lines to this many columns.
    pub width: Option<usize>,
}

/// What the plan said of a step, to tell whether the check right before
/// applying found the same.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Planned {
    outcome: Outcome,
    changes: Vec<Change>,
}

pub struct Human<W: Write + Send> {
    out: W,
    style: Style,
    total: usize,
    /// The plan's check of each step.
    plan: HashMap<StepId, Planned>,
    /// Checks are running again right before each apply.
    running: bool,
    /// The last outcome of each step, in the order steps were reported.
    last: Vec<(StepId, Outcome)>,
    applied: usize,
    verified: usize,
    /// When the running phase started (RFC 3339), for timestamps.
    phase_at: String,
    spinner: Spinner,
}

impl<W: Write + Send> Human<W> {
    /// `color`: the caller decides (a terminal, and NO_COLOR unset).
    pub fn new(out: W, color: bool, verbose: bool) -> Self {
        Human::with_style(
            out,
            Style {
                color,
                verbose,
                progress: super::progress::allowed(),
                ..Style::default()
            },
        )
    }

    pub fn with_style(out: W, style: Style) -> Self {
        Human {
            out,
            style,
            total: 8,
            plan: HashMap::new(),
            running: false,
            last: Vec::new(),
            applied: 0,
            verified: 0,
            phase_at: String::new(),
            spinner: Spinner::default(),
        }
    }

    /// A script sent and what came back, every line of outside text escaped.
    fn transcript(&mut self, t: &crate::event::Transcript) -> std::io::Result<()> {
        self.spinner.clear();
        let p = crate::names::printable;
        let ended = match (&t.error, t.exit_code) {
            (Some(e), _) => format!("no answer: {}", p(e)),
            (None, Some(code)) => format!("exit code {code}"),
            (None, None) => "ended by a signal".into(),
        };
        writeln!(
            self.out,
            "    > {} via {}: {} ({ended}, {:.1}s)",
            p(&t.machine),
            p(&t.via),
            p(&t.action),
            t.duration_ms as f64 / 1000.0
        )?;
        for line in t.script.lines() {
            writeln!(self.out, "    | {}", p(line))?;
        }
        for (name, text) in [("stdout", &t.stdout), ("stderr", &t.stderr)] {
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                writeln!(self.out, "    {name}: {}", p(line.trim_end()))?;
            }
        }
        Ok(())
    }

    fn paint(&self, outcome: Outcome) -> String {
        let word = outcome.as_str();
        if !self.style.color {
            return word.to_string();
        }
        let code = match outcome {
            Outcome::AlreadyDone | Outcome::Verified | Outcome::Changed => "32",
            Outcome::WouldChange | Outcome::Skipped => "33",
            Outcome::CannotTell | Outcome::Blocked | Outcome::Failed | Outcome::VerifyFailed => {
                "31"
            }
        };
        format!("\x1b[{code}m{word}\x1b[0m")
    }

    /// Write `text` (already escaped) as lines no wider than the terminal:
    /// the first after `first`, the rest after `indent` spaces.
    fn wrapped(&mut self, first: &str, text: &str, indent: usize) -> std::io::Result<()> {
        let lines = wrap(first, text, indent, self.style.width);
        for line in lines {
            writeln!(self.out, "{line}")?;
        }
        Ok(())
    }

    fn stamp(&self) -> String {
        if !self.style.timestamps {
            return String::new();
        }
        // RFC 3339 UTC: the time of day is characters 11..23.
        match self.phase_at.get(11..23) {
            Some(t) => format!("{t}Z "),
            None => String::new(),
        }
    }

    fn remember(&mut self, step: StepId, outcome: Outcome) {
        match self.last.iter_mut().find(|(s, _)| *s == step) {
            Some(entry) => entry.1 = outcome,
            None => self.last.push((step, outcome)),
        }
    }

    /// The closing count: steps by how they ended, changes and
    /// verifications (not phases).
    fn tally(&self) -> String {
        let mut by: Vec<(String, usize)> = Vec::new();
        let mut add = |word: &str| match by.iter_mut().find(|(w, _)| w == word) {
            Some(e) => e.1 += 1,
            None => by.push((word.to_string(), 1)),
        };
        for (_, outcome) in &self.last {
            match outcome {
                // A step that was applied counts as changed and as verified
                // (or not) below.
                Outcome::Changed | Outcome::Verified => {}
                Outcome::WouldChange if self.running => add("not run"),
                o => add(o.as_str()),
            }
        }
        let mut parts = Vec::new();
        if self.applied > 0 || self.verified > 0 || self.running {
            parts.push(format!("{} changed", self.applied));
            parts.push(format!("{} verified", self.verified));
        }
        parts.extend(by.into_iter().map(|(w, n)| format!("{n} {w}")));
        if parts.is_empty() {
            "no steps".to_string()
        } else {
            format!("steps: {}", parts.join(", "))
        }
    }
}

/// Greedy word wrap of `text` after `first`, continuing after `indent`
/// spaces; words longer than a line are cut. No width: one line.
fn wrap(first: &str, text: &str, indent: usize, width: Option<usize>) -> Vec<String> {
    let Some(width) = width else {
        return vec![format!("{first}{text}")];
    };
    let pad = " ".repeat(indent);
    let mut lines = Vec::new();
    let mut line = first.to_string();
    let mut len = visible_len(first);
    let mut fresh = true;
    for word in text.split(' ') {
        let wlen = word.chars().count();
        if !fresh && len + 1 + wlen > width {
            lines.push(std::mem::replace(&mut line, pad.clone()));
            len = indent;
            fresh = true;
        }
        if !fresh {
            line.push(' ');
            len += 1;
        }
        let mut rest: Vec<char> = word.chars().collect();
        while len + rest.len() > width && rest.len() > width.saturating_sub(indent).max(1) {
            let room = width.saturating_sub(len).max(1);
            let head: String = rest.drain(..room.min(rest.len())).collect();
            line.push_str(&head);
            lines.push(std::mem::replace(&mut line, pad.clone()));
            len = indent;
        }
        let rest: String = rest.into_iter().collect();
        len += rest.chars().count();
        line.push_str(&rest);
        fresh = false;
    }
    lines.push(line);
    lines
}

/// Columns `s` takes, not counting colour sequences.
fn visible_len(s: &str) -> usize {
    let mut n = 0;
    let mut in_escape = false;
    for c in s.chars() {
        match (in_escape, c) {
            (false, '\x1b') => in_escape = true,
            (true, 'm') => in_escape = false,
            (true, _) => {}
            (false, _) => n += 1,
        }
    }
    n
}

fn phase_name(p: Phase) -> &'static str {
    match p {
        Phase::Check => "check",
        Phase::Apply => "apply",
        Phase::Verify => "verify",
    }
}

fn secs(ms: u64) -> String {
    format!("{:.1}s", ms as f64 / 1000.0)
}

impl<W: Write + Send> Sink for Human<W> {
    fn event(&mut self, event: &Event) {
        // A closed stdout is seen by the next write of a command's own
        // output (`report::say`) and ends the program there.
        let _ = self.write(event);
    }

    fn progress(&mut self, progress: &Progress) {
        self.spinner.update(progress);
    }
}

impl<W: Write + Send> Human<W> {
    fn write(&mut self, event: &Event) -> std::io::Result<()> {
        match event {
            Event::RunStarted {
                command,
                from,
                to,
                dry_run,
                topology,
                steps,
                skipped,
                ..
            } => {
                self.total = steps.len();
                self.plan.clear();
                self.last.clear();
                self.running = false;
                self.applied = 0;
                self.verified = 0;
                let mode = match (command.as_str(), dry_run) {
                    ("plan", _) => "plan",
                    (_, true) => "failover --dry-run",
                    _ => "failover",
                };
                writeln!(
                    self.out,
                    "edgefail {mode}: XMPP federation {} -> {}",
                    esc(from),
                    esc(to)
                )?;
                writeln!(self.out, "topology: {}", esc(topology))?;
                if !skipped.is_empty() {
                    let ids: Vec<&str> = skipped.iter().map(|s| s.as_str()).collect();
                    writeln!(self.out, "skipping (by request): {}", ids.join(", "))?;
                }
                writeln!(self.out)?;
            }
            Event::PhaseStarted { step, phase, at } => {
                self.phase_at = at.clone();
                if self.style.progress {
                    self.spinner.start(format!(
                        "[{}/{}] {step} {}",
                        step.number(),
                        self.total,
                        phase_name(*phase)
                    ));
                }
            }
            Event::PhaseFinished {
                step,
                phase,
                outcome,
                summary,
                changes,
                details,
                duration_ms,
                ..
            } => {
                self.spinner.clear();
                self.finished(
                    *step,
                    *phase,
                    *outcome,
                    summary,
                    changes,
                    details,
                    *duration_ms,
                )?;
            }
            Event::RunFinished {
                outcome,
                exit_code,
                message,
                duration_ms,
                estate,
                ..
            } => {
                self.spinner.clear();
                writeln!(self.out)?;
                let head = match outcome {
                    RunOutcome::NothingToDo => "Nothing to do",
                    RunOutcome::ChangesPending => "Changes pending",
                    RunOutcome::Incomplete => "Plan incomplete",
                    RunOutcome::Completed => "Failover complete",
                    RunOutcome::Failed => "FAILED",
                    RunOutcome::VerifyFailed => "VERIFY FAILED",
                    RunOutcome::Declined => "Declined",
                    RunOutcome::Refused => "Refused",
                    RunOutcome::Interrupted => "INTERRUPTED",
                    RunOutcome::PlanMismatch => "STOPPED: THE CONFIRMED PLAN NO LONGER MATCHES",
                };
                let head = format!("{head}: ");
                self.wrapped(&head, &esc(message), 2)?;
                writeln!(
                    self.out,
                    "{}; finished in {} (exit {exit_code})",
                    self.tally(),
                    secs(*duration_ms)
                )?;
                if let Some(estate) = estate {
                    write!(self.out, "{}", super::footer::render(estate))?;
                }
            }
            Event::Warning { .. } | Event::OperatorAction { .. } => {
                // The terminal is the operator's now: no spinner over it.
                self.spinner.clear();
                super::to_stderr(event);
            }
            Event::Finding { .. } => super::to_stderr(event),
            Event::Error { .. } | Event::Validated { .. } => {
                // An error is said on stderr by `report::outcome`; validate
                // says its verdict itself.
            }
            Event::Unlock { message, .. } => {
                self.wrapped("", &esc(message), 2)?;
            }
            Event::Transcript(t) => {
                if super::transcripts_shown() {
                    self.transcript(t)?;
                }
            }
            Event::Rehearsal(r) => self.rehearsal(r)?,
            Event::RehearsalResume {
                failed_exit_code,
                message,
                command,
                why,
                estate,
            } => {
                self.spinner.clear();
                if !message.is_empty() {
                    writeln!(self.out)?;
                    self.wrapped("FAILED: ", &esc(message), 2)?;
                }
                if let Some(estate) = estate {
                    write!(self.out, "{}", super::footer::render(estate))?;
                }
                let why = why
                    .as_ref()
                    .map(|w| format!("; {}", esc(w)))
                    .unwrap_or_default();
                writeln!(self.out)?;
                self.wrapped(
                    "",
                    &format!(
                        "REHEARSAL: that is what the real run would show (exit {failed_exit_code}){why}. Fault cleared; now, as an operator would: {}",
                        esc(command)
                    ),
                    2,
                )?;
                writeln!(self.out)?;
            }
        }
        self.out.flush()
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "the fields of one phase_finished event"
    )]
    fn finished(
        &mut self,
        step: StepId,
        phase: Phase,
        outcome: Outcome,
        summary: &str,
        changes: &[Change],
        details: &[String],
        duration_ms: u64,
    ) -> std::io::Result<()> {
        let mut note = "";
        if phase == Phase::Check {
            let seen = Planned {
                outcome,
                changes: changes.to_vec(),
            };
            match self.plan.get(&step) {
                None if !self.running => {
                    self.plan.insert(step, seen);
                }
                planned => {
                    if !self.running {
                        self.running = true;
                        writeln!(
                            self.out,
                            "\nRunning: each step is checked again right before it is applied; only what differs from the plan is shown\n"
                        )?;
                    }
                    if planned == Some(&seen) {
                        self.remember(step, outcome);
                        return Ok(());
                    }
                    note = " (differs from the plan)";
                }
            }
        }
        match outcome {
            Outcome::Changed => self.applied += 1,
            Outcome::Verified => self.verified += 1,
            _ => {}
        }
        self.remember(step, outcome);
        let first = format!(
            "{}[{}/{}] {:<16} {:<6} {} ({}){note}: ",
            self.stamp(),
            step.number(),
            self.total,
            step.as_str(),
            phase_name(phase),
            self.paint(outcome),
            secs(duration_ms),
        );
        self.wrapped(&first, &esc(summary), 8)?;
        if phase == Phase::Check {
            for c in changes {
                self.wrapped("        ", &esc(&c.what), 10)?;
                self.wrapped("          - ", &esc(&c.old), 12)?;
                self.wrapped("          + ", &esc(&c.new), 12)?;
            }
        }
        let trouble = matches!(
            outcome,
            Outcome::Failed | Outcome::VerifyFailed | Outcome::Blocked | Outcome::CannotTell
        );
        if trouble || self.style.verbose {
            for d in details {
                self.wrapped("        * ", &esc(d), 10)?;
            }
        }
        Ok(())
    }

    /// Say at the top that this is a rehearsal, and where everything went.
    fn rehearsal(&mut self, r: &Rehearsal) -> std::io::Result<()> {
        let port = r.xmpp_port.rehearsal;
        self.wrapped(
            "",
            &format!(
                "REHEARSAL of {} -> {} on {}: nothing real is contacted or changed.",
                esc(&r.from),
                esc(&r.to),
                esc(&r.topology)
            ),
            2,
        )?;
        writeln!(
            self.out,
            "The estate is simulated inside this process, on loopback only (127.0.0.0/8):"
        )?;
        let mut lines = Vec::new();
        for m in &r.servers {
            lines.push(format!(
                "{} ({}): {} -> {}:{port}, with a simulated management shell and Lync services",
                esc(&m.fqdn),
                esc(&m.pool),
                esc(&m.real),
                m.rehearsal
            ));
        }
        lines.push(format!(
            "DNS primary {} -> {} (RFC 2136 with a TSIG key generated for this rehearsal)",
            esc(r.dns.primary.real.as_deref().unwrap_or("(none)")),
            r.dns.primary.rehearsal
        ));
        lines.push(format!(
            "DNS authoritative {} -> {} (a secondary that follows the primary)",
            if r.dns.authoritative.real.is_empty() {
                "(none)".to_string()
            } else {
                esc(&r.dns.authoritative.real.join(", ")).into_owned()
            },
            r.dns.authoritative.rehearsal.join(", ")
        ));
        lines.push(format!(
            "XMPP port {} -> {port}; each Edge server listens only while its Lync services run, with a self-signed certificate for {} made for this rehearsal and accepted explicitly (xmpp.accept_untrusted_cert)",
            r.xmpp_port.real,
            esc(&r.domain)
        ));
        lines.push(format!(
            "management shell -> simulated; each command takes {} ms (stopping and starting services, setting the route: {} ms); command timeout {}s",
            r.delay_ms,
            r.delay_ms.saturating_mul(4),
            r.command_timeout_secs
        ));
        if !r.drills.is_empty() {
            lines.push(format!("drills: {}", esc(&r.drills.join(", "))));
        }
        for line in lines {
            self.wrapped("  ", &line, 4)?;
        }
        writeln!(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_keeps_lines_within_the_width_and_indents_the_rest() {
        let text = "one two three four five six seven eight nine ten eleven twelve";
        let lines = wrap("[1/8] x: ", text, 4, Some(24));
        assert!(lines.len() > 2, "{lines:?}");
        assert!(lines.iter().all(|l| l.chars().count() <= 24), "{lines:?}");
        assert!(lines[1].starts_with("    ") && !lines[1].starts_with("     "));
        let joined: Vec<&str> = lines.iter().flat_map(|l| l.split_whitespace()).collect();
        assert_eq!(joined.join(" "), format!("[1/8] x: {text}"));
        assert_eq!(wrap("a: ", text, 4, None), vec![format!("a: {text}")]);
    }

    fn finished(step: StepId, phase: Phase, outcome: Outcome, summary: &str) -> Event {
        Event::PhaseFinished {
            step,
            phase,
            outcome,
            summary: summary.into(),
            changes: Vec::new(),
            seen: Vec::new(),
            details: vec!["detail \x1b[31mred".into()],
            duration_ms: 100,
        }
    }

    /// The plan once; a re-check only where it differs; apply and verify
    /// lines; a summary of steps; outside text escaped.
    #[test]
    fn the_report_shows_the_plan_once_and_counts_steps() {
        let mut out = Vec::new();
        {
            let mut human = Human::with_style(&mut out, Style::default());
            let (stop, route) = (StepId::ServicesStop, StepId::RouteSet);
            for e in [
                finished(stop, Phase::Check, Outcome::WouldChange, "would stop"),
                finished(
                    route,
                    Phase::Check,
                    Outcome::WouldChange,
                    "would set \u{202e}x",
                ),
                finished(stop, Phase::Check, Outcome::WouldChange, "would stop"),
                finished(stop, Phase::Apply, Outcome::Changed, "stopped"),
                finished(stop, Phase::Verify, Outcome::Verified, "all stopped"),
                finished(route, Phase::Check, Outcome::Blocked, "the CMS is gone"),
                Event::RunFinished {
                    outcome: RunOutcome::Failed,
                    exit_code: 1,
                    message: "stopped at route.set".into(),
                    counts: Default::default(),
                    duration_ms: 1000,
                    estate: None,
                },
            ] {
                human.event(&e);
            }
        }
        let text = String::from_utf8(out).expect("UTF-8");
        assert_eq!(text.matches("services.stop    check").count(), 1, "{text}");
        assert!(
            text.contains(
                "route.set        check  blocked (0.1s) (differs from the plan): the CMS is gone"
            ),
            "{text}"
        );
        assert!(text.contains("services.stop    apply  changed"), "{text}");
        assert!(text.contains("would set \\u{202e}x"), "{text}");
        assert!(text.contains("* detail \\u{1b}[31mred"), "{text}");
        assert!(
            !text.contains('\x1b') && !text.contains('\u{202e}'),
            "{text}"
        );
        assert!(
            text.contains("steps: 1 changed, 1 verified, 1 blocked;"),
            "{text}"
        );
    }

    #[test]
    fn a_word_longer_than_the_line_is_cut() {
        let long = "x".repeat(70);
        let lines = wrap("* ", &long, 2, Some(30));
        assert!(lines.iter().all(|l| l.chars().count() <= 30), "{lines:?}");
        assert_eq!(lines.concat().matches('x').count(), 70);
    }
}
