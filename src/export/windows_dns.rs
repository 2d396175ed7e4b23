//! Steps 4 and 5 of the export for a zone on Windows Server DNS
//! (`dns.server: windows`): the DnsServer module's cmdlets against the DNS
//! server (`-ComputerName $DnsServer`) instead of nsupdate input.
//!
//! Windows DNS has no equivalent of an RFC 2136 message with
//! prerequisites, so the compare-and-swap is done by hand: read the
//! records, go on only if they are what the plan expects (or already what
//! it wants), change them with `Set-DnsServerResourceRecord -OldInputObject
//! -NewInputObject` on a `Clone()` of the record read (one call per record;
//! `Clone()` rather than `[ciminstance]::new()` so that Windows PowerShell
//! 4.0 on Windows Server 2012 R2 runs it too), and read back. A change made by
//! someone else between the read and the Set is not caught; the Set itself
//! names the old record it replaces.
//!
//! The branching and the text comparison are shared with the nsupdate
//! path (which reads with `Resolve-DnsName`): records are compared as text
//! built the same way on both sides: the A
//! addresses, or each SRV record as `priority weight port target` (target
//! lowercase, no trailing dot), sorted ordinally and joined with `; `, or
//! `none`.

use std::net::Ipv4Addr;

use anyhow::anyhow;

use super::Writer;
use crate::dns::{self, SrvRecord};
use crate::names::ps_literal;

/// The text `Format-A` writes for these addresses.
pub(super) fn a_text(addresses: &[Ipv4Addr]) -> String {
    joined(addresses.iter().map(|a| a.to_string()).collect())
}

/// The text `Format-Srv` writes for one record.
fn srv_item(r: &SrvRecord) -> String {
    format!(
        "{} {} {} {}",
        r.priority,
        r.weight,
        r.port,
        dns::show(&r.target).trim_end_matches('.')
    )
}

/// The text `Format-Srv` writes for these records.
pub(super) fn srv_text(records: &[SrvRecord]) -> String {
    joined(records.iter().map(srv_item).collect())
}

fn joined(mut items: Vec<String>) -> String {
    if items.is_empty() {
        return "none".into();
    }
    items.sort();
    items.join("; ")
}

/// `name` relative to `zone` as the DnsServer cmdlets take it (`@` for
/// the zone's own name).
fn relative(name: &str, zone: &str) -> anyhow::Result<String> {
    let name = name.trim_end_matches('.');
    let zone = zone.trim_end_matches('.');
    if name.eq_ignore_ascii_case(zone) {
        return Ok("@".into());
    }
    let cut = name.len().checked_sub(zone.len() + 1);
    match cut.and_then(|cut| Some((name.get(..cut)?, name.get(cut..)?))) {
        Some((head, tail))
            if !head.is_empty()
                && tail
                    .strip_prefix('.')
                    .is_some_and(|z| z.eq_ignore_ascii_case(zone)) =>
        {
            Ok(head.to_string())
        }
        _ => Err(anyhow!("{name} is not inside the zone {zone}")),
    }
}

