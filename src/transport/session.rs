//! One PowerShell process per machine for the whole run: started once over
//! the machine's transport (local or ssh) with edgefail's session bootstrap
//! as its `-EncodedCommand`, the module imported once, then every script of
//! the run sent through it as a framed request (see `powershell`).
//!
//! A session that dies before answering (EOF, a broken pipe) is replaced
//! once and the script sent again: the forms edgefail sends are reads or
//! changes that hold their target state, so a second send is safe. A
//! second death, or a script that gets no answer within its timeout, fails
//! the command as a lone process would; a session that stopped answering is
//! ended, and the next command starts a new one.

use std::process::Stdio;
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

use super::{InFlight, Launch, Output, Transport, TransportError};
use crate::powershell::{self, Script};

/// How much of a session's own stderr is kept for messages.
const STDERR_KEPT: usize = 16 * 1024;

/// How long a session that ended is given to say why (exit code, stderr).
const EXIT_GRACE: Duration = Duration::from_secs(2);

#[derive(Debug)]
pub struct Session<L: Launch> {
    launch: Arc<L>,
    module: Option<String>,
    slot: Arc<Mutex<Slot>>,
}

#[derive(Debug, Default)]
struct Slot {
    live: Option<Live>,
    /// Why the background start failed: the first command reports it
    /// rather than waiting through a second attempt.
    warm_error: Option<TransportError>,
    /// A session of this machine died mid-command and was replaced.
    replaced: bool,
}

/// A running session process.
#[derive(Debug)]
struct Live {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    tag: String,
    next_id: u64,
    stderr: Arc<StdMutex<String>>,
    stderr_task: JoinHandle<()>,
    _in_flight: Option<InFlight>,
}

/// How starting a session went wrong.
enum StartError {
    /// PowerShell ran and failed (the module did not load, ...): its output,
    /// read as the command's own.
    PowerShell(Output),
    Transport(TransportError),
}

/// How one exchange went wrong.
enum ExchangeError {
    /// No answer within the timeout.
    Timeout,
    /// The session ended (or its pipes broke) before answering.
    Died,
}

impl<L: Launch> Session<L> {
    pub fn new(launch: L, module: Option<String>) -> Session<L> {
        Session {
            launch: Arc::new(launch),
            module,
            slot: Arc::new(Mutex::new(Slot::default())),
        }
    }

    /// Start a session if none runs.
    async fn ensure(
        launch: &L,
        module: Option<&str>,
        slot: &mut Slot,
        timeout: Duration,
    ) -> Result<(), StartError> {
        if slot.live.is_none() {
            slot.live = Some(start(launch, module, timeout).await?);
        }
        Ok(())
    }
}

#[async_trait]
impl<L: Launch> Transport for Session<L> {
    fn describe(&self) -> String {
        format!("{} (session)", self.launch.describe())
    }

    fn sent_text(&self, script: &Script) -> String {
        script.body.clone()
    }

    fn warm_up(&self, timeout: Duration) {
        let (launch, module, slot) = (
            Arc::clone(&self.launch),
            self.module.clone(),
            Arc::clone(&self.slot),
        );
        // Without a runtime there is nothing to overlap with; the first
        // command starts the session.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let mut slot = slot.lock().await;
                if let Err(StartError::Transport(e)) =
                    Session::ensure(&*launch, module.as_deref(), &mut slot, timeout).await
                {
                    tracing::debug!(via = %launch.describe(), "session did not start: {e}");
                    slot.warm_error = Some(e);
                }
            });
        }
    }

    fn close(&self) -> Option<JoinHandle<()>> {
        // Held only while a command or a start is under way: then the
        // process ends when the transport is dropped.
        let live = self.slot.try_lock().ok()?.live.take()?;
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        Some(runtime.spawn(live.shut_down(EXIT_GRACE)))
    }

    async fn run(&self, script: &Script, timeout: Duration) -> Result<Output, TransportError> {
        let mut slot = self.slot.lock().await;
        if let Some(e) = slot.warm_error.take() {
            return Err(e);
        }
        loop {
            match Session::ensure(&*self.launch, self.module.as_deref(), &mut slot, timeout).await {
                Ok(()) => {}
                Err(StartError::PowerShell(out)) => return Ok(out),
                Err(StartError::Transport(e)) => return Err(e),
            }
            let Some(live) = slot.live.as_mut() else {
                continue;
            };
            match live.exchange(script, timeout).await {
                Ok(out) => return Ok(out),
                Err(ExchangeError::Timeout) => {
                    // Whatever it is doing, this session is no longer ours.
                    if let Some(live) = slot.live.take() {
                        tokio::spawn(live.shut_down(Duration::ZERO));
                    }
                    return Err(TransportError::Timeout { after: timeout });
                }
                Err(ExchangeError::Died) => {
                    let Some(live) = slot.live.take() else {
                        continue;
                    };
                    let (code, stderr) = live.ended().await;
                    let why = ended_why(code, &stderr);
                    if !slot.replaced {
                        slot.replaced = true;
                        tracing::warn!(
                            via = %self.launch.describe(),
                            "the PowerShell session ended during {} ({why}); starting a new one and sending it again",
                            script.action
                        );
                        continue;
                    }
                    return Err(self.launch.failure(code, &stderr).unwrap_or(
                        TransportError::SessionEnded {
                            why: format!("without answering, in its replacement too ({why})"),
                        },
                    ));
                }
            }
        }
    }
}

