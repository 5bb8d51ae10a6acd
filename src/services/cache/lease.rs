//! The cross-instance right to load one missing cache entry, and the wait
//! of the instances without it for the one that holds it.

use std::time::Duration;

use super::lookup::usable;
use super::{Cacheable, Representation};
use crate::repositories::redis::{CacheKey, CacheStore, CachedEntry};

/// How long one instance may hold the right to load a missing entry, and
/// how long (and how often) the others look for its result before loading
/// it themselves.
const FILL_LEASE: Duration = Duration::from_secs(2);
const FILL_POLL_EVERY: Duration = Duration::from_millis(20);
const FILL_POLLS: u32 = 10;

/// The cross-instance right to load one entry. When Redis cannot be asked,
/// it counts as ours: loading is always allowed, only deduplicated.
pub(super) struct Lease {
    key: String,
    owner: String,
    /// Whether this instance loads the entry (else another one does).
    pub(super) ours: bool,
    held: bool,
}

impl Lease {
    /// The lease, and the entry as it is now.
    pub(super) async fn take<T>(
        store: &CacheStore,
        key: &CacheKey<T>,
        ask_redis: bool,
    ) -> (Self, Option<CachedEntry>) {
        let (lease_key, owner) = (key.fill_lease(), uuid::Uuid::new_v4().simple().to_string());
        let taken = if ask_redis {
            store
                .take_fill_lease(&lease_key, &owner, FILL_LEASE, key.as_str())
                .await
                .ok()
        } else {
            None
        };
        let (held, entry) = match taken {
            Some((held, entry)) => (Some(held), entry),
            None => (None, None),
        };
        let lease = Self {
            key: lease_key,
            owner,
            ours: held.unwrap_or(true),
            held: held == Some(true),
        };
        (lease, entry)
    }

    /// Gives the lease back in the background: the answer need not wait.
    pub(super) fn release(self, store: &CacheStore) {
        if self.held {
            let store = store.clone();
            tokio::spawn(async move {
                let _ = store.release_fill_lease(&self.key, &self.owner).await;
            });
        }
    }
}

/// Polls for an entry another instance is filling, for a bounded time.
pub(super) async fn wait_for_fill<T: Cacheable>(
    store: &CacheStore,
    key: &CacheKey<T>,
) -> Option<(i64, Representation)> {
    for _ in 0..FILL_POLLS {
        tokio::time::sleep(FILL_POLL_EVERY).await;
        match store.get(key.as_str()).await {
            Ok(Some(entry)) => {
                if let Some(filled) = usable::<T>(entry) {
                    return Some(filled);
                }
            }
            Ok(None) => {}
            Err(_) => return None,
        }
    }
    None
}
