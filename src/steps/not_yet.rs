//! Steps whose implementation has not landed: they say so in check and fail
//! in apply, and never pretend to have succeeded.

use async_trait::async_trait;

use super::{Applied, Check, Failure, Prior, Step, StepId, Verified};
use crate::context::Ctx;

pub struct NotYet {
    id: StepId,
    issue: &'static str,
}

impl NotYet {
    pub fn new(id: StepId, issue: &'static str) -> NotYet {
        NotYet { id, issue }
    }
}

#[async_trait]
impl Step for NotYet {
    fn id(&self) -> StepId {
        self.id
    }

    fn title(&self, ctx: &Ctx) -> String {
        crate::context::title(ctx, self.id)
    }

    async fn check(&self, _ctx: &Ctx, _prior: Prior<'_>) -> Check {
        Check::cannot_tell(format!(
            "not implemented in this edgefail yet (issue {}); do this step by hand and pass --skip {}",
            self.issue, self.id
        ))
    }

    async fn apply(&self, _ctx: &Ctx, _check: &Check) -> Result<Applied, Failure> {
        Err(Failure::new(format!("{} is not implemented yet", self.id)))
    }

    async fn verify(&self, _ctx: &Ctx, _check: &Check) -> Verified {
        Verified {
            holds: false,
            summary: format!("{} is not implemented yet", self.id),
            details: Vec::new(),
        }
    }
}
