//! Safe to interrupt, safe to resume: the journal, `--resume`, the lock and
//! signals, as a fault matrix against the PowerShell stand-in. Each case
//! checks the exit code, the message, the journal, and that a resume
//! completes the failover with nothing lost and nothing done twice.

use std::path::{Path, PathBuf};

use edgefail::event::{Event, Outcome as PhaseOutcome, Phase, RunOutcome};
use edgefail::steps::StepId;
use serde_json::json;

use crate::harness::events::Ending;
use crate::harness::standin::{Estate, LYNC_STEPS};
use crate::harness::topology::Topology;
use crate::harness::{Events, Outcome, Run, wait_for_text};

/// EdgePool1 -> EdgePool2, the Lync steps only, journal in the estate.
fn failover(estate: &Estate, topology: &Path) -> Run {
    Run::failover(topology)
        .yes()
        .from("EdgePool1")
        .to("EdgePool2")
        .journal(&journal_path(estate))
        .only(&LYNC_STEPS)
}

fn resume(estate: &Estate, topology: &Path) -> Run {
    Run::failover(topology)
        .resume()
        .yes()
        .journal(&journal_path(estate))
}

fn journal_path(estate: &Estate) -> PathBuf {
    estate.path("journal.jsonl")
}

fn journal(estate: &Estate) -> Vec<Event> {
    crate::harness::journal_events(&journal_path(estate))
}

/// `edgefail history` on this estate's journal.
fn history(estate: &Estate, topology: &Path) -> Run {
    Run::history(topology).journal(&journal_path(estate))
}

/// How each run in the journal ended, in order.
fn finishes(estate: &Estate) -> Vec<Ending> {
    journal(estate).run_endings()
}

/// A resume that ends well: it either finished the work, or found that the
/// command in flight when the run stopped had already done it.
#[track_caller]
fn resumed_ok(out: Outcome) -> Outcome {
    let out = out.code(0);
    assert!(
        out.stdout.contains("Failover complete") || out.stdout.contains("Nothing to do"),
        "{}",
        out.stdout
    );
    out
}

#[test]
fn stop_failing_on_one_of_three_servers_then_resume() {
    let estate = Estate::new(2);
    estate.fault(
        "EdgeServer2c.contoso.com",
        "Stop-CsWindowsService",
        "fail",
        "Access is denied.",
    );
    let topology = estate.topology();
    let out = failover(&estate, &topology).run().code(1);
    assert!(
        out.stdout
            .contains("EdgeServer2c.contoso.com: Stop-CsWindowsService failed: Access is denied."),
        "{}",
        out.stdout
    );
    let (outcome, exit_code, _) = finishes(&estate).pop().unwrap();
    assert_eq!((outcome, exit_code), (RunOutcome::Failed, 1));
    assert!(journal(&estate).finished().iter().any(|f| f.is(
        StepId::ServicesStop,
        Phase::Apply,
        PhaseOutcome::Failed
    )));

    estate.clear_faults();
    let out = resumed_ok(resume(&estate, &topology).run());
    assert!(out.stdout.contains("resumed: in run"), "{}", out.stdout);
    assert!(out.stdout.contains("its apply failed"), "{}", out.stdout);
    estate.assert_failed_over();
    // Two servers stopped in the first run; only the third again.
    assert_eq!(estate.count("Stop-CsWindowsService"), 4);
    assert_eq!(estate.count("Set-CsSite"), 1);
    assert_eq!(estate.count("Start-CsWindowsService"), 3);
    // The resume is linked to the run it continues.
    let starts = journal(&estate).run_starts();
    assert_eq!(starts[1].1.as_ref(), Some(&starts[0].0));
}

#[test]
fn set_cssite_failing_then_resume() {
    let estate = Estate::new(0);
    estate.add_fault(json!({"host": "fe1.contoso.com", "cmdlet": "Set-CsSite", "action": "fail", "message": "Cannot connect to the Central Management Store.", "times": 1}));
    let topology = estate.topology();
    let out = failover(&estate, &topology).run().code(1);
    assert!(
        out.stdout.contains(
            "management shell: Set-CsSite failed: Cannot connect to the Central Management Store."
        ),
        "{}",
        out.stdout
    );
    let out = resumed_ok(resume(&estate, &topology).run());
    assert!(
        out.stdout.contains("re-verified, not redone"),
        "step 2 was verified before: {}",
        out.stdout
    );
    estate.assert_failed_over();
    assert_eq!(
        estate.count("Stop-CsWindowsService"),
        1,
        "step 2 was redone"
    );
    assert_eq!(estate.count("Set-CsSite"), 2);
    assert_eq!(estate.count("Start-CsWindowsService"), 1);
}

