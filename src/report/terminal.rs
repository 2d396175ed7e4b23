//! The operator at a terminal: questions go to stderr (stdout may be JSON),
//! the answer is one line of stdin, and only the exact word proceeds.

use std::io::{BufRead, Write};

use async_trait::async_trait;

use crate::operator::Operator;

/// The terminal on stdin/stderr.
#[derive(Debug, Clone, Copy)]
pub struct Terminal {
    present: bool,
}

impl Terminal {
    /// The terminal this process was started on, if stdin is one.
    pub fn stdin() -> Terminal {
        Terminal {
            present: crate::platform::stdin_is_terminal(),
        }
    }
}

/// Print `prompt` on stderr, read one line from stdin, and say whether it
/// was `word` (case aside). A read error or end of input is a no.
fn ask_blocking(prompt: &str, word: &str) -> bool {
    let mut err = std::io::stderr().lock();
    let _ = write!(err, "{prompt}");
    let _ = err.flush();
    drop(err);
    let mut answer = String::new();
    match std::io::stdin().lock().read_line(&mut answer) {
        Ok(_) => answer.trim().eq_ignore_ascii_case(word),
        Err(_) => false,
    }
}

#[async_trait]
impl Operator for Terminal {
    fn present(&self) -> bool {
        self.present
    }

    async fn ask(&self, prompt: &str, word: &str) -> bool {
        if !self.present {
            return false;
        }
        let (prompt, word) = (prompt.to_string(), word.to_string());
        tokio::task::spawn_blocking(move || ask_blocking(&prompt, &word))
            .await
            .unwrap_or(false)
    }
}
