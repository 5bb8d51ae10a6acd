//! Admin cache eviction, its preview, and the cache and queue figures.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::extract::Authenticated;
use crate::error::Problems;
use crate::error::{AppError, ErrorResponse};
use crate::services::cache_admin::{
    self, CacheAdminService, DEFAULT_PREVIEW_KEYS, MAX_PREVIEW_KEYS, Selector,
};
use crate::services::jobs::{self, JobService};

/// Exactly one of the two, non-empty, at most 256 bytes; taken literally.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EvictionRequest {
    /// Keys ending with this, e.g. `:42`: every cached entry of user 42.
    #[param(example = ":42")]
    suffix: Option<String>,
    /// Keys starting with this, e.g. `user:`: every cached user.
    #[param(example = "user:")]
    prefix: Option<String>,
}

/// The preview's query: a selector as for the eviction, and how many keys
/// to show.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PreviewRequest {
    /// Keys ending with this, as for the eviction.
    #[param(example = ":42")]
    suffix: Option<String>,
    /// Keys starting with this, as for the eviction.
    #[param(example = "user:")]
    prefix: Option<String>,
    /// How many of the keys to list: 1 to 100, default 20.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100, example = 20)]
    limit: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"hits": 120, "misses": 8, "bypasses": 0, "hit_ratio": 0.9375, "keys": 8,
    "ttl_seconds": 300, "namespace": "app:cache:", "redis_keyspace_hits": 400,
    "redis_keyspace_misses": 30, "redis_used_memory_bytes": 1048576}))]
pub struct CacheStats {
    /// Cache-aside reads answered from Redis, by this instance since it started.
    hits: u64,
    misses: u64,
    /// Reads that skipped the cache because Redis failed.
    bypasses: u64,
    /// hits / (hits + misses); null before the first read.
    #[schema(required = true)]
    hit_ratio: Option<f64>,
    /// Keys in the cache namespace (SCAN count; may include a few repeats
    /// while Redis is rehashing).
    keys: u64,
    ttl_seconds: u64,
    namespace: String,
    redis_keyspace_hits: u64,
    redis_keyspace_misses: u64,
    redis_used_memory_bytes: u64,
}

impl From<cache_admin::CacheStats> for CacheStats {
    fn from(stats: cache_admin::CacheStats) -> Self {
        Self {
            hits: stats.hits,
            misses: stats.misses,
            bypasses: stats.bypasses,
            hit_ratio: stats.hit_ratio,
            keys: stats.keys,
            ttl_seconds: stats.ttl_seconds,
            namespace: stats.namespace,
            redis_keyspace_hits: stats.redis_keyspace_hits,
            redis_keyspace_misses: stats.redis_keyspace_misses,
            redis_used_memory_bytes: stats.redis_used_memory_bytes,
        }
    }
}

/// What an eviction with the same selector would delete now.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"count": 2, "keys": ["app:cache:user:42", "app:cache:user:142"]}))]
pub struct EvictionPreview {
    /// How many keys match.
    count: u64,
    /// Up to `limit` of them, full Redis key names in byte order.
    keys: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct QueueCounts {
    /// In the stream, not yet taken by a worker.
    pending: u64,
    /// Taken by a worker, not yet acknowledged.
    in_flight: u64,
    /// Failed, waiting for their next attempt.
    delayed: u64,
    dead: u64,
    /// Total retries scheduled and jobs delivered, since the queue began.
    retried: u64,
    delivered: u64,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"pending": 0, "in_flight": 1, "delayed": 0, "dead": 0, "retried": 2,
    "delivered": 57, "outbox": 1}))]
pub struct JobStats {
    #[serde(flatten)]
    queue: QueueCounts,
    /// Committed in SQL and not done yet (handed to Redis or not).
    outbox: u64,
}

impl From<jobs::JobStats> for JobStats {
    fn from(stats: jobs::JobStats) -> Self {
        Self {
            queue: QueueCounts {
                pending: stats.queue.pending,
                in_flight: stats.queue.in_flight,
                delayed: stats.queue.delayed,
                dead: stats.queue.dead,
                retried: stats.queue.retried,
                delivered: stats.queue.delivered,
            },
            outbox: stats.outbox,
        }
    }
}

/// How many cache keys were deleted.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"deleted": 3}))]
pub struct Evicted {
    deleted: u64,
}

/// Evict cache entries
///
/// Admins only. Deletes the cache entries whose key, after
/// `{prefix}cache:`, ends with `suffix` or starts with `prefix`: give
/// exactly one. The value is literal text (`*`, `?`, `[`, `]` and `\` match
/// only themselves). Never touches sessions, locks, queues or rate-limit
/// counters.
#[utoipa::path(delete, path = "/api/v1/admin/cache/keys", tag = "admin", operation_id = "evictCacheKeys",
    security(("bearer" = [])),
    params(EvictionRequest),
    responses(
        (status = 200, description = "Deleted", body = Evicted),
        (status = 403, description = "`forbidden`: admins only", body = ErrorResponse),
        (status = 404, description = "`not_found`: nothing matched", body = ErrorResponse),
        (status = 422, description = "`validation_failed`: neither, both, empty or longer than 256 bytes", body = ErrorResponse),
    ))]
