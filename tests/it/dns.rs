//! Steps 4 and 5 (dns.a, dns.srv) against a real BIND primary and
//! secondary: through the edgefail binary, and at library level where a
//! test must act between check and apply.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use edgefail::event::Outcome;
use edgefail::steps::StepId;

use crate::harness::bind::{A_NAME, Bind, Key, POOL1_IP, POOL2_IP, SRV_NAME, ZONE, published};
use crate::harness::net::{free_port, listen};
use crate::harness::topology::{Dns, Tsig};
use crate::harness::{Events, Run};

/// Every step but the two DNS ones needs Lync; leave them out.
const DNS_STEPS: [StepId; 2] = [StepId::DnsA, StepId::DnsSrv];

/// EdgePool1 -> EdgePool2, the DNS steps only.
fn failover(topology: &Path) -> Run {
    Run::failover(topology)
        .from("EdgePool1")
        .to("EdgePool2")
        .only(&DNS_STEPS)
}

fn plan(topology: &Path) -> Run {
    Run::plan(topology)
        .from("EdgePool1")
        .to("EdgePool2")
        .only(&DNS_STEPS)
}

const SRV_BEFORE: &str = "10 0 5269 edgepool1-xmpp.contoso.com.";

#[test]
fn failover_swaps_a_and_srv_and_verify_sees_the_secondary_catch_up() {
    let bind = Bind::start();
    let dir = tempfile::tempdir().unwrap();
    let topo = bind.topology(dir.path()).write(dir.path());
    let before = bind.serial(bind.primary.port);

    let out = failover(&topo)
        .yes()
        .verbose(2)
        .run()
        .code(0)
        .stdout_has("dns.a            verify verified")
        .stdout_has("dns.srv          verify verified")
        .stdout_has("a lower number is preferred")
        .stdout_has("priorities swapped")
        .stdout_has(&format!(
            "{}: serial 2, xmpp.contoso.com A 203.0.113.20 (EdgePool2): caught up after",
            bind.secondary.addr()
        ))
        .stdout_has("gone from every cache by");
    for text in [&out.stdout, &out.stderr] {
        assert!(
            !text.contains(&bind.key.secret),
            "the TSIG secret leaked:\n{text}"
        );
    }

    let want_srv = vec![
        "10 0 5269 edgepool2-xmpp.contoso.com.".to_string(),
        "20 0 5269 edgepool1-xmpp.contoso.com.".to_string(),
    ];
    for port in [bind.primary.port, bind.secondary.port] {
        let (serial, a, srv) = bind.state(port);
        assert_eq!(a, vec![POOL2_IP.to_string()], "A on port {port}");
        assert_eq!(srv, want_srv, "SRV on port {port}");
        // One update per step: two serial bumps.
        assert_eq!(serial, before + 2, "serial on port {port}");
    }

    // A second run finds both steps done and changes nothing.
    failover(&topo)
        .yes()
        .run()
        .code(0)
        .stdout_has("dns.a            check  already done")
        .stdout_has("dns.srv          check  already done");
    assert_eq!(bind.serial(bind.primary.port), before + 2);
}

#[test]
fn failback_restores_the_original_records() {
    let bind = Bind::start();
    let dir = tempfile::tempdir().unwrap();
    let topo = bind.topology(dir.path()).write(dir.path());
    failover(&topo).yes().run().code(0);
    Run::failover(&topo)
        .yes()
        .from("EdgePool2")
        .to("EdgePool1")
        .only(&DNS_STEPS)
        .run()
        .code(0);
    for port in [bind.primary.port, bind.secondary.port] {
        let (_, a, srv) = bind.state(port);
        assert_eq!(a, vec![POOL1_IP.to_string()]);
        assert_eq!(
            srv,
            vec![
                SRV_BEFORE.to_string(),
                "20 0 5269 edgepool2-xmpp.contoso.com.".to_string()
            ]
        );
    }
}

