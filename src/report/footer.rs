//! The closing words of a failover that stopped short (a failure, a verify
//! failure, an interruption, a crash): the state of the estate as it was
//! read at the end, which steps are done, what to fix, and the exact
//! command that continues. The human reporter appends it to the summary;
//! JSON carries the same as `run_finished.estate`.

use std::fmt::Write;

use crate::event::{EstateState, StepId};
use crate::names::printable;

fn ids(steps: &[StepId]) -> String {
    if steps.is_empty() {
        "none".to_string()
    } else {
        steps
            .iter()
            .map(|s| format!("{} ({})", s.number(), s.as_str()))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The footer, as lines ending in a newline.
pub fn render(estate: &EstateState) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "\nState of the estate (read just now, not assumed):");
    for r in &estate.readings {
        let _ = writeln!(
            out,
            "  {:<16} {}: {}",
            r.step.as_str(),
            printable(&r.what),
            printable(&r.state)
        );
    }
    let _ = writeln!(out, "Steps done and verified: {}", ids(&estate.steps_done));
    if !estate.steps_unverified.is_empty() {
        let _ = writeln!(
            out,
            "Applied or attempted by this run, not verified: {}",
            ids(&estate.steps_unverified)
        );
    }
    let _ = writeln!(out, "Fix first: {}", printable(&estate.fix));
    let _ = writeln!(out, "Then run: {}", printable(&estate.next));
    out
}

/// The footer a crash can still give: no state could be read, only what
/// the journal says was done.
pub fn render_crash(steps_done: &[StepId], next: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nState of the estate: NOT read (edgefail crashed); `edgefail plan` or the resume below reads it."
    );
    let _ = writeln!(
        out,
        "Steps done and verified (from the journal): {}",
        ids(steps_done)
    );
    let _ = writeln!(out, "Then run: {}", printable(next));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EstateReading;

    #[test]
    fn says_what_was_read_what_is_done_and_what_next() {
        let text = render(&EstateState {
            steps_done: vec![StepId::ServicesStop, StepId::RouteSet],
            steps_unverified: vec![StepId::DnsA],
            readings: vec![EstateReading {
                step: StepId::ServicesStart,
                what: "EdgeServer2.contoso.com services".into(),
                state: "RTCSRV Stopped\u{1b}[2J".into(),
            }],
            fix: "dns.a failed: BADSIG".into(),
            next: "edgefail failover --resume -t t.yaml".into(),
        });
        assert!(text.contains("services.start   EdgeServer2.contoso.com services: RTCSRV Stopped"));
        assert!(!text.contains('\u{1b}'), "{text}");
        assert!(text.contains("Steps done and verified: 2 (services.stop), 3 (route.set)"));
        assert!(text.contains("Applied or attempted by this run, not verified: 4 (dns.a)"));
        assert!(text.contains("Then run: edgefail failover --resume -t t.yaml"));
    }
}
