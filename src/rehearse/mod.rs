//! `edgefail rehearse`: the whole failover against a simulated estate built
//! inside this process on loopback.

pub mod shell;
