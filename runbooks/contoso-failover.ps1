<#
.SYNOPSIS
    Move XMPP federation from EdgePool1 (Site1) to EdgePool2 (Site2), by hand.
.DESCRIPTION
    Written by `edgefail export powershell` (edgefail 0.1.0) from runbooks/contoso.yaml.
    It performs the same runbook as `edgefail failover`, step by step: each
    step reads the state first, changes it only when needed, and reads it
    back; the first failure stops the script ($ErrorActionPreference = 'Stop').
    The blocks inside -ScriptBlock { } are the exact scripts edgefail sends
    to each machine; names are single-quoted literals.

    Run it on a Windows admin box with the Lync Server Management Shell
    (for step 3), PowerShell remoting to the Edge servers (steps 2 and 7),
    and, for the DNS steps, Resolve-DnsName (the DnsClient module) and
    nsupdate (BIND's tools).
.PARAMETER EdgeCredential
    The local administrator of the Edge servers of EdgePool2 (they are usually not
    domain-joined).
.PARAMETER TsigKeyFile
    The TSIG key file for nsupdate -k (as tsig-keygen writes it).
.PARAMETER DnsServer
    The DNS server the DNS steps read contoso.com's records from before changing them,
    to choose the change to make (Resolve-DnsName asks port 53 only); by default
    dns.primary's address.
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory = $true)]
    [System.Management.Automation.PSCredential] $EdgeCredential,
    [Parameter(Mandatory = $true)]
    [string] $TsigKeyFile,
    [string] $DnsServer = '127.0.0.1',
    # How long each read-back may wait for its state, in seconds.
    [int] $VerifySeconds = 300
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version 3

function Write-Step([string] $Text) {
    Write-Host ''
    Write-Host "== $Text"
}

# Run $Read until it returns $true, or stop the script after $VerifySeconds.
function Wait-Until([string] $What, [scriptblock] $Read) {
    $deadline = (Get-Date).AddSeconds($VerifySeconds)
    while (-not (& $Read)) {
        if ((Get-Date) -gt $deadline) { throw "still not so after $VerifySeconds s: $What" }
        Start-Sleep -Seconds 2
    }
    Write-Host "   read back: $What"
}

# The services a Get-CsWindowsService block returned that are not in $Status.
# (Through a variable: Windows PowerShell 5.1's ConvertFrom-Json hands an array
# down the pipeline as one object.)
function Get-OffStatus([string] $Json, [string] $Status) {
    $services = ConvertFrom-Json -InputObject $Json
    if (@($services).Count -eq 0) { throw 'Get-CsWindowsService listed no Lync services' }
    @($services | Where-Object { $_.Status -ne $Status })
}

# The records of one name and type that $DnsServer answers: none when the name
# or the type does not exist there, any other error stops the script.
function Resolve-Records([string] $Name, [string] $Type) {
    try {
        Resolve-DnsName -Name $Name -Type $Type -Server $DnsServer -DnsOnly -NoHostsFile -ErrorAction Stop |
            Where-Object { $_.Section -eq 'Answer' -and $_.Type -eq $Type }
    } catch {
        if ($_.FullyQualifiedErrorId -notlike 'DNS_ERROR_RCODE_NAME_ERROR,*' -and
            $_.FullyQualifiedErrorId -notlike 'DNS_INFO_NO_RECORDS,*') { throw }
    }
}

# Records as one line of text to compare with what this script expects: each
# record through $Format, sorted ordinally, joined with '; ' ('none' if none).
function Format-Records([object[]] $Records, [scriptblock] $Format) {
    [string[]] $items = @($Records | Where-Object { $null -ne $_ } | ForEach-Object $Format)
    if ($items.Count -eq 0) { return 'none' }
    [Array]::Sort($items, [StringComparer]::Ordinal)
    $items -join '; '
}
function Format-A([object[]] $Records) {
    Format-Records $Records { [string] $_.IPAddress }
}
function Format-Srv([object[]] $Records) {
    Format-Records $Records {
        '{0} {1} {2} {3}' -f $_.Priority, $_.Weight, $_.Port,
            $_.NameTarget.TrimEnd('.').ToLowerInvariant()
    }
}

