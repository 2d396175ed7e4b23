//! Steps 4 and 5: the XMPP federation A record and the `_xmpp-server._tcp`
//! SRV record on the external DNS. Check reads every authoritative server
//! (and the primary); apply changes the primary in one compare-and-swap
//! UPDATE, or has the operator do it (manual mode); verify polls every
//! server until it has the new records at the primary's serial.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{IsTerminal, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;

use super::{Applied, Change, Check, Failure, Observation, Prior, Step, StepId, Verified};
use crate::context::Ctx;
use crate::dns::{
    self, Authority, Data, DnsError, Primary, Rrset, ServerRole, Signer, Snapshot, SrvRecord,
    Update, ZoneNames, show,
};
use crate::topology::{DnsMode, parse_server_addr};

/// Step 4: point the XMPP A record at the target pool.
pub struct DnsA;

/// Step 5: make the target pool's SRV record the preferred one.
pub struct DnsSrv;

/// What check read and decided, for apply and verify.
struct Memo<T> {
    /// The rrset on the primary (or the first server) at check time: the
    /// compare-and-swap's prerequisite.
    expected: Rrset<T>,
    /// The records every server must end up with.
    desired: Vec<T>,
    /// `None` when the primary already has `desired` and only the other
    /// servers lag behind.
    update: Option<Update>,
    /// The largest TTL of the old records on any server: how long caches
    /// may keep serving them.
    old_ttl: Option<u32>,
}

/// Every server's reading, in the order of [`dns::servers`].
struct Survey {
    names: ZoneNames,
    reads: Vec<(ServerRole, Snapshot)>,
    /// The server the compare-and-swap compares against: the primary, or
    /// (manual mode without one) the first listed server.
    base: (ServerRole, Snapshot),
}

fn names(ctx: &Ctx) -> Result<ZoneNames, String> {
    ZoneNames::from_topology(&ctx.topology).map_err(|e| format!("failed to {e}"))
}

async fn read_all(
    servers: &[ServerRole],
    names: &ZoneNames,
    timeout: Duration,
) -> Vec<(ServerRole, Result<Snapshot, String>)> {
    let mut set = tokio::task::JoinSet::new();
    for (i, s) in servers.iter().enumerate() {
        let names = names.clone();
        let auth = Authority::new(s.addr, timeout);
        set.spawn(async move { (i, auth.read(&names).await.map_err(|e| e.to_string())) });
    }
    let mut got: Vec<Option<Result<Snapshot, String>>> = vec![None; servers.len()];
    while let Some(joined) = set.join_next().await {
        if let Ok((i, r)) = joined
            && let Some(slot) = got.get_mut(i)
        {
            *slot = Some(r);
        }
    }
    servers
        .iter()
        .zip(got)
        .map(|(s, r)| {
            (
                *s,
                r.unwrap_or_else(|| Err(format!("read {}: the reading task failed", s.addr))),
            )
        })
        .collect()
}

impl Survey {
    /// Read every server at once; any server that cannot be read makes the
    /// whole check unable to tell.
    async fn take(ctx: &Ctx) -> Result<Survey, String> {
        let names = names(ctx)?;
        let servers = dns::servers(&ctx.topology).map_err(|e| format!("failed to {e}"))?;
        if servers.is_empty() {
            return Err("the topology lists no DNS server (dns.primary, dns.authoritative)".into());
        }
        let mut reads = Vec::new();
        let mut errors = Vec::new();
        for (role, r) in read_all(&servers, &names, dns::timeout(&ctx.topology)).await {
            match r {
                Ok(s) => reads.push((role, s)),
                Err(e) => errors.push(format!("failed to {e}")),
            }
        }
        if !errors.is_empty() {
            return Err(errors.join("; "));
        }
        let base = reads
            .iter()
            .find(|(r, _)| r.primary)
            .or_else(|| reads.first())
            .cloned()
            .ok_or("no DNS server could be read")?;
        Ok(Survey { names, reads, base })
    }

    fn basis(&self) -> &(ServerRole, Snapshot) {
        &self.base
    }

    /// One line per server, `part` saying what the step cares about.
    fn lines(&self, part: impl Fn(&Snapshot) -> String) -> Vec<String> {
        self.reads
            .iter()
            .map(|(r, s)| format!("{}: serial {}, {}", r.label(), s.serial, part(s)))
            .collect()
    }

