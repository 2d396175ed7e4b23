//! The change record: one run from the journal as a Markdown document for
//! change management (`edgefail report`). Everything in it is read from the
//! journal's events: who ran it, where and when (UTC and the operator's
//! local time), the checksums and the approved plan file, every phase with
//! its wall-clock start and end, what was read, what changed, what was
//! verified, the DNS TTLs and when caches have dropped the old records, the
//! partner's-eye check, and how the run ended with the next action. A run
//! that failed, was interrupted or has no recorded end is told as faithfully
//! as a completed one.
//!
//! Tables are GitHub-flavoured Markdown pipe tables (a header row and a
//! `---` row), which GitHub and Azure DevOps wikis both render; cell text
//! has `|`, `<` and line breaks escaped, and control characters shown
//! escaped.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use crate::event::{Event, OLD_TTL, Outcome, Phase, RunOutcome, StepId};
use crate::journal::Run;

/// One phase as the journal has it.
struct PhaseRow<'a> {
    pass: &'static str,
    step: StepId,
    phase: Phase,
    started: Option<SystemTime>,
    outcome: Outcome,
    summary: &'a str,
    duration_ms: u64,
}

/// Text from outside, made safe for one Markdown table cell.
pub fn cell(text: &str) -> String {
    let printable = crate::names::printable(text);
    let mut out = String::with_capacity(printable.len());
    for c in printable.chars() {
        match c {
            '|' => out.push_str("\\|"),
            // `<` could open HTML, which both wikis render.
            '<' => out.push_str("&lt;"),
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    if out.is_empty() { "-".into() } else { out }
}

fn at(text: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339_weak(text).ok()
}

fn utc(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t)
        .to_string()
        .replace('T', " ")
        .replace('Z', " UTC")
}

fn clock(t: SystemTime) -> String {
    let full = humantime::format_rfc3339_millis(t).to_string();
    full.split('T')
        .nth(1)
        .unwrap_or(&full)
        .trim_end_matches('Z')
        .to_string()
}

fn offset_label(secs: i32) -> String {
    let sign = if secs < 0 { '-' } else { '+' };
    let abs = secs.unsigned_abs();
    format!("UTC{sign}{:02}:{:02}", abs / 3600, (abs % 3600) / 60)
}

/// "2026-11-23 10:00:00.000 UTC (11:00:00 local, UTC+01:00)".
fn when(t: SystemTime, offset: Option<i32>) -> String {
    let local = match offset {
        Some(o) => {
            let shifted = if o >= 0 {
                t.checked_add(Duration::from_secs(u64::from(o.unsigned_abs())))
            } else {
                t.checked_sub(Duration::from_secs(u64::from(o.unsigned_abs())))
            };
            match shifted {
                Some(l) => {
                    let text = humantime::format_rfc3339_seconds(l).to_string();
                    format!(
                        " ({} local, {})",
                        text.trim_end_matches('Z').replace('T', " "),
                        offset_label(o)
                    )
                }
                None => String::new(),
            }
        }
        None => " (local time zone not recorded)".into(),
    };
    format!("{}{local}", utc(t))
}

fn secs(ms: u64) -> String {
    format!("{:.1} s", ms as f64 / 1000.0)
}

fn outcome_text(o: RunOutcome) -> &'static str {
    match o {
        RunOutcome::NothingToDo => "nothing to do",
        RunOutcome::ChangesPending => "changes pending (plan only)",
        RunOutcome::Incomplete => "plan incomplete",
        RunOutcome::Completed => "completed",
        RunOutcome::Failed => "failed",
        RunOutcome::VerifyFailed => "verify failed",
        RunOutcome::Declined => "declined",
        RunOutcome::Refused => "refused",
        RunOutcome::Interrupted => "interrupted",
        RunOutcome::PlanMismatch => "stopped: the confirmed plan no longer matches",
    }
}

fn phase_name(p: Phase) -> &'static str {
    match p {
        Phase::Check => "check",
        Phase::Apply => "apply",
        Phase::Verify => "verify",
    }
}

