//! `edgefail failover`: plan, confirm with the operator, then check ->
//! apply -> verify each step; `--dry-run` only plans, `--resume` continues
//! the last unfinished failover from the journal, `--plan FILE` applies an
//! approved plan exactly.

use std::sync::Arc;

use anyhow::anyhow;

use crate::cli::FailoverArgs;
use crate::engine::runner::{Approved, Mode};
use crate::exit::{CommandResult, Exit, OrExit};
use crate::operator::{Absent, Operator};
use crate::planfile::{Mismatch, PlanFile};
use crate::report::Terminal;
use crate::settings::{self, RunSettings};

/// How old an approved plan may be unless --max-plan-age says otherwise.
const DEFAULT_MAX_PLAN_AGE: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

pub async fn run(args: FailoverArgs, verbose: bool) -> CommandResult {
    let FailoverArgs {
        mut plan,
        dry_run,
        yes,
        graceful,
        resume,
        plan_file,
        max_plan_age,
    } = args;
    // An approved plan is the confirmation: read and check it first.
    let approved = match &plan_file {
        Some(path) => {
            let file = PlanFile::read(path).or_exit(Exit::Usage)?;
            let pinned = |what: &'static str, given: &Option<String>, planned: &str| match given {
                Some(g) if !g.eq_ignore_ascii_case(planned) => Err(Mismatch::Differs {
                    what,
                    planned: planned.to_string(),
                    given: crate::names::printable(g),
                    hint: "leave --from, --to and --skip out: the plan file names them",
                }),
                _ => Ok(()),
            };
            pinned("--from", &plan.from, &file.from).or_exit(Exit::PlanMismatch)?;
            pinned("--to", &plan.to, &file.to).or_exit(Exit::PlanMismatch)?;
            let skips = settings::parse_skips(&plan.skip)?;
            if !plan.skip.is_empty() && skips != file.skipped {
                return Err(Mismatch::Differs {
                    what: "--skip",
                    planned: format!("{:?}", file.skipped),
                    given: format!("{skips:?}"),
                    hint: "leave --from, --to and --skip out: the plan file names them",
                })
                .or_exit(Exit::PlanMismatch);
            }
            plan.from = Some(file.from.clone());
            plan.to = Some(file.to.clone());
            plan.skip = file.skipped.iter().map(|s| s.to_string()).collect();
            Some((path.clone(), file))
        }
        None => None,
    };
    // Refused in settings before anything is read when nobody can confirm.
    let confirm = !dry_run && !yes && approved.is_none();
    let settings = RunSettings::resolve(&plan, graceful, confirm)?;
    let approved = match approved {
        Some((path, file)) => {
            file.applies(
                &settings.topology_path.display().to_string(),
                &settings.loaded.text,
                max_plan_age.unwrap_or(DEFAULT_MAX_PLAN_AGE),
                std::time::SystemTime::now(),
            )
            .map_err(|e| anyhow!(e).context(format!("cannot apply plan {}", path.display())))
            .or_exit(Exit::PlanMismatch)?;
            Some(Approved {
                readings: file.readings(),
                runbook_sha256: file.runbook_sha256.clone(),
                file: file.approved(&path),
            })
        }
        None => None,
    };
    let terminal = Terminal::stdin();
    let mode = if dry_run {
        Mode::DryRun
    } else {
        Mode::Apply {
            confirm: !yes && approved.is_none(),
        }
    };
    // A manual DNS change is confirmed on the terminal even with --yes.
    let operator: Arc<dyn Operator> = if terminal.present() {
        Arc::new(terminal)
    } else {
        Arc::new(Absent)
    };
    let extras = super::Extras {
        approved,
        ..Default::default()
    };
    super::run_plan_or_failover(settings, mode, resume, verbose, operator, extras).await
}