    /// The servers that differ from the basis (serial or the step's part).
    fn disagreement(&self, part: impl Fn(&Snapshot) -> String) -> Option<String> {
        let (base_role, base) = self.basis();
        let odd: Vec<String> = self
            .reads
            .iter()
            .filter(|(r, s)| {
                r.addr != base_role.addr && (s.serial != base.serial || part(s) != part(base))
            })
            .map(|(r, s)| format!("{} has serial {} and {}", r.addr, s.serial, part(s)))
            .collect();
        (!odd.is_empty()).then(|| {
            format!(
                "the servers disagree: {} has serial {} and {}, {}",
                base_role.addr,
                base.serial,
                part(base),
                odd.join(", ")
            )
        })
    }

    /// The largest TTL of `pick`'s rrset on any server.
    fn max_ttl<T>(&self, pick: impl Fn(&Snapshot) -> &Rrset<T>) -> Option<u32> {
        self.reads.iter().filter_map(|(_, s)| pick(s).ttl).max()
    }

    /// Servers that do not (yet) have what the basis has.
    fn lagging<T: PartialEq>(&self, pick: impl Fn(&Snapshot) -> &Rrset<T>) -> Vec<&ServerRole> {
        let (_, base) = self.basis();
        self.reads
            .iter()
            .filter(|(_, s)| {
                pick(s).records != pick(base).records
                    || !dns::serial_at_least(s.serial, base.serial)
            })
            .map(|(r, _)| r)
            .collect()
    }
}

fn short(name: &str) -> &str {
    name.trim_end_matches('.')
}

/// An address, with the pool that publishes it.
fn describe_ip(ctx: &Ctx, ip: &Ipv4Addr) -> String {
    match ctx
        .topology
        .pools()
        .find(|p| p.pool.published_ipv4() == Some(*ip))
    {
        Some(p) => format!("{ip} ({})", p.pool.name),
        None => ip.to_string(),
    }
}

/// The addresses, with their pools; no TTL.
fn list_a(ctx: &Ctx, a: &Rrset<Ipv4Addr>) -> String {
    if a.is_empty() {
        return "no A record".into();
    }
    let list: Vec<String> = a.records.iter().map(|ip| describe_ip(ctx, ip)).collect();
    list.join(", ")
}

fn describe_a(ctx: &Ctx, a: &Rrset<Ipv4Addr>) -> String {
    match a.ttl {
        Some(ttl) => format!("{} [TTL {ttl}]", list_a(ctx, a)),
        None => list_a(ctx, a),
    }
}

/// The pool whose SRV target `target` is.
fn srv_pool<'a>(ctx: &'a Ctx, target: &hickory_proto::rr::Name) -> Option<&'a str> {
    let x = &ctx.topology.xmpp;
    let shown = show(target);
    ctx.topology
        .pools()
        .find(|p| {
            dns::fqdn(p.pool.srv_target(x))
                .map(|n| show(&n) == shown)
                .unwrap_or(false)
        })
        .map(|p| p.pool.name.as_str())
}

fn describe_srv_record(ctx: &Ctx, r: &SrvRecord) -> String {
    match srv_pool(ctx, &r.target) {
        Some(pool) => format!("{r} ({pool})"),
        None => r.to_string(),
    }
}

/// The records, with their pools; no TTL.
fn list_srv(ctx: &Ctx, srv: &Rrset<SrvRecord>) -> String {
    if srv.is_empty() {
        return "no SRV record".into();
    }
    let list: Vec<String> = srv
        .records
        .iter()
        .map(|r| describe_srv_record(ctx, r))
        .collect();
    list.join(", ")
}

fn describe_srv(ctx: &Ctx, srv: &Rrset<SrvRecord>) -> String {
    match srv.ttl {
        Some(ttl) => format!("{} [TTL {ttl}]", list_srv(ctx, srv)),
        None => list_srv(ctx, srv),
    }
}

/// The primary, with its key; the secret is read here, at the last moment,
/// and only the signer holds it.
fn primary(ctx: &Ctx) -> Result<Primary, String> {
    let d = &ctx.topology.dns;
    let text = d
        .primary
        .as_deref()
        .ok_or("dns.mode rfc2136 needs dns.primary: the server that accepts updates")?;
    let addr = parse_server_addr(text, 53).map_err(|e| format!("dns.primary: {e}"))?;
    let tsig = d
        .tsig
        .as_ref()
        .ok_or("dns.mode rfc2136 needs dns.tsig: updates must be signed")?;
    let key = crate::secret::load_tsig(tsig).map_err(|e| format!("load the TSIG key: {e}"))?;
    let signer = Signer::new(&key).map_err(|e| e.to_string())?;
    Ok(Primary::new(addr, dns::timeout(&ctx.topology), signer))
}

