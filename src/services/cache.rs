//! Cache-aside, once, for every cached type: the Rust form of the tutorials'
//! `@cached` decorator. Redis is only a cache here: when it fails, the value
//! comes from the loader and the request goes on.

use std::sync::Arc;
use std::time::Duration;

use prometheus::IntCounter;
use sha2::{Digest, Sha256};

use serde::Serialize;

use crate::error::AppError;
use crate::metrics::Metrics;
use crate::repositories::redis::{CacheKey, CacheStore, CachedEntry, NearCache, RedisError};
use crate::services::single_flight::SingleFlight;

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

/// A value as sent to clients: its JSON and a digest of it, which is
/// stable across instances and restarts (the ETag).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Representation {
    pub body: Vec<u8>,
    pub digest: String,
}

impl Representation {
    pub fn of<T: Serialize>(value: &T) -> Result<Self, serde_json::Error> {
        let body = serde_json::to_vec(value)?;
        Ok(Self {
            digest: digest_of(&body),
            body,
        })
    }

    /// Two views of one value in one cache entry, read in one round trip:
    /// the bodies joined by a newline (which compact JSON never holds
    /// outside a string, where it is escaped), the digests side by side.
    pub fn pair<A: Serialize, B: Serialize>(
        first: &A,
        second: &B,
    ) -> Result<Self, serde_json::Error> {
        let (first, second) = (Self::of(first)?, Self::of(second)?);
        let mut body = first.body;
        body.push(b'\n');
        body.extend_from_slice(&second.body);
        Ok(Self {
            body,
            digest: first.digest + &second.digest,
        })
    }

    /// The first (0) or second (1) view of a `pair`; `None` if this is not one.
    pub fn part(mut self, index: usize) -> Option<Self> {
        let split = self.body.iter().position(|&byte| byte == b'\n')?;
        if self.digest.len() != 2 * DIGEST_HEX_LENGTH {
            return None;
        }
        let digest = if index == 0 {
            self.digest[..DIGEST_HEX_LENGTH].to_string()
        } else {
            self.digest[DIGEST_HEX_LENGTH..].to_string()
        };
        let body = if index == 0 {
            self.body.truncate(split);
            self.body
        } else {
            self.body.split_off(split + 1)
        };
        Some(Self { body, digest })
    }
}

/// The version and representation an entry holds, if it holds one in
/// `T`'s current form: not a tombstone, nor what an earlier release wrote.
fn usable<T: Cacheable>(entry: CachedEntry) -> Option<(i64, Representation)> {
    let (digest, body) = entry.value?;
    (digest.len() == T::VIEWS * DIGEST_HEX_LENGTH)
        .then_some((entry.version, Representation { body, digest }))
}

/// Hex digits of a digest.
const DIGEST_HEX_LENGTH: usize = 32;

/// The first 128 bits of the SHA-256 of `bytes`, in hex.
pub fn digest_of(bytes: &[u8]) -> String {
    use std::fmt::Write;
    Sha256::digest(bytes)[..16]
        .iter()
        .fold(String::with_capacity(32), |mut hex, byte| {
            let _ = write!(hex, "{byte:02x}");
            hex
        })
}

/// How long one instance may hold the right to load a missing entry, and
/// how long (and how often) the others look for its result before loading
/// it themselves.
const FILL_LEASE: Duration = Duration::from_secs(2);
const FILL_POLL_EVERY: Duration = Duration::from_millis(20);
const FILL_POLLS: u32 = 10;

/// The cross-instance right to load one entry. When Redis cannot be asked,
/// it counts as ours: loading is always allowed, only deduplicated.
struct Lease {
    key: String,
    owner: String,
    ours: bool,
    held: bool,
}

impl Lease {
    /// The lease, and the entry as it is now.
    async fn take<T>(
        store: &CacheStore,
        key: &CacheKey<T>,
        redis_answered: bool,
    ) -> (Self, Option<CachedEntry>) {
        let (lease_key, owner) = (key.fill_lease(), uuid::Uuid::new_v4().simple().to_string());
        let taken = if redis_answered {
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
    fn release(self, store: &CacheStore) {
        if self.held {
            let store = store.clone();
            tokio::spawn(async move {
                let _ = store.release_fill_lease(&self.key, &self.owner).await;
            });
        }
    }
}

enum Lookup {
    Hit(String, Vec<u8>),
    Miss {
        redis_answered: bool,
        /// The version of the tombstone found, if any: a value loaded for
        /// someone else is good enough only if it is at least this new.
        at_least: i64,
    },
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

    /// The representation (JSON bytes and digest) under `key`, given the
    /// entry already read from Redis (or the error reading it) — e.g. in
    /// the same round trip as another key. A hit is served as stored: no
    /// parsing, no serialising, no hashing.
    pub async fn resolve_representation<T, F>(
        &self,
        key: &CacheKey<T>,
        cached: Result<Option<CachedEntry>, RedisError>,
        load: F,
    ) -> Result<(Representation, CacheStatus), AppError>
    where
        T: Cacheable,
        F: AsyncFnOnce() -> Result<T, AppError>,
    {
        let (redis_answered, at_least) = match self.lookup(key, cached) {
            Lookup::Hit(digest, body) => {
                return Ok((Representation { body, digest }, CacheStatus::Hit));
            }
            Lookup::Miss {
                redis_answered,
                at_least,
            } => (redis_answered, at_least),
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
            let (lease, entry) = Lease::take(&self.store, key, redis_answered).await;
            let filled = match entry.and_then(usable::<T>) {
                Some(filled) => Some(filled),
                None if !lease.ours => self.wait_for_fill(key).await,
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
                        if redis_answered {
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

    /// Polls for an entry another instance is filling, for a bounded time.
    async fn wait_for_fill<T: Cacheable>(
        &self,
        key: &CacheKey<T>,
    ) -> Option<(i64, Representation)> {
        for _ in 0..FILL_POLLS {
            tokio::time::sleep(FILL_POLL_EVERY).await;
            match self.store.get(key.as_str()).await {
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

    /// Counts the read and says what it found.
    fn lookup<T: Cacheable>(
        &self,
        key: &CacheKey<T>,
        cached: Result<Option<CachedEntry>, RedisError>,
    ) -> Lookup {
        let lookup = match cached {
            Ok(Some(entry)) => {
                let version = entry.version;
                match usable::<T>(entry) {
                    Some((_, representation)) => {
                        Lookup::Hit(representation.digest, representation.body)
                    }
                    // A tombstone (invalidated), or an entry of another
                    // format (an earlier release's): reload.
                    None => Lookup::Miss {
                        redis_answered: true,
                        at_least: version,
                    },
                }
            }
            Ok(None) => Lookup::Miss {
                redis_answered: true,
                at_least: 0,
            },
            Err(error) => {
                tracing::warn!(key = key.as_str(), error = %error, "cache read failed; reading the source");
                Lookup::Miss {
                    redis_answered: false,
                    at_least: 0,
                }
            }
        };
        let counter = match &lookup {
            Lookup::Hit(..) => &self.counters.hits,
            Lookup::Miss {
                redis_answered: true,
                ..
            } => &self.counters.misses,
            Lookup::Miss {
                redis_answered: false,
                ..
            } => &self.counters.bypasses,
        };
        counter.inc();
        lookup
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
