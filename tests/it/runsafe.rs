//! Run safety: one failover per estate (journal and lock keyed by the
//! estate, shared state directories), never half-way by surprise (manual
//! DNS without a terminal, an unwritable journal, links where journal or
//! lock should be), and Ctrl-C at the confirmation prompt. Against the
//! PowerShell stand-in; the DNS lease has its own tests against BIND.

use std::path::Path;

use serde_json::json;

use crate::harness::standin::{Estate, LYNC_STEPS};
use crate::harness::topology::Topology;
use crate::harness::{Run, wait_for_text};

/// EdgePool1 -> EdgePool2, the Lync steps only.
fn failover(topology: &Path) -> Run {
    Run::failover(topology)
        .yes()
        .from("EdgePool1")
        .to("EdgePool2")
        .only(&LYNC_STEPS)
}

#[test]
fn manual_dns_with_yes_and_no_terminal_is_refused_before_anything_changes() {
    let estate = Estate::new(0);
    let topology = Topology::estate(&estate)
        .manual_dns()
        .write(estate.dir.path());
    let out = Run::failover(&topology)
        .yes()
        .from("EdgePool1")
        .to("EdgePool2")
        .skip("port.check")
        .skip("federation.check")
        .run()
        .code(2)
        .stderr_has("dns.mode is manual");
    assert!(out.stderr.contains("no terminal"), "{}", out.stderr);
    assert!(
        estate.log().is_empty(),
        "contacted machines: {:?}",
        estate.log()
    );
    // With the DNS steps left to other means, nobody needs to type `done`.
    Run::failover(&topology)
        .yes()
        .from("EdgePool1")
        .to("EdgePool2")
        .only(&LYNC_STEPS)
        .run()
        .code(0);
}

#[test]
fn a_journal_that_cannot_be_written_stops_the_run_before_any_change() {
    let estate = Estate::new(0);
    let topology = estate.topology();
    // /dev/full takes the open and fails every write with ENOSPC: a full
    // disk.
    let out = failover(&topology)
        .journal(Path::new("/dev/full"))
        .run()
        .code(9)
        .stdout_has("cannot be written");
    assert!(out.stdout.contains("nothing was changed"), "{}", out.stdout);
    assert!(
        estate.writes().is_empty(),
        "changed the estate without a record: {:?}",
        estate.writes()
    );
    // A journal that cannot even be opened: the same exit, nothing changed.
    let not_a_dir = estate.path("plain-file");
    std::fs::write(&not_a_dir, "").unwrap();
    failover(&topology)
        .journal(&not_a_dir.join("journal.jsonl"))
        .run()
        .code(9)
        .stderr_has("cannot open journal");
    assert!(estate.writes().is_empty(), "{:?}", estate.writes());
}

#[test]
fn symlinked_journal_or_lock_is_refused_and_its_target_left_alone() {
    let estate = Estate::new(0);
    let topology = estate.topology();
    let target = estate.path("precious.txt");
    std::fs::write(&target, "keep me\n").unwrap();
    let link = estate.path("journal.jsonl");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    failover(&topology)
        .journal(&link)
        .run()
        .code(9)
        .stderr_has("symbolic link");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep me\n");
    assert!(estate.writes().is_empty(), "{:?}", estate.writes());

    let lock = crate::harness::lock_path(&topology, "contoso.com", "contoso.com");
    // The first run left its (released) lock file: put a link there.
    std::fs::create_dir_all(lock.parent().unwrap()).unwrap();
    let _ = std::fs::remove_file(&lock);
    std::os::unix::fs::symlink(&target, &lock).unwrap();
    failover(&topology)
        .journal(&estate.path("real.jsonl"))
        .run()
        .code(2)
        .stderr_has("symbolic link");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep me\n");
    assert!(estate.writes().is_empty(), "{:?}", estate.writes());
}

