use actix_web::http::header;
use actix_web::{HttpResponse, web};
use serde::Serialize;

use super::extract::{Authenticated, Json, JsonOrForm};
use crate::domain::Role;
use crate::error::AppError;
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
    auth: web::Data<AuthService>,
    JsonOrForm(attempt): JsonOrForm<LoginAttempt>,
) -> Result<HttpResponse, AppError> {
    let token = auth.login(attempt).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(TokenResponse {
            access_token: token.token,
            token_type: "bearer",
            expires_in: token.expires_in,
        }))
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
