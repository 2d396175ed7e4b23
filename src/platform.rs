//! Everything that differs between operating systems, in one place: who and
//! where we are (user, host, state directory), whether a process lives,
//! files and directories only this user may open, process groups for the
//! commands edgefail starts and how to end them, the interruptions an
//! operator can send (Ctrl-C, SIGTERM; Ctrl-Break, console close), and
//! whether a terminal may be coloured.
//!
//! Each item has its unix path (`#[cfg(unix)]`) beside its Windows path
//! (`#[cfg(windows)]`); nothing outside this module names either. The
//! Windows paths are kept small and lean on `windows-sys` and `whoami`
//! rather than hand-written bindings.

use std::fs::{File, Metadata, OpenOptions};
use std::io::{self, IsTerminal};
use std::path::{Path, PathBuf};

// --- who and where -------------------------------------------------------

/// (user, host) of this process, for lock records and messages. The user
/// as the login environment names it (as edgefail always did), else the
/// OS's account name; the host as the OS names it, else the environment;
/// then a placeholder: this never fails.
pub fn whoami() -> (String, String) {
    let user = env_first(USER_VARS)
        .or_else(|| ::whoami::username().ok().filter(|u| !u.is_empty()))
        .unwrap_or_else(unknown_user);
    let host = ::whoami::hostname()
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| env_first(HOST_VARS))
        .unwrap_or_else(|| "localhost".into());
    (user, host)
}

#[cfg(unix)]
const USER_VARS: &[&str] = &["USER", "LOGNAME"];
#[cfg(windows)]
const USER_VARS: &[&str] = &["USERNAME"];

#[cfg(unix)]
const HOST_VARS: &[&str] = &["HOSTNAME"];
#[cfg(windows)]
const HOST_VARS: &[&str] = &["COMPUTERNAME"];

fn env_first(names: &[&str]) -> Option<String> {
    names
        .iter()
        .filter_map(|n| std::env::var(n).ok())
        .find(|v| !v.is_empty())
}

#[cfg(unix)]
fn unknown_user() -> String {
    // SAFETY: geteuid(2) cannot fail and touches no memory.
    let uid = unsafe { libc::geteuid() };
    format!("uid{uid}")
}

#[cfg(windows)]
fn unknown_user() -> String {
    "unknown".into()
}

