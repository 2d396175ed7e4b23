//! Semantic checks on a deserialised topology: names, references,
//! duplicates, addresses, where secrets come from.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};

use super::{
    Diagnostic, DnsMode, FORMAT_VERSION, Severity, SpanIndex, Topology, TransportSpec,
    parse_server_addr,
};
use crate::names;

struct Checker<'a> {
    spans: &'a SpanIndex,
    out: &'a mut Vec<Diagnostic>,
}

impl Checker<'_> {
    fn push(&mut self, severity: Severity, path: &str, message: impl Into<String>) {
        self.out.push(Diagnostic {
            severity,
            pos: self.spans.find(path),
            path: path.to_string(),
            message: message.into(),
        });
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

    /// Report the second and later uses of a name (compared without case).
    fn unique(
        &mut self,
        seen: &mut HashMap<String, String>,
        path: String,
        value: &str,
        what: &str,
    ) {
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
            let pos = self.spans.find(&path);
            seen.insert(key, format!("line {}", pos.line));
        }
    }
}

fn in_zone(name: &str, zone: &str) -> bool {
    let name = name.to_ascii_lowercase();
    let zone = zone.to_ascii_lowercase();
    name == zone || name.ends_with(&format!(".{zone}"))
}

pub(super) fn validate(t: &Topology, spans: &SpanIndex, out: &mut Vec<Diagnostic>) {
    let mut c = Checker { spans, out };

    if t.version != FORMAT_VERSION {
        c.error(
            "version",
            format!(
                "this edgefail reads topology format {FORMAT_VERSION}, the file says {}",
                t.version
            ),
        );
    }

    // XMPP federation records.
    c.name(
        "xmpp.domain",
        &t.xmpp.domain,
        "DNS domain",
        names::check_fqdn,
    );
    c.name(
        "xmpp.a_record",
        &t.xmpp.a_record,
        "host name",
        names::check_fqdn,
    );
    if let Some(p) = &t.xmpp.partner_name {
        c.name("xmpp.partner_name", p, "domain name", names::check_fqdn);
    }
    if t.xmpp.port == 0 {
        c.error(
            "xmpp.port",
            "port 0 is not a port (XMPP server-to-server uses 5269)",
        );
    }
    for (field, ms) in [
        ("xmpp.connect_timeout_ms", t.xmpp.connect_timeout_ms),
        ("xmpp.first_byte_timeout_ms", t.xmpp.first_byte_timeout_ms),
        ("xmpp.exchange_timeout_ms", t.xmpp.exchange_timeout_ms),
    ] {
        if ms == 0 {
            c.error(field, "a timeout of 0 ms would fail every connection");
        }
    }
    if t.xmpp.ttl > i32::MAX as u32 {
        c.error("xmpp.ttl", "a TTL is at most 2147483647 seconds (RFC 2181)");
    }

    // External DNS.
    c.name("dns.zone", &t.dns.zone, "DNS zone", |z| {
        names::check_dns_name(z, false)
    });
    if !in_zone(&t.xmpp.a_record, &t.dns.zone) {
        c.error(
            "xmpp.a_record",
            format!("{} is not inside the zone {}", t.xmpp.a_record, t.dns.zone),
        );
    }
    if !in_zone(&t.xmpp.srv_owner(), &t.dns.zone) {
        c.error(
            "xmpp.domain",
            format!(
                "{} is not inside the zone {}",
                t.xmpp.srv_owner(),
                t.dns.zone
            ),
        );
    }
    if let Some(primary) = &t.dns.primary
        && let Err(why) = parse_server_addr(primary, 53)
    {
        c.error(
            "dns.primary",
            format!("'{}': {why}", names::printable(primary)),
        );
    }
    if t.dns.authoritative.is_empty() {
        c.error(
            "dns.authoritative",
            "list every authoritative server of the zone: verification asks each of them",
        );
    }
    for (i, server) in t.dns.authoritative.iter().enumerate() {
        if let Err(why) = parse_server_addr(server, 53) {
            c.error(
                &format!("dns.authoritative[{i}]"),
                format!("'{}': {why}", names::printable(server)),
            );
        }
    }
    if t.dns.timeout_secs == 0 {
        c.error(
            "dns.timeout_secs",
            "a timeout of 0 seconds would fail every query",
        );
    }
    if t.dns.mode == DnsMode::Rfc2136 {
        if t.dns.primary.is_none() {
            c.error(
                "dns",
                "mode rfc2136 needs `primary`: the server that accepts updates",
            );
        }
        if t.dns.tsig.is_none() {
            c.error("dns", "mode rfc2136 needs `tsig`: updates must be signed");
        }
    }
    if let Some(tsig) = &t.dns.tsig {
        check_tsig(&mut c, tsig);
    }

    // Management shell.
    check_transport(&mut c, "management.transport", &t.management.transport);

    // Timeouts.
    if t.timeouts.command_secs == 0 || t.timeouts.verify_secs == 0 || t.timeouts.poll_ms == 0 {
        c.error(
            "timeouts",
            "timeouts and the poll interval must be greater than 0",
        );
    }

    // Sites, pools, servers.
    if t.sites.is_empty() {
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
    for (si, site) in t.sites.iter().enumerate() {
        let sp = format!("sites[{si}]");
        c.name(
            &format!("{sp}.name"),
            &site.name,
            "site identity",
            names::check_identity,
        );
        c.unique(&mut site_names, format!("{sp}.name"), &site.name, "site");
        if site.pools.is_empty() {
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
            if !pool.version.carries_xmpp() {
                c.push(
                    Severity::Note,
                    &format!("{pp}.version"),
                    format!(
                        "{} runs {}, which has no XMPP gateway: it cannot be the target of an XMPP federation failover",
                        pool.name, pool.version
                    ),
                );
            }
            if pool.servers.is_empty() {
                c.error(
                    &format!("{pp}.servers"),
                    format!("pool {} has no Edge servers", pool.name),
                );
            }
            if let Some(route) = &pool.route_server
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
                check_transport(&mut c, &format!("{vp}.transport"), &server.transport);
            }
        }
    }
    if !t.sites.is_empty() && pool_count < 2 {
        c.error("sites", "only one Edge pool: a failover needs at least two");
    }
}

