//! Every command-line argument, as clap derive types and nothing else:
//! `settings` turns them (with the environment and the topology) into what
//! a command runs with.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::xmpp::DEFAULT_PARTNER;

const MAIN_AFTER: &str = concat!(
    "Examples:
  edgefail validate -t contoso.yaml
  edgefail plan -t contoso.yaml --from EdgePool1 --to EdgePool2
  edgefail failover -t contoso.yaml --from EdgePool1 --to EdgePool2
  edgefail rehearse -t contoso.yaml --from EdgePool1 --to EdgePool2 --inject stop-fails

Durations (--command-timeout, --verify-timeout, probe's timeouts) are written
30s, 2m, 1m30s or 500ms; a plain number is seconds.

",
    "Exit codes:
  0    done, or nothing to do
  1    a step failed, a check found a blocker, or a state could not be read
  2    usage or topology error; nothing contacted or changed
  3    a change was applied but did not hold before the deadline
  4    plan / --dry-run: changes are pending
  5    declined at the confirmation prompt; nothing changed
  6    another failover of this estate holds the lock or the lease in the zone
  7    --resume refused: no run to resume, or the topology or plan changed
  8    the confirmed plan no longer matches: the plan file's topology changed
       or it expired, or a reading moved since the plan (stopped before it)
  9    the journal could not be written; nothing further was changed
  10   status: partners federate but the sources disagree (drift, split brain)
  11   status: federation down (partners cannot federate)
  12   status: a source could not be read
  101  edgefail crashed (a bug); the journal records it, --resume re-checks
  130  interrupted (Ctrl-C, SIGTERM)"
);

const STATUS_AFTER: &str = "Examples:
  edgefail status -t contoso.yaml
  edgefail status -t contoso.yaml --output json | jq .verdict

Exit codes (the first that applies):
  11  down: a partner's server cannot federate through the preferred SRV record
  10  split brain (no site's route names the pool DNS prefers, a route names a
      pool whose services are stopped, or the A record points at another pool
      than the preferred SRV record) or drift (another site's route, a lagging
      DNS server, stragglers)
  12  a source could not be read, and what could be read agrees
  0   consistent and federating
  2   usage or topology error";

const SHOW_AFTER: &str = "Examples:
  edgefail show failover-plan.json
  edgefail show failover-plan.json --output json

Exit codes:
  0    printed
  2    the file cannot be read, or is not a plan edgefail wrote (named with line:column)";

const REPORT_AFTER: &str = "Examples:
  edgefail report -t contoso.yaml
  edgefail report -t contoso.yaml 20260101T030000Z-1a2b -o CHG0012345.md

Exit codes:
  0    written
  1    the file could not be written
  2    the journal cannot be read, or no such run";

const EXPORT_AFTER: &str = "Examples:
  edgefail export powershell -t contoso.yaml --from EdgePool1 --to EdgePool2 -o failover.ps1

Exit codes:
  0    written
  1    the file could not be written
  2    usage or topology error (or a name the script could not quote safely)";

/// Fail over XMPP federation from one Lync Server 2013 / Skype for Business
/// Server 2015 Edge pool to another, step by step, reading the real state
/// before, during and after.
#[derive(Debug, Parser)]
#[command(name = "edgefail", version, after_help = MAIN_AFTER)]
pub struct Cli {
    /// More log output on stderr (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Only errors on stderr.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Human output: start each step line with the time (UTC) its phase started.
    #[arg(long, global = true)]
    pub timestamps: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a topology file and report every problem at once.
    #[command(after_help = VALIDATE_AFTER)]
    Validate(ValidateArgs),
    /// Read the real state and say what a failover would change (changes
    /// nothing); --out saves the plan for approval.
    #[command(after_help = PLAN_AFTER)]
    Plan(PlanCommand),
    /// Run the failover: the seven documented steps and a partner's-eye check,
    /// each checked, applied and verified in order.
    #[command(after_help = FAILOVER_AFTER)]
    Failover(FailoverArgs),
    /// List past runs from the journal, or show one.
    #[command(after_help = HISTORY_AFTER)]
    History(HistoryArgs),
    /// Clear the lock record a crashed run left behind.
    #[command(after_help = UNLOCK_AFTER)]
    Unlock(UnlockArgs),
    /// Check an XMPP domain or address as a federating partner's server would.
    #[command(after_help = PROBE_AFTER)]
    Probe(ProbeArgs),
    /// Rehearse the whole failover against a simulated estate on loopback
    /// (changes nothing real; no confirmation).
    #[command(after_help = REHEARSE_AFTER)]
    Rehearse(RehearseArgs),
    /// Where XMPP federation runs now, read from every source at once:
    /// routes, services, ports, DNS, a partner's eye (changes nothing).
    #[command(after_help = STATUS_AFTER)]
    Status(StatusArgs),
    /// Print a saved plan (`plan --out FILE`) as `plan` showed it.
    #[command(after_help = SHOW_AFTER)]
    Show(ShowArgs),
    /// Write a run's change record (Markdown) from the journal.
    #[command(after_help = REPORT_AFTER)]
    Report(ReportArgs),
    /// Write the runbook as a script to perform by hand.
    #[command(after_help = EXPORT_AFTER)]
    Export(ExportArgs),
    /// Print the JSON Schema of the event stream or of the topology file.
    #[command(after_help = SCHEMA_AFTER)]
    Schema(SchemaArgs),
    /// Print a shell completion script.
    #[command(after_help = COMPLETIONS_AFTER)]
    Completions(CompletionsArgs),
    /// Print the manual page (roff), for `man -l -` or a man directory.
    #[command(after_help = MAN_AFTER)]
    Man,
}

const VALIDATE_AFTER: &str = "Examples:
  edgefail validate -t contoso.yaml
  edgefail validate -t contoso.yaml --output json | jq 'select(.type == \"finding\")'

Exit codes:
  0    the topology is valid (warnings and notes are still shown)
  2    the file cannot be read or has errors (each with file:line:column)";

const PLAN_AFTER: &str = "Examples:
  edgefail plan -t contoso.yaml --from EdgePool1 --to EdgePool2
  edgefail plan -t contoso.yaml --from EdgePool1 --to EdgePool2 --skip dns.a --skip dns.srv
  edgefail plan -t contoso.yaml --from EdgePool1 --to EdgePool2 --output json
  edgefail plan -t contoso.yaml --from EdgePool1 --to EdgePool2 --out failover-plan.json

Exit codes:
  0    every step is already done: nothing to change
  1    a step could not be read or is blocked: the plan is incomplete
  2    usage or topology error; nothing contacted
  4    changes are pending (nothing was changed)
  130  interrupted (Ctrl-C, SIGTERM)";

const FAILOVER_AFTER: &str = "Examples:
  edgefail failover -t contoso.yaml --from EdgePool1 --to EdgePool2
  edgefail failover -t contoso.yaml --from EdgePool1 --to EdgePool2 --dry-run
  edgefail failover -t contoso.yaml --from EdgePool1 --to EdgePool2 --yes --output json
  edgefail failover -t contoso.yaml --resume
  edgefail failover -t contoso.yaml --plan failover-plan.json

Exit codes:
  0    the failover completed and every step was verified, or nothing to do
  1    a step failed or a check found a blocker; later steps were not run
  2    usage or topology error; nothing contacted or changed
  3    a change was applied but did not hold before the deadline
  4    --dry-run: changes are pending
  5    declined at the confirmation prompt; nothing changed
  6    another failover of this topology holds the lock
  7    --resume refused: no run to resume, or the topology or plan changed
  8    the confirmed plan no longer matches: the --plan file's topology
       changed or it expired, or a reading moved since the plan was confirmed
       (the run stopped before that step)
  130  interrupted (Ctrl-C, SIGTERM): `failover --resume` continues";

const HISTORY_AFTER: &str = "Examples:
  edgefail history -t contoso.yaml
  edgefail history -t contoso.yaml 20260101T030000Z-1a2b
  edgefail history -t contoso.yaml --output json | head -1

Exit codes:
  0    listed or shown
  2    the journal cannot be read, or no such run";

const UNLOCK_AFTER: &str = "Examples:
  edgefail unlock -t contoso.yaml
  edgefail unlock -t contoso.yaml --yes
  edgefail unlock -t contoso.yaml --yes --output json

Without a terminal to ask on, --yes is needed (exit 2 otherwise).

Exit codes:
  0    cleared, or there was nothing to clear
  1    the lease in the zone cannot be read (the TSIG key, the DNS server)
  2    usage error, the lock cannot be read, or no terminal and no --yes
  5    declined at the question; nothing cleared
  6    a running failover holds the lock or a live lease, or the record cannot be removed";

const PROBE_AFTER: &str = "Examples:
  edgefail probe contoso.com --dns-server 192.0.2.53
  edgefail probe --host 203.0.113.20 --domain contoso.com --connect-timeout 3s
  edgefail probe -t contoso.yaml --pool EdgePool2 --output json

The system resolver is never used: name lookups go only to --dns-server
addresses (or the topology's authoritative servers).

Exit codes:
  0    a partner's server could federate
  1    a check failed
  2    usage error";

const SCHEMA_AFTER: &str = "Examples:
  edgefail schema topology > edgefail.schema.json
  edgefail schema events

Exit codes:
  0    printed
  2    usage error";

const COMPLETIONS_AFTER: &str = "Examples:
  edgefail completions bash > ~/.local/share/bash-completion/completions/edgefail
  edgefail completions zsh > ~/.zfunc/_edgefail
  edgefail completions fish > ~/.config/fish/completions/edgefail.fish
  edgefail completions powershell >> $PROFILE

Exit codes:
  0    printed
  2    usage error";

const MAN_AFTER: &str = "Examples:
  edgefail man | man -l -
  edgefail man > /usr/local/share/man/man1/edgefail.1

Exit codes:
  0    printed
  2    usage error";

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub topology: TopologyArg,
    /// human: readings and a verdict; json: one JSON document (see README).
    #[arg(long, value_enum, default_value = "human")]
    pub output: Output,
    /// Longest one remote command may run (30s, 2m; 1s to 24h) [default: topology's timeouts.command_secs].
    #[arg(long, value_name = "DURATION", value_parser = whole_seconds)]
    pub command_timeout: Option<u64>,
}

#[derive(Debug, Args)]
pub struct PlanCommand {
    #[command(flatten)]
    pub plan: PlanArgs,
    /// Save the plan to FILE (JSON) for review and approval; apply it with
    /// `failover --plan FILE`. Written only when the plan is complete and
    /// has changes pending.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The saved plan.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    #[arg(long, value_enum, default_value = "human")]
    pub output: Output,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Markdown,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    #[command(flatten)]
    pub topology: TopologyArg,
    #[command(flatten)]
    pub journal: JournalArg,
    /// The run (its id, as `history` lists it) [default: the last failover
    /// or plan run in the journal].
    pub run: Option<String>,
    #[arg(long, value_enum, default_value = "markdown")]
    pub format: ReportFormat,
    /// Write to FILE instead of stdout.
    #[arg(short = 'o', long = "out", value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// One .ps1 for a Windows admin box.
    Powershell,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// What to write.
    #[arg(value_enum)]
    pub format: ExportFormat,
    #[command(flatten)]
    pub topology: TopologyArg,
    #[command(flatten)]
    pub pools: PoolsArg,
    /// Write to FILE instead of stdout.
    #[arg(short = 'o', long = "out", value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// `--from POOL --to POOL`, both required.
#[derive(Debug, Args)]
pub struct PoolsArg {
    /// The failed pool XMPP federation leaves (EdgePool1).
    #[arg(long, value_name = "POOL")]
    pub from: String,
    /// The pool that takes XMPP federation over (EdgePool2).
    #[arg(long, value_name = "POOL")]
    pub to: String,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub topology: TopologyArg,
    /// human: file:line:column lines; json: one `finding` event per problem
    /// and a closing `validated` event (see README).
    #[arg(long, value_enum, default_value = "human")]
    pub output: Output,
}

#[derive(Debug, Args)]
pub struct SchemaArgs {
    /// Which schema: the JSON Lines event stream, or the topology file.
    #[arg(value_enum)]
    pub what: SchemaKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SchemaKind {
    /// One line of `--output json` (any command).
    Events,
    /// The topology file (YAML), for editors.
    Topology,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
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
    /// Clear without asking (needed without a terminal).
    #[arg(long, short = 'y')]
    pub yes: bool,
    #[arg(long, value_enum, default_value = "human")]
    pub output: Output,
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
    /// The failed pool XMPP federation leaves (EdgePool1).
    #[arg(long, value_name = "POOL")]
    pub from: Option<String>,
    /// The pool that takes XMPP federation over (EdgePool2).
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
    /// Longest one remote command may run (30s, 2m; 1s to 24h) [default: topology's timeouts.command_secs].
    #[arg(long, value_name = "DURATION", value_parser = whole_seconds)]
    pub command_timeout: Option<u64>,
    /// How long each verify phase waits for its state to hold (5m; 1s to 24h) [default: topology's timeouts.verify_secs].
    #[arg(long, value_name = "DURATION", value_parser = whole_seconds)]
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
    /// Apply exactly this approved plan (`plan --out FILE`): refused when
    /// the topology changed or the plan is too old; a step whose reading
    /// moved since stops the run before it. No confirmation is asked.
    #[arg(long = "plan", value_name = "FILE", conflicts_with_all = ["dry_run", "resume"])]
    pub plan_file: Option<PathBuf>,
    /// With --plan: the oldest plan that may be applied (such as 8h, 2d) [default: 24h].
    #[arg(long, value_name = "DURATION", value_parser = plan_age, requires = "plan_file")]
    pub max_plan_age: Option<Duration>,
}

/// `probe DOMAIN --dns-server ADDR`, `probe --host H [--port P] [--domain D]`
/// or `probe -t FILE [--pool POOL]`.
#[derive(Debug, Args)]
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
    /// human: one line per finding; json: one JSON object (the report, `type` "probe").
    #[arg(long, value_enum, default_value = "human")]
    pub output: Output,
}

/// The longest any duration on the command line may be.
const MAX_DURATION: Duration = Duration::from_secs(24 * 60 * 60);

/// A duration as written on the command line: `30s`, `2m`, `1m30s`,
/// `500ms`, or a plain number of seconds; more than 0 and at most a day.
pub fn duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let d = match text.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs.min(MAX_DURATION.as_secs() + 1)),
        Err(_) => humantime::parse_duration(text)
            .map_err(|e| format!("{e} (write 30s, 2m, 1m30s, 500ms, or plain seconds)"))?,
    };
    if d.is_zero() {
        return Err("must be greater than 0".into());
    }
    if d > MAX_DURATION {
        return Err("must be at most 24h".into());
    }
    Ok(d)
}