/// Where edgefail keeps its journals and locks unless told otherwise:
/// `$XDG_STATE_HOME/edgefail`, else `~/.local/state/edgefail` on unix;
/// `%LOCALAPPDATA%\edgefail` on Windows; the temporary directory's
/// `edgefail` when the environment names no home.
#[cfg(unix)]
pub fn default_state_dir() -> PathBuf {
    non_empty_var("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| non_empty_var("HOME").map(|h| PathBuf::from(h).join(".local").join("state")))
        .unwrap_or_else(std::env::temp_dir)
        .join("edgefail")
}

#[cfg(windows)]
pub fn default_state_dir() -> PathBuf {
    non_empty_var("LOCALAPPDATA")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
        .join("edgefail")
}

fn non_empty_var(name: &str) -> Option<std::ffi::OsString> {
    std::env::var_os(name).filter(|v| !v.is_empty())
}

/// A directory for short-lived sockets whose path is short: unix socket
/// paths must fit in about 104 bytes, and `$TMPDIR` may be long.
#[cfg(unix)]
pub fn short_temp_dir() -> PathBuf {
    PathBuf::from("/tmp")
}

#[cfg(windows)]
pub fn short_temp_dir() -> PathBuf {
    std::env::temp_dir()
}

/// The PowerShell a local transport starts unless the topology names one:
/// Windows PowerShell on Windows, PowerShell 7 (`pwsh`) elsewhere.
#[cfg(unix)]
pub const DEFAULT_POWERSHELL: &str = "pwsh";
#[cfg(windows)]
pub const DEFAULT_POWERSHELL: &str = "powershell.exe";

/// Whether this system's OpenSSH client can share connections
/// (ControlMaster); Windows' port of OpenSSH cannot, so there each command
/// opens its own connection unless the topology says otherwise.
#[cfg(unix)]
pub const SSH_CONNECTION_SHARING: bool = true;
#[cfg(windows)]
pub const SSH_CONNECTION_SHARING: bool = false;

// --- processes ------------------------------------------------------------

/// Whether process `pid` exists on this host (a process we may not signal
/// still counts).
#[cfg(unix)]
pub fn pid_alive(pid: u32) -> bool {
    // 0 and negative numbers would name process groups, not a process.
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: kill(2) with signal 0 only checks that the process exists
    // and may be signalled; nothing is sent and no memory is touched.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

#[cfg(windows)]
pub fn pid_alive(pid: u32) -> bool {
    use windows_sys::Win32::Foundation::{CloseHandle, ERROR_ACCESS_DENIED, STILL_ACTIVE};
    use windows_sys::Win32::System::Threading::{
        GetExitCodeProcess, OpenProcess, PROCESS_QUERY_LIMITED_INFORMATION,
    };
    if pid == 0 {
        return false;
    }
    // SAFETY: OpenProcess returns a handle we own or null; the handle is
    // used for one query and closed; `code` outlives the call writing it.
    unsafe {
        let handle = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid);
        if handle.is_null() {
            // Denied: it exists, but belongs to someone else.
            return io::Error::last_os_error().raw_os_error() == Some(ERROR_ACCESS_DENIED as i32);
        }
        let mut code: u32 = 0;
        let queried = GetExitCodeProcess(handle, &mut code) != 0;
        CloseHandle(handle);
        queried && code == STILL_ACTIVE as u32
    }
}

/// Start `cmd` in a process group of its own, led by the child: a Ctrl-C
/// at the terminal then reaches edgefail only, and [`end_process_tree`]
/// can end the command with everything it started.
#[cfg(unix)]
pub fn own_process_group(cmd: &mut tokio::process::Command) {
    cmd.process_group(0);
}

#[cfg(windows)]
pub fn own_process_group(cmd: &mut tokio::process::Command) {
    use windows_sys::Win32::System::Threading::CREATE_NEW_PROCESS_GROUP;
    cmd.creation_flags(CREATE_NEW_PROCESS_GROUP);
}

/// End the command edgefail started as `pid` in its own group (see
/// [`own_process_group`]) and every process it started. Only for PIDs of
/// children spawned that way: on unix this kills the process group `pid`
/// leads.
#[cfg(unix)]
pub fn end_process_tree(pid: u32) {
    // kill(-1) would signal every process we may signal, kill(0) our own
    // group: neither is a group we created.
    let Ok(pgid) = libc::pid_t::try_from(pid) else {
        return;
    };
    if pgid <= 1 {
        return;
    }
    // SAFETY: kill(2) with a negative pid signals the process group this
    // process created for the command; it touches no memory.
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
}

/// Ask the process edgefail started as `pid` to end (SIGTERM), so that it
/// can close what it holds (ssh: its connection) before it goes.
#[cfg(unix)]
pub fn ask_to_end(pid: u32) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    if pid <= 1 {
        return;
    }
    // SAFETY: kill(2) on a child this process spawned and has not yet
    // reaped; it touches no memory.
    unsafe {
        libc::kill(pid, libc::SIGTERM);
    }
}

/// Windows has no gentle request a console program must honour: end it.
#[cfg(windows)]
pub fn ask_to_end(pid: u32) {
    end_process_tree(pid);
}

