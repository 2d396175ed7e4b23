//! Step 3: point the target site's XMPP federation route at the target pool
//! (and, with `management.move_routes: all_sites`, every other site's route
//! that names another pool). Every site's route is read and listed, so a
//! failback cannot leave a site naming the pool used in between unsaid.
//!
//! The procedure page writes `-XmppExternalFederationRoute <Edge FQDN>`; the
//! cmdlet reference documents `-XmppFederationRoute EdgeServer:<FQDN>`.
//! edgefail asks the installed Set-CsSite which one it has (unless the
//! topology pins it), writes the matching value form, and reads it back.

use std::time::Duration;

use async_trait::async_trait;

use super::{
    Applied, Change, Check, Ctx, Failure, Observation, Prior, Seen, Step, StepId, Verified,
};
use crate::lync::{Machine, MachineError};
use crate::names::printable;
use crate::topology::{MoveRoutes, Pool, PoolRef, RouteParameter, Topology};

pub struct Route;

/// One site's route as read.
#[derive(Debug, Clone)]
pub struct SiteRoute {
    pub site: String,
    /// The route as Get-CsSite shows it (Ok(None): empty or absent), or why
    /// it could not be read.
    pub current: Result<Option<String>, String>,
    /// The pool whose Edge server the route names, if any in the topology.
    pub pool: Option<String>,
    /// Step 3 sets this site's route.
    pub moves: bool,
}

impl SiteRoute {
    pub fn current_text(&self) -> String {
        match &self.current {
            Ok(Some(r)) => printable(r),
            Ok(None) => "(not set)".into(),
            Err(e) => format!("cannot tell: {e}"),
        }
    }
}

/// Every site's route as read, and what step 3 should write.
#[derive(Debug, Clone)]
pub struct RouteState {
    pub parameter: RouteParameter,
    /// The value Set-CsSite should be given.
    pub desired: String,
    /// The target site's route as Get-CsSite shows it (None: empty or absent).
    pub current: Option<String>,
    /// The target site's route names a server of the target pool.
    pub holds: bool,
    /// Every site, in topology order (the target site included).
    pub sites: Vec<SiteRoute>,
}

/// Why the route could not be read: `blocked` when the management shell
/// answered and the answer rules the step out.
#[derive(Debug, Clone)]
pub struct RouteError {
    pub blocked: bool,
    pub message: String,
}

impl std::fmt::Display for RouteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// The parameter's name as Set-CsSite spells it.
pub fn name(p: RouteParameter) -> &'static str {
    match p {
        RouteParameter::XmppFederationRoute => "XmppFederationRoute",
        _ => "XmppExternalFederationRoute",
    }
}

/// "EdgeServer:edge2.contoso.com" and "edge2.contoso.com" both name a server.
fn server_of(route: &str) -> &str {
    match route.split_once(':') {
        Some((kind, fqdn)) if kind.eq_ignore_ascii_case("EdgeServer") => fqdn,
        _ => route,
    }
}

/// The pool (and its site) whose Edge server `route` names.
pub fn pool_named<'a>(t: &'a Topology, route: &str) -> Option<PoolRef<'a>> {
    let fqdn = server_of(route.trim());
    t.pools().find(|p| {
        p.pool
            .servers
            .iter()
            .any(|s| s.fqdn.eq_ignore_ascii_case(fqdn))
    })
}

fn names_pool(route: Option<&str>, pool: &Pool) -> bool {
    route.is_some_and(|c| {
        let fqdn = server_of(c);
        pool.servers
            .iter()
            .any(|s| s.fqdn.eq_ignore_ascii_case(fqdn))
    })
}

/// Which route parameter the installed Set-CsSite has (or the topology pins).
pub async fn detect_parameter(
    shell: &Machine,
    t: &Topology,
    timeout: Duration,
) -> Result<RouteParameter, RouteError> {
    let available = shell
        .route_parameters(timeout)
        .await
        .map_err(|e| RouteError {
            blocked: false,
            message: e.to_string(),
        })?;
    let has = |p: RouteParameter| available.iter().any(|a| a.eq_ignore_ascii_case(name(p)));
    let listed = |none: &str| {
        if available.is_empty() {
            none.to_string()
        } else {
            printable(&available.join(", "))
        }
    };
    match t.management.route_parameter {
        RouteParameter::Auto => {
            if has(RouteParameter::XmppExternalFederationRoute) {
                Ok(RouteParameter::XmppExternalFederationRoute)
            } else if has(RouteParameter::XmppFederationRoute) {
                Ok(RouteParameter::XmppFederationRoute)
            } else {
                Err(RouteError {
                    blocked: true,
                    message: format!(
                        "Set-CsSite on the management shell has no XMPP route parameter (its Xmpp* parameters: {}); is this a Lync Server 2013 / Skype for Business Server 2015 management shell?",
                        listed("none")
                    ),
                })
            }
        }
        p if has(p) => Ok(p),
        p => Err(RouteError {
            blocked: true,
            message: format!(
                "the topology pins route_parameter {}, but the installed Set-CsSite has only: {}",
                name(p),
                listed("no Xmpp* parameters")
            ),
        }),
    }
}

