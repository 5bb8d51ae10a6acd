//! CORS for browser apps on the configured origins, by `actix-cors`:
//! preflights answered, every response (errors included) readable, and the
//! headers a frontend needs exposed. Requests from other origins pass
//! through without CORS headers, so browsers refuse them; their preflights
//! get a 403 in the error envelope, and a hint in the log once per origin.
//! (`actix-cors` answers a preflight it refuses with a bare 400:
//! `explain_refusals` turns that into the envelope.)

use std::collections::HashSet;
use std::sync::{LazyLock, Mutex, PoisonError};

use actix_cors::Cors;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName};
use actix_web::http::{Method, StatusCode, Uri};
use actix_web::middleware::Next;
use actix_web::{HttpRequest, ResponseError, web};

use crate::config::CorsSettings;
use crate::error::AppError;

const ALLOWED_METHODS: [Method; 5] = [
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
];

const ALLOWED_HEADERS: [HeaderName; 6] = [
    header::AUTHORIZATION,
    header::CONTENT_TYPE,
    header::IF_MATCH,
    header::IF_NONE_MATCH,
    HeaderName::from_static("idempotency-key"),
    HeaderName::from_static("x-request-id"),
];

const EXPOSED_HEADERS: [HeaderName; 8] = [
    header::ETAG,
    HeaderName::from_static("x-cache"),
    header::RETRY_AFTER,
    HeaderName::from_static("ratelimit-limit"),
    HeaderName::from_static("ratelimit-remaining"),
    HeaderName::from_static("ratelimit-reset"),
    HeaderName::from_static("x-request-id"),
    header::LOCATION,
];

/// Origins whose refused preflights were logged already; bounded, so
/// made-up origins cannot grow it.
static HINTED: LazyLock<Mutex<HashSet<String>>> = LazyLock::new(Mutex::default);
const MAX_HINTED: usize = 1000;

const NOT_ALLOWED_ORIGIN: &str = "this origin may not call the API from a browser: it is not \
                                  among the service's allowed CORS origins";
const NOT_ALLOWED_REQUEST: &str = "this cross-origin request asks for a method or header the \
                                   service does not allow (see Access-Control-Allow-Methods and \
                                   -Headers of an allowed preflight)";

#[derive(Debug, Clone)]
pub struct CorsPolicy {
    origins: Vec<String>,
    any_origin: bool,
    allow_credentials: bool,
    max_age_seconds: u64,
}

impl CorsPolicy {
    /// Refuses what a browser would turn into a hole (any origin with
    /// credentials) or what is surely a typo (an origin with a path, no
    /// scheme), naming the setting.
    pub fn new(settings: &CorsSettings) -> anyhow::Result<Self> {
        let mut origins = Vec::new();
        let mut any_origin = false;
        for origin in settings.allowed_origins.split(',').map(str::trim) {
            match origin.trim_end_matches('/') {
                "" => {}
                "*" => any_origin = true,
                origin => origins.push(parse_origin(origin)?),
            }
        }
        if any_origin && settings.allow_credentials {
            anyhow::bail!(
                "cors.allowed_origins contains \"*\" while cors.allow_credentials is true: any \
                 web site could then call the API with its visitors' cookies. List the origins \
                 (APP__CORS__ALLOWED_ORIGINS=https://app.example.com,...), or set \
                 APP__CORS__ALLOW_CREDENTIALS=false"
            );
        }
        Ok(Self {
            origins,
            any_origin,
            allow_credentials: settings.allow_credentials,
            max_age_seconds: settings.max_age_seconds,
        })
    }

    /// Whether any origin is allowed; without one the middleware is not
    /// installed at all.
    pub fn allows_any(&self) -> bool {
        self.any_origin || !self.origins.is_empty()
    }

    fn allows_origin(&self, request: &HttpRequest) -> bool {
        self.any_origin
            || request.headers().get(header::ORIGIN).is_some_and(|origin| {
                self.origins
                    .iter()
                    .any(|allowed| allowed.as_bytes() == origin.as_bytes())
            })
    }

    /// The middleware, built per worker (it is not shared between them).
    pub fn middleware(&self) -> Cors {
        let mut cors = Cors::default()
            .allowed_methods(ALLOWED_METHODS)
            .allowed_headers(ALLOWED_HEADERS)
            .expose_headers(EXPOSED_HEADERS)
            .max_age(usize::try_from(self.max_age_seconds).ok())
            // Other origins are not an error: their requests go on without
            // CORS headers (the browser withholds the answer).
            .block_on_origin_mismatch(false);
        if self.any_origin {
            cors = cors.allow_any_origin().send_wildcard();
        }
        for origin in &self.origins {
            cors = cors.allowed_origin(origin);
        }
        if self.allow_credentials {
            cors = cors.supports_credentials();
        }
        cors
    }
}

