//! The change record: approved plans (`plan --out`, `show`, `failover
//! --plan`), readings confirmed at plan time as the prerequisites of every
//! later step, the Markdown report and the PowerShell export.

use std::path::{Path, PathBuf};

use edgefail::event::RunOutcome;

use crate::harness::bind::{A_NAME, Bind, SRV_NAME};
use crate::harness::prosody::Prosody;
use crate::harness::standin::{Estate, LYNC_STEPS};
use crate::harness::topology::Topology;
use crate::harness::{Events, Run, journal_events, wait_for_text};

fn plan_out(topology: &Path, file: &Path) -> Run {
    Run::plan(topology)
        .from("EdgePool1")
        .to("EdgePool2")
        .only(&LYNC_STEPS)
        .arg("--out")
        .arg(file)
}

fn apply(topology: &Path, file: &Path) -> Run {
    Run::failover(topology).arg("--plan").arg(file)
}

#[test]
fn a_saved_plan_shows_as_planned_and_applies_without_a_prompt() {
    let estate = Estate::new(0);
    let topology = estate.topology();
    let file = estate.path("plan.json");
    let planned = plan_out(&topology, &file).run().code(4);
    assert!(
        planned.stderr.contains("plan saved to"),
        "{}",
        planned.stderr
    );
    let text = std::fs::read_to_string(&file).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["edgefail_plan"], 1);
    assert_eq!(json["from"], "EdgePool1");
    assert!(json["checksum"].as_str().unwrap().starts_with("sha256:"));
    assert!(
        text.contains("EdgeServer2.contoso.com services") && text.contains("RTCSRV Running"),
        "the readings are saved: {text}"
    );

    // `show` prints the plan as `plan` did: the same step lines.
    let shown = Run::new(["show"]).arg(&file).run().code(0);
    for line in planned
        .stdout
        .lines()
        .filter(|l| l.starts_with('[') || l.trim_start().starts_with(['-', '+']))
    {
        let line = line.split(" (").next().unwrap();
        assert!(
            shown.stdout.contains(line),
            "show lacks {line:?}:\n{}",
            shown.stdout
        );
    }
    assert!(estate.writes().is_empty(), "plan or show changed something");

    // No --yes and no terminal: the approved plan is the confirmation.
    let journal = estate.path("journal.jsonl");
    let out = apply(&topology, &file).journal(&journal).run().code(0);
    crate::harness::assert_lync_steps_verified(&out);
    assert_eq!(
        estate.read()["sites"]["Site2"]["route"],
        "EdgeServer2.contoso.com"
    );
    let started = journal_events(&journal).into_iter().next().unwrap();
    match started {
        edgefail::event::Event::RunStarted { approved_plan, .. } => assert_eq!(
            approved_plan
                .expect("the approved plan is journaled")
                .checksum,
            json["checksum"].as_str().unwrap()
        ),
        other => panic!("not run_started: {other:?}"),
    }
    // Applied again: everything is done, nothing changes.
    apply(&topology, &file).run().code(0);
    assert_eq!(estate.writes().len(), 3);
}

#[test]
fn a_changed_topology_an_expired_plan_and_bad_files_are_refused_before_anything() {
    let estate = Estate::new(0);
    let topology = estate.topology();
    let file = estate.path("plan.json");
    plan_out(&topology, &file).run().code(4);

    let original = std::fs::read_to_string(&topology).unwrap();
    std::fs::write(&topology, format!("{original}\n# edited after approval\n")).unwrap();
    apply(&topology, &file)
        .run()
        .code(8)
        .stderr_has("the topology changed since the plan was made");
    std::fs::write(&topology, &original).unwrap();

    std::thread::sleep(std::time::Duration::from_millis(1100));
    apply(&topology, &file)
        .args(["--max-plan-age", "1s"])
        .run()
        .code(8)
        .stderr_has("past the limit of 1s (--max-plan-age)");

    apply(&topology, &file)
        .args(["--from", "EdgePool2", "--to", "EdgePool1"])
        .run()
        .code(8)
        .stderr_has("the plan is for --from EdgePool1");

    let text = std::fs::read_to_string(&file).unwrap();
    let tampered = estate.path("tampered.json");
    std::fs::write(&tampered, text.replace("RTCSRV Running", "RTCSRV Stopped")).unwrap();
    apply(&topology, &tampered)
        .run()
        .code(2)
        .stderr_has("edited or damaged after edgefail wrote it");
    Run::new(["show"])
        .arg(&tampered)
        .run()
        .code(2)
        .stderr_has("edited or damaged");
    let not_json = estate.path("not.json");
    std::fs::write(&not_json, "plan: yes\n").unwrap();
    apply(&topology, &not_json)
        .run()
        .code(2)
        .stderr_has("not.json:1:1: not JSON");
    let newer = estate.path("newer.json");
    std::fs::write(
        &newer,
        text.replace("\"edgefail_plan\": 1", "\"edgefail_plan\": 9"),
    )
    .unwrap();
    apply(&topology, &newer)
        .run()
        .code(2)
        .stderr_has("format 9, but this edgefail reads format 1");

    assert!(
        estate.writes().is_empty(),
        "a refused plan changed {:?}",
        estate.writes()
    );
}

#[test]
fn a_service_started_or_stopped_since_the_plan_stops_the_run_before_anything() {
    let estate = Estate::new(0);
    let topology = estate.topology();
    let file = estate.path("plan.json");
    plan_out(&topology, &file).run().code(4);
    estate.edit(|v| {
        v["hosts"]["EdgeServer2.contoso.com"]["services"]["RTCSRV"] = "Stopped".into();
    });
    let out = apply(&topology, &file).run().code(8);
    assert!(
        out.stdout.contains("EdgeServer2.contoso.com services: was")
            && out.stdout.contains("RTCSRV Running")
            && out.stdout.contains("now")
            && out.stdout.contains("RTCSRV Stopped")
            && out.stdout.contains("nothing was changed"),
        "{}",
        out.stdout
    );
    assert!(estate.writes().is_empty(), "{:?}", estate.writes());
}