/// How the change will be made, for summaries.
fn by_whom(ctx: &Ctx) -> String {
    match ctx.topology.dns.mode {
        DnsMode::Rfc2136 => format!(
            "in one compare-and-swap update (RFC 2136, TSIG) on {}",
            ctx.topology.dns.primary.as_deref().unwrap_or("the primary")
        ),
        DnsMode::Manual => {
            "by you (dns.mode: manual; edgefail prints the change and verifies it)".into()
        }
    }
}

/// Manual mode: show the change, and wait for the operator to say it is made.
async fn manual(ctx: &Ctx, id: StepId, update: &Update, plain: &str) -> Result<Applied, Failure> {
    let server = ctx
        .topology
        .dns
        .primary
        .as_deref()
        .and_then(|p| parse_server_addr(p, 53).ok());
    let text = update.to_nsupdate(server);
    {
        let mut err = std::io::stderr().lock();
        let _ = writeln!(
            err,
            "\n{id}: dns.mode is manual: make this change in zone {} yourself: {plain}",
            short(&ctx.topology.dns.zone)
        );
        let _ = writeln!(
            err,
            "As nsupdate input (the prerequisites make it a compare-and-swap):"
        );
        for line in text.lines() {
            let _ = writeln!(err, "    {line}");
        }
        let _ = err.flush();
    }
    if !std::io::stdin().is_terminal() {
        return Err(Failure::new(format!(
            "dns.mode is manual and there is no terminal to confirm on (--yes does not confirm a manual DNS change): make the change printed above ({plain}) by hand, then run edgefail again and {id} will find it done"
        )));
    }
    let answer = tokio::task::spawn_blocking(|| {
        crate::ask::ask(
            "Type 'done' once the change is made (anything else stops here): ",
            "done",
        )
    })
    .await;
    match answer {
        Ok(true) => Ok(Applied {
            summary: format!(
                "you confirmed the change was made ({plain}); verify reads it back from every server"
            ),
            details: text.lines().map(str::to_string).collect(),
        }),
        _ => Err(Failure::new(format!(
            "the manual DNS change ({plain}) was not confirmed; stopped here"
        ))),
    }
}

/// Send the update (or have the operator make it). `changed_since` turns a
/// failed prerequisite into "changed since the check" with what is there now.
async fn apply_update<F, Fut>(
    ctx: &Ctx,
    id: StepId,
    update: Option<&Update>,
    plain: &str,
    changed_since: F,
) -> Result<Applied, Failure>
where
    F: FnOnce(SocketAddr) -> Fut,
    Fut: std::future::Future<Output = String>,
{
    let Some(update) = update else {
        return Ok(Applied {
            summary: "the primary already has the change; nothing sent, verify waits for the other servers".into(),
            details: Vec::new(),
        });
    };
    if ctx.topology.dns.mode == DnsMode::Manual {
        return manual(ctx, id, update, plain).await;
    }
    let primary = primary(ctx).map_err(|e| Failure::new(format!("cannot update the zone: {e}")))?;
    match primary.update(update).await {
        Ok(()) => Ok(Applied {
            summary: format!("{} accepted the update: {plain}", primary.addr),
            details: update
                .to_nsupdate(Some(primary.addr))
                .lines()
                .map(str::to_string)
                .collect(),
        }),
        Err(DnsError::Prerequisite { server, .. }) => {
            Err(Failure::new(changed_since(server).await))
        }
        Err(e) => Err(Failure::new(e.to_string())),
    }
}

/// Says what an rrset holds, for verify's lines.
type Describe<T> = Arc<dyn Fn(&Rrset<T>) -> String + Send + Sync>;

