//! Shard leases in a JetStream key-value bucket whose entries expire after
//! the lease TTL (the bucket's `max_age`).
//!
//! - **Acquire**: `create` the shard's key — it succeeds only when no entry
//!   is there (none yet, released, or expired).
//! - **Renew**: `update` with the revision this node last wrote. If anybody
//!   else wrote since (the lease expired and another node took it), the
//!   revision differs and the renewal fails: this node has lost the shard.
//! - **Release**: delete with the expected revision, after the shard's
//!   entities have stopped.
//! - **Fence**: a lease counts as held locally only until
//!   [`HELD_FRACTION`] of the TTL after the *sending* of the last successful
//!   create or renewal. The server stored that write after it was sent, so
//!   it cannot expire it before `sent + TTL`; the rest of the TTL is the time
//!   the node has to stop the shard's entities once renewals fail.

use std::time::Duration;

use async_nats::jetstream::kv::{self, CreateErrorKind, UpdateErrorKind};
use bytes::Bytes;
use tokio::time::Instant;

/// The part of the TTL a lease is held for, counted from the sending of
/// its last successful write (2/3): the last third is for stopping.
pub(crate) const HELD_FRACTION: (u32, u32) = (2, 3);

/// A lease this node holds.
#[derive(Debug, Clone)]
pub(crate) struct Lease {
    /// The revision this node wrote last.
    pub(crate) revision: u64,
    /// Until when it may serve the shard.
    pub(crate) held_until: Instant,
}

/// The lease bucket, as one node sees it.
pub(crate) struct Leases {
    store: kv::Store,
    node: Bytes,
    ttl: Duration,
}

/// A lease write that failed for another reason than someone else holding
/// the lease (the server is unreachable, slow, ...).
#[derive(Debug)]
pub(crate) struct Unsure(pub(crate) String);

impl Leases {
    pub(crate) fn new(store: kv::Store, node: &str, ttl: Duration) -> Self {
        Self {
            store,
            node: Bytes::copy_from_slice(node.as_bytes()),
            ttl,
        }
    }

    fn held_for(&self) -> Duration {
        self.ttl * HELD_FRACTION.0 / HELD_FRACTION.1
    }

    /// Takes the lease `key` if nobody holds it: `Ok(None)` if somebody
    /// does.
    pub(crate) async fn acquire(&self, key: &str) -> Result<Option<Lease>, Unsure> {
        let sent = Instant::now();
        let create = self.store.create(key, self.node.clone());
        let Ok(created) = tokio::time::timeout(self.ttl / 6, create).await else {
            // Perhaps created: then nobody renews it and it expires.
            return Err(Unsure("the server did not answer in time".to_owned()));
        };
        match created {
            Ok(revision) => Ok(Some(Lease {
                revision,
                held_until: sent + self.held_for(),
            })),
            Err(e) if e.kind() == CreateErrorKind::AlreadyExists => Ok(None),
            Err(e) => Err(Unsure(e.to_string())),
        }
    }

    /// Renews `lease`: `Ok(false)` if it was lost (someone else wrote the
    /// key since); `Err` if the server did not answer (the lease may still
    /// be held: it is renewed again on the next round, until `held_until`).
    pub(crate) async fn renew(&self, key: &str, lease: &mut Lease) -> Result<bool, Unsure> {
        let sent = Instant::now();
        // A round waits no longer than this for the server: the fence must
        // not wait on a server that does not answer.
        let update = self.store.update(key, self.node.clone(), lease.revision);
        let Ok(updated) = tokio::time::timeout(self.ttl / 6, update).await else {
            return Err(Unsure("the server did not answer in time".to_owned()));
        };
        match updated {
            Ok(revision) => {
                lease.revision = revision;
                lease.held_until = sent + self.held_for();
                Ok(true)
            }
            Err(e) if e.kind() == UpdateErrorKind::WrongLastRevision => Ok(false),
            Err(e) => Err(Unsure(e.to_string())),
        }
    }

    /// Gives `lease` up (its holder has stopped serving it). A lease lost
    /// already is left alone.
    pub(crate) async fn release(&self, key: &str, lease: &Lease) {
        if let Err(e) = self
            .store
            .delete_expect_revision(key, Some(lease.revision))
            .await
        {
            // It expires by itself within the TTL.
            tracing::debug!(target: "airssys_rt::sharding", key, error = %e, "lease release failed");
        }
    }
}
