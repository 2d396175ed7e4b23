//! `edgefail show FILE`: a saved plan, printed as `plan` printed it.

use crate::cli::ShowArgs;
use crate::exit::{CommandResult, Exit, OrExit};
use crate::planfile::PlanFile;

pub fn run(args: ShowArgs) -> CommandResult {
    let plan = PlanFile::read(&args.file).or_exit(Exit::Usage)?;
    let events = super::events(args.output, true);
    for event in plan.events() {
        events.emit(&event);
    }
    Ok(Exit::Ok)
}
