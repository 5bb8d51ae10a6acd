//! Checking request fields and query parameters: every problem is collected
//! under the name the client used, so one 422 names them all.

use super::{AppError, FieldError};

/// The problems found so far in one request.
#[derive(Debug, Default)]
pub struct Problems(Vec<FieldError>);

impl Problems {
    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0.push(FieldError::new(field, message));
    }

    /// A value that must be there.
    pub fn required<T>(&mut self, value: Option<T>, field: &str) -> Option<T> {
        if value.is_none() {
            self.add(field, "is required");
        }
        value
    }

    /// A parse's value, or its message recorded against `field`.
    pub fn checked<T>(&mut self, parsed: Result<T, String>, field: &str) -> Option<T> {
        parsed.map_err(|message| self.add(field, message)).ok()
    }

    /// A check's value, or its problem recorded.
    pub fn field<T>(&mut self, checked: Result<T, FieldError>) -> Option<T> {
        checked.map_err(|problem| self.0.push(problem)).ok()
    }

    /// A required value, parsed.
    pub fn parsed<R, T>(
        &mut self,
        value: Option<R>,
        field: &str,
        parse: impl FnOnce(R) -> Result<T, String>,
    ) -> Option<T> {
        let value = self.required(value, field)?;
        self.checked(parse(value), field)
    }

    /// An optional non-negative whole number (an id).
    pub fn whole_number(&mut self, value: Option<&str>, field: &str) -> Option<Option<i64>> {
        match value.map(str::parse::<i64>) {
            None => Some(None),
            Some(Ok(number)) if number >= 0 => Some(Some(number)),
            Some(_) => {
                self.add(field, "must be a non-negative whole number");
                None
            }
        }
    }

    /// A page size: `default` when absent, else 1 to `max`.
    pub fn limit(&mut self, value: Option<&str>, field: &str, default: u32, max: u32) -> u32 {
        match value.map(str::parse::<u32>) {
            None => default,
            Some(Ok(limit)) if (1..=max).contains(&limit) => limit,
            Some(_) => {
                self.add(field, format!("must be a whole number from 1 to {max}"));
                default
            }
        }
    }

    /// `Ok(value)` when nothing was wrong, else every problem as one 422.
    pub fn or<T>(self, value: Option<T>) -> Result<T, AppError> {
        match value {
            Some(value) if self.0.is_empty() => Ok(value),
            _ => Err(AppError::Validation(self.0)),
        }
    }

    pub fn into_error(self) -> Option<AppError> {
        (!self.0.is_empty()).then_some(AppError::Validation(self.0))
    }
}
