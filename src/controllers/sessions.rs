//! Sessions: list them, end one, end all (the caller's, or a user's).

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::RefreshCookie;
use super::extract::{Authenticated, PathUserId};
use crate::error::{AppError, ErrorResponse};
use crate::services::auth::AuthService;

/// Log out everywhere
///
/// Ends every session of the caller at once, on every device.
#[utoipa::path(post, path = "/api/v1/auth/logout-all", tag = "accounts", operation_id = "logoutAll",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Every session ended"),
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
#[schema(example = json!({"id": "5b0e8f0a2c6d4e1f9a3b7c8d9e0f1a2b", "created_at": "2026-11-30T09:15:00Z",
    "last_used_at": "2026-11-30T10:02:11Z", "user_agent": "Mozilla/5.0 (X11; Linux x86_64)",
    "ip": "198.51.100.7", "current": true}))]
pub struct SessionResponse {
    id: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    created_at: time::OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    last_used_at: time::OffsetDateTime,
    /// As the client sent it at login; null when it sent none.
    #[schema(required = true)]
    user_agent: Option<String>,
    /// The client's address at login.
    #[schema(required = true)]
    ip: Option<String>,
    /// The session of the token this request carried.
    current: bool,
}

#[derive(Serialize, ToSchema)]
pub struct SessionList {
    items: Vec<SessionResponse>,
}

/// List my sessions
///
/// The caller's live sessions, newest first; `current` marks the one of the
/// token this request carried.
#[utoipa::path(get, path = "/api/v1/auth/sessions", tag = "accounts", operation_id = "listSessions",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Live sessions", body = SessionList),
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

/// End one of my sessions
///
/// Ends one of the caller's sessions at once (another device, say): its
/// access and refresh tokens stop working.
#[utoipa::path(delete, path = "/api/v1/auth/sessions/{id}", tag = "accounts", operation_id = "endSession",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Session id, from the session list")),
    responses(
        (status = 204, description = "Ended"),
        (status = 404, description = "`not_found`: no live session of the caller has this id", body = ErrorResponse),
    ))]
pub async fn end_one(
    auth: web::Data<AuthService>,
    Authenticated(principal): Authenticated,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    auth.end_session(&principal, &id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// End a user's sessions
///
/// Ends every session of a user at once: oneself, or anyone as an admin.
#[utoipa::path(delete, path = "/api/v1/users/{id}/sessions", tag = "users", operation_id = "endUserSessions",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "User id", example = 42)),
    responses(
        (status = 204, description = "Every session of the user ended"),
        (status = 403, description = "`forbidden`: another user, without being an admin", body = ErrorResponse),
        (status = 404, description = "`not_found`", body = ErrorResponse),
        (status = 422, description = "`validation_failed`: the id is not a number", body = ErrorResponse),
    ))]
pub async fn end_user_sessions(
    auth: web::Data<AuthService>,
    Authenticated(principal): Authenticated,
    PathUserId(id): PathUserId,
) -> Result<HttpResponse, AppError> {
    auth.end_sessions_of(&principal, id).await?;
    Ok(HttpResponse::NoContent().finish())
}
