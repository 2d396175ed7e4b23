//! `edgefail validate`: every problem at once, each located; hostile names
//! rejected before any script could carry them.

use std::os::unix::fs::PermissionsExt;

use crate::harness::Run;
use crate::harness::standin::Estate;
use crate::harness::topology::{Secret, Topology, Tsig};

#[test]
fn example_runbook_is_valid() {
    Run::validate(concat!(env!("CARGO_MANIFEST_DIR"), "/runbooks/contoso.yaml").as_ref())
        .run()
        .code(0)
        .stdout_has("valid (2 site(s), 2 pool(s), 2 Edge server(s)");
}

#[test]
fn topology_path_comes_from_the_environment_then_the_default_name() {
    let estate = Estate::new(0);
    let topology = estate.topology();
    Run::new(["validate"])
        .env("EDGEFAIL_TOPOLOGY", &topology)
        .run()
        .code(0)
        .stdout_has("topology.yaml: valid");
    // Default: ./edgefail.yaml in the working directory.
    std::fs::copy(&topology, estate.path("edgefail.yaml")).unwrap();
    Run::new(["validate"])
        .current_dir(estate.dir.path())
        .run()
        .code(0)
        .stdout_has("edgefail.yaml: valid");
    Run::validate("/nonexistent/topology.yaml".as_ref())
        .run()
        .code(2)
        .stderr_has("cannot read topology file /nonexistent/topology.yaml");
}

/// Validate `text` (written next to a real estate) and return stderr.
#[track_caller]
fn invalid(estate: &Estate, text: &str) -> String {
    let path = estate.path("bad.yaml");
    std::fs::write(&path, text).unwrap();
    let out = Run::validate(&path).run().code(2);
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    out.stderr
}

#[test]
fn hostile_names_are_rejected_with_their_location() {
    let estate = Estate::new(0);
    let good = Topology::estate(&estate).yaml();
    let hostile = [
        (
            "name: Site2\n",
            "name: \"Site2; Remove-Item C:\\\\ -Recurse\"\n",
            "site identity",
        ),
        (
            "name: Site2\n",
            "name: \"Site2'; Stop-Computer; '\"\n",
            "site identity",
        ),
        ("name: Site2\n", "name: \"Site`2\"\n", "site identity"),
        (
            "name: Site2\n",
            "name: \"$(Stop-Computer)\"\n",
            "site identity",
        ),
        (
            "name: Site2\n",
            "name: \"Site2\\nStop-Computer\"\n",
            "site identity",
        ),
        (
            "fqdn: EdgeServer2.contoso.com\n",
            "fqdn: \"EdgeServer2.contoso.com'; calc; '\"\n",
            "server FQDN",
        ),
        (
            "fqdn: edgepool2.contoso.com\n",
            "fqdn: \"edgepool2.contoso.com$(whoami)\"\n",
            "pool FQDN",
        ),
        (
            "name: EdgePool2\n",
            "name: \"EdgePool2`nStop\"\n",
            "pool name",
        ),
    ];
    for (from, to, what) in hostile {
        let text = good.replacen(from, to, 1);
        assert_ne!(text, good, "replacement {from:?} did not apply");
        let stderr = invalid(&estate, &text);
        assert!(
            stderr.contains(&format!("is not a valid {what}")),
            "{to:?} not rejected as {what}:\n{stderr}"
        );
        // file:line:column: error: path: message
        let located = stderr
            .lines()
            .any(|l| l.contains("bad.yaml:") && l.contains(": error: sites[1]."));
        assert!(located, "no location for {to:?}:\n{stderr}");
    }
    assert!(estate.log().is_empty(), "validate contacted a machine");
}

