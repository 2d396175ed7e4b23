//! The steps that talk to Lync, over the simulated management shell and
//! Edge servers in this process (`sim`): the same scripts, the same parser
//! the stand-in uses, no process started. The protocol contracts (real
//! BIND, sshd, Prosody, the stand-in behind a real process) are the
//! integration tests' business.
#![cfg(test)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::services::Services;
use super::{CheckState, Ctx, Look, Step, StepId, deploy, fixture, route};
use crate::lync::Machine;
use crate::sim::machine::{self, Estate, Simulated};

/// A context whose machines are simulated over `estate`, which starts as
/// the estate before a failover from EdgePool1.
fn ctx() -> (Ctx, Estate) {
    let topology = fixture::topology();
    let state = crate::sim::before_estate(&topology, "EdgePool1", "fe1.contoso.com");
    let estate: Estate = Arc::new(Mutex::new(state));
    let sim = |host: &str| Simulated {
        host: host.to_string(),
        estate: estate.clone(),
        delay: Duration::ZERO,
    };
    let ctx = Ctx::with_machines(
        topology,
        "EdgePool1",
        "EdgePool2",
        fixture::opts(),
        Machine::with_transport("management shell", None, Box::new(sim("fe1.contoso.com"))),
        |s| Machine::with_transport(&s.fqdn, None, Box::new(sim(&s.fqdn))),
    )
    .expect("pools");
    (ctx, estate)
}

