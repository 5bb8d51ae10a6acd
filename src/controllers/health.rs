use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::services::health::HealthService;

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