/// Poll every server until each has `desired` (as `pick` reads it) at a
/// serial at least the newest among the servers that have it; report how
/// long each took, and when caches will have dropped the old records.
async fn verify_rrset<T>(
    ctx: &Ctx,
    memo: &Memo<T>,
    what: String,
    pick: fn(&Snapshot) -> &Rrset<T>,
    describe: Describe<T>,
) -> Verified
where
    T: Ord + Clone + Send + Sync + 'static,
{
    let names = match names(ctx) {
        Ok(n) => n,
        Err(e) => return not_verified(e),
    };
    let servers = match dns::servers(&ctx.topology) {
        Ok(s) => s,
        Err(e) => return not_verified(format!("failed to {e}")),
    };
    let timeout = dns::timeout(&ctx.topology);
    let desired = Arc::new(memo.desired.clone());
    let started = Instant::now();
    let caught_up: Arc<Mutex<HashMap<SocketAddr, Duration>>> = Arc::default();
    let last_reads: Arc<Mutex<Vec<String>>> = Arc::default();
    let verified = super::poll(ctx, || {
        let (servers, names, desired, caught_up, describe, what, last_reads) = (
            servers.clone(),
            names.clone(),
            desired.clone(),
            caught_up.clone(),
            describe.clone(),
            what.clone(),
            last_reads.clone(),
        );
        async move {
            let reads = read_all(&servers, &names, timeout).await;
            let matches = |s: &Snapshot| pick(s).records == *desired;
            let reference = reads
                .iter()
                .filter_map(|(_, r)| r.as_ref().ok())
                .filter(|s| matches(s))
                .map(|s| s.serial)
                .reduce(|a, b| if dns::serial_at_least(a, b) { a } else { b });
            let mut waiting = Vec::new();
            let mut lines = Vec::new();
            let mut times = caught_up.lock().unwrap_or_else(|p| p.into_inner());
            for (role, r) in &reads {
                match r {
                    Ok(s)
                        if matches(s)
                            && reference
                                .is_some_and(|want| dns::serial_at_least(s.serial, want)) =>
                    {
                        let took = *times.entry(role.addr).or_insert_with(|| started.elapsed());
                        lines.push(format!(
                            "{}: serial {}, {what} {}: caught up after {:.1}s",
                            role.label(),
                            s.serial,
                            describe(pick(s)),
                            took.as_secs_f64()
                        ));
                    }
                    Ok(s) => {
                        let why = if matches(s) {
                            format!(
                                "serial {} is behind {}",
                                s.serial,
                                reference.unwrap_or_default()
                            )
                        } else {
                            format!("serial {}, still {}", s.serial, describe(pick(s)))
                        };
                        waiting.push(format!("{} ({why})", role.addr));
                        lines.push(format!("{}: {why}", role.label()));
                    }
                    Err(e) => {
                        waiting.push(format!("{} (unreadable)", role.addr));
                        lines.push(format!("{}: failed to {e}", role.label()));
                    }
                }
            }
            drop(times);
            *last_reads.lock().unwrap_or_else(|p| p.into_inner()) = lines.clone();
            if waiting.is_empty() {
                Observation {
                    holds: true,
                    summary: format!(
                        "{what} is {} on all {} server(s) at serial {}",
                        describe(&Rrset::new(desired.to_vec(), None)),
                        reads.len(),
                        reference.unwrap_or_default()
                    ),
                    details: lines,
                }
            } else {
                Observation {
                    holds: false,
                    summary: format!("waiting for {}", waiting.join(", ")),
                    details: lines,
                }
            }
        }
    })
    .await;
    if !verified.holds {
        return verified;
    }
    let slowest = caught_up
        .lock()
        .map(|t| t.values().max().copied())
        .unwrap_or_default()
        .unwrap_or_default();
    let mut details = verified.details;
    let drained = match memo.old_ttl {
        Some(ttl) => {
            let at = SystemTime::now() + Duration::from_secs(u64::from(ttl));
            let when = humantime::format_rfc3339_seconds(at);
            details.push(format!(
                "the old records had TTL {ttl}s: a resolver or partner that read them before the last server caught up may serve them until {when} (UTC); some caches stretch TTLs"
            ));
            format!("; old records (TTL {ttl}s) gone from every cache by {when}")
        }
        None => String::new(),
    };
    Verified {
        holds: true,
        summary: format!(
            "{}; slowest server caught up after {:.1}s{drained}",
            verified.summary,
            slowest.as_secs_f64()
        ),
        details,
    }
}

fn not_verified(summary: String) -> Verified {
    Verified {
        holds: false,
        summary,
        details: Vec::new(),
    }
}

#[async_trait]
impl Step for DnsA {
    fn id(&self) -> StepId {
        StepId::DnsA
    }

