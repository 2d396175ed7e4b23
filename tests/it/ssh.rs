//! The ssh transport against a real sshd on loopback, the PowerShell
//! stand-in playing powershell.exe on the far side: a pool failed over in
//! parallel, failures named by server, refused host keys and logins, hostile
//! names, both route-parameter spellings and CMS replication lag.

use std::ffi::OsString;
use std::path::Path;
use std::time::Duration;

use crate::harness::Run;
use crate::harness::sshd::Sshd;
use crate::harness::standin::{Estate, SKIP_NON_LYNC};

fn failover_args(topology: &Path, more: &[&str]) -> Vec<OsString> {
    let mut v: Vec<OsString> = vec!["failover".into(), "--yes".into(), "-t".into()];
    v.push(topology.as_os_str().to_owned());
    v.extend(
        ["--from", "EdgePool1", "--to", "EdgePool2"]
            .iter()
            .chain(SKIP_NON_LYNC.iter())
            .chain(more.iter())
            .map(OsString::from),
    );
    v
}

/// Entries left in a run's temp dir (its ssh control directory must go).
fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .expect("read the run's temp dir")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect()
}

#[test]
fn a_pool_of_three_fails_over_in_parallel_over_ssh_on_shared_connections() {
    let estate = Estate::new(2);
    let sshd = Sshd::start(estate.machines().len());
    let topology = estate.topology_ssh(&sshd, |_, _| {});
    let tmp = tempfile::tempdir().expect("temp dir");

    let out = Run::new(failover_args(&topology, &["--parallel", "3"]))
        .env("TMPDIR", tmp.path())
        .run()
        .code(0);
    assert!(out.stdout.contains("Failover complete"), "{}", out.stdout);
    for step in ["services.stop", "route.set", "services.start"] {
        assert!(
            out.stdout.contains(&format!("{step:<15} verify verified")),
            "{step} not verified:\n{}",
            out.stdout
        );
    }

    let state = estate.read();
    assert_eq!(state["sites"]["Site2"]["route"], "EdgeServer2.contoso.com");
    for server in &estate.target_servers {
        assert_eq!(state["hosts"][server]["services"]["RTCSRV"], "Running");
        for cmdlet in ["Stop-CsWindowsService", "Start-CsWindowsService"] {
            assert!(
                estate.log().contains(&(server.clone(), cmdlet.to_string())),
                "{server} never ran {cmdlet}: {:?}",
                estate.log()
            );
        }
    }
    assert_eq!(
        estate
            .writes()
            .iter()
            .filter(|(h, _)| h == "fe1.contoso.com")
            .count(),
        1,
        "Set-CsSite once, on the management shell"
    );

    // Every command went over ssh; the commands to one host shared one
    // connection (a race at the start may open a second).
    let commands = estate.log().len();
    let logins = sshd.logins();
    assert!(logins >= 4, "only {logins} ssh login(s) for 4 machines");
    assert!(
        logins < commands && logins <= 2 * 4,
        "{logins} ssh logins for {commands} commands: connections were not reused\n{}",
        sshd.log_text()
    );
    // No control master outlives edgefail, and its socket directory is gone.
    sshd.wait_all_closed(Duration::from_secs(5))
        .unwrap_or_else(|e| {
            panic!(
                "an ssh connection outlived edgefail: {e}\n{}",
                sshd.log_text()
            )
        });
    assert_eq!(leftovers(tmp.path()), Vec::<String>::new());
}
