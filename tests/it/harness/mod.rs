//! Shared test harness: run the real edgefail binary, find the stand-in,
//! write topologies (`topology`), demand the servers a test needs.

#![allow(dead_code)]

pub mod bind;
pub mod dnsproxy;
pub mod net;
pub mod prosody;
pub mod pty;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub mod sshd;
pub mod standin;
pub mod topology;

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
        // Journals of runs without --journal go to a directory of this test
        // process, never the user's own state directory.
        let state = std::env::temp_dir().join(format!("edgefail-it-state-{}", std::process::id()));
        cmd.args(&args)
            .env_remove("EDGEFAIL_TOPOLOGY")
            .env_remove("RUST_LOG")
            .env("XDG_STATE_HOME", state)
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

    /// Start edgefail without waiting (for signals and concurrent runs).
    pub fn spawn(mut self) -> Spawned {
        self.cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let child = self.cmd.spawn().expect("start edgefail");
        Spawned {
            child: Some(child),
            display: self.display,
        }
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

/// An edgefail started in the background; killed (by its PID) if the test
/// ends without waiting for it.
pub struct Spawned {
    child: Option<std::process::Child>,
    display: String,
}

impl Spawned {
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or_default()
    }

    /// Send a signal by name (INT, TERM, KILL) to this process only.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([format!("-{name}"), self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} {} failed", self.pid());
    }

    pub fn wait(mut self) -> Outcome {
        let child = self.child.take().expect("child");
        let out = child.wait_with_output().expect("wait for edgefail");
        Outcome {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            display: std::mem::take(&mut self.display),
        }
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Wait until `path` contains `needle` (a journal line, say), up to 20 s.
#[track_caller]
pub fn wait_for_text(path: &Path, needle: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        if std::fs::read_to_string(path).is_ok_and(|t| t.contains(needle)) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{} never contained {needle:?}; it has:\n{}",
            path.display(),
            std::fs::read_to_string(path).unwrap_or_default()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Every readable record of a journal file, in order.
pub fn journal_records(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// A completed failover whose Lync steps (2, 3, 7) each reached verified.
#[track_caller]
pub fn assert_lync_steps_verified(out: &Outcome) {
    assert!(out.stdout.contains("Failover complete"), "{}", out.stdout);
    for step in ["services.stop", "route.set", "services.start"] {
        assert!(
            out.stdout.contains(&format!("{step:<16} verify verified")),
            "{step} not verified:\n{}",
            out.stdout
        );
    }
}
