//! The ssh transport against a real sshd on loopback, the PowerShell
//! stand-in playing powershell.exe on the far side: a pool failed over in
//! parallel, failures named by server, refused host keys and logins, hostile
//! names, both route-parameter spellings and CMS replication lag.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::harness::Run;
use crate::harness::net::free_port;
use crate::harness::sshd::Sshd;
use crate::harness::standin::{Estate, LYNC_STEPS, SshEndpoints};
use crate::harness::topology::{Ssh, Topology};

/// EdgePool1 -> EdgePool2, the Lync steps only.
fn failover(topology: &Path) -> Run {
    Run::failover(topology)
        .yes()
        .from("EdgePool1")
        .to("EdgePool2")
        .only(&LYNC_STEPS)
}

/// The estate over `sshd`, written into its directory.
fn over_ssh(estate: &Estate, sshd: &Sshd) -> PathBuf {
    Topology::estate_ssh(estate, &sshd.endpoints()).write(estate.dir.path())
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
    let topology = over_ssh(&estate, &sshd);
    let tmp = tempfile::tempdir().expect("temp dir");

    let out = failover(&topology)
        .parallel(3)
        .env("TMPDIR", tmp.path())
        .run()
        .code(0);
    crate::harness::assert_lync_steps_verified(&out);

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

#[test]
fn a_failing_server_is_named_and_a_hanging_one_hits_its_timeout_over_ssh() {
    let sshd = Sshd::start(5);

    let estate = Estate::new(2);
    estate.fault(
        "EdgeServer2b.contoso.com",
        "Stop-CsWindowsService",
        "fail",
        "Cannot stop service 'RTCSRV' on computer '.'.",
    );
    let topology = over_ssh(&estate, &sshd);
    let out = failover(&topology).parallel(3).run().code(1);
    // The others finished their stop; nothing later ran.
    estate.assert_stop_failed_on(
        &out,
        "EdgeServer2b.contoso.com",
        "Cannot stop service 'RTCSRV' on computer '.'.",
    );

    let estate = Estate::new(1);
    estate.fault(
        "EdgeServer2b.contoso.com",
        "Start-CsWindowsService",
        "hang",
        "",
    );
    let topology = over_ssh(&estate, &sshd);
    let started = std::time::Instant::now();
    // 4 s: every command of the run (ssh connects, session start-ups) has
    // this timeout, and a loaded CI machine must not make those time out.
    let out = failover(&topology)
        .command_timeout(4)
        .verify_timeout(8)
        .run()
        .code(1);
    estate.assert_start_timed_out(&out, "EdgeServer2b.contoso.com", 4);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the hung command held edgefail for {:?}",
        started.elapsed()
    );
    // The connection carrying the hung command is closed too.
    sshd.wait_all_closed(Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("an ssh connection outlived edgefail: {e}"));
}

/// One refused connection to EdgeServer2: edgefail stops before changing
/// anything and says why.
#[track_caller]
fn refused(estate: &Estate, topology: &Path, expect: &str) -> String {
    let out = failover(topology).run();
    assert_ne!(out.code, 0, "{}", out.stdout);
    assert!(
        out.stdout.contains(expect),
        "expected {expect:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.stdout,
        out.stderr
    );
    assert!(estate.writes().is_empty(), "changed: {:?}", estate.writes());
    out.stdout
}

