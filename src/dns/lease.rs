//! One failover per estate across machines: a lease in the zone itself. A
//! TXT record (`_edgefail-lock.<zone>` unless `dns.lease_name` says
//! otherwise) is created by one RFC 2136 UPDATE whose prerequisite is that
//! the name holds nothing, so of two operators racing, exactly one UPDATE
//! passes. It holds the run id and an expiry, never a person or a host
//! (the zone is public). Renewed and removed with the same compare-and-swap:
//! the prerequisite is the exact text this run wrote.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hickory_proto::rr::{Name, RecordType};

use super::{Authority, DnsError, Primary, Signer, Update, fqdn};
use crate::topology::{Topology, parse_server_addr};

/// The TTL of the lease record: resolvers should not keep it long.
const LEASE_TTL: u32 = 30;

/// What a lease record says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub run_id: String,
    /// Seconds since the Unix epoch.
    pub expires: u64,
    /// The record's exact text, for the compare-and-swap.
    pub text: String,
}

impl Lease {
    fn new(run_id: &str, secs: u64) -> Lease {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let expires = now.saturating_add(secs);
        Lease {
            run_id: run_id.to_string(),
            expires,
            text: format!("v=edgefail1 run={run_id} expires={expires}"),
        }
    }

    /// Read a record's text; anything else is not ours to interpret.
    pub fn parse(text: &str) -> Option<Lease> {
        let mut run_id = None;
        let mut expires = None;
        let mut words = text.split_whitespace();
        if words.next() != Some("v=edgefail1") {
            return None;
        }
        for w in words {
            if let Some(v) = w.strip_prefix("run=") {
                run_id = Some(v.to_string());
            } else if let Some(v) = w.strip_prefix("expires=") {
                expires = v.parse().ok();
            }
        }
        Some(Lease {
            run_id: run_id?,
            expires: expires?,
            text: text.to_string(),
        })
    }

    pub fn expired(&self) -> bool {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        now >= self.expires
    }

    /// The expiry as RFC 3339 UTC.
    pub fn expiry(&self) -> String {
        UNIX_EPOCH
            .checked_add(Duration::from_secs(self.expires))
            .map(|t| humantime::format_rfc3339_seconds(t).to_string())
            .unwrap_or_else(|| format!("{} s after 1970", self.expires))
    }
}

impl std::fmt::Display for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "run {} until {}{}",
            crate::names::printable(&self.run_id),
            self.expiry(),
            if self.expired() { " (expired)" } else { "" }
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error(
        "another failover of this estate holds the lease in the zone: {lease} (TXT {owner} on {primary}); {hint}"
    )]
    Held {
        lease: Lease,
        owner: String,
        primary: String,
        hint: &'static str,
    },
    #[error(
        "the lease record {owner} holds something edgefail did not write ({text:?}): remove it by hand, or set dns.lease_name"
    )]
    Foreign { owner: String, text: String },
    #[error("cannot take the lease in the zone: {0}")]
    Dns(#[from] DnsError),
    /// The lease cannot be used at all (the topology, the TSIG key): said
    /// by `unlock` as well as by a run taking it.
    #[error("cannot use the lease in the zone: {0}")]
    Setup(String),
}

/// The lease of one estate: where it lives and how long it lasts.
#[derive(Debug, Clone)]
pub struct ZoneLease {
    primary: Primary,
    zone: Name,
    pub owner: Name,
    pub secs: u64,
}

impl ZoneLease {
    /// From the topology; the TSIG key is loaded here.
    pub fn from_topology(t: &Topology) -> Result<ZoneLease, LeaseError> {
        let d = &t.dns;
        let text = d
            .primary
            .as_deref()
            .ok_or_else(|| LeaseError::Setup("dns.primary is not set".into()))?;
        let addr = parse_server_addr(text, 53)
            .map_err(|e| LeaseError::Setup(format!("dns.primary: {e}")))?;
        let tsig = d
            .tsig
            .as_ref()
            .ok_or_else(|| LeaseError::Setup("dns.tsig is not set".into()))?;
        let key = crate::secret::load_tsig(crate::secret::KeySource {
            name: &tsig.name,
            algorithm: &tsig.algorithm,
            file: tsig.secret_file.as_deref(),
            env: tsig.secret_env.as_deref(),
        })
        .map_err(|e| LeaseError::Setup(format!("load the TSIG key: {e}")))?;
        let signer = Signer::new(&key).map_err(|e| LeaseError::Setup(e.to_string()))?;
        Ok(ZoneLease {
            primary: Primary::new(addr, super::timeout(t), signer),
            zone: fqdn(&d.zone)?,
            owner: fqdn(&d.lease_owner())?,
            secs: d.lease_secs,
        })
    }

    fn owner_text(&self) -> String {
        super::show(&self.owner)
    }

    /// The lease record as the primary holds it now, if any.
    pub async fn read(&self) -> Result<Option<Result<Lease, String>>, DnsError> {
        let authority = Authority::new(self.primary.addr, self.primary.timeout);
        let texts = authority.read_txt(&self.owner).await?;
        Ok(texts.into_iter().next().map(|t| Lease::parse(&t).ok_or(t)))
    }