/// The stand-in estate with a real BIND carrying the zone (steps 1 to 5 and
/// 7; the port and partner checks are left to the e2e tests).
fn with_bind(estate: &Estate, bind: &Bind) -> PathBuf {
    let prosody = Prosody::shared();
    Topology::estate(estate)
        .dns(bind.dns(estate.dir.path()))
        .srv_targets()
        .xmpp_port(prosody.addr.port())
        .accept_untrusted_cert()
        .address("EdgeServer2.contoso.com", "127.0.0.1")
        .write(estate.dir.path())
}

const SKIP_LOOKS: [&str; 4] = ["--skip", "port.check", "--skip", "federation.check"];

/// `plan --out FILE` with the DNS steps (the looks left out).
fn dns_plan_out(topology: &Path, file: &Path) -> Run {
    Run::plan(topology)
        .from("EdgePool1")
        .to("EdgePool2")
        .args(SKIP_LOOKS)
        .arg("--out")
        .arg(file)
}

#[test]
fn a_record_moved_after_an_approved_plan_is_not_overwritten() {
    let bind = Bind::start_for("127.0.0.10", "127.0.0.1");
    let estate = Estate::new(0);
    let topology = with_bind(&estate, &bind);
    let file = estate.path("plan.json");
    dns_plan_out(&topology, &file).run().code(4);
    bind.nsupdate("update delete xmpp.contoso.com A\nupdate add xmpp.contoso.com 300 A 127.0.0.99");
    let serial = bind.serial(bind.primary.port);
    let out = apply(&topology, &file).run().code(8);
    assert!(
        out.stdout.contains("dns.a: xmpp.contoso.com A on")
            && out
                .stdout
                .contains("was 127.0.0.10 (EdgePool1) [TTL 300], now 127.0.0.99 [TTL 300]"),
        "{}",
        out.stdout
    );
    assert_eq!(bind.serial(bind.primary.port), serial, "DNS was updated");
    assert_eq!(bind.dig(bind.primary.port, A_NAME, "A"), vec!["127.0.0.99"]);
    assert!(estate.writes().is_empty(), "{:?}", estate.writes());
}

#[test]
fn a_record_moved_while_steps_2_and_3_run_is_not_overwritten() {
    let bind = Bind::start_for("127.0.0.10", "127.0.0.1");
    let estate = Estate::new(0);
    let topology = with_bind(&estate, &bind);
    let journal = estate.path("journal.jsonl");
    // Stopping takes a while: long enough to move the record meanwhile.
    estate.add_fault(serde_json::json!({
        "host": "EdgeServer2.contoso.com", "cmdlet": "Stop-CsWindowsService",
        "action": "slow", "ms": 1500, "message": ""
    }));
    let srv_before = bind.dig(bind.primary.port, SRV_NAME, "SRV");
    let run = Run::failover(&topology)
        .from("EdgePool1")
        .to("EdgePool2")
        .args(SKIP_LOOKS)
        .yes()
        .journal(&journal)
        .spawn();
    wait_for_text(&journal, "\"step\":\"services.stop\",\"phase\":\"apply\"");
    bind.nsupdate("update delete xmpp.contoso.com A\nupdate add xmpp.contoso.com 300 A 127.0.0.99");
    let out = run.wait().code(8);
    assert!(
        out.stdout
            .contains("stopped before dns.a: the world moved since the plan shown above")
            && out.stdout.contains("now 127.0.0.99")
            && out.stdout.contains("were applied and verified"),
        "{}",
        out.stdout
    );
    // Z stands; step 5 never ran.
    assert_eq!(bind.dig(bind.primary.port, A_NAME, "A"), vec!["127.0.0.99"]);
    assert_eq!(bind.dig(bind.primary.port, SRV_NAME, "SRV"), srv_before);
    let endings = journal_events(&journal).run_endings();
    assert_eq!(endings.last().unwrap().0, RunOutcome::PlanMismatch);

    // A resume plans afresh from what is there now, and finishes the job.
    estate.clear_faults();
    let out = Run::failover(&topology)
        .args(SKIP_LOOKS)
        .yes()
        .journal(&journal)
        .resume()
        .run()
        .code(0);
    assert!(
        out.stdout.contains("instead of 127.0.0.99"),
        "{}",
        out.stdout
    );
    assert_eq!(bind.dig(bind.primary.port, A_NAME, "A"), vec!["127.0.0.1"]);
    assert_eq!(
        estate.count("Stop-CsWindowsService"),
        1,
        "step 2 was redone"
    );
}

/// A Markdown pipe table's rows under `heading` (header and rule left out),
/// each split into cells on unescaped `|`.
fn table(markdown: &str, heading: &str) -> Vec<Vec<String>> {
    let start = markdown
        .find(heading)
        .unwrap_or_else(|| panic!("no {heading:?} in:\n{markdown}"));
    let rows: Vec<&str> = markdown[start..]
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .collect();
    assert!(rows.len() >= 2, "no table under {heading}");
    assert!(
        rows[1].starts_with("|---"),
        "no rule row under {heading}: {}",
        rows[1]
    );
    rows[2..]
        .iter()
        .map(|row| {
            let mut cells = Vec::new();
            let mut cur = String::new();
            let mut chars = row.trim().trim_start_matches('|').chars().peekable();
            while let Some(c) = chars.next() {
                match c {
                    '\\' if chars.peek() == Some(&'|') => {
                        cur.push('|');
                        chars.next();
                    }
                    '|' => cells.push(std::mem::take(&mut cur).trim().replace("&lt;", "<")),
                    c => cur.push(c),
                }
            }
            cells
        })
        .collect()
}