#[test]
fn journal_and_lock_are_the_estates_not_the_files() {
    let estate = Estate::new(0);
    let topology = estate.topology();
    // A copy of the same topology elsewhere, run by someone sharing the
    // state directory.
    let elsewhere = tempfile::tempdir().unwrap();
    let copy = elsewhere.path().join("copy.yaml");
    std::fs::copy(&topology, &copy).unwrap();
    let shared = crate::harness::state_home(&topology);

    estate.add_fault(json!({"host": "EdgeServer2.contoso.com", "cmdlet": "Start-CsWindowsService", "action": "slow", "ms": 3000, "times": 1}));
    let first = failover(&topology).spawn();
    let journal = shared.join("edgefail").join(format!(
        "{}.jsonl",
        edgefail::journal::estate_key("contoso.com", "contoso.com")
    ));
    wait_for_text(&journal, r#""step":"services.start","phase":"apply","at""#);
    let second = failover(&copy)
        .env("XDG_STATE_HOME", &shared)
        .run()
        .code(6)
        .stderr_has("another failover of this estate is running");
    assert!(second.stderr.contains("run "), "{}", second.stderr);
    first.wait().code(0);

    // A failed run is found again from the copy, and resumed from it.
    estate.clear_faults();
    let estate2 = Estate::new(0);
    let topology2 = estate2.topology();
    estate2.fault(
        "EdgeServer2.contoso.com",
        "Start-CsWindowsService",
        "fail",
        "Cannot start service 'RTCSRV'.",
    );
    failover(&topology2).run().code(1);
    estate2.clear_faults();
    let elsewhere2 = tempfile::tempdir().unwrap();
    let copy2 = elsewhere2.path().join("copy.yaml");
    std::fs::copy(&topology2, &copy2).unwrap();
    Run::failover(&copy2)
        .resume()
        .yes()
        .env("XDG_STATE_HOME", crate::harness::state_home(&topology2))
        .run()
        .code(0);
    estate2.assert_failed_over();
}

#[test]
fn a_shared_state_dir_in_the_topology_holds_journal_and_lock() {
    let estate = Estate::new(0);
    let shared = estate.path("team-state");
    let plain = estate.topology();
    let text = std::fs::read_to_string(&plain).unwrap();
    let topology = estate.path("shared.yaml");
    std::fs::write(&topology, format!("{text}\nstate_dir: team-state\n")).unwrap();
    failover(&topology).run().code(0);
    let key = edgefail::journal::estate_key("contoso.com", "contoso.com");
    let journal = shared.join(format!("{key}.jsonl"));
    assert!(
        std::fs::read_to_string(&journal)
            .unwrap()
            .contains("run_finished"),
        "no journal at {}",
        journal.display()
    );
    assert!(shared.join(format!("{key}.lock")).exists());
    // history finds it through the topology.
    Run::history(&topology).run().code(0).stdout_has("failover");
}

#[test]
fn ctrl_c_at_the_prompt_ends_at_once_declined_with_nothing_to_resume() {
    let estate = Estate::new(0);
    let topology = estate.topology();
    let mut pty = Run::failover(&topology)
        .from("EdgePool1")
        .to("EdgePool2")
        .only(&LYNC_STEPS)
        .on_terminal();
    pty.wait_for("Type 'yes' to proceed", 1);
    let asked = std::time::Instant::now();
    // Ctrl-C, and no Enter: the question must not wait for an answer.
    pty.type_keys("\u{3}");
    pty.wait_for("interrupted at the confirmation prompt", 1);
    let (status, seen) = pty.finish();
    assert_eq!(status.code(), Some(5), "{seen}");
    assert!(
        asked.elapsed() < std::time::Duration::from_secs(10),
        "took {:?}",
        asked.elapsed()
    );
    assert!(seen.contains("nothing has been changed"), "{seen}");
    assert!(!seen.contains("may still complete"), "{seen}");
    assert!(estate.writes().is_empty(), "{:?}", estate.writes());
    // Nothing was left to resume.
    Run::failover(&topology)
        .resume()
        .yes()
        .run()
        .code(7)
        .stderr_has("nothing to resume");
}

#[test]
fn ctrl_c_during_a_rehearsal_removes_its_key_file_and_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let child = Run::rehearse(Path::new("runbooks/contoso.yaml"))
        .from("EdgePool1")
        .to("EdgePool2")
        .delay_ms(3000)
        .env("TMPDIR", tmp.path())
        .spawn();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let dir = loop {
        let found = std::fs::read_dir(tmp.path())
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("edgefail-rehearsal-"))
                    && std::fs::read_dir(p).is_ok_and(|mut d| d.next().is_some())
            });
        if let Some(dir) = found {
            break dir;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no rehearsal directory"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    // Let the run begin (the journal is written), then interrupt.
    wait_for_text(&dir.join("journal.jsonl"), "phase_started");
    child.signal("INT");
    let out = child.wait().code(130);
    assert!(out.stderr.contains("rehearsal stopped"), "{}", out.stderr);
    assert!(!dir.exists(), "{} is still there", dir.display());
}