# Send one nsupdate message; its prerequisites make it a compare-and-swap.
function Send-NsUpdate([string] $Text) {
    $Text | & nsupdate -v -k $TsigKeyFile
    if ($LASTEXITCODE -ne 0) { throw "nsupdate failed (exit $LASTEXITCODE): the records changed since this script read them; run edgefail plan to see what they are" }
}

# ==========================================================================
# Step 1 of 8 (pool.deployed): make sure EdgePool2 is deployed
# Check only: the Central Management Store knows the pool and its servers.
# ==========================================================================
Write-Step 'Step 1 (pool.deployed): make sure EdgePool2 is deployed'
$pool = Invoke-Command -ScriptBlock {
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
Import-Module -Name 'Lync'
$pool = Get-CsPool -Identity 'edgepool2.contoso.com'
ConvertTo-Json -Compress -InputObject ([ordered]@{ Identity = [string]$pool.Identity; Site = [string]$pool.Site; Computers = @($pool.Computers | ForEach-Object { [string]$_ }) })
}
$pool = ConvertFrom-Json -InputObject $pool
if (@($pool.Computers) -notcontains 'EdgeServer2.contoso.com') { throw 'EdgeServer2.contoso.com is not a server of edgepool2.contoso.com in the Central Management Store' }
Write-Host "   $($pool.Identity) in $($pool.Site): $($pool.Computers -join ', ')"

# ==========================================================================
# Step 2 of 8 (services.stop): Stop the Lync services on every Edge server of EdgePool2
# Per server: read the services, Stop-CsWindowsService if any is not Stopped,
# then read back until every service is Stopped.
# ==========================================================================
Write-Step 'Step 2 (services.stop): Stop the Lync services on every Edge server of EdgePool2'
# EdgeServer2.contoso.com
$services = Invoke-Command -ComputerName 'EdgeServer2.contoso.com' -Credential $EdgeCredential -ScriptBlock {
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
Import-Module -Name 'Lync'
ConvertTo-Json -Compress -InputObject @(Get-CsWindowsService | Select-Object Name, @{Name='Status'; Expression={[string]$_.Status}})
}
if ((Get-OffStatus $services 'Stopped').Count -gt 0) {
    Invoke-Command -ComputerName 'EdgeServer2.contoso.com' -Credential $EdgeCredential -ScriptBlock {
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
Import-Module -Name 'Lync'
Stop-CsWindowsService
}
}
Wait-Until 'every Lync service on EdgeServer2.contoso.com is Stopped' {
    $services = Invoke-Command -ComputerName 'EdgeServer2.contoso.com' -Credential $EdgeCredential -ScriptBlock {
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
Import-Module -Name 'Lync'
ConvertTo-Json -Compress -InputObject @(Get-CsWindowsService | Select-Object Name, @{Name='Status'; Expression={[string]$_.Status}})
}
    (Get-OffStatus $services 'Stopped').Count -eq 0
}

