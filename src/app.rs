//! The command layer: load the topology, resolve flags into a run, drive the
//! engine, ask for confirmation, and map everything to an exit code.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cancel::Cancel;
use crate::cli::{
    Cli, Command, FailoverArgs, HistoryArgs, JournalArg, Output, PlanArgs, UnlockArgs,
};
use crate::context::{Ctx, RunOptions};
use crate::engine::{Engine, Finish, RunInfo};
use crate::event::{self, Event, RunOutcome, Sink, Sinks};
use crate::exit;
use crate::journal::{self, Journal, Left};
use crate::lock::{self, Lock, LockError};
use crate::report;
use crate::steps::{self, StepId};
use crate::topology::{self, Loaded, Severity};

pub async fn run(cli: Cli) -> i32 {
    match cli.command {
        Command::Validate(t) => validate(&t.path),
        Command::Plan(args) => plan_or_failover(args, None, cli.verbose > 0).await,
        Command::Failover(args) => {
            let FailoverArgs {
                plan,
                dry_run,
                yes,
                graceful,
                resume,
            } = args;
            let mode = Mode {
                dry_run,
                yes,
                graceful,
                resume,
            };
            plan_or_failover(plan, Some(mode), cli.verbose > 0).await
        }
        Command::History(args) => history(args),
        Command::Unlock(args) => unlock(args),
        Command::Probe(args) => crate::probe_cmd::run(args).await,
        Command::Rehearse(args) => crate::rehearse::run(args, cli.verbose > 0).await,
    }
}

struct Mode {
    dry_run: bool,
    yes: bool,
    graceful: bool,
    resume: bool,
}

pub(crate) fn error(message: impl std::fmt::Display) {
    eprintln!("error: {message}");
}

/// Print warnings and notes of a valid topology on stderr.
pub(crate) fn print_findings(loaded: &Loaded) {
    if !loaded.report.diagnostics.is_empty() {
        eprint!("{}", loaded.report);
    }
}

fn validate(path: &Path) -> i32 {
    match topology::load(path) {
        Ok(loaded) => {
            print_findings(&loaded);
            let t = &loaded.topology;
            let pools = t.pools().count();
            let servers: usize = t.pools().map(|p| p.pool.servers.len()).sum();
            let warnings = loaded
                .report
                .diagnostics
                .iter()
                .filter(|d| d.severity == Severity::Warning)
                .count();
            println!(
                "{}: valid ({} site(s), {pools} pool(s), {servers} Edge server(s), {warnings} warning(s))",
                path.display(),
                t.sites.len()
            );
            exit::OK
        }
        Err(e) => {
            error(e);
            exit::USAGE
        }
    }
}

fn parse_skips(skip: &[String]) -> Result<Vec<StepId>, String> {
    skip.iter()
        .map(|s| {
            StepId::parse(s).ok_or_else(|| {
                let ids: Vec<&str> = StepId::ALL.iter().map(|i| i.as_str()).collect();
                format!(
                    "--skip {}: no such step (steps: {})",
                    crate::names::printable(s),
                    ids.join(", ")
                )
            })
        })
        .collect()
}

fn color_for_stdout() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

fn journal_path(topology: &Path, arg: &JournalArg) -> PathBuf {
    arg.journal
        .clone()
        .unwrap_or_else(|| journal::default_path(topology))
}

pub(crate) fn new_run_id() -> String {
    let stamp = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let compact: String = stamp
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    format!("{compact}-{:x}", std::process::id())
}

/// What `--resume` continues.
pub(crate) struct Resume {
    run_id: String,
    plan_sha256: String,
    left: HashMap<StepId, Left>,
}