/// What the operator should do next, from how the run ended.
fn next_action(
    outcome: Option<RunOutcome>,
    command: &str,
    dry_run: bool,
    topology: &str,
    from: &str,
    to: &str,
) -> String {
    let t = cell(topology);
    let resume = format!("`edgefail failover -t {t} --resume`");
    match outcome {
        None => format!(
            "The journal has no record of how this run ended (the process was killed or the machine stopped). Find out what it did with `edgefail history`, then continue with {resume}: it re-checks every step."
        ),
        Some(RunOutcome::Completed | RunOutcome::NothingToDo) if command == "failover" && !dry_run => {
            "None. Partners that cached the old DNS answers reach the new pool once those expire (see DNS above).".into()
        }
        Some(RunOutcome::ChangesPending | RunOutcome::NothingToDo | RunOutcome::Incomplete) => format!(
            "This run only looked. To apply: `edgefail failover -t {t} --from {} --to {}`{}.",
            cell(from),
            cell(to),
            if outcome == Some(RunOutcome::Incomplete) {
                " once every step can be checked"
            } else {
                ""
            }
        ),
        Some(RunOutcome::Declined) => "None: the operator declined; nothing was changed.".into(),
        Some(RunOutcome::PlanMismatch) => format!(
            "Find out who changed what is named above and why; then {resume} plans afresh from what is there now (or make and approve a new plan)."
        ),
        Some(RunOutcome::Interrupted) => format!(
            "Continue with {resume}: steps verified here are re-checked, not redone."
        ),
        Some(_) => format!(
            "Fix what the failed step names, then continue with {resume}: steps verified here are re-checked, not redone."
        ),
    }
}

