//! One shard of the near cache: its entries and counters (all behind the
//! shard's one lock), the FNV-1a hash of its keys, and eviction when full.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;
use std::time::Instant;

#[derive(Default)]
pub(super) struct Shard {
    pub(super) entries: HashMap<Box<str>, Held, BuildHasherDefault<Fnv>>,
    /// Bumped by every invalidation of a key in this shard.
    pub(super) changes: u64,
    /// Counted under the shard's lock, so the hot path shares no counter
    /// between cores.
    pub(super) hits: u64,
    pub(super) misses: u64,
}

/// FNV-1a: fast for short keys that differ mostly in their last digits;
/// the keys are ours, not an attacker's choice of hash collisions.
pub(super) struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0 ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

pub(super) struct Held {
    pub(super) value: Arc<[u8]>,
    pub(super) expires: Instant,
}

/// Makes room: an expired entry if the first few hold one, else any.
pub(super) fn evict_one(entries: &mut HashMap<Box<str>, Held, BuildHasherDefault<Fnv>>) {
    let now = Instant::now();
    let victim = entries
        .iter()
        .take(8)
        .find(|(_, held)| held.expires <= now)
        .or_else(|| entries.iter().next())
        .map(|(key, _)| key.clone());
    if let Some(victim) = victim {
        entries.remove(&victim);
    }
}