/// The change record of the journal's last run, checked against the
/// journal: one row per finished phase in order, every change, the ending.
#[track_caller]
fn report_matches_journal(topology: &Path, journal: &Path) -> String {
    use edgefail::event::{Event, Phase};
    let md = Run::new(["report", "-t"])
        .arg(topology)
        .arg("--journal")
        .arg(journal)
        .run()
        .code(0)
        .stdout;
    let records = crate::harness::events::journal_records(journal);
    let last = records.last().unwrap().run.clone();
    let events: Vec<Event> = records
        .into_iter()
        .filter(|r| r.run == last)
        .map(|r| r.event)
        .collect();
    assert!(md.contains(&format!("`{last}`")), "{md}");
    let phases: Vec<(String, String, String)> = events
        .iter()
        .filter_map(|e| match e {
            Event::PhaseFinished {
                step,
                phase,
                outcome,
                ..
            } => Some((
                step.to_string(),
                format!("{phase:?}").to_lowercase(),
                outcome.as_str().to_string(),
            )),
            _ => None,
        })
        .collect();
    let rows = table(&md, "## Steps");
    let finished_rows: Vec<(String, String, String)> = rows
        .iter()
        .filter(|r| r[7] != "**no outcome recorded**")
        .map(|r| (r[1].clone(), r[3].clone(), r[7].clone()))
        .collect();
    assert_eq!(finished_rows, phases, "{md}");
    let changes: Vec<(String, String, String)> = events
        .iter()
        .filter_map(|e| match e {
            Event::PhaseFinished {
                phase: Phase::Apply,
                changes,
                ..
            } => Some(
                changes
                    .iter()
                    .map(|c| (c.what.clone(), c.old.clone(), c.new.clone())),
            ),
            _ => None,
        })
        .flatten()
        .collect();
    let changed: Vec<(String, String, String)> = table(&md, "## What changed")
        .into_iter()
        .filter(|r| r[3] != "-")
        .map(|r| (r[2].clone(), r[3].clone(), r[4].clone()))
        .collect();
    assert_eq!(changed, changes, "{md}");
    let ending = events.iter().rev().find_map(|e| match e {
        Event::RunFinished { exit_code, .. } => Some(*exit_code),
        _ => None,
    });
    let outcome_row = table(&md, "| Item | Value |")
        .into_iter()
        .find(|r| r[0] == "Outcome")
        .unwrap();
    match ending {
        Some(code) => assert!(outcome_row[1].ends_with(&format!("(exit {code})")), "{md}"),
        None => assert!(outcome_row[1].contains("no recorded end"), "{md}"),
    }
    assert!(md.contains("UTC ("), "times in UTC and local: {md}");
    md
}

#[test]
fn the_change_record_tells_completed_failed_and_interrupted_runs_as_the_journal_does() {
    let estate = Estate::new(0);
    let topology = estate.topology();
    let journal = estate.path("journal.jsonl");
    let failover = || {
        Run::failover(&topology)
            .from("EdgePool1")
            .to("EdgePool2")
            .only(&LYNC_STEPS)
            .yes()
            .journal(&journal)
    };

    // Failed at step 2.
    estate.fault(
        "EdgeServer2.contoso.com",
        "Stop-CsWindowsService",
        "fail",
        "Access denied",
    );
    failover().run().code(1);
    let md = report_matches_journal(&topology, &journal);
    assert!(md.contains("**failed** (exit 1)"), "{md}");
    assert!(
        md.contains("Access denied") && md.contains("--resume"),
        "{md}"
    );
    estate.clear_faults();

    // Interrupted while stopping: Ctrl-C lets the command in flight finish.
    estate.add_fault(serde_json::json!({
        "host": "EdgeServer2.contoso.com", "cmdlet": "Stop-CsWindowsService",
        "action": "slow", "ms": 1500, "message": ""
    }));
    let run = failover().resume().spawn();
    // The failed run applied step 2 once already: wait for the second.
    let needle = "\"step\":\"services.stop\",\"phase\":\"apply\"";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::fs::read_to_string(&journal)
        .unwrap_or_default()
        .matches(needle)
        .count()
        < 3
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the resumed run never applied step 2"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    run.signal("INT");
    run.wait().code(130);
    let md = report_matches_journal(&topology, &journal);
    assert!(md.contains("**interrupted** (exit 130)"), "{md}");
    assert!(md.contains("Resumes run"), "{md}");
    estate.clear_faults();

    // Completed.
    failover().resume().run().code(0);
    let md = report_matches_journal(&topology, &journal);
    assert!(md.contains("**completed** (exit 0)"), "{md}");
    assert!(md.contains("Next action: None"), "{md}");
    // An earlier run by its id, to a file.
    let first = crate::harness::events::journal_records(&journal)[0]
        .run
        .clone();
    let file = estate.path("change.md");
    Run::new(["report", "-t"])
        .arg(&topology)
        .arg("--journal")
        .arg(&journal)
        .arg(&first)
        .arg("-o")
        .arg(&file)
        .run()
        .code(0);
    assert!(
        std::fs::read_to_string(&file)
            .unwrap()
            .contains("**failed** (exit 1)")
    );
}

