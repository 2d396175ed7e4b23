//! `edgefail export powershell`: the runbook as one reviewable .ps1 to
//! perform by hand (see `crate::export`).

use anyhow::anyhow;

use crate::cli::{ExportArgs, ExportFormat};
use crate::exit::{CommandResult, Exit, OrExit};
use crate::settings;

pub fn run(args: ExportArgs) -> CommandResult {
    let loaded = settings::load_topology(&args.topology.path)?;
    let ExportFormat::Powershell = args.format;
    let script = crate::export::powershell(
        &loaded.topology,
        &args.topology.path.display().to_string(),
        &args.pools.from,
        &args.pools.to,
    )?;
    match &args.out {
        Some(out) => std::fs::write(out, script)
            .map_err(|e| anyhow!("cannot write {}: {e}", out.display()))
            .or_exit(Exit::StepFailed)?,
        None => crate::report::say(script.trim_end()),
    }
    Ok(Exit::Ok)
}
