//! The exit codes, in one place. `cli.rs` (--help) and the README list them
//! for users: change all three together.

/// Done, or nothing to do (plan: every step already done).
pub const OK: i32 = 0;
/// A step failed, a check found a blocker, or the state could not be read.
pub const STEP_FAILED: i32 = 1;
/// Usage or topology error; nothing was contacted or changed.
pub const USAGE: i32 = 2;
/// A step was applied but its state did not hold before the deadline.
pub const VERIFY_FAILED: i32 = 3;
/// plan / --dry-run: every state was read and changes are pending.
pub const CHANGES_PENDING: i32 = 4;
/// The operator declined at the confirmation prompt; nothing changed.
pub const DECLINED: i32 = 5;
/// Another failover of the same topology holds the lock.
pub const LOCKED: i32 = 6;
/// `--resume` refused: nothing to resume, or the topology or plan changed.
pub const RESUME_REFUSED: i32 = 7;
/// Interrupted by Ctrl-C or SIGTERM.
pub const INTERRUPTED: i32 = 130;
