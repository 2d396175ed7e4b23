//! Shared test harness: run the real edgefail binary, find the stand-in,
//! demand the servers a test needs.

#![allow(dead_code)]

pub mod prosody;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The edgefail binary cargo built for this test run.
pub fn edgefail_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_edgefail"))
}

/// A program the test needs; a missing one FAILS the test with how to
/// install it (never a silent skip).
#[track_caller]
pub fn need(program: &str, package: &str) -> PathBuf {
    for dir in [
        "/usr/sbin",
        "/usr/bin",
        "/sbin",
        "/bin",
        "/usr/local/bin",
        "/usr/local/sbin",
    ] {
        let p = Path::new(dir).join(program);
        if p.is_file() {
            return p;
        }
    }
    panic!(
        "this test needs `{program}`, which is not installed: run `apt-get install -y {package}` (.ci/run does this)"
    );
}

/// One run of edgefail.
pub struct Run {
    cmd: Command,
    stdin: Option<String>,
    display: String,
}

/// What a run printed and how it exited.
#[derive(Debug)]
pub struct Outcome {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    display: String,
}

impl Run {
    pub fn new<I, S>(args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut cmd = Command::new(edgefail_bin());
        let args: Vec<_> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
        let display = args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ");
        cmd.args(&args)
            .env_remove("EDGEFAIL_TOPOLOGY")
            .env_remove("RUST_LOG")
            .env("NO_COLOR", "1");
        Run {
            cmd,
            stdin: None,
            display: format!("edgefail {display}"),
        }
    }

    pub fn env(mut self, key: &str, value: impl AsRef<std::ffi::OsStr>) -> Run {
        self.cmd.env(key, value);
        self
    }

    pub fn current_dir(mut self, dir: &Path) -> Run {
        self.cmd.current_dir(dir);
        self
    }

    pub fn stdin(mut self, text: &str) -> Run {
        self.stdin = Some(text.to_string());
        self
    }

    pub fn run(mut self) -> Outcome {
        use std::io::Write;
        self.cmd
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = self.cmd.spawn().expect("start edgefail");
        if let Some(text) = self.stdin.take() {
            let mut pipe = child.stdin.take().expect("stdin");
            let _ = pipe.write_all(text.as_bytes());
        }
        let out = child.wait_with_output().expect("wait for edgefail");
        Outcome {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            display: self.display,
        }
    }
}

impl Outcome {
    /// Assert the exit code, printing everything on mismatch.
    #[track_caller]
    pub fn code(self, expected: i32) -> Outcome {
        assert_eq!(
            self.code, expected,
            "`{}` exited {} (expected {expected})\n--- stdout\n{}\n--- stderr\n{}",
            self.display, self.code, self.stdout, self.stderr
        );
        self
    }

    #[track_caller]
    pub fn stdout_has(self, needle: &str) -> Outcome {
        assert!(
            self.stdout.contains(needle),
            "stdout of `{}` lacks {needle:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.display,
            self.stdout,
            self.stderr
        );
        self
    }

    #[track_caller]
    pub fn stderr_has(self, needle: &str) -> Outcome {
        assert!(
            self.stderr.contains(needle),
            "stderr of `{}` lacks {needle:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.display,
            self.stdout,
            self.stderr
        );
        self
    }

    /// Parse stdout as JSON Lines.
    #[track_caller]
    pub fn events(&self) -> Vec<serde_json::Value> {
        self.stdout
            .lines()
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|e| {
                    panic!("not a JSON line ({e}): {l}\n--- stderr\n{}", self.stderr)
                })
            })
            .collect()
    }
}