impl Writer<'_> {
    /// The header's part for Windows DNS: where the cmdlets go and the
    /// functions the DNS steps share.
    pub(super) fn windows_dns_helpers(&mut self) {
        self.line("");
        self.comment("The records one Get-DnsServerResourceRecord call reads: none when the name\ndoes not exist (the cmdlet reports that as ObjectNotFound), any other error\nstops the script.");
        self.line("function Read-DnsRecords([scriptblock] $Read) {");
        self.line("    try { & $Read } catch { if ($_.CategoryInfo.Category -ne 'ObjectNotFound') { throw } }");
        self.line("}");
        self.line("");
        self.record_formats("$_.RecordData.IPv4Address", "$_.RecordData.", "DomainName");
        self.line("");
        self.comment("The one SRV record among $Records that Format-Srv writes as $Text.");
        self.line("function Select-Srv([object[]] $Records, [string] $Text) {");
        self.line("    $found = @($Records | Where-Object { (Format-Srv @($_)) -eq $Text })");
        self.line("    if ($found.Count -ne 1) { throw \"expected one SRV record $Text, found $($found.Count)\" }");
        self.line("    $found[0]");
        self.line("}");
    }

    /// `Format-A` and `Format-Srv`: records as one line of text, as
    /// `a_text` and `srv_text` write them. `ip` is a record's address,
    /// `fields` what precedes its SRV fields, `target` the SRV target's
    /// field: the DnsServer cmdlets and Resolve-DnsName name them apart.
    pub(super) fn record_formats(&mut self, ip: &str, fields: &str, target: &str) {
        self.comment("Records as one line of text to compare with what this script expects: each\nrecord through $Format, sorted ordinally, joined with '; ' ('none' if none).");
        self.line("function Format-Records([object[]] $Records, [scriptblock] $Format) {");
        self.line("    [string[]] $items = @($Records | Where-Object { $null -ne $_ } | ForEach-Object $Format)");
        self.line("    if ($items.Count -eq 0) { return 'none' }");
        self.line("    [Array]::Sort($items, [StringComparer]::Ordinal)");
        self.line("    $items -join '; '");
        self.line("}");
        self.line("function Format-A([object[]] $Records) {");
        self.line(&format!("    Format-Records $Records {{ [string] {ip} }}"));
        self.line("}");
        self.line("function Format-Srv([object[]] $Records) {");
        self.line("    Format-Records $Records {");
        self.line(&format!(
            "        '{{0}} {{1}} {{2}} {{3}}' -f {fields}Priority, {fields}Weight, {fields}Port,"
        ));
        self.line(&format!(
            "            {fields}{target}.TrimEnd('.').ToLowerInvariant()"
        ));
        self.line("    }");
        self.line("}");
    }

    /// `$records = ...` reading `name`'s records of `rtype` from the server.
    fn read_records(&mut self, assign: &str, zone: &str, name: &str, rtype: &str) {
        self.line(&format!(
            "{assign} = @(Read-DnsRecords {{ Get-DnsServerResourceRecord -ComputerName $DnsServer -ZoneName {} -Name {} -RRType {rtype} }})",
            ps_literal(zone),
            ps_literal(name)
        ));
    }

    /// The guard of a compare-and-swap by hand over `moves` (records as
    /// they may be, records as the step wants them): nothing to do when the
    /// records already read as wanted, the change (`change(self, i)`) when
    /// they read as `moves[i].0`, and a stop otherwise. With more than one
    /// wanted state, the one chosen is left in `$wanted`; returns whether.
    pub(super) fn guarded(
        &mut self,
        owner: &str,
        moves: &[(String, String)],
        mut change: impl FnMut(&mut Self, usize),
    ) -> bool {
        let mut wanted: Vec<&str> = moves.iter().map(|(_, w)| w.as_str()).collect();
        wanted.sort();
        wanted.dedup();
        let several = wanted.len() > 1;
        match wanted.as_slice() {
            [one] => {
                self.line(&format!("if ($now -eq {}) {{", ps_literal(one)));
                self.line(&format!(
                    "    Write-Host {}",
                    ps_literal(&format!(
                        "   {owner} already reads {one}: nothing to change"
                    ))
                ));
            }
            _ => {
                let list: Vec<String> = wanted.iter().map(|w| ps_literal(w)).collect();
                self.line(&format!("if (@({}) -contains $now) {{", list.join(", ")));
                self.line(&format!(
                    "    Write-Host ({} + $now + {})",
                    ps_literal(&format!("   {owner} already reads ")),
                    ps_literal(": nothing to change")
                ));
                self.line("    $wanted = $now");
            }
        }
        let mut expected = Vec::new();
        for (i, (from, to)) in moves.iter().enumerate() {
            if wanted.contains(&from.as_str()) || expected.contains(&from) {
                continue;
            }
            expected.push(from);
            self.line(&format!("}} elseif ($now -eq {}) {{", ps_literal(from)));
            if several {
                self.line(&format!("    $wanted = {}", ps_literal(to)));
            }
            change(self, i);
        }
        let expected: Vec<&str> = if expected.is_empty() {
            wanted.clone()
        } else {
            expected.iter().map(|e| e.as_str()).collect()
        };
        self.line("} else {");
        self.line(&format!(
            "    throw ({} + $now + {})",
            ps_literal(&format!("{owner} reads ")),
            ps_literal(&format!(
                ", not {} as this script expects: nothing was changed; run edgefail plan to see the records",
                expected.join(" or ")
            ))
        ));
        self.line("}");
        several
    }

    /// Step 4 on Windows DNS: replace the A record of the failed pool with
    /// the target's.
    pub(super) fn windows_a(
        &mut self,
        old: &[Ipv4Addr],
        new_ip: Ipv4Addr,
        reads: &[String],
        what: &str,
    ) -> anyhow::Result<()> {
        let t = self.t;
        let zone = t.dns.zone.trim_end_matches('.').to_string();
        let owner = t.xmpp.a_record.trim_end_matches('.').to_string();
        let name = relative(&owner, &zone)?;
        let ttl = t.xmpp.ttl;
        self.read_records("$records", &zone, &name, "A");
        self.line("$now = Format-A $records");
        let expected = a_text(old);
        let wanted = a_text(&[new_ip]);
        let label = format!("{owner} A");
        let new = ps_literal(&new_ip.to_string());
        let z = ps_literal(&zone);
        self.guarded(&label, &[(expected, wanted.clone())], |w, _| {
            if let [_] = old {
                w.line("    $old = $records[0]");
                w.line("    $new = $old.Clone()");
                w.line(&format!(
                    "    $new.RecordData.IPv4Address = [System.Net.IPAddress]::Parse({new})"
                ));
                w.line(&format!(
                    "    $new.TimeToLive = [System.TimeSpan]::FromSeconds({ttl})"
                ));
                w.line(&format!(
                    "    Set-DnsServerResourceRecord -ComputerName $DnsServer -ZoneName {z} -OldInputObject $old -NewInputObject $new"
                ));
            } else {
                // No single record to replace: add the new one first, so
                // that the name always has an address, then remove the rest.
                w.line(&format!(
                    "    Add-DnsServerResourceRecordA -ComputerName $DnsServer -ZoneName {z} -Name {} -IPv4Address {new} -TimeToLive ([System.TimeSpan]::FromSeconds({ttl}))",
                    ps_literal(&name)
                ));
                if !old.is_empty() {
                    w.line(&format!(
                        "    $records | ForEach-Object {{ Remove-DnsServerResourceRecord -ComputerName $DnsServer -ZoneName {z} -InputObject $_ -Force }}"
                    ));
                }
            }
        });
        let mut checks = vec![format!(
            "((Format-A @(Read-DnsRecords {{ Get-DnsServerResourceRecord -ComputerName $DnsServer -ZoneName {z} -Name {} -RRType A }})) -eq {})",
            ps_literal(&name),
            ps_literal(&wanted)
        )];
        checks.extend(reads.iter().cloned());
        self.wait_all(what, &checks);
        Ok(())
    }

    /// Step 5 on Windows DNS: move the SRV priorities as `plan_srv` says,
    /// one record per call, the target pool's record first. `moves` pairs
    /// each state the records may be in before the step with the records
    /// the step makes of it.
    pub(super) fn windows_srv(
        &mut self,
        moves: &[(Vec<SrvRecord>, Vec<SrvRecord>)],
        wanted: &SrvRecord,
        reads: &[String],
        what: &str,
    ) -> anyhow::Result<()> {
        let t = self.t;
        let zone = t.dns.zone.trim_end_matches('.').to_string();
        let owner = t.xmpp.srv_owner();
        let name = relative(&owner, &zone)?;
        self.read_records("$records", &zone, &name, "Srv");
        self.line("$now = Format-Srv $records");
        let texts: Vec<(String, String)> = moves
            .iter()
            .map(|(from, to)| (srv_text(from), srv_text(to)))
            .collect();
        let z = ps_literal(&zone);
        let srv_name = ps_literal(&name);
        let several = self.guarded(&format!("{owner} SRV"), &texts, |w, i| {
            if let Some((from, to)) = moves.get(i) {
                w.srv_changes(from, to, wanted);
            }
        });
        let wanted_text = match texts.as_slice() {
            [(_, only), ..] if !several => ps_literal(only),
            _ => "$wanted".into(),
        };
        let mut checks = vec![format!(
            "((Format-Srv @(Read-DnsRecords {{ Get-DnsServerResourceRecord -ComputerName $DnsServer -ZoneName {z} -Name {srv_name} -RRType Srv }})) -eq {wanted_text})"
        )];
        checks.extend(reads.iter().cloned());
        self.wait_all(what, &checks);
        Ok(())
    }

    /// The calls that turn the SRV records `current` into `desired`.
    fn srv_changes(&mut self, current: &[SrvRecord], desired: &[SrvRecord], wanted: &SrvRecord) {
        let t = self.t;
        let ttl = t.xmpp.ttl;
        let z = ps_literal(t.dns.zone.trim_end_matches('.'));
        let srv_name = relative(&t.xmpp.srv_owner(), &t.dns.zone)
            .map(|n| ps_literal(&n))
            .unwrap_or_default();
        // Each record to add, paired with the record of the same target it
        // replaces, if any; the target pool's record first.
        let mut gone: Vec<&SrvRecord> = current.iter().filter(|r| !desired.contains(r)).collect();
        let mut added: Vec<&SrvRecord> = desired.iter().filter(|r| !current.contains(r)).collect();
        added.sort_by_key(|r| !r.targets(&wanted.target));
        let mut changes = Vec::new();
        for r in added {
            let replaces = gone
                .iter()
                .position(|g| g.targets(&r.target))
                .map(|i| gone.remove(i));
            changes.push((r, replaces));
        }
        if changes.len() > 1 {
            self.comment_indented("    ", "One record per call: between the calls, two records may share a priority\nfor a moment (nsupdate changes them in one message).");
        }
        for (r, replaces) in &changes {
            let target = dns::show(&r.target);
            let target = target.trim_end_matches('.');
            match replaces {
                Some(old) => {
                    let moves: Vec<String> = [
                        ("priority", old.priority, r.priority),
                        ("weight", old.weight, r.weight),
                        ("port", old.port, r.port),
                    ]
                    .iter()
                    .filter(|(_, a, b)| a != b)
                    .map(|(what, a, b)| format!("{what} {a} -> {b}"))
                    .collect();
                    self.comment_indented("    ", &format!("{target}: {}", moves.join(", ")));
                    self.line(&format!(
                        "    $old = Select-Srv $records {}",
                        ps_literal(&srv_item(old))
                    ));
                    self.line("    $new = $old.Clone()");
                    self.line(&format!(
                        "    $new.RecordData.Priority = [uint16] {}",
                        r.priority
                    ));
                    self.line(&format!(
                        "    $new.RecordData.Weight = [uint16] {}",
                        r.weight
                    ));
                    self.line(&format!("    $new.RecordData.Port = [uint16] {}", r.port));
                    self.line(&format!(
                        "    $new.TimeToLive = [System.TimeSpan]::FromSeconds({ttl})"
                    ));
                    self.line(&format!(
                        "    Set-DnsServerResourceRecord -ComputerName $DnsServer -ZoneName {z} -OldInputObject $old -NewInputObject $new"
                    ));
                }
                None => {
                    self.comment_indented("    ", &format!("{target}: a new record"));
                    self.line(&format!(
                        "    Add-DnsServerResourceRecord -Srv -ComputerName $DnsServer -ZoneName {z} -Name {srv_name} -DomainName {} -Priority {} -Weight {} -Port {} -TimeToLive ([System.TimeSpan]::FromSeconds({ttl}))",
                        ps_literal(target),
                        r.priority,
                        r.weight,
                        r.port
                    ));
                }
            }
        }
        for old in &gone {
            self.line(&format!(
                "    Remove-DnsServerResourceRecord -ComputerName $DnsServer -ZoneName {z} -InputObject (Select-Srv $records {}) -Force",
                ps_literal(&srv_item(old))
            ));
        }
    }

    fn comment_indented(&mut self, indent: &str, text: &str) {
        for l in text.lines() {
            self.line(&format!("{indent}# {l}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_relative_to_the_zone() {
        assert_eq!(relative("xmpp.contoso.com", "contoso.com").unwrap(), "xmpp");
        assert_eq!(
            relative("_xmpp-server._tcp.Contoso.com.", "contoso.com").unwrap(),
            "_xmpp-server._tcp"
        );
        assert_eq!(relative("contoso.com", "contoso.com.").unwrap(), "@");
        assert!(relative("xmpp.fabrikam.com", "contoso.com").is_err());
        assert!(relative("xcontoso.com", "contoso.com").is_err());
    }

    #[test]
    fn records_read_as_sorted_text() {
        let rec = |priority, target: &str| SrvRecord {
            priority,
            weight: 0,
            port: 5269,
            target: dns::fqdn(target).unwrap(),
        };
        assert_eq!(
            srv_text(&[rec(20, "B.contoso.com"), rec(10, "a.contoso.com.")]),
            "10 0 5269 a.contoso.com; 20 0 5269 b.contoso.com"
        );
        assert_eq!(srv_text(&[]), "none");
        assert_eq!(
            a_text(&["127.0.0.20".parse().unwrap(), "127.0.0.10".parse().unwrap()]),
            "127.0.0.10; 127.0.0.20"
        );
    }
}
