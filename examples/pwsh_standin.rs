//! A stand-in for powershell.exe with the Lync Server Management Shell, for
//! edgefail's tests (built by `cargo test`, never installed).
//!
//! A thin wrapper over `edgefail::sim::shell`, the one parser of
//! edgefail's scripts (also behind `edgefail rehearse`). It takes the arguments exactly as powershell.exe would receive them
//! (`-NoProfile -NonInteractive -EncodedCommand <base64 of UTF-16LE>`),
//! decodes the script, and accepts only the script forms edgefail documents;
//! anything else fails the way PowerShell does for an unknown command. Names
//! arrive as single-quoted literals and are parsed back with PowerShell's
//! rules, so a quoting mistake shows up as a wrong name, not a pass.
//!
//! State (services per host, sites, pools, CMS replicas, faults to inject)
//! lives in a JSON file named by `--state`, locked while in use so parallel
//! invocations see each other's changes: shared by commands that only
//! read, so machines answer side by side as real ones do, alone by one
//! that changes something. A log of every action is appended to
//! `<state>.log`, one JSON line per action.
//! `--host NAME` says which machine this invocation plays.
//!
//! Given edgefail's session bootstrap as its script, it plays a PowerShell
//! session instead: checks the bootstrap (and its module), prints the ready
//! line, then answers framed requests from stdin one by one, keeping the
//! module loaded across them, until stdin closes. A fault of action `die`
//! ends the process mid-command without an answer; `hang` never answers.
//!
//! Every process counts itself (a line with its host in `<state>.starts`)
//! and first sleeps `startup_ms`, as powershell.exe and `Import-Module`
//! take time.
//!
//! Usage: pwsh_standin --state FILE --host NAME -NoProfile -NonInteractive -EncodedCommand B64

use std::fs::OpenOptions;
use std::io::{BufRead, Read, Seek, SeekFrom, Write};
use std::process::ExitCode;
use std::time::Duration;

use edgefail::sim::shell::{self, Action, PsError, State, ps_error};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprint!("{}", e.render());
            ExitCode::from(1)
        }
    }
}

fn run(args: &[String]) -> Result<String, PsError> {
    let mut state_path = None;
    let mut host = None;
    let mut rest = args;
    while let [flag, value, tail @ ..] = rest {
        match flag.as_str() {
            "--state" => state_path = Some(value.clone()),
            "--host" => host = Some(value.clone()),
            _ => break,
        }
        rest = tail;
    }
    let (state_path, host) = match (state_path, host) {
        (Some(s), Some(h)) => (s, h),
        _ => {
            return Err(ps_error(
                "pwsh_standin",
                "usage: --state FILE --host NAME <powershell arguments>",
            ));
        }
    };
    let script = match rest {
        [a, b, c, encoded]
            if a == "-NoProfile" && b == "-NonInteractive" && c == "-EncodedCommand" =>
        {
            shell::decode(encoded)?
        }
        _ => {
            return Err(ps_error(
                "powershell.exe",
                format!(
                    "this stand-in accepts only -NoProfile -NonInteractive -EncodedCommand <base64>, got {rest:?}"
                ),
            ));
        }
    };
    // A process starts: count it, and take as long as powershell.exe would.
    append(&format!("{state_path}.starts"), &format!("{host}\n"))?;
    let startup_ms = with_state(&state_path, |state| state.startup_ms)?;
    std::thread::sleep(Duration::from_millis(startup_ms));
    if script.contains("$edgefailTag") {
        let session = with_state(&state_path, |state| shell::bootstrap(state, &script))??;
        serve(&state_path, &host, &session);
        return Ok(String::new());
    }
    let action = with_state(&state_path, |state| shell::run(state, &host, &script))??;
    match play(action) {
        Some(out) => Ok(out),
        // Died: no output, a failing exit.
        None => std::process::exit(1),
    }
}

/// Answer framed requests from stdin until it closes.
fn serve(state_path: &str, host: &str, session: &shell::Session) {
    let mut stdout = std::io::stdout().lock();
    let say = |out: &mut std::io::StdoutLock<'_>, line: &str| {
        // edgefail is gone if it cannot be written to.
        if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
            std::process::exit(0);
        }
    };
    say(&mut stdout, &format!("{} ready", session.tag));
    let stdin = std::io::stdin();
    let mut line = String::new();
    loop {
        line.clear();
        match stdin.lock().read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let answer = match shell::parse_request(&line) {
            Err(e) => {
                // Not a request edgefail sends: PowerShell's loop would fail
                // on it too, and the session would end.
                eprint!("{}", e.render());
                std::process::exit(1);
            }
            Ok((id, body)) => {
                let result = with_state(state_path, |state| {
                    shell::run_in_session(state, host, &body)
                })
                .and_then(|r| r)
                .map(|action| match play(action) {
                    Some(out) => out,
                    None => std::process::exit(1),
                });
                shell::frame_answer(&session.tag, id, &result)
            }
        };
        say(&mut stdout, &answer);
    }
}

