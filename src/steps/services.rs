//! Steps 2 and 7: stop, then start, the Lync services on every Edge server
//! of the target pool, in parallel under the concurrency limit.

use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::{
    Applied, Change, Check, CheckState, Ctx, Failure, Observation, Prior, Seen, Step, StepId,
    Verified,
};
use crate::lync::{Machine, MachineError, Service};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    Stopped,
    Running,
}

impl Want {
    fn status(self) -> &'static str {
        match self {
            Want::Stopped => "Stopped",
            Want::Running => "Running",
        }
    }
}

pub struct Services {
    want: Want,
}

impl Services {
    pub fn stop() -> Services {
        Services {
            want: Want::Stopped,
        }
    }

    pub fn start() -> Services {
        Services {
            want: Want::Running,
        }
    }
}

/// The servers that still need the action, by name.
pub struct Pending(Vec<String>);

/// Run `job` on each machine, at most `ctx.opts.parallel` at once; every job
/// runs to its end (or its own timeout), results in input order.
pub async fn on_each<T, F, Fut>(
    ctx: &Ctx,
    machines: &[Arc<Machine>],
    job: F,
) -> Vec<(Arc<Machine>, Option<T>)>
where
    T: Send + 'static,
    F: Fn(Arc<Machine>) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
{
    on_each_telling(ctx, machines, None, job).await
}

/// As [`on_each`], telling a terminal "N of M server(s) <done>" as each
/// machine's job ends.
async fn on_each_telling<T, F, Fut>(
    ctx: &Ctx,
    machines: &[Arc<Machine>],
    done: Option<&str>,
    job: F,
) -> Vec<(Arc<Machine>, Option<T>)>
where
    T: Send + 'static,
    F: Fn(Arc<Machine>) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
{
    let limit = Arc::new(Semaphore::new(ctx.opts.parallel.max(1)));
    let mut set = JoinSet::new();
    for (i, m) in machines.iter().enumerate() {
        let fut = job(m.clone());
        let limit = limit.clone();
        let cancel = ctx.cancel.clone();
        set.spawn(async move {
            let _permit = limit.acquire_owned().await;
            // Work already running finishes; queued work does not start.
            if cancel.is_set() {
                return (i, None);
            }
            (i, Some(fut.await))
        });
    }
    let mut out: Vec<Option<T>> = machines.iter().map(|_| None).collect();
    let mut ended = 0;
    while let Some(joined) = set.join_next().await {
        ended += 1;
        if let Some(done) = done {
            ctx.progress(crate::event::Progress::Reading(format!(
                "{ended} of {} server(s) {done}",
                machines.len()
            )));
        }
        if let Ok((i, value)) = joined {
            out[i] = value;
        }
    }
    machines.iter().cloned().zip(out).collect()
}

async fn read_all(ctx: &Ctx) -> Vec<(Arc<Machine>, Result<Vec<Service>, String>)> {
    let timeout = ctx.opts.command_timeout;
    on_each(ctx, &ctx.edges, move |m| async move {
        m.services(timeout).await
    })
    .await
    .into_iter()
    .map(|(m, r)| {
        let r = match r {
            Some(r) => r.map_err(|e: MachineError| e.to_string()),
            None => Err(format!("{}: not read (interrupted)", m.name)),
        };
        (m, r)
    })
    .collect()
}

fn all_at(machine: &str, services: &[Service], want: Want) -> String {
    format!(
        "{machine}: all {} service(s) {}",
        services.len(),
        want.status()
    )
}

fn off_target(services: &[Service], want: Want) -> Vec<&Service> {
    services
        .iter()
        .filter(|s| s.status != want.status())
        .collect()
}