# ==========================================================================
# Step 3 of 8 (route.set): point Site2's XMPP federation route at EdgeServer2.contoso.com
# The procedure page names -XmppExternalFederationRoute <Edge FQDN>; the cmdlet
# reference -XmppFederationRoute EdgeServer:<Edge FQDN>. Ask Set-CsSite which one
# it has, set the route if it is not there yet, read it back, then wait for
# every Central Management Store replica.
# ==========================================================================
Write-Step 'Step 3 (route.set): point Site2''s XMPP federation route at EdgeServer2.contoso.com'
$parameters = Invoke-Command -ScriptBlock {
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
Import-Module -Name 'Lync'
ConvertTo-Json -Compress -InputObject @((Get-Command -Name 'Set-CsSite').Parameters.Keys | Where-Object { $_ -like 'Xmpp*' })
}
$parameters = ConvertFrom-Json -InputObject $parameters
$site = Invoke-Command -ScriptBlock {
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
Import-Module -Name 'Lync'
$site = Get-CsSite -Identity 'Site2'
$out = [ordered]@{ Identity = [string]$site.Identity }
foreach ($p in $site.PSObject.Properties) { if ($p.Name -like 'Xmpp*') { $out[$p.Name] = [string]$p.Value } }
ConvertTo-Json -Compress -InputObject $out
}
$site = ConvertFrom-Json -InputObject $site
if ($parameters -contains 'XmppExternalFederationRoute') {
    if ($site.XmppExternalFederationRoute -notlike '*EdgeServer2.contoso.com') {
        Write-Host ('   route: {0} -> {1}' -f $site.XmppExternalFederationRoute, 'EdgeServer2.contoso.com')
        Invoke-Command -ScriptBlock {
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
Import-Module -Name 'Lync'
Set-CsSite -Identity 'Site2' -XmppExternalFederationRoute 'EdgeServer2.contoso.com'
}
    }
    Wait-Until 'Site2''s route names EdgeServer2.contoso.com' {
        $site = Invoke-Command -ScriptBlock {
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
Import-Module -Name 'Lync'
$site = Get-CsSite -Identity 'Site2'
$out = [ordered]@{ Identity = [string]$site.Identity }
foreach ($p in $site.PSObject.Properties) { if ($p.Name -like 'Xmpp*') { $out[$p.Name] = [string]$p.Value } }
ConvertTo-Json -Compress -InputObject $out
}
        (ConvertFrom-Json -InputObject $site).XmppExternalFederationRoute -like '*EdgeServer2.contoso.com'
    }
} elseif ($parameters -contains 'XmppFederationRoute') {
    if ($site.XmppFederationRoute -notlike '*EdgeServer2.contoso.com') {
        Write-Host ('   route: {0} -> {1}' -f $site.XmppFederationRoute, 'EdgeServer:EdgeServer2.contoso.com')
        Invoke-Command -ScriptBlock {
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
Import-Module -Name 'Lync'
Set-CsSite -Identity 'Site2' -XmppFederationRoute 'EdgeServer:EdgeServer2.contoso.com'
}
    }
    Wait-Until 'Site2''s route names EdgeServer2.contoso.com' {
        $site = Invoke-Command -ScriptBlock {
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
Import-Module -Name 'Lync'
$site = Get-CsSite -Identity 'Site2'
$out = [ordered]@{ Identity = [string]$site.Identity }
foreach ($p in $site.PSObject.Properties) { if ($p.Name -like 'Xmpp*') { $out[$p.Name] = [string]$p.Value } }
ConvertTo-Json -Compress -InputObject $out
}
        (ConvertFrom-Json -InputObject $site).XmppFederationRoute -like '*EdgeServer2.contoso.com'
    }
} else {
    throw 'Set-CsSite has no XMPP route parameter: is this a Lync Server 2013 / Skype for Business Server 2015 management shell?'
}
Wait-Until 'every Central Management Store replica is up to date' {
    $replicas = Invoke-Command -ScriptBlock {
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
Import-Module -Name 'Lync'
if (Get-Command -Name 'Get-CsManagementStoreReplicationStatus' -ErrorAction SilentlyContinue) { ConvertTo-Json -Compress -InputObject @(Get-CsManagementStoreReplicationStatus | Select-Object @{Name='ReplicaFqdn'; Expression={[string]$_.ReplicaFqdn}}, UpToDate) } else { 'null' }
}
    $replicas = ConvertFrom-Json -InputObject $replicas
    @($replicas | Where-Object { -not $_.UpToDate }).Count -eq 0
}

