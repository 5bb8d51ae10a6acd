//! Admin eviction of cache entries by suffix or prefix, its preview, and
//! cache stats.
//! Only keys inside the cache namespace `{prefix}cache:` can be touched:
//! the MATCH pattern is built there with the value escaped, and every key
//! SCAN returns is checked again with a plain string test before it goes.

mod selector;

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::json;

use super::audit::{self, AuditService};
use super::cache::CacheCounters;
use super::sessions::Admin;
use crate::domain::UserId;
use crate::error::AppError;
use crate::repositories::redis::{KeyScanner, Keys, NearCache, ScanCursor};
pub use selector::{MAX_SELECTOR_LENGTH, Selector};

/// Keys SCAN looks at per step, and keys per UNLINK.
const BATCH: usize = 500;

/// The cache's figures: this instance's reads, and Redis's own.
#[derive(Debug, Clone)]
pub struct CacheStats {
    /// Cache-aside reads answered from Redis, by this instance since it started.
    pub hits: u64,
    pub misses: u64,
    /// Reads that skipped the cache because Redis failed.
    pub bypasses: u64,
    /// hits / (hits + misses); null before the first read.
    pub hit_ratio: Option<f64>,
    /// Keys in the cache namespace (SCAN count; may include a few repeats
    /// while Redis is rehashing).
    pub keys: u64,
    pub ttl_seconds: u64,
    pub namespace: String,
    pub redis_keyspace_hits: u64,
    pub redis_keyspace_misses: u64,
    pub redis_used_memory_bytes: u64,
}

/// What an eviction with the same selector would delete now.
#[derive(Debug, Clone)]
pub struct EvictionPreview {
    /// How many keys match.
    pub count: u64,
    /// Up to `limit` of them, full Redis key names in byte order.
    pub keys: Vec<String>,
}

pub const DEFAULT_PREVIEW_KEYS: u32 = 20;
pub const MAX_PREVIEW_KEYS: u32 = 100;

/// The keys one selector matches, a SCAN page at a time, each already
/// checked with the literal test.
struct MatchingKeys<'a> {
    scanner: &'a KeyScanner,
    pattern: String,
    namespace: String,
    selector: &'a Selector,
    /// `None` once the walk is over.
    cursor: Option<ScanCursor>,
}

impl MatchingKeys<'_> {
    /// The next page's matching keys (possibly none, possibly repeats of
    /// earlier pages), or `None` when the walk is over.
    async fn next(&mut self) -> Result<Option<Vec<Vec<u8>>>, AppError> {
        let Some(cursor) = self.cursor.take() else {
            return Ok(None);
        };
        // A walk that starts over (a cluster changed under it) only repeats
        // keys: eviction counts what UNLINK reports, the preview a set.
        let page = self.scanner.page(cursor, &self.pattern, BATCH).await?;
        self.cursor = page.next;
        let namespace = self.namespace.as_bytes();
        Ok(Some(
            page.keys
                .into_iter()
                .filter(|key| self.selector.selects(namespace, key))
                .collect(),
        ))
    }

    fn finished(&self) -> bool {
        self.cursor.is_none()
    }
}

#[derive(Clone)]
pub struct CacheAdminService {
    scanner: KeyScanner,
    keys: Keys,
    counters: CacheCounters,
    ttl_seconds: u64,
    near: Arc<NearCache>,
    /// Where evictions through the API are recorded.
    audit: Option<AuditService>,
}

impl CacheAdminService {
    pub fn new(
        scanner: KeyScanner,
        keys: Keys,
        counters: CacheCounters,
        ttl_seconds: u64,
        near: Arc<NearCache>,
    ) -> Self {
        Self {
            scanner,
            keys,
            counters,
            ttl_seconds,
            near,
            audit: None,
        }
    }

    /// Records each eviction made through `evict_as` in the audit log.
    pub fn with_audit(self, audit: AuditService) -> Self {
        Self {
            audit: Some(audit),
            ..self
        }
    }

    /// The HTTP entry point: admins only; 404 when nothing matched.
    pub async fn evict_as(&self, admin: Admin<'_>, selector: &Selector) -> Result<u64, AppError> {
        let deleted = self.evict_recorded(Some(admin.user), selector).await?;
        match deleted {
            0 => Err(AppError::NotFound("matching cache key")),
            deleted => Ok(deleted),
        }
    }