#[test]
fn unknown_and_changed_host_keys_failed_logins_and_closed_ports_are_refused_and_named() {
    let estate = Estate::new(0);
    let sshd = Sshd::start(estate.machines().len());
    let port = sshd.ports[2];
    assert_eq!(estate.machines()[2], "EdgeServer2.contoso.com");
    let edge2 = |edit: &dyn Fn(&mut Ssh)| {
        let mut t = Topology::estate_ssh(&estate, &sshd.endpoints());
        edit(t.server_mut("EdgeServer2.contoso.com").transport.ssh_mut());
        t.write(estate.dir.path())
    };

    // Unknown key: an empty known_hosts, which must stay empty.
    let empty = sshd.known_hosts_with("empty_known_hosts", "");
    let topology = edge2(&|t| t.known_hosts = empty.clone());
    refused(
        &estate,
        &topology,
        &format!(
            "EdgeServer2.contoso.com: Get-CsWindowsService: ssh: host key verification failed for 127.0.0.1:{port} (known_hosts {}): the server's key is unknown",
            empty.display()
        ),
    );
    assert_eq!(
        std::fs::read_to_string(&empty).unwrap(),
        "",
        "the key was added"
    );

    // Changed key: known_hosts records another key for this server.
    let changed = sshd.changed_known_hosts();
    let before = std::fs::read_to_string(&changed).unwrap();
    let topology = edge2(&|t| t.known_hosts = changed.clone());
    let stdout = refused(
        &estate,
        &topology,
        &format!(
            "EdgeServer2.contoso.com: Get-CsWindowsService: ssh: host key verification failed for 127.0.0.1:{port} (known_hosts {}): the server's key has CHANGED",
            changed.display()
        ),
    );
    assert!(stdout.contains("update known_hosts"), "{stdout}");
    assert_eq!(std::fs::read_to_string(&changed).unwrap(), before);

    // Even trust-on-first-use refuses a changed key.
    let topology = edge2(&|t| {
        t.known_hosts = changed.clone();
        t.accept_new_host_keys = Some(true);
    });
    refused(&estate, &topology, "the server's key has CHANGED");
    assert_eq!(std::fs::read_to_string(&changed).unwrap(), before);

    // Authentication: a key the server does not know.
    let topology = edge2(&|t| t.identity_file = sshd.stranger_key.clone());
    let stdout = refused(
        &estate,
        &topology,
        &format!(
            "EdgeServer2.contoso.com: Get-CsWindowsService: ssh: authentication failed for {}@127.0.0.1:{port} (identity {}): ",
            sshd.user,
            sshd.stranger_key.display()
        ),
    );
    assert!(stdout.contains("Permission denied (publickey)"), "{stdout}");
    // The key's contents never show.
    let secret = std::fs::read_to_string(&sshd.stranger_key).unwrap();
    let body = secret.lines().nth(1).unwrap();
    assert!(!stdout.contains(body));

    // Unreachable: nothing listens on that port.
    let closed = free_port();
    let topology = edge2(&|t| t.port = closed);
    refused(
        &estate,
        &topology,
        &format!(
            "EdgeServer2.contoso.com: Get-CsWindowsService: ssh: cannot reach 127.0.0.1:{closed}: connect to host 127.0.0.1 port {closed}: Connection refused"
        ),
    );
    assert!(
        !estate
            .log()
            .iter()
            .any(|(h, _)| h == "EdgeServer2.contoso.com"),
        "a refused connection still ran a command: {:?}",
        estate.log()
    );
}

#[test]
fn both_route_parameter_spellings_and_replication_lag_over_ssh() {
    let sshd = Sshd::start(4);

    let estate = Estate::new(0);
    let topology = over_ssh(&estate, &sshd);
    let out = failover(&topology).run().code(0);
    assert!(
        out.stdout
            .contains("-XmppExternalFederationRoute EdgeServer2.contoso.com"),
        "{}",
        out.stdout
    );
    assert_eq!(
        estate.read()["sites"]["Site2"]["route"],
        "EdgeServer2.contoso.com"
    );

    let estate = Estate::new(0);
    estate.edit(|v| v["set_cssite_parameter"] = serde_json::json!("XmppFederationRoute"));
    let topology = over_ssh(&estate, &sshd);
    let out = failover(&topology).run().code(0);
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

    let estate = Estate::new(0);
    estate.edit(|v| v["replication_lag_reads"] = serde_json::json!(3));
    let topology = over_ssh(&estate, &sshd);
    let out = failover(&topology).run().code(0);
    assert!(
        out.stdout.contains("all 2 CMS replica(s) up to date"),
        "{}",
        out.stdout
    );
    assert!(estate.count("Get-CsManagementStoreReplicationStatus") >= 3);
}

