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

/// The signed-in user
///
/// The account the bearer token belongs to, served like `getUser`
/// (cache-aside, with `ETag` and `X-Cache`).
#[utoipa::path(get, path = "/api/v1/users/me", tag = "users", operation_id = "getCurrentUser",
    security(("bearer" = [])),
    params(("If-None-Match" = Option<String>, Header, description = "The `ETag` of a copy the client holds: 304 if it is current")),
    responses(
        (status = 200, description = "The user", body = User, headers(
            ("ETag" = String, description = "Strong validator of the representation"),
            ("X-Cache" = String, description = "HIT or MISS"))),
        (status = 304, description = "The client's copy is current (no body)", headers(
            ("ETag" = String, description = "Strong validator of the representation"),
            ("X-Cache" = String, description = "HIT or MISS"))),
        (status = 404, description = "`not_found`: the account is gone", body = ErrorResponse),
    ))]
pub async fn me(
    request: HttpRequest,
    users: web::Data<UserService>,
    Bearer(caller): Bearer,
) -> Result<HttpResponse, AppError> {
    let (user, status) = users.get_as(caller.clone(), caller.user).await?;
    Ok(user_response(&request, user, status))
}

/// Read a user
///
/// Served cache-aside: from Redis when cached (`X-Cache: HIT`), else from
/// the database and then cached (`MISS`). Send the `ETag` of a copy you
/// hold as `If-None-Match` to get 304 when it is still current.
#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "users", operation_id = "getUser",
    security(("bearer" = [])),
    params(
        ("id" = i64, Path, description = "User id", example = 42),
        ("If-None-Match" = Option<String>, Header, description = "The `ETag` of a copy the client holds: 304 if it is current")),
    responses(
        (status = 200, description = "The user", body = User, headers(
            ("ETag" = String, description = "Strong validator of the representation"),
            ("X-Cache" = String, description = "HIT or MISS"))),
        (status = 304, description = "The client's copy is current (no body)", headers(
            ("ETag" = String, description = "Strong validator of the representation"),
            ("X-Cache" = String, description = "HIT or MISS"))),
        (status = 404, description = "`not_found`", body = ErrorResponse),
        (status = 422, description = "`validation_failed`: the id is not a number", body = ErrorResponse),
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

/// Change a user
///
/// Oneself, or anyone as an admin; `role` is for admins only. Absent fields
/// stay as they are; unknown fields are refused. Once the 200 is sent,
/// every reader gets the new data. A role change ends that user's session.
#[utoipa::path(put, path = "/api/v1/users/{id}", tag = "users", operation_id = "updateUser",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "User id", example = 42)),
    request_body = UserUpdate,
    responses(
        (status = 200, description = "The updated user", body = User),
        (status = 403, description = "`forbidden`: another user, or `role` without being an admin", body = ErrorResponse),
        (status = 404, description = "`not_found`", body = ErrorResponse),
        (status = 409, description = "`conflict` (username or e-mail taken) or `update_in_progress` (another update of this user is running; with `Retry-After`)", body = ErrorResponse,
            headers(("Retry-After" = u64, description = "Sent with `update_in_progress` only: seconds to wait"))),
        (status = 422, description = "`validation_failed`", body = ErrorResponse),
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

/// Delete a user
///
/// Oneself, or anyone as an admin. The user's session ends and its cache
/// entry is evicted.
#[utoipa::path(delete, path = "/api/v1/users/{id}", tag = "users", operation_id = "deleteUser",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "User id", example = 42)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "`forbidden`: another user, without being an admin", body = ErrorResponse),
        (status = 404, description = "`not_found`", body = ErrorResponse),
        (status = 422, description = "`validation_failed`: the id is not a number", body = ErrorResponse),
    ))]
pub async fn delete(
    users: web::Data<UserService>,
    Authenticated(principal): Authenticated,
    PathUserId(id): PathUserId,
) -> Result<HttpResponse, AppError> {
    users.delete(&principal, id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// List users
///
/// Admins only. Keyset pagination by id: pass the page's `next_after_id`
/// as `after_id` for the next page; it is null on the last one.
#[utoipa::path(get, path = "/api/v1/users", tag = "users", operation_id = "listUsers",
    security(("bearer" = [])),
    params(PageRequest),
    responses(
        (status = 200, description = "A page of users, by ascending id", body = UserPage),
        (status = 403, description = "`forbidden`: admins only", body = ErrorResponse),
        (status = 422, description = "`validation_failed`: `limit` or `after_id` out of range", body = ErrorResponse),
    ))]
pub async fn list(
    users: web::Data<UserService>,
    Authenticated(principal): Authenticated,
    page: web::Query<PageRequest>,
) -> Result<HttpResponse, AppError> {
    let page = users.list(&principal, page.into_inner()).await?;
    Ok(HttpResponse::Ok().json(page))
}
