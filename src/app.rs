//! The command layer: load the topology, resolve flags into a run, drive the
//! engine, ask for confirmation, and map everything to an exit code.

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;
use std::time::Duration;

use crate::cli::{Cli, Command, FailoverArgs, Output, PlanArgs};
use crate::context::{Ctx, RunOptions};
use crate::engine::{Engine, Finish, RunInfo};
use crate::event::{RunOutcome, Sink};
use crate::exit;
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
            } = args;
            let mode = Mode {
                dry_run,
                yes,
                graceful,
            };
            plan_or_failover(plan, Some(mode), cli.verbose > 0).await
        }
        Command::Probe(args) => crate::probe_cmd::run(args).await,
    }
}

struct Mode {
    dry_run: bool,
    yes: bool,
    graceful: bool,
}

fn error(message: impl std::fmt::Display) {
    eprintln!("error: {message}");
}

/// Print warnings and notes of a valid topology on stderr.
fn print_findings(loaded: &Loaded) {
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

async fn plan_or_failover(args: PlanArgs, mode: Option<Mode>, verbose: bool) -> i32 {
    let applying = mode.as_ref().is_some_and(|m| !m.dry_run);
    let skip = match parse_skips(&args.skip) {
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
    let t = &loaded.topology.timeouts;
    let opts = RunOptions {
        parallel: usize::from(args.parallel),
        graceful: mode.as_ref().is_some_and(|m| m.graceful),
        command_timeout: Duration::from_secs(args.command_timeout.unwrap_or(t.command_secs)),
        verify_timeout: Duration::from_secs(args.verify_timeout.unwrap_or(t.verify_secs)),
        poll: Duration::from_millis(t.poll_ms),
    };
    let ctx = match Ctx::new(loaded.topology.clone(), &args.from, &args.to, opts) {
        Ok(c) => c,
        Err(e) => {
            error(e);
            return exit::USAGE;
        }
    };
    if !skip.is_empty() {
        tracing::warn!("skipping {} step(s) by request", skip.len());
    }
    let mut sink: Box<dyn Sink> = match args.output {
        Output::Json => Box::new(report::Json::new(std::io::stdout())),
        Output::Human => Box::new(report::Human::new(
            std::io::stdout(),
            color_for_stdout(),
            verbose,
        )),
    };
    let mut engine = Engine::new(&ctx, steps::runbook(), skip, sink.as_mut());
    let topology_path = args.topology.path.display().to_string();
    engine.start(RunInfo {
        command: if mode.is_some() { "failover" } else { "plan" },
        dry_run: !applying,
        topology: &topology_path,
    });
    let plan = engine.plan().await;
    let (finish, message) = Engine::plan_finish(&plan);
    if !applying || finish.outcome != RunOutcome::ChangesPending {
        let message = if applying && finish.outcome == RunOutcome::Incomplete {
            "the plan is incomplete (see the steps above); nothing was changed".to_string()
        } else {
            message
        };
        let finish = if applying && finish.outcome == RunOutcome::NothingToDo {
            Finish {
                outcome: RunOutcome::NothingToDo,
                exit_code: exit::OK,
            }
        } else {
            finish
        };
        engine.finish(finish, message);
        return finish.exit_code;
    }
    if !mode.as_ref().is_some_and(|m| m.yes) && !confirm(&ctx) {
        let finish = Finish {
            outcome: RunOutcome::Declined,
            exit_code: exit::DECLINED,
        };
        engine.finish(finish, "not confirmed; nothing was changed".into());
        return finish.exit_code;
    }
    let (finish, message) = engine.execute().await;
    engine.finish(finish, message);
    finish.exit_code
}

/// Ask on the terminal; only "yes" proceeds.
fn confirm(ctx: &Ctx) -> bool {
    let mut err = std::io::stderr();
    let _ = write!(
        err,
        "\nMove XMPP federation from {} to {} as planned above? Type 'yes' to proceed: ",
        ctx.from().pool.name,
        ctx.to().pool.name
    );
    let _ = err.flush();
    let mut answer = String::new();
    if std::io::stdin().lock().read_line(&mut answer).is_err() {
        return false;
    }
    answer.trim().eq_ignore_ascii_case("yes")
}
