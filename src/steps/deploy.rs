//! Step 1: the target pool is deployed, in the site the topology says, with
//! the servers the topology lists.

use async_trait::async_trait;

use super::{Check, CheckState, Ctx, Look, Prior, StepId, Verified};
use crate::lync::MachineError;

pub struct PoolDeployed;

#[async_trait]
impl Look for PoolDeployed {
    fn id(&self) -> StepId {
        StepId::PoolDeployed
    }

    fn title(&self, ctx: &Ctx) -> String {
        format!("Confirm {} is deployed", ctx.to().pool.name)
    }

    async fn check(&self, ctx: &Ctx, _prior: Prior<'_>) -> Check<()> {
        let pool = ctx.target_pool();
        let site = ctx.target_site();
        let cms = match ctx
            .management
            .pool(&pool.fqdn, ctx.opts.command_timeout)
            .await
        {
            Ok(cms) => cms,
            Err(e @ MachineError::PowerShell { .. }) => {
                return Check::blocked(format!(
                    "{} ({}) is not deployed as far as the Central Management Store knows: {e}",
                    pool.name, pool.fqdn
                ));
            }
            Err(e) => return Check::cannot_tell(e.to_string()),
        };
        let mut problems = Vec::new();
        let cms_site = cms.site.rsplit(':').next().unwrap_or(&cms.site);
        if !cms_site.eq_ignore_ascii_case(&site.name) {
            problems.push(format!(
                "the CMS puts {} in site '{}', the topology in '{}'",
                pool.fqdn,
                crate::names::printable(&cms.site),
                site.name
            ));
        }
        for server in &pool.servers {
            if !cms
                .computers
                .iter()
                .any(|c| c.eq_ignore_ascii_case(&server.fqdn))
            {
                problems.push(format!(
                    "the CMS does not list {} in pool {}",
                    server.fqdn, pool.fqdn
                ));
            }
        }
        let details = vec![format!(
            "CMS: {} in {}, computers: {}",
            crate::names::printable(&cms.identity),
            crate::names::printable(&cms.site),
            crate::names::printable(&cms.computers.join(", "))
        )];
        if problems.is_empty() {
            Check::done(format!(
                "{} ({}) is deployed in {} with {} Edge server(s)",
                pool.name,
                pool.fqdn,
                site.name,
                pool.servers.len()
            ))
            .with_details(details)
        } else {
            Check::blocked(format!(
                "the topology and the Central Management Store disagree: {}",
                problems.join("; ")
            ))
            .with_details(details)
        }
    }

    async fn verify(&self, ctx: &Ctx) -> Verified {
        let check = self.check(ctx, &[]).await.reading;
        Verified {
            holds: check.state == CheckState::Done,
            summary: check.summary,
            details: check.details,
        }
    }
}
