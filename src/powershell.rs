//! The PowerShell edgefail sends: every script is built here, names go in as
//! single-quoted literals, and scripts travel as `-EncodedCommand` (base64 of
//! UTF-16LE) so no shell in between ever re-quotes them.
//!
//! A script runs one of two ways. Alone, it is a whole `-EncodedCommand`
//! (preamble, `Import-Module`, body). In a session, one PowerShell process
//! per machine runs the [`session_bootstrap`] (preamble and `Import-Module`
//! once), then reads requests on stdin, one line each: `<id> <base64 of the
//! UTF-16LE body>`; it answers each with one line, `<tag> <id> <ok|error>
//! <base64 of UTF-8 stdout> <base64 of UTF-8 error text>`. The tag is drawn
//! per session, so nothing a script prints can pass for an answer, and every
//! field of an answer is base64, so no output can split or forge one.

use base64::Engine as _;

use crate::names::ps_literal;
use crate::topology::RouteParameter;

const PREAMBLE: &str =
    "$ErrorActionPreference = 'Stop'\n$ProgressPreference = 'SilentlyContinue'\n";

/// A script and the cmdlet it is about, for messages
/// ("EdgeServer2.contoso.com: Stop-CsWindowsService failed: ...").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    pub action: &'static str,
    /// The module imported before the body when the script runs alone (a
    /// session's bootstrap imports it once instead).
    module: Option<String>,
    /// The lines that do the work, each ending in a newline.
    pub body: String,
}

impl Script {
    fn new(action: &'static str, module: Option<&str>, body: &[String]) -> Script {
        let mut text = String::new();
        for line in body {
            text.push_str(line);
            text.push('\n');
        }
        Script {
            action,
            module: module.map(str::to_string),
            body: text,
        }
    }

    /// The whole script as it runs alone: preamble, module, body.
    pub fn text(&self) -> String {
        let mut text = String::from(PREAMBLE);
        if let Some(m) = &self.module {
            text.push_str(&format!("Import-Module -Name {}\n", ps_literal(m)));
        }
        text.push_str(&self.body);
        text
    }

    /// The `-EncodedCommand` argument: base64 of the UTF-16LE script.
    pub fn encoded(&self) -> String {
        encode(&self.text())
    }

    /// The arguments after the program name.
    pub fn args(&self) -> [String; 4] {
        [
            "-NoProfile".into(),
            "-NonInteractive".into(),
            "-EncodedCommand".into(),
            self.encoded(),
        ]
    }

    /// One session request: `<id> <base64 of the UTF-16LE body>`, no newline.
    pub fn request(&self, id: u64) -> String {
        format!("{id} {}", encode(&self.body))
    }
}

