//! The whole runbook with nothing skipped: the PowerShell stand-in plays the
//! management shell and the Edge server, a real BIND primary and secondary
//! carry the zone, and a real Prosody is what partners reach once the
//! target pool is live.

use crate::harness::Run;
use crate::harness::bind::{A_NAME, Bind, SRV_NAME, Topo};
use crate::harness::prosody::Prosody;
use crate::harness::standin::Estate;

/// The stand-in estate's topology, with BIND's DNS section, Prosody's port,
/// and the target Edge server published where Prosody listens.
fn topology(estate: &Estate, bind: &Bind, prosody: &Prosody) -> std::path::PathBuf {
    let dns = Topo::for_bind(bind, estate.dir.path()).yaml();
    let start = dns.find("dns:\n").expect("dns section");
    let end = dns.find("management:\n").expect("management section");
    let dns = dns[start..end].to_string();
    estate.topology_with(|t| {
        let cut = t.find("dns:\n").expect("dns");
        let resume = t.find("management:\n").expect("management");
        let t = format!("{}{}{}", &t[..cut], dns, &t[resume..]);
        t.replace(
            "  port: 5269\n",
            &format!(
                "  port: {}\n  accept_untrusted_cert: true\n",
                prosody.addr.port()
            ),
        )
        .replace("external_ipv4: 127.0.0.20", "external_ipv4: 127.0.0.1")
        .replace(
            "srv_priority: 10\n",
            "srv_priority: 10\n        srv_target: edgepool1-xmpp.contoso.com\n",
        )
        .replace(
            "srv_priority: 20\n",
            "srv_priority: 20\n        srv_target: edgepool2-xmpp.contoso.com\n",
        )
    })
}

#[test]
fn every_step_for_real_then_a_second_run_changes_nothing() {
    let bind = Bind::start_for("127.0.0.10", "127.0.0.1");
    let prosody = Prosody::shared();
    let _log = prosody.log_on_panic();
    let estate = Estate::new(0);
    let topology = topology(&estate, &bind, &prosody);
    let journal = estate.path("journal.jsonl");
    let args = |extra: &[&str]| {
        let mut a = vec![
            "failover".to_string(),
            "--from".into(),
            "EdgePool1".into(),
            "--to".into(),
            "EdgePool2".into(),
            "-t".into(),
            topology.display().to_string(),
            "--journal".into(),
            journal.display().to_string(),
        ];
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };

    // The dry run reads everything and changes nothing anywhere.
    let serial = bind.serial(bind.primary.port);
    let world = estate.world();
    Run::new(args(&["--dry-run"])).run().code(4);
    assert_eq!(bind.serial(bind.primary.port), serial);
    assert_eq!(estate.world(), world);

    let out = Run::new(args(&["--yes", "--output", "json", "-vv"]))
        .run()
        .code(0);
    let events = out.events();
    let verified: Vec<&str> = events
        .iter()
        .filter(|e| {
            e["type"] == "phase_finished" && e["phase"] == "verify" && e["outcome"] == "verified"
        })
        .map(|e| e["step"].as_str().unwrap())
        .collect();
    for step in [
        "services.stop",
        "route.set",
        "dns.a",
        "dns.srv",
        "services.start",
    ] {
        assert!(
            verified.contains(&step),
            "{step} not verified; verified: {verified:?}\n{}",
            out.stdout
        );
    }
    // Steps 6 and 8 only look: in the run, right before they would apply,
    // their checks pass, which is the whole step.
    for step in ["port.check", "federation.check"] {
        let last = events
            .iter()
            .rfind(|e| e["type"] == "phase_finished" && e["step"] == step)
            .unwrap();
        assert_eq!(last["outcome"], "already_done", "{last}");
    }
    let partner = events
        .iter()
        .rfind(|e| e["step"] == "federation.check")
        .unwrap();
    let partner_text = partner.to_string();
    assert!(
        partner_text.contains("edgepool2-xmpp.contoso.com"),
        "{partner}"
    );
    assert!(
        partner_text.contains("self-signed") || partner_text.contains("untrusted"),
        "the accepted chain must be said: {partner}"
    );
    assert_eq!(events.last().unwrap()["outcome"], "completed");

    // What the world now looks like, read from each server directly.
    bind.wait_in_sync();
    for port in [bind.primary.port, bind.secondary.port] {
        assert_eq!(bind.dig(port, A_NAME, "A"), vec!["127.0.0.1".to_string()]);
        let srv = bind.dig(port, SRV_NAME, "SRV");
        let preferred = srv
            .iter()
            .min_by_key(|r| {
                r.split_whitespace()
                    .next()
                    .and_then(|p| p.parse::<u16>().ok())
                    .unwrap_or(u16::MAX)
            })
            .unwrap();
        assert!(
            preferred.ends_with("edgepool2-xmpp.contoso.com."),
            "preferred SRV {preferred} in {srv:?}"
        );
    }
    let state = estate.read();
    assert_eq!(state["sites"]["Site2"]["route"], "EdgeServer2.contoso.com");

    // The TSIG secret is nowhere: not in output, logs or the journal.
    let journal_text = std::fs::read_to_string(&journal).unwrap();
    for text in [&out.stdout, &out.stderr, &journal_text] {
        assert!(!text.contains(&bind.key.secret), "the TSIG secret leaked");
    }

    let serial = bind.serial(bind.primary.port);
    let again = Run::new(args(&["--yes"])).run().code(0);
    assert!(again.stdout.contains("Nothing to do"), "{}", again.stdout);
    assert_eq!(
        bind.serial(bind.primary.port),
        serial,
        "the second run updated DNS"
    );
    assert_eq!(estate.writes().len(), 3);
}