/// Find the run to resume, or say exactly why not.
pub(crate) fn find_resume(
    path: &Path,
    topology_text: &str,
    args: &mut PlanArgs,
) -> Result<(Resume, Vec<StepId>), String> {
    let contents = journal::read(path).map_err(|e| e.to_string())?;
    for p in &contents.problems {
        eprintln!("warning: {p}");
    }
    let Some(run) = contents.runs.iter().rev().find(|r| r.is_apply_run()) else {
        return Err(format!(
            "nothing to resume: the journal {} has no failover of this topology",
            path.display()
        ));
    };
    if !run.is_unfinished() {
        let (outcome, _, message) = run.finished().unwrap_or((RunOutcome::Completed, 0, ""));
        return Err(format!(
            "nothing to resume: the last failover (run {}) ended {:?}: {message}",
            run.run_id, outcome
        ));
    }
    let Some(Event::RunStarted {
        from,
        to,
        topology_sha256,
        plan_sha256,
        skipped,
        ..
    }) = run.started()
    else {
        return Err(format!(
            "run {} has no start record in the journal",
            run.run_id
        ));
    };
    let now = journal::sha256_hex(topology_text.as_bytes());
    if &now != topology_sha256 {
        return Err(format!(
            "the topology changed since run {} (sha256 {} then, {} now): resuming could follow a different plan; review `edgefail plan` and start a new failover instead",
            run.run_id,
            &topology_sha256[..topology_sha256.len().min(12)],
            &now[..12]
        ));
    }
    for (flag, given, was) in [("--from", &args.from, from), ("--to", &args.to, to)] {
        if let Some(g) = given
            && !g.eq_ignore_ascii_case(was)
        {
            return Err(format!(
                "{flag} {} differs from run {} ({flag} {was}); resume continues that run as it was",
                crate::names::printable(g),
                run.run_id
            ));
        }
    }
    args.from = Some(from.clone());
    args.to = Some(to.clone());
    let left = journal::left_by(&contents, run);
    Ok((
        Resume {
            run_id: run.run_id.clone(),
            plan_sha256: plan_sha256.clone(),
            left,
        },
        skipped.clone(),
    ))
}

/// First Ctrl-C / SIGTERM: finish the command in flight, then stop. Second:
/// journal the abandonment and exit at once.
pub(crate) fn watch_signals(cancel: Cancel, journal: Journal) {
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut int), Ok(mut term)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            tracing::warn!("cannot watch for Ctrl-C / SIGTERM");
            return;
        };
        loop {
            let name = tokio::select! {
                _ = int.recv() => "Ctrl-C",
                _ = term.recv() => "SIGTERM",
            };
            if !cancel.is_set() {
                cancel.trigger();
                eprintln!(
                    "\n{name}: stopping after the command in flight finishes or times out; press Ctrl-C again to abandon at once"
                );
                continue;
            }
            let message = format!(
                "abandoned at once by a second {name}; local commands in flight were ended, a remote one may still complete on the far side; `edgefail failover --resume` re-checks every step"
            );
            journal.append(&Event::RunFinished {
                outcome: RunOutcome::Interrupted,
                exit_code: exit::INTERRUPTED,
                message: message.clone(),
                counts: Default::default(),
                duration_ms: 0,
            });
            eprintln!("\n{message}");
            crate::transport::end_in_flight();
            std::process::exit(exit::INTERRUPTED);
        }
    });
}

async fn plan_or_failover(mut args: PlanArgs, mode: Option<Mode>, verbose: bool) -> i32 {
    let applying = mode.as_ref().is_some_and(|m| !m.dry_run);
    let resuming = mode.as_ref().is_some_and(|m| m.resume);
    let mut skip = match parse_skips(&args.skip) {
        Ok(s) => s,
        Err(e) => {
            error(e);
            return exit::USAGE;
        }
    };
    // Refuse before touching anything when nobody can confirm.
    if applying && !mode.as_ref().is_some_and(|m| m.yes) && !std::io::stdin().is_terminal() {
        error(
            "no terminal to confirm on: pass --yes to apply without the interactive confirmation (or --dry-run to only look)",
        );
        return exit::USAGE;
    }
    let loaded = match topology::load(&args.topology.path) {
        Ok(l) => l,
        Err(e) => {
            error(e);
            return exit::USAGE;
        }
    };
    print_findings(&loaded);
    let journal_file = journal_path(&args.topology.path, &args.journal);
    let resume = if resuming {
        match find_resume(&journal_file, &loaded.text, &mut args) {
            Ok((r, skipped)) => {
                if args.skip.is_empty() {
                    skip = skipped;
                }
                Some(r)
            }
            Err(e) => {
                error(format!("cannot resume: {e}"));
                return exit::RESUME_REFUSED;
            }
        }
    } else {
        None
    };
    let (Some(from), Some(to)) = (args.from.clone(), args.to.clone()) else {
        error("--from and --to are required (name the failed pool and the pool that takes over)");
        return exit::USAGE;
    };
    let t = &loaded.topology.timeouts;
    let opts = RunOptions {
        parallel: usize::from(args.parallel),
        graceful: mode.as_ref().is_some_and(|m| m.graceful),
        command_timeout: Duration::from_secs(args.command_timeout.unwrap_or(t.command_secs)),
        verify_timeout: Duration::from_secs(args.verify_timeout.unwrap_or(t.verify_secs)),
        poll: Duration::from_millis(t.poll_ms),
    };
    let ctx = match Ctx::new(loaded.topology.clone(), &from, &to, opts) {
        Ok(c) => c,
        Err(e) => {
            error(e);
            return exit::USAGE;
        }
    };
    if !skip.is_empty() {
        tracing::warn!("skipping {} step(s) by request", skip.len());
    }

    let run_id = new_run_id();
    let (user, host) = lock::whoami();
    let _lock = if applying {
        let holder = lock::Holder {
            pid: std::process::id(),
            host: host.clone(),
            user: user.clone(),
            since: event::now(),
            run_id: run_id.clone(),
        };
        let path = Lock::path_for(&journal_file);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            let _ = std::fs::create_dir_all(dir);
        }
        match Lock::acquire(&path, holder) {
            Ok(lock) => {
                if let Some(stale) = &lock.stale {
                    eprintln!(
                        "warning: a previous run left its lock behind without finishing cleanly: {stale}{}; `edgefail history` shows what it did, `edgefail failover --resume` continues it",
                        if stale.host == host && !lock::pid_alive(stale.pid) {
                            " (that process is gone)"
                        } else {
                            ""
                        }
                    );
                }
                Some(lock)
            }
            Err(e @ LockError::Held { .. }) => {
                error(e);
                return exit::LOCKED;
            }
            Err(e) => {
                error(e);
                return exit::USAGE;
            }
        }
    } else {
        None
    };
    let journal = match Journal::open(&journal_file, &run_id) {
        Ok(j) => j,
        Err(e) => {
            error(e);
            return exit::USAGE;
        }
    };
    watch_signals(ctx.cancel.clone(), journal.clone());

    let topology_path = args.topology.path.display().to_string();
    drive(Drive {
        ctx: &ctx,
        skip,
        journal,
        output: args.output,
        verbose,
        failover: mode.is_some(),
        applying,
        ask: !mode.as_ref().is_some_and(|m| m.yes),
        run_id: &run_id,
        operator: &format!("{user}@{host}"),
        topology_path: &topology_path,
        topology_text: &loaded.text,
        resume,
    })
    .await
}

