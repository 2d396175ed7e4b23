//! Steps 4 and 5: the XMPP federation A record and the `_xmpp-server._tcp`
//! SRV records on the external DNS, as one record-set step with two kinds.
//! Check reads every authoritative server (and the primary) and works out
//! the records the rrset must hold; apply changes the primary in one
//! compare-and-swap UPDATE whose prerequisite is the rrset the check read,
//! or has the operator do it (manual mode); verify polls every server until
//! it has the new records at the primary's serial.

use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use hickory_proto::rr::Name;

use super::srv_preference::plan_srv;
use super::{
    Applied, Change, Check, Ctx, Failure, Observation, Prior, Seen, Step, StepId, Verified,
};
use crate::dns::{
    self, Authority, Data, DnsError, Primary, Rrset, ServerRole, Signer, Snapshot, SrvRecord,
    Update, ZoneNames, show,
};
use crate::event::Event;
use crate::topology::{DnsMode, parse_server_addr};

/// Step 4: point the XMPP A record at the target pool.
pub struct DnsA;

/// Step 5: make the target pool's SRV record the preferred one.
pub struct DnsSrv;

/// What check read and decided, for apply and verify.
#[derive(Debug, Clone)]
pub struct RecordPlan<T> {
    /// The rrset on the primary (or the first server) at check time: the
    /// compare-and-swap's prerequisite.
    pub expected: Rrset<T>,
    /// The records every server must end up with.
    pub desired: Vec<T>,
    /// `None` when the primary already has `desired` and only the other
    /// servers lag behind.
    pub update: Option<Update>,
    /// The largest TTL of the old records on any server: how long caches
    /// may keep serving them.
    pub old_ttl: Option<u32>,
}

/// Every server's reading, in the order of [`dns::servers`].
pub struct Survey {
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
    let key = crate::secret::load_tsig(crate::secret::KeySource {
        name: &tsig.name,
        algorithm: &tsig.algorithm,
        file: tsig.secret_file.as_deref(),
        env: tsig.secret_env.as_deref(),
    })
    .map_err(|e| format!("load the TSIG key: {e}"))?;
    let signer = Signer::new(&key).map_err(|e| e.to_string())?;
    Ok(Primary::new(addr, dns::timeout(&ctx.topology), signer))
}

