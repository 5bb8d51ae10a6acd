use actix_web::{HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

use crate::services::health::{self, HealthService};
use crate::services::metrics::MetricsService;

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"status": "ready", "checks": {"redis": "ok", "database": "ok"}}))]
pub struct Readiness {
    status: ReadinessStatus,
    checks: Checks,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReadinessStatus {
    Ready,
    Unavailable,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Checks {
    redis: CheckState,
    database: CheckState,
}

/// One dependency's answer to its check (bounded to 1 s).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CheckState {
    Ok,
    Failing,
    Timeout,
}

impl From<health::CheckState> for CheckState {
    fn from(state: health::CheckState) -> Self {
        match state {
            health::CheckState::Ok => Self::Ok,
            health::CheckState::Failing => Self::Failing,
            health::CheckState::Timeout => Self::Timeout,
        }
    }
}

impl From<health::Checks> for Readiness {
    fn from(checks: health::Checks) -> Self {
        Self {
            status: if checks.all_ok() {
                ReadinessStatus::Ready
            } else {
                ReadinessStatus::Unavailable
            },
            checks: Checks {
                redis: checks.redis.into(),
                database: checks.database.into(),
            },
        }
    }
}

/// The body of `/health/live`.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"status": "ok"}))]
pub struct Liveness {
    status: LiveStatus,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
enum LiveStatus {
    Ok,
}

/// Is the process running
///
/// 200 while the process runs, whatever its dependencies do: a container
/// orchestrator restarts the process when this fails.
#[utoipa::path(get, path = "/health/live", tag = "operations", operation_id = "getLiveness",
    responses((status = 200, description = "The process runs", body = Liveness)))]
pub async fn live() -> HttpResponse {
    HttpResponse::Ok().json(Liveness {
        status: LiveStatus::Ok,
    })
}

/// Can the service answer requests
///
/// 200 when Redis and the database both answer their check within 1 s; 503
/// with each check's state otherwise. A load balancer sends traffic only to
/// ready instances.
#[utoipa::path(get, path = "/health/ready", tag = "operations", operation_id = "getReadiness",
    responses(
        (status = 200, description = "Ready", body = Readiness),
        (status = 503, description = "A dependency does not answer; `checks` says which", body = Readiness,
            example = json!({"status": "unavailable", "checks": {"redis": "timeout", "database": "ok"}})),
    ))]
pub async fn ready(health: web::Data<HealthService>) -> HttpResponse {
    let readiness = Readiness::from(health.readiness().await);
    if readiness.status == ReadinessStatus::Ready {
        HttpResponse::Ok().json(readiness)
    } else {
        HttpResponse::ServiceUnavailable().json(readiness)
    }
}

/// Prometheus metrics
///
/// The Prometheus text exposition format (version 0.0.4): requests and
/// latencies by route, cache hits and misses, rate-limit decisions, pool
/// use and queue depth.
#[utoipa::path(get, path = "/metrics", tag = "operations", operation_id = "getMetrics",
    responses((status = 200, description = "Prometheus text exposition",
        content_type = "text/plain", body = String,
        example = "# TYPE http_requests_total counter\nhttp_requests_total{method=\"GET\",route=\"/health/live\",status=\"200\"} 1\n")))]
pub async fn metrics(metrics: web::Data<MetricsService>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(metrics.render().await)
}
