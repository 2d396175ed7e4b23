//! The one integration test binary: runs the real edgefail against real
//! servers started by the harness.

mod harness;
mod validate;
mod xmpp;
