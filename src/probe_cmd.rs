//! `edgefail probe`: the partner's-eye check against any domain or address,
//! for pre-flight checks, with human or JSON output.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;

use crate::cli::Output;
use crate::exit;
use crate::names;
use crate::steps::partner;
use crate::topology::{self, parse_server_addr};
use crate::xmpp::probe::{self, ProbeOptions, Report};
use crate::xmpp::srv::DirectLookup;
use crate::xmpp::{DEFAULT_PARTNER, Timeouts};

/// `probe DOMAIN --dns-server ADDR`, `probe --host H [--port P] [--domain D]`
/// or `probe -t FILE [--pool POOL]`.
#[derive(Debug, Args)]
#[command(
    after_help = "Exit codes: 0 a partner's server could federate; 1 a check failed; 2 usage error.\n\nThe system resolver is never used: name lookups go only to --dns-server addresses."
)]
pub struct ProbeArgs {
    /// The XMPP domain (contoso.com): follow its _xmpp-server._tcp SRV records
    /// as a partner's server would. Needs --dns-server.
    #[arg(value_name = "DOMAIN")]
    pub target: Option<String>,
    /// Probe the XMPP domain of this topology file through its authoritative
    /// DNS servers, with its timeouts and certificate policy (flags given
    /// here take precedence).
    #[arg(short = 't', long = "topology", value_name = "FILE", conflicts_with_all = ["target", "host"])]
    pub topology: Option<PathBuf>,
    /// With --topology: the pool partners must reach (EdgePool2); SRV or A
    /// records pointing at another pool are reported as split brain.
    #[arg(long, value_name = "POOL", requires = "topology")]
    pub pool: Option<String>,
    /// A DNS server to ask directly, "address" or "address:port"; repeatable.
    #[arg(long = "dns-server", value_name = "ADDR")]
    pub dns_servers: Vec<String>,
    /// Connect to this host instead of following SRV: an IP address, or a
    /// name looked up with --dns-server.
    #[arg(long, value_name = "HOST")]
    pub host: Option<String>,
    /// The port with --host.
    #[arg(long, default_value_t = 5269, requires = "host", value_parser = clap::value_parser!(u16).range(1..))]
    pub port: u16,
    /// The XMPP domain for the stream's `to`, TLS SNI and the certificate
    /// check with --host [default: HOST when it is a name].
    #[arg(long, value_name = "DOMAIN", requires = "host")]
    pub domain: Option<String>,
    /// The `from` of the stream, as a partner's domain.
    #[arg(long, value_name = "NAME", default_value = DEFAULT_PARTNER)]
    pub partner_name: String,
    /// Accept a self-signed or private-CA certificate chain (reported as such).
    #[arg(long)]
    pub accept_untrusted_cert: bool,
    /// TCP connect timeout; past it the port counts as filtered [default: 5s].
    #[arg(long, value_name = "DURATION", value_parser = positive_duration)]
    pub connect_timeout: Option<Duration>,
    /// How long the server may stay silent after the stream header [default: 10s].
    #[arg(long, value_name = "DURATION", value_parser = positive_duration)]
    pub first_byte_timeout: Option<Duration>,
    /// The longest the whole exchange may take, connect to TLS [default: 30s].
    #[arg(long, value_name = "DURATION", value_parser = positive_duration)]
    pub exchange_timeout: Option<Duration>,
    /// How long each DNS server may take to answer [default: 5s].
    #[arg(long, value_name = "DURATION", value_parser = positive_duration)]
    pub dns_timeout: Option<Duration>,
    /// human: one line per finding; json: one JSON object (the report).
    #[arg(long, value_enum, default_value = "human")]
    pub output: Output,
}

fn positive_duration(text: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(text).map_err(|e| e.to_string())?;
    if d.is_zero() {
        return Err("must be greater than 0".into());
    }
    Ok(d)
}

/// What to probe, once the arguments are checked.
enum Plan {
    Domain,
    Addr(SocketAddr),
    Host(String, u16),
}

fn usage(message: impl std::fmt::Display) -> i32 {
    eprintln!("error: {message}");
    exit::USAGE
}

fn timeouts(args: &ProbeArgs, base: Timeouts) -> Timeouts {
    Timeouts {
        connect: args.connect_timeout.unwrap_or(base.connect),
        first_byte: args.first_byte_timeout.unwrap_or(base.first_byte),
        exchange: args.exchange_timeout.unwrap_or(base.exchange),
    }
}

fn parse_servers(args: &ProbeArgs) -> Result<Vec<SocketAddr>, String> {
    args.dns_servers
        .iter()
        .map(|s| {
            parse_server_addr(s, 53)
                .map_err(|why| format!("--dns-server '{}': {why}", names::printable(s)))
        })
        .collect()
}

