//! `edgefail schema events|topology`: the JSON Schema of the JSON Lines
//! event stream and of the topology file, generated from the Rust types
//! that read and write them, so it cannot drift from what edgefail does.

use crate::cli::{SchemaArgs, SchemaKind};
use crate::event::Event;
use crate::exit::{CommandResult, Exit};
use crate::report;
use crate::topology::Topology;

/// The schema as pretty JSON.
pub fn text(what: SchemaKind) -> String {
    let schema = match what {
        SchemaKind::Events => schemars::schema_for!(Event),
        SchemaKind::Topology => schemars::schema_for!(Topology),
    };
    serde_json::to_string_pretty(&schema).unwrap_or_default()
}

pub fn run(args: &SchemaArgs) -> CommandResult {
    report::say(&text(args.what));
    Ok(Exit::Ok)
}
