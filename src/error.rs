//! The one error type of the service and its mapping to the contract's
//! envelope: `{"error": {"code", "message", "details"?}}`.

mod convert;
mod fields;
mod response;

use serde::Serialize;

use crate::domain::RateDecision;

pub use fields::Problems;
pub use response::{ErrorBody, ErrorResponse, write_rate_limit_headers};

/// One invalid input, named by the field it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Every code the API answers with, as published in the OpenAPI document
/// (generated clients switch on it). Some are produced by routes of
/// features that may not be enabled: the list is the contract's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    ValidationFailed,
    InvalidToken,
    Unauthorized,
    InvalidCredentials,
    Forbidden,
    EmailNotVerified,
    AccountDisabled,
    NotFound,
    MethodNotAllowed,
    Conflict,
    UpdateInProgress,
    PreconditionFailed,
    PayloadTooLarge,
    /// 408: the body did not arrive in time.
    RequestTimeout,
    RateLimited,
    Unavailable,
    Internal,
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    #[error("authentication required")]
    Unauthorized,
    #[error("invalid credentials")]
    InvalidCredentials,
    /// A reset or verification token that is unknown, expired or spent.
    #[error("invalid token")]
    InvalidToken,
    #[error("forbidden")]
    Forbidden,
    /// The password was right, but the address must be verified first.
    #[error("e-mail address not verified")]
    EmailNotVerified,
    /// A CORS preflight refused; the text says why, for the developer.
    #[error("cross-origin request refused")]
    CorsRefused(&'static str),
    /// A correct password for an account an admin has disabled.
    #[error("account disabled")]
    AccountDisabled,
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("method not allowed")]
    /// The methods the path does allow, for the `Allow` header.
    MethodNotAllowed(&'static str),
    #[error("{} is already taken", .0.field)]
    Conflict(FieldError),
    /// Another update of the same resource holds its lock for this long.
    #[error("update in progress")]
    UpdateInProgress(std::time::Duration),
    /// `If-Match` named a version that is no longer current.
    #[error("precondition failed")]
    PreconditionFailed,
    #[error("request body too large")]
    PayloadTooLarge,
    /// The body did not arrive within `server.body_timeout_ms`.
    #[error("request body too slow")]
    RequestTimeout,
    /// The client's address already holds as many connections as it may.
    #[error("too many connections")]
    TooManyConnections,
    /// Too much password hashing is waiting: shed, not queued without end.
    #[error("overloaded")]
    Overloaded,
    #[error("rate limited")]
    RateLimited(RateDecision),
    /// A dependency (Redis, the database) did not answer in time.
    #[error("service unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl AppError {
    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError::new(field, message)])
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Validation(_) => ErrorCode::ValidationFailed,
            Self::Unauthorized => ErrorCode::Unauthorized,
            Self::InvalidCredentials => ErrorCode::InvalidCredentials,
            Self::InvalidToken => ErrorCode::InvalidToken,
            Self::Forbidden | Self::CorsRefused(_) => ErrorCode::Forbidden,
            Self::EmailNotVerified => ErrorCode::EmailNotVerified,
            Self::AccountDisabled => ErrorCode::AccountDisabled,
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::MethodNotAllowed(_) => ErrorCode::MethodNotAllowed,
            Self::Conflict(_) => ErrorCode::Conflict,
            Self::UpdateInProgress(_) => ErrorCode::UpdateInProgress,
            Self::PreconditionFailed => ErrorCode::PreconditionFailed,
            Self::PayloadTooLarge => ErrorCode::PayloadTooLarge,
            Self::RequestTimeout => ErrorCode::RequestTimeout,
            Self::TooManyConnections => ErrorCode::RateLimited,
            Self::Overloaded => ErrorCode::Unavailable,
            Self::RateLimited(_) => ErrorCode::RateLimited,
            Self::Unavailable(_) => ErrorCode::Unavailable,
            Self::Internal(_) => ErrorCode::Internal,
        }
    }
}
