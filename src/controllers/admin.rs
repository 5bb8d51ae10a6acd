use actix_web::{HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

use super::extract::Authenticated;
use crate::error::{AppError, ErrorResponse};
use crate::services::cache_admin::{
    CacheAdminService, CacheStats, EvictionPreview, EvictionRequest, PreviewRequest,
};
use crate::services::jobs::{JobService, JobStats};

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
    let deleted = cache_admin
        .evict_as(&principal, request.into_inner())
        .await?;
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
    let preview = cache_admin
        .preview_as(&principal, request.into_inner())
        .await?;
    Ok(HttpResponse::Ok().json(preview))
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
    Ok(HttpResponse::Ok().json(cache_admin.stats(&principal).await?))
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
    Ok(HttpResponse::Ok().json(jobs.stats(&principal).await?))
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
    let replayed = jobs.replay_all_dead_as(&principal).await?;
    Ok(HttpResponse::Ok().json(Replayed { replayed }))
}
