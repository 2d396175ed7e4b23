//! Approved plans: `edgefail plan --out FILE` writes what the plan read and
//! would change, `edgefail show FILE` prints it again, and `edgefail
//! failover --plan FILE` applies exactly it (the engine compares every
//! step's fresh reading with the file's before applying the step).
//!
//! # File format, version 1 (JSON)
//!
//! One JSON object: `edgefail_plan` (1, the format), `edgefail_version`,
//! `created_at` (RFC 3339 UTC), `created_by` (user@host), `run_id` (the plan
//! run in the journal), `topology` (path), `topology_sha256` (of the file's
//! bytes), `runbook_sha256` (pools, steps, skips), `from`, `to`, `skipped`
//! (step ids), `steps` (`[{step, number, title, outcome, summary, changes:
//! [{what, old, new}], seen: [{what, value}], details}]`, the check of each
//! step as `plan` showed it; `seen` is what the check read that its change
//! rests on), and `checksum`: `sha256:` and the hex SHA-256 of the other
//! fields serialised as compact JSON with sorted keys. The checksum catches
//! a file edited by hand or damaged in transit; it is not a signature
//! (anyone can recompute it), so keep approved plans where the change
//! process keeps its records.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::event::{
    self, ApprovedPlan, Change, Event, Outcome, Phase, RunOutcome, Seen, StepId, StepInfo,
};
use crate::journal::sha256_hex;

/// The plan file format this edgefail writes and reads.
pub const PLAN_FORMAT: u32 = 1;

/// The largest plan file edgefail reads (a real one is a few kilobytes).
const MAX_BYTES: u64 = 4 * 1024 * 1024;

/// A saved plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanFile {
    pub edgefail_plan: u32,
    pub edgefail_version: String,
    pub created_at: String,
    pub created_by: String,
    pub run_id: String,
    pub topology: String,
    pub topology_sha256: String,
    pub runbook_sha256: String,
    pub from: String,
    pub to: String,
    pub skipped: Vec<StepId>,
    pub steps: Vec<PlannedStep>,
}

/// One step's check as the plan showed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlannedStep {
    pub step: StepId,
    pub number: usize,
    pub title: String,
    pub outcome: Outcome,
    pub summary: String,
    pub changes: Vec<Change>,
    pub seen: Vec<Seen>,
    pub details: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum PlanFileError {
    #[error("cannot read plan file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write plan file {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("plan file {}: not a regular file of at most {MAX_BYTES} bytes", path.display())]
    NotAFile { path: PathBuf },
    #[error("plan file {}:{line}:{column}: not JSON: {message}", path.display())]
    NotJson {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error(
        "plan file {}: not an edgefail plan (no `edgefail_plan` format field); write one with `edgefail plan --out FILE`",
        path.display()
    )]
    NotAPlan { path: PathBuf },
    #[error(
        "plan file {}: format {found}, but this edgefail reads format {PLAN_FORMAT}: make the plan again with this edgefail",
        path.display()
    )]
    Version { path: PathBuf, found: String },
    #[error(
        "plan file {}: its checksum does not match its contents: it was edited or damaged after edgefail wrote it; make and approve a new plan",
        path.display()
    )]
    Tampered { path: PathBuf },
    #[error("plan file {}: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
}

/// Why an approved plan cannot be applied (exit 8).
#[derive(Debug, thiserror::Error)]
pub enum Mismatch {
    #[error(
        "the topology changed since the plan was made: {topology} now has sha256 {now}, the plan was made from {was}; make and approve a new plan"
    )]
    TopologyChanged {
        topology: String,
        was: String,
        now: String,
    },
    #[error(
        "the plan was made at {created_at}, {age} ago, past the limit of {limit} (--max-plan-age): make and approve a new plan"
    )]
    Expired {
        created_at: String,
        age: String,
        limit: String,
    },
    #[error(
        "the plan's creation time {created_at} is in the future ({ahead} ahead of this clock): check the clocks, then make a new plan"
    )]
    Future { created_at: String, ahead: String },
    #[error("the plan is for {what} {planned}, but {given} was asked for: {hint}")]
    Differs {
        what: &'static str,
        planned: String,
        given: String,
        hint: &'static str,
    },
}

