use actix_web::{HttpResponse, web};
use serde_json::json;

use super::extract::Authenticated;
use crate::error::AppError;
use crate::services::cache_admin::{CacheAdminService, EvictionRequest};
use crate::services::jobs::JobService;

pub async fn evict(
    cache_admin: web::Data<CacheAdminService>,
    Authenticated(principal): Authenticated,
    request: web::Query<EvictionRequest>,
) -> Result<HttpResponse, AppError> {
    let deleted = cache_admin
        .evict_as(&principal, request.into_inner())
        .await?;
    Ok(HttpResponse::Ok().json(json!({ "deleted": deleted })))
}

pub async fn cache_stats(
    cache_admin: web::Data<CacheAdminService>,
    Authenticated(principal): Authenticated,
) -> Result<HttpResponse, AppError> {
    Ok(HttpResponse::Ok().json(cache_admin.stats(&principal).await?))
}

pub async fn job_stats(
    jobs: web::Data<JobService>,
    Authenticated(principal): Authenticated,
) -> Result<HttpResponse, AppError> {
    Ok(HttpResponse::Ok().json(jobs.stats(&principal).await?))
}
