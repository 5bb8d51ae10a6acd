//! Request bodies: JSON, or JSON and URL-encoded forms, within `BODY_LIMIT`.

use actix_web::dev::Payload;
use actix_web::error::PayloadError;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;

use super::messages::parse_error;
use crate::error::AppError;

/// Request bodies larger than this get 413.
pub const BODY_LIMIT: usize = 64 * 1024;

/// A JSON body. A missing `Content-Type` is read as JSON too.
pub struct Json<T>(pub T);

/// A JSON or `application/x-www-form-urlencoded` body.
pub struct JsonOrForm<T>(pub T);

/// Like `JsonOrForm`, but an empty body is `None` (a refresh whose token
/// comes in a cookie).
pub struct OptionalJsonOrForm<T>(pub Option<T>);

#[derive(Clone, Copy, PartialEq, Eq)]
enum BodyKind {
    Json,
    Form,
}

fn body_kind(request: &HttpRequest, form_allowed: bool) -> Result<BodyKind, AppError> {
    let content_type = request.content_type().to_ascii_lowercase();
    match content_type.as_str() {
        "" | "application/json" => Ok(BodyKind::Json),
        other if other.ends_with("+json") => Ok(BodyKind::Json),
        "application/x-www-form-urlencoded" if form_allowed => Ok(BodyKind::Form),
        _ => Err(AppError::validation(
            "body",
            if form_allowed {
                "must be JSON or a URL-encoded form (Content-Type)"
            } else {
                "must be JSON (Content-Type: application/json)"
            },
        )),
    }
}

fn read_error(error: actix_web::Error) -> AppError {
    match error.as_error::<PayloadError>() {
        Some(PayloadError::Overflow) => AppError::PayloadTooLarge,
        _ => AppError::validation("body", "could not be read"),
    }
}

fn parse_body<T: DeserializeOwned>(kind: BodyKind, bytes: &[u8]) -> Result<T, AppError> {
    match kind {
        BodyKind::Json => {
            // Every body is an object; serde would also take an array as
            // the fields in order, and blame "[0]".
            if bytes
                .iter()
                .find(|byte| !byte.is_ascii_whitespace())
                .is_some_and(|first| *first != b'{')
            {
                return Err(AppError::validation("body", "must be a JSON object"));
            }
            let mut deserializer = serde_json::Deserializer::from_slice(bytes);
            let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
                let syntax = error.inner().is_syntax() || error.inner().is_eof();
                parse_error(error.path().to_string(), error.inner().to_string(), syntax)
            })?;
            deserializer.end().map_err(|_| {
                AppError::validation("body", "has trailing characters after the JSON value")
            })?;
            Ok(value)
        }
        BodyKind::Form => {
            let pairs = serde_urlencoded::Deserializer::new(form_urlencoded::parse(bytes));
            serde_path_to_error::deserialize(pairs).map_err(|error| {
                parse_error(error.path().to_string(), error.inner().to_string(), false)
            })
        }
    }
}

fn extract_body<T: DeserializeOwned + 'static>(
    request: &HttpRequest,
    payload: &mut Payload,
    form_allowed: bool,
) -> LocalBoxFuture<'static, Result<T, AppError>> {
    let kind = body_kind(request, form_allowed);
    let bytes = web::Bytes::from_request(request, payload);
    Box::pin(async move {
        let kind = kind?;
        let bytes = bytes.await.map_err(read_error)?;
        parse_body(kind, &bytes)
    })
}

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = AppError;
    type Future = LocalBoxFuture<'static, Result<Self, AppError>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = extract_body(request, payload, false);
        Box::pin(async move { body.await.map(Json) })
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for OptionalJsonOrForm<T> {
    type Error = AppError;
    type Future = LocalBoxFuture<'static, Result<Self, AppError>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let kind = body_kind(request, true);
        let bytes = web::Bytes::from_request(request, payload);
        Box::pin(async move {
            let bytes = bytes.await.map_err(read_error)?;
            if bytes.is_empty() {
                return Ok(OptionalJsonOrForm(None));
            }
            parse_body(kind?, &bytes).map(|value| OptionalJsonOrForm(Some(value)))
        })
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for JsonOrForm<T> {
    type Error = AppError;
    type Future = LocalBoxFuture<'static, Result<Self, AppError>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = extract_body(request, payload, true);
        Box::pin(async move { body.await.map(JsonOrForm) })
    }
}

#[cfg(test)]
mod tests {
    use super::super::messages::readable;
    use super::*;
    use crate::controllers::auth::bodies::Registration;

    fn message_of(error: AppError) -> String {
        match error {
            AppError::Validation(details) => details[0].message.clone(),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn type_errors_say_what_to_send_without_our_type_names() {
        let cases = [
            (&br#""alice""#[..], "must be a JSON object"),
            (br#"[1, 2]"#, "must be a JSON object"),
            (br#"{"username": 5}"#, "must be a string"),
            (
                br#"{"username": null, "password": true}"#,
                "must be a string",
            ),
        ];
        for (body, expected) in cases {
            let message = message_of(parse_body::<Registration>(BodyKind::Json, body).unwrap_err());
            assert_eq!(message, expected, "{}", String::from_utf8_lossy(body));
        }
        assert_eq!(
            readable("can not parse \"x\" to a i64"),
            "must be a whole number"
        );
        assert_eq!(
            readable("invalid value: integer `-1`, expected u32"),
            "must be a whole number, 0 or more"
        );
        assert_eq!(
            readable("unknown variant `x`, expected `user` or `admin`"),
            "must be `user` or `admin`"
        );
    }

    proptest::proptest! {
        /// Whatever the bytes, a body parses or is a 4xx naming a field.
        #[test]
        fn any_body_parses_or_is_refused_with_a_field(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
            for kind in [BodyKind::Json, BodyKind::Form] {
                match parse_body::<Registration>(kind, &bytes) {
                    Ok(_) => {}
                    Err(AppError::Validation(details)) => proptest::prop_assert!(!details[0].field.is_empty()),
                    Err(other) => proptest::prop_assert!(false, "unexpected {other:?}"),
                }
            }
        }

        #[test]
        fn json_shaped_bodies_too(text in r#"\{("[a-z_]{1,12}": ?("[^"\\]{0,10}"|[0-9]{1,3}|null|true|\[\]),? ?){0,4}\}"#) {
            match parse_body::<Registration>(BodyKind::Json, text.as_bytes()) {
                Ok(_) | Err(AppError::Validation(_)) => {}
                Err(other) => proptest::prop_assert!(false, "unexpected {other:?}"),
            }
        }
    }
}
