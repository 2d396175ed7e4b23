//! `edgefail status`: where XMPP federation runs now, read from every
//! source at once; changes nothing, takes no lock, writes no journal.

use std::time::Duration;

use crate::cli::StatusArgs;
use crate::estate::{self, Sources};
use crate::exit::CommandResult;
use crate::report;
use crate::settings;

pub async fn run(args: StatusArgs) -> CommandResult {
    let loaded = settings::load_topology(&args.topology.path)?;
    // The topology's warnings go to stderr: stdout is the reading (and,
    // with --output json, exactly one document).
    for finding in settings::findings(&loaded) {
        report::warning(&finding);
    }
    let t = loaded.topology;
    let timeout = Duration::from_secs(args.command_timeout.unwrap_or(t.timeouts.command_secs));
    let status = estate::read(&Sources::new(t, timeout)).await;
    report::status::status(&status, args.output);
    Ok(status.verdict.state.exit())
}
