//! `edgefail plan`: read the real state and say what a failover would
//! change; change nothing.

use std::sync::Arc;

use crate::cli::PlanArgs;
use crate::engine::runner::Mode;
use crate::exit::CommandResult;
use crate::operator::Absent;
use crate::settings::RunSettings;

pub async fn run(args: PlanArgs, verbose: bool) -> CommandResult {
    let settings = RunSettings::resolve(&args, false, false)?;
    super::run_plan_or_failover(settings, Mode::Plan, false, verbose, Arc::new(Absent)).await
}
