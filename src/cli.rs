//! Every command-line argument, as clap derive types and nothing else:
//! `settings` turns them (with the environment and the topology) into what
//! a command runs with.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::xmpp::DEFAULT_PARTNER;

const EXIT_CODES: &str = "Exit codes:
  0    done, or nothing to do
  1    a step failed, a check found a blocker, or a state could not be read
  2    usage or topology error; nothing contacted or changed
  3    a change was applied but did not hold before the deadline
  4    plan / --dry-run: changes are pending
  5    declined at the confirmation prompt; nothing changed
  6    another failover of this estate holds the lock or the lease in the zone
  7    --resume refused: no run to resume, or the topology or plan changed
  9    the journal could not be written; nothing further was changed
  101  edgefail crashed (a bug); the journal records it, --resume re-checks
  130  interrupted (Ctrl-C, SIGTERM)";

/// Fail over XMPP federation from one Lync Server 2013 / Skype for Business
/// Server 2015 Edge pool to another, step by step, reading the real state
/// before, during and after.
#[derive(Debug, Parser)]
#[command(name = "edgefail", version, after_help = EXIT_CODES)]
pub struct Cli {
    /// More log output on stderr (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Only errors on stderr.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a topology file and report every problem at once.
    Validate(TopologyArg),
    /// Read the real state and say what a failover would change (changes nothing).
    Plan(PlanArgs),
    /// Run the failover: the seven documented steps and a partner's-eye check,
    /// each checked, applied and verified in order.
    Failover(FailoverArgs),
    /// List past runs from the journal, or show one.
    History(HistoryArgs),
    /// Clear the lock record a crashed run left behind.
    Unlock(UnlockArgs),
    /// Check an XMPP domain or address as a federating partner's server would.
    Probe(ProbeArgs),
    /// Rehearse the whole failover against a simulated estate on loopback
    /// (changes nothing real; no confirmation).
    Rehearse(RehearseArgs),
}

#[derive(Debug, Args)]
pub struct JournalArg {
    /// The journal file [default: <state dir>/<domain>-<hash>.jsonl, named
    /// after the estate]; the lock is always the estate's
    /// (<state dir>/<domain>-<hash>.lock).
    #[arg(long, value_name = "PATH")]
    pub journal: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    #[command(flatten)]
    pub topology: TopologyArg,
    #[command(flatten)]
    pub journal: JournalArg,
    /// Show this run (its id, as listed) instead of the list.
    pub run: Option<String>,
    #[arg(long, value_enum, default_value = "human")]
    pub output: Output,
}

#[derive(Debug, Args)]
pub struct UnlockArgs {
    #[command(flatten)]
    pub topology: TopologyArg,
    #[command(flatten)]
    pub journal: JournalArg,
    /// Clear without asking.
    #[arg(long, short = 'y')]
    pub yes: bool,
}

#[derive(Debug, Args)]
pub struct TopologyArg {
    /// The topology file. Taken from -t, else $EDGEFAIL_TOPOLOGY, else ./edgefail.yaml.
    #[arg(
        short = 't',
        long = "topology",
        env = "EDGEFAIL_TOPOLOGY",
        default_value = "edgefail.yaml"
    )]
    pub path: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Human,
    Json,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub topology: TopologyArg,
    #[command(flatten)]
    pub journal: JournalArg,
    /// The failed pool XMPP federation leaves (EdgePool1). Required, except
    /// with --resume, which takes it from the journal.
    #[arg(long, value_name = "POOL")]
    pub from: Option<String>,
    /// The pool that takes XMPP federation over (EdgePool2). Required, except
    /// with --resume.
    #[arg(long, value_name = "POOL")]
    pub to: Option<String>,
    /// Leave a step out (id such as dns.a, or its number); repeatable. Only
    /// for steps done by other means.
    #[arg(long, value_name = "STEP")]
    pub skip: Vec<String>,
    /// human: readable report; json: JSON Lines events (see README).
    #[arg(long, value_enum, default_value = "human")]
    pub output: Output,
    /// How many Edge servers are worked on at once in steps 2 and 7.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub parallel: u16,
    /// Longest one remote command may run, in seconds [default: topology's timeouts.command_secs].
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    pub command_timeout: Option<u64>,
    /// How long each verify phase waits for its state to hold, in seconds [default: topology's timeouts.verify_secs].
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    pub verify_timeout: Option<u64>,
}

#[derive(Debug, Args)]
pub struct FailoverArgs {
    #[command(flatten)]
    pub plan: PlanArgs,
    /// Read the state and report what would change; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Apply without the interactive confirmation (needed without a terminal).
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Drain existing sessions before stopping services (Stop-CsWindowsService -Graceful).
    #[arg(long)]
    pub graceful: bool,
    /// Continue the last unfinished failover of this topology from its
    /// journal: verified steps are re-checked, not redone.
    #[arg(long, conflicts_with = "dry_run")]
    pub resume: bool,
}

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

const DRILLS: &str =
    "Drills (--inject, repeatable; SERVER: the target pool's first Edge server by default):
  stop-fails[:SERVER]     step 2 fails: Stop-CsWindowsService fails on SERVER
  start-fails[:SERVER]    step 7 fails: Start-CsWindowsService fails on SERVER
  service-hangs[:SERVER]  step 7 fails: Start-CsWindowsService hangs past the command timeout
  route-fails             step 3 fails: Set-CsSite cannot reach the Central Management Store
  dns-bad-key             step 4 fails: the DNS primary rejects the TSIG key (BADSIG)
  dns-concurrent-change   step 4 fails: the A record changed since the check (NXRRSET)
  port-filtered           the plan is blocked at step 6: the target pool's port drops connections
Each ends the run with exit 1, as the real run would. The fault is then cleared
and the run resumed in-process, as an operator would with
`edgefail failover --resume`; the exit code is the resumed run's.";

#[derive(Debug, clap::Args)]
#[command(after_help = DRILLS)]
pub struct RehearseArgs {
    #[command(flatten)]
    pub topology: TopologyArg,
    /// The failed pool XMPP federation leaves (EdgePool1).
    #[arg(long, value_name = "POOL")]
    pub from: String,
    /// The pool that takes XMPP federation over (EdgePool2).
    #[arg(long, value_name = "POOL")]
    pub to: String,
    /// Practise a failure (see the drills below); repeatable.
    #[arg(long, value_name = "FAULT")]
    pub inject: Vec<String>,
    /// How long each simulated command takes, in milliseconds (stopping and
    /// starting services and setting the route: four times that).
    #[arg(long, value_name = "MS", default_value_t = 300, value_parser = clap::value_parser!(u64).range(0..=10_000))]
    pub delay_ms: u64,
    /// human: readable report; json: JSON Lines events (see README).
    #[arg(long, value_enum, default_value = "human")]
    pub output: Output,
    /// How many Edge servers are worked on at once in steps 2 and 7.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub parallel: u16,
}