/// A run whose context, journal and resume are settled: what `drive` needs.
pub(crate) struct Drive<'a> {
    pub ctx: &'a Ctx,
    pub skip: Vec<StepId>,
    pub journal: Journal,
    pub output: Output,
    pub verbose: bool,
    /// `failover` (not `plan`), dry run or not.
    pub failover: bool,
    pub applying: bool,
    /// Ask for confirmation before applying.
    pub ask: bool,
    pub run_id: &'a str,
    pub operator: &'a str,
    pub topology_path: &'a str,
    /// The topology file's bytes, for its checksum.
    pub topology_text: &'a str,
    pub resume: Option<Resume>,
}

/// Plan, confirm and execute through the engine, reporting on stdout and
/// into the journal; the exit code.
pub(crate) async fn drive(d: Drive<'_>) -> i32 {
    let Drive {
        ctx,
        skip,
        journal,
        output,
        verbose,
        failover,
        applying,
        ask,
        run_id,
        operator,
        topology_path,
        topology_text,
        resume,
    } = d;
    let reporter: Box<dyn Sink> = match output {
        Output::Json => Box::new(report::Json::new(std::io::stdout())),
        Output::Human => Box::new(report::Human::new(
            std::io::stdout(),
            color_for_stdout(),
            verbose,
        )),
    };
    let mut sinks = Sinks(vec![reporter, Box::new(journal.clone())]);
    let mut engine = Engine::new(ctx, steps::runbook(), skip, &mut sinks);
    if let Some(r) = &resume
        && engine.plan_sha256() != r.plan_sha256
    {
        error(format!(
            "cannot resume: run {} followed a different runbook (steps or --skip differ); start a new failover instead",
            r.run_id
        ));
        return exit::RESUME_REFUSED;
    }
    let topology_sha256 = journal::sha256_hex(topology_text.as_bytes());
    engine.start(RunInfo {
        run_id,
        command: if failover { "failover" } else { "plan" },
        dry_run: !applying,
        topology: topology_path,
        topology_sha256: &topology_sha256,
        operator,
        resumes: resume.as_ref().map(|r| r.run_id.as_str()),
    });
    let left = resume.map(|r| r.left).unwrap_or_default();
    let plan = engine.plan(&left).await;
    let (finish, message) = engine.plan_finish(&plan);
    if !applying || finish.outcome != RunOutcome::ChangesPending {
        let message = if applying && finish.outcome == RunOutcome::Incomplete {
            "the plan is incomplete (see the steps above); nothing was changed".to_string()
        } else {
            message
        };
        engine.finish(finish, message);
        return finish.exit_code;
    }
    if ask && !confirm(ctx) {
        let finish = Finish {
            outcome: RunOutcome::Declined,
            exit_code: exit::DECLINED,
        };
        engine.finish(finish, "not confirmed; nothing was changed".into());
        return finish.exit_code;
    }
    let (finish, message) = engine.execute(&left).await;
    engine.finish(finish, message);
    finish.exit_code
}

