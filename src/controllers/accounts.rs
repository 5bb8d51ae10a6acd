//! E-mail verification and password reset over HTTP.

use actix_web::{HttpRequest, HttpResponse, web};

use secrecy::SecretString;
use serde::Deserialize;
use utoipa::ToSchema;

use super::client_ip::ClientKeyExtractor;
use super::extract::{Authenticated, Json};
use crate::domain::{Email, Password};
use crate::error::{AppError, ErrorResponse, Problems};
use crate::services::accounts::AccountService;

// No `Debug`: it holds a token, which must not reach a log line.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailVerification {
    /// The `token` of the link mailed to the address.
    #[schema(required = true, value_type = String)]
    token: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ForgottenPassword {
    /// The account's address; the answer is the same whether one has it or not.
    #[schema(required = true, value_type = String, format = Email)]
    email: Option<String>,
}

// No `Debug`: it holds a token, which must not reach a log line.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordReset {
    /// The `token` of the link mailed by `password/forgot`.
    #[schema(required = true, value_type = String)]
    token: Option<String>,
    #[schema(required = true, value_type = String, format = Password, min_length = 8, max_length = 128)]
    new_password: Option<SecretString>,
}

/// Verify the e-mail address
///
/// With the token of the link mailed to the address
/// (`{mail.link_base_url}/verify-email?token=T`). Counts against the login
/// limit of the client.
#[utoipa::path(post, path = "/api/v1/auth/verify-email", tag = "accounts", operation_id = "verifyEmail",
    request_body = EmailVerification,
    responses(
        (status = 204, description = "The address is verified"),
        (status = 400, description = "`invalid_token`: unknown, expired or spent, or mailed to an address the account no longer has", body = ErrorResponse),
        (status = 422, description = "`validation_failed`: no token given", body = ErrorResponse),
    ))]
pub async fn verify_email(
    request: HttpRequest,
    accounts: web::Data<AccountService>,
    clients: web::Data<ClientKeyExtractor>,
    Json(body): Json<EmailVerification>,
) -> Result<HttpResponse, AppError> {
    let token = body
        .token
        .ok_or_else(|| AppError::validation("token", "is required"))?;
    accounts
        .verify_email(&clients.client(&request), &token)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Mail a new verification link
///
/// To the caller's address; links mailed earlier stop working. Nothing is
/// sent once the address is verified. Limited like login.
#[utoipa::path(post, path = "/api/v1/auth/verify-email/resend", tag = "accounts", operation_id = "resendVerification",
    security(("bearer" = [])),
    responses(
        (status = 202, description = "A verification mail is on its way (none once the address is verified)"),
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

/// Ask for a password-reset link
///
/// The answer is the same, in about the same time, whether or not an
/// account has the address; when one has (and is not disabled), a mail with
/// `{mail.link_base_url}/reset-password?token=T` goes to it. A newer request
/// spends the older links. Limited per client and per address like login.
#[utoipa::path(post, path = "/api/v1/auth/password/forgot", tag = "accounts", operation_id = "forgotPassword",
    request_body = ForgottenPassword,
    responses(
        (status = 202, description = "Accepted (whether or not the address is known)"),
        (status = 422, description = "`validation_failed`: no address, or not a valid one", body = ErrorResponse),
    ))]
pub async fn forgot_password(
    request: HttpRequest,
    accounts: web::Data<AccountService>,
    clients: web::Data<ClientKeyExtractor>,
    Json(body): Json<ForgottenPassword>,
) -> Result<HttpResponse, AppError> {
    let mut problems = Problems::default();
    let email = problems.parsed(body.email, "email", |email| Email::parse(&email));
    let email = problems.or(email)?;
    accounts
        .forgot_password(&clients.client(&request), email)
        .await?;
    Ok(HttpResponse::Accepted().finish())
}

/// Reset the password
///
/// With the token of a reset link. The token is spent and every session of
/// the user ends. Counts against the login limit of the client.
#[utoipa::path(post, path = "/api/v1/auth/password/reset", tag = "accounts", operation_id = "resetPassword",
    request_body = PasswordReset,
    responses(
        (status = 204, description = "The password is set; log in again"),
        (status = 400, description = "`invalid_token`: unknown, expired or spent", body = ErrorResponse),
        (status = 422, description = "`validation_failed`: a missing token or a bad new password", body = ErrorResponse),
    ))]
pub async fn reset_password(
    request: HttpRequest,
    accounts: web::Data<AccountService>,
    clients: web::Data<ClientKeyExtractor>,
    Json(body): Json<PasswordReset>,
) -> Result<HttpResponse, AppError> {
    let mut problems = Problems::default();
    let token = problems.required(body.token, "token");
    let password = problems.parsed(body.new_password, "new_password", Password::parse);
    let (token, password) = problems.or(token.zip(password))?;
    accounts
        .reset_password(&clients.client(&request), &token, password)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
