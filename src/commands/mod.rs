//! One file per subcommand. Each takes its clap arguments, resolves them
//! through `settings`, does its work through the engine and the edges, shows
//! everything through the reporters, and returns an [`Exit`] (or a
//! [`Failed`] saying why not), which `main` maps to the exit code.

mod change_report;
mod completions;
mod export;
mod failover;
mod history;
mod plan;
mod probe;
mod rehearse;
pub mod schema;
mod show;
mod status;
mod unlock;
mod validate;

use std::sync::Arc;

use crate::cancel::Cancel;
use crate::cli::{Cli, Command, Output};
use crate::dns::lease::{LeaseError, ZoneLease};
use crate::engine::resume::Resume;
use crate::engine::runner::{self, Mode};
use crate::event::{Emitter, Event, Level, Origin, RunOutcome, Sinks};
use crate::exit::{self, CommandResult, Exit, OrExit};
use crate::journal::{self, Journal};
use crate::lock::{self, Lock, LockError};
use crate::operator::Operator;
use crate::platform;
use crate::report;
use crate::settings::{self, RunSettings};
use crate::topology::{DnsMode, LockMode};

/// Run the command the command line names. Under `--output json` a
/// command that fails says so last on stdout, as an `error` event with its
/// exit code (and on stderr, as always).
pub async fn run(cli: Cli) -> CommandResult {
    let verbose = cli.verbose > 0;
    report::set_timestamps(cli.timestamps);
    let output = output_of(&cli.command);
    let result = match cli.command {
        Command::Validate(args) => {
            report::end_on_closed_stdout();
            validate::run(&args)
        }
        Command::Plan(args) => plan::run(args, verbose).await,
        Command::Failover(args) => failover::run(args, verbose).await,
        Command::History(args) => {
            report::end_on_closed_stdout();
            history::run(args)
        }
        Command::Unlock(args) => unlock::run(args).await,
        Command::Probe(args) => probe::run(args).await,
        Command::Rehearse(args) => rehearse::run(args, verbose).await,
        Command::Schema(args) => {
            report::end_on_closed_stdout();
            schema::run(&args)
        }
        Command::Completions(args) => {
            report::end_on_closed_stdout();
            completions::completions(&args)
        }
        Command::Man => {
            report::end_on_closed_stdout();
            completions::man()
        }
        Command::Status(args) => status::run(args).await,
        Command::Show(args) => {
            report::end_on_closed_stdout();
            show::run(args)
        }
        Command::Report(args) => {
            report::end_on_closed_stdout();
            change_report::run(args)
        }
        Command::Export(args) => {
            report::end_on_closed_stdout();
            export::run(args)
        }
    };
    if let (Err(failed), Output::Json) = (&result, output) {
        report::reporter(Output::Json, false).event(&report::error_event(failed));
    }
    result
}

/// The output a command was asked for (human where it has no choice).
fn output_of(command: &Command) -> Output {
    match command {
        Command::Validate(a) => a.output,
        Command::Plan(a) => a.plan.output,
        Command::Status(a) => a.output,
        Command::Show(a) => a.output,
        Command::Failover(a) => a.plan.output,
        Command::History(a) => a.output,
        Command::Probe(a) => a.output,
        Command::Rehearse(a) => a.output,
        Command::Unlock(a) => a.output,
        Command::Report(_)
        | Command::Export(_)
        | Command::Schema(_)
        | Command::Completions(_)
        | Command::Man => Output::Human,
    }
}

/// The event stream of a command: its reporter on stdout (stderr for
/// warnings and prompts), and later the journal.
fn events(output: Output, verbose: bool) -> Emitter {
    Emitter::new(Sinks(vec![report::reporter(output, verbose)]))
}

fn warning(origin: Origin, message: String) -> Event {
    Event::Warning {
        origin,
        level: Level::Warning,
        message,
        at: None,
    }
}

