//! The HTTP side of `AppError`: status, headers, and the envelope's text,
//! which never carries an internal cause.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use super::{AppError, ErrorCode, FieldError};
use crate::domain::RateDecision;

impl AppError {
    /// The text a person reads; never carries an internal cause.
    fn public_message(&self) -> String {
        match self {
            Self::Validation(_) => "the request is not valid; see details".into(),
            Self::Unauthorized => "a valid bearer token is required".into(),
            Self::InvalidCredentials => "the username or password is wrong".into(),
            Self::InvalidToken => {
                "the link is unknown, expired or already used; ask for a new one".into()
            }
            Self::Forbidden => "you are not allowed to do this".into(),
            Self::EmailNotVerified => {
                "verify your e-mail address first: follow the link mailed to it".into()
            }
            Self::CorsRefused(why) => (*why).into(),
            Self::AccountDisabled => "this account has been disabled".into(),
            Self::NotFound(what) => format!("{what} not found"),
            Self::MethodNotAllowed(allow) => {
                format!("this method is not allowed on this path; allowed: {allow}")
            }
            Self::Conflict(field) => format!("{} is already taken", field.field),
            Self::UpdateInProgress(_) => {
                "another update of this resource is in progress; retry shortly".into()
            }
            Self::PreconditionFailed => {
                "the resource changed since the ETag given in If-Match; read it again".into()
            }
            Self::PayloadTooLarge => format!(
                "the request body is larger than {} KiB",
                crate::controllers::BODY_LIMIT / 1024
            ),
            Self::RequestTimeout => "the request body did not arrive in time".into(),
            Self::TooManyConnections => {
                "too many open connections from your address; retry shortly".into()
            }
            Self::Overloaded => "the service is busy; retry shortly".into(),
            Self::RateLimited(decision) => format!(
                "too many requests; retry in {} s",
                whole_seconds(decision.retry_after)
            ),
            Self::Unavailable(_) => "the service is temporarily unavailable; retry shortly".into(),
            Self::Internal(_) => "an internal error occurred".into(),
        }
    }
}

/// Seconds, rounded up, at least 1: a client told "0" would retry at once.
fn whole_seconds(duration: std::time::Duration) -> u64 {
    duration.as_millis().div_ceil(1000).max(1) as u64
}

/// `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset`: seconds
/// until the full limit is available again or, on a refusal, until the next
/// request is allowed, so that it always agrees with `Retry-After`.
pub fn write_rate_limit_headers(headers: &mut HeaderMap, decision: &RateDecision) {
    let reset = if decision.allowed {
        decision.reset.as_millis().div_ceil(1000) as u64
    } else {
        whole_seconds(decision.retry_after)
    };
    for (name, value) in [
        ("ratelimit-limit", u64::from(decision.limit)),
        ("ratelimit-remaining", u64::from(decision.remaining)),
        ("ratelimit-reset", reset),
    ] {
        headers.insert(HeaderName::from_static(name), HeaderValue::from(value));
    }
}

/// Every error answer, whatever produced it.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"error": {
    "code": "validation_failed",
    "message": "the request is not valid; see details",
    "details": [{"field": "email", "message": "is not an e-mail address"}],
    "request_id": "4f1c2a9e0b7d3c5a00000001"
}}))]
pub struct ErrorResponse {
    error: ErrorBody,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What went wrong, for a program to act on.
    code: ErrorCode,
    /// For a person; never carries internal details.
    message: String,
    /// The invalid fields (`validation_failed`, `conflict`); absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    details: Option<Vec<FieldError>>,
    /// The response's `X-Request-Id`: quote it when reporting a problem, it
    /// finds the request's log lines.
    request_id: String,
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::InvalidToken => StatusCode::BAD_REQUEST,
            Self::Unauthorized | Self::InvalidCredentials => StatusCode::UNAUTHORIZED,
            Self::Forbidden | Self::EmailNotVerified | Self::AccountDisabled => {
                StatusCode::FORBIDDEN
            }
            Self::CorsRefused(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict(_) | Self::UpdateInProgress(_) => StatusCode::CONFLICT,
            Self::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::RateLimited(_) | Self::TooManyConnections => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) | Self::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            Self::Internal(cause) => {
                tracing::error!(error = format!("{cause:#}"), "internal error")
            }
            Self::Unavailable(cause) => {
                tracing::warn!(error = format!("{cause:#}"), "dependency unavailable")
            }
            _ => {}
        }
        let details = match self {
            Self::Validation(details) => Some(details.clone()),
            Self::Conflict(field) => Some(vec![field.clone()]),
            _ => None,
        };
        let envelope = ErrorResponse {
            error: ErrorBody {
                code: self.code(),
                message: self.public_message(),
                details,
                request_id: crate::telemetry::current_request_id().unwrap_or_default(),
            },
        };
        let mut response = HttpResponse::build(self.status_code());
        match self {
            Self::Unauthorized | Self::InvalidCredentials => {
                response
                    .insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
            }
            Self::Unavailable(_) | Self::Overloaded | Self::TooManyConnections => {
                response.insert_header((header::RETRY_AFTER, HeaderValue::from_static("1")));
            }
            Self::RateLimited(decision) => {
                response.insert_header((header::RETRY_AFTER, whole_seconds(decision.retry_after)));
            }
            Self::UpdateInProgress(held_for) => {
                response.insert_header((header::RETRY_AFTER, whole_seconds(*held_for)));
            }
            Self::MethodNotAllowed(allow) => {
                response.insert_header((header::ALLOW, HeaderValue::from_static(allow)));
            }
            _ => {}
        }
        let mut response = response.json(envelope);
        if let Self::RateLimited(decision) = self {
            write_rate_limit_headers(response.headers_mut(), decision);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::MessageBody;

    fn body_of(error: AppError) -> serde_json::Value {
        let bytes = error.error_response().into_body().try_into_bytes().unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[test]
    fn internal_errors_never_show_their_cause() {
        let body = body_of(AppError::Internal(anyhow::anyhow!(
            "SELECT secret FROM users"
        )));
        assert_eq!(body["error"]["code"], "internal");
        assert!(!body.to_string().contains("SELECT"));
    }

    #[test]
    fn validation_errors_name_each_field() {
        let body = body_of(AppError::Validation(vec![
            FieldError::new("username", "is too short"),
            FieldError::new("email", "is not an e-mail address"),
        ]));
        assert_eq!(body["error"]["details"][0]["field"], "username");
        assert_eq!(body["error"]["details"][1]["field"], "email");
    }
}
