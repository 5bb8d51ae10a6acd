//! Sessions: list them, end one, end all (the caller's, or a user's).

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::RefreshCookie;
use super::extract::{Authenticated, PathUserId};
use crate::error::{AppError, ErrorResponse};
use crate::services::auth::AuthService;

/// End every session of the caller at once, on every device.
#[utoipa::path(post, path = "/api/v1/auth/logout-all", tag = "accounts",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Every session ended"),
        (status = 401, description = "`unauthorized`", body = ErrorResponse),
        (status = 429, description = "`rate_limited`", body = ErrorResponse),
        (status = 503, description = "`unavailable`", body = ErrorResponse),
    ))]
pub async fn logout_all(
    auth: web::Data<AuthService>,
    cookie: web::Data<RefreshCookie>,
    Authenticated(principal): Authenticated,
) -> Result<HttpResponse, AppError> {
    auth.logout_all(&principal).await?;
    let mut response = HttpResponse::NoContent();
    if cookie.enabled {
        response.cookie(RefreshCookie::cleared());
    }
    Ok(response.finish())
}

/// A live session of the caller.
#[derive(Serialize, ToSchema)]
pub struct SessionResponse {
    id: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    created_at: time::OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    last_used_at: time::OffsetDateTime,
    user_agent: Option<String>,
    ip: Option<String>,
    /// The session of the token this request carried.
    current: bool,
}

#[derive(Serialize, ToSchema)]
pub struct SessionList {
    items: Vec<SessionResponse>,
}

/// The caller's live sessions, newest first.
#[utoipa::path(get, path = "/api/v1/auth/sessions", tag = "accounts",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Live sessions", body = SessionList),
        (status = 401, description = "`unauthorized`", body = ErrorResponse),
        (status = 429, description = "`rate_limited`", body = ErrorResponse),
        (status = 503, description = "`unavailable`", body = ErrorResponse),
    ))]
pub async fn list(
    auth: web::Data<AuthService>,
    Authenticated(principal): Authenticated,
) -> Result<HttpResponse, AppError> {
    let items = auth
        .sessions(&principal)
        .await?
        .into_iter()
        .map(|view| SessionResponse {
            id: view.record.id.to_string(),
            created_at: view.record.created_at,
            last_used_at: view.record.last_used_at,
            user_agent: view.record.user_agent,
            ip: view.record.ip,
            current: view.current,
        })
        .collect();
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(SessionList { items }))
}

/// End one of the caller's sessions at once (another device, say).
#[utoipa::path(delete, path = "/api/v1/auth/sessions/{id}", tag = "accounts",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Session id, from the session list")),
    responses(
        (status = 204, description = "Ended"),
        (status = 401, description = "`unauthorized`", body = ErrorResponse),
        (status = 404, description = "`not_found`: no live session of the caller has this id", body = ErrorResponse),
        (status = 429, description = "`rate_limited`", body = ErrorResponse),
        (status = 503, description = "`unavailable`", body = ErrorResponse),
    ))]
pub async fn end_one(
    auth: web::Data<AuthService>,
    Authenticated(principal): Authenticated,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    auth.end_session(&principal, &id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// End every session of a user at once: oneself, or anyone as an admin.
#[utoipa::path(delete, path = "/api/v1/users/{id}/sessions", tag = "users",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "User id")),
    responses(
        (status = 204, description = "Every session of the user ended"),
        (status = 401, description = "`unauthorized`", body = ErrorResponse),
        (status = 403, description = "`forbidden`", body = ErrorResponse),
        (status = 404, description = "`not_found`", body = ErrorResponse),
        (status = 422, description = "`validation_failed`", body = ErrorResponse),
        (status = 429, description = "`rate_limited`", body = ErrorResponse),
        (status = 503, description = "`unavailable`", body = ErrorResponse),
    ))]
pub async fn end_user_sessions(
    auth: web::Data<AuthService>,
    Authenticated(principal): Authenticated,
    PathUserId(id): PathUserId,
) -> Result<HttpResponse, AppError> {
    auth.end_sessions_of(&principal, id).await?;
    Ok(HttpResponse::NoContent().finish())
}