/// "exit code 1: <last line of stderr>" for messages.
fn ended_why(code: Option<i32>, stderr: &str) -> String {
    let last = stderr
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .map(crate::names::printable);
    let code = match code {
        Some(c) => format!("exit code {c}"),
        None => "ended by a signal".to_string(),
    };
    match last {
        Some(line) => format!("{code}: {line}"),
        None => code,
    }
}

/// A tag no script can guess: letters and digits, new per session.
fn new_tag() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let mut seed = [0u8; 16];
    // Entropy from the OS where it is cheap; the clock and a counter always.
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut seed);
    let mixed = u128::from_le_bytes(seed)
        ^ nanos
        ^ (u128::from(std::process::id()) << 64)
        ^ u128::from(COUNT.fetch_add(1, Ordering::Relaxed));
    format!("ef{mixed:032x}")
}

async fn start(
    launch: &impl Launch,
    module: Option<&str>,
    timeout: Duration,
) -> Result<Live, StartError> {
    let tag = new_tag();
    let bootstrap = powershell::session_bootstrap(module, &tag);
    let mut cmd = launch.command(&bootstrap).map_err(StartError::Transport)?;
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    crate::platform::own_process_group(&mut cmd);
    let mut child = cmd.spawn().map_err(|source| {
        StartError::Transport(TransportError::Spawn {
            program: launch.program().to_string(),
            hint: if source.kind() == std::io::ErrorKind::NotFound {
                launch.not_found_hint()
            } else {
                ""
            },
            source,
        })
    })?;
    let in_flight = child.id().map(InFlight::new);
    let (Some(stdin), Some(stdout), Some(mut err)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err(StartError::Transport(TransportError::Other(
            "the session's pipes were not set up".into(),
        )));
    };
    let stderr = Arc::new(StdMutex::new(String::new()));
    let kept = Arc::clone(&stderr);
    let stderr_task = tokio::spawn(async move {
        let mut buf = [0u8; 4096];
        while let Ok(n) = err.read(&mut buf).await {
            if n == 0 {
                break;
            }
            if let Ok(mut text) = kept.lock()
                && text.len() < STDERR_KEPT
            {
                text.push_str(&String::from_utf8_lossy(buf.get(..n).unwrap_or_default()));
            }
        }
    });
    let mut live = Live {
        child,
        stdin,
        stdout: BufReader::new(stdout),
        tag,
        next_id: 1,
        stderr,
        stderr_task,
        _in_flight: in_flight,
    };
    let ready = format!("{} ready", live.tag);
    let wait = async {
        loop {
            match live.line().await {
                Some(line) if line.trim_end().ends_with(&ready) => return true,
                // Anything before (a banner, a profile's chatter) is not ours.
                Some(_) => {}
                None => return false,
            }
        }
    };
    let began = std::time::Instant::now();
    // Starting is a command of its own, plus the connection where there is
    // one.
    let waited = tokio::time::timeout(timeout + launch.connect_allowance(), wait).await;
    tracing::debug!(via = %launch.describe(), "the PowerShell session started in {:?}", began.elapsed());
    match waited {
        Err(_) => Err(StartError::Transport(TransportError::Timeout {
            after: timeout + launch.connect_allowance(),
        })),
        Ok(true) => Ok(live),
        Ok(false) => {
            let (code, stderr) = live.ended().await;
            if let Some(e) = launch.failure(code, &stderr) {
                return Err(StartError::Transport(e));
            }
            if code != Some(0) && !stderr.trim().is_empty() {
                // PowerShell's own error (the module did not load): the
                // command fails with it, as it would alone.
                return Err(StartError::PowerShell(Output {
                    stdout: String::new(),
                    stderr: launch.clean_stderr(&stderr),
                    code,
                }));
            }
            Err(StartError::Transport(TransportError::SessionEnded {
                why: format!("before it was ready ({})", ended_why(code, &stderr)),
            }))
        }
    }
}