#[test]
fn start_hanging_past_its_deadline_then_resume() {
    let estate = Estate::new(1);
    estate.add_fault(json!({"host": "EdgeServer2b.contoso.com", "cmdlet": "Start-CsWindowsService", "action": "hang", "times": 1}));
    let topology = estate.topology();
    let out = failover(&estate, &topology)
        .command_timeout(1)
        .run()
        .code(1);
    assert!(
        out.stdout
            .contains("EdgeServer2b.contoso.com: Start-CsWindowsService: no answer within 1s"),
        "{}",
        out.stdout
    );
    resumed_ok(resume(&estate, &topology).run());
    estate.assert_failed_over();
    assert_eq!(estate.count("Stop-CsWindowsService"), 2);
    assert_eq!(estate.count("Set-CsSite"), 1);
    // Each server started once, plus the one whose start hung.
    assert_eq!(estate.count("Start-CsWindowsService"), 3);
}

/// Ctrl-C while `cmdlet` is in flight: it finishes, the run stops with 130,
/// the journal says interrupted, and a resume completes.
fn interrupt_during(cmdlet: &str, after_event: &str) {
    let estate = Estate::new(0);
    estate.add_fault(json!({"host": "EdgeServer2.contoso.com", "cmdlet": cmdlet, "action": "slow", "ms": 3000, "times": 1}));
    let topology = estate.topology();
    let child = failover(&estate, &topology).spawn();
    wait_for_text(&journal_path(&estate), after_event);
    child.signal("INT");
    let out = child.wait().code(130);
    assert!(
        out.stderr.contains("stopping after the command in flight"),
        "{}",
        out.stderr
    );
    assert!(out.stdout.contains("INTERRUPTED"), "{}", out.stdout);
    assert!(out.stdout.contains("--resume"), "{}", out.stdout);
    let (outcome, exit_code, _) = finishes(&estate).pop().unwrap();
    assert_eq!((outcome, exit_code), (RunOutcome::Interrupted, 130));
    // The command in flight was let finish.
    assert_eq!(estate.count(cmdlet), 1);

    resumed_ok(resume(&estate, &topology).run());
    estate.assert_failed_over();
    for c in [
        "Stop-CsWindowsService",
        "Set-CsSite",
        "Start-CsWindowsService",
    ] {
        assert_eq!(estate.count(c), 1, "{c} ran twice");
    }
}

#[test]
fn sigint_during_step_2() {
    interrupt_during(
        "Stop-CsWindowsService",
        r#""step":"services.stop","phase":"apply","at""#,
    );
}

#[test]
fn sigint_during_step_7() {
    interrupt_during(
        "Start-CsWindowsService",
        r#""step":"services.start","phase":"apply","at""#,
    );
}

#[test]
fn second_ctrl_c_abandons_at_once() {
    let estate = Estate::new(0);
    estate.add_fault(
        json!({"host": "fe1.contoso.com", "cmdlet": "Set-CsSite", "action": "hang", "outlive": true, "times": 1}),
    );
    let topology = estate.topology();
    let child = failover(&estate, &topology).spawn();
    wait_for_text(
        &journal_path(&estate),
        r#""step":"route.set","phase":"apply","at""#,
    );
    child.signal("INT");
    wait_for_text(
        &estate.path("journal.jsonl"),
        r#""step":"route.set","phase":"apply""#,
    );
    std::thread::sleep(std::time::Duration::from_millis(200));
    child.signal("INT");
    let out = child.wait().code(130);
    assert!(out.stderr.contains("abandoned at once"), "{}", out.stderr);
    // The hung local command was ended with the run, not left behind.
    let state = estate.state.display().to_string();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while processes_mentioning(&state) > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "a stand-in outlived the abandoned run"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let (outcome, _, message) = finishes(&estate).pop().unwrap();
    assert_eq!(outcome, RunOutcome::Interrupted);
    assert!(message.contains("abandoned"), "{message}");
    // The hung Set-CsSite never changed anything; resume sets the route.
    let out = resumed_ok(resume(&estate, &topology).run());
    assert!(
        out.stdout
            .contains("its apply started but no outcome was recorded"),
        "{}",
        out.stdout
    );
    assert!(
        out.stderr.contains("left its lock behind"),
        "{}",
        out.stderr
    );
    estate.assert_failed_over();
}

