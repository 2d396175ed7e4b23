//! `edgefail rehearse`: the whole failover against a simulated estate built
//! inside this process on loopback (see `sim`), through the same runner as
//! `failover`, with drills that break one part on purpose and the resume an
//! operator would then run.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::cli::RehearseArgs;
use crate::engine::runner::{self, Mode};
use crate::estate;
use crate::event::{self, Event, Mapped, MappedServer, Origin, Rehearsal, RehearsalDns};
use crate::exit::{CommandResult, Exit, OrExit};
use crate::journal::Journal;
use crate::operator::Absent;
use crate::report;
use crate::settings;
use crate::sim::{Drill, Setup, Stage};
use crate::topology::Topology;

pub async fn run(args: RehearseArgs, verbose: bool) -> CommandResult {
    let loaded = settings::load_topology(&args.topology.path)?;
    let events = super::events(args.output, verbose);
    // The rehearsal brings its own key: findings about the real one's
    // availability do not apply here. The rest follow the announcement,
    // which is the rehearsal's first line.
    let findings: Vec<Event> = settings::findings(&loaded)
        .into_iter()
        .filter(|f| !matches!(f, Event::Warning { at: Some(at), .. } if at.field.starts_with("dns.tsig")))
        .collect();
    let real = &loaded.topology;
    // Pick the pools as a real run would, with its errors, before building.
    let (from, to) = settings::rehearsal_pools(real, &args.pools.from, &args.pools.to)?;
    let target_servers: Vec<String> = real
        .pool(&to)
        .map(|p| p.pool.servers.iter().map(|s| s.fqdn.clone()).collect())
        .unwrap_or_default();
    let drills = args
        .inject
        .iter()
        .map(|d| Drill::parse(d, &target_servers))
        .collect::<Result<Vec<_>, _>>()
        .map_err(anyhow::Error::msg)?;
    let stage = Stage::build(Setup {
        real,
        from: &from,
        to: &to,
        delay: delay_of(&args),
        drills: &drills,
    })
    .await
    .map_err(anyhow::Error::msg)?;
    events.emit(&announcement(&args, real, &stage, &drills));
    for finding in &findings {
        events.emit(finding);
    }

    // Ctrl-C or SIGTERM ends the rehearsal at once: nothing real is
    // touched, and leaving returns the stage, whose drop removes the
    // temporary directory with the rehearsal's key file and journal.
    let work = async {
        let opts =
            settings::run_options(&stage.topology.timeouts, args.parallel, false, None, None);
        let journal_file = stage.journal_path();
        let topology_path = args.topology.path.display().to_string();
        let operator = super::operator_name();
        // A drill's failed run is followed by the resumed one: its end goes to
        // its journal, and to the operator inside `rehearsal_resume`, so that
        // the stream has one `run_finished`, the rehearsal's.
        let held: Arc<Mutex<Option<Event>>> = Arc::default();
        let once = |resume, hold: bool| {
            let ctx = stage.ctx(&from, &to, opts.clone());
            let journal_file = journal_file.clone();
            let events: Box<dyn event::Sink> = if hold {
                Box::new(HoldEnd {
                    inner: events.clone(),
                    held: held.clone(),
                })
            } else {
                Box::new(events.clone())
            };
            let (topology_path, operator, text) = (&topology_path, &operator, &loaded.text);
            async move {
                let ctx = ctx
                    .map_err(anyhow::Error::msg)?
                    .with_operator(Arc::new(Absent));
                let run_id = super::new_run_id();
                let journal = Journal::open(&journal_file, &run_id).or_exit(Exit::Usage)?;
                // Each run gets the reporter and its own journal handle.
                let run_events = event::Emitter::new(event::Sinks(vec![events, Box::new(journal)]));
                let ctx = ctx.with_events(run_events);
                let finish = runner::run(runner::Run {
                    ctx: &ctx,
                    mode: Mode::Apply { confirm: false },
                    runbook: crate::steps::runbook(),
                    skip: Vec::new(),
                    run_id: &run_id,
                    operator,
                    topology_path,
                    topology_text: text,
                    resume,
                    approved: None,
                })
                .await
                .or_exit(Exit::ResumeRefused)?;
                Ok::<Exit, crate::exit::Failed>(finish.exit)
            }
        };
        // What the run left behind, read as `edgefail status` reads a real
        // estate (a drill's failure shows its split brain here).
        let show_status = || async {
            if args.status {
                let status = estate::read(&stage.status_sources(opts.command_timeout)).await;
                report::status::status(&status, args.output);
            }
        };
        let code = once(None, !drills.is_empty()).await?;
        let first_end = held.lock().unwrap_or_else(|p| p.into_inner()).take();
        let code = if code == Exit::Ok || drills.is_empty() {
            if let Some(end) = first_end {
                events.emit(&end);
            }
            show_status().await;
            code
        } else {
            let (message, estate) = match first_end {
                Some(Event::RunFinished {
                    message, estate, ..
                }) => (message, estate),
                _ => (String::new(), None),
            };
            // Read what the drill left behind before its fault is cleared
            // (a filtered port is part of it); shown after the failure.
            let left_behind = if args.status {
                Some(estate::read(&stage.status_sources(opts.command_timeout)).await)
            } else {
                None
            };
            stage.clear().await;
            let (found, problems) =
                settings::find_resume(&journal_file, &loaded.text, Some(&from), Some(&to));
            for p in problems {
                events.emit(&super::warning(Origin::Journal, p));
            }
            let resume = match found {
                Ok(r) => {
                    events.emit(&Event::RehearsalResume {
                        failed_exit_code: code.code(),
                        message: message.clone(),
                        command: format!("edgefail failover --resume -t {topology_path}"),
                        why: None,
                        estate: estate.clone(),
                    });
                    Some(r)
                }
                Err(why) => {
                    events.emit(&Event::RehearsalResume {
                        failed_exit_code: code.code(),
                        message,
                        command: format!(
                            "edgefail failover -t {topology_path} --from {from} --to {to}"
                        ),
                        // The reason, without the "cannot resume" it comes with.
                        why: Some(why.chain().nth(1).unwrap_or(why.as_ref()).to_string()),
                        estate,
                    });
                    None
                }
            };
            if let Some(status) = &left_behind {
                report::status::status(status, args.output);
            }
            let code = once(resume, false).await?;
            show_status().await;
            code
        };
        if let Some(out) = &args.report {
            write_report(&journal_file, out)?;
        }
        Ok::<Exit, crate::exit::Failed>(code)
    };
    let Ok(mut interrupts) = crate::platform::Interrupts::new() else {
        return work.await;
    };
    tokio::select! {
        result = work => result,
        name = interrupts.next() => {
            crate::report::notice(&format!(
                "\n{name}: rehearsal stopped; its temporary key file, journal and directory are removed"
            ));
            drop(stage);
            Ok(Exit::Interrupted)
        }
    }
}

