//! JSON Lines: one event per line on stdout (format in `event`). What
//! needs a person (warnings, an action to take) is also said on stderr, as
//! the human reporter says it: stdout may be going to a file or a program.

use std::io::Write;

use crate::event::{Event, Sink};

pub struct Json<W: Write + Send> {
    out: W,
}

impl<W: Write + Send> Json<W> {
    pub fn new(out: W) -> Self {
        Json { out }
    }
}

impl<W: Write + Send> Sink for Json<W> {
    fn event(&mut self, event: &Event) {
        if matches!(event, Event::Transcript(_)) && !super::transcripts_shown() {
            return;
        }
        if let Ok(line) = serde_json::to_string(event) {
            // A closed stdout (a pipe to `head`) must not stop the run.
            let _ = writeln!(self.out, "{line}");
            let _ = self.out.flush();
        }
        super::to_stderr(event);
    }
}