/// Before a plan promises an update: load the key and have the primary
/// judge it with an update that changes nothing. A key the server would
/// refuse blocks the run before any step changes anything.
async fn prove_key<P>(ctx: &Ctx, update: &Update) -> Option<super::Check<P>> {
    if ctx.topology.dns.mode != DnsMode::Rfc2136 {
        return None;
    }
    let primary = match primary(ctx) {
        Ok(p) => p,
        Err(e) => {
            return Some(super::Check::blocked(format!(
                "cannot update the zone: {e}"
            )));
        }
    };
    match dns::prove_key(&primary, update).await {
        Ok(()) => None,
        Err(DnsError::Prerequisite { .. }) => Some(super::Check::cannot_tell(format!(
            "{} changed while edgefail read it (the key test's prerequisite failed); run again",
            show(update.zone())
        ))),
        Err(
            e @ (DnsError::Tsig { .. }
            | DnsError::Answer { .. }
            | DnsError::Sign { .. }
            | DnsError::Unsigned { .. }
            | DnsError::BadAnswerSignature { .. }),
        ) => Some(super::Check::blocked(format!(
            "the key was tried with an update that changes nothing: {e}"
        ))),
        Err(e) => Some(super::Check::cannot_tell(format!(
            "cannot try the key on the primary: {e}"
        ))),
    }
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

/// What the basis server lacks, as a kind works it out.
pub struct Desire<T> {
    /// The records every server must end up with.
    records: Vec<T>,
    /// The update, its change lines and summary, when the basis server does
    /// not hold `records` yet.
    update: Option<(Update, Vec<Change>, String)>,
    /// Summary when every server already holds `records`.
    done: String,
    /// Summary when the basis server holds them and others lag behind.
    lagging: String,
}

/// One kind of record set: what differs between the A and the SRV step.
#[async_trait]
pub trait Records: Send + Sync + 'static {
    type Record: Ord + Clone + Send + Sync + std::fmt::Debug + 'static;
    const ID: StepId;
    fn title(ctx: &Ctx) -> String;
    /// What the rrset is called in messages ("xmpp.contoso.com A").
    fn what(ctx: &Ctx) -> String;
    fn pick(s: &Snapshot) -> &Rrset<Self::Record>;
    /// The records with their pools, no TTL.
    fn list(ctx: &Ctx, r: &Rrset<Self::Record>) -> String;
    /// The records with their pools and TTL.
    fn describe(ctx: &Ctx, r: &Rrset<Self::Record>) -> String {
        match r.ttl {
            Some(ttl) => format!("{} [TTL {ttl}]", Self::list(ctx, r)),
            None => Self::list(ctx, r),
        }
    }
    /// The records as verify reports them.
    fn shown(ctx: &Ctx, r: &Rrset<Self::Record>) -> String {
        Self::list(ctx, r)
    }
    /// Lines added to every reading's details.
    fn notes() -> Vec<String> {
        Vec::new()
    }
    /// Anything that rules the step out before DNS is read.
    fn precheck(ctx: &Ctx) -> Result<(), String>;
    /// Work out the records from what the basis server holds; Err blocks.
    fn desire(
        ctx: &Ctx,
        survey: &Survey,
        base_role: &ServerRole,
        base: &Snapshot,
    ) -> Result<Desire<Self::Record>, String>;
    /// The change in one line, for apply's summary and manual mode.
    fn plain(ctx: &Ctx, plan: &RecordPlan<Self::Record>) -> String;
    /// Read the rrset again from one server (after a refused swap).
    async fn reread(auth: &Authority, names: &ZoneNames) -> Result<Rrset<Self::Record>, DnsError>;
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

#[async_trait]
impl Records for DnsA {
    type Record = Ipv4Addr;
    const ID: StepId = StepId::DnsA;

    fn title(ctx: &Ctx) -> String {
        format!(
            "Point {} A at {}",
            ctx.topology.xmpp.a_record,
            ctx.to().pool.name
        )
    }

    fn what(ctx: &Ctx) -> String {
        format!("{} A", short(&ctx.topology.xmpp.a_record))
    }

    fn pick(s: &Snapshot) -> &Rrset<Ipv4Addr> {
        &s.a
    }

    fn list(ctx: &Ctx, a: &Rrset<Ipv4Addr>) -> String {
        if a.is_empty() {
            return "no A record".into();
        }
        let list: Vec<String> = a.records.iter().map(|ip| describe_ip(ctx, ip)).collect();
        list.join(", ")
    }

    fn precheck(ctx: &Ctx) -> Result<(), String> {
        let to = ctx.to().pool;
        match to.published_ipv4() {
            Some(_) => Ok(()),
            None => Err(format!(
                "{} has no usable external_ipv4 for its route server {}: set it in the topology",
                to.name,
                to.route_server()
            )),
        }
    }

    fn desire(
        ctx: &Ctx,
        survey: &Survey,
        base_role: &ServerRole,
        base: &Snapshot,
    ) -> Result<Desire<Ipv4Addr>, String> {
        let x = &ctx.topology.xmpp;
        let a = short(&x.a_record);
        let to = ctx.to().pool;
        let ip = to.published_ipv4().ok_or("no address")?;
        if let Some(cname) = &base.a_cname {
            return Err(format!(
                "{a} is a CNAME to {cname} on {}: edgefail replaces A records only; point xmpp.a_record at the name that holds the address",
                base_role.addr
            ));
        }
        let desired = Rrset::new(vec![ip], Some(x.ttl));
        let n = survey.reads.len();
        let mut desire = Desire {
            records: desired.records.clone(),
            update: None,
            done: format!(
                "{a} A is already {} on all {n} server(s) (serial {})",
                Self::describe(ctx, &desired),
                base.serial
            ),
            lagging: format!(
                "{} already has {a} A {}; waiting for the other servers to catch up",
                base_role.addr,
                Self::describe(ctx, &desired)
            ),
        };
        if base.a == desired {
            return Ok(desire);
        }
        let mut update = Update::new(&survey.names.zone);
        update
            .require_a(&survey.names.a, &base.a.records)
            .delete_rrset(&survey.names.a, hickory_proto::rr::RecordType::A)
            .add(&survey.names.a, x.ttl, Data::A(ip));
        let change = Change {
            what: format!("{a} A"),
            old: Self::describe(ctx, &base.a),
            new: Self::describe(ctx, &desired),
        };
        let summary = format!(
            "{a} A would point at {} instead of {}, {}",
            describe_ip(ctx, &ip),
            Self::describe(ctx, &base.a),
            by_whom(ctx)
        );
        desire.update = Some((update, vec![change], summary));
        Ok(desire)
    }

    fn plain(ctx: &Ctx, plan: &RecordPlan<Ipv4Addr>) -> String {
        format!(
            "{} {} -> {}",
            Self::what(ctx),
            Self::describe(ctx, &plan.expected),
            Self::describe(
                ctx,
                &Rrset::new(plan.desired.clone(), Some(ctx.topology.xmpp.ttl))
            )
        )
    }

    async fn reread(auth: &Authority, names: &ZoneNames) -> Result<Rrset<Ipv4Addr>, DnsError> {
        auth.read_a(&names.a).await
    }
}

/// The pool whose SRV target `target` is.
fn srv_pool<'a>(ctx: &'a Ctx, target: &Name) -> Option<&'a str> {
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