#[test]
fn a_report_of_a_dns_run_says_when_caches_drop_the_old_records() {
    let bind = Bind::start_for("127.0.0.10", "127.0.0.1");
    let estate = Estate::new(0);
    let topology = with_bind(&estate, &bind);
    let journal = estate.path("journal.jsonl");
    let file = estate.path("plan.json");
    dns_plan_out(&topology, &file).run().code(4);
    apply(&topology, &file).journal(&journal).run().code(0);
    let md = report_matches_journal(&topology, &journal);
    assert!(
        md.contains("dns.a (Point xmpp.contoso.com A at EdgePool2): the old records had TTL 300 s"),
        "{md}"
    );
    assert!(
        md.contains("every cache has dropped the old ones by **"),
        "{md}"
    );
    assert!(
        md.contains("plan.json") && md.contains("sha256:"),
        "the approved plan: {md}"
    );
    let read = table(&md, "## What was read");
    assert!(
        read.iter()
            .any(|r| r[1] == "dns.a" && r[3].starts_with("127.0.0.10 (EdgePool1)")),
        "{md}"
    );
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn export(topology: &Path, from: &str, to: &str) -> Run {
    Run::new(["export", "powershell", "-t"])
        .arg(topology)
        .args(["--from", from, "--to", to])
        .current_dir(&repo())
}

/// Every script block of an export is one edgefail sends: the stand-in's
/// parser accepts each, as the machine it names, against the estate the
/// topology describes (Set-CsSite in whichever spelling the block uses).
#[track_caller]
fn assert_blocks_are_edgefail_scripts(
    script: &str,
    topology: &edgefail::topology::Topology,
) -> usize {
    use edgefail::sim::{before_estate, shell};
    let blocks = edgefail::export::blocks(script);
    assert!(!blocks.is_empty(), "no script blocks in:\n{script}");
    for (host, text) in &blocks {
        let host = if host.is_empty() {
            "admin.box"
        } else {
            host.as_str()
        };
        let ok = ["XmppExternalFederationRoute", "XmppFederationRoute"]
            .iter()
            .map(|parameter| {
                let mut state = before_estate(topology, "EdgePool1", "admin.box");
                state.set_cssite_parameter = parameter.to_string();
                shell::run(&mut state, host, text)
            })
            .collect::<Vec<_>>();
        assert!(
            ok.iter().any(|r| r.is_ok()),
            "the stand-in refuses this block on {host}: {:?}\n{text}",
            ok
        );
    }
    blocks.len()
}

#[test]
fn the_contoso_export_is_current_and_every_block_is_a_script_edgefail_sends() {
    let out = export(Path::new("runbooks/contoso.yaml"), "EdgePool1", "EdgePool2")
        .run()
        .code(0);
    let snapshot = repo().join("runbooks/contoso-failover.ps1");
    let committed = std::fs::read_to_string(&snapshot).unwrap_or_default();
    assert!(
        committed == out.stdout,
        "runbooks/contoso-failover.ps1 is not what `edgefail export powershell -t runbooks/contoso.yaml --from EdgePool1 --to EdgePool2` writes now; review the difference and commit the new export:\n{}",
        out.stdout
    );
    let loaded = edgefail::topology::load(&repo().join("runbooks/contoso.yaml")).unwrap();
    let n = assert_blocks_are_edgefail_scripts(&out.stdout, &loaded.topology);
    // Per Edge server: read, change, read back, for steps 2 and 7; the
    // management shell's reads and both route spellings.
    assert!(n >= 14, "{n} blocks");
    for needle in [
        "$ErrorActionPreference = 'Stop'",
        "-ComputerName 'EdgeServer2.contoso.com' -Credential $EdgeCredential",
        "prereq yxrrset xmpp.contoso.com. IN A",
        "# Step 4 of 8 (dns.a)",
        "$records = @(Resolve-Records '_xmpp-server._tcp.contoso.com' 'SRV')",
    ] {
        assert!(out.stdout.contains(needle), "lacks {needle:?}");
    }
    // -o writes the same.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f.ps1");
    export(Path::new("runbooks/contoso.yaml"), "EdgePool1", "EdgePool2")
        .arg("-o")
        .arg(&file)
        .run()
        .code(0);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), out.stdout);
}

/// The branches of one DNS step of an nsupdate export: each state the
/// records may read as (`$now`, as Format-A/Format-Srv write it) with the
/// nsupdate message sent from it (None: nothing to change).
#[track_caller]
fn nsupdate_branches(script: &str, step: usize) -> Vec<(String, Option<String>)> {
    let start = script
        .find(&format!("# Step {step} of 8"))
        .expect("the step");
    let end = script[start..]
        .find("\nWait-Until ")
        .map(|e| start + e)
        .expect("a read-back");
    let mut out: Vec<(String, Option<String>)> = Vec::new();
    let mut message: Option<String> = None;
    for line in script[start..end].lines() {
        if let Some(text) = message.as_mut() {
            if line == "'@" {
                let text = message.take().unwrap();
                out.last_mut().expect("a branch").1 = Some(text);
            } else {
                text.push_str(line);
                text.push('\n');
            }
            continue;
        }
        let state = line
            .strip_prefix("if ($now -eq '")
            .or_else(|| line.strip_prefix("} elseif ($now -eq '"));
        if let Some(state) = state {
            let state = state.strip_suffix("') {").expect("one literal");
            out.push((state.to_string(), None));
        } else if line.trim_start().starts_with("Send-NsUpdate @'") {
            message = Some(String::new());
        }
    }
    assert!(!out.is_empty(), "no branches in step {step}");
    out
}

/// What Format-Srv makes of `dig +short` SRV lines.
fn srv_now(dig: &[String]) -> String {
    let mut items: Vec<String> = dig
        .iter()
        .map(|l| l.trim_end_matches('.').to_lowercase())
        .collect();
    items.sort();
    if items.is_empty() {
        "none".into()
    } else {
        items.join("; ")
    }
}

