//! A simulated Lync estate for the PowerShell stand-in: its state file, the
//! transports that run the stand-in for each of its machines (the topology
//! itself is `Topology::estate`), and helpers to read what the stand-in was
//! asked to do.

use std::path::{Path, PathBuf};

use edgefail::steps::StepId;
use serde_json::{Value, json};

use super::topology::{Ssh, Topology, Transport};

/// The stand-in binary cargo built as an example next to this test binary.
#[track_caller]
pub fn standin_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    // target/<profile>/deps/it-<hash> -> target/<profile>/examples/pwsh_standin
    let profile_dir = exe.parent().and_then(Path::parent).expect("target dir");
    let bin = profile_dir.join("examples").join("pwsh_standin");
    assert!(
        bin.is_file(),
        "the PowerShell stand-in {} is missing: run the tests with `cargo test`, which builds examples/pwsh_standin.rs",
        bin.display()
    );
    bin
}

pub const SERVICES: [&str; 4] = ["REPLICA", "RTCDATAPROXY", "RTCMEDIARELAY", "RTCSRV"];

/// One test's estate: Site1/EdgePool1 (EdgeServer1) carried XMPP; Site2/
/// EdgePool2 (EdgeServer2 and `extra` more servers) takes over.
pub struct Estate {
    pub dir: tempfile::TempDir,
    pub state: PathBuf,
    pub target_servers: Vec<String>,
}

