use reqwest::Method;
use serde_json::json;

use crate::helpers::{Backend, error_code, spawn_app};

#[tokio::test]
async fn an_unknown_path_is_404_in_the_envelope() {
    let app = spawn_app(Backend::Sqlite).await;
    let (status, error) =
        error_code(app.request(Method::GET, "/no/such/path", None, None).await).await;
    assert_eq!((status, error["code"].as_str()), (404, Some("not_found")));
    let (status, _) = error_code(
        app.request(Method::GET, "/api/v1/nothing", None, None)
            .await,
    )
    .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_wrong_method_is_405_in_the_envelope() {
    let app = spawn_app(Backend::Sqlite).await;
    let (status, error) = error_code(
        app.request(Method::POST, "/api/v1/users/1", None, None)
            .await,
    )
    .await;
    assert_eq!(
        (status, error["code"].as_str()),
        (405, Some("method_not_allowed"))
    );
    let (status, _) = error_code(
        app.request(Method::GET, "/api/v1/auth/login", None, None)
            .await,
    )
    .await;
    assert_eq!(status, 405);
}

#[tokio::test]
async fn malformed_json_and_wrong_content_types_are_422_naming_the_body() {
    let app = spawn_app(Backend::Sqlite).await;
    for (content_type, body) in [
        ("application/json", "{\"username\": "),
        ("application/json", "[]"),
        ("application/json", "{} trailing"),
        ("text/plain", "{}"),
    ] {
        let response = app
            .client
            .post(app.url("/api/v1/auth/register"))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        let (status, error) = error_code(response).await;
        assert_eq!(
            (status, error["code"].as_str()),
            (422, Some("validation_failed")),
            "{body}"
        );
        assert_eq!(error["details"][0]["field"], "body", "{body}");
    }
}

#[tokio::test]
async fn a_wrongly_typed_field_is_named() {
    let app = spawn_app(Backend::Sqlite).await;
    let (status, error) = error_code(
        app.post("/api/v1/auth/register", json!({"username": 5}))
            .await,
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(error["details"][0]["field"], "username");
}

#[tokio::test]
async fn a_body_over_64_kib_is_413_and_nothing_is_stored() {
    let app = spawn_app(Backend::Sqlite).await;
    let body =
        json!({"username": "alice", "email": "a@example.com", "password": "x".repeat(70 * 1024)});
    let (status, error) = error_code(app.post("/api/v1/auth/register", body).await).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (413, Some("payload_too_large"))
    );
    assert_eq!(
        app.register("alice").await.status(),
        201,
        "the name is still free"
    );
}

#[tokio::test]
async fn health_answers_live_and_ready() {
    let app = spawn_app(Backend::Sqlite).await;
    assert_eq!(
        app.request(Method::GET, "/health/live", None, None)
            .await
            .status(),
        200
    );
    let ready = app.request(Method::GET, "/health/ready", None, None).await;
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["checks"]["redis"], "ok");
    assert_eq!(body["checks"]["database"], "ok");
}

#[tokio::test]
async fn every_response_carries_a_request_id_and_echoes_the_clients() {
    let app = spawn_app(Backend::Sqlite).await;
    let response = app
        .client
        .get(app.url("/health/live"))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "abc-123");
    let response = app
        .client
        .get(app.url("/health/live"))
        .send()
        .await
        .unwrap();
    assert!(!response.headers()["x-request-id"].is_empty());
}