fn list(services: &[&Service]) -> String {
    services
        .iter()
        .map(|s| {
            format!(
                "{} {}",
                crate::names::printable(&s.name),
                crate::names::printable(&s.status)
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[async_trait]
impl Step for Services {
    type Plan = Pending;

    fn id(&self) -> StepId {
        match self.want {
            Want::Stopped => StepId::ServicesStop,
            Want::Running => StepId::ServicesStart,
        }
    }

    fn title(&self, ctx: &Ctx) -> String {
        let verb = match self.want {
            Want::Stopped => "Stop",
            Want::Running => "Start",
        };
        format!(
            "{verb} the Lync services on every Edge server of {}",
            ctx.to().pool.name
        )
    }

    async fn check(&self, ctx: &Ctx, prior: Prior<'_>) -> Check<Pending> {
        let want = self.want;
        let mut unreadable = Vec::new();
        let mut pending = Vec::new();
        let mut changes = Vec::new();
        let mut details = Vec::new();
        let mut seen = Vec::new();
        for (m, read) in read_all(ctx).await {
            if let (Want::Stopped, Ok(services)) = (want, &read) {
                // Stopping rests on what runs where; starting does not (it
                // brings every service up, whatever it finds).
                let mut all: Vec<&Service> = services.iter().collect();
                all.sort_by(|a, b| a.name.cmp(&b.name));
                seen.push(Seen {
                    what: format!("{} services", m.name),
                    value: list(&all),
                });
            }
            match read {
                Err(e) => unreadable.push(e),
                Ok(services) if services.is_empty() => unreadable.push(format!(
                    "{}: Get-CsWindowsService listed no Lync services",
                    m.name
                )),
                Ok(services) => {
                    let off = off_target(&services, want);
                    if off.is_empty() {
                        details.push(all_at(&m.name, &services, want));
                    } else {
                        pending.push(m.name.clone());
                        changes.push(Change {
                            what: format!("{} services", m.name),
                            old: list(&off),
                            new: format!("all {}", want.status()),
                        });
                    }
                }
            }
        }
        if !unreadable.is_empty() {
            return Check::cannot_tell(unreadable.join("; ")).with_details(details);
        }
        let pool = &ctx.target_pool().name;
        let total = ctx.edges.len();
        let check = match want {
            Want::Stopped if !pending.is_empty() => {
                // What was found, said plainly: after a restore (failback) the
                // pool's services usually run already.
                let found = if pending.len() == total {
                    format!(
                        "found Lync services running on all {total} server(s) of {pool} (as after a restore)"
                    )
                } else {
                    format!(
                        "found Lync services running on {} of {total} server(s) of {pool} ({}), the others stopped",
                        pending.len(),
                        pending.join(", ")
                    )
                };
                // Stopping only matters so that the services restart with the
                // new route; once the route is there, a restart buys nothing.
                match super::RouteState::read(ctx).await {
                    Err(reason) => Check::cannot_tell(format!(
                        "{found}; whether the route is already set cannot be read: {reason}"
                    )),
                    Ok(route) if route.holds => Check::done(format!(
                        "the route already points at {pool} ({}); no restart needed ({found})",
                        route.current_text()
                    ))
                    .with_details(details),
                    Ok(_) => Check::change(
                        format!(
                            "{found}: would stop them on {} server(s) so that they start again with the new route",
                            pending.len()
                        ),
                        changes,
                        Pending(pending),
                    )
                    .with_details(details),
                }
            }
            Want::Running if pending.is_empty() => {
                let stop_pending = prior.iter().any(|(id, state)| {
                    *id == StepId::ServicesStop && *state == CheckState::WouldChange
                });
                if stop_pending {
                    let all: Vec<String> = ctx.edges.iter().map(|m| m.name.clone()).collect();
                    let changes = all
                        .iter()
                        .map(|name| Change {
                            what: format!("{name} services"),
                            old: "Stopped (by step 2)".into(),
                            new: "all Running".into(),
                        })
                        .collect();
                    Check::change(
                        format!("would start the Lync services again on {} server(s) of {pool} after step 2", all.len()),
                        changes,
                        Pending(all),
                    )
                    .with_details(details)
                } else {
                    Check::done(format!("every Lync service on {pool} is Running"))
                        .with_details(details)
                }
            }
            Want::Stopped => Check::done(format!(
                "found every Lync service on {pool} already Stopped ({total} server(s)); nothing to stop"
            ))
            .with_details(details),
            Want::Running => Check::change(
                format!(
                    "would start the Lync services on {} server(s) of {pool}",
                    pending.len()
                ),
                changes,
                Pending(pending),
            )
            .with_details(details),
        };
        check.with_seen(seen)
    }

    async fn apply(&self, ctx: &Ctx, pending: &Pending) -> Result<Applied, Failure> {
        let machines: Vec<Arc<Machine>> = ctx
            .edges
            .iter()
            .filter(|m| pending.0.contains(&m.name))
            .cloned()
            .collect();
        let timeout = ctx.opts.command_timeout;
        let graceful = ctx.opts.graceful;
        let want = self.want;
        let verb = match want {
            Want::Stopped => "stopped",
            Want::Running => "started",
        };
        let told = match want {
            Want::Stopped => "answered Stop-CsWindowsService",
            Want::Running => "answered Start-CsWindowsService",
        };
        let results = on_each_telling(ctx, &machines, Some(told), move |m| async move {
            match want {
                Want::Stopped => m.stop_services(graceful, timeout).await,
                Want::Running => m.start_services(timeout).await,
            }
        })
        .await;
        let mut details = Vec::new();
        let mut failures = Vec::new();
        for (m, r) in &results {
            match r {
                Some(Ok(())) => details.push(format!("{}: {verb}", m.name)),
                Some(Err(e)) => {
                    failures.push(e.to_string());
                    details.push(e.to_string());
                }
                None => {
                    let e = format!("{}: not {verb}: interrupted before it began", m.name);
                    failures.push(e.clone());
                    details.push(e);
                }
            }
        }
        if let Some(first) = failures.first() {
            let more = match failures.len() {
                1 => String::new(),
                n => format!(" (and {} more, below)", n - 1),
            };
            Err(Failure {
                summary: format!(
                    "{} of {} server(s) failed: {first}{more}",
                    failures.len(),
                    results.len()
                ),
                details,
            })
        } else {
            Ok(Applied {
                summary: format!("{verb} the services on {} server(s)", results.len()),
                details,
            })
        }
    }

    async fn verify(&self, ctx: &Ctx, _pending: &Pending) -> Verified {
        let want = self.want;
        super::poll(ctx, || async {
            let mut stragglers = Vec::new();
            let mut details = Vec::new();
            let reads = read_all(ctx).await;
            let total = reads.len();
            for (m, read) in reads {
                match read {
                    Err(e) => stragglers.push(e),
                    Ok(services) => {
                        let off = off_target(&services, want);
                        if off.is_empty() && !services.is_empty() {
                            details.push(all_at(&m.name, &services, want));
                        } else {
                            stragglers.push(format!("{}: {}", m.name, list(&off)));
                        }
                    }
                }
            }
            if stragglers.is_empty() {
                Observation {
                    holds: true,
                    summary: format!(
                        "every Lync service on {} is {}",
                        ctx.target_pool().name,
                        want.status()
                    ),
                    details,
                }
            } else {
                Observation {
                    holds: false,
                    summary: format!(
                        "{} of {total} server(s) {}; not yet: {}",
                        total - stragglers.len(),
                        want.status(),
                        stragglers.join("; ")
                    ),
                    details,
                }
            }
        })
        .await
    }
}