#[test]
fn every_problem_is_reported_at_once() {
    let estate = Estate::new(0);
    let good = Topology::estate(&estate).yaml();
    let text = good
        .replacen("external_ipv4: 127.0.0.10", "external_ipv4: 300.1.2.3", 1)
        .replacen("name: Site2", "name: Site1", 1)
        .replacen("srv_priority: 20", "srv_priority: 10", 1)
        .replacen("  port: 5269", "  port: 5269\n  colour: blue", 1)
        .replacen(
            "authoritative: ['127.0.0.1:1']",
            "authoritative: ['ns1.contoso.com']",
            1,
        );
    let stderr = invalid(&estate, &text);
    for needle in [
        "'300.1.2.3' is not an IPv4 address",
        "duplicate site 'Site1' (first at line",
        "duplicate SRV priority",
        "unknown field `colour`",
        "dns.authoritative[0]: 'ns1.contoso.com': expected an IP address",
    ] {
        assert!(stderr.contains(needle), "missing {needle:?}:\n{stderr}");
    }
    assert!(stderr.contains("has 5 error(s)"), "{stderr}");
    // Reported in file order with line numbers.
    let colour = stderr.lines().find(|l| l.contains("colour")).unwrap();
    assert!(colour.contains("bad.yaml:6:"), "{colour}");
}

#[test]
fn structure_and_reference_errors() {
    let estate = Estate::new(0);
    let good = Topology::estate(&estate).yaml();
    let no_servers = {
        let cut = good
            .find("        servers:\n          - fqdn: EdgeServer2")
            .unwrap();
        format!("{}        servers: []\n", &good[..cut])
    };
    assert!(invalid(&estate, &no_servers).contains("pool EdgePool2 has no Edge servers"));
    let bad_route = good.replacen(
        "srv_priority: 20",
        "srv_priority: 20\n        route_server: EdgeServer9.contoso.com",
        1,
    );
    assert!(
        invalid(&estate, &bad_route)
            .contains("'EdgeServer9.contoso.com' is not one of pool EdgePool2's servers")
    );
    let missing = good.replacen("        fqdn: edgepool2.contoso.com\n", "", 1);
    assert!(invalid(&estate, &missing).contains("missing field `fqdn`"));
    let bad_version = good.replacen("version: lync2013", "version: ocs2007", 1);
    assert!(invalid(&estate, &bad_version).contains("unknown variant `ocs2007`"));
    let syntax = good.replacen("zone: contoso.com", "zone: [contoso.com", 1);
    let stderr = invalid(&estate, &syntax);
    assert!(stderr.contains("bad.yaml:"), "{stderr}");
    let bad_port = good.replacen("port: 5269", "port: 70000", 1);
    assert!(invalid(&estate, &bad_port).contains("xmpp.port"));
}

#[test]
fn inline_secrets_are_refused_without_being_echoed() {
    let estate = Estate::new(0);
    let good = Topology::estate(&estate).yaml();
    let secret = "c2VjcmV0LXRzaWcta2V5LXZhbHVlLTEyMzQ=";
    let text = good.replacen(
        "  mode: manual\n",
        &format!("  mode: manual\n  tsig:\n    name: edgefail\n    algorithm: hmac-sha256\n    secret: {secret}\n"),
        1,
    );
    let stderr = invalid(&estate, &text);
    assert!(
        stderr.contains("dns.tsig.secret: the TSIG secret must not be written in the topology"),
        "{stderr}"
    );
    assert!(!stderr.contains(secret), "the secret was echoed:\n{stderr}");
}

#[test]
fn world_readable_or_wrong_key_files_are_refused() {
    let estate = Estate::new(0);
    let secret = "a2V5LWZpbGUtc2VjcmV0LXZhbHVlLTk4NzY=";
    let key = estate.path("edgefail.key");
    std::fs::write(
        &key,
        format!("key \"edgefail\" {{\n\talgorithm hmac-sha256;\n\tsecret \"{secret}\";\n}};\n"),
    )
    .unwrap();
    let with_key = |name: &str| {
        Topology::estate(&estate)
            .tsig(Tsig {
                name: name.into(),
                algorithm: None,
                secret: Secret::File(key.clone()),
            })
            .yaml()
    };
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let stderr = invalid(&estate, &with_key("edgefail"));
    assert!(
        stderr.contains("is readable by every user (mode 644); run `chmod 600"),
        "{stderr}"
    );

    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let stderr = invalid(&estate, &with_key("other-key"));
    assert!(
        stderr.contains("has no key named \"other-key\" (it has: \"edgefail\")"),
        "{stderr}"
    );
    assert!(!stderr.contains(secret));

    let path = estate.path("ok.yaml");
    std::fs::write(&path, with_key("edgefail")).unwrap();
    let out = Run::validate(&path).run().code(0);
    assert!(!out.stdout.contains(secret) && !out.stderr.contains(secret));
}

