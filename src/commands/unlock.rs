//! `edgefail unlock`: clear the lock record a crashed run left behind.

use crate::cli::UnlockArgs;
use crate::exit::{CommandResult, Exit, OrExit};
use crate::lock::{Lock, LockError};
use crate::operator::Operator;
use crate::platform;
use crate::report::{self, Terminal};
use crate::settings;

pub async fn run(args: UnlockArgs) -> CommandResult {
    let loaded = settings::load_topology(&args.topology.path)?;
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
