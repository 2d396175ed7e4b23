//! Semantic checks on a deserialised topology: names, references,
//! duplicates, addresses, where secrets come from.
//!
//! The checks run on every part of the file that deserialised ([`Parts`]),
//! even when another part did not. A field that was left out (its problem
//! already reported) holds a default or a placeholder: findings about it are
//! dropped, and a check that reads it elsewhere is skipped rather than
//! misled (see [`Locator::intact`]).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};

use super::tree::Locator;
use super::{
    Diagnostic, Dns, DnsMode, DnsServerKind, FORMAT_VERSION, Management, Severity, Site, Timeouts,
    TransportSpec, Xmpp, parse_server_addr,
};
use crate::names;

/// The parts of a topology that deserialised; `None` for a part that did
/// not (its problems are already reported).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Parts<'a> {
    pub version: Option<u32>,
    pub xmpp: Option<&'a Xmpp>,
    pub dns: Option<&'a Dns>,
    pub management: Option<&'a Management>,
    pub timeouts: Option<&'a Timeouts>,
    pub sites: Option<&'a [Site]>,
}

struct Checker<'a> {
    loc: &'a Locator<'a>,
    out: &'a mut Vec<Diagnostic>,
}

impl Checker<'_> {
    fn push(&mut self, severity: Severity, path: &str, message: impl Into<String>) {
        let (path, pos) = self.loc.resolve(path);
        if self.loc.left_out(&path) {
            return;
        }
        self.out.push(Diagnostic {
            severity,
            pos,
            path,
            message: message.into(),
        });
    }

    /// Nothing at or under `path` was left out of the typed topology.
    fn intact(&self, path: &str) -> bool {
        self.loc.intact(path)
    }

    fn error(&mut self, path: &str, message: impl Into<String>) {
        self.push(Severity::Error, path, message);
    }

    fn name(&mut self, path: &str, value: &str, what: &str, check: fn(&str) -> Result<(), String>) {
        if let Err(why) = check(value) {
            self.error(
                path,
                format!("'{}' is not a valid {what}: {why}", names::printable(value)),
            );
        }
    }

    /// Report a duration outside `range`, with the range allowed.
    fn within(&mut self, path: &str, value: u64, range: &Range) {
        if value < range.min || value > range.max {
            self.error(
                path,
                format!(
                    "{value} is out of range: allowed {} to {} {} ({}); 0 would fail at once and a larger value is a typo, not a wait",
                    range.min, range.max, range.unit, range.why
                ),
            );
        }
    }

    /// Report the second and later uses of a name (compared without case).
    fn unique(
        &mut self,
        seen: &mut HashMap<String, String>,
        path: String,
        value: &str,
        what: &str,
    ) {
        if !self.intact(&path) {
            return;
        }
        let key = value.to_ascii_lowercase();
        if let Some(first) = seen.get(&key) {
            self.error(
                &path,
                format!(
                    "duplicate {what} '{}' (first at {first})",
                    names::printable(value)
                ),
            );
        } else {
            let (_, pos) = self.loc.resolve(&path);
            seen.insert(key, format!("line {}", pos.line));
        }
    }
}

fn in_zone(name: &str, zone: &str) -> bool {
    let name = name.to_ascii_lowercase();
    let zone = zone.to_ascii_lowercase();
    name == zone || name.ends_with(&format!(".{zone}"))
}

pub(super) fn validate(p: &Parts<'_>, loc: &Locator<'_>, out: &mut Vec<Diagnostic>) {
    let mut c = Checker { loc, out };

    if let Some(version) = p.version
        && version != FORMAT_VERSION
    {
        c.error(
            "version",
            format!(
                "this edgefail reads topology format {FORMAT_VERSION}, the file says {version}"
            ),
        );
    }
    if let Some(xmpp) = p.xmpp {
        check_xmpp(&mut c, xmpp);
    }
    if let Some(dns) = p.dns {
        check_dns(&mut c, dns, p.xmpp);
    }

    // Management shell.
    if let Some(management) = p.management {
        check_transport(&mut c, "management.transport", &management.transport);
    }

    // Timeouts: bounded here so that no later sum or deadline overflows.
    if let Some(timeouts) = p.timeouts {
        c.within("timeouts.command_secs", timeouts.command_secs, &DAY_SECS);
        c.within("timeouts.verify_secs", timeouts.verify_secs, &DAY_SECS);
        c.within("timeouts.poll_ms", timeouts.poll_ms, &POLL_MS);
    }

    if let Some(sites) = p.sites {
        check_sites(&mut c, sites);
    }
}