    /// Take the lease for `run_id`, or say who holds it. `takeover`: the
    /// run this one resumes, whose lease (left by a crash) it may take over.
    pub async fn take(&self, run_id: &str, takeover: Option<&str>) -> Result<Lease, LeaseError> {
        let lease = Lease::new(run_id, self.secs);
        let mut update = Update::new(&self.zone);
        update.require_name_unused(&self.owner).add(
            &self.owner,
            LEASE_TTL,
            super::Data::Txt(lease.text.clone()),
        );
        match self.primary.update(&update).await {
            Ok(()) => return Ok(lease),
            Err(DnsError::Prerequisite { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        let held = match self.read().await? {
            // Gone between the update and the read: try once more.
            None => {
                return match self.primary.update(&update).await {
                    Ok(()) => Ok(lease),
                    Err(e) => Err(e.into()),
                };
            }
            Some(Err(text)) => {
                return Err(LeaseError::Foreign {
                    owner: self.owner_text(),
                    text: crate::names::printable(&text),
                });
            }
            Some(Ok(held)) => held,
        };
        if takeover.is_some_and(|t| t == held.run_id) {
            return self.replace(&held, run_id).await.map_err(Into::into);
        }
        Err(LeaseError::Held {
            hint: if held.expired() {
                "it has expired (its run ended without removing it): `edgefail unlock` removes it"
            } else {
                "wait for that run to end, or resume it where it runs"
            },
            lease: held,
            owner: self.owner_text(),
            primary: self.primary.addr.to_string(),
        })
    }

    /// Swap `held` for a fresh lease of `run_id`: only if the record is
    /// still exactly `held`.
    async fn replace(&self, held: &Lease, run_id: &str) -> Result<Lease, DnsError> {
        let lease = Lease::new(run_id, self.secs);
        let mut update = Update::new(&self.zone);
        update
            .require_txt(&self.owner, std::slice::from_ref(&held.text))
            .delete_rrset(&self.owner, RecordType::TXT)
            .add(&self.owner, LEASE_TTL, super::Data::Txt(lease.text.clone()));
        self.primary.update(&update).await?;
        Ok(lease)
    }

    /// Push the expiry on; the record must still be the one this run wrote.
    pub async fn renew(&self, held: &Lease) -> Result<Lease, DnsError> {
        self.replace(held, &held.run_id).await
    }

    /// Remove the lease, only if it is still exactly `held`.
    pub async fn release(&self, held: &Lease) -> Result<(), DnsError> {
        let mut update = Update::new(&self.zone);
        update
            .require_txt(&self.owner, std::slice::from_ref(&held.text))
            .delete_rrset(&self.owner, RecordType::TXT);
        self.primary.update(&update).await
    }
}

/// A lease this run holds, renewed in the background until released.
pub struct Renewing {
    zone: ZoneLease,
    current: std::sync::Arc<tokio::sync::Mutex<Lease>>,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl ZoneLease {
    /// How often a held lease is renewed: a third of its length, so two
    /// renewals in a row may fail before it lapses.
    pub fn renew_every(&self) -> Duration {
        renew_interval(self.secs)
    }

    /// Keep `lease` (just taken) alive: renew it every `every` until
    /// released. A failed renewal is told to `failed` (with the lease
    /// still held) and tried again at the next turn; the copy held stays
    /// the last one written, so a lease someone else replaced is never
    /// overwritten (the compare-and-swap fails instead).
    pub fn keep(
        self,
        lease: Lease,
        every: Duration,
        failed: impl Fn(&DnsError, &Lease) + Send + 'static,
    ) -> Renewing {
        let current = std::sync::Arc::new(tokio::sync::Mutex::new(lease));
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let task = {
            let (zone, current) = (self.clone(), current.clone());
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = &mut stopped => return,
                        () = tokio::time::sleep(every) => {}
                    }
                    let mut held = current.lock().await;
                    match zone.renew(&held).await {
                        Ok(next) => *held = next,
                        Err(e) => failed(&e, &held),
                    }
                }
            })
        };
        Renewing {
            zone: self,
            current,
            stop,
            task,
        }
    }
}

/// A third of `secs`, at least a second.
fn renew_interval(secs: u64) -> Duration {
    Duration::from_secs((secs / 3).max(1))
}

impl Renewing {
    /// The lease as last written.
    pub async fn current(&self) -> Lease {
        self.current.lock().await.clone()
    }

    pub fn owner(&self) -> &Name {
        &self.zone.owner
    }

    /// Stop renewing (a renewal in flight is finished first, so the copy
    /// is the record's text, not the one before it) and remove the lease,
    /// only if it is still the one last written. Returns that copy with
    /// the outcome.
    pub async fn release(self) -> (Lease, Result<(), DnsError>) {
        let _ = self.stop.send(());
        let _ = self.task.await;
        let lease = self.current.lock().await.clone();
        let removed = self.zone.release(&lease).await;
        (lease, removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_reads_back_what_it_wrote_and_nothing_else() {
        let lease = Lease::new("20261123T030000Z-1a2b", 600);
        assert_eq!(Lease::parse(&lease.text), Some(lease.clone()));
        assert!(!lease.expired());
        assert!(
            !lease.text.contains('@'),
            "no person or host: {}",
            lease.text
        );
        assert_eq!(Lease::parse("v=spf1 -all"), None);
        let old = Lease::parse("v=edgefail1 run=x expires=1").unwrap();
        assert!(old.expired());
        assert_eq!(old.expiry(), "1970-01-01T00:00:01Z");
    }

    #[test]
    fn a_lease_is_renewed_three_times_in_its_length() {
        assert_eq!(renew_interval(600), Duration::from_secs(200));
        assert_eq!(renew_interval(90), Duration::from_secs(30));
        assert_eq!(renew_interval(2), Duration::from_secs(1));
        assert_eq!(renew_interval(0), Duration::from_secs(1));
    }
}