#[test]
fn non_ascii_values_in_a_journal_do_not_panic_resume_or_history() {
    let estate = Estate::new(0);
    let topology = estate.topology();
    let journal = estate.path("journal.jsonl");
    estate.fault(
        "EdgeServer2.contoso.com",
        "Start-CsWindowsService",
        "fail",
        "Cannot start service 'RTCSRV'.",
    );
    failover(&topology).journal(&journal).run().code(1);
    // Someone's editor (or a bad disk) put multi-byte text everywhere a
    // string was: the run id, the checksums, the messages.
    let text = std::fs::read_to_string(&journal).unwrap();
    let mut edited = String::new();
    for line in text.lines() {
        let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
        if let Some(o) = v.as_object_mut() {
            o.insert("run".into(), json!("ééééééééééééé-運行"));
            for key in ["topology_sha256", "plan_sha256", "message", "summary"] {
                if o.contains_key(key) {
                    o.insert(key.into(), json!("ééééééééééééé\u{202e}運行"));
                }
            }
        }
        edited.push_str(&v.to_string());
        edited.push('\n');
    }
    std::fs::write(&journal, edited).unwrap();
    let out = Run::failover(&topology)
        .resume()
        .yes()
        .journal(&journal)
        .run();
    assert_eq!(out.code, 7, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stderr.contains("topology changed"), "{}", out.stderr);
    Run::history(&topology).journal(&journal).run().code(0);
    Run::history(&topology)
        .journal(&journal)
        .arg("ééééééééééééé-運行")
        .run()
        .code(0);
}