#[test]
fn the_contoso_failback_export_is_current_and_swaps_the_srv_priorities_back() {
    let out = export(Path::new("runbooks/contoso.yaml"), "EdgePool2", "EdgePool1")
        .run()
        .code(0);
    let committed =
        std::fs::read_to_string(repo().join("runbooks/contoso-failback.ps1")).unwrap_or_default();
    assert!(
        committed == out.stdout,
        "runbooks/contoso-failback.ps1 is not what `edgefail export powershell -t runbooks/contoso.yaml --from EdgePool2 --to EdgePool1` writes now; review the difference and commit the new export:\n{}",
        out.stdout
    );
    let loaded = edgefail::topology::load(&repo().join("runbooks/contoso.yaml")).unwrap();
    assert_blocks_are_edgefail_scripts(&out.stdout, &loaded.topology);
    assert!(
        out.stdout
            .contains("    [string] $DnsServer = '127.0.0.1',")
    );
    // Both DNS steps read the records from $DnsServer first.
    let dns = dns_steps(&out.stdout);
    for read in [
        "$records = @(Resolve-Records 'xmpp.contoso.com' 'A')\n$now = Format-A $records\n",
        "$records = @(Resolve-Records '_xmpp-server._tcp.contoso.com' 'SRV')\n$now = Format-Srv $records\n",
    ] {
        assert!(dns.contains(read), "lacks {read:?} in:\n{dns}");
    }
    // Step 4: the A record on EdgePool2 (as the failover left it) moves
    // back; on EdgePool1 already, nothing is sent.
    assert_eq!(
        nsupdate_branches(&out.stdout, 4),
        [
            ("127.0.0.10".to_string(), None),
            (
                "127.0.0.20".to_string(),
                Some(
                    "server 127.0.0.1 53\nzone contoso.com.\n\
                     prereq yxrrset xmpp.contoso.com. IN A 127.0.0.20\n\
                     update delete xmpp.contoso.com. IN A\n\
                     update add xmpp.contoso.com. 300 IN A 127.0.0.10\nsend\n"
                        .to_string()
                )
            ),
        ]
    );
    // Step 5: the priorities as the failover swapped them are swapped
    // back, with those records as the prerequisites; as the topology
    // describes them, they already prefer EdgePool1.
    let initial = "10 0 5269 edgepool1-xmpp.contoso.com; 20 0 5269 edgepool2-xmpp.contoso.com";
    let swapped = "10 0 5269 edgepool2-xmpp.contoso.com; 20 0 5269 edgepool1-xmpp.contoso.com";
    assert_eq!(
        nsupdate_branches(&out.stdout, 5),
        [
            (initial.to_string(), None),
            (
                swapped.to_string(),
                Some(
                    "server 127.0.0.1 53\nzone contoso.com.\n\
                     prereq yxrrset _xmpp-server._tcp.contoso.com. IN SRV 10 0 5269 edgepool2-xmpp.contoso.com.\n\
                     prereq yxrrset _xmpp-server._tcp.contoso.com. IN SRV 20 0 5269 edgepool1-xmpp.contoso.com.\n\
                     update delete _xmpp-server._tcp.contoso.com. IN SRV 10 0 5269 edgepool2-xmpp.contoso.com.\n\
                     update delete _xmpp-server._tcp.contoso.com. IN SRV 20 0 5269 edgepool1-xmpp.contoso.com.\n\
                     update add _xmpp-server._tcp.contoso.com. 300 IN SRV 10 0 5269 edgepool1-xmpp.contoso.com.\n\
                     update add _xmpp-server._tcp.contoso.com. 300 IN SRV 20 0 5269 edgepool2-xmpp.contoso.com.\nsend\n"
                        .to_string()
                )
            ),
        ]
    );
    // Anything else stops the script before any change.
    assert!(
        dns.contains(&format!(
            "}} else {{\n    throw ('_xmpp-server._tcp.contoso.com SRV reads ' + $now + ', not {swapped} as this script expects: nothing was changed;"
        )),
        "{dns}"
    );
}

#[test]
fn with_dns_mode_manual_the_export_shows_the_change_of_the_branch_and_waits() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(repo().join("runbooks/contoso.yaml")).unwrap();
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("mode: rfc2136"))
        .expect("runbooks/contoso.yaml has a dns.mode line");
    let path = dir.path().join("manual.yaml");
    std::fs::write(&path, text.replacen(line, "  mode: manual", 1)).unwrap();
    let out = export(&path, "EdgePool2", "EdgePool1").run().code(0);
    assert!(!out.stdout.contains("TsigKeyFile") && !out.stdout.contains("Send-NsUpdate"));
    assert!(
        out.stdout
            .contains("Read-Host 'Type done once the change is made'")
    );
    let dns = dns_steps(&out.stdout);
    assert!(
        dns.contains(
            "} elseif ($now -eq '10 0 5269 edgepool2-xmpp.contoso.com; 20 0 5269 edgepool1-xmpp.contoso.com') {\n    Request-DnsChange @'\nserver 127.0.0.1 53\n"
        ),
        "{dns}"
    );
}

