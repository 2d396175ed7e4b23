//! edgefail: fail over XMPP federation between Lync Server 2013 / Skype for
//! Business Server 2015 Edge pools as an ordered, checked runbook.

pub mod app;
pub mod ask;
pub mod cancel;
pub mod cli;
pub mod context;
pub mod dns;
pub mod engine;
pub mod event;
pub mod exit;
pub mod journal;
pub mod lock;
pub mod lync;
pub mod names;
pub mod platform;
pub mod powershell;
pub mod probe_cmd;
pub mod rehearse;
pub mod report;
pub mod secret;
pub mod steps;
pub mod topology;
pub mod transport;
pub mod xmpp;
