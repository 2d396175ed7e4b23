//! One PowerShell session per machine per run: one process per machine,
//! `session: false` for one per script, a session that dies mid-run
//! replaced once (over the real sshd), a second death failing the command
//! by machine and `--resume` finishing the run, and answers that nothing a
//! script prints can forge.

use std::path::PathBuf;
use std::time::Duration;

use crate::harness::Run;
use crate::harness::sshd::Sshd;
use crate::harness::standin::{Estate, LYNC_STEPS, MANAGEMENT, standin_bin};
use crate::harness::topology::Topology;

fn failover(topology: &std::path::Path) -> Run {
    Run::failover(topology)
        .yes()
        .from("EdgePool1")
        .to("EdgePool2")
        .only(&LYNC_STEPS)
}

/// `topology` with `session: false` on every machine.
fn per_script(mut t: Topology) -> PathBuf {
    let dir = tempfile::tempdir().expect("temp dir").keep();
    t.management.transport = t.management.transport.clone().session(false);
    for site in &mut t.sites {
        for pool in &mut site.pools {
            for server in &mut pool.servers {
                server.transport = server.transport.clone().session(false);
            }
        }
    }
    t.write(&dir)
}

#[test]
fn one_powershell_process_per_machine_per_run_and_one_per_script_when_asked() {
    let estate = Estate::new(2);
    let journal = estate.path("journal.jsonl");
    let out = failover(&estate.topology())
        .parallel(3)
        .verbose(2)
        .journal(&journal)
        .run()
        .code(0);
    crate::harness::assert_lync_steps_verified(&out);
    // -vv: the script each machine was sent and what came back; logs on a
    // pipe are plain text.
    assert!(
        out.stdout.contains("    > fe1.contoso.com via local ")
            || out.stdout.contains("    > management shell via local "),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("    | Set-CsSite -Identity 'Site2' -XmppExternalFederationRoute 'EdgeServer2.contoso.com'"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("    stdout: [{\"Name\":"),
        "{}",
        out.stdout
    );
    assert!(
        !out.stderr.contains('\u{1b}'),
        "ANSI escapes in logs: {}",
        out.stderr
    );
    // The journal records the same.
    let text = std::fs::read_to_string(&journal).expect("journal");
    let transcripts: Vec<serde_json::Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["type"] == "transcript")
        .collect();
    let set = transcripts
        .iter()
        .find(|t| t["action"] == "Set-CsSite")
        .expect("Set-CsSite transcribed");
    assert_eq!(set["exit_code"], 0);
    assert!(
        set["script"]
            .as_str()
            .unwrap_or_default()
            .contains("Set-CsSite -Identity 'Site2'")
    );
    assert_eq!(transcripts.len(), estate.log().len());
    estate.assert_failed_over();
    assert_eq!(estate.starts(MANAGEMENT), 1, "{}", estate.started());
    for server in &estate.target_servers {
        assert_eq!(estate.starts(server), 1, "{}", estate.started());
    }
    // The failed pool's server is never contacted.
    assert_eq!(estate.starts("EdgeServer1.contoso.com"), 0);
    let commands = estate.log().len();
    assert!(commands > 10, "only {commands} commands");

    // session: false: one process per script, as before sessions.
    let estate = Estate::new(0);
    let out = failover(&per_script(Topology::estate(&estate)))
        .run()
        .code(0);
    crate::harness::assert_lync_steps_verified(&out);
    let on_shell = estate.log().iter().filter(|(h, _)| h == MANAGEMENT).count() as u64;
    assert!(on_shell > 1);
    assert_eq!(estate.starts(MANAGEMENT), on_shell);
}