/// The durations a topology may set, each with its unit.
struct Range {
    min: u64,
    max: u64,
    unit: &'static str,
    why: &'static str,
}

const DAY_SECS: Range = Range {
    min: 1,
    max: 86_400,
    unit: "seconds",
    why: "up to a day",
};
const POLL_MS: Range = Range {
    min: 1,
    max: 600_000,
    unit: "ms",
    why: "up to 10 minutes",
};
const PROBE_MS: Range = Range {
    min: 1,
    max: 600_000,
    unit: "ms",
    why: "up to 10 minutes",
};
const DNS_SECS: Range = Range {
    min: 1,
    max: 3_600,
    unit: "seconds",
    why: "up to an hour",
};

/// XMPP federation records.
fn check_xmpp(c: &mut Checker<'_>, xmpp: &Xmpp) {
    c.name("xmpp.domain", &xmpp.domain, "DNS domain", names::check_fqdn);
    c.name(
        "xmpp.a_record",
        &xmpp.a_record,
        "host name",
        names::check_fqdn,
    );
    if let Some(p) = &xmpp.partner_name {
        c.name("xmpp.partner_name", p, "domain name", names::check_fqdn);
    }
    if xmpp.port == 0 {
        c.error(
            "xmpp.port",
            "port 0 is not a port (XMPP server-to-server uses 5269)",
        );
    }
    for (field, ms) in [
        ("xmpp.connect_timeout_ms", xmpp.connect_timeout_ms),
        ("xmpp.first_byte_timeout_ms", xmpp.first_byte_timeout_ms),
        ("xmpp.exchange_timeout_ms", xmpp.exchange_timeout_ms),
    ] {
        c.within(field, ms, &PROBE_MS);
    }
    if xmpp.ttl > i32::MAX as u32 {
        c.error("xmpp.ttl", "a TTL is at most 2147483647 seconds (RFC 2181)");
    }
}

/// External DNS, and where the XMPP records stand in its zone.
fn check_dns(c: &mut Checker<'_>, dns: &Dns, xmpp: Option<&Xmpp>) {
    c.name("dns.zone", &dns.zone, "DNS zone", |z| {
        names::check_dns_name(z, false)
    });
    if let Some(xmpp) = xmpp
        && c.intact("dns.zone")
    {
        if !in_zone(&xmpp.a_record, &dns.zone) {
            c.error(
                "xmpp.a_record",
                format!("{} is not inside the zone {}", xmpp.a_record, dns.zone),
            );
        }
        if !in_zone(&xmpp.srv_owner(), &dns.zone) {
            c.error(
                "xmpp.domain",
                format!("{} is not inside the zone {}", xmpp.srv_owner(), dns.zone),
            );
        }
    }
    if let Some(primary) = &dns.primary
        && let Err(why) = parse_server_addr(primary, 53)
    {
        c.error(
            "dns.primary",
            format!("'{}': {why}", names::printable(primary)),
        );
    }
    if dns.authoritative.is_empty() && c.intact("dns.authoritative") {
        c.error(
            "dns.authoritative",
            "list every authoritative server of the zone: verification asks each of them",
        );
    }
    for (i, server) in dns.authoritative.iter().enumerate() {
        if let Err(why) = parse_server_addr(server, 53) {
            c.error(
                &format!("dns.authoritative[{i}]"),
                format!("'{}': {why}", names::printable(server)),
            );
        }
    }
    c.within("dns.timeout_secs", dns.timeout_secs, &DNS_SECS);
    if dns.mode == DnsMode::Rfc2136 && c.intact("dns.mode") {
        if dns.primary.is_none() && c.intact("dns.primary") {
            c.error(
                "dns",
                "mode rfc2136 needs `primary`: the server that accepts updates",
            );
        }
        if dns.tsig.is_none() && c.intact("dns.tsig") {
            c.error("dns", "mode rfc2136 needs `tsig`: updates must be signed");
        }
        if dns.server == DnsServerKind::Windows && c.intact("dns.server") {
            c.push(
                Severity::Warning,
                "dns.server",
                "Windows DNS verifies GSS-TSIG (Kerberos) signatures, not the TSIG keys edgefail signs its updates with, so it may refuse them; with mode: manual you make the changes (`edgefail export powershell` writes them with the DnsServer cmdlets) and edgefail verifies them",
            );
        }
    }
    if let Some(tsig) = &dns.tsig {
        check_tsig(c, tsig);
    }
    if let Some(lease) = &dns.lease_name {
        c.name("dns.lease_name", lease, "DNS name", |n| {
            names::check_dns_name(n, true)
        });
        if c.intact("dns.zone") && c.intact("dns.lease_name") && !in_zone(lease, &dns.zone) {
            c.error(
                "dns.lease_name",
                format!(
                    "{} is not inside the zone {}: the lease must be a record of the zone edgefail updates",
                    names::printable(lease),
                    dns.zone
                ),
            );
        }
    }
    if !(MIN_LEASE_SECS..=MAX_LEASE_SECS).contains(&dns.lease_secs) {
        c.error(
            "dns.lease_secs",
            format!(
                "a lease lasts between {MIN_LEASE_SECS} and {MAX_LEASE_SECS} seconds (the run renews it while it lasts)"
            ),
        );
    }
}

