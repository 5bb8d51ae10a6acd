use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::services::health::HealthService;
use crate::services::metrics::MetricsService;

pub async fn live() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

pub async fn ready(health: web::Data<HealthService>) -> HttpResponse {
    let readiness = health.readiness().await;
    if readiness.status == "ready" {
        HttpResponse::Ok().json(readiness)
    } else {
        HttpResponse::ServiceUnavailable().json(readiness)
    }
}

pub async fn metrics(metrics: web::Data<MetricsService>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(metrics.render().await)
}
