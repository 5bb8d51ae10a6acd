//! E-mail verification and password reset over HTTP.

use actix_web::{HttpRequest, HttpResponse, web};

use super::client_ip::ClientKeyExtractor;
use super::extract::{Authenticated, Json};
use crate::error::{AppError, ErrorResponse};
use crate::services::accounts::{
    AccountService, EmailVerification, ForgottenPassword, PasswordReset,
};

/// Verify the e-mail address with the token of the link mailed to it
/// (`{mail.link_base_url}/verify-email?token=T`). Counts against the login
/// limit of the client.
#[utoipa::path(post, path = "/api/v1/auth/verify-email", tag = "accounts",
    request_body = EmailVerification,
    responses(
        (status = 204, description = "The address is verified"),
        (status = 400, description = "`invalid_token`: unknown, expired or spent", body = ErrorResponse),
        (status = 413, description = "`payload_too_large`", body = ErrorResponse),
        (status = 422, description = "`validation_failed`: no token given", body = ErrorResponse),
        (status = 429, description = "`rate_limited`", body = ErrorResponse),
        (status = 503, description = "`unavailable`", body = ErrorResponse),
    ))]
pub async fn verify_email(
    request: HttpRequest,
    accounts: web::Data<AccountService>,
    clients: web::Data<ClientKeyExtractor>,
    Json(body): Json<EmailVerification>,
) -> Result<HttpResponse, AppError> {
    accounts
        .verify_email(&clients.client(&request), body)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Mail a new verification link to the caller's address; links mailed
/// earlier stop working. Nothing is sent once the address is verified.
/// Limited like login.
#[utoipa::path(post, path = "/api/v1/auth/verify-email/resend", tag = "accounts",
    security(("bearer" = [])),
    responses(
        (status = 202, description = "A verification mail is on its way"),
        (status = 401, description = "`unauthorized`", body = ErrorResponse),
        (status = 429, description = "`rate_limited`", body = ErrorResponse),
        (status = 503, description = "`unavailable`", body = ErrorResponse),
    ))]
pub async fn resend_verification(
    request: HttpRequest,
    accounts: web::Data<AccountService>,
    clients: web::Data<ClientKeyExtractor>,
    Authenticated(principal): Authenticated,
) -> Result<HttpResponse, AppError> {
    accounts
        .resend_verification(&clients.client(&request), &principal)
        .await?;
    Ok(HttpResponse::Accepted().finish())
}

/// Ask for a password-reset link. The answer is the same, in about the
/// same time, whether or not an account has the address; when one has
/// (and is not disabled), a mail with `{mail.link_base_url}/reset-password?token=T`
/// goes to it. A newer request spends the older links. Limited per client
/// and per address like login.
#[utoipa::path(post, path = "/api/v1/auth/password/forgot", tag = "accounts",
    request_body = ForgottenPassword,
    responses(
        (status = 202, description = "Accepted (whether or not the address is known)"),
        (status = 413, description = "`payload_too_large`", body = ErrorResponse),
        (status = 422, description = "`validation_failed`: no or no valid address", body = ErrorResponse),
        (status = 429, description = "`rate_limited`", body = ErrorResponse),
        (status = 503, description = "`unavailable`", body = ErrorResponse),
    ))]
pub async fn forgot_password(
    request: HttpRequest,
    accounts: web::Data<AccountService>,
    clients: web::Data<ClientKeyExtractor>,
    Json(body): Json<ForgottenPassword>,
) -> Result<HttpResponse, AppError> {
    accounts
        .forgot_password(&clients.client(&request), body)
        .await?;
    Ok(HttpResponse::Accepted().finish())
}

/// Set a new password with the token of a reset link. The token is spent
/// and every session of the user ends. Counts against the login limit of
/// the client.
#[utoipa::path(post, path = "/api/v1/auth/password/reset", tag = "accounts",
    request_body = PasswordReset,
    responses(
        (status = 204, description = "The password is set; log in again"),
        (status = 400, description = "`invalid_token`: unknown, expired or spent", body = ErrorResponse),
        (status = 413, description = "`payload_too_large`", body = ErrorResponse),
        (status = 422, description = "`validation_failed`: a missing token or a bad new password", body = ErrorResponse),
        (status = 429, description = "`rate_limited`", body = ErrorResponse),
        (status = 503, description = "`unavailable`", body = ErrorResponse),
    ))]
pub async fn reset_password(
    request: HttpRequest,
    accounts: web::Data<AccountService>,
    clients: web::Data<ClientKeyExtractor>,
    Json(body): Json<PasswordReset>,
) -> Result<HttpResponse, AppError> {
    accounts
        .reset_password(&clients.client(&request), body)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
