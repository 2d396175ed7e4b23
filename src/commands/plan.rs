//! `edgefail plan`: read the real state and say what a failover would
//! change; change nothing. `--out FILE` saves the plan for approval.

use std::sync::Arc;

use crate::cli::PlanCommand;
use crate::engine::runner::Mode;
use crate::exit::CommandResult;
use crate::operator::Absent;
use crate::settings::RunSettings;

pub async fn run(args: PlanCommand, verbose: bool) -> CommandResult {
    let settings = RunSettings::resolve(&args.plan, false, false)?;
    let extras = super::Extras {
        out: args.out,
        ..Default::default()
    };
    super::run_plan_or_failover(
        settings,
        Mode::Plan,
        false,
        verbose,
        Arc::new(Absent),
        extras,
    )
    .await
}
