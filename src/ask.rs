//! Questions to the operator on the terminal: the prompt goes to stderr
//! (stdout may be JSON), and only the exact word proceeds.

use std::io::{BufRead, Write};

/// Print `prompt` on stderr, read one line from stdin, and say whether it
/// was `word` (case aside). A read error or end of input is a no.
pub fn ask(prompt: &str, word: &str) -> bool {
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
