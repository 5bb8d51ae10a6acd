use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieAge};
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use serde::Serialize;
use utoipa::ToSchema;

pub(super) mod bodies;

use super::client_ip::ClientKeyExtractor;
use super::extract::{Authenticated, Json, JsonOrForm, OptionalJsonOrForm};
use crate::domain::{Password, Role};
use crate::error::{AppError, ErrorResponse, Problems, write_rate_limit_headers};
use crate::services::auth::{AuthService, NewAccount};
use crate::services::rate_limit::RateLimitService;
use crate::services::sessions::{ClientInfo, Tokens};
use bodies::{LoginAttempt, PasswordChange, RefreshRequest, Registration};

/// An access token and the refresh token that renews it.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"access_token": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI0MiJ9.c2lnbmF0dXJl",
    "token_type": "bearer", "expires_in": 900,
    "refresh_token": "q8Zp3m1XfK0c9VtR2yL7wB4nJ6hD5sA1eG8uI0oP3kM", "refresh_expires_in": 2592000}))]
pub struct TokenResponse {
    /// Send as `Authorization: Bearer <access_token>`.
    access_token: String,
    token_type: TokenType,
    /// Seconds the access token is valid.
    expires_in: u64,
    /// Opaque; spent by `POST /api/v1/auth/refresh`, which answers a new one.
    refresh_token: String,
    /// Seconds the session can still be refreshed (counted from login).
    refresh_expires_in: u64,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TokenType {
    Bearer,
}

/// Whether login and refresh also set the refresh token as a cookie.
#[derive(Debug, Clone, Copy)]
pub struct RefreshCookie {
    pub enabled: bool,
}

const COOKIE_NAME: &str = "refresh_token";
const COOKIE_PATH: &str = "/api/v1/auth";

impl RefreshCookie {
    fn issued(tokens: &Tokens) -> Cookie<'static> {
        Self::cookie(tokens.refresh_token.as_str().to_string())
            .max_age(CookieAge::seconds(
                i64::try_from(tokens.refresh_expires_in).unwrap_or(i64::MAX),
            ))
            .finish()
    }

    pub(super) fn cleared() -> Cookie<'static> {
        Self::cookie(String::new())
            .max_age(CookieAge::ZERO)
            .finish()
    }

    fn cookie(value: String) -> actix_web::cookie::CookieBuilder<'static> {
        Cookie::build(COOKIE_NAME, value)
            .http_only(true)
            .secure(true)
            .same_site(SameSite::Strict)
            .path(COOKIE_PATH)
    }

    fn read(self, request: &HttpRequest) -> Option<String> {
        if !self.enabled {
            return None;
        }
        request
            .cookie(COOKIE_NAME)
            .map(|cookie| cookie.value().to_string())
            .filter(|value| !value.is_empty())
    }
}

fn token_response(tokens: Tokens, cookie: RefreshCookie) -> HttpResponse {
    let mut response = HttpResponse::Ok();
    response.insert_header((header::CACHE_CONTROL, "no-store"));
    if cookie.enabled {
        response.cookie(RefreshCookie::issued(&tokens));
    }
    response.json(TokenResponse {
        access_token: tokens.access_token,
        token_type: TokenType::Bearer,
        expires_in: tokens.expires_in,
        refresh_token: tokens.refresh_token.as_str().to_string(),
        refresh_expires_in: tokens.refresh_expires_in,
    })
}

/// Where the request comes from, for the session list.
fn client_info(request: &HttpRequest, clients: &ClientKeyExtractor) -> ClientInfo {
    ClientInfo {
        user_agent: request
            .headers()
            .get(header::USER_AGENT)
            .and_then(|value| value.to_str().ok())
            .map(str::to_string),
        ip: Some(clients.address(request).to_string()),
    }
}

/// Create an account
///
/// Usernames are unique case-insensitively; the e-mail is stored
/// lower-case. A welcome e-mail is sent once the account is committed.
/// Limited per client: the response carries the registration limit's
/// `RateLimit-*` headers.
#[utoipa::path(post, path = "/api/v1/auth/register", tag = "accounts", operation_id = "register",
    request_body = Registration,
    responses(
        (status = 201, description = "Created", body = super::users::schemas::UserSchema,
            headers(("Location" = String, description = "The new user's URL: `/api/v1/users/{id}`"))),
        (status = 409, description = "`conflict`: username or e-mail taken (`details` names the field)", body = ErrorResponse),
        (status = 422, description = "`validation_failed`, naming each field", body = ErrorResponse),
    ))]
pub async fn register(
    request: HttpRequest,
    auth: web::Data<AuthService>,
    clients: web::Data<ClientKeyExtractor>,
    limits: web::Data<RateLimitService>,
    Json(registration): Json<Registration>,
) -> Result<HttpResponse, AppError> {
    // Each registration hashes a password: limited per client, like login.
    let limit = limits.check_register(&clients.client(&request)).await?;
    let Registration {
        username,
        email,
        password,
    } = registration;
    let registered = match NewAccount::parse(username, email, password) {
        Ok(account) => auth.register(account, Role::User).await,
        Err(error) => Err(error),
    };
    let mut response = match registered {
        Ok(user) => HttpResponse::Created()
            .insert_header((header::LOCATION, format!("/api/v1/users/{}", user.id)))
            .json(user),
        Err(error) => error.error_response(),
    };
    if let Some(limit) = limit {
        write_rate_limit_headers(response.headers_mut(), &limit);
    }
    Ok(response)
}

