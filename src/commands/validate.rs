//! `edgefail validate`: check a topology file and report every problem at
//! once.

use std::path::Path;

use crate::cli::Output;
use crate::exit::{CommandResult, Exit};
use crate::report;
use crate::settings;

pub fn run(path: &Path) -> CommandResult {
    let loaded = settings::load_topology(path)?;
    let events = super::events(Output::Human, false);
    for finding in settings::findings(&loaded) {
        events.emit(&finding);
    }
    report::validated(path, &loaded);
    Ok(Exit::Ok)
}
