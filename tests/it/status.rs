//! `edgefail status` against a real BIND primary and secondary, a real
//! Prosody standing in for both pools' Edge servers (one server listening
//! on both pools' addresses), and the PowerShell stand-in: a clean estate,
//! route and DNS disagreeing, a lagging authoritative server, a source
//! down, federation down, then a failover and a failback (with the route
//! step listing every site and `move_routes: all_sites`), each exit code and
//! the JSON document parsed into its type. Also `rehearse --status`.

use std::path::{Path, PathBuf};

use edgefail::estate::{ServicesState, Status, VerdictState};
use serde_json::json;

use crate::harness::Run;
use crate::harness::bind::{Bind, SRV_NAME};
use crate::harness::prosody::Prosody;
use crate::harness::standin::Estate;
use crate::harness::topology::Topology;

const POOL1: &str = "127.0.0.1";
const POOL2: &str = "127.0.0.2";

fn status(topology: &Path) -> Run {
    Run::new(["status", "-t"]).arg(topology)
}

/// `status --output json`: exactly one document, parsed into its type.
#[track_caller]
fn read(topology: &Path, code: i32) -> Status {
    let out = status(topology)
        .arg("--output")
        .arg("json")
        .run()
        .code(code);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "one JSON document: {}", out.stdout);
    let doc: Status = serde_json::from_str(lines[0])
        .unwrap_or_else(|e| panic!("the status document does not parse ({e}): {}", out.stdout));
    assert_eq!(doc.kind, "status");
    assert_eq!(doc.verdict.exit_code, code, "{:?}", doc.verdict);
    doc
}

/// `status` in words: the verdict line and the exit code.
#[track_caller]
fn human(topology: &Path, code: i32, needles: &[&str]) -> String {
    let out = status(topology).run().code(code);
    for n in needles {
        assert!(out.stdout.contains(n), "missing {n:?} in:\n{}", out.stdout);
    }
    out.stdout
}

struct World {
    bind: Bind,
    estate: Estate,
    port: u16,
    _prosody: Prosody,
}

impl World {
    fn new() -> World {
        let bind = Bind::start_for(POOL1, POOL2);
        let prosody = Prosody::start_on(&Prosody::standard_hosts(), &[POOL1, POOL2]);
        let port = prosody.addr.port();
        // Both pools published, EdgePool1 preferred, at Prosody's port.
        bind.nsupdate(&format!(
            "update delete {SRV_NAME} SRV\nupdate add {SRV_NAME} 300 SRV 10 0 {port} edgepool1-xmpp.contoso.com.\nupdate add {SRV_NAME} 300 SRV 20 0 {port} edgepool2-xmpp.contoso.com."
        ));
        bind.wait_in_sync();
        World {
            bind,
            estate: Estate::new(0),
            port,
            _prosody: prosody,
        }
    }

    fn topology(&self, edit: impl FnOnce(Topology) -> Topology, file: &str) -> PathBuf {
        let mut t = Topology::estate(&self.estate)
            .dns(self.bind.dns(self.estate.dir.path()))
            .srv_targets()
            .xmpp_port(self.port)
            .accept_untrusted_cert()
            .address("EdgeServer1.contoso.com", POOL1)
            .address("EdgeServer2.contoso.com", POOL2);
        t.xmpp.connect_timeout_ms = Some(1000);
        let named = self.estate.path(file);
        std::fs::write(&named, edit(t).yaml()).expect("write the topology");
        named
    }

    fn set_routes(&self, site1: &str, site2: &str) {
        self.estate.edit(|v| {
            v["sites"]["Site1"]["route"] = json!(site1);
            v["sites"]["Site2"]["route"] = json!(site2);
        });
    }
}