/// A new run id: the start time and this process, and a sequence number
/// from the second run of one process on (a rehearsal's resume can start
/// within the same second as the run it resumes).
fn new_run_id() -> String {
    static RUNS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let stamp = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let compact: String = stamp
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    match RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed) {
        0 => format!("{compact}-{:x}", std::process::id()),
        n => format!("{compact}-{:x}-{}", std::process::id(), n + 1),
    }
}

/// user@host of this process.
fn operator_name() -> String {
    let (user, host) = platform::whoami();
    format!("{user}@{host}")
}

/// First Ctrl-C / SIGTERM: finish the command in flight, then stop (at the
/// confirmation prompt, or while planning: stop at once, nothing was
/// changed). Second: journal the abandonment and exit at once.
fn watch_interrupts(cancel: Cancel, journal: Journal) {
    tokio::spawn(async move {
        let Ok(mut interrupts) = crate::platform::Interrupts::new() else {
            tracing::warn!("cannot watch for Ctrl-C / SIGTERM");
            return;
        };
        loop {
            let name = interrupts.next().await;
            let changing = cancel.changing();
            if !cancel.is_set() {
                cancel.trigger();
                report::notice(&if changing {
                    format!(
                        "\n{name}: stopping after the command in flight finishes or times out; press Ctrl-C again to abandon at once"
                    )
                } else {
                    format!("\n{name}: stopping; nothing has been changed")
                });
                continue;
            }
            let (outcome, exit, message) = if changing {
                (
                    RunOutcome::Interrupted,
                    Exit::Interrupted,
                    format!(
                        "abandoned at once by a second {name}; local commands in flight were ended, a remote one may still complete on the far side; `edgefail failover --resume` re-checks every step"
                    ),
                )
            } else {
                // Only reads were under way: nothing to resume.
                (
                    RunOutcome::Declined,
                    Exit::Declined,
                    format!("abandoned by a second {name} before anything was changed"),
                )
            };
            let _ = journal.append(&Event::RunFinished {
                outcome,
                exit_code: exit.code(),
                message: message.clone(),
                counts: Default::default(),
                duration_ms: 0,
                estate: None,
            });
            report::notice(&format!("\n{message}"));
            crate::transport::end_in_flight();
            std::process::exit(exit.code());
        }
    });
}

/// What a plan or failover does beyond the ordinary run.
#[derive(Default)]
struct Extras {
    /// `failover --plan FILE`: the approved plan to apply exactly.
    approved: Option<runner::Approved>,
    /// `plan --out FILE`: where to save the plan.
    out: Option<std::path::PathBuf>,
}

/// Every event of a run, kept for the plan file.
#[derive(Clone, Default)]
struct Kept(Arc<std::sync::Mutex<Vec<Event>>>);

impl crate::event::Sink for Kept {
    fn event(&mut self, event: &Event) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(event.clone());
    }
}

/// What a crash (a panic) can still record and say: the run's journal.
struct CrashRecord {
    journal: Journal,
    run_id: String,
    topology: String,
}

static CRASH: std::sync::Mutex<Option<CrashRecord>> = std::sync::Mutex::new(None);

/// On a panic anywhere (a bug): journal the crash so the run shows as
/// unfinished and resumable, print what the journal says was done and the
/// resume command, end local commands in flight, and exit 101. Best
/// effort: nothing here may panic again.
pub fn install_panic_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default(info);
        let record = match CRASH.try_lock() {
            Ok(mut guard) => guard.take(),
            Err(_) => None,
        };
        if let Some(r) = record {
            let message = format!(
                "edgefail crashed (a bug: {}); the state of the estate was not read; `edgefail failover --resume` re-checks every step",
                crate::names::printable(&info.to_string())
            );
            let _ = r.journal.append(&Event::RunFinished {
                outcome: RunOutcome::Failed,
                exit_code: Exit::Crashed.code(),
                message: message.clone(),
                counts: Default::default(),
                duration_ms: 0,
                estate: None,
            });
            let done: Vec<crate::steps::StepId> = journal::read(&r.journal.path)
                .ok()
                .and_then(|c| {
                    let run = c.run(&r.run_id)?;
                    let left = journal::left_by(&c, run);
                    let mut done: Vec<_> = left
                        .into_iter()
                        .filter(|(_, l)| matches!(l, journal::Left::Verified { .. }))
                        .map(|(s, _)| s)
                        .collect();
                    done.sort_by_key(|s| s.number());
                    Some(done)
                })
                .unwrap_or_default();
            report::notice(&format!(
                "\nFAILED: {message}{}",
                report::footer::render_crash(
                    &done,
                    &format!("edgefail failover --resume -t {}", r.topology)
                )
            ));
        }
        crate::transport::end_in_flight();
        std::process::exit(Exit::Crashed.code());
    }));
}