/// A rehearsal's delay: a duration as above, 0 allowed, at most 10s.
fn delay(text: &str) -> Result<Duration, String> {
    if text.trim().parse::<u64>() == Ok(0)
        || humantime::parse_duration(text.trim()).is_ok_and(|d| d.is_zero())
    {
        return Ok(Duration::ZERO);
    }
    let d = duration(text)?;
    if d > Duration::from_secs(10) {
        return Err("must be at most 10s".into());
    }
    Ok(d)
}

fn positive_duration(text: &str) -> Result<Duration, String> {
    duration(text)
}

/// How old an approved plan may be: a duration as above, up to 30 days.
fn plan_age(text: &str) -> Result<Duration, String> {
    let d =
        humantime::parse_duration(text.trim()).map_err(|e| format!("{e} (write 8h, 2d, 90m)"))?;
    if d.is_zero() || d > Duration::from_secs(30 * 24 * 3600) {
        return Err("must be more than 0 and at most 30 days".into());
    }
    Ok(d)
}

/// A duration of at least one second, as whole seconds (rounded up).
fn whole_seconds(text: &str) -> Result<u64, String> {
    let d = duration(text)?;
    if d < Duration::from_secs(1) {
        return Err("must be at least 1s".into());
    }
    Ok(d.as_secs() + u64::from(d.subsec_nanos() > 0))
}

