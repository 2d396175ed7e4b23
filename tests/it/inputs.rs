//! What edgefail is given: the TSIG key proved at plan time against a real
//! BIND, key files read by BIND's own grammar (checked against
//! named-checkconf), secrets kept out of every message even when written
//! in the wrong field, key files that are not regular files, relative key
//! paths, nesting and durations bounded in the topology.

use std::path::{Path, PathBuf};
use std::process::Command;

use edgefail::steps::StepId;

use crate::harness::bind::{Bind, Key};
use crate::harness::standin::Estate;
use crate::harness::topology::{Secret, Topology, Tsig};
use crate::harness::{Outcome, Run, edgefail_bin, need};

const DNS_STEPS: [StepId; 2] = [StepId::DnsA, StepId::DnsSrv];

fn plan(topology: &Path) -> Run {
    Run::plan(topology)
        .from("EdgePool1")
        .to("EdgePool2")
        .only(&DNS_STEPS)
}

#[track_caller]
fn no_secret(out: &Outcome, secret: &str) {
    for text in [&out.stdout, &out.stderr] {
        assert!(!text.contains(secret), "the secret leaked:\n{text}");
    }
}

#[test]
fn a_key_the_primary_would_refuse_blocks_the_plan_and_the_proof_changes_nothing() {
    let bind = Bind::start();
    let dir = tempfile::tempdir().unwrap();
    let serial = bind.serial(bind.primary.port);

    // The right key: the plan proves it with an update that changes
    // nothing, and still says what would change.
    let topo = bind.topology(dir.path()).write(dir.path());
    plan(&topo)
        .run()
        .code(4)
        .stdout_has("dns.a            check  would change");
    assert_eq!(
        bind.serial(bind.primary.port),
        serial,
        "the proof moved the serial"
    );

    let wrong = Key::generate(&bind.key.name, "hmac-sha256");
    let stranger = Key::generate("nosuchkey", "hmac-sha256");
    let var = "EDGEFAIL_IT_INPUTS_SECRET";
    let key_string = format!("hmac-sha256:{}:{}", bind.key.name, bind.key.secret);
    let cases: Vec<(&str, Tsig, Option<&str>, &str)> = vec![
        (
            "wrong secret",
            Tsig::file(&wrong, &dir.path().join("wrong.key")),
            None,
            "the server rejected the TSIG key \"edgefail-test\" (BADSIG)",
        ),
        (
            "unknown key",
            Tsig::file(&stranger, &dir.path().join("stranger.key")),
            None,
            "the server rejected the TSIG key \"nosuchkey\" (BADKEY)",
        ),
        (
            "no update rights",
            Tsig::file(&bind.other_key, &dir.path().join("other.key")),
            None,
            "the server refused the update (REFUSED)",
        ),
        (
            "variable unset",
            Tsig::env(&bind.key, var),
            None,
            "environment variable EDGEFAIL_IT_INPUTS_SECRET is not set",
        ),
        (
            "variable empty",
            Tsig::env(&bind.key, var),
            Some(""),
            "environment variable EDGEFAIL_IT_INPUTS_SECRET is empty",
        ),
        (
            "an nsupdate -y string",
            Tsig::env(&bind.key, var),
            Some(&key_string),
            "holds an nsupdate -y string",
        ),
        (
            "not base64",
            Tsig::env(&bind.key, var),
            Some("this is not base64!"),
            "the secret is not valid base64",
        ),
    ];
    for (label, tsig, value, want) in cases {
        let topo = bind.topology(dir.path()).tsig(tsig).write(dir.path());
        let mut run = plan(&topo);
        if let Some(value) = value {
            run = run.env(var, value);
        }
        let out = run.run();
        assert_eq!(out.code, 1, "{label}: {out:?}");
        assert!(
            out.stdout.contains(want),
            "{label}: want {want:?} in\n{}",
            out.stdout
        );
        assert!(out.stdout.contains("blocked"), "{label}: {}", out.stdout);
        no_secret(&out, &wrong.secret);
        no_secret(&out, &bind.key.secret);
        assert_eq!(bind.serial(bind.primary.port), serial, "{label}");
    }
}

