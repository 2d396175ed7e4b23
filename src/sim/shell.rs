//! The simulated Lync Server Management Shell and Edge servers: one parser
//! of the exact scripts edgefail sends, and the estate they act on. Shared by
//! `edgefail rehearse` (state in memory) and the tests' powershell.exe
//! stand-in (state in a JSON file).
//!
//! Only the script forms `powershell` builds are accepted; anything else
//! fails the way PowerShell does for an unknown command. Names arrive as
//! single-quoted literals and are parsed back with PowerShell's rules, so a
//! quoting mistake shows up as a wrong name, not a pass.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// What a script did, for the caller to play out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Print(String),
    /// Never returns, like a stuck cmdlet.
    Hang,
    /// As `Hang`, and a process playing it must not give up even once
    /// orphaned: proves that edgefail itself ends what it abandons.
    HangForever,
    /// Output after a pause, the change already made.
    Slow(String, u64),
    /// The process ends at once without answering, as a PowerShell
    /// session that crashed mid-command.
    Die,
}

impl PsError {
    /// What PowerShell prints on stderr for a terminating error.
    pub fn render(&self) -> String {
        format!(
            "{c} : {m}\nAt line:3 char:1\n+ {c}\n    + CategoryInfo          : NotSpecified: (:) [{c}], Exception\n",
            c = self.cmdlet,
            m = self.message
        )
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct State {
    /// Which route parameter the installed Set-CsSite has:
    /// "XmppExternalFederationRoute" or "XmppFederationRoute".
    pub set_cssite_parameter: String,
    /// Modules Import-Module accepts; empty accepts any.
    pub modules: Vec<String>,
    pub sites: BTreeMap<String, SiteState>,
    pub pools: BTreeMap<String, PoolState>,
    /// None: Get-CsManagementStoreReplicationStatus does not exist.
    pub replication: Option<Vec<Replica>>,
    /// How many reads a replica lags after Set-CsSite.
    pub replication_lag_reads: u32,
    pub hosts: BTreeMap<String, HostState>,
    pub faults: Vec<Fault>,
    pub log: Vec<LogEntry>,
    /// How long a process takes to start (powershell.exe and the module).
    pub startup_ms: u64,
    /// How long each cmdlet takes to answer, its change already made.
    pub delays_ms: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SiteState {
    pub identity: String,
    pub route: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct PoolState {
    pub identity: String,
    pub site: String,
    pub computers: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Replica {
    pub fqdn: String,
    pub up_to_date: bool,
    pub lag: u32,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct HostState {
    /// Service name -> Running | Stopped | StopPending | StartPending.
    pub services: BTreeMap<String, String>,
    /// Reads of Get-CsWindowsService a stop/start stays pending for.
    pub settle_reads: u32,
    pub pending: u32,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Fault {
    pub host: String,
    pub cmdlet: String,
    /// "fail", "hang", "die" (the process ends without answering), or
    /// "slow" (do the work, then take `ms` to return).
    pub action: String,
    pub ms: u64,
    /// With "hang": keep hanging even once orphaned.
    pub outlive: bool,
    pub message: String,
    /// How many times it fires; None: every time.
    pub times: Option<u32>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct LogEntry {
    pub host: String,
    pub cmdlet: String,
    pub args: Vec<String>,
}

/// A PowerShell-style terminating error: "<cmdlet> : <message>" on stderr.
#[derive(Debug)]
pub struct PsError {
    pub cmdlet: String,
    pub message: String,
}

pub fn ps_error(cmdlet: &str, message: impl Into<String>) -> PsError {
    PsError {
        cmdlet: cmdlet.to_string(),
        message: message.into(),
    }
}

/// base64 -> UTF-16LE -> text, as powershell.exe decodes -EncodedCommand.
pub fn decode(encoded: &str) -> Result<String, PsError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|e| {
            ps_error(
                "powershell.exe",
                format!("-EncodedCommand is not base64: {e}"),
            )
        })?;
    if bytes.len() % 2 != 0 {
        return Err(ps_error(
            "powershell.exe",
            "-EncodedCommand is not UTF-16LE (odd length)",
        ));
    }
    let units: Vec<u16> = bytes
        .chunks(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    String::from_utf16(&units)
        .map_err(|_| ps_error("powershell.exe", "-EncodedCommand is not valid UTF-16LE"))
}

fn is_quote(c: char) -> bool {
    matches!(c, '\'' | '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{201B}')
}

/// Replace every single-quoted literal by `?` and return the literals'
/// values, with PowerShell's rule: a doubled quote is one quote.
fn split_literals(script: &str) -> Result<(String, Vec<String>), PsError> {
    let mut template = String::new();
    let mut literals = Vec::new();
    let mut chars = script.chars().peekable();
    while let Some(c) = chars.next() {
        if !is_quote(c) {
            template.push(c);
            continue;
        }
        let mut value = String::new();
        loop {
            match chars.next() {
                None => {
                    return Err(ps_error(
                        "ParserError",
                        "The string is missing the terminator: '.",
                    ));
                }
                Some(q) if is_quote(q) => {
                    if chars.peek().copied().is_some_and(is_quote) {
                        value.push(chars.next().unwrap_or(q));
                    } else {
                        break;
                    }
                }
                Some(other) => value.push(other),
            }
        }
        template.push('?');
        literals.push(value);
    }
    Ok((template, literals))
}

const PREAMBLE: &str = "$ErrorActionPreference = ?\n$ProgressPreference = ?\n";

/// Run one script (its decoded text) as `host`, against `state`.
pub fn run(state: &mut State, host: &str, script: &str) -> Result<Action, PsError> {
    let (template, literals) = split_literals(script)?;
    // A bare `?` outside quotes would stand in for a literal that is not
    // there; edgefail never sends one.
    if template.matches('?').count() != literals.len() {
        return Err(ps_error(
            "ParserError",
            "unexpected '?' outside a quoted string (not a script edgefail sends)",
        ));
    }
    execute(state, host, &template, &literals)
}

fn execute(
    state: &mut State,
    host: &str,
    template: &str,
    lits: &[String],
) -> Result<Action, PsError> {
    let Some(mut body) = template.strip_prefix(PREAMBLE) else {
        return Err(ps_error("pwsh_standin", "script lacks edgefail's preamble"));
    };
    let mut lits = lits;
    if lits.len() < 2 || lits[0] != "Stop" || lits[1] != "SilentlyContinue" {
        return Err(ps_error(
            "pwsh_standin",
            "preamble values are not Stop / SilentlyContinue",
        ));
    }
    lits = &lits[2..];
    if let Some(after) = body.strip_prefix("Import-Module -Name ?\n") {
        import(state, &lits[0])?;
        body = after;
        lits = &lits[1..];
    }
    execute_body(state, host, body, lits)
}

/// What a session's bootstrap set up: the tag its answers carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub tag: String,
    pub module: Option<String>,
}

/// The bootstrap's body as it must arrive, literals replaced by `?`.
const BOOTSTRAP: &str = r#"$edgefailTag = ?
$edgefailUtf8 = New-Object -TypeName System.Text.UTF8Encoding -ArgumentList $false
[Console]::Out.WriteLine($edgefailTag + ?)
while ($null -ne ($edgefailLine = [Console]::In.ReadLine())) {
    $edgefailId, $edgefailRequest = $edgefailLine.Split(?, 2)
    $edgefailStatus = ?
    $edgefailErr = ?
    try {
        $edgefailBlock = [ScriptBlock]::Create([System.Text.Encoding]::Unicode.GetString([Convert]::FromBase64String($edgefailRequest)))
        $edgefailOut = & $edgefailBlock | Out-String
    } catch {
        $edgefailStatus = ?
        $edgefailOut = ?
        $edgefailErr = $_ | Out-String
    }
    [Console]::Out.WriteLine($edgefailTag + ? + $edgefailId + ? + $edgefailStatus + ? + [Convert]::ToBase64String($edgefailUtf8.GetBytes([string]$edgefailOut)) + ? + [Convert]::ToBase64String($edgefailUtf8.GetBytes([string]$edgefailErr)))
    [Console]::Out.Flush()
}
"#;

/// Accept edgefail's session bootstrap (and nothing else) as the script a
/// process was started with: the preamble, the module (which must load),
/// and the request loop exactly as edgefail writes it.
pub fn bootstrap(state: &State, script: &str) -> Result<Session, PsError> {
    let (template, literals) = split_literals(script)?;
    if template.matches('?').count() != literals.len() {
        return Err(ps_error(
            "ParserError",
            "unexpected '?' outside a quoted string (not a script edgefail sends)",
        ));
    }
    let Some(mut body) = template.strip_prefix(PREAMBLE) else {
        return Err(ps_error("pwsh_standin", "script lacks edgefail's preamble"));
    };
    let mut lits: &[String] = &literals;
    if lits.len() < 2 || lits[0] != "Stop" || lits[1] != "SilentlyContinue" {
        return Err(ps_error(
            "pwsh_standin",
            "preamble values are not Stop / SilentlyContinue",
        ));
    }
    lits = &lits[2..];
    let mut module = None;
    if let Some(after) = body.strip_prefix("Import-Module -Name ?\n") {
        let name = lits.first().cloned().unwrap_or_default();
        import(state, &name)?;
        module = Some(name);
        body = after;
        lits = &lits[1..];
    }
    if body != BOOTSTRAP {
        return Err(ps_error(
            "pwsh_standin",
            format!(
                "not edgefail's session bootstrap (this stand-in accepts only edgefail's scripts): {body:?}"
            ),
        ));
    }
    let want = [" ready", " ", "ok", "", "error", "", " ", " ", " ", " "];
    let Some((tag, rest)) = lits.split_first() else {
        return Err(ps_error("pwsh_standin", "the bootstrap has no tag"));
    };
    if rest.len() != want.len() || rest.iter().zip(want).any(|(a, b)| a != b) {
        return Err(ps_error(
            "pwsh_standin",
            format!("unexpected literals in the bootstrap: {rest:?}"),
        ));
    }
    if tag.is_empty() || !tag.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(ps_error(
            "pwsh_standin",
            "the session tag must be letters and digits",
        ));
    }
    Ok(Session {
        tag: tag.clone(),
        module,
    })
}

/// Run one session request's body (no preamble, no module: the bootstrap
/// did both) as `host`.
pub fn run_in_session(state: &mut State, host: &str, body: &str) -> Result<Action, PsError> {
    let (template, literals) = split_literals(body)?;
    if template.matches('?').count() != literals.len() {
        return Err(ps_error(
            "ParserError",
            "unexpected '?' outside a quoted string (not a script edgefail sends)",
        ));
    }
    execute_body(state, host, &template, &literals)
}

/// One session request line, `<id> <base64 of UTF-16LE body>`: the id and
/// the decoded body.
pub fn parse_request(line: &str) -> Result<(u64, String), PsError> {
    let line = line.trim_end_matches(['\r', '\n']);
    let (id, encoded) = line
        .split_once(' ')
        .ok_or_else(|| ps_error("pwsh_standin", format!("not a framed request: {line:?}")))?;
    let id = id
        .parse()
        .map_err(|_| ps_error("pwsh_standin", format!("not a request id: {id:?}")))?;
    Ok((id, decode(encoded)?))
}

/// The answer line (without newline) the bootstrap's loop writes.
pub fn frame_answer(tag: &str, id: u64, result: &Result<String, PsError>) -> String {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s.as_bytes());
    match result {
        Ok(out) => format!("{tag} {id} ok {} ", b64(out)),
        Err(e) => format!("{tag} {id} error  {}", b64(&e.render())),
    }
}

fn import(state: &State, module: &str) -> Result<(), PsError> {
    if !state.modules.is_empty() && !state.modules.iter().any(|m| m.eq_ignore_ascii_case(module)) {
        return Err(ps_error(
            "Import-Module",
            format!(
                "The specified module '{module}' was not loaded because no valid module file was found in any module directory."
            ),
        ));
    }
    Ok(())
}

fn execute_body(
    state: &mut State,
    host: &str,
    body: &str,
    lits: &[String],
) -> Result<Action, PsError> {
    let body = body.trim_end_matches('\n');
    let host_key = host.to_ascii_lowercase();

    // Get-CsSite for every site at once (one literal, a name a line).
    let mut every_site = false;
    let cmdlet = match body {
        "ConvertTo-Json -Compress -InputObject @(Get-CsWindowsService | Select-Object Name, @{Name=?; Expression={[string]$_.Status}})" =>
        {
            expect(lits, &["Status"])?;
            "Get-CsWindowsService"
        }
        "Stop-CsWindowsService" | "Stop-CsWindowsService -Graceful" => "Stop-CsWindowsService",
        "Start-CsWindowsService" => "Start-CsWindowsService",
        "ConvertTo-Json -Compress -InputObject @((Get-Command -Name ?).Parameters.Keys | Where-Object { $_ -like ? })" =>
        {
            expect(lits, &["Set-CsSite", "Xmpp*"])?;
            "Get-Command"
        }
        "$site = Get-CsSite -Identity ?\n$out = [ordered]@{ Identity = [string]$site.Identity }\nforeach ($p in $site.PSObject.Properties) { if ($p.Name -like ?) { $out[$p.Name] = [string]$p.Value } }\nConvertTo-Json -Compress -InputObject $out" =>
        {
            if lits.len() != 2 || lits[1] != "Xmpp*" {
                return Err(ps_error("Get-CsSite", "unexpected literals"));
            }
            "Get-CsSite"
        }
        "$names = ? -split [char]10\n$out = foreach ($name in $names) { try { $site = Get-CsSite -Identity $name; $o = [ordered]@{ Identity = [string]$site.Identity }; foreach ($p in $site.PSObject.Properties) { if ($p.Name -like ?) { $o[$p.Name] = [string]$p.Value } }; $o } catch { [ordered]@{ Error = [string]$_ } } }\nConvertTo-Json -Compress -InputObject @($out)" =>
        {
            if lits.len() != 2 || lits[1] != "Xmpp*" {
                return Err(ps_error("Get-CsSite", "unexpected literals"));
            }
            every_site = true;
            "Get-CsSite"
        }
        "Set-CsSite -Identity ? -XmppExternalFederationRoute ?"
        | "Set-CsSite -Identity ? -XmppFederationRoute ?" => "Set-CsSite",
        "if (Get-Command -Name ? -ErrorAction SilentlyContinue) { ConvertTo-Json -Compress -InputObject @(Get-CsManagementStoreReplicationStatus | Select-Object @{Name=?; Expression={[string]$_.ReplicaFqdn}}, UpToDate) } else { ? }" =>
        {
            expect(
                lits,
                &[
                    "Get-CsManagementStoreReplicationStatus",
                    "ReplicaFqdn",
                    "null",
                ],
            )?;
            "Get-CsManagementStoreReplicationStatus"
        }
        "$pool = Get-CsPool -Identity ?\nConvertTo-Json -Compress -InputObject ([ordered]@{ Identity = [string]$pool.Identity; Site = [string]$pool.Site; Computers = @($pool.Computers | ForEach-Object { [string]$_ }) })" => {
            "Get-CsPool"
        }
        other => {
            let first = other
                .lines()
                .next()
                .unwrap_or("")
                .split_whitespace()
                .next()
                .unwrap_or("");
            return Err(ps_error(
                first,
                format!(
                    "The term '{first}' is not recognized as the name of a cmdlet, function, script file, or operable program (this stand-in accepts only edgefail's documented scripts; got {other:?})"
                ),
            ));
        }
    };

    state.log.push(LogEntry {
        host: host.to_string(),
        cmdlet: cmdlet.to_string(),
        args: lits.to_vec(),
    });

    // Injected faults fire before the cmdlet does anything.
    let mut slow = None;
    if let Some(i) = state.faults.iter().position(|f| {
        f.host.eq_ignore_ascii_case(host)
            && f.cmdlet.eq_ignore_ascii_case(cmdlet)
            && f.times != Some(0)
    }) {
        let fault = &mut state.faults[i];
        if let Some(n) = fault.times.as_mut() {
            *n -= 1;
        }
        match fault.action.as_str() {
            "hang" if fault.outlive => return Ok(Action::HangForever),
            "hang" => return Ok(Action::Hang),
            "die" => return Ok(Action::Die),
            "slow" => slow = Some(fault.ms),
            _ => return Err(ps_error(cmdlet, fault.message.clone())),
        }
    }

    if slow.is_none() {
        slow = state.delays_ms.get(cmdlet).copied().filter(|&ms| ms > 0);
    }

    let out = match cmdlet {
        "Get-CsWindowsService" => {
            let h = host_state(state, &host_key, cmdlet)?;
            if h.pending > 0 {
                h.pending -= 1;
            }
            if h.pending == 0 {
                for status in h.services.values_mut() {
                    match status.as_str() {
                        "StopPending" => *status = "Stopped".into(),
                        "StartPending" => *status = "Running".into(),
                        _ => {}
                    }
                }
            }
            let list: Vec<Value> = h
                .services
                .iter()
                .map(|(name, status)| json!({"Name": name, "Status": status}))
                .collect();
            Value::Array(list).to_string()
        }
        "Stop-CsWindowsService" | "Start-CsWindowsService" => {
            let stopping = cmdlet == "Stop-CsWindowsService";
            let h = host_state(state, &host_key, cmdlet)?;
            h.pending = h.settle_reads;
            let (pending, done) = if stopping {
                ("StopPending", "Stopped")
            } else {
                ("StartPending", "Running")
            };
            for status in h.services.values_mut() {
                *status = if h.settle_reads > 0 {
                    pending.into()
                } else {
                    done.into()
                };
            }
            String::new()
        }
        "Get-Command" => {
            if state.set_cssite_parameter.is_empty() {
                "[]".to_string()
            } else {
                json!([state.set_cssite_parameter]).to_string()
            }
        }
        "Get-CsSite" if every_site => {
            let parameter = state.set_cssite_parameter.clone();
            let all: Vec<Value> = lits[0]
                .split('\n')
                .map(|name| match find_site(state, name) {
                    Ok(site) => {
                        let mut out = serde_json::Map::new();
                        out.insert("Identity".into(), json!(site.identity));
                        if !parameter.is_empty() {
                            out.insert(parameter.clone(), json!(site.route));
                        }
                        Value::Object(out)
                    }
                    Err(e) => json!({ "Error": e.message }),
                })
                .collect();
            Value::Array(all).to_string()
        }
        "Get-CsSite" => {
            let site = find_site(state, &lits[0])?;
            let mut out = serde_json::Map::new();
            out.insert("Identity".into(), json!(site.identity));
            let parameter = state.set_cssite_parameter.clone();
            if !parameter.is_empty() {
                let site = find_site(state, &lits[0])?;
                out.insert(parameter, json!(site.route));
            }
            Value::Object(out).to_string()
        }
        "Set-CsSite" => {
            let spelled = if body.contains("-XmppFederationRoute") {
                "XmppFederationRoute"
            } else {
                "XmppExternalFederationRoute"
            };
            if !spelled.eq_ignore_ascii_case(&state.set_cssite_parameter) {
                return Err(ps_error(
                    "Set-CsSite",
                    format!("A parameter cannot be found that matches parameter name '{spelled}'."),
                ));
            }
            let value = lits[1].clone();
            if spelled == "XmppFederationRoute"
                && !value.to_ascii_lowercase().starts_with("edgeserver:")
            {
                return Err(ps_error(
                    "Set-CsSite",
                    format!(
                        "Cannot bind parameter 'XmppFederationRoute'. Cannot convert value \"{value}\" to a service identity (expected EdgeServer:<FQDN>)."
                    ),
                ));
            }
            let lag = state.replication_lag_reads;
            let site = find_site(state, &lits[0])?;
            site.route = value;
            if let Some(replicas) = state.replication.as_mut() {
                for r in replicas {
                    r.up_to_date = lag == 0;
                    r.lag = lag;
                }
            }
            String::new()
        }
        "Get-CsManagementStoreReplicationStatus" => match state.replication.as_mut() {
            None => "null".to_string(),
            Some(replicas) => {
                let list: Vec<Value> = replicas
                    .iter_mut()
                    .map(|r| {
                        if r.lag > 0 {
                            r.lag -= 1;
                            if r.lag == 0 {
                                r.up_to_date = true;
                            }
                        }
                        json!({"ReplicaFqdn": r.fqdn, "UpToDate": r.up_to_date})
                    })
                    .collect();
                Value::Array(list).to_string()
            }
        },
        "Get-CsPool" => {
            let key = lits[0].to_ascii_lowercase();
            let pool = state
                .pools
                .iter()
                .find(|(k, _)| k.to_ascii_lowercase() == key)
                .map(|(_, p)| p)
                .ok_or_else(|| {
                    ps_error(
                        "Get-CsPool",
                        format!("Cannot find pool \"{}\" in the topology.", lits[0]),
                    )
                })?;
            json!({"Identity": pool.identity, "Site": pool.site, "Computers": pool.computers})
                .to_string()
        }
        _ => String::new(),
    };
    let out = if out.is_empty() {
        out
    } else {
        format!("{out}\r\n")
    };
    Ok(match slow {
        Some(ms) => Action::Slow(out, ms),
        None => Action::Print(out),
    })
}

fn expect(lits: &[String], want: &[&str]) -> Result<(), PsError> {
    if lits.len() == want.len() && lits.iter().zip(want).all(|(a, b)| a == b) {
        Ok(())
    } else {
        Err(ps_error(
            "pwsh_standin",
            format!("unexpected literals {lits:?}"),
        ))
    }
}

fn host_state<'a>(
    state: &'a mut State,
    host: &str,
    cmdlet: &str,
) -> Result<&'a mut HostState, PsError> {
    state
        .hosts
        .iter_mut()
        .find(|(k, _)| k.to_ascii_lowercase() == host)
        .map(|(_, h)| h)
        .ok_or_else(|| ps_error(cmdlet, format!("no Lync services are installed on {host}")))
}

fn find_site<'a>(state: &'a mut State, name: &str) -> Result<&'a mut SiteState, PsError> {
    let key = name.to_ascii_lowercase();
    state
        .sites
        .iter_mut()
        .find(|(k, _)| k.to_ascii_lowercase() == key)
        .map(|(_, s)| s)
        .ok_or_else(|| ps_error("Get-CsSite", format!("Cannot find site \"{name}\".")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_question_mark_is_refused_not_a_panic() {
        let mut state = State::default();
        let script = "$ErrorActionPreference = 'Stop'\n$ProgressPreference = 'SilentlyContinue'\nImport-Module -Name ?\n";
        let e = run(&mut state, "h", script).unwrap_err();
        assert_eq!(e.cmdlet, "ParserError");
    }

    #[test]
    fn only_edgefails_bootstrap_starts_a_session() {
        let state = State::default();
        let script = crate::powershell::session_bootstrap(Some("Lync"), "ef12ab").text();
        let session = bootstrap(&state, &script).unwrap();
        assert_eq!(session.tag, "ef12ab");
        assert_eq!(session.module.as_deref(), Some("Lync"));
        for tampered in [
            script.replace("Out-String", "Out-Null"),
            script.replace("'ef12ab'", "'ef 12'"),
            script.replace("' ready'", "' go'"),
            format!("{script}Remove-Item C:\\\n"),
        ] {
            assert!(bootstrap(&state, &tampered).is_err(), "{tampered}");
        }
        // Requests carry only the body: no module import, no preamble.
        let mut state = State::default();
        state.sites.insert(
            "Site2".into(),
            SiteState {
                identity: "Site:Site2".into(),
                route: String::new(),
            },
        );
        let read = crate::powershell::site_read(Some("Lync"), "Site2");
        let (id, body) = parse_request(&read.request(7)).unwrap();
        assert_eq!(id, 7);
        assert!(matches!(
            run_in_session(&mut state, "fe1", &body),
            Ok(Action::Print(_))
        ));
        assert!(run_in_session(&mut state, "fe1", &read.text()).is_err());
    }

    /// Every site in one script: each in its order, a site that cannot be
    /// read as its error, a name with a quote as a literal.
    #[test]
    fn every_site_is_read_in_one_script() {
        let mut state = State {
            set_cssite_parameter: "XmppExternalFederationRoute".into(),
            ..State::default()
        };
        for (name, route) in [("Site1", "edge1.contoso.com"), ("Site'2", "")] {
            state.sites.insert(
                name.into(),
                SiteState {
                    identity: format!("Site:{name}"),
                    route: route.into(),
                },
            );
        }
        let read = crate::powershell::sites_read(Some("Lync"), &["Site1", "Nowhere", "Site'2"]);
        let (_, body) = parse_request(&read.request(1)).unwrap();
        let Ok(Action::Print(out)) = run_in_session(&mut state, "fe1", &body) else {
            panic!("not answered");
        };
        let v: Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(
            v,
            json!([
                {"Identity": "Site:Site1", "XmppExternalFederationRoute": "edge1.contoso.com"},
                {"Error": "Cannot find site \"Nowhere\"."},
                {"Identity": "Site:Site'2", "XmppExternalFederationRoute": ""}
            ])
        );
        assert_eq!(state.log.len(), 1, "one command for every site");
    }

    #[test]
    fn quotes_double_as_powershell_does() {
        let (template, lits) = split_literals("Get-CsSite -Identity 'Site''2'").unwrap();
        assert_eq!(template, "Get-CsSite -Identity ?");
        assert_eq!(lits, vec!["Site'2".to_string()]);
    }
}