    async fn check(&self, ctx: &Ctx, _prior: Prior<'_>) -> Check {
        let x = &ctx.topology.xmpp;
        let a = short(&x.a_record);
        let to = ctx.to().pool;
        let Some(ip) = to.published_ipv4() else {
            return Check::blocked(format!(
                "{} has no usable external_ipv4 for its route server {}: set it in the topology",
                to.name,
                to.route_server()
            ));
        };
        let survey = match Survey::take(ctx).await {
            Ok(s) => s,
            Err(e) => return Check::cannot_tell(e),
        };
        let part = |s: &Snapshot| format!("{a} A {}", describe_a(ctx, &s.a));
        let mut details = survey.lines(part);
        let disagree = survey.disagreement(part);
        details.extend(disagree.clone());
        let (base_role, base) = survey.basis();
        if let Some(cname) = &base.a_cname {
            return Check::blocked(format!(
                "{a} is a CNAME to {cname} on {}: edgefail replaces A records only; point xmpp.a_record at the name that holds the address",
                base_role.addr
            ))
            .with_details(details);
        }
        let desired = Rrset::new(vec![ip], Some(x.ttl));
        let old_ttl = survey.max_ttl(|s| &s.a);
        let n = survey.reads.len();
        let note = disagree.map(|d| format!("; {d}")).unwrap_or_default();
        if base.a == desired {
            let lagging = survey.lagging(|s| &s.a);
            if lagging.is_empty() {
                return Check::done(format!(
                    "{a} A is already {} on all {n} server(s) (serial {})",
                    describe_a(ctx, &desired),
                    base.serial
                ))
                .with_details(details);
            }
            let changes = lagging
                .iter()
                .filter_map(|r| survey.reads.iter().find(|(s, _)| s.addr == r.addr))
                .map(|(r, s)| Change {
                    what: format!("{a} A on {}", r.addr),
                    old: format!("{} (serial {})", describe_a(ctx, &s.a), s.serial),
                    new: format!("{} (serial {})", describe_a(ctx, &desired), base.serial),
                })
                .collect();
            return Check::change(
                format!(
                    "{} already has {a} A {}; waiting for the other servers to catch up{note}",
                    base_role.addr,
                    describe_a(ctx, &desired)
                ),
                changes,
            )
            .with_details(details)
            .with_memo(Memo {
                expected: base.a.clone(),
                desired: desired.records,
                update: None,
                old_ttl,
            });
        }
        let mut update = Update::new(&survey.names.zone);
        update
            .require_a(&survey.names.a, &base.a.records)
            .delete_rrset(&survey.names.a, hickory_proto::rr::RecordType::A)
            .add(&survey.names.a, x.ttl, Data::A(ip));
        let change = Change {
            what: format!("{a} A"),
            old: describe_a(ctx, &base.a),
            new: describe_a(ctx, &desired),
        };
        Check::change(
            format!(
                "{a} A would point at {} instead of {}, {}{note}",
                describe_ip(ctx, &ip),
                describe_a(ctx, &base.a),
                by_whom(ctx)
            ),
            vec![change],
        )
        .with_details(details)
        .with_memo(Memo {
            expected: base.a.clone(),
            desired: desired.records,
            update: Some(update),
            old_ttl,
        })
    }

    async fn apply(&self, ctx: &Ctx, check: &Check) -> Result<Applied, Failure> {
        let memo: &Memo<Ipv4Addr> = check
            .memo()
            .ok_or_else(|| Failure::new("dns.a: apply has no check result to compare against"))?;
        let a = short(&ctx.topology.xmpp.a_record).to_string();
        let plain = format!(
            "{a} A {} -> {}",
            describe_a(ctx, &memo.expected),
            describe_a(
                ctx,
                &Rrset::new(memo.desired.clone(), Some(ctx.topology.xmpp.ttl))
            )
        );
        let expected = memo.expected.clone();
        apply_update(ctx, self.id(), memo.update.as_ref(), &plain, |server| async move {
            let found = match (names(ctx), dns::timeout(&ctx.topology)) {
                (Ok(n), t) => match Authority::new(server, t).read_a(&n.a).await {
                    Ok(now) => list_a(ctx, &now),
                    Err(e) => format!("something else (re-reading failed: failed to {e})"),
                },
                (Err(e), _) => format!("something else ({e})"),
            };
            format!(
                "{a} A changed since the check: expected {}, found {found}; nothing was changed: run edgefail again to plan from what is there now",
                list_a(ctx, &expected)
            )
        })
        .await
    }