#[cfg(windows)]
pub fn end_process_tree(pid: u32) {
    use std::process::{Command, Stdio};
    if pid == 0 {
        return;
    }
    let ended = Command::new("taskkill")
        .args(["/F", "/T", "/PID", &pid.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if let Err(e) = ended {
        tracing::debug!("cannot run taskkill for process {pid}: {e}");
    }
}

// --- private files ----------------------------------------------------------

/// Make the directory `path` (its parent must exist) so that only this user
/// may enter it: mode 0700 on unix; on Windows it inherits its parent's
/// ACL, which under the user's profile (%LOCALAPPDATA%, %TEMP%) is private
/// to the user. Fails with `AlreadyExists` if it exists, so a caller that
/// succeeds knows the directory is new and its own.
pub fn create_private_dir(path: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    #[cfg(windows)]
    {
        // The parent's inherited ACL applies; nothing to set here.
    }
    builder.create(path)
}

/// Create the new file `path` for writing, readable by this user only
/// (mode 0600 on unix; the inherited ACL on Windows, as for
/// [`create_private_dir`]). Fails with `AlreadyExists` if it exists.
pub fn create_private_file(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    private_mode(&mut options);
    options.open(path)
}

/// Open `path` for appending (the journal): created new, exclusively and
/// readable by this user only (mode 0600 on unix), when missing; opened as
/// it is otherwise. A symbolic link at `path` is never followed (it could
/// send the record somewhere else): it is refused with an error saying so.
pub fn open_private_append(path: &Path) -> io::Result<File> {
    open_no_follow(path, |o| {
        o.append(true);
    })
}

/// Open `path` for reading and writing (the lock file), on the same terms
/// as [`open_private_append`].
pub fn open_private_rw(path: &Path) -> io::Result<File> {
    open_no_follow(path, |o| {
        o.read(true).write(true);
    })
}

/// Open the existing file `path` for reading and writing, never through a
/// symbolic link (the lock file, inspected or cleared).
pub fn open_existing_rw(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true).write(true);
    no_follow(&mut options);
    match options.open(path) {
        Ok(f) => not_a_link(path, f),
        Err(e) => Err(explain_link(path, e)),
    }
}

/// Create exclusively, else open the existing file; neither follows a link.
fn open_no_follow(path: &Path, access: impl Fn(&mut OpenOptions)) -> io::Result<File> {
    // Twice: the file may vanish between the two opens (another run's
    // cleanup); a third miss is an error like any other.
    let mut last = None;
    for _ in 0..2 {
        let mut create = OpenOptions::new();
        access(&mut create);
        create.write(true).create_new(true);
        private_mode(&mut create);
        no_follow(&mut create);
        match create.open(path) {
            Ok(f) => return not_a_link(path, f),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(explain_link(path, e)),
        }
        let mut existing = OpenOptions::new();
        access(&mut existing);
        no_follow(&mut existing);
        match existing.open(path) {
            Ok(f) => return not_a_link(path, f),
            Err(e) if e.kind() == io::ErrorKind::NotFound => last = Some(e),
            Err(e) => return Err(explain_link(path, e)),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::from(io::ErrorKind::NotFound)))
}

/// unix: O_NOFOLLOW already refused a link at open.
#[cfg(unix)]
fn not_a_link(_path: &Path, file: File) -> io::Result<File> {
    Ok(file)
}

/// Windows: the link itself was opened (FILE_FLAG_OPEN_REPARSE_POINT);
/// refuse it now.
#[cfg(windows)]
fn not_a_link(path: &Path, file: File) -> io::Result<File> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => Err(explain_link(
            path,
            io::Error::from(io::ErrorKind::InvalidInput),
        )),
        _ => Ok(file),
    }
}

#[cfg(unix)]
fn no_follow(options: &mut OpenOptions) {
    use std::os::unix::fs::OpenOptionsExt;
    options.custom_flags(libc::O_NOFOLLOW);
}

#[cfg(windows)]
fn no_follow(options: &mut OpenOptions) {
    use std::os::windows::fs::OpenOptionsExt;
    // FILE_FLAG_OPEN_REPARSE_POINT: open a link itself, not its target;
    // explain_link then refuses it.
    options.custom_flags(0x0020_0000);
}

/// A link where a file was expected: say so plainly.
fn explain_link(path: &Path, e: io::Error) -> io::Error {
    if is_link_refusal(&e)
        || std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
    {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "it is a symbolic link, which edgefail does not follow for its journal and lock: point it at a real file",
        )
    } else {
        e
    }
}