/// The messages of the failover and failback exports, chosen as the
/// script chooses them from what a real BIND holds, move the records there
/// and back; from the state a step wants, nothing is sent.
#[test]
fn the_exports_nsupdate_messages_fail_over_and_back_on_a_real_bind() {
    let bind = Bind::start_for("127.0.0.10", "127.0.0.1");
    let estate = Estate::new(0);
    let topology = with_bind(&estate, &bind);
    // One SRV record per pool, as the topology describes them (on the
    // XMPP port with_bind gives the topology).
    let xmpp = edgefail::topology::load(&topology)
        .unwrap()
        .topology
        .xmpp
        .port;
    bind.nsupdate(&format!(
        "update delete {SRV_NAME} SRV\n\
         update add {SRV_NAME} 300 SRV 10 0 {xmpp} edgepool1-xmpp.contoso.com.\n\
         update add {SRV_NAME} 300 SRV 20 0 {xmpp} edgepool2-xmpp.contoso.com."
    ));
    let text = std::fs::read_to_string(&topology).unwrap();
    assert!(text.contains("srv_priority: 20"), "{text}");
    let port = bind.primary.port;
    let failover = export(&topology, "EdgePool1", "EdgePool2").run().code(0);
    let failback = export(&topology, "EdgePool2", "EdgePool1").run().code(0);
    assert!(
        failover
            .stdout
            .contains("    [Parameter(Mandatory = $true)]\n    [string] $DnsServer,"),
        "the primary is not on port 53: -DnsServer has no default"
    );
    let initial = srv_now(&bind.dig(port, SRV_NAME, "SRV"));
    // Play one step: pick the branch for what BIND holds, send its message.
    let play = |script: &str, step: usize| -> bool {
        let now = if step == 4 {
            bind.dig(port, A_NAME, "A").join("; ")
        } else {
            srv_now(&bind.dig(port, SRV_NAME, "SRV"))
        };
        let branches = nsupdate_branches(script, step);
        let (_, message) = branches
            .iter()
            .find(|(state, _)| *state == now)
            .unwrap_or_else(|| panic!("step {step}: no branch for {now:?}: {branches:?}"));
        let Some(message) = message else {
            return false;
        };
        let body: Vec<&str> = message.lines().collect();
        assert_eq!(
            body.first(),
            Some(&format!("server 127.0.0.1 {port}").as_str())
        );
        assert_eq!(body.last(), Some(&"send"));
        bind.nsupdate(&body[2..body.len() - 1].join("\n"));
        true
    };
    for step in [4, 5] {
        assert!(
            play(&failover.stdout, step),
            "failover step {step} sent nothing"
        );
    }
    assert_eq!(bind.dig(port, A_NAME, "A"), ["127.0.0.1"]);
    let swapped = srv_now(&bind.dig(port, SRV_NAME, "SRV"));
    assert!(
        swapped
            == format!(
                "10 0 {xmpp} edgepool2-xmpp.contoso.com; 20 0 {xmpp} edgepool1-xmpp.contoso.com"
            ),
        "{swapped}"
    );
    // Again: nothing to send.
    for step in [4, 5] {
        assert!(
            !play(&failover.stdout, step),
            "failover step {step} sent again"
        );
    }
    // Failback from the swapped state restores the topology's records.
    for step in [4, 5] {
        assert!(
            play(&failback.stdout, step),
            "failback step {step} sent nothing"
        );
    }
    assert_eq!(bind.dig(port, A_NAME, "A"), ["127.0.0.10"]);
    assert_eq!(srv_now(&bind.dig(port, SRV_NAME, "SRV")), initial);
    for step in [4, 5] {
        assert!(
            !play(&failback.stdout, step),
            "failback step {step} sent again"
        );
    }
}

#[test]
fn names_reach_the_export_as_literals_and_hostile_ones_are_refused() {
    let estate = Estate::new(0);
    // A valid but awkward site name: spaces and dashes stay one literal.
    let mut t = Topology::estate(&estate);
    t.sites[1].name = "Site 2 - North".into();
    let path = t.write(estate.dir.path());
    let out = export(&path, "EdgePool1", "EdgePool2").run().code(0);
    assert!(
        out.stdout.contains("Get-CsSite -Identity 'Site 2 - North'"),
        "{}",
        out.stdout
    );
    let loaded = edgefail::topology::load(&path).unwrap();
    assert_blocks_are_edgefail_scripts(&out.stdout, &loaded.topology);

    // A name that would close the literal never reaches a script.
    let text = std::fs::read_to_string(&path).unwrap();
    let hostile = estate.path("hostile.yaml");
    std::fs::write(
        &hostile,
        text.replace("Site 2 - North", "Site2'; Remove-Item C:\\\\ -Recurse; '"),
    )
    .unwrap();
    let out = export(&hostile, "EdgePool1", "EdgePool2").run().code(2);
    assert!(!out.stdout.contains("Remove-Item"), "{}", out.stdout);
    assert!(out.stderr.contains("hostile.yaml"), "{}", out.stderr);
}

