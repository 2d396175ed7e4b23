//! plan and failover through the real binary against the PowerShell stand-in
//! (steps 1-3 and 7; DNS and the port probe are skipped here).

use std::path::Path;

use edgefail::event::{Event, Outcome, Phase, RunOutcome};
use edgefail::steps::StepId;
use serde_json::json;

use crate::harness::standin::{Estate, LYNC_STEPS};
use crate::harness::topology::Topology;
use crate::harness::{Events, Run};

/// EdgePool1 -> EdgePool2, the Lync steps only.
fn failover(topology: &Path) -> Run {
    Run::failover(topology)
        .from("EdgePool1")
        .to("EdgePool2")
        .only(&LYNC_STEPS)
}

fn plan(topology: &Path) -> Run {
    Run::plan(topology)
        .from("EdgePool1")
        .to("EdgePool2")
        .only(&LYNC_STEPS)
}

#[test]
fn plan_and_dry_run_change_nothing_and_say_what_would_change() {
    let estate = Estate::new(0);
    let topology = estate.topology();
    let before = estate.world();

    let out = plan(&topology).run().code(4);
    for line in [
        "pool.deployed    check  already done",
        "services.stop    check  would change",
        "route.set        check  would change",
        "services.start   check  would change",
        "- EdgeServer1.contoso.com",
        "+ EdgeServer2.contoso.com",
    ] {
        assert!(
            out.stdout.contains(line),
            "plan lacks {line:?}:\n{}",
            out.stdout
        );
    }
    failover(&topology).dry_run().run().code(4);

    assert_eq!(estate.world(), before, "a dry run changed the estate");
    assert!(
        estate.writes().is_empty(),
        "a dry run ran {:?}",
        estate.writes()
    );
    assert!(
        estate.count("Get-CsWindowsService") > 0,
        "the plan read nothing"
    );
}

#[test]
fn failover_runs_steps_in_order_then_a_second_run_changes_nothing() {
    let estate = Estate::new(0);
    let topology = estate.topology();
    let out = failover(&topology).yes().run().code(0);
    crate::harness::assert_lync_steps_verified(&out);
    // The plan comes first, then the run with its own fresh checks.
    let plan_end = out
        .stdout
        .find("Running: each step is checked again")
        .expect("a heading between plan and run");
    assert!(out.stdout[..plan_end].contains("services.stop    check  would change"));
    assert!(out.stdout[plan_end..].contains("services.stop    apply  changed"));

    let state = estate.read();
    assert_eq!(state["sites"]["Site2"]["route"], "EdgeServer2.contoso.com");
    assert_eq!(
        state["sites"]["Site1"]["route"], "EdgeServer1.contoso.com",
        "the failed site's route must be left alone"
    );
    assert_eq!(
        state["hosts"]["EdgeServer2.contoso.com"]["services"]["RTCSRV"],
        "Running"
    );
    let writes = estate.writes();
    assert_eq!(
        writes,
        vec![
            (
                "EdgeServer2.contoso.com".to_string(),
                "Stop-CsWindowsService".to_string()
            ),
            ("fe1.contoso.com".to_string(), "Set-CsSite".to_string()),
            (
                "EdgeServer2.contoso.com".to_string(),
                "Start-CsWindowsService".to_string()
            ),
        ]
    );
    // The failed pool's servers are never touched.
    assert!(
        estate
            .log()
            .iter()
            .all(|(h, _)| h != "EdgeServer1.contoso.com")
    );

    let again = failover(&topology).yes().run().code(0);
    assert!(again.stdout.contains("Nothing to do"), "{}", again.stdout);
    assert_eq!(estate.writes().len(), 3, "the second run changed something");

    // And plan now says there is nothing pending.
    plan(&topology).run().code(0);
}