/// Log in
///
/// With the username (or e-mail) and password, as JSON or as a form. With
/// single login (the default) every other session of the user ends.
/// Limited per client and per account: the response carries the login
/// limit's `RateLimit-*` headers, and a wrong user and a wrong password get
/// the same answer.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "accounts", operation_id = "login",
    request_body(content(
        (LoginAttempt = "application/json"),
        (LoginAttempt = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 200, description = "A token pair", body = TokenResponse),
        (status = 401, description = "`invalid_credentials`: wrong username or password (the same answer for both)", body = ErrorResponse),
        (status = 403, description = "After a correct password only: `account_disabled` (an admin disabled the account), or `email_not_verified` (with `auth.require_verified_email`, until the address is verified)", body = ErrorResponse),
        (status = 422, description = "`validation_failed`", body = ErrorResponse),
        (status = 503, description = "`unavailable`: sessions cannot be stored", body = ErrorResponse),
    ))]
pub async fn login(
    request: HttpRequest,
    auth: web::Data<AuthService>,
    clients: web::Data<ClientKeyExtractor>,
    cookie: web::Data<RefreshCookie>,
    JsonOrForm(attempt): JsonOrForm<LoginAttempt>,
) -> Result<HttpResponse, AppError> {
    let mut problems = Problems::default();
    let login = problems.required(attempt.username, "username");
    let password = problems.required(attempt.password, "password");
    let (login, password) = problems.or(login.zip(password))?;
    let client = clients.client(&request);
    let origin = client_info(&request, &clients);
    let result = auth.login(&login, &password, &client, &origin).await;
    let mut response = match result.outcome {
        Ok(tokens) => token_response(tokens, **cookie),
        Err(error) => error.error_response(),
    };
    // The login limit's headers, on failures too.
    if let Some(limit) = result.limit {
        write_rate_limit_headers(response.headers_mut(), &limit);
    }
    Ok(response)
}

/// Refresh the tokens
///
/// Trades a refresh token for a new pair (rotation). The token comes from
/// the body, or from the refresh cookie when that is on. A spent token
/// presented again within a few seconds (another tab) still works; later,
/// it ends the whole session.
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "accounts", operation_id = "refreshTokens",
    request_body(content(
        (RefreshRequest = "application/json"),
        (RefreshRequest = "application/x-www-form-urlencoded"),
    ), description = "Optional when the refresh cookie is sent"),
    responses(
        (status = 200, description = "A new token pair", body = TokenResponse),
        (status = 401, description = "`unauthorized`: unknown, expired, spent or ended refresh token", body = ErrorResponse),
        (status = 422, description = "`validation_failed`: no refresh token given", body = ErrorResponse),
    ))]
pub async fn refresh(
    request: HttpRequest,
    auth: web::Data<AuthService>,
    cookie: web::Data<RefreshCookie>,
    OptionalJsonOrForm(body): OptionalJsonOrForm<RefreshRequest>,
) -> Result<HttpResponse, AppError> {
    let presented = body
        .and_then(|body| body.refresh_token)
        .or_else(|| cookie.read(&request))
        .ok_or_else(|| AppError::validation("refresh_token", "is required"))?;
    let tokens = auth.refresh(&presented).await?;
    Ok(token_response(tokens, **cookie))
}

/// Log out
///
/// Ends this token's session at once: its access and refresh tokens stop
/// working.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "accounts", operation_id = "logout",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Logged out"),
    ))]
pub async fn logout(
    auth: web::Data<AuthService>,
    cookie: web::Data<RefreshCookie>,
    Authenticated(principal): Authenticated,
) -> Result<HttpResponse, AppError> {
    auth.logout(&principal).await?;
    let mut response = HttpResponse::NoContent();
    if cookie.enabled {
        response.cookie(RefreshCookie::cleared());
    }
    Ok(response.finish())
}

/// Change the password
///
/// Needs the current password. Every session of the user ends: log in
/// again with the new one.
#[utoipa::path(put, path = "/api/v1/auth/password", tag = "accounts", operation_id = "changePassword",
    security(("bearer" = [])),
    request_body = PasswordChange,
    responses(
        (status = 204, description = "Changed; log in again"),
        (status = 401, description = "`unauthorized`, or `invalid_credentials` for a wrong current password", body = ErrorResponse),
        (status = 422, description = "`validation_failed`", body = ErrorResponse),
    ))]
pub async fn change_password(
    request: HttpRequest,
    auth: web::Data<AuthService>,
    clients: web::Data<ClientKeyExtractor>,
    Authenticated(principal): Authenticated,
    Json(change): Json<PasswordChange>,
) -> Result<HttpResponse, AppError> {
    let mut problems = Problems::default();
    let current = problems.required(change.current_password, "current_password");
    let new = problems.parsed(change.new_password, "new_password", Password::parse);
    let (current, new) = problems.or(current.zip(new))?;
    let client = clients.client(&request);
    auth.change_password(&principal, &current, new, &client)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
