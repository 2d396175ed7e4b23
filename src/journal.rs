//! The journal: every run's events appended as JSON Lines, and made durable
//! (fsynced) before anything is changed, after each change, and at a run's
//! start and end, so a failover that dies halfway can be resumed by the
//! next operator without guessing. Also reads it back for `history` and
//! `failover --resume`.
//!
//! Each line is `{"journal_format": 1, "run": "<run id>", <event fields>}`
//! (events as in `event`). A crash leaves at most a partial last line, which
//! the reader skips and reports.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::event::{Event, Outcome, Phase, RunOutcome, Sink};
use crate::steps::StepId;

/// The journal format this edgefail writes and reads.
pub const JOURNAL_FORMAT: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
struct Record {
    journal_format: u32,
    /// The run this line belongs to.
    run: String,
    #[serde(flatten)]
    event: Event,
}

#[derive(Debug, Deserialize)]
struct FormatOnly {
    journal_format: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("cannot open journal {}: {source} (choose another with --journal PATH)", path.display())]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "journal {} line {line} was written by a newer edgefail (journal format {found}; this edgefail reads {JOURNAL_FORMAT}): upgrade edgefail to read it",
        path.display()
    )]
    Newer {
        path: PathBuf,
        line: usize,
        found: u32,
    },
}