#[test]
fn sigkill_in_the_middle_then_resume_reports_the_stale_lock() {
    let estate = Estate::new(0);
    estate.add_fault(json!({"host": "EdgeServer2.contoso.com", "cmdlet": "Start-CsWindowsService", "action": "slow", "ms": 3000, "times": 1}));
    let topology = estate.topology();
    let child = failover(&estate, &topology).spawn();
    wait_for_text(
        &journal_path(&estate),
        r#""step":"services.start","phase":"apply","at""#,
    );
    let pid = child.pid();
    child.signal("KILL");
    let out = child.wait();
    assert_ne!(out.code, 0);
    assert!(
        finishes(&estate).is_empty(),
        "a killed run cannot record its end"
    );

    // history shows it as unfinished and resumable.
    let hist = history(&estate, &topology).run().code(0);
    assert!(
        hist.stdout.contains("unfinished (no end recorded)"),
        "{}",
        hist.stdout
    );
    assert!(hist.stdout.contains("<- resumable"), "{}", hist.stdout);

    let out = resumed_ok(resume(&estate, &topology).run());
    assert!(
        out.stderr.contains(&format!("pid {pid}")),
        "stale lock not reported: {}",
        out.stderr
    );
    assert!(
        out.stderr.contains("(that process is gone)"),
        "{}",
        out.stderr
    );
    estate.assert_failed_over();
    assert_eq!(estate.count("Stop-CsWindowsService"), 1);
    assert_eq!(estate.count("Set-CsSite"), 1);
}

#[test]
fn two_concurrent_runs_the_second_fails_at_once_naming_the_holder() {
    let estate = Estate::new(0);
    estate.add_fault(json!({"host": "EdgeServer2.contoso.com", "cmdlet": "Stop-CsWindowsService", "action": "slow", "ms": 2000, "times": 1}));
    let topology = estate.topology();
    let first = failover(&estate, &topology).spawn();
    wait_for_text(&journal_path(&estate), r#""phase":"apply""#);
    let second = failover(&estate, &topology).run().code(6);
    assert!(
        second
            .stderr
            .contains("another failover of this estate is running"),
        "{}",
        second.stderr
    );
    assert!(
        second.stderr.contains(&format!("pid {}", first.pid())),
        "{}",
        second.stderr
    );
    first.wait().code(0);
    estate.assert_failed_over();
    assert_eq!(estate.count("Stop-CsWindowsService"), 1);
    // `unlock` has nothing to break once the holder finished cleanly.
    Run::unlock(&topology)
        .journal(&journal_path(&estate))
        .run()
        .code(0)
        .stdout_has("nothing to unlock");
}

#[test]
fn a_corrupted_journal_line_is_reported_and_resume_still_works() {
    let estate = Estate::new(0);
    estate.add_fault(json!({"host": "EdgeServer2.contoso.com", "cmdlet": "Start-CsWindowsService", "action": "fail", "message": "Service RTCSRV failed to start.", "times": 1}));
    let topology = estate.topology();
    failover(&estate, &topology).run().code(1);
    // Damage a line in the middle and leave a partial line at the end.
    let path = journal_path(&estate);
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    lines[3] = "{\"journal_format\":1,\"run_id\": garbage".into();
    std::fs::write(
        &path,
        format!("{}\n{{\"journal_format\":1,\"run", lines.join("\n")),
    )
    .unwrap();

    let hist = history(&estate, &topology).run().code(0);
    assert!(
        hist.stderr.contains("journal.jsonl:4: unreadable line"),
        "{}",
        hist.stderr
    );
    assert!(hist.stderr.contains("partial last line"), "{}", hist.stderr);
    let out = resumed_ok(resume(&estate, &topology).run());
    assert!(out.stderr.contains("unreadable line"), "{}", out.stderr);
    estate.assert_failed_over();
    assert_eq!(estate.count("Set-CsSite"), 1);
}

#[test]
fn resume_refuses_an_edited_topology_a_newer_journal_and_a_finished_run() {
    let estate = Estate::new(0);
    estate.add_fault(json!({"host": "fe1.contoso.com", "cmdlet": "Set-CsSite", "action": "fail", "message": "boom", "times": 1}));
    let topology = estate.topology();
    failover(&estate, &topology).run().code(1);

    // Edited topology.
    let original = std::fs::read_to_string(&topology).unwrap();
    let mut edited = Topology::estate(&estate);
    edited.timeouts.command_secs = Some(11);
    assert_eq!(edited.write(estate.dir.path()), topology);
    resume(&estate, &topology)
        .run()
        .code(7)
        .stderr_has("the topology changed since run");
    std::fs::write(&topology, &original).unwrap();

    // A journal line from a newer edgefail.
    let path = journal_path(&estate);
    let saved = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        format!("{saved}{{\"journal_format\":99,\"run_id\":\"x\",\"type\":\"future\"}}\n"),
    )
    .unwrap();
    resume(&estate, &topology)
        .run()
        .code(7)
        .stderr_has("written by a newer edgefail (journal format 99");
    std::fs::write(&path, saved).unwrap();

    // Different pools than the run being resumed.
    resume(&estate, &topology)
        .to("EdgePool1")
        .from("EdgePool2")
        .run()
        .code(7)
        .stderr_has("differs from run");

    resumed_ok(resume(&estate, &topology).run());
    resume(&estate, &topology)
        .run()
        .code(7)
        .stderr_has("nothing to resume: the last failover");
}

