//! The caller, from `Authorization: Bearer <token>`.

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::future::LocalBoxFuture;

use crate::error::AppError;
use crate::services::auth::AuthService;
use crate::services::sessions::Principal;
use crate::services::tokens::TokenSubject;

/// Longer bearer tokens are refused unread.
const MAX_TOKEN_LENGTH: usize = 4096;

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