#[test]
fn json_output_is_one_event_per_line_with_step_ids() {
    let estate = Estate::new(0);
    let topology = estate.topology();
    let out = failover(&topology).yes().json().quiet().run().code(0);
    // Every line parses as the library's own Event, the documented schema:
    // a phase event without its step id or with another phase, a
    // phase_finished without duration_ms, outcome or summary, fails here.
    let events = out.events();
    assert_eq!(events.len(), out.stdout.lines().count(), "{}", out.stdout);
    match events.first() {
        Some(Event::RunStarted { steps, .. }) => assert_eq!(steps.len(), 8),
        other => panic!("the first event is not run_started: {other:?}"),
    }
    let (outcome, exit_code, _) = out.run_finished();
    assert_eq!((outcome, exit_code), (RunOutcome::Completed, 0));
    let route_verify = events
        .finished()
        .into_iter()
        .find(|f| f.step == StepId::RouteSet && f.phase == Phase::Verify)
        .expect("route.set verify event");
    assert_eq!(route_verify.outcome, Outcome::Verified);
    let skipped: Vec<&str> = events
        .finished()
        .iter()
        .filter(|f| f.outcome == Outcome::Skipped)
        .map(|f| f.step.as_str())
        .collect();
    // Once in the plan, once in the run's own fresh checks.
    assert_eq!(
        skipped,
        [
            "dns.a",
            "dns.srv",
            "port.check",
            "federation.check",
            "dns.a",
            "dns.srv",
            "port.check",
            "federation.check"
        ]
    );
}

#[test]
fn without_terminal_or_yes_it_refuses_before_contacting_anything() {
    let estate = Estate::new(0);
    let topology = estate.topology();
    failover(&topology).run().code(2).stderr_has("pass --yes");
    assert!(
        estate.log().is_empty(),
        "contacted machines: {:?}",
        estate.log()
    );
}

#[test]
fn bad_pool_choices_are_usage_errors() {
    let estate = Estate::new(0);
    let t = estate.topology();
    Run::plan(&t)
        .from("EdgePool2")
        .to("edgepool2")
        .run()
        .code(2)
        .stderr_has("both name EdgePool2");
    Run::plan(&t)
        .from("EdgePool1")
        .to("EdgePool9")
        .run()
        .code(2)
        .stderr_has("no pool named 'EdgePool9' in the topology (pools: EdgePool1, EdgePool2)");
    Run::plan(&t)
        .from("EdgePool1")
        .to("EdgePool2")
        .skip("dns.aaaa")
        .run()
        .code(2)
        .stderr_has("--skip dns.aaaa: no such step");

    let sfb2019 = Topology::estate(&estate)
        .version("EdgePool2", "sfb2019")
        .write(estate.dir.path());
    let out = Run::failover(&sfb2019)
        .dry_run()
        .from("EdgePool1")
        .to("EdgePool2")
        .run()
        .code(2)
        .stderr_has("has no XMPP gateway");
    assert!(out.stderr.contains("Skype for Business Server 2019"));
    assert!(estate.log().is_empty());
}

#[test]
fn one_server_failing_to_stop_fails_the_step_and_nothing_later_runs() {
    let estate = Estate::new(2);
    estate.fault(
        "EdgeServer2b.contoso.com",
        "Stop-CsWindowsService",
        "fail",
        "Cannot stop service 'RTCSRV' on computer '.'.",
    );
    let topology = estate.topology();
    let out = failover(&topology).yes().parallel(2).run().code(1);
    estate.assert_stop_failed_on(
        &out,
        "EdgeServer2b.contoso.com",
        "Cannot stop service 'RTCSRV' on computer '.'.",
    );
}

#[test]
fn a_hanging_server_hits_its_timeout() {
    let estate = Estate::new(1);
    estate.fault(
        "EdgeServer2b.contoso.com",
        "Start-CsWindowsService",
        "hang",
        "",
    );
    let topology = estate.topology();
    let out = failover(&topology)
        .yes()
        .command_timeout(2)
        .verify_timeout(5)
        .run()
        .code(1);
    // The route was set before the start step.
    estate.assert_start_timed_out(&out, "EdgeServer2b.contoso.com", 2);
}

