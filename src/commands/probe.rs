//! `edgefail probe`: the partner's-eye check against any domain or address,
//! for pre-flight checks.

use crate::cli::ProbeArgs;
use crate::exit::{CommandResult, Exit};
use crate::report;
use crate::settings::{ProbeSettings, ProbeTarget};
use crate::steps::partner;
use crate::xmpp::probe;

pub async fn run(args: ProbeArgs) -> CommandResult {
    let s = ProbeSettings::resolve(&args)?;
    let report = match (&s.topology, &s.target) {
        (Some((t, Some(pool))), _) => partner::partner_report(t, pool, &s.lookup, &s.opts).await,
        (_, ProbeTarget::Domain) => probe::probe_domain(&s.lookup, &s.opts).await,
        (_, ProbeTarget::Addr(addr)) => {
            probe::probe_addr(*addr, &addr.ip().to_string(), &s.opts).await
        }
        (_, ProbeTarget::Host(host, port)) => {
            probe::probe_host(&s.lookup, host, *port, &s.opts).await
        }
    };
    report::probe(&report, s.output);
    Ok(if report.passed {
        Exit::Ok
    } else {
        Exit::StepFailed
    })
}
