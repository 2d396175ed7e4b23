//! Step 3: point the target site's XMPP federation route at the target pool.
//!
//! The procedure page writes `-XmppExternalFederationRoute <Edge FQDN>`; the
//! cmdlet reference documents `-XmppFederationRoute EdgeServer:<FQDN>`.
//! edgefail asks the installed Set-CsSite which one it has (unless the
//! topology pins it), writes the matching value form, and reads it back.

use async_trait::async_trait;

use super::{
    Applied, Change, Check, Ctx, Failure, Observation, Prior, Seen, Step, StepId, Verified,
};
use crate::names::printable;
use crate::topology::RouteParameter;

pub struct Route;

/// The site's route as read, and what it should be.
#[derive(Debug, Clone)]
pub struct RouteState {
    pub parameter: RouteParameter,
    /// The value Set-CsSite should be given.
    pub desired: String,
    /// The route as Get-CsSite shows it (None: empty or absent).
    pub current: Option<String>,
    /// The current route names a server of the target pool.
    pub holds: bool,
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

fn name(p: RouteParameter) -> &'static str {
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

impl RouteState {
    pub fn current_text(&self) -> String {
        self.current
            .as_deref()
            .map(printable)
            .unwrap_or_else(|| "(not set)".into())
    }

    pub async fn read(ctx: &Ctx) -> Result<RouteState, RouteError> {
        let timeout = ctx.opts.command_timeout;
        let shell = &ctx.management;
        let cannot = |e: crate::lync::MachineError| RouteError {
            blocked: false,
            message: e.to_string(),
        };
        let available = shell.route_parameters(timeout).await.map_err(cannot)?;
        let has = |p: RouteParameter| available.iter().any(|a| a.eq_ignore_ascii_case(name(p)));
        let pinned = ctx.topology.management.route_parameter;
        let parameter = match pinned {
            RouteParameter::Auto => {
                if has(RouteParameter::XmppExternalFederationRoute) {
                    RouteParameter::XmppExternalFederationRoute
                } else if has(RouteParameter::XmppFederationRoute) {
                    RouteParameter::XmppFederationRoute
                } else {
                    return Err(RouteError {
                        blocked: true,
                        message: format!(
                            "Set-CsSite on the management shell has no XMPP route parameter (its Xmpp* parameters: {}); is this a Lync Server 2013 / Skype for Business Server 2015 management shell?",
                            if available.is_empty() {
                                "none".to_string()
                            } else {
                                printable(&available.join(", "))
                            }
                        ),
                    });
                }
            }
            p if has(p) => p,
            p => {
                return Err(RouteError {
                    blocked: true,
                    message: format!(
                        "the topology pins route_parameter {}, but the installed Set-CsSite has only: {}",
                        name(p),
                        if available.is_empty() {
                            "no Xmpp* parameters".to_string()
                        } else {
                            printable(&available.join(", "))
                        }
                    ),
                });
            }
        };
        let pool = ctx.target_pool();
        let server = pool.route_server().to_string();
        let desired = match parameter {
            RouteParameter::XmppFederationRoute => format!("EdgeServer:{server}"),
            _ => server,
        };
        let site = shell
            .site(&ctx.target_site().name, timeout)
            .await
            .map_err(cannot)?;
        let current = site
            .get(name(parameter))
            .and_then(|v| v.as_str())
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string);
        let holds = current.as_deref().is_some_and(|c| {
            let fqdn = server_of(c);
            pool.servers
                .iter()
                .any(|s| s.fqdn.eq_ignore_ascii_case(fqdn))
        });
        Ok(RouteState {
            parameter,
            desired,
            current,
            holds,
        })
    }
}

#[async_trait]
impl Step for Route {
    type Plan = RouteState;

    fn id(&self) -> StepId {
        StepId::RouteSet
    }

    fn title(&self, ctx: &Ctx) -> String {
        let to = ctx.to();
        format!(
            "Point {}'s XMPP federation route at {}",
            to.site.name,
            to.pool.route_server()
        )
    }

    async fn check(&self, ctx: &Ctx, _prior: Prior<'_>) -> Check<RouteState> {
        let site = &ctx.target_site().name;
        let seen = |state: &RouteState| {
            vec![Seen {
                what: format!("{site} {}", name(state.parameter)),
                value: state.current_text(),
            }]
        };
        match RouteState::read(ctx).await {
            Err(e) if e.blocked => Check::blocked(e.message),
            Err(e) => Check::cannot_tell(e.message),
            Ok(state) if state.holds => Check::done(format!(
                "{site}'s XMPP federation route is {} (a server of {})",
                state.current_text(),
                ctx.target_pool().name
            ))
            .with_seen(seen(&state)),
            Ok(state) => Check::change(
                format!(
                    "would run Set-CsSite -Identity {site} -{} {}",
                    name(state.parameter),
                    state.desired
                ),
                vec![Change {
                    what: format!("{site} {}", name(state.parameter)),
                    old: state.current_text(),
                    new: state.desired.clone(),
                }],
                state.clone(),
            )
            .with_seen(seen(&state)),
        }
    }

    async fn apply(&self, ctx: &Ctx, state: &RouteState) -> Result<Applied, Failure> {
        let site = &ctx.target_site().name;
        ctx.management
            .set_route(
                site,
                state.parameter,
                &state.desired,
                ctx.opts.command_timeout,
            )
            .await
            .map_err(|e| Failure::new(e.to_string()))?;
        Ok(Applied {
            summary: format!(
                "Set-CsSite -Identity {site} -{} {}",
                name(state.parameter),
                state.desired
            ),
            details: Vec::new(),
        })
    }

    async fn verify(&self, ctx: &Ctx, _state: &RouteState) -> Verified {
        let timeout = ctx.opts.command_timeout;
        let site = &ctx.target_site().name;
        let route = super::poll(ctx, || async {
            match RouteState::read(ctx).await {
                Ok(s) => Observation {
                    holds: s.holds,
                    summary: format!("Get-CsSite {site} shows route {}", s.current_text()),
                    details: Vec::new(),
                },
                Err(e) => Observation {
                    holds: false,
                    summary: e.message,
                    details: Vec::new(),
                },
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
