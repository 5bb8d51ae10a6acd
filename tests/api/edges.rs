//! The edges of the HTTP surface a newcomer meets first: 405 with `Allow`,
//! 413 on every route, the envelope under `/docs/`, CORS from a local
//! frontend, and metrics kept off the public port.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::Value;

use crate::helpers::{Backend, error_code, spawn_app, spawn_app_with};

fn header(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .map(|value| value.to_str().unwrap().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_405_lists_the_methods_its_path_allows_as_documented() {
    let app = spawn_app(Backend::Sqlite).await;
    let document: Value = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let paths = document["paths"].as_object().unwrap();
    assert!(paths.len() >= 10, "{} paths", paths.len());
    for (path, operations) in paths {
        let documented: BTreeSet<String> = operations
            .as_object()
            .unwrap()
            .keys()
            .filter(|key| key.as_str() != "parameters")
            .map(|method| method.to_uppercase())
            .collect();
        let concrete = path.replace("{id}", "1");
        let response = app
            .client
            .request(Method::TRACE, app.url(&concrete))
            .send()
            .await
            .unwrap();
        let allow = header(&response, "allow");
        let (status, error) = error_code(response).await;
        assert_eq!(
            (status, error["code"].as_str()),
            (405, Some("method_not_allowed")),
            "{path}"
        );
        let allowed: BTreeSet<String> = allow
            .unwrap_or_else(|| panic!("no Allow on the 405 of {path}"))
            .split(',')
            .map(|method| method.trim().to_string())
            .collect();
        assert_eq!(allowed, documented, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_64_kib_gets_413_even_where_no_body_is_read() {
    let app = spawn_app(Backend::Sqlite).await;
    let big = vec![b'x'; 64 * 1024 + 1];
    for (method, path) in [
        (Method::GET, "/health/live"),
        (Method::GET, "/api/v1/users/me"),
        (Method::POST, "/api/v1/auth/logout"),
        (Method::GET, "/no/such/path"),
    ] {
        let response = app
            .client
            .request(method, app.url(path))
            .body(big.clone())
            .send()
            .await
            .unwrap();
        let (status, error) = error_code(response).await;
        assert_eq!(
            (status, error["code"].as_str()),
            (413, Some("payload_too_large")),
            "{path}"
        );
    }
    let just_fits = app
        .client
        .get(app.url("/health/live"))
        .body(vec![b'x'; 64 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(just_fits.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_path_under_docs_gets_the_error_envelope() {
    let app = spawn_app(Backend::Sqlite).await;
    let page = app.client.get(app.url("/docs/")).send().await.unwrap();
    assert_eq!(page.status(), 200, "the docs page itself");
    for path in ["/docs/no-such-file.js", "/docs/a/b/c"] {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        let (status, error) = error_code(response).await;
        assert_eq!(
            (status, error["code"].as_str()),
            (404, Some("not_found")),
            "{path}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frontend_on_an_allowed_origin_may_send_conditional_and_idempotent_requests_with_credentials()
 {
    let app = spawn_app_with(Backend::Sqlite, |settings| {
        settings.cors.allowed_origins = "http://localhost:5173".into();
    })
    .await;
    let preflight = app
        .client
        .request(Method::OPTIONS, app.url("/api/v1/users/1"))
        .header("origin", "http://localhost:5173")
        .header("access-control-request-method", "PUT")
        .header(
            "access-control-request-headers",
            "authorization, content-type, if-match, if-none-match, idempotency-key",
        )
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
    assert_eq!(
        header(&preflight, "access-control-allow-origin").as_deref(),
        Some("http://localhost:5173")
    );
    assert_eq!(
        header(&preflight, "access-control-allow-credentials").as_deref(),
        Some("true")
    );
    let allowed = header(&preflight, "access-control-allow-headers")
        .unwrap()
        .to_lowercase();
    for name in [
        "authorization",
        "content-type",
        "if-match",
        "if-none-match",
        "idempotency-key",
    ] {
        assert!(allowed.contains(name), "{name} not allowed: {allowed}");
    }
    let error = app
        .client
        .get(app.url("/api/v1/users/me"))
        .header("origin", "http://localhost:5173")
        .send()
        .await
        .unwrap();
    assert_eq!(error.status(), 401);
    let exposed = header(&error, "access-control-expose-headers")
        .unwrap()
        .to_lowercase();
    for name in [
        "etag",
        "x-cache",
        "retry-after",
        "ratelimit-limit",
        "x-request-id",
        "location",
    ] {
        assert!(exposed.contains(name), "{name} not exposed: {exposed}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_preflight_from_an_unknown_origin_is_refused_in_the_envelope_without_cors_headers() {
    let configured = spawn_app_with(Backend::Sqlite, |settings| {
        settings.cors.allowed_origins = "http://localhost:5173".into();
    })
    .await;
    let off = spawn_app(Backend::Sqlite).await;
    for app in [&configured, &off] {
        for path in ["/api/v1/users/me", "/api/v1/auth/login", "/no/such/path"] {
            let response = app
                .client
                .request(Method::OPTIONS, app.url(path))
                .header("origin", "http://localhost:3000")
                .header("access-control-request-method", "GET")
                .send()
                .await
                .unwrap();
            assert_eq!(header(&response, "access-control-allow-origin"), None);
            let (status, error) = error_code(response).await;
            assert_eq!(
                (status, error["code"].as_str()),
                (403, Some("forbidden")),
                "{path}"
            );
            let message = error["message"].as_str().unwrap();
            assert!(message.contains("CORS"), "{message}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_metrics_port_metrics_are_served_there_and_not_on_the_public_port() {
    let app = spawn_app_with(Backend::Sqlite, |settings| {
        settings.server.metrics_port = Some(0);
    })
    .await;
    let public = app.client.get(app.url("/metrics")).send().await.unwrap();
    let (status, error) = error_code(public).await;
    assert_eq!((status, error["code"].as_str()), (404, Some("not_found")));
    let private = app.metrics_address.clone().expect("a metrics listener");
    let metrics = app
        .client
        .get(format!("{private}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status(), 200);
    let text = metrics.text().await.unwrap();
    assert!(text.contains("user_api_http_requests_total"), "{text}");
    let other = app
        .client
        .get(format!("{private}/api/v1/users/me"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        other.status(),
        404,
        "the metrics listener serves nothing else"
    );
}
