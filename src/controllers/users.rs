use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};

use super::extract::{Authenticated, Bearer, Json, PathUserId};
use crate::domain::User;
use crate::error::{AppError, ErrorResponse};
use crate::services::cache::{CacheStatus, Representation};
use crate::services::users::{PageRequest, UserPage, UserService, UserUpdate};

fn matches_if_none_match(request: &HttpRequest, etag: &str) -> bool {
    request
        .headers()
        .get_all(header::IF_NONE_MATCH)
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|candidate| candidate.trim().trim_start_matches("W/"))
        .any(|candidate| candidate == etag || candidate == "*")
}

/// The user's JSON with a strong `ETag` (the digest of those bytes: the same
/// on every instance and after restarts) and `X-Cache`, or 304 when the
/// client's copy is current.
fn user_response(request: &HttpRequest, user: Representation, status: CacheStatus) -> HttpResponse {
    let etag = format!("\"{}\"", user.digest);
    let not_modified = matches_if_none_match(request, &etag);
    let mut response = if not_modified {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header((header::ETAG, etag))
        .insert_header(("X-Cache", HeaderValue::from_static(status.as_str())))
        .insert_header((
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, no-cache"),
        ));
    if not_modified {
        return response.finish();
    }
    response.content_type("application/json").body(user.body)
}

/// The caller.
#[utoipa::path(get, path = "/api/v1/users/me", tag = "users",
    security(("bearer" = [])),
    params(("If-None-Match" = Option<String>, Header, description = "An ETag from an earlier answer")),
    responses(
        (status = 200, description = "The user", body = User, headers(
            ("ETag" = String, description = "Strong validator of the representation"),
            ("X-Cache" = String, description = "HIT or MISS"))),
        (status = 304, description = "Unchanged since the given ETag"),
        (status = 401, description = "`unauthorized`", body = ErrorResponse),
        (status = 404, description = "`not_found`", body = ErrorResponse),
        (status = 429, description = "`rate_limited`", body = ErrorResponse),
        (status = 503, description = "`unavailable`", body = ErrorResponse),
    ))]
pub async fn me(
    request: HttpRequest,
    users: web::Data<UserService>,
    Bearer(caller): Bearer,
) -> Result<HttpResponse, AppError> {
    let (user, status) = users.get_as(caller.clone(), caller.user).await?;
    Ok(user_response(&request, user, status))
}

/// A user, served cache-aside (Redis first, SQL on a miss).
#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "users",
    security(("bearer" = [])),
    params(
        ("id" = i64, Path, description = "User id"),
        ("If-None-Match" = Option<String>, Header, description = "An ETag from an earlier answer")),
    responses(
        (status = 200, description = "The user", body = User, headers(
            ("ETag" = String, description = "Strong validator of the representation"),
            ("X-Cache" = String, description = "HIT or MISS"))),
        (status = 304, description = "Unchanged since the given ETag"),
        (status = 401, description = "`unauthorized`", body = ErrorResponse),
        (status = 404, description = "`not_found`", body = ErrorResponse),
        (status = 422, description = "`validation_failed`: the id is not a number", body = ErrorResponse),
        (status = 429, description = "`rate_limited`", body = ErrorResponse),
        (status = 503, description = "`unavailable`", body = ErrorResponse),
    ))]
pub async fn get(
    request: HttpRequest,
    users: web::Data<UserService>,
    Bearer(caller): Bearer,
    PathUserId(id): PathUserId,
) -> Result<HttpResponse, AppError> {
    let (user, status) = users.get_as(caller, id).await?;
    Ok(user_response(&request, user, status))
}

/// Change a user: oneself, or anyone as an admin; `role` is for admins
/// only. Unknown fields are refused. Once the 200 is sent, every reader
/// gets the new data.
#[utoipa::path(put, path = "/api/v1/users/{id}", tag = "users",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "User id")),
    request_body = UserUpdate,
    responses(
        (status = 200, description = "The updated user", body = User),
        (status = 401, description = "`unauthorized`", body = ErrorResponse),
        (status = 403, description = "`forbidden`", body = ErrorResponse),
        (status = 404, description = "`not_found`", body = ErrorResponse),
        (status = 409, description = "`conflict` (name or e-mail taken) or `update_in_progress` (with Retry-After)", body = ErrorResponse),
        (status = 413, description = "`payload_too_large`", body = ErrorResponse),
        (status = 422, description = "`validation_failed`", body = ErrorResponse),
        (status = 429, description = "`rate_limited`", body = ErrorResponse),
        (status = 503, description = "`unavailable`", body = ErrorResponse),
    ))]
pub async fn update(
    users: web::Data<UserService>,
    Authenticated(principal): Authenticated,
    PathUserId(id): PathUserId,
    Json(update): Json<UserUpdate>,
) -> Result<HttpResponse, AppError> {
    let user = users.update(&principal, id, update).await?;
    Ok(HttpResponse::Ok().json(user))
}

/// Delete a user (oneself, or anyone as an admin); ends their session.
#[utoipa::path(delete, path = "/api/v1/users/{id}", tag = "users",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "User id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "`unauthorized`", body = ErrorResponse),
        (status = 403, description = "`forbidden`", body = ErrorResponse),
        (status = 404, description = "`not_found`", body = ErrorResponse),
        (status = 422, description = "`validation_failed`", body = ErrorResponse),
        (status = 429, description = "`rate_limited`", body = ErrorResponse),
        (status = 503, description = "`unavailable`", body = ErrorResponse),
    ))]
pub async fn delete(
    users: web::Data<UserService>,
    Authenticated(principal): Authenticated,
    PathUserId(id): PathUserId,
) -> Result<HttpResponse, AppError> {
    users.delete(&principal, id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Every user, a page at a time (admins only).
#[utoipa::path(get, path = "/api/v1/users", tag = "users",
    security(("bearer" = [])),
    params(PageRequest),
    responses(
        (status = 200, description = "A page of users", body = UserPage),
        (status = 401, description = "`unauthorized`", body = ErrorResponse),
        (status = 403, description = "`forbidden`", body = ErrorResponse),
        (status = 422, description = "`validation_failed`", body = ErrorResponse),
        (status = 429, description = "`rate_limited`", body = ErrorResponse),
        (status = 503, description = "`unavailable`", body = ErrorResponse),
    ))]
pub async fn list(
    users: web::Data<UserService>,
    Authenticated(principal): Authenticated,
    page: web::Query<PageRequest>,
) -> Result<HttpResponse, AppError> {
    let page = users.list(&principal, page.into_inner()).await?;
    Ok(HttpResponse::Ok().json(page))
}
