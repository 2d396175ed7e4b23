//! `edgefail rehearse`: the whole failover against a simulated estate built
//! inside this process on loopback (see `sim`), through the same runner as
//! `failover`, with drills that break one part on purpose and the resume an
//! operator would then run.

use std::sync::Arc;
use std::time::Duration;

use crate::cli::RehearseArgs;
use crate::engine::runner::{self, Mode};
use crate::event::{self, Event, Mapped, MappedServer, Origin, Rehearsal, RehearsalDns};
use crate::exit::{CommandResult, Exit, OrExit};
use crate::journal::Journal;
use crate::operator::Absent;
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
    let (from, to) = settings::rehearsal_pools(real, &args.from, &args.to)?;
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
        delay: Duration::from_millis(args.delay_ms),
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
        let once = |resume| {
            let ctx = stage.ctx(&from, &to, opts.clone());
            let journal_file = journal_file.clone();
            let events = events.clone();
            let (topology_path, operator, text) = (&topology_path, &operator, &loaded.text);
            async move {
                let ctx = ctx
                    .map_err(anyhow::Error::msg)?
                    .with_operator(Arc::new(Absent));
                let run_id = super::new_run_id();
                let journal = Journal::open(&journal_file, &run_id).or_exit(Exit::Usage)?;
                // Each run gets the reporter and its own journal handle.
                let run_events = event::Emitter::new(event::Sinks(vec![
                    Box::new(events.clone()) as Box<dyn event::Sink>,
                    Box::new(journal),
                ]));
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
                })
                .await
                .or_exit(Exit::ResumeRefused)?;
                Ok::<Exit, crate::exit::Failed>(finish.exit)
            }
        };
        let code = once(None).await?;
        if code == Exit::Ok || drills.is_empty() {
            return Ok(code);
        }
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
                    command: format!("edgefail failover --resume -t {topology_path}"),
                    why: None,
                });
                Some(r)
            }
            Err(why) => {
                events.emit(&Event::RehearsalResume {
                    failed_exit_code: code.code(),
                    command: format!(
                        "edgefail failover -t {topology_path} --from {from} --to {to}"
                    ),
                    // The reason, without the "cannot resume" it comes with.
                    why: Some(why.chain().nth(1).unwrap_or(why.as_ref()).to_string()),
                });
                None
            }
        };
        once(resume).await
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

/// What the rehearsal simulates and where it put everything.
fn announcement(args: &RehearseArgs, real: &Topology, stage: &Stage, drills: &[Drill]) -> Event {
    let t = &stage.topology;
    let (primary, secondary) = (stage.primary.to_string(), stage.secondary.to_string());
    Event::Rehearsal(Box::new(Rehearsal {
        format: event::FORMAT,
        from: args.from.clone(),
        to: args.to.clone(),
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
        delay_ms: args.delay_ms,
        command_timeout_secs: t.timeouts.command_secs,
        drills: drills.iter().map(Drill::describe).collect(),
    }))
}
