use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use sha2::{Digest, Sha256};

use super::extract::{Authenticated, Json};
use crate::domain::{User, UserId};
use crate::error::AppError;
use crate::services::cache::CacheStatus;
use crate::services::users::{PageRequest, UserService, UserUpdate};

/// A strong ETag from the representation itself: the same bytes give the
/// same tag on every instance and after restarts.
fn etag_of(body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    let hex: String = digest[..16]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    format!("\"{hex}\"")
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

/// The user as JSON with `ETag` and `X-Cache`, or 304 when the client's copy
/// is current.
fn user_response(
    request: &HttpRequest,
    user: &User,
    status: CacheStatus,
) -> Result<HttpResponse, AppError> {
    let body = serde_json::to_vec(user).map_err(|error| AppError::Internal(error.into()))?;
    let etag = etag_of(&body);
    let not_modified = matches_if_none_match(request, &etag);
    let mut response = if not_modified {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header((header::ETAG, etag.as_str()))
        .insert_header(("X-Cache", HeaderValue::from_static(status.as_str())))
        .insert_header((header::CACHE_CONTROL, "private, no-cache"));
    if not_modified {
        return Ok(response.finish());
    }
    Ok(response.content_type("application/json").body(body))
}

pub async fn me(
    request: HttpRequest,
    users: web::Data<UserService>,
    Authenticated(principal): Authenticated,
) -> Result<HttpResponse, AppError> {
    let (user, status) = users.get(principal.user).await?;
    user_response(&request, &user, status)
}

pub async fn get(
    request: HttpRequest,
    users: web::Data<UserService>,
    _: Authenticated,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let (user, status) = users.get(UserId(id.into_inner())).await?;
    user_response(&request, &user, status)
}

pub async fn update(
    users: web::Data<UserService>,
    Authenticated(principal): Authenticated,
    id: web::Path<i64>,
    Json(update): Json<UserUpdate>,
) -> Result<HttpResponse, AppError> {
    let user = users
        .update(&principal, UserId(id.into_inner()), update)
        .await?;
    Ok(HttpResponse::Ok().json(user))
}

pub async fn delete(
    users: web::Data<UserService>,
    Authenticated(principal): Authenticated,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    users.delete(&principal, UserId(id.into_inner())).await?;
    Ok(HttpResponse::NoContent().finish())
}

pub async fn list(
    users: web::Data<UserService>,
    Authenticated(principal): Authenticated,
    page: web::Query<PageRequest>,
) -> Result<HttpResponse, AppError> {
    let page = users.list(&principal, page.into_inner()).await?;
    Ok(HttpResponse::Ok().json(page))
}

#[cfg(test)]
mod tests {
    use super::etag_of;

    #[test]
    fn etags_are_quoted_and_depend_only_on_the_bytes() {
        let tag = etag_of(b"{\"id\":1}");
        assert!(tag.starts_with('"') && tag.ends_with('"'));
        assert_eq!(tag, etag_of(b"{\"id\":1}"));
        assert_ne!(tag, etag_of(b"{\"id\":2}"));
    }
}
