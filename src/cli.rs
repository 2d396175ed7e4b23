//! Command-line arguments (clap derive only; `app` turns them into a run).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const EXIT_CODES: &str = "Exit codes:
  0    done, or nothing to do
  1    a step failed, a check found a blocker, or a state could not be read
  2    usage or topology error; nothing contacted or changed
  3    a change was applied but did not hold before the deadline
  4    plan / --dry-run: changes are pending
  5    declined at the confirmation prompt; nothing changed
  6    another failover of this topology holds the lock
  7    --resume refused: no run to resume, or the topology or plan changed
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
    Probe(crate::probe_cmd::ProbeArgs),
    /// Rehearse the whole failover against a simulated estate on loopback
    /// (changes nothing real; no confirmation).
    Rehearse(crate::rehearse::RehearseArgs),
}

#[derive(Debug, Args)]
pub struct JournalArg {
    /// The journal file [default: $XDG_STATE_HOME/edgefail/<topology>-<hash>.jsonl];
    /// the lock file sits beside it (<journal>.lock).
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