const REHEARSE_AFTER: &str = "Examples:
  edgefail rehearse -t contoso.yaml --from EdgePool1 --to EdgePool2
  edgefail rehearse -t contoso.yaml --from EdgePool1 --to EdgePool2 --inject dns-concurrent-change --status --report rehearsal.md

Drills (--inject, repeatable; SERVER: the target pool's first Edge server by default):
  stop-fails[:SERVER]     step 2 fails: Stop-CsWindowsService fails on SERVER
  start-fails[:SERVER]    step 7 fails: Start-CsWindowsService fails on SERVER
  service-hangs[:SERVER]  step 7 fails: Start-CsWindowsService hangs past the command timeout
  route-fails             step 3 fails: Set-CsSite cannot reach the Central Management Store
  dns-bad-key             the plan is blocked at step 4: the DNS primary rejects the TSIG key (BADSIG)
  dns-concurrent-change   step 4 fails: the A record changed since the check (NXRRSET)
  port-filtered           the plan is blocked at step 6: the target pool's port drops connections
Each ends the run with exit 1, as the real run would. The fault is then cleared
and the run resumed in-process, as an operator would with
`edgefail failover --resume`; the exit code is the resumed run's.

Exit codes:
  0    the (resumed) failover completed and every step was verified
  1    a step failed or the plan is blocked (port-filtered)
  2    usage or topology error
  3    a change did not hold before the deadline
  130  interrupted (Ctrl-C, SIGTERM)";

#[derive(Debug, clap::Args)]
pub struct RehearseArgs {
    #[command(flatten)]
    pub topology: TopologyArg,
    #[command(flatten)]
    pub pools: PoolsArg,
    /// Practise a failure (see the drills below); repeatable.
    #[arg(long, value_name = "FAULT")]
    pub inject: Vec<String>,
    /// How long each simulated command takes (300ms, 1s; 0 to 10s; stopping
    /// and starting services and setting the route: four times that)
    /// [default: 300ms].
    #[arg(long, value_name = "DURATION", value_parser = delay)]
    pub delay: Option<Duration>,
    /// The same in milliseconds, as earlier versions took it.
    #[arg(long, value_name = "MS", hide = true, conflicts_with = "delay", value_parser = clap::value_parser!(u64).range(0..=10_000))]
    pub delay_ms: Option<u64>,
    /// human: readable report; json: JSON Lines events (see README).
    #[arg(long, value_enum, default_value = "human")]
    pub output: Output,
    /// How many Edge servers are worked on at once in steps 2 and 7.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub parallel: u16,
    /// Read the simulated estate as `edgefail status` would, after each run
    /// of the rehearsal (after a drill's failure, before its resume, and at
    /// the end); the exit code stays the run's.
    #[arg(long)]
    pub status: bool,
    /// Write the rehearsal's change record (Markdown, as `edgefail report`
    /// writes it; every run, the drill's and its resume) to FILE.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
}