/// base64 of the UTF-16LE text, as `-EncodedCommand` takes it.
pub fn encode(text: &str) -> String {
    let bytes: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The script that turns a PowerShell process into a session: the preamble
/// and the module once, a ready line, then one framed answer per request
/// line until stdin closes (see the module's documentation). `tag` must be
/// letters and digits.
pub fn session_bootstrap(module: Option<&str>, tag: &str) -> Script {
    Script::new(
        "PowerShell session",
        module,
        &[
            format!("$edgefailTag = {}", ps_literal(tag)),
            "$edgefailUtf8 = New-Object -TypeName System.Text.UTF8Encoding -ArgumentList $false".into(),
            "[Console]::Out.WriteLine($edgefailTag + ' ready')".into(),
            "while ($null -ne ($edgefailLine = [Console]::In.ReadLine())) {".into(),
            "    $edgefailId, $edgefailRequest = $edgefailLine.Split(' ', 2)".into(),
            "    $edgefailStatus = 'ok'".into(),
            "    $edgefailErr = ''".into(),
            "    try {".into(),
            "        $edgefailBlock = [ScriptBlock]::Create([System.Text.Encoding]::Unicode.GetString([Convert]::FromBase64String($edgefailRequest)))".into(),
            "        $edgefailOut = & $edgefailBlock | Out-String".into(),
            "    } catch {".into(),
            "        $edgefailStatus = 'error'".into(),
            "        $edgefailOut = ''".into(),
            "        $edgefailErr = $_ | Out-String".into(),
            "    }".into(),
            "    [Console]::Out.WriteLine($edgefailTag + ' ' + $edgefailId + ' ' + $edgefailStatus + ' ' + [Convert]::ToBase64String($edgefailUtf8.GetBytes([string]$edgefailOut)) + ' ' + [Convert]::ToBase64String($edgefailUtf8.GetBytes([string]$edgefailErr)))".into(),
            "    [Console]::Out.Flush()".into(),
            "}".into(),
        ],
    )
}

/// Every Lync service on this machine with its status as text (ConvertTo-Json
/// would write the status enum as a number).
pub fn services_read(module: Option<&str>) -> Script {
    Script::new(
        "Get-CsWindowsService",
        module,
        &["ConvertTo-Json -Compress -InputObject @(Get-CsWindowsService | Select-Object Name, @{Name='Status'; Expression={[string]$_.Status}})".into()],
    )
}

pub fn services_stop(module: Option<&str>, graceful: bool) -> Script {
    let line = if graceful {
        "Stop-CsWindowsService -Graceful"
    } else {
        "Stop-CsWindowsService"
    };
    Script::new("Stop-CsWindowsService", module, &[line.into()])
}

pub fn services_start(module: Option<&str>) -> Script {
    Script::new(
        "Start-CsWindowsService",
        module,
        &["Start-CsWindowsService".into()],
    )
}

/// Which Xmpp* parameters the installed Set-CsSite has.
pub fn route_parameters(module: Option<&str>) -> Script {
    Script::new(
        "Get-Command Set-CsSite",
        module,
        &["ConvertTo-Json -Compress -InputObject @((Get-Command -Name 'Set-CsSite').Parameters.Keys | Where-Object { $_ -like 'Xmpp*' })".into()],
    )
}

/// The site's identity and every Xmpp* property, as text.
pub fn site_read(module: Option<&str>, site: &str) -> Script {
    Script::new(
        "Get-CsSite",
        module,
        &[
            format!("$site = Get-CsSite -Identity {}", ps_literal(site)),
            "$out = [ordered]@{ Identity = [string]$site.Identity }".into(),
            "foreach ($p in $site.PSObject.Properties) { if ($p.Name -like 'Xmpp*') { $out[$p.Name] = [string]$p.Value } }".into(),
            "ConvertTo-Json -Compress -InputObject $out".into(),
        ],
    )
}

/// Every named site's identity and Xmpp* properties in one script: a JSON
/// array in the order of `sites`, where a site that cannot be read is
/// `{ "Error": "..." }`. The names travel as one literal, a line each
/// (a site name has no line break).
pub fn sites_read(module: Option<&str>, sites: &[&str]) -> Script {
    Script::new(
        "Get-CsSite",
        module,
        &[
            format!("$names = {} -split [char]10", ps_literal(&sites.join("\n"))),
            "$out = foreach ($name in $names) { try { $site = Get-CsSite -Identity $name; $o = [ordered]@{ Identity = [string]$site.Identity }; foreach ($p in $site.PSObject.Properties) { if ($p.Name -like 'Xmpp*') { $o[$p.Name] = [string]$p.Value } }; $o } catch { [ordered]@{ Error = [string]$_ } } }".into(),
            "ConvertTo-Json -Compress -InputObject @($out)".into(),
        ],
    )
}

pub fn site_set_route(
    module: Option<&str>,
    site: &str,
    parameter: RouteParameter,
    value: &str,
) -> Script {
    let name = match parameter {
        RouteParameter::XmppFederationRoute => "XmppFederationRoute",
        RouteParameter::XmppExternalFederationRoute | RouteParameter::Auto => {
            "XmppExternalFederationRoute"
        }
    };
    Script::new(
        "Set-CsSite",
        module,
        &[format!(
            "Set-CsSite -Identity {} -{name} {}",
            ps_literal(site),
            ps_literal(value)
        )],
    )
}

/// Every CMS replica and whether it is up to date, or `null` where the
/// cmdlet does not exist.
pub fn replication_read(module: Option<&str>) -> Script {
    Script::new(
        "Get-CsManagementStoreReplicationStatus",
        module,
        &["if (Get-Command -Name 'Get-CsManagementStoreReplicationStatus' -ErrorAction SilentlyContinue) { ConvertTo-Json -Compress -InputObject @(Get-CsManagementStoreReplicationStatus | Select-Object @{Name='ReplicaFqdn'; Expression={[string]$_.ReplicaFqdn}}, UpToDate) } else { 'null' }".into()],
    )
}

/// The pool as the Central Management Store knows it.
pub fn pool_read(module: Option<&str>, pool_fqdn: &str) -> Script {
    Script::new(
        "Get-CsPool",
        module,
        &[
            format!("$pool = Get-CsPool -Identity {}", ps_literal(pool_fqdn)),
            "ConvertTo-Json -Compress -InputObject ([ordered]@{ Identity = [string]$pool.Identity; Site = [string]$pool.Site; Computers = @($pool.Computers | ForEach-Object { [string]$_ }) })".into(),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_utf16le_base64() {
        // "dir" in UTF-16LE is 64 00 69 00 72 00.
        assert_eq!(encode("dir"), "ZABpAHIA");
    }

    #[test]
    fn hostile_site_stays_a_literal() {
        let s = site_read(None, "Site2'; Remove-Item C:\\ -Recurse; '");
        assert!(
            s.text()
                .contains("-Identity 'Site2''; Remove-Item C:\\ -Recurse; '''")
        );
    }
}
