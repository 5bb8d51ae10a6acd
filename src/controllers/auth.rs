use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use serde::Serialize;
use utoipa::ToSchema;

use super::client_ip::ClientKeyExtractor;
use super::extract::{Authenticated, Json, JsonOrForm};
use crate::domain::{Role, User};
use crate::error::{AppError, ErrorResponse, write_rate_limit_headers};
use crate::services::auth::{AuthService, LoginAttempt, PasswordChange, Registration};

#[derive(Serialize, ToSchema)]
pub struct TokenResponse {
    access_token: String,
    token_type: &'static str,
    expires_in: u64,
}

/// Create an account. A welcome e-mail is sent once it is committed.
#[utoipa::path(post, path = "/api/v1/auth/register", tag = "accounts",
    request_body = Registration,
    responses(
        (status = 201, description = "Created", body = User,
            headers(("Location" = String, description = "/api/v1/users/{id}"))),
        (status = 409, description = "`conflict`: username or e-mail taken", body = ErrorResponse),
        (status = 413, description = "`payload_too_large`", body = ErrorResponse),
        (status = 422, description = "`validation_failed`, naming each field", body = ErrorResponse),
        (status = 429, description = "`rate_limited`", body = ErrorResponse),
        (status = 503, description = "`unavailable`", body = ErrorResponse),
    ))]
pub async fn register(
    auth: web::Data<AuthService>,
    Json(registration): Json<Registration>,
) -> Result<HttpResponse, AppError> {
    let user = auth.register(registration, Role::User).await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/v1/users/{}", user.id)))
        .json(user))
}

/// Log in with the username (or e-mail) and password. Every earlier token
/// of the user stops working (single login). Limited per client and per
/// account; the response carries the login limit's `RateLimit-*` headers.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "accounts",
    request_body(content(
        (LoginAttempt = "application/json"),
        (LoginAttempt = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 200, description = "A bearer token", body = TokenResponse),
        (status = 401, description = "`invalid_credentials`: wrong username or password (the same answer for both)", body = ErrorResponse),
        (status = 413, description = "`payload_too_large`", body = ErrorResponse),
        (status = 422, description = "`validation_failed`", body = ErrorResponse),
        (status = 429, description = "`rate_limited`", body = ErrorResponse),
        (status = 503, description = "`unavailable`: sessions cannot be stored", body = ErrorResponse),
    ))]
pub async fn login(
    request: HttpRequest,
    auth: web::Data<AuthService>,
    clients: web::Data<ClientKeyExtractor>,
    JsonOrForm(attempt): JsonOrForm<LoginAttempt>,
) -> Result<HttpResponse, AppError> {
    let client = clients.client(&request);
    let result = auth.login(attempt, &client).await;
    let mut response = match result.outcome {
        Ok(token) => HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(TokenResponse {
                access_token: token.token,
                token_type: "bearer",
                expires_in: token.expires_in,
            }),
        Err(error) => error.error_response(),
    };
    // The login limit's headers, on failures too.
    if let Some(limit) = result.limit {
        write_rate_limit_headers(response.headers_mut(), &limit);
    }
    Ok(response)
}

/// End this token's session at once.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "accounts",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Logged out"),
        (status = 401, description = "`unauthorized`", body = ErrorResponse),
        (status = 429, description = "`rate_limited`", body = ErrorResponse),
        (status = 503, description = "`unavailable`", body = ErrorResponse),
    ))]
pub async fn logout(
    auth: web::Data<AuthService>,
    Authenticated(principal): Authenticated,
) -> Result<HttpResponse, AppError> {
    auth.logout(&principal).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Change the password; every token of the user stops working.
#[utoipa::path(put, path = "/api/v1/auth/password", tag = "accounts",
    security(("bearer" = [])),
    request_body = PasswordChange,
    responses(
        (status = 204, description = "Changed; log in again"),
        (status = 401, description = "`unauthorized`, or `invalid_credentials` for a wrong current password", body = ErrorResponse),
        (status = 413, description = "`payload_too_large`", body = ErrorResponse),
        (status = 422, description = "`validation_failed`", body = ErrorResponse),
        (status = 429, description = "`rate_limited`", body = ErrorResponse),
        (status = 503, description = "`unavailable`", body = ErrorResponse),
    ))]
pub async fn change_password(
    auth: web::Data<AuthService>,
    Authenticated(principal): Authenticated,
    Json(change): Json<PasswordChange>,
) -> Result<HttpResponse, AppError> {
    auth.change_password(&principal, change).await?;
    Ok(HttpResponse::NoContent().finish())
}