#[async_trait]
impl Records for DnsSrv {
    type Record = SrvRecord;
    const ID: StepId = StepId::DnsSrv;

    fn title(ctx: &Ctx) -> String {
        let x = &ctx.topology.xmpp;
        format!(
            "Make {} SRV (port {}) prefer {}",
            x.srv_owner(),
            x.port,
            ctx.to().pool.name
        )
    }

    fn what(ctx: &Ctx) -> String {
        format!("{} SRV", ctx.topology.xmpp.srv_owner())
    }

    fn pick(s: &Snapshot) -> &Rrset<SrvRecord> {
        &s.srv
    }

    fn list(ctx: &Ctx, srv: &Rrset<SrvRecord>) -> String {
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

    /// Verify names the records only, as they are served.
    fn shown(_ctx: &Ctx, srv: &Rrset<SrvRecord>) -> String {
        if srv.is_empty() {
            return "no SRV record".into();
        }
        let list: Vec<String> = srv.records.iter().map(|r| r.to_string()).collect();
        list.join(", ")
    }

    fn notes() -> Vec<String> {
        vec!["a lower SRV priority number is preferred (RFC 2782; Microsoft calls it the highest priority)".into()]
    }

    fn precheck(ctx: &Ctx) -> Result<(), String> {
        let x = &ctx.topology.xmpp;
        dns::fqdn(ctx.to().pool.srv_target(x))
            .map(drop)
            .map_err(|e| format!("failed to {e}"))
    }

    fn desire(
        ctx: &Ctx,
        survey: &Survey,
        base_role: &ServerRole,
        base: &Snapshot,
    ) -> Result<Desire<SrvRecord>, String> {
        let x = &ctx.topology.xmpp;
        let owner = x.srv_owner();
        let to = ctx.to().pool;
        let target = dns::fqdn(to.srv_target(x)).map_err(|e| format!("failed to {e}"))?;
        let wanted = SrvRecord {
            priority: to.srv_priority,
            weight: to.srv_weight,
            port: x.port,
            target,
        };
        let plan = plan_srv(&base.srv.records, &wanted)?;
        let n = survey.reads.len();
        let preferred = format!(
            "{}'s record {} is preferred (priority {}: a lower number is preferred)",
            to.name, plan.mine, plan.mine.priority
        );
        let mut desire = Desire {
            records: plan.desired.clone(),
            update: None,
            done: format!(
                "{owner} SRV already prefers {}: {preferred}, on all {n} server(s) (serial {})",
                to.name, base.serial
            ),
            lagging: format!(
                "{} already has it ({preferred}); waiting for the other servers to catch up",
                base_role.addr
            ),
        };
        if plan.desired == base.srv.records {
            return Ok(desire);
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
        // Per target: (records removed, records added, the pool it is).
        type ByTarget<'a> = BTreeMap<String, (Vec<String>, Vec<String>, Option<&'a str>)>;
        let mut by_target: ByTarget = BTreeMap::new();
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
        let summary = format!(
            "{owner} SRV would prefer {}: {preferred}{swap}; {}",
            to.name,
            by_whom(ctx)
        );
        desire.update = Some((update, changes, summary));
        Ok(desire)
    }

    fn plain(ctx: &Ctx, plan: &RecordPlan<SrvRecord>) -> String {
        format!(
            "{} {} -> {} (a lower priority number is preferred)",
            Self::what(ctx),
            Self::describe(ctx, &plan.expected),
            Self::describe(ctx, &Rrset::new(plan.desired.clone(), None))
        )
    }

    async fn reread(auth: &Authority, names: &ZoneNames) -> Result<Rrset<SrvRecord>, DnsError> {
        auth.read_srv(&names.srv).await
    }
}

#[async_trait]
impl<K: Records> Step for K {
    type Plan = RecordPlan<K::Record>;