/// A lease shorter than a minute would need renewing faster than a slow
/// DNS server answers; longer than a day would lock an estate out for a
/// day after a crash.
const MIN_LEASE_SECS: u64 = 60;
const MAX_LEASE_SECS: u64 = 86_400;

/// Sites, pools, servers.
fn check_sites(c: &mut Checker<'_>, sites: &[Site]) {
    if sites.is_empty() && c.intact("sites") {
        c.error(
            "sites",
            "no sites: a failover needs at least two Edge pools",
        );
    }
    let mut site_names = HashMap::new();
    let mut pool_names = HashMap::new();
    let mut pool_fqdns = HashMap::new();
    let mut priorities = HashMap::new();
    let mut server_fqdns = HashMap::new();
    let mut addresses = HashMap::new();
    let mut pool_count = 0;
    for (si, site) in sites.iter().enumerate() {
        let sp = format!("sites[{si}]");
        c.name(
            &format!("{sp}.name"),
            &site.name,
            "site identity",
            names::check_identity,
        );
        c.unique(&mut site_names, format!("{sp}.name"), &site.name, "site");
        if site.pools.is_empty()
            && c.intact(&format!("{sp}.pools"))
            && c.intact(&format!("{sp}.name"))
        {
            c.error(
                &format!("{sp}.pools"),
                format!("site {} has no pools", site.name),
            );
        }
        for (pi, pool) in site.pools.iter().enumerate() {
            pool_count += 1;
            let pp = format!("{sp}.pools[{pi}]");
            c.name(
                &format!("{pp}.name"),
                &pool.name,
                "pool name",
                names::check_identity,
            );
            c.unique(
                &mut pool_names,
                format!("{pp}.name"),
                &pool.name,
                "pool name",
            );
            c.name(
                &format!("{pp}.fqdn"),
                &pool.fqdn,
                "pool FQDN",
                names::check_fqdn,
            );
            c.unique(
                &mut pool_fqdns,
                format!("{pp}.fqdn"),
                &pool.fqdn,
                "pool FQDN",
            );
            c.unique(
                &mut priorities,
                format!("{pp}.srv_priority"),
                &pool.srv_priority.to_string(),
                "SRV priority (each pool's SRV record needs its own)",
            );
            if let Some(target) = &pool.srv_target {
                c.name(
                    &format!("{pp}.srv_target"),
                    target,
                    "host name",
                    names::check_fqdn,
                );
            }
            let named = c.intact(&format!("{pp}.name"));
            if !pool.version.carries_xmpp() && named {
                c.push(
                    Severity::Note,
                    &format!("{pp}.version"),
                    format!(
                        "{} runs {}, which has no XMPP gateway: it cannot be the target of an XMPP federation failover",
                        pool.name, pool.version
                    ),
                );
            }
            if pool.servers.is_empty() && c.intact(&format!("{pp}.servers")) && named {
                c.error(
                    &format!("{pp}.servers"),
                    format!("pool {} has no Edge servers", pool.name),
                );
            }
            if let Some(route) = &pool.route_server
                && c.intact(&format!("{pp}.servers"))
                && named
                && !pool
                    .servers
                    .iter()
                    .any(|s| s.fqdn.eq_ignore_ascii_case(route))
            {
                c.error(
                    &format!("{pp}.route_server"),
                    format!(
                        "'{}' is not one of pool {}'s servers",
                        names::printable(route),
                        pool.name
                    ),
                );
            }
            for (vi, server) in pool.servers.iter().enumerate() {
                let vp = format!("{pp}.servers[{vi}]");
                c.name(
                    &format!("{vp}.fqdn"),
                    &server.fqdn,
                    "server FQDN",
                    names::check_fqdn,
                );
                c.unique(
                    &mut server_fqdns,
                    format!("{vp}.fqdn"),
                    &server.fqdn,
                    "server FQDN",
                );
                match server.external_ipv4.parse::<Ipv4Addr>() {
                    Ok(ip) if ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast() => {
                        c.error(
                            &format!("{vp}.external_ipv4"),
                            format!("{ip} cannot be a host's address"),
                        );
                    }
                    Ok(_) => c.unique(
                        &mut addresses,
                        format!("{vp}.external_ipv4"),
                        &server.external_ipv4,
                        "external address",
                    ),
                    Err(_) => c.error(
                        &format!("{vp}.external_ipv4"),
                        format!(
                            "'{}' is not an IPv4 address",
                            names::printable(&server.external_ipv4)
                        ),
                    ),
                }
                check_transport(c, &format!("{vp}.transport"), &server.transport);
            }
        }
    }
    if !sites.is_empty() && pool_count < 2 && !c.loc.lost_pools() {
        c.error("sites", "only one Edge pool: a failover needs at least two");
    }
}

