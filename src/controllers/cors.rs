//! CORS for browser apps on the configured origins: preflights answered,
//! every response (errors included) readable, and the headers a frontend
//! needs exposed. Other origins get no CORS headers, so browsers refuse them.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderMap, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, web};

use crate::config::CorsSettings;

const ALLOWED_METHODS: &str = "GET, POST, PUT, DELETE, OPTIONS";
const ALLOWED_HEADERS: &str = "Authorization, Content-Type, If-None-Match, X-Request-Id";
const EXPOSED_HEADERS: &str = "ETag, X-Cache, Retry-After, RateLimit-Limit, RateLimit-Remaining, \
                               RateLimit-Reset, X-Request-Id, Location";

#[derive(Debug, Clone)]
pub struct CorsPolicy {
    origins: Vec<String>,
    allow_credentials: bool,
    max_age_seconds: u64,
}

impl CorsPolicy {
    /// Whether any origin is allowed; without one the middleware is not
    /// installed at all.
    pub fn allows_any(&self) -> bool {
        !self.origins.is_empty()
    }

    pub fn new(settings: &CorsSettings) -> Self {
        Self {
            origins: settings
                .allowed_origins
                .split(',')
                .map(|origin| origin.trim().trim_end_matches('/').to_string())
                .filter(|origin| !origin.is_empty())
                .collect(),
            allow_credentials: settings.allow_credentials,
            max_age_seconds: settings.max_age_seconds,
        }
    }

    fn allows(&self, origin: &HeaderValue) -> bool {
        origin.to_str().is_ok_and(|origin| {
            self.origins
                .iter()
                .any(|allowed| allowed == origin || allowed == "*")
        })
    }

    fn write(&self, headers: &mut HeaderMap, origin: HeaderValue) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.append(header::VARY, HeaderValue::from_static("Origin"));
        if self.allow_credentials {
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
    }
}

pub async fn cors(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let policy = request.app_data::<web::Data<CorsPolicy>>().cloned();
    let origin = request.headers().get(header::ORIGIN).cloned();
    let (Some(policy), Some(origin)) = (policy, origin) else {
        return Ok(next.call(request).await?.map_into_boxed_body());
    };
    if !policy.allows(&origin) {
        return Ok(next.call(request).await?.map_into_boxed_body());
    }
    let preflight = request.method() == Method::OPTIONS
        && request
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    if preflight {
        let mut response = HttpResponse::new(StatusCode::NO_CONTENT);
        let headers = response.headers_mut();
        policy.write(headers, origin);
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(ALLOWED_METHODS),
        );
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(ALLOWED_HEADERS),
        );
        headers.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from(policy.max_age_seconds),
        );
        return Ok(request.into_response(response));
    }
    let mut response = next.call(request).await?.map_into_boxed_body();
    let headers = response.headers_mut();
    policy.write(headers, origin);
    headers.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static(EXPOSED_HEADERS),
    );
    Ok(response)
}