    async fn verify(&self, ctx: &Ctx, check: &Check) -> Verified {
        let Some(memo) = check.memo::<Memo<Ipv4Addr>>() else {
            return not_verified("dns.a: verify has no check result to compare against".into());
        };
        let a = short(&ctx.topology.xmpp.a_record).to_string();
        let pools: Vec<(Ipv4Addr, String)> = ctx
            .topology
            .pools()
            .filter_map(|p| p.pool.published_ipv4().map(|ip| (ip, p.pool.name.clone())))
            .collect();
        let describe = Arc::new(move |r: &Rrset<Ipv4Addr>| {
            if r.is_empty() {
                return "no A record".to_string();
            }
            r.records
                .iter()
                .map(|ip| match pools.iter().find(|(p, _)| p == ip) {
                    Some((_, name)) => format!("{ip} ({name})"),
                    None => ip.to_string(),
                })
                .collect::<Vec<_>>()
                .join(", ")
        });
        verify_rrset(ctx, memo, format!("{a} A"), |s| &s.a, describe).await
    }
}

/// What step 5 will do to the SRV rrset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SrvPlan {
    pub desired: Vec<SrvRecord>,
    /// The target pool's record as it will be.
    pub mine: SrvRecord,
    /// Other records whose priority moves out of the way: (as now, new priority).
    pub demoted: Vec<(SrvRecord, u16)>,
}

/// Make `wanted.target` the preferred SRV target (RFC 2782: the LOWEST
/// priority number wins) without deleting anyone else's record.
///
/// The scheme, so that failover and failback are mirror images and each
/// pool keeps a distinct priority: our record keeps its current priority (or
/// takes the topology's when it is new) if that is already the lowest. If
/// not, the priorities are swapped: ours takes the lowest number in use and
/// the records that had it take ours (or, on a tie, the next number above
/// that no other record uses).
pub(crate) fn plan_srv(current: &[SrvRecord], wanted: &SrvRecord) -> Result<SrvPlan, String> {
    let (mine, others): (Vec<SrvRecord>, Vec<SrvRecord>) = current
        .iter()
        .cloned()
        .partition(|r| r.targets(&wanted.target));
    let p = mine
        .iter()
        .map(|r| r.priority)
        .min()
        .unwrap_or(wanted.priority);
    let mut new_mine = SrvRecord {
        priority: p,
        ..wanted.clone()
    };
    let mut others_after = others.clone();
    let mut demoted = Vec::new();
    if let Some(q) = others.iter().map(|r| r.priority).min()
        && q <= p
    {
        new_mine.priority = q;
        let used: BTreeSet<u16> = others
            .iter()
            .filter(|r| r.priority != q)
            .map(|r| r.priority)
            .collect();
        let floor = if p > q { Some(p) } else { q.checked_add(1) };
        let to = floor
            .and_then(|f| (f..=u16::MAX).find(|n| !used.contains(n)))
            .ok_or_else(|| {
                format!("no free SRV priority above {q} to move the other records to")
            })?;
        for r in others_after.iter_mut().filter(|r| r.priority == q) {
            demoted.push((r.clone(), to));
            r.priority = to;
        }
    }
    let mut desired = others_after;
    desired.push(new_mine.clone());
    desired.sort();
    desired.dedup();
    Ok(SrvPlan {
        desired,
        mine: new_mine,
        demoted,
    })
}

#[async_trait]
impl Step for DnsSrv {
    fn id(&self) -> StepId {
        StepId::DnsSrv
    }