/// Plan or failover: from settled settings to the runner's finish.
async fn run_plan_or_failover(
    mut settings: RunSettings,
    mode: Mode,
    resuming: bool,
    verbose: bool,
    operator: Arc<dyn Operator>,
    extras: Extras,
) -> CommandResult {
    let events = events(settings.output, verbose);
    let kept = Kept::default();
    if extras.out.is_some() {
        events.add(Box::new(kept.clone()));
    }
    for finding in settings::findings(&settings.loaded) {
        events.emit(&finding);
    }
    let resume: Option<Resume> = if resuming {
        let (found, problems) = settings.resume();
        for p in problems {
            events.emit(&warning(Origin::Journal, p));
        }
        Some(found.or_exit(Exit::ResumeRefused)?)
    } else {
        None
    };
    // Once the skips are settled (a resume takes them from the journal).
    if matches!(mode, Mode::Apply { .. }) {
        settings.refuse_manual_dns_without_terminal(operator.present())?;
    }
    let ctx = settings
        .ctx()?
        .with_events(events.clone())
        .with_operator(operator);
    // run_started lists the skipped steps, and the reporters show them:
    // this is only a log line.
    if !settings.skip.is_empty() {
        tracing::warn!("skipping {} step(s) by request", settings.skip.len());
    }

    let run_id = new_run_id();
    let (user, host) = platform::whoami();
    let operator_name = format!("{user}@{host}");
    let _lock = if matches!(mode, Mode::Apply { .. }) {
        Some(take_lock(&settings, &run_id, (user, host), &events)?)
    } else {
        None
    };
    let journal = Journal::open(&settings.journal, &run_id).or_exit(Exit::JournalUnwritable)?;
    events.add(Box::new(journal.clone()));
    if let Ok(mut crash) = CRASH.lock() {
        *crash = Some(CrashRecord {
            journal: journal.clone(),
            run_id: run_id.clone(),
            topology: crate::names::printable(&settings.topology_path.display().to_string()),
        });
    }
    watch_interrupts(ctx.cancel.clone(), journal);

    let topology_path = settings.topology_path.display().to_string();
    let lease = if matches!(mode, Mode::Apply { .. }) {
        take_lease(
            &settings.loaded.topology,
            &settings.skip,
            &run_id,
            resume.as_ref().map(|r| r.run_id.as_str()),
        )
        .await?
    } else {
        None
    };
    let finish = runner::run(runner::Run {
        ctx: &ctx,
        mode,
        runbook: crate::steps::runbook(),
        skip: settings.skip.clone(),
        run_id: &run_id,
        operator: &operator_name,
        topology_path: &topology_path,
        topology_text: &settings.loaded.text,
        resume,
        approved: extras.approved,
    })
    .await;
    // Released whatever the run's end, refusals included.
    if let Some(held) = lease {
        held.release().await;
    }
    let finish = finish.or_exit(Exit::ResumeRefused)?;
    if let Some(out) = &extras.out {
        save_plan(out, finish.outcome, &kept)?;
    }
    Ok(finish.exit)
}