fn check_tsig(c: &mut Checker<'_>, tsig: &super::Tsig) {
    // A secret pasted into the wrong field (or a whole nsupdate `-y`
    // string) is named by its field, never echoed, and checked no further.
    let path = tsig
        .secret_file
        .as_ref()
        .map(|p| p.to_string_lossy().into_owned());
    let misplaced: Vec<&str> = [
        ("dns.tsig.name", Some(tsig.name.as_str())),
        ("dns.tsig.algorithm", Some(tsig.algorithm.as_str())),
        ("dns.tsig.secret_file", path.as_deref()),
        ("dns.tsig.secret_env", tsig.secret_env.as_deref()),
    ]
    .into_iter()
    .filter(|(_, value)| value.is_some_and(crate::secret::looks_like_secret))
    .map(|(field, _)| field)
    .collect();
    for field in &misplaced {
        c.error(
            field,
            "this value looks like a TSIG secret (or an nsupdate -y key string), not shown here; a secret never goes in the topology: put the key in a key file named by secret_file (mode 600) or in the environment variable named by secret_env, and rotate the key if this file was shared",
        );
    }
    if !misplaced.is_empty() {
        return;
    }
    c.name("dns.tsig.name", &tsig.name, "TSIG key name", |n| {
        names::check_dns_name(n, false)
    });
    if !matches!(
        tsig.algorithm.as_str(),
        "hmac-sha256" | "hmac-sha384" | "hmac-sha512"
    ) {
        c.error(
            "dns.tsig.algorithm",
            format!(
                "'{}' is not supported: use hmac-sha256, hmac-sha384 or hmac-sha512",
                names::printable(&tsig.algorithm)
            ),
        );
    }
    if tsig.secret.is_some() {
        // Never echo the value: it is a secret.
        c.error(
            "dns.tsig.secret",
            "the TSIG secret must not be written in the topology: use secret_file (a key file from tsig-keygen, mode 600) or secret_env (an environment variable)",
        );
    }
    match (&tsig.secret_file, &tsig.secret_env) {
        (Some(_), Some(_)) => c.error(
            "dns.tsig",
            "give either secret_file or secret_env, not both",
        ),
        (None, None)
            if tsig.secret.is_none()
                && c.intact("dns.tsig.secret_file")
                && c.intact("dns.tsig.secret_env")
                && c.intact("dns.tsig.secret") =>
        {
            c.error(
                "dns.tsig",
                "say where the secret comes from: secret_file or secret_env",
            )
        }
        (None, Some(var)) if !names::is_env_var_name(var) => {
            c.error(
                "dns.tsig.secret_env",
                format!(
                    "'{}' is not an environment variable name",
                    names::printable(var)
                ),
            );
        }
        // Whether the key file can be read and the variable is set is the
        // environment's business: `settings` checks it.
        _ => {}
    }
}