#[test]
fn dry_run_and_plan_leave_the_zone_untouched() {
    let bind = Bind::start();
    let dir = tempfile::tempdir().unwrap();
    let topo = bind.topology(dir.path()).write(dir.path());
    let before = (
        bind.state(bind.primary.port),
        bind.state(bind.secondary.port),
    );

    plan(&topo)
        .run()
        .code(4)
        .stdout_has("dns.a            check  would change")
        .stdout_has("- 203.0.113.10 (EdgePool1) [TTL 300]")
        .stdout_has("+ 203.0.113.20 (EdgePool2) [TTL 120]")
        .stdout_has("dns.srv          check  would change");
    failover(&topo).dry_run().run().code(4);

    let after = (
        bind.state(bind.primary.port),
        bind.state(bind.secondary.port),
    );
    assert_eq!(before, after);
}

#[test]
fn wrong_secret_is_reported_as_badsig() {
    let bind = Bind::start();
    let dir = tempfile::tempdir().unwrap();
    let wrong = Key::generate(&bind.key.name, "hmac-sha256");
    let topo = bind
        .topology(dir.path())
        .tsig(Tsig::file(&wrong, &dir.path().join("edgefail-test.key")))
        .write(dir.path());
    let out = failover(&topo)
        .yes()
        .verbose(2)
        .run()
        .code(1)
        .stdout_has("the server rejected the TSIG key \"edgefail-test\" (BADSIG)")
        .stdout_has("check the secret");
    assert!(!out.stdout.contains("truncated"), "{}", out.stdout);
    for text in [&out.stdout, &out.stderr] {
        assert!(!text.contains(&wrong.secret), "the secret leaked:\n{text}");
    }
    assert_eq!(bind.dig(bind.primary.port, A_NAME, "A"), vec![POOL1_IP]);
}

#[test]
fn unknown_key_is_reported_as_badkey() {
    let bind = Bind::start();
    let dir = tempfile::tempdir().unwrap();
    let stranger = Key::generate("nosuchkey", "hmac-sha256");
    let topo = bind
        .topology(dir.path())
        .tsig(Tsig::file(&stranger, &dir.path().join("nosuchkey.key")))
        .write(dir.path());
    failover(&topo)
        .yes()
        .run()
        .code(1)
        .stdout_has("the server rejected the TSIG key \"nosuchkey\" (BADKEY)")
        .stdout_has("check dns.tsig.name");
    assert_eq!(bind.dig(bind.primary.port, A_NAME, "A"), vec![POOL1_IP]);
}

#[test]
fn a_key_without_update_rights_is_refused() {
    let bind = Bind::start();
    let dir = tempfile::tempdir().unwrap();
    let topo = bind
        .topology(dir.path())
        .tsig(Tsig::file(
            &bind.other_key,
            &dir.path().join("not-allowed.key"),
        ))
        .write(dir.path());
    failover(&topo)
        .yes()
        .run()
        .code(1)
        .stdout_has(&format!(
            "update zone contoso.com. on {}: the server refused the update (REFUSED)",
            bind.primary.addr()
        ))
        .stdout_has("allow-update");
}

#[test]
fn a_zone_the_servers_do_not_serve_is_named() {
    let bind = Bind::start();
    let dir = tempfile::tempdir().unwrap();
    let topo = published("fabrikam.com")
        .dns(bind.dns(dir.path()))
        .write(dir.path());
    plan(&topo)
        .run()
        .code(1)
        .stdout_has(&format!(
            "read fabrikam.com. SOA on {}: the server refused the query (REFUSED)",
            bind.primary.addr()
        ))
        .stdout_has("check dns.authoritative, dns.zone");
}

/// A topology whose only DNS server (primary and authoritative) is
/// 127.0.0.1:`port`, with a fresh key and the given timeout.
fn lone_server_topology(dir: &Path, port: u16, timeout_secs: u64) -> PathBuf {
    let key = Key::generate("edgefail-test", "hmac-sha256");
    let server = format!("127.0.0.1:{port}");
    published(ZONE)
        .rfc2136(&server, &[&server])
        .tsig(Tsig::file(&key, &dir.join("k.key")))
        .dns_timeout(timeout_secs)
        .write(dir)
}

