//! The human reporter: one line per step phase with its outcome and time,
//! changes as a diff, and a closing summary on stdout; warnings and what the
//! operator must do on stderr; what a rehearsal simulates before the run.

use std::io::Write;

use crate::event::{Event, Outcome, Phase, Rehearsal, RunOutcome, Sink};

pub struct Human<W: Write + Send> {
    out: W,
    color: bool,
    verbose: bool,
    progress: bool,
    total: usize,
    /// The number of the last step reported, to see where the run's own
    /// checks start again after the plan.
    last_step: usize,
}

impl<W: Write + Send> Human<W> {
    /// `color`: the caller decides (a terminal, and NO_COLOR unset).
    pub fn new(out: W, color: bool, verbose: bool) -> Self {
        Human {
            out,
            color,
            verbose,
            progress: crate::platform::stderr_is_terminal(),
            total: 8,
            last_step: 0,
        }
    }

    /// A script sent and what came back, every line of outside text escaped.
    fn transcript(&mut self, t: &crate::event::Transcript) -> std::io::Result<()> {
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
        if !self.color {
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
        let _ = self.write(event);
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
                self.last_step = 0;
                let mode = match (command.as_str(), dry_run) {
                    ("plan", _) => "plan",
                    (_, true) => "failover --dry-run",
                    _ => "failover",
                };
                writeln!(self.out, "edgefail {mode}: XMPP federation {from} -> {to}")?;
                writeln!(self.out, "topology: {topology}")?;
                if !skipped.is_empty() {
                    let ids: Vec<&str> = skipped.iter().map(|s| s.as_str()).collect();
                    writeln!(self.out, "skipping (by request): {}", ids.join(", "))?;
                }
                writeln!(self.out)?;
            }
            Event::PhaseStarted { step, phase, .. } => {
                if self.progress {
                    eprintln!(
                        "... [{}/{}] {step} {}",
                        step.number(),
                        self.total,
                        phase_name(*phase)
                    );
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
            } => {
                if *phase == Phase::Check && step.number() <= self.last_step {
                    writeln!(
                        self.out,
                        "\nRunning: each step is checked again right before it is applied\n"
                    )?;
                }
                self.last_step = step.number();
                writeln!(
                    self.out,
                    "[{}/{}] {:<16} {:<6} {} ({}): {}",
                    step.number(),
                    self.total,
                    step.as_str(),
                    phase_name(*phase),
                    self.paint(*outcome),
                    secs(*duration_ms),
                    summary
                )?;
                if *phase == Phase::Check {
                    for c in changes {
                        writeln!(self.out, "        {}", c.what)?;
                        writeln!(self.out, "          - {}", c.old)?;
                        writeln!(self.out, "          + {}", c.new)?;
                    }
                }
                let trouble = matches!(
                    outcome,
                    Outcome::Failed
                        | Outcome::VerifyFailed
                        | Outcome::Blocked
                        | Outcome::CannotTell
                );
                if trouble || self.verbose {
                    for d in details {
                        writeln!(self.out, "        * {d}")?;
                    }
                }
            }
            Event::RunFinished {
                outcome,
                exit_code,
                message,
                counts,
                duration_ms,
            } => {
                writeln!(self.out)?;
                let parts: Vec<String> = counts
                    .iter()
                    .map(|(o, n)| format!("{n} {}", o.as_str()))
                    .collect();
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
                };
                writeln!(self.out, "{head}: {message}")?;
                writeln!(
                    self.out,
                    "phases: {}; finished in {} (exit {exit_code})",
                    if parts.is_empty() {
                        "none".to_string()
                    } else {
                        parts.join(", ")
                    },
                    secs(*duration_ms)
                )?;
            }
            Event::Warning { .. } | Event::OperatorAction { .. } => {
                super::to_stderr(event);
            }
            Event::Transcript(t) => {
                if super::transcripts_shown() {
                    self.transcript(t)?;
                }
            }
            Event::Rehearsal(r) => self.rehearsal(r)?,
            Event::RehearsalResume {
                failed_exit_code,
                command,
                why,
            } => {
                let why = why.as_ref().map(|w| format!("; {w}")).unwrap_or_default();
                writeln!(
                    self.out,
                    "\nREHEARSAL: that is what the real run would show (exit {failed_exit_code}){why}. Fault cleared; now, as an operator would: {command}\n"
                )?;
            }
        }
        self.out.flush()
    }
}

impl<W: Write + Send> Human<W> {
    /// Say at the top that this is a rehearsal, and where everything went.
    fn rehearsal(&mut self, r: &Rehearsal) -> std::io::Result<()> {
        let port = r.xmpp_port.rehearsal;
        writeln!(
            self.out,
            "REHEARSAL of {} -> {} on {}: nothing real is contacted or changed.",
            r.from, r.to, r.topology
        )?;
        writeln!(
            self.out,
            "The estate is simulated inside this process, on loopback only (127.0.0.0/8):"
        )?;
        for m in &r.servers {
            writeln!(
                self.out,
                "  {} ({}): {} -> {}:{port}, with a simulated management shell and Lync services",
                m.fqdn, m.pool, m.real, m.rehearsal
            )?;
        }
        writeln!(
            self.out,
            "  DNS primary {} -> {} (RFC 2136 with a TSIG key generated for this rehearsal)",
            r.dns.primary.real.as_deref().unwrap_or("(none)"),
            r.dns.primary.rehearsal
        )?;
        writeln!(
            self.out,
            "  DNS authoritative {} -> {} (a secondary that follows the primary)",
            if r.dns.authoritative.real.is_empty() {
                "(none)".to_string()
            } else {
                r.dns.authoritative.real.join(", ")
            },
            r.dns.authoritative.rehearsal.join(", ")
        )?;
        writeln!(
            self.out,
            "  XMPP port {} -> {port}; each Edge server listens only while its Lync services run, with a self-signed certificate for {} made for this rehearsal and accepted explicitly (xmpp.accept_untrusted_cert)",
            r.xmpp_port.real, r.domain
        )?;
        writeln!(
            self.out,
            "  management shell -> simulated; each command takes {} ms (stopping and starting services, setting the route: {} ms); command timeout {}s",
            r.delay_ms,
            r.delay_ms.saturating_mul(4),
            r.command_timeout_secs
        )?;
        if !r.drills.is_empty() {
            writeln!(self.out, "  drills: {}", r.drills.join(", "))?;
        }
        writeln!(self.out)
    }
}