fn check_tsig(c: &mut Checker<'_>, tsig: &super::Tsig) {
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
        (None, None) if tsig.secret.is_none() => c.error(
            "dns.tsig",
            "say where the secret comes from: secret_file or secret_env",
        ),
        (Some(path), None) => {
            if let Err(e) = crate::secret::read_key_file(path, &tsig.name) {
                c.error("dns.tsig.secret_file", e.to_string());
            }
        }
        (None, Some(var)) => {
            let valid = !var.is_empty()
                && !var.starts_with(|ch: char| ch.is_ascii_digit())
                && var
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '_');
            if !valid {
                c.error(
                    "dns.tsig.secret_env",
                    format!(
                        "'{}' is not an environment variable name",
                        names::printable(var)
                    ),
                );
            } else if std::env::var_os(var).is_none() {
                c.push(
                    Severity::Warning,
                    "dns.tsig.secret_env",
                    format!(
                        "{var} is not set in this environment; DNS updates will fail until it is"
                    ),
                );
            }
        }
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
            if let Some(program) = &ssh.ssh_program
                && (program.is_empty() || program.contains('\0'))
            {
                c.error(
                    &format!("{path}.ssh_program"),
                    "the ssh client must be a non-empty path",
                );
            }
            // ssh reads these paths from `-o` options, where a double quote or
            // a line break would end or split the value.
            for (field, file) in [
                ("identity_file", &ssh.identity_file),
                ("known_hosts", &ssh.known_hosts),
            ] {
                if let Some(file) = file {
                    let text = file.to_string_lossy();
                    if text.is_empty() || text.contains(['"', '\n', '\r', '\0']) {
                        c.error(
                            &format!("{path}.{field}"),
                            "the path must be non-empty, without double quotes or line breaks",
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