#[test]
fn a_failed_run_closes_with_the_state_of_the_estate_read_back() {
    let estate = Estate::new(0);
    let topology = estate.topology();
    estate.fault(
        "EdgeServer2.contoso.com",
        "Start-CsWindowsService",
        "fail",
        "Cannot start service 'RTCSRV'.",
    );
    let out = failover(&topology).run().code(1);
    let footer = out
        .stdout
        .split("State of the estate (read just now, not assumed):")
        .nth(1)
        .unwrap_or_else(|| panic!("no footer:\n{}", out.stdout));
    // Read back: the target's services are stopped, the route has moved.
    assert!(
        footer.contains("EdgeServer2.contoso.com services"),
        "{footer}"
    );
    assert!(footer.contains("Stopped"), "{footer}");
    assert!(footer.contains("EdgeServer2.contoso.com"), "{footer}");
    assert!(footer.contains("not read: skipped by --skip"), "{footer}");
    assert!(
        footer.contains("Steps done and verified: 2 (services.stop), 3 (route.set)"),
        "{footer}"
    );
    assert!(
        footer.contains("Applied or attempted by this run, not verified: 7 (services.start)"),
        "{footer}"
    );
    assert!(
        footer.contains("Fix first: services.start failed"),
        "{footer}"
    );
    assert!(
        footer.contains(&format!(
            "Then run: edgefail failover --resume -t {}",
            topology.display()
        )),
        "{footer}"
    );
    assert!(
        out.stdout
            .contains("this run changed the estate before it stopped"),
        "{}",
        out.stdout
    );

    // JSON carries the same.
    let estate2 = Estate::new(0);
    let topology2 = estate2.topology();
    estate2.fault(
        "EdgeServer2.contoso.com",
        "Start-CsWindowsService",
        "fail",
        "Cannot start service 'RTCSRV'.",
    );
    let out = failover(&topology2).json().run().code(1);
    let last = out.json_lines().pop().expect("events");
    assert_eq!(last["type"], "run_finished");
    let state = &last["estate"];
    assert_eq!(state["steps_done"], json!(["services.stop", "route.set"]));
    assert_eq!(state["steps_unverified"], json!(["services.start"]));
    assert!(
        state["next"]
            .as_str()
            .unwrap()
            .starts_with("edgefail failover --resume -t "),
        "{state}"
    );
    let readings = state["readings"].as_array().unwrap();
    assert!(
        readings
            .iter()
            .any(|r| r["step"] == "route.set"
                && r["state"].as_str().unwrap().contains("EdgeServer2")),
        "{state}"
    );
}