#[test]
fn sfb2019_pool_is_valid_but_noted() {
    let estate = Estate::new(0);
    let topology = Topology::estate(&estate)
        .version("EdgePool1", "sfb2019")
        .write(estate.dir.path());
    Run::validate(&topology)
        .run()
        .code(0)
        .stderr_has("note: sites[0].pools[0].version: EdgePool1 runs Skype for Business Server 2019, which has no XMPP gateway");
}

#[test]
fn garbage_never_panics() {
    let estate = Estate::new(0);
    let inputs: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"---\n".to_vec(),
        b"[".to_vec(),
        b"version: 1".to_vec(),
        b"\xff\xfe\x00garbage".to_vec(),
        b"a: &a [*a, *a]\nsites: *a".to_vec(),
        "x: ".repeat(2000).into_bytes(),
        "[".repeat(5000).into_bytes(),
        b"version: 1\nsites:\n  - name: S\n    pools: [{name: P, fqdn: p.c.com, version: lync2013, srv_priority: 1, servers: [{fqdn: e.c.com, external_ipv4: 1.2.3.4, transport: {type: carrier-pigeon}}]}]\n".to_vec(),
    ];
    for input in inputs {
        let path = estate.path("garbage.yaml");
        std::fs::write(&path, &input).unwrap();
        let out = Run::validate(&path).run();
        assert_eq!(
            out.code,
            2,
            "input {:?} gave exit {}: {}",
            String::from_utf8_lossy(&input[..input.len().min(40)]),
            out.code,
            out.stderr
        );
        assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    }
}

#[test]
fn structural_and_semantic_problems_are_all_reported_with_their_locations() {
    let estate = Estate::new(1);
    let good = std::fs::read_to_string(estate.topology()).unwrap();
    let text = good
        // Structural: a wrong type, a missing field, a bad enum value, an
        // unknown field, a bad transport type.
        .replacen("  port: 5269", "  port: [5269]", 1)
        .replacen("        fqdn: edgepool1.contoso.com\n", "", 1)
        .replacen(
            "fqdn: edgepool2.contoso.com\n        version: lync2013",
            "fqdn: edgepool2.contoso.com\n        version: ocs2007",
            1,
        )
        .replacen("  mode: manual\n", "  mode: manual\n  colour: blue\n", 1)
        .replacen("{ type: local", "{ type: carrier-pigeon", 1)
        // Semantic: a bad address in the pool whose version is bad, a
        // duplicate site, a DNS server given by name.
        .replacen("external_ipv4: 127.0.0.21", "external_ipv4: 300.1.2.3", 1)
        .replacen("name: Site2", "name: Site1", 1)
        .replacen("['127.0.0.1:1']", "['ns1.contoso.com']", 1);
    let path = estate.path("bad.yaml");
    std::fs::write(&path, &text).unwrap();
    let out = Run::new(["validate", "-t", path.to_str().unwrap()])
        .run()
        .code(2);
    for output in [&out.stdout, &out.stderr] {
        assert!(!output.contains("panicked"), "{output}");
        assert!(!output.contains("fix this first"), "{output}");
    }
    // Lines of the estate's topology, shifted by the edits above.
    let expected = [
        "5:9: error: xmpp.port: invalid type: sequence, expected u16",
        "10:3: error: dns.colour: unknown field `colour`",
        "11:19: error: dns.authoritative[0]: 'ns1.contoso.com': expected an IP address",
        "13:22: error: management.transport.type: unknown variant `carrier-pigeon`, expected `local` or `ssh`",
        "21:9: error: sites[0].pools[0]: missing field `fqdn`",
        "28:11: error: sites[1].name: duplicate site 'Site1' (first at line 19)",
        "32:18: error: sites[1].pools[0].version: unknown variant `ocs2007`",
        "39:28: error: sites[1].pools[0].servers[1].external_ipv4: '300.1.2.3' is not an IPv4 address",
    ];
    let stderr = &out.stderr;
    for want in &expected {
        let hit = stderr
            .lines()
            .filter(|l| l.contains(&format!("/bad.yaml:{want}")))
            .count();
        assert_eq!(hit, 1, "want {want:?} once:\n{stderr}");
    }
    assert!(
        stderr.contains(&format!("has {} error(s)", expected.len())),
        "{stderr}"
    );
}