#[test]
fn status_through_drift_a_failover_and_a_failback() {
    let w = World::new();
    let topology = w.topology(|t| t, "topology.yaml");
    let every_site = w.topology(|t| t.move_routes("all_sites"), "every-site.yaml");
    let (e1, e2) = ("EdgeServer1.contoso.com", "EdgeServer2.contoso.com");

    // A topology that cannot be read: usage, nothing contacted.
    let missing = status(&w.estate.path("missing.yaml")).run().code(2);
    assert!(missing.stdout.is_empty(), "{}", missing.stdout);

    // A clean estate: every route, DNS and partners on EdgePool1.
    let clean = read(&topology, 0);
    assert_eq!(clean.verdict.state, VerdictState::Federating);
    assert_eq!(
        clean.verdict.line,
        "XMPP federation runs through EdgePool1 (Site1)"
    );
    assert!(
        clean
            .sites
            .iter()
            .all(|s| s.pool.as_deref() == Some("EdgePool1"))
    );
    assert!(
        clean
            .pools
            .iter()
            .all(|p| p.services == ServicesState::Running)
    );
    assert_eq!(clean.dns.servers.len(), 2);
    assert!(clean.dns.disagreements.is_empty());
    assert_eq!(clean.dns.preferred_pool(), Some("EdgePool1"));
    assert_eq!(clean.dns.a_pools, vec!["EdgePool1".to_string()]);
    assert!(clean.partner.passed, "{:?}", clean.partner);
    human(
        &topology,
        0,
        &["verdict: XMPP federation runs through EdgePool1 (Site1)"],
    );

    // The route and DNS disagree: every site names EdgePool2.
    w.set_routes(e2, e2);
    let split = read(&topology, 10);
    assert_eq!(split.verdict.state, VerdictState::SplitBrain);
    human(
        &topology,
        10,
        &[
            "split brain: the route names EdgePool2 while DNS prefers EdgePool1",
            "fix: edgefail failover --from EdgePool2 --to EdgePool1",
        ],
    );
    w.set_routes(e1, e1);

    // One authoritative server lags: a third one that never caught up.
    let rogue = w.bind.start_rogue(1, POOL2);
    let lagging = w.topology(
        |mut t| {
            t.dns.authoritative.push(rogue.addr());
            t
        },
        "lagging.yaml",
    );
    let lag = read(&lagging, 10);
    assert_eq!(lag.verdict.state, VerdictState::Drift);
    assert_eq!(lag.dns.disagreements.len(), 1, "{:?}", lag.dns);
    human(
        &lagging,
        10,
        &[
            "with drift: the authoritative servers disagree",
            &rogue.addr(),
            "serial(s) behind",
        ],
    );
    drop(rogue);

    // A source down: one Edge server's management cannot be read.
    w.estate.fault(
        e2,
        "Get-CsWindowsService",
        "fail",
        "The RPC server is unavailable.",
    );
    let blind = read(&topology, 12);
    assert_eq!(blind.verdict.state, VerdictState::CannotTell);
    assert!(
        blind.verdict.cannot_tell[0].contains("The RPC server is unavailable."),
        "{:?}",
        blind.verdict
    );
    human(
        &topology,
        12,
        &[
            "verdict: cannot tell: EdgeServer2.contoso.com services (EdgePool2)",
            "what could be read says XMPP federation runs through EdgePool1",
        ],
    );
    w.estate.clear_faults();

    // Federation down: the preferred target's address answers nothing.
    w.bind.nsupdate(
        "update delete edgepool1-xmpp.contoso.com A\nupdate add edgepool1-xmpp.contoso.com 300 A 127.0.0.3",
    );
    w.bind.wait_in_sync();
    let down = read(&topology, 11);
    assert_eq!(down.verdict.state, VerdictState::Down);
    human(
        &topology,
        11,
        &[
            "verdict: down: partners now go to edgepool1-xmpp.contoso.com",
            "(EdgePool1) and cannot federate",
            "fix: edgefail failover --from EdgePool1 --to EdgePool2",
        ],
    );
    w.bind.nsupdate(&format!(
        "update delete edgepool1-xmpp.contoso.com A\nupdate add edgepool1-xmpp.contoso.com 300 A {POOL1}"
    ));
    w.bind.wait_in_sync();
    read(&topology, 0);

    // The plan before a failover: step 8 says where partners go now, step
    // 3 lists every site's route, step 2 what it found.
    let plan = Run::plan(&topology)
        .from("EdgePool1")
        .to("EdgePool2")
        .journal(&w.estate.path("plan.jsonl"))
        .run()
        .code(4);
    for needle in [
        &format!(
            "partners now go to edgepool1-xmpp.contoso.com:{} (EdgePool1) and federate; after step 7 this step verifies that partners reach EdgePool2",
            w.port
        ),
        "still naming another pool, left as is (management.move_routes: target_site, the documented procedure): Site1 (EdgeServer1.contoso.com (EdgePool1))",
        "found Lync services running on all 1 server(s) of EdgePool2 (as after a restore)",
    ] {
        assert!(plan.stdout.contains(needle), "{needle}\n{}", plan.stdout);
    }
    assert!(!plan.stdout.contains("split brain"), "{}", plan.stdout);

    // The documented failover: Site2's route moves, Site1's stays.
    Run::failover(&topology)
        .yes()
        .from("EdgePool1")
        .to("EdgePool2")
        .journal(&w.estate.path("failover.jsonl"))
        .run()
        .code(0);
    let after = read(&topology, 10);
    assert_eq!(after.verdict.state, VerdictState::Drift);
    assert_eq!(after.verdict.pool.as_deref(), Some("EdgePool2"));
    assert!(after.partner.passed);
    human(
        &topology,
        10,
        &[
            "XMPP federation runs through EdgePool2 (Site2), with drift: Site1's route still names EdgePool1",
            "set management.move_routes: all_sites",
        ],
    );

    // Failing back with every site's route: Site1's route already names
    // EdgePool1 (no restart needed), Site2's moves in the same step.
    let back = Run::plan(&every_site)
        .from("EdgePool2")
        .to("EdgePool1")
        .journal(&w.estate.path("failback-plan.jsonl"))
        .run()
        .code(4);
    for needle in [
        "would run Set-CsSite -Identity Site2 -XmppExternalFederationRoute EdgeServer1.contoso.com",
        "the route already points at EdgePool1 (EdgeServer1.contoso.com); no restart needed (found Lync services running on all 1 server(s) of EdgePool1 (as after a restore))",
    ] {
        assert!(back.stdout.contains(needle), "{needle}\n{}", back.stdout);
    }
    Run::failover(&every_site)
        .yes()
        .from("EdgePool2")
        .to("EdgePool1")
        .journal(&w.estate.path("failback.jsonl"))
        .run()
        .code(0);
    let home = read(&every_site, 0);
    assert_eq!(home.verdict.state, VerdictState::Federating);
    assert_eq!(
        home.verdict.line,
        "XMPP federation runs through EdgePool1 (Site1)"
    );
    assert!(
        home.sites
            .iter()
            .all(|s| s.pool.as_deref() == Some("EdgePool1"))
    );
    // The old pool's SRV record is kept, less preferred.
    let srv = w.bind.dig(w.bind.primary.port, SRV_NAME, "SRV");
    assert_eq!(
        srv,
        vec![
            format!("10 0 {} edgepool1-xmpp.contoso.com.", w.port),
            format!("20 0 {} edgepool2-xmpp.contoso.com.", w.port)
        ]
    );
}

