//! What the repositories' errors mean to a client.

use super::{AppError, FieldError};
use crate::repositories::redis::RedisError;
use crate::repositories::sql::SqlError;

impl From<SqlError> for AppError {
    fn from(error: SqlError) -> Self {
        match error {
            SqlError::UniqueViolation(field) => {
                AppError::Conflict(FieldError::new(field, "is already taken"))
            }
            SqlError::Unavailable(_) => AppError::Unavailable(error.into()),
            SqlError::Other(_) => AppError::Internal(error.into()),
        }
    }
}

/// Redis trouble of any kind means "try again": it never is the client's fault.
impl From<RedisError> for AppError {
    fn from(error: RedisError) -> Self {
        AppError::Unavailable(error.into())
    }
}