# ==========================================================================
# Step 4 of 8 (dns.a): point xmpp.contoso.com A at EdgePool2 (127.0.0.20)
# Read the A record from $DnsServer: if it already names 127.0.0.20, nothing is
# sent; if it is 127.0.0.10 (EdgePool1), one nsupdate message replaces
# it, with that address as its prerequisite (if it changed since the read,
# nsupdate refuses and the script stops); if it holds anything else, the
# script stops before any change. Then read it back from every authoritative
# server.
# ==========================================================================
Write-Step 'Step 4 (dns.a): point xmpp.contoso.com A at EdgePool2 (127.0.0.20)'
$records = @(Resolve-Records 'xmpp.contoso.com' 'A')
$now = Format-A $records
if ($now -eq '127.0.0.20') {
    Write-Host '   xmpp.contoso.com A already reads 127.0.0.20: nothing to change'
} elseif ($now -eq '127.0.0.10') {
    Send-NsUpdate @'
server 127.0.0.1 53
zone contoso.com.
prereq yxrrset xmpp.contoso.com. IN A 127.0.0.10
update delete xmpp.contoso.com. IN A
update add xmpp.contoso.com. 300 IN A 127.0.0.20
send
'@
} else {
    throw ('xmpp.contoso.com A reads ' + $now + ', not 127.0.0.10 as this script expects: nothing was changed; run edgefail plan to see the records')
}
Wait-Until 'every authoritative server answers xmpp.contoso.com A 127.0.0.20' {
    @((@(Resolve-DnsName -Name 'xmpp.contoso.com' -Type A -Server '127.0.0.1' -DnsOnly -NoHostsFile | Where-Object { $_.Type -eq 'A' } | ForEach-Object { $_.IPAddress }) -join ',') -eq '127.0.0.20') -notcontains $false
}

# ==========================================================================
# Step 5 of 8 (dns.srv): make _xmpp-server._tcp.contoso.com SRV prefer EdgePool2
# A lower priority number is preferred (RFC 2782; Microsoft's "highest priority").
# Read the SRV records from $DnsServer: if they already prefer the target, nothing
# is sent; if they are the ones the topology describes (one per pool), or as a
# failover the other way left them, one nsupdate message swaps the priorities,
# keeping every pool's record, with the records read as its prerequisite (if
# they changed since the read, nsupdate refuses and the script stops); if they
# hold anything else, the script stops before any change. Then read them back
# from every authoritative server.
# ==========================================================================
Write-Step 'Step 5 (dns.srv): make _xmpp-server._tcp.contoso.com SRV prefer EdgePool2'
$records = @(Resolve-Records '_xmpp-server._tcp.contoso.com' 'SRV')
$now = Format-Srv $records
if ($now -eq '10 0 5269 edgepool2-xmpp.contoso.com; 20 0 5269 edgepool1-xmpp.contoso.com') {
    Write-Host '   _xmpp-server._tcp.contoso.com SRV already reads 10 0 5269 edgepool2-xmpp.contoso.com; 20 0 5269 edgepool1-xmpp.contoso.com: nothing to change'
} elseif ($now -eq '10 0 5269 edgepool1-xmpp.contoso.com; 20 0 5269 edgepool2-xmpp.contoso.com') {
    Send-NsUpdate @'
server 127.0.0.1 53
zone contoso.com.
prereq yxrrset _xmpp-server._tcp.contoso.com. IN SRV 10 0 5269 edgepool1-xmpp.contoso.com.
prereq yxrrset _xmpp-server._tcp.contoso.com. IN SRV 20 0 5269 edgepool2-xmpp.contoso.com.
update delete _xmpp-server._tcp.contoso.com. IN SRV 10 0 5269 edgepool1-xmpp.contoso.com.
update delete _xmpp-server._tcp.contoso.com. IN SRV 20 0 5269 edgepool2-xmpp.contoso.com.
update add _xmpp-server._tcp.contoso.com. 300 IN SRV 10 0 5269 edgepool2-xmpp.contoso.com.
update add _xmpp-server._tcp.contoso.com. 300 IN SRV 20 0 5269 edgepool1-xmpp.contoso.com.
send
'@
} else {
    throw ('_xmpp-server._tcp.contoso.com SRV reads ' + $now + ', not 10 0 5269 edgepool1-xmpp.contoso.com; 20 0 5269 edgepool2-xmpp.contoso.com as this script expects: nothing was changed; run edgefail plan to see the records')
}
Wait-Until 'every authoritative server prefers edgepool2-xmpp.contoso.com' {
    @(((@(Resolve-DnsName -Name '_xmpp-server._tcp.contoso.com' -Type SRV -Server '127.0.0.1' -DnsOnly -NoHostsFile | Where-Object { $_.Type -eq 'SRV' } | Sort-Object Priority)[0]).NameTarget -eq 'edgepool2-xmpp.contoso.com')) -notcontains $false
}