fn check_transport(c: &mut Checker<'_>, path: &str, spec: &TransportSpec) {
    match spec {
        TransportSpec::Local(local) => {
            if let Some(program) = &local.program
                && (program.is_empty() || program.contains('\0'))
            {
                c.error(
                    &format!("{path}.program"),
                    "the program must be a non-empty path",
                );
            }
            if local.args.iter().any(|a| a.contains('\0')) {
                c.error(&format!("{path}.args"), "an argument contains a NUL byte");
            }
            if let Some(m) = &local.module {
                c.name(
                    &format!("{path}.module"),
                    m,
                    "module name",
                    names::check_identity,
                );
            }
        }
        TransportSpec::Ssh(ssh) => {
            let host_ok = ssh.host.parse::<IpAddr>().is_ok()
                || names::check_dns_name(&ssh.host, false).is_ok();
            if !host_ok {
                c.error(
                    &format!("{path}.host"),
                    format!(
                        "'{}' is neither an IP address nor a host name",
                        names::printable(&ssh.host)
                    ),
                );
            }
            if ssh.port == Some(0) {
                c.error(&format!("{path}.port"), "port 0 is not a port");
            }
            if let Some(user) = &ssh.user {
                c.name(
                    &format!("{path}.user"),
                    user,
                    "user name",
                    names::check_user,
                );
            }
            if let Some(program) = &ssh.remote_program {
                let ok = !program.is_empty()
                    && !program.contains(['\0', '\n', '\r', '"', '\'', '`', '$', ';', '&', '|']);
                if !ok {
                    c.error(
                        &format!("{path}.remote_program"),
                        "the remote program must be a plain path (no quotes, newlines or shell operators)",
                    );
                }
            }
            if let Some(m) = &ssh.module {
                c.name(
                    &format!("{path}.module"),
                    m,
                    "module name",
                    names::check_identity,
                );
            }
            if ssh.connect_timeout_secs == Some(0) {
                c.error(
                    &format!("{path}.connect_timeout_secs"),
                    "must be greater than 0",
                );
            }
            if ssh.connect_timeout_secs.is_some_and(|s| s > 86_400) {
                c.error(
                    &format!("{path}.connect_timeout_secs"),
                    "at most 86400 (a day)",
                );
            }
            if let Some(program) = &ssh.ssh_program
                && (program.is_empty() || program.contains('\0'))
            {
                c.error(
                    &format!("{path}.ssh_program"),
                    "the ssh client must be a non-empty path",
                );
            }
            // ssh reads these paths from `-o` options: the transport quotes
            // every other character so that ssh reads it back exactly, but an
            // option value cannot hold a line break or a NUL.
            for (field, file) in [
                ("identity_file", &ssh.identity_file),
                ("known_hosts", &ssh.known_hosts),
            ] {
                if let Some(file) = file {
                    let text = file.to_string_lossy();
                    if text.is_empty() || text.contains(['\n', '\r', '\0']) {
                        c.error(
                            &format!("{path}.{field}"),
                            "the path must be non-empty, without line breaks or NUL",
                        );
                    }
                }
            }
            if ssh.control_persist_secs.is_some_and(|s| s > 86_400) {
                c.error(
                    &format!("{path}.control_persist_secs"),
                    "at most 86400 (a day); 0 turns connection reuse off",
                );
            }
            if ssh.accept_new_host_keys {
                c.push(
                    Severity::Warning,
                    &format!("{path}.accept_new_host_keys"),
                    format!(
                        "{} will be trusted on first contact without checking its key; record the key in known_hosts instead",
                        names::printable(&ssh.host)
                    ),
                );
            }
        }
    }
}
