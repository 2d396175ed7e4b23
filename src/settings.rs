//! Flags, the environment and the topology, resolved once into what a
//! command runs with. Every check that can fail before anything is
//! contacted happens here, so a command starts from settings that hold.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail};

use crate::cli::{JournalArg, Output, PlanArgs, ProbeArgs};
use crate::engine::resume::{self, Resume};
use crate::event::{Event, Level, Location, Origin};
use crate::journal;
use crate::names::{self, printable};
use crate::steps::{self, Ctx, RunOptions, StepId, partner};
use crate::topology::{
    self, Loaded, Pool, Severity, Timeouts as RunTimeouts, Topology, parse_server_addr,
};
use crate::xmpp::probe::ProbeOptions;
use crate::xmpp::srv::DirectLookup;
use crate::xmpp::{DEFAULT_PARTNER, Timeouts};

/// Read and validate the topology file, and check what it names in this
/// environment: the TSIG key file and variable.
pub fn load_topology(path: &Path) -> anyhow::Result<Loaded> {
    Ok(topology::load_checked(path, environment)?)
}

/// What the topology names outside itself, as this environment has it.
fn environment(t: &Topology) -> Vec<topology::Outside> {
    let Some(tsig) = &t.dns.tsig else {
        return Vec::new();
    };
    // A secret written where a path or a variable name belongs is
    // validation's error; it is never used, so never echoed, here.
    match (&tsig.secret_file, &tsig.secret_env) {
        (Some(path), None) if !crate::secret::looks_like_secret(&path.to_string_lossy()) => {
            let source = crate::secret::KeySource {
                name: &tsig.name,
                algorithm: &tsig.algorithm,
                file: Some(path),
                env: None,
            };
            match crate::secret::load_tsig(source) {
                Ok(_) => Vec::new(),
                Err(e) => vec![(Severity::Error, "dns.tsig.secret_file", e.to_string())],
            }
        }
        (None, Some(var))
            if names::is_env_var_name(var) && !crate::secret::looks_like_secret(var) =>
        {
            match crate::secret::secret_from_env(var) {
                Ok(_) => Vec::new(),
                Err(crate::secret::SecretError::EnvUnset { .. }) => vec![(
                    Severity::Warning,
                    "dns.tsig.secret_env",
                    format!(
                        "{var} is not set in this environment; DNS updates will fail until it is"
                    ),
                )],
                Err(e) => vec![(
                    Severity::Warning,
                    "dns.tsig.secret_env",
                    format!("{e}; DNS updates will fail until it holds the key's secret in base64"),
                )],
            }
        }
        _ => Vec::new(),
    }
}

/// A valid topology's warnings and notes, as events.
pub fn findings(loaded: &Loaded) -> Vec<Event> {
    let file = loaded.report.file.display().to_string();
    loaded
        .report
        .diagnostics
        .iter()
        .filter(|d| d.severity != Severity::Error)
        .map(|d| Event::Warning {
            origin: Origin::Topology,
            level: if d.severity == Severity::Note {
                Level::Note
            } else {
                Level::Warning
            },
            message: d.message.clone(),
            at: Some(Location {
                file: file.clone(),
                line: d.pos.line,
                column: d.pos.column,
                field: d.path.clone(),
            }),
        })
        .collect()
}

/// `--skip` values as step ids.
pub fn parse_skips(skip: &[String]) -> anyhow::Result<Vec<StepId>> {
    skip.iter()
        .map(|s| {
            StepId::parse(s).ok_or_else(|| {
                let ids: Vec<&str> = StepId::ALL.iter().map(|i| i.as_str()).collect();
                anyhow!(
                    "--skip {}: no such step (steps: {})",
                    printable(s),
                    ids.join(", ")
                )
            })
        })
        .collect()
}

/// Where an estate's journal and lock are.
#[derive(Debug, Clone)]
pub struct StatePaths {
    /// --journal, else `<state dir>/<estate>.jsonl`.
    pub journal: PathBuf,
    /// Always `<state dir>/<estate>.lock`: one lock per estate, whichever
    /// journal a run writes.
    pub lock: PathBuf,
}

/// The topology's `state_dir` (relative to the topology file's folder),
/// else this user's state directory.
pub fn state_dir(topology_path: &Path, t: &Topology) -> PathBuf {
    match &t.state_dir {
        Some(dir) if dir.is_absolute() => dir.clone(),
        Some(dir) => topology_path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .join(dir),
        None => crate::platform::default_state_dir(),
    }
}

