//! `edgefail failover`: plan, confirm with the operator, then check ->
//! apply -> verify each step; `--dry-run` only plans, `--resume` continues
//! the last unfinished failover from the journal.

use std::sync::Arc;

use crate::cli::FailoverArgs;
use crate::engine::runner::Mode;
use crate::exit::CommandResult;
use crate::operator::{Absent, Operator};
use crate::report::Terminal;
use crate::settings::RunSettings;

pub async fn run(args: FailoverArgs, verbose: bool) -> CommandResult {
    let FailoverArgs {
        plan,
        dry_run,
        yes,
        graceful,
        resume,
    } = args;
    // Refused in settings before anything is read when nobody can confirm.
    let settings = RunSettings::resolve(&plan, graceful, !dry_run && !yes)?;
    let terminal = Terminal::stdin();
    let mode = if dry_run {
        Mode::DryRun
    } else {
        Mode::Apply { confirm: !yes }
    };
    // A manual DNS change is confirmed on the terminal even with --yes.
    let operator: Arc<dyn Operator> = if terminal.present() {
        Arc::new(terminal)
    } else {
        Arc::new(Absent)
    };
    super::run_plan_or_failover(settings, mode, resume, verbose, operator).await
}