fn checksum_of(body: &Value) -> String {
    // serde_json's maps keep their keys sorted: one canonical text.
    let text = serde_json::to_vec(body).unwrap_or_default();
    format!("sha256:{}", sha256_hex(&text))
}

fn whole_secs(d: Duration) -> String {
    humantime::format_duration(Duration::from_secs(d.as_secs())).to_string()
}

impl PlanFile {
    /// The plan a plan run showed, from its events (`run_started` and each
    /// step's check); `None` when they lack the run's start.
    pub fn from_events(events: &[Event]) -> Option<PlanFile> {
        let Some(Event::RunStarted {
            run_id,
            from,
            to,
            topology,
            topology_sha256,
            plan_sha256,
            operator,
            at,
            steps,
            skipped,
            ..
        }) = events
            .iter()
            .find(|e| matches!(e, Event::RunStarted { .. }))
        else {
            return None;
        };
        let planned = steps
            .iter()
            .filter_map(|info| {
                events.iter().find_map(|e| match e {
                    Event::PhaseFinished {
                        step,
                        phase: Phase::Check,
                        outcome,
                        summary,
                        changes,
                        seen,
                        details,
                        ..
                    } if *step == info.step => Some(PlannedStep {
                        step: info.step,
                        number: info.number,
                        title: info.title.clone(),
                        outcome: *outcome,
                        summary: summary.clone(),
                        changes: changes.clone(),
                        seen: seen.clone(),
                        details: details.clone(),
                    }),
                    _ => None,
                })
            })
            .collect();
        Some(PlanFile {
            edgefail_plan: PLAN_FORMAT,
            edgefail_version: env!("CARGO_PKG_VERSION").into(),
            created_at: at.clone(),
            created_by: operator.clone(),
            run_id: run_id.clone(),
            topology: topology.clone(),
            topology_sha256: topology_sha256.clone(),
            runbook_sha256: plan_sha256.clone(),
            from: from.clone(),
            to: to.clone(),
            skipped: skipped.clone(),
            steps: planned,
        })
    }

    /// The file's text: the fields, then their checksum.
    pub fn to_text(&self) -> String {
        let mut body = serde_json::to_value(self).unwrap_or(Value::Null);
        let sum = checksum_of(&body);
        if let Value::Object(map) = &mut body {
            map.insert("checksum".into(), Value::String(sum));
        }
        let mut text = serde_json::to_string_pretty(&body).unwrap_or_default();
        text.push('\n');
        text
    }