#[test]
fn rehearse_status_shows_the_split_brain_a_drill_leaves_behind() {
    let out = Run::rehearse(Path::new("runbooks/contoso.yaml"))
        .from("EdgePool1")
        .to("EdgePool2")
        .inject("dns-concurrent-change")
        .delay_ms(20)
        .arg("--status")
        .json()
        .run()
        .code(0);
    let docs: Vec<Status> = out
        .json_lines()
        .into_iter()
        .filter(|v| v["type"] == "status")
        .map(|v| serde_json::from_value(v).expect("a status document"))
        .collect();
    assert_eq!(docs.len(), 2, "after the drill and after the resume");
    let left = &docs[0];
    assert_eq!(left.verdict.state, VerdictState::SplitBrain);
    assert_eq!(
        left.verdict.line,
        "split brain: Site2's route names EdgePool2, whose services are Stopped, while DNS prefers EdgePool1"
    );
    assert!(
        left.verdict
            .fix
            .iter()
            .any(|f| f.contains("edgefail failover --from EdgePool1 --to EdgePool2")),
        "{:?}",
        left.verdict
    );
    let end = &docs[1];
    assert_eq!(end.verdict.pool.as_deref(), Some("EdgePool2"));
    assert_eq!(
        end.verdict.state,
        VerdictState::Drift,
        "Site1's route stays"
    );
}
