//! The path's `{id}`, and path and query errors in the envelope.

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};

use super::messages::readable;
use crate::domain::UserId;
use crate::error::{AppError, FieldError};

/// The `{id}` of a path, accepted only in its canonical decimal form.
pub struct PathUserId(pub UserId);

impl FromRequest for PathUserId {
    type Error = AppError;
    type Future = std::future::Ready<Result<Self, AppError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let id = request.match_info().get("id").unwrap_or_default();
        std::future::ready(
            UserId::parse(id)
                .map(PathUserId)
                .map_err(|message| AppError::validation("path", message)),
        )
    }
}

/// Path and query errors, in the envelope.
pub fn path_error(error: actix_web::error::PathError, _: &HttpRequest) -> actix_web::Error {
    AppError::Validation(vec![FieldError::new("path", readable(&error.to_string()))]).into()
}

pub fn query_error(
    error: actix_web::error::QueryPayloadError,
    _: &HttpRequest,
) -> actix_web::Error {
    AppError::Validation(vec![FieldError::new("query", readable(&error.to_string()))]).into()
}
