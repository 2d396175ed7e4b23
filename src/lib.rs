//! edgefail: fail over XMPP federation between Lync Server 2013 / Skype for
//! Business Server 2015 Edge pools as an ordered, checked runbook.
//!
//! The house, top to bottom (a module imports only modules below it; see
//! the README's Architecture section and `tests/it/house.rs`):
//! `commands` -> `settings` -> `engine` -> `report` -> `cli` -> `journal`,
//! `lock`, `planfile`, `changerecord`, `export` -> `sim` -> `estate` -> `steps` -> `lync` ->
//! `transport`, `dns`, `xmpp` -> `powershell` -> `event`, `escape`, `topology`, `secret`,
//! `names`, `operator`,
//! `cancel`, `platform`, `exit`.

pub mod cancel;
pub mod changerecord;
pub mod cli;
pub mod commands;
pub mod dns;
pub mod engine;
pub mod escape;
pub mod estate;
pub mod event;
pub mod exit;
pub mod export;
pub mod journal;
pub mod lock;
pub mod lync;
pub mod names;
pub mod operator;
pub mod planfile;
pub mod platform;
pub mod powershell;
pub mod report;
pub mod secret;
pub mod settings;
pub mod sim;
pub mod steps;
pub mod topology;
pub mod transport;
pub mod xmpp;
