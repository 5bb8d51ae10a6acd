//! What a read of a cache entry found: a usable entry (a hit), or a miss
//! and whether Redis is worth asking again; each read is counted.

use super::representation::DIGEST_HEX_LENGTH;
use super::{CacheAside, Cacheable, Representation};
use crate::repositories::redis::{CacheKey, CachedEntry, RedisError};

/// The version and representation an entry holds, if it holds one in
/// `T`'s current form: not a tombstone, nor what an earlier release wrote.
pub(super) fn usable<T: Cacheable>(entry: CachedEntry) -> Option<(i64, Representation)> {
    let (digest, body) = entry.value?;
    (digest.len() == T::VIEWS * DIGEST_HEX_LENGTH)
        .then_some((entry.version, Representation { body, digest }))
}

/// What the caller's read of an entry found (it reads it itself, e.g. in
/// the same round trip as another key).
pub enum EntryRead {
    /// Redis answered: the entry, if there is one.
    Answered(Option<CachedEntry>),
    /// Redis answered that the entry is missing, but slowly: the cache's
    /// further round trips (lease, second look, fill) would each cost as
    /// much, so the value comes from the source and is not cached.
    SlowMiss,
    /// Redis failed: the value comes from the source.
    Failed(RedisError),
}

pub(super) enum Lookup {
    Hit(String, Vec<u8>),
    Miss {
        /// Whether to take the fill lease and fill: not after a failed or
        /// slow read, which would only wait as long again.
        ask_redis: bool,
        /// The version of the tombstone found, if any: a value loaded for
        /// someone else is good enough only if it is at least this new.
        at_least: i64,
    },
}

impl CacheAside {
    /// Counts the read and says what it found.
    pub(super) fn lookup<T: Cacheable>(&self, key: &CacheKey<T>, cached: EntryRead) -> Lookup {
        let (lookup, counter) = match cached {
            EntryRead::Answered(Some(entry)) => {
                let version = entry.version;
                match usable::<T>(entry) {
                    Some((_, representation)) => (
                        Lookup::Hit(representation.digest, representation.body),
                        &self.counters.hits,
                    ),
                    // A tombstone (invalidated), or an entry of another
                    // format (an earlier release's): reload.
                    None => (
                        Lookup::Miss {
                            ask_redis: true,
                            at_least: version,
                        },
                        &self.counters.misses,
                    ),
                }
            }
            EntryRead::Answered(None) => (
                Lookup::Miss {
                    ask_redis: true,
                    at_least: 0,
                },
                &self.counters.misses,
            ),
            EntryRead::SlowMiss => (
                Lookup::Miss {
                    ask_redis: false,
                    at_least: 0,
                },
                &self.counters.misses,
            ),
            EntryRead::Failed(error) => {
                tracing::warn!(key = key.as_str(), error = %error, "cache read failed; reading the source");
                let miss = Lookup::Miss {
                    ask_redis: false,
                    at_least: 0,
                };
                (miss, &self.counters.bypasses)
            }
        };
        counter.inc();
        lookup
    }
}