fn statuses(estate: &Estate, host: &str) -> Vec<String> {
    machine::lock(estate)
        .hosts
        .get(host)
        .map(|h| h.services.values().cloned().collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn services_stop_then_start_on_every_server_of_the_target_pool() {
    let (ctx, estate) = ctx();
    let stop = Services::stop();
    let check = stop.check(&ctx, &[]).await;
    assert_eq!(check.state, CheckState::WouldChange, "{}", check.summary);
    assert_eq!(check.changes.len(), 2, "{:?}", check.changes);
    let plan = check.plan.as_ref().expect("a plan");
    let applied = stop.apply(&ctx, plan).await.expect("stopped");
    assert_eq!(applied.summary, "stopped the services on 2 server(s)");
    let verified = stop.verify(&ctx, plan).await;
    assert!(verified.holds, "{verified:?}");
    for host in ["edge2a.contoso.com", "edge2b.contoso.com"] {
        assert!(statuses(&estate, host).iter().all(|s| s == "Stopped"));
    }
    // The failed pool's server is not touched.
    assert!(
        statuses(&estate, "edge1.contoso.com")
            .iter()
            .all(|s| s == "Running")
    );

    let start = Services::start();
    let check = start
        .check(&ctx, &[(StepId::ServicesStop, CheckState::Done)])
        .await;
    assert_eq!(check.state, CheckState::WouldChange, "{}", check.summary);
    let plan = check.plan.as_ref().expect("a plan");
    start.apply(&ctx, plan).await.expect("started");
    assert!(start.verify(&ctx, plan).await.holds);
    assert_eq!(
        start.check(&ctx, &[]).await.state,
        CheckState::Done,
        "started services are already done"
    );
}

#[tokio::test]
async fn the_route_is_set_with_the_parameter_the_cmdlet_has_and_read_back() {
    for (parameter, value) in [
        ("XmppExternalFederationRoute", "edge2a.contoso.com"),
        ("XmppFederationRoute", "EdgeServer:edge2a.contoso.com"),
    ] {
        let (ctx, estate) = ctx();
        machine::lock(&estate).set_cssite_parameter = parameter.into();
        let check = route::Route.check(&ctx, &[]).await;
        assert_eq!(check.state, CheckState::WouldChange, "{}", check.summary);
        assert!(
            check.summary.starts_with(&format!(
                "would run Set-CsSite -Identity Site2 -{parameter} {value}; still naming another pool, left as is"
            )),
            "{}",
            check.summary
        );
        assert!(check.summary.contains("Site1 ("), "{}", check.summary);
        let plan = check.plan.as_ref().expect("a plan");
        route::Route.apply(&ctx, plan).await.expect("set");
        assert_eq!(machine::lock(&estate).sites["Site2"].route, value);
        let verified = route::Route.verify(&ctx, plan).await;
        assert!(verified.holds, "{verified:?}");
        // Once the route is there, stopping the services buys nothing.
        let stop = Services::stop().check(&ctx, &[]).await;
        assert_eq!(stop.state, CheckState::Done, "{}", stop.summary);
        assert!(
            stop.summary
                .starts_with("the route already points at EdgePool2")
        );
    }
}

#[tokio::test]
async fn a_pool_the_cms_puts_elsewhere_blocks_the_run() {
    let (ctx, estate) = ctx();
    let check = deploy::PoolDeployed.check(&ctx, &[]).await;
    assert_eq!(check.state, CheckState::Done, "{}", check.summary);
    machine::lock(&estate)
        .pools
        .get_mut("edgepool2.contoso.com")
        .expect("pool")
        .site = "Site:Site1".into();
    let check = deploy::PoolDeployed.check(&ctx, &[]).await;
    assert_eq!(check.state, CheckState::Blocked);
    assert!(
        check.summary.contains(
            "the CMS puts edgepool2.contoso.com in site 'Site:Site1', the topology in 'Site2'"
        ),
        "{}",
        check.summary
    );
}

/// A simulated authoritative server holding the zone before the failover.
async fn zone_server(ctx: &mut Ctx) -> Arc<Mutex<crate::sim::dns::Zone>> {
    let mapped: Vec<crate::sim::MappedServer> = ctx
        .topology
        .pools()
        .flat_map(|p| {
            p.pool.servers.iter().map(|s| crate::sim::MappedServer {
                fqdn: s.fqdn.clone(),
                pool: p.pool.name.clone(),
                real: s.external_ipv4.clone(),
                ip: s.external_ipv4.parse().expect("an address"),
            })
        })
        .collect();
    let zone = crate::sim::before_zone(&ctx.topology, "EdgePool1", &mapped, 5269).expect("zone");
    let zone = Arc::new(Mutex::new(zone));
    let addr = crate::sim::dns::serve(crate::sim::dns::Server {
        zone: zone.clone(),
        keys: None,
        faults: Arc::default(),
    })
    .await
    .expect("a DNS server on loopback");
    ctx.topology.dns.authoritative = vec![addr.to_string()];
    zone
}

#[tokio::test]
async fn manual_dns_asks_the_operator_through_an_event_and_the_interface() {
    use crate::event::{Emitter, Event, Sink, Sinks};
    use crate::operator::Scripted;

    #[derive(Clone, Default)]
    struct Seen(Arc<Mutex<Vec<Event>>>);
    impl Sink for Seen {
        fn event(&mut self, event: &Event) {
            self.0.lock().unwrap().push(event.clone());
        }
    }

    for (answers, confirmed) in [(vec!["done"], true), (vec!["later"], false)] {
        let (mut ctx, _estate) = ctx();
        zone_server(&mut ctx).await;
        let seen = Seen::default();
        let operator = Arc::new(Scripted::new(answers));
        let ctx = ctx
            .with_events(Emitter::new(Sinks(vec![Box::new(seen.clone())])))
            .with_operator(operator.clone());
        let check = super::DnsA.check(&ctx, &[]).await;
        assert_eq!(check.state, CheckState::WouldChange, "{}", check.summary);
        let applied = super::DnsA
            .apply(&ctx, check.plan.as_ref().expect("a plan"))
            .await;
        assert_eq!(applied.is_ok(), confirmed, "{applied:?}");
        assert_eq!(operator.asked().len(), 1);
        let events = seen.0.lock().unwrap();
        let Some(Event::OperatorAction {
            step,
            message,
            instructions,
            ..
        }) = events.first()
        else {
            panic!("no operator_action event: {events:?}");
        };
        assert_eq!(*step, StepId::DnsA);
        assert!(message.starts_with("dns.mode is manual: make this change in zone contoso.com yourself: xmpp.contoso.com A 203.0.113.10 (EdgePool1)"), "{message}");
        assert!(
            instructions.iter().any(|l| l.contains("prereq yxrrset")),
            "{instructions:?}"
        );
    }

    // Nobody to ask: the step says so and fails before waiting.
    let (mut ctx, _estate) = ctx();
    zone_server(&mut ctx).await;
    let check = super::DnsA.check(&ctx, &[]).await;
    let failure = super::DnsA
        .apply(&ctx, check.plan.as_ref().expect("a plan"))
        .await
        .expect_err("nobody confirmed");
    assert!(
        failure
            .summary
            .starts_with("dns.mode is manual and there is no terminal to confirm on"),
        "{}",
        failure.summary
    );
}

#[tokio::test]
async fn every_sites_route_moves_with_all_sites_and_is_read_back() {
    let (mut ctx, estate) = ctx();
    ctx.topology.management.move_routes = crate::topology::MoveRoutes::AllSites;
    let check = route::Route.check(&ctx, &[]).await;
    assert_eq!(check.state, CheckState::WouldChange, "{}", check.summary);
    assert_eq!(
        check.summary,
        "would run Set-CsSite -XmppExternalFederationRoute edge2a.contoso.com on Site2, Site1"
    );
    assert_eq!(check.changes.len(), 2, "{:?}", check.changes);
    let plan = check.plan.as_ref().expect("a plan");
    route::Route.apply(&ctx, plan).await.expect("set");
    for site in ["Site1", "Site2"] {
        assert_eq!(
            machine::lock(&estate).sites[site].route,
            "edge2a.contoso.com"
        );
    }
    assert!(route::Route.verify(&ctx, plan).await.holds);
    let again = route::Route.check(&ctx, &[]).await;
    assert_eq!(again.state, CheckState::Done, "{}", again.summary);
    assert!(
        again.summary.ends_with("; already naming EdgePool2: Site1"),
        "{}",
        again.summary
    );
}

#[tokio::test]
async fn step_2_says_what_it_found() {
    let (ctx, estate) = ctx();
    let check = Services::stop().check(&ctx, &[]).await;
    assert!(
        check
            .summary
            .starts_with("found Lync services running on all 2 server(s) of EdgePool2 (as after a restore): would stop them"),
        "{}",
        check.summary
    );
    // One server already stopped: named as the one still running.
    for s in machine::lock(&estate)
        .hosts
        .get_mut("edge2a.contoso.com")
        .expect("host")
        .services
        .values_mut()
    {
        *s = "Stopped".into();
    }
    let check = Services::stop().check(&ctx, &[]).await;
    assert!(
        check.summary.starts_with(
            "found Lync services running on 1 of 2 server(s) of EdgePool2 (edge2b.contoso.com), the others stopped"
        ),
        "{}",
        check.summary
    );
}

/// Timeouts at the edge of what a Duration holds (u64::MAX seconds from a
/// topology or the command line) must wait, not panic: the verify deadline
/// and the growing pause saturate.
#[tokio::test]
async fn huge_verify_timeout_and_poll_interval_do_not_panic() {
    let (mut ctx, _) = ctx();
    ctx.opts.verify_timeout = Duration::from_secs(u64::MAX);
    ctx.opts.poll = Duration::MAX;
    let cancel = ctx.cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        cancel.trigger();
    });
    let verified = super::poll(&ctx, || async {
        super::Observation {
            holds: false,
            summary: "not yet".into(),
            details: Vec::new(),
        }
    })
    .await;
    assert!(!verified.holds);
    assert!(verified.summary.contains("interrupted"), "{verified:?}");
}