fn history(args: HistoryArgs) -> i32 {
    let path = journal_path(&args.topology.path, &args.journal);
    let contents = match journal::read(&path) {
        Ok(c) => c,
        Err(e) => {
            error(e);
            return exit::USAGE;
        }
    };
    for p in &contents.problems {
        eprintln!("warning: {p}");
    }
    let Some(id) = args.run else {
        if args.output == Output::Human {
            println!("journal: {}", path.display());
            if contents.runs.is_empty() {
                println!("no runs recorded");
            }
        }
        for run in &contents.runs {
            let Some(Event::RunStarted {
                command,
                dry_run,
                from,
                to,
                operator,
                at,
                resumes,
                ..
            }) = run.started()
            else {
                continue;
            };
            let outcome = run.finished();
            if args.output == Output::Json {
                let line = serde_json::json!({
                    "run_id": run.run_id, "command": command, "dry_run": dry_run,
                    "from": from, "to": to, "operator": operator, "at": at,
                    "resumes": resumes,
                    "outcome": outcome.map(|o| o.0),
                    "exit_code": outcome.map(|o| o.1),
                    "unfinished": run.is_unfinished(),
                });
                println!("{line}");
                continue;
            }
            let kind = match (command.as_str(), dry_run) {
                ("failover", false) if resumes.is_some() => "failover --resume",
                ("failover", false) => "failover",
                ("failover", true) => "failover --dry-run",
                _ => "plan",
            };
            let end = match outcome {
                Some((o, code, _)) => format!(
                    "{} (exit {code})",
                    serde_json::to_value(o)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default()
                ),
                None => "unfinished (no end recorded)".into(),
            };
            let resumable = if run.is_unfinished() {
                "  <- resumable"
            } else {
                ""
            };
            println!(
                "{}  {at}  {operator}  {kind:<18}  {from} -> {to}  {end}{resumable}",
                run.run_id
            );
        }
        return exit::OK;
    };
    let Some(run) = contents.run(&id) else {
        let ids: Vec<&str> = contents.runs.iter().map(|r| r.run_id.as_str()).collect();
        error(format!(
            "no run {} in {} (runs: {})",
            crate::names::printable(&id),
            path.display(),
            if ids.is_empty() {
                "none".to_string()
            } else {
                ids.join(", ")
            }
        ));
        return exit::USAGE;
    };
    let mut sink: Box<dyn Sink> = match args.output {
        Output::Json => Box::new(report::Json::new(std::io::stdout())),
        Output::Human => Box::new(report::Human::new(
            std::io::stdout(),
            color_for_stdout(),
            true,
        )),
    };
    for e in &run.events {
        sink.event(e);
    }
    if run.finished().is_none() && args.output == Output::Human {
        println!(
            "\n(no end recorded: the run was cut off; `edgefail failover --resume` continues it)"
        );
    }
    exit::OK
}

fn unlock(args: UnlockArgs) -> i32 {
    let path = Lock::path_for(&journal_path(&args.topology.path, &args.journal));
    match Lock::inspect(&path) {
        Err(e @ LockError::Held { .. }) => {
            error(format!("{e}; it is in use, not stale: nothing to break"));
            exit::LOCKED
        }
        Err(e) => {
            error(e);
            exit::USAGE
        }
        Ok(None) => {
            println!("no lock record at {}: nothing to unlock", path.display());
            exit::OK
        }
        Ok(Some(holder)) => {
            let (_, host) = lock::whoami();
            let gone = holder.host == host && !lock::pid_alive(holder.pid);
            println!(
                "{} holds a record left by {holder}{}",
                path.display(),
                if gone { " (that process is gone)" } else { "" }
            );
            if !args.yes {
                if !std::io::stdin().is_terminal() {
                    error("no terminal to confirm on: pass --yes to clear it");
                    return exit::USAGE;
                }
                if !crate::ask::ask("Clear it? Type 'yes' to proceed: ", "yes") {
                    println!("left as it was");
                    return exit::DECLINED;
                }
            }
            match Lock::clear(&path) {
                Ok(()) => {
                    println!("cleared");
                    exit::OK
                }
                Err(e) => {
                    error(e);
                    exit::LOCKED
                }
            }
        }
    }
}

/// Ask on the terminal; only "yes" proceeds.
fn confirm(ctx: &Ctx) -> bool {
    crate::ask::ask(
        &format!(
            "\nMove XMPP federation from {} to {} as planned above? Type 'yes' to proceed: ",
            ctx.from().pool.name,
            ctx.to().pool.name
        ),
        "yes",
    )
}