/// The management shell over ssh as the library builds it, for calls that
/// the command line cannot make (names no topology would accept).
fn management_over(sshd: &Sshd, estate: &Estate) -> edgefail::lync::Machine {
    let spec = edgefail::topology::SshSpec {
        host: "127.0.0.1".into(),
        port: Some(sshd.ports[0]),
        user: Some(sshd.user.clone()),
        identity_file: Some(sshd.client_key.clone()),
        known_hosts: Some(sshd.known_hosts.clone()),
        remote_program: Some(format!(
            "{} --state {} --host fe1.contoso.com",
            crate::harness::standin::standin_bin().display(),
            estate.state.display()
        )),
        ..Default::default()
    };
    edgefail::lync::Machine::new(
        "fe1.contoso.com",
        &edgefail::topology::TransportSpec::Ssh(spec),
    )
}

#[test]
fn hostile_names_cross_ssh_as_one_literal() {
    let estate = Estate::new(0);
    let sshd = Sshd::start(1);
    let timeout = Duration::from_secs(20);
    let hostile = [
        "Site2'; Remove-Item C:\\ -Recurse; '",
        "Site2\"; $(Remove-Item C:\\); \"",
        "a`b$c|d&e;f<g>h^i %PATH% !x! (y)",
        "Site\u{2019}2 \u{2018}curly\u{2019} \u{201A}quotes\u{201B}",
        "\u{00e9}t\u{00e9} \u{4e2d}\u{6587} \u{1f600}",
    ];
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    runtime.block_on(async {
        let shell = management_over(&sshd, &estate);

        // The stand-in names the site it was asked for: the whole string,
        // one literal, nothing run.
        let missing = hostile[0];
        let out = shell
            .run(&edgefail::powershell::site_read(None, missing), timeout)
            .await
            .expect_err("no such site");
        assert_eq!(
            out.to_string(),
            format!("fe1.contoso.com: Get-CsSite failed: Cannot find site \"{missing}\".")
        );

        // Sites with those names exist: each is found, and a route set with
        // a hostile value comes back byte for byte.
        estate.edit(|v| {
            for name in hostile {
                v["sites"][name] =
                    serde_json::json!({"identity": format!("Site:{name}"), "route": "x"});
            }
        });
        for name in hostile {
            let site = shell.site(name, timeout).await.expect("read the site");
            assert_eq!(site["Identity"], format!("Site:{name}"));
            let value = format!("{name}.route");
            shell
                .set_route(
                    name,
                    edgefail::topology::RouteParameter::XmppExternalFederationRoute,
                    &value,
                    timeout,
                )
                .await
                .expect("set the route");
            assert_eq!(estate.read()["sites"][name]["route"], value.as_str());
        }
        assert_eq!(estate.count("Set-CsSite"), hostile.len());
    });
}

#[test]
fn ssh_transport_settings_are_validated_where_they_are_written() {
    let estate = Estate::new(0);
    // No sshd needed: validate never connects.
    let nowhere = SshEndpoints {
        ports: vec![1, 2, 3],
        user: "root".into(),
        identity_file: "/keys/id_ed25519".into(),
        known_hosts: "/keys/known_hosts".into(),
    };
    let mut fake = Topology::estate_ssh(&estate, &nowhere);
    let edge2 = fake
        .server_mut("EdgeServer2.contoso.com")
        .transport
        .ssh_mut();
    edge2.known_hosts = "".into();
    edge2.control_persist_secs = Some(100000);
    edge2.connect_timeout_secs = Some(0);
    edge2.ssh_program = Some(String::new());
    fake.server_mut("EdgeServer1.contoso.com")
        .transport
        .ssh_mut()
        .connect_timeout_secs = Some(86_401);
    let out = Run::validate(&fake.write(estate.dir.path())).run().code(2);
    for want in [
        "sites[1].pools[0].servers[0].transport.known_hosts: the path must be non-empty, without line breaks or NUL",
        "sites[0].pools[0].servers[0].transport.connect_timeout_secs: at most 86400",
        "sites[1].pools[0].servers[0].transport.control_persist_secs: at most 86400",
        "sites[1].pools[0].servers[0].transport.connect_timeout_secs: must be greater than 0",
        "sites[1].pools[0].servers[0].transport.ssh_program: the ssh client must be a non-empty path",
    ] {
        assert!(out.stderr.contains(want), "lacks {want:?}:\n{}", out.stderr);
    }

    let mut tofu = Topology::estate_ssh(&estate, &nowhere);
    let shell = tofu.management.transport.ssh_mut();
    shell.accept_new_host_keys = Some(true);
    shell.control_persist_secs = Some(0);
    Run::validate(&tofu.write(estate.dir.path()))
        .run()
        .code(0)
        .stderr_has(
            "management.transport.accept_new_host_keys: 127.0.0.1 will be trusted on first contact",
        );
}

