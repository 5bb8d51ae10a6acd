//! Extractors that turn every kind of bad input into the contract's envelope:
//! bodies (JSON, or JSON and forms), the bearer token.

use actix_web::dev::Payload;
use actix_web::error::PayloadError;
use actix_web::http::header;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;

use crate::domain::UserId;
use crate::error::{AppError, FieldError};
use crate::services::auth::AuthService;
use crate::services::sessions::Principal;
use crate::services::tokens::TokenSubject;

/// Request bodies larger than this get 413.
pub const BODY_LIMIT: usize = 64 * 1024;
/// Longer bearer tokens are refused unread.
const MAX_TOKEN_LENGTH: usize = 4096;

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

/// Names the field a deserialisation error is about; broken syntax is about
/// the body as a whole.
fn parse_error(path: String, message: String, syntax: bool) -> AppError {
    if let Some(rest) = message.strip_prefix("unknown field `") {
        // serde: "unknown field `NAME`, expected ..." (NAME may hold backticks)
        let field = rest
            .find("`, expected")
            .or_else(|| rest.find("`, there are no fields"))
            .map_or(rest, |end| &rest[..end]);
        if field.is_empty() {
            return AppError::validation("body", "has a field with an empty name");
        }
        return AppError::validation(field, "is not a known field");
    }
    // serde_json ends messages with " at line 1 column 9": not for people.
    let message = message.split(" at line ").next().unwrap_or(&message);
    if syntax {
        AppError::validation("body", format!("is not valid JSON: {message}"))
    } else if path == "." {
        AppError::validation("body", readable(message))
    } else {
        AppError::validation(path, readable(message))
    }
}

/// A deserialiser's complaint in the client's terms: what to send instead,
/// never our type names ("invalid type: string \"x\", expected struct
/// LoginAttempt" → "must be a JSON object"; "expected i64" → "must be a
/// whole number").
fn readable(message: &str) -> String {
    // serde: "..., expected TYPE"; actix's path parser: "can not parse \"x\" to a TYPE".
    let expected = message
        .rsplit_once("expected ")
        .or_else(|| message.rsplit_once("\" to a "))
        .map(|(_, expected)| expected.trim());
    let Some(expected) = expected else {
        return message.to_string();
    };
    let wanted = match expected {
        e if e.starts_with("struct ") || e.starts_with("a map") || e == "map" => "a JSON object",
        "u8" | "u16" | "u32" | "u64" | "u128" | "usize" => "a whole number, 0 or more",
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => "a whole number",
        "f32" | "f64" => "a number",
        "a string" | "a borrowed string" | "a string or a number" => "a string",
        "a boolean" | "bool" => "true or false",
        "a sequence" => "a list",
        e if e.starts_with('`') => return format!("must be {e}"),
        _ => "of another type",
    };
    format!("must be {wanted}")
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

/// The caller, from `Authorization: Bearer <token>`, checked against the
/// current session.
pub struct Authenticated(pub Principal);

fn bearer_token(request: &HttpRequest) -> Option<String> {
    let value = request
        .headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() && token.len() <= MAX_TOKEN_LENGTH)
        .then(|| token.to_string())
}

impl FromRequest for Authenticated {
    type Error = AppError;
    type Future = LocalBoxFuture<'static, Result<Self, AppError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let token = bearer_token(request);
        let auth = request.app_data::<web::Data<AuthService>>().cloned();
        Box::pin(async move {
            let token = token.ok_or(AppError::Unauthorized)?;
            let auth = auth
                .ok_or_else(|| AppError::Internal(anyhow::anyhow!("AuthService not registered")))?;
            auth.authenticate(&token).await.map(Authenticated)
        })
    }
}

/// A well-signed, unexpired bearer token whose session is still to be
/// checked. It authorises nothing by itself: only a service that checks the
/// session (together with its own Redis read, in one round trip) turns it
/// into a `Principal`.
pub struct Bearer(pub TokenSubject);

impl FromRequest for Bearer {
    type Error = AppError;
    type Future = std::future::Ready<Result<Self, AppError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let auth = request.app_data::<web::Data<AuthService>>();
        std::future::ready(match (bearer_token(request), auth) {
            (Some(token), Some(auth)) => auth.verify_token(&token).map(Bearer),
            (None, _) => Err(AppError::Unauthorized),
            (_, None) => Err(AppError::Internal(anyhow::anyhow!(
                "AuthService not registered"
            ))),
        })
    }
}

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

#[cfg(test)]
mod tests {
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