    fn id(&self) -> StepId {
        K::ID
    }

    fn title(&self, ctx: &Ctx) -> String {
        K::title(ctx)
    }

    async fn check(&self, ctx: &Ctx, _prior: Prior<'_>) -> Check<Self::Plan> {
        if let Err(e) = K::precheck(ctx) {
            return Check::blocked(e);
        }
        let survey = match Survey::take(ctx).await {
            Ok(s) => s,
            Err(e) => return Check::cannot_tell(e),
        };
        let what = K::what(ctx);
        let part = |s: &Snapshot| format!("{what} {}", K::describe(ctx, K::pick(s)));
        let mut details = survey.lines(part);
        let disagree = survey.disagreement(part);
        details.extend(disagree.clone());
        details.extend(K::notes());
        let note = disagree.map(|d| format!("; {d}")).unwrap_or_default();
        let (base_role, base) = survey.basis();
        let desire = match K::desire(ctx, &survey, base_role, base) {
            Ok(d) => d,
            Err(e) => return Check::blocked(e).with_details(details),
        };
        let old_ttl = survey.max_ttl(K::pick);
        let expected = K::pick(base).clone();
        // The rrset the compare-and-swap will require, and the TTL caches
        // may hold the old records for: what the operator confirms.
        let mut seen = vec![Seen {
            what: format!("{what} on {}", base_role.label()),
            value: K::describe(ctx, &expected),
        }];
        if let Some(ttl) = old_ttl {
            seen.push(Seen {
                what: crate::event::OLD_TTL.into(),
                value: ttl.to_string(),
            });
        }
        let Some((update, changes, summary)) = desire.update else {
            let lagging = survey.lagging(K::pick);
            if lagging.is_empty() {
                return Check::done(desire.done)
                    .with_details(details)
                    .with_seen(seen);
            }
            let changes = lagging
                .iter()
                .filter_map(|r| survey.reads.iter().find(|(s, _)| s.addr == r.addr))
                .map(|(r, s)| Change {
                    what: format!("{what} on {}", r.addr),
                    old: format!("{} (serial {})", K::describe(ctx, K::pick(s)), s.serial),
                    new: format!(
                        "{} (serial {})",
                        K::describe(ctx, K::pick(base)),
                        base.serial
                    ),
                })
                .collect();
            let plan = RecordPlan {
                expected,
                desired: desire.records,
                update: None,
                old_ttl,
            };
            return Check::change(format!("{}{note}", desire.lagging), changes, plan)
                .with_details(details)
                .with_seen(seen);
        };
        if let Some(stop) = prove_key(ctx, &update).await {
            return stop.with_details(details);
        }
        let plan = RecordPlan {
            expected,
            desired: desire.records,
            update: Some(update),
            old_ttl,
        };
        Check::change(format!("{summary}{note}"), changes, plan)
            .with_details(details)
            .with_seen(seen)
    }

