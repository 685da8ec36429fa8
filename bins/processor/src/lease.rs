//! Partition ownership through KV `leases` (DESIGN §4): claim, renew, release, and a fair share.
//!
//! Each replica keeps `members.<instance>` alive in the bucket and owns `processor.<p>` keys. The bucket's
//! `max_age` is the lease TTL: a dead replica's keys vanish within one TTL and the others claim them on
//! their next round (a third of a TTL later at most). A replica aims at `⌈P / live replicas⌉` partitions and
//! releases what it holds beyond that, so a joining replica gets its share. Correctness does not rest on
//! leases (the compare-and-set of the books is the fence); they keep the work spread and the fences rare.

use std::collections::BTreeMap;
use std::time::Duration;

use acctmon_bus::subject::lease_key;
use async_nats::jetstream::kv::Store;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

/// Key prefix of the replicas' presence.
const MEMBERS: &str = "members.";

/// Holds this replica's leases and tells which partitions it owns.
pub struct Leases {
    store: Store,
    instance: String,
    partitions: u32,
    ttl: Duration,
    /// Partition → revision of our lease.
    held: BTreeMap<u32, u64>,
    owned: watch::Sender<Vec<u32>>,
}

impl Leases {
    /// Leases of `instance` over `partitions` in `store` (the `leases` bucket, whose `max_age` is `ttl`).
    pub fn new(
        store: Store,
        instance: String,
        partitions: u32,
        ttl: Duration,
    ) -> (Self, watch::Receiver<Vec<u32>>) {
        let (owned, rx) = watch::channel(Vec::new());
        (
            Leases {
                store,
                instance,
                partitions,
                ttl,
                held: BTreeMap::new(),
                owned,
            },
            rx,
        )
    }

    /// Renews, claims and releases every third of a TTL until `shutdown`, then releases everything.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(self.ttl / 3);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut announced = false;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = tick.tick() => {}
            }
            let done = self.round().await;
            if let Err(e) = &done {
                warn!(error = %e, "lease round failed; retrying");
            }
            // The first round that went through is told even when it claimed nothing: the owner of
            // the receiver waits for it before saying it is ready.
            let first = done.is_ok() && !announced;
            announced |= done.is_ok();
            let owned: Vec<u32> = self.held.keys().copied().collect();
            self.owned.send_if_modified(|o| {
                let changed = *o != owned || first;
                *o = owned.clone();
                changed
            });
        }
        self.owned.send_replace(Vec::new());
        for (p, revision) in std::mem::take(&mut self.held) {
            if let Err(e) = self
                .store
                .delete_expect_revision(lease_key(p), Some(revision))
                .await
            {
                debug!(partition = p, error = %e, "lease not released (it expires anyway)");
            }
        }
        let _ = self.store.delete(self.member_key()).await;
        info!("leases released");
    }

    fn member_key(&self) -> String {
        format!("{MEMBERS}{}", self.instance)
    }

    async fn round(&mut self) -> anyhow::Result<()> {
        self.store
            .put(self.member_key(), self.instance.clone().into_bytes().into())
            .await?;
        let members = acctmon_bus::kv::latest(&self.store, &format!("{MEMBERS}>"))
            .await
            .map_err(|e| anyhow::anyhow!("list the members: {e}"))?
            .len();
        let members = u32::try_from(members).unwrap_or(u32::MAX);
        let target = self.partitions.div_ceil(members.max(1)) as usize;

        // Renew; a lease someone else holds now is gone.
        for (p, revision) in std::mem::take(&mut self.held) {
            match self
                .store
                .update(
                    lease_key(p),
                    self.instance.clone().into_bytes().into(),
                    revision,
                )
                .await
            {
                Ok(r) => {
                    self.held.insert(p, r);
                }
                Err(e) => warn!(partition = p, error = %e, "lease lost"),
            }
        }
        // Release beyond the fair share, highest partitions first.
        while self.held.len() > target {
            let Some((p, revision)) = self.held.pop_last() else {
                break;
            };
            info!(
                partition = p,
                target, "releasing a partition for another replica"
            );
            let _ = self
                .store
                .delete_expect_revision(lease_key(p), Some(revision))
                .await;
        }
        // Claim free partitions, starting at a place of our own so replicas do not all race for 0.
        let start = acctmon_bus::subject::fnv1a32(self.instance.as_bytes()) % self.partitions;
        for i in 0..self.partitions {
            if self.held.len() >= target {
                break;
            }
            let p = (start + i) % self.partitions;
            if self.held.contains_key(&p) {
                continue;
            }
            if let Ok(r) = self
                .store
                .create(lease_key(p), self.instance.clone().into_bytes().into())
                .await
            {
                info!(partition = p, "partition claimed");
                self.held.insert(p, r);
            }
        }
        Ok(())
    }
}

/// A lease-safe instance name from a host name and process id.
pub fn default_instance() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "processor".into());
    sanitize(&format!("{host}-{}", std::process::id()))
}

/// Keeps `[A-Za-z0-9_-]`, replacing anything else by `_`.
pub fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_names_are_single_key_tokens() {
        assert_eq!(sanitize("pod-7.ns.svc:1"), "pod-7_ns_svc_1");
        assert!(
            default_instance()
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        );
    }
}
