//! What operators and browser apps rely on: metrics, CORS, request ids.

use reqwest::Method;
use serde_json::Value;

use crate::helpers::{Backend, spawn_app, spawn_app_with};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_report_requests_latency_cache_rate_limits_pools_and_queue() {
    let app = spawn_app(Backend::Sqlite).await;
    let alice = app.user("alice").await;
    let path = format!("/api/v1/users/{}", alice.id);
    app.get(&path, &alice.token).await;
    app.get(&path, &alice.token).await;
    let response = app.request(Method::GET, "/metrics", None, None).await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = response.text().await.unwrap();
    for expected in [
        r#"user_api_http_requests_total{method="GET",route="/api/v1/users/{id}",status="200"} 2"#,
        r#"user_api_http_request_duration_seconds_bucket{method="GET",route="/api/v1/users/{id}",le="0.5"}"#,
        r#"user_api_cache_reads_total{result="hit"} 1"#,
        r#"user_api_cache_reads_total{result="miss"} 1"#,
        r#"user_api_rate_limit_decisions_total{decision="allowed",limit="api"}"#,
        r#"user_api_rate_limit_decisions_total{decision="allowed",limit="login"} 1"#,
        r#"user_api_pool_connections{pool="redis",state="idle"}"#,
        r#"user_api_pool_connections{pool="database",state="in_use"}"#,
        r#"user_api_jobs{state="pending"}"#,
        r#"user_api_jobs{state="dead"} 0"#,
        "user_api_lock_contention_total 0",
    ] {
        assert!(text.contains(expected), "missing {expected} in\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allowed_origin_gets_preflights_and_readable_responses_and_errors() {
    let app = spawn_app_with(Backend::Sqlite, |settings| {
        settings.cors.allowed_origins = "https://app.example, http://localhost:5173".into();
    })
    .await;
    let origin = "https://app.example";
    let preflight = app
        .client
        .request(Method::OPTIONS, app.url("/api/v1/users/me"))
        .header("origin", origin)
        .header("access-control-request-method", "PUT")
        .header(
            "access-control-request-headers",
            "authorization, content-type",
        )
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
    let header = |response: &reqwest::Response, name: &str| {
        response
            .headers()
            .get(name)
            .map(|value| value.to_str().unwrap().to_string())
    };
    assert_eq!(
        header(&preflight, "access-control-allow-origin").as_deref(),
        Some(origin)
    );
    assert!(
        header(&preflight, "access-control-allow-methods")
            .unwrap()
            .contains("PUT")
    );
    assert!(
        header(&preflight, "access-control-allow-headers")
            .unwrap()
            .to_lowercase()
            .contains("authorization")
    );
    assert_eq!(
        header(&preflight, "access-control-allow-credentials").as_deref(),
        Some("true"),
        "credentials on by default for listed origins (the refresh cookie)"
    );

    let alice = app.user("alice").await;
    let read = app
        .client
        .get(app.url(&format!("/api/v1/users/{}", alice.id)))
        .bearer_auth(&alice.token)
        .header("origin", origin)
        .send()
        .await
        .unwrap();
    assert_eq!(
        header(&read, "access-control-allow-origin").as_deref(),
        Some(origin)
    );
    let exposed = header(&read, "access-control-expose-headers")
        .unwrap()
        .to_lowercase();
    for name in [
        "etag",
        "x-cache",
        "retry-after",
        "ratelimit-limit",
        "ratelimit-remaining",
        "ratelimit-reset",
    ] {
        assert!(exposed.contains(name), "{name} not exposed: {exposed}");
    }
    let error = app
        .client
        .get(app.url("/api/v1/users/me"))
        .header("origin", origin)
        .send()
        .await
        .unwrap();
    assert_eq!(error.status(), 401);
    assert_eq!(
        header(&error, "access-control-allow-origin").as_deref(),
        Some(origin)
    );

    let other = app
        .client
        .get(app.url("/health/live"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(header(&other, "access-control-allow-origin"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_configured_origins_there_is_no_cross_origin_access() {
    let app = spawn_app(Backend::Sqlite).await;
    let response = app
        .client
        .get(app.url("/health/live"))
        .header("origin", "https://app.example")
        .send()
        .await
        .unwrap();
    assert!(
        response
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_bodies_carry_the_request_id() {
    let app = spawn_app(Backend::Sqlite).await;
    let response = app
        .client
        .get(app.url("/api/v1/users/me"))
        .header("x-request-id", "trace-me-42")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "trace-me-42");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["request_id"], "trace-me-42");
}
