//! The PowerShell edgefail sends: every script is built here, names go in as
//! single-quoted literals, and scripts travel as `-EncodedCommand` (base64 of
//! UTF-16LE) so no shell in between ever re-quotes them.

use base64::Engine as _;

use crate::names::ps_literal;
use crate::topology::RouteParameter;

/// A script and the cmdlet it is about, for messages
/// ("EdgeServer2.contoso.com: Stop-CsWindowsService failed: ...").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    pub action: &'static str,
    pub text: String,
}

impl Script {
    fn new(action: &'static str, module: Option<&str>, body: &[String]) -> Script {
        let mut text = String::from(
            "$ErrorActionPreference = 'Stop'\n$ProgressPreference = 'SilentlyContinue'\n",
        );
        if let Some(m) = module {
            text.push_str(&format!("Import-Module -Name {}\n", ps_literal(m)));
        }
        for line in body {
            text.push_str(line);
            text.push('\n');
        }
        Script { action, text }
    }

    /// The `-EncodedCommand` argument: base64 of the UTF-16LE script.
    pub fn encoded(&self) -> String {
        let bytes: Vec<u8> = self
            .text
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        base64::engine::general_purpose::STANDARD.encode(bytes)
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
        let s = Script {
            action: "x",
            text: "dir".into(),
        };
        // "dir" in UTF-16LE is 64 00 69 00 72 00.
        assert_eq!(s.encoded(), "ZABpAHIA");
    }

    #[test]
    fn hostile_site_stays_a_literal() {
        let s = site_read(None, "Site2'; Remove-Item C:\\ -Recurse; '");
        assert!(
            s.text
                .contains("-Identity 'Site2''; Remove-Item C:\\ -Recurse; '''")
        );
    }
}
