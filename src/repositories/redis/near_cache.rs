//! A bounded in-process copy of Redis values, kept coherent by Redis
//! itself: the tracking link (`tracking.rs`) hears of every change to a key
//! under the tracked prefixes and drops the copy. While the link is down
//! the copy is empty and bypassed, since changes could go unheard.

mod shard;

use std::hash::Hasher;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use shard::{Fnv, Held, Shard, evict_one};

const SHARDS: usize = 64;

pub struct NearCache {
    shards: Box<[Mutex<Shard>]>,
    per_shard: usize,
    ttl: Duration,
    link_up: AtomicBool,
    /// Bumped by every flush: a fill that started before one is dropped.
    epoch: AtomicU64,
    stats: Stats,
}

/// Taken before reading Redis; the value read may be kept only if no
/// invalidation or flush touched its shard meanwhile, because the
/// invalidation may have overtaken the (older) value on its way here.
#[derive(Debug, Clone, Copy)]
pub struct Ticket {
    shard: usize,
    changes: u64,
    epoch: u64,
}

#[derive(Default)]
struct Stats {
    invalidations: AtomicU64,
    flushes: AtomicU64,
}

/// Counters since start, for `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NearCacheStats {
    pub entries: usize,
    pub hits: u64,
    pub misses: u64,
    pub invalidations: u64,
    pub flushes: u64,
    pub link_up: bool,
}

