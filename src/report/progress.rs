//! Live progress on a terminal: one spinner line on stderr per running
//! phase, with the time spent, the phase's limit and the latest reading,
//! redrawn in place and cleared when the phase ends. Drawn by indicatif;
//! only made when stderr is a terminal that may take escape sequences
//! (not with NO_COLOR or TERM=dumb), so pipes and logs never see any.

use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::escape;
use crate::event::Progress;
use crate::platform;

/// Whether this process may draw progress: stderr is a terminal, and the
/// operator has not asked for plain output (NO_COLOR, TERM=dumb).
pub fn allowed() -> bool {
    platform::color_allowed(platform::stderr_is_terminal())
}

/// The spinner on screen, for lines written to stderr from elsewhere (an
/// interruption's notice) to step around it.
static SHOWN: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// Write to stderr without tearing the spinner: it is taken off, `write`
/// runs, and it is drawn again below.
pub fn around(write: impl FnOnce()) {
    let shown = SHOWN.lock().unwrap_or_else(|p| p.into_inner()).clone();
    match shown {
        Some(bar) => bar.suspend(write),
        None => write(),
    }
}

/// The spinner of the phase that is running, if any.
#[derive(Default)]
pub struct Spinner {
    bar: Option<ProgressBar>,
    /// What the running phase is ("[2/8] services.stop verify").
    label: String,
    limit: String,
}

fn secs(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 120 && s.is_multiple_of(60) {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

impl Spinner {
    /// A phase starts: show its spinner.
    pub fn start(&mut self, label: String) {
        self.clear();
        self.label = label;
        self.limit.clear();
        // Styled before anything is drawn: indicatif's default is a bar.
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden())
            .with_style(self.style())
            .with_prefix(self.label.clone());
        bar.set_draw_target(ProgressDrawTarget::stderr());
        bar.enable_steady_tick(Duration::from_millis(120));
        *SHOWN.lock().unwrap_or_else(|p| p.into_inner()) = Some(bar.clone());
        self.bar = Some(bar);
    }

    fn style(&self) -> ProgressStyle {
        // The label and limit are edgefail's own words, without braces; the
        // reading (from outside) goes in the message, which is not parsed.
        let template = format!(
            "{{spinner}} {{prefix}} {{elapsed}}{}{{wide_msg}}",
            self.limit
        );
        ProgressStyle::with_template(&template)
            .unwrap_or_else(|_| ProgressStyle::default_spinner())
            .tick_chars("|/-\\ ")
    }

    /// News from the running phase.
    pub fn update(&mut self, progress: &Progress) {
        let Some(bar) = &self.bar else {
            return;
        };
        match progress {
            Progress::Deadline(d) => {
                self.limit = format!(" of {} deadline", secs(*d));
                bar.set_style(self.style());
            }
            Progress::CommandTimeout(d) => {
                self.limit = format!(" (each command up to {})", secs(*d));
                bar.set_style(self.style());
            }
            Progress::Reading(text) => {
                bar.set_message(format!(": {}", escape::terminal(text)));
            }
        }
    }

    /// The phase ended, or something else needs the terminal: remove the
    /// line, leaving nothing behind.
    pub fn clear(&mut self) {
        if let Some(bar) = self.bar.take() {
            SHOWN.lock().unwrap_or_else(|p| p.into_inner()).take();
            bar.finish_and_clear();
        }
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        self.clear();
    }
}