/// The change record of `run`, as Markdown.
pub fn markdown(run: &Run) -> String {
    let mut out = String::new();
    let Some(Event::RunStarted {
        run_id,
        command,
        from,
        to,
        dry_run,
        topology,
        topology_sha256,
        plan_sha256,
        operator,
        at: started_at,
        steps,
        skipped,
        resumes,
        utc_offset_secs,
        approved_plan,
        ..
    }) = run.started()
    else {
        let _ = writeln!(
            out,
            "# Change record: run {}\n\nThe journal has no start record for this run; nothing more can be said about it.",
            cell(&run.run_id)
        );
        return out;
    };
    let offset = *utc_offset_secs;
    let finished = run.events.iter().rev().find_map(|e| match e {
        Event::RunFinished {
            outcome,
            exit_code,
            message,
            duration_ms,
            ..
        } => Some((*outcome, *exit_code, message.as_str(), *duration_ms)),
        _ => None,
    });
    let kind = match (command.as_str(), dry_run) {
        ("plan", _) => "plan (nothing changed)",
        (_, true) => "failover --dry-run (nothing changed)",
        _ => "failover",
    };
    let _ = writeln!(
        out,
        "# Change record: XMPP federation {} -> {}\n",
        cell(from),
        cell(to)
    );
    let start = at(started_at);
    let (user, host) = operator.split_once('@').unwrap_or((operator, "unknown"));
    let mut facts: Vec<(&str, String)> = vec![
        ("Run", format!("`{}`", cell(run_id))),
        ("Command", kind.into()),
        (
            "Outcome",
            match finished {
                Some((o, code, _, _)) => format!("**{}** (exit {code})", outcome_text(o)),
                None => "**no recorded end** (crashed or killed)".into(),
            },
        ),
        ("Run by", cell(user)),
        ("On host", cell(host)),
        ("Topology", format!("`{}`", cell(topology))),
        ("Topology sha256", format!("`{}`", cell(topology_sha256))),
        ("Runbook sha256", format!("`{}`", cell(plan_sha256))),
        (
            "Approved plan",
            match approved_plan {
                Some(p) => format!(
                    "`{}` ({}, made by {} at {})",
                    cell(&p.path),
                    cell(&p.checksum),
                    cell(&p.created_by),
                    cell(&p.created_at)
                ),
                None => "none (the plan shown at the start of the run)".into(),
            },
        ),
        (
            "Started",
            start
                .map(|s| when(s, offset))
                .unwrap_or_else(|| cell(started_at)),
        ),
    ];
    if let (Some(s), Some((_, _, _, ms))) = (start, finished) {
        facts.push(("Ended", when(s + Duration::from_millis(ms), offset)));
        facts.push(("Duration", secs(ms)));
    }
    if let Some(r) = resumes {
        facts.push(("Resumes run", format!("`{}`", cell(r))));
    }
    if !skipped.is_empty() {
        let ids: Vec<&str> = skipped.iter().map(|s| s.as_str()).collect();
        facts.push(("Skipped by request", ids.join(", ")));
    }
    let _ = writeln!(out, "| Item | Value |\n|---|---|");
    for (k, v) in &facts {
        let _ = writeln!(out, "| {k} | {v} |");
    }

    // Every phase, in order, with its wall-clock times.
    let mut rows: Vec<PhaseRow<'_>> = Vec::new();
    let mut checked: Vec<StepId> = Vec::new();
    let mut pass = "plan";
    let mut open: Vec<(StepId, Phase, Option<SystemTime>)> = Vec::new();
    for e in &run.events {
        match e {
            Event::PhaseStarted { step, phase, at: t } => {
                if *phase == Phase::Check {
                    if checked.contains(step) {
                        pass = "run";
                    }
                    checked.push(*step);
                } else {
                    pass = "run";
                }
                open.push((*step, *phase, at(t)));
            }
            Event::PhaseFinished {
                step,
                phase,
                outcome,
                summary,
                duration_ms,
                ..
            } => {
                let started = open
                    .iter()
                    .rposition(|(s, p, _)| s == step && p == phase)
                    .map(|i| open.remove(i).2)
                    .unwrap_or(None);
                rows.push(PhaseRow {
                    pass,
                    step: *step,
                    phase: *phase,
                    started,
                    outcome: *outcome,
                    summary,
                    duration_ms: *duration_ms,
                });
            }
            _ => {}
        }
    }
    let title = |id: StepId| {
        steps
            .iter()
            .find(|s| s.step == id)
            .map(|s| cell(&s.title))
            .unwrap_or_default()
    };
    let _ = writeln!(
        out,
        "\n## Steps\n\nEach step is checked in the plan, then checked again, applied and verified in the run. Times are UTC.\n"
    );
    let _ = writeln!(
        out,
        "| # | Step | Pass | Phase | Start | End | Took | Outcome | Summary |\n|---|---|---|---|---|---|---|---|---|"
    );
    for r in &rows {
        let (start, end) = match r.started {
            Some(s) => (clock(s), clock(s + Duration::from_millis(r.duration_ms))),
            None => ("-".into(), "-".into()),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {start} | {end} | {} | {} | {} |",
            r.step.number(),
            r.step,
            r.pass,
            phase_name(r.phase),
            secs(r.duration_ms),
            r.outcome.as_str(),
            cell(r.summary)
        );
    }
    for (step, phase, _) in &open {
        let _ = writeln!(
            out,
            "| {} | {step} | run | {} | - | - | - | **no outcome recorded** | started, never finished: the run stopped during this phase |",
            step.number(),
            phase_name(*phase)
        );
    }
    if rows.is_empty() && open.is_empty() {
        let _ = writeln!(
            out,
            "| - | - | - | - | - | - | - | - | no phase was recorded |"
        );
    }

    // What the checks read (the first, confirmed reading of each step).
    let _ = writeln!(
        out,
        "\n## What was read\n\nWhat each step's change rests on, as its check read it in the plan.\n"
    );
    let _ = writeln!(out, "| # | Step | What | Value |\n|---|---|---|---|");
    let mut any = false;
    let mut first_seen: Vec<StepId> = Vec::new();
    let mut ttls: Vec<(StepId, u64)> = Vec::new();
    for e in &run.events {
        if let Event::PhaseFinished {
            step,
            phase: Phase::Check,
            seen,
            ..
        } = e
        {
            if first_seen.contains(step) {
                continue;
            }
            first_seen.push(*step);
            for s in seen {
                any = true;
                let _ = writeln!(
                    out,
                    "| {} | {step} | {} | {} |",
                    step.number(),
                    cell(&s.what),
                    cell(&s.value)
                );
                if s.what == OLD_TTL
                    && let Ok(ttl) = s.value.parse::<u64>()
                {
                    ttls.push((*step, ttl));
                }
            }
        }
    }
    if !any {
        let _ = writeln!(out, "| - | - | - | nothing recorded |");
    }

    // What changed: the apply phases that changed something.
    let _ = writeln!(out, "\n## What changed\n");
    let _ = writeln!(
        out,
        "| # | Step | What | Old | New | Applied |\n|---|---|---|---|---|---|"
    );
    let mut changed_any = false;
    for e in &run.events {
        if let Event::PhaseFinished {
            step,
            phase: Phase::Apply,
            outcome,
            summary,
            changes,
            ..
        } = e
        {
            changed_any = true;
            let status = if *outcome == Outcome::Changed {
                "yes".to_string()
            } else {
                format!("**{}**: {}", outcome.as_str(), cell(summary))
            };
            if changes.is_empty() {
                let _ = writeln!(
                    out,
                    "| {} | {step} | {} | - | - | {status} |",
                    step.number(),
                    cell(summary)
                );
            }
            for c in changes {
                let _ = writeln!(
                    out,
                    "| {} | {step} | {} | {} | {} | {status} |",
                    step.number(),
                    cell(&c.what),
                    cell(&c.old),
                    cell(&c.new)
                );
            }
        }
    }
    if !changed_any {
        let _ = writeln!(out, "| - | - | nothing was applied | - | - | - |");
    }

    // What was verified.
    let _ = writeln!(out, "\n## What was verified\n");
    let _ = writeln!(
        out,
        "| # | Step | Outcome | Took | What was read back |\n|---|---|---|---|---|"
    );
    let mut verified_any = false;
    for r in rows.iter().filter(|r| r.phase == Phase::Verify) {
        verified_any = true;
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            r.step.number(),
            r.step,
            r.outcome.as_str(),
            secs(r.duration_ms),
            cell(r.summary)
        );
    }
    if !verified_any {
        let _ = writeln!(out, "| - | - | nothing was verified | - | - |");
    }

    // DNS: TTLs and when caches have dropped the old records.
    let _ = writeln!(out, "\n## DNS\n");
    let mut dns_lines = Vec::new();
    for (step, ttl) in &ttls {
        let verified_end = rows
            .iter()
            .rev()
            .find(|r| r.step == *step && r.phase == Phase::Verify && r.outcome == Outcome::Verified)
            .and_then(|r| r.started.map(|s| s + Duration::from_millis(r.duration_ms)));
        let line = match verified_end {
            Some(end) => format!(
                "- {step} ({}): the old records had TTL {ttl} s; every server had the new ones at {}, so every cache has dropped the old ones by **{}** (some caches stretch TTLs).",
                title(*step),
                utc(end),
                when(end + Duration::from_secs(*ttl), offset)
            ),
            None => format!(
                "- {step} ({}): the old records have TTL {ttl} s; this run did not verify a change, so caches may hold them for {ttl} s after the change is made.",
                title(*step)
            ),
        };
        dns_lines.push(line);
    }
    if dns_lines.is_empty() {
        dns_lines.push("- No DNS record was read in this run (the DNS steps were skipped or could not be checked).".into());
    }
    for l in dns_lines {
        let _ = writeln!(out, "{l}");
    }

    // The partner's-eye check.
    let _ = writeln!(out, "\n## Partner check\n");
    match rows
        .iter()
        .rev()
        .find(|r| r.step == StepId::FederationCheck)
    {
        Some(r) => {
            let _ = writeln!(
                out,
                "**{}** ({} {}, {}): {}",
                r.outcome.as_str(),
                r.pass,
                phase_name(r.phase),
                r.started.map(utc).unwrap_or_else(|| "-".into()),
                cell(r.summary)
            );
        }
        None => {
            let _ = writeln!(out, "Not run in this run.");
        }
    }

    // How it ended.
    let _ = writeln!(out, "\n## How it ended\n");
    match finished {
        Some((o, code, message, _)) => {
            let _ = writeln!(
                out,
                "**{}** (exit {code}): {}",
                outcome_text(o),
                cell(message)
            );
        }
        None => {
            let _ = writeln!(
                out,
                "**No recorded end.** The journal stops after the phases above."
            );
        }
    }
    let _ = writeln!(
        out,
        "\nNext action: {}",
        next_action(finished.map(|f| f.0), command, *dry_run, topology, from, to)
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_cannot_break_the_table_or_inject_markup() {
        // A line break is shown escaped, as all control characters are.
        assert_eq!(cell("a|b\nc<script>"), "a\\|b\\nc&lt;script>");
        assert_eq!(cell(""), "-");
        assert!(!cell("\u{1b}[31mred").contains('\u{1b}'));
    }

    #[test]
    fn local_times_carry_their_offset() {
        let t = humantime::parse_rfc3339("2026-11-23T10:00:00Z").unwrap();
        assert_eq!(
            when(t, Some(3600)),
            "2026-11-23 10:00:00.000 UTC (2026-11-23 11:00:00 local, UTC+01:00)"
        );
        assert_eq!(
            when(t, Some(-5 * 3600 - 1800)),
            "2026-11-23 10:00:00.000 UTC (2026-11-23 04:30:00 local, UTC-05:30)"
        );
    }
}