/// The name an estate's journal and lock go by: the XMPP domain and the
/// DNS zone, not the topology file's path or the user, so that every copy
/// of a topology and every operator sharing a state directory meet on the
/// same journal and lock: `<domain>-<hash of domain and zone>`.
pub fn estate_key(domain: &str, zone: &str) -> String {
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    let zone = zone.trim_end_matches('.').to_ascii_lowercase();
    let stem: String = domain
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let hash = sha256_hex(format!("domain={domain}\nzone={zone}").as_bytes());
    format!("{stem}-{}", hash.get(..12).unwrap_or(&hash))
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// The journal's directory with its missing parents; the directory itself,
/// when missing, only for this user (it holds what runs did and who ran
/// them).
pub fn make_dir(dir: &Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    match crate::platform::create_private_dir(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        other => other,
    }
}

/// An open journal, shared by the run's sink and the signal handler.
#[derive(Clone, Debug)]
pub struct Journal {
    file: Arc<Mutex<File>>,
    pub path: PathBuf,
    run_id: String,
    /// The first write that failed: from then on the run is not recorded,
    /// and must change nothing more.
    failed: Arc<Mutex<Option<String>>>,
}

impl Journal {
    pub fn open(path: &Path, run_id: &str) -> Result<Journal, JournalError> {
        let open_err = |source| JournalError::Open {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            make_dir(dir).map_err(open_err)?;
        }
        let file = crate::platform::open_private_append(path).map_err(open_err)?;
        Ok(Journal {
            file: Arc::new(Mutex::new(file)),
            path: path.to_path_buf(),
            run_id: run_id.to_string(),
            failed: Arc::default(),
        })
    }

    /// Append one event and make it durable; Err says why it could not be
    /// (disk full, read-only, permission), and is remembered (see
    /// [`Journal::failure`]).
    pub fn append(&self, event: &Event) -> Result<(), String> {
        let record = Record {
            journal_format: JOURNAL_FORMAT,
            run: self.run_id.clone(),
            event: event.clone(),
        };
        let result = match serde_json::to_string(&record) {
            Ok(line) => {
                let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
                // One write per line keeps concurrent appenders from
                // interleaving.
                file.write_all(format!("{line}\n").as_bytes())
                    .and_then(|()| {
                        if durable_at_once(event) {
                            file.sync_data()
                        } else {
                            Ok(())
                        }
                    })
                    .map_err(|e| e.to_string())
            }
            Err(e) => Err(e.to_string()),
        };
        if let Err(why) = &result {
            tracing::error!("cannot write the journal {}: {why}", self.path.display());
            let mut failed = self.failed.lock().unwrap_or_else(|p| p.into_inner());
            failed.get_or_insert_with(|| {
                format!(
                    "the journal {} cannot be written: {why}",
                    self.path.display()
                )
            });
        }
        result
    }

    /// Why the journal stopped recording, if it did.
    pub fn failure(&self) -> Option<String> {
        self.failed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// Whether `event` must be on disk before the run goes on: the run's
/// start and end, what the operator must do, a check's result (the engine
/// asks whether the journal still records right after it, before it
/// applies anything, so a flush that fails, as a full disk can on a
/// delayed write, stops the run there), and an apply phase's start (before
/// the change is sent) and end (the change made). Each sync also makes
/// every line before it durable; the lines between (phase starts,
/// verifies, transcripts: a hundred or more on a large estate, each a disk
/// flush if synced alone) are written at once and reach the disk with the
/// next sync. Losing them in a crash loses no decision: resume re-checks
/// every step.
fn durable_at_once(event: &Event) -> bool {
    match event {
        Event::RunStarted { .. } | Event::RunFinished { .. } | Event::OperatorAction { .. } => true,
        Event::PhaseStarted { phase, .. } => *phase == Phase::Apply,
        Event::PhaseFinished { phase, .. } => matches!(phase, Phase::Check | Phase::Apply),
        _ => false,
    }
}

impl Sink for Journal {
    fn event(&mut self, event: &Event) {
        let _ = self.append(event);
    }

    fn broken(&self) -> Option<String> {
        self.failure()
    }
}

/// One run as the journal tells it.
#[derive(Debug, Clone)]
pub struct Run {
    pub run_id: String,
    pub events: Vec<Event>,
}

impl Run {
    pub fn started(&self) -> Option<&Event> {
        self.events
            .iter()
            .find(|e| matches!(e, Event::RunStarted { .. }))
    }

    pub fn finished(&self) -> Option<(RunOutcome, i32, &str)> {
        self.events.iter().rev().find_map(|e| match e {
            Event::RunFinished {
                outcome,
                exit_code,
                message,
                ..
            } => Some((*outcome, *exit_code, message.as_str())),
            _ => None,
        })
    }

    fn started_field<T>(&self, f: impl Fn(&Event) -> Option<T>) -> Option<T> {
        self.started().and_then(f)
    }

    pub fn is_apply_run(&self) -> bool {
        self.started_field(|e| match e {
            Event::RunStarted {
                command, dry_run, ..
            } => Some(command == "failover" && !dry_run),
            _ => None,
        })
        .unwrap_or(false)
    }

    /// A failover that did not reach its end: crashed, failed or interrupted.
    pub fn is_unfinished(&self) -> bool {
        self.is_apply_run()
            && !matches!(
                self.finished().map(|f| f.0),
                Some(RunOutcome::Completed | RunOutcome::NothingToDo | RunOutcome::Declined)
            )
    }

    pub fn resumes(&self) -> Option<String> {
        self.started_field(|e| match e {
            Event::RunStarted { resumes, .. } => resumes.clone(),
            _ => None,
        })
    }
}

/// What the journal holds, and what could not be read.
#[derive(Debug, Default)]
pub struct Contents {
    pub runs: Vec<Run>,
    pub problems: Vec<String>,
}

impl Contents {
    pub fn run(&self, id: &str) -> Option<&Run> {
        self.runs.iter().find(|r| r.run_id == id)
    }
}

/// Read a journal; a missing file is an empty journal.
pub fn read(path: &Path) -> Result<Contents, JournalError> {
    let text = match std::fs::read(path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Contents::default()),
        Err(source) => {
            return Err(JournalError::Open {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let ends_cleanly = text.ends_with('\n');
    let lines: Vec<&str> = text.lines().collect();
    let mut contents = Contents::default();
    let mut index: HashMap<String, usize> = HashMap::new();
    for (i, line) in lines.iter().enumerate() {
        let number = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        if let Ok(f) = serde_json::from_str::<FormatOnly>(line)
            && f.journal_format > JOURNAL_FORMAT
        {
            return Err(JournalError::Newer {
                path: path.to_path_buf(),
                line: number,
                found: f.journal_format,
            });
        }
        match serde_json::from_str::<Record>(line) {
            Ok(record) => {
                let at = *index.entry(record.run.clone()).or_insert_with(|| {
                    contents.runs.push(Run {
                        run_id: record.run.clone(),
                        events: Vec::new(),
                    });
                    contents.runs.len() - 1
                });
                contents.runs[at].events.push(record.event);
            }
            Err(e) => {
                let last = number == lines.len();
                contents.problems.push(if last && !ends_cleanly {
                    format!("{}:{number}: partial last line (a run was cut off while writing it); ignored", path.display())
                } else {
                    format!("{}:{number}: unreadable line ({e}); ignored", path.display())
                });
            }
        }
    }
    Ok(contents)
}

/// What an earlier run left each step in, for `--resume`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Left {
    /// Applied and verified: re-verify, don't redo.
    Verified { run_id: String },
    /// Apply started (or failed, or was not verified): its check decides.
    Dirty { run_id: String, why: String },
}

/// Fold the chain of runs that `run` resumes (oldest first) into each
/// step's last known state.
pub fn left_by(contents: &Contents, run: &Run) -> HashMap<StepId, Left> {
    let mut chain = vec![run];
    let mut seen = vec![run.run_id.clone()];
    while let Some(prev) = chain.last().and_then(|r| r.resumes()) {
        if seen.contains(&prev) {
            break;
        }
        match contents.run(&prev) {
            Some(r) => {
                seen.push(prev);
                chain.push(r);
            }
            None => break,
        }
    }
    let mut left = HashMap::new();
    for r in chain.iter().rev() {
        let mut applying: HashMap<StepId, bool> = HashMap::new();
        for e in &r.events {
            match e {
                Event::PhaseStarted {
                    step,
                    phase: Phase::Apply,
                    ..
                } => {
                    applying.insert(*step, true);
                    left.insert(
                        *step,
                        Left::Dirty {
                            run_id: r.run_id.clone(),
                            why: "its apply started but no outcome was recorded".into(),
                        },
                    );
                }
                Event::PhaseFinished {
                    step,
                    phase: Phase::Apply,
                    outcome,
                    ..
                } => {
                    applying.insert(*step, false);
                    left.insert(
                        *step,
                        Left::Dirty {
                            run_id: r.run_id.clone(),
                            why: if *outcome == Outcome::Failed {
                                "its apply failed".into()
                            } else {
                                "it was applied but not verified".into()
                            },
                        },
                    );
                }
                Event::PhaseFinished {
                    step,
                    phase: Phase::Verify,
                    outcome,
                    ..
                } => {
                    left.insert(
                        *step,
                        if *outcome == Outcome::Verified {
                            Left::Verified {
                                run_id: r.run_id.clone(),
                            }
                        } else {
                            Left::Dirty {
                                run_id: r.run_id.clone(),
                                why: "its verify failed".into(),
                            }
                        },
                    );
                }
                _ => {}
            }
        }
    }
    left
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Level, Origin};

    fn phase(step: StepId, phase: Phase) -> Event {
        Event::PhaseStarted {
            step,
            phase,
            at: String::new(),
        }
    }

    #[test]
    fn the_journal_is_on_disk_before_a_change_and_after_it() {
        assert!(durable_at_once(&phase(StepId::DnsA, Phase::Apply)));
        assert!(durable_at_once(&Event::RunFinished {
            outcome: RunOutcome::Completed,
            exit_code: 0,
            message: String::new(),
            counts: Default::default(),
            duration_ms: 0,
            estate: None,
        }));
        // A check's result is synced: the engine's last look at the
        // journal before an apply follows it.
        let checked = Event::PhaseFinished {
            step: StepId::DnsA,
            phase: Phase::Check,
            outcome: Outcome::WouldChange,
            summary: String::new(),
            changes: Vec::new(),
            seen: Vec::new(),
            details: Vec::new(),
            duration_ms: 0,
        };
        assert!(durable_at_once(&checked));
        // The rest is written at once and made durable with the next sync.
        assert!(!durable_at_once(&phase(StepId::DnsA, Phase::Check)));
        assert!(!durable_at_once(&phase(
            StepId::ServicesStop,
            Phase::Verify
        )));
        assert!(!durable_at_once(&Event::Warning {
            origin: Origin::Topology,
            level: Level::Warning,
            message: String::new(),
            at: None,
        }));
    }

    #[test]
    fn lines_written_without_a_sync_are_there_to_read_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        let journal = Journal::open(&path, "run-1").unwrap();
        journal.append(&phase(StepId::DnsA, Phase::Check)).unwrap();
        // Another process (a second operator's `history`) sees it at once.
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(r#""phase":"check""#), "{text}");
    }
}
