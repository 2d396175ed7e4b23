//! The operator, as a step or the runner sees them: someone who can be
//! asked to confirm. The CLI puts a terminal behind this (report::Terminal);
//! rehearsals put nobody, tests a script.

#[cfg(test)]
use std::collections::VecDeque;
#[cfg(test)]
use std::sync::Mutex;

use async_trait::async_trait;

#[async_trait]
pub trait Operator: Send + Sync {
    /// Whether anyone is there to answer at all (no terminal: nobody).
    fn present(&self) -> bool;

    /// Ask `prompt`; true only when the answer is `word` (case aside). No
    /// answer, or no one to give one, is a no.
    async fn ask(&self, prompt: &str, word: &str) -> bool;
}

/// Nobody to ask: every question is answered no.
#[derive(Debug, Default, Clone, Copy)]
pub struct Absent;

#[async_trait]
impl Operator for Absent {
    fn present(&self) -> bool {
        false
    }

    async fn ask(&self, _prompt: &str, _word: &str) -> bool {
        false
    }
}

/// Answers given in advance, one per question, in order; questions past
/// the last answer get no. For tests.
#[cfg(test)]
#[derive(Debug, Default)]
pub struct Scripted {
    answers: Mutex<VecDeque<String>>,
    asked: Mutex<Vec<String>>,
}

#[cfg(test)]
impl Scripted {
    pub fn new<I: IntoIterator<Item = S>, S: Into<String>>(answers: I) -> Scripted {
        Scripted {
            answers: Mutex::new(answers.into_iter().map(Into::into).collect()),
            asked: Mutex::default(),
        }
    }

    /// The prompts asked so far.
    pub fn asked(&self) -> Vec<String> {
        self.asked.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

#[cfg(test)]
#[async_trait]
impl Operator for Scripted {
    fn present(&self) -> bool {
        true
    }

    async fn ask(&self, prompt: &str, word: &str) -> bool {
        self.asked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(prompt.to_string());
        let answer = self
            .answers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop_front();
        answer.is_some_and(|a| a.trim().eq_ignore_ascii_case(word))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn scripted_answers_in_order_then_no() {
        let op = Scripted::new(["yes", "nope"]);
        assert!(op.ask("first? ", "yes").await);
        assert!(!op.ask("second? ", "yes").await);
        assert!(!op.ask("third? ", "yes").await);
        assert_eq!(op.asked().len(), 3);
        assert!(!Absent.ask("anyone? ", "yes").await);
        assert!(!Absent.present());
    }
}
