//! `edgefail rehearse`: the README's first command, a large generated
//! estate, every drill and its in-process resume, and loopback only.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use edgefail::event::{Event, Outcome, Phase, Rehearsal, RunOutcome};
use edgefail::steps::StepId;

use crate::harness::events::CHANGING_STEPS;
use crate::harness::topology::{
    Dns, Pool, Secret, Server, Site, Timeouts, Topology, Transport, Tsig,
};
use crate::harness::{Events, Run};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The README's first set-up command, after `cargo run --release --`, run
/// from the repository.
fn readme_rehearsal() -> Run {
    Run::rehearse(Path::new("runbooks/contoso.yaml"))
        .from("EdgePool1")
        .to("EdgePool2")
        .current_dir(&repo())
}

/// The rehearsal's announcements among the events.
fn rehearsals(events: &[Event]) -> Vec<&Rehearsal> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Rehearsal(r) => Some(r.as_ref()),
            _ => None,
        })
        .collect()
}

/// The rehearsal's resume notices: (failed exit code, command).
fn resumes(events: &[Event]) -> Vec<(i32, &str)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::RehearsalResume {
                failed_exit_code,
                command,
                ..
            } => Some((*failed_exit_code, command.as_str())),
            _ => None,
        })
        .collect()
}

/// Every step that changed something was verified, and the run completed.
#[track_caller]
fn assert_completed(events: &[Event], stdout: &str) {
    let (outcome, exit_code, _) = events.run_endings().pop().expect("a run_finished event");
    assert_eq!(outcome, RunOutcome::Completed, "{stdout}");
    assert_eq!(exit_code, 0, "{stdout}");
    assert!(!events.finished().is_empty());
    // Only the last run counts: a drill's failed run precedes it.
    let start = events
        .iter()
        .rposition(|e| matches!(e, Event::RunStarted { .. }))
        .expect("run_started");
    let last_run = events[start..].finished();
    for applied in last_run
        .iter()
        .filter(|f| f.phase == Phase::Apply && f.outcome == Outcome::Changed)
    {
        let step = applied.step;
        assert!(
            last_run
                .iter()
                .any(|f| f.is(step, Phase::Verify, Outcome::Verified)),
            "{step} changed something but was not verified:\n{stdout}"
        );
    }
}

#[test]
fn the_readme_command_rehearses_to_completion() {
    let readme = std::fs::read_to_string(repo().join("README.md")).expect("README.md");
    let command = format!(
        "cargo run --release -- {}",
        readme_rehearsal().command_line()
    );
    assert!(
        readme.contains(&command),
        "the README no longer shows `{command}`"
    );
    readme_rehearsal()
        .run()
        .code(0)
        .stdout_has("REHEARSAL of EdgePool1 -> EdgePool2")
        .stdout_has("nothing real is contacted or changed")
        .stdout_has("self-signed certificate for contoso.com")
        .stdout_has("Failover complete: XMPP federation now runs through EdgePool2");

    let out = readme_rehearsal().json().delay_ms(0).run().code(0);
    let events = out.events();
    assert_completed(&events, &out.stdout);
    // federation.check changes nothing: its re-check right before it runs
    // may already find partners reaching the new pool ("already done").
    out.assert_verified(&CHANGING_STEPS);
    let federation = events.last_finished(StepId::FederationCheck);
    assert!(
        matches!(federation.outcome, Outcome::Verified | Outcome::AlreadyDone),
        "{}",
        federation.json()
    );
}