impl Estate {
    pub fn new(extra_target_servers: usize) -> Estate {
        let dir = tempfile::tempdir().expect("temp dir");
        let state = dir.path().join("standin-state.json");
        let mut target_servers = vec!["EdgeServer2.contoso.com".to_string()];
        for i in 0..extra_target_servers {
            target_servers.push(format!(
                "EdgeServer2{}.contoso.com",
                (b'b' + i as u8) as char
            ));
        }
        let running: serde_json::Map<String, Value> = SERVICES
            .iter()
            .map(|s| (s.to_string(), json!("Running")))
            .collect();
        let mut hosts = serde_json::Map::new();
        hosts.insert(
            "EdgeServer1.contoso.com".into(),
            json!({"services": running.clone()}),
        );
        for s in &target_servers {
            hosts.insert(s.clone(), json!({"services": running.clone()}));
        }
        let initial = json!({
            "set_cssite_parameter": "XmppExternalFederationRoute",
            "modules": ["Lync"],
            "sites": {
                "Site1": {"identity": "Site:Site1", "route": "EdgeServer1.contoso.com"},
                "Site2": {"identity": "Site:Site2", "route": "EdgeServer1.contoso.com"}
            },
            "pools": {
                "edgepool1.contoso.com": {"identity": "EdgePool1.contoso.com", "site": "Site:Site1", "computers": ["EdgeServer1.contoso.com"]},
                "edgepool2.contoso.com": {"identity": "EdgePool2.contoso.com", "site": "Site:Site2", "computers": target_servers}
            },
            "replication": [
                {"fqdn": "fe1.contoso.com", "up_to_date": true},
                {"fqdn": "EdgeServer2.contoso.com", "up_to_date": true}
            ],
            "hosts": hosts
        });
        let estate = Estate {
            dir,
            state,
            target_servers,
        };
        estate.write(&initial);
        estate
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn read(&self) -> Value {
        let text = std::fs::read_to_string(&self.state).expect("read stand-in state");
        serde_json::from_str(&text).expect("stand-in state is JSON")
    }

    pub fn write(&self, value: &Value) {
        std::fs::write(&self.state, serde_json::to_string_pretty(value).unwrap())
            .expect("write stand-in state");
    }

    /// Change the state with a closure.
    pub fn edit(&self, f: impl FnOnce(&mut Value)) {
        let mut v = self.read();
        f(&mut v);
        self.write(&v);
    }

    /// What a dry run must leave untouched: sites' routes, pools, every
    /// service's status, replicas' freshness.
    pub fn world(&self) -> Value {
        let v = self.read();
        let hosts: serde_json::Map<String, Value> = v["hosts"]
            .as_object()
            .map(|h| {
                h.iter()
                    .map(|(k, h)| (k.clone(), h["services"].clone()))
                    .collect()
            })
            .unwrap_or_default();
        let replicas: Vec<Value> = v["replication"]
            .as_array()
            .map(|r| {
                r.iter()
                    .map(|r| json!([r["fqdn"], r["up_to_date"]]))
                    .collect()
            })
            .unwrap_or_default();
        json!({"sites": v["sites"], "pools": v["pools"], "hosts": hosts, "replicas": replicas})
    }

    /// (host, cmdlet) of every action, in order: the stand-in appends
    /// them to `<state>.log`, one JSON line each.
    pub fn log(&self) -> Vec<(String, String)> {
        self.beside(".log")
            .lines()
            .map(|line| {
                let e: Value = serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("stand-in log line {line:?}: {e}"));
                (
                    e["host"].as_str().unwrap_or_default().to_string(),
                    e["cmdlet"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    }

    /// How many times `cmdlet` ran (any host).
    pub fn count(&self, cmdlet: &str) -> usize {
        self.log().iter().filter(|(_, c)| c == cmdlet).count()
    }

    /// Changing cmdlets only.
    pub fn writes(&self) -> Vec<(String, String)> {
        self.log()
            .into_iter()
            .filter(|(_, c)| {
                matches!(
                    c.as_str(),
                    "Stop-CsWindowsService" | "Start-CsWindowsService" | "Set-CsSite"
                )
            })
            .collect()
    }

    /// The estate is failed over: Site2's route names EdgeServer2 and every
    /// Lync service of the target pool runs.
    #[track_caller]
    pub fn assert_failed_over(&self) {
        let state = self.read();
        assert_eq!(state["sites"]["Site2"]["route"], "EdgeServer2.contoso.com");
        for host in &self.target_servers {
            for (name, status) in state["hosts"][host]["services"].as_object().unwrap() {
                assert_eq!(status, "Running", "{host} {name}");
            }
        }
    }

    /// A stop failed on `server` alone, of 3: the step failed naming it,
    /// the other servers finished their stop, and nothing later ran.
    #[track_caller]
    pub fn assert_stop_failed_on(
        &self,
        out: &crate::harness::Outcome,
        server: &str,
        message: &str,
    ) {
        let line = format!("{server}: Stop-CsWindowsService failed: {message}");
        assert!(out.stdout.contains(&line), "{}", out.stdout);
        let headline = format!("FAILED: services.stop failed: 1 of 3 server(s) failed: {server}");
        assert!(out.stdout.contains(&headline), "{}", out.stdout);
        assert_eq!(self.count("Stop-CsWindowsService"), 3);
        assert_eq!(self.count("Set-CsSite"), 0);
        assert_eq!(self.count("Start-CsWindowsService"), 0);
        assert_eq!(
            self.read()["sites"]["Site2"]["route"],
            "EdgeServer1.contoso.com"
        );
    }

    /// A start hung on `server` past the `secs` command timeout: the step
    /// failed naming it, after the route had been set.
    #[track_caller]
    pub fn assert_start_timed_out(&self, out: &crate::harness::Outcome, server: &str, secs: u64) {
        let line = format!("{server}: Start-CsWindowsService: no answer within {secs}s");
        assert!(out.stdout.contains(&line), "{}", out.stdout);
        assert_eq!(
            self.read()["sites"]["Site2"]["route"],
            "EdgeServer2.contoso.com"
        );
    }

    pub fn fault(&self, host: &str, cmdlet: &str, action: &str, message: &str) {
        self.add_fault(
            json!({"host": host, "cmdlet": cmdlet, "action": action, "message": message}),
        );
    }

    /// A fault given in full (`times`, `ms`, ...).
    pub fn add_fault(&self, fault: Value) {
        self.edit(|v| {
            let mut faults = v["faults"].as_array().cloned().unwrap_or_default();
            faults.push(fault);
            v["faults"] = Value::Array(faults);
        });
    }

    pub fn clear_faults(&self) {
        self.edit(|v| v["faults"] = json!([]));
    }

    /// This estate's default topology (`Topology::estate`), written into
    /// its directory.
    pub fn topology(&self) -> PathBuf {
        Topology::estate(self).write(self.dir.path())
    }

    /// Every machine this estate's topology names: the management shell,
    /// EdgeServer1, then the target pool.
    pub fn machines(&self) -> Vec<String> {
        let mut all = vec![
            MANAGEMENT.to_string(),
            "EdgeServer1.contoso.com".to_string(),
        ];
        all.extend(self.target_servers.iter().cloned());
        all
    }

    /// The stand-in, run locally, playing `host`.
    pub fn local_transport(&self, host: &str) -> Transport {
        Transport::Local {
            program: standin_bin().display().to_string(),
            args: vec![
                "--state".into(),
                self.state.display().to_string(),
                "--host".into(),
                host.into(),
            ],
            module: Some("Lync".into()),
            session: None,
        }
    }

    /// `host` reached over ssh on `port` of `endpoints`, the stand-in
    /// playing powershell.exe on the far side.
    pub fn ssh_transport(&self, host: &str, endpoints: &SshEndpoints, port: u16) -> Transport {
        Transport::Ssh(Ssh {
            host: "127.0.0.1".into(),
            port,
            user: endpoints.user.clone(),
            identity_file: endpoints.identity_file.clone(),
            known_hosts: endpoints.known_hosts.clone(),
            remote_program: format!(
                "{} --state {} --host {host}",
                standin_bin().display(),
                self.state.display()
            ),
            module: Some("Lync".into()),
            accept_new_host_keys: None,
            control_persist_secs: None,
            connect_timeout_secs: None,
            ssh_program: None,
            session: None,
        })
    }
}

/// The machine that plays the management shell.
pub const MANAGEMENT: &str = "fe1.contoso.com";

/// Where an estate's machines listen for ssh: one port per machine.
pub struct SshEndpoints {
    pub ports: Vec<u16>,
    pub user: String,
    pub identity_file: PathBuf,
    pub known_hosts: PathBuf,
}

/// The steps the stand-in plays alone (the others need DNS, a port probe,
/// an XMPP server for the partner's-eye check): `Run::only(&LYNC_STEPS)`.
pub const LYNC_STEPS: [StepId; 4] = [
    StepId::PoolDeployed,
    StepId::ServicesStop,
    StepId::RouteSet,
    StepId::ServicesStart,
];

impl Estate {
    /// PowerShell processes the stand-in started, per machine it played.
    pub fn starts(&self, host: &str) -> u64 {
        self.started().lines().filter(|l| *l == host).count() as u64
    }

    /// The machine each stand-in process played, a line each, in order of
    /// their start (`<state>.starts`).
    pub fn started(&self) -> String {
        self.beside(".starts")
    }

    /// What the stand-in appended to `<state><suffix>`; empty before
    /// anything ran.
    fn beside(&self, suffix: &str) -> String {
        let mut path = self.state.clone().into_os_string();
        path.push(suffix);
        let path = PathBuf::from(path);
        match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => panic!("read {}: {e}", path.display()),
        }
    }
}