#[test]
fn history_lists_and_shows_runs() {
    let estate = Estate::new(0);
    let topology = estate.topology();
    failover(&estate, &topology).run().code(0);
    let list = history(&estate, &topology).json().run().code(0);
    let runs = list.json_lines();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["outcome"], "completed");
    assert_eq!(runs[0]["from"], "EdgePool1");
    assert!(runs[0]["operator"].as_str().unwrap().contains('@'));
    let id = runs[0]["run_id"].as_str().unwrap().to_string();
    history(&estate, &topology)
        .arg(&id)
        .run()
        .code(0)
        .stdout_has("route.set        verify verified");
    let shown = history(&estate, &topology).arg(&id).json().run().code(0);
    let events = shown.json_lines();
    assert_eq!(events[0]["type"], "run_started");
    assert_eq!(events[0]["topology_sha256"].as_str().unwrap().len(), 64);
    history(&estate, &topology)
        .arg("nope")
        .run()
        .code(2)
        .stderr_has("no run nope");
}

#[test]
fn unlock_clears_a_record_left_by_a_dead_run() {
    let estate = Estate::new(0);
    let topology = estate.topology();
    let lock = crate::harness::lock_path(&topology, "contoso.com", "contoso.com");
    std::fs::create_dir_all(lock.parent().unwrap()).unwrap();
    std::fs::write(&lock, r#"{"pid":999999999,"host":"elsewhere","user":"ops","since":"2026-11-22T03:00:00Z","run_id":"old"}"#).unwrap();
    let unlock = || Run::unlock(&topology).journal(&journal_path(&estate));
    unlock().run().code(2).stderr_has("pass --yes");
    unlock()
        .yes()
        .run()
        .code(0)
        .stdout_has("pid 999999999 on elsewhere by ops");
    assert_eq!(std::fs::read_to_string(&lock).unwrap(), "");
}

/// How many processes have `needle` in their command line (looked up only;
/// nothing is signalled by name).
fn processes_mentioning(needle: &str) -> usize {
    std::fs::read_dir("/proc")
        .map(|dir| {
            dir.filter_map(Result::ok)
                .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
                .filter(|c| String::from_utf8_lossy(c).contains(needle))
                .count()
        })
        .unwrap_or(0)
}

/// The lock record here is cleared even when the lease in the zone cannot
/// be looked at (no TSIG secret in this environment): unlock says which
/// it did, and ends with exit 1 for the lease it could not read.
#[test]
fn unlock_clears_the_lock_record_even_when_the_zone_cannot_be_read() {
    let dir = tempfile::tempdir().expect("temp dir");
    let topology = dir.path().join("contoso.yaml");
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("runbooks/contoso.yaml");
    std::fs::copy(example, &topology).expect("copy the example");
    let lock = crate::harness::lock_path(&topology, "contoso.com", "contoso.com");
    std::fs::create_dir_all(lock.parent().expect("state dir")).expect("state dir");
    std::fs::write(
        &lock,
        r#"{"pid":999999999,"host":"elsewhere","user":"ops","since":"2026-11-22T03:00:00Z","run_id":"old"}"#,
    )
    .expect("lock record");
    Run::unlock(&topology)
        .yes()
        .env("EDGEFAIL_TSIG_SECRET", "")
        .run()
        .code(1)
        .stdout_has("cleared the lock record")
        .stderr_has("cannot use the lease in the zone");
    assert_eq!(std::fs::read_to_string(&lock).expect("lock file"), "");
}