/// The journal and lock of the estate `t` describes.
pub fn state_paths(topology_path: &Path, t: &Topology, arg: &JournalArg) -> StatePaths {
    let dir = state_dir(topology_path, t);
    let key = journal::estate_key(&t.xmpp.domain, &t.dns.zone);
    StatePaths {
        journal: arg
            .journal
            .clone()
            .unwrap_or_else(|| dir.join(format!("{key}.jsonl"))),
        lock: dir.join(format!("{key}.lock")),
    }
}

/// The journal file alone: --journal as given (no topology needed), else
/// the estate's, from the topology.
pub fn journal_path(topology: &Path, arg: &JournalArg) -> anyhow::Result<PathBuf> {
    if let Some(path) = &arg.journal {
        return Ok(path.clone());
    }
    let loaded = load_topology(topology)?;
    Ok(state_paths(topology, &loaded.topology, arg).journal)
}

/// `--resume`: the last unfinished failover in the journal at `journal`,
/// or why there is none (the error says "cannot resume: ..."). Lines of the
/// journal that could not be read come back for the caller to show.
pub fn find_resume(
    journal: &Path,
    topology_text: &str,
    from: Option<&str>,
    to: Option<&str>,
) -> (anyhow::Result<Resume>, Vec<String>) {
    let contents = match journal::read(journal) {
        Ok(c) => c,
        Err(e) => return (Err(anyhow!(e).context("cannot resume")), Vec::new()),
    };
    let found = resume::find(&contents, journal, topology_text, from, to)
        .map_err(|e| anyhow!(e).context("cannot resume"));
    (found, contents.problems)
}

/// The options of a run: the flags where given, else the topology's.
pub fn run_options(
    t: &RunTimeouts,
    parallel: u16,
    graceful: bool,
    command_secs: Option<u64>,
    verify_secs: Option<u64>,
) -> RunOptions {
    RunOptions {
        parallel: usize::from(parallel),
        graceful,
        command_timeout: Duration::from_secs(command_secs.unwrap_or(t.command_secs)),
        verify_timeout: Duration::from_secs(verify_secs.unwrap_or(t.verify_secs)),
        poll: Duration::from_millis(t.poll_ms),
    }
}

/// A plan or failover, resolved: everything but the pools, which a resume
/// may take from the journal.
pub struct RunSettings {
    pub topology_path: PathBuf,
    pub loaded: Loaded,
    pub journal: PathBuf,
    pub lock: PathBuf,
    pub from: Option<String>,
    pub to: Option<String>,
    pub skip: Vec<StepId>,
    pub opts: RunOptions,
    pub output: Output,
}

impl RunSettings {
    /// `confirm`: the operator must confirm on a terminal (failover
    /// without --yes); refused here, before anything is read, without one.
    pub fn resolve(args: &PlanArgs, graceful: bool, confirm: bool) -> anyhow::Result<RunSettings> {
        let skip = parse_skips(&args.skip)?;
        if confirm && !crate::platform::stdin_is_terminal() {
            bail!(
                "no terminal to confirm on: pass --yes to apply without the interactive confirmation (or --dry-run to only look)"
            );
        }
        let loaded = load_topology(&args.topology.path)?;
        let opts = run_options(
            &loaded.topology.timeouts,
            args.parallel,
            graceful,
            args.command_timeout,
            args.verify_timeout,
        );
        let paths = state_paths(&args.topology.path, &loaded.topology, &args.journal);
        Ok(RunSettings {
            journal: paths.journal,
            lock: paths.lock,
            topology_path: args.topology.path.clone(),
            from: args.from.clone(),
            to: args.to.clone(),
            skip,
            opts,
            output: args.output,
            loaded,
        })
    }

    /// `--resume`: take the pools (and, unless given, the skips) from the
    /// run it continues. The journal's unreadable lines come back too.
    pub fn resume(&mut self) -> (anyhow::Result<Resume>, Vec<String>) {
        let (found, problems) = find_resume(
            &self.journal,
            &self.loaded.text,
            self.from.as_deref(),
            self.to.as_deref(),
        );
        if let Ok(r) = &found {
            self.from = Some(r.from.clone());
            self.to = Some(r.to.clone());
            if self.skip.is_empty() {
                self.skip = r.skipped.clone();
            }
        }
        (found, problems)
    }

