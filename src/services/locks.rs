//! "At most one at a time per key, else answer X": a Redis lease that a
//! watchdog extends while the work runs, released when the work ends — or,
//! if the request is dropped mid-way, from a background task.

use std::time::Duration;

use prometheus::IntCounter;
use tokio::task::JoinHandle;

use crate::error::AppError;
use crate::repositories::redis::{Acquisition, LockKeys, LockStore};

/// The fencing token of a held lock: writes must carry it, and the store
/// refuses a write whose token is older than the last one it accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fence(pub i64);

#[derive(Clone)]
pub struct LockService {
    store: LockStore,
    lease: Duration,
    /// The watchdog stops extending after this long: a stuck holder cannot
    /// keep a lock forever.
    max_hold: Duration,
    /// Counts callers turned away because the lock was held.
    contention: IntCounter,
}

/// Releases the lock and stops the watchdog when dropped, without blocking.
struct HeldLock {
    store: LockStore,
    keys: LockKeys,
    owner: String,
    watchdog: JoinHandle<()>,
    released: bool,
}

impl HeldLock {
    async fn release(mut self) {
        self.watchdog.abort();
        self.released = true;
        if let Err(error) = self.store.release(&self.keys, &self.owner).await {
            tracing::warn!(error = %error, lock = %self.keys.lock, "lock release failed; it will expire");
        }
    }
}

impl Drop for HeldLock {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        self.watchdog.abort();
        let (store, keys, owner) = (self.store.clone(), self.keys.clone(), self.owner.clone());
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = store.release(&keys, &owner).await;
            });
        }
    }
}

impl LockService {
    pub fn new(
        store: LockStore,
        lease: Duration,
        max_hold: Duration,
        contention: IntCounter,
    ) -> Self {
        Self {
            store,
            lease,
            max_hold,
            contention,
        }
    }

    /// Runs `work` while holding the lock; if someone else holds it, answers
    /// `busy(how long they still hold it)` without waiting.
    pub async fn run_exclusive<T>(
        &self,
        keys: LockKeys,
        busy: impl FnOnce(Duration) -> AppError,
        work: impl AsyncFnOnce(Fence) -> Result<T, AppError>,
    ) -> Result<T, AppError> {
        let owner = uuid::Uuid::new_v4().simple().to_string();
        let fence = match self.store.acquire(&keys, &owner, self.lease).await? {
            Acquisition::Held { fence } => Fence(fence),
            Acquisition::Busy { held_for } => {
                self.contention.inc();
                return Err(busy(held_for));
            }
        };
        let held = HeldLock {
            watchdog: self.watchdog(keys.clone(), owner.clone()),
            store: self.store.clone(),
            keys,
            owner,
            released: false,
        };
        let result = work(fence).await;
        held.release().await;
        result
    }

    /// Extends the lease every third of it, up to `max_hold`.
    fn watchdog(&self, keys: LockKeys, owner: String) -> JoinHandle<()> {
        let (store, lease, max_hold) = (self.store.clone(), self.lease, self.max_hold);
        tokio::spawn(async move {
            let started = tokio::time::Instant::now();
            loop {
                tokio::time::sleep(lease / 3).await;
                if started.elapsed() + lease > max_hold {
                    tracing::warn!(lock = %keys.lock, "lock held too long; letting the lease run out");
                    return;
                }
                match store.extend(&keys, &owner, lease).await {
                    Ok(true) => {}
                    Ok(false) => return,
                    Err(error) => {
                        tracing::warn!(error = %error, lock = %keys.lock, "lease extension failed")
                    }
                }
            }
        })
    }
}