/// `probe -t FILE [--pool POOL]`: the topology's domain, DNS and policy.
async fn run_topology(args: &ProbeArgs, path: &Path) -> i32 {
    let loaded = match topology::load(path) {
        Ok(l) => l,
        Err(e) => return usage(e),
    };
    let t = &loaded.topology;
    let pool = match &args.pool {
        Some(name) => match t.pool(name) {
            Some(p) => Some(p.pool),
            None => {
                let known: Vec<&str> = t.pools().map(|p| p.pool.name.as_str()).collect();
                return usage(format!(
                    "no pool named '{}' in the topology (pools: {})",
                    names::printable(name),
                    known.join(", ")
                ));
            }
        },
        None => None,
    };
    let mut opts = partner::options(t);
    opts.timeouts = timeouts(args, opts.timeouts);
    if args.accept_untrusted_cert {
        opts.accept_untrusted = true;
        opts.accept_flag = "--accept-untrusted-cert";
    }
    if args.partner_name != DEFAULT_PARTNER {
        opts.partner = args.partner_name.clone();
    }
    let lookup = if args.dns_servers.is_empty() {
        let mut l = partner::lookup(t);
        if let Some(d) = args.dns_timeout {
            l = DirectLookup::new(l.servers().to_vec(), d);
        }
        l
    } else {
        match parse_servers(args) {
            Ok(servers) => DirectLookup::new(
                servers,
                args.dns_timeout
                    .unwrap_or(Duration::from_secs(t.dns.timeout_secs)),
            ),
            Err(e) => return usage(e),
        }
    };
    let report = match pool {
        Some(pool) => partner::partner_report(t, pool, &lookup, &opts).await,
        None => probe::probe_domain(&lookup, &opts).await,
    };
    print(&report, args.output);
    if report.passed {
        exit::OK
    } else {
        exit::STEP_FAILED
    }
}

pub async fn run(args: ProbeArgs) -> i32 {
    if let Err(why) = names::check_fqdn(&args.partner_name) {
        return usage(format!(
            "--partner-name '{}': {why}",
            names::printable(&args.partner_name)
        ));
    }
    if let Some(path) = args.topology.clone() {
        return run_topology(&args, &path).await;
    }
    let mut servers = Vec::new();
    for s in &args.dns_servers {
        match parse_server_addr(s, 53) {
            Ok(a) => servers.push(a),
            Err(why) => return usage(format!("--dns-server '{}': {why}", names::printable(s))),
        }
    }
    let host_ip = args.host.as_deref().and_then(|h| h.parse::<IpAddr>().ok());
    let domain = match (&args.target, &args.domain, &args.host) {
        (Some(_), Some(_), _) => {
            return usage("give the domain once: as DOMAIN or as --domain");
        }
        (Some(d), None, _) | (None, Some(d), _) => d.clone(),
        (None, None, Some(h)) if host_ip.is_none() => h.clone(),
        (None, None, Some(_)) => {
            return usage(
                "--host is an address: say which XMPP domain to ask for with --domain (the stream's `to` and the name the certificate must cover)",
            );
        }
        (None, None, None) => {
            return usage(
                "say what to probe: a DOMAIN (with --dns-server), --host, or a topology with -t",
            );
        }
    };
    if let Err(why) = names::check_fqdn(&domain) {
        return usage(format!(
            "'{}' is not an XMPP domain: {why}",
            names::printable(&domain)
        ));
    }
    let plan = match (&args.host, host_ip) {
        (Some(_), Some(ip)) => Plan::Addr(SocketAddr::new(ip, args.port)),
        (Some(h), None) => {
            if let Err(why) = names::check_fqdn(h) {
                return usage(format!("--host '{}': {why}", names::printable(h)));
            }
            Plan::Host(h.clone(), args.port)
        }
        (None, _) => Plan::Domain,
    };
    if !matches!(plan, Plan::Addr(_)) && servers.is_empty() {
        return usage(
            "name lookups need --dns-server ADDR (the authoritative servers of the zone): edgefail never uses the system resolver",
        );
    }
    let opts = ProbeOptions {
        domain,
        partner: args.partner_name.clone(),
        timeouts: timeouts(&args, Timeouts::default()),
        accept_untrusted: args.accept_untrusted_cert,
        accept_flag: "--accept-untrusted-cert",
    };
    let lookup = DirectLookup::new(servers, args.dns_timeout.unwrap_or(Duration::from_secs(5)));
    let report = match plan {
        Plan::Domain => probe::probe_domain(&lookup, &opts).await,
        Plan::Addr(addr) => probe::probe_addr(addr, &addr.ip().to_string(), &opts).await,
        Plan::Host(host, port) => probe::probe_host(&lookup, &host, port, &opts).await,
    };
    print(&report, args.output);
    if report.passed {
        exit::OK
    } else {
        exit::STEP_FAILED
    }
}

fn print(report: &Report, output: Output) {
    match output {
        Output::Json => match serde_json::to_string(report) {
            Ok(line) => println!("{line}"),
            Err(e) => eprintln!("error: failed to write the report as JSON: {e}"),
        },
        Output::Human => {
            println!(
                "Probing {} as a partner's server would (from {}):",
                report.domain, report.partner
            );
            for line in report.lines() {
                println!("  {line}");
            }
            println!();
            let verdict = if report.passed { "PASS" } else { "FAIL" };
            println!("{verdict}: {}", report.summary());
        }
    }
}