/// The fault matrix over real ssh: a start fails on one of three Edge
/// servers, the run stops; `--resume` over ssh finishes it, starting only
/// the server that needs it.
#[test]
fn a_failed_start_over_ssh_is_resumed_over_ssh() {
    let estate = Estate::new(2);
    estate.add_fault(serde_json::json!({
        "host": "EdgeServer2c.contoso.com",
        "cmdlet": "Start-CsWindowsService",
        "action": "fail",
        "message": "Service RTCSRV failed to start.",
        "times": 1,
    }));
    let sshd = Sshd::start(estate.machines().len());
    let topology = over_ssh(&estate, &sshd);
    let journal = estate.path("journal.jsonl");
    let out = failover(&topology).journal(&journal).run().code(1);
    assert!(
        out.stdout
            .contains("EdgeServer2c.contoso.com: Start-CsWindowsService failed: Service RTCSRV failed to start."),
        "{}",
        out.stdout
    );

    let resumed = Run::failover(&topology)
        .resume()
        .yes()
        .journal(&journal)
        .run()
        .code(0);
    assert!(
        resumed.stdout.contains("its apply failed"),
        "{}",
        resumed.stdout
    );
    assert!(
        resumed.stdout.contains("Failover complete"),
        "{}",
        resumed.stdout
    );
    estate.assert_failed_over();
    // Stopped once each; started once each, plus the one that failed.
    assert_eq!(estate.count("Stop-CsWindowsService"), 3);
    assert_eq!(estate.count("Set-CsSite"), 1);
    assert_eq!(estate.count("Start-CsWindowsService"), 4);
}

/// Key and known_hosts paths with spaces, quotes, a backslash, `%` and `#`
/// reach OpenSSH as written: the login works and the key is checked.
#[test]
fn paths_with_quotes_spaces_and_backslashes_reach_openssh_as_written() {
    use std::os::unix::fs::PermissionsExt;
    let estate = Estate::new(0);
    let sshd = Sshd::start(estate.machines().len());
    let odd = estate.path("we\"ird 'dir\\ %h #1");
    std::fs::create_dir(&odd).expect("make the odd directory");
    let key = odd.join("id key");
    std::fs::copy(&sshd.client_key, &key).expect("copy the key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let known = odd.join("known \"hosts\"");
    std::fs::copy(&sshd.known_hosts, &known).expect("copy known_hosts");
    let mut t = Topology::estate_ssh(&estate, &sshd.endpoints());
    let edge2 = t.server_mut("EdgeServer2.contoso.com").transport.ssh_mut();
    edge2.identity_file = key.clone();
    edge2.known_hosts = known.clone();
    let topology = t.write(estate.dir.path());
    Run::validate(&topology).run().code(0);
    let out = failover(&topology).run().code(0);
    crate::harness::assert_lync_steps_verified(&out);
    estate.assert_failed_over();

    // The same known_hosts without this server's key: refused, naming the
    // file as written.
    std::fs::write(&known, "").expect("empty known_hosts");
    let estate2 = Estate::new(0);
    let mut t = Topology::estate_ssh(&estate2, &sshd.endpoints());
    let edge2 = t.server_mut("EdgeServer2.contoso.com").transport.ssh_mut();
    edge2.identity_file = key;
    edge2.known_hosts = known.clone();
    let out = failover(&t.write(estate2.dir.path())).run();
    assert_ne!(out.code, 0);
    assert!(
        out.stdout.contains(&format!(
            "(known_hosts {}): the server's key is unknown",
            known.display()
        )),
        "{}",
        out.stdout
    );
    assert_eq!(
        std::fs::read_to_string(&known).unwrap(),
        "",
        "the key was added"
    );
}
