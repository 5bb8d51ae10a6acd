//! HTTP only: routes, extraction, and mapping service results to responses.

mod accounts;
mod admin;
mod audit;
mod auth;
pub mod client_guard;
pub mod client_ip;
mod console;
pub mod cors;
mod extract;
mod health;
pub mod openapi;
mod rate_limit;
pub mod security_headers;
mod sessions;
mod users;

use actix_web::body::EitherBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{StatusCode, header};
use actix_web::middleware::from_fn;
use actix_web::{HttpRequest, HttpResponse, Resource, ResponseError, web};

use crate::error::AppError;
pub use auth::RefreshCookie;
pub use extract::BODY_LIMIT;

/// Every route of the service but `/metrics` (see `configure_metrics`).
/// Used by `startup` and nothing else, so tests exercise exactly what
/// production serves.
pub fn configure(config: &mut web::ServiceConfig) {
    config
        .app_data(web::PayloadConfig::new(BODY_LIMIT))
        .app_data(web::PathConfig::default().error_handler(extract::path_error))
        .app_data(web::QueryConfig::default().error_handler(extract::query_error))
        .service(
            web::scope("/api/v1")
                .wrap(from_fn(rate_limit::limit_requests))
                .service(resource("/auth/register", "POST").route(web::post().to(auth::register)))
                .service(resource("/auth/login", "POST").route(web::post().to(auth::login)))
                .service(resource("/auth/refresh", "POST").route(web::post().to(auth::refresh)))
                .service(resource("/auth/logout", "POST").route(web::post().to(auth::logout)))
                .service(
                    resource("/auth/logout-all", "POST")
                        .route(web::post().to(sessions::logout_all)),
                )
                .service(resource("/auth/sessions", "GET").route(web::get().to(sessions::list)))
                .service(
                    resource("/auth/sessions/{id}", "DELETE")
                        .route(web::delete().to(sessions::end_one)),
                )
                .service(
                    resource("/auth/password", "PUT").route(web::put().to(auth::change_password)),
                )
                .service(
                    resource("/auth/password/forgot", "POST")
                        .route(web::post().to(accounts::forgot_password)),
                )
                .service(
                    resource("/auth/password/reset", "POST")
                        .route(web::post().to(accounts::reset_password)),
                )
                .service(
                    resource("/auth/verify-email", "POST")
                        .route(web::post().to(accounts::verify_email)),
                )
                .service(
                    resource("/auth/verify-email/resend", "POST")
                        .route(web::post().to(accounts::resend_verification)),
                )
                .service(resource("/users/me", "GET").route(web::get().to(users::me)))
                .service(
                    resource("/users/{id}", "GET, PUT, PATCH, DELETE")
                        .route(web::get().to(users::get))
                        .route(web::put().to(users::update))
                        .route(web::patch().to(users::patch))
                        .route(web::delete().to(users::delete)),
                )
                .service(
                    resource("/users/{id}/sessions", "DELETE")
                        .route(web::delete().to(sessions::end_user_sessions)),
                )
                .service(resource("/users", "GET").route(web::get().to(users::list)))
                .service(
                    resource("/admin/cache/keys", "GET, DELETE")
                        .route(web::get().to(admin::preview_eviction))
                        .route(web::delete().to(admin::evict)),
                )
                .service(resource("/admin/audit", "GET").route(web::get().to(audit::list)))
                .service(
                    resource("/admin/cache/stats", "GET").route(web::get().to(admin::cache_stats)),
                )
                .service(
                    resource("/admin/jobs/stats", "GET").route(web::get().to(admin::job_stats)),
                )
                .service(
                    resource("/admin/jobs/dead/replay", "POST")
                        .route(web::post().to(admin::replay_dead_jobs)),
                ),
        )
        .service(resource("/admin", "GET").route(web::get().to(console::page)))
        .service(resource("/admin/assets/{name}", "GET").route(web::get().to(console::asset)))
        .service(resource("/health/live", "GET").route(web::get().to(health::live)))
        .service(resource("/health/ready", "GET").route(web::get().to(health::ready)))
        .configure(openapi::configure)
        .default_service(web::to(not_found));
}

/// `/metrics`, on the main port unless `server.metrics_port` is set.
pub fn configure_metrics(config: &mut web::ServiceConfig) {
    config.service(resource("/metrics", "GET").route(web::get().to(health::metrics)));
}

/// The metrics listener of `server.metrics_port`: `/metrics` and nothing else.
pub fn configure_metrics_listener(config: &mut web::ServiceConfig) {
    configure_metrics(config);
    config.default_service(web::to(not_found));
}

/// A resource whose other methods get 405 in the envelope, with `Allow`
/// listing `allow` (the methods routed on it).
fn resource(path: &str, allow: &'static str) -> Resource {
    web::resource(path).default_service(web::to(move |request: HttpRequest| {
        method_not_allowed(request, allow)
    }))
}

async fn not_found(request: HttpRequest) -> Result<HttpResponse, AppError> {
    cors::refuse_preflight(&request)?;
    Err(AppError::NotFound("resource"))
}

async fn method_not_allowed(
    request: HttpRequest,
    allow: &'static str,
) -> Result<HttpResponse, AppError> {
    cors::refuse_preflight(&request)?;
    Err(AppError::MethodNotAllowed(allow))
}

/// What is refused before routing: a declared body over `BODY_LIMIT` gets
/// 413 on every route, whether or not its handler would read the body.
pub fn refuse_before_routing(request: &ServiceRequest) -> Option<HttpResponse> {
    let length: u64 = request
        .headers()
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()?;
    (length > BODY_LIMIT as u64).then(|| AppError::PayloadTooLarge.error_response())
}

/// A 404 without a body (an unknown file under `/docs/`, from the Swagger
/// UI service) gets the error envelope like every other.
pub fn envelope_bare_not_found<B>(response: ServiceResponse<B>) -> ServiceResponse<EitherBody<B>> {
    if response.status() == StatusCode::NOT_FOUND
        && !response.headers().contains_key(header::CONTENT_TYPE)
    {
        let (request, _) = response.into_parts();
        let envelope = AppError::NotFound("resource").error_response();
        return ServiceResponse::new(request, envelope).map_into_right_body();
    }
    response.map_into_left_body()
}
