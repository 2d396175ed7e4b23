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
//! State (services per host, sites, pools, CMS replicas, faults to inject,
//! and a log of every action) lives in a JSON file named by `--state`,
//! locked while in use so parallel invocations see each other's changes.
//! `--host NAME` says which machine this invocation plays.
//!
//! Usage: pwsh_standin --state FILE --host NAME -NoProfile -NonInteractive -EncodedCommand B64

use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom, Write};
use std::process::ExitCode;

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
    with_state(&state_path, |state| shell::run(state, &host, &script))
}

fn with_state(
    path: &str,
    f: impl FnOnce(&mut State) -> Result<Action, PsError>,
) -> Result<String, PsError> {
    let io = |e: std::io::Error| ps_error("pwsh_standin", format!("state file {path}: {e}"));
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(io)?;
    file.lock().map_err(io)?;
    let mut text = String::new();
    file.read_to_string(&mut text).map_err(io)?;
    let mut state: State = serde_json::from_str(&text)
        .map_err(|e| ps_error("pwsh_standin", format!("state file {path}: {e}")))?;
    let result = f(&mut state);
    let out = serde_json::to_string_pretty(&state)
        .map_err(|e| ps_error("pwsh_standin", e.to_string()))?;
    file.set_len(0).map_err(io)?;
    file.seek(SeekFrom::Start(0)).map_err(io)?;
    file.write_all(out.as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)?;
    file.unlock().map_err(io)?;
    drop(file);
    match result? {
        Action::Print(s) => Ok(s),
        Action::Slow(s, ms) => {
            std::thread::sleep(std::time::Duration::from_millis(ms));
            Ok(s)
        }
        Action::Hang => hang(),
        Action::HangForever => loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        },
    }
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