/// Play out what a script did: its output, or None when the process dies.
fn play(action: Action) -> Option<String> {
    match action {
        Action::Print(s) => Some(s),
        Action::Slow(s, ms) => {
            std::thread::sleep(Duration::from_millis(ms));
            Some(s)
        }
        Action::Hang => hang(),
        Action::HangForever => loop {
            std::thread::sleep(Duration::from_secs(3600));
        },
        Action::Die => None,
    }
}

/// Run `f` on the state file's contents as one machine's command and keep
/// what it changed. Commands that only read (most of them) hold the file
/// shared, so commands to different machines run side by side as they do
/// on real machines; one that changes the state runs again on the file
/// held alone and writes it back. `f` works on the state alone, so running
/// it twice is safe. Log entries go to `<state>.log`, one JSON line each,
/// appended whatever the lock.
fn with_state<T>(path: &str, f: impl Fn(&mut State) -> T) -> Result<T, PsError> {
    let io = |e: std::io::Error| ps_error("pwsh_standin", format!("state file {path}: {e}"));
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(io)?;
    file.lock_shared().map_err(io)?;
    let (mut state, before) = load(path, &mut file)?;
    let result = f(&mut state);
    let log = std::mem::take(&mut state.log);
    if save_text(&state)? == before {
        append_log(path, &log)?;
        file.unlock().map_err(io)?;
        return Ok(result);
    }
    file.unlock().map_err(io)?;
    drop(result);

    file.lock().map_err(io)?;
    let (mut state, _) = load(path, &mut file)?;
    let result = f(&mut state);
    let log = std::mem::take(&mut state.log);
    let out = save_text(&state)?;
    file.set_len(0).map_err(io)?;
    file.seek(SeekFrom::Start(0)).map_err(io)?;
    file.write_all(out.as_bytes()).map_err(io)?;
    append_log(path, &log)?;
    file.unlock().map_err(io)?;
    Ok(result)
}

/// The state in `file` (at its start), and its text as it would be saved.
fn load(path: &str, file: &mut std::fs::File) -> Result<(State, String), PsError> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0))
        .and_then(|_| file.read_to_string(&mut text))
        .map_err(|e| ps_error("pwsh_standin", format!("state file {path}: {e}")))?;
    let mut state: State = serde_json::from_str(&text)
        .map_err(|e| ps_error("pwsh_standin", format!("state file {path}: {e}")))?;
    // The log lives in `<state>.log`: whatever the file says there is
    // not read, so that only this command's entries are appended.
    state.log.clear();
    let saved = save_text(&state)?;
    Ok((state, saved))
}

/// The state as saved: compact, without the log.
fn save_text(state: &State) -> Result<String, PsError> {
    serde_json::to_string(state).map_err(|e| ps_error("pwsh_standin", e.to_string()))
}

/// Append `entries` to `<state>.log`, one JSON line each.
fn append_log(path: &str, entries: &[shell::LogEntry]) -> Result<(), PsError> {
    let mut lines = String::new();
    for e in entries {
        let line = serde_json::to_string(e).map_err(|e| ps_error("pwsh_standin", e.to_string()))?;
        lines.push_str(&line);
        lines.push('\n');
    }
    append(&format!("{path}.log"), &lines)
}

/// Append `text` to the file `path` in one write, so the lines of
/// processes running side by side never interleave.
fn append(path: &str, text: &str) -> Result<(), PsError> {
    if text.is_empty() {
        return Ok(());
    }
    OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| ps_error("pwsh_standin", format!("{path}: {e}")))
}

/// Hang like a stuck cmdlet. Over ssh nobody kills this process when
/// edgefail gives up (sshd only closes the channel), so it ends once its
/// session is gone and it has been handed to another parent: tests must not
/// leave hour-long sleepers behind.
fn hang() -> ! {
    #[cfg(unix)]
    {
        let parent = std::os::unix::process::parent_id();
        loop {
            std::thread::sleep(std::time::Duration::from_millis(100));
            if std::os::unix::process::parent_id() != parent {
                std::process::exit(124);
            }
        }
    }
    #[cfg(not(unix))]
    loop {
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
}