pub async fn evict(
    cache_admin: web::Data<CacheAdminService>,
    Authenticated(principal): Authenticated,
    request: web::Query<EvictionRequest>,
) -> Result<HttpResponse, AppError> {
    let admin = principal.require_admin()?;
    let web::Query(EvictionRequest { suffix, prefix }) = request;
    let selector =
        Selector::parse(suffix, prefix).map_err(|error| AppError::Validation(vec![error]))?;
    let deleted = cache_admin.evict_as(admin, &selector).await?;
    Ok(HttpResponse::Ok().json(Evicted { deleted }))
}

/// Preview an eviction
///
/// Admins only. What `evictCacheKeys` with the same selector would delete
/// now: how many keys, and up to `limit` of them. The same selector rules
/// and errors, except that an empty match is a 200 with a count of 0.
#[utoipa::path(get, path = "/api/v1/admin/cache/keys", tag = "admin", operation_id = "previewCacheEviction",
    security(("bearer" = [])),
    params(PreviewRequest),
    responses(
        (status = 200, description = "The matching keys", body = EvictionPreview),
        (status = 403, description = "`forbidden`: admins only", body = ErrorResponse),
        (status = 422, description = "`validation_failed`: neither, both, empty or too long; a limit outside 1-100", body = ErrorResponse),
    ))]
pub async fn preview_eviction(
    cache_admin: web::Data<CacheAdminService>,
    Authenticated(principal): Authenticated,
    request: web::Query<PreviewRequest>,
) -> Result<HttpResponse, AppError> {
    let admin = principal.require_admin()?;
    let web::Query(request) = request;
    let mut problems = Problems::default();
    let selector = problems.field(Selector::parse(request.suffix, request.prefix));
    let limit = problems.limit(
        request.limit.as_deref(),
        "limit",
        DEFAULT_PREVIEW_KEYS,
        MAX_PREVIEW_KEYS,
    );
    let selector = problems.or(selector)?;
    let preview = cache_admin.preview_as(admin, &selector, limit).await?;
    Ok(HttpResponse::Ok().json(EvictionPreview {
        count: preview.count,
        keys: preview.keys,
    }))
}

/// Cache figures
///
/// Admins only. Hits and misses of this instance since it started, keys in
/// the cache namespace, and Redis's own keyspace figures.
#[utoipa::path(get, path = "/api/v1/admin/cache/stats", tag = "admin", operation_id = "getCacheStats",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Cache figures", body = CacheStats),
        (status = 403, description = "`forbidden`: admins only", body = ErrorResponse),
    ))]
pub async fn cache_stats(
    cache_admin: web::Data<CacheAdminService>,
    Authenticated(principal): Authenticated,
) -> Result<HttpResponse, AppError> {
    let stats = cache_admin.stats(principal.require_admin()?).await?;
    Ok(HttpResponse::Ok().json(CacheStats::from(stats)))
}

/// Job queue figures
///
/// Admins only. Jobs pending, in flight, delayed and dead, totals, and
/// outbox rows not yet done.
#[utoipa::path(get, path = "/api/v1/admin/jobs/stats", tag = "admin", operation_id = "getJobStats",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Queue figures", body = JobStats),
        (status = 403, description = "`forbidden`: admins only", body = ErrorResponse),
    ))]
pub async fn job_stats(
    jobs: web::Data<JobService>,
    Authenticated(principal): Authenticated,
) -> Result<HttpResponse, AppError> {
    let stats = jobs.stats(principal.require_admin()?).await?;
    Ok(HttpResponse::Ok().json(JobStats::from(stats)))
}

/// How many dead jobs went back into the queue.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"replayed": 2}))]
pub struct Replayed {
    replayed: u64,
}

/// Replay dead jobs
///
/// Admins only. Puts every dead-lettered job back in the queue, with fresh
/// attempts.
#[utoipa::path(post, path = "/api/v1/admin/jobs/dead/replay", tag = "admin", operation_id = "replayDeadJobs",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Replayed (0 when none was dead)", body = Replayed),
        (status = 403, description = "`forbidden`: admins only", body = ErrorResponse),
    ))]
pub async fn replay_dead_jobs(
    jobs: web::Data<JobService>,
    Authenticated(principal): Authenticated,
) -> Result<HttpResponse, AppError> {
    let replayed = jobs.replay_all_dead_as(principal.require_admin()?).await?;
    Ok(HttpResponse::Ok().json(Replayed { replayed }))
}