#[test]
fn services_that_settle_slowly_are_polled_until_they_hold() {
    let estate = Estate::new(1);
    estate.edit(|v| {
        for h in ["EdgeServer2.contoso.com", "EdgeServer2b.contoso.com"] {
            v["hosts"][h]["settle_reads"] = json!(3);
        }
    });
    let topology = estate.topology();
    let out = failover(&topology).yes().verbose(1).run().code(0);
    assert!(
        out.stdout.contains("services.stop    verify verified"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("3 read(s)"), "{}", out.stdout);
}

#[test]
fn services_that_never_settle_fail_verify_with_exit_3() {
    let estate = Estate::new(0);
    estate.edit(|v| v["hosts"]["EdgeServer2.contoso.com"]["settle_reads"] = json!(100000));
    let topology = estate.topology();
    let out = failover(&topology).yes().verify_timeout(1).run().code(3);
    assert!(
        out.stdout
            .contains("EdgeServer2.contoso.com: REPLICA StopPending"),
        "{}",
        out.stdout
    );
    assert_eq!(
        estate.count("Set-CsSite"),
        0,
        "a later step ran after a failed verify"
    );
}

#[test]
fn route_parameter_spelled_as_the_cmdlet_reference_takes_a_service_identity() {
    let estate = Estate::new(0);
    estate.edit(|v| v["set_cssite_parameter"] = json!("XmppFederationRoute"));
    let topology = estate.topology();
    let out = failover(&topology).yes().run().code(0);
    assert!(
        out.stdout
            .contains("-XmppFederationRoute EdgeServer:EdgeServer2.contoso.com"),
        "{}",
        out.stdout
    );
    assert_eq!(
        estate.read()["sites"]["Site2"]["route"],
        "EdgeServer:EdgeServer2.contoso.com"
    );
}

#[test]
fn a_pinned_route_parameter_the_shell_lacks_blocks_the_run() {
    let estate = Estate::new(0);
    let topology = Topology::estate(&estate)
        .route_parameter("XmppFederationRoute")
        .write(estate.dir.path());
    let out = failover(&topology).yes().run().code(1);
    assert!(
        out.stdout
            .contains("pins route_parameter XmppFederationRoute"),
        "{}",
        out.stdout
    );
    assert!(estate.writes().is_empty());
}

#[test]
fn cms_replication_lag_is_waited_for() {
    let estate = Estate::new(0);
    estate.edit(|v| v["replication_lag_reads"] = json!(3));
    let topology = estate.topology();
    let out = failover(&topology).yes().run().code(0);
    assert!(
        out.stdout.contains("all 2 CMS replica(s) up to date"),
        "{}",
        out.stdout
    );
    assert!(estate.count("Get-CsManagementStoreReplicationStatus") >= 3);
}

#[test]
fn a_pool_the_cms_does_not_know_blocks_everything() {
    let estate = Estate::new(0);
    estate.edit(|v| {
        v["pools"]
            .as_object_mut()
            .unwrap()
            .remove("edgepool2.contoso.com");
    });
    let topology = estate.topology();
    let out = failover(&topology).yes().run().code(1);
    assert!(
        out.stdout.contains("pool.deployed    check  blocked"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("Cannot find pool"), "{}", out.stdout);
    assert!(estate.writes().is_empty());
}

#[test]
fn on_a_terminal_it_asks_and_only_yes_proceeds() {
    let estate = Estate::new(0);
    let topology = estate.topology();
    let mut pty = failover(&topology).on_terminal();
    pty.wait_for("Type 'yes' to proceed", 1);
    assert!(
        pty.seen.contains("services.stop    check  would change"),
        "the plan comes first:\n{}",
        pty.seen
    );
    pty.type_line("y");
    let (status, seen) = pty.finish();
    assert_eq!(status.code(), Some(5), "{seen}");
    assert!(
        seen.contains("not confirmed; nothing was changed"),
        "{seen}"
    );
    assert!(
        estate.writes().is_empty(),
        "declined, yet ran {:?}",
        estate.writes()
    );

    let mut pty = failover(&topology).on_terminal();
    pty.wait_for("Type 'yes' to proceed", 1);
    pty.type_line("yes");
    let (status, seen) = pty.finish();
    assert_eq!(status.code(), Some(0), "{seen}");
    assert!(seen.contains("Failover complete"), "{seen}");
    assert_eq!(estate.writes().len(), 3);
}

#[test]
fn warnings_are_events_on_stdout_and_still_said_on_stderr() {
    let estate = Estate::new(0);
    // A pool without an XMPP gateway is valid but noted.
    let topology = Topology::estate(&estate)
        .version("EdgePool1", "sfb2019")
        .write(estate.dir.path());
    let out = plan(&topology).json().run().code(4);
    let events = out.events();
    match events.first() {
        Some(Event::Warning {
            origin: edgefail::event::Origin::Topology,
            level: edgefail::event::Level::Note,
            message,
            at: Some(at),
        }) => {
            assert!(message.contains("has no XMPP gateway"), "{message}");
            assert_eq!(at.field, "sites[0].pools[0].version");
            assert!(at.line > 0 && at.column > 0, "{at:?}");
        }
        other => panic!("the first event is not the topology's note: {other:?}"),
    }
    assert!(
        matches!(events.get(1), Some(Event::RunStarted { .. })),
        "{}",
        out.stdout
    );
    assert!(
        out.stderr.contains(
            ": note: sites[0].pools[0].version: EdgePool1 runs Skype for Business Server 2019"
        ),
        "{}",
        out.stderr
    );
}