/// A topology with `sites` sites, one pool each (EdgePool1..), `per_pool`
/// Edge servers per pool, and addresses that are not loopback.
fn big_topology(dir: &Path, sites: u16, per_pool: u16) -> PathBuf {
    let lync = Transport::Local {
        program: "pwsh".into(),
        args: Vec::new(),
        module: Some("Lync".into()),
        session: None,
    };
    let mut t = Topology::new("fabrikam.example");
    t.dns = Dns {
        mode: None,
        primary: Some("192.0.2.53".into()),
        authoritative: vec!["192.0.2.53".into(), "198.51.100.53".into()],
        tsig: Some(Tsig {
            name: "edgefail-fabrikam".into(),
            algorithm: Some("hmac-sha256".into()),
            secret: Secret::Env("FABRIKAM_TSIG_NOT_SET".into()),
        }),
        timeout_secs: None,
    };
    t.management.transport = lync.clone();
    t.timeouts = Timeouts {
        command_secs: Some(120),
        verify_secs: Some(300),
        poll_ms: Some(1000),
    };
    t.sites = (1..=sites)
        .map(|s| {
            let servers = (1..=per_pool)
                .map(|n| Server {
                    fqdn: format!("edge{s}-{n}.fabrikam.example"),
                    external_ipv4: format!("203.0.113.{}", s * 20 + n),
                    transport: lync.clone(),
                })
                .collect();
            Site {
                name: format!("Site{s}"),
                pools: vec![Pool::new(
                    &format!("EdgePool{s}"),
                    "sfb2015",
                    s * 10,
                    servers,
                )],
            }
        })
        .collect();
    t.srv_targets().write(dir)
}

#[test]
fn three_sites_with_eight_edge_servers_each_rehearse_to_completion() {
    let dir = tempfile::tempdir().expect("temp dir");
    let topology = big_topology(dir.path(), 3, 8);
    Run::validate(&topology).run().code(0);
    let out = Run::rehearse(&topology)
        .from("EdgePool1")
        .to("EdgePool3")
        .delay_ms(20)
        .json()
        .run()
        .code(0);
    let events = out.events();
    assert_completed(&events, &out.stdout);
    let rehearsal = rehearsals(&events);
    assert_eq!(rehearsal.len(), 1, "{}", out.stdout);
    assert_eq!(rehearsal[0].servers.len(), 24);
}

/// Every IPv4 address in `text`.
fn addresses(text: &str) -> Vec<Ipv4Addr> {
    text.split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .filter_map(|w| w.trim_matches('.').parse::<Ipv4Addr>().ok())
        .collect()
}

#[test]
fn nothing_but_loopback_is_used() {
    let dir = tempfile::tempdir().expect("temp dir");
    let topology = big_topology(dir.path(), 2, 2);
    let out = Run::rehearse(&topology)
        .from("EdgePool1")
        .to("EdgePool2")
        .delay_ms(0)
        .json()
        .run()
        .code(0);
    let events = out.events();
    assert_completed(&events, &out.stdout);
    let mapping = rehearsals(&events)[0];
    let mut mapped = Vec::new();
    for s in &mapping.servers {
        mapped.push(s.rehearsal.clone());
    }
    mapped.push(mapping.dns.primary.rehearsal.clone());
    mapped.push(mapping.dns.authoritative.rehearsal.join(", "));
    for text in &mapped {
        let found = addresses(text);
        assert!(!found.is_empty(), "no address in {text}");
        assert!(
            found.iter().all(Ipv4Addr::is_loopback),
            "{text} is not loopback"
        );
    }
    // What the steps read, changed and probed: loopback only.
    for e in events.iter().filter(|e| !matches!(e, Event::Rehearsal(_))) {
        let text = serde_json::to_string(e).expect("an event as JSON");
        for ip in addresses(&text) {
            assert!(ip.is_loopback(), "{ip} outside 127.0.0.0/8 in {text}");
        }
    }
}

/// Run a drill: the first run fails as documented, the resume completes.
#[track_caller]
fn drill(fault: &str, step: StepId, phase: Phase, outcome: Outcome, says: &str) {
    let out = readme_rehearsal()
        .inject(fault)
        .delay_ms(0)
        .json()
        .run()
        .code(0);
    let events = out.events();
    // One run_finished, the rehearsal's: the drill's failed run ends inside
    // rehearsal_resume (its exit code, checked below, and its message).
    let finished = events.run_endings();
    assert_eq!(finished.len(), 1, "{}", out.stdout);
    let failures = events.finished();
    let failure = failures
        .iter()
        .find(|f| f.is(step, phase, outcome))
        .unwrap_or_else(|| panic!("{fault}: no {step} {phase:?} {outcome:?}:\n{}", out.stdout));
    assert!(
        failure.summary.contains(says),
        "{fault}: {step} says {:?} (expected {says:?})",
        failure.summary
    );
    let resume = resumes(&events);
    assert_eq!(resume.len(), 1, "{}", out.stdout);
    assert_eq!(resume[0].0, 1, "{}", out.stdout);
    assert!(
        resume[0].1.starts_with("edgefail failover --resume"),
        "{}",
        resume[0].1
    );
    let started = events.run_starts();
    assert_eq!(started[1].1.as_ref(), Some(&started[0].0), "{}", out.stdout);
    assert_completed(&events, &out.stdout);
}