/// runbooks/contoso.yaml with its zone on Windows DNS, as an operator
/// would write it (`mode: manual`: edgefail's TSIG updates are not for
/// Windows DNS), written into `dir` as contoso-windows-dns.yaml.
fn contoso_on_windows_dns(dir: &Path, mode: &str) -> PathBuf {
    let text = std::fs::read_to_string(repo().join("runbooks/contoso.yaml")).unwrap();
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("mode: rfc2136"))
        .expect("runbooks/contoso.yaml has a dns.mode line");
    let text = text.replacen(line, &format!("  mode: {mode}"), 1).replacen(
        "  server: other ",
        "  server: windows",
        1,
    );
    assert!(
        text.contains("  server: windows"),
        "runbooks/contoso.yaml has a dns.server line"
    );
    let path = dir.join("contoso-windows-dns.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

/// The text of steps 4 and 5 of an export.
#[track_caller]
fn dns_steps(script: &str) -> &str {
    let start = script.find("# Step 4 of 8").expect("a step 4");
    let end = script.find("# Step 6 of 8").expect("a step 6");
    &script[start..end]
}

/// Every name a DnsServer cmdlet takes in `text` is a single-quoted
/// literal, and no string there is double-quoted (so nothing in it is
/// expanded); returns the literals given to `parameter`.
#[track_caller]
fn literal_arguments(text: &str, parameter: &str) -> Vec<String> {
    for line in text.lines().filter(|l| !l.trim_start().starts_with('#')) {
        assert!(!line.contains('"'), "a double-quoted string in: {line}");
    }
    let mut out = Vec::new();
    for line in text
        .lines()
        .filter(|l| l.contains("-DnsServerResourceRecord"))
    {
        for name in ["-ZoneName", "-Name", "-DomainName", "-IPv4Address"] {
            for (at, _) in line.match_indices(&format!("{name} ")) {
                let rest = &line[at + name.len() + 1..];
                assert!(rest.starts_with('\''), "{name} is not a literal in: {line}");
                let literal: String = rest[1..].chars().take_while(|c| *c != '\'').collect();
                if name == parameter {
                    out.push(literal);
                }
            }
        }
    }
    out
}

#[test]
fn the_windows_dns_export_is_current_and_changes_dns_with_the_dnsserver_cmdlets() {
    let dir = tempfile::tempdir().unwrap();
    contoso_on_windows_dns(dir.path(), "manual");
    let out = Run::new(["export", "powershell", "-t", "contoso-windows-dns.yaml"])
        .args(["--from", "EdgePool1", "--to", "EdgePool2"])
        .current_dir(dir.path())
        .run()
        .code(0);
    let committed = std::fs::read_to_string(repo().join("runbooks/contoso-windows-dns.ps1"))
        .unwrap_or_default();
    assert!(
        committed == out.stdout,
        "runbooks/contoso-windows-dns.ps1 is not what the export of runbooks/contoso.yaml with `mode: manual` and `server: windows` (as contoso-windows-dns.yaml) writes now; review the difference and commit the new export:\n{}",
        out.stdout
    );
    // The Lync steps are the same scripts edgefail sends.
    let loaded = edgefail::topology::load(&dir.path().join("contoso-windows-dns.yaml")).unwrap();
    assert_blocks_are_edgefail_scripts(&out.stdout, &loaded.topology);
    assert!(
        out.stdout.contains("[string] $DnsServer = '127.0.0.1'"),
        "-DnsServer defaults to dns.primary's address"
    );
    assert!(!out.stdout.contains("TsigKeyFile"));

    let dns = dns_steps(&out.stdout);
    assert!(
        !dns.contains("Send-NsUpdate") && !dns.contains("Read-Host"),
        "{dns}"
    );
    assert_eq!(
        literal_arguments(dns, "-ZoneName")
            .iter()
            .filter(|z| *z != "contoso.com")
            .count(),
        0
    );
    assert_eq!(
        literal_arguments(dns, "-Name"),
        [
            "xmpp",
            "xmpp",
            "xmpp.contoso.com",
            "_xmpp-server._tcp",
            "_xmpp-server._tcp",
            "_xmpp-server._tcp.contoso.com"
        ],
        "per record: a read, a read-back, and the authoritative server's answer"
    );
    // Step 4, a compare-and-swap by hand: read, then change only from the
    // expected state, stop on any other.
    let read_a = "$records = @(Read-DnsRecords { Get-DnsServerResourceRecord -ComputerName $DnsServer -ZoneName 'contoso.com' -Name 'xmpp' -RRType A })";
    let done_a = "if ($now -eq '127.0.0.20') {";
    let guard_a = "} elseif ($now -eq '127.0.0.10') {";
    let set = "    Set-DnsServerResourceRecord -ComputerName $DnsServer -ZoneName 'contoso.com' -OldInputObject $old -NewInputObject $new";
    let stop_a = "    throw ('xmpp.contoso.com A reads ' + $now + ', not 127.0.0.10 as this script expects: nothing was changed;";
    let order = |needles: &[&str]| {
        let mut from = 0;
        for n in needles {
            let at = dns[from..]
                .find(n)
                .unwrap_or_else(|| panic!("lacks {n:?} after byte {from} of:\n{dns}"));
            from += at + n.len();
        }
    };
    order(&[
        read_a,
        done_a,
        guard_a,
        "    $new.RecordData.IPv4Address = [System.Net.IPAddress]::Parse('127.0.0.20')",
        "    $new.TimeToLive = [System.TimeSpan]::FromSeconds(300)",
        set,
        "} else {",
        stop_a,
        "Wait-Until 'every authoritative server answers xmpp.contoso.com A 127.0.0.20' {",
        "-Name 'xmpp' -RRType A })) -eq '127.0.0.20')",
        "Resolve-DnsName -Name 'xmpp.contoso.com' -Type A -Server '127.0.0.1'",
    ]);
    // Step 5: both pools keep a record, the priorities swap (lower number
    // preferred), the target pool's record first.
    order(&[
        "-Name '_xmpp-server._tcp' -RRType Srv })",
        "if ($now -eq '10 0 5269 edgepool2-xmpp.contoso.com; 20 0 5269 edgepool1-xmpp.contoso.com') {",
        "} elseif ($now -eq '10 0 5269 edgepool1-xmpp.contoso.com; 20 0 5269 edgepool2-xmpp.contoso.com') {",
        "    $old = Select-Srv $records '20 0 5269 edgepool2-xmpp.contoso.com'",
        "    $new.RecordData.Priority = [uint16] 10",
        set,
        "    $old = Select-Srv $records '10 0 5269 edgepool1-xmpp.contoso.com'",
        "    $new.RecordData.Priority = [uint16] 20",
        set,
        "} else {",
        "    throw ('_xmpp-server._tcp.contoso.com SRV reads ' + $now + ', not 10 0 5269 edgepool1-xmpp.contoso.com; 20 0 5269 edgepool2-xmpp.contoso.com as this script expects",
        "Wait-Until 'every authoritative server prefers edgepool2-xmpp.contoso.com' {",
    ]);
    assert!(
        !dns.contains("Remove-DnsServerResourceRecord"),
        "no pool's record is removed"
    );

    // Failback: the records as the failover left them are swapped back;
    // as the topology describes them, they are already right.
    let back = Run::new(["export", "powershell", "-t", "contoso-windows-dns.yaml"])
        .args(["--from", "EdgePool2", "--to", "EdgePool1"])
        .current_dir(dir.path())
        .run()
        .code(0);
    let dns = dns_steps(&back.stdout);
    literal_arguments(dns, "-ZoneName");
    let order = |needles: &[&str]| {
        let mut from = 0;
        for n in needles {
            let at = dns[from..]
                .find(n)
                .unwrap_or_else(|| panic!("lacks {n:?} after byte {from} of:\n{dns}"));
            from += at + n.len();
        }
    };
    order(&[
        "} elseif ($now -eq '127.0.0.20') {",
        "[System.Net.IPAddress]::Parse('127.0.0.10')",
        "if ($now -eq '10 0 5269 edgepool1-xmpp.contoso.com; 20 0 5269 edgepool2-xmpp.contoso.com') {",
        "} elseif ($now -eq '10 0 5269 edgepool2-xmpp.contoso.com; 20 0 5269 edgepool1-xmpp.contoso.com') {",
        "    $old = Select-Srv $records '20 0 5269 edgepool1-xmpp.contoso.com'",
        "    $new.RecordData.Priority = [uint16] 10",
        set,
        "    $old = Select-Srv $records '10 0 5269 edgepool2-xmpp.contoso.com'",
        "    $new.RecordData.Priority = [uint16] 20",
        set,
        "} else {",
        "Wait-Until 'every authoritative server prefers edgepool1-xmpp.contoso.com' {",
    ]);
}

#[test]
fn windows_dns_names_reach_the_cmdlets_as_literals_and_hostile_ones_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = contoso_on_windows_dns(dir.path(), "manual");
    let text = std::fs::read_to_string(&path).unwrap();
    // The A record at the zone's own name, names in capitals.
    let odd = text
        .replacen("a_record: xmpp.contoso.com", "a_record: Contoso.COM", 1)
        .replacen(
            "srv_target: edgepool2-xmpp.contoso.com",
            "srv_target: EdgePool2-XMPP.Contoso.com",
            1,
        );
    std::fs::write(&path, odd).unwrap();
    let out = export(&path, "EdgePool1", "EdgePool2").run().code(0);
    let dns = dns_steps(&out.stdout);
    assert_eq!(literal_arguments(dns, "-Name")[0], "@", "{dns}");
    assert!(
        dns.contains("Resolve-DnsName -Name 'Contoso.COM' -Type A"),
        "{dns}"
    );
    // Records compare in lowercase, as Format-Srv writes them.
    assert!(
        dns.contains("    $old = Select-Srv $records '20 0 5269 edgepool2-xmpp.contoso.com'"),
        "{dns}"
    );
    literal_arguments(dns, "-ZoneName");

    // A zone name that would close the literal never reaches a script.
    let hostile = dir.path().join("hostile.yaml");
    std::fs::write(
        &hostile,
        text.replace(
            "zone: contoso.com",
            "zone: \"contoso.com'; Remove-Item C:\\\\ -Recurse; '\"",
        ),
    )
    .unwrap();
    let out = export(&hostile, "EdgePool1", "EdgePool2").run().code(2);
    assert!(!out.stdout.contains("Remove-Item"), "{}", out.stdout);
    assert!(
        out.stderr.contains("hostile.yaml") && out.stderr.contains("dns.zone"),
        "{}",
        out.stderr
    );
}