#[test]
fn primary_down_is_connection_refused() {
    // A port that was free a moment ago, with nothing listening.
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let topo = lone_server_topology(dir.path(), port, 2);
    failover(&topo).yes().run().code(1).stdout_has(&format!(
        "connect to DNS server 127.0.0.1:{port}: connection refused"
    ));
}

#[test]
fn a_hung_server_hits_the_explicit_timeout() {
    let (listener, port) = listen(Ipv4Addr::LOCALHOST);
    // Accept and hold every connection; never answer.
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            held.push(stream);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let topo = lone_server_topology(dir.path(), port, 1);
    let started = Instant::now();
    plan(&topo)
        .run()
        .code(1)
        .stdout_has(&format!(
            "read contoso.com. SOA on 127.0.0.1:{port}: the server took the connection but sent no answer within 1s (dns.timeout_secs)"
        ));
    // The message proves the 1 s timeout fired; this only guards against a
    // hang (without it a silent server would hold the run for minutes),
    // with room for a loaded machine.
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn manual_mode_prints_the_change_and_needs_a_terminal() {
    let bind = Bind::start();
    let dir = tempfile::tempdir().unwrap();
    let topo = bind.topology(dir.path()).manual_dns().write(dir.path());
    // Nobody can type `done` here: refused before anything is contacted,
    // rather than failing at step 4 after steps 2 and 3 changed things.
    failover(&topo)
        .yes()
        .run()
        .code(2)
        .stderr_has("dns.mode is manual")
        .stderr_has("no terminal");
    assert_eq!(bind.dig(bind.primary.port, A_NAME, "A"), vec![POOL1_IP]);
    assert_eq!(
        bind.dig(bind.primary.port, SRV_NAME, "SRV"),
        vec![SRV_BEFORE]
    );
}

// ---- library level: where the test acts between the phases ----

use edgefail::dns::{Authority, DnsError, Primary, Signer, Update};
use edgefail::secret::{Secret, TsigKey};
use edgefail::steps::{CheckState, DnsA, DnsSrv, Step};
use edgefail::steps::{Ctx, RunOptions};

fn ctx(topology: &Path) -> Ctx {
    let loaded = edgefail::topology::load(topology).expect("valid topology");
    let opts = RunOptions {
        parallel: 1,
        graceful: false,
        command_timeout: Duration::from_secs(5),
        verify_timeout: Duration::from_secs(10),
        poll: Duration::from_millis(50),
    };
    Ctx::new(loaded.topology, "EdgePool1", "EdgePool2", opts).expect("pools")
}

fn tsig_key(key: &Key) -> TsigKey {
    use base64::Engine as _;
    TsigKey {
        name: key.name.clone(),
        algorithm: key.algorithm.clone(),
        secret: Secret::new(
            base64::engine::general_purpose::STANDARD
                .decode(&key.secret)
                .unwrap(),
        ),
    }
}

fn primary(bind: &Bind, key: &Key) -> Primary {
    Primary::new(
        bind.primary.addr().parse().unwrap(),
        Duration::from_secs(2),
        Signer::new(&tsig_key(key)).unwrap(),
    )
}

#[tokio::test]
async fn a_change_between_check_and_apply_stops_the_swap() {
    let bind = Bind::start();
    let dir = tempfile::tempdir().unwrap();
    let ctx = ctx(&bind.topology(dir.path()).write(dir.path()));

    let check = DnsA.check(&ctx, &[]).await;
    assert_eq!(check.state, CheckState::WouldChange, "{}", check.summary);
    // Someone else moves the record meanwhile.
    bind.nsupdate(
        "update delete xmpp.contoso.com A\nupdate add xmpp.contoso.com 300 A 198.51.100.7",
    );
    let failure = DnsA
        .apply(&ctx, check.plan.as_ref().expect("a plan"))
        .await
        .unwrap_err();
    assert!(
        failure.summary.starts_with(
            "xmpp.contoso.com A changed since the check: expected 203.0.113.10 (EdgePool1), found 198.51.100.7"
        ),
        "{}",
        failure.summary
    );
    // Nothing of ours was applied: the other change stands.
    assert_eq!(
        bind.dig(bind.primary.port, A_NAME, "A"),
        vec!["198.51.100.7"]
    );

    // The same for the SRV rrset.
    let check = DnsSrv.check(&ctx, &[]).await;
    assert_eq!(check.state, CheckState::WouldChange, "{}", check.summary);
    bind.nsupdate("update add _xmpp-server._tcp.contoso.com 300 SRV 5 0 5269 rogue.contoso.com.");
    let failure = DnsSrv
        .apply(&ctx, check.plan.as_ref().expect("a plan"))
        .await
        .unwrap_err();
    assert!(
        failure.summary.contains(
            "_xmpp-server._tcp.contoso.com SRV changed since the check: expected 10 0 5269 edgepool1-xmpp.contoso.com. (EdgePool1), found 5 0 5269 rogue.contoso.com., 10 0 5269"
        ),
        "{}",
        failure.summary
    );
}

#[tokio::test]
async fn manual_mode_verify_polls_every_server() {
    let bind = Bind::start();
    let dir = tempfile::tempdir().unwrap();
    let ctx = ctx(&bind.topology(dir.path()).manual_dns().write(dir.path()));
    let check = DnsA.check(&ctx, &[]).await;
    assert_eq!(check.state, CheckState::WouldChange, "{}", check.summary);
    // The operator makes the change by hand.
    bind.nsupdate(
        "update delete xmpp.contoso.com A\nupdate add xmpp.contoso.com 120 A 203.0.113.20",
    );
    let verified = DnsA
        .verify(&ctx, check.plan.as_ref().expect("a plan"))
        .await;
    assert!(verified.holds, "{verified:?}");
    assert!(
        verified.summary.contains("gone from every cache by"),
        "{}",
        verified.summary
    );
    assert!(
        verified.details.iter().any(|d| d
            .starts_with(&format!("{}: serial 2", bind.secondary.addr()))
            && d.contains("caught up after")),
        "{:?}",
        verified.details
    );
}

#[tokio::test]
async fn an_update_for_a_zone_not_served_is_notauth() {
    let bind = Bind::start();
    let zone = edgefail::dns::fqdn("fabrikam.com").unwrap();
    let name = edgefail::dns::fqdn("xmpp.fabrikam.com").unwrap();
    let mut update = Update::new(&zone);
    update.add(&name, 60, edgefail::dns::Data::A(POOL2_IP.parse().unwrap()));
    let err = primary(&bind, &bind.key).update(&update).await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("the server is not authoritative for fabrikam.com. (NOTAUTH)")
            && text.contains(&bind.primary.addr()),
        "{text}"
    );

    // A name outside the zone it is sent for: NOTZONE.
    let contoso = edgefail::dns::fqdn("contoso.com").unwrap();
    let mut update = Update::new(&contoso);
    update.add(&name, 60, edgefail::dns::Data::A(POOL2_IP.parse().unwrap()));
    let text = primary(&bind, &bind.key)
        .update(&update)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        text.contains("a name in the update is outside zone contoso.com. (NOTZONE)"),
        "{text}"
    );
}