impl NearCache {
    /// An empty near cache holding up to about `capacity` values, each for
    /// at most `ttl`. It serves nothing until the tracking link is up.
    pub fn new(capacity: usize, ttl: Duration) -> Arc<Self> {
        Arc::new(Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            per_shard: capacity.div_ceil(SHARDS).max(1),
            ttl,
            link_up: AtomicBool::new(false),
            epoch: AtomicU64::new(0),
            stats: Stats::default(),
        })
    }

    fn shard_of(key: &str) -> usize {
        let mut hasher = Fnv::default();
        hasher.write(key.as_bytes());
        // The high bits: the map inside the shard uses the low ones.
        (hasher.finish() >> 58) as usize % SHARDS
    }

    fn lock(&self, shard: usize) -> MutexGuard<'_, Shard> {
        self.shards[shard]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub fn is_serving(&self) -> bool {
        self.link_up.load(Ordering::Acquire)
    }

    pub fn get(&self, key: &str) -> Option<Arc<[u8]>> {
        if !self.is_serving() {
            return None;
        }
        let mut shard = self.lock(Self::shard_of(key));
        let found = match shard.entries.get(key) {
            Some(held) if held.expires > Instant::now() => Some(held.value.clone()),
            Some(_) => {
                shard.entries.remove(key);
                None
            }
            None => None,
        };
        if found.is_some() {
            shard.hits += 1;
        } else {
            shard.misses += 1;
        }
        found
    }

    /// A ticket to keep what is about to be read from Redis under `key`;
    /// `None` while the near cache is not serving.
    pub fn ticket(&self, key: &str) -> Option<Ticket> {
        if !self.is_serving() {
            return None;
        }
        let epoch = self.epoch.load(Ordering::Acquire);
        let shard = Self::shard_of(key);
        let changes = self.lock(shard).changes;
        Some(Ticket {
            shard,
            changes,
            epoch,
        })
    }

    /// Keeps `value`, read from Redis under `key` after `ticket` was taken,
    /// unless something may have changed it since.
    pub fn fill(&self, ticket: Ticket, key: &str, value: &[u8]) {
        let mut shard = self.lock(ticket.shard);
        // Checked under the shard's lock, which invalidations and flushes
        // also take: no change can slip between the check and the insert.
        if shard.changes != ticket.changes
            || self.epoch.load(Ordering::Acquire) != ticket.epoch
            || !self.is_serving()
        {
            return;
        }
        if shard.entries.len() >= self.per_shard && !shard.entries.contains_key(key) {
            evict_one(&mut shard.entries);
        }
        let held = Held {
            value: Arc::from(value),
            expires: Instant::now() + self.ttl,
        };
        shard.entries.insert(Box::from(key), held);
    }

    /// Drops the copy of `key`: Redis said it changed, or this process
    /// just changed it.
    pub fn invalidate(&self, key: &str) {
        let mut shard = self.lock(Self::shard_of(key));
        shard.changes = shard.changes.wrapping_add(1);
        shard.entries.remove(key);
        self.stats.invalidations.fetch_add(1, Ordering::Relaxed);
    }

    /// Drops every copy.
    pub fn flush(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        for index in 0..SHARDS {
            self.lock(index).entries.clear();
        }
        self.stats.flushes.fetch_add(1, Ordering::Relaxed);
    }

    /// The tracking link is (again) up: Redis reports every change from now on.
    pub(super) fn link_established(&self) {
        self.flush();
        self.link_up.store(true, Ordering::Release);
    }

    /// The tracking link is down: changes may go unheard, so nothing is kept.
    pub(super) fn link_lost(&self) {
        if self.link_up.swap(false, Ordering::AcqRel) {
            self.flush();
        }
    }

    pub fn stats(&self) -> NearCacheStats {
        let (mut entries, mut hits, mut misses) = (0, 0, 0);
        for index in 0..SHARDS {
            let shard = self.lock(index);
            entries += shard.entries.len();
            hits += shard.hits;
            misses += shard.misses;
        }
        NearCacheStats {
            entries,
            hits,
            misses,
            invalidations: self.stats.invalidations.load(Ordering::Relaxed),
            flushes: self.stats.flushes.load(Ordering::Relaxed),
            link_up: self.is_serving(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serving(capacity: usize) -> Arc<NearCache> {
        let near = NearCache::new(capacity, Duration::from_secs(60));
        near.link_established();
        near
    }

    fn fill(near: &NearCache, key: &str, value: &[u8]) {
        let ticket = near.ticket(key).unwrap();
        near.fill(ticket, key, value);
    }

    #[test]
    fn a_filled_value_is_served_until_it_is_invalidated() {
        let near = serving(100);
        fill(&near, "app:cache:user:1", b"one");
        assert_eq!(near.get("app:cache:user:1").as_deref(), Some(&b"one"[..]));
        near.invalidate("app:cache:user:1");
        assert_eq!(near.get("app:cache:user:1"), None);
    }

    #[test]
    fn a_value_read_before_an_invalidation_is_not_kept() {
        let near = serving(100);
        let ticket = near.ticket("app:session:user:7").unwrap();
        near.invalidate("app:session:user:7");
        near.fill(ticket, "app:session:user:7", b"old-jti");
        assert_eq!(near.get("app:session:user:7"), None);
    }

    #[test]
    fn a_value_read_before_a_flush_is_not_kept() {
        let near = serving(100);
        let ticket = near.ticket("app:cache:user:2").unwrap();
        near.flush();
        near.fill(ticket, "app:cache:user:2", b"old");
        assert_eq!(near.get("app:cache:user:2"), None);
    }

    #[test]
    fn nothing_is_served_or_kept_while_the_link_is_down() {
        let near = serving(100);
        fill(&near, "app:cache:user:3", b"three");
        near.link_lost();
        assert_eq!(near.get("app:cache:user:3"), None);
        assert!(near.ticket("app:cache:user:3").is_none());
        near.link_established();
        assert_eq!(
            near.get("app:cache:user:3"),
            None,
            "flushed when the link dropped"
        );
    }

    #[test]
    fn the_size_stays_within_its_bound() {
        let near = serving(SHARDS * 2);
        for id in 0..10_000 {
            fill(&near, &format!("app:cache:user:{id}"), b"x");
        }
        assert!(near.stats().entries <= SHARDS * 2);
    }

    #[test]
    fn entries_expire_after_their_ttl() {
        let near = NearCache::new(100, Duration::ZERO);
        near.link_established();
        fill(&near, "app:cache:user:4", b"four");
        assert_eq!(near.get("app:cache:user:4"), None);
    }
}
