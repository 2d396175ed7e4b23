//! `edgefail unlock`: clear what a crashed run left behind: an expired
//! lease in the zone (removed with the same compare-and-swap that took it)
//! and the lock record in the state directory.

use crate::cli::UnlockArgs;
use crate::exit::{CommandResult, Exit, OrExit};
use crate::lock::{Lock, LockError};
use crate::operator::Operator;
use crate::platform;
use crate::report::{self, Terminal};
use crate::settings;

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
async fn unlock_lease(args: &UnlockArgs, t: &crate::topology::Topology) -> CommandResult {
    use crate::dns::lease::ZoneLease;
    use crate::topology::{DnsMode, LockMode};
    if t.lock != LockMode::Zone || t.dns.mode != DnsMode::Rfc2136 {
        return Ok(Exit::Ok);
    }
    let zone = ZoneLease::from_topology(t).or_exit(Exit::StepFailed)?;
    let owner = crate::dns::show(&zone.owner);
    let lease = match zone.read().await.or_exit(Exit::StepFailed)? {
        None => {
            report::say(&format!(
                "no lease in the zone ({owner}): nothing to remove"
            ));
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
    report::say(&format!("{owner} holds an expired lease: {lease}"));
    if !confirm(args, "Remove it? Type 'yes' to proceed: ").await? {
        report::say("left as it was");
        return Ok(Exit::Declined);
    }
    zone.release(&lease).await.or_exit(Exit::Locked)?;
    report::say("lease removed");
    Ok(Exit::Ok)
}

pub async fn run(args: UnlockArgs) -> CommandResult {
    let loaded = settings::load_topology(&args.topology.path)?;
    let leased = unlock_lease(&args, &loaded.topology).await?;
    if leased != Exit::Ok {
        return Ok(leased);
    }
    let path = settings::state_paths(&args.topology.path, &loaded.topology, &args.journal).lock;
    let holder = match Lock::inspect(&path) {
        Err(e @ LockError::Held { .. }) => {
            return Err(anyhow::anyhow!(
                "{e}; it is in use, not stale: nothing to break"
            ))
            .or_exit(Exit::Locked);
        }
        Err(e) => return Err(e).or_exit(Exit::Usage),
        Ok(None) => {
            report::say(&format!(
                "no lock record at {}: nothing to unlock",
                path.display()
            ));
            return Ok(Exit::Ok);
        }
        Ok(Some(holder)) => holder,
    };
    let (_, host) = platform::whoami();
    let gone = holder.host == host && !platform::pid_alive(holder.pid);
    report::say(&format!(
        "{} holds a record left by {holder}{}",
        path.display(),
        if gone { " (that process is gone)" } else { "" }
    ));
    if !args.yes {
        let terminal = Terminal::stdin();
        if !terminal.present() {
            return Err(
                anyhow::anyhow!("no terminal to confirm on: pass --yes to clear it").into(),
            );
        }
        if !terminal
            .ask("Clear it? Type 'yes' to proceed: ", "yes")
            .await
        {
            report::say("left as it was");
            return Ok(Exit::Declined);
        }
    }
    Lock::clear(&path).or_exit(Exit::Locked)?;
    report::say("cleared");
    Ok(Exit::Ok)
}
