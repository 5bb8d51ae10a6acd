//! Cache-aside, once, for every cached type: the Rust form of the tutorials'
//! `@cached` decorator. Redis is only a cache here: when it fails, the value
//! comes from the loader and the request goes on.

mod lease;
mod lookup;
mod representation;

use std::sync::Arc;
use std::time::Duration;

use prometheus::IntCounter;

use crate::error::AppError;
use crate::metrics::Metrics;
use crate::repositories::redis::{CacheKey, CacheStore, NearCache, RedisError};
use crate::services::single_flight::SingleFlight;
use lease::{Lease, wait_for_fill};
pub use lookup::EntryRead;
use lookup::{Lookup, usable};
pub use representation::{Representation, digest_of};

/// A value that can be cached: it knows the version of the row it came
/// from, so a cache write of an older version can lose to a newer one, and
/// the form it is stored in (the JSON of each way it is shown, with digests).
pub trait Cacheable {
    /// How many views `cached_form` holds (see `Representation::pair`). An
    /// entry with another number, e.g. written by an earlier release, is
    /// read as a miss and replaced.
    const VIEWS: usize = 1;
    fn version(&self) -> i64;
    fn cached_form(&self) -> Result<Representation, serde_json::Error>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheStatus {
    Hit,
    Miss,
}

impl CacheStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CacheStatus::Hit => "HIT",
            CacheStatus::Miss => "MISS",
        }
    }
}

/// A version no row reaches: the tombstone of a deleted value, which no
/// fill can overwrite. (2^53 - 1, exact in Lua's numbers.)
pub const DELETED_VERSION: i64 = (1 << 53) - 1;

/// What cache-aside reads found, since this instance started (the
/// `cache_reads_total` metric).
#[derive(Debug, Clone)]
pub struct CacheCounters {
    hits: IntCounter,
    misses: IntCounter,
    /// Reads that went to the source because Redis failed.
    bypasses: IntCounter,
    /// Loads from the source (at most one per key at a time).
    loads: IntCounter,
}

impl CacheCounters {
    pub fn new(metrics: &Metrics) -> Self {
        let counter = |result| metrics.cache_reads.with_label_values(&[result]);
        Self {
            hits: counter("hit"),
            misses: counter("miss"),
            bypasses: counter("bypass"),
            loads: metrics.cache_loads.clone(),
        }
    }

    /// (hits, misses, bypasses)
    pub fn read(&self) -> (u64, u64, u64) {
        (self.hits.get(), self.misses.get(), self.bypasses.get())
    }
}

#[derive(Clone)]
pub struct CacheAside {
    store: CacheStore,
    ttl: Duration,
    counters: CacheCounters,
    flights: Arc<SingleFlight>,
    near: Arc<NearCache>,
}

impl CacheAside {
    pub fn new(
        store: CacheStore,
        ttl: Duration,
        counters: CacheCounters,
        near: Arc<NearCache>,
    ) -> Self {
        Self {
            store,
            ttl,
            counters,
            flights: Arc::default(),
            near,
        }
    }

    /// The representation (JSON bytes and digest) under `key`, given what
    /// reading the entry found. A hit is served as stored: no parsing, no
    /// serialising, no hashing.
    pub async fn resolve_representation<T, F>(
        &self,
        key: &CacheKey<T>,
        cached: EntryRead,
        load: F,
    ) -> Result<(Representation, CacheStatus), AppError>
    where
        T: Cacheable,
        F: AsyncFnOnce() -> Result<T, AppError>,
    {
        let (ask_redis, at_least) = match self.lookup(key, cached) {
            Lookup::Hit(digest, body) => {
                return Ok((Representation { body, digest }, CacheStatus::Hit));
            }
            Lookup::Miss {
                ask_redis,
                at_least,
            } => (ask_redis, at_least),
        };
        // One load per key at a time in this process; its leader fills the
        // cache, and requests that missed meanwhile take its value, unless
        // it is older than what they saw (an update's tombstone). The leader
        // first looks again: the late arrivals of a stampede, which missed
        // just before the fill, find it there. After a failed read nothing
        // is read or written again: it would only wait out the same timeout.
        let load_and_fill = async || {
            // Across instances: one loads, the others wait briefly for its
            // fill. Taking the lease also looks at the entry again (one
            // round trip), so whoever takes it just after another instance
            // filled finds the fill.
            let (lease, entry) = Lease::take(&self.store, key, ask_redis).await;
            let filled = match entry.and_then(usable::<T>) {
                Some(filled) => Some(filled),
                None if !lease.ours => wait_for_fill(&self.store, key).await,
                None => None,
            };
            if let Some(filled) = filled {
                lease.release(&self.store);
                return Ok(filled);
            }
            self.counters.loads.inc();
            let loaded = load().await;
            let result = match loaded {
                Ok(value) => match value.cached_form() {
                    Ok(representation) => {
                        if ask_redis {
                            self.fill(key, value.version(), &representation).await;
                        }
                        Ok((value.version(), representation))
                    }
                    Err(error) => Err(AppError::Internal(error.into())),
                },
                Err(error) => Err(error),
            };
            lease.release(&self.store);
            result
        };
        let (_, representation) = self
            .flights
            .run(key.as_str(), load_and_fill, |(version, _)| {
                *version >= at_least
            })
            .await?;
        Ok((representation, CacheStatus::Miss))
    }

    async fn fill<T>(&self, key: &CacheKey<T>, version: i64, representation: &Representation) {
        let value = Some((
            representation.digest.as_str(),
            representation.body.as_slice(),
        ));
        if let Err(error) = self
            .store
            .put_unless_newer(key.as_str(), version, value, self.jittered_ttl())
            .await
        {
            tracing::warn!(key = key.as_str(), error = %error, "cache write failed");
        }
    }

    /// The TTL, 10% either way at random, so entries written together do
    /// not all expire together.
    fn jittered_ttl(&self) -> Duration {
        self.ttl.mul_f64(0.9 + fastrand::f64() * 0.2)
    }

    /// Replaces the entry by a tombstone of `version`: readers miss, and a
    /// reader still holding an older row cannot write it back.
    /// This process's near copy is dropped at once; other processes hear
    /// of the change from Redis.
    pub async fn invalidate<T>(&self, key: &CacheKey<T>, version: i64) -> Result<(), RedisError> {
        let result = self
            .store
            .put_unless_newer(key.as_str(), version, None, self.ttl)
            .await
            .map(drop);
        self.near.invalidate(key.as_str());
        result
    }
}