    async fn apply(&self, ctx: &Ctx, plan: &Self::Plan) -> Result<Applied, Failure> {
        let Some(update) = &plan.update else {
            return Ok(Applied {
                summary: "the primary already has the change; nothing sent, verify waits for the other servers".into(),
                details: Vec::new(),
            });
        };
        let plain = K::plain(ctx, plan);
        if ctx.topology.dns.mode == DnsMode::Manual {
            return manual(ctx, K::ID, update, &plain).await;
        }
        let primary =
            primary(ctx).map_err(|e| Failure::new(format!("cannot update the zone: {e}")))?;
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
                let found = match names(ctx) {
                    Ok(n) => {
                        match K::reread(&Authority::new(server, dns::timeout(&ctx.topology)), &n)
                            .await
                        {
                            Ok(now) => K::list(ctx, &now),
                            Err(e) => format!("something else (re-reading failed: failed to {e})"),
                        }
                    }
                    Err(e) => format!("something else ({e})"),
                };
                Err(Failure::new(format!(
                    "{} changed since the check: expected {}, found {found}; this update changed nothing (steps before it may have): `edgefail failover --resume` plans afresh from what is there now",
                    K::what(ctx),
                    K::list(ctx, &plan.expected)
                )))
            }
            Err(e) => Err(Failure::new(e.to_string())),
        }
    }

    async fn verify(&self, ctx: &Ctx, plan: &Self::Plan) -> Verified {
        verify_rrset::<K>(ctx, plan).await
    }
}

/// Manual mode: say what to change (an event the reporters show), and wait
/// for the operator to say it is made.
async fn manual(ctx: &Ctx, id: StepId, update: &Update, plain: &str) -> Result<Applied, Failure> {
    let server = ctx
        .topology
        .dns
        .primary
        .as_deref()
        .and_then(|p| parse_server_addr(p, 53).ok());
    let text = update.to_nsupdate(server);
    let instructions: Vec<String> = text.lines().map(str::to_string).collect();
    ctx.emit(Event::OperatorAction {
        step: id,
        message: format!(
            "dns.mode is manual: make this change in zone {} yourself: {plain}",
            short(&ctx.topology.dns.zone)
        ),
        instructions_title: "As nsupdate input (the prerequisites make it a compare-and-swap):"
            .into(),
        instructions: instructions.clone(),
    });
    if !ctx.operator.present() {
        return Err(Failure::new(format!(
            "dns.mode is manual and there is no terminal to confirm on (--yes does not confirm a manual DNS change): make the change printed above ({plain}) by hand, then run edgefail again and {id} will find it done"
        )));
    }
    if ctx
        .operator
        .ask(
            "Type 'done' once the change is made (anything else stops here): ",
            "done",
        )
        .await
    {
        Ok(Applied {
            summary: format!(
                "you confirmed the change was made ({plain}); verify reads it back from every server"
            ),
            details: instructions,
        })
    } else {
        Err(Failure::new(format!(
            "the manual DNS change ({plain}) was not confirmed; stopped here"
        )))
    }
}

/// Poll every server until each has the plan's records (as the kind picks
/// them) at a serial at least the newest among the servers that have them;
/// report how long each took, and when caches will have dropped the old
/// records.
async fn verify_rrset<K: Records>(ctx: &Ctx, plan: &RecordPlan<K::Record>) -> Verified {
    let names = match names(ctx) {
        Ok(n) => n,
        Err(e) => return not_verified(e),
    };
    let servers = match dns::servers(&ctx.topology) {
        Ok(s) => s,
        Err(e) => return not_verified(format!("failed to {e}")),
    };
    let timeout = dns::timeout(&ctx.topology);
    let what = K::what(ctx);
    let desired = &plan.desired;
    let started = Instant::now();
    let caught_up: Mutex<HashMap<SocketAddr, Duration>> = Mutex::default();
    let verified = super::poll(ctx, || async {
        let reads = read_all(&servers, &names, timeout).await;
        let matches = |s: &Snapshot| K::pick(s).records == *desired;
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
                        && reference.is_some_and(|want| dns::serial_at_least(s.serial, want)) =>
                {
                    let took = *times.entry(role.addr).or_insert_with(|| started.elapsed());
                    lines.push(format!(
                        "{}: serial {}, {what} {}: caught up after {:.1}s",
                        role.label(),
                        s.serial,
                        K::shown(ctx, K::pick(s)),
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
                        format!("serial {}, still {}", s.serial, K::shown(ctx, K::pick(s)))
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
        if waiting.is_empty() {
            Observation {
                holds: true,
                summary: format!(
                    "{what} is {} on all {} server(s) at serial {}",
                    K::shown(ctx, &Rrset::new(desired.to_vec(), None)),
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
    let drained = match plan.old_ttl {
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
