//! The one integration test binary: runs the real edgefail against real
//! servers started by the harness.

mod failover;
mod harness;
mod ssh;
mod validate;