    /// Write the plan to `path` (replacing a file there).
    pub fn write(&self, path: &Path) -> Result<String, PlanFileError> {
        let text = self.to_text();
        std::fs::write(path, &text).map_err(|source| PlanFileError::Write {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(self.checksum())
    }

    pub fn checksum(&self) -> String {
        checksum_of(&serde_json::to_value(self).unwrap_or(Value::Null))
    }

    /// Read and check a plan file: JSON, this format, the checksum, the
    /// fields.
    pub fn read(path: &Path) -> Result<PlanFile, PlanFileError> {
        let read_err = |source| PlanFileError::Read {
            path: path.to_path_buf(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(read_err)?;
        if !meta.is_file() || meta.len() > MAX_BYTES {
            return Err(PlanFileError::NotAFile {
                path: path.to_path_buf(),
            });
        }
        let bytes = std::fs::read(path).map_err(read_err)?;
        PlanFile::parse(path, &bytes)
    }

    pub fn parse(path: &Path, bytes: &[u8]) -> Result<PlanFile, PlanFileError> {
        let path = path.to_path_buf();
        let mut value: Value =
            serde_json::from_slice(bytes).map_err(|e| PlanFileError::NotJson {
                path: path.clone(),
                line: e.line(),
                column: e.column(),
                // The position is said once, in front.
                message: e
                    .to_string()
                    .split(" at line ")
                    .next()
                    .unwrap_or_default()
                    .to_string(),
            })?;
        let Value::Object(map) = &mut value else {
            return Err(PlanFileError::NotAPlan { path });
        };
        match map.get("edgefail_plan") {
            None => return Err(PlanFileError::NotAPlan { path }),
            Some(Value::Number(n)) if n.as_u64() == Some(u64::from(PLAN_FORMAT)) => {}
            Some(other) => {
                return Err(PlanFileError::Version {
                    path,
                    found: crate::names::printable(&other.to_string()),
                });
            }
        }
        let Some(Value::String(sum)) = map.remove("checksum") else {
            return Err(PlanFileError::Invalid {
                path,
                message: "no `checksum` field: not written by edgefail".into(),
            });
        };
        if checksum_of(&value) != sum {
            return Err(PlanFileError::Tampered { path });
        }
        serde_json::from_value(value).map_err(|e| PlanFileError::Invalid {
            path,
            message: crate::names::printable(&e.to_string()),
        })
    }

    /// Whether the plan may be applied to the topology `topology_text` now.
    pub fn applies(
        &self,
        topology_path: &str,
        topology_text: &str,
        max_age: Duration,
        now: SystemTime,
    ) -> Result<(), Mismatch> {
        let sha = sha256_hex(topology_text.as_bytes());
        if sha != self.topology_sha256 {
            return Err(Mismatch::TopologyChanged {
                topology: topology_path.to_string(),
                was: self.topology_sha256.clone(),
                now: sha,
            });
        }
        let created =
            humantime::parse_rfc3339_weak(&self.created_at).map_err(|_| Mismatch::Expired {
                created_at: crate::names::printable(&self.created_at),
                age: "an unknown time".into(),
                limit: whole_secs(max_age),
            })?;
        match now.duration_since(created) {
            Ok(age) if age > max_age => Err(Mismatch::Expired {
                created_at: self.created_at.clone(),
                age: whole_secs(age),
                limit: whole_secs(max_age),
            }),
            Ok(_) => Ok(()),
            // A few minutes of clock difference between machines is normal.
            Err(e) if e.duration() > Duration::from_secs(300) => Err(Mismatch::Future {
                created_at: self.created_at.clone(),
                ahead: whole_secs(e.duration()),
            }),
            Err(_) => Ok(()),
        }
    }

    /// Each step's readings, for the engine to compare against.
    pub fn readings(&self) -> std::collections::HashMap<StepId, Vec<Seen>> {
        self.steps
            .iter()
            .filter(|s| s.outcome != Outcome::Skipped)
            .map(|s| (s.step, s.seen.clone()))
            .collect()
    }

    /// What a run that applies this plan records about it.
    pub fn approved(&self, path: &Path) -> ApprovedPlan {
        ApprovedPlan {
            path: path.display().to_string(),
            checksum: self.checksum(),
            created_at: self.created_at.clone(),
            created_by: self.created_by.clone(),
        }
    }

    /// The plan as the events `plan` showed, for the reporters.
    pub fn events(&self) -> Vec<Event> {
        let mut out = vec![Event::RunStarted {
            format: event::FORMAT,
            run_id: self.run_id.clone(),
            command: "plan".into(),
            from: self.from.clone(),
            to: self.to.clone(),
            dry_run: true,
            topology: self.topology.clone(),
            topology_sha256: self.topology_sha256.clone(),
            plan_sha256: self.runbook_sha256.clone(),
            operator: self.created_by.clone(),
            at: self.created_at.clone(),
            steps: self
                .steps
                .iter()
                .map(|s| StepInfo {
                    step: s.step,
                    number: s.number,
                    title: s.title.clone(),
                })
                .collect(),
            skipped: self.skipped.clone(),
            resumes: None,
            utc_offset_secs: None,
            approved_plan: None,
        }];
        let mut counts: BTreeMap<Outcome, usize> = BTreeMap::new();
        for s in &self.steps {
            *counts.entry(s.outcome).or_default() += 1;
            out.push(Event::PhaseStarted {
                step: s.step,
                phase: Phase::Check,
                at: self.created_at.clone(),
            });
            out.push(Event::PhaseFinished {
                step: s.step,
                phase: Phase::Check,
                outcome: s.outcome,
                summary: s.summary.clone(),
                changes: s.changes.clone(),
                seen: s.seen.clone(),
                details: s.details.clone(),
                duration_ms: 0,
            });
        }
        out.push(Event::RunFinished {
            outcome: RunOutcome::ChangesPending,
            exit_code: crate::exit::Exit::ChangesPending.code(),
            message: format!(
                "saved plan made by {} at {} ({})",
                self.created_by,
                self.created_at,
                self.checksum()
            ),
            counts,
            duration_ms: 0,
            estate: None,
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> PlanFile {
        PlanFile {
            edgefail_plan: PLAN_FORMAT,
            edgefail_version: "0.1.0".into(),
            created_at: "2026-11-23T10:00:00Z".into(),
            created_by: "op@admin".into(),
            run_id: "r1".into(),
            topology: "t.yaml".into(),
            topology_sha256: sha256_hex(b"topology"),
            runbook_sha256: "abc".into(),
            from: "EdgePool1".into(),
            to: "EdgePool2".into(),
            skipped: vec![StepId::PortCheck],
            steps: vec![PlannedStep {
                step: StepId::DnsA,
                number: 4,
                title: "Point xmpp A".into(),
                outcome: Outcome::WouldChange,
                summary: "would point".into(),
                changes: vec![Change {
                    what: "xmpp.contoso.com A".into(),
                    old: "203.0.113.10".into(),
                    new: "203.0.113.20".into(),
                }],
                seen: vec![Seen {
                    what: "xmpp.contoso.com A on 192.0.2.53:53 (primary)".into(),
                    value: "203.0.113.10 (EdgePool1) [TTL 300]".into(),
                }],
                details: Vec::new(),
            }],
        }
    }

    #[test]
    fn a_plan_reads_back_as_written() {
        let plan = sample();
        let text = plan.to_text();
        let back = PlanFile::parse(Path::new("p.json"), text.as_bytes()).unwrap();
        assert_eq!(back, plan);
    }

    #[test]
    fn bad_files_get_clear_errors() {
        let path = Path::new("p.json");
        let text = sample().to_text();
        let err = |bytes: &[u8]| PlanFile::parse(path, bytes).unwrap_err().to_string();
        assert_eq!(
            err(b"nope"),
            "plan file p.json:1:2: not JSON: expected ident"
        );
        assert!(err(b"{}").contains("not an edgefail plan"));
        let newer = text.replace("\"edgefail_plan\": 1", "\"edgefail_plan\": 2");
        assert!(err(newer.as_bytes()).contains("format 2"));
        let moved = text.replace("203.0.113.10 (EdgePool1)", "203.0.113.99 (EdgePool1)");
        assert!(err(moved.as_bytes()).contains("edited or damaged"));
        let unsummed = text.replace("\"checksum\"", "\"checksun\"");
        assert!(err(unsummed.as_bytes()).contains("no `checksum`"));
    }

    #[test]
    fn a_changed_topology_an_old_plan_and_a_future_one_are_refused() {
        let plan = sample();
        let made = humantime::parse_rfc3339("2026-11-23T10:00:00Z").unwrap();
        let day = Duration::from_secs(86_400);
        assert!(plan.applies("t.yaml", "topology", day, made).is_ok());
        let e = plan.applies("t.yaml", "topology!", day, made).unwrap_err();
        assert!(matches!(e, Mismatch::TopologyChanged { .. }), "{e}");
        let e = plan
            .applies(
                "t.yaml",
                "topology",
                day,
                made + day + Duration::from_secs(60),
            )
            .unwrap_err();
        assert!(e.to_string().contains("1day 1m ago"), "{e}");
        let e = plan
            .applies("t.yaml", "topology", day, made - Duration::from_secs(3600))
            .unwrap_err();
        assert!(matches!(e, Mismatch::Future { .. }), "{e}");
    }
}
