//! The one integration test binary: runs the real edgefail against real
//! servers started by the harness.

mod dns;
mod e2e;
mod failover;
mod harness;
mod house;
mod rehearse;
mod resume;
mod sessions;
mod ssh;
mod validate;
mod xmpp;