#[tokio::test]
async fn a_skewed_clock_is_reported_as_badtime() {
    let bind = Bind::start();
    let zone = edgefail::dns::fqdn("contoso.com").unwrap();
    let name = edgefail::dns::fqdn(A_NAME).unwrap();
    let mut update = Update::new(&zone);
    update.add(&name, 60, edgefail::dns::Data::A(POOL2_IP.parse().unwrap()));
    let late = Primary::new(
        bind.primary.addr().parse().unwrap(),
        Duration::from_secs(2),
        Signer::new(&tsig_key(&bind.key))
            .unwrap()
            .with_clock_offset(-3600),
    );
    let err = late.update(&update).await.unwrap_err();
    assert!(matches!(err, DnsError::Tsig { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("(BADTIME)") && text.contains("check the clock"),
        "{text}"
    );
    assert_eq!(bind.dig(bind.primary.port, A_NAME, "A"), vec![POOL1_IP]);
}

#[tokio::test]
async fn hmac_sha512_keys_work() {
    let bind = Bind::start_with("hmac-sha512");
    let zone = edgefail::dns::fqdn("contoso.com").unwrap();
    let name = edgefail::dns::fqdn(A_NAME).unwrap();
    let mut update = Update::new(&zone);
    update
        .require_a(&name, &[POOL1_IP.parse().unwrap()])
        .delete_rrset(&name, hickory_proto::rr::RecordType::A)
        .add(&name, 60, edgefail::dns::Data::A(POOL2_IP.parse().unwrap()));
    primary(&bind, &bind.key).update(&update).await.unwrap();
    let a = Authority::new(bind.primary.addr().parse().unwrap(), Duration::from_secs(2))
        .read_a(&name)
        .await
        .unwrap();
    assert_eq!(
        a.records,
        vec![POOL2_IP.parse::<std::net::Ipv4Addr>().unwrap()]
    );
}

#[test]
fn servers_that_disagree_are_reported_and_verify_waits_for_them() {
    let bind = Bind::start();
    let rogue = bind.start_rogue(7, "198.51.100.7");
    let dir = tempfile::tempdir().unwrap();
    let mut topo = bind.topology(dir.path());
    topo.dns.authoritative.push(rogue.addr());
    let topo = topo.write(dir.path());
    plan(&topo)
        .run()
        .code(4)
        .stdout_has(&format!(
            "the servers disagree: {} has serial 1 and xmpp.contoso.com A 203.0.113.10 (EdgePool1) [TTL 300], {} has serial 7 and xmpp.contoso.com A 198.51.100.7 [TTL 300]",
            bind.primary.addr(),
            rogue.addr()
        ));
    // The primary takes the change, the rogue never does: verify gives up
    // at its deadline and names the server it waited for.
    failover(&topo)
        .yes()
        .verify_timeout(1)
        .run()
        .code(3)
        .stdout_has("dns.a            verify verify failed")
        .stdout_has(&format!(
            "waiting for {} (serial 7, still 198.51.100.7)",
            rogue.addr()
        ));
}

#[test]
fn a_missing_a_record_is_created_with_an_absent_prerequisite() {
    let bind = Bind::start();
    bind.nsupdate("update delete xmpp.contoso.com A");
    let dir = tempfile::tempdir().unwrap();
    // This time the secret comes from the environment.
    let topo = bind
        .topology(dir.path())
        .tsig(Tsig::env(&bind.key, "EDGEFAIL_TEST_TSIG"))
        .write(dir.path());
    let out = failover(&topo)
        .yes()
        .verbose(2)
        .env("EDGEFAIL_TEST_TSIG", &bind.key.secret)
        .run()
        .code(0)
        .stdout_has("- no A record")
        .stdout_has("prereq nxrrset xmpp.contoso.com. IN A");
    assert!(!out.stdout.contains(&bind.key.secret));
    assert!(!out.stderr.contains(&bind.key.secret));
    bind.wait_in_sync();
    assert_eq!(bind.dig(bind.secondary.port, A_NAME, "A"), vec![POOL2_IP]);
}

#[test]
fn plan_json_lists_each_change_old_and_new() {
    let bind = Bind::start();
    let dir = tempfile::tempdir().unwrap();
    let topo = bind.topology(dir.path()).write(dir.path());
    let out = plan(&topo).json().run().code(4);
    let events = out.events();
    let a = events.first_finished(StepId::DnsA);
    assert_eq!(a.outcome, Outcome::WouldChange);
    assert_eq!(a.changes[0].what, "xmpp.contoso.com A");
    assert_eq!(a.changes[0].old, "203.0.113.10 (EdgePool1) [TTL 300]");
    assert_eq!(a.changes[0].new, "203.0.113.20 (EdgePool2) [TTL 120]");
    let srv = events.first_finished(StepId::DnsSrv);
    assert_eq!(srv.changes.len(), 2);
    assert!(srv.summary.contains("a lower number is preferred"));
}

/// Manual mode end to end, on a terminal (a pty from `script`): edgefail
/// prints each change and waits; the "operator" makes it with nsupdate and
/// types done; verify then finds it on both servers.
#[test]
fn manual_mode_on_a_terminal_waits_for_done_then_verifies() {
    let bind = Bind::start();
    let dir = tempfile::tempdir().unwrap();
    let topo = bind.topology(dir.path()).manual_dns().write(dir.path());
    let mut pty = failover(&topo).yes().on_terminal();

    pty.wait_for("Type 'done'", 1);
    assert!(
        pty.seen
            .contains("update add xmpp.contoso.com. 120 IN A 203.0.113.20"),
        "{}",
        pty.seen
    );
    bind.nsupdate(
        "update delete xmpp.contoso.com A\nupdate add xmpp.contoso.com 120 A 203.0.113.20",
    );
    pty.type_line("done");

    pty.wait_for("Type 'done'", 2);
    bind.nsupdate(
        "update delete _xmpp-server._tcp.contoso.com SRV 10 0 5269 edgepool1-xmpp.contoso.com.\n\
         update add _xmpp-server._tcp.contoso.com 120 SRV 10 0 5269 edgepool2-xmpp.contoso.com.\n\
         update add _xmpp-server._tcp.contoso.com 120 SRV 20 0 5269 edgepool1-xmpp.contoso.com.",
    );
    pty.type_line("done");

    pty.wait_for("Failover complete", 1);
    let (status, seen) = pty.finish();
    assert!(status.success(), "{status}\n{seen}");
    assert!(seen.contains("dns.a            verify verified"), "{seen}");
    assert!(seen.contains("dns.srv          verify verified"), "{seen}");
}

/// A server that answers every TCP query with a bare SERVFAIL header.
fn servfail_server() -> u16 {
    use std::io::{Read, Write};
    let (listener, port) = listen(Ipv4Addr::LOCALHOST);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                loop {
                    let mut len = [0u8; 2];
                    if stream.read_exact(&mut len).is_err() {
                        return;
                    }
                    let mut request = vec![0u8; usize::from(u16::from_be_bytes(len))];
                    if stream.read_exact(&mut request).is_err() || request.len() < 12 {
                        return;
                    }
                    // Same id and opcode; QR and AA set; rcode 2; no sections.
                    let mut answer = request[..12].to_vec();
                    answer[2] = (answer[2] & 0x78) | 0x84;
                    answer[3] = 0x02;
                    answer[4..12].fill(0);
                    let mut framed = 12u16.to_be_bytes().to_vec();
                    framed.extend(answer);
                    if stream.write_all(&framed).is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

#[test]
fn servfail_names_the_server_and_what_to_check() {
    let port = servfail_server();
    let dir = tempfile::tempdir().unwrap();
    let server = format!("127.0.0.1:{port}");
    let topo = published(ZONE)
        .dns(Dns {
            mode: Some("manual"),
            primary: Some(server.clone()),
            authoritative: vec![server],
            tsig: None,
            timeout_secs: Some(2),
        })
        .write(dir.path());
    plan(&topo)
        .run()
        .code(1)
        .stdout_has(&format!(
            "read contoso.com. SOA on 127.0.0.1:{port}: the server failed to answer (SERVFAIL)"
        ))
        .stdout_has("check its log");
}
