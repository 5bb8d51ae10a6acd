//! Security headers on every response. A header a handler has already set
//! is left as it is: a page with needs of its own (the admin console's
//! Content-Security-Policy) sets its own and keeps it.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::middleware::Next;

/// For HTML pages that set no policy of their own (the Swagger UI at
/// `/docs`): only our own files, no inline script, never inside a frame.
/// Swagger UI styles its elements inline and draws icons from `data:` URIs.
const PAGE_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

fn set_unless_present(headers: &mut HeaderMap, name: HeaderName, value: &'static str) {
    if !headers.contains_key(&name) {
        headers.insert(name, HeaderValue::from_static(value));
    }
}

fn is_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.trim_start().starts_with("text/html"))
}

pub async fn add_security_headers(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    // API answers carry tokens and personal data: no cache keeps them
    // unless the handler says otherwise (users: `private, no-cache`).
    let is_api = request.path().starts_with("/api/");
    let mut response = next.call(request).await?;
    let headers = response.headers_mut();
    set_unless_present(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set_unless_present(headers, header::REFERRER_POLICY, "no-referrer");
    if is_api {
        set_unless_present(headers, header::CACHE_CONTROL, "no-store");
    }
    if is_html(headers) {
        set_unless_present(headers, header::CONTENT_SECURITY_POLICY, PAGE_CSP);
        set_unless_present(headers, header::X_FRAME_OPTIONS, "DENY");
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use actix_web::middleware::from_fn;
    use actix_web::{App, HttpResponse, test, web};

    use super::*;

    #[actix_web::test]
    async fn a_page_that_sets_its_own_policy_keeps_it() {
        let app = test::init_service(App::new().wrap(from_fn(add_security_headers)).route(
            "/page",
            web::get().to(|| async {
                HttpResponse::Ok()
                    .content_type("text/html; charset=utf-8")
                    .insert_header((header::CONTENT_SECURITY_POLICY, "default-src 'none'"))
                    .insert_header((header::X_FRAME_OPTIONS, "SAMEORIGIN"))
                    .body("<p>hi</p>")
            }),
        ))
        .await;
        let response =
            test::call_service(&app, test::TestRequest::get().uri("/page").to_request()).await;
        let headers = response.headers();
        assert_eq!(
            headers.get(header::CONTENT_SECURITY_POLICY).unwrap(),
            "default-src 'none'"
        );
        assert_eq!(headers.get(header::X_FRAME_OPTIONS).unwrap(), "SAMEORIGIN");
        assert_eq!(
            headers.get(header::X_CONTENT_TYPE_OPTIONS).unwrap(),
            "nosniff"
        );
        assert_eq!(headers.get(header::REFERRER_POLICY).unwrap(), "no-referrer");
    }
}