    /// A failover with `dns.mode: manual` stops at step 4 for the operator
    /// to type `done`: without a terminal to type it on, it would stop
    /// there after the services were stopped and the route moved. Refused
    /// here instead, before anything is contacted. A resume that takes its
    /// skips from the journal is judged by the flags alone (it may still
    /// need DNS).
    pub fn refuse_manual_dns_without_terminal(&self, terminal: bool) -> anyhow::Result<()> {
        let dns_steps = [StepId::DnsA, StepId::DnsSrv];
        let needs_dns = dns_steps.iter().any(|s| !self.skip.contains(s));
        if self.loaded.topology.dns.mode == topology::DnsMode::Manual && needs_dns && !terminal {
            bail!(
                "dns.mode is manual: step 4 waits for you to type `done` on a terminal after making the DNS change, and there is no terminal here (--yes does not confirm a change made by hand); run it on a terminal, or --skip dns.a --skip dns.srv when the DNS change is made by other means. Nothing was contacted or changed"
            );
        }
        Ok(())
    }

    /// The pools, once settled.
    pub fn pools(&self) -> anyhow::Result<(&str, &str)> {
        match (&self.from, &self.to) {
            (Some(from), Some(to)) => Ok((from, to)),
            _ => bail!(
                "--from and --to are required (name the failed pool and the pool that takes over)"
            ),
        }
    }

    /// The run's context with the real machines; nothing is contacted yet.
    pub fn ctx(&self) -> anyhow::Result<Ctx> {
        let (from, to) = self.pools()?;
        Ok(Ctx::new(
            self.loaded.topology.clone(),
            from,
            to,
            self.opts.clone(),
        )?)
    }
}

/// What `probe` looks at.
pub enum ProbeTarget {
    /// Follow the domain's SRV records.
    Domain,
    /// Connect to this address.
    Addr(SocketAddr),
    /// Look this name up, then connect.
    Host(String, u16),
}

/// A probe, resolved from its flags and (with -t) the topology.
pub struct ProbeSettings {
    pub target: ProbeTarget,
    pub opts: ProbeOptions,
    pub lookup: DirectLookup,
    /// With -t: the topology and, with --pool, the pool partners must reach.
    pub topology: Option<(Topology, Option<Pool>)>,
    pub output: Output,
}

fn timeouts(args: &ProbeArgs, base: Timeouts) -> Timeouts {
    Timeouts {
        connect: args.connect_timeout.unwrap_or(base.connect),
        first_byte: args.first_byte_timeout.unwrap_or(base.first_byte),
        exchange: args.exchange_timeout.unwrap_or(base.exchange),
    }
}

fn parse_servers(args: &ProbeArgs) -> anyhow::Result<Vec<SocketAddr>> {
    args.dns_servers
        .iter()
        .map(|s| {
            parse_server_addr(s, 53)
                .map_err(|why| anyhow!("--dns-server '{}': {why}", printable(s)))
        })
        .collect()
}

impl ProbeSettings {
    pub fn resolve(args: &ProbeArgs) -> anyhow::Result<ProbeSettings> {
        if let Err(why) = names::check_fqdn(&args.partner_name) {
            bail!("--partner-name '{}': {why}", printable(&args.partner_name));
        }
        match &args.topology {
            Some(path) => ProbeSettings::from_topology(args, path),
            None => ProbeSettings::from_flags(args),
        }
    }

    /// `probe -t FILE [--pool POOL]`: the topology's domain, DNS and policy.
    fn from_topology(args: &ProbeArgs, path: &Path) -> anyhow::Result<ProbeSettings> {
        let loaded = load_topology(path)?;
        let t = loaded.topology;
        let pool = match &args.pool {
            Some(name) => match t.pool(name) {
                Some(p) => Some(p.pool.clone()),
                None => {
                    let known: Vec<&str> = t.pools().map(|p| p.pool.name.as_str()).collect();
                    bail!(
                        "no pool named '{}' in the topology (pools: {})",
                        printable(name),
                        known.join(", ")
                    );
                }
            },
            None => None,
        };
        let mut opts = partner::options(&t);
        opts.timeouts = timeouts(args, opts.timeouts);
        if args.accept_untrusted_cert {
            opts.accept_untrusted = true;
            opts.accept_flag = "--accept-untrusted-cert";
        }
        if args.partner_name != DEFAULT_PARTNER {
            opts.partner = args.partner_name.clone();
        }
        let lookup = if args.dns_servers.is_empty() {
            let mut l = partner::lookup(&t);
            if let Some(d) = args.dns_timeout {
                l = DirectLookup::new(l.servers().to_vec(), d);
            }
            l
        } else {
            DirectLookup::new(
                parse_servers(args)?,
                args.dns_timeout
                    .unwrap_or(Duration::from_secs(t.dns.timeout_secs)),
            )
        };
        Ok(ProbeSettings {
            target: ProbeTarget::Domain,
            opts,
            lookup,
            topology: Some((t, pool)),
            output: args.output,
        })
    }

