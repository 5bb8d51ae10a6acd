//! Cache-aside, once, for every cached type: the Rust form of the tutorials'
//! `@cached` decorator. Redis is only a cache here: when it fails, the value
//! comes from the loader and the request goes on.

use std::sync::Arc;
use std::time::Duration;

use prometheus::IntCounter;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::AppError;
use crate::metrics::Metrics;
use crate::repositories::redis::{CacheKey, CacheStore, CachedEntry, RedisError};
use crate::services::single_flight::SingleFlight;

/// A value that knows the version of the row it came from, so a cache write
/// of an older version can lose to a newer one.
pub trait Versioned {
    fn version(&self) -> i64;
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
}

impl CacheAside {
    pub fn new(store: CacheStore, ttl: Duration, counters: CacheCounters) -> Self {
        Self {
            store,
            ttl,
            counters,
            flights: Arc::default(),
        }
    }

    /// The cached value under `key`, or the loader's, which is then cached.
    /// A loader error is returned as is and nothing is cached.
    pub async fn get_or_load<T, F>(
        &self,
        key: &CacheKey<T>,
        load: F,
    ) -> Result<(T, CacheStatus), AppError>
    where
        T: Serialize + DeserializeOwned + Versioned + Clone + Send + Sync + 'static,
        F: AsyncFnOnce() -> Result<T, AppError>,
    {
        let cached = self.store.get(key.as_str()).await;
        self.resolve(key, cached, load).await
    }

    /// `get_or_load` for an entry already read from Redis (or the error
    /// reading it), e.g. together with another key in one round trip.
    pub async fn resolve<T, F>(
        &self,
        key: &CacheKey<T>,
        cached: Result<Option<CachedEntry>, RedisError>,
        load: F,
    ) -> Result<(T, CacheStatus), AppError>
    where
        T: Serialize + DeserializeOwned + Versioned + Clone + Send + Sync + 'static,
        F: AsyncFnOnce() -> Result<T, AppError>,
    {
        let redis_answered = match cached {
            Ok(Some(entry)) => match entry.body.as_deref().map(serde_json::from_slice::<T>) {
                Some(Ok(value)) => {
                    self.counters.hits.inc();
                    return Ok((value, CacheStatus::Hit));
                }
                Some(Err(error)) => {
                    tracing::warn!(key = key.as_str(), error = %error, "undecodable cache entry; reloading");
                    true
                }
                None => true, // a tombstone: invalidated, reload
            },
            Ok(None) => true,
            Err(error) => {
                tracing::warn!(error = %error, "cache read failed; reading the source");
                false
            }
        };
        if redis_answered {
            self.counters.misses.inc();
        } else {
            self.counters.bypasses.inc();
        }
        // One load per key at a time in this process; its leader fills the
        // cache. After a failed read it skips the write: it would only wait
        // out the same timeout again.
        let value = self
            .flights
            .run(key.as_str(), async || {
                self.counters.loads.inc();
                let value = load().await?;
                if redis_answered {
                    self.fill(key, &value).await;
                }
                Ok(value)
            })
            .await?;
        Ok((value, CacheStatus::Miss))
    }

    async fn fill<T: Serialize + Versioned>(&self, key: &CacheKey<T>, value: &T) {
        let body = match serde_json::to_vec(value) {
            Ok(body) => body,
            Err(error) => {
                tracing::warn!(key = key.as_str(), error = %error, "value not cacheable; served uncached");
                return;
            }
        };
        if let Err(error) = self
            .store
            .put_unless_newer(
                key.as_str(),
                value.version(),
                Some(&body),
                self.jittered_ttl(),
            )
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
    pub async fn invalidate<T>(&self, key: &CacheKey<T>, version: i64) -> Result<(), RedisError> {
        self.store
            .put_unless_newer(key.as_str(), version, None, self.ttl)
            .await
            .map(drop)
    }
}
