use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};

mod bodies;
pub(super) mod schemas;

use super::extract::{Authenticated, Bearer, Json, PathUserId};
use crate::error::{AppError, ErrorResponse};
use crate::services::cache::{CacheStatus, Representation};
use crate::services::users::{IfMatch, UserService};
use bodies::{PageRequest, UserPage, UserUpdate, UserView};

/// `If-Match`: `*`, or the ETags (quoted). The comparison is strong (RFC
/// 9110): a weak tag matches nothing, so a header of weak tags alone fails.
fn if_match(request: &HttpRequest) -> Option<IfMatch> {
    let mut tags = Vec::new();
    let mut present = false;
    for value in request.headers().get_all(header::IF_MATCH) {
        present = true;
        for candidate in value.to_str().unwrap_or("").split(',') {
            let candidate = candidate.trim();
            if candidate == "*" {
                return Some(IfMatch::Any);
            }
            if !candidate.starts_with("W/") {
                tags.push(candidate.trim_matches('"').to_string());
            }
        }
    }
    present.then_some(IfMatch::Tags(tags))
}

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
        (status = 200, description = "The user", body = schemas::UserSchema, headers(
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
        (status = 200, description = "The user", body = UserView, headers(
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
/// Oneself, or anyone as an admin; `role` and `disabled` are for admins
/// only. Absent fields stay as they are; unknown fields are refused. Once
/// the 200 is sent, every reader gets the new data. A new e-mail address is
/// unverified; a role change or disabling ends that user's sessions. With
/// `If-Match`, nothing changes unless the user is still at that ETag.
#[utoipa::path(put, path = "/api/v1/users/{id}", tag = "users", operation_id = "updateUser",
    security(("bearer" = [])),
    params(
        ("id" = i64, Path, description = "User id", example = 42),
        ("If-Match" = Option<String>, Header, description = "Apply only while the user is still at this `ETag` (or `*`)")),
    request_body = UserUpdate,
    responses(
        (status = 200, description = "The updated user", body = schemas::UserSchema,
            headers(("ETag" = String, description = "The updated user's ETag, as a read would send it"))),
        (status = 403, description = "`forbidden`: another user, or `role`/`disabled` without being an admin", body = ErrorResponse),
        (status = 404, description = "`not_found`", body = ErrorResponse),
        (status = 409, description = "`conflict` (username or e-mail taken) or `update_in_progress` (another update of this user is running; with `Retry-After`)", body = ErrorResponse,
            headers(("Retry-After" = u64, description = "Sent with `update_in_progress` only: seconds to wait"))),
        (status = 412, description = "`precondition_failed`: the `If-Match` ETag is stale; nothing changed", body = ErrorResponse),
        (status = 422, description = "`validation_failed`", body = ErrorResponse),
    ))]
pub async fn update(
    request: HttpRequest,
    users: web::Data<UserService>,
    Authenticated(principal): Authenticated,
    PathUserId(id): PathUserId,
    Json(update): Json<UserUpdate>,
) -> Result<HttpResponse, AppError> {
    let user = users
        .update(&principal, id, update.parse()?, if_match(&request))
        .await?;
    let representation =
        Representation::of(&user).map_err(|error| AppError::Internal(error.into()))?;
    Ok(HttpResponse::Ok()
        .insert_header((header::ETAG, format!("\"{}\"", representation.digest)))
        .insert_header((
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, no-cache"),
        ))
        .content_type("application/json")
        .body(representation.body))
}

/// Change a user (partial)
///
/// The same as `PUT`: only the fields given change.
#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "users", operation_id = "patchUser",
    security(("bearer" = [])),
    params(
        ("id" = i64, Path, description = "User id", example = 42),
        ("If-Match" = Option<String>, Header, description = "Apply only while the user is still at this `ETag` (or `*`)")),
    request_body = UserUpdate,
    responses(
        (status = 200, description = "The updated user", body = schemas::UserSchema,
            headers(("ETag" = String, description = "The updated user's ETag, as a read would send it"))),
        (status = 403, description = "`forbidden`: another user, or `role`/`disabled` without being an admin", body = ErrorResponse),
        (status = 404, description = "`not_found`", body = ErrorResponse),
        (status = 409, description = "`conflict` (username or e-mail taken) or `update_in_progress` (another update of this user is running; with `Retry-After`)", body = ErrorResponse,
            headers(("Retry-After" = u64, description = "Sent with `update_in_progress` only: seconds to wait"))),
        (status = 412, description = "`precondition_failed`: the `If-Match` ETag is stale; nothing changed", body = ErrorResponse),
        (status = 422, description = "`validation_failed`", body = ErrorResponse),
    ))]
pub async fn patch(
    request: HttpRequest,
    users: web::Data<UserService>,
    principal: Authenticated,
    id: PathUserId,
    update: Json<UserUpdate>,
) -> Result<HttpResponse, AppError> {
    self::update(request, users, principal, id, update).await
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
/// Admins only. Optionally searched (`q`: a case-insensitive substring of
/// the username or e-mail) and filtered by `role` and `disabled`. Keyset
/// pagination by id: pass the page's `next_after_id` as `after_id` for the
/// next page; it is null on the last one.
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
    let admin = principal.require_admin()?;
    let page = users.list(admin, page.into_inner().parse()?).await?;
    Ok(HttpResponse::Ok().json(UserPage::from(page)))
}
