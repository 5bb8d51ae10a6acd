//! Admin eviction of cache entries by suffix or prefix, its preview, and
//! cache stats.
//! Only keys inside the cache namespace `{prefix}cache:` can be touched:
//! the MATCH pattern is built there with the value escaped, and every key
//! SCAN returns is checked again with a plain string test before it goes.

use std::collections::HashSet;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use super::audit::{self, AuditService};
use super::auth::Principal;
use super::cache::CacheCounters;
use crate::domain::UserId;
use crate::error::{AppError, FieldError};
use crate::repositories::redis::{KeyScanner, Keys, NearCache, ScanCursor};

/// Longer values are refused: crafted MATCH patterns have hung servers.
pub const MAX_SELECTOR_LENGTH: usize = 256;
/// Keys SCAN looks at per step, and keys per UNLINK.
const BATCH: usize = 500;

/// Exactly one of the two, non-empty, at most 256 bytes; taken literally.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EvictionRequest {
    /// Keys ending with this, e.g. `:42`: every cached entry of user 42.
    #[param(example = ":42")]
    pub suffix: Option<String>,
    /// Keys starting with this, e.g. `user:`: every cached user.
    #[param(example = "user:")]
    pub prefix: Option<String>,
}

/// Which cache keys to evict, by the part after the namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    Suffix(String),
    Prefix(String),
}

impl Selector {
    pub fn parse(request: EvictionRequest) -> Result<Self, AppError> {
        let invalid = |field: &str, message: &str| {
            Err(AppError::Validation(vec![FieldError::new(field, message)]))
        };
        let selector = match (request.suffix, request.prefix) {
            (Some(suffix), None) => Selector::Suffix(suffix),
            (None, Some(prefix)) => Selector::Prefix(prefix),
            (None, None) => return invalid("suffix", "give exactly one of suffix or prefix"),
            (Some(_), Some(_)) => return invalid("prefix", "give only one of suffix or prefix"),
        };
        let (field, value) = match &selector {
            Selector::Suffix(value) => ("suffix", value),
            Selector::Prefix(value) => ("prefix", value),
        };
        if value.is_empty() {
            return invalid(field, "must not be empty");
        }
        if value.len() > MAX_SELECTOR_LENGTH {
            return invalid(field, "must be at most 256 bytes long");
        }
        Ok(selector)
    }

    fn pattern(&self, keys: &Keys) -> String {
        match self {
            Selector::Suffix(suffix) => keys.cache_suffix_pattern(suffix),
            Selector::Prefix(prefix) => keys.cache_prefix_pattern(prefix),
        }
    }

    /// The literal test every key must pass, whatever SCAN returned.
    fn selects(&self, namespace: &[u8], key: &[u8]) -> bool {
        let Some(name) = key.strip_prefix(namespace) else {
            return false;
        };
        match self {
            Selector::Suffix(suffix) => name.ends_with(suffix.as_bytes()),
            Selector::Prefix(prefix) => name.starts_with(prefix.as_bytes()),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"hits": 120, "misses": 8, "bypasses": 0, "hit_ratio": 0.9375, "keys": 8,
    "ttl_seconds": 300, "namespace": "app:cache:", "redis_keyspace_hits": 400,
    "redis_keyspace_misses": 30, "redis_used_memory_bytes": 1048576}))]
pub struct CacheStats {
    /// Cache-aside reads answered from Redis, by this instance since it started.
    pub hits: u64,
    pub misses: u64,
    /// Reads that skipped the cache because Redis failed.
    pub bypasses: u64,
    /// hits / (hits + misses); null before the first read.
    #[schema(required = true)]
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

/// The preview's query: a selector as for the eviction, and how many keys
/// to show.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PreviewRequest {
    /// Keys ending with this, as for the eviction.
    #[param(example = ":42")]
    pub suffix: Option<String>,
    /// Keys starting with this, as for the eviction.
    #[param(example = "user:")]
    pub prefix: Option<String>,
    /// How many of the keys to list: 1 to 100, default 20.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100, example = 20)]
    pub limit: Option<String>,
}

