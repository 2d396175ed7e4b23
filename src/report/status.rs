//! `edgefail status` on stdout: the readings source by source, then the
//! verdict line, what disagrees, what could not be read, and the fix; or,
//! with `--output json`, the one JSON document ([`crate::estate::Status`]).

use std::fmt::Write as _;

use crate::cli::Output;
use crate::estate::{ServicesState, Status};
use crate::names::printable;

/// Print `status` as `output` asks.
pub fn status(status: &Status, output: Output) {
    match output {
        Output::Json => match serde_json::to_string(status) {
            Ok(line) => super::say(&line),
            Err(e) => super::notice(&format!("error: cannot write the status as JSON: {e}")),
        },
        Output::Human => super::say(human(status).trim_end()),
    }
}

fn or_none(list: &[String]) -> String {
    if list.is_empty() {
        "none".into()
    } else {
        list.join(", ")
    }
}

/// The human text (every line escaped: routes, service names and DNS data
/// come from outside).
pub fn human(s: &Status) -> String {
    let mut out = String::new();
    let mut line = |text: String| {
        let _ = writeln!(out, "{}", printable(&text));
    };
    line(format!(
        "XMPP federation of {} (read in {:.1}s; nothing was changed)",
        s.domain,
        s.duration_ms as f64 / 1000.0
    ));
    line(String::new());
    line("Routes (Get-CsSite):".into());
    for site in &s.sites {
        let text = match (&site.cannot_tell, &site.route, &site.pool) {
            (Some(why), _, _) => format!("cannot tell: {why}"),
            (None, Some(route), Some(pool)) => format!("{route} -> {pool}"),
            (None, Some(route), None) => format!("{route} -> no pool in the topology"),
            (None, None, _) => "(not set)".into(),
        };
        line(format!("  {:<12} {text}", site.site));
    }
    line(String::new());
    line("Edge pools:".into());
    for p in &s.pools {
        let mut head = format!(
            "  {} ({}, {}): services {}",
            p.pool,
            p.site,
            p.version,
            p.services.as_str()
        );
        if !p.stragglers.is_empty() {
            let _ = write!(head, "; stragglers: {}", p.stragglers.join("; "));
        }
        line(head);
        for server in &p.servers {
            let services = match (&server.cannot_tell, server.services_state) {
                (Some(why), _) => format!("services cannot tell: {why}"),
                (None, ServicesState::Mixed) => format!(
                    "services mixed: {}",
                    server
                        .services
                        .iter()
                        .map(|x| format!("{} {}", x.name, x.status))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                (None, state) => format!("services {} ({})", state.as_str(), server.services.len()),
            };
            line(format!(
                "    {:<28} {services}; port {}",
                server.fqdn, server.port_detail
            ));
        }
    }
    line(String::new());
    line("DNS (each authoritative server, asked directly):".into());
    for d in &s.dns.servers {
        let text = match &d.cannot_tell {
            Some(why) => format!("cannot tell: {why}"),
            None => format!(
                "serial {}, {} A {}, SRV {}",
                d.serial.map(|x| x.to_string()).unwrap_or_default(),
                s.dns.a_record,
                or_none(&d.a),
                or_none(
                    &d.srv
                        .iter()
                        .map(|r| format!("{} {} {} {}", r.priority, r.weight, r.port, r.target))
                        .collect::<Vec<_>>()
                )
            ),
        };
        line(format!("  {:<28} {text}", d.server));
    }
    if let Some(pref) = &s.dns.preferred {
        line(format!(
            "  partners prefer {}:{} (priority {}) -> {}; A {} -> {}",
            pref.target,
            pref.port,
            pref.priority,
            pref.pool.as_deref().unwrap_or("no pool in the topology"),
            or_none(&s.dns.a),
            or_none(&s.dns.a_pools)
        ));
    }
    for d in &s.dns.disagreements {
        line(format!("  disagree: {d}"));
    }
    line(String::new());
    line("Partner's eye:".into());
    match &s.partner.cannot_tell {
        Some(why) => line(format!("  cannot tell: {why}")),
        None => line(format!("  {}", s.partner.sees)),
    }
    line(String::new());
    let v = &s.verdict;
    line(format!("verdict: {}", v.line));
    for d in &v.disagreements {
        if !v.line.ends_with(d.as_str()) {
            line(format!("  disagrees: {d}"));
        }
    }
    for c in &v.cannot_tell {
        if !v.line.contains(c.as_str()) {
            line(format!("  cannot tell: {c}"));
        }
    }
    for f in &v.fix {
        line(format!("  fix: {f}"));
    }
    line(format!("(exit {})", v.exit_code));
    out
}