/// `plan --out FILE`: save a complete plan with changes pending.
fn save_plan(out: &std::path::Path, outcome: RunOutcome, kept: &Kept) -> Result<(), exit::Failed> {
    if outcome != RunOutcome::ChangesPending {
        report::notice(&format!(
            "no plan written to {}: only a complete plan with changes pending can be approved and applied",
            out.display()
        ));
        return Ok(());
    }
    let events = kept.0.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let plan = crate::planfile::PlanFile::from_events(&events)
        .ok_or_else(|| anyhow::anyhow!("the plan run recorded no start; no plan written"))
        .or_exit(Exit::StepFailed)?;
    let checksum = plan.write(out).or_exit(Exit::StepFailed)?;
    report::notice(&format!(
        "plan saved to {} ({checksum}); review it with `edgefail show {}`, apply it with `edgefail failover --plan {}`",
        out.display(),
        out.display(),
        out.display()
    ));
    Ok(())
}

/// A lease this run holds in the zone, renewed in the background.
struct HeldLease(crate::dns::lease::Renewing);

impl HeldLease {
    /// Stop renewing and remove the lease (only if it is still ours).
    async fn release(self) {
        let owner = crate::dns::show(self.0.owner());
        let (lease, removed) = self.0.release().await;
        if let Err(e) = removed {
            report::notice(&format!(
                "could not remove the lease {owner} in the zone: {e}; it expires by itself at {}",
                lease.expiry()
            ));
        }
    }
}

/// Across machines: with `dns.mode: rfc2136` and `lock: zone` (the
/// default), a run that will update DNS takes the estate's lease in the
/// zone before changing anything (see `dns::lease`). A resume may take
/// over the lease of the run it continues.
async fn take_lease(
    t: &crate::topology::Topology,
    skip: &[crate::steps::StepId],
    run_id: &str,
    resumes: Option<&str>,
) -> Result<Option<HeldLease>, exit::Failed> {
    let updates_dns = [crate::steps::StepId::DnsA, crate::steps::StepId::DnsSrv]
        .iter()
        .any(|s| !skip.contains(s));
    if t.lock != LockMode::Zone || t.dns.mode != DnsMode::Rfc2136 || !updates_dns {
        return Ok(None);
    }
    let zone = ZoneLease::from_topology(t).or_exit(Exit::StepFailed)?;
    let lease = match zone.take(run_id, resumes).await {
        Ok(lease) => lease,
        Err(e @ (LeaseError::Held { .. } | LeaseError::Foreign { .. })) => {
            return Err(e).or_exit(Exit::Locked);
        }
        Err(e) => return Err(e).or_exit(Exit::StepFailed),
    };
    tracing::info!("took the lease {}", lease.text);
    let every = zone.renew_every();
    Ok(Some(HeldLease(zone.keep(lease, every, |e, held| {
        report::notice(&format!(
            "could not renew the lease in the zone: {e}; it lapses at {}",
            held.expiry()
        ))
    }))))
}

/// One failover per estate at a time (on this state directory).
fn take_lock(
    settings: &RunSettings,
    run_id: &str,
    (user, host): (String, String),
    events: &Emitter,
) -> Result<Lock, exit::Failed> {
    let holder = lock::Holder {
        pid: std::process::id(),
        host: host.clone(),
        user,
        since: crate::event::now(),
        run_id: run_id.to_string(),
    };
    let path = settings.lock.clone();
    // The same directory the journal goes to, made the same way.
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let _ = journal::make_dir(dir);
    }
    match Lock::acquire(&path, holder) {
        Ok(lock) => {
            if let Some(stale) = &lock.stale {
                events.emit(&warning(
                    Origin::Lock,
                    format!(
                        "a previous run left its lock behind without finishing cleanly: {stale}{}; `edgefail history` shows what it did, `edgefail failover --resume` continues it",
                        if stale.host == host && !platform::pid_alive(stale.pid) {
                            " (that process is gone)"
                        } else {
                            ""
                        }
                    ),
                ));
            }
            Ok(lock)
        }
        Err(e @ LockError::Held { .. }) => Err(e).or_exit(Exit::Locked),
        Err(e) => Err(e).or_exit(Exit::Usage),
    }
}