#[cfg(unix)]
fn is_link_refusal(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::ELOOP)
}

#[cfg(windows)]
fn is_link_refusal(_e: &io::Error) -> bool {
    false
}

#[cfg(unix)]
fn private_mode(options: &mut OpenOptions) {
    use std::os::unix::fs::OpenOptionsExt;
    options.mode(0o600);
}

#[cfg(windows)]
fn private_mode(_options: &mut OpenOptions) {
    // The parent's inherited ACL applies; see create_private_dir.
}

/// `Some(permission bits)` when users other than the owner and group may
/// read the file; `None` when they may not, or on Windows, where access is
/// an ACL rather than a mode.
#[cfg(unix)]
pub fn world_readable(meta: &Metadata) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o7777;
    (mode & 0o004 != 0).then_some(mode)
}

#[cfg(windows)]
pub fn world_readable(_meta: &Metadata) -> Option<u32> {
    None
}

/// Open `path` for reading only if it is a regular file, without blocking
/// on a FIFO (unix opens it non-blocking, then checks the open handle so
/// nothing can be swapped in between). Returns the file and its metadata.
#[cfg(unix)]
pub fn open_regular(path: &Path) -> io::Result<(File, Metadata)> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(not_regular(&meta));
    }
    Ok((file, meta))
}

#[cfg(windows)]
pub fn open_regular(path: &Path) -> io::Result<(File, Metadata)> {
    // Check the name first so that a device or pipe name is never opened.
    let before = std::fs::metadata(path)?;
    if !before.is_file() {
        return Err(not_regular(&before));
    }
    let file = File::open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(not_regular(&meta));
    }
    Ok((file, meta))
}

fn not_regular(meta: &Metadata) -> io::Error {
    let kind = if meta.is_dir() {
        "a directory"
    } else {
        #[cfg(unix)]
        {
            use std::os::unix::fs::FileTypeExt;
            let t = meta.file_type();
            if t.is_fifo() {
                "a named pipe (FIFO)"
            } else if t.is_char_device() || t.is_block_device() {
                "a device"
            } else if t.is_socket() {
                "a socket"
            } else {
                "a special file"
            }
        }
        #[cfg(windows)]
        {
            "a special file"
        }
    };
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("it is {kind}, not a regular file"),
    )
}

// --- interruptions ------------------------------------------------------------

/// The ways an operator interrupts a run: Ctrl-C and SIGTERM on unix;
/// Ctrl-C, Ctrl-Break and closing the console on Windows. Make it inside
/// the tokio runtime.
#[derive(Debug)]
pub struct Interrupts {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
    #[cfg(windows)]
    ctrl_c: tokio::signal::windows::CtrlC,
    #[cfg(windows)]
    ctrl_break: tokio::signal::windows::CtrlBreak,
    #[cfg(windows)]
    ctrl_close: tokio::signal::windows::CtrlClose,
}

impl Interrupts {
    /// Start listening; from now on these no longer end the process by
    /// themselves.
    #[cfg(unix)]
    pub fn new() -> io::Result<Interrupts> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Interrupts {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    #[cfg(windows)]
    pub fn new() -> io::Result<Interrupts> {
        use tokio::signal::windows::{ctrl_break, ctrl_c, ctrl_close};
        Ok(Interrupts {
            ctrl_c: ctrl_c()?,
            ctrl_break: ctrl_break()?,
            ctrl_close: ctrl_close()?,
        })
    }

    /// The next interruption, by the name an operator knows it by:
    /// "Ctrl-C" or "SIGTERM" (Windows: "Ctrl-C", "Ctrl-Break", "console
    /// close").
    #[cfg(unix)]
    pub async fn next(&mut self) -> &'static str {
        tokio::select! {
            Some(()) = self.interrupt.recv() => "Ctrl-C",
            Some(()) = self.terminate.recv() => "SIGTERM",
            // Both streams ended: no interruption will ever come.
            else => std::future::pending().await,
        }
    }