/// What an eviction with the same selector would delete now.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"count": 2, "keys": ["app:cache:user:42", "app:cache:user:142"]}))]
pub struct EvictionPreview {
    /// How many keys match.
    pub count: u64,
    /// Up to `limit` of them, full Redis key names in byte order.
    pub keys: Vec<String>,
}

pub const DEFAULT_PREVIEW_KEYS: usize = 20;
pub const MAX_PREVIEW_KEYS: usize = 100;

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
    pub async fn evict_as(
        &self,
        actor: &Principal,
        request: EvictionRequest,
    ) -> Result<u64, AppError> {
        actor.require_admin()?;
        let deleted = self.evict_recorded(Some(actor.user), request).await?;
        match deleted {
            0 => Err(AppError::NotFound("matching cache key")),
            deleted => Ok(deleted),
        }
    }

    /// The shell's eviction (`user-api cache evict`): recorded like the
    /// API's, with no actor.
    pub async fn evict_from_shell(&self, request: EvictionRequest) -> Result<u64, AppError> {
        self.evict_recorded(None, request).await
    }

    async fn evict_recorded(
        &self,
        actor: Option<UserId>,
        request: EvictionRequest,
    ) -> Result<u64, AppError> {
        let mut details = json!({"suffix": request.suffix, "prefix": request.prefix});
        let deleted = self.evict(&Selector::parse(request)?).await?;
        if let Some(audit) = &self.audit {
            details["deleted"] = json!(deleted);
            let event = audit::event("admin.cache_evicted", actor, None, details);
            audit.record(event).await;
        }
        Ok(deleted)
    }

    /// The HTTP preview: admins only; the same selector rules as
    /// `evict_as`, but an empty match is an answer, not an error.
    pub async fn preview_as(
        &self,
        actor: &Principal,
        request: PreviewRequest,
    ) -> Result<EvictionPreview, AppError> {
        actor.require_admin()?;
        let limit = match request.limit.as_deref().map(str::parse::<usize>) {
            None => Ok(DEFAULT_PREVIEW_KEYS),
            Some(Ok(limit)) if (1..=MAX_PREVIEW_KEYS).contains(&limit) => Ok(limit),
            Some(_) => Err(FieldError::new(
                "limit",
                "must be a whole number from 1 to 100",
            )),
        };
        let selector = Selector::parse(EvictionRequest {
            suffix: request.suffix,
            prefix: request.prefix,
        });
        match (selector, limit) {
            (Ok(selector), Ok(limit)) => self.preview(&selector, limit).await,
            (Err(AppError::Validation(mut errors)), Err(limit)) => {
                errors.push(limit);
                Err(AppError::Validation(errors))
            }
            (Err(error), _) => Err(error),
            (_, Err(limit)) => Err(AppError::Validation(vec![limit])),
        }
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

    pub async fn stats(&self, actor: &Principal) -> Result<CacheStats, AppError> {
        actor.require_admin()?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn request(suffix: Option<&str>, prefix: Option<&str>) -> EvictionRequest {
        EvictionRequest {
            suffix: suffix.map(str::to_string),
            prefix: prefix.map(str::to_string),
        }
    }

    #[test]
    fn exactly_one_non_empty_short_selector_is_accepted() {
        assert_eq!(
            Selector::parse(request(Some(":1"), None)).unwrap(),
            Selector::Suffix(":1".into())
        );
        assert_eq!(
            Selector::parse(request(None, Some("user:"))).unwrap(),
            Selector::Prefix("user:".into())
        );
        for bad in [
            request(None, None),
            request(Some("a"), Some("b")),
            request(Some(""), None),
            request(None, Some(&"x".repeat(257))),
        ] {
            assert!(Selector::parse(bad).is_err());
        }
    }

    #[test]
    fn the_literal_test_stays_inside_the_namespace() {
        let namespace = b"app:cache:";
        let suffix = Selector::Suffix(":1".into());
        assert!(suffix.selects(namespace, b"app:cache:user:1"));
        assert!(!suffix.selects(namespace, b"app:cache:user:11"));
        assert!(!suffix.selects(namespace, b"app:session:user:1"));
        let star = Selector::Prefix("*".into());
        assert!(!star.selects(namespace, b"app:cache:user:1"));
        assert!(star.selects(namespace, b"app:cache:*weird"));
    }
}
