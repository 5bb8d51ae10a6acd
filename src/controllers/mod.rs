//! HTTP only: routes, extraction, and mapping service results to responses.

mod accounts;
mod admin;
mod auth;
pub mod client_guard;
pub mod client_ip;
pub mod cors;
mod extract;
mod health;
pub mod openapi;
mod rate_limit;
pub mod security_headers;
mod sessions;
mod users;

use actix_web::middleware::from_fn;
use actix_web::{HttpResponse, Resource, web};

use crate::error::AppError;
pub use auth::RefreshCookie;
pub use extract::BODY_LIMIT;

/// Every route of the service. Used by `startup` and nothing else, so tests
/// exercise exactly what production serves.
pub fn configure(config: &mut web::ServiceConfig) {
    config
        .app_data(web::PayloadConfig::new(BODY_LIMIT))
        .app_data(web::PathConfig::default().error_handler(extract::path_error))
        .app_data(web::QueryConfig::default().error_handler(extract::query_error))
        .service(
            web::scope("/api/v1")
                .wrap(from_fn(rate_limit::limit_requests))
                .service(resource("/auth/register").route(web::post().to(auth::register)))
                .service(resource("/auth/login").route(web::post().to(auth::login)))
                .service(resource("/auth/refresh").route(web::post().to(auth::refresh)))
                .service(resource("/auth/logout").route(web::post().to(auth::logout)))
                .service(resource("/auth/logout-all").route(web::post().to(sessions::logout_all)))
                .service(resource("/auth/sessions").route(web::get().to(sessions::list)))
                .service(resource("/auth/sessions/{id}").route(web::delete().to(sessions::end_one)))
                .service(resource("/auth/password").route(web::put().to(auth::change_password)))
                .service(
                    resource("/auth/password/forgot")
                        .route(web::post().to(accounts::forgot_password)),
                )
                .service(
                    resource("/auth/password/reset")
                        .route(web::post().to(accounts::reset_password)),
                )
                .service(
                    resource("/auth/verify-email").route(web::post().to(accounts::verify_email)),
                )
                .service(
                    resource("/auth/verify-email/resend")
                        .route(web::post().to(accounts::resend_verification)),
                )
                .service(resource("/users/me").route(web::get().to(users::me)))
                .service(
                    resource("/users/{id}")
                        .route(web::get().to(users::get))
                        .route(web::put().to(users::update))
                        .route(web::delete().to(users::delete)),
                )
                .service(
                    resource("/users/{id}/sessions")
                        .route(web::delete().to(sessions::end_user_sessions)),
                )
                .service(resource("/users").route(web::get().to(users::list)))
                .service(
                    resource("/admin/cache/keys")
                        .route(web::get().to(admin::preview_eviction))
                        .route(web::delete().to(admin::evict)),
                )
                .service(resource("/admin/cache/stats").route(web::get().to(admin::cache_stats)))
                .service(resource("/admin/jobs/stats").route(web::get().to(admin::job_stats)))
                .service(
                    resource("/admin/jobs/dead/replay")
                        .route(web::post().to(admin::replay_dead_jobs)),
                ),
        )
        .service(resource("/health/live").route(web::get().to(health::live)))
        .service(resource("/health/ready").route(web::get().to(health::ready)))
        .service(resource("/metrics").route(web::get().to(health::metrics)))
        .configure(openapi::configure)
        .default_service(web::to(not_found));
}

/// A resource whose unsupported methods get 405 in the envelope.
fn resource(path: &str) -> Resource {
    web::resource(path).default_service(web::to(method_not_allowed))
}

async fn not_found() -> Result<HttpResponse, AppError> {
    Err(AppError::NotFound("resource"))
}

async fn method_not_allowed() -> Result<HttpResponse, AppError> {
    Err(AppError::MethodNotAllowed)
}
