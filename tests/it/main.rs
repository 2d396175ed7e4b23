//! The one integration test binary: runs the real edgefail against real
//! servers started by the harness.

mod dns;
mod e2e;
mod failover;
mod harness;
mod house;
mod inputs;
mod output;
mod record;
mod rehearse;
mod resume;
mod runsafe;
mod sessions;
mod ssh;
mod status;
mod validate;
mod xmpp;
