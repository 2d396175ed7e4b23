//! A terminal for edgefail: `script(1)` gives it a pty, so prompts that
//! only appear on a terminal (the failover confirmation, manual DNS) can be
//! answered the way an operator would. Started by `Run::on_terminal`.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub struct Pty {
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    rx: mpsc::Receiver<String>,
    pub seen: String,
    deadline: Instant,
}

/// Quote for the `sh -c` that script runs.
fn sh_quote(arg: &str) -> String {
    format!("'{}'", arg.replace('\'', r"'\''"))
}

impl Pty {
    /// Start edgefail with `args` (and `envs`) on a terminal, in the tests'
    /// usual environment; 30 s for the whole session.
    pub(super) fn start(args: &[OsString], envs: &[(OsString, OsString)]) -> Pty {
        let script = super::need("script", "bsdutils");
        // `exec`: whatever shell script(1) starts ($SHELL, else /bin/sh,
        // which is dash on Debian and does not exec a lone command itself)
        // must not stay in the terminal's process group, or Ctrl-C ends it
        // and script reports 130 whatever edgefail said.
        let mut line = format!(
            "exec {}",
            sh_quote(&super::edgefail_bin().display().to_string())
        );
        for a in args {
            line.push(' ');
            line.push_str(&sh_quote(&a.to_string_lossy()));
        }
        let mut cmd = Command::new(script);
        cmd.args(["-qec", &line, "/dev/null"]);
        super::isolate(&mut cmd);
        let mut child = cmd
            .envs(envs.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start script");
        let stdin = child.stdin.take();
        let mut stdout = child.stdout.take().expect("script stdout");
        let (tx, rx) = mpsc::channel::<String>();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0
                    || tx
                        .send(String::from_utf8_lossy(&buf[..n]).into_owned())
                        .is_err()
                {
                    break;
                }
            }
        });
        Pty {
            child: Some(child),
            stdin,
            rx,
            seen: String::new(),
            deadline: Instant::now() + Duration::from_secs(30),
        }
    }

    /// Wait until `needle` has appeared `nth` times in the output.
    #[track_caller]
    pub fn wait_for(&mut self, needle: &str, nth: usize) {
        while self.seen.matches(needle).count() < nth {
            let left = self.deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(chunk) => self.seen.push_str(&chunk),
                Err(_) => panic!(
                    "no {needle:?} (#{nth}) in time; output so far:\n{}",
                    self.seen
                ),
            }
        }
    }

    /// Type a line.
    pub fn type_line(&mut self, text: &str) {
        if let Some(stdin) = self.stdin.as_mut() {
            stdin
                .write_all(format!("{text}\n").as_bytes())
                .expect("type into the terminal");
        }
    }

    /// Type keys without Enter (Ctrl-C is "\u{3}": the terminal turns it
    /// into SIGINT for edgefail, as it would for an operator).
    pub fn type_keys(&mut self, keys: &str) {
        if let Some(stdin) = self.stdin.as_mut() {
            stdin
                .write_all(keys.as_bytes())
                .expect("type into the terminal");
            let _ = stdin.flush();
        }
    }

    /// Wait for the end; the exit status is script's, which is edgefail's.
    pub fn finish(mut self) -> (ExitStatus, String) {
        drop(self.stdin.take());
        let mut child = self.child.take().expect("child");
        let status = child.wait().expect("wait for script");
        while let Ok(chunk) = self.rx.recv_timeout(Duration::from_millis(200)) {
            self.seen.push_str(&chunk);
        }
        (status, std::mem::take(&mut self.seen))
    }
}

impl Drop for Pty {
    /// Stop `script` (ours, by its handle) if the test failed midway.
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