# ==========================================================================
# Step 6 of 8 (port.check): check port 5269 of EdgePool2 from outside
# The services are still stopped, so nothing answers yet: Test-NetConnection
# cannot tell "closed" (the path is open) from "filtered" (a firewall drops
# it). Run this part from outside the perimeter, or use `edgefail probe
# --host ADDRESS --port PORT`, which tells them apart. Step 7's read-back
# checks the port again once the services run.
# ==========================================================================
Write-Step 'Step 6 (port.check): check port 5269 of EdgePool2 from outside'
Test-NetConnection -ComputerName '127.0.0.20' -Port 5269 | Select-Object ComputerName, RemotePort, TcpTestSucceeded

# ==========================================================================
# Step 7 of 8 (services.start): Start the Lync services on every Edge server of EdgePool2
# Per server: read the services, Start-CsWindowsService if any is not Running,
# then read back until every service is Running.
# ==========================================================================
Write-Step 'Step 7 (services.start): Start the Lync services on every Edge server of EdgePool2'
# EdgeServer2.contoso.com
$services = Invoke-Command -ComputerName 'EdgeServer2.contoso.com' -Credential $EdgeCredential -ScriptBlock {
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
Import-Module -Name 'Lync'
ConvertTo-Json -Compress -InputObject @(Get-CsWindowsService | Select-Object Name, @{Name='Status'; Expression={[string]$_.Status}})
}
if ((Get-OffStatus $services 'Running').Count -gt 0) {
    Invoke-Command -ComputerName 'EdgeServer2.contoso.com' -Credential $EdgeCredential -ScriptBlock {
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
Import-Module -Name 'Lync'
Start-CsWindowsService
}
}
Wait-Until 'every Lync service on EdgeServer2.contoso.com is Running' {
    $services = Invoke-Command -ComputerName 'EdgeServer2.contoso.com' -Credential $EdgeCredential -ScriptBlock {
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
Import-Module -Name 'Lync'
ConvertTo-Json -Compress -InputObject @(Get-CsWindowsService | Select-Object Name, @{Name='Status'; Expression={[string]$_.Status}})
}
    (Get-OffStatus $services 'Running').Count -eq 0
}

# ==========================================================================
# Step 8 of 8 (federation.check): what a federating partner sees
# Port 5269 must now answer on every Edge server of EdgePool2. The full partner's-eye
# check (SRV, stream, STARTTLS, certificate names) is `edgefail probe -t TOPOLOGY
# --pool EdgePool2` from a machine outside.
# ==========================================================================
Write-Step 'Step 8 (federation.check): what a federating partner sees'
Wait-Until 'port 5269 answers on EdgeServer2.contoso.com (127.0.0.20)' {
    (Test-NetConnection -ComputerName '127.0.0.20' -Port 5269 -WarningAction SilentlyContinue).TcpTestSucceeded
}
Write-Host ''
Write-Host 'Done: XMPP federation now runs through EdgePool2. Partners may keep the old DNS answers for up to 300 seconds (the records'' TTL).'