/// `scheme://host[:port]`, as a browser sends it in `Origin`.
fn parse_origin(origin: &str) -> anyhow::Result<String> {
    let valid = origin.parse::<Uri>().ok().filter(|uri| {
        matches!(uri.scheme_str(), Some("http" | "https"))
            && uri.host().is_some()
            && uri.path_and_query().is_none_or(|path| path.as_str() == "/")
    });
    match valid {
        Some(_) => Ok(origin.to_string()),
        None => anyhow::bail!(
            "cors.allowed_origins: {origin:?} is not an origin; write scheme://host[:port] \
             with no path, e.g. http://localhost:5173"
        ),
    }
}

fn is_preflight(request: &HttpRequest) -> bool {
    request.method() == Method::OPTIONS
        && request.headers().contains_key(header::ORIGIN)
        && request
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
}

/// A CORS preflight that reached routing was not answered by the CORS
/// middleware: CORS is off. Refused in the envelope, with a hint in the log.
pub fn refuse_preflight(request: &HttpRequest) -> Result<(), AppError> {
    if is_preflight(request) {
        hint_once(request, false);
        return Err(AppError::CorsRefused(NOT_ALLOWED_ORIGIN));
    }
    Ok(())
}

/// Outside `actix-cors` (installed with it): its bare 400 for a refused
/// preflight becomes a 403 in the envelope, saying why.
pub async fn explain_refusals(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    if !is_preflight(request.request()) {
        return Ok(next.call(request).await?.map_into_boxed_body());
    }
    let http_request = request.request().clone();
    let response = next.call(request).await?;
    if response.status() != StatusCode::BAD_REQUEST {
        return Ok(response.map_into_boxed_body());
    }
    let origin_allowed = http_request
        .app_data::<web::Data<CorsPolicy>>()
        .is_some_and(|policy| policy.allows_origin(&http_request));
    let why = if origin_allowed {
        NOT_ALLOWED_REQUEST
    } else {
        hint_once(&http_request, true);
        NOT_ALLOWED_ORIGIN
    };
    let envelope = AppError::CorsRefused(why).error_response();
    Ok(ServiceResponse::new(http_request, envelope))
}

/// The developer's hint, at `info`, once per origin (at most `MAX_HINTED`).
fn hint_once(request: &HttpRequest, cors_on: bool) {
    let Some(origin) = request.headers().get(header::ORIGIN) else {
        return;
    };
    let origin = String::from_utf8_lossy(origin.as_bytes()).into_owned();
    let first_time = {
        let mut hinted = HINTED.lock().unwrap_or_else(PoisonError::into_inner);
        hinted.len() < MAX_HINTED && hinted.insert(origin.clone())
    };
    if !first_time {
        return;
    }
    if cors_on {
        tracing::info!(
            origin = %origin,
            "CORS preflight refused: this origin is not in cors.allowed_origins; add it to \
             APP__CORS__ALLOWED_ORIGINS to let a browser app there call the API"
        );
    } else {
        tracing::info!(
            origin = %origin,
            "CORS preflight refused: CORS is off (cors.allowed_origins is empty); set \
             APP__CORS__ALLOWED_ORIGINS to let a browser app on another origin call the API"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::CorsPolicy;
    use crate::config::CorsSettings;

    fn policy(origins: &str, allow_credentials: bool) -> anyhow::Result<CorsPolicy> {
        CorsPolicy::new(&CorsSettings {
            allowed_origins: origins.into(),
            allow_credentials,
            max_age_seconds: 600,
        })
    }

    #[test]
    fn any_origin_with_credentials_is_refused_naming_both_settings() {
        let message = policy("https://a.example, *", true)
            .unwrap_err()
            .to_string();
        assert!(message.contains("cors.allowed_origins"), "{message}");
        assert!(
            message.contains("APP__CORS__ALLOW_CREDENTIALS=false"),
            "{message}"
        );
        assert!(policy("*", false).unwrap().allows_any());
    }

    #[test]
    fn an_origin_must_be_scheme_host_and_port() {
        for typo in [
            "localhost:5173",
            "http://localhost:5173/app",
            "ftp://x.example",
        ] {
            let message = policy(typo, true).unwrap_err().to_string();
            assert!(message.contains("is not an origin"), "{typo}: {message}");
        }
        let policy = policy("http://localhost:5173/, https://app.example", true).unwrap();
        assert_eq!(
            policy.origins,
            ["http://localhost:5173", "https://app.example"]
        );
    }
}
