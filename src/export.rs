//! The runbook as one PowerShell script to perform by hand on a Windows
//! admin box (`edgefail export powershell`): the same scripts edgefail
//! sends (built by `powershell`, the module behind `lync`), run on each
//! machine with `Invoke-Command`, every change between its check and its
//! read-back, stopping at the first failure; DNS changes as `nsupdate`
//! input with the compare-and-swap prerequisites edgefail would use, one
//! message per state the records may start in (as the topology describes
//! them, or as a failover the other way left them), chosen by what
//! `Resolve-DnsName` reads first, or, for a zone on Windows DNS, as
//! DnsServer cmdlets (`windows_dns`). Both paths share the branching
//! (`Writer::guarded`) and the records-as-text comparison.
//!
//! Each script edgefail sends appears verbatim, flush left, between a line
//! ending in `-ScriptBlock {` and a line that is only `}`: a reviewer can
//! compare it with `-vv` output, and the tests run every such block through
//! the same parser the PowerShell stand-in uses.

use std::net::Ipv4Addr;

use anyhow::anyhow;

use crate::dns::{self, Data, SrvRecord, Update, ZoneNames};
use crate::names::ps_literal;
use crate::powershell::{self, Script};
use crate::steps::srv_preference::plan_srv;
use crate::topology::{
    DnsMode, DnsServerKind, PoolRef, RouteParameter, Topology, TransportSpec, parse_server_addr,
};

mod windows_dns;

/// A PowerShell script that performs the failover from `from` to `to` by
/// hand. `path` is the topology file's name, for the header.
pub fn powershell(t: &Topology, path: &str, from: &str, to: &str) -> anyhow::Result<String> {
    let (f, g) = crate::steps::ctx::select(t, from, to)?;
    let from = PoolRef {
        site: &t.sites[f.0],
        pool: &t.sites[f.0].pools[f.1],
    };
    let to = PoolRef {
        site: &t.sites[g.0],
        pool: &t.sites[g.0].pools[g.1],
    };
    let mut w = Writer {
        out: String::new(),
        t,
    };
    w.header(path, &from, &to);
    w.step1(&to);
    w.services(&to, 2, false);
    w.step3(&to);
    w.step4(&from, &to)?;
    w.step5(&from, &to)?;
    w.step6(&to);
    w.services(&to, 7, true);
    w.step8(&to);
    w.line("Write-Host ''");
    w.line(&format!(
        "Write-Host {}",
        ps_literal(&format!(
            "Done: XMPP federation now runs through {}. Partners may keep the old DNS answers for up to {} seconds (the records' TTL).",
            to.pool.name, t.xmpp.ttl
        ))
    ));
    Ok(w.out)
}

struct Writer<'a> {
    out: String,
    t: &'a Topology,
}

/// The module a machine's scripts import, as `lync::Machine` takes it.
fn module(spec: &TransportSpec) -> Option<&str> {
    spec.module()
}

