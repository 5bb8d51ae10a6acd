//! The generated API document agrees with the contract, and `/docs` needs
//! no network.

use reqwest::Method;
use serde_json::Value;

use crate::helpers::{Backend, spawn_app};

const CONTRACT: [(&str, &str); 17] = [
    ("post", "/api/v1/auth/register"),
    ("post", "/api/v1/auth/login"),
    ("post", "/api/v1/auth/logout"),
    ("put", "/api/v1/auth/password"),
    ("get", "/api/v1/users/me"),
    ("get", "/api/v1/users/{id}"),
    ("put", "/api/v1/users/{id}"),
    ("delete", "/api/v1/users/{id}"),
    ("get", "/api/v1/users"),
    ("delete", "/api/v1/admin/cache/keys"),
    ("get", "/api/v1/admin/cache/keys"),
    ("get", "/api/v1/admin/cache/stats"),
    ("get", "/api/v1/admin/jobs/stats"),
    ("post", "/api/v1/admin/jobs/dead/replay"),
    ("get", "/health/live"),
    ("get", "/health/ready"),
    ("get", "/metrics"),
];

#[tokio::test]
async fn the_openapi_document_has_every_contract_path_schema_and_the_bearer_scheme() {
    let app = spawn_app(Backend::Sqlite).await;
    let document: Value = app
        .request(Method::GET, "/openapi.json", None, None)
        .await
        .json()
        .await
        .unwrap();
    assert!(document["openapi"].as_str().unwrap().starts_with('3'));
    for (method, path) in CONTRACT {
        assert!(
            document["paths"][path][method].is_object(),
            "{method} {path} missing"
        );
    }
    let schemas = &document["components"]["schemas"];
    for name in [
        "User",
        "Role",
        "UserPage",
        "Registration",
        "LoginAttempt",
        "TokenResponse",
        "ErrorResponse",
        "FieldError",
    ] {
        assert!(schemas[name].is_object(), "schema {name} missing");
    }
    let user_fields: Vec<&String> = schemas["User"]["properties"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(
        user_fields,
        [
            "created_at",
            "email",
            "id",
            "role",
            "updated_at",
            "username"
        ]
    );
    assert_eq!(
        document["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    assert_eq!(
        schemas["UserUpdate"]["additionalProperties"], false,
        "unknown fields are refused"
    );
    let login = &document["paths"]["/api/v1/auth/login"]["post"]["requestBody"]["content"];
    assert!(login["application/x-www-form-urlencoded"].is_object());
    let update = &document["paths"]["/api/v1/users/{id}"]["put"]["responses"];
    for status in ["200", "401", "403", "404", "409", "422", "429"] {
        assert!(
            update[status].is_object(),
            "PUT /users/{{id}} lacks {status}"
        );
    }
}

#[tokio::test]
async fn docs_are_served_from_the_binary_without_external_urls() {
    let app = spawn_app(Backend::Sqlite).await;
    let redirect = app.request(Method::GET, "/docs", None, None).await;
    assert_eq!(redirect.status(), 308);
    let page = app.request(Method::GET, "/docs/", None, None).await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("swagger-ui"));
    for attribute in ["src=\"http", "href=\"http", "src=\"//", "href=\"//"] {
        assert!(
            !html.contains(attribute),
            "the page loads something from outside: {attribute}"
        );
    }
    let initializer = app
        .request(Method::GET, "/docs/swagger-initializer.js", None, None)
        .await
        .text()
        .await
        .unwrap();
    assert!(initializer.contains("\"/openapi.json\""));
    for asset in [
        "swagger-ui-bundle.js",
        "swagger-ui.css",
        "swagger-ui-standalone-preset.js",
    ] {
        let response = app
            .request(Method::GET, &format!("/docs/{asset}"), None, None)
            .await;
        assert_eq!(response.status(), 200, "{asset}");
    }
}