    /// `probe DOMAIN --dns-server ADDR` or `probe --host H ...`.
    fn from_flags(args: &ProbeArgs) -> anyhow::Result<ProbeSettings> {
        let servers = parse_servers(args)?;
        let host_ip = args.host.as_deref().and_then(|h| h.parse::<IpAddr>().ok());
        let domain = match (&args.target, &args.domain, &args.host) {
            (Some(_), Some(_), _) => bail!("give the domain once: as DOMAIN or as --domain"),
            (Some(d), None, _) | (None, Some(d), _) => d.clone(),
            (None, None, Some(h)) if host_ip.is_none() => h.clone(),
            (None, None, Some(_)) => bail!(
                "--host is an address: say which XMPP domain to ask for with --domain (the stream's `to` and the name the certificate must cover)"
            ),
            (None, None, None) => bail!(
                "say what to probe: a DOMAIN (with --dns-server), --host, or a topology with -t"
            ),
        };
        if let Err(why) = names::check_fqdn(&domain) {
            bail!("'{}' is not an XMPP domain: {why}", printable(&domain));
        }
        let target = match (&args.host, host_ip) {
            (Some(_), Some(ip)) => ProbeTarget::Addr(SocketAddr::new(ip, args.port)),
            (Some(h), None) => {
                if let Err(why) = names::check_fqdn(h) {
                    bail!("--host '{}': {why}", printable(h));
                }
                ProbeTarget::Host(h.clone(), args.port)
            }
            (None, _) => ProbeTarget::Domain,
        };
        if !matches!(target, ProbeTarget::Addr(_)) && servers.is_empty() {
            bail!(
                "name lookups need --dns-server ADDR (the authoritative servers of the zone): edgefail never uses the system resolver"
            );
        }
        Ok(ProbeSettings {
            target,
            opts: ProbeOptions {
                domain,
                partner: args.partner_name.clone(),
                timeouts: timeouts(args, Timeouts::default()),
                accept_untrusted: args.accept_untrusted_cert,
                accept_flag: "--accept-untrusted-cert",
            },
            lookup: DirectLookup::new(servers, args.dns_timeout.unwrap_or(Duration::from_secs(5))),
            topology: None,
            output: args.output,
        })
    }
}

/// The pools of a rehearsal, checked as a real run would check them: the
/// names as the topology spells them.
pub fn rehearsal_pools(t: &Topology, from: &str, to: &str) -> anyhow::Result<(String, String)> {
    let ((fs, fp), (ts, tp)) = steps::ctx::select(t, from, to)?;
    let name = |s: usize, p: usize| {
        t.sites
            .get(s)
            .and_then(|site| site.pools.get(p))
            .map(|pool| pool.name.clone())
            .unwrap_or_default()
    };
    Ok((name(fs, fp), name(ts, tp)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_is_checked_here_not_in_the_topology() {
        let dir = std::env::temp_dir().join(format!("edgefail-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("t.yaml");
        let text = "version: 1
xmpp: { domain: contoso.com, a_record: xmpp.contoso.com }
dns:
  zone: contoso.com
  primary: 127.0.0.1
  authoritative: [127.0.0.1]
  tsig: { name: k, secret_env: EDGEFAIL_TEST_SURELY_UNSET_VARIABLE }
management: { transport: { type: local } }
sites:
  - name: S1
    pools:
      - { name: P1, fqdn: p1.contoso.com, version: lync2013, srv_priority: 10, servers: [{ fqdn: e1.contoso.com, external_ipv4: 203.0.113.10, transport: { type: local } }] }
      - { name: P2, fqdn: p2.contoso.com, version: lync2013, srv_priority: 20, servers: [{ fqdn: e2.contoso.com, external_ipv4: 203.0.113.20, transport: { type: local } }] }
";
        std::fs::write(&file, text).unwrap();
        // The topology layer alone does no I/O beyond the file...
        let plain = topology::load(&file).expect("valid");
        assert!(plain.report.diagnostics.is_empty(), "{}", plain.report);
        // ...settings adds what this environment lacks, located.
        let loaded = load_topology(&file).expect("valid, with a warning");
        let d = &loaded.report.diagnostics;
        assert_eq!(d.len(), 1, "{}", loaded.report);
        assert_eq!(d[0].severity, Severity::Warning);
        assert_eq!(d[0].path, "dns.tsig.secret_env");
        assert_eq!(d[0].pos.line, 7);
        assert!(d[0].message.contains("is not set in this environment"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