#[test]
fn failover_with_a_bad_key_stops_before_changing_anything() {
    let bind = Bind::start_for("127.0.0.10", "127.0.0.1");
    let estate = Estate::new(0);
    let wrong = Key::generate(&bind.key.name, "hmac-sha256");
    let mut t = Topology::estate(&estate)
        .dns(bind.dns(estate.dir.path()))
        .srv_targets()
        .address("EdgeServer2.contoso.com", "127.0.0.1")
        .tsig(Tsig::file(&wrong, &estate.path("wrong.key")));
    t.xmpp.connect_timeout_ms = Some(300);
    let topo = t.write(estate.dir.path());
    let world = estate.world();
    let serial = bind.serial(bind.primary.port);
    let out = Run::failover(&topo)
        .from("EdgePool1")
        .to("EdgePool2")
        .yes()
        .run()
        .code(1)
        .stdout_has("(BADSIG)");
    no_secret(&out, &wrong.secret);
    assert_eq!(estate.world(), world, "the estate changed:\n{}", out.stdout);
    assert!(estate.writes().is_empty(), "{:?}", estate.writes());
    assert_eq!(bind.serial(bind.primary.port), serial);
}

/// Key files as named-checkconf judges them, and as edgefail must: the same
/// verdict for each. `{S}` is a valid secret.
const KEY_FILES: &[(&str, &str)] = &[
    (
        "tsig-keygen",
        "key \"k\" {\n\talgorithm hmac-sha256;\n\tsecret \"{S}\";\n};\n",
    ),
    (
        "unquoted name",
        "key k { algorithm hmac-sha256; secret \"{S}\"; };",
    ),
    (
        "unquoted secret with a slash",
        "key k { algorithm hmac-sha256; secret {S}; };",
    ),
    (
        "unquoted secret",
        "key k { algorithm hmac-sha256; secret YWJjZGVmZ2hp; };",
    ),
    (
        "negated name",
        "key !k { algorithm hmac-sha256; secret \"{S}\"; };",
    ),
    (
        "upper case keywords",
        "KEY k { ALGORITHM HMAC-SHA256; SECRET \"{S}\"; };",
    ),
    (
        "truncated hmac",
        "key k { algorithm hmac-sha256-128; secret \"{S}\"; };",
    ),
    (
        "underscore name",
        "key edge_fail { algorithm hmac-sha256; secret \"{S}\"; };",
    ),
    (
        "line break in a quoted name",
        "key \"k\nx\" { algorithm hmac-sha256; secret \"{S}\"; };",
    ),
    (
        "all three comment kinds",
        "/* made\n by hand */ key k { # ours\n algorithm hmac-sha256; // sha-256\n secret \"{S}\"; };",
    ),
    (
        "two keys",
        "key a { algorithm hmac-sha256; secret \"{S}\"; };\nkey \"b.\" {algorithm hmac-sha512;secret \"{S}\";};",
    ),
    ("empty file", ""),
    ("comments only", "# nothing\n// here\n"),
    (
        "secret split by a space",
        "key k { algorithm hmac-sha256; secret \"YWJjZGVm ZGhpamts\"; };",
    ),
    ("no algorithm", "key k { secret \"{S}\"; };"),
    ("no secret", "key k { algorithm hmac-sha256; };"),
    (
        "unknown algorithm",
        "key k { algorithm hmac-foo; secret \"{S}\"; };",
    ),
    (
        "secret not base64",
        "key k { algorithm hmac-sha256; secret \"not*base64\"; };",
    ),
    (
        "bad padding",
        "key k { algorithm hmac-sha256; secret \"YWJjZA\"; };",
    ),
    (
        "the same key twice",
        "key k { algorithm hmac-sha256; secret \"{S}\"; };\nkey K. { algorithm hmac-sha256; secret \"{S}\"; };",
    ),
    (
        "algorithm twice",
        "key k { algorithm hmac-sha256; algorithm hmac-sha256; secret \"{S}\"; };",
    ),
    (
        "no final semicolon",
        "key k { algorithm hmac-sha256; secret \"{S}\"; }",
    ),
    (
        "a stray semicolon",
        "key k { algorithm hmac-sha256; secret \"{S}\"; };;",
    ),
    (
        "unknown clause",
        "key k { algorithm hmac-sha256; secret \"{S}\"; foo bar; };",
    ),
    (
        "comment never closed",
        "/* key k { algorithm hmac-sha256; secret \"{S}\"; };",
    ),
    (
        "comment inside the name",
        "key k#x { algorithm hmac-sha256; secret \"{S}\"; };",
    ),
    (
        "empty label",
        "key \"a..b\" { algorithm hmac-sha256; secret \"{S}\"; };",
    ),
    (
        "quote never closed",
        "key \"k { algorithm hmac-sha256; secret {S}; };",
    ),
    ("bare secret", "{S}\n"),
];