    async fn check(&self, ctx: &Ctx, _prior: Prior<'_>) -> Check {
        let x = &ctx.topology.xmpp;
        let owner = x.srv_owner();
        let to = ctx.to().pool;
        let target = match dns::fqdn(to.srv_target(x)) {
            Ok(t) => t,
            Err(e) => return Check::blocked(format!("failed to {e}")),
        };
        let survey = match Survey::take(ctx).await {
            Ok(s) => s,
            Err(e) => return Check::cannot_tell(e),
        };
        let part = |s: &Snapshot| format!("{owner} SRV {}", describe_srv(ctx, &s.srv));
        let mut details = survey.lines(part);
        let disagree = survey.disagreement(part);
        details.extend(disagree.clone());
        details.push("a lower SRV priority number is preferred (RFC 2782; Microsoft calls it the highest priority)".into());
        let note = disagree.map(|d| format!("; {d}")).unwrap_or_default();
        let (base_role, base) = survey.basis();
        let wanted = SrvRecord {
            priority: to.srv_priority,
            weight: to.srv_weight,
            port: x.port,
            target: target.clone(),
        };
        let plan = match plan_srv(&base.srv.records, &wanted) {
            Ok(p) => p,
            Err(e) => return Check::blocked(e).with_details(details),
        };
        let old_ttl = survey.max_ttl(|s| &s.srv);
        let n = survey.reads.len();
        let preferred = format!(
            "{}'s record {} is preferred (priority {}: a lower number is preferred)",
            to.name, plan.mine, plan.mine.priority
        );
        if plan.desired == base.srv.records {
            let lagging = survey.lagging(|s| &s.srv);
            if lagging.is_empty() {
                return Check::done(format!(
                    "{owner} SRV already prefers {}: {preferred}, on all {n} server(s) (serial {})",
                    to.name, base.serial
                ))
                .with_details(details);
            }
            let changes = lagging
                .iter()
                .filter_map(|r| survey.reads.iter().find(|(s, _)| s.addr == r.addr))
                .map(|(r, s)| Change {
                    what: format!("{owner} SRV on {}", r.addr),
                    old: format!("{} (serial {})", describe_srv(ctx, &s.srv), s.serial),
                    new: format!("{} (serial {})", describe_srv(ctx, &base.srv), base.serial),
                })
                .collect();
            return Check::change(
                format!(
                    "{} already has it ({preferred}); waiting for the other servers to catch up{note}",
                    base_role.addr
                ),
                changes,
            )
            .with_details(details)
            .with_memo(Memo {
                expected: base.srv.clone(),
                desired: plan.desired,
                update: None,
                old_ttl,
            });
        }

        let current = &base.srv.records;
        let removed: Vec<&SrvRecord> = current
            .iter()
            .filter(|r| !plan.desired.contains(r))
            .collect();
        let added: Vec<&SrvRecord> = plan
            .desired
            .iter()
            .filter(|r| !current.contains(r))
            .collect();
        let mut update = Update::new(&survey.names.zone);
        update.require_srv(&survey.names.srv, current);
        for r in &removed {
            update.delete(&survey.names.srv, Data::Srv((*r).clone()));
        }
        for r in &added {
            update.add(&survey.names.srv, x.ttl, Data::Srv((*r).clone()));
        }

        // One change line per target, old -> new.
        let mut by_target: BTreeMap<String, (Vec<String>, Vec<String>, Option<&str>)> =
            BTreeMap::new();
        for r in &removed {
            let e = by_target.entry(show(&r.target)).or_default();
            e.0.push(r.to_string());
            e.2 = srv_pool(ctx, &r.target);
        }
        for r in &added {
            let e = by_target.entry(show(&r.target)).or_default();
            e.1.push(r.to_string());
            e.2 = srv_pool(ctx, &r.target);
        }
        let changes = by_target
            .into_iter()
            .map(|(t, (old, new, pool))| Change {
                what: match pool {
                    Some(p) => format!("{owner} SRV -> {} ({p})", short(&t)),
                    None => format!("{owner} SRV -> {}", short(&t)),
                },
                old: if old.is_empty() {
                    "no record".into()
                } else {
                    old.join(", ")
                },
                new: if new.is_empty() {
                    "no record".into()
                } else {
                    format!("{} [TTL {}]", new.join(", "), x.ttl)
                },
            })
            .collect();
        let swap = if plan.demoted.is_empty() {
            String::new()
        } else {
            let moved: Vec<String> = plan
                .demoted
                .iter()
                .map(|(r, to)| {
                    let who = srv_pool(ctx, &r.target)
                        .map(|p| format!("{p}'s record"))
                        .unwrap_or_else(|| format!("the record for {}", short(&show(&r.target))));
                    format!("{who} moves from priority {} to {to}", r.priority)
                })
                .collect();
            format!(
                "; priorities swapped so each pool keeps its own number and no record is deleted: {}",
                moved.join(", ")
            )
        };
        Check::change(
            format!(
                "{owner} SRV would prefer {}: {preferred}{swap}; {}{note}",
                to.name,
                by_whom(ctx)
            ),
            changes,
        )
        .with_details(details)
        .with_memo(Memo {
            expected: base.srv.clone(),
            desired: plan.desired,
            update: Some(update),
            old_ttl,
        })
    }

