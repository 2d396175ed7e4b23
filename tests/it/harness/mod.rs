//! Shared test harness: run the real edgefail binary (`Run`, one builder
//! for every command), read what it printed (`Outcome`, typed events in
//! `events`), write topologies (`topology`), and demand and start the
//! servers a test needs.

#![allow(dead_code)]

pub mod bind;
pub mod dnsproxy;
pub mod events;
pub mod net;
pub mod prosody;
pub mod pty;
pub mod sshd;
pub mod standin;
pub mod topology;

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use edgefail::event::{Event, Phase, RunOutcome};
use edgefail::steps::StepId;

pub use events::{Events, journal_events};

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

/// The environment every edgefail of the tests runs in: no topology or log
/// filter from the caller, no colour, and journals of runs without
/// `--journal` in a directory of this test process, never the user's own
/// state directory.
fn isolate(cmd: &mut Command) -> &mut Command {
    let state = std::env::temp_dir().join(format!("edgefail-it-state-{}", std::process::id()));
    cmd.env_remove("EDGEFAIL_TOPOLOGY")
        .env_remove("RUST_LOG")
        .env("XDG_STATE_HOME", state)
        .env("NO_COLOR", "1")
}

/// The XDG_STATE_HOME runs of `topology` get: a folder beside it.
pub fn state_home(topology: &Path) -> PathBuf {
    topology
        .parent()
        .unwrap_or(Path::new("."))
        .join("state-home")
}

/// The lock file of the estate of `topology` (domain and zone given), in
/// its default state directory.
pub fn lock_path(topology: &Path, domain: &str, zone: &str) -> PathBuf {
    state_home(topology).join("edgefail").join(format!(
        "{}.lock",
        edgefail::journal::estate_key(domain, zone)
    ))
}

/// One run of edgefail, said the way the operator would say it:
/// `Run::failover(&topology).from("EdgePool1").to("EdgePool2").yes().run()`.
/// Arguments go to the command line in the order they are given;
/// `Run::new(args)` takes a whole list for the odd cases.
pub struct Run {
    args: Vec<OsString>,
    envs: Vec<(OsString, OsString)>,
    dir: Option<PathBuf>,
    stdin: Option<String>,
    /// Programs and arguments edgefail runs inside (`sh -c ...`), if any.
    wrapper: Vec<OsString>,
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
        S: AsRef<OsStr>,
    {
        Run {
            args: args.into_iter().map(|a| a.as_ref().to_owned()).collect(),
            envs: Vec::new(),
            dir: None,
            stdin: None,
            wrapper: Vec::new(),
        }
    }

    /// `edgefail COMMAND -t TOPOLOGY`, with the state directory (journal
    /// and lock, keyed by the estate) beside the topology: tests of the same
    /// estate running at once must not meet on one lock.
    fn command(command: &str, topology: &Path) -> Run {
        Run::new([command, "-t"])
            .arg(topology)
            .env("XDG_STATE_HOME", state_home(topology))
    }

    /// `failover -t TOPOLOGY`.
    pub fn failover(topology: &Path) -> Run {
        Run::command("failover", topology)
    }

    /// `plan -t TOPOLOGY`.
    pub fn plan(topology: &Path) -> Run {
        Run::command("plan", topology)
    }

    /// `validate -t TOPOLOGY`.
    pub fn validate(topology: &Path) -> Run {
        Run::command("validate", topology)
    }

    /// `rehearse -t TOPOLOGY`.
    pub fn rehearse(topology: &Path) -> Run {
        Run::command("rehearse", topology)
    }

    /// `history -t TOPOLOGY`.
    pub fn history(topology: &Path) -> Run {
        Run::command("history", topology)
    }

    /// `unlock -t TOPOLOGY`.
    pub fn unlock(topology: &Path) -> Run {
        Run::command("unlock", topology)
    }