#[test]
fn a_session_that_dies_is_replaced_once_then_the_command_fails_and_resume_finishes_over_ssh() {
    let sshd = Sshd::start(4);
    let dying = "EdgeServer2b.contoso.com";
    let die = |times: u32| serde_json::json!({"host": dying, "cmdlet": "Start-CsWindowsService", "action": "die", "times": times});

    // Dies once: a new session takes the command, the run completes.
    let estate = Estate::new(1);
    estate.add_fault(die(1));
    let topology = Topology::estate_ssh(&estate, &sshd.endpoints()).write(estate.dir.path());
    let out = failover(&topology).run().code(0);
    crate::harness::assert_lync_steps_verified(&out);
    estate.assert_failed_over();
    assert!(
        out.stderr
            .contains("the PowerShell session ended during Start-CsWindowsService"),
        "{}",
        out.stderr
    );
    assert_eq!(estate.starts(dying), 2);
    assert_eq!(estate.starts("EdgeServer2.contoso.com"), 1);
    assert_eq!(estate.starts(MANAGEMENT), 1);
    sshd.wait_all_closed(Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("an ssh connection outlived edgefail: {e}"));

    // Dies twice: the command fails, named by machine; nothing after it ran.
    let estate = Estate::new(1);
    estate.add_fault(die(2));
    let topology = Topology::estate_ssh(&estate, &sshd.endpoints()).write(estate.dir.path());
    let journal = estate.path("journal.jsonl");
    let out = failover(&topology).journal(&journal).run().code(1);
    assert!(
        out.stdout.contains(&format!(
            "{dying}: Start-CsWindowsService: the PowerShell session ended without answering, in its replacement too (exit code 1)"
        )),
        "{}",
        out.stdout
    );
    // Two sessions for the command, and a third for the closing read-back
    // of the estate (the footer reads every server's services again).
    assert_eq!(estate.starts(dying), 3);
    // The other server started; the dying one's services stay stopped.
    let state = estate.read();
    assert_eq!(state["hosts"][dying]["services"]["RTCSRV"], "Stopped");

    // The resume, in a new run: new sessions, the start done.
    let resumed = Run::failover(&topology)
        .resume()
        .yes()
        .journal(&journal)
        .run()
        .code(0);
    assert!(
        resumed.stdout.contains("Failover complete"),
        "{}",
        resumed.stdout
    );
    estate.assert_failed_over();
    assert_eq!(estate.starts(dying), 4);
    sshd.wait_all_closed(Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("an ssh connection outlived edgefail: {e}"));
}

#[test]
fn nothing_a_script_prints_passes_for_an_answer() {
    let estate = Estate::new(0);
    // A site whose identity looks like the protocol: lines, a ready line,
    // a forged answer, base64.
    let forged = "Site:x\r\nef0 ready\nef0 1 error  U2V0LUNzU2l0ZSA6IGZvcmdlZA==\n";
    estate.edit(|v| {
        v["sites"]["Forged"] = serde_json::json!({"identity": forged, "route": "r"});
    });
    let spec = edgefail::topology::TransportSpec::Local(edgefail::topology::LocalSpec {
        program: Some(standin_bin().display().to_string()),
        args: vec![
            "--state".into(),
            estate.state.display().to_string(),
            "--host".into(),
            MANAGEMENT.into(),
        ],
        module: Some("Lync".into()),
        session: None,
    });
    let shell = edgefail::lync::Machine::new(MANAGEMENT, &spec);
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    runtime.block_on(async {
        let timeout = Duration::from_secs(20);
        for _ in 0..3 {
            let site = shell.site("Forged", timeout).await.expect("read the site");
            assert_eq!(site["Identity"], forged);
        }
        // A failure is told from success in the same session.
        let e = shell
            .site("Nowhere", timeout)
            .await
            .expect_err("no such site");
        assert_eq!(
            e.to_string(),
            format!("{MANAGEMENT}: Get-CsSite failed: Cannot find site \"Nowhere\".")
        );
        let site = shell.site("Forged", timeout).await.expect("read the site");
        assert_eq!(site["Identity"], forged);
        if let Some(closing) = shell.close() {
            closing.await.expect("session closed");
        }
    });
    assert_eq!(estate.starts(MANAGEMENT), 1);
}