impl Writer<'_> {
    /// Whether the DNS steps are written with the DnsServer cmdlets.
    fn windows_dns(&self) -> bool {
        self.t.dns.server == DnsServerKind::Windows
    }

    /// `dns.primary`'s address when it listens on port 53, where
    /// Resolve-DnsName can ask it.
    fn primary_on_53(&self) -> Option<String> {
        let primary = self.t.dns.primary.as_deref()?;
        parse_server_addr(primary, 53)
            .ok()
            .filter(|a| a.port() == 53)
            .map(|a| a.ip().to_string())
    }

    /// Whether the DNS steps are sent with nsupdate and a TSIG key.
    fn nsupdate(&self) -> bool {
        !self.windows_dns() && self.t.dns.mode == DnsMode::Rfc2136
    }

    /// The address the DnsServer cmdlets' `-ComputerName` defaults to:
    /// `dns.primary` without its port.
    fn dns_server_default(&self) -> Option<String> {
        let primary = self.t.dns.primary.as_deref()?;
        parse_server_addr(primary, 53)
            .ok()
            .map(|a| a.ip().to_string())
    }

    fn line(&mut self, text: &str) {
        self.out.push_str(text);
        self.out.push('\n');
    }

    fn comment(&mut self, text: &str) {
        for l in text.lines() {
            if l.is_empty() {
                self.line("#");
            } else {
                self.line(&format!("# {l}"));
            }
        }
    }

    fn step_heading(&mut self, number: usize, id: &str, title: &str, what: &str) {
        self.line("");
        self.line(&format!("# {}", "=".repeat(74)));
        self.comment(&format!("Step {number} of 8 ({id}): {title}"));
        self.comment(what);
        self.line(&format!("# {}", "=".repeat(74)));
        self.line(&format!(
            "Write-Step {}",
            ps_literal(&format!("Step {number} ({id}): {title}"))
        ));
    }

    /// `$var = Invoke-Command ... -ScriptBlock {` the script `}`, on the
    /// management shell (this box when its transport is local) or an Edge
    /// server (with the Edge credential).
    fn invoke(&mut self, assign: Option<&str>, on: On<'_>, script: &Script, indent: &str) {
        let target = match on {
            On::Management => match &self.t.management.transport {
                TransportSpec::Ssh(ssh) => format!(
                    "-ComputerName {} -Credential $ManagementCredential ",
                    ps_literal(&ssh.host)
                ),
                TransportSpec::Local(_) => String::new(),
            },
            On::Edge(fqdn) => format!(
                "-ComputerName {} -Credential $EdgeCredential ",
                ps_literal(fqdn)
            ),
        };
        let assign = assign.map(|a| format!("{a} = ")).unwrap_or_default();
        self.line(&format!(
            "{indent}{assign}Invoke-Command {target}-ScriptBlock {{"
        ));
        // Verbatim, as edgefail sends it.
        self.out.push_str(&script.text());
        self.line("}");
    }

    fn header(&mut self, path: &str, from: &PoolRef<'_>, to: &PoolRef<'_>) {
        let t = self.t;
        self.line("<#");
        self.line(&format!(
            ".SYNOPSIS\n    Move XMPP federation from {} ({}) to {} ({}), by hand.",
            from.pool.name, from.site.name, to.pool.name, to.site.name
        ));
        self.line(".DESCRIPTION");
        for l in [
            format!(
                "Written by `edgefail export powershell` (edgefail {}) from {path}.",
                env!("CARGO_PKG_VERSION")
            ),
            "It performs the same runbook as `edgefail failover`, step by step: each".into(),
            "step reads the state first, changes it only when needed, and reads it".into(),
            "back; the first failure stops the script ($ErrorActionPreference = 'Stop').".into(),
            "The blocks inside -ScriptBlock { } are the exact scripts edgefail sends".into(),
            "to each machine; names are single-quoted literals.".into(),
            String::new(),
            "Run it on a Windows admin box with the Lync Server Management Shell".into(),
            "(for step 3), PowerShell remoting to the Edge servers (steps 2 and 7),".into(),
        ]
        .into_iter()
        .chain(if self.windows_dns() {
            vec![
                "and the DnsServer module (RSAT DNS Server Tools), as an account that may".into(),
                "change the zone on -DnsServer, for the DNS steps.".into(),
            ]
        } else if self.nsupdate() {
            vec![
                "and, for the DNS steps, Resolve-DnsName (the DnsClient module) and".into(),
                "nsupdate (BIND's tools).".into(),
            ]
        } else {
            vec![
                "and Resolve-DnsName (the DnsClient module) for the DNS steps; dns.mode is".into(),
                "manual: it shows each DNS change and waits while you make it.".into(),
            ]
        }) {
            self.line(format!("    {l}").trim_end());
        }
        self.line(".PARAMETER EdgeCredential");
        self.line(&format!(
            "    The local administrator of the Edge servers of {} (they are usually not",
            to.pool.name
        ));
        self.line("    domain-joined).");
        if matches!(t.management.transport, TransportSpec::Ssh(_)) {
            self.line(".PARAMETER ManagementCredential");
            self.line(
                "    An account with rights to run Set-CsSite on the management shell's machine.",
            );
        }
        if self.nsupdate() {
            self.line(".PARAMETER TsigKeyFile");
            self.line("    The TSIG key file for nsupdate -k (as tsig-keygen writes it).");
        }
        if !self.windows_dns() {
            self.line(".PARAMETER DnsServer");
            self.line(&format!(
                "    The DNS server the DNS steps read {}'s records from before changing them,",
                t.dns.zone
            ));
            self.line(
                "    to choose the change to make (Resolve-DnsName asks port 53 only); by default",
            );
            match (self.primary_on_53(), t.dns.primary.as_deref()) {
                (Some(_), _) => self.line("    dns.primary's address."),
                (None, Some(primary)) => self.line(&format!(
                    "    dns.primary's address, but dns.primary ({primary}) is not on port 53: name\n    a server that answers for the zone with the primary's records on port 53."
                )),
                (None, None) => self.line(
                    "    dns.primary's address, but there is none: name a server that answers for\n    the zone on port 53.",
                ),
            }
        }
        if self.windows_dns() {
            self.line(".PARAMETER DnsServer");
            self.line(&format!(
                "    The Windows DNS server that holds {} (-ComputerName of the DnsServer",
                t.dns.zone
            ));
            self.line(
                "    cmdlets; by default dns.primary's address: give its name where remoting to",
            );
            self.line("    an address is not allowed).");
        }
        self.line("#>");
        self.line("[CmdletBinding()]");
        self.line("param(");
        let mut params = vec![
            "    [Parameter(Mandatory = $true)]\n    [System.Management.Automation.PSCredential] $EdgeCredential".to_string(),
        ];
        if matches!(t.management.transport, TransportSpec::Ssh(_)) {
            params.push("    [Parameter(Mandatory = $true)]\n    [System.Management.Automation.PSCredential] $ManagementCredential".into());
        }
        if self.nsupdate() {
            params.push("    [Parameter(Mandatory = $true)]\n    [string] $TsigKeyFile".into());
        }
        if self.windows_dns() || self.primary_on_53().is_some() {
            params.push(match self.dns_server_default() {
                Some(server) => format!("    [string] $DnsServer = {}", ps_literal(&server)),
                None => "    [Parameter(Mandatory = $true)]\n    [string] $DnsServer".into(),
            });
        } else {
            params.push("    [Parameter(Mandatory = $true)]\n    [string] $DnsServer".into());
        }
        params.push(format!(
            "    # How long each read-back may wait for its state, in seconds.\n    [int] $VerifySeconds = {}",
            t.timeouts.verify_secs
        ));
        self.line(&params.join(",\n"));
        self.line(")");
        self.line("");
        self.line("$ErrorActionPreference = 'Stop'");
        self.line("Set-StrictMode -Version 3");
        self.line("");
        self.line("function Write-Step([string] $Text) {");
        self.line("    Write-Host ''");
        self.line("    Write-Host \"== $Text\"");
        self.line("}");
        self.line("");
        self.comment("Run $Read until it returns $true, or stop the script after $VerifySeconds.");
        self.line("function Wait-Until([string] $What, [scriptblock] $Read) {");
        self.line("    $deadline = (Get-Date).AddSeconds($VerifySeconds)");
        self.line("    while (-not (& $Read)) {");
        self.line("        if ((Get-Date) -gt $deadline) { throw \"still not so after $VerifySeconds s: $What\" }");
        self.line("        Start-Sleep -Seconds 2");
        self.line("    }");
        self.line("    Write-Host \"   read back: $What\"");
        self.line("}");
        self.line("");
        self.comment("The services a Get-CsWindowsService block returned that are not in $Status.\n(Through a variable: Windows PowerShell 5.1's ConvertFrom-Json hands an array\ndown the pipeline as one object.)");
        self.line("function Get-OffStatus([string] $Json, [string] $Status) {");
        self.line("    $services = ConvertFrom-Json -InputObject $Json");
        self.line("    if (@($services).Count -eq 0) { throw 'Get-CsWindowsService listed no Lync services' }");
        self.line("    @($services | Where-Object { $_.Status -ne $Status })");
        self.line("}");
        if self.windows_dns() {
            self.windows_dns_helpers();
            return;
        }
        self.line("");
        self.comment("The records of one name and type that $DnsServer answers: none when the name\nor the type does not exist there, any other error stops the script.");
        self.line("function Resolve-Records([string] $Name, [string] $Type) {");
        self.line("    try {");
        self.line("        Resolve-DnsName -Name $Name -Type $Type -Server $DnsServer -DnsOnly -NoHostsFile -ErrorAction Stop |");
        self.line("            Where-Object { $_.Section -eq 'Answer' -and $_.Type -eq $Type }");
        self.line("    } catch {");
        self.line(
            "        if ($_.FullyQualifiedErrorId -notlike 'DNS_ERROR_RCODE_NAME_ERROR,*' -and",
        );
        self.line(
            "            $_.FullyQualifiedErrorId -notlike 'DNS_INFO_NO_RECORDS,*') { throw }",
        );
        self.line("    }");
        self.line("}");
        self.line("");
        self.record_formats("$_.IPAddress", "$_.", "NameTarget");
        self.line("");
        if self.nsupdate() {
            self.comment(
                "Send one nsupdate message; its prerequisites make it a compare-and-swap.",
            );
            self.line("function Send-NsUpdate([string] $Text) {");
            self.line("    $Text | & nsupdate -v -k $TsigKeyFile");
            self.line("    if ($LASTEXITCODE -ne 0) { throw \"nsupdate failed (exit $LASTEXITCODE): the records changed since this script read them; run edgefail plan to see what they are\" }");
            self.line("}");
        } else {
            self.comment("dns.mode is manual: show one change (as nsupdate input) to make at the DNS\nprovider by hand, and wait until it is made.");
            self.line("function Request-DnsChange([string] $Text) {");
            self.line("    Write-Host $Text");
            self.line("    if ((Read-Host 'Type done once the change is made') -ne 'done') { throw 'the DNS change was not confirmed' }");
            self.line("}");
        }
    }

    fn step1(&mut self, to: &PoolRef<'_>) {
        let module = module(&self.t.management.transport);
        self.step_heading(
            1,
            "pool.deployed",
            &format!("make sure {} is deployed", to.pool.name),
            "Check only: the Central Management Store knows the pool and its servers.",
        );
        self.invoke(
            Some("$pool"),
            On::Management,
            &powershell::pool_read(module, &to.pool.fqdn),
            "",
        );
        self.line("$pool = ConvertFrom-Json -InputObject $pool");
        for s in &to.pool.servers {
            self.line(&format!(
                "if (@($pool.Computers) -notcontains {lit}) {{ throw {msg} }}",
                lit = ps_literal(&s.fqdn),
                msg = ps_literal(&format!(
                    "{} is not a server of {} in the Central Management Store",
                    s.fqdn, to.pool.fqdn
                ))
            ));
        }
        self.line(
            "Write-Host \"   $($pool.Identity) in $($pool.Site): $($pool.Computers -join ', ')\"",
        );
    }

    /// Steps 2 (stop) and 7 (start), per Edge server.
    fn services(&mut self, to: &PoolRef<'_>, number: usize, start: bool) {
        let (id, verb, status) = if start {
            ("services.start", "Start", "Running")
        } else {
            ("services.stop", "Stop", "Stopped")
        };
        self.step_heading(
            number,
            id,
            &format!(
                "{verb} the Lync services on every Edge server of {}",
                to.pool.name
            ),
            &format!(
                "Per server: read the services, {}-CsWindowsService if any is not {status},\nthen read back until every service is {status}.",
                verb
            ),
        );
        for s in &to.pool.servers {
            let m = module(&s.transport);
            let read = powershell::services_read(m);
            let change = if start {
                powershell::services_start(m)
            } else {
                powershell::services_stop(m, false)
            };
            self.line(&format!("# {}", s.fqdn));
            self.invoke(Some("$services"), On::Edge(&s.fqdn), &read, "");
            self.line(&format!(
                "if ((Get-OffStatus $services {}).Count -gt 0) {{",
                ps_literal(status)
            ));
            self.invoke(None, On::Edge(&s.fqdn), &change, "    ");
            self.line("}");
            self.line(&format!(
                "Wait-Until {} {{",
                ps_literal(&format!("every Lync service on {} is {status}", s.fqdn))
            ));
            self.invoke(Some("    $services"), On::Edge(&s.fqdn), &read, "");
            self.line(&format!(
                "    (Get-OffStatus $services {}).Count -eq 0",
                ps_literal(status)
            ));
            self.line("}");
        }
    }

    fn step3(&mut self, to: &PoolRef<'_>) {
        let m = module(&self.t.management.transport);
        let site = &to.site.name;
        let server = to.pool.route_server();
        self.step_heading(
            3,
            "route.set",
            &format!("point {site}'s XMPP federation route at {server}"),
            "The procedure page names -XmppExternalFederationRoute <Edge FQDN>; the cmdlet\nreference -XmppFederationRoute EdgeServer:<Edge FQDN>. Ask Set-CsSite which one\nit has, set the route if it is not there yet, read it back, then wait for\nevery Central Management Store replica.",
        );
        let pinned = self.t.management.route_parameter;
        self.invoke(
            Some("$parameters"),
            On::Management,
            &powershell::route_parameters(m),
            "",
        );
        self.line("$parameters = ConvertFrom-Json -InputObject $parameters");
        self.invoke(
            Some("$site"),
            On::Management,
            &powershell::site_read(m, site),
            "",
        );
        self.line("$site = ConvertFrom-Json -InputObject $site");
        let forms: Vec<(RouteParameter, &str, String)> = match pinned {
            RouteParameter::XmppFederationRoute => vec![(
                RouteParameter::XmppFederationRoute,
                "XmppFederationRoute",
                format!("EdgeServer:{server}"),
            )],
            RouteParameter::XmppExternalFederationRoute => vec![(
                RouteParameter::XmppExternalFederationRoute,
                "XmppExternalFederationRoute",
                server.to_string(),
            )],
            RouteParameter::Auto => vec![
                (
                    RouteParameter::XmppExternalFederationRoute,
                    "XmppExternalFederationRoute",
                    server.to_string(),
                ),
                (
                    RouteParameter::XmppFederationRoute,
                    "XmppFederationRoute",
                    format!("EdgeServer:{server}"),
                ),
            ],
        };
        for (i, (parameter, name, value)) in forms.iter().enumerate() {
            let keyword = if i == 0 { "if" } else { "elseif" };
            let close = if i == 0 { "" } else { "} " };
            self.line(&format!(
                "{close}{keyword} ($parameters -contains {}) {{",
                ps_literal(name)
            ));
            self.line(&format!(
                "    if ($site.{name} -notlike {}) {{",
                ps_literal(&format!("*{server}"))
            ));
            self.line(&format!(
                "        Write-Host ('   route: {{0}} -> {{1}}' -f $site.{name}, {})",
                ps_literal(value)
            ));
            self.invoke(
                None,
                On::Management,
                &powershell::site_set_route(m, site, *parameter, value),
                "        ",
            );
            self.line("    }");
            self.line(&format!(
                "    Wait-Until {} {{",
                ps_literal(&format!("{site}'s route names {server}"))
            ));
            self.invoke(
                Some("        $site"),
                On::Management,
                &powershell::site_read(m, site),
                "",
            );
            self.line(&format!(
                "        (ConvertFrom-Json -InputObject $site).{name} -like {}",
                ps_literal(&format!("*{server}"))
            ));
            self.line("    }");
        }
        self.line("} else {");
        self.line(&format!(
            "    throw {}",
            ps_literal("Set-CsSite has no XMPP route parameter: is this a Lync Server 2013 / Skype for Business Server 2015 management shell?")
        ));
        self.line("}");
        self.line(&format!(
            "Wait-Until {} {{",
            ps_literal("every Central Management Store replica is up to date")
        ));
        self.invoke(
            Some("    $replicas"),
            On::Management,
            &powershell::replication_read(m),
            "",
        );
        self.line("    $replicas = ConvertFrom-Json -InputObject $replicas");
        self.line("    @($replicas | Where-Object { -not $_.UpToDate }).Count -eq 0");
        self.line("}");
    }

    /// Step 4 or 5 with nsupdate: read the records from `$DnsServer`
    /// (`read`: the PowerShell that reads them), then send the message of
    /// the branch whose starting state matches (`moves`: the records as
    /// `a_text`/`srv_text` write them before and after, with the message
    /// that makes one of the other; its prerequisites are the records
    /// read, so a change since the read makes nsupdate refuse), nothing
    /// when they already are as wanted, and stop on anything else; then
    /// read back from every authoritative server.
    fn nsupdate_change(
        &mut self,
        owner: &str,
        read: &str,
        format: &str,
        moves: &[(String, String, Update)],
        read_back: &[String],
        what: &str,
    ) -> anyhow::Result<()> {
        let server = self
            .t
            .dns
            .primary
            .as_deref()
            .map(|p| parse_server_addr(p, 53))
            .transpose()
            .map_err(|e| anyhow!("dns.primary: {e}"))?;
        let texts: Vec<(String, String)> = moves
            .iter()
            .map(|(from, to, _)| (from.clone(), to.clone()))
            .collect();
        self.line(&format!("$records = @({read})"));
        self.line(&format!("$now = {format} $records"));
        let send = if self.nsupdate() {
            "Send-NsUpdate"
        } else {
            "Request-DnsChange"
        };
        self.guarded(owner, &texts, |w, i| {
            if let Some((_, _, update)) = moves.get(i) {
                w.line(&format!("    {send} @'"));
                w.out.push_str(&update.to_nsupdate(server));
                w.line("'@");
            }
        });
        self.wait_all(what, read_back);
        Ok(())
    }

    /// Wait until every one of `checks` (PowerShell expressions) is true.
    fn wait_all(&mut self, what: &str, checks: &[String]) {
        self.line(&format!("Wait-Until {} {{", ps_literal(what)));
        self.line(&format!("    @({}) -notcontains $false", checks.join(", ")));
        self.line("}");
    }

    /// The authoritative servers `Resolve-DnsName` can ask: it has no port
    /// parameter, so a server on another port is named in a comment.
    fn authoritative(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        let mut elsewhere = Vec::new();
        for a in &self.t.dns.authoritative {
            match parse_server_addr(a, 53) {
                Ok(addr) if addr.port() == 53 => out.push(addr.ip().to_string()),
                Ok(addr) => elsewhere.push(addr.to_string()),
                Err(_) => {}
            }
        }
        if !elsewhere.is_empty() {
            self.comment(&format!(
                "Resolve-DnsName asks port 53 only: read {} back yourself (dig -p PORT).",
                elsewhere.join(", ")
            ));
        }
        out
    }

    fn step4(&mut self, from: &PoolRef<'_>, to: &PoolRef<'_>) -> anyhow::Result<()> {
        let x = &self.t.xmpp;
        let names = ZoneNames::from_topology(self.t).map_err(|e| anyhow!("{e}"))?;
        let new_ip = to
            .pool
            .published_ipv4()
            .ok_or_else(|| anyhow!("{} has no external_ipv4 for its route server", to.pool.name))?;
        let old: Vec<Ipv4Addr> = from.pool.published_ipv4().into_iter().collect();
        let old_text = old
            .iter()
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        let what = if self.windows_dns() {
            format!(
                "A compare-and-swap by hand on the Windows DNS server: read the A record; if it\nis still {old_text} ({}), replace it (Set-DnsServerResourceRecord\n-OldInputObject -NewInputObject); if it already names {new_ip}, leave it; if it\nholds anything else, stop. Then read it back there and on every\nauthoritative server.",
                from.pool.name
            )
        } else if !self.nsupdate() {
            format!(
                "Read the A record from $DnsServer: if it already names {new_ip}, there is\nnothing to change; if it is {old_text} ({}), the change is shown\n(as nsupdate input) for you to make at the DNS provider; if it holds anything\nelse, the script stops before any change. Then read it back from every\nauthoritative server.",
                from.pool.name
            )
        } else {
            format!(
                "Read the A record from $DnsServer: if it already names {new_ip}, nothing is\nsent; if it is {old_text} ({}), one nsupdate message replaces\nit, with that address as its prerequisite (if it changed since the read,\nnsupdate refuses and the script stops); if it holds anything else, the\nscript stops before any change. Then read it back from every authoritative\nserver.",
                from.pool.name
            )
        };
        self.step_heading(
            4,
            "dns.a",
            &format!("point {} A at {} ({new_ip})", x.a_record, to.pool.name),
            &what,
        );
        let mut update = Update::new(&names.zone);
        update
            .require_a(&names.a, &old)
            .delete_rrset(&names.a, hickory_proto::rr::RecordType::A)
            .add(&names.a, x.ttl, Data::A(new_ip));
        let reads: Vec<String> = self
            .authoritative()
            .iter()
            .map(|server| {
                format!(
                    "(@(Resolve-DnsName -Name {} -Type A -Server {} -DnsOnly -NoHostsFile | Where-Object {{ $_.Type -eq 'A' }} | ForEach-Object {{ $_.IPAddress }}) -join ',') -eq {}",
                    ps_literal(x.a_record.trim_end_matches('.')),
                    ps_literal(server),
                    ps_literal(&new_ip.to_string())
                )
            })
            .collect();
        let what = format!(
            "every authoritative server answers {} A {new_ip}",
            x.a_record
        );
        if self.windows_dns() {
            return self.windows_a(&old, new_ip, &reads, &what);
        }
        let owner = x.a_record.trim_end_matches('.');
        self.nsupdate_change(
            &format!("{owner} A"),
            &format!("Resolve-Records {} 'A'", ps_literal(owner)),
            "Format-A",
            &[(
                windows_dns::a_text(&old),
                windows_dns::a_text(&[new_ip]),
                update,
            )],
            &reads,
            &what,
        )
    }

    fn step5(&mut self, from: &PoolRef<'_>, to: &PoolRef<'_>) -> anyhow::Result<()> {
        let x = &self.t.xmpp;
        let names = ZoneNames::from_topology(self.t).map_err(|e| anyhow!("{e}"))?;
        let record = |p: &PoolRef<'_>| -> anyhow::Result<SrvRecord> {
            Ok(SrvRecord {
                priority: p.pool.srv_priority,
                weight: p.pool.srv_weight,
                port: x.port,
                target: dns::fqdn(p.pool.srv_target(x)).map_err(|e| anyhow!("{e}"))?,
            })
        };
        // The documented "before": each pool publishes its own record.
        let mut current: Vec<SrvRecord> = self
            .t
            .pools()
            .map(|p| record(&p))
            .collect::<anyhow::Result<_>>()?;
        current.sort();
        current.dedup();
        let wanted = record(to)?;
        let plan = plan_srv(&current, &wanted).map_err(|e| anyhow!("{e}"))?;
        let what = if self.windows_dns() {
            "A lower priority number is preferred (RFC 2782; Microsoft's \"highest priority\").\nA compare-and-swap by hand on the Windows DNS server: read the SRV records; if\nthey are the ones the topology describes (one per pool), or as a failover the\nother way left them, swap the priorities with Set-DnsServerResourceRecord,\nkeeping every pool's record; if they already prefer the target, leave them;\nif they hold anything else, stop. Then read them back there and on every\nauthoritative server."
        } else if !self.nsupdate() {
            "A lower priority number is preferred (RFC 2782; Microsoft's \"highest priority\").\nRead the SRV records from $DnsServer: if they already prefer the target, there\nis nothing to change; if they are the ones the topology describes (one per\npool), or as a failover the other way left them, the change that swaps the\npriorities, keeping every pool's record, is shown (as nsupdate input) for you\nto make at the DNS provider; if they hold anything else, the script stops\nbefore any change. Then read them back from every authoritative server."
        } else {
            "A lower priority number is preferred (RFC 2782; Microsoft's \"highest priority\").\nRead the SRV records from $DnsServer: if they already prefer the target, nothing\nis sent; if they are the ones the topology describes (one per pool), or as a\nfailover the other way left them, one nsupdate message swaps the priorities,\nkeeping every pool's record, with the records read as its prerequisite (if\nthey changed since the read, nsupdate refuses and the script stops); if they\nhold anything else, the script stops before any change. Then read them back\nfrom every authoritative server."
        };
        self.step_heading(
            5,
            "dns.srv",
            &format!("make {} SRV prefer {}", x.srv_owner(), to.pool.name),
            what,
        );
        // Before the move, the records are as the topology describes them
        // or, for a failback, as a failover to `from` left them.
        let mut moves = vec![(current.clone(), plan.desired.clone())];
        let after_failover = plan_srv(&current, &record(from)?)
            .map_err(|e| anyhow!("{e}"))?
            .desired;
        if after_failover != current {
            let back = plan_srv(&after_failover, &wanted).map_err(|e| anyhow!("{e}"))?;
            moves.push((after_failover, back.desired));
        }
        let target = dns::show(&wanted.target);
        let reads: Vec<String> = self
            .authoritative()
            .iter()
            .map(|server| {
                format!(
                    "((@(Resolve-DnsName -Name {} -Type SRV -Server {} -DnsOnly -NoHostsFile | Where-Object {{ $_.Type -eq 'SRV' }} | Sort-Object Priority)[0]).NameTarget -eq {})",
                    ps_literal(&x.srv_owner()),
                    ps_literal(server),
                    ps_literal(target.trim_end_matches('.'))
                )
            })
            .collect();
        let what = format!(
            "every authoritative server prefers {}",
            target.trim_end_matches('.')
        );
        if self.windows_dns() {
            return self.windows_srv(&moves, &wanted, &reads, &what);
        }
        let moves: Vec<(String, String, Update)> = moves
            .iter()
            .map(|(before, after)| {
                let mut update = Update::new(&names.zone);
                update.require_srv(&names.srv, before);
                for r in before.iter().filter(|r| !after.contains(r)) {
                    update.delete(&names.srv, Data::Srv(r.clone()));
                }
                for r in after.iter().filter(|r| !before.contains(r)) {
                    update.add(&names.srv, x.ttl, Data::Srv(r.clone()));
                }
                (
                    windows_dns::srv_text(before),
                    windows_dns::srv_text(after),
                    update,
                )
            })
            .collect();
        let owner = x.srv_owner();
        self.nsupdate_change(
            &format!("{owner} SRV"),
            &format!("Resolve-Records {} 'SRV'", ps_literal(&owner)),
            "Format-Srv",
            &moves,
            &reads,
            &what,
        )
    }

    fn step6(&mut self, to: &PoolRef<'_>) {
        let port = self.t.xmpp.port;
        self.step_heading(
            6,
            "port.check",
            &format!("check port {port} of {} from outside", to.pool.name),
            "The services are still stopped, so nothing answers yet: Test-NetConnection\ncannot tell \"closed\" (the path is open) from \"filtered\" (a firewall drops\nit). Run this part from outside the perimeter, or use `edgefail probe\n--host ADDRESS --port PORT`, which tells them apart. Step 7's read-back\nchecks the port again once the services run.",
        );
        for s in &to.pool.servers {
            if let Ok(ip) = s.external_ipv4.parse::<Ipv4Addr>() {
                self.line(&format!(
                    "Test-NetConnection -ComputerName {} -Port {port} | Select-Object ComputerName, RemotePort, TcpTestSucceeded",
                    ps_literal(&ip.to_string())
                ));
            }
        }
    }

    fn step8(&mut self, to: &PoolRef<'_>) {
        let port = self.t.xmpp.port;
        self.step_heading(
            8,
            "federation.check",
            "what a federating partner sees",
            &format!(
                "Port {port} must now answer on every Edge server of {}. The full partner's-eye\ncheck (SRV, stream, STARTTLS, certificate names) is `edgefail probe -t TOPOLOGY\n--pool {}` from a machine outside.",
                to.pool.name, to.pool.name
            ),
        );
        for s in &to.pool.servers {
            if let Ok(ip) = s.external_ipv4.parse::<Ipv4Addr>() {
                self.line(&format!(
                    "Wait-Until {} {{",
                    ps_literal(&format!("port {port} answers on {} ({ip})", s.fqdn))
                ));
                self.line(&format!(
                    "    (Test-NetConnection -ComputerName {} -Port {port} -WarningAction SilentlyContinue).TcpTestSucceeded",
                    ps_literal(&ip.to_string())
                ));
                self.line("}");
            }
        }
    }
}

enum On<'a> {
    Management,
    Edge(&'a str),
}

/// The scripts of an export, each with the machine it runs on, in order:
/// every block between `-ScriptBlock {` and a line `}`.
pub fn blocks(script: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut current: Option<(String, String)> = None;
    for line in script.lines() {
        if let Some((host, text)) = current.as_mut() {
            if line == "}" {
                out.push((std::mem::take(host), std::mem::take(text)));
                current = None;
            } else {
                text.push_str(line);
                text.push('\n');
            }
            continue;
        }
        if line.trim_end().ends_with("-ScriptBlock {") {
            let host = line
                .split("-ComputerName '")
                .nth(1)
                .and_then(|r| r.split('\'').next())
                .unwrap_or("")
                .to_string();
            current = Some((host, String::new()));
        }
    }
    out
}