    /// One more argument, as is.
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Run {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    /// More arguments, as they are.
    pub fn args<I, S>(mut self, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    pub fn from(self, pool: &str) -> Run {
        self.args(["--from", pool])
    }

    pub fn to(self, pool: &str) -> Run {
        self.args(["--to", pool])
    }

    /// `--skip STEP` (a `StepId`, or any text: a wrong one is a usage error).
    pub fn skip(self, step: impl std::fmt::Display) -> Run {
        self.args(["--skip".to_string(), step.to_string()])
    }

    /// `--skip` every step but these, in runbook order.
    pub fn only(self, steps: &[StepId]) -> Run {
        StepId::ALL
            .into_iter()
            .filter(|s| !steps.contains(s))
            .fold(self, Run::skip)
    }

    pub fn journal(self, path: &Path) -> Run {
        self.arg("--journal").arg(path)
    }

    /// `--output json`.
    pub fn json(self) -> Run {
        self.args(["--output", "json"])
    }

    pub fn yes(self) -> Run {
        self.arg("--yes")
    }

    pub fn dry_run(self) -> Run {
        self.arg("--dry-run")
    }

    pub fn resume(self) -> Run {
        self.arg("--resume")
    }

    /// `-v` (1) or `-vv` (2).
    pub fn verbose(self, level: usize) -> Run {
        self.arg(format!("-{}", "v".repeat(level)))
    }

    pub fn quiet(self) -> Run {
        self.arg("-q")
    }

    pub fn parallel(self, servers: usize) -> Run {
        self.args(["--parallel".to_string(), servers.to_string()])
    }

    pub fn command_timeout(self, secs: u64) -> Run {
        self.args(["--command-timeout".to_string(), secs.to_string()])
    }

    pub fn verify_timeout(self, secs: u64) -> Run {
        self.args(["--verify-timeout".to_string(), secs.to_string()])
    }

    /// A rehearsal drill, `--inject DRILL`.
    pub fn inject(self, drill: &str) -> Run {
        self.args(["--inject", drill])
    }

    /// The rehearsal's simulated command delay, `--delay-ms MS`.
    pub fn delay_ms(self, ms: u64) -> Run {
        self.args(["--delay-ms".to_string(), ms.to_string()])
    }

    pub fn env(mut self, key: &str, value: impl AsRef<OsStr>) -> Run {
        self.envs.push((key.into(), value.as_ref().to_owned()));
        self
    }

    pub fn current_dir(mut self, dir: &Path) -> Run {
        self.dir = Some(dir.to_path_buf());
        self
    }

    pub fn stdin(mut self, text: &str) -> Run {
        self.stdin = Some(text.to_string());
        self
    }

    /// Run edgefail inside another program: `wrapper[0] wrapper[1..] ARGS`,
    /// where ARGS are edgefail's arguments and `wrapper` names the edgefail
    /// binary where the program expects it (`sh -c SCRIPT EDGEFAIL ...`).
    pub fn inside<I, S>(mut self, wrapper: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.wrapper = wrapper.into_iter().map(|a| a.as_ref().to_owned()).collect();
        self
    }

    /// The arguments, as a command line would show them (no program name).
    pub fn command_line(&self) -> String {
        self.args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Start edgefail on a terminal (`script(1)`), for prompts.
    pub fn on_terminal(self) -> pty::Pty {
        pty::Pty::start(&self.args, &self.envs)
    }

    fn build(&self) -> (Command, String) {
        let mut cmd = match self.wrapper.split_first() {
            Some((program, rest)) => {
                let mut cmd = Command::new(program);
                cmd.args(rest);
                cmd
            }
            None => Command::new(edgefail_bin()),
        };
        cmd.args(&self.args);
        isolate(&mut cmd);
        cmd.envs(self.envs.iter().map(|(k, v)| (k, v)));
        if let Some(dir) = &self.dir {
            cmd.current_dir(dir);
        }
        (cmd, format!("edgefail {}", self.command_line()))
    }

    /// Start edgefail without waiting (for signals and concurrent runs).
    pub fn spawn(self) -> Spawned {
        let (mut cmd, display) = self.build();
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let child = cmd.spawn().expect("start edgefail");
        Spawned {
            child: Some(child),
            display,
        }
    }

    pub fn run(mut self) -> Outcome {
        use std::io::Write;
        let (mut cmd, display) = self.build();
        cmd.stdin(if self.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start edgefail");
        if let Some(text) = self.stdin.take() {
            let mut pipe = child.stdin.take().expect("stdin");
            let _ = pipe.write_all(text.as_bytes());
        }
        Outcome::of(child, display)
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

    /// stdout's events, typed (`--output json`). Panics with the offending
    /// line on one that does not parse.
    #[track_caller]
    pub fn events(&self) -> Vec<Event> {
        events::parse(&self.stdout, &self.context())
    }

    /// stdout as untyped JSON Lines, for output that is not events:
    /// `history --output json`, probe's report.
    #[track_caller]
    pub fn json_lines(&self) -> Vec<serde_json::Value> {
        self.stdout
            .lines()
            .map(|l| {
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}\n{}", self.context()))
            })
            .collect()
    }

    /// How the run ended: its last event, which must be `run_finished`.
    #[track_caller]
    pub fn run_finished(&self) -> (RunOutcome, i32, String) {
        let events = self.events();
        assert!(
            matches!(events.last(), Some(Event::RunFinished { .. })),
            "the last event is not run_finished\n{}",
            self.context()
        );
        events.run_finished()
    }

    /// (phase, outcome) of every finished phase of `step`, in order.
    #[track_caller]
    pub fn phases(&self, step: StepId) -> Vec<(Phase, edgefail::event::Outcome)> {
        self.events().phases(step)
    }

    /// Each of `steps` finished its verify phase verified (events of
    /// `--output json`).
    #[track_caller]
    pub fn assert_verified(&self, steps: &[StepId]) {
        let verified = self.events().verified();
        for step in steps {
            assert!(
                verified.contains(step),
                "{step} not verified; verified: {verified:?}\n{}",
                self.context()
            );
        }
    }

    fn context(&self) -> String {
        format!(
            "--- `{}` stdout\n{}\n--- stderr\n{}",
            self.display, self.stdout, self.stderr
        )
    }

    fn of(child: std::process::Child, display: String) -> Outcome {
        let out = child.wait_with_output().expect("wait for edgefail");
        Outcome {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            display,
        }
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
        Outcome::of(child, std::mem::take(&mut self.display))
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