/// `rehearse --report FILE`: the change record of every run of the
/// rehearsal (the drill's failed run and its resume), before the temporary
/// journal goes.
fn write_report(
    journal: &std::path::Path,
    out: &std::path::Path,
) -> Result<(), crate::exit::Failed> {
    let contents = crate::journal::read(journal).or_exit(Exit::StepFailed)?;
    let records: Vec<String> = contents
        .runs
        .iter()
        .map(crate::changerecord::markdown)
        .collect();
    let text = format!(
        "> A rehearsal against a simulated estate (`edgefail rehearse`): nothing real was changed; addresses are the rehearsal's.\n\n{}",
        records.join("\n---\n\n")
    );
    std::fs::write(out, text)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", out.display()))
        .or_exit(Exit::StepFailed)?;
    crate::report::notice(&format!("change record written to {}", out.display()));
    Ok(())
}

/// How long each simulated command takes: --delay, or the older
/// --delay-ms, else 300 ms.
fn delay_of(args: &RehearseArgs) -> Duration {
    args.delay
        .or(args.delay_ms.map(Duration::from_millis))
        .unwrap_or(Duration::from_millis(300))
}

/// The reporters, less the run's `run_finished`, which it keeps.
struct HoldEnd {
    inner: event::Emitter,
    held: Arc<Mutex<Option<Event>>>,
}

impl event::Sink for HoldEnd {
    fn event(&mut self, event: &Event) {
        if matches!(event, Event::RunFinished { .. }) {
            *self.held.lock().unwrap_or_else(|p| p.into_inner()) = Some(event.clone());
        } else {
            self.inner.emit(event);
        }
    }

    fn progress(&mut self, progress: &event::Progress) {
        self.inner.progress(progress);
    }
}

/// What the rehearsal simulates and where it put everything.
fn announcement(args: &RehearseArgs, real: &Topology, stage: &Stage, drills: &[Drill]) -> Event {
    let t = &stage.topology;
    let (primary, secondary) = (stage.primary.to_string(), stage.secondary.to_string());
    Event::Rehearsal(Box::new(Rehearsal {
        format: event::FORMAT,
        from: args.pools.from.clone(),
        to: args.pools.to.clone(),
        topology: args.topology.path.display().to_string(),
        domain: real.xmpp.domain.clone(),
        xmpp_port: Mapped {
            real: real.xmpp.port,
            rehearsal: t.xmpp.port,
        },
        servers: stage
            .mapped
            .iter()
            .map(|m| MappedServer {
                fqdn: m.fqdn.clone(),
                pool: m.pool.clone(),
                real: m.real.clone(),
                rehearsal: m.ip.to_string(),
            })
            .collect(),
        dns: RehearsalDns {
            primary: Mapped {
                real: real.dns.primary.clone(),
                rehearsal: primary.clone(),
            },
            authoritative: Mapped {
                real: real.dns.authoritative.clone(),
                rehearsal: vec![primary, secondary],
            },
            tsig_key: t.dns.tsig.as_ref().map(|k| k.name.clone()),
        },
        delay_ms: u64::try_from(delay_of(args).as_millis()).unwrap_or(u64::MAX),
        command_timeout_secs: t.timeouts.command_secs,
        drills: drills.iter().map(Drill::describe).collect(),
    }))
}
