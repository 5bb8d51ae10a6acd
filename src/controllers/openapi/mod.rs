//! The OpenAPI document, generated from the handlers' annotations and
//! completed by `conventions`, and the `/docs` page (Swagger UI, its files
//! compiled into the binary).

mod conventions;

use std::sync::LazyLock;

use actix_web::{HttpResponse, web};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::SwaggerUi;

use super::{accounts, admin, audit, auth, health, sessions, users};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "user-api",
        description = "Users and accounts for frontend apps, served over a Redis cache.\n\n\
            Authenticated operations take `Authorization: Bearer <access_token>` from `login`. \
            Every error has one shape, `{\"error\": {\"code\", \"message\", \"details\"?, \
            \"request_id\"}}`; `code` is one of `ErrorCode` and is what a program should act on. \
            Every `/api` response carries `RateLimit-Limit`, `RateLimit-Remaining` and \
            `RateLimit-Reset`; 429 and 503 add `Retry-After`. Bodies over 64 KiB get 413; \
            unknown JSON fields are refused with 422.",
    ),
    paths(
        auth::register, auth::login, auth::refresh, auth::logout, auth::change_password,
        accounts::verify_email, accounts::resend_verification, accounts::forgot_password,
        accounts::reset_password,
        sessions::logout_all, sessions::list, sessions::end_one, sessions::end_user_sessions,
        users::me, users::get, users::update, users::patch, users::delete, users::list,
        audit::list, admin::evict, admin::preview_eviction, admin::cache_stats, admin::job_stats,
        admin::replay_dead_jobs,
        health::live, health::ready, health::metrics,
    ),
    components(schemas(crate::error::ErrorCode)),
    modifiers(&BearerAuth),
    tags(
        (name = "accounts", description = "Registration, login, sessions, e-mail verification, password reset"),
        (name = "users", description = "Users, served cache-aside"),
        (name = "admin", description = "Cache eviction and queue figures (admins)"),
        (name = "operations", description = "Health and metrics"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some("The `access_token` from `login`"))
                    .build(),
            ),
        );
    }
}

/// The document served at `/openapi.json`, built once per process.
pub fn document() -> serde_json::Value {
    static DOCUMENT: LazyLock<serde_json::Value> = LazyLock::new(|| {
        let mut document = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
        conventions::apply(&mut document);
        document
    });
    DOCUMENT.clone()
}

/// `/openapi.json`, `/docs/` and a redirect from `/docs`.
pub fn configure(config: &mut web::ServiceConfig) {
    config
        .service(SwaggerUi::new("/docs/{_:.*}").external_url_unchecked("/openapi.json", document()))
        .route(
            "/docs",
            web::get().to(|| async {
                HttpResponse::PermanentRedirect()
                    .insert_header(("Location", "/docs/"))
                    .finish()
            }),
        );
}