impl Live {
    /// The next line of stdout, or None at its end.
    async fn line(&mut self) -> Option<String> {
        let mut buf = Vec::new();
        match self.stdout.read_until(b'\n', &mut buf).await {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(String::from_utf8_lossy(&buf).into_owned()),
        }
    }

    /// Send one script and read its answer.
    async fn exchange(
        &mut self,
        script: &Script,
        timeout: Duration,
    ) -> Result<Output, ExchangeError> {
        let id = self.next_id;
        self.next_id += 1;
        let mut request = script.request(id);
        request.push('\n');
        let prefix = format!("{} {id} ", self.tag);
        let work = async {
            if self.stdin.write_all(request.as_bytes()).await.is_err()
                || self.stdin.flush().await.is_err()
            {
                return Err(ExchangeError::Died);
            }
            loop {
                let Some(line) = self.line().await else {
                    return Err(ExchangeError::Died);
                };
                // An answer may follow whatever a script wrote to the
                // console without a line break.
                let Some(at) = line.find(&prefix) else {
                    continue;
                };
                let answer = line.get(at + prefix.len()..).unwrap_or_default();
                if let Some(out) = parse_answer(answer) {
                    return Ok(out);
                }
            }
        };
        match tokio::time::timeout(timeout, work).await {
            Err(_) => Err(ExchangeError::Timeout),
            Ok(r) => r,
        }
    }

    /// Close stdin, the end of the session for the far side, and give it
    /// `grace` to exit; then ask it to end (ssh closes its connection
    /// properly), and at last end it.
    async fn shut_down(self, grace: Duration) {
        let Live {
            mut child, stdin, ..
        } = self;
        drop(stdin);
        if tokio::time::timeout(grace, child.wait()).await.is_ok() {
            return;
        }
        if let Some(pid) = child.id() {
            crate::platform::ask_to_end(pid);
        }
        if tokio::time::timeout(EXIT_GRACE, child.wait())
            .await
            .is_err()
        {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
    }

    /// How the process ended: its exit code and what it said on stderr.
    async fn ended(mut self) -> (Option<i32>, String) {
        let code = match tokio::time::timeout(EXIT_GRACE, self.child.wait()).await {
            Ok(Ok(status)) => status.code(),
            _ => {
                let _ = self.child.start_kill();
                None
            }
        };
        let _ = tokio::time::timeout(EXIT_GRACE, &mut self.stderr_task).await;
        let stderr = self.stderr.lock().map(|s| s.clone()).unwrap_or_default();
        (code, stderr)
    }
}

/// `<ok|error> <base64 stdout> <base64 error text>` into an Output: an error
/// is exit code 1 with its text on stderr, as a lone process reports it.
fn parse_answer(answer: &str) -> Option<Output> {
    let mut fields = answer.trim_end_matches(['\r', '\n']).split(' ');
    let status = fields.next()?;
    let stdout = decode_utf8(fields.next()?)?;
    let stderr = decode_utf8(fields.next()?)?;
    if fields.next().is_some() {
        return None;
    }
    let code = match status {
        "ok" => 0,
        "error" => 1,
        _ => return None,
    };
    Some(Output {
        stdout,
        stderr,
        code: Some(code),
    })
}

fn decode_utf8(field: &str) -> Option<String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(field)
        .ok()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn answers_are_read_field_by_field() {
        let out = parse_answer(&format!("ok {} \r\n", b64("[1]\r\n"))).unwrap();
        assert_eq!((out.stdout.as_str(), out.code), ("[1]\r\n", Some(0)));
        let out = parse_answer(&format!("error  {}", b64("Set-CsSite : no"))).unwrap();
        assert_eq!(
            (out.stderr.as_str(), out.code),
            ("Set-CsSite : no", Some(1))
        );
        // Anything else is not an answer.
        for bad in ["", "ok", "maybe  ", "ok !! ", "ok  x y", "ok   "] {
            assert!(parse_answer(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn tags_are_letters_and_digits_and_differ() {
        let (a, b) = (new_tag(), new_tag());
        assert_ne!(a, b);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()), "{a}");
    }
}