/// One site's route under `parameter` (None: empty or absent).
pub async fn read_site(
    shell: &Machine,
    site: &str,
    parameter: RouteParameter,
    timeout: Duration,
) -> Result<Option<String>, MachineError> {
    let props = shell.site(site, timeout).await?;
    Ok(route_of(&props, parameter))
}

/// Every site's route, in topology order, read with one script (a
/// thousand sites are one command, not a thousand).
pub async fn read_sites(
    shell: &Machine,
    t: &Topology,
    parameter: RouteParameter,
    timeout: Duration,
) -> Vec<(String, Result<Option<String>, String>)> {
    let names: Vec<&str> = t.sites.iter().map(|s| s.name.as_str()).collect();
    match shell.sites(&names, timeout).await {
        Ok(read) => names
            .iter()
            .zip(read)
            .map(|(name, r)| (name.to_string(), r.map(|props| route_of(&props, parameter))))
            .collect(),
        Err(e) => {
            let e = e.to_string();
            names
                .iter()
                .map(|name| (name.to_string(), Err(e.clone())))
                .collect()
        }
    }
}

/// The route under `parameter` in a site's properties (None: empty or
/// absent).
fn route_of(
    props: &serde_json::Map<String, serde_json::Value>,
    parameter: RouteParameter,
) -> Option<String> {
    props
        .get(name(parameter))
        .and_then(|v| v.as_str())
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

impl RouteState {
    pub fn current_text(&self) -> String {
        self.current
            .as_deref()
            .map(printable)
            .unwrap_or_else(|| "(not set)".into())
    }

    /// The sites step 3 sets, target site first.
    pub fn moving(&self) -> Vec<&SiteRoute> {
        self.sites.iter().filter(|s| s.moves).collect()
    }

    /// Sites whose route names another pool and that stay as they are
    /// (`management.move_routes: target_site`).
    pub fn left_elsewhere(&self, target: &Pool) -> Vec<&SiteRoute> {
        self.sites
            .iter()
            .filter(|s| !s.moves)
            .filter(|s| matches!(&s.current, Ok(Some(_))))
            .filter(|s| s.pool.as_deref() != Some(target.name.as_str()))
            .collect()
    }

    /// Read the parameter and every site's route; the target site's route
    /// (and with `all_sites`, every site's) must be readable.
    pub async fn read(ctx: &Ctx) -> Result<RouteState, RouteError> {
        let timeout = ctx.opts.command_timeout;
        let shell = &ctx.management;
        let t = &ctx.topology;
        let parameter = detect_parameter(shell, t, timeout).await?;
        let pool = ctx.target_pool();
        let target_site = &ctx.target_site().name;
        let server = pool.route_server().to_string();
        let desired = match parameter {
            RouteParameter::XmppFederationRoute => format!("EdgeServer:{server}"),
            _ => server,
        };
        let all = t.management.move_routes == MoveRoutes::AllSites;
        let mut sites = Vec::new();
        let mut current = None;
        let mut holds = false;
        for (site, read) in read_sites(shell, t, parameter, timeout).await {
            let is_target = &site == target_site;
            match &read {
                Err(e) if is_target => {
                    return Err(RouteError {
                        blocked: false,
                        message: e.clone(),
                    });
                }
                Err(e) if all => {
                    return Err(RouteError {
                        blocked: false,
                        message: format!(
                            "{e} (management.move_routes: all_sites moves every site's route, so each must be read)"
                        ),
                    });
                }
                Ok(c) if is_target => {
                    current = c.clone();
                    holds = names_pool(c.as_deref(), pool);
                }
                _ => {}
            }
            let set = matches!(&read, Ok(Some(_)));
            let on_target = matches!(&read, Ok(c) if names_pool(c.as_deref(), pool));
            let named = match &read {
                Ok(Some(c)) => pool_named(t, c).map(|p| p.pool.name.clone()),
                _ => None,
            };
            let moves = if is_target {
                !on_target
            } else {
                all && set && !on_target
            };
            sites.push(SiteRoute {
                site,
                current: read,
                pool: named,
                moves,
            });
        }
        // The target site first: it is the documented change.
        sites.sort_by_key(|s| &s.site != target_site);
        Ok(RouteState {
            parameter,
            desired,
            current,
            holds,
            sites,
        })
    }
}

/// "EdgeServer1.contoso.com (EdgePool1)".
fn route_and_pool(s: &SiteRoute) -> String {
    match &s.pool {
        Some(p) => format!("{} ({p})", s.current_text()),
        None if matches!(&s.current, Ok(Some(_))) => {
            format!("{} (no pool in the topology)", s.current_text())
        }
        None => s.current_text(),
    }
}

/// One line per site, for the details.
fn site_lines(state: &RouteState, target: &Pool) -> Vec<String> {
    state
        .sites
        .iter()
        .map(|s| {
            let what = if s.moves {
                format!("moves to {}", target.name)
            } else if s.pool.as_deref() == Some(target.name.as_str()) {
                format!("already names {}", target.name)
            } else if matches!(&s.current, Ok(Some(_))) {
                "still names another pool; left as is (management.move_routes: target_site)"
                    .to_string()
            } else {
                "left as is".to_string()
            };
            format!("{}'s route: {}: {what}", s.site, route_and_pool(s))
        })
        .collect()
}

/// Every site that step 3 does not set, grouped, for the summary, so that
/// plan and failover list every site's route without -v: those that still
/// name another pool (left as is), those already on the target pool, and
/// those with no route.
fn others_note(state: &RouteState, target: &Pool, target_site: &str) -> String {
    let rest: Vec<&SiteRoute> = state
        .sites
        .iter()
        .filter(|s| !s.moves && s.site != target_site)
        .collect();
    let list = |pick: &dyn Fn(&SiteRoute) -> bool, with_route: bool| -> Vec<String> {
        rest.iter()
            .filter(|s| pick(s))
            .map(|s| {
                if with_route {
                    format!("{} ({})", s.site, route_and_pool(s))
                } else {
                    s.site.clone()
                }
            })
            .collect()
    };
    let left: Vec<String> = state
        .left_elsewhere(target)
        .iter()
        .filter(|s| s.site != target_site)
        .map(|s| format!("{} ({})", s.site, route_and_pool(s)))
        .collect();
    let on_target = list(
        &|s: &SiteRoute| s.pool.as_deref() == Some(target.name.as_str()),
        false,
    );
    let unset = list(&|s: &SiteRoute| matches!(&s.current, Ok(None)), false);
    let unread = list(&|s: &SiteRoute| s.current.is_err(), true);
    let mut out = String::new();
    if !left.is_empty() {
        out.push_str(&format!(
            "; still naming another pool, left as is (management.move_routes: target_site, the documented procedure): {}",
            left.join(", ")
        ));
    }
    if !on_target.is_empty() {
        out.push_str(&format!(
            "; already naming {}: {}",
            target.name,
            on_target.join(", ")
        ));
    }
    if !unset.is_empty() {
        out.push_str(&format!("; no route set: {}", unset.join(", ")));
    }
    if !unread.is_empty() {
        out.push_str(&format!("; {}", unread.join(", ")));
    }
    out
}

#[async_trait]
impl Step for Route {
    type Plan = RouteState;

    fn id(&self) -> StepId {
        StepId::RouteSet
    }

    fn title(&self, ctx: &Ctx) -> String {
        let to = ctx.to();
        let whose = match ctx.topology.management.move_routes {
            MoveRoutes::AllSites => "every site's".to_string(),
            MoveRoutes::TargetSite => format!("{}'s", to.site.name),
        };
        format!(
            "Point {whose} XMPP federation route at {}",
            to.pool.route_server()
        )
    }

    async fn check(&self, ctx: &Ctx, _prior: Prior<'_>) -> Check<RouteState> {
        let site = &ctx.target_site().name;
        let pool = ctx.target_pool();
        let seen = |state: &RouteState| {
            state
                .sites
                .iter()
                .map(|s| Seen {
                    what: format!("{} {}", s.site, name(state.parameter)),
                    value: s.current_text(),
                })
                .collect::<Vec<_>>()
        };
        match RouteState::read(ctx).await {
            Err(e) if e.blocked => Check::blocked(e.message),
            Err(e) => Check::cannot_tell(e.message),
            Ok(state) => {
                let details = site_lines(&state, pool);
                let note = others_note(&state, pool, site);
                let moving = state.moving();
                if moving.is_empty() {
                    return Check::done(format!(
                        "{site}'s XMPP federation route is {} (a server of {}){note}",
                        state.current_text(),
                        pool.name,
                    ))
                    .with_details(details)
                    .with_seen(seen(&state));
                }
                let flag = name(state.parameter);
                let summary = match moving.as_slice() {
                    [one] => format!(
                        "would run Set-CsSite -Identity {} -{flag} {}",
                        one.site, state.desired
                    ),
                    many => format!(
                        "would run Set-CsSite -{flag} {} on {}",
                        state.desired,
                        many.iter()
                            .map(|s| s.site.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                };
                let changes = moving
                    .iter()
                    .map(|s| Change {
                        what: format!("{} {flag}", s.site),
                        old: route_and_pool(s),
                        new: state.desired.clone(),
                    })
                    .collect();
                let seen = seen(&state);
                Check::change(format!("{summary}{note}"), changes, state)
                    .with_details(details)
                    .with_seen(seen)
            }
        }
    }

    async fn apply(&self, ctx: &Ctx, state: &RouteState) -> Result<Applied, Failure> {
        let flag = name(state.parameter);
        let mut done = Vec::new();
        for s in state.moving() {
            if let Err(e) = ctx
                .management
                .set_route(
                    &s.site,
                    state.parameter,
                    &state.desired,
                    ctx.opts.command_timeout,
                )
                .await
            {
                let mut failure = Failure::new(e.to_string());
                if !done.is_empty() {
                    failure.summary = format!(
                        "{} (already set before it: {})",
                        failure.summary,
                        done.join(", ")
                    );
                }
                return Err(failure);
            }
            done.push(s.site.clone());
        }
        Ok(Applied {
            summary: match done.as_slice() {
                [one] => format!("Set-CsSite -Identity {one} -{flag} {}", state.desired),
                many => format!(
                    "Set-CsSite -{flag} {} on {}",
                    state.desired,
                    many.join(", ")
                ),
            },
            details: Vec::new(),
        })
    }

    async fn verify(&self, ctx: &Ctx, state: &RouteState) -> Verified {
        let timeout = ctx.opts.command_timeout;
        let pool = ctx.target_pool();
        let planned: Vec<&str> = state.moving().iter().map(|s| s.site.as_str()).collect();
        let route = super::poll(ctx, || async {
            let mut seen = Vec::new();
            let mut holds = true;
            for site in &planned {
                match read_site(&ctx.management, site, state.parameter, timeout).await {
                    Ok(r) => {
                        holds &= names_pool(r.as_deref(), pool);
                        seen.push(format!(
                            "Get-CsSite {site} shows route {}",
                            r.as_deref().map(printable).unwrap_or("(not set)".into())
                        ));
                    }
                    Err(e) => {
                        holds = false;
                        seen.push(e.to_string());
                    }
                }
            }
            Observation {
                holds,
                summary: seen.join("; "),
                details: Vec::new(),
            }
        })
        .await;
        if !route.holds {
            return route;
        }
        // The Edge servers act on the route once their CMS replica has it.
        let replication = super::poll(ctx, || async {
            match ctx.management.replication(timeout).await {
                Ok(None) => Observation {
                    holds: true,
                    summary: "Get-CsManagementStoreReplicationStatus is not available here; replication not checked".into(),
                    details: Vec::new(),
                },
                Ok(Some(replicas)) => {
                    let lagging: Vec<String> = replicas
                        .iter()
                        .filter(|r| !r.up_to_date)
                        .map(|r| printable(&r.fqdn))
                        .collect();
                    Observation {
                        holds: lagging.is_empty(),
                        summary: if lagging.is_empty() {
                            format!("all {} CMS replica(s) up to date", replicas.len())
                        } else {
                            format!("CMS replicas not yet up to date: {}", lagging.join(", "))
                        },
                        details: Vec::new(),
                    }
                }
                Err(e) => Observation {
                    holds: false,
                    summary: e.to_string(),
                    details: Vec::new(),
                },
            }
        })
        .await;
        Verified {
            holds: replication.holds,
            summary: format!("{}; {}", route.summary, replication.summary),
            details: replication.details,
        }
    }
}