#[test]
fn key_files_are_read_as_named_checkconf_reads_them() {
    let checkconf = need("named-checkconf", "bind9");
    let dir = tempfile::tempdir().unwrap();
    // With `/` and `+`, which end an unquoted word in named.conf.
    let secret = "YWJj/+ZGVm+/+/+/+/+/+/+/+/+/+/+/+/+/+/+/+/+/+/+/+/".to_string();
    let mut disagree = Vec::new();
    for (i, (label, template)) in KEY_FILES.iter().enumerate() {
        let text = template.replace("{S}", &secret);
        let path = dir.path().join(format!("key{i}.conf"));
        std::fs::write(&path, &text).unwrap();
        let bind = Command::new(&checkconf)
            .arg(&path)
            .output()
            .expect("run named-checkconf");
        let ours = edgefail::secret::key_file_names(&text);
        if let Err((_, problem)) = &ours {
            assert!(!problem.contains(&secret), "{label}: {problem}");
        }
        if bind.status.success() != ours.is_ok() {
            disagree.push(format!(
                "{label}: named-checkconf {} ({}), edgefail {ours:?}",
                if bind.status.success() {
                    "accepts"
                } else {
                    "refuses"
                },
                String::from_utf8_lossy(&bind.stdout).trim()
            ));
        }
    }
    assert!(disagree.is_empty(), "{}", disagree.join("\n"));
}

/// A topology for `key` whose key file holds `text` (mode 600).
fn with_key_file(dir: &Path, key: &Key, text: &str) -> PathBuf {
    let path = dir.join("edgefail.key");
    let t = Topology::new("contoso.com").tsig(Tsig::file(key, &path));
    std::fs::write(&path, text).unwrap();
    t.write(dir)
}

#[test]
fn an_unquoted_key_name_is_found_and_no_key_file_error_shows_the_secret() {
    let dir = tempfile::tempdir().unwrap();
    let key = Key::generate("edgefail-contoso", "hmac-sha256");
    let s = &key.secret;

    // BIND accepts an unquoted name; so does edgefail, among other keys.
    let topo = with_key_file(
        dir.path(),
        &key,
        &format!(
            "key other {{ algorithm hmac-sha256; secret \"{s}\"; }};\n// ours:\nkey edgefail-contoso {{ algorithm hmac-sha256; secret \"{s}\"; }};\n"
        ),
    );
    let out = Run::validate(&topo).run().code(0);
    no_secret(&out, s);

    // Only another key: its name is listed, the secret never.
    with_key_file(
        dir.path(),
        &key,
        &format!("key other-key {{ algorithm hmac-sha256; secret \"{s}\"; }};\n"),
    );
    let out = Run::validate(&topo)
        .run()
        .code(2)
        .stderr_has("has no key named \"edgefail-contoso\" (it has: \"other-key\")");
    no_secret(&out, s);

    // Broken files: the line, never the text.
    for (text, line) in [
        (
            format!("key edgefail-contoso {{\n algorithm hmac-sha256;\n secret \"{s}\"\n}};\n"),
            4,
        ),
        (format!("\n\n{s}\n"), 3),
        (
            format!("key edgefail-contoso {{ algorithm {s}; secret \"{s}\"; }};"),
            1,
        ),
    ] {
        with_key_file(dir.path(), &key, &text);
        let out = Run::validate(&topo).run().code(2).stderr_has(&format!(
            "key file {}, line {line}:",
            dir.path().join("edgefail.key").display()
        ));
        no_secret(&out, s);
    }

    // The file's key uses another algorithm than the topology says.
    with_key_file(
        dir.path(),
        &key,
        &format!("key edgefail-contoso {{ algorithm hmac-sha512; secret \"{s}\"; }};\n"),
    );
    Run::validate(&topo)
        .run()
        .code(2)
        .stderr_has("line 1: key \"edgefail-contoso\" uses hmac-sha512, but dns.tsig.algorithm says hmac-sha256");
}