#[test]
fn drill_stop_fails() {
    drill(
        "stop-fails",
        StepId::ServicesStop,
        Phase::Apply,
        Outcome::Failed,
        "failed to stop",
    );
}

#[test]
fn drill_start_fails_on_a_named_server() {
    drill(
        "start-fails:EdgeServer2.contoso.com",
        StepId::ServicesStart,
        Phase::Apply,
        Outcome::Failed,
        "Start-CsWindowsService failed",
    );
}

#[test]
fn drill_service_hangs() {
    drill(
        "service-hangs",
        StepId::ServicesStart,
        Phase::Apply,
        Outcome::Failed,
        "no answer within",
    );
}

#[test]
fn drill_route_fails() {
    drill(
        "route-fails",
        StepId::RouteSet,
        Phase::Apply,
        Outcome::Failed,
        "Central Management Store",
    );
}

#[test]
fn drill_dns_bad_key() {
    drill(
        "dns-bad-key",
        StepId::DnsA,
        Phase::Check,
        Outcome::Blocked,
        "(BADSIG)",
    );
}

#[test]
fn drill_dns_concurrent_change() {
    drill(
        "dns-concurrent-change",
        StepId::DnsA,
        Phase::Apply,
        Outcome::Failed,
        "changed since the check",
    );
}

#[test]
fn drill_port_filtered() {
    drill(
        "port-filtered",
        StepId::PortCheck,
        Phase::Check,
        Outcome::Blocked,
        "filtered",
    );
}

#[test]
fn an_unknown_drill_or_server_is_a_usage_error() {
    readme_rehearsal()
        .inject("meteor-strike")
        .run()
        .code(2)
        .stderr_has("no such drill");
    readme_rehearsal()
        .inject("stop-fails:EdgeServer9.contoso.com")
        .run()
        .code(2)
        .stderr_has("is not an Edge server of the target pool");
    readme_rehearsal()
        .inject("dns-bad-key:x")
        .run()
        .code(2)
        .stderr_has("takes no server");
}

/// A drill that stops mid-failover closes its failed run with the state of
/// the estate read back, in JSON (inside `rehearsal_resume`, since the
/// failed run's own `run_finished` is not repeated) and on the terminal
/// (before the rehearsal's resume line).
#[test]
fn a_drills_failed_run_says_the_state_of_the_estate() {
    let out = readme_rehearsal()
        .inject("dns-concurrent-change")
        .delay_ms(0)
        .json()
        .run()
        .code(0);
    let events = out.events();
    let estate = events
        .iter()
        .find_map(|e| match e {
            Event::RehearsalResume { estate, .. } => estate.clone(),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no estate in rehearsal_resume:\n{}", out.stdout));
    assert_eq!(
        estate.steps_done,
        vec![StepId::ServicesStop, StepId::RouteSet],
        "{estate:?}"
    );
    assert!(
        estate.steps_unverified.contains(&StepId::DnsA),
        "{estate:?}"
    );
    assert!(
        estate
            .readings
            .iter()
            .any(|r| r.step == StepId::DnsA && r.state.contains(".250")),
        "the A record the drill moved is read back: {estate:?}"
    );
    assert!(
        estate.next.starts_with("edgefail failover --resume"),
        "{estate:?}"
    );

    let human = readme_rehearsal()
        .inject("dns-concurrent-change")
        .delay_ms(0)
        .run()
        .code(0);
    let footer = human
        .stdout
        .find("State of the estate")
        .unwrap_or_else(|| panic!("no footer:\n{}", human.stdout));
    let resume_line = human
        .stdout
        .find("REHEARSAL: that is what")
        .expect("resume line");
    assert!(footer < resume_line, "{}", human.stdout);
}
