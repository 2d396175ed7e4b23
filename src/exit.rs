//! The exit codes, in one place: every command ends in an [`Exit`], and
//! this table maps it to the number the shell sees. `cli.rs` (--help) and
//! the README list them for users: change all three together.

/// How a command ended, as the shell is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Done, or nothing to do (plan: every step already done).
    Ok,
    /// A step failed, a check found a blocker, or the state could not be read.
    StepFailed,
    /// Usage or topology error; nothing was contacted or changed.
    Usage,
    /// A step was applied but its state did not hold before the deadline.
    VerifyFailed,
    /// plan / --dry-run: every state was read and changes are pending.
    ChangesPending,
    /// The operator declined at the confirmation prompt; nothing changed.
    Declined,
    /// Another failover of the same topology holds the lock.
    Locked,
    /// `--resume` refused: nothing to resume, or the topology or plan changed.
    ResumeRefused,
    /// status: partners federate, but the sources disagree (drift, or
    /// split brain: the route and DNS name different pools).
    Drift,
    /// status: partners cannot federate.
    FederationDown,
    /// status: a source could not be read, and what could be read agrees.
    SourceUnreadable,
    /// What the operator confirmed no longer holds: an approved plan file's
    /// topology changed or it expired, or a step's reading moved since the
    /// plan was confirmed (stopped before that step).
    PlanMismatch,
    /// The journal could not be written (disk full, read-only,
    /// permission): nothing further was changed.
    JournalUnwritable,
    /// Interrupted by Ctrl-C or SIGTERM.
    Interrupted,
    /// edgefail itself failed (a bug: a panic); the journal records it and
    /// `failover --resume` re-checks every step. The code Rust gives a
    /// panic anyway.
    Crashed,
}

impl Exit {
    pub const fn code(self) -> i32 {
        match self {
            Exit::Ok => 0,
            Exit::StepFailed => 1,
            Exit::Usage => 2,
            Exit::VerifyFailed => 3,
            Exit::ChangesPending => 4,
            Exit::Declined => 5,
            Exit::Locked => 6,
            Exit::ResumeRefused => 7,
            Exit::PlanMismatch => 8,
            Exit::JournalUnwritable => 9,
            Exit::Drift => 10,
            Exit::FederationDown => 11,
            Exit::SourceUnreadable => 12,
            Exit::Interrupted => 130,
            Exit::Crashed => 101,
        }
    }
}

/// A command that could not do its work: why, and which exit says so.
#[derive(Debug)]
pub struct Failed {
    pub exit: Exit,
    pub error: anyhow::Error,
}

/// What every command returns.
pub type CommandResult = Result<Exit, Failed>;

/// An error before anything was contacted is a usage error unless said
/// otherwise.
impl From<anyhow::Error> for Failed {
    fn from(error: anyhow::Error) -> Failed {
        Failed {
            exit: Exit::Usage,
            error,
        }
    }
}

/// `.or_exit(Exit::Locked)`: fail with that exit.
pub trait OrExit<T> {
    fn or_exit(self, exit: Exit) -> Result<T, Failed>;
}

impl<T, E: Into<anyhow::Error>> OrExit<T> for Result<T, E> {
    fn or_exit(self, exit: Exit) -> Result<T, Failed> {
        self.map_err(|e| Failed {
            exit,
            error: e.into(),
        })
    }
}
