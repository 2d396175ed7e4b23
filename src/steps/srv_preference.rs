//! The SRV preference algorithm of step 5, as pure code: given the
//! `_xmpp-server._tcp` records as they are and the target pool's record,
//! which records the rrset must hold so that partners prefer the target
//! pool, with no other pool's record deleted.

use std::collections::BTreeSet;

use crate::dns::SrvRecord;

/// What step 5 will do to the SRV rrset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrvPlan {
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
pub fn plan_srv(current: &[SrvRecord], wanted: &SrvRecord) -> Result<SrvPlan, String> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns;

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
