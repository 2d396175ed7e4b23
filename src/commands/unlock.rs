//! `edgefail unlock`: clear what a crashed run left behind: the lock
//! record in the state directory, then an expired lease in the zone
//! (removed with the same compare-and-swap that took it). Each thing looked at ends
//! as one `unlock` event (human or JSON); a live holder is refused (exit 6,
//! an `error` event under `--output json`).

use crate::cli::{Output, UnlockArgs};
use crate::event::{Event, Sink, UnlockOutcome, UnlockTarget};
use crate::exit::{CommandResult, Exit, OrExit};
use crate::lock::{Lock, LockError};
use crate::operator::Operator;
use crate::platform;
use crate::report::{self, Terminal};
use crate::settings;

/// Where unlock's outcomes go: the reporter the operator asked for.
struct Said {
    output: Output,
    out: Box<dyn Sink>,
}

impl Said {
    fn new(output: Output) -> Said {
        Said {
            output,
            out: report::reporter(output, false),
        }
    }

    /// What was found, before the question: part of the human report;
    /// under JSON, said on stderr (the event carries it as `holder`).
    /// Escaped: a lock record's fields are outside text.
    fn found(&self, line: &str) {
        let line = crate::escape::terminal(line);
        match self.output {
            Output::Human => report::say(&line),
            Output::Json => report::notice(&line),
        }
    }

    fn outcome(
        &mut self,
        target: UnlockTarget,
        outcome: UnlockOutcome,
        place: String,
        holder: Option<String>,
        message: String,
    ) {
        self.out.event(&Event::Unlock {
            target,
            outcome,
            place,
            holder,
            message,
        });
    }
}

/// Ask (or take --yes); Err when nobody can answer.
async fn confirm(args: &UnlockArgs, prompt: &str) -> Result<bool, crate::exit::Failed> {
    if args.yes {
        return Ok(true);
    }
    let terminal = Terminal::stdin();
    if !terminal.present() {
        return Err(anyhow::anyhow!("no terminal to confirm on: pass --yes to clear it").into());
    }
    Ok(terminal.ask(prompt, "yes").await)
}

/// The zone's lease, when the estate uses one: a live one is refused, an
/// expired one removed.
async fn unlock_lease(
    args: &UnlockArgs,
    t: &crate::topology::Topology,
    said: &mut Said,
) -> CommandResult {
    use crate::dns::lease::ZoneLease;
    use crate::topology::{DnsMode, LockMode};
    if t.lock != LockMode::Zone || t.dns.mode != DnsMode::Rfc2136 {
        return Ok(Exit::Ok);
    }
    let zone = ZoneLease::from_topology(t).or_exit(Exit::StepFailed)?;
    let owner = crate::dns::show(&zone.owner);
    let lease = match zone.read().await.or_exit(Exit::StepFailed)? {
        None => {
            said.outcome(
                UnlockTarget::Lease,
                UnlockOutcome::Nothing,
                owner.clone(),
                None,
                format!("no lease in the zone ({owner}): nothing to remove"),
            );
            return Ok(Exit::Ok);
        }
        Some(Err(text)) => {
            return Err(anyhow::anyhow!(
                "{owner} holds something edgefail did not write ({:?}): left alone",
                crate::names::printable(&text)
            ))
            .or_exit(Exit::Locked);
        }
        Some(Ok(lease)) => lease,
    };
    if !lease.expired() {
        return Err(anyhow::anyhow!(
            "the lease in the zone ({owner}) is held by {lease}: it is live, not stale; nothing to break"
        ))
        .or_exit(Exit::Locked);
    }
    let holder = lease.to_string();
    said.found(&format!("{owner} holds an expired lease: {holder}"));
    if !confirm(args, "Remove it? Type 'yes' to proceed: ").await? {
        said.outcome(
            UnlockTarget::Lease,
            UnlockOutcome::Declined,
            owner,
            Some(holder),
            "left as it was".into(),
        );
        return Ok(Exit::Declined);
    }
    zone.release(&lease).await.or_exit(Exit::Locked)?;
    said.outcome(
        UnlockTarget::Lease,
        UnlockOutcome::Removed,
        owner.clone(),
        Some(holder),
        format!("lease removed from the zone ({owner})"),
    );
    Ok(Exit::Ok)
}

pub async fn run(args: UnlockArgs) -> CommandResult {
    let mut said = Said::new(args.output);
    let loaded = settings::load_topology(&args.topology.path)?;
    // The lock record here first: a live run holding it means nothing is
    // stale, the lease included, and clearing it needs nothing remote (a
    // key that cannot be loaded or a zone that does not answer must not
    // keep the operator from it).
    let path = settings::state_paths(&args.topology.path, &loaded.topology, &args.journal).lock;
    let local = unlock_lock(&args, &path, &mut said).await?;
    if local != Exit::Ok {
        return Ok(local);
    }
    unlock_lease(&args, &loaded.topology, &mut said).await
}

/// The lock record in the state directory: a live holder is refused, a
/// record a crashed run left is cleared.
async fn unlock_lock(args: &UnlockArgs, path: &std::path::Path, said: &mut Said) -> CommandResult {
    let place = path.display().to_string();
    let holder = match Lock::inspect(path) {
        Err(e @ LockError::Held { .. }) => {
            return Err(anyhow::anyhow!(
                "{e}; it is in use, not stale: nothing to break"
            ))
            .or_exit(Exit::Locked);
        }
        Err(e) => return Err(e).or_exit(Exit::Usage),
        Ok(None) => {
            said.outcome(
                UnlockTarget::Lock,
                UnlockOutcome::Nothing,
                place.clone(),
                None,
                format!("no lock record at {place}: nothing to unlock"),
            );
            return Ok(Exit::Ok);
        }
        Ok(Some(holder)) => holder,
    };
    let (_, host) = platform::whoami();
    let gone = holder.host == host && !platform::pid_alive(holder.pid);
    let held_by = format!(
        "{holder}{}",
        if gone { " (that process is gone)" } else { "" }
    );
    said.found(&format!("{place} holds a record left by {held_by}"));
    if !confirm(args, "Clear it? Type 'yes' to proceed: ").await? {
        said.outcome(
            UnlockTarget::Lock,
            UnlockOutcome::Declined,
            place,
            Some(held_by),
            "left as it was".into(),
        );
        return Ok(Exit::Declined);
    }
    Lock::clear(path).or_exit(Exit::Locked)?;
    said.outcome(
        UnlockTarget::Lock,
        UnlockOutcome::Removed,
        place.clone(),
        Some(held_by),
        format!("cleared the lock record at {place}"),
    );
    Ok(Exit::Ok)
}