    async fn apply(&self, ctx: &Ctx, check: &Check) -> Result<Applied, Failure> {
        let memo: &Memo<SrvRecord> = check
            .memo()
            .ok_or_else(|| Failure::new("dns.srv: apply has no check result to compare against"))?;
        let owner = ctx.topology.xmpp.srv_owner();
        let plain = format!(
            "{owner} SRV {} -> {} (a lower priority number is preferred)",
            describe_srv(ctx, &memo.expected),
            describe_srv(ctx, &Rrset::new(memo.desired.clone(), None))
        );
        let expected = memo.expected.clone();
        apply_update(ctx, self.id(), memo.update.as_ref(), &plain, |server| async move {
            let found = match (names(ctx), dns::timeout(&ctx.topology)) {
                (Ok(n), t) => match Authority::new(server, t).read_srv(&n.srv).await {
                    Ok(now) => list_srv(ctx, &now),
                    Err(e) => format!("something else (re-reading failed: failed to {e})"),
                },
                (Err(e), _) => format!("something else ({e})"),
            };
            format!(
                "{owner} SRV changed since the check: expected {}, found {found}; nothing was changed: run edgefail again to plan from what is there now",
                list_srv(ctx, &expected)
            )
        })
        .await
    }

    async fn verify(&self, ctx: &Ctx, check: &Check) -> Verified {
        let Some(memo) = check.memo::<Memo<SrvRecord>>() else {
            return not_verified("dns.srv: verify has no check result to compare against".into());
        };
        let owner = ctx.topology.xmpp.srv_owner();
        let describe = Arc::new(|r: &Rrset<SrvRecord>| {
            if r.is_empty() {
                return "no SRV record".to_string();
            }
            r.records
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        });
        verify_rrset(ctx, memo, format!("{owner} SRV"), |s| &s.srv, describe).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(priority: u16, target: &str) -> SrvRecord {
        SrvRecord {
            priority,
            weight: 0,
            port: 5269,
            target: dns::fqdn(target).unwrap(),
        }
    }

    #[test]
    fn failover_swaps_priorities() {
        let now = vec![rec(10, "p1.contoso.com"), rec(20, "p2.contoso.com")];
        let plan = plan_srv(&now, &rec(20, "p2.contoso.com")).unwrap();
        assert_eq!(plan.mine.priority, 10);
        assert_eq!(
            plan.desired,
            vec![rec(10, "p2.contoso.com"), rec(20, "p1.contoso.com")]
        );
        // Failback is the mirror image.
        let back = plan_srv(&plan.desired, &rec(10, "p1.contoso.com")).unwrap();
        assert_eq!(back.desired, now);
    }

    #[test]
    fn adds_a_missing_record_with_the_swap() {
        let now = vec![rec(10, "p1.contoso.com")];
        let plan = plan_srv(&now, &rec(20, "p2.contoso.com")).unwrap();
        assert_eq!(
            plan.desired,
            vec![rec(10, "p2.contoso.com"), rec(20, "p1.contoso.com")]
        );
    }

    #[test]
    fn leaves_a_preferred_record_alone() {
        let now = vec![rec(5, "P2.contoso.com."), rec(10, "p1.contoso.com")];
        let plan = plan_srv(&now, &rec(20, "p2.contoso.com")).unwrap();
        assert_eq!(plan.desired, now);
        assert!(plan.demoted.is_empty());
        let empty = plan_srv(&[], &rec(20, "p2.contoso.com")).unwrap();
        assert_eq!(empty.desired, vec![rec(20, "p2.contoso.com")]);
    }

    #[test]
    fn a_tie_moves_the_other_record_to_a_free_number() {
        let now = vec![rec(10, "p1.contoso.com"), rec(11, "p3.contoso.com")];
        let plan = plan_srv(&now, &rec(10, "p2.contoso.com")).unwrap();
        assert_eq!(
            plan.desired,
            vec![
                rec(10, "p2.contoso.com"),
                rec(11, "p3.contoso.com"),
                rec(12, "p1.contoso.com")
            ]
        );
        let full = vec![rec(u16::MAX, "p1.contoso.com")];
        assert!(plan_srv(&full, &rec(u16::MAX, "p2.contoso.com")).is_err());
    }
}