    #[cfg(windows)]
    pub async fn next(&mut self) -> &'static str {
        tokio::select! {
            Some(()) = self.ctrl_c.recv() => "Ctrl-C",
            Some(()) = self.ctrl_break.recv() => "Ctrl-Break",
            Some(()) = self.ctrl_close.recv() => "console close",
            else => std::future::pending().await,
        }
    }
}

// --- time zone -----------------------------------------------------------

/// The local time zone's offset from UTC at `at`, in seconds east, for the
/// change record's local times; `None` when it cannot be told.
#[cfg(unix)]
pub fn utc_offset_secs(at: std::time::SystemTime) -> Option<i32> {
    let secs = at.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs();
    let t = libc::time_t::try_from(secs).ok()?;
    // SAFETY: localtime_r writes only into `tm`, which we own; a zeroed tm
    // is a valid value of the plain C struct.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let got = unsafe { libc::localtime_r(&t, &mut tm) };
    if got.is_null() {
        return None;
    }
    i32::try_from(tm.tm_gmtoff).ok()
}

/// Windows: not recorded yet (GetTimeZoneInformation would tell; this path
/// has never been compiled, so it claims nothing).
#[cfg(windows)]
pub fn utc_offset_secs(_at: std::time::SystemTime) -> Option<i32> {
    None
}

// --- terminals and colour -------------------------------------------------

pub fn stdout_is_terminal() -> bool {
    io::stdout().is_terminal()
}

pub fn stderr_is_terminal() -> bool {
    io::stderr().is_terminal()
}

pub fn stdin_is_terminal() -> bool {
    io::stdin().is_terminal()
}

/// The width of the terminal stdout writes to, in columns; None when
/// stdout is not a terminal (a pipe or a file gets whole lines).
pub fn stdout_width() -> Option<usize> {
    if !stdout_is_terminal() {
        return None;
    }
    terminal_size::terminal_size_of(io::stdout())
        .map(|(terminal_size::Width(w), _)| usize::from(w))
        .filter(|w| *w >= 20)
}

/// Whether output to a stream may carry colour: only to a terminal
/// (`stream_is_terminal`), not when NO_COLOR is set to anything non-empty
/// (no-color.org), not on TERM=dumb, and on Windows only once the console
/// accepts ANSI sequences.
pub fn color_allowed(stream_is_terminal: bool) -> bool {
    stream_is_terminal
        && non_empty_var("NO_COLOR").is_none()
        && std::env::var_os("TERM").is_none_or(|t| t != "dumb")
        && ansi_sequences_work()
}

#[cfg(unix)]
fn ansi_sequences_work() -> bool {
    true
}