#[test]
fn a_secret_in_the_wrong_field_is_named_by_its_field_and_never_shown() {
    let dir = tempfile::tempdir().unwrap();
    let key = Key::generate("edgefail-contoso", "hmac-sha256");
    let s = key.secret.clone();
    let y = format!("hmac-sha256:edgefail-contoso:{s}");
    let good = |secret: Secret| Tsig {
        name: key.name.clone(),
        algorithm: Some(key.algorithm.clone()),
        secret,
    };
    let cases: Vec<(&str, Tsig)> = vec![
        ("dns.tsig.secret_env", good(Secret::Env(s.clone()))),
        ("dns.tsig.secret_env", good(Secret::Env(y.clone()))),
        (
            "dns.tsig.secret_file",
            good(Secret::File(PathBuf::from(&s))),
        ),
        (
            "dns.tsig.secret_file",
            good(Secret::File(PathBuf::from(&y))),
        ),
        (
            "dns.tsig.name",
            Tsig {
                name: y.clone(),
                ..good(Secret::Env("EDGEFAIL_TSIG".into()))
            },
        ),
        (
            "dns.tsig.algorithm",
            Tsig {
                algorithm: Some(s.clone()),
                ..good(Secret::Env("EDGEFAIL_TSIG".into()))
            },
        ),
    ];
    for (field, tsig) in cases {
        let topo = Topology::new("contoso.com").tsig(tsig).write(dir.path());
        let out = Run::validate(&topo)
            .run()
            .code(2)
            .stderr_has(&format!("{field}: this value looks like a TSIG secret"));
        no_secret(&out, &s);
        let out = plan(&topo).run().code(2);
        no_secret(&out, &s);
    }
}

#[test]
fn a_key_file_that_is_not_a_regular_file_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let key = Key::generate("edgefail-contoso", "hmac-sha256");
    let fifo = dir.path().join("fifo.key");
    let made = Command::new(need("mkfifo", "coreutils"))
        .arg(&fifo)
        .status()
        .expect("run mkfifo");
    assert!(made.success());
    for (path, what) in [
        (
            fifo.clone(),
            "it is a named pipe (FIFO), not a regular file",
        ),
        (
            PathBuf::from("/dev/zero"),
            "it is a device, not a regular file",
        ),
        (
            dir.path().to_path_buf(),
            "it is a directory, not a regular file",
        ),
    ] {
        let t = Topology::new("contoso.com").tsig(Tsig {
            name: key.name.clone(),
            algorithm: None,
            secret: Secret::File(path.clone()),
        });
        let topo = t.write(dir.path());
        // A FIFO used to hang every command here, and a device to be read
        // until memory ran out.
        Run::validate(&topo)
            .run()
            .code(2)
            .stderr_has(&format!("cannot read key file {}: {what}", path.display()));
    }
}

#[test]
fn a_relative_key_file_is_found_beside_the_topology() {
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let key = Key::generate("edgefail-contoso", "hmac-sha256");
    key.write(&dir.path().join("edgefail.key"));
    let absolute = Topology::new("contoso.com")
        .tsig(Tsig {
            name: key.name.clone(),
            algorithm: None,
            secret: Secret::File(PathBuf::from("edgefail.key")),
        })
        .yaml();
    let topo = dir.path().join("edgefail.yaml");
    std::fs::write(&topo, &absolute).unwrap();
    Run::validate(&topo)
        .current_dir(elsewhere.path())
        .run()
        .code(0);

    std::fs::write(&topo, absolute.replace("edgefail.key", "keys/missing.key")).unwrap();
    Run::validate(&topo)
        .current_dir(elsewhere.path())
        .run()
        .code(2)
        .stderr_has(&format!(
            "cannot read key file {}",
            dir.path().join("keys/missing.key").display()
        ));
}

#[test]
fn deep_nesting_is_refused_before_it_costs_memory() {
    let dir = tempfile::tempdir().unwrap();
    let topo = dir.path().join("deep.yaml");
    // 60 KB of block sequences nested in one another.
    std::fs::write(&topo, format!("{}x\n", "- ".repeat(30_000))).unwrap();
    // Under a 1 GB address-space limit: a loader that built per node would
    // die here instead of answering.
    let bin = edgefail_bin();
    Run::validate(&topo)
        .inside([
            OsArg::from("sh"),
            OsArg::from("-c"),
            OsArg::from("ulimit -v 1000000 && exec \"$0\" \"$@\""),
            bin.into_os_string(),
        ])
        .run()
        .code(2)
        .stderr_has("nest deeper than 64 levels");
}

type OsArg = std::ffi::OsString;