#[test]
fn validate_warns_that_edgefails_tsig_updates_are_not_for_windows_dns() {
    let dir = tempfile::tempdir().unwrap();
    let path = contoso_on_windows_dns(dir.path(), "rfc2136");
    Run::validate(&path)
        .run()
        .code(0)
        .stderr_has("warning: dns.server: Windows DNS verifies GSS-TSIG (Kerberos) signatures, not the TSIG keys edgefail signs its updates with");
    // The export writes the cmdlets whatever the mode.
    let out = export(&path, "EdgePool1", "EdgePool2").run().code(0);
    assert!(dns_steps(&out.stdout).contains("Set-DnsServerResourceRecord"));
}

#[test]
fn a_rehearsal_writes_the_change_record_of_the_drill_and_its_resume() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rehearsal.md");
    Run::rehearse(Path::new("runbooks/contoso.yaml"))
        .current_dir(&repo())
        .args([
            "--from",
            "EdgePool1",
            "--to",
            "EdgePool2",
            "--delay-ms",
            "10",
        ])
        .args(["--inject", "dns-concurrent-change", "--report"])
        .arg(&file)
        .run()
        .code(0);
    let md = std::fs::read_to_string(&file).unwrap();
    let records: Vec<&str> = md.split("\n---\n").collect();
    assert_eq!(records.len(), 2, "{md}");
    assert!(records[0].contains("**failed** (exit 1)"), "{md}");
    assert!(
        table(records[0], "## Steps")
            .iter()
            .any(|r| r[1] == "dns.a" && r[3] == "apply" && r[7] == "failed"),
        "{md}"
    );
    assert!(records[1].contains("**completed** (exit 0)"), "{md}");
    assert!(records[1].contains("Resumes run"), "{md}");
    // Distinct runs, each with its own id.
    let ids: Vec<&str> = records
        .iter()
        .filter_map(|r| r.lines().find(|l| l.starts_with("| Run |")))
        .collect();
    assert_eq!(ids.len(), 2);
    assert_ne!(ids[0], ids[1]);
}