/// Turn on virtual-terminal processing for the console's stdout and
/// stderr, once; false if a console refuses it (before Windows 10).
#[cfg(windows)]
fn ansi_sequences_work() -> bool {
    use std::sync::OnceLock;
    use windows_sys::Win32::Foundation::INVALID_HANDLE_VALUE;
    use windows_sys::Win32::System::Console::{
        CONSOLE_MODE, ENABLE_VIRTUAL_TERMINAL_PROCESSING, GetConsoleMode, GetStdHandle,
        STD_ERROR_HANDLE, STD_OUTPUT_HANDLE, SetConsoleMode,
    };
    static WORKS: OnceLock<bool> = OnceLock::new();
    *WORKS.get_or_init(|| {
        [STD_OUTPUT_HANDLE, STD_ERROR_HANDLE]
            .into_iter()
            .all(|which| {
                // SAFETY: the handles are the process's own standard
                // handles, not closed here; `mode` outlives the call that
                // writes it.
                unsafe {
                    let handle = GetStdHandle(which);
                    let mut mode: CONSOLE_MODE = 0;
                    if handle.is_null()
                        || handle == INVALID_HANDLE_VALUE
                        || GetConsoleMode(handle, &mut mode) == 0
                    {
                        // Not a console: nothing to turn on.
                        return true;
                    }
                    mode & ENABLE_VIRTUAL_TERMINAL_PROCESSING != 0
                        || SetConsoleMode(handle, mode | ENABLE_VIRTUAL_TERMINAL_PROCESSING) != 0
                }
            })
    })
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::time::Duration;

    #[test]
    fn this_process_is_alive_and_a_reaped_child_is_not() {
        assert!(pid_alive(std::process::id()));
        let mut child = std::process::Command::new("true")
            .spawn()
            .expect("spawn true");
        let pid = child.id();
        child.wait().expect("reap true");
        assert!(!pid_alive(pid));
        assert!(!pid_alive(0));
        assert!(!pid_alive(u32::MAX));
    }

    #[test]
    fn private_dir_and_files_are_the_owners_only() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("private");
        create_private_dir(&dir).expect("create dir");
        let mode = std::fs::metadata(&dir).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        let again = create_private_dir(&dir).expect_err("exists");
        assert_eq!(again.kind(), io::ErrorKind::AlreadyExists);

        let file = dir.join("secret");
        drop(create_private_file(&file).expect("create file"));
        let meta = std::fs::metadata(&file).expect("meta");
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(world_readable(&meta), None);
        let again = create_private_file(&file).expect_err("exists");
        assert_eq!(again.kind(), io::ErrorKind::AlreadyExists);

        let journal = dir.join("journal.jsonl");
        {
            use std::io::Write;
            let mut f = open_private_append(&journal).expect("open");
            f.write_all(b"one\n").expect("write");
            let mut f = open_private_append(&journal).expect("reopen");
            f.write_all(b"two\n").expect("write");
        }
        let meta = std::fs::metadata(&journal).expect("meta");
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(
            std::fs::read_to_string(&journal).expect("read"),
            "one\ntwo\n"
        );
    }

    #[test]
    fn world_readable_names_the_mode() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let file = tmp.path().join("key");
        std::fs::write(&file, "k").expect("write");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let meta = std::fs::metadata(&file).expect("meta");
        assert_eq!(world_readable(&meta), Some(0o644));
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).expect("chmod");
        let meta = std::fs::metadata(&file).expect("meta");
        assert_eq!(world_readable(&meta), None);
    }

    #[test]
    fn whoami_names_someone_somewhere() {
        let (user, host) = whoami();
        assert!(!user.is_empty());
        assert!(!host.is_empty() && !host.contains('\n'));
    }

    #[test]
    fn state_dir_ends_in_edgefail() {
        assert!(default_state_dir().ends_with("edgefail"));
    }

    #[tokio::test]
    async fn end_process_tree_ends_the_grandchild_too() {
        use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
        // sh starts sleep in the background, prints its PID and waits; both
        // hold stdout, so reading it to its end proves both are gone.
        let mut cmd = tokio::process::Command::new("sh");
        cmd.args(["-c", "sleep 30 & echo $!; wait"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true);
        own_process_group(&mut cmd);
        let mut child = cmd.spawn().expect("spawn sh");
        let pid = child.id().expect("pid of sh");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        tokio::time::timeout(Duration::from_secs(10), stdout.read_line(&mut line))
            .await
            .expect("sh printed the grandchild's PID")
            .expect("read");
        let grandchild: u32 = line.trim().parse().expect("grandchild pid");
        assert_ne!(grandchild, pid);

        end_process_tree(pid);
        let status = tokio::time::timeout(Duration::from_secs(5), child.wait())
            .await
            .expect("sh ended")
            .expect("wait sh");
        assert!(!status.success());
        let mut rest = String::new();
        tokio::time::timeout(Duration::from_secs(5), stdout.read_to_string(&mut rest))
            .await
            .expect("the grandchild no longer holds stdout")
            .expect("read");
    }

    #[test]
    fn color_only_for_terminals() {
        assert!(!color_allowed(false));
    }
}
