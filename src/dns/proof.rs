//! Proving the TSIG key at check time, before anything changes anywhere:
//! a bad secret (BADSIG), an unknown key (BADKEY) or a key without update
//! rights (REFUSED) must stop a plan, not step 4 of a failover after the
//! target's services were stopped and the route moved.
//!
//! The proof is one signed UPDATE with the planned update's prerequisites
//! and a change that changes nothing ([`Update::no_op`]): deleting a record
//! the prerequisites say is absent. BIND answers it like the real update
//! (NOERROR, or the TSIG error / REFUSED the real one would get) and does
//! not bump the serial for an update that changes nothing. It goes over
//! TCP like every update, so no resend can repeat it.

use super::error::DnsError;
use super::update::{Primary, Update};

/// Send the no-op twin of `planned` to `primary`; `Ok` means the server
/// took the key and would take the update's shape.
pub async fn prove_key(primary: &Primary, planned: &Update) -> Result<(), DnsError> {
    primary.update(&planned.no_op()).await
}