    /// The shell's eviction (`user-api cache evict`): recorded like the
    /// API's, with no actor.
    pub async fn evict_from_shell(&self, selector: &Selector) -> Result<u64, AppError> {
        self.evict_recorded(None, selector).await
    }

    async fn evict_recorded(
        &self,
        actor: Option<UserId>,
        selector: &Selector,
    ) -> Result<u64, AppError> {
        let deleted = self.evict(selector).await?;
        if let Some(audit) = &self.audit {
            let mut details = selector.details();
            details["deleted"] = json!(deleted);
            let event = audit::event("admin.cache_evicted", actor, None, details);
            audit.record(event).await;
        }
        Ok(deleted)
    }

    /// The HTTP preview: admins only; an empty match is an answer, not an
    /// error.
    pub async fn preview_as(
        &self,
        _admin: Admin<'_>,
        selector: &Selector,
        limit: u32,
    ) -> Result<EvictionPreview, AppError> {
        self.preview(selector, limit as usize).await
    }

    /// Deletes the selected cache keys and returns how many were deleted.
    #[tracing::instrument(skip(self))]
    pub async fn evict(&self, selector: &Selector) -> Result<u64, AppError> {
        let mut walk = self.walk(selector);
        let mut batch = Vec::with_capacity(BATCH);
        let mut total = 0;
        while let Some(keys) = walk.next().await? {
            batch.extend(keys);
            if batch.len() >= BATCH || (walk.finished() && !batch.is_empty()) {
                // UNLINK counts only keys that still existed: repeats add 0.
                let deleted = self.scanner.unlink(&batch).await;
                // Whatever UNLINK did, this process forgets its copies at once.
                for key in batch.drain(..) {
                    if let Ok(key) = String::from_utf8(key) {
                        self.near.invalidate(&key);
                    }
                }
                total += deleted?;
            }
        }
        tracing::info!(total, "cache eviction finished");
        Ok(total)
    }

    /// What `evict` would delete now: how many keys, and the first `limit`
    /// of them in byte order (a stable answer for the same keys).
    #[tracing::instrument(skip(self))]
    pub async fn preview(
        &self,
        selector: &Selector,
        limit: usize,
    ) -> Result<EvictionPreview, AppError> {
        let mut walk = self.walk(selector);
        // SCAN may return a key twice; it must not be counted twice.
        let mut seen = HashSet::new();
        while let Some(keys) = walk.next().await? {
            seen.extend(keys);
        }
        let count = seen.len() as u64;
        let mut keys: Vec<Vec<u8>> = seen.into_iter().collect();
        keys.sort_unstable();
        keys.truncate(limit);
        Ok(EvictionPreview {
            count,
            keys: keys
                .iter()
                .map(|key| String::from_utf8_lossy(key).into_owned())
                .collect(),
        })
    }

    fn walk<'a>(&'a self, selector: &'a Selector) -> MatchingKeys<'a> {
        MatchingKeys {
            scanner: &self.scanner,
            pattern: selector.pattern(&self.keys),
            namespace: self.keys.cache_namespace(),
            selector,
            cursor: Some(self.scanner.start()),
        }
    }

    pub async fn stats(&self, _admin: Admin<'_>) -> Result<CacheStats, AppError> {
        let pattern = self.keys.cache_pattern();
        let mut keys = 0;
        let mut cursor = Some(self.scanner.start());
        while let Some(at) = cursor {
            let page = self.scanner.page(at, &pattern, 1000).await?;
            keys = if page.starts_over {
                0
            } else {
                keys + page.keys.len() as u64
            };
            cursor = page.next;
        }
        let (redis_keyspace_hits, redis_keyspace_misses, redis_used_memory_bytes) =
            self.scanner.server_stats().await?;
        let (hits, misses, bypasses) = self.counters.read();
        let reads = hits + misses + bypasses;
        Ok(CacheStats {
            hits,
            misses,
            bypasses,
            hit_ratio: (reads > 0).then(|| hits as f64 / reads as f64),
            keys,
            ttl_seconds: self.ttl_seconds,
            namespace: self.keys.cache_namespace(),
            redis_keyspace_hits,
            redis_keyspace_misses,
            redis_used_memory_bytes,
        })
    }
}
