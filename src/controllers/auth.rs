use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use serde::Serialize;

use super::client_ip::ClientKeyExtractor;
use super::extract::{Authenticated, Json, JsonOrForm};
use crate::domain::Role;
use crate::error::{AppError, write_rate_limit_headers};
use crate::services::auth::{AuthService, LoginAttempt, PasswordChange, Registration};

#[derive(Serialize)]
struct TokenResponse {
    access_token: String,
    token_type: &'static str,
    expires_in: u64,
}

pub async fn register(
    auth: web::Data<AuthService>,
    Json(registration): Json<Registration>,
) -> Result<HttpResponse, AppError> {
    let user = auth.register(registration, Role::User).await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/v1/users/{}", user.id)))
        .json(user))
}

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

pub async fn logout(
    auth: web::Data<AuthService>,
    Authenticated(principal): Authenticated,
) -> Result<HttpResponse, AppError> {
    auth.logout(&principal).await?;
    Ok(HttpResponse::NoContent().finish())
}

pub async fn change_password(
    auth: web::Data<AuthService>,
    Authenticated(principal): Authenticated,
    Json(change): Json<PasswordChange>,
) -> Result<HttpResponse, AppError> {
    auth.change_password(&principal, change).await?;
    Ok(HttpResponse::NoContent().finish())
}