#[test]
fn a_crash_is_journaled_and_says_what_was_done_and_how_to_resume() {
    let estate = Estate::new(0);
    let topology = estate.topology();
    let journal = estate.path("journal.jsonl");
    // Debug builds panic on request right before a step's apply.
    let out = failover(&topology)
        .journal(&journal)
        .env("EDGEFAIL_DEBUG_PANIC_AT", "route.set")
        .run()
        .code(101)
        .stderr_has("edgefail crashed (a bug");
    assert!(
        out.stderr
            .contains("Steps done and verified (from the journal): 2 (services.stop)"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(&format!(
            "Then run: edgefail failover --resume -t {}",
            topology.display()
        )),
        "{}",
        out.stderr
    );
    let text = std::fs::read_to_string(&journal).unwrap();
    assert!(text.contains(r#""exit_code":101"#), "{text}");
    // The crashed run is resumable and the resume completes it.
    Run::failover(&topology)
        .resume()
        .yes()
        .journal(&journal)
        .run()
        .code(0);
    estate.assert_failed_over();
}

// ---- the lease in the zone, against a real BIND ----

const LEASE: &str = "_edgefail-lock.contoso.com";

/// The stand-in estate with BIND's zone; the partner's-eye steps (no
/// Prosody here) are left out.
fn leased_topology(
    estate: &Estate,
    bind: &crate::harness::bind::Bind,
    dir: &Path,
) -> std::path::PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    Topology::estate(estate)
        .dns(bind.dns(dir))
        .srv_targets()
        .address("EdgeServer2.contoso.com", "127.0.0.1")
        .zone_lock()
        .write(dir)
}

fn leased_failover(topology: &Path) -> Run {
    Run::failover(topology)
        .yes()
        .from("EdgePool1")
        .to("EdgePool2")
        .skip("port.check")
        .skip("federation.check")
}

#[test]
fn two_operators_racing_from_different_state_dirs_one_wins_the_lease() {
    let bind = crate::harness::bind::Bind::start_for("127.0.0.10", "127.0.0.1");
    let estate = Estate::new(0);
    // The winner stays in step 2 a while; the loser must not wait for it.
    estate.add_fault(json!({"host": "EdgeServer2.contoso.com", "cmdlet": "Stop-CsWindowsService", "action": "slow", "ms": 2000, "times": 1}));
    // Two operators, two machines' worth of state: nothing local is shared.
    let a = leased_topology(&estate, &bind, &estate.path("alice"));
    let b = leased_topology(&estate, &bind, &estate.path("bob"));
    let first = leased_failover(&a).spawn();
    let second = leased_failover(&b).spawn();
    // While the winner runs, the zone holds its lease: a run id and an
    // expiry, no person, no host.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let held = loop {
        let txt = bind.dig(bind.primary.port, LEASE, "TXT");
        if let Some(t) = txt.first() {
            break t.clone();
        }
        assert!(std::time::Instant::now() < deadline, "no lease in the zone");
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    // Exactly `"v=edgefail1 run=<stamp>-<pid, hex> expires=<seconds>"`.
    let words: Vec<&str> = held.trim_matches('"').split(' ').collect();
    assert_eq!(words.len(), 3, "{held}");
    assert_eq!(words[0], "v=edgefail1", "{held}");
    let run = words[1].strip_prefix("run=").expect("run=");
    assert!(
        run.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
        "{held}"
    );
    let expires = words[2].strip_prefix("expires=").expect("expires=");
    assert!(expires.chars().all(|c| c.is_ascii_digit()), "{held}");
    let (one, two) = (first.wait(), second.wait());
    let mut codes = [one.code, two.code];
    codes.sort();
    assert_eq!(
        codes,
        [0, 6],
        "\n{}\n{}\n---\n{}\n{}",
        one.stdout,
        one.stderr,
        two.stdout,
        two.stderr
    );
    let loser = if one.code == 6 { &one } else { &two };
    assert!(
        loser.stderr.contains("holds the lease in the zone: run "),
        "{}",
        loser.stderr
    );
    assert!(loser.stderr.contains(" until 20"), "{}", loser.stderr);
    assert!(loser.stderr.contains(LEASE), "{}", loser.stderr);
    assert!(
        !loser.stdout.contains("apply"),
        "the loser changed something: {}",
        loser.stdout
    );
    // Each step ran once: only the winner changed the estate.
    assert_eq!(estate.count("Stop-CsWindowsService"), 1);
    assert_eq!(estate.count("Set-CsSite"), 1);
    // The winner removed its lease at the end.
    assert!(
        bind.dig(bind.primary.port, LEASE, "TXT").is_empty(),
        "lease left behind"
    );
    // The zone holds only a run id and an expiry while it lasts: checked
    // by planting one as edgefail writes it and reading it back below.
}

#[test]
fn an_expired_lease_is_reported_and_unlock_removes_it() {
    let bind = crate::harness::bind::Bind::start_for("127.0.0.10", "127.0.0.1");
    let estate = Estate::new(0);
    let topology = leased_topology(&estate, &bind, &estate.path("ops"));
    bind.nsupdate(&format!(
        "update add {LEASE} 30 TXT \"v=edgefail1 run=crashed-run expires=1700000000\""
    ));
    leased_failover(&topology)
        .run()
        .code(6)
        .stderr_has("run crashed-run until 2023-11-14T22:13:20Z (expired)")
        .stderr_has("`edgefail unlock` removes it");
    assert!(estate.writes().is_empty(), "{:?}", estate.writes());
    Run::unlock(&topology)
        .yes()
        .run()
        .code(0)
        .stdout_has("lease removed");
    assert!(bind.dig(bind.primary.port, LEASE, "TXT").is_empty());
    // Under --output json: one `unlock` event per thing looked at.
    use edgefail::event::{Event, UnlockOutcome, UnlockTarget};
    bind.nsupdate(&format!(
        "update add {LEASE} 30 TXT \"v=edgefail1 run=crashed-again expires=1700000000\""
    ));
    let out = Run::unlock(&topology).yes().json().run().code(0);
    let seen: Vec<(UnlockTarget, UnlockOutcome, String, Option<String>)> = out
        .events()
        .into_iter()
        .map(|e| match e {
            Event::Unlock {
                target,
                outcome,
                place,
                holder,
                ..
            } => (target, outcome, place, holder),
            other => panic!("{other:?}\n{out:?}"),
        })
        .collect();
    assert_eq!(seen.len(), 2, "{out:?}");
    // The lock record first (nothing here), then the lease.
    assert_eq!(
        (seen[0].0, seen[0].1),
        (UnlockTarget::Lock, UnlockOutcome::Nothing)
    );
    assert_eq!(
        (seen[1].0, seen[1].1, seen[1].2.clone()),
        (
            UnlockTarget::Lease,
            UnlockOutcome::Removed,
            format!("{LEASE}.")
        ),
        "{out:?}"
    );
    assert!(
        seen[1]
            .3
            .as_deref()
            .is_some_and(|h| h.contains("run crashed-again until 2023-11-14T22:13:20Z")),
        "{out:?}"
    );
    assert!(bind.dig(bind.primary.port, LEASE, "TXT").is_empty());
    // A live lease is not unlock's to break.
    bind.nsupdate(&format!(
        "update add {LEASE} 30 TXT \"v=edgefail1 run=live-run expires=4102444800\""
    ));
    Run::unlock(&topology)
        .yes()
        .run()
        .code(6)
        .stderr_has("it is live, not stale");
    let out = Run::unlock(&topology).yes().json().run().code(6);
    // The lock record is looked at first (nothing there), then the lease.
    match out.events().as_slice() {
        [
            Event::Unlock {
                target: UnlockTarget::Lock,
                outcome: UnlockOutcome::Nothing,
                ..
            },
            Event::Error {
                exit_code: 6,
                message,
            },
        ] => {
            assert!(
                message.contains("run live-run until 2100-01-01T00:00:00Z"),
                "{message}"
            )
        }
        other => panic!("{other:?}\n{out:?}"),
    }
    // A failover under --output json meets the same lease: `error`, exit 6.
    let out = leased_failover(&topology).json().run().code(6);
    match out.events().last() {
        Some(Event::Error {
            exit_code: 6,
            message,
        }) => {
            assert!(
                message.contains("holds the lease in the zone: run live-run"),
                "{message}"
            )
        }
        other => panic!("{other:?}\n{out:?}"),
    }
    assert!(!out.stdout.contains("run_finished"), "{}", out.stdout);
    assert_eq!(bind.dig(bind.primary.port, LEASE, "TXT").len(), 1);
    // plan only looks: no lease needed, none taken.
    Run::plan(&topology)
        .from("EdgePool1")
        .to("EdgePool2")
        .skip("port.check")
        .skip("federation.check")
        .run();
    assert_eq!(
        bind.dig(bind.primary.port, LEASE, "TXT"),
        vec!["\"v=edgefail1 run=live-run expires=4102444800\"".to_string()]
    );
}

// ---- the lease itself, through the library, against a real BIND ----

/// The lease's TXT record as BIND's primary has it (quoted, as dig says).
fn lease_record(bind: &crate::harness::bind::Bind) -> Vec<String> {
    bind.dig(bind.primary.port, LEASE, "TXT")
}

fn quoted(lease: &edgefail::dns::lease::Lease) -> Vec<String> {
    vec![format!("\"{}\"", lease.text)]
}

/// Wait (5 s at most) until `done` holds.
async fn until(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !done().await {
        assert!(std::time::Instant::now() < deadline, "{what}: not in time");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Take, renew, release, each a compare-and-swap on the record's exact
/// text: a stale or foreign copy changes nothing; a second take names the
/// holder; the renewal loop pushes the expiry on and stops at the first
/// lease that is no longer ours.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lease_is_renewed_and_released_by_compare_and_swap() {
    use edgefail::dns::DnsError;
    use edgefail::dns::lease::{Lease, LeaseError, ZoneLease};
    let bind = crate::harness::bind::Bind::start();
    let dir = tempfile::tempdir().unwrap();
    let topology = bind.topology(dir.path()).write(dir.path());
    let loaded = edgefail::topology::load(&topology).expect("valid topology");
    let zone = ZoneLease::from_topology(&loaded.topology).expect("the test zone's lease");
    assert_eq!(edgefail::dns::show(&zone.owner), format!("{LEASE}."));
    let serial = || bind.serial(bind.primary.port);
    let before = serial();

    let mine = zone.take("run-a", None).await.expect("take the lease");
    assert_eq!(mine.run_id, "run-a");
    assert_eq!(lease_record(&bind), quoted(&mine));
    assert_eq!(serial(), before + 1);

    // Held: a second take names the holder's run id and expiry, and
    // changes nothing.
    match zone.take("run-b", None).await {
        Err(e @ LeaseError::Held { .. }) => {
            let text = e.to_string();
            assert!(
                text.contains(&format!("run run-a until {}", mine.expiry())),
                "{text}"
            );
            let LeaseError::Held { lease, .. } = e else {
                unreachable!()
            };
            assert_eq!(lease, mine);
        }
        other => panic!("took a held lease: {other:?}"),
    }
    assert_eq!(lease_record(&bind), quoted(&mine));
    assert_eq!(serial(), before + 1);

    // Renewed: the expiry moves on (it counts whole seconds), the run id
    // stays, one UPDATE.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let renewed = zone.renew(&mine).await.expect("renew");
    assert_eq!(renewed.run_id, "run-a");
    assert!(renewed.expires > mine.expires, "{mine:?} -> {renewed:?}");
    assert_eq!(lease_record(&bind), quoted(&renewed));
    assert_eq!(serial(), before + 2);

    // A stale copy (our text before the renewal) and someone else's lease
    // neither renew nor remove anything.
    let theirs = Lease::parse(&format!(
        "v=edgefail1 run=run-b expires={}",
        renewed.expires
    ))
    .expect("a lease");
    for stale in [&mine, &theirs] {
        match zone.renew(stale).await {
            Err(DnsError::Prerequisite { .. }) => {}
            other => panic!("renewed with {stale:?}: {other:?}"),
        }
        match zone.release(stale).await {
            Err(DnsError::Prerequisite { .. }) => {}
            other => panic!("released with {stale:?}: {other:?}"),
        }
    }
    assert_eq!(lease_record(&bind), quoted(&renewed));
    assert_eq!(serial(), before + 2);

    // Released with the current copy: gone, and the estate free again.
    zone.release(&renewed).await.expect("release");
    assert!(lease_record(&bind).is_empty());
    assert_eq!(serial(), before + 3);

    // The renewal loop, at a short interval: the record follows the copy
    // it keeps; once someone else replaces the lease, renewals fail and
    // leave theirs alone, and release removes nothing.
    let taken = zone.take("run-c", None).await.expect("take again");
    let failures = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let kept = zone
        .clone()
        .keep(taken.clone(), std::time::Duration::from_millis(300), {
            let failures = failures.clone();
            move |e, held| {
                failures
                    .lock()
                    .unwrap()
                    .push(format!("{e} ({})", held.text))
            }
        });
    until("the loop renewed the lease", async || {
        kept.current().await.expires > taken.expires
    })
    .await;
    let current = kept.current().await;
    assert_eq!(current.run_id, "run-c");
    assert_eq!(lease_record(&bind), quoted(&current));
    assert!(failures.lock().unwrap().is_empty(), "{failures:?}");
    bind.nsupdate(&format!(
        "update delete {LEASE} TXT\nupdate add {LEASE} 30 TXT \"v=edgefail1 run=intruder expires=4102444800\""
    ));
    until("a renewal failed", async || {
        !failures.lock().unwrap().is_empty()
    })
    .await;
    let (last, removed) = kept.release().await;
    assert_eq!(last.run_id, "run-c");
    assert!(
        matches!(removed, Err(DnsError::Prerequisite { .. })),
        "{removed:?}"
    );
    assert_eq!(
        lease_record(&bind),
        vec!["\"v=edgefail1 run=intruder expires=4102444800\"".to_string()]
    );
}