#[test]
fn durations_are_bounded_with_the_allowed_range() {
    let dir = tempfile::tempdir().unwrap();
    let base = Topology::new("contoso.com").yaml();
    let mut max = Topology::new("contoso.com");
    max.timeouts.verify_secs = Some(u64::MAX);
    max.timeouts.command_secs = Some(0);
    max.timeouts.poll_ms = Some(u64::MAX);
    let topo = max.write(dir.path());
    let out = Run::validate(&topo).run().code(2);
    for (field, range) in [
        ("timeouts.verify_secs", "allowed 1 to 86400 seconds"),
        ("timeouts.command_secs", "allowed 1 to 86400 seconds"),
        ("timeouts.poll_ms", "allowed 1 to 600000 ms"),
    ] {
        let line = out
            .stderr
            .lines()
            .find(|l| l.contains(field))
            .unwrap_or_else(|| panic!("no error for {field}:\n{}", out.stderr));
        assert!(line.contains(range), "{line}");
        assert!(line.contains(&format!("{}:", topo.display())), "{line}");
    }
    for (key, field, range) in [
        (
            "connect_timeout_ms",
            "xmpp.connect_timeout_ms",
            "allowed 1 to 600000 ms",
        ),
        (
            "exchange_timeout_ms",
            "xmpp.exchange_timeout_ms",
            "allowed 1 to 600000 ms",
        ),
    ] {
        let topo = dir.path().join("t.yaml");
        let text = base.replacen(
            "xmpp:\n",
            &format!("xmpp:\n  {key}: 18446744073709551615\n"),
            1,
        );
        std::fs::write(&topo, text).unwrap();
        Run::validate(&topo).run().code(2).stderr_has(&format!(
            "{field}: 18446744073709551615 is out of range: {range}"
        ));
    }
}

/// contoso.com with `n` SRV records for XMPP: far more than fits in a UDP
/// answer, so BIND answers a UDP query with the TC bit set.
fn big_srv_zone(n: usize) -> String {
    let mut z = String::from(
        "$TTL 300\n@ IN SOA ns1.contoso.com. hostmaster.contoso.com. 1 3600 600 86400 60\n@ IN NS ns1.contoso.com.\nns1 IN A 127.0.0.1\nxmpp IN A 203.0.113.10\n",
    );
    for i in 0..n {
        z.push_str(&format!(
            "_xmpp-server._tcp IN SRV 10 {i} 5269 edge-server-with-a-long-name-{i}.xmpp-federation.contoso.com.\n"
        ));
    }
    z
}

#[test]
fn a_truncated_answer_is_asked_again_over_tcp_never_read_as_missing() {
    use edgefail::xmpp::srv::{DirectLookup, Lookup};
    // BIND keeps an rrset to 100 records; 60 long names make ~5 KB.
    const N: usize = 60;
    let named =
        crate::harness::bind::Named::lone_in_temp_dir("big", "contoso.com", &big_srv_zone(N));
    let addr: std::net::SocketAddr = named.addr().parse().unwrap();
    // Over UDP, BIND says "truncated": dig shows the flag.
    let dig = Command::new(need("dig", "bind9-dnsutils"))
        .args([
            "+notcp",
            "+ignore",
            "+norec",
            "+bufsize=1232",
            "@127.0.0.1",
            "-p",
        ])
        .arg(named.port.to_string())
        .args(["_xmpp-server._tcp.contoso.com", "SRV"])
        .output()
        .expect("run dig");
    let flags = String::from_utf8_lossy(&dig.stdout).to_string();
    assert!(flags.contains(" tc"), "BIND did not truncate:\n{flags}");

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // The partner's-eye lookup (UDP first).
    let lookup = DirectLookup::new(vec![addr], std::time::Duration::from_secs(3));
    let found = rt
        .block_on(lookup.srv("_xmpp-server._tcp.contoso.com"))
        .expect("the whole SRV set, over TCP");
    assert_eq!(found.len(), N);
    // The authoritative reading of steps 4 and 5.
    let auth = edgefail::dns::Authority::new(addr, std::time::Duration::from_secs(3));
    let names = edgefail::dns::ZoneNames {
        zone: edgefail::dns::fqdn("contoso.com").unwrap(),
        a: edgefail::dns::fqdn("xmpp.contoso.com").unwrap(),
        srv: edgefail::dns::fqdn("_xmpp-server._tcp.contoso.com").unwrap(),
    };
    let snapshot = rt.block_on(auth.read(&names)).expect("read");
    assert_eq!(snapshot.srv.records.len(), N);
}
