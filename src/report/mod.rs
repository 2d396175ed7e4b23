//! Reporters: turn events into output. Human text or JSON Lines on stdout;
//! progress on stderr, and only when stderr is a terminal.

mod human;
mod json;

pub use human::Human;
pub use json::Json;
